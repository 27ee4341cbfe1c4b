"""pyproject.toml and environment.yml describe the same dependencies; the README starts right."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def package_name(requirement: str) -> str:
    name = re.split(r"[<>=!~\[; ]", requirement.strip(), maxsplit=1)[0]
    return name.lower().replace("_", "-")


def conda_packages(text: str) -> set[str]:
    """Names listed under ``dependencies:`` (and its nested ``pip:`` list) of environment.yml."""
    names, inside = set(), False
    for line in text.splitlines():
        stripped = line.split("#", 1)[0].rstrip()
        if not stripped:
            continue
        if not line.startswith(" "):
            inside = stripped == "dependencies:"
            continue
        item = stripped.strip()
        if inside and item.startswith("- ") and not item.endswith(":"):
            names.add(package_name(item[2:]))
    return names - {"python", "pip", "-e"}


def test_environment_yml_and_pyproject_list_the_same_packages():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pip_names = {package_name(r) for r in project["dependencies"] + project["optional-dependencies"]["test"]}
    conda_names = conda_packages((ROOT / "environment.yml").read_text())
    assert conda_names == pip_names, f"only in environment.yml: {conda_names - pip_names}; only in pyproject: {pip_names - conda_names}"


def test_environment_yml_installs_fedlab_itself():
    text = (ROOT / "environment.yml").read_text()
    assert re.search(r"^\s*- -e \.", text, re.M)
    assert "python=3.11" in text


def test_distribution_name_differs_from_the_unrelated_pypi_fedlab():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["name"] == "fedlab-edu"


def test_readme_starts_with_the_two_commands_and_ci_runs_the_test_one():
    readme = (ROOT / "README.md").read_text()
    first_block = re.search(r"```(?:bash)?\n(.*?)```", readme, re.S).group(1)
    commands = [line.split("#")[0].strip() for line in first_block.splitlines() if line.strip()]
    assert commands == ["python3 dev.py lab", "python3 dev.py test"]
    assert "python3 dev.py test" in (ROOT / ".ci" / "run").read_text()
