"""A checked cell tagged ``last-digit-tolerance`` passes nbval when its decimals are within one
unit of their last printed digit of the committed ones, and fails on anything more
(tools/checked_outputs.py, applied by notebooks/conftest.py)."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("checked_outputs", ROOT / "tools/checked_outputs.py")
co = importlib.util.module_from_spec(spec)
spec.loader.exec_module(co)


@pytest.mark.parametrize(
    ("fresh", "committed"),
    [
        ("PSNR 56.4 dB", "PSNR 56.3 dB"),
        ("accuracy 0.918", "accuracy 0.917"),
        ("MSE 1.3e-03", "MSE 1.2e-03"),
        ("x  10.0 |", "x   9.9 |"),  # one digit longer: the padding shrinks
        ("0.50 0.31\n", "0.49 0.32\n"),
    ],
)
def test_one_unit_in_the_last_digit_is_tolerated(fresh, committed):
    assert co.tolerate(fresh, committed) == committed


@pytest.mark.parametrize(
    ("fresh", "committed"),
    [
        ("PSNR 56.5 dB", "PSNR 56.3 dB"),  # two units
        ("accuracy 0.93", "accuracy 0.917"),  # fewer digits (round() drops a 0): 0.013 > 0.01
        ("90 % in round 13", "90 % in round 12"),  # integers are exact
        ("labels False 0.50", "labels True 0.50"),  # words are exact
        ("MSE 1.2e-04", "MSE 1.2e-03"),
        ("0.50 0.31 0.2", "0.50 0.31"),  # one number more
    ],
)
def test_anything_more_is_not(fresh, committed):
    assert co.tolerate(fresh, committed) == fresh


def test_outputs_are_tolerated_per_text_and_left_unchanged():
    fresh = [new_output("stream", name="stdout", text="a 0.918\n")]
    fresh.append(new_output("execute_result", data={"text/plain": "0.31"}, execution_count=1))
    committed = [new_output("stream", name="stdout", text="a 0.917\n")]
    committed.append(new_output("execute_result", data={"text/plain": "0.35"}, execution_count=1))
    tolerated = co.tolerate_outputs(fresh, committed)
    assert tolerated[0]["text"] == "a 0.917\n" and tolerated[1]["data"]["text/plain"] == "0.31"
    assert fresh[0]["text"] == "a 0.918\n"  # a copy


def nbval(tmp_path, printed, tags):
    """Run nbval on a one-cell notebook that prints ``0.918`` but was committed printing
    ``printed``; returns pytest's exit code."""
    tmp_path.mkdir()
    conftest = (ROOT / "notebooks/conftest.py").read_text()  # as it is, but finding tools/ here
    conftest = conftest.replace("Path(__file__).resolve().parents[1]", f"Path({str(ROOT)!r})")
    (tmp_path / "conftest.py").write_text(conftest)
    cell = new_code_cell('print("accuracy", round(0.9176, 3))', metadata={"tags": tags})
    cell.execution_count = 1
    cell.outputs = [new_output("stream", name="stdout", text=f"accuracy {printed}\n")]
    nbformat.write(new_notebook(cells=[cell]), tmp_path / "nb.ipynb")
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax"]
    command += ["--nbval-current-env", "nb.ipynb", "--rootdir", str(tmp_path)]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    return result.returncode


def test_nbval_passes_a_tagged_cell_one_digit_off_and_fails_two(tmp_path):
    tolerant = [co.CHECKED, co.TOLERANCE]
    assert nbval(tmp_path / "a", "0.917", tolerant) == 0
    assert nbval(tmp_path / "b", "0.916", tolerant) == 1
    assert nbval(tmp_path / "c", "0.917", [co.CHECKED]) == 1  # without the tag: exact
