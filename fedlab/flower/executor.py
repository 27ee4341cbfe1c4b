"""A Flower SuperExec that forks its task processes from one that has already imported fedlab.

Flower runs every ServerApp run and every ClientApp message in a fresh process: its SuperExec
starts ``flwr-serverapp --token ...`` / ``flwr-clientapp --token ...``, and each of those
imports TensorFlow again — about 8 s of CPU per message on a 2-core laptop, which is most of a
round. This executor does the same job with ``os.fork()``: it imports TensorFlow, Keras and
fedlab once (no TensorFlow op runs in it, so its children may use TensorFlow), and for each
task forks a child that runs Flower's own ``flwr-clientapp`` / ``flwr-serverapp`` entry point
with that task's token. Isolation is Flower's (one process per task, the ClientApp's state goes
back to the SuperNode in the task's Context); only the start-up cost goes.

Start it beside a SuperNode (or SuperLink) started with ``--isolation process``, where you
would start ``flower-superexec``::

    flower-supernode --insecure --superlink 127.0.0.1:9092 --isolation process \
        --host 127.0.0.1 --port 9094 --node-config "partition-id=0 num-partitions=3"
    python -m fedlab.flower.executor --runtime-api-address 127.0.0.1:9094 --insecure

It polls for tasks every ``FLWR_SUPEREXEC_TASK_POLL_INTERVAL`` seconds (default here 0.25; Flower's
own default is 1). Linux and macOS only (``os.fork``). Written for Flower 1.42 (it uses
``flwr.supercore.superexec``'s executor interface, which is not public API).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

__all__ = ["ForkExecutor", "main"]

_COMMANDS = {"flwr-clientapp": "flwr_clientapp", "flwr-serverapp": "flwr_serverapp"}


def _task_args(spec) -> list[str]:
    """The command line Flower's SubprocessExecutor would start for ``spec``."""
    args = [str(spec.task_type), "--runtime-api-address", spec.runtime_api_address]
    args += ["--token", spec.token]
    if spec.insecure:
        args.append("--insecure")
    elif spec.root_certificates_path is not None:
        args += ["--root-certificates", spec.root_certificates_path]
    if spec.parent_pid is not None:
        args += ["--parent-pid", str(spec.parent_pid)]
    if spec.runtime_dependency_install:
        args.append("--allow-runtime-dependency-installation")
    return args


def _entry_point(command: str):
    if command == "flwr-clientapp":
        from flwr.supernode.cli.flwr_clientapp import flwr_clientapp

        return flwr_clientapp
    from flwr.superlink.cli.flwr_serverapp import flwr_serverapp

    return flwr_serverapp


class ForkExecutor:
    """Flower's executor interface (``launch``, ``reconcile``, ``close``...) with ``os.fork``.

    Example:
        >>> executor = ForkExecutor()
        >>> executor.children
        set()
    """

    def __init__(self) -> None:
        self.children: set[int] = set()

    def get_eligible_capacity(self, supported_task_types, *, insecure=False, **kwargs):
        """Every supported task type can start at once (as in Flower's SubprocessExecutor)."""
        return supported_task_types, set()

    def wait_for_capacity(self, task_type=None, **kwargs) -> None:
        """Nothing to wait for."""

    def launch(self, spec):
        """Fork a child that runs the task's Flower entry point, as its own process."""
        from flwr.supercore.superexec.executor.types import LaunchResult

        command = str(spec.task_type)
        if command not in _COMMANDS:
            return LaunchResult.failed(f"fedlab's ForkExecutor cannot run {command!r} tasks")
        args = _task_args(spec)
        pid = os.fork()
        if pid == 0:  # the child: becomes `flwr-clientapp ...` / `flwr-serverapp ...`
            code = 1
            try:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    signal.signal(sig, signal.SIG_DFL)  # Flower's entry point sets its own
                sys.argv = args
                _entry_point(command)()
                code = 0
            except SystemExit as done:
                code = done.code if isinstance(done.code, int) else 1
            except BaseException:  # noqa: BLE001 - reported, then the child ends
                import traceback

                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        self.children.add(pid)
        return LaunchResult.accepted()

    def reconcile(self) -> None:
        """Reap children that have ended (no zombies left behind)."""
        for pid in list(self.children):
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done = pid
            if done:
                self.children.discard(pid)

    def close(self) -> None:
        """End the children still running (the executor is shutting down)."""
        for pid in list(self.children):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        self.reconcile()


def _retry_pulls_sooner(seconds: float = 0.1) -> None:
    """A task process asks for its message's contents as soon as it starts, often before the
    SuperNode has them; Flower then waits 1 s (doubling) before asking again. Start at
    ``seconds`` instead (``pull_and_inflate_object_from_tree``'s keyword default)."""
    from flwr.supercore.inflatable import inflatable_utils

    defaults = inflatable_utils.pull_and_inflate_object_from_tree.__kwdefaults__
    if defaults is not None and "initial_backoff" in defaults:
        defaults["initial_backoff"] = seconds


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m fedlab.flower.executor",
        description="Flower SuperExec that forks fedlab's ClientApp/ServerApp tasks.",
    )
    parser.add_argument(
        "--runtime-api-address",
        action="append",
        required=True,
        help="HOST:PORT of a SuperNode's or SuperLink's Runtime API; repeat it to serve several "
        "from one import (one forked SuperExec each)",
    )
    parser.add_argument("--insecure", action="store_true", help="connect without TLS")
    parser.add_argument("--root-certificates", default=None, help="PEM CA file for TLS")
    return parser.parse_args(argv)


def _serve(address: str, args: argparse.Namespace) -> None:
    from flwr.supercore.superexec import run_superexec as superexec

    executor = ForkExecutor()
    superexec.get_executor = lambda *a, **k: executor  # Flower picks executors by type only
    superexec.run_superexec(
        runtime_api_address=address,
        insecure=args.insecure,
        root_certificates_path=args.root_certificates,
        runtime_dependency_install=False,
    )


def main(argv: list[str] | None = None) -> None:
    """Import fedlab once, then serve each address's tasks (a forked SuperExec per address)."""
    args = _parse_args(argv)
    os.environ.setdefault("FLWR_SUPEREXEC_TASK_POLL_INTERVAL", "0.25")
    import sklearn.datasets  # noqa: F401 - the digits loader's imports, also paid once
    import sklearn.model_selection  # noqa: F401
    import tensorflow  # noqa: F401 - the import every task process would otherwise repeat
    from flwr.supercore.superexec import run_superexec  # noqa: F401
    from flwr.superlink.cli import flwr_serverapp  # noqa: F401
    from flwr.supernode.cli import flwr_clientapp  # noqa: F401

    import fedlab.flower  # noqa: F401
    import fedlab.steps  # noqa: F401

    _retry_pulls_sooner()
    if len(args.runtime_api_address) == 1:
        print("fedlab.flower.executor: ready", flush=True)
        _serve(args.runtime_api_address[0], args)
        return
    servers = {}
    for address in args.runtime_api_address:
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                _serve(address, args)
            except SystemExit as done:
                code = done.code if isinstance(done.code, int) else 1
            finally:
                os._exit(code)
        servers[pid] = address
        print(f"fedlab.flower.executor: serving {address} as pid {pid}", flush=True)
    print("fedlab.flower.executor: ready", flush=True)

    def stop(signum, frame):
        for pid in servers:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    while servers:
        try:
            pid, _ = os.wait()
        except ChildProcessError:
            break
        servers.pop(pid, None)


if __name__ == "__main__":
    main()
