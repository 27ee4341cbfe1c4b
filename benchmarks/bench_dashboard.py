"""Is the live Dashboard live? One round of its default setting plus the redraw, against 100 ms.

    python3 dev.py bench dashboard               # or: .venv/bin/python benchmarks/bench_dashboard.py
    python3 dev.py bench dashboard --quick       # fewer rounds
    python3 dev.py bench dashboard --json d.json # also write the numbers

Workload: ``Dashboard()`` with no arguments, exactly what a teacher gets by pressing Run: digits,
10 iid clients, all 10 each round, FedAvg E=1 B=20 client_lr 0.1, the MLP. One warm-up Step
(building the simulation, tracing) is excluded; then Steps are timed, each split into the round
(the engine's own ``wall_time``, which includes its test evaluation) and the redraw (render the
four panels to PNG and hand it to the image widget; a redraw that finds an axis range or a legend
changed renders the whole figure, the rest reuse a cached background, so p90 is much higher than
the median). Then a background Run of as many more rounds is timed end to end (rounds per second
while the kernel stays free), and the number of
open pyplot figures is checked (the Dashboard must not leak any). Exits 0 always: it reports.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

import fedlab  # first: quiets TensorFlow's start-up lines
from fedlab.ui.dashboard import Dashboard

BUDGET_MS = 100.0  # the "well under 100 ms" for one round plus its redraw


def measure(num_rounds: int) -> dict:
    """Median and 90th-percentile milliseconds of round, redraw and Step; Run throughput."""
    import matplotlib.pyplot as plt

    dash = Dashboard(num_rounds=num_rounds)
    start = time.perf_counter()
    dash.step()  # builds the simulation and traces its round function
    warm_up = time.perf_counter() - start
    rounds, draws, steps = [], [], []
    for _ in range(num_rounds):
        start = time.perf_counter()
        record = dash.step()
        steps.append(time.perf_counter() - start)
        rounds.append(record.wall_time)
        draws.append(dash.draw_seconds)
    start = time.perf_counter()
    dash.run(num_rounds=num_rounds, block=True)  # as many more rounds, in the background thread
    run_seconds = time.perf_counter() - start

    def stats(seconds: list[float]) -> dict:
        ms = 1000 * np.asarray(seconds)
        return {"median_ms": float(np.median(ms)), "p90_ms": float(np.percentile(ms, 90))}

    return {
        "settings": dash.settings(),
        "warm_up_s": warm_up,
        "round": stats(rounds),
        "redraw": stats(draws),
        "step": stats(steps),
        "run_rounds_per_s": num_rounds / run_seconds,
        "open_pyplot_figures": len(plt.get_fignums()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10 rounds instead of 40")
    parser.add_argument("--json", metavar="PATH", help="also write the numbers to this JSON file")
    args = parser.parse_args(argv)
    num_rounds = 10 if args.quick else 40
    print(f"fedlab {fedlab.__version__} · Dashboard() defaults · {num_rounds} rounds", flush=True)
    result = measure(num_rounds)
    print(f"  warm-up step (build + trace): {result['warm_up_s']:.2f} s")
    for part in ("round", "redraw", "step"):
        s = result[part]
        print(f"  {part:<7} median {s['median_ms']:6.1f} ms   p90 {s['p90_ms']:6.1f} ms")
    ratio = result["step"]["median_ms"] / BUDGET_MS
    result["step_over_budget"] = ratio
    print(f"  Run in the background thread: {result['run_rounds_per_s']:.1f} rounds/s")
    print(
        f"{'PASS' if ratio < 1 else 'MISS'}  round + redraw = {ratio:.2f} × the {BUDGET_MS:g} ms "
        f"budget (median Step)"
    )
    leaks = result["open_pyplot_figures"]
    print(f"{'PASS' if leaks == 0 else 'MISS'}  open pyplot figures after the runs: {leaks}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as file:
            json.dump(result, file, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
