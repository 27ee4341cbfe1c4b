"""fedlab.ui.privacy: the DP-FedAvg panel, driven from code."""

import math

import matplotlib.pyplot as plt
import pytest

import fedlab
from fedlab.privacy import epsilon
from fedlab.ui.privacy import PrivacyPanel


@pytest.fixture(scope="module")
def digits_split():
    data = fedlab.load_digits()
    return data, fedlab.partition.iid(data.y_train, num_clients=100, seed=0)


def test_epsilon_label_follows_the_sliders(digits_split):
    panel = PrivacyPanel(*digits_split, noise_multiplier=1.0, clients_per_round=10, num_rounds=5)
    assert f"ε = {epsilon(1.0, 0.1, 5):.2f}" in panel.status.value
    panel.controls["noise_multiplier"].value = 2.0
    panel.controls["clients_per_round"].value = 20
    panel.controls["num_rounds"].value = 8
    assert panel.sampling_rate == 0.2
    assert panel.epsilon == epsilon(2.0, 0.2, 8)
    assert f"ε = {epsilon(2.0, 0.2, 8):.2f} at δ = 1e-05" in panel.status.value
    assert panel.noise_std == pytest.approx(2.0 * 0.5 / 20)  # z·S/K
    assert "z·S/K = 0.0500" in panel.status.value


def test_no_noise_shows_infinite_epsilon(digits_split):
    panel = PrivacyPanel(*digits_split, noise_multiplier=0.0, num_rounds=3)
    assert panel.epsilon == math.inf
    assert "ε = inf" in panel.status.value


def test_before_any_run_the_picture_shows_the_settings_and_says_to_run(digits_split, notebook_png):
    panel = PrivacyPanel(*digits_split, noise_multiplier=1.0, clients_per_round=10, num_rounds=5)
    assert panel.history is None
    first, width, height = notebook_png(panel)  # what notebook 11 saves if nobody presses Run
    dpi = panel._figure.dpi
    assert first == bytes(panel.image.value) and (width, height) == (6.5 * dpi, 3.0 * dpi)
    (ax,) = panel._figure.axes
    assert not ax.lines and ax.get_xlim() == (0, 5) and ax.get_ylabel() == "test accuracy"
    eps = f"ε = {epsilon(1.0, 0.1, 5):.2f} at δ = 1e-05"
    (note,) = ax.texts
    assert note.get_text().startswith("not run yet: press Run") and eps in note.get_text()
    assert repr(panel) == f"PrivacyPanel(z=1, S=0.5, K=10/100, T=5: {eps}; not run yet)"
    panel.controls["num_rounds"].value = 8  # the picture follows the sliders
    moved, _, _ = notebook_png(panel)
    assert moved != first and panel._figure.axes[0].get_xlim() == (0, 8)
    assert f"T=8: ε = {epsilon(1.0, 0.1, 8):.2f}" in repr(panel)


def test_run_draws_dp_and_baseline_curves(digits_split, notebook_png):
    figures_before = plt.get_fignums()
    panel = PrivacyPanel(
        *digits_split, noise_multiplier=1.5, clip_norm=0.5, clients_per_round=20, num_rounds=3
    )
    not_run, _, _ = notebook_png(panel)
    history = panel.run()
    assert len(history) == 3 and len(panel.baseline) == 3
    assert history.epsilon[-1] == pytest.approx(epsilon(1.5, 0.2, 3))
    assert history.config["algorithm"]["name"] == "DP-FedAvg"
    assert panel.baseline.config["algorithm"]["name"] == "FedAvg"
    assert panel.image.value[:4] == b"\x89PNG"
    axes = panel._figure.axes
    assert len(axes) == 1 and len(axes[0].lines) == 2
    assert list(axes[0].lines[1].get_ydata()) == list(history.test_accuracy)
    assert "last run: accuracy" in panel.status.value
    run_png, _, _ = notebook_png(panel)
    assert run_png != not_run and run_png == bytes(panel.image.value)
    assert repr(panel).endswith(
        f"; last run: DP-FedAvg accuracy {history.test_accuracy[-1]:.3f} at ε = "
        f"{history.epsilon[-1]:.2f}, FedAvg {panel.baseline.test_accuracy[-1]:.3f})"
    )
    panel.controls["clip_norm"].value = 1.0  # after a Run the picture keeps the run until the next
    assert notebook_png(panel)[0] == run_png and "press Run" in panel.status.value
    baseline = panel.baseline
    panel.controls["noise_multiplier"].value = 3.0
    panel.button.click()  # the button runs it too; same K and T: the baseline is reused
    assert panel.baseline is baseline
    assert panel.history.epsilon[-1] == pytest.approx(epsilon(3.0, 0.2, 3))
    assert plt.get_fignums() == figures_before


def test_bad_arguments_name_the_argument(digits_split):
    with pytest.raises(ValueError, match="noise_multiplier"):
        PrivacyPanel(*digits_split, noise_multiplier=5.0)
    with pytest.raises(ValueError, match="clients_per_round"):
        PrivacyPanel(*digits_split, clients_per_round=101)
    with pytest.raises(TypeError, match="split"):
        PrivacyPanel(digits_split[0], [[0, 1]])
