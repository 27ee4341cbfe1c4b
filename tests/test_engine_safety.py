"""Nothing lost inside a run (issue 18): a round is a transaction that Ctrl-C, an error or a
divergence undo completely; an interrupted run keeps the rounds it did; a round that cannot be
aggregated is recorded, not fatal; an exploding loss is reported; bad data and settings are
refused before training; fresh lambdas do not fill the kernel cache.

The interrupt tests send a real SIGINT to this process at a chosen stage of a round (the handler
Python installs turns it into KeyboardInterrupt at the next bytecode), not a mocked exception."""

import dataclasses
import gc
import math

import numpy as np
import pytest

import fedlab
from fedlab import engine, partition
from fedlab.algorithms import FedAvg, Scaffold
from fedlab.compression import ErrorFeedback, TopK
from fedlab.data import Dataset
from fedlab.engine import DivergenceError, RunInterrupted, Simulation, simulate
from fedlab.models import FedModel
from fedlab.personalization import Ditto
from fedlab.privacy import DPFedAvg
from fedlab.secure_aggregation import SecureAggregation
from fedlab.stragglers import Stragglers


def mlp():
    return FedModel(num_classes=10, hidden_units=16)


@pytest.fixture(scope="module")
def small(digits):
    """300 digits over six clients."""
    order = np.random.default_rng(1).permutation(digits.num_train)[:300]
    return partition.ClientSplit.from_indices(np.array_split(order, 6), digits.y_train)


def state_of(sim):
    """Everything a round changes, as plain arrays and numbers."""
    acc = sim._accountant
    return {
        "weights": [w.copy() for w in sim.weights],
        "arrays": [a.copy() for a in sim._arrays_changed_in_place()],
        "rounds": len(sim.history),
        "epsilon": acc.epsilon() if acc is not None else None,
        "server": [np.copy(v) for vs in sim.server_state.values() for v in vs]
        if isinstance(sim.server_state, dict)
        else [],
    }


def assert_same_state(a, b):
    assert a["rounds"] == b["rounds"] and a["epsilon"] == b["epsilon"]
    for key in ("weights", "arrays", "server"):
        assert len(a[key]) == len(b[key])
        for x, y in zip(a[key], b[key], strict=True):
            np.testing.assert_array_equal(x, y)


def interrupt_in(sim, name, monkeypatch, target=None):
    """Make ``target.name`` (default: the simulation's method) be interrupted by Ctrl-C once: it
    raises KeyboardInterrupt where it starts, as Python's SIGINT handler does in the main thread.

    Raised here rather than sent with ``os.kill``: a signal is handled in the main thread, which
    under some test runners is not the one running the test (the real signals are
    tests/test_cli_interrupts.py's, sent to a process)."""
    target = sim if target is None else target
    original = getattr(target, name)
    calls = {"n": 0}

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(target, name, interrupted)
    return calls


SETTINGS = {
    "dp": dict(algorithm=DPFedAvg(noise_multiplier=1.0, clip_norm=0.5, client_lr=0.1)),
    "scaffold+ef": dict(
        algorithm=Scaffold(client_lr=0.05, batch_size=16),
        compression=ErrorFeedback(TopK(0.2)),
    ),
    "ditto": dict(algorithm=Ditto(lam=0.1, client_lr=0.1, batch_size=16)),
}
STAGES = {
    "dp": [
        "_aggregate_and_update",
        "step@accountant",
        "evaluate",
        "_state_norms",
        "_keep_client_state",
    ],
    "scaffold+ef": ["_upload", "_update", "evaluate", "_keep_client_state"],
    "ditto": ["_global_update", "_evaluate_clients", "_keep_client_state"],
}
CASES = [(name, stage) for name, stages in STAGES.items() for stage in stages]


@pytest.mark.parametrize("name, stage", CASES, ids=[f"{n}-{s}" for n, s in CASES])
def test_ctrl_c_at_any_stage_of_a_round_undoes_all_of_it(digits, small, monkeypatch, name, stage):
    kwargs = SETTINGS[name]
    reference = Simulation(model_fn=mlp, data=digits, split=small, clients_per_round=3, **kwargs)
    reference.run(3, progress=False)
    sim = Simulation(model_fn=mlp, data=digits, split=small, clients_per_round=3, **kwargs)
    sim.run(2, progress=False)
    before = state_of(sim)
    method, _, where = stage.partition("@")
    target = sim._accountant if where == "accountant" else None
    calls = interrupt_in(sim, method, monkeypatch, target)
    with pytest.raises(KeyboardInterrupt):
        sim.step()
    assert calls["n"] == 1  # the stage was reached
    assert_same_state(state_of(sim), before)  # as after round 2: nothing of round 3 is left
    record = sim.step()  # round 3 again, from the same state: as if never interrupted
    assert record.round == 3
    assert sim.history.matches(reference.history)
    assert_same_state(state_of(sim), state_of(reference))


def test_an_interrupted_dp_run_does_not_overstate_epsilon(digits, small, monkeypatch):
    algorithm = DPFedAvg(noise_multiplier=0.8, clip_norm=0.5, client_lr=0.1)
    clean = simulate(algorithm, mlp, digits, small, num_rounds=4, progress=False)
    sim = Simulation(algorithm, mlp, digits, small)
    sim.run(3, progress=False)
    interrupt_in(sim, "evaluate", monkeypatch)
    with pytest.raises(RunInterrupted) as stopped:
        sim.run(1, progress=False)
    assert len(stopped.value.history) == 3
    sim.run(1, progress=False)
    assert sim.history.epsilon[-1] == clean.epsilon[-1]
    assert sim.history.round.tolist() == [1, 2, 3, 4]


def test_an_interrupted_run_keeps_the_rounds_it_did(digits, small, monkeypatch):
    sim = Simulation(FedAvg(), mlp, digits, small)

    def stop_in_round_4(record, history):
        if record.round == 3:
            interrupt_in(sim, "evaluate", monkeypatch)

    with pytest.raises(RunInterrupted, match="after round 3") as stopped:
        sim.run(10, callbacks=stop_in_round_4, progress=False)
    assert isinstance(stopped.value, KeyboardInterrupt)
    assert stopped.value.history.round.tolist() == [1, 2, 3]


def test_a_divergence_undoes_the_round_that_diverged(digits, small):
    sim = Simulation(Ditto(lam=0.1, client_lr=0.1), mlp, digits, small)
    sim.step()
    before = state_of(sim)
    sim.algorithm = dataclasses.replace(sim.algorithm, client_lr=1e6)
    with pytest.raises(DivergenceError):
        sim.step()
    assert_same_state(state_of(sim), before)


# --- callbacks --------------------------------------------------------------------------------------


def test_one_callback_function_is_accepted_and_a_wrong_one_named(digits, small):
    seen = []
    simulate(
        FedAvg(),
        mlp,
        digits,
        small,
        num_rounds=2,
        callbacks=lambda r, h: seen.append(r.round),
        progress=False,
    )
    assert seen == [1, 2]
    with pytest.raises(
        TypeError, match="callbacks must be a function f\\(record, history\\) or a list"
    ):
        simulate(FedAvg(), mlp, digits, small, num_rounds=1, callbacks=3, progress=False)
    with pytest.raises(TypeError, match="callbacks\\[1\\] must be a function"):
        simulate(FedAvg(), mlp, digits, small, num_rounds=1, callbacks=[print, "x"], progress=False)


# --- rounds that cannot be aggregated ---------------------------------------------------------------


def test_secure_aggregation_with_one_client_per_round_is_refused_before_training(digits, small):
    with pytest.raises(ValueError, match="at least 2 clients per round.*clients_per_round=1"):
        Simulation(
            FedAvg(),
            mlp,
            digits,
            small,
            clients_per_round=1,
            secure_aggregation=SecureAggregation(),
        )


def test_a_round_left_with_one_client_by_stragglers_is_recorded_as_aborted(digits, small):
    history = simulate(
        FedAvg(),
        mlp,
        digits,
        small,
        num_rounds=12,
        clients_per_round=3,
        stragglers=Stragglers(0.6, drop=True),
        secure_aggregation=SecureAggregation(),
        progress=False,
    )
    assert len(history) == 12  # the run went on
    lonely = [r for r in history.rounds if len(r.clients) == 1]
    assert lonely, "no round had one survivor: choose another seed"
    sim = Simulation(
        FedAvg(),
        mlp,
        digits,
        small,
        clients_per_round=3,
        stragglers=Stragglers(0.6, drop=True),
        secure_aggregation=SecureAggregation(),
    )
    for record in history.rounds:
        before = [w.copy() for w in sim.weights]
        got = sim.step()
        if len(record.clients) == 1:
            assert got.secure_aborted
            for a, b in zip(before, sim.weights, strict=True):
                np.testing.assert_array_equal(a, b)  # the server refused: the model stays


# --- an exploding loss ------------------------------------------------------------------------------


@pytest.mark.parametrize("client_lr", [1e2, 1e4, 1e6])
def test_an_exploding_loss_is_a_divergence_with_round_and_clients(digits, small, client_lr):
    with pytest.raises(DivergenceError, match="round 1: an exploding loss") as caught:
        simulate(FedAvg(client_lr=client_lr), mlp, digits, small, num_rounds=5, progress=False)
    assert caught.value.round == 1 and len(caught.value.clients) >= 1
    assert len(caught.value.history) == 0


def test_an_ordinary_large_learning_rate_is_not_called_exploded(digits, small):
    history = simulate(FedAvg(client_lr=1.0), mlp, digits, small, num_rounds=5, progress=False)
    assert len(history) == 5


def test_dp_noise_without_a_clip_is_refused_when_made():
    with pytest.raises(ValueError, match="needs a finite clip_norm"):
        DPFedAvg(noise_multiplier=1.0, clip_norm=math.inf)
    DPFedAvg(noise_multiplier=0.0, clip_norm=math.inf)  # no noise, no clip: allowed


# --- data the engine can trust ----------------------------------------------------------------------


def variant(digits, **changes):
    return dataclasses.replace(digits, **changes)


@pytest.mark.parametrize(
    "change, error, message",
    [
        (
            lambda d: dict(y_train=d.y_train + 10),
            ValueError,
            r"data.y_train holds the label 19, outside \[0, 10\)",
        ),
        (lambda d: dict(y_test=d.y_test - 1), ValueError, r"data.y_test holds the label -1"),
        (
            lambda d: dict(y_train=d.y_train + 0.9),
            ValueError,
            "data.y_train holds non-integer labels",
        ),
        (lambda d: dict(y_train=d.y_train.astype(np.int64) + 2**33), ValueError, "outside"),
        (lambda d: dict(y_train=d.y_train[:-5]), ValueError, "data.y_train 1432 labels"),
        (lambda d: dict(x_test=d.x_test[:, :32]), ValueError, "same shape"),
        (
            lambda d: dict(x_test=d.x_test[:0], y_test=d.y_test[:0]),
            ValueError,
            "data.x_test is empty",
        ),
        (lambda d: dict(y_train=d.y_train.astype(str)), TypeError, "integer class ids"),
    ],
)
def test_bad_data_is_refused_before_training_naming_the_field(
    digits, small, change, error, message
):
    bad = variant(digits, **change(digits))
    with pytest.raises(error, match=message):
        Simulation(FedAvg(), mlp, bad, small)


def test_labels_the_model_has_no_output_for_are_refused(digits, small):
    five = lambda: FedModel(num_classes=5, hidden_units=8)  # noqa: E731
    with pytest.raises(
        ValueError, match="the model gives 5 outputs .* label 9.*at least 10 outputs"
    ):
        Simulation(FedAvg(), five, digits, small)


def test_whole_float_labels_are_accepted(digits, small):
    as_float = variant(digits, y_train=digits.y_train.astype(np.float32))
    Simulation(FedAvg(), mlp, as_float, small)


@pytest.mark.parametrize(
    "num_classes, error", [(0, ValueError), ("ten", TypeError), (2.5, TypeError)]
)
def test_a_dataset_needs_a_whole_number_of_classes(digits, num_classes, error):
    with pytest.raises(error, match="num_classes"):
        Dataset("d", digits.x_train, digits.y_train, digits.x_test, digits.y_test, num_classes)


# --- the kernel cache -------------------------------------------------------------------------------


def test_kernels_of_fresh_lambdas_are_dropped_once_the_lambdas_are_gone(digits, small):
    gc.collect()
    simulate(FedAvg(), mlp, digits, small, num_rounds=1, progress=False)  # purges what died before
    before = len(engine._KERNELS)
    for _ in range(4):
        simulate(
            FedAvg(),
            lambda: FedModel(10, hidden_units=16),
            digits,
            small,
            num_rounds=1,
            progress=False,
        )
    gc.collect()
    simulate(FedAvg(), mlp, digits, small, num_rounds=1, progress=False)  # purges
    assert len(engine._KERNELS) <= before + 1  # only the named function's kernel stays
    kept = lambda: FedModel(10, hidden_units=16)  # noqa: E731 - a lambda that lives is reused
    simulate(FedAvg(), kept, digits, small, num_rounds=1, progress=False)
    count = len(engine._KERNELS)
    simulate(FedAvg(), kept, digits, small, num_rounds=1, progress=False)
    assert len(engine._KERNELS) == count


def test_the_package_exports_run_interrupted():
    assert fedlab.RunInterrupted is RunInterrupted
