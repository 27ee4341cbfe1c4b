"""The command line (``python -m fedlab run``) and a smoke test of the engine benchmark script."""

import dataclasses
import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fedlab
from fedlab.cli import build_parser, main
from fedlab.engine import Simulation
from fedlab.history import History

ROOT = Path(__file__).resolve().parents[1]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
RUN_OPTIONS = [
    "--dataset",
    "--mnist-path",
    "--synthetic-alpha",
    "--synthetic-beta",
    "--partition",
    "--num-clients",
    "--model",
    "--algorithm",
    "--local-epochs",
    "--batch-size",
    "--client-lr",
    "--server-lr",
    "--mu",
    "--momentum",
    "--nesterov",
    "--beta1",
    "--beta2",
    "--tau",
    "--aggregator",
    "--trim-beta",
    "--num-byzantine",
    "--num-selected",
    "--clip-norm",
    "--noise-std",
    "--attack",
    "--attackers",
    "--num-rounds",
    "--clients-per-round",
    "--seed",
    "--strategy",
    "--out",
    "--overwrite",
    "--save-every",
    "--no-progress",
]


def run_cli(*args: str) -> int:
    return main(["run", "--no-progress", *args])


def test_run_on_digits_writes_history_and_plot(tmp_path, capsys):
    out = tmp_path / "runs" / "digits"  # parents are created too
    code = run_cli("--num-rounds", "3", "--num-clients", "5", "--out", str(out))
    assert code == 0
    history = History.load(out / "history.json")
    assert len(history) == 3
    assert history.round.tolist() == [1, 2, 3]
    config = history.config
    assert config["dataset"] == "digits"
    assert config["split"] == "iid"
    assert config["num_clients"] == config["clients_per_round"] == 5
    assert config["algorithm"]["name"] == "FedAvg"
    assert config["algorithm"]["batch_size"] == 20
    assert config["command_line"]["model"] == "mlp"
    assert np.all((history.test_accuracy >= 0) & (history.test_accuracy <= 1))
    assert (out / "history.png").read_bytes()[:8] == PNG_MAGIC
    last_line = capsys.readouterr().out.strip().splitlines()[-1]
    accuracy = history.test_accuracy[-1]
    assert last_line.startswith(f"round 3 · test accuracy {accuracy:.3f} · test loss ")
    assert last_line.endswith(f"wrote {out / 'history.json'}, {out / 'history.png'}")


def test_run_on_synthetic_uses_its_natural_clients(tmp_path):
    out = tmp_path / "synthetic"
    code = run_cli(
        "--dataset", "synthetic", "--num-clients", "5", "--model", "logreg",
        "--num-rounds", "3", "--clients-per-round", "2", "--batch-size", "full",
        "--out", str(out),
    )  # fmt: skip
    assert code == 0
    history = History.load(out / "history.json")
    assert len(history) == 3
    assert history.config["dataset"] == "synthetic(1,1)"
    assert history.config["split"] == "natural"
    assert history.config["num_clients"] == 5
    assert history.config["clients_per_round"] == 2
    assert history.config["algorithm"]["batch_size"] is None
    assert history.config["command_line"]["model"] == "logreg"
    assert all(len(r.clients) == 2 for r in history.rounds)
    assert (out / "history.png").read_bytes()[:8] == PNG_MAGIC


@pytest.mark.parametrize(
    ("args", "name", "expected"),
    [
        (["--algorithm", "fedprox", "--mu", "0.1"], "FedProx", {"mu": 0.1, "server_lr": 1.0}),
        (["--algorithm", "scaffold", "--server-lr", "0.5"], "SCAFFOLD", {"server_lr": 0.5}),
        (
            ["--algorithm", "fedavgm", "--momentum", "0.5", "--nesterov"],
            "FedAvgM",
            {"server_optimizer": {"momentum": 0.5, "nesterov": True, "server_lr": 1.0}},
        ),
        (["--algorithm", "fedavgm"], "FedAvgM", {"server_optimizer": {"nesterov": False}}),
        (
            ["--algorithm", "fedadam", "--beta1", "0.8", "--tau", "0.01"],
            "FedAdam",
            {"server_optimizer": {"beta1": 0.8, "beta2": 0.99, "tau": 0.01, "server_lr": 0.01}},
        ),
        (
            ["--algorithm", "fedyogi", "--beta2", "0.9", "--server-lr", "0.03"],
            "FedYogi",
            {"server_optimizer": {"name": "ServerYogi", "beta2": 0.9, "server_lr": 0.03}},
        ),
        (
            ["--algorithm", "fedadagrad", "--tau", "0.1"],
            "FedAdagrad",
            {"server_optimizer": {"name": "ServerAdagrad", "tau": 0.1, "beta1": 0.9}},
        ),
        (
            ["--algorithm", "fednova"],
            "FedNova",
            {"aggregator": {"name": "FedNovaMean"}, "server_lr": 1.0},
        ),
    ],
)
def test_every_algorithm_runs_with_its_hyperparameters(tmp_path, args, name, expected):
    out = tmp_path / "run"
    code = run_cli(
        "--num-rounds", "1", "--num-clients", "3", "--batch-size", "50", *args, "--out", str(out)
    )
    assert code == 0
    history = History.load(out / "history.json")
    assert len(history) == 1
    algorithm = history.config["algorithm"]
    assert algorithm["name"] == name and algorithm["batch_size"] == 50
    for key, value in expected.items():
        if isinstance(value, dict):
            for inner, want in value.items():
                assert algorithm[key][inner] == want, (key, inner)
        else:
            assert algorithm[key] == value, key


def test_help_explains_every_option(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option in RUN_OPTIONS:
        assert option in text, option
    run_parser = build_parser()._subparsers._group_actions[0].choices["run"]
    documented = {s for a in run_parser._actions if a.help for s in a.option_strings}
    assert set(RUN_OPTIONS) <= documented


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--clients-per-round", "6"], "--clients-per-round"),
        (["--client-lr", "-0.1"], "--client-lr"),
        (["--server-lr", "0"], "--server-lr"),
        (["--batch-size", "0"], "--batch-size"),
        (["--batch-size", "many"], "--batch-size"),
        (["--local-epochs", "0"], "--local-epochs"),
        (["--num-clients", "0"], "--num-clients"),
        (["--num-rounds", "-1"], "--num-rounds"),
        (["--seed", "-3"], "--seed"),
        (["--partition", "natural"], "--partition"),
        (["--dataset", "synthetic", "--synthetic-alpha", "-1"], "--synthetic-alpha"),
        (["--dataset", "synthetic", "--model", "cnn"], "--model"),
        (["--model", "resnet"], "--model"),
        (["--dataset", "mnist", "--mnist-path", "no/such/mnist.npz"], "--mnist-path"),
        (["--algorithm", "fedprox", "--mu", "-1"], "--mu"),
        (["--algorithm", "fedprox", "--mu", "inf"], "--mu"),
        (["--mu", "0.1"], "--mu"),  # fedavg takes no μ
        (["--algorithm", "scaffold", "--momentum", "0.9"], "--momentum"),
        (["--algorithm", "fedavgm", "--momentum", "1"], "--momentum"),
        (["--algorithm", "fedavgm", "--momentum", "-0.5"], "--momentum"),
        (["--algorithm", "fedadam", "--nesterov"], "--nesterov"),
        (["--algorithm", "fedadam", "--beta1", "1"], "--beta1"),
        (["--algorithm", "fedyogi", "--beta2", "1.5"], "--beta2"),
        (["--algorithm", "fedadagrad", "--beta2", "0.9"], "--beta2"),  # Adagrad has no β2
        (["--algorithm", "fedyogi", "--tau", "0"], "--tau"),
        (["--algorithm", "fedavgm", "--tau", "0.1"], "--tau"),
        (["--algorithm", "fedadam", "--server-lr", "0"], "--server-lr"),
        (["--algorithm", "fedsgd", "--beta1", "0.5"], "--beta1"),
        (["--algorithm", "fedadam", "--tau", "small"], "--tau"),
        (["--aggregator", "trimmed_mean", "--trim-beta", "0.5"], "--trim-beta"),
        (["--aggregator", "krum", "--num-byzantine", "-1"], "--num-byzantine"),
        (["--aggregator", "multi_krum", "--num-selected", "0"], "--num-selected"),
        (["--aggregator", "clipping", "--clip-norm", "0"], "--clip-norm"),
        (["--aggregator", "clipping", "--noise-std", "-1"], "--noise-std"),
        (["--num-byzantine", "1"], "--num-byzantine"),  # the plain mean takes no f
        (["--aggregator", "krum", "--trim-beta", "0.1"], "--trim-beta"),
        (["--aggregator", "median", "--clip-norm", "1"], "--clip-norm"),
        (["--aggregator", "robust"], "--aggregator"),
        (
            ["--aggregator", "krum", "--num-byzantine", "1", "--clients-per-round", "4"],
            "--num-byzantine",
        ),
        (["--aggregator", "bulyan"], "--num-byzantine"),  # 4f + 3 = 7 > 5 clients
        (["--algorithm", "fednova", "--aggregator", "median"], "FedNova"),
        (["--attack", "sign_flip"], "--attackers"),
        (["--attack", "sign_flip", "--attackers", "0"], "--attackers"),
        (["--attackers", "2"], "--attack"),
        (["--attack", "sign_flip", "--attackers", "-1"], "--attackers"),
        (["--attack", "sign_flip", "--attackers", "6"], "--attackers"),  # only 5 clients
        (["--attack", "poison", "--attackers", "1"], "--attack"),
    ],
)
def test_bad_values_exit_2_with_one_line_naming_the_option(tmp_path, capsys, args, option):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        run_cli("--num-clients", "5", *args, "--out", str(out))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert "error:" in last and option in last, err
    assert not out.exists()  # nothing written for a run that never started


def test_a_defended_run_under_attack_records_the_defence_and_the_attackers(tmp_path, capsys):
    out = tmp_path / "krum"
    code = run_cli(
        "--num-rounds", "2", "--num-clients", "7", "--aggregator", "krum", "--num-byzantine", "1",
        "--attack", "sign_flip", "--attackers", "2", "--out", str(out),
    )  # fmt: skip
    assert code == 0
    history = History.load(out / "history.json")
    assert len(history) == 2
    algorithm = history.config["algorithm"]
    assert algorithm["name"] == "FedAvg + Krum"
    assert algorithm["aggregator"]["name"] == "Krum"
    assert algorithm["aggregator"]["num_byzantine"] == 1
    attackers = history.config["attackers"]
    assert attackers["attack"]["name"] == "sign_flip" and attackers["count"] == 2
    malicious = attackers["malicious"]
    assert len(malicious) == 2 and set(malicious) <= set(range(7))
    for record in history.rounds:  # all 7 clients train each round: both attackers are in
        assert sorted(record.malicious) == sorted(malicious)
        assert len(record.defence_kept) == 1  # Krum keeps the one update closest to the rest
        assert set(record.defence_kept) <= set(record.clients)
    assert history.config["command_line"]["aggregator"] == "krum"
    assert (out / "history.png").read_bytes()[:8] == PNG_MAGIC
    assert "Traceback" not in capsys.readouterr().err


def test_the_defaults_run_no_defence_and_no_attack(tmp_path):
    out = tmp_path / "plain"
    assert run_cli("--num-rounds", "1", "--num-clients", "3", "--out", str(out)) == 0
    config = History.load(out / "history.json").config
    assert config["algorithm"]["name"] == "FedAvg" and "aggregator" not in config["algorithm"]
    assert "attackers" not in config
    assert config["command_line"]["aggregator"] == "mean"
    assert config["command_line"]["attack"] == "none"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--aggregator", "trimmed_mean", "--trim-beta", "0.3"], {"name": "TrimmedMean", "beta": 0.3}),
        (["--aggregator", "multi_krum", "--num-selected", "2"], {"name": "Krum", "num_selected": 2}),
        (["--aggregator", "clipping", "--clip-norm", "2", "--noise-std", "0.01"], {"name": "NormClipping", "clip_norm": 2.0, "noise_std": 0.01}),
        (["--aggregator", "median"], {"name": "CoordinateMedian"}),
    ],
)  # fmt: skip
def test_each_defence_gets_its_own_options(args, expected):
    from fedlab.cli import _make_algorithm

    parsed = build_parser().parse_args(["run", *args, "--out", "unused"])
    aggregator = _make_algorithm(parsed).config()["aggregator"]
    assert {key: aggregator[key] for key in expected} == expected


def test_attack_usage_errors_say_what_to_add(tmp_path, capsys):
    for args, hint in [
        (["--attack", "label_flip"], "--attack label_flip without --attackers"),
        (["--attack", "label_flip", "--attackers", "0"], "--attack label_flip with --attackers 0"),
        (["--attackers", "3"], "--attackers 3 needs --attack KIND"),
    ]:
        with pytest.raises(SystemExit) as exit_info:
            run_cli(*args, "--out", str(tmp_path / "out"))
        assert exit_info.value.code == 2
        assert hint in capsys.readouterr().err.strip().splitlines()[-1]
    assert not (tmp_path / "out").exists()


def test_divergence_exits_1_and_keeps_the_history_so_far(tmp_path, capsys):
    out = tmp_path / "diverged"
    code = run_cli(
        "--client-lr", "1e30", "--num-rounds", "3", "--num-clients", "3", "--out", str(out)
    )
    assert code == 1
    captured = capsys.readouterr()
    assert "diverged in round 1" in captured.err and "--client-lr" in captured.err
    assert "Traceback" not in captured.err
    assert len(History.load(out / "history.json")) == 0
    assert (out / "history.png").read_bytes()[:8] == PNG_MAGIC
    assert "diverged in round 1" in captured.out.strip().splitlines()[-1]


def test_python_dash_m_fedlab_help_runs(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "fedlab", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,  # not the checkout: the installed fedlab (a wheel, in tools/wheel_check.py)
    )
    assert done.returncode == 0, done.stderr
    assert "run" in done.stdout and "python -m fedlab" in done.stdout


# -- benchmarks/bench_engine.py: importable and its pieces work (no timing assertions) ------------


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location(
        "bench_engine", ROOT / "benchmarks" / "bench_engine.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being defined
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def test_benchmark_engine_timing_returns_sane_numbers(bench, digits):
    result, initial = bench.time_engine(
        digits, num_clients=4, strategy="vectorized", timed_rounds=2
    )
    assert result.rounds_per_s > 0 and result.first_round_s > 0
    assert 0.0 <= result.accuracy <= 1.0
    assert result.accuracy_round == 3 and result.num_clients == 4
    assert [w.shape for w in initial] == [(64, 128), (128,), (128, 10), (10,)]


def test_benchmark_keras_loop_round_equals_an_engine_round_on_one_batch_clients(bench, digits):
    """With one batch per client, batch order cannot matter: the baseline is the same FedAvg."""
    small = dataclasses.replace(digits, x_train=digits.x_train[:80], y_train=digits.y_train[:80])
    split = fedlab.partition.iid(small.y_train, 4, seed=0)  # 20 examples each = one batch of B=20
    algorithm = fedlab.FedAvg(
        local_epochs=1, batch_size=bench.BATCH_SIZE, client_lr=bench.CLIENT_LR
    )
    sim = Simulation(algorithm, lambda: fedlab.FedModel(10), small, split, seed=0)
    initial = [w.copy() for w in sim.weights]
    sim.step()
    baseline = bench.keras_loop_round(bench.make_model(small), initial, small, split)
    for got, want in zip(baseline, sim.weights, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
