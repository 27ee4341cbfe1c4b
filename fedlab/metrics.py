"""Client-drift metrics computed from the clients' updates (``01_one_round_by_hand``, ``04_client_drift``).

For client k with update Δ_k = w_k − w_global and aggregated update Δ:

* drift ‖Δ_k‖₂ — how far local training carried the client from the global model;
* cosine(Δ_k, Δ) = ⟨Δ_k, Δ⟩ / (‖Δ_k‖ ‖Δ‖) — whether the client pulls the same way as the
  federation (1: same direction, 0: orthogonal, < 0: against it).

And at a model w, from every client's full-batch gradient ∇F_k(w) (``04_client_drift``):

* gradient dissimilarity (1/N) Σ_k ‖∇F_k(w) − ∇f(w)‖² with ∇f = Σ_k (n_k/n) ∇F_k — how much the
  clients' objectives disagree (0 when every client holds the same data). It is the gradient
  spread the FedProx paper (Li et al. 2020) tracks in its experiments, computed as its reference
  code does, clients unweighted; the paper's B-local dissimilarity is a ratio instead,
  B(w)² = Σ_k (n_k/n) ‖∇F_k(w)‖² / ‖∇f(w)‖² = 1 + (this spread, size-weighted) / ‖∇f(w)‖².

Written with TensorFlow ops on updates stacked over a leading client axis, so the step functions
(NumPy arrays) and the compiled engine (tensors) share one implementation.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf


def _flat(stacked: list) -> tf.Tensor:
    """[K, ...] arrays (one per weight) -> one [K, P] matrix."""
    return tf.concat(
        [tf.reshape(tf.cast(d, tf.float32), [tf.shape(d)[0], -1]) for d in stacked], axis=1
    )


def client_drift(stacked_deltas: list) -> tf.Tensor:
    """‖Δ_k‖₂ for each client, from per-weight updates stacked on a client axis.

    Example:
        >>> client_drift([np.array([[3.0, 4.0], [0.0, 1.0]])]).numpy().tolist()
        [5.0, 1.0]
    """
    return tf.norm(_flat(stacked_deltas), axis=1)


def update_cosine(stacked_deltas: list, aggregated: list) -> tf.Tensor:
    """Cosine similarity of each client's update to the aggregated update (0 where a norm is 0).

    Example:
        >>> update_cosine([np.array([[1.0, 0.0], [-1.0, 0.0]])], [np.array([2.0, 0.0])]).numpy().tolist()
        [1.0, -1.0]
    """
    flat = _flat(stacked_deltas)
    total = tf.reshape(_flat([tf.expand_dims(tf.cast(a, tf.float32), 0) for a in aggregated]), [-1])
    dots = tf.linalg.matvec(flat, total)
    norms = tf.norm(flat, axis=1) * tf.norm(total)
    return tf.math.divide_no_nan(dots, norms)


def gradient_dissimilarity(stacked_grads: list, num_examples) -> tf.Tensor:
    """(1/N) Σ_k ‖g_k − ḡ‖² with ḡ = Σ_k (n_k/n) g_k, from per-weight gradients stacked on a client axis.

    ``stacked_grads`` holds one ``[N, ...]`` array per weight (client k's full-batch gradient
    ∇F_k in row k) and ``num_examples`` the N clients' example counts n_k. The mean over clients
    is unweighted, as in the FedProx reference code; the centre ḡ = ∇f is example-weighted.
    Not the FedProx paper's B-local dissimilarity, which is a ratio (see the module docstring).

    Example:
        >>> float(gradient_dissimilarity([np.array([[1.0, 0.0], [3.0, 0.0]])], [1, 1]))
        1.0
        >>> float(gradient_dissimilarity([np.array([[1.0], [5.0]])], [3, 1]))  # ḡ = 2: (1 + 9) / 2
        5.0
    """
    flat = _flat(stacked_grads)
    n = tf.cast(tf.reshape(tf.convert_to_tensor(num_examples), [-1]), tf.float32)
    centre = tf.linalg.matvec(flat, n / tf.reduce_sum(n), transpose_a=True)
    return tf.reduce_mean(tf.reduce_sum(tf.square(flat - centre[None]), axis=1))


def accuracy(logits, labels) -> float:
    """Fraction of rows whose arg-max logit equals the integer label.

    Example:
        >>> accuracy(np.array([[2.0, 1.0], [0.0, 3.0]]), np.array([0, 0]))
        0.5
    """
    return float(np.mean(np.argmax(np.asarray(logits), axis=-1) == np.asarray(labels)))


def fairness(accuracies) -> dict[str, float]:
    """How evenly a model serves its clients: statistics of per-client accuracies.

    ``mean`` and ``median`` over clients, ``worst10`` the mean of the worst 10 % (at least one
    client) and ``std``; all ``nan`` when ``accuracies`` is empty or all ``nan``. ``nan`` entries
    are left out.

    Example:
        >>> {k: round(v, 3) for k, v in fairness([0.9, 0.8, 0.5, 1.0]).items()}
        {'mean': 0.8, 'median': 0.85, 'worst10': 0.5, 'std': 0.187}
    """
    values = np.asarray(accuracies, dtype=float).ravel()
    values = np.sort(values[np.isfinite(values)])
    if len(values) == 0:
        return dict.fromkeys(("mean", "median", "worst10", "std"), float("nan"))
    worst = max(1, int(np.ceil(0.1 * len(values))))
    return {
        "mean": float(values.mean()),
        "median": float(np.median(values)),
        "worst10": float(values[:worst].mean()),
        "std": float(values.std()),
    }
