"""What does a robust aggregator cost the server? The aggregation step alone, per round.

    python3 dev.py bench robust               # or: .venv/bin/python benchmarks/bench_robust.py
    .venv/bin/python benchmarks/bench_robust.py --repeats 9 --sizes 25 50 100 200 400 800

Workload: 100 clients' updates (float32, N(0, 0.01²) per coordinate, the last 10 shifted by +1:
a crude attack, so that the selecting defences have something to reject), stacked one
``[K, ...]`` array per weight, in the weight shapes of two models:

* the digits MLP, ``fedlab.models.model_fn("mlp", 10)``: 9,610 parameters in 4 arrays;
* the tiny transformer of the keyboard data, ``tiny_transformer(len(VOCAB), 16)``: 129,242
  parameters in 38 arrays.

Each defence's ``apply`` is timed on the same updates (the fastest of ``--repeats`` calls after
one warm-up call: other processes on a shared machine only ever slow a call down) against
:class:`fedlab.aggregators.WeightedMean` (what FedAvg runs), all in this one process, and
reported as milliseconds per round and as a ratio to the mean. FLTrust's time includes the
server's own training on its root data (100 digits images for the MLP, 16 keyboard sentences
for the transformer; one full-batch epoch).

Then Krum's time at K = 25, 50, 100, 200 clients (f = K/10) on both shapes, the whole ``apply``
and its pairwise distances alone, with the exponent of a log-log fit and of the last doubling.
The distances are one ``[K, d] @ [d, K]`` product, O(K²·d), beside O(K·d) work (flattening, the
norms); and BLAS does more flops per second as K grows, so at these sizes the measured
exponent is below 2 (it nears 2 at the larger K: try ``--sizes 25 50 100 200 400 800``).

It is a report, not a test: it exits 0 whatever it measures, and CI does not run it. About
20 s on 2 cores.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import fedlab  # noqa: F401  (first: quietens TensorFlow's start-up)
from fedlab.aggregators import ClientUpdates, WeightedMean
from fedlab.data import load_digits
from fedlab.keyboard import PAD, VOCAB, keyboard
from fedlab.models import build_model, model_fn, tiny_transformer
from fedlab.robust import (
    Bulyan,
    CoordinateMedian,
    FLTrust,
    GeometricMedian,
    Krum,
    NormClipping,
    TrimmedMean,
    flatten_updates,
    pairwise_distances,
)

NUM_CLIENTS = 100
NUM_BYZANTINE = 10
SEQ_LEN = 16
KRUM_SIZES = (25, 50, 100, 200)


def keyboard_transformer():
    """The tiny transformer on the keyboard vocabulary (a named function)."""
    return tiny_transformer(len(VOCAB), SEQ_LEN)


def weights_of(make, sample_x) -> list[np.ndarray]:
    """A model's initial trainable weights."""
    return [v.numpy() for v in build_model(make, sample_x, seed=0).trainable_variables]


def received(weights, num_clients: int, seed: int = 0) -> ClientUpdates:
    """``num_clients`` updates in ``weights``' shapes, the last tenth shifted by +1."""
    rng = np.random.default_rng(seed)
    bad = num_clients // 10
    updates = []
    for w in weights:
        u = rng.normal(0.0, 0.01, size=(num_clients, *w.shape)).astype(np.float32)
        u[num_clients - bad :] += 1.0
        updates.append(u)
    counts = rng.integers(10, 60, size=num_clients)
    return ClientUpdates(updates, counts, global_weights=weights)


def time_apply(aggregator, updates: ClientUpdates, repeats: int) -> float:
    """The fastest of ``repeats`` timed calls of ``aggregator.apply`` on ``updates``, after one
    warm-up call (the fastest: other processes on the machine only ever slow a call down)."""
    aggregator.apply(aggregator.init([]), updates, np.random.default_rng(0))
    times = []
    for r in range(repeats):
        start = time.perf_counter()
        aggregator.apply({}, updates, np.random.default_rng(r))
        times.append(time.perf_counter() - start)
    return min(times)


def time_call(call, repeats: int) -> float:
    """The fastest of ``repeats`` timed calls of ``call()``, after one warm-up call."""
    call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return min(times)


def exponent(sizes, times) -> float:
    """The slope of log(time) against log(K)."""
    return float(np.polyfit(np.log(sizes), np.log(times), 1)[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--repeats", type=int, default=5, help="timed calls per defence (the fastest counts)"
    )
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=list(KRUM_SIZES), help="Krum's K values"
    )
    args = parser.parse_args()
    started = time.perf_counter()

    digits = load_digits()
    text = keyboard(num_clients=2, sentences_per_client=10, public_sentences=16, seed=0)
    mlp = model_fn("mlp", 10)
    models = {
        "digits MLP": (
            weights_of(mlp, digits.x_train[:2]),
            FLTrust(digits.x_train[-100:], digits.y_train[-100:], mlp),
        ),
        "tiny transformer": (
            weights_of(keyboard_transformer, text.x_public[:2]),
            FLTrust(text.x_public, text.y_public, keyboard_transformer, ignore_class=PAD),
        ),
    }
    f = NUM_BYZANTINE
    defences = {
        "WeightedMean (FedAvg)": lambda fltrust: WeightedMean(),
        "CoordinateMedian": lambda fltrust: CoordinateMedian(),
        "TrimmedMean(0.1)": lambda fltrust: TrimmedMean(0.1),
        f"Krum({f})": lambda fltrust: Krum(f),
        f"Multi-Krum({f}, m=50)": lambda fltrust: Krum(f, num_selected=50),
        f"Bulyan({f})": lambda fltrust: Bulyan(f),
        "NormClipping(1.0)": lambda fltrust: NormClipping(1.0),
        "GeometricMedian": lambda fltrust: GeometricMedian(),
        "FLTrust (incl. root training)": lambda fltrust: fltrust,
    }
    print(
        f"aggregation step alone, {NUM_CLIENTS} clients ({NUM_CLIENTS // 10} shifted), best of "
        f"{args.repeats} calls; ratio = time / WeightedMean's, same run"
    )
    results = {}
    for name, (weights, fltrust) in models.items():
        updates = received(weights, NUM_CLIENTS)
        d = sum(w.size for w in weights)
        results[name] = (d, {label: time_apply(make(fltrust), updates, args.repeats)
                             for label, make in defences.items()})  # fmt: skip
    names = list(models)
    header = f"{'defence':<31}" + "".join(f"{f'{n} (d={results[n][0]:,})':>34}" for n in names)
    print(header)
    for label in defences:
        row = f"{label:<31}"
        for n in names:
            seconds = results[n][1][label]
            mean = results[n][1]["WeightedMean (FedAvg)"]
            row += f"{seconds * 1e3:>20.2f} ms  {seconds / mean:>8.1f}×"
        print(row)

    print(
        f"\nKrum(f = K/10) at K = {', '.join(map(str, args.sizes))} (best of {args.repeats}): "
        "the whole apply, and its pairwise distances alone (on the flattened updates)"
    )
    for name, (weights, _) in models.items():
        whole, distances = [], []
        for k in args.sizes:
            updates = received(weights, k, seed=k)
            whole.append(time_apply(Krum(k // 10), updates, args.repeats))
            flat = flatten_updates(updates.updates)
            distances.append(time_call(lambda flat=flat: pairwise_distances(flat), args.repeats))
        for label, times in (("Krum.apply", whole), ("distances", distances)):
            cells = "  ".join(
                f"K={k}: {t * 1e3:.1f} ms" for k, t in zip(args.sizes, times, strict=True)
            )
            slope = exponent(args.sizes, times)
            last = exponent(args.sizes[-2:], times[-2:])
            print(
                f"  {name:<17} {label:<11} {cells}   time ~ K^{slope:.2f} (fit), "
                f"K^{last:.2f} (last step)"
            )
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
