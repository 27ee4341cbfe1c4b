"""The checks of notebook 04's exercises (fedlab/exercises/drift.py): each passes the right answer
and names every anticipated wrong one with its own message, and fails on the stub. No training:
the runs are Histories made by hand, the playground is pure NumPy."""

import numpy as np
import pytest

from fedlab import exercises, playground
from fedlab.exercises import CheckFailed
from fedlab.history import History, RoundRecord
from fedlab.partition import ClientSplit


def fails(check, *args, match: str, **kwargs):
    with pytest.raises(CheckFailed, match=match):
        check(*args, **kwargs)


# --- exercise 1: the table with shards, and whether G follows H ---------------------------------


def record(r, accuracy, drift, cosines, g=np.nan):
    return RoundRecord(
        round=r,
        clients=(0, 1),
        client_loss=(0.5, 0.5),
        client_num_examples=(10, 10),
        train_loss=0.5,
        test_loss=0.5,
        test_accuracy=accuracy,
        client_drift=(drift, drift),
        drift_mean=drift,
        drift_max=2 * drift + 0.1,
        update_cosine=tuple(cosines),
        bytes_down=0,
        bytes_up=0,
        wall_time=0.0,
        gradient_dissimilarity=g,
    )


ACCURACY = np.array([0.3, 0.5, 0.6, 0.7, 0.72, 0.8, 0.78, 0.85, 0.95, 0.82, 0.84, 0.86])


def fake_run(with_g=True):
    """12 rounds, every number different from round to round, G computed in rounds 4, 8, 12."""
    gs = {4: 3.0, 8: 1.0, 12: 1.5} if with_g else {}
    return History(
        rounds=[
            record(r, ACCURACY[r - 1], 1.0 / r, (0.2 + 0.05 * r, 0.1 * (r % 3)), gs.get(r, np.nan))
            for r in range(1, 13)
        ]
    )


@pytest.fixture
def table_case():
    labels = np.array([0, 0, 0, 1, 1, 1, 2, 2])
    split = ClientSplit.from_indices([[0, 1, 2, 3], [4, 5, 6, 7]], labels)
    run = fake_run()
    cosine = np.mean([np.mean(r.update_cosine) for r in run.rounds])
    row = (
        split.heterogeneity(),
        ACCURACY[-5:].mean(),
        run.drift_mean.mean(),
        cosine,
        np.mean([3.0, 1.0, 1.5]),
    )
    return {"a": split}, {"a": run}, row


def test_the_table_check_passes_section_3s_numbers_and_names_each_slip(table_case, capsys):
    splits, runs, row = table_case
    h, accuracy, drift, cosine, g = row
    run = runs["a"]
    exercises.check_drift_table({"a": row}, splits, runs)
    assert capsys.readouterr().out.startswith("✓ table: 1 rows")
    exercises.check_drift_table({"a": list(row)}, splits, runs)
    cosine_last = np.mean(run.rounds[-1].update_cosine)
    mistakes = {
        "G is nan: .*np.nanmean": (h, accuracy, drift, cosine, np.nan),
        "G is the last computed value": (h, accuracy, drift, cosine, 1.5),
        "G is the sum": (h, accuracy, drift, cosine, 5.5),
        "G is the largest": (h, accuracy, drift, cosine, 3.0),
        "accuracy is the last round's": (h, ACCURACY[-1], drift, cosine, g),
        "accuracy averages every round": (h, ACCURACY.mean(), drift, cosine, g),
        "accuracy is the best round's": (h, ACCURACY.max(), drift, cosine, g),
        "accuracy averages the last ten": (h, ACCURACY[-10:].mean(), drift, cosine, g),
        "drift is the mean of drift_max": (h, accuracy, run.drift_max.mean(), cosine, g),
        "drift is the last round's": (h, accuracy, run.drift_mean[-1], cosine, g),
        "agreement is the last round's": (h, accuracy, drift, cosine_last, g),
        "H is not the table's": (h + 0.1, accuracy, drift, cosine, g),
        "right numbers in the wrong order": (h, g, drift, cosine, accuracy),
        "has 4 numbers": (h, accuracy, drift, cosine),
    }
    for message, wrong in mistakes.items():
        fails(exercises.check_drift_table, {"a": wrong}, splits, runs, match=message)
    fails(exercises.check_drift_table, {"b": row}, splits, runs, match="no row for 'a'")
    fails(exercises.check_drift_table, [row], splits, runs, match="should be a dict")
    fails(exercises.check_drift_table, ..., splits, runs, match="table is still `...`")
    no_g = {"a": fake_run(with_g=False)}
    fails(exercises.check_drift_table, {"a": row}, splits, no_g, match="dissimilarity_every=5")


def test_the_order_check_wants_true_only_where_g_grows_with_h_at_every_step():
    ordered = {1: (0.1, 0, 0, 0, 0.2), 2: (0.5, 0, 0, 0, 3.0), 3: (0.3, 0, 0, 0, 1.0)}
    exercises.check_g_follows_h(True, ordered)
    exercises.check_g_follows_h(np.bool_(True), ordered)
    crossed = {**ordered, 4: (0.9, 0, 0, 0, 2.0)}
    exercises.check_g_follows_h(False, crossed)
    fails(exercises.check_g_follows_h, False, ordered, match="g_follows_h = False: sort the rows")
    fails(exercises.check_g_follows_h, True, crossed, match="g_follows_h = True: sort the rows")
    fails(exercises.check_g_follows_h, "yes", ordered, match="answer True or False")
    fails(exercises.check_g_follows_h, ..., ordered, match="g_follows_h is still `...`")
    fails(exercises.check_g_follows_h, True, ..., match="table is still `...`")


# --- exercise 3: ητ ------------------------------------------------------------------------------

PROBLEM = playground.make_problem(num_clients=3, heterogeneity=1.0, seed=0)
W_STAR = PROBLEM.global_optimum()
PAIRS = [(10, 0.1), (20, 0.05), (50, 0.02), (100, 0.01)]


def biases(distance):
    return {
        (tau, lr): distance(playground.fedavg_fixed_point(PROBLEM, tau, lr)) for tau, lr in PAIRS
    }


def test_the_bias_check_wants_distances_from_w_star_for_each_pair(capsys):
    right = biases(lambda p: np.linalg.norm(p - W_STAR))
    exercises.check_bias_by_eta_tau(right, PROBLEM, PAIRS)
    assert capsys.readouterr().out.startswith("✓ biases: FedAvg's bias")
    first = right[PAIRS[0]]
    mistakes = {
        r"biases\[\(10, 0.1\)\] is a point": biases(lambda p: p),
        "distances from the origin": biases(np.linalg.norm),
        "plain mean of the clients' optima": biases(
            lambda p: np.linalg.norm(p - PROBLEM.optima.mean(axis=0))
        ),
        "squared distances": biases(lambda p: np.linalg.norm(p - W_STAR) ** 2),
        r"every entry is the bias of \(τ, η\) = \(10, 0.1\)": dict.fromkeys(PAIRS, first),
        r"keys as \(η, τ\)": {(lr, tau): d for (tau, lr), d in right.items()},
        r"no entry for \(τ, η\) = \(100, 0.01\)": {k: v for k, v in right.items() if k[0] != 100},
        "not the distances": {k: v + 0.01 for k, v in right.items()},
        "should be a dict": list(right.values()),
        "biases is still `...`": ...,
    }
    for message, wrong in mistakes.items():
        fails(exercises.check_bias_by_eta_tau, wrong, PROBLEM, PAIRS, match=message)


def expm(a, scale):
    lam, vec = np.linalg.eigh(a)
    return vec @ (np.exp(scale * lam)[..., None] * np.swapaxes(vec, -1, -2))


def fixed_point(problem, m, weights=None):
    p = problem.weights if weights is None else weights
    a = np.einsum("k,kij->ij", p, m)
    return np.linalg.solve(a, np.einsum("k,kij,kj->i", p, m, problem.optima))


def approx(problem, tau, lr):
    return fixed_point(problem, np.eye(2) - expm(problem.curvatures, -lr * tau))


def equal_weights(problem, tau, lr):
    k = problem.num_clients
    return fixed_point(problem, np.eye(2) - expm(problem.curvatures, -lr * tau), np.full(k, 1 / k))


EXP_MISTAKES = {
    "is the exact fixed point": playground.fedavg_fixed_point,
    "np.exp works element by element": lambda p, tau, lr: fixed_point(
        p, np.eye(2) - np.exp(-lr * tau * p.curvatures)
    ),
    "η is missing": lambda p, tau, lr: fixed_point(p, np.eye(2) - expm(p.curvatures, -tau)),
    "τ is missing": lambda p, tau, lr: fixed_point(p, np.eye(2) - expm(p.curvatures, -lr)),
    "the exponent has the wrong sign": lambda p, tau, lr: fixed_point(
        p, np.eye(2) - expm(p.curvatures, lr * tau)
    ),
    "you used e\\^\\{−ητA_k\\} itself": lambda p, tau, lr: fixed_point(
        p, expm(p.curvatures, -lr * tau)
    ),
    "weighted equally": equal_weights,
    "returns w\\*": lambda p, tau, lr: p.global_optimum(),
    "returns the mean of the optima": lambda p, tau, lr: p.weights @ p.optima,
    "shape \\(3,\\)": lambda p, tau, lr: np.zeros(3),
    "is not \\(Σ p_k M_k\\)": lambda p, tau, lr: approx(p, tau, lr) + 0.01,
    "returns None": lambda p, tau, lr: None,
    "raised ZeroDivisionError": lambda p, tau, lr: 1 / 0,
}


@pytest.mark.parametrize("seed", [None, 1, 2, 3])
def test_the_exponential_check_names_elementwise_exp_and_the_other_slips(seed):
    exercises.check_exp_fixed_point(approx, seed=seed)
    for message, wrong in EXP_MISTAKES.items():
        fails(exercises.check_exp_fixed_point, wrong, seed=seed, match=message)


# --- exercise 4: FedProx's μ ---------------------------------------------------------------------

MUS = np.arange(0, 13.01, 0.25)
SWEEP = {"problem": PROBLEM, "local_steps": 10, "lr": 0.1}


def prox(distance, mus=MUS):
    return [distance(playground.fedprox_fixed_point(PROBLEM, 10, 0.1, mu)) for mu in mus]


def test_the_mu_sweep_check_wants_fedprox_distances_and_the_mu_of_the_smallest(capsys):
    right = prox(lambda p: np.linalg.norm(p - W_STAR))
    best = int(np.argmin(right))
    exercises.check_prox_sweep(MUS, right, MUS[best], **SWEEP)
    assert "the smallest at μ = 10.5" in capsys.readouterr().out
    fedavg = np.linalg.norm(playground.fedavg_fixed_point(PROBLEM, 10, 0.1) - W_STAR)
    mistakes = {
        "FedAvg's bias for every μ": (MUS, [fedavg] * len(MUS), MUS[best]),
        "distances from the origin": (MUS, prox(np.linalg.norm), MUS[best]),
        "plain mean of the optima": (
            MUS,
            prox(lambda p: np.linalg.norm(p - PROBLEM.optima.mean(axis=0))),
            MUS[best],
        ),
        "squared distances": (MUS, np.square(right), MUS[best]),
        "holds points, not distances": (MUS, prox(lambda p: p), MUS[best]),
        "has 52 values for 53 μs": (MUS, right[:-1], MUS[best]),
        "sweep μ from 0 \\(FedAvg\\) to 13": (MUS[:20], right[:20], MUS[best]),
        "is not ‖fedprox_fixed_point": (MUS, np.add(right, 0.01), MUS[best]),
        "best_mu = 42 is the position": (MUS, right, best),
        "gives the largest bias": (MUS, right, MUS[int(np.argmax(right))]),
        "best_mu = 5 is not the μ": (MUS, right, 5.0),
        "mus is still `...`": (..., right, MUS[best]),
        "prox_bias is still `...`": (MUS, ..., MUS[best]),
        "best_mu is still `...`": (MUS, right, ...),
    }
    for message, wrong in mistakes.items():
        fails(exercises.check_prox_sweep, *wrong, match=message, **SWEEP)


def test_the_mu_limit_check_wants_two_over_eta_minus_the_steepest_curvature(capsys):
    eig = PROBLEM.eigenvalues()
    steepest = eig[:, 1].max()
    exercises.check_mu_limit(20 - steepest, PROBLEM, 0.1)
    assert "from μ ≈ 13.50" in capsys.readouterr().out
    exercises.check_mu_limit(20 - steepest + 0.01, PROBLEM, 0.1)  # a bisection's answer
    exercises.check_mu_limit(np.array([20 - steepest]), PROBLEM, 0.1)
    overall = np.linalg.eigvalsh(np.einsum("k,kij->ij", PROBLEM.weights, PROBLEM.curvatures))
    mistakes = {
        "η \\(λ \\+ μ\\) < 1": 10 - steepest,
        "leaves out the curvature": 20.0,
        "flattest curvature": 20 - eig[:, 0].min(),
        "mean λ_max": 20 - eig[:, 1].mean(),
        "curvature of the global loss": 20 - overall[-1],
        "is a learning rate": 0.1,
        "is not the μ where": 12.0,
        "one number": [13.5, 13.5],
        "mu_limit is still `...`": ...,
    }
    for message, wrong in mistakes.items():
        fails(exercises.check_mu_limit, wrong, PROBLEM, 0.1, match=message)


# --- exercise 5: G during training ---------------------------------------------------------------


def computed(history):
    g = history.gradient_dissimilarity
    return history.round[~np.isnan(g)], g[~np.isnan(g)]


def positions(history):
    g = history.gradient_dissimilarity
    return np.flatnonzero(~np.isnan(g)), g[~np.isnan(g)]


COMPUTED_MISTAKES = {
    "keeps the rounds where G is nan \\(not computed\\)": lambda h: (
        h.round,
        h.gradient_dissimilarity,
    ),
    "keeps exactly the rounds where G is nan": lambda h: (
        h.round[np.isnan(h.gradient_dissimilarity)],
        h.gradient_dissimilarity[np.isnan(h.gradient_dissimilarity)],
    ),
    "positions in the series": positions,
    "returns \\(values, rounds\\)": lambda h: computed(h)[::-1],
    "two arrays": lambda h: 3.0,
    "is not \\(history.round\\[mask\\]": lambda h: (computed(h)[0], 2 * computed(h)[1]),
    "returns None": lambda h: None,
}


@pytest.mark.parametrize("seed", [None, 1, 2, 5])
def test_the_computed_check_names_kept_nans_positions_and_swaps(seed, capsys):
    exercises.check_computed_dissimilarity(computed, seed=seed)
    assert capsys.readouterr().out.startswith("✓ computed returns the")
    for message, wrong in COMPUTED_MISTAKES.items():
        fails(exercises.check_computed_dissimilarity, wrong, seed=seed, match=message)


def test_the_shrink_check_names_the_run_answered_wrongly():
    def run(gs):
        return History(rounds=[record(r, 0.5, 0.1, (1.0,), g) for r, g in enumerate(gs, 1)])

    runs = {100: run([np.nan, 0.08, np.nan, 0.1]), 0.1: run([np.nan, 12.0, np.nan, 6.5])}
    exercises.check_g_shrinks({100: False, 0.1: True}, runs)
    exercises.check_g_shrinks({100: np.bool_(False), 0.1: np.bool_(True)}, runs)
    mistakes = {
        "g_shrinks\\[100\\] = True: compare": {100: True, 0.1: True},
        "g_shrinks\\[0.1\\] = False: compare": {100: False, 0.1: False},
        "answer True or False": {100: "no", 0.1: True},
        "no entry for 0.1": {100: False},
        "should be a dict": [False, True],
        "g_shrinks is still `...`": ...,
    }
    for message, wrong in mistakes.items():
        fails(exercises.check_g_shrinks, wrong, runs, match=message)
