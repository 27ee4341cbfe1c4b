"""Ends a :class:`fedlab.flower.LocalFederation`'s processes when its owner dies.

A LocalFederation starts the SuperLink, the SuperNodes and the task executors in sessions of
their own (so that ending one ends its children). If the Python process that owns them is killed
— a notebook kernel killed with SIGTERM or SIGKILL, a crashed script — nothing would end them:
they would keep running, ports open. This watchdog, started by the owner in a session of its own,
reads the owner's instructions from a pipe:

- ``add PID``: a process to end with the owner (its descendants are found when it is time);
- ``folder PATH``: a temporary folder to remove with them;
- ``stop``: the owner stopped the federation itself; exit without ending anything.

When the pipe closes without ``stop`` — the owner is gone, however it died — the watchdog kills
(SIGKILL) every process it was given, every process in their process groups and every descendant,
until none is left, removes the folders, and exits.

It is run as a file (``python .../flower/watchdog.py``), not as ``-m fedlab.flower.watchdog``:
importing the fedlab package would import TensorFlow, seconds of start-up for a process that only
waits. So it imports nothing from fedlab; :mod:`fedlab.flower.federation` uses its process-table
functions.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import time
from pathlib import Path

__all__ = ["descendants", "kill_trees", "main", "proc_table", "running"]


def proc_table() -> dict[int, tuple[int, int, str]]:
    """Every process: pid -> (parent pid, process group, state), from Linux's ``/proc``.

    Example:
        >>> os.getpid() in proc_table()
        True
    """
    table = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        table[int(stat.parent.name)] = (int(fields[1]), int(fields[2]), fields[0])
    return table


def running(pid: int) -> bool:
    """Does ``pid`` exist and is it not a zombie (an ended process not yet reaped)?

    Example:
        >>> running(os.getpid())
        True
    """
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def descendants(pid: int, table: dict[int, tuple[int, int, str]] | None = None) -> list[int]:
    """Children, grandchildren... of ``pid`` (empty where ``/proc`` is missing).

    Example:
        >>> isinstance(descendants(os.getpid()), list)
        True
    """
    children: dict[int, list[int]] = {}
    for child, (parent, _, _) in (proc_table() if table is None else table).items():
        children.setdefault(parent, []).append(child)
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def kill_trees(pids: set[int], timeout: float = 10.0) -> None:
    """SIGKILL ``pids``, every process in their process groups and every descendant, until none
    is left (processes may fork while being killed) or ``timeout`` seconds have passed."""
    own = {os.getpid(), os.getpgid(0)}
    groups = {pid for pid in pids if pid not in own}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        table = proc_table()
        alive = {pid for pid in pids if pid in table}
        for pid in list(alive):
            alive.update(descendants(pid, table))
        alive.update(pid for pid, (_, group, _) in table.items() if group in groups)
        alive = {pid for pid in alive if table.get(pid, (0, 0, "Z"))[2] != "Z"} - own
        if not alive:
            return
        pids |= alive
        groups |= {table[pid][1] for pid in alive if pid in table} - own
        for group in groups:
            try:
                os.killpg(group, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        for pid in alive:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        time.sleep(0.05)


def main() -> int:
    """Watch: read instructions until ``stop`` (exit quietly) or the end of the pipe (end all)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C meant for the owner is not for us
    pids: set[int] = set()
    folders: list[str] = []
    for line in sys.stdin:
        command, _, argument = line.rstrip("\n").partition(" ")
        if command == "add":
            pids.add(int(argument))
        elif command == "folder":
            folders.append(argument)
        elif command == "stop":
            return 0
    kill_trees(pids)
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
