"""One federated round, written once (``01_one_round_by_hand``).

A round is: **plan** (sample the clients, stragglers, compute budgets) → **broadcast** →
**client work** → **upload** (compression) → **aggregate** → **server update** → **record**.
Three runners share every stage here and differ only in how the client work is computed and
carried:

* :func:`fedlab.steps.run_round`: one client at a time, eager; carried in Python lists;
* :class:`fedlab.engine.Simulation`: all of a round's clients at once, compiled; carried in
  stacked tensors;
* the Flower ServerApp (:mod:`fedlab.flower.apps`): each client in its own process; carried in
  Flower messages.

So "steps == engine == Flower" holds by construction: the same :func:`plan_round`,
:func:`upload`, :func:`compose` (the aggregator a run uses), :func:`aggregate`,
:func:`server_update`, :func:`check_losses` and :func:`record`.

Example:
    >>> from fedlab.algorithms import FedAvg
    >>> plan = plan_round(FedAvg(), num_clients=4, clients_per_round=2, round_num=1)
    >>> plan.clients.tolist(), plan.budgets is None
    ([2, 3], True)
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from fedlab.aggregators import Aggregate, Aggregator, ClientUpdates, MaskedMean, WeightedMean
from fedlab.aggregators import through as _through
from fedlab.history import RoundRecord
from fedlab.personalization import Personalization
from fedlab.stragglers import Stragglers

Weights = list[np.ndarray]

# random stream ids of a run, one per purpose (none shared): fedlab.stragglers draws from 3,
# fedlab.secure_aggregation's protocol from 6
SAMPLING, BATCHES, COMPRESSION, NOISE = 1, 2, 4, 5


def stream(seed: int, *ids: int) -> np.random.Generator:
    """An independent generator for one purpose, e.g. ``(seed, NOISE, round)``.

    Example:
        >>> float(stream(0, NOISE, 1).random()) == float(stream(0, NOISE, 1).random())
        True
    """
    return np.random.default_rng(np.random.SeedSequence([seed, *ids]))


# -- divergence ------------------------------------------------------------------------------------


class DivergenceError(FloatingPointError):
    """Training diverged: a NaN or infinite loss or weight, or a loss that exploded (far above
    what a model guessing uniformly scores: see :data:`EXPLODED`).

    Attributes:
        round: the round in which it happened.
        clients: ids of the clients whose loss was not finite or exploded (all of the round's
            clients when only the aggregated weights were).
        history: the history up to the last good round (``None`` outside a simulation).
        reason: what was seen, in words.
    """

    def __init__(
        self,
        round_num: int,
        clients: Sequence[int],
        history=None,
        reason: str = "non-finite loss or weights",
    ):
        self.round = round_num
        self.clients = tuple(int(k) for k in clients)
        self.history = history
        self.reason = reason
        kept = (
            f"The history up to round {round_num - 1} is kept in error.history."
            if history is not None
            else "Nothing of this round was kept."
        )
        super().__init__(
            f"training diverged in round {round_num}: {reason} for client(s) "
            f"{list(self.clients)}; try a smaller client_lr. {kept}"
        )

    def with_history(self, history) -> DivergenceError:
        """The same error, carrying ``history`` (the engine's runs keep theirs)."""
        return DivergenceError(self.round, self.clients, history, self.reason)


# A client's mean training loss above EXPLODED × max(1, ln C) — C classes, ln C the cross-entropy of
# a uniform guess — has exploded: a learning rate far too large sends the logits to ±1e7 and more
# (round-1 losses of 1e7–1e29 were seen at client_lr 1e2–1e6), and the model never recovers
# (accuracy stuck at chance) although nothing is NaN yet.
EXPLODED = 100.0


def loss_limit(num_classes: int) -> float:
    """The training loss above which a client's loss has exploded: EXPLODED · max(1, ln C).

    Example:
        >>> round(loss_limit(10), 1)
        230.3
    """
    return EXPLODED * max(1.0, math.log(max(int(num_classes), 1)))


def check_losses(clients: Sequence[int], losses: Sequence[float], round_num: int, limit: float):
    """Raise :class:`DivergenceError` naming the clients whose loss is NaN/inf or above ``limit``.

    Example:
        >>> check_losses([3, 5], [0.7, float("nan")], 2, 230.0)
        Traceback (most recent call last):
        ...
        fedlab.rounds.DivergenceError: training diverged in round 2: non-finite loss or weights for client(s) [5]; try a smaller client_lr. Nothing of this round was kept.
    """
    clients, losses = np.asarray(clients), np.asarray(losses, float)
    bad = ~np.isfinite(losses)
    if bad.any():
        raise DivergenceError(round_num, clients[bad])
    exploded = losses > limit
    if exploded.any():
        raise DivergenceError(
            round_num,
            clients[exploded],
            reason=f"an exploding loss (up to {float(losses.max()):.3g}, where a uniform guess "
            f"scores {limit / EXPLODED:.3g})",
        )


# -- plan -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RoundPlan:
    """Who takes part in a round and how much each may do.

    Attributes:
        round_num: the round (1-based).
        selected: the sampled clients (sorted ids).
        clients: the selected clients that train and report (the stragglers the server does
            not wait for are left out).
        budgets: the local steps each of ``clients`` may take (``None``: all of its epochs).
        stragglers: the selected clients that straggled.
        dropped: the stragglers left out.
    """

    round_num: int
    selected: np.ndarray
    clients: np.ndarray
    budgets: np.ndarray | None
    stragglers: np.ndarray
    dropped: np.ndarray


def plan_round(
    algorithm,
    num_clients: int,
    clients_per_round: int,
    round_num: int,
    seed: int = 0,
    stragglers: Stragglers | None = None,
    num_examples: np.ndarray | None = None,
    max_local_steps: np.ndarray | None = None,
) -> RoundPlan:
    """Stage 1: sample the round's clients (the algorithm's sampler, e.g. Poisson for DP), plan
    the stragglers and cap every client's local steps at its compute budget.

    ``num_examples`` holds every client's example count (all N; stragglers' budgets depend on
    it); ``max_local_steps`` one budget per client (:func:`fedlab.stragglers.step_budgets`) or
    ``None``.

    Example:
        >>> from fedlab.algorithms import FedAvg
        >>> plan = plan_round(FedAvg(), 3, 3, 1, max_local_steps=np.array([1, 2, 9]))
        >>> plan.budgets.tolist()
        [1, 2, 9]
    """
    from fedlab.steps import sample_clients

    if stragglers is not None and not isinstance(stragglers, Stragglers):
        raise TypeError(
            "stragglers must be a fedlab Stragglers such as Stragglers(0.5) or None, "
            f"got {type(stragglers).__name__}"
        )
    selected = sample_clients(num_clients, clients_per_round, round_num, seed, algorithm)
    clients, budgets, straggling, dropped = selected, None, selected[:0], selected[:0]
    if stragglers is not None:
        if num_examples is None:
            raise ValueError("stragglers need num_examples: every client's example count")
        is_straggler, budgets = stragglers.plan(
            np.asarray(num_examples)[selected],
            algorithm.local_epochs,
            algorithm.batch_size,
            round_num,
            seed,
        )
        straggling = selected[is_straggler]
        if stragglers.drop:  # the server does not wait for them
            dropped, clients, budgets = straggling, selected[~is_straggler], budgets[~is_straggler]
    if max_local_steps is not None:
        cap = np.asarray(max_local_steps)[clients]
        budgets = cap if budgets is None else np.minimum(budgets, cap)
    return RoundPlan(round_num, selected, clients, budgets, straggling, dropped)


# -- the aggregator a run uses ----------------------------------------------------------------------


def compose(algorithm, secure_aggregation=None, share_masks: Weights | None = None) -> Aggregator:
    """The aggregator a run uses: the algorithm's, masked where clients share only part of the
    model (FedPer's head, multi-task heads), summed through ``secure_aggregation`` if given.

    A combination that cannot be honoured raises ValueError naming both parts.

    Example:
        >>> from fedlab.algorithms import FedAvg
        >>> from fedlab.secure_aggregation import SecureAggregation
        >>> compose(FedAvg(), SecureAggregation()).config()["summation"]["bits"]
        16
    """
    aggregator = algorithm.aggregator
    if share_masks is not None:
        if type(aggregator) is not WeightedMean:
            raise ValueError(
                f"{algorithm.name} shares only part of the model with some clients, which needs a "
                f"masked weighted mean; its aggregator {type(aggregator).__name__} has no masked form"
            )
        aggregator = MaskedMean(share_masks, aggregator.summation)
    if secure_aggregation is not None:
        try:
            aggregator = _through(aggregator, secure_aggregation)
        except ValueError as error:
            raise ValueError(f"{algorithm.name} with secure_aggregation: {error}") from None
    return aggregator


def check_composition(
    algorithm,
    *,
    clients_per_round: int,
    compression=None,
    secure_aggregation=None,
) -> None:
    """Refuse, before round 1, the feature pairs that cannot be honoured together; each error
    names both features and why. Every other pair composes (``tests/test_composition.py`` walks
    the whole table).

    Example:
        >>> from fedlab.algorithms import Scaffold
        >>> from fedlab.secure_aggregation import SecureAggregation
        >>> check_composition(Scaffold(), clients_per_round=5, secure_aggregation=SecureAggregation())
        Traceback (most recent call last):
        ...
        ValueError: SCAFFOLD with secure_aggregation: ...
    """
    check_round_size = getattr(algorithm.aggregator, "check_round_size", None)
    if check_round_size is not None:  # e.g. Krum needs more than 2f + 2 clients per round
        check_round_size(clients_per_round)
    sends = (algorithm.personalization or Personalization()).trains_global
    for name, feature in (("compression", compression), ("secure_aggregation", secure_aggregation)):
        if feature is not None and not sends:
            raise ValueError(
                f"{algorithm.name} with {name}: its clients send nothing (only their personal "
                f"models train), so {name} has nothing to act on; leave it out"
            )
    if secure_aggregation is None:
        return
    if clients_per_round < 2:
        raise ValueError(
            f"secure_aggregation needs at least 2 clients per round (it hides each update in "
            f"their sum), got clients_per_round={clients_per_round}"
        )
    if algorithm.client_state_init([np.zeros(1, np.float32)]):
        raise ValueError(
            f"{algorithm.name} with secure_aggregation: each client's state change (SCAFFOLD's "
            "Δc_k) would travel in the clear beside the masked updates, telling the server what "
            "secure aggregation hides; fedlab does not sum it securely"
        )


# -- upload -----------------------------------------------------------------------------------------


def upload(
    compression,
    deltas: Sequence[Weights],
    client_ids: Sequence[int],
    round_num: int,
    seed: int = 0,
    residuals: Mapping[int, Weights] | None = None,
) -> tuple[list[Weights], int, dict[int, Weights]]:
    """Stage 4: what reaches the server from each client: its update as float32 (``compression
    = None``), or encoded and decoded by the codec (:func:`fedlab.steps.compress_update`, a seeded
    stream per round and client) with any error-feedback residual. Returns the updates the
    server decodes, the bytes sent, and the clients' new residuals.

    Example:
        >>> sent, num_bytes, _ = upload(None, [[np.zeros(3, np.float32)]], [0], 1)
        >>> num_bytes
        12
    """
    from fedlab.steps import compress_update

    if compression is None:
        num_bytes = sum(4 * sum(np.size(d) for d in delta) for delta in deltas)
        return [list(delta) for delta in deltas], int(num_bytes), {}
    sent, num_bytes, kept = [], 0, {}
    for delta, k in zip(deltas, client_ids, strict=True):
        own = residuals[int(k)] if residuals is not None else ()
        decoded, size, residual = compress_update(compression, delta, round_num, int(k), seed, own)
        sent.append(decoded)
        num_bytes += size
        if residuals is not None:
            kept[int(k)] = residual
    return sent, int(num_bytes), kept


def stack(updates: Sequence[Weights], shapes: Sequence[tuple[int, ...]]) -> Weights:
    """One ``[K, ...]`` array per weight from K clients' lists (``[0, ...]`` arrays for K = 0)."""
    if not updates:
        return [np.zeros((0, *shape), np.float32) for shape in shapes]
    return [np.stack(column) for column in zip(*updates, strict=True)]


# -- aggregate and update ---------------------------------------------------------------------------


def aggregate(aggregator: Aggregator, state: dict, received: ClientUpdates) -> Aggregate:
    """Stage 5a: ``aggregator.apply`` with the round's own random stream (DP noise).

    Example:
        >>> received = ClientUpdates([np.array([[0.0], [4.0]])], [3, 1])
        >>> aggregate(WeightedMean(), {}, received).update[0].tolist()
        [1.0]
    """
    return aggregator.apply(state, received, stream(received.seed, NOISE, received.round_num))


@dataclass(frozen=True)
class ServerResult:
    """The server's half of a round.

    Attributes:
        weights: the next global weights (unchanged if nothing was aggregated).
        server_state: the server's next state.
        update: the aggregated update applied (zeros if none).
        changed: whether the server moved (False when nobody reported or the aggregator refused).
        metrics: the aggregator's numbers for the record.
        bytes_up: bytes the aggregation protocol took (secure aggregation), else ``None``.
    """

    weights: Weights
    server_state: dict
    update: Weights
    changed: bool
    metrics: dict = field(default_factory=dict)
    bytes_up: int | None = None


def server_update(
    algorithm,
    weights: Weights,
    server_state: dict,
    result: Aggregate | None,
    state_changes: Sequence[Weights],
    participation: float,
    round_num: int,
    clients: Sequence[int],
) -> ServerResult:
    """Stage 5b: the algorithm's server update on the aggregate (``None`` or a refused aggregate:
    nothing changes), with the mean of the clients' state changes (SCAFFOLD's Δc_k) and the
    fraction of clients that took part. Non-finite new weights raise :class:`DivergenceError`.

    Example:
        >>> from fedlab.algorithms import FedAvg
        >>> done = server_update(FedAvg(), [np.ones(1)], {}, Aggregate([np.array([2.0])]), [], 0.5, 1, [0])
        >>> done.weights[0].tolist(), done.changed
        ([3.0], True)
    """
    if result is None or result.update is None:  # nothing aggregated: the server stays put
        metrics = {} if result is None else result.metrics
        kept = [np.array(w, copy=True) for w in weights]
        zero = [np.zeros(np.shape(w), np.float32) for w in weights]
        return ServerResult(
            kept, server_state, zero, False, metrics, getattr(result, "bytes_up", None)
        )
    update = [np.asarray(a) for a in result.update]
    shapes = [np.shape(w) for w in weights]
    if [a.shape for a in update] != shapes:
        raise ValueError(
            f"the aggregated update must have the weights' shapes {shapes}, "
            f"got {[a.shape for a in update]}"
        )
    changes = [list(c) for c in state_changes]
    mean_change = [np.mean(column, axis=0) for column in zip(*changes, strict=True)]
    new_weights, new_state = algorithm.server_update(
        weights, update, server_state, mean_change, participation
    )
    if not all(np.all(np.isfinite(w)) for w in new_weights):
        raise DivergenceError(round_num, clients)
    return ServerResult(new_weights, new_state, update, True, result.metrics, result.bytes_up)


# -- record -----------------------------------------------------------------------------------------


def record(
    plan: RoundPlan,
    client_loss: Sequence[float],
    num_examples: Sequence[int],
    *,
    started: float,
    drift: Sequence[float] = (),
    cosine: Sequence[float] = (),
    client_steps: Sequence[int] = (),
    client_examples: Sequence[int] = (),
    clients: Sequence[int] | None = None,
    **fields,
) -> RoundRecord:
    """Stage 6: the round's :class:`~fedlab.history.RoundRecord`: the plan's clients, their
    losses (``train_loss`` their example-weighted mean), drift statistics and ``fields``
    (test numbers, bytes, the aggregator's metrics...). ``started``: ``time.perf_counter()`` at
    the round's start. ``clients`` overrides the plan's (the Flower server: those who replied).

    Example:
        >>> plan = RoundPlan(1, np.array([2]), np.array([2]), None, np.array([], int), np.array([], int))
        >>> r = record(plan, [0.5], [10], started=time.perf_counter(), test_loss=0.4, test_accuracy=0.9, bytes_down=0, bytes_up=0)
        >>> r.clients, r.train_loss
        ((2,), 0.5)
    """
    clients = plan.clients if clients is None else np.asarray(clients)
    loss = np.asarray(client_loss, float)
    drift = np.asarray(drift, float)
    some = len(clients) > 0
    return RoundRecord(
        round=plan.round_num,
        clients=tuple(int(k) for k in clients),
        client_loss=tuple(loss.tolist()),
        client_num_examples=tuple(int(n) for n in num_examples),
        train_loss=float(np.average(loss, weights=num_examples)) if some else float("nan"),
        client_drift=tuple(drift.tolist()),
        drift_mean=float(drift.mean()) if some and len(drift) else float("nan"),
        drift_max=float(drift.max()) if some and len(drift) else float("nan"),
        update_cosine=tuple(np.asarray(cosine, float).tolist()),
        wall_time=time.perf_counter() - started,
        stragglers=tuple(int(k) for k in plan.stragglers),
        dropped=tuple(int(k) for k in plan.dropped),
        client_steps=tuple(int(n) for n in client_steps),
        client_examples=tuple(int(n) for n in client_examples),
        **fields,
    )
