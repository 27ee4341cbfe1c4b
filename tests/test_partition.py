"""Client splits, beyond tests/test_client_split.py: from_indices and natural as properties, the
JSON round trip through ``json``, and every invalid-argument rule."""

import dataclasses
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedlab import data, partition
from fedlab.partition import ClientSplit

labels_strategy = st.lists(st.integers(0, 6), min_size=1, max_size=200).map(np.array)


@st.composite
def labels_and_disjoint_clients(draw):
    """Labels, and some of their indices dealt to 1-6 clients (some clients may be empty)."""
    labels = draw(labels_strategy)
    num_clients = draw(st.integers(1, 6))
    owner = draw(
        st.lists(st.integers(-1, num_clients - 1), min_size=len(labels), max_size=len(labels))
    )
    owner = np.array(owner)  # -1: the example is on no client
    clients = [np.flatnonzero(owner == k).tolist()[::-1] for k in range(num_clients)]  # unsorted
    return labels, clients


@settings(max_examples=60, deadline=None)
@given(case=labels_and_disjoint_clients())
def test_from_indices_sorts_counts_and_round_trips_through_json(case):
    labels, clients = case
    split = ClientSplit.from_indices(clients, labels, scheme="test")
    assert split.num_clients == len(clients) and split.scheme == "test"
    for k, indices in enumerate(split.client_indices):
        assert indices.dtype == np.int64 and indices.tolist() == sorted(clients[k])
        np.testing.assert_array_equal(
            split.label_counts[k], np.bincount(labels[indices], minlength=split.num_classes)
        )
    assert split.label_counts.dtype == np.int64
    assert split.label_counts.shape == (len(clients), labels.max() + 1)
    np.testing.assert_array_equal(split.sizes, [len(c) for c in clients])
    assert split.num_examples == sum(len(c) for c in clients)
    rows = split.label_distribution().sum(axis=1)
    np.testing.assert_allclose(rows, (split.sizes > 0).astype(float))  # 1, or 0 for empty clients
    again = ClientSplit.from_dict(json.loads(json.dumps(split.to_dict())))
    assert again == split and again.label_counts.dtype == np.int64


@settings(max_examples=30, deadline=None, derandomize=True)
@given(labels=st.lists(st.integers(0, 6), min_size=30, max_size=200).map(np.array), data=st.data())
def test_iid_differs_across_seeds(labels, data):
    # with n >= 30 and at least two clients there are over 10^8 ways to deal: no coincidences
    num_clients = data.draw(st.integers(2, len(labels)))
    seed = data.draw(st.integers(0, 2**31))
    assert partition.iid(labels, num_clients, seed=seed) != partition.iid(
        labels, num_clients, seed=seed + 1
    )


@settings(max_examples=60, deadline=None)
@given(
    ids=st.lists(st.integers(-5, 1000), min_size=1, max_size=120).map(np.array),
    seed=st.integers(0, 1000),
)
def test_natural_is_one_client_per_id_in_id_order(ids, seed):
    labels = np.random.default_rng(seed).integers(0, 4, len(ids))
    split = partition.natural(ids, labels)
    distinct = np.unique(ids)
    assert split.num_clients == len(distinct) and split.scheme == "natural"
    for client_id, indices in zip(distinct, split.client_indices, strict=True):
        assert indices.tolist() == np.flatnonzero(ids == client_id).tolist()
    assert split.num_examples == len(ids)


def test_natural_on_synthetic_matches_its_client_ids():
    dataset = data.synthetic(0.5, 0.5, num_clients=7, seed=0)
    split = partition.natural(dataset.client_ids, dataset.y_train, num_classes=10)
    np.testing.assert_array_equal(split.sizes, np.bincount(dataset.client_ids))
    assert split.label_counts.shape == (7, 10)


def test_num_classes_keyword():
    labels = np.array([0, 1, 1, 0])
    split = partition.iid(labels, 2, seed=0, num_classes=5)
    assert split.num_classes == 5 and split.label_counts.shape == (2, 5)
    assert split.label_counts[:, 2:].sum() == 0
    assert partition.natural([0, 0, 1, 1], labels, num_classes=3).label_counts.shape == (2, 3)
    with pytest.raises(ValueError, match=r"num_classes must be an integer in \[2, inf\]"):
        partition.iid(labels, 2, num_classes=1)
    with pytest.raises(TypeError, match="num_classes"):
        partition.iid(labels, 2, num_classes=2.0)


def test_iid_accepts_lists_and_numpy_integers():
    split = partition.iid([0, 1, 2, 0, 1], np.int64(2), seed=np.int32(3))
    assert split.sizes.tolist() == [3, 2]
    assert split == partition.iid(np.array([0, 1, 2, 0, 1], np.uint8), 2, seed=3)


def test_record_is_frozen_and_prints_briefly():
    split = partition.iid(np.arange(20) % 4, 3, seed=0)
    assert repr(split) == "ClientSplit(scheme='iid', num_clients=3, num_examples=20, num_classes=4)"
    with pytest.raises(dataclasses.FrozenInstanceError):
        split.scheme = "other"
    assert split != "iid" and split != partition.iid(np.arange(20) % 4, 3, seed=0, num_classes=5)


def test_heterogeneity_of_a_split_with_no_examples_is_zero():
    split = ClientSplit.from_indices([[], []], np.array([0, 1]))
    assert split.num_examples == 0 and split.heterogeneity() == 0.0
    assert split.label_distribution().tolist() == [[0.0, 0.0], [0.0, 0.0]]


@pytest.mark.parametrize(
    "labels, num_clients, kwargs, error, match",
    [
        (np.arange(5), 0, {}, ValueError, r"num_clients must be an integer in \[1, 5\], got 0"),
        (np.arange(5), 6, {}, ValueError, r"num_clients must be an integer in \[1, 5\], got 6"),
        (np.arange(5), -1, {}, ValueError, "num_clients"),
        (np.arange(5), True, {}, TypeError, "num_clients must be an integer, got bool"),
        (np.arange(5), "2", {}, TypeError, "num_clients"),
        (np.arange(5), None, {}, TypeError, "num_clients"),
        (np.array([True, False]), 1, {}, TypeError, "labels must have dtype kind"),
        (np.array(["a", "b"]), 1, {}, TypeError, "labels"),
        (np.array([0.0, 1.0]), 1, {}, TypeError, "labels"),
        (np.array([[0, 1], [1, 0]]), 1, {}, ValueError, "labels must have 1 dimension"),
        (np.array(3), 1, {}, ValueError, "labels must have 1 dimension"),
        ([], 1, {}, TypeError, "labels"),  # an empty list is float64 to numpy
        (np.array([], np.int64), 1, {}, ValueError, "labels must not be empty"),
        (np.array([0, -2]), 1, {}, ValueError, "non-negative"),
        (np.arange(5), 2, {"seed": -1}, ValueError, "seed"),
        (np.arange(5), 2, {"seed": 1.0}, TypeError, "seed"),
        (np.arange(5), 2, {"seed": False}, TypeError, "seed"),
    ],
)
def test_iid_rejects_every_bad_argument(labels, num_clients, kwargs, error, match):
    with pytest.raises(error, match=match):
        partition.iid(labels, num_clients, **kwargs)


@pytest.mark.parametrize(
    "client_ids, labels, error, match",
    [
        ([0, 1], [0, 1, 1], ValueError, "same length, got 2 and 3"),
        ([0.0, 1.0], [0, 1], TypeError, "client_ids"),
        (["a", "b"], [0, 1], TypeError, "client_ids"),
        ([[0, 1]], [0, 1], ValueError, "client_ids must have 1 dimension"),
        ([0, 1], [0.5, 1.0], TypeError, "labels"),
    ],
)
def test_natural_rejects_bad_arguments(client_ids, labels, error, match):
    with pytest.raises(error, match=match):
        partition.natural(client_ids, labels)


@pytest.mark.parametrize(
    "client_indices, error, match",
    [
        ([[0, 1], [1, 2]], ValueError, "disjoint"),
        ([[0, 0]], ValueError, "disjoint"),
        ([[0, 4]], ValueError, r"client_indices\[0\] has indices outside \[0, 3\]"),
        ([[0], [-1]], ValueError, r"client_indices\[1\] has indices outside"),
        ([[0.0, 1.0]], TypeError, r"client_indices\[0\] must hold integers"),
        ([[True, False]], TypeError, "must hold integers"),
        ([[[0, 1]]], ValueError, "flat list of indices"),
        ([0, 1], ValueError, "one list per client"),  # indices without the per-client lists
        ([], ValueError, "at least one client"),
        (3, TypeError, "one array of indices per client, got int"),
        ("01", TypeError, "got str"),
        ({0: [0]}, TypeError, "got dict"),
    ],
)
def test_from_indices_rejects_bad_indices(client_indices, error, match):
    with pytest.raises(error, match=match):
        ClientSplit.from_indices(client_indices, np.array([0, 1, 0, 1]))


def test_from_indices_accepts_any_sequence_of_index_arrays():
    labels = np.array([0, 1, 0, 1])
    as_lists = ClientSplit.from_indices([[2, 0], [3, 1]], labels)
    assert ClientSplit.from_indices(np.array([[0, 2], [1, 3]]), labels) == as_lists
    assert ClientSplit.from_indices((np.array([0, 2]), range(1, 4, 2)), labels) == as_lists
    assert as_lists.scheme == "custom"


@pytest.mark.parametrize(
    "change, error, match",
    [
        ({"client_indices": [[0, 1], [1]]}, ValueError, "disjoint"),
        ({"client_indices": [[0, -3], [2]]}, ValueError, "outside"),
        ({"label_counts": [[2, 0], [0, 0]]}, ValueError, "rows summing to the client sizes"),
        ({"label_counts": [[3, -1], [1, 0]]}, ValueError, "non-negative"),
        ({"label_counts": [[2, 0, 0], [1, 0, 0]]}, ValueError, r"must have shape \(2, 2\)"),
        ({"label_counts": [[1.5, 0.5], [1.0, 0.0]]}, TypeError, "label_counts"),
        ({"num_classes": 0}, ValueError, "num_classes"),
    ],
)
def test_from_dict_rejects_inconsistent_values(change, error, match):
    values = ClientSplit.from_indices([[0, 1], [2]], np.array([0, 1, 0])).to_dict()
    values.update(change)
    with pytest.raises(error, match=match):
        ClientSplit.from_dict(values)


@pytest.mark.parametrize("values", [{"scheme": "iid"}, [[0, 1], [2]], None])
def test_from_dict_needs_every_key(values):
    with pytest.raises(ValueError, match="needs a dict with the keys"):
        ClientSplit.from_dict(values)
