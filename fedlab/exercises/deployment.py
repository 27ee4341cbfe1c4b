"""Checks for notebook 14's exercises (from simulation to deployment): runs on a Flower
federation that must equal fedlab's engine, the bytes that top-k saves, a crashed client, where
the time of a fresh Python goes, and the command a classroom's SuperNode runs."""

from __future__ import annotations

import dataclasses
import shlex
from collections.abc import Callable
from typing import Any

import numpy as np

from fedlab.exercises.core import CheckFailed, Mistake, call, diagnose, passed, require

__all__ = [
    "check_crash",
    "check_deployed",
    "check_process_start",
    "check_supernode_command",
    "check_upload_share",
    "check_waited",
]


def _record(**values: Any) -> Any:
    """A RoundRecord with empty or zero fields where ``values`` gives none (for examples).

    Example:
        >>> _record(round=2, wall_time=4.0).wall_time
        4.0
    """
    from fedlab.history import RoundRecord

    empty = {
        "clients": (), "client_loss": (), "client_num_examples": (), "train_loss": 0.0,
        "test_loss": 0.0, "test_accuracy": 0.0, "client_drift": (), "drift_mean": 0.0,
        "drift_max": 0.0, "update_cosine": (), "bytes_down": 0, "bytes_up": 0, "wall_time": 0.0,
    }  # fmt: skip
    return RoundRecord(**{**empty, **values})


def _history(name: str, value: Any) -> Any:
    """``value`` if it is a History, else a CheckFailed naming what it is."""
    from fedlab.history import History

    if not isinstance(value, History):
        raise CheckFailed(
            f"{name} is a {type(value).__name__}, not the History that federation.run (or "
            "config.simulate()) returns"
        )
    return value


def _deployed(name: str, run: Any) -> Any:
    """``run`` if it is a History of a Flower run, else a CheckFailed saying what it is."""
    _history(name, run)
    if run.config.get("runtime") != "flower":
        raise CheckFailed(
            f"{name} ran in this process (fedlab's engine), not on the federation: "
            "federation.run(config)"
        )
    return run


def _changes(changed: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in changed.items()) or "CONFIG's settings"


# --- a run on the federation equals the engine's (exercises 1 and 2) -----------------------------


def check_deployed(
    run: Any,
    reference: Any,
    base: Any,
    *,
    name: str = "run",
    reference_name: str = "reference",
    min_rounds: int = 2,
    **changed: Any,
) -> None:
    """Check ``run``, a History from ``federation.run(config)``, and ``reference``, the same
    config run in this process (``config.simulate()``): the config is ``base`` (a
    ``FlowerConfig``) with the settings ``changed`` (and any number of rounds, at least
    ``min_rounds``), and the two Histories agree round by round (the same clients, test losses
    within 1e-4).

    It recognises: stubs; a run made in this process instead of on the federation; a wanted
    setting not applied; another setting changed as well; too few rounds; a reference that is
    a Flower run too, or another config's run; results that differ.

    Example:
        >>> from fedlab.flower import FlowerConfig
        >>> from fedlab.history import History
        >>> config = FlowerConfig(num_clients=3, num_rounds=2)
        >>> engine = History(config={"algorithm": {"name": "FedAvg"}})
        >>> check_deployed(engine, engine, config, name="scaffold_run", algorithm="scaffold")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: scaffold_run ran in this process (fedlab's engine), not on the federation...
    """
    require(
        name,
        run,
        f"run the config on the federation: federation.run(config) with {_changes(changed)}",
    )
    require(reference_name, reference, "the same config in this process: config.simulate()")
    _deployed(name, run)
    _history(reference_name, reference)
    for setting, value in changed.items():
        if run.config.get(setting) != value:
            raise CheckFailed(
                f"{name} ran with {setting}={run.config.get(setting)!r}; this exercise wants "
                f"{setting}={value!r}"
            )
    for setting, value in dataclasses.asdict(base).items():
        if setting in changed or setting == "num_rounds" or run.config.get(setting) == value:
            continue
        raise CheckFailed(
            f"{name} also changed {setting} ({value!r} → {run.config.get(setting)!r}): start "
            f"from CONFIG and change only {', '.join(changed)} (dataclasses.replace(CONFIG, ...))"
        )
    if len(run) < min_rounds:
        raise CheckFailed(
            f"{name} has {len(run)} round(s): run at least {min_rounds}, so that what a client "
            "keeps from one round to the next is used"
        )
    if reference.config.get("runtime") == "flower":
        raise CheckFailed(
            f"{reference_name} is a Flower run too: the reference is the same config run in this "
            "process, config.simulate()"
        )
    per_round = run.config.get("clients_per_round") or run.config.get("num_clients")
    same_run = (
        len(reference) == len(run)
        and reference.config.get("algorithm") == run.config.get("algorithm_config")
        and reference.config.get("clients_per_round") == per_round
        and reference.config.get("seed") == run.config.get("seed")
        and ("compression" in reference.config) == (run.config.get("compression") != "none")
    )
    if not same_run:
        raise CheckFailed(
            f"{reference_name} is not {name}'s config run in this process: call .simulate() on "
            f"the config you gave federation.run ({len(reference)} rounds against {len(run)})"
        )
    for ours, theirs in zip(run.rounds, reference.rounds, strict=True):
        if ours.clients != theirs.clients:
            raise CheckFailed(
                f"round {ours.round}: {name} trained clients {list(ours.clients)}, "
                f"{reference_name} {list(theirs.clients)}: not the same run"
            )
    gap = float(np.max(np.abs(run.test_loss - reference.test_loss)))
    if not gap < 1e-4:
        raise CheckFailed(
            f"{name} and {reference_name} differ (largest test-loss difference {gap:.2g}): "
            "both should come from one config, with the same seed"
        )
    passed(
        f"{name}: {len(run)} rounds on the federation with {_changes(changed)}, equal to "
        f"{reference_name} round by round (largest test-loss difference {gap:.0e})"
    )


def check_upload_share(share: Any, compressed: Any, full: Any) -> None:
    """Check ``share``: round 1's bytes up of ``compressed`` (a Flower run with top-k) as a
    fraction of round 1's bytes up of ``full`` (the same clients, uncompressed).

    It recognises: the stub; the inverse; the bytes down instead of up; the configured
    fraction of coordinates instead of the measured bytes; a percentage; whole runs of
    different lengths compared.

    Example:
        >>> from fedlab.history import History
        >>> def run(up, fraction=None):
        ...     config = {"runtime": "flower", "compression_fraction": fraction}
        ...     return History(config, [_record(round=1, bytes_up=up, bytes_down=1000)])
        >>> check_upload_share(0.1, run(100, 0.05), run(1000))
        ✓ upload_share = 0.100: with top-k each client uploads a tenth of the bytes (1 in 10)
        >>> check_upload_share(0.05, run(100, 0.05), run(1000))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: upload_share = 0.05 is the share of coordinates top-k keeps...
    """
    require("upload_share", share, "round 1's bytes up with top-k over round 1's without")
    try:
        share = float(share)
    except (TypeError, ValueError):
        raise CheckFailed(f"upload_share should be a number, got {type(share).__name__}") from None
    first, base = compressed.rounds[0], full.rounds[0]
    truth = first.bytes_up / base.bytes_up
    mistakes = [
        Mistake(
            1 / truth,
            f"upload_share = {share:.3g} is the inverse: top-k's bytes over the full upload's",
        ),
        Mistake(
            first.bytes_down / base.bytes_down,
            f"upload_share = {share:.3g} compares the bytes down: only the uploads are "
            "compressed (bytes_up)",
        ),
        Mistake(
            100 * truth,
            "upload_share is a percentage: give a fraction (bytes_up / bytes_up)",
        ),
        Mistake(
            sum(r.bytes_up for r in compressed.rounds) / sum(r.bytes_up for r in full.rounds),
            "upload_share compares whole runs of different lengths: compare round 1 with round 1",
        ),
    ]
    fraction = compressed.config.get("compression_fraction")
    if fraction is not None and abs(share - fraction) < 1e-9 and abs(truth - fraction) > 1e-3:
        raise CheckFailed(
            f"upload_share = {share:g} is the share of coordinates top-k keeps, not of the bytes "
            "that travel: measure them (rounds[0].bytes_up of the two runs)"
        )
    diagnose(
        share,
        truth,
        mistakes,
        "upload_share is not round 1's bytes_up with top-k over round 1's bytes_up of the "
        "uncompressed run",
        atol=1e-3,
    )
    passed(
        f"upload_share = {share:.3f}: with top-k each client uploads "
        f"{'a tenth' if abs(share - 0.1) < 0.005 else f'{share:.1%}'} of the bytes (1 in "
        f"{1 / share:.0f})"
    )


# --- a crashed client (exercise 3) ---------------------------------------------------------------


def check_crash(run: Any, *, node: int, round_timeout: float, name: str = "crash_run") -> None:
    """Check ``run``: a Flower run of at least two rounds with ``round_timeout``, in which
    SuperNode ``node`` was killed once round 1 was saved, so that round 1 dropped nobody and
    round 2 dropped client ``node`` (and only it).

    It recognises: the stub; a run in this process; another round_timeout; a single round;
    a client dropped in round 1 already; round 2 without the drop (the kill came too late or
    not at all); other clients dropped too.

    Example:
        >>> from fedlab.history import History
        >>> config = {"runtime": "flower", "round_timeout": 15.0}
        >>> ok = History(config, [_record(round=1), _record(round=2, dropped=(2,))])
        >>> check_crash(ok, node=2, round_timeout=15.0)
        ✓ crash_run: round 1 trained every client, round 2 went on without client 2
    """
    require(name, run, f"run on the federation and kill SuperNode {node} after round 1")
    _deployed(name, run)
    if run.config.get("round_timeout") != round_timeout:
        raise CheckFailed(
            f"{name} ran with round_timeout={run.config.get('round_timeout')!r}; this exercise "
            f"wants round_timeout={round_timeout!r}, so the server gives up on a silent client "
            "after that many seconds"
        )
    if len(run) < 2:
        raise CheckFailed(f"{name} has {len(run)} round(s): run two, the crash falls between them")
    first, second = run.rounds[0], run.rounds[1]
    if first.dropped:
        raise CheckFailed(
            f"{name} dropped client(s) {list(first.dropped)} in round 1 already: kill SuperNode "
            f"{node} once round 1 is saved (on_round: len(history) == 1)"
        )
    if node not in second.dropped:
        raise CheckFailed(
            f"{name}'s round 2 did not drop client {node}: kill its SuperNode when round 1 is "
            f"saved, on_round=lambda h: federation.kill_node({node}) if len(h) == 1 else None"
        )
    others = [k for k in second.dropped if k != node]
    if others:
        raise CheckFailed(
            f"round 2 dropped client(s) {others} too: kill only SuperNode {node} (or the machine "
            "was so slow that a healthy client missed round_timeout: run it again)"
        )
    passed(f"{name}: round 1 trained every client, round 2 went on without client {node}")


def check_waited(waited: Any, run: Any) -> None:
    """Check ``waited``: the seconds round 2 of ``run`` took (``run.wall_time[1]``), the round
    in which the server waited for a dead client.

    It recognises: the stub; round 1's time; the whole run's; the mean round; not a number.

    Example:
        >>> from fedlab.history import History
        >>> run = History({}, [_record(round=1, wall_time=4.0), _record(round=2, wall_time=16.0)])
        >>> check_waited(16.0, run)
        ✓ waited = 16.0 s: round 2 took 4.0 times as long as round 1
        >>> check_waited(4.0, run)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: waited is round 1's time...
    """
    require("waited", waited, "the seconds round 2 took (its wall_time)")
    try:
        waited = float(waited)
    except (TypeError, ValueError):
        raise CheckFailed(
            f"waited should be a number of seconds, got {type(waited).__name__}"
        ) from None
    times = np.asarray(run.wall_time, dtype=np.float64)
    diagnose(
        waited,
        times[1],
        [
            Mistake(times[0], "waited is round 1's time, before the crash: take round 2's"),
            Mistake(times.sum(), "waited is the whole run's time: take round 2's alone"),
            Mistake(
                times.mean(), "waited is the mean round: take round 2's, the round with the crash"
            ),
        ],
        "waited is not the wall time of round 2 (crash_run.wall_time[1])",
        atol=0.05,
    )
    passed(
        f"waited = {waited:.1f} s: round 2 took {waited / times[0]:.1f} times as long as round 1"
    )


# --- where a fresh Python's time goes (exercise 4) -----------------------------------------------


def check_process_start(import_seconds: Any, fork_seconds: Any) -> None:
    """Check two timings: ``import_seconds``, a fresh Python that imports TensorFlow (what
    Flower's own process model pays for every message), and ``fork_seconds``, forking this
    process, which has imported it already, and waiting for the child (what fedlab's executor
    pays). Properties that hold on any machine: the import takes over a second, the fork well
    under one, and the fork is at least ten times quicker.

    It recognises: stubs; not numbers; the two swapped; an import too quick to have loaded
    TensorFlow; a "fork" that started a new Python.

    Example:
        >>> check_process_start(8.2, 0.012)
        ✓ a fresh Python importing TensorFlow: 8.2 s; a fork of one that has: 12 ms (683 times quicker)
        >>> check_process_start(0.012, 8.2)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: fork_seconds is longer than import_seconds...
    """
    require("import_seconds", import_seconds, "time a fresh Python that imports tensorflow")
    require(
        "fork_seconds", fork_seconds, "time os.fork() of this process and waiting for the child"
    )
    try:
        spawn, fork = float(import_seconds), float(fork_seconds)
    except (TypeError, ValueError):
        raise CheckFailed("import_seconds and fork_seconds should be numbers of seconds") from None
    if fork > spawn:
        raise CheckFailed(
            "fork_seconds is longer than import_seconds: swapped? import_seconds times a fresh "
            "Python importing tensorflow, fork_seconds a fork of this process"
        )
    if spawn < 1.0:
        raise CheckFailed(
            f"import_seconds = {spawn:.2f} s is too quick for a fresh Python to import "
            "TensorFlow: time subprocess.run([sys.executable, '-c', 'import tensorflow'])"
        )
    if fork > 1.0 or spawn / max(fork, 1e-9) < 10:
        raise CheckFailed(
            f"fork_seconds = {fork:.2f} s: a fork copies this process, TensorFlow included, in "
            "milliseconds; time os.fork() (the child calls os._exit(0)) and os.waitpid, without "
            "starting a new Python"
        )
    passed(
        f"a fresh Python importing TensorFlow: {spawn:.1f} s; a fork of one that has: "
        f"{fork * 1000:.0f} ms ({spawn / fork:.0f} times quicker)"
    )


# --- a classroom's SuperNode (exercise 5) --------------------------------------------------------


def _node_config(tokens: list[str]) -> dict[str, str] | None:
    """The ``--node-config`` value as a dict, or None if it is missing."""
    if "--node-config" not in tokens:
        return None
    at = tokens.index("--node-config") + 1
    value = tokens[at] if at < len(tokens) else ""
    return dict(part.split("=", 1) for part in value.split() if "=" in part)


def check_supernode_command(supernode_command: Callable, seed: int | None = None) -> None:
    """Check ``supernode_command(k, num_students, teacher_ip, port)``: the shell command with
    which student k's laptop joins the teacher's federation over TLS, as in section 6's recipe:
    ``flower-supernode --superlink IP:PORT --root-certificates ca.crt --node-config
    "partition-id=k num-partitions=N"`` (a string, or a list of arguments).

    It recognises: not a command; the wrong program (flower-superlink); ``--insecure``; no
    ``--root-certificates``; the SuperLink at 127.0.0.1 or without its port; an unquoted node
    config; partition ids counted from 1; another partition id; num-partitions not the number
    of students.

    Example:
        >>> def supernode_command(k, num_students, teacher_ip, port=8000):
        ...     config = f"partition-id={k} num-partitions={num_students}"
        ...     return (f"flower-supernode --superlink {teacher_ip}:{port} --root-certificates "
        ...             f"ca.crt --isolation subprocess --node-config '{config}'")
        >>> check_supernode_command(supernode_command)
        ✓ supernode_command: student k joins teacher_ip:port over TLS and holds partition k of num_students
    """
    if seed is None:
        cases = [(3, 20, "192.168.1.10", 8000), (0, 5, "10.0.0.7", 8000)]
    else:
        rng = np.random.default_rng(seed)
        n = int(rng.integers(4, 40))
        ip = ".".join(str(int(b)) for b in [10, *rng.integers(0, 255, 3)])
        cases = [(int(rng.integers(0, n)), n, ip, int(rng.integers(1024, 60000))) for _ in range(3)]
    for k, n, ip, port in cases:
        got = call(supernode_command, "supernode_command", k, n, ip, port)
        if isinstance(got, str):
            try:
                tokens = shlex.split(got)
            except ValueError as error:
                raise CheckFailed(f"supernode_command's command does not parse: {error}") from None
        elif isinstance(got, list | tuple) and all(isinstance(t, str) for t in got):
            tokens = list(got)
        else:
            raise CheckFailed(
                "supernode_command should return the command: a string, or a list of its arguments"
            )
        if not tokens or tokens[0] != "flower-supernode":
            raise CheckFailed(
                "supernode_command should start flower-supernode, the client side that each "
                "student runs (flower-superlink is the teacher's server)"
            )
        if "--insecure" in tokens:
            raise CheckFailed(
                "supernode_command uses --insecure: across a network anyone could read the "
                "updates or pose as the server. Use TLS: --root-certificates ca.crt"
            )
        if "--root-certificates" not in tokens:
            raise CheckFailed(
                "supernode_command has no --root-certificates ca.crt: the teacher's certificate "
                "is how a laptop checks the server and encrypts the link (TLS)"
            )
        at = tokens.index("--superlink") + 1 if "--superlink" in tokens else None
        address = tokens[at] if at is not None and at < len(tokens) else ""
        host, _, given_port = address.rpartition(":")
        if host in ("127.0.0.1", "localhost", "0.0.0.0"):
            raise CheckFailed(
                f"supernode_command connects to {host}, the student's own laptop: the SuperLink "
                "runs on the teacher's machine, teacher_ip"
            )
        if host != ip or given_port != str(port):
            raise CheckFailed(
                "supernode_command's --superlink is not the teacher's SuperLink: it takes "
                "HOST:PORT, the teacher's IP address and the SuperLink's port"
            )
        config = _node_config(tokens)
        if config is None:
            raise CheckFailed(
                "supernode_command has no --node-config: it says which partition the laptop "
                'holds, --node-config "partition-id=... num-partitions=..."'
            )
        if "num-partitions" not in config and any(t.startswith("num-partitions=") for t in tokens):
            raise CheckFailed(
                "supernode_command's node config falls apart into several arguments: quote it, "
                "it is one argument with two settings"
            )
        if "partition-id" not in config or "num-partitions" not in config:
            raise CheckFailed(
                "supernode_command's --node-config needs both partition-id and num-partitions"
            )
        if config["partition-id"] == str(k + 1):
            raise CheckFailed(
                "supernode_command counts partitions from 1: partition-id runs from 0 to "
                "num_students − 1, student k holds partition k"
            )
        if config["partition-id"] != str(k):
            raise CheckFailed(
                f"supernode_command gives student {k} partition-id={config['partition-id']}: "
                "student k holds partition k"
            )
        if config["num-partitions"] != str(n):
            raise CheckFailed(
                f"supernode_command says num-partitions={config['num-partitions']} for "
                f"{n} students: it is the number of students, the run's num_clients (the "
                "ServerApp refuses a SuperNode whose num-partitions differs)"
            )
    passed(
        "supernode_command: student k joins teacher_ip:port over TLS and holds partition k of "
        "num_students"
    )
