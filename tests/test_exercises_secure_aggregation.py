"""The checks of notebook 12's exercises (fedlab/exercises/secure_aggregation.py): each passes the
right answer and fails, with its own message, on every wrong answer it anticipates and on the
stub. No training here: the runs are Histories with the settings a run would record."""

from types import SimpleNamespace as NS

import numpy as np
import pytest

from fedlab import exercises
from fedlab import secure_aggregation as sa
from fedlab.exercises import CheckFailed
from fedlab.history import History, RoundRecord


def fails(check, *args, match: str, **kwargs):
    with pytest.raises(CheckFailed, match=match):
        check(*args, **kwargs)


def step(clip, bits):
    return 2 * clip / (2**bits - 2)


# --- exercise 1: quantising, dequantising, the error bound ---------------------------------------


def quantize_levels(x, clip, bits):
    return np.rint((np.asarray(x) + clip) / step(clip, bits)).astype(np.int64)


QUANTIZE_MISTAKES = {
    "uses 2\\^bits levels": lambda x, c, b: np.rint((x + c) / (2 * c / (2**b - 1))),
    "step is clip / \\(2\\^bits − 2\\)": lambda x, c, b: np.rint((x + c) / (c / (2**b - 2))),
    "gives negative levels": lambda x, c, b: np.rint(x / step(c, b)),
    "rounds down": lambda x, c, b: np.floor((x + c) / step(c, b)),
    "returns the rounded values": lambda x, c, b: np.rint((x + c) / step(c, b)) * step(c, b) - c,
    "not the nearest level": lambda x, c, b: np.ceil((x + c) / step(c, b)),
    "returns shape": lambda x, c, b: quantize_levels(x, c, b)[:-1],
    "returns None": lambda x, c, b: None,
}


@pytest.mark.parametrize("seed", [None, 1, 4])
def test_the_quantiser_check_names_each_scale_and_rounding_slip(seed, capsys):
    exercises.check_quantize_levels(quantize_levels, seed=seed)
    exercises.check_quantize_levels(sa.quantize, seed=seed)
    assert "✓ quantize_levels" in capsys.readouterr().out
    for message, wrong in QUANTIZE_MISTAKES.items():
        fails(exercises.check_quantize_levels, wrong, seed=seed, match=message)


def dequantize_sum(q, m, clip, bits):
    return q.astype(np.float64) * step(clip, bits) - m * clip


DEQUANTIZE_MISTAKES = {
    "step of 2\\^bits levels": lambda q, m, c, b: q * 2 * c / (2**b - 1) - m * c,
    "subtracts clip once": lambda q, m, c, b: q * step(c, b) - c,
    "forgets the shift": lambda q, m, c, b: q * step(c, b),
    "returns the mean": lambda q, m, c, b: dequantize_sum(q, m, c, b) / m,
    "step is clip / \\(2\\^bits − 2\\)": lambda q, m, c, b: q * c / (2**b - 2) - m * c,
    "unsigned integers": lambda q, m, c, b: (q - m * (2**b - 2) // 2) * step(c, b),
    "is not q_sum · step": lambda q, m, c, b: q * step(c, b) - m * c + 0.1,
    "returns None": lambda q, m, c, b: None,
}


@pytest.mark.parametrize("seed", [None, 1, 9])
def test_the_dequantiser_check_names_scale_mismatches_and_the_shift(seed):
    exercises.check_dequantize_sum(dequantize_sum, seed=seed)
    exercises.check_dequantize_sum(sa.dequantize, seed=seed)
    for message, wrong in DEQUANTIZE_MISTAKES.items():
        fails(exercises.check_dequantize_sum, wrong, seed=seed, match=message)


def test_the_error_bound_check_names_sum_step_and_update_slips():
    sizes, clip = np.array([144.0, 143.0, 144.0, 140.0]), 1.0
    rng = np.random.default_rng(0)
    start = [rng.normal(size=(6, 5)), rng.normal(size=5)]
    delta = [rng.normal(0, 0.01, size=(6, 5)), np.zeros(5)]
    plain = [s + d for s, d in zip(start, delta, strict=True)]
    flat = np.concatenate([d.ravel() for d in delta])
    weight = (sizes / sizes.max()).sum()

    def bounds(scale, step_of=lambda b: step(clip, b)):
        return {b: len(sizes) * step_of(b) / 2 * scale for b in (16, 8, 4)}

    right, typical = bounds(1 / weight), float(np.median(np.abs(flat)))
    kw = dict(sizes=sizes, clip=clip, plain_weights=plain, start=start)
    exercises.check_bits_error(right, typical, **kw)
    moved = float(np.median(np.abs(flat[flat != 0])))  # the weights that moved: accepted too
    exercises.check_bits_error(right, moved, **kw)
    mistakes = {
        "bound of the sum": (bounds(1.0), typical),
        "half a step": (bounds(1 / len(sizes)), typical),
        "whole step": (bounds(2 / weight), typical),
        "2\\^bits levels": (bounds(1 / weight, lambda b: 2 * clip / (2**b - 1)), typical),
        "no bound for \\[4\\] bits": ({16: right[16], 8: right[8]}, typical),
        "should be a dict": ([right[16], right[8], right[4]], typical),
        "is not section 6's `bound`": ({b: 3 * e for b, e in right.items()}, typical),
        "median of the signed update": (right, float(np.median(flat))),
        "mean \\|Δ\\|": (right, float(np.abs(flat).mean())),
        "largest \\|Δ\\|": (right, float(np.abs(flat).max())),
        "median size of the weights": (
            right,
            float(np.median(np.abs(np.concatenate([p.ravel() for p in plain])))),
        ),
        "one number": (right, [typical, typical]),
        "is not the median \\|Δ\\|": (right, 3 * typical),
        "mean_error is still `...`": (..., typical),
        "update_size is still `...`": (right, ...),
    }
    for message, (error, size) in mistakes.items():
        fails(exercises.check_bits_error, error, size, match=message, **kw)


# --- runs with other settings (exercises 1–3) ----------------------------------------------------


def record(r, **fields):
    base = dict(
        clients=tuple(range(10)),
        client_loss=(0.1,) * 10,
        client_num_examples=(144,) * 10,
        train_loss=0.1,
        test_loss=0.1,
        test_accuracy=0.5,
        client_drift=(0.0,) * 10,
        drift_mean=0.0,
        drift_max=0.0,
        update_cosine=(1.0,) * 10,
        bytes_down=1,
        bytes_up=1,
        wall_time=0.0,
    )
    return RoundRecord(round=r, **{**base, **fields})


def run(rounds=3, secure=True, seed=0, records=None, **settings):
    config = {
        "algorithm": {"name": "FedAvg", "local_epochs": 1, "client_lr": 0.1},
        "dataset": "digits",
        "split": "iid",
        "seed": seed,
    }
    if secure:
        config["secure_aggregation"] = {
            "clip": 1.0,
            "bits": 16,
            "dropout": 0.0,
            "threshold": 0.5,
            **settings,
        }
    return History(config=config, rounds=records or [record(r) for r in range(1, rounds + 1)])


def test_the_secure_runs_check_wants_the_one_setting_changed_and_nothing_else(capsys):
    base = run()
    per_run = {"bits": {8: 8, 4: 4}}
    exercises.check_secure_runs({8: run(bits=8), 4: run(bits=4)}, base, name="bits_runs", **per_run)
    assert "✓ bits_runs: 2 runs" in capsys.readouterr().out
    exercises.check_secure_runs(run(clip=0.01), base, name="clip_run", clip=0.01)
    mistakes = {
        "bits_runs is still `...`": ...,
        "should be a dict": run(bits=8),
        "no run for 4": {8: run(bits=8)},
        "bits_runs\\[4\\] is still `...`": {8: run(bits=8), 4: ...},
        "not the History": {8: run(bits=8), 4: [run(bits=4)]},
        "ran without secure aggregation": {8: run(bits=8), 4: run(secure=False)},
        "bits_runs\\[4\\] ran with bits=16": {8: run(bits=8), 4: run()},
        "bits_runs\\[8\\] ran with bits=4": {8: run(bits=4), 4: run(bits=8)},
        "also changed clip \\(1.0 → 0.5\\) in SecureAggregation": {
            8: run(bits=8, clip=0.5),
            4: run(bits=4),
        },
        "has 2 rounds, the reference run has 3": {8: run(bits=8), 4: run(rounds=2, bits=4)},
        "also changed seed \\(0 → 1\\)": {8: run(bits=8), 4: run(seed=1, bits=4)},
    }
    for message, wrong in mistakes.items():
        fails(exercises.check_secure_runs, wrong, base, name="bits_runs", match=message, **per_run)
    both = {"dropout": 0.15, "threshold": {0.5: 0.5, 0.9: 0.9}}
    right = {t: run(dropout=0.15, threshold=t) for t in (0.5, 0.9)}
    exercises.check_secure_runs(right, base, name="threshold_runs", **both)
    no_dropout = {t: run(threshold=t) for t in (0.5, 0.9)}
    fails(
        exercises.check_secure_runs,
        no_dropout,
        base,
        name="threshold_runs",
        match=r"threshold_runs\[0.5\] ran with dropout=0.0",
        **both,
    )


def test_the_clipped_share_check_names_percentages_and_single_rounds():
    fractions = [0.08, 0.06, 0.05, 0.03]
    clip_run = run(records=[record(r, clipped_fraction=f) for r, f in enumerate(fractions, 1)])
    exercises.check_clipped_share(float(np.mean(fractions)), clip_run)
    mistakes = {
        "is a percentage": 100 * np.mean(fractions),
        "left alone": 1 - np.mean(fractions),
        "last round's share": fractions[-1],
        "first round's share": fractions[0],
        "nothing was clipped": 0.0,
        "one number": fractions,
        "is not the mean": 0.5,
        "still `...`": ...,
    }
    for message, wrong in mistakes.items():
        fails(exercises.check_clipped_share, wrong, clip_run, match=message)
    middle = [record(r, clipped_fraction=f) for r, f in enumerate([0.02, 0.09, 0.01], 1)]
    biggest = run(records=middle)  # the largest round is neither the first nor the last
    fails(exercises.check_clipped_share, 0.09, biggest, match="largest round's share")


def test_the_aborted_check_counts_refused_rounds_not_completed_ones_or_dropped_clients():
    def threshold_run(*flags):
        return NS(rounds=[NS(secure_aborted=f, secure_dropped=(1, 2)) for f in flags])

    runs = {
        0.5: threshold_run(False, False, False, False),
        0.9: threshold_run(True, False, True, False),
    }
    exercises.check_aborted_rounds({0.5: 0, 0.9: 2}, runs)
    exercises.check_aborted_rounds({0.5: np.int64(0), 0.9: np.int64(2)}, runs)
    mistakes = {
        "counts the rounds that went through": {0.5: 4, 0.9: 2},
        "counts the clients that dropped": {0.5: 0, 0.9: 8},
        "one value per round": {0.5: 0, 0.9: [True, False, True, False]},
        "is the count of the run 0.9": {0.5: 2, 0.9: 2},
        "is not the number of rounds": {0.5: 0, 0.9: 3},
        "no count for 0.9": {0.5: 0},
        "should be a dict": [0, 2],
        "still `...`": ...,
    }
    for message, wrong in mistakes.items():
        fails(exercises.check_aborted_rounds, wrong, runs, match=message)


# --- exercise 3: masks ---------------------------------------------------------------------------


def mask_update(x, u, pair_masks, k):
    y = x.copy()
    for (a, b), r in pair_masks.items():
        if a == u:
            y = y + r
        elif b == u:
            y = y - r
    return y % 2**k


def signed_mask(above, below, mod=True, with_x=True):
    def masked(x, u, pair_masks, k):
        y = x.copy() if with_x else np.zeros_like(x)
        for (a, b), r in pair_masks.items():
            if a == u:
                y = y + above * r
            elif b == u:
                y = y + below * r
        return y % 2**k if mod else y

    return masked


MASK_MISTAKES = {
    "do not cancel: both clients of a pair add": signed_mask(1, 1),
    "do not cancel: both clients of a pair subtract": signed_mask(-1, -1),
    "signs the other way round": signed_mask(-1, 1),
    "leaves out those with smaller ids": signed_mask(1, 0),
    "returns the masks without x": signed_mask(1, -1, with_x=False),
    "returns x unmasked": lambda x, u, pair_masks, k: x,
    "not reduced modulo 2\\^k": signed_mask(1, -1, mod=False),
    "shaped like x": lambda x, u, pair_masks, k: mask_update(x, u, pair_masks, k)[:2],
    "is not x \\+": lambda x, u, pair_masks, k: (mask_update(x, u, pair_masks, k) + 1) % 2**k,
    "returns None": lambda x, u, pair_masks, k: None,
}


@pytest.mark.parametrize("seed", [None, 1, 5])
def test_the_masking_check_names_masks_that_do_not_cancel_and_a_missing_modulus(seed, capsys):
    exercises.check_mask_update(mask_update, seed=seed)
    assert "Σ y = Σ x" in capsys.readouterr().out
    for message, wrong in MASK_MISTAKES.items():
        fails(exercises.check_mask_update, wrong, seed=seed, match=message)


def remove_dropped(masked_sum, survivors, dropped, pair_masks, k):
    total = masked_sum.copy()
    for (a, b), r in pair_masks.items():
        if a in survivors:
            total = total - r
        elif b in survivors:
            total = total + r
    return total % 2**k


def remover(smaller, larger, between=0, mod=True):
    """Survivor a < dropped b: total += smaller · r; dropped a < survivor b: += larger · r;
    two dropped clients: += between · r."""

    def remove(masked_sum, survivors, dropped, pair_masks, k):
        total = masked_sum.copy()
        for (a, b), r in pair_masks.items():
            sign = smaller if a in survivors else larger if b in survivors else between
            total = total + sign * r
        return total % 2**k if mod else total

    return remove


REMOVE_MISTAKES = {
    "leaves the dropped clients' masks in the sum": lambda s, survivors, dropped, m, k: s,
    "wrong sign": remover(1, -1),
    "subtracts every mask": remover(-1, -1),
    "adds every mask": remover(1, 1),
    "two dropped clients": remover(-1, 1, between=1),
    "reduce modulo 2\\^k": remover(-1, 1, mod=False),
    "one vector": lambda s, survivors, dropped, m, k: [s, s],
    "does not give the survivors' sum": lambda s, survivors, dropped, m, k: (s + 1) % 2**k,
    "returns None": lambda s, survivors, dropped, m, k: None,
}


@pytest.mark.parametrize("seed", [None, 1, 3])
def test_the_dropout_check_names_masks_not_recovered_and_wrong_signs(seed):
    exercises.check_remove_dropped_masks(remove_dropped, seed=seed)
    for message, wrong in REMOVE_MISTAKES.items():
        fails(exercises.check_remove_dropped_masks, wrong, seed=seed, match=message)
    # the other natural slip with two dropped clients: corrected with the opposite sign
    fails(
        exercises.check_remove_dropped_masks,
        remover(-1, 1, between=-1),
        seed=seed,
        match="two dropped clients",
    )


def test_the_masks_really_cancel_with_the_protocols_machinery():
    """The checks' convention is the package's: mask_breakdown's y_u, rebuilt with mask_update."""
    demo = sa.mask_breakdown([[1, 2], [3, 4], [5, 6]], modulus_bits=8, seed=0)
    for u, x in demo.inputs.items():
        masks = {pair: r.astype(np.int64) for pair, r in demo.pairwise_masks.items()}
        masked = mask_update(x.astype(np.int64), u, masks, 8)
        assert np.array_equal((masked + demo.self_masks[u]) % 256, demo.masked[u])


# --- exercise 4: the server's bill ---------------------------------------------------------------


def test_the_server_rows_check_names_missing_sizes_and_other_fractions():
    clients, fractions = (4, 6, 10), (0.0, 0.3)
    rows = {f: sa.measure_overhead(clients, 8, dropout_fraction=f) for f in fractions}
    exercises.check_server_rows(rows, clients, fractions, 8)
    mistakes = {
        "still `...`": ...,
        "should be a dict": rows[0.0],
        "no rows for dropout_fraction \\[0.3\\]": {0.0: rows[0.0]},
        "measures n = \\[4, 6\\]": {0.0: rows[0.0], 0.3: rows[0.3][:2]},
        "vectors of 16 values": {0.0: rows[0.0], 0.3: sa.measure_overhead(clients, 16, 0.3)},
        "the dropouts of dropout_fraction=0.0": {0.0: rows[0.0], 0.3: rows[0.0]},
        "dropout_fraction=0.3 gives": {0.0: rows[0.0], 0.3: sa.measure_overhead(clients, 8, 0.1)},
    }
    for message, wrong in mistakes.items():
        fails(exercises.check_server_rows, wrong, clients, fractions, 8, match=message)


def test_the_slope_check_wants_log_log_through_the_servers_times():
    n = np.array([5, 10, 20, 50, 100])
    seconds = 2e-6 * n**2.3 * np.array([1.3, 0.9, 1.1, 1.0, 0.95])
    rows = {
        0.0: [
            NS(num_clients=a, server_seconds=s, client_seconds=1e-4 * a)
            for a, s in zip(n, seconds, strict=True)
        ]
    }
    fit = np.polyfit(np.log(n), np.log(seconds), 1)
    exercises.check_loglog_slopes({0.0: fit[0]}, rows)
    exercises.check_loglog_slopes({0.0: np.polyfit(np.log10(n), np.log10(seconds), 1)[0]}, rows)
    mistakes = {
        "linear axes": np.polyfit(n, seconds, 1)[0],
        "log of the seconds only": np.polyfit(n, np.log(seconds), 1)[0],
        "axes swapped": np.polyfit(np.log(seconds), np.log(n), 1)[0],
        "intercept": fit[1],
        "client's time": 1.0,
        "one number": fit,
        "not the slope": fit[0] + 0.5,
        "still `...`": ...,
    }
    for message, wrong in mistakes.items():
        answer = wrong if wrong is ... else {0.0: wrong}
        fails(exercises.check_loglog_slopes, answer, rows, match=message)
    fails(exercises.check_loglog_slopes, {0.1: fit[0]}, rows, match="no slope for dropout")


def test_the_slowest_phase_is_unmasking_and_the_others_get_a_hint():
    exercises.check_slowest_phase("unmasking")
    for phase, hint in {
        "advertise_keys": "broadcasts the public keys",
        "share_keys": "only routes",
        "masked_input": "only stores each y_u",
        "decrypting": "name one of the phases",
        ...: "still `...`",
    }.items():
        fails(exercises.check_slowest_phase, phase, match=hint)


# --- exercise 5: a declared dropout --------------------------------------------------------------


def test_the_declared_dropout_check_names_sign_levels_and_the_wrong_client():
    rng = np.random.default_rng(0)
    updates = {u: np.clip(rng.normal(0, 0.02, size=50), -1, 1) for u in range(4)}
    full = sa.secure_sum(updates, bits=16, seed=0)
    declared = sa.secure_sum(updates, bits=16, dropouts={2}, seed=1)
    kw = dict(client=2, clip=1.0, bits=16)
    exercises.check_declared_dropout(full.sum - declared.sum, updates, **kw)
    other = sa.secure_sum(updates, bits=16, dropouts={1}, seed=1)
    mistakes = {
        "minus client 2's update": declared.sum - full.sum,
        "quantisation levels, not values": full.sum_int - declared.sum_int,
        "client 1's update, not client 2's": full.sum - other.sum,
        "the whole sum": full.sum,
        "has shape": (full.sum - declared.sum)[:10],
        "is not client 2's update": full.sum - declared.sum + 0.1,
        "still `...`": ...,
    }
    for message, wrong in mistakes.items():
        fails(exercises.check_declared_dropout, wrong, updates, match=message, **kw)
