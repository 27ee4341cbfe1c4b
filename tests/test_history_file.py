"""A History on disk (fedlab/history_file.py, fedlab/atomic.py): a save never destroys the previous
good file, a history never picks up a state file that is not its own, the file is strict JSON, and
a damaged or foreign file raises one error naming the file and the field."""

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from fedlab.atomic import write_atomically
from fedlab.history import History, RoundRecord


def record(round_num, accuracy=0.5):
    return RoundRecord(
        round=round_num,
        clients=(0, 3),
        client_loss=(0.5, 2.0),
        client_num_examples=(10, 30),
        train_loss=1.625,
        test_loss=float("nan"),
        test_accuracy=accuracy,
        client_drift=(0.1, 0.3),
        drift_mean=0.2,
        drift_max=0.3,
        update_cosine=(0.99, -0.2),
        bytes_down=2048,
        bytes_up=2048,
        wall_time=0.01,
        epsilon=float("inf"),
    )


def history(num_rounds=3, **config):
    return History(
        config={"algorithm": {"name": "FedAvg"}, "seed": 0, **config},
        rounds=[record(r + 1, 0.5 + r / 10) for r in range(num_rounds)],
    )


def with_state(h, value=1.0):
    h.client_state["personal_weights"] = [np.full((4, 3), value), np.arange(4.0) * value]
    return h


# --- saves that cannot destroy the previous good file ---------------------------------------------


def test_a_save_that_fails_on_a_value_leaves_the_previous_file_whole(tmp_path):
    path = tmp_path / "run.json"
    history(5).save(path)
    good = path.read_bytes()
    broken = history(1, callback=object())
    with pytest.raises(TypeError, match=r"config\['callback'\] is of type object"):
        broken.save(path)
    assert path.read_bytes() == good
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.json"]  # no temporary left


def test_numpy_numbers_in_a_config_are_saved_as_numbers(tmp_path):
    h = history(1, mu=np.float32(0.25), sizes=np.array([1, 2]), flag=np.bool_(True))
    h.save(tmp_path / "run.json")
    loaded = History.load(tmp_path / "run.json")
    assert loaded.config["mu"] == 0.25 and loaded.config["sizes"] == [1, 2]
    assert loaded.config["flag"] is True


SAVER = textwrap.dedent(
    """
    import sys, numpy as np
    from fedlab.history import History
    sys.path.insert(0, {tests!r})
    from test_history_file import history
    h = history(400)
    h.client_state["w"] = [np.random.default_rng(0).normal(size=(200, 200))]
    print("ready", flush=True)
    while True:
        h.save({path!r})
    """
)


def test_a_save_killed_at_any_moment_leaves_a_file_that_loads(tmp_path):
    path = tmp_path / "run.json"
    first = history(2)
    first.save(path)
    code = SAVER.format(tests=os.path.dirname(__file__), path=str(path))
    for delay in (0.05, 0.13, 0.31, 0.57):
        saver = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        assert saver.stdout.readline().strip() == "ready"
        time.sleep(delay)
        saver.send_signal(signal.SIGKILL)
        saver.wait(timeout=10)
        loaded = History.load(path)  # the old one or a new one, never half of either
        assert len(loaded) in (2, 400)
        assert (len(loaded) == 400) == bool(loaded.client_state)
        states = list(tmp_path.glob("run.*.npz"))
        assert len(states) <= 2  # the one in use, and perhaps one a kill left unreferenced


def test_write_atomically_keeps_every_old_file_if_one_cannot_be_written(tmp_path):
    (tmp_path / "a.txt").write_bytes(b"old a")
    (tmp_path / "folder").mkdir()
    with pytest.raises(IsADirectoryError, match="is a folder"):
        write_atomically({tmp_path / "a.txt": b"new a", tmp_path / "folder": b"x"})
    assert (tmp_path / "a.txt").read_bytes() == b"old a"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "folder"]


def test_a_save_keeps_the_files_permissions_and_creates_missing_folders(tmp_path):
    path = tmp_path / "new" / "deeper" / "run.json"
    history(1).save(path)
    assert History.load(path) == history(1)
    path.chmod(0o640)
    history(2).save(path)
    assert path.stat().st_mode & 0o777 == 0o640


def test_saving_to_a_folder_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(IsADirectoryError, match="give a file name"):
        history(1).save(tmp_path)


# --- the state file belongs to exactly one history file -------------------------------------------


def test_a_history_without_state_saved_over_one_with_state_loads_without_it(tmp_path):
    path = tmp_path / "run.json"
    with_state(history(2)).save(path)
    assert len(list(tmp_path.glob("*.npz"))) == 1
    history(3).save(path)  # FedAvg over Ditto: the old personal weights must not come back
    loaded = History.load(path)
    assert loaded.client_state == {} and len(loaded) == 3
    assert list(tmp_path.glob("*.npz")) == []  # the replaced save's state file is gone


def test_two_history_files_never_share_a_state_file(tmp_path):
    with_state(history(2), 1.0).save(tmp_path / "run.json")
    with_state(history(2), 2.0).save(tmp_path / "run.bak")
    assert History.load(tmp_path / "run.json").client_state["personal_weights"][0][0, 0] == 1.0
    assert History.load(tmp_path / "run.bak").client_state["personal_weights"][0][0, 0] == 2.0


def test_a_copied_history_whose_state_file_changed_or_is_missing_is_refused(tmp_path):
    path = tmp_path / "run.json"
    with_state(history(2)).save(path)
    state = next(tmp_path.glob("*.npz"))
    (tmp_path / "copy.json").write_bytes(path.read_bytes())
    content = bytearray(state.read_bytes())
    content[len(content) // 2] ^= 0xFF
    state.write_bytes(bytes(content))
    with pytest.raises(ValueError, match="is not the client state run.json was saved with"):
        History.load(path)
    state.unlink()
    with pytest.raises(FileNotFoundError, match="copy both files together"):
        History.load(tmp_path / "copy.json")
    assert len(History.load(path, client_state=False)) == 2


def test_a_file_of_an_older_fedlab_still_loads_its_state_with_a_warning(tmp_path):
    old = history(2).to_dict()  # no "format": written before version 1, state in run.npz
    (tmp_path / "run.json").write_text(json.dumps(old))
    np.savez_compressed(tmp_path / "run.npz", **{"personal_weights/0": np.ones(3)})
    with pytest.warns(UserWarning, match="do not record which state file is theirs"):
        loaded = History.load(tmp_path / "run.json")
    assert loaded.client_state["personal_weights"][0].tolist() == [1.0, 1.0, 1.0]


# --- strict JSON -----------------------------------------------------------------------------------


def refuse(token):
    raise ValueError(f"not JSON: {token}")


def test_nan_and_infinity_are_written_as_strict_json_and_read_back(tmp_path):
    path = tmp_path / "run.json"
    h = history(2, clip=float("inf"))
    h.save(path)
    document = json.loads(path.read_text(), parse_constant=refuse)
    assert document["rounds"][0]["test_loss"] is None
    assert document["rounds"][0]["epsilon"] == "Infinity"
    loaded = History.load(path)
    assert loaded == h
    assert math.isnan(loaded.rounds[0].test_loss) and loaded.rounds[0].epsilon == math.inf
    assert loaded.config["clip"] == math.inf


def test_a_file_with_bare_nan_tokens_from_an_older_fedlab_still_loads(tmp_path):
    text = json.dumps(history(1).to_dict())  # Python writes NaN tokens by default
    assert "NaN" in text
    (tmp_path / "old.json").write_text(text)
    assert math.isnan(History.load(tmp_path / "old.json").rounds[0].test_loss)


# --- loading: one clear error naming the file and the field ---------------------------------------


def saved(tmp_path, edit):
    document = json.loads(json.dumps(history(2).to_dict()))
    edit(document)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(document))
    return path


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "is empty"),
        (b"   \n", "is empty"),
        (b"round,accuracy\n1,0.5\n", "is not valid JSON"),
        (b'{"config": {}, "rounds": [{"round": 1, "clien', "is not valid JSON"),
        (bytes(range(256)), "is not text"),
        (b"[1, 2]", "holds a JSON list"),
        (b'{"config": {}}', "needs 'config' and 'rounds'"),
        (b'{"format": "other", "rounds": []}', "is a 'other' file"),
    ],
)
def test_a_file_that_is_not_a_history_says_what_it_is(tmp_path, content, message):
    path = tmp_path / "run.json"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message) as raised:
        History.load(path)
    assert str(path) in str(raised.value)


def test_a_truncated_save_of_a_real_history_is_reported_not_half_loaded(tmp_path):
    path = tmp_path / "run.json"
    history(5).save(path)
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    with pytest.raises(ValueError, match="run.json is not valid JSON"):
        History.load(path)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: d["rounds"][1].pop("test_accuracy"), r"rounds\[1\] has no 'test_accuracy'"),
        (lambda d: d.update(rounds=[None]), r"rounds\[0\] should be an object"),
        (lambda d: d.update(config=[1, 2]), "'config' should be an object"),
        (lambda d: d.update(rounds={"1": {}}), "'rounds' should be a list"),
        (
            lambda d: d["rounds"][0].update(test_accuracy="high"),
            r"rounds\[0\]\.test_accuracy should be a number, got 'high'",
        ),
        (
            lambda d: d["rounds"][1].update(clients=[0, "three"]),
            r"rounds\[1\]\.clients\[1\] should be a whole number",
        ),
        (lambda d: d["rounds"][0].update(clients=3), r"rounds\[0\]\.clients should be a list"),
        (
            lambda d: d["rounds"][0].update(secure_aborted="no"),
            r"secure_aborted should be true or false",
        ),
    ],
)
def test_a_damaged_round_names_the_file_and_the_field(tmp_path, edit, message):
    path = saved(tmp_path, edit)
    with pytest.raises(ValueError, match=message) as raised:
        History.load(path)
    assert "bad.json" in str(raised.value)


def test_a_file_from_a_newer_fedlab_loads_with_a_warning(tmp_path):
    def newer(document):
        document.update(version=7, comments="new in version 7")
        document["rounds"][0]["carbon_grams"] = 3.5

    path = saved(tmp_path, newer)
    with pytest.warns(UserWarning) as caught:
        loaded = History.load(path)
    messages = " | ".join(str(w.message) for w in caught)
    assert "newer fedlab" in messages and "'comments'" in messages and "carbon_grams" in messages
    assert len(loaded) == 2 and loaded.rounds[0].test_accuracy == 0.5


def test_a_missing_file_lists_what_the_folder_holds(tmp_path):
    history(1).save(tmp_path / "history.json")
    with pytest.raises(FileNotFoundError, match="no History file at .*holds: history.json"):
        History.load(tmp_path / "histroy.json")
