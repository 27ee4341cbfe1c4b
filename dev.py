"""Set fedlab up if needed, then open the tutorials, run every test, or run the benchmark.

    python3 dev.py lab     # JupyterLab on notebooks/00_index.ipynb
    python3 dev.py test    # package tests + every notebook under nbval
    python3 dev.py sync    # each notebook's .py and .ipynb in step; re-runs what changed
    python3 dev.py audit   # re-run notebooks as other machines would; list checked outputs that differ
    python3 dev.py site    # the course as a website in build/site (docs/README.md), offline
    python3 dev.py wheel   # build sdist + wheel, install the wheel in a fresh venv, test it there
    python3 dev.py compat  # the package tests with the newest/lowest allowed versions, any Python
    python3 dev.py assign  # student and solution versions of the exercises, in build/assign
    python3 dev.py bench   # benchmarks/bench_engine.py; `bench NAME`: bench_NAME.py

Needs only Python 3.11+ with pip (standard library only; Linux, macOS, Windows). The first run
creates ``.venv`` and installs ``-e .[test]`` into it; later runs reinstall only when
pyproject.toml has changed. Arguments after the command are passed on: ``python3 dev.py lab
--no-browser``, ``python3 dev.py test -x``; for ``test``, paths after ``--`` replace the default
``tests notebooks``: ``python3 dev.py test -x -- tests/test_engine.py``; ``python3 dev.py sync --help`` lists the
options of ``sync`` (tools/notebook_pairs.py). The exit code is that of the command run (pytest's
for ``test``).
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
WINDOWS = os.name == "nt"
BIN = VENV / ("Scripts" if WINDOWS else "bin")
EXE = ".exe" if WINDOWS else ""
PYTHON = BIN / f"python{EXE}"
STAMP = VENV / "fedlab-pyproject.sha256"  # hash of the pyproject.toml last installed
# --dist loadfile keeps each file (a notebook's cells) on one worker
TEST_OPTIONS = ["-n", "2", "--dist", "loadfile", "--nbval-lax", "--nbval-current-env"]
TEST_PATHS = ["tests", "notebooks"]
# `dev.py bench [name] ...` runs benchmarks/bench_<name>.py (default: engine)
# `dev.py NAME ...` for these runs tools/FILE ... in .venv (each sets up what it needs itself)
TOOLS = {
    "site": "tools/site.py",
    "wheel": "tools/wheel_check.py",
    "compat": "tools/compat.py",
    "assign": "tools/assign.py",
}
BENCHMARKS = (
    "engine",
    "dashboard",
    "fedprox_stragglers",
    "transformer",
    "flower",
    "memory",
    "multitask",
    "robust",
)
TEST_ENV = {
    "TF_CPP_MIN_LOG_LEVEL": "2",  # no TensorFlow C++ info/warning lines
    # oneDNN off unless you say otherwise (`TF_ENABLE_ONEDNN_OPTS=1 python3 dev.py test`): the
    # notebooks' checked outputs are written with it off and pass with it on too
    "TF_ENABLE_ONEDNN_OPTS": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "0"),
    "PYTHONHASHSEED": "0",
    # no MPLBACKEND: notebook kernels then use the inline backend and show their figures exactly
    # as a student sees them (nbval checks those outputs); tests/conftest.py picks Agg for pytest
}


def step(message: str) -> None:
    print(f"[dev.py] {message}", flush=True)


def setup() -> None:
    """Create .venv if missing; install fedlab into it if pyproject.toml changed since last time."""
    if not PYTHON.exists():
        step(f"creating {VENV}")
        venv.create(VENV, with_pip=True)
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text().strip() == wanted:
        step(".venv is up to date with pyproject.toml")
        return
    step("installing fedlab (-e .[test]) and its dependencies into .venv (minutes the first time)")
    pip = [str(PYTHON), "-m", "pip", "install", "--disable-pip-version-check"]
    if subprocess.run([*pip, "-e", ".[test]"], cwd=ROOT).returncode != 0:
        sys.exit("[dev.py] pip install failed (see above); the next run will try again")
    STAMP.write_text(wanted + "\n")


def run(command: list[str], env: dict[str, str] | None = None) -> int:
    step("running " + " ".join(command).replace(f"{ROOT}{os.sep}", ""))
    with subprocess.Popen(command, cwd=ROOT, env={**os.environ, **(env or {})}) as process:
        while True:
            try:
                return process.wait()
            except KeyboardInterrupt:  # Ctrl-C reached the child too; it decides (JupyterLab asks)
                continue


def lab_options() -> list[str]:
    """Jupyter refuses to start as root ("Running as root is not recommended"), which is the
    usual user in containers and many lab images: there, allow it and say so."""
    if not WINDOWS and os.geteuid() == 0:
        step("running as root (a container?): starting JupyterLab with --allow-root")
        return ["--allow-root"]
    return []


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"lab", "test", "sync", "audit", *TOOLS, "bench"}:
        print(__doc__)
        return 2
    if sys.version_info < (3, 11):  # noqa: UP036 (dev.py runs on whatever python3 is installed)
        sys.exit(f"[dev.py] fedlab needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    task, extra = argv[0], argv[1:]
    setup()
    if task == "lab":
        return run(
            [str(BIN / f"jupyter{EXE}"), "lab", "notebooks/00_index.ipynb", *lab_options(), *extra]
        )
    if task == "sync":  # notebooks run as in the tests: same quiet, reproducible environment
        return run([str(PYTHON), "tools/notebook_pairs.py", *extra], TEST_ENV)
    if task == "audit":
        return run([str(PYTHON), "tools/output_audit.py", *extra], TEST_ENV)
    if task in TOOLS:
        return run([str(PYTHON), TOOLS[task], *extra])
    if task == "test":
        options, paths = extra, TEST_PATHS
        if "--" in extra:
            options, paths = extra[: extra.index("--")], extra[extra.index("--") + 1 :]
        return run([str(PYTHON), "-m", "pytest", *TEST_OPTIONS, *options, *paths], TEST_ENV)
    name = "engine"
    if extra and extra[0] in BENCHMARKS:
        name, extra = extra[0], extra[1:]
    return run([str(PYTHON), f"benchmarks/bench_{name}.py", *extra])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
