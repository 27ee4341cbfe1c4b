"""Compression and compute budgets in the engine: bytes from the encoded payloads, error-feedback
residuals kept per client, and the same numbers as the step functions."""

import numpy as np
import pytest

from fedlab import partition, steps
from fedlab.algorithms import ALGORITHMS, FedAvg, FedProx
from fedlab.compression import (
    ErrorFeedback,
    Float16,
    Identity,
    RandomRotation,
    StochasticQuantizer,
    TopK,
)
from fedlab.engine import Simulation, simulate
from fedlab.models import model_fn, num_parameters

MLP = model_fn("mlp", 10)
ALGO = FedAvg(client_lr=0.1, local_epochs=1, batch_size=20)


@pytest.fixture(scope="module")
def split(digits):
    return partition.iid(digits.y_train[:400], num_clients=8, seed=0)


def run(digits, split, rounds=2, **kwargs):
    kwargs.setdefault("clients_per_round", 4)
    return simulate(ALGO, MLP, digits, split, rounds, seed=1, progress=False, **kwargs)


def test_identity_compression_changes_nothing_but_the_config(digits, split):
    plain, same = run(digits, split), run(digits, split, compression=Identity())
    for a, b in zip(plain.rounds, same.rounds, strict=True):
        assert a.bytes_up == b.bytes_up and a.bytes_down == b.bytes_down
        np.testing.assert_allclose(a.client_loss, b.client_loss, rtol=1e-6)
        assert a.test_accuracy == pytest.approx(b.test_accuracy)
    assert same.config["compression"] == {"name": "Identity"}


@pytest.mark.parametrize(
    "codec",
    [Float16(), StochasticQuantizer(bits=4), TopK(0.05), ErrorFeedback(TopK(0.01))],
    ids=["fp16", "q4", "top5%", "ef-top1%"],
)
def test_bytes_up_are_the_encoded_payload_and_bytes_down_the_float32_weights(digits, split, codec):
    sim = Simulation(ALGO, MLP, digits, split, clients_per_round=4, seed=1, compression=codec)
    record = sim.step()
    codec_only = codec.codec if isinstance(codec, ErrorFeedback) else codec
    one = codec_only.encode([np.zeros_like(w) + 0.5 for w in sim.weights], seed=0).num_bytes
    assert record.bytes_up == 4 * one
    assert record.bytes_down == 4 * 4 * num_parameters(sim.weights)
    assert record.bytes_up < record.bytes_down


def test_error_feedback_residuals_persist_per_client_also_when_not_selected(digits, split):
    sim = Simulation(
        ALGO, MLP, digits, split, clients_per_round=3, seed=1, compression=ErrorFeedback(TopK(0.01))
    )
    first = sim.step()
    norms = np.array([sum(np.sum(r[k] ** 2) for r in sim.residuals) for k in range(8)])
    assert np.all(norms[list(first.clients)] > 0)
    assert np.all(norms[[k for k in range(8) if k not in first.clients]] == 0)
    kept = [r.copy() for r in sim.residuals]
    second = sim.step()
    for k in set(range(8)) - set(second.clients):  # not selected: residual untouched
        for before, after in zip(kept, sim.residuals, strict=True):
            np.testing.assert_array_equal(before[k], after[k])


@pytest.mark.parametrize("strategy", ["vectorized", "loop"])
def test_engine_equals_steps_with_error_feedback_over_rounds(digits, split, strategy):
    codec = ErrorFeedback(StochasticQuantizer(bits=2))
    sim = Simulation(
        ALGO, MLP, digits, split, clients_per_round=3, seed=2, strategy=strategy, compression=codec
    )
    model, weights = steps.initialize(MLP, digits.x_train, seed=2)
    residuals = None
    for round_num in (1, 2, 3):
        by_hand = steps.run_round(
            model,
            weights,
            digits,
            split,
            ALGO,
            3,
            round_num,
            seed=2,
            compression=codec,
            residuals=residuals,
        )
        weights, residuals = by_hand.weights, by_hand.residuals
        record = sim.step()
        assert record.bytes_up == by_hand.bytes_up
        for got, want in zip(sim.weights, weights, strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
        for k in range(8):
            for got, want in zip(sim.residuals, residuals[k], strict=True):
                np.testing.assert_allclose(got[k], want, rtol=1e-4, atol=1e-5)


def test_compress_update_error_feedback_accounting_is_exact():
    rng = np.random.default_rng(0)
    delta, previous = [rng.normal(size=(5, 3)).astype(np.float32)], [rng.normal(size=(5, 3))]
    previous = [p.astype(np.float32) for p in previous]
    sent, size, residual = steps.compress_update(ErrorFeedback(TopK(0.2)), delta, 1, 0, 0, previous)
    np.testing.assert_allclose(sent[0] + residual[0], delta[0] + previous[0], atol=1e-6)
    assert np.count_nonzero(sent[0]) == 3 and size == 3 * 8


def test_stochastic_codecs_draw_a_seeded_stream_per_round_and_client():
    delta = [np.linspace(-1, 1, 50, dtype=np.float32)]
    codec = StochasticQuantizer(bits=2)
    a = steps.compress_update(codec, delta, 1, 0, seed=0)[0][0]
    assert np.array_equal(a, steps.compress_update(codec, delta, 1, 0, seed=0)[0][0])
    assert not np.array_equal(a, steps.compress_update(codec, delta, 1, 1, seed=0)[0][0])
    assert not np.array_equal(a, steps.compress_update(codec, delta, 2, 0, seed=0)[0][0])


@pytest.mark.parametrize("name", sorted(ALGORITHMS))
def test_compression_works_with_every_algorithm(digits, split, name):
    """8-bit quantisation after a rotation, with error feedback, is nearly lossless: every
    algorithm's run stays close to its uncompressed twin while sending under half."""

    def go(compression):
        return simulate(
            ALGORITHMS[name](client_lr=0.1),
            MLP,
            digits,
            split,
            3,
            clients_per_round=4,
            seed=0,
            progress=False,
            compression=compression,
        )

    plain = go(None)
    squeezed = go(ErrorFeedback(RandomRotation(StochasticQuantizer(bits=8))))
    assert np.all(np.isfinite(squeezed.train_loss))
    np.testing.assert_allclose(squeezed.test_loss, plain.test_loss, rtol=0.02)
    # the update shrinks (rotation pads it to 2^14 values); SCAFFOLD's Δc_k still goes as float32
    assert np.all(squeezed.bytes_up < plain.bytes_up - 0.5 * (4 * 4 * 9610))


def test_compression_must_be_a_codec(digits, split):
    with pytest.raises(TypeError, match="compression must be"):
        Simulation(ALGO, MLP, digits, split, compression="topk")


@pytest.mark.parametrize("strategy", ["vectorized", "loop"])
def test_max_local_steps_caps_every_client_and_matches_steps(digits, split, strategy):
    algo = FedProx(mu=0.1, client_lr=0.1, local_epochs=2, batch_size=10)
    sim = Simulation(
        algo, MLP, digits, split, clients_per_round=4, seed=0, strategy=strategy, max_local_steps=3
    )
    record = sim.step()
    assert record.client_steps == (3, 3, 3, 3) and record.client_examples == (30, 30, 30, 30)
    model, weights = steps.initialize(MLP, digits.x_train, seed=0)
    by_hand = steps.run_round(model, weights, digits, split, algo, 4, 1, 0, max_local_steps=3)
    assert [r.num_steps for r in by_hand.clients] == [3, 3, 3, 3]
    for got, want in zip(sim.weights, by_hand.weights, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="max_local_steps"):
        Simulation(algo, MLP, digits, split, max_local_steps=0)


def test_client_examples_count_every_example_processed(digits, split):
    record = Simulation(ALGO, MLP, digits, split, clients_per_round=2, seed=0).step()
    assert record.client_examples == record.client_num_examples  # one epoch: each example once


def test_the_run_reports_client_compute_and_memory(digits, split):
    history = run(digits, split, rounds=2)
    cost = history.config["client_cost"]
    assert cost["train_gflops"] == pytest.approx(3 * 2 * (64 * 128 + 128 * 10) / 1e9)
    assert cost["batch_size"] == 20 and cost["peak_mb"] > cost["weights_mb"] > 0
    examples = [sum(r.client_examples) for r in history.rounds]
    np.testing.assert_allclose(history.client_gflops, np.array(examples) * cost["train_gflops"])


def test_max_local_steps_per_client_is_a_heterogeneous_compute_budget(digits, split):
    budgets = [1, 2, 3, 4, 5, 6, 7, 8]
    sim = Simulation(ALGO, MLP, digits, split, seed=0, max_local_steps=budgets)
    record = sim.step()
    assert record.client_steps == (1, 2, 3, 3, 3, 3, 3, 3)  # 50 examples, B=20: 3 steps at most
    model, weights = steps.initialize(MLP, digits.x_train, seed=0)
    by_hand = steps.run_round(model, weights, digits, split, ALGO, 8, 1, 0, max_local_steps=budgets)
    for got, want in zip(sim.weights, by_hand.weights, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    for bad in ([1, 2], [0] * 8, [1.5] * 8):
        with pytest.raises(ValueError, match="max_local_steps"):
            Simulation(ALGO, MLP, digits, split, max_local_steps=bad)
