"""What federating a large language model costs: parameters, LoRA adapters, upload sizes
(``09_federated_fine_tuning_with_lora``).

A :class:`DecoderConfig` describes a standard decoder-only transformer (GPT-2, Llama, ...) and
counts its weights by formula, so a notebook can compare "send the whole model" with "send only
the LoRA adapters" for a 7-billion-parameter model without building it. The same formula counts
:func:`fedlab.models.tiny_transformer` exactly (:func:`tiny_transformer_config`), which is how
the tests check it against Keras's ``count_params()``. :func:`enable_lora` freezes a Keras
model and adds LoRA adapters to its attention projections, for the small-scale experiment.

Conventions of the count (per layer, hidden size ``d``, MLP size ``m``, ``kv = num_kv_heads *
head_dim``): attention ``q: d x d``, ``k, v: d x kv``, ``o: d x d``; MLP ``gate, up: d x m`` (gate
only if ``gated_mlp``), ``down: m x d``; with ``bias=True`` every one of these matrices has a bias
vector, as does an untied LM head; each norm has ``d`` weights (``rmsnorm``) or ``2d``
(``layernorm``: scale and offset); two norms per layer plus a final one; learned position
embeddings ``max_positions x d`` (0 for rotary positions, which have no weights).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import keras

from fedlab.validate import check_choice, check_float, check_int

LORA_TARGETS = ("q", "k", "v", "o", "gate", "up", "down")
_ATTENTION_PROJECTIONS = {
    "q": "query_dense",
    "k": "key_dense",
    "v": "value_dense",
    "o": "output_dense",
}


@dataclass(frozen=True)
class DecoderConfig:
    """The shape of a decoder-only transformer, with its parameter count by formula.

    Attributes:
        vocab_size: number of tokens in the vocabulary.
        hidden_size: width ``d`` of the residual stream.
        num_layers: number of transformer blocks.
        num_heads: number of query heads (``hidden_size`` must be divisible by it).
        mlp_size: inner width ``m`` of the MLP.
        num_kv_heads: key/value heads for grouped-query attention; ``None`` means ``num_heads``.
        gated_mlp: SwiGLU-style MLP with three matrices (gate, up, down) instead of two.
        tied_embeddings: the LM head reuses the token embedding matrix.
        bias: every projection (and an untied LM head) has a bias vector.
        norm: ``"rmsnorm"`` (``d`` weights) or ``"layernorm"`` (``2d``: scale and offset).
        max_positions: rows of a learned position embedding; 0 for rotary positions.

    Example:
        >>> LLAMA_2_7B.num_parameters()
        6738415616
        >>> DecoderConfig(100, 8, 1, 2, 32).head_dim
        4
    """

    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    mlp_size: int
    num_kv_heads: int | None = None
    gated_mlp: bool = True
    tied_embeddings: bool = False
    bias: bool = False
    norm: str = "rmsnorm"
    max_positions: int = 0

    def __post_init__(self) -> None:
        check_int("vocab_size", self.vocab_size, low=1)
        check_int("hidden_size", self.hidden_size, low=1)
        check_int("num_layers", self.num_layers, low=1)
        check_int("num_heads", self.num_heads, low=1)
        check_int("mlp_size", self.mlp_size, low=1)
        check_int("max_positions", self.max_positions, low=0)
        check_choice("norm", self.norm, ["rmsnorm", "layernorm"])
        if self.hidden_size % self.num_heads:
            raise ValueError(
                f"hidden_size must be divisible by num_heads ({self.num_heads}), "
                f"got hidden_size={self.hidden_size}"
            )
        if self.num_kv_heads is not None:
            check_int("num_kv_heads", self.num_kv_heads, low=1, high=self.num_heads)
            if self.num_heads % self.num_kv_heads:
                raise ValueError(
                    f"num_kv_heads must divide num_heads ({self.num_heads}), "
                    f"got num_kv_heads={self.num_kv_heads}"
                )
        for flag in ("gated_mlp", "tied_embeddings", "bias"):
            if not isinstance(getattr(self, flag), bool):
                raise ValueError(f"{flag} must be True or False, got {getattr(self, flag)!r}")

    @property
    def head_dim(self) -> int:
        """Width of one attention head, ``hidden_size // num_heads``."""
        return self.hidden_size // self.num_heads

    @property
    def kv_size(self) -> int:
        """Output width of the key and value projections (smaller than ``d`` under GQA)."""
        kv_heads = self.num_heads if self.num_kv_heads is None else self.num_kv_heads
        return kv_heads * self.head_dim

    def matrix_shapes(self) -> dict[str, tuple[int, int]]:
        """``(d_in, d_out)`` of each weight matrix in one block, keyed by LoRA target name.

        Example:
            >>> LLAMA_3_8B.matrix_shapes()["k"]
            (4096, 1024)
        """
        d, m = self.hidden_size, self.mlp_size
        shapes = {"q": (d, d), "k": (d, self.kv_size), "v": (d, self.kv_size), "o": (d, d)}
        if self.gated_mlp:
            shapes["gate"] = (d, m)
        shapes.update(up=(d, m), down=(m, d))
        return shapes

    def parameter_breakdown(self) -> dict[str, int]:
        """Parameters by part: embeddings (token + position), attention, MLP, norms, LM head.

        Example:
            >>> GPT2_SMALL.parameter_breakdown()["lm_head"]  # tied to the token embedding
            0
        """
        d, n = self.hidden_size, self.num_layers
        shapes = self.matrix_shapes()
        attention = sum(shapes[t][0] * shapes[t][1] for t in ("q", "k", "v", "o"))
        mlp = sum(a * b for t, (a, b) in shapes.items() if t not in ("q", "k", "v", "o"))
        if self.bias:
            attention += sum(shapes[t][1] for t in ("q", "k", "v", "o"))
            mlp += sum(b for t, (_, b) in shapes.items() if t not in ("q", "k", "v", "o"))
        norm = d if self.norm == "rmsnorm" else 2 * d
        lm_head = 0 if self.tied_embeddings else d * self.vocab_size + self.bias * self.vocab_size
        return {
            "embeddings": (self.vocab_size + self.max_positions) * d,
            "attention": n * attention,
            "mlp": n * mlp,
            "norms": (2 * n + 1) * norm,
            "lm_head": lm_head,
        }

    def num_parameters(self) -> int:
        """Total number of weights (the sum of :meth:`parameter_breakdown`).

        Example:
            >>> GPT2_SMALL.num_parameters()
            124439808
        """
        return sum(self.parameter_breakdown().values())

    def lora_parameters(self, rank: int, targets: Iterable[str] = ("q", "v")) -> int:
        """Weights of rank-``rank`` LoRA adapters on ``targets`` in every layer.

        A ``d_in x d_out`` matrix gets ``A: d_in x r`` and ``B: r x d_out``, i.e.
        ``r * (d_in + d_out)`` weights. (Keras's ``EinsumDense.enable_lora`` on a
        ``MultiHeadAttention`` query/key/value kernel ``(d, heads, head_dim)`` makes
        ``A: (d, heads, r)``, ``B: (r, head_dim)`` instead; see :func:`enable_lora`.)

        Example:
            >>> LLAMA_2_7B.lora_parameters(8)  # 32 layers x 2 x 8 x (4096 + 4096)
            4194304
        """
        rank = check_int("rank", rank, low=1)
        shapes = self.matrix_shapes()
        targets = list(targets)
        if not targets:
            raise ValueError("targets must name at least one matrix, got none")
        for target in targets:
            check_choice("targets", target, list(shapes))
        if len(set(targets)) != len(targets):
            raise ValueError(f"targets must not repeat a matrix, got {targets}")
        return self.num_layers * sum(rank * sum(shapes[t]) for t in targets)


LLAMA_2_7B = DecoderConfig(32000, 4096, 32, 32, 11008)
"""Llama 2 7B: 6,738,415,616 parameters (untied head, RMSNorm, SwiGLU, no biases, RoPE)."""

LLAMA_3_8B = DecoderConfig(128256, 4096, 32, 32, 14336, num_kv_heads=8)
"""Llama 3 8B: 8,030,261,248 parameters (as Llama 2, plus grouped-query attention, 8 KV heads)."""

GPT2_SMALL = DecoderConfig(
    50257,
    768,
    12,
    12,
    3072,
    gated_mlp=False,
    tied_embeddings=True,
    bias=True,
    norm="layernorm",
    max_positions=1024,
)
"""GPT-2 small: 124,439,808 parameters (tied head, learned positions, LayerNorm, GELU MLP)."""

PRESETS: dict[str, DecoderConfig] = {
    "gpt2-small": GPT2_SMALL,
    "llama-2-7b": LLAMA_2_7B,
    "llama-3-8b": LLAMA_3_8B,
}


def tiny_transformer_config(
    vocab_size: int,
    seq_len: int,
    d_model: int = 64,
    num_heads: int = 4,
    num_layers: int = 2,
    mlp_dim: int | None = None,
    tied_embeddings: bool = False,
) -> DecoderConfig:
    """The :class:`DecoderConfig` of ``fedlab.models.tiny_transformer`` with the same arguments.

    GPT-2 conventions: learned positions (``max_positions=seq_len``), LayerNorm with offset,
    biases everywhere, a two-matrix GELU MLP of width ``mlp_dim`` (default ``4 * d_model``).

    Example:
        >>> tiny_transformer_config(256, 64).num_parameters()
        137216
    """
    d_model = check_int("d_model", d_model, low=1)
    mlp_dim = 4 * d_model if mlp_dim is None else check_int("mlp_dim", mlp_dim, low=1)
    return DecoderConfig(
        vocab_size,
        d_model,
        num_layers,
        num_heads,
        mlp_dim,
        gated_mlp=False,
        tied_embeddings=tied_embeddings,
        bias=True,
        norm="layernorm",
        max_positions=check_int("seq_len", seq_len, low=1),
    )


def upload_bytes(num_values: int, bits_per_value: float = 32.0) -> int:
    """Bytes to send ``num_values`` numbers at ``bits_per_value`` bits each (rounded up).

    32 bits is float32, 16 is float16/bfloat16, 8 or fewer is a quantized (compressed) update.

    Example:
        >>> upload_bytes(LLAMA_2_7B.num_parameters(), bits_per_value=16)  # full update, fp16
        13476831232
        >>> upload_bytes(LLAMA_2_7B.lora_parameters(8))  # LoRA r=8 on q, v, fp32
        16777216
    """
    num_values = check_int("num_values", num_values, low=0)
    bits = check_float("bits_per_value", bits_per_value, low=0.0, high=64.0, low_inclusive=False)
    return math.ceil(num_values * bits / 8)


def upload_seconds(num_bytes: int, uplink_mbit_per_s: float) -> float:
    """Seconds to upload ``num_bytes`` over an uplink of ``uplink_mbit_per_s`` megabits/second.

    One megabit is 10**6 bits; protocol overhead and latency are ignored.

    Example:
        >>> upload_seconds(16_777_216, uplink_mbit_per_s=10.0)
        13.4217728
    """
    num_bytes = check_int("num_bytes", num_bytes, low=0)
    rate = check_float("uplink_mbit_per_s", uplink_mbit_per_s, low=0.0, low_inclusive=False)
    return num_bytes * 8 / (rate * 1e6)


def upload_comparison(
    config: DecoderConfig,
    rank: int = 8,
    targets: Iterable[str] = ("q", "v"),
    uplink_mbit_per_s: float = 10.0,
    bits_per_value: Iterable[float] = (32.0, 16.0, 8.0),
) -> list[dict]:
    """One client's upload per round: full model vs LoRA adapters, at several precisions.

    Returns rows ``{"update", "bits_per_value", "values", "bytes", "seconds"}`` (``update`` is
    ``"full"`` or ``"lora"``), ready for ``pandas.DataFrame(rows)``.

    Example:
        >>> rows = upload_comparison(LLAMA_2_7B, rank=8, bits_per_value=[16])
        >>> [(r["update"], round(r["seconds"], 1)) for r in rows]
        [('full', 10781.5), ('lora', 6.7)]
    """
    if not isinstance(config, DecoderConfig):
        raise ValueError(f"config must be a DecoderConfig, got {type(config).__name__}")
    counts = {"full": config.num_parameters(), "lora": config.lora_parameters(rank, targets)}
    rows = []
    for update, values in counts.items():
        for bits in bits_per_value:
            size = upload_bytes(values, bits)
            rows.append(
                {
                    "update": update,
                    "bits_per_value": float(bits),
                    "values": values,
                    "bytes": size,
                    "seconds": upload_seconds(size, uplink_mbit_per_s),
                }
            )
    return rows


_MLP_LAYERS = {"up": "mlp_up", "down": "mlp_down"}  # tiny_transformer's Dense layer names


def enable_lora(
    model: keras.Model,
    rank: int,
    targets: Iterable[str] = ("q", "v"),
    lora_alpha: float | None = None,
) -> keras.Model:
    """Freeze ``model`` and add rank-``rank`` LoRA adapters to the ``targets`` layers.

    Every existing weight (biases and LayerNorms included) becomes non-trainable; then each
    target gets Keras's ``enable_lora(rank, lora_alpha)``, whose factors ``lora_kernel_a`` and
    ``lora_kernel_b`` are the only trainable weights (scaled by ``lora_alpha / rank``; ``None``
    means ``alpha = rank``). Targets: ``"q"``, ``"k"``, ``"v"``, ``"o"``, every
    ``MultiHeadAttention`` layer's projections; ``"up"``, ``"down"``, the MLP ``Dense`` layers of
    :func:`fedlab.models.tiny_transformer` (named ``*mlp_up``, ``*mlp_down``); ``"embedding"``,
    its ``token_embedding``. ``B`` starts at zero, so the model's outputs are unchanged until
    training moves it. Keras factors an ``EinsumDense`` kernel over its last axis: a query, key
    or value kernel ``(d, heads, head_dim)`` gets ``r * (d * heads + head_dim)`` weights, the
    output kernel ``(heads, head_dim, d)`` gets ``r * (d + d)``; a ``Dense`` or ``Embedding``
    ``d_in x d_out`` gets ``r * (d_in + d_out)``. The model must be built; modifies it in place
    and returns it.

    Example:
        >>> from fedlab.models import tiny_transformer
        >>> model = enable_lora(tiny_transformer(256, 64), rank=4, targets=["o"])
        >>> sum(int(w.numpy().size) for w in model.trainable_weights)  # 2 layers x 4 x (64 + 64)
        1024
    """
    rank = check_int("rank", rank, low=1)
    if lora_alpha is not None:
        lora_alpha = check_float("lora_alpha", lora_alpha, low=0.0, low_inclusive=False)
    targets = list(targets)
    if not targets:
        raise ValueError("targets must name at least one projection, got none")
    allowed = [*_ATTENTION_PROJECTIONS, *_MLP_LAYERS, "embedding"]
    for target in targets:
        check_choice("targets", target, allowed)
    if len(set(targets)) != len(targets):
        raise ValueError(f"targets must not repeat a projection, got {targets}")
    if not isinstance(model, keras.Model) or not model.built:
        raise ValueError("model must be a built keras.Model")
    layers = list(model._flatten_layers())
    chosen = []
    for target in targets:
        if target in _ATTENTION_PROJECTIONS:
            found = [
                getattr(layer, _ATTENTION_PROJECTIONS[target])
                for layer in layers
                if isinstance(layer, keras.layers.MultiHeadAttention)
            ]
        elif target in _MLP_LAYERS:
            found = [
                layer
                for layer in layers
                if isinstance(layer, keras.layers.Dense)
                and layer.name.endswith(_MLP_LAYERS[target])
            ]
        else:
            found = [layer for layer in layers if layer.name == "token_embedding"]
        if not found:
            raise ValueError(f"model has no layers for LoRA target {target!r}")
        chosen += found
    for variable in model.weights:
        variable.trainable = False
    for layer in chosen:
        layer.enable_lora(rank, lora_alpha=lora_alpha)
    return model
