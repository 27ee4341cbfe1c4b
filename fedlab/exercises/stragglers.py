"""Checks for notebook 07's exercises (stragglers and limited compute): runs made with one
setting of the stragglers, the data or the algorithm changed; the number of stragglers in a
round; how much of a gap a change closes; what dropping stragglers costs on each dataset."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from fedlab.exercises.core import (
    CheckFailed,
    Mistake,
    call,
    check_runs,
    diagnose,
    passed,
    require,
)

__all__ = [
    "check_drop_cost",
    "check_gap_closed",
    "check_num_stragglers",
    "check_straggler_runs",
]

PAIR = "what run returns, (history, loss)"


def _run(
    loss: list[float],
    train_loss: list[float] | None = None,
    test_accuracy: list[float] | None = None,
    config: dict | None = None,
) -> tuple[Any, np.ndarray]:
    """A made-up ``(history, loss)`` as the notebook's ``run`` returns it: the examples' runs."""
    from fedlab.history import History, RoundRecord

    n = len(loss)
    train_loss = [2 * v for v in loss] if train_loss is None else train_loss
    test_accuracy = [0.5] * n if test_accuracy is None else test_accuracy
    rounds = [
        RoundRecord(
            round=r + 1,
            clients=(0,),
            client_loss=(t,),
            client_num_examples=(10,),
            train_loss=float(t),
            test_loss=math.nan,
            test_accuracy=float(a),
            client_drift=(0.1,),
            drift_mean=0.1,
            drift_max=0.1,
            update_cosine=(1.0,),
            bytes_down=0,
            bytes_up=0,
            wall_time=0.0,
        )
        for r, (t, a) in enumerate(zip(train_loss, test_accuracy, strict=True))
    ]
    return History(config=dict(config or {}), rounds=rounds), np.asarray(loss, dtype=np.float64)


def _pair(value: Any, label: str) -> tuple[Any, np.ndarray]:
    """``value`` as the ``(History, loss per round)`` that the notebook's ``run`` returns."""
    from fedlab.history import History

    require(label, value, f"keep {PAIR}")
    if isinstance(value, History):
        raise CheckFailed(f"{label} is a History: keep the whole of {PAIR}")
    if not (isinstance(value, tuple | list) and len(value) == 2 and isinstance(value[0], History)):
        raise CheckFailed(f"{label} is a {type(value).__name__}: keep {PAIR}")
    history, loss = value
    loss = np.asarray(loss, dtype=np.float64).reshape(-1)
    if len(loss) != len(history):
        raise CheckFailed(
            f"{label} has {len(history)} rounds but {len(loss)} losses: keep {PAIR} unchanged"
        )
    return history, loss


def _flat(history: Any, keep_algorithm: set[str] | None) -> Any:
    """A History whose config has the stragglers' settings as ``stragglers.fraction`` etc. (and,
    when ``keep_algorithm`` is given, only those algorithm settings): what check_runs compares."""
    from fedlab.history import History

    config = {k: v for k, v in history.config.items() if k != "stragglers"}
    for key, value in (history.config.get("stragglers") or {}).items():
        config[f"stragglers.{key}"] = value
    if keep_algorithm is not None:
        algorithm = config.get("algorithm", {})
        config["algorithm"] = {k: v for k, v in algorithm.items() if k in keep_algorithm}
    return History(config=config, rounds=history.rounds)


def check_straggler_runs(
    runs: Any,
    reference: Any,
    *,
    name: str,
    what: str,
    stragglers: Mapping[str, Any] | None = None,
    **changed: Any,
) -> None:
    """Check runs made with the notebook's ``run`` (each ``(history, loss)``): exactly as
    ``reference`` (one such pair, or a dict of them with the same keys) except for the
    ``stragglers`` settings given (``fraction``, ``drop``, ``min_epochs``, the same for every run)
    and the other ``changed`` settings of ``History.config`` (``dataset``, ``algorithm``: the
    algorithm's name, whose own settings are then not compared; …), as
    :func:`fedlab.exercises.check_runs` checks them.

    It recognises: stubs; a History alone, or anything but ``(history, loss)``; a run without
    stragglers; a wanted setting not applied; another setting changed as well; a missing run.

    Example:
        >>> from fedlab.history import History
        >>> config = {"algorithm": {"name": "FedAvg"}, "stragglers": {"fraction": 0.9, "drop": True, "min_epochs": 1}}
        >>> base = (History(config=config), np.zeros(0))
        >>> also = {**config, "stragglers": {"fraction": 0.9, "drop": True, "min_epochs": 3}}
        >>> check_straggler_runs((History(config=also), np.zeros(0)), base, name="slow", what="the 90 % run", stragglers={"min_epochs": 3})
        ✓ slow: made as the 90 % run, with stragglers.min_epochs=3
        >>> check_straggler_runs(base, base, name="slow", what="the 90 % run", stragglers={"min_epochs": 3})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: slow ran with stragglers.min_epochs=1; this exercise wants stragglers.min_epochs=3...
    """
    task = "the runs, each" if isinstance(reference, Mapping) else "the run"
    require(name, runs, f"make {task} as {what}, with run or run_on")
    wanted = {f"stragglers.{key}": value for key, value in (stragglers or {}).items()}
    wanted.update(changed)
    keep = None
    if "algorithm" in changed:  # another algorithm: compare the settings both have
        ref_config = next(iter(reference.values())) if isinstance(reference, Mapping) else reference
        keep = {"name", "local_epochs", "batch_size", "client_lr"} & set(
            ref_config[0].config.get("algorithm", {})
        )
    if isinstance(reference, Mapping):
        if not isinstance(runs, Mapping):
            raise CheckFailed(
                f"{name} should be a dict with one run per key: {', '.join(map(repr, reference))}"
            )
        missing = [key for key in reference if key not in runs]
        if missing:
            raise CheckFailed(f"{name} has no run for {', '.join(map(repr, missing))}")
        pairs = {key: _pair(runs[key], f"{name}[{key!r}]") for key in reference}
        got = {key: _flat(pair[0], keep) for key, pair in pairs.items()}
        base = {key: _flat(reference[key][0], keep) for key in reference}
        labels = {key: f"{name}[{key!r}]" for key in reference}
    else:
        got = {None: _flat(_pair(runs, name)[0], keep)}
        base = {None: _flat(reference[0], keep)}
        labels = {None: name}
    for key, history in got.items():
        has = any(k.startswith("stragglers.") for k in history.config)
        if not has and any(k.startswith("stragglers.") for k in base[key].config):
            raise CheckFailed(
                f"{labels[key]} ran without stragglers: pass stragglers=fedlab.Stragglers(...) "
                "to run, as in section 2"
            )
    if isinstance(reference, Mapping):
        check_runs(got, base, name=name, what=what, **wanted)
    else:
        check_runs(got[None], base[None], name=name, what=what, **wanted)


# --- how many straggle (exercise 3) --------------------------------------------------------------


def check_num_stragglers(num_stragglers: Callable, seed: int | None = None) -> None:
    """Check ``num_stragglers(fraction, num_selected)``: how many of a round's ``num_selected``
    devices straggle, ``K − round(K · (1 − fraction))`` as ``fedlab.Stragglers`` counts them
    (the FedProx paper's code rounds the devices that *finish*).

    It recognises: the stub; ``round(K · fraction)`` (rounding the stragglers instead of the
    devices that finish); ``floor`` or ``ceil`` of ``K · fraction``; ``K · fraction`` itself, not a
    whole number; the number of devices that finish.

    Example:
        >>> check_num_stragglers(lambda f, k: k - round(k * (1 - f)))
        ✓ num_stragglers: K − round(K · (1 − fraction)), as fedlab.Stragglers counts
        >>> check_num_stragglers(lambda f, k: round(k * f))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: num_stragglers rounds K · fraction...
    """
    from fedlab.stragglers import Stragglers

    if seed is None:
        cases = [(0.0, 10), (0.5, 10), (0.9, 10), (1.0, 10), (0.5, 5), (0.3, 7), (0.25, 3)]
        cases += [(0.1, 4), (0.5, 1)]
    else:
        rng = np.random.default_rng(seed)
        cases = [(0.5, 5), (0.3, 7)]
        cases += [(float(rng.integers(0, 21)) / 20, int(rng.integers(1, 31))) for _ in range(12)]
    got = [call(num_stragglers, "num_stragglers", f, k) for f, k in cases]
    expected = [Stragglers(f).num_stragglers(k) for f, k in cases]
    diagnose(
        got,
        expected,
        [
            Mistake(
                [round(k * f) for f, k in cases],
                "num_stragglers rounds K · fraction: fedlab (after the paper's code) rounds the "
                "devices that finish, round(K · (1 − fraction)), and the rest straggle; the two "
                "differ when K · fraction ends in .5 (try K = 5, fraction 0.5)",
            ),
            Mistake(
                [math.floor(k * f) for f, k in cases],
                "num_stragglers rounds K · fraction down: the devices that finish are rounded, "
                "K − round(K · (1 − fraction))",
            ),
            Mistake(
                [math.ceil(k * f) for f, k in cases],
                "num_stragglers rounds K · fraction up: the devices that finish are rounded, "
                "K − round(K · (1 − fraction))",
            ),
            Mistake(
                [k * f for f, k in cases],
                "num_stragglers returns K · fraction, not a whole number of devices: "
                "K − round(K · (1 − fraction))",
            ),
            Mistake(
                [round(k * (1 - f)) for f, k in cases],
                "num_stragglers counts the devices that finish, round(K · (1 − fraction)): the "
                "stragglers are the other K − round(K · (1 − fraction))",
            ),
        ],
        "num_stragglers is not K − round(K · (1 − fraction)): see fedlab.Stragglers.num_stragglers",
        atol=1e-9,
    )
    passed("num_stragglers: K − round(K · (1 − fraction)), as fedlab.Stragglers counts")


# --- how much of a gap closes (exercise 2) -------------------------------------------------------


def check_gap_closed(
    gap_closed: Any, slow_runs: Any, runs: Mapping[tuple[float, str], Any], fraction: float = 0.9
) -> None:
    """Check ``gap_closed``: for each method of ``slow_runs`` (``{method: (history, loss)}``, the
    stragglers made slower to straggle), the share of the gap between the method's final training
    loss with ``fraction`` stragglers and with none (``runs[fraction, method]``,
    ``runs[0.0, method]``) that the slow run closes: ``(L_frac − L_slow) / (L_frac − L_0)``.

    It recognises: stubs; a method missing; the share still open (``1 −`` the answer); the gap
    upside down; the loss gained without dividing by the gap; a percentage; ``history.train_loss``
    (the participants' own loss) instead of the global model's loss that ``run`` returns.

    Example:
        >>> runs = {(0.9, "μ=0"): _run([1.5, 1.2]), (0.0, "μ=0"): _run([1.2, 1.0])}
        >>> check_gap_closed({"μ=0": 0.25}, {"μ=0": _run([1.3, 1.15])}, runs)
        ✓ gap_closed: share of the gap to 0 % stragglers closed (μ=0: 25%)
        >>> check_gap_closed({"μ=0": 0.75}, {"μ=0": _run([1.3, 1.15])}, runs)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: gap_closed['μ=0'] is the share of the gap still open...
    """
    require("gap_closed", gap_closed, "{method: share of the gap to 0 % stragglers closed}")
    require("min3_runs", slow_runs, "the 90 % keep runs with fedlab.Stragglers(..., min_epochs=3)")
    if not isinstance(gap_closed, Mapping):
        raise CheckFailed("gap_closed should be a dict {method: share}, one per run of min3_runs")
    if not isinstance(slow_runs, Mapping):
        raise CheckFailed("min3_runs should be a dict {method: what run returns}")
    missing = [method for method in slow_runs if method not in gap_closed]
    if missing:
        raise CheckFailed(f"gap_closed has no entry for {', '.join(map(repr, missing))}")
    shares = []
    for method in slow_runs:
        history, slow = _pair(slow_runs[method], f"min3_runs[{method!r}]")
        h_frac, many = runs[fraction, method]
        h_none, none = runs[0.0, method]
        l_frac, l_slow, l_none = many[-1], slow[-1], none[-1]
        right = (l_frac - l_slow) / (l_frac - l_none)
        label = f"gap_closed[{method!r}]"
        part = h_frac.train_loss[-1] - history.train_loss[-1]
        diagnose(
            gap_closed[method],
            right,
            [
                Mistake(
                    1 - right,
                    f"{label} is the share of the gap still open: the share closed is "
                    f"(L at {fraction:.0%} − L with min_epochs=3) / (L at {fraction:.0%} − L at 0 %)",
                ),
                Mistake(
                    (l_frac - l_none) / (l_frac - l_slow),
                    f"{label} is upside down: divide the loss gained by the whole gap, "
                    f"(L at {fraction:.0%} − L with min_epochs=3) / (L at {fraction:.0%} − L at 0 %)",
                ),
                Mistake(
                    l_frac - l_slow,
                    f"{label} is the loss gained: divide it by the whole gap, L at {fraction:.0%} − "
                    "L at 0 %, to get the share closed",
                ),
                Mistake(
                    100 * right,
                    f"{label} is a percentage: give the share, between 0 and 1",
                ),
                Mistake(
                    part / (h_frac.train_loss[-1] - h_none.train_loss[-1]),
                    f"{label} uses history.train_loss, the participants' loss during local "
                    "training: use the loss that run returns, the global model's on all the "
                    "training data",
                ),
            ],
            f"{label} is not (L at {fraction:.0%} − L with min_epochs=3) / (L at {fraction:.0%} − "
            "L at 0 %), the final losses that run returns",
            atol=1e-6,
        )
        shares.append(right)
    closed = ", ".join(
        f"{method}: {share:.0%}" for method, share in zip(slow_runs, shares, strict=True)
    )
    passed(f"gap_closed: share of the gap to 0 % stragglers closed ({closed})")


# --- what dropping costs (exercise 5) ------------------------------------------------------------

DROP, KEEP = "FedAvg, drop", "FedProx μ=0, keep"


def check_drop_cost(drop_cost: Any, by_dataset: Mapping[str, Any]) -> None:
    """Check ``drop_cost``: for each dataset of ``by_dataset`` (``{label: {method: (history,
    loss)}}`` with the methods ``"FedAvg, drop"`` and ``"FedProx μ=0, keep"``), the final training
    loss of dropping the stragglers minus that of keeping their partial work.

    It recognises: stubs; not a dict, or a dataset missing; keep minus drop (the sign); a ratio;
    the mean over rounds instead of the last round; ``history.train_loss`` (the participants'
    loss) instead of the global model's; test accuracy instead of loss.

    Example:
        >>> runs = {"IID": {DROP: _run([1.7, 1.6]), KEEP: _run([1.65, 1.5])}}
        >>> check_drop_cost({"IID": 0.1}, runs)
        ✓ drop_cost: IID +0.10; dropping costs least on IID
        >>> check_drop_cost({"IID": -0.1}, runs)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: drop_cost['IID'] is keep minus drop...
    """
    require("drop_cost", drop_cost, "{dataset: final loss of FedAvg, drop − of FedProx μ=0, keep}")
    if not isinstance(drop_cost, Mapping):
        raise CheckFailed(
            f"drop_cost should be a dict {{dataset: loss difference}} with the keys "
            f"{', '.join(map(repr, by_dataset))}"
        )
    missing = [label for label in by_dataset if label not in drop_cost]
    if missing:
        raise CheckFailed(f"drop_cost has no entry for {', '.join(map(repr, missing))}")
    costs = {}
    for label, methods in by_dataset.items():
        require(f"the runs on {label}", methods, "make them first")
        h_drop, drop = _pair(methods[DROP], f"{label}'s {DROP!r} run")
        h_keep, keep = _pair(methods[KEEP], f"{label}'s {KEEP!r} run")
        entry = f"drop_cost[{label!r}]"
        right = drop[-1] - keep[-1]
        diagnose(
            drop_cost[label],
            right,
            [
                Mistake(
                    keep[-1] - drop[-1],
                    f"{entry} is keep minus drop: take drop minus keep, so that a positive "
                    "number is what dropping the stragglers costs",
                ),
                Mistake(
                    drop[-1] / keep[-1],
                    f"{entry} is a ratio of the losses: the exercise wants their difference",
                ),
                Mistake(
                    drop.mean() - keep.mean(),
                    f"{entry} averages every round: compare the losses after the last round",
                ),
                Mistake(
                    h_drop.train_loss[-1] - h_keep.train_loss[-1],
                    f"{entry} uses history.train_loss, the participants' loss during local "
                    "training (with 90 % dropped, one device's): use the loss that run returns",
                ),
                Mistake(
                    h_keep.test_accuracy[-1] - h_drop.test_accuracy[-1],
                    f"{entry} compares test accuracy: the exercise wants the training loss that "
                    "run returns",
                ),
            ],
            f"{entry} is not the final loss of {DROP!r} minus that of {KEEP!r}",
            atol=1e-6,
        )
        costs[label] = right
    least = min(costs, key=costs.get)
    passed(
        "drop_cost: "
        + ", ".join(f"{label} {cost:+.2f}" for label, cost in costs.items())
        + f"; dropping costs least on {least}"
    )
