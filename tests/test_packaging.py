"""The ways in agree: pyproject.toml, environment.yml, dev.py, .ci/run and the README's commands."""

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOT_PACKAGES = {"python", "pip"}  # conda-only entries; the pip list's `-e .` is fedlab itself


def normalise(requirement: str) -> str:
    """``"Scikit_Learn>=1.3"`` -> ``"scikit-learn"``: the name without channel, extras or version."""
    requirement = requirement.split("::")[-1]  # conda's channel::name
    name = re.match(r"[A-Za-z0-9._-]+", requirement.strip()).group()
    return re.sub(r"[-_.]+", "-", name).lower()


def environment_packages(text: str) -> list[str]:
    """Package names under ``dependencies:`` in environment.yml, its nested ``- pip:`` list included."""
    names = [normalise(entry) for entry in environment_requirements(text)]
    return [name for name in names if name not in NOT_PACKAGES]


def environment_requirements(text: str) -> list[str]:
    """The entries under ``dependencies:`` (``"numpy>=1.26"``), the ``- pip:`` list's included.

    A small hand parser for this file's shape (PyYAML is not a dependency): top-level keys at
    column 0, list items ``- name`` (or ``- pip:`` opening a more-indented list), ``#`` comments.
    """
    entries, inside = [], False
    for raw in text.splitlines():
        line = re.sub(r"(^|\s)#.*", "", raw).rstrip()
        if not line:
            continue
        if not line[0].isspace():  # a top-level key: `dependencies:` starts the list, others end it
            inside = line == "dependencies:"
            continue
        item = line.strip()
        if not inside or not item.startswith("- "):
            continue
        entry = item[2:].strip()
        if entry.endswith(":") or entry.startswith("-e ") or entry.startswith("--"):
            continue  # `- pip:` (its items follow), `-e .` (fedlab itself), pip options
        entries.append(entry)
    return entries


def pyproject_packages() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    requirements = project["dependencies"] + project["optional-dependencies"]["test"]
    return [normalise(requirement) for requirement in requirements]


def load_dev():
    spec = importlib.util.spec_from_file_location("dev", ROOT / "dev.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def code_blocks(markdown: str) -> list[tuple[str, str]]:
    """``(language, body)`` of every fenced code block, in order."""
    return re.findall(r"^```(\w*)\n(.*?)^```", markdown, re.M | re.S)


def test_normalise_strips_versions_extras_channels_and_case():
    assert normalise("Scikit_Learn>=1.3") == "scikit-learn"
    assert normalise("pytest-xdist[psutil] >= 3.5 ; python_version>'3'") == "pytest-xdist"
    assert normalise("conda-forge::python=3.11") == "python"
    assert normalise("ruamel.yaml") == "ruamel-yaml"


def test_environment_parser_reads_the_nested_pip_list_and_skips_the_rest():
    text = (
        "# a comment\nname: x\nchannels:\n  - conda-forge\ndependencies:\n  - python=3.11\n"
        "  - pip\n  - NumPy>=1.26   # why\n  - pip:\n      # why\n      - tensorflow>=2.16\n"
        "      - -e .\nvariables:\n  - not-a-package\n"
    )
    assert environment_packages(text) == ["numpy", "tensorflow"]


def test_environment_yml_lists_the_same_packages_as_pyproject():
    conda = environment_packages((ROOT / "environment.yml").read_text(encoding="utf-8"))
    pip = pyproject_packages()
    assert len(conda) == len(set(conda)), f"listed twice in environment.yml: {conda}"
    assert set(conda) == set(pip), (
        f"only in environment.yml: {sorted(set(conda) - set(pip))}; "
        f"only in pyproject.toml: {sorted(set(pip) - set(conda))}"
    )


def test_environment_yml_uses_conda_forge_python_311_and_installs_fedlab_itself():
    text = (ROOT / "environment.yml").read_text(encoding="utf-8")
    assert re.search(r"^channels:\n\s+- conda-forge$", text, re.M)
    assert re.search(r"^\s+- python=3\.11\s*(#.*)?$", text, re.M)
    assert re.search(r"^\s+- -e \.\s*(#.*)?$", text, re.M)


def test_distribution_is_fedlab_edu_and_import_name_is_fedlab():
    # PyPI's `fedlab` is an unrelated PyTorch framework
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["name"] == "fedlab-edu"
    assert (ROOT / "fedlab" / "__init__.py").is_file()


def test_readme_first_code_block_is_the_two_commands():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("# "), "the README starts with its title"
    rest = "\n".join(lines[1:])
    language, body = code_blocks(rest)[0]
    assert language == "bash"
    before = rest[: rest.index("```")].strip()
    assert before and "\n\n" not in before, "only a one-sentence tagline between title and commands"
    commands = [line.split("#")[0].strip() for line in body.splitlines() if line.strip()]
    assert commands == ["python3 dev.py lab", "python3 dev.py test"]


def test_ci_runs_exactly_the_readmes_test_command():
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert script.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in script
    commands = [
        line.strip()
        for line in script.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert "python3 dev.py test" in commands
    if os.name == "posix":
        assert os.access(ROOT / ".ci" / "run", os.X_OK), "chmod +x .ci/run"


def test_readme_conda_test_command_matches_dev_py():
    dev = load_dev()
    pytest_line = " ".join(["pytest", *dev.TEST_OPTIONS, *dev.TEST_PATHS])
    assert pytest_line in (ROOT / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("extra", "expected_tail"),
    [
        ([], ["tests", "notebooks"]),
        (["-x", "-q"], ["-x", "-q", "tests", "notebooks"]),
        (["-x", "--", "tests/test_engine.py"], ["-x", "tests/test_engine.py"]),
    ],
)
def test_dev_py_test_passes_extra_arguments_to_pytest(monkeypatch, extra, expected_tail):
    dev = load_dev()
    calls = []
    monkeypatch.setattr(dev, "setup", lambda: None)
    monkeypatch.setattr(dev, "run", lambda command, env=None: calls.append((command, env)) or 7)
    assert dev.main(["test", *extra]) == 7, "dev.py exits with pytest's exit code"
    ((command, env),) = calls
    assert command[1:3] == ["-m", "pytest"]
    assert command[3:] == [*dev.TEST_OPTIONS, *expected_tail]
    assert env["PYTHONHASHSEED"] == "0"
    assert "MPLBACKEND" not in env, "notebook kernels must keep the inline backend, as students'"


def test_ci_installs_chromium_and_requires_the_browser_test():
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "apt-get install" in script and "chromium" in script
    assert "export FEDLAB_REQUIRE_BROWSER=1" in script, "CI must fail, not skip, without a browser"
    assert script.index("FEDLAB_REQUIRE_BROWSER") < script.index("python3 dev.py test")


def test_every_benchmark_file_is_a_dev_py_bench_name():
    names = {p.stem.removeprefix("bench_") for p in (ROOT / "benchmarks").glob("bench_*.py")}
    assert set(load_dev().BENCHMARKS) == names


@pytest.mark.parametrize(("euid", "expected"), [(0, ["--allow-root"]), (1000, [])])
def test_dev_py_lab_allows_root_only_as_root(monkeypatch, euid, expected):
    dev = load_dev()
    calls = []
    monkeypatch.setattr(dev, "setup", lambda: None)
    monkeypatch.setattr(dev, "run", lambda command, env=None: calls.append(command) or 0)
    monkeypatch.setattr(dev.os, "geteuid", lambda: euid, raising=False)
    monkeypatch.setattr(dev, "WINDOWS", False)
    assert dev.main(["lab", "--no-browser"]) == 0
    assert calls[0][1:] == ["lab", "notebooks/00_index.ipynb", *expected, "--no-browser"]


@pytest.mark.parametrize(
    ("task", "script"),
    [
        ("sync", "tools/notebook_pairs.py"),
        ("audit", "tools/output_audit.py"),
        ("site", "tools/site.py"),
        ("wheel", "tools/wheel_check.py"),
        ("compat", "tools/compat.py"),
        ("assign", "tools/assign.py"),
    ],
)
def test_dev_py_tools_run_in_the_venv_with_their_arguments(monkeypatch, task, script):
    dev = load_dev()
    calls = []
    monkeypatch.setattr(dev, "setup", lambda: None)
    monkeypatch.setattr(dev, "run", lambda command, env=None: calls.append(command) or 3)
    assert dev.main([task, "04", "--check"]) == 3
    assert calls == [[str(dev.PYTHON), script, "04", "--check"]]


def test_dev_py_test_keeps_the_users_onednn_setting(monkeypatch):
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "1")
    assert load_dev().TEST_ENV["TF_ENABLE_ONEDNN_OPTS"] == "1"
    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS")
    assert load_dev().TEST_ENV["TF_ENABLE_ONEDNN_OPTS"] == "0"


# -- the wheel and the declared versions (tools/wheel_check.py, tools/compat.py) -----------------


def load_tool(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def versions_allowed(requirement: str) -> list[str]:
    """``"flwr[simulation] >= 1.42, <1.43"`` -> ``[">=1.42", "<1.43"]`` (conda's ``=`` as pip's)."""
    requirement = requirement.split("::")[-1].split(";")[0]
    rest = re.sub(r"^[A-Za-z0-9._-]+(\[[^\]]*\])?", "", requirement.strip())
    return sorted(part.strip().replace(" ", "") for part in rest.split(",") if part.strip())


def test_versions_allowed_reads_pip_and_conda_specifiers():
    assert versions_allowed("flwr[simulation] >= 1.42, <1.43") == ["<1.43", ">=1.42"]
    assert versions_allowed("conda-forge::numpy>=1.26") == [">=1.26"]
    assert versions_allowed("tqdm") == []


def test_environment_yml_declares_the_same_versions_as_pyproject():
    """The lower bounds tools/compat.py measured hold for both routes in."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    pip = {
        normalise(requirement): versions_allowed(requirement)
        for requirement in project["dependencies"] + project["optional-dependencies"]["test"]
    }
    conda = {
        normalise(entry): versions_allowed(entry)
        for entry in environment_requirements((ROOT / "environment.yml").read_text("utf-8"))
        if normalise(entry) not in NOT_PACKAGES
    }
    differ = {name: (pip[name], conda[name]) for name in pip if conda.get(name) != pip[name]}
    assert not differ, f"pyproject.toml vs environment.yml: {differ}"


def test_the_wheel_holds_every_file_of_fedlab_and_nothing_else(tmp_path):
    """Built by pip from a copy of the sources, as `pip install .` would build it (~3 s)."""
    wheel_check = load_tool("wheel_check")
    source = tmp_path / "source"
    caches = shutil.ignore_patterns("__pycache__")
    shutil.copytree(ROOT / "fedlab", source / "fedlab", ignore=caches)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check"]
    subprocess.run([*command, "-q", "-w", str(tmp_path), str(source)], check=True, timeout=300)
    (wheel,) = tmp_path.glob("fedlab_edu-*.whl")
    assert wheel_check.wheel_problems(wheel) == []
    assert "fedlab/flower/node.py" in zipfile.ZipFile(wheel).namelist()


def test_files_read_beside_a_module_are_found_in_every_way_of_naming_them(tmp_path):
    wheel_check = load_tool("wheel_check")
    beside = wheel_check.files_read_beside_modules()  # LocalFederation runs both as files
    assert beside["fedlab/flower/node.py"] == "fedlab/flower/federation.py"
    assert beside["fedlab/flower/watchdog.py"] == "fedlab/flower/federation.py"
    (tmp_path / "fedlab").mkdir()
    (tmp_path / "fedlab" / "a.py").write_text(
        'Path(__file__).with_name("one.json")\n'
        'Path(__file__).resolve().parent / "two.csv"\n'
        'importlib.resources.files("fedlab") / "three.txt"\n'
        'files(__package__).joinpath("four.npz")\n'
        'pkgutil.get_data(__name__, "five.bin")\n'
    )
    found = wheel_check.files_read_beside_modules(tmp_path)
    names = ["one.json", "two.csv", "three.txt", "four.npz", "five.bin"]
    assert found == {f"fedlab/{name}": "fedlab/a.py" for name in names}


def test_wheel_problems_name_a_missing_data_file_and_a_stray_file(tmp_path):
    wheel_check = load_tool("wheel_check")
    (tmp_path / "fedlab").mkdir()
    (tmp_path / "fedlab" / "__init__.py").write_text('Path(__file__).with_name("table.json")\n')
    (tmp_path / "fedlab" / "table.json").write_text("{}")
    wheel = tmp_path / "fedlab_edu-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name in ("fedlab/__init__.py", "fedlab_edu-0.1.0.dist-info/RECORD", "tests/x.py"):
            archive.writestr(name, "")
    assert wheel_check.wheel_problems(wheel, tmp_path) == [
        "fedlab/table.json is not in the wheel",
        "fedlab/table.json (opened by fedlab/__init__.py) is not in the wheel",
        "tests/x.py is in the wheel but is neither fedlab nor its metadata",
    ]


def test_the_wheel_guard_fails_a_run_whose_fedlab_is_the_checkouts(tmp_path):
    """In .venv fedlab is installed editable, from the checkout: the guard must refuse it."""
    wheel_check = load_tool("wheel_check")
    (tmp_path / "fedlab_wheel_guard.py").write_text(wheel_check.GUARD.format(checkout=str(ROOT)))
    (tmp_path / "test_nothing.py").write_text("def test_nothing():\n    pass\n")
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "fedlab_wheel_guard", "-p", "no:cacheprovider"],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    if importlib.util.find_spec("fedlab").origin.startswith(str(ROOT)):  # editable, as in .venv
        assert done.returncode == 3, done.stdout + done.stderr
        assert "fedlab comes from the checkout" in done.stdout + done.stderr
    else:  # this very run tests an installed wheel (tools/wheel_check.py)
        assert done.returncode == 0, done.stdout + done.stderr


def test_the_checks_leave_out_and_add_tests_that_exist():
    wheel_check = load_tool("wheel_check")
    for path in wheel_check.SLOW + [test.split("::")[0] for test in wheel_check.E2E]:
        assert (ROOT / path).exists(), f"tools/wheel_check.py names {path}, which is gone"
    (node,) = wheel_check.E2E
    file, name = node.split("::")
    assert f"def {name}(" in (ROOT / file).read_text(encoding="utf-8")
    assert (ROOT / wheel_check.NOTEBOOK).is_file()
