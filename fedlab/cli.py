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
import sys
from collections.abc import Sequence
from pathlib import Path

from fedlab import data as datasets
from fedlab import partition
from fedlab.algorithms import ALGORITHMS
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
            "is still saved); 2 bad option values."
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
        help="folder for history.json and history.png; created if missing (required)",
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
    """Draw loss, accuracy, client drift and update agreement on one 2x2 figure; save as PNG."""
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
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)


def _summary(history: History) -> str:
    """``round R · test accuracy A · test loss L`` for the last completed round."""
    if not len(history):
        return "round 0 · no completed rounds"
    last = history.rounds[-1]
    return (
        f"round {last.round} · test accuracy {last.test_accuracy:.3f} · "
        f"test loss {last.test_loss:.3g}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``fedlab`` command line; return the exit code (0 ok, 1 diverged).

    Bad option values print one ``error:`` line on stderr and exit with code 2, as argparse
    does for unknown options.

    Example:
        >>> main(["run", "--num-rounds", "3", "--out", "runs/try"])  # doctest: +SKIP
        0
    """
    import matplotlib

    matplotlib.use("Agg")  # the CLI only writes files; never open a window

    parser = build_parser()
    args = parser.parse_args(argv)
    run_parser_prog = f"{parser.prog} {args.command}"
    try:
        simulation = _setup(args)
    except (ValueError, TypeError, KeyError, FileNotFoundError) as error:
        print(f"{run_parser_prog}: error: {_usage_message(error)}", file=sys.stderr)
        raise SystemExit(2) from None

    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        print(f"{run_parser_prog}: error: --out {out}: {error.strerror}", file=sys.stderr)
        raise SystemExit(2) from None
    simulation.history.config["command_line"] = {
        key: value for key, value in vars(args).items() if key != "command"
    }

    diverged = ""
    try:
        simulation.run(args.num_rounds, progress=not args.no_progress)
    except DivergenceError as error:
        print(
            f"{run_parser_prog}: training diverged in round {error.round}: non-finite loss or "
            f"weights for client(s) {list(error.clients)}; try a smaller --client-lr. Saving "
            f"the {error.round - 1} completed round(s).",
            file=sys.stderr,
        )
        diverged = f" · diverged in round {error.round}"
    history = simulation.history
    json_path, png_path = out / "history.json", out / "history.png"
    history.save(json_path)
    save_figure(history, png_path)
    print(f"{_summary(history)}{diverged} · wrote {json_path}, {png_path}")
    return 1 if diverged else 0
