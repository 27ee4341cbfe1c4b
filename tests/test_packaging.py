"""The ways in agree: pyproject.toml, environment.yml, dev.py, .ci/run and the README's commands."""

import importlib.util
import os
import re
import tomllib
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
    """Package names under ``dependencies:`` in environment.yml, its nested ``- pip:`` list included.

    A small hand parser for this file's shape (PyYAML is not a dependency): top-level keys at
    column 0, list items ``- name`` (or ``- pip:`` opening a more-indented list), ``#`` comments.
    """
    names, inside = [], False
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
        names.append(normalise(entry))
    return [name for name in names if name not in NOT_PACKAGES]


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
