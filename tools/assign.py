"""The notebooks' exercises as a student version and a solution version, made with nbgrader.

    python3 dev.py assign              # every notebook with exercises -> build/assign/
    python3 dev.py assign 01 02        # only these notebooks
    python3 dev.py assign --nbgrader   # also an nbgrader course directory (JupyterHub courses)
    python3 dev.py assign --otter      # also otter-grader master notebooks (otter assign)

The master of an exercise is the course notebook itself, the pair ``notebooks/NN_name.py`` +
``.ipynb``: it runs top to bottom with every worked solution in place, so CI's nbval run of the
notebooks runs the solutions. Inside it, solutions and hidden tests are marked the way nbgrader
marks them (``docs/exercises-tooling.md`` says why nbgrader, and how to hand the versions out):

* code: the lines between ``# BEGIN SOLUTION`` and ``# END SOLUTION``; the student version gets
  ``# YOUR CODE HERE`` instead: a function (with its docstring) then returns nothing, an answer
  assigned ``x = ...`` on the line before the region stays ``...``, and the check after it fails
  and says so;
* words: in a markdown cell, ``<!-- BEGIN SOLUTION -->`` … ``<!-- END SOLUTION -->`` around the
  model answer (invisible comments in the course notebook); the student gets a line to write on;
* checks: a code cell tagged ``self-check`` calls :mod:`fedlab.exercises` on the answer above it;
  lines between ``# BEGIN HIDDEN TESTS`` and ``# END HIDDEN TESTS`` are left out of the student
  version (the same checks on random examples, for grading).

Written to ``build/assign/`` (git-ignored build outputs, made again on every run):

* ``student/NN_name.ipynb`` — what a teacher hands out: solutions, model answers and hidden tests
  removed by nbgrader's own ``ClearSolutions`` and ``ClearHiddenTests``; the outputs of the
  notebook before its first exercise kept (read without running), none from there on;
* ``solution/NN_name.ipynb`` — the master without the marker lines, with its outputs: the worked
  solutions and model answers, for the teacher and for handing out after the deadline;
* ``nbgrader/`` (``--nbgrader``) — an nbgrader course directory, ``source/NN_name/NN_name.ipynb``
  with nbgrader's cell metadata (answer cells, autograded check cells with their points, manually
  graded written answers) and ``nbgrader_config.py``: there, ``nbgrader generate_assignment
  NN_name`` releases it and ``nbgrader autograde`` grades submissions, hidden tests included;
* ``otter/NN_name.ipynb`` (``--otter``) — the same exercises in otter-grader's master format (raw
  ``# BEGIN QUESTION`` cells, exception-based tests): ``otter assign otter/NN_name.ipynb dist``
  makes otter's student and autograder versions (otter-grader is not a dependency of fedlab).

Needs nbgrader (``pip install nbgrader``; in fedlab's ``test`` extra) and the notebooks' pairs in
step (``python3 dev.py sync``).
"""

from __future__ import annotations

import argparse
import ast
import builtins
import copy
import json
import re
import shutil
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import notebook_pairs  # noqa: E402

OUT = ROOT / "build" / "assign"
CHECK_TAG = "self-check"  # the cell tag of a check cell
BEGIN, END = "BEGIN SOLUTION", "END SOLUTION"
BEGIN_HIDDEN, END_HIDDEN = "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"
MARKERS = (BEGIN, END, BEGIN_HIDDEN, END_HIDDEN)
CODE_STUB = "# YOUR CODE HERE"  # what a code solution region becomes (nbgrader's words)
TEXT_STUB = "*Write your answer here.*"  # what a written answer becomes
EXERCISE = re.compile(r"^###\s+Exercise\s+(\d+)", re.MULTILINE)
NBGRADER_CONFIG = f"""\
# nbgrader's settings for fedlab's exercises (written by tools/assign.py)
c = get_config()  # noqa: F821
c.CourseDirectory.root = "."
c.ClearSolutions.code_stub = {{"python": {CODE_STUB!r}}}
c.ClearSolutions.text_stub = {TEXT_STUB!r}
"""


def has_solution(cell: nbformat.NotebookNode) -> bool:
    """Whether ``cell`` holds a solution region (code or a model answer)."""
    return any(BEGIN in line for line in cell.source.splitlines())


def is_check(cell: nbformat.NotebookNode) -> bool:
    """Whether ``cell`` is a check cell (code, tagged ``self-check``)."""
    return cell.cell_type == "code" and CHECK_TAG in cell.metadata.get("tags", [])


def has_exercises(nb: nbformat.NotebookNode) -> bool:
    """Whether the notebook has any solution region or check cell."""
    return any(has_solution(cell) or is_check(cell) for cell in nb.cells)


def first_exercise_cell(nb: nbformat.NotebookNode) -> int:
    """Index of the first cell with a solution region or a check (``len(cells)`` if none)."""
    return next(
        (i for i, cell in enumerate(nb.cells) if has_solution(cell) or is_check(cell)),
        len(nb.cells),
    )


def _nbgrader(name: str):
    """nbgrader's preprocessor ``name``, set up for marked regions without cell metadata."""
    from nbgrader import preprocessors

    if name == "ClearSolutions":
        return preprocessors.ClearSolutions(
            code_stub={"python": CODE_STUB}, text_stub=TEXT_STUB, enforce_metadata=False
        )
    return getattr(preprocessors, name)(enforce_metadata=False)


def student_version(master: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The notebook a student gets: solutions, model answers and hidden tests removed (nbgrader),
    no outputs from the first exercise on, check cells read-only."""
    nb = copy.deepcopy(master)
    resources: dict = {}
    nb, resources = _nbgrader("ClearSolutions").preprocess(nb, resources)
    nb, resources = _nbgrader("ClearHiddenTests").preprocess(nb, resources)
    first = first_exercise_cell(master)
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and index >= first:
            cell.outputs, cell.execution_count = [], None
        if is_check(cell):
            cell.metadata.update(editable=False, deletable=False)  # JupyterLab honours both
    return nb


def solution_version(master: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The master without its marker lines: worked solutions, model answers and their outputs."""
    nb = copy.deepcopy(master)
    for cell in nb.cells:
        lines = cell.source.split("\n")
        kept = [line for line in lines if not any(marker in line for marker in MARKERS)]
        cell.source = "\n".join(kept)
    return nb


def exercise_numbers(nb: nbformat.NotebookNode) -> list[int | None]:
    """For each cell, the number of the ``### Exercise N`` section it is in (None before any)."""
    number, numbers = None, []
    for cell in nb.cells:
        if cell.cell_type == "markdown" and (found := EXERCISE.search(cell.source)):
            number = int(found.group(1))
        numbers.append(number)
    return numbers


def nbgrader_source(master: nbformat.NotebookNode, stem: str) -> nbformat.NotebookNode:
    """The master with nbgrader's cell metadata: answer cells, autograded checks (1 point each)
    and manually graded written answers (1 point each), ids ``NN-exN-...``."""
    nb = copy.deepcopy(master)
    prefix = stem[:2]
    counts: dict[tuple, int] = {}
    for cell, number in zip(nb.cells, exercise_numbers(nb), strict=True):
        kind = (
            "check"
            if is_check(cell)
            else "answer"
            if cell.cell_type == "code" and has_solution(cell)
            else "written"
            if has_solution(cell)
            else None
        )
        if kind is None:
            continue
        counts[number, kind] = counts.get((number, kind), 0) + 1
        meta = {
            "grade_id": f"{prefix}-ex{number}-{kind}{counts[number, kind]}",
            "grade": kind != "answer",
            "solution": kind != "check",
            "locked": kind == "check",
            "task": False,
            "schema_version": 3,
        }
        if meta["grade"]:
            meta["points"] = 1
        cell.metadata["nbgrader"] = meta
    return nb


def _test_function(name: str, source: str, hidden: bool) -> str:
    """One check, as an otter exception-based test: a function of the notebook names it reads."""
    tree = ast.parse(source)
    assigned = {
        target.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    loaded = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            if node.id not in assigned and node.id != "exercises" and node.id not in loaded:
                if not hasattr(builtins, node.id):
                    loaded.append(node.id)
    params = ", ".join(loaded)
    config = '""" # BEGIN TEST CONFIG\nhidden: true\n""" # END TEST CONFIG\n' if hidden else ""
    body = "\n".join("    " + line if line else "" for line in source.strip().split("\n"))
    return (
        f"{config}def test_{name}({params}):\n    from fedlab import exercises\n\n"
        f"{body}\n\n\ntest_{name}({params})"
    )


def _split_region(source: str, begin: str, end: str) -> tuple[str, str]:
    """``source``'s lines outside the ``begin`` … ``end`` marker lines, and those inside (without
    the markers): a check cell's public and hidden-test lines, or a written answer's question
    and model answer."""
    outside, inside_lines, inside = [], [], False
    for line in source.split("\n"):
        if begin in line:
            inside = True
        elif end in line:
            inside = False
        else:
            (inside_lines if inside else outside).append(line)
    return "\n".join(outside).strip(), "\n".join(inside_lines).strip()


def otter_master(master: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The exercises in otter-grader's master format: each group of answer cells with the checks
    after it is one question (its checks become exception-based tests, hidden ones hidden), each
    written answer a manually graded question."""
    raw = nbformat.v4.new_raw_cell
    config = {
        "init_cell": True,
        "check_all_cell": False,
        "export_cell": False,
        "tests": {"files": True, "ok_format": False},
    }
    cells = [raw("# ASSIGNMENT CONFIG\n" + _yaml(config))]
    numbers, open_question, parts = exercise_numbers(master), None, {}
    solutions: list = []

    def close() -> None:
        nonlocal open_question
        if open_question is not None:
            cells.append(raw("# END TESTS"))
            cells.append(raw("# END QUESTION"))
            open_question = None

    for cell, number in zip(master.cells, numbers, strict=True):
        cell = copy.deepcopy(cell)
        if cell.cell_type == "code" and has_solution(cell) and not is_check(cell):
            close()
            cell.source = re.sub(
                rf"^# {BEGIN}$", f"# {BEGIN} NO PROMPT", cell.source, flags=re.MULTILINE
            )
            solutions.append(cell)
            continue
        if is_check(cell):
            if open_question is None:
                parts[number] = parts.get(number, 0) + 1
                open_question = f"ex{number}_{parts[number]}"
                cells.append(raw(f"# BEGIN QUESTION\nname: {open_question}"))
                if solutions:
                    cells += [raw("# BEGIN SOLUTION"), *solutions, raw("# END SOLUTION")]
                cells.append(raw("# BEGIN TESTS"))
                solutions = []
            public, hidden = _split_region(cell.source, BEGIN_HIDDEN, END_HIDDEN)
            test = len([c for c in cells if c.cell_type == "code" and "def test_" in c.source])
            cells.append(
                nbformat.v4.new_code_cell(_test_function(f"{open_question}_{test}", public, False))
            )
            if hidden:
                cells.append(
                    nbformat.v4.new_code_cell(
                        _test_function(f"{open_question}_{test}_hidden", hidden, True)
                    )
                )
            continue
        close()
        cells += solutions
        solutions = []
        if cell.cell_type == "markdown" and has_solution(cell):
            before, answer = _split_region(cell.source, BEGIN, END)
            parts[number] = parts.get(number, 0) + 1
            name = f"ex{number}_{parts[number]}"
            cells += [raw(f"# BEGIN QUESTION\nname: {name}\nmanual: true")]
            if before:
                cells.append(nbformat.v4.new_markdown_cell(before))
            cells += [raw("# BEGIN SOLUTION"), nbformat.v4.new_markdown_cell(answer)]
            cells += [raw("# END SOLUTION"), raw("# END QUESTION")]
            continue
        cells.append(cell)
    close()
    cells += solutions
    nb = copy.deepcopy(master)
    nb.cells = cells
    return nb


def _yaml(value: dict, indent: str = "") -> str:
    """A small dict as YAML (no dependency on a YAML writer)."""
    lines = []
    for key, item in value.items():
        if isinstance(item, dict):
            lines.append(f"{indent}{key}:")
            lines.append(_yaml(item, indent + "  "))
        else:
            lines.append(f"{indent}{key}: {json.dumps(item)}")
    return "\n".join(lines)


def build(
    only: list[str] | None = None,
    out: Path = OUT,
    nbgrader: bool = False,
    otter: bool = False,
    log=print,
    folder: Path = notebook_pairs.NOTEBOOKS,
) -> list[str]:
    """Write the versions of the chosen notebooks in ``folder`` (default: every notebook with
    exercises) under ``out``; return the names of the notebooks written."""
    chosen = notebook_pairs.pairs(folder, only=only)
    stale = [line for pair in chosen for line in notebook_pairs.differences(pair)]
    if stale:
        raise SystemExit("run `python3 dev.py sync` first:\n" + "\n".join(stale))
    written = []
    for kind in ("student", "solution", "nbgrader", "otter"):
        shutil.rmtree(out / kind, ignore_errors=True)
    for pair in chosen:
        master = nbformat.read(pair.ipynb, as_version=4)
        if not has_exercises(master):
            if only:
                log(f"{pair.name}: no exercises marked (no {BEGIN!r} or {CHECK_TAG!r} cell)")
            continue
        for kind, version in (
            ("student", student_version(master)),
            ("solution", solution_version(master)),
        ):
            (out / kind).mkdir(parents=True, exist_ok=True)
            nbformat.write(version, out / kind / pair.ipynb.name)
        if nbgrader:
            folder = out / "nbgrader" / "source" / pair.name
            folder.mkdir(parents=True, exist_ok=True)
            nbformat.write(nbgrader_source(master, pair.name), folder / pair.ipynb.name)
            (out / "nbgrader" / "nbgrader_config.py").write_text(NBGRADER_CONFIG)
        if otter:
            (out / "otter").mkdir(parents=True, exist_ok=True)
            nbformat.write(otter_master(master), out / "otter" / pair.ipynb.name)
        written.append(pair.name)
        log(f"{pair.name}: student and solution versions written")
    return written


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="dev.py assign", description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", help="numbers or names, e.g. 01 02 (default: all)")
    parser.add_argument("--out", type=Path, default=OUT, help=f"default: {OUT.relative_to(ROOT)}")
    parser.add_argument("--nbgrader", action="store_true", help="also an nbgrader course folder")
    parser.add_argument("--otter", action="store_true", help="also otter-grader masters")
    args = parser.parse_args(argv)
    written = build(args.notebooks or None, args.out, args.nbgrader, args.otter)
    print(f"{len(written)} notebooks with exercises -> {args.out}: student/, solution/")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
