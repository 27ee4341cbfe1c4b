"""The course website's pieces that need no build: launch links from pyproject.toml, the run box
and widget outputs of a notebook page, README sections on the landing page, the link checker, the
teacher's guide's generated parts (prerequisites, plan, objectives, graph) read from the
notebooks, and the API reference's module list and the fedlab names the pages link to it. The site
itself is built and opened in tests/browser/test_site_browser.py."""

import importlib.util
import json
import re
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
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


# ---- the teacher's guide (docs/teachers_guide.md, docs/_ext/fedlab_teaching.py) ----

teaching = load("fedlab_teaching", ROOT / "docs/_ext/fedlab_teaching.py")
NOTEBOOKS = ROOT / "notebooks"
NAMES = sorted(p.stem for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
NOTEBOOK_LINK = re.compile(r"\]\((\d\d_\w+)\.ipynb")


def needs_in_py_sources() -> dict[str, list[str]]:
    """Each notebook's "You will need" links, read without the extension: from the paragraph
    of its jupytext source (``notebooks/NN_name.py``) that starts with ``# **You will need:**``."""
    needs = {}
    for name in NAMES:
        lines = (NOTEBOOKS / f"{name}.py").read_text(encoding="utf-8").splitlines()
        start = [i for i, line in enumerate(lines) if line.startswith("# **You will need:**")]
        assert len(start) == 1, f"{name}.py: {len(start)} '**You will need:**' lines"
        paragraph = []
        for line in lines[start[0] :]:
            if line.strip() in ("", "#"):
                break
            paragraph.append(line)
        needs[name] = NOTEBOOK_LINK.findall(" ".join(paragraph))
    return needs


def reachable(graph: dict[str, list[str]]) -> dict[str, set[str]]:
    """Everything each node reaches through ``graph`` (a depth-first search per node)."""
    found = {}
    for start in graph:
        seen, todo = set(), list(graph[start])
        while todo:
            node = todo.pop()
            if node not in seen:
                seen.add(node)
                todo += graph.get(node, [])
        found[start] = seen
    return found


@pytest.fixture(scope="module")
def course():
    return teaching.read_course(NOTEBOOKS)


def test_the_guide_reads_every_notebooks_you_will_need_line(course):
    assert [nb.name for nb in course] == NAMES
    assert {nb.name: list(nb.needs) for nb in course} == needs_in_py_sources()
    assert all(nb.needs for nb in course[1:]), "a notebook after 00 that names no earlier one"
    assert all(nb.goals and nb.run_seconds > 0 for nb in course)


def test_every_notebook_needs_only_earlier_notebooks(course):
    for name, need in teaching.edges(course):
        assert need in NAMES, f"{name} needs {need}, which is not a notebook"
        assert need < name, f"{name} needs {need}, which comes after it"
    assert teaching.edge_problems(course) == []


def test_a_link_forward_or_to_no_notebook_stops_the_build(tmp_path):
    def notebook(number: str, needs: str) -> dict:
        head = f"# {number} · T\n\n**Goals**\n- Learn.\n\n**You will need:** {needs}; about 5 s to run."
        return {"cells": [{"cell_type": "markdown", "source": head}]}

    for name, needs in [("00_a", "[01](01_b.ipynb)"), ("01_b", "[00](00_a.ipynb)")]:
        (tmp_path / f"{name}.ipynb").write_text(json.dumps(notebook(name[:2], needs)))
    with pytest.raises(ValueError, match="00_a needs 01_b, which comes later"):
        teaching.read_course(tmp_path)
    (tmp_path / "00_a.ipynb").write_text(json.dumps(notebook("00", "[07](07_x.ipynb)")))
    with pytest.raises(ValueError, match="00_a needs 07_x, which is not a notebook"):
        teaching.read_course(tmp_path)


def test_a_notebook_is_read_for_its_goals_needs_run_time_and_exercises():
    head = (
        "# 02 · Splits: IID\n\n*Purpose.*\n\n**Goals**\n- Make a **split**\n  and read it.\n"
        "- Measure H.\n\n**You will need:** [01 · a round](01_a.ipynb) and\n"
        "[00 · map](00_b.ipynb#x); under a minute to run.\n"
    )
    cells = [
        {"cell_type": "markdown", "source": head},
        {"cell_type": "code", "source": "x = 1", "outputs": []},
        {"cell_type": "markdown", "source": "## Exercises\n\n1. One.\n2. Two\n   more.\n3. Three."},
    ]
    nb = teaching.read_notebook({"cells": cells}, "02_splits")
    assert (nb.title, nb.short_title) == ("Splits: IID", "Splits")
    assert nb.goals == ("Make a **split** and read it.", "Measure H.")
    assert nb.needs == ("01_a", "00_b")
    assert (nb.run_seconds, nb.code_cells, nb.exercises) == (60, 1, 3)
    for broken, message in [
        (head.replace("**Goals**", "Goals"), "no \\*\\*Goals\\*\\* list"),
        (head.replace("under a minute", "quickly"), "stating the run time"),
        (head.replace("# 02 ·", "# 03 ·"), "must start with '# 02 · Title'"),
    ]:
        with pytest.raises(ValueError, match=message):
            teaching.read_notebook({"cells": [{**cells[0], "source": broken}]}, "02_splits")


def test_the_prerequisite_table_and_graph_show_the_notebooks_edges(course, tmp_path):
    needs = needs_in_py_sources()
    table = teaching.prerequisite_table(course)
    rows = [i for i, line in enumerate(table) if line.startswith("* - {doc}")]
    shown = {
        re.search(r"</notebooks/(\w+)>", table[i]).group(1): re.findall(
            r"</notebooks/(\w+)>", table[i + 1]
        )
        for i in rows
    }
    assert shown == needs

    svg = tmp_path / "graph.svg"
    teaching.draw_prerequisites(course, svg)
    text = svg.read_text(encoding="utf-8")
    assert sorted(re.findall(r'id="node-(\d\d)"', text)) == [name[:2] for name in NAMES]
    drawn: dict[str, list[str]] = {name[:2]: [] for name in NAMES}
    for need, name in re.findall(r'id="edge-(\d\d)-(\d\d)"', text):
        drawn[name].append(need)
    # the picture leaves out the links a longer path implies: what rests on what is the same
    by_number = {name[:2]: [n[:2] for n in found] for name, found in needs.items()}
    assert reachable(drawn) == reachable(by_number)
    assert sum(map(len, drawn.values())) == len(teaching.drawn_edges(course))
    for name, direct in drawn.items():  # and no drawn arrow is implied by another path
        for need in direct:
            others = {n: ([] if n == name else v) for n, v in drawn.items()}
            others[name] = [n for n in direct if n != need]
            assert need not in reachable(others)[name], f"{need} → {name} is implied"


def test_the_graph_is_the_same_svg_every_build(course, tmp_path):
    teaching.draw_prerequisites(course, tmp_path / "a.svg")
    teaching.draw_prerequisites(course, tmp_path / "b.svg")
    assert (tmp_path / "a.svg").read_bytes() == (tmp_path / "b.svg").read_bytes()


def course_plan() -> list[str]:
    guide = (ROOT / "docs/teachers_guide.md").read_text(encoding="utf-8")
    block = re.search(r"```\{course-plan\}\n(.*?)```", guide, re.S)
    assert block, "docs/teachers_guide.md has no {course-plan} block"
    return block.group(1).splitlines()


def test_the_ten_week_plan_teaches_every_notebook_once_after_what_it_needs(course):
    weeks = teaching.parse_plan(course_plan())
    assert [week.number for week in weeks] == list(range(1, 11))
    planned = [number for week in weeks for number in week.notebooks]
    assert sorted(planned) == [name[:2] for name in NAMES], "a notebook left out or planned twice"
    assert len(planned) == len(set(planned))
    assert teaching.plan_problems(weeks, course) == []
    table = "\n".join(teaching.plan_table(weeks, course))
    for name in NAMES:
        assert table.count(f"</notebooks/{name}>") == 1


def test_a_plan_that_leaves_out_repeats_or_reorders_notebooks_is_refused(course):
    weeks = teaching.parse_plan(course_plan())
    first, second = weeks[0], weeks[1]
    swapped = [
        teaching.Week(1, second.notebooks, "", ""),
        teaching.Week(2, first.notebooks, "", ""),
        *weeks[2:],
    ]
    assert any("which it needs" in p for p in teaching.plan_problems(swapped, course))
    missing = [teaching.Week(1, first.notebooks[1:], "", ""), *weeks[1:]]
    assert f"{first.notebooks[0]} is in no week" in teaching.plan_problems(missing, course)
    twice = [*weeks, teaching.Week(11, ("03", "99"), "", "")]
    assert teaching.plan_problems(twice, course) == [
        "03 is planned twice: weeks 2 and 11",
        "99 (week 11) is not a notebook",
    ]
    with pytest.raises(ValueError, match="week \\| notebooks \\| topic"):
        teaching.parse_plan(["one | 00 | x"])


def test_the_objectives_are_every_notebooks_goals(course):
    table = "\n".join(teaching.objectives_table(course))
    for nb in course:
        assert f"</notebooks/{nb.name}>" in table
        for goal in nb.goals:
            assert f"- {goal}\n" in table + "\n"
        minutes = "\u00a0+\u00a0".join(str(part.lecture_minutes) for part in nb.parts)
        assert f"lecture {minutes}\u00a0min" in table
        if len(nb.parts) > 1:
            assert f"({len(nb.parts)} classes: §" in table


def test_a_class_break_splits_the_lecture_and_the_exercises_are_not_lectured():
    def md(text, tags=()):
        return {"cell_type": "markdown", "source": text, "metadata": {"tags": list(tags)}}

    code = {"cell_type": "code", "source": "x = 1", "metadata": {}, "outputs": []}
    cells = [
        md("# 04 · Drift\n\n" + "word " * 60),
        code,
        md("## 1. One\n\n" + "word " * 120),
        code,
        md("## 2. Two"),
        md("---\n**Class break**", tags=["class-break"]),
        md("## 3. Three\n\n" + "word " * 900),
        code,
        code,
        md("## Exercises\n\n1. One.\n\n" + "answer " * 3000),
        code,
    ]
    parts = teaching.read_parts(cells)
    assert [(p.code_cells, p.sections) for p in parts] == [(2, "1–2"), (2, "3")]
    assert [p.lecture_minutes for p in parts] == [10, 15]  # at least 10; 903 words: 15
    assert parts[0].words == 4 + 60 + 123 + 3  # the exercises' 3000 words are not lectured


# ---- the API reference (docs/api.md, docs/_ext/fedlab_api.py) ----

api = load("fedlab_api", ROOT / "docs/_ext/fedlab_api.py")
# the modules of README's architecture tree that get no page, and why
LEFT_OUT = {
    "__init__": "its names are documented where they are defined (fedlab.simulate: fedlab.engine)",
    "validate": "argument checks the modules share",
    "controls": "the live panels' sliders",
    "cli": "the command line: python -m fedlab run --help",
    "__main__": "the command line",
    "flower.executor": "a process LocalFederation starts",
    "flower.node": "a process LocalFederation starts",
    "flower.watchdog": "a process LocalFederation starts",
}


def api_modules() -> list[str]:
    """The modules docs/api.md documents: the entries of its ``autosummary`` blocks, in order."""
    page = (ROOT / "docs/api.md").read_text(encoding="utf-8")
    blocks = re.findall(r"\.\. autosummary::\n(.*?)```", page, re.S)
    pattern = r"^   (fedlab(?:\.\w+)+)$"
    return [name for block in blocks for name in re.findall(pattern, block, re.M)]


def readme_modules() -> list[str]:
    """The modules of README.md's architecture tree, as fedlab names them: ``data`` for
    ``fedlab/data.py``, ``flower`` for the package ``fedlab/flower/`` and ``flower.apps`` for
    ``apps.py`` listed under it."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    tree = readme.split("\n```\nfedlab/\n", 1)[1].split("\n```", 1)[0]
    modules, package = [], None
    for line in tree.splitlines():
        if match := re.match(r"  (\w+)\.py\b", line):
            modules.append(match[1])
            package = None
        elif match := re.match(r"  (\w+)/", line):
            modules.append(match[1])
            package = match[1]
        elif package and (match := re.match(r"    (\w+)\.py\b", line)):
            modules.append(f"{package}.{match[1]}")
    return modules


def test_the_api_reference_has_every_public_module_of_the_readme_once():
    listed = api_modules()
    assert len(listed) == len(set(listed)), "a module listed twice in docs/api.md"
    in_readme = readme_modules()
    assert len(in_readme) > 25, "README.md's architecture tree was not found"
    missing = [m for m in in_readme if f"fedlab.{m}" not in listed and m not in LEFT_OUT]
    assert missing == [], f"public modules with no API page (add them to docs/api.md): {missing}"
    assert not {f"fedlab.{m}" for m in LEFT_OUT} & set(listed)
    for name in listed:  # each one a module of the package, not a typo
        module = ROOT.joinpath(*name.split("."))
        assert module.with_suffix(".py").is_file() or (module / "__init__.py").is_file(), name


def test_the_readme_tree_names_the_modules_of_the_subpackages():
    modules = readme_modules()
    for name in ("flower", "flower.apps", "flower.federation", "ui", "ui.dashboard", "exercises"):
        assert name in modules, name
    assert "widgets" not in modules and "flower_executor" not in modules  # old paths: one line


def test_inline_code_that_is_a_fedlab_name_is_found_and_followed_to_its_definition():
    assert api.name_in("fedlab.simulate") == "fedlab.simulate"
    assert api.name_in("fedlab.Stragglers(0.9, drop=False, min_epochs=3)") == "fedlab.Stragglers"
    assert api.name_in("help(fedlab.personalization.FedPer)") == "fedlab.personalization.FedPer"
    assert api.name_in("compression=fedlab.compression.TopK(0.1)") == "fedlab.compression.TopK"
    for not_a_name in ("fedlab.Stragglers(0.9).num_stragglers(10)", "fedlab.…", "x = fedlab.plot"):
        assert api.name_in(not_a_name) is None, not_a_name
    assert api.resolve("fedlab.simulate") == "fedlab.engine.simulate"
    assert api.resolve("fedlab.FedAvg") == "fedlab.algorithms.FedAvg"
    assert api.resolve("fedlab.History.train_loss") == "fedlab.history.History.train_loss"
    assert api.resolve("fedlab.ui.dashboard.Dashboard") == "fedlab.ui.dashboard.Dashboard"
    assert api.resolve("fedlab.widgets.Dashboard") == "fedlab.ui.dashboard.Dashboard"  # moved
    federation = "fedlab.flower.federation.LocalFederation"
    assert api.resolve("fedlab.flower.LocalFederation") == federation  # a name of the package
    assert api.resolve("fedlab.steps") == "fedlab.steps"
    assert api.resolve("fedlab.history.RoundRecord.dropped") == "fedlab.history.RoundRecord.dropped"
    for typo in ("fedlab.simulat", "fedlab.History.no_such", "fedlab.no_module.x"):
        assert api.resolve(typo) is None, typo


def test_every_fedlab_name_in_the_notebooks_and_pages_exists():
    """The build would stop on one that does not (fedlab_api's warning); this finds it sooner."""
    texts = {p.name: p.read_text(encoding="utf-8") for p in (ROOT / "docs").glob("*.md")}
    for path in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"):
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        texts[path.name] = "\n".join(
            "".join(cell["source"]) for cell in cells if cell["cell_type"] == "markdown"
        )
    names = {
        (page, name)
        for page, text in texts.items()
        for code in re.findall(r"`([^`]+)`", text)
        if (name := api.name_in(code.replace("\n", " ")))
    }
    assert len(names) > 50
    unknown = sorted((page, name) for page, name in names if api.resolve(name) is None)
    assert unknown == [], f"names of nothing in fedlab: {unknown}"
