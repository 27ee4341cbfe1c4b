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
    QuadraticProblem,
    compare,
    fedavg_fixed_point,
    fedavg_round,
    fedprox_fixed_point,
    fedprox_round,
    make_problem,
    max_stable_lr,
    run,
    scaffold_fixed_point,
    scaffold_round,
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
    for algorithm in ALGORITHMS:
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


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_run_equals_the_rounds_one_by_one(algorithm):
    problem = make_problem(num_clients=4, seed=3)
    mu = 0.7 if algorithm == "fedprox" else 0.0
    result = run(problem, algorithm, local_steps=6, lr=0.08, mu=mu, num_rounds=25, server_lr=0.9)
    w, c_k, c = np.array(pg.DEFAULT_START), None, None
    for r in range(25):
        if algorithm == "scaffold":
            step = scaffold_round(problem, w, c_k, c, 6, 0.08, 0.9)
            c_k, c = step.client_controls, step.server_control
            np.testing.assert_allclose(result.client_controls[r + 1], c_k, atol=1e-12)
        else:
            step = fedprox_round(problem, w, 6, 0.08, mu, 0.9)
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
