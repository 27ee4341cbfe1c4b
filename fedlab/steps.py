"""The steps of a federated round as plain functions, one client at a time (``01_one_round_by_hand``).

This is the teaching path: readable Keras + ``GradientTape`` code that a notebook calls one stage
at a time. The fast engine (:mod:`fedlab.engine`) runs the same stages for all of a round's
clients at once; ``tests/test_engine_equals_steps.py`` proves both give the same numbers. Both
share :func:`sample_clients` and :func:`batch_order`, so they see the same clients and batches.

The five stages of a round, as notebooks 00 and 01 name them: 1 initialise (:func:`initialize`),
2 send (:func:`sample_clients`, :func:`broadcast`), 3 train locally (:func:`local_update`),
4 upload (the client's :class:`ClientResult`; :func:`compress_update`), 5 aggregate and update
(:func:`aggregate`, :func:`server_update`; both with an algorithm's slots: :func:`server_step`).

Only weights (and their differences) move between server and clients; a client's ``x, y`` are
used inside :func:`local_update` and never returned.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from fedlab import rounds
from fedlab.aggregators import Aggregate, ClientUpdates
from fedlab.algorithms import Algorithm
from fedlab.compression import Codec, Encoded, ErrorFeedback
from fedlab.models import ModelFn, build_model
from fedlab.poisoning import DATA, Attack, Attackers, attack_stream, tamper_round
from fedlab.secure_aggregation import SecureAggregation
from fedlab.stragglers import Stragglers, step_budgets
from fedlab.validate import check_int

Weights = list[np.ndarray]


_rng = rounds.stream  # an independent generator for one purpose, e.g. (seed, stream, round)
_SAMPLING, _BATCHES, _COMPRESSION = rounds.SAMPLING, rounds.BATCHES, rounds.COMPRESSION


def initialize(
    model_fn: ModelFn, sample_x: np.ndarray, seed: int = 0
) -> tuple[keras.Model, Weights]:
    """Stage 1: build the global model with seeded initial weights; return it and its weights.

    Example:
        >>> model, weights = initialize(lambda: FedModel(10), digits.x_train, seed=0)  # doctest: +SKIP
    """
    model = build_model(model_fn, sample_x, seed)
    return model, [v.numpy() for v in model.trainable_variables]


def sample_clients(
    num_clients: int,
    clients_per_round: int,
    round_num: int,
    seed: int = 0,
    algorithm: Algorithm | None = None,
) -> np.ndarray:
    """Stage 2a: the sorted ids of the clients taking part in round ``round_num`` (1-based).

    Example:
        >>> sample_clients(num_clients=10, clients_per_round=3, round_num=1, seed=0).tolist()
        [5, 7, 8]
    """
    num_clients = check_int("num_clients", num_clients, low=1)
    clients_per_round = check_int("clients_per_round", clients_per_round, low=1, high=num_clients)
    round_num = check_int("round_num", round_num, low=1)
    sampler = algorithm or Algorithm()
    return sampler.sample_clients(num_clients, clients_per_round, _rng(seed, _SAMPLING, round_num))


def broadcast(global_weights: Weights, clients: np.ndarray) -> dict[int, Weights]:
    """Stage 2b: send each selected client its own copy of the global weights.

    Example:
        >>> copies = broadcast([np.zeros(2)], np.array([4, 7]))
        >>> sorted(copies)
        [4, 7]
    """
    return {int(k): [np.array(w, copy=True) for w in global_weights] for k in clients}


def batch_order(
    num_examples: int,
    batch_size: int | None,
    local_epochs: int,
    round_num: int,
    client_id: int,
    seed: int = 0,
) -> list[np.ndarray]:
    """The client's local mini-batches for one round: a list of index arrays into its own data.

    Each epoch is a fresh seeded shuffle cut into batches of ``batch_size`` (the last one may be
    smaller); ``batch_size=None`` means one full batch per epoch, in order.

    Example:
        >>> [b.tolist() for b in batch_order(5, 2, 1, round_num=1, client_id=0)]
        [[1, 4], [2, 0], [3]]
    """
    num_examples = check_int("num_examples", num_examples, low=1)
    local_epochs = check_int("local_epochs", local_epochs, low=1)
    if batch_size is None:
        return [np.arange(num_examples) for _ in range(local_epochs)]
    batch_size = check_int("batch_size", batch_size, low=1)
    rng = _rng(seed, _BATCHES, round_num, client_id)
    batches = []
    for _ in range(local_epochs):
        order = rng.permutation(num_examples)
        batches += [order[i : i + batch_size] for i in range(0, num_examples, batch_size)]
    return batches


def _task_logits(y: tf.Tensor, logits: tf.Tensor, label_groups) -> tf.Tensor:
    """``logits`` limited to each target's own task (multi-task data); unchanged without tasks."""
    if not label_groups:
        return logits
    from fedlab.multitask import mask_logits  # only multi-task data needs it

    return mask_logits(y, logits, label_groups)


def example_losses(
    y: tf.Tensor, logits: tf.Tensor, ignore_class: int | None = None, label_groups=None
) -> tf.Tensor:
    """Per-example cross-entropy from logits, averaged over any sequence axes.

    With ``ignore_class`` (e.g. the ``<pad>`` token of :func:`fedlab.keyboard.keyboard`), targets
    of that class do not count: an example's loss is the mean over its other targets (0 if none).
    With ``label_groups`` (multi-task data, :mod:`fedlab.multitask`) the softmax runs over the
    classes of the target's own task only.

    Example:
        >>> float(example_losses(tf.constant([0]), tf.constant([[0.0, 0.0]]))[0])  # log 2
        0.6931471824645996
        >>> seq = tf.constant([[1, 0]])  # the second target is padding
        >>> float(example_losses(seq, tf.constant([[[0.0, 0.0], [9.0, 0.0]]]), ignore_class=0)[0])
        0.6931471824645996
    """
    logits = _task_logits(y, logits, label_groups)
    if ignore_class is None:  # every target counts: a plain mean
        losses = keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True)
        return tf.reshape(
            tf.reduce_mean(tf.reshape(losses, [tf.shape(losses)[0], -1]), axis=1), [-1]
        )
    losses, valid = target_losses(y, logits, ignore_class)
    n = tf.shape(losses)[0]
    losses, valid = tf.reshape(losses, [n, -1]), tf.reshape(valid, [n, -1])
    return tf.reduce_sum(losses, axis=1) / tf.maximum(tf.reduce_sum(valid, axis=1), 1.0)


def target_losses(
    y: tf.Tensor, logits: tf.Tensor, ignore_class: int | None = None
) -> tuple[tf.Tensor, tf.Tensor]:
    """Cross-entropy of every target (0 where ignored) and a 0/1 mask of the targets that count.

    Both have ``y``'s shape: one number per example, or per token of a sequence.

    Example:
        >>> loss, valid = target_losses(tf.constant([[1, 0]]), tf.zeros([1, 2, 2]), ignore_class=0)
        >>> valid.numpy().tolist()
        [[1.0, 0.0]]
    """
    y = tf.cast(y, tf.int32)
    losses = keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True)
    if ignore_class is None:
        return losses, tf.ones_like(losses)
    valid = tf.cast(tf.not_equal(y, ignore_class), losses.dtype)
    return losses * valid, valid


def evaluation_sums(
    y: tf.Tensor,
    logits: tf.Tensor,
    ignore_class: int | None = None,
    label_groups=None,
    example_mask: tf.Tensor | None = None,
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Summed loss, number correct and number of targets that count (for a mean over targets).

    For a sequence model every token is a target, so the test loss is per token (its
    ``exp`` is the perplexity) and the accuracy is next-token accuracy; ``ignore_class``
    targets (padding) are left out of all three sums, as are examples whose ``example_mask``
    (one 0/1 per example) is 0. With ``label_groups`` (multi-task data) both loss and
    prediction are taken over the target's own task's classes.

    Example:
        >>> [round(float(v), 4) for v in evaluation_sums(tf.constant([1]), tf.constant([[0.0, 1.0]]))]
        [0.3133, 1.0, 1.0]
    """
    logits = _task_logits(y, logits, label_groups)
    losses, valid = target_losses(y, logits, ignore_class)
    if example_mask is not None:
        shape = tf.concat([tf.shape(example_mask), tf.ones([tf.rank(valid) - 1], tf.int32)], 0)
        valid = valid * tf.reshape(tf.cast(example_mask, valid.dtype), shape)
        losses = losses * valid
    hits = tf.cast(
        tf.equal(tf.argmax(logits, -1, output_type=tf.int32), tf.cast(y, tf.int32)), tf.float32
    )
    return tf.reduce_sum(losses), tf.reduce_sum(hits * valid), tf.reduce_sum(valid)


def dense_gradients(grads: list) -> list[tf.Tensor]:
    """Embedding gradients come back as ``IndexedSlices``; turn every gradient into a dense tensor."""
    return [tf.convert_to_tensor(g) for g in grads]


@dataclass(frozen=True)
class ClientResult:
    """What a client sends back after local training — never its data.

    Attributes:
        client_id: which client.
        weights: its weights after local training.
        delta: ``weights - broadcast weights``, the update that is sent up.
        num_examples: how many training examples it holds (the aggregation weight).
        loss: mean training loss over every example of every local step.
        num_steps: local SGD steps it took.
        client_state: its persistent state after the round (empty for FedAvg); it stays on
            the client.
    """

    client_id: int
    weights: Weights
    delta: Weights
    num_examples: int
    loss: float
    num_steps: int = 0
    client_state: Weights = ()


def local_update(
    model: keras.Model,
    weights: Weights,
    x: np.ndarray,
    y: np.ndarray,
    algorithm: Algorithm,
    round_num: int = 1,
    client_id: int = 0,
    seed: int = 0,
    client_state: Weights = (),
    broadcast_state: Weights = (),
    max_steps: int | None = None,
    ignore_class: int | None = None,
    label_groups=None,
) -> ClientResult:
    """Stage 3: train a copy of ``weights`` on one client's ``x, y`` with local SGD.

    Runs ``algorithm.local_epochs`` epochs of mini-batches from :func:`batch_order`; each step is
    ``w ← w − client_lr · algorithm.local_gradient(∇loss, w, w_broadcast, client_state, broadcast_state)``.
    ``client_state`` is the client's persistent state (SCAFFOLD's variate; empty for FedAvg) and
    ``broadcast_state`` what the server sent beside the weights. ``max_steps`` stops after that
    many steps (a straggler's budget, see :mod:`fedlab.stragglers`); ``None`` runs them all.
    ``ignore_class``: targets of this class (padding) do not count in the loss; ``label_groups``:
    multi-task data, each target's loss over its own task's classes (:mod:`fedlab.multitask`).

    Example:
        >>> result = local_update(model, weights, x_k, y_k, FedAvg(), client_id=3)  # doctest: +SKIP
        >>> result.num_examples, result.loss  # doctest: +SKIP
    """
    if len(x) != len(y):
        raise ValueError(f"x and y must have the same length, got {len(x)} and {len(y)}")
    variables = model.trainable_variables
    if len(weights) != len(variables):
        raise ValueError(
            f"weights must have {len(variables)} arrays for this model, got {len(weights)}"
        )
    for variable, w in zip(variables, weights, strict=True):
        variable.assign(w)
    start = [tf.constant(w) for w in weights]
    lr = tf.constant(algorithm.client_lr, tf.float32)
    state = [tf.constant(a, tf.float32) for a in client_state]
    sent = [tf.constant(a, tf.float32) for a in broadcast_state]
    loss_sum, seen, num_steps = 0.0, 0, 0
    batches = batch_order(
        len(x), algorithm.batch_size, algorithm.local_epochs, round_num, client_id, seed
    )
    if max_steps is not None:
        batches = batches[: check_int("max_steps", max_steps, low=1)]
    for batch in batches:
        xb, yb = tf.constant(x[batch]), tf.constant(y[batch])
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(
                example_losses(yb, model(xb, training=True), ignore_class, label_groups)
            )
        current = [tf.convert_to_tensor(v) for v in variables]
        grads = algorithm.local_gradient(
            dense_gradients(tape.gradient(loss, variables)), current, start, state, sent
        )
        for variable, g in zip(variables, grads, strict=True):
            variable.assign_sub(lr * g)
        loss_sum += float(loss) * len(batch)
        seen += len(batch)
        num_steps += 1
    new = [v.numpy() for v in variables]
    delta = [n - w for n, w in zip(new, weights, strict=True)]
    new_state = algorithm.client_state_update(
        state, [tf.constant(d) for d in delta], float(num_steps), lr, sent
    )
    new_state = [np.asarray(a, np.float32) for a in new_state]
    return ClientResult(
        int(client_id), new, delta, int(len(x)), loss_sum / seen, num_steps, new_state
    )


def compress_update(
    compression: Codec | ErrorFeedback,
    delta: Weights,
    round_num: int,
    client_id: int,
    seed: int = 0,
    residual: Weights = (),
) -> tuple[Weights, int, Weights]:
    """Stage 4, upload: what a client's update looks like after the trip up through ``compression``.

    Encodes ``delta`` with the codec (a seeded stream per round and client, for stochastic
    codecs) and decodes it as the server does. With ``ErrorFeedback(codec)`` the client adds
    its ``residual`` first and keeps what was left out for next time. Returns the decoded
    update the server aggregates, the bytes sent, and the new residual (empty without error
    feedback).

    Example:
        >>> from fedlab.compression import TopK
        >>> sent, num_bytes, _ = compress_update(TopK(0.5), [np.array([3.0, -1.0])], 1, 0)
        >>> sent[0].tolist(), num_bytes  # one int32 index and one float32 value
        ([3.0, 0.0], 8)
    """
    encoded, residual = _encode_update(compression, delta, round_num, client_id, seed, residual)
    return _codec_of(compression).decode(encoded), encoded.num_bytes, residual


def _codec_of(compression: Codec | ErrorFeedback) -> Codec:
    """The codec that encodes (and decodes) the messages of ``compression``."""
    if isinstance(compression, ErrorFeedback):
        return compression.codec
    if isinstance(compression, Codec):
        return compression
    raise TypeError(
        "compression must be a fedlab codec or ErrorFeedback(codec), "
        f"got {type(compression).__name__}"
    )


def _encode_update(
    compression: Codec | ErrorFeedback,
    delta: Weights,
    round_num: int,
    client_id: int,
    seed: int = 0,
    residual: Weights = (),
) -> tuple[Encoded, Weights]:
    """The client's half of :func:`compress_update`: the message it sends (encoded with a seeded
    stream per round and client) and its new error-feedback residual (empty without). Shared with
    the Flower ClientApp (:mod:`fedlab.flower.apps`), which sends ``encoded.arrays`` for real."""
    codec = _codec_of(compression)
    stream = np.random.SeedSequence([seed, _COMPRESSION, round_num, client_id])
    codec_seed = int(stream.generate_state(1)[0])
    if isinstance(compression, ErrorFeedback):
        return compression.apply(delta, residual, seed=codec_seed)
    return codec.encode(delta, seed=codec_seed), []


def full_gradient(
    model: keras.Model,
    weights: Weights,
    x: np.ndarray,
    y: np.ndarray,
    ignore_class: int | None = None,
    label_groups=None,
) -> Weights:
    """∇F_k(w): the gradient of the mean loss over all of a client's ``x, y`` at ``weights``.

    The engine stacks these for every client to measure how much the clients disagree
    (:func:`fedlab.metrics.gradient_dissimilarity`, ``Simulation.gradient_dissimilarity``).

    Example:
        >>> model, weights = initialize(lambda: FedModel(3), x_k, seed=0)  # doctest: +SKIP
        >>> [g.shape for g in full_gradient(model, weights, x_k, y_k)]  # doctest: +SKIP
    """
    if len(x) != len(y):
        raise ValueError(f"x and y must have the same length, got {len(x)} and {len(y)}")
    variables = model.trainable_variables
    for variable, w in zip(variables, weights, strict=True):
        variable.assign(w)
    with tf.GradientTape() as tape:
        logits = model(tf.constant(x, tf.float32), training=False)
        loss = tf.reduce_mean(
            example_losses(tf.constant(y, tf.int32), logits, ignore_class, label_groups)
        )
    return [g.numpy() for g in dense_gradients(tape.gradient(loss, variables))]


def aggregate(deltas: list[Weights], num_examples: list[int] | np.ndarray) -> Weights:
    """Stage 5a: the example-weighted mean of the clients' deltas, Σ n_k Δ_k / Σ n_k.

    Example:
        >>> aggregate([[np.array([0.0])], [np.array([4.0])]], [3, 1])[0].tolist()
        [1.0]
    """
    if len(deltas) == 0 or len(deltas) != len(num_examples):
        raise ValueError(
            f"need one example count per delta, got {len(deltas)} deltas and {len(num_examples)} counts"
        )
    n = np.asarray(num_examples, dtype=np.float64)
    if np.any(n <= 0):
        raise ValueError("num_examples must all be positive")
    share = (n / n.sum()).astype(np.float32)
    return [
        sum(s * d[i] for s, d in zip(share, deltas, strict=True)).astype(np.float32)
        for i in range(len(deltas[0]))
    ]


def server_update(
    global_weights: Weights, aggregated_delta: Weights, server_lr: float = 1.0
) -> Weights:
    """Stage 5b: move the global model along the aggregated update, ``w + server_lr · Δ``.

    Example:
        >>> server_update([np.ones(1)], [np.array([2.0])], server_lr=0.5)[0].tolist()
        [2.0]
    """
    from fedlab.algorithms import ServerSGD

    new, _ = ServerSGD(server_lr).apply(global_weights, aggregated_delta, {})
    return new


def server_step(
    algorithm: Algorithm,
    global_weights: Weights,
    server_state: dict,
    stacked_deltas: Sequence[np.ndarray] | None,
    num_examples: Sequence[float] | np.ndarray,
    round_num: int,
    num_clients: int,
    clients_per_round: int,
    seed: int = 0,
    state_changes: Sequence[Weights] = (),
    aggregated_delta: Weights | None = None,
    local_steps: Sequence[int] | None = None,
    client_ids: Sequence[int] | None = None,
) -> tuple[Weights, dict, Weights, dict]:
    """Stage 5 with ``algorithm``'s slots (aggregate, then update): the server's whole half of a round.

    ``stacked_deltas`` holds what the K participating clients sent (decoded), one ``[K, ...]``
    array per weight, ``num_examples`` their K example counts and ``local_steps`` the local
    steps each took (FedNova needs them; default 1 each). The aggregate is the algorithm's
    aggregator (:func:`fedlab.rounds.aggregate`: a seeded stream per round for DP noise,
    ``expected_clients=clients_per_round``); the server update is ``algorithm.server_update``
    with the mean of the clients' ``state_changes`` (per client, new minus old state, one array
    per state array; empty for FedAvg) and participation K / ``num_clients``. When the aggregate
    was computed elsewhere, pass it as ``aggregated_delta`` with ``stacked_deltas=None`` and only
    the server update runs.

    Returns the new weights, the new server state, the aggregated update and the aggregate
    slot's statistics (``{}`` unless the algorithm reports some, e.g. DP-FedAvg's clipping).

    Example:
        >>> from fedlab.algorithms import FedAvg
        >>> two_clients = [np.array([[1.0, 2.0], [4.0, 8.0]])]  # [K=2, 2]: one weight
        >>> weights, _, mean, _ = server_step(
        ...     FedAvg(), [np.ones(2)], {}, two_clients, [3, 1], round_num=1,
        ...     num_clients=4, clients_per_round=2)
        >>> mean[0].tolist(), weights[0].tolist()  # (3·Δ₁ + 1·Δ₂)/4, then w + Δ
        ([1.75, 3.5], [2.75, 4.5])
    """
    round_num = check_int("round_num", round_num, low=1)
    num_clients = check_int("num_clients", num_clients, low=1)
    clients_per_round = check_int("clients_per_round", clients_per_round, low=1, high=num_clients)
    counts = np.asarray(num_examples, np.float32)
    if counts.ndim != 1 or counts.size > num_clients:
        raise ValueError(
            f"num_examples must hold one count per participating client (at most num_clients="
            f"{num_clients}), got shape {counts.shape}"
        )
    num_sent = len(counts)
    shapes = [np.shape(w) for w in global_weights]
    if (stacked_deltas is None) == (aggregated_delta is None):
        raise ValueError("pass exactly one of stacked_deltas and aggregated_delta")
    if stacked_deltas is not None:
        got = [np.shape(d) for d in stacked_deltas]
        if got != [(num_sent, *shape) for shape in shapes]:
            raise ValueError(
                f"stacked_deltas must be one [K={num_sent}, ...] array per weight, shaped "
                f"{[(num_sent, *shape) for shape in shapes]}, got {got}"
            )
        received = ClientUpdates(
            list(stacked_deltas),
            counts,
            client_ids,
            local_steps,
            round_num,
            clients_per_round,
            seed,
        )
        result = rounds.aggregate(algorithm.aggregator, {}, received)
    else:
        result = Aggregate([np.asarray(a) for a in aggregated_delta])
    state_changes = [list(change) for change in state_changes]
    if state_changes and (
        len(state_changes) != num_sent or len({len(c) for c in state_changes}) > 1
    ):
        raise ValueError(
            f"state_changes must be empty or hold one list of equally many arrays per client "
            f"(K={num_sent}), got {len(state_changes)} lists of {[len(c) for c in state_changes]}"
        )
    ids = range(num_sent) if client_ids is None else client_ids
    done = rounds.server_update(
        algorithm,
        global_weights,
        server_state,
        result,
        state_changes,
        num_sent / num_clients,
        round_num,
        ids,
    )
    return done.weights, done.server_state, done.update, done.metrics


def evaluate(
    model: keras.Model,
    weights: Weights,
    x: np.ndarray,
    y: np.ndarray,
    ignore_class: int | None = None,
    label_groups=None,
) -> tuple[float, float]:
    """Mean cross-entropy loss and accuracy of ``weights`` on ``x, y``.

    Means are over targets: examples, or every token of a sequence model (per-token loss, whose
    ``exp`` is the perplexity, and next-token accuracy); ``ignore_class`` targets do not count.

    Example:
        >>> loss, accuracy = evaluate(model, weights, digits.x_test, digits.y_test)  # doctest: +SKIP
    """
    for variable, w in zip(model.trainable_variables, weights, strict=True):
        variable.assign(w)
    logits = model(tf.constant(x), training=False)
    loss_sum, correct, count = evaluation_sums(tf.constant(y), logits, ignore_class, label_groups)
    count = max(float(count), 1.0)
    return float(loss_sum) / count, float(correct) / count


@dataclass(frozen=True)
class RoundResult:
    """One round done by hand with :func:`run_round`.

    Attributes:
        weights: the new global weights.
        server_state: the server's state after the round.
        clients: the results each selected client sent back, in client-id order.
        aggregated_delta: the combined update the server applied.
        client_states: every client's persistent state after the round (empty lists for FedAvg).
        stragglers: ids of the selected clients that straggled (see :mod:`fedlab.stragglers`).
        dropped: ids of the stragglers left out; ``clients`` holds everyone else.
        bytes_up: bytes of the updates sent up (float32, or the encoded messages).
        residuals: every client's error-feedback residual after the round (``None`` without
            ``ErrorFeedback`` compression).
        aggregation_info: the aggregate slot's statistics (DP-FedAvg: clipping and noise).
        malicious: the round's clients that attacked (with ``attackers``).
    """

    weights: Weights
    server_state: dict
    clients: list[ClientResult]
    aggregated_delta: Weights
    client_states: dict[int, Weights]
    stragglers: tuple[int, ...] = ()
    dropped: tuple[int, ...] = ()
    bytes_up: int = 0
    residuals: dict[int, Weights] | None = None
    aggregation_info: dict | None = None
    malicious: tuple[int, ...] = ()


def run_round(
    model: keras.Model,
    global_weights: Weights,
    data,
    split,
    algorithm: Algorithm,
    clients_per_round: int,
    round_num: int,
    seed: int = 0,
    server_state: dict | None = None,
    client_states: dict[int, Weights] | None = None,
    stragglers: Stragglers | None = None,
    compression: Codec | ErrorFeedback | None = None,
    residuals: dict[int, Weights] | None = None,
    max_local_steps: int | Sequence[int] | None = None,
    secure_aggregation: SecureAggregation | None = None,
    attackers: Attackers | None = None,
) -> RoundResult:
    """All stages of one round, one client at a time, with ``algorithm``'s slots.

    This is the readable reference the engine is tested against: same clients, same batches,
    same numbers. Pass the previous round's ``server_state`` and ``client_states`` to go on.
    With ``stragglers``, some selected clients train fewer local steps and, with
    ``stragglers.drop``, are left out; if every selected client is dropped, the weights and
    server state stay as they were and ``aggregated_delta`` is zero. With ``compression``, each
    update goes through :func:`compress_update` and the server aggregates what it decodes; pass
    the previous round's ``residuals`` to go on with error feedback. ``max_local_steps`` caps
    every client's local steps (a compute budget: one int, or one per client). With
    ``secure_aggregation`` the server learns only the weighted sum of the updates
    (:meth:`fedlab.secure_aggregation.SecureAggregation.sum`); if it must refuse, nothing changes
    this round. With ``attackers`` (:mod:`fedlab.poisoning`), the malicious clients poison their
    own data in the loop below and tamper with the update they send. Every stage but the client work is :mod:`fedlab.rounds`', shared with the engine and
    the Flower ServerApp.

    Example:
        >>> result = run_round(model, weights, digits, split, FedAvg(), 10, round_num=1)  # doctest: +SKIP
    """
    num_clients = len(split.client_indices)
    _check_one_global_model(algorithm, global_weights, data, split)
    rounds.check_composition(
        algorithm,
        clients_per_round=clients_per_round,
        compression=compression,
        secure_aggregation=secure_aggregation,
    )
    aggregator = rounds.compose(algorithm, secure_aggregation)
    if server_state is None:
        server_state = algorithm.server_optimizer.init(global_weights)
    client_states = _client_states(algorithm, global_weights, num_clients, client_states)
    residuals = _residuals(compression, global_weights, num_clients, residuals)
    sizes = np.array([len(own) for own in split.client_indices])
    attack = attackers.attack if attackers is not None else Attack()
    malicious = attackers.malicious(num_clients, seed) if attackers else np.zeros(0, np.int64)
    caps = None if max_local_steps is None else step_budgets(max_local_steps, num_clients)

    # 1 plan: who takes part, and how many local steps each may take (None: all)
    plan = rounds.plan_round(
        algorithm, num_clients, clients_per_round, round_num, seed, stragglers, sizes, caps
    )
    budgets = [None] * len(plan.clients) if plan.budgets is None else plan.budgets.tolist()
    # 2 send + 3 train locally, one client after another: its data never leaves this loop
    sent_state = algorithm.broadcast_state(server_state)
    limit = rounds.loss_limit(_num_outputs(model, data)) if len(plan.clients) else math.inf
    results = []
    for (k, weights), budget in zip(
        broadcast(global_weights, plan.clients).items(), budgets, strict=True
    ):
        x, y = _client_data(data, split, k)
        if k in malicious:  # an attacker poisons its own data (identity for update attacks)
            x, y = attack.poison_data(x, y, data.num_classes, attack_stream(seed, DATA, k))
        result = local_update(
            model, weights, x, y, algorithm, round_num, k, seed, client_states[k], sent_state,
            max_steps=budget,
            ignore_class=getattr(data, "ignore_class", None),
            label_groups=getattr(data, "label_groups", None),
        )  # fmt: skip
        rounds.check_losses([k], [result.loss], round_num, limit)
        results.append(result)
    # 4 upload: what each client chooses to send (an attacker tampers with it), compressed
    shapes = [np.shape(w) for w in global_weights]
    honest = rounds.stack([r.delta for r in results], shapes)
    chosen = tamper_round(attack, honest, plan.clients, malicious, round_num, seed)
    deltas = [[d[i] for d in chosen] for i in range(len(results))]
    sent, bytes_up, kept = rounds.upload(
        compression, deltas, plan.clients, round_num, seed, residuals
    )
    # 5 aggregate + update the global model
    received = ClientUpdates(
        rounds.stack(sent, shapes),
        [r.num_examples for r in results],
        plan.clients,
        [max(r.num_steps, 1) for r in results],
        round_num,
        clients_per_round,
        seed,
        global_weights,
    )
    aggregate = (
        rounds.aggregate(aggregator, {}, received)
        if results or aggregator.acts_without_clients
        else None
    )
    changes = [
        [new - old for new, old in zip(r.client_state, client_states[r.client_id], strict=True)]
        for r in results
    ]
    done = rounds.server_update(
        algorithm,
        global_weights,
        server_state,
        aggregate,
        changes,
        len(results) / num_clients,
        round_num,
        plan.clients,
    )
    if done.changed:
        client_states.update({r.client_id: r.client_state for r in results})
    if residuals is not None:
        residuals.update(kept)
    return RoundResult(
        done.weights,
        done.server_state,
        results,
        done.update,
        client_states,
        tuple(int(k) for k in plan.stragglers),
        tuple(int(k) for k in plan.dropped),
        bytes_up if done.bytes_up is None else done.bytes_up,
        residuals,
        done.metrics if aggregate is not None else None,
        tuple(int(k) for k in np.intersect1d(plan.clients, malicious)),
    )


def _check_one_global_model(algorithm: Algorithm, weights: Weights, data, split) -> None:
    """:func:`run_round` shows one global model's round: personalised algorithms are refused."""
    personal = algorithm.personalization
    if personal is not None and (
        not personal.trains_global
        or personal.num_global_models() > 1
        or personal.personal_init(weights) is not None
        or personal.share_masks(weights, data, split) is not None
    ):
        raise ValueError(
            f"run_round shows one global model's round; {algorithm.name} keeps personal models, "
            "heads or clusters: run it with fedlab.simulate (see fedlab.personalization)"
        )


def _client_states(
    algorithm: Algorithm, weights: Weights, num_clients: int, given: dict | None
) -> dict[int, Weights]:
    """Every client's persistent state: a copy of ``given``, or the algorithm's initial state."""
    if given is not None:
        return dict(given)
    first = algorithm.client_state_init(weights)
    return {k: [np.array(a, np.float32) for a in first] for k in range(num_clients)}


def _residuals(compression, weights: Weights, num_clients: int, given: dict | None):
    """Every client's error-feedback residual (``None`` without error feedback)."""
    if not isinstance(compression, ErrorFeedback):
        return given
    if given is None:
        return {k: compression.init(weights) for k in range(num_clients)}
    return dict(given)


def _client_data(data, split, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Client k's training examples (used on the client, never sent)."""
    own = split.client_indices[k]
    return np.asarray(data.x_train[own], np.float32), np.asarray(data.y_train[own], np.int32)


def _num_outputs(model: keras.Model, data) -> int:
    """The model's number of class scores (the exploding-loss limit depends on it)."""
    return int(np.shape(model(np.asarray(data.x_train[:1], np.float32)))[-1])
