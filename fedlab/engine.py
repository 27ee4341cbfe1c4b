"""The fast engine behind :func:`fedlab.simulate`: many rounds, all of a round's clients trained at once (``01_one_round_by_hand``).

:class:`Simulation` keeps the global weights, server-optimiser state and :class:`History`, and
runs one round per :meth:`Simulation.step`. Inside a round, every selected client trains in one
compiled TensorFlow function:

* ``strategy="vectorized"`` (default): the clients' weights are stacked on a leading client axis
  and each local SGD step runs for all clients together with ``tf.vectorized_map`` over Keras 3
  ``model.stateless_call``. Clients with fewer examples or a smaller last batch are masked.
* ``strategy="loop"``: a compiled loop over clients (a ``tf.while_loop``); for compute-bound
  models (CNNs, transformers) this can be as fast and uses less memory.

Both use the same client sampling and batch order as :mod:`fedlab.steps`, so a round of the
engine equals a round done by hand (``tests/test_engine.py``). Tracing happens once per
:class:`Simulation`, not once per round.

Optional, off by default so that the normal path costs nothing extra:

* ``stragglers=Stragglers(...)`` (:mod:`fedlab.stragglers`): some clients train fewer local
  steps (their rows of the batch plan are cut short and masked) and may be dropped;
* ``dissimilarity_every=k``: every k rounds, every client's full-batch gradient at the global
  model (one more compiled pass over all the training data, vectorised over clients like
  training) and their dissimilarity, :meth:`Simulation.gradient_dissimilarity`.

Algorithms with server or client state (SCAFFOLD's control variates) get their norms recorded
every round (``server_state_norm``, ``client_state_norm``).
"""

from __future__ import annotations

import copy
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

from fedlab import rounds, steps
from fedlab.aggregators import Aggregate, ClientUpdates, WeightedMean
from fedlab.algorithms import Algorithm, ProxAlgorithm, ScaffoldAlgorithm
from fedlab.compression import Codec, ErrorFeedback
from fedlab.compute import training_cost
from fedlab.history import History, RoundRecord
from fedlab.metrics import client_drift, gradient_dissimilarity, update_cosine
from fedlab.models import ModelFn, build_model, num_parameters
from fedlab.personalization import NO_PERSONALIZATION
from fedlab.poisoning import Attack, Attackers, poison_dataset, tamper_round
from fedlab.rounds import EXPLODED, DivergenceError
from fedlab.secure_aggregation import SecureAggregation
from fedlab.stragglers import Stragglers, step_budgets

__all__ = ["EXPLODED", "STRATEGIES", "DivergenceError", "RunInterrupted", "Simulation", "simulate"]
from fedlab.validate import check_choice, check_int

STRATEGIES = ("vectorized", "loop")
GRADIENT_CHUNK = 32768  # examples per step (over all clients) when taking full-batch gradients

Callback = Callable[[RoundRecord, History], bool | None]


class RunInterrupted(KeyboardInterrupt):
    """A run stopped by Ctrl-C (or *Interrupt the kernel*): the round in flight was undone, and
    the rounds done are kept in ``history``.

    It is a ``KeyboardInterrupt``, so a loop of runs stops too; catch it to keep what was done::

        try:
            history = fedlab.simulate(...)
        except fedlab.RunInterrupted as stopped:
            history = stopped.history

    Attributes:
        history: the history of the rounds completed before the interrupt.
    """

    def __init__(self, history: History):
        self.history = history
        super().__init__(
            f"interrupted after round {len(history)} (a round in flight is undone): the rounds "
            "done are kept in the exception's .history"
        )


def _check_callbacks(callbacks: object) -> tuple[Callback, ...]:
    """``callbacks`` as a tuple of functions: one function is accepted as a list of one."""
    if callable(callbacks):
        return (callbacks,)
    if isinstance(callbacks, str | bytes) or not hasattr(callbacks, "__iter__"):
        raise TypeError(
            "callbacks must be a function f(record, history) or a list of them, got "
            f"{type(callbacks).__name__}"
        )
    checked = tuple(callbacks)
    for i, callback in enumerate(checked):
        if not callable(callback):
            raise TypeError(
                f"callbacks[{i}] must be a function f(record, history), got "
                f"{type(callback).__name__}"
            )
    return checked


class _Stoppable(Protocol):
    def is_set(self) -> bool: ...


def _check_data(data, split) -> None:
    """Refuse data the engine cannot train on correctly, before anything is built: each error
    names the field (``data.y_train``) and what is allowed."""
    for name in ("x_train", "y_train", "x_test", "y_test"):
        if not hasattr(data, name):
            raise TypeError(
                f"data must be a fedlab.data.Dataset (missing {name!r}), got {type(data).__name__}"
            )
    if not hasattr(split, "client_indices"):
        raise TypeError(f"split must be a fedlab.partition.ClientSplit, got {type(split).__name__}")
    x_train, x_test = np.asarray(data.x_train), np.asarray(data.x_test)
    for part, x in (("train", x_train), ("test", x_test)):
        y = np.asarray(getattr(data, f"y_{part}"))
        if x.ndim < 2 or len(x) != len(y):
            raise ValueError(
                f"data.x_{part} holds {len(x)} examples but data.y_{part} {len(y)} labels: "
                "one label (or label sequence) per example"
            )
        _check_labels(f"data.y_{part}", y, getattr(data, "num_classes", None))
    if len(x_test) == 0:
        raise ValueError(
            "data.x_test is empty: the engine measures the global model on the test set every "
            "round; keep some examples for it (e.g. fedlab.data.load_digits's split)"
        )
    if x_train.shape[1:] != x_test.shape[1:]:
        raise ValueError(
            f"data.x_train's examples have shape {x_train.shape[1:]} but data.x_test's "
            f"{x_test.shape[1:]}: train and test inputs must have the same shape"
        )
    n = len(x_train)
    for k, indices in enumerate(split.client_indices):
        if len(indices) == 0:
            raise ValueError(
                f"split: client {k} has no training examples; every client needs at least one"
            )
        if indices.min() < 0 or indices.max() >= n:
            raise ValueError(
                f"split: client {k} has indices outside the {n} training examples of data"
            )
    for k, indices in enumerate(getattr(split, "test_indices", None) or ()):
        if len(indices) and (indices.min() < 0 or indices.max() >= n):
            raise ValueError(
                f"split: client {k}'s test indices are outside the {n} training examples of data"
            )


def _check_labels(name: str, y: np.ndarray, num_classes: object) -> None:
    """Labels must be whole class ids in ``[0, num_classes)``: a float label would be truncated
    and an int64 beyond int32 wrapped by the engine's int32 labels, silently."""
    if y.dtype == bool or not np.issubdtype(y.dtype, np.number):
        raise TypeError(f"{name} must hold integer class ids, got dtype {y.dtype}")
    if y.size and not np.issubdtype(y.dtype, np.integer):
        whole = np.isfinite(y).all() and np.array_equal(y, np.round(y))
        if not whole:
            raise ValueError(
                f"{name} holds non-integer labels (e.g. {y.flat[np.argmax(y != np.round(y))]!r}): "
                "labels are class ids 0, 1, 2, ...; round or map them first"
            )
    if not y.size:
        return
    low, high = y.min(), y.max()
    limit = num_classes if isinstance(num_classes, int) and num_classes > 0 else 2**31 - 1
    if low < 0 or high >= limit:
        bad = int(low) if low < 0 else int(high)
        allowed = f"[0, {num_classes})" if limit == num_classes else "[0, 2**31)"
        raise ValueError(f"{name} holds the label {bad}, outside {allowed}: class ids only")


def _check_outputs(model, data) -> int:
    """The model must give a score to every class a label names; return its number of outputs."""
    sample = np.asarray(data.x_train[:1], np.float32)
    width = int(np.shape(model(sample))[-1])
    high = max(int(np.max(data.y_train)), int(np.max(data.y_test)) if len(data.y_test) else 0)
    if high >= width:
        raise ValueError(
            f"the model gives {width} outputs (class scores) but the data has the label {high}: "
            f"model_fn must build a model with at least {high + 1} outputs (e.g. "
            f"FedModel(num_classes={high + 1}))"
        )
    return width


def _repeat(count: tf.Tensor, body: Callable, loop_vars: tuple) -> tuple:
    """``body(i, *loop_vars)`` for ``i`` in ``0 .. count-1`` as an explicit ``tf.while_loop``.

    The engine's loops over local steps and clients are written with this instead of a Python
    ``for ... in tf.range(...)``: that form needs AutoGraph to rewrite the method, which it did not
    always do (seen once in a notebook: "iterating over a symbolic tf.Tensor"). An explicit loop
    traces the same graph every time, with AutoGraph off.
    """
    return tf.while_loop(lambda i, *_: i < count, body, (tf.constant(0), *loop_vars))


class _Kernel:
    """The compiled parts of a simulation: a round, test evaluation, every client's gradient.

    Tracing them costs a second or two, so a kernel is shared by every :class:`Simulation` whose
    graphs would be the same: same model function and weight shapes, same algorithm hooks (the
    type, aggregator and any graph constant such as FedProx's μ, but not E, B or the learning
    rates, which are inputs), same strategy and data shapes (see :func:`_kernel`). Everything
    that differs between simulations — weights, non-trainable values, training data, batch
    plans, learning rate, states — is an argument of the compiled functions, never captured.
    """

    def __init__(self, model, algorithm: Algorithm, strategy: str, specs: dict):
        self.model, self.algorithm, self.strategy = model, algorithm, strategy
        self.ignore_class = specs["ignore_class"]
        self.label_groups = specs["label_groups"]
        self.trace_count = 0
        w, nt, x, y = specs["weights"], specs["non_trainable"], specs["x"], specs["y"]
        stacked = [tf.TensorSpec([None, *spec.shape], tf.float32) for spec in w]
        plan = [
            tf.TensorSpec([None, None, None], tf.int32),  # idx[client, step, example]
            tf.TensorSpec([None, None, None], tf.float32),  # mask, 0 for padding
            tf.TensorSpec([], tf.float32),  # client learning rate
        ]
        self.round_fn = tf.function(
            self._round,
            autograph=False,
            input_signature=[
                w,
                stacked,  # where each client starts (the global model, or its own head: FedPer)
                *plan,
                tf.TensorSpec([None], tf.float32),  # examples per client
                specs["states"],
                specs["broadcast"],
                nt,
                x,
                y,
            ],
        )
        self.personal_fn = tf.function(
            self._personal,
            autograph=False,
            input_signature=[stacked, w, *plan, tf.TensorSpec([], tf.float32), nt, x, y],
        )
        self.eval_fn = tf.function(self._evaluate, input_signature=[w, nt, x, y], autograph=False)
        self.client_eval_fn = tf.function(
            self._client_evaluate,
            autograph=False,
            input_signature=[
                stacked,
                tf.TensorSpec([None, None], tf.int32),  # idx[client, example]
                tf.TensorSpec([None, None], tf.float32),
                nt,
                x,
                y,
            ],
        )
        self.gradient_fn = tf.function(
            self._gradients,
            autograph=False,
            input_signature=[
                w,
                tf.TensorSpec([None, None, None], tf.int32),
                tf.TensorSpec([None, None, None], tf.float32),
                tf.TensorSpec([None], tf.int32),
                nt,
                x,
                y,
            ],
        )

    def _client_step(self, w, anchor, xb, yb, mb, lr, state, broadcast, nt, lam=None):
        """One local SGD step of one client on a (possibly padded) batch; ``mb`` masks padding.

        ``anchor`` is the broadcast global model. With ``lam`` (a personal model, Ditto) the step
        is plain SGD on the client's loss followed by the proximal step of ``λ/2‖v − anchor‖²``,
        ``v ← (v + η λ anchor) / (1 + η λ)``: stable for every λ ≥ 0, ``v = anchor`` as λ → ∞.
        """
        with tf.GradientTape() as tape:
            tape.watch(w)
            logits, _ = self.model.stateless_call(w, nt, xb, training=True)
            n = tf.reduce_sum(mb)
            losses = steps.example_losses(yb, logits, self.ignore_class, self.label_groups)
            loss = tf.reduce_sum(losses * mb) / tf.maximum(n, 1.0)
        grads = steps.dense_gradients(tape.gradient(loss, w))
        if lam is None:
            grads = self.algorithm.local_gradient(grads, w, anchor, state, broadcast)
        active = tf.cast(n > 0, tf.float32)  # clients that ran out of batches stand still
        new = [wi - (lr * active) * g for wi, g in zip(w, grads, strict=True)]
        if lam is not None:
            pull = lr * lam * active
            new = [(v + pull * a) / (1.0 + pull) for v, a in zip(new, anchor, strict=True)]
        return new, loss, n

    def _train_vectorized(self, start, idx, mask, states, x, y, step):
        """Local training of every client at once from ``start`` ([client, ...] weights)."""
        num = tf.shape(idx)[0]

        def one_step(s, w, loss_sum, seen):
            xb, yb, mb = tf.gather(x, idx[:, s]), tf.gather(y, idx[:, s]), mask[:, s]
            w, loss, n = tf.vectorized_map(lambda args: step(*args), (w, xb, yb, mb, states))
            return s + 1, w, loss_sum + loss * n, seen + n

        _, w, loss_sum, seen = _repeat(
            tf.shape(idx)[1], one_step, (list(start), tf.zeros([num]), tf.zeros([num]))
        )
        return w, loss_sum / seen

    def _train_loop(self, start, idx, mask, states, x, y, step):
        """Local training of one client after another (a compiled loop) from ``start``."""
        num = tf.shape(idx)[0]

        def one_client(k, trained, losses):
            state_k = [state[k] for state in states]

            def one_step(s, w, loss_sum, seen):
                xb, yb = tf.gather(x, idx[k, s]), tf.gather(y, idx[k, s])
                w, loss, n = step(w, xb, yb, mask[k, s], state_k)
                return s + 1, w, loss_sum + loss * n, seen + n

            zero = tf.constant(0.0)
            w0 = [w[k] for w in start]
            _, w, loss_sum, seen = _repeat(tf.shape(idx)[1], one_step, (w0, zero, zero))
            trained = [t.write(k, wk) for t, wk in zip(trained, w, strict=True)]
            return k + 1, trained, losses.write(k, loss_sum / seen)

        trained = [tf.TensorArray(tf.float32, size=num, element_shape=s.shape[1:]) for s in start]
        losses = tf.TensorArray(tf.float32, size=num)
        _, trained, losses = _repeat(num, one_client, (trained, losses))
        return [t.stack() for t in trained], losses.stack()

    def _train(self, start, idx, mask, states, x, y, step):
        train = self._train_vectorized if self.strategy == "vectorized" else self._train_loop
        return train(start, idx, mask, states, x, y, step)

    def _new_client_states(self, states, deltas, mask, lr, broadcast):
        """Each participating client's state after its local training (vectorised over clients)."""
        if not states:
            return []
        num_steps = tf.reduce_sum(tf.cast(tf.reduce_sum(mask, axis=2) > 0, tf.float32), axis=1)

        def one_client(args):
            state_k, delta_k, steps_k = args
            return self.algorithm.client_state_update(state_k, delta_k, steps_k, lr, broadcast)

        return tf.vectorized_map(one_client, (states, deltas, num_steps))

    def _round(self, global_w, start, idx, mask, lr, num_examples, states, broadcast, nt, x, y):
        self.trace_count += 1  # Python side effect: runs only while tracing

        def step(w, xb, yb, mb, state):
            return self._client_step(w, global_w, xb, yb, mb, lr, state, broadcast, nt)

        trained, client_loss = self._train(start, idx, mask, states, x, y, step)
        deltas = [t - s for t, s in zip(trained, start, strict=True)]
        aggregated = _GRAPH_MEAN(deltas, num_examples)  # used when the run's aggregator is it
        new_states = self._new_client_states(states, deltas, mask, lr, broadcast)
        drift, cosine = client_drift(deltas), update_cosine(deltas, aggregated)
        return aggregated, client_loss, drift, cosine, new_states, deltas

    def _personal(self, start, anchor, idx, mask, lr, lam, nt, x, y):
        """Personal models trained from ``start`` towards ``anchor`` with strength ``lam``
        (Ditto; ``lam = 0``: plain local training). Returns them, the losses and the drifts."""

        def step(w, xb, yb, mb, state):
            return self._client_step(w, anchor, xb, yb, mb, lr, state, [], nt, lam=lam)

        trained, losses = self._train(start, idx, mask, [], x, y, step)
        drift = client_drift([t - s for t, s in zip(trained, start, strict=True)])
        return trained, losses, drift

    def _evaluate(self, w, nt, x, y):
        logits, _ = self.model.stateless_call(w, nt, x, training=False)
        return steps.evaluation_sums(y, logits, self.ignore_class, self.label_groups)

    def _client_evaluate(self, stacked_w, idx, mask, nt, x, y):
        """Loss sum, correct and count of client k's model (row k) on its examples ``idx[k]``."""

        def one_client(args):
            w_k, idx_k, mask_k = args
            logits, _ = self.model.stateless_call(w_k, nt, tf.gather(x, idx_k), training=False)
            return steps.evaluation_sums(
                tf.gather(y, idx_k), logits, self.ignore_class, self.label_groups, mask_k
            )

        if self.strategy == "vectorized":
            return tf.vectorized_map(one_client, (stacked_w, idx, mask))
        signature = (tf.TensorSpec([], tf.float32),) * 3
        return tf.map_fn(one_client, (stacked_w, idx, mask), fn_output_signature=signature)

    def _gradients(self, w, idx, mask, num_chunks, nt, x, y):
        """Every client's mean loss gradient over chunks of its data (vectorised or looped)."""

        def grad_sum(xb, yb, mb):
            with tf.GradientTape() as tape:
                tape.watch(w)
                logits, _ = self.model.stateless_call(w, nt, xb, training=False)
                losses = steps.example_losses(yb, logits, self.ignore_class, self.label_groups)
                loss = tf.reduce_sum(losses * mb)
            return steps.dense_gradients(tape.gradient(loss, w))

        num = tf.shape(idx)[0]
        if self.strategy == "vectorized":

            def one_chunk(s, sums):
                xb, yb = tf.gather(x, idx[:, s]), tf.gather(y, idx[:, s])
                grads = tf.vectorized_map(lambda args: grad_sum(*args), (xb, yb, mask[:, s]))
                return s + 1, [t + g for t, g in zip(sums, grads, strict=True)]

            sums = [tf.zeros([num, *g.shape]) for g in w]
            _, sums = _repeat(tf.shape(idx)[1], one_chunk, (sums,))
        else:

            def one_client(k, out):
                def one_chunk(s, total):
                    xb, yb = tf.gather(x, idx[k, s]), tf.gather(y, idx[k, s])
                    grads = grad_sum(xb, yb, mask[k, s])
                    return s + 1, [t + g for t, g in zip(total, grads, strict=True)]

                _, total = _repeat(num_chunks[k], one_chunk, ([tf.zeros_like(g) for g in w],))
                return k + 1, [o.write(k, t) for o, t in zip(out, total, strict=True)]

            out = [tf.TensorArray(tf.float32, size=num, element_shape=g.shape) for g in w]
            _, out = _repeat(num, one_client, (out,))
            sums = [o.stack() for o in out]
        n = tf.cast(tf.reduce_sum(mask, axis=[1, 2]), tf.float32)
        return [g / tf.reshape(n, [-1] + [1] * (len(g.shape) - 1)) for g in sums]


_GRAPH_MEAN = WeightedMean()  # the aggregator that can run inside the compiled round


def _finite_rows(stacked: list[np.ndarray]) -> np.ndarray:
    """Per client (row), whether every weight is finite."""
    return np.all([np.isfinite(a.reshape(len(a), -1)).all(axis=1) for a in stacked], axis=0)


_KERNELS: OrderedDict[tuple, _Kernel] = OrderedDict()
_KERNELS_LOCK = threading.Lock()
MAX_KERNELS = 32  # traced kernels kept (least recently used dropped first)
_DEAD_FUNCTIONS: list[tuple] = []  # model functions garbage-collected: their kernels go next


def _hook_key(algorithm: Algorithm) -> object:
    """What of ``algorithm`` the compiled graph depends on: its client-update hooks and their
    constants (never the aggregator, which runs after the graph unless it is the plain mean).

    fedlab's own algorithm classes read only μ (FedProx) inside the graph; E, B and the learning
    rates are inputs or batch plans. Any other subclass is keyed by the whole (frozen, hashable)
    object, so it never shares a trace with different settings.
    """
    if type(algorithm).graph_is_fedavg:  # e.g. DP-FedAvg: only outside parts differ
        return (Algorithm, None)
    if type(algorithm) in (Algorithm, ProxAlgorithm, ScaffoldAlgorithm):
        return (type(algorithm), getattr(algorithm, "mu", None))
    return algorithm


def _kernel(model_fn: ModelFn, model, algorithm: Algorithm, strategy: str, specs: dict) -> _Kernel:
    """The shared kernel for these graphs, traced by an earlier simulation or made now.

    A ``model_fn`` that compares by value (:func:`fedlab.models.model_fn`'s result) is a key
    any later simulation can hit. A function compared by identity — a named function, or a new
    ``lambda`` every time, as in ``simulate(..., lambda: FedModel(10), ...)`` — is keyed by its
    identity only while it lives: when it is garbage-collected its kernels are dropped, since no
    later simulation can pass that function again (30 runs from fresh lambdas would otherwise hold
    30 models and their compiled graphs).
    """
    identity = type(model_fn).__eq__ is object.__eq__
    try:
        fn_key = ("id", id(model_fn)) if identity else model_fn
        key = (fn_key, type(model), _hook_key(algorithm), strategy, repr(specs))
        hash(key)
    except TypeError:
        return _Kernel(model, algorithm, strategy, specs)
    with _KERNELS_LOCK:
        _drop_dead_kernels()
        kernel = _KERNELS.get(key)
        if kernel is None:
            kernel = _Kernel(model, algorithm, strategy, specs)
            if identity:
                try:  # forget the kernel when the function is gone
                    weakref.finalize(model_fn, _forget_kernels, fn_key)
                except TypeError:  # cannot tell when it dies: do not keep it
                    return kernel
            _KERNELS[key] = kernel
            while len(_KERNELS) > MAX_KERNELS:
                _KERNELS.popitem(last=False)
        _KERNELS.move_to_end(key)
        return kernel


def _forget_kernels(fn_key: tuple) -> None:
    """Note that a model function was garbage-collected: the next :func:`_kernel` drops its
    kernels (a finalizer may run at any moment, even inside ``_kernel``: it only appends)."""
    _DEAD_FUNCTIONS.append(fn_key)


def _drop_dead_kernels() -> None:
    """Drop the kernels of the model functions garbage-collected so far (lock held)."""
    while _DEAD_FUNCTIONS:
        fn_key = _DEAD_FUNCTIONS.pop()
        for key in [key for key in _KERNELS if key[0] == fn_key]:
            del _KERNELS[key]


class Simulation:
    """A federated run in progress: global model, server state and history so far.

    Args:
        algorithm: e.g. ``FedAvg(...)``; see :mod:`fedlab.algorithms`.
        model_fn: returns a fresh Keras model (any model made of standard layers, subclassed too).
        data: a :class:`fedlab.data.Dataset`.
        split: a :class:`fedlab.partition.ClientSplit` of ``data``'s training set.
        clients_per_round: clients sampled each round (default: all).
        seed: seeds initial weights, client sampling and batch order.
        strategy: ``"vectorized"`` or ``"loop"`` (see the module docstring).
        evaluate_every: evaluate the global model on the test set every this many rounds.
        stragglers: e.g. ``Stragglers(0.5, drop=False)``: each round a fraction of the selected
            clients do less local work and may be dropped (:mod:`fedlab.stragglers`).
        dissimilarity_every: record :meth:`gradient_dissimilarity` at the global model every
            this many rounds (``None``: never; it costs a pass over every client's data).
        compression: a codec from :mod:`fedlab.compression` (e.g. ``Float16()``,
            ``StochasticQuantizer(bits=4)``, ``TopK(0.01)``) or ``ErrorFeedback(codec)``, applied
            to every client's update before it is sent up (:func:`fedlab.steps.compress_update`);
            ``bytes_up`` then counts the encoded arrays. Error-feedback residuals are kept per
            client, also for clients not selected. ``None``: updates travel as float32.
        max_local_steps: a compute budget: no client takes more than this many local steps in
            a round; one int for every client or one per client (slow phones, fast laptops;
            :func:`fedlab.stragglers.step_budgets`). ``None``: all of ``local_epochs``.
        secure_aggregation: e.g. ``SecureAggregation(dropout=0.1)``: every round's weighted
            mean is computed with the Bonawitz et al. protocol
            (:mod:`fedlab.secure_aggregation`); ``bytes_up`` counts its messages. Not combined
            with ``compression`` or DP-FedAvg here.

    Example:
        >>> sim = Simulation(FedAvg(), lambda: FedModel(10), digits, split, clients_per_round=5)  # doctest: +SKIP
        >>> sim.step().test_accuracy  # doctest: +SKIP
    """

    def __init__(
        self,
        algorithm: Algorithm,
        model_fn: ModelFn,
        data,
        split,
        clients_per_round: int | None = None,
        seed: int = 0,
        strategy: str = "vectorized",
        evaluate_every: int = 1,
        stragglers: Stragglers | None = None,
        dissimilarity_every: int | None = None,
        compression: Codec | ErrorFeedback | None = None,
        max_local_steps: int | Sequence[int] | None = None,
        secure_aggregation: SecureAggregation | None = None,
        attackers: Attackers | None = None,
    ):
        if not isinstance(algorithm, Algorithm):
            raise TypeError(
                f"algorithm must be a fedlab Algorithm such as FedAvg(), got {type(algorithm).__name__}"
            )
        _check_data(data, split)
        if attackers is not None and not isinstance(attackers, Attackers):
            raise TypeError(
                "attackers must be a fedlab Attackers such as Attackers(SignFlip(), count=2) or "
                f"None, got {type(attackers).__name__}"
            )
        self.attackers = attackers
        # the malicious clients, fixed for the run: they poison their own data once, here, and
        # tamper with their updates every round (fedlab.poisoning)
        self.malicious = np.zeros(0, np.int64)
        if attackers is not None:
            data, self.malicious = poison_dataset(
                data, split, attackers, check_int("seed", seed, low=0)
            )
        self._attack = attackers.attack if attackers is not None else Attack()
        self.algorithm = algorithm
        # the optional personalisation slot: what each client keeps for itself
        self.personal = algorithm.personalization or NO_PERSONALIZATION
        self.split = split
        self.num_clients = len(split.client_indices)
        if clients_per_round is None:
            clients_per_round = self.num_clients
        self.clients_per_round = check_int(
            "clients_per_round", clients_per_round, low=1, high=self.num_clients
        )
        self.seed = check_int("seed", seed, low=0)
        self.strategy = check_choice("strategy", strategy, STRATEGIES)
        self.evaluate_every = check_int("evaluate_every", evaluate_every, low=1)
        if stragglers is not None:
            if not isinstance(stragglers, Stragglers):
                raise TypeError(
                    "stragglers must be a fedlab Stragglers such as Stragglers(0.5) or None, "
                    f"got {type(stragglers).__name__}"
                )
            stragglers.check_epochs(algorithm.local_epochs)
        self.stragglers = stragglers
        if dissimilarity_every is not None:
            dissimilarity_every = check_int("dissimilarity_every", dissimilarity_every, low=1)
        self.dissimilarity_every = dissimilarity_every
        if compression is not None and not isinstance(compression, Codec | ErrorFeedback):
            raise TypeError(
                "compression must be a fedlab codec such as Float16(), TopK(0.01) or "
                f"ErrorFeedback(TopK(0.01)), or None; got {type(compression).__name__}"
            )
        self.compression = compression
        if secure_aggregation is not None:
            if not isinstance(secure_aggregation, SecureAggregation):
                raise TypeError(
                    "secure_aggregation must be a SecureAggregation(...) or None, got "
                    f"{type(secure_aggregation).__name__}"
                )
        rounds.check_composition(
            algorithm,
            clients_per_round=self.clients_per_round,
            compression=compression,
            secure_aggregation=secure_aggregation,
        )
        self.secure_aggregation = secure_aggregation
        self.max_local_steps = (
            None if max_local_steps is None else step_budgets(max_local_steps, self.num_clients)
        )
        self.ignore_class = getattr(data, "ignore_class", None)
        self.label_groups = getattr(data, "label_groups", None)

        self.model = build_model(model_fn, data.x_train, self.seed)
        # the global model(s) and the server's state for each (IFCA: one per cluster)
        self.cluster_weights: list[list[np.ndarray]] = [
            [v.numpy() for v in self.model.trainable_variables]
        ]
        self.cluster_server_states = [algorithm.server_optimizer.init(self.weights)]
        # per-client persistent state (e.g. SCAFFOLD's variates), one row per client, kept here
        self.client_states: list[np.ndarray] = [
            np.repeat(np.asarray(s, np.float32)[None], self.num_clients, axis=0)
            for s in algorithm.client_state_init(self.weights)
        ]
        self._init_personal(model_fn, data, split)
        # the aggregate slot: the algorithm's aggregator, masked where clients share only part of
        # the model, summed through secure aggregation if asked (fedlab.rounds.compose)
        self.aggregator = rounds.compose(algorithm, secure_aggregation, self._share)
        self.aggregator_state = self.aggregator.init(self.weights)
        num_outputs = _check_outputs(self.model, data)  # after the algorithm's own checks
        self._loss_limit = rounds.loss_limit(num_outputs)
        self._broadcast_shapes = [np.shape(b) for b in algorithm.broadcast_state(self.server_state)]
        self._non_trainable = [v.value for v in self.model.non_trainable_variables]
        self._x = tf.constant(np.asarray(data.x_train, np.float32))
        self._y = tf.constant(np.asarray(data.y_train, np.int32))  # [n] or [n, seq_len]
        self._x_test = np.asarray(data.x_test, np.float32)
        self._y_test = np.asarray(data.y_test, np.int32)
        self._attack_sets = self._attack.evaluation_sets(self._x_test, self._y_test)
        self._sizes = np.array([len(i) for i in split.client_indices])
        self.model_bytes = int(sum(w.nbytes for w in self.weights))
        self._client_bytes = self._shared_bytes()
        # what else travels each round, per client (float32): the broadcast state down (SCAFFOLD:
        # c), the change of the client's state up (SCAFFOLD: Δc_k)
        self.extra_bytes_down = 4 * int(sum(np.prod(shape) for shape in self._broadcast_shapes))
        self.extra_bytes_up = 4 * int(sum(np.prod(s.shape[1:]) for s in self.client_states))
        # error feedback: what compression left out of each client's updates so far
        self.residuals: list[np.ndarray] = (
            [np.zeros((self.num_clients, *w.shape), np.float32) for w in self.weights]
            if isinstance(compression, ErrorFeedback)
            else []
        )
        specs = {
            "weights": [tf.TensorSpec(w.shape, tf.float32) for w in self.weights],
            "non_trainable": [tf.TensorSpec(v.shape, v.dtype) for v in self._non_trainable],
            "states": [tf.TensorSpec([None, *s.shape[1:]], tf.float32) for s in self.client_states],
            "broadcast": [tf.TensorSpec(shape, tf.float32) for shape in self._broadcast_shapes],
            "x": tf.TensorSpec([None, *self._x.shape[1:]], tf.float32),
            "y": tf.TensorSpec([None, *self._y.shape[1:]], tf.int32),
            "ignore_class": self.ignore_class,
            "label_groups": self.label_groups,
        }
        self._kernel = _kernel(model_fn, self.model, algorithm, self.strategy, specs)
        self._gradient_args = None  # built on first use: most runs never need it
        # DP-FedAvg: ε so far, composed one round at a time (None: no privacy promised)
        self._accountant = algorithm.make_accountant(self.clients_per_round / self.num_clients)
        self._aggregation_info: dict = {}
        self._aggregation_bytes: int | None = None
        config = {
            "algorithm": algorithm.config(),
            "model": type(self.model).__name__,
            "num_parameters": num_parameters(self.weights),
            "dataset": getattr(data, "name", "data"),
            "split": getattr(split, "scheme", "custom"),
            "num_clients": self.num_clients,
            "clients_per_round": self.clients_per_round,
            "seed": self.seed,
            "strategy": self.strategy,
        }
        if stragglers is not None:
            config["stragglers"] = stragglers.config()
        if dissimilarity_every is not None:
            config["dissimilarity_every"] = dissimilarity_every
        if compression is not None:
            config["compression"] = compression.config()
        if secure_aggregation is not None:
            config["secure_aggregation"] = secure_aggregation.config()
        if attackers is not None:
            config["attackers"] = {**attackers.config(), "malicious": self.malicious.tolist()}
        if max_local_steps is not None:
            config["max_local_steps"] = (
                max_local_steps if isinstance(max_local_steps, int) else list(self.max_local_steps)
            )
        if self._non_trainable:  # frozen weights: shared by every client, never sent
            config["num_frozen_parameters"] = num_parameters(self._non_trainable)
        if callable(getattr(model_fn, "config", None)):  # e.g. FineTuning's variant
            config["fine_tuning"] = model_fn.config()
        try:  # a client's FLOPs per example and peak memory (fedlab.compute), where countable
            batch = algorithm.batch_size or int(self._sizes.max())
            config["client_cost"] = training_cost(self.model, batch).summary()
        except (TypeError, ValueError, AttributeError):  # e.g. a model compute cannot trace
            pass
        self.history = History(config=config)

    def global_model(self):
        """The Keras model holding the current global weights (frozen ones as they were).

        For looking at, or using, the model the federation trained, e.g. to generate text.

        Example:
            >>> sim.global_model()(digits.x_test[:1]).shape  # doctest: +SKIP
            TensorShape([1, 10])
        """
        for variable, w in zip(self.model.trainable_variables, self.weights, strict=True):
            variable.assign(w)
        return self.model

    # -- personal models, per-client evaluation (13_personalisation_and_multitask) ----------
    def _init_personal(self, model_fn: ModelFn, data, split) -> None:
        """Per-client personal weights, which elements stay on the client, what each client
        shares, the cluster models of clustered FL, and the per-client test sets."""
        algo, n = self.personal, self.num_clients
        personal = algo.personal_init(self.weights)
        self.personal_weights: list[np.ndarray] | None = (
            None
            if personal is None
            else [np.repeat(np.asarray(p, np.float32)[None], n, axis=0) for p in personal]
        )
        mask = algo.personal_mask(self.weights)
        self._personal_mask = None if mask is None else [np.asarray(m, np.float32) for m in mask]
        share = algo.share_masks(self.weights, data, split)
        if self._personal_mask is not None:  # personal elements are never sent
            kept = [1.0 - m[None] for m in self._personal_mask]
            share = kept if share is None else [a * b for a, b in zip(share, kept, strict=True)]
        if share is not None:
            share = [np.asarray(m, np.float32) for m in share]
            for m, w in zip(share, self.weights, strict=True):
                if m.ndim != w.ndim + 1 or m.shape[0] not in (1, n):
                    raise ValueError(
                        f"share_masks must give arrays of shape [1 or {n}, *weight.shape], got "
                        f"{m.shape} for a weight of shape {w.shape}"
                    )
        self._share = share
        num_models = check_int("num_clusters", algo.num_global_models(), low=1, high=n)
        for c in range(1, num_models):  # IFCA: the cluster models start from different weights
            model = build_model(model_fn, data.x_train, self.seed + 7919 * c)
            self.cluster_weights.append([v.numpy() for v in model.trainable_variables])
        self.cluster_server_states += [
            self.algorithm.server_optimizer.init(w) for w in self.cluster_weights[1:]
        ]
        self.client_cluster = np.full(n, -1, np.int64)  # IFCA: each client's last choice
        test = getattr(split, "test_indices", None)
        self._client_test = None if test is None else self._example_plan(test)
        self._client_train = None  # IFCA's every-client training plan, made on first use

    def _example_plan(self, indices: Sequence[np.ndarray]) -> tuple[tf.Tensor, tf.Tensor]:
        """Every client's examples padded to one width: ``[client, example]`` indices, mask."""
        width = max(1, max(len(i) for i in indices))
        idx = np.zeros((len(indices), width), np.int32)
        mask = np.zeros((len(indices), width), np.float32)
        for k, own in enumerate(indices):
            idx[k, : len(own)], mask[k, : len(own)] = own, 1.0
        return tf.constant(idx), tf.constant(mask)

    def _shared_bytes(self) -> np.ndarray:
        """Bytes each client's update takes (float32): the elements it shares."""
        if self._share is None:
            return np.full(self.num_clients, self.model_bytes, np.int64)
        counts = sum(
            np.broadcast_to(m, (self.num_clients, *w.shape)).reshape(self.num_clients, -1).sum(1)
            for m, w in zip(self._share, self.weights, strict=True)
        )
        return (4 * counts).astype(np.int64)

    @property
    def weights(self) -> list[np.ndarray]:
        """The global model's weights (IFCA: cluster 0's; every cluster's: ``cluster_weights``)."""
        return self.cluster_weights[0]

    @weights.setter
    def weights(self, new: list[np.ndarray]) -> None:
        self.cluster_weights[0] = new

    @property
    def server_state(self) -> dict:
        """The server's state for the global model (IFCA: cluster 0's)."""
        return self.cluster_server_states[0]

    @server_state.setter
    def server_state(self, new: dict) -> None:
        self.cluster_server_states[0] = new

    @property
    def has_global_model(self) -> bool:
        """Whether the run trains one global model meant for every client (not local-only,
        FedPer's body without a head, or IFCA's several cluster models)."""
        return (
            self.personal.trains_global
            and len(self.cluster_weights) == 1
            and self._personal_mask is None
        )

    def _stack(self, weights: list[np.ndarray], num: int) -> list[tf.Tensor]:
        return [tf.constant(np.repeat(w[None], num, axis=0)) for w in weights]

    def _start(self, clients: np.ndarray, cluster: int = 0) -> list[tf.Tensor]:
        """Where each client's local training starts: the global model (IFCA: its cluster's),
        except for the elements that stay on the client (FedPer's head), which are its own."""
        weights = self.cluster_weights[cluster]
        if self._personal_mask is None:
            return self._stack(weights, len(clients))
        return [
            tf.constant(np.where(m[None] > 0, p[clients], w[None]).astype(np.float32))
            for p, m, w in zip(self.personal_weights, self._personal_mask, weights, strict=True)
        ]

    def personal_models(self) -> list[np.ndarray]:
        """Every client's personalised model, stacked: one ``[N, ...]`` array per weight.

        Ditto and local-only: the personal models; FedPer: the global body with the client's own
        head; IFCA: the cluster model the client chose (by its training loss if it has not taken
        part yet); FedAvg + fine-tuning: the global model after ``fine_tune_steps()`` local
        steps; otherwise the global model for everyone.

        Example:
            >>> sim = Simulation(Ditto(lam=0.1), model_fn("mlp", 10), digits, split)  # doctest: +SKIP
            >>> [p.shape for p in sim.personal_models()][-1]  # doctest: +SKIP
            (10, 10)
        """
        algo, n = self.personal, self.num_clients
        if len(self.cluster_weights) > 1:
            choice = self.client_cluster.copy()
            unset = np.flatnonzero(choice < 0)
            if len(unset):
                choice[unset] = self._cluster_losses(unset).argmin(axis=1)
            return [
                np.stack([self.cluster_weights[c][j] for c in choice])
                for j in range(len(self.weights))
            ]
        if self._personal_mask is not None:
            return [t.numpy() for t in self._start(np.arange(n))]
        if self.personal_weights is not None:
            return [p.copy() for p in self.personal_weights]
        if algo.fine_tune_steps() > 0:
            clients = np.arange(n)
            k = algo.fine_tune_steps()
            idx, mask = self.batch_plan(clients, 0, np.full(n, k), local_epochs=k)
            tuned, _, _ = self._kernel.personal_fn(
                self._stack(self.weights, n),
                [tf.constant(w) for w in self.weights],
                tf.constant(idx),
                tf.constant(mask),
                tf.constant(self.algorithm.client_lr, tf.float32),
                tf.constant(0.0),
                self._non_trainable,
                self._x,
                self._y,
            )
            return [t.numpy() for t in tuned]
        return [np.repeat(w[None], n, axis=0) for w in self.weights]

    def _client_sums(self, stacked: list, plan: tuple[tf.Tensor, tf.Tensor]) -> np.ndarray:
        """``[client, 3]`` loss sum, correct and count of row k's model on plan row k."""
        sums = self._kernel.client_eval_fn(
            [tf.constant(a, tf.float32) for a in stacked],
            *plan,
            self._non_trainable,
            self._x,
            self._y,
        )
        return np.stack([t.numpy().astype(float) for t in sums], axis=1)

    def client_accuracy(self, models: list[np.ndarray] | None = None) -> np.ndarray:
        """Accuracy of client k's model (row k of ``models``; default: the global model for
        everyone) on client k's own test set, for every client.

        Needs a split with per-client test sets (:func:`fedlab.partition.hold_out`).

        Example:
            >>> sim.client_accuracy(sim.personal_models()).shape  # doctest: +SKIP
            (10,)
        """
        if self._client_test is None:
            raise ValueError(
                "split has no per-client test sets; make them with "
                "fedlab.partition.hold_out(split, data.y_train, test_fraction=0.2)"
            )
        if models is None:
            models = [np.repeat(w[None], self.num_clients, axis=0) for w in self.weights]
        sums = self._client_sums(models, self._client_test)
        return sums[:, 1] / np.maximum(sums[:, 2], 1.0)

    def _evaluate_clients(self) -> dict:
        """Per-client accuracies of the global and the personalised models for the record."""
        if self._client_test is None:
            return {}
        nothing = np.full(self.num_clients, np.nan)
        global_acc = self.client_accuracy() if self.has_global_model else nothing
        personal = (
            self.personal_models()
            if not self.has_global_model
            or self.personal_weights is not None
            or self.personal.fine_tune_steps() > 0
            else None
        )
        personal_acc = global_acc if personal is None else self.client_accuracy(personal)
        info = {
            "client_test_accuracy": tuple(global_acc.tolist()),
            "client_personal_accuracy": tuple(personal_acc.tolist()),
        }
        if len(self.cluster_weights) > 1:
            info["client_cluster"] = tuple(int(c) for c in self.client_cluster)
        return info

    def _cluster_losses(self, clients: np.ndarray) -> np.ndarray:
        """``[client, cluster]`` mean training loss of every cluster model on each client's data
        (IFCA: each client computes these itself and picks the lowest)."""
        if self._client_train is None:
            self._client_train = self._example_plan(self.split.client_indices)
        num_models = len(self.cluster_weights)
        rows = np.repeat(np.asarray(clients), num_models)
        plan = tuple(tf.gather(t, rows) for t in self._client_train)
        models = [
            np.stack([self.cluster_weights[c][j] for c in range(num_models)] * len(clients))
            for j in range(len(self.weights))
        ]
        sums = self._client_sums(models, plan)
        return (sums[:, 0] / np.maximum(sums[:, 2], 1.0)).reshape(len(clients), num_models)

    def _clustered_round(
        self, clients: np.ndarray, budgets: np.ndarray | None, round_num: int
    ) -> tuple:
        """IFCA's round: every client picks the cluster model with the lowest loss on its data
        and trains it; each cluster model is averaged over the clients that picked it."""
        choice = self._cluster_losses(clients).argmin(axis=1)
        self.client_cluster[clients] = choice
        columns = [np.zeros(len(clients)) for _ in range(5)]
        update_bytes = 0
        for c in np.unique(choice):
            members = choice == c
            *values, size = self._train_and_update(
                clients[members], None if budgets is None else budgets[members], round_num, c
            )
            for column, value in zip(columns, values, strict=True):
                column[members] = value
            update_bytes += size
        loss, drift, cosine, client_steps, client_examples = columns
        return (
            loss,
            drift,
            cosine,
            client_steps.astype(int),
            client_examples.astype(int),
            update_bytes,
        )

    @property
    def trace_count(self) -> int:
        """How often the round function was traced: once per kernel, which simulations with the
        same model function, algorithm type and shapes share (a new setting costs no new trace)."""
        return self._kernel.trace_count

    @property
    def round(self) -> int:
        """Number of completed rounds."""
        return len(self.history)

    def _gradient_plan(self) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """Every client's data in chunks: ``[client, chunk, example]`` indices, mask, counts."""
        # every client's data in chunks of at most `width` examples: [client, chunk, example]
        width = int(min(self._sizes.max(), max(1, GRADIENT_CHUNK // self.num_clients)))
        num_chunks = -(-self._sizes // width)
        idx = np.zeros((self.num_clients, num_chunks.max(), width), np.int32)
        mask = np.zeros(idx.shape, np.float32)
        for k, own in enumerate(self.split.client_indices):
            padded = np.zeros(num_chunks[k] * width, np.int64)
            padded[: len(own)] = own
            idx[k, : num_chunks[k]] = padded.reshape(-1, width)
            mask[k, : num_chunks[k]] = (np.arange(len(padded)) < len(own)).reshape(-1, width)
        return tf.constant(idx), tf.constant(mask), tf.constant(num_chunks, tf.int32)

    # -- one round -------------------------------------------------------------------------
    def batch_plan(
        self,
        clients: np.ndarray,
        round_num: int,
        max_steps: Sequence[int] | None = None,
        local_epochs: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Padded ``[client, step, example]`` training-set indices and their 0/1 mask for a round.

        ``max_steps`` (one per client) cuts each client's plan short: a straggler's budget.
        ``local_epochs`` overrides the algorithm's (fine-tuning after training uses round 0).
        """
        algo = self.algorithm
        epochs = algo.local_epochs if local_epochs is None else local_epochs
        plans = [
            steps.batch_order(self._sizes[k], algo.batch_size, epochs, round_num, int(k), self.seed)
            for k in clients
        ]
        if max_steps is not None:
            plans = [p[: int(m)] for p, m in zip(plans, max_steps, strict=True)]
        num_steps = max(len(p) for p in plans)
        width = max(len(b) for p in plans for b in p)
        idx = np.zeros((len(clients), num_steps, width), np.int32)
        mask = np.zeros((len(clients), num_steps, width), np.float32)
        for i, (k, plan) in enumerate(zip(clients, plans, strict=True)):
            for s, batch in enumerate(plan):
                idx[i, s, : len(batch)] = self.split.client_indices[k][batch]
                mask[i, s, : len(batch)] = 1.0
        return idx, mask

    def evaluate(
        self,
        weights: list[np.ndarray] | None = None,
        chunk: int = 4096,
        x: np.ndarray | None = None,
        y: np.ndarray | None = None,
    ) -> tuple[float, float]:
        """Test loss and accuracy of ``weights`` (default: the current global model) on the test
        set, or on ``x, y`` (e.g. a backdoor's triggered test images).

        Means over test targets: examples, or the tokens of a sequence model (per-token loss,
        next-token accuracy), leaving out the data's ``ignore_class`` (padding).
        """
        w = [tf.constant(a) for a in (self.weights if weights is None else weights)]
        x = self._x_test if x is None else np.asarray(x, np.float32)
        y = self._y_test if y is None else np.asarray(y, np.int32)
        loss_sum = correct = count = 0.0
        for start in range(0, len(y), chunk):
            ls, c, n = self._kernel.eval_fn(
                w, self._non_trainable, x[start : start + chunk], y[start : start + chunk]
            )
            loss_sum, correct, count = loss_sum + float(ls), correct + float(c), count + float(n)
        count = max(count, 1.0)
        return loss_sum / count, correct / count

    def client_gradients(self, weights: list[np.ndarray] | None = None) -> list[np.ndarray]:
        """Every client's full-batch gradient ∇F_k(w) of its mean loss, stacked: one ``[N, ...]``
        array per weight (row k: client k, as :func:`fedlab.steps.full_gradient` computes it).

        ``w`` is ``weights`` or, by default, the current global model. All clients are done in
        one compiled function (traced on first use), vectorised over clients like training.

        Example:
            >>> sim = Simulation(FedAvg(), lambda: FedModel(10), digits, iid(digits.y_train, 5))  # doctest: +SKIP
            >>> [g.shape for g in sim.client_gradients()][-1]  # doctest: +SKIP
            (5, 10)
        """
        if self._gradient_args is None:
            self._gradient_args = (*self._gradient_plan(), self._non_trainable, self._x, self._y)
        w = self.weights if weights is None else weights
        if len(w) != len(self.weights):
            raise ValueError(
                f"weights must have {len(self.weights)} arrays for this model, got {len(w)}"
            )
        w = [tf.constant(a, tf.float32) for a in w]
        return [g.numpy() for g in self._kernel.gradient_fn(w, *self._gradient_args)]

    def gradient_dissimilarity(self, weights: list[np.ndarray] | None = None) -> float:
        """(1/N) Σ_k ‖∇F_k(w) − ∇f(w)‖² over all N clients, ∇f = Σ_k (n_k/n) ∇F_k.

        How differently the clients' own objectives pull at ``w`` (default: the global model);
        0 when all clients hold the same data. See :func:`fedlab.metrics.gradient_dissimilarity`.

        Example:
            >>> sim = Simulation(FedAvg(), lambda: FedModel(10), digits, iid(digits.y_train, 5))  # doctest: +SKIP
            >>> sim.gradient_dissimilarity() >= 0  # doctest: +SKIP
            True
        """
        grads = self.client_gradients(weights)
        return float(gradient_dissimilarity(grads, self._sizes))

    def warm_up(self) -> float:
        """Trace and run the round and evaluation functions once now, on a sliver of the first
        round's data, discarding the results; return the seconds it took.

        The first round otherwise pays for tracing and graph optimisation (a second or two); the
        live Dashboard warms its default run up in the background so that Run answers at once.
        Personalised runs also trace the personal-model pass and the per-client evaluation.
        The History, weights, client states and random streams are untouched: the same seed
        gives the same rounds either way.

        Example:
            >>> sim = Simulation(FedAvg(), lambda: FedModel(10), digits, iid(digits.y_train, 5))  # doctest: +SKIP
            >>> sim.warm_up() > 0, len(sim.history), sim.trace_count  # doctest: +SKIP
            (True, 0, 1)
        """
        start = time.perf_counter()
        round_num = self.round + 1
        clients = steps.sample_clients(
            self.num_clients, self.clients_per_round, round_num, self.seed, self.algorithm
        )[:1]
        if len(clients) == 0:  # Poisson sampling (DP-FedAvg) may pick nobody: warm up on client 0
            clients = np.zeros(1, np.int64)
        idx, mask = self.batch_plan(clients, round_num)
        self._kernel.round_fn(
            [tf.constant(w) for w in self.weights],
            self._start(clients),
            tf.constant(idx[:, :1]),  # one client, one local step
            tf.constant(mask[:, :1]),
            tf.constant(self.algorithm.client_lr, tf.float32),
            tf.constant(self._sizes[clients], tf.float32),
            [tf.constant(s[clients]) for s in self.client_states],
            [tf.constant(b, tf.float32) for b in self.algorithm.broadcast_state(self.server_state)],
            self._non_trainable,
            self._x,
            self._y,
        )
        w = [tf.constant(a) for a in self.weights]
        self._kernel.eval_fn(w, self._non_trainable, self._x_test[:1], self._y_test[:1])
        lam = self.personal.personal_strength()
        if lam is not None or self.personal.fine_tune_steps() > 0:  # the personal pass
            self._kernel.personal_fn(
                self._start(clients),
                w,
                tf.constant(idx[:, :1]),
                tf.constant(mask[:, :1]),
                tf.constant(self.algorithm.client_lr, tf.float32),
                tf.constant(float(lam or 0.0), tf.float32),
                self._non_trainable,
                self._x,
                self._y,
            )
        if self._client_test is not None or len(self.cluster_weights) > 1:  # per-client sums
            plan = self._client_test or self._example_plan(self.split.client_indices)
            self._client_sums(self._stack(self.weights, 1), tuple(t[:1] for t in plan))
        return time.perf_counter() - start

    def step(self) -> RoundRecord:
        """Run one round (sample, broadcast, local training, aggregate, server update); return its record.

        With stragglers that are dropped, only the others train and are aggregated; if every
        selected client is dropped the global model and server state stay as they were and the
        record has no clients (``train_loss`` and drift ``nan``).

        A round is a transaction: if anything stops it before its record is kept — divergence,
        an error, Ctrl-C (KeyboardInterrupt) — everything it changed is put back (global model,
        server and client states, personal models, error-feedback residuals, the privacy
        accountant), so the simulation is exactly as after the previous round, and the next
        ``step()`` runs this round again.

        Raises:
            DivergenceError: a client's loss or the new global weights are NaN/inf; the global
                model and history stay as they were after the previous round.
        """
        saved = self._snapshot()
        try:
            return self._step()
        except BaseException:
            self._restore(saved)
            raise

    def _snapshot(self) -> tuple:
        """What a round changes, copied (arrays changed in place) or referenced (replaced)."""
        return (
            [a.copy() for a in self._arrays_changed_in_place()],
            list(self.cluster_weights),
            list(self.cluster_server_states),
            self.aggregator_state,
            None if self._accountant is None else copy.deepcopy(vars(self._accountant)),
            len(self.history.rounds),
            self.history.client_state,
        )

    def _restore(self, saved: tuple) -> None:
        """Undo a round that did not finish: the state of :meth:`_snapshot`, arrays in place (the
        History's client state refers to them)."""
        (arrays, clusters, cluster_states, aggregator_state, accountant, rounds, state) = saved
        self.aggregator_state = aggregator_state
        for now, before in zip(self._arrays_changed_in_place(), arrays, strict=True):
            now[...] = before
        self.cluster_weights[:], self.cluster_server_states[:] = clusters, cluster_states
        if accountant is not None:  # in place: whoever holds the accountant sees it undone
            vars(self._accountant).clear()
            vars(self._accountant).update(accountant)
        del self.history.rounds[rounds:]
        self.history.client_state = state

    def _arrays_changed_in_place(self) -> list[np.ndarray]:
        """The per-client arrays a round updates row by row."""
        return [
            *self.client_states,
            *(self.personal_weights or []),
            *self.residuals,
            self.client_cluster,
        ]

    def _step(self) -> RoundRecord:
        start = time.perf_counter()
        plan = rounds.plan_round(
            self.algorithm,
            self.num_clients,
            self.clients_per_round,
            self.round + 1,
            self.seed,
            self.stragglers,
            self._sizes,
            self.max_local_steps,
        )
        clients, round_num = plan.clients, plan.round_num
        self._aggregation_info = {}
        if len(clients):
            train = (
                self._clustered_round if len(self.cluster_weights) > 1 else self._train_and_update
            )
            client_loss, drift, cosine, client_steps, client_examples, update_bytes = train(
                clients, plan.budgets, round_num
            )
        else:  # nobody reported back: nothing changes (but DP noise is still added)
            client_loss = drift = cosine = client_steps = client_examples = np.zeros(0)
            update_bytes = 0
            if self.aggregator.acts_without_clients:
                nothing = [np.zeros((0, *w.shape), np.float32) for w in self.weights]
                self._aggregate_and_update(clients, nothing, [], [], round_num, clients)
        epsilon = self._accountant.step() if self._accountant is not None else float("nan")
        test_loss = test_accuracy = float("nan")
        per_client = {}
        if round_num % self.evaluate_every == 0:
            if self.has_global_model:
                test_loss, test_accuracy = self.evaluate()
                for name, (x, y) in self._attack_sets.items():  # e.g. backdoor_success
                    per_client[name] = self.evaluate(x=x, y=y)[1]
            per_client |= self._evaluate_clients()
        dissimilarity = float("nan")
        if self.dissimilarity_every is not None and round_num % self.dissimilarity_every == 0:
            dissimilarity = self.gradient_dissimilarity()
        server_norm, client_norm = self._state_norms()
        record = rounds.record(
            plan,
            client_loss,
            self._sizes[clients],
            started=start,
            drift=drift,
            cosine=cosine,
            client_steps=client_steps,
            client_examples=client_examples,
            test_loss=test_loss,
            test_accuracy=test_accuracy,
            bytes_down=self._bytes_down(plan.selected),
            bytes_up=update_bytes + len(clients) * self.extra_bytes_up,
            gradient_dissimilarity=dissimilarity,
            server_state_norm=server_norm,
            client_state_norm=client_norm,
            epsilon=epsilon,
            malicious=tuple(int(k) for k in np.intersect1d(clients, self.malicious)),
            **self._aggregation_info,
            **per_client,
        )
        self.history.append(record)
        self._keep_client_state()
        return record

    def _check_losses(self, clients: np.ndarray, losses: np.ndarray, round_num: int) -> None:
        """Raise DivergenceError (with the history so far) if a client's loss is not finite or
        exploded (see :data:`EXPLODED`)."""
        try:
            rounds.check_losses(clients, losses, round_num, self._loss_limit)
        except DivergenceError as error:
            raise error.with_history(self.history) from None

    def _bytes_down(self, selected: np.ndarray) -> int:
        """What the server sends the round's clients: nothing (local-only), every cluster model
        (IFCA), or the shared part of the model, plus any broadcast state."""
        if not self.personal.trains_global:
            return 0
        per_client = self._client_bytes[selected] * len(self.cluster_weights)
        return int(per_client.sum()) + len(selected) * self.extra_bytes_down

    def _keep_client_state(self) -> None:
        """Point the History at the per-client state, so a run can be inspected afterwards."""
        state = {}
        if self.personal_weights is not None:
            state["personal_weights"] = self.personal_weights
        if len(self.cluster_weights) > 1:
            state["cluster_weights"] = [
                np.stack(w) for w in zip(*self.cluster_weights, strict=True)
            ]
            state["client_cluster"] = [self.client_cluster]
        if self.client_states:
            state["client_states"] = self.client_states
        self.history.client_state = state

    def _train_and_update(
        self, clients: np.ndarray, budgets: np.ndarray | None, round_num: int, cluster: int = 0
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
        """Local training of ``clients`` on global model ``cluster`` (0 but for IFCA),
        aggregation and server update, then any personal models; per-client numbers and the
        bytes of the updates sent up."""
        idx, mask = self.batch_plan(clients, round_num, budgets)
        # w^t, Ditto's anchor
        broadcast_weights = [tf.constant(w) for w in self.cluster_weights[cluster]]
        if self.personal.trains_global:
            client_loss, drift, cosine, update_bytes = self._global_update(
                clients, idx, mask, broadcast_weights, round_num, cluster
            )
        else:  # local-only training: nothing is sent
            client_loss = drift = cosine = np.full(len(clients), np.nan)
            update_bytes = 0
        lam = self.personal.personal_strength()
        if lam is not None:
            personal = [p[clients] for p in self.personal_weights]
            trained, losses, personal_drift = self._kernel.personal_fn(
                [tf.constant(p) for p in personal],
                broadcast_weights,
                tf.constant(idx),
                tf.constant(mask),
                tf.constant(self.algorithm.client_lr, tf.float32),
                tf.constant(float(lam), tf.float32),
                self._non_trainable,
                self._x,
                self._y,
            )
            losses = losses.numpy().astype(float)
            trained = [t.numpy() for t in trained]
            bad = clients[~np.isfinite(losses) | ~_finite_rows(trained)]
            if len(bad):
                raise DivergenceError(round_num, bad, self.history)
            self._check_losses(clients, losses, round_num)
            for all_personal, new in zip(self.personal_weights, trained, strict=True):
                all_personal[clients] = new  # clients not selected keep theirs
            if not self.personal.trains_global:
                client_loss, drift = losses, personal_drift.numpy().astype(float)
        client_steps = np.count_nonzero(mask.any(axis=2), axis=1)
        client_examples = mask.sum(axis=(1, 2)).astype(int)
        return client_loss, drift, cosine, client_steps, client_examples, update_bytes

    def _global_update(
        self,
        clients: np.ndarray,
        idx: np.ndarray,
        mask: np.ndarray,
        broadcast_weights: list[tf.Tensor],
        round_num: int,
        cluster: int = 0,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        """Global model ``cluster``'s round: local training from the broadcast model (and the
        clients' own personal elements) in the compiled kernel, then upload, aggregation and
        server update with :mod:`fedlab.rounds`' shared stages."""
        num_examples = self._sizes[clients]
        states = [s[clients] for s in self.client_states]
        start = self._start(clients, cluster)
        server_state = self.cluster_server_states[cluster]
        aggregated, client_loss, drift, cosine, new_states, deltas = self._kernel.round_fn(
            broadcast_weights,
            start,
            tf.constant(idx),
            tf.constant(mask),
            tf.constant(self.algorithm.client_lr, tf.float32),
            tf.constant(num_examples, tf.float32),
            [tf.constant(s) for s in states],
            [tf.constant(b, tf.float32) for b in self.algorithm.broadcast_state(server_state)],
            self._non_trainable,
            self._x,
            self._y,
        )
        self._check_losses(clients, client_loss.numpy().astype(float), round_num)
        new_states = [s.numpy() for s in new_states]
        local_steps = np.count_nonzero(mask.any(axis=2), axis=1)
        plain = self.compression is None and not self._attack.tampers_updates
        if plain and self.aggregator.in_graph:  # aggregated in the compiled round
            update_bytes = int(self._client_bytes[clients].sum())
            result = Aggregate([a.numpy() for a in aggregated], self.aggregator_state)
            self._update(clients, result, new_states, states, round_num, cluster)
        else:  # the server aggregates what it receives (decoded messages) outside the graph
            deltas = [d.numpy() for d in deltas]
            # what the malicious clients choose to send instead (identity without an attack)
            deltas = tamper_round(
                self._attack, deltas, clients, self.malicious, round_num, self.seed
            )
            sent, update_bytes = deltas, int(self._client_bytes[clients].sum())
            if self.compression is not None:
                sent, update_bytes = self._upload(clients, deltas, round_num)
            aggregated = self._aggregate_and_update(
                clients, sent, new_states, states, round_num, local_steps, cluster
            )
            if self._aggregation_bytes is not None:
                update_bytes = self._aggregation_bytes
            cosine = update_cosine(deltas, aggregated)
            if self._personal_mask is not None:  # FedPer: each client keeps its trained head
                for p, m, s, d in zip(
                    self.personal_weights, self._personal_mask, start, deltas, strict=True
                ):
                    p[clients] = np.where(m[None] > 0, s.numpy() + d, p[clients])
        return (
            client_loss.numpy().astype(float),
            drift.numpy().astype(float),
            np.asarray(cosine, float),
            update_bytes,
        )

    def _aggregate_and_update(
        self,
        clients: np.ndarray,
        updates: list[np.ndarray],
        new_states: list[np.ndarray],
        states: list[np.ndarray],
        round_num: int,
        local_steps: np.ndarray,
        cluster: int = 0,
    ) -> list[np.ndarray]:
        """The run's aggregator on what the server received (one ``[K, ...]`` array per weight),
        then the server update; returns the aggregate (zeros if the aggregator refused)."""
        received = ClientUpdates(
            updates,
            self._sizes[clients],
            clients,
            local_steps,
            round_num,
            self.clients_per_round,
            self.seed,
            self.cluster_weights[cluster],
        )
        result = rounds.aggregate(self.aggregator, self.aggregator_state, received)
        return self._update(clients, result, new_states, states, round_num, cluster)

    def _update(
        self,
        clients: np.ndarray,
        result: Aggregate,
        new_states: list[np.ndarray],
        states: list[np.ndarray],
        round_num: int,
        cluster: int = 0,
    ) -> list[np.ndarray]:
        """The server update of global model ``cluster`` on ``result``
        (:func:`fedlab.rounds.server_update`); keep the new client states if the server moved.
        Returns the update applied."""
        changes = [
            [new[i] - old[i] for new, old in zip(new_states, states, strict=True)]
            for i in range(len(clients))
        ]
        try:
            done = rounds.server_update(
                self.algorithm,
                self.cluster_weights[cluster],
                self.cluster_server_states[cluster],
                result,
                changes,
                len(clients) / self.num_clients,
                round_num,
                clients,
            )
        except DivergenceError as error:
            raise error.with_history(self.history) from None
        self._aggregation_info, self._aggregation_bytes = done.metrics, done.bytes_up
        self.aggregator_state = result.state
        self.cluster_weights[cluster] = done.weights
        self.cluster_server_states[cluster] = done.server_state
        if done.changed:
            for all_states, new in zip(self.client_states, new_states, strict=True):
                all_states[clients] = new  # clients not selected keep theirs
        return done.update

    def _upload(
        self, clients: np.ndarray, deltas: list[np.ndarray], round_num: int
    ) -> tuple[list[np.ndarray], int]:
        """Every client's update through ``compression`` (:func:`fedlab.rounds.upload`): the
        stacked decoded updates and the total bytes sent. Updates error-feedback residuals."""
        per_client = [[d[i] for d in deltas] for i in range(len(clients))]
        residuals = (
            {int(k): [r[k] for r in self.residuals] for k in clients} if self.residuals else None
        )
        sent, num_bytes, kept = rounds.upload(
            self.compression, per_client, clients, round_num, self.seed, residuals
        )
        for k, residual in kept.items():
            for all_residuals, r in zip(self.residuals, residual, strict=True):
                all_residuals[k] = r  # clients not selected keep theirs
        return rounds.stack(sent, [w.shape for w in self.weights]), num_bytes

    def _state_norms(self) -> tuple[float, float]:
        """‖broadcast state‖ and the mean over all clients of ‖client state‖ (nan when none).

        SCAFFOLD: the control variates' norms, ‖c‖ and mean_k ‖c_k‖.
        """
        server_norm = client_norm = float("nan")
        if self._broadcast_shapes:
            sent = self.algorithm.broadcast_state(self.server_state)
            server_norm = float(
                np.sqrt(sum(np.sum(np.square(np.asarray(b, np.float64))) for b in sent))
            )
        if self.client_states:
            squares = sum(
                np.sum(np.square(s.reshape(self.num_clients, -1), dtype=np.float64), axis=1)
                for s in self.client_states
            )
            client_norm = float(np.mean(np.sqrt(squares)))
        return server_norm, client_norm

    def run(
        self,
        num_rounds: int,
        callbacks: Sequence[Callback] = (),
        progress: bool = True,
        stop_event: _Stoppable | None = None,
    ) -> History:
        """Run up to ``num_rounds`` more rounds and return the history so far.

        After each round every ``callback(record, history)`` is called (``callbacks`` is one
        function or a list); one returning ``True`` stops the run cleanly, as does setting
        ``stop_event`` (e.g. a ``threading.Event``) from another thread. With ``progress=True`` a
        progress bar appears once a run takes over 2 s. Ctrl-C undoes the round in flight and
        raises :class:`RunInterrupted`, which keeps the rounds done in its ``history``.
        """
        num_rounds = check_int("num_rounds", num_rounds, low=0)
        callbacks = _check_callbacks(callbacks)
        with tqdm(
            total=num_rounds, desc=self.algorithm.name, delay=2.0, disable=not progress, leave=False
        ) as bar:
            try:
                for _ in range(num_rounds):
                    if stop_event is not None and stop_event.is_set():
                        break
                    record = self.step()  # a transaction: an interrupt undoes the whole round
                    bar.update(1)
                    bar.set_postfix(
                        loss=f"{record.train_loss:.3f}",
                        acc=f"{record.test_accuracy:.3f}",
                        refresh=False,
                    )
                    if any([cb(record, self.history) for cb in callbacks]):
                        break
            except RunInterrupted:
                raise
            except KeyboardInterrupt:
                raise RunInterrupted(self.history) from None
        return self.history


def simulate(
    algorithm: Algorithm,
    model_fn: ModelFn,
    data,
    split,
    num_rounds: int,
    clients_per_round: int | None = None,
    seed: int = 0,
    callbacks: Sequence[Callback] = (),
    progress: bool = True,
    stop_event: _Stoppable | None = None,
    strategy: str = "vectorized",
    evaluate_every: int = 1,
    stragglers: Stragglers | None = None,
    dissimilarity_every: int | None = None,
    compression: Codec | ErrorFeedback | None = None,
    max_local_steps: int | Sequence[int] | None = None,
    secure_aggregation: SecureAggregation | None = None,
    attackers: Attackers | None = None,
) -> History:
    """Run ``num_rounds`` rounds of ``algorithm`` and return the :class:`~fedlab.history.History`.

    See :class:`Simulation` for the arguments; use it directly to step round by round.

    Example:
        >>> history = simulate(FedAvg(), lambda: FedModel(10), digits, split, num_rounds=20)  # doctest: +SKIP
        >>> history.test_accuracy[-1]  # doctest: +SKIP
    """
    num_rounds = check_int("num_rounds", num_rounds, low=0)
    sim = Simulation(
        algorithm,
        model_fn,
        data,
        split,
        clients_per_round,
        seed,
        strategy,
        evaluate_every,
        stragglers=stragglers,
        dissimilarity_every=dissimilarity_every,
        compression=compression,
        max_local_steps=max_local_steps,
        secure_aggregation=secure_aggregation,
        attackers=attackers,
    )
    return sim.run(num_rounds, callbacks=callbacks, progress=progress, stop_event=stop_event)
