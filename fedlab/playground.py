"""Client drift you can see: federated learning on two-parameter quadratics (``04_client_drift``).

Each of K clients has its own quadratic loss

    F_k(w) = ½ (w − o_k)ᵀ A_k (w − o_k),    A_k symmetric positive definite (2×2), o_k its optimum,

and the federation minimises f(w) = Σ_k p_k F_k(w) (client weights p_k > 0, Σ p_k = 1). Its
minimiser has a closed form, w* = (Σ p_k A_k)⁻¹ Σ p_k A_k o_k: a curvature-weighted average of
the clients' optima, *not* their plain average.

On such a problem every algorithm in this module is exact float64 NumPy arithmetic (no sampling,
full-batch gradients, every client in every round), so a thousand rounds take tens of
milliseconds and what you see is the algorithm, not noise. Closed forms make *client drift* precise:

* **FedAvg.** τ local gradient steps with step size η map a client's start w to
  ``o_k + (I − ηA_k)^τ (w − o_k)``, so its update is Δ_k = −M_k (w − o_k) with
  ``M_k = I − (I − ηA_k)^τ``. The server stops moving where Σ p_k Δ_k = 0:

      w_FedAvg = (Σ p_k M_k)⁻¹ Σ p_k M_k o_k    (:func:`fedavg_fixed_point`).

  For τ = 1, M_k = ηA_k and this *is* w*. For τ > 1 the weights M_k are no longer proportional
  to A_k (they saturate towards I as τ grows), so FedAvg settles at a different point unless the
  clients are identical: each client drifts towards its own optimum, and the drifts no longer
  cancel at w*.
* **FedProx** adds μ(y − w) to each local gradient, pulling the client back towards the broadcast
  point w. Its local map is ``z_k + (I − η(A_k + μI))^τ (w − z_k)`` with
  z_k = (A_k + μI)⁻¹(A_k o_k + μw), so Δ_k = −N_k (w − o_k) with
  ``N_k = (I − (I − η(A_k + μI))^τ)(A_k + μI)⁻¹ A_k``, and

      w_FedProx = (Σ p_k N_k)⁻¹ Σ p_k N_k o_k    (:func:`fedprox_fixed_point`).

  μ = 0 gives FedAvg's M_k back. When the local steps (nearly) solve the local problem, a larger
  μ makes N_k closer to a multiple of A_k, so the error shrinks — but does not vanish — as μ
  grows; with only two or three local steps it can grow instead (see the function).
* **SCAFFOLD** corrects every local gradient by c − c_k (control variates). At a fixed point
  every c_k = ∇F_k(w) and c = Σ p_k c_k = ∇f(w) = 0, so w = w*: SCAFFOLD's fixed point is the
  true optimum for every τ and η (:func:`scaffold_fixed_point`).
* **Different local steps per client, and FedNova.** ``local_steps`` may also be one τ_k per
  client (a compute budget: a slow phone takes 2 steps a round while a laptop takes 20, as
  ``max_local_steps`` per client in :func:`fedlab.simulate`); client k then takes τ_k steps and
  every M_k and N_k above takes its own τ_k. As η → 0, M_k ≈ τ_k ηA_k, so FedAvg's point tends
  to the optimum of the τ-weighted surrogate Σ p_k τ_k F_k, not of f
  (:func:`surrogate_optimum`): clients that work more count more, Wang et al.'s (2020)
  *objective inconsistency*. **FedNova** divides each client's update by its τ_k before
  averaging (and rescales by τ_eff = Σ p_k τ_k), so its point
  (Σ p_k M_k/τ_k)⁻¹ Σ p_k (M_k/τ_k) o_k tends to w* as η → 0 (:func:`fednova_fixed_point`).
  It removes the inconsistency, not the drift: with equal τ_k it *is* FedAvg.

Start with :func:`make_problem` and :func:`run` (or :func:`compare` for the first three), draw with
:func:`plot_run` / :func:`plot_comparison`, or explore with the
:class:`~fedlab.ui.playground.Playground` panel (:mod:`fedlab.ui.playground`; also importable
from here, as ``fedlab.playground.Playground``).
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from numpy.typing import ArrayLike

from fedlab.plot import Drawn, new_figure
from fedlab.validate import check_choice, check_float, check_int

ALGORITHMS = ("fedavg", "fedprox", "scaffold")
"""The three algorithms of the client-drift comparison, by the name :func:`run` takes: what
:func:`compare` runs and the :class:`~fedlab.ui.playground.Playground` panel offers."""

ALL_ALGORITHMS = (*ALGORITHMS, "fednova")
"""Every algorithm :func:`run` and :func:`fixed_point` know: :data:`ALGORITHMS` and FedNova."""

NAMES = {"fedavg": "FedAvg", "fedprox": "FedProx", "scaffold": "SCAFFOLD", "fednova": "FedNova"}
"""How each algorithm is written in titles and legends."""

DEFAULT_START = (-3.0, 3.0)
"""Where :func:`run` starts the global model unless told otherwise."""

MAX_ROUNDS = 10_000
MAX_LOCAL_STEPS = 1_000
_MAX_TRAJECTORY_POINTS = 5_000_000  # num_rounds × clients × (τ_max + 1): 80 MB of float64


# -- the problem ---------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class QuadraticProblem:
    """K clients with quadratic losses F_k(w) = ½ (w − o_k)ᵀ A_k (w − o_k) on two parameters.

    The arrays are copied to read-only float64; ``weights`` are scaled to sum to 1 (``None``:
    equal weights). The global objective is f(w) = Σ_k p_k F_k(w). Two problems are equal when
    all their numbers are.

    Attributes:
        curvatures: A_k, one symmetric positive definite 2×2 matrix per client, shape [K, 2, 2].
        optima: o_k, each client's own minimiser, shape [K, 2].
        weights: p_k, the clients' weights in f, shape [K], positive, summing to 1.

    Example:
        >>> problem = QuadraticProblem(
        ...     curvatures=[np.diag([1.0, 1.0]), np.diag([3.0, 1.0])], optima=[[0.0, 0.0], [4.0, 2.0]]
        ... )
        >>> problem.num_clients, problem.weights.tolist()
        (2, [0.5, 0.5])
        >>> problem.global_optimum().tolist()  # x: (1·0 + 3·4)/(1 + 3); y: (0 + 2)/2
        [3.0, 1.0]
    """

    curvatures: np.ndarray
    optima: np.ndarray
    weights: np.ndarray | None = None

    def __post_init__(self) -> None:
        curvatures = _float_array("curvatures", self.curvatures)
        optima = _float_array("optima", self.optima)
        if curvatures.ndim != 3 or curvatures.shape[1:] != (2, 2) or len(curvatures) < 1:
            raise ValueError(
                "curvatures must have shape [K, 2, 2] (one 2×2 matrix per client), "
                f"got shape {curvatures.shape}"
            )
        num_clients = len(curvatures)
        if optima.shape != (num_clients, 2):
            raise ValueError(
                f"optima must have shape [{num_clients}, 2] (one point per client), "
                f"got shape {optima.shape}"
            )
        scale = np.abs(curvatures).max()
        if not np.allclose(curvatures, curvatures.transpose(0, 2, 1), rtol=0, atol=1e-12 * scale):
            raise ValueError("curvatures must be symmetric matrices (A_k = A_kᵀ)")
        curvatures = (curvatures + curvatures.transpose(0, 2, 1)) / 2
        smallest = np.linalg.eigvalsh(curvatures)[:, 0]
        if np.any(smallest <= 0):
            k = int(np.argmin(smallest))
            raise ValueError(
                "curvatures must be positive definite (both eigenvalues > 0), "
                f"client {k}'s smallest eigenvalue is {smallest[k]:.3g}"
            )
        if self.weights is None:
            weights = np.full(num_clients, 1.0 / num_clients)
        else:
            weights = _float_array("weights", self.weights)
            if weights.shape != (num_clients,) or np.any(weights <= 0):
                raise ValueError(
                    f"weights must be {num_clients} positive numbers (one per client), "
                    f"got {weights.tolist()}"
                )
            weights = weights / weights.sum()
        for name, value in (("curvatures", curvatures), ("optima", optima), ("weights", weights)):
            value.setflags(write=False)
            object.__setattr__(self, name, value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, QuadraticProblem):
            return NotImplemented
        return all(
            np.array_equal(getattr(self, name), getattr(other, name))
            for name in ("curvatures", "optima", "weights")
        )

    __hash__ = None  # type: ignore[assignment]  # holds arrays: equal by value, not hashable

    @property
    def num_clients(self) -> int:
        """K, the number of clients."""
        return len(self.optima)

    def global_optimum(self) -> np.ndarray:
        """w* = (Σ p_k A_k)⁻¹ Σ p_k A_k o_k, the minimiser of f (where ∇f(w) = 0).

        Example:
            >>> make_problem(heterogeneity=0.0).global_optimum().tolist()
            [0.0, 0.0]
        """
        a = np.einsum("k,kij->ij", self.weights, self.curvatures)
        b = np.einsum("k,kij,kj->i", self.weights, self.curvatures, self.optima)
        return np.linalg.solve(a, b)

    def client_loss(self, k: int, w: ArrayLike) -> np.ndarray:
        """F_k(w) for client ``k`` at one point ([2]) or many ([..., 2]).

        Example:
            >>> float(make_problem(heterogeneity=0.0).client_loss(0, [0.0, 0.0]))
            0.0
        """
        k = check_int("k", k, low=0, high=self.num_clients - 1)
        d = np.asarray(w, dtype=np.float64) - self.optima[k]
        return 0.5 * np.einsum("...i,ij,...j->...", d, self.curvatures[k], d)

    def loss(self, w: ArrayLike) -> np.ndarray:
        """f(w) = Σ_k p_k F_k(w) at one point ([2]) or many ([..., 2], e.g. a grid).

        Example:
            >>> problem = make_problem()
            >>> bool(problem.loss(problem.global_optimum()) <= problem.loss([1.0, 1.0]))
            True
        """
        d = np.asarray(w, dtype=np.float64)[..., None, :] - self.optima
        return 0.5 * np.einsum("...ki,kij,...kj,k->...", d, self.curvatures, d, self.weights)

    def client_grad(self, k: int, w: ArrayLike) -> np.ndarray:
        """∇F_k(w) = A_k (w − o_k).

        Example:
            >>> make_problem(heterogeneity=0.0).client_grad(0, [1.0, 0.0]).tolist()  # A = diag(3, 0.75)
            [3.0, 0.0]
        """
        k = check_int("k", k, low=0, high=self.num_clients - 1)
        return (np.asarray(w, dtype=np.float64) - self.optima[k]) @ self.curvatures[k]

    def grad(self, w: ArrayLike) -> np.ndarray:
        """∇f(w) = Σ_k p_k A_k (w − o_k); zero at :meth:`global_optimum`.

        Example:
            >>> problem = make_problem(seed=1)
            >>> bool(np.allclose(problem.grad(problem.global_optimum()), 0.0))
            True
        """
        d = np.asarray(w, dtype=np.float64)[..., None, :] - self.optima
        return np.einsum("k,kij,...kj->...i", self.weights, self.curvatures, d)

    def eigenvalues(self) -> np.ndarray:
        """Each client's curvature eigenvalues, ascending, shape [K, 2].

        Example:
            >>> make_problem(heterogeneity=0.0, condition=4.0).eigenvalues()[0].tolist()
            [0.75, 3.0]
        """
        return np.linalg.eigvalsh(self.curvatures)


def _float_array(name: str, value: object) -> np.ndarray:
    try:
        array = np.array(value, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"{name} must be an array of numbers, got {type(value).__name__}"
        ) from error
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must hold finite numbers only")
    return array


def _rotation(angle: np.ndarray) -> np.ndarray:
    cos, sin = np.cos(angle), np.sin(angle)
    return np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], -2)


def make_problem(
    num_clients: int = 3,
    heterogeneity: float = 1.0,
    seed: int = 0,
    spread: float = 2.0,
    condition: float = 4.0,
    weights: ArrayLike | None = None,
) -> QuadraticProblem:
    """A random :class:`QuadraticProblem` whose clients differ as much as ``heterogeneity`` says.

    Every client starts from the same curvature, diag(3, 3/condition), with its optimum at the
    origin. The seed then draws, once, where each client's optimum lies (directions spread
    around a circle, 0.6 to 1 times ``spread`` from the origin), how its curvature's long axis
    is tilted (the clients' axes fanned over 180°) and how steep it is (one client steepest, one
    flattest, the rest in between: a factor 2^u, u from about −1 to 1). ``heterogeneity`` h
    scales all of these: the optima lie h·spread·(0.6 to 1) from the origin, the tilts are
    multiplied by h and the steepness factors are 2^(h·u). So h = 0 gives identical clients (no
    drift at all), and moving h with the same seed changes the problem smoothly.

    Args:
        num_clients: K, 1 to 50.
        heterogeneity: h, 0 to 2.
        seed: seed of the random draws (≥ 0).
        spread: how far (at h = 1) the clients' optima lie from the origin, in (0, 100].
        condition: the base curvature's eigenvalue ratio, 1 to 100.
        weights: p_k (scaled to sum to 1); ``None`` for equal weights.

    Example:
        >>> problem = make_problem(num_clients=4, heterogeneity=0.5, seed=3)
        >>> problem.curvatures.shape, problem.optima.shape
        ((4, 2, 2), (4, 2))
        >>> make_problem(seed=3) == make_problem(seed=3), make_problem(seed=3) == make_problem(seed=4)
        (True, False)
    """
    num_clients = check_int("num_clients", num_clients, low=1, high=50)
    heterogeneity = check_float("heterogeneity", heterogeneity, low=0.0, high=2.0)
    seed = check_int("seed", seed, low=0)
    spread = check_float("spread", spread, low=0.0, high=100.0, low_inclusive=False)
    condition = check_float("condition", condition, low=1.0, high=100.0)
    rng = np.random.default_rng(seed)
    k = np.arange(num_clients)
    angle = rng.uniform(0.0, 2 * np.pi) + 2 * np.pi * k / num_clients  # optima around a circle
    angle = angle + rng.uniform(-0.3, 0.3, num_clients)
    radius = rng.uniform(0.6, 1.0, num_clients)
    tilt = rng.uniform(0.0, np.pi) + np.pi * k / num_clients  # long axes fanned over 180°
    tilt = tilt + rng.uniform(-0.2, 0.2, num_clients)
    steepness = rng.permutation(np.linspace(-1.0, 1.0, num_clients) if num_clients > 1 else [0.0])
    stretch = steepness[:, None] + rng.uniform(-0.25, 0.25, (num_clients, 2))
    h = heterogeneity
    optima = (h * spread * radius)[:, None] * np.stack([np.cos(angle), np.sin(angle)], -1)
    optima += 0.0  # no −0.0 when h = 0
    eigenvalues = np.array([3.0, 3.0 / condition]) * 2.0 ** (h * stretch)
    rotation = _rotation(h * (tilt - tilt.mean()))
    curvatures = np.einsum("kij,kj,klj->kil", rotation, eigenvalues, rotation)
    return QuadraticProblem(curvatures, optima, None if weights is None else weights)


def max_stable_lr(problem: QuadraticProblem, mu: float = 0.0) -> float:
    """The largest step size η for which every client's local gradient descent still contracts.

    A local step multiplies the distance to the client's target by I − η(A_k + μI); it shrinks
    only if η (λ_max(A_k) + μ) < 2 for every client k. The bound is 2 / max_k (λ_max(A_k) + μ),
    and :func:`run` refuses an ``lr`` at or above it.

    Example:
        >>> max_stable_lr(make_problem(heterogeneity=0.0))  # every A_k = diag(3, 0.75)
        0.6666666666666666
        >>> max_stable_lr(make_problem(heterogeneity=0.0), mu=1.0)
        0.5
    """
    _check_problem(problem)
    mu = check_float("mu", mu, low=0.0)
    return float(2.0 / (problem.eigenvalues()[:, 1].max() + mu))


# -- the algorithms, one round at a time ---------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Round:
    """What one round did: the broadcast point, every client's local path and the new global model.

    Attributes:
        broadcast: w, the global model sent to every client, shape [2].
        trajectories: each client's local iterates y_0 = w, y_1, …, y_τ, shape [K, τ + 1, 2].
            With τ_k steps per client the shape is [K, τ_max + 1, 2]: a client that has taken
            its τ_k steps stays at its last iterate for the rest of the row.
        update: the aggregated client update Δ = Σ_k p_k (y_τ,k − w), shape [2] (FedNova's is
            τ_eff Σ_k p_k (y_τ,k − w) / τ_k, see :func:`fednova_round`).
        updated: the next global model, w + server_lr · Δ, shape [2].
        client_controls: SCAFFOLD's client variates c_k after the round, [K, 2] (else ``None``).
        server_control: SCAFFOLD's server variate c after the round, [2] (else ``None``).

    Example:
        >>> step = fedavg_round(make_problem(), [1.0, 1.0], local_steps=3, lr=0.1)
        >>> step.trajectories.shape, bool(np.allclose(step.updated, step.broadcast + step.update))
        ((3, 4, 2), True)
    """

    broadcast: np.ndarray
    trajectories: np.ndarray
    update: np.ndarray
    updated: np.ndarray
    client_controls: np.ndarray | None = None
    server_control: np.ndarray | None = None


def local_trajectories(
    problem: QuadraticProblem,
    w: ArrayLike,
    local_steps: int | Sequence[int] = 10,
    lr: float = 0.1,
    mu: float = 0.0,
    corrections: ArrayLike | None = None,
) -> np.ndarray:
    """Every client's local gradient descent from the broadcast point ``w`` (the client-update slot).

    Client k starts at y_0 = w and takes ``local_steps`` full-batch steps

        y ← y − lr · (A_k (y − o_k) + μ (y − w) + corrections_k),

    which is FedAvg for μ = 0 and no corrections, FedProx for μ > 0, and SCAFFOLD with
    corrections_k = c − c_k. All clients step together (a leading client axis); returns every
    iterate, shape [K, local_steps + 1, 2].

    ``local_steps`` may also be one τ_k per client (K ints, 1 to :data:`MAX_LOCAL_STEPS`): a
    compute budget, as ``max_local_steps`` in :func:`fedlab.simulate`. Client k then takes τ_k
    steps; the shape is [K, τ_max + 1, 2], and a client that has finished stays at its last
    iterate (as the engine's clients that ran out of batches stand still).

    Example:
        >>> problem = QuadraticProblem([np.diag([1.0, 0.25])], [[0.0, 0.0]])
        >>> local_trajectories(problem, [1.0, 0.0], local_steps=2, lr=0.5)[0].tolist()  # x halves
        [[1.0, 0.0], [0.5, 0.0], [0.25, 0.0]]
        >>> two = QuadraticProblem([np.eye(2), np.eye(2)], [[0.0, 0.0], [0.0, 0.0]])
        >>> local_trajectories(two, [1.0, 0.0], local_steps=[1, 3], lr=0.5)[:, :, 0].tolist()
        [[1.0, 0.5, 0.5, 0.5], [1.0, 0.5, 0.25, 0.125]]
    """
    _check_problem(problem)
    w = _point("w", w)
    local_steps, lr, mu, _ = _check_steps(problem, local_steps, lr, mu, 1.0)
    if corrections is not None:
        corrections = _float_array("corrections", corrections)
        if corrections.shape != (problem.num_clients, 2):
            raise ValueError(
                f"corrections must have shape [{problem.num_clients}, 2], got {corrections.shape}"
            )
    return _local(problem, w, local_steps, lr, mu, corrections)


def _local(
    problem: QuadraticProblem,
    w: np.ndarray,
    local_steps: int | tuple[int, ...],
    lr: float,
    mu: float,
    corrections: np.ndarray | None,
) -> np.ndarray:
    a, o = problem.curvatures, problem.optima
    steps = _per_client(local_steps, problem.num_clients)
    path = np.empty((problem.num_clients, steps.max() + 1, 2))
    y = np.broadcast_to(w, o.shape).copy()
    path[:, 0] = y
    for step in range(1, steps.max() + 1):
        gradient = np.einsum("kij,kj->ki", a, y - o)  # ∇F_k(y), every client at once
        if mu:
            gradient += mu * (y - w)  # FedProx: pulled back towards the broadcast point
        if corrections is not None:
            gradient += corrections  # SCAFFOLD: c − c_k
        moving = (steps >= step)[:, None]  # a client that has taken its τ_k steps stands still
        y = np.where(moving, y - lr * gradient, y)
        path[:, step] = y
    return path


class _Local:
    """The client-update slot for one run's settings: ``local(w, corrections)`` → [K, τ_max + 1, 2].

    ``local_steps`` is the checked int or tuple; ``steps`` holds τ_k per client, shape [K].
    """

    def __init__(
        self, problem: QuadraticProblem, local_steps: int | tuple[int, ...], lr: float, mu: float
    ):
        self.problem, self.local_steps, self.lr, self.mu = problem, local_steps, lr, mu
        self.steps = _per_client(local_steps, problem.num_clients)

    def __call__(self, w: np.ndarray, corrections: np.ndarray | None) -> np.ndarray:
        raise NotImplementedError


class _LoopLocal(_Local):
    """Step by step, as :func:`local_trajectories` reads (the reference)."""

    def __call__(self, w: np.ndarray, corrections: np.ndarray | None) -> np.ndarray:
        return _local(self.problem, w, self.local_steps, self.lr, self.mu, corrections)


class _ClosedFormLocal(_Local):
    """The same iterates in closed form, every step of every client in one product (for :func:`run`).

    The local gradient A_k(y − o_k) + μ(y − w) + corrections_k is H_k (y − t_k) with
    H_k = A_k + μI and t_k = H_k⁻¹ (A_k o_k + μw − corrections_k), so after s steps
    y_s = t_k + (I − ηH_k)^min(s, τ_k) (w − t_k). The powers are computed once per run, which
    makes a round cost the same for any τ; tests check it against the step-by-step loop.
    """

    def __init__(
        self, problem: QuadraticProblem, local_steps: int | tuple[int, ...], lr: float, mu: float
    ):
        super().__init__(problem, local_steps, lr, mu)
        eye = np.eye(2)
        hessian = problem.curvatures + mu * eye
        self.inverse = np.linalg.inv(hessian)
        step = eye - lr * hessian
        powers = np.empty((problem.num_clients, self.steps.max() + 1, 2, 2))
        powers[:, 0] = eye
        for s in range(self.steps.max()):
            moving = (self.steps > s)[:, None, None]  # finished clients keep their last power
            powers[:, s + 1] = np.where(moving, powers[:, s] @ step, powers[:, s])
        self.powers = powers
        self.pull = np.einsum("kij,kj->ki", problem.curvatures, problem.optima)  # A_k o_k

    def __call__(self, w: np.ndarray, corrections: np.ndarray | None) -> np.ndarray:
        b = self.pull + self.mu * w
        if corrections is not None:
            b = b - corrections
        target = np.einsum("kij,kj->ki", self.inverse, b)
        return target[:, None] + np.einsum("ksij,kj->ksi", self.powers, w - target)


def _aggregate(problem: QuadraticProblem, w: np.ndarray, path: np.ndarray) -> np.ndarray:
    """Σ_k p_k (y_τ,k − w): the aggregate slot (a weighted mean of the client updates)."""
    return problem.weights @ (path[:, -1] - w)


def fedavg_round(
    problem: QuadraticProblem,
    w: ArrayLike,
    local_steps: int | Sequence[int] = 10,
    lr: float = 0.1,
    server_lr: float = 1.0,
) -> Round:
    """One FedAvg round: every client runs τ local GD steps from w; w ← w + server_lr · Σ p_k Δ_k.

    ``local_steps`` is τ for every client or one τ_k per client (see :func:`local_trajectories`).

    Example:
        >>> problem = make_problem()
        >>> start = fedavg_fixed_point(problem, local_steps=10, lr=0.1)
        >>> after = fedavg_round(problem, start, local_steps=10, lr=0.1).updated
        >>> bool(np.allclose(after, start))  # the fixed point does not move
        True
    """
    return fedprox_round(problem, w, local_steps, lr, 0.0, server_lr)


def fedprox_round(
    problem: QuadraticProblem,
    w: ArrayLike,
    local_steps: int | Sequence[int] = 10,
    lr: float = 0.1,
    mu: float = 0.1,
    server_lr: float = 1.0,
) -> Round:
    """One FedProx round: FedAvg whose local gradients carry the proximal pull μ (y − w).

    ``local_steps`` is τ for every client or one τ_k per client (see :func:`local_trajectories`).

    Example:
        >>> problem = make_problem()
        >>> a = fedprox_round(problem, [1.0, 1.0], local_steps=5, mu=0.0).updated
        >>> b = fedavg_round(problem, [1.0, 1.0], local_steps=5).updated
        >>> bool(np.array_equal(a, b))  # μ = 0 is FedAvg
        True
    """
    _check_problem(problem)
    w = _point("w", w)
    local_steps, lr, mu, server_lr = _check_steps(problem, local_steps, lr, mu, server_lr)
    return _fedprox(problem, w, _LoopLocal(problem, local_steps, lr, mu), server_lr)


def _fedprox(problem: QuadraticProblem, w: np.ndarray, local: _Local, server_lr: float) -> Round:
    path = local(w, None)
    update = _aggregate(problem, w, path)
    return Round(w, path, update, w + server_lr * update)


def fednova_round(
    problem: QuadraticProblem,
    w: ArrayLike,
    local_steps: int | Sequence[int] = 10,
    lr: float = 0.1,
    server_lr: float = 1.0,
) -> Round:
    """One FedNova round (Wang et al. 2020, plain local GD): each update divided by its τ_k.

    Every client runs τ_k local GD steps from w, as in FedAvg; the server normalises,

        Δ = τ_eff Σ_k p_k (y_τ,k − w) / τ_k,    τ_eff = Σ_k p_k τ_k,

    and moves w ← w + server_lr · Δ. Dividing by τ_k lets each client count with its weight
    p_k however many steps it took (in FedAvg the clients that take more steps pull harder:
    :func:`surrogate_optimum`); τ_eff gives the step back its size. With the same τ on every
    client, Δ is FedAvg's update (up to rounding in the last digit).

    Example:
        >>> problem = make_problem()
        >>> nova = fednova_round(problem, [1.0, 1.0], local_steps=5).updated
        >>> avg = fedavg_round(problem, [1.0, 1.0], local_steps=5).updated
        >>> bool(np.allclose(nova, avg, rtol=0, atol=1e-12))  # same τ everywhere: FedAvg
        True
        >>> fednova_round(problem, [1.0, 1.0], local_steps=[1, 5, 20]).trajectories.shape
        (3, 21, 2)
    """
    _check_problem(problem)
    w = _point("w", w)
    local_steps, lr, _, server_lr = _check_steps(problem, local_steps, lr, 0.0, server_lr)
    return _fednova(problem, w, _LoopLocal(problem, local_steps, lr, 0.0), server_lr)


def _fednova(problem: QuadraticProblem, w: np.ndarray, local: _Local, server_lr: float) -> Round:
    path = local(w, None)
    effective = problem.weights @ local.steps  # τ_eff = Σ p_k τ_k
    update = effective * (problem.weights @ ((path[:, -1] - w) / local.steps[:, None]))
    return Round(w, path, update, w + server_lr * update)


def scaffold_round(
    problem: QuadraticProblem,
    w: ArrayLike,
    client_controls: ArrayLike | None = None,
    server_control: ArrayLike | None = None,
    local_steps: int | Sequence[int] = 10,
    lr: float = 0.1,
    server_lr: float = 1.0,
) -> Round:
    """One SCAFFOLD round (Karimireddy et al. 2020, option II, every client taking part).

    Each client runs τ local steps with its gradient corrected by c − c_k,
    y ← y − lr (∇F_k(y) − c_k + c), then sets its variate from what it just did,

        c_k⁺ = c_k − c + (w − y_τ,k) / (τ · lr),

    the server moves w ← w + server_lr · Σ p_k (y_τ,k − w) and c ← c + Σ p_k (c_k⁺ − c_k), so
    c = Σ p_k c_k stays true (the paper's plain mean, with weights p_k; equal by default). Both
    variates start at zero (``None``). In round one, then, SCAFFOLD is FedAvg.

    With one τ_k per client (see :func:`local_trajectories`) client k divides by its own
    τ_k · lr: (w − y_τ,k)/(τ_k · lr) is the mean corrected gradient along the path it walked, so
    c_k⁺ still estimates ∇F_k and the fixed point stays w* (:func:`scaffold_fixed_point`).
    Dividing by τ_max instead would shrink the variates of the clients that took fewer steps.

    Example:
        >>> problem = make_problem()
        >>> w = problem.global_optimum()
        >>> c_k = np.stack([problem.client_grad(k, w) for k in range(3)])  # ∇F_k(w*)
        >>> step = scaffold_round(problem, w, c_k, [0.0, 0.0], local_steps=10, lr=0.1)
        >>> bool(np.allclose(step.updated, w)), bool(np.allclose(step.client_controls, c_k))
        (True, True)
    """
    _check_problem(problem)
    w = _point("w", w)
    local_steps, lr, _, server_lr = _check_steps(problem, local_steps, lr, 0.0, server_lr)
    shape = (problem.num_clients, 2)
    c_k = (
        np.zeros(shape)
        if client_controls is None
        else _float_array("client_controls", client_controls)
    )
    c = np.zeros(2) if server_control is None else _point("server_control", server_control)
    if c_k.shape != shape:
        raise ValueError(f"client_controls must have shape [{shape[0]}, 2], got {c_k.shape}")
    return _scaffold(problem, w, c_k, c, _LoopLocal(problem, local_steps, lr, 0.0), server_lr)


def _scaffold(
    problem: QuadraticProblem,
    w: np.ndarray,
    c_k: np.ndarray,
    c: np.ndarray,
    local: _Local,
    server_lr: float,
) -> Round:
    path = local(w, c - c_k)
    new_c_k = c_k - c + (w - path[:, -1]) / (local.steps[:, None] * local.lr)
    update = _aggregate(problem, w, path)
    new_c = c + problem.weights @ (new_c_k - c_k)
    return Round(w, path, update, w + server_lr * update, new_c_k, new_c)


def _check_problem(problem: object) -> None:
    if not isinstance(problem, QuadraticProblem):
        raise TypeError(f"problem must be a QuadraticProblem, got {type(problem).__name__}")


def _point(name: str, value: ArrayLike) -> np.ndarray:
    point = _float_array(name, value)
    if point.shape != (2,):
        raise ValueError(f"{name} must be a point with two coordinates, got shape {point.shape}")
    return point


def _check_local_steps(local_steps: object, num_clients: int) -> int | tuple[int, ...]:
    """``local_steps`` checked: an int (every client's τ) or a tuple of K ints (τ_k per client)."""
    if isinstance(local_steps, numbers.Integral) and not isinstance(local_steps, bool):
        return check_int("local_steps", local_steps, low=1, high=MAX_LOCAL_STEPS)
    allowed = (
        f"an integer in [1, {MAX_LOCAL_STEPS}] or {num_clients} such integers (one per client)"
    )
    if isinstance(local_steps, np.ndarray) and local_steps.ndim == 1:
        local_steps = local_steps.tolist()
    if isinstance(local_steps, str | bytes) or not isinstance(local_steps, Sequence):
        raise TypeError(
            f"local_steps must be {allowed}, got {type(local_steps).__name__} {local_steps!r}"
        )
    if len(local_steps) != num_clients:
        raise ValueError(
            f"local_steps must be {allowed}, got {len(local_steps)} values {list(local_steps)!r}"
        )
    return tuple(
        check_int(f"local_steps[{k}]", steps, low=1, high=MAX_LOCAL_STEPS)
        for k, steps in enumerate(local_steps)
    )


def _per_client(local_steps: int | tuple[int, ...], num_clients: int) -> np.ndarray:
    """τ_k for every client, shape [K], from a checked ``local_steps``."""
    return (
        np.full(num_clients, local_steps) if isinstance(local_steps, int) else np.array(local_steps)
    )


def _check_steps(
    problem: QuadraticProblem,
    local_steps: int | Sequence[int],
    lr: float,
    mu: float,
    server_lr: float,
) -> tuple[int | tuple[int, ...], float, float, float]:
    _check_problem(problem)
    return (
        _check_local_steps(local_steps, problem.num_clients),
        check_float("lr", lr, low=0.0, low_inclusive=False),
        check_float("mu", mu, low=0.0),
        check_float("server_lr", server_lr, low=0.0, high=10.0, low_inclusive=False),
    )


# -- closed-form fixed points --------------------------------------------------------------------
def _weighted_solve(problem: QuadraticProblem, m: np.ndarray, algorithm: str) -> np.ndarray:
    """(Σ p_k M_k)⁻¹ Σ p_k M_k o_k."""
    a = np.einsum("k,kij->ij", problem.weights, m)
    b = np.einsum("k,kij,kj->i", problem.weights, m, problem.optima)
    try:
        return np.linalg.solve(a, b)
    except np.linalg.LinAlgError as error:
        raise ValueError(
            f"{algorithm} has no single fixed point for these settings: the local steps undo "
            "themselves (lr · λ = 2 with an even number of steps); choose a smaller lr"
        ) from error


def _power(matrices: np.ndarray, exponents: np.ndarray) -> np.ndarray:
    """M_k^e_k for every client k."""
    return np.stack(
        [np.linalg.matrix_power(m, int(e)) for m, e in zip(matrices, exponents, strict=True)]
    )


def _fedavg_matrices(
    problem: QuadraticProblem, local_steps: int | tuple[int, ...], lr: float
) -> np.ndarray:
    """M_k = I − (I − ηA_k)^τ_k for every client, shape [K, 2, 2]."""
    eye = np.eye(2)
    steps = _per_client(local_steps, problem.num_clients)
    return eye - _power(eye - lr * problem.curvatures, steps)


def fedavg_fixed_point(
    problem: QuadraticProblem, local_steps: int | Sequence[int] = 10, lr: float = 0.1
) -> np.ndarray:
    """Where FedAvg with τ local GD steps of size η stops: (Σ p_k M_k)⁻¹ Σ p_k M_k o_k.

    Derivation. A local step is y ← y − ηA_k(y − o_k), i.e. y − o_k ← (I − ηA_k)(y − o_k), so
    after τ steps from w, y_τ = o_k + (I − ηA_k)^τ (w − o_k) and the client's update is

        Δ_k = y_τ − w = −M_k (w − o_k),    M_k = I − (I − ηA_k)^τ.

    The server moves by server_lr · Σ p_k Δ_k, so it stands still exactly where
    Σ p_k M_k (w − o_k) = 0, which gives the formula (whatever server_lr is). Each M_k is a
    polynomial in A_k, hence symmetric with eigenvalues 1 − (1 − ηλ)^τ; these lie in (0, 2) when
    ηλ < 2, so with server_lr ≤ 1 FedAvg converges to this point, by a factor
    ‖I − server_lr · Σ p_k M_k‖ per round.

    For τ = 1, M_k = ηA_k and the point is the true optimum w*. For τ > 1 the eigenvalues
    1 − (1 − ηλ)^τ are no longer proportional to λ: flat directions (small λ) gain weight, and as
    τ → ∞ every M_k → I, so the point slides towards the plain average Σ p_k o_k of the optima.
    Only identical curvatures (A_k = A for all k) keep it at w* for every τ.

    With one τ_k per client (``local_steps`` a sequence of K ints) the derivation is the same
    with M_k = I − (I − ηA_k)^τ_k. Then FedAvg misses w* even as η → 0 (unless the clients are
    identical): M_k ≈ τ_k ηA_k, so the point tends to :func:`surrogate_optimum`, the optimum of
    Σ p_k τ_k F_k, in which the clients that take more steps weigh more.

    Example:
        >>> problem = QuadraticProblem([np.diag([1.0, 1.0]), np.diag([3.0, 1.0])], [[0.0, 0.0], [4.0, 2.0]])
        >>> fedavg_fixed_point(problem, local_steps=1, lr=0.1).round(12).tolist()  # = w*
        [3.0, 1.0]
        >>> fedavg_fixed_point(problem, local_steps=1000, lr=0.1).round(12).tolist()  # mean of o_k
        [2.0, 1.0]
        >>> fedavg_fixed_point(problem, local_steps=[1, 3], lr=1e-6).round(4).tolist()  # η → 0
        [3.6, 1.5]
    """
    local_steps, lr, _, _ = _check_steps(problem, local_steps, lr, 0.0, 1.0)
    return _weighted_solve(problem, _fedavg_matrices(problem, local_steps, lr), "FedAvg")


def fedprox_fixed_point(
    problem: QuadraticProblem,
    local_steps: int | Sequence[int] = 10,
    lr: float = 0.1,
    mu: float = 0.1,
) -> np.ndarray:
    """Where FedProx stops: (Σ p_k N_k)⁻¹ Σ p_k N_k o_k, N_k = (I − (I − η(A_k + μI))^τ)(A_k + μI)⁻¹A_k.

    Derivation. The local gradient A_k(y − o_k) + μ(y − w) equals (A_k + μI)(y − z_k) with
    z_k = (A_k + μI)⁻¹(A_k o_k + μw), the minimiser of F_k(y) + μ/2 ‖y − w‖². So τ local steps
    give y_τ = z_k + (I − η(A_k + μI))^τ (w − z_k), and since
    w − z_k = (A_k + μI)⁻¹ A_k (w − o_k), the client's update is Δ_k = −N_k (w − o_k). The server
    stands still where Σ p_k N_k (w − o_k) = 0. With one τ_k per client, N_k takes its own τ_k.

    μ = 0 gives N_k = M_k (FedAvg). With many local steps N_k → (A_k + μI)⁻¹A_k, whose
    eigenvalues λ/(λ + μ) go from 1 (μ = 0: the plain average of the optima) towards λ/μ
    (μ → ∞: proportional to A_k, the true optimum), so the error shrinks as μ grows — while each
    round moves less, so convergence slows. The proximal term is no cure-all, though: with
    τ = 2, N_k = ηA_k(2I − η(A_k + μI)), which is *less* proportional to A_k the larger μ is,
    so there FedProx's error grows with μ. Only SCAFFOLD removes the error.

    Example:
        >>> problem = make_problem()
        >>> bool(np.allclose(fedprox_fixed_point(problem, 10, 0.1, mu=0.0), fedavg_fixed_point(problem, 10, 0.1)))
        True
        >>> gap = lambda mu: np.linalg.norm(fedprox_fixed_point(problem, 10, 0.1, mu) - problem.global_optimum())
        >>> bool(gap(2.0) < gap(0.5) < gap(0.0))
        True
    """
    local_steps, lr, mu, _ = _check_steps(problem, local_steps, lr, mu, 1.0)
    eye = np.eye(2)
    prox = problem.curvatures + mu * eye
    steps = _per_client(local_steps, problem.num_clients)
    m = (eye - _power(eye - lr * prox, steps)) @ np.linalg.solve(prox, problem.curvatures)
    return _weighted_solve(problem, m, "FedProx")


def fednova_fixed_point(
    problem: QuadraticProblem, local_steps: int | Sequence[int] = 10, lr: float = 0.1
) -> np.ndarray:
    """Where FedNova stops: (Σ p_k M_k/τ_k)⁻¹ Σ p_k (M_k/τ_k) o_k, M_k = I − (I − ηA_k)^τ_k.

    Derivation. The clients walk as in FedAvg, so Δ_k = −M_k (w − o_k) (see
    :func:`fedavg_fixed_point`). The server moves by server_lr · τ_eff Σ p_k Δ_k / τ_k and
    τ_eff = Σ p_k τ_k > 0, so it stands still exactly where Σ p_k (M_k/τ_k)(w − o_k) = 0, which
    gives the formula (whatever server_lr is).

    What the normalisation fixes, and what not. Expanding the power,
    M_k/τ_k = ηA_k − (τ_k − 1)/2 · η²A_k² + …, so M_k/τ_k is proportional to ηA_k only to first
    order in η:

    * as η → 0 the point tends to w* (the error shrinks like η · τ_max), while FedAvg's tends to
      :func:`surrogate_optimum`, which is not w* when the τ_k differ: FedNova removes the
      *objective inconsistency*;
    * for η > 0 it keeps the drift of the local steps: with the same τ on every client it *is*
      FedAvg's point (the 1/τ cancels), so it equals w* exactly only when every τ_k = 1 (or the
      clients are identical).

    On ``make_problem()`` (3 clients, seed 0) with τ_k = (1, 5, 20), the distances of the fixed
    points to w* are (the surrogate optimum lies 0.695 from w*):

    =====  =======  ======  ==========================
    η      FedNova  FedAvg  FedAvg from the surrogate
    =====  =======  ======  ==========================
    0.1    0.600    0.565   0.361
    0.01   0.0534   0.676   0.0305
    0.001  0.00525  0.693   0.00295
    =====  =======  ======  ==========================

    FedNova's error falls tenfold with η (about 5.3 η here, i.e. 0.27 η τ_max), while FedAvg's
    settles at the surrogate's 0.695. At η = 0.1, where η τ_max = 2 is far from small, FedNova
    is *no better* than FedAvg: the first-order argument does not hold there, and both points
    are dominated by the drift of the long local runs. SCAFFOLD reaches w* at every η.

    Example:
        >>> problem = make_problem()
        >>> w_star = problem.global_optimum()
        >>> [round(float(np.linalg.norm(fednova_fixed_point(problem, [1, 5, 20], lr) - w_star)), 4)
        ...  for lr in (0.01, 0.001)]
        [0.0534, 0.0053]
        >>> same_tau = fednova_fixed_point(problem, 10, 0.1), fedavg_fixed_point(problem, 10, 0.1)
        >>> bool(np.allclose(*same_tau))  # the same τ everywhere: FedAvg's point
        True
    """
    local_steps, lr, _, _ = _check_steps(problem, local_steps, lr, 0.0, 1.0)
    steps = _per_client(local_steps, problem.num_clients)
    m = _fedavg_matrices(problem, local_steps, lr) / steps[:, None, None]
    return _weighted_solve(problem, m, "FedNova")


def surrogate_optimum(
    problem: QuadraticProblem, local_steps: int | Sequence[int] = 10
) -> np.ndarray:
    """The optimum of FedAvg's surrogate Σ_k p_k τ_k F_k: (Σ p_k τ_k A_k)⁻¹ Σ p_k τ_k A_k o_k.

    Where FedAvg goes as η → 0 when the clients take different numbers of local steps τ_k
    (Wang et al. 2020's *objective inconsistency*). Since
    M_k = I − (I − ηA_k)^τ_k = τ_k ηA_k (I + O(η τ_k)), the common factor η cancels in
    :func:`fedavg_fixed_point`'s (Σ p_k M_k)⁻¹ Σ p_k M_k o_k, which tends to this point: the
    minimiser of f with each client's weight p_k replaced by p_k τ_k (renormalised). It is w*
    when every client takes the same τ, or when the clients are identical; otherwise FedAvg
    solves the wrong problem even with a vanishing step size, and :func:`fednova_fixed_point`
    tends to w* instead.

    Example:
        >>> problem = QuadraticProblem(
        ...     [np.diag([1.0, 1.0]), np.diag([3.0, 1.0])], [[0.0, 0.0], [4.0, 2.0]]
        ... )
        >>> surrogate_optimum(problem, [1, 3]).tolist()  # x: 3·3·4/(1 + 9); y: 3·2/(1 + 3)
        [3.6, 1.5]
        >>> bool(np.allclose(surrogate_optimum(problem, 7), problem.global_optimum()))
        True
    """
    _check_problem(problem)
    steps = _per_client(_check_local_steps(local_steps, problem.num_clients), problem.num_clients)
    return _weighted_solve(problem, steps[:, None, None] * problem.curvatures, "the surrogate")


def scaffold_fixed_point(
    problem: QuadraticProblem, local_steps: int | Sequence[int] = 10, lr: float = 0.1
) -> np.ndarray:
    """Where SCAFFOLD stops: the true optimum w*, for every τ (one or one per client) and η.

    Derivation. At a fixed point no variate moves, so (w − y_τ,k)/(τ_k η) = c for every k; the
    server's step Σ p_k (y_τ,k − w) = −ηc Σ p_k τ_k must be zero, so c = 0 and every client ends
    where it began, y_τ,k = w. A corrected local step y ← y − η(A_k(y − o_k) − c_k) returns to
    its start only if that start is its fixed point: c_k = A_k(w − o_k) = ∇F_k(w). Then
    ∇f(w) = Σ p_k ∇F_k(w) = Σ p_k c_k = c = 0, i.e. w = w*. (Whether the rounds *reach* it depends
    on η and τ, as for any iteration; the local bound of :func:`max_stable_lr` is necessary.)

    Example:
        >>> problem = make_problem()
        >>> bool(np.array_equal(scaffold_fixed_point(problem, 50, 0.1), problem.global_optimum()))
        True
    """
    _check_steps(problem, local_steps, lr, 0.0, 1.0)
    return problem.global_optimum()


def fixed_point(
    problem: QuadraticProblem,
    algorithm: str = "fedavg",
    local_steps: int | Sequence[int] = 10,
    lr: float = 0.1,
    mu: float = 0.0,
) -> np.ndarray:
    """The closed-form fixed point of ``algorithm`` (one of :data:`ALL_ALGORITHMS`).

    Example:
        >>> problem = make_problem()
        >>> bool(np.array_equal(fixed_point(problem, "fedavg", 10, 0.1), fedavg_fixed_point(problem, 10, 0.1)))
        True
    """
    check_choice("algorithm", algorithm, ALL_ALGORITHMS)
    if algorithm == "fedavg":
        return fedavg_fixed_point(problem, local_steps, lr)
    if algorithm == "fedprox":
        return fedprox_fixed_point(problem, local_steps, lr, mu)
    if algorithm == "fednova":
        return fednova_fixed_point(problem, local_steps, lr)
    return scaffold_fixed_point(problem, local_steps, lr)


# -- many rounds ---------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class PlaygroundRun:
    """A whole run on a :class:`QuadraticProblem`: its settings and every number it produced.

    Rounds are numbered 1 to R as in a :class:`~fedlab.history.History`: round r broadcasts
    ``path[r - 1]``, its clients move along ``trajectories[r - 1]`` and it ends at ``path[r]``.

    Attributes:
        problem: the problem run on.
        algorithm: ``"fedavg"``, ``"fedprox"``, ``"scaffold"`` or ``"fednova"``.
        local_steps: τ, local GD steps per round: an int, or a tuple of τ_k per client.
        lr: η, the clients' step size.
        mu: FedProx's proximal weight μ (0 for the others).
        server_lr: the server's step size η_g.
        path: the global model before round 1 and after each round, shape [R + 1, 2].
        trajectories: each round's client iterates, shape [R, K, τ_max + 1, 2] (a client that
            has taken its τ_k steps stays at its last iterate).
        updates: each round's aggregated update Δ = Σ p_k (y_τ,k − w) (FedNova's:
            τ_eff Σ p_k (y_τ,k − w) / τ_k), shape [R, 2].
        loss: f(w) along ``path``, shape [R + 1].
        distance: ‖w − w*‖ along ``path``, shape [R + 1].
        optimum: the true optimum w*, shape [2].
        fixed_point: the algorithm's closed-form fixed point, shape [2].
        client_controls: SCAFFOLD's c_k before round 1 and after each round, [R + 1, K, 2]
            (``None`` for the others).
        server_controls: SCAFFOLD's c likewise, [R + 1, 2] (``None`` for the others).

    Example:
        >>> result = run(make_problem(), "fedavg", local_steps=10, lr=0.1, num_rounds=200)
        >>> result.path.shape, result.trajectories.shape
        ((201, 2), (200, 3, 11, 2))
        >>> bool(np.allclose(result.path[-1], result.fixed_point)), float(result.distance[-1]) > 0.1
        (True, True)
    """

    problem: QuadraticProblem
    algorithm: str
    local_steps: int | tuple[int, ...]
    lr: float
    mu: float
    server_lr: float
    path: np.ndarray
    trajectories: np.ndarray
    updates: np.ndarray
    loss: np.ndarray
    distance: np.ndarray
    optimum: np.ndarray
    fixed_point: np.ndarray
    client_controls: np.ndarray | None = None
    server_controls: np.ndarray | None = None

    @property
    def num_rounds(self) -> int:
        """R, the number of rounds run."""
        return len(self.updates)

    @property
    def name(self) -> str:
        """The algorithm as written in titles: ``"FedAvg"``, ``"SCAFFOLD"``, ``"FedNova"``..."""
        return NAMES[self.algorithm]

    @property
    def label(self) -> str:
        """The algorithm and its settings, e.g. ``"FedProx (τ=10, η=0.1, μ=1)"``.

        With one τ_k per client: ``"FedNova (τ=(1, 5, 20), η=0.01)"``.
        """
        mu = f", μ={self.mu:g}" if self.algorithm == "fedprox" else ""
        return f"{self.name} (τ={self.local_steps}, η={self.lr:g}{mu})"

    @property
    def diverged(self) -> bool:
        """Whether the global model left the finite numbers (a step size too large)."""
        return not bool(np.all(np.isfinite(self.path)))

    @property
    def excess_loss(self) -> np.ndarray:
        """f(w) − f(w*) along ``path``, shape [R + 1] (≥ 0)."""
        return self.loss - self.problem.loss(self.optimum)

    @property
    def client_drift(self) -> np.ndarray:
        """‖y_τ,k − w‖, how far each client moved from the broadcast point, shape [R, K]."""
        return np.linalg.norm(self.trajectories[:, :, -1] - self.path[:-1, None], axis=-1)


def run(
    problem: QuadraticProblem,
    algorithm: str = "fedavg",
    local_steps: int | Sequence[int] = 10,
    lr: float = 0.1,
    mu: float = 0.0,
    num_rounds: int = 50,
    server_lr: float = 1.0,
    start: ArrayLike = DEFAULT_START,
) -> PlaygroundRun:
    """Run ``num_rounds`` rounds of ``algorithm`` from ``start`` and keep every number.

    ``algorithm`` is one of :data:`ALL_ALGORITHMS`. Each round does what :func:`fedavg_round` /
    :func:`fedprox_round` / :func:`scaffold_round` / :func:`fednova_round` do, with the same
    aggregation and server code; only the clients' local steps are computed
    in closed form, y_s = t_k + (I − η(A_k + μI))^s (w − t_k), so that a round costs the same
    for any τ (the tests check it against the step-by-step rounds). ``mu`` belongs to FedProx
    (the other algorithms need ``mu=0``). An ``lr`` at or above :func:`max_stable_lr` raises
    ValueError: the clients' own gradient descent would diverge. A run that diverges for
    another reason ends in inf/nan (see :attr:`PlaygroundRun.diverged`): a large ``server_lr``,
    or FedNova with very different τ_k, whose server step τ_eff/τ_k magnifies the update of a
    client that took few steps (τ_k = (1, 1, 100) at η = 0.1 on :func:`make_problem` does).

    ``local_steps`` is τ for every client or one τ_k per client (see :func:`local_trajectories`);
    the trajectories then have τ_max + 1 points per client and round.

    Example:
        >>> problem = make_problem()
        >>> fedavg = run(problem, "fedavg", local_steps=20, num_rounds=300)
        >>> scaffold = run(problem, "scaffold", local_steps=20, num_rounds=300)
        >>> f"FedAvg stops {fedavg.distance[-1]:.2f} from w*"
        'FedAvg stops 0.96 from w*'
        >>> bool(scaffold.distance[-1] < 1e-8)
        True
    """
    check_choice("algorithm", algorithm, ALL_ALGORITHMS)
    local_steps, lr, mu, server_lr = _check_steps(problem, local_steps, lr, mu, server_lr)
    num_rounds = check_int("num_rounds", num_rounds, low=0, high=MAX_ROUNDS)
    w = _point("start", start)
    if mu and algorithm != "fedprox":
        raise ValueError(
            f"mu is FedProx's proximal weight; algorithm={algorithm!r} does not use it (pass mu=0)"
        )
    _check_stable(problem, lr, mu)
    longest = int(np.max(local_steps))  # τ_max
    points = num_rounds * problem.num_clients * (longest + 1)
    if points > _MAX_TRAJECTORY_POINTS:
        raise ValueError(
            f"num_rounds × clients × (local_steps + 1) must be at most {_MAX_TRAJECTORY_POINTS:,} "
            f"(every local step is kept; the largest τ_k counts), got {points:,}; "
            "run fewer rounds or local steps"
        )
    k = problem.num_clients
    path = np.empty((num_rounds + 1, 2))
    trajectories = np.empty((num_rounds, k, longest + 1, 2))
    updates = np.empty((num_rounds, 2))
    scaffold = algorithm == "scaffold"
    controls = np.zeros((num_rounds + 1, k, 2)) if scaffold else None
    server_controls = np.zeros((num_rounds + 1, 2)) if scaffold else None
    local = _ClosedFormLocal(problem, local_steps, lr, mu)
    path[0] = w
    with np.errstate(over="ignore", invalid="ignore"):  # a diverging run ends in inf/nan
        for r in range(num_rounds):
            if scaffold:
                step = _scaffold(problem, w, controls[r], server_controls[r], local, server_lr)
                controls[r + 1], server_controls[r + 1] = step.client_controls, step.server_control
            elif algorithm == "fednova":
                step = _fednova(problem, w, local, server_lr)
            else:
                step = _fedprox(problem, w, local, server_lr)
            trajectories[r], updates[r] = step.trajectories, step.update
            w = path[r + 1] = step.updated
        optimum = problem.global_optimum()
        loss = problem.loss(path)
        distance = np.linalg.norm(path - optimum, axis=-1)
    return PlaygroundRun(
        problem,
        algorithm,
        local_steps,
        lr,
        mu,
        server_lr,
        path,
        trajectories,
        updates,
        loss,
        distance,
        optimum,
        fixed_point(problem, algorithm, local_steps, lr, mu),
        controls,
        server_controls,
    )


def _check_stable(problem: QuadraticProblem, lr: float, mu: float) -> None:
    largest = problem.eigenvalues()[:, 1] + mu
    k = int(np.argmax(largest))
    if lr * largest[k] >= 2:
        plus_mu = " + μ" if mu else ""
        raise ValueError(
            f"lr = {lr:g} is too large: client {k}'s local gradient descent diverges "
            f"(lr · (λ_max(A_{k}){plus_mu}) = {lr * largest[k]:.3g} ≥ 2); "
            f"lr must be below {2 / largest[k]:.3g}"
        )


def compare(
    problem: QuadraticProblem,
    local_steps: int | Sequence[int] = 10,
    lr: float = 0.1,
    mu: float = 2.0,
    num_rounds: int = 50,
    server_lr: float = 1.0,
    start: ArrayLike = DEFAULT_START,
) -> tuple[PlaygroundRun, PlaygroundRun, PlaygroundRun]:
    """FedAvg, FedProx (with ``mu``) and SCAFFOLD on the same problem with the same settings.

    Example:
        >>> runs = compare(make_problem(), local_steps=10, num_rounds=100)
        >>> [r.name for r in runs]
        ['FedAvg', 'FedProx', 'SCAFFOLD']
        >>> fedavg, fedprox, scaffold = (r.distance[-1] for r in runs)
        >>> bool(scaffold < 1e-6 < fedprox < fedavg)
        True
    """
    settings = dict(
        local_steps=local_steps, lr=lr, num_rounds=num_rounds, server_lr=server_lr, start=start
    )
    return (
        run(problem, "fedavg", **settings),
        run(problem, "fedprox", mu=mu, **settings),
        run(problem, "scaffold", **settings),
    )


# -- plots ---------------------------------------------------------------------------------------
def loss_surface(
    problem: QuadraticProblem,
    xlim: tuple[float, float],
    ylim: tuple[float, float],
    resolution: int = 120,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """f on a ``resolution`` × ``resolution`` grid: the arrays X, Y and f(X, Y) a contour plot draws.

    Example:
        >>> problem = QuadraticProblem([np.diag([1.0, 0.25])], [[0.0, 0.0]])
        >>> x, y, z = loss_surface(problem, (-1, 1), (-1, 1), resolution=3)
        >>> z.tolist()  # ½ (x² + y²/4); a row per y, a column per x
        [[0.625, 0.125, 0.625], [0.5, 0.0, 0.5], [0.625, 0.125, 0.625]]
    """
    _check_problem(problem)
    resolution = check_int("resolution", resolution, low=2, high=2000)
    x, y = np.meshgrid(np.linspace(*xlim, resolution), np.linspace(*ylim, resolution))
    return x, y, problem.loss(np.stack([x, y], axis=-1))


def _round_index(result: PlaygroundRun, round_number: int | None) -> int | None:
    """The index into ``trajectories`` of round ``round_number`` (1 to R; None: the last)."""
    if result.num_rounds == 0:
        return None
    if round_number is None:
        return result.num_rounds - 1
    return check_int("round_number", round_number, low=1, high=result.num_rounds) - 1


def _shown_points(result: PlaygroundRun, round_number: int | None) -> np.ndarray:
    index = _round_index(result, round_number)
    parts = [result.path, result.problem.optima, result.optimum[None], result.fixed_point[None]]
    if index is not None:
        parts.append(result.trajectories[index].reshape(-1, 2))
    points = np.concatenate(parts)
    return points[np.all(np.isfinite(points), axis=1)]


def plot_extent(
    results: Sequence[PlaygroundRun], round_number: int | None = None, margin: float = 0.12
) -> tuple[tuple[float, float], tuple[float, float]]:
    """A square window (xlim, ylim) holding everything :func:`plot_run` draws for ``results``.

    Example:
        >>> xlim, ylim = plot_extent([run(make_problem(), num_rounds=5)])
        >>> bool(np.isclose(xlim[1] - xlim[0], ylim[1] - ylim[0]))
        True
    """
    points = np.concatenate([_shown_points(r, round_number) for r in results])
    low, high = points.min(axis=0), points.max(axis=0)
    center, half = (low + high) / 2, max((high - low).max() / 2, 0.5) * (1 + margin)
    return (center[0] - half, center[0] + half), (center[1] - half, center[1] + half)


def _client_colors(num_clients: int) -> list:
    cmap = plt.get_cmap("tab10")
    return [cmap(k % 10) for k in range(num_clients)]


def plot_run(
    result: PlaygroundRun,
    round_number: int | None = None,
    ax: Axes | None = None,
    extent: tuple[tuple[float, float], tuple[float, float]] | None = None,
    legend: bool = True,
    resolution: int = 120,
) -> Drawn:
    """The run on the loss landscape: where the clients pull, what the server makes of it.

    Draws the contours of f (levels of f − f(w*), spaced geometrically), each client's optimum
    (coloured dot), the path of the global model over the rounds (black), the clients' local
    trajectories in round ``round_number`` (1 to R, default the last) from the broadcast point,
    the aggregated step as an arrow, the true optimum w* (gold star) and the algorithm's
    closed-form fixed point (red ring). ``extent`` fixes the window (see :func:`plot_extent`).

    Returns a :class:`~fedlab.plot.Drawn` whose ``data`` holds ``path``, ``trajectories``
    ([K, τ + 1, 2] of the round shown), ``broadcast``, ``step_end``, ``client_optima``,
    ``optimum``, ``fixed_point``, ``levels`` and the grid (``grid_x``, ``grid_y``, ``loss_grid``).

    Example:
        >>> drawn = plot_run(run(make_problem(), num_rounds=20), round_number=1)
        >>> drawn.data["trajectories"].shape
        (3, 11, 2)
        >>> plt.close(drawn.fig)
    """
    if not isinstance(result, PlaygroundRun):
        raise TypeError(f"result must be a PlaygroundRun, got {type(result).__name__}")
    index = _round_index(result, round_number)
    if ax is None:
        fig, ax = new_figure(figsize=(4.6, 4.4), layout="constrained")
    fig = ax.figure
    problem = result.problem
    xlim, ylim = extent if extent is not None else plot_extent([result], round_number)
    grid_x, grid_y, grid = loss_surface(problem, xlim, ylim, resolution)
    floor = float(problem.loss(result.optimum))
    top = max(float((grid - floor).max()), 1e-12)
    levels = floor + top * np.geomspace(1e-3, 1.0, 12)
    ax.contour(grid_x, grid_y, grid, levels=levels, cmap="Blues_r", linewidths=0.8, alpha=0.7)
    colors = _client_colors(problem.num_clients)
    data: dict[str, np.ndarray] = {
        "grid_x": grid_x,
        "grid_y": grid_y,
        "loss_grid": grid,
        "levels": levels,
        "path": result.path,
        "client_optima": np.asarray(problem.optima),
        "optimum": result.optimum,
        "fixed_point": result.fixed_point,
    }
    ax.scatter(
        *problem.optima.T,
        s=60,
        c=colors,
        edgecolors="black",
        linewidths=0.8,
        zorder=4,
        label="client optima o_k",
    )
    ax.plot(*result.path.T, ".-", color="black", lw=1.0, ms=3, alpha=0.75, label="global model")
    ax.plot(*result.path[0], "s", color="black", ms=5)
    if index is not None:
        trajectories = result.trajectories[index]
        broadcast, step_end = result.path[index], result.path[index + 1]
        for k, trajectory in enumerate(trajectories):
            ax.plot(*trajectory.T, ".-", color=colors[k], lw=1.6, ms=3.5, alpha=0.9)
        ax.annotate(
            "",
            xy=step_end,
            xytext=broadcast,
            arrowprops={
                "arrowstyle": "-|>",
                "color": "black",
                "lw": 2.0,
                "shrinkA": 0,
                "shrinkB": 0,
            },
            zorder=5,
        )
        data.update(trajectories=trajectories, broadcast=broadcast, step_end=step_end)
        ax.plot([], [], "-", color="gray", lw=1.6, label=f"clients' local steps, round {index + 1}")
    ax.plot(
        *result.fixed_point,
        "o",
        ms=13,
        mfc="none",
        mec="tab:red",
        mew=2.0,
        label=f"{result.name} fixed point",
    )
    ax.plot(*result.optimum, "*", ms=16, color="gold", mec="black", mew=0.8, label="optimum w*")
    ax.set(xlim=xlim, ylim=ylim, aspect="equal", xlabel="w₁", ylabel="w₂")
    final = result.distance[-1]
    ax.set_title(f"{result.label}\n{result.num_rounds} rounds: ‖w − w*‖ = {final:.2g}", fontsize=10)
    if legend:
        ax.legend(fontsize="x-small", loc="best", framealpha=0.85)
    return Drawn(fig, (ax,), data)


def plot_distance(
    results: Sequence[PlaygroundRun], ax: Axes | None = None, legend: bool = True
) -> Drawn:
    """‖w − w*‖ per round on a log scale, one line per run, with its fixed point's distance dashed.

    FedAvg's line flattens at its fixed point's distance (the dashed line): more rounds do not
    help. SCAFFOLD's keeps falling to rounding error. ``data`` holds ``round`` and, per run,
    ``"<label>"`` (the distances) and ``"<label> fixed point"``.

    Example:
        >>> drawn = plot_distance(compare(make_problem(), num_rounds=30))
        >>> len(drawn.axes[0].lines)  # 3 runs + 2 dashed fixed points (SCAFFOLD's is 0)
        5
        >>> plt.close(drawn.fig)
    """
    if ax is None:
        fig, ax = new_figure(figsize=(4.6, 3.4), layout="constrained")
    fig = ax.figure
    data: dict[str, np.ndarray] = {}
    for result in results:
        rounds = np.arange(result.num_rounds + 1)
        data["round"] = rounds
        (line,) = ax.semilogy(rounds, result.distance, label=result.label)
        data[result.label] = result.distance
        gap = float(np.linalg.norm(result.fixed_point - result.optimum))
        if gap > 1e-12 * max(1.0, float(np.abs(result.optimum).max())):
            ax.axhline(gap, ls="--", lw=1.0, color=line.get_color(), label=f"_{result.label}")
            data[f"{result.label} fixed point"] = np.array(gap)
    ax.set(xlabel="round", ylabel="‖w − w*‖", title="Distance to the optimum")
    if legend and results:
        ax.legend(fontsize="x-small")
    return Drawn(fig, (ax,), data)


def plot_comparison(
    results: Sequence[PlaygroundRun],
    axes: Sequence[Axes] | None = None,
    round_number: int | None = None,
    distance: bool = True,
) -> Drawn:
    """Runs side by side on one shared window (e.g. :func:`compare`'s), plus their distances.

    One :func:`plot_run` panel per run, all with the same extent so that positions compare, and
    (``distance=True``) a last panel with :func:`plot_distance`. ``axes`` must then hold
    ``len(results) + 1`` axes. ``data`` holds each panel's data, keys prefixed ``"<name>/"``,
    and the distance panel's under ``"distance/"``.

    Example:
        >>> drawn = plot_comparison(compare(make_problem(), num_rounds=20))
        >>> len(drawn.axes), drawn.data["SCAFFOLD/path"].shape
        (4, (21, 2))
        >>> plt.close(drawn.fig)
    """
    results = list(results)
    if not results:
        raise ValueError("results must hold at least one PlaygroundRun")
    count = len(results) + bool(distance)
    if axes is None:
        fig, axes = new_figure(1, count, figsize=(4.3 * count, 4.4), layout="constrained")
    axes = list(np.atleast_1d(axes))
    if len(axes) != count:
        raise ValueError(f"axes must hold {count} axes for this plot, got {len(axes)}")
    extent = plot_extent(results, round_number)
    data: dict[str, np.ndarray] = {}
    for i, (result, ax) in enumerate(zip(results, axes, strict=False)):
        drawn = plot_run(result, round_number, ax=ax, extent=extent, legend=i == 0)
        data.update({f"{result.name}/{key}": value for key, value in drawn.data.items()})
    if distance:
        drawn = plot_distance(results, ax=axes[-1])
        data.update({f"distance/{key}": value for key, value in drawn.data.items()})
    return Drawn(axes[0].figure, tuple(axes), data)


def __getattr__(name: str):
    """``Playground``, the panel, lives in :mod:`fedlab.ui.playground`; imported on first use."""
    if name == "Playground":
        from fedlab.ui.playground import Playground

        return Playground
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ALGORITHMS",
    "ALL_ALGORITHMS",
    "DEFAULT_START",
    "NAMES",
    "Playground",  # noqa: F822 - the panel, from fedlab.ui.playground (__getattr__ above)
    "PlaygroundRun",
    "QuadraticProblem",
    "Round",
    "compare",
    "fedavg_fixed_point",
    "fedavg_round",
    "fednova_fixed_point",
    "fednova_round",
    "fedprox_fixed_point",
    "fedprox_round",
    "fixed_point",
    "local_trajectories",
    "loss_surface",
    "make_problem",
    "max_stable_lr",
    "plot_comparison",
    "plot_distance",
    "plot_extent",
    "plot_run",
    "run",
    "scaffold_fixed_point",
    "scaffold_round",
    "surrogate_optimum",
]
