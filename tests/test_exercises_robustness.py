"""The checks of notebook 15's exercises (fedlab/exercises/robustness.py): each passes the right
answer and fails, with its own message, on every wrong answer it anticipates and on the stub. No
training here: the runs are Histories with the settings and records a run would have."""

import math

import numpy as np
import pytest

from fedlab import exercises
from fedlab.aggregators import ClientUpdates
from fedlab.exercises import CheckFailed
from fedlab.history import History, RoundRecord
from fedlab.robust import TrimmedMean, krum_scores, pairwise_distances
from fedlab.rounds import DivergenceError


def fails(check, *args, match: str, **kwargs):
    with pytest.raises(CheckFailed, match=match):
        check(*args, **kwargs)


# --- exercise 1: the trimmed mean ----------------------------------------------------------------


def trimmed_mean(updates, beta):
    cut = int(np.floor(beta * len(updates)))
    return np.sort(updates, axis=0)[cut : len(updates) - cut].mean(axis=0)


def trim(updates, low, high):
    return np.sort(updates, axis=0)[low : len(updates) - high].mean(axis=0)


def cut_of(updates, beta):
    return int(np.floor(beta * len(updates)))


def by_norm(updates, beta):
    k, cut = len(updates), cut_of(updates, beta)
    keep = np.sort(np.argsort(np.linalg.norm(updates, axis=1))[cut : k - cut])
    return updates[keep].mean(axis=0)


def package_trimmed_mean(updates, beta):
    received = ClientUpdates([updates], np.ones(len(updates)))
    return TrimmedMean(beta).apply({}, received, np.random.default_rng(0)).update[0]


TRIMMED_MISTAKES = {
    "one side only \\(the largest": lambda u, b: trim(u, 0, cut_of(u, b)),
    "one side only \\(the smallest": lambda u, b: trim(u, cut_of(u, b), 0),
    "in total, split over the two ends": lambda u, b: trim(
        u, cut_of(u, b) // 2, cut_of(u, b) - cut_of(u, b) // 2
    ),
    "values at each end: with K": lambda u, b: trim(
        u, math.ceil(b * len(u)), math.ceil(b * len(u))
    ),
    "dropped the first and last clients": lambda u, b: u[cut_of(u, b) : len(u) - cut_of(u, b)].mean(
        axis=0
    ),
    "sorted each client's coordinates": lambda u, b: np.sort(u, axis=1)[
        cut_of(u, b) : len(u) - cut_of(u, b)
    ].mean(axis=0),
    "whole clients by the norm": by_norm,
    "is the plain mean": lambda u, b: u.mean(axis=0),
    "is the coordinate-wise median": lambda u, b: np.median(u, axis=0),
    "returns shape": lambda u, b: trimmed_mean(u, b)[None],
    "over the clients, axis 0": lambda u, b: u.mean(axis=1),
    "is not the mean of each coordinate": lambda u, b: trimmed_mean(u, b) + 0.01,
    "returns None": lambda u, b: None,
    "raised ZeroDivisionError": lambda u, b: 1 / 0,
}


@pytest.mark.parametrize("seed", [None, 1, 2, 5])
def test_the_trimmed_mean_check_names_each_way_to_trim_wrongly(seed, capsys):
    exercises.check_trimmed_mean(trimmed_mean, seed=seed)
    exercises.check_trimmed_mean(package_trimmed_mean, seed=seed)
    assert "✓ trimmed_mean" in capsys.readouterr().out
    for message, wrong in TRIMMED_MISTAKES.items():
        fails(exercises.check_trimmed_mean, wrong, seed=seed, match=message)


def test_every_example_tells_each_anticipated_mistake_apart():
    """On the public example and on any seeded one, the right answer and every mistake differ,
    so each mistake gets its own message (⌊β·K⌋ differs from rounding up, f ≥ 2, ...)."""
    from fedlab.exercises.robustness import (
        _distinct,
        _krum_answers,
        _krum_example,
        _trimmed_answers,
        _trimmed_example,
    )

    for seed in (None, *range(30)):
        updates, beta = _trimmed_example(seed)
        product = beta * len(updates)
        assert product >= 2 and math.floor(product) != math.ceil(product), (seed, product)
        assert _distinct(*_trimmed_answers(updates, beta)), seed
        updates, f = _krum_example(seed)
        assert 2 <= f and len(updates) > 2 * f + 2, (seed, f)
        assert _distinct(*_krum_answers(updates, f)), seed


def test_the_trimmed_survival_check_names_both_ends_and_the_median():
    exercises.check_trimmed_survives(2)
    hints = {
        4: "you counted both ends",
        3: "attacker number 3 is left in the mean",
        0: "0 is the plain mean's",
        7: "not what the numbers",
        ...: "still `...`",
    }
    for answer, message in hints.items():
        fails(exercises.check_trimmed_survives, answer, match=message)
    exercises.check_trimmed_survives(3, num_clients=15, beta=0.2)
    fails(exercises.check_trimmed_survives, 7, num_clients=15, beta=0.2, match="median's bound")


# --- exercise 2: Krum's scores and the colluding attackers -----------------------------------------


def right_scores(updates, f):
    return krum_scores(pairwise_distances(updates), len(updates) - f - 2)


def squared(updates):
    return ((updates[:, None, :] - updates[None, :, :]) ** 2).sum(axis=-1)


def nearest(distances, count, include_self=False):
    rows = [
        np.sort(distances[i] if include_self else np.delete(distances[i], i))[:count]
        for i in range(len(distances))
    ]
    return np.array([row.sum() for row in rows])


KRUM_MISTAKES = {
    "sums over all clients": lambda u, f: squared(u).sum(axis=1),
    "counted the client itself as a neighbour": lambda u, f: nearest(
        squared(u), len(u) - f - 2, include_self=True
    ),
    "not squared": lambda u, f: nearest(np.sqrt(squared(u)), len(u) - f - 2),
    "sums K − f neighbours": lambda u, f: nearest(squared(u), len(u) - f),
    "sums K − f − 1 neighbours": lambda u, f: nearest(squared(u), len(u) - f - 1),
    "scores are sorted": lambda u, f: np.sort(right_scores(u, f)),
    "returns one number": lambda u, f: int(np.argmin(right_scores(u, f))),
    "returns shape": lambda u, f: right_scores(u, f)[:-1],
    "is not each client's sum": lambda u, f: right_scores(u, f) * 2,
    "returns None": lambda u, f: None,
}


@pytest.mark.parametrize("seed", [None, 1, 3])
def test_the_krum_check_names_all_clients_self_and_unsquared_distances(seed, capsys):
    exercises.check_krum_scores(right_scores, seed=seed)
    assert "✓ krum_scores" in capsys.readouterr().out
    for message, wrong in KRUM_MISTAKES.items():
        fails(exercises.check_krum_scores, wrong, seed=seed, match=message)


def record(r, malicious=(), kept=(), accuracy=0.9, backdoor=math.nan, clients=(0, 1, 2)):
    k = len(clients)
    return RoundRecord(
        r,
        clients,
        (0.5,) * k,
        (5,) * k,
        0.5,
        0.4,
        accuracy,
        (0.1,) * k,
        0.1,
        0.1,
        (1.0,) * k,
        8,
        8,
        0.01,
        malicious=malicious,
        defence_kept=kept,
        backdoor_success=backdoor,
    )


def config(aggregator=None, attack=None, count=None, num_clients=10, **settings):
    algorithm = {"name": "FedAvg", "local_epochs": 1, "batch_size": 16, "client_lr": 0.1}
    if aggregator is not None:
        algorithm["name"] += f" + {aggregator['name']}"
        algorithm["aggregator"] = aggregator
    values = {
        "algorithm": algorithm,
        "dataset": "digits",
        "split": "iid",
        "num_clients": num_clients,
        "clients_per_round": num_clients,
        "seed": 0,
    }
    if attack is not None:
        values["attackers"] = {"attack": attack, "count": count, "fraction": None}
    values.update(settings)
    return values


ALIE = {"name": "a_little_is_enough", "z": None}
KRUM = {"name": "Krum", "num_byzantine": 3, "num_selected": 1, "weighted": False}


def test_the_attacker_kept_check_counts_rounds_that_kept_an_attacker():
    kept = [(2,), (0,), (2,), (1,), (2,)]
    rounds = [record(r + 1, malicious=(2,), kept=k) for r, k in enumerate(kept)]
    alie_run = History(config=config(KRUM, ALIE, 2), rounds=rounds)
    exercises.check_attacker_kept(3, alie_run)
    mistakes = {
        2: "counts the rounds in which Krum kept an honest client",
        5: "is the number of rounds",
        0.6: "is a share of the rounds",
        4: "is not the number of rounds in which a client of defence_kept",
        ...: "alie_kept is still `...`",
    }
    for answer, message in mistakes.items():
        fails(exercises.check_attacker_kept, answer, alie_run, match=message)
    four_attackers = History(config=config(KRUM, ALIE, 4), rounds=rounds)
    fails(exercises.check_attacker_kept, 4, four_attackers, match="number of attackers")
    fails(exercises.check_attacker_kept, 3, ..., match="alie_run is still `...`")
    median = {"name": "CoordinateMedian"}
    fails(
        exercises.check_attacker_kept,
        3,
        History(config=config(median, ALIE, 2), rounds=rounds),
        match="aggregator CoordinateMedian",
    )
    flip = {"name": "sign_flip", "scale": 20.0}
    fails(
        exercises.check_attacker_kept,
        3,
        History(config=config(KRUM, flip, 2), rounds=rounds),
        match="the attack 'sign_flip'",
    )
    fails(
        exercises.check_attacker_kept,
        3,
        History(config=config(KRUM), rounds=rounds),
        match="ran no attack",
    )
    stopped = DivergenceError(6, [0], alie_run)
    exercises.check_attacker_kept(3, stopped)  # a run that diverged is read from its history


# --- exercise 3: the median with 11 clients ------------------------------------------------------


def test_the_median_survival_check_names_half_and_the_even_answer():
    exercises.check_median_survives(5, num_clients=11)
    exercises.check_median_survives(4, num_clients=10)
    mistakes = {
        6: "you expected the median to survive 6 of 11 attackers",
        4: "5 < K/2 = 5.5 too",
        2: "the trimmed mean's bound",
        9: "not what the numbers",
        ...: "still `...`",
    }
    for answer, message in mistakes.items():
        fails(exercises.check_median_survives, answer, num_clients=11, match=message)
    fails(
        exercises.check_median_survives,
        5,
        num_clients=10,
        match="survive 5 of 10 attackers: its breakdown point is < K/2 = 5",
    )


MEDIAN = {"name": "CoordinateMedian"}
FLIP = {"name": "sign_flip", "scale": 20.0}


def median_run(count, num_clients=11, rounds=20, aggregator=MEDIAN, attack=FLIP, **settings):
    values = config(aggregator, attack, count, num_clients=num_clients, **settings)
    return History(config=values, rounds=[record(r + 1, accuracy=0.8) for r in range(rounds)])


def test_the_median_runs_check_wants_11_clients_the_median_and_the_counts():
    reference = median_run(4, num_clients=10)
    diverged = DivergenceError(4, [0], median_run(6, rounds=3))
    right = {5: median_run(5), 6: diverged}
    exercises.check_median_runs(right, reference, num_clients=11)
    exercises.check_median_runs({5: median_run(5), 6: median_run(6)}, reference)
    mistakes = {
        "has no run for 6": {5: median_run(5)},
        "median_runs\\[6\\] is still": {5: median_run(5), 6: ...},
        "aggregator the plain mean": {5: median_run(5, aggregator=None), 6: diverged},
        "aggregator Krum": {5: median_run(5, aggregator=KRUM), 6: diverged},
        "has 10 clients": {5: median_run(5, num_clients=10), 6: diverged},
        "ran without attackers": {5: median_run(5, attack=None), 6: diverged},
        "ran the attack": {
            5: median_run(5, attack={"name": "sign_flip", "scale": 1.0}),
            6: diverged,
        },
        "had 4 attackers: the key says 5": {5: median_run(4), 6: diverged},
        "has 10 rounds": {5: median_run(5, rounds=10), 6: diverged},
        "also changed seed": {5: median_run(5, seed=3), 6: diverged},
        "is a list": {5: [median_run(5)], 6: diverged},
    }
    for message, wrong in mistakes.items():
        fails(exercises.check_median_runs, wrong, reference, match=message)
    fewer = median_run(5)
    fewer.config["clients_per_round"] = 10
    fails(exercises.check_median_runs, {5: fewer, 6: diverged}, reference, match="took 10 clients")
    fails(exercises.check_median_runs, ..., reference, match="median_runs is still `...`")
    fails(exercises.check_median_runs, [1, 2], reference, match="should be a dict")


# --- exercise 4: the clip norm -------------------------------------------------------------------


def clipped(clip, rounds=20, attack=None, noise=0.0, backdoor=0.05, accuracy=0.9, **settings):
    aggregator = {"name": "NormClipping", "clip_norm": clip, "noise_std": noise}
    values = config(aggregator, attack, 1 if attack else None, **settings)
    records = [record(r + 1, accuracy=accuracy, backdoor=backdoor) for r in range(rounds)]
    return History(config=values, rounds=records)


BOOSTED = {
    "name": "combined",
    "attacks": [{"name": "backdoor", "target": 0}, {"name": "scaled_update", "factor": 10.0}],
}
NORMS = (0.1, 0.5, 2.0)


def test_the_clip_runs_check_wants_each_key_as_the_clip_norm_and_nothing_else():
    reference = clipped(0.5, attack=BOOSTED)
    right = {c: clipped(c, attack=BOOSTED) for c in NORMS}
    exercises.check_clip_runs(right, reference, name="clip_runs", clip_norms=NORMS)
    no_clip = History(config=config(None, BOOSTED, 1), rounds=reference.rounds)
    mistakes = {
        "clip_runs\\[0.1\\] clipped at 0.5": {**right, 0.1: clipped(0.5, attack=BOOSTED)},
        "aggregator the plain mean": {**right, 0.1: no_clip},
        "adds noise": {**right, 0.1: clipped(0.1, attack=BOOSTED, noise=0.01)},
        "also changed attackers": {**right, 0.1: clipped(0.1)},
        "also changed split": {**right, 0.1: clipped(0.1, attack=BOOSTED, split="dirichlet")},
        "has 10 rounds": {**right, 0.1: clipped(0.1, rounds=10, attack=BOOSTED)},
        "has no run for clip_norm 2.0": {c: right[c] for c in NORMS[:2]},
        "clip_runs\\[0.5\\] is still": {**right, 0.5: ...},
        "not the History": {**right, 0.5: DivergenceError(3, [0], right[0.5])},
    }
    for message, wrong in mistakes.items():
        fails(
            exercises.check_clip_runs,
            wrong,
            reference,
            name="clip_runs",
            clip_norms=NORMS,
            match=message,
        )
    fails(exercises.check_clip_runs, ..., reference, name="clip_price", match="clip_price is still")
    fails(exercises.check_clip_runs, [right[0.1]], reference, match="should be a dict")


def test_the_best_clip_check_wants_the_cheapest_safe_clip_norm():
    attacked = {
        0.1: clipped(0.1, backdoor=0.02),
        0.25: clipped(0.25, backdoor=0.04),
        0.5: clipped(0.5, backdoor=0.07),
        1.0: clipped(1.0, backdoor=0.6),
    }
    price = {
        0.1: clipped(0.1, accuracy=0.5),
        0.25: clipped(0.25, accuracy=0.75),
        0.5: clipped(0.5, accuracy=0.9),
        1.0: clipped(1.0, accuracy=0.93),
    }
    exercises.check_best_clip(0.5, attacked, price)
    mistakes = {
        1.0: "the backdoor still succeeds on 0.60",
        0.25: "another safe clip norm costs less",
        0.1: "the smallest clip norm is the safest, and the dearest",
        3.0: "not one of the clip norms you ran",
        ...: "best_clip is still `...`",
    }
    for answer, message in mistakes.items():
        fails(exercises.check_best_clip, answer, attacked, price, match=message)
    fails(exercises.check_best_clip, 0.5, ..., price, match="clip_runs is still")
    fails(exercises.check_best_clip, 0.5, attacked, {0.5: price[0.5]}, match="clip_price has no")
    unsafe = {c: clipped(c, backdoor=0.5) for c in attacked}
    fails(exercises.check_best_clip, 0.5, unsafe, price, match="no clip norm of clip_runs")
