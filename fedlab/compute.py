"""Limited client compute: FLOPs and peak memory of one client's training step
(``09_federated_fine_tuning_with_lora``).

:func:`training_cost` reads a built Keras model and estimates, per training example, the
floating-point operations of a forward and a backward pass, and the peak memory of training on a
batch, so a notebook can show "full fine-tuning does not fit on this phone, LoRA does". Which
weights train comes from the model itself (``model.trainable_weights``): full fine-tuning, LoRA
(:func:`fedlab.large_models.enable_lora`) and head-only training are the same model with
different weights frozen.

How FLOPs are counted (one FLOP = one multiply or one add, so a multiply-add is 2):

- ``Dense`` and ``EinsumDense``: 2 x (multiply-adds of the einsum), i.e. 2 x kernel size per
  output position (``Dense(d_out)`` on ``[batch, seq_len, d_in]``: ``2 * seq_len * d_in * d_out``).
  ``Conv1D/2D/3D``: 2 x kernel size / filters x output size (2 x kernel size per output position).
- LoRA (Keras ``enable_lora(r)``) adds the adapter path ``x @ A @ B``: ``2 * r * (d_in + d_out)``
  per position for a ``Dense``. (Keras actually merges ``A @ B`` into the kernel once per step;
  we count the per-example cost of the unmerged path, as the LoRA paper does.)
- ``MultiHeadAttention``: its four projections (``EinsumDense`` sub-layers, LoRA included), plus
  scores ``Q K^T`` and the weighted sum ``P V``: ``2 * T * S * heads * (key_dim + value_dim)``
  per sequence (``T`` queries, ``S`` keys; the causal mask does not skip work).
- The tied output layer of ``tiny_transformer(..., tied_embeddings=True)``: ``2 * d_model *
  vocab_size`` per position. Embedding lookups, LayerNorms, activations, adds, pooling and
  every other layer count 0: they are elementwise or cheap next to the matrix products.

Backward pass. Backprop *passes through* a layer when the layer, or any layer before it, has a
trainable weight. For each such layer it computes (a) gradients with respect to its inputs,
which cost about its forward FLOPs (twice the attention products, whose two operands are both
activations), and (b) gradients with respect to its *trainable* weights, which cost about the
forward FLOPs of the matrix products those weights take part in. So full training is exactly
3 x forward; layers before the first trainable one need no backward at all (head-only training
is forward + 2 x the head's FLOPs). Rule (a) is also counted for the first trainable layer,
where it is not really needed: the usual "training = 3 x forward" convention.

Memory (``bytes_per_value`` bytes per number, 4 for float32): weights (all of them), gradients
(trainable weights only), optimizer state (``"sgd"``: none, ``"momentum"``: 1, ``"adam"``: 2
values per trainable weight) and activations: for ``batch_size`` examples, every tensor the
backward pass reads, i.e. the outputs of the layers backprop passes through and the inputs of
those layers, plus each such ``MultiHeadAttention``'s attention probabilities ``heads * T * S``.
Layers before the first trainable one keep nothing. It is an estimate: it leaves out the input
batch, the framework and runtime, temporary buffers, activations inside fused layers (e.g. the
pre-activation of ``Dense(..., activation="gelu")``, attention's ``Q, K, V``) and the fact that
a real runtime frees and reuses memory.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import keras

from fedlab.models import _TiedLogits
from fedlab.validate import check_choice, check_int

OPTIMIZER_SLOTS: dict[str, int] = {"sgd": 0, "momentum": 1, "adam": 2}
"""Values of optimizer state kept per trainable weight."""

MB = 10**6
"""Bytes in a megabyte (decimal, as phone spec sheets use)."""


@dataclass(frozen=True)
class TrainingCost:
    """One client's training cost for a model, from :func:`training_cost`.

    Attributes:
        num_parameters: all weights, trainable or not.
        trainable_parameters: weights that receive gradients.
        forward_flops: FLOPs of one forward pass, per example.
        train_flops: FLOPs of one forward plus backward pass, per example.
        weight_bytes: memory of all weights.
        gradient_bytes: memory of the gradients (trainable weights only).
        optimizer_bytes: memory of the optimizer's state (momentum, Adam moments).
        activation_bytes: memory of the activations kept for backprop, for ``batch_size`` examples.
        batch_size: examples per training step.

    Example:
        >>> cost = TrainingCost(100, 10, 200, 600, 400, 40, 80, 1000, 8)
        >>> cost.peak_memory_bytes, cost.flops(num_examples=5), cost.fits(1500)
        (1520, 3000, False)
    """

    num_parameters: int
    trainable_parameters: int
    forward_flops: int
    train_flops: int
    weight_bytes: int
    gradient_bytes: int
    optimizer_bytes: int
    activation_bytes: int
    batch_size: int

    @property
    def peak_memory_bytes(self) -> int:
        """Weights + gradients + optimizer state + activations, in bytes."""
        return (
            self.weight_bytes + self.gradient_bytes + self.optimizer_bytes + self.activation_bytes
        )

    def flops(self, num_examples: int) -> int:
        """Training FLOPs for ``num_examples`` examples (e.g. one client's local epochs).

        Example:
            >>> TrainingCost(1, 1, 2, 6, 4, 4, 0, 8, 1).flops(10)
            60
        """
        return self.train_flops * check_int("num_examples", num_examples, low=0)

    def fits(self, memory_bytes: int) -> bool:
        """Whether the peak training memory fits in ``memory_bytes`` bytes.

        Example:
            >>> TrainingCost(1, 1, 2, 6, 4, 4, 0, 8, 1).fits(16)
            True
        """
        return self.peak_memory_bytes <= check_int("memory_bytes", memory_bytes, low=0)

    def summary(self) -> dict:
        """A JSON-friendly row for a table: parameter counts, GFLOPs per example, memory in MB.

        Example:
            >>> TrainingCost(100, 10, 2 * 10**9, 6 * 10**9, 400, 40, 0, 10**6, 8).summary()["peak_mb"]
            1.0
        """
        return {
            "parameters": self.num_parameters,
            "trainable_parameters": self.trainable_parameters,
            "forward_gflops": self.forward_flops / 1e9,
            "train_gflops": self.train_flops / 1e9,
            "weights_mb": round(self.weight_bytes / MB, 3),
            "gradients_mb": round(self.gradient_bytes / MB, 3),
            "optimizer_mb": round(self.optimizer_bytes / MB, 3),
            "activations_mb": round(self.activation_bytes / MB, 3),
            "peak_mb": round(self.peak_memory_bytes / MB, 3),
            "batch_size": self.batch_size,
        }


@dataclass(frozen=True)
class _LayerFlops:
    """Per-example multiply-adds of one layer call, split by what the backward pass needs."""

    frozen: int = 0  # products with frozen weights
    trainable: int = 0  # products with trainable weights
    activation: int = 0  # products of two activations (attention scores, weighted sum)
    attention_values: int = 0  # attention probabilities kept for backprop

    def __add__(self, other: _LayerFlops) -> _LayerFlops:
        return _LayerFlops(
            self.frozen + other.frozen,
            self.trainable + other.trainable,
            self.activation + other.activation,
            self.attention_values + other.attention_values,
        )

    @property
    def forward(self) -> int:
        return self.frozen + self.trainable + self.activation


def _size(shape) -> int:
    """Values per example in a tensor of ``shape`` (the batch axis, first, is left out)."""
    dims = tuple(shape)[1:]
    if any(d is None for d in dims):
        raise ValueError(f"training_cost needs fixed input shapes (except batch), got {shape}")
    return math.prod(dims)


def _einsum_dims(equation: str, input_shape, kernel_shape) -> tuple[dict[str, int], str]:
    """Size of each (non-batch) index of an ``EinsumDense`` equation, and the output indices."""
    inputs, output = equation.split("->")
    x_spec, kernel_spec = inputs.split(",")
    if "..." in x_spec:
        extra = "".join(chr(ord("A") + i) for i in range(len(input_shape) - len(x_spec) + 3))
        x_spec, output = x_spec.replace("...", extra), output.replace("...", extra)
    dims = dict(zip(kernel_spec, kernel_shape, strict=True))
    dims.update((k, d) for k, d in zip(x_spec, input_shape, strict=True) if d is not None)
    return dims, output


def _matmul_flops(layer, macs: int, out_size: int, trainable_ids: set[int]) -> _LayerFlops:
    """Split ``macs`` (kernel products) and any LoRA adapter's products by trainability."""
    kernel = layer._embeddings if isinstance(layer, keras.layers.Embedding) else layer._kernel
    parts = _LayerFlops()
    if macs:
        key = "trainable" if id(kernel) in trainable_ids else "frozen"
        parts += _LayerFlops(**{key: macs})
    if getattr(layer, "lora_enabled", False):
        rank = layer.lora_rank
        # x @ A contracts like the kernel but has r outputs instead of kernel.shape[-1]; then @ B.
        lora = macs * rank // kernel.shape[-1] + out_size * rank
        a_trainable = id(getattr(layer, "lora_kernel_a", None)) in trainable_ids
        parts += _LayerFlops(**{"trainable" if a_trainable else "frozen": lora})
    return parts


def _einsum_dense_flops(layer, input_shape, trainable_ids) -> tuple[_LayerFlops, tuple]:
    dims, output = _einsum_dims(layer.equation, input_shape, layer._kernel.shape)
    macs = math.prod(dims.values())
    out_shape = (None, *(dims[k] for k in output[1:]))
    return _matmul_flops(layer, macs, _size(out_shape), trainable_ids), out_shape


def _attention_flops(layer, node, trainable_ids: set[int]) -> _LayerFlops:
    query, value = (t.shape for t in node.arguments.args[:2])
    key = node.arguments.kwargs.get("key")
    key = value if key is None else key.shape
    q, q_shape = _einsum_dense_flops(layer.query_dense, query, trainable_ids)
    k, _ = _einsum_dense_flops(layer.key_dense, key, trainable_ids)
    v, v_shape = _einsum_dense_flops(layer.value_dense, value, trainable_ids)
    combined = (*q_shape[:-1], v_shape[-1])  # [batch, T, heads, value_dim]
    o, _ = _einsum_dense_flops(layer.output_dense, combined, trainable_ids)
    t, s = _size(query[:-1]), _size(value[:-1])
    heads = layer.num_heads
    scores = _LayerFlops(
        activation=t * s * heads * (layer.key_dim + layer.value_dim),
        attention_values=heads * t * s,
    )
    return q + k + v + o + scores


def _layer_flops(node, trainable_ids: set[int]) -> _LayerFlops:
    """Per-example multiply-adds of one call (node) of a layer; 0 for cheap layers."""
    layer = node.operation
    inputs = node.arguments.keras_tensors
    out_size = sum(_size(t.shape) for t in node.outputs)
    if isinstance(layer, keras.layers.MultiHeadAttention):
        return _attention_flops(layer, node, trainable_ids)
    if isinstance(layer, keras.layers.EinsumDense):
        return _einsum_dense_flops(layer, inputs[0].shape, trainable_ids)[0]
    if isinstance(layer, (keras.layers.Dense, keras.layers.Conv1D, keras.layers.Conv2D)) or (
        isinstance(layer, keras.layers.Conv3D)
    ):
        kernel = layer._kernel
        macs = out_size * math.prod(kernel.shape) // kernel.shape[-1]
        return _matmul_flops(layer, macs, out_size, trainable_ids)
    if isinstance(layer, keras.layers.Embedding):
        return _matmul_flops(layer, 0, out_size, trainable_ids)
    if isinstance(layer, _TiedLogits):
        embeddings = layer.embedding._embeddings
        macs = out_size * embeddings.shape[1]
        return _LayerFlops(**{"trainable" if id(embeddings) in trainable_ids else "frozen": macs})
    return _LayerFlops()


def _functional(model: keras.Model) -> keras.Model:
    """The layer graph of a functional, Sequential or simple single-input subclassed model."""
    if isinstance(model, keras.Sequential):
        model = model._functional
    if hasattr(model, "_nodes_by_depth"):
        return model
    shapes = list(getattr(model, "_build_shapes_dict", None) or {})
    if len(shapes) == 1:
        # Trace a subclassed model's call() on a symbolic input: same layers, same weights.
        x = keras.Input(tuple(model._build_shapes_dict[shapes[0]])[1:])
        try:
            return keras.Model(x, model.call(x))
        except Exception:  # noqa: BLE001 - fall through to the TypeError below
            pass
    raise TypeError(
        f"training_cost needs a functional or Sequential model, got {type(model).__name__} "
        "whose layer graph it could not trace"
    )


def training_cost(
    model: keras.Model, batch_size: int, optimizer: str = "sgd", bytes_per_value: int = 4
) -> TrainingCost:
    """Estimate a client's training FLOPs per example and peak memory for a built Keras model.

    What trains is read from the model (``model.trainable_weights``), so freeze layers or call
    :func:`fedlab.large_models.enable_lora` first. ``optimizer`` is ``"sgd"``, ``"momentum"`` or
    ``"adam"`` (0, 1 or 2 state values per trainable weight); ``bytes_per_value`` is 4 for
    float32, 2 for float16. The counting rules are in this module's docstring.

    Example:
        >>> from fedlab.models import tiny_transformer
        >>> cost = training_cost(tiny_transformer(256, 64), batch_size=16, optimizer="adam")
        >>> cost.forward_flops, cost.train_flops == 3 * cost.forward_flops
        (16777216, True)
        >>> cost.summary()["peak_mb"]
        11.637
    """
    if not isinstance(model, keras.Model) or not model.built:
        raise TypeError(f"model must be a built keras.Model, got {type(model).__name__}")
    batch_size = check_int("batch_size", batch_size, low=1)
    slots = OPTIMIZER_SLOTS[check_choice("optimizer", optimizer, OPTIMIZER_SLOTS)]
    bytes_per_value = check_int("bytes_per_value", bytes_per_value, low=1, high=8)

    weights = {id(w): w for w in model.weights}
    trainable = {id(w): w for w in model.trainable_weights}
    num_parameters = sum(math.prod(w.shape) for w in weights.values())
    trainable_parameters = sum(math.prod(w.shape) for w in trainable.values())
    trainable_ids = set(trainable)

    graph = _functional(model)
    nodes = [
        n for d in sorted(graph._nodes_by_depth, reverse=True) for n in graph._nodes_by_depth[d]
    ]
    grad: dict[int, bool] = {}  # node -> does backprop pass through it?
    kept: set[int] = set()  # nodes whose outputs the backward pass reads
    forward = backward = kept_values = 0
    for node in nodes:
        layer = node.operation
        if isinstance(layer, keras.layers.InputLayer):
            grad[id(node)] = False
            continue
        own = any(id(w) in trainable_ids for w in getattr(layer, "weights", []))
        grad[id(node)] = own or any(grad.get(id(p), False) for p in node.parent_nodes)
        flops = _layer_flops(node, trainable_ids)
        forward += flops.forward
        if grad[id(node)]:
            # Input gradients (both operands of attention's products) + trainable weight gradients.
            backward += flops.forward + flops.activation + flops.trainable
            kept.add(id(node))
            kept.update(id(p) for p in node.parent_nodes)
            kept_values += flops.attention_values
    for node in nodes:
        if id(node) in kept and not isinstance(node.operation, keras.layers.InputLayer):
            kept_values += sum(_size(t.shape) for t in node.outputs)

    gradient_bytes = trainable_parameters * bytes_per_value
    return TrainingCost(
        num_parameters=num_parameters,
        trainable_parameters=trainable_parameters,
        forward_flops=2 * forward,
        train_flops=2 * (forward + backward),
        weight_bytes=num_parameters * bytes_per_value,
        gradient_bytes=gradient_bytes,
        optimizer_bytes=slots * gradient_bytes,
        activation_bytes=kept_values * batch_size * bytes_per_value,
        batch_size=batch_size,
    )
