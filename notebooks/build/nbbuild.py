"""What every ``make_NN.py`` shares: turn its list of cells into a notebook file.

A script lists its cells as ``("md" | "code", source)`` pairs and calls :func:`write`. Cell ids
are stable (``c00``, ``c01``, ...) so that regenerating a notebook gives small diffs.
"""

import subprocess
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

CHECK = "# NBVAL_CHECK_OUTPUT\n"
"""First line of a code cell whose printed output ``pytest --nbval-lax`` compares."""


def build(cells: list[tuple[str, str]]) -> nbformat.NotebookNode:
    """The notebook for ``cells``, with stable cell ids and a Python 3 kernelspec."""
    made = []
    for i, (kind, source) in enumerate(cells):
        cell = (new_markdown_cell if kind == "md" else new_code_cell)(source)
        cell["id"] = f"c{i:02d}"
        made.append(cell)
    nb = new_notebook(cells=made)
    nb.metadata["kernelspec"] = {
        "display_name": "Python 3",
        "language": "python",
        "name": "python3",
    }
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def write(cells: list[tuple[str, str]], out: Path) -> None:
    """Write the unexecuted notebook for ``cells`` to ``out``."""
    nbformat.write(build(cells), out)
    # the cells as ruff formats them (the project lints notebooks too), whatever the script wrote
    subprocess.run([sys.executable, "-m", "ruff", "format", "--quiet", str(out)], check=True)
    print(f"wrote {out}")
