"""Aggregator, server update and drift metrics on tiny hand-computable vectors."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import fedlab  # noqa: F401
from fedlab import metrics, steps
from fedlab.algorithms import Algorithm, FedAvg, FedSGD, ServerSGD, WeightedMean


def test_weighted_mean_exact():
    stacked = [np.array([[1.0, 2.0], [3.0, 6.0]]), np.array([[0.0], [4.0]])]
    result = WeightedMean()(stacked, np.array([3, 1]))
    np.testing.assert_allclose(result[0].numpy(), [1.5, 3.0])
    np.testing.assert_allclose(result[1].numpy(), [1.0])


@settings(max_examples=30, deadline=None)
@given(
    deltas=arrays(np.float32, (4, 3), elements=st.floats(-10, 10, width=32)),
    counts=st.lists(st.integers(1, 500), min_size=4, max_size=4),
)
def test_weighted_mean_matches_the_step_function(deltas, counts):
    engine = WeightedMean()([deltas], np.array(counts))[0].numpy()
    by_hand = steps.aggregate([[d] for d in deltas], counts)[0]
    np.testing.assert_allclose(engine, by_hand, rtol=1e-5, atol=1e-5)


def test_server_sgd():
    optimizer = ServerSGD(server_lr=2.0)
    weights, state = optimizer.apply(
        [np.array([1.0])], [np.array([0.25])], optimizer.init([np.array([1.0])])
    )
    assert weights[0].tolist() == [1.5] and state == {}


def test_algorithm_configs_and_defaults():
    assert FedAvg().config() == {
        "name": "FedAvg",
        "local_epochs": 1,
        "batch_size": 20,
        "client_lr": 0.1,
        "server_lr": 1.0,
    }
    assert FedSGD(client_lr=0.3).config()["batch_size"] is None
    grads = [np.ones(2)]
    assert Algorithm().local_gradient(grads, [np.zeros(2)], [np.zeros(2)]) is grads


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf")])
def test_learning_rates_must_be_positive_and_finite(bad):
    with pytest.raises(ValueError, match="client_lr"):
        FedAvg(client_lr=bad)
    with pytest.raises(ValueError, match="server_lr"):
        ServerSGD(server_lr=bad)


def test_drift_and_cosine_exact():
    stacked = [np.array([[3.0, 0.0], [0.0, 0.0], [-1.0, 0.0]]), np.array([[4.0], [0.0], [0.0]])]
    np.testing.assert_allclose(metrics.client_drift(stacked).numpy(), [5.0, 0.0, 1.0])
    cosine = metrics.update_cosine(stacked, [np.array([1.0, 0.0]), np.array([0.0])]).numpy()
    np.testing.assert_allclose(cosine, [0.6, 0.0, -1.0])


def test_accuracy():
    assert metrics.accuracy(
        np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]]), np.array([1, 1, 1])
    ) == pytest.approx(2 / 3)
