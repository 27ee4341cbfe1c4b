"""How much faster is fedlab's engine than the straightforward Keras loop, and does it learn the same?

    python3 dev.py bench                       # or: .venv/bin/python benchmarks/bench_engine.py
    python3 dev.py bench --quick               # a smoke run, about a minute
    python3 dev.py bench --json bench.json     # also write the numbers

Workload (the FedAvg paper's setting, on scikit-learn's digits): ``FedModel(10)`` (Dense 128 relu ->
10 logits), an iid split into 10 and 100 clients, B=20, E=1, client_lr 0.1, every client in every
round. Three ways to run a round:

* ``engine vectorized`` / ``engine loop``: :class:`fedlab.engine.Simulation` with each strategy
  (its rounds include the engine's per-round test evaluation);
* ``keras fit loop``: the loop most tutorials write: one compiled Keras model; per client
  ``set_weights(global)``, ``fit(x_k, y_k, batch_size=20, epochs=1, shuffle=True)``,
  ``get_weights()``; then the example-weighted mean. Same initial weights as the engine.

Speed: one warm-up round (tracing) is run and excluded, then rounds are timed. Accuracy: both run the
same number of rounds from the same initial weights, and the final global model is evaluated on the
test set with one evaluator. The two differ only in batch order (Keras shuffles its own way), so
accuracy should agree within noise. Exits 0 always: this reports, it is not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, dataclass

import numpy as np

import fedlab  # first: quiets TensorFlow's start-up lines and sets its thread count
from fedlab.algorithms import FedAvg
from fedlab.engine import STRATEGIES, Simulation
from fedlab.models import FedModel
from fedlab.partition import iid

BATCH_SIZE = 20
LOCAL_EPOCHS = 1
CLIENT_LR = 0.1
SEED = 0
SPEEDUP_TARGET = 100.0  # engine rounds/s over the Keras loop's, at 100 clients
ACCURACY_TARGET = 2.0  # points of test accuracy


@dataclass(frozen=True)
class Plan:
    """Rounds to run at one number of clients.

    Attributes:
        num_clients: clients in the iid split (all take part every round).
        engine_rounds: engine rounds timed after the warm-up round.
        loop_rounds: Keras-loop rounds timed after the warm-up round.
        accuracy_rounds: rounds (warm-up included) after which both are evaluated.
    """

    num_clients: int
    engine_rounds: int
    loop_rounds: int
    accuracy_rounds: int


FULL = (Plan(10, 30, 5, 20), Plan(100, 30, 3, 10))
QUICK = (Plan(10, 5, 1, 3), Plan(100, 5, 1, 2))


@dataclass(frozen=True)
class Result:
    """One method at one number of clients.

    Attributes:
        num_clients: clients per round.
        method: ``engine vectorized``, ``engine loop`` or ``keras fit loop``.
        rounds_per_s: timed rounds per second (warm-up excluded).
        timed_rounds: how many rounds were timed.
        first_round_s: seconds of the warm-up round (tracing and compiling).
        accuracy_round: the round after which ``accuracy`` was measured.
        accuracy: test accuracy of the global model after ``accuracy_round`` rounds.
    """

    num_clients: int
    method: str
    rounds_per_s: float
    timed_rounds: int
    first_round_s: float
    accuracy_round: int
    accuracy: float


def make_model(data) -> object:
    """The Keras model both methods train, compiled as the tutorials do."""
    import keras  # after fedlab, so TensorFlow starts quietly

    model = FedModel(data.num_classes)
    model(data.x_train[:1])
    model.compile(
        optimizer=keras.optimizers.SGD(CLIENT_LR),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def evaluate_accuracy(model, weights: list[np.ndarray], data) -> float:
    """Accuracy of ``weights`` on the test set (one evaluator for every method)."""
    model.set_weights(weights)
    logits = np.asarray(model(data.x_test, training=False))
    return float(np.mean(np.argmax(logits, axis=1) == data.y_test))


def time_engine(
    data,
    num_clients: int,
    strategy: str,
    timed_rounds: int,
    accuracy_round: int | None = None,
    evaluator=None,
) -> tuple[Result, list[np.ndarray]]:
    """Time ``timed_rounds`` engine rounds after a warm-up round; return the result and initial weights.

    ``accuracy`` is measured after round ``accuracy_round`` (default: the last round run); the
    engine runs ``max(1 + timed_rounds, accuracy_round)`` rounds in all.
    """
    split = iid(data.y_train, num_clients, seed=SEED)
    algorithm = FedAvg(local_epochs=LOCAL_EPOCHS, batch_size=BATCH_SIZE, client_lr=CLIENT_LR)
    sim = Simulation(
        algorithm, lambda: FedModel(data.num_classes), data, split, seed=SEED, strategy=strategy
    )
    initial = [w.copy() for w in sim.weights]
    accuracy_round = accuracy_round or 1 + timed_rounds
    kept: dict[int, list[np.ndarray]] = {}

    def keep(record, history):
        if record.round == accuracy_round:
            kept[record.round] = sim.weights

    start = time.perf_counter()
    sim.run(1, callbacks=[keep], progress=False)
    first = time.perf_counter() - start
    start = time.perf_counter()
    sim.run(timed_rounds, callbacks=[keep], progress=False)
    seconds = time.perf_counter() - start
    if accuracy_round > sim.round:
        sim.run(accuracy_round - sim.round, callbacks=[keep], progress=False)
    evaluator = evaluator or make_model(data)
    result = Result(
        num_clients=num_clients,
        method=f"engine {strategy}",
        rounds_per_s=timed_rounds / seconds,
        timed_rounds=timed_rounds,
        first_round_s=first,
        accuracy_round=accuracy_round,
        accuracy=evaluate_accuracy(evaluator, kept[accuracy_round], data),
    )
    return result, initial


def keras_loop_round(model, global_weights, data, split) -> list[np.ndarray]:
    """One FedAvg round the straightforward way: fit each client in turn, then average."""
    client_weights, sizes = [], []
    for indices in split.client_indices:
        model.set_weights(global_weights)
        model.fit(
            data.x_train[indices],
            data.y_train[indices],
            batch_size=BATCH_SIZE,
            epochs=LOCAL_EPOCHS,
            verbose=0,
            shuffle=True,
        )
        client_weights.append(model.get_weights())
        sizes.append(len(indices))
    share = np.asarray(sizes, np.float64) / sum(sizes)
    return [
        sum(s * w[i] for s, w in zip(share, client_weights, strict=True)).astype(np.float32)
        for i in range(len(global_weights))
    ]


def time_keras_loop(
    data, num_clients: int, initial: list[np.ndarray], timed_rounds: int, accuracy_round: int
) -> Result:
    """Time ``timed_rounds`` Keras-loop rounds after a warm-up round, run to ``accuracy_round``."""
    import keras

    keras.utils.set_random_seed(SEED)
    split = iid(data.y_train, num_clients, seed=SEED)
    model = make_model(data)
    weights = [w.copy() for w in initial]
    start = time.perf_counter()
    weights = keras_loop_round(model, weights, data, split)
    first = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(timed_rounds):
        weights = keras_loop_round(model, weights, data, split)
    seconds = time.perf_counter() - start
    for _ in range(accuracy_round - 1 - timed_rounds):
        weights = keras_loop_round(model, weights, data, split)
    return Result(
        num_clients=num_clients,
        method="keras fit loop",
        rounds_per_s=timed_rounds / seconds,
        timed_rounds=timed_rounds,
        first_round_s=first,
        accuracy_round=max(accuracy_round, 1 + timed_rounds),
        accuracy=evaluate_accuracy(model, weights, data),
    )


def report(results: list[Result], judge_accuracy: bool = True) -> dict:
    """Print the table, ratios and targets; return them as a JSON-friendly dict.

    ``judge_accuracy=False`` (``--quick``) prints SKIP for the accuracy target: after two or three
    rounds the learning curve is so steep that batch order alone moves accuracy by several points.
    """
    print(
        f"\n{'clients':>7}  {'method':<17} {'rounds/s':>9} {'s/round':>8} {'timed':>6} "
        f"{'1st round s':>11}  test accuracy (after round)"
    )
    for r in results:
        print(
            f"{r.num_clients:>7}  {r.method:<17} {r.rounds_per_s:>9.2f} {1 / r.rounds_per_s:>8.4f} "
            f"{r.timed_rounds:>6} {r.first_round_s:>11.2f}  {r.accuracy:.4f} ({r.accuracy_round})"
        )
    by = {(r.num_clients, r.method): r for r in results}
    speedups, differences = {}, {}
    print()
    for num_clients in sorted({r.num_clients for r in results}):
        loop = by[(num_clients, "keras fit loop")]
        for strategy in STRATEGIES:
            engine = by[(num_clients, f"engine {strategy}")]
            speedup = engine.rounds_per_s / loop.rounds_per_s
            difference = 100 * (engine.accuracy - loop.accuracy)
            speedups[f"{num_clients}/{strategy}"] = speedup
            differences[f"{num_clients}/{strategy}"] = difference
            print(
                f"{num_clients:>3} clients, engine {strategy:<10}: {speedup:7.1f}x the Keras loop's "
                f"rounds/s; accuracy {difference:+.2f} points"
            )
    print()
    largest = max(by)[0]
    targets = {}
    for strategy in STRATEGIES:
        speedup = speedups[f"{largest}/{strategy}"]
        ok = speedup >= SPEEDUP_TARGET
        targets[f"speedup {strategy}"] = ok
        print(
            f"{'PASS' if ok else 'MISS'}  engine ({strategy}) >= {SPEEDUP_TARGET:g}x the loop at "
            f"{largest} clients: {speedup:.0f}x"
        )
    worst = max(abs(d) for d in differences.values())
    ok = worst <= ACCURACY_TARGET if judge_accuracy else None
    targets["accuracy"] = ok
    print(
        f"{'SKIP' if ok is None else 'PASS' if ok else 'MISS'}  accuracy within {ACCURACY_TARGET:g} points of the loop: "
        f"largest difference {worst:.2f} points"
        + ("" if judge_accuracy else " (too few rounds in --quick to judge)")
    )
    return {"speedup": speedups, "accuracy_difference_points": differences, "targets": targets}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="few rounds: a smoke test")
    parser.add_argument("--json", metavar="PATH", help="also write the numbers to this JSON file")
    args = parser.parse_args(argv)

    import tensorflow as tf

    data = fedlab.load_digits(seed=SEED)
    threads = tf.config.threading.get_intra_op_parallelism_threads()
    print(
        f"fedlab {fedlab.__version__} · TensorFlow {tf.__version__} · {os.cpu_count()} CPUs · "
        f"{threads or 'default'} TF thread(s) · digits {data.num_train} train / {data.num_test} "
        f"test · FedModel({data.num_classes}) · iid · B={BATCH_SIZE} E={LOCAL_EPOCHS} "
        f"client_lr={CLIENT_LR} · all clients every round",
        flush=True,
    )
    evaluator = make_model(data)
    results = []
    for plan in QUICK if args.quick else FULL:
        initial = None
        for strategy in STRATEGIES:
            result, initial = time_engine(
                data,
                plan.num_clients,
                strategy,
                plan.engine_rounds,
                plan.accuracy_rounds,
                evaluator,
            )
            results.append(result)
            print(f"  {plan.num_clients} clients, {result.method}: done", flush=True)
        results.append(
            time_keras_loop(data, plan.num_clients, initial, plan.loop_rounds, plan.accuracy_rounds)
        )
        print(f"  {plan.num_clients} clients, keras fit loop: done", flush=True)
    summary = report(results, judge_accuracy=not args.quick)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(
                {
                    "results": [asdict(r) for r in results],
                    **summary,
                    "tensorflow": tf.__version__,
                    "cpus": os.cpu_count(),
                    "tf_threads": threads,
                    "quick": args.quick,
                },
                f,
                indent=1,
            )
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
