"""Datasets that work offline, and the loader for MNIST (``01_one_round_by_hand``, ``02_client_splits``).

* :func:`load_digits` — scikit-learn's bundled 8x8 handwritten digits (no download).
* :func:`synthetic` — the FedProx paper's Synthetic(α, β) generator, with its natural client split.
* :func:`load_mnist` — the standard Keras ``mnist.npz``, from a path or the Keras cache (never
  downloads: fedlab assumes no internet).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from fedlab.validate import check_float, check_int


@dataclass(frozen=True)
class Dataset:
    """A classification dataset split into train and test arrays.

    Attributes:
        name: short name shown in plots and histories.
        x_train: training inputs, float32.
        y_train: training labels, int32 in ``[0, num_classes)``.
        x_test: test inputs, float32.
        y_test: test labels, int32.
        num_classes: number of classes.
        image_shape: shape of one input as an image (e.g. ``(8, 8, 1)``), ``None`` if not images.
        client_ids: for datasets with a natural split, the client of each training example.
        test_client_ids: the client of each test example, likewise.
        label_groups: for multi-task datasets (:mod:`fedlab.multitask`), the ``[start, stop)``
            range of joint class ids of each task, in order and covering ``[0, num_classes)``;
            a target's loss and prediction are taken only over its own task's classes.
            ``None`` for one task.

    Example:
        >>> digits = load_digits()
        >>> digits.num_train, digits.input_shape, digits.num_classes
        (1437, (64,), 10)
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    image_shape: tuple[int, ...] | None = None
    client_ids: np.ndarray | None = None
    test_client_ids: np.ndarray | None = None
    label_groups: tuple[tuple[int, int], ...] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.num_classes, bool) or not isinstance(self.num_classes, int | np.integer):
            raise TypeError(
                f"num_classes must be a whole number of classes, e.g. 10, got {self.num_classes!r}"
            )
        if self.num_classes < 1:
            raise ValueError(f"num_classes must be at least 1, got {self.num_classes}")
        object.__setattr__(self, "num_classes", int(self.num_classes))
        if self.label_groups is not None:
            groups = check_label_groups(self.label_groups, self.num_classes)
            object.__setattr__(self, "label_groups", groups)

    def __repr__(self) -> str:  # the arrays are too long to print
        return f"Dataset({self.summary()})"

    @property
    def num_train(self) -> int:
        """Number of training examples."""
        return len(self.y_train)

    @property
    def num_test(self) -> int:
        """Number of test examples."""
        return len(self.y_test)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one input (without the example axis)."""
        return tuple(self.x_train.shape[1:])

    def as_images(self) -> Dataset:
        """The same data with inputs shaped as images, e.g. ``(n, 8, 8, 1)`` for a CNN.

        Example:
            >>> load_digits().as_images().x_train.shape
            (1437, 8, 8, 1)
        """
        if self.image_shape is None:
            raise ValueError(f"dataset {self.name!r} has no image_shape: its inputs are not images")
        return replace(
            self,
            x_train=self.x_train.reshape(-1, *self.image_shape),
            x_test=self.x_test.reshape(-1, *self.image_shape),
        )

    def summary(self) -> str:
        """One line: name, sizes, input shape and number of classes.

        Example:
            >>> load_digits().summary()
            'digits: 1437 train / 360 test examples, input shape (64,), 10 classes'
        """
        tasks = "" if self.label_groups is None else f" in {len(self.label_groups)} tasks"
        return (
            f"{self.name}: {self.num_train} train / {self.num_test} test examples, "
            f"input shape {self.input_shape}, {self.num_classes} classes{tasks}"
        )


def check_label_groups(
    label_groups: object, num_classes: int | None = None
) -> tuple[tuple[int, int], ...]:
    """``label_groups`` as a tuple of ``(start, stop)`` int pairs, checked to tile the classes.

    The ranges must be non-empty, in order and back to back from 0 (``stop`` of one is ``start``
    of the next); the last ``stop`` must be ``num_classes`` when that is given.

    Example:
        >>> check_label_groups([[0, 10], (10, 12)], num_classes=12)
        ((0, 10), (10, 12))
    """
    wrong = (
        "label_groups must be a list of (start, stop) class ranges that tile "
        f"[0, num_classes) in order, e.g. ((0, 10), (10, 12)); got {label_groups!r}"
    )
    if isinstance(label_groups, str | bytes | dict):
        raise TypeError(wrong)
    try:
        pairs = [tuple(pair) for pair in label_groups]  # type: ignore[union-attr]
    except TypeError:
        raise TypeError(wrong) from None
    if not pairs or any(len(pair) != 2 for pair in pairs):
        raise ValueError(wrong)
    groups = []
    expected_start = 0
    for k, (start, stop) in enumerate(pairs):
        start = check_int(
            f"label_groups[{k}] start", start, low=expected_start, high=expected_start
        )
        stop = check_int(f"label_groups[{k}] stop", stop, low=start + 1)
        groups.append((start, stop))
        expected_start = stop
    if num_classes is not None and expected_start != num_classes:
        raise ValueError(
            f"label_groups must end at num_classes={num_classes}, but the last stop is "
            f"{expected_start}"
        )
    return tuple(groups)


def load_digits(test_size: float = 0.2, seed: int = 0) -> Dataset:
    """scikit-learn's bundled 8x8 digits (1797 images, 10 classes), scaled to [0, 1], stratified split.

    Example:
        >>> load_digits(test_size=0.5).num_test
        899
    """
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split

    test_size = check_float(
        "test_size", test_size, low=0.0, high=1.0, low_inclusive=False, high_inclusive=False
    )
    seed = check_int("seed", seed, low=0)
    x, y = sklearn_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    y = y.astype(np.int32)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test_size, random_state=seed, stratify=y
    )
    return Dataset(
        "digits", x_train, y_train, x_test, y_test, num_classes=10, image_shape=(8, 8, 1)
    )


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def synthetic(
    alpha: float,
    beta: float,
    num_clients: int = 30,
    num_features: int = 60,
    num_classes: int = 10,
    iid: bool = False,
    size_mean: float = 4.0,
    size_sigma: float = 2.0,
    min_size: int = 50,
    max_size: int = 2000,
    seed: int = 0,
) -> Dataset:
    """The Synthetic(α, β) data of FedProx (Li et al., 2020), with its natural split by client.

    For client k: ``u_k ~ N(0, α)``; ``W_k ~ N(u_k, 1)`` and ``b_k ~ N(u_k, 1)`` define its own
    softmax model; ``B_k ~ N(0, β)`` and ``v_k ~ N(B_k, 1)`` give its feature means (β: how
    different the clients' *inputs* are); inputs ``x ~ N(v_k, Σ)`` with ``Σ_jj = j^-1.2``; labels
    ``y = argmax(softmax(W_k x + b_k))``. As in the paper's reference code, the second argument of
    ``N(·, ·)`` is a standard deviation.

    Worth noticing: the clients' labelling functions differ because each draws its own ``W_k``,
    even at α = 0. The shift ``u_k`` adds the same number to every logit, which leaves the argmax
    unchanged, so α does not change the data: with one seed every α gives the same inputs and,
    but for floating-point rounding, the same labels. The paper's generator behaves the same way.

    ``iid=True`` is the reference ``generate_iid``: one model for everyone (``W, b ~ N(0, 1)``) and
    zero-mean inputs; α and β are then unused. Client sizes are
    ``int(lognormal(size_mean, size_sigma)) + min_size`` as in the reference code, capped at
    ``max_size`` (a fedlab choice: one giant client would dominate the run time). Each client
    keeps the first ``int(0.9 n)`` of its ``n`` examples for training and the rest (at least one)
    for testing; ``client_ids`` and ``test_client_ids`` record whose each example is (pass them to
    :func:`fedlab.partition.natural`).

    Example:
        >>> data = synthetic(0.5, 0.5, num_clients=5, seed=0)
        >>> data.name, data.input_shape, len(np.unique(data.client_ids))
        ('synthetic(0.5,0.5)', (60,), 5)
    """
    alpha = check_float("alpha", alpha, low=0.0)
    beta = check_float("beta", beta, low=0.0)
    num_clients = check_int("num_clients", num_clients, low=1)
    num_features = check_int("num_features", num_features, low=1)
    num_classes = check_int("num_classes", num_classes, low=2)
    min_size = check_int("min_size", min_size, low=2)
    max_size = check_int("max_size", max_size, low=min_size)
    size_mean = check_float("size_mean", size_mean)
    size_sigma = check_float("size_sigma", size_sigma, low=0.0)
    if not isinstance(iid, bool | np.bool_):
        raise TypeError(f"iid must be True or False, got {type(iid).__name__} {iid!r}")
    seed = check_int("seed", seed, low=0)
    rng = np.random.default_rng(seed)

    extra = rng.lognormal(size_mean, size_sigma, num_clients)  # heavy-tailed: a few big clients
    sizes = np.minimum(extra, max_size - min_size).astype(np.int64) + min_size
    std = np.arange(1, num_features + 1) ** -0.6  # sqrt of Σ_jj = j^-1.2
    if iid:
        shared_w = rng.normal(0, 1, (num_features, num_classes))
        shared_b = rng.normal(0, 1, num_classes)
        shared_v = np.zeros(num_features)
    parts = {
        "x_train": [],
        "y_train": [],
        "ids_train": [],
        "x_test": [],
        "y_test": [],
        "ids_test": [],
    }
    for k, n in enumerate(sizes):
        if iid:
            w, b, v = shared_w, shared_b, shared_v
        else:
            u = rng.normal(0, alpha)
            w = rng.normal(u, 1, (num_features, num_classes))
            b = rng.normal(u, 1, num_classes)
            v = rng.normal(rng.normal(0, beta), 1, num_features)
        x = (v + std * rng.normal(size=(n, num_features))).astype(np.float32)
        y = np.argmax(_softmax(x @ w + b), axis=1).astype(np.int32)
        cut = n * 9 // 10  # 90% for training, as int(0.9 * n) in the reference code
        for split, rows in (("train", slice(None, cut)), ("test", slice(cut, None))):
            parts[f"x_{split}"].append(x[rows])
            parts[f"y_{split}"].append(y[rows])
            parts[f"ids_{split}"].append(np.full(len(y[rows]), k, np.int64))
    joined = {key: np.concatenate(value) for key, value in parts.items()}
    name = "synthetic-iid" if iid else f"synthetic({alpha:g},{beta:g})"
    return Dataset(
        name,
        joined["x_train"],
        joined["y_train"],
        joined["x_test"],
        joined["y_test"],
        num_classes=num_classes,
        client_ids=joined["ids_train"],
        test_client_ids=joined["ids_test"],
    )


_MNIST_KEYS = {"x_train": 3, "y_train": 1, "x_test": 3, "y_test": 1}  # key: number of dimensions


def _keras_cache() -> Path:
    """Where ``keras.datasets.mnist.load_data()`` keeps the file: under $KERAS_HOME or ~/.keras."""
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "datasets" / "mnist.npz"


def _read_mnist_npz(file: Path) -> dict[str, np.ndarray]:
    """The four arrays of a Keras ``mnist.npz``, checked: a ValueError names any bad key."""
    try:
        archive = np.load(file)
    except Exception as error:  # noqa: BLE001 - any unreadable file gets the same clear message
        raise ValueError(f"{file} is not a Keras mnist.npz: numpy cannot read it") from error
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ValueError(f"{file} is not a Keras mnist.npz: it holds one array, not an archive")
    with archive:
        arrays = {}
        for key, ndim in _MNIST_KEYS.items():
            if key not in archive.files:
                raise ValueError(f"{file} is not a Keras mnist.npz: key {key!r} is missing")
            arrays[key] = archive[key]
            if arrays[key].ndim != ndim:
                raise ValueError(
                    f"{file}: {key!r} must have {ndim} dimensions, got shape {arrays[key].shape}"
                )
    for key in ("x_train", "x_test"):
        if arrays[key].dtype != np.uint8:
            raise ValueError(
                f"{file}: {key!r} must hold uint8 pixels 0-255, got {arrays[key].dtype}"
            )
    if arrays["x_test"].shape[1:] != arrays["x_train"].shape[1:]:
        raise ValueError(
            f"{file}: 'x_test' images have shape {arrays['x_test'].shape[1:]}, "
            f"but 'x_train' images have shape {arrays['x_train'].shape[1:]}"
        )
    for part in ("train", "test"):
        x, y = arrays[f"x_{part}"], arrays[f"y_{part}"]
        if len(x) != len(y):
            raise ValueError(
                f"{file}: 'x_{part}' has {len(x)} images but 'y_{part}' has {len(y)} labels"
            )
        if y.dtype.kind not in "iu" or (y.size and (y.min() < 0 or y.max() > 9)):
            raise ValueError(f"{file}: 'y_{part}' must hold integer labels in [0, 9]")
    return arrays


def load_mnist(path: str | os.PathLike | None = None) -> Dataset:
    """MNIST from the standard Keras ``mnist.npz`` (at ``path``, or the Keras cache if ``None``).

    fedlab never downloads: get the file once on a machine with internet
    (``keras.datasets.mnist.load_data()`` saves it to ``~/.keras/datasets/mnist.npz``, or under
    ``$KERAS_HOME``), or use :func:`load_digits`, which works offline. Pixels are scaled to
    [0, 1] and flattened to 784 features; :meth:`Dataset.as_images` gives ``(n, 28, 28, 1)``.

    Example:
        >>> mnist = load_mnist("mnist.npz")  # doctest: +SKIP
        >>> mnist.x_train.shape  # doctest: +SKIP
        (60000, 784)
    """
    file = Path(path) if path is not None else _keras_cache()
    if not file.is_file():
        raise FileNotFoundError(
            f"mnist.npz not found at {file}. fedlab does not download data. On a machine with "
            f"internet run `keras.datasets.mnist.load_data()` (it saves {_keras_cache()}) "
            "or download https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz "
            "and pass load_mnist(path=...). To work offline now, use fedlab.data.load_digits()."
        )
    arrays = _read_mnist_npz(file)

    def flat(x: np.ndarray) -> np.ndarray:
        return (x.reshape(len(x), -1) / 255.0).astype(np.float32)

    return Dataset(
        "mnist",
        flat(arrays["x_train"]),
        arrays["y_train"].astype(np.int32),
        flat(arrays["x_test"]),
        arrays["y_test"].astype(np.int32),
        num_classes=10,
        image_shape=(*arrays["x_train"].shape[1:], 1),
    )
