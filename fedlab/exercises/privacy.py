"""Checks for notebook 11's exercises (differential privacy): DP-FedAvg's aggregate written by
hand, ε and z from the accountant, local DP's noise against central DP's, and the runs of the
exercises. The aggregate's check names the classic DP mistakes: clipping after averaging,
scaling instead of clipping, noise of std z instead of z·S, noise on every client or on the
average, dividing by the clients that came instead of the expected number."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from fedlab.exercises.core import (
    CheckFailed,
    Mistake,
    call,
    diagnose,
    passed,
    require,
    same,
)

__all__ = [
    "check_calibrated_z",
    "check_dp_mean",
    "check_epsilon",
    "check_k_local",
    "check_local_std",
]


# --- exercise 1: DP-FedAvg's aggregate -------------------------------------------------------------

# (clients K, expected clients q·N, clip norm S, noise multiplier z): chosen so that every wrong
# noise law the check knows gives a noise std at least 20 % away from every other (the two laws
# of noise on every client excepted: they share a message)
_SETTINGS = [(9, 8.0, 0.25, 1.5), (16, 12.0, 0.125, 2.0), (25, 20.0, 0.4, 1.2)]
_SHAPES = [(40, 60), (60,)]


def _norm(update: Sequence[np.ndarray]) -> float:
    return float(np.sqrt(sum(np.sum(np.square(np.asarray(u, np.float64))) for u in update)))


def _clip(update: Sequence[np.ndarray], clip_norm: float) -> list[np.ndarray]:
    scale = min(1.0, clip_norm / max(_norm(update), 1e-300))
    return [np.asarray(u, np.float64) * scale for u in update]


def _total(updates: Sequence[Sequence[np.ndarray]]) -> list[np.ndarray]:
    return [np.sum(layer, axis=0) for layer in zip(*updates, strict=True)]


def _example_updates(seed: int | None):
    """Client updates with norms from well below to well above S that agree in direction (as
    real ones do), so that their sum is long too, and the round's settings."""
    k, expected, clip_norm, z = _SETTINGS[0 if seed is None else seed % len(_SETTINGS)]
    rng = np.random.default_rng(7 if seed is None else seed)
    common = [rng.normal(0.0, 1.0, s) for s in _SHAPES]
    norms = np.geomspace(0.2 * clip_norm, max(6.0 * clip_norm, 3.0), k)  # most clipped, by S or 1
    updates = []
    for target in rng.permutation(norms):
        own = [rng.normal(0.0, 1.0, s) * rng.uniform(0.5, 2.0) for s in _SHAPES]
        raw = [c / _norm(common) + 0.8 * o / _norm(own) for c, o in zip(common, own, strict=True)]
        raw[-1][0] += 0.7 * _norm(raw)  # one large coordinate (a bias, say)
        updates.append([u * (target / _norm(raw)) for u in raw])
    return updates, clip_norm, z, expected


def _noise_laws(k: int, expected: float, clip_norm: float, z: float) -> list[tuple[float, str]]:
    """(noise std on the result ÷ the right one, hint) for each wrong way to add the noise."""
    return [
        (
            np.sqrt(k),
            f"dp_mean noises every client's update ({k} draws per coordinate): their sum has "
            f"std z·S·√{k}, √{k} times the one draw the server adds to the sum. Noise on every "
            "client is local DP (section 7); central DP adds N(0, (z·S)²) once",
        ),
        (
            np.sqrt(k) * expected / k,
            f"dp_mean noises every client's update ({k} draws per coordinate) and averages "
            "them: that is local DP (section 7); central DP adds N(0, (z·S)²) once, to the sum",
        ),
        (
            expected,
            "dp_mean adds noise of std z·S to the *average*: that is expected_clients times "
            "too much. Add it to the sum and then divide (or add z·S / expected_clients to "
            "the average)",
        ),
        (
            1.0 / clip_norm,
            "dp_mean's noise has std z, not z·S: the noise multiplier is in units of the clip "
            "norm, because S bounds what one client can change (σ = z·S)",
        ),
        (
            expected / clip_norm,
            "dp_mean adds noise of std z to the average: the noise is z·S (in units of the "
            "clip norm), and on the sum, before dividing by expected_clients",
        ),
        (
            1.0 / expected,
            "dp_mean divides the noise by expected_clients twice (z·S / expected_clients "
            "added to the sum, then divided again): add z·S to the sum, or z·S / "
            "expected_clients to the average, not both",
        ),
        (
            z * clip_norm,
            "dp_mean uses the variance (z·S)² as rng.normal's scale: the scale is the standard "
            "deviation, z·S",
        ),
    ]


def check_dp_mean(dp_mean: Callable, seed: int | None = None) -> None:
    """Check ``dp_mean(updates, clip_norm, noise_multiplier, expected_clients, rng)``: DP-FedAvg's
    aggregate of a list of client updates (each a list of arrays), (Σ_k clip(Δ_k) + N(0,
    (z·S)² I)) / expected_clients, each client clipped to norm S as a whole.

    The check runs it twice: without noise (z = 0), where the result must be exact, then with
    noise, where it measures the std of what was added (so any order of drawing passes, and so
    does noise of std z·S / expected_clients added after dividing). It recognises: the stub;
    clipping after averaging; scaling every update to norm S (always dividing by the norm);
    clipping each layer on its own; no clipping; np.clip on the coordinates; dividing by
    the number of clients that sent instead of the expected number; the sum not divided; no
    noise; noise on every client; noise of std z·S on the average; std z instead of z·S; the
    noise divided twice; the variance as the std; ``rng`` ignored.

    Example:
        >>> def right(updates, clip_norm, noise_multiplier, expected_clients, rng):
        ...     clipped = [_clip(u, clip_norm) for u in updates]
        ...     total = _total(clipped)
        ...     std = noise_multiplier * clip_norm
        ...     return [(t + rng.normal(0.0, std, t.shape)) / expected_clients for t in total]
        >>> check_dp_mean(right)
        ✓ dp_mean clips each client's whole update to S, adds N(0, (z·S)²) once to the sum and divides by the expected number of clients
        >>> def scaled(updates, clip_norm, noise_multiplier, expected_clients, rng):
        ...     units = [[a * clip_norm / _norm(u) for a in u] for u in updates]
        ...     return right(units, clip_norm, noise_multiplier, expected_clients, rng)
        >>> check_dp_mean(scaled)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: dp_mean scales every update to norm S...
    """
    updates, clip_norm, z, expected = _example_updates(seed)
    k = len(updates)

    def run(noise_multiplier: float, rng_seed: int) -> list[np.ndarray]:
        given = [[a.copy() for a in u] for u in updates]
        rng = np.random.default_rng(rng_seed)
        got = call(dp_mean, "dp_mean", given, clip_norm, noise_multiplier, expected, rng)
        if isinstance(got, np.ndarray) or not isinstance(got, list | tuple):
            raise CheckFailed("dp_mean should return a list, one array per layer")
        if [np.shape(a) for a in got] != [np.shape(a) for a in updates[0]]:
            raise CheckFailed(
                f"dp_mean returns arrays shaped {[np.shape(a) for a in got]}; the updates' "
                f"layers are {[np.shape(a) for a in updates[0]]}"
            )
        return [np.asarray(a, np.float64) for a in got]

    signal = [t / expected for t in _total([_clip(u, clip_norm) for u in updates])]
    raw = _total(updates)
    per_layer = _total([[_clip([a], clip_norm)[0] for a in u] for u in updates])
    scaled = _total([[a * clip_norm / _norm(u) for a in u] for u in updates])
    unit = _total([_clip(u, 1.0) for u in updates])
    coordinates = _total([[np.clip(a, -clip_norm, clip_norm) for a in u] for u in updates])
    clean = run(0.0, 0)
    diagnose(
        clean,
        signal,
        [
            Mistake(
                _clip([r / expected for r in raw], clip_norm),
                "dp_mean clips after averaging: clip each client's update first, so that no "
                "client can move the sum by more than S, then sum and divide",
            ),
            Mistake(
                [r / expected for r in _clip(raw, clip_norm)],
                "dp_mean clips the sum: clip each client's update before summing, so that no "
                "client can move the sum by more than S",
            ),
            Mistake(
                [s / expected for s in scaled],
                "dp_mean scales every update to norm S (it always divides by the norm): short "
                "updates get longer. Clip: multiply by min(1, S / ‖Δ_k‖), which leaves updates "
                "shorter than S alone",
            ),
            Mistake(
                [p / expected for p in per_layer],
                "dp_mean clips each layer to S on its own: the norm is over all of a client's "
                "weights together (the whole update may then be up to √layers · S long)",
            ),
            Mistake(
                [r / expected for r in raw],
                "dp_mean does not clip the updates: scale each client's update by "
                "min(1, S / ‖Δ_k‖)",
            ),
            Mistake(
                [c / expected for c in coordinates],
                "dp_mean clips each coordinate to [−S, S] (np.clip): that bounds every number, "
                "not the update's norm. Scale each client's whole update by min(1, S / ‖Δ_k‖)",
            ),
            Mistake(
                [u / expected for u in unit],
                "dp_mean clips to norm 1: clip to clip_norm, S",
            ),
            Mistake(
                [s * expected / k for s in signal],
                f"dp_mean divides by the number of clients that sent ({k}): DP-FedAvg divides "
                f"by the expected number q·N (here {expected:g}), a fixed number, so that the "
                "divisor reveals nothing about who took part",
            ),
            Mistake(
                [s * expected for s in signal],
                "dp_mean returns the sum: divide it by expected_clients",
            ),
        ],
        "dp_mean without noise (z = 0) is not Σ_k clip(Δ_k) / expected_clients: clip each "
        "client's whole update to norm S, sum, divide by expected_clients",
        atol=1e-8,
    )
    noisy = run(z, 1)
    noise = np.concatenate([np.ravel(a - s) for a, s in zip(noisy, signal, strict=True)])
    if np.abs(noise).max() < 1e-12:
        raise CheckFailed(
            "dp_mean adds no noise: draw N(0, (z·S)²) per coordinate with rng.normal and add it "
            "to the sum"
        )
    if abs(noise.mean()) > 5 * noise.std() / np.sqrt(noise.size) + 1e-9:
        raise CheckFailed("the noise dp_mean adds is not centred: draw it with mean 0")
    ratio = float(noise.std()) / (z * clip_norm / expected)
    if abs(ratio - 1) > 0.1:
        for factor, hint in _noise_laws(k, expected, clip_norm, z):
            if abs(ratio / factor - 1) <= 0.1:
                raise CheckFailed(hint)
        raise CheckFailed(
            f"the noise dp_mean adds has std {ratio:.2f} times z·S / expected_clients: add "
            "N(0, (z·S)²) to the sum of the clipped updates, then divide"
        )
    if same(run(z, 2), noisy, atol=1e-12, rtol=0):
        raise CheckFailed(
            "dp_mean gives the same noise with another rng: draw it from the rng it is given"
        )
    passed(
        "dp_mean clips each client's whole update to S, adds N(0, (z·S)²) once to the sum and "
        "divides by the expected number of clients"
    )


# --- exercise 2: ε and z from the accountant -------------------------------------------------------


def check_epsilon(
    eps: Any,
    noise_multiplier: float,
    sampling_rate: float,
    num_rounds: int,
    delta: float,
    name: str = "eps_60",
    reference_rounds: int = 15,
) -> None:
    """Check ``eps``: ε after ``num_rounds`` rounds of DP-FedAvg at ``noise_multiplier`` and
    ``sampling_rate``, at ``delta``, from the accountant (RDP, or PLD's tighter bound).

    It recognises: the stub; the sampling rate forgotten (q = 1); ε of ``reference_rounds``
    rounds or of one round; ε scaled by hand from ``reference_rounds`` rounds (√T or linear);
    per-round ε added up over the rounds; ε at another noise multiplier (1.0).

    Example:
        >>> from fedlab import privacy
        >>> check_epsilon(privacy.epsilon(1.2, 0.1, 60, 1e-5), 1.2, 0.1, 60, 1e-5)
        ✓ eps_60 = 4.51: ε of 60 rounds at z = 1.2, q = 0.1 (RDP accountant)
        >>> check_epsilon(privacy.epsilon(1.2, 1.0, 60, 1e-5), 1.2, 0.1, 60, 1e-5)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: eps_60 = ... is ε without the sampling rate (q = 1)...
    """
    from fedlab.privacy import epsilon

    require(name, eps, "ask the accountant: fedlab.privacy.epsilon(z, q, rounds, delta)")
    try:
        value = float(eps)
    except (TypeError, ValueError):
        raise CheckFailed(f"{name} should be one number, ε; got {type(eps).__name__}") from None
    z, q, t = noise_multiplier, sampling_rate, num_rounds

    def eps_of(z_: float = z, q_: float = q, t_: int = t, accountant: str = "rdp") -> float:
        return epsilon(z_, q_, t_, delta, accountant=accountant)

    def close(a: float, b: float) -> bool:
        return math.isclose(a, b, rel_tol=1e-3)

    if close(value, eps_of()):
        passed(f"{name} = {value:.2f}: ε of {t} rounds at z = {z:g}, q = {q:g} (RDP accountant)")
        return
    if close(value, eps_of(accountant="pld")):
        passed(
            f"{name} = {value:.2f}: ε of {t} rounds at z = {z:g}, q = {q:g} (PLD accountant, "
            "tighter than the RDP that History.epsilon records)"
        )
        return
    ref = eps_of(t_=reference_rounds)
    mistakes = [
        (
            eps_of(q_=1.0),
            f"{name} = {value:.2f} is ε without the sampling rate (q = 1): each client takes "
            f"part in a round only with probability q = {q:g}, which amplifies privacy. Pass "
            "sampling_rate=q",
        ),
        (
            ref,
            f"{name} = {value:.2f} is ε after {reference_rounds} rounds: count all {t} "
            "(ε grows with every round)",
        ),
        (
            eps_of(t_=1),
            f"{name} = {value:.2f} is ε of one round: the accountant composes all {t} (num_rounds)",
        ),
        (
            ref * math.sqrt(t / reference_rounds),
            f"{name} = {value:.2f} scales ε of {reference_rounds} rounds by √(T ratio): a rule "
            f"of thumb, not a bound. Ask the accountant for {t} rounds",
        ),
        (
            ref * t / reference_rounds,
            f"{name} = {value:.2f} scales ε linearly with the rounds (basic composition): a "
            f"bound many times too loose. Ask the accountant for {t} rounds",
        ),
        (
            t * eps_of(t_=1),
            f"{name} = {value:.2f} adds up one round's ε {t} times (basic composition): a "
            f"bound many times too loose. Ask the accountant for {t} rounds",
        ),
        (
            eps_of(z_=1.0),
            f"{name} = {value:.2f} is ε at z = 1: this run's noise multiplier is {z:g}",
        ),
    ]
    for wrong, hint in mistakes:
        if close(value, wrong):
            raise CheckFailed(hint)
    raise CheckFailed(
        f"{name} = {value:.2f} is not ε of {t} rounds at z = {z:g}, q = {q:g}, δ = {delta:g}: "
        "fedlab.privacy.epsilon(z, q, rounds, delta)"
    )


def check_calibrated_z(
    z_by_rounds: Any,
    target_epsilon: float,
    sampling_rate: float,
    delta: float,
    rounds: Sequence[int] = (15, 60),
) -> None:
    """Check ``z_by_rounds``, ``{rounds: z}``: for each number of rounds, the noise multiplier
    whose ε after that many rounds is ``target_epsilon`` (calibrate_noise_multiplier).

    It recognises: the stub; a missing number of rounds; z calibrated without the sampling rate
    (q = 1); the z's swapped; the same z for every length; the z of the shorter run scaled by
    √(T ratio) by hand; a z whose ε misses the target otherwise.

    Example:
        >>> from fedlab import privacy
        >>> zs = {t: privacy.calibrate_noise_multiplier(4.0, 0.1, t, 1e-5) for t in (15, 60)}
        >>> check_calibrated_z(zs, 4.0, 0.1, 1e-5)
        ✓ z_by_rounds: z = 0.983 for 15 rounds, 1.28 for 60 rounds, each ε = 4 exactly
        >>> check_calibrated_z({15: zs[15], 60: zs[15]}, 4.0, 0.1, 1e-5)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: z_by_rounds gives every run the same z...
    """
    from fedlab.privacy import calibrate_noise_multiplier, epsilon

    require("z_by_rounds", z_by_rounds, "calibrate_noise_multiplier for each number of rounds")
    if not isinstance(z_by_rounds, Mapping) or any(t not in z_by_rounds for t in rounds):
        raise CheckFailed(
            f"z_by_rounds should be a dict with one z per number of rounds: keys {list(rounds)}"
        )
    zs = {t: float(z_by_rounds[t]) for t in rounds}
    if any(z <= 0 for z in zs.values()):
        raise CheckFailed("z_by_rounds has a noise multiplier ≤ 0: z must be positive")

    def hits(z: float, t: int, q: float = sampling_rate) -> bool:
        return math.isclose(epsilon(z, q, t, delta), target_epsilon, rel_tol=0.01)

    if all(hits(zs[t], t) for t in rounds):
        listed = ", ".join(f"{zs[t]:.3g} for {t} rounds" for t in rounds)
        passed(f"z_by_rounds: z = {listed}, each ε = {target_epsilon:g} exactly")
        return
    short, long = min(rounds), max(rounds)
    if all(hits(zs[t], t, 1.0) for t in rounds):
        raise CheckFailed(
            "z_by_rounds was calibrated without the sampling rate (q = 1): with q = "
            f"{sampling_rate:g} each client is in a round only with that probability, which "
            "needs far less noise"
        )
    if hits(zs[short], long) and hits(zs[long], short):
        raise CheckFailed(f"z_by_rounds has the z's of {short} and {long} rounds swapped")
    if math.isclose(zs[short], zs[long], rel_tol=1e-6):
        raise CheckFailed(
            "z_by_rounds gives every run the same z: a longer run spends ε in more rounds, so "
            "it needs more noise per round for the same ε"
        )
    z_short = calibrate_noise_multiplier(target_epsilon, sampling_rate, short, delta)
    if hits(zs[short], short) and math.isclose(
        zs[long], z_short * math.sqrt(long / short), rel_tol=0.01
    ):
        raise CheckFailed(
            f"z_by_rounds[{long}] is z of {short} rounds times √({long}/{short}): a rough rule. "
            "Ask the accountant: calibrate_noise_multiplier(target, q, rounds, delta)"
        )
    wrong = [t for t in rounds if not hits(zs[t], t)]
    raise CheckFailed(
        f"z_by_rounds[{wrong[0]}] = {zs[wrong[0]]:.3g} gives ε = "
        f"{epsilon(zs[wrong[0]], sampling_rate, wrong[0], delta):.2f} after {wrong[0]} rounds, "
        f"not {target_epsilon:g}: calibrate_noise_multiplier({target_epsilon:g}, q, "
        f"{wrong[0]}, delta)"
    )


# --- exercise 4: local DP at scale -----------------------------------------------------------------


def check_local_std(local_std: Any, clip_norm: float, noise_multiplier: float) -> None:
    """Check ``local_std``, ``{K: noise std on the average of K clients under local DP}``
    (measured with ``local_dp_aggregate`` on zero updates): z·S/√K each, within 10 %.

    It recognises: the stub; fewer than three K; central DP's z·S/K (``dp_aggregate``); one
    client's noise z·S, not averaged; std z/√K, the clip norm forgotten (σ instead of σ·S); the
    variance instead of the std.

    Example:
        >>> check_local_std({40: 0.079, 400: 0.025, 1600: 0.0125}, 0.5, 1.0)
        ✓ local_std: z·S/√K for K = 40, 400, 1600 (√K times central DP's z·S/K at the same K)
        >>> check_local_std({40: 0.0125, 400: 0.00125, 1600: 0.0003125}, 0.5, 1.0)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: local_std falls like 1/K: that is central DP's noise...
    """
    require("local_std", local_std, "the noise std of local_dp_aggregate on zeros, per K")
    if not isinstance(local_std, Mapping) or len(local_std) < 3:
        raise CheckFailed("local_std should be a dict {K: noise std} with at least three K")
    ks = sorted(local_std)
    try:
        got = np.array([float(local_std[k]) for k in ks])
        kk = np.array(ks, dtype=np.float64)
    except (TypeError, ValueError):
        raise CheckFailed("local_std should map each K to one number, the noise std") from None
    zs = noise_multiplier * clip_norm
    laws = [
        (zs / np.sqrt(kk), None),
        (
            zs / kk,
            "local_std falls like 1/K: that is central DP's noise (one draw on the sum, "
            "dp_aggregate). Measure privacy.local_dp_aggregate, where every client draws its own",
        ),
        (
            zs * np.ones_like(kk),
            "local_std does not fall with K: that is one client's noise, z·S. Measure the std "
            "of the average that local_dp_aggregate returns",
        ),
        (
            noise_multiplier / np.sqrt(kk),
            "local_std is z/√K: the noise std is z·S (σ·C), the noise multiplier times the "
            "clip norm. Pass clip_norm=CLIP_NORM to local_dp_aggregate",
        ),
        (
            zs**2 / np.sqrt(kk),
            "local_std is (z·S)²/√K: the variance where the standard deviation belongs",
        ),
    ]
    for law, hint in laws:
        if np.all(np.abs(got / law - 1) <= 0.1):
            if hint is not None:
                raise CheckFailed(hint)
            listed = ", ".join(f"{k:g}" for k in ks)
            passed(
                f"local_std: z·S/√K for K = {listed} (√K times central DP's z·S/K at the same K)"
            )
            return
    raise CheckFailed(
        "local_std is not the noise std on the average of local_dp_aggregate(zeros, S, z, rng) "
        "for each K (privacy.noise_std of the aggregate)"
    )


def check_k_local(k_local: Any, k_central: int) -> None:
    """Check ``k_local``: the number of clients per round at which local DP's noise std on the
    average, z·S/√K, equals central DP's at ``k_central`` clients, z·S/k_central: k_central².
    Within 10 % (a K read off a sweep passes).

    It recognises: the stub; K times √K (the ratio at k_central applied to K, not squared);
    twice k_central; √k_central.

    Example:
        >>> check_k_local(1600, 40)
        ✓ k_local = 1600: local DP needs k_central² clients per round for the noise of central DP with 40
        >>> check_k_local(253, 40)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: k_local = 253 multiplies 40 by the noise ratio √40...
    """
    require("k_local", k_local, "the K at which local DP's noise std equals central DP's at 40")
    try:
        value = float(k_local)
    except (TypeError, ValueError):
        raise CheckFailed(f"k_local should be a number, got {type(k_local).__name__}") from None
    expected = float(k_central) ** 2
    if math.isclose(value, expected, rel_tol=0.1):
        passed(
            f"k_local = {value:g}: local DP needs k_central² clients per round for the noise of "
            f"central DP with {k_central}"
        )
        return
    mistakes = [
        (
            k_central**1.5,
            f"k_local = {value:g} multiplies {k_central} by the noise ratio √{k_central}: local "
            f"noise falls like 1/√K, so K must grow by the *square* of that ratio",
        ),
        (2.0 * k_central, f"k_local = {value:g}: solve z·S/√K = z·S/{k_central} for K"),
        (
            math.sqrt(k_central),
            f"k_local = {value:g} is √{k_central}: solve z·S/√K = z·S/{k_central} for K",
        ),
    ]
    for wrong, hint in mistakes:
        if math.isclose(value, wrong, rel_tol=0.1):
            raise CheckFailed(hint)
    raise CheckFailed(
        f"k_local = {value:g}: at that K local DP's noise std z·S/√K is not central DP's "
        f"z·S/{k_central}"
    )
