"""Every notebook keeps the course's conventions (../shared/STYLE.md): it opens with goals and what
you will need, ends with a summary and exercises, keeps its code cells short, and is committed
executed top to bottom without errors or stderr output."""

import statistics
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))


@pytest.fixture(params=NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def notebook(request):
    return request.param, nbformat.read(request.param, as_version=4)


def test_there_is_a_notebook_for_every_course_step_so_far():
    assert len(NOTEBOOKS) >= 13 and NOTEBOOKS[0].name == "00_index.ipynb"


def test_opens_with_goals_and_ends_with_summary_and_exercises(notebook):
    path, nb = notebook
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    if path.name != "00_index.ipynb":
        for heading in ("**Goals**", "**You will need:**", "## Summary", "## Exercises"):
            assert heading in text, f"{path.name} lacks {heading}"


def test_code_cells_are_short(notebook):
    path, nb = notebook
    lengths = [len(c.source.splitlines()) for c in nb.cells if c.cell_type == "code"]
    assert statistics.median(lengths) <= 8, f"{path.name}: median code cell {lengths}"
    assert max(lengths) <= 30, f"{path.name}: a code cell of {max(lengths)} lines"


def test_committed_executed_in_order_without_errors_or_stderr(notebook):
    path, nb = notebook
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1)), path.name
    for cell in code:
        for output in cell.outputs:
            assert output.output_type != "error", f"{path.name}: {output.get('ename')}"
            assert output.get("name") != "stderr", f"{path.name}: {output.get('text', '')[:200]}"
