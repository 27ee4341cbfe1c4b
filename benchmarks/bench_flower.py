"""The same FedAvg run in fedlab's engine and on Flower's deployment runtime, timed.

    .venv/bin/python benchmarks/bench_flower.py             # 3 clients, 5 rounds, both task modes
    .venv/bin/python benchmarks/bench_flower.py --quick     # 3 rounds, forked task processes only

Three ways to run ``FlowerConfig(num_clients=3, num_rounds=R)`` (FedAvg on digits):

* ``engine``: :meth:`FlowerConfig.simulate` — every client in this process, one compiled round;
* ``flower fork``: :class:`fedlab.flower.LocalFederation` with SuperLink and SuperNodes as
  processes on 127.0.0.1, each task process forked by :mod:`fedlab.flower.executor`;
* ``flower spawn``: the same with Flower's own process model (a fresh Python per message,
  SuperNodes polling every 3 s);
* ``flower sim``: Flower's *simulation* runtime (:func:`fedlab.flower.simulation.
  run_simulation_runtime`: the ServerApp and ClientApps in one Ray session on this machine).

Prints each one's start-up, run time and median round, the ratios to the engine's median round,
and whether the histories agree (test loss within 1e-5). Exits 0: this reports, it is not a test.
``--quick`` runs the engine and ``flower fork`` only.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

import fedlab  # noqa: F401 - first: quiets TensorFlow's start-up lines
from fedlab.flower import FlowerConfig, LocalFederation
from fedlab.flower.simulation import run_simulation_runtime


def _time_flower(config: FlowerConfig, task_processes: str) -> dict:
    start = time.perf_counter()
    with LocalFederation(
        config.num_clients, task_processes=task_processes, fast_polling=task_processes == "fork"
    ) as federation:
        started = time.perf_counter()
        history = federation.run(config)
        finished = time.perf_counter()
    return {
        "start_s": started - start,
        "run_s": finished - started,
        "stop_s": time.perf_counter() - finished,
        "round_s": float(np.median(history.wall_time)),
        "history": history,
    }


def _time_simulation_runtime(config: FlowerConfig) -> dict:
    start = time.perf_counter()
    history = run_simulation_runtime(config)
    return {
        "start_s": 0.0,  # Ray's start is inside the run
        "run_s": time.perf_counter() - start,
        "stop_s": 0.0,
        "round_s": float(np.median(history.wall_time)),
        "history": history,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds, forked task processes")
    parser.add_argument("--rounds", type=int, default=None, help="rounds per run")
    args = parser.parse_args(argv)
    rounds = args.rounds or (3 if args.quick else 5)
    config = FlowerConfig(num_clients=3, num_rounds=rounds, seed=0)
    print(
        f"FedAvg, digits, 3 clients, {rounds} rounds; {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}"
    )

    start = time.perf_counter()
    reference = config.simulate()
    engine = {
        "run_s": time.perf_counter() - start,
        "round_s": float(np.median(reference.wall_time)),
    }
    print(
        f"{'engine':13} run {engine['run_s']:6.1f} s   median round {engine['round_s'] * 1000:8.1f} ms"
    )

    for mode in ("fork",) if args.quick else ("fork", "spawn", "sim"):
        result = _time_simulation_runtime(config) if mode == "sim" else _time_flower(config, mode)
        gap = np.max(np.abs(np.array(result["history"].test_loss) - reference.test_loss))
        print(
            f"{'flower ' + mode:13} start {result['start_s']:5.1f} s   run {result['run_s']:6.1f} s   "
            f"median round {result['round_s']:6.2f} s = {result['round_s'] / engine['round_s']:6.0f}x "
            f"the engine's   stop {result['stop_s']:4.1f} s   same history: {bool(gap < 1e-5)}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
