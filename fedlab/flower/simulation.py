"""fedlab's algorithms on Flower's *simulation runtime* (Ray), on one machine
(``14_from_simulation_to_deployment``).

Flower runs an app in one of two runtimes. The *deployment runtime* (:class:`fedlab.flower.
LocalFederation`) is a SuperLink and one SuperNode per client, each a process of its own that
talks to the others over HTTP; a SuperNode's ``--node-config`` names its partition. The
*simulation runtime* runs everything on one machine: the ServerApp in a thread, and the
ClientApps in a small pool of `Ray <https://www.ray.io>`_ actors (worker processes) that take
the virtual SuperNodes' messages in turn; Flower itself gives each virtual SuperNode its
``partition-id`` and ``num-partitions``. An actor imports TensorFlow once and then serves many
clients, so after Ray's start a round costs about a second (``python3 dev.py bench flower``:
1.3 s a round against the engine's 24 ms and the forked deployment's 4 s, 3 clients, 2 cores),
while the apps are the very ServerApp and ClientApp code that :mod:`fedlab.flower` deploys. Same
:class:`~fedlab.flower.FlowerConfig`, same History numbers as :meth:`FlowerConfig.simulate`
(``tests/test_flower_simulation.py``).

:func:`run_simulation_runtime` starts the whole simulation in a child process of its own process
group, with Ray bound to 127.0.0.1, its logs in a private folder, and Flower's telemetry off;
when the run ends, fails or times out, every process it started (Ray's ``gcs_server``,
``raylet``, agents and ``ray::`` actors included) is ended. It needs
``pip install "flwr[simulation]>=1.42,<1.43"`` (Flower with Ray; ``fedlab-edu[flower-simulation]``
and the test extras include it); this module imports without either.

Example:
    >>> from fedlab.flower import FlowerConfig
    >>> history = run_simulation_runtime(FlowerConfig(num_clients=3, num_rounds=2))  # doctest: +SKIP
    >>> history.rounds[-1].clients  # doctest: +SKIP
    (0, 1, 2)
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from fedlab.flower.config import FlowerConfig
from fedlab.flower.federation import _end_processes
from fedlab.flower.watchdog import proc_table as _proc_table
from fedlab.validate import check_float, check_int

if TYPE_CHECKING:
    from fedlab.history import History

SIMULATION_HINT = 'pip install "flwr[simulation]>=1.42,<1.43"'
RUN_MARKER = "FEDLAB_SIMULATION_RUN"  # environment variable naming the run of every process
START_ATTEMPTS = 3  # Ray's start-up gives its raylet a fixed 30 s; retry it on a busy machine

__all__ = ["RUN_MARKER", "SIMULATION_HINT", "START_ATTEMPTS", "run_simulation_runtime"]


def _missing_modules() -> list[str]:
    """The modules of Flower's simulation runtime that this Python cannot import."""
    return [name for name in ("flwr", "ray") if importlib.util.find_spec(name) is None]


def _env(token: str) -> dict[str, str]:
    """The child's environment: quiet, CPU only, Ray on 127.0.0.1, marked with ``token``."""
    return dict(
        os.environ,
        FLWR_TELEMETRY_ENABLED="0",
        FLWR_DISABLE_UPDATE_CHECK="1",
        TF_CPP_MIN_LOG_LEVEL="3",
        TF_ENABLE_ONEDNN_OPTS="0",
        PYTHONHASHSEED="0",
        PYTHONUNBUFFERED="1",
        CUDA_VISIBLE_DEVICES="",
        TF_NUM_INTRAOP_THREADS="1",
        TF_NUM_INTEROP_THREADS="1",
        # Ray: "no cluster" makes every Ray process bind 127.0.0.1 (it binds all interfaces
        # otherwise); no usage reports; keep CUDA_VISIBLE_DEVICES as set above
        RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0",
        RAY_USAGE_STATS_ENABLED="0",
        RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO="0",
        # start worker processes when actors need them, not while the raylet registers
        RAY_enable_worker_prestart="0",
        RAY_worker_register_timeout_seconds="120",
        **{RUN_MARKER: token},
    )


def _marked(token: str) -> list[int]:
    """Ids of running processes whose environment carries ``RUN_MARKER=token`` (Linux)."""
    needle = f"{RUN_MARKER}={token}".encode()
    found = []
    for pid, (_, _, state) in _proc_table().items():
        if state == "Z" or pid == os.getpid():
            continue
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            found.append(pid)
    return found


def run_simulation_runtime(
    config: FlowerConfig,
    *,
    cpus_per_client: float = 1.0,
    num_cpus: int | None = None,
    workdir: str | os.PathLike | None = None,
    timeout: float = 600.0,
) -> History:
    """Run ``config`` on Flower's simulation runtime (Ray) in a child process; return its
    :class:`~fedlab.history.History`.

    ``config.num_clients`` virtual SuperNodes share ``num_cpus // cpus_per_client`` Ray actors
    that run fedlab's ClientApp (:mod:`fedlab.flower`); fedlab's ServerApp runs in the child's
    main process. Every process of the run is ended before this returns or raises, and none
    listens beyond 127.0.0.1. Compare with :meth:`FlowerConfig.simulate` (fedlab's engine,
    same numbers) and :meth:`fedlab.flower.LocalFederation.run` (one process per SuperNode).

    Args:
        config: the run's settings.
        cpus_per_client: CPUs Ray reserves for each ClientApp actor, in (0, ``num_cpus``].
        num_cpus: CPUs Ray may use (default: all of this machine's).
        workdir: folder for the history, the child's log (``simulation.log``) and Ray's logs
            (default: a temporary folder, removed after a successful run).
        timeout: seconds to wait for the whole run, Ray's start included.

    Raises:
        ImportError: Flower or Ray is missing (``pip install "flwr[simulation]>=1.42,<1.43"``).
        RuntimeError: the run failed (the ServerApp's error, or where to find the log).
        TimeoutError: it did not finish within ``timeout`` seconds.

    Example:
        >>> config = FlowerConfig(num_clients=3, num_rounds=2)
        >>> history = run_simulation_runtime(config)  # doctest: +SKIP
        >>> len(history), history.config["runtime"]  # doctest: +SKIP
        (2, 'flower')
    """
    from fedlab.history import History

    if not isinstance(config, FlowerConfig):
        raise TypeError(f"config must be a FlowerConfig, got {type(config).__name__}")
    machine_cpus = os.cpu_count() or 1
    if num_cpus is None:
        num_cpus = machine_cpus
    num_cpus = check_int("num_cpus", num_cpus, low=1, high=max(1024, machine_cpus))
    cpus_per_client = check_float(
        "cpus_per_client", cpus_per_client, 0.0, float(num_cpus), low_inclusive=False
    )
    timeout = check_float("timeout", timeout, low=0.0, low_inclusive=False)
    missing = _missing_modules()
    if missing:
        raise ImportError(
            f"Flower's simulation runtime needs {' and '.join(missing)}: {SIMULATION_HINT}"
        )

    own_workdir = workdir is None
    folder = Path(workdir or tempfile.mkdtemp(prefix="fedlab-flower-sim-"))
    folder.mkdir(parents=True, exist_ok=True)
    # Ray's socket paths must stay under ~107 characters: its folder is short, in the temp dir
    ray_dir = Path(tempfile.mkdtemp(prefix="fedlab-ray-"))
    history_path = folder / "history.json"
    error_path = Path(f"{history_path}.error")
    for stale in (history_path, error_path):
        stale.unlink(missing_ok=True)
    spec = {
        "run_config": {
            **config.to_run_config(),
            "history-path": str(history_path),
            "wait-nodes-timeout": 60.0,
        },
        "num_supernodes": config.num_clients,
        "cpus_per_client": cpus_per_client,
        "num_cpus": num_cpus,
        "ray_dir": str(ray_dir),
    }
    spec_path = folder / "simulation.json"
    spec_path.write_text(json.dumps(spec, indent=1))
    log_path = folder / "simulation.log"
    token = uuid.uuid4().hex
    ok = False
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "fedlab.flower.simulation", str(spec_path)],
            env=_env(token),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group, ended as a whole
            cwd=folder,
        )
        try:
            deadline = time.monotonic() + timeout
            while process.poll() is None:
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"the Flower simulation did not finish within {timeout:g} s: see {log_path}"
                    )
                time.sleep(0.2)
            if error_path.exists():
                raise RuntimeError(
                    f"the Flower simulation failed: {error_path.read_text().strip()} "
                    f"(log: {log_path})"
                )
            history = History.load(history_path) if history_path.exists() else None
            if history is None or len(history) != config.num_rounds or process.returncode:
                tail = log_path.read_text()[-2000:]
                raise RuntimeError(
                    f"the Flower simulation exited ({process.returncode}) without a complete "
                    f"history: see {log_path}\n{tail}"
                )
            ok = True
        finally:
            # Ray re-parents some of its processes: those are found by the run's marker
            _end_processes([process], set(), find=lambda: _marked(token))
            if ok:
                shutil.rmtree(ray_dir, ignore_errors=True)
                if own_workdir:
                    shutil.rmtree(folder, ignore_errors=True)
    return history


# -- the child process ------------------------------------------------------------------------


def _apps(run_config: dict):
    """fedlab's ServerApp and ClientApp for the simulation runtime, given the run's settings.

    ``run_simulation`` hands both an empty ``context.run_config`` (it has no app folder), and a
    ClientApp may not change it, so the client functions get a Context that shares the node's
    ``node_config`` (Flower's ``partition-id``) and ``state`` (SCAFFOLD's control variate,
    error-feedback residuals) and carries the run's settings."""
    from flwr.app import Context
    from flwr.clientapp import ClientApp
    from flwr.serverapp import ServerApp

    from fedlab.flower import apps

    server = ServerApp()

    @server.main()
    def _server(grid, context: Context) -> None:
        context.run_config = dict(run_config)
        apps._server_main(grid, context)

    def _with_config(context: Context) -> Context:
        return Context(
            run_id=context.run_id,
            node_id=context.node_id,
            node_config=context.node_config,
            state=context.state,
            run_config=dict(run_config),
        )

    client = ClientApp()

    @client.train()
    def _train(msg, context: Context):
        return apps._client_train(msg, _with_config(context))

    @client.query()
    def _query(msg, context: Context):
        return apps._client_query(msg, _with_config(context))

    return server, client


class _NoRunSimulationDeprecation(logging.Filter):
    """Drop Flower's notice that ``run_simulation`` is deprecated in favour of ``flwr run``:
    documented Flower behaviour, and this module is the in-process use it still supports."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        return not ("DEPRECATED FEATURE" in text and "run_simulation" in text)


def _start_ray(ray, init_args: dict) -> None:
    """``ray.init`` with up to :data:`START_ATTEMPTS` tries (as Flower would call it).

    Ray waits a fixed 30 s for its raylet to register, which needs two Python agents to finish
    their imports; on a busy 2-core machine that can take longer, so a failed start is shut
    down and tried again."""
    # what Flower's RayBackend passes: Ray's workers see this process's sys.path
    pythonpath = os.pathsep.join(sys.path)
    if os.environ.get("PYTHONPATH"):
        pythonpath = f"{pythonpath}{os.pathsep}{os.environ['PYTHONPATH']}"
    os.environ["PYTHONPATH"] = pythonpath
    errors = []
    for attempt in range(1, START_ATTEMPTS + 1):
        try:
            ray.init(runtime_env={"env_vars": {"PYTHONPATH": pythonpath}}, **init_args)
            return
        except Exception as error:  # Ray raises a bare Exception on a start-up timeout
            errors.append(f"attempt {attempt}: {error}")
            print(f"[fedlab] Ray did not start ({error}); retrying", flush=True)
            ray.shutdown()
            time.sleep(1.0)
    raise RuntimeError(
        f"Ray did not start in {START_ATTEMPTS} attempts (is the machine overloaded?): "
        + "; ".join(errors)
    )


def _main(argv: list[str] | None = None) -> int:
    """Run one simulation described by a JSON file (written by :func:`run_simulation_runtime`)."""
    parser = argparse.ArgumentParser(prog="python -m fedlab.flower.simulation")
    parser.add_argument("spec", help="the run's JSON file")
    spec = json.loads(Path(parser.parse_args(argv).spec).read_text())
    run_config = spec["run_config"]
    error_path = Path(f"{run_config['history-path']}.error")
    ray = None
    try:
        try:
            import ray
            from flwr.simulation import run_simulation
        except ImportError as error:
            raise ImportError(
                f"Flower's simulation runtime needs Ray: {SIMULATION_HINT} ({error})"
            ) from error
        logging.getLogger("flwr").addFilter(_NoRunSimulationDeprecation())
        init_args = {
            "num_cpus": spec["num_cpus"],
            "include_dashboard": False,
            "logging_level": "ERROR",
            "log_to_driver": False,
            "_node_ip_address": "127.0.0.1",
            "_temp_dir": spec["ray_dir"],
        }
        start = time.perf_counter()
        _start_ray(ray, init_args)
        print(f"[fedlab] Ray started in {time.perf_counter() - start:.1f} s", flush=True)
        server, client = _apps(run_config)
        run_simulation(
            server,
            client,
            num_supernodes=spec["num_supernodes"],
            backend_config={
                "client_resources": {"num_cpus": spec["cpus_per_client"], "num_gpus": 0.0},
                "init_args": init_args,  # unused: Ray is already running
            },
        )
        print(f"[fedlab] simulation done in {time.perf_counter() - start:.1f} s", flush=True)
    except BaseException as error:
        if not error_path.exists():  # the ServerApp writes its own errors
            error_path.write_text(f"{type(error).__name__}: {error}\n")
        raise
    finally:
        if ray is not None and ray.is_initialized():
            ray.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(_main())
