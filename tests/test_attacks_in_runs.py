"""Attacks and defences inside runs (issue 20): engine == steps with attackers and every defence."""

from __future__ import annotations

import numpy as np
import pytest

from fedlab import partition, steps
from fedlab.algorithms import FedAvg
from fedlab.engine import Simulation
from fedlab.models import model_fn
from fedlab.poisoning import (
    ALittleIsEnough,
    Attackers,
    Backdoor,
    Combined,
    GaussianUpdate,
    LabelFlip,
    ScaledUpdate,
    SignFlip,
)

MLP = model_fn("mlp", 10)
ATTACKS = {
    "sign-flip": SignFlip(),
    "gaussian": GaussianUpdate(0.5),
    "label-flip": LabelFlip(),
    "backdoor+boost": Combined(Backdoor(target=0), ScaledUpdate(3.0)),
    "alie": ALittleIsEnough(),
}


@pytest.fixture(scope="module")
def small(digits):
    return partition.iid(digits.y_train[:300], num_clients=6, seed=0)


def _assert_close(a, b, tol=2e-5):
    for x, y in zip(a, b, strict=True):
        np.testing.assert_allclose(x, y, rtol=tol, atol=tol)


@pytest.mark.parametrize("strategy", ["vectorized", "loop"])
@pytest.mark.parametrize("name", list(ATTACKS))
def test_engine_equals_steps_with_attackers(digits, small, name, strategy):
    attackers = Attackers(ATTACKS[name], count=2)
    algorithm = FedAvg(client_lr=0.1, batch_size=16)
    sim = Simulation(algorithm, MLP, digits, small, 4, seed=3, strategy=strategy, attackers=attackers)
    model, weights = steps.initialize(MLP, digits.x_train, seed=3)
    _assert_close(weights, sim.weights)
    record = sim.step()
    by_hand = steps.run_round(
        model, weights, digits, small, algorithm, 4, 1, seed=3, attackers=attackers
    )
    assert record.clients == tuple(r.client_id for r in by_hand.clients)
    assert record.malicious == by_hand.malicious
    assert set(record.malicious) <= set(sim.malicious.tolist())
    _assert_close(sim.weights, by_hand.weights)
    assert sim.history.config["attackers"]["malicious"] == sim.malicious.tolist()


def test_attackers_change_the_run_and_are_recorded(digits, small):
    honest = Simulation(FedAvg(client_lr=0.1), MLP, digits, small, seed=1)
    attacked = Simulation(
        FedAvg(client_lr=0.1), MLP, digits, small, seed=1, attackers=Attackers(SignFlip(), count=2)
    )
    a, b = honest.step(), attacked.step()
    assert a.malicious == () and len(b.malicious) == 2
    assert not np.allclose(honest.weights[0], attacked.weights[0])
    assert np.isnan(b.backdoor_success)  # no backdoor: nothing to measure


def test_the_backdoor_success_rate_is_measured_every_evaluation_round(digits, small):
    sim = Simulation(
        FedAvg(client_lr=0.1),
        MLP,
        digits,
        small,
        seed=1,
        evaluate_every=2,
        attackers=Attackers(Backdoor(target=0), count=2),
    )
    first, second = sim.step(), sim.step()
    assert np.isnan(first.backdoor_success) and 0.0 <= second.backdoor_success <= 1.0
    x, y = Backdoor(target=0).evaluation_sets(sim._x_test, sim._y_test)["backdoor_success"]
    assert second.backdoor_success == pytest.approx(sim.evaluate(x=x, y=y)[1])


def test_bad_attackers_are_refused(digits, small):
    with pytest.raises(TypeError, match="attackers must be a fedlab Attackers"):
        Simulation(FedAvg(), MLP, digits, small, attackers=SignFlip())
