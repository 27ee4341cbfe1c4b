"""Server optimisers (Reddi et al. 2021; Hsu et al. 2019): hand-checked updates, no in-place
changes, FedAvgM(momentum=0) == FedAvg, and engine == steps for each."""

import copy
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from fedlab import partition, steps
from fedlab.algorithms import (
    ALGORITHMS,
    Algorithm,
    FedAdagrad,
    FedAdam,
    FedAvg,
    FedAvgM,
    FedYogi,
    ServerAdagrad,
    ServerAdam,
    ServerMomentum,
    ServerSGD,
    ServerYogi,
)
from fedlab.engine import Simulation
from fedlab.models import FedModel

X0 = [1.0, -2.0]
DELTAS = [[2.0, -1.0], [0.5, 3.0], [-1.0, 0.0]]  # three rounds of aggregated updates


def run_steps(optimizer, num_steps=3):
    """Apply ``optimizer`` to DELTAS from X0; return the weights and states after each step."""
    weights = [np.array(X0, np.float32)]
    state = optimizer.init(weights)
    trace = []
    for delta in DELTAS[:num_steps]:
        weights, state = optimizer.apply(weights, [np.array(delta, np.float32)], state)
        trace.append((weights[0].astype(np.float64), state))
    return trace


def close(got, want):
    np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-7)


# -- hand-computed updates ---------------------------------------------------------------------


def test_momentum_by_hand():
    trace = run_steps(ServerMomentum(server_lr=0.5, momentum=0.8))
    # v1 = Δ1 = [2, -1]; x1 = x0 + 0.5 v1
    close(trace[0][0], [1.0 + 0.5 * 2.0, -2.0 + 0.5 * -1.0])
    # v2 = 0.8 v1 + Δ2 = [1.6 + 0.5, -0.8 + 3] = [2.1, 2.2]
    close(trace[1][1]["velocity"][0], [2.1, 2.2])
    close(trace[1][0], [2.0 + 0.5 * 2.1, -2.5 + 0.5 * 2.2])
    # v3 = 0.8 v2 + Δ3 = [1.68 - 1, 1.76 + 0] = [0.68, 1.76]
    close(trace[2][1]["velocity"][0], [0.68, 1.76])
    close(trace[2][0], [3.05 + 0.5 * 0.68, -1.4 + 0.5 * 1.76])


def test_nesterov_momentum_by_hand():
    trace = run_steps(ServerMomentum(server_lr=0.5, momentum=0.8, nesterov=True))
    # v1 = [2, -1]; x1 = x0 + 0.5 (0.8 v1 + Δ1) = x0 + 0.5 [3.6, -1.8]
    close(trace[0][0], [1.0 + 0.5 * 3.6, -2.0 + 0.5 * -1.8])
    # v2 = [2.1, 2.2]; x2 = x1 + 0.5 (0.8 v2 + Δ2) = x1 + 0.5 [1.68 + 0.5, 1.76 + 3]
    close(trace[1][0], [2.8 + 0.5 * 2.18, -2.9 + 0.5 * 4.76])
    # v3 = [0.68, 1.76]; x3 = x2 + 0.5 (0.8 v3 + Δ3) = x2 + 0.5 [0.544 - 1, 1.408]
    close(trace[2][0], [3.89 + 0.5 * -0.456, -0.52 + 0.5 * 1.408])


def test_adam_by_hand():
    # η = 0.1, β1 = 0.5, β2 = 0.75, τ = 0.5; m starts at 0, v at τ² = 0.25; no bias correction
    trace = run_steps(ServerAdam(server_lr=0.1, beta1=0.5, beta2=0.75, tau=0.5))
    m1 = [0.5 * 2.0, 0.5 * -1.0]
    v1 = [0.75 * 0.25 + 0.25 * 4.0, 0.75 * 0.25 + 0.25 * 1.0]
    x1 = [X0[i] + 0.1 * m1[i] / (math.sqrt(v1[i]) + 0.5) for i in range(2)]
    close(trace[0][1]["m"][0], m1)
    close(trace[0][1]["v"][0], v1)
    close(trace[0][0], x1)
    m2 = [0.5 * m1[0] + 0.5 * 0.5, 0.5 * m1[1] + 0.5 * 3.0]
    v2 = [0.75 * v1[0] + 0.25 * 0.25, 0.75 * v1[1] + 0.25 * 9.0]
    x2 = [x1[i] + 0.1 * m2[i] / (math.sqrt(v2[i]) + 0.5) for i in range(2)]
    close(trace[1][0], x2)
    m3 = [0.5 * m2[0] + 0.5 * -1.0, 0.5 * m2[1] + 0.5 * 0.0]
    v3 = [0.75 * v2[0] + 0.25 * 1.0, 0.75 * v2[1] + 0.25 * 0.0]
    close(trace[2][1]["v"][0], v3)
    close(trace[2][0], [x2[i] + 0.1 * m3[i] / (math.sqrt(v3[i]) + 0.5) for i in range(2)])


def test_yogi_by_hand():
    # v ← v − (1 − β2) Δ² sign(v − Δ²), with 1 − β2 = 0.25 and v0 = τ² = 0.25
    trace = run_steps(ServerYogi(server_lr=0.1, beta1=0.5, beta2=0.75, tau=0.5))
    v1 = [0.25 + 0.25 * 4.0, 0.25 + 0.25 * 1.0]  # sign(0.25 − 4) = sign(0.25 − 1) = −1
    m1 = [1.0, -0.5]
    x1 = [X0[i] + 0.1 * m1[i] / (math.sqrt(v1[i]) + 0.5) for i in range(2)]
    close(trace[0][1]["v"][0], v1)  # [1.25, 0.5]
    close(trace[0][0], x1)
    # Δ2 = [0.5, 3]: v1[0] = 1.25 > 0.25 so v shrinks; v1[1] = 0.5 < 9 so v grows
    v2 = [1.25 - 0.25 * 0.25, 0.5 + 0.25 * 9.0]
    m2 = [0.5 * 1.0 + 0.5 * 0.5, 0.5 * -0.5 + 0.5 * 3.0]
    x2 = [x1[i] + 0.1 * m2[i] / (math.sqrt(v2[i]) + 0.5) for i in range(2)]
    close(trace[1][1]["v"][0], v2)
    close(trace[1][0], x2)
    # Δ3 = [-1, 0]: v2[0] = 1.1875 > 1 shrinks by 0.25; Δ² = 0 leaves v2[1] as it is
    v3 = [1.1875 - 0.25 * 1.0, 2.75]
    m3 = [0.5 * m2[0] - 0.5, 0.5 * m2[1]]
    close(trace[2][1]["v"][0], v3)
    close(trace[2][0], [x2[i] + 0.1 * m3[i] / (math.sqrt(v3[i]) + 0.5) for i in range(2)])


def test_yogi_and_adam_differ_only_in_v():
    adam = run_steps(ServerAdam(0.1, 0.5, 0.75, 0.5))
    yogi = run_steps(ServerYogi(0.1, 0.5, 0.75, 0.5))
    for (_, a), (_, y) in zip(adam, yogi, strict=True):
        close(a["m"][0], y["m"][0])
    assert not np.allclose(adam[0][1]["v"][0], yogi[0][1]["v"][0])


def test_adagrad_by_hand():
    # v ← v + Δ², starting at τ² = 0.25
    trace = run_steps(ServerAdagrad(server_lr=0.1, beta1=0.5, tau=0.5))
    v1 = [0.25 + 4.0, 0.25 + 1.0]
    m1 = [1.0, -0.5]
    x1 = [X0[i] + 0.1 * m1[i] / (math.sqrt(v1[i]) + 0.5) for i in range(2)]
    close(trace[0][0], x1)
    v2 = [v1[0] + 0.25, v1[1] + 9.0]
    m2 = [0.75, 1.25]
    x2 = [x1[i] + 0.1 * m2[i] / (math.sqrt(v2[i]) + 0.5) for i in range(2)]
    close(trace[1][1]["v"][0], v2)
    close(trace[1][0], x2)
    v3 = [v2[0] + 1.0, v2[1]]
    m3 = [0.375 - 0.5, 0.625]
    close(trace[2][1]["v"][0], v3)
    close(trace[2][1]["m"][0], m3)
    close(trace[2][0], [x2[i] + 0.1 * m3[i] / (math.sqrt(v3[i]) + 0.5) for i in range(2)])


def test_adaptive_step_is_bounded_by_server_lr_over_tau():
    """|x⁺ − x| = η |m| / (√v + τ) ≤ η |m| / τ, and ≈ η (1 − β1)/√(1 − β2) for a first big Δ."""
    opt = ServerAdam(server_lr=0.01, beta1=0.9, beta2=0.99, tau=1e-3)
    w, _ = opt.apply(
        [np.zeros(3, np.float32)], [np.array([1e3, -1.0, 1e-9])], opt.init([np.zeros(3)])
    )
    # m = 0.1 Δ, v = 0.99 τ² + 0.01 Δ²: a huge Δ moves by ≈ η, whatever its size
    np.testing.assert_allclose(
        w[0][0], 0.01 * 100.0 / (math.sqrt(0.99e-6 + 0.01 * 1e6) + 1e-3), rtol=1e-6
    )
    np.testing.assert_allclose(w[0][0], 0.01, rtol=1e-5)
    np.testing.assert_allclose(w[0][1], -0.01 * 0.1 / (math.sqrt(0.99e-6 + 0.01) + 1e-3), rtol=1e-6)
    assert abs(w[0][2]) <= 0.01 * 0.1 * 1e-9 / 1e-3


# -- state is never changed in place -------------------------------------------------------------

OPTIMIZERS = [
    ServerSGD(0.5),
    ServerMomentum(0.5, 0.9),
    ServerMomentum(0.5, 0.9, nesterov=True),
    ServerAdam(0.1, 0.9, 0.99, 1e-3),
    ServerYogi(0.1, 0.9, 0.99, 1e-3),
    ServerAdagrad(0.1, 0.9, 1e-3),
]


@pytest.mark.parametrize("optimizer", OPTIMIZERS, ids=lambda o: type(o).__name__)
def test_apply_does_not_mutate_its_arguments(optimizer):
    weights = [np.array([1.0, 2.0], np.float32), np.array([[3.0]], np.float32)]
    delta = [np.array([0.5, -0.5], np.float32), np.array([[1.0]], np.float32)]
    state = optimizer.init(weights)
    state, _ = optimizer.apply(weights, delta, state)[1], None  # a non-trivial state
    before = copy.deepcopy((weights, delta, state))
    new_weights, new_state = optimizer.apply(weights, delta, state)
    for got, want in zip((weights, delta), before[:2], strict=True):
        for a, b in zip(got, want, strict=True):
            np.testing.assert_array_equal(a, b)
    assert state.keys() == before[2].keys()
    for key in state:
        for a, b in zip(state[key], before[2][key], strict=True):
            np.testing.assert_array_equal(a, b)
    assert all(n.dtype == np.float32 for n in new_weights)
    assert all(n is not w for n, w in zip(new_weights, weights, strict=True))
    assert not np.array_equal(new_weights[0], weights[0])


@settings(max_examples=40, deadline=None)
@given(
    delta=arrays(np.float32, 5, elements=st.floats(-1e3, 1e3, width=32)),
    server_lr=st.floats(1e-3, 10.0),
    nesterov=st.booleans(),
)
def test_zero_momentum_is_exactly_server_sgd(delta, server_lr, nesterov):
    weights = [np.linspace(-1, 1, 5, dtype=np.float32)]
    momentum = ServerMomentum(server_lr, momentum=0.0, nesterov=nesterov)
    state = momentum.init(weights)
    sgd_w = weights
    for _ in range(3):  # several rounds: the velocity must not leak in
        weights, state = momentum.apply(weights, [delta], state)
        sgd_w, _ = ServerSGD(server_lr).apply(sgd_w, [delta], {})
        np.testing.assert_array_equal(weights[0], sgd_w[0])


# -- arguments ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda: ServerMomentum(server_lr=0), ValueError, r"server_lr must be .* \(0, inf\)"),
        (lambda: ServerMomentum(momentum=1.0), ValueError, r"momentum must be .* \[0, 1\)"),
        (lambda: ServerMomentum(momentum=-0.1), ValueError, r"momentum must be .* \[0, 1\)"),
        (lambda: ServerMomentum(nesterov="yes"), TypeError, "nesterov must be True or False"),
        (lambda: ServerAdam(beta1=1.0), ValueError, r"beta1 must be .* \[0, 1\)"),
        (lambda: ServerAdam(beta2=1.5), ValueError, r"beta2 must be .* \[0, 1\)"),
        (lambda: ServerYogi(beta2=-0.5), ValueError, r"beta2 must be .* \[0, 1\)"),
        (lambda: ServerYogi(tau=0.0), ValueError, r"tau must be .* \(0, inf\)"),
        (lambda: ServerAdagrad(tau=-1e-3), ValueError, r"tau must be .* \(0, inf\)"),
        (lambda: ServerAdagrad(server_lr=float("nan")), ValueError, "server_lr"),
        (lambda: ServerAdam(tau="small"), TypeError, "tau must be a number"),
        (lambda: FedAvgM(momentum=1), ValueError, "momentum"),
        (lambda: FedAvgM(client_lr=0), ValueError, "client_lr"),
        (lambda: FedAdam(beta2=1), ValueError, "beta2"),
        (lambda: FedYogi(tau=0), ValueError, "tau"),
        (lambda: FedYogi(local_epochs=0), ValueError, "local_epochs"),
        (lambda: FedAdagrad(beta1=-1), ValueError, "beta1"),
        (lambda: FedAdagrad(batch_size=2.5), TypeError, "batch_size"),
        (lambda: Algorithm(server_optimizer="adam"), TypeError, "server_optimizer must be"),
    ],
)
def test_bad_arguments_are_named_with_their_range(make, error, match):
    with pytest.raises(error, match=match):
        make()


@settings(max_examples=60, deadline=None)
@given(beta=st.floats(allow_nan=True, allow_infinity=True))
def test_beta_accepted_exactly_in_zero_to_one(beta):
    valid = 0.0 <= beta < 1.0
    for make in (
        lambda: ServerAdam(beta1=beta),
        lambda: ServerAdam(beta2=beta),
        lambda: ServerYogi(beta2=beta),
        lambda: ServerAdagrad(beta1=beta),
        lambda: ServerMomentum(momentum=beta),
    ):
        if valid:
            make()
        else:
            with pytest.raises(ValueError):
                make()


def test_configs_keep_the_old_keys_and_save_the_optimiser():
    base = {"name", "local_epochs", "batch_size", "client_lr", "server_lr"}
    assert FedAvgM(server_lr=0.5, momentum=0.7, nesterov=True).config()["server_optimizer"] == {
        "name": "ServerMomentum",
        "server_lr": 0.5,
        "momentum": 0.7,
        "nesterov": True,
    }
    assert FedAdam().config() == {
        "name": "FedAdam",
        "local_epochs": 1,
        "batch_size": 20,
        "client_lr": 0.1,
        "server_lr": 0.01,
        "server_optimizer": {
            "name": "ServerAdam",
            "server_lr": 0.01,
            "beta1": 0.9,
            "beta2": 0.99,
            "tau": 1e-3,
        },
    }
    assert FedYogi(beta2=0.5).config()["server_optimizer"]["beta2"] == 0.5
    assert FedAdagrad(tau=0.1).config()["server_optimizer"] == {
        "name": "ServerAdagrad",
        "server_lr": 0.01,
        "beta1": 0.9,
        "tau": 0.1,
    }
    for name in ("fedavgm", "fedadam", "fedyogi", "fedadagrad"):
        config = ALGORITHMS[name]().config()
        assert base <= config.keys() and config["name"].lower() == name
    assert "server_optimizer" not in FedAvg().config()  # unchanged for plain SGD


# -- through the engine -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def uneven_split(digits):
    order = np.random.default_rng(1).permutation(digits.num_train)[:240]
    return partition.ClientSplit.from_indices(
        np.split(order, np.cumsum([20, 60, 35, 90])), digits.y_train, scheme="uneven"
    )


def mlp():
    return FedModel(num_classes=10, hidden_units=16)


def rounds_without_time(history) -> str:
    """Every number of every round except wall time, as JSON text (NaN == NaN, exact floats)."""
    rounds = history.to_dict()["rounds"]
    for r in rounds:
        r.pop("wall_time")
    return json.dumps(rounds, sort_keys=True)


def test_fedavgm_with_zero_momentum_is_fedavg_bit_for_bit(digits, uneven_split):
    runs = []
    for algorithm in (
        FedAvg(batch_size=16, client_lr=0.2, server_lr=0.8),
        FedAvgM(batch_size=16, client_lr=0.2, server_lr=0.8, momentum=0.0),
    ):
        sim = Simulation(algorithm, mlp, digits, uneven_split, clients_per_round=3, seed=4)
        sim.run(3, progress=False)
        runs.append(sim)
    assert rounds_without_time(runs[0].history) == rounds_without_time(runs[1].history)
    for a, b in zip(runs[0].weights, runs[1].weights, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "algorithm",
    [
        FedAvgM(local_epochs=2, batch_size=16, client_lr=0.1, server_lr=0.5, momentum=0.9),
        FedAvgM(batch_size=16, client_lr=0.1, server_lr=0.5, momentum=0.5, nesterov=True),
        FedAdam(batch_size=16, client_lr=0.1, server_lr=0.03),
        FedYogi(batch_size=16, client_lr=0.1, server_lr=0.03, tau=1e-2),
        FedAdagrad(batch_size=16, client_lr=0.1, server_lr=0.03),
    ],
    ids=["fedavgm", "fedavgm-nesterov", "fedadam", "fedyogi", "fedadagrad"],
)
def test_engine_equals_steps(digits, uneven_split, algorithm):
    sim = Simulation(algorithm, mlp, digits, uneven_split, clients_per_round=3, seed=5)
    model, weights = steps.initialize(mlp, digits.x_train, seed=5)
    server_state = None
    for round_num in (1, 2, 3):
        by_hand = steps.run_round(
            model, weights, digits, uneven_split, algorithm, 3, round_num, 5, server_state
        )
        weights, server_state = by_hand.weights, by_hand.server_state
        sim.step()
        for got, want in zip(sim.weights, weights, strict=True):
            np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5)
        assert sim.server_state.keys() == server_state.keys()
        for key in server_state:
            for got, want in zip(sim.server_state[key], server_state[key], strict=True):
                np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
    start = steps.initialize(mlp, digits.x_train, seed=5)[1]
    assert not np.allclose(weights[0], start[0])  # the server really moved the model


def test_fedadam_defaults_learn_digits(digits):
    split = partition.iid(digits.y_train, num_clients=10, seed=0)
    sim = Simulation(FedAdam(), lambda: FedModel(10), digits, split, seed=0)
    history = sim.run(8, progress=False)
    assert np.all(np.diff(history.train_loss) < 0)
    assert history.train_loss[-1] < 0.6 * history.train_loss[0]
    assert history.test_accuracy[-1] > 0.7


def test_numpy_scalars_are_stored_as_plain_python_values():
    """Settings often come from NumPy (grids, sliders); configs must still save as JSON."""
    algorithm = FedAvgM(server_lr=np.float32(0.5), momentum=np.float64(0.25), nesterov=np.bool_(1))
    assert json.loads(json.dumps(algorithm.config()))["server_optimizer"] == {
        "name": "ServerMomentum",
        "server_lr": 0.5,
        "momentum": 0.25,
        "nesterov": True,
    }
    adam = ServerAdam(np.float32(0.25), np.float32(0.5), np.float64(0.75), np.float32(0.125))
    assert json.dumps(adam.config()) == json.dumps(
        {"name": "ServerAdam", "server_lr": 0.25, "beta1": 0.5, "beta2": 0.75, "tau": 0.125}
    )
