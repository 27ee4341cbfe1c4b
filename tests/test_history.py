"""History: JSON round trip, series, validation."""

import json
import math

import pytest

from fedlab.history import History, RoundRecord


def record(round_num, accuracy=0.5, wall_time=0.01):
    return RoundRecord(
        round=round_num,
        clients=(0, 3),
        client_loss=(0.1 / 3, 2.0),
        client_num_examples=(10, 30),
        train_loss=1.5083333333333333,
        test_loss=float("nan"),
        test_accuracy=accuracy,
        client_drift=(1e-7, 0.30000000000000004),
        drift_mean=0.15,
        drift_max=0.30000000000000004,
        update_cosine=(0.99, -0.2),
        bytes_down=2048,
        bytes_up=2048,
        wall_time=wall_time,
    )


def test_json_round_trip_is_exact(tmp_path):
    history = History(
        config={"algorithm": {"name": "FedAvg", "batch_size": None}, "seed": 0},
        rounds=[record(1), record(2, accuracy=1 / 3)],
    )
    path = tmp_path / "history.json"
    history.save(path)
    loaded = History.load(path)
    assert loaded == history
    assert loaded.rounds[1].test_accuracy == 1 / 3
    assert isinstance(loaded.rounds[0].clients, tuple)
    assert math.isnan(loaded.rounds[0].test_loss)
    assert json.loads(path.read_text())["config"]["seed"] == 0


def test_series_and_matches():
    history = History(rounds=[record(1, 0.2), record(2, 0.4)])
    assert history.test_accuracy.tolist() == [0.2, 0.4]
    assert history.round.tolist() == [1, 2]
    assert len(history) == 2
    retimed = History(rounds=[record(1, 0.2, wall_time=9.0), record(2, 0.4, wall_time=3.0)])
    assert history.matches(retimed) and history != retimed
    assert not history.matches(History(rounds=[record(1, 0.2), record(2, 0.5)]))
    with pytest.raises(ValueError, match="RoundRecord field"):
        history.series("accuracy")


def test_from_dict_rejects_unknown_fields_and_shapes():
    values = History(rounds=[record(1)]).to_dict()
    values["rounds"][0]["surprise"] = 1
    with pytest.raises(ValueError, match="unknown RoundRecord fields"):
        History.from_dict(values)
    with pytest.raises(ValueError, match="'rounds'"):
        History.from_dict({"config": {}})
