"""Stragglers: who straggles, how much work they do, and that the engine and the steps agree."""

from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fedlab  # noqa: F401  (quiet TensorFlow first)
from fedlab import partition, steps
from fedlab.algorithms import Algorithm, FedAvg, ServerSGD
from fedlab.engine import Simulation, simulate
from fedlab.history import History
from fedlab.models import FedModel, logistic_regression
from fedlab.stragglers import Stragglers, steps_per_epoch


@pytest.fixture(scope="module")
def uneven_split(digits):
    """Six clients of different sizes (so budgets and padding differ between clients)."""
    order = np.random.default_rng(0).permutation(digits.num_train)[:300]
    cuts = np.cumsum([13, 70, 41, 9, 100])
    return partition.ClientSplit.from_indices(
        np.split(order, cuts), digits.y_train, scheme="uneven"
    )


def mlp():
    return FedModel(num_classes=10, hidden_units=16)


@dataclass(frozen=True)
class ProxLike(Algorithm):
    """A different client update (FedProx's proximal term), to show stragglers do not depend on it."""

    mu: float = 1.0

    def local_gradient(self, grads, weights, broadcast_weights, client_state=(), broadcast=()):
        return [
            g + self.mu * (w - w0)
            for g, w, w0 in zip(grads, weights, broadcast_weights, strict=True)
        ]


@dataclass(frozen=True)
class CountsSteps(Algorithm):
    """Its client state adds up the local steps it is told it took (``num_steps``)."""

    def client_state_init(self, weights):
        return [np.zeros(1, np.float32)]

    def client_state_update(self, client_state, delta, num_steps, client_lr, broadcast=()):
        return [client_state[0] + num_steps]


# -- the plan ---------------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 60), min_size=1, max_size=12),
    fraction=st.floats(0.0, 1.0),
    local_epochs=st.integers(1, 6),
    batch_size=st.one_of(st.none(), st.integers(1, 25)),
    round_num=st.integers(1, 50),
    seed=st.integers(0, 2**20),
)
def test_plan_counts_and_budgets(sizes, fraction, local_epochs, batch_size, round_num, seed):
    stragglers = Stragglers(fraction, drop=False)
    is_straggler, budget = stragglers.plan(sizes, local_epochs, batch_size, round_num, seed)
    k = len(sizes)
    assert is_straggler.sum() == k - round(k * (1 - fraction))
    per_epoch = np.array([steps_per_epoch(n, batch_size) for n in sizes])
    full = local_epochs * per_epoch
    np.testing.assert_array_equal(budget[~is_straggler], full[~is_straggler])
    chosen = is_straggler
    for b, e, s in zip(budget[chosen], per_epoch[chosen], full[chosen], strict=True):
        if local_epochs > 1:  # whole epochs, fewer than E
            assert b % e == 0 and 1 <= b // e <= local_epochs - 1
        else:  # fewer steps than the full count, at least one
            assert 1 <= b <= max(s - 1, 1)
    again = stragglers.plan(sizes, local_epochs, batch_size, round_num, seed)
    np.testing.assert_array_equal(again[0], is_straggler)
    np.testing.assert_array_equal(again[1], budget)


def test_plan_is_nested_across_fractions_and_varies_by_round():
    sizes = [30] * 10
    half, _ = Stragglers(0.5).plan(sizes, 20, 10, round_num=3, seed=7)
    most, _ = Stragglers(0.9).plan(sizes, 20, 10, round_num=3, seed=7)
    assert half.sum() == 5 and most.sum() == 9
    assert np.all(most[half]), "the stragglers at 50 % are among those at 90 %"
    rounds = {tuple(Stragglers(0.5).plan(sizes, 20, 10, r, seed=7)[0]) for r in range(1, 6)}
    assert len(rounds) > 1


def test_budgets_cover_the_whole_range_of_epochs():
    seen = set()
    for round_num in range(1, 40):
        is_straggler, budget = Stragglers(1.0, min_epochs=2).plan([20] * 10, 5, 10, round_num)
        seen |= set((budget // 2).tolist())
    assert seen == {2, 3, 4}  # epochs in [min_epochs, E - 1]


def test_one_epoch_budgets_are_steps_and_a_single_step_is_kept():
    _, budget = Stragglers(1.0).plan([100, 1], 1, 10, round_num=1)
    assert 1 <= budget[0] <= 9 and budget[1] == 1


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"fraction": -0.1}, ValueError, r"fraction must be a finite number in \[0, 1\]"),
        ({"fraction": 1.5}, ValueError, "fraction"),
        ({"fraction": float("nan")}, ValueError, "fraction"),
        ({"fraction": "half"}, TypeError, "fraction must be a number"),
        ({"fraction": 0.5, "drop": 1}, TypeError, "drop must be True or False"),
        ({"fraction": 0.5, "min_epochs": 0}, ValueError, r"min_epochs must be an integer in \[1"),
    ],
)
def test_stragglers_reject_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        Stragglers(**kwargs)


def test_simulation_rejects_bad_stragglers(digits, uneven_split):
    with pytest.raises(TypeError, match="stragglers must be a fedlab Stragglers"):
        Simulation(FedAvg(), mlp, digits, uneven_split, stragglers=0.5)
    with pytest.raises(ValueError, match=r"min_epochs must be an integer in \[1, 2\]"):
        Simulation(
            FedAvg(local_epochs=3), mlp, digits, uneven_split, stragglers=Stragglers(0.5, False, 3)
        )
    with pytest.raises(TypeError, match="stragglers must be a fedlab Stragglers"):
        steps.run_round(None, [], digits, uneven_split, FedAvg(), 2, 1, stragglers="some")


# -- the engine and the steps -----------------------------------------------------------------
def assert_weights_close(got, want, tol=2e-5):
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=tol, atol=tol)


@pytest.mark.parametrize("strategy", ["vectorized", "loop"])
@pytest.mark.parametrize("drop", [True, False], ids=["drop", "keep"])
def test_engine_equals_steps_with_stragglers(digits, uneven_split, drop, strategy):
    algorithm = CountsSteps(local_epochs=3, batch_size=16, client_lr=0.1)
    stragglers = Stragglers(0.5, drop=drop)
    sim = Simulation(
        algorithm,
        mlp,
        digits,
        uneven_split,
        clients_per_round=4,
        seed=4,
        strategy=strategy,
        stragglers=stragglers,
    )
    model, weights = steps.initialize(mlp, digits.x_train, seed=4)
    client_states = None
    for round_num in (1, 2):
        by_hand = steps.run_round(
            model,
            weights,
            digits,
            uneven_split,
            algorithm,
            4,
            round_num,
            seed=4,
            client_states=client_states,
            stragglers=stragglers,
        )
        weights, client_states = by_hand.weights, by_hand.client_states
        record = sim.step()
        assert len(record.stragglers) == 2
        assert record.stragglers == by_hand.stragglers
        assert record.dropped == by_hand.dropped == (record.stragglers if drop else ())
        assert record.clients == tuple(r.client_id for r in by_hand.clients)
        assert len(record.clients) == (2 if drop else 4)
        assert record.client_steps == tuple(r.num_steps for r in by_hand.clients)
        full = {
            k: 3 * steps_per_epoch(len(uneven_split.client_indices[k]), 16) for k in record.clients
        }
        short = [n < full[k] for k, n in zip(record.clients, record.client_steps, strict=True)]
        assert short == [k in record.stragglers for k in record.clients]
        np.testing.assert_allclose(record.client_loss, [r.loss for r in by_hand.clients], rtol=1e-5)
        assert_weights_close(sim.weights, weights)
        # CountsSteps keeps one number per client: its change goes up with each update
        assert sim.extra_bytes_up == 4 and sim.extra_bytes_down == 0
        assert record.bytes_down == 4 * sim.model_bytes
        assert record.bytes_up == len(record.clients) * (sim.model_bytes + 4)
        for k in range(uneven_split.num_clients):  # the state counts the steps actually taken
            np.testing.assert_allclose(sim.client_states[0][k], client_states[k][0])
    taken = sum(sum(record.client_steps) for record in sim.history.rounds)
    assert sim.client_states[0].sum() == pytest.approx(taken)
    assert sim.trace_count == 1


def test_same_seed_same_stragglers_whatever_the_algorithm(digits, uneven_split):
    def run(algorithm):
        return simulate(
            algorithm,
            mlp,
            digits,
            uneven_split,
            num_rounds=3,
            clients_per_round=4,
            seed=9,
            progress=False,
            stragglers=Stragglers(0.5, drop=False),
        )

    fedavg = run(FedAvg(local_epochs=3, batch_size=16, client_lr=0.1))
    prox = run(ProxLike(local_epochs=3, batch_size=16, client_lr=0.1, mu=1.0))
    for a, b in zip(fedavg.rounds, prox.rounds, strict=True):
        assert a.stragglers == b.stragglers and len(a.stragglers) == 2
        assert a.client_steps == b.client_steps
    assert {r.stragglers for r in fedavg.rounds} != {fedavg.rounds[0].stragglers}
    assert not np.allclose(fedavg.train_loss, prox.train_loss), "the algorithms did differ"


def test_no_stragglers_changes_nothing(digits, uneven_split):
    def run(stragglers):
        sim = Simulation(
            FedAvg(local_epochs=2, batch_size=16),
            mlp,
            digits,
            uneven_split,
            clients_per_round=3,
            seed=1,
            stragglers=stragglers,
        )
        sim.run(2, progress=False)
        return sim

    plain, zero = run(None), run(Stragglers(0.0))
    assert_weights_close(zero.weights, plain.weights, tol=0)
    assert zero.history.train_loss.tolist() == plain.history.train_loss.tolist()
    assert zero.history.num_stragglers.tolist() == [0, 0]
    assert zero.history.config["stragglers"] == {"fraction": 0.0, "drop": True, "min_epochs": 1}
    assert "stragglers" not in plain.history.config


class Momentum(ServerSGD):
    """A server optimiser with state, to check an empty round leaves it alone."""

    def init(self, weights):
        return {"steps": 0}

    def apply(self, weights, delta, state):
        new, _ = super().apply(weights, delta, state)
        return new, {"steps": state["steps"] + 1}


@pytest.mark.parametrize("strategy", ["vectorized", "loop"])
def test_round_with_every_client_dropped_keeps_the_global_model(digits, uneven_split, strategy):
    algorithm = Algorithm(batch_size=16, server_optimizer=Momentum())
    sim = Simulation(
        algorithm,
        mlp,
        digits,
        uneven_split,
        clients_per_round=3,
        strategy=strategy,
        stragglers=Stragglers(1.0, drop=True),
    )
    before = [w.copy() for w in sim.weights]
    loss, accuracy = sim.evaluate()
    record = sim.step()
    assert record.clients == () and record.client_loss == () and record.client_steps == ()
    assert len(record.stragglers) == 3 and record.dropped == record.stragglers
    assert np.isnan(record.train_loss) and np.isnan(record.drift_mean)
    assert record.bytes_up == 0 and record.bytes_down == 3 * sim.model_bytes
    assert (record.test_loss, record.test_accuracy) == (loss, accuracy)
    assert_weights_close(sim.weights, before, tol=0)
    assert sim.server_state == {"steps": 0}
    assert sim.history.num_participants.tolist() == [0]

    model, weights = steps.initialize(mlp, digits.x_train, seed=0)
    by_hand = steps.run_round(
        model, weights, digits, uneven_split, algorithm, 3, 1, stragglers=Stragglers(1.0)
    )
    assert by_hand.clients == [] and by_hand.dropped == record.dropped
    assert_weights_close(by_hand.weights, before, tol=0)
    assert by_hand.server_state == {"steps": 0}
    assert all(not d.any() for d in by_hand.aggregated_delta)


def test_all_stragglers_kept_still_train(digits, uneven_split):
    sim = Simulation(
        FedAvg(local_epochs=2, batch_size=16),
        lambda: logistic_regression(10),
        digits,
        uneven_split,
        clients_per_round=3,
        stragglers=Stragglers(1.0, drop=False),
    )
    before = [w.copy() for w in sim.weights]
    record = sim.step()
    assert len(record.clients) == 3 and record.dropped == () and len(record.stragglers) == 3
    sizes = [len(uneven_split.client_indices[k]) for k in record.clients]
    assert list(record.client_steps) == [steps_per_epoch(n, 16) for n in sizes]  # 1 of 2 epochs
    assert not np.allclose(sim.weights[0], before[0])


def test_history_with_stragglers_survives_json(digits, uneven_split, tmp_path):
    history = simulate(
        FedAvg(local_epochs=2, batch_size=16),
        mlp,
        digits,
        uneven_split,
        num_rounds=2,
        clients_per_round=2,
        progress=False,
        stragglers=Stragglers(1.0, drop=True),
    )
    history.save(tmp_path / "h.json")
    loaded = History.load(tmp_path / "h.json")
    assert loaded == history
    assert loaded.rounds[0].dropped == history.rounds[0].dropped and len(loaded.rounds[0].dropped)
    assert loaded.num_dropped.tolist() == [2, 2]
