"""Every notebook is a pair — ``NN_name.py`` (py:percent, the source a teacher edits) and
``NN_name.ipynb`` (the same cells, with outputs) — and the two agree. Edits flow both ways: through
``python3 dev.py sync`` (tools/notebook_pairs.py) and through JupyterLab's jupytext contents
manager. Students see no test plumbing; ruff lints the sources."""

import asyncio
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
CHECKED = "nbval-check-output"  # the cell tag nbval --nbval-lax reads (not a comment in the cell)


def load_pairs_module():
    spec = importlib.util.spec_from_file_location(
        "notebook_pairs", ROOT / "tools/notebook_pairs.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


np_ = load_pairs_module()
PAIRS = np_.pairs()


@pytest.fixture
def folder(tmp_path):
    """A scratch notebooks folder with the course's jupytext and ruff settings and notebook 00."""
    for name in ("jupytext.toml", "00_index.py", "00_index.ipynb"):
        shutil.copy2(NOTEBOOKS / name, tmp_path / name)
    return tmp_path


def test_every_notebook_is_a_pair_and_the_two_files_agree():
    assert len(PAIRS) >= 15
    problems = [line for pair in PAIRS for line in np_.differences(pair)]
    assert not problems, "run `python3 dev.py sync`:\n" + "\n".join(problems)


def test_the_old_notebook_build_scripts_are_gone():
    assert not (NOTEBOOKS / "build").exists()


def test_differences_name_the_cell_that_changed(folder):
    (pair,) = np_.pairs(folder)
    assert np_.differences(pair) == []
    text = pair.py.read_text()
    pair.py.write_text(text.replace("# # 00", "# # 00 (edited)", 1))
    assert "cell 0 differs (source)" in np_.differences(pair)[0]
    pair.ipynb.unlink()
    assert np_.differences(pair) == [f"{pair.py.name} has no paired {pair.ipynb.name}"]


def test_sync_writes_the_notebook_from_an_edited_source_and_keeps_unchanged_outputs(folder):
    (pair,) = np_.pairs(folder)
    before = nbformat.read(pair.ipynb, as_version=4)
    pair.py.write_text(pair.py.read_text() + '\n# %% tags=["nbval-check-output"]\nprint(6 * 7)\n')
    os.utime(pair.py, (pair.ipynb.stat().st_mtime + 10,) * 2)  # edited after the notebook
    assert np_.sync([pair], run=False, log=lambda _: None) == []
    after = nbformat.read(pair.ipynb, as_version=4)
    assert np_.differences(pair) == []
    assert after.cells[-1].source == "print(6 * 7)" and after.cells[-1].metadata.tags == [CHECKED]
    assert after.cells[-1].outputs == []  # new: needs a run
    assert [c.get("outputs") for c in after.cells[:-1]] == [c.get("outputs") for c in before.cells]
    assert [c.id for c in after.cells[:-1]] == [c.id for c in before.cells]  # ids kept
    assert after.metadata.kernelspec.name == "python3"


def test_sync_writes_the_source_from_an_edited_notebook(folder):
    (pair,) = np_.pairs(folder)
    nb = nbformat.read(pair.ipynb, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("x = 1", metadata={"tags": [CHECKED]}))
    nbformat.write(nb, pair.ipynb)
    os.utime(pair.ipynb, (pair.py.stat().st_mtime + 10,) * 2)
    np_.sync([pair], run=False, log=lambda _: None)
    assert pair.py.read_text().endswith('# %% tags=["nbval-check-output"]\nx = 1\n')
    assert not pair.py.read_text().startswith("# ---")  # no metadata header in the source
    assert np_.differences(pair) == []


def test_sync_runs_a_notebook_whose_cells_changed(folder):
    (pair,) = np_.pairs(folder)
    pair.py.write_text("# %% [markdown]\n# # A tiny notebook\n\n# %%\nprint(6 * 7)\n")
    pair.ipynb.unlink()
    assert np_.sync([pair], log=lambda _: None) == [pair]
    code = nbformat.read(pair.ipynb, as_version=4).cells[1]
    assert code.execution_count == 1 and code.outputs[0].text == "42\n"
    assert "execution" not in code.metadata  # no timestamps committed
    assert np_.sync([pair], log=lambda _: None) == []  # in step: nothing to run


def test_sync_refuses_an_unknown_source(folder):
    with pytest.raises(ValueError, match="source must be 'py', 'ipynb' or None"):
        np_.sync(np_.pairs(folder), source="md")
    with pytest.raises(ValueError, match=r"no notebook starts with \['99'\]"):
        np_.pairs(folder, only=["99"])


def test_a_jupyterlab_save_updates_the_paired_source(folder):
    """JupyterLab saves through jupytext's contents manager (the server extension jupytext
    installs): saving the .ipynb writes the .py too, with the cell's tags."""
    from jupytext import AsyncTextFileContentsManager

    manager = AsyncTextFileContentsManager(root_dir=str(folder))

    async def edit_and_save():
        model = await manager.get("00_index.ipynb")
        model["content"]["cells"].append(
            nbformat.v4.new_code_cell("print('edited in JupyterLab')", metadata={"tags": [CHECKED]})
        )
        await manager.save(model, "00_index.ipynb")
        return await manager.get("00_index.py")  # opening the source shows the notebook

    reopened = asyncio.run(edit_and_save())
    text = (folder / "00_index.py").read_text()
    assert text.endswith("# %% tags=[\"nbval-check-output\"]\nprint('edited in JupyterLab')\n")
    assert reopened["content"]["cells"][-1]["source"] == "print('edited in JupyterLab')"
    assert np_.differences(np_.pairs(folder)[0]) == []


def test_jupyterlab_opens_the_notebook_with_an_edited_source(folder):
    from jupytext import AsyncTextFileContentsManager

    manager = AsyncTextFileContentsManager(root_dir=str(folder))
    source = folder / "00_index.py"
    source.write_text(source.read_text().replace("# # 00", "# # 00 (edited as text)", 1))
    os.utime(source, (source.stat().st_mtime + 10,) * 2)
    model = asyncio.run(manager.get("00_index.ipynb"))
    assert model["content"]["cells"][0]["source"].startswith("# 00 (edited as text)")


def test_checked_cells_are_marked_with_a_tag_nbval_honours():
    from nbval.plugin import find_comment_markers, find_metadata_tags

    assert dict(find_metadata_tags({"tags": [CHECKED]})) == {"check": True}
    tagged, plumbing = 0, []
    for pair in PAIRS:
        for number, cell in enumerate(nbformat.read(pair.ipynb, as_version=4).cells):
            tagged += CHECKED in cell.metadata.get("tags", [])
            if cell.cell_type == "code" and dict(find_comment_markers(cell.source)):
                plumbing.append(f"{pair.name} cell {number}: an nbval comment")
    assert tagged >= 150, tagged  # 152 checked cells when the comments became tags
    assert not plumbing, plumbing


@pytest.mark.parametrize("pragma", ["noqa", "isort:", "type: ignore", "fmt:", "NBVAL"])
def test_no_lint_pragmas_or_test_markers_in_cells_students_read(pragma):
    found = [
        f"{pair.name}: {line.strip()}"
        for pair in PAIRS
        for line in pair.py.read_text().splitlines()
        if pragma in line
    ]
    assert not found, found


def ruff(*args, stdin=None):
    command = [sys.executable, "-m", "ruff", *args]
    return subprocess.run(command, cwd=ROOT, input=stdin, capture_output=True, text=True)


def test_ruff_lints_the_notebook_sources_clean():
    result = ruff("check", "--no-cache", "notebooks")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_reports_a_notebook_that_imports_tensorflow_before_fedlab():
    """The notebooks' own isort rule: `import fedlab` first (it quietens TensorFlow) — enforced
    by notebooks/ruff.toml, not by a pragma in the cell."""
    wrong = "import tensorflow as tf\n\nimport fedlab\n\nprint(tf, fedlab)\n"
    result = ruff("check", "--no-cache", "--stdin-filename", "notebooks/99_x.py", "-", stdin=wrong)
    assert result.returncode == 1 and "I001" in result.stdout, result.stdout
    right = "import fedlab\n\nimport tensorflow as tf\n\nprint(tf, fedlab)\n"
    result = ruff("check", "--no-cache", "--stdin-filename", "notebooks/99_x.py", "-", stdin=right)
    assert result.returncode == 0, result.stdout


def colab_cell(pair):
    return next(c for c in nbformat.read(pair.ipynb, as_version=4).cells if c.cell_type == "code")


@pytest.mark.parametrize("pair", PAIRS, ids=[pair.name for pair in PAIRS])
def test_the_first_cell_installs_fedlab_on_colab_and_nowhere_else(pair, monkeypatch):
    import subprocess as real_subprocess
    import tomllib

    urls = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]
    calls = []
    monkeypatch.setattr(real_subprocess, "run", lambda command, **kw: calls.append(command))
    source = colab_cell(pair).source
    exec(source, {})  # here: not Colab
    assert calls == []
    monkeypatch.setitem(sys.modules, "google.colab", type(sys)("google.colab"))
    exec(source, {})
    assert calls == [
        [sys.executable, "-m", "pip", "install", "-q", f"fedlab-edu @ git+{urls['Repository']}"]
    ]


def test_sync_does_not_rerun_a_notebook_for_a_change_of_prose(folder):
    (pair,) = np_.pairs(folder)
    pair.py.write_text(pair.py.read_text().replace("# # 00", "# # 00 (new title)", 1))
    os.utime(pair.py, (pair.ipynb.stat().st_mtime + 10,) * 2)
    assert np_.to_notebook(pair) is False  # markdown only: outputs still belong to the cells
    assert np_.differences(pair) == []
    pair.py.write_text(pair.py.read_text().replace("import fedlab", "import fedlab as fl", 1))
    assert np_.to_notebook(pair) is True
