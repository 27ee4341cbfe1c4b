"""The client-drift playground: exact algorithms on quadratics, their closed-form fixed points, plots
(fedlab.playground), and its panel (fedlab.ui.playground)."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from fedlab import playground as pg  # noqa: E402
from fedlab.playground import (  # noqa: E402
    ALGORITHMS,
    ALL_ALGORITHMS,
    QuadraticProblem,
    compare,
    fedavg_fixed_point,
    fedavg_round,
    fednova_fixed_point,
    fednova_round,
    fedprox_fixed_point,
    fedprox_round,
    fixed_point,
    local_trajectories,
    make_problem,
    max_stable_lr,
    run,
    scaffold_fixed_point,
    scaffold_round,
    surrogate_optimum,
)
from fedlab.ui.playground import Playground  # noqa: E402

# Two clients with diagonal curvatures: every formula splits into two 1-D ones, checkable by hand.
DIAG_A = np.array([[1.0, 0.2], [0.3, 1.5]])  # client k's curvature is diag(DIAG_A[k])
DIAG_O = np.array([[-2.0, 1.0], [3.0, -1.0]])
WEIGHTS = np.array([0.4, 0.6])
TWO = QuadraticProblem([np.diag(a) for a in DIAG_A], DIAG_O, WEIGHTS)
LR = 0.1


def hand_fedprox_point(local_steps, lr, mu=0.0):
    """Per coordinate i: w_i = Σ p n_ki o_ki / Σ p n_ki, n = (1 − (1 − η(a + μ))^τ) a / (a + μ)."""
    n = (1 - (1 - lr * (DIAG_A + mu)) ** local_steps) * DIAG_A / (DIAG_A + mu)
    return (WEIGHTS @ (n * DIAG_O)) / (WEIGHTS @ n)


def gap(point, problem=TWO):
    return float(np.linalg.norm(point - problem.global_optimum()))


# -- the problem -----------------------------------------------------------------------------


def test_global_optimum_by_hand():
    expected = (WEIGHTS @ (DIAG_A * DIAG_O)) / (WEIGHTS @ DIAG_A)  # curvature-weighted, per axis
    np.testing.assert_allclose(TWO.global_optimum(), expected, rtol=0, atol=1e-14)
    np.testing.assert_allclose(TWO.grad(expected), [0.0, 0.0], atol=1e-14)
    assert not np.allclose(expected, WEIGHTS @ DIAG_O)  # not the plain average of the optima


def test_losses_and_gradients_by_hand():
    w = np.array([0.5, -0.5])
    client = [0.5 * np.sum(DIAG_A[k] * (w - DIAG_O[k]) ** 2) for k in range(2)]
    for k in range(2):
        assert TWO.client_loss(k, w) == pytest.approx(client[k], abs=1e-14)
        np.testing.assert_allclose(TWO.client_grad(k, w), DIAG_A[k] * (w - DIAG_O[k]), atol=1e-14)
    assert TWO.loss(w) == pytest.approx(WEIGHTS @ client, abs=1e-14)
    grid = np.stack([w, 2 * w, 3 * w]).reshape(3, 1, 2)  # many points at once
    np.testing.assert_allclose(TWO.loss(grid)[:, 0], [TWO.loss(p) for p in grid[:, 0]])
    eps = 1e-6  # the gradient is the loss's slope
    slope = [(TWO.loss(w + eps * e) - TWO.loss(w - eps * e)) / (2 * eps) for e in np.eye(2)]
    np.testing.assert_allclose(TWO.grad(w), slope, rtol=1e-8)


def test_weights_are_normalised_and_arrays_frozen():
    problem = QuadraticProblem([np.eye(2), np.eye(2)], [[0.0, 0.0], [1.0, 1.0]], [1, 3])
    assert problem.weights.tolist() == [0.25, 0.75]
    with pytest.raises(ValueError):
        problem.optima[0, 0] = 5.0
    assert problem == QuadraticProblem([np.eye(2)] * 2, [[0, 0], [1, 1]], [2, 6])


def test_same_seed_same_problem():
    assert make_problem(seed=7) == make_problem(seed=7)
    assert make_problem(seed=7) != make_problem(seed=8)
    assert make_problem(seed=7, heterogeneity=0.5) != make_problem(seed=7)


def test_heterogeneity_scales_the_clients_apart():
    identical = make_problem(num_clients=4, heterogeneity=0.0, seed=2)
    np.testing.assert_array_equal(identical.optima, 0.0)
    assert all(np.array_equal(a, identical.curvatures[0]) for a in identical.curvatures)
    half, full = make_problem(4, 0.5, seed=2), make_problem(4, 1.0, seed=2)
    np.testing.assert_allclose(full.optima, 2 * half.optima)  # optima ∝ h
    spread = [np.ptp(np.log(make_problem(4, h, seed=2).eigenvalues()[:, 1])) for h in (0, 1, 2)]
    assert spread[0] == 0 < spread[1] < spread[2]  # clients' steepness differs more with h


def test_heterogeneity_zero_means_no_drift():
    problem = make_problem(num_clients=5, heterogeneity=0.0, seed=4)
    for algorithm in ALL_ALGORITHMS:
        mu = 1.0 if algorithm == "fedprox" else 0.0
        result = run(problem, algorithm, local_steps=10, lr=0.2, mu=mu, num_rounds=300)
        assert result.distance[-1] < 1e-10, algorithm
        np.testing.assert_allclose(result.fixed_point, problem.global_optimum(), atol=1e-12)
        # identical clients take identical local paths
        np.testing.assert_allclose(result.trajectories, result.trajectories[:, :1].repeat(5, 1))


# -- FedAvg: the closed form and its bias ----------------------------------------------------


@pytest.mark.parametrize("local_steps", [1, 2, 5, 10, 20])
def test_fedavg_converges_to_its_closed_form_fixed_point(local_steps):
    point = fedavg_fixed_point(TWO, local_steps, LR)
    np.testing.assert_allclose(point, hand_fedprox_point(local_steps, LR), rtol=0, atol=1e-13)
    result = run(TWO, "fedavg", local_steps, LR, num_rounds=2000)
    assert np.linalg.norm(result.path[-1] - point) < 1e-10
    np.testing.assert_array_equal(result.fixed_point, point)


def test_fedavg_bias_grows_with_local_steps():
    gaps = [gap(fedavg_fixed_point(TWO, tau, LR)) for tau in (1, 2, 5, 10, 20, 50, 200)]
    assert gaps[0] < 1e-14  # one local step: the true optimum
    assert all(a < b for a, b in zip(gaps, gaps[1:], strict=False)), gaps
    # many local steps: the plain (client-weighted) average of the optima, curvature forgotten
    np.testing.assert_allclose(fedavg_fixed_point(TWO, 1000, LR), WEIGHTS @ DIAG_O, atol=1e-12)


def test_fedavg_with_one_local_step_is_gradient_descent():
    result = run(TWO, "fedavg", local_steps=1, lr=LR, num_rounds=100, server_lr=0.5)
    w = np.array(pg.DEFAULT_START)
    for r in range(100):
        w = w - 0.5 * LR * TWO.grad(w)
        np.testing.assert_allclose(result.path[r + 1], w, rtol=0, atol=1e-12)


def test_fedavg_fixed_point_ignores_the_server_lr():
    for server_lr in (0.3, 1.0):
        result = run(TWO, "fedavg", 10, LR, num_rounds=3000, server_lr=server_lr)
        np.testing.assert_allclose(result.path[-1], fedavg_fixed_point(TWO, 10, LR), atol=1e-10)


# -- SCAFFOLD and FedProx --------------------------------------------------------------------


@pytest.mark.parametrize("local_steps", [1, 2, 5, 10, 20, 50])
def test_scaffold_reaches_the_true_optimum(local_steps):
    for problem in (TWO, make_problem()):
        result = run(problem, "scaffold", local_steps, LR, num_rounds=1000)
        assert result.distance[-1] < 1e-8, (problem, local_steps)
        np.testing.assert_array_equal(
            scaffold_fixed_point(problem, local_steps, LR), problem.global_optimum()
        )


def test_scaffold_keeps_the_server_variate_the_mean_of_the_clients():
    result = run(make_problem(num_clients=4, seed=1), "scaffold", 10, LR, num_rounds=300)
    weights = result.problem.weights
    np.testing.assert_allclose(
        result.server_controls, np.einsum("k,rki->ri", weights, result.client_controls), atol=1e-12
    )
    # at the end every client's variate is its gradient at the optimum, and c = ∇f(w*) = 0
    grads = [result.problem.client_grad(k, result.optimum) for k in range(4)]
    np.testing.assert_allclose(result.client_controls[-1], grads, atol=1e-8)
    np.testing.assert_allclose(result.server_controls[-1], 0.0, atol=1e-8)


def test_scaffold_round_one_is_fedavg():
    a = scaffold_round(TWO, [1.0, 2.0], local_steps=7, lr=LR)
    b = fedavg_round(TWO, [1.0, 2.0], local_steps=7, lr=LR)
    np.testing.assert_array_equal(a.trajectories, b.trajectories)
    np.testing.assert_array_equal(a.updated, b.updated)


def test_fedprox_fixed_point_by_hand():
    for tau, mu in [(1, 0.5), (5, 0.0), (10, 1.0), (30, 3.0)]:
        np.testing.assert_allclose(
            fedprox_fixed_point(TWO, tau, LR, mu), hand_fedprox_point(tau, LR, mu), atol=1e-13
        )


def test_fedprox_with_mu_zero_is_fedavg_exactly():
    a = run(TWO, "fedprox", 10, LR, mu=0.0, num_rounds=30)
    b = run(TWO, "fedavg", 10, LR, num_rounds=30)
    np.testing.assert_array_equal(a.path, b.path)
    np.testing.assert_array_equal(a.trajectories, b.trajectories)
    np.testing.assert_array_equal(a.fixed_point, b.fixed_point)


@pytest.mark.parametrize("problem", [TWO, make_problem()], ids=["two_clients", "default"])
@pytest.mark.parametrize("local_steps", [10, 20, 50])
def test_fedprox_error_lies_between_scaffold_and_fedavg_and_falls_with_mu(problem, local_steps):
    mus = [0.0, 0.5, 1.0, 2.0, 4.0, 8.0]
    lr = 0.05
    gaps = [gap(fedprox_fixed_point(problem, local_steps, lr, mu), problem) for mu in mus]
    assert gaps[0] == pytest.approx(gap(fedavg_fixed_point(problem, local_steps, lr), problem))
    assert all(a > b for a, b in zip(gaps, gaps[1:], strict=False)), gaps
    assert gaps[-1] > 1e-6  # smaller, but not gone: only SCAFFOLD removes it
    result = run(problem, "fedprox", local_steps, lr, mu=2.0, num_rounds=3000)
    np.testing.assert_allclose(result.path[-1], fedprox_fixed_point(problem, local_steps, lr, 2.0))
    scaffold = run(problem, "scaffold", local_steps, lr, num_rounds=3000)
    fedavg = run(problem, "fedavg", local_steps, lr, num_rounds=3000)
    assert scaffold.distance[-1] < 1e-8 < result.distance[-1] < fedavg.distance[-1]


def test_fedprox_with_two_local_steps_gets_worse_with_mu():
    """The docstring's warning: with τ = 2, N_k = ηA_k(2I − η(A_k + μI)) distorts more as μ grows."""
    gaps = [gap(fedprox_fixed_point(TWO, 2, LR, mu)) for mu in (0.0, 1.0, 4.0)]
    assert gaps[0] < gaps[1] < gaps[2]


def test_compare_runs_the_three_algorithms_on_one_problem():
    runs = compare(make_problem(), local_steps=10, lr=0.1, mu=2.0, num_rounds=60)
    assert [r.algorithm for r in runs] == list(ALGORITHMS)
    assert [r.mu for r in runs] == [0.0, 2.0, 0.0]
    fedavg, fedprox, scaffold = (r.distance[-1] for r in runs)
    assert scaffold < 1e-6 < fedprox < 0.8 * fedavg  # the default picture shows all three


# -- the fast run equals the step-by-step rounds ---------------------------------------------


@pytest.mark.parametrize("local_steps", [6, (2, 6, 11, 1)], ids=["same_tau", "tau_per_client"])
@pytest.mark.parametrize("algorithm", ALL_ALGORITHMS)
def test_run_equals_the_rounds_one_by_one(algorithm, local_steps):
    problem = make_problem(num_clients=4, seed=3)
    mu = 0.7 if algorithm == "fedprox" else 0.0
    result = run(problem, algorithm, local_steps, lr=0.08, mu=mu, num_rounds=25, server_lr=0.9)
    w, c_k, c = np.array(pg.DEFAULT_START), None, None
    for r in range(25):
        if algorithm == "scaffold":
            step = scaffold_round(problem, w, c_k, c, local_steps, 0.08, 0.9)
            c_k, c = step.client_controls, step.server_control
            np.testing.assert_allclose(result.client_controls[r + 1], c_k, atol=1e-12)
        elif algorithm == "fednova":
            step = fednova_round(problem, w, local_steps, 0.08, 0.9)
        else:
            step = fedprox_round(problem, w, local_steps, 0.08, mu, 0.9)
        np.testing.assert_allclose(result.trajectories[r], step.trajectories, atol=1e-12)
        np.testing.assert_allclose(result.updates[r], step.update, atol=1e-12)
        w = step.updated
        np.testing.assert_allclose(result.path[r + 1], w, atol=1e-12)
    np.testing.assert_allclose(result.loss, problem.loss(result.path))
    np.testing.assert_allclose(
        result.distance, np.linalg.norm(result.path - result.optimum, axis=1)
    )
    assert np.all(result.excess_loss >= -1e-12)
    assert result.client_drift.shape == (25, 4)


def test_local_trajectories_are_gradient_descent():
    path = pg.local_trajectories(TWO, [0.0, 0.0], local_steps=3, lr=LR, mu=0.5)
    y = np.zeros((2, 2))
    for s in range(3):
        y = y - LR * (DIAG_A * (y - DIAG_O) + 0.5 * y)
        np.testing.assert_allclose(path[:, s + 1], y, atol=1e-15)


# -- local steps per client, and FedNova -----------------------------------------------------

HETERO = (1, 5, 20)  # τ_k for the three clients of make_problem(): a phone, a tablet, a laptop


def hand_hetero_point(local_steps, lr, mu=0.0, normalise=False):
    """hand_fedprox_point with τ_k per client; ``normalise``: FedNova's n_k / τ_k."""
    taus = np.array(local_steps)[:, None]
    n = (1 - (1 - lr * (DIAG_A + mu)) ** taus) * DIAG_A / (DIAG_A + mu)
    if normalise:
        n = n / taus
    return (WEIGHTS @ (n * DIAG_O)) / (WEIGHTS @ n)


EQUAL_TAU_PROBLEMS = [
    TWO,
    make_problem(),
    make_problem(num_clients=5, seed=3, heterogeneity=1.5),
    make_problem(num_clients=4, seed=1, weights=[1.0, 2.0, 3.0, 4.0]),
]


@pytest.mark.parametrize("problem", EQUAL_TAU_PROBLEMS, ids=["two", "default", "five", "weighted"])
@pytest.mark.parametrize("tau", [1, 7, 30])
def test_fednova_with_equal_local_steps_is_fedavg(problem, tau):
    per_client = [tau] * problem.num_clients
    for w in ([1.0, -2.0], [0.0, 0.0], problem.optima[0] + 0.5):
        fedavg = fedavg_round(problem, w, tau, LR, server_lr=0.8)
        for steps in (tau, per_client):
            fednova = fednova_round(problem, w, steps, LR, server_lr=0.8)
            np.testing.assert_array_equal(fednova.trajectories, fedavg.trajectories)
            np.testing.assert_allclose(fednova.update, fedavg.update, rtol=0, atol=1e-12)
            np.testing.assert_allclose(fednova.updated, fedavg.updated, rtol=0, atol=1e-12)
    nova, avg = run(problem, "fednova", tau, LR, num_rounds=60), run(problem, "fedavg", tau, LR)
    np.testing.assert_allclose(nova.path[:51], avg.path, rtol=0, atol=1e-12)
    np.testing.assert_allclose(nova.fixed_point, avg.fixed_point, rtol=0, atol=1e-12)
    np.testing.assert_allclose(
        fednova_fixed_point(problem, per_client, LR), avg.fixed_point, rtol=0, atol=1e-12
    )


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("tau", [1, 4, 25])
def test_the_same_tau_for_every_client_gives_todays_numbers(algorithm, tau):
    problem = make_problem(num_clients=3, seed=2)
    mu = 0.5 if algorithm == "fedprox" else 0.0
    given = dict(lr=0.09, mu=mu, num_rounds=40, server_lr=0.9)
    as_int = run(problem, algorithm, tau, **given)
    for per_client in ([tau] * 3, (tau,) * 3, np.full(3, tau)):
        as_list = run(problem, algorithm, per_client, **given)
        for name in ("path", "trajectories", "updates", "fixed_point", "client_controls"):
            np.testing.assert_array_equal(getattr(as_list, name), getattr(as_int, name), name)
        assert as_list.local_steps == (tau, tau, tau) and as_int.local_steps == tau
    w = [0.5, 1.5]
    pairs = {
        "fedavg": lambda steps: fedavg_round(problem, w, steps, 0.09),
        "fedprox": lambda steps: fedprox_round(problem, w, steps, 0.09, mu),
        "scaffold": lambda steps: scaffold_round(problem, w, problem.optima, [0.1, 0.2], steps),
    }
    a, b = pairs[algorithm](tau), pairs[algorithm]([tau] * 3)
    np.testing.assert_array_equal(a.trajectories, b.trajectories)
    np.testing.assert_array_equal(a.updated, b.updated)
    np.testing.assert_array_equal(a.client_controls, b.client_controls)


@pytest.mark.parametrize("local_steps", [HETERO, (20, 1, 5), (3, 3, 8)])
@pytest.mark.parametrize("mu", [0.0, 0.7])
def test_closed_form_local_steps_equal_the_loop_with_steps_per_client(local_steps, mu):
    problem = make_problem()
    corrections = np.array([[0.3, -0.2], [0.0, 0.5], [-0.4, 0.1]])
    closed = pg._ClosedFormLocal(problem, local_steps, 0.1, mu)
    loop = pg._LoopLocal(problem, local_steps, 0.1, mu)
    longest = max(local_steps)
    for w in (np.array([-3.0, 3.0]), np.array([0.7, -0.1])):
        for c in (None, corrections):
            path = loop(w, c)
            assert path.shape == (3, longest + 1, 2)
            np.testing.assert_allclose(closed(w, c), path, rtol=0, atol=1e-12)
            for k, tau in enumerate(local_steps):
                # client k alone, τ_k steps, then it stands still at its last iterate
                alone = QuadraticProblem(problem.curvatures[k : k + 1], problem.optima[k : k + 1])
                own = local_trajectories(
                    alone, w, tau, 0.1, mu, None if c is None else c[k : k + 1]
                )[0]
                np.testing.assert_allclose(path[k, : tau + 1], own, rtol=0, atol=1e-13)
                np.testing.assert_array_equal(
                    path[k, tau:], np.repeat(path[k, tau : tau + 1], longest - tau + 1, 0)
                )


def test_fixed_points_with_steps_per_client_by_hand():
    for taus, lr, mu in [((2, 9), LR, 0.0), ((1, 30), 0.05, 0.0), ((5, 3), LR, 1.5)]:
        np.testing.assert_allclose(
            fedprox_fixed_point(TWO, taus, lr, mu), hand_hetero_point(taus, lr, mu), atol=1e-13
        )
        if mu == 0.0:
            np.testing.assert_allclose(
                fedavg_fixed_point(TWO, taus, lr), hand_hetero_point(taus, lr), atol=1e-13
            )
            np.testing.assert_allclose(
                fednova_fixed_point(TWO, taus, lr),
                hand_hetero_point(taus, lr, normalise=True),
                atol=1e-13,
            )
    surrogate = (WEIGHTS * [2, 9]) @ (DIAG_A * DIAG_O) / ((WEIGHTS * [2, 9]) @ DIAG_A)
    np.testing.assert_allclose(surrogate_optimum(TWO, [2, 9]), surrogate, atol=1e-14)
    np.testing.assert_allclose(surrogate_optimum(TWO, 9), TWO.global_optimum(), atol=1e-14)


@pytest.mark.parametrize("problem, local_steps", [(make_problem(), HETERO), (TWO, (2, 9))])
def test_runs_with_steps_per_client_converge_to_their_fixed_points(problem, local_steps):
    lr = 0.1
    for algorithm in ALL_ALGORITHMS:
        mu = 1.0 if algorithm == "fedprox" else 0.0
        result = run(problem, algorithm, local_steps, lr, mu=mu, num_rounds=3000)
        expected = {
            "fedavg": fedavg_fixed_point(problem, local_steps, lr),
            "fedprox": fedprox_fixed_point(problem, local_steps, lr, mu),
            "fednova": fednova_fixed_point(problem, local_steps, lr),
            "scaffold": problem.global_optimum(),
        }[algorithm]
        np.testing.assert_array_equal(result.fixed_point, expected)
        assert np.linalg.norm(result.path[-1] - expected) < 1e-8, algorithm
        assert not np.allclose(result.path[0], expected)  # it had somewhere to go
    # SCAFFOLD's variates end at ∇F_k(w*), whatever each client's τ_k
    result = run(problem, "scaffold", local_steps, lr, num_rounds=3000)
    grads = [problem.client_grad(k, result.optimum) for k in range(problem.num_clients)]
    np.testing.assert_allclose(result.client_controls[-1], grads, atol=1e-8)


def test_scaffold_divides_each_variate_by_its_own_steps():
    w = np.array([1.0, -1.0])
    step = scaffold_round(TWO, w, local_steps=[2, 9], lr=LR)  # c = c_k = 0: plain GD paths
    ends = [step.trajectories[0, 2], step.trajectories[1, 9]]
    np.testing.assert_allclose(
        step.client_controls, [(w - ends[0]) / (2 * LR), (w - ends[1]) / (9 * LR)], atol=1e-15
    )
    np.testing.assert_allclose(step.server_control, WEIGHTS @ step.client_controls, atol=1e-15)


def test_fednova_round_normalises_by_the_steps():
    w = np.array([1.0, -1.0])
    step = fednova_round(TWO, w, [2, 9], LR, server_lr=0.7)
    deltas = step.trajectories[:, -1] - w
    tau_eff = 0.4 * 2 + 0.6 * 9
    expected = tau_eff * (0.4 * deltas[0] / 2 + 0.6 * deltas[1] / 9)
    np.testing.assert_allclose(step.update, expected, rtol=0, atol=1e-14)
    np.testing.assert_allclose(step.updated, w + 0.7 * expected, rtol=0, atol=1e-14)
    fedavg = fedavg_round(TWO, w, [2, 9], LR, server_lr=0.7)
    np.testing.assert_array_equal(step.trajectories, fedavg.trajectories)  # same clients
    assert np.linalg.norm(step.update - fedavg.update) > 0.1  # different server


def test_as_lr_shrinks_fednova_reaches_the_optimum_and_fedavg_the_surrogate():
    """τ_k = (1, 5, 20) stays fixed while η shrinks, so η τ_max → 0 (2, 0.2, 0.02).

    That is the regime of the first-order argument: M_k/τ_k = ηA_k (I + O(η τ_k)). Scaling τ up
    as η shrinks (η τ fixed) would keep M_k = I − (I − ηA_k)^τ_k ≈ I − exp(−η τ_k A_k) away from
    proportional to A_k, and FedNova's error would not fall (checked at the end).
    """
    problem = make_problem()
    w_star = problem.global_optimum()
    surrogate = surrogate_optimum(problem, HETERO)
    inconsistency = np.linalg.norm(surrogate - w_star)
    assert 0.69 < inconsistency < 0.70  # measured: 0.695
    lrs = (0.1, 0.01, 0.001)
    nova = [np.linalg.norm(fednova_fixed_point(problem, HETERO, lr) - w_star) for lr in lrs]
    avg = [np.linalg.norm(fedavg_fixed_point(problem, HETERO, lr) - w_star) for lr in lrs]
    avg_to_surrogate = [
        np.linalg.norm(fedavg_fixed_point(problem, HETERO, lr) - surrogate) for lr in lrs
    ]
    # measured: FedNova 0.600, 0.0534, 0.00525; FedAvg 0.565, 0.676, 0.693
    assert 0.55 < nova[0] < 0.65 and 0.05 < nova[1] < 0.057 and 0.005 < nova[2] < 0.0057
    assert 9 < nova[1] / nova[2] < 11  # linear in η
    assert 0.5 < avg[0] < 0.6 and 0.66 < avg[1] < 0.69 and 0.685 < avg[2] < inconsistency
    assert avg[2] > 100 * nova[2]
    assert nova[0] > avg[0]  # at η τ_max = 2 the normalisation does not help: be honest
    # FedAvg approaches the surrogate, linearly in η (measured 0.361, 0.0305, 0.00295)
    assert avg_to_surrogate[0] > avg_to_surrogate[1] > avg_to_surrogate[2]
    assert 9 < avg_to_surrogate[1] / avg_to_surrogate[2] < 11
    # η τ fixed instead: FedNova's error stays (measured 0.053 at η = 0.01, 0.059 at η = 0.001)
    scaled = fednova_fixed_point(problem, [10 * t for t in HETERO], 0.001)
    assert np.linalg.norm(scaled - w_star) > 0.9 * nova[1]


def test_fedavg_with_steps_per_client_misses_the_optimum_unless_clients_are_identical():
    problem = make_problem()
    w_star = problem.global_optimum()
    for taus in (HETERO, (1, 1, 2), (3, 1, 1)):
        assert np.linalg.norm(fedavg_fixed_point(problem, taus, 0.01) - w_star) > 0.05, taus
        assert np.linalg.norm(surrogate_optimum(problem, taus) - w_star) > 0.05, taus
    ones = [1, 1, 1]  # one step each: gradient descent, for both
    np.testing.assert_allclose(fedavg_fixed_point(problem, ones, 0.1), w_star, atol=1e-12)
    np.testing.assert_allclose(fednova_fixed_point(problem, ones, 0.1), w_star, atol=1e-12)
    same = make_problem(heterogeneity=0.0, seed=5)
    for point in (
        fedavg_fixed_point(same, HETERO, 0.1),
        fednova_fixed_point(same, HETERO, 0.1),
        surrogate_optimum(same, HETERO),
        run(same, "fedavg", HETERO, 0.1, num_rounds=300).path[-1],
    ):
        np.testing.assert_allclose(point, same.global_optimum(), atol=1e-12)


def test_a_run_with_steps_per_client_is_labelled_and_drawn():
    result = run(make_problem(), "fednova", HETERO, 0.01, num_rounds=4)
    assert result.name == "FedNova" and result.label == "FedNova (τ=(1, 5, 20), η=0.01)"
    assert result.trajectories.shape == (4, 3, 21, 2)
    drawn = pg.plot_run(result)
    np.testing.assert_array_equal(drawn.data["trajectories"], result.trajectories[-1])
    plt.close(drawn.fig)
    np.testing.assert_array_equal(
        fixed_point(make_problem(), "fednova", HETERO, 0.01), result.fixed_point
    )


def test_compare_and_the_panel_keep_the_three_algorithms():
    assert ALGORITHMS == ("fedavg", "fedprox", "scaffold")
    assert ALL_ALGORITHMS == (*ALGORITHMS, "fednova")
    assert [r.algorithm for r in compare(make_problem(), num_rounds=3)] == list(ALGORITHMS)
    panel = Playground(num_rounds=5)
    assert [value for _, value in panel.controls["algorithm"].options] == list(ALGORITHMS)
    with pytest.raises(ValueError, match="algorithm must be one of"):
        Playground(algorithm="fednova")


# -- property tests --------------------------------------------------------------------------


@st.composite
def problems(draw, max_clients=4):
    k = draw(st.integers(1, max_clients))
    floats = st.floats
    eigenvalues = draw(st.lists(floats(0.2, 2.0), min_size=2 * k, max_size=2 * k))
    angles = draw(st.lists(floats(0.0, np.pi), min_size=k, max_size=k))
    optima = draw(st.lists(floats(-3.0, 3.0), min_size=2 * k, max_size=2 * k))
    weights = draw(st.lists(floats(0.1, 1.0), min_size=k, max_size=k))
    rotation = pg._rotation(np.array(angles))
    curvatures = np.einsum("kij,kj,klj->kil", rotation, np.reshape(eigenvalues, (k, 2)), rotation)
    return QuadraticProblem(curvatures, np.reshape(optima, (k, 2)), weights)


@settings(max_examples=40, deadline=None)
@given(problem=problems(), local_steps=st.integers(1, 30), share=st.floats(0.05, 0.95))
def test_fixed_points_do_not_move(problem, local_steps, share):
    lr = share * max_stable_lr(problem)
    w_star = problem.global_optimum()
    np.testing.assert_allclose(problem.grad(w_star), 0.0, atol=1e-10)
    point = fedavg_fixed_point(problem, local_steps, lr)
    np.testing.assert_allclose(
        fedavg_round(problem, point, local_steps, lr).updated, point, atol=1e-9
    )
    prox_lr = share * max_stable_lr(problem, mu=0.5)
    prox = fedprox_fixed_point(problem, local_steps, prox_lr, 0.5)
    after = fedprox_round(problem, prox, local_steps, prox_lr, 0.5).updated
    np.testing.assert_allclose(after, prox, atol=1e-9)
    # SCAFFOLD at w* with c_k = ∇F_k(w*), c = 0: nothing moves
    c_k = np.stack([problem.client_grad(k, w_star) for k in range(problem.num_clients)])
    step = scaffold_round(problem, w_star, c_k, np.zeros(2), local_steps, lr)
    np.testing.assert_allclose(step.updated, w_star, atol=1e-9)
    np.testing.assert_allclose(step.client_controls, c_k, atol=1e-9)
    np.testing.assert_allclose(step.trajectories - w_star, 0.0, atol=1e-9)  # no one moves
    # one local step: FedAvg is gradient descent, its fixed point the optimum
    np.testing.assert_allclose(fedavg_fixed_point(problem, 1, lr), w_star, atol=1e-9)


@settings(max_examples=20, deadline=None)
@given(problem=problems(), local_steps=st.integers(2, 20), share=st.floats(0.1, 0.5))
def test_scaffold_converges_to_the_optimum_on_random_problems(problem, local_steps, share):
    lr = share * max_stable_lr(problem)
    result = run(problem, "scaffold", local_steps, lr, num_rounds=2000, start=(0.0, 0.0))
    assert result.distance[-1] < 1e-8
    fedavg = run(problem, "fedavg", local_steps, lr, num_rounds=2000, start=(0.0, 0.0))
    np.testing.assert_allclose(fedavg.path[-1], fedavg.fixed_point, atol=1e-8)


@st.composite
def steps_per_client(draw, problem):
    return draw(
        st.lists(st.integers(1, 25), min_size=problem.num_clients, max_size=problem.num_clients)
    )


@settings(max_examples=40, deadline=None)
@given(data=st.data(), problem=problems(), share=st.floats(0.05, 0.95))
def test_fixed_points_with_steps_per_client_do_not_move(data, problem, share):
    taus = data.draw(steps_per_client(problem))
    lr = share * max_stable_lr(problem)
    for algorithm, round_ in (("fedavg", fedavg_round), ("fednova", fednova_round)):
        point = fixed_point(problem, algorithm, taus, lr)
        np.testing.assert_allclose(round_(problem, point, taus, lr).updated, point, atol=1e-9)
    prox_lr = share * max_stable_lr(problem, mu=0.5)
    prox = fedprox_fixed_point(problem, taus, prox_lr, 0.5)
    np.testing.assert_allclose(
        fedprox_round(problem, prox, taus, prox_lr, 0.5).updated, prox, atol=1e-9
    )
    w_star = problem.global_optimum()
    c_k = np.stack([problem.client_grad(k, w_star) for k in range(problem.num_clients)])
    step = scaffold_round(problem, w_star, c_k, np.zeros(2), taus, lr)
    np.testing.assert_allclose(step.updated, w_star, atol=1e-9)
    np.testing.assert_allclose(step.client_controls, c_k, atol=1e-9)
    # with every τ_k equal, FedNova's point is FedAvg's
    same = [taus[0]] * problem.num_clients
    np.testing.assert_allclose(
        fednova_fixed_point(problem, same, lr), fedavg_fixed_point(problem, taus[0], lr), atol=1e-9
    )


@settings(max_examples=30, deadline=None)
@given(
    num_clients=st.integers(1, 50),
    heterogeneity=st.floats(0.0, 2.0),
    seed=st.integers(0, 2**32),
    condition=st.floats(1.0, 100.0),
)
def test_make_problem_gives_valid_problems(num_clients, heterogeneity, seed, condition):
    problem = make_problem(num_clients, heterogeneity, seed, condition=condition)
    assert problem.curvatures.shape == (num_clients, 2, 2)
    assert np.all(problem.eigenvalues() > 0)
    assert np.all(np.linalg.norm(problem.optima, axis=1) <= 2.0 * heterogeneity + 1e-12)


# -- argument checks -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: make_problem(num_clients=0), "num_clients must be an integer in \\[1, 50\\]"),
        (lambda: make_problem(heterogeneity=-0.1), "heterogeneity must be .* \\[0, 2\\]"),
        (lambda: make_problem(heterogeneity=2.5), "heterogeneity must be"),
        (lambda: make_problem(seed=-1), "seed must be"),
        (lambda: make_problem(condition=0.5), "condition must be"),
        (lambda: make_problem(spread=0.0), "spread must be"),
        (lambda: make_problem(num_clients=2, weights=[1.0, -1.0]), "weights must be"),
        (lambda: run(TWO, "fedsgd"), "algorithm must be one of"),
        (lambda: run(TWO, local_steps=0), "local_steps must be"),
        (lambda: run(TWO, lr=0.0), "lr must be"),
        (lambda: run(TWO, lr=2.0), "lr = 2 is too large: client 1"),
        (lambda: run(TWO, "fedprox", lr=0.5, mu=3.0), "lr must be below 0.444"),
        (lambda: run(TWO, mu=-1.0), "mu must be"),
        (lambda: run(TWO, "fedavg", mu=1.0), "mu is FedProx's proximal weight"),
        (lambda: run(TWO, num_rounds=-1), "num_rounds must be"),
        (lambda: run(TWO, num_rounds=10_000, local_steps=1_000), "num_rounds × clients"),
        (lambda: run(TWO, server_lr=0.0), "server_lr must be"),
        (lambda: run(TWO, start=(1.0, 2.0, 3.0)), "start must be a point"),
        (lambda: QuadraticProblem(np.eye(2), [[0.0, 0.0]]), "curvatures must have shape"),
        (lambda: QuadraticProblem([np.eye(2)], [0.0, 0.0]), "optima must have shape"),
        (lambda: QuadraticProblem([[[1.0, 1.0], [0.0, 1.0]]], [[0, 0]]), "symmetric"),
        (lambda: QuadraticProblem([np.diag([1.0, -1.0])], [[0, 0]]), "positive definite"),
        (lambda: QuadraticProblem([np.eye(2)], [[np.nan, 0]]), "optima must hold finite"),
        (lambda: fedavg_fixed_point(TWO, local_steps=0), "local_steps must be"),
        (lambda: fedprox_fixed_point(TWO, mu=-0.5), "mu must be"),
        (lambda: max_stable_lr(TWO, mu=-1.0), "mu must be"),
        (lambda: pg.plot_run(run(TWO, num_rounds=3), round_number=4), "round_number must be"),
    ],
)
def test_bad_arguments_raise_a_value_error_naming_them(call, message):
    with pytest.raises(ValueError, match=message):
        call()


THREE = make_problem()
BAD_STEPS_CALLS = {
    "run": lambda steps: run(THREE, "fednova", steps),
    "fedavg_round": lambda steps: fedavg_round(THREE, [0.0, 0.0], steps),
    "fedprox_round": lambda steps: fedprox_round(THREE, [0.0, 0.0], steps),
    "fednova_round": lambda steps: fednova_round(THREE, [0.0, 0.0], steps),
    "scaffold_round": lambda steps: scaffold_round(THREE, [0.0, 0.0], local_steps=steps),
    "local_trajectories": lambda steps: local_trajectories(THREE, [0.0, 0.0], steps),
    "fedavg_fixed_point": lambda steps: fedavg_fixed_point(THREE, steps),
    "fednova_fixed_point": lambda steps: fednova_fixed_point(THREE, steps),
    "fixed_point": lambda steps: fixed_point(THREE, "scaffold", steps),
    "surrogate_optimum": lambda steps: surrogate_optimum(THREE, steps),
}


@pytest.mark.parametrize("call", BAD_STEPS_CALLS.values(), ids=BAD_STEPS_CALLS.keys())
@pytest.mark.parametrize(
    "steps, error, message",
    [
        (
            [1, 2],
            ValueError,
            r"local_steps must be an integer in \[1, 1000\] or 3 such .*got 2 values",
        ),
        ([1, 2, 3, 4], ValueError, r"or 3 such integers \(one per client\), got 4 values"),
        (0, ValueError, r"local_steps must be an integer in \[1, 1000\], got 0"),
        ([1, 0, 2], ValueError, r"local_steps\[1\] must be an integer in \[1, 1000\], got 0"),
        ([1, 2, 1001], ValueError, r"local_steps\[2\] must be an integer in \[1, 1000\]"),
        (1.5, TypeError, r"local_steps must be an integer in \[1, 1000\] or 3 .*got float 1.5"),
        ([1, 1.5, 2], TypeError, r"local_steps\[1\] must be an integer, got float 1.5"),
        ([True, 1, 1], TypeError, r"local_steps\[0\] must be an integer, got bool"),
        (np.array([1.0, 2.0, 3.0]), TypeError, r"local_steps\[0\] must be an integer, got float"),
        ("abc", TypeError, r"local_steps must be an integer .* got str 'abc'"),
        (None, TypeError, r"local_steps must be an integer .* got NoneType"),
    ],
)
def test_bad_local_steps_raise_naming_local_steps(call, steps, error, message):
    with pytest.raises(error, match=message):
        call(steps)


def test_the_trajectory_limit_counts_the_largest_tau():
    # 2500 rounds · 2 clients · (1000 + 1) points > 5,000,000; the mean τ (500.5) would pass
    for steps in ([1, 1000], [1000, 1]):
        with pytest.raises(ValueError, match="the largest τ_k counts"):
            run(TWO, local_steps=steps, num_rounds=2500)


def test_wrong_types_raise_type_errors():
    with pytest.raises(TypeError, match="problem must be a QuadraticProblem"):
        run("not a problem")
    with pytest.raises(TypeError, match="num_clients must be an integer"):
        make_problem(num_clients=2.5)
    with pytest.raises(TypeError, match="result must be a PlaygroundRun"):
        pg.plot_run(TWO)


def test_max_stable_lr_is_the_local_divergence_bound():
    largest = max(DIAG_A.max(axis=1))  # 1.5
    assert max_stable_lr(TWO) == pytest.approx(2 / largest)
    assert max_stable_lr(TWO, mu=0.5) == pytest.approx(2 / (largest + 0.5))
    run(TWO, lr=0.99 * max_stable_lr(TWO), num_rounds=5)  # just below: runs
    with pytest.raises(ValueError, match="too large"):
        run(TWO, lr=max_stable_lr(TWO), num_rounds=5)


def test_a_too_large_server_lr_is_reported_as_diverged():
    with np.errstate(all="ignore"):
        result = run(TWO, "fedavg", 1, 1.3, num_rounds=2000, server_lr=10.0)
    assert result.diverged


# -- plots -----------------------------------------------------------------------------------


def test_plot_run_draws_the_run():
    result = run(make_problem(), "fedavg", local_steps=8, num_rounds=12)
    fig, ax = plt.subplots()
    before = plt.get_fignums()
    drawn = pg.plot_run(result, round_number=3, ax=ax)
    assert plt.get_fignums() == before and drawn.fig is fig and drawn.axes == (ax,)
    data = drawn.data
    np.testing.assert_array_equal(data["path"], result.path)
    np.testing.assert_array_equal(data["trajectories"], result.trajectories[2])
    np.testing.assert_array_equal(data["broadcast"], result.path[2])
    np.testing.assert_array_equal(data["step_end"], result.path[3])
    np.testing.assert_array_equal(data["client_optima"], result.problem.optima)
    np.testing.assert_array_equal(data["fixed_point"], result.fixed_point)
    np.testing.assert_allclose(
        data["loss_grid"], result.problem.loss(np.stack([data["grid_x"], data["grid_y"]], -1))
    )
    # lines: global path, its start, 3 client trajectories, a legend entry, fixed point, optimum
    assert len(ax.lines) == 8
    paths = [line for line in ax.lines if len(line.get_xdata()) == 9]  # τ + 1 points
    assert len(paths) == 3
    for k, line in enumerate(paths):
        np.testing.assert_array_equal(line.get_xydata(), result.trajectories[2, k])
    np.testing.assert_array_equal(ax.lines[0].get_xydata(), result.path)
    np.testing.assert_array_equal(ax.collections[-1].get_offsets(), result.problem.optima)
    assert len(ax.texts) == 1  # the aggregated step's arrow
    assert "FedAvg" in ax.get_title()
    plt.close(fig)


def test_plot_run_without_ax_makes_a_figure_and_defaults_to_the_last_round():
    drawn = pg.plot_run(run(TWO, "scaffold", 4, LR, num_rounds=6))
    np.testing.assert_array_equal(drawn.data["broadcast"], drawn.data["path"][5])
    assert drawn.axes[0].figure is drawn.fig  # a new figure, which pyplot does not keep (Agg)
    assert not any(plt.figure(n) is drawn.fig for n in plt.get_fignums())


def test_plot_distance_and_comparison():
    runs = compare(make_problem(), local_steps=10, num_rounds=20)
    fig, axes = plt.subplots(1, 4)
    before = plt.get_fignums()
    drawn = pg.plot_comparison(runs, axes=axes, round_number=5)
    assert plt.get_fignums() == before and drawn.axes == tuple(axes)
    assert len({ax.get_xlim() for ax in axes[:3]}) == 1  # one shared window
    for result in runs:
        np.testing.assert_array_equal(drawn.data[f"{result.name}/path"], result.path)
        np.testing.assert_array_equal(drawn.data[f"distance/{result.label}"], result.distance)
    distance_ax = axes[3]
    assert len(distance_ax.lines) == 5  # 3 runs, FedAvg's and FedProx's fixed points dashed
    np.testing.assert_array_equal(distance_ax.lines[0].get_ydata(), runs[0].distance)
    assert distance_ax.get_yscale() == "log"
    with pytest.raises(ValueError, match="axes must hold 4 axes"):
        pg.plot_comparison(runs, axes=axes[:3])
    plt.close(fig)
    drawn = pg.plot_comparison(runs[:1], distance=False)
    assert len(drawn.axes) == 1
    plt.close(drawn.fig)


# -- the panel -------------------------------------------------------------------------------


def expected_run(panel):
    s = panel.settings()
    return run(make_problem(**s["problem"]), **s["run"])


def test_panel_shows_what_run_computes():
    panel = Playground(algorithm="fedavg", local_steps=5, num_rounds=20)
    np.testing.assert_array_equal(panel.drawn.data["path"], expected_run(panel).path)
    redraws = panel.redraws
    before = bytes(panel.image.value)
    assert before.startswith(b"\x89PNG")
    panel.controls["algorithm"].value = "fedprox"
    panel.controls["mu"].value = 1.5
    panel.controls["local_steps"].value = 12
    panel.controls["heterogeneity"].value = 1.5
    panel.controls["seed"].value = 3
    assert panel.redraws == redraws + 5 and bytes(panel.image.value) != before
    assert panel.run.algorithm == "fedprox" and panel.run.mu == 1.5
    expected = run(make_problem(3, 1.5, seed=3), "fedprox", 12, 0.1, mu=1.5, num_rounds=20)
    np.testing.assert_array_equal(panel.run.path, expected.path)
    np.testing.assert_array_equal(panel.drawn.data["path"], expected.path)
    np.testing.assert_array_equal(panel.drawn.data["trajectories"], expected.trajectories[-1])
    assert panel.error is None and "FedProx" in panel.status.value


def test_panel_round_slider_redraws_without_rerunning():
    panel = Playground(num_rounds=10)
    shown_run = panel.run
    panel.controls["round"].value = 2
    assert panel.run is shown_run
    np.testing.assert_array_equal(panel.drawn.data["trajectories"], shown_run.trajectories[1])
    assert "round 2" in panel.status.value


def test_panel_round_slider_follows_the_number_of_rounds():
    panel = Playground(num_rounds=10)
    assert panel.controls["round"].value == 10
    panel.controls["num_rounds"].value = 30  # at the last round: stays at the last round
    assert (panel.controls["round"].max, panel.controls["round"].value) == (30, 30)
    panel.controls["round"].value = 4
    panel.controls["num_rounds"].value = 40  # elsewhere: stays where it was
    assert panel.controls["round"].value == 4
    panel.controls["num_rounds"].value = 3  # fewer rounds than shown: clamped
    assert panel.controls["round"].value == 3
    np.testing.assert_array_equal(panel.drawn.data["trajectories"], panel.run.trajectories[2])


def test_panel_compares_with_the_other_two_algorithms():
    panel = Playground(algorithm="fedprox", num_rounds=30)
    assert [r.algorithm for r in panel.references] == ["fedavg", "scaffold"]
    for reference in panel.references:
        expected = run(panel.problem, reference.algorithm, 10, 0.1, num_rounds=30)
        np.testing.assert_array_equal(reference.path, expected.path)
    distance_ax = panel._axes[1]
    labelled = {line.get_label(): line for line in distance_ax.lines}
    assert set(labelled) >= {r.label for r in (panel.run, *panel.references)}
    np.testing.assert_array_equal(labelled[panel.run.label].get_ydata(), panel.run.distance)
    assert labelled[panel.run.label].get_alpha() is None  # the current one stands out
    assert all(labelled[r.label].get_alpha() < 1 for r in panel.references)


def test_mu_is_greyed_out_except_for_fedprox():
    panel = Playground(algorithm="fedavg")
    assert panel.controls["mu"].disabled and panel.run.mu == 0.0
    panel.controls["algorithm"].value = "fedprox"
    assert not panel.controls["mu"].disabled and panel.run.mu == 2.0


def test_a_diverging_lr_shows_a_message_and_keeps_the_last_picture():
    panel = Playground(num_rounds=10)
    good, image, redraws = panel.run, bytes(panel.image.value), panel.redraws
    panel.controls["lr"].value = 1.0
    with pytest.raises(ValueError) as expected:
        run(good.problem, "fedavg", 10, 1.0, num_rounds=10)
    assert panel.error == str(expected.value)
    assert "too large" in panel.status.value and "color" in panel.status.value
    assert panel.run is good and bytes(panel.image.value) == image and panel.redraws == redraws
    panel.controls["round"].value = 3  # nothing is drawn while the settings are bad
    assert panel.redraws == redraws
    panel.controls["lr"].value = 0.2
    assert panel.error is None and panel.run.lr == 0.2 and panel.redraws == redraws + 1
    panel.controls["seed"].value = -1  # any refused setting is reported the same way
    assert panel.error.startswith("seed must be") and panel.redraws == redraws + 1
    panel.controls["seed"].value = 0
    assert panel.error is None
    assert np.all(np.isfinite(panel.drawn.data["path"]))


def test_bad_starting_values_raise():
    with pytest.raises(ValueError, match="algorithm must be one of"):
        Playground(algorithm="fedsgd")
    with pytest.raises(ValueError, match="local_steps must be"):
        Playground(local_steps=0)
    with pytest.raises(ValueError, match="too large"):
        Playground(lr=1.5)
    with pytest.raises(ValueError, match="round_number must be"):
        Playground(num_rounds=5, round_number=6)


def test_panel_leaks_no_figures():
    before = plt.get_fignums()
    panel = Playground(num_rounds=5)
    for value in (2, 3, 1):
        panel.controls["round"].value = value
    panel.controls["algorithm"].value = "scaffold"
    assert plt.get_fignums() == before
    assert len(panel._figure.axes) == 2


def test_a_notebook_keeps_a_png_of_the_run_on_screen(notebook_png):
    panel = Playground(num_rounds=5)
    first, width, height = notebook_png(panel)
    assert first == bytes(panel.image.value)
    assert (width, height) == (990, 396)  # 11 x 4.4 inches at 90 dpi
    assert repr(panel) == f"Playground({panel._status_line()})"
    assert repr(panel).startswith("Playground(FedAvg")
    panel.controls["round"].value = 2  # the slider moves: the picture follows
    moved, _, _ = notebook_png(panel)
    assert moved != first and moved == bytes(panel.image.value)
    assert "round 2: clients moved" in repr(panel)
    panel.controls["lr"].value = 1.5  # refused: the picture keeps the last valid run
    assert notebook_png(panel)[0] == moved
    assert "; refused: lr = 1.5 is too large" in repr(panel)
    assert panel.status in panel.widget.children and panel.image in panel.widget.children
