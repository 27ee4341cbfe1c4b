"""The aggregate slot: how the server combines a round's client updates (``01_one_round_by_hand``).

Every aggregation in fedlab goes through one protocol, :class:`Aggregator` — in the spirit of
fedjax's ``Aggregator(init, apply)`` and TensorFlow Federated's aggregation factories:

* ``init(weights) → state``;
* ``apply(state, received, rng) → Aggregate(update, state, metrics)``, where ``received`` is a
  :class:`ClientUpdates`: the round's K updates (one ``[K, ...]`` array per weight), their
  example counts, client ids and numbers of local steps τ_k; ``rng`` is the round's own stream
  for random numbers (DP noise);
* ``config()``: the settings, JSON-friendly.

The aggregators here are sums with something before and after — so *how the sum is computed*
is a stage of its own, the ``summation``: :class:`PlainSum` (the server adds what it receives)
or :class:`~fedlab.secure_aggregation.SecureAggregation` (the Bonawitz et al. protocol: the
server learns only the sum). Stages compose; a combination that cannot be honoured raises a
ValueError naming both parts, never a silent substitute:

=======================  ===============================================  =====================
aggregator               computes                                         through secure
                                                                          aggregation
=======================  ===============================================  =====================
:class:`WeightedMean`    Σ n_k Δ_k / Σ n_k (FedAvg)                       yes: the sum of
                                                                          (n_k / n_max) · Δ_k
:class:`MaskedMean`      each element over the clients that share it      yes: masks and counts
                         (FedPer's body, multi-task heads)                are public
:class:`FedNovaMean`     τ_eff · Σ p_k Δ_k / τ_k (FedNova)                yes: τ_k are public
:class:`GaussianSum`     (Σ clip(Δ_k) + N(0, (zS)²)) / (qN) (DP-FedAvg)   yes: distributed DP
:class:`LocalGaussian`   mean of clip(Δ_k) + N(0, (zS)²) per client       no: refuses
=======================  ===============================================  =====================

:class:`WeightedMean` with :class:`PlainSum` is also a TensorFlow function (``in_graph``): the
engine then computes it inside its compiled round; every other aggregator runs in NumPy after it.
Where a stage runs is the aggregator's business, not the engine's.

Example:
    >>> received = ClientUpdates([np.array([[1.0], [3.0]])], num_examples=[1, 3])
    >>> WeightedMean().apply({}, received, np.random.default_rng(0)).update[0].tolist()
    [2.5]
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
import tensorflow as tf

from fedlab.validate import check_float

Weights = list[np.ndarray]


@dataclass(frozen=True, eq=False)
class ClientUpdates:
    """What reached the server in one round, and what it knows about each sender.

    Attributes:
        updates: the K clients' updates as the server decoded them, one ``[K, ...]`` array per
            weight (K may be 0: nobody reported).
        num_examples: each client's number of training examples, ``[K]``.
        client_ids: which clients, ``[K]`` (default ``0 .. K-1``).
        local_steps: τ_k, the local SGD steps each client took, ``[K]`` (default 1 each).
        round_num: the round (1-based).
        expected_clients: the number of clients a round is meant to have (``clients_per_round``;
            DP-FedAvg's q·N denominator). Default: K.
        seed: the run's seed; secure aggregation draws its keys and masks from its own stream
            ``(seed, round_num)``, apart from ``rng`` (so it never changes a DP noise draw).
        global_weights: the weights the clients started from (the broadcast model), for
            aggregators that need the model itself (FLTrust trains it on its root data);
            ``None`` where the runner does not give them.

    Example:
        >>> ClientUpdates([np.zeros((2, 3))], [5, 7]).local_steps.tolist()
        [1, 1]
    """

    updates: Sequence[np.ndarray]
    num_examples: Sequence[float] | np.ndarray
    client_ids: Sequence[int] | np.ndarray | None = None
    local_steps: Sequence[int] | np.ndarray | None = None
    round_num: int = 1
    expected_clients: float | None = None
    seed: int = 0
    global_weights: Sequence[np.ndarray] | None = None

    def __post_init__(self):
        updates = [np.asarray(u) for u in self.updates]
        counts = np.asarray(self.num_examples, np.float64)
        if counts.ndim != 1:
            raise ValueError(f"num_examples must be one count per client, got shape {counts.shape}")
        k = len(counts)
        for i, u in enumerate(updates):
            if u.ndim < 1 or u.shape[0] != k:
                raise ValueError(
                    f"updates[{i}] must be a [K={k}, ...] array (one row per client), got "
                    f"shape {u.shape}"
                )
        ids = np.arange(k) if self.client_ids is None else np.asarray(self.client_ids, np.int64)
        steps = np.ones(k, np.int64) if self.local_steps is None else np.asarray(self.local_steps)
        for name, values in (("client_ids", ids), ("local_steps", steps)):
            if values.shape != (k,):
                raise ValueError(
                    f"{name} must hold one value per client (K={k}), got {values.shape}"
                )
        if k and np.any(steps < 1):
            raise ValueError(f"local_steps must all be >= 1, got {steps.tolist()}")
        expected = k if self.expected_clients is None else self.expected_clients
        object.__setattr__(self, "updates", updates)
        object.__setattr__(self, "num_examples", counts)
        object.__setattr__(self, "client_ids", ids)
        object.__setattr__(self, "local_steps", steps.astype(np.int64))
        object.__setattr__(self, "expected_clients", float(expected))

    @property
    def num_clients(self) -> int:
        """K, the number of updates received."""
        return len(self.num_examples)

    def shapes(self) -> list[tuple[int, ...]]:
        """The shape of one client's update, per weight."""
        return [tuple(u.shape[1:]) for u in self.updates]


@dataclass(frozen=True)
class Aggregate:
    """What an aggregator returns.

    Attributes:
        update: the aggregated update Δ (one array per weight), or ``None`` when the aggregator
            refused (secure aggregation: too few clients left): the round then changes nothing.
        state: the aggregator's new state.
        metrics: numbers for the round's :class:`~fedlab.history.RoundRecord` (field names:
            ``clipped_fraction``, ``noise_norm``, ``secure_dropped``...).
        bytes_up: bytes the aggregation protocol's own messages took (secure aggregation), or
            ``None`` when the updates travelled as sent.
    """

    update: Weights | None
    state: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    bytes_up: int | None = None


@runtime_checkable
class Aggregator(Protocol):
    """The aggregate slot: ``init``, ``apply`` and ``config``, plus two declarations.

    ``in_graph``: the aggregator is also a TensorFlow function ``agg(stacked, num_examples)``
    the engine may run inside its compiled round (only the plain weighted mean is).
    ``acts_without_clients``: ``apply`` must run even in a round nobody reported in (DP noise).

    Example:
        >>> isinstance(WeightedMean(), Aggregator), isinstance(np.mean, Aggregator)
        (True, False)
    """

    in_graph: bool
    acts_without_clients: bool

    def init(self, weights: Weights) -> dict: ...

    def apply(
        self, state: dict, received: ClientUpdates, rng: np.random.Generator
    ) -> Aggregate: ...

    def config(self) -> dict: ...


# -- summation stages ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Summed:
    """A summation stage's result: the sum (``None``: refused), which clients are in it, what
    the stage reports and the bytes its messages took (``None``: the updates as sent)."""

    total: Weights | None
    included: np.ndarray
    metrics: dict = field(default_factory=dict)
    bytes_up: int | None = None


@runtime_checkable
class Summation(Protocol):
    """How the server gets Σ_k x_k from the clients' ``[K, ...]`` arrays ``x``."""

    def sum(self, vectors: Weights, received: ClientUpdates) -> Summed: ...

    def config(self) -> dict: ...


@dataclass(frozen=True)
class PlainSum:
    """The server receives every update and adds them: it sees each one.

    Example:
        >>> PlainSum().sum([np.array([[1.0], [2.0]])], ClientUpdates([np.zeros((2, 1))], [1, 1])).total[0].tolist()
        [3.0]
    """

    def sum(self, vectors: Weights, received: ClientUpdates) -> Summed:
        """Σ over the client axis, in float64."""
        total = [np.asarray(v, np.float64).sum(axis=0) for v in vectors]
        return Summed(total, np.ones(received.num_clients, bool))

    def config(self) -> dict:
        """The settings, JSON-friendly."""
        return {"name": "PlainSum"}


def _check_summation(summation: object) -> None:
    if not isinstance(summation, Summation):
        raise TypeError(
            "summation must be PlainSum() or a SecureAggregation(...), got "
            f"{type(summation).__name__}"
        )


def _column(values: np.ndarray, array: np.ndarray) -> np.ndarray:
    """``values`` [K] shaped to broadcast against a ``[K, ...]`` array."""
    return np.reshape(values, (-1, *[1] * (np.ndim(array) - 1)))


def _weighted_total(
    summation: Summation, received: ClientUpdates, scale: np.ndarray, masks: Weights | None = None
) -> tuple[Summed, list]:
    """Σ_k scale_k · mask_k · Δ_k through ``summation``, and the matching Σ_k scale_k · mask_k
    over the clients that made it into the sum (public numbers: counts, τ_k and masks; one
    number per weight without masks, one array per weight with them)."""
    scaled, shares = [], []
    for j, u in enumerate(received.updates):
        u = np.asarray(u, np.float64)
        share = _column(scale, u) if masks is None else _column(scale, u) * masks[j]
        scaled.append(u * share)
        shares.append(np.broadcast_to(share, u.shape))
    summed = summation.sum(scaled, received)
    if summed.total is None:
        return summed, []
    kept = summed.included
    if masks is None:
        return summed, [float(np.asarray(scale)[kept].sum())] * len(scaled)
    return summed, [s[kept].sum(axis=0) for s in shares]


def through(aggregator: Aggregator, summation: Summation) -> Aggregator:
    """``aggregator`` with its sums computed by ``summation`` (secure aggregation), or a
    ValueError naming both when it cannot be (its result is not a sum, or it needs more).

    Example:
        >>> from fedlab.secure_aggregation import SecureAggregation
        >>> through(WeightedMean(), SecureAggregation()).in_graph
        False
    """
    _check_summation(summation)
    summable = getattr(aggregator, "through", None)
    if summable is None:
        raise ValueError(
            f"{type(aggregator).__name__} cannot run through {type(summation).__name__}: secure "
            "aggregation only gives the server a sum, and this aggregator needs the individual "
            "updates (or declares no `through`)"
        )
    return summable(summation)


# -- the aggregators -------------------------------------------------------------------------------


@dataclass(frozen=True)
class WeightedMean:
    """FedAvg's aggregate: the example-weighted mean of client updates, Σ_k n_k Δ_k / Σ_k n_k.

    With a :class:`~fedlab.secure_aggregation.SecureAggregation` ``summation`` client k sends
    ``(n_k / n_max) · Δ_k`` into the secure sum and the server divides by ``Σ n_k / n_max`` over
    the clients whose input arrived.

    Example:
        >>> agg = WeightedMean()
        >>> [float(v) for v in agg([np.array([[1.0], [3.0]])], np.array([1, 3]))[0]]
        [2.5]
    """

    summation: Summation = field(default_factory=PlainSum)
    acts_without_clients = False

    def __post_init__(self):
        _check_summation(self.summation)

    @property
    def in_graph(self) -> bool:
        """Only the plain sum runs inside the engine's compiled round."""
        return isinstance(self.summation, PlainSum)

    def __call__(self, stacked_deltas: list, num_examples) -> list[tf.Tensor]:
        """The plain mean in TensorFlow ops: ``stacked_deltas`` (one [K, ...] array per weight)
        weighted by ``num_examples`` [K]."""
        n = tf.cast(tf.convert_to_tensor(num_examples), tf.float32)
        share = n / tf.reduce_sum(n)
        return [tf.tensordot(share, tf.cast(d, tf.float32), axes=1) for d in stacked_deltas]

    def init(self, weights: Weights) -> dict:
        """No state."""
        return {}

    def apply(self, state: dict, received: ClientUpdates, rng: np.random.Generator) -> Aggregate:
        """The weighted mean of ``received`` (plain: the TensorFlow function above)."""
        if self.in_graph:
            mean = self(received.updates, received.num_examples)
            return Aggregate([np.asarray(m) for m in mean], state)
        n = received.num_examples
        summed, denominators = _weighted_total(self.summation, received, n / n.max())
        if summed.total is None:
            return Aggregate(None, state, summed.metrics, summed.bytes_up)
        mean = [(t / d).astype(np.float32) for t, d in zip(summed.total, denominators, strict=True)]
        return Aggregate(mean, state, summed.metrics, summed.bytes_up)

    def through(self, summation: Summation) -> WeightedMean:
        """The same mean, summed by ``summation``."""
        return dataclasses.replace(self, summation=summation)

    def config(self) -> dict:
        """The settings, JSON-friendly."""
        return {"name": "WeightedMean", "summation": self.summation.config()}


@dataclass(frozen=True, eq=False)
class MaskedMean:
    """Each weight element averaged over the clients that share it, weighted by examples:
    ``Σ_k m_k n_k Δ_k / Σ_k m_k n_k`` (0 where no client shares it).

    ``masks`` are 0/1 arrays, one per weight, shaped ``[1 or N, *weight.shape]`` (row k: client
    k's; one row: the same for everyone). FedPer: 0 on the head for everyone; multi-task FL: a
    task's head is 1 only for that task's clients (:mod:`fedlab.personalization`).

    Example:
        >>> agg = MaskedMean([np.array([[1.0, 1.0], [1.0, 0.0]])])
        >>> received = ClientUpdates([np.array([[1.0, 5.0], [3.0, 7.0]])], [1, 3])
        >>> agg.apply({}, received, np.random.default_rng(0)).update[0].tolist()
        [2.5, 5.0]
    """

    masks: Sequence[np.ndarray]
    summation: Summation = field(default_factory=PlainSum)
    in_graph = False
    acts_without_clients = False

    def __post_init__(self):
        _check_summation(self.summation)
        object.__setattr__(self, "masks", [np.asarray(m, np.float32) for m in self.masks])

    def rows(self, client_ids: np.ndarray) -> Weights:
        """The masks of these clients (one row each, or the shared row)."""
        return [m[client_ids] if len(m) > 1 else m for m in self.masks]

    def init(self, weights: Weights) -> dict:
        """No state."""
        return {}

    def apply(self, state: dict, received: ClientUpdates, rng: np.random.Generator) -> Aggregate:
        """The masked mean of ``received``."""
        masks = self.rows(received.client_ids)
        n = received.num_examples
        scale = n if isinstance(self.summation, PlainSum) else n / max(n.max(), 1.0)
        summed, denominators = _weighted_total(self.summation, received, scale, masks)
        if summed.total is None:
            return Aggregate(None, state, summed.metrics, summed.bytes_up)
        mean = [
            np.where(d > 0, t / np.where(d > 0, d, 1.0), 0.0).astype(np.float32)
            for t, d in zip(summed.total, denominators, strict=True)
        ]
        return Aggregate(mean, state, summed.metrics, summed.bytes_up)

    def through(self, summation: Summation) -> MaskedMean:
        """The same masked mean, summed by ``summation``."""
        return MaskedMean(self.masks, summation)

    def config(self) -> dict:
        """The settings, JSON-friendly (the masks themselves are not saved)."""
        return {"name": "MaskedMean", "summation": self.summation.config()}


@dataclass(frozen=True)
class FedNovaMean:
    """FedNova's normalised averaging (Wang et al. 2020): ``τ_eff · Σ_k p_k Δ_k / τ_k``.

    Client k took τ_k local steps; its update is divided by τ_k before averaging (weights
    p_k = n_k / Σ n), and the result is scaled back by τ_eff = Σ_k p_k τ_k. A client that ran
    more steps no longer pulls the model further towards its own optimum: FedAvg with unequal
    τ_k minimises Σ p_k τ_k F_k (the wrong objective), FedNova Σ p_k F_k. With equal τ_k it is
    :class:`WeightedMean`.

    Example:
        >>> received = ClientUpdates([np.array([[1.0], [4.0]])], [1, 1], local_steps=[1, 4])
        >>> FedNovaMean().apply({}, received, np.random.default_rng(0)).update[0].tolist()  # 2.5 · (1 + 1)/2
        [2.5]
    """

    summation: Summation = field(default_factory=PlainSum)
    in_graph = False
    acts_without_clients = False

    def __post_init__(self):
        _check_summation(self.summation)

    def init(self, weights: Weights) -> dict:
        """No state."""
        return {}

    def apply(self, state: dict, received: ClientUpdates, rng: np.random.Generator) -> Aggregate:
        """``τ_eff · Σ p_k Δ_k / τ_k`` over the clients in the sum."""
        n = received.num_examples
        tau = received.local_steps.astype(np.float64)
        scale = n / n.max()
        summed, _ = _weighted_total(self.summation, received, scale / tau)
        if summed.total is None:
            return Aggregate(None, state, summed.metrics, summed.bytes_up)
        kept = summed.included
        tau_eff = float(n[kept] @ tau[kept] / n[kept].sum())
        # Σ_k p_k Δ_k/τ_k = Σ_k (n_k/n_max) Δ_k/τ_k / Σ_k (n_k/n_max), over the clients summed
        norm = float(scale[kept].sum())
        mean = [(tau_eff * t / norm).astype(np.float32) for t in summed.total]
        return Aggregate(mean, state, summed.metrics, summed.bytes_up)

    def through(self, summation: Summation) -> FedNovaMean:
        """The same normalised mean, summed by ``summation`` (τ_k and n_k are public)."""
        return FedNovaMean(summation)

    def config(self) -> dict:
        """The settings, JSON-friendly."""
        return {"name": "FedNovaMean", "summation": self.summation.config()}


@dataclass(frozen=True)
class GaussianSum:
    """DP-FedAvg's aggregate (McMahan et al. 2018): ``(Σ_k clip(Δ_k) + N(0, (z·S)²·I)) / (q·N)``.

    Each client's update is clipped to L2 norm S = ``clip_norm``; the clipped updates are summed
    by ``summation``; Gaussian noise of standard deviation z·S = ``noise_multiplier ·
    clip_norm`` is added to the sum; the result is divided by the expected number of clients
    q·N (fixed, so one client's presence changes the result by at most S/(qN)).

    Through :class:`~fedlab.secure_aggregation.SecureAggregation` this is **distributed DP**:
    clients clip and send masked, quantised updates; the server learns only the sum of the
    clipped updates, adds the noise to that sum, and releases the model. The noise is the
    server's, drawn once from the round's stream — the same draw as central DP — so ε is
    unchanged (the same Gaussian mechanism on the same sum) and the result equals central
    DP-FedAvg up to secure aggregation's quantisation (at most K·step/2 per coordinate of the
    sum). The alternative, each client adding N(0, (zS)²/K) as a share of the noise, keeps the
    noise-free sum from the server too but loses noise with every client that drops out, so ε
    would have to be accounted for the fewest survivors the threshold allows; see
    :func:`fedlab.secure_aggregation.distributed_dp_sum` for it by hand.

    Attributes:
        clip_norm: S (> 0; ``inf``: no clipping, then ``noise_multiplier`` must be 0).
        noise_multiplier: z (≥ 0).

    Example:
        >>> received = ClientUpdates([np.array([[3.0, 4.0]])], [1], expected_clients=2)
        >>> agg = GaussianSum(clip_norm=1.0, noise_multiplier=0.0)
        >>> [round(float(v), 6) for v in agg.apply({}, received, np.random.default_rng(0)).update[0]]
        [0.3, 0.4]
    """

    clip_norm: float = 1.0
    noise_multiplier: float = 1.0
    summation: Summation = field(default_factory=PlainSum)
    in_graph = False
    acts_without_clients = True

    def __post_init__(self):
        from fedlab.privacy import _check_clip, _check_noise_needs_clip

        _check_clip(self.clip_norm)
        check_float("noise_multiplier", self.noise_multiplier, low=0.0)
        _check_noise_needs_clip(self.noise_multiplier, self.clip_norm)
        _check_summation(self.summation)
        clip = getattr(self.summation, "clip", None)
        if clip is not None and clip < self.clip_norm:
            raise ValueError(
                f"SecureAggregation(clip={clip}) would cut coordinates of updates DP-FedAvg "
                f"clipped to L2 norm clip_norm={self.clip_norm}: set SecureAggregation's clip "
                f"to at least {self.clip_norm} (every coordinate of a clipped update lies in "
                "[-clip_norm, clip_norm])"
            )

    def init(self, weights: Weights) -> dict:
        """No state."""
        return {}

    def apply(self, state: dict, received: ClientUpdates, rng: np.random.Generator) -> Aggregate:
        """Clip, sum (plainly or securely), add the noise, divide by ``expected_clients``."""
        from fedlab.privacy import clip_updates, dp_aggregate, noisy_mean

        if isinstance(self.summation, PlainSum):
            update, stats = dp_aggregate(
                received.updates,
                self.clip_norm,
                self.noise_multiplier,
                received.expected_clients,
                rng,
            )
            return Aggregate(update, state, dataclasses.asdict(stats))
        clipped, norms = clip_updates(received.updates, self.clip_norm)
        summed = self.summation.sum(clipped, received)
        if summed.total is None:  # too few clients for secure aggregation: nothing is released
            return Aggregate(None, state, summed.metrics, summed.bytes_up)
        update, stats = noisy_mean(
            summed.total,
            norms,
            self.clip_norm,
            self.noise_multiplier,
            received.expected_clients,
            rng,
        )
        metrics = {**summed.metrics, **dataclasses.asdict(stats)}  # DP's clipped_fraction wins
        return Aggregate(update, state, metrics, summed.bytes_up)

    def through(self, summation: Summation) -> GaussianSum:
        """Distributed DP: the same mechanism with the sum computed by ``summation``."""
        return dataclasses.replace(self, summation=summation)

    def config(self) -> dict:
        """The settings, JSON-friendly."""
        return {
            "name": "GaussianSum",
            "clip_norm": self.clip_norm,
            "noise_multiplier": self.noise_multiplier,
            "summation": self.summation.config(),
        }


@dataclass(frozen=True)
class LocalGaussian:
    """Local DP's aggregate: each client clips its update and adds N(0, (z·S)²·I) itself; the
    server averages the noisy updates (:func:`fedlab.privacy.local_dp_aggregate`).

    It refuses secure aggregation: a noisy update has no bounded range to quantise, and local
    DP needs no secure sum (each message already protects its sender).

    Example:
        >>> received = ClientUpdates([np.array([[3.0, 4.0], [0.0, 0.0]])], [1, 1])
        >>> agg = LocalGaussian(clip_norm=1.0, noise_multiplier=0.0)
        >>> [round(float(v), 6) for v in agg.apply({}, received, np.random.default_rng(0)).update[0]]
        [0.3, 0.4]
    """

    clip_norm: float = 1.0
    noise_multiplier: float = 1.0
    in_graph = False
    acts_without_clients = False

    def __post_init__(self):
        from fedlab.privacy import _check_clip, _check_noise_needs_clip

        _check_clip(self.clip_norm)
        check_float("noise_multiplier", self.noise_multiplier, low=0.0)
        _check_noise_needs_clip(self.noise_multiplier, self.clip_norm)

    def init(self, weights: Weights) -> dict:
        """No state."""
        return {}

    def apply(self, state: dict, received: ClientUpdates, rng: np.random.Generator) -> Aggregate:
        """The mean of the clients' noisy clipped updates."""
        from fedlab.privacy import local_dp_aggregate

        update, stats = local_dp_aggregate(
            received.updates, self.clip_norm, self.noise_multiplier, rng
        )
        return Aggregate(update, state, dataclasses.asdict(stats))

    def through(self, summation: Summation) -> LocalGaussian:
        """Refused: see the class docstring."""
        if isinstance(summation, PlainSum):
            return self
        raise ValueError(
            "LocalDPFedAvg cannot run through secure aggregation: each client's noisy update has "
            "no bounded range to quantise, and local DP needs no secure sum (the noise already "
            "protects every message). Use DPFedAvg with secure_aggregation for distributed DP."
        )

    def config(self) -> dict:
        """The settings, JSON-friendly."""
        return {
            "name": "LocalGaussian",
            "clip_norm": self.clip_norm,
            "noise_multiplier": self.noise_multiplier,
        }
