"""Do the notebooks' checked outputs come out the same on another machine? Run them and see.

A checked cell (tag ``nbval-check-output``) must print the same text wherever the course runs
(up to one last digit per decimal if it is also tagged ``last-digit-tolerance``:
tools/checked_outputs.py); a number printed at a precision that floating-point differences can
flip is a test a student will see fail. Another machine differs from this one in ways we can imitate: oneDNN on or off, more
TensorFlow threads, another OpenBLAS kernel (NumPy's matrix products). This tool runs notebooks
in a fresh kernel under such settings, without saving them, and lists every checked cell whose
printed text differs from the committed output::

    python3 dev.py audit                       # every notebook, every setting below
    python3 dev.py audit 10 11 --setting onednn

Exit code 1 if any checked output differs. Each setting is a run of every chosen notebook (about
ten minutes for the whole course on two cores).
"""

from __future__ import annotations

import argparse
import difflib
import os
import sys
import time
from pathlib import Path

import nbformat
from checked_outputs import CHECKED, TOLERANCE, tolerate  # tools/: this file's folder
from notebook_pairs import pairs, run

# each setting: environment variables to set (None: remove) on top of dev.py's test environment
SETTINGS: dict[str, dict[str, str | None]] = {
    "onednn": {"TF_ENABLE_ONEDNN_OPTS": "1"},
    "threads": {"FEDLAB_TF_THREADS": "2"},
    # OpenBLAS picks its kernel for the CPU it finds unless OPENBLAS_CORETYPE says otherwise
    "openblas-auto": {"OPENBLAS_CORETYPE": None, "OPENBLAS_L2_SIZE": None},
    "openblas-generic": {"OPENBLAS_CORETYPE": "Prescott"},
}


def printed(cell: nbformat.NotebookNode) -> str:
    """The text a checked cell shows: its stdout and plain-text results (what nbval compares)."""
    parts = []
    for output in cell.get("outputs", []):
        if output.output_type == "stream" and output.name == "stdout":
            parts.append(output.text)
        elif output.output_type in ("execute_result", "display_data"):
            parts.append(output.get("data", {}).get("text/plain", "") + "\n")
    return "".join(parts)


def run_copy(path: Path, env: dict[str, str | None], timeout: int = 900) -> nbformat.NotebookNode:
    """``path``'s notebook run top to bottom in a fresh kernel with ``env`` on top of this
    process's environment (``None`` removes a variable); nothing is saved."""
    kernel_env = {**os.environ}
    for name, value in env.items():
        if value is None:
            kernel_env.pop(name, None)
        else:
            kernel_env[name] = value
    return run(path, kernel_env, timeout)


def compare(committed: nbformat.NotebookNode, fresh: nbformat.NotebookNode) -> list[str]:
    """A unified diff for each checked cell whose printed text differs."""
    found = []
    code = [c for c in committed.cells if c.cell_type == "code"]
    rerun = [c for c in fresh.cells if c.cell_type == "code"]
    for number, (old, new) in enumerate(zip(code, rerun, strict=True)):
        tags = old.metadata.get("tags", [])
        committed, fresh = printed(old), printed(new)
        if TOLERANCE in tags:
            fresh = tolerate(fresh, committed)
        if CHECKED not in tags or fresh == committed:
            continue
        diff = difflib.unified_diff(committed.splitlines(), fresh.splitlines(), lineterm="", n=0)
        found.append(f"code cell {number}:\n  " + "\n  ".join(list(diff)[2:]))
    return found


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="dev.py audit", description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", help="numbers or names, e.g. 04 11 (default: all)")
    parser.add_argument("--setting", action="append", choices=sorted(SETTINGS), default=None)
    args = parser.parse_args(argv)
    differing = 0
    for name in args.setting or list(SETTINGS):
        for pair in pairs(only=args.notebooks or None):
            start = time.perf_counter()
            committed = nbformat.read(pair.ipynb, as_version=4)
            found = compare(committed, run_copy(pair.ipynb, SETTINGS[name]))
            seconds = time.perf_counter() - start
            print(f"[{name}] {pair.name}: {len(found)} checked cells differ ({seconds:.0f} s)")
            for text in found:
                print("  " + text.replace("\n", "\n  "))
            differing += len(found)
            sys.stdout.flush()
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
