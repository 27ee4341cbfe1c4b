"""Models for federated training, built by ``model_fn``-style builders (``01_one_round_by_hand``).

Every model outputs *logits* (no softmax) and is trained with
``sparse_categorical_crossentropy(from_logits=True)``: putting a softmax in the model *and*
``from_logits=True`` in the loss is a classic silent bug that notebook 01 shows.

A ``model_fn`` is a function with no arguments that returns a fresh, unbuilt Keras model; the
engine and the step functions call it and build the model on a sample batch with
:func:`build_model`, so a subclassed model works the same as a ``Sequential`` one.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

import keras
import numpy as np

from fedlab.validate import check_choice, check_float, check_int

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


def seed_keras(seed: int) -> None:
    """Seed Keras's initialisers and layers, Python's ``random`` and NumPy's global generator.

    What ``keras.utils.set_random_seed`` does except ``tf.random.set_seed``, which would clear
    TensorFlow's kernel cache (weight initialisers in Keras 3 draw from Keras's own seed, so the
    weights are the same). Use ``keras.utils.set_random_seed`` where TensorFlow's own random ops
    must be seeded too (e.g. ``model.fit``'s shuffling).

    Example:
        >>> seed_keras(0); a = keras.random.uniform((2,)); seed_keras(0)
        >>> bool(np.all(a == keras.random.uniform((2,))))
        True
    """
    try:  # Keras 3's own global seed (what set_random_seed stores), without TensorFlow's
        from keras.src.backend.common import global_state
        from keras.src.random import seed_generator
        from keras.src.utils import rng_utils

        # the attributes' names as constants since Keras 3.13; the same strings before that
        seed_name = getattr(rng_utils, "GLOBAL_RANDOM_SEED", "global_random_seed")
        generator_name = getattr(seed_generator, "GLOBAL_SEED_GENERATOR", "global_seed_generator")
        global_state.set_global_attribute(seed_name, seed)
        global_state.set_global_attribute(generator_name, None)
    except (ImportError, AttributeError):  # a Keras whose internals moved: seed everything
        keras.utils.set_random_seed(seed)
    random.seed(seed)
    np.random.seed(seed)


def build_model(model_fn: ModelFn, sample_x: np.ndarray, seed: int) -> keras.Model:
    """Call ``model_fn`` and build the model on ``sample_x`` with seeded initial weights.

    The same ``seed`` gives the same initial weights: Keras's global seed and Python's and
    NumPy's global generators are seeded (:func:`seed_keras`), as ``keras.utils.set_random_seed``
    does, but TensorFlow's global seed is left alone: setting it clears TensorFlow's cache of
    compiled functions, and every simulation would then pay ~0.2 s per compiled function again.

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
    seed_keras(seed)
    model = model_fn()
    if not isinstance(model, keras.Model):
        raise TypeError(f"model_fn must return a keras.Model, got {type(model).__name__}")
    sample = np.asarray(sample_x[:2], dtype="float32")
    model(sample[:1])
    if not model.trainable_variables:
        raise ValueError("model_fn's model has no trainable weights")
    _check_no_training_state(model, sample)
    return model


def _check_no_training_state(model: keras.Model, sample: np.ndarray) -> None:
    """Refuse non-trainable variables that training changes (BatchNormalization statistics).

    Frozen weights (``layer.trainable = False``, the base kernels under LoRA) are fine: every
    client shares them and nobody sends them. State a training step updates is not: fedlab
    averages only trainable weights, so each client's statistics would silently be lost.
    """
    trainable = [v.value for v in model.trainable_variables]
    before = [v.value for v in model.non_trainable_variables]
    _, after = model.stateless_call(trainable, before, sample, training=True)
    changed = [
        v.path
        for v, old, new in zip(model.non_trainable_variables, before, after, strict=True)
        if "float" in str(v.dtype) and not np.array_equal(np.asarray(old), np.asarray(new))
    ]
    if changed:
        raise ValueError(
            "model_fn's model has non-trainable variables that training updates "
            f"({', '.join(changed[:3])}), e.g. BatchNormalization statistics; fedlab averages "
            "trainable weights only. Use LayerNormalization or GroupNormalization instead "
            "(also the better choice for non-IID clients)."
        )


def num_parameters(weights: list[np.ndarray]) -> int:
    """Total number of scalars in a list of weight arrays.

    Example:
        >>> num_parameters([np.zeros((64, 128)), np.zeros(128)])
        8320
    """
    return int(sum(np.size(w) for w in weights))


class _TiedLogits(keras.layers.Layer):
    """Vocabulary logits ``x @ E.T`` reusing a token ``Embedding``'s matrix ``E`` (no new weights).

    The embedding layer is tracked as a sub-layer, and Keras de-duplicates shared variables, so a
    tied model counts ``E`` once in ``count_params()`` and passes it once to ``stateless_call``.
    """

    def __init__(self, embedding: keras.layers.Embedding, **kwargs):
        super().__init__(**kwargs)
        self.embedding = embedding

    def call(self, x):
        # ``embedding.embeddings`` already includes a LoRA update if one was enabled on it.
        return keras.ops.matmul(x, keras.ops.transpose(self.embedding.embeddings))

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.embedding.input_dim)


def tiny_transformer(
    vocab_size: int,
    seq_len: int,
    d_model: int = 64,
    num_heads: int = 4,
    num_layers: int = 2,
    mlp_dim: int | None = None,
    dropout: float = 0.0,
    tied_embeddings: bool = False,
    name: str = "tiny_transformer",
) -> keras.Model:
    """A causal decoder-only language model (GPT-2 layout) built from standard Keras layers.

    Int tokens ``[batch, seq_len]`` -> token ``Embedding`` + learned position ``Embedding`` ->
    ``num_layers`` pre-LayerNorm blocks (``x + MHA(LN(x), causal)``, then
    ``x + Dense(GELU(Dense(LN(x))))``) -> final ``LayerNormalization`` -> vocabulary logits
    ``[batch, seq_len, vocab_size]`` (no softmax). The output projection is a ``Dense`` with bias,
    or, with ``tied_embeddings=True``, the transpose of the token embedding (no extra weights).
    Every layer keeps Keras's defaults (biases on, LayerNorm with scale and offset), so
    :func:`fedlab.large_models.tiny_transformer_config` counts its weights exactly. Sizes:
    ``tiny_transformer(256, 64)`` has 137,216 parameters (120,576 tied);
    ``tiny_transformer(8192, 256, d_model=256, num_heads=8, num_layers=4, tied_embeddings=True)``
    has 5,322,240. The attention projections are ``EinsumDense`` layers (``enable_lora`` works;
    see :func:`fedlab.large_models.enable_lora`).

    Example:
        >>> model = tiny_transformer(vocab_size=256, seq_len=64)
        >>> model.count_params()
        137216
        >>> model(np.zeros((2, 64), "int32")).shape
        TensorShape([2, 64, 256])
    """
    vocab_size = check_int("vocab_size", vocab_size, low=2)
    seq_len = check_int("seq_len", seq_len, low=1)
    d_model = check_int("d_model", d_model, low=1)
    num_heads = check_int("num_heads", num_heads, low=1)
    num_layers = check_int("num_layers", num_layers, low=1)
    mlp_dim = 4 * d_model if mlp_dim is None else check_int("mlp_dim", mlp_dim, low=1)
    dropout = check_float("dropout", dropout, low=0.0, high=1.0, high_inclusive=False)
    if d_model % num_heads:
        raise ValueError(
            f"d_model must be divisible by num_heads ({num_heads}), got d_model={d_model}"
        )
    if not isinstance(tied_embeddings, bool):
        raise ValueError(f"tied_embeddings must be True or False, got {tied_embeddings!r}")
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string, got {name!r}")

    tokens = keras.Input(shape=(seq_len,), dtype="int32", name="tokens")
    token_embedding = keras.layers.Embedding(vocab_size, d_model, name="token_embedding")
    # Positions 0..seq_len-1 for every sequence, as a symbolic op on the input.
    positions = keras.ops.zeros_like(tokens) + keras.ops.arange(seq_len, dtype="int32")
    x = token_embedding(tokens)
    x = x + keras.layers.Embedding(seq_len, d_model, name="position_embedding")(positions)
    if dropout:
        x = keras.layers.Dropout(dropout)(x)
    for i in range(num_layers):
        h = keras.layers.LayerNormalization(epsilon=1e-5, name=f"block{i}_ln1")(x)
        h = keras.layers.MultiHeadAttention(
            num_heads, key_dim=d_model // num_heads, dropout=dropout, name=f"block{i}_attention"
        )(h, h, use_causal_mask=True)
        if dropout:
            h = keras.layers.Dropout(dropout)(h)
        x = x + h
        h = keras.layers.LayerNormalization(epsilon=1e-5, name=f"block{i}_ln2")(x)
        h = keras.layers.Dense(mlp_dim, activation="gelu", name=f"block{i}_mlp_up")(h)
        h = keras.layers.Dense(d_model, name=f"block{i}_mlp_down")(h)
        if dropout:
            h = keras.layers.Dropout(dropout)(h)
        x = x + h
    x = keras.layers.LayerNormalization(epsilon=1e-5, name="final_ln")(x)
    if tied_embeddings:
        logits = _TiedLogits(token_embedding, name="logits")(x)
    else:
        logits = keras.layers.Dense(vocab_size, name="logits")(x)
    return keras.Model(tokens, logits, name=name)
