"""fedlab on Flower's simulation runtime (fedlab.flower.simulation): argument checks, the install
hint without Ray, and one end-to-end run that must equal fedlab's engine.

The end-to-end test needs ``flwr[simulation]`` (Ray, in the test extras) and takes one to two
minutes on 2 cores; without Ray it fails with the install hint. While it runs it records every socket that the run's
processes listen on (Linux ``/proc``) and afterwards checks that none of them is left.
"""

import ipaddress
import json
import math
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from fedlab.flower import FlowerConfig
from fedlab.flower.simulation import RUN_MARKER, SIMULATION_HINT, run_simulation_runtime

# -- arguments (fast, no Ray needed) ------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"cpus_per_client": 0.0}, ValueError, r"cpus_per_client must be a finite number in \(0"),
        ({"cpus_per_client": -1}, ValueError, "cpus_per_client must be a finite number in"),
        ({"cpus_per_client": 3.0, "num_cpus": 2}, ValueError, r"cpus_per_client .* \(0, 2\]"),
        ({"cpus_per_client": math.nan}, ValueError, "cpus_per_client must be a finite number"),
        ({"cpus_per_client": "1"}, TypeError, "cpus_per_client must be a number"),
        ({"num_cpus": 0}, ValueError, r"num_cpus must be an integer in \[1, "),
        ({"num_cpus": 1.5}, TypeError, "num_cpus must be an integer"),
        ({"timeout": 0.0}, ValueError, r"timeout must be a finite number in \(0"),
        ({"timeout": math.inf}, ValueError, "timeout must be a finite number"),
    ],
)
def test_rejects_bad_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        run_simulation_runtime(FlowerConfig(num_rounds=1), **kwargs)


def test_rejects_a_config_that_is_not_a_flower_config():
    with pytest.raises(TypeError, match="config must be a FlowerConfig, got dict"):
        run_simulation_runtime({"num_clients": 3})


# -- without Ray ----------------------------------------------------------------------------------


def _env_without_ray(folder: Path) -> dict[str, str]:
    """This environment, where a child Python cannot import ``ray``: a ``sitecustomize`` marks it
    missing (``sys.modules["ray"] = None``: ``find_spec`` gives None, ``import ray`` fails)."""
    (folder / "sitecustomize.py").write_text('import sys\nsys.modules["ray"] = None\n')
    path = os.pathsep.join(p for p in (str(folder), os.environ.get("PYTHONPATH", "")) if p)
    return dict(os.environ, PYTHONPATH=path)


def _python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def no_ray_env(tmp_path_factory):
    env = _env_without_ray(tmp_path_factory.mktemp("no_ray"))
    found = _python("import importlib.util; print(importlib.util.find_spec('ray') is None)", env)
    assert found.stdout.strip() == "True", found.stderr
    return env


def test_missing_ray_names_the_install_command(no_ray_env):
    result = _python(
        "from fedlab.flower import FlowerConfig\n"
        "from fedlab.flower.simulation import run_simulation_runtime\n"
        "try:\n"
        "    run_simulation_runtime(FlowerConfig(num_rounds=1))\n"
        "except ImportError as error:\n"
        "    print('ImportError:', error)\n",
        no_ray_env,
    )
    assert result.returncode == 0, result.stderr
    assert "ImportError: Flower's simulation runtime needs ray" in result.stdout
    assert SIMULATION_HINT in result.stdout
    assert SIMULATION_HINT == 'pip install "flwr[simulation]>=1.42,<1.43"'


def test_child_without_ray_writes_the_hint_as_the_run_error(no_ray_env, tmp_path):
    history = tmp_path / "history.json"
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"run_config": {"history-path": str(history)}}))
    result = subprocess.run(
        [sys.executable, "-m", "fedlab.flower.simulation", str(spec)],
        env=no_ray_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    error = (tmp_path / "history.json.error").read_text()
    assert error.startswith("ImportError: Flower's simulation runtime needs Ray")
    assert SIMULATION_HINT in error


# -- end to end (needs Ray) ----------------------------------------------------------------------


def _processes() -> dict[int, tuple[str, bytes]]:
    """pid -> (command line, environment) of every process this user may read."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        found[int(entry.name)] = (cmdline, environ)
    return found


def _ray_like(cmdline: str, environ: bytes) -> bool:
    return (
        any(word in cmdline for word in ("ray::", "raylet", "gcs_server"))
        or f"{RUN_MARKER}=".encode() in environ
    )


def _address(hex_address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """An address as /proc/net/tcp{,6} writes it: 32-bit words in host (little-endian) order."""
    raw = bytes.fromhex(hex_address)
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return ipaddress.ip_address(words)


def _listening() -> dict[int, tuple[str, int]]:
    """socket inode -> (address, port) of every TCP socket in LISTEN state."""
    found = {}
    for table in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] != "0A":  # TCP_LISTEN
                continue
            host, port = fields[1].split(":")
            found[int(fields[9])] = (str(_address(host)), int(port, 16))
    return found


def _sockets_of(pid: int) -> set[int]:
    inodes = set()
    try:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(int(target[8:-1]))
    except OSError:
        pass
    return inodes


def _is_loopback(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    mapped = getattr(ip, "ipv4_mapped", None)
    return ip.is_loopback or (mapped is not None and mapped.is_loopback)


def test_fedavg_on_the_simulation_runtime_equals_fedlab_engine(tmp_path):
    before = set(_processes())
    config = FlowerConfig(algorithm="fedavg", num_clients=3, num_rounds=2)
    outcome: dict = {}

    def run():
        try:
            outcome["history"] = run_simulation_runtime(config, workdir=tmp_path, timeout=480)
        except BaseException as error:  # reported by the main thread
            outcome["error"] = error

    thread = threading.Thread(target=run)
    thread.start()
    listening: dict[tuple[int, str], tuple[str, int]] = {}  # (pid, command) -> (address, port)
    ray_pids: set[int] = set()
    while thread.is_alive():
        sockets = _listening()
        for pid, (cmdline, environ) in _processes().items():
            if pid in before or f"{RUN_MARKER}=".encode() not in environ:
                continue
            ray_pids.add(pid)
            for inode in _sockets_of(pid) & sockets.keys():
                listening[(pid, cmdline[:60])] = sockets[inode]
        time.sleep(0.5)
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    history = outcome["history"]

    # while it ran: Ray and Flower listened, and only on the loopback interface
    assert ray_pids, "no process of the run was seen"
    assert listening, "no listening socket of the run was seen"
    assert all(_is_loopback(address) for address, _ in listening.values()), listening
    # afterwards: nothing of the run is left (not even processes Ray re-parented)
    time.sleep(1.0)
    left = {
        pid: cmdline
        for pid, (cmdline, environ) in _processes().items()
        if pid not in before and _ray_like(cmdline, environ)
    }
    assert not left, f"processes left behind: {left}"

    reference = config.simulate()
    assert len(history) == len(reference) == 2
    assert history.config["runtime"] == "flower"
    for got, want in zip(history.rounds, reference.rounds, strict=True):
        assert got.round == want.round
        assert got.clients == want.clients == (0, 1, 2)
        assert got.dropped == ()
        for name in ("test_loss", "test_accuracy", "train_loss"):
            assert getattr(got, name) == pytest.approx(getattr(want, name), rel=1e-4), name
    print(
        "\n"
        + "\n".join(
            line
            for line in (tmp_path / "simulation.log").read_text().splitlines()
            if line.startswith("[fedlab]")
        )
        + f"\nround wall times: {[round(r.wall_time, 2) for r in history.rounds]}"
        + f"\nlistening: {sorted(set(listening.values()))}"
    )


class _FlakyRay:
    """Stands in for ``ray``: ``init`` fails ``failures`` times the way Ray's start-up times out."""

    def __init__(self, failures: int):
        self.failures = failures
        self.calls: list[str] = []

    def init(self, **kwargs):
        self.calls.append("init")
        if self.calls.count("init") <= self.failures:
            raise Exception("The current node timed out during startup.")

    def shutdown(self):
        self.calls.append("shutdown")


def test_ray_start_is_retried_after_a_start_up_timeout(monkeypatch):
    from fedlab.flower import simulation

    monkeypatch.setattr(simulation.time, "sleep", lambda seconds: None)
    monkeypatch.setenv("PYTHONPATH", os.environ.get("PYTHONPATH", ""))  # _start_ray extends it
    ray = _FlakyRay(failures=2)
    simulation._start_ray(ray, {})
    assert ray.calls == ["init", "shutdown", "init", "shutdown", "init"]

    ray = _FlakyRay(failures=3)
    with pytest.raises(RuntimeError, match="Ray did not start in 3 attempts"):
        simulation._start_ray(ray, {})
    assert ray.calls.count("shutdown") == 3
