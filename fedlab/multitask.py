"""Multi-task FL on one image set: clients solve different tasks (``13_personalisation_and_multitask``).

Each client answers its own question about a handwritten digit: which digit it is, whether it
is odd, whether it is at least 5, whether it is drawn with a closed loop. All tasks share one
model whose output layer has a block of *joint* classes per task; :attr:`Dataset.label_groups`
records each task's ``[start, stop)`` block, and :func:`mask_logits` hides every other block so
the loss and the prediction of an example are taken over its own task's classes only.

* :data:`TASKS` — the tasks: name -> ``(num_classes, function of the digit label)``.
* :func:`multitask_digits` — an IID split where client ``k`` solves task ``k % len(tasks)``.
* :func:`task_of` — the task of each joint label.
* :func:`mask_logits` — TensorFlow: logits outside each target's task set to ``-1e9``.
* :func:`task_accuracy` — a model's accuracy on each task's copy of the test set.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np
import tensorflow as tf
from numpy.typing import ArrayLike

from fedlab.data import Dataset, check_label_groups
from fedlab.partition import ClientSplit, iid
from fedlab.validate import check_array, check_choice, check_int

MASKED_LOGIT = -1e9
"""What :func:`mask_logits` puts in place of another task's logits: ``exp`` of it is 0."""


def _digit(y: np.ndarray) -> np.ndarray:
    return y


def _parity(y: np.ndarray) -> np.ndarray:
    return y % 2


def _ge5(y: np.ndarray) -> np.ndarray:
    return (y >= 5).astype(y.dtype)


def _loop(y: np.ndarray) -> np.ndarray:
    return np.isin(y, (0, 6, 8, 9)).astype(y.dtype)


TASKS: dict[str, tuple[int, Callable[[np.ndarray], np.ndarray]]] = {
    "digit": (10, _digit),
    "parity": (2, _parity),
    "ge5": (2, _ge5),
    "loop": (2, _loop),
}
"""Task name -> ``(num_classes, function of the digit label)``.

``"digit"``: the digit itself (10 classes); ``"parity"``: ``y % 2`` (1 = odd); ``"ge5"``:
``y >= 5``; ``"loop"``: 1 when the digit is drawn with a closed loop, ``y in {0, 6, 8, 9}``.
A 4 counts as open, as most of scikit-learn's handwritten 4s are drawn.
"""


def _check_tasks(tasks: Sequence[str]) -> tuple[str, ...]:
    if isinstance(tasks, str) or not isinstance(tasks, Sequence):
        raise TypeError(
            f"tasks must be a list of task names from {list(TASKS)}, got {type(tasks).__name__}"
        )
    if len(tasks) == 0:
        raise ValueError(f"tasks must name at least one task from {list(TASKS)}")
    names = tuple(check_choice(f"tasks[{k}]", name, TASKS) for k, name in enumerate(tasks))
    if len(set(names)) != len(names):
        raise ValueError(f"tasks must not repeat a task, got {list(names)}")
    return names


def multitask_digits(
    dataset: Dataset,
    num_clients: int,
    tasks: Sequence[str] = ("digit", "parity", "ge5", "loop"),
    seed: int = 0,
) -> tuple[Dataset, ClientSplit]:
    """Digits split IID among clients that solve different tasks, with joint labels.

    Client ``k`` solves task ``t = k % len(tasks)`` (its ``client_groups`` entry): its labels
    become ``offset_t + task(y)``, where ``offset_t`` is the number of classes of the tasks
    before ``t``. The returned dataset has the total number of classes (16 for the default
    tasks) and ``label_groups`` (``((0, 10), (10, 12), (12, 14), (14, 16))`` by default). Its
    test set is ``x_test`` once per task, task by task, each copy with that task's joint labels,
    so a global test accuracy is the mean over the tasks. ``dataset`` must hold digit labels
    0-9 (``load_digits`` or ``load_mnist``) and ``num_clients`` must be at least the number of
    tasks.

    Example:
        >>> from fedlab.data import load_digits
        >>> joint, split = multitask_digits(load_digits(), num_clients=8)
        >>> joint.num_classes, joint.label_groups, split.client_groups.tolist()
        (16, ((0, 10), (10, 12), (12, 14), (14, 16)), [0, 1, 2, 3, 0, 1, 2, 3])
    """
    names = _check_tasks(tasks)
    if not isinstance(dataset, Dataset):
        raise TypeError(f"dataset must be a fedlab Dataset, got {type(dataset).__name__}")
    if dataset.num_classes != 10 or dataset.label_groups is not None:
        raise ValueError(
            f"multitask_digits needs a dataset of digit labels 0-9 (10 classes, one task), "
            f"got {dataset.name!r} with {dataset.num_classes} classes"
        )
    num_clients = check_int("num_clients", num_clients, low=len(names), high=dataset.num_train)
    split = iid(dataset.y_train, num_clients, seed=seed, num_classes=10)
    sizes = [TASKS[name][0] for name in names]
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
    label_groups = tuple((int(offsets[t]), int(offsets[t + 1])) for t in range(len(names)))
    total = int(offsets[-1])

    def joint(y: np.ndarray, t: int) -> np.ndarray:
        return (offsets[t] + TASKS[names[t]][1](y.astype(np.int64))).astype(np.int32)

    groups = np.arange(num_clients) % len(names)
    y_train = np.array(dataset.y_train, dtype=np.int32, copy=True)
    for k, own in enumerate(split.client_indices):
        y_train[own] = joint(dataset.y_train[own], int(groups[k]))
    y_test = np.concatenate([joint(dataset.y_test, t) for t in range(len(names))])
    x_test = np.concatenate([dataset.x_test] * len(names))
    result = replace(
        dataset,
        name=f"{dataset.name}+multitask({','.join(names)})",
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        num_classes=total,
        client_ids=None,
        test_client_ids=None,
        label_groups=label_groups,
    )
    joint_split = ClientSplit.from_indices(
        split.client_indices,
        y_train,
        total,
        scheme=f"multitask({len(names)} tasks)",
        client_groups=groups,
    )
    return result, joint_split


def task_of(y: ArrayLike, label_groups: Sequence[tuple[int, int]]) -> np.ndarray:
    """The task (index into ``label_groups``) of each joint label in ``y``, as int64.

    Example:
        >>> task_of([0, 9, 10, 13, 15], ((0, 10), (10, 12), (12, 14), (14, 16))).tolist()
        [0, 0, 1, 2, 3]
    """
    groups = check_label_groups(label_groups)
    y = check_array("y", y, dtype_kind="iu")
    top = groups[-1][1]
    if y.size and (y.min() < 0 or y.max() >= top):
        raise ValueError(f"y must hold joint labels in [0, {top - 1}], got values outside")
    stops = np.array([stop for _, stop in groups])
    return np.searchsorted(stops, y, side="right").astype(np.int64)


def mask_logits(
    y: tf.Tensor, logits: tf.Tensor, label_groups: Sequence[tuple[int, int]] | None
) -> tf.Tensor:
    """Logits with every class outside each target's task replaced by :data:`MASKED_LOGIT`.

    ``y`` holds joint labels (shape ``[n]``), ``logits`` the model's outputs (``[n, C]``). Each
    row keeps the logits of the task containing its label and gets ``-1e9`` elsewhere
    (``tf.where``), so softmax cross-entropy over all ``C`` classes equals the cross-entropy over
    the task's own classes, the gradient reaching the other logits is exactly 0, and
    ``argmax`` predicts within the task. Plain TensorFlow ops: works inside ``tf.function`` and
    ``tf.vectorized_map``. ``label_groups=None`` (one task) returns ``logits`` unchanged.

    Example:
        >>> masked = mask_logits(tf.constant([1, 2]), tf.zeros([2, 4]), ((0, 2), (2, 4)))
        >>> masked.numpy().tolist()
        [[0.0, 0.0, -1000000000.0, -1000000000.0], [-1000000000.0, -1000000000.0, 0.0, 0.0]]
    """
    if label_groups is None:
        return logits
    num_classes = logits.shape[-1]
    groups = check_label_groups(label_groups, num_classes)  # checked once, when traced
    starts = tf.constant([start for start, _ in groups], dtype=tf.int32)
    stops = tf.constant([stop for _, stop in groups], dtype=tf.int32)
    y = tf.cast(y, tf.int32)
    task = tf.reduce_sum(tf.cast(y[..., None] >= starts, tf.int32), axis=-1) - 1
    low = tf.gather(starts, task)[..., None]
    high = tf.gather(stops, task)[..., None]
    classes = tf.range(tf.shape(logits)[-1], dtype=tf.int32)
    keep = (classes >= low) & (classes < high)
    return tf.where(keep, logits, tf.cast(MASKED_LOGIT, logits.dtype))


def task_accuracy(model: Callable, data: Dataset, batch_size: int = 4096) -> np.ndarray:
    """The accuracy of ``model`` on each task's examples of ``data``'s test set, one per task.

    ``model`` maps inputs to logits over all of ``data``'s joint classes (a Keras model such as
    ``Simulation.global_model()``, or any callable). An example of task ``t`` counts as right
    when the largest logit *within the task's classes* (``data.label_groups[t]``) is its label,
    as in :func:`mask_logits`. The test set of :func:`multitask_digits` holds every test image
    once per task, so each task is measured on the same images; with few clients per task this
    is steadier than the clients' own small test sets. A task without test examples gets ``nan``.
    The inputs go through ``model`` in chunks of ``batch_size``.

    Example:
        >>> from fedlab.data import load_digits
        >>> from fedlab.models import model_fn
        >>> joint, _ = multitask_digits(load_digits(), num_clients=4)
        >>> untrained = model_fn("mlp", 16)()
        >>> accuracy = task_accuracy(untrained, joint)
        >>> accuracy.shape, bool(((accuracy >= 0) & (accuracy <= 1)).all())
        ((4,), True)
    """
    if not isinstance(data, Dataset):
        raise TypeError(f"data must be a fedlab Dataset, got {type(data).__name__}")
    if data.label_groups is None:
        raise ValueError(
            f"data must hold several tasks (label_groups), e.g. multitask_digits(...); "
            f"{data.name!r} has one"
        )
    if not callable(model):
        raise TypeError(
            f"model must map inputs to logits (e.g. sim.global_model()), got {type(model).__name__}"
        )
    batch_size = check_int("batch_size", batch_size, low=1)
    groups = check_label_groups(data.label_groups, data.num_classes)
    x, y = data.x_test, np.asarray(data.y_test)
    logits = (
        np.concatenate(
            [np.asarray(model(x[i : i + batch_size])) for i in range(0, len(x), batch_size)]
        )
        if len(x)
        else np.zeros((0, data.num_classes), np.float32)
    )
    if logits.ndim != 2 or logits.shape != (len(x), data.num_classes):
        raise ValueError(
            f"model must give one logit per joint class, shape [n, {data.num_classes}]; got "
            f"{logits.shape} (build it with {data.num_classes} outputs)"
        )
    tasks = task_of(y, groups)
    accuracy = np.full(len(groups), np.nan)
    for t, (start, stop) in enumerate(groups):
        rows = tasks == t
        if rows.any():
            predicted = start + logits[rows, start:stop].argmax(axis=1)
            accuracy[t] = float(np.mean(predicted == y[rows]))
    return accuracy


def task_table(accuracies: dict, client_tasks, tasks: Sequence[str] = tuple(TASKS)) -> str:
    """A text table: for each run (label -> per-client accuracy), the mean accuracy of each
    task's clients and over all clients. ``client_tasks`` is each client's task id
    (``split.client_groups`` of :func:`multitask_digits`).

    Example:
        >>> print(task_table({"run": np.array([1.0, 0.5, 0.8, 0.6])}, [0, 1, 0, 1], ("digit", "parity")))
                              digit parity   mean
        run                   0.900  0.550  0.725
    """
    client_tasks = np.asarray(client_tasks)
    lines = [f"{'':20s}" + "".join(f" {name[:6]:>6s}" for name in tasks) + f" {'mean':>6s}"]
    for name, values in accuracies.items():
        values = np.asarray(values, dtype=float)
        if values.shape != client_tasks.shape:
            raise ValueError(
                f"accuracies[{name!r}] must have one value per client ({len(client_tasks)}), "
                f"got shape {values.shape}"
            )
        cells = "".join(f" {values[client_tasks == t].mean():6.3f}" for t in range(len(tasks)))
        lines.append(f"{name:20s}{cells} {values.mean():6.3f}")
    return "\n".join(lines)
