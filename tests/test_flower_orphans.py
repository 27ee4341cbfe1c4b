"""A LocalFederation leaves nothing behind when its owner dies (issue 18): the owner — a Python
process standing in for a notebook kernel — is really killed (SIGKILL, SIGTERM), mid-run, and
within seconds no process of the federation is left, no port listens and its temporary folder
is gone (fedlab/flower/watchdog.py)."""

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from fedlab.flower.watchdog import running

ROOT = Path(__file__).resolve().parents[1]

OWNER = textwrap.dedent(
    """
    import json, sys, threading
    from fedlab.flower import FlowerConfig, LocalFederation

    federation = LocalFederation(2).start()

    def report(history):
        print(json.dumps({
            "pids": federation.pids(),
            "ports": [federation.link_port, *federation.node_ports.values()],
            "workdir": str(federation.workdir),
            "rounds": len(history),
        }), flush=True)

    config = FlowerConfig(num_clients=2, num_rounds=200, round_timeout=120)
    if sys.argv[1] == "mid-run":
        threading.Thread(target=federation.run, args=(config,), kwargs={"on_round": report},
                         daemon=True).start()
    else:
        report([])
    threading.Event().wait()  # until killed
    """
)


def listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.parametrize(
    "number, when",
    [(signal.SIGKILL, "mid-run"), (signal.SIGTERM, "idle")],
    ids=["SIGKILL-mid-run", "SIGTERM-idle"],
)
def test_killing_the_owner_ends_every_process_port_and_folder(number, when):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER, when], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        line = owner.stdout.readline()
        assert line, "the owner printed nothing"
        info = json.loads(line)
        if when == "mid-run":
            assert info["rounds"] >= 1
            # a round in flight: its task processes are running too
            info["pids"] = sorted(
                set(info["pids"]) | set(json.loads(owner.stdout.readline())["pids"])
            )
        pids, ports, workdir = info["pids"], info["ports"], Path(info["workdir"])
        assert len(pids) >= 4 and all(running(p) for p in pids[:1])
        assert all(listening(port) for port in ports) and workdir.is_dir()
        owner.send_signal(number)
        owner.wait(timeout=30)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            left = [p for p in pids if running(p)] + [p for p in ports if listening(p)]
            if not left and not workdir.exists():
                break
            time.sleep(0.2)
        assert [p for p in pids if running(p)] == []
        assert [p for p in ports if listening(p)] == []
        assert not workdir.exists()
    finally:
        if owner.poll() is None:
            owner.kill()


def test_a_stopped_federation_removes_its_temporary_folder_and_its_watchdog():
    from fedlab.flower import LocalFederation

    with LocalFederation(1) as federation:
        workdir, watchdog = federation.workdir, federation._watchdog
        assert workdir.is_dir() and watchdog.poll() is None
    assert not workdir.exists() and watchdog.poll() == 0
