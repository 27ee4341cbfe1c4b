"""The checks of notebook 05's exercises (fedlab/exercises/corrections.py): each passes the right
answer and names each anticipated mistake with its own message, and fails on the stub."""

import numpy as np
import pytest

from fedlab import exercises
from fedlab.exercises import CheckFailed
from fedlab.history import History


def fails(check, *args, match: str, **kwargs):
    with pytest.raises(CheckFailed, match=match):
        check(*args, **kwargs)


# --- FedProx's local steps -----------------------------------------------------------------------


def prox_sgd(pull, *, spring_lr=True, at_start=False, extra_steps=0, copy=True):
    """A fedprox_local_sgd whose spring is ``pull(w, w_global, mu)``, with optional slips."""

    def fedprox_local_sgd(w_global, gradient, mu, lr, num_steps):
        w = [a.copy() for a in w_global] if copy else w_global
        first = gradient(w_global)
        for _ in range(num_steps + extra_steps):
            g = first if at_start else gradient(w)
            spring = [lr * p if spring_lr else p for p in pull(w, w_global, mu)]
            if copy:
                w = [wi - lr * gi - si for wi, gi, si in zip(w, g, spring, strict=True)]
            else:  # in place: w is w_global, so the anchor moves along with w
                for wi, gi, si in zip(w, g, spring, strict=True):
                    wi -= lr * gi + si
        return w

    return fedprox_local_sgd


def spring(scale):
    return lambda w, w0, mu: [scale(mu) * (a - b) for a, b in zip(w, w0, strict=True)]


PROX_MISTAKES = {
    "changed w_global in place": prox_sgd(spring(lambda mu: mu), copy=False),
    "plain SGD": prox_sgd(spring(lambda mu: 0.0)),
    "missing μ": prox_sgd(spring(lambda mu: 1.0)),
    "wrong sign": prox_sgd(spring(lambda mu: -mu)),
    "twice too strong": prox_sgd(spring(lambda mu: 2 * mu)),
    "half as strong": prox_sgd(spring(lambda mu: mu / 2)),
    "weight decay": prox_sgd(lambda w, w0, mu: [mu * a for a in w]),
    "not scaled by lr": prox_sgd(spring(lambda mu: mu), spring_lr=False),
    "gradient at w_global in every step": prox_sgd(spring(lambda mu: mu), at_start=True),
    r"takes \d+ steps": prox_sgd(spring(lambda mu: mu), extra_steps=1),
    "returns w_global unchanged": lambda w_global, gradient, mu, lr, n: w_global,
    "one array per layer": lambda w_global, gradient, mu, lr, n: w_global[0],
    "returns 1 arrays for 2 layers": lambda w_global, gradient, mu, lr, n: w_global[:1],
    "returns None": lambda w_global, gradient, mu, lr, n: None,
    "raised ZeroDivisionError": lambda w_global, gradient, mu, lr, n: 1 / 0,
}


@pytest.mark.parametrize("seed", [None, 1, 7])
def test_the_fedprox_check_names_each_wrong_spring(seed, capsys):
    exercises.check_fedprox_local_sgd(prox_sgd(spring(lambda mu: mu)), seed=seed)
    assert capsys.readouterr().out.startswith("✓ fedprox_local_sgd steps along")
    for message, wrong in PROX_MISTAKES.items():
        fails(exercises.check_fedprox_local_sgd, wrong, seed=seed, match=message)


def test_the_fedprox_check_counts_steps_both_ways():
    fails(
        exercises.check_fedprox_local_sgd,
        prox_sgd(spring(lambda mu: mu), extra_steps=-1),
        match="takes 4 steps; take num_steps = 5",
    )


# --- the μ sweep ---------------------------------------------------------------------------------


class Run:
    """What the checks read of a History: its config, accuracy, drift and bytes."""

    def __init__(self, accuracy, name="FedProx", mu=None, drift=0.5, per_round=1_000_000):
        algorithm = {"name": name, **({"mu": mu} if mu is not None else {})}
        self.config = {"algorithm": algorithm}
        self.test_accuracy = np.asarray(accuracy, dtype=np.float64)
        self.drift_mean = np.full(len(accuracy), drift)
        self.bytes_down = np.full(len(accuracy), per_round // 2)
        self.bytes_up = np.full(len(accuracy), per_round - per_round // 2)
        self.megabytes_sent = np.cumsum(self.bytes_down + self.bytes_up) / 1e6


def sweep_runs():
    # μ = 0.01 is best over the last five rounds; μ = 1 has the least drift; μ = 0.1 the best
    # final round; FedAvg (μ = 0) is close, but not within the tolerance
    sweep = {
        0.01: Run([0.5, 0.90, 0.91, 0.90, 0.91, 0.90], mu=0.01, drift=0.8),
        0.1: Run([0.5, 0.84, 0.84, 0.84, 0.84, 0.95], mu=0.1, drift=0.7),
        1.0: Run([0.5, 0.85, 0.85, 0.85, 0.85, 0.85], mu=1.0, drift=0.4),
        3.0: Run([0.5, 0.80, 0.80, 0.80, 0.80, 0.80], mu=3.0, drift=0.6),
    }
    section_4 = {
        "FedAvg": Run([0.5, 0.89, 0.89, 0.89, 0.89, 0.89], name="FedAvg", drift=0.9),
        "SCAFFOLD": Run([0.5, 0.97, 0.97, 0.97, 0.97, 0.97], name="SCAFFOLD"),
    }
    return sweep, section_4


def test_the_best_mu_check_names_least_drift_final_round_and_a_mu_not_run(capsys):
    sweep, section_4 = sweep_runs()
    exercises.check_best_mu(0.01, sweep, section_4)  # SCAFFOLD is no μ: left out
    assert "best_mu = 0.01: last-5 accuracy 0.904 (FedAvg, μ = 0: 0.890)" in capsys.readouterr().out
    close = {**sweep, 0.001: Run([0.5, 0.9, 0.9, 0.9, 0.9, 0.9], mu=0.001)}
    exercises.check_best_mu(0.001, close, section_4)  # 0.002 behind the best: a tie
    mistakes = {
        "least client drift": 1.0,
        "best accuracy in the final round": 0.1,
        "0.800, below the best": 3.0,
        "last-5 accuracy of 0.890": 0,  # FedAvg, close but not within the tolerance
        "not a μ that was run: answer one of 0, 0.01, 0.1, 1, 3": 0.3,
        "should be a number": "0.01",
        "best_mu is still `...`": ...,
    }
    for message, answer in mistakes.items():
        fails(exercises.check_best_mu, answer, sweep, section_4, match=message)
    fails(exercises.check_best_mu, 0.01, [1, 2], match="should be a dict")
    fails(exercises.check_best_mu, ..., sweep, name="best_mu_20", match="best_mu_20 is still")


# --- SCAFFOLD's lead -----------------------------------------------------------------------------


def lead_runs():
    runs = {
        "FedAvg": Run([0.3, 0.8, 0.82, 0.84, 0.86, 0.88]),
        "SCAFFOLD": Run([0.4, 0.9, 0.91, 0.92, 0.93, 0.95]),
    }
    others = {
        ("FedAvg", 4): Run([0.2, 0.7, 0.75, 0.7, 0.72, 0.8]),
        ("SCAFFOLD", 4): Run([0.3, 0.9, 0.92, 0.9, 0.93, 0.91]),
        ("FedAvg", 20): Run([0.4, 0.85, 0.86, 0.9, 0.88, 0.9]),
        ("SCAFFOLD", 20): Run([0.5, 0.95, 0.96, 0.97, 0.96, 0.97]),
    }
    return runs, others


def test_the_lead_check_names_sign_final_round_all_rounds_and_percent():
    runs, others = lead_runs()

    def lead(measure):
        pairs = {m: (others["FedAvg", m], others["SCAFFOLD", m]) for m in (4, 20)}
        pairs[10] = (runs["FedAvg"], runs["SCAFFOLD"])
        return {m: measure(s) - measure(f) for m, (f, s) in pairs.items()}

    right = lead(lambda h: h.test_accuracy[-5:].mean())
    exercises.check_scaffold_lead(right, others, runs)
    mistakes = {
        "FedAvg's accuracy minus SCAFFOLD's": {m: -v for m, v in right.items()},
        "final round only": lead(lambda h: h.test_accuracy[-1]),
        "mean over all rounds": lead(lambda h: h.test_accuracy.mean()),
        "percentage points": {m: 100 * v for m, v in right.items()},
        "no entry for 20": {4: right[4], 10: right[10]},
        "is not SCAFFOLD's last-5 accuracy minus FedAvg's": {m: v + 0.01 for m, v in right.items()},
        "should be a dict": [right[4], right[10], right[20]],
        "scaffold_lead is still `...`": ...,
    }
    for message, wrong in mistakes.items():
        fails(exercises.check_scaffold_lead, wrong, others, runs, match=message)
    fails(exercises.check_scaffold_lead, right, ..., runs, match="participation_runs is still")


# --- what SCAFFOLD sends -------------------------------------------------------------------------


BYTES_MISTAKES = {
    "counts only the model": lambda p, k: (4 * p * k, 4 * p * k),
    "counts numbers, not bytes": lambda p, k: (2 * p * k, 2 * p * k),
    "counts one client": lambda p, k: (8 * p, 8 * p),
    "leaves Δc_k out of the upload": lambda p, k: (8 * p * k, 4 * p * k),
    "leaves c out of the download": lambda p, k: (4 * p * k, 8 * p * k),
    "sends c once for the whole round": lambda p, k: (4 * p * k + 4 * p, 8 * p * k),
    "8 bytes a number": lambda p, k: (16 * p * k, 16 * p * k),
    "the round's total": lambda p, k: 16 * p * k,
    "returns one number": lambda p, k: 3 * p,
    "returns 3 numbers": lambda p, k: (8 * p * k, 8 * p * k, 0),
    "is not what a SCAFFOLD round sends": lambda p, k: (8 * p * k + 1, 8 * p * k),
    "returns None": lambda p, k: None,
}


@pytest.mark.parametrize("seed", [None, 1, 5])
def test_the_bytes_check_names_each_forgotten_copy(seed):
    exercises.check_scaffold_round_bytes(lambda p, k: (8 * p * k, 8 * p * k), seed=seed)
    for message, wrong in BYTES_MISTAKES.items():
        fails(exercises.check_scaffold_round_bytes, wrong, seed=seed, match=message)


def test_the_megabytes_check_names_rounds_units_and_running_totals(capsys):
    runs = {
        "FedAvg": Run([0.5, 0.7, 0.8, 0.92, 0.95, 0.96], per_round=1_000_000),
        "SCAFFOLD": Run([0.6, 0.91, 0.95, 0.96, 0.97, 0.97], per_round=2_000_000),
        "FedProx": Run([0.5, 0.6, 0.7, 0.8, 0.85, 0.87]),
    }
    names = ("FedAvg", "SCAFFOLD")
    exercises.check_megabytes_to({"FedAvg": 4.0, "SCAFFOLD": 4.0}, runs, 0.9, names=names)
    assert "FedAvg 4.0 MB, SCAFFOLD 4.0 MB" in capsys.readouterr().out
    exercises.check_megabytes_to({"FedAvg": 4.0, "SCAFFOLD": 4.0, "FedProx": None}, runs, 0.9)
    mistakes = {
        "is the round that first reaches 90 %": {"FedAvg": 4, "SCAFFOLD": 2},
        "is in bytes": {"FedAvg": 4e6, "SCAFFOLD": 4e6},
        "is in mebibytes": {"FedAvg": 4e6 / 2**20, "SCAFFOLD": 4e6},
        "what that one round sent": {"FedAvg": 1.0, "SCAFFOLD": 4.0},
        "counts the upload only": {"FedAvg": 2.0, "SCAFFOLD": 4.0},
        "what the whole run sent": {"FedAvg": 6.0, "SCAFFOLD": 4.0},
        "the round before the first one": {"FedAvg": 3.0, "SCAFFOLD": 4.0},
        "the round after the first one": {"FedAvg": 5.0, "SCAFFOLD": 4.0},
        r"mb_to_target\['SCAFFOLD'\] is not the megabytes": {"FedAvg": 4.0, "SCAFFOLD": 3.3},
        "is None, but that run reaches": {"FedAvg": None, "SCAFFOLD": 4.0},
        "no entry for 'SCAFFOLD'": {"FedAvg": 4.0},
        "should be a dict": [4.0, 4.0],
        "mb_to_target is still `...`": ...,
    }
    for message, wrong in mistakes.items():
        fails(exercises.check_megabytes_to, wrong, runs, 0.9, names=names, match=message)
    fails(
        exercises.check_megabytes_to,
        {"FedAvg": 4.0, "SCAFFOLD": 4.0, "FedProx": 6.0},
        runs,
        0.9,
        match="never reaches 90 %: give None",
    )


# --- stragglers ----------------------------------------------------------------------------------


def history(name="FedAvg", epochs=1, stragglers=None, **algorithm):
    config = {"algorithm": {"name": name, "local_epochs": epochs, **algorithm}, "seed": 0}
    if stragglers is not None:
        config["stragglers"] = {"fraction": stragglers[0], "drop": stragglers[1], "min_epochs": 1}
    return History(config=config)


def test_the_straggler_check_names_missing_stragglers_fraction_and_drop(capsys):
    drop = {"FedAvg drop": True, "FedProx keep": False}
    reference = {"FedAvg drop": history(), "FedProx keep": history("FedProx", mu=1.0)}

    def runs(avg=(0.5, True), prox=(0.5, False), epochs=5, mu=1.0):
        return {
            "FedAvg drop": history(epochs=epochs, stragglers=avg),
            "FedProx keep": history("FedProx", epochs=epochs, stragglers=prox, mu=mu),
        }

    check = exercises.check_drop_or_keep
    check(runs(), reference, drop, fraction=0.5, local_epochs=5)
    out = capsys.readouterr().out
    assert "'FedAvg drop' drops them; 'FedProx keep' keeps their partial work" in out
    mistakes = {
        r"straggler_runs\['FedAvg drop'\] ran without stragglers": runs(avg=None),
        "has 90 % stragglers; this exercise wants 50 %": runs(prox=(0.9, False)),
        r"\['FedAvg drop'\] keeps its stragglers' partial work \(drop=False\)": runs(
            avg=(0.5, False)
        ),
        r"\['FedProx keep'\] drops its stragglers \(drop=True\)": runs(prox=(0.5, True)),
        "ran with local_epochs=1; this exercise wants local_epochs=5": runs(epochs=1),
        r"also changed mu \(1.0 → 0.1\)": runs(mu=0.1),
        "has no run for 'FedProx keep'": {"FedAvg drop": runs()["FedAvg drop"]},
        "straggler_runs is still `...`": ...,
    }
    for message, wrong in mistakes.items():
        fails(check, wrong, reference, drop, fraction=0.5, local_epochs=5, match=message)
    fails(
        check,
        ...,
        reference,
        drop,
        fraction=0.9,
        local_epochs=5,
        name="harsh_runs",
        match="harsh_runs is still",
    )


# --- SCAFFOLD's local update by hand -------------------------------------------------------------


def scaffold_update(step, *, reset=True, delta=False):
    """A scaffold_local_update whose step is ``step(g, c_k, c, lr)``, with optional slips."""

    def scaffold_local_update(model, x, y, w_global, c_k, c, lr, batches):
        import keras
        import tensorflow as tf

        loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        if reset:
            for v, w in zip(model.trainable_variables, w_global, strict=True):
                v.assign(w)
        for batch in batches:
            with tf.GradientTape() as tape:
                loss = loss_fn(y[batch], model(x[batch], training=True))
            grads = tape.gradient(loss, model.trainable_variables)
            for v, g, ck, ci in zip(model.trainable_variables, grads, c_k, c, strict=True):
                v.assign_sub(step(g, ck, ci, lr))
        new = [v.numpy() for v in model.trainable_variables]
        return [n - w for n, w in zip(new, w_global, strict=True)] if delta else new

    return scaffold_local_update


RIGHT_STEP = lambda g, ck, c, lr: lr * (g - ck + c)  # noqa: E731
SCAFFOLD_MISTAKES = {
    "your SCAFFOLD correction has the wrong sign": scaffold_update(
        lambda g, ck, c, lr: lr * (g + ck - c)
    ),
    "plain SGD steps": scaffold_update(lambda g, ck, c, lr: lr * g),
    "subtracts c_k but does not add c": scaffold_update(lambda g, ck, c, lr: lr * (g - ck)),
    "adds c but does not subtract c_k": scaffold_update(lambda g, ck, c, lr: lr * (g + c)),
    "not scaled by lr": scaffold_update(lambda g, ck, c, lr: lr * g - ck + c),
    "trains from the weights the model happened to hold": scaffold_update(RIGHT_STEP, reset=False),
    "returns the update y_k − x": scaffold_update(RIGHT_STEP, delta=True),
    "are not local SGD from w_global": scaffold_update(lambda g, ck, c, lr: 2 * lr * (g - ck + c)),
    "should return the new weights as a list": lambda model, x, y, w, ck, c, lr, b: np.zeros(3),
    "returns None": lambda model, x, y, w, ck, c, lr, b: None,
}


def test_the_scaffold_check_names_the_wrong_sign_and_the_other_slips(capsys):
    exercises.check_scaffold_local_update(scaffold_update(RIGHT_STEP))
    exercises.check_scaffold_local_update(scaffold_update(RIGHT_STEP), seed=1)
    assert capsys.readouterr().out.count("✓ scaffold_local_update steps along g − c_k + c") == 2
    for message, wrong in SCAFFOLD_MISTAKES.items():
        fails(exercises.check_scaffold_local_update, wrong, match=message)
    for message in ("wrong sign", "not scaled by lr"):  # the hidden test's example too
        fails(
            exercises.check_scaffold_local_update,
            SCAFFOLD_MISTAKES[next(m for m in SCAFFOLD_MISTAKES if message in m)],
            seed=1,
            match=message,
        )


def test_the_replay_check_names_an_untrained_result_and_a_mismatch():
    start, trained = [np.zeros((2, 2)), np.zeros(2)], [np.ones((2, 2)), np.arange(2.0)]
    exercises.check_scaffold_replay([t + 1e-7 for t in trained], trained, start)
    mistakes = {
        "equals x, the weights it started from": start,
        "shaped like replay.weights": trained[:1],
        "differs from replay.weights": [t + 0.1 for t in trained],
        "my_replay is still `...`": ...,
    }
    for message, wrong in mistakes.items():
        fails(exercises.check_scaffold_replay, wrong, trained, start, match=message)
