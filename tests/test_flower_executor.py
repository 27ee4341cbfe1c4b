"""fedlab.flower.executor and fedlab.flower.node without a federation: the forked task process
gets exactly the command line Flower's own executor would start, children are reaped, and the
SuperNode's waits are capped. (End to end they run in tests/test_flower.py.)"""

import os
import subprocess
import sys
import time

import pytest
from flwr.supercore.constant import TaskType
from flwr.supercore.inflatable import inflatable_utils
from flwr.supercore.superexec.executor.subprocess_executor import SubprocessExecutor
from flwr.supercore.superexec.executor.types import ExecutionSpec, LaunchResultStatus

from fedlab.flower import executor as flower_executor
from fedlab.flower import node as flower_node
from fedlab.flower.executor import ForkExecutor


def _spec(task_type, **overrides) -> ExecutionSpec:
    settings = {
        "task_type": task_type,
        "runtime_api_address": "127.0.0.1:9094",
        "token": "secret-token",
        "insecure": True,
        "root_certificates_path": None,
        "runtime_dependency_install": False,
        "parent_pid": 4242,
        "suppress_output": False,
        "task_id": 7,
    }
    return ExecutionSpec(**{**settings, **overrides})


@pytest.mark.parametrize("task_type", [TaskType.CLIENT_APP, TaskType.SERVER_APP])
@pytest.mark.parametrize(
    "tls",
    [{}, {"insecure": False, "root_certificates_path": "/certs/ca.crt"}],
    ids=["insecure", "tls"],
)
def test_task_gets_the_command_line_flowers_executor_would_start(monkeypatch, task_type, tls):
    started = []
    monkeypatch.setattr(subprocess, "Popen", lambda args, **kwargs: started.append(list(args)))
    spec = _spec(task_type, **tls)
    SubprocessExecutor().launch(spec)
    assert started == [flower_executor._task_args(spec)]
    assert started[0][0] == str(task_type) and "secret-token" in started[0]


def test_unknown_task_types_are_refused_without_forking():
    executor = ForkExecutor()
    result = executor.launch(_spec(TaskType.AGENT_APP))
    assert result.status == LaunchResultStatus.FAILED
    assert "cannot run" in result.message and executor.children == set()


def test_a_forked_task_runs_the_entry_point_as_its_own_process_and_is_reaped(monkeypatch, tmp_path):
    marker = tmp_path / "ran"

    def entry_point(command):
        def run():  # in the child: record what it was asked to be, then end
            marker.write_text(f"{command} {os.getpid()} {' '.join(sys.argv)}")

        return run

    monkeypatch.setattr(flower_executor, "_entry_point", entry_point)
    executor = ForkExecutor()
    spec = _spec(TaskType.CLIENT_APP)
    assert executor.launch(spec).status == LaunchResultStatus.ACCEPTED
    (child,) = executor.children
    deadline = time.monotonic() + 30
    while executor.children and time.monotonic() < deadline:
        executor.reconcile()
        time.sleep(0.05)
    assert executor.children == set()  # reaped: no zombie left
    command, pid, argv = marker.read_text().split(" ", 2)
    assert command == "flwr-clientapp" and int(pid) == child != os.getpid()
    assert argv.split() == flower_executor._task_args(spec)


def test_task_processes_retry_pulls_after_a_tenth_of_a_second(monkeypatch):
    defaults = dict(inflatable_utils.pull_and_inflate_object_from_tree.__kwdefaults__)
    assert defaults["initial_backoff"] == 1  # Flower 1.42's wait before asking again
    try:
        flower_executor._retry_pulls_sooner(0.1)
        assert inflatable_utils.pull_and_inflate_object_from_tree.__kwdefaults__[
            "initial_backoff"
        ] == pytest.approx(0.1)
    finally:
        inflatable_utils.pull_and_inflate_object_from_tree.__kwdefaults__.update(defaults)


def test_supernode_waits_are_capped_but_time_still_works():
    fast = flower_node.capped_time(0.05)
    start = time.monotonic()
    fast.sleep(3)
    assert time.monotonic() - start < 1.0
    assert abs(fast.time() - time.time()) < 1.0 and fast.monotonic is time.monotonic
