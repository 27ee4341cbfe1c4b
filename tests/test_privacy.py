"""DP-FedAvg: clipping bounds each client, the noise is seeded, ε comes from dp-accounting, and
the engine and the step functions agree."""

import math

import dp_accounting
import numpy as np
import pytest
from dp_accounting.pld import pld_privacy_accountant
from dp_accounting.rdp import rdp_privacy_accountant

from fedlab import partition, steps
from fedlab.engine import Simulation, simulate
from fedlab.models import model_fn
from fedlab.privacy import (
    DPFedAvg,
    PrivacyAccountant,
    calibrate_noise_multiplier,
    clip_updates,
    dp_aggregate,
    epsilon,
)

MLP = model_fn("mlp", 10)


@pytest.fixture(scope="module")
def split(digits):
    return partition.iid(digits.y_train[:400], num_clients=10, seed=0)


@pytest.mark.parametrize("kind", ["rdp", "pld"])
def test_epsilon_is_dp_accounting_called_directly(kind):
    make = {
        "rdp": rdp_privacy_accountant.RdpAccountant,
        "pld": pld_privacy_accountant.PLDAccountant,
    }[kind]
    direct = make()
    event = dp_accounting.PoissonSampledDpEvent(0.05, dp_accounting.GaussianDpEvent(1.1))
    direct.compose(event, 60)
    assert epsilon(1.1, 0.05, 60, delta=1e-5, accountant=kind) == pytest.approx(
        direct.get_epsilon(1e-5)
    )


def test_epsilon_rises_with_rounds_and_sampling_and_falls_with_noise():
    base = epsilon(1.0, 0.1, 50)
    assert epsilon(1.0, 0.1, 100) > base
    assert epsilon(1.0, 0.2, 50) > base
    assert epsilon(2.0, 0.1, 50) < base
    assert epsilon(1.0, 0.1, 0) == 0.0 and epsilon(0.0, 0.1, 5) == math.inf


def test_calibrated_noise_reaches_the_target_epsilon():
    z = calibrate_noise_multiplier(target_epsilon=3.0, sampling_rate=0.1, num_rounds=40)
    assert epsilon(z, 0.1, 40) <= 3.0 + 1e-6
    assert epsilon(0.97 * z, 0.1, 40) > 3.0  # and not much more noise than needed


def test_accountant_composes_round_by_round():
    acc = PrivacyAccountant(0.9, 0.2, delta=1e-6)
    values = [acc.step() for _ in range(5)]
    assert values == sorted(values)
    assert values[-1] == pytest.approx(epsilon(0.9, 0.2, 5, delta=1e-6))


def test_clipping_bounds_every_clients_contribution():
    rng = np.random.default_rng(0)
    stacked = [rng.normal(size=(7, 3, 4)) * rng.uniform(0, 5, (7, 1, 1)), rng.normal(size=(7, 4))]
    clipped, norms = clip_updates(stacked, clip_norm=1.5)
    after = np.sqrt(sum(np.sum(c.reshape(7, -1) ** 2, axis=1) for c in clipped))
    assert np.all(after <= 1.5 + 1e-9)
    short = norms <= 1.5
    for c, d in zip(clipped, stacked, strict=True):
        np.testing.assert_allclose(c[short], d[short])  # short updates pass unchanged
    np.testing.assert_allclose(after[~short], 1.5)


def test_aggregate_without_noise_or_clipping_is_the_sum_over_the_expected_count():
    stacked = [np.arange(12.0).reshape(3, 4)]
    agg, stats = dp_aggregate(stacked, math.inf, 0.0, 2.0, np.random.default_rng(0))
    np.testing.assert_allclose(agg[0], stacked[0].sum(axis=0) / 2.0)
    assert stats.noise_norm == 0 and stats.clipped_fraction == 0


def test_noise_has_the_promised_standard_deviation():
    agg, stats = dp_aggregate([np.zeros((0, 20000))], 0.5, 2.0, 4.0, np.random.default_rng(1))
    assert np.std(agg[0]) == pytest.approx(2.0 * 0.5 / 4.0, rel=0.02)
    assert stats.update_norm == 0 and math.isnan(stats.clipped_fraction)


def test_dp_fedavg_without_noise_or_clipping_is_fedavg_over_the_expected_count(digits, split):
    algo = DPFedAvg(noise_multiplier=0.0, clip_norm=math.inf, client_lr=0.1)
    model, weights = steps.initialize(MLP, digits.x_train, seed=0)
    result = steps.run_round(model, weights, digits, split, algo, 4, round_num=1, seed=0)
    total = [sum(r.delta[i] for r in result.clients) for i in range(len(weights))]
    for a, t in zip(result.aggregated_delta, total, strict=True):
        np.testing.assert_allclose(a, t / 4, rtol=1e-5, atol=1e-7)  # q·N = 4 expected clients
    # FedAvg on the same sampled clients (equal sizes here): the same update, up to K / (q·N)
    fedavg = steps.aggregate([r.delta for r in result.clients], [40] * len(result.clients))
    scale = len(result.clients) / 4
    for a, f in zip(result.aggregated_delta, fedavg, strict=True):
        np.testing.assert_allclose(a, scale * f, rtol=1e-5, atol=1e-7)
    assert {r.num_examples for r in result.clients} == {40}


@pytest.mark.parametrize("strategy", ["vectorized", "loop"])
def test_engine_equals_steps_with_clipping_and_noise_and_records_epsilon(digits, split, strategy):
    algo = DPFedAvg(noise_multiplier=0.7, clip_norm=0.3, client_lr=0.2)
    sim = Simulation(algo, MLP, digits, split, clients_per_round=4, seed=3, strategy=strategy)
    model, weights = steps.initialize(MLP, digits.x_train, seed=3)
    for round_num in (1, 2, 3):
        by_hand = steps.run_round(model, weights, digits, split, algo, 4, round_num, seed=3)
        weights = by_hand.weights
        record = sim.step()
        assert record.clients == tuple(r.client_id for r in by_hand.clients)
        for got, want in zip(sim.weights, weights, strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
        for key, value in by_hand.aggregation_info.items():
            assert getattr(record, key) == pytest.approx(value, rel=1e-4, nan_ok=True)
        assert record.epsilon == pytest.approx(epsilon(0.7, 0.4, round_num))
    assert 0 < sim.history.clipped_fraction[-1] <= 1


def test_poisson_sampling_varies_the_count_and_empty_rounds_still_add_noise(digits, split):
    algo = DPFedAvg(noise_multiplier=1.0, clip_norm=0.1)
    history = simulate(algo, MLP, digits, split, 12, clients_per_round=1, seed=0, progress=False)
    counts = history.num_participants
    assert len(set(counts)) > 1 and 0 in counts  # q = 0.1 of 10 clients
    empty = int(np.flatnonzero(counts == 0)[0])
    assert history.rounds[empty].noise_norm > 0
    assert np.all(np.diff(history.epsilon) > 0)  # every round is accounted, empty or not


def test_same_seed_same_noise(digits, split):
    algo = DPFedAvg(noise_multiplier=1.0, clip_norm=0.5)

    def go(seed):
        return simulate(algo, MLP, digits, split, 3, clients_per_round=3, seed=seed, progress=False)

    assert go(1).matches(go(1)) and not go(1).matches(go(2))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"noise_multiplier": -1.0}, "noise_multiplier"),
        ({"clip_norm": 0.0}, "clip_norm"),
        ({"delta": 1.0}, "delta"),
        ({"accountant": "moments"}, "accountant"),
    ],
)
def test_bad_settings_raise_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DPFedAvg(**kwargs)


def test_accounting_functions_check_their_arguments():
    with pytest.raises(ValueError, match="sampling_rate"):
        epsilon(1.0, 0.0, 10)
    with pytest.raises(ValueError, match="target_epsilon"):
        calibrate_noise_multiplier(0.0, 0.1, 10)
    with pytest.raises(ValueError, match="num_rounds"):
        epsilon(1.0, 0.1, -1)


def test_warm_up_works_when_poisson_sampling_picks_nobody(digits, split):
    algo = DPFedAvg(noise_multiplier=1.0, clip_norm=0.5)
    seed = next(s for s in range(100) if len(steps.sample_clients(10, 1, 1, s, algo)) == 0)
    sim = Simulation(algo, MLP, digits, split, clients_per_round=1, seed=seed)
    assert sim.warm_up() > 0 and len(sim.history) == 0
    assert sim.step().clients == ()  # and the real first round indeed has no clients
