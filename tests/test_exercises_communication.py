"""The checks of notebook 08's exercises (fedlab/exercises/communication.py): each passes the
right answer and names each anticipated mistake with its own message, and fails on the stub."""

import math

import numpy as np
import pytest

from fedlab import compression
from fedlab.exercises import CheckFailed, communication
from fedlab.history import History, RoundRecord


def fails(check, *args, match: str, **kwargs):
    with pytest.raises(CheckFailed, match=match):
        check(*args, **kwargs)


def flat(weights):
    return np.concatenate([np.ravel(w) for w in weights])


@pytest.fixture(scope="module")
def delta():
    """An update shaped like a small MLP's: a few large entries, most of them small."""
    rng = np.random.default_rng(0)
    return [
        (rng.standard_t(2, size=(40, 30)) * 0.003).astype(np.float32),
        (rng.normal(size=30) * 0.006).astype(np.float32),
    ]


def relative_error(codec, delta, seed=0):
    d = flat(delta)
    return float(
        np.linalg.norm(flat(codec.decode(codec.encode(delta, seed=seed))) - d) / np.linalg.norm(d)
    )


# --- exercise 1 ----------------------------------------------------------------------------------


def test_the_rotation_check_names_the_plain_codec_bits_and_unscaled_errors(delta):
    plain = compression.StochasticQuantizer(4)
    rotated = compression.RandomRotation(plain)
    size, error = rotated.encode(delta, seed=0).num_bytes, relative_error(rotated, delta)
    norm = float(np.linalg.norm(flat(delta)))
    communication.check_rotation(size, error, delta)
    communication.check_rotation(size, relative_error(rotated, delta, seed=5), delta)
    n = flat(delta).size
    mistakes = {
        "plain 4-bit quantiser's message": (plain.encode(delta).num_bytes, error),
        "counts bits": (8 * size, error),
        "float32 update": (4 * n, error),
        "padded vector in float32": (4 * 2048, error),
        "codes only": (2048 // 2, error),
        "not the size of the rotated": (size + 3, error),
        "plain 4-bit quantiser's error": (size, relative_error(plain, delta)),
        r"is ‖decode\(encode\(Δ\)\) − Δ‖: divide": (size, error * norm),
        "squared relative error": (size, error**2),
        "an 8-bit quantiser's error": (
            size,
            relative_error(compression.RandomRotation(compression.StochasticQuantizer(8)), delta),
        ),
        "not the relative error of one rotated": (size, 3 * error),
        "rotated_size is still `...`": (..., error),
        "rotated_error is still `...`": (size, ...),
        "should be one number": (size, [error, error]),
    }
    for message, answers in mistakes.items():
        fails(communication.check_rotation, *answers, delta, match=message)


def measured_rotation_bytes(n, bits):
    codec = compression.RandomRotation(compression.StochasticQuantizer(bits))
    return codec.encode([np.zeros(n, np.float32)]).num_bytes


def right_rotation_bytes(n, bits):
    d = 1 << (n - 1).bit_length()
    return math.ceil(d * bits / 8) + 4 * math.ceil(d / 256)


@pytest.mark.parametrize("seed", [None, 1, 4])
def test_the_rotated_bytes_check_names_padding_bits_and_scales(seed):
    communication.check_rotated_bytes(right_rotation_bytes, seed=seed)

    def pad(n):
        return 1 << (n - 1).bit_length()

    mistakes = {
        "does not pad": lambda n, b: math.ceil(n * b / 8) + 4 * math.ceil(n / 256),
        "counts the codes in bits": lambda n, b: pad(n) * b + 4 * math.ceil(pad(n) / 256),
        "counts bits, not bytes": lambda n, b: 8 * right_rotation_bytes(n, b),
        "counts the codes only": lambda n, b: math.ceil(pad(n) * b / 8),
        "pads to 2n": lambda n, b: math.ceil(2 * n * b / 8) + 4 * math.ceil(2 * n / 256),
        "already a power of two": lambda n, b: (
            math.ceil((1 << n.bit_length()) * b / 8) + 4 * math.ceil((1 << n.bit_length()) / 256)
        ),
        "scales of the n unpadded": lambda n, b: math.ceil(pad(n) * b / 8) + 4 * math.ceil(n / 256),
        "not what the rotated quantiser sends": lambda n, b: right_rotation_bytes(n, b) + 1,
        "returns None": lambda n, b: None,
        "raised ZeroDivisionError": lambda n, b: 1 / 0,
    }
    for message, wrong in mistakes.items():
        fails(communication.check_rotated_bytes, wrong, seed=seed, match=message)


def test_the_byte_formula_is_what_the_codec_sends():
    for n, bits in [(9610, 4), (4096, 8), (4097, 2), (300, 1), (5000, 3)]:
        assert right_rotation_bytes(n, bits) == measured_rotation_bytes(n, bits)
    communication.check_rotated_bytes(measured_rotation_bytes)


# --- exercise 2 ----------------------------------------------------------------------------------


def test_the_low_bit_check_names_swaps_norms_and_percentages(delta):
    two, one = (relative_error(compression.StochasticQuantizer(b), delta) for b in (2, 1))
    norm = float(np.linalg.norm(flat(delta)))
    communication.check_low_bit_errors({2: two, 1: one}, delta)
    assert two > 1 and one > two  # a single low-bit message: an error above 100 %
    mistakes = {
        "swapped": {2: one, 1: two},
        r"\[2\] = .* is ‖q − Δ‖": {2: two * norm, 1: one},
        r"\[1\] = .* is the squared": {2: two, 1: one**2},
        "in per cent": {2: 100 * two, 1: one},
        "not the relative error of one 1-bit": {2: two, 1: 2 * one},
        r"no entry for \[1\]": {2: two},
        "should be a dict": [two, one],
        "still `...`": ...,
    }
    for message, wrong in mistakes.items():
        fails(communication.check_low_bit_errors, wrong, delta, match=message)


def right_step(compress, update, residual):
    corrected = update + residual
    sent = compress(corrected)
    return sent, corrected - sent


def in_place(compress, update, residual):
    residual += update
    sent = compress(residual)
    residual -= sent
    return sent, residual


EF_MISTAKES = {
    "compresses the update alone": lambda c, u, e: (c(u), u + e - c(u)),
    "adds the residual twice: compress": lambda c, u, e: (c(u + 2 * e), u + e - c(u + 2 * e)),
    "adds the residual after compressing": lambda c, u, e: (c(u) + e, u - c(u)),
    "sends update \\+ residual uncompressed": lambda c, u, e: (u + e, np.zeros_like(u)),
    "throws the residual away": lambda c, u, e: (c(u + e), np.zeros_like(u)),
    "returns the old residual unchanged": lambda c, u, e: (c(u + e), e),
    "new residual is update − sent": lambda c, u, e: (c(u + e), u - c(u + e)),
    "adds the old residual twice to the new one": lambda c, u, e: (c(u + e), u + 2 * e - c(u + e)),
    "wrong sign": lambda c, u, e: (c(u + e), c(u + e) - u - e),
    "keeps all of update \\+ residual": lambda c, u, e: (c(u + e), u + e),
    r"returns \(new_residual, sent\)": lambda c, u, e: right_step(c, u, e)[::-1],
    "changed its arguments in place": in_place,
    "should return two arrays": lambda c, u, e: c(u + e),
    "returns None": lambda c, u, e: None,
}


@pytest.mark.parametrize("seed", [None, 1, 6])
def test_the_error_feedback_check_names_a_forgotten_or_doubled_residual(seed):
    communication.check_error_feedback_step(right_step, seed=seed)
    for message, wrong in EF_MISTAKES.items():
        fails(communication.check_error_feedback_step, wrong, seed=seed, match=message)


def test_the_error_feedback_check_catches_a_residual_that_drifts_over_rounds():
    calls = []

    def forgets_later(compress, update, residual):  # right once, then drops the residual
        calls.append(1)
        if len(calls) == 1:
            return right_step(compress, update, residual)
        return compress(update), update - compress(update)

    fails(communication.check_error_feedback_step, forgets_later, match="over five rounds")


def growth(delta, step=right_step, rounds=20, scale=1.0):
    d = flat(delta).astype(np.float64)
    out = {}
    for bits in (2, 1):
        codec = compression.StochasticQuantizer(bits)
        residual, sizes = np.zeros_like(d), []
        for t in range(1, rounds + 1):

            def compress(v, seed=t, codec=codec):
                return flat(codec.decode(codec.encode([v], seed=seed)))

            _, residual = step(compress, d, residual)
            sizes.append(scale * np.linalg.norm(residual) / np.linalg.norm(d))
        out[bits] = sizes
    return out


def test_the_residual_growth_check_wants_the_1_bit_residual_to_explode(delta):
    right = growth(delta)
    communication.check_residual_growth(right, delta)
    norm = float(np.linalg.norm(flat(delta)))

    def without_carry(compress, update, residual):
        return right_step(compress, update, np.zeros_like(update))

    mistakes = {
        "does not grow": growth(delta, without_carry),
        r"holds ‖e‖, not ‖e‖ / ‖Δ‖": growth(delta, scale=norm),
        "has 10 numbers": {bits: values[:10] for bits, values in right.items()},
        r"\[2\]\[0\] = .*what one 2-bit message left out": {2: [0.1] * 20, 1: right[1]},
        r"\[2\] grows too": {2: [right[2][0] * 1.5**t for t in range(20)], 1: right[1]},
        "nan or inf": {2: right[2], 1: [*right[1][:-1], math.inf]},
        r"no entry for \[2\]": {1: right[1]},
        "should be a dict": [right[2], right[1]],
        "still `...`": ...,
    }
    for message, wrong in mistakes.items():
        fails(communication.check_residual_growth, wrong, delta, match=message)


# --- exercise 3 ----------------------------------------------------------------------------------


def fake_run(accuracy, down, up, examples=None, gflops=1e-5):
    examples = examples if examples is not None else [100] * len(accuracy)
    return communication._fake_run(accuracy, down, up, examples, gflops)


def test_the_float16_downlink_check_names_each_wrong_total_and_share():
    runs = {
        "float32": fake_run([0.5, 0.6], [400_000, 400_000], [400_000, 400_000]),
        "top-k": fake_run([0.5, 0.6], [400_000, 400_000], [8_000, 8_000]),
    }
    total = {"float32": 1.2, "top-k": 0.416}
    share = {"float32": 0.4 / 1.2, "top-k": 0.4 / 0.416}
    communication.check_float16_downlink(total, share, runs)

    def with_total(value):
        return {**total, "top-k": value}, share

    def with_share(value):
        return total, {**share, "top-k": value}

    mistakes = {
        "float32 downlink's total": with_total(0.816),
        "halves the uplink too": with_total(0.408),
        "the downlink alone": with_total(0.4),
        "is in bytes": with_total(416_000),
        "mebibytes": with_total(416_000 / 2**20),
        "not the megabytes sent down and up": with_total(0.5),
        "float32 downlink's share": with_share(0.8 / 0.816),
        "the uplink's share": with_share(1 - 0.4 / 0.416),
        r"is down / up": with_share(0.4 / 0.016),
        "in per cent": with_share(100 * 0.4 / 0.416),
        "not the fraction": with_share(0.5),
        "has no entry for 'top-k'": ({"float32": 1.2}, share),
        "should be a dict": ([1.2, 0.416], share),
        "mb_total_16 is still `...`": (..., share),
        "down_share_16 is still `...`": (total, ...),
    }
    for message, (wrong_total, wrong_share) in mistakes.items():
        fails(communication.check_float16_downlink, wrong_total, wrong_share, runs, match=message)


# --- exercise 4 ----------------------------------------------------------------------------------


def right_top_k(vector, fraction):
    k = math.ceil(fraction * vector.size)
    keep = np.argsort(-np.abs(vector), kind="stable")[:k]
    out = np.zeros_like(vector)
    out[keep] = vector[keep]
    return out


def keep(order_of, size_of):
    def top_k(vector, fraction):
        k = size_of(fraction * vector.size)
        chosen = order_of(vector)[:k]
        out = np.zeros_like(vector)
        out[chosen] = vector[chosen]
        return out

    return top_k


def in_place_top_k(vector, fraction):
    kept = right_top_k(vector, fraction)
    vector[kept == 0] = 0
    return vector


TOP_K_MISTAKES = {
    "keeps the largest values": keep(lambda v: np.argsort(-v), math.ceil),
    "keeps the smallest magnitudes": keep(lambda v: np.argsort(np.abs(v)), math.ceil),
    "keeps ⌊fraction·n⌋ entries": keep(lambda v: np.argsort(-np.abs(v)), math.floor),
    "without their signs": lambda v, f: np.abs(right_top_k(v, f)),
    "every entry except the top k": lambda v, f: v - right_top_k(v, f),
    "not only the kept values": lambda v, f: v[np.argsort(-np.abs(v))[: math.ceil(f * v.size)]],
    "not only the kept indices": lambda v, f: np.argsort(-np.abs(v))[: math.ceil(f * v.size)],
    "changed the vector it was given": in_place_top_k,
    "returns None": lambda v, f: None,
}


@pytest.mark.parametrize("seed", [None, 1, 2, 9])
def test_the_top_k_check_names_values_instead_of_magnitudes_and_a_wrong_k(seed):
    communication.check_top_k(right_top_k, seed=seed)
    for message, wrong in TOP_K_MISTAKES.items():
        fails(communication.check_top_k, wrong, seed=seed, match=message)
    rounded = keep(lambda v: np.argsort(-np.abs(v)), lambda x: int(np.round(x)))
    fails(communication.check_top_k, rounded, seed=seed, match="rounds|⌊fraction·n⌋")


def test_top_k_by_hand_is_what_the_codec_delivers():
    vector = np.random.default_rng(3).normal(size=257).astype(np.float32)
    codec = compression.TopK(0.07)
    np.testing.assert_array_equal(
        right_top_k(vector, 0.07), codec.decode(codec.encode([vector]))[0]
    )


def right_cost_to(history, accuracy):
    reached = np.flatnonzero(history.test_accuracy >= accuracy)
    if len(reached) == 0:
        return np.nan, np.nan
    i = reached[0]
    return history.megabytes_sent[i], history.client_gflops[: i + 1].sum()


def first(history, accuracy):
    reached = np.flatnonzero(history.test_accuracy >= accuracy)
    return int(reached[0]) if len(reached) else None


def cost_rule(rule):
    """A cost_to that applies ``rule(history, i)`` at the first round reaching the accuracy."""

    def cost_to(history, accuracy):
        i = first(history, accuracy)
        return (np.nan, np.nan) if i is None else rule(history, i)

    return cost_to


def stays_above(history, accuracy):
    acc = history.test_accuracy
    below = np.flatnonzero(acc < accuracy)
    if len(below) == len(acc):
        return np.nan, np.nan
    i = int(below[-1]) + 1 if len(below) else 0
    return history.megabytes_sent[i], history.client_gflops[: i + 1].sum()


COST_MISTAKES = {
    "totals of the whole run": lambda h, a: (h.megabytes_sent[-1], h.client_gflops.sum()),
    "that one round's": cost_rule(lambda h, i: (h.megabytes_sent[i], h.client_gflops[i])),
    "stops one round early": cost_rule(
        lambda h, i: (h.megabytes_sent[i - 1], h.client_gflops[:i].sum())
    ),
    "stops one round late": cost_rule(
        lambda h, i: (h.megabytes_sent[i + 1], h.client_gflops[: i + 2].sum())
    ),
    "uplink only": cost_rule(
        lambda h, i: (np.cumsum(h.bytes_up)[i] / 1e6, h.client_gflops[: i + 1].sum())
    ),
    "leave out the round that reaches": cost_rule(
        lambda h, i: (h.megabytes_sent[i], h.client_gflops[:i].sum())
    ),
    "should give \\(nan, nan\\)": lambda h, a: (
        right_cost_to(h, a) if first(h, a) is not None else (0.0, 0.0)
    ),
    "should return two numbers": lambda h, a: h.megabytes_sent[0],
    "returns None": lambda h, a: None,
}


@pytest.mark.parametrize("seed", [None, 1, 3])
def test_the_cost_check_names_totals_per_round_gflops_and_off_by_ones(seed):
    communication.check_cost_to(right_cost_to, seed=seed)
    for message, wrong in COST_MISTAKES.items():
        fails(communication.check_cost_to, wrong, seed=seed, match=message)


def test_the_cost_check_names_waiting_for_the_accuracy_to_stay_up():
    fails(communication.check_cost_to, stays_above, match="stays at or above")


def test_the_rounds_or_bytes_check_follows_the_runs():
    runs = {
        "60 rounds": fake_run([0.5, 0.8, 0.95], [100] * 3, [1] * 3, [10] * 3, 1.0),
        "5 local epochs": fake_run([0.5, 0.95], [100] * 2, [10] * 2, [50] * 2, 1.0),
    }
    communication.check_rounds_or_bytes("5 local epochs", "60 rounds", runs)
    mistakes = {
        "fewer_megabytes = '60 rounds', but another run": ("60 rounds", "60 rounds"),
        "less_computation = '5 local epochs', but another run": (
            "5 local epochs",
            "5 local epochs",
        ),
        "answer with one of": ("5 local epochs", "30 rounds"),
        "fewer_megabytes is still `...`": (..., "60 rounds"),
        "less_computation is still `...`": ("5 local epochs", ...),
    }
    for message, (fewer, less) in mistakes.items():
        fails(communication.check_rounds_or_bytes, fewer, less, runs, match=message)


# --- exercise 5 ----------------------------------------------------------------------------------


def test_the_scale_check_names_bits_scales_indices_and_directions():
    n, lora, k = 6_738_415_616, 4_194_304, 10
    down, codes, scales = 4 * n, math.ceil(n / 2), 4 * math.ceil(n / 256)
    kept = compression.TopK(0.01).num_kept(n)
    right = (k * (down + codes + scales) / 1e6, k * (down + 8 * kept) / 1e6, k * 8 * lora / 1e6)
    kw = dict(num_parameters=n, lora_parameters=lora, clients_per_round=k)
    communication.check_scale_megabytes(*right, **kw)

    def four(value):
        return (value, *right[1:])

    def topk(value):
        return (right[0], value, right[2])

    def lora_mb(value):
        return (*right[:2], value)

    mistakes = {
        "4-bit codes as 4 bytes": four(k * (down + 4 * n + scales) / 1e6),
        "mb_4bit counts the codes in bits": four(k * (down + 32 * n + scales) / 1e6),
        "forgets the scales": four(k * (down + codes) / 1e6),
        "mb_4bit counts the uplink alone": four(k * (codes + scales) / 1e6),
        "mb_4bit counts one client": four((down + codes + scales) / 1e6),
        "quantises the downlink too": four(2 * k * (codes + scales) / 1e6),
        "mb_4bit is in bytes": four(k * (down + codes + scales)),
        "mb_4bit is in mebibytes": four(k * (down + codes + scales) / 2**20),
        "mb_4bit is not": four(right[0] * 2),
        "without their indices": topk(k * (down + 4 * kept) / 1e6),
        "int64 indices": topk(k * (down + 12 * kept) / 1e6),
        "mb_topk counts the uplink alone": topk(k * 8 * kept / 1e6),
        "mb_topk counts one client": topk((down + 8 * kept) / 1e6),
        "mb_topk counts the kept entries in bits": topk(k * (down + 64 * kept) / 1e6),
        "mb_topk is in bytes": topk(k * (down + 8 * kept)),
        "mb_topk is not": topk(right[1] / 3),
        "counts one direction": lora_mb(k * 4 * lora / 1e6),
        "mb_lora counts one client": lora_mb(8 * lora / 1e6),
        "sends the full model down": lora_mb(k * (down + 4 * lora) / 1e6),
        "mb_lora counts bits": lora_mb(k * 64 * lora / 1e6),
        "mb_lora is in bytes": lora_mb(k * 8 * lora),
        "counts parameters, not bytes": lora_mb(k * 2 * lora / 1e6),
        "mb_lora is not": lora_mb(1.0),
        "mb_4bit is still `...`": (..., *right[1:]),
        "mb_lora is still `...`": (*right[:2], ...),
    }
    for message, answers in mistakes.items():
        fails(communication.check_scale_megabytes, *answers, match=message, **kw)


def test_fake_runs_read_like_the_engines():
    run = fake_run([0.2, 0.9], [10, 10], [1, 2], [30, 50], gflops=2.0)
    assert isinstance(run, History) and isinstance(run.rounds[0], RoundRecord)
    np.testing.assert_allclose(run.megabytes_sent, [11e-6, 23e-6])
    np.testing.assert_allclose(run.client_gflops, [60.0, 100.0])


def test_the_exploded_check_wants_the_error_itself_and_an_exploding_loss(capsys):
    from fedlab.engine import DivergenceError
    from fedlab.history import History

    exploded = DivergenceError(7, [3], History(), reason="an exploding loss (up to 5e+08)")
    communication.check_exploded(exploded, 30)
    assert "round 7 of 30" in capsys.readouterr().out
    with pytest.raises(CheckFailed, match="still `...`"):
        communication.check_exploded(..., 30)
    with pytest.raises(CheckFailed, match="a History, not the error"):
        communication.check_exploded(History(), 30)
    with pytest.raises(CheckFailed, match="a ValueError, not the fedlab.DivergenceError"):
        communication.check_exploded(ValueError("x"), 30)
    with pytest.raises(CheckFailed, match="not an exploding loss"):
        communication.check_exploded(DivergenceError(2, [0], History()), 30)
    with pytest.raises(CheckFailed, match="outside the run's 1–30"):
        communication.check_exploded(
            DivergenceError(31, [0], History(), reason="an exploding loss"), 30
        )
