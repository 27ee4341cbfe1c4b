"""A Flower federation on this machine, its processes started and ended for you
(``14_from_simulation_to_deployment``).

:class:`LocalFederation` starts a SuperLink and one SuperNode per client on 127.0.0.1, each a
subprocess in a session of its own, runs a :class:`~fedlab.flower.config.FlowerConfig` on them
with ``flwr run`` (the apps of :mod:`fedlab.flower.apps`) and returns its
:class:`~fedlab.history.History`. It can kill a SuperNode mid-run and start it again, and it
ends every process it started, descendants included: when it stops, when its ``with`` block
fails, and — through :mod:`fedlab.flower.watchdog` — when the Python process that owns it dies.
Two of those processes are fedlab's own, for short rounds on a laptop:
:mod:`fedlab.flower.executor` forks the task processes from one TensorFlow import, and
:mod:`fedlab.flower.node` is a SuperNode that asks for work every 0.5 s. Needs
``pip install 'fedlab-edu[flower]'``.

Example:
    >>> with LocalFederation(3) as federation:  # doctest: +SKIP
    ...     history = federation.run(FlowerConfig(num_clients=3, num_rounds=2))
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from fedlab.flower.apps import INSTALL_HINT, _toml_value, write_app
from fedlab.flower.config import FlowerConfig
from fedlab.flower.watchdog import descendants as _descendants
from fedlab.flower.watchdog import proc_table as _proc_table
from fedlab.flower.watchdog import running as _running
from fedlab.validate import check_choice, check_float, check_int


def _end_processes(
    processes: list[subprocess.Popen],
    seen: set[int],
    find=None,
    grace: float = 10.0,
    polite: bool = True,
) -> None:
    """End ``processes``, every descendant, every process in their process groups and whatever
    ``find()`` returns (e.g. processes re-parented away from the tree), all together: SIGTERM
    first, SIGKILL for what is left after ``grace`` seconds (``polite=False``: SIGKILL at once).
    Each process started in a session of its own, so its group is not ours; Flower's
    ``flower-superexec`` starts yet another session, hence the descendants' groups too. Every
    pid met is remembered (and still ended if its parent goes first) and added to ``seen``."""
    own = {os.getpgid(0), 0}
    groups = {p.pid for p in processes} - own
    met: set[int] = set()  # only this call's: an old pid may belong to someone else by now

    def left() -> set[int]:
        table = _proc_table()
        children: dict[int, list[int]] = {}
        for pid, (parent, _, _) in table.items():
            children.setdefault(parent, []).append(pid)
        todo = [p.pid for p in processes if p.poll() is None]
        todo += [
            *met,
            *(find() if find else ()),
            *(pid for pid in table if table[pid][1] in groups),
        ]
        found: set[int] = set()
        while todo:
            pid = todo.pop()
            if pid not in found and pid in table and table[pid][2] != "Z" and pid != os.getpid():
                found.add(pid)
                todo += children.get(pid, [])
        met.update(found)
        seen.update(found)
        groups.update(table[pid][1] for pid in found)
        groups.difference_update(own)
        return found

    for sig in (signal.SIGTERM, signal.SIGKILL) if polite else (signal.SIGKILL,):
        pids = left()
        for group in list(groups):
            try:
                os.killpg(group, sig)
            except (ProcessLookupError, PermissionError):
                pass
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace
        while left() and time.monotonic() < deadline:
            time.sleep(0.05)
        if not left():
            break
    for process in processes:
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalFederation:
    """A SuperLink and ``num_nodes`` SuperNodes on 127.0.0.1, as subprocesses, for one session.

    SuperNode ``i`` holds partition ``i`` of ``num_nodes``. Each process runs in its own process
    group and is ended, children included, by :meth:`stop` (also when the ``with`` block fails).
    Nothing listens beyond 127.0.0.1; Flower's telemetry and update checks are off.

    Each ServerApp run and each message to a ClientApp runs in a process of its own, as Flower
    does it. ``task_processes="fork"`` (default) forks those processes from
    :mod:`fedlab.flower.executor`, which imports TensorFlow once when the federation starts;
    ``"spawn"`` lets Flower start a new Python for each (``--isolation subprocess``), which
    imports TensorFlow again for every message (~8 s of CPU each on a 2-core laptop).

    Args:
        num_nodes: SuperNodes to start (the run's ``num_clients``).
        start_timeout: seconds to wait for the SuperLink to become healthy and the task
            executor to finish its imports.
        workdir: folder for logs, the app and histories (default: a new temporary folder).
        task_processes: ``"fork"`` or ``"spawn"``, see above.
        fast_polling: SuperNodes ask the SuperLink for work every 0.5 s
            (:mod:`fedlab.flower.node`) instead of Flower's fixed 3 s when idle.

    Example:
        >>> with LocalFederation(3) as federation:  # doctest: +SKIP
        ...     history = federation.run(FlowerConfig(num_clients=3, num_rounds=2))
    """

    def __init__(
        self,
        num_nodes: int,
        start_timeout: float = 60.0,
        workdir: str | os.PathLike | None = None,
        task_processes: str = "fork",
        fast_polling: bool = True,
    ):
        self.num_nodes = check_int("num_nodes", num_nodes, low=1, high=100)
        self.task_processes = check_choice("task_processes", task_processes, ("fork", "spawn"))
        if not isinstance(fast_polling, bool):
            raise TypeError(f"fast_polling must be True or False, got {fast_polling!r}")
        self.fast_polling = fast_polling
        self.start_timeout = check_float(
            "start_timeout", start_timeout, low=0.0, low_inclusive=False
        )
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="fedlab-flower-"))
        self.bin = Path(sys.executable).parent
        self.processes: dict[str, subprocess.Popen] = {}
        self._logs: dict[str, object] = {}
        self.link_port = 0
        self.node_ports: dict[int, int] = {}
        self._executor_of: dict[int, int] = {}  # partition -> pid serving its tasks (fork)
        self._runs = 0
        self._seen: set[int] = set()  # descendants found when processes were ended
        self.history_path: Path | None = None  # the last run's History JSON (kept on failure)
        self._watchdog: subprocess.Popen | None = None

    # -- processes
    def _env(self) -> dict[str, str]:
        return dict(
            os.environ,
            FLWR_HOME=str(self.workdir / "flwr_home"),
            FLWR_TELEMETRY_ENABLED="0",
            FLWR_DISABLE_UPDATE_CHECK="1",
            TF_CPP_MIN_LOG_LEVEL="3",
            TF_ENABLE_ONEDNN_OPTS="0",
            PYTHONHASHSEED="0",
            CUDA_VISIBLE_DEVICES=os.environ.get("CUDA_VISIBLE_DEVICES", ""),
            PYTHONUNBUFFERED="1",
            TF_NUM_INTRAOP_THREADS="1",
            TF_NUM_INTEROP_THREADS="1",
            PATH=f"{self.bin}{os.pathsep}{os.environ.get('PATH', '')}",
        )

    def _tool(self, name: str) -> str:
        path = self.bin / name
        if not path.exists():
            found = shutil.which(name)
            if found is None:
                raise FileNotFoundError(f"{name} not found: {INSTALL_HINT}")
            return found
        return str(path)

    def _start(self, name: str, command: list[str]) -> subprocess.Popen:
        old = self._logs.pop(name, None)
        if old is not None:
            old.close()
        log = open(self.workdir / f"{name}.log", "a")  # noqa: SIM115 - closed in _end()
        self._logs[name] = log
        process = subprocess.Popen(
            command,
            env=self._env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # own process group: its children end with it
            cwd=self.workdir,
        )
        self.processes[name] = process
        self._watch("add", process.pid)
        return process

    def _watch(self, command: str, argument: object) -> None:
        """Tell the watchdog (:mod:`fedlab.flower.watchdog`) what to end if this process dies."""
        watchdog = self._watchdog
        if watchdog is None or watchdog.poll() is not None:
            return
        try:
            watchdog.stdin.write(f"{command} {argument}\n")
            watchdog.stdin.flush()
        except (BrokenPipeError, ValueError):
            pass

    def _start_watchdog(self) -> None:
        """A process that ends this federation's processes (and removes its temporary folder)
        if the Python process that owns it dies without stopping it: a killed kernel."""
        self._watchdog = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("watchdog.py"))],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            text=True,
            start_new_session=True,  # not ended with the owner's process group
        )
        if self._own_workdir:
            self._watch("folder", self.workdir)

    def _stop_watchdog(self) -> None:
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is None:
            return
        try:
            watchdog.stdin.write("stop\n")
            watchdog.stdin.close()
        except (BrokenPipeError, ValueError):
            pass
        try:
            watchdog.wait(timeout=10)
        except subprocess.TimeoutExpired:
            watchdog.kill()
            watchdog.wait()

    def _end(self, *names: str, grace: float = 10.0, polite: bool = True) -> None:
        """End processes ``names`` together, with their process groups and every descendant
        (:func:`_end_processes`); close their logs."""
        processes = [self.processes[n] for n in names if n in self.processes]
        _end_processes(processes, self._seen, grace=grace, polite=polite)
        for name in names:
            log = self._logs.pop(name, None)
            if log is not None:
                log.close()

    def _wait_healthy(self, port: int) -> None:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.processes["superlink"].poll() is not None:
                raise RuntimeError(f"flower-superlink exited: see {self.workdir / 'superlink.log'}")
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=0.5)
                return
            except OSError:
                time.sleep(0.1)
        raise TimeoutError(f"the SuperLink was not healthy within {self.start_timeout:g} s")

    def start(self) -> LocalFederation:
        """Start the SuperLink and every SuperNode; return self. They are stopped by
        :meth:`stop`, at the end of a ``with`` block, or when this Python process exits."""
        atexit.register(self.stop)
        try:
            self._start_watchdog()
            self.link_port = _free_port()
            ports = {i: _free_port() for i in range(self.num_nodes)}
            if self.task_processes == "fork":  # its imports overlap the SuperLink's start
                executor = self._launch_executor("executor", [self.link_port, *ports.values()])
            self._start(
                "superlink",
                [
                    self._tool("flower-superlink"),
                    "--insecure",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.link_port),
                    "--isolation",
                    self._isolation,
                    "--disable-runtime-dependency-installation",
                ],
            )
            self._wait_healthy(self.link_port)
            home = self.workdir / "flwr_home"
            home.mkdir(exist_ok=True)
            (home / "config.toml").write_text(
                '[superlink]\ndefault = "local"\n\n[superlink.local]\n'
                f'address = "127.0.0.1:{self.link_port}"\ninsecure = true\n'
            )
            for i in range(self.num_nodes):
                self.start_node(i, executor=False, port=ports[i])
            if self.task_processes == "fork":
                self._await_executor("executor", executor)
        except BaseException:
            self.stop()
            raise
        return self

    @property
    def _isolation(self) -> str:
        return "process" if self.task_processes == "fork" else "subprocess"

    def _launch_executor(self, name: str, ports: list[int]) -> subprocess.Popen:
        """Start fedlab.flower.executor for the Runtime APIs on ``ports``."""
        command = [sys.executable, "-m", "fedlab.flower.executor", "--insecure"]
        for port in ports:
            command += ["--runtime-api-address", f"127.0.0.1:{port}"]
        return self._start(name, command)

    def _await_executor(self, name: str, process: subprocess.Popen) -> None:
        """Wait until executor ``name`` has imported fedlab; note which pid serves which node."""
        log_path = self.workdir / f"{name}.log"
        deadline = time.monotonic() + max(self.start_timeout, 120.0)
        while True:
            text = log_path.read_text() if log_path.exists() else ""
            if "fedlab.flower.executor: ready" in text:
                break
            if process.poll() is not None:
                raise RuntimeError(f"fedlab.flower.executor exited: see {log_path}\n{text[-2000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"fedlab.flower.executor was not ready in time: see {log_path}")
            time.sleep(0.1)
        by_address = dict(re.findall(r"serving 127\.0\.0\.1:(\d+) as pid (\d+)", text))
        for i, port in self.node_ports.items():
            if str(port) in by_address:
                self._executor_of[i] = int(by_address[str(port)])
            elif name == f"executor{i}":
                self._executor_of[i] = process.pid

    def start_node(self, i: int, executor: bool = True, port: int | None = None) -> None:
        """Start (or restart) the SuperNode of partition ``i``; a restart gets a new node id
        (and, with ``task_processes="fork"``, its own task executor unless ``executor=False``)."""
        i = check_int("i", i, low=0, high=self.num_nodes - 1)
        name = f"supernode{i}"
        if name in self.processes and self.processes[name].poll() is None:
            raise RuntimeError(f"SuperNode {i} is already running")
        port = port or _free_port()
        self.node_ports[i] = port
        command = [sys.executable, str(Path(__file__).with_name("node.py"))]
        self._start(
            name,
            [
                *(command if self.fast_polling else [self._tool("flower-supernode")]),
                "--insecure",
                "--superlink",
                f"127.0.0.1:{self.link_port}",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--isolation",
                self._isolation,
                "--node-config",
                f"partition-id={i} num-partitions={self.num_nodes}",
            ],
        )
        if executor and self.task_processes == "fork":
            name = f"executor{i}"
            self._await_executor(name, self._launch_executor(name, [port]))

    def kill_node(self, i: int) -> None:
        """Kill SuperNode ``i`` at once (SIGKILL), as a crash would."""
        i = check_int("i", i, low=0, high=self.num_nodes - 1)
        process = self.processes[f"supernode{i}"]
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait()
        serving = self._executor_of.pop(i, None)
        if serving is not None:  # its task executor goes with it, tasks in flight included
            for pid in [serving, *_descendants(serving)]:
                self._seen.add(pid)
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def describe(self) -> list[tuple[str, int, str]]:
        """``(name, pid, what it is)`` for each process this federation started and still runs.

        Example:
            >>> with LocalFederation(2) as federation:  # doctest: +SKIP
            ...     for name, pid, what in federation.describe():
            ...         print(name, what)
        """
        roles = {"superlink": f"SuperLink on 127.0.0.1:{self.link_port} (the server side)"}
        for i, port in self.node_ports.items():
            roles[f"supernode{i}"] = f"SuperNode of partition {i} (runtime API 127.0.0.1:{port})"
            roles[f"executor{i}"] = f"forks the task processes of SuperNode {i}"
        roles["executor"] = "fedlab.flower.executor: forks every ServerApp/ClientApp task process"
        return [
            (name, process.pid, roles.get(name, "flwr run: submits the run to the SuperLink"))
            for name, process in self.processes.items()
            if process.poll() is None
        ]

    def messages_received(self) -> dict[int, dict[str, int]]:
        """Messages each SuperNode received so far, by type (from its log), e.g.
        ``{0: {"query": 1, "train": 3}, ...}``."""
        counts: dict[int, dict[str, int]] = {}
        for i in sorted(self.node_ports):
            path = self.workdir / f"supernode{i}.log"
            text = path.read_text() if path.exists() else ""
            found = re.findall(r"Receiving: (\w+) message", text)
            counts[i] = {kind: found.count(kind) for kind in sorted(set(found))}
        return counts

    def running(self) -> list[int]:
        """Ids of this federation's processes (and their descendants) still running."""
        return [pid for pid in self.pids() if _running(pid)]

    def pids(self) -> list[int]:
        """Ids of every process this federation started, and of their descendants seen so far
        (``flwr-serverapp``, ``flwr-clientapp``, ``flower-superexec``)."""
        found = set(self._seen) | {p.pid for p in self.processes.values()}
        for process in self.processes.values():
            if process.poll() is None:
                found.update(_descendants(process.pid))
        return sorted(found)

    def stop(self) -> None:
        """End every process group (SIGTERM, then SIGKILL) and wait for them; remove the
        temporary folder the federation made (not a ``workdir`` you gave)."""
        executors = [name for name in self.processes if name.startswith("executor")]
        self._end(*executors, polite=False)  # no state to save: a task in flight is lost anyway
        self._end(*(name for name in self.processes if name not in executors + ["superlink"]))
        self._end("superlink")
        self._stop_watchdog()
        if self._own_workdir:  # its logs and histories: a temporary folder of this federation
            shutil.rmtree(self.workdir, ignore_errors=True)
        atexit.unregister(self.stop)

    def __enter__(self) -> LocalFederation:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- runs
    def run(self, config: FlowerConfig, timeout: float = 900.0, on_round=None):
        """Run ``config`` with ``flwr run`` and return its :class:`~fedlab.history.History`.

        ``on_round(history_so_far)`` is called each time the ServerApp saves a new round (e.g.
        to kill a node). Raises ``RuntimeError`` with the ServerApp's error if the run failed.
        """
        from fedlab.history import History

        if not isinstance(config, FlowerConfig):
            raise TypeError(f"config must be a FlowerConfig, got {type(config).__name__}")
        if config.num_clients != self.num_nodes:
            raise ValueError(
                f"config.num_clients={config.num_clients} must equal the federation's "
                f"num_nodes={self.num_nodes}"
            )
        timeout = check_float("timeout", timeout, low=0.0, low_inclusive=False)
        self._runs += 1
        run_dir = self.workdir / f"run{self._runs}"
        app_dir = write_app(run_dir / "app", config)
        history_path = run_dir / "history.json"
        self.history_path = history_path
        overrides = {**config.to_run_config(), "history-path": str(history_path)}
        run_config = " ".join(f"{k}={_toml_value(v)}" for k, v in overrides.items())
        name = f"flwr-run{self._runs}"
        process = self._start(
            name,
            [
                self._tool("flwr"),
                "run",
                str(app_dir),
                "local",
                "--stream",
                "--run-config",
                run_config,
            ],
        )
        deadline = time.monotonic() + timeout
        seen = 0
        error_file = Path(str(history_path) + ".error")
        try:
            while True:
                if history_path.exists() and on_round is not None:
                    try:
                        history = History.load(history_path)
                    except ValueError:  # being written
                        history = None
                    if history is not None and len(history) > seen:
                        seen = len(history)
                        on_round(history)
                if error_file.exists():
                    raise RuntimeError(f"the Flower run failed: {error_file.read_text().strip()}")
                if history_path.exists():
                    try:
                        history = History.load(history_path)
                    except ValueError:
                        history = None
                    if history is not None and len(history) == config.num_rounds:
                        if on_round is not None and len(history) > seen:
                            on_round(history)
                        return history
                if process.poll() is not None and not history_path.exists():
                    raise RuntimeError(
                        f"flwr run exited ({process.returncode}) before the ServerApp wrote a "
                        f"history: see {self.workdir / (name + '.log')}"
                    )
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the Flower run did not finish within {timeout:g} s")
                time.sleep(0.2)
        finally:
            try:  # `flwr run --stream` ends once the run has finished
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
            self._end(name)

    def log(self, name: str = "superlink") -> str:
        """The text of one process's log (``superlink``, ``supernode0``, ``flwr-run1``...)."""
        return (self.workdir / f"{name}.log").read_text()
