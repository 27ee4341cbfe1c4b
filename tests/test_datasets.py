"""Datasets: digits and Synthetic(α, β) offline, MNIST from a file the test writes."""

import numpy as np
import pytest

from fedlab import data


def test_digits_shapes_ranges_and_stratification():
    digits = data.load_digits(test_size=0.2, seed=0)
    assert digits.x_train.shape == (1437, 64) and digits.x_test.shape == (360, 64)
    assert digits.x_train.dtype == np.float32 and digits.y_train.dtype == np.int32
    assert 0.0 <= digits.x_train.min() and digits.x_train.max() <= 1.0
    train_share = np.bincount(digits.y_train) / digits.num_train
    test_share = np.bincount(digits.y_test) / digits.num_test
    np.testing.assert_allclose(train_share, test_share, atol=0.01)
    assert digits.as_images().x_test.shape == (360, 8, 8, 1)
    assert "1437 train" in digits.summary()


def test_digits_seeded():
    a, b, c = data.load_digits(seed=1), data.load_digits(seed=1), data.load_digits(seed=2)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    assert not np.array_equal(a.y_train, c.y_train)


@pytest.mark.parametrize("test_size", [0, 1, -0.1, 1.5])
def test_digits_rejects_bad_test_size(test_size):
    with pytest.raises(ValueError, match="test_size"):
        data.load_digits(test_size=test_size)


def test_synthetic_is_seeded_and_split_per_client():
    a = data.synthetic(1.0, 1.0, num_clients=8, seed=3)
    b = data.synthetic(1.0, 1.0, num_clients=8, seed=3)
    c = data.synthetic(1.0, 1.0, num_clients=8, seed=4)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    assert not np.array_equal(a.x_train[:10], c.x_train[:10])
    assert a.x_train.shape[1] == 60 and a.num_classes == 10 and a.y_train.max() < 10
    train_sizes = np.bincount(a.client_ids, minlength=8)
    test_sizes = np.bincount(a.test_client_ids, minlength=8)
    assert (train_sizes >= 45).all()
    np.testing.assert_allclose(test_sizes / (train_sizes + test_sizes), 0.1, atol=0.02)


def test_synthetic_alpha_beta_make_clients_differ():
    """Heterogeneous clients have more different label distributions than the IID variant."""

    def label_spread(dataset):
        counts = np.stack(
            [np.bincount(dataset.y_train[dataset.client_ids == k], minlength=10) for k in range(20)]
        )
        shares = counts / counts.sum(axis=1, keepdims=True)
        return np.abs(shares - shares.mean(axis=0)).sum(axis=1).mean()

    iid = data.synthetic(0, 0, num_clients=20, iid=True, seed=0)
    skewed = data.synthetic(1.0, 1.0, num_clients=20, seed=0)
    assert iid.name == "synthetic-iid" and skewed.name == "synthetic(1,1)"
    assert label_spread(skewed) > 2 * label_spread(iid)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"alpha": -1}, "alpha"),
        ({"beta": float("nan")}, "beta"),
        ({"num_clients": 0}, "num_clients"),
        ({"num_classes": 1}, "num_classes"),
        ({"seed": -2}, "seed"),
    ],
)
def test_synthetic_rejects_bad_arguments(kwargs, match):
    arguments = {"alpha": 0.5, "beta": 0.5, **kwargs}
    with pytest.raises(ValueError, match=match):
        data.synthetic(**arguments)


def write_fake_mnist(path, drop=None):
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 256, (5, 28, 28), dtype=np.uint8),
        "y_train": np.array([0, 1, 2, 3, 4], np.uint8),
        "x_test": rng.integers(0, 256, (3, 28, 28), dtype=np.uint8),
        "y_test": np.array([5, 6, 7], np.uint8),
    }
    arrays.pop(drop, None)
    np.savez(path, **arrays)
    return arrays


def test_load_mnist_from_path(tmp_path):
    arrays = write_fake_mnist(tmp_path / "mnist.npz")
    mnist = data.load_mnist(tmp_path / "mnist.npz")
    assert mnist.x_train.shape == (5, 784) and mnist.x_test.shape == (3, 784)
    np.testing.assert_allclose(mnist.x_train[1], arrays["x_train"][1].ravel() / 255.0, rtol=1e-6)
    assert mnist.y_test.tolist() == [5, 6, 7] and mnist.y_test.dtype == np.int32
    assert mnist.as_images().x_train.shape == (5, 28, 28, 1)


def test_load_mnist_from_the_keras_cache(tmp_path, monkeypatch):
    (tmp_path / "datasets").mkdir()
    write_fake_mnist(tmp_path / "datasets" / "mnist.npz")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    assert data.load_mnist().num_train == 5


def test_load_mnist_missing_file_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="load_digits") as caught:
        data.load_mnist()
    assert str(tmp_path) in str(caught.value) and "keras.datasets.mnist.load_data" in str(
        caught.value
    )


def test_load_mnist_rejects_a_file_missing_a_key(tmp_path):
    write_fake_mnist(tmp_path / "bad.npz", drop="y_test")
    with pytest.raises(ValueError, match="y_test"):
        data.load_mnist(tmp_path / "bad.npz")


def test_as_images_needs_an_image_shape():
    with pytest.raises(ValueError, match="image_shape"):
        data.synthetic(0.5, 0.5, num_clients=2).as_images()
