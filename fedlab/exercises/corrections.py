"""Checks for notebook 05's exercises (FedProx and SCAFFOLD): FedProx's local steps, a μ sweep,
SCAFFOLD's lead and its bytes, stragglers, and SCAFFOLD's corrected local update."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from fedlab.exercises.core import (
    CheckFailed,
    Mistake,
    Weights,
    call,
    check_runs,
    diagnose,
    passed,
    require,
    same,
)

__all__ = [
    "check_best_mu",
    "check_fedprox_local_sgd",
    "check_megabytes_to",
    "check_scaffold_lead",
    "check_scaffold_local_update",
    "check_scaffold_replay",
    "check_scaffold_round_bytes",
    "check_drop_or_keep",
]


def _last5(history: Any) -> float:
    """The mean test accuracy of a run's last five rounds (the notebook's "last 5" column)."""
    return float(np.mean(history.test_accuracy[-5:]))


def _percent(share: float) -> str:
    """``share`` in percent, as the notebooks write it: ``0.9`` → ``90 %``."""
    return f"{100 * share:.0f} %"


def _is_list_of_arrays(value: Any) -> bool:
    """Whether ``value`` is a list (or tuple) of weights rather than one array or a number."""
    return isinstance(value, list | tuple)


# --- FedProx's local steps (exercise 1) ----------------------------------------------------------


def _prox_example(seed: int | None) -> tuple[Weights, Weights, Weights, float, float, int]:
    """A client loss F(w) = ½ Σ h·(w − a)² over two layers: w_global, a, h, μ, lr, steps."""
    if seed is None:
        w_global = [np.array([0.5, -1.0, 0.0]), np.array([[2.0, 0.0], [1.0, -1.0]])]
        optimum = [np.array([2.0, 1.0, -1.0]), np.array([[-1.0, 0.5], [0.0, 1.0]])]
        curvature = [np.array([1.0, 0.5, 2.0]), np.array([[2.0, 1.0], [0.5, 1.5]])]
        return w_global, optimum, curvature, 0.3, 0.1, 5
    rng = np.random.default_rng(seed)
    shapes = [(int(rng.integers(2, 6)),), (int(rng.integers(2, 4)), int(rng.integers(2, 4)))]
    w_global = [rng.normal(size=s) for s in shapes]
    optimum = [w + rng.normal(0, 2, size=w.shape) for w in w_global]
    curvature = [rng.uniform(0.5, 2.0, size=s) for s in shapes]
    mu, lr = float(rng.uniform(0.05, 0.4)), float(rng.uniform(0.05, 0.2))
    return w_global, optimum, curvature, mu, lr, int(rng.integers(3, 8))


def _prox_steps(
    w_global: Weights,
    gradient: Callable,
    lr: float,
    steps: int,
    pull: Callable,
    *,
    spring_lr: bool = True,
    gradient_at_start: bool = False,
) -> Weights:
    """``steps`` local steps w ← w − lr·g − (lr)·pull(w): the right one and each mistake."""
    w = [a.copy() for a in w_global]
    first = gradient(w_global)
    for _ in range(steps):
        g = first if gradient_at_start else gradient(w)
        scale = lr if spring_lr else 1.0
        w = [wi - lr * gi - scale * pi for wi, gi, pi in zip(w, g, pull(w), strict=True)]
    return w


def check_fedprox_local_sgd(fedprox_local_sgd: Callable, seed: int | None = None) -> None:
    """Check ``fedprox_local_sgd(w_global, gradient, mu, lr, num_steps)``: ``num_steps`` local SGD
    steps of FedProx from ``w_global``, each ``w ← w − lr·(gradient(w) + mu·(w − w_global))``;
    the final weights, one array per layer, with ``w_global`` left unchanged. Tried on a client
    loss F(w) = ½ Σ h·(w − a)², whose gradient is h·(w − a).

    It recognises: ``w_global`` changed in place (so the anchor moved with w and the spring never
    pulled); the proximal term left out (plain SGD: FedAvg); μ missing (the pull ``w − w_global``
    unscaled); the pull with the wrong sign (``−μ(w − w_global)``, a push away); the factor 2
    (``2μ(w − w_global)``, the derivative of μ‖w − w_global‖² instead of (μ/2)‖…‖²) or ½
    (``(μ/2)(w − w_global)``, μ/2 copied from the objective without differentiating); a pull
    towards zero (``μ·w``: weight decay, not FedProx); the spring not scaled by ``lr``; the
    gradient computed once at ``w_global`` instead of at every step's weights; too few or too
    many steps; ``w_global`` returned unchanged.

    Example:
        >>> def right(w_global, gradient, mu, lr, num_steps):
        ...     w = [a.copy() for a in w_global]
        ...     for _ in range(num_steps):
        ...         g = gradient(w)
        ...         w = [wi - lr * (gi + mu * (wi - w0)) for wi, gi, w0 in zip(w, g, w_global)]
        ...     return w
        >>> check_fedprox_local_sgd(right)
        ✓ fedprox_local_sgd steps along gradient + μ·(w − w_global): a spring back to the global model
        >>> def pushes(w_global, gradient, mu, lr, num_steps):
        ...     w = [a.copy() for a in w_global]
        ...     for _ in range(num_steps):
        ...         g = gradient(w)
        ...         w = [wi - lr * (gi - mu * (wi - w0)) for wi, gi, w0 in zip(w, g, w_global)]
        ...     return w
        >>> check_fedprox_local_sgd(pushes)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: your proximal term has the wrong sign...
    """
    w_global, optimum, curvature, mu, lr, steps = _prox_example(seed)

    def gradient(w: Weights) -> Weights:
        return [
            h * (np.asarray(wi, dtype=np.float64) - a)
            for wi, a, h in zip(w, optimum, curvature, strict=True)
        ]

    given = [w.copy() for w in w_global]
    got = call(fedprox_local_sgd, "fedprox_local_sgd", given, gradient, mu, lr, steps)
    if not same(given, w_global, atol=1e-12, rtol=0):
        raise CheckFailed(
            "fedprox_local_sgd changed w_global in place (w = w_global, then w -= ... changes "
            "both): the spring's anchor moved along with w, so it never pulled. Start from a copy, "
            "w = [a.copy() for a in w_global], and keep w_global fixed: it is the point the server "
            "broadcast"
        )
    if not _is_list_of_arrays(got):
        raise CheckFailed(
            "fedprox_local_sgd should return a list with one array per layer, like w_global"
        )
    if len(got) != len(w_global):
        raise CheckFailed(
            f"fedprox_local_sgd returns {len(got)} arrays for {len(w_global)} layers: return the "
            "final weights of every layer"
        )

    def run(pull: Callable, **options: bool) -> Weights:
        return _prox_steps(w_global, gradient, lr, steps, pull, **options)

    def spring(scale: float) -> Callable:
        return lambda w: [scale * (wi - w0) for wi, w0 in zip(w, w_global, strict=True)]

    expected = run(spring(mu))
    mistakes = [
        Mistake(
            w_global,
            "fedprox_local_sgd returns w_global unchanged: take num_steps steps, each "
            "w ← w − lr·(gradient(w) + μ·(w − w_global))",
        ),
        Mistake(
            run(spring(0.0)),
            "your steps are plain SGD (FedAvg's): the proximal term never pulls. Add "
            "μ·(w − w_global) to every step's gradient, with w_global the fixed point the server "
            "broadcast (not the current weights, for which w − w is 0)",
        ),
        Mistake(
            run(spring(1.0)),
            "your proximal term is missing μ: the pull is μ·(w − w_global), and μ sets how strong "
            "the spring is (μ = 0 is FedAvg)",
        ),
        Mistake(
            run(spring(-mu)),
            "your proximal term has the wrong sign: −μ·(w − w_global) pushes w away from the "
            "global model. The gradient of (μ/2)‖w − w_global‖² is +μ·(w − w_global), and the step "
            "subtracts it: w ← w − lr·(g + μ·(w − w_global))",
        ),
        Mistake(
            run(spring(2 * mu)),
            "your proximal term is twice too strong: 2μ·(w − w_global) is the gradient of "
            "μ‖w − w_global‖². FedProx's term is (μ/2)‖w − w_global‖², whose gradient is "
            "μ·(w − w_global): the 2 of the square cancels the ½",
        ),
        Mistake(
            run(spring(mu / 2)),
            "your proximal term is half as strong as it should be: (μ/2)·(w − w_global) copies the "
            "μ/2 of the objective, but differentiating (μ/2)‖w − w_global‖² gives μ·(w − w_global)",
        ),
        Mistake(
            run(lambda w: [mu * wi for wi in w]),
            "your term μ·w pulls the weights towards zero: that is weight decay (an L2 penalty), "
            "not FedProx. The spring pulls towards the global model: μ·(w − w_global)",
        ),
        Mistake(
            run(spring(mu), spring_lr=False),
            "your spring is not scaled by lr: the whole direction is scaled, "
            "w ← w − lr·(g + μ·(w − w_global))",
        ),
        Mistake(
            run(spring(mu), gradient_at_start=True),
            "fedprox_local_sgd uses the gradient at w_global in every step: call gradient(w) at "
            "the current weights, once per step",
        ),
    ]
    for count in sorted({1, steps - 1, steps + 1, 2 * steps} - {0, steps}):
        mistakes.append(
            Mistake(
                _prox_steps(w_global, gradient, lr, count, spring(mu)),
                f"fedprox_local_sgd takes {count} steps; take num_steps = {steps}",
            )
        )
    diagnose(
        got,
        expected,
        mistakes,
        "fedprox_local_sgd's result is not num_steps steps of w ← w − lr·(gradient(w) + "
        "μ·(w − w_global)) from w_global",
        atol=1e-6,
    )
    passed(
        "fedprox_local_sgd steps along gradient + μ·(w − w_global): a spring back to the global "
        "model"
    )


# --- the μ sweep (exercise 1) --------------------------------------------------------------------


def _mu_of(history: Any) -> float | None:
    """μ of a FedAvg (0) or FedProx run, from its config; None for other algorithms."""
    algorithm = history.config.get("algorithm", {})
    if algorithm.get("name") == "FedAvg":
        return 0.0
    if algorithm.get("name") == "FedProx":
        return float(algorithm["mu"])
    return None


def check_best_mu(
    best_mu: Any,
    sweep: Any,
    runs: Mapping[Any, Any] | None = None,
    *,
    name: str = "best_mu",
    tolerance: float = 0.005,
) -> None:
    """Check ``best_mu``: the μ whose run has the best mean test accuracy over its last five
    rounds, among the FedAvg (μ = 0) and FedProx runs of ``sweep`` and ``runs`` (a History's μ
    is read from its config; other algorithms are left out). A μ within ``tolerance`` of the best
    passes: runs that close are a tie.

    It recognises: the stub; a μ that was not run; the μ with the least client drift (less drift
    is not the goal); the μ best in the final round only; any other μ that is not the best.

    Example:
        >>> class Run:  # what the check reads of a History
        ...     def __init__(self, mu, accuracy, drift):
        ...         self.config = {"algorithm": {"name": "FedProx", "mu": mu} if mu else {"name": "FedAvg"}}
        ...         self.test_accuracy, self.drift_mean = np.full(5, accuracy), np.full(5, drift)
        >>> sweep = {0.01: Run(0.01, 0.90, 0.8), 1.0: Run(1.0, 0.85, 0.5)}
        >>> check_best_mu(0.01, sweep, {"FedAvg": Run(0, 0.88, 0.9)})
        ✓ best_mu = 0.01: last-5 accuracy 0.900 (FedAvg, μ = 0: 0.880)
        >>> check_best_mu(1.0, sweep)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: best_mu = 1 is the μ with the least client drift...
    """
    require(name, best_mu, "the μ whose run has the best last-5 accuracy (0 for FedAvg)")
    if not isinstance(sweep, Mapping):
        raise CheckFailed(f"the sweep should be a dict {{μ: History}}, got {type(sweep).__name__}")
    histories: dict[float, Any] = {}
    for run in [*sweep.values(), *(runs or {}).values()]:
        mu = _mu_of(run) if hasattr(run, "config") else None
        if mu is not None:
            histories.setdefault(mu, run)
    if not isinstance(best_mu, numbers.Real) or isinstance(best_mu, bool):
        raise CheckFailed(f"{name} should be a number, the μ of one run (0 for FedAvg)")
    answer = float(best_mu)
    mus = sorted(histories)
    chosen = next((mu for mu in mus if math.isclose(mu, answer, rel_tol=1e-9)), None)
    if chosen is None:
        listed = ", ".join(f"{mu:g}" for mu in mus)
        raise CheckFailed(f"{name} = {answer:g} is not a μ that was run: answer one of {listed}")
    score = {mu: _last5(h) for mu, h in histories.items()}
    best = max(score.values())
    if score[chosen] >= best - tolerance:
        fedavg = f" (FedAvg, μ = 0: {score[0.0]:.3f})" if 0.0 in score else ""
        passed(f"{name} = {answer:g}: last-5 accuracy {score[chosen]:.3f}{fedavg}")
        return
    drift = {mu: float(np.nanmean(h.drift_mean)) for mu, h in histories.items()}
    final = {mu: float(h.test_accuracy[-1]) for mu, h in histories.items()}
    if chosen == min(drift, key=drift.get):
        raise CheckFailed(
            f"{name} = {answer:g} is the μ with the least client drift, but its last-5 accuracy, "
            f"{score[chosen]:.3f}, is not the best: less drift is not the goal in itself; compare "
            "the accuracies"
        )
    if chosen == max(final, key=final.get):
        raise CheckFailed(
            f"{name} = {answer:g} has the best accuracy in the final round, one noisy round: "
            f"compare the mean of the last five rounds (its is {score[chosen]:.3f}, not the best)"
        )
    raise CheckFailed(
        f"{name} = {answer:g} ends with a last-5 accuracy of {score[chosen]:.3f}, below the best "
        "run's: compare the mean test accuracy of the last five rounds of every run"
    )


# --- SCAFFOLD's lead and participation (exercise 2) ----------------------------------------------


def check_scaffold_lead(
    scaffold_lead: Any,
    participation_runs: Any,
    runs: Mapping[str, Any],
    sizes: Sequence[int] = (4, 10, 20),
    reference_size: int = 10,
) -> None:
    """Check ``scaffold_lead``: ``{clients per round: SCAFFOLD's last-5 accuracy minus FedAvg's}``
    for each of ``sizes``, the runs taken from ``participation_runs[(name, m)]`` and, for
    ``reference_size``, from ``runs["FedAvg"]`` and ``runs["SCAFFOLD"]`` (section 4).

    It recognises: the stub; a missing number of clients; the difference the wrong way round
    (FedAvg − SCAFFOLD); the final round's accuracies instead of the last five rounds'; every
    round's mean; percentage points instead of accuracy (×100).

    Example:
        >>> from fedlab.history import History
        >>> class Run:  # a History's test accuracies are all the check reads
        ...     def __init__(self, *acc): self.test_accuracy = np.array(acc)
        >>> runs = {"FedAvg": Run(0.5, 0.8, 0.8, 0.8, 0.8, 0.8), "SCAFFOLD": Run(0.5, 0.9, 0.9, 0.9, 0.9, 0.9)}
        >>> few = {("FedAvg", 4): Run(0.4, 0.7, 0.7, 0.7, 0.7, 0.7), ("SCAFFOLD", 4): Run(0.4, 0.9, 0.9, 0.9, 0.9, 0.9)}
        >>> check_scaffold_lead({4: 0.2, 10: 0.1}, few, runs, sizes=(4, 10))
        ✓ scaffold_lead: SCAFFOLD ahead by 0.20 with 4 clients per round, 0.10 with 10
        >>> check_scaffold_lead({4: -0.2, 10: -0.1}, few, runs, sizes=(4, 10))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: scaffold_lead is FedAvg's accuracy minus SCAFFOLD's...
    """
    require(
        "scaffold_lead",
        scaffold_lead,
        "SCAFFOLD's last-5 accuracy minus FedAvg's, for each number of clients per round",
    )
    require("participation_runs", participation_runs, "make the runs first")
    if not isinstance(scaffold_lead, Mapping):
        raise CheckFailed("scaffold_lead should be a dict {clients per round: lead}")
    missing = [m for m in sizes if m not in scaffold_lead]
    if missing:
        raise CheckFailed(
            f"scaffold_lead has no entry for {', '.join(map(str, missing))} clients per round "
            f"(it wants {', '.join(map(str, sizes))}; {reference_size} is section 4's runs)"
        )

    def pair(m: int) -> tuple[Any, Any]:
        if m == reference_size:
            return runs["FedAvg"], runs["SCAFFOLD"]
        return participation_runs[("FedAvg", m)], participation_runs[("SCAFFOLD", m)]

    def lead(measure: Callable) -> list[float]:
        return [measure(pair(m)[1]) - measure(pair(m)[0]) for m in sizes]

    got = [scaffold_lead[m] for m in sizes]
    expected = lead(_last5)
    diagnose(
        got,
        expected,
        [
            Mistake(
                [-v for v in expected],
                "scaffold_lead is FedAvg's accuracy minus SCAFFOLD's: the lead is SCAFFOLD's "
                "minus FedAvg's (positive where SCAFFOLD is ahead)",
            ),
            Mistake(
                lead(lambda h: float(h.test_accuracy[-1])),
                "scaffold_lead compares the final round only, one noisy round: compare the mean "
                "of the last five rounds (test_accuracy[-5:])",
            ),
            Mistake(
                lead(lambda h: float(np.mean(h.test_accuracy))),
                "scaffold_lead compares the mean over all rounds, the early ones too: compare "
                "the last five rounds (test_accuracy[-5:])",
            ),
            Mistake(
                [100 * v for v in expected],
                "scaffold_lead is in percentage points: give it as a difference of accuracies "
                "(0.05, not 5)",
            ),
        ],
        "scaffold_lead is not SCAFFOLD's last-5 accuracy minus FedAvg's for each number of "
        "clients per round (4 and 20 from participation_runs, 10 from section 4's runs)",
        atol=1e-6,
    )
    by_size = ", ".join(f"{v:.2f} with {m}" for m, v in zip(sizes[1:], expected[1:], strict=True))
    passed(
        f"scaffold_lead: SCAFFOLD ahead by {expected[0]:.2f} with {sizes[0]} clients per round, "
        f"{by_size}"
    )


# --- what SCAFFOLD sends (exercise 3) ------------------------------------------------------------


def check_scaffold_round_bytes(scaffold_round_bytes: Callable, seed: int | None = None) -> None:
    """Check ``scaffold_round_bytes(num_parameters, num_clients)``: the bytes one SCAFFOLD round
    sends, ``(down, up)``, with ``num_clients`` clients taking part and float32 numbers: each
    client receives x and c and sends Δy_k and Δc_k, each as large as the model.

    It recognises: the variates left out (FedAvg's bytes); numbers instead of bytes; one client
    instead of the round's clients; c or Δc_k forgotten in one direction; c counted once for the
    whole round instead of once per client; 8 bytes per number; the round's total instead of the
    pair.

    Example:
        >>> check_scaffold_round_bytes(lambda p, k: (2 * 4 * p * k, 2 * 4 * p * k))
        ✓ scaffold_round_bytes: x and c down, Δy_k and Δc_k up, 4 bytes a number, every client of the round
        >>> check_scaffold_round_bytes(lambda p, k: (4 * p * k, 4 * p * k))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: scaffold_round_bytes counts only the model...
    """
    if seed is None:
        params, clients = 1000, 5
    else:
        rng = np.random.default_rng(seed)
        params = int(rng.integers(100, 100_000))
        clients = int(rng.choice([k for k in range(3, 40) if k not in (4, 8)]))
    got = call(scaffold_round_bytes, "scaffold_round_bytes", params, clients)
    model = 4 * params  # one float32 copy of the model
    if np.isscalar(got) or isinstance(got, np.ndarray) and got.ndim == 0:
        if math.isclose(float(got), 4 * model * clients):
            raise CheckFailed(
                "scaffold_round_bytes returns the round's total, down and up together: return the "
                "pair (bytes down, bytes up)"
            )
        raise CheckFailed("scaffold_round_bytes returns one number: return (bytes down, bytes up)")
    if len(got) != 2:
        raise CheckFailed(f"scaffold_round_bytes returns {len(got)} numbers: return (down, up)")
    k = clients
    values = [float(v) for v in got]
    if values == [2 * model * k, 2 * model * k]:  # byte counts are exact
        passed(
            "scaffold_round_bytes: x and c down, Δy_k and Δc_k up, 4 bytes a number, every "
            "client of the round"
        )
        return
    diagnose(
        values,
        [math.nan, math.nan],  # not the answer: only the mistakes and `otherwise` are left
        [
            Mistake(
                [model * k, model * k],
                "scaffold_round_bytes counts only the model, FedAvg's traffic: SCAFFOLD also sends "
                "c down and Δc_k up, each as large as the model",
            ),
            Mistake(
                [2 * params * k, 2 * params * k],
                "scaffold_round_bytes counts numbers, not bytes: a float32 is 4 bytes",
            ),
            Mistake(
                [2 * model, 2 * model],
                "scaffold_round_bytes counts one client: every client of the round receives x and "
                "c and sends Δy_k and Δc_k",
            ),
            Mistake(
                [2 * model * k, model * k],
                "scaffold_round_bytes leaves Δc_k out of the upload: each client sends its update "
                "Δy_k and the change of its variate Δc_k",
            ),
            Mistake(
                [model * k, 2 * model * k],
                "scaffold_round_bytes leaves c out of the download: each client receives x and c",
            ),
            Mistake(
                [model * k + model, 2 * model * k],
                "scaffold_round_bytes sends c once for the whole round: every client receives its "
                "own copy, as it does x",
            ),
            Mistake(
                [4 * params * k * 4, 4 * params * k * 4],
                "scaffold_round_bytes counts 8 bytes a number: the weights are float32, 4 bytes",
            ),
        ],
        "scaffold_round_bytes is not what a SCAFFOLD round sends: per client, x and c down and "
        "Δy_k and Δc_k up, each num_parameters float32 numbers",
    )


def _first_reached(history: Any, target: float) -> int | None:
    reached = np.flatnonzero(np.asarray(history.test_accuracy) >= target)
    return int(reached[0]) if reached.size else None


def check_megabytes_to(
    mb_to_target: Any, runs: Mapping[str, Any], target: float, names: Sequence[str] = ()
) -> None:
    """Check ``mb_to_target``: for each run in ``names`` (default: every key of ``runs``), the
    megabytes sent, down and up, from the start up to and including the first round whose test
    accuracy reaches ``target`` (``None`` if it never does): ``history.megabytes_sent`` at that
    round.

    It recognises: the stub; a missing run; the round number instead of megabytes; bytes instead
    of megabytes; mebibytes (2²⁰ bytes); the megabytes of that one round instead of all rounds
    so far; the upload only; the whole run's megabytes; the round before or after.

    Example:
        >>> class Run:
        ...     def __init__(self, acc, per_round):
        ...         self.test_accuracy = np.array(acc)
        ...         self.bytes_down = self.bytes_up = np.full(len(acc), per_round // 2)
        ...         self.megabytes_sent = np.cumsum(self.bytes_down + self.bytes_up) / 1e6
        >>> runs = {"FedAvg": Run([0.5, 0.8, 0.9, 0.95], 1_000_000), "SCAFFOLD": Run([0.6, 0.9, 0.95, 0.97], 2_000_000)}
        >>> check_megabytes_to({"FedAvg": 3.0, "SCAFFOLD": 4.0}, runs, 0.9)
        ✓ mb_to_target, until 90 %: FedAvg 3.0 MB, SCAFFOLD 4.0 MB
        >>> check_megabytes_to({"FedAvg": 3, "SCAFFOLD": 2}, runs, 0.9)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: mb_to_target['SCAFFOLD'] = 2 is the round...
    """
    require(
        "mb_to_target",
        mb_to_target,
        f"the megabytes each run sent until it reached {_percent(target)}",
    )
    if not isinstance(mb_to_target, Mapping):
        raise CheckFailed("mb_to_target should be a dict {run name: megabytes}")
    said = []
    for key in names or list(runs):
        if key not in mb_to_target:
            raise CheckFailed(f"mb_to_target has no entry for {key!r}")
        history, got = runs[key], mb_to_target[key]
        label = f"mb_to_target[{key!r}]"
        index = _first_reached(history, target)
        if index is None:
            if got is not None:
                raise CheckFailed(
                    f"{label} = {got!r}, but that run never reaches {_percent(target)}: give None"
                )
            said.append(f"{key} never got there")
            continue
        if got is None:
            raise CheckFailed(f"{label} is None, but that run reaches {_percent(target)}: when?")
        sent = np.asarray(history.megabytes_sent, dtype=np.float64)
        per_round = (np.asarray(history.bytes_down) + np.asarray(history.bytes_up)) / 1e6
        up_only = np.cumsum(np.asarray(history.bytes_up, dtype=np.float64)) / 1e6
        mistakes = [
            Mistake(
                index + 1,
                f"{label} = {got} is the round that first reaches {_percent(target)}, not the "
                "megabytes sent until then: read history.megabytes_sent at that round",
            ),
            Mistake(
                sent[index] * 1e6,
                f"{label} is in bytes: give megabytes (10⁶ bytes), as history.megabytes_sent is",
            ),
            Mistake(
                sent[index] * 1e6 / 2**20,
                f"{label} is in mebibytes (2²⁰ bytes): give megabytes (10⁶ bytes)",
            ),
            Mistake(
                per_round[index],
                f"{label} is what that one round sent: count every round so far "
                "(history.megabytes_sent is the running total)",
            ),
            Mistake(
                up_only[index],
                f"{label} counts the upload only: count down and up (history.megabytes_sent)",
            ),
            Mistake(
                sent[-1],
                f"{label} is what the whole run sent: stop at the first round that reaches "
                f"{_percent(target)}",
            ),
        ]
        for other, when in ((index - 1, "before"), (index + 1, "after")):
            if 0 <= other < len(sent):
                mistakes.append(
                    Mistake(
                        sent[other],
                        f"{label} is the total of the round {when} the first one at "
                        f"{_percent(target)}: count up to and including that round",
                    )
                )
        diagnose(
            got,
            sent[index],
            mistakes,
            f"{label} is not the megabytes sent until the first round at {_percent(target)}: "
            "history.megabytes_sent at that round's position",
            atol=0.01,
        )
        said.append(f"{key} {sent[index]:.1f} MB")
    passed(f"mb_to_target, until {_percent(target)}: " + ", ".join(said))


# --- stragglers (exercise 4) ---------------------------------------------------------------------


def check_drop_or_keep(
    straggler_runs: Any,
    reference: Mapping[str, Any],
    drop: Mapping[str, bool],
    *,
    fraction: float,
    local_epochs: int,
    name: str = "straggler_runs",
) -> None:
    """Check runs with stragglers: ``straggler_runs[key]`` was made as ``reference[key]`` with
    ``local_epochs`` local epochs and ``stragglers=fedlab.Stragglers(fraction, drop=drop[key])``,
    nothing else changed.

    It recognises: the stub; a missing run; a run without stragglers; another fraction of
    stragglers; stragglers dropped where their partial work should be kept, and the reverse;
    and, through :func:`check_runs`, the local epochs not changed or another setting changed too.

    Example:
        >>> from fedlab.history import History
        >>> def run(stragglers=None, epochs=1):
        ...     config = {"algorithm": {"name": "FedAvg", "local_epochs": epochs}, "seed": 0}
        ...     return History(config={**config, **({"stragglers": stragglers} if stragglers else {})})
        >>> keep = {"fraction": 0.5, "drop": False, "min_epochs": 1}
        >>> check_drop_or_keep({"keep": run(keep, 5)}, {"keep": run()}, {"keep": False}, fraction=0.5, local_epochs=5)
        ✓ straggler_runs: 1 runs, each made as section 5's runs, with local_epochs=5
        ✓ straggler_runs: 50 % stragglers in every run; 'keep' keeps their partial work
        >>> check_drop_or_keep({"keep": run(keep, 5)}, {"keep": run()}, {"keep": True}, fraction=0.5, local_epochs=5)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: straggler_runs['keep'] keeps its stragglers' partial work...
    """
    require(name, straggler_runs, f"make the runs with stragglers ({', '.join(map(repr, drop))})")
    from fedlab.history import History

    wanted = "fedlab.Stragglers({fraction}, drop={drop})"
    if isinstance(straggler_runs, Mapping):
        for key, drops in drop.items():
            run = straggler_runs.get(key)
            if not isinstance(run, History):
                continue  # check_runs names what is missing or wrong
            label = f"{name}[{key!r}]"
            setting = run.config.get("stragglers")
            if setting is None:
                raise CheckFailed(
                    f"{label} ran without stragglers: pass stragglers="
                    f"{wanted.format(fraction=fraction, drop=drops)} to fedlab.simulate"
                )
            if not math.isclose(setting["fraction"], fraction):
                raise CheckFailed(
                    f"{label} has {_percent(setting['fraction'])} stragglers; this exercise wants "
                    f"{_percent(fraction)}: {wanted.format(fraction=fraction, drop=drops)}"
                )
            if setting["drop"] != drops:
                raise CheckFailed(
                    f"{label} keeps its stragglers' partial work (drop=False): this run's server "
                    "does not wait for them and leaves them out, as FedAvg does in the FedProx "
                    "paper (drop=True)"
                    if drops
                    else f"{label} drops its stragglers (drop=True): this run aggregates their "
                    "partial work, as FedProx does (drop=False)"
                )
    check_runs(
        straggler_runs, reference, name=name, what="section 5's runs", local_epochs=local_epochs
    )
    how = "; ".join(
        f"{key!r} {'drops them' if drops else 'keeps their partial work'}"
        for key, drops in drop.items()
    )
    passed(f"{name}: {_percent(fraction)} stragglers in every run; {how}")


# --- SCAFFOLD's local update by hand (exercise 5) ------------------------------------------------


def _scaffold_example(seed: int | None) -> dict[str, Any]:
    """A small softmax regression client: model, data, weights, variates, lr and batches."""
    import keras

    rng = np.random.default_rng(0 if seed is None else seed + 1)
    features, classes = (
        (4, 3) if seed is None else (int(rng.integers(3, 7)), int(rng.integers(2, 5)))
    )
    n, batch = (12, 4) if seed is None else (int(rng.integers(10, 25)), int(rng.integers(3, 7)))
    model = keras.Sequential([keras.Input((features,)), keras.layers.Dense(classes)])
    shapes = [tuple(v.shape) for v in model.trainable_variables]

    def arrays(scale: float) -> Weights:
        return [rng.normal(0, scale, size=s).astype(np.float32) for s in shapes]

    epochs = 2
    batches = [
        order[i : i + batch]
        for order in (rng.permutation(n) for _ in range(epochs))
        for i in range(0, n, batch)
    ]
    return {
        "model": model,
        "x": rng.normal(size=(n, features)).astype(np.float32),
        "y": rng.integers(0, classes, size=n).astype(np.int32),
        "w_global": arrays(0.5),
        "c_k": arrays(0.4),
        "c": arrays(0.4),
        "stale": arrays(1.0),  # what the model holds before the call: not w_global
        "lr": 0.1 if seed is None else float(rng.uniform(0.05, 0.3)),
        "batches": batches,
    }


def _scaffold_steps(example: dict[str, Any], start: Weights, step: Callable) -> Weights:
    """Local SGD from ``start`` over the example's batches, each step ``v ← v − step(g, c_k, c)``."""
    import keras
    import tensorflow as tf

    model, x, y = example["model"], example["x"], example["y"]
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    for v, w in zip(model.trainable_variables, start, strict=True):
        v.assign(w)
    for batch in example["batches"]:
        with tf.GradientTape() as tape:
            loss = loss_fn(y[batch], model(x[batch], training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        for v, g, ck, c in zip(
            model.trainable_variables, grads, example["c_k"], example["c"], strict=True
        ):
            v.assign_sub(step(g, ck, c))
    return [v.numpy() for v in model.trainable_variables]


def check_scaffold_local_update(scaffold_local_update: Callable, seed: int | None = None) -> None:
    """Check ``scaffold_local_update(model, x, y, w_global, c_k, c, lr, batches)``: local SGD on
    the client's data from ``w_global``, one step per batch of ``batches``, each along the
    corrected direction ``g − c_k + c``; the new weights, one array per layer. Tried on a small
    softmax regression (a Keras ``Dense`` layer of logits) with random variates.

    It recognises: the correction with the wrong sign (``g + c_k − c``); no correction (plain SGD,
    FedAvg's step); half a correction (``g − c_k`` or ``g + c``); the correction not scaled by
    ``lr``; training from the weights the model held instead of ``w_global``; the update
    ``y_k − x`` returned instead of the new weights.

    Example:
        >>> import tensorflow as tf
        >>> def right(model, x, y, w_global, c_k, c, lr, batches):
        ...     loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        ...     for v, w in zip(model.trainable_variables, w_global):
        ...         v.assign(w)
        ...     for batch in batches:
        ...         with tf.GradientTape() as tape:
        ...             loss = loss_fn(y[batch], model(x[batch], training=True))
        ...         grads = tape.gradient(loss, model.trainable_variables)
        ...         for v, g, ck, ci in zip(model.trainable_variables, grads, c_k, c):
        ...             v.assign_sub(lr * (g - ck + ci))
        ...     return [v.numpy() for v in model.trainable_variables]
        >>> import keras
        >>> check_scaffold_local_update(right)
        ✓ scaffold_local_update steps along g − c_k + c from w_global, every step
    """
    example = _scaffold_example(seed)
    model, lr, w_global = example["model"], example["lr"], example["w_global"]
    for v, w in zip(model.trainable_variables, example["stale"], strict=True):
        v.assign(w)
    got = call(
        scaffold_local_update,
        "scaffold_local_update",
        model,
        example["x"],
        example["y"],
        [w.copy() for w in w_global],
        [a.copy() for a in example["c_k"]],
        [a.copy() for a in example["c"]],
        lr,
        example["batches"],
    )
    if not _is_list_of_arrays(got) or len(got) != len(w_global):
        raise CheckFailed(
            "scaffold_local_update should return the new weights as a list, one array per "
            "trainable variable ([v.numpy() for v in model.trainable_variables])"
        )

    def steps(step: Callable, start: Weights = w_global) -> Weights:
        return _scaffold_steps(example, start, step)

    expected = steps(lambda g, ck, c: lr * (g - ck + c))
    if same(got, expected, atol=1e-5):
        passed("scaffold_local_update steps along g − c_k + c from w_global, every step")
        return
    diagnose(
        got,
        expected,
        [
            Mistake(
                steps(lambda g, ck, c: lr * (g + ck - c)),
                "your SCAFFOLD correction has the wrong sign: the step is along g − c_k + c "
                "(subtract the client's own gradient estimate c_k, add the server's c), not "
                "g + c_k − c",
            ),
            Mistake(
                steps(lambda g, ck, c: lr * g),
                "scaffold_local_update takes plain SGD steps, FedAvg's: correct every step's "
                "gradient, g − c_k + c",
            ),
            Mistake(
                steps(lambda g, ck, c: lr * (g - ck)),
                "your correction subtracts c_k but does not add c: the step is along g − c_k + c",
            ),
            Mistake(
                steps(lambda g, ck, c: lr * (g + c)),
                "your correction adds c but does not subtract c_k: the step is along g − c_k + c",
            ),
            Mistake(
                steps(lambda g, ck, c: lr * g - ck + c),
                "your correction is not scaled by lr: the whole direction is, "
                "v ← v − lr·(g − c_k + c)",
            ),
            Mistake(
                steps(lambda g, ck, c: lr * (g - ck + c), start=example["stale"]),
                "scaffold_local_update trains from the weights the model happened to hold: assign "
                "w_global to the model's variables first (v.assign(w))",
            ),
            Mistake(
                [e - w for e, w in zip(expected, w_global, strict=True)],
                "scaffold_local_update returns the update y_k − x: return the new weights y_k",
            ),
        ],
        "scaffold_local_update's weights are not local SGD from w_global along g − c_k + c, one "
        "step per batch in order, with the loss of fedprox_local_update",
        atol=1e-5,
    )


def check_scaffold_replay(mine: Any, replay_weights: Weights, start: Weights) -> None:
    """Check ``mine``, the weights ``scaffold_local_update`` gave for section 3's client in round
    2, against ``replay_weights``, what ``fedlab.steps.local_update`` gave (to 1e-5).

    It recognises: the stub; a result not shaped like the model's weights; the starting weights
    returned (nothing trained); any other difference, with what to compare.

    Example:
        >>> start = [np.zeros(2)]
        >>> check_scaffold_replay([np.ones(2)], [np.ones(2)], start)
        ✓ my_replay == replay.weights: your SCAFFOLD step is fedlab's, to 1e-5
        >>> check_scaffold_replay(start, [np.ones(2)], start)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: my_replay equals x, the weights it started from...
    """
    require("my_replay", mine, "run scaffold_local_update on section 3's client k, round 2")
    shapes = [np.shape(w) for w in mine] if _is_list_of_arrays(mine) else None
    if shapes != [np.shape(w) for w in replay_weights]:
        raise CheckFailed("my_replay should be a list of weight arrays shaped like replay.weights")
    if same(mine, start, atol=1e-9, rtol=0):
        raise CheckFailed("my_replay equals x, the weights it started from: nothing was trained")
    if same(mine, replay_weights, atol=1e-5, rtol=1e-4):
        passed("my_replay == replay.weights: your SCAFFOLD step is fedlab's, to 1e-5")
        return
    raise CheckFailed(
        "my_replay differs from replay.weights: give scaffold_local_update section 3's inputs — "
        "client k's x_k and y_k, the round-2 broadcast x (not w_global), c_k and c from before "
        "round 2 (c_k, c), CLIENT_LR — and round 2's batches, "
        "fedlab.steps.batch_order(len(x_k), BATCH_SIZE, LOCAL_EPOCHS, 2, k, seed=SEED)"
    )
