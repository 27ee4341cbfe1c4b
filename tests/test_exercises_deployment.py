"""Notebook 14's checks (fedlab/exercises/deployment.py): each passes the right answer and names
every anticipated mistake with its own message; a stub fails with "still `...`" or "returns
None". No federation is started: a Flower run's History is the engine's with Flower's config."""

import dataclasses

import numpy as np
import pytest

from fedlab import exercises
from fedlab.exercises import CheckFailed
from fedlab.exercises.deployment import _record
from fedlab.history import History

flower = pytest.importorskip("fedlab.flower")


def fails(check, *args, match: str, **kwargs):
    with pytest.raises(CheckFailed, match=match):
        check(*args, **kwargs)


CONFIG = flower.FlowerConfig(num_clients=3, num_rounds=3, batch_size=40, seed=0)


def as_flower(config, engine_run, **record_changes):
    """What federation.run(config) returns: the engine's rounds under Flower's settings."""
    settings = {
        **config.history_config(),
        "algorithm_config": engine_run.config["algorithm"],
        "num_parameters": engine_run.config["num_parameters"],
    }
    rounds = [dataclasses.replace(r, **record_changes) for r in engine_run.rounds]
    return History(config=settings, rounds=rounds)


@pytest.fixture(scope="module")
def scaffold():
    """SCAFFOLD for two rounds, two of three clients: the config, its engine run, a Flower run."""
    config = dataclasses.replace(CONFIG, algorithm="scaffold", clients_per_round=2, num_rounds=2)
    reference = config.simulate()
    return config, reference, as_flower(config, reference)


def test_the_deployed_check_wants_the_federation_the_settings_and_the_same_numbers(scaffold):
    config, reference, run = scaffold
    wanted = {"algorithm": "scaffold", "clients_per_round": 2}
    names = {"name": "scaffold_run", "reference_name": "scaffold_reference"}
    exercises.check_deployed(run, reference, CONFIG, **names, **wanted)
    fedavg = dataclasses.replace(config, algorithm="fedavg")
    batch_20 = dataclasses.replace(config, batch_size=20)
    one_round = dataclasses.replace(config, num_rounds=1)
    shifted = as_flower(config, reference)
    shifted.rounds[1] = dataclasses.replace(
        shifted.rounds[1], test_loss=reference.test_loss[1] + 0.01
    )
    mistakes = {
        "scaffold_run is still `...`": (..., reference),
        "scaffold_reference is still `...`": (run, ...),
        "ran in this process": (reference, reference),
        "not the History": ([run], reference),
        "ran with algorithm='fedavg'": (as_flower(fedavg, reference), reference),
        r"also changed batch_size \(40 → 20\)": (as_flower(batch_20, reference), reference),
        r"has 1 round\(s\): run at least 2": (
            as_flower(one_round, History(reference.config, reference.rounds[:1])),
            reference,
        ),
        "scaffold_reference is a Flower run too": (run, run),
        r"is not scaffold_run's config run in this process": (
            run,
            History({**reference.config, "algorithm": {"name": "FedAvg"}}, reference.rounds),
        ),
        "differ \\(largest test-loss difference 0.01\\)": (shifted, reference),
    }
    for message, (got, ref) in mistakes.items():
        fails(exercises.check_deployed, got, ref, CONFIG, match=message, **names, **wanted)


def test_the_deployed_check_names_other_clients(scaffold):
    config, reference, run = scaffold
    swapped = as_flower(config, reference)
    swapped.rounds[0] = dataclasses.replace(swapped.rounds[0], clients=(0, 1))
    fails(
        exercises.check_deployed,
        swapped,
        reference,
        CONFIG,
        algorithm="scaffold",
        clients_per_round=2,
        match=r"round 1: run trained clients \[0, 1\], reference \[1, 2\]",
    )


def flower_rounds(*rounds, **config):
    return History(config={"runtime": "flower", **config}, rounds=[_record(**r) for r in rounds])


def test_the_upload_share_check_names_the_inverse_the_downloads_and_the_fraction():
    full = flower_rounds(
        {"round": 1, "bytes_up": 116_856, "bytes_down": 116_856},
        {"round": 2, "bytes_up": 116_856, "bytes_down": 116_856},
        {"round": 3, "bytes_up": 116_856, "bytes_down": 116_856},
    )
    topk = flower_rounds(
        {"round": 1, "bytes_up": 12_312, "bytes_down": 116_856},
        {"round": 2, "bytes_up": 12_312, "bytes_down": 116_856},
        compression_fraction=0.05,
    )
    share = 12_312 / 116_856
    exercises.check_upload_share(share, topk, full)
    mistakes = {
        "is the inverse": 1 / share,
        "compares the bytes down": 1.0,
        "is a percentage": 100 * share,
        "whole runs of different lengths": 2 * 12_312 / (3 * 116_856),
        "share of coordinates top-k keeps": 0.05,
        "is not round 1's bytes_up": 0.5,
        "should be a number": "a tenth",
        "still `...`": ...,
    }
    for message, wrong in mistakes.items():
        fails(exercises.check_upload_share, wrong, topk, full, match=message)


def test_the_crash_checks_want_round_2_without_client_2_and_its_time():
    def crash(*dropped, timeout=10.0, runtime="flower"):
        rounds = [
            {"round": r, "dropped": d, "wall_time": t}
            for r, (d, t) in enumerate(
                zip(dropped, (4.0, 14.0, 4.0)[: len(dropped)], strict=True), 1
            )
        ]
        return flower_rounds(*rounds, round_timeout=timeout, runtime=runtime)

    good = crash((), (2,))
    exercises.check_crash(good, node=2, round_timeout=10.0)
    mistakes = {
        "wants round_timeout=10.0": crash((), (2,), timeout=300.0),
        r"has 1 round\(s\)": crash(()),
        r"dropped client\(s\) \[2\] in round 1 already": crash((2,), (2,)),
        "round 2 did not drop client 2": crash((), ()),
        r"round 2 dropped client\(s\) \[1\] too": crash((), (1, 2)),
        "ran in this process": crash((), (2,), runtime=None),
        "crash_run is still `...`": ...,
    }
    for message, wrong in mistakes.items():
        fails(exercises.check_crash, wrong, node=2, round_timeout=10.0, match=message)
    three = crash((), (2,), (2,))
    exercises.check_waited(14.0, three)
    waits = {
        "round 1's time": 4.0,
        "whole run's time": 22.0,
        "the mean round": 22.0 / 3,
        "not the wall time of round 2": 10.0,
        "should be a number": "fourteen",
        "still `...`": ...,
    }
    for message, wrong in waits.items():
        fails(exercises.check_waited, wrong, three, match=message)


def test_the_process_start_check_wants_a_slow_import_and_a_quick_fork():
    exercises.check_process_start(8.2, 0.012)
    exercises.check_process_start(25.7, 0.127)  # a busy machine
    mistakes = {
        "swapped": (0.012, 8.2),
        "too quick for a fresh Python": (0.3, 0.01),
        "a fork copies this process": (8.2, 2.5),
        "import_seconds is still `...`": (..., 0.01),
        "fork_seconds is still `...`": (8.2, ...),
        "should be numbers": ("8 s", 0.01),
    }
    for message, (spawn, fork) in mistakes.items():
        fails(exercises.check_process_start, spawn, fork, match=message)


def supernode_command(k, num_students, teacher_ip, port=8000):
    config = f"partition-id={k} num-partitions={num_students}"
    return (
        f"flower-supernode --superlink {teacher_ip}:{port} --root-certificates ca.crt "
        f'--isolation subprocess --node-config "{config}"'
    )


def command(text):
    """A wrong command written the way the right one is, with ``text`` for its pieces."""
    return lambda k, n, ip, port=8000: text.format(
        k=k, n=n, ip=ip, port=port, k1=k + 1, k2=k + 2, n1=n + 1
    )


GOOD = 'flower-supernode --superlink {ip}:{port} --root-certificates ca.crt --node-config "{cfg}"'
CFG = "partition-id={k} num-partitions={n}"

COMMAND_MISTAKES = {
    "should start flower-supernode": command(
        GOOD.replace("supernode", "superlink", 1).replace("{cfg}", CFG)
    ),
    "uses --insecure": command(GOOD.replace("{cfg}", CFG) + " --insecure"),
    "no --root-certificates": command(
        GOOD.replace(" --root-certificates ca.crt", "").replace("{cfg}", CFG)
    ),
    "connects to 127.0.0.1": command(GOOD.replace("{ip}", "127.0.0.1").replace("{cfg}", CFG)),
    "is not the teacher's SuperLink": command(GOOD.replace(":{port}", "").replace("{cfg}", CFG)),
    "has no --node-config": command(GOOD.split(" --node-config")[0]),
    "falls apart into several arguments": command(GOOD.replace('"{cfg}"', CFG)),
    "counts partitions from 1": command(
        GOOD.replace("{cfg}", "partition-id={k1} num-partitions={n}")
    ),
    "gives student": command(GOOD.replace("{cfg}", "partition-id={k2} num-partitions={n}")),
    r"num-partitions=\d+ for \d+ students": command(
        GOOD.replace("{cfg}", "partition-id={k} num-partitions={n1}")
    ),
    "needs both partition-id and num-partitions": command(
        GOOD.replace("{cfg}", "partition-id={k}")
    ),
    "does not parse": command(GOOD.replace("{cfg}", CFG).replace('"', "'", 1)),
    "a string, or a list": lambda k, n, ip, port=8000: 42,
    "returns None": lambda k, n, ip, port=8000: None,
}


@pytest.mark.parametrize("seed", [None, 1, 3])
def test_the_supernode_command_check_names_tls_addresses_and_partitions(seed):
    exercises.check_supernode_command(supernode_command, seed=seed)
    as_list = lambda k, n, ip, port=8000: [  # noqa: E731
        "flower-supernode", "--superlink", f"{ip}:{port}", "--root-certificates", "ca.crt",
        "--node-config", f"partition-id={k} num-partitions={n}",
    ]  # fmt: skip
    exercises.check_supernode_command(as_list, seed=seed)
    for message, wrong in COMMAND_MISTAKES.items():
        fails(exercises.check_supernode_command, wrong, seed=seed, match=message)


def test_the_record_helper_fills_every_field():
    record = _record(round=1, bytes_up=5)
    assert record.bytes_up == 5 and record.clients == () and np.isnan(record.epsilon)
