"""Test fedlab with the newest or the lowest versions pyproject.toml allows, on a chosen Python.

    .venv/bin/python tools/compat.py --python 3.13             # newest everything on Python 3.13
    .venv/bin/python tools/compat.py --python 3.11 --lowest    # dependencies at their lower bounds
    .venv/bin/python tools/compat.py --python 3.11 --lowest --tests tests/test_lora.py -- -x
    .venv/bin/python tools/compat.py --python 3.12 --no-tests  # resolve, install, list versions

1. A new venv (``uv venv``) in a temporary folder outside the checkout, with ``--python``:
   ``3.11``, ``3.12``, ``3.13`` (the newest ``~/.pyenv/versions/3.X.*``, else ``python3.X`` on
   PATH, else left to uv) or the path of any interpreter.
2. fedlab's dependencies as pyproject.toml declares them (read at run time: a raised bound is
   tested at once), from wheels only (``--only-binary :all:``: an old release without a wheel
   for this Python does not count as installable):

   * newest (default): every package at its newest allowed version;
   * ``--lowest``: ``[project] dependencies`` resolved with ``uv --resolution lowest-direct``
     (each at the lowest version its bound allows that installs here; what they pull in at its
     newest), then the ``[test]`` extras at their newest versions that leave those where they
     are. The test tools' own lower bounds are not measured: they only run the tests. Flower
     (``flwr``) is left out, and ``tests/test_flower*.py`` with it: flwr 1.42 pins cryptography
     50 and protobuf >= 5.28 (so TensorFlow >= 2.18), which would hide the bounds a user without
     Flower relies on. ``--with-flower`` resolves ``flwr[simulation]`` together with the runtime
     dependencies instead: the lowest versions a ``[flower]`` user can have. nbgrader (the
     exercises' generator, tools/assign.py; it needs JupyterLab >= 4.2) is left out too, and
     ``tests/test_exercises.py`` with it.

3. fedlab itself: a wheel built from an sdist of the checkout (``uv build``), installed without
   dependencies (they are the ones above), not editable; ``uv pip check``.
4. The package tests (``--tests``; default as tools/wheel_check.py: ``tests/`` without the
   Flower end-to-end files and the browser test), run from a folder outside the checkout on
   ``--workers`` (2) cores, with wheel_check's guard: fedlab under test is the installed wheel.

It ends with a Markdown row (Python, resolution, versions, result, failed tests) for the README's
table. The exit code is pytest's (0: every selected test passed), or 1 if the venv could not be
made or filled. Needs uv (flwr depends on it, so .venv has it).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import wheel_check  # noqa: E402 (tools/wheel_check.py: the guard, the test selection, the env)

ROOT = wheel_check.ROOT
SHOWN = ["tensorflow", "keras", "numpy"]  # the versions the Markdown row names
FLOWER = {"flwr"}  # left out of --lowest unless --with-flower
# the exercises' generator (tools/assign.py) needs JupyterLab >= 4.2: left out of --lowest, which
# would otherwise test a higher JupyterLab than the one fedlab allows, with tests/test_exercises.py
TEACHING = {"nbgrader"}
PYENV = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"


def requirement_name(requirement: str) -> str:
    """``"flwr[simulation]>=1.42,<1.43"`` -> ``"flwr"`` (normalised as PyPI does)."""
    name = re.match(r"[A-Za-z0-9._-]+", requirement.strip()).group()
    return re.sub(r"[-_.]+", "-", name).lower()


def requirements(root: Path = ROOT) -> tuple[list[str], list[str]]:
    """``([project] dependencies, [test] extras)`` as pyproject.toml declares them."""
    project = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return list(project["dependencies"]), list(project["optional-dependencies"]["test"])


def interpreter(python: str) -> str:
    """``"3.13"`` -> the newest ``~/.pyenv/versions/3.13.*/bin/python``, else ``python3.13`` on
    PATH, else ``"3.13"`` for uv to find; anything else is a path or command, kept as it is."""
    if not re.fullmatch(r"3\.\d+", python):
        return python

    def version(path: str) -> list[int]:
        return [int(part) for part in re.findall(r"\d+", Path(path).parents[1].name)]

    found = sorted(glob.glob(str(PYENV / f"{python}.*" / "bin" / "python")), key=version)
    return found[-1] if found else shutil.which(f"python{python}") or python


def uv() -> str:
    found = wheel_check.find_uv()
    if not found:
        sys.exit("[compat] needs uv: .venv/bin/pip install uv (flwr depends on it)")
    return found


def run(command: list[str], **kwargs) -> int:
    print(f"\n[compat] {' '.join(map(str, command))}", flush=True)
    return subprocess.run(command, **kwargs).returncode


def installed_versions(python: Path) -> dict[str, str]:
    """``{normalised name: version}`` of every distribution in the venv of ``python``."""
    code = (
        "import importlib.metadata as m, json, re; print(json.dumps({re.sub(r'[-_.]+', '-',"
        " d.metadata['Name']).lower(): d.version for d in m.distributions()}))"
    )
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def install(temp: Path, python: Path, runtime: list[str], test: list[str], args) -> bool:
    """Step 2: the dependencies into the venv of ``python``, newest or lowest (see above)."""
    env = {key: value for key, value in os.environ.items() if key != "VIRTUAL_ENV"}
    pip = [uv(), "pip", "install", "--python", str(python), "--only-binary", ":all:"]

    def write(name: str, lines: list[str]) -> str:
        (temp / name).write_text("".join(f"{line}\n" for line in lines))
        return str(temp / name)

    if not args.lowest:
        return (
            run([*pip, "-r", write("runtime.txt", runtime), "-r", write("test.txt", test)], env=env)
            == 0
        )
    flower = [requirement for requirement in test if requirement_name(requirement) in FLOWER]
    test = [r for r in test if requirement_name(r) not in FLOWER | TEACHING]
    lowest = runtime + (flower if args.with_flower else [])
    if run([*pip, "--resolution", "lowest-direct", "-r", write("lowest.txt", lowest)], env=env):
        return False
    versions = installed_versions(python)  # the direct dependencies stay at these versions
    pins = write(
        "pins.txt", [f"{name}=={versions[name]}" for name in map(requirement_name, lowest)]
    )
    if run([*pip, "-r", write("test.txt", test), "-c", pins], env=env):
        print("[compat] the [test] extras do not install beside those versions (see above)")
        return False
    return True


def junit_results(path: Path) -> tuple[dict[str, int], list[str]]:
    """Counts and the ids of the failed tests, from pytest's JUnit XML."""
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    if not path.exists():
        return counts, []
    root = ET.parse(path).getroot()
    for suite in root.iter("testsuite"):
        for key in counts:
            counts[key] += int(suite.get(key, 0))
    failed = [
        f"{case.get('classname', '').rsplit('.', 1)[-1]}::{case.get('name')}"
        for case in root.iter("testcase")
        if case.find("failure") is not None or case.find("error") is not None
    ]
    return counts, failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 2)[2],
    )
    add = parser.add_argument
    add("--python", default="3.11", help="3.11, 3.12, 3.13 or an interpreter's path (3.11)")
    add("--lowest", action="store_true", help="dependencies at their declared lower bounds")
    add("--with-flower", action="store_true", help="--lowest: resolve flwr with them (see above)")
    add(
        "--tests",
        nargs="*",
        default=[],
        metavar="PATH",
        help="test files, folders or ids (relative to the checkout), or 'all' "
        "(default: as tools/wheel_check.py)",
    )
    add("--no-tests", action="store_true", help="stop after installing and listing the versions")
    add("--workers", type=int, default=2, help="pytest-xdist workers (2; 1: no xdist)")
    add("--keep-venv", action="store_true", help="keep the temporary venv and working folder")
    add("pytest_args", nargs="*", help="after --: passed on to pytest")
    args = parser.parse_args(argv)

    runtime, test = requirements()
    temp = Path(tempfile.mkdtemp(prefix="fedlab-compat-")).resolve()
    venv, work, dist = temp / "venv", temp / "work", temp / "dist"
    work.mkdir()
    python = wheel_check.venv_python(venv)
    mode = "lowest" if args.lowest else "newest"
    times: dict[str, float] = {}
    try:
        start = time.perf_counter()
        if run([uv(), "venv", "--seed", "--python", interpreter(args.python), str(venv)]):
            return 1
        if not install(temp, python, runtime, test, args):
            return 1
        if run([uv(), "build", "--quiet", "--out-dir", str(dist), str(ROOT)]):
            return 1
        (wheel,) = dist.glob("fedlab_edu-*.whl")
        if run([uv(), "pip", "install", "--python", str(python), "--no-deps", str(wheel)]):
            return 1
        checked = run([uv(), "pip", "check", "--python", str(python)])
        times["venv + install"] = time.perf_counter() - start

        versions = installed_versions(python)
        direct = dict.fromkeys(SHOWN + [requirement_name(r) for r in runtime + test])
        listing = ", ".join(f"{name} {versions.get(name, '-')}" for name in direct)
        python_version = subprocess.run(
            [str(python), "-c", "import platform; print(platform.python_version())"],
            capture_output=True,
            text=True,
        ).stdout.strip()
        print(f"\n[compat] Python {python_version}, {mode}: {listing}")
        if args.no_tests:
            return checked

        wheel_check.install_guard(venv)
        paths, ignores = wheel_check.test_paths(args.tests)
        if "flwr" not in versions and not args.tests:  # no Flower: no test that imports it
            paths = [str(ROOT / "tests")]
            ignores += [f"--ignore={path}" for path in sorted(ROOT.glob("tests/test_flower*.py"))]
            print("\n[compat] flwr is not installed: tests/test_flower*.py are left out")
        if "nbgrader" not in versions and not args.tests:  # tools/assign.py needs it
            ignores.append(f"--ignore={ROOT / 'tests' / 'test_exercises.py'}")
            print("[compat] nbgrader is not installed: tests/test_exercises.py is left out")
        junit = work / "junit.xml"
        workers = ["-n", str(args.workers), "--dist", "loadfile"] if args.workers > 1 else []
        options = [f"--junitxml={junit}", *workers, *dict.fromkeys(ignores), *args.pytest_args]
        start = time.perf_counter()
        code = run(
            wheel_check.pytest_command(venv, *options, *paths),
            cwd=work,
            env=wheel_check.clean_env(venv, wheel_check.TEST_ENV),
        )
        times["tests"] = time.perf_counter() - start

        counts, failed = junit_results(junit)
        bad = counts["failures"] + counts["errors"]
        passed = counts["tests"] - bad - counts["skipped"]
        result = f"{passed} passed, {bad} failed, {counts['skipped']} skipped"
        shown = ", ".join(f"{name} {versions.get(name, '-')}" for name in SHOWN)
        print("\n[compat] " + ", ".join(f"{name} {sec:.0f} s" for name, sec in times.items()))
        print(
            f"\n| Python {python_version} | {mode} | {shown} | {result} | {'; '.join(failed) or '-'} |"
        )
        print(f"\n[compat] direct dependencies: {listing}")
        return code
    finally:
        if args.keep_venv:
            print(f"\n[compat] kept {temp} (venv: {venv})")
        else:
            shutil.rmtree(temp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
