"""The checks of notebook 03's exercises (fedlab/exercises/local_steps.py): each passes the right
answer and names each anticipated mistake with its own message; every stub fails. No training:
the runs are Histories made by hand."""

import numpy as np
import pytest

from fedlab import exercises
from fedlab.exercises import CheckFailed
from fedlab.exercises.local_steps import _history
from fedlab.history import History

N = 1437  # the digits' training examples, n


def fails(check, *args, match: str, **kwargs):
    with pytest.raises(CheckFailed, match=match):
        check(*args, **kwargs)


def rounds_to(history, target=0.9):
    reached = np.flatnonzero(history.test_accuracy >= target)
    return int(history.round[reached[0]]) if reached.size else None


def settings(history):
    algorithm = history.config["algorithm"]
    return algorithm["local_epochs"], algorithm["batch_size"], history.config["num_clients"]


def local_updates(history):
    epochs, batch, clients = settings(history)
    return epochs * (N / clients) / (batch or N / clients)


def reached(cost):
    """A cost function that returns None for a run that never reaches the target."""

    def fn(history):
        rounds = rounds_to(history)
        return None if rounds is None else cost(history, rounds)

    return fn


# --- exercise 1: drift_ratio ---------------------------------------------------------------------


def drift_runs():
    iid = {
        "E=1": _history([0.5, 0.9], [0.1, 0.3], drift_max=[0.5, 0.5]),
        "E=5": _history([0.6, 0.9], [0.4, 0.6], drift_max=[1.0, 1.4]),
    }
    shards = {
        "E=1": _history([0.4, 0.7], [0.6, 0.2], drift_max=[1.0, 2.0]),
        "E=5": _history([0.5, 0.8], [0.9, 0.6], drift_max=[1.3, 1.5]),
    }
    return shards, iid


def test_the_drift_ratio_check_names_upside_down_differences_and_the_wrong_drift():
    shards, iid = drift_runs()

    def ratio(fn):
        return {name: fn(shards[name], iid[name]) for name in iid}

    right = ratio(lambda s, i: s.drift_mean.mean() / i.drift_mean.mean())
    exercises.check_drift_ratio(right, shards, iid)
    mistakes = {
        "upside down": ratio(lambda s, i: i.drift_mean.mean() / s.drift_mean.mean()),
        "the difference of the two drifts": ratio(
            lambda s, i: s.drift_mean.mean() - i.drift_mean.mean()
        ),
        "last round's drift only": ratio(lambda s, i: s.drift_mean[-1] / i.drift_mean[-1]),
        "uses drift_max": ratio(lambda s, i: s.drift_max.mean() / i.drift_max.mean()),
        "is not the shards run's mean drift divided": {"E=1": 1.0, "E=5": 1.5},
        "no entry for 'E=5'": {"E=1": right["E=1"]},
        "should be a dict": list(right.values()),
        r"drift_ratio\['E=1'\] is a list": {"E=1": [1.0], "E=5": 1.5},
        "drift_ratio is still `...`": ...,
    }
    for message, wrong in mistakes.items():
        fails(exercises.check_drift_ratio, wrong, shards, iid, match=message)
    fails(exercises.check_drift_ratio, right, ..., iid, match="shards_grid is still `...`")


# --- exercise 2: steps and examples to the target ------------------------------------------------

RIGHT_STEPS = reached(lambda h, r: r * local_updates(h))


@pytest.mark.parametrize("seed", [None, 1, 7])
def test_the_steps_check_passes_rounds_times_u(seed, capsys):
    exercises.check_steps_to_target(RIGHT_STEPS, num_examples=N, target=0.9, seed=seed)
    assert capsys.readouterr().out.startswith("✓ steps_to_target")


def test_the_steps_check_names_rounds_u_epochs_clients_and_off_by_one():
    def never_none(cost):
        return lambda h: cost(h, rounds_to(h))

    mistakes = {
        "returns the rounds to the target": reached(lambda h, r: r),
        "returns u, one round's steps": reached(lambda h, r: local_updates(h)),
        "counts epochs, not steps": reached(lambda h, r: r * settings(h)[0]),
        "counts every client's steps": reached(lambda h, r: r * local_updates(h) * settings(h)[2]),
        "index of the first round": reached(lambda h, r: (r - 1) * local_updates(h)),
        "multiplies u by all the rounds run": reached(lambda h, r: len(h) * local_updates(h)),
        "not rounds_to\\(history\\) × local_updates": reached(lambda h, r: r * 7.0),
        r"raised TypeError \(.*\) on a run that never reaches": never_none(
            lambda h, r: r * local_updates(h)
        ),
        "returns 0.0 for a run that never reaches": lambda h: (
            (rounds_to(h) or 0) * local_updates(h)
        ),
        "on a run with B = ∞": reached(
            lambda h, r: r * settings(h)[0] * (N / settings(h)[2]) / settings(h)[1]
        ),
        "returns None": lambda h: None,
        "raised ZeroDivisionError": lambda h: 1 / 0,
    }
    for message, wrong in mistakes.items():
        fails(exercises.check_steps_to_target, wrong, num_examples=N, target=0.9, match=message)


RIGHT_EXAMPLES = reached(lambda h, r: r * settings(h)[0] * N / settings(h)[2])


@pytest.mark.parametrize("seed", [None, 1, 7])
def test_the_examples_check_passes_rounds_times_epochs_times_n_over_k(seed, capsys):
    exercises.check_examples_to_target(RIGHT_EXAMPLES, num_examples=N, target=0.9, seed=seed)
    assert capsys.readouterr().out.startswith("✓ examples_to_target")


def test_the_examples_check_names_steps_one_epoch_every_client_and_b_infinite():
    mistakes = {
        "counts steps": reached(lambda h, r: r * local_updates(h)),
        "counts one epoch per round": reached(lambda h, r: r * N / settings(h)[2]),
        r"counts every client's examples \(n\)": reached(lambda h, r: r * settings(h)[0] * N),
        "index of the first round": reached(
            lambda h, r: (r - 1) * settings(h)[0] * N / settings(h)[2]
        ),
        "not rounds_to\\(history\\) × E × n/K": reached(lambda h, r: 5.0),
        "on a run with B = ∞": reached(lambda h, r: r * local_updates(h) * settings(h)[1]),
        "returns 1 for a run that never reaches": lambda h: (
            1 if rounds_to(h) is None else (RIGHT_EXAMPLES(h))
        ),
        "raised TypeError": lambda h: rounds_to(h) * settings(h)[0] * N / settings(h)[2],
        "returns None": lambda h: None,
    }
    for message, wrong in mistakes.items():
        fails(exercises.check_examples_to_target, wrong, num_examples=N, target=0.9, match=message)


# --- exercise 3: a fair FedSGD -------------------------------------------------------------------


def test_the_fair_fedsgd_check_names_a_rate_the_slowest_run_an_index_and_an_inverted_ratio():
    runs = {
        0.3: _history([0.2, 0.5, 0.7, 0.85, 0.91, 0.93]),  # 90 % in round 5
        1.0: _history([0.4, 0.8, 0.92, 0.88, 0.95, 0.96]),  # round 3
        3.0: _history([0.3, 0.1, 0.1, 0.2, 0.1, 0.1]),  # never
    }
    fedavg = _history([0.8, 0.91, 0.93])  # round 2
    exercises.check_fair_fedsgd(3, 1.5, runs, fedavg, target=0.9)
    exercises.check_fair_fedsgd(np.int64(3), 3 / 2, runs, fedavg, target=0.9)
    mistakes = {
        "is a learning rate": (1.0, 1.5),
        "is the slowest run's": (5, 2.5),
        "index of the round": (2, 1.0),
        "not the fewest rounds": (4, 2.0),
        "best_rounds is a dict": ({1.0: 3}, 1.5),
        "speedup is upside down": (3, 2 / 3),
        "speedup is not best_rounds / rounds_to": (3, 3.0),
        "best_rounds is still `...`": (..., 1.5),
        "speedup is still `...`": (3, ...),
    }
    for message, (best, speedup) in mistakes.items():
        fails(exercises.check_fair_fedsgd, best, speedup, runs, fedavg, target=0.9, match=message)
    fails(exercises.check_fair_fedsgd, 3, 1.5, ..., fedavg, target=0.9, match="fedsgd_runs is")
    never = {3.0: runs[3.0]}
    fails(exercises.check_fair_fedsgd, 3, 1.5, never, fedavg, target=0.9, match="no run of")


# --- exercise 5: FedSGD's round ------------------------------------------------------------------


def right_round(w, g, client_lr, server_lr):
    return [a - server_lr * client_lr * b for a, b in zip(w, g, strict=True)]


def in_place(w, g, client_lr, server_lr):
    for a, b in zip(w, g, strict=True):
        a -= server_lr * client_lr * b
    return w


FEDSGD_MISTAKES = {
    "goes uphill": lambda w, g, c, s: [a + s * c * b for a, b in zip(w, g, strict=True)],
    "ignores server_lr": lambda w, g, c, s: [a - c * b for a, b in zip(w, g, strict=True)],
    "ignores client_lr": lambda w, g, c, s: [a - s * b for a, b in zip(w, g, strict=True)],
    "returns only the step": lambda w, g, c, s: [-s * c * b for b in g],
    "adds the two rates": lambda w, g, c, s: [a - (s + c) * b for a, b in zip(w, g, strict=True)],
    "scales the weights too": lambda w, g, c, s: [
        s * (a - c * b) for a, b in zip(w, g, strict=True)
    ],
    "changed the weights it was given": in_place,
    "returns one array": lambda w, g, c, s: right_round(w, g, c, s)[0],
    "is not w − server_lr · client_lr · g": lambda w, g, c, s: [
        a - s * c * b + 1.0 for a, b in zip(w, g, strict=True)
    ],
    "returns None": lambda w, g, c, s: None,
    "raised KeyError": lambda w, g, c, s: {}["w"],
}


@pytest.mark.parametrize("seed", [None, 1, 5])
def test_the_fedsgd_round_check_names_the_sign_each_missing_rate_and_a_sum(seed):
    exercises.check_fedsgd_round(right_round, seed=seed)
    for message, wrong in FEDSGD_MISTAKES.items():
        fails(exercises.check_fedsgd_round, wrong, seed=seed, match=message)


# --- exercise 6: a run saved and loaded back -----------------------------------------------------


def test_the_saved_history_check_wants_the_file_read_back_with_history_load(tmp_path):
    run = _history([0.5, 0.8, 0.9], [0.2, 0.3, 0.3])
    path = tmp_path / "history.json"
    run.save(path)
    exercises.check_saved_history(History.load(path), run)
    other = _history([0.5, 0.8, 0.9], local_epochs=5)
    mistakes = {
        "saved is a path": str(path),
        r"saved is a path \('": path,
        "two paths dash.save returns": (path, tmp_path / "dashboard.png"),
        "raw JSON": run.to_dict(),
        "dash.history itself": run,
        "another run than the dashboard's": History.from_dict(other.to_dict()),
        "saved has 2 rounds, the dashboard's run 3": History(run.config, run.rounds[:2]),
        "other numbers": _history([0.5, 0.8, 0.95], [0.2, 0.3, 0.3]),
        "saved is a list": [run],
        "saved is still `...`": ...,
    }
    for message, wrong in mistakes.items():
        fails(exercises.check_saved_history, wrong, run, match=message)
