"""History: JSON round trip, series, validation."""

import dataclasses
import json
import math

import numpy as np
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


def test_from_dict_leaves_out_unknown_fields_with_a_warning_and_rejects_shapes():
    values = History(rounds=[record(1)]).to_dict()
    values["rounds"][0]["surprise"] = 1
    with pytest.warns(UserWarning, match=r"rounds\[0\]: unknown fields \['surprise'\]"):
        assert History.from_dict(values) == History(rounds=[record(1)])
    with pytest.raises(ValueError, match="'rounds'"):
        History.from_dict({"config": {}})


def test_new_fields_round_trip_and_old_files_still_load(tmp_path):
    newer = dataclasses.replace(
        record(1),
        stragglers=(3,),
        dropped=(3,),
        client_steps=(4,),
        gradient_dissimilarity=0.25,
        server_state_norm=float("nan"),
        client_state_norm=1.5,
    )
    history = History(rounds=[newer, record(2)])
    history.save(tmp_path / "new.json")
    loaded = History.load(tmp_path / "new.json")
    assert loaded == history and loaded.rounds[0].dropped == (3,)
    assert loaded.gradient_dissimilarity[0] == 0.25 and np.isnan(loaded.gradient_dissimilarity[1])
    assert np.isnan(loaded.server_state_norm).all()
    assert loaded.client_state_norm[0] == 1.5
    assert loaded.num_stragglers.tolist() == [1, 0] and loaded.num_dropped.tolist() == [1, 0]
    assert loaded.num_participants.tolist() == [2, 2]

    old = History(rounds=[record(1)]).to_dict()  # as written before the new fields existed
    for name in ("stragglers", "dropped", "client_steps", "gradient_dissimilarity"):
        old["rounds"][0].pop(name)
    old["rounds"][0]["server_state_norm"] = None
    (tmp_path / "old.json").write_text(json.dumps(old))
    loaded = History.load(tmp_path / "old.json")
    assert loaded.rounds[0].stragglers == () and loaded.rounds[0].client_steps == ()
    assert np.isnan(loaded.rounds[0].gradient_dissimilarity)
    assert np.isnan(loaded.rounds[0].server_state_norm)
    assert loaded.rounds[0].test_accuracy == 0.5


def test_positional_construction_with_the_original_fields_still_works():
    r = RoundRecord(1, (0,), (0.5,), (5,), 0.5, 0.4, 0.9, (0.1,), 0.1, 0.1, (1.0,), 8, 8, 0.01)
    assert r.stragglers == () and math.isnan(r.client_state_norm)


def test_update_cosine_mean_is_each_rounds_mean_and_nan_without_clients():
    empty = dataclasses.replace(record(3), clients=(), update_cosine=())
    history = History(
        rounds=[record(1), dataclasses.replace(record(2), update_cosine=(0.5,)), empty]
    )
    mean = history.update_cosine_mean
    assert mean[:2].tolist() == pytest.approx([(0.99 - 0.2) / 2, 0.5])
    assert math.isnan(mean[2]) and mean.shape == (3,)
