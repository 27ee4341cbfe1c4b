"""Client splits: property tests for iid and natural, validation, JSON round trip."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedlab import partition
from fedlab.partition import ClientSplit

labels_strategy = st.lists(st.integers(0, 9), min_size=1, max_size=300).map(np.array)


@settings(max_examples=60, deadline=None)
@given(labels=labels_strategy, data=st.data())
def test_iid_is_a_disjoint_cover_of_near_equal_parts(labels, data):
    num_clients = data.draw(st.integers(1, len(labels)))
    seed = data.draw(st.integers(0, 2**32 - 1))
    split = partition.iid(labels, num_clients, seed=seed)
    everything = np.concatenate(split.client_indices)
    assert sorted(everything.tolist()) == list(range(len(labels)))
    assert split.sizes.sum() == len(labels) == split.num_examples
    assert split.sizes.max() - split.sizes.min() <= 1
    for k, indices in enumerate(split.client_indices):
        np.testing.assert_array_equal(
            split.label_counts[k], np.bincount(labels[indices], minlength=split.num_classes)
        )
    assert split == partition.iid(labels, num_clients, seed=seed)


def test_iid_differs_across_seeds():
    labels = np.arange(100) % 10
    assert partition.iid(labels, 5, seed=0) != partition.iid(labels, 5, seed=1)


def test_label_distribution_rows_sum_to_one():
    split = ClientSplit.from_indices([[0, 1, 2], [], [3]], np.array([0, 0, 1, 2]))
    np.testing.assert_allclose(
        split.label_distribution(), [[2 / 3, 1 / 3, 0], [0, 0, 0], [0, 0, 1]]
    )


def test_natural_groups_by_client_id():
    split = partition.natural(np.array([5, 2, 5, 9, 2]), np.array([0, 1, 1, 0, 1]))
    assert [i.tolist() for i in split.client_indices] == [[1, 4], [0, 2], [3]]
    assert split.scheme == "natural" and split.label_counts.tolist() == [[0, 2], [1, 1], [1, 0]]


def test_to_dict_round_trip():
    split = partition.iid(np.arange(30) % 3, 4, seed=2)
    assert ClientSplit.from_dict(split.to_dict()) == split


@pytest.mark.parametrize(
    "labels, num_clients, error, match",
    [
        (np.arange(5), 0, ValueError, r"num_clients must be an integer in \[1, 5\]"),
        (np.arange(5), 6, ValueError, "num_clients"),
        (np.arange(5), True, TypeError, "num_clients"),
        (np.arange(5), 2.0, TypeError, "num_clients"),
        (np.array([0.5, 1.0]), 1, TypeError, "labels"),
        (np.zeros((2, 2), int), 1, ValueError, "labels must have 1 dimension"),
        (np.array([], int), 1, ValueError, "labels must not be empty"),
        (np.array([-1, 0]), 1, ValueError, "non-negative"),
    ],
)
def test_iid_rejects_bad_arguments(labels, num_clients, error, match):
    with pytest.raises(error, match=match):
        partition.iid(labels, num_clients)


def test_from_indices_rejects_overlap_range_and_type():
    labels = np.array([0, 1, 0, 1])
    with pytest.raises(ValueError, match="disjoint"):
        ClientSplit.from_indices([[0, 1], [1, 2]], labels)
    with pytest.raises(ValueError, match="outside"):
        ClientSplit.from_indices([[0, 4]], labels)
    with pytest.raises(TypeError, match="integers"):
        ClientSplit.from_indices([[0.5]], labels)
    with pytest.raises(ValueError, match="num_classes"):
        ClientSplit.from_indices([[0]], labels, num_classes=1)


def test_natural_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="same length"):
        partition.natural(np.array([0, 1]), np.array([0, 1, 1]))
