"""Client splits: which training examples each client holds (``01_one_round_by_hand``, ``02_client_splits``).

Every partitioner is seeded and returns a :class:`ClientSplit`. This module starts with the
two basic schemes — :func:`iid` and :func:`natural` — and :meth:`ClientSplit.from_indices`, the
one door every further scheme (Dirichlet label skew, shards, ...) goes through.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fedlab.validate import check_array, check_int


@dataclass(frozen=True)
class ClientSplit:
    """Disjoint sets of training-example indices, one per client.

    Attributes:
        client_indices: per client, sorted int64 indices into the training set.
        num_classes: number of label classes.
        label_counts: ``[num_clients, num_classes]`` count of each label on each client.
        scheme: how the split was made (``"iid"``, ``"natural"``, ...).

    Example:
        >>> split = iid(np.array([0, 1, 0, 1, 1, 0]), num_clients=2, seed=0)
        >>> split.sizes.tolist(), split.label_counts.sum(axis=1).tolist()
        ([3, 3], [3, 3])
    """

    client_indices: tuple[np.ndarray, ...]
    num_classes: int
    label_counts: np.ndarray
    scheme: str

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
        client_indices: Sequence[Sequence[int]],
        labels: np.ndarray,
        num_classes: int | None = None,
        scheme: str = "custom",
    ) -> ClientSplit:
        """Build a split from per-client index lists, checking they are valid and disjoint.

        Example:
            >>> ClientSplit.from_indices([[0, 2], [1]], np.array([0, 1, 1])).label_counts.tolist()
            [[1, 1], [0, 1]]
        """
        labels = _check_labels(labels)
        num_classes = _num_classes(labels, num_classes)
        if len(client_indices) == 0:
            raise ValueError("client_indices must hold at least one client")
        indices = []
        for k, raw in enumerate(client_indices):
            array = np.asarray(raw)
            if array.size and array.dtype.kind not in "iu":
                raise TypeError(f"client_indices[{k}] must hold integers, got {array.dtype}")
            array = np.sort(array.astype(np.int64).ravel())
            if array.size and (array[0] < 0 or array[-1] >= len(labels)):
                raise ValueError(f"client_indices[{k}] has indices outside [0, {len(labels) - 1}]")
            indices.append(array)
        everything = np.concatenate(indices)
        if len(np.unique(everything)) != len(everything):
            raise ValueError(
                "client_indices must be disjoint: an example is given to two clients (or twice)"
            )
        counts = np.stack([np.bincount(labels[i], minlength=num_classes) for i in indices]).astype(
            np.int64
        )
        return cls(tuple(indices), num_classes, counts, scheme)

    def to_dict(self) -> dict:
        """A JSON-friendly dict (lists of ints)."""
        return {
            "scheme": self.scheme,
            "num_classes": self.num_classes,
            "client_indices": [i.tolist() for i in self.client_indices],
            "label_counts": self.label_counts.tolist(),
        }

    @classmethod
    def from_dict(cls, values: dict) -> ClientSplit:
        """Inverse of :meth:`to_dict`."""
        return cls(
            tuple(np.asarray(i, dtype=np.int64) for i in values["client_indices"]),
            int(values["num_classes"]),
            np.asarray(values["label_counts"], dtype=np.int64).reshape(
                -1, int(values["num_classes"])
            ),
            str(values["scheme"]),
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ClientSplit):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # mutable arrays inside


def _check_labels(labels) -> np.ndarray:
    labels = check_array("labels", labels, ndim=1, dtype_kind="iu")
    if len(labels) == 0:
        raise ValueError("labels must not be empty")
    if labels.min() < 0:
        raise ValueError("labels must be non-negative class ids")
    return labels.astype(np.int64)


def _num_classes(labels: np.ndarray, num_classes: int | None) -> int:
    if num_classes is None:
        return int(labels.max()) + 1
    return check_int("num_classes", num_classes, low=int(labels.max()) + 1)


def iid(labels, num_clients: int, seed: int = 0, num_classes: int | None = None) -> ClientSplit:
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


def natural(client_ids, labels, num_classes: int | None = None) -> ClientSplit:
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
