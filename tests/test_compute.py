"""fedlab.compute: exact FLOP and memory counts on tiny hand-computable models."""

import keras
import numpy as np
import pytest

from fedlab.compute import TrainingCost, training_cost
from fedlab.large_models import enable_lora
from fedlab.models import FedModel, tiny_transformer

# tiny_transformer(vocab_size=64, seq_len=8, d_model=16, num_heads=2, num_layers=1)
V, T, D, H, MLP = 64, 8, 16, 2, 64


def mlp() -> keras.Model:
    model = keras.Sequential([keras.layers.Dense(128), keras.layers.Dense(10)])
    model(np.zeros((1, 64), "float32"))
    return model


def transformer() -> keras.Model:
    return tiny_transformer(vocab_size=V, seq_len=T, d_model=D, num_heads=H, num_layers=1)


def transformer_macs() -> tuple[int, int]:
    """Per-example multiply-adds of the tiny transformer: (matrix products, attention products)."""
    per_position = 4 * D * D + 2 * D * MLP + D * V  # q, k, v, o; MLP up, down; logits
    attention = T * T * H * (D // H + D // H)  # scores Q K^T + weighted sum P V
    return T * per_position, attention


def test_mlp_forward_flops_exact_and_training_is_three_times_forward():
    cost = training_cost(mlp(), batch_size=32)
    assert cost.forward_flops == 2 * (64 * 128 + 128 * 10)
    assert cost.train_flops == 3 * cost.forward_flops
    assert cost.num_parameters == cost.trainable_parameters == 64 * 128 + 128 + 128 * 10 + 10
    assert cost.activation_bytes == 32 * (128 + 10) * 4  # hidden output + logits
    assert cost.flops(num_examples=100) == 100 * cost.train_flops


def test_subclassed_model_is_traced_like_the_sequential_one():
    model = FedModel(num_classes=10)
    model(np.zeros((1, 64), "float32"))
    assert training_cost(model, batch_size=1).forward_flops == 2 * (64 * 128 + 128 * 10)


def test_head_only_needs_backward_through_the_head_only():
    model = mlp()
    model.layers[0].trainable = False
    cost = training_cost(model, batch_size=32)
    forward = 2 * (64 * 128 + 128 * 10)
    # Head: input gradients (its forward FLOPs) + weight gradients (its forward FLOPs again).
    assert cost.forward_flops == forward
    assert cost.train_flops == forward + 2 * (2 * 128 * 10)
    assert cost.trainable_parameters == 128 * 10 + 10
    assert cost.gradient_bytes == 4 * (128 * 10 + 10)


def test_lora_on_a_dense_layer_adds_the_adapter_path():
    rank, d_in, d_out, positions = 3, 12, 20, 5
    inputs = keras.Input((positions, d_in))
    layer = keras.layers.Dense(d_out)
    model = keras.Model(inputs, layer(inputs))
    before = training_cost(model, batch_size=1)
    layer.enable_lora(rank)
    after = training_cost(model, batch_size=1)
    assert before.forward_flops == 2 * positions * d_in * d_out
    assert after.forward_flops - before.forward_flops == positions * 2 * rank * (d_in + d_out)
    assert after.trainable_parameters == rank * (d_in + d_out) + d_out  # A, B and the bias
    lora = positions * 2 * rank * (d_in + d_out)
    # Input gradients through kernel + adapter, weight gradients of the adapter only.
    assert after.train_flops == 2 * after.forward_flops + lora


def test_transformer_flops_match_the_hand_formula():
    matmuls, attention = transformer_macs()
    cost = training_cost(transformer(), batch_size=4)
    assert cost.forward_flops == 2 * (matmuls + attention)
    assert cost.train_flops == 3 * cost.forward_flops
    assert cost.num_parameters == transformer().count_params()


def test_transformer_lora_flops_match_the_hand_formula():
    rank, head_dim = 2, D // H
    model = enable_lora(transformer(), rank=2, targets=["q", "v"])
    matmuls, attention = transformer_macs()
    # q and v: x @ A with A (D, H, r), then @ B with B (r, head_dim), per position.
    lora = 2 * T * (D * H * rank + H * rank * head_dim)
    cost = training_cost(model, batch_size=4)
    assert cost.forward_flops == 2 * (matmuls + attention + lora)
    # Backprop starts at the attention layer (embeddings have no FLOPs): input gradients of every
    # product, twice for attention's two activation operands, plus the adapters' weight gradients.
    backward = matmuls + attention + lora + attention + lora
    assert cost.train_flops == cost.forward_flops + 2 * backward
    assert cost.trainable_parameters == 2 * rank * (D * H + head_dim)


def test_memory_parts():
    cost = training_cost(transformer(), batch_size=4, optimizer="adam")
    assert cost.gradient_bytes == 4 * cost.trainable_parameters
    assert cost.weight_bytes == 4 * cost.num_parameters
    assert cost.optimizer_bytes == 2 * cost.gradient_bytes
    momentum = training_cost(transformer(), batch_size=4, optimizer="momentum")
    assert momentum.optimizer_bytes == cost.gradient_bytes
    assert training_cost(transformer(), batch_size=4).optimizer_bytes == 0
    half = training_cost(transformer(), batch_size=4, optimizer="adam", bytes_per_value=2)
    assert 2 * half.peak_memory_bytes == cost.peak_memory_bytes
    doubled = training_cost(transformer(), batch_size=8, optimizer="adam")
    assert doubled.activation_bytes == 2 * cost.activation_bytes
    assert cost.peak_memory_bytes == sum(
        [cost.weight_bytes, cost.gradient_bytes, cost.optimizer_bytes, cost.activation_bytes]
    )


def test_full_fine_tuning_needs_more_than_lora_and_head_only_keeps_fewer_activations():
    full = training_cost(transformer(), batch_size=8, optimizer="adam")
    lora = training_cost(enable_lora(transformer(), rank=2), batch_size=8, optimizer="adam")
    head_model = transformer()
    for layer in head_model.layers[:-1]:
        layer.trainable = False
    head = training_cost(head_model, batch_size=8, optimizer="adam")
    assert full.peak_memory_bytes > lora.peak_memory_bytes
    assert lora.activation_bytes < full.activation_bytes
    assert head.activation_bytes < lora.activation_bytes
    # Head-only keeps the final LayerNorm's output (the head's input) and the logits.
    assert head.activation_bytes == 8 * T * (D + V) * 4
    assert head.train_flops == head.forward_flops + 2 * 2 * T * D * V
    assert full.fits(full.peak_memory_bytes) and not full.fits(lora.peak_memory_bytes)
    assert lora.fits(lora.peak_memory_bytes)


def test_summary_is_json_friendly():
    import json

    row = training_cost(mlp(), batch_size=32, optimizer="adam").summary()
    assert json.loads(json.dumps(row)) == row
    assert row["batch_size"] == 32
    assert row["peak_mb"] == round((4 * 4 * 9610 + 32 * 138 * 4) / 1e6, 3)


def test_bad_arguments():
    with pytest.raises(TypeError, match="model"):
        training_cost("mlp", batch_size=1)
    with pytest.raises(TypeError, match="built"):
        training_cost(keras.Sequential([keras.layers.Dense(2)]), batch_size=1)
    with pytest.raises(ValueError, match="batch_size"):
        training_cost(mlp(), batch_size=0)
    with pytest.raises(TypeError, match="batch_size"):
        training_cost(mlp(), batch_size=1.5)
    with pytest.raises(ValueError, match="optimizer"):
        training_cost(mlp(), batch_size=1, optimizer="adagrad")
    with pytest.raises(ValueError, match="bytes_per_value"):
        training_cost(mlp(), batch_size=1, bytes_per_value=0)
    cost = TrainingCost(1, 1, 2, 6, 4, 4, 0, 8, 1)
    with pytest.raises(ValueError, match="num_examples"):
        cost.flops(-1)


def test_conv_and_einsum_flops():
    from fedlab.models import small_cnn

    cnn = small_cnn(10)
    cnn(np.zeros((1, 8, 8, 1), "float32"))
    # 2 x kernel size x output positions: 8x8 after conv1, 4x4 after pooling; then logits.
    expected = 2 * (8 * 8 * 3 * 3 * 1 * 16 + 4 * 4 * 3 * 3 * 16 * 32 + 32 * 10)
    assert training_cost(cnn, batch_size=1).forward_flops == expected
    x = keras.Input((5, 12))
    model = keras.Model(x, keras.layers.EinsumDense("...b,bc->...c", output_shape=7)(x))
    assert training_cost(model, batch_size=1).forward_flops == 2 * 5 * 12 * 7
