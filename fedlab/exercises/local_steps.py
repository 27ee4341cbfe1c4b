"""Checks for notebook 03's exercises (FedSGD vs FedAvg): drift on non-IID clients, the local
steps and examples a client spends before the model is good, a tuned FedSGD, the server's step
against the clients' step, and a dashboard run saved and loaded back."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from fedlab.exercises.core import (
    CheckFailed,
    Mistake,
    Weights,
    call,
    diagnose,
    passed,
    require,
    same,
)

__all__ = [
    "check_drift_ratio",
    "check_examples_to_target",
    "check_fair_fedsgd",
    "check_fedsgd_round",
    "check_saved_history",
    "check_steps_to_target",
]


def _history(
    accuracy: Sequence[float],
    drift: Sequence[float] | None = None,
    *,
    local_epochs: int = 1,
    batch_size: int | None = 20,
    num_clients: int = 10,
    drift_max: Sequence[float] | None = None,
) -> Any:
    """A History with the given per-round accuracy and drift, as if FedAvg(E, B) had run on
    ``num_clients`` clients: what the checks of functions of a History try them on."""
    from fedlab.history import History, RoundRecord

    drift = [0.1] * len(accuracy) if drift is None else list(drift)
    drift_max = [2 * d for d in drift] if drift_max is None else list(drift_max)
    rounds = [
        RoundRecord(
            round=r + 1,
            clients=tuple(range(num_clients)),
            client_loss=(),
            client_num_examples=(),
            train_loss=math.nan,
            test_loss=math.nan,
            test_accuracy=float(a),
            client_drift=(),
            drift_mean=float(d),
            drift_max=float(m),
            update_cosine=(),
            bytes_down=0,
            bytes_up=0,
            wall_time=0.0,
        )
        for r, (a, d, m) in enumerate(zip(accuracy, drift, drift_max, strict=True))
    ]
    algorithm = {
        "name": "FedAvg",
        "local_epochs": local_epochs,
        "batch_size": batch_size,
        "client_lr": 0.1,
        "server_lr": 1.0,
    }
    config = {"algorithm": algorithm, "num_clients": num_clients, "clients_per_round": num_clients}
    return History(config=config, rounds=rounds)


# --- drift that hurts (exercise 1) ---------------------------------------------------------------


def check_drift_ratio(drift_ratio: Any, shards_runs: Any, iid_runs: Mapping[str, Any]) -> None:
    """Check ``drift_ratio``: for every run of ``iid_runs`` (section 3's grid), its mean client
    drift on the shards split (``shards_runs``, same keys) divided by its mean drift on IID
    clients; the mean drift of a run is ``history.drift_mean.mean()``.

    It recognises: stubs; not a dict, or a run missing; the ratio upside down (IID / shards); the
    difference instead of the ratio; the last round's drift instead of the mean over rounds; the
    largest client's drift (``drift_max``) instead of the mean.

    Example:
        >>> iid = {"E=1": _history([0.5, 0.9], [0.1, 0.3])}
        >>> shards = {"E=1": _history([0.4, 0.6], [0.4, 0.4])}
        >>> check_drift_ratio({"E=1": 2.0}, shards, iid)
        ✓ drift_ratio: on shards the clients drift 2.0 times as far as on IID clients
        >>> check_drift_ratio({"E=1": 0.5}, shards, iid)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: drift_ratio['E=1'] is upside down...
    """
    require("drift_ratio", drift_ratio, "{run name: mean drift on shards / mean drift on IID}")
    require("shards_grid", shards_runs, "run the grid on the shards split first")
    if not isinstance(drift_ratio, Mapping):
        raise CheckFailed(
            "drift_ratio should be a dict {run name: ratio}, with the keys of grid ('E=1 B=50', …)"
        )
    missing = [name for name in iid_runs if name not in drift_ratio or name not in shards_runs]
    if missing:
        raise CheckFailed(f"drift_ratio has no entry for {', '.join(map(repr, missing))}")

    def mean(history: Any, series: str = "drift_mean") -> float:
        return float(np.mean(getattr(history, series)))

    for name, iid in iid_runs.items():
        shards = shards_runs[name]
        got = drift_ratio[name]
        if not isinstance(got, int | float | np.number):
            raise CheckFailed(
                f"drift_ratio[{name!r}] is a {type(got).__name__}: one number per run, the ratio "
                "of the two runs' mean drift"
            )
        label = f"drift_ratio[{name!r}]"
        diagnose(
            got,
            mean(shards) / mean(iid),
            [
                Mistake(
                    mean(iid) / mean(shards),
                    f"{label} is upside down (IID / shards): divide the shards run's mean drift "
                    "by the IID run's, so that 2 means twice as far",
                ),
                Mistake(
                    mean(shards) - mean(iid),
                    f"{label} is the difference of the two drifts: divide them (a ratio compares "
                    "runs whose drift differs tenfold)",
                ),
                Mistake(
                    shards.drift_mean[-1] / iid.drift_mean[-1],
                    f"{label} compares the last round's drift only: average every round "
                    "(mean_drift(history), i.e. history.drift_mean.mean())",
                ),
                Mistake(
                    mean(shards, "drift_max") / mean(iid, "drift_max"),
                    f"{label} uses drift_max, the farthest client: the drift column of report "
                    "is the mean over clients (history.drift_mean)",
                ),
            ],
            f"{label} is not the shards run's mean drift divided by the IID run's: "
            "mean_drift(shards_grid[name]) / mean_drift(grid[name])",
            atol=1e-6,
        )
    values = np.array([drift_ratio[name] for name in iid_runs], dtype=float)
    low, high = values.min(), values.max()
    spread = f"{low:.1f}" if round(low, 1) == round(high, 1) else f"{low:.1f}–{high:.1f}"
    passed(f"drift_ratio: on shards the clients drift {spread} times as far as on IID clients")


# --- rounds or steps? (exercise 2) ---------------------------------------------------------------


def _cost_examples(
    seed: int | None, target: float
) -> list[tuple[Any, int | None, int, int | None, int]]:
    """Runs to try a cost function on: ``(history, rounds to target, E, B, K)`` each; the last
    never reaches ``target``."""
    settings: list[tuple[list[float], int, int, int | None, int]]
    if seed is None:
        low, high = target - 0.3, target + 0.02
        curve = [low, low + 0.15, target - 0.05, high, target - 0.01, high + 0.01]
        settings = [(curve, 4, 2, 12, 10), (curve[1:], 3, 3, None, 10)]
    else:
        rng = np.random.default_rng(seed)
        settings = []
        for _ in range(3):
            reach = int(rng.integers(2, 9))
            below = np.sort(rng.uniform(0.1, target - 0.01, reach - 1)).tolist()
            above = rng.uniform(target + 0.001, 1.0, int(rng.integers(1, 6))).tolist()
            batch = [5, 10, 16, 20, 50, None][int(rng.integers(6))]
            clients = int(rng.choice([5, 10, 20]))
            settings.append((below + above, reach, int(rng.integers(1, 6)), batch, clients))
    examples: list[tuple[Any, int | None, int, int | None, int]] = [
        (_history(curve, local_epochs=e, batch_size=b, num_clients=k), rounds, e, b, k)
        for curve, rounds, e, b, k in settings
    ]
    never = [target - 0.4, target - 0.2, target - 0.1, target - 0.05]
    examples.append((_history(never, local_epochs=1, batch_size=10), None, 1, 10, 10))
    return examples


def _never_reached(fn: Callable, name: str, history: Any, counted: str) -> None:
    """``fn`` on a run that never reaches the target must return None (as ``rounds_to`` does)."""
    try:
        got = fn(history)
    except TypeError as error:
        raise CheckFailed(
            f"{name} raised TypeError ({error}) on a run that never reaches the target: "
            "rounds_to returns None there; return None too"
        ) from error
    except Exception as error:
        raise CheckFailed(
            f"{name} raised {type(error).__name__}: {error} (on a run that never reaches the "
            "target)"
        ) from error
    if got is not None:
        raise CheckFailed(
            f"{name} returns {got!r} for a run that never reaches the target: return None there "
            f"(like rounds_to), not a number of {counted}"
        )


def _try_reached(fn: Callable, name: str, history: Any, batch: int | None) -> Any:
    """``fn(history)`` on a run that reaches the target; B = ∞ runs get their own message."""
    if batch is not None:
        return call(fn, name, history)
    try:
        return call(fn, name, history)
    except CheckFailed as failure:
        if isinstance(failure.__cause__, TypeError):
            raise CheckFailed(
                f"{name} raised TypeError ({failure.__cause__}) on a run with B = ∞ "
                "(batch_size None): local_updates(history) handles it"
            ) from failure.__cause__
        raise


def check_steps_to_target(
    steps_to_target: Callable,
    *,
    num_examples: int,
    target: float = 0.9,
    seed: int | None = None,
) -> None:
    """Check ``steps_to_target(history)``: the local SGD steps one client made before the run
    first reached ``target``, rounds-to-target × u with u = E·n/(K·B) (B = ∞: one step per
    epoch), or None if the run never reached it. ``num_examples`` is n.

    It recognises: the stub; the rounds alone; u alone (one round's steps); epochs instead of
    steps; every client's steps; the round's index (from 0) instead of its number; all the rounds
    run instead of those to the target; a number (or an error) for a run that never reached the
    target; an error for B = ∞.

    Example:
        >>> def right(history):
        ...     reached = np.flatnonzero(history.test_accuracy >= 0.9)
        ...     algorithm = history.config["algorithm"]
        ...     per_client = 1437 / history.config["num_clients"]
        ...     u = algorithm["local_epochs"] * per_client / (algorithm["batch_size"] or per_client)
        ...     return None if reached.size == 0 else (reached[0] + 1) * u
        >>> check_steps_to_target(right, num_examples=1437)
        ✓ steps_to_target: rounds to the target × u, None if never reached
        >>> check_steps_to_target(lambda h: right(h) and right(h) * 10, num_examples=1437)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: steps_to_target counts every client's steps...
    """
    examples = _cost_examples(seed, target)
    for history, rounds, epochs, batch, clients in examples:
        if rounds is None:
            _never_reached(steps_to_target, "steps_to_target", history, "steps")
            continue
        per_client = num_examples / clients
        u = epochs * per_client / (batch or per_client)
        got = _try_reached(steps_to_target, "steps_to_target", history, batch)
        diagnose(
            got,
            rounds * u,
            [
                Mistake(
                    rounds,
                    "steps_to_target returns the rounds to the target: multiply by u, the local "
                    "steps per round (local_updates)",
                ),
                Mistake(
                    u,
                    "steps_to_target returns u, one round's steps: multiply by the rounds it "
                    "took to reach the target (rounds_to)",
                ),
                Mistake(
                    rounds * epochs,
                    "steps_to_target counts epochs, not steps: one epoch is n/(K·B) steps, so a "
                    "round is u = E·n/(K·B)",
                ),
                Mistake(
                    rounds * u * clients,
                    "steps_to_target counts every client's steps: the exercise wants one "
                    "client's, rounds × u",
                ),
                Mistake(
                    (rounds - 1) * u,
                    "steps_to_target uses the index of the first round at the target (counting "
                    "from 0): rounds count from 1, as rounds_to returns them",
                ),
                Mistake(
                    len(history) * u,
                    "steps_to_target multiplies u by all the rounds run: only those until the "
                    "target was first reached (rounds_to)",
                ),
            ],
            "steps_to_target is not rounds_to(history) × local_updates(history)",
            atol=1e-6,
        )
    passed("steps_to_target: rounds to the target × u, None if never reached")


def check_examples_to_target(
    examples_to_target: Callable,
    *,
    num_examples: int,
    target: float = 0.9,
    seed: int | None = None,
) -> None:
    """Check ``examples_to_target(history)``: the training examples one client processed before
    the run first reached ``target``, rounds-to-target × E × n/K (each epoch passes once over the
    client's n/K examples, whatever B), or None if the run never reached it. ``num_examples`` is n.

    It recognises: the stub; steps instead of examples; one epoch per round (E left out); every
    client's examples (n instead of n/K); the round's index (from 0); a number (or an error) for a
    run that never reached the target; an error for B = ∞.

    Example:
        >>> def right(history):
        ...     reached = np.flatnonzero(history.test_accuracy >= 0.9)
        ...     epochs = history.config["algorithm"]["local_epochs"]
        ...     per_client = 1437 / history.config["num_clients"]
        ...     return None if reached.size == 0 else (reached[0] + 1) * epochs * per_client
        >>> check_examples_to_target(right, num_examples=1437)
        ✓ examples_to_target: rounds to the target × E × n/K, None if never reached
        >>> check_examples_to_target(lambda h: right(h) and right(h) / h.config["algorithm"]["local_epochs"], num_examples=1437)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: examples_to_target counts one epoch per round...
    """
    for history, rounds, epochs, batch, clients in _cost_examples(seed, target):
        if rounds is None:
            _never_reached(examples_to_target, "examples_to_target", history, "examples")
            continue
        per_client = num_examples / clients
        got = _try_reached(examples_to_target, "examples_to_target", history, batch)
        diagnose(
            got,
            rounds * epochs * per_client,
            [
                Mistake(
                    rounds * epochs * per_client / (batch or per_client),
                    "examples_to_target counts steps: a step processes a batch of B examples "
                    "(all n/K for B = ∞), so a round is E passes over n/K examples",
                ),
                Mistake(
                    rounds * per_client,
                    "examples_to_target counts one epoch per round: a round is E epochs, each "
                    "over the client's n/K examples",
                ),
                Mistake(
                    rounds * epochs * num_examples,
                    "examples_to_target counts every client's examples (n): one client holds "
                    "n/K of them",
                ),
                Mistake(
                    (rounds - 1) * epochs * per_client,
                    "examples_to_target uses the index of the first round at the target "
                    "(counting from 0): rounds count from 1, as rounds_to returns them",
                ),
            ],
            "examples_to_target is not rounds_to(history) × E × n/K",
            atol=1e-6,
        )
    passed("examples_to_target: rounds to the target × E × n/K, None if never reached")


# --- a fair FedSGD (exercise 3) ------------------------------------------------------------------


def _rounds_to(history: Any, target: float) -> int | None:
    reached = np.flatnonzero(history.test_accuracy >= target)
    return int(history.round[reached[0]]) if reached.size else None


def check_fair_fedsgd(
    best_rounds: Any,
    speedup: Any,
    runs: Mapping[float, Any],
    fedavg: Any,
    *,
    target: float,
) -> None:
    """Check ``best_rounds``, the fewest rounds any of the tuned FedSGD ``runs`` (``{client_lr:
    History}``) needed to reach ``target``, and ``speedup``, that number divided by the rounds
    ``fedavg`` needed.

    It recognises: stubs; a learning rate instead of a number of rounds; the slowest run's rounds
    instead of the fastest's; the round's index (from 0); the speed-up upside down; a speed-up
    that is not best_rounds over FedAvg's rounds.

    Example:
        >>> runs = {0.3: _history([0.5, 0.8, 0.91]), 1.0: _history([0.7, 0.92, 0.95])}
        >>> fedavg = _history([0.95])
        >>> check_fair_fedsgd(2, 2.0, runs, fedavg, target=0.9)
        ✓ the best-tuned FedSGD reaches 90% in round 2; FedAvg is 2.0x faster
        >>> check_fair_fedsgd(3, 3.0, runs, fedavg, target=0.9)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: best_rounds = 3 is the slowest run's...
    """
    require("best_rounds", best_rounds, "the fewest rounds any tuned FedSGD run needs")
    require("speedup", speedup, "best_rounds divided by the rounds FedAvg needed (section 2)")
    require("fedsgd_runs", runs, "the tuned FedSGD runs, {client_lr: History}")
    reached = {lr: _rounds_to(run, target) for lr, run in runs.items()}
    reached = {lr: r for lr, r in reached.items() if r is not None}
    fedavg_rounds = _rounds_to(fedavg, target)
    if not reached or fedavg_rounds is None:
        raise CheckFailed(
            f"no run of fedsgd_runs reaches {target:.0%}: run each for 120 rounds, like fedsgd_long"
        )
    best, slowest = min(reached.values()), max(reached.values())
    if not isinstance(best_rounds, int | float | np.number):
        raise CheckFailed(f"best_rounds is a {type(best_rounds).__name__}: a number of rounds")
    if best_rounds != best:
        if best_rounds in runs and best_rounds not in reached.values():
            raise CheckFailed(
                f"best_rounds = {best_rounds} is a learning rate: the exercise wants the number of "
                "rounds that rate needs (rounds_to)"
            )
        if best_rounds == slowest:
            raise CheckFailed(
                f"best_rounds = {best_rounds} is the slowest run's: take the fewest rounds, the "
                "best-tuned FedSGD"
            )
        if best_rounds == best - 1:
            raise CheckFailed(
                f"best_rounds = {best_rounds} is the index of the round (counting from 0): rounds "
                "count from 1, as rounds_to returns them"
            )
        raise CheckFailed(
            f"best_rounds = {best_rounds} is not the fewest rounds to {target:.0%} of the runs in "
            "fedsgd_runs: min of rounds_to(run) over the runs that reach it"
        )
    diagnose(
        speedup,
        best / fedavg_rounds,
        [
            Mistake(
                fedavg_rounds / best,
                "speedup is upside down (FedAvg's rounds / FedSGD's): divide the best FedSGD's "
                "rounds by FedAvg's, so that 2 means FedAvg needs half the rounds",
            ),
        ],
        f"speedup is not best_rounds / rounds_to(fedavg) (FedAvg of section 2 needs "
        f"{fedavg_rounds} rounds)",
        atol=1e-6,
    )
    passed(
        f"the best-tuned FedSGD reaches {target:.0%} in round {best}; FedAvg is "
        f"{best / fedavg_rounds:.1f}x faster"
    )


# --- the server's step or the clients' (exercise 5) ----------------------------------------------


def check_fedsgd_round(fedsgd_round: Callable, seed: int | None = None) -> None:
    """Check ``fedsgd_round(weights, gradient, client_lr, server_lr)``: the global weights after
    one FedSGD round whose clients' mean gradient is ``gradient``: every client steps
    ``−client_lr · g_k``, the server moves along the mean step, so ``w − server_lr · client_lr · g``,
    one array per layer, leaving ``weights`` unchanged.

    It recognises: a step uphill (``+``); ``server_lr`` or ``client_lr`` left out; the two rates
    added instead of multiplied; the step alone, without the weights; the weights scaled too; a
    single array; ``weights`` changed in place.

    Example:
        >>> check_fedsgd_round(lambda w, g, lr_c, lr_s: [a - lr_s * lr_c * b for a, b in zip(w, g)])
        ✓ fedsgd_round: w − server_lr · client_lr · g, so only the product of the two rates counts
        >>> check_fedsgd_round(lambda w, g, lr_c, lr_s: [a - lr_c * b for a, b in zip(w, g)])  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: fedsgd_round ignores server_lr...
    """
    if seed is None:
        weights = [np.array([1.0, -2.0]), np.array([[0.5]])]
        gradient = [np.array([2.0, 4.0]), np.array([[-1.0]])]
        client_lr, server_lr = 0.1, 3.0
    else:
        rng = np.random.default_rng(seed)
        weights = [rng.normal(size=5), rng.normal(size=(2, 3))]
        gradient = [rng.normal(size=5), rng.normal(size=(2, 3))]
        client_lr, server_lr = float(rng.uniform(0.01, 0.5)), float(rng.uniform(1.5, 4.0))
    given = [w.copy() for w in weights]
    got = call(
        fedsgd_round, "fedsgd_round", given, [g.copy() for g in gradient], client_lr, server_lr
    )
    if not same(given, weights):
        raise CheckFailed(
            "fedsgd_round changed the weights it was given (in place, e.g. with -=): build new "
            "arrays, the server keeps the old global weights until the round is done"
        )
    if isinstance(got, np.ndarray):
        raise CheckFailed("fedsgd_round returns one array; return a list, one array per layer")

    def step(scale: float, on_weights: float = 1.0) -> Weights:
        return [on_weights * w - scale * g for w, g in zip(weights, gradient, strict=True)]

    diagnose(
        got,
        step(server_lr * client_lr),
        [
            Mistake(
                step(-server_lr * client_lr),
                "fedsgd_round goes uphill (w + η_s η_c g): a client steps against its gradient, "
                "Δ_k = −client_lr · g_k, and the server moves along the mean Δ",
            ),
            Mistake(
                step(client_lr),
                "fedsgd_round ignores server_lr: the server moves server_lr times the clients' "
                "mean step, w + η_s · mean(Δ_k)",
            ),
            Mistake(
                step(server_lr),
                "fedsgd_round ignores client_lr: each client first steps −client_lr · g_k; the "
                "server then scales that step by server_lr",
            ),
            Mistake(
                [-server_lr * client_lr * g for g in gradient],
                "fedsgd_round returns only the step, −η_s η_c g: add it to the weights",
            ),
            Mistake(
                step(server_lr + client_lr),
                "fedsgd_round adds the two rates: the server scales the clients' step "
                "(η_c g) by η_s, so they multiply",
            ),
            Mistake(
                step(server_lr * client_lr, on_weights=server_lr),
                "fedsgd_round scales the weights too (η_s (w − η_c g)): the server scales only "
                "the update, w + η_s · Δ",
            ),
        ],
        "fedsgd_round is not w − server_lr · client_lr · g, layer by layer",
    )
    passed(
        "fedsgd_round: w − server_lr · client_lr · g, so only the product of the two rates counts"
    )


# --- keep a run (exercise 6) ---------------------------------------------------------------------


def check_saved_history(saved: Any, original: Any) -> None:
    """Check ``saved``: the dashboard's run (``original``, ``dash.history``) written by Save (or
    ``dash.save(folder)``) and read back with ``fedlab.History.load``.

    It recognises: the stub; the path of the file, or the two paths that ``dash.save`` returns,
    instead of the History; the file's raw JSON (a dict); ``dash.history`` itself, never saved or
    loaded; a file saved before the last rounds were run; another run's file.

    Example:
        >>> run = _history([0.5, 0.8])
        >>> from fedlab.history import History
        >>> check_saved_history(History.from_dict(run.to_dict()), run)
        ✓ saved: the dashboard's 2 rounds, read back from the file exactly
        >>> check_saved_history(run, run)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: saved is dash.history itself...
    """
    import os

    from fedlab.history import History

    require("saved", saved, "press Save, then read the file with fedlab.History.load(path)")
    if isinstance(saved, tuple) and saved and isinstance(saved[0], str | os.PathLike):
        raise CheckFailed(
            "saved holds the two paths dash.save returns (history.json, dashboard.png): load the "
            "first with fedlab.History.load"
        )
    if isinstance(saved, str | os.PathLike):
        raise CheckFailed(
            f"saved is a path ({os.fspath(saved)!r}): read the file it names with "
            "fedlab.History.load(path)"
        )
    if isinstance(saved, dict):
        raise CheckFailed(
            "saved is the file's raw JSON (a dict): fedlab.History.load(path) makes the History "
            "that plot_drift draws"
        )
    if not isinstance(saved, History):
        raise CheckFailed(
            f"saved is a {type(saved).__name__}: fedlab.History.load(path) returns a History"
        )
    if saved is original:
        raise CheckFailed(
            "saved is dash.history itself, not read back from the file: save the run (Save, or "
            "dash.save(folder)), then fedlab.History.load the history.json it wrote"
        )
    if saved.config != original.config:
        raise CheckFailed(
            "saved is another run than the dashboard's current one (their settings differ): "
            "save the run on the dashboard now and load that file"
        )
    if len(saved) != len(original):
        raise CheckFailed(
            f"saved has {len(saved)} rounds, the dashboard's run {len(original)}: it was saved "
            "before the last rounds ran; press Save again and load the file again"
        )
    if saved != original:
        raise CheckFailed(
            "saved has the dashboard's settings and rounds but other numbers: load the file "
            "that Save wrote for this run"
        )
    passed(f"saved: the dashboard's {len(saved)} rounds, read back from the file exactly")
