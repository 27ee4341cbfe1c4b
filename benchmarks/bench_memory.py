"""Do simulations from fresh lambdas hold on to memory? (issue 18)

    python3 dev.py bench memory            # 30 runs each; about a minute or two
    python3 dev.py bench memory --runs 10

The README teaches ``fedlab.simulate(algorithm, lambda: FedModel(10), ...)``: a new lambda every
call. The engine caches its compiled kernels by model function; a lambda that is gone can never
be passed again, so its kernel must not be kept (fedlab.engine._kernel drops it when the lambda is
garbage-collected). This measures the process's resident memory (RSS, from /proc) after
``--runs`` simulations from one named ``model_fn``, then after as many from fresh lambdas, and the
number of kernels cached; then as many runs of the named function with the cache emptied before
each, so that each traces anew: what a trace costs TensorFlow itself, which no cache policy can
save. Before the fix, 30 fresh lambdas added 240–350 MiB and 30 kernels.
Exits 0 always: it reports, it is not a test (tests/test_engine_safety.py checks the cache).
"""

from __future__ import annotations

import argparse
import gc
from pathlib import Path

import fedlab  # first: quiets TensorFlow's start-up lines
from fedlab import engine
from fedlab.algorithms import FedAvg
from fedlab.models import FedModel
from fedlab.partition import iid


def rss_mib() -> float:
    """Resident memory of this process in MiB (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def named_model() -> FedModel:
    return FedModel(10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    digits = fedlab.data.load_digits(seed=0)
    split = iid(digits.y_train, 10, seed=0)

    def run(model_fn) -> None:
        fedlab.simulate(FedAvg(), model_fn, digits, split, num_rounds=1, progress=False)

    run(named_model)  # warm-up: TensorFlow's own first-use allocations
    gc.collect()
    start = rss_mib()
    for _ in range(args.runs):
        run(named_model)
    gc.collect()
    named = rss_mib()
    for _ in range(args.runs):
        run(lambda: FedModel(10))  # noqa: E731 - the pattern under test
    gc.collect()
    run(named_model)  # the next simulation drops the dead lambdas' kernels
    gc.collect()
    fresh = rss_mib()
    print(
        f"{args.runs} runs from one named model_fn: RSS {start:.0f} -> {named:.0f} MiB "
        f"(+{named - start:.1f})"
    )
    print(
        f"{args.runs} runs from fresh lambdas:      RSS {named:.0f} -> {fresh:.0f} MiB "
        f"(+{fresh - named:.1f})"
    )
    print(f"kernels cached: {len(engine._KERNELS)}")
    for _ in range(args.runs):  # what any new trace costs TensorFlow, cache or not
        engine._KERNELS.clear()
        run(named_model)
    gc.collect()
    retraced = rss_mib()
    print(
        f"{args.runs} retraces of the named model_fn: RSS {fresh:.0f} -> {retraced:.0f} MiB "
        f"(+{retraced - fresh:.1f}; TensorFlow's own memory per trace)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
