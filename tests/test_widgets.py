"""The live dashboard: controls and buttons drive fedlab.Simulation; the plots show the History."""

import html
import re
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from fedlab import DivergenceError, History, registry  # noqa: E402
from fedlab.ui.dashboard import (  # noqa: E402
    DEFENCE_NAMES,
    DEFENCE_PARAMETERS,
    Dashboard,
    _rounds_shown,
    client_loss_range,
    run_label,
)

SMALL = {"num_clients": 5, "clients_per_round": 5, "num_rounds": 4}
PNG = b"\x89PNG\r\n\x1a\n"


def round_shown(dash: Dashboard) -> int | None:
    """The round number at the start of the status line, as the browser test reads it."""
    match = re.match(r"round (\d+) · ", dash.status.value)
    return int(match[1]) if match else None


def legend_texts(ax) -> list[str]:
    """The labels the axes' legend shows (the Dashboard builds the legend itself only when they
    change)."""
    return ax.get_legend_handles_labels()[1]


def wait_for(predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_the_panel_has_the_documented_buttons_classes_and_starting_state():
    dash = Dashboard(**SMALL)
    assert set(dash.buttons) == {"Run", "Stop", "Step", "Reset", "Clear", "Save"}
    assert all(b.description == name for name, b in dash.buttons.items())
    assert "fedlab-dashboard" in dash.widget._dom_classes
    assert "fedlab-status" in dash.status._dom_classes
    assert "fedlab-message" in dash.message._dom_classes
    assert "fedlab-plot" in dash.image._dom_classes
    assert dash.status.value == "ready" and dash.message.value == ""
    assert dash.image.format == "png" and bytes(dash.image.value).startswith(PNG)
    assert dash.buttons["Stop"].disabled and not dash.buttons["Run"].disabled
    assert len(dash.history) == 0 and not dash.running


def test_a_notebook_keeps_a_png_of_the_plots_on_screen(notebook_png):
    dash = Dashboard(warm_up=False, **SMALL)
    ready, width, height = notebook_png(dash)
    assert ready == bytes(dash.image.value) and (width, height) == (720, 448)
    assert repr(dash) == "Dashboard(ready)"
    dash.step()
    stepped, _, _ = notebook_png(dash)
    assert stepped != ready and stepped == bytes(dash.image.value)
    assert repr(dash).startswith("Dashboard(round 1 · train loss ") and "&" not in repr(dash)


def test_keyword_arguments_set_the_controls_and_bad_ones_raise():
    dash = Dashboard(num_rounds=20, algorithm="fedsgd", client_lr=0.5, seed=3)
    assert dash.controls["num_rounds"].value == 20
    assert dash.controls["algorithm"].value == "fedsgd"
    assert dash.controls["local_epochs"].disabled and dash.controls["batch_size"].disabled
    assert dash.settings() == {
        "dataset": "digits",
        "partition": "iid",
        "num_clients": 10,
        "clients_per_round": 10,
        "model": "mlp",
        "seed": 3,
        "algorithm": "fedsgd",
        "client_lr": 0.5,
        "server_lr": 1.0,
        "aggregator": "mean",
        "attack": "none",
        "attackers": 0,
    }
    with pytest.raises(ValueError, match="num_rounds"):
        Dashboard(num_rounds=0)
    with pytest.raises(ValueError, match="partition"):
        Dashboard(partition="natural")  # digits has no natural clients
    with pytest.raises(ValueError, match="client_lr"):
        Dashboard(client_lr=100.0)


def test_run_block_trains_num_rounds_and_plots_the_history():
    dash = Dashboard(**SMALL)
    dash.run(block=True)
    history = dash.history
    assert len(history) == 4 and not dash.running
    assert round_shown(dash) == 4 and dash.status.value.endswith("· done")
    assert f"test accuracy {history.test_accuracy[-1]:.3f}" in dash.status.value
    assert "ms/round" in dash.status.value
    label = run_label(dash.settings())
    assert label == "FedAvg E=1 B=20 lr=0.1 C=5/5 iid"
    np.testing.assert_array_equal(dash.drawn["loss"].data["test_loss"], history.test_loss)
    accuracy = dash.drawn[f"accuracy: {label}"].data["test_accuracy"]
    np.testing.assert_array_equal(accuracy, history.test_accuracy)
    np.testing.assert_array_equal(dash.drawn["drift"].data["drift_mean"], history.drift_mean)
    _, low, high = client_loss_range(history)
    np.testing.assert_array_equal(low, [min(r.client_loss) for r in history.rounds])
    np.testing.assert_array_equal(dash.drawn["client_loss"].data["client_loss_max"], high)


def test_step_continues_the_run_and_each_round_changes_the_image():
    dash = Dashboard(**SMALL)
    images = [bytes(dash.image.value)]
    for expected in (1, 2):
        record = dash.step()
        assert record.round == expected and len(dash.history) == expected
        assert round_shown(dash) == expected
        images.append(bytes(dash.image.value))
    assert len(set(images)) == 3 and all(i.startswith(PNG) for i in images)
    dash.buttons["Run"].click()  # Run goes on to `rounds` = 4
    assert dash.wait(60)
    assert len(dash.history) == 4 and len(dash.runs) == 1
    dash.run(block=True)  # complete: Run starts the same settings over, without a duplicate
    assert len(dash.history) == 4 and len(dash.runs) == 1


def test_stop_mid_run_keeps_the_history_and_ends_the_thread():
    dash = Dashboard(num_clients=5, clients_per_round=5, num_rounds=500)
    dash.run()  # returns at once
    assert dash.running and dash.buttons["Run"].disabled and not dash.buttons["Stop"].disabled
    wait_for(lambda: len(dash.history) >= 2)
    dash.run()  # ignored while running
    assert "Already running" in dash.message.value
    assert dash.step() is None
    dash.buttons["Stop"].click()
    assert dash.wait(30) and not dash.running
    stopped_at = len(dash.history)
    assert 0 < stopped_at < 500
    assert round_shown(dash) == stopped_at and dash.status.value.endswith("· stopped")
    assert not dash.buttons["Run"].disabled and dash.buttons["Stop"].disabled
    dash.run(num_rounds=2, block=True)  # Run again resumes the same run
    assert len(dash.history) == stopped_at + 2 and len(dash.runs) == 1


def test_bad_values_show_a_message_not_a_traceback():
    dash = Dashboard(num_clients=10, clients_per_round=12)
    dash.buttons["Run"].click()
    assert not dash.running and len(dash.history) == 0
    assert "clients / round" in dash.message.value and "[1, 10]" in dash.message.value
    assert "Traceback" not in dash.message.value and dash.status.value == "ready"
    assert dash.step() is None
    dash.controls["clients_per_round"].value = 10  # fixed: the message goes with the next run
    assert dash.step().round == 1 and dash.message.value == ""
    dash.controls["num_rounds"].value = 0
    dash.run(block=True)
    assert "rounds" in dash.message.value and len(dash.history) == 1


def test_divergence_shows_its_message_and_keeps_the_rounds_before(monkeypatch):
    dash = Dashboard(**SMALL)
    dash.step()
    simulation = dash._simulation

    def diverge():
        raise DivergenceError(len(simulation.history) + 1, [0, 1], simulation.history)

    monkeypatch.setattr(simulation, "step", diverge)
    dash.run(block=True)
    assert "diverged in round 2" in dash.message.value
    assert len(dash.history) == 1 and dash.status.value.endswith("· diverged")
    assert dash.step() is None and len(dash.history) == 1


def test_reset_clears_the_run_and_keeps_it_for_comparison():
    dash = Dashboard(**SMALL)
    dash.run(block=True)
    finished = dash.history
    dash.buttons["Reset"].click()
    assert len(dash.history) == 0 and dash.status.value == "ready"
    assert [h for _, h in dash.runs] == [finished]
    assert dash.step().round == 1  # same settings: the new run replaces the kept one
    assert len(dash.runs) == 1


def test_changed_settings_start_a_new_run_and_keep_the_old_curves_until_clear():
    dash = Dashboard(**SMALL)
    dash.run(block=True)
    first = dash.history
    dash.controls["local_epochs"].value = 2
    assert "Settings changed" in dash.message.value
    dash.run(block=True)
    labels = [label for label, _ in dash.runs]
    assert labels == ["FedAvg E=1 B=20 lr=0.1 C=5/5 iid", "FedAvg E=2 B=20 lr=0.1 C=5/5 iid"]
    assert dash.runs[0][1] is first and len(dash.history) == 4
    kept = dash.drawn[f"accuracy: {labels[0]}"].data["test_accuracy"]
    np.testing.assert_array_equal(kept, first.test_accuracy)
    ax_accuracy = dash.drawn[f"accuracy: {labels[1]}"].axes[0]
    assert legend_texts(ax_accuracy) == [labels[0], f"{labels[1]} (now)"]
    dash.controls["local_epochs"].value = 1  # back to the first settings: no duplicate curve
    dash.run(block=True)
    assert [label for label, _ in dash.runs] == labels[::-1]
    dash.buttons["Clear"].click()
    assert [label for label, _ in dash.runs] == [labels[0]]
    assert legend_texts(ax_accuracy) == [f"{labels[0]} (now)"]
    assert not [key for key in dash.drawn if key.startswith("accuracy: ") and "E=2" in key]


def test_save_writes_the_history_and_the_png(tmp_path):
    dash = Dashboard(**SMALL)
    dash.buttons["Save"].click()
    assert "Nothing to save" in dash.message.value
    dash.run(block=True)
    dash.controls["save_dir"].value = str(tmp_path / "runs")
    dash.buttons["Save"].click()
    json_path, png_path = tmp_path / "runs" / "history.json", tmp_path / "runs" / "dashboard.png"
    assert History.load(json_path) == dash.history
    assert png_path.read_bytes() == bytes(dash.image.value)
    assert str(json_path) in dash.message.value and str(png_path) in dash.message.value
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    assert dash.save(blocked) is None and "Could not save" in dash.message.value


def test_fedsgd_ignores_epochs_and_batch_size():
    dash = Dashboard(algorithm="fedsgd", **SMALL)
    dash.step()
    before = dash.settings()
    dash.controls["local_epochs"].value = 5  # not used by FedSGD: the run goes on
    assert dash.settings() == before and dash.message.value == ""
    assert dash.step().round == 2
    assert dash.history.config["algorithm"]["name"] == "FedSGD"
    assert dash.runs[-1][0] == "FedSGD lr=0.1 C=5/5 iid"


def test_split_controls_follow_the_dataset_and_scheme():
    dash = Dashboard(**SMALL)
    c = dash.controls
    assert c["alpha"].layout.display == "none" and c["synthetic_alpha"].layout.display == "none"
    c["partition"].value = "dirichlet"
    assert c["alpha"].layout.display is None and c["shards_per_client"].layout.display == "none"
    c["alpha"].value = 10**0.3  # where the log slider lands for "2"
    assert dash.settings()["alpha"] == 2.0
    c["partition"].value = "shards"
    dash.step()
    assert dash.history.config["split"] == "shards(2/client)"
    c["dataset"].value = "synthetic"
    assert "natural" in c["partition"].options and c["partition"].value == "shards"
    assert c["synthetic_alpha"].layout.display is None
    c["partition"].value = "natural"
    c["model"].value = "logreg"
    dash.step()
    assert dash.history.config["split"] == "natural" and dash.history.config["num_clients"] == 5
    assert dash.history.config["dataset"] == "synthetic(1,1)"
    assert dash.runs[-1][0] == "FedAvg E=1 B=20 lr=0.1 C=5/5 natural syn(1,1) logreg"


def test_many_rounds_open_no_matplotlib_figures():
    before = plt.get_fignums()
    dash = Dashboard(num_clients=5, clients_per_round=5, num_rounds=25)
    dash.run(block=True)
    for _ in range(5):
        dash.step()
    dash.clear()
    assert len(dash.history) == 30
    assert plt.get_fignums() == before


def test_the_warmed_up_run_is_used_and_gives_the_same_numbers_as_a_cold_one():
    warm, cold = Dashboard(**SMALL), Dashboard(warm_up=False, **SMALL)
    assert cold._preparing is None
    warm._preparing.join()
    prepared_settings, prepared = warm._prepared
    assert prepared_settings == warm.settings() and prepared.trace_count == 1
    warm.run(block=True), cold.run(block=True)
    assert warm._simulation is prepared, "Run took the warmed-up simulation"
    assert prepared.trace_count == 1, "and did not trace it again"
    assert warm.history.test_loss.tolist() == cold.history.test_loss.tolist()


def test_a_warm_up_for_other_settings_is_discarded():
    dash = Dashboard(**SMALL)
    dash.controls["client_lr"].value = 0.05  # changed before the first Run
    dash._preparing.join()
    prepared = dash._prepared[1]
    dash.step()
    assert dash._simulation is not prepared and dash._prepared is None
    assert dash.history.config["algorithm"]["client_lr"] == pytest.approx(0.05)


@pytest.mark.parametrize(
    ("algorithm", "extra", "shown"),
    [
        ("fedprox", {"mu": 0.1}, "mu"),
        ("fedavgm", {"momentum": 0.5}, "momentum"),
        ("scaffold", {}, None),
        ("fedadam", {}, None),
        ("fednova", {}, None),
    ],
)
def test_every_algorithm_runs_with_its_own_controls(algorithm, extra, shown):
    dash = Dashboard(algorithm=algorithm, warm_up=False, **extra, **SMALL)
    for name in ("mu", "momentum"):
        visible = dash.controls[name].layout.display != "none"
        assert visible == (name == shown), name
    settings = dash.settings()
    assert {k: settings[k] for k in extra} == extra
    dash.run(num_rounds=2, block=True)
    assert len(dash.history) == 2 and dash.message.value == ""
    config = dash.history.config["algorithm"]
    for name, value in extra.items():
        key = "mu" if name == "mu" else "server_optimizer"
        got = config[key] if name == "mu" else config[key]["momentum"]
        assert got == pytest.approx(value)
    assert run_label(settings).startswith(
        {"fedprox": "FedProx μ=0.1", "fedavgm": "FedAvgM β=0.5"}.get(algorithm, "")
    )
    if algorithm == "fednova":  # the Dashboard runs FedNova's normalised mean
        assert config["aggregator"]["name"] == "FedNovaMean"


def test_choosing_an_adaptive_algorithm_sets_its_server_lr():
    dash = Dashboard(warm_up=False, **SMALL)
    assert dash.controls["server_lr"].value == 1.0
    dash.controls["algorithm"].value = "fedadam"
    assert dash.controls["server_lr"].value == pytest.approx(0.01)
    assert dash.settings()["server_lr"] == 0.01
    assert "lr=" in run_label(dash.settings()) and "η=" not in run_label(dash.settings())
    dash.controls["algorithm"].value = "fedavg"
    assert dash.controls["server_lr"].value == 1.0


def test_the_x_axis_toggle_redraws_every_run_against_megabytes_sent_and_back():
    dash = Dashboard(warm_up=False, **SMALL)
    assert dash.controls["x_axis"].value == "round"
    dash.run(num_rounds=2, block=True)
    first = dash.history
    dash.controls["local_epochs"].value = 2  # a second run: the first one is kept
    dash.run(num_rounds=3, block=True)
    labels = [label for label, _ in dash.runs]
    ax_loss, ax_accuracy = dash.drawn["loss"].axes[0], dash.drawn[f"accuracy: {labels[1]}"].axes[0]
    runs_before, trained = dash.runs, len(dash.history)

    dash.controls["x_axis"].value = "megabytes"  # redraws at once, trains nothing
    assert dash.runs == runs_before and len(dash.history) == trained == 3
    for label, history in dash.runs:
        sent = history.megabytes_sent
        np.testing.assert_allclose(sent, np.cumsum(history.bytes_down + history.bytes_up) / 1e6)
        assert sent[0] > 0 and sent[1] == pytest.approx(2 * sent[0])  # the same bytes per round
        drawn = dash.drawn[f"accuracy: {label}"]
        np.testing.assert_array_equal(drawn.data["megabytes"], sent)
    kept_line, current_line = ax_accuracy.lines
    np.testing.assert_array_equal(kept_line.get_xdata(), first.megabytes_sent)
    np.testing.assert_array_equal(current_line.get_xdata(), dash.history.megabytes_sent)
    np.testing.assert_array_equal(ax_loss.lines[0].get_xdata(), dash.history.megabytes_sent)
    np.testing.assert_array_equal(
        dash.drawn["client_loss"].data["megabytes"], dash.history.megabytes_sent
    )
    assert ax_accuracy.get_xlabel() == ax_loss.get_xlabel() == "megabytes sent (down + up)"
    shown = dash.history.megabytes_sent[-1] / 3 * 10  # 10 rounds shown at this run's MB per round
    assert shown <= ax_accuracy.get_xlim()[1] < 2 * shown
    drift_axes = dash.drawn["drift"].axes
    assert [ax.get_xlabel() for ax in drift_axes] == ["round", "round"]  # always per round
    assert all(ax.get_xlim() == (0, 10.5) for ax in drift_axes)
    megabytes_png = bytes(dash.image.value)

    dash.controls["x_axis"].value = "round"
    kept_line, current_line = ax_accuracy.lines  # each redraw draws new lines
    np.testing.assert_array_equal(kept_line.get_xdata(), [1, 2])  # the kept run's 2 rounds
    np.testing.assert_array_equal(current_line.get_xdata(), [1, 2, 3])
    assert ax_accuracy.get_xlabel() == "round" and ax_accuracy.get_xlim() == (0, 10.5)
    assert bytes(dash.image.value) != megabytes_png and len(dash.runs) == 2


def test_the_x_axis_is_not_a_run_setting_and_bad_values_raise():
    dash = Dashboard(x_axis="megabytes", warm_up=False, **SMALL)
    assert dash.controls["x_axis"].value == "megabytes" and "x_axis" not in dash.settings()
    assert bytes(dash.image.value).startswith(PNG)  # no rounds yet: an empty MB axis
    dash.step()
    dash.controls["x_axis"].value = "round"
    assert dash.message.value == "" and dash.step().round == 2 and len(dash.runs) == 1
    assert dash.controls["x_axis"] in dash.widget.children[2].children  # with the buttons
    with pytest.raises(ValueError, match="x_axis"):
        Dashboard(x_axis="bytes", warm_up=False)


@pytest.mark.parametrize(
    ("algorithm", "extra", "label"),
    [
        ("ditto", {"lam": 0.5}, "Ditto λ=0.5 E=1"),
        ("fedper", {}, "FedPer E=1"),
        ("local", {}, "local only E=1"),
        ("finetune", {}, "FedAvg + fine-tuning E=1"),
    ],
)
def test_personalised_algorithms_run_with_their_own_controls(algorithm, extra, label):
    dash = Dashboard(algorithm=algorithm, warm_up=False, client_test_fraction=0.2, **extra, **SMALL)
    assert (dash.controls["lam"].layout.display != "none") == (algorithm == "ditto")
    assert dash.controls["mu"].layout.display == "none"
    local = algorithm == "local"
    assert dash.controls["server_lr"].disabled == local  # local-only has no server
    settings = dash.settings()
    assert ("server_lr" in settings) != local and {k: settings[k] for k in extra} == extra
    assert run_label(settings).startswith(label)
    dash.run(num_rounds=2, block=True)
    assert len(dash.history) == 2 and dash.message.value == ""
    config = dash.history.config["algorithm"]
    for name, value in extra.items():
        assert config[name] == value
    personal = dash.history.client_accuracy("personal")
    assert personal.shape == (2, 5) and np.isfinite(personal).all()
    assert np.isnan(dash.history.test_accuracy).all() == (algorithm in ("fedper", "local"))
    assert f"personalised mean {np.mean(personal[-1]):.3f}" in dash.status.value


# -- robust aggregators and malicious clients ---------------------------------------------------

DEFENCE_CONTROLS = ("trim_beta", "num_byzantine", "clip_norm")


def test_krum_against_two_sign_flippers_runs_and_its_history_records_them():
    dash = Dashboard(
        aggregator="krum", num_byzantine=1, attack="sign_flip", attackers=2, warm_up=False,
        num_clients=7, clients_per_round=7,
    )  # fmt: skip
    settings = dash.settings()
    assert settings["aggregator"] == "krum" and settings["num_byzantine"] == 1
    assert (settings["attack"], settings["attackers"]) == ("sign_flip", 2)
    dash.run(num_rounds=2, block=True)
    assert len(dash.history) == 2 and dash.message.value == ""
    config = dash.history.config
    assert config["algorithm"]["name"] == "FedAvg + Krum"
    assert config["algorithm"]["aggregator"]["num_byzantine"] == 1
    assert config["attackers"]["attack"]["name"] == "sign_flip"
    malicious = config["attackers"]["malicious"]
    assert config["attackers"]["count"] == len(malicious) == 2
    for record in dash.history.rounds:  # every client trains: both attackers every round
        assert sorted(record.malicious) == sorted(malicious)
        assert len(record.defence_kept) == 1 and set(record.defence_kept) <= set(record.clients)
    label = dash.runs[-1][0]
    assert label.startswith(f"FedAvg + {DEFENCE_NAMES['krum']} ")
    assert label.endswith(", 2 × sign_flip") and "C=7/7 iid" in label
    assert label in legend_texts(dash._plots.axes.flat[1])[-1]  # the accuracy legend's (now)


def test_the_defaults_are_no_defence_and_no_attack_and_leave_the_label_as_it_was():
    dash = Dashboard(warm_up=False, **SMALL)
    settings = dash.settings()
    assert (settings["aggregator"], settings["attack"], settings["attackers"]) == (
        "mean",
        "none",
        0,
    )
    assert not any(name in settings for name in DEFENCE_CONTROLS)
    assert run_label(settings) == "FedAvg E=1 B=20 lr=0.1 C=5/5 iid"
    assert all(dash.controls[n].layout.display == "none" for n in DEFENCE_CONTROLS)
    dash.step()
    config = dash.history.config
    assert config["algorithm"]["name"] == "FedAvg" and "aggregator" not in config["algorithm"]
    assert "attackers" not in config and dash.history.rounds[0].malicious == ()


@pytest.mark.parametrize("defence", list(registry.DEFENCES))
def test_each_aggregator_shows_only_its_own_controls(defence):
    dash = Dashboard(warm_up=False, **SMALL)
    dash.controls["aggregator"].value = defence
    own = DEFENCE_PARAMETERS.get(defence, ())
    for name in DEFENCE_CONTROLS:
        visible = dash.controls[name].layout.display != "none"
        assert visible == (name in own), name
    settings = dash.settings()
    assert [n for n in DEFENCE_CONTROLS if n in settings] == list(own)
    for name in set(DEFENCE_CONTROLS) - set(own):  # a hidden control changes no setting
        dash.controls[name].value = dash.controls[name].max
    assert dash.settings() == settings
    if defence != "mean":
        assert f" + {DEFENCE_NAMES[defence]}" in run_label(settings)


def test_the_defence_controls_offer_what_the_registry_allows():
    dash = Dashboard(warm_up=False, **SMALL)
    for name in DEFENCE_CONTROLS:
        takers = [k for k, names in DEFENCE_PARAMETERS.items() if name in names]
        setting = registry.DEFENCES[takers[0]].setting(name)
        control = dash.controls[name]
        assert control.description == setting.label
        assert setting.check(control.min) == pytest.approx(control.min)
        assert setting.check(control.max) == pytest.approx(control.max)
        assert control.value == setting.default
    assert [v for _, v in dash.controls["attack"].options] == list(registry.ATTACK_KINDS)

    def shown(widget) -> list:
        return [widget, *(w for child in getattr(widget, "children", ()) for w in shown(child))]

    panel = shown(dash.widget)
    for name in ("aggregator", *DEFENCE_CONTROLS, "attack", "attackers"):
        assert dash.controls[name] in panel, name
    assert [v for _, v in dash.controls["aggregator"].options] == list(registry.DEFENCES)


def test_a_trimmed_mean_with_its_beta_and_a_clipped_run_use_their_sliders():
    dash = Dashboard(warm_up=False, aggregator="trimmed_mean", trim_beta=0.3, **SMALL)
    dash.step()
    assert dash.history.config["algorithm"]["aggregator"] == {"name": "TrimmedMean", "beta": 0.3}
    dash.controls["aggregator"].value = "clipping"
    dash.controls["clip_norm"].value = 0.5
    dash.step()
    aggregator = dash.history.config["algorithm"]["aggregator"]
    assert aggregator["name"] == "NormClipping" and aggregator["clip_norm"] == 0.5
    assert len(dash.runs) == 2  # a new aggregator is a new run; the old one stays on the charts


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"attack": "sign_flip", "attackers": 0}, ["“attack” sign_flip", "at least one attacker"]),
        ({"attack": "none", "attackers": 2}, ["“attackers” is 2", "“attack” is none"]),
        ({"aggregator": "krum", "clients_per_round": 4}, ["Krum", "= 1", "clients per round"]),
        ({"aggregator": "bulyan"}, ["Bulyan", "4·1 + 3 = 7"]),
        ({"algorithm": "fednova", "aggregator": "median"}, ["FedNova", "part of the algorithm"]),
    ],
)
def test_combinations_fedlab_refuses_show_a_message_not_a_traceback(changes, words):
    dash = Dashboard(warm_up=False, **SMALL)
    for name, value in changes.items():
        dash.controls[name].value = value
    assert dash.step() is None
    dash.buttons["Run"].click()
    assert not dash.running and len(dash.history) == 0 and dash.status.value == "ready"
    message = html.unescape(dash.message.value)
    assert message.startswith("<span") and "Can't start this run: " in message
    assert all(word in message for word in words), message
    assert "Traceback" not in message
    dash.controls["attack"].value, dash.controls["attackers"].value = "none", 0
    dash.controls["aggregator"].value = "mean"
    dash.controls["clients_per_round"].value = 5
    assert dash.step().round == 1 and dash.message.value == ""


def test_the_attackers_slider_never_offers_more_attackers_than_clients():
    dash = Dashboard(warm_up=False, num_clients=20, clients_per_round=5, num_rounds=4)
    assert dash.controls["attackers"].max == 10  # MAX_ATTACKERS
    dash.controls["num_clients"].value = 4
    assert dash.controls["attackers"].max == 4
    with pytest.raises(ValueError, match=r"attackers must be an integer in \[0, 3\], got 5"):
        Dashboard(warm_up=False, num_clients=3, clients_per_round=3, attackers=5)
    with pytest.raises(ValueError, match="aggregator"):
        Dashboard(warm_up=False, aggregator="krum2")
    with pytest.raises(ValueError, match="attack"):
        Dashboard(warm_up=False, attack="poison")
    with pytest.raises(ValueError, match="trim_beta"):
        Dashboard(warm_up=False, trim_beta=0.6)


def test_ifca_and_multitask_are_not_offered():
    with pytest.raises(ValueError, match="algorithm"):
        Dashboard(algorithm="ifca", warm_up=False)
    with pytest.raises(ValueError, match="algorithm"):
        Dashboard(algorithm="multitask", warm_up=False)


def test_the_per_client_view_draws_every_run_at_its_last_round_without_training():
    dash = Dashboard(warm_up=False, client_test_fraction=0.2, **SMALL)
    assert dash.controls["view"].value == "curves" and "view" not in dash.settings()
    assert dash.controls["view"] in dash.widget.children[2].children  # beside the x-axis toggle
    dash.run(num_rounds=2, block=True)
    fedavg = dash.history
    dash.controls["algorithm"].value = "ditto"
    dash.run(num_rounds=3, block=True)
    ditto = dash.history
    (fedavg_label, _), (ditto_label, _) = dash.runs
    curves_png, runs_before = bytes(dash.image.value), dash.runs

    dash.controls["view"].value = "clients"  # redraws at once, trains nothing
    assert dash.runs == runs_before and len(fedavg) == 2 and len(ditto) == 3
    data = dash.drawn["clients"].data
    expected = {
        fedavg_label: fedavg.client_accuracy("global")[-1],
        f"{ditto_label} · global": ditto.client_accuracy("global")[-1],
        f"{ditto_label} · personalised": ditto.client_accuracy("personal")[-1],
    }
    assert sorted(k[: -len("/accuracy")] for k in data if k.endswith("/accuracy")) == sorted(
        expected
    )
    for name, values in expected.items():
        assert len(values) == 5  # one accuracy per client, on its own held-out test set
        np.testing.assert_array_equal(data[f"{name}/accuracy"], np.sort(values))
    (ax,) = dash.drawn["clients"].axes
    assert ax.get_visible() and not any(a.get_visible() for a in dash._plots.axes.flat)
    assert len(legend_texts(ax)) == 3
    clients_png = bytes(dash.image.value)
    assert clients_png.startswith(PNG) and clients_png != curves_png

    dash.controls["view"].value = "curves"
    assert "loss" in dash.drawn and not ax.get_visible()
    assert bytes(dash.image.value).startswith(PNG) and bytes(dash.image.value) != clients_png


def test_per_client_test_sets_are_held_out_and_can_be_switched_off():
    held = Dashboard(warm_up=False, view="clients", client_test_fraction=0.2, **SMALL)
    assert "No evaluated round yet" in held._plots.client_ax.texts[0].get_text()
    held.step()
    assert held.history.client_accuracy("global").shape == (1, 5)
    assert "clients" in held.drawn

    none = Dashboard(warm_up=False, view="clients", **SMALL)  # the default: every example trains
    none.step()
    assert none.history.client_accuracy("global").size == 0  # no per-client evaluation
    assert none.drawn == {}
    assert "client_test_fraction=0.2" in none._plots.client_ax.texts[0].get_text()
    # the held-out examples do not train: fewer examples per round than with all of them
    assert sum(held.history.rounds[0].client_num_examples) < sum(
        none.history.rounds[0].client_num_examples
    )
    with pytest.raises(ValueError, match="client_test_fraction"):
        Dashboard(client_test_fraction=1.0, warm_up=False)
    with pytest.raises(ValueError, match="view"):
        Dashboard(view="table", warm_up=False)


def x_right(dash: Dashboard) -> list[float]:
    """The right x limit of the loss, accuracy, drift and agreement panels."""
    return [ax.get_xlim()[1] for ax in dash._plots.axes.flat]


def test_the_x_axes_follow_the_rounds_done_not_the_rounds_planned():
    dash = Dashboard(warm_up=False, num_clients=5, clients_per_round=5, num_rounds=2000)
    assert x_right(dash) == [10.5] * 4  # nothing done yet: the smallest span
    for _ in range(5):
        dash.step()
    assert x_right(dash) == [10.5] * 4  # not 2000
    rights = []
    for _ in range(6):  # rounds 6 to 11
        dash.step()
        rights.append(x_right(dash)[0])
    assert rights == [10.5] * 5 + [20.5]  # it grows in a step, not every round
    dash.controls["num_rounds"].value = 3  # the plan plays no part
    dash.controls["x_axis"].value = "megabytes"
    per_round = dash.history.megabytes_sent[-1] / 11
    loss_right, accuracy_right, drift_right, _ = x_right(dash)
    assert loss_right == accuracy_right and 20 * per_round <= accuracy_right < 2 * 20 * per_round
    assert drift_right == 20.5  # the drift panels stay per round


def test_kept_runs_widen_the_x_axes_until_cleared():
    dash = Dashboard(warm_up=False, num_clients=5, clients_per_round=5, num_rounds=2000)
    dash.run(num_rounds=12, block=True)
    dash.controls["local_epochs"].value = 2  # a new run; the first is kept for comparison
    dash.step()
    assert len(dash.runs) == 2 and x_right(dash) == [20.5] * 4
    dash.clear()
    assert x_right(dash) == [10.5] * 4


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=10**9))
def test_rounds_shown_is_the_next_10_20_50_step(rounds):
    shown = _rounds_shown(rounds)
    assert shown >= max(rounds, 10)
    mantissa, zeros = str(shown)[0], str(shown)[1:]
    assert mantissa in "125" and set(zeros) == {"0"}  # 10, 20, 50, 100, 200, 500, ...
    assert shown <= max(10, 2.5 * rounds)  # the curves fill at least 40 % of the width
