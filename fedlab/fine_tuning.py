"""Pre-train centrally, then fine-tune federatedly: full, LoRA, head-only or BitFit
(``09_federated_fine_tuning_with_lora``).

Large models are rarely trained federatedly from scratch: a model pre-trained on public data
is *fine-tuned* on the clients' private data. What the clients train decides what every round
costs (only trainable weights travel; frozen ones are shared by every client and never sent)
and how much memory a client needs (:mod:`fedlab.compute`):

* ``"full"``: every weight is trained and sent;
* ``"lora"``: everything is frozen, and small LoRA factors ``A, B`` on chosen layers are trained
  (:func:`fedlab.large_models.enable_lora`, Keras 3's built-in ``layer.enable_lora``);
* ``"head"``: everything is frozen but the output layer;
* ``"bitfit"``: everything is frozen but the biases of the dense layers (Ben Zaken et al. 2022).

:func:`pretrain` trains a fresh model centrally (Keras ``fit``, Adam) and returns its weights;
:class:`FineTuning` is a ``model_fn`` that rebuilds that pre-trained model and prepares it for
one variant. Hand it to :func:`fedlab.simulate` like any other ``model_fn``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import keras
import numpy as np

from fedlab.large_models import enable_lora
from fedlab.models import ModelFn, build_model
from fedlab.validate import check_choice, check_float, check_int

VARIANTS = ("full", "lora", "head", "bitfit")


def pretrain(
    model_fn: ModelFn,
    x: np.ndarray,
    y: np.ndarray,
    epochs: int = 3,
    batch_size: int = 32,
    learning_rate: float = 3e-3,
    ignore_class: int | None = None,
    seed: int = 0,
) -> list[np.ndarray]:
    """Train a fresh ``model_fn()`` centrally on ``x, y`` with Adam; return all its weights.

    The loss is cross-entropy from logits; ``ignore_class`` targets (padding) do not count.
    Seeded: the same ``seed`` gives the same weights.

    Example:
        >>> data = keyboard(num_clients=2, sentences_per_client=5, public_sentences=64)  # doctest: +SKIP
        >>> weights = pretrain(make_model, data.x_public, data.y_public, ignore_class=0)  # doctest: +SKIP
    """
    epochs = check_int("epochs", epochs, low=1)
    batch_size = check_int("batch_size", batch_size, low=1)
    learning_rate = check_float("learning_rate", learning_rate, low=0.0, low_inclusive=False)
    if len(x) != len(y) or len(x) == 0:
        raise ValueError(f"x and y must be non-empty and of one length, got {len(x)} and {len(y)}")
    model = build_model(model_fn, x, check_int("seed", seed, low=0))
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(
            from_logits=True, ignore_class=ignore_class
        ),
        jit_compile=False,
    )
    keras.utils.set_random_seed(seed)  # fit's shuffling draws from TensorFlow's global seed
    model.fit(np.asarray(x), np.asarray(y), batch_size=batch_size, epochs=epochs, verbose=0)
    return [np.asarray(w) for w in model.get_weights()]


@dataclass(frozen=True, eq=False)
class FineTuning:
    """A ``model_fn``: the pre-trained model, with only one variant's weights trainable.

    Attributes:
        model_fn: builds the (untrained) architecture; the model must be built when made (a
            functional model such as :func:`fedlab.models.tiny_transformer`).
        weights: the pre-trained weights, e.g. from :func:`pretrain` (``model.get_weights()``
            order).
        variant: ``"full"``, ``"lora"``, ``"head"`` or ``"bitfit"`` (see the module docstring).
        rank: LoRA rank r.
        targets: layers that get LoRA adapters (see :func:`fedlab.large_models.enable_lora`).
        lora_alpha: LoRA scale numerator (``None``: ``alpha = rank``, scale 1).
        train_a: ``False`` freezes the LoRA factor ``A`` at its (seeded, shared) initial value
            and trains only ``B`` (FFA-LoRA, Sun et al. 2024): then averaging the clients' ``B``
            is exactly averaging their updates ``A·B_k``, which averaging ``A`` and ``B``
            separately is not (:mod:`fedlab.lora`). Only ``B`` travels, too.
        head: the name of the output layer trained by ``"head"``.

    Each instance is its own model function, so simulations that share it share one compiled
    kernel: make one per variant and reuse it.

    Example:
        >>> make = FineTuning(make_model, weights, variant="lora", rank=4)  # doctest: +SKIP
        >>> history = simulate(FedAvg(), make, data, data.split(), num_rounds=10)  # doctest: +SKIP
    """

    model_fn: ModelFn
    weights: Sequence[np.ndarray]
    variant: str = "lora"
    rank: int = 4
    targets: tuple[str, ...] = ("q", "v")
    lora_alpha: float | None = None
    train_a: bool = True
    head: str = "logits"

    def __post_init__(self):
        if not callable(self.model_fn):
            raise TypeError(
                f"model_fn must be a function returning a Keras model, got {type(self.model_fn).__name__}"
            )
        check_choice("variant", self.variant, VARIANTS)
        check_int("rank", self.rank, low=1)
        if not isinstance(self.train_a, bool):
            raise TypeError(f"train_a must be True or False, got {self.train_a!r}")
        object.__setattr__(self, "weights", tuple(np.asarray(w) for w in self.weights))
        object.__setattr__(self, "targets", tuple(self.targets))

    def __call__(self) -> keras.Model:
        model = self.model_fn()
        if not isinstance(model, keras.Model) or not model.built:
            raise ValueError(
                "FineTuning's model_fn must return a built keras.Model (e.g. a functional model)"
            )
        try:
            model.set_weights(list(self.weights))
        except ValueError as error:
            raise ValueError(
                f"weights do not fit model_fn's model ({len(self.weights)} arrays given): {error}"
            ) from None
        if self.variant == "lora":
            enable_lora(model, self.rank, self.targets, self.lora_alpha)
            if not self.train_a:
                for variable in model.weights:
                    if variable.name == "lora_kernel_a":
                        variable.trainable = False
        elif self.variant == "head":
            layers = {layer.name: layer for layer in model._flatten_layers()}
            if self.head not in layers or not layers[self.head].weights:
                raise ValueError(
                    f"head must name a layer with weights, got {self.head!r} (a tied output "
                    "layer has no weights of its own)"
                )
            _train_only(model, {id(v) for v in layers[self.head].weights})
        elif self.variant == "bitfit":
            biases = [
                v
                for layer in model._flatten_layers()
                if isinstance(layer, keras.layers.Dense | keras.layers.EinsumDense)
                for v in layer.weights
                if v.name == "bias"
            ]
            if not biases:
                raise ValueError("bitfit needs dense layers with biases; the model has none")
            _train_only(model, {id(v) for v in biases})
        return model

    def config(self) -> dict:
        """The settings, JSON-friendly (the weights are not included)."""
        config = {"variant": self.variant}
        if self.variant == "lora":
            config.update(
                rank=self.rank,
                targets=list(self.targets),
                lora_alpha=self.lora_alpha,
                train_a=self.train_a,
            )
        if self.variant == "head":
            config["head"] = self.head
        return config


def _train_only(model: keras.Model, keep: set[int]) -> None:
    """Freeze every weight of ``model`` but those whose ``id`` is in ``keep``."""
    for variable in model.weights:
        variable.trainable = id(variable) in keep
