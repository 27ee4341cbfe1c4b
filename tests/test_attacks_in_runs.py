"""Attacks and defences inside runs (issue 20): engine == steps with attackers and every defence."""

from __future__ import annotations

import numpy as np
import pytest

from fedlab import partition, robust, steps
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
from fedlab.privacy import DPFedAvg
from fedlab.secure_aggregation import SecureAggregation

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
    sim = Simulation(
        algorithm, MLP, digits, small, 4, seed=3, strategy=strategy, attackers=attackers
    )
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


# -- every defence in a run: engine == steps, before-round-1 refusals --------------------------------

DEFENCES = {
    "median": lambda: robust.CoordinateMedian(),
    "trimmed-mean": lambda: robust.TrimmedMean(0.2),
    "krum": lambda: robust.Krum(num_byzantine=2),
    "multi-krum": lambda: robust.Krum(num_byzantine=2, num_selected=3),
    "bulyan": lambda: robust.Bulyan(num_byzantine=1),
    "clipping": lambda: robust.NormClipping(clip_norm=0.5),
    "geometric-median": lambda: robust.GeometricMedian(),
}


@pytest.fixture(scope="module")
def eight(digits):
    return partition.iid(digits.y_train[:400], num_clients=8, seed=0)


@pytest.mark.parametrize("strategy", ["vectorized", "loop"])
@pytest.mark.parametrize("name", list(DEFENCES))
def test_engine_equals_steps_with_every_defence_under_attack(digits, eight, name, strategy):
    algorithm = FedAvg(client_lr=0.1, batch_size=16).with_aggregator(DEFENCES[name]())
    attackers = Attackers(SignFlip(5.0), count=2)
    sim = Simulation(algorithm, MLP, digits, eight, seed=4, strategy=strategy, attackers=attackers)
    model, weights = steps.initialize(MLP, digits.x_train, seed=4)
    record = sim.step()
    by_hand = steps.run_round(
        model, weights, digits, eight, algorithm, 8, 1, seed=4, attackers=attackers
    )
    _assert_close(sim.weights, by_hand.weights, tol=5e-5)
    assert by_hand.aggregation_info.get("defence_kept", ()) == record.defence_kept
    if name in ("krum", "multi-krum"):  # f = 2 covers both attackers: neither is selected
        assert record.defence_kept and not set(record.defence_kept) & set(record.malicious)
    if name == "bulyan":  # θ = K − 2f = 6 updates selected (f = 1 < the 2 attackers)
        assert len(record.defence_kept) == 6
    if name == "clipping":
        assert set(record.malicious) <= set(record.defence_clipped)


def test_defences_refuse_what_they_cannot_honour_before_round_one(digits, eight):
    krum = FedAvg().with_aggregator(robust.Krum(num_byzantine=3))
    with pytest.raises(ValueError, match=r"more than 2·3 \+ 2 = 8 clients per round, got 6"):
        Simulation(krum, MLP, digits, eight, clients_per_round=6)
    with pytest.raises(ValueError, match="cannot run through SecureAggregation"):
        Simulation(
            FedAvg().with_aggregator(robust.CoordinateMedian()),
            MLP,
            digits,
            eight,
            secure_aggregation=SecureAggregation(),
        )
    with pytest.raises(ValueError, match="DP-FedAvg's aggregate .* is part of the algorithm"):
        DPFedAvg().with_aggregator(robust.Krum(1))
