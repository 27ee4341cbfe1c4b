"""Checks for notebook 06's exercises (server optimisers): a momentum step and an Adam path
written by hand, runs that change one setting of the server optimiser, the gains over FedAvg and
the size of FedAdam's first step."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
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
    same,
)

__all__ = [
    "check_adam_path",
    "check_first_steps",
    "check_gains",
    "check_momentum_step",
    "check_server_runs",
]


# --- FedAvgM's server step (exercise 1) ----------------------------------------------------------


def _momentum(w, d, v, lr, beta, nesterov=False):
    """The right step: v ← βv + Δ; w ← w + η v (or η (βv + Δ) with Nesterov)."""
    new_v = beta * v + d
    return [w + lr * (beta * new_v + d if nesterov else new_v), new_v]


def _pair(got: Any, name: str, what: str) -> list[np.ndarray]:
    """``got`` as two float arrays, or a CheckFailed saying it is not a pair."""
    if not isinstance(got, tuple | list) or len(got) != 2:
        raise CheckFailed(f"{name} should return a pair ({what}), got {type(got).__name__}")
    try:
        return [np.asarray(g, dtype=np.float64) for g in got]
    except (TypeError, ValueError):
        raise CheckFailed(f"{name} should return a pair of arrays ({what})") from None


def check_momentum_step(momentum_step: Callable, seed: int | None = None) -> None:
    """Check ``momentum_step(weights, delta, velocity, server_lr, momentum, nesterov=False)``:
    FedAvgM's server step on arrays, returning ``(new_weights, new_velocity)`` with
    ``v ← β·v + Δ`` and ``w ← w + η·v`` (Nesterov: ``w ← w + η·(β·v + Δ)``, the new v),
    without changing its arguments in place.

    It recognises: not a pair; inputs changed in place; the step against the velocity (w − η v);
    the velocity adding up the pseudo-gradient −Δ; an averaged velocity β v + (1 − β) Δ (Adam's
    m); the old velocity used for the step; momentum on the weights (a velocity or a step that
    depends on w); β on Δ instead of on v; no momentum at all; ``server_lr`` ignored; the old
    velocity returned; ``nesterov`` ignored, or its look-ahead without Δ or without β.

    Example:
        >>> def momentum_step(w, d, v, lr, beta, nesterov=False):
        ...     v = beta * v + d
        ...     return w + lr * (beta * v + d if nesterov else v), v
        >>> check_momentum_step(momentum_step)
        ✓ momentum_step: v ← β·v + Δ, w ← w + η·v, and Nesterov's look-ahead w + η·(β·v + Δ)
        >>> check_momentum_step(lambda w, d, v, lr, beta, nesterov=False: (w - lr * (beta * v + d), beta * v + d))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: momentum_step steps against the velocity (w − η·v)...
    """
    if seed is None:
        w, d, v = np.array([1.0, 2.0]), np.array([0.5, -1.0]), np.array([0.2, 0.4])
        lr, beta = 0.5, 0.9
    else:
        rng = np.random.default_rng(seed)
        w, d, v = rng.normal(size=5), rng.normal(size=5), rng.normal(size=5)
        lr, beta = float(rng.uniform(0.1, 2.0)), float(rng.uniform(0.3, 0.95))
    name, what = "momentum_step", "new_weights, new_velocity"
    for nesterov in (False, True):
        args = [w.copy(), d.copy(), v.copy()]
        got = _pair(call(momentum_step, name, *args, lr, beta, nesterov), name, what)
        if not (same(args[0], w) and same(args[1], d) and same(args[2], v)):
            raise CheckFailed(
                "momentum_step changed an argument in place (e.g. with += or *=): the server "
                "still needs the old arrays; build new ones (v = momentum * velocity + delta)"
            )
        if any(g.shape != w.shape for g in got):
            raise CheckFailed(
                "momentum_step should return two arrays shaped like weights: the new weights and "
                "the new velocity"
            )
        expected = _momentum(w, d, v, lr, beta, nesterov)
        if same(got, expected):
            continue
        shifted = _pair(call(momentum_step, name, w + 3.0, d.copy(), v.copy(), lr, beta, nesterov),
                        name, what)  # fmt: skip
        if not same(shifted[1], got[1]):
            raise CheckFailed(
                "momentum_step's velocity depends on the weights: that is momentum on the "
                "weights. The velocity adds up the updates, v ← β·v + Δ, and never sees w"
            )
        if not same(shifted[0] - 3.0, got[0]):
            raise CheckFailed(
                "momentum_step's step depends on the weights themselves (momentum applied to w, "
                "e.g. β·w): only the velocity of the updates moves w, w ← w + η·v"
            )
        plain = _momentum(w, d, v, lr, beta)
        minus = beta * v - d
        damped = beta * v + (1 - beta) * d
        mistakes = [
            Mistake(
                [2 * w - expected[0], expected[1]],
                "momentum_step steps against the velocity (w − η·v): Δ is the clients' mean update "
                "and already points downhill (the pseudo-gradient is −Δ), so w ← w + η·v",
            ),
            Mistake(
                [w + lr * minus, minus],
                "momentum_step's velocity adds up the pseudo-gradient −Δ: here the velocity "
                "adds up Δ itself, v ← β·v + Δ, and the step is w + η·v",
            ),
            Mistake(
                [w - lr * minus, minus],
                "momentum_step's velocity adds up the pseudo-gradient −Δ (and steps with −η): "
                "keep the velocity of Δ itself, v ← β·v + Δ, w ← w + η·v, so that it matches "
                "fedlab's state",
            ),
            Mistake(
                [w + lr * damped, damped],
                "momentum_step averages, v ← β·v + (1 − β)·Δ, as Adam's m does; FedAvgM's velocity "
                "adds Δ whole, v ← β·v + Δ (hence its long-run step η/(1 − β))",
            ),
            Mistake(
                [w + lr * v, plain[1]],
                "momentum_step steps with last round's velocity: update v first (v ← β·v + Δ), "
                "then step with the new v",
            ),
            Mistake(
                [w + lr * (v + beta * d), v + beta * d],
                "momentum_step puts β on Δ (v + β·Δ): β multiplies the old velocity, v ← β·v + Δ",
            ),
            Mistake(
                [w + lr * d, d],
                "momentum_step ignores the old velocity (that is FedAvg's step): v ← β·v + Δ",
            ),
            Mistake(
                [w + lr * d, v],
                "momentum_step steps by η·Δ and keeps the velocity unchanged: v ← β·v + Δ, then "
                "w ← w + η·v",
            ),
            Mistake(
                [w + expected[1] if not nesterov else w + beta * plain[1] + d, plain[1]],
                "momentum_step ignores server_lr: the step is η times the velocity",
            ),
            Mistake(
                [expected[0], v],
                "momentum_step returns the old velocity: return the new one, β·v + Δ, for the "
                "next round",
            ),
        ]
        if nesterov:
            mistakes = [
                Mistake(
                    plain,
                    "with nesterov=True momentum_step takes the plain momentum step: Nesterov "
                    "looks ahead, w ← w + η·(β·v + Δ) with the new v",
                ),
                Mistake(
                    [w + lr * beta * plain[1], plain[1]],
                    "momentum_step's Nesterov step leaves Δ out: w ← w + η·(β·v + Δ)",
                ),
                Mistake(
                    [w + lr * (plain[1] + d), plain[1]],
                    "momentum_step's Nesterov step leaves β out: w ← w + η·(β·v + Δ)",
                ),
                *mistakes,
            ]
        elif same(got, _momentum(w, d, v, lr, beta, True)):
            raise CheckFailed(
                "with nesterov=False momentum_step takes Nesterov's step: the plain step is "
                "w ← w + η·v"
            )
        flavour = "Nesterov step (nesterov=True)" if nesterov else "step (nesterov=False)"
        diagnose(
            got,
            expected,
            mistakes,
            f"momentum_step's {flavour} is not FedAvgM's: v ← β·v + Δ, then w ← w + η·v "
            "(Nesterov: w + η·(β·v + Δ))",
        )
    passed("momentum_step: v ← β·v + Δ, w ← w + η·v, and Nesterov's look-ahead w + η·(β·v + Δ)")


# --- FedAdam's server, round after round (exercise 2) --------------------------------------------


def _adam_path(
    w0: np.ndarray,
    deltas: np.ndarray,
    lr: float,
    b1: float,
    b2: float,
    tau: float,
    *,
    second: Callable | None = None,
    m_rate: float | None = None,
    v0: float | None = None,
    correct: str = "",
    step: Callable | None = None,
) -> np.ndarray:
    """FedAdam's path, and its usual variants (what each mistake would give)."""
    w, m = w0.astype(np.float64), np.zeros_like(w0, dtype=np.float64)
    v = np.full_like(w, tau**2 if v0 is None else v0)
    path = []
    for t, d in enumerate(deltas, start=1):
        m = b1 * m + (1 - b1 if m_rate is None else m_rate) * d
        v = b2 * v + (1 - b2) * d**2 if second is None else second(v, d, m)
        m_hat = m / (1 - b1**t) if "m" in correct else m
        v_hat = v / (1 - b2**t) if "v" in correct else v
        w = w + (lr * m_hat / (np.sqrt(v_hat) + tau) if step is None else step(m_hat, v_hat, d))
        path.append(w)
    return np.array(path)


def check_adam_path(adam_path: Callable, seed: int | None = None) -> None:
    """Check ``adam_path(w0, deltas, server_lr, beta1, beta2, tau)``: the weights after each
    round (one row per Δ in ``deltas``) when FedAdam's server steps ``w0``, starting from
    ``m = 0`` and ``v = τ²``: ``m ← β1·m + (1 − β1)·Δ``, ``v ← β2·v + (1 − β2)·Δ²``,
    ``w ← w + η·m / (√v + τ)``, no bias correction (Reddi et al. 2021, ``fedlab``'s
    ``ServerAdam``).

    It recognises: the wrong shape (only the last weights, or ``w0`` as a first row); a bias
    correction (of m and v, or of m alone); the second moment without the square (Δ or ``|Δ|``);
    the step against m (the sign of the pseudo-gradient); v started at 0; no (1 − β) factors;
    τ inside the square root; no square root; Δ instead of m in the step; the second moment of
    m instead of Δ; Yogi's or Adagrad's v.

    Example:
        >>> def adam_path(w0, deltas, server_lr, beta1=0.9, beta2=0.99, tau=1e-3):
        ...     w, m, v, path = w0, 0 * w0, np.full_like(w0, tau**2), []
        ...     for d in deltas:
        ...         m = beta1 * m + (1 - beta1) * d
        ...         v = beta2 * v + (1 - beta2) * d**2
        ...         w = w + server_lr * m / (np.sqrt(v) + tau)
        ...         path.append(w)
        ...     return np.array(path)
        >>> check_adam_path(adam_path)
        ✓ adam_path: m and v from 0 and τ², w ← w + η·m / (√v + τ) each round, no bias correction
    """
    if seed is None:
        w0 = np.array([1.0, 2.0, 0.0])
        deltas = np.array([[0.5, -1.0, 0.05], [0.3, -0.8, 0.0], [-0.2, -0.6, 0.02]])
        lr, b1, b2, tau = 0.1, 0.9, 0.99, 0.1
    else:
        rng = np.random.default_rng(seed)
        w0, deltas = rng.normal(size=4), rng.normal(scale=0.3, size=(4, 4))
        lr, b1 = float(rng.uniform(0.01, 0.5)), float(rng.uniform(0.5, 0.95))
        b2, tau = float(rng.uniform(0.9, 0.999)), float(rng.uniform(0.01, 0.2))
    rounds = len(deltas)
    got = call(adam_path, "adam_path", w0.copy(), deltas.copy(), lr, b1, b2, tau)
    try:
        got = np.asarray(got, dtype=np.float64)
    except (TypeError, ValueError):
        raise CheckFailed(
            "adam_path should return an array, one row of weights per round"
        ) from None
    if got.shape == w0.shape:
        raise CheckFailed(
            "adam_path returns one vector of weights: return the weights after every round, one "
            f"row per Δ ({rounds} rows here)"
        )
    if got.shape == (rounds + 1, len(w0)):
        raise CheckFailed(
            f"adam_path returns {rounds + 1} rows for {rounds} rounds: leave w0 out, one row per "
            "round, the weights after that round's step"
        )
    if got.shape != (rounds, len(w0)):
        raise CheckFailed(
            f"adam_path returns an array of shape {got.shape}; want ({rounds}, {len(w0)}): the "
            "weights after each round, one row per Δ"
        )
    if np.isnan(got).any():
        raise CheckFailed(
            "adam_path's weights become NaN: a square root of a negative v. The second moment "
            "adds the square of the update, v ← β2·v + (1 − β2)·Δ²"
        )
    args = (w0, deltas, lr, b1, b2, tau)

    def variant(**how: Any) -> np.ndarray:
        with np.errstate(invalid="ignore"):  # a variant without the square takes √ of v < 0
            return _adam_path(*args, **how)

    mistakes = [
        Mistake(
            variant(correct="mv"),
            "adam_path corrects the bias (m / (1 − β1^t), v / (1 − β2^t)), as Adam on one "
            "machine does; FedAdam's server (Reddi et al., and fedlab) has no bias correction, "
            "w ← w + η·m / (√v + τ)",
        ),
        Mistake(
            variant(correct="m"),
            "adam_path corrects m's bias (m / (1 − β1^t)): FedAdam has no bias correction",
        ),
        Mistake(
            variant(second=lambda v, d, m: b2 * v + (1 - b2) * np.abs(d)),
            "adam_path's second moment adds |Δ|, not its square: v ← β2·v + (1 − β2)·Δ²",
        ),
        Mistake(
            variant(second=lambda v, d, m: b2 * v + (1 - b2) * d),
            "adam_path's second moment adds Δ, not its square: v ← β2·v + (1 − β2)·Δ²",
        ),
        Mistake(
            variant(step=lambda m, v, d: -lr * m / (np.sqrt(v) + tau)),
            "adam_path steps against m (w − η·m / (√v + τ)): m averages Δ, which already points "
            "downhill (the pseudo-gradient is −Δ), so w ← w + η·m / (√v + τ)",
        ),
        Mistake(
            variant(v0=0.0),
            "adam_path starts v at 0: FedAdam starts it at τ² (v ≥ τ² keeps the first steps "
            "bounded; fedlab's ServerAdam.init does the same)",
        ),
        Mistake(
            variant(m_rate=1.0, second=lambda v, d, m: b2 * v + d**2),
            "adam_path adds Δ and Δ² whole: m ← β1·m + (1 − β1)·Δ and v ← β2·v + (1 − β2)·Δ²",
        ),
        Mistake(
            variant(m_rate=1.0),
            "adam_path adds Δ to m whole: m ← β1·m + (1 − β1)·Δ",
        ),
        Mistake(
            variant(step=lambda m, v, d: lr * m / np.sqrt(v + tau)),
            "adam_path puts τ inside the square root: w ← w + η·m / (√v + τ)",
        ),
        Mistake(
            variant(step=lambda m, v, d: lr * m / (v + tau)),
            "adam_path divides by v, not by √v: w ← w + η·m / (√v + τ)",
        ),
        Mistake(
            variant(step=lambda m, v, d: lr * d / (np.sqrt(v) + tau)),
            "adam_path steps with this round's Δ, not with m: the step is η·m / (√v + τ)",
        ),
        Mistake(
            variant(second=lambda v, d, m: b2 * v + (1 - b2) * m**2),
            "adam_path's second moment squares m: it averages the squared updates, "
            "v ← β2·v + (1 − β2)·Δ²",
        ),
        Mistake(
            variant(second=lambda v, d, m: v - (1 - b2) * d**2 * np.sign(v - d**2)),
            "adam_path moves v as Yogi does (v − (1 − β2)·Δ²·sign(v − Δ²)); Adam's v is an "
            "average: v ← β2·v + (1 − β2)·Δ²",
        ),
        Mistake(
            variant(second=lambda v, d, m: v + d**2),
            "adam_path sums v as Adagrad does (v + Δ²); Adam's v forgets: v ← β2·v + (1 − β2)·Δ²",
        ),
    ]
    diagnose(
        got,
        variant(),
        mistakes,
        "adam_path's weights are not FedAdam's: from m = 0 and v = τ², each round "
        "m ← β1·m + (1 − β1)·Δ, v ← β2·v + (1 − β2)·Δ², w ← w + η·m / (√v + τ)",
    )
    passed(
        "adam_path: m and v from 0 and τ², w ← w + η·m / (√v + τ) each round, no bias correction"
    )


# --- runs that change the server optimiser (exercises 1–5) ---------------------------------------


def _flat(history: Any) -> Any:
    """``history`` with its server optimiser's settings (momentum, nesterov, tau, ...) as
    settings of its own and its algorithm's name dropped, for :func:`check_runs`."""
    algorithm = dict(history.config.get("algorithm", {}))
    server = dict(algorithm.pop("server_optimizer", {}) or {"name": "ServerSGD"})
    algorithm["server_optimizer"] = server.pop("name", "ServerSGD")
    server.pop("server_lr", None)
    algorithm.update(server)
    algorithm["name"] = None  # the name is a label; the settings say what ran
    return dataclasses.replace(history, config={**history.config, "algorithm": algorithm})


def check_server_runs(
    runs: Any,
    reference: Any,
    *,
    name: str = "runs",
    what: str = "the reference run",
    **changed: Any,
) -> None:
    """:func:`check_runs` for runs that change the server optimiser: its settings
    (``momentum``, ``nesterov``, ``beta1``, ``beta2``, ``tau``, and ``server_optimizer``, its
    class name) count as settings of the run, and the algorithm's ``name`` does not (a label).

    Besides what :func:`check_runs` recognises, it names a run whose server optimiser is not the
    reference's (e.g. ``ProxAlgorithm`` without ``server_optimizer=ServerAdam(...)``).

    Example:
        >>> from fedlab.history import History
        >>> adam = {"name": "FedAdam", "server_lr": 0.03,
        ...         "server_optimizer": {"name": "ServerAdam", "server_lr": 0.03, "tau": 0.001}}
        >>> prox = {"name": "FedProx", "server_lr": 1.0, "mu": 0.01}
        >>> check_server_runs(History(config={"algorithm": prox}), History(config={"algorithm": adam}),
        ...                   name="prox_adam", mu=0.01)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: prox_adam's server optimiser is ServerSGD, the reference run's ServerAdam...
    """
    require(name, runs, f"make the runs, each as {what} with the settings the exercise names")
    from fedlab.history import History

    def flat(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {key: flat(run) for key, run in value.items()}
        return _flat(value) if isinstance(value, History) else value

    flat_runs, flat_reference = flat(runs), flat(reference)
    if "server_optimizer" not in changed:
        items = flat_runs.items() if isinstance(flat_runs, Mapping) else [(None, flat_runs)]
        for key, run in items:
            if not isinstance(run, History):
                continue  # check_runs says what is wrong with it
            ref = flat_reference[key] if isinstance(flat_reference, Mapping) else flat_reference
            if not isinstance(ref, History):
                continue
            mine = run.config["algorithm"]["server_optimizer"]
            theirs = ref.config["algorithm"]["server_optimizer"]
            if mine != theirs:
                label = name if key is None else f"{name}[{key!r}]"
                raise CheckFailed(
                    f"{label}'s server optimiser is {mine}, {what}'s {theirs}: keep the server "
                    f"step ({theirs}) and change only what the exercise says (an algorithm's "
                    "server_optimizer= slot takes it)"
                )
    check_runs(flat_runs, flat_reference, name=name, what=what, **changed)


# --- what the server optimisers gain over FedAvg (exercise 4) -----------------------------------


def check_gains(gains: Callable, seed: int | None = None) -> None:
    """Check ``gains(accuracy, baseline)``: for ``accuracy``, a dict ``{run name: per-round test
    accuracy}``, the final accuracy of every run but ``baseline`` minus the baseline's final
    accuracy, as ``{run name: gain}``.

    It recognises: the sign reversed (baseline minus run); the best round or the mean instead
    of the final round; the first round; the baseline included (a gain of 0); percentage points
    instead of fractions; not a dict.

    Example:
        >>> def gains(accuracy, baseline):
        ...     return {k: a[-1] - accuracy[baseline][-1] for k, a in accuracy.items() if k != baseline}
        >>> check_gains(gains)
        ✓ gains: each run's final accuracy minus the baseline's, for every run but the baseline
    """
    if seed is None:
        accuracy = {
            "FedAvg": np.array([0.2, 0.6, 0.8, 0.7, 0.85]),
            "FedAvgM": np.array([0.1, 0.3, 0.6, 0.8, 0.9]),
            "FedAdam": np.array([0.3, 0.7, 0.9, 0.96, 0.95]),
        }
        baseline = "FedAvg"
    else:
        rng = np.random.default_rng(seed)
        accuracy = {}
        for k in range(4):
            a = np.clip(np.sort(rng.uniform(0.1, 0.9, 8)) + rng.normal(0, 0.05, 8), 0, 1)
            a[-1] = a[:-1].max() - rng.uniform(0.02, 0.08)  # the last round is not the best
            accuracy[f"run {k}"] = a
        baseline = f"run {int(rng.integers(4))}"
    given = {k: a.copy() for k, a in accuracy.items()}
    got = call(gains, "gains", given, baseline)
    if not isinstance(got, Mapping):
        raise CheckFailed(
            f"gains should return a dict {{run name: gain}}, got {type(got).__name__}"
        )
    others = [k for k in accuracy if k != baseline]
    if baseline in got:
        raise CheckFailed(
            f"gains has an entry for the baseline {baseline!r} (its gain over itself is 0): "
            "leave it out, one entry for every other run"
        )
    missing = [k for k in others if k not in got]
    if missing:
        raise CheckFailed(f"gains has no entry for {', '.join(map(repr, missing))}")

    def by(measure: Callable[[np.ndarray], float], sign: float = 1.0) -> list[float]:
        base = measure(accuracy[baseline])
        return [sign * (measure(accuracy[k]) - base) for k in others]

    values = [got[k] for k in others]
    diagnose(
        values,
        by(lambda a: a[-1]),
        [
            Mistake(
                by(lambda a: a[-1], -1.0),
                "gains is the baseline minus the run: a run that ends above the baseline has a "
                "positive gain, run − baseline",
            ),
            Mistake(
                by(lambda a: 100 * a[-1]),
                "gains are in percentage points: keep accuracies as fractions (0.05, not 5)",
            ),
            Mistake(
                by(np.max),
                "gains compares the best rounds: compare the final accuracies (accuracy[-1])",
            ),
            Mistake(
                by(np.mean),
                "gains compares the mean over all rounds: compare the final accuracies",
            ),
            Mistake(
                by(lambda a: a[0]),
                "gains compares the first rounds: compare the final accuracies (accuracy[-1])",
            ),
        ],
        "gains is not each run's final accuracy minus the baseline's final accuracy",
    )
    passed("gains: each run's final accuracy minus the baseline's, for every run but the baseline")


# --- FedAdam's first step with η = 1 (exercise 5) ------------------------------------------------


def check_first_steps(
    steps: Any,
    deltas: Sequence[float],
    server_lr: float,
    beta1: float = 0.9,
    beta2: float = 0.99,
    tau: float = 1e-3,
) -> None:
    """Check ``steps``: the first step w₁ − w₀ of FedAdam's server (from ``m = 0``,
    ``v = τ²``) for each update Δ in ``deltas``, with learning rate ``server_lr`` (to 0.01,
    so a careful hand calculation passes).

    It recognises: the stub; one number per Δ missing; η·sign(Δ) for every Δ (the rule holds
    only for ``|Δ|`` ≫ 10τ); SGD's step η·Δ; v started at 0; a bias correction; m's (1 − β1)
    forgotten; another learning rate.

    Example:
        >>> check_first_steps([0.05, 0.415, 0.905, 0.99], [0.001, 0.01, 0.1, 1.0], 1.0)
        ✓ first steps: from 0.05 (Δ = 0.001) to 0.99 (Δ = 1): η·sign(Δ) only where |Δ| ≫ 10τ
        >>> check_first_steps([1.0, 1.0, 1.0, 1.0], [0.001, 0.01, 0.1, 1.0], 1.0)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: first_steps is η·sign(Δ) for every Δ...
    """
    require("first_steps", steps, "FedAdam's first step for each Δ (your adam_path does it)")
    d = np.asarray(deltas, dtype=np.float64)
    try:
        got = np.ravel(np.asarray(steps, dtype=np.float64))
    except (TypeError, ValueError):
        raise CheckFailed("first_steps should be numbers, one step per Δ") from None
    if got.shape != d.shape:
        raise CheckFailed(f"first_steps has {got.size} numbers for {d.size} Δs: one step per Δ")

    def first(lr=server_lr, m=1 - beta1, v0=tau**2, correct=False):
        m_1, v_1 = m * d, beta2 * v0 + (1 - beta2) * d**2
        if correct:
            m_1, v_1 = m_1 / (1 - beta1), v_1 / (1 - beta2)
        return lr * m_1 / (np.sqrt(v_1) + tau)

    right = first()
    mistakes = [
        Mistake(
            server_lr * np.sign(d),
            "first_steps is η·sign(Δ) for every Δ: that is the limit for |Δ| ≫ 10τ. Where Δ is "
            "comparable to τ, τ in the denominator shrinks the step: compute η·m / (√v + τ) "
            "after one round (adam_path does)",
        ),
        Mistake(server_lr * d, "first_steps is SGD's step η·Δ: Adam's is η·m / (√v + τ)"),
        Mistake(first(v0=0.0), "first_steps starts v at 0: FedAdam starts it at τ²"),
        Mistake(first(correct=True), "first_steps corrects the bias: FedAdam does not"),
        Mistake(first(m=1.0), "first_steps forgets m's factor: m = (1 − β1)·Δ after round 1"),
    ]
    if not same(got, right, atol=0.01) and not any(
        same(got, x.answer, atol=0.01) for x in mistakes
    ):
        ratio = float(got @ right / (right @ right))
        if np.allclose(got, ratio * right, atol=0.01):
            raise CheckFailed(
                f"first_steps are {ratio:.3g} times FedAdam's first steps: use this exercise's "
                f"learning rate, server_lr={server_lr:g} (a step is proportional to η)"
            )
    diagnose(
        got,
        right,
        mistakes,
        f"first_steps are not FedAdam's first steps with server_lr={server_lr:g}, β1={beta1:g}, "
        f"β2={beta2:g}, τ={tau:g}: from m = 0, v = τ², one round of adam_path",
        atol=0.01,
    )
    passed(
        f"first steps: from {got[0]:.2f} (Δ = {d[0]:g}) to {got[-1]:.2f} (Δ = {d[-1]:g}): "
        "η·sign(Δ) only where |Δ| ≫ 10τ"
    )
