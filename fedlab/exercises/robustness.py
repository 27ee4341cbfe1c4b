"""Checks for notebook 15's exercises (poisoning and robust aggregation): the trimmed mean and
Krum's scores written by hand, how many attackers the trimmed mean and the median survive, runs
of the median with another number of clients, and the choice of a clip norm against a backdoor."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from fedlab.exercises.core import (
    CheckFailed,
    Mistake,
    _settings,
    call,
    check_choice,
    diagnose,
    passed,
    require,
    same,
)

__all__ = [
    "check_attacker_kept",
    "check_best_clip",
    "check_clip_runs",
    "check_krum_scores",
    "check_median_runs",
    "check_median_survives",
    "check_trimmed_mean",
    "check_trimmed_survives",
]


# --- the trimmed mean (exercise 1) ---------------------------------------------------------------


def _distinct(expected: Any, mistakes: Sequence[Mistake]) -> bool:
    """Whether the right answer and every anticipated mistake differ from each other on an
    example (so that each mistake can be named)."""
    answers = [expected, *(m.answer for m in mistakes)]
    return not any(same(a, b, atol=1e-6) for i, a in enumerate(answers) for b in answers[i + 1 :])


def _trim(updates: np.ndarray, low: int, high: int) -> np.ndarray:
    """The mean of each coordinate without its ``low`` smallest and ``high`` largest values."""
    ordered = np.sort(updates, axis=0)
    return ordered[low : len(updates) - high].mean(axis=0)


def _trimmed_answers(updates: np.ndarray, beta: float) -> tuple[np.ndarray, list[Mistake]]:
    """The trimmed mean of ``updates`` and what each anticipated mistake gives instead."""
    k = len(updates)
    cut = math.floor(beta * k + 1e-9)
    rounded = max(round(beta * k), math.ceil(beta * k - 1e-9))
    norms = np.argsort(np.linalg.norm(updates, axis=1))
    mistakes = [
        Mistake(
            _trim(updates, 0, cut),
            "you trimmed β·K from one side only (the largest values): drop the ⌊β·K⌋ smallest "
            "values of each coordinate as well",
        ),
        Mistake(
            _trim(updates, cut, 0),
            "you trimmed β·K from one side only (the smallest values): drop the ⌊β·K⌋ largest "
            "values of each coordinate as well",
        ),
        Mistake(
            _trim(updates, cut // 2, cut - cut // 2),
            "you trimmed ⌊β·K⌋ values in total, split over the two ends: drop ⌊β·K⌋ at *each* "
            "end (2·⌊β·K⌋ values per coordinate)",
        ),
        Mistake(
            _trim(updates, rounded, rounded),
            f"you trimmed {rounded} values at each end: with K = {k} and β = {beta}, "
            f"β·K = {beta * k:g}, and the trimmed mean drops ⌊β·K⌋ = {cut} (round down: "
            "math.floor, or int() for β·K ≥ 0)",
        ),
        Mistake(
            updates[cut : k - cut].mean(axis=0),
            "you dropped the first and last clients, not the largest and smallest values: sort "
            "each coordinate over the clients first (np.sort(updates, axis=0))",
        ),
        Mistake(
            np.sort(updates, axis=1)[cut : k - cut].mean(axis=0),
            "you sorted each client's coordinates (axis=1): sort each coordinate over the "
            "clients, np.sort(updates, axis=0)",
        ),
        Mistake(
            updates[np.sort(norms[cut : k - cut])].mean(axis=0),
            "you dropped whole clients by the norm of their update: the trimmed mean trims each "
            "coordinate on its own (a client can be dropped in one coordinate and kept in another)",
        ),
        Mistake(updates.mean(axis=0), "trimmed_mean is the plain mean: nothing was trimmed"),
        Mistake(
            np.median(updates, axis=0),
            "trimmed_mean is the coordinate-wise median: average the values left after trimming",
        ),
    ]
    return _trim(updates, cut, cut), mistakes


def _trimmed_example(seed: int | None) -> tuple[np.ndarray, float]:
    """K = 11 clients' updates of 3 coordinates and β = 0.25 (β·K = 2.75: ⌊β·K⌋ = 2 differs from
    its rounding, 3), with outliers at both ends; or a seeded random example with β·K not whole
    (at least 2) on which every anticipated mistake gives its own answer."""
    if seed is None:
        updates = np.array(
            [
                [1.0, 0.5, -0.2],
                [1.2, 0.4, -0.1],
                [0.9, 0.6, 0.0],
                [1.1, 0.5, -0.3],
                [1.0, 0.7, -0.2],
                [0.8, 0.3, -0.1],
                [1.3, 0.5, 0.1],
                [-9.0, 8.0, 5.0],
                [-7.0, 6.0, 4.0],
                [6.0, -5.0, -6.0],
                [1.05, 0.45, -0.15],
            ]
        )
        return updates, 0.25
    rng = np.random.default_rng(seed)
    while True:
        num_clients = int(rng.integers(9, 16))
        beta = float(rng.choice([0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45]))
        product = beta * num_clients
        whole = abs(product - round(product)) < 0.05
        if product < 2 or whole or 2 * math.ceil(product) >= num_clients:
            continue
        dim = int(rng.integers(3, 6))
        updates = rng.normal(rng.normal(0, 1, dim), 0.3, size=(num_clients, dim))
        bad = rng.choice(num_clients, size=max(1, num_clients // 4), replace=False)
        updates[bad] = -float(rng.uniform(5, 20)) * updates[bad]  # boosted sign flips
        if _distinct(*_trimmed_answers(updates, beta)):
            return updates, beta


def check_trimmed_mean(trimmed_mean: Callable, seed: int | None = None) -> None:
    """Check ``trimmed_mean(updates, beta)``: for each coordinate of the ``[K, d]`` ``updates``,
    the mean of the values left after dropping the ⌊β·K⌋ largest and the ⌊β·K⌋ smallest
    (``fedlab.robust.TrimmedMean``).

    It recognises: β·K trimmed from one side only (the largest or the smallest values); ⌊β·K⌋
    values trimmed in total instead of at each end; β·K rounded (or rounded up) instead of
    floored; the first and last clients dropped without sorting; each client's coordinates
    sorted (axis 1) instead of each coordinate over the clients; whole clients dropped by the
    norm of their update; the plain mean and the median.

    Example:
        >>> from fedlab.robust import TrimmedMean
        >>> from fedlab.aggregators import ClientUpdates
        >>> def trimmed_mean(updates, beta):
        ...     received = ClientUpdates([updates], np.ones(len(updates)))
        ...     return TrimmedMean(beta).apply({}, received, np.random.default_rng(0)).update[0]
        >>> check_trimmed_mean(trimmed_mean)
        ✓ trimmed_mean: each coordinate's mean without its ⌊β·K⌋ largest and ⌊β·K⌋ smallest values
        >>> check_trimmed_mean(lambda updates, beta: updates.mean(axis=0))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: trimmed_mean is the plain mean...
    """
    updates, beta = _trimmed_example(seed)
    k, d = updates.shape
    got = call(trimmed_mean, "trimmed_mean", updates.copy(), beta)
    if np.shape(got) != (d,):
        raise CheckFailed(
            f"trimmed_mean returns shape {np.shape(got)} for {k} clients' updates of {d} "
            f"coordinates: return one value per coordinate, shape ({d},) (a mean over the clients, "
            "axis 0)"
        )
    expected, mistakes = _trimmed_answers(updates, beta)
    diagnose(
        got,
        expected,
        mistakes,
        "trimmed_mean is not the mean of each coordinate without its ⌊β·K⌋ largest and ⌊β·K⌋ "
        "smallest values",
        atol=1e-9,
    )
    passed(
        "trimmed_mean: each coordinate's mean without its ⌊β·K⌋ largest and ⌊β·K⌋ smallest values"
    )


def check_trimmed_survives(trimmed_survives: Any, num_clients: int = 10, beta: float = 0.2) -> None:
    """Check ``trimmed_survives``: the most sign-flipping clients among ``num_clients`` that the
    trimmed mean with ``beta`` survives, ⌊β·K⌋ (the attackers sit at the same end of each
    coordinate, and only ⌊β·K⌋ values are cut there).

    It recognises: 2·⌊β·K⌋ (both ends counted, as if the attackers split over them); one more
    than ⌊β·K⌋; the median's bound; the plain mean's 0.

    Example:
        >>> check_trimmed_survives(2)
        ✓ trimmed_survives = 2
        >>> check_trimmed_survives(4)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: trimmed_survives = 4: you counted both ends...
    """
    cut = math.floor(beta * num_clients + 1e-9)
    hints: dict[int, str] = {}
    for wrong, hint in [
        (
            2 * cut,
            f"you counted both ends: ⌊β·K⌋ = {cut} values are cut at each end of a coordinate, "
            "but the sign-flippers all send values on the same side (opposite to the honest "
            f"updates), so only {cut} of them are cut and the next one stays in the mean",
        ),
        (
            cut + 1,
            f"⌊{beta:g} · {num_clients}⌋ = {cut} values are cut at each end: attacker number "
            f"{cut + 1} is left in the mean (section 3's sweep: the trimmed mean diverged with "
            f"{cut + 1})",
        ),
        (
            (num_clients - 1) // 2,
            "that is the median's bound (fewer than K/2): the trimmed mean cuts only ⌊β·K⌋ "
            "values at each end",
        ),
        (
            0,
            "0 is the plain mean's: the trimmed mean cuts the ⌊β·K⌋ most extreme values at each end",
        ),
    ]:
        hints.setdefault(wrong, hint)  # where two readings give one number, the first is meant
    hints.pop(cut, None)
    check_choice("trimmed_survives", trimmed_survives, cut, hints)


# --- Krum's scores (exercise 2) ------------------------------------------------------------------


def _squared_distances(updates: np.ndarray) -> np.ndarray:
    return ((updates[:, None, :] - updates[None, :, :]) ** 2).sum(axis=-1)


def _nearest_sums(distances: np.ndarray, count: int, include_self: bool = False) -> np.ndarray:
    """Each row's sum of its ``count`` smallest entries, leaving out the diagonal unless
    ``include_self``."""
    k = len(distances)
    rows = [
        np.sort(distances[i] if include_self else np.delete(distances[i], i))[:count]
        for i in range(k)
    ]
    return np.array([row.sum() for row in rows])


def _krum_answers(updates: np.ndarray, f: int) -> tuple[np.ndarray, list[Mistake]]:
    """Krum's scores of ``updates`` with f = ``f``, and what each anticipated mistake gives."""
    k = len(updates)
    squared = _squared_distances(updates)
    nearest = k - f - 2
    expected = _nearest_sums(squared, nearest)
    mistakes = [
        Mistake(
            squared.sum(axis=1),
            "your Krum score sums over all clients, not the K − f − 2 nearest: an attacker "
            "far from everyone then weighs in every honest client's score. Sort each client's "
            "distances and sum the K − f − 2 smallest",
        ),
        Mistake(
            _nearest_sums(squared, nearest, include_self=True),
            "you counted the client itself as a neighbour (its distance 0 is one of the "
            "nearest), so each score sums only K − f − 3 other updates: leave the diagonal out",
        ),
        Mistake(
            _nearest_sums(np.sqrt(squared), nearest),
            "your distances are not squared: Krum sums squared L2 distances, ‖Δ_i − Δ_j‖²",
        ),
        Mistake(
            _nearest_sums(squared, k - f),
            "your score sums K − f neighbours: Krum sums the K − f − 2 nearest others",
        ),
        Mistake(
            _nearest_sums(squared, k - f - 1),
            "your score sums K − f − 1 neighbours: Krum sums the K − f − 2 nearest others",
        ),
        Mistake(
            np.sort(expected),
            "your scores are sorted: return them in the clients' order, one per row of updates",
        ),
    ]
    return expected, mistakes


def _krum_example(seed: int | None) -> tuple[np.ndarray, int]:
    """K = 9 updates of 2 coordinates, f = 2: six honest ones, two colluding ones close together
    and one far away; or a seeded random example of the same kind (2 ≤ f, K > 2f + 2) on which
    every anticipated mistake gives its own answer."""
    rng = np.random.default_rng(11 if seed is None else seed + 1000)
    while True:
        num_honest = 6 if seed is None else int(rng.integers(5, 10))
        dim = 2 if seed is None else int(rng.integers(2, 5))
        honest = rng.normal(0.0, 1.0, size=(num_honest, dim)) + 2.0
        tight = rng.normal(-4.0, 0.3, size=(2, dim))
        far = rng.normal(15.0, 2.0, size=(1, dim))
        updates = rng.permutation(np.vstack([honest, tight, far]))
        k = len(updates)
        f = 2 if seed is None else int(rng.integers(2, (k - 3) // 2 + 1))
        if _distinct(*_krum_answers(updates, f)):
            return updates, f


def check_krum_scores(krum_scores: Callable, seed: int | None = None) -> None:
    """Check ``krum_scores(updates, num_byzantine)``: one score per client of the ``[K, d]``
    ``updates``, the sum of its squared distances to its K − f − 2 nearest *other* updates
    (``fedlab.robust.krum_scores``).

    It recognises: the sum over all clients instead of the K − f − 2 nearest; the client itself
    counted as a neighbour (its distance 0); distances not squared; K − f or K − f − 1
    neighbours; the scores sorted instead of in the clients' order; one number (Krum's pick)
    instead of a score per client.

    Example:
        >>> from fedlab.robust import krum_scores, pairwise_distances
        >>> check_krum_scores(lambda u, f: krum_scores(pairwise_distances(u), len(u) - f - 2))
        ✓ krum_scores: each client's squared distances to its K − f − 2 nearest other updates, summed
        >>> check_krum_scores(lambda u, f: pairwise_distances(u).sum(axis=1))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: your Krum score sums over all clients...
    """
    updates, f = _krum_example(seed)
    k = len(updates)
    got = call(krum_scores, "krum_scores", updates.copy(), f)
    if np.ndim(got) == 0 or np.shape(got) != (k,):
        raise CheckFailed(
            f"krum_scores returns {'one number' if np.ndim(got) == 0 else f'shape {np.shape(got)}'}"
            f" for {k} clients: return one score per client, shape ({k},), in the clients' order "
            "(Krum then keeps the client with the smallest)"
        )
    expected, mistakes = _krum_answers(updates, f)
    diagnose(
        got,
        expected,
        mistakes,
        "krum_scores is not each client's sum of squared distances to its K − f − 2 nearest "
        "other updates",
        atol=1e-6,
    )
    passed(
        "krum_scores: each client's squared distances to its K − f − 2 nearest other updates, summed"
    )


def check_attacker_kept(kept: Any, run: Any, attack: str = "a_little_is_enough") -> None:
    """Check ``kept``: the number of rounds of ``run`` (a History with a selecting defence such as
    Krum, or the DivergenceError of one) in which the defence kept a malicious client's update
    (``defence_kept`` and ``malicious`` of each round share a client). ``attack``: the attack's
    config name the run should have (``None``: any).

    It recognises: a run still a stub, without Krum or without the attack; the rounds in which
    the defence kept an honest client; the number of attackers; the number of rounds (when it
    is not the answer); a share instead of a count.

    Example:
        >>> from fedlab.history import History, RoundRecord
        >>> def record(r, kept):
        ...     return RoundRecord(r, (0, 1, 2), (0.5,) * 3, (5,) * 3, 0.5, 0.4, 0.9, (0.1,) * 3, 0.1,
        ...                        0.1, (1.0,) * 3, 8, 8, 0.01, malicious=(2,), defence_kept=kept)
        >>> config = {"algorithm": {"name": "FedAvg + Krum", "aggregator": {"name": "Krum"}},
        ...           "attackers": {"attack": {"name": "a_little_is_enough"}, "count": 1}}
        >>> run = History(config=config, rounds=[record(1, (2,)), record(2, (0,)), record(3, (2,))])
        >>> check_attacker_kept(2, run)
        ✓ alie_kept = 2: the defence kept an attacker's update in 2 of 3 rounds
        >>> check_attacker_kept(1, run)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: alie_kept = 1 counts the rounds in which Krum kept an honest client...
    """
    require("alie_run", run, "run Krum against the colluding attackers")
    history, _ = _run_history("alie_run", run)
    settings = _settings(history)
    aggregator = (settings.get("aggregator") or {}).get("name")
    if aggregator != "Krum":
        raise CheckFailed(
            f"alie_run ran with aggregator {aggregator or 'the plain mean'}: give "
            "robust.Krum(num_byzantine=KRUM_F)"
        )
    ran = (_attackers(settings).get("attack") or {}).get("name")
    if attack is not None and ran != attack:
        raise CheckFailed(
            f"alie_run ran {'no attack' if ran is None else f'the attack {ran!r}'}: give "
            "attackers=poisoning.Attackers(fedlab.poisoning.ALittleIsEnough(), count=2)"
        )
    require("alie_kept", kept, "count the rounds in which Krum kept an attacker")
    rounds = history.rounds
    expected = sum(bool(set(r.defence_kept) & set(r.malicious)) for r in rounds)
    if isinstance(kept, bool) or not isinstance(kept, int | np.integer):
        if isinstance(kept, float | np.floating) and 0 < kept <= 1 and len(rounds):
            if math.isclose(kept, expected / len(rounds)):
                raise CheckFailed(
                    f"alie_kept = {kept:g} is a share of the rounds: count them (an integer)"
                )
        raise CheckFailed(
            f"alie_kept should be a number of rounds (an integer), got {type(kept).__name__}"
        )
    if kept == expected:
        passed(
            f"alie_kept = {kept}: the defence kept an attacker's update in {kept} of "
            f"{len(rounds)} rounds"
        )
        return
    hints = [
        (
            len(rounds) - expected,
            f"alie_kept = {kept} counts the rounds in which Krum kept an honest client: count "
            "those in which a client of defence_kept is in malicious",
        ),
        (
            _attackers(settings).get("count"),
            f"alie_kept = {kept} is the number of attackers: count the rounds in which Krum kept "
            "one of them",
        ),
        (
            len(rounds),
            f"alie_kept = {kept} is the number of rounds: count only those in which a client of "
            "defence_kept is in malicious",
        ),
    ]
    for wrong, hint in hints:
        if kept == wrong:
            raise CheckFailed(hint)
    raise CheckFailed(
        f"alie_kept = {kept} is not the number of rounds in which a client of defence_kept is "
        "in malicious: compare the two fields of each of alie_run.rounds"
    )


# --- the median with another number of clients (exercise 3) --------------------------------------


def check_median_survives(median_survives: Any, num_clients: int = 11) -> None:
    """Check ``median_survives``: the most sign-flipping clients among ``num_clients`` the
    coordinate-wise median survives, the largest f < K/2, i.e. ⌈K/2⌉ − 1.

    It recognises: half the clients or more (a majority, or exactly half with an even K); one
    fewer than the bound (the even-K answer carried over to an odd K); the trimmed mean's bound.

    Example:
        >>> check_median_survives(5)
        ✓ median_survives = 5
        >>> check_median_survives(6)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: median_survives = 6: you expected the median to survive 6 of 11 attackers...
    """
    k = num_clients
    bound = math.ceil(k / 2) - 1
    hints: dict[int, str] = {}
    for wrong, hint in [
        (
            bound + 1,
            f"you expected the median to survive {bound + 1} of {k} attackers: its breakdown "
            f"point is < K/2 = {k / 2:g}. With {bound + 1} attackers the middle value"
            + (" is an attacker's" if k % 2 else "s np.median averages include an attacker's"),
        ),
        (
            bound - 1,
            f"{bound} < K/2 = {k / 2:g} too: with {bound} attackers among {k} clients the "
            "middle value of every sorted coordinate is still an honest client's (with 10 "
            "clients 5 broke it because np.median averages the 5th and 6th values)",
        ),
        (k // 2 + 1, f"that is a majority of the {k} clients: the median breaks before that"),
        (math.floor(0.2 * k + 1e-9), "that is the trimmed mean's bound (⌊β·K⌋ with β = 0.2)"),
    ]:
        hints.setdefault(wrong, hint)  # where two readings give one number, the first is meant
    hints.pop(bound, None)
    check_choice("median_survives", median_survives, bound, hints)


def _run_history(label: str, run: Any) -> tuple[Any, bool]:
    """The History of a run, or of the run a DivergenceError stopped (and whether it did)."""
    from fedlab.history import History
    from fedlab.rounds import DivergenceError

    if isinstance(run, DivergenceError):
        if run.history is None:
            raise CheckFailed(f"{label} is a DivergenceError without a history: run it again")
        return run.history, True
    if not isinstance(run, History):
        raise CheckFailed(
            f"{label} is a {type(run).__name__}: keep what the notebook's run() returns (a "
            "History, or the DivergenceError of a run that diverged)"
        )
    return run, False


_CHANGED_BY_AN_ATTACK = {"attackers", "aggregator", "algorithm"}


def _attackers(settings: Mapping[str, Any]) -> dict:
    return settings.get("attackers") or {}


def check_median_runs(
    median_runs: Any,
    reference: Any,
    num_clients: int = 11,
    counts: Sequence[int] = (5, 6),
) -> None:
    """Check ``median_runs``: ``{f: run}`` for each f in ``counts``, each made as ``reference`` (a
    run of notebook 15's sweep with the median) but with ``num_clients`` clients, all taking
    part every round, and f attackers (a run is a History, or the DivergenceError of a run that
    diverged).

    It recognises: a missing count; a run still a stub; another aggregator than the median; the
    notebook's 10-client split kept; not every client in every round; no attackers, another
    attack or another number of attackers; any other setting changed.

    Example:
        >>> from fedlab.history import History
        >>> config = {"algorithm": {"name": "FedAvg + CoordinateMedian", "aggregator": {"name": "CoordinateMedian"}},
        ...           "num_clients": 10, "clients_per_round": 10, "seed": 0,
        ...           "attackers": {"attack": {"name": "sign_flip", "scale": 20.0}, "count": 4}}
        >>> reference = History(config=config)
        >>> check_median_runs({5: reference, 6: reference}, reference)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: median_runs[5] has 10 clients...
    """
    require("median_runs", median_runs, f"run the median with {num_clients} clients")
    if not isinstance(median_runs, Mapping):
        raise CheckFailed(
            "median_runs should be a dict {number of attackers: run}, with "
            + " and ".join(str(f) for f in counts)
        )
    missing = [f for f in counts if f not in median_runs]
    if missing:
        raise CheckFailed(f"median_runs has no run for {', '.join(map(str, missing))} attackers")
    base_history, _ = _run_history("reference", reference)
    base = _settings(base_history)
    outcomes = []
    for f in counts:
        label = f"median_runs[{f}]"
        require(
            label, median_runs[f], f"run the median with {num_clients} clients and {f} attackers"
        )
        history, diverged = _run_history(label, median_runs[f])
        got = _settings(history)
        aggregator = (got.get("aggregator") or {}).get("name")
        if aggregator != "CoordinateMedian":
            raise CheckFailed(
                f"{label} ran with aggregator {aggregator or 'the plain mean'}: give the "
                "median, robust.CoordinateMedian(), as in section 3"
            )
        if got.get("num_clients") != num_clients:
            raise CheckFailed(
                f"{label} has {got.get('num_clients')} clients: make a split of {num_clients} "
                f"(fedlab.partition.iid(digits.y_train, {num_clients}, seed=SEED))"
            )
        if got.get("clients_per_round") != num_clients:
            raise CheckFailed(
                f"{label} took {got.get('clients_per_round')} clients a round: every one of the "
                f"{num_clients} must take part, so that each round has all {f} attackers"
            )
        attack, wanted = _attackers(got), _attackers(base)
        if not attack:
            raise CheckFailed(f"{label} ran without attackers: give attackers=Attackers(...)")
        if attack.get("attack") != wanted.get("attack"):
            raise CheckFailed(
                f"{label} ran the attack {attack.get('attack')}: use section 3's, "
                f"{wanted.get('attack')}"
            )
        if attack.get("count") != f:
            raise CheckFailed(
                f"{label} had {attack.get('count')} attackers: the key says {f} "
                f"(Attackers(..., count={f}))"
            )
        for setting, value in base.items():
            if setting in _CHANGED_BY_AN_ATTACK | {"num_clients", "clients_per_round"}:
                continue
            if setting == "num_rounds":
                if got["num_rounds"] > value or (not diverged and got["num_rounds"] != value):
                    raise CheckFailed(
                        f"{label} has {got['num_rounds']} rounds, section 3's runs {value}: run "
                        "as many, so the two compare"
                    )
                continue
            if got.get(setting) != value:
                raise CheckFailed(
                    f"{label} also changed {setting} ({value!r} → {got.get(setting)!r}): change "
                    "only the number of clients and of attackers"
                )
        if diverged:
            outcomes.append(f"{f} attackers: diverged in round {got['num_rounds'] + 1}")
        else:
            outcomes.append(f"{f} attackers: final accuracy {history.test_accuracy[-1]:.2f}")
    passed(
        f"median_runs: {num_clients} clients, the median, section 3's attack; "
        + "; ".join(outcomes)
    )


# --- choosing the clip norm (exercise 4) ---------------------------------------------------------


def check_clip_runs(
    clip_runs: Any, reference: Any, name: str = "clip_runs", clip_norms: Sequence[float] = ()
) -> None:
    """Check ``clip_runs``: ``{clip_norm: History}``, each made as ``reference`` (a run with
    ``fedlab.robust.NormClipping``) with its key as the clip norm and nothing else changed.
    ``clip_norms``: the keys wanted (default: any).

    It recognises: a run still a stub or missing; a run without norm clipping; a clip norm that
    is not the run's key; noise added; any other setting changed (the attackers, the split...).

    Example:
        >>> from fedlab.history import History
        >>> def clipped(c):
        ...     return History(config={"algorithm": {"name": "FedAvg + NormClipping", "aggregator": {
        ...         "name": "NormClipping", "clip_norm": c, "noise_std": 0.0}}, "seed": 0})
        >>> check_clip_runs({0.1: clipped(0.1), 1.0: clipped(1.0)}, clipped(0.5))
        ✓ clip_runs: 2 runs made as the reference run, clip norms 0.1, 1.0
        >>> check_clip_runs({0.1: clipped(0.5)}, clipped(0.5))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: clip_runs[0.1] clipped at 0.5...
    """
    from fedlab.history import History

    require(name, clip_runs, "run the clipped run again with each clip norm")
    if not isinstance(clip_runs, Mapping) or not clip_runs:
        raise CheckFailed(f"{name} should be a dict {{clip_norm: History}}")
    missing = [c for c in clip_norms if c not in clip_runs]
    if missing:
        raise CheckFailed(f"{name} has no run for clip_norm {', '.join(map(str, missing))}")
    base = _settings(reference)
    for clip, run in clip_runs.items():
        label = f"{name}[{clip!r}]"
        require(label, run, f"run it as the reference with NormClipping(clip_norm={clip!r})")
        if not isinstance(run, History):
            raise CheckFailed(
                f"{label} is a {type(run).__name__}, not the History that fedlab.simulate "
                "returns (a run with norm clipping does not diverge here)"
            )
        got = _settings(run)
        aggregator = got.get("aggregator") or {}
        if aggregator.get("name") != "NormClipping":
            raise CheckFailed(
                f"{label} ran with aggregator {aggregator.get('name') or 'the plain mean'}: give "
                f"robust.NormClipping(clip_norm={clip!r})"
            )
        if not math.isclose(aggregator.get("clip_norm", math.nan), float(clip)):
            raise CheckFailed(
                f"{label} clipped at {aggregator.get('clip_norm')}: the key says clip_norm={clip!r}"
            )
        if aggregator.get("noise_std", 0.0) != (base.get("aggregator") or {}).get("noise_std", 0.0):
            raise CheckFailed(f"{label} adds noise (noise_std): change only the clip norm")
        for setting, value in base.items():
            if setting in ("aggregator", "algorithm") or got.get(setting) == value:
                continue
            if setting == "num_rounds":
                raise CheckFailed(
                    f"{label} has {got['num_rounds']} rounds, the reference run {value}: run as "
                    "many, so the two compare"
                )
            raise CheckFailed(
                f"{label} also changed {setting} ({value!r} → {got.get(setting)!r}): change only "
                "the clip norm, so any difference you see has one cause"
            )
    norms = ", ".join(str(c) for c in clip_runs)
    passed(f"{name}: {len(clip_runs)} runs made as the reference run, clip norms {norms}")


def _final_backdoor(history: Any) -> float:
    success = history.series("backdoor_success")
    success = success[~np.isnan(success)]
    return float(success[-1]) if len(success) else math.nan


def check_best_clip(
    best_clip: Any, clip_runs: Any, clip_price: Any, threshold: float = 0.1
) -> None:
    """Check ``best_clip``: among the clip norms of ``clip_runs`` (attacked by a backdoor) whose
    backdoor success in the last evaluated round is below ``threshold``, the one whose run in
    ``clip_price`` (non-IID, no attacker) ends with the highest test accuracy.

    It recognises: a clip norm not run; one whose backdoor still succeeds; a safe clip norm
    that costs more non-IID accuracy than another safe one (the smallest is the usual pick);
    a clip norm missing from ``clip_price``.

    Example:
        >>> from fedlab.history import History, RoundRecord
        >>> def run(backdoor, accuracy):
        ...     r = RoundRecord(1, (0,), (0.5,), (5,), 0.5, 0.4, accuracy, (0.1,), 0.1, 0.1, (1.0,),
        ...                     8, 8, 0.01, backdoor_success=backdoor)
        ...     return History(rounds=[r])
        >>> attacked = {0.1: run(0.0, 0.8), 0.5: run(0.05, 0.9), 2.0: run(0.9, 0.93)}
        >>> clean = {0.1: run(float("nan"), 0.5), 0.5: run(float("nan"), 0.88), 2.0: run(float("nan"), 0.92)}
        >>> check_best_clip(0.5, attacked, clean)
        ✓ best_clip = 0.5: backdoor success 0.05 < 0.1, non-IID accuracy 0.88, the best of the safe clip norms
        >>> check_best_clip(2.0, attacked, clean)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: best_clip = 2.0: the backdoor still succeeds...
    """
    require("best_clip", best_clip, "name the clip norm you would choose")
    for label, runs in (("clip_runs", clip_runs), ("clip_price", clip_price)):
        require(label, runs, "make the runs of (a) first")
        if not isinstance(runs, Mapping) or not runs:
            raise CheckFailed(f"{label} should be a dict {{clip_norm: History}}: answer (a) first")
    if best_clip not in clip_runs:
        raise CheckFailed(
            f"best_clip = {best_clip!r} is not one of the clip norms you ran: "
            f"{', '.join(f'{c:g}' for c in clip_runs)}"
        )
    missing = [c for c in clip_runs if c not in clip_price]
    if missing:
        raise CheckFailed(
            f"clip_price has no run for clip_norm {', '.join(map(str, missing))}: run every clip "
            "norm of clip_runs on the non-IID split too"
        )
    backdoor = {c: _final_backdoor(h) for c, h in clip_runs.items()}
    accuracy = {c: float(clip_price[c].test_accuracy[-1]) for c in clip_runs}
    safe = [c for c in clip_runs if backdoor[c] < threshold]
    if not safe:
        raise CheckFailed(
            f"no clip norm of clip_runs keeps the backdoor below {threshold:g}: try smaller ones"
        )
    best = max(safe, key=lambda c: (accuracy[c], c))
    if backdoor[best_clip] >= threshold:
        raise CheckFailed(
            f"best_clip = {best_clip!r}: the backdoor still succeeds on {backdoor[best_clip]:.2f} "
            f"of the triggered images in the last round (≥ {threshold:g}): this clip norm lets the "
            "boosted update through"
        )
    if best_clip != best:
        cheaper = (
            " (the smallest clip norm is the safest, and the dearest)"
            if best_clip == min(safe)
            else ""
        )
        raise CheckFailed(
            f"best_clip = {best_clip!r} stops the backdoor but leaves the non-IID run at "
            f"{accuracy[best_clip]:.2f}: another safe clip norm costs less{cheaper}"
        )
    passed(
        f"best_clip = {best_clip!r}: backdoor success {backdoor[best_clip]:.2f} < {threshold:g}, "
        f"non-IID accuracy {accuracy[best_clip]:.2f}, the best of the safe clip norms"
    )
