"""Checks for notebook 10's exercises (what updates leak): a trained model's gradient and the
attack on it, an inversion with the true labels, the noise threshold of the attack and of the
label, batches bigger than the number of classes, and noise added once to the sum of many
clients' updates."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from fedlab.exercises.core import (
    CheckFailed,
    Mistake,
    Weights,
    call,
    diagnose,
    passed,
    require,
    same,
)

__all__ = [
    "check_big_batches",
    "check_cos_many",
    "check_known_labels",
    "check_label_rate",
    "check_last_bias_gradient",
    "check_many_labels",
    "check_noisy_mean",
    "check_threshold_mse",
    "check_trained_attack",
    "check_trained_weights",
]

READABLE = 0.03  # the notebook's per-example MSE under which a rebuilt digit is still readable


# --- small tools: a Dense ReLU stack in NumPy and its gradient ------------------------------------


def _logits(weights: Sequence[np.ndarray], x: np.ndarray) -> np.ndarray:
    """The logits of a ReLU stack of Dense layers ``[kernel, bias, ...]`` (float64, NumPy)."""
    h = np.asarray(x, np.float64)
    for i in range(0, len(weights), 2):
        h = h @ np.asarray(weights[i], np.float64) + np.asarray(weights[i + 1], np.float64)
        if i + 2 < len(weights):
            h = np.maximum(h, 0.0)
    return h


def _softmax(z: np.ndarray, axis: int = -1) -> np.ndarray:
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _accuracy(weights: Sequence[np.ndarray], x: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.argmax(_logits(weights, x), axis=1) == np.asarray(y)))


def _gradient(weights: Sequence[np.ndarray], x: np.ndarray, y: np.ndarray) -> list[np.ndarray]:
    """The float64 gradient of the mean cross-entropy of ``x, y`` at ``weights``."""
    import tensorflow as tf

    from fedlab.leakage import dense_logits

    w = [tf.constant(np.asarray(a, np.float64)) for a in weights]
    with tf.GradientTape() as tape:
        tape.watch(w)
        logits = dense_logits(w, tf.constant(np.asarray(x, np.float64)))
        loss = tf.reduce_mean(
            tf.nn.sparse_softmax_cross_entropy_with_logits(tf.constant(y, tf.int32), logits)
        )
    return [g.numpy() for g in tape.gradient(loss, w)]


def _norm(update: Sequence[np.ndarray]) -> float:
    return float(np.sqrt(sum(np.sum(np.square(np.asarray(u, np.float64))) for u in update)))


def _cosine(a: Sequence[np.ndarray], b: Sequence[np.ndarray]) -> float:
    dot = sum(
        np.sum(np.asarray(u, np.float64) * np.asarray(v, np.float64))
        for u, v in zip(a, b, strict=True)
    )
    return float(dot / (_norm(a) * _norm(b)))


def _weight_list(value: Any, name: str, like: Sequence[np.ndarray]) -> list[np.ndarray]:
    """``value`` as a list of arrays shaped like ``like``, or a CheckFailed saying what it is."""
    if hasattr(value, "weights") and not isinstance(value, list | tuple):
        raise CheckFailed(
            f"{name} is a {type(value).__name__}: give its weights, a list of arrays "
            "(a Simulation's `.weights`)"
        )
    shapes = [np.shape(w) for w in value] if isinstance(value, list | tuple) else None
    if shapes != [np.shape(w) for w in like]:
        raise CheckFailed(
            f"{name} should be a list of weight arrays shaped like `weights` "
            f"{[np.shape(w) for w in like]}, got {shapes if shapes else type(value).__name__}"
        )
    return [np.asarray(w, np.float64) for w in value]


# --- exercise 1: a trained model ------------------------------------------------------------------


def check_trained_weights(
    trained_weights: Any,
    weights: Weights,
    x_test: np.ndarray,
    y_test: np.ndarray,
    min_accuracy: float = 0.8,
) -> None:
    """Check ``trained_weights``: the global model after some rounds of FedAvg from ``weights``
    (the round-1 model), shaped like it and at least ``min_accuracy`` accurate on the test set.

    It recognises: the stub; a Simulation or History instead of its weights; wrong shapes; the
    round-1 weights themselves (nothing trained); the update Δ = w_trained − w instead of the
    weights; a model still too weak to be confident.

    Example:
        >>> w0 = [np.zeros((2, 2)), np.zeros(2)]
        >>> x, y = np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([0, 1])
        >>> check_trained_weights([np.eye(2), np.zeros(2)], w0, x, y)
        ✓ trained_weights: test accuracy 1.00, where the round-1 model scores 0.50
        >>> check_trained_weights(w0, w0, x, y)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: trained_weights are the round-1 weights: nothing was trained...
    """
    require("trained_weights", trained_weights, "train FedAvg for some rounds from `weights`")
    got = _weight_list(trained_weights, "trained_weights", weights)
    if same(got, weights, atol=1e-9, rtol=0):
        raise CheckFailed(
            "trained_weights are the round-1 weights: nothing was trained. Run a few rounds "
            "(fedlab.Simulation(...).step(), or fedlab.steps.run_round) and keep the global weights"
        )
    before, after = _accuracy(weights, x_test, y_test), _accuracy(got, x_test, y_test)
    moved = [np.asarray(w, np.float64) + g for w, g in zip(weights, got, strict=True)]
    if after < min_accuracy and _accuracy(moved, x_test, y_test) >= min_accuracy:
        raise CheckFailed(
            "trained_weights look like the update Δ (trained − initial), not the weights: keep "
            "the global model itself (Simulation.weights)"
        )
    if after < min_accuracy:
        raise CheckFailed(
            f"trained_weights score {after:.2f} on the test set: train longer (more rounds or "
            f"local epochs), to at least {min_accuracy:.2f}, so that the model is confident"
        )
    passed(
        f"trained_weights: test accuracy {after:.2f}, where the round-1 model scores {before:.2f}"
    )


def _example_dense(seed: int | None) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """A small Dense ReLU stack, a batch and its labels: by hand, or drawn with ``seed``."""
    if seed is None:
        weights = [
            np.array([[1.0, -1.0, 0.5], [0.5, 1.0, -1.0]]),
            np.array([0.1, 0.0, -0.1]),
            np.array([[1.0, 0.0, -1.0], [0.0, 2.0, 1.0], [-1.0, 1.0, 0.5]]),
            np.array([0.0, 0.2, -0.2]),
        ]
        x = np.array([[1.0, 0.5], [0.2, 1.0], [0.8, 0.1]])
        y = np.array([0, 2, 2])
        return weights, x, y
    rng = np.random.default_rng(seed)
    features, hidden, classes, n = (int(v) for v in rng.integers((3, 4, 3, 3), (8, 10, 7, 7)))
    weights = [
        rng.normal(size=(features, hidden)),
        rng.normal(0.0, 0.1, hidden),
        rng.normal(size=(hidden, classes)),
        rng.normal(0.0, 0.1, classes),
    ]
    return weights, rng.uniform(size=(n, features)), rng.integers(0, classes, n)


def check_last_bias_gradient(last_bias_gradient: Callable, seed: int | None = None) -> None:
    """Check ``last_bias_gradient(weights, x, y)``: the gradient of the mean cross-entropy over
    the batch with respect to the last bias, the mean over the examples of p − onehot(y) with
    p = softmax of the logits.

    It recognises: the stub; p without the one-hot; the sign flipped (onehot − p); the logits
    instead of their softmax; the sum over the examples instead of the mean; one row per example;
    the softmax taken across the examples instead of over the classes.

    Example:
        >>> from fedlab.exercises.leakage import _logits, _softmax
        >>> def right(weights, x, y):
        ...     p = _softmax(_logits(weights, x))
        ...     return (p - np.eye(p.shape[1])[y]).mean(axis=0)
        >>> check_last_bias_gradient(right)
        ✓ last_bias_gradient is the batch mean of p − onehot(y): its negative entries are the labels
        >>> check_last_bias_gradient(lambda w, x, y: -right(w, x, y))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: last_bias_gradient has the wrong sign (onehot − p)...
    """
    weights, x, y = _example_dense(seed)
    logits = _logits(weights, x)
    p, onehot = _softmax(logits), np.eye(logits.shape[1])[y]
    got = call(
        last_bias_gradient, "last_bias_gradient", [w.copy() for w in weights], x.copy(), y.copy()
    )
    got = np.asarray(got, dtype=np.float64)
    expected = (p - onehot).mean(axis=0)
    mistakes = [
        Mistake(
            p.mean(axis=0),
            "last_bias_gradient returns p, the softmax alone: the loss's gradient subtracts the "
            "one-hot of the label, p − onehot(y)",
        ),
        Mistake(
            -expected,
            "last_bias_gradient has the wrong sign (onehot − p): the gradient of the loss is "
            "p − onehot(y), whose one negative entry (per example) is the label",
        ),
        Mistake(
            (logits - onehot).mean(axis=0),
            "last_bias_gradient uses the logits as they are: turn them into probabilities "
            "first, p = softmax(logits), then subtract the one-hot",
        ),
        Mistake(
            (p - onehot).sum(axis=0),
            "last_bias_gradient sums over the examples: the loss is the batch *mean*, so the "
            "gradient is the mean of p − onehot(y) (divide by the number of examples)",
        ),
        Mistake(
            p - onehot,
            "last_bias_gradient returns one row per example: the client sends one gradient, the "
            "mean over the batch (axis=0)",
        ),
        Mistake(
            (_softmax(logits, axis=0) - onehot).mean(axis=0),
            "last_bias_gradient takes the softmax across the examples (axis=0): normalise each "
            "example's logits over the classes (axis=-1)",
        ),
    ]
    diagnose(
        got,
        expected,
        mistakes,
        "last_bias_gradient is not the batch mean of p − onehot(y): compute the logits with "
        "leakage.dense_logits, p = softmax over the classes, subtract np.eye(classes)[y], average",
    )
    passed(
        "last_bias_gradient is the batch mean of p − onehot(y): its negative entries are the labels"
    )


def _start_distance(weights: Sequence[np.ndarray], x: np.ndarray, y: np.ndarray, seed: int):
    """The attacker's cosine distance at its seeded random start (``gradient_distance[0]``)."""
    start = np.random.default_rng(seed).uniform(0.0, 1.0, size=np.shape(x))
    return 1.0 - _cosine(_gradient(weights, start, y), _gradient(weights, x, y))


def check_trained_attack(
    result: Any,
    trained_weights: Weights,
    weights: Weights,
    x: np.ndarray,
    y: np.ndarray,
    seed: int = 0,
) -> None:
    """Check ``result``: ``leakage.attack`` on the example ``x, y`` (one digit) at
    ``trained_weights``, without a defence, with the attacker's ``seed``.

    It recognises: the stub; ``invert_gradient``'s raw Inversion instead of the scored
    Reconstruction; another example or a batch; a defence; the attack run at the round-1
    ``weights`` instead of the trained ones (from the distance at the attacker's random start,
    when ``seed`` is the one used).

    Example:
        >>> from fedlab.leakage import Defence, Reconstruction
        >>> from fedlab.exercises.leakage import _start_distance
        >>> w0 = [np.array([[1.0, -1.0, 0.5], [0.5, 2.0, -1.0]]), np.zeros(3), np.eye(3)[:, :2], np.zeros(2)]
        >>> trained = [w0[0] + 0.5, np.full(3, 0.1), np.array([[1.0, 0.5], [-1.0, 1.0], [1.0, -1.0]]), np.zeros(2)]
        >>> x, y = np.array([[0.3, 0.8]]), np.array([1])
        >>> def scored(w):  # an attack at w (it rebuilt x exactly), as leakage.attack returns it
        ...     curve = np.array([_start_distance(w, x, y, seed=0), 0.0])
        ...     return Reconstruction(x, y, x, y, np.zeros(1), curve, Defence())
        >>> check_trained_attack(scored(trained), trained, w0, x, y)
        ✓ trained_attack: the trained model's gradient of client 0's digit, attacked: label recovered, image rebuilt
        >>> check_trained_attack(scored(w0), trained, w0, x, y)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: trained_attack attacked `weights`, the round-1 model...
    """
    from fedlab.leakage import Defence, Inversion, Reconstruction

    require("trained_attack", result, "attack the trained weights: leakage.attack(...)")
    if isinstance(result, Inversion):
        raise CheckFailed(
            "trained_attack is invert_gradient's Inversion: use leakage.attack, which runs the "
            "client and the attacker and scores the result against the truth"
        )
    if not isinstance(result, Reconstruction):
        raise CheckFailed(
            f"trained_attack is a {type(result).__name__}: keep what leakage.attack returns"
        )
    if result.x_true.shape != np.shape(x) or not np.allclose(result.x_true, x):
        raise CheckFailed(
            f"trained_attack attacked {len(result.x_true)} other example(s): attack client 0's "
            "single digit, x[:1], y[:1], as in section 3"
        )
    if result.defence != Defence():
        raise CheckFailed(
            f"trained_attack ran with {result.defence}: this exercise wants no defence"
        )
    measured = float(result.gradient_distance[0])
    at_start = {
        "trained": _start_distance(trained_weights, x, y, seed),
        "initial": _start_distance(weights, x, y, seed),
    }
    if not np.isclose(measured, at_start["trained"], rtol=1e-3) and np.isclose(
        measured, at_start["initial"], rtol=1e-3
    ):
        raise CheckFailed(
            "trained_attack attacked `weights`, the round-1 model: pass trained_weights to "
            "attack (the server sends the trained model in a later round)"
        )
    verdict = "rebuilt" if result.error < READABLE else "not rebuilt"
    passed(
        f"trained_attack: the trained model's gradient of client 0's digit, attacked: label "
        f"{'recovered' if result.labels_recovered else 'lost'}, image {verdict}"
    )


# --- exercise 2: repeated labels ------------------------------------------------------------------


def check_known_labels(known: Any, known_errors: Any, x: np.ndarray, y: np.ndarray) -> None:
    """Check ``known``, ``invert_gradient``'s Inversion of the batch ``x, y`` given its true
    labels, and ``known_errors``, the per-example MSE of its reconstructions once matched to the
    originals (``leakage.match_reconstructions``).

    It recognises: stubs; ``attack``'s Reconstruction instead (which infers the labels); the
    labels read off the gradient instead of the true ones; the wrong number of examples; errors
    of unmatched pairs; one mean error instead of one per example; squared errors summed over
    the pixels, or their square root.

    Example:
        >>> from fedlab.leakage import Inversion
        >>> x, y = np.array([[0.0, 1.0], [1.0, 1.0]]), np.array([3, 3])
        >>> found = Inversion(np.array([[1.0, 1.0], [0.0, 0.5]]), np.array([3, 3]), np.zeros(2))
        >>> check_known_labels(found, [0.125, 0.0], x, y)
        ✓ known: the 2 examples inverted with their true labels; 1 of 2 rebuilt readably (MSE < 0.03)
        >>> check_known_labels(found, [0.5, 0.625], x, y)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: known_errors pairs row i of x with row i of known.x...
    """
    from fedlab.leakage import Inversion, Reconstruction, match_reconstructions

    n = len(x)
    require("known", known, f"invert the batch's gradient with labels=y[:{n}]")
    require("known_errors", known_errors, "the per-example MSE of the matched reconstructions")
    if isinstance(known, Reconstruction):
        raise CheckFailed(
            "known is attack's Reconstruction, and attack reads the labels off the gradient: call "
            f"leakage.invert_gradient(weights, shared, {n}, labels=...) with the true labels"
        )
    if not isinstance(known, Inversion):
        raise CheckFailed(f"known is a {type(known).__name__}: keep what invert_gradient returns")
    if np.shape(known.x) != np.shape(x):
        raise CheckFailed(
            f"known rebuilt {len(known.x)} examples: the batch has {n} (num_examples={n})"
        )
    if sorted(np.asarray(known.labels).tolist()) != sorted(np.asarray(y).tolist()):
        raise CheckFailed(
            f"known used the labels {np.sort(known.labels).tolist()}, not the batch's true ones: "
            f"pass labels=y[:{n}] (the attacker is given them in this exercise)"
        )
    order, errors = match_reconstructions(x, known.x)
    rows = np.mean((np.asarray(known.x, np.float64) - x) ** 2, axis=1)
    diff = np.asarray(known.x, np.float64)[order] - x
    try:
        got = np.asarray(known_errors, dtype=np.float64)
    except (TypeError, ValueError):
        raise CheckFailed("known_errors should be numbers, one MSE per example") from None
    diagnose(
        got,
        errors,
        [
            Mistake(
                rows,
                "known_errors pairs row i of x with row i of known.x: the reconstructions come "
                "in any order; pair them first with leakage.match_reconstructions(x, known.x)",
            ),
            Mistake(
                np.mean(errors),
                "known_errors is one number: give one MSE per example (match_reconstructions "
                "returns them)",
            ),
            Mistake(
                np.sum(diff**2, axis=1),
                "known_errors sums the squared errors over the pixels: the MSE is their mean",
            ),
            Mistake(
                np.sqrt(errors),
                "known_errors are root mean squared errors: the MSE is not square-rooted",
            ),
        ],
        "known_errors is not the per-example MSE of the matched reconstructions: "
        "leakage.match_reconstructions(x, known.x) returns the order and the errors",
    )
    readable = int(np.sum(errors < READABLE))
    passed(
        f"known: the {n} examples inverted with their true labels; {readable} of {n} rebuilt "
        f"readably (MSE < {READABLE})"
    )


# --- exercise 3: where is the threshold? ----------------------------------------------------------


def check_threshold_mse(
    threshold_mse: Any, low: float = 3.0, high: float = 7.0, repeats: int = 3
) -> None:
    """Check ``threshold_mse``, ``{noise ratio: [pixel MSE of each repeat]}``: at least four
    ratios from ``low`` to ``high``, ``repeats`` attacks each with their own seeds, and MSEs that
    behave like section 4d's (readable digits at ``low``, worse at ``high``).

    It recognises: the stub; too few ratios or ratios out of range; another number of repeats;
    Reconstructions or PSNRs instead of MSEs; repeats with the same seed; no noise at all; the
    noise std not scaled by ‖g‖/√d (every attack readable, or every attack failing).

    Example:
        >>> good = {3: [0.015, 0.02, 0.017], 4: [0.03, 0.04, 0.02], 5: [0.05, 0.09, 0.07],
        ...         7: [0.08, 0.07, 0.3]}
        >>> check_threshold_mse(good)
        ✓ threshold_mse: 4 noise ratios from 3 to 7, 3 seeded attacks each; mean MSE 0.017 at 3, 0.15 at 7
        >>> check_threshold_mse({r: [v[0]] * 3 for r, v in good.items()})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: the 3 repeats give the same MSE at every ratio...
    """
    require("threshold_mse", threshold_mse, "attack at each ratio with three seeds, keep the MSEs")
    if not isinstance(threshold_mse, Mapping):
        raise CheckFailed(
            f"threshold_mse should be a dict {{ratio: [{repeats} MSEs]}}, got "
            f"{type(threshold_mse).__name__}"
        )
    ratios = sorted(threshold_mse)
    if len(ratios) < 4:
        raise CheckFailed(
            f"threshold_mse has {len(ratios)} ratios: refine, at least four from {low:g} to {high:g}"
        )
    if ratios[0] < low or ratios[-1] > high:
        raise CheckFailed(
            f"threshold_mse has ratios from {ratios[0]:g} to {ratios[-1]:g}: stay between "
            f"{low:g} and {high:g}, where section 4d's digit disappears"
        )
    table = {}
    for ratio in ratios:
        values = list(threshold_mse[ratio])
        if len(values) != repeats:
            raise CheckFailed(
                f"threshold_mse[{ratio:g}] holds {len(values)} values: repeat each attack with "
                f"{repeats} seeds"
            )
        if any(hasattr(v, "error") for v in values):
            raise CheckFailed(
                "threshold_mse holds Reconstructions: keep each one's pixel MSE, `r.error`"
            )
        table[ratio] = np.asarray(values, dtype=np.float64)
    every = np.concatenate(list(table.values()))
    if every.max() > 1.0:
        raise CheckFailed(
            "threshold_mse has values above 1: PSNRs in dB? Keep the pixel MSE (`r.error`), "
            "which lies in [0, 1]"
        )
    if every.min() < 0:
        raise CheckFailed("threshold_mse has negative values: a mean squared error is ≥ 0")
    if all(np.ptp(v) == 0 for v in table.values()):
        raise CheckFailed(
            f"the {repeats} repeats give the same MSE at every ratio: run each with its own "
            "seed (attack(..., seed=s)), so that the noise and the attacker's start change"
        )
    if every.max() < 1e-6:
        raise CheckFailed(
            "every attack rebuilds the digit to round-off: there is no noise in them. Pass "
            "Defence(noise_std=...) to attack"
        )
    first, last = table[ratios[0]].mean(), table[ratios[-1]].mean()
    if every.min() >= 0.07:
        raise CheckFailed(
            f"every attack fails, even at ratio {ratios[0]:g} (section 4d: about 0.015 at 3): "
            "the noise is too big. The ratio is σ√d / ‖g‖, so noise_std = ratio · g_norm / √d"
        )
    if every.max() < READABLE:
        raise CheckFailed(
            f"every digit stays readable, even at ratio {ratios[-1]:g} (section 4d: about 0.08 "
            "at 7): the noise is too small. noise_std = ratio · g_norm / √d (with g_norm)"
        )
    if last <= first:
        raise CheckFailed(
            f"the mean MSE does not grow from ratio {ratios[0]:g} ({first:.3f}) to "
            f"{ratios[-1]:g} ({last:.3f}): is each ratio's defence the one its attack uses?"
        )
    passed(
        f"threshold_mse: {len(ratios)} noise ratios from {ratios[0]:g} to {ratios[-1]:g}, "
        f"{repeats} seeded attacks each; mean MSE {first:.2g} at {ratios[0]:g}, {last:.2g} at "
        f"{ratios[-1]:g}"
    )


def _label_survival(bias_gradient: np.ndarray, label: int, std: float, draws: int = 20_000):
    """P(argmin(b + N(0, std²)) == label), by Monte Carlo (fixed generator)."""
    b = np.asarray(bias_gradient, np.float64)
    noisy = b + np.random.default_rng(12345).normal(0.0, std, size=(draws, len(b)))
    return float(np.mean(np.argmin(noisy, axis=1) == label))


def check_label_rate(
    label_rate: Any,
    bias_gradient: np.ndarray,
    label: int,
    noise_unit: float,
    num_seeds: int = 20,
    low: float = 7.0,
    high: float = 40.0,
) -> None:
    """Check ``label_rate``, ``{noise ratio: fraction of num_seeds noisy updates whose label
    infer_labels reads right}``, where the noise std is ``ratio · noise_unit`` (noise_unit =
    ‖g‖/√d) on the last bias's gradient ``bias_gradient`` of one example with ``label``.

    The check knows the probability that the label survives each ratio (Monte Carlo) and allows
    for the spread of ``num_seeds`` draws. It recognises: the stub; too few ratios or out of
    range; counts instead of fractions; the same seed for every repeat; no noise; noise not
    scaled by ‖g‖/√d (the label lost everywhere); the rate at which the label is *lost*.

    Example:
        >>> b, unit = np.array([0.1, -0.9, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1]), 0.05
        >>> rates = {7: 0.85, 10: 0.6, 14: 0.5, 20: 0.3}
        >>> check_label_rate(rates, b, 1, unit)
        ✓ label_rate: the label survives 85 % of the noisy updates at ratio 7 and 30 % at ratio 20
        >>> check_label_rate({r: 20 * v for r, v in rates.items()}, b, 1, unit)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: label_rate has values above 1: counts?...
    """
    require("label_rate", label_rate, "the fraction of seeds whose label survives, per ratio")
    if not isinstance(label_rate, Mapping):
        raise CheckFailed(
            f"label_rate should be a dict {{ratio: fraction}}, got {type(label_rate).__name__}"
        )
    ratios = sorted(label_rate)
    if len(ratios) < 4 or ratios[0] < low or ratios[-1] > high:
        raise CheckFailed(
            f"label_rate should have at least four ratios from {low:g} to {high:g}, "
            f"got {[float(r) for r in ratios]}"
        )
    try:
        got = np.array([float(label_rate[r]) for r in ratios])
    except (TypeError, ValueError):
        raise CheckFailed(
            "label_rate should hold one number per ratio: the fraction of seeds whose label "
            "infer_labels got right"
        ) from None
    if got.max() > 1.0:
        raise CheckFailed(
            f"label_rate has values above 1: counts? Divide by the number of seeds "
            f"({num_seeds}), so that each is a fraction"
        )
    survive = np.array([_label_survival(bias_gradient, label, r * noise_unit) for r in ratios])
    spread = 3.5 * np.sqrt(survive * (1 - survive) / num_seeds) + 1.0 / num_seeds

    def fits(p: np.ndarray) -> bool:
        return bool(np.all(np.abs(got - p) <= spread))

    all_same = np.prod(survive**num_seeds + (1 - survive) ** num_seeds)  # P(every rate 0 or 1)
    if np.all(np.isin(got, (0.0, 1.0))) and not np.all(got == 1.0) and all_same < 1e-4:
        raise CheckFailed(
            f"every rate is 0 or 1: the {num_seeds} repeats all gave the same answer. Give each "
            "its own seed, shared_update(..., seed=s) for s in range(...)"
        )
    if fits(survive):
        passed(
            f"label_rate: the label survives {100 * got[0]:.0f} % of the noisy updates at ratio "
            f"{ratios[0]:g} and {100 * got[-1]:.0f} % at ratio {ratios[-1]:g}"
        )
        return
    if np.all(got == 1.0):
        raise CheckFailed(
            f"the label survives every update even at ratio {ratios[-1]:g}: is the noise in, and "
            "does each repeat draw its own? Send leakage.shared_update(..., "
            "Defence(noise_std=ratio * g_norm / √d), seed=s) for s in range(...)"
        )
    if fits(1 - survive):
        raise CheckFailed(
            "label_rate is the share of updates whose label is *lost*: record the share whose "
            "label infer_labels gets right"
        )
    if got.max() <= 0.3:
        raise CheckFailed(
            f"the label is lost most of the time even at ratio {ratios[0]:g}: the noise is too "
            "big. noise_std = ratio · g_norm / √d, the ratio of noise norm to update norm"
        )
    raise CheckFailed(
        "label_rate is not the share of noisy updates whose label survives: for each ratio, send "
        "shared_update with Defence(noise_std=ratio * g_norm / √d) and seed=s for each seed, and "
        "count how often infer_labels(update[-1]) is y[0]"
    )


# --- exercise 4: bigger batches -------------------------------------------------------------------


def check_big_batches(big_batches: Any, x: np.ndarray, y: np.ndarray) -> None:
    """Check ``big_batches``: ``{"10 different": attack on 10 examples with 10 different labels,
    "16 as drawn": attack on the first 16 examples x[:16]}``.

    It recognises: the stub; a missing key; something other than attack's Reconstruction; a batch
    of 10 whose labels repeat; a batch of 16 other than the first 16 examples.

    Example:
        >>> from fedlab.leakage import Defence, Reconstruction
        >>> x, y = np.arange(40.0).reshape(20, 2) / 40, np.arange(20) % 10
        >>> def scored(idx):
        ...     n = len(idx)
        ...     return Reconstruction(x[idx], y[idx], x[idx], y[idx], np.zeros(n), np.zeros(2), Defence())
        >>> check_big_batches({"10 different": scored(np.arange(10)), "16 as drawn": scored(np.arange(16))}, x, y)
        ✓ big_batches: 10 examples with different labels (10 of 10 readable), the first 16 as drawn (16 of 16 readable)
        >>> check_big_batches({"10 different": scored(np.arange(5, 15)), "16 as drawn": scored(np.arange(4, 20))}, x, y)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: big_batches["16 as drawn"] is not the first 16 examples...
    """
    from fedlab.leakage import Reconstruction

    require("big_batches", big_batches, 'attack the two batches, {"10 different": ..., ...}')
    keys = ("10 different", "16 as drawn")
    if not isinstance(big_batches, Mapping) or any(k not in big_batches for k in keys):
        raise CheckFailed('big_batches should be a dict with keys "10 different" and "16 as drawn"')
    for key in keys:
        if not isinstance(big_batches[key], Reconstruction):
            raise CheckFailed(
                f'big_batches["{key}"] is a {type(big_batches[key]).__name__}: keep what '
                "leakage.attack returns"
            )
    ten, sixteen = big_batches["10 different"], big_batches["16 as drawn"]
    if len(ten.x_true) != 10:
        raise CheckFailed(
            f'big_batches["10 different"] attacked {len(ten.x_true)} examples, not 10'
        )
    if len(set(np.asarray(ten.label_true).tolist())) != 10:
        raise CheckFailed(
            'big_batches["10 different"] has repeated labels: take one example of each digit, '
            "different_labels(10)"
        )
    if np.shape(sixteen.x_true) != np.shape(x[:16]) or not np.allclose(sixteen.x_true, x[:16]):
        raise CheckFailed(
            'big_batches["16 as drawn"] is not the first 16 examples: attack x[:16], y[:16]'
        )
    count = [int(np.sum(r.errors < READABLE)) for r in (ten, sixteen)]
    passed(
        f"big_batches: 10 examples with different labels ({count[0]} of 10 readable), the "
        f"first 16 as drawn ({count[1]} of 16 readable)"
    )


def check_many_labels(
    labels: Any, bias_gradient: np.ndarray, true_labels: np.ndarray, num_classes: int
) -> None:
    """Check ``labels``: the labels ``invert_gradient`` uses, with ``labels=None``, for a batch of
    ``len(true_labels)`` examples (more than ``num_classes``) whose last bias's gradient is
    ``bias_gradient``: infer_labels for ``num_classes`` examples, then ``np.resize``. Their order
    is free (the attack's loss is a mean), their multiset is not.

    It recognises: the stub; the client's true labels (which the attacker does not know); only
    ``num_classes`` labels; the list repeated from its most negative entries instead of from its
    start.

    Example:
        >>> b = np.array([0.2, -0.1, 0.3, -0.4])
        >>> check_many_labels([0, 1, 2, 3, 0, 1], b, np.array([3, 3, 1, 1, 0, 2]), 4)
        ✓ labels_16: every class once, then classes 0–1 again: np.resize repeats the sorted list from its start, whatever the data
        >>> check_many_labels([3, 3, 1, 1, 0, 2], b, np.array([3, 3, 1, 1, 0, 2]), 4)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: labels_16 are the client's true labels...
    """
    from fedlab.leakage import infer_labels

    n = len(true_labels)
    require("labels_16", labels, "the labels invert_gradient uses for the batch (read its code)")
    try:
        got = np.sort(np.asarray(labels).ravel().astype(int))
    except (TypeError, ValueError):
        raise CheckFailed("labels_16 should be a sequence of integer labels") from None
    inferred = infer_labels(bias_gradient, num_classes)
    expected = np.sort(np.resize(inferred, n))
    if np.array_equal(got, expected):
        passed(
            f"labels_16: every class once, then classes 0–{n - num_classes - 1} again: np.resize "
            "repeats the sorted list from its start, whatever the data"
        )
        return
    if np.array_equal(got, np.sort(true_labels)):
        raise CheckFailed(
            "labels_16 are the client's true labels: the attacker does not know them. Read "
            "invert_gradient: with labels=None it calls infer_labels, then what?"
        )
    if len(got) == num_classes:
        raise CheckFailed(
            f"labels_16 holds {num_classes} labels for {n} examples: infer_labels gives at most "
            f"one per class; see how invert_gradient makes {n} of them (np.resize)"
        )
    most_negative = np.argsort(np.asarray(bias_gradient, np.float64), kind="stable")
    repeated = np.sort(np.concatenate([inferred, most_negative[: n - num_classes]]))
    if np.array_equal(got, repeated):
        raise CheckFailed(
            "labels_16 repeats the most negative entries: np.resize repeats infer_labels's list "
            "from its start, and that list is sorted by class"
        )
    raise CheckFailed(
        f"labels_16 are not the labels invert_gradient uses for {n} examples: "
        f"np.resize(infer_labels(bias_gradient, {num_classes}), {n})"
    )


# --- exercise 5: the sum of many clients ----------------------------------------------------------


def _example_clients(seed: int | None):
    """Client updates (clean mean ≈ 1) and a noise std, by hand or drawn with ``seed``."""
    rng = np.random.default_rng(2 if seed is None else seed + 100)
    if seed is None:
        n, shapes, std = 50, [(40, 50), (50,)], 2.0
    else:
        n = int(rng.integers(20, 80))
        shapes = [tuple(int(s) for s in rng.integers(20, 60, 2)), (int(rng.integers(20, 60)),)]
        std = float(rng.choice([rng.uniform(0.3, 0.6), rng.uniform(1.6, 3.0)]))
    updates = [[1.0 + rng.normal(0.0, 0.1, s) for s in shapes] for _ in range(n)]
    return updates, std


def check_noisy_mean(noisy_mean: Callable, seed: int | None = None) -> None:
    """Check ``noisy_mean(updates, noise_std, rng)``: the sum of the ``n`` clients' updates (each
    a list of arrays) plus **one** draw of N(0, noise_std²) per coordinate from ``rng``, divided
    by n. The noise on the result then has std noise_std / n.

    The check measures the noise the function added (its result minus the clean mean), so any
    order of drawing passes. It recognises: the stub; one array instead of one per layer; the sum
    not divided by n; no noise; noise drawn for every client (std noise_std/√n: local noise);
    the noise added to the mean (std noise_std); the variance used as the std; ``rng`` ignored.

    Example:
        >>> def right(updates, noise_std, rng):
        ...     layers = [sum(u[i] for u in updates) for i in range(len(updates[0]))]
        ...     return [(s + rng.normal(0, noise_std, s.shape)) / len(updates) for s in layers]
        >>> check_noisy_mean(right)
        ✓ noisy_mean adds one noise draw to the sum and divides by n: the noise std on the mean is noise_std / n
        >>> def every_client(updates, noise_std, rng):
        ...     noised = [[a + rng.normal(0, noise_std, a.shape) for a in u] for u in updates]
        ...     return [sum(u[i] for u in noised) / len(updates) for i in range(len(updates[0]))]
        >>> check_noisy_mean(every_client)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: noisy_mean noises every client's update...
    """
    updates, std = _example_clients(seed)
    n = len(updates)
    given = [[a.copy() for a in u] for u in updates]
    first = 0 if seed is None else seed
    got = call(noisy_mean, "noisy_mean", given, std, np.random.default_rng(first))
    if isinstance(got, np.ndarray) or not isinstance(got, list | tuple):
        raise CheckFailed("noisy_mean should return a list, one array per layer")
    if [np.shape(a) for a in got] != [np.shape(a) for a in updates[0]]:
        raise CheckFailed(
            f"noisy_mean returns arrays shaped {[np.shape(a) for a in got]}; the updates' layers "
            f"are {[np.shape(a) for a in updates[0]]}"
        )
    mean = [np.mean([u[i] for u in updates], axis=0) for i in range(len(updates[0]))]
    noise = np.concatenate(
        [np.ravel(np.asarray(a, np.float64) - m) for a, m in zip(got, mean, strict=True)]
    )
    if abs(noise.mean()) > 0.5:
        raise CheckFailed(
            f"noisy_mean returns about {n} times the mean: divide the noisy sum by n, the "
            "number of clients"
        )
    spread = float(noise.std())
    if spread < 1e-9:
        raise CheckFailed("noisy_mean adds no noise: draw N(0, noise_std²) with rng.normal")
    ratio = spread / (std / n)
    hints = [
        (
            1.0,
            None,
        ),
        (
            np.sqrt(n),
            f"noisy_mean noises every client's update ({n} draws per coordinate): their average "
            "has noise std noise_std/√n, √n times more than one draw on the sum. That is local "
            "noise; the server adds it once, to the sum",
        ),
        (
            n,
            "noisy_mean adds the noise to the mean: its std is then noise_std itself. Add it to "
            "the sum, then divide by n (std noise_std/n)",
        ),
        (
            std,
            "noisy_mean uses noise_std² as the standard deviation: rng.normal's scale is the "
            "standard deviation, noise_std",
        ),
    ]
    for factor, hint in hints:
        if abs(ratio / factor - 1) < 0.15:
            if hint is not None:
                raise CheckFailed(hint)
            other = np.random.default_rng(first + 1)
            again = call(noisy_mean, "noisy_mean", given, std, other)
            if same(again, got, atol=1e-12, rtol=0):
                raise CheckFailed(
                    "noisy_mean gives the same noise with another rng: draw it from the rng "
                    "it is given (rng.normal)"
                )
            passed(
                "noisy_mean adds one noise draw to the sum and divides by n: the noise std on the "
                "mean is noise_std / n"
            )
            return
    raise CheckFailed(
        f"the noise noisy_mean adds has std {ratio:.2f} · noise_std/n: draw N(0, noise_std²) "
        "once per coordinate, add it to the sum of the updates, divide by n"
    )


def check_cos_many(
    cos_many: Any, weights: Weights, x: np.ndarray, y: np.ndarray, noise_std: float
) -> None:
    """Check ``cos_many``: the cosine between the clean average of the gradients of the clients
    holding one example each of ``x, y`` at ``weights``, and that average with N(0, noise_std²)
    added once to the sum (before dividing by the number of clients).

    In d dimensions random noise is almost orthogonal to any fixed vector, so the cosine is
    ‖m‖ / √(‖m‖² + d·(σ/n)²) for the clean mean m, give or take 0.03. It recognises: the stub;
    a number outside [−1, 1]; noise on every client (σ/√n); noise added to the mean (σ); noise
    scaled to the sum's norm instead of one client's.

    Example:
        >>> w = [np.array([[1.0, -1.0], [0.5, 2.0]]), np.zeros(2)]
        >>> x, y = np.array([[0.3, 0.8], [0.9, 0.1]]), np.array([1, 0])
        >>> check_cos_many(0.99, w, x, y, 0.01)
        ✓ cos_many = 0.99: one noise draw on the sum of 2 clients leaves the average pointing the right way
        >>> check_cos_many(1.5, w, x, y, 0.01)
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: cos_many = 1.5 is no cosine: a cosine lies in [−1, 1]
    """
    require("cos_many", cos_many, "the cosine of the noisy average with the clean one")
    try:
        value = float(cos_many)
    except (TypeError, ValueError):
        raise CheckFailed(f"cos_many should be one number, got {type(cos_many).__name__}") from None
    if not -1.0 <= value <= 1.0:
        raise CheckFailed(f"cos_many = {value:g} is no cosine: a cosine lies in [−1, 1]")
    n = len(x)
    mean = _gradient(weights, x, y)  # the gradient of the mean loss is the mean gradient
    size = sum(np.size(m) for m in mean)
    m = _norm(mean)

    def cos(std: float) -> float:
        return m / np.sqrt(m**2 + size * std**2)

    one = _norm(_gradient(weights, x[:1], y[:1]))
    ratio = noise_std * np.sqrt(size) / one
    if abs(value - cos(noise_std / n)) <= 0.03:
        passed(
            f"cos_many = {value:.2f}: one noise draw on the sum of {n} clients leaves the average "
            "pointing the right way"
        )
        return
    mistakes = [
        (
            cos(noise_std / np.sqrt(n)),
            f"cos_many is what noise on every client gives ({n} draws, std σ/√n on the average): "
            "add one draw to the sum, as the server does",
        ),
        (
            cos(noise_std),
            "cos_many is what noise added to the average gives (std σ): add it to the sum, then "
            f"divide by {n}",
        ),
        (
            1.0 / np.sqrt(1.0 + ratio**2),
            f"the noise is {ratio:.0f} times the *sum*'s norm: keep section 4d's noise, ratio "
            f"{ratio:.0f} relative to one client's ‖g‖ (g_norm)",
        ),
    ]
    for wrong, hint in mistakes:
        if abs(value - wrong) <= 0.03:
            raise CheckFailed(hint)
    raise CheckFailed(
        f"cos_many = {value:.2f} is not the cosine of the noisy average with the clean one: sum "
        f"the {n} gradients, add N(0, σ²) once (σ of section 4d at ratio 7), divide by {n}, and "
        "compare with the clean average"
    )
