"""Stragglers: clients that cannot finish their local work in time (``07_stragglers_and_limited_compute``).

Systems heterogeneity as the FedProx paper simulates it (Li et al. 2020, Sec. 5.2, and its
reference code ``flearn/trainers/fedavg.py``/``fedprox.py``): in every round a fraction of the
selected clients are *stragglers* that manage only part of the local work.

* **Which clients.** Of the ``K`` selected clients, ``K − round(K · (1 − fraction))`` straggle (the
  reference code's count of active clients, Python's ``round``), chosen at random.
* **How much work.** A straggler trains ``x`` local epochs with ``x`` uniform in
  ``[min_epochs, E − 1]`` (the reference code's ``np.random.randint(1, num_epochs)``), i.e. the
  first ``x`` epochs of the mini-batches it would have used. With ``E = 1`` there is no smaller
  whole number of epochs, so it takes a uniform number of local *steps* in ``[1, S − 1]`` of its
  ``S`` steps (the reference code's alternative ``solve_iters``); a client with a single step
  cannot do less and takes it.
* **What the server does with them.** ``drop=True``: it does not wait, and the stragglers are
  left out of the round (FedAvg in the paper): they send nothing, their persistent state is
  untouched, and they do not count as participants. ``drop=False``: their partial updates are
  aggregated like everyone else's, weighted by example count (FedProx in the paper). A round in
  which every selected client is dropped changes nothing on the server: the global weights and
  the server state stay as they were (the reference code would divide by zero here).

Who straggles and how much work each may do depend only on ``(seed, round, selected clients)``
and the local-epoch and batch settings — never on which algorithm runs — so FedAvg and FedProx
with the same seed face the same stragglers (the paper's ``np.random.seed(round)``). Stragglers
are the first clients of one random order of the selected clients, so with one seed the
stragglers at 50 % are among those at 90 %.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fedlab.validate import check_float, check_int

_STRAGGLERS = 3  # random stream id; fedlab.steps uses 1 (sampling) and 2 (batch order)


def steps_per_epoch(num_examples: int, batch_size: int | None) -> int:
    """Local SGD steps in one epoch over ``num_examples`` (one step when ``batch_size`` is None).

    Example:
        >>> steps_per_epoch(23, 5), steps_per_epoch(23, None)
        (5, 1)
    """
    num_examples = check_int("num_examples", num_examples, low=1)
    if batch_size is None:
        return 1
    return math.ceil(num_examples / check_int("batch_size", batch_size, low=1))


@dataclass(frozen=True)
class Stragglers:
    """Each round, a ``fraction`` of the selected clients do only part of their local work.

    Attributes:
        fraction: share of each round's selected clients that straggle, in [0, 1].
        drop: ``True``: stragglers are left out of aggregation (FedAvg in the FedProx paper);
            ``False``: their partial work is aggregated (FedProx).
        min_epochs: the fewest local epochs a straggler does (>= 1, at most ``local_epochs − 1``
            when ``local_epochs > 1``). See the module docstring for the work budgets.

    Example:
        >>> stragglers = Stragglers(0.5, drop=False)
        >>> is_straggler, budget = stragglers.plan([40, 40, 40, 40], local_epochs=5,
        ...                                         batch_size=10, round_num=1, seed=0)
        >>> int(is_straggler.sum()), budget[~is_straggler].tolist()
        (2, [20, 20])
        >>> all(b % 4 == 0 and 4 <= b <= 16 for b in budget[is_straggler])  # 1..4 epochs of 4 steps
        True
    """

    fraction: float
    drop: bool = True
    min_epochs: int = 1

    def __post_init__(self):
        check_float("fraction", self.fraction, low=0.0, high=1.0)
        if not isinstance(self.drop, bool | np.bool_):
            raise TypeError(f"drop must be True or False, got {type(self.drop).__name__}")
        check_int("min_epochs", self.min_epochs, low=1)

    def num_stragglers(self, num_selected: int) -> int:
        """How many of ``num_selected`` clients straggle: ``K − round(K · (1 − fraction))``.

        Example:
            >>> [Stragglers(f).num_stragglers(10) for f in (0.0, 0.5, 0.9, 1.0)]
            [0, 5, 9, 10]
        """
        num_selected = check_int("num_selected", num_selected, low=0)
        return num_selected - round(num_selected * (1.0 - self.fraction))

    def check_epochs(self, local_epochs: int) -> None:
        """Raise a ValueError if ``min_epochs`` leaves no room below ``local_epochs``.

        Example:
            >>> Stragglers(0.5, min_epochs=3).check_epochs(5)  # stragglers do 3 or 4 epochs
            >>> Stragglers(0.5, min_epochs=5).check_epochs(5)
            Traceback (most recent call last):
            ...
            ValueError: min_epochs must be an integer in [1, 4] (below local_epochs=5), got 5
        """
        local_epochs = check_int("local_epochs", local_epochs, low=1)
        high = max(local_epochs - 1, 1)
        if self.min_epochs > high:
            raise ValueError(
                f"min_epochs must be an integer in [1, {high}] (below local_epochs="
                f"{local_epochs}), got {self.min_epochs}"
            )

    def plan(
        self,
        num_examples: Sequence[int] | np.ndarray,
        local_epochs: int,
        batch_size: int | None,
        round_num: int,
        seed: int = 0,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Which of a round's selected clients straggle, and the local steps each may take.

        ``num_examples`` holds the selected clients' example counts, in the order of their ids.
        Returns a boolean array (True: straggler) and an integer array of local-step budgets
        (the full ``local_epochs · steps_per_epoch`` for clients that do not straggle).

        Example:
            >>> is_straggler, budget = Stragglers(1.0).plan(
            ...     [5, 12], local_epochs=1, batch_size=2, round_num=1)  # full: 3 and 6 steps
            >>> is_straggler.tolist(), budget.tolist()  # one epoch: fewer steps, at least one
            ([True, True], [2, 1])
        """
        sizes = np.asarray(num_examples).reshape(-1)
        self.check_epochs(local_epochs)
        round_num = check_int("round_num", round_num, low=1)
        seed = check_int("seed", seed, low=0)
        rng = np.random.default_rng(np.random.SeedSequence([seed, _STRAGGLERS, round_num]))
        order = rng.permutation(len(sizes))  # the first ones straggle: nested across fractions
        draws = rng.random(len(sizes))  # one work draw per client, whatever the fraction
        is_straggler = np.zeros(len(sizes), bool)
        is_straggler[order[: self.num_stragglers(len(sizes))]] = True
        per_epoch = np.array([steps_per_epoch(int(n), batch_size) for n in sizes], np.int64)
        budget = local_epochs * per_epoch
        for i in np.flatnonzero(is_straggler):
            if local_epochs > 1:  # x epochs, x uniform in [min_epochs, E - 1]
                span = local_epochs - self.min_epochs
                epochs = self.min_epochs + min(int(draws[i] * span), span - 1)
                budget[i] = epochs * per_epoch[i]
            elif budget[i] > 1:  # E = 1: a uniform number of steps in [1, S - 1]
                budget[i] = 1 + min(int(draws[i] * (budget[i] - 1)), budget[i] - 2)
        return is_straggler, budget

    def config(self) -> dict:
        """A JSON-friendly description (saved in a History's config).

        Example:
            >>> Stragglers(0.9, drop=False).config()
            {'fraction': 0.9, 'drop': False, 'min_epochs': 1}
        """
        return {"fraction": self.fraction, "drop": bool(self.drop), "min_epochs": self.min_epochs}


def step_budgets(max_local_steps: int | Sequence[int], num_clients: int) -> np.ndarray:
    """Every client's cap on local steps per round, checked: one int for all, or one per client.

    A compute budget (:class:`fedlab.Simulation`'s ``max_local_steps``): a slow phone may take
    3 steps a round while a laptop takes 30.

    Example:
        >>> step_budgets(5, 3).tolist(), step_budgets([1, 2, 3], 3).tolist()
        ([5, 5, 5], [1, 2, 3])
    """
    if isinstance(max_local_steps, int | np.integer) and not isinstance(max_local_steps, bool):
        return np.full(num_clients, check_int("max_local_steps", max_local_steps, low=1))
    budgets = np.asarray(max_local_steps)
    if budgets.shape != (num_clients,) or budgets.dtype.kind not in "iu":
        raise ValueError(
            f"max_local_steps must be an int or {num_clients} ints (one per client), "
            f"got {max_local_steps!r}"
        )
    if budgets.min() < 1:
        raise ValueError(f"max_local_steps must all be at least 1, got {budgets.min()}")
    return budgets.astype(np.int64)
