"""The step functions: exact fixtures and reference identities."""

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fedlab  # noqa: F401  (quiet TensorFlow first)
from fedlab import steps
from fedlab.algorithms import FedAvg, FedSGD
from fedlab.models import FedModel, logistic_regression


def tiny_problem(n=12, features=5, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, features)).astype("float32"), rng.integers(0, classes, n).astype(
        "int32"
    )


def keras_sgd_step(model, x, y, lr):
    """An independent reference: one step of Keras' own SGD optimiser on the mean loss."""
    import tensorflow as tf

    optimizer = keras.optimizers.SGD(learning_rate=lr)
    with tf.GradientTape() as tape:
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(
            y, model(x, training=True)
        )
    optimizer.apply_gradients(
        zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables, strict=True)
    )
    return [v.numpy() for v in model.trainable_variables]


@settings(max_examples=25, deadline=None)
@given(
    num_clients=st.integers(1, 6),
    counts=st.lists(st.integers(1, 1000), min_size=6, max_size=6),
    shape=st.sampled_from([(3,), (2, 4)]),
)
def test_aggregating_identical_deltas_returns_them(num_clients, counts, shape):
    delta = [
        np.random.default_rng(num_clients).normal(size=shape).astype("float32"),
        np.float32([1.5]),
    ]
    result = steps.aggregate([delta] * num_clients, counts[:num_clients])
    for got, want in zip(result, delta, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6)


def test_aggregate_weights_by_example_count():
    deltas = [[np.array([1.0, 0.0])], [np.array([0.0, 1.0])], [np.array([4.0, 4.0])]]
    result = steps.aggregate(deltas, [1, 2, 1])  # (1*[1,0] + 2*[0,1] + 1*[4,4]) / 4
    np.testing.assert_allclose(result[0], [1.25, 1.5])


@pytest.mark.parametrize("counts", [[1, 0], [2, -1]])
def test_aggregate_rejects_non_positive_counts(counts):
    with pytest.raises(ValueError, match="num_examples"):
        steps.aggregate([[np.zeros(1)], [np.zeros(1)]], counts)


def test_aggregate_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="one example count per delta"):
        steps.aggregate([[np.zeros(1)]], [1, 2])


def test_server_update_applies_server_lr():
    new = steps.server_update([np.array([1.0, 2.0])], [np.array([2.0, -2.0])], server_lr=0.5)
    np.testing.assert_allclose(new[0], [2.0, 1.0])


def test_one_client_one_step_equals_centralised_sgd_step():
    x, y = tiny_problem()
    model, weights = steps.initialize(lambda: FedModel(3, hidden_units=8), x, seed=1)
    result = steps.local_update(
        model, weights, x, y, FedAvg(local_epochs=1, batch_size=len(x), client_lr=0.3)
    )
    reference_model, _ = steps.initialize(lambda: FedModel(3, hidden_units=8), x, seed=1)
    expected = keras_sgd_step(reference_model, x, y, lr=0.3)
    for got, want in zip(result.weights, expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    for d, new, old in zip(result.delta, result.weights, weights, strict=True):
        np.testing.assert_allclose(d, new - old)
    assert result.num_examples == len(x)


def test_fedsgd_with_all_clients_equals_centralised_gradient_descent():
    x, y = tiny_problem(n=30)
    split = [np.arange(0, 7), np.arange(7, 19), np.arange(19, 30)]  # unequal sizes
    data = type("D", (), {"x_train": x, "y_train": y})()
    split_record = type("S", (), {"client_indices": tuple(split)})()
    model, weights = steps.initialize(lambda: logistic_regression(3), x, seed=2)
    reference, _ = steps.initialize(lambda: logistic_regression(3), x, seed=2)
    algorithm = FedSGD(client_lr=0.5)
    for round_num in (1, 2, 3):
        weights = steps.run_round(
            model, weights, data, split_record, algorithm, 3, round_num
        ).weights
        expected = keras_sgd_step(reference, x, y, lr=0.5)
        for got, want in zip(weights, expected, strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_batch_order_covers_each_example_once_per_epoch():
    batches = steps.batch_order(23, batch_size=5, local_epochs=3, round_num=2, client_id=7, seed=4)
    assert [len(b) for b in batches] == [5, 5, 5, 5, 3] * 3
    for epoch in range(3):
        assert sorted(np.concatenate(batches[epoch * 5 : epoch * 5 + 5]).tolist()) == list(
            range(23)
        )
    again = steps.batch_order(23, batch_size=5, local_epochs=3, round_num=2, client_id=7, seed=4)
    assert all(np.array_equal(a, b) for a, b in zip(batches, again, strict=True))
    other = steps.batch_order(23, batch_size=5, local_epochs=3, round_num=2, client_id=8, seed=4)
    assert not all(np.array_equal(a, b) for a, b in zip(batches, other, strict=True))


def test_full_batch_is_one_batch_per_epoch():
    batches = steps.batch_order(6, batch_size=None, local_epochs=2, round_num=1, client_id=0)
    assert [b.tolist() for b in batches] == [list(range(6))] * 2


@settings(max_examples=30, deadline=None)
@given(num_clients=st.integers(1, 50), data=st.data())
def test_sample_clients_is_sorted_unique_and_seeded(num_clients, data):
    per_round = data.draw(st.integers(1, num_clients))
    seed = data.draw(st.integers(0, 2**31))
    clients = steps.sample_clients(num_clients, per_round, round_num=3, seed=seed)
    assert len(clients) == per_round == len(set(clients.tolist()))
    assert list(clients) == sorted(clients) and clients.min() >= 0 and clients.max() < num_clients
    np.testing.assert_array_equal(clients, steps.sample_clients(num_clients, per_round, 3, seed))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"num_clients": 0, "clients_per_round": 1, "round_num": 1}, "num_clients"),
        (
            {"num_clients": 5, "clients_per_round": 6, "round_num": 1},
            r"clients_per_round must be an integer in \[1, 5\]",
        ),
        ({"num_clients": 5, "clients_per_round": 0, "round_num": 1}, "clients_per_round"),
        ({"num_clients": 5, "clients_per_round": 2, "round_num": 0}, "round_num"),
    ],
)
def test_sample_clients_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        steps.sample_clients(**kwargs)


def test_local_update_rejects_mismatched_data_and_weights():
    x, y = tiny_problem()
    model, weights = steps.initialize(lambda: FedModel(3, hidden_units=4), x, seed=0)
    with pytest.raises(ValueError, match="same length"):
        steps.local_update(model, weights, x, y[:-1], FedAvg())
    with pytest.raises(ValueError, match="weights must have 4 arrays"):
        steps.local_update(model, weights[:2], x, y, FedAvg())


def test_evaluate_matches_manual_accuracy():
    x, y = tiny_problem(n=40)
    model, weights = steps.initialize(lambda: FedModel(3, hidden_units=4), x, seed=0)
    loss, accuracy = steps.evaluate(model, weights, x, y)
    logits = model(x).numpy()
    assert accuracy == pytest.approx(np.mean(logits.argmax(1) == y))
    assert loss > 0


def test_max_steps_stops_after_the_first_epochs_of_the_same_batches():
    x, y = tiny_problem(n=12)
    model, weights = steps.initialize(lambda: FedModel(3, hidden_units=4), x, seed=0)
    two_epochs = FedAvg(local_epochs=2, batch_size=5, client_lr=0.3)  # 3 steps an epoch
    cut = steps.local_update(model, weights, x, y, two_epochs, round_num=2, max_steps=3)
    one = steps.local_update(model, weights, x, y, FedAvg(1, 5, 0.3), round_num=2)
    full = steps.local_update(model, weights, x, y, two_epochs, round_num=2)
    assert (cut.num_steps, one.num_steps, full.num_steps) == (3, 3, 6)
    for a, b in zip(cut.weights, one.weights, strict=True):
        np.testing.assert_array_equal(a, b)
    assert cut.loss == one.loss != full.loss
    with pytest.raises(ValueError, match="max_steps"):
        steps.local_update(model, weights, x, y, two_epochs, max_steps=0)


def test_full_gradient_is_the_keras_sgd_step_direction():
    x, y = tiny_problem(n=20)
    model, weights = steps.initialize(lambda: FedModel(3, hidden_units=8), x, seed=3)
    grads = steps.full_gradient(model, weights, x, y)
    reference, _ = steps.initialize(lambda: FedModel(3, hidden_units=8), x, seed=3)
    stepped = keras_sgd_step(reference, x, y, lr=0.5)
    for g, w, new in zip(grads, weights, stepped, strict=True):
        np.testing.assert_allclose(g, (w - new) / 0.5, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="same length"):
        steps.full_gradient(model, weights, x, y[:-1])


# -- server_step: the server's half of a round, shared by run_round and the Flower ServerApp --


def test_server_step_aggregates_by_example_count_then_applies_server_lr():
    two_clients = [np.array([[1.0, 2.0], [5.0, 6.0]], np.float32)]  # [K=2, 2]
    weights, state, mean, info = steps.server_step(
        FedAvg(server_lr=0.5), [np.ones(2, np.float32)], {}, two_clients, [3, 1], 1, 4, 2
    )
    np.testing.assert_array_equal(mean[0], [2.0, 3.0])  # (3·[1, 2] + 1·[5, 6]) / 4
    np.testing.assert_array_equal(weights[0], [2.0, 2.5])  # [1, 1] + 0.5 · [2, 3]
    assert state == {} and info == {}


def test_server_step_moves_scaffolds_control_variate_by_participation():
    from fedlab.algorithms import Scaffold

    algorithm = Scaffold()
    start = [np.zeros(2, np.float32)]
    changes = [[np.array([2.0, 4.0], np.float32)], [np.array([4.0, 8.0], np.float32)]]
    deltas = [np.array([[1.0, 1.0], [3.0, 3.0]], np.float32)]
    weights, state, _, _ = steps.server_step(
        algorithm,
        start,
        algorithm.server_optimizer.init(start),
        deltas,
        [1, 1],
        1,
        4,
        2,
        state_changes=changes,
    )
    np.testing.assert_array_equal(weights[0], [2.0, 2.0])
    np.testing.assert_array_equal(state["c"][0], [1.5, 3.0])  # (K/N = 2/4) · mean [3, 6]


def test_server_step_with_a_given_aggregate_only_updates():
    stacked = [np.array([[1.0, 2.0], [5.0, 6.0]], np.float32)]
    from_deltas = steps.server_step(FedAvg(), [np.ones(2)], {}, stacked, [3, 1], 1, 4, 2)
    given = steps.server_step(
        FedAvg(), [np.ones(2)], {}, None, [3, 1], 1, 4, 2, aggregated_delta=[np.array([2.0, 3.0])]
    )  # e.g. secure aggregation computed the weighted mean
    np.testing.assert_array_equal(from_deltas[0][0], given[0][0])
    np.testing.assert_array_equal(given[2][0], [2.0, 3.0])


def test_server_step_draws_dp_noise_from_a_stream_per_round():
    from fedlab.privacy import DPFedAvg

    stacked = [np.full((2, 3), 0.1, np.float32)]
    algorithm = DPFedAvg(noise_multiplier=1.0, clip_norm=1.0)

    def weights(round_num, seed=0):
        return steps.server_step(
            algorithm, [np.zeros(3)], {}, stacked, [1, 1], round_num, 4, 2, seed=seed
        )[0][0]

    np.testing.assert_array_equal(weights(1), weights(1))
    assert not np.array_equal(weights(1), weights(2))
    assert not np.array_equal(weights(1), weights(1, seed=1))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"stacked_deltas": None}, "exactly one of stacked_deltas and aggregated_delta"),
        ({"aggregated_delta": [np.zeros(2)]}, "exactly one of stacked_deltas and aggregated_delta"),
        ({"stacked_deltas": [np.zeros((2, 3))]}, r"shaped \[\(2, 2\)\], got \[\(2, 3\)\]"),
        ({"num_examples": [1, 1, 1]}, r"shaped \[\(3, 2\)\], got \[\(2, 2\)\]"),
        ({"num_examples": [[1, 1]]}, "one count per participating client"),
        ({"num_examples": [1] * 5}, r"at most num_clients=4"),
        (
            {"stacked_deltas": None, "aggregated_delta": [np.zeros(3)]},
            r"aggregated update must have the weights' shapes \[\(2,\)\]",
        ),
        ({"state_changes": [[np.zeros(2)]]}, r"one list of equally many arrays per client \(K=2\)"),
        ({"clients_per_round": 5}, r"clients_per_round must be an integer in \[1, 4\]"),
        ({"round_num": 0}, r"round_num must be an integer in \[1, inf\]"),
    ],
)
def test_server_step_rejects_mismatched_inputs(kwargs, match):
    arguments = {
        "stacked_deltas": [np.zeros((2, 2))],
        "num_examples": [1, 1],
        "round_num": 1,
        "num_clients": 4,
        "clients_per_round": 2,
        **kwargs,
    }
    with pytest.raises(ValueError, match=match):
        steps.server_step(FedAvg(), [np.zeros(2)], {}, **arguments)
