"""The course website's pieces that need no build: launch links from pyproject.toml, the run box
and widget outputs of a notebook page, README sections on the landing page, the link checker.
The site itself is built and opened in tests/browser/test_site_browser.py."""

import importlib.util
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ext = load("fedlab_site", ROOT / "docs/_ext/fedlab_site.py")
builder = load("fedlab_site_builder", ROOT / "tools/site.py")  # not `site`: that is the stdlib's


def test_launch_links_open_the_notebook_on_colab_and_binder():
    links = ext.launch_links("https://github.com/owner/repo", "notebooks/01_x.ipynb")
    assert links == {
        "colab": "https://colab.research.google.com/github/owner/repo/blob/main/notebooks/01_x.ipynb",
        "binder": "https://mybinder.org/v2/gh/owner/repo/HEAD?labpath=notebooks/01_x.ipynb",
    }
    for spelling in ("https://github.com/owner/repo/", "https://github.com/owner/repo.git"):
        assert ext.launch_links(spelling, "notebooks/01_x.ipynb") == links


@pytest.mark.parametrize(
    "url",
    ["https://gitlab.com/o/r", "http://github.com/o/r", "https://github.com/o", "github.com/o/r"],
)
def test_launch_links_need_a_github_repository(url):
    with pytest.raises(ValueError, match="https://github.com/OWNER/REPO"):
        ext.launch_links(url, "notebooks/01_x.ipynb")


def test_the_repository_is_read_from_pyprojects_project_urls():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    url = ext.repository_url(pyproject)
    assert url == pyproject["project"]["urls"]["Repository"].rstrip("/").removesuffix(".git")
    ext.launch_links(url, "notebooks/00_index.ipynb")  # a GitHub URL, or the site cannot build
    with pytest.raises(ValueError, match=r"\[project.urls\]"):
        ext.repository_url({"project": {"name": "fedlab-edu"}})


def test_the_run_box_goes_under_the_title_and_widgets_become_their_picture():
    widget = {"application/vnd.jupyter.widget-view+json": {"model_id": "m"}, "text/plain": "VBox()"}
    nb = {
        "metadata": {"widgets": {"state": {}}},
        "cells": [
            {"cell_type": "markdown", "source": ["# 01 · Title\n", "Purpose."]},
            {"cell_type": "code", "source": "", "outputs": [{"data": dict(widget)}]},
            {
                "cell_type": "code",
                "source": "",
                "outputs": [{"data": {**widget, "image/png": "x"}}],
            },
        ],
    }
    ext.prepare_notebook(nb, "BOX")
    assert nb["cells"][0]["source"] == "# 01 · Title\nBOX\nPurpose."
    assert nb["cells"][1]["outputs"][0]["data"] == {"text/markdown": ext.WIDGET_NOTE}
    assert nb["cells"][2]["outputs"][0]["data"] == {"text/plain": "VBox()", "image/png": "x"}
    assert "widgets" not in nb["metadata"]


def test_readme_sections_link_notebooks_to_their_pages_and_files_to_the_repository():
    readme = (
        "# t\n## The notebooks\n| `01_one_round` | see [bench](benchmarks/README.md), "
        "[web](https://x.org), [here](#a) |\n```bash\n# a comment\n```\n### Sub\nnot this\n"
    )
    assert ext.readme_section(readme, "The notebooks", "https://github.com/o/r") == [
        "| [`01_one_round`](notebooks/01_one_round.ipynb) | see "
        "[bench](https://github.com/o/r/blob/main/benchmarks/README.md), [web](https://x.org), "
        "[here](#a) |",
        "```bash",
        "# a comment",
        "```",
    ]
    with pytest.raises(ValueError, match="## Missing"):
        ext.readme_section(readme, "Missing", "https://github.com/o/r")


def test_the_sections_the_landing_page_takes_from_the_readme_exist():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    index = (ROOT / "docs/index.md").read_text(encoding="utf-8")
    headings = [
        line.split("}", 1)[1].strip() for line in index.splitlines() if "{readme-section}" in line
    ]
    assert headings, "docs/index.md takes no section of the README"
    for heading in headings:
        assert ext.readme_section(readme, heading, "https://github.com/o/r")


def test_the_link_checker_finds_missing_files_anchors_and_remote_assets(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.html").write_text('<h1 id="top">B</h1><a href="../a.html#x">a</a>')
    (tmp_path / "a.html").write_text(
        '<p id="x"></p><a href="sub/b.html#top">ok</a><a href="sub/b.html#nope">bad anchor</a>'
        '<a href="gone.html">missing</a><a href="https://example.org/">a link may leave</a>'
        '<img src="https://cdn.example.org/a.png"><img src="data:image/png;base64,AA==">'
        '<link rel="stylesheet" href="//cdn.example.org/a.css"><a href="#x">same page</a>'
    )
    problems = builder.check(tmp_path)
    assert len(problems) == 4, problems
    assert "no such anchor" in problems[0] and "no such file" in problems[1]
    assert all("from the internet" in p for p in problems[2:])
