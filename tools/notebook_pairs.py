"""The course's notebooks as pairs: ``NN_name.py`` (the source you edit) and ``NN_name.ipynb``.

Every notebook under ``notebooks/`` is two files that jupytext keeps in step (the pairing is set in
``notebooks/jupytext.toml``): the ``.py`` in the ``py:percent`` format holds the cells and their
tags, the ``.ipynb`` the same cells with the outputs a reader sees. JupyterLab saves both files
when either is saved (jupytext's contents manager); from the shell::

    python3 dev.py sync             # every pair: bring the older file in line, re-run what changed
    python3 dev.py sync 04 11       # only notebooks 04 and 11
    python3 dev.py sync --check     # list the pairs that disagree (exit 1 if any), change nothing
    python3 dev.py sync --no-execute
    python3 dev.py sync --execute 10   # re-run notebook 10 even if its cells did not change

When the two files of a pair disagree, the one modified last is the source (as in JupyterLab);
``--from py`` or ``--from ipynb`` says which instead. A notebook whose cells changed is re-run top
to bottom in a fresh kernel, so its committed outputs are the outputs of its cells. This module
needs jupytext, nbformat and nbclient (the project's dependencies); ``dev.py`` runs it in .venv.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import jupytext
import nbformat
from jupytext.combine import combine_inputs_with_outputs
from jupytext.config import load_jupytext_config

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}


@dataclass(frozen=True)
class Pair:
    """One notebook: its ``.py`` source and its ``.ipynb`` (either may not exist yet)."""

    stem: Path

    @property
    def py(self) -> Path:
        return self.stem.with_suffix(".py")

    @property
    def ipynb(self) -> Path:
        return self.stem.with_suffix(".ipynb")

    @property
    def name(self) -> str:
        return self.stem.name


def pairs(folder: Path = NOTEBOOKS, only: list[str] | None = None) -> list[Pair]:
    """Every ``NN_name`` in ``folder`` that has a ``.py`` or an ``.ipynb``, sorted by name.

    ``only`` keeps the notebooks whose name starts with one of its entries (``["04", "11"]``).

    >>> [pair.name for pair in pairs(only=["00"])]
    ['00_index']
    """
    stems = {p.with_suffix("") for p in folder.glob("[0-9][0-9]_*.py")}
    stems |= {p.with_suffix("") for p in folder.glob("[0-9][0-9]_*.ipynb")}
    found = [Pair(stem) for stem in sorted(stems)]
    if only:
        found = [pair for pair in found if any(pair.name.startswith(o) for o in only)]
        missing = [o for o in only if not any(pair.name.startswith(o) for pair in found)]
        if missing:
            raise ValueError(f"no notebook starts with {missing} in {folder}")
    return found


def text_format(folder: Path) -> dict:
    """The ``py:percent`` format with the options of ``folder``'s jupytext.toml (its filters)."""
    fmt = {"extension": ".py", "format_name": "percent"}
    config = load_jupytext_config(str(folder / "notebook.ipynb"))
    if config is not None:
        config.set_default_format_options(fmt)
    return fmt


def read_text(path: Path) -> nbformat.NotebookNode:
    """The notebook a ``py:percent`` file describes (cells and tags, no outputs)."""
    return jupytext.read(path, fmt=text_format(path.parent))


def inputs(nb: nbformat.NotebookNode) -> list[tuple[str, str, tuple[str, ...]]]:
    """What a reader edits: each cell's type, source and tags — not outputs, ids or counts."""
    return [
        (cell.cell_type, cell.source.strip("\n"), tuple(cell.metadata.get("tags", [])))
        for cell in nb.cells
    ]


def code(cells: list[tuple[str, str, tuple[str, ...]]]) -> list[tuple[str, str, tuple[str, ...]]]:
    """The code cells among ``inputs(...)``."""
    return [cell for cell in cells if cell[0] == "code"]


def differences(pair: Pair) -> list[str]:
    """How the two files of ``pair`` disagree, in words; empty when their cells are the same."""
    if not pair.py.exists():
        return [f"{pair.ipynb.name} has no paired {pair.py.name}"]
    if not pair.ipynb.exists():
        return [f"{pair.py.name} has no paired {pair.ipynb.name}"]
    text, notebook = inputs(read_text(pair.py)), inputs(nbformat.read(pair.ipynb, as_version=4))
    found = []
    if len(text) != len(notebook):
        found.append(f"{pair.name}: {len(text)} cells in the .py, {len(notebook)} in the .ipynb")
    for number, (a, b) in enumerate(zip(text, notebook, strict=False)):
        if a != b:
            what = "type" if a[0] != b[0] else "tags" if a[1] == b[1] else "source"
            found.append(f"{pair.name}: cell {number} differs ({what}): {a[1][:60]!r}")
            if len(found) > 5:
                break
    return found


def to_notebook(pair: Pair) -> bool:
    """Write ``pair.ipynb`` from the ``.py``; keep the outputs of every cell whose source is the
    same. Returns whether its code cells changed (then its outputs need a fresh run)."""
    source = read_text(pair.py)
    if pair.ipynb.exists():
        old = nbformat.read(pair.ipynb, as_version=4)
        changed = code(inputs(old)) != code(inputs(source))  # prose needs no re-run
        new = combine_inputs_with_outputs(source, old, fmt=text_format(pair.py.parent))
        new.metadata = old.metadata  # the .py carries no notebook metadata
    else:
        changed, new = True, source
        new.metadata = {"kernelspec": KERNELSPEC, "language_info": {"name": "python"}}
    nbformat.write(new, pair.ipynb)
    return changed


def to_text(pair: Pair) -> None:
    """Write ``pair.py`` from the ``.ipynb`` (cells and tags; outputs stay in the notebook)."""
    notebook = nbformat.read(pair.ipynb, as_version=4)
    jupytext.write(notebook, pair.py, fmt=text_format(pair.py.parent))


def run(path: Path, env: dict[str, str] | None = None, timeout: int = 600) -> nbformat.NotebookNode:
    """The notebook at ``path`` run top to bottom in a fresh kernel, in its own folder, with the
    environment ``env`` (default: this process's); the file itself is not changed."""
    from nbclient import NotebookClient  # only needed here

    notebook = nbformat.read(path, as_version=4)
    notebook.metadata.setdefault("kernelspec", KERNELSPEC)
    client = NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name=notebook.metadata["kernelspec"]["name"],
        record_timing=False,  # no timestamps in the committed file: diffs show real changes
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute(**({} if env is None else {"env": env}))  # None: the kernel inherits ours
    return notebook


def execute(pair: Pair, timeout: int = 600) -> None:
    """Run ``pair.ipynb`` top to bottom in a fresh kernel, in ``notebooks/``, and save it."""
    nbformat.write(run(pair.ipynb, timeout=timeout), pair.ipynb)


def sync(
    chosen: list[Pair], source: str | None = None, run: bool | None = None, log=print
) -> list[Pair]:
    """Bring each pair in ``chosen`` into agreement and re-run the notebooks whose cells changed.

    ``source`` is ``"py"``, ``"ipynb"`` or ``None`` (the file modified last wins). ``run``: True
    re-runs every chosen notebook, False none, None those whose cells changed. Returns the pairs
    that were re-run.
    """
    if source not in (None, "py", "ipynb"):
        raise ValueError(f"source must be 'py', 'ipynb' or None, not {source!r}")
    rerun = []
    for pair in chosen:
        if not differences(pair):
            changed = False
        elif not pair.ipynb.exists() or (
            pair.py.exists()
            and (source == "py" or (source is None and mtime(pair.py) >= mtime(pair.ipynb)))
        ):
            log(f"{pair.name}: .py -> .ipynb")
            changed = to_notebook(pair)
        else:
            log(f"{pair.name}: .ipynb -> .py")
            before = code(inputs(read_text(pair.py))) if pair.py.exists() else None
            to_text(pair)
            # an edited notebook's outputs may not come from its cells: re-run if code changed
            changed = before != code(inputs(read_text(pair.py)))
        if run or (run is None and changed):
            log(f"{pair.name}: running the notebook")
            execute(pair)
            rerun.append(pair)
    return rerun


def mtime(path: Path) -> float:
    return os.stat(path).st_mtime


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="dev.py sync", description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", help="numbers or names, e.g. 04 11 (default: all)")
    parser.add_argument("--from", dest="source", choices=["py", "ipynb"], default=None)
    parser.add_argument("--check", action="store_true", help="only report pairs that disagree")
    runs = parser.add_mutually_exclusive_group()
    runs.add_argument("--execute", dest="run", action="store_true", default=None)
    runs.add_argument("--no-execute", dest="run", action="store_false")
    args = parser.parse_args(argv)
    chosen = pairs(only=args.notebooks or None)
    if args.check:
        found = [line for pair in chosen for line in differences(pair)]
        print("\n".join(found) or f"all {len(chosen)} notebook pairs agree")
        return 1 if found else 0
    rerun = sync(chosen, args.source, args.run)
    print(f"{len(chosen)} pairs in step; re-ran {[pair.name for pair in rerun] or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
