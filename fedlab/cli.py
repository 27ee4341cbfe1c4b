"""The command line: ``python -m fedlab run ...`` runs one federated experiment (no notebook; README).

One run = one dataset, one client split, one model and one algorithm, exactly what
:func:`fedlab.simulate` takes. The run's :class:`~fedlab.history.History` is saved as
``OUT/history.json`` and drawn as ``OUT/history.png`` (loss, accuracy, client drift, update
agreement), so a run started in a terminal can be studied later in a notebook with
``History.load``.

Example:
    python -m fedlab run --dataset digits --num-clients 10 --num-rounds 20 --out runs/digits
    python -m fedlab run --dataset synthetic --synthetic-alpha 1 --synthetic-beta 1 \\
        --model logreg --clients-per-round 10 --out runs/synthetic11
    python -m fedlab run --algorithm fedprox --mu 0.1 --out runs/fedprox
    python -m fedlab run --algorithm fedadam --server-lr 0.03 --tau 1e-3 --out runs/fedadam
"""

from __future__ import annotations

import argparse
import inspect
import os
import signal
import sys
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path

from fedlab import data as datasets
from fedlab import partition
from fedlab.algorithms import ALGORITHMS
from fedlab.atomic import write_atomically
from fedlab.engine import STRATEGIES, DivergenceError, Simulation
from fedlab.history import History
from fedlab.models import MODELS, model_fn
from fedlab.validate import check_int

DATASETS = ("digits", "synthetic", "mnist")
PARTITIONS = ("iid", "natural")

# fedlab's errors name Python arguments; the command line shows the option a user typed.
_OPTION_OF = {
    "num_clients": "--num-clients",
    "clients_per_round": "--clients-per-round",
    "num_rounds": "--num-rounds",
    "local_epochs": "--local-epochs",
    "batch_size": "--batch-size",
    "client_lr": "--client-lr",
    "server_lr": "--server-lr",
    "seed": "--seed",
    "alpha": "--synthetic-alpha",
    "beta": "--synthetic-beta",
    "mu": "--mu",
    "momentum": "--momentum",
    "nesterov": "--nesterov",
    "beta1": "--beta1",
    "beta2": "--beta2",
    "tau": "--tau",
    "save_every": "--save-every",
}

# algorithm-specific hyper-parameters: option dest -> the --algorithm values that take it
HYPERPARAMETERS = {
    "mu": ("fedprox",),
    "momentum": ("fedavgm",),
    "nesterov": ("fedavgm",),
    "beta1": ("fedadam", "fedyogi", "fedadagrad"),
    "beta2": ("fedadam", "fedyogi"),
    "tau": ("fedadam", "fedyogi", "fedadagrad"),
}


class UsageError(ValueError):
    """A bad command-line value found after parsing (reported as ``error: ...``, exit code 2)."""


def _batch_size(text: str) -> int | None:
    """argparse type for ``--batch-size``: a whole number, or ``full`` for full batch (None)."""
    if text.strip().lower() == "full":
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be a whole number or 'full', got {text!r}"
        ) from None


def _default(algorithm: str, argument: str):
    """The default of ``argument`` in the ``ALGORITHMS[algorithm]`` factory (shown in --help)."""
    return inspect.signature(ALGORITHMS[algorithm]).parameters[argument].default


def _prog() -> str:
    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "fedlab"
    return "python -m fedlab" if name in {"__main__.py", "-c", ""} else name


def build_parser() -> argparse.ArgumentParser:
    """The ``fedlab`` argument parser (exposed so docs and tests can inspect it)."""
    parser = argparse.ArgumentParser(
        prog=_prog(),
        description="fedlab: run federated-learning experiments from the command line.",
        epilog="Run '%(prog)s run --help' for every option of a run.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = commands.add_parser(
        "run",
        help="simulate one federated training run and save its history and plots",
        description=(
            "Simulate federated training (fedlab.simulate) and write OUT/history.json "
            "(load it with fedlab.History.load) and OUT/history.png (loss, accuracy, client "
            "drift and update agreement per round)."
        ),
        epilog=(
            "Exit codes: 0 success; 1 training diverged (the history up to the last good round "
            "is still saved); 2 bad option values or an unusable --out (nothing trained); 130 "
            "stopped by Ctrl-C (SIGINT) and 143 stopped by SIGTERM, with the rounds done saved. "
            "The first Ctrl-C or SIGTERM lets the round in flight finish, a second one abandons "
            "it; either way history.json and history.png hold every completed round."
        ),
    )

    data = run.add_argument_group("data and clients")
    data.add_argument(
        "--dataset",
        choices=DATASETS,
        default="digits",
        help="digits: scikit-learn's 8x8 digits, offline; synthetic: FedProx's Synthetic(alpha, "
        "beta) with one natural client per device; mnist: needs mnist.npz, see --mnist-path "
        "(default: %(default)s)",
    )
    data.add_argument(
        "--mnist-path",
        metavar="PATH",
        default=None,
        help="path to Keras' mnist.npz for --dataset mnist; fedlab never downloads (default: "
        "~/.keras/datasets/mnist.npz)",
    )
    data.add_argument(
        "--synthetic-alpha",
        type=float,
        default=1.0,
        metavar="ALPHA",
        help="synthetic only: how different the clients' labelling functions are, >= 0 "
        "(default: %(default)s)",
    )
    data.add_argument(
        "--synthetic-beta",
        type=float,
        default=1.0,
        metavar="BETA",
        help="synthetic only: how different the clients' inputs are, >= 0 (default: %(default)s)",
    )
    data.add_argument(
        "--partition",
        choices=PARTITIONS,
        default=None,
        help="how training examples are split into clients: iid shuffles and deals them out "
        "evenly; natural keeps the dataset's own clients (synthetic only) "
        "(default: natural for synthetic, iid otherwise)",
    )
    data.add_argument(
        "--num-clients",
        type=int,
        default=10,
        metavar="N",
        help="number of clients for an iid split; with a natural split it only sets how many "
        "devices synthetic generates (default: %(default)s)",
    )

    training = run.add_argument_group("model and algorithm")
    training.add_argument(
        "--model",
        choices=tuple(MODELS),
        default="mlp",
        help="mlp: Dense(128, relu) -> logits (FedModel); logreg: multinomial logistic "
        "regression; cnn: small CNN on the inputs as images (digits, mnist) "
        "(default: %(default)s)",
    )
    training.add_argument(
        "--algorithm",
        choices=tuple(ALGORITHMS),
        default="fedavg",
        help="fedavg: local epochs of mini-batch SGD, then a weighted mean; fedsgd: one "
        "full-batch gradient step per client (ignores --local-epochs and --batch-size); "
        "fedprox: FedAvg with a proximal term (--mu); scaffold: control variates correct "
        "client drift; fedavgm: server momentum (--momentum, --nesterov); fedadam, fedyogi, "
        "fedadagrad: adaptive server optimisers (--beta1, --beta2, --tau) "
        "(default: %(default)s)",
    )
    training.add_argument(
        "--local-epochs",
        type=int,
        default=1,
        metavar="E",
        help="passes over its own data each client makes per round (default: %(default)s)",
    )
    training.add_argument(
        "--batch-size",
        type=_batch_size,
        default=20,
        metavar="B",
        help="local mini-batch size, or 'full' for one full-batch step per epoch "
        "(default: %(default)s)",
    )
    training.add_argument(
        "--client-lr",
        type=float,
        default=0.1,
        metavar="LR",
        help="clients' local SGD learning rate, > 0 (default: %(default)s)",
    )
    training.add_argument(
        "--server-lr",
        type=float,
        default=None,
        metavar="LR",
        help="server step applied to the averaged update, > 0; 1 is plain FedAvg "
        f"(default: {_default('fedadam', 'server_lr')} for fedadam, fedyogi and fedadagrad, "
        f"{_default('fedavg', 'server_lr')} otherwise)",
    )

    tuning = run.add_argument_group(
        "algorithm hyper-parameters (each only with the algorithms named; default: the "
        "algorithm's own, see fedlab.algorithms)"
    )
    tuning.add_argument(
        "--mu",
        type=float,
        default=None,
        metavar="MU",
        help=f"fedprox: proximal strength μ >= 0; 0 is FedAvg (default: {_default('fedprox', 'mu')})",
    )
    tuning.add_argument(
        "--momentum",
        type=float,
        default=None,
        metavar="BETA",
        help=f"fedavgm: server momentum in [0, 1); 0 is FedAvg (default: {_default('fedavgm', 'momentum')})",
    )
    tuning.add_argument(
        "--nesterov",
        action="store_true",
        default=None,
        help="fedavgm: use Nesterov momentum",
    )
    tuning.add_argument(
        "--beta1",
        type=float,
        default=None,
        metavar="B1",
        help="fedadam, fedyogi, fedadagrad: first-moment decay in [0, 1) "
        f"(default: {_default('fedadam', 'beta1')})",
    )
    tuning.add_argument(
        "--beta2",
        type=float,
        default=None,
        metavar="B2",
        help=f"fedadam, fedyogi: second-moment decay in [0, 1) (default: {_default('fedadam', 'beta2')})",
    )
    tuning.add_argument(
        "--tau",
        type=float,
        default=None,
        metavar="TAU",
        help="fedadam, fedyogi, fedadagrad: adaptivity τ > 0; smaller is more adaptive "
        f"(default: {_default('fedadam', 'tau')})",
    )

    rounds = run.add_argument_group("rounds")
    rounds.add_argument(
        "--num-rounds",
        type=int,
        default=20,
        metavar="R",
        help="number of federated rounds (default: %(default)s)",
    )
    rounds.add_argument(
        "--clients-per-round",
        type=int,
        default=None,
        metavar="K",
        help="clients sampled uniformly each round, at most the number of clients "
        "(default: all clients)",
    )
    rounds.add_argument(
        "--seed",
        type=int,
        default=0,
        metavar="S",
        help="seeds everything: the data's train/test split or generation, the client split, "
        "initial weights, client sampling and batch order (default: %(default)s)",
    )
    rounds.add_argument(
        "--strategy",
        choices=STRATEGIES,
        default="vectorized",
        help="how the engine trains a round's clients: vectorized (all at once) or loop (one "
        "after another in compiled code); same numbers (default: %(default)s)",
    )

    output = run.add_argument_group("output")
    output.add_argument(
        "--out",
        metavar="DIR",
        required=True,
        help="folder for history.json and history.png; created if missing; a folder that "
        "already holds a history is refused unless --overwrite (required)",
    )
    output.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the history.json and history.png already in --out",
    )
    output.add_argument(
        "--save-every",
        type=int,
        default=None,
        metavar="N",
        help="also save history.json every N rounds during the run, so even a killed run "
        "(SIGKILL, power cut) keeps most of its rounds (default: only at the end)",
    )
    output.add_argument(
        "--no-progress",
        action="store_true",
        help="hide the progress bar (shown on stderr for runs longer than 2 s)",
    )
    return parser


def _usage_message(error: Exception) -> str:
    """fedlab's error message with the Python argument name replaced by the CLI option."""
    message = str(error)
    if isinstance(error, KeyError):  # KeyError's str() adds quotes
        message = str(error.args[0]) if error.args else message
    if isinstance(error, FileNotFoundError):
        return f"--mnist-path: {message}"
    for name, option in _OPTION_OF.items():
        if message.startswith(f"{name} "):
            return option + message[len(name) :]
    return message


def _load_data(args: argparse.Namespace):
    if args.dataset == "digits":
        return datasets.load_digits(seed=args.seed)
    if args.dataset == "mnist":
        return datasets.load_mnist(args.mnist_path)
    num_clients = check_int("num_clients", args.num_clients, low=1)
    return datasets.synthetic(
        args.synthetic_alpha, args.synthetic_beta, num_clients=num_clients, seed=args.seed
    )


def _make_split(args: argparse.Namespace, dataset):
    if args.partition == "natural":
        if dataset.client_ids is None:
            raise UsageError(
                f"--partition natural needs a dataset with its own clients (synthetic); "
                f"{args.dataset} has none, use --partition iid"
            )
        return partition.natural(dataset.client_ids, dataset.y_train)
    return partition.iid(dataset.y_train, args.num_clients, seed=args.seed)


def _make_algorithm(args: argparse.Namespace):
    """The algorithm from the options; a hyper-parameter its algorithm does not take is an error."""
    given = {name: getattr(args, name, None) for name in HYPERPARAMETERS}
    for name, value in given.items():
        if value is not None and args.algorithm not in HYPERPARAMETERS[name]:
            users = " or ".join(f"--algorithm {a}" for a in HYPERPARAMETERS[name])
            raise UsageError(
                f"{_OPTION_OF[name]} only applies to {users}, not --algorithm {args.algorithm}"
            )
    kwargs = {"client_lr": args.client_lr}
    if args.server_lr is not None:
        kwargs["server_lr"] = args.server_lr
    if args.algorithm != "fedsgd":
        kwargs.update(local_epochs=args.local_epochs, batch_size=args.batch_size)
    kwargs.update({name: value for name, value in given.items() if value is not None})
    return ALGORITHMS[args.algorithm](**kwargs)


def _setup(args: argparse.Namespace) -> Simulation:
    """Data, split, algorithm and model from the options; every check happens here."""
    check_int("num_rounds", args.num_rounds, low=0)
    if args.partition is None:
        args.partition = "natural" if args.dataset == "synthetic" else "iid"
    if args.model == "cnn" and args.dataset == "synthetic":
        raise UsageError("--model cnn needs image data (digits or mnist); synthetic is not images")
    dataset = _load_data(args)
    if args.model == "cnn":
        dataset = dataset.as_images()
    split = _make_split(args, dataset)
    algorithm = _make_algorithm(args)
    return Simulation(
        algorithm,
        model_fn(args.model, dataset.num_classes),
        dataset,
        split,
        clients_per_round=args.clients_per_round,
        seed=args.seed,
        strategy=args.strategy,
    )


def save_figure(history: History, path: Path) -> None:
    """Draw loss, accuracy, client drift and update agreement on one 2x2 figure; save as PNG
    (atomically: an interrupted save leaves the previous picture)."""
    import io

    import matplotlib.pyplot as plt

    from fedlab.plot import plot_drift, plot_history

    fig, axes = plt.subplots(2, 2, figsize=(10, 7), layout="constrained")
    try:
        plot_history(history, axes=axes[0])
        plot_drift(history, axes=axes[1])
        config = history.config
        algorithm = config.get("algorithm", {}).get("name", "")
        fig.suptitle(
            f"{algorithm} · {config.get('dataset', '')} · {config.get('split', '')} split · "
            f"{config.get('clients_per_round', '?')}/{config.get('num_clients', '?')} clients "
            "per round"
        )
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=100)
    finally:
        plt.close(fig)
    write_atomically({path: buffer.getvalue()})


def _summary(history: History) -> str:
    """``round R · test accuracy A · test loss L`` for the last completed round."""
    if not len(history):
        return "round 0 · no completed rounds"
    last = history.rounds[-1]
    return (
        f"round {last.round} · test accuracy {last.test_accuracy:.3f} · "
        f"test loss {last.test_loss:.3g}"
    )


OUTPUTS = ("history.json", "history.png")
EXIT_OK, EXIT_DIVERGED, EXIT_USAGE = 0, 1, 2
EXIT_INTERRUPTED = {signal.SIGINT: 130, signal.SIGTERM: 143}  # 128 + the signal's number


def check_out(out: Path, overwrite: bool) -> None:
    """Refuse an ``--out`` the run could not write to, before any training: a file, a folder
    that cannot be created or written, an output name taken by a folder, or a folder that already
    holds a history (unless ``overwrite``). Raises UsageError naming the problem.

    Example:
        >>> check_out(Path("/proc/fedlab"), overwrite=False)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.cli.UsageError: --out /proc/fedlab: cannot create the folder (...)
    """
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file: give a folder for {' and '.join(OUTPUTS)}")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(
            f"--out {out}: cannot create the folder ({error.strerror or error})"
        ) from None
    for name in OUTPUTS:
        target = out / name
        if target.is_dir():
            raise UsageError(f"--out {out}: {name} there is a folder, so it cannot be written")
        if target.exists() and not overwrite:
            raise UsageError(
                f"--out {out} already holds {name} from an earlier run: choose another folder "
                "or add --overwrite to replace it"
            )
    try:  # what the save will do: a temporary file beside the outputs
        with tempfile.NamedTemporaryFile(dir=out, prefix=".fedlab-check-"):
            pass
    except OSError as error:
        raise UsageError(f"--out {out}: cannot write there ({error.strerror or error})") from None


class _Interrupts:
    """SIGINT and SIGTERM during a run: the first lets the round in flight finish, then the run
    stops; a second abandons the round (KeyboardInterrupt: the engine undoes it)."""

    def __init__(self, prog: str):
        self.prog = prog
        self.received: int | None = None
        self.stop = threading.Event()

    def __enter__(self) -> _Interrupts:
        self.previous = {s: signal.signal(s, self._handle) for s in EXIT_INTERRUPTED}
        return self

    def __exit__(self, *exc) -> None:
        for number, handler in self.previous.items():
            signal.signal(number, handler)

    def _handle(self, number: int, frame) -> None:
        if self.stop.is_set():
            raise KeyboardInterrupt
        self.received = number
        self.stop.set()
        name = signal.Signals(number).name
        print(
            f"{self.prog}: {name}: stopping after the round in flight, then saving (send it "
            "again to stop at once)",
            file=sys.stderr,
            flush=True,
        )


def _save(history: History, out: Path) -> tuple[Path, Path]:
    json_path, png_path = out / OUTPUTS[0], out / OUTPUTS[1]
    history.save(json_path)
    save_figure(history, png_path)
    return json_path, png_path


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``fedlab`` command line; return the exit code (0 ok, 1 diverged, 130/143
    interrupted by SIGINT/SIGTERM with the completed rounds saved).

    Bad option values and an unusable ``--out`` print one ``error:`` line on stderr and exit
    with code 2 before anything trains, as argparse does for unknown options.

    Example:
        >>> main(["run", "--num-rounds", "3", "--out", "runs/try"])  # doctest: +SKIP
        0
    """
    import matplotlib

    matplotlib.use("Agg")  # the CLI only writes files; never open a window

    parser = build_parser()
    args = parser.parse_args(argv)
    run_parser_prog = f"{parser.prog} {args.command}"
    out = Path(args.out)
    try:
        if args.save_every is not None:
            check_int("save_every", args.save_every, low=1)
        simulation = _setup(args)
        check_out(out, args.overwrite)  # after the options: a bad value creates no folder
    except KeyboardInterrupt:
        print(
            f"{run_parser_prog}: interrupted before training: nothing was trained or saved",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED[signal.SIGINT]
    except (ValueError, TypeError, KeyError, FileNotFoundError) as error:
        message = _usage_message(error).replace("save_every ", "--save-every ", 1)
        print(f"{run_parser_prog}: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE) from None
    simulation.history.config["command_line"] = {
        key: value for key, value in vars(args).items() if key != "command"
    }

    def save_now(record, history) -> None:
        if record.round % args.save_every == 0:
            history.save(out / OUTPUTS[0])

    callbacks = [save_now] if args.save_every else []
    ending, code = "", EXIT_OK
    with _Interrupts(run_parser_prog) as interrupts:
        try:
            simulation.run(
                args.num_rounds,
                callbacks=callbacks,
                progress=not args.no_progress,
                stop_event=interrupts.stop,
            )
        except DivergenceError as error:
            print(
                f"{run_parser_prog}: training diverged in round {error.round}: {error.reason} "
                f"for client(s) {list(error.clients)}; try a smaller --client-lr. Saving the "
                f"{error.round - 1} completed round(s).",
                file=sys.stderr,
            )
            ending, code = f" · diverged in round {error.round}", EXIT_DIVERGED
        except KeyboardInterrupt:  # the second signal: the round in flight was undone
            pass
        if interrupts.received is not None:
            name = signal.Signals(interrupts.received).name
            ending = f" · stopped by {name} after round {len(simulation.history)}"
            code = EXIT_INTERRUPTED[interrupts.received]
        # saving is not interrupted: a signal now would leave the run half-saved
        for number in EXIT_INTERRUPTED:
            signal.signal(number, signal.SIG_IGN)
        json_path, png_path = _save(simulation.history, out)
    print(f"{_summary(simulation.history)}{ending} · wrote {json_path}, {png_path}")
    return code
