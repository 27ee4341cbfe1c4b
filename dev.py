"""Set up fedlab if needed, then open the tutorials or run every test.

    python3 dev.py lab     # JupyterLab on notebooks/00_index.ipynb
    python3 dev.py test    # package tests + every notebook under nbval
    python3 dev.py bench   # the engine benchmark

Works on a fresh machine with only Python 3.11+ and pip: it creates ``.venv`` and installs
``-e .[test]`` into it, again only when pyproject.toml changes. Extra arguments are passed on.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")
STAMP = VENV / ".fedlab-installed"
TEST_ARGS = ["-n", "2", "--dist", "loadfile", "--nbval-lax", "--nbval-current-env", "tests", "notebooks"]
QUIET_TF = {"TF_CPP_MIN_LOG_LEVEL": "2", "TF_ENABLE_ONEDNN_OPTS": "0"}


def step(message: str) -> None:
    print(f"[dev] {message}", flush=True)


def setup() -> None:
    """Create the virtual environment and install fedlab into it when needed."""
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if not PYTHON.exists():
        step(f"creating {VENV.relative_to(ROOT)}")
        venv.create(VENV, with_pip=True)
    if STAMP.exists() and STAMP.read_text() == wanted:
        return
    step("installing fedlab and its dependencies (about a minute with a warm cache)")
    pip = [str(PYTHON), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "-e", f"{ROOT}[test]"], check=True)
    STAMP.write_text(wanted)


def run(command: list[str], extra_env: dict[str, str] | None = None) -> int:
    step(" ".join(command))
    return subprocess.run(command, cwd=ROOT, env={**os.environ, **(extra_env or {})}).returncode


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"lab", "test", "bench"}:
        print(__doc__)
        return 2
    task, extra = argv[0], argv[1:]
    setup()
    if task == "lab":
        return run([str(BIN / "jupyter"), "lab", "notebooks/00_index.ipynb", *extra], QUIET_TF)
    if task == "test":
        env = {**QUIET_TF, "PYTHONHASHSEED": "0", "MPLBACKEND": "Agg"}
        return run([str(PYTHON), "-m", "pytest", *TEST_ARGS, *extra], env)
    return run([str(PYTHON), "benchmarks/bench_engine.py", *extra], QUIET_TF)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
