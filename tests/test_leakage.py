"""Gradient inversion (fedlab.leakage): iDLG labels, DLG reconstructions, and the defences.

Tolerances, measured on digits with FedModel(10) at its seed-0 initial weights (2 CPU cores):
with no defence a single digit comes back to a pixel MSE of ~1e-15 (float64 L-BFGS), so
``< 1e-6`` is a wide margin; guessing the average digit scores ~0.074, and noise of std 1 per
coordinate (~24× the gradient's norm in total) gives 0.2–0.4, so "fails" means ``> 0.05``.
"""

import matplotlib.pyplot as plt
import numpy as np
import pytest

from fedlab.leakage import (
    Defence,
    Reconstruction,
    _true_gradient,
    attack,
    dense_logits,
    infer_labels,
    invert_gradient,
    match_reconstructions,
    plot_reconstructions,
    shared_update,
)
from fedlab.models import FedModel, build_model
from fedlab.steps import full_gradient

EXACT = 1e-6  # pixel MSE below which a reconstruction counts as exact (measured ~1e-15)
FAILED = 0.05  # pixel MSE above which it is no better than guessing the average digit (0.074)


@pytest.fixture(scope="module")
def setup(digits):
    model = build_model(lambda: FedModel(10), digits.x_train, seed=0)
    weights = [v.numpy() for v in model.trainable_variables]
    first = [int(np.flatnonzero(digits.y_train == c)[0]) for c in range(10)]  # one per class
    return model, weights, digits.x_train, digits.y_train, first


def test_digits_are_pixels_in_unit_range(digits):
    assert digits.x_train.shape[1] == 64
    assert digits.x_train.min() == 0.0 and digits.x_train.max() == 1.0


def test_dense_logits_is_fedmodels_forward_pass(setup):
    model, weights, x, _, _ = setup
    ours = dense_logits([np.float64(w) for w in weights], np.float64(x[:5])).numpy()
    np.testing.assert_allclose(ours, model(x[:5]).numpy(), atol=1e-5)


def test_infer_labels_by_hand():
    assert infer_labels(np.array([0.1, 0.2, -0.5, 0.2])).tolist() == [2]
    assert infer_labels(np.array([-0.3, 0.1, -0.4, 0.6]), num_examples=2).tolist() == [0, 2]


def test_idlg_labels_are_exact_for_single_examples_of_every_class(setup):
    model, weights, x, y, first = setup
    for i in first:
        sent = shared_update(model, weights, x[i : i + 1], y[i : i + 1])
        assert infer_labels(sent[-1]).tolist() == [y[i]]
        assert np.sum(sent[-1] < 0) == 1  # p − onehot(y): one negative entry, at the label


def test_shared_update_without_defence_is_the_gradient(setup):
    model, weights, x, y, _ = setup
    sent = shared_update(model, weights, x[:3], y[:3])
    for s, g in zip(sent, full_gradient(model, weights, x[:3], y[:3]), strict=True):
        np.testing.assert_allclose(s, g, rtol=1e-6)


def test_shared_update_clips_and_rescales_local_steps(setup):
    model, weights, x, y, _ = setup
    clipped = shared_update(model, weights, x[:1], y[:1], Defence(clip_norm=0.5))
    assert np.sqrt(sum(np.sum(c**2) for c in clipped)) == pytest.approx(0.5)
    # A tiny client_lr: the FedAvg pseudo-gradient −Δ/(lr·steps) is almost the gradient.
    slow = shared_update(model, weights, x[:1], y[:1], Defence(local_steps=3, client_lr=1e-3))
    grad = shared_update(model, weights, x[:1], y[:1])
    np.testing.assert_allclose(slow[-1], grad[-1], atol=5e-3)


def test_noise_is_seeded(setup):
    model, weights, x, y, _ = setup
    a = shared_update(model, weights, x[:1], y[:1], Defence(noise_std=0.1), seed=1)
    b = shared_update(model, weights, x[:1], y[:1], Defence(noise_std=0.1), seed=1)
    c = shared_update(model, weights, x[:1], y[:1], Defence(noise_std=0.1), seed=2)
    assert all(np.array_equal(p, q) for p, q in zip(a, b, strict=True))
    assert not np.array_equal(a[0], c[0])


def test_invert_logistic_regression_by_hand():
    w = [np.ones((2, 3)), np.zeros(3)]
    shared = [g.numpy() for g in _true_gradient(w, np.array([[0.2, 0.9]]), np.array([1]))]
    found = invert_gradient(w, shared)
    assert found.labels.tolist() == [1]
    np.testing.assert_allclose(found.x, [[0.2, 0.9]], atol=1e-6)


@pytest.mark.parametrize("distance", ["cosine", "l2"])
@pytest.mark.parametrize("index", [0, 1])
def test_dlg_recovers_a_single_digit_without_defence(setup, distance, index):
    model, weights, x, y, _ = setup
    result = attack(model, weights, x[index : index + 1], y[index : index + 1], distance=distance)
    assert isinstance(result, Reconstruction)
    assert result.labels_recovered and result.label_found.tolist() == [y[index]]
    assert result.error < EXACT
    assert result.psnr > 60
    assert result.gradient_distance[-1] < 1e-9 < result.gradient_distance[0]


def test_dlg_fails_under_strong_noise(setup):
    model, weights, x, y, _ = setup
    sent = shared_update(model, weights, x[:1], y[:1])
    norm = np.sqrt(sum(np.sum(s**2) for s in sent))
    noise_norm = 1.0 * np.sqrt(sum(s.size for s in sent))
    assert noise_norm > 10 * norm  # the noise drowns the update
    result = attack(model, weights, x[:1], y[:1], Defence(noise_std=1.0))
    assert result.error > FAILED


def test_clipping_alone_does_not_stop_the_cosine_attack(setup):
    model, weights, x, y, _ = setup
    clipped = Defence(clip_norm=0.1)
    assert attack(model, weights, x[:1], y[:1], clipped).error < EXACT
    # ...though it fools the L2 attacker, who assumes the update's scale.
    assert attack(model, weights, x[:1], y[:1], clipped, distance="l2").error > FAILED


def test_a_batch_and_local_steps_make_it_harder(setup):
    model, weights, x, y, first = setup
    batch = attack(model, weights, x[first[:8]], y[first[:8]])
    steps = attack(model, weights, x[:1], y[:1], Defence(local_steps=5))
    assert batch.labels_recovered and steps.labels_recovered  # labels still leak
    assert batch.error > 1e-5 and steps.error > 1e-4  # no longer exact (single: ~1e-15)
    assert len(batch.errors) == 8


def test_same_seed_same_reconstruction(setup):
    model, weights, x, y, _ = setup
    sent = shared_update(model, weights, x[:1], y[:1])
    a = invert_gradient(weights, sent, max_iter=5, seed=3)
    b = invert_gradient(weights, sent, max_iter=5, seed=3)
    c = invert_gradient(weights, sent, max_iter=5, seed=4)
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.gradient_distance, b.gradient_distance)
    assert not np.array_equal(a.x, c.x)
    assert a.x.min() >= 0.0 and a.x.max() <= 1.0


def test_match_reconstructions_undoes_a_permutation():
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(4, 6))
    order, mse = match_reconstructions(x, x[[2, 0, 3, 1]])
    np.testing.assert_array_equal(x[[2, 0, 3, 1]][order], x)
    np.testing.assert_array_equal(mse, 0.0)


def test_argument_checks(setup):
    model, weights, x, y, _ = setup
    sent = shared_update(model, weights, x[:1], y[:1])
    with pytest.raises(ValueError, match="noise_std"):
        Defence(noise_std=-1.0)
    with pytest.raises(ValueError, match="clip_norm"):
        Defence(clip_norm=0.0)
    with pytest.raises(ValueError, match="local_steps"):
        Defence(local_steps=0)
    with pytest.raises(TypeError, match="defence"):
        shared_update(model, weights, x[:1], y[:1], defence={"noise_std": 1.0})
    with pytest.raises(ValueError, match="y must"):
        shared_update(model, weights, x[:2], y[:1])
    with pytest.raises(ValueError, match="distance"):
        invert_gradient(weights, sent, distance="l1")
    with pytest.raises(ValueError, match="shared"):
        invert_gradient(weights, sent[:2])
    with pytest.raises(ValueError, match="weights"):
        invert_gradient(weights[:3], sent[:3])
    with pytest.raises(ValueError, match="labels"):
        invert_gradient(weights, sent, labels=[10])
    with pytest.raises(ValueError, match="num_examples"):
        infer_labels(sent[-1], num_examples=11)
    with pytest.raises(ValueError, match="bias_gradient"):
        infer_labels(sent[0])


def test_plot_reconstructions_draws_originals_over_reconstructions(setup):
    model, weights, x, y, first = setup
    results = [
        attack(model, weights, x[:1], y[:1], max_iter=3),
        attack(model, weights, x[first[:2]], y[first[:2]], max_iter=3),
    ]
    drawn = plot_reconstructions(results, titles=["one", "two"])
    try:
        assert drawn.data["original"].shape == (3, 8, 8)
        assert drawn.data["reconstruction"].shape == (3, 8, 8)
        np.testing.assert_array_equal(drawn.data["original"][0], x[0].reshape(8, 8))
        np.testing.assert_array_equal(
            drawn.data["error"], np.concatenate([r.errors for r in results])
        )
        assert len(drawn.axes) == 6
        with pytest.raises(ValueError, match="titles"):
            plot_reconstructions(results, titles=["one"])
        with pytest.raises(TypeError, match="results"):
            plot_reconstructions([])
    finally:
        plt.close(drawn.fig)
