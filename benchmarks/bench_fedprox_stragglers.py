"""The FedProx paper's stragglers experiment on Synthetic(α, β): drop the stragglers, or keep their partial work?

    .venv/bin/python benchmarks/bench_fedprox_stragglers.py            # the paper's 200 rounds
    .venv/bin/python benchmarks/bench_fedprox_stragglers.py --quick    # 10 rounds: a smoke run

Li et al. 2020 (MLSys), Sec. 5.2 and Fig. 1, synthetic data: Synthetic(α, β) (default α = β = 1;
``--iid``: the paper's Synthetic IID, every device alike) with its natural split into 30 devices,
multinomial logistic regression, 10 devices per round, E = 20 local epochs, B = 10, learning
rate 0.01. Each round 0 %, 50 % or 90 % of the selected devices are stragglers
(:mod:`fedlab.stragglers`: a straggler runs a random 1..E−1 epochs).
Three ways to deal with them, all from the same initial weights and with the same stragglers:

* ``FedAvg, drop``: the server does not wait; stragglers are left out (the paper's FedAvg);
* ``FedProx μ=0, keep``: their partial work is aggregated, no proximal term;
* ``FedProx μ=1, keep``: partial work plus the proximal term μ/2‖w − w_t‖².

The paper's finding: with many stragglers, keeping partial work beats dropping it, and μ > 0
makes training more stable on the heterogeneous data. Prints, per setting, the final global
model's training loss (over all devices' training data), test accuracy and gradient dissimilarity
(:func:`fedlab.metrics.gradient_dissimilarity`). Exits 0: this reports, it is not a test.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass

import numpy as np

import fedlab  # first: quiets TensorFlow's start-up lines and sets its thread count
from fedlab import steps
from fedlab.algorithms import FedAvg, FedProx
from fedlab.data import synthetic
from fedlab.engine import STRATEGIES, DivergenceError, Simulation
from fedlab.models import logistic_regression
from fedlab.partition import natural
from fedlab.stragglers import Stragglers

NUM_DEVICES = 30
CLIENTS_PER_ROUND = 10
LOCAL_EPOCHS = 20
BATCH_SIZE = 10
CLIENT_LR = 0.01
FULL_ROUNDS = 200  # as in the paper
QUICK_ROUNDS = 10
FRACTIONS = (0.0, 0.5, 0.9)


@dataclass(frozen=True)
class Result:
    """One setting after its last round.

    Attributes:
        fraction: share of each round's selected devices that straggle.
        method: which algorithm and what happens to stragglers.
        rounds: rounds completed (fewer if it diverged).
        train_loss: the global model's mean loss over every device's training data.
        test_accuracy: the global model's accuracy on the pooled test data.
        dissimilarity: gradient dissimilarity at the final global model.
        seconds: wall time of the run (tracing included).
    """

    fraction: float
    method: str
    rounds: int
    train_loss: float
    test_accuracy: float
    dissimilarity: float
    seconds: float


def methods() -> list[tuple[str, object, bool]]:
    """(name, algorithm, drop stragglers?) for the three ways of the paper's Fig. 1."""
    settings = {"local_epochs": LOCAL_EPOCHS, "batch_size": BATCH_SIZE, "client_lr": CLIENT_LR}
    return [
        ("FedAvg, drop", FedAvg(**settings), True),
        ("FedProx mu=0, keep", FedProx(mu=0.0, **settings), False),
        ("FedProx mu=1, keep", FedProx(mu=1.0, **settings), False),
    ]


def run(data, split, algorithm, stragglers, num_rounds, seed, strategy, evaluator) -> tuple:
    """Run one setting; return (rounds done, train loss, test accuracy, dissimilarity)."""
    sim = Simulation(
        algorithm,
        lambda: logistic_regression(data.num_classes),
        data,
        split,
        clients_per_round=CLIENTS_PER_ROUND,
        seed=seed,
        strategy=strategy,
        evaluate_every=num_rounds,
        stragglers=stragglers,
    )
    try:
        sim.run(num_rounds, progress=False)
    except DivergenceError as error:
        print(f"    diverged in round {error.round}", flush=True)
        nan = float("nan")
        return error.round - 1, nan, nan, nan
    train_loss, _ = steps.evaluate(evaluator, sim.weights, data.x_train, data.y_train)
    _, accuracy = sim.evaluate()
    return sim.round, train_loss, accuracy, sim.gradient_dissimilarity()


def report(results: list[Result]) -> None:
    """Print one row per setting, grouped by straggler fraction."""
    print()
    print(f"{'stragglers':>10}  {'method':<20}{'rounds':>7}  {'train loss':>10}  ", end="")
    print(f"{'test acc':>8}  {'dissimilarity':>13}  {'s':>6}")
    for r in results:
        print(
            f"{r.fraction:>9.0%}  {r.method:<20}{r.rounds:>7}  {r.train_loss:>10.4f}  "
            f"{r.test_accuracy:>8.4f}  {r.dissimilarity:>13.4f}  {r.seconds:>6.1f}"
        )
    print()
    for fraction in FRACTIONS:
        rows = {r.method: r for r in results if r.fraction == fraction}
        best = min(rows.values(), key=lambda r: np.nan_to_num(r.train_loss, nan=np.inf))
        print(f"{fraction:>4.0%} stragglers: lowest training loss with {best.method}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_ROUNDS} rounds: a smoke run")
    parser.add_argument("--rounds", type=int, help=f"rounds per setting (default {FULL_ROUNDS})")
    parser.add_argument("--alpha", type=float, default=1.0, help="Synthetic(α, β)'s α")
    parser.add_argument("--beta", type=float, default=1.0, help="Synthetic(α, β)'s β")
    parser.add_argument(
        "--iid", action="store_true", help="Synthetic IID: one model for all devices (α, β unused)"
    )
    parser.add_argument("--seed", type=int, default=0, help="data, initial weights, sampling")
    parser.add_argument("--strategy", choices=STRATEGIES, default="vectorized")
    args = parser.parse_args(argv)
    num_rounds = args.rounds or (QUICK_ROUNDS if args.quick else FULL_ROUNDS)

    import tensorflow as tf

    data = synthetic(args.alpha, args.beta, num_clients=NUM_DEVICES, iid=args.iid, seed=args.seed)
    split = natural(data.client_ids, data.y_train, data.num_classes)
    print(
        f"fedlab {fedlab.__version__} · TensorFlow {tf.__version__} · {os.cpu_count()} CPUs · "
        f"{data.name}: {split.num_clients} devices, {data.num_train} train / {data.num_test} test "
        f"(device sizes {split.sizes.min()}..{split.sizes.max()}) · logistic regression · "
        f"{CLIENTS_PER_ROUND} devices/round · E={LOCAL_EPOCHS} B={BATCH_SIZE} "
        f"lr={CLIENT_LR} · {num_rounds} rounds · {args.strategy}",
        flush=True,
    )
    evaluator, _ = steps.initialize(
        lambda: logistic_regression(data.num_classes), data.x_train, args.seed
    )
    results = []
    for fraction in FRACTIONS:
        for name, algorithm, drop in methods():
            start = time.perf_counter()
            rounds, loss, accuracy, dissimilarity = run(
                data,
                split,
                algorithm,
                Stragglers(fraction, drop=drop),
                num_rounds,
                args.seed,
                args.strategy,
                evaluator,
            )
            seconds = time.perf_counter() - start
            results.append(Result(fraction, name, rounds, loss, accuracy, dissimilarity, seconds))
            print(f"  {fraction:.0%} stragglers, {name}: done in {seconds:.1f} s", flush=True)
    report(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
