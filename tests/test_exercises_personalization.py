"""The checks of notebook 13's exercises (fedlab/exercises/personalization.py): each passes the
right answer, fails the stub, and names each anticipated mistake with its own message."""

import math
import warnings

import numpy as np
import pytest

from fedlab import exercises
from fedlab.exercises import CheckFailed
from fedlab.history import History, RoundRecord


def fails(check, *args, match: str, **kwargs):
    with pytest.raises(CheckFailed, match=match):
        check(*args, **kwargs)


def record(round_num=1, loss=0.0, personal=(), global_=()):
    return RoundRecord(
        round_num, (0,), (loss,), (1,), loss, 0.0, 0.0, (0.0,), 0.0, 0.0, (1.0,), 0, 0, 0.0,
        client_personal_accuracy=tuple(personal),
        client_test_accuracy=tuple(global_),
    )  # fmt: skip


def run(personal, global_=()):
    """A one-round History with these per-client accuracies."""
    return History(rounds=[record(personal=personal, global_=global_)])


def losses(*values):
    """A History whose rounds have these training losses."""
    return History(rounds=[record(r, loss=v) for r, v in enumerate(values, 1)])


# --- worst10 ----------------------------------------------------------------------------------


def right_worst10(accuracies):
    ordered = np.sort(np.asarray(accuracies, dtype=float))
    return float(ordered[: max(1, math.ceil(0.1 * len(ordered)))].mean())


WORST10_MISTAKES = {
    "mean over every client": lambda a: float(np.mean(a)),
    "single worst client": lambda a: float(np.min(a)),
    r"\*best\* 10 %": lambda a: float(np.sort(a)[::-1][: max(1, math.ceil(0.1 * len(a)))].mean()),
    "10th percentile": lambda a: float(np.percentile(a, 10)),
    "rounds 10 % down": lambda a: float(np.sort(a)[: max(1, int(0.1 * len(a)))].mean()),
    "returns the median": lambda a: float(np.median(a)),
    "returns nan for 5 clients": lambda a: float(np.mean(np.sort(a)[: int(0.1 * len(a))])),
    "returns a list": lambda a: list(np.sort(a)[:2]),
    "not the mean of the worst": lambda a: float(np.sort(a)[: math.ceil(0.2 * len(a))].mean()),
    "returns None": lambda a: None,
    "raised ZeroDivisionError": lambda a: 1 / 0,
}


@pytest.mark.parametrize("seed", [None, 1, 7])
def test_the_worst10_check_passes_the_worst_decile_and_names_each_wrong_summary(seed, capsys):
    exercises.check_worst10(right_worst10, seed=seed)
    assert capsys.readouterr().out.startswith("✓ worst10 averages the worst")
    for message, wrong in WORST10_MISTAKES.items():
        with warnings.catch_warnings():  # the mean of no client at all: numpy warns, then nan
            warnings.simplefilter("ignore", RuntimeWarning)
            fails(exercises.check_worst10, wrong, seed=seed, match=message)


# --- which run is best -----------------------------------------------------------------------


FOUR = {  # mean / median / worst 10 %: A best mean and median, D best worst 10 %, C lowest mean
    "A": run([1.0, 1.0, 1.0, 0.1]),
    "B": run([0.85, 0.8, 0.8, 0.6]),
    "C": run([0.5, 0.5, 0.5, 0.5]),
    "D": run([0.7, 0.7, 0.9, 0.65]),
}


def test_the_best_run_check_wants_the_asked_statistic(capsys):
    exercises.check_best_run("D", FOUR, by="worst10", name="best")
    exercises.check_best_run("A", FOUR, by="mean", name="best")
    exercises.check_best_run("A", {k: (h, "personal") for k, h in FOUR.items()}, by="median")
    assert capsys.readouterr().out.splitlines()[0] == "✓ best = 'D': the highest worst10 (0.650)"
    fails(exercises.check_best_run, "A", FOUR, by="worst10", match=r"highest \*mean\*.*worst-10 %")
    fails(exercises.check_best_run, "D", FOUR, by="mean", match=r"highest \*worst10\*")
    fails(exercises.check_best_run, "C", FOUR, by="mean", match=r"\*lowest\* mean")
    fails(exercises.check_best_run, "B", FOUR, by="mean", match="another run has a higher mean")
    fails(exercises.check_best_run, "E", FOUR, by="mean", match="is not one of the runs")
    fails(exercises.check_best_run, ..., FOUR, by="mean", match=r"best is still `\.\.\.`")
    with pytest.raises(ValueError, match="by must be one of"):
        exercises.check_best_run("A", FOUR, by="max")
    fails(exercises.check_best_run, "A", ..., by="mean", match="should be a dict")


def test_the_best_run_check_reads_the_kind_of_each_run():
    runs = {"FedAvg": run([0.5, 0.5], global_=[0.9, 0.8]), "local only": run([0.7, 0.6])}
    exercises.check_best_run("FedAvg", runs, by="worst10", kinds={"FedAvg": "global"})
    exercises.check_best_run("local only", runs, by="worst10")  # FedAvg's personal: 0.5


def test_the_best_run_check_names_the_global_model_and_accepts_ties():
    runs = {
        "X": run([0.9, 0.9], global_=[0.5, 0.5]),
        "Y": run([0.8, 0.8], global_=[0.7, 0.7]),
        "Z": run([0.6, 0.6], global_=[0.1, 0.1]),
    }
    fails(exercises.check_best_run, "Y", runs, by="mean", match=r"\*global\* model's accuracy")
    tied = {1.0: run([0.9, 0.5]), 10.0: run([0.5, 0.9])}
    exercises.check_best_run(1, tied, by="mean")  # 1 == 1.0: a key; a tie counts as right
    exercises.check_best_run(10.0, tied, by="worst10")


# --- personalised models on their own test sets -----------------------------------------------


@pytest.fixture(scope="module")
def tuned(digits):
    from fedlab import Simulation
    from fedlab.models import model_fn
    from fedlab.partition import dirichlet, hold_out
    from fedlab.personalization import FedAvgFineTune

    split = dirichlet(digits.y_train, 5, alpha=0.3, seed=0)
    split = hold_out(split, digits.y_train, test_fraction=0.3, seed=0)
    sim = Simulation(FedAvgFineTune(10), model_fn("logreg", 10), digits, split, seed=0)
    sim.run(2, progress=False)
    return sim, split


def accuracy_with(sim, digits, models, indices):
    model = sim.global_model()
    out = []
    for k, own in enumerate(indices):
        for variable, w in zip(model.trainable_variables, models, strict=True):
            variable.assign(w[k])
        out.append(np.mean(np.asarray(model(digits.x_train[own])).argmax(1) == digits.y_train[own]))
    sim.global_model()
    return np.array(out)


def test_the_personal_accuracy_check_names_training_data_pooling_and_the_global_model(
    digits, tuned
):
    sim, split = tuned
    models = sim.personal_models()
    truth = accuracy_with(sim, digits, models, split.test_indices)
    np.testing.assert_allclose(truth, sim.client_accuracy(models))
    exercises.check_personal_accuracy(truth, sim, digits, split)
    exercises.check_personal_accuracy(list(truth), sim, digits, split, name="mine")
    sizes = [len(t) for t in split.test_indices]
    first = [np.repeat(w[:1], len(truth), axis=0) for w in models]
    mistakes = {
        r"\*training\* examples": accuracy_with(sim, digits, models, split.client_indices),
        "pooled accuracy over all test examples": float(np.average(truth, weights=sizes)),
        "one number: keep one accuracy per client": float(truth.mean()),
        r"\*global\* model's accuracy": sim.client_accuracy(),
        "client 0's model for every client": accuracy_with(sim, digits, first, split.test_indices),
        "holds percentages": truth * 100,
        "has 4 values: one per client": truth[:4],
        "is not each personalised model's accuracy": np.clip(truth - 0.1, 0, 1),
        r"tuned_accuracy is still `\.\.\.`": ...,
    }
    for message, wrong in mistakes.items():
        fails(exercises.check_personal_accuracy, wrong, sim, digits, split, match=message)


# --- IFCA restarts ---------------------------------------------------------------------------


def test_the_final_loss_check_wants_the_last_round_of_every_run(capsys):
    runs = {0: losses(2.2, 1.0, 1.3), 1: losses(2.1, 1.4, 1.2)}
    exercises.check_final_losses({0: 1.3, 1: 1.2}, runs)
    assert capsys.readouterr().out.startswith("✓ final_loss: the last round's training loss")
    mistakes = {
        r"\*first\* round's loss": {0: 2.2, 1: 2.1},
        "averages every round": {0: 4.5 / 3, 1: 4.7 / 3},
        "lowest loss of any round": {0: 1.0, 1: 1.2},
        "is a series": {0: [2.2, 1.0, 1.3], 1: 1.2},
        r"no entry for seed\(s\) \[1\]": {0: 1.3},
        "should be a dict": [1.3, 1.2],
        "is not that run's last training loss": {0: 1.3, 1: 0.5},
        r"final_loss is still `\.\.\.`": ...,
    }
    for message, wrong in mistakes.items():
        fails(exercises.check_final_losses, wrong, runs, match=message)


def right_restart(losses, seeds):
    return min(seeds, key=lambda seed: losses[seed])


RESTART_MISTAKES = {
    r"\*highest\* loss": lambda losses, seeds: max(seeds, key=losses.get),
    "first seed of every group": lambda losses, seeds: seeds[0],
    "returns the lowest loss, not its seed": lambda losses, seeds: min(losses[s] for s in seeds),
    "looks at every seed": lambda losses, seeds: min(losses, key=losses.get),
    "returns the position within seeds": lambda losses, seeds: seeds.index(
        min(seeds, key=losses.get)
    ),
    "returns a str": lambda losses, seeds: str(min(seeds, key=losses.get)),
    "does not return, of the seeds given": lambda losses, seeds: sorted(seeds)[1],
    "returns None": lambda losses, seeds: None,
}


@pytest.mark.parametrize("seed", [None, 1, 4])
def test_the_best_restart_check_names_each_wrong_pick(seed):
    exercises.check_best_restart(right_restart, seed=seed)
    for message, wrong in RESTART_MISTAKES.items():
        fails(exercises.check_best_restart, wrong, seed=seed, match=message)


def test_the_restart_success_check_counts_groups_not_single_runs(capsys):
    loss = {0: 1.28, 1: 1.028, 2: 1.173, 3: 0.98, 4: 1.123}  # notebook 13's IFCA runs
    purity = {0: 0.75, 1: 1.0, 2: 0.75, 3: 1.0, 4: 1.0}
    seeds = (0, 1, 2, 3, 4)
    exercises.check_restart_success(1.0, loss, purity, seeds)
    assert "in 10 of 10 groups of seeds" in capsys.readouterr().out
    mistakes = {
        r"share of \*single\* runs": 0.6,
        r"\*highest\* loss of each group": 0.1,
        "first seed of each group": 0.3,
        "counts groups": 10,
        "is a percentage": 100.0,
        "is a list": [1.0],
        "keep the run with the lowest final_loss": 0.9,
        r"restart_success is still `\.\.\.`": ...,
    }
    for message, wrong in mistakes.items():
        fails(exercises.check_restart_success, wrong, loss, purity, seeds, match=message)


# --- the gain of a shared body ---------------------------------------------------------------


PLENTY = (np.array([0.94, 0.95, 0.97, 0.95]), np.array([0.94, 0.93, 0.97, 0.95]))
SCARCE = (np.array([0.60, 0.95, 0.97, 0.95]), np.array([0.67, 0.94, 0.98, 0.95]))


def test_the_scarcity_gain_check_names_sign_mean_over_tasks_and_the_wrong_baseline(capsys):
    right = {1: 0.67 - 0.60, 3: 0.04, 10: 0.0}
    exercises.check_scarcity_gain(right, PLENTY, SCARCE)
    exercises.check_scarcity_gain({c: np.float64(g) for c, g in right.items()}, PLENTY, SCARCE)
    assert capsys.readouterr().out.startswith("✓ digit_gain: +0.07 with 1 digit client, +0.04")
    mistakes = {
        "separate minus shared": {1: -0.07, 3: -0.04, 10: 0.0},
        "averages all four tasks": {1: 0.0175, 3: 0.01, 10: -0.005},
        "is the shared body's accuracy": {1: 0.67, 3: 0.9, 10: 0.94},
        "compares with the 10-client digit federation": {1: 0.67 - 0.94, 3: 0.0, 10: 0.0},
        "no difference of two accuracies": {1: 0.07, 3: 0.9, 10: 0.0},
        r"no entry for \[3\]": {1: 0.07, 10: 0.0},
        "should be a dict": [0.07, 0.04, 0.0],
        "give one number": {1: 0.07, 3: [0.04], 10: 0.0},
        "is not the digit task's shared − separate": {1: 0.2, 3: 0.04, 10: 0.0},
        r"digit_gain is still `\.\.\.`": ...,
    }
    for message, wrong in mistakes.items():
        fails(exercises.check_scarcity_gain, wrong, PLENTY, SCARCE, match=message)
    same_gain = (PLENTY[0], PLENTY[0] + 0.05), (SCARCE[0], SCARCE[0] + 0.05)
    exercises.check_scarcity_gain({1: 0.05, 3: 0.03, 10: 0.05}, *same_gain)
    fails(
        exercises.check_scarcity_gain,
        {1: 0.05, 3: 0.05, 10: 0.05},
        *same_gain,
        match="the same for every count",
    )


# --- FedPer's whole network -----------------------------------------------------------------


def test_the_whole_network_check_wants_local_only():
    for answer in ("local only", "Local-only", "LocalOnly", " local only "):
        exercises.check_whole_network_private(answer)
    mistakes = {
        "FedAvg": "the opposite, every weight shared",
        "FedAvg + fine-tuning": "no global model to start from",
        "Ditto λ=1": "Ditto pulls each personal model",
        "FedPer": "no body left to share",
        "IFCA": "which one never sends anything",
        ...: r"whole_network_private is still `\.\.\.`",
    }
    for answer, message in mistakes.items():
        fails(exercises.check_whole_network_private, answer, match=message)
