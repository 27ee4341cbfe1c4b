"""fedlab on Flower (fedlab.flower): settings checks, and real SuperLink/SuperNode processes.

The end-to-end tests start Flower processes on 127.0.0.1 and take minutes: each Flower message
runs in a process of its own, forked by fedlab.flower.executor (default) or, in one test, started
fresh by Flower itself (importing TensorFlow each time). Flower is in the test extras: without
``flwr`` they fail with the install hint rather than skip.
"""

import math

import numpy as np
import pytest

from fedlab.flower import FlowerConfig, LocalFederation, write_app
from fedlab.flower.watchdog import running

# -- settings (fast, no Flower needed) --------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"algorithm": "fedfoo"}, "algorithm must be one of"),
        ({"partition": "shards"}, "partition must be one of"),
        ({"dataset": "mnist"}, "dataset must be one of"),
        ({"model": "resnet"}, "model must be one of"),
        ({"on_node_failure": "retry"}, "on_node_failure must be one of"),
        ({"num_clients": 0}, r"num_clients must be an integer in \[1, 1000\]"),
        (
            {"num_clients": 3, "clients_per_round": 4},
            r"clients_per_round must be an integer in \[1, 3\]",
        ),
        ({"num_rounds": -1}, "num_rounds must be an integer in"),
        ({"local_epochs": 0}, "local_epochs must be an integer in"),
        ({"batch_size": 0}, "batch_size must be an integer in"),
        ({"client_lr": 0.0}, "client_lr must be a finite number in"),
        ({"server_lr": -1.0}, "server_lr must be a finite number in"),
        ({"mu": -0.1}, "mu must be a finite number in"),
        ({"alpha": 0.0}, "alpha must be a finite number in"),
        ({"round_timeout": 0.0}, "round_timeout must be a finite number in"),
        ({"seed": -1}, "seed must be an integer in"),
        ({"model": "cnn", "dataset": "synthetic"}, "model 'cnn' needs image data"),
        ({"aggregator": "average"}, "aggregator must be one of"),
        ({"trim_beta": 0.5}, r"trim_beta must be a finite number in \[0, 0.5\)"),
        ({"attack": "sign_flip"}, "choose an attack and at least one attacker"),
        ({"num_attackers": 2}, "choose an attack and at least one attacker"),
        (
            {"attack": "sign_flip", "num_attackers": 4},
            r"num_attackers must be an integer in \[0, 3\]",
        ),
        ({"attack": "alie", "num_attackers": 1}, "only a simulation can hand those to it"),
    ],
)
def test_config_rejects_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        FlowerConfig(**kwargs)


def test_config_rejects_wrong_types():
    with pytest.raises(TypeError, match="num_rounds must be an integer"):
        FlowerConfig(num_rounds=2.5)


def test_run_config_round_trip_with_none_as_zero():
    config = FlowerConfig(
        algorithm="fedprox",
        batch_size=None,
        server_lr=None,
        clients_per_round=None,
        mu=0.25,
        partition="dirichlet",
        alpha=0.3,
        num_clients=5,
    )
    flat = config.to_run_config()
    assert flat["batch-size"] == 0 and flat["server-lr"] == 0 and flat["clients-per-round"] == 0
    assert all(isinstance(v, int | float | str) for v in flat.values())
    assert FlowerConfig.from_run_config({**flat, "history-path": "/x.json"}) == config
    # Flower may hand integers back for float settings
    assert FlowerConfig.from_run_config({"client-lr": 1}).client_lr == 1.0


def test_config_builds_fedlab_objects_like_the_cli():
    config = FlowerConfig(
        algorithm="fedprox", mu=0.5, batch_size=None, server_lr=0.5, num_clients=4
    )
    algorithm = config.make_algorithm()
    assert algorithm.config()["mu"] == 0.5
    assert algorithm.batch_size is None and algorithm.config()["server_lr"] == 0.5
    data = config.load_data()
    split = config.make_split(data)
    assert len(split.client_indices) == 4
    assert sum(len(i) for i in split.client_indices) == data.num_train == 1437
    # fedsgd takes no local_epochs/batch_size; fedadam keeps its own server_lr default (0.01)
    assert FlowerConfig(algorithm="fedsgd", local_epochs=3).make_algorithm().local_epochs == 1
    assert FlowerConfig(algorithm="fedadam").make_algorithm().config()["server_lr"] == 0.01
    dirichlet = FlowerConfig(partition="dirichlet", alpha=0.1, num_clients=4)
    assert dirichlet.make_split(data).scheme == "dirichlet(α=0.1)"


def test_write_app_lists_components_and_every_run_config_key(tmp_path):
    config = FlowerConfig(algorithm="scaffold", num_clients=2)
    folder = write_app(tmp_path / "app", config)
    text = (folder / "pyproject.toml").read_text()
    assert 'serverapp = "fedlab_flower_app:server_app"' in text
    assert 'clientapp = "fedlab_flower_app:client_app"' in text
    assert 'publisher = "fedlab"' in text and 'license = "Apache-2.0"' in text
    for key in config.to_run_config():
        assert f"\n{key} = " in text
    assert 'algorithm = "scaffold"' in text and "history-path = " in text
    module = (folder / "fedlab_flower_app.py").read_text()
    assert "server_app = flower.server_app" in module  # an assignment: Flower checks the AST


def test_local_federation_checks_its_arguments():
    with pytest.raises(ValueError, match=r"num_nodes must be an integer in \[1, 100\]"):
        LocalFederation(0)
    with pytest.raises(ValueError, match="start_timeout must be a finite number"):
        LocalFederation(1, start_timeout=0)
    with pytest.raises(ValueError, match="task_processes must be one of"):
        LocalFederation(1, task_processes="thread")
    with pytest.raises(TypeError, match="fast_polling must be True or False"):
        LocalFederation(1, fast_polling="yes")


# -- end to end: SuperLink + SuperNodes as processes ------------------------------------------


def _close(a: float, b: float, rel: float = 1e-4) -> bool:
    return math.isclose(a, b, rel_tol=rel, abs_tol=1e-7)


def _assert_same_numbers(flower, reference, num_parameters: int, rel: float = 1e-4):
    assert len(flower) == len(reference) > 0
    for f, r in zip(flower.rounds, reference.rounds, strict=True):
        assert f.clients == r.clients, f"round {f.round}: different clients"
        assert f.client_num_examples == r.client_num_examples
        assert f.client_steps == r.client_steps
        assert f.dropped == ()
        for name in ("test_loss", "test_accuracy", "train_loss", "drift_mean", "drift_max"):
            assert _close(getattr(f, name), getattr(r, name), rel), (
                f"round {f.round} {name}: flower {getattr(f, name)} vs simulate {getattr(r, name)}"
            )
        for a, b in zip(f.client_loss, r.client_loss, strict=True):
            assert _close(a, b, rel)
        for a, b in zip(f.update_cosine, r.update_cosine, strict=True):
            assert _close(a, b, 1e-3)
        # measured from the Arrays sent: float32 payload plus each array's small .npy header
        assert f.bytes_down >= r.bytes_down > 0 and f.bytes_up >= r.bytes_up > 0
        assert f.bytes_down - r.bytes_down < 2048 * len(f.clients)
        assert r.bytes_down >= 4 * num_parameters * len(f.clients)


@pytest.fixture(scope="module")
def federation():
    with LocalFederation(3) as fed:
        yield fed
    pids = fed.pids()  # with the Flower processes' children found when they were ended
    assert len(pids) > 4
    assert not [pid for pid in pids if running(pid)], "processes still running after stop()"


def test_fedavg_on_flower_equals_simulate(federation):
    config = FlowerConfig(algorithm="fedavg", num_clients=3, num_rounds=2, round_timeout=240)
    history = federation.run(config, timeout=600)
    reference = config.simulate()
    assert history.config["runtime"] == "flower" and history.config["algorithm"] == "fedavg"
    _assert_same_numbers(history, reference, reference.config["num_parameters"])
    assert [r.clients for r in history.rounds] == [(0, 1, 2), (0, 1, 2)]


def test_scaffold_on_flower_keeps_client_state_and_equals_simulate(federation):
    config = FlowerConfig(
        algorithm="scaffold",
        num_clients=3,
        clients_per_round=2,
        num_rounds=2,
        client_lr=0.05,
        round_timeout=240,
    )
    history = federation.run(config, timeout=600)
    reference = config.simulate()
    _assert_same_numbers(history, reference, reference.config["num_parameters"])
    # c went down and Δc_k came up: more bytes than plain weights, as in the engine's count
    for f, r in zip(history.rounds, reference.rounds, strict=True):
        assert _close(f.server_state_norm, r.server_state_norm, 1e-3)
        assert f.bytes_up >= r.bytes_up
    # a client chosen in both rounds used its c_k from round 1 (kept in context.state):
    # otherwise round 2's losses would not match the simulation above
    assert set(history.rounds[0].clients) & set(history.rounds[1].clients)


@pytest.mark.parametrize(
    "settings",
    [
        {"algorithm": "fedprox", "mu": 0.5},  # the client's proximal term
        {"algorithm": "fedadam", "partition": "dirichlet", "alpha": 0.3},  # a server optimiser
        {"algorithm": "fednova", "partition": "dirichlet", "alpha": 0.3},  # the aggregator: τ_k
        # an attacker's ClientApp tampers with its update, the ServerApp's defence aggregates
        {"aggregator": "median", "attack": "sign_flip", "num_attackers": 1},
        {"aggregator": "clipping", "clip_norm": 0.5, "attack": "backdoor", "num_attackers": 1},
    ],
    ids=["fedprox", "fedadam-noniid", "fednova-noniid", "median-signflip", "clip-backdoor"],
)
def test_client_and_server_slots_on_flower_equal_simulate(federation, settings):
    config = FlowerConfig(
        num_clients=3, clients_per_round=2, num_rounds=2, round_timeout=240, **settings
    )
    history = federation.run(config, timeout=600)
    reference = config.simulate()
    assert history.config["algorithm_config"] == reference.config["algorithm"]  # same settings
    # equal test losses in round 2: the same proximal steps / the same Adam moments kept
    _assert_same_numbers(history, reference, reference.config["num_parameters"])
    for f, r in zip(history.rounds, reference.rounds, strict=True):
        assert f.malicious == r.malicious and f.defence_clipped == r.defence_clipped
        if not math.isnan(r.backdoor_success):
            assert _close(f.backdoor_success, r.backdoor_success, 1e-3)


def test_killed_node_is_dropped_then_rejoins_and_every_process_ends():
    config = FlowerConfig(
        algorithm="fedavg",
        num_clients=3,
        num_rounds=3,
        round_timeout=180,
        on_node_failure="continue",
    )
    events = []

    def on_round(history):
        if len(history) == 1:  # crash SuperNode 2 during round 2, bring it back at once
            federation.kill_node(2)
            federation.start_node(2)
            events.append("killed and restarted node 2")

    with LocalFederation(3) as federation:
        history = federation.run(config, timeout=900, on_round=on_round)
    pids = federation.pids()
    assert events == ["killed and restarted node 2"]
    assert [r.clients for r in history.rounds] == [(0, 1, 2), (0, 1), (0, 1, 2)]
    assert [r.dropped for r in history.rounds] == [(), (2,), ()]
    assert history.rounds[1].client_num_examples == history.rounds[0].client_num_examples[:2]
    assert np.isfinite(history.test_accuracy).all()
    assert all(not running(pid) for pid in pids)


def test_node_failure_with_fail_stops_and_keeps_the_history_so_far():
    from fedlab.history import History

    config = FlowerConfig(num_clients=2, num_rounds=3, round_timeout=180, on_node_failure="fail")
    # Flower's own process model: a fresh Python per message, SuperNodes polling every 3 s
    with LocalFederation(2, task_processes="spawn", fast_polling=False) as federation:

        def on_round(history):
            if len(history) == 1:
                federation.kill_node(1)

        with pytest.raises(RuntimeError, match=r"round 2: client partition-id=1 on SuperNode \d+"):
            federation.run(config, timeout=900, on_round=on_round)
        kept = History.load(federation.history_path)
    assert [r.clients for r in kept.rounds] == [(0, 1)]


def test_processes_end_when_the_with_block_fails():
    with pytest.raises(ZeroDivisionError):
        with LocalFederation(1) as federation:
            # a SuperLink, a SuperNode and the executor that forks their task processes
            assert sorted(federation.processes) == ["executor", "superlink", "supernode0"]
            assert all(running(p.pid) for p in federation.processes.values())
            1 / 0  # noqa: B018
    pids = federation.pids()
    assert not [pid for pid in pids if running(pid)]
