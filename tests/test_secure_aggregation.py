"""Secure aggregation (Bonawitz et al. 2017): the exact quantised sum with and without dropouts,
refusal below the threshold, clear errors for malformed input, masked vectors that look uniform,
Shamir sharing, and measured message sizes that match a hand count."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from fedlab import partition, steps
from fedlab.algorithms import FedAvg
from fedlab.engine import Simulation
from fedlab.models import model_fn
from fedlab.privacy import DPFedAvg, LocalDPFedAvg
from fedlab.secure_aggregation import (
    PRIME,
    RoundConfig,
    SecureAggregation,
    SecureAggregationAborted,
    Server,
    dequantize,
    mask_breakdown,
    measure_overhead,
    modulus_bits,
    prg,
    quantization_error_bound,
    quantize,
    secure_sum,
    shamir_reconstruct,
    shamir_split,
)

SETTINGS = settings(max_examples=25, deadline=None)


def random_updates(num_clients, length, seed=0, clip=1.0):
    rng = np.random.default_rng(seed)
    return {u: rng.uniform(-clip, clip, size=length) for u in range(num_clients)}


def quantised_sum(updates, ids, clip=1.0, bits=16):
    return sum(quantize(updates[u], clip, bits) for u in ids)


# -- quantisation ------------------------------------------------------------------------------


def test_quantize_by_hand():
    # bits=2: the 3 levels -1, 0, 1 (step 1): an odd number of levels, so 0 is sent exactly
    assert quantize([-1.0, -0.4, 0.3, 1.0, 0.0], clip=1.0, bits=2).tolist() == [0, 1, 1, 2, 1]
    assert quantize([-2.0, 0.0, 2.0], clip=2.0, bits=8).tolist() == [0, 127, 254]
    np.testing.assert_allclose(dequantize([0, 2, 4], num_clients=2, bits=2), [-2.0, 0.0, 2.0])
    assert quantization_error_bound(4, clip=1.0, bits=2) == pytest.approx(2.0)


def test_modulus_bits_leaves_room_for_the_sum():
    assert modulus_bits(1, 16) == 16 and modulus_bits(2, 16) == 17
    assert modulus_bits(5, 16) == 19 and modulus_bits(8, 16) == 19 and modulus_bits(9, 16) == 20
    with pytest.raises(ValueError, match="at most 62"):
        modulus_bits(2**31, 32)


@SETTINGS
@given(
    values=st.lists(st.floats(-3.0, 3.0), min_size=1, max_size=20),
    bits=st.integers(2, 32),
)
def test_quantize_round_trip_within_half_a_step(values, bits):
    q = quantize(values, clip=3.0, bits=bits)
    assert np.all(q <= 2**bits - 2)
    error = np.abs(dequantize(q, 1, clip=3.0, bits=bits) - values)
    # half a step, plus float64 rounding of values near ±clip (a few ulps: at 25 bits the step
    # is 1.8e-7 and hypothesis found 1.9 off by the bound + 4e-16)
    assert np.all(error <= quantization_error_bound(1, clip=3.0, bits=bits) + 4 * np.spacing(3.0))


# -- the exact sum ---------------------------------------------------------------------------


def test_exact_sum_without_dropouts():
    updates = random_updates(5, 7)
    result = secure_sum(updates, threshold=3, seed=0)
    assert result.summed_ids == (0, 1, 2, 3, 4) and result.modulus_bits == 19
    assert result.sum_int.dtype == np.uint64
    np.testing.assert_array_equal(result.sum_int, quantised_sum(updates, range(5)))
    float_sum = sum(updates.values())
    assert np.max(np.abs(result.sum - float_sum)) <= result.error_bound
    assert result.error_bound == pytest.approx(5 * (2 / 65534) / 2)


def test_list_input_means_ids_zero_to_n_minus_one():
    updates = random_updates(3, 4, seed=3)
    by_list = secure_sum(list(updates.values()), seed=2)
    by_dict = secure_sum(updates, seed=2)
    np.testing.assert_array_equal(by_list.sum_int, by_dict.sum_int)


@pytest.mark.parametrize(
    ("dropouts", "late_dropouts"),
    [({6}, ()), ({5, 6}, ()), ((), {0, 3}), ({2}, {4, 6}), ({0, 1, 2}, ())],
)
def test_exact_sum_with_dropouts_above_the_threshold(dropouts, late_dropouts):
    updates = random_updates(7, 6, seed=1)
    result = secure_sum(
        updates, threshold=4, dropouts=dropouts, late_dropouts=late_dropouts, seed=5
    )
    # Clients that dropped before sending masked input are not in the sum; late ones are.
    expected_ids = tuple(u for u in range(7) if u not in dropouts)
    assert result.summed_ids == expected_ids
    np.testing.assert_array_equal(result.sum_int, quantised_sum(updates, expected_ids))
    assert set(result.masked) == set(expected_ids)


def test_non_contiguous_client_ids():
    updates = {17: [0.5, -0.5], 3: [0.25, 0.25], 42: [-1.0, 1.0], 8: [0.0, 0.0]}
    result = secure_sum(updates, threshold=3, dropouts={42}, seed=4)
    assert result.summed_ids == (3, 8, 17)
    np.testing.assert_array_equal(result.sum_int, quantised_sum(updates, (3, 8, 17)))


@SETTINGS
@given(data=st.data())
def test_exact_sum_for_any_allowed_dropout_pattern(data):
    n = data.draw(st.integers(2, 6), label="n")
    t = data.draw(st.integers(n // 2 + 1, n), label="threshold")
    drop = data.draw(st.sets(st.integers(0, n - 1), max_size=n - t), label="dropped")
    late = data.draw(st.sets(st.sampled_from(sorted(set(range(n)) - drop) or [0])), label="late")
    late = {u for u in late if u not in drop}
    late = set(sorted(late)[: n - t - len(drop)])
    updates = random_updates(n, 3, seed=n + t)
    result = secure_sum(updates, threshold=t, dropouts=drop, late_dropouts=late, bits=12, seed=t)
    ids = [u for u in range(n) if u not in drop]
    np.testing.assert_array_equal(result.sum_int, quantised_sum(updates, ids, bits=12))


def test_secure_fedavg_matches_plain_fedavg_within_the_error_bound():
    rng = np.random.default_rng(7)
    deltas = rng.normal(scale=0.1, size=(4, 20))
    counts = np.array([10, 30, 20, 40])
    plain = np.average(deltas, axis=0, weights=counts)
    # The engine's recipe: send n_u * delta_u / max(n), sum securely, divide by sum(n_u) / max(n).
    scaled = {u: np.clip(counts[u] * deltas[u] / counts.max(), -1, 1) for u in range(4)}
    result = secure_sum(scaled, seed=0)
    secure = result.sum * counts.max() / counts.sum()
    bound = result.error_bound * counts.max() / counts.sum()
    assert np.max(np.abs(secure - plain)) <= bound


# -- refusing below the threshold --------------------------------------------------------------


@pytest.mark.parametrize(
    ("dropouts", "late_dropouts", "stage"),
    [
        ({0, 1, 2}, (), "sent masked input"),
        ((), {0, 1, 2}, "survived to the unmasking round"),
        ({4}, {1, 2}, "survived to the unmasking round"),
    ],
)
def test_refuses_below_the_threshold(dropouts, late_dropouts, stage):
    updates = random_updates(5, 4)
    with pytest.raises(SecureAggregationAborted, match=f"only 2 client.*{stage}.*threshold t = 3"):
        secure_sum(updates, threshold=3, dropouts=dropouts, late_dropouts=late_dropouts)
    assert issubclass(SecureAggregationAborted, RuntimeError)


def test_server_refuses_to_unmask_with_too_few_shares():
    config = RoundConfig((0, 1, 2), threshold=2, vector_length=1, modulus_bits=4)
    server = Server(config)
    server.masked = {0: np.zeros(1, dtype=np.uint64)}
    server.receive_shares(1, {0: 5})
    with pytest.raises(SecureAggregationAborted, match="refuses to unmask"):
        server.unmask()


# -- malformed input -------------------------------------------------------------------------


def test_rejects_malformed_updates():
    good = random_updates(4, 3)
    with pytest.raises(
        ValueError, match=r"updates\[2\] has length 2 but updates\[0\] has length 3"
    ):
        secure_sum({**good, 2: [0.1, 0.2]})
    with pytest.raises(ValueError, match=r"updates\[1\].*\[-1, 1\].*got 1.5"):
        secure_sum({**good, 1: [0.0, 1.5, 0.0]})
    with pytest.raises(ValueError, match=r"updates\[3\].*finite"):
        secure_sum({**good, 3: [0.0, np.nan, 0.0]})
    with pytest.raises(ValueError, match=r"updates\[0\] must be a 1-D vector"):
        secure_sum({**good, 0: np.zeros((3, 1))})
    with pytest.raises(ValueError, match="at least 2 clients"):
        secure_sum({0: [0.0]})
    with pytest.raises(ValueError, match="client id must be an integer in"):
        secure_sum({-1: [0.0], 0: [0.0]})
    with pytest.raises(TypeError, match="client id must be an integer"):
        secure_sum({"a": [0.0], "b": [0.0]})
    with pytest.raises(TypeError, match="updates must be"):
        secure_sum(np.zeros((3, 2)))


def test_rejects_unknown_ids_and_bad_settings():
    good = random_updates(5, 3)
    with pytest.raises(
        ValueError, match=r"dropouts contains client id\(s\) \[9\].*known ids: \[0, 1, 2, 3, 4\]"
    ):
        secure_sum(good, dropouts={9})
    with pytest.raises(ValueError, match=r"late_dropouts contains client id\(s\) \[7\]"):
        secure_sum(good, late_dropouts=[7])
    with pytest.raises(ValueError, match="both dropouts and late_dropouts"):
        secure_sum(good, dropouts={1}, late_dropouts={1})
    with pytest.raises(ValueError, match=r"threshold must be an integer in \[3, 5\], got 2"):
        secure_sum(good, threshold=2)
    with pytest.raises(ValueError, match=r"threshold must be an integer in \[3, 5\], got 6"):
        secure_sum(good, threshold=6)
    with pytest.raises(ValueError, match="clip"):
        secure_sum(good, clip=0.0)
    with pytest.raises(ValueError, match="bits"):
        secure_sum(good, bits=40)


def test_server_rejects_malformed_masked_input():
    server = Server(RoundConfig((0, 1, 2), threshold=2, vector_length=3, modulus_bits=4))
    with pytest.raises(
        ValueError, match=r"client_id 9 is not in this round \(known ids: \[0, 1, 2\]\)"
    ):
        server.receive_masked_input(9, np.zeros(3, dtype=np.uint64))
    with pytest.raises(ValueError, match="must have length 3, got shape"):
        server.receive_masked_input(0, np.zeros(4, dtype=np.uint64))
    with pytest.raises(ValueError, match=r"integers in \[0, 2\^4\)"):
        server.receive_masked_input(1, np.array([0, 16, 3]))
    with pytest.raises(ValueError, match=r"integers in \[0, 2\^4\)"):
        server.receive_masked_input(1, np.array([0, -1, 3]))
    with pytest.raises(ValueError, match=r"integers in \[0, 2\^4\)"):
        server.receive_masked_input(1, np.array([0.5, 1.0, 3.0]))
    with pytest.raises(ValueError, match="client_id 5 is not in this round"):
        server.receive_shares(5, {0: 1})
    with pytest.raises(ValueError, match="client_id 8 is not in this round"):
        server.receive_shares(0, {8: 1})
    server.receive_masked_input(2, np.array([15, 0, 7]))
    assert list(server.masked) == [2]


# -- what the server sees --------------------------------------------------------------------


@pytest.mark.parametrize("fill", [-1.0, 0.0, 1.0])
def test_masked_vectors_look_uniform_whatever_the_input(fill):
    length = 4096
    updates = {u: np.full(length, fill) for u in range(3)}
    result = secure_sum(updates, bits=8, seed=11)
    k = result.modulus_bits  # 8 + 2 = 10: values in [0, 1024)
    for y in result.masked.values():
        counts = np.bincount((y >> np.uint64(k - 5)).astype(int), minlength=32)  # 32 equal bins
        assert stats.chisquare(counts).pvalue > 1e-4
        assert abs(y.mean() / 2**k - 0.5) < 0.03


def test_masked_vector_is_uncorrelated_with_the_input():
    rng = np.random.default_rng(0)
    updates = {u: rng.uniform(-1, 1, size=4096) for u in range(4)}
    result = secure_sum(updates, bits=8, seed=3)
    for u, y in result.masked.items():
        assert abs(np.corrcoef(updates[u], y.astype(float))[0, 1]) < 0.1
    # Same inputs, another seed: every masked vector changes, the sum does not.
    again = secure_sum(updates, bits=8, seed=4)
    same = secure_sum(updates, bits=8, seed=3)
    for u in updates:
        assert np.mean(again.masked[u] == result.masked[u]) < 0.01
        np.testing.assert_array_equal(same.masked[u], result.masked[u])
    np.testing.assert_array_equal(again.sum_int, result.sum_int)


def test_prg_is_deterministic_and_in_range():
    a = prg(bytes(32), 1000, k=5)
    assert a.dtype == np.uint64 and np.all(a < 32)
    np.testing.assert_array_equal(a, prg(bytes(32), 1000, k=5))
    assert np.mean(a == prg(bytes([1]) + bytes(31), 1000, k=5)) < 0.1
    with pytest.raises(ValueError, match="32 bytes"):
        prg(b"short", 3, k=5)


def test_masks_cancel_by_hand_for_three_clients():
    demo = mask_breakdown([[1, 2], [3, 4], [5, 6]], modulus_bits=8, seed=0)
    p01, p02, p12 = (demo.pairwise_masks[pair].astype(int) for pair in [(0, 1), (0, 2), (1, 2)])
    b = {u: demo.self_masks[u].astype(int) for u in range(3)}
    np.testing.assert_array_equal(demo.masked[0], (np.array([1, 2]) + b[0] + p01 + p02) % 256)
    np.testing.assert_array_equal(demo.masked[1], (np.array([3, 4]) + b[1] - p01 + p12) % 256)
    np.testing.assert_array_equal(demo.masked[2], (np.array([5, 6]) + b[2] - p02 - p12) % 256)
    np.testing.assert_array_equal(demo.masked_sum(), (np.array([9, 12]) + sum(b.values())) % 256)
    assert demo.unmasked_sum().tolist() == [9, 12]


# -- Shamir ----------------------------------------------------------------------------------


def test_shamir_by_hand_and_errors():
    assert shamir_reconstruct([(1, 5), (2, 8)], threshold=2) == 2  # f(x) = 2 + 3x
    assert shamir_reconstruct([(3, 11), (1, 5)], threshold=2) == 2
    with pytest.raises(ValueError, match="need at least threshold = 3 shares.*got 2"):
        shamir_reconstruct([(1, 5), (2, 8)], threshold=3)
    with pytest.raises(ValueError, match="distinct"):
        shamir_reconstruct([(1, 5), (1, 8)], threshold=2)
    with pytest.raises(ValueError, match="secret must be an integer in"):
        shamir_split(PRIME, 2, 3, np.random.default_rng(0))
    with pytest.raises(ValueError, match="num_shares"):
        shamir_split(1, 4, 3, np.random.default_rng(0))


@SETTINGS
@given(
    secret=st.integers(0, PRIME - 1),
    threshold=st.integers(1, 6),
    extra=st.integers(0, 4),
    order=st.randoms(use_true_random=False),
    seed=st.integers(0, 2**32),
)
def test_shamir_any_t_shares_reconstruct(secret, threshold, extra, order, seed):
    shares = shamir_split(secret, threshold, threshold + extra, np.random.default_rng(seed))
    assert [x for x, _ in shares] == list(range(1, threshold + extra + 1))
    subset = order.sample(shares, threshold)
    assert shamir_reconstruct(subset, threshold) == secret
    if threshold >= 2:  # t - 1 shares interpolate a different polynomial: not the secret
        assert shamir_reconstruct(subset[:-1], threshold - 1) != secret


def test_shamir_t_minus_one_shares_say_nothing():
    # With t = 2, one share f(1) = s + a is uniform for a uniform a: it looks the same for any s.
    firsts = [shamir_split(s, 2, 3, np.random.default_rng(9))[0][1] for s in (0, 1)]
    assert firsts[1] - firsts[0] == 1  # same a: the share moves with s, so a hides s completely
    values = [shamir_split(0, 2, 2, np.random.default_rng(i))[0][1] for i in range(200)]
    top_bits = [v >> 520 for v in values]  # the top bit of a uniform element of GF(2^521 - 1)
    assert 60 < sum(top_bits) < 140


# -- cost accounting ---------------------------------------------------------------------------


def test_bytes_match_a_hand_count():
    n, m, bits = 4, 10, 16
    result = secure_sum(random_updates(n, m), bits=bits, seed=0)
    k = bits + math.ceil(math.log2(n))  # 18
    ciphertext = 4 + 4 + 66 + 66 + 16  # ids, two 66-byte shares, AES-GCM tag
    sent = 2 * 32 + (n - 1) * (4 + ciphertext) + math.ceil(m * k / 8) + n * (4 + 66)
    received = n * (4 + 64) + (n - 1) * (4 + ciphertext) + n * 4
    assert sent == 847
    assert result.client_bytes_sent == dict.fromkeys(range(n), sent)
    assert result.client_bytes_received == dict.fromkeys(range(n), received)
    assert result.server_bytes_received == n * sent and result.server_bytes_sent == n * received
    assert (
        set(result.client_seconds)
        == set(result.server_seconds)
        == {
            "advertise_keys",
            "share_keys",
            "masked_input",
            "unmasking",
        }
    )


def test_measure_overhead_grows_with_n():
    rows = measure_overhead([3, 6], vector_length=16, dropout_fraction=0.34)
    assert [r.num_clients for r in rows] == [3, 6] and [r.num_dropouts for r in rows] == [1, 2]
    assert rows[1].client_bytes_received > rows[0].client_bytes_received
    assert rows[1].server_bytes_received > rows[0].server_bytes_received
    assert all(r.plain_bytes == 64 and r.server_seconds > 0 for r in rows)


# -- FedAvg through secure aggregation, in the engine and the step functions ---------------------


def _digits_run(digits, rounds=2, **kwargs):
    split = partition.iid(digits.y_train[:300], num_clients=6, seed=0)
    sim = Simulation(FedAvg(client_lr=0.1), model_fn("mlp", 10), digits, split, seed=0, **kwargs)
    sim.run(rounds, progress=False)
    return sim, split


def test_fedavg_through_secure_aggregation_matches_plain_fedavg(digits):
    plain, _ = _digits_run(digits)
    secure, _ = _digits_run(digits, secure_aggregation=SecureAggregation(clip=0.5, bits=20))
    for a, b in zip(plain.weights, secure.weights, strict=True):
        np.testing.assert_allclose(a, b, atol=2e-5)  # quantisation: ≤ 6 · step/2 per coordinate
    record = secure.history.rounds[-1]
    assert record.secure_dropped == () and not record.secure_aborted
    assert 0 <= record.clipped_fraction < 0.01  # clip=0.5 cuts (almost) no coordinate
    assert record.bytes_up > 0 and record.bytes_up != plain.history.rounds[-1].bytes_up


def test_engine_equals_steps_with_secure_aggregation_dropouts(digits):
    secure = SecureAggregation(dropout=0.3, clip=0.5)
    sim, split = _digits_run(digits, rounds=0, secure_aggregation=secure)
    model, weights = steps.initialize(model_fn("mlp", 10), digits.x_train, seed=0)
    for round_num in (1, 2):
        by_hand = steps.run_round(
            model,
            weights,
            digits,
            split,
            FedAvg(client_lr=0.1),
            6,
            round_num,
            0,
            secure_aggregation=secure,
        )
        weights = by_hand.weights
        record = sim.step()
        assert record.secure_dropped == by_hand.aggregation_info["secure_dropped"]
        assert len(record.secure_dropped) in (1, 2)  # 30 % of 6 = 1.8, rounded without bias
        assert record.bytes_up == by_hand.bytes_up
        for a, b in zip(sim.weights, weights, strict=True):
            # float32 rounding can flip one coordinate's quantisation level: ≤ one step (1.5e-5)
            np.testing.assert_allclose(a, b, rtol=0, atol=2e-5)


def test_too_many_dropouts_make_the_server_refuse_and_nothing_changes(digits):
    sim, _ = _digits_run(digits, rounds=0, secure_aggregation=SecureAggregation(dropout=0.6))
    before = [w.copy() for w in sim.weights]
    record = sim.step()
    assert record.secure_aborted and len(record.secure_dropped) >= 3
    for a, b in zip(before, sim.weights, strict=True):
        np.testing.assert_array_equal(a, b)


def test_secure_aggregation_settings_are_checked(digits):
    with pytest.raises(ValueError, match="dropout"):
        SecureAggregation(dropout=1.0)
    with pytest.raises(ValueError, match="threshold"):
        SecureAggregation(threshold=0.4)
    with pytest.raises(TypeError, match="secure_aggregation must be"):
        _digits_run(digits, secure_aggregation=True)
    split = partition.iid(digits.y_train[:300], num_clients=6, seed=0)
    with pytest.raises(ValueError, match="LDP-FedAvg with secure_aggregation: .*no bounded range"):
        Simulation(
            LocalDPFedAvg(),
            model_fn("mlp", 10),
            digits,
            split,
            secure_aggregation=SecureAggregation(),
        )
    with pytest.raises(
        ValueError, match=r"SecureAggregation\(clip=0.5\) would cut .*clip_norm=1.0"
    ):
        Simulation(
            DPFedAvg(clip_norm=1.0),
            model_fn("mlp", 10),
            digits,
            split,
            secure_aggregation=SecureAggregation(clip=0.5),
        )


# -- notebook helpers: weight_gaps, runs_table, overhead_table, unflatten, distributed_dp_sum --


def test_weight_gaps_splits_by_unchanged_weights():
    from fedlab.secure_aggregation import weight_gaps

    start = [np.array([[0.0, 1.0]]), np.array([2.0])]
    plain = [np.array([[0.0, 3.0]]), np.array([2.0])]  # weights 0 and 2 unchanged
    secure = [np.array([[0.25, 2.0]]), np.array([2.0])]
    gaps = weight_gaps(plain, secure, start)
    assert gaps.max_gap == 1.0
    assert (gaps.num_unchanged, gaps.num_changed) == (2, 1)
    assert gaps.mean_gap_unchanged == 0.125
    assert gaps.mean_gap_changed == 1.0


def test_weight_gaps_rejects_mismatched_lists():
    from fedlab.secure_aggregation import weight_gaps

    with pytest.raises(ValueError, match="same length"):
        weight_gaps([np.zeros(2)], [], [np.zeros(2)])
    with pytest.raises(ValueError, match="same shape"):
        weight_gaps([np.zeros(2)], [np.zeros(3)], [np.zeros(2)])


def test_runs_table_counts_summed_and_aborted_rounds():
    from types import SimpleNamespace as NS

    from fedlab.secure_aggregation import runs_table

    ok = NS(clients=(0, 1, 2, 3), secure_dropped=(), secure_aborted=False)
    dropped = NS(clients=(0, 1, 2, 3), secure_dropped=(1, 2), secure_aborted=True)
    runs = {
        "plain": NS(test_accuracy=[0.5, 0.5], bytes_up=[1000], rounds=[ok, ok]),
        "secure": NS(test_accuracy=[0.25, 0.75], bytes_up=[2500], rounds=[ok, dropped]),
    }
    lines = runs_table(runs, "plain").splitlines()
    assert len(lines) == 3
    assert lines[2].split() == ["secure", "0.7500", "0.2500", "3.0", "1", "2.5"]
    with pytest.raises(ValueError, match="baseline"):
        runs_table(runs, "missing")


def test_overhead_table_matches_rows():
    from fedlab.secure_aggregation import overhead_table

    rows, rows_drop = measure_overhead([3, 5], 8), measure_overhead([3, 5], 8, 0.3)
    lines = overhead_table(rows, rows_drop).splitlines()
    assert len(lines) == 3
    fields = lines[2].split()
    assert fields[0] == "5" and fields[1] == "32"
    assert fields[6] == str(rows_drop[1].num_dropouts) == "1"
    with pytest.raises(ValueError, match="same length"):
        overhead_table(rows, rows_drop[:1])
    with pytest.raises(ValueError, match="same numbers"):
        overhead_table(rows, rows_drop[::-1])


def test_unflatten_inverts_concatenation():
    from fedlab.secure_aggregation import unflatten

    arrays = [np.arange(6.0).reshape(2, 3), np.array([7.0]), np.zeros((1, 2, 2))]
    flat = np.concatenate([a.ravel() for a in arrays])
    for got, want in zip(unflatten(flat, [a.shape for a in arrays]), arrays, strict=True):
        np.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError, match="11 values"):
        unflatten(flat[:-1], [a.shape for a in arrays])


def test_distributed_dp_sum_clips_and_adds_noise():
    from fedlab.secure_aggregation import distributed_dp_sum

    vectors = [np.array([3.0, 4.0]), np.array([0.0, 0.5]), np.array([-6.0, 8.0])]
    exact = distributed_dp_sum(vectors, 1.0, 0.0, np.random.default_rng(0), bits=20)
    np.testing.assert_allclose(exact, [0.6 - 0.6, 0.8 + 0.5 + 0.8], atol=1e-5)
    noisy = [
        distributed_dp_sum(vectors, 1.0, 2.0, np.random.default_rng(s), bits=20) for s in range(200)
    ]
    std = np.std(np.array(noisy) - exact, axis=0)
    np.testing.assert_allclose(std, 2.0, rtol=0.2)  # z · S, whatever the number of clients
    with pytest.raises(ValueError, match="clip_norm"):
        distributed_dp_sum(vectors, 0.0, 1.0, np.random.default_rng(0))
    with pytest.raises(TypeError, match="rng"):
        distributed_dp_sum(vectors, 1.0, 1.0, 0)
