"""fedlab.ui.personalization: the personalisation panel, driven from code."""

import matplotlib.pyplot as plt
import numpy as np
import pytest

import fedlab
from fedlab.ui.personalization import PersonalizationPanel


@pytest.fixture(scope="module")
def digits():
    return fedlab.load_digits()


def test_sliders_have_the_documented_bounds(digits):
    panel = PersonalizationPanel(digits, alpha=0.5, lam=2.0, num_rounds=7)
    c = panel.controls
    assert sorted(c) == ["alpha", "lam", "num_rounds"]
    assert (c["alpha"].min, c["alpha"].max) == (-2, 2)  # 0.01 .. 100
    assert (c["lam"].min, c["lam"].max) == (-3, 2)  # 0.001 .. 100
    assert (c["num_rounds"].min, c["num_rounds"].max) == (1, 100)
    assert (panel.alpha, panel.lam, c["num_rounds"].value) == (0.5, 2.0, 7)
    assert panel.histories == {} and panel.image.value[:4] == b"\x89PNG"  # see the next test


def test_before_any_run_the_picture_shows_the_settings_and_says_to_run(digits, notebook_png):
    panel = PersonalizationPanel(digits, num_clients=8, clients_per_round=4, alpha=0.5, lam=2.0)
    first, width, height = notebook_png(panel)
    assert first == bytes(panel.image.value)
    assert (width, height) == (800, 304)  # 10 x 3.8 inches at 80 dpi
    left, right = panel._figure.axes
    assert not left.lines and not right.lines and right.get_xlim() == (0, 20)
    assert left.get_title() == "Accuracy per client" and right.get_xlabel() == "round"
    (note,) = left.texts
    assert note.get_text().startswith("not run yet: press Run")
    assert "8 clients" in note.get_text() and "α=0.5, λ=2, T=20" in note.get_text()
    assert repr(panel) == "PersonalizationPanel(α=0.5, λ=2, T=20; not run yet)"
    panel.controls["lam"].value = 0.5  # the picture follows the sliders
    moved, _, _ = notebook_png(panel)
    assert moved != first and "λ=0.5" in panel._figure.axes[0].texts[0].get_text()
    assert repr(panel) == "PersonalizationPanel(α=0.5, λ=0.5, T=20; not run yet)"


def test_bad_arguments_name_the_argument(digits):
    with pytest.raises(ValueError, match="alpha"):
        PersonalizationPanel(digits, alpha=200.0)
    with pytest.raises(ValueError, match="lam"):
        PersonalizationPanel(digits, lam=0.0001)
    with pytest.raises(ValueError, match="num_rounds"):
        PersonalizationPanel(digits, num_rounds=0)
    with pytest.raises(ValueError, match="clients_per_round"):
        PersonalizationPanel(digits, num_clients=5, clients_per_round=6)
    with pytest.raises(ValueError, match="test_fraction"):
        PersonalizationPanel(digits, test_fraction=1.0)


def test_split_holds_out_each_clients_test_set(digits):
    panel = PersonalizationPanel(digits, num_clients=8, clients_per_round=4, test_fraction=0.25)
    split = panel.split()
    assert split.num_clients == 8 and split.test_indices is not None
    # round(0.25 * n) of each client's n examples are held out
    total = split.sizes + split.test_sizes
    assert split.test_sizes.tolist() == [max(1, round(0.25 * n)) for n in total]
    assert panel.split() is split  # cached per α


def test_run_trains_ditto_and_local_only_and_draws_them(digits, notebook_png):
    figures_before = plt.get_fignums()
    panel = PersonalizationPanel(
        digits, num_clients=6, clients_per_round=3, num_rounds=2, lam=0.1, seed=1
    )
    not_run, _, _ = notebook_png(panel)
    histories = panel.run()
    assert histories is panel.histories and sorted(histories) == ["ditto", "local"]
    ditto, local = histories["ditto"], histories["local"]
    assert len(ditto) == 2 and len(local) == 2
    for history, kind in ((ditto, "global"), (ditto, "personal"), (local, "personal")):
        table = history.client_accuracy(kind)
        assert table.shape == (2, 6)
        assert np.isfinite(table[-1]).all() and ((table >= 0) & (table <= 1)).all()
    assert np.isnan(local.test_accuracy).all()  # local-only has no global model
    assert ditto.config["algorithm"]["name"] == "Ditto"
    assert ditto.config["algorithm"]["lam"] == 0.1
    assert panel.image.value[:4] == b"\x89PNG"
    left, right = panel._figure.axes
    assert len(left.get_legend().get_texts()) == 3
    assert len(right.lines) == 6  # 3 runs x (mean, worst 10 %)
    mean = np.nanmean(ditto.client_accuracy("personal")[-1])
    assert f"Ditto λ=0.1: mean {100 * mean:.1f} %" in panel.status.value
    assert (
        "local only: mean" in panel.status.value and "global (FedAvg): mean" in panel.status.value
    )
    run_png, _, _ = notebook_png(panel)
    assert run_png != not_run and run_png == bytes(panel.image.value)
    assert repr(panel).startswith("PersonalizationPanel(run with α=0.3, λ=0.1, T=2: global")
    assert f"Ditto λ=0.1: mean {100 * mean:.1f} %" in repr(panel)

    panel.controls["lam"].value = 10.0
    panel.button.click()  # the button runs it too; same α and T: local-only is reused
    assert panel.histories["local"] is local
    assert panel.histories["ditto"].config["algorithm"]["lam"] == 10.0
    assert "Ditto λ=10: mean" in panel.status.value
    assert plt.get_fignums() == figures_before


def test_refused_settings_show_the_error_in_the_panel(digits):
    panel = PersonalizationPanel(digits, num_clients=50, clients_per_round=5, alpha=0.01)
    assert panel.run() is None
    assert "⚠" in panel.status.value and "alpha" in panel.status.value
    assert panel.histories == {} and "not run yet" in panel._figure.axes[0].texts[0].get_text()
