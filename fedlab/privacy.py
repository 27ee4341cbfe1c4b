"""User-level differential privacy for federated averaging: DP-FedAvg and its privacy budget
(``11_differential_privacy``).

DP-FedAvg (McMahan et al. 2018, "Learning Differentially Private Recurrent Language Models")
protects *every client's whole contribution*, not single examples:

1. **Poisson sampling.** Each round every client takes part independently with probability
   ``q`` (so the number of clients varies; ``q·N`` is expected). The privacy analysis needs it.
2. **Clipping.** Each client's update Δ_k is scaled down to L2 norm at most ``S``:
   ``Δ_k · min(1, S / ‖Δ_k‖)``. Now one client can move the sum by at most ``S``.
3. **Noise.** The server adds Gaussian noise of standard deviation ``z·S`` to the sum of the
   clipped updates (``z`` is the *noise multiplier*) and divides by the **expected** number of
   clients ``q·N`` — a fixed denominator, so that the divisor reveals nothing either.
4. **Accounting.** Each round is a Poisson-subsampled Gaussian mechanism; composing ``T`` of them
   gives (ε, δ)-DP. The ε is computed with Google's ``dp-accounting`` (RDP or PLD accountant),
   never with a hand-made formula: :func:`epsilon`, :class:`PrivacyAccountant`,
   :func:`calibrate_noise_multiplier`.

:class:`DPFedAvgAlgorithm` plugs steps 1–3 into the round's slots (sampling; aggregation, in
NumPy, vectorised over clients: :func:`dp_aggregate`); the engine (``fedlab.simulate``) and the
step functions run it alike, record ε after every round, and the clipping and noise statistics
(``clipped_fraction``, ``update_norm``, ``noise_norm``) in the History.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import ClassVar

import dp_accounting
import numpy as np
from dp_accounting.pld import pld_privacy_accountant
from dp_accounting.rdp import rdp_privacy_accountant

from fedlab.aggregators import GaussianSum, LocalGaussian
from fedlab.algorithms import Algorithm, ServerSGD
from fedlab.history import History
from fedlab.validate import check_choice, check_float, check_int

ACCOUNTANTS = ("rdp", "pld")
DEFAULT_DELTA = 1e-5


@contextmanager
def _quiet_absl() -> Iterator[None]:
    """dp-accounting logs an absl warning for every RDP order that does not converge."""
    logger = logging.getLogger("absl")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _check_rate(sampling_rate: float) -> float:
    return check_float("sampling_rate", sampling_rate, low=0.0, high=1.0, low_inclusive=False)


def _check_delta(delta: float) -> float:
    return check_float("delta", delta, low=0.0, high=1.0, low_inclusive=False, high_inclusive=False)


def _check_noise_needs_clip(noise_multiplier: float, clip_norm: float) -> None:
    """Noise is z·S: with S = ∞ it would be infinite. Refused when the algorithm is made, not
    after a round has trained."""
    if noise_multiplier > 0 and clip_norm == math.inf:
        raise ValueError(
            f"noise_multiplier={noise_multiplier} needs a finite clip_norm: the noise's standard "
            "deviation is noise_multiplier × clip_norm (use clip_norm=inf only with "
            "noise_multiplier=0)"
        )


def _check_clip(clip_norm: float) -> float:
    """S > 0; ``inf`` (no clipping) is allowed, for comparing with plain FedAvg."""
    if isinstance(clip_norm, int | float | np.floating) and clip_norm == math.inf:
        return math.inf
    return check_float("clip_norm", clip_norm, low=0.0, low_inclusive=False)


def round_event(noise_multiplier: float, sampling_rate: float) -> dp_accounting.DpEvent:
    """One round of DP-FedAvg as a ``dp-accounting`` event: a Poisson-sampled Gaussian.

    Example:
        >>> round_event(1.0, 0.1)
        PoissonSampledDpEvent(sampling_probability=0.1, event=GaussianDpEvent(noise_multiplier=1.0))
    """
    z = check_float("noise_multiplier", noise_multiplier, low=0.0)
    return dp_accounting.PoissonSampledDpEvent(
        _check_rate(sampling_rate), dp_accounting.GaussianDpEvent(z)
    )


def _make_accountant(accountant: str) -> dp_accounting.PrivacyAccountant:
    check_choice("accountant", accountant, ACCOUNTANTS)
    if accountant == "rdp":
        return rdp_privacy_accountant.RdpAccountant()
    return pld_privacy_accountant.PLDAccountant()


def epsilon(
    noise_multiplier: float,
    sampling_rate: float,
    num_rounds: int,
    delta: float = DEFAULT_DELTA,
    accountant: str = "rdp",
) -> float:
    """ε after ``num_rounds`` rounds of DP-FedAvg at ``delta`` (``inf`` without noise).

    Example:
        >>> round(epsilon(noise_multiplier=1.0, sampling_rate=0.1, num_rounds=100), 2)
        7.9
    """
    num_rounds = check_int("num_rounds", num_rounds, low=0)
    delta = _check_delta(delta)
    event = round_event(noise_multiplier, sampling_rate)
    if num_rounds == 0:
        return 0.0
    if noise_multiplier == 0:
        return math.inf
    if check_choice("accountant", accountant, ACCOUNTANTS) == "rdp":
        orders, one_round = _rdp_of_one_round(
            event.event.noise_multiplier, event.sampling_probability
        )
        return float(
            rdp_privacy_accountant.compute_epsilon(orders, num_rounds * one_round, delta)[0]
        )
    with _quiet_absl():
        acc = _make_accountant(accountant)
        acc.compose(event, num_rounds)
        return float(acc.get_epsilon(delta))


@functools.lru_cache(maxsize=256)
def _rdp_of_one_round(noise_multiplier: float, sampling_rate: float) -> tuple[tuple, np.ndarray]:
    """The Rényi-DP curve (orders, ε_α) of one round, computed once by dp-accounting.

    Computing it is the slow part (~0.1 s); composing T rounds multiplies it by T, which is
    exactly what ``RdpAccountant.compose(event, T)`` does, so ε after every round costs nothing.
    """
    with _quiet_absl():
        acc = rdp_privacy_accountant.RdpAccountant()
        acc.compose(round_event(noise_multiplier, sampling_rate), 1)
    return tuple(acc._orders), np.asarray(acc._rdp)  # noqa: SLF001 (its per-order RDP)


def calibrate_noise_multiplier(
    target_epsilon: float,
    sampling_rate: float,
    num_rounds: int,
    delta: float = DEFAULT_DELTA,
    accountant: str = "rdp",
) -> float:
    """The smallest noise multiplier z whose ε after ``num_rounds`` rounds is ``target_epsilon``.

    Uses ``dp_accounting.calibrate_dp_mechanism`` (a bracketing search over z).

    Example:
        >>> z = calibrate_noise_multiplier(target_epsilon=8.0, sampling_rate=0.1, num_rounds=100)
        >>> round(z, 2), epsilon(z, 0.1, 100) <= 8.0
        (0.99, True)
    """
    target = check_float("target_epsilon", target_epsilon, low=0.0, low_inclusive=False)
    num_rounds = check_int("num_rounds", num_rounds, low=1)
    delta = _check_delta(delta)
    rate = _check_rate(sampling_rate)
    check_choice("accountant", accountant, ACCOUNTANTS)
    with _quiet_absl():
        return float(
            dp_accounting.calibrate_dp_mechanism(
                lambda: _make_accountant(accountant),
                lambda z: dp_accounting.SelfComposedDpEvent(round_event(z, rate), num_rounds),
                target,
                delta,
                dp_accounting.LowerEndpointAndGuess(1e-3, 1.0),
            )
        )


class PrivacyAccountant:
    """ε so far, one round at a time: a ``dp-accounting`` accountant composing round events.

    Example:
        >>> acc = PrivacyAccountant(noise_multiplier=1.0, sampling_rate=0.1)
        >>> for _ in range(100):
        ...     _ = acc.step()
        >>> round(acc.epsilon(), 2) == round(epsilon(1.0, 0.1, 100), 2)
        True
    """

    def __init__(
        self,
        noise_multiplier: float,
        sampling_rate: float,
        delta: float = DEFAULT_DELTA,
        accountant: str = "rdp",
    ):
        self.event = round_event(noise_multiplier, sampling_rate)
        self.noise_multiplier = float(noise_multiplier)
        self.delta = _check_delta(delta)
        self.kind = check_choice("accountant", accountant, ACCOUNTANTS)
        self.num_rounds = 0
        self._accountant = _make_accountant(accountant)

    def step(self, num_rounds: int = 1) -> float:
        """Account for ``num_rounds`` more rounds; return ε so far."""
        num_rounds = check_int("num_rounds", num_rounds, low=1)
        if self.kind == "pld":  # (RDP composes by multiplying one round's curve: see epsilon)
            with _quiet_absl():
                self._accountant.compose(self.event, num_rounds)
        self.num_rounds += num_rounds
        return self.epsilon()

    def epsilon(self, delta: float | None = None) -> float:
        """ε after the rounds so far, at ``delta`` (default: the accountant's)."""
        if self.num_rounds == 0:
            return 0.0
        if self.noise_multiplier == 0:
            return math.inf
        delta = self.delta if delta is None else _check_delta(delta)
        if self.kind == "rdp":
            return epsilon(
                self.noise_multiplier, self.event.sampling_probability, self.num_rounds, delta
            )
        with _quiet_absl():
            return float(self._accountant.get_epsilon(delta))


@dataclass(frozen=True)
class DPStats:
    """What clipping and noise did in one round (numbers for the History).

    Attributes:
        clipped_fraction: share of the round's clients whose update was longer than ``S``
            (``nan`` with no clients).
        update_norm: ‖Σ clipped updates‖ / (q·N), the signal before noise.
        noise_norm: ‖noise‖ / (q·N), what the noise adds to the aggregate.
    """

    clipped_fraction: float
    update_norm: float
    noise_norm: float


def clip_updates(
    stacked_deltas: list[np.ndarray], clip_norm: float
) -> tuple[list[np.ndarray], np.ndarray]:
    """Scale each client's update (row k of every ``[K, ...]`` array) to L2 norm ≤ ``clip_norm``.

    The norm is over all of a client's weights together. Returns the clipped arrays and the
    norms before clipping. ``clip_norm=inf`` clips nothing.

    Example:
        >>> clipped, norms = clip_updates([np.array([[3.0, 4.0], [0.3, 0.4]])], clip_norm=1.0)
        >>> clipped[0].round(6).tolist(), norms.tolist()
        ([[0.6, 0.8], [0.3, 0.4]], [5.0, 0.5])
    """
    clip_norm = _check_clip(clip_norm)
    stacked = [np.asarray(d, np.float64) for d in stacked_deltas]
    num = stacked[0].shape[0] if stacked else 0
    norms = np.sqrt(
        sum(np.sum(d.reshape(num, d[0].size if num else 0) ** 2, axis=1) for d in stacked)
    )
    scale = np.minimum(1.0, clip_norm / np.maximum(norms, 1e-300))
    clipped = [d * scale.reshape(-1, *([1] * (d.ndim - 1))) for d in stacked]
    return clipped, norms


def dp_aggregate(
    stacked_deltas: list[np.ndarray],
    clip_norm: float,
    noise_multiplier: float,
    expected_clients: float,
    rng: np.random.Generator,
) -> tuple[list[np.ndarray], DPStats]:
    """DP-FedAvg's aggregate: (Σ_k clip(Δ_k) + N(0, (z·S)²·I)) / (q·N), vectorised over clients.

    ``stacked_deltas`` holds one ``[K, ...]`` array per weight (K may be 0: a round in which
    Poisson sampling picked nobody still adds noise). ``expected_clients`` is q·N, the fixed
    denominator. ``rng`` draws the noise (seeded per round by the caller).

    Example:
        >>> agg, stats = dp_aggregate([np.array([[3.0, 4.0]])], 1.0, 0.0, 2.0, np.random.default_rng(0))
        >>> [round(float(v), 6) for v in agg[0]], stats.clipped_fraction
        ([0.3, 0.4], 1.0)
    """
    noise_multiplier = check_float("noise_multiplier", noise_multiplier, low=0.0)
    expected = check_float("expected_clients", expected_clients, low=0.0, low_inclusive=False)
    clipped, norms = clip_updates(stacked_deltas, clip_norm)
    total = [d.sum(axis=0) for d in clipped]
    if noise_multiplier > 0 and math.isinf(clip_norm):
        raise ValueError("noise_multiplier > 0 needs a finite clip_norm (the noise is z·S)")
    return noisy_mean(total, norms, clip_norm, noise_multiplier, expected, rng)


def noisy_mean(
    total: list[np.ndarray],
    norms: np.ndarray,
    clip_norm: float,
    noise_multiplier: float,
    expected_clients: float,
    rng: np.random.Generator,
) -> tuple[list[np.ndarray], DPStats]:
    """The second half of :func:`dp_aggregate`: N(0, (z·S)²·I) added to ``total``, the sum of the
    clipped updates (however it was summed: plainly or through secure aggregation), divided by
    ``expected_clients``; ``norms`` are the updates' norms before clipping (for the stats).

    Example:
        >>> agg, stats = noisy_mean([np.array([2.0])], np.array([5.0, 0.5]), 1.0, 0.0, 4.0, np.random.default_rng(0))
        >>> agg[0].tolist(), stats.clipped_fraction
        ([0.5], 0.5)
    """
    expected = expected_clients
    std = noise_multiplier * clip_norm if noise_multiplier > 0 else 0.0
    noise = [
        rng.normal(0.0, 1.0, size=t.shape) * std if std > 0 else np.zeros(t.shape) for t in total
    ]
    aggregate = [((t + n) / expected).astype(np.float32) for t, n in zip(total, noise, strict=True)]
    stats = DPStats(
        clipped_fraction=float(np.mean(norms > clip_norm)) if len(norms) else math.nan,
        update_norm=float(np.sqrt(sum(np.sum(t**2) for t in total))) / expected,
        noise_norm=float(np.sqrt(sum(np.sum(n**2) for n in noise))) / expected,
    )
    return aggregate, stats


@dataclass(frozen=True)
class DPFedAvgAlgorithm(Algorithm):
    """FedAvg with user-level differential privacy (McMahan et al. 2018); see the module doc.

    ``clients_per_round`` (of :func:`fedlab.simulate`) is the *expected* number of clients:
    each of the N clients takes part with probability q = clients_per_round / N.

    Attributes:
        noise_multiplier: z, the noise's standard deviation in units of ``clip_norm`` (≥ 0).
        clip_norm: S, the largest L2 norm a client's update may have (> 0; ``inf``: no clip).
        delta: the δ at which ε is reported.
        accountant: ``"rdp"`` (Rényi DP; fast) or ``"pld"`` (privacy loss distributions; tighter).

    Example:
        >>> algo = DPFedAvgAlgorithm(noise_multiplier=1.0, clip_norm=0.5, name="DP-FedAvg")
        >>> algo.config()["noise_multiplier"], algo.make_accountant(0.1).delta
        (1.0, 1e-05)
    """

    noise_multiplier: float = 1.0
    clip_norm: float = 1.0
    delta: float = DEFAULT_DELTA
    accountant: str = "rdp"
    graph_is_fedavg: ClassVar[bool] = True  # the compiled client update is FedAvg's: shared

    def __post_init__(self):
        check_float("noise_multiplier", self.noise_multiplier, low=0.0)
        _check_clip(self.clip_norm)
        _check_noise_needs_clip(self.noise_multiplier, self.clip_norm)
        _check_delta(self.delta)
        check_choice("accountant", self.accountant, ACCOUNTANTS)
        object.__setattr__(self, "aggregator", self.default_aggregator())
        super().__post_init__()

    def default_aggregator(self) -> GaussianSum:
        """Clip to ``clip_norm``, sum, add N(0, (z·S)²), divide by the expected clients."""
        return GaussianSum(self.clip_norm, self.noise_multiplier)

    def sample_clients(
        self, num_clients: int, clients_per_round: int, rng: np.random.Generator
    ) -> np.ndarray:
        """Poisson sampling: each client independently with q = clients_per_round / num_clients."""
        q = clients_per_round / num_clients
        return np.flatnonzero(rng.random(num_clients) < q)

    def make_accountant(self, sampling_rate: float) -> PrivacyAccountant:
        """A fresh accountant for runs that sample clients at ``sampling_rate``."""
        return PrivacyAccountant(self.noise_multiplier, sampling_rate, self.delta, self.accountant)

    def config(self) -> dict:
        config = super().config()
        config.update(
            noise_multiplier=self.noise_multiplier,
            clip_norm=self.clip_norm,
            delta=self.delta,
            accountant=self.accountant,
        )
        return config


def DPFedAvg(  # noqa: N802 (named like the algorithm classes it builds)
    noise_multiplier: float = 1.0,
    clip_norm: float = 1.0,
    client_lr: float = 0.1,
    local_epochs: int = 1,
    batch_size: int | None = 20,
    server_lr: float = 1.0,
    delta: float = DEFAULT_DELTA,
    accountant: str = "rdp",
) -> DPFedAvgAlgorithm:
    """DP-FedAvg: Poisson-sampled clients, clipped updates, Gaussian noise, a real accountant.

    Example:
        >>> DPFedAvg(noise_multiplier=0.8, clip_norm=0.5).name
        'DP-FedAvg'
    """
    return DPFedAvgAlgorithm(
        local_epochs=local_epochs,
        batch_size=batch_size,
        client_lr=client_lr,
        server_optimizer=ServerSGD(server_lr),
        name="DP-FedAvg",
        noise_multiplier=noise_multiplier,
        clip_norm=clip_norm,
        delta=delta,
        accountant=accountant,
    )


def _with_local_noise(algorithm: DPFedAvgAlgorithm) -> LocalDPFedAvgAlgorithm:
    """The same settings, with the noise added on each client instead of on the sum."""
    settings = {f.name: getattr(algorithm, f.name) for f in dataclasses.fields(algorithm)}
    return LocalDPFedAvgAlgorithm(**{**settings, "name": "LDP-FedAvg"})


# ---------------------------------------------------------------------------- local DP (contrast)


def local_dp_aggregate(
    stacked_deltas: list[np.ndarray],
    clip_norm: float,
    noise_multiplier: float,
    rng: np.random.Generator,
) -> tuple[list[np.ndarray], DPStats]:
    """Local DP: every client clips its update and adds N(0, (z·S)²·I) itself; the server averages.

    The server (and anyone who sees a message) gets only noisy updates, so no trust in the
    server is needed. The price: K independent noises average to a noise of standard deviation
    ``z·S/√K`` per coordinate, where the central mechanism (:func:`dp_aggregate`) adds one noise
    to the sum and gets ``z·S/K`` — √K times less. ``stacked_deltas`` holds one ``[K, ...]`` array
    per weight; with K = 0 the aggregate is zero.

    Example:
        >>> agg, stats = local_dp_aggregate(
        ...     [np.array([[3.0, 4.0], [0.0, 0.0]])], 1.0, 0.0, np.random.default_rng(0)
        ... )
        >>> [round(float(v), 6) for v in agg[0]], stats.clipped_fraction
        ([0.3, 0.4], 0.5)
    """
    noise_multiplier = check_float("noise_multiplier", noise_multiplier, low=0.0)
    clipped, norms = clip_updates(stacked_deltas, clip_norm)
    std = noise_multiplier * clip_norm if noise_multiplier > 0 else 0.0
    if math.isinf(std):
        raise ValueError("noise_multiplier > 0 needs a finite clip_norm (the noise is z·S)")
    num = len(norms)
    if num == 0:
        zeros = [np.zeros(d.shape[1:], np.float32) for d in clipped]
        return zeros, DPStats(clipped_fraction=math.nan, update_norm=0.0, noise_norm=0.0)
    noise = [
        rng.normal(0.0, 1.0, size=d.shape) * std if std > 0 else np.zeros(d.shape) for d in clipped
    ]
    signal = [d.mean(axis=0) for d in clipped]
    noise_mean = [n.mean(axis=0) for n in noise]
    aggregate = [(s + n).astype(np.float32) for s, n in zip(signal, noise_mean, strict=True)]
    stats = DPStats(
        clipped_fraction=float(np.mean(norms > clip_norm)),
        update_norm=float(np.sqrt(sum(np.sum(s**2) for s in signal))),
        noise_norm=float(np.sqrt(sum(np.sum(n**2) for n in noise_mean))),
    )
    return aggregate, stats


@dataclass(frozen=True)
class LocalDPFedAvgAlgorithm(DPFedAvgAlgorithm):
    """FedAvg with *local* DP: each client noises its own clipped update (:func:`local_dp_aggregate`).

    Sampling is Poisson with q = clients_per_round / N, as for DP-FedAvg, but the server sees
    who sent, so sampling does not amplify privacy: the accountant composes one unsampled
    Gaussian (q = 1) every round — each client's ε if it took part in every round, against an
    observer who sees every noisy update it sends (the neighbouring relation: that client's data
    replaced).

    Example:
        >>> algo = LocalDPFedAvgAlgorithm(noise_multiplier=2.0, clip_norm=0.5, name="LDP-FedAvg")
        >>> algo.make_accountant(0.1).event.sampling_probability
        1.0
    """

    def default_aggregator(self) -> LocalGaussian:
        """Each client clips and noises its own update; the server averages."""
        return LocalGaussian(self.clip_norm, self.noise_multiplier)

    def make_accountant(self, sampling_rate: float) -> PrivacyAccountant:
        """An accountant with no sampling amplification (q = 1), whatever ``sampling_rate``."""
        return PrivacyAccountant(self.noise_multiplier, 1.0, self.delta, self.accountant)


def LocalDPFedAvg(  # noqa: N802 (named like the algorithm classes it builds)
    noise_multiplier: float = 1.0,
    clip_norm: float = 1.0,
    client_lr: float = 0.1,
    local_epochs: int = 1,
    batch_size: int | None = 20,
    server_lr: float = 1.0,
    delta: float = DEFAULT_DELTA,
    accountant: str = "rdp",
) -> LocalDPFedAvgAlgorithm:
    """FedAvg with local DP (noise added on each client); compare with :func:`DPFedAvg`.

    Example:
        >>> LocalDPFedAvg(noise_multiplier=2.0, clip_norm=0.5).name
        'LDP-FedAvg'
    """
    return _with_local_noise(
        DPFedAvg(
            noise_multiplier,
            clip_norm,
            client_lr,
            local_epochs,
            batch_size,
            server_lr,
            delta,
            accountant,
        )
    )


# ---------------------------------------------------------------------------- reading the runs


def noise_std(aggregate: list[np.ndarray]) -> float:
    """The standard deviation of all coordinates of an aggregate (one array per weight).

    On an aggregate of all-zero updates this is the noise's standard deviation on the average:
    z·S/K for :func:`dp_aggregate`, z·S/√K for :func:`local_dp_aggregate`.

    Example:
        >>> noise_std([np.array([1.0, -1.0]), np.array([[1.0], [-1.0]])])
        1.0
    """
    if not isinstance(aggregate, list | tuple) or not aggregate:
        raise ValueError("aggregate must be a non-empty list of arrays (one per weight)")
    return float(np.std(np.concatenate([np.ravel(a) for a in aggregate])))


def noise_to_signal(history: History) -> float:
    """Mean over rounds of ‖noise‖ / ‖signal‖ on the aggregate (``noise_norm / update_norm``).

    Rounds with no signal (``update_norm`` 0) are skipped; ``nan`` if no round has both
    numbers (e.g. a run without DP).

    Example:
        >>> import dataclasses
        >>> from fedlab.history import History, RoundRecord
        >>> r = RoundRecord(1, (0,), (0.5,), (5,), 0.5, 0.4, 0.5, (0.1,), 0.1, 0.1, (1.0,), 8, 8,
        ...                 0.01, update_norm=1.0, noise_norm=3.0)
        >>> noise_to_signal(History(rounds=[r, dataclasses.replace(r, round=2, update_norm=2.0)]))
        2.25
    """
    if not isinstance(history, History):
        raise ValueError(f"history must be a fedlab History, got {type(history).__name__}")
    if not len(history):
        return math.nan
    noise, signal = history.series("noise_norm"), history.series("update_norm")
    ok = np.isfinite(noise) & np.isfinite(signal) & (signal > 0)
    return float(np.mean(noise[ok] / signal[ok])) if ok.any() else math.nan


def dp_table(runs: Mapping[str, History]) -> str:
    """A text table of finished runs: final ε, final test accuracy, mean share clipped, and
    mean noise/signal (:func:`noise_to_signal`); ``-`` where a run has no such number.

    A run that recorded no ε (no DP) shows ε = inf.

    Example:
        >>> from fedlab.history import History, RoundRecord
        >>> r = RoundRecord(1, (0,), (0.5,), (5,), 0.5, 0.4, 0.5, (0.1,), 0.1, 0.1, (1.0,), 8, 8,
        ...                 0.01, epsilon=1.234, clipped_fraction=1.0, update_norm=1.0,
        ...                 noise_norm=2.0)
        >>> print(dp_table({"DP z = 1": History(rounds=[r])}))
        run                       ε  accuracy  clipped  noise/signal
        DP z = 1               1.23     0.500     1.00           2.0
    """
    if not isinstance(runs, Mapping) or not runs:
        raise ValueError("runs must be a non-empty mapping of name -> History")

    def number(value: float, fmt: str) -> str:
        return "-" if math.isnan(value) else format(value, fmt)

    lines = [f"{'run':<20}{'ε':>7}{'accuracy':>10}{'clipped':>9}{'noise/signal':>14}"]
    for name, history in runs.items():
        if not isinstance(history, History) or not len(history):
            raise ValueError(f"runs[{name!r}] must be a non-empty fedlab History")
        eps = history.epsilon[-1]
        clipped = history.clipped_fraction
        clipped = float(np.nanmean(clipped)) if np.isfinite(clipped).any() else math.nan
        lines.append(
            f"{name:<20}{'inf' if math.isnan(eps) else f'{eps:.2f}':>7}"
            f"{number(history.test_accuracy[-1], '.3f'):>10}{number(clipped, '.2f'):>9}"
            f"{number(noise_to_signal(history), '.1f'):>14}"
        )
    return "\n".join(lines)


@dataclass(frozen=True)
class SamplingRow:
    """Privacy at one number of clients per round K (one row of :func:`sampling_table`).

    Attributes:
        clients_per_round: K, the expected clients per round.
        sampling_rate: q = K / N.
        epsilon: ε after the run at the given noise multiplier.
        noise_multiplier: the z that gives exactly the target ε.
        noise_std: that z's noise std on the average, z·S/K.
    """

    clients_per_round: int
    sampling_rate: float
    epsilon: float
    noise_multiplier: float
    noise_std: float


def sampling_table(
    clients_per_round: Sequence[int],
    num_clients: int,
    num_rounds: int,
    clip_norm: float,
    target_epsilon: float,
    noise_multiplier: float = 1.0,
    delta: float = DEFAULT_DELTA,
) -> list[SamplingRow]:
    """For each K: ε at a fixed ``noise_multiplier``, and the z (and noise std z·S/K) that
    reach ``target_epsilon`` after ``num_rounds``, with q = K / ``num_clients`` (RDP).

    Example:
        >>> row = sampling_table([40], 400, 15, 0.5, target_epsilon=4.0)[0]
        >>> row.sampling_rate, round(row.epsilon, 2), round(row.noise_multiplier, 3)
        (0.1, 3.86, 0.983)
    """
    num_clients = check_int("num_clients", num_clients, low=1)
    num_rounds = check_int("num_rounds", num_rounds, low=1)
    clip_norm = check_float("clip_norm", clip_norm, low=0.0, low_inclusive=False)
    if not isinstance(clients_per_round, Sequence) or not clients_per_round:
        raise ValueError("clients_per_round must be a non-empty sequence of ints")
    rows = []
    for k in clients_per_round:
        k = check_int("clients_per_round", k, low=1, high=num_clients)
        q = k / num_clients
        z = calibrate_noise_multiplier(target_epsilon, q, num_rounds, delta)
        eps = epsilon(noise_multiplier, q, num_rounds, delta)
        rows.append(SamplingRow(k, q, eps, z, z * clip_norm / k))
    return rows


def format_sampling_table(rows: Sequence[SamplingRow]) -> str:
    """The rows of :func:`sampling_table` as a text table (K, q, ε, z for the target, z·S/K).

    Example:
        >>> print(format_sampling_table([SamplingRow(40, 0.1, 2.0, 0.8, 0.01)]))
            K      q    ε at z   z for target  noise std z·S/K
           40   0.10      2.00          0.800           0.0100
    """
    if not rows or not all(isinstance(r, SamplingRow) for r in rows):
        raise ValueError("rows must be a non-empty sequence of SamplingRow")
    lines = [f"{'K':>5}{'q':>7}{'ε at z':>10}{'z for target':>15}{'noise std z·S/K':>17}"]
    for r in rows:
        lines.append(
            f"{r.clients_per_round:>5}{r.sampling_rate:>7.2f}{r.epsilon:>10.2f}"
            f"{r.noise_multiplier:>15.3f}{r.noise_std:>17.4f}"
        )
    return "\n".join(lines)
