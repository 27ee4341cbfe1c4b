"""The checks of notebook 07's exercises (fedlab/exercises/stragglers.py): each passes the right
answer and names each anticipated mistake with its own message; every stub fails. No training:
the runs are ``(history, loss)`` pairs made by hand, as the notebook's ``run`` returns them."""

import numpy as np
import pytest

from fedlab import exercises
from fedlab.exercises import CheckFailed
from fedlab.exercises.stragglers import DROP, KEEP, _run

KEEP_1 = "FedProx μ=1, keep"


def fails(check, *args, match: str, **kwargs):
    with pytest.raises(CheckFailed, match=match):
        check(*args, **kwargs)


def config(name="FedAvg", dataset="synthetic(1,1)", stragglers=(0.9, True, 1), **algorithm):
    settings = {"name": name, "local_epochs": 5, "batch_size": 10, "client_lr": 0.01, **algorithm}
    made = {"algorithm": settings, "dataset": dataset, "split": "natural", "seed": 0}
    if stragglers is not None:
        fraction, drop, least = stragglers
        made["stragglers"] = {"fraction": fraction, "drop": drop, "min_epochs": least}
    return made


def made(loss=(2.0, 1.5), **settings):
    return _run(list(loss), config=config(**settings))


# --- runs with one setting changed ---------------------------------------------------------------


def test_the_straggler_runs_check_wants_the_one_setting_changed_and_the_pairs_run_returns():
    at_90 = {DROP: made(), KEEP: made(name="FedProx", mu=0.0, stragglers=(0.9, False, 1))}
    iid = {
        DROP: made(dataset="synthetic-iid"),
        KEEP: made(name="FedProx", mu=0.0, dataset="synthetic-iid", stragglers=(0.9, False, 1)),
    }
    wanted = {"name": "iid_runs", "what": "section 2's 90 % runs", "dataset": "synthetic-iid"}
    exercises.check_straggler_runs(iid, at_90, **wanted)
    mistakes = {
        "ran with dataset='synthetic\\(1,1\\)'": at_90,
        r"also changed stragglers.fraction \(0.9 → 0.5\)": {
            **iid,
            DROP: made(dataset="synthetic-iid", stragglers=(0.5, True, 1)),
        },
        r"iid_runs\['FedAvg, drop'\] ran without stragglers": {
            **iid,
            DROP: made(dataset="synthetic-iid", stragglers=None),
        },
        "has no run for 'FedProx μ=0, keep'": {DROP: iid[DROP]},
        "should be a dict": iid[DROP],
        "is a History: keep the whole": {**iid, DROP: iid[DROP][0]},
        "is a ndarray": {**iid, DROP: iid[DROP][1]},
        "has 2 rounds but 1 losses": {**iid, DROP: (iid[DROP][0], iid[DROP][1][:1])},
        r"iid_runs\['FedAvg, drop'\] is still `...`": {**iid, DROP: ...},
        "iid_runs is still `...`": ...,
    }
    for message, wrong in mistakes.items():
        fails(exercises.check_straggler_runs, wrong, at_90, **wanted, match=message)


def test_the_straggler_runs_check_compares_a_single_run_and_another_algorithm():
    reference = made()
    everyone = made(stragglers=(1.0, True, 1))
    single = {"name": "all_dropped", "what": "the 90 % run", "stragglers": {"fraction": 1.0}}
    exercises.check_straggler_runs(everyone, reference, **single)
    fails(exercises.check_straggler_runs, reference, reference, **single, match="fraction=0.9;")
    kept_too = made(stragglers=(1.0, False, 1))
    fails(exercises.check_straggler_runs, kept_too, reference, **single, match="also changed")
    fails(exercises.check_straggler_runs, ..., reference, **single, match="still `...`")
    scaffold = {"algorithm": "SCAFFOLD", "stragglers": {"drop": False}, "name": "s", "what": "w"}
    variates = {"name": "ControlVariateServer"}
    right = made(name="SCAFFOLD", server_optimizer=variates, stragglers=(0.9, False, 1))
    exercises.check_straggler_runs(right, reference, **scaffold)
    fedprox = made(name="FedProx", mu=0.0, stragglers=(0.9, False, 1))
    fails(
        exercises.check_straggler_runs, fedprox, reference, **scaffold, match="algorithm='FedProx'"
    )
    other_lr = made(name="SCAFFOLD", client_lr=0.1, stragglers=(0.9, False, 1))
    fails(exercises.check_straggler_runs, other_lr, reference, **scaffold, match="client_lr")


# --- how many straggle ---------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [None, 1, 4])
def test_the_num_stragglers_check_names_each_way_to_round(seed):
    exercises.check_num_stragglers(lambda f, k: k - round(k * (1 - f)), seed=seed)
    mistakes = {
        "rounds K · fraction:": lambda f, k: round(k * f),
        "rounds K · fraction down": lambda f, k: int(np.floor(k * f)),
        "rounds K · fraction up": lambda f, k: int(np.ceil(k * f)),
        "not a whole number": lambda f, k: k * f,
        "counts the devices that finish": lambda f, k: round(k * (1 - f)),
        "is not K − round": lambda f, k: k,
        "returns None": lambda f, k: None,
        "raised TypeError": lambda f, k: f + "k",
    }
    for message, wrong in mistakes.items():
        fails(exercises.check_num_stragglers, wrong, seed=seed, match=message)


# --- how much of the gap closes ------------------------------------------------------------------


def test_the_gap_check_names_the_open_share_an_inverted_gap_and_the_participants_loss():
    runs = {
        (0.9, KEEP): _run([1.6, 1.4], train_loss=[1.0, 0.9]),
        (0.0, KEEP): _run([1.3, 1.0], train_loss=[1.1, 0.5]),
        (0.9, KEEP_1): _run([1.7, 1.5], train_loss=[1.2, 1.0]),
        (0.0, KEEP_1): _run([1.4, 1.2], train_loss=[1.2, 0.6]),
    }
    slow = {KEEP: _run([1.5, 1.3], train_loss=[1.0, 0.8]), KEEP_1: _run([1.6, 1.25])}

    def shares(fn):
        return {m: fn(runs[0.9, m][1][-1], slow[m][1][-1], runs[0.0, m][1][-1], m) for m in slow}

    right = shares(lambda l90, ls, l0, m: (l90 - ls) / (l90 - l0))
    assert right[KEEP] == pytest.approx(0.25)
    exercises.check_gap_closed(right, slow, runs)

    def participants(l90, ls, l0, m):
        t90, ts, t0 = (h.train_loss[-1] for h in (runs[0.9, m][0], slow[m][0], runs[0.0, m][0]))
        return (t90 - ts) / (t90 - t0)

    mistakes = {
        "still open": shares(lambda l90, ls, l0, m: (ls - l0) / (l90 - l0)),
        "upside down": shares(lambda l90, ls, l0, m: (l90 - l0) / (l90 - ls)),
        "is the loss gained": shares(lambda l90, ls, l0, m: l90 - ls),
        "is a percentage": shares(lambda l90, ls, l0, m: 100 * (l90 - ls) / (l90 - l0)),
        "uses history.train_loss": shares(participants),
        r"gap_closed\['FedProx μ=0, keep'\] is not": {KEEP: 0.9, KEEP_1: right[KEEP_1]},
        "no entry for 'FedProx μ=1, keep'": {KEEP: right[KEEP]},
        "should be a dict": 0.25,
        "gap_closed is still `...`": ...,
    }
    for message, wrong in mistakes.items():
        fails(exercises.check_gap_closed, wrong, slow, runs, match=message)
    fails(exercises.check_gap_closed, right, ..., runs, match="min3_runs is still `...`")
    fails(exercises.check_gap_closed, right, {**slow, KEEP: ...}, runs, match="is still `...`")


# --- what dropping costs -------------------------------------------------------------------------


def test_the_drop_cost_check_names_the_sign_a_ratio_the_mean_and_the_wrong_measures():
    runs = {
        "Synthetic(1, 1)": {
            DROP: _run([3.0, 2.8], train_loss=[0.5, 0.4], test_accuracy=[0.3, 0.38]),
            KEEP: _run([2.0, 1.1], train_loss=[0.9, 0.7], test_accuracy=[0.5, 0.63]),
        },
        "IID": {
            DROP: _run([2.0, 1.65], train_loss=[1.0, 0.9], test_accuracy=[0.4, 0.47]),
            KEEP: _run([2.1, 1.6], train_loss=[1.6, 1.3], test_accuracy=[0.42, 0.48]),
        },
    }

    def cost(fn):
        return {label: fn(pair[DROP], pair[KEEP]) for label, pair in runs.items()}

    right = cost(lambda d, k: d[1][-1] - k[1][-1])
    exercises.check_drop_cost(right, runs)
    mistakes = {
        "keep minus drop": cost(lambda d, k: k[1][-1] - d[1][-1]),
        "a ratio of the losses": cost(lambda d, k: d[1][-1] / k[1][-1]),
        "averages every round": cost(lambda d, k: d[1].mean() - k[1].mean()),
        "uses history.train_loss": cost(lambda d, k: d[0].train_loss[-1] - k[0].train_loss[-1]),
        "compares test accuracy": cost(
            lambda d, k: k[0].test_accuracy[-1] - d[0].test_accuracy[-1]
        ),
        r"drop_cost\['IID'\] is not the final loss": {**right, "IID": 1.0},
        "no entry for 'IID'": {"Synthetic(1, 1)": right["Synthetic(1, 1)"]},
        "should be a dict": [1.7, 0.05],
        "drop_cost is still `...`": ...,
    }
    for message, wrong in mistakes.items():
        fails(exercises.check_drop_cost, wrong, runs, match=message)
    fails(exercises.check_drop_cost, right, {**runs, "IID": ...}, match="runs on IID is still")
