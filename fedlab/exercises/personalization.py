"""Checks for notebook 13's exercises (personalisation and multi-task FL): fairness across
clients (the worst 10 %, not the mean), which run is best by which statistic, personalised
models evaluated on the clients' own test sets, IFCA restarts chosen by training loss, and when a
shared multi-task body pays."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from fedlab.exercises.core import CheckFailed, Mistake, call, diagnose, passed, require

__all__ = [
    "check_best_restart",
    "check_best_run",
    "check_final_losses",
    "check_personal_accuracy",
    "check_restart_success",
    "check_scarcity_gain",
    "check_whole_network_private",
    "check_worst10",
]

STATISTICS = ("mean", "median", "worst10")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)


# --- fairness: the worst 10 % of clients (exercise 1) --------------------------------------------


def _worst10_example(seed: int | None) -> list[np.ndarray]:
    """Per-client accuracies to try a ``worst10`` on: sizes where 10 % is not a whole number."""
    if seed is None:
        return [
            np.array([0.9, 0.2, 1.0, 0.85, 0.6, 0.95, 0.1, 0.8, 0.7, 1.0, 0.9, 0.75]),
            np.array([0.8, 0.5, 0.9, 0.4, 1.0]),
            np.array(
                [0.95, 0.35, 0.9, 1.0, 0.3, 0.85, 0.8, 0.9, 0.6, 0.92, 1.0, 0.88]
                + [0.91, 0.7, 0.15, 0.97, 0.82, 0.99, 0.5, 0.93, 0.86, 0.89, 0.94, 0.65]
            ),
        ]
    rng = np.random.default_rng(seed)
    return [rng.uniform(0.0, 1.0, size=n).round(3) for n in (12, 5, int(rng.integers(21, 39)))]


def _worst(values: np.ndarray, count: int) -> float:
    return float(np.sort(values)[:count].mean()) if count > 0 else float("nan")


def check_worst10(worst10: Callable, seed: int | None = None) -> None:
    """Check ``worst10(accuracies)``: the mean accuracy of the worst 10 % of clients, at least one
    (what ``History.fairness`` calls ``worst10``), tried on 12, 5 and 24 clients.

    It recognises: the stub; the mean over every client (what hides the clients served worst);
    the single worst client; the best 10 %; the 10th percentile (a boundary, not a mean);
    10 % rounded down (no client at all below 10 clients, one too few at 12); the median.

    Example:
        >>> def worst10(acc):
        ...     acc = np.sort(acc)
        ...     return float(acc[: max(1, int(np.ceil(0.1 * len(acc))))].mean())
        >>> check_worst10(worst10)
        ✓ worst10 averages the worst ⌈10 %⌉ of clients (at least one)
        >>> check_worst10(lambda acc: float(np.mean(acc)))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: worst10 returns the mean over every client...
    """
    examples = _worst10_example(seed)
    got = []
    for accuracies in examples:
        value = call(worst10, "worst10", accuracies.copy())
        if not _is_number(value) and not (isinstance(value, np.ndarray) and value.size == 1):
            raise CheckFailed(
                f"worst10 returns a {type(value).__name__}: return one number, the mean "
                "accuracy of the worst clients"
            )
        got.append(float(value))

    def each(rule: Callable[[np.ndarray], float]) -> list[float]:
        return [float(rule(a)) for a in examples]

    def at_least_one(a: np.ndarray) -> int:
        return max(1, math.ceil(0.1 * len(a)))

    if any(math.isnan(v) for v in got):
        raise CheckFailed(
            "worst10 returns nan for 5 clients: 10 % of 5 is half a client; take at least one "
            "(max(1, ceil(0.1 · n)))"
        )
    diagnose(
        got,
        each(lambda a: _worst(a, at_least_one(a))),
        [
            Mistake(
                each(np.mean),
                "worst10 returns the mean over every client: the mean hides the clients the "
                "model serves worst; sort the accuracies and average the lowest 10 %",
            ),
            Mistake(
                each(np.min),
                "worst10 returns the single worst client: average the worst 10 % (at 12 "
                "clients, two of them), a steadier number than one client",
            ),
            Mistake(
                each(lambda a: np.sort(a)[::-1][: at_least_one(a)].mean()),
                "worst10 averages the *best* 10 %: sort in increasing order (np.sort) and "
                "take the first ones",
            ),
            Mistake(
                each(lambda a: np.percentile(a, 10)),
                "worst10 returns the 10th percentile: the accuracy at the boundary, not the mean "
                "of the clients below it",
            ),
            Mistake(
                each(lambda a: _worst(a, max(1, int(0.1 * len(a))))),
                "worst10 rounds 10 % down: at 12 clients that is one client, not two; round up "
                "(math.ceil) and take at least one",
            ),
            Mistake(each(np.median), "worst10 returns the median: the worst 10 %, not the middle"),
        ],
        "worst10 is not the mean of the worst ⌈10 %⌉ of the clients: sort the accuracies, "
        "take the first max(1, ceil(0.1 · n)) and average them",
    )
    passed("worst10 averages the worst ⌈10 %⌉ of clients (at least one)")


# --- which run is best, by which statistic (exercises 1 and 2) -----------------------------------


def _runs_with_kind(runs: Mapping[Any, Any]) -> dict[Any, tuple[Any, str]]:
    """``runs`` as ``{key: (History, kind)}``: a bare History means its personal accuracies."""
    out = {}
    for key, value in runs.items():
        history, kind = value if isinstance(value, tuple) else (value, "personal")
        out[key] = (history, kind)
    return out


def _statistics(history: Any, kind: str) -> dict[str, float]:
    from fedlab.metrics import fairness

    last = history.last_client_accuracy(kind)
    return fairness([] if last is None else last)


def check_best_run(
    answer: Any,
    runs: Mapping[Any, Any],
    by: str = "worst10",
    name: str = "best",
    kinds: Mapping[Any, str] | None = None,
) -> None:
    """Check ``answer``: the key of the run in ``runs`` with the highest ``by`` statistic
    (``"mean"``, ``"median"`` or ``"worst10"``) of its per-client accuracies at its last evaluated
    round. ``runs`` maps a key to a History (its personalised models) or to ``(History, kind)``
    as in :func:`fedlab.personalization.fairness_table`; ``kinds`` gives the kind of some keys
    (e.g. ``{"FedAvg": "global"}``) instead.

    It recognises: the stub; an answer that is no key of ``runs``; the best by another statistic
    (the mean when the worst 10 % is asked: the mean hides the worst clients); the *lowest*; the
    best by the global model's accuracy when the personalised models are asked.

    Example:
        >>> from fedlab.history import History, RoundRecord
        >>> def run(accuracy):
        ...     record = RoundRecord(1, (0,), (0.0,), (1,), 0.0, 0.0, 0.0, (0.0,), 0.0, 0.0, (1.0,),
        ...                          0, 0, 0.0, client_personal_accuracy=tuple(accuracy))
        ...     return History(rounds=[record])
        >>> runs = {1.0: run([0.95, 0.95, 0.2]), 10.0: run([0.8, 0.75, 0.5])}
        >>> check_best_run(10.0, runs, by="worst10", name="best_lam")
        ✓ best_lam = 10.0: the highest worst10 (0.500)
        >>> check_best_run(1.0, runs, by="worst10", name="best_lam")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: best_lam = 1.0 has the highest *mean*...
    """
    if by not in STATISTICS:
        raise ValueError(f"by must be one of {STATISTICS}, got {by!r}")
    require(name, answer, f"the key of the run with the highest {by}")
    if not isinstance(runs, Mapping):
        raise CheckFailed(f"the runs should be a dict {{key: History}}, got {type(runs).__name__}")
    runs = _runs_with_kind(runs)
    for key, kind in (kinds or {}).items():
        if key in runs:
            runs[key] = (runs[key][0], kind)
    if answer not in runs:
        keys = ", ".join(repr(k) for k in runs)
        raise CheckFailed(f"{name} = {answer!r} is not one of the runs: answer with a key, {keys}")
    stats = {key: _statistics(h, kind) for key, (h, kind) in runs.items()}

    def best(statistic: str, scores: Mapping[Any, dict] = stats, pick: Callable = max) -> Any:
        finite = {k: s[statistic] for k, s in scores.items() if np.isfinite(s[statistic])}
        return pick(finite, key=finite.get) if finite else None

    right = best(by)
    if stats[answer][by] == stats[right][by]:  # a tie counts as right
        passed(f"{name} = {answer!r}: the highest {by} ({stats[answer][by]:.3f})")
        return
    for other in STATISTICS:
        if other != by and answer == best(other):
            raise CheckFailed(
                f"{name} = {answer!r} has the highest *{other}*, but the question asks for the "
                f"highest {by}"
                + (
                    ": the mean hides the clients a model serves worst, so compare the "
                    "worst-10 % column"
                    if by == "worst10"
                    else ""
                )
            )
    if answer == best(by, pick=min):
        raise CheckFailed(f"{name} = {answer!r} has the *lowest* {by}: pick the highest")
    if any(kind == "personal" for _, kind in runs.values()):
        global_stats = {key: _statistics(h, "global") for key, (h, _) in runs.items()}
        if answer == best(by, global_stats):
            raise CheckFailed(
                f"{name} = {answer!r} is best by the *global* model's accuracy: compare each "
                "run's personalised models (history.last_client_accuracy(), kind 'personal')"
            )
    raise CheckFailed(
        f"{name} = {answer!r}: another run has a higher {by}; print "
        "fairness_table(...) for these runs and read its column"
    )


# --- personalised models on the clients' own test sets (exercise 2) ------------------------------


def _accuracy_with(sim: Any, stacked: list[np.ndarray], data: Any, indices: Sequence) -> np.ndarray:
    """Accuracy of row k of ``stacked`` on ``data.x_train[indices[k]]`` (a Keras forward pass)."""
    model = sim.global_model()
    out = np.zeros(len(indices))
    try:
        for k, own in enumerate(indices):
            for variable, w in zip(model.trainable_variables, stacked, strict=True):
                variable.assign(w[k])
            own = np.asarray(own)
            if len(own) == 0:
                out[k] = np.nan
                continue
            logits = np.asarray(model(data.x_train[own], training=False))
            out[k] = float(np.mean(logits.argmax(axis=-1) == np.asarray(data.y_train)[own]))
    finally:
        sim.global_model()  # the global weights back in the model
    return out


def check_personal_accuracy(
    accuracy: Any, sim: Any, data: Any, split: Any, name: str = "tuned_accuracy"
) -> None:
    """Check ``accuracy``: one number per client, the accuracy of client k's personalised model
    (row k of ``sim.personal_models()``) on its own test examples, ``split.test_indices[k]``.

    It recognises: the stub; one number instead of one per client (the pooled accuracy weights
    clients by their test examples; the mean over clients is a summary); accuracy on the clients'
    *training* examples (the data the model was tuned on); the global model instead of the
    personalised ones; client 0's model for every client; percentages.

    Example:
        >>> from fedlab import Simulation, load_digits
        >>> from fedlab.models import model_fn
        >>> from fedlab.partition import hold_out, iid
        >>> from fedlab.personalization import FedAvgFineTune
        >>> digits = load_digits()
        >>> split = hold_out(iid(digits.y_train, 4, seed=0), digits.y_train)
        >>> sim = Simulation(FedAvgFineTune(2), model_fn("logreg", 10), digits, split)
        >>> tuned = sim.client_accuracy(sim.personal_models())
        >>> check_personal_accuracy(tuned, sim, digits, split)  # doctest: +ELLIPSIS
        ✓ tuned_accuracy: each client's personalised model on its own test set (mean ...)
        >>> check_personal_accuracy(float(tuned.mean()), sim, digits, split)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: tuned_accuracy is one number...
    """
    require(name, accuracy, "one accuracy per client, on its own test examples")
    test = getattr(split, "test_indices", None)
    if test is None:
        raise ValueError("split has no per-client test sets (fedlab.partition.hold_out)")
    models = sim.personal_models()
    truth = np.asarray(sim.client_accuracy(models), dtype=float)
    sizes = np.array([len(t) for t in test], dtype=float)
    if np.ndim(accuracy) == 0:
        value = float(accuracy)
        pooled = float(np.average(truth, weights=sizes))
        if math.isclose(value, pooled, abs_tol=1e-3):
            raise CheckFailed(
                f"{name} is one number, the pooled accuracy over all test examples: it weights "
                "each client by its number of test examples, so big clients dominate. Keep one "
                "accuracy per client (a list or array of length "
                f"{len(truth)}); fairness looks at each client once"
            )
        raise CheckFailed(
            f"{name} is one number: keep one accuracy per client (length {len(truth)}), so that "
            "the worst clients can be seen"
        )
    got = np.asarray(accuracy, dtype=float).ravel()
    if len(got) != len(truth):
        raise CheckFailed(f"{name} has {len(got)} values: one per client ({len(truth)})")
    train = _accuracy_with(sim, models, data, split.client_indices)
    first = [np.repeat(w[:1], len(truth), axis=0) for w in models]
    mistakes = [
        Mistake(
            train,
            f"{name} is measured on the clients' *training* examples (split.client_indices), "
            "the data the models were fine-tuned on: it flatters them. Use each client's own "
            "test examples, split.test_indices[k]",
        ),
        Mistake(
            np.asarray(sim.client_accuracy(), dtype=float),
            f"{name} is the *global* model's accuracy: use each client's personalised model, "
            "row k of sim.personal_models()",
        ),
        Mistake(
            _accuracy_with(sim, first, data, test),
            f"{name} uses client 0's model for every client: client k's model is row k of each "
            "array, [w[k] for w in models]",
        ),
        Mistake(truth * 100, f"{name} holds percentages: give accuracies in [0, 1]"),
    ]
    diagnose(
        got,
        truth,
        mistakes,
        f"{name} is not each personalised model's accuracy on its own client's test examples: "
        "for client k, set the model's weights to [w[k] for w in models] and compare its "
        "predictions on data.x_train[split.test_indices[k]] with the labels",
        atol=1e-3,
    )
    passed(
        f"{name}: each client's personalised model on its own test set (mean {truth.mean():.2f})"
    )


# --- IFCA restarts (exercise 3) ------------------------------------------------------------------


def check_final_losses(final_loss: Any, runs: Mapping[Any, Any]) -> None:
    """Check ``final_loss``: ``{seed: the run's mean training loss in its last round}`` for every
    run in ``runs`` (``{seed: History}``).

    It recognises: the stub; a missing seed; a whole series instead of one number; the first
    round's loss; the mean over all rounds; the lowest loss of any round.

    Example:
        >>> from fedlab.history import History, RoundRecord
        >>> def run(*losses):
        ...     return History(rounds=[RoundRecord(r, (0,), (l,), (1,), l, 0.0, 0.0, (0.0,), 0.0,
        ...                    0.0, (1.0,), 0, 0, 0.0) for r, l in enumerate(losses, 1)])
        >>> runs = {0: run(2.2, 1.5, 1.3), 1: run(2.1, 1.2, 1.0)}
        >>> check_final_losses({0: 1.3, 1: 1.0}, runs)
        ✓ final_loss: the last round's training loss of each of the 2 runs
    """
    require("final_loss", final_loss, "{seed: history.train_loss[-1]} for every IFCA run")
    if not isinstance(final_loss, Mapping):
        raise CheckFailed("final_loss should be a dict {seed: final training loss}")
    missing = [seed for seed in runs if seed not in final_loss]
    if missing:
        raise CheckFailed(f"final_loss has no entry for seed(s) {missing}")
    for seed, history in runs.items():
        value = final_loss[seed]
        if np.ndim(value) != 0:
            raise CheckFailed(
                f"final_loss[{seed}] is a series: keep one number, the last round's "
                "(history.train_loss[-1])"
            )
        loss = history.train_loss
        diagnose(
            float(value),
            loss[-1],
            [
                Mistake(
                    loss[0],
                    f"final_loss[{seed}] is the *first* round's loss: take the last, "
                    "train_loss[-1]",
                ),
                Mistake(
                    loss.mean(),
                    f"final_loss[{seed}] averages every round: take the last round's, "
                    "train_loss[-1]",
                ),
                Mistake(
                    loss.min(),
                    f"final_loss[{seed}] is the lowest loss of any round: take the last round's",
                ),
            ],
            f"final_loss[{seed}] is not that run's last training loss: history.train_loss[-1]",
            atol=1e-6,
        )
    passed(f"final_loss: the last round's training loss of each of the {len(runs)} runs")


def _restart_example(seed: int | None) -> tuple[dict[int, float], list[tuple[int, ...]]]:
    """Losses by seed and the groups of seeds to choose among."""
    if seed is None:
        losses = {10: 1.28, 11: 1.03, 12: 1.17, 13: 0.98, 14: 1.12}
    else:
        rng = np.random.default_rng(seed)
        ids = sorted(int(i) for i in rng.choice(np.arange(3, 40), size=6, replace=False))
        losses = {i: float(v) for i, v in zip(ids, rng.uniform(0.5, 2.0, 6).round(3), strict=True)}
    return losses, list(itertools.combinations(losses, 3))


def check_best_restart(best_restart: Callable, seed: int | None = None) -> None:
    """Check ``best_restart(losses, seeds)``: of the runs whose seeds are in ``seeds``, the seed
    whose final training loss (``losses[seed]``) is the lowest. Tried on every 3 of 5 seeds.

    It recognises: the stub; the highest loss; the first seed, whatever its loss; the loss
    instead of the seed; the lowest loss of *all* seeds, not only those in ``seeds``; the
    position within ``seeds`` instead of the seed.

    Example:
        >>> check_best_restart(lambda losses, seeds: min(seeds, key=losses.get))
        ✓ best_restart picks, of the seeds given, the one with the lowest final loss
        >>> check_best_restart(lambda losses, seeds: max(seeds, key=losses.get))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: best_restart picks the *highest* loss...
    """
    losses, groups = _restart_example(seed)
    got = []
    for group in groups:
        value = call(best_restart, "best_restart", dict(losses), tuple(group))
        if not _is_number(value):
            raise CheckFailed(
                f"best_restart returns a {type(value).__name__}: return the seed (a number) "
                "of the chosen run"
            )
        got.append(float(value))
    overall = min(losses, key=losses.get)
    diagnose(
        got,
        [min(g, key=losses.get) for g in groups],
        [
            Mistake(
                [max(g, key=losses.get) for g in groups],
                "best_restart picks the *highest* loss: the restart to keep fits its data "
                "best, the lowest final training loss",
            ),
            Mistake(
                [g[0] for g in groups],
                "best_restart returns the first seed of every group: compare the losses",
            ),
            Mistake(
                [min(losses[s] for s in g) for g in groups],
                "best_restart returns the lowest loss, not its seed: return the seed",
            ),
            Mistake(
                [overall for _ in groups],
                "best_restart looks at every seed in losses: choose only among the `seeds` "
                "it is given",
            ),
            Mistake(
                [g.index(min(g, key=losses.get)) for g in groups],
                "best_restart returns the position within seeds: return the seed itself",
            ),
        ],
        "best_restart does not return, of the seeds given, the one with the lowest loss: "
        "min(seeds, key=lambda s: losses[s])",
    )
    passed("best_restart picks, of the seeds given, the one with the lowest final loss")


def check_restart_success(
    restart_success: Any,
    final_loss: Mapping[Any, float],
    purity: Mapping[Any, float],
    seeds: Sequence[Any],
    size: int = 3,
) -> None:
    """Check ``restart_success``: the share of the groups of ``size`` seeds (every combination of
    ``seeds``) whose lowest-loss run has purity 1.0.

    It recognises: the stub; the share of single runs with purity 1.0 (no restarts); the run
    with the highest loss; the first seed of each group; a count instead of a share; a
    percentage; the run chosen by its purity (which needs the planted groups: the server does not
    know them).

    Example:
        >>> loss = {0: 1.3, 1: 1.0, 2: 1.2, 3: 0.9}
        >>> purity = {0: 0.75, 1: 1.0, 2: 0.75, 3: 1.0}
        >>> check_restart_success(1.0, loss, purity, [0, 1, 2, 3])
        ✓ restart_success = 1.00: best of 3 by training loss recovers the groups in 4 of 4 groups of seeds
        >>> check_restart_success(0.5, loss, purity, [0, 1, 2, 3])  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: restart_success = 0.5 is the share of *single* runs...
    """
    require(
        "restart_success",
        restart_success,
        f"the share of the groups of {size} seeds whose lowest-loss run has purity 1.0",
    )
    if not _is_number(restart_success):
        raise CheckFailed(
            f"restart_success is a {type(restart_success).__name__}: give one number, a share "
            "between 0 and 1"
        )
    groups = list(itertools.combinations(seeds, size))

    def share(pick: Callable[[tuple], Any]) -> float:
        return float(np.mean([purity[pick(g)] == 1.0 for g in groups]))

    right = share(lambda g: min(g, key=final_loss.get))
    count = right * len(groups)
    diagnose(
        float(restart_success),
        right,
        [
            Mistake(
                float(np.mean([purity[s] == 1.0 for s in seeds])),
                f"restart_success = {restart_success} is the share of *single* runs with purity "
                f"1.0: the rule picks one run out of every group of {size} seeds "
                f"(itertools.combinations(IFCA_SEEDS, {size})), the one with the lowest loss",
            ),
            Mistake(
                share(lambda g: max(g, key=final_loss.get)),
                f"restart_success = {restart_success} keeps the run with the *highest* loss of "
                "each group: keep the lowest",
            ),
            Mistake(
                share(lambda g: g[0]),
                f"restart_success = {restart_success} keeps the first seed of each group: keep "
                "the one with the lowest final loss",
            ),
            Mistake(
                count,
                f"restart_success = {restart_success} counts groups: divide by the number of "
                f"groups ({len(groups)}) to get a share",
            ),
            Mistake(right * 100, "restart_success is a percentage: give a share in [0, 1]"),
        ],
        f"restart_success = {restart_success}: for every group of {size} seeds, keep the run with "
        "the lowest final_loss and count it if its purity is 1.0; give the share of groups",
        atol=1e-9,
    )
    passed(
        f"restart_success = {right:.2f}: best of {size} by training loss recovers the groups in "
        f"{round(count)} of {len(groups)} groups of seeds"
    )


# --- when does a shared body pay? (exercise 4) ---------------------------------------------------


def check_scarcity_gain(
    digit_gain: Any,
    plenty: tuple[Any, Any],
    scarce: tuple[Any, Any],
    counts: Sequence[int] = (1, 3, 10),
) -> None:
    """Check ``digit_gain``: ``{c: shared − separate}``, the digit task's (task 0) accuracy with
    multi-task FedAvg minus with its own FedAvg, when the digit task has ``c`` clients and the
    other tasks 10 each. ``plenty`` and ``scarce`` are section 4's per-task accuracies
    ``(separate, shared)`` with 10 and with 1 digit client: the check knows those two gains.

    It recognises: the stub; a missing count; separate minus shared (the sign); the mean over all
    four tasks instead of the digit task; the shared accuracy itself instead of a difference;
    the 1-client shared body compared with the 10-client digit federation; the same number for
    every count (the count not changed).

    Example:
        >>> plenty = (np.array([0.94, 0.95, 0.97, 0.95]), np.array([0.94, 0.93, 0.97, 0.95]))
        >>> scarce = (np.array([0.60, 0.95, 0.97, 0.95]), np.array([0.67, 0.94, 0.98, 0.95]))
        >>> check_scarcity_gain({1: 0.07, 3: 0.03, 10: 0.0}, plenty, scarce)
        ✓ digit_gain: +0.07 with 1 digit client, +0.03 with 3, +0.00 with 10
        >>> check_scarcity_gain({1: -0.07, 3: -0.03, 10: 0.0}, plenty, scarce)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: digit_gain[1] is separate minus shared...
    """
    require("digit_gain", digit_gain, "{clients of the digit task: shared − separate accuracy}")
    if not isinstance(digit_gain, Mapping):
        raise CheckFailed("digit_gain should be a dict {number of digit clients: gain}")
    missing = [c for c in counts if c not in digit_gain]
    if missing:
        raise CheckFailed(f"digit_gain has no entry for {missing} digit client(s)")
    for c in counts:
        if not _is_number(digit_gain[c]):
            raise CheckFailed(
                f"digit_gain[{c}] is a {type(digit_gain[c]).__name__}: give one number, the "
                "digit task's accuracy difference"
            )
    (sep_plenty, shared_plenty), (sep_scarce, shared_scarce) = (
        tuple(np.asarray(a, dtype=float) for a in pair) for pair in (plenty, scarce)
    )
    known = {
        1: (sep_scarce, shared_scarce, sep_plenty),
        max(counts): (sep_plenty, shared_plenty, sep_plenty),
    }
    for c, (separate, shared, other) in known.items():
        if c not in counts:
            continue
        diagnose(
            float(digit_gain[c]),
            shared[0] - separate[0],
            [
                Mistake(
                    separate[0] - shared[0],
                    f"digit_gain[{c}] is separate minus shared: the gain of sharing is "
                    "shared − separate (positive when the shared body helps)",
                ),
                Mistake(
                    shared.mean() - separate.mean(),
                    f"digit_gain[{c}] averages all four tasks: take the digit task's accuracy "
                    "(index 0) only; the yes/no tasks barely move and dilute it",
                ),
                Mistake(
                    shared[0],
                    f"digit_gain[{c}] is the shared body's accuracy: subtract the digit task's "
                    "own FedAvg",
                ),
                Mistake(
                    shared[0] - other[0],
                    f"digit_gain[{c}] compares with the 10-client digit federation: compare with "
                    f"a FedAvg of the same {c} digit client(s)",
                ),
            ],
            f"digit_gain[{c}] is not the digit task's shared − separate accuracy with {c} digit "
            "client(s): train both on task_clients([c, 10, 10, 10]) and task_clients([c, 0, 0, 0])",
            atol=2e-3,
        )
    values = [float(digit_gain[c]) for c in counts]
    if len(counts) > 2 and len(set(values)) == 1:
        raise CheckFailed(
            "digit_gain is the same for every count: change the digit task's number of clients "
            "in both runs"
        )
    for c, value in zip(counts, values, strict=True):
        if abs(value) > 0.5:
            raise CheckFailed(
                f"digit_gain[{c}] = {value:.2f} is no difference of two accuracies: "
                "shared[0] − separate[0]"
            )
    parts = [f"{values[0]:+.2f} with {counts[0]} digit client{'s' * (counts[0] != 1)}"]
    parts += [f"{v:+.2f} with {c}" for c, v in zip(counts[1:], values[1:], strict=True)]
    passed("digit_gain: " + ", ".join(parts))


# --- FedPer's head (exercise 5) ------------------------------------------------------------------


def check_whole_network_private(answer: Any) -> None:
    """Check the short answer: which method of section 2 FedPer becomes when every weight is in
    its personal head (nothing is averaged).

    It recognises: the stub; FedAvg (everything shared, not nothing); FedAvg + fine-tuning and
    Ditto (both still train a global model); FedPer itself.

    Example:
        >>> check_whole_network_private("local only")
        ✓ whole_network_private = 'local only': nothing is sent, each client trains alone
        >>> check_whole_network_private("FedAvg")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: whole_network_private = 'FedAvg': that is the opposite...
    """
    require("whole_network_private", answer, 'the name of a method of section 2, e.g. "FedPer"')
    key = str(answer).strip().lower().replace("-", " ").replace("_", " ")
    if key in ("local only", "localonly", "local"):
        passed(f"whole_network_private = {answer!r}: nothing is sent, each client trains alone")
        return
    hints = {
        "fedavg": "that is the opposite, every weight shared; with every weight in the head "
        "no weight is averaged",
        "fedavg + fine tuning": "fine-tuning starts from a global model that everyone trains; "
        "here nothing is averaged, so there is no global model to start from",
        "ditto": "Ditto pulls each personal model towards a global model everyone trains; here "
        "there is none",
        "fedper": "FedPer shares its body; with the whole network in the head there is no body "
        "left to share",
    }
    for name, hint in hints.items():
        if key.startswith(name) and (name != "fedavg" or key == "fedavg"):
            raise CheckFailed(f"whole_network_private = {answer!r}: {hint}")
    raise CheckFailed(
        f"whole_network_private = {answer!r}: answer with a method of section 2 (local only, "
        "FedAvg + fine-tuning, FedPer, Ditto λ=1): which one never sends anything?"
    )
