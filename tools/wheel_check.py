"""Build fedlab-edu's sdist and wheel, check them, and test the wheel installed in a fresh venv.

    .venv/bin/python tools/wheel_check.py                      # every step below
    .venv/bin/python tools/wheel_check.py --tests all          # the whole tests/ folder
    .venv/bin/python tools/wheel_check.py --tests tests/test_engine.py --no-notebook
    .venv/bin/python tools/wheel_check.py --build-only         # steps 1-3: no venv, no tests
    .venv/bin/python tools/wheel_check.py --keep-venv -- -x    # after --: more pytest options

1. **build**: ``python -m build`` writes the sdist and, from the sdist (as pip builds it for
   users), the wheel into ``dist/`` (git-ignored; ``--outdir`` elsewhere).
2. **twine**: ``twine check --strict`` on both (the README renders on PyPI, the metadata is
   valid). Without ``build`` or ``twine`` in this Python, uv does both (``uv build``, ``uv tool
   run twine``).
3. **contents**: the wheel holds every file git tracks under ``fedlab/`` (fedlab reads no data
   files today; one added later must ship too) and every file a module opens beside itself
   (``Path(__file__).with_name(...)``, ``importlib.resources`` ...: today ``flower/node.py`` and
   ``flower/watchdog.py``, which :mod:`fedlab.flower.federation` starts as scripts), and nothing
   but fedlab and its ``.dist-info``; the sdist holds ``pyproject.toml``, ``README.md`` and the
   same package files.
4. **venv**: a new venv in a temporary folder outside the checkout (``--python`` picks the
   interpreter) with ``fedlab-edu[test] @ <the wheel>``: the wheel, not editable, and its test
   extras (uv if it is next to this Python or on PATH, else pip; ``--installer``).
5. **import**: ``import fedlab`` in the new venv, run in the outside folder and in notebooks/
   (where nbval starts kernels), finds the wheel's copy.
6. **tests**: pytest from the new venv on the checkout's ``tests/`` (``--tests``), run in the
   outside folder with ``-c pyproject.toml --rootdir <checkout>``: the checkout's settings apply,
   but ``import fedlab`` can only find the wheel's copy. A small plugin (``-p
   fedlab_wheel_guard``, written into the venv) prints which fedlab is tested and fails the run
   if fedlab comes from the checkout or the checkout's root is on ``sys.path``, in every worker.
7. **notebook**: one notebook (``--notebook``, default 01) under ``nbval --nbval-lax
   --nbval-current-env``, where it is (so notebooks/conftest.py's last-digit tolerance applies),
   pytest again in the outside folder.

Every step is timed; a table of the times ends the output. The exit code is 0 only if every step
passed.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "fedlab"
WINDOWS = os.name == "nt"
# the same quiet, reproducible environment as `python3 dev.py test` (dev.py's TEST_ENV)
TEST_ENV = {"TF_CPP_MIN_LOG_LEVEL": "2", "TF_ENABLE_ONEDNN_OPTS": "0", "PYTHONHASHSEED": "0"}
# `--tests` default: the package tests without the Flower end-to-end files (a real SuperLink and
# SuperNodes, Ray: ~6.5 min of the whole folder's ~9 on 2 cores) and the browser test, plus one
# Flower run, which starts fedlab/flower/node.py as a file and `python -m fedlab.flower.executor`:
# the ways of using the wheel that importing it does not cover. Also left out, as content rather
# than packaging (`dev.py test` runs them on the checkout): the table of feature combinations
# (~350 one-round runs) and the exercises' student versions (every notebook run once more, ~5
# min). `--tests all`: the whole folder.
SLOW = [
    "tests/test_flower.py",
    "tests/test_flower_simulation.py",
    "tests/test_flower_compression.py",
    "tests/browser",
    "tests/test_composition.py",
    "tests/test_exercises.py",
    "tests/test_exercises_students.py",
]
E2E = ["tests/test_flower.py::test_fedavg_on_flower_equals_simulate"]  # runs despite --ignore
NOTEBOOK = "notebooks/01_one_round_by_hand.ipynb"

# how a module names a file it opens from its own folder: Path(__file__).with_name("x"),
# Path(__file__).parent / "x", importlib.resources.files(...) / "x", pkgutil.get_data(..., "x")
OWNER = r"""(?:["']fedlab[\w.]*["']|__package__|__name__)"""
BESIDE_PATTERNS = [
    r"""\.with_name\(\s*["']([^"']+)["']\s*\)""",
    r"""__file__\)(?:\.resolve\(\))?\.parent\s*/\s*["']([^"']+)["']""",
    rf"""files\(\s*{OWNER}?\s*\)\s*(?:/\s*|\.joinpath\(\s*)["']([^"']+)["']""",
    rf"""get_data\(\s*{OWNER}\s*,\s*["']([^"']+)["']""",
]


# -- what the distributions must hold ------------------------------------------------------------


def package_files(root: Path = ROOT) -> list[str]:
    """Every file under ``fedlab/`` that git tracks (POSIX paths), or, without git, every file
    there but caches: the files a wheel of this checkout must hold."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--", PACKAGE],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split("\0")
        files = [name for name in listed if name and (root / name).is_file()]
    except (OSError, subprocess.CalledProcessError):
        files = []
    if not files:  # not a git checkout (an unpacked sdist), or no git
        files = [
            path.relative_to(root).as_posix()
            for path in (root / PACKAGE).rglob("*")
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
        ]
    return sorted(files)


def files_read_beside_modules(root: Path = ROOT) -> dict[str, str]:
    """``{"fedlab/flower/node.py": "fedlab/flower/federation.py", ...}``: each file a module of
    fedlab opens from its own folder (found by ``BESIDE_PATTERNS``), and the module that names it."""
    found = {}
    for module in sorted((root / PACKAGE).rglob("*.py")):
        text = module.read_text(encoding="utf-8")
        folder = module.parent.relative_to(root).as_posix()
        for pattern in BESIDE_PATTERNS:
            for name in re.findall(pattern, text):
                found[f"{folder}/{name}"] = module.relative_to(root).as_posix()
    return found


def wheel_problems(wheel: Path, root: Path = ROOT) -> list[str]:
    """What is wrong with ``wheel`` as the wheel of the checkout at ``root`` (empty: nothing)."""
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    problems = [f"{name} is not in the wheel" for name in package_files(root) if name not in names]
    problems += [
        f"{name} (opened by {module}) is not in the wheel"
        for name, module in files_read_beside_modules(root).items()
        if name not in names
    ]
    problems += [
        f"{name} is in the wheel but is neither fedlab nor its metadata"
        for name in sorted(names)
        if not name.startswith(f"{PACKAGE}/")
        and not re.match(r"fedlab_edu-[^/]+\.dist-info/", name)
    ]
    problems += [f"{name} is a cached file" for name in sorted(names) if "__pycache__" in name]
    return problems


def sdist_problems(sdist: Path, root: Path = ROOT) -> list[str]:
    """What is missing from the sdist: what building the wheel from it needs, and fedlab's files."""
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    needed = ["pyproject.toml", "README.md", "PKG-INFO", *package_files(root)]
    return [f"{name} is not in the sdist" for name in needed if name not in names]


# -- running things ------------------------------------------------------------------------------


class Steps:
    """Runs the steps, times each, remembers which failed, prints the table at the end."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, float, str]] = []

    def run(self, name: str, command: list[str], **kwargs) -> bool:
        print(f"\n[wheel_check] {name}: {' '.join(map(str, command))}", flush=True)
        start = time.perf_counter()
        code = subprocess.run(command, **kwargs).returncode
        return self.record(name, time.perf_counter() - start, code == 0, f"exit {code}")

    def record(self, name: str, seconds: float, ok: bool, detail: str = "") -> bool:
        self.rows.append((name, seconds, "ok" if ok else f"FAILED ({detail})"))
        if not ok:
            print(f"[wheel_check] {name} FAILED: {detail}", flush=True)
        return ok

    @property
    def ok(self) -> bool:
        return all(result == "ok" for _, _, result in self.rows)

    def table(self) -> str:
        lines = ["| step | seconds | result |", "|---|---:|---|"]
        lines += [f"| {name} | {seconds:.1f} | {result} |" for name, seconds, result in self.rows]
        return "\n".join(lines)


def find_uv() -> str | None:
    beside = Path(sys.executable).parent / ("uv.exe" if WINDOWS else "uv")
    return str(beside) if beside.exists() else shutil.which("uv")


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if WINDOWS else "bin/python")


def clean_env(venv: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment with the venv first on PATH and nothing that could point
    Python back at the checkout (PYTHONPATH, PYTHONHOME, another VIRTUAL_ENV)."""
    drop = {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"}
    env = {key: value for key, value in os.environ.items() if key not in drop}
    env["PATH"] = os.pathsep.join([str(venv_python(venv).parent), env.get("PATH", "")])
    env["VIRTUAL_ENV"] = str(venv)
    return {**env, **(extra or {})}


def pytest_command(venv: Path, *options: str) -> list[str]:
    """pytest of ``venv`` with the checkout's settings (pyproject.toml, rootdir) and the guard."""
    return [
        str(venv_python(venv)),
        "-m",
        "pytest",
        "-c",
        str(ROOT / "pyproject.toml"),
        "--rootdir",
        str(ROOT),
        "-p",
        "fedlab_wheel_guard",
        *options,
    ]


GUARD = '''\
"""pytest plugin written by fedlab's tools/wheel_check.py: fedlab under test is the venv's."""

import importlib.util
import os
import sys
from pathlib import Path

import pytest

CHECKOUT = Path({checkout!r}).resolve()


def _where() -> Path:
    module = sys.modules.get("fedlab")
    origin = module.__file__ if module else importlib.util.find_spec("fedlab").origin
    return Path(origin).resolve()


def _problem():
    where = _where()
    if where == CHECKOUT or CHECKOUT in where.parents:
        return f"fedlab comes from the checkout ({{where}}), not from the installed wheel"
    for entry in sys.path:
        if Path(entry or os.getcwd()).resolve() == CHECKOUT:
            return f"the checkout {{CHECKOUT}} is on sys.path ({{entry!r}})"
    return None


def pytest_report_header(config):
    return f"fedlab under test: {{_where()}}"


def pytest_collection_finish(session):
    problem = _problem()
    if problem:
        pytest.exit(problem, returncode=3)


def pytest_sessionfinish(session, exitstatus):
    problem = _problem()  # the tests have imported fedlab by now (here or in a worker)
    if problem:
        print("\\n" + problem)
        session.exitstatus = 3
'''


def install_guard(venv: Path) -> None:
    """Write the guard plugin into the venv's site-packages (importable by -p in every worker)."""
    site = subprocess.run(
        [str(venv_python(venv)), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    Path(site, "fedlab_wheel_guard.py").write_text(GUARD.format(checkout=str(ROOT)), "utf-8")


def test_paths(tests: list[str]) -> tuple[list[str], list[str]]:
    """``--tests`` values -> (paths for pytest, ``--ignore`` options)."""
    if tests == ["all"]:
        return [str(ROOT / "tests")], []
    if tests:
        return [str(ROOT / test) for test in tests], []  # an absolute path stays as it is
    return [str(ROOT / "tests"), *(str(ROOT / test) for test in E2E)], [
        f"--ignore={ROOT / slow}" for slow in SLOW
    ]


# -- the steps -----------------------------------------------------------------------------------


def build(steps: Steps, outdir: Path) -> tuple[Path, Path] | None:
    outdir.mkdir(parents=True, exist_ok=True)
    for old in outdir.glob("fedlab_edu-*"):
        old.unlink()
    if importlib.util.find_spec("build"):
        command = [sys.executable, "-m", "build", "--outdir", str(outdir), str(ROOT)]
    else:
        command = [find_uv() or "uv", "build", "--out-dir", str(outdir), str(ROOT)]
    if not steps.run("build sdist + wheel", command):
        return None
    wheels, sdists = list(outdir.glob("fedlab_edu-*.whl")), list(outdir.glob("fedlab_edu-*.tar.gz"))
    if len(wheels) != 1 or len(sdists) != 1:
        steps.record("build sdist + wheel", 0, False, f"not one wheel and one sdist in {outdir}")
        return None
    return wheels[0], sdists[0]


def twine_check(steps: Steps, wheel: Path, sdist: Path) -> None:
    if importlib.util.find_spec("twine"):
        twine = [sys.executable, "-m", "twine"]
    else:
        twine = [find_uv() or "uv", "tool", "run", "twine"]
    steps.run("twine check", [*twine, "check", "--strict", str(wheel), str(sdist)])


def check_contents(steps: Steps, wheel: Path, sdist: Path) -> None:
    start = time.perf_counter()
    problems = wheel_problems(wheel) + sdist_problems(sdist)
    with zipfile.ZipFile(wheel) as archive:
        count = len(archive.namelist())
    beside = sorted(files_read_beside_modules())
    print(f"\n[wheel_check] {wheel.name}: {count} files; opened beside a module: {beside}")
    for problem in problems:
        print(f"  - {problem}")
    seconds = time.perf_counter() - start
    steps.record("contents of wheel and sdist", seconds, not problems, f"{len(problems)} problems")


def make_venv(steps: Steps, args, venv: Path, wheel: Path, cache: Path | None) -> bool:
    uv = find_uv() if args.installer in ("auto", "uv") else None
    if args.installer == "uv" and not uv:
        return steps.record("venv", 0, False, "--installer uv, but there is no uv")
    env = {key: value for key, value in os.environ.items() if key != "VIRTUAL_ENV"}
    if cache:  # an empty cache: what the first install on a fresh CI machine costs
        env["UV_CACHE_DIR"] = env["PIP_CACHE_DIR"] = str(cache)
    requirement = f"fedlab-edu[test] @ {wheel.resolve().as_uri()}"
    python = str(venv_python(venv))
    if uv:
        create = [uv, "venv", "--seed", "--python", args.python, str(venv)]
        install = [uv, "pip", "install", "--python", python, requirement]
    else:
        create = [args.python, "-m", "venv", str(venv)]
        install = [python, "-m", "pip", "install", "--disable-pip-version-check", requirement]
    label = f"({'uv' if uv else 'pip'}, {'empty' if cache else 'warm'} cache)"
    return steps.run("venv", create, env=env) and steps.run(
        f"install wheel + [test] {label}", install, env=env
    )


def reinstall_wheel(steps: Steps, venv: Path, wheel: Path) -> bool:
    """``--venv DIR`` that exists: only fedlab-edu is replaced (its dependencies stay)."""
    uv, python = find_uv(), str(venv_python(venv))
    if uv:
        command = [uv, "pip", "install", "--python", python, "--reinstall", "--no-deps"]
    else:
        command = [python, "-m", "pip", "install", "--force-reinstall", "--no-deps"]
    return steps.run("reinstall fedlab-edu only", [*command, str(wheel)])


def check_import(steps: Steps, venv: Path, workdir: Path) -> bool:
    """``import fedlab`` finds the wheel's copy where the tests run (``workdir``) and where nbval
    starts notebook kernels (notebooks/)."""
    start = time.perf_counter()
    for cwd in (workdir, ROOT / "notebooks"):
        done = subprocess.run(
            [str(venv_python(venv)), "-c", "import fedlab; print(fedlab.__file__)"],
            cwd=cwd,
            env=clean_env(venv, TEST_ENV),
            capture_output=True,
            text=True,
        )
        print(f"\n[wheel_check] import fedlab in {cwd}: {done.stdout.strip()}{done.stderr[-2000:]}")
        lines = done.stdout.splitlines()
        where = Path(lines[-1]).resolve() if done.returncode == 0 and lines else None
        if where is None or where == ROOT or ROOT in where.parents:
            detail = f"in {cwd}: " + (f"fedlab at {where}" if where else "import failed")
            return steps.record("import fedlab", time.perf_counter() - start, False, detail)
    return steps.record("import fedlab", time.perf_counter() - start, True)


def run_tests(steps: Steps, args, venv: Path, workdir: Path) -> None:
    paths, ignores = test_paths(args.tests)
    workers = ["-n", str(args.workers), "--dist", "loadfile"] if args.workers > 1 else []
    command = pytest_command(venv, *workers, *ignores, *args.pytest_args, *paths)
    what = (
        " ".join(args.tests) or "tests/ but the Flower end-to-end files and browser, + 1 Flower run"
    )
    steps.run(f"tests ({what})", command, cwd=workdir, env=clean_env(venv, TEST_ENV))


def run_notebook(steps: Steps, args, venv: Path, workdir: Path) -> None:
    notebook = (ROOT / args.notebook).resolve()
    command = pytest_command(venv, "--nbval-lax", "--nbval-current-env", str(notebook))
    name = f"notebook {notebook.name} (nbval-lax)"
    steps.run(name, command, cwd=workdir, env=clean_env(venv, TEST_ENV))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 2)[2],
    )
    add = parser.add_argument
    add("--outdir", type=Path, default=ROOT / "dist", help="for the sdist and wheel (dist/)")
    add("--python", default=sys.executable, help="interpreter of the new venv (default: this one)")
    add("--installer", choices=["auto", "uv", "pip"], default="auto", help="auto: uv if found")
    add("--empty-cache", action="store_true", help="install with an empty download cache")
    add("--venv", type=Path, help="venv folder; if it exists, only fedlab-edu is reinstalled")
    add("--keep-venv", action="store_true", help="keep the temporary venv and working folder")
    add(
        "--tests",
        nargs="*",
        default=[],
        metavar="PATH",
        help="test files, folders or ids (relative to the checkout), or 'all' (default: tests/ "
        f"without {', '.join(SLOW)}, plus {', '.join(E2E)})",
    )
    add("--no-tests", action="store_true", help="no package tests")
    add("--notebook", default=NOTEBOOK, help=f"the notebook run under nbval ({NOTEBOOK})")
    add("--no-notebook", action="store_true", help="no notebook")
    add("--workers", type=int, default=2, help="pytest-xdist workers (2; 1: no xdist)")
    add("--build-only", action="store_true", help="build, twine check, contents; no venv")
    add("pytest_args", nargs="*", help="after --: passed on to the tests' pytest")
    args = parser.parse_args(argv)

    steps = Steps()
    built = build(steps, args.outdir.resolve())
    if built is None:
        print(steps.table())
        return 1
    wheel, sdist = built
    twine_check(steps, wheel, sdist)
    check_contents(steps, wheel, sdist)
    if args.build_only:
        print("\n" + steps.table())
        return 0 if steps.ok else 1

    temp = Path(tempfile.mkdtemp(prefix="fedlab-wheel-")).resolve()
    if ROOT in temp.parents:
        sys.exit(f"[wheel_check] {temp} is inside the checkout: set TMPDIR to a folder outside it")
    venv = (args.venv or temp / "venv").resolve()
    workdir = temp / "work"
    workdir.mkdir()
    try:
        if args.venv and venv_python(venv).exists():
            ready = reinstall_wheel(steps, venv, wheel)
        else:
            ready = make_venv(
                steps, args, venv, wheel, temp / "cache" if args.empty_cache else None
            )
        if ready:
            install_guard(venv)
            if check_import(steps, venv, workdir):
                if not args.no_tests:
                    run_tests(steps, args, venv, workdir)
                if not args.no_notebook:
                    run_notebook(steps, args, venv, workdir)
    finally:
        if args.keep_venv:
            print(f"\n[wheel_check] kept {temp} (venv: {venv})")
        else:
            shutil.rmtree(temp, ignore_errors=True)
    print(f"\n[wheel_check] {wheel.name} and {sdist.name} in {args.outdir}; venv: {args.python}\n")
    print(steps.table())
    return 0 if steps.ok else 1


if __name__ == "__main__":
    sys.exit(main())
