"""The checks of notebook 11's exercises (fedlab/exercises/privacy.py): each passes the right
answer and names every DP mistake it anticipates with its own message, and fails on the stub."""

import numpy as np
import pytest

from fedlab import exercises, privacy
from fedlab.exercises import CheckFailed
from fedlab.exercises.privacy import _SETTINGS, _noise_laws


def fails(check, *args, match: str, **kwargs):
    with pytest.raises(CheckFailed, match=match):
        check(*args, **kwargs)


# --- exercise 1: DP-FedAvg's aggregate -----------------------------------------------------------


def norm(update):
    return np.sqrt(sum(np.sum(np.square(u)) for u in update))


def clip(update, s):
    return [u * min(1.0, s / norm(update)) for u in update]


def total(updates):
    return [np.sum(layer, axis=0) for layer in zip(*updates, strict=True)]


def aggregate(updates, s, z, e, rng, *, clipper=clip, std=None, divide=None):
    """Σ clipper(Δ_k) + N(0, std²), divided by ``divide`` (default: the right aggregate)."""
    sums = total([clipper(u, s) for u in updates])
    std = z * s if std is None else std
    divide = e if divide is None else divide
    return [(t + rng.normal(0.0, std, t.shape)) / divide for t in sums]


def right(updates, s, z, e, rng):
    return aggregate(updates, s, z, e, rng)


def noise_after_averaging(updates, s, z, e, rng):  # right too: σ·S/E on the average
    mean = [t / e for t in total([clip(u, s) for u in updates])]
    return [m + rng.normal(0.0, z * s / e, m.shape) for m in mean]


def per_client_noise(updates, s, z, e, rng):
    noised = [[a + rng.normal(0.0, z * s, a.shape) for a in clip(u, s)] for u in updates]
    return [t / e for t in total(noised)]


def clip_after(updates, s, z, e, rng):
    mean = [t / e for t in total(updates)]
    return [m + rng.normal(0.0, z * s / e, m.shape) for m in clip(mean, s)]


DP_MEAN_MISTAKES = {
    "clips after averaging": clip_after,
    "clips the sum": lambda u, s, z, e, rng: [
        (t + rng.normal(0, z * s, t.shape)) / e for t in clip(total(u), s)
    ],
    "clips after averaging: clip each": lambda u, s, z, e, rng: clip(  # the mean, clipped
        [t / len(u) + rng.normal(0, z * s / e, t.shape) for t in total(u)], s
    ),
    r"scales every update to norm S \(it always divides by the norm\)": lambda u, s, z, e, rng: (
        aggregate(u, s, z, e, rng, clipper=lambda d, s: [a * s / norm(d) for a in d])
    ),
    "clips each layer to S on its own": lambda u, s, z, e, rng: aggregate(
        u, s, z, e, rng, clipper=lambda d, s: [clip([a], s)[0] for a in d]
    ),
    "does not clip the updates": lambda u, s, z, e, rng: aggregate(
        u, s, z, e, rng, clipper=lambda d, s: d
    ),
    r"clips each coordinate to \[−S, S\] \(np.clip\)": lambda u, s, z, e, rng: aggregate(
        u, s, z, e, rng, clipper=lambda d, s: [np.clip(a, -s, s) for a in d]
    ),
    "clips to norm 1": lambda u, s, z, e, rng: aggregate(
        u, s, z, e, rng, clipper=lambda d, s: clip(d, 1.0), std=z * s
    ),
    "divides by the number of clients that sent": lambda u, s, z, e, rng: aggregate(
        u, s, z, e, rng, divide=len(u)
    ),
    "returns the sum": lambda u, s, z, e, rng: aggregate(u, s, z, e, rng, divide=1.0),
    "adds no noise": lambda u, s, z, e, rng: aggregate(u, s, 0.0, e, rng),
    "noises every client's update": per_client_noise,
    "adds noise of std z·S to the \\*average\\*": lambda u, s, z, e, rng: [
        t / e + rng.normal(0, z * s, t.shape) for t in total([clip(d, s) for d in u])
    ],
    "noise has std z, not z·S": lambda u, s, z, e, rng: aggregate(u, s, z, e, rng, std=z),
    "adds noise of std z to the average": lambda u, s, z, e, rng: [
        t / e + rng.normal(0, z, t.shape) for t in total([clip(d, s) for d in u])
    ],
    "divides the noise by expected_clients twice": lambda u, s, z, e, rng: aggregate(
        u, s, z, e, rng, std=z * s / e
    ),
    r"uses the variance \(z·S\)²": lambda u, s, z, e, rng: aggregate(
        u, s, z, e, rng, std=(z * s) ** 2
    ),
    "gives the same noise with another rng": lambda u, s, z, e, rng: right(
        u, s, z, e, np.random.default_rng(0)
    ),
    "return a list, one array per layer": lambda u, s, z, e, rng: right(u, s, z, e, rng)[0],
    "returns arrays shaped": lambda u, s, z, e, rng: right(u, s, z, e, rng)[:1],
    "returns None": lambda u, s, z, e, rng: None,
    "raised ZeroDivisionError": lambda u, s, z, e, rng: 1 / 0,
}


@pytest.mark.parametrize("seed", [None, 1, 2])
def test_dp_mean_names_each_classic_dp_mistake(seed, capsys):
    exercises.check_dp_mean(right, seed=seed)
    exercises.check_dp_mean(noise_after_averaging, seed=seed)  # σ·S/E after dividing is right
    assert capsys.readouterr().out.count("✓ dp_mean clips each client's whole update") == 2
    for message, wrong in DP_MEAN_MISTAKES.items():
        fails(exercises.check_dp_mean, wrong, seed=seed, match=message)


@pytest.mark.parametrize("settings", _SETTINGS)
def test_the_noise_laws_the_check_tells_apart_are_far_apart(settings):
    laws = _noise_laws(*settings)
    assert "every client" in laws[0][1] and "every client" in laws[1][1]  # one mistake, two laws
    factors = [1.0] + [factor for factor, _ in laws[1:]]
    for i, a in enumerate(factors):
        for b in factors[i + 1 :]:
            assert max(a, b) / min(a, b) > 1.2, (settings, a, b)


# --- exercise 2: ε and z from the accountant -----------------------------------------------------

Q, DELTA = 0.1, 1e-5


def test_epsilon_names_a_forgotten_sampling_rate_and_forgotten_rounds():
    right_eps = privacy.epsilon(1.2, Q, 60, DELTA)
    exercises.check_epsilon(right_eps, 1.2, Q, 60, DELTA)
    exercises.check_epsilon(privacy.epsilon(1.2, Q, 60, DELTA, accountant="pld"), 1.2, Q, 60, DELTA)
    eps_15 = privacy.epsilon(1.2, Q, 15, DELTA)
    mistakes = {
        r"without the sampling rate \(q = 1\)": privacy.epsilon(1.2, 1.0, 60, DELTA),
        "is ε after 15 rounds: count all 60": eps_15,
        "is ε of one round": privacy.epsilon(1.2, Q, 1, DELTA),
        "by √\\(T ratio\\)": 2 * eps_15,
        "scales ε linearly with the rounds": 4 * eps_15,
        "adds up one round's ε 60 times": 60 * privacy.epsilon(1.2, Q, 1, DELTA),
        "is ε at z = 1": privacy.epsilon(1.0, Q, 60, DELTA),
        "is not ε of 60 rounds": 3.0,
        "should be one number": "four",
        "eps_60 is still `...`": ...,
    }
    for message, wrong in mistakes.items():
        fails(exercises.check_epsilon, wrong, 1.2, Q, 60, DELTA, match=message)


def test_calibrated_z_names_q_one_swapped_equal_and_sqrt_t_noise():
    zs = {t: privacy.calibrate_noise_multiplier(4.0, Q, t, DELTA) for t in (15, 60)}
    exercises.check_calibrated_z(zs, 4.0, Q, DELTA)
    without_q = {t: privacy.calibrate_noise_multiplier(4.0, 1.0, t, DELTA) for t in (15, 60)}
    mistakes = {
        r"without the sampling rate \(q = 1\)": without_q,
        "swapped": {15: zs[60], 60: zs[15]},
        "same z": {15: zs[15], 60: zs[15]},
        r"times √\(60/15\)": {15: zs[15], 60: 2 * zs[15]},
        r"z_by_rounds\[60\] = 3 gives ε": {15: zs[15], 60: 3.0},
        "one z per number of rounds": {15: zs[15]},
        "z must be positive": {15: zs[15], 60: 0.0},
        "still `...`": ...,
    }
    for message, wrong in mistakes.items():
        fails(exercises.check_calibrated_z, wrong, 4.0, Q, DELTA, match=message)


# --- exercise 4: local DP at scale ---------------------------------------------------------------


def measured(aggregate_of, ks=(40, 160, 640)):
    return {k: privacy.noise_std(aggregate_of(k)) for k in ks}


def test_local_std_names_central_noise_one_client_and_a_forgotten_clip_norm():
    s, z = 0.5, 1.0

    def local(k, clip_norm=s):
        zeros = [np.zeros((k, 1000))]
        return privacy.local_dp_aggregate(zeros, clip_norm, z, np.random.default_rng(0))[0]

    def central(k):
        zeros = [np.zeros((k, 1000))]
        return privacy.dp_aggregate(zeros, s, z, k, np.random.default_rng(0))[0]

    exercises.check_local_std(measured(local), s, z)
    mistakes = {
        "that is central DP's noise": measured(central),
        "that is one client's noise": {k: z * s for k in (40, 160, 640)},
        r"is z/√K: the noise std is z·S \(σ·C\)": measured(lambda k: local(k, clip_norm=1.0)),
        r"\(z·S\)²/√K: the variance": {k: (z * s) ** 2 / np.sqrt(k) for k in (40, 160, 640)},
        "at least three K": {40: 0.079},
        "is not the noise std": {40: 0.2, 160: 0.01, 640: 0.3},
        "still `...`": ...,
    }
    for message, wrong in mistakes.items():
        fails(exercises.check_local_std, wrong, s, z, match=message)


def test_k_local_wants_the_square_of_the_central_k():
    exercises.check_k_local(1600, 40)
    exercises.check_k_local(1640.0, 40)  # read off a sweep
    mistakes = {
        "multiplies 40 by the noise ratio √40": 40 * np.sqrt(40),
        "solve z·S/√K = z·S/40 for K": 80,
        "is √40": np.sqrt(40),
        "is not central DP's": 400,
        "should be a number": "1600 clients",
        "still `...`": ...,
    }
    for message, wrong in mistakes.items():
        fails(exercises.check_k_local, wrong, 40, match=message)
