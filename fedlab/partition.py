"""Client splits: which training examples each client holds (``01_one_round_by_hand``, ``02_client_splits``).

Every partitioner is seeded and returns a :class:`ClientSplit` built through
:meth:`ClientSplit.from_indices`, which checks that clients are disjoint:

======================  ==========================================================================
:func:`iid`             uniform random, equal sizes
:func:`dirichlet`       label skew: each class split in Dir(α) shares; small α, few classes each
:func:`shards`          the FedAvg paper's pathological split: sort by label, deal shards
:func:`label_limit`     exactly k classes per client
:func:`quantity_skew`   lognormal client sizes, labels IID
:func:`feature_skew`    same labels IID, each client's *inputs* transformed differently
:func:`natural`         an existing client id per example (Synthetic(α, β) devices)
:func:`mixed`           SCAFFOLD's "s% similarity": a share s IID, the rest sorted by label
:func:`rotated_groups`  planted groups of clients, each group's images rotated alike
======================  ==========================================================================

For personalised and clustered FL (``13_personalisation_and_multitask``): :func:`hold_out` gives
each client its own test set drawn from its own data (``ClientSplit.test_indices``), and
:func:`rotated_groups` plants groups of clients whose images are rotated alike
(``ClientSplit.client_groups``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

from fedlab.validate import check_array, check_float, check_int

if TYPE_CHECKING:  # only for type hints: partition needs numpy alone
    from fedlab.data import Dataset


@dataclass(frozen=True)
class ClientSplit:
    """Disjoint sets of training-example indices, one per client.

    Attributes:
        client_indices: per client, sorted int64 indices into the training set.
        num_classes: number of label classes.
        label_counts: ``[num_clients, num_classes]`` count of each label on each client.
        scheme: how the split was made (``"iid"``, ``"natural"``, ...).
        test_indices: per client, sorted int64 indices into the *training* set held out as that
            client's own test set (see :func:`hold_out`); disjoint from every client's
            ``client_indices``. ``None`` when nothing is held out.
        client_groups: one int per client, a planted group (rotation group, task id) for
            checking clustering and multi-task runs; ``None`` when there is none.

    Example:
        >>> split = iid(np.array([0, 1, 0, 1, 1, 0]), num_clients=2, seed=0)
        >>> split.sizes.tolist(), split.label_counts.sum(axis=1).tolist()
        ([3, 3], [3, 3])
    """

    client_indices: tuple[np.ndarray, ...]
    num_classes: int
    label_counts: np.ndarray
    scheme: str
    test_indices: tuple[np.ndarray, ...] | None = None
    client_groups: np.ndarray | None = None

    def __post_init__(self) -> None:
        # normalise and check the optional fields (frozen: set through object.__setattr__)
        if self.test_indices is not None:
            held_out = _check_test_indices(self.test_indices, self.client_indices, None)
            object.__setattr__(self, "test_indices", held_out)
        if self.client_groups is not None:
            groups = _check_client_groups(self.client_groups, len(self.client_indices))
            object.__setattr__(self, "client_groups", groups)

    @property
    def num_clients(self) -> int:
        """Number of clients."""
        return len(self.client_indices)

    @property
    def sizes(self) -> np.ndarray:
        """Number of examples on each client."""
        return np.array([len(i) for i in self.client_indices], dtype=np.int64)

    @property
    def num_examples(self) -> int:
        """Total number of examples over all clients."""
        return int(self.sizes.sum())

    @property
    def test_sizes(self) -> np.ndarray | None:
        """Number of held-out test examples on each client (``None`` without ``test_indices``)."""
        if self.test_indices is None:
            return None
        return np.array([len(i) for i in self.test_indices], dtype=np.int64)

    def label_distribution(self) -> np.ndarray:
        """Each client's label proportions, ``[num_clients, num_classes]`` rows summing to 1.

        Example:
            >>> iid(np.array([0, 0, 1, 1]), 2, seed=0).label_distribution().sum(axis=1).tolist()
            [1.0, 1.0]
        """
        totals = self.label_counts.sum(axis=1, keepdims=True)
        return np.divide(
            self.label_counts, totals, out=np.zeros(self.label_counts.shape), where=totals > 0
        )

    @classmethod
    def from_indices(
        cls,
        client_indices: Sequence[ArrayLike],
        labels: ArrayLike,
        num_classes: int | None = None,
        scheme: str = "custom",
        test_indices: Sequence[ArrayLike] | None = None,
        client_groups: ArrayLike | None = None,
    ) -> ClientSplit:
        """Build a split from per-client index lists, checking they are valid and disjoint.

        This is how every partitioner makes its result: integer indices into ``labels`` (the
        training labels), no example on two clients. Not every example needs a client.
        ``test_indices`` (per client, held-out indices into the same labels) and
        ``client_groups`` (one int per client) are optional.

        Example:
            >>> ClientSplit.from_indices([[0, 2], [1]], np.array([0, 1, 1])).label_counts.tolist()
            [[1, 1], [0, 1]]
        """
        labels = _check_labels(labels)
        num_classes = _num_classes(labels, num_classes)
        indices = _check_client_indices(client_indices, num_examples=len(labels))
        counts = np.stack([np.bincount(labels[i], minlength=num_classes) for i in indices]).astype(
            np.int64
        )
        if test_indices is not None:  # checked here against the labels' length, too
            test_indices = _check_test_indices(test_indices, indices, len(labels))
        return cls(tuple(indices), num_classes, counts, scheme, test_indices, client_groups)

    def label_entropy(self) -> np.ndarray:
        """Shannon entropy (bits) of each client's label distribution: 0 = one class only.

        Example:
            >>> ClientSplit.from_indices([[0, 1], [2, 3]], np.array([0, 1, 1, 1])).label_entropy().tolist()
            [1.0, 0.0]
        """
        p = self.label_distribution()
        logs = np.log2(p, out=np.zeros_like(p), where=p > 0)
        return -(p * logs).sum(axis=1) + 0.0

    def heterogeneity(self) -> float:
        """Mean total-variation distance between each client's label distribution and the global one.

        ``H = (1/N) Σ_k ½ Σ_c |p_k(c) − p(c)|`` with ``p`` the label distribution of all the
        split's examples, clients weighted equally (empty clients skipped). ``H = 0``: every client
        looks like the whole; ``H → 1 − 1/C`` for one class per client on balanced data. Comparable
        across schemes and numbers of clients.

        Example:
            >>> labels = np.array([0, 0, 1, 1])
            >>> ClientSplit.from_indices([[0, 2], [1, 3]], labels).heterogeneity()
            0.0
            >>> ClientSplit.from_indices([[0, 1], [2, 3]], labels).heterogeneity()
            0.5
        """
        counts = self.label_counts[self.sizes > 0]
        if len(counts) == 0:  # no examples at all: nothing differs
            return 0.0
        overall = counts.sum(axis=0) / counts.sum()
        shares = counts / counts.sum(axis=1, keepdims=True)
        return float(np.mean(0.5 * np.abs(shares - overall).sum(axis=1)))

    def subset(self, clients) -> ClientSplit:
        """The split restricted to ``clients`` (in that order), e.g. one task's clients.

        Their training and test indices, label counts and groups are kept as they are.

        Example:
            >>> split = iid(np.array([0, 1, 0, 1, 1, 0]), num_clients=3, seed=0)
            >>> split.subset([2, 0]).sizes.tolist()
            [2, 2]
        """
        keep = np.asarray(clients, dtype=np.int64).reshape(-1)
        if len(keep) == 0 or keep.min() < 0 or keep.max() >= self.num_clients:
            raise ValueError(
                f"clients must be a non-empty list of ids in [0, {self.num_clients - 1}], got "
                f"{keep.tolist()}"
            )
        return ClientSplit(
            tuple(self.client_indices[k] for k in keep),
            self.num_classes,
            self.label_counts[keep],
            self.scheme,
            None if self.test_indices is None else tuple(self.test_indices[k] for k in keep),
            None if self.client_groups is None else self.client_groups[keep],
        )

    def to_dict(self) -> dict:
        """A JSON-friendly dict (plain ints and lists of ints), e.g. to save beside a history.

        ``test_indices`` and ``client_groups`` appear only when they are set.

        Example:
            >>> ClientSplit.from_indices([[0, 2], [1]], np.array([0, 1, 1])).to_dict()
            {'scheme': 'custom', 'num_classes': 2,
             'client_indices': [[0, 2], [1]], 'label_counts': [[1, 1], [0, 1]]}
        """
        values = {
            "scheme": self.scheme,
            "num_classes": self.num_classes,
            "client_indices": [i.tolist() for i in self.client_indices],
            "label_counts": self.label_counts.tolist(),
        }
        if self.test_indices is not None:
            values["test_indices"] = [i.tolist() for i in self.test_indices]
        if self.client_groups is not None:
            values["client_groups"] = self.client_groups.tolist()
        return values

    @classmethod
    def from_dict(cls, values: dict) -> ClientSplit:
        """Inverse of :meth:`to_dict`, checking the indices are disjoint and match the counts.

        Dicts without ``test_indices`` or ``client_groups`` (older files) load with them ``None``.

        Example:
            >>> split = iid(np.array([0, 1, 1, 0, 1]), num_clients=2, seed=0)
            >>> ClientSplit.from_dict(split.to_dict()) == split
            True
        """
        keys = {"scheme", "num_classes", "client_indices", "label_counts"}
        if not isinstance(values, dict) or not keys <= set(values):
            raise ValueError(f"ClientSplit.from_dict needs a dict with the keys {sorted(keys)}")
        num_classes = check_int("num_classes", values["num_classes"], low=1)
        indices = _check_client_indices(values["client_indices"], num_examples=None)
        counts = check_array("label_counts", values["label_counts"], ndim=2, dtype_kind="iu")
        sizes = [len(i) for i in indices]
        shape_ok = counts.shape == (len(indices), num_classes)
        if not shape_ok or (counts < 0).any() or counts.sum(axis=1).tolist() != sizes:
            raise ValueError(
                f"label_counts must have shape ({len(indices)}, {num_classes}), non-negative "
                f"rows summing to the client sizes {sizes}, got {counts.tolist()}"
            )
        return cls(
            tuple(indices),
            num_classes,
            counts.astype(np.int64),
            str(values["scheme"]),
            values.get("test_indices"),
            values.get("client_groups"),
        )

    def __repr__(self) -> str:
        extra = ""
        if self.test_indices is not None:
            extra += f", num_test={int(self.test_sizes.sum())}"
        if self.client_groups is not None:
            extra += f", num_groups={len(np.unique(self.client_groups))}"
        return (
            f"ClientSplit(scheme={self.scheme!r}, num_clients={self.num_clients}, "
            f"num_examples={self.num_examples}, num_classes={self.num_classes}{extra})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ClientSplit):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # mutable arrays inside


def _check_client_indices(
    client_indices: Sequence[ArrayLike], num_examples: int | None, name: str = "client_indices"
) -> list[np.ndarray]:
    """Each client's indices as a sorted int64 array; integers in range, no example twice."""
    wrong = TypeError(
        f"{name} must be a list with one array of indices per client, "
        f"got {type(client_indices).__name__}"
    )
    if isinstance(client_indices, str | bytes | dict):
        raise wrong
    try:
        client_indices = list(client_indices)
    except TypeError:  # not iterable: a number, None, ...
        raise wrong from None
    if len(client_indices) == 0:
        raise ValueError(f"{name} must hold at least one client")
    highest = "inf" if num_examples is None else num_examples - 1
    indices = []
    for k, raw in enumerate(client_indices):
        array = check_array(f"{name}[{k}]", raw)
        if array.ndim != 1:
            raise ValueError(
                f"{name}[{k}] must be a flat list of indices (one list per client), "
                f"got shape {array.shape}"
            )
        if array.size and array.dtype.kind not in "iu":
            raise TypeError(f"{name}[{k}] must hold integers, got {array.dtype}")
        array = np.sort(array.astype(np.int64))
        if array.size and (
            array[0] < 0 or (num_examples is not None and array[-1] >= num_examples)
        ):
            raise ValueError(f"{name}[{k}] has indices outside [0, {highest}]")
        indices.append(array)
    everything = np.concatenate(indices)
    if len(np.unique(everything)) != len(everything):
        raise ValueError(f"{name} must be disjoint: an example is given to two clients (or twice)")
    return indices


def _check_test_indices(
    test_indices: Sequence[ArrayLike],
    client_indices: Sequence[np.ndarray],
    num_examples: int | None,
) -> tuple[np.ndarray, ...]:
    """Held-out indices: one sorted int64 array per client, disjoint, none used for training."""
    if isinstance(test_indices, np.ndarray) and test_indices.dtype != object:
        test_indices = list(test_indices)
    held_out = _check_client_indices(test_indices, num_examples, name="test_indices")
    if len(held_out) != len(client_indices):
        raise ValueError(
            f"test_indices must hold one array per client ({len(client_indices)}), "
            f"got {len(held_out)}"
        )
    training = np.concatenate([np.asarray(i, np.int64) for i in client_indices])
    both = np.intersect1d(np.concatenate(held_out), training)
    if len(both):
        raise ValueError(
            f"test_indices must be disjoint from every client's client_indices: "
            f"{len(both)} example(s) are in both, e.g. index {int(both[0])}"
        )
    return tuple(held_out)


def _check_client_groups(client_groups: ArrayLike, num_clients: int) -> np.ndarray:
    """One non-negative int per client, as int64."""
    groups = check_array("client_groups", client_groups, ndim=1)
    if groups.size and groups.dtype.kind not in "iu":
        raise TypeError(f"client_groups must hold integers, got {groups.dtype}")
    if len(groups) != num_clients:
        raise ValueError(
            f"client_groups must hold one int per client ({num_clients}), got {len(groups)}"
        )
    if groups.size and groups.min() < 0:
        raise ValueError(f"client_groups must be non-negative, got {groups.tolist()}")
    return groups.astype(np.int64)


def _check_labels(labels: ArrayLike) -> np.ndarray:
    """Labels as a non-empty 1-D int64 array of class ids >= 0."""
    labels = check_array("labels", labels, ndim=1, dtype_kind="iu")
    if len(labels) == 0:
        raise ValueError("labels must not be empty")
    if labels.min() < 0:
        raise ValueError("labels must be non-negative class ids")
    return labels.astype(np.int64)


def _num_classes(labels: np.ndarray, num_classes: int | None) -> int:
    """``num_classes`` checked against the labels, or ``max(labels) + 1`` when not given."""
    if num_classes is None:
        return int(labels.max()) + 1
    return check_int("num_classes", num_classes, low=int(labels.max()) + 1)


def iid(
    labels: ArrayLike, num_clients: int, seed: int = 0, num_classes: int | None = None
) -> ClientSplit:
    """Shuffle the examples and deal them into ``num_clients`` near-equal parts (sizes differ by ≤ 1).

    Example:
        >>> iid(np.arange(10) % 2, num_clients=3, seed=0).sizes.tolist()
        [4, 3, 3]
    """
    labels = _check_labels(labels)
    num_clients = check_int("num_clients", num_clients, low=1, high=len(labels))
    seed = check_int("seed", seed, low=0)
    order = np.random.default_rng(seed).permutation(len(labels))
    return ClientSplit.from_indices(
        np.array_split(order, num_clients), labels, num_classes, scheme="iid"
    )


def natural(
    client_ids: ArrayLike, labels: ArrayLike, num_classes: int | None = None
) -> ClientSplit:
    """One client per distinct id in ``client_ids`` (e.g. Synthetic(α, β)'s devices), in id order.

    Example:
        >>> natural(np.array([7, 3, 7]), np.array([0, 1, 1])).client_indices[0].tolist()
        [1]
    """
    labels = _check_labels(labels)
    ids = check_array("client_ids", client_ids, ndim=1, dtype_kind="iu")
    if len(ids) != len(labels):
        raise ValueError(
            f"client_ids and labels must have the same length, got {len(ids)} and {len(labels)}"
        )
    groups = [np.flatnonzero(ids == k) for k in np.unique(ids)]
    return ClientSplit.from_indices(groups, labels, num_classes, scheme="natural")


def _seeded(seed: int) -> np.random.Generator:
    """The one random generator a partitioner uses, from a checked ``seed``."""
    return np.random.default_rng(check_int("seed", seed, low=0))


def dirichlet(
    labels: ArrayLike,
    num_clients: int,
    alpha: float,
    min_size: int = 10,
    seed: int = 0,
    max_tries: int = 100,
) -> ClientSplit:
    """Label skew: each class is shared among the clients in proportions drawn from Dir(α).

    Small α (0.1) gives each client a few dominant classes; large α (100) approaches IID. Draws
    are repeated (up to ``max_tries``) until every client holds at least ``min_size`` examples.
    This is the per-class construction of Yurochkin et al. (2019) and Wang et al. (2020, FedMA),
    which makes client sizes unequal too; Hsu et al. (2019) instead draw each client's class mix
    ``q_k ~ Dir(α·p)`` (``p`` the overall class shares) and fill the client in those proportions.

    Example:
        >>> split = dirichlet(np.arange(1000) % 10, num_clients=5, alpha=0.5, seed=0)
        >>> bool(split.sizes.min() >= 10)
        True
    """
    labels = _check_labels(labels)
    num_clients = check_int("num_clients", num_clients, low=1, high=len(labels))
    alpha = check_float("alpha", alpha, low=0.0, low_inclusive=False)
    min_size = check_int("min_size", min_size, low=0, high=len(labels) // num_clients)
    max_tries = check_int("max_tries", max_tries, low=1)
    rng = _seeded(seed)
    by_class = [rng.permutation(np.flatnonzero(labels == c)) for c in range(int(labels.max()) + 1)]
    for _ in range(max_tries):
        parts: list[list[np.ndarray]] = [[] for _ in range(num_clients)]
        for members in by_class:
            shares = rng.dirichlet(np.full(num_clients, alpha))
            cuts = (np.cumsum(shares)[:-1] * len(members)).astype(int)
            for k, chunk in enumerate(np.split(members, cuts)):
                parts[k].append(chunk)
        indices = [np.concatenate(p) for p in parts]
        if min(len(i) for i in indices) >= min_size:
            return ClientSplit.from_indices(indices, labels, scheme=f"dirichlet(α={alpha:g})")
    raise ValueError(
        f"dirichlet: could not give every client min_size={min_size} examples in {max_tries} draws "
        f"with alpha={alpha:g}; lower min_size, raise alpha or use fewer clients"
    )


def shards(
    labels: ArrayLike, num_clients: int, shards_per_client: int = 2, seed: int = 0
) -> ClientSplit:
    """The FedAvg paper's pathological non-IID split: sort by label, cut equal shards, deal them out.

    With ``shards_per_client=2`` most clients see only two digits. Shards differ in size by at
    most one example when the data does not divide evenly.

    Example:
        >>> shards(np.repeat(np.arange(4), 5), num_clients=2, shards_per_client=2, seed=0).label_counts.tolist()
        [[5, 0, 5, 0], [0, 5, 0, 5]]
    """
    labels = _check_labels(labels)
    num_clients = check_int("num_clients", num_clients, low=1, high=len(labels))
    shards_per_client = check_int(
        "shards_per_client", shards_per_client, low=1, high=len(labels) // num_clients
    )
    rng = _seeded(seed)
    order = np.argsort(labels, kind="stable")
    pieces = np.array_split(order, num_clients * shards_per_client)
    dealt = rng.permutation(len(pieces)).reshape(num_clients, shards_per_client)
    indices = [np.concatenate([pieces[s] for s in row]) for row in dealt]
    return ClientSplit.from_indices(indices, labels, scheme=f"shards({shards_per_client}/client)")


def label_limit(
    labels: ArrayLike, num_clients: int, classes_per_client: int, seed: int = 0
) -> ClientSplit:
    """Each client holds exactly ``classes_per_client`` classes ("k classes per client").

    Classes are dealt round-robin over a seeded class order, so every class is used when
    ``num_clients · k ≥ num_classes``; each class's examples are shared equally among its holders.

    Example:
        >>> split = label_limit(np.arange(100) % 10, num_clients=5, classes_per_client=2, seed=0)
        >>> (split.label_counts > 0).sum(axis=1).tolist()
        [2, 2, 2, 2, 2]
    """
    labels = _check_labels(labels)
    num_classes = int(labels.max()) + 1
    present = np.unique(labels)
    num_clients = check_int("num_clients", num_clients, low=1, high=len(labels))
    k = check_int("classes_per_client", classes_per_client, low=1, high=len(present))
    rng = _seeded(seed)
    order = rng.permutation(present)
    holders: dict[int, list[int]] = {int(c): [] for c in present}
    for client in range(num_clients):
        for j in range(k):
            holders[int(order[(client * k + j) % len(order)])].append(client)
    parts: list[list[np.ndarray]] = [[] for _ in range(num_clients)]
    for c, clients in holders.items():
        members = rng.permutation(np.flatnonzero(labels == c))
        if clients and len(members) < len(clients):
            raise ValueError(
                f"label_limit: class {c} has {len(members)} examples for {len(clients)} clients; "
                "use fewer clients or fewer classes_per_client"
            )
        for client, chunk in zip(
            clients, np.array_split(members, max(len(clients), 1)), strict=False
        ):
            parts[client].append(chunk)
    indices = [np.concatenate(p) for p in parts]
    return ClientSplit.from_indices(indices, labels, num_classes, scheme=f"label_limit(k={k})")


def quantity_skew(
    labels: ArrayLike, num_clients: int, sigma: float = 1.0, min_size: int = 1, seed: int = 0
) -> ClientSplit:
    """Unequal client sizes, IID labels: sizes ∝ lognormal(0, σ) on top of ``min_size`` each.

    ``sigma=0`` gives equal sizes; ``sigma=2`` a few large clients and many small ones.

    Example:
        >>> quantity_skew(np.arange(100) % 10, num_clients=4, sigma=0.0, seed=0).sizes.tolist()
        [25, 25, 25, 25]
    """
    labels = _check_labels(labels)
    num_clients = check_int("num_clients", num_clients, low=1, high=len(labels))
    sigma = check_float("sigma", sigma, low=0.0)
    min_size = check_int("min_size", min_size, low=0, high=len(labels) // num_clients)
    rng = _seeded(seed)
    weights = rng.lognormal(0.0, sigma, num_clients)
    spare = len(labels) - min_size * num_clients
    extra = np.floor(weights / weights.sum() * spare).astype(int)
    extra[np.argsort(-weights)[: spare - extra.sum()]] += 1  # hand out the rounding remainder
    cuts = np.cumsum(min_size + extra)[:-1]
    indices = np.split(rng.permutation(len(labels)), cuts)
    return ClientSplit.from_indices(indices, labels, scheme=f"quantity_skew(σ={sigma:g})")


def mixed(labels: ArrayLike, num_clients: int, similarity: float, seed: int = 0) -> ClientSplit:
    """SCAFFOLD's "s% similarity": a share ``similarity`` of the data IID, the rest sorted by label.

    ``similarity=1`` is IID; ``similarity=0`` gives each client a contiguous run of labels.

    Example:
        >>> mixed(np.repeat(np.arange(4), 5), num_clients=4, similarity=0.0, seed=0).label_counts.tolist()
        [[5, 0, 0, 0], [0, 5, 0, 0], [0, 0, 5, 0], [0, 0, 0, 5]]
    """
    labels = _check_labels(labels)
    num_clients = check_int("num_clients", num_clients, low=1, high=len(labels))
    similarity = check_float("similarity", similarity, low=0.0, high=1.0)
    rng = _seeded(seed)
    order = rng.permutation(len(labels))
    num_iid = int(round(similarity * len(labels)))
    shuffled, rest = order[:num_iid], order[num_iid:]
    rest = rest[np.argsort(labels[rest], kind="stable")]
    indices = [
        np.concatenate([a, b])
        for a, b in zip(
            np.array_split(shuffled, num_clients), np.array_split(rest, num_clients), strict=True
        )
    ]
    return ClientSplit.from_indices(indices, labels, scheme=f"mixed(s={similarity:g})")


def _rotate(images: np.ndarray, degrees: float) -> np.ndarray:
    """Rotate ``[n, H, W, C]`` images about their centre (bilinear, zero outside)."""
    n, height, width, _ = images.shape
    theta = np.deg2rad(degrees)
    rows, cols = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    cy, cx = (height - 1) / 2, (width - 1) / 2
    # where each output pixel comes from: the inverse rotation of its position
    src_y = cy + (rows - cy) * np.cos(theta) - (cols - cx) * np.sin(theta)
    src_x = cx + (rows - cy) * np.sin(theta) + (cols - cx) * np.cos(theta)
    y0, x0 = np.floor(src_y).astype(int), np.floor(src_x).astype(int)
    out = np.zeros_like(images)
    for dy in (0, 1):
        for dx in (0, 1):
            y, x = y0 + dy, x0 + dx
            weight = (1 - np.abs(src_y - y)) * (1 - np.abs(src_x - x))
            inside = (y >= 0) & (y < height) & (x >= 0) & (x < width) & (weight > 0)
            out[:, inside] += weight[inside][None, :, None] * images[:, y[inside], x[inside]]
    return out


def feature_skew(
    dataset: Dataset,
    num_clients: int,
    max_rotation: float = 45.0,
    max_brightness: float = 0.3,
    noise: float = 0.05,
    seed: int = 0,
) -> tuple[Dataset, ClientSplit]:
    """Same task, different devices: labels IID, each client's *inputs* transformed its own way.

    Client k's images are rotated by an angle spread evenly over ``[-max_rotation, max_rotation]``
    degrees, scaled in brightness by a factor in ``[1 - max_brightness, 1 + max_brightness]``, and
    get Gaussian pixel noise of std ``noise``; values are clipped to [0, 1]. The test set is left
    as it is. Returns the transformed dataset and its IID :class:`ClientSplit`.

    Example:
        >>> skewed, split = feature_skew(load_digits(), num_clients=5)  # doctest: +SKIP
    """
    if getattr(dataset, "image_shape", None) is None:
        raise ValueError("feature_skew needs a dataset of images (dataset.image_shape must be set)")
    num_clients = check_int("num_clients", num_clients, low=1, high=dataset.num_train)
    max_rotation = check_float("max_rotation", max_rotation, low=0.0, high=180.0)
    max_brightness = check_float(
        "max_brightness", max_brightness, low=0.0, high=1.0, high_inclusive=False
    )
    noise = check_float("noise", noise, low=0.0)
    split = iid(dataset.y_train, num_clients, seed=seed)
    rng = _seeded(seed)
    angles = (
        np.linspace(-max_rotation, max_rotation, num_clients) if num_clients > 1 else np.zeros(1)
    )
    brightness = 1 + rng.uniform(-max_brightness, max_brightness, num_clients)
    x = np.array(dataset.x_train, dtype=np.float32, copy=True)
    for k, own in enumerate(split.client_indices):
        images = x[own].reshape(len(own), *dataset.image_shape)
        images = _rotate(images, angles[k]) * brightness[k] + rng.normal(0, noise, images.shape)
        x[own] = np.clip(images, 0, 1).reshape(len(own), *x.shape[1:])
    skewed = replace(dataset, name=f"{dataset.name}+feature_skew", x_train=x)
    scheme = f"feature_skew(±{max_rotation:g}°)"
    return skewed, ClientSplit(split.client_indices, split.num_classes, split.label_counts, scheme)


def hold_out(
    split: ClientSplit, labels: ArrayLike, test_fraction: float = 0.2, seed: int = 0
) -> ClientSplit:
    """Give each client its own test set, drawn at random from its own examples.

    A client with ``n`` examples keeps ``n - m`` for training and moves ``m = round(test_fraction
    · n)`` (Python's ``round``) into ``test_indices``, with at least one test example when
    ``n ≥ 2`` and never fewer than one training example (a client with one example keeps it).
    ``labels`` are the training labels the split was made from: ``label_counts`` are recounted
    for what stays in training. ``scheme``, ``num_classes`` and ``client_groups`` are kept.
    Personalised FL evaluates each client on these: data from the client's own distribution.

    Example:
        >>> split = iid(np.arange(20) % 2, num_clients=2, seed=0)
        >>> held = hold_out(split, np.arange(20) % 2, test_fraction=0.2, seed=0)
        >>> held.sizes.tolist(), held.test_sizes.tolist()
        ([8, 8], [2, 2])
    """
    if not isinstance(split, ClientSplit):
        raise TypeError(f"split must be a fedlab ClientSplit, got {type(split).__name__}")
    if split.test_indices is not None:
        raise ValueError("hold_out: split already has test_indices; hold out from the original")
    labels = _check_labels(labels)
    test_fraction = check_float(
        "test_fraction", test_fraction, low=0.0, high=1.0, low_inclusive=False, high_inclusive=False
    )
    rng = _seeded(seed)
    used = np.concatenate(split.client_indices)
    if used.size and used.max() >= len(labels):
        raise ValueError(
            f"hold_out: split has indices up to {int(used.max())} but labels has only "
            f"{len(labels)} entries; pass the training labels the split was made from"
        )
    counts = [np.bincount(labels[i], minlength=split.num_classes) for i in split.client_indices]
    if split.label_counts.shape != (split.num_clients, len(counts[0])) or not np.array_equal(
        np.stack(counts), split.label_counts
    ):
        raise ValueError(
            "hold_out: labels do not match split.label_counts; pass the training labels the "
            "split was made from"
        )
    train, test = [], []
    for indices in split.client_indices:
        n = len(indices)
        m = min(max(round(test_fraction * n), 1), n - 1) if n >= 2 else 0
        chosen = rng.permutation(n)[:m]
        keep = np.ones(n, dtype=bool)
        keep[chosen] = False
        train.append(indices[keep])
        test.append(np.sort(indices[chosen]))
    return ClientSplit.from_indices(
        train,
        labels,
        split.num_classes,
        scheme=split.scheme,
        test_indices=test,
        client_groups=split.client_groups,
    )


def _rotate_exact(images: np.ndarray, degrees: float) -> np.ndarray:
    """Rotate ``[n, H, W, C]`` images like :func:`_rotate`: exactly (np.rot90) for square images
    and multiples of 90°, else bilinearly. Positive angles turn clockwise as ``imshow`` shows."""
    quarter_turns, rest = divmod(degrees, 90.0)
    if rest == 0 and images.shape[1] == images.shape[2]:
        return np.rot90(images, k=-int(quarter_turns), axes=(1, 2))
    return _rotate(images, degrees)


def rotated_groups(
    dataset: Dataset, num_clients: int, num_groups: int = 4, seed: int = 0
) -> tuple[Dataset, ClientSplit]:
    """Planted groups of clients for clustered FL (IFCA): same labels, each group's images turned.

    Labels are split IID; client ``k`` is in group ``k % num_groups`` (balanced groups) and every
    one of its images is rotated by ``g · 360 / num_groups`` degrees for group ``g``, clockwise
    as ``imshow`` shows it: with :func:`np.rot90` (exactly) when the angle is a multiple of 90
    and the image square, else bilinearly. Test example ``i`` is rotated as group
    ``i % num_groups``. Returns the rotated dataset and an IID :class:`ClientSplit` whose
    ``client_groups`` hold each client's group.

    Example:
        >>> from fedlab.data import load_digits
        >>> rotated, split = rotated_groups(load_digits(), num_clients=8, num_groups=4)
        >>> rotated.name, split.scheme, split.client_groups.tolist()
        ('digits+rotated(4)', 'rotated(4 groups)', [0, 1, 2, 3, 0, 1, 2, 3])
    """
    image_shape = getattr(dataset, "image_shape", None)
    if image_shape is None:
        raise ValueError(
            "rotated_groups needs a dataset of images (dataset.image_shape must be set)"
        )
    num_clients = check_int("num_clients", num_clients, low=1, high=dataset.num_train)
    num_groups = check_int("num_groups", num_groups, low=1, high=num_clients)
    split = iid(dataset.y_train, num_clients, seed=seed, num_classes=dataset.num_classes)
    groups = np.arange(num_clients) % num_groups
    shape = tuple(image_shape) if len(image_shape) == 3 else (*image_shape, 1)

    def turned(x: np.ndarray, rows: np.ndarray, group: int) -> np.ndarray:
        images = x[rows].reshape(len(rows), *shape)
        return _rotate_exact(images, group * 360.0 / num_groups).reshape(len(rows), *x.shape[1:])

    x_train = np.array(dataset.x_train, copy=True)
    for k, own in enumerate(split.client_indices):
        x_train[own] = turned(dataset.x_train, own, int(groups[k]))
    x_test = np.array(dataset.x_test, copy=True)
    test_groups = np.arange(dataset.num_test) % num_groups
    for g in range(num_groups):
        rows = np.flatnonzero(test_groups == g)
        x_test[rows] = turned(dataset.x_test, rows, g)
    rotated = replace(
        dataset, name=f"{dataset.name}+rotated({num_groups})", x_train=x_train, x_test=x_test
    )
    return rotated, replace(split, scheme=f"rotated({num_groups} groups)", client_groups=groups)


PARTITIONERS = {
    "iid": iid,
    "dirichlet": dirichlet,
    "shards": shards,
    "label_limit": label_limit,
    "quantity_skew": quantity_skew,
    "mixed": mixed,
}
"""Partitioners that take ``(labels, num_clients, ..., seed)``; ``natural``, ``feature_skew``,
``rotated_groups`` and ``hold_out`` need more than labels and are called directly."""
