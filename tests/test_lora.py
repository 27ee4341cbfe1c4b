"""LoRA aggregation: naive factor averaging is biased by the cross terms; the exact alternatives."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from numpy.testing import assert_allclose  # noqa: E402

from fedlab.lora import (  # noqa: E402
    LoraAggregationPanel,
    aggregate_frozen_a,
    aggregate_svd,
    aggregation_error,
    average_of_products,
    merged_kernel,
    pad_factors,
    plot_lora_aggregation,
    product_of_averages,
    two_client_example,
)


def random_factors(seed, num_clients=3, d_in=5, d_out=4, ranks=(2, 2, 2)):
    rng = np.random.default_rng(seed)
    As = [rng.normal(size=(d_in, r)) for r in ranks[:num_clients]]
    Bs = [rng.normal(size=(r, d_out)) for r in ranks[:num_clients]]
    return As, Bs


# --- the gap between the two aggregates -----------------------------------------------------


def test_tiny_hand_computed_numbers():
    As, Bs = [[[1.0]], [[3.0]]], [[[1.0]], [[3.0]]]
    assert average_of_products(As, Bs)[0, 0] == 5.0  # (1 + 9) / 2
    assert product_of_averages(As, Bs)[0, 0] == 4.0  # 2 * 2
    assert aggregation_error(As, Bs) == pytest.approx(0.2)


def test_generic_factors_give_different_aggregates():
    As, Bs = random_factors(0)
    exact, naive = average_of_products(As, Bs), product_of_averages(As, Bs)
    assert not np.allclose(exact, naive)
    assert aggregation_error(As, Bs) > 0.05


def test_two_clients_half_half_difference_is_quarter_cross_term():
    (A1, A2), (B1, B2) = random_factors(1, num_clients=2)
    difference = average_of_products([A1, A2], [B1, B2]) - product_of_averages([A1, A2], [B1, B2])
    assert_allclose(difference, 0.25 * (A1 - A2) @ (B1 - B2), atol=1e-12)
    error = aggregation_error([A1, A2], [B1, B2], weights=[0.5, 0.5])
    by_hand = np.linalg.norm(0.25 * (A1 - A2) @ (B1 - B2)) / np.linalg.norm(
        0.5 * (A1 @ B1 + A2 @ B2)
    )
    assert error == pytest.approx(by_hand, rel=1e-12)


def test_difference_is_the_weighted_covariance_of_the_factors():
    As, Bs = random_factors(2)
    w = np.array([1.0, 2.0, 5.0])
    p = w / w.sum()
    A_bar, B_bar = (
        sum(pk * a for pk, a in zip(p, As, strict=True)),
        sum(pk * b for pk, b in zip(p, Bs, strict=True)),
    )
    covariance = sum(pk * (a - A_bar) @ (b - B_bar) for pk, a, b in zip(p, As, Bs, strict=True))
    gap = average_of_products(As, Bs, w) - product_of_averages(As, Bs, w)
    assert_allclose(gap, covariance, atol=1e-12)


def test_equal_in_the_special_cases():
    As, Bs = random_factors(3)
    cases = {
        "one client": ([As[0]], [Bs[0]]),
        "all A equal": ([As[0]] * 3, Bs),
        "all B equal": (As, [Bs[0]] * 3),
    }
    for name, (a, b) in cases.items():
        assert_allclose(average_of_products(a, b), product_of_averages(a, b), atol=1e-12), name
        assert aggregation_error(a, b) == pytest.approx(0.0, abs=1e-12), name


def test_zero_weight_client_is_ignored():
    As, Bs = random_factors(4)
    assert_allclose(
        average_of_products(As, Bs, [1.0, 1.0, 0.0]), average_of_products(As[:2], Bs[:2])
    )


def test_error_when_the_exact_average_is_zero():
    A, B = np.ones((2, 1)), np.ones((1, 2))
    assert aggregation_error([A, -A], [B, B]) == 0.0  # both aggregates are zero
    assert aggregation_error([A, -A], [B, -B]) == 1.0  # exact is AB; naive is 0
    assert aggregation_error([[[1.0]], [[2.0]]], [[[1.0]], [[-0.5]]]) == float("inf")


# --- exact alternatives --------------------------------------------------------------------


def test_frozen_a_aggregation_is_exact():
    As, Bs = random_factors(5)
    A = As[0]
    w = [3.0, 1.0, 2.0]
    A_out, B_out = aggregate_frozen_a(A, Bs, w)
    assert A_out is not None and np.array_equal(A_out, A)
    assert_allclose(A_out @ B_out, average_of_products([A] * 3, Bs, w), atol=1e-12)


def test_svd_with_enough_rank_is_exact():
    As, Bs = random_factors(6, d_in=8, d_out=7, ranks=(1, 2, 3))  # sum of ranks 6 <= 7
    exact = average_of_products(As, Bs)
    for rank in (6, 7):
        A, B = aggregate_svd(As, Bs, rank)
        assert A.shape == (8, rank) and B.shape == (rank, 7)
        assert_allclose(A @ B, exact, atol=1e-12)


def test_svd_truncation_error_is_the_discarded_singular_values():
    As, Bs = random_factors(7, d_in=8, d_out=7, ranks=(2, 2, 2))
    w = [1.0, 2.0, 3.0]
    exact = average_of_products(As, Bs, w)
    sigma = np.linalg.svd(exact, compute_uv=False)
    for rank in (1, 2, 4):
        A, B = aggregate_svd(As, Bs, rank, w)
        error = np.linalg.norm(exact - A @ B)
        assert error == pytest.approx(np.sqrt(np.sum(sigma[rank:] ** 2)), rel=1e-9, abs=1e-12)


def test_heterogeneous_ranks_zero_padding_is_naive_averaging():
    As, Bs = random_factors(8, ranks=(1, 2, 3))
    A, B = pad_factors(As[0], Bs[0], 3)
    assert A.shape == (5, 3) and B.shape == (3, 4)
    assert_allclose(A @ B, As[0] @ Bs[0])
    padded = [pad_factors(a, b, 3) for a, b in zip(As, Bs, strict=True)]
    naive = product_of_averages([a for a, _ in padded], [b for _, b in padded])
    assert_allclose(product_of_averages(As, Bs), naive)
    assert aggregation_error(As, Bs) > 0.05  # padding keeps the bias
    A, B = aggregate_svd(As, Bs, rank=4)  # SVD of the products is exact (rank <= 1 + 2 + 3)
    assert_allclose(A @ B, average_of_products(As, Bs), atol=1e-12)


def test_merged_kernel_scale():
    W, A, B = np.zeros((2, 3)), np.ones((2, 2)), np.ones((2, 3))
    assert_allclose(merged_kernel(W, A, B), np.full((2, 3), 2.0))  # alpha = r: scale 1
    assert_allclose(merged_kernel(W, A, B, alpha=8.0), np.full((2, 3), 8.0))  # 8/2 * 2


# --- argument checks -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "weights, message",
    [
        ([1.0, -1.0, 1.0], "non-negative"),
        ([0.0, 0.0, 0.0], "positive sum"),
        ([1.0, 1.0], "one number per client"),
        ([1.0, np.nan, 1.0], "finite"),
    ],
)
def test_bad_weights_are_refused(weights, message):
    As, Bs = random_factors(9)
    for function in (average_of_products, product_of_averages, aggregation_error):
        with pytest.raises(ValueError, match=message):
            function(As, Bs, weights)
    with pytest.raises(ValueError, match=message):
        aggregate_svd(As, Bs, 1, weights)
    with pytest.raises(ValueError, match=message):
        aggregate_frozen_a(As[0], Bs, weights)


def test_bad_shapes_are_refused():
    As, Bs = random_factors(10)
    with pytest.raises(ValueError, match="one factor per client"):
        average_of_products(As, Bs[:2])
    with pytest.raises(ValueError, match="one factor per client"):
        average_of_products([], [])
    with pytest.raises(ValueError, match="client 1"):
        average_of_products([As[0], As[1][:3]], Bs[:2])  # d_in differs
    with pytest.raises(ValueError, match="client 0"):
        average_of_products([As[0]], [Bs[0].T])  # r mismatch
    with pytest.raises(ValueError, match="2-D"):
        average_of_products([np.ones(3)], [np.ones((1, 3))])
    with pytest.raises(ValueError, match="rank"):
        aggregate_svd(As, Bs, 0)
    with pytest.raises(ValueError, match="rank"):
        aggregate_svd(As, Bs, 5)  # more than min(d_in, d_out) = 4
    with pytest.raises(ValueError, match="client 1"):
        aggregate_frozen_a(As[0], [Bs[0], np.ones((3, 4))])
    with pytest.raises(ValueError, match="rank"):
        pad_factors(As[0], Bs[0], 1)
    with pytest.raises(ValueError, match="kernel"):
        merged_kernel(np.zeros((4, 5)), As[0], Bs[0])


# --- properties ----------------------------------------------------------------------------

shapes = st.tuples(
    st.integers(1, 4),  # clients
    st.integers(1, 6),  # d_in
    st.integers(1, 6),  # d_out
    st.integers(1, 3),  # rank
    st.integers(0, 2**31 - 1),  # seed
)


@settings(max_examples=60, deadline=None)
@given(shapes, st.booleans())
def test_properties_on_random_shapes(shape, weighted):
    num_clients, d_in, d_out, rank, seed = shape
    rng = np.random.default_rng(seed)
    As = [rng.normal(size=(d_in, rank)) for _ in range(num_clients)]
    Bs = [rng.normal(size=(rank, d_out)) for _ in range(num_clients)]
    w = rng.uniform(0.1, 2.0, num_clients) if weighted else None
    p = np.full(num_clients, 1 / num_clients) if w is None else w / w.sum()
    exact = average_of_products(As, Bs, w)
    naive = product_of_averages(As, Bs, w)
    assert exact.shape == naive.shape == (d_in, d_out)
    A_bar, B_bar = (
        sum(pk * a for pk, a in zip(p, As, strict=True)),
        sum(pk * b for pk, b in zip(p, Bs, strict=True)),
    )
    covariance = sum(pk * (a - A_bar) @ (b - B_bar) for pk, a, b in zip(p, As, Bs, strict=True))
    assert_allclose(exact - naive, covariance, atol=1e-9)
    assert aggregation_error(As, Bs, w) >= 0.0
    # frozen A is exact; SVD with full rank is exact; the truncation error is Eckart-Young's
    _, B = aggregate_frozen_a(As[0], Bs, w)
    assert_allclose(As[0] @ B, average_of_products([As[0]] * num_clients, Bs, w), atol=1e-9)
    full = min(d_in, d_out)
    A, B = aggregate_svd(As, Bs, full, w)
    assert_allclose(A @ B, exact, atol=1e-9)
    sigma = np.linalg.svd(exact, compute_uv=False)
    A, B = aggregate_svd(As, Bs, 1, w)
    assert np.linalg.norm(exact - A @ B) == pytest.approx(
        np.sqrt(np.sum(sigma[1:] ** 2)), rel=1e-7, abs=1e-9
    )


# --- example, plot, panel ------------------------------------------------------------------


def test_two_client_example_matches_the_functions():
    example = two_client_example(seed=3, d_in=5, d_out=3, rank=2, spread=0.5)
    (A1, A2), (B1, B2) = example.As, example.Bs
    assert A1.shape == (5, 2) and B1.shape == (2, 3)
    assert_allclose(example.difference, 0.25 * (A1 - A2) @ (B1 - B2), atol=1e-12)
    assert example.error == aggregation_error(example.As, example.Bs)
    assert two_client_example(spread=0.0).error == 0.0
    with pytest.raises(ValueError, match="spread"):
        two_client_example(spread=-1.0)


def test_plot_returns_what_it_drew_and_leaks_no_figures():
    plt.close("all")
    example = two_client_example()
    fig = Figure()
    axes = fig.subplots(1, 5)
    drawn = plot_lora_aggregation(example, axes=axes)
    assert plt.get_fignums() == []
    assert drawn.fig is fig and drawn.axes == tuple(axes)
    assert_allclose(drawn.data["difference"], example.difference)
    assert_allclose(drawn.data["product_1"], example.products[0])
    for ax, name in zip(axes[:3], ["product_1", "product_2", "average_of_products"], strict=True):
        assert_allclose(ax.images[0].get_array(), drawn.data[name])
    with pytest.raises(ValueError, match="5 axes"):
        plot_lora_aggregation(example, axes=axes[:2])
    with pytest.raises(TypeError, match="LoraExample"):
        plot_lora_aggregation("not an example")
    drawn = plot_lora_aggregation(example)  # a new figure when no axes are given
    assert len(drawn.axes) == 5
    plt.close(drawn.fig)


def test_panel_redraws_when_a_control_changes():
    plt.close("all")
    panel = LoraAggregationPanel(rank=1, spread=0.0, seed=0)
    assert panel.example.error == 0.0 and "0.000" in panel.status.value
    first = panel.image.value
    assert first[:4] == b"\x89PNG"
    panel.controls["spread"].value = 1.5
    assert panel.example.error > 0 and panel.image.value != first
    panel.controls["rank"].value = 3
    assert panel.example.As[0].shape == (6, 3)
    before = panel.example
    panel.controls["seed"].value = 7
    assert not np.array_equal(panel.example.As[0], before.As[0])
    assert plt.get_fignums() == []
    with pytest.raises(ValueError, match="rank"):
        LoraAggregationPanel(rank=7)


def test_a_notebook_keeps_a_png_of_the_heatmaps_on_screen(notebook_png):
    panel = LoraAggregationPanel(rank=1, spread=0.0, seed=0)
    first, width, height = notebook_png(panel)
    assert first == bytes(panel.image.value)
    assert (width, height) == (960, 232)  # 12 x 2.9 inches at 80 dpi
    assert repr(panel) == "LoraAggregationPanel(rank 1, spread 0, seed 0: relative error 0.000)"
    panel.controls["spread"].value = 1.5
    moved, _, _ = notebook_png(panel)
    assert moved != first and moved == bytes(panel.image.value)
    assert repr(panel) == (
        f"LoraAggregationPanel(rank 1, spread 1.5, seed 0: "
        f"relative error {panel.example.error:.3f})"
    )
    assert panel.example.error > 0
    assert panel.status in panel.widget.children and panel.image in panel.widget.children


# --- the convention, checked against Keras ---------------------------------------------------


@pytest.mark.parametrize("alpha", [None, 6.0])
def test_keras_dense_lora_convention(alpha):
    import keras

    d_in, d_out, rank = 5, 3, 2
    keras.utils.set_random_seed(0)
    layer = keras.layers.Dense(d_out)
    layer.build((None, d_in))
    before = layer.count_params()
    W = np.array(layer.kernel.numpy(), dtype=np.float64)
    layer.enable_lora(rank, lora_alpha=alpha)
    assert layer.count_params() - before == rank * (d_in + d_out)
    trainable = sum(int(np.prod(w.shape)) for w in layer.trainable_weights)
    assert trainable == rank * (d_in + d_out) + d_out  # the new factors plus the bias
    assert tuple(layer.lora_kernel_a.shape) == (d_in, rank)
    assert tuple(layer.lora_kernel_b.shape) == (rank, d_out)
    rng = np.random.default_rng(0)
    layer.lora_kernel_b.assign(rng.normal(size=(rank, d_out)).astype("float32"))  # B starts at 0
    bias = np.array(layer.bias.numpy(), dtype=np.float64) + 0.5
    layer.bias.assign(bias.astype("float32"))
    A = np.array(layer.lora_kernel_a.numpy(), dtype=np.float64)
    B = np.array(layer.lora_kernel_b.numpy(), dtype=np.float64)
    x = rng.normal(size=(4, d_in)).astype("float32")
    expected = x.astype(np.float64) @ merged_kernel(W, A, B, alpha) + bias
    assert_allclose(np.asarray(layer(x)), expected, rtol=1e-5, atol=1e-5)
    if alpha is not None:  # the scale really is alpha / r, not 1
        wrong = x.astype(np.float64) @ merged_kernel(W, A, B) + bias
        assert not np.allclose(np.asarray(layer(x)), wrong, atol=1e-3)
