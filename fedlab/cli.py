"""The command line: ``python -m fedlab run ...`` runs one federated experiment (no notebook; README).

One run = one dataset, one client split, one model and one algorithm, exactly what
:func:`fedlab.simulate` takes, optionally with a robust aggregator (``--aggregator krum``) and
malicious clients (``--attack sign_flip --attackers 2``); their options, checks, defaults and
help come from :mod:`fedlab.registry`. The run's :class:`~fedlab.history.History` is saved as
``OUT/history.json`` and drawn as ``OUT/history.png`` (loss, accuracy, client drift, update
agreement), so a run started in a terminal can be studied later in a notebook with
``History.load``.

Example:
    python -m fedlab run --dataset digits --num-clients 10 --num-rounds 20 --out runs/digits
    python -m fedlab run --dataset synthetic --synthetic-alpha 1 --synthetic-beta 1 \\
        --model logreg --clients-per-round 10 --out runs/synthetic11
    python -m fedlab run --algorithm fedprox --mu 0.1 --out runs/fedprox
    python -m fedlab run --algorithm fedadam --server-lr 0.03 --tau 1e-3 --out runs/fedadam
    python -m fedlab run --aggregator krum --num-byzantine 2 --attack sign_flip --attackers 2 \\
        --out runs/krum
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from fedlab import registry
from fedlab.atomic import write_atomically
from fedlab.engine import STRATEGIES, DivergenceError, Simulation
from fedlab.history import History
from fedlab.models import model_fn
from fedlab.registry import TRAINING_SETTINGS, Setting
from fedlab.validate import check_int

ALGORITHMS = registry.FEDERATED
DATASETS = tuple(registry.DATASETS)
MODELS = tuple(registry.MODELS)
PARTITIONS = ("iid", "natural")

DEFENCES = tuple(registry.DEFENCES)
ATTACKS = tuple(registry.ATTACK_KINDS)


def _takers(table: dict[str, registry.Component], keys: Sequence[str]) -> dict[str, list[str]]:
    """Every setting of the components ``keys`` of ``table`` -> the components that take it."""
    names = dict.fromkeys(n for key in keys for n in table[key].names)
    return {name: [key for key in keys if name in table[key].names] for name in names}


_TAKERS = _takers(registry.ALGORITHMS, ALGORITHMS)  # e.g. "mu": ["fedprox"]
_DEFENCE_TAKERS = _takers(registry.DEFENCES, DEFENCES)  # e.g. "num_byzantine": ["krum", ...]


def _dataset_option(dataset: str, setting: Setting) -> str:
    return f"--{dataset}-{setting.name.replace('_', '-')}"


# fedlab's errors name Python arguments; the command line shows the option a user typed.
_OPTION_OF = {
    name: "--" + name.replace("_", "-")
    for name in ("num_clients", "clients_per_round", "num_rounds", "seed", "save_every")
    + ("partition", "model", "attack", *_TAKERS, *_DEFENCE_TAKERS)
} | {s.name: _dataset_option(k, s) for k, c in registry.DATASETS.items() for s in c.settings}
_OPTION_OF |= {"defence": "--aggregator", "num_attackers": "--attackers", "count": "--attackers"}
assert not set(_TAKERS) & set(_DEFENCE_TAKERS), "an algorithm and a defence share an option"


class UsageError(ValueError):
    """A bad command-line value found after parsing (reported as ``error: ...``, exit code 2)."""


def _parse(setting: Setting) -> Callable[[str], Any]:
    """argparse type for a setting: its type, or also its word for None (``--batch-size full``)."""
    if not setting.none or setting.kind not in (int, float):
        return setting.kind
    whole = "a whole number" if setting.kind is int else "a number"

    def parse(text: str) -> Any:
        if text.strip().lower() == setting.none:
            return None
        try:
            return setting.kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"must be {whole} or {setting.none!r}, got {text!r}"
            ) from None

    return parse


def _listed(names: Sequence[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return " and ".join(filter(None, [", ".join(names[:-1]), names[-1]]))


def _defaults(
    name: str, takers: dict[str, list[str]] = _TAKERS, table: dict = registry.ALGORITHMS
) -> tuple[Any, str]:
    """The option's default and its text: the takers' one default, or ``None`` ("the algorithm's
    own") with each takers' default when they differ."""
    by_value: dict[Any, list[str]] = {}
    for key in takers[name]:
        by_value.setdefault(table[key].setting(name).default, []).append(key)
    usual = max(by_value, key=lambda value: len(by_value[value]))
    if len(by_value) == 1:
        return usual, f"default: {usual}"
    others = [f"{value} for {_listed(keys)}" for value, keys in by_value.items() if value != usual]
    return None, f"default: {', '.join(others)}, {usual} otherwise"


def _add_option(group, option: str, setting: Setting, default: Any, help: str) -> None:
    if setting.kind is bool:
        group.add_argument(option, action="store_true", default=default, help=help)
    else:
        metavar = setting.metavar or setting.name.upper()
        group.add_argument(
            option, type=_parse(setting), default=default, metavar=metavar, help=help
        )


def _prog() -> str:
    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "fedlab"
    return "python -m fedlab" if name in {"__main__.py", "-c", ""} else name


def _algorithm_help() -> str:
    """What each algorithm is, with the common options it ignores and the ones it adds."""
    parts = []
    for key in ALGORITHMS:
        algorithm = registry.ALGORITHMS[key]
        notes = []
        ignored = [_OPTION_OF[n] for n in TRAINING_SETTINGS if n not in algorithm.names]
        if ignored:
            notes.append(f"ignores {_listed(ignored)}")
        notes += [", ".join(_OPTION_OF[s.name] for s in algorithm.hyperparameters)]
        note = "; ".join(filter(None, notes))
        parts.append(f"{key}: {algorithm.help}" + (f" ({note})" if note else ""))
    return "; ".join(parts) + " (default: %(default)s)"


def build_parser() -> argparse.ArgumentParser:
    """The ``fedlab`` argument parser (exposed so docs and tests can inspect it).

    The options of the datasets and algorithms, their types, ranges, defaults and help come from
    :mod:`fedlab.registry`.
    """
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
        help="; ".join(f"{k}: {c.help}" for k, c in registry.DATASETS.items())
        + " (default: %(default)s)",
    )
    for key, dataset in registry.DATASETS.items():
        for setting in dataset.settings:
            shown = setting.none if setting.default is None else "%(default)s"
            _add_option(
                data,
                _dataset_option(key, setting),
                setting,
                setting.default,
                f"{key} only: {setting.text()} (default: {shown})",
            )
    with_clients = [k for k, c in registry.DATASETS.items() if "clients" in c.has]
    schemes = []
    for key in PARTITIONS:
        fitting = [k for k, c in registry.DATASETS.items() if registry.SPLITS[key].needs <= c.has]
        only = f" ({_listed(fitting)} only)" if len(fitting) < len(DATASETS) else ""
        schemes.append(f"{key}: {registry.SPLITS[key].help}{only}")
    data.add_argument(
        "--partition",
        choices=PARTITIONS,
        default=None,
        help=f"how training examples are split into clients: {'; '.join(schemes)} (default: "
        f"natural for {_listed(with_clients)}, iid otherwise)",
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
        choices=MODELS,
        default="mlp",
        help="; ".join(f"{k}: {c.help}" for k, c in registry.MODELS.items())
        + " (default: %(default)s)",
    )
    training.add_argument(
        "--algorithm", choices=ALGORITHMS, default="fedavg", help=_algorithm_help()
    )
    tuning = run.add_argument_group(
        "algorithm hyper-parameters (each only with the algorithms named; default: the "
        "algorithm's own, see fedlab.algorithms)"
    )
    for name, takers in _TAKERS.items():
        setting = registry.ALGORITHM_SETTINGS[name]
        default, default_text = _defaults(name)
        if name in TRAINING_SETTINGS:
            help = f"{setting.text()} ({default_text})"
            _add_option(training, _OPTION_OF[name], setting, default, help)
        else:  # given only to the algorithms that take it: None means "not given"
            shown = "" if setting.kind is bool else f" ({default_text})"
            help = f"{', '.join(takers)}: {setting.text()}{shown}"
            _add_option(tuning, _OPTION_OF[name], setting, None, help)

    _add_attack_options(run)

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


def _add_attack_options(run: argparse.ArgumentParser) -> None:
    """``--aggregator`` and its defences' settings, ``--attack`` and ``--attackers``."""
    group = run.add_argument_group(
        "attacks and defences (fedlab.poisoning, fedlab.robust; a defence's options only with "
        "the --aggregator values named)"
    )
    defences = []
    for key, defence in registry.DEFENCES.items():
        options = ", ".join(_OPTION_OF[name] for name in defence.names)
        defences.append(f"{key}: {defence.help}" + (f" ({options})" if options else ""))
    group.add_argument(
        "--aggregator",
        choices=DEFENCES,
        default="mean",
        help="how the server combines the clients' updates, the algorithm's own mean or a "
        f"robust rule in its place: {'; '.join(defences)} (default: %(default)s)",
    )
    for name, takers in _DEFENCE_TAKERS.items():
        setting = registry.DEFENCES[takers[0]].setting(name)
        _, default_text = _defaults(name, _DEFENCE_TAKERS, registry.DEFENCES)
        help = f"{', '.join(takers)}: {setting.text()} ({default_text})"
        _add_option(group, _OPTION_OF[name], setting, None, help)
    attacks = "; ".join(f"{key}: {c.help}" for key, c in registry.ATTACK_KINDS.items())
    group.add_argument(
        "--attack",
        choices=ATTACKS,
        default="none",
        help=f"what the --attackers malicious clients do: {attacks} (default: %(default)s)",
    )
    group.add_argument(
        "--attackers",
        type=int,
        default=None,
        metavar="N",
        help="how many clients are malicious (drawn once from --seed, the same for the whole "
        "run; at most --num-clients); required with an --attack other than none",
    )


def _usage_message(error: Exception) -> str:
    """fedlab's error message with the Python argument name replaced by the CLI option."""
    message = str(error)
    if isinstance(error, KeyError):  # KeyError's str() adds quotes
        message = str(error.args[0]) if error.args else message
    if isinstance(error, FileNotFoundError):
        return f"--mnist-path: {message}"
    for name in _DEFENCE_TAKERS:  # "Krum with num_byzantine=2 needs ...": --num-byzantine 2
        message = message.replace(f"{name}=", f"{_OPTION_OF[name]} ")
    for name, option in _OPTION_OF.items():
        if message.startswith(f"{name} "):
            return option + message[len(name) :]
    return message


def _make_algorithm(args: argparse.Namespace):
    """The algorithm from the options; a hyper-parameter its algorithm does not take is an error."""
    algorithm = registry.ALGORITHMS[args.algorithm]
    for name, takers in _TAKERS.items():
        given = name not in TRAINING_SETTINGS and getattr(args, name) is not None
        if given and args.algorithm not in takers:
            users = " or ".join(f"--algorithm {a}" for a in takers)
            raise UsageError(
                f"{_OPTION_OF[name]} only applies to {users}, not --algorithm {args.algorithm}"
            )
    built = algorithm.build(**algorithm.pick(vars(args)))
    defence = registry.DEFENCES[args.aggregator]
    for name, takers in _DEFENCE_TAKERS.items():
        if getattr(args, name) is not None and args.aggregator not in takers:
            users = " or ".join(f"--aggregator {d}" for d in takers)
            raise UsageError(
                f"{_OPTION_OF[name]} only applies to {users}, not --aggregator {args.aggregator}"
            )
    return registry.with_defence(built, args.aggregator, **defence.pick(vars(args)))


def _make_attackers(args: argparse.Namespace):
    """The malicious clients from ``--attack`` and ``--attackers`` (``None``: no attack); one
    given without the other is an error."""
    count = 0 if args.attackers is None else check_int("num_attackers", args.attackers, low=0)
    try:
        return registry.make_attackers(args.attack, count)
    except ValueError:  # the attack and the count do not go together
        if args.attack == "none":
            raise UsageError(
                f"--attackers {count} needs --attack KIND, what the malicious clients do (one of "
                f"{', '.join(a for a in ATTACKS if a != 'none')}); or leave --attackers out"
            ) from None
        given = "without --attackers" if args.attackers is None else "with --attackers 0"
        raise UsageError(
            f"--attack {args.attack} {given}: give --attackers N, how many clients are "
            "malicious (at least 1), or --attack none"
        ) from None


def _setup(args: argparse.Namespace) -> Simulation:
    """Data, split, algorithm and model from the options; every check happens here."""
    check_int("num_rounds", args.num_rounds, low=0)
    dataset = registry.DATASETS[args.dataset]
    if args.partition is None:
        args.partition = "natural" if "clients" in dataset.has else "iid"
    split = registry.SPLITS[args.partition]
    registry.check_fits("model", registry.MODELS[args.model], dataset)
    registry.check_fits("partition", split, dataset)
    own = {s.name: getattr(args, f"{args.dataset}_{s.name}") for s in dataset.settings}
    algorithm, attackers = _make_algorithm(args), _make_attackers(args)  # before the data loads
    data = registry.data_for_model(args.model, dataset.build(args.num_clients, args.seed, **own))
    return Simulation(
        algorithm,
        model_fn(args.model, data.num_classes),
        data,
        split.build(data, args.num_clients, args.seed),
        clients_per_round=args.clients_per_round,
        seed=args.seed,
        strategy=args.strategy,
        attackers=attackers,
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
        attackers = config.get("attackers")
        attack = (
            f" · {attackers['count']} × {attackers['attack']['name']} attackers"
            if attackers and attackers.get("count") is not None
            else ""
        )
        fig.suptitle(
            f"{algorithm} · {config.get('dataset', '')} · {config.get('split', '')} split · "
            f"{config.get('clients_per_round', '?')}/{config.get('num_clients', '?')} clients "
            f"per round{attack}"
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
        print(f"{run_parser_prog}: error: {_usage_message(error)}", file=sys.stderr)
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
