"""Parameter counts of large decoders by formula, and the tiny Keras transformer they describe."""

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedlab.large_models import (
    GPT2_SMALL,
    LLAMA_2_7B,
    LLAMA_3_8B,
    PRESETS,
    DecoderConfig,
    enable_lora,
    tiny_transformer_config,
    upload_bytes,
    upload_comparison,
    upload_seconds,
)
from fedlab.models import tiny_transformer

# Two small configurations (tied and untied) used throughout; kept tiny for 2 CPU cores.
SMALL = dict(vocab_size=50, seq_len=8, d_model=16, num_heads=2, num_layers=2, mlp_dim=24)
TIED = dict(vocab_size=37, seq_len=6, d_model=12, num_heads=3, num_layers=1, tied_embeddings=True)


def n_weights(variables) -> int:
    return sum(int(np.prod(v.shape)) for v in variables)


def built(seed=0, **kwargs) -> keras.Model:
    keras.utils.set_random_seed(seed)
    return tiny_transformer(**kwargs)


def tokens(config, batch=2, seed=1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, config["vocab_size"], (batch, config["seq_len"])).astype("int32")


# --- published counts, and the same numbers written out by hand -----------------------------


def test_llama_2_7b_matches_published_count_and_hand_computation():
    d, m, v, n = 4096, 11008, 32000, 32
    by_hand = 2 * v * d + n * (4 * d * d + 3 * d * m + 2 * d) + d
    assert by_hand == 6_738_415_616
    assert LLAMA_2_7B.num_parameters() == by_hand


def test_gpt2_small_matches_published_count_and_hand_computation():
    d, m, v, n, positions = 768, 3072, 50257, 12, 1024
    attention = 4 * d * d + 4 * d  # q, k, v, o with biases
    mlp = 2 * d * m + m + d  # up and down with biases
    norms = 2 * 2 * d  # two LayerNorms, scale + offset
    by_hand = v * d + positions * d + n * (attention + mlp + norms) + 2 * d  # tied head
    assert by_hand == 124_439_808
    assert GPT2_SMALL.num_parameters() == by_hand
    assert GPT2_SMALL.parameter_breakdown()["lm_head"] == 0


def test_llama_3_8b_gqa_matches_published_count():
    assert LLAMA_3_8B.num_parameters() == 8_030_261_248
    assert set(PRESETS.values()) == {GPT2_SMALL, LLAMA_2_7B, LLAMA_3_8B}


def test_gqa_shrinks_only_key_and_value():
    mha = DecoderConfig(1000, 64, 2, 8, 128)
    gqa = DecoderConfig(1000, 64, 2, 8, 128, num_kv_heads=2)
    assert gqa.matrix_shapes()["k"] == gqa.matrix_shapes()["v"] == (64, 16)
    assert gqa.matrix_shapes()["q"] == mha.matrix_shapes()["q"] == (64, 64)
    # per layer k and v lose 64 * (64 - 16) weights each
    assert mha.num_parameters() - gqa.num_parameters() == 2 * 2 * 64 * 48
    assert DecoderConfig(1000, 64, 2, 8, 128, num_kv_heads=8).num_parameters() == (
        mha.num_parameters()
    )


def test_breakdown_sums_to_total():
    for config in PRESETS.values():
        assert sum(config.parameter_breakdown().values()) == config.num_parameters()


# --- LoRA and upload sizes by hand -------------------------------------------------------------


def test_lora_parameters_by_hand():
    assert LLAMA_2_7B.lora_parameters(8) == 32 * 2 * 8 * (4096 + 4096) == 4_194_304
    every = ("q", "k", "v", "o", "gate", "up", "down")
    by_hand = 32 * 8 * (4 * (4096 + 4096) + 3 * (4096 + 11008))
    assert LLAMA_2_7B.lora_parameters(8, every) == by_hand
    # GQA: k and v are 4096 x 1024 in Llama 3 8B
    assert LLAMA_3_8B.lora_parameters(16, ["k"]) == 32 * 16 * (4096 + 1024)


def test_upload_bytes_and_seconds_by_hand():
    assert upload_bytes(4_194_304) == 4_194_304 * 4 == 16_777_216
    assert upload_bytes(6_738_415_616, 16) == 6_738_415_616 * 2
    assert upload_bytes(10, 1) == 2  # 10 bits round up to 2 bytes
    assert upload_bytes(0) == 0
    assert upload_seconds(1_250_000, 10.0) == pytest.approx(1.0)  # 10 Mbit at 10 Mbit/s
    assert upload_seconds(16_777_216, 100.0) == pytest.approx(16_777_216 * 8 / 1e8)


def test_upload_comparison_rows():
    rows = upload_comparison(LLAMA_2_7B, rank=8, uplink_mbit_per_s=8.0, bits_per_value=[32, 8])
    assert [(r["update"], r["bits_per_value"]) for r in rows] == [
        ("full", 32.0),
        ("full", 8.0),
        ("lora", 32.0),
        ("lora", 8.0),
    ]
    assert rows[1]["bytes"] == 6_738_415_616
    assert rows[1]["seconds"] == pytest.approx(6_738_415_616 / 1e6)  # 8 Mbit/s = 1 MB/s
    assert rows[3]["values"] == 4_194_304


# --- formula == Keras -------------------------------------------------------------------------


@pytest.mark.parametrize("config", [SMALL, TIED, {**SMALL, "tied_embeddings": True}])
def test_formula_matches_keras_count_params(config):
    model = built(**config)
    assert tiny_transformer_config(**config).num_parameters() == model.count_params()


@settings(max_examples=6, deadline=None)
@given(
    vocab_size=st.integers(2, 40),
    seq_len=st.integers(1, 6),
    head_dim=st.integers(1, 4),
    num_heads=st.integers(1, 3),
    num_layers=st.integers(1, 2),
    mlp_dim=st.integers(1, 9),
    tied_embeddings=st.booleans(),
)
def test_formula_matches_keras_for_random_configs(
    vocab_size, seq_len, head_dim, num_heads, num_layers, mlp_dim, tied_embeddings
):
    config = dict(
        vocab_size=vocab_size,
        seq_len=seq_len,
        d_model=head_dim * num_heads,
        num_heads=num_heads,
        num_layers=num_layers,
        mlp_dim=mlp_dim,
        tied_embeddings=tied_embeddings,
    )
    assert tiny_transformer_config(**config).num_parameters() == built(**config).count_params()


@given(rank=st.integers(1, 64), targets=st.sets(st.sampled_from(["q", "k", "v", "o", "up"])))
def test_lora_parameters_are_linear_in_rank(rank, targets):
    if not targets:
        return
    assert LLAMA_3_8B.lora_parameters(rank, targets) == rank * LLAMA_3_8B.lora_parameters(
        1, targets
    )


def test_documented_tiny_transformer_sizes():
    assert tiny_transformer_config(256, 64).num_parameters() == 137_216
    assert tiny_transformer_config(256, 64, tied_embeddings=True).num_parameters() == 120_576
    big = dict(d_model=256, num_heads=8, num_layers=4, tied_embeddings=True)
    assert tiny_transformer_config(8192, 256, **big).num_parameters() == 5_322_240


# --- the Keras model -------------------------------------------------------------------------


@pytest.mark.parametrize("config", [SMALL, TIED])
def test_output_shape_and_causality(config):
    model = built(**config)
    x = tokens(config)
    logits = np.asarray(model(x))
    assert logits.shape == (2, config["seq_len"], config["vocab_size"])
    t = config["seq_len"] // 2
    changed = x.copy()
    changed[:, t:] = (changed[:, t:] + 1) % config["vocab_size"]
    after = np.asarray(model(changed))
    np.testing.assert_allclose(after[:, :t], logits[:, :t], atol=1e-5)
    assert not np.allclose(after[:, t:], logits[:, t:])


def test_tied_model_shares_the_embedding_matrix():
    model = built(**TIED)
    embedding = model.get_layer("token_embedding").embeddings
    assert sum(v is embedding for v in model.weights) == 1
    h = np.ones((1, 1, TIED["d_model"]), "float32")
    np.testing.assert_allclose(
        np.asarray(model.get_layer("logits")(h))[0, 0], h[0, 0] @ embedding.numpy().T, rtol=1e-5
    )


def test_stateless_call_matches_call_and_uses_given_weights():
    model = built(**SMALL)
    x = tokens(SMALL)
    trainable = [v.value for v in model.trainable_variables]
    non_trainable = [v.value for v in model.non_trainable_variables]
    out, _ = model.stateless_call(trainable, non_trainable, x)
    np.testing.assert_allclose(np.asarray(out), np.asarray(model(x)), atol=1e-6)
    zeros = [keras.ops.zeros_like(w) for w in trainable]
    out0, _ = model.stateless_call(zeros, non_trainable, x)
    np.testing.assert_allclose(np.asarray(out0), 0.0, atol=1e-6)


def test_gradients_reach_every_weight():
    import tensorflow as tf

    model = built(**SMALL)
    x = tokens(SMALL)
    with tf.GradientTape() as tape:
        loss = keras.losses.sparse_categorical_crossentropy(x, model(x), from_logits=True)
    grads = tape.gradient(loss, model.trainable_variables)
    assert all(g is not None and np.any(np.asarray(g) != 0) for g in grads)


# --- LoRA on the attention projections --------------------------------------------------------


def test_enable_lora_on_query_value_freezes_all_else_and_keeps_logits():
    model = built(**SMALL)
    x = tokens(SMALL)
    before = np.asarray(model(x))
    frozen = n_weights(model.weights)
    for layer in model.layers:
        if isinstance(layer, keras.layers.MultiHeadAttention):
            assert callable(layer.query_dense.enable_lora)
    enable_lora(model, rank=2, targets=("q", "v"))
    names = sorted({v.path.split("/")[-1] for v in model.trainable_weights})
    assert names == ["lora_kernel_a", "lora_kernel_b"]
    d, h, hd, r, layers = 16, 2, 8, 2, 2
    # Keras factors the (d, heads, head_dim) kernel as A (d, heads, r) and B (r, head_dim)
    assert n_weights(model.trainable_weights) == layers * 2 * r * (d * h + hd)
    assert n_weights(model.non_trainable_weights) == frozen
    np.testing.assert_allclose(np.asarray(model(x)), before, atol=1e-6)
    for v in model.trainable_weights:
        if v.path.endswith("lora_kernel_b"):
            assert not np.any(v.numpy())
    # stateless_call still works, and moving B changes the logits
    trainable = [v.value for v in model.trainable_variables]
    non_trainable = [v.value for v in model.non_trainable_variables]
    out, _ = model.stateless_call(trainable, non_trainable, x)
    np.testing.assert_allclose(np.asarray(out), before, atol=1e-6)
    moved = [w + 0.1 for w in trainable]
    out, _ = model.stateless_call(moved, non_trainable, x)
    assert not np.allclose(np.asarray(out), before, atol=1e-4)


def test_enable_lora_on_output_matches_textbook_formula():
    model = enable_lora(built(**TIED), rank=3, targets=["o"])
    config = tiny_transformer_config(**TIED)
    # the output kernel (heads, head_dim, d) flattens to d x d, so r * (d + d) as in the formula
    assert n_weights(model.trainable_weights) == config.lora_parameters(3, ["o"]) == 3 * 24


# --- invalid arguments ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(vocab_size=1, seq_len=8), "vocab_size"),
        (dict(vocab_size=10, seq_len=0), "seq_len"),
        (dict(vocab_size=10, seq_len=8, d_model=10, num_heads=4), "d_model"),
        (dict(vocab_size=10, seq_len=8, num_heads=0), "num_heads"),
        (dict(vocab_size=10, seq_len=8, num_layers=0), "num_layers"),
        (dict(vocab_size=10, seq_len=8, mlp_dim=0), "mlp_dim"),
        (dict(vocab_size=10, seq_len=8, dropout=1.0), "dropout"),
        (dict(vocab_size=10, seq_len=8, tied_embeddings="yes"), "tied_embeddings"),
    ],
)
def test_tiny_transformer_rejects_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        tiny_transformer(**kwargs)


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: DecoderConfig(100, 10, 1, 4, 32), "hidden_size"),
        (lambda: DecoderConfig(100, 8, 1, 4, 32, num_kv_heads=3), "num_kv_heads"),
        (lambda: DecoderConfig(100, 8, 1, 4, 32, num_kv_heads=8), "num_kv_heads"),
        (lambda: DecoderConfig(100, 8, 0, 4, 32), "num_layers"),
        (lambda: DecoderConfig(100, 8, 1, 4, 32, norm="batchnorm"), "norm"),
        (lambda: DecoderConfig(100, 8, 1, 4, 32, bias=1), "bias"),
        (lambda: LLAMA_2_7B.lora_parameters(0), "rank"),
        (lambda: LLAMA_2_7B.lora_parameters(8, ["x"]), "targets"),
        (lambda: LLAMA_2_7B.lora_parameters(8, []), "targets"),
        (lambda: GPT2_SMALL.lora_parameters(8, ["gate"]), "targets"),
        (lambda: upload_bytes(-1), "num_values"),
        (lambda: upload_bytes(10, 0), "bits_per_value"),
        (lambda: upload_seconds(10, 0.0), "uplink_mbit_per_s"),
        (lambda: upload_comparison("llama"), "config"),
        (lambda: enable_lora(keras.Sequential([keras.layers.Dense(2)]), 2), "model"),
    ],
)
def test_large_models_reject_bad_arguments(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_enable_lora_rejects_bad_targets_and_rank():
    model = built(**TIED)
    with pytest.raises(ValueError, match="targets"):
        enable_lora(model, 2, targets=["mlp"])
    with pytest.raises(ValueError, match="rank"):
        enable_lora(model, 0)
