"""Every partitioner: a disjoint, exact, seeded cover; its own promise; every invalid argument."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fedlab import data, partition
from fedlab.partition import ClientSplit

# labels of 20-400 examples over 2-10 classes, every class present at least 10 times (so 8
# clients with 2 shards each always have an example per shard)
balanced_labels = st.tuples(st.integers(2, 10), st.integers(10, 40), st.integers(0, 2**16)).map(
    lambda t: np.random.default_rng(t[2]).permutation(np.repeat(np.arange(t[0]), t[1]))
)

SCHEMES = {
    "iid": {},
    "dirichlet": {"alpha": 0.5, "min_size": 1},
    "shards": {"shards_per_client": 2},
    "label_limit": {"classes_per_client": 2},
    "quantity_skew": {"sigma": 1.5},
    "mixed": {"similarity": 0.3},
}


def assert_exact_cover(split: ClientSplit, labels: np.ndarray) -> None:
    """Disjoint and covering every example (label_limit: every example of the classes it uses)."""
    everything = np.concatenate(split.client_indices)
    used = np.flatnonzero(np.isin(labels, np.flatnonzero(split.label_counts.sum(axis=0))))
    if not split.scheme.startswith("label_limit"):
        assert len(used) == len(labels)
    assert sorted(everything.tolist()) == used.tolist()
    assert split.sizes.sum() == len(used)
    for k, indices in enumerate(split.client_indices):
        np.testing.assert_array_equal(
            split.label_counts[k], np.bincount(labels[indices], minlength=split.num_classes)
        )


@pytest.mark.parametrize("scheme", sorted(SCHEMES))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(labels=balanced_labels, num_clients=st.integers(1, 8), seed=st.integers(0, 2**31))
def test_every_scheme_is_a_seeded_exact_cover(scheme, labels, num_clients, seed):
    make = partition.PARTITIONERS[scheme]
    split = make(labels, num_clients, seed=seed, **SCHEMES[scheme])
    assert split.num_clients == num_clients
    assert_exact_cover(split, labels)
    assert split == make(labels, num_clients, seed=seed, **SCHEMES[scheme])


@pytest.mark.parametrize(
    "scheme", ["iid", "dirichlet", "shards", "label_limit", "quantity_skew", "mixed"]
)
def test_different_seeds_give_different_splits(scheme):
    labels = np.repeat(np.arange(10), 50)
    make = partition.PARTITIONERS[scheme]
    assert make(labels, 8, seed=0, **SCHEMES[scheme]) != make(labels, 8, seed=1, **SCHEMES[scheme])


@settings(max_examples=25, deadline=None)
@given(
    labels=balanced_labels,
    num_clients=st.integers(1, 5),
    min_size=st.integers(0, 8),
    seed=st.integers(0, 1000),
)
def test_dirichlet_honours_min_size(labels, num_clients, min_size, seed):
    if min_size * num_clients > len(labels):  # impossible: rejected up front
        with pytest.raises(ValueError, match="min_size must be an integer"):
            partition.dirichlet(labels, num_clients, alpha=0.3, min_size=min_size, seed=seed)
        return
    try:
        split = partition.dirichlet(labels, num_clients, alpha=0.3, min_size=min_size, seed=seed)
    except ValueError as error:  # allowed only as the documented "could not" message
        assert "could not give every client" in str(error)
        return
    assert split.sizes.min() >= min_size


def test_dirichlet_alpha_controls_skew():
    labels = np.repeat(np.arange(10), 500)
    skew = [
        partition.dirichlet(labels, 10, alpha=a, seed=0).heterogeneity()
        for a in (0.05, 1.0, 1000.0)
    ]
    assert skew[0] > skew[1] > skew[2]
    iid_level = partition.iid(labels, 10, seed=0).heterogeneity()  # sampling noise only
    assert iid_level < 0.08 and skew[2] < iid_level + 0.02  # α → ∞ is at least as even as IID
    few = partition.dirichlet(labels, 10, alpha=0.05, seed=0)
    assert np.mean((few.label_distribution() > 0.05).sum(axis=1)) < 4  # small α: a few classes each


def test_shards_and_label_limit_restrict_classes():
    labels = np.repeat(np.arange(10), 60)
    split = partition.shards(labels, 20, shards_per_client=2, seed=0)
    assert (split.label_counts > 0).sum(axis=1).max() <= 2 * 2  # a shard can straddle two labels
    assert np.median((split.label_counts > 0).sum(axis=1)) <= 2
    limited = partition.label_limit(labels, 10, classes_per_client=3, seed=0)
    assert ((limited.label_counts > 0).sum(axis=1) == 3).all()
    assert (limited.label_counts.sum(axis=0) == 60).all()  # every class handed out


def test_quantity_skew_sigma_controls_size_spread():
    labels = np.arange(2000) % 10
    equal = partition.quantity_skew(labels, 10, sigma=0.0, seed=0)
    skewed = partition.quantity_skew(labels, 10, sigma=2.0, min_size=5, seed=0)
    assert equal.sizes.max() - equal.sizes.min() <= 1
    assert skewed.sizes.max() > 4 * skewed.sizes.min() and skewed.sizes.min() >= 5


def test_mixed_interpolates_between_sorted_and_iid():
    labels = np.repeat(np.arange(10), 500)
    h = [partition.mixed(labels, 10, similarity=s, seed=0).heterogeneity() for s in (0.0, 0.5, 1.0)]
    assert h[0] > h[1] > h[2] and h[0] > 0.85 and h[2] < 0.08


def test_feature_skew_transforms_inputs_and_keeps_labels_iid():
    digits = data.load_digits(seed=0)
    skewed, split = partition.feature_skew(digits, num_clients=4, max_rotation=90, seed=0)
    assert_exact_cover(split, digits.y_train)
    assert split.heterogeneity() < 0.1 and skewed.x_train.shape == digits.x_train.shape
    np.testing.assert_array_equal(skewed.y_train, digits.y_train)
    assert 0.0 <= skewed.x_train.min() and skewed.x_train.max() <= 1.0
    first, last = split.client_indices[0], split.client_indices[-1]
    assert not np.allclose(
        skewed.x_train[first], digits.x_train[first], atol=0.1
    )  # rotated by -90°
    again, _ = partition.feature_skew(digits, num_clients=4, max_rotation=90, seed=0)
    np.testing.assert_array_equal(again.x_train, skewed.x_train)
    # a 90° rotation of a symmetric blob keeps it; the rotation is about the centre
    blob = np.zeros((1, 8, 8, 1), np.float32)
    blob[0, 3:5, 3:5] = 1
    np.testing.assert_allclose(partition._rotate(blob, 90.0), blob, atol=1e-6)
    assert last.size > 0


def test_label_entropy_and_heterogeneity_formulas():
    labels = np.array([0, 0, 1, 1, 2, 2])
    one_class_each = ClientSplit.from_indices([[0, 1], [2, 3], [4, 5]], labels)
    assert one_class_each.label_entropy().tolist() == [0.0, 0.0, 0.0]
    assert one_class_each.heterogeneity() == pytest.approx(2 / 3)  # 1 - 1/C
    spread = ClientSplit.from_indices([[0, 2, 4], [1, 3, 5]], labels)
    np.testing.assert_allclose(spread.label_entropy(), np.log2(3))
    assert spread.heterogeneity() == pytest.approx(0.0)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda y: partition.dirichlet(y, 5, alpha=0), "alpha"),
        (lambda y: partition.dirichlet(y, 5, alpha=-1), "alpha"),
        (lambda y: partition.dirichlet(y, 101, alpha=1), "num_clients"),
        (lambda y: partition.dirichlet(y, 10, alpha=1, min_size=11), "min_size"),
        (
            lambda y: partition.dirichlet(y, 10, alpha=0.01, min_size=10, max_tries=1),
            "could not give every client",
        ),
        (lambda y: partition.shards(y, 10, shards_per_client=11), "shards_per_client"),
        (lambda y: partition.shards(y, 10, shards_per_client=0), "shards_per_client"),
        (lambda y: partition.label_limit(y, 5, classes_per_client=11), "classes_per_client"),
        (
            lambda y: partition.label_limit(y, 100, classes_per_client=10),
            "class .* has 10 examples for",
        ),
        (lambda y: partition.quantity_skew(y, 5, sigma=-1), "sigma"),
        (lambda y: partition.mixed(y, 5, similarity=1.5), "similarity"),
        (lambda y: partition.iid(y, 5, seed=-1), "seed"),
    ],
)
def test_invalid_arguments_name_the_argument(call, match):
    labels = np.repeat(np.arange(10), 10)
    with pytest.raises(ValueError, match=match):
        call(labels)


def test_feature_skew_needs_images():
    with pytest.raises(ValueError, match="image_shape"):
        partition.feature_skew(data.synthetic(0.5, 0.5, num_clients=3), num_clients=2)
