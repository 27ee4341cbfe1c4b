"""When does a shared body help? Multi-task FedAvg against one FedAvg per task, over seeds.

Notebook 13, section 4 runs each setting once (seed 0); this script repeats them over several
seeds and prints, per task, the mean ± standard deviation (over seeds) of each method's test
accuracy and of the difference, shared minus separate::

    .venv/bin/python benchmarks/bench_multitask.py            # 5 seeds, every setting: ~5 min on 2 cores
    .venv/bin/python benchmarks/bench_multitask.py --seeds 2 --settings plenty scarce

The settings (40 clients of ``multitask_digits``, 10 per task, about 36 training images each;
5 local epochs at learning rate 0.3 and every client in every round unless said otherwise;
accuracy of the global model on every test image, asked each task's question):

* ``plenty`` — all 40 clients;
* ``scarce`` — the digit task keeps one client, the yes/no tasks ten each;
* ``scarce3`` — the digit task keeps three clients;
* ``balanced`` — as ``scarce``, with the body's update weighted so that every task counts a
  quarter (a client's weight ``n_k / N_task``, instead of ``n_k``);
* ``tiny`` — as ``plenty``, with a hidden layer of 4 units instead of 128;
* ``slow`` — as ``plenty``, with the notebook's earlier training (1 local epoch, learning rate 0.1,
  30 rounds).

It is a report, not a test: CI does not run it.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import numpy as np

import fedlab  # noqa: F401  (first: quietens TensorFlow's start-up)
from fedlab import Algorithm, FedAvg, Simulation, load_digits
from fedlab.models import FedModel, model_fn
from fedlab.multitask import TASKS, multitask_digits, task_accuracy
from fedlab.personalization import MultiTaskFedAvg, TaskHeads

NUM_CLIENTS = 40
TRAINING = {"local_epochs": 5, "client_lr": 0.3}
SETTINGS = {  # name: (clients per task, rounds, training, hidden units, task-balanced body)
    "plenty": ((10, 10, 10, 10), 40, TRAINING, 128, False),
    "scarce": ((1, 10, 10, 10), 40, TRAINING, 128, False),
    "scarce3": ((3, 10, 10, 10), 40, TRAINING, 128, False),
    "balanced": ((1, 10, 10, 10), 40, TRAINING, 128, True),
    "tiny": ((10, 10, 10, 10), 40, TRAINING, 4, False),
    "slow": ((10, 10, 10, 10), 30, {"local_epochs": 1, "client_lr": 0.1}, 128, False),
}


@dataclass(frozen=True)
class TaskBalancedHeads(TaskHeads):
    """Multi-task heads whose body gives every task the same total weight.

    The engine averages each weight as Σ m_k n_k Δ_k / Σ m_k n_k over the clients' share masks
    m_k; scaling client k's body mask by 1 / N_task(k) (its task's examples) makes every task's
    clients together count the same. (The engine's byte count then reads the scaled masks: only
    the accuracies of this script are meaningful.)
    """

    def share_masks(self, weights, data, split):
        masks = super().share_masks(weights, data, split)
        groups = split.client_groups
        totals = np.array([split.sizes[groups == t].sum() for t in range(groups.max() + 1)])
        scale = (1.0 / totals[groups]).astype(np.float32)
        first_head = len(weights) - self.head_weights
        for j in range(first_head):
            masks[j] = masks[j] * scale.reshape(-1, *[1] * np.ndim(weights[j]))
        return masks


def TaskBalanced(**settings) -> Algorithm:  # noqa: N802 - reads like the algorithm's name
    """Multi-task FedAvg with :class:`TaskBalancedHeads` as its personalisation slot."""
    return Algorithm(
        **settings,
        name="multi-task FedAvg (task-balanced)",
        personalization=TaskBalancedHeads(2),
    )


_MODELS: dict[int, object] = {}


def model_of(hidden: int):
    """One hashable model function per hidden size (so runs share their compiled kernel)."""
    if hidden == 128:
        return model_fn("mlp", 16)
    if hidden not in _MODELS:

        def make(hidden=hidden):
            return FedModel(num_classes=16, hidden_units=hidden)

        _MODELS[hidden] = make
    return _MODELS[hidden]


def measure(setting: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-task accuracy of one FedAvg per task and of the shared body, for one seed."""
    counts, rounds, training, hidden, balanced = SETTINGS[setting]
    digits = load_digits()
    joint, split = multitask_digits(digits, NUM_CLIENTS, seed=seed)
    model = model_of(hidden)

    def train(algorithm, clients):
        sim = Simulation(algorithm, model, joint, split.subset(clients), seed=seed)
        sim.run(rounds, progress=False)
        return task_accuracy(sim.global_model(), joint)

    def first(task_counts):
        mine = [np.flatnonzero(split.client_groups == t)[:c] for t, c in enumerate(task_counts)]
        return np.sort(np.concatenate(mine))

    tasks = np.arange(len(counts))
    separate = np.array([train(FedAvg(**training), first(counts * (tasks == t)))[t] for t in tasks])
    shared_algorithm = TaskBalanced(**training) if balanced else MultiTaskFedAvg(**training)
    shared = train(shared_algorithm, first(counts))
    return separate, shared


def spread(values: np.ndarray, sign: str = "") -> str:
    """Each column's mean ± standard deviation over seeds (rows)."""
    means, stds = values.mean(0), values.std(0)
    return " ".join(f"{m:{sign}.3f}±{s:.3f}" for m, s in zip(means, stds, strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0 .. N-1 (default 5)")
    parser.add_argument("--settings", nargs="*", default=list(SETTINGS), choices=list(SETTINGS))
    args = parser.parse_args()
    names = list(TASKS)
    print(f"tasks: {' '.join(names)} + mean over tasks; mean ± std over {args.seeds} seeds")
    for setting in args.settings:
        start = time.perf_counter()
        runs = [measure(setting, seed) for seed in range(args.seeds)]
        separate = np.array([r[0] for r in runs])
        shared = np.array([r[1] for r in runs])
        with_mean = [np.column_stack([a, a.mean(1)]) for a in (separate, shared, shared - separate)]
        counts, rounds, training, hidden, balanced = SETTINGS[setting]
        print(
            f"\n{setting}: clients per task {list(counts)}, {rounds} rounds, {training}, "
            f"{hidden} hidden units{', task-balanced body' if balanced else ''} "
            f"({time.perf_counter() - start:.0f} s)"
        )
        labels = ("separate", "shared", "shared − separate")
        for label, values, sign in zip(labels, with_mean, ("", "", "+"), strict=True):
            print(f"  {label:<18} {spread(values, sign)}")


if __name__ == "__main__":
    main()
