"""The command line loses nothing (issue 18): Ctrl-C (SIGINT) or SIGTERM mid-run saves the rounds
done and exits with a documented code, without a traceback; a killed run keeps what --save-every
saved; an --out it could not write to, or one holding an earlier run, is refused before training.

The signals are real: the CLI runs in a child process, as from a terminal."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fedlab.cli import EXIT_INTERRUPTED, main
from fedlab.history import History

ROOT = Path(__file__).resolve().parents[1]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def start(out: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    command = [sys.executable, "-m", "fedlab", "run", "--num-rounds", "100000", "--no-progress"]
    return subprocess.Popen(
        [*command, "--num-clients", "4", "--save-every", "1", "--out", str(out), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def wait_for_rounds(process: subprocess.Popen, path: Path, rounds: int, timeout: float = 240):
    """Wait until the running CLI has saved at least ``rounds`` rounds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        try:
            if len(History.load(path)) >= rounds:
                return
        except (FileNotFoundError, ValueError):
            pass
        time.sleep(0.2)
    process.kill()
    raise AssertionError(f"the CLI saved no {rounds} rounds in {timeout} s")


@pytest.mark.parametrize("number", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_mid_run_saves_the_rounds_done_and_exits_with_its_code(tmp_path, number):
    out = tmp_path / "run"
    process = start(out)
    wait_for_rounds(process, out / "history.json", 3)
    process.send_signal(number)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == EXIT_INTERRUPTED[number] == 128 + number
    assert "Traceback" not in stderr, stderr
    assert signal.Signals(number).name in stderr and "stopping after the round" in stderr
    history = History.load(out / "history.json")
    assert len(history) >= 3 and history.round.tolist() == list(range(1, len(history) + 1))
    assert f"stopped by {signal.Signals(number).name} after round {len(history)}" in stdout
    assert (out / "history.png").read_bytes()[:8] == PNG_MAGIC


def test_a_second_signal_abandons_the_round_in_flight_and_still_saves(tmp_path):
    out = tmp_path / "run"
    process = start(out)
    wait_for_rounds(process, out / "history.json", 2)
    process.send_signal(signal.SIGINT)
    time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130 and "Traceback" not in stderr, stderr
    history = History.load(out / "history.json")
    assert history.round.tolist() == list(range(1, len(history) + 1))


def test_a_killed_run_keeps_what_save_every_saved(tmp_path):
    out = tmp_path / "run"
    process = start(out)
    wait_for_rounds(process, out / "history.json", 4)
    process.kill()
    process.communicate(timeout=60)
    assert len(History.load(out / "history.json")) >= 4


def test_ctrl_c_while_setting_up_exits_quietly_with_nothing_saved(tmp_path, monkeypatch, capsys):
    from fedlab import cli

    def interrupted(args):
        # Ctrl-C while the data and model are being made: raised here, as Python's SIGINT handler
        # raises it in the main thread (os.kill would reach the main thread, which under an xdist
        # worker need not run the test; the real signals are sent to processes below)
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_setup", interrupted)
    code = main(["run", "--no-progress", "--num-rounds", "2", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 130 and "Traceback" not in err and "nothing was trained" in err
    assert not (tmp_path / "run" / "history.json").exists()


# --- --out is checked before anything trains ---------------------------------------------------


def refused(out, capsys, *extra) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--no-progress", "--num-rounds", "1", "--out", str(out), *extra])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    return err


def test_an_out_that_is_a_file_is_refused(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert "is a file" in refused(tmp_path / "file", capsys)


def test_an_out_that_cannot_be_created_is_refused(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert "cannot create the folder" in refused(tmp_path / "file" / "below", capsys)


def test_an_output_name_taken_by_a_folder_is_refused(tmp_path, capsys):
    (tmp_path / "history.json").mkdir()
    assert "history.json there is a folder" in refused(tmp_path, capsys)


def test_an_earlier_run_is_not_overwritten_unless_asked(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "--no-progress", "--num-rounds", "2", "--out", str(out)]) == 0
    before = (out / "history.json").read_bytes()
    assert "--overwrite" in refused(out, capsys)
    assert (out / "history.json").read_bytes() == before
    assert (
        main(["run", "--no-progress", "--num-rounds", "1", "--out", str(out), "--overwrite"]) == 0
    )
    assert len(History.load(out / "history.json")) == 1


def test_a_folder_that_cannot_be_written_is_refused(capsys):
    assert "cannot write there" in refused(Path("/proc"), capsys)  # even root cannot


def test_save_every_must_be_positive(tmp_path, capsys):
    assert "--save-every" in refused(tmp_path / "x", capsys, "--save-every", "0")
