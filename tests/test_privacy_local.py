"""Local DP (noise on each client) against central DP-FedAvg: fedlab.privacy's local functions."""

import math

import numpy as np
import pytest

import fedlab
from fedlab import privacy


def test_local_average_noise_std_is_zs_over_sqrt_k():
    k, z, s = 25, 2.0, 0.5
    zeros = [np.zeros((k, 4000)), np.zeros((k, 1000))]  # no signal: the aggregate is pure noise
    agg, stats = privacy.local_dp_aggregate(zeros, s, z, np.random.default_rng(0))
    noise = np.concatenate([a.ravel() for a in agg])
    assert np.std(noise) == pytest.approx(z * s / math.sqrt(k), rel=0.03)  # 0.2
    assert stats.noise_norm == pytest.approx(np.linalg.norm(noise), rel=1e-5)
    assert stats.update_norm == 0.0


def test_local_noise_is_sqrt_k_times_central_noise():
    k, z, s = 16, 1.0, 1.0
    zeros = [np.zeros((k, 20000))]
    local, _ = privacy.local_dp_aggregate(zeros, s, z, np.random.default_rng(1))
    central, _ = privacy.dp_aggregate(zeros, s, z, float(k), np.random.default_rng(1))
    assert np.std(local[0]) / np.std(central[0]) == pytest.approx(math.sqrt(k), rel=0.03)


def test_local_without_noise_is_the_mean_of_clipped_updates():
    deltas = [np.array([[3.0, 4.0], [0.6, 0.0], [0.0, 0.0]])]
    agg, stats = privacy.local_dp_aggregate(deltas, 1.0, 0.0, np.random.default_rng(0))
    np.testing.assert_allclose(agg[0], [(0.6 + 0.6) / 3, 0.8 / 3], rtol=1e-6)
    assert stats.clipped_fraction == pytest.approx(1 / 3)
    assert stats.noise_norm == 0.0


def test_local_with_no_clients_gives_zeros():
    agg, stats = privacy.local_dp_aggregate(
        [np.zeros((0, 3)), np.zeros((0, 2, 2))], 1.0, 1.0, np.random.default_rng(0)
    )
    assert [a.shape for a in agg] == [(3,), (2, 2)]
    assert all(not a.any() for a in agg)
    assert math.isnan(stats.clipped_fraction)


def test_local_rejects_bad_arguments():
    with pytest.raises(ValueError, match="noise_multiplier"):
        privacy.local_dp_aggregate([np.zeros((1, 2))], 1.0, -1.0, np.random.default_rng(0))
    with pytest.raises(ValueError, match="clip_norm"):
        privacy.local_dp_aggregate([np.zeros((1, 2))], 0.0, 1.0, np.random.default_rng(0))
    with pytest.raises(ValueError, match="finite clip_norm"):
        privacy.local_dp_aggregate([np.zeros((1, 2))], math.inf, 1.0, np.random.default_rng(0))


def test_local_accountant_has_no_sampling_amplification():
    algo = privacy.LocalDPFedAvg(noise_multiplier=2.0, clip_norm=0.5)
    acc = algo.make_accountant(0.1)
    assert acc.event.sampling_probability == 1.0
    acc.step(10)
    assert acc.epsilon() == pytest.approx(privacy.epsilon(2.0, 1.0, 10))
    assert acc.epsilon() > privacy.epsilon(2.0, 0.1, 10)


def test_local_dp_fedavg_runs_in_the_engine_and_records_its_noise():
    data = fedlab.load_digits()
    split = fedlab.partition.iid(data.y_train, num_clients=20, seed=0)
    algo = privacy.LocalDPFedAvg(noise_multiplier=1.0, clip_norm=0.5, batch_size=None)
    history = fedlab.simulate(
        algo,
        fedlab.models.model_fn("mlp", 10),
        data,
        split,
        2,
        clients_per_round=10,
        seed=0,
        progress=False,
    )
    assert len(history.epsilon) == 2
    assert history.epsilon[-1] == pytest.approx(privacy.epsilon(1.0, 1.0, 2))
    assert all(n > 0 for n in history.series("noise_norm"))


# ---------------------------------------------------------------- reading the runs (notebook 11)


def _record(round_num, **numbers):
    from fedlab.history import RoundRecord

    return RoundRecord(
        round_num,
        (0,),
        (0.5,),
        (5,),
        0.5,
        0.4,
        0.5,
        (0.1,),
        0.1,
        0.1,
        (1.0,),
        8,
        8,
        0.01,
        **numbers,
    )


def test_noise_std_pools_all_arrays():
    assert privacy.noise_std([np.array([2.0, -2.0]), np.array([[2.0, -2.0]])]) == 2.0
    assert privacy.noise_std([np.zeros(3)]) == 0.0
    with pytest.raises(ValueError, match="aggregate"):
        privacy.noise_std([])


def test_noise_to_signal_averages_ratios_and_skips_empty_rounds():
    from fedlab.history import History

    h = History(
        rounds=[
            _record(1, noise_norm=4.0, update_norm=1.0),  # 4
            _record(2, noise_norm=4.0, update_norm=2.0),  # 2
            _record(3, noise_norm=4.0, update_norm=0.0),  # no signal: skipped
        ]
    )
    assert privacy.noise_to_signal(h) == pytest.approx(3.0)
    assert math.isnan(privacy.noise_to_signal(History(rounds=[_record(1)])))
    with pytest.raises(ValueError, match="history"):
        privacy.noise_to_signal([1.0])


def test_dp_table_rows_and_missing_numbers():
    from fedlab.history import History

    dp = History(
        rounds=[
            _record(1, epsilon=0.5, clipped_fraction=0.5, update_norm=1.0, noise_norm=1.0),
            _record(2, epsilon=0.75, clipped_fraction=1.0, update_norm=1.0, noise_norm=3.0),
        ]
    )
    lines = privacy.dp_table({"dp": dp, "plain": History(rounds=[_record(1)])}).splitlines()
    assert len(lines) == 3
    assert lines[1].split() == ["dp", "0.75", "0.500", "0.75", "2.0"]
    assert lines[2].split() == ["plain", "inf", "0.500", "-", "-"]
    with pytest.raises(ValueError, match="runs"):
        privacy.dp_table({})
    with pytest.raises(ValueError, match="runs\\['x'\\]"):
        privacy.dp_table({"x": History()})


def test_sampling_table_matches_the_accountant():
    rows = privacy.sampling_table([20, 100], 400, 15, 0.5, target_epsilon=4.0, noise_multiplier=1.0)
    assert [r.clients_per_round for r in rows] == [20, 100]
    assert [r.sampling_rate for r in rows] == [0.05, 0.25]
    for r in rows:
        assert r.epsilon == privacy.epsilon(1.0, r.sampling_rate, 15)
        assert privacy.epsilon(r.noise_multiplier, r.sampling_rate, 15) == pytest.approx(
            4.0, abs=0.01
        )
        assert r.noise_std == pytest.approx(r.noise_multiplier * 0.5 / r.clients_per_round)
    assert rows[1].epsilon > rows[0].epsilon  # larger q, less amplification
    assert rows[1].noise_std < rows[0].noise_std  # but less noise on the average


def test_sampling_table_rejects_bad_arguments():
    with pytest.raises(ValueError, match="clients_per_round"):
        privacy.sampling_table([500], 400, 15, 0.5, target_epsilon=4.0)
    with pytest.raises(ValueError, match="clients_per_round"):
        privacy.sampling_table([], 400, 15, 0.5, target_epsilon=4.0)
    with pytest.raises(ValueError, match="clip_norm"):
        privacy.sampling_table([40], 400, 15, 0.0, target_epsilon=4.0)


def test_format_sampling_table():
    text = privacy.format_sampling_table([privacy.SamplingRow(20, 0.05, 2.333, 0.79, 0.01975)])
    assert text.splitlines()[1].split() == ["20", "0.05", "2.33", "0.790", "0.0198"]
    with pytest.raises(ValueError, match="rows"):
        privacy.format_sampling_table([])
