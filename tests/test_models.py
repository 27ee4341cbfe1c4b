"""Models output logits, build seeded, and reject what the engine cannot federate."""

import numpy as np
import pytest

import fedlab  # noqa: F401
from fedlab import models


def test_fed_model_outputs_logits_not_probabilities():
    model = models.build_model(
        lambda: models.FedModel(10), np.random.default_rng(0).random((4, 64)), seed=0
    )
    out = model(np.random.default_rng(1).random((5, 64)).astype("float32")).numpy()
    assert out.shape == (5, 10)
    assert (out < 0).any() and not np.allclose(out.sum(axis=1), 1.0)


def test_build_model_is_seeded():
    x = np.zeros((1, 64), "float32")
    a = models.build_model(lambda: models.FedModel(10), x, seed=3).get_weights()
    b = models.build_model(lambda: models.FedModel(10), x, seed=3).get_weights()
    c = models.build_model(lambda: models.FedModel(10), x, seed=4).get_weights()
    assert all(np.array_equal(u, v) for u, v in zip(a, b, strict=True))
    assert not np.array_equal(a[0], c[0])


@pytest.mark.parametrize(
    "name, shape", [("mlp", (1, 64)), ("logreg", (1, 60)), ("cnn", (1, 8, 8, 1))]
)
def test_named_models_build(name, shape):
    model = models.build_model(
        models.model_fn(name, num_classes=10), np.zeros(shape, "float32"), seed=0
    )
    assert model(np.zeros(shape, "float32")).shape == (1, 10)


def test_bad_model_arguments():
    with pytest.raises(ValueError, match="model must be one of"):
        models.model_fn("resnet", 10)
    with pytest.raises(ValueError, match="num_classes"):
        models.FedModel(num_classes=1)
    with pytest.raises(TypeError, match="must return a keras.Model"):
        models.build_model(lambda: "not a model", np.zeros((1, 2)), seed=0)
    with pytest.raises(ValueError, match="seed"):
        models.build_model(lambda: models.FedModel(10), np.zeros((1, 2)), seed=-3)


def test_num_parameters():
    assert (
        models.num_parameters(
            [np.zeros((64, 128)), np.zeros(128), np.zeros((128, 10)), np.zeros(10)]
        )
        == 9610
    )
