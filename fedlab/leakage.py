"""What updates leak: rebuilding a client's data from the update it sends (``10_what_updates_leak``).

Federated learning keeps the data on the client, but the update it sends is computed *from* that
data. Deep Leakage from Gradients (DLG, Zhu et al. 2019) turns this round: the server, which knows
the model, starts from a random dummy input and changes it until the gradient it would produce
matches the one the client sent. With the label trick of iDLG (Zhao et al. 2020) the label comes
for free: for softmax cross-entropy the gradient of the last bias is ``p − onehot(y)``, whose only
negative entry is the true class. Matching uses the cosine distance of "Inverting Gradients"
(Geiping et al. 2020) by default, which ignores the update's scale (so clipping cannot hide it),
or the squared L2 distance of DLG.

* :class:`Defence` — what the client does before sending: local steps, clipping, Gaussian noise.
* :func:`shared_update` — what the client sends: its gradient, or its FedAvg update as one.
* :func:`infer_labels` — iDLG: the labels, read off the last bias's gradient.
* :func:`invert_gradient` — the attack: L-BFGS-B (SciPy) on the dummy pixels, in float64.
* :func:`attack` — client and attacker together, scored against the truth (:class:`Reconstruction`).
* :func:`plot_reconstructions` — originals above their reconstructions.

The attacker here models the network as a stack of ``Dense`` layers with ReLU between them
(``FedModel``, ``logistic_regression``): ``weights`` is ``[kernel, bias, kernel, bias, ...]``.
It does the naive thing with a FedAvg update (treats it as one gradient at the broadcast weights)
and uses no image prior; stronger attacks exist, so treat the numbers as a lower bound on leakage.

What the numbers say (digits, ``FedModel(10)`` at its seed-0 start, pixel MSE; guessing the
average digit scores 0.074): one example's gradient gives its label exactly and its image to
~1e-15 in under a second. A batch of up to 4 examples with different labels is rebuilt just as
exactly (8: ~1e-3); batches hurt the attack mainly when labels repeat, because then the labels
cannot be read off. A few local steps blur the image (5 steps: ~3e-3) but it stays recognisable.
Clipping alone changes only the scale, which the cosine distance ignores. Gaussian noise stops
the attack only when its total norm ``σ·√d`` is several times the update's norm (σ√d/‖g‖ ≈ 7:
~0.06; ≈ 24: ~0.4), and an update that noisy is mostly noise for training too. That is why
differential privacy clips each client and adds the noise to the *sum* over many clients
(with secure aggregation, so no single update is seen), not to each update.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import keras
import numpy as np
import scipy.optimize
import tensorflow as tf

from fedlab.algorithms import FedAvg
from fedlab.plot import Drawn, new_figure
from fedlab.steps import full_gradient, local_update
from fedlab.validate import check_choice, check_float, check_int

Weights = list[np.ndarray]

DISTANCES = ("cosine", "l2")


@dataclass(frozen=True)
class Defence:
    """What a client does to its update before sending it.

    Attributes:
        local_steps: full-batch gradient steps on the client's data; 1 sends the gradient itself
            (FedSGD), more sends the FedAvg update ``Δ`` as the pseudo-gradient ``−Δ / (client_lr ·
            local_steps)`` (the same scale as one gradient).
        client_lr: the client's learning rate for those steps.
        clip_norm: clip the whole update to this L2 norm (``None``: no clipping), as DP-FedAvg does.
        noise_std: standard deviation of the Gaussian noise added to every coordinate afterwards.

    Example:
        >>> Defence(noise_std=0.01)
        Defence(local_steps=1, client_lr=0.1, clip_norm=None, noise_std=0.01)
    """

    local_steps: int = 1
    client_lr: float = 0.1
    clip_norm: float | None = None
    noise_std: float = 0.0

    def __post_init__(self) -> None:
        check_int("local_steps", self.local_steps, low=1)
        check_float("client_lr", self.client_lr, low=0.0, low_inclusive=False)
        if self.clip_norm is not None:
            check_float("clip_norm", self.clip_norm, low=0.0, low_inclusive=False)
        check_float("noise_std", self.noise_std, low=0.0)


def _check_pair(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim != 2 or len(x) == 0:
        raise ValueError(f"x must be a non-empty 2-D array (examples × features), got {x.shape}")
    if y.shape != (len(x),):
        raise ValueError(f"y must hold one label per example of x, got shape {y.shape}")
    return x.astype(np.float32), y.astype(np.int32)


def shared_update(
    model: keras.Model,
    weights: Weights,
    x: np.ndarray,
    y: np.ndarray,
    defence: Defence | None = None,
    seed: int = 0,
) -> Weights:
    """What a client holding ``x, y`` sends to the server, as a gradient-shaped list of arrays.

    The gradient of the mean loss over ``x`` at ``weights`` (``local_steps=1``), or the FedAvg
    update of ``local_steps`` full-batch steps rescaled to a pseudo-gradient; then clipped to
    ``clip_norm`` and noised with ``noise_std`` (seeded by ``seed``), as ``defence`` says.

    Example:
        >>> from fedlab.models import FedModel, build_model
        >>> x, y = np.full((1, 4), 0.5, "float32"), np.array([1])
        >>> model = build_model(lambda: FedModel(3, hidden_units=2), x, seed=0)
        >>> weights = [v.numpy() for v in model.trainable_variables]
        >>> sent = shared_update(model, weights, x, y, Defence(clip_norm=1e-3))
        >>> round(float(np.sqrt(sum(np.sum(g**2) for g in sent))), 6)
        0.001
    """
    defence = Defence() if defence is None else defence
    if not isinstance(defence, Defence):
        raise TypeError(f"defence must be a fedlab.leakage.Defence, got {type(defence).__name__}")
    x, y = _check_pair(x, y)
    seed = check_int("seed", seed, low=0)
    if defence.local_steps == 1:
        update = [np.asarray(g, np.float64) for g in full_gradient(model, weights, x, y)]
    else:
        algorithm = FedAvg(
            local_epochs=defence.local_steps, batch_size=None, client_lr=defence.client_lr
        )
        result = local_update(model, weights, x, y, algorithm)
        scale = -1.0 / (defence.client_lr * defence.local_steps)
        update = [scale * np.asarray(d, np.float64) for d in result.delta]
    if defence.clip_norm is not None:
        norm = np.sqrt(sum(np.sum(u**2) for u in update))
        update = [u * min(1.0, defence.clip_norm / max(norm, 1e-300)) for u in update]
    if defence.noise_std > 0:
        rng = np.random.default_rng(seed)
        update = [u + rng.normal(0.0, defence.noise_std, u.shape) for u in update]
    return update


def infer_labels(bias_gradient: np.ndarray, num_examples: int = 1) -> np.ndarray:
    """iDLG: the labels of the examples behind a gradient, from its last-layer bias gradient.

    With softmax cross-entropy this gradient is the batch mean of ``p − onehot(y)``: for one
    example its only negative entry is the true label, exactly. For ``num_examples > 1`` the
    ``num_examples`` most negative entries are returned (sorted): right when the labels are all
    different and the model is not yet confident; a repeated label cannot be told apart this way.

    Example:
        >>> infer_labels(np.array([0.1, 0.2, -0.5, 0.2]))
        array([2])
        >>> infer_labels(np.array([-0.3, 0.1, -0.4, 0.6]), num_examples=2)
        array([0, 2])
    """
    bias_gradient = np.asarray(bias_gradient, np.float64)
    if bias_gradient.ndim != 1:
        raise ValueError(
            f"bias_gradient must be 1-D (one entry per class), got {bias_gradient.shape}"
        )
    num_examples = check_int("num_examples", num_examples, low=1, high=len(bias_gradient))
    return np.sort(np.argsort(bias_gradient, kind="stable")[:num_examples])


def _check_dense_stack(weights: Weights) -> list[np.ndarray]:
    weights = [np.asarray(w, np.float64) for w in weights]
    ok = len(weights) >= 2 and len(weights) % 2 == 0
    for kernel, bias in zip(weights[::2], weights[1::2], strict=False):
        ok = ok and kernel.ndim == 2 and bias.shape == (kernel.shape[1],)
    for kernel, following in zip(weights[:-2:2], weights[2::2], strict=False):
        ok = ok and kernel.shape[1] == following.shape[0]
    if not ok:
        raise ValueError(
            "weights must be a stack of Dense layers, [kernel, bias, kernel, bias, ...] "
            f"(e.g. FedModel's), got shapes {[w.shape for w in weights]}"
        )
    return weights


def dense_logits(weights: Weights, x: tf.Tensor) -> tf.Tensor:
    """The logits of a ReLU stack of Dense layers, ``weights = [kernel, bias, ...]`` (float64 ok).

    It is ``FedModel``'s forward pass written with the weights as plain tensors, so the attacker
    can differentiate the gradient itself and run in float64.

    Example:
        >>> w = [np.eye(2), np.zeros(2), np.ones((2, 1)), np.zeros(1)]
        >>> dense_logits(w, tf.constant([[1.0, -3.0]], tf.float64)).numpy().tolist()
        [[1.0]]
    """
    h = x
    for i in range(0, len(weights), 2):
        h = tf.matmul(h, weights[i]) + weights[i + 1]
        if i + 2 < len(weights):
            h = tf.nn.relu(h)
    return h


def _gradient_distance(weights, target, labels, x, distance: str) -> tf.Tensor:
    """How far the gradient that ``x, labels`` would give is from ``target`` (0 = identical)."""
    with tf.GradientTape() as tape:
        tape.watch(weights)
        loss = tf.reduce_mean(
            tf.nn.sparse_softmax_cross_entropy_with_logits(labels, dense_logits(weights, x))
        )
    grads = tape.gradient(loss, weights)
    dot = tf.add_n([tf.reduce_sum(g * t) for g, t in zip(grads, target, strict=True)])
    g_sq = tf.add_n([tf.reduce_sum(g * g) for g in grads])
    t_sq = tf.add_n([tf.reduce_sum(t * t) for t in target])
    if distance == "cosine":
        return 1.0 - dot / tf.sqrt(g_sq * t_sq + 1e-300)
    return (g_sq - 2.0 * dot + t_sq) / t_sq


@dataclass(frozen=True)
class Inversion:
    """What the attacker rebuilt from one shared update (it never sees the client's data).

    Attributes:
        x: the reconstructed inputs, ``(num_examples, num_features)`` in ``[0, 1]``.
        labels: the labels it used (inferred with :func:`infer_labels` unless given).
        gradient_distance: the distance between the dummy and the shared gradient at every
            L-BFGS iteration (its first entry is at the random start).
    """

    x: np.ndarray
    labels: np.ndarray
    gradient_distance: np.ndarray


def invert_gradient(
    weights: Weights,
    shared: Weights,
    num_examples: int = 1,
    labels: Sequence[int] | np.ndarray | None = None,
    distance: str = "cosine",
    max_iter: int = 500,
    seed: int = 0,
) -> Inversion:
    """DLG / iDLG: find ``num_examples`` inputs whose gradient at ``weights`` matches ``shared``.

    Starts from seeded uniform noise in ``[0, 1]`` (the data's range) and runs SciPy's L-BFGS-B,
    bounded to ``[0, 1]``, on the ``distance`` (``"cosine"``: 1 − cosine similarity of the
    whole update; ``"l2"``: squared L2 distance over ‖shared‖²), differentiated by TensorFlow in
    float64. ``labels=None`` reads them from the last bias's gradient (:func:`infer_labels`).

    Example:
        >>> w = [np.ones((2, 3)), np.zeros(3)]  # logistic regression, 2 features, 3 classes
        >>> x, y = np.array([[0.2, 0.9]]), np.array([1])
        >>> shared = [g.numpy() for g in _true_gradient(w, x, y)]
        >>> found = invert_gradient(w, shared)
        >>> found.labels.tolist(), np.round(found.x, 4).tolist()
        ([1], [[0.2, 0.9]])
    """
    weights = _check_dense_stack(weights)
    shared = [np.asarray(s, np.float64) for s in shared]
    if [s.shape for s in shared] != [w.shape for w in weights]:
        raise ValueError(
            f"shared must have the shapes of weights {[w.shape for w in weights]}, "
            f"got {[s.shape for s in shared]}"
        )
    num_classes = weights[-1].shape[0]
    num_examples = check_int("num_examples", num_examples, low=1)
    distance = check_choice("distance", distance, DISTANCES)
    max_iter = check_int("max_iter", max_iter, low=1)
    seed = check_int("seed", seed, low=0)
    if labels is None:
        labels = infer_labels(shared[-1], min(num_examples, num_classes))
        labels = np.resize(labels, num_examples)  # more examples than classes: labels repeat
    labels = np.asarray(labels)
    if labels.shape != (num_examples,) or labels.dtype.kind not in "iu":
        raise ValueError(f"labels must be {num_examples} integer labels, got {labels!r}")
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(f"labels must be in [0, {num_classes - 1}], got {labels.tolist()}")

    w_t = [tf.constant(w) for w in weights]
    target = [tf.constant(s) for s in shared]
    y_t = tf.constant(labels, tf.int32)
    shape = (num_examples, weights[0].shape[0])

    @tf.function(reduce_retracing=True)
    def value_and_grad(flat: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        with tf.GradientTape() as tape:
            tape.watch(flat)
            value = _gradient_distance(w_t, target, y_t, tf.reshape(flat, shape), distance)
        return value, tape.gradient(value, flat)

    def objective(flat: np.ndarray) -> tuple[float, np.ndarray]:
        value, grad = value_and_grad(tf.constant(flat))
        return float(value), grad.numpy()

    rng = np.random.default_rng(seed)
    start = rng.uniform(0.0, 1.0, size=shape).ravel()
    curve = [objective(start)[0]]

    def record(intermediate_result: scipy.optimize.OptimizeResult) -> None:
        curve.append(float(intermediate_result.fun))  # SciPy passes the iterate's value

    result = scipy.optimize.minimize(
        objective,
        start,
        jac=True,
        method="L-BFGS-B",
        bounds=[(0.0, 1.0)] * start.size,
        callback=record,
        options={"maxiter": max_iter, "ftol": 1e-15, "gtol": 1e-12},
    )
    return Inversion(result.x.reshape(shape), labels, np.array(curve))


def _true_gradient(weights: Weights, x: np.ndarray, y: np.ndarray) -> list[tf.Tensor]:
    """The float64 gradient of the mean cross-entropy of ``x, y`` (for doctests and tests)."""
    w = [tf.constant(np.asarray(a, np.float64)) for a in weights]
    with tf.GradientTape() as tape:
        tape.watch(w)
        logits = dense_logits(w, tf.constant(np.asarray(x, np.float64)))
        loss = tf.reduce_mean(
            tf.nn.sparse_softmax_cross_entropy_with_logits(tf.constant(y, tf.int32), logits)
        )
    return tape.gradient(loss, w)


@dataclass(frozen=True)
class Reconstruction:
    """One attack scored against the truth: what the client held and what the attacker rebuilt.

    The reconstructed examples come in no particular order, so they are matched to the true ones
    first (the pairing with the least total squared error, SciPy's ``linear_sum_assignment``).

    Attributes:
        x_true: the client's inputs, ``(n, num_features)``.
        label_true: their labels.
        x_found: the matched reconstructions, row ``i`` paired with ``x_true[i]``.
        label_found: the labels the attacker used for them.
        errors: per-example mean squared pixel error (pixels in ``[0, 1]``).
        gradient_distance: the attacker's loss curve (see :class:`Inversion`).
        defence: the client's :class:`Defence`.
    """

    x_true: np.ndarray
    label_true: np.ndarray
    x_found: np.ndarray
    label_found: np.ndarray
    errors: np.ndarray
    gradient_distance: np.ndarray
    defence: Defence

    @property
    def error(self) -> float:
        """Mean squared pixel error over the examples (0 = perfect; the average digit scores ~0.07)."""
        return float(np.mean(self.errors))

    @property
    def psnr(self) -> float:
        """Peak signal-to-noise ratio in dB, ``10 log10(1 / error)`` (pixels in [0, 1])."""
        return float(10.0 * np.log10(1.0 / max(self.error, 1e-30)))

    @property
    def labels_recovered(self) -> bool:
        """Whether the attacker's labels are the true ones (as a multiset)."""
        return bool(np.array_equal(np.sort(self.label_true), np.sort(self.label_found)))


def match_reconstructions(x_true: np.ndarray, x_found: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pair each true example with one reconstruction (least total squared error).

    Returns the order of ``x_found`` that lines it up with ``x_true``, and the per-example MSE.

    Example:
        >>> order, mse = match_reconstructions(np.array([[0.0], [1.0]]), np.array([[0.9], [0.0]]))
        >>> order.tolist(), np.round(mse, 4).tolist()
        ([1, 0], [0.0, 0.01])
    """
    x_true, x_found = np.asarray(x_true, np.float64), np.asarray(x_found, np.float64)
    if x_true.shape != x_found.shape or x_true.ndim != 2:
        raise ValueError(
            f"x_true and x_found must be 2-D with equal shapes, got {x_true.shape} and {x_found.shape}"
        )
    cost = ((x_true[:, None, :] - x_found[None, :, :]) ** 2).mean(axis=2)
    rows, order = scipy.optimize.linear_sum_assignment(cost)
    return order, cost[rows, order]


def attack(
    model: keras.Model,
    weights: Weights,
    x: np.ndarray,
    y: np.ndarray,
    defence: Defence | None = None,
    distance: str = "cosine",
    max_iter: int = 500,
    seed: int = 0,
) -> Reconstruction:
    """The whole story: the client sends :func:`shared_update`, the server inverts it.

    The attacker knows ``weights`` (it sent them), how many examples the client used and the
    update; it infers the labels (iDLG) and runs :func:`invert_gradient`. The result is scored
    against the client's ``x, y``.

    Example:
        >>> result = attack(model, weights, digits.x_train[:1], digits.y_train[:1])  # doctest: +SKIP
        >>> result.labels_recovered, result.error < 1e-3  # doctest: +SKIP
        (True, True)
    """
    defence = Defence() if defence is None else defence
    x, y = _check_pair(x, y)
    shared = shared_update(model, weights, x, y, defence, seed)
    found = invert_gradient(weights, shared, len(x), None, distance, max_iter, seed)
    order, errors = match_reconstructions(x, found.x)
    return Reconstruction(
        x, y, found.x[order], found.labels[order], errors, found.gradient_distance, defence
    )


def plot_reconstructions(
    results: Sequence[Reconstruction],
    titles: Sequence[str] | None = None,
    axes=None,
    image_shape: tuple[int, int] = (8, 8),
) -> Drawn:
    """Originals (top row) above their reconstructions (bottom row), one column per example.

    Columns are grouped by result; each group is titled (``titles``, or the MSE) and every
    reconstruction shows its label. ``axes``: a 2 × (total examples) grid, or ``None`` for a new
    figure.

    Example:
        >>> plot_reconstructions([attack(model, weights, x[:1], y[:1])], ["no defence"])  # doctest: +SKIP
    """

    results = list(results)
    if not results or not all(isinstance(r, Reconstruction) for r in results):
        raise TypeError("results must be a non-empty sequence of fedlab.leakage.Reconstruction")
    if titles is not None and len(titles) != len(results):
        raise ValueError(
            f"titles must hold one title per result ({len(results)}), got {len(titles)}"
        )
    columns = sum(len(r.x_true) for r in results)
    if axes is None:
        fig, axes = new_figure(
            2, columns, figsize=(1.0 * columns + 0.4, 2.5), squeeze=False, layout="constrained"
        )
    axes = np.asarray(axes, dtype=object).reshape(2, -1) if np.size(axes) == 2 * columns else None
    if axes is None:
        raise ValueError(f"axes must hold a 2 × {columns} grid for these results")
    fig = axes[0, 0].figure
    originals, found, column = [], [], 0
    for k, result in enumerate(results):
        for i in range(len(result.x_true)):
            top, bottom = axes[0, column], axes[1, column]
            for ax, image in ((top, result.x_true[i]), (bottom, result.x_found[i])):
                ax.imshow(np.reshape(image, image_shape), cmap="gray_r", vmin=0, vmax=1)
                ax.set_xticks([])
                ax.set_yticks([])
            bottom.set_xlabel(f"as {result.label_found[i]}", fontsize=8)
            if i == 0:
                title = titles[k] if titles is not None else f"MSE {result.error:.2g}"
                top.set_title(title, fontsize=8, loc="left")
            originals.append(np.reshape(result.x_true[i], image_shape))
            found.append(np.reshape(result.x_found[i], image_shape))
            column += 1
    axes[0, 0].set_ylabel("original", fontsize=8)
    axes[1, 0].set_ylabel("rebuilt", fontsize=8)
    data = {
        "original": np.array(originals),
        "reconstruction": np.array(found),
        "error": np.concatenate([r.errors for r in results]),
    }
    return Drawn(fig, tuple(axes.ravel()), data)
