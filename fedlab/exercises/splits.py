"""Checks for the exercises on client splits (notebook 01's unequal split, notebook 02):
a split built by hand, the mean of the last rounds, an alpha sweep, the IID floor."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from fedlab.exercises.core import (
    CheckFailed,
    Mistake,
    call,
    diagnose,
    passed,
    require,
    same,
)

# --- client splits (notebooks 01 and 02) ---------------------------------------------------------


__all__ = [
    "check_alpha_sweep",
    "check_corrected_heterogeneity",
    "check_iid_floor",
    "check_last10_mean",
    "check_unequal_split",
]


def check_unequal_split(split: Any, labels: np.ndarray, num_clients: int) -> None:
    """Check a split of ``labels`` over ``num_clients`` clients in which client 0 holds half of the
    examples and the others share the rest equally (notebook 01, exercise 2).

    It recognises: the stub; another number of clients; client 0 holding more or less than half;
    examples left without a client; the other clients given unequal shares.

    Example:
        >>> from fedlab.partition import ClientSplit
        >>> labels = np.zeros(12, dtype=int)
        >>> check_unequal_split(ClientSplit.from_indices([range(6), range(6, 9), range(9, 12)], labels), labels, 3)
        ✓ unequal_split: client 0 holds 6 of 12 examples, the other 2 clients 3 each
        >>> check_unequal_split(ClientSplit.from_indices([range(4), range(4, 8), range(8, 12)], labels), labels, 3)
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: client 0 holds 4 of the 12 examples (33 %); give it half: its indices are the first 6 of a shuffled order, say
    """
    require("unequal_split", split, "build it with fedlab.ClientSplit.from_indices")
    sizes, n = np.asarray(split.sizes), len(labels)
    if split.num_clients != num_clients:
        raise CheckFailed(f"unequal_split has {split.num_clients} clients; make {num_clients}")
    if sizes.sum() != n:
        raise CheckFailed(
            f"{n - sizes.sum()} of the {n} examples have no client: deal every example to one "
            "client (client 0 half of them, the others the rest)"
        )
    if abs(int(sizes[0]) - n // 2) > 1:
        raise CheckFailed(
            f"client 0 holds {sizes[0]} of the {n} examples ({100 * sizes[0] / n:.0f} %); give "
            f"it half: its indices are the first {n // 2} of a shuffled order, say"
        )
    rest = sizes[1:]
    if rest.max() - rest.min() > 1:
        raise CheckFailed(
            f"the other clients hold {rest.min()} to {rest.max()} examples: share the rest "
            "equally (np.array_split of the remaining indices)"
        )
    passed(
        f"unequal_split: client 0 holds {sizes[0]} of {n} examples, the other "
        f"{num_clients - 1} clients {rest.min()}{'' if rest.min() == rest.max() else f'–{rest.max()}'} each"
    )


# --- measuring a split and its runs (notebook 02) ------------------------------------------------


def check_last10_mean(last10_mean: Callable, seed: int | None = None) -> None:
    """Check ``last10_mean(accuracy)``: the mean of the last ten numbers of a per-round series.

    It recognises: the last round only; the best round; the mean over all rounds; the first ten
    rounds; the last nine or eleven (an off-by-one slice).

    Example:
        >>> check_last10_mean(lambda a: float(np.mean(a[-10:])))
        ✓ last10_mean averages the last 10 rounds
        >>> check_last10_mean(lambda a: float(a[-1]))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: last10_mean returns the last round's accuracy...
    """
    if seed is None:
        acc = np.array(
            [0.1, 0.3, 0.45, 0.6, 0.7, 0.72, 0.78, 0.8, 0.77, 0.83]
            + [0.85, 0.82, 0.88, 0.84, 0.9, 0.86, 0.89, 0.91, 0.87, 0.89]
        )
    else:
        rng = np.random.default_rng(seed)
        acc = np.clip(np.sort(rng.uniform(0.1, 0.9, 25)) + rng.normal(0, 0.03, 25), 0, 1)
    got = call(last10_mean, "last10_mean", acc.copy())
    diagnose(
        got,
        acc[-10:].mean(),
        [
            Mistake(
                acc[-1],
                "last10_mean returns the last round's accuracy: one round can be "
                "lucky or unlucky; average the last ten (accuracy[-10:])",
            ),
            Mistake(acc.max(), "last10_mean returns the best round: average the last ten"),
            Mistake(
                acc.mean(),
                "last10_mean averages every round, the early ones too: only the "
                "last ten (accuracy[-10:])",
            ),
            Mistake(
                acc[:10].mean(),
                "last10_mean averages the first ten rounds: take the last ten, accuracy[-10:]",
            ),
            Mistake(
                acc[-10:-1].mean(),
                "last10_mean averages nine rounds (accuracy[-10:-1] "
                "leaves the last out): accuracy[-10:]",
            ),
            Mistake(acc[-11:].mean(), "last10_mean averages eleven rounds: accuracy[-10:]"),
        ],
        "last10_mean is not the mean of the last ten values: np.mean(accuracy[-10:])",
    )
    passed("last10_mean averages the last 10 rounds")


def check_alpha_sweep(
    alphas: Sequence[float],
    h: Any,
    accuracy: Any,
    *,
    labels: np.ndarray,
    num_clients: int,
    seed: int,
) -> None:
    """Check a sweep over Dirichlet α (notebook 02, exercise 3): ``h[i]`` is the heterogeneity of
    ``partition.dirichlet(labels, num_clients, alpha=alphas[i], seed=seed)`` and ``accuracy[i]``
    a test accuracy in [0, 1] of FedAvg trained on it.

    It recognises: stubs; a number of results other than one per α; the results in reverse
    order; an H that is not that split's; accuracies out of [0, 1]; the same accuracy for every α
    (one split trained on every time).

    Example:
        >>> from fedlab.partition import dirichlet
        >>> labels = np.repeat(np.arange(4), 30)
        >>> h = [dirichlet(labels, 3, alpha=a, seed=0).heterogeneity() for a in (10, 0.1)]
        >>> check_alpha_sweep([10, 0.1], h, [0.9, 0.7], labels=labels, num_clients=3, seed=0)
        ✓ the sweep: H from 0.10 (α = 10) to 0.27 (α = 0.1), one accuracy for each
        >>> check_alpha_sweep([10, 0.1], h[::-1], [0.7, 0.9], labels=labels, num_clients=3, seed=0)
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: alpha_h is in the reverse order of the αs: alpha_h[i] belongs to alphas[i]
    """
    from fedlab import partition

    require("alpha_h", h, "the H of each α's Dirichlet split, in the order of the αs")
    require("alpha_accuracy", accuracy, "FedAvg's mean accuracy of the last 10 rounds, per α")
    h, accuracy = np.asarray(h, dtype=np.float64), np.asarray(accuracy, dtype=np.float64)
    if len(h) != len(alphas) or len(accuracy) != len(alphas):
        raise CheckFailed(
            f"alpha_h has {len(h)} values and alpha_accuracy {len(accuracy)}: one each per α "
            f"({len(alphas)})"
        )
    truth = []
    for alpha in alphas:
        try:
            split = partition.dirichlet(labels, num_clients, alpha=alpha, seed=seed)
        except ValueError:  # a tiny example where min_size cannot be met
            split = partition.dirichlet(labels, num_clients, alpha=alpha, seed=seed, min_size=1)
        truth.append(split.heterogeneity())
    truth = np.asarray(truth)
    if len(alphas) > 1 and same(h, truth[::-1], atol=1e-6) and not same(h, truth, atol=1e-6):
        raise CheckFailed(
            "alpha_h is in the reverse order of the αs: alpha_h[i] belongs to alphas[i]"
        )
    for alpha, got, want in zip(alphas, h, truth, strict=True):
        if not math.isclose(got, want, abs_tol=1e-6):
            raise CheckFailed(
                f"alpha_h for α = {alpha} is not the H of that split: "
                "partition.dirichlet(digits.y_train, NUM_CLIENTS, alpha=α, seed=SEED)"
                ".heterogeneity()"
            )
    if accuracy.min() < 0 or accuracy.max() > 1:
        raise CheckFailed("alpha_accuracy has values outside [0, 1]: accuracies, not percentages")
    if len(alphas) > 2 and np.ptp(accuracy) < 1e-9:
        raise CheckFailed("every α gives the same accuracy: train each run on its own α's split")
    passed(
        f"the sweep: H from {h[0]:.2f} (α = {alphas[0]:g}) to {h[-1]:.2f} (α = {alphas[-1]:g}), "
        "one accuracy for each"
    )


def check_iid_floor(floor: Any, labels: np.ndarray, sizes: Sequence[int]) -> None:
    """Check ``floor``: ``{num_clients: H}`` of ``partition.iid(labels, num_clients)`` for each
    number in ``sizes`` (any seed: H is compared to within 0.03).

    It recognises: the stub; a missing size; the label entropy instead of H; an H that is not an
    IID split's of that many clients.

    Example:
        >>> from fedlab import load_digits
        >>> from fedlab.partition import iid
        >>> labels = load_digits().y_train
        >>> check_iid_floor({n: iid(labels, n, seed=1).heterogeneity() for n in (10, 100)}, labels, (10, 100))
        ✓ iid_floor: H of IID splits grows from 0.09 (10 clients) to 0.34 (100 clients)
    """
    from fedlab import partition

    require("iid_floor", floor, "{num_clients: H of partition.iid(...)} for each size")
    if not isinstance(floor, Mapping):
        raise CheckFailed("iid_floor should be a dict {number of clients: H}")
    missing = [n for n in sizes if n not in floor]
    if missing:
        raise CheckFailed(f"iid_floor has no entry for {missing} clients")
    for n in sizes:
        split = partition.iid(labels, n, seed=0)
        if math.isclose(floor[n], split.label_entropy().mean(), abs_tol=0.05):
            raise CheckFailed(
                f"iid_floor[{n}] is the mean label entropy: the exercise wants H, "
                "split.heterogeneity()"
            )
        if abs(floor[n] - split.heterogeneity()) > 0.03:
            raise CheckFailed(
                f"iid_floor[{n}] is not the H of an IID split of {n} clients: "
                f"partition.iid(digits.y_train, {n}, seed=SEED).heterogeneity()"
            )
    first, last = sizes[0], sizes[-1]
    passed(
        f"iid_floor: H of IID splits grows from {floor[first]:.2f} ({first} clients) to "
        f"{floor[last]:.2f} ({last} clients)"
    )


def check_corrected_heterogeneity(
    corrected_heterogeneity: Callable, labels: np.ndarray, seed: int | None = None
) -> None:
    """Check ``corrected_heterogeneity(split, labels)``: H minus the H of an IID split of the same
    client sizes, so that IID splits of any size score about 0 and label skew stays positive
    (notebook 02, exercise 4). Tried on IID splits of 10 and 100 clients and a shards split.

    It recognises: the stub; the raw H; a ratio (H / H_iid, about 1 for IID); the IID floor taken
    at another number of clients; a corrected index that hides real skew.

    Example:
        >>> from fedlab import load_digits
        >>> from fedlab.partition import ClientSplit
        >>> def floor_subtracted(split, labels):
        ...     rng = np.random.default_rng(0)
        ...     cuts = np.cumsum(split.sizes)[:-1]
        ...     same_sizes = np.split(rng.permutation(split.num_examples), cuts)
        ...     floor = ClientSplit.from_indices(same_sizes, labels).heterogeneity()
        ...     return split.heterogeneity() - floor
        >>> check_corrected_heterogeneity(floor_subtracted, load_digits().y_train)
        ✓ corrected_heterogeneity is about 0 for IID splits of 10 and 100 clients, 0.7 for shards
    """
    from fedlab import partition

    labels = np.asarray(labels)
    base = 0 if seed is None else seed
    iid_10 = [partition.iid(labels, 10, seed=base + s) for s in range(3)]
    iid_100 = [partition.iid(labels, 100, seed=base + s) for s in range(3)]
    shards = partition.shards(labels, 10, shards_per_client=2, seed=base)

    def score(split: Any) -> float:
        return float(call(corrected_heterogeneity, "corrected_heterogeneity", split, labels))

    at_10 = np.mean([score(s) for s in iid_10])
    at_100 = np.mean([score(s) for s in iid_100])
    skew = score(shards)
    raw_100 = np.mean([s.heterogeneity() for s in iid_100])
    raw_10 = np.mean([s.heterogeneity() for s in iid_10])
    if abs(at_100 - raw_100) < 0.02 and abs(at_10 - raw_10) < 0.02:
        raise CheckFailed(
            f"for IID splits of 100 clients your index is {at_100:.2f}, the raw H: subtract the H "
            "of an IID split with the same client sizes (the noise floor)"
        )
    if abs(at_100 - 1) < 0.15 and abs(at_10 - 1) < 0.15:
        raise CheckFailed(
            "your index is about 1 for IID splits: a ratio H / H_iid. Subtract instead, "
            "H − H_iid, so that IID scores 0"
        )
    if abs(at_10) < 0.03 and abs(at_100) > 0.1:
        raise CheckFailed(
            f"0 for 10 clients but {at_100:.2f} for 100: compare with an IID split of the same "
            "client sizes as the split you score (split.sizes), not of 10 clients"
        )
    if abs(at_10) > 0.03 or abs(at_100) > 0.03:
        raise CheckFailed(
            f"for IID splits your index averages {at_10:.2f} (10 clients) and {at_100:.2f} (100 "
            "clients); it should be about 0 for both"
        )
    if skew < 0.3:
        raise CheckFailed(
            f"a shards split (2 digits per client) scores {skew:.2f}: the corrected index must "
            "still see real label skew (H − H_iid, not something that is always 0)"
        )
    passed(
        f"corrected_heterogeneity is about 0 for IID splits of 10 and 100 clients, {skew:.1f} for shards"
    )
