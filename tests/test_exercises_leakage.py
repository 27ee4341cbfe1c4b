"""The checks of notebook 10's exercises (fedlab/exercises/leakage.py): each passes the right
answer and names every mistake it anticipates with its own message, and fails on the stub."""

import numpy as np
import pytest

from fedlab import exercises
from fedlab.exercises import CheckFailed
from fedlab.exercises.leakage import _logits, _softmax, _start_distance
from fedlab.leakage import Defence, Inversion, Reconstruction, match_reconstructions


def fails(check, *args, match: str, **kwargs):
    with pytest.raises(CheckFailed, match=match):
        check(*args, **kwargs)


# a small MLP: 3 features, 4 hidden units, 3 classes
W0 = [
    np.array([[1.0, -1.0, 0.5, 0.2], [0.5, 2.0, -1.0, 0.3], [-0.4, 0.1, 0.8, -0.6]]),
    np.zeros(4),
    np.array([[1.0, 0.0, -0.5], [0.0, 1.0, 0.3], [1.0, -1.0, 0.0], [-0.2, 0.4, 1.0]]),
    np.zeros(3),
]


# --- exercise 1 ----------------------------------------------------------------------------------


def test_trained_weights_names_untrained_weights_updates_and_weak_models():
    x = np.eye(3)
    y = np.array([0, 1, 2])
    weights = [np.zeros((3, 3)), np.zeros(3)]
    trained = [4 * np.eye(3), np.zeros(3)]
    exercises.check_trained_weights(trained, weights, x, y)
    delta = [np.eye(3)[:, [1, 2, 0]], np.zeros(3)]  # wrong on every example on its own
    start = [t - u for t, u in zip(trained, delta, strict=True)]
    weak = [np.eye(3)[:, [0, 2, 1]], np.zeros(3)]  # two of three wrong
    mistakes = {
        "still `...`": (..., weights),
        "round-1 weights: nothing was trained": (weights, weights),
        "look like the update Δ": (delta, start),
        "score 0.33 on the test set: train longer": (weak, weights),
        "shaped like `weights`": (trained[:1], weights),
    }
    for message, (answer, reference) in mistakes.items():
        fails(exercises.check_trained_weights, answer, reference, x, y, match=message)

    class Simulation:
        weights = trained

    fails(exercises.check_trained_weights, Simulation(), weights, x, y, match="give its weights")


def right_bias_gradient(weights, x, y):
    p = _softmax(_logits(weights, x))
    return (p - np.eye(p.shape[1])[y]).mean(axis=0)


BIAS_MISTAKES = {
    "returns p, the softmax alone": lambda w, x, y: _softmax(_logits(w, x)).mean(axis=0),
    "wrong sign": lambda w, x, y: -right_bias_gradient(w, x, y),
    "uses the logits as they are": lambda w, x, y: (_logits(w, x) - np.eye(len(w[-1]))[y]).mean(
        axis=0
    ),
    "sums over the examples": lambda w, x, y: len(x) * right_bias_gradient(w, x, y),
    "one row per example": lambda w, x, y: _softmax(_logits(w, x)) - np.eye(len(w[-1]))[y],
    r"across the examples \(axis=0\)": lambda w, x, y: (
        _softmax(_logits(w, x), axis=0) - np.eye(len(w[-1]))[y]
    ).mean(axis=0),
    "returns None": lambda w, x, y: None,
}


@pytest.mark.parametrize("seed", [None, 1, 4])
def test_last_bias_gradient_names_a_missing_one_hot_the_sign_and_the_sum(seed):
    exercises.check_last_bias_gradient(right_bias_gradient, seed=seed)
    for message, wrong in BIAS_MISTAKES.items():
        fails(exercises.check_last_bias_gradient, wrong, seed=seed, match=message)


def scored(w, x, y, defence=None, error=0.0, seed=0):
    """The Reconstruction leakage.attack would return at ``w`` if it rebuilt ``x`` exactly."""
    curve = np.array([_start_distance(w, x, y, seed), 0.0])
    errors = np.full(len(x), error)
    return Reconstruction(x, y, x, y, errors, curve, defence or Defence())


def test_trained_attack_names_the_round_one_weights_and_other_attacks():
    trained = [w + 0.3 for w in W0]
    x, y = np.array([[0.3, 0.8, 0.1]]), np.array([1])
    exercises.check_trained_attack(scored(trained, x, y), trained, W0, x, y)
    exercises.check_trained_attack(scored(trained, x, y, seed=3), trained, W0, x, y)  # own seed
    two = np.array([[0.3, 0.8, 0.1], [0.5, 0.5, 0.5]])
    mistakes = {
        "attacked `weights`, the round-1 model": scored(W0, x, y),
        "invert_gradient's Inversion": Inversion(x, y, np.zeros(2)),
        "2 other example": scored(trained, two, np.array([1, 0])),
        "this exercise wants no defence": scored(trained, x, y, Defence(noise_std=0.1)),
        "is a list": [x],
        "still `...`": ...,
    }
    for message, wrong in mistakes.items():
        fails(exercises.check_trained_attack, wrong, trained, W0, x, y, match=message)


# --- exercise 2 ----------------------------------------------------------------------------------


def test_known_labels_names_inferred_labels_and_unmatched_errors():
    rng = np.random.default_rng(0)
    x, y = rng.uniform(size=(4, 6)), np.array([3, 9, 1, 3])
    found = x[[2, 0, 3, 1]] + rng.normal(0, 0.05, (4, 6))
    known = Inversion(found, y[[2, 0, 3, 1]], np.zeros(3))
    order, errors = match_reconstructions(x, found)
    exercises.check_known_labels(known, errors, x, y)
    exercises.check_known_labels(known, errors.tolist(), x, y)
    inferred = Inversion(found, np.array([1, 2, 3, 9]), np.zeros(3))
    mistakes = {
        "used the labels \\[1, 2, 3, 9\\]": (inferred, errors),
        "pairs row i of x with row i": (known, np.mean((found - x) ** 2, axis=1)),
        "is one number": (known, errors.mean()),
        "sums the squared errors": (known, 6 * errors),
        "root mean squared": (known, np.sqrt(errors)),
        "rebuilt 3 examples": (Inversion(found[:3], y[:3], np.zeros(2)), errors),
        "attack's Reconstruction": (scored(W0, x[:, :3], y % 3), errors),
        "known is still `...`": (..., errors),
        "known_errors is still `...`": (known, ...),
    }
    for message, (answer, answer_errors) in mistakes.items():
        fails(exercises.check_known_labels, answer, answer_errors, x, y, match=message)


# --- exercise 3 ----------------------------------------------------------------------------------

GOOD_MSE = {
    3: [0.015, 0.020, 0.017],
    4: [0.028, 0.025, 0.078],
    5: [0.052, 0.090, 0.075],
    6: [0.058, 0.093, 0.32],
    7: [0.078, 0.075, 0.33],
}


def test_threshold_mse_names_psnr_one_seed_and_mis_scaled_noise():
    exercises.check_threshold_mse(GOOD_MSE)
    psnr = {r: [10 * np.log10(1 / v) for v in values] for r, values in GOOD_MSE.items()}
    mistakes = {
        "same MSE at every ratio": {r: [v[0]] * 3 for r, v in GOOD_MSE.items()},
        "PSNRs in dB": psnr,
        "there is no noise": {r: [1e-15, 2e-15, 3e-16] for r in GOOD_MSE},
        "every attack fails, even at ratio 3": {r: [0.2, 0.3, 0.25] for r in GOOD_MSE},
        "every digit stays readable": {r: [1e-3 * r, 2e-3, 1e-3] for r in GOOD_MSE},
        "does not grow": dict(zip(GOOD_MSE, list(GOOD_MSE.values())[::-1], strict=True)),
        "holds 2 values": {r: v[:2] for r, v in GOOD_MSE.items()},
        "has 2 ratios": {3: GOOD_MSE[3], 7: GOOD_MSE[7]},
        "stay between 3 and 7": {**GOOD_MSE, 24: [0.4, 0.4, 0.3]},
        "should be a dict": list(GOOD_MSE.values()),
        "still `...`": ...,
    }
    for message, wrong in mistakes.items():
        fails(exercises.check_threshold_mse, wrong, match=message)
    scored_runs = {r: [scored(W0, np.ones((1, 3)), np.array([0]))] * 3 for r in GOOD_MSE}
    fails(exercises.check_threshold_mse, scored_runs, match="holds Reconstructions")


BIAS = np.array([0.125, 0.123, 0.054, -0.902, 0.11, 0.097, 0.141, 0.079, 0.092, 0.081])
UNIT = 4.187 / np.sqrt(9610)  # notebook 10: ‖g‖ / √d
RATIOS = (7, 10, 14, 20, 28, 40)


def rates(std_of_ratio, seeds=range(20)):
    """The share of noisy last-bias gradients whose most negative entry is the label 3."""
    return {
        r: float(
            np.mean(
                [
                    np.argmin(BIAS + np.random.default_rng(s).normal(0, std_of_ratio(r), 10)) == 3
                    for s in seeds
                ]
            )
        )
        for r in RATIOS
    }


def test_label_rate_names_counts_lost_labels_one_seed_and_mis_scaled_noise():
    right = rates(lambda r: r * UNIT)
    exercises.check_label_rate(right, BIAS, 3, UNIT, num_seeds=20)
    mistakes = {
        "values above 1: counts": {r: 20 * v for r, v in right.items()},
        "share of updates whose label is \\*lost\\*": {r: 1 - v for r, v in right.items()},
        "every rate is 0 or 1": rates(lambda r: r * UNIT, seeds=[0] * 20),
        "survives every update even at ratio 40": {r: 1.0 for r in RATIOS},
        "the noise is too big": rates(lambda r: float(r)),
        "at least four ratios": {7: 0.9, 40: 0.1},
        "still `...`": ...,
    }
    for message, wrong in mistakes.items():
        fails(exercises.check_label_rate, wrong, BIAS, 3, UNIT, num_seeds=20, match=message)
    flat = {r: 0.5 for r in RATIOS}
    fails(exercises.check_label_rate, flat, BIAS, 3, UNIT, match="is not the share")


# --- exercise 4 ----------------------------------------------------------------------------------


def test_big_batches_names_repeated_labels_and_other_examples():
    rng = np.random.default_rng(1)
    x, y = (
        rng.uniform(size=(30, 3)),
        np.array([3, 9, 1, 3, 1, 5, 2, 4, 8, 0, 6, 7, 1, 1, 9, 9] * 2)[:30],
    )

    def attacked(idx):
        return Reconstruction(
            x[idx], y[idx], x[idx], y[idx], np.zeros(len(idx)), np.zeros(2), Defence()
        )

    different = np.array([0, 1, 2, 5, 6, 7, 8, 9, 10, 11])
    right = {"10 different": attacked(different), "16 as drawn": attacked(np.arange(16))}
    exercises.check_big_batches(right, x, y)
    mistakes = {
        "has repeated labels": {**right, "10 different": attacked(np.arange(10))},
        "not the first 16 examples": {**right, "16 as drawn": attacked(np.arange(1, 17))},
        "attacked 8 examples, not 10": {**right, "10 different": attacked(different[:8])},
        'keys "10 different" and "16 as drawn"': {"10 different": right["10 different"]},
        "keep what leakage.attack returns": {**right, "16 as drawn": x[:16]},
        "still `...`": ...,
    }
    for message, wrong in mistakes.items():
        fails(exercises.check_big_batches, wrong, x, y, match=message)


def test_many_labels_names_the_true_labels_and_the_short_list():
    true = np.array([3, 9, 1, 3, 1, 5, 2, 4, 8, 9, 1, 1, 3, 3, 4, 9])
    bias = np.array([0.06, -0.2, 0.01, -0.2, -0.07, -0.02, 0.1, 0.1, -0.01, -0.15])
    resized = np.resize(np.arange(10), 16)
    exercises.check_many_labels(resized, bias, true, 10)
    exercises.check_many_labels(resized[::-1].tolist(), bias, true, 10)  # any order
    most_negative = np.concatenate([np.arange(10), np.argsort(bias, kind="stable")[:6]])
    mistakes = {
        "the client's true labels": true,
        "holds 10 labels for 16 examples": np.arange(10),
        "repeats the most negative entries": most_negative,
        "are not the labels invert_gradient uses": np.zeros(16, int),
        "still `...`": ...,
    }
    for message, wrong in mistakes.items():
        fails(exercises.check_many_labels, wrong, bias, true, 10, match=message)


# --- exercise 5 ----------------------------------------------------------------------------------


def right_noisy_mean(updates, noise_std, rng):
    sums = [np.sum(layer, axis=0) for layer in zip(*updates, strict=True)]
    return [(s + rng.normal(0.0, noise_std, s.shape)) / len(updates) for s in sums]


def layers(updates):
    return [np.stack(layer) for layer in zip(*updates, strict=True)]


NOISY_MEAN_MISTAKES = {
    "noises every client's update": lambda u, s, rng: [
        np.mean(a + rng.normal(0, s, a.shape), axis=0) for a in layers(u)
    ],
    "adds the noise to the mean": lambda u, s, rng: [
        a.mean(axis=0) + rng.normal(0, s, a.shape[1:]) for a in layers(u)
    ],
    "uses noise_std² as the standard deviation": lambda u, s, rng: [
        (a.sum(axis=0) + rng.normal(0, s**2, a.shape[1:])) / len(u) for a in layers(u)
    ],
    "times the mean: divide the noisy sum by n": lambda u, s, rng: [
        a.sum(axis=0) + rng.normal(0, s, a.shape[1:]) for a in layers(u)
    ],
    "adds no noise": lambda u, s, rng: [a.mean(axis=0) for a in layers(u)],
    "the same noise with another rng": lambda u, s, rng: right_noisy_mean(
        u, s, np.random.default_rng(0)
    ),
    "return a list, one array per layer": lambda u, s, rng: right_noisy_mean(u, s, rng)[0],
    "returns arrays shaped": lambda u, s, rng: right_noisy_mean(u, s, rng)[:1],
    "returns None": lambda u, s, rng: None,
}


@pytest.mark.parametrize("seed", [None, 1, 5])
def test_noisy_mean_names_local_noise_noise_on_the_mean_and_the_variance(seed):
    exercises.check_noisy_mean(right_noisy_mean, seed=seed)
    for message, wrong in NOISY_MEAN_MISTAKES.items():
        fails(exercises.check_noisy_mean, wrong, seed=seed, match=message)


def test_cos_many_names_noise_per_client_on_the_mean_and_scaled_to_the_sum():
    from fedlab.exercises.leakage import _gradient, _norm

    rng = np.random.default_rng(0)  # an MLP of 3,110 weights: noise is nearly orthogonal to m
    w = [rng.normal(0, 0.3, (20, 100)), np.zeros(100), rng.normal(0, 0.3, (100, 10)), np.zeros(10)]
    x, y = rng.uniform(size=(50, 20)), rng.integers(0, 10, 50)
    size = sum(a.size for a in w)
    noise_std = 7 * _norm(_gradient(w, x[:1], y[:1])) / np.sqrt(size)
    grads = [_gradient(w, x[k : k + 1], y[k : k + 1]) for k in range(50)]
    clean = [np.mean(layer, axis=0) for layer in zip(*grads, strict=True)]

    def cos_with(std):
        noisy = [c + rng.normal(0, std, c.shape) for c in clean]
        dot = sum(np.sum(a * b) for a, b in zip(noisy, clean, strict=True))
        return dot / (_norm(noisy) * _norm(clean))

    exercises.check_cos_many(cos_with(noise_std / 50), w, x, y, noise_std)
    mistakes = {
        "noise on every client": cos_with(noise_std / np.sqrt(50)),
        "noise added to the average": cos_with(noise_std),
        r"7 times the \*sum\*'s norm": 1 / np.sqrt(50),
        "no cosine": 1.5,
        "is not the cosine of the noisy average": -0.5,
        "still `...`": ...,
    }
    for message, wrong in mistakes.items():
        fails(exercises.check_cos_many, wrong, w, x, y, noise_std, match=message)
