"""The engine: same numbers as the step functions, seeded, stoppable, strict about input."""

import threading
from dataclasses import dataclass

import numpy as np
import pytest

import fedlab
from fedlab import data, partition, steps
from fedlab.algorithms import Algorithm, FedAvg, FedSGD, ServerSGD
from fedlab.engine import DivergenceError, Simulation, simulate
from fedlab.models import FedModel, logistic_regression, small_cnn


@pytest.fixture(scope="module")
def uneven_split(digits):
    """Six clients of different sizes (so padding and masking matter)."""
    order = np.random.default_rng(0).permutation(digits.num_train)[:300]
    cuts = np.cumsum([13, 70, 41, 9, 100])
    return partition.ClientSplit.from_indices(
        np.split(order, cuts), digits.y_train, scheme="uneven"
    )


def mlp():
    return FedModel(num_classes=10, hidden_units=32)


def assert_weights_close(got, want, tol=2e-5):
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=tol, atol=tol)


@pytest.mark.parametrize("strategy", ["vectorized", "loop"])
@pytest.mark.parametrize(
    "algorithm",
    [FedAvg(local_epochs=2, batch_size=16, client_lr=0.2, server_lr=0.7), FedSGD(client_lr=0.5)],
    ids=["fedavg", "fedsgd"],
)
def test_engine_round_equals_step_function_round(digits, uneven_split, algorithm, strategy):
    sim = Simulation(
        algorithm, mlp, digits, uneven_split, clients_per_round=4, seed=3, strategy=strategy
    )
    model, weights = steps.initialize(mlp, digits.x_train, seed=3)
    assert_weights_close(sim.weights, weights, tol=0)
    for round_num in (1, 2):
        by_hand = steps.run_round(
            model, weights, digits, uneven_split, algorithm, 4, round_num, seed=3
        )
        record = sim.step()
        weights = by_hand.weights
        assert record.clients == tuple(r.client_id for r in by_hand.clients)
        assert record.client_num_examples == tuple(r.num_examples for r in by_hand.clients)
        np.testing.assert_allclose(record.client_loss, [r.loss for r in by_hand.clients], rtol=1e-5)
        assert_weights_close(sim.weights, weights)
        drift = [np.sqrt(sum(np.sum(d**2) for d in r.delta)) for r in by_hand.clients]
        np.testing.assert_allclose(record.client_drift, drift, rtol=1e-4)
        flat = lambda ws: np.concatenate([w.ravel() for w in ws])  # noqa: E731
        agg = flat(by_hand.aggregated_delta)
        cos = [
            flat(r.delta) @ agg / np.linalg.norm(flat(r.delta)) / np.linalg.norm(agg)
            for r in by_hand.clients
        ]
        np.testing.assert_allclose(record.update_cosine, cos, rtol=1e-4, atol=1e-5)
    loss, accuracy = steps.evaluate(model, weights, digits.x_test, digits.y_test)
    assert record.test_accuracy == pytest.approx(accuracy)
    assert record.test_loss == pytest.approx(loss, rel=1e-4)


@dataclass(frozen=True)
class ToyStateful(Algorithm):
    """Uses every plug-in point SCAFFOLD-like algorithms need: client state, broadcast, server update."""

    def broadcast_state(self, server_state):
        return [server_state.get("last", np.zeros(10, np.float32))]

    def client_state_init(self, weights):
        return [np.zeros_like(w) for w in weights]

    def local_gradient(self, grads, weights, broadcast_weights, client_state=(), broadcast=()):
        out = [
            g + 0.5 * c + 0.01 * (w - w0)
            for g, c, w, w0 in zip(grads, client_state, weights, broadcast_weights, strict=True)
        ]
        return [*out[:-1], out[-1] - 0.1 * broadcast[0]]

    def client_state_update(self, client_state, delta, num_steps, client_lr, broadcast=()):
        return [
            0.5 * c - d / (num_steps * client_lr) for c, d in zip(client_state, delta, strict=True)
        ]

    def server_update(
        self, weights, aggregated_delta, server_state, client_state_delta, participation
    ):
        new, _ = ServerSGD(1.0).apply(weights, aggregated_delta, {})
        last = aggregated_delta[-1] + participation * client_state_delta[-1]
        return new, {"last": np.asarray(last, np.float32)}


@pytest.mark.parametrize("strategy", ["vectorized", "loop"])
def test_stateful_algorithm_plugs_in_and_engine_equals_steps(digits, uneven_split, strategy):
    algorithm = ToyStateful(local_epochs=2, batch_size=16, client_lr=0.1)
    sim = Simulation(
        algorithm, mlp, digits, uneven_split, clients_per_round=3, seed=2, strategy=strategy
    )
    model, weights = steps.initialize(mlp, digits.x_train, seed=2)
    server_state, client_states = None, None
    for round_num in (1, 2, 3):
        by_hand = steps.run_round(
            model,
            weights,
            digits,
            uneven_split,
            algorithm,
            3,
            round_num,
            seed=2,
            server_state=server_state,
            client_states=client_states,
        )
        weights, server_state, client_states = (
            by_hand.weights,
            by_hand.server_state,
            by_hand.client_states,
        )
        sim.step()
        assert_weights_close(sim.weights, weights)
        np.testing.assert_allclose(
            sim.server_state["last"], server_state["last"], rtol=1e-4, atol=1e-6
        )
        for k in range(uneven_split.num_clients):  # unselected clients keep their state
            for engine_state, hand_state in zip(sim.client_states, client_states[k], strict=True):
                np.testing.assert_allclose(engine_state[k], hand_state, rtol=1e-4, atol=1e-5)
    assert any(np.abs(s).sum() > 0 for s in sim.client_states)
    assert sim.trace_count == 1


def test_vectorized_and_loop_agree_on_a_cnn(digits, uneven_split):
    images = digits.as_images()
    runs = [
        simulate(
            FedAvg(batch_size=8, client_lr=0.1),
            lambda: small_cnn(10),
            images,
            uneven_split,
            num_rounds=2,
            clients_per_round=3,
            seed=1,
            strategy=s,
            progress=False,
        )
        for s in ("vectorized", "loop")
    ]
    np.testing.assert_allclose(runs[0].train_loss, runs[1].train_loss, rtol=1e-4)
    np.testing.assert_allclose(runs[0].drift_mean, runs[1].drift_mean, rtol=1e-3)


def test_fedsgd_engine_equals_centralised_gradient_descent(digits):
    split = partition.iid(digits.y_train[:200], num_clients=4, seed=0)
    small = data.Dataset(
        "digits-200", digits.x_train[:200], digits.y_train[:200], digits.x_test, digits.y_test, 10
    )
    sim = Simulation(FedSGD(client_lr=0.5), mlp, small, split, seed=0)
    model, weights = steps.initialize(mlp, small.x_train, seed=0)
    whole = steps.local_update  # one client with all the data, one full-batch step = one GD step
    for round_num in (1, 2):
        sim.step()
        weights = whole(
            model, weights, small.x_train, small.y_train, FedSGD(client_lr=0.5), round_num
        ).weights
    assert_weights_close(sim.weights, weights)


def test_same_seed_same_history_and_different_seed_differs(digits, uneven_split):
    def run(seed):
        return simulate(
            FedAvg(batch_size=10),
            mlp,
            digits,
            uneven_split,
            num_rounds=3,
            clients_per_round=3,
            seed=seed,
            progress=False,
        )

    first, second, other = run(5), run(5), run(6)
    assert first.matches(second)
    assert not first.matches(other)


def test_tracing_happens_once_per_simulation(digits, uneven_split):
    sim = Simulation(FedAvg(batch_size=10), mlp, digits, uneven_split, clients_per_round=2, seed=0)
    for _ in range(4):  # different clients, sizes and step counts every round
        sim.step()
    assert sim.trace_count == 1


def test_warm_up_traces_once_and_changes_no_numbers(digits, uneven_split):
    def make():
        return Simulation(FedAvg(batch_size=10), mlp, digits, uneven_split, clients_per_round=3)

    cold, warm = make(), make()
    assert warm.warm_up() > 0
    assert warm.trace_count == 1 and len(warm.history) == 0
    for _ in range(2):
        cold.step(), warm.step()
    assert warm.trace_count == 1, "the rounds reuse the warm-up's trace"
    assert cold.history.test_loss.tolist() == warm.history.test_loss.tolist()
    assert_weights_close(warm.weights, cold.weights, tol=0)


def test_history_numbers_are_consistent(digits, uneven_split):
    history = simulate(
        FedAvg(), mlp, digits, uneven_split, num_rounds=2, clients_per_round=4, progress=False
    )
    record = history.rounds[-1]
    assert len(record.clients) == len(record.client_loss) == len(record.client_drift) == 4
    assert record.drift_mean == pytest.approx(np.mean(record.client_drift))
    assert record.drift_max == pytest.approx(np.max(record.client_drift))
    assert all(-1.0 <= c <= 1.0 for c in record.update_cosine)
    assert record.train_loss == pytest.approx(
        np.average(record.client_loss, weights=record.client_num_examples)
    )
    params = 64 * 32 + 32 + 32 * 10 + 10
    assert record.bytes_down == record.bytes_up == 4 * params * 4
    assert history.config["num_parameters"] == params
    assert 0.0 <= record.test_accuracy <= 1.0 and record.wall_time > 0


def test_fedavg_learns_digits(digits):
    split = partition.iid(digits.y_train, num_clients=10, seed=0)
    history = simulate(
        FedAvg(batch_size=20, client_lr=0.1),
        lambda: FedModel(10),
        digits,
        split,
        num_rounds=10,
        seed=0,
        progress=False,
    )
    assert history.test_accuracy[-1] > 0.85
    assert history.train_loss[-1] < history.train_loss[0]


def test_callback_returning_true_stops_cleanly(digits, uneven_split):
    seen = []

    def stop_at_three(record, history):
        seen.append(record.round)
        return record.round == 3

    history = simulate(
        FedAvg(),
        mlp,
        digits,
        uneven_split,
        num_rounds=10,
        callbacks=[stop_at_three],
        progress=False,
    )
    assert seen == [1, 2, 3] and len(history) == 3


def test_stop_event_stops_and_keeps_history(digits, uneven_split):
    stop = threading.Event()
    sim = Simulation(FedAvg(), mlp, digits, uneven_split)
    sim.run(2, progress=False)
    stop.set()
    history = sim.run(5, stop_event=stop, progress=False)
    assert len(history) == 2
    stop.clear()
    assert len(sim.run(1, stop_event=stop, progress=False)) == 3  # and it can go on


def test_divergence_is_reported_with_round_and_clients(digits, uneven_split):
    sim = Simulation(
        FedAvg(client_lr=0.1, batch_size=5), lambda: logistic_regression(10), digits, uneven_split
    )
    sim.run(2, progress=False)
    sim.algorithm = FedAvg(client_lr=1e38, batch_size=5)  # a learning rate that overflows float32
    good_weights = [w.copy() for w in sim.weights]
    with pytest.raises(DivergenceError) as caught:
        sim.run(5, progress=False)
    error = caught.value
    assert error.round == 3 and error.clients == tuple(range(6))
    assert "round 3" in str(error) and "client_lr" in str(error)
    assert len(error.history) == 2 == sim.round
    assert all(np.array_equal(a, b) for a, b in zip(sim.weights, good_weights, strict=True))


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"clients_per_round": 7}, ValueError, r"clients_per_round must be an integer in \[1, 6\]"),
        ({"clients_per_round": 0}, ValueError, "clients_per_round"),
        ({"strategy": "threads"}, ValueError, "strategy must be one of"),
        ({"seed": -1}, ValueError, "seed"),
        ({"evaluate_every": 0}, ValueError, "evaluate_every"),
        ({"algorithm": "fedavg"}, TypeError, "algorithm must be a fedlab Algorithm"),
        ({"model_fn": "mlp"}, TypeError, "model_fn must be a function"),
        ({"data": np.zeros(3)}, TypeError, "data must be a fedlab.data.Dataset"),
        ({"split": [np.arange(3)]}, TypeError, "split must be a fedlab.partition.ClientSplit"),
    ],
)
def test_simulation_rejects_bad_arguments(digits, uneven_split, kwargs, error, match):
    arguments = {
        "algorithm": FedAvg(),
        "model_fn": mlp,
        "data": digits,
        "split": uneven_split,
        **kwargs,
    }
    with pytest.raises(error, match=match):
        Simulation(**arguments)


def test_split_that_does_not_fit_the_data_is_rejected(digits):
    split = partition.ClientSplit.from_indices(
        [np.arange(5), np.array([digits.num_train + 3])], np.arange(digits.num_train + 4) % 10
    )
    with pytest.raises(ValueError, match="client 1 has indices outside"):
        Simulation(FedAvg(), mlp, digits, split)


def test_negative_rounds_and_learning_rates_are_rejected(digits, uneven_split):
    with pytest.raises(ValueError, match="num_rounds"):
        simulate(FedAvg(), mlp, digits, uneven_split, num_rounds=-1)
    with pytest.raises(ValueError, match="client_lr"):
        FedAvg(client_lr=-0.1)
    with pytest.raises(ValueError, match="server_lr"):
        FedAvg(server_lr=0)
    with pytest.raises(ValueError, match="local_epochs"):
        FedAvg(local_epochs=0)
    with pytest.raises(TypeError, match="batch_size"):
        FedAvg(batch_size=2.5)


def test_model_with_batch_norm_is_rejected_clearly(digits, uneven_split):
    import keras

    def with_bn():
        return keras.Sequential(
            [keras.layers.Dense(8), keras.layers.BatchNormalization(), keras.layers.Dense(10)]
        )

    with pytest.raises(ValueError, match="GroupNormalization"):
        Simulation(FedAvg(), with_bn, digits, uneven_split)


def test_public_api_is_importable():
    for name in fedlab.__all__:
        assert getattr(fedlab, name) is not None, name
    assert callable(fedlab.simulate)


# -- gradient dissimilarity and state norms ---------------------------------------------------
def hand_dissimilarity(grads, sizes):
    """(1/N) Σ_k ‖g_k − Σ_j (n_j/n) g_j‖², in float64 NumPy from a list of per-client weight lists."""
    flat = np.array([np.concatenate([g.ravel() for g in gk]) for gk in grads], np.float64)
    centre = np.asarray(sizes, np.float64) @ flat / np.sum(sizes)
    return float(np.mean(np.sum((flat - centre) ** 2, axis=1)))


@pytest.mark.parametrize("strategy", ["vectorized", "loop"])
def test_client_gradients_match_a_gradient_tape_loop(digits, uneven_split, strategy):
    sim = Simulation(FedAvg(batch_size=16), mlp, digits, uneven_split, seed=1, strategy=strategy)
    sim.step()
    model, _ = steps.initialize(mlp, digits.x_train, seed=1)
    by_hand = [
        steps.full_gradient(model, sim.weights, digits.x_train[own], digits.y_train[own])
        for own in uneven_split.client_indices
    ]
    stacked = sim.client_gradients()
    for k, hand in enumerate(by_hand):
        assert_weights_close([g[k] for g in stacked], hand, tol=1e-5)
    expected = hand_dissimilarity(by_hand, uneven_split.sizes)
    assert sim.gradient_dissimilarity() == pytest.approx(expected, rel=1e-4)
    assert expected > 0


def test_dissimilarity_of_a_linear_model_matches_the_analytic_gradient(digits, uneven_split):
    sim = Simulation(FedAvg(), lambda: logistic_regression(10), digits, uneven_split, seed=2)
    kernel, bias = (np.asarray(w, np.float64) for w in sim.weights)
    grads = []
    for own in uneven_split.client_indices:  # softmax cross-entropy: X^T (p - onehot) / n
        x, y = digits.x_train[own].astype(np.float64), digits.y_train[own]
        z = x @ kernel + bias
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        p[np.arange(len(y)), y] -= 1.0
        grads.append([x.T @ p / len(y), p.mean(axis=0)])
    assert sim.gradient_dissimilarity() == pytest.approx(
        hand_dissimilarity(grads, uneven_split.sizes), rel=1e-4
    )


def test_dissimilarity_is_zero_for_identical_clients_and_larger_for_label_skew(digits):
    x, y = digits.x_train[:120], digits.y_train[:120]
    copies = data.Dataset("3x", np.tile(x, (3, 1)), np.tile(y, 3), digits.x_test, digits.y_test, 10)
    same = partition.ClientSplit.from_indices(np.split(np.arange(360), 3), copies.y_train)
    sim = Simulation(FedAvg(), mlp, copies, same, seed=0)
    assert sim.gradient_dissimilarity() == pytest.approx(0.0, abs=1e-10)
    assert sim.gradient_dissimilarity() < 1e-6 * float(np.sum(sim.client_gradients()[0][0] ** 2))

    def dissimilarity(split):
        return Simulation(FedAvg(), mlp, digits, split, seed=0).gradient_dissimilarity()

    skewed = dissimilarity(partition.dirichlet(digits.y_train, 10, alpha=0.1, seed=0))
    even = dissimilarity(partition.iid(digits.y_train, 10, seed=0))
    assert skewed > 5 * even > 0


def test_dissimilarity_every_records_it_on_those_rounds_only(digits, uneven_split):
    sim = Simulation(
        FedAvg(batch_size=16), mlp, digits, uneven_split, clients_per_round=3, dissimilarity_every=2
    )
    values = []
    for _ in range(4):
        sim.step()
        values.append(sim.gradient_dissimilarity())
    recorded = sim.history.gradient_dissimilarity
    assert np.isnan(recorded[[0, 2]]).all()
    np.testing.assert_allclose(recorded[[1, 3]], [values[1], values[3]], rtol=1e-6)
    assert sim.history.config["dissimilarity_every"] == 2
    plain = simulate(FedAvg(), mlp, digits, uneven_split, num_rounds=1, progress=False)
    assert np.isnan(plain.gradient_dissimilarity).all()
    with pytest.raises(ValueError, match="dissimilarity_every"):
        Simulation(FedAvg(), mlp, digits, uneven_split, dissimilarity_every=0)
    with pytest.raises(ValueError, match="weights must have 4 arrays"):
        sim.gradient_dissimilarity(sim.weights[:2])


@pytest.mark.parametrize("strategy", ["vectorized", "loop"])
def test_state_norms_are_recorded_for_stateful_algorithms(digits, uneven_split, strategy):
    sim = Simulation(
        ToyStateful(batch_size=16, client_lr=0.1),
        mlp,
        digits,
        uneven_split,
        clients_per_round=3,
        seed=2,
        strategy=strategy,
    )
    for _ in range(2):
        record = sim.step()
        (sent,) = sim.algorithm.broadcast_state(sim.server_state)
        assert record.server_state_norm == pytest.approx(np.linalg.norm(sent), rel=1e-6)
        per_client = [
            np.sqrt(sum(np.sum(s[k].astype(np.float64) ** 2) for s in sim.client_states))
            for k in range(uneven_split.num_clients)
        ]
        assert record.client_state_norm == pytest.approx(np.mean(per_client), rel=1e-6)
        assert record.server_state_norm > 0 and record.client_state_norm > 0
    assert sim.history.client_state_norm.shape == (2,)
    plain = simulate(FedAvg(), mlp, digits, uneven_split, num_rounds=1, progress=False)
    assert np.isnan(plain.server_state_norm).all() and np.isnan(plain.client_state_norm).all()


def test_simulations_with_the_same_graph_share_one_kernel_and_give_the_same_numbers(
    digits, uneven_split
):
    def run(algorithm, model_fn):
        sim = Simulation(algorithm, model_fn, digits, uneven_split, clients_per_round=3)
        sim.step(), sim.step()
        return sim

    first = run(FedAvg(batch_size=10, client_lr=0.1), mlp)
    other_settings = run(FedAvg(local_epochs=2, batch_size=5, client_lr=0.05), mlp)
    assert other_settings._kernel is first._kernel and first.trace_count == 1
    # a new lambda each time cannot be recognised: its own kernel, traced anew, same numbers
    alone = run(FedAvg(local_epochs=2, batch_size=5, client_lr=0.05), lambda: mlp())
    assert alone._kernel is not first._kernel
    assert alone.history.test_loss.tolist() == other_settings.history.test_loss.tolist()
    assert_weights_close(alone.weights, other_settings.weights, tol=0)
    # graph constants and hooks are part of the key
    prox = run(fedlab.FedProx(mu=0.1, batch_size=10), mlp)
    assert prox._kernel is not first._kernel
    assert run(fedlab.FedProx(mu=0.2, batch_size=10), mlp)._kernel is not prox._kernel
    assert run(fedlab.Scaffold(batch_size=10), mlp)._kernel is not first._kernel
    assert run(FedAvg(batch_size=10), mlp)._kernel is first._kernel


def test_named_model_functions_are_equal_so_the_dashboard_shares_kernels():
    from fedlab.models import model_fn

    assert model_fn("mlp", 10) == model_fn("mlp", 10) != model_fn("mlp", 3)
    assert hash(model_fn("logreg", 10)) == hash(model_fn("logreg", 10))
