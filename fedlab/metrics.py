"""Client-drift metrics computed from the clients' updates (``01_one_round_by_hand``, ``04_client_drift``).

For client k with update Δ_k = w_k − w_global and aggregated update Δ:

* drift ‖Δ_k‖₂ — how far local training carried the client from the global model;
* cosine(Δ_k, Δ) = ⟨Δ_k, Δ⟩ / (‖Δ_k‖ ‖Δ‖) — whether the client pulls the same way as the
  federation (1: same direction, 0: orthogonal, < 0: against it).

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


def accuracy(logits, labels) -> float:
    """Fraction of rows whose arg-max logit equals the integer label.

    Example:
        >>> accuracy(np.array([[2.0, 1.0], [0.0, 3.0]]), np.array([0, 0]))
        0.5
    """
    return float(np.mean(np.argmax(np.asarray(logits), axis=-1) == np.asarray(labels)))
