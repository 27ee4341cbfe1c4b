"""Models for federated training, built by ``model_fn``-style builders (``01_one_round_by_hand``).

Every model outputs *logits* (no softmax) and is trained with
``sparse_categorical_crossentropy(from_logits=True)``: putting a softmax in the model *and*
``from_logits=True`` in the loss is a classic silent bug that notebook 01 shows.

A ``model_fn`` is a function with no arguments that returns a fresh, unbuilt Keras model; the
engine and the step functions call it and build the model on a sample batch with
:func:`build_model`, so a subclassed model works the same as a ``Sequential`` one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import keras
import numpy as np

from fedlab.validate import check_choice, check_int

ModelFn = Callable[[], keras.Model]


@keras.saving.register_keras_serializable(package="fedlab")
class FedModel(keras.Model):
    """The classic two-layer network of FL tutorials: Dense(128, ReLU) -> Dense(num_classes) logits.

    Example:
        >>> model = FedModel(num_classes=10)
        >>> model(np.zeros((2, 64), "float32")).shape
        TensorShape([2, 10])
    """

    def __init__(self, num_classes: int = 10, hidden_units: int = 128, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = check_int("num_classes", num_classes, low=2)
        self.hidden_units = check_int("hidden_units", hidden_units, low=1)
        self.flatten = keras.layers.Flatten()
        self.hidden = keras.layers.Dense(hidden_units, activation="relu", name="hidden")
        self.classifier = keras.layers.Dense(num_classes, name="logits")

    def call(self, x, training: bool = False):
        return self.classifier(self.hidden(self.flatten(x)))

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "hidden_units": self.hidden_units,
        }


def logistic_regression(num_classes: int = 10) -> keras.Model:
    """Multinomial logistic regression: one Dense layer of logits (the FedProx papers' model).

    Example:
        >>> logistic_regression(10)(np.zeros((1, 60), "float32")).shape
        TensorShape([1, 10])
    """
    num_classes = check_int("num_classes", num_classes, low=2)
    return keras.Sequential(
        [keras.layers.Flatten(), keras.layers.Dense(num_classes, name="logits")]
    )


def small_cnn(num_classes: int = 10) -> keras.Model:
    """A small CNN for 8x8x1 digit images: Conv16 -> pool -> Conv32 -> global pool -> logits.

    Feed it ``dataset.as_images()``.

    Example:
        >>> small_cnn(10)(np.zeros((1, 8, 8, 1), "float32")).shape
        TensorShape([1, 10])
    """
    num_classes = check_int("num_classes", num_classes, low=2)
    return keras.Sequential(
        [
            keras.layers.Conv2D(16, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(num_classes, name="logits"),
        ]
    )


MODELS: dict[str, Callable[[int], keras.Model]] = {
    "mlp": lambda num_classes: FedModel(num_classes=num_classes),
    "logreg": logistic_regression,
    "cnn": small_cnn,
}


@dataclass(frozen=True)
class NamedModel:
    """A ``model_fn`` that builds one of :data:`MODELS` by name; returned by :func:`model_fn`.

    Equal names and class counts give equal (and hashable) model functions, so simulations of
    the same model share one compiled kernel (:mod:`fedlab.engine`).

    Example:
        >>> NamedModel("logreg", 3) == NamedModel("logreg", 3)
        True
    """

    name: str
    num_classes: int

    def __call__(self) -> keras.Model:
        return MODELS[self.name](self.num_classes)


def model_fn(name: str, num_classes: int) -> ModelFn:
    """A ``model_fn`` for one of the named models: ``"mlp"`` (FedModel), ``"logreg"``, ``"cnn"``.

    Example:
        >>> make = model_fn("mlp", num_classes=10)
        >>> isinstance(make(), FedModel)
        True
    """
    check_choice("model", name, MODELS)
    return NamedModel(name, check_int("num_classes", num_classes, low=2))


def build_model(model_fn: ModelFn, sample_x: np.ndarray, seed: int) -> keras.Model:
    """Call ``model_fn`` and build the model on ``sample_x`` with seeded initial weights.

    The same ``seed`` gives the same initial weights (``keras.utils.set_random_seed`` is called,
    which also seeds Python's and NumPy's global generators).

    Example:
        >>> m = build_model(lambda: FedModel(10), np.zeros((1, 64), "float32"), seed=0)
        >>> [w.shape for w in m.get_weights()]
        [(64, 128), (128,), (128, 10), (10,)]
    """
    if not callable(model_fn):
        raise TypeError(
            f"model_fn must be a function returning a Keras model, got {type(model_fn).__name__}"
        )
    seed = check_int("seed", seed, low=0)
    keras.utils.set_random_seed(seed)
    model = model_fn()
    if not isinstance(model, keras.Model):
        raise TypeError(f"model_fn must return a keras.Model, got {type(model).__name__}")
    model(np.asarray(sample_x[:1], dtype="float32"))
    float_state = [v.path for v in model.non_trainable_variables if "float" in str(v.dtype)]
    if float_state:
        raise ValueError(
            "model_fn's model has non-trainable float variables "
            f"({', '.join(float_state[:3])}), e.g. BatchNormalization statistics; fedlab averages "
            "trainable weights only. Use LayerNormalization or GroupNormalization instead "
            "(also the better choice for non-IID clients)."
        )
    if not model.trainable_variables:
        raise ValueError("model_fn's model has no trainable weights")
    return model


def num_parameters(weights: list[np.ndarray]) -> int:
    """Total number of scalars in a list of weight arrays.

    Example:
        >>> num_parameters([np.zeros((64, 128)), np.zeros(128)])
        8320
    """
    return int(sum(np.size(w) for w in weights))
