"""Rounds per second and peak memory of the engine vs. the Keras fit loop for the tiny transformer.

    python3 dev.py bench transformer           # or: .venv/bin/python benchmarks/bench_transformer.py
    .venv/bin/python benchmarks/bench_transformer.py --rounds 3 --clients 10

Workload: the keyboard data (``fedlab.keyboard.keyboard``, one client per user, natural split),
``fedlab.models.tiny_transformer(len(vocab), seq_len)`` trained in full and with LoRA adapters
(``fedlab.large_models.enable_lora(model, rank=4, targets=["q", "v"])``: only the adapters train),
FedAvg with E=1, B=16, every client in every round. Three ways to run a round:

* ``engine vectorized`` / ``engine loop``: :class:`fedlab.engine.Simulation` with each strategy
  (no test evaluation during the timed rounds: ``evaluate_every`` is past the last round);
* ``keras fit loop``: one compiled Keras model (``SGD(client_lr)``, a cross-entropy that ignores
  the padding token); per client ``set_weights(global)``, ``fit(x_k, y_k, batch_size=16,
  epochs=1, shuffle=True)``, ``get_weights()``; then the example-weighted mean. With LoRA only the
  trainable weights are set, collected and averaged; the frozen ones stay as they are.

Each (method, variant) runs in its own subprocess so that its peak RSS is its own; the figure
reported is the peak (``ru_maxrss``) minus the RSS after imports, data and one model build. The
first round (tracing, compiling) is timed separately; then ``--rounds`` rounds are timed one by one
and the median is reported. Exits 0 always: this reports, it is not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass

import numpy as np

SENTENCES_PER_CLIENT = 100  # 80 train / 20 test rows per user: 5 batches of 16 per epoch
BATCH_SIZE = 16
LOCAL_EPOCHS = 1
CLIENT_LR = 0.1
LORA_RANK = 4
LORA_TARGETS = ("q", "v")
SEED = 0
SEQ_LEN = 16  # fedlab.keyboard.keyboard's default
METHODS = ("engine vectorized", "engine loop", "keras fit loop")
VARIANTS = ("full", "lora")


def _rss_kib() -> int:
    """The resident set size now, in KiB (Linux ``/proc``; elsewhere the peak so far)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _peak_kib() -> int:
    """The peak resident set size of this process, in KiB (``ru_maxrss`` is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _vocab_and_seq_len() -> tuple[int, int]:
    """The model's input sizes: keyboard's fixed vocabulary and default sequence length."""
    from fedlab.keyboard import VOCAB

    return len(VOCAB), SEQ_LEN


def full_model():
    """The tiny transformer, every weight trainable (a named function: the engine caches by it)."""
    from fedlab.models import tiny_transformer

    return tiny_transformer(*_vocab_and_seq_len())


def lora_model():
    """The tiny transformer frozen, with rank-4 LoRA adapters on the query and value projections."""
    from fedlab.large_models import enable_lora

    return enable_lora(full_model(), rank=LORA_RANK, targets=list(LORA_TARGETS))


MODEL_FNS = {"full": full_model, "lora": lora_model}


@dataclass(frozen=True)
class Result:
    """One method on one variant, measured in its own process.

    Attributes:
        method: ``engine vectorized``, ``engine loop`` or ``keras fit loop``.
        variant: ``full`` or ``lora``.
        clients: clients per round.
        trainable: trainable parameters (what each client sends).
        first_round_s: seconds of the first round (tracing, compiling).
        round_s: median seconds of the timed rounds.
        rounds: how many rounds were timed.
        base_mb: RSS after imports, data and one model build (MB).
        peak_mb: peak RSS of the process (MB).
        final_loss: the last round's mean client training loss (a sanity check; nan if unknown).
    """

    method: str
    variant: str
    clients: int
    trainable: int
    first_round_s: float
    round_s: float
    rounds: int
    base_mb: float
    peak_mb: float
    final_loss: float

    @property
    def rounds_per_s(self) -> float:
        return 1.0 / self.round_s

    @property
    def extra_mb(self) -> float:
        return self.peak_mb - self.base_mb


def fit_loop_round(model, global_weights, data, split, lora: bool) -> tuple[list, float]:
    """One FedAvg round the straightforward way; return the new weights and mean client loss."""
    variables = model.trainable_weights if lora else model.weights
    client_weights, sizes, losses = [], [], []
    for indices in split.client_indices:
        for v, w in zip(variables, global_weights, strict=True):
            v.assign(w)
        history = model.fit(
            data.x_train[indices],
            data.y_train[indices],
            batch_size=BATCH_SIZE,
            epochs=LOCAL_EPOCHS,
            verbose=0,
            shuffle=True,
        )
        client_weights.append([v.numpy() for v in variables])
        sizes.append(len(indices))
        losses.append(history.history["loss"][-1])
    share = np.asarray(sizes, np.float64) / sum(sizes)
    new = [
        sum(s * w[i] for s, w in zip(share, client_weights, strict=True)).astype(np.float32)
        for i in range(len(global_weights))
    ]
    return new, float(np.average(losses, weights=sizes))


def measure(method: str, variant: str, clients: int, rounds: int) -> Result:
    """Run ``1 + rounds`` rounds of ``method`` on ``variant`` in this process and measure them."""
    import fedlab  # first: quiets TensorFlow's start-up lines and sets its thread count
    from fedlab.keyboard import keyboard
    from fedlab.models import build_model

    data = keyboard(num_clients=clients, sentences_per_client=SENTENCES_PER_CLIENT, seed=SEED)
    assert (len(data.vocab), data.seq_len) == _vocab_and_seq_len()
    split = data.split()
    model_fn = MODEL_FNS[variant]
    model = build_model(model_fn, data.x_train, SEED)
    trainable = int(sum(np.prod(v.shape) for v in model.trainable_weights))
    base = _rss_kib()

    times, loss = [], float("nan")
    if method.startswith("engine"):
        from fedlab.engine import Simulation

        del model
        algorithm = fedlab.FedAvg(
            client_lr=CLIENT_LR, local_epochs=LOCAL_EPOCHS, batch_size=BATCH_SIZE
        )
        sim = Simulation(
            algorithm,
            model_fn,
            data,
            split,
            clients_per_round=clients,
            seed=SEED,
            strategy=method.split()[1],
            evaluate_every=rounds + 2,  # no test evaluation: the fit loop does none either
        )
        for _ in range(1 + rounds):
            start = time.perf_counter()
            record = sim.step()
            times.append(time.perf_counter() - start)
        loss = float(getattr(record, "train_loss", float("nan")))
    else:
        import keras

        model.compile(
            optimizer=keras.optimizers.SGD(CLIENT_LR),
            loss=keras.losses.SparseCategoricalCrossentropy(
                from_logits=True, ignore_class=data.ignore_class
            ),
        )
        lora = variant == "lora"
        weights = [v.numpy() for v in (model.trainable_weights if lora else model.weights)]
        for _ in range(1 + rounds):
            start = time.perf_counter()
            weights, loss = fit_loop_round(model, weights, data, split, lora)
            times.append(time.perf_counter() - start)
    return Result(
        method=method,
        variant=variant,
        clients=clients,
        trainable=trainable,
        first_round_s=times[0],
        round_s=statistics.median(times[1:]),
        rounds=rounds,
        base_mb=base / 1024,
        peak_mb=_peak_kib() / 1024,
        final_loss=loss,
    )


def run_one(method: str, variant: str, clients: int, rounds: int) -> Result | str:
    """Measure one configuration in a fresh subprocess; its Result, or its error text."""
    command = [
        sys.executable,
        os.path.abspath(__file__),
        "--one",
        f"{method}/{variant}",
        "--clients",
        str(clients),
        "--rounds",
        str(rounds),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    for line in reversed(done.stdout.splitlines()):
        if line.startswith("RESULT "):
            return Result(**json.loads(line[len("RESULT ") :]))
    tail = (done.stderr or done.stdout).strip().splitlines()[-15:]
    return f"exit {done.returncode}: " + "\n    ".join(tail)


def report(results: dict[tuple[str, str], Result | str]) -> None:
    """Print a table per variant, the engine/fit-loop ratios and the faster engine strategy."""
    for variant in VARIANTS:
        rows = {m: results[(m, variant)] for m in METHODS if (m, variant) in results}
        if not rows:
            continue
        some = next((r for r in rows.values() if isinstance(r, Result)), None)
        trainable = f", {some.trainable:,} trainable weights" if some else ""
        print(f"\n{variant}{trainable}")
        print(
            f"  {'strategy':<18} {'1st round s':>11} {'s/round':>8} {'rounds/s':>9} "
            f"{'peak MB':>8} {'(base':>7} {'peak)':>7} {'loss':>7}"
        )
        for method, r in rows.items():
            if isinstance(r, str):
                print(f"  {method:<18} FAILED {r}")
                continue
            print(
                f"  {method:<18} {r.first_round_s:>11.2f} {r.round_s:>8.3f} {r.rounds_per_s:>9.2f} "
                f"{r.extra_mb:>8.0f} {r.base_mb:>7.0f} {r.peak_mb:>7.0f} {r.final_loss:>7.3f}"
            )
        loop = rows.get("keras fit loop")
        engines = {
            m: r for m, r in rows.items() if m.startswith("engine") and isinstance(r, Result)
        }
        if isinstance(loop, Result):
            for method, r in engines.items():
                memory = r.extra_mb / loop.extra_mb if loop.extra_mb > 0 else float("nan")
                print(
                    f"  {method} / fit loop: {r.rounds_per_s / loop.rounds_per_s:6.1f}x rounds/s, "
                    f"{memory:5.2f}x peak memory (above base)"
                )
        if len(engines) == 2:
            best = min(engines.values(), key=lambda r: r.round_s)
            other = max(engines.values(), key=lambda r: r.round_s)
            print(
                f"  faster engine strategy: {best.method.split()[1]} "
                f"({other.round_s / best.round_s:.2f}x {other.method.split()[1]}'s rounds/s)"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds timed after the first")
    parser.add_argument("--clients", type=int, default=20, help="keyboard users, all every round")
    parser.add_argument("--json", metavar="PATH", help="also write the numbers to this JSON file")
    parser.add_argument("--one", metavar="METHOD/VARIANT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.clients < 1:
        parser.error("--rounds and --clients must be at least 1")

    if args.one:  # the child: measure one configuration, print it as JSON
        method, variant = args.one.split("/")
        result = measure(method, variant, args.clients, args.rounds)
        print("RESULT " + json.dumps(asdict(result)), flush=True)
        return 0

    import fedlab  # first: quiets TensorFlow's start-up lines and sets its thread count

    # isort: split
    import tensorflow as tf

    threads = tf.config.threading.get_intra_op_parallelism_threads()
    print(
        f"fedlab {fedlab.__version__} · TensorFlow {tf.__version__} · {os.cpu_count()} CPUs · "
        f"{threads or 'default'} TF thread(s) · keyboard {args.clients} users x "
        f"{SENTENCES_PER_CLIENT} sentences, natural split · tiny_transformer · FedAvg "
        f"B={BATCH_SIZE} E={LOCAL_EPOCHS} client_lr={CLIENT_LR} · {args.clients} clients/round · "
        f"{args.rounds} timed rounds (median) · one subprocess per row",
        flush=True,
    )
    results: dict[tuple[str, str], Result | str] = {}
    for variant in VARIANTS:
        for method in METHODS:
            start = time.perf_counter()
            results[(method, variant)] = run_one(method, variant, args.clients, args.rounds)
            failed = " FAILED" if isinstance(results[(method, variant)], str) else ""
            print(
                f"  {variant}, {method}: done{failed} ({time.perf_counter() - start:.0f} s)",
                flush=True,
            )
    report(results)
    print(
        "\npeak MB = peak RSS minus the RSS after imports, data and one model build (base); "
        "rounds/s = 1 / median s/round"
    )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(
                {
                    "results": [
                        asdict(r) if isinstance(r, Result) else {"error": r}
                        for r in results.values()
                    ],
                    "tensorflow": tf.__version__,
                    "cpus": os.cpu_count(),
                    "tf_threads": threads,
                    "clients": args.clients,
                    "rounds": args.rounds,
                },
                f,
                indent=1,
            )
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
