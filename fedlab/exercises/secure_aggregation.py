"""Checks for notebook 12's exercises (secure aggregation): quantising and dequantising updates,
pairwise masks that cancel, removing a dropped client's masks, runs with other secure-aggregation
settings, the server's cost as n grows, and a server that declares a client dropped."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from fedlab.exercises.core import (
    CheckFailed,
    Mistake,
    _describe,
    _settings,
    call,
    check_choice,
    diagnose,
    passed,
    require,
    same,
)

__all__ = [
    "check_aborted_rounds",
    "check_bits_error",
    "check_clipped_share",
    "check_declared_dropout",
    "check_dequantize_sum",
    "check_loglog_slopes",
    "check_mask_update",
    "check_quantize_levels",
    "check_remove_dropped_masks",
    "check_secure_runs",
    "check_server_rows",
    "check_slowest_phase",
]


# --- quantisation (exercise 1) -------------------------------------------------------------------


def _step(clip: float, bits: int) -> float:
    """The quantisation step of fedlab.secure_aggregation: 2^bits − 1 levels over [−clip, clip]."""
    return 2.0 * clip / (2**bits - 2)


def _quantize_example(seed: int | None) -> tuple[np.ndarray, float, int]:
    """Values in [−clip, clip] (0 and both ends among them), clip and bits: by hand or seeded."""
    if seed is None:
        return np.array([-0.5, -0.2, 0.0, 0.05, 0.3, 0.5]), 0.5, 3
    rng = np.random.default_rng(seed)
    clip, bits = float(rng.uniform(0.1, 2.0)), int(rng.integers(3, 9))
    values = np.concatenate([[-clip, 0.0, clip], rng.uniform(-clip, clip, 12)])
    return rng.permutation(values), clip, bits


def check_quantize_levels(quantize_levels: Callable, seed: int | None = None) -> None:
    """Check ``quantize_levels(x, clip, bits)``: each value of ``x`` (in ``[-clip, clip]``) as the
    nearest of the ``2^bits − 1`` levels, numbered 0 … 2^bits − 2, level q standing for
    ``q · step − clip`` with ``step = 2·clip / (2^bits − 2)`` (``sa.quantize``).

    It recognises: 2^bits levels (step ``2·clip / (2^bits − 1)``: 0 is then no level); a step of
    ``clip / (2^bits − 2)`` (the range is 2·clip wide); levels of x without the shift by clip
    (negative levels); rounding down instead of to the nearest level (a bias); the rounded values
    returned instead of their level numbers.

    Example:
        >>> from fedlab.secure_aggregation import quantize
        >>> check_quantize_levels(quantize)
        ✓ quantize_levels: the nearest of 2^bits − 1 levels, step 2·clip / (2^bits − 2), 0 a level
        >>> check_quantize_levels(lambda x, clip, bits: np.floor((x + clip) / (2 * clip / (2**bits - 2))))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: quantize_levels rounds down...
    """
    x, clip, bits = _quantize_example(seed)
    got = call(quantize_levels, "quantize_levels", x.copy(), clip, bits)
    step = _step(clip, bits)
    expected = np.rint((x + clip) / step)
    if np.shape(got) != x.shape:
        raise CheckFailed(
            f"quantize_levels returns shape {np.shape(got)} for {len(x)} values: one level per value"
        )
    mistakes = [
        Mistake(
            np.rint((x + clip) / (2 * clip / (2**bits - 1))),
            "quantize_levels uses 2^bits levels (step 2·clip / (2^bits − 1)): then 0 falls "
            "halfway between two levels and every unchanged weight is rounded the same way. Use "
            "2^bits − 1 levels: step = 2·clip / (2^bits − 2), so 0 is level 2^(bits−1) − 1",
        ),
        Mistake(
            np.rint((x + clip) / (clip / (2**bits - 2))),
            "quantize_levels' step is clip / (2^bits − 2): the range [−clip, clip] is 2·clip "
            "wide, so step = 2·clip / (2^bits − 2) (levels run from 0 to 2^bits − 2)",
        ),
        Mistake(
            np.rint(x / step),
            "quantize_levels gives negative levels: it quantises x itself. Shift first, "
            "(x + clip) / step, so that −clip is level 0 and clip is level 2^bits − 2",
        ),
        Mistake(
            np.floor((x + clip) / step),
            "quantize_levels rounds down (np.floor or int()): every value loses up to a whole "
            "step, always downwards, a bias that does not average out over clients. Round to the "
            "nearest level: np.rint",
        ),
        Mistake(
            np.rint((x + clip) / step) * step - clip,
            "quantize_levels returns the rounded values, q · step − clip: return the level "
            "numbers q themselves, integers from 0 to 2^bits − 2 (what a client masks and sends)",
        ),
    ]
    diagnose(
        got,
        expected,
        mistakes,
        "quantize_levels is not the nearest level: np.rint((x + clip) / step) with "
        "step = 2·clip / (2^bits − 2)",
        atol=1e-9,
    )
    passed(
        "quantize_levels: the nearest of 2^bits − 1 levels, step 2·clip / (2^bits − 2), 0 a level"
    )


def check_dequantize_sum(dequantize_sum: Callable, seed: int | None = None) -> None:
    """Check ``dequantize_sum(q_sum, num_clients, clip, bits)``: the float sum that the integer
    sum ``q_sum`` (uint64) of ``num_clients`` clients' levels stands for,
    ``q_sum · step − num_clients · clip`` (``sa.dequantize``).

    It recognises: the step of 2^bits levels (a scale mismatch with the quantiser); clip
    subtracted once instead of once per client; no shift at all; the mean instead of the sum; a
    step of ``clip / (2^bits − 2)``; an unsigned subtraction that wrapped around.

    Example:
        >>> from fedlab.secure_aggregation import dequantize
        >>> check_dequantize_sum(dequantize)
        ✓ dequantize_sum: q_sum · step − num_clients · clip, on the quantiser's scale
        >>> check_dequantize_sum(lambda q, m, clip, bits: q * 2 * clip / (2**bits - 2) - clip)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: dequantize_sum subtracts clip once...
    """
    if seed is None:
        q_sum, num_clients, clip, bits = np.array([0, 9, 18, 5, 10], np.uint64), 3, 0.5, 3
    else:
        rng = np.random.default_rng(seed)
        num_clients, bits = int(rng.integers(3, 12)), int(rng.integers(4, 17))
        clip = float(rng.uniform(0.05, 3.0))
        q_sum = rng.integers(0, num_clients * (2**bits - 2) + 1, size=8).astype(np.uint64)
    got = call(dequantize_sum, "dequantize_sum", q_sum.copy(), num_clients, clip, bits)
    q, step = q_sum.astype(np.float64), _step(clip, bits)
    expected = q * step - num_clients * clip
    if np.shape(got) != q.shape:
        raise CheckFailed(
            f"dequantize_sum returns shape {np.shape(got)} for {len(q)} sums: one value per sum"
        )
    if np.max(np.abs(np.asarray(got, dtype=np.float64))) > 1e6 * (num_clients * clip + 1):
        raise CheckFailed(
            "dequantize_sum returns enormous numbers: it subtracted in unsigned integers (uint64 "
            "wraps around below 0 instead of going negative). Convert to float first: "
            "q_sum.astype(float)"
        )
    mistakes = [
        Mistake(
            q * 2 * clip / (2**bits - 1) - num_clients * clip,
            "dequantize_sum uses the step of 2^bits levels, 2·clip / (2^bits − 1), but the "
            "levels were made with step 2·clip / (2^bits − 2): a scale mismatch that shrinks "
            "every sum. Dequantise with the quantiser's own step",
        ),
        Mistake(
            q * step - clip,
            "dequantize_sum subtracts clip once: each client's level was shifted by clip, so a "
            "sum of num_clients levels is shifted by num_clients · clip",
        ),
        Mistake(
            q * step,
            "dequantize_sum forgets the shift: level q stands for q · step − clip, so subtract "
            "num_clients · clip from the scaled sum",
        ),
        Mistake(
            (q * step - num_clients * clip) / num_clients,
            "dequantize_sum returns the mean: return the sum (the server divides later, by the "
            "clients' weights)",
        ),
        Mistake(
            q * clip / (2**bits - 2) - num_clients * clip,
            "dequantize_sum's step is clip / (2^bits − 2): the range [−clip, clip] is 2·clip "
            "wide, step = 2·clip / (2^bits − 2)",
        ),
    ]
    diagnose(
        got,
        expected,
        mistakes,
        "dequantize_sum is not q_sum · step − num_clients · clip with step = 2·clip / (2^bits − 2)",
        atol=1e-9,
    )
    passed("dequantize_sum: q_sum · step − num_clients · clip, on the quantiser's scale")


def check_bits_error(
    mean_error: Any,
    update_size: Any,
    *,
    sizes: Sequence[float],
    clip: float,
    plain_weights: Sequence[np.ndarray],
    start: Sequence[np.ndarray],
) -> None:
    """Check ``mean_error`` (``{bits: bound}`` for 16, 8 and 4 bits: the largest quantisation
    error of one coordinate of the aggregated mean update, section 6's ``bound``,
    ``quantization_error_bound(K, clip, bits) / Σ n_k / n_max`` for clients of ``sizes``) and
    ``update_size`` (the median ``|Δ|`` of plain FedAvg's first-round update ``plain_weights −
    start``, every weight; the median over the weights that moved is accepted too).

    It recognises: stubs; missing bit widths; the bound of the sum (not divided by the clients'
    weights); half a step (divided by the number of clients instead); a whole step; the step of
    2^bits levels; the median of the signed update; the mean or the largest ``|Δ|``; the weights
    instead of the update; one number per layer.

    Example:
        >>> sizes, start = [10, 10], [np.zeros(3)]
        >>> plain = [np.array([0.01, -0.02, 0.0])]
        >>> bounds = {b: 2 * (2 / (2**b - 2)) / 2 / 2 for b in (16, 8, 4)}
        >>> check_bits_error(bounds, 0.01, sizes=sizes, clip=1.0, plain_weights=plain, start=start)
        ✓ mean_error: 1.5e-05 (16 bits), 0.0039 (8 bits), 0.071 (4 bits) per coordinate of the mean; a typical |Δ| is 0.01
        >>> sum_bounds = {b: 2 * (2 / (2**b - 2)) / 2 for b in (16, 8, 4)}
        >>> check_bits_error(sum_bounds, 0.01, sizes=sizes, clip=1.0, plain_weights=plain, start=start)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: mean_error is the bound of the sum...
    """
    require("mean_error", mean_error, "{bits: error bound of the mean update} for 16, 8 and 4")
    require("update_size", update_size, "the median |Δ| of plain FedAvg's first-round update")
    wanted = (16, 8, 4)
    if not isinstance(mean_error, Mapping):
        raise CheckFailed("mean_error should be a dict {bits: bound}, for 16, 8 and 4 bits")
    missing = [b for b in wanted if b not in mean_error]
    if missing:
        raise CheckFailed(f"mean_error has no bound for {missing} bits")
    n = np.asarray(sizes, dtype=np.float64)
    k, weight = len(n), float((n / n.max()).sum())

    def bounds(step_of: Callable[[int], float], scale: float) -> list[float]:
        return [k * step_of(b) / 2 * scale for b in wanted]

    got = [float(mean_error[b]) for b in wanted]
    diagnose(
        got,
        bounds(lambda b: _step(clip, b), 1 / weight),
        [
            Mistake(
                bounds(lambda b: _step(clip, b), 1.0),
                "mean_error is the bound of the sum, quantization_error_bound(NUM_CLIENTS, ...): "
                "the server divides the sum by Σ n_k / n_max, and so does its error (section 6's "
                "`bound`)",
            ),
            Mistake(
                bounds(lambda b: _step(clip, b), 1 / k),
                "mean_error is half a step, as if the sum were divided by the number of clients: "
                "the server divides by Σ n_k / n_max, a little less here (the clients' sizes "
                "differ); use section 6's formula for `bound`",
            ),
            Mistake(
                bounds(lambda b: _step(clip, b), 2 / weight),
                "mean_error uses a whole step per client: rounding to the nearest level is off "
                "by at most half a step",
            ),
            Mistake(
                bounds(lambda b: 2 * clip / (2**b - 1), 1 / weight),
                "mean_error uses the step of 2^bits levels, 2·clip / (2^bits − 1): fedlab "
                "quantises to 2^bits − 1 levels (sa.quantization_error_bound knows)",
            ),
        ],
        "mean_error is not section 6's `bound` for each number of bits: "
        "sa.quantization_error_bound(NUM_CLIENTS, CLIP, bits) / (sizes / sizes.max()).sum()",
        atol=0.0,
    )
    delta = np.concatenate(
        [np.ravel(np.asarray(w, np.float64) - s) for w, s in zip(plain_weights, start, strict=True)]
    )
    weights = np.concatenate([np.ravel(w) for w in plain_weights])
    if isinstance(update_size, list | tuple) or np.ndim(update_size) > 0:
        raise CheckFailed(
            "update_size should be one number: concatenate the layers' updates first "
            "(np.concatenate of the raveled arrays), then take the median"
        )
    median, moved = np.median(np.abs(delta)), np.median(np.abs(delta[delta != 0]))
    if not (same(update_size, median, atol=0.0) or same(update_size, moved, atol=0.0)):
        diagnose(
            update_size,
            median,
            [
                Mistake(
                    np.median(delta),
                    "update_size is the median of the signed update: positive and negative "
                    "steps cancel; take the median of np.abs(Δ)",
                ),
                Mistake(
                    np.abs(delta).mean(),
                    "update_size is the mean |Δ|: a few large steps pull it up; the exercise "
                    "asks for the median, a typical step",
                ),
                Mistake(np.abs(delta).max(), "update_size is the largest |Δ|: take the median"),
                Mistake(
                    np.median(np.abs(weights)),
                    "update_size is the median size of the weights: the update is the change "
                    "Δ = weights after the round − start",
                ),
            ],
            "update_size is not the median |Δ| of plain FedAvg's first round "
            '(one["plain"].weights minus start, every weight)',
            atol=0.0,
        )
    passed(
        f"mean_error: {got[0]:.2g} (16 bits), {got[1]:.2g} (8 bits), {got[2]:.2g} (4 bits) per "
        f"coordinate of the mean; a typical |Δ| is {float(update_size):.2g}"
    )


# --- runs with other settings (exercises 1–3) ----------------------------------------------------


def check_secure_runs(
    runs: Any,
    reference: Any,
    *,
    name: str = "runs",
    what: str = "the reference run",
    **changed: Any,
) -> None:
    """Check runs made exactly as ``reference`` (a History with secure aggregation) except for
    the settings of ``SecureAggregation`` in ``changed`` (``clip``, ``bits``, ``dropout``,
    ``threshold``): one value for every run, or a dict with one value per run (which names the
    runs expected).

    It recognises: stubs and missing runs; a run without secure aggregation; a wanted setting not
    applied; another secure-aggregation setting changed as well; any other setting changed (data,
    split, algorithm, seed); fewer or more rounds.

    Example:
        >>> from fedlab.history import History
        >>> def run(**settings):
        ...     secure = {"clip": 1.0, "bits": 16, "dropout": 0.0, "threshold": 0.5, **settings}
        ...     return History(config={"algorithm": {"name": "FedAvg"}, "secure_aggregation": secure})
        >>> check_secure_runs({8: run(bits=8)}, run(), name="bits_runs", bits={8: 8})
        ✓ bits_runs: 1 runs, each made as the reference run, with bits per run (8 → 8)
        >>> check_secure_runs({8: run(bits=8, clip=0.5)}, run(), name="bits_runs", bits={8: 8})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: bits_runs[8] also changed clip (1.0 → 0.5)...
    """
    require(name, runs, f"make the runs, each as {what} with {_describe(changed)}")
    from fedlab.history import History

    wanted_keys = next((list(v) for v in changed.values() if isinstance(v, Mapping)), None)
    keyed = isinstance(runs, Mapping)
    if wanted_keys is not None and not keyed:
        raise CheckFailed(
            f"{name} should be a dict with one History per run: {', '.join(map(repr, wanted_keys))}"
        )
    if wanted_keys is not None:
        missing = [key for key in wanted_keys if key not in runs]
        if missing:
            raise CheckFailed(f"{name} has no run for {', '.join(map(repr, missing))}")
    items = list(runs.items()) if keyed else [(None, runs)]
    base_secure = reference.config.get("secure_aggregation", {})
    base = {k: v for k, v in _settings(reference).items() if k != "secure_aggregation"}
    for key, run in items:
        label = name if key is None else f"{name}[{key!r}]"
        require(label, run, f"run it as {what} with {_describe(changed)}")
        if not isinstance(run, History):
            raise CheckFailed(
                f"{label} is a {type(run).__name__}, not the History that fedlab.simulate returns"
            )
        secure = run.config.get("secure_aggregation")
        if secure is None:
            raise CheckFailed(
                f"{label} ran without secure aggregation: pass "
                "secure_aggregation=sa.SecureAggregation(...) to fedlab.simulate"
            )
        wants = {s: (v[key] if isinstance(v, Mapping) else v) for s, v in changed.items()}
        for setting, value in wants.items():
            if secure.get(setting) != value:
                raise CheckFailed(
                    f"{label} ran with {setting}={secure.get(setting)!r}; this exercise wants "
                    f"SecureAggregation(..., {setting}={value!r}) (change only that)"
                )
        for setting, value in base_secure.items():
            if setting not in wants and secure.get(setting) != value:
                raise CheckFailed(
                    f"{label} also changed {setting} ({value!r} → {secure.get(setting)!r}) in "
                    f"SecureAggregation: change only {' and '.join(wants)}, so any difference "
                    "has one cause"
                )
        got = _settings(run)
        for setting, value in base.items():
            if got.get(setting) == value:
                continue
            if setting == "num_rounds":
                raise CheckFailed(
                    f"{label} has {got['num_rounds']} rounds, {what} has {value}: run as many, "
                    "so the two compare"
                )
            raise CheckFailed(
                f"{label} also changed {setting} ({value!r} → {got.get(setting)!r}): change only "
                f"{' and '.join(wants)}, so any difference you see has one cause"
            )
    made = f"{len(items)} runs, each made" if keyed else "made"
    passed(f"{name}: {made} as {what}, with {_describe(changed)}")


def check_clipped_share(clipped_share: Any, clip_run: Any) -> None:
    """Check ``clipped_share``: the share of the sent coordinates that the clip cut, averaged
    over the rounds of ``clip_run`` (its ``clipped_fraction``, one number a round).

    It recognises: the stub; a percentage; the share *not* clipped; the first or the last round
    only; the largest round; 0 (a run whose clip nothing reaches).

    Example:
        >>> from fedlab.history import History, RoundRecord
        >>> record = dict(clients=(0,), client_loss=(0.1,), client_num_examples=(1,),
        ...               train_loss=0.1, test_loss=0.1, test_accuracy=0.5, client_drift=(0.0,),
        ...               drift_mean=0.0, drift_max=0.0, update_cosine=(1.0,), bytes_down=1,
        ...               bytes_up=1, wall_time=0.0)
        >>> run = History(rounds=[RoundRecord(round=r, clipped_fraction=f, **record)
        ...                       for r, f in ((1, 0.08), (2, 0.04))])
        >>> check_clipped_share(0.06, run)
        ✓ clipped_share: the clip cut 6.0 % of the coordinates sent, on average over 2 rounds
        >>> check_clipped_share(6.0, run)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: clipped_share = 6.0 is a percentage...
    """
    require("clipped_share", clipped_share, "the mean of clip_run.clipped_fraction")
    fractions = np.array([r.clipped_fraction for r in clip_run.rounds], dtype=np.float64)
    expected = float(fractions.mean())
    if np.ndim(clipped_share) > 0:
        raise CheckFailed(
            "clipped_share should be one number: the mean over the rounds of clipped_fraction"
        )
    mistakes = [
        Mistake(
            100 * expected,
            f"clipped_share = {clipped_share} is a percentage: give the share, a number in [0, 1]",
        ),
        Mistake(
            1 - expected,
            "clipped_share is the share of coordinates the clip left alone: 1 − what was asked",
        ),
        Mistake(
            fractions[-1],
            "clipped_share is the last round's share: average clipped_fraction over all rounds",
        ),
        Mistake(
            fractions[0],
            "clipped_share is the first round's share: average clipped_fraction over all rounds",
        ),
        Mistake(fractions.max(), "clipped_share is the largest round's share: take the mean"),
        Mistake(
            0.0,
            "clipped_share is 0: nothing was clipped in that run. Take clip_run's "
            "clipped_fraction (clip=0.01), not that of section 6's run (clip=1)",
        ),
    ]
    diagnose(
        clipped_share,
        expected,
        mistakes,
        "clipped_share is not the mean of clip_run.clipped_fraction",
        atol=1e-9,
    )
    passed(
        f"clipped_share: the clip cut {100 * expected:.1f} % of the coordinates sent, on average "
        f"over {len(fractions)} rounds"
    )


def check_aborted_rounds(aborted: Any, threshold_runs: Mapping[Any, Any]) -> None:
    """Check ``aborted``: ``{key: number of rounds the server refused to unmask}`` for each run
    of ``threshold_runs`` (``r.secure_aborted`` for ``r`` in its rounds).

    It recognises: the stub; a missing run; the rounds that went through instead; the number of
    dropped clients; one True/False per round instead of a count; two runs' counts swapped.

    Example:
        >>> from types import SimpleNamespace as NS
        >>> def run(*flags):
        ...     return NS(rounds=[NS(secure_aborted=f, secure_dropped=(1, 2)) for f in flags])
        >>> runs = {0.5: run(False, False, False), 0.9: run(True, False, True)}
        >>> check_aborted_rounds({0.5: 0, 0.9: 2}, runs)
        ✓ aborted: 0 of 3 rounds for 0.5, 2 of 3 rounds for 0.9
        >>> check_aborted_rounds({0.5: 3, 0.9: 1}, runs)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: aborted[0.5] = 3 counts the rounds that went through...
    """
    require("aborted", aborted, "{threshold: number of aborted rounds}, one count per run")
    if not isinstance(aborted, Mapping):
        raise CheckFailed(f"aborted should be a dict with a count per run: {list(threshold_runs)}")
    missing = [key for key in threshold_runs if key not in aborted]
    if missing:
        raise CheckFailed(f"aborted has no count for {', '.join(map(repr, missing))}")
    truth = {
        key: sum(bool(r.secure_aborted) for r in run.rounds) for key, run in threshold_runs.items()
    }
    for key, run in threshold_runs.items():
        got = aborted[key]
        if isinstance(got, list | tuple | np.ndarray):
            raise CheckFailed(
                f"aborted[{key!r}] holds one value per round: count the aborted ones, "
                "sum(r.secure_aborted for r in run.rounds)"
            )
        if got == truth[key]:
            continue
        others = [k for k in threshold_runs if k != key and truth[k] == got]
        hints = [
            (
                len(run.rounds) - truth[key],
                "counts the rounds that went through: count those whose r.secure_aborted is True",
            ),
            (
                sum(len(r.secure_dropped) for r in run.rounds),
                "counts the clients that dropped, not the rounds the server refused "
                "(r.secure_aborted)",
            ),
        ]
        for answer, hint in hints:
            if got == answer:
                raise CheckFailed(f"aborted[{key!r}] = {got} {hint}")
        if others:
            raise CheckFailed(
                f"aborted[{key!r}] = {got} is the count of the run {others[0]!r}: count each "
                "run's own rounds"
            )
        raise CheckFailed(
            f"aborted[{key!r}] = {got} is not the number of rounds with r.secure_aborted in "
            "that run"
        )
    rounds = {key: len(run.rounds) for key, run in threshold_runs.items()}
    passed(
        "aborted: "
        + ", ".join(f"{truth[k]} of {rounds[k]} rounds for {k!r}" for k in threshold_runs)
    )


# --- masks (exercise 3) --------------------------------------------------------------------------


def _mask_example(seed: int | None) -> tuple[dict[int, np.ndarray], dict, int]:
    """Clients' integer inputs, a mask per pair (u < v) and k: by hand or seeded."""
    rng = np.random.default_rng(2024 if seed is None else seed)
    n, k, m = (4, 8, 5) if seed is None else (int(rng.integers(4, 7)), int(rng.integers(6, 20)), 6)
    xs = {u: rng.integers(0, 2**k // n, size=m) for u in range(n)}
    masks = {(u, v): rng.integers(0, 2**k, size=m) for u in range(n) for v in range(u + 1, n)}
    return xs, masks, k


def _signed(u: int, masks: Mapping, above: int, below: int) -> np.ndarray:
    """Σ over u's masks: ``above`` × those with a larger id, ``below`` × those with a smaller."""
    total = 0
    for (a, b), r in masks.items():
        if a == u:
            total = total + above * r
        elif b == u:
            total = total + below * r
    return total


def _out_of_range(values: list[Any], k: int) -> bool:
    return any(np.any(np.asarray(v) < 0) or np.any(np.asarray(v) >= 2**k) for v in values)


def check_mask_update(mask_update: Callable, seed: int | None = None) -> None:
    """Check ``mask_update(x, u, pair_masks, k)``: client u's masked vector
    ``y_u = x + Σ_{v > u} r_uv − Σ_{v < u} r_vu  (mod 2^k)``, where ``pair_masks[(a, b)]`` (a < b)
    is the mask r_ab of the pair; summed over the clients, every mask cancels.

    It recognises: both clients of a pair adding the mask (or both subtracting): masks that do
    not cancel; the signs the other way round; the masks with a larger id added, the others left
    out; values not reduced modulo 2^k; the masks without x; x unmasked.

    Example:
        >>> def mask_update(x, u, pair_masks, k):
        ...     y = x.copy()
        ...     for (a, b), r in pair_masks.items():
        ...         y = y + r if a == u else y - r if b == u else y
        ...     return y % 2**k
        >>> check_mask_update(mask_update)
        ✓ mask_update: u adds r_uv for v > u and subtracts r_vu for v < u, mod 2^k: Σ y = Σ x
        >>> def both_add(x, u, pair_masks, k):
        ...     return (x + sum(r for pair, r in pair_masks.items() if u in pair)) % 2**k
        >>> check_mask_update(both_add)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: mask_update's masks do not cancel: both clients of a pair add r_uv...
    """
    xs, masks, k = _mask_example(seed)
    modulus = 2**k
    got = []
    for u, x in xs.items():
        copied = {pair: r.copy() for pair, r in masks.items()}
        got.append(call(mask_update, "mask_update", x.copy(), u, copied, k))
    if any(np.shape(y) != xs[0].shape for y in got):
        raise CheckFailed("mask_update should return one vector shaped like x: the masked y_u")
    if _out_of_range(got, k):
        raise CheckFailed(
            "mask_update's y_u has values below 0 or at least 2^k: not reduced modulo 2^k. A y_u "
            "that can be negative or large is no one-time pad (its size says something about x); "
            "return y % 2**k"
        )

    def each(above: int, below: int, with_x: bool = True) -> list[np.ndarray]:
        return [(with_x * x + _signed(u, masks, above, below)) % modulus for u, x in xs.items()]

    mistakes = [
        Mistake(
            each(1, 1),
            "mask_update's masks do not cancel: both clients of a pair add r_uv, so Σ y = Σ x + "
            "2 Σ r. One adds, the other subtracts: u adds r_uv for v > u, subtracts r_vu for v < u",
        ),
        Mistake(
            each(-1, -1),
            "mask_update's masks do not cancel: both clients of a pair subtract r_uv. One adds, "
            "the other subtracts: u adds r_uv for v > u, subtracts r_vu for v < u",
        ),
        Mistake(
            each(-1, 1),
            "mask_update has the signs the other way round: u subtracts the masks it shares with "
            "larger ids. The masks still cancel, but the server removes a dropped client's masks "
            "assuming the protocol's convention: the smaller id adds, the larger subtracts",
        ),
        Mistake(
            each(1, 0),
            "mask_update adds the masks u shares with larger ids and leaves out those with "
            "smaller ids: subtract r_vu for every v < u, or they never cancel",
        ),
        Mistake(
            each(1, -1, with_x=False),
            "mask_update returns the masks without x: y_u = x + the masks",
        ),
        Mistake(
            [x % modulus for x in xs.values()], "mask_update returns x unmasked: add the masks"
        ),
    ]
    expected = each(1, -1)
    diagnose(
        got,
        expected,
        mistakes,
        "mask_update is not x + Σ_{v > u} r_uv − Σ_{v < u} r_vu mod 2^k",
        atol=0.0,
    )
    passed("mask_update: u adds r_uv for v > u and subtracts r_vu for v < u, mod 2^k: Σ y = Σ x")


def check_remove_dropped_masks(remove_dropped_masks: Callable, seed: int | None = None) -> None:
    """Check ``remove_dropped_masks(masked_sum, survivors, dropped, pair_masks, k)``: the sum of the
    survivors' inputs mod 2^k, from ``masked_sum`` (Σ y_u over the survivors, masked as in
    ``check_mask_update``) and ``pair_masks``, the masks r_ab (a < b) of every pair that includes
    a dropped client (rebuilt from the dropped clients' keys).

    It recognises: the dropped clients' masks left in (not recovered); every mask removed with
    the wrong sign; every mask subtracted (or added) whatever its sign; a mask between two dropped
    clients corrected too (it is in no y_u); values not reduced modulo 2^k.

    Example:
        >>> def remove(masked_sum, survivors, dropped, pair_masks, k):
        ...     total = masked_sum.copy()
        ...     for (a, b), r in pair_masks.items():
        ...         if a in survivors:
        ...             total = total - r
        ...         elif b in survivors:
        ...             total = total + r
        ...     return total % 2**k
        >>> check_remove_dropped_masks(remove)
        ✓ remove_dropped_masks: each survivor's mask with a dropped client removed with its sign
        >>> check_remove_dropped_masks(lambda s, survivors, dropped, masks, k: s)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: remove_dropped_masks leaves the dropped clients' masks in the sum...
    """
    xs, masks, k = _mask_example(seed)
    modulus, n = 2**k, len(xs)
    if seed is None:
        dropped = [1, 3]
    else:
        rng = np.random.default_rng(seed)
        dropped = sorted(int(d) for d in rng.choice(n, size=2, replace=False))
    survivors = [u for u in xs if u not in dropped]
    masked = {u: (xs[u] + _signed(u, masks, 1, -1)) % modulus for u in survivors}
    masked_sum = sum(masked.values()) % modulus
    known = {(a, b): r for (a, b), r in masks.items() if a in dropped or b in dropped}
    got = call(
        remove_dropped_masks,
        "remove_dropped_masks",
        masked_sum.copy(),
        list(survivors),
        list(dropped),
        {pair: r.copy() for pair, r in known.items()},
        k,
    )
    if np.shape(got) != masked_sum.shape:
        raise CheckFailed("remove_dropped_masks should return one vector: the survivors' sum")
    if _out_of_range([got], k):
        raise CheckFailed(
            "remove_dropped_masks returns values below 0 or at least 2^k: reduce modulo 2^k "
            "(% 2**k), as every sum in the protocol is"
        )
    pairs_s = {p: r for p, r in known.items() if p[0] in survivors or p[1] in survivors}
    smaller = sum((r for (a, _), r in pairs_s.items() if a in survivors), np.zeros_like(masked_sum))
    larger = sum((r for (_, b), r in pairs_s.items() if b in survivors), np.zeros_like(masked_sum))
    both = sum(
        (r for (a, b), r in known.items() if a in dropped and b in dropped),
        np.zeros_like(masked_sum),
    )
    expected = (masked_sum - smaller + larger) % modulus
    mistakes = [
        Mistake(
            masked_sum,
            "remove_dropped_masks leaves the dropped clients' masks in the sum: every survivor's "
            "y_u still holds +r_ud (u < d) or −r_du (d < u) for each dropped d, and they only "
            "cancel against the dropped client's y, which never came. Remove them",
        ),
        Mistake(
            (masked_sum + smaller - larger) % modulus,
            "remove_dropped_masks removes each mask with the wrong sign, doubling it instead: a "
            "survivor u < d added r_ud, so subtract it; a survivor u > d subtracted r_du, so add "
            "it back",
        ),
        Mistake(
            (masked_sum - smaller - larger) % modulus,
            "remove_dropped_masks subtracts every mask: a survivor u > d had subtracted r_du, "
            "so that one must be added back",
        ),
        Mistake(
            (masked_sum + smaller + larger) % modulus,
            "remove_dropped_masks adds every mask: a survivor u < d had added r_ud, so that "
            "one must be subtracted",
        ),
        Mistake(
            (masked_sum - smaller + larger + both) % modulus,
            "remove_dropped_masks also corrects for the mask of two dropped clients: neither sent "
            "a y, so that mask is in no y_u. Correct only the pairs with a survivor",
        ),
        Mistake(
            (masked_sum - smaller + larger - both) % modulus,
            "remove_dropped_masks also corrects for the mask of two dropped clients: neither sent "
            "a y, so that mask is in no y_u. Correct only the pairs with a survivor",
        ),
    ]
    diagnose(
        got,
        expected,
        mistakes,
        "remove_dropped_masks does not give the survivors' sum: for every pair (u, d) of a "
        "survivor and a dropped client, undo what u did to its y_u",
        atol=0.0,
    )
    passed("remove_dropped_masks: each survivor's mask with a dropped client removed with its sign")


# --- the server's bill (exercise 4) --------------------------------------------------------------


def check_server_rows(
    server_rows: Any, clients: Sequence[int], fractions: Sequence[float], vector_length: int
) -> None:
    """Check ``server_rows``: ``{dropout_fraction: measure_overhead(clients, vector_length,
    dropout_fraction=...)}`` for each of ``fractions``.

    It recognises: the stub; a missing fraction; other numbers of clients (n = 100 left out);
    another vector length; rows without the fraction's dropouts, or with another fraction's.

    Example:
        >>> from fedlab.secure_aggregation import measure_overhead
        >>> rows = {f: measure_overhead((4, 6), 8, dropout_fraction=f) for f in (0.0, 0.3)}
        >>> check_server_rows(rows, (4, 6), (0.0, 0.3), 8)
        ✓ server_rows: n = 4 … 6 for dropout fractions 0.0, 0.3
    """
    require("server_rows", server_rows, "{fraction: sa.measure_overhead(...)} per fraction")
    if not isinstance(server_rows, Mapping):
        raise CheckFailed("server_rows should be a dict {dropout fraction: measure_overhead rows}")
    missing = [f for f in fractions if f not in server_rows]
    if missing:
        raise CheckFailed(f"server_rows has no rows for dropout_fraction {missing}")

    def drops(f: float) -> list[int]:
        return [min(int(f * n), n - (n // 2 + 1)) for n in clients]

    for f in fractions:
        rows = server_rows[f]
        require(f"server_rows[{f}]", rows, f"sa.measure_overhead(..., dropout_fraction={f})")
        got_n = [getattr(r, "num_clients", None) for r in rows]
        if got_n != list(clients):
            raise CheckFailed(
                f"server_rows[{f}] measures n = {got_n}; measure n = {list(clients)} (section 7's "
                "OVERHEAD_CLIENTS and 100)"
            )
        if any(r.vector_length != vector_length for r in rows):
            raise CheckFailed(
                f"server_rows[{f}] used vectors of {rows[0].vector_length} values; use "
                f"VECTOR_LENGTH = {vector_length}, as section 7"
            )
        got = [r.num_dropouts for r in rows]
        if got != drops(f):
            other = [g for g in fractions if g != f and drops(g) == got]
            if other:
                raise CheckFailed(
                    f"server_rows[{f}] has the dropouts of dropout_fraction={other[0]}: pass "
                    f"dropout_fraction={f} to sa.measure_overhead"
                )
            raise CheckFailed(
                f"server_rows[{f}] has {got} dropouts; dropout_fraction={f} gives {drops(f)}: "
                f"pass dropout_fraction={f} to sa.measure_overhead"
            )
    passed(
        f"server_rows: n = {clients[0]} … {clients[-1]} for dropout fractions "
        + ", ".join(str(f) for f in fractions)
    )


def check_loglog_slopes(slopes: Any, server_rows: Mapping[float, Sequence[Any]]) -> None:
    """Check ``slopes``: for each dropout fraction, the slope of a straight line fitted to
    log(server seconds) against log(n) through all of ``server_rows[fraction]``
    (``np.polyfit(np.log(n), np.log(seconds), 1)[0]``; any base of logarithm).

    It recognises: the stub; a missing fraction; the fit on linear axes; log on one axis only;
    the axes swapped (1 / slope); the intercept instead of the slope; the client's time instead
    of the server's.

    Example:
        >>> from types import SimpleNamespace as NS
        >>> rows = [NS(num_clients=n, server_seconds=1e-4 * n**2, client_seconds=1e-4 * n) for n in (5, 10, 20)]
        >>> check_loglog_slopes({0.0: 2.0}, {0.0: rows})
        ✓ slopes on log–log axes: 2.00 (dropout 0.0)
        >>> check_loglog_slopes({0.0: 1.0}, {0.0: rows})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: slopes[0.0] is the slope of the client's time...
    """
    require("slopes", slopes, "{fraction: slope of log(server seconds) against log(n)}")
    if not isinstance(slopes, Mapping):
        raise CheckFailed("slopes should be a dict {dropout fraction: slope}")
    for f, rows in server_rows.items():
        if f not in slopes:
            raise CheckFailed(f"slopes has no slope for dropout fraction {f}")
        n = np.array([r.num_clients for r in rows], dtype=np.float64)
        seconds = np.array([r.server_seconds for r in rows], dtype=np.float64)
        client = np.array([r.client_seconds for r in rows], dtype=np.float64)
        fit = np.polyfit(np.log(n), np.log(seconds), 1)
        if np.ndim(slopes[f]) > 0:
            raise CheckFailed(
                f"slopes[{f}] should be one number, the slope: np.polyfit(...) returns the slope "
                "and the intercept, take [0]"
            )
        diagnose(
            slopes[f],
            fit[0],
            [
                Mistake(
                    np.polyfit(n, seconds, 1)[0],
                    f"slopes[{f}] is the slope on linear axes (seconds per client): fit "
                    "log(seconds) against log(n)",
                ),
                Mistake(
                    np.polyfit(n, np.log(seconds), 1)[0],
                    f"slopes[{f}] takes the log of the seconds only: take log(n) too (log–log)",
                ),
                Mistake(
                    np.polyfit(np.log(seconds), np.log(n), 1)[0],
                    f"slopes[{f}] fits log(n) against log(seconds), the axes swapped: "
                    "np.polyfit(np.log(n), np.log(seconds), 1)",
                ),
                Mistake(
                    fit[1], f"slopes[{f}] is the intercept: polyfit's first value is the slope"
                ),
                Mistake(
                    np.polyfit(np.log(n), np.log(client), 1)[0],
                    f"slopes[{f}] is the slope of the client's time: take the server's, "
                    "r.server_seconds",
                ),
            ],
            f"slopes[{f}] is not the slope of log(server seconds) against log(n) through all "
            f"the rows of server_rows[{f}]",
            atol=1e-6,
        )
    passed(
        "slopes on log–log axes: "
        + ", ".join(f"{float(slopes[f]):.2f} (dropout {f})" for f in server_rows)
    )


def check_slowest_phase(slowest_phase: Any) -> None:
    """Check ``slowest_phase``: the protocol phase in which the server spends most of its time at
    n = 100 (``secure_sum(...).server_seconds``): unmasking, where it rebuilds n secrets from t
    shares each and regenerates every dropped client's masks.

    Example:
        >>> check_slowest_phase("unmasking")
        ✓ slowest_phase = 'unmasking'
        >>> check_slowest_phase("share_keys")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: slowest_phase = 'share_keys': in share_keys the server only routes...
    """
    from fedlab.secure_aggregation import PHASES

    if slowest_phase not in (*PHASES, None, Ellipsis):
        raise CheckFailed(
            f"slowest_phase = {slowest_phase!r}: name one of the phases, {', '.join(PHASES)}"
        )
    check_choice(
        "slowest_phase",
        slowest_phase,
        "unmasking",
        {
            "advertise_keys": "the server only broadcasts the public keys there, 2n of them; "
            "look at server_seconds again",
            "share_keys": "in share_keys the server only routes n(n − 1) ciphertexts it cannot "
            "read; look at server_seconds again",
            "masked_input": "in masked_input the server only stores each y_u; look at "
            "server_seconds again",
        },
    )


# --- a server that lies about dropouts (exercise 5) ----------------------------------------------


def check_declared_dropout(
    revealed: Any, updates: Mapping[int, Any], *, client: int, clip: float, bits: int
) -> None:
    """Check ``revealed``: the float sum of every update minus the sum with ``client`` declared
    dropped — that client's update, up to half a quantisation step.

    It recognises: the stub; the difference the other way round; the difference of the integer
    sums (levels, not values: a scale mismatch); another client's update; the full sum.

    Example:
        >>> from fedlab.secure_aggregation import secure_sum
        >>> updates = {u: np.full(3, 0.1 * u) for u in range(4)}
        >>> full = secure_sum(updates, bits=8, seed=0)
        >>> declared = secure_sum(updates, bits=8, dropouts={2}, seed=1)
        >>> check_declared_dropout(full.sum - declared.sum, updates, client=2, clip=1.0, bits=8)
        ✓ revealed is client 2's update, to within half a quantisation step (0.0039)
        >>> check_declared_dropout(declared.sum - full.sum, updates, client=2, clip=1.0, bits=8)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: revealed is minus client 2's update...
    """
    require(
        "revealed", revealed, "the sum with everyone minus the sum with client 2 declared dropped"
    )
    x = {u: np.asarray(v, dtype=np.float64) for u, v in updates.items()}
    target, step = x[client], _step(clip, bits)
    got = np.asarray(revealed, dtype=np.float64)
    if got.shape != target.shape:
        raise CheckFailed(
            f"revealed has shape {got.shape}; one update has shape {target.shape}: subtract the "
            "two sums (result.sum), element by element"
        )

    def near(value: np.ndarray, tolerance: float = step) -> bool:
        return bool(np.all(np.abs(got - value) <= tolerance))

    if near(target):
        passed(
            f"revealed is client {client}'s update, to within half a quantisation step "
            f"({step / 2:.2g})"
        )
        return
    if near(-target):
        raise CheckFailed(
            f"revealed is minus client {client}'s update: subtract the other way, the sum with "
            "everyone minus the sum without the declared client"
        )
    levels = np.rint((target + clip) / step)
    if np.all(np.abs(got - levels) <= 1):
        raise CheckFailed(
            "revealed holds quantisation levels, not values: you subtracted the integer sums "
            "(sum_int). A level q stands for q · step − clip; subtract the float sums (.sum)"
        )
    for u, other in x.items():
        if u != client and near(other):
            raise CheckFailed(
                f"revealed is client {u}'s update, not client {client}'s: declare client "
                f"{client} dropped (dropouts={{{client}}})"
            )
    if near(sum(x.values()), len(x) * step):  # each of the sum's clients off by ≤ step / 2
        raise CheckFailed(
            "revealed is the whole sum: subtract the sum computed with the client declared dropped"
        )
    raise CheckFailed(
        f"revealed is not client {client}'s update: the sum with everyone minus the sum with "
        f"dropouts={{{client}}}, both from section 5's updates"
    )
