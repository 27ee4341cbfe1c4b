"""Federated fine-tuning of a pre-trained transformer: what is trained, what travels, what stays
frozen, and the engine == step functions for a LoRA model on padded next-word data."""

import numpy as np
import pytest

from fedlab import steps
from fedlab.algorithms import FedAvg
from fedlab.engine import Simulation
from fedlab.fine_tuning import FineTuning, pretrain
from fedlab.keyboard import keyboard, next_token_accuracy, perplexity
from fedlab.models import num_parameters, tiny_transformer

D, MLP_DIM = 16, 32


@pytest.fixture(scope="module")
def data():
    return keyboard(num_clients=4, sentences_per_client=12, seq_len=8, public_sentences=96)


@pytest.fixture(scope="module")
def pretrained(data):
    return pretrain(
        transformer, data.x_public, data.y_public, epochs=2, ignore_class=data.ignore_class
    )


def transformer():
    return tiny_transformer(
        len(keyboard(1, 2).vocab), 8, d_model=D, num_heads=2, num_layers=1, mlp_dim=MLP_DIM
    )


ALGO = FedAvg(client_lr=0.5, local_epochs=1, batch_size=4)


def test_pretraining_is_seeded_and_learns(data, pretrained):
    again = pretrain(transformer, data.x_public, data.y_public, epochs=2, ignore_class=0)
    for a, b in zip(pretrained, again, strict=True):
        np.testing.assert_array_equal(a, b)
    fresh = Simulation(ALGO, transformer, data, data.split()).evaluate()[0]
    tuned = Simulation(ALGO, FineTuning(transformer, pretrained, "full"), data, data.split())
    assert tuned.evaluate()[0] < fresh - 0.3  # per-token loss drops clearly


@pytest.mark.parametrize(
    "variant, kwargs, trainable",
    [
        ("full", {}, None),
        ("lora", {"rank": 3, "targets": ("up",)}, 3 * (D + MLP_DIM)),  # r·(d_in + d_out)
        ("lora", {"rank": 2, "targets": ("up", "down")}, 2 * 2 * (D + MLP_DIM)),
        ("head", {}, D * 218 + 218),
        (
            "bitfit",
            {},
            3 * D + D + MLP_DIM + D + 218,
        ),  # q, k, v (heads·head_dim), o, up, down, logits
    ],
)
def test_each_variant_trains_exactly_its_weights_and_sends_only_them(
    data, pretrained, variant, kwargs, trainable
):
    make = FineTuning(transformer, pretrained, variant, **kwargs)
    sim = Simulation(ALGO, make, data, data.split(), clients_per_round=3, seed=0)
    total = num_parameters(pretrained)
    if trainable is None:
        trainable = total
    assert num_parameters(sim.weights) == trainable
    frozen = total if variant == "lora" else total - trainable  # LoRA adds weights, others freeze
    assert sim.history.config.get("num_frozen_parameters", 0) == frozen
    record = sim.step()
    assert record.bytes_up == record.bytes_down == 3 * 4 * trainable
    assert sim.history.config["fine_tuning"]["variant"] == variant


@pytest.mark.parametrize("strategy", ["vectorized", "loop"])
def test_lora_frozen_kernels_are_bit_identical_after_federated_training(data, pretrained, strategy):
    make = FineTuning(transformer, pretrained, "lora", rank=2, targets=("q", "v", "up"))
    sim = Simulation(ALGO, make, data, data.split(), seed=0, strategy=strategy)
    start = [w.copy() for w in sim.weights]
    sim.run(2, progress=False)
    after = [v.numpy() for v in sim.global_model().non_trainable_variables]
    before = [v.numpy() for v in make().non_trainable_variables]  # the pre-trained weights
    assert len(after) == len(before) == len(pretrained)  # LoRA freezes every pre-trained weight
    for a, b in zip(after, before, strict=True):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(start, sim.weights, strict=True))


@pytest.mark.parametrize("strategy", ["vectorized", "loop"])
def test_engine_equals_steps_for_a_lora_model_on_padded_sequences(data, pretrained, strategy):
    make = FineTuning(transformer, pretrained, "lora", rank=2, targets=("q", "v"))
    split = data.split()
    sim = Simulation(ALGO, make, data, split, clients_per_round=3, seed=5, strategy=strategy)
    model, weights = steps.initialize(make, data.x_train, seed=5)
    for a, b in zip(sim.weights, weights, strict=True):
        np.testing.assert_array_equal(a, b)
    for round_num in (1, 2):
        by_hand = steps.run_round(model, weights, data, split, ALGO, 3, round_num, seed=5)
        weights = by_hand.weights
        record = sim.step()
        np.testing.assert_allclose(record.client_loss, [r.loss for r in by_hand.clients], rtol=1e-4)
        for got, want in zip(sim.weights, weights, strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
    loss, accuracy = steps.evaluate(model, weights, data.x_test, data.y_test, ignore_class=0)
    assert record.test_loss == pytest.approx(loss, rel=1e-4)
    assert record.test_accuracy == pytest.approx(accuracy)


def test_test_metrics_are_per_token_without_padding(data, pretrained):
    sim = Simulation(ALGO, FineTuning(transformer, pretrained, "full"), data, data.split())
    loss, accuracy = sim.evaluate()
    logits = sim.global_model()(data.x_test).numpy()
    assert accuracy == pytest.approx(next_token_accuracy(logits, data.y_test))
    assert np.exp(loss) == pytest.approx(perplexity(logits, data.y_test), rel=1e-4)
    sim.step()
    assert sim.history.perplexity[-1] == pytest.approx(np.exp(sim.history.test_loss[-1]))


def test_fine_tuning_rejects_bad_settings(data, pretrained):
    with pytest.raises(ValueError, match="variant"):
        FineTuning(transformer, pretrained, "prefix")
    with pytest.raises(ValueError, match="rank"):
        FineTuning(transformer, pretrained, "lora", rank=0)
    with pytest.raises(ValueError, match="head"):
        FineTuning(transformer, pretrained, "head", head="nope")()
    with pytest.raises(ValueError, match="weights do not fit"):
        FineTuning(transformer, pretrained[:-1], "full")()
    with pytest.raises(ValueError, match="targets"):
        FineTuning(transformer, pretrained, "lora", targets=("gate",))()
    with pytest.raises(TypeError, match="model_fn"):
        FineTuning("transformer", pretrained)


def test_frozen_a_trains_only_b_so_averaging_b_averages_the_updates_exactly(data, pretrained):
    make = FineTuning(transformer, pretrained, "lora", rank=2, targets=("up",), train_a=False)
    sim = Simulation(ALGO, make, data, data.split(), clients_per_round=3, seed=0)
    assert num_parameters(sim.weights) == 2 * MLP_DIM  # only B: r × d_out
    model, start = steps.initialize(make, data.x_train, seed=0)
    a = next(v.numpy() for v in model.non_trainable_variables if v.name == "lora_kernel_a")
    by_hand = steps.run_round(model, start, data, data.split(), ALGO, 3, 1, seed=0)
    sim.step()
    products = [a @ (start[0] + r.delta[0]) for r in by_hand.clients]
    shares = np.array([r.num_examples for r in by_hand.clients], float)
    average = sum(s * p for s, p in zip(shares / shares.sum(), products, strict=True))
    np.testing.assert_allclose(a @ sim.weights[0], average, rtol=1e-4, atol=1e-6)
