"""Checks for notebook 04's exercises (client drift): the table of section 3 with a shards split,
FedAvg's bias against ητ on the playground (and its approximation with a matrix exponential),
FedProx's bias against μ and the μ where its local steps stop contracting, and the gradient
dissimilarity during training."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from fedlab.exercises.core import (
    CheckFailed,
    Mistake,
    call,
    diagnose,
    passed,
    require,
    same,
)

__all__ = [
    "check_bias_by_eta_tau",
    "check_computed_dissimilarity",
    "check_drift_table",
    "check_exp_fixed_point",
    "check_g_follows_h",
    "check_g_shrinks",
    "check_mu_limit",
    "check_prox_sweep",
]

COLUMNS = ("H", "accuracy", "drift", "agreement", "G")


# --- the table of section 3, with shards (exercise 1) --------------------------------------------


def _agreement(history: Any) -> np.ndarray:
    return np.array([np.mean(record.update_cosine) for record in history.rounds])


def _computed_g(history: Any) -> tuple[np.ndarray, np.ndarray]:
    """The rounds where the gradient dissimilarity was computed, and its values there."""
    g = np.asarray(history.gradient_dissimilarity, dtype=np.float64)
    mask = ~np.isnan(g)
    return np.asarray(history.round)[mask], g[mask]


def _row_mistakes(split: Any, history: Any) -> dict[str, tuple[float, list[Mistake]]]:
    """Per column of the table: its right value and the wrong ones expected, with their hints."""
    accuracy, drift = history.test_accuracy, history.drift_mean
    cosine, (_, g) = _agreement(history), _computed_g(history)
    return {
        "H": (split.heterogeneity(), []),
        "accuracy": (
            float(accuracy[-5:].mean()),
            [
                Mistake(accuracy[-1], "is the last round's: the table averages the last five"),
                Mistake(accuracy.mean(), "averages every round: the table takes the last five"),
                Mistake(accuracy.max(), "is the best round's: average the last five"),
                Mistake(
                    accuracy[-10:].mean(), "averages the last ten rounds: the table takes five"
                ),
            ],
        ),
        "drift": (
            float(drift.mean()),
            [
                Mistake(history.drift_max.mean(), "is the mean of drift_max: use drift_mean"),
                Mistake(drift[-1], "is the last round's: average drift_mean over every round"),
            ],
        ),
        "agreement": (
            float(cosine.mean()),
            [Mistake(cosine[-1], "is the last round's: average agreement(history) over rounds")],
        ),
        "G": (
            float(g.mean()),
            [
                Mistake(g[-1], "is the last computed value: average every computed one"),
                Mistake(g.sum(), "is the sum of the computed values: take their mean"),
                Mistake(g.max(), "is the largest computed value: take their mean"),
            ],
        ),
    }


def check_drift_table(table: Any, splits: Mapping[Any, Any], runs: Mapping[Any, Any]) -> None:
    """Check ``table``: ``{name: (H, accuracy, drift, agreement, G)}`` for every run of ``runs``,
    computed as section 3's table is (H of ``splits[name]``, accuracy of the last five rounds,
    mean drift, mean agreement, the mean of the computed gradient dissimilarities).

    It recognises: the stub; a missing row; a row of another length; the numbers in another order;
    G as a plain mean, nan (np.mean over the uncomputed rounds), the last, largest or summed
    value; the last round's accuracy, the best one or the mean of every or the last ten rounds;
    the mean of ``drift_max``; the last round's drift or agreement; an H that is not the split's.

    Example:
        >>> from fedlab.history import History
        >>> from fedlab.partition import ClientSplit
        >>> run = History(rounds=[_record(r, g=2.0 if r % 2 else np.nan) for r in range(1, 7)])
        >>> split = ClientSplit.from_indices([[0, 1], [2, 3]], np.array([0, 0, 1, 1]))
        >>> check_drift_table({"a": (0.5, 0.5, 0.1, 1.0, 2.0)}, {"a": split}, {"a": run})
        ✓ table: 1 rows of (H, accuracy, drift, agreement, G), each as section 3 computes them
        >>> check_drift_table({"a": (0.5, 0.5, 0.1, 1.0, np.nan)}, {"a": split}, {"a": run})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: table['a']'s G is nan: ...np.nanmean...
    """
    require("table", table, "{name: (H, accuracy, drift, agreement, G)}, one row per split")
    if not isinstance(table, Mapping):
        raise CheckFailed("table should be a dict {split name: (H, accuracy, drift, agreement, G)}")
    missing = [name for name in runs if name not in table]
    if missing:
        raise CheckFailed(f"table has no row for {', '.join(map(repr, missing))}")
    for name, history in runs.items():
        label = f"table[{name!r}]"
        if np.isnan(history.gradient_dissimilarity).all():
            raise CheckFailed(
                f"the run for {name!r} computed no G: run it with dissimilarity_every=5, as "
                "section 3 did"
            )
        try:
            row = np.asarray(table[name], dtype=np.float64).ravel()
        except (TypeError, ValueError):
            raise CheckFailed(f"{label} should be 5 numbers: {', '.join(COLUMNS)}") from None
        if row.size != len(COLUMNS):
            raise CheckFailed(
                f"{label} has {row.size} numbers; write 5: {', '.join(COLUMNS)}, in that order"
            )
        columns = _row_mistakes(splits[name], history)
        truth = np.array([columns[c][0] for c in COLUMNS])
        if not np.isnan(row).any() and not same(row, truth) and same(np.sort(row), np.sort(truth)):
            raise CheckFailed(
                f"{label} holds the right numbers in the wrong order: (H, accuracy, drift, "
                "agreement, G), as the table's columns"
            )
        for column, value in zip(COLUMNS, row, strict=True):
            right, mistakes = columns[column]
            if column == "G" and np.isnan(value):
                raise CheckFailed(
                    f"{label}'s G is nan: G is nan in the rounds where it was not computed, so "
                    "average with np.nanmean (or over the computed values only)"
                )
            diagnose(
                value,
                right,
                [Mistake(m.answer, f"{label}'s {column} {m.hint}") for m in mistakes],
                f"{label}'s {column} is not the table's: compute it as section 3 does "
                "(split.heterogeneity(), summary(history), np.nanmean of G)",
                atol=1e-6,
            )
    passed(
        f"table: {len(runs)} rows of (H, accuracy, drift, agreement, G), each as section 3 "
        "computes them"
    )


def check_g_follows_h(g_follows_h: Any, table: Any) -> None:
    """Check ``g_follows_h``: True if the rows of ``table`` (``{name: (H, ..., G)}``, as
    :func:`check_drift_table` wants it), sorted by H, have G increasing too; False if not.

    It recognises: the stub; an answer that is not True or False; the wrong answer either way.

    Example:
        >>> table = {"a": (0.1, 0.9, 0.3, 0.7, 0.1), "b": (0.7, 0.8, 0.6, 0.3, 9.0)}
        >>> check_g_follows_h(True, table)
        ✓ g_follows_h = True: sorted by H, the 2 splits have G in the same order
        >>> check_g_follows_h(False, table)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: g_follows_h = False: sort the rows by H and read G...
    """
    require("g_follows_h", g_follows_h, "True if G is ordered like H over the table's rows")
    if not isinstance(g_follows_h, bool | np.bool_):
        raise CheckFailed(f"g_follows_h = {g_follows_h!r}: answer True or False")
    require("table", table, "answer (b) first: the table of the four splits")
    rows = np.array([np.asarray(row, dtype=np.float64)[[0, -1]] for row in table.values()])
    g = rows[np.argsort(rows[:, 0]), 1]
    follows = bool(np.all(np.diff(g) > 0))
    if bool(g_follows_h) != follows:
        raise CheckFailed(
            f"g_follows_h = {g_follows_h}: sort the rows by H and read G down the list; "
            "G is ordered like H only if it grows at every step"
        )
    order = "the same order" if follows else "another order"
    passed(f"g_follows_h = {g_follows_h}: sorted by H, the {len(rows)} splits have G in {order}")


# --- FedAvg's bias and ητ (exercise 3) ------------------------------------------------------------


def check_bias_by_eta_tau(biases: Any, problem: Any, pairs: Sequence[tuple[int, float]]) -> None:
    """Check ``biases``: ``{(τ, η): ‖fedavg_fixed_point(problem, τ, η) − w*‖}`` for every pair.

    It recognises: the stub; a missing pair, or the keys written (η, τ); fixed points instead of
    distances; the distance from the origin or from the plain mean of the clients' optima; the
    squared distance; the first pair's bias for every pair.

    Example:
        >>> from fedlab.playground import fedavg_fixed_point, make_problem
        >>> problem = make_problem()
        >>> w_star = problem.global_optimum()
        >>> pairs = [(10, 0.1), (20, 0.05)]
        >>> right = {p: np.linalg.norm(fedavg_fixed_point(problem, *p) - w_star) for p in pairs}
        >>> check_bias_by_eta_tau(right, problem, pairs)
        ✓ biases: FedAvg's bias ‖w_FedAvg − w*‖ for 2 pairs (τ, η)
        >>> points = {p: fedavg_fixed_point(problem, *p) for p in pairs}
        >>> check_bias_by_eta_tau(points, problem, pairs)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: biases[(10, 0.1)] is a point, not a distance...
    """
    from fedlab.playground import fedavg_fixed_point

    require("biases", biases, "{(τ, η): distance of fedavg_fixed_point(problem, τ, η) from w*}")
    if not isinstance(biases, Mapping):
        raise CheckFailed("biases should be a dict {(τ, η): distance from w*}")
    missing = [pair for pair in pairs if pair not in biases]
    if missing:
        if all((lr, tau) in biases for tau, lr in missing):
            raise CheckFailed("biases has its keys as (η, τ): write them (τ, η), e.g. (10, 0.1)")
        raise CheckFailed(f"biases has no entry for (τ, η) = {', '.join(map(str, missing))}")
    for pair in pairs:
        if np.size(biases[pair]) != 1:
            raise CheckFailed(
                f"biases[{pair}] is a point, not a distance: the bias is how far the fixed point "
                "lies from w*, np.linalg.norm(point - w_star)"
            )
    got = np.array([float(np.asarray(biases[pair]).ravel()[0]) for pair in pairs])
    w_star = problem.global_optimum()
    points = [fedavg_fixed_point(problem, tau, lr) for tau, lr in pairs]
    expected = np.array([np.linalg.norm(p - w_star) for p in points])
    mean = problem.optima.mean(axis=0)
    diagnose(
        got,
        expected,
        [
            Mistake(
                np.array([np.linalg.norm(p) for p in points]),
                "biases are the fixed points' distances from the origin (their norms): "
                "subtract w_star first, np.linalg.norm(point - w_star)",
            ),
            Mistake(
                np.array([np.linalg.norm(p - mean) for p in points]),
                "biases are distances from the plain mean of the clients' optima: the bias is "
                "measured from w* = problem.global_optimum()",
            ),
            Mistake(
                expected**2,
                "biases are squared distances: take np.linalg.norm(point - w_star), not its square",
            ),
            Mistake(
                np.full(len(pairs), expected[0]),
                f"every entry is the bias of (τ, η) = {pairs[0]}: pass each pair's own τ and η "
                "to fedavg_fixed_point",
            ),
        ],
        "biases are not the distances ‖fedavg_fixed_point(problem, τ, η) − w*‖ of each (τ, η)",
        atol=1e-6,
    )
    passed(f"biases: FedAvg's bias ‖w_FedAvg − w*‖ for {len(pairs)} pairs (τ, η)")


def _solve(problem: Any, m: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """(Σ p_k M_k)⁻¹ Σ p_k M_k o_k."""
    p = problem.weights if weights is None else weights
    a = np.einsum("k,kij->ij", p, m)
    b = np.einsum("k,kij,kj->i", p, m, problem.optima)
    return np.linalg.solve(a, b)


def _matrix_exp(curvatures: np.ndarray, scale: float) -> np.ndarray:
    """e^{scale · A_k} for each symmetric A_k, through its eigenvalues."""
    lam, vec = np.linalg.eigh(curvatures)
    return vec @ (np.exp(scale * lam)[..., None] * np.swapaxes(vec, -1, -2))


def check_exp_fixed_point(approx_fixed_point: Callable, seed: int | None = None) -> None:
    """Check ``approx_fixed_point(problem, tau, lr)``: FedAvg's fixed point with every
    M_k = I − (I − ηA_k)^τ replaced by its approximation I − e^{−ητA_k}, a matrix exponential.

    It recognises: the exact fixed point ((I − ηA_k)^τ, not the approximation); ``np.exp`` of the
    matrix, element by element; η or τ left out of the exponent; the exponent's sign; e^{−ητA_k}
    without the I −; the clients weighted equally instead of by p_k; w* or the plain mean of the
    optima (the limits τ = 1 and τ → ∞) returned; a result that is not one point.

    Example:
        >>> def approx(problem, tau, lr):
        ...     lam, vec = np.linalg.eigh(problem.curvatures)
        ...     m = np.eye(2) - vec @ (np.exp(-lr * tau * lam)[..., None] * vec.transpose(0, 2, 1))
        ...     a = np.einsum("k,kij->ij", problem.weights, m)
        ...     return np.linalg.solve(a, np.einsum("k,kij,kj->i", problem.weights, m, problem.optima))
        >>> check_exp_fixed_point(approx)
        ✓ approx_fixed_point uses M_k = I − e^{−ητA_k}, a matrix exponential
        >>> from fedlab.playground import fedavg_fixed_point
        >>> check_exp_fixed_point(fedavg_fixed_point)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: approx_fixed_point is the exact fixed point...
    """
    from fedlab.playground import fedavg_fixed_point, make_problem

    if seed is None:
        problem, tau, lr = make_problem(seed=5, weights=[0.5, 0.3, 0.2]), 4, 0.15
    else:
        rng = np.random.default_rng(seed)
        k = int(rng.integers(3, 6))
        weights = rng.uniform(0.2, 1.0, k)
        problem = make_problem(k, float(rng.uniform(0.6, 1.5)), seed=seed, weights=weights)
        tau = int(rng.integers(3, 12))
        lr = float(rng.uniform(0.6, 1.5)) / (tau * problem.eigenvalues()[:, 0].mean())
        lr = min(lr, 0.5 / problem.eigenvalues().max())  # far from η λ = 1: exact ≠ approximation
    got = call(approx_fixed_point, "approx_fixed_point", problem, tau, lr)
    if np.shape(got) != (2,):
        raise CheckFailed(
            f"approx_fixed_point returns something of shape {np.shape(got)}: return one point, "
            "the 2 numbers (Σ p_k M_k)⁻¹ Σ p_k M_k o_k"
        )
    a, eye = problem.curvatures, np.eye(2)
    equal = np.full(problem.num_clients, 1.0 / problem.num_clients)
    mistakes = [
        Mistake(
            fedavg_fixed_point(problem, tau, lr),
            "approx_fixed_point is the exact fixed point, with (I − ηA_k)^τ: the exercise wants "
            "its approximation, M_k = I − e^{−ητA_k}",
        ),
        Mistake(
            _solve(problem, eye - np.exp(-lr * tau * a)),
            "np.exp works element by element; e^{−ητA_k} is a matrix exponential: exponentiate "
            "A_k's eigenvalues (np.linalg.eigh) and rebuild the matrix, or scipy.linalg.expm",
        ),
        Mistake(_solve(problem, eye - _matrix_exp(a, -tau)), "η is missing: e^{−η τ A_k}"),
        Mistake(_solve(problem, eye - _matrix_exp(a, -lr)), "τ is missing: e^{−η τ A_k}"),
        Mistake(
            _solve(problem, eye - _matrix_exp(a, lr * tau)),
            "the exponent has the wrong sign: e^{−ητA_k}, which shrinks as ητ grows",
        ),
        Mistake(
            _solve(problem, _matrix_exp(a, -lr * tau)),
            "M_k = I − e^{−ητA_k}: you used e^{−ητA_k} itself",
        ),
        Mistake(
            _solve(problem, eye - _matrix_exp(a, -lr * tau), equal),
            "the clients are weighted equally: weight client k by p_k = problem.weights[k]",
        ),
        Mistake(
            problem.global_optimum(),
            "approx_fixed_point returns w*, the fixed point of τ = 1 only: build the M_k",
        ),
        Mistake(
            problem.weights @ problem.optima,
            "approx_fixed_point returns the mean of the optima, the limit τ → ∞: build the M_k",
        ),
    ]
    diagnose(
        got,
        _solve(problem, eye - _matrix_exp(a, -lr * tau)),
        mistakes,
        "approx_fixed_point is not (Σ p_k M_k)⁻¹ Σ p_k M_k o_k with M_k = I − e^{−ητA_k}",
        atol=1e-7,
    )
    passed("approx_fixed_point uses M_k = I − e^{−ητA_k}, a matrix exponential")


# --- FedProx's μ (exercise 4) -------------------------------------------------------------------


def check_prox_sweep(
    mus: Any, prox_bias: Any, best_mu: Any, *, problem: Any, local_steps: int, lr: float
) -> None:
    """Check a sweep of FedProx's μ: ``prox_bias[i]`` is the distance of
    ``fedprox_fixed_point(problem, local_steps, lr, mus[i])`` from w*, the ``mus`` run from 0 to
    13, and ``best_mu`` is the μ of the smallest bias.

    It recognises: stubs; fixed points instead of distances; as many biases as μs; a sweep that
    does not cover 0 to 13; FedAvg's bias for every μ; distances from the origin or from the
    plain mean of the optima; squared distances; ``best_mu`` the position of the smallest bias
    instead of its μ, the μ of the largest bias, or another μ.

    Example:
        >>> from fedlab.playground import fedprox_fixed_point, make_problem
        >>> problem = make_problem()
        >>> mus = np.arange(0, 13.01, 0.5)
        >>> w_star = problem.global_optimum()
        >>> bias = [np.linalg.norm(fedprox_fixed_point(problem, 10, 0.1, mu) - w_star) for mu in mus]
        >>> check_prox_sweep(mus, bias, 10.5, problem=problem, local_steps=10, lr=0.1)
        ✓ prox_bias: FedProx's bias for 27 values of μ from 0 to 13; the smallest at μ = 10.5
        >>> check_prox_sweep(mus, bias, 21, problem=problem, local_steps=10, lr=0.1)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: best_mu = 21 is the position of the smallest bias in mus...
    """
    from fedlab.playground import fedavg_fixed_point, fedprox_fixed_point

    require("mus", mus, "the values of μ, from 0 to 13")
    require("prox_bias", prox_bias, "FedProx's distance from w* for each μ in mus")
    require("best_mu", best_mu, "the μ in mus with the smallest prox_bias")
    mus = np.asarray(mus, dtype=np.float64).ravel()
    bias = np.asarray(prox_bias, dtype=np.float64)
    if bias.ndim == 2 and bias.shape[1] == 2:
        raise CheckFailed(
            "prox_bias holds points, not distances: np.linalg.norm(point - w_star) for each μ"
        )
    bias = bias.ravel()
    if len(bias) != len(mus):
        raise CheckFailed(f"prox_bias has {len(bias)} values for {len(mus)} μs: one per μ")
    if mus.min() > 0.01 or mus.max() < 12.5:
        raise CheckFailed(
            f"mus runs from {mus.min():g} to {mus.max():g}: sweep μ from 0 (FedAvg) to 13, "
            "e.g. np.arange(0, 13.01, 0.5)"
        )
    w_star = problem.global_optimum()
    points = [fedprox_fixed_point(problem, local_steps, lr, mu) for mu in mus]
    expected = np.array([np.linalg.norm(p - w_star) for p in points])
    fedavg = np.linalg.norm(fedavg_fixed_point(problem, local_steps, lr) - w_star)
    mean = problem.optima.mean(axis=0)
    diagnose(
        bias,
        expected,
        [
            Mistake(
                np.full(len(mus), fedavg),
                "prox_bias is FedAvg's bias for every μ: pass each μ to "
                "fedprox_fixed_point(problem, 10, PLAY_LR, mu)",
            ),
            Mistake(
                np.array([np.linalg.norm(p) for p in points]),
                "prox_bias holds the points' distances from the origin: subtract w_star first",
            ),
            Mistake(
                np.array([np.linalg.norm(p - mean) for p in points]),
                "prox_bias holds distances from the plain mean of the optima: measure from w*",
            ),
            Mistake(
                expected**2,
                "prox_bias holds squared distances: np.linalg.norm(point - w_star)",
            ),
        ],
        "prox_bias is not ‖fedprox_fixed_point(problem, 10, PLAY_LR, μ) − w*‖ for each μ in mus "
        "(τ = 10, η = PLAY_LR)",
        atol=1e-6,
    )
    best = int(np.argmin(expected))
    if not np.isscalar(best_mu) and np.size(best_mu) != 1:
        raise CheckFailed("best_mu should be one number, the μ of the smallest bias")
    best_mu = float(np.asarray(best_mu).ravel()[0])
    if not np.isclose(best_mu, mus[best], atol=1e-9):
        if best_mu == best and best != mus[best]:
            hint = "is the position of the smallest bias in mus: the μ there is mus[np.argmin(...)]"
        elif np.isclose(best_mu, mus[int(np.argmax(expected))]):
            hint = "gives the largest bias: take the μ of the smallest, np.argmin"
        else:
            hint = "is not the μ where prox_bias is smallest: mus[np.argmin(prox_bias)]"
        raise CheckFailed(f"best_mu = {best_mu:g} {hint}")
    passed(
        f"prox_bias: FedProx's bias for {len(mus)} values of μ from {mus.min():g} to "
        f"{mus.max():g}; the smallest at μ = {best_mu:g}"
    )


def check_mu_limit(mu_limit: Any, problem: Any, lr: float) -> None:
    """Check ``mu_limit``: the μ from which FedProx's local steps of size ``lr`` no longer
    contract, where ``max_stable_lr(problem, μ)`` falls to ``lr``: η (λ_max + μ) = 2 for the
    steepest client, μ = 2/η − max_k λ_max(A_k). Within 0.02 (a bisection is fine).

    It recognises: the stub; 1/η instead of 2/η; λ_max left out; the flattest curvature, the
    clients' mean λ_max or the global loss's curvature instead of the steepest client's; a
    learning rate instead of a μ.

    Example:
        >>> from fedlab.playground import make_problem
        >>> problem = make_problem(heterogeneity=0.0)  # every A_k = diag(3, 0.75)
        >>> check_mu_limit(2 / 0.1 - 3.0, problem, 0.1)
        ✓ mu_limit: with η = 0.1, FedProx's local steps stop contracting from μ ≈ 17.00
        >>> check_mu_limit(1 / 0.1 - 3.0, problem, 0.1)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: mu_limit uses η (λ + μ) < 1...
    """
    from fedlab.playground import max_stable_lr

    require("mu_limit", mu_limit, "the μ where max_stable_lr(problem, μ) falls to PLAY_LR")
    if np.size(mu_limit) != 1:
        raise CheckFailed("mu_limit should be one number, a value of μ")
    got = float(np.asarray(mu_limit).ravel()[0])
    eig = problem.eigenvalues()
    steepest = eig[:, 1].max()
    global_curvature = np.linalg.eigvalsh(
        np.einsum("k,kij->ij", problem.weights, problem.curvatures)
    )
    diagnose(
        got,
        2 / lr - steepest,
        [
            Mistake(
                1 / lr - steepest,
                "mu_limit uses η (λ + μ) < 1: a gradient step on a bowl of curvature λ + μ "
                "contracts while |1 − η (λ + μ)| < 1, that is η (λ + μ) < 2",
            ),
            Mistake(2 / lr, "mu_limit leaves out the curvature: η (λ_max + μ) = 2"),
            Mistake(
                2 / lr - eig[:, 0].min(),
                "mu_limit uses the flattest curvature: the steepest direction of the steepest "
                "client (the largest λ_max) diverges first",
            ),
            Mistake(
                2 / lr - eig[:, 1].mean(),
                "mu_limit uses the clients' mean λ_max: the steepest client diverges first "
                "(the largest λ_max)",
            ),
            Mistake(
                2 / lr - global_curvature[-1],
                "mu_limit uses the curvature of the global loss f: the local steps run on each "
                "client's own loss, so the steepest client's λ_max counts",
            ),
            Mistake(
                max_stable_lr(problem, 2 / lr - steepest - 0.5),
                "mu_limit is a learning rate: the exercise wants the μ at which "
                "max_stable_lr(problem, μ) reaches PLAY_LR",
            ),
        ],
        "mu_limit is not the μ where max_stable_lr(problem, μ) = PLAY_LR: solve "
        "2 / (λ_max + μ) = η for μ (the steepest client's λ_max), or bisect",
        atol=0.02,
    )
    passed(f"mu_limit: with η = {lr:g}, FedProx's local steps stop contracting from μ ≈ {got:.2f}")


# --- the gradient dissimilarity during training (exercise 5) -------------------------------------


def _record(round_number: int, g: float = float("nan"), accuracy: float = 0.5) -> Any:
    """A RoundRecord with gradient dissimilarity ``g`` and placeholder numbers elsewhere."""
    from fedlab.history import RoundRecord

    return RoundRecord(
        round=round_number,
        clients=(0, 1),
        client_loss=(0.5, 0.5),
        client_num_examples=(10, 10),
        train_loss=0.5,
        test_loss=0.5,
        test_accuracy=accuracy,
        client_drift=(0.1, 0.1),
        drift_mean=0.1,
        drift_max=0.1,
        update_cosine=(1.0, 1.0),
        bytes_down=0,
        bytes_up=0,
        wall_time=0.0,
        gradient_dissimilarity=g,
    )


def check_computed_dissimilarity(computed: Callable, seed: int | None = None) -> None:
    """Check ``computed(history)``: ``(rounds, values)``, the round numbers where
    ``history.gradient_dissimilarity`` was computed (not ``nan``) and its values there.

    It recognises: the stub; one array instead of two; the nan rounds kept; positions in the
    series (from 0) instead of round numbers; the two arrays swapped; the nan rounds kept instead
    of the computed ones.

    Example:
        >>> def computed(history):
        ...     g = history.gradient_dissimilarity
        ...     return history.round[~np.isnan(g)], g[~np.isnan(g)]
        >>> check_computed_dissimilarity(computed)
        ✓ computed returns the 3 rounds where G was computed, and G there
        >>> check_computed_dissimilarity(lambda h: (h.round, h.gradient_dissimilarity))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: computed keeps the rounds where G is nan...
    """
    from fedlab.history import History

    if seed is None:
        num_rounds, every, values = 12, 4, np.array([3.0, 2.0, 1.5])
    else:
        rng = np.random.default_rng(seed)
        every = int(rng.integers(2, 6))
        num_rounds = every * int(rng.integers(3, 7)) + int(rng.integers(0, every))
        values = rng.uniform(0.1, 10.0, num_rounds // every)
    rounds = np.arange(every, num_rounds + 1, every)
    g = {int(r): float(v) for r, v in zip(rounds, values, strict=True)}
    history = History(rounds=[_record(r, g.get(r, float("nan"))) for r in range(1, num_rounds + 1)])
    got = call(computed, "computed", history)
    try:
        first, second = got
        first = np.asarray(first, dtype=np.float64).ravel()
        second = np.asarray(second, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        raise CheckFailed("computed should return two arrays: (rounds, values)") from None
    if np.isnan(second).all() and len(second) == num_rounds - len(rounds):
        raise CheckFailed(
            "computed keeps exactly the rounds where G is nan: keep the others, ~np.isnan(g)"
        )
    if len(second) == num_rounds or np.isnan(second).any():
        raise CheckFailed(
            "computed keeps the rounds where G is nan (not computed): keep only those where it "
            "was, with the mask ~np.isnan(history.gradient_dissimilarity)"
        )
    if same(first, values) and same(second, rounds):
        raise CheckFailed("computed returns (values, rounds): return them as (rounds, values)")
    if same(second, values) and same(first, rounds - 1):
        raise CheckFailed(
            "computed's rounds are positions in the series (from 0), not round numbers: "
            "take history.round[mask]"
        )
    if not (same(first, rounds) and same(second, values)):
        raise CheckFailed(
            "computed is not (history.round[mask], g[mask]) with mask = ~np.isnan(g), "
            "g = history.gradient_dissimilarity"
        )
    passed(f"computed returns the {len(rounds)} rounds where G was computed, and G there")


def check_g_shrinks(g_shrinks: Any, runs: Mapping[Any, Any]) -> None:
    """Check ``g_shrinks``: ``{key: bool}`` for every run of ``runs``, True where the gradient
    dissimilarity in the last round it was computed is below the first.

    It recognises: the stub; a missing key; an answer that is not True or False; a wrong answer
    for a run (each one named).

    Example:
        >>> from fedlab.history import History
        >>> falls = History(rounds=[_record(r, g) for r, g in ((1, 4.0), (2, np.nan), (3, 1.0))])
        >>> check_g_shrinks({0.1: True}, {0.1: falls})
        ✓ g_shrinks: for each of the 1 runs, whether G fell from its first to its last computation
        >>> check_g_shrinks({0.1: False}, {0.1: falls})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: g_shrinks[0.1] = False: compare G in the first and...
    """
    require("g_shrinks", g_shrinks, "{α: True if G in its last computed round is below the first}")
    if not isinstance(g_shrinks, Mapping):
        raise CheckFailed("g_shrinks should be a dict {α: True or False}")
    missing = [key for key in runs if key not in g_shrinks]
    if missing:
        raise CheckFailed(f"g_shrinks has no entry for {', '.join(map(repr, missing))}")
    for key, history in runs.items():
        answer = g_shrinks[key]
        if not isinstance(answer, bool | np.bool_):
            raise CheckFailed(f"g_shrinks[{key!r}] = {answer!r}: answer True or False")
        _, g = _computed_g(history)
        if bool(answer) != bool(g[-1] < g[0]):
            raise CheckFailed(
                f"g_shrinks[{key!r}] = {answer}: compare G in the first and in the last round "
                "where it was computed for that run again (computed(history))"
            )
    passed(
        f"g_shrinks: for each of the {len(runs)} runs, whether G fell from its first to its last "
        "computation"
    )
