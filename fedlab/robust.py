"""Robust aggregation: defences against poisoned client updates (``15_poisoning_and_robust_aggregation``).

The weighted mean of :class:`~fedlab.aggregators.WeightedMean` has a breakdown point of 0: one
client that sends a huge update moves the aggregate as far as it likes. The aggregators here
replace the mean by a statistic a minority of bad updates cannot drag far. Each is an
:class:`~fedlab.aggregators.Aggregator` (``init``, ``apply``, ``config``) that goes in an
algorithm's aggregate slot, e.g. ``Algorithm(aggregator=Krum(num_byzantine=2))``.

K clients report; at most f of them (``num_byzantine``) are assumed malicious. Every defence
flattens each client's update into one vector (all weights concatenated), computes on the
``[K, d]`` matrix with NumPy over the client axis, and unflattens the result into the weights'
shapes:

==========================  ==================================================  =========================  ======================
defence                     computes                                            tolerates f bad of K       reference
==========================  ==================================================  =========================  ======================
:class:`CoordinateMedian`   each coordinate's median over the clients           f < K/2 (per coordinate)   Yin et al. 2018
:class:`TrimmedMean`        each coordinate's mean without its ⌊βK⌋ largest     f ≤ ⌊βK⌋, β < 1/2          Yin et al. 2018
                            and ⌊βK⌋ smallest values
:class:`Krum`               the update with the smallest sum of squared         K > 2f + 2                 Blanchard et al. 2017
                            distances to its K − f − 2 nearest others;
                            Multi-Krum: the mean of the m best-scored
:class:`Bulyan`             θ = K − 2f updates picked by repeated Krum, then    K ≥ 4f + 3                 El Mhamdi et al. 2018
                            per coordinate the mean of the β = θ − 2f values
                            closest to their median
:class:`NormClipping`       the weighted mean of the updates scaled to L2       no breakdown point:        Sun et al. 2019
                            norm ≤ C, optionally plus Gaussian noise            one client moves the
                                                                                mean ≤ C · n_k / Σ n
:class:`FLTrust`            the updates rescaled to the server's own update     any f, if the root         Cao et al. 2021
                            g0 (trained on a small clean root dataset),         data resemble the
                            weighted by ReLU(cos(Δ_k, g0))                      clients'
:class:`GeometricMedian`    the z minimising Σ n_k ‖z − Δ_k‖ (smoothed          less than half of          Pillutla et al. 2022
                            Weiszfeld iterations)                               the total weight
==========================  ==================================================  =========================  ======================

The guarantees are the papers' (bounded deviation from the honest updates' mean under their
assumptions: i.i.d. honest gradients for Krum, Bulyan, the median and the trimmed mean); none
of them holds for non-IID clients, where honest updates disagree too, and a defence may then
discard honest clients' work (notebook 15 measures this).

The median, the trimmed mean, Krum and Bulyan ignore the example counts the clients report:
a malicious client could report any count, and weighting by it would hand it the aggregate.
Multi-Krum averages its selected updates without weights by default (as Blanchard et al.);
``Krum(..., weighted=True)`` weights them by example counts, as Flower's ``MultiKrum`` does.

None of these compose with secure aggregation: the server must see each update to judge it,
and secure aggregation shows it only the sum, so
:func:`fedlab.aggregators.through` refuses them with a ValueError naming both (they define no
``through``). A selecting defence records the clients it used (``defence_kept``), norm
clipping the clients it scaled down (``defence_clipped``), FLTrust each client's trust score
(``trust_scores``): fields of :class:`~fedlab.history.RoundRecord`.

An update with a NaN or infinite entry counts as infinitely far from every other (Krum and
Bulyan never select it, FLTrust trusts it 0) and, coordinate by coordinate, as the largest value
(the median and the trimmed means drop it like any extreme value). Norm clipping and the
geometric median have no such reading: a non-finite update makes their aggregate non-finite,
and the round then stops with :class:`~fedlab.rounds.DivergenceError`.

Krum, Multi-Krum and Bulyan need enough clients per round: ``check_round_size(clients_per_round)``
raises a ValueError naming the bound before round 1; a round that ends up with fewer (stragglers
dropped) is refused by ``apply`` (``Aggregate(None, ...)``: the round changes nothing), never
aggregated some other way.

References: Blanchard, El Mhamdi, Guerraoui, Stainer, "Machine Learning with Adversaries:
Byzantine Tolerant Gradient Descent", NeurIPS 2017. Yin, Chen, Ramchandran, Bartlett,
"Byzantine-Robust Distributed Learning: Towards Optimal Statistical Rates", ICML 2018.
El Mhamdi, Guerraoui, Rouault, "The Hidden Vulnerability of Distributed Learning in
Byzantium", ICML 2018. Sun, Kairouz, Suresh, McMahan, "Can You Really Backdoor Federated
Learning?", 2019. Cao, Fang, Liu, Gong, "FLTrust: Byzantine-robust Federated Learning via Trust
Bootstrapping", NDSS 2021. Pillutla, Kakade, Harchaoui, "Robust Aggregation for Federated
Learning", IEEE TSP 2022.

Example:
    >>> received = ClientUpdates([np.array([[1.0], [2.0], [100.0]])], num_examples=[1, 1, 1])
    >>> CoordinateMedian().apply({}, received, np.random.default_rng(0)).update[0].tolist()
    [2.0]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from fedlab.aggregators import Aggregate, ClientUpdates, Weights
from fedlab.validate import check_array, check_float, check_int

# The server's own training on FLTrust's root data draws its mini-batches from the stream
# (seed, BATCHES, round, ROOT_CLIENT_ID), apart from every real client's (ids 0 .. N-1).
ROOT_CLIENT_ID = 2**31 - 1


# -- flat vectors ----------------------------------------------------------------------------------


def flatten_updates(updates: Sequence[np.ndarray]) -> np.ndarray:
    """The K clients' updates (one ``[K, ...]`` array per weight) as one ``[K, d]`` float64
    matrix: row k is client k's weights concatenated.

    Example:
        >>> flatten_updates([np.zeros((2, 2, 2)), np.ones((2, 3))]).tolist()
        [[0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0]]
    """
    if not updates:
        raise ValueError("updates must hold at least one [K, ...] array (one per weight)")
    k = np.shape(updates[0])[0]
    return np.concatenate([np.reshape(np.asarray(u, np.float64), (k, -1)) for u in updates], axis=1)


def unflatten(vector: np.ndarray, shapes: Sequence[tuple[int, ...]]) -> Weights:
    """One flat vector cut back into float32 arrays of ``shapes`` (the inverse of a row of
    :func:`flatten_updates`).

    Example:
        >>> [a.tolist() for a in unflatten(np.arange(5.0), [(2, 2), (1,)])]
        [[[0.0, 1.0], [2.0, 3.0]], [4.0]]
    """
    sizes = [math.prod(s) for s in shapes]
    if np.size(vector) != sum(sizes):
        raise ValueError(
            f"vector has {np.size(vector)} entries, the shapes {list(shapes)} need {sum(sizes)}"
        )
    pieces = np.split(np.asarray(vector), np.cumsum(sizes)[:-1])
    return [p.reshape(s).astype(np.float32) for p, s in zip(pieces, shapes, strict=True)]


def pairwise_distances(flat: np.ndarray) -> np.ndarray:
    """Squared L2 distances between the rows of ``flat`` ``[K, d]``, from one matrix product:
    ‖a − b‖² = ‖a‖² + ‖b‖² − 2 a·b, clipped at 0 (rounding), 0 on the diagonal, ``inf`` to and
    from a row with a NaN or infinite entry.

    Example:
        >>> pairwise_distances(np.array([[0.0, 0.0], [3.0, 4.0]])).tolist()
        [[0.0, 25.0], [25.0, 0.0]]
    """
    flat = np.asarray(flat, np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        gram = flat @ flat.T
        sq = np.diag(gram)
        distances = np.maximum(sq[:, None] + sq[None, :] - 2.0 * gram, 0.0)
    distances[np.isnan(distances)] = np.inf  # a non-finite update is infinitely far from all
    np.fill_diagonal(distances, 0.0)
    return distances


def krum_scores(distances: np.ndarray, num_neighbours: int) -> np.ndarray:
    """Each update's Krum score: the sum of its squared distances to its ``num_neighbours``
    nearest *other* updates (Krum uses K − f − 2). ``distances``: ``[K, K]`` from
    :func:`pairwise_distances`.

    Example:
        >>> d = pairwise_distances(np.array([[0.0], [1.0], [3.0]]))
        >>> krum_scores(d, 1).tolist()  # nearest other: 1, 1, 4
        [1.0, 1.0, 4.0]
    """
    k = len(distances)
    num_neighbours = check_int("num_neighbours", num_neighbours, low=0, high=max(k - 1, 0))
    if num_neighbours == 0:
        return np.zeros(k)
    others = np.array(distances, np.float64, copy=True)
    np.fill_diagonal(others, np.inf)
    return np.partition(others, num_neighbours - 1, axis=1)[:, :num_neighbours].sum(axis=1)


def _nan_last(flat: np.ndarray) -> np.ndarray:
    """``flat`` with NaN as +inf, so that a coordinate-wise sort puts it with the largest values
    (and a trimmed mean or a median drops it like any other extreme value)."""
    return np.where(np.isnan(flat), np.inf, flat)


def _ids(received: ClientUpdates, positions) -> tuple[int, ...]:
    """The client ids at ``positions`` of ``received``, as Python ints."""
    return tuple(int(received.client_ids[i]) for i in positions)


class _Robust:
    """What every defence here shares: no state, NumPy after the compiled round, nothing to do in
    a round nobody reported in, and (deliberately) no ``through``: see the module docstring."""

    in_graph = False
    acts_without_clients = False

    def init(self, weights: Weights) -> dict:
        """No state."""
        return {}


# -- coordinate-wise statistics ----------------------------------------------------------------------


@dataclass(frozen=True)
class CoordinateMedian(_Robust):
    """Each coordinate's median over the round's clients (Yin et al. 2018), unweighted: the
    example counts the clients report are ignored (a liar could claim any count).

    Fewer than half of the clients cannot move any coordinate outside the range of the honest
    clients' values. With an even K the median is the mean of the two middle values
    (``np.median``).

    Example:
        >>> received = ClientUpdates([np.array([[1.0, 5.0], [2.0, -9.0], [90.0, 6.0]]), np.array([[1.0], [3.0], [2.0]])], [1, 1, 1])
        >>> [u.tolist() for u in CoordinateMedian().apply({}, received, np.random.default_rng(0)).update]
        [[2.0, 5.0], [2.0]]
    """

    def apply(self, state: dict, received: ClientUpdates, rng: np.random.Generator) -> Aggregate:
        """The coordinate-wise median of ``received`` (refused when nobody reported)."""
        if received.num_clients == 0:
            return Aggregate(None, state)
        median = np.median(_nan_last(flatten_updates(received.updates)), axis=0)
        return Aggregate(unflatten(median, received.shapes()), state)

    def config(self) -> dict:
        """The settings, JSON-friendly."""
        return {"name": "CoordinateMedian"}


@dataclass(frozen=True)
class TrimmedMean(_Robust):
    """Each coordinate's mean after dropping its ⌊βK⌋ largest and ⌊βK⌋ smallest values over the
    K clients (Yin et al. 2018), unweighted.

    Up to ⌊βK⌋ malicious clients are trimmed away in every coordinate. ⌊βK⌋ is taken of the β
    you wrote: ``TrimmedMean(0.29)`` trims 29 of 100 clients, although the float ``0.29 * 100``
    is 28.999999999999996 (Flower's and SciPy's ``int(beta * K)`` trim 28). β = 0 is the plain
    unweighted mean.

    Attributes:
        beta: the fraction trimmed at each end, in [0, 0.5).

    Example:
        >>> received = ClientUpdates([np.array([[1.0], [2.0], [3.0], [4.0], [100.0]])], [1] * 5)
        >>> TrimmedMean(0.2).apply({}, received, np.random.default_rng(0)).update[0].tolist()  # mean of 2, 3, 4
        [3.0]
    """

    beta: float = 0.1

    def __post_init__(self):
        check_float("beta", self.beta, low=0.0, high=0.5, high_inclusive=False)

    def trimmed(self, num_clients: int) -> int:
        """⌊β·K⌋: how many values are dropped at each end of a coordinate for K clients.

        Example:
            >>> TrimmedMean(0.29).trimmed(100), int(0.29 * 100)
            (29, 28)
        """
        num_clients = check_int("num_clients", num_clients, low=0)
        return math.floor(Fraction(repr(float(self.beta))) * num_clients)

    def apply(self, state: dict, received: ClientUpdates, rng: np.random.Generator) -> Aggregate:
        """The coordinate-wise trimmed mean of ``received`` (refused when nobody reported)."""
        k = received.num_clients
        if k == 0:
            return Aggregate(None, state)
        cut = self.trimmed(k)
        flat = _nan_last(flatten_updates(received.updates))
        middle = np.partition(flat, (cut, k - cut - 1), axis=0)[cut : k - cut]
        return Aggregate(unflatten(middle.mean(axis=0), received.shapes()), state)

    def config(self) -> dict:
        """The settings, JSON-friendly."""
        return {"name": "TrimmedMean", "beta": float(self.beta)}


# -- selection ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Krum(_Robust):
    """Krum and Multi-Krum (Blanchard et al. 2017): keep the updates closest to their neighbours.

    Each update's score is the sum of its squared L2 distances to its K − f − 2 nearest other
    updates (f = ``num_byzantine``; all distances from one matrix product,
    :func:`pairwise_distances`). Krum (``num_selected=1``) returns the best-scored update
    itself; Multi-Krum (``num_selected=m > 1``) the mean of the m best-scored — unweighted as in
    the paper (a client's reported example count is not trusted), or weighted by example counts
    with ``weighted=True``, as Flower's ``MultiKrum`` and ``aggregate_krum`` do. Ties in the score
    go to the client received first.

    Needs K > 2f + 2 clients (and m ≤ K − f): :meth:`check_round_size` says so before a run; a
    round with fewer is refused (the round changes nothing). ``defence_kept``: the selected
    clients' ids, best score first.

    Attributes:
        num_byzantine: f, the number of malicious clients tolerated (≥ 0).
        num_selected: m, the number of updates kept (≥ 1; 1 is Krum).
        weighted: Multi-Krum's mean weighted by example counts (default: unweighted).

    Example:
        >>> received = ClientUpdates([np.array([[0.0], [1.0], [2.0], [50.0]])], [1] * 4, client_ids=[4, 5, 6, 7])
        >>> result = Krum(num_byzantine=0).apply({}, received, np.random.default_rng(0))
        >>> result.update[0].tolist(), result.metrics["defence_kept"]  # scores 1 + 4, 1 + 1, 1 + 4, ...
        ([1.0], (5,))
    """

    num_byzantine: int = 1
    num_selected: int = 1
    weighted: bool = False

    def __post_init__(self):
        check_int("num_byzantine", self.num_byzantine, low=0)
        check_int("num_selected", self.num_selected, low=1)
        if not isinstance(self.weighted, bool):
            raise TypeError(f"weighted must be True or False, got {self.weighted!r}")

    @property
    def _name(self) -> str:
        return "Krum" if self.num_selected == 1 else "Multi-Krum"

    def _too_few(self, num_clients: int) -> str | None:
        f, m = self.num_byzantine, self.num_selected
        if num_clients <= 2 * f + 2:
            return (
                f"{self._name} with num_byzantine={f} needs more than 2·{f} + 2 = {2 * f + 2} "
                f"clients per round, got {num_clients}"
            )
        if m > num_clients - f:
            return (
                f"{self._name} with num_selected={m} and num_byzantine={f} needs num_selected ≤ "
                f"clients per round − num_byzantine = {num_clients - f}, got {num_clients} "
                "clients per round"
            )
        return None

    def check_round_size(self, clients_per_round: int) -> None:
        """Raise a ValueError naming the bound unless ``clients_per_round`` > 2f + 2 (and
        ``num_selected`` ≤ clients_per_round − f).

        Example:
            >>> Krum(num_byzantine=3).check_round_size(6)
            Traceback (most recent call last):
            ...
            ValueError: Krum with num_byzantine=3 needs more than 2·3 + 2 = 8 clients per round, got 6
        """
        clients_per_round = check_int("clients_per_round", clients_per_round, low=1)
        problem = self._too_few(clients_per_round)
        if problem:
            raise ValueError(problem)

    def apply(self, state: dict, received: ClientUpdates, rng: np.random.Generator) -> Aggregate:
        """Krum's (or Multi-Krum's) choice among ``received``; refused if the round is too small."""
        k = received.num_clients
        if self._too_few(k):
            return Aggregate(None, state, {"defence_kept": ()})
        flat = flatten_updates(received.updates)
        scores = krum_scores(pairwise_distances(flat), k - self.num_byzantine - 2)
        chosen = np.argsort(scores, kind="stable")[: self.num_selected]
        if self.weighted:
            n = received.num_examples[chosen]
            update = n @ flat[chosen] / n.sum()
        else:
            update = flat[chosen].mean(axis=0)
        return Aggregate(
            unflatten(update, received.shapes()), state, {"defence_kept": _ids(received, chosen)}
        )

    def config(self) -> dict:
        """The settings, JSON-friendly."""
        return {
            "name": "Krum",
            "num_byzantine": int(self.num_byzantine),
            "num_selected": int(self.num_selected),
            "weighted": self.weighted,
        }


@dataclass(frozen=True)
class Bulyan(_Robust):
    """Bulyan (El Mhamdi et al. 2018): Krum to select, then a trimmed mean around the median.

    1. Select θ = K − 2f updates by repeated Krum: pick the best-scored update, remove it from
       the candidates, score the rest again (each time with max(1, K' − f − 2) neighbours among
       the K' candidates left, as Flower's ``aggregate_bulyan``: the last picks have fewer than
       f + 3 candidates), θ times.
    2. In every coordinate, average the β = θ − 2f selected values closest to their median.

    The last picks choose among few candidates with one neighbour each, so a tight pair of
    colluding updates can be among the θ selected; step 2 is what keeps them out of the result
    (it drops the 2f values farthest from the median in every coordinate). Flower's
    Message-API ``Bulyan`` strategy selects its θ in one Multi-Krum pass instead, which can pick
    a different set (``tests/test_flower_robust.py`` shows one).

    Needs K ≥ 4f + 3 (so β ≥ 3): :meth:`check_round_size` says so before a run; a round with
    fewer is refused. Unweighted. ``defence_kept``: the θ selected clients, in the order chosen.

    Attributes:
        num_byzantine: f, the number of malicious clients tolerated (≥ 0).

    Example:
        >>> received = ClientUpdates([np.array([[0.0], [1.0], [2.0], [3.0], [4.0], [5.0], [90.0]])], [1] * 7)
        >>> result = Bulyan(num_byzantine=1).apply({}, received, np.random.default_rng(0))
        >>> result.update[0].tolist(), sorted(result.metrics["defence_kept"])  # mean of 1, 2, 3
        ([2.0], [0, 1, 2, 3, 4])
    """

    num_byzantine: int = 1

    def __post_init__(self):
        check_int("num_byzantine", self.num_byzantine, low=0)

    def _too_few(self, num_clients: int) -> str | None:
        f = self.num_byzantine
        if num_clients < 4 * f + 3:
            return (
                f"Bulyan with num_byzantine={f} needs at least 4·{f} + 3 = {4 * f + 3} clients "
                f"per round, got {num_clients}"
            )
        return None

    def check_round_size(self, clients_per_round: int) -> None:
        """Raise a ValueError naming the bound unless ``clients_per_round`` ≥ 4f + 3.

        Example:
            >>> Bulyan(num_byzantine=2).check_round_size(10)
            Traceback (most recent call last):
            ...
            ValueError: Bulyan with num_byzantine=2 needs at least 4·2 + 3 = 11 clients per round, got 10
        """
        clients_per_round = check_int("clients_per_round", clients_per_round, low=1)
        problem = self._too_few(clients_per_round)
        if problem:
            raise ValueError(problem)

    def select(self, distances: np.ndarray) -> np.ndarray:
        """Step 1: the positions of the θ = K − 2f updates repeated Krum picks, in order.

        Example:
            >>> Bulyan(0).select(pairwise_distances(np.array([[5.0], [0.0], [1.0], [3.0]]))).tolist()
            [2, 0, 1, 3]
        """
        k, f = len(distances), self.num_byzantine
        left = np.arange(k)
        chosen = []
        for _ in range(k - 2 * f):
            sub = distances[np.ix_(left, left)]
            neighbours = min(max(1, len(left) - f - 2), len(left) - 1)
            best = int(np.argmin(krum_scores(sub, neighbours)))
            chosen.append(int(left[best]))
            left = np.delete(left, best)
        return np.array(chosen, np.int64)

    def apply(self, state: dict, received: ClientUpdates, rng: np.random.Generator) -> Aggregate:
        """Bulyan's aggregate of ``received``; refused if the round is too small."""
        k = received.num_clients
        if self._too_few(k):
            return Aggregate(None, state, {"defence_kept": ()})
        flat = flatten_updates(received.updates)
        chosen = self.select(pairwise_distances(flat))
        selected = _nan_last(flat[chosen])
        beta = len(chosen) - 2 * self.num_byzantine
        gap = np.abs(selected - np.median(selected, axis=0))
        closest = np.argpartition(gap, beta - 1, axis=0)[:beta]
        update = np.take_along_axis(selected, closest, axis=0).mean(axis=0)
        return Aggregate(
            unflatten(update, received.shapes()), state, {"defence_kept": _ids(received, chosen)}
        )

    def config(self) -> dict:
        """The settings, JSON-friendly."""
        return {"name": "Bulyan", "num_byzantine": int(self.num_byzantine)}


# -- bounding and weighting ----------------------------------------------------------------------------


@dataclass(frozen=True)
class NormClipping(_Robust):
    """Norm clipping (Sun et al. 2019, "Can you really backdoor FL?"): every update scaled to L2
    norm at most C = ``clip_norm``, then the example-weighted mean, plus optional Gaussian noise.

    ``Δ = Σ_k n_k · min(1, C/‖Δ_k‖) Δ_k / Σ_k n_k + N(0, σ²)`` per coordinate, σ = ``noise_std``
    (the paper's "weak DP"; drawn from the round's ``rng``, one standard normal array per
    weight). A boosted (scaled-up) malicious update is cut to norm C, so one client moves the
    mean at most C · n_k / Σ n — bounded, but only as well as the reported n_k are honest, and
    with no breakdown point: enough clipped attackers still steer the mean. No formal DP
    guarantee is claimed (use :class:`fedlab.privacy.DPFedAvg` for that). ``defence_clipped``:
    the clients whose norm exceeded C.

    Attributes:
        clip_norm: C (> 0).
        noise_std: σ (≥ 0; 0: no noise).

    Example:
        >>> received = ClientUpdates([np.array([[3.0, 4.0], [0.0, 1.0]])], [1, 1], client_ids=[8, 9])
        >>> result = NormClipping(clip_norm=1.0).apply({}, received, np.random.default_rng(0))
        >>> [round(v, 6) for v in result.update[0].tolist()], result.metrics["defence_clipped"]
        ([0.3, 0.9], (8,))
    """

    clip_norm: float = 1.0
    noise_std: float = 0.0

    def __post_init__(self):
        check_float("clip_norm", self.clip_norm, low=0.0, low_inclusive=False)
        check_float("noise_std", self.noise_std, low=0.0)

    def apply(self, state: dict, received: ClientUpdates, rng: np.random.Generator) -> Aggregate:
        """The clipped (and noised) weighted mean of ``received`` (refused when nobody reported)."""
        if received.num_clients == 0:
            return Aggregate(None, state, {"defence_clipped": ()})
        flat = flatten_updates(received.updates)
        norms = np.linalg.norm(flat, axis=1)
        scale = np.minimum(1.0, self.clip_norm / np.maximum(norms, np.finfo(np.float64).tiny))
        n = received.num_examples
        update = unflatten((n * scale) @ flat / n.sum(), received.shapes())
        if self.noise_std > 0:
            update = [
                (u + rng.normal(0.0, 1.0, size=u.shape) * self.noise_std).astype(np.float32)
                for u in update
            ]
        clipped = _ids(received, np.flatnonzero(norms > self.clip_norm))
        return Aggregate(update, state, {"defence_clipped": clipped})

    def config(self) -> dict:
        """The settings, JSON-friendly."""
        return {
            "name": "NormClipping",
            "clip_norm": float(self.clip_norm),
            "noise_std": float(self.noise_std),
        }


@dataclass(frozen=True, eq=False)
class FLTrust(_Robust):
    """FLTrust (Cao et al. 2021): the server trusts each update as far as it points where the
    server's own update on a small clean *root dataset* points.

    Each round the server trains the broadcast model (``received.global_weights``) on
    ``root_x, root_y`` with plain local SGD (:func:`fedlab.steps.local_update` with
    ``FedAvg(local_epochs, batch_size, client_lr)``, its batches drawn from the run's seed,
    the round and :data:`ROOT_CLIENT_ID`: deterministic), giving the server update g0. Then

    * trust ``TS_k = ReLU(cos(Δ_k, g0))``: an update pointing away from g0 counts for nothing;
    * each update rescaled to g0's norm, ``Δ̄_k = Δ_k · ‖g0‖ / ‖Δ_k‖`` (a boosted update gains
      nothing by its size);
    * ``Δ = Σ_k TS_k Δ̄_k / Σ_k TS_k``.

    An all-zero or non-finite update (or an all-zero g0) gets trust 0. When every trust score is
    0 the server trusts nobody: the aggregate is a zero update (plain FedAvg's server step then
    leaves the weights as they are; a server optimiser with momentum still takes its step).
    Example counts are ignored. ``trust_scores``: TS_k for each received client, in order. The Keras model is
    built once, on first use, and kept (not saved with the aggregator's state).

    Attributes:
        root_x: the server's root dataset's inputs (a few clean examples, ≥ 1).
        root_y: their labels (integers).
        model_fn: the run's model function (:mod:`fedlab.models`).
        client_lr: the server's local learning rate (> 0).
        local_epochs: passes over the root data per round (≥ 1).
        batch_size: mini-batch size (≥ 1), or ``None``: one full batch per epoch.
        ignore_class: targets of this class do not count in the server's loss (the keyboard
            data's padding, :data:`fedlab.keyboard.PAD`); ``None``: every target counts.

    Example:
        >>> from fedlab.models import logistic_regression
        >>> x = np.eye(4, dtype="float32"); y = np.array([0, 1, 0, 1])
        >>> agg = FLTrust(x, y, lambda: logistic_regression(2))
        >>> zero = [np.zeros((4, 2), "float32"), np.zeros(2, "float32")]
        >>> g = agg.server_update(zero, round_num=1, seed=0)
        >>> flipped = ClientUpdates([np.stack([g[0], -g[0]]), np.stack([g[1], -g[1]])], [1, 1], global_weights=zero)
        >>> [round(t, 6) for t in agg.apply({}, flipped, np.random.default_rng(0)).metrics["trust_scores"]]
        [1.0, 0.0]
    """

    root_x: np.ndarray = field(repr=False)
    root_y: np.ndarray = field(repr=False)
    model_fn: Callable
    client_lr: float = 0.1
    local_epochs: int = 1
    batch_size: int | None = None
    ignore_class: int | None = None
    _model: object = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self):
        x = check_array("root_x", self.root_x)
        y = check_array("root_y", self.root_y, dtype_kind="iu")
        if x.ndim < 1 or len(x) < 1:
            raise ValueError(f"root_x must hold at least one example, got shape {x.shape}")
        if len(x) != len(y):
            raise ValueError(
                f"root_x and root_y must have the same length, got {len(x)} and {len(y)}"
            )
        if not callable(self.model_fn):
            raise TypeError(
                "model_fn must be a function returning a Keras model, got "
                f"{type(self.model_fn).__name__}"
            )
        check_float("client_lr", self.client_lr, low=0.0, low_inclusive=False)
        check_int("local_epochs", self.local_epochs, low=1)
        if self.batch_size is not None:
            check_int("batch_size", self.batch_size, low=1)
        if self.ignore_class is not None:
            check_int("ignore_class", self.ignore_class, low=0)
        object.__setattr__(self, "root_x", x)
        object.__setattr__(self, "root_y", y)

    def __getstate__(self) -> dict:
        """Pickled without the cached Keras model (rebuilt on first use)."""
        return {**self.__dict__, "_model": None}

    def server_update(self, global_weights: Weights, round_num: int = 1, seed: int = 0) -> Weights:
        """g0: the server's own update, ``global_weights`` trained on the root data.

        Example:
            >>> from fedlab.models import logistic_regression
            >>> agg = FLTrust(np.eye(4, dtype="float32"), np.array([0, 1, 0, 1]), lambda: logistic_regression(2))
            >>> [g.shape for g in agg.server_update([np.zeros((4, 2), "float32"), np.zeros(2, "float32")])]
            [(4, 2), (2,)]
        """
        from fedlab.algorithms import FedAvg
        from fedlab.models import build_model
        from fedlab.steps import local_update

        if self._model is None:
            object.__setattr__(self, "_model", build_model(self.model_fn, self.root_x, seed=0))
        algorithm = FedAvg(
            local_epochs=self.local_epochs, batch_size=self.batch_size, client_lr=self.client_lr
        )
        weights = [np.asarray(w, np.float32) for w in global_weights]
        result = local_update(
            self._model,
            weights,
            self.root_x,
            self.root_y,
            algorithm,
            round_num=round_num,
            client_id=ROOT_CLIENT_ID,
            seed=seed,
            ignore_class=self.ignore_class,
        )
        return [np.asarray(d, np.float32) for d in result.delta]

    def apply(self, state: dict, received: ClientUpdates, rng: np.random.Generator) -> Aggregate:
        """FLTrust's aggregate of ``received`` (refused when nobody reported)."""
        if received.global_weights is None:
            raise ValueError(
                "FLTrust needs the broadcast model to train on its root data: this runner gave "
                "ClientUpdates(global_weights=None)"
            )
        if received.num_clients == 0:
            return Aggregate(None, state, {"trust_scores": ()})
        g0 = flatten_updates(
            [
                g[None]
                for g in self.server_update(
                    received.global_weights, received.round_num, received.seed
                )
            ]
        )[0]
        flat = flatten_updates(received.updates)
        if flat.shape[1] != g0.size:
            raise ValueError(
                f"the updates have {flat.shape[1]} entries per client, FLTrust's model "
                f"{g0.size}: model_fn must be the run's model"
            )
        g0_norm = float(np.linalg.norm(g0))
        norms = np.linalg.norm(flat, axis=1)
        usable = np.isfinite(norms) & (norms > 0) & (g0_norm > 0)
        flat = np.where(usable[:, None], flat, 0.0)  # no trust for zero or non-finite updates
        safe = np.where(usable, norms, 1.0)
        cosine = np.where(usable, flat @ g0 / (safe * max(g0_norm, 1e-300)), 0.0)
        trust = np.maximum(cosine, 0.0)
        total = trust.sum()
        if total > 0:
            rescaled = flat * (g0_norm / safe)[:, None]
            update = trust @ rescaled / total
        else:
            update = np.zeros(flat.shape[1])
        metrics = {"trust_scores": tuple(float(t) for t in trust)}
        return Aggregate(unflatten(update, received.shapes()), state, metrics)

    def config(self) -> dict:
        """The settings, JSON-friendly (the root data itself is not saved: its size is)."""
        return {
            "name": "FLTrust",
            "root_examples": int(len(self.root_y)),
            "client_lr": float(self.client_lr),
            "local_epochs": int(self.local_epochs),
            "batch_size": None if self.batch_size is None else int(self.batch_size),
            "ignore_class": None if self.ignore_class is None else int(self.ignore_class),
        }


@dataclass(frozen=True)
class GeometricMedian(_Robust):
    """The geometric median (RFA, Pillutla et al. 2022): the z minimising Σ_k n_k ‖z − Δ_k‖,
    by smoothed Weiszfeld iterations.

    Starting from the weighted mean, each iteration sets ``z ← Σ_k w_k Δ_k / Σ_k w_k`` with
    ``w_k = n_k / max(ν, ‖z − Δ_k‖)`` (ν = ``smoothing`` avoids dividing by 0 when z lands on an
    update), until the objective improves by less than ``tol`` times itself or after
    ``max_iterations``. Weighted by example counts as in RFA: clients holding less than half of
    the total weight cannot move it arbitrarily far — a liar about its count can claim more.

    Attributes:
        max_iterations: at most this many Weiszfeld steps (≥ 1).
        tol: relative improvement of the objective below which it stops (≥ 0).
        smoothing: ν (> 0).

    Example:
        >>> received = ClientUpdates([np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [90.0, 90.0]])], [1] * 4)
        >>> z = GeometricMedian().apply({}, received, np.random.default_rng(0)).update[0]
        >>> bool(np.all(np.abs(z) < 1.0))
        True
    """

    max_iterations: int = 100
    tol: float = 1e-6
    smoothing: float = 1e-6

    def __post_init__(self):
        check_int("max_iterations", self.max_iterations, low=1)
        check_float("tol", self.tol, low=0.0)
        check_float("smoothing", self.smoothing, low=0.0, low_inclusive=False)

    def median(self, flat: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """The smoothed Weiszfeld estimate of the weighted geometric median of the rows of
        ``flat`` ``[K, d]``.

        Example:
            >>> GeometricMedian().median(np.array([[0.0], [1.0], [10.0]]), np.ones(3)).round(3).tolist()
            [1.0]
        """
        weights = np.asarray(weights, np.float64)
        z = weights @ flat / weights.sum()

        def objective(point):
            return float(weights @ np.linalg.norm(flat - point, axis=1))

        value = objective(z)
        for _ in range(self.max_iterations):
            share = weights / np.maximum(self.smoothing, np.linalg.norm(flat - z, axis=1))
            z = share @ flat / share.sum()
            new_value = objective(z)
            if abs(value - new_value) <= self.tol * new_value:
                break
            value = new_value
        return z

    def apply(self, state: dict, received: ClientUpdates, rng: np.random.Generator) -> Aggregate:
        """The geometric median of ``received`` (refused when nobody reported)."""
        if received.num_clients == 0:
            return Aggregate(None, state)
        z = self.median(flatten_updates(received.updates), received.num_examples)
        return Aggregate(unflatten(z, received.shapes()), state)

    def config(self) -> dict:
        """The settings, JSON-friendly."""
        return {
            "name": "GeometricMedian",
            "max_iterations": int(self.max_iterations),
            "tol": float(self.tol),
            "smoothing": float(self.smoothing),
        }
