"""Datasets, beyond tests/test_datasets.py: Synthetic(α, β) against its definition, stricter MNIST
files, and every bad argument."""

import dataclasses

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from fedlab import data


def client_sizes(dataset, which="train"):
    ids = dataset.client_ids if which == "train" else dataset.test_client_ids
    return np.bincount(ids, minlength=int(dataset.client_ids.max()) + 1)


# ---------------------------------------------------------------- digits


def test_digits_labels_images_and_summary():
    digits = data.load_digits()
    assert digits.name == "digits" and digits.image_shape == (8, 8, 1)
    assert digits.y_train.min() == 0 and digits.y_train.max() == 9
    assert digits.num_train + digits.num_test == 1797
    assert digits.client_ids is None and digits.test_client_ids is None
    images = digits.as_images()
    np.testing.assert_array_equal(images.x_train.reshape(digits.num_train, -1), digits.x_train)
    assert digits.x_train.shape == (1437, 64)  # as_images made a copy, the original is as it was
    assert repr(digits) == f"Dataset({digits.summary()})"
    with pytest.raises(dataclasses.FrozenInstanceError):
        digits.name = "other"


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"test_size": "0.2"}, TypeError),
        ({"test_size": float("nan")}, ValueError),
        ({"seed": -1}, ValueError),
        ({"seed": 1.5}, TypeError),
        ({"seed": True}, TypeError),
    ],
)
def test_digits_rejects_bad_arguments(kwargs, error):
    name = next(iter(kwargs))
    with pytest.raises(error, match=name):
        data.load_digits(**kwargs)


# ---------------------------------------------------------------- Synthetic(α, β)


def test_synthetic_client_ids_sizes_and_the_90_10_split():
    dataset = data.synthetic(0.5, 0.5, num_clients=12, num_features=20, num_classes=5, seed=1)
    assert dataset.x_train.dtype == np.float32 and dataset.y_train.dtype == np.int32
    assert dataset.input_shape == (20,) and dataset.num_classes == 5
    assert 0 <= dataset.y_train.min() and dataset.y_test.max() < 5
    assert dataset.image_shape is None and dataset.name == "synthetic(0.5,0.5)"
    # examples are stored client by client: ids are sorted and every client appears
    assert (np.diff(dataset.client_ids) >= 0).all() and (
        np.diff(dataset.test_client_ids) >= 0
    ).all()
    train, test = client_sizes(dataset), client_sizes(dataset, "test")
    assert len(train) == len(test) == 12
    total = train + test
    assert (total >= 50).all() and (total <= 2000).all()
    np.testing.assert_array_equal(train, total * 9 // 10)  # int(0.9 n), as the reference code
    assert (test >= 1).all()
    assert train.sum() == dataset.num_train and test.sum() == dataset.num_test


def test_synthetic_size_arguments():
    small = data.synthetic(0, 0, num_clients=6, min_size=2, max_size=3, seed=0)
    assert set((client_sizes(small) + client_sizes(small, "test")).tolist()) <= {2, 3}
    assert (client_sizes(small, "test") == 1).all()  # even a 2-example client has a test example
    capped = data.synthetic(0, 0, num_clients=4, size_mean=50.0, max_size=100, seed=0)
    assert (client_sizes(capped) + client_sizes(capped, "test") == 100).all()  # no overflow


def test_synthetic_alpha_leaves_the_data_unchanged():
    """u_k adds the same number to every logit, so the argmax (the label) does not move."""
    a = data.synthetic(0.0, 0.5, num_clients=10, seed=0)
    b = data.synthetic(5.0, 0.5, num_clients=10, seed=0)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    assert np.mean(a.y_train == b.y_train) > 0.999  # equal but for floating-point rounding
    assert a.name != b.name


def test_synthetic_beta_moves_the_clients_inputs_apart():
    def spread_of_client_means(beta):
        dataset = data.synthetic(0.0, beta, num_clients=20, seed=0)
        means = [dataset.x_train[dataset.client_ids == k].mean() for k in range(20)]
        return np.std(means)

    # per-client mean of v_k is B_k + noise of std 1/sqrt(60) ≈ 0.13, with B_k ~ N(0, β)
    assert spread_of_client_means(0.0) < 0.3
    assert spread_of_client_means(2.0) > 1.0


def test_synthetic_inputs_have_the_paper_covariance():
    dataset = data.synthetic(0, 0, num_clients=10, iid=True, seed=0)
    x = np.concatenate([dataset.x_train, dataset.x_test]).astype(np.float64)
    assert len(x) > 1500
    np.testing.assert_allclose(x.mean(axis=0), 0.0, atol=0.1)  # iid: v = 0 for everyone
    j = np.arange(1, 61)
    np.testing.assert_allclose(x.var(axis=0), j**-1.2, rtol=0.15)  # Σ_jj = j^-1.2


def test_synthetic_iid_shares_one_labelling_function():
    """A model fitted on one client labels the others well only when they share W and b."""

    def transfer_accuracy(dataset):
        biggest = np.bincount(dataset.client_ids).argmax()
        own = dataset.client_ids == biggest
        model = LogisticRegression(C=10, max_iter=1000)
        model.fit(dataset.x_train[own], dataset.y_train[own])
        return model.score(dataset.x_train[~own], dataset.y_train[~own])

    shared = data.synthetic(0, 0, num_clients=10, iid=True, seed=0)
    own_models = data.synthetic(0, 0, num_clients=10, seed=0)
    assert shared.name == "synthetic-iid"
    assert transfer_accuracy(shared) > 0.6
    assert transfer_accuracy(own_models) < 0.3


def test_synthetic_iid_ignores_alpha_and_beta():
    a = data.synthetic(0, 0, num_clients=5, iid=True, seed=2)
    b = data.synthetic(3, 3, num_clients=5, iid=True, seed=2)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.y_test, b.y_test)


def test_synthetic_seeds():
    a = data.synthetic(0.5, 0.5, num_clients=5, iid=True, seed=7)
    b = data.synthetic(0.5, 0.5, num_clients=5, iid=True, seed=7)
    c = data.synthetic(0.5, 0.5, num_clients=5, iid=True, seed=8)
    for field in ("x_train", "y_train", "x_test", "y_test", "client_ids", "test_client_ids"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert a.num_train != c.num_train or not np.array_equal(a.x_train, c.x_train)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"alpha": True}, TypeError, "alpha"),
        ({"alpha": "1"}, TypeError, "alpha"),
        ({"beta": -0.1}, ValueError, "beta"),
        ({"alpha": float("inf")}, ValueError, "alpha"),
        ({"num_clients": 2.0}, TypeError, "num_clients"),
        ({"num_features": 0}, ValueError, "num_features"),
        ({"num_classes": 0}, ValueError, r"num_classes must be an integer in \[2, inf\]"),
        ({"iid": 1}, TypeError, "iid must be True or False"),
        ({"iid": "yes"}, TypeError, "iid"),
        ({"min_size": 1}, ValueError, "min_size"),
        ({"max_size": 10}, ValueError, r"max_size must be an integer in \[50, inf\]"),
        ({"size_sigma": -1.0}, ValueError, "size_sigma"),
        ({"size_mean": float("nan")}, ValueError, "size_mean"),
        ({"seed": 0.5}, TypeError, "seed"),
    ],
)
def test_synthetic_rejects_every_bad_argument(kwargs, error, match):
    arguments = {"alpha": 0.5, "beta": 0.5, "num_clients": 3, **kwargs}
    with pytest.raises(error, match=match):
        data.synthetic(**arguments)


# ---------------------------------------------------------------- MNIST from a file


def fake_mnist(**changes):
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 256, (5, 28, 28), dtype=np.uint8),
        "y_train": np.array([0, 1, 2, 3, 9], np.uint8),
        "x_test": rng.integers(0, 256, (3, 28, 28), dtype=np.uint8),
        "y_test": np.array([5, 6, 7], np.uint8),
    }
    arrays.update(changes)
    return {key: value for key, value in arrays.items() if value is not None}


def test_load_mnist_scales_flattens_and_keeps_labels(tmp_path):
    arrays = fake_mnist()
    np.savez(tmp_path / "mnist.npz", **arrays)
    mnist = data.load_mnist(str(tmp_path / "mnist.npz"))  # a str path works too
    assert mnist.name == "mnist" and mnist.num_classes == 10 and mnist.image_shape == (28, 28, 1)
    assert mnist.x_train.dtype == np.float32 and mnist.input_shape == (784,)
    assert 0.0 <= mnist.x_train.min() and mnist.x_train.max() <= 1.0
    np.testing.assert_allclose(mnist.as_images().x_test[2, :, :, 0], arrays["x_test"][2] / 255.0)
    assert mnist.y_train.tolist() == [0, 1, 2, 3, 9]


def test_load_mnist_prefers_an_explicit_path_over_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "nowhere"))
    np.savez(tmp_path / "mine.npz", **fake_mnist())
    assert data.load_mnist(tmp_path / "mine.npz").num_test == 3


def test_load_mnist_missing_file_message(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    missing = tmp_path / "no" / "mnist.npz"
    with pytest.raises(FileNotFoundError) as caught:
        data.load_mnist(missing)
    message = str(caught.value)
    assert str(missing) in message
    assert "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz" in message
    assert "keras.datasets.mnist.load_data()" in message and "load_digits()" in message
    assert str(tmp_path / "keras" / "datasets" / "mnist.npz") in message  # where keras saves it


@pytest.mark.parametrize(
    "changes, match",
    [
        ({"x_train": None}, "'x_train' is missing"),
        ({"x_test": np.zeros((3, 784), np.uint8)}, "'x_test' must have 3 dimensions"),
        ({"y_train": np.zeros((5, 1), np.uint8)}, "'y_train' must have 1 dimensions"),
        ({"x_train": np.zeros((5, 28, 28), np.float32)}, "'x_train' must hold uint8"),
        ({"x_test": np.zeros((3, 14, 14), np.uint8)}, "'x_test' images have shape"),
        ({"y_test": np.array([1, 2], np.uint8)}, "'x_test' has 3 images but 'y_test' has 2"),
        ({"y_train": np.array([0, 1, 2, 3, 10])}, "'y_train' must hold integer labels"),
        ({"y_test": np.array([0.0, 1.0, 2.0])}, "'y_test' must hold integer labels"),
    ],
)
def test_load_mnist_rejects_a_malformed_file(tmp_path, changes, match):
    np.savez(tmp_path / "bad.npz", **fake_mnist(**changes))
    with pytest.raises(ValueError, match=match):
        data.load_mnist(tmp_path / "bad.npz")


def test_load_mnist_rejects_files_that_are_not_an_npz_archive(tmp_path):
    (tmp_path / "text.npz").write_text("not numpy")
    with pytest.raises(ValueError, match="numpy cannot read it"):
        data.load_mnist(tmp_path / "text.npz")
    np.save(tmp_path / "one.npy", np.zeros(3))
    with pytest.raises(ValueError, match="one array, not an archive"):
        data.load_mnist(tmp_path / "one.npy")
