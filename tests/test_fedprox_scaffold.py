"""FedProx (Li et al. 2020) and SCAFFOLD (Karimireddy et al. 2020): hand-checked hooks, the
reference identities (μ = 0 is FedAvg; one full-batch local step is FedSGD) and engine == steps."""

import json

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st

import fedlab
from fedlab import data, partition, steps
from fedlab.algorithms import (
    ALGORITHMS,
    ControlVariateServer,
    FedAvg,
    FedProx,
    FedSGD,
    ProxAlgorithm,
    Scaffold,
    ScaffoldAlgorithm,
    ServerAdam,
    ServerSGD,
)
from fedlab.engine import Simulation
from fedlab.models import FedModel


@pytest.fixture(scope="module")
def uneven_split(digits):
    """Five clients of different sizes, so clients take different numbers of local steps K."""
    order = np.random.default_rng(0).permutation(digits.num_train)[:250]
    return partition.ClientSplit.from_indices(
        np.split(order, np.cumsum([13, 70, 41, 9])), digits.y_train, scheme="uneven"
    )


@pytest.fixture(scope="module")
def small(digits):
    """200 training examples: four iid clients of exactly 50."""
    return data.Dataset(
        "digits-200", digits.x_train[:200], digits.y_train[:200], digits.x_test, digits.y_test, 10
    )


def mlp():
    return FedModel(num_classes=10, hidden_units=16)


def rounds_without_time(history) -> str:
    """Every number of every round except wall time, as JSON text (NaN == NaN, exact floats)."""
    rounds = history.to_dict()["rounds"]
    for r in rounds:
        r.pop("wall_time")
    return json.dumps(rounds, sort_keys=True)


def assert_close(got, want, tol=2e-5):
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=tol, atol=tol)


def t(values):
    return tf.constant(values, tf.float32)


# -- FedProx -----------------------------------------------------------------------------------


def test_prox_gradient_by_hand():
    prox = FedProx(mu=0.5)
    grads = prox.local_gradient(
        [t([1.0, -2.0]), t([[0.5]])], [t([3.0, 4.0]), t([[2.0]])], [t([1.0, 1.0]), t([[-2.0]])]
    )
    # g + μ (w − w_g)
    np.testing.assert_allclose(grads[0].numpy(), [1.0 + 0.5 * 2.0, -2.0 + 0.5 * 3.0])
    np.testing.assert_allclose(grads[1].numpy(), [[0.5 + 0.5 * 4.0]])


def test_one_prox_client_by_hand(digits):
    """Two local steps of a client, recomputed here with plain Keras gradients plus μ(w − w_g)."""
    model, weights = steps.initialize(mlp, digits.x_train, seed=0)
    x, y = digits.x_train[:10], digits.y_train[:10]
    mu, lr = 0.7, 0.3
    result = steps.local_update(
        model, weights, x, y, FedProx(mu=mu, batch_size=5, client_lr=lr), client_id=2
    )
    w = [tf.Variable(a) for a in weights]
    for variable, a in zip(model.trainable_variables, weights, strict=True):
        variable.assign(a)
    for batch in steps.batch_order(10, 5, 1, round_num=1, client_id=2):
        for variable, a in zip(model.trainable_variables, w, strict=True):
            variable.assign(a)
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(steps.example_losses(y[batch], model(x[batch])))
        grads = tape.gradient(loss, model.trainable_variables)
        for a, g, start in zip(w, grads, weights, strict=True):
            a.assign(a - lr * (g + mu * (a - start)))
    assert_close(result.weights, [a.numpy() for a in w], tol=1e-6)
    plain = steps.local_update(model, weights, x, y, FedAvg(batch_size=5, client_lr=lr), 1, 2)
    assert not np.allclose(result.weights[0], plain.weights[0], atol=1e-6)


def test_fedprox_with_mu_zero_is_fedavg_bit_for_bit(digits, uneven_split, strategy="vectorized"):
    sims = []
    for algorithm in (
        FedAvg(local_epochs=2, batch_size=16, client_lr=0.2),
        FedProx(mu=0.0, local_epochs=2, batch_size=16, client_lr=0.2),
    ):
        sim = Simulation(
            algorithm, mlp, digits, uneven_split, clients_per_round=3, seed=1, strategy=strategy
        )
        sim.run(3, progress=False)
        sims.append(sim)
    assert rounds_without_time(sims[0].history) == rounds_without_time(sims[1].history)
    for a, b in zip(sims[0].weights, sims[1].weights, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("strategy", ["vectorized", "loop"])
def test_fedprox_engine_equals_steps(digits, uneven_split, strategy):
    algorithm = FedProx(mu=0.5, local_epochs=2, batch_size=16, client_lr=0.2, server_lr=0.9)
    sim = Simulation(
        algorithm, mlp, digits, uneven_split, clients_per_round=3, seed=2, strategy=strategy
    )
    model, weights = steps.initialize(mlp, digits.x_train, seed=2)
    for round_num in (1, 2):
        by_hand = steps.run_round(model, weights, digits, uneven_split, algorithm, 3, round_num, 2)
        weights = by_hand.weights
        record = sim.step()
        assert_close(sim.weights, weights)
        np.testing.assert_allclose(record.client_loss, [r.loss for r in by_hand.clients], rtol=1e-5)


def test_larger_mu_means_less_client_drift(digits):
    """One client, 18 local steps from the same start: ‖w_k − w_g‖ shrinks as μ grows."""
    model, weights = steps.initialize(mlp, digits.x_train, seed=0)
    x, y = digits.x_train[digits.y_train == 3][:60], digits.y_train[digits.y_train == 3][:60]
    drift = []
    for mu in (0.0, 1.0, 10.0):  # μ · client_lr = 1 at μ = 10: each step restarts from w_g
        algorithm = FedProx(mu=mu, local_epochs=3, batch_size=10, client_lr=0.1)
        delta = steps.local_update(model, weights, x, y, algorithm).delta
        drift.append(np.sqrt(sum(np.sum(d**2) for d in delta)))
    assert drift[0] > drift[1] > drift[2] > 0


@settings(max_examples=50, deadline=None)
@given(mu=st.floats(allow_nan=True, allow_infinity=True))
def test_mu_must_be_finite_and_not_negative(mu):
    if np.isfinite(mu) and mu >= 0:
        assert FedProx(mu=mu).mu == mu
    else:
        with pytest.raises(ValueError, match=r"mu must be a finite number in \[0, inf\)"):
            FedProx(mu=mu)


def test_fedprox_arguments_and_config():
    with pytest.raises(TypeError, match="mu must be a number"):
        FedProx(mu="0.1")
    with pytest.raises(ValueError, match="client_lr"):
        FedProx(client_lr=0)
    with pytest.raises(ValueError, match="server_lr"):
        FedProx(server_lr=-1)
    assert FedProx(mu=0.1, local_epochs=3, batch_size=None).config() == {
        "name": "FedProx",
        "local_epochs": 3,
        "batch_size": None,
        "client_lr": 0.1,
        "server_lr": 1.0,
        "mu": 0.1,
    }
    assert isinstance(ALGORITHMS["fedprox"](), ProxAlgorithm)


# -- SCAFFOLD ----------------------------------------------------------------------------------


def test_scaffold_hooks_by_hand():
    algo = Scaffold(client_lr=0.5)
    state = algo.server_optimizer.init([np.zeros((2,)), np.zeros((1, 1))])
    assert [c.tolist() for c in algo.broadcast_state(state)] == [[0.0, 0.0], [[0.0]]]
    assert [c.tolist() for c in algo.client_state_init([np.ones(3)])] == [[0.0, 0.0, 0.0]]
    # local direction g − c_i + c
    g = algo.local_gradient([t([1.0, 2.0])], [t([0.0, 0.0])], [t([0.0, 0.0])],
                            [t([0.5, -1.0])], [t([2.0, 3.0])])  # fmt: skip
    np.testing.assert_allclose(g[0].numpy(), [1.0 - 0.5 + 2.0, 2.0 + 1.0 + 3.0])
    # option II: c_i⁺ = c_i − c + (x − y_i)/(K η_l), with x − y_i = −delta, K = 4, η_l = 0.5
    new = algo.client_state_update([t([0.5, -1.0])], [t([-4.0, 2.0])], 4.0, t(0.5), [t([2.0, 3.0])])
    np.testing.assert_allclose(new[0].numpy(), [0.5 - 2.0 + 4.0 / 2.0, -1.0 - 3.0 - 2.0 / 2.0])
    # server: x ← x + η_g Δx; c ← c + (|S|/N) mean(Δc_i)
    weights, state = algo.server_update(
        [np.array([1.0, 1.0]), np.array([[1.0]])],
        [np.array([0.5, -0.5]), np.array([[2.0]])],
        state,
        [np.array([4.0, -8.0]), np.array([[1.0]])],
        0.25,
    )
    assert [w.tolist() for w in weights] == [[1.5, 0.5], [[3.0]]]
    assert [c.tolist() for c in state["c"]] == [[1.0, -2.0], [[0.25]]]


def test_scaffold_server_lr_is_the_global_step_size():
    algo = Scaffold(server_lr=0.5)
    state = algo.server_optimizer.init([np.zeros(1)])
    weights, _ = algo.server_update([np.ones(1)], [np.array([2.0])], state, [np.zeros(1)], 1.0)
    assert weights[0].tolist() == [2.0] and algo.config()["server_lr"] == 0.5


def test_scaffold_with_one_full_batch_step_is_fedsgd(small):
    """K = 1: round 1 is FedSGD bit for bit (c = c_i = 0). Then c_i⁺ = g_i(x) (option II equals
    option I) and, with every client taking part, c = mean_i c_i, so the corrections c − c_i
    cancel in the average of equally weighted clients: every later round is FedSGD too."""
    split = partition.iid(small.y_train, num_clients=4, seed=0)
    assert {len(i) for i in split.client_indices} == {50}
    scaffold = Simulation(Scaffold(batch_size=None, client_lr=0.5), mlp, small, split, seed=0)
    fedsgd = Simulation(FedSGD(client_lr=0.5), mlp, small, split, seed=0)
    model = steps.initialize(mlp, small.x_train, seed=0)[0]
    for round_num in (1, 2, 3):
        start = [w.copy() for w in fedsgd.weights]
        by_hand = steps.run_round(model, start, small, split, FedSGD(client_lr=0.5), 4, round_num)
        a, b = scaffold.step(), fedsgd.step()
        if round_num == 1:
            for x, y in zip(scaffold.weights, fedsgd.weights, strict=True):
                np.testing.assert_array_equal(x, y)
            assert a.client_loss == b.client_loss and a.client_drift == b.client_drift
        else:
            assert_close(scaffold.weights, fedsgd.weights, tol=1e-5)
            np.testing.assert_allclose(a.client_loss, b.client_loss, rtol=1e-5)
        for r in by_hand.clients:  # c_i⁺ = the client's full-batch gradient g_i(x) = −Δ_i/η_l
            gradient = [-d / 0.5 for d in r.delta]
            assert_close([s[r.client_id] for s in scaffold.client_states], gradient, tol=1e-4)
        mean = [s.mean(axis=0) for s in scaffold.client_states]
        assert_close(scaffold.server_state["c"], mean, tol=1e-5)
    assert any(np.abs(s).max() > 1e-3 for s in scaffold.client_states)


def test_one_step_scaffold_is_not_fedsgd_when_clients_are_sampled(small):
    """With partial participation the corrections no longer cancel after round 1."""
    split = partition.iid(small.y_train, num_clients=4, seed=0)
    scaffold = Simulation(Scaffold(batch_size=None, client_lr=0.5), mlp, small, split, 2, seed=0)
    fedsgd = Simulation(FedSGD(client_lr=0.5), mlp, small, split, 2, seed=0)
    scaffold.step(), fedsgd.step()
    for x, y in zip(scaffold.weights, fedsgd.weights, strict=True):
        np.testing.assert_array_equal(x, y)
    scaffold.step(), fedsgd.step()
    assert not np.allclose(scaffold.weights[0], fedsgd.weights[0], atol=1e-5)


@pytest.mark.parametrize("strategy", ["vectorized", "loop"])
def test_scaffold_engine_equals_steps_with_partial_participation(digits, uneven_split, strategy):
    algorithm = Scaffold(local_epochs=2, batch_size=16, client_lr=0.1, server_lr=0.8)
    sim = Simulation(
        algorithm, mlp, digits, uneven_split, clients_per_round=2, seed=3, strategy=strategy
    )
    model, weights = steps.initialize(mlp, digits.x_train, seed=3)
    server_state = client_states = None
    kept = 0  # times a client with a non-zero variate sat a round out
    for round_num in (1, 2, 3, 4):
        before = [s.copy() for s in sim.client_states]
        by_hand = steps.run_round(
            model, weights, digits, uneven_split, algorithm, 2, round_num, 3,
            server_state, client_states,
        )  # fmt: skip
        weights, server_state = by_hand.weights, by_hand.server_state
        client_states = by_hand.client_states
        record = sim.step()
        assert_close(sim.weights, weights)
        assert_close(sim.server_state["c"], server_state["c"], tol=1e-4)
        for k in range(uneven_split.num_clients):
            assert_close([s[k] for s in sim.client_states], client_states[k], tol=1e-4)
            if k not in record.clients:  # not sampled: its variate is exactly as it was
                for now, then in zip(sim.client_states, before, strict=True):
                    np.testing.assert_array_equal(now[k], then[k])
                kept += any(np.abs(then[k]).max() > 0 for then in before)
        # c = mean over all N clients of c_i (uniform sampling, c ← c + |S|/N mean_S Δc_i)
        assert_close(sim.server_state["c"], [s.mean(axis=0) for s in sim.client_states], 1e-5)
    assert kept > 0
    assert all(np.abs(c).max() > 0 for c in sim.server_state["c"])
    assert sim.trace_count == 1


def test_scaffold_learns_on_label_skewed_clients(digits):
    split = partition.shards(digits.y_train, num_clients=10, shards_per_client=2, seed=0)
    algorithm = Scaffold(local_epochs=2, batch_size=20, client_lr=0.05)
    sim = Simulation(algorithm, mlp, digits, split, clients_per_round=5, seed=0)
    history = sim.run(4, progress=False)
    assert history.train_loss[-1] < history.train_loss[0]
    assert history.test_accuracy[-1] > 0.3


def test_scaffold_accepts_another_inner_server_optimizer(digits, uneven_split):
    algorithm = ScaffoldAlgorithm(
        batch_size=16, server_optimizer=ControlVariateServer(ServerAdam(server_lr=0.01))
    )
    sim = Simulation(algorithm, mlp, digits, uneven_split, clients_per_round=3, seed=0)
    sim.run(2, progress=False)
    assert set(sim.server_state) == {"c", "optimizer"}
    assert set(sim.server_state["optimizer"]) == {"m", "v"}
    assert sim.history.config["algorithm"]["server_optimizer"]["optimizer"]["name"] == "ServerAdam"


def test_scaffold_arguments_and_config():
    with pytest.raises(TypeError, match="ControlVariateServer"):
        ScaffoldAlgorithm(server_optimizer=ServerSGD(1.0))
    with pytest.raises(TypeError, match="optimizer must be a server optimiser"):
        ControlVariateServer("sgd")
    with pytest.raises(ValueError, match="server_lr"):
        Scaffold(server_lr=0)
    with pytest.raises(ValueError, match="local_epochs"):
        Scaffold(local_epochs=0)
    config = Scaffold(local_epochs=2, client_lr=0.05, server_lr=0.5).config()
    assert config["name"] == "SCAFFOLD" and config["local_epochs"] == 2
    assert config["client_lr"] == 0.05 and config["server_lr"] == 0.5
    assert config["server_optimizer"] == {
        "name": "ControlVariateServer",
        "server_lr": 0.5,
        "optimizer": {"name": "ServerSGD", "server_lr": 0.5},
    }
    assert isinstance(ALGORITHMS["scaffold"](), ScaffoldAlgorithm)


def test_scaffold_counts_its_control_variates_in_the_bytes_sent():
    data = fedlab.load_digits(seed=0)
    split = fedlab.partition.iid(data.y_train, 4, seed=0)

    def first_record(algorithm):
        sim = fedlab.Simulation(algorithm, lambda: fedlab.FedModel(10, hidden_units=8), data, split)
        return sim.step(), sim.model_bytes

    fedavg, model_bytes = first_record(fedlab.FedAvg())
    scaffold, _ = first_record(fedlab.Scaffold())
    assert fedavg.bytes_down == fedavg.bytes_up == 4 * model_bytes
    # c goes down with the weights, Δc_k comes up with the update: twice the bytes each way
    assert scaffold.bytes_down == scaffold.bytes_up == 2 * 4 * model_bytes
