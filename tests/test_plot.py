"""Plots draw what the History holds and return it."""

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from fedlab import plot  # noqa: E402
from fedlab.history import History, RoundRecord  # noqa: E402


@pytest.fixture
def history():
    rounds = [
        RoundRecord(
            r,
            (0, 1),
            (1.0 / r, 2.0 / r),
            (5, 5),
            1.5 / r,
            1.2 / r,
            0.5 + r / 10,
            (0.1 * r, 0.3 * r),
            0.2 * r,
            0.3 * r,
            (0.9, -0.1),
            100,
            100,
            0.01,
        )
        for r in (1, 2, 3)
    ]
    return History(config={"algorithm": {"name": "FedAvg"}}, rounds=rounds)


def test_plot_history_draws_the_history(history):
    drawn = plot.plot_history(history)
    np.testing.assert_array_equal(drawn.data["test_accuracy"], history.test_accuracy)
    np.testing.assert_array_equal(drawn.data["train_loss"], history.train_loss)
    loss_ax, acc_ax = drawn.axes
    np.testing.assert_array_equal(acc_ax.lines[0].get_ydata(), history.test_accuracy)
    assert len(loss_ax.lines) == 2
    plt.close(drawn.fig)


def test_plot_drift_uses_every_client(history):
    drawn = plot.plot_drift(history)
    assert drawn.data["client_drift"].tolist() == pytest.approx([0.1, 0.3, 0.2, 0.6, 0.3, 0.9])
    np.testing.assert_allclose(drawn.data["cosine_mean"], [0.4, 0.4, 0.4])
    plt.close(drawn.fig)


def test_plots_draw_on_given_axes_and_check_them(history):
    fig, axes = plt.subplots(1, 3)
    drawn = plot.plot_accuracy(history, ax=axes[0], label="run A")
    assert drawn.fig is fig and drawn.axes == (axes[0],)
    plot.plot_accuracy(history, ax=axes[0], label="run B")
    assert [t.get_text() for t in axes[0].get_legend().get_texts()] == ["run A", "run B"]
    with pytest.raises(ValueError, match="ax must hold 2 axes"):
        plot.plot_history(history, axes=axes)
    with pytest.raises(TypeError, match="history must be a fedlab History"):
        plot.plot_loss({"rounds": []})
    plt.close(fig)


def test_label_distribution_plots_draw_the_counts():
    from fedlab.partition import ClientSplit

    split = ClientSplit.from_indices([[0, 1, 2], [3, 4]], np.array([0, 0, 1, 2, 2]))
    bars = plot.plot_label_distribution(split)
    np.testing.assert_array_equal(bars.data["values"], [[2, 1, 0], [0, 0, 2]])
    heights = [p.get_height() for p in bars.axes[0].patches]
    assert heights == [2, 0, 1, 0, 0, 2]  # class by class, client by client
    heat = plot.plot_label_distribution(split, kind="heatmap", normalize=True)
    np.testing.assert_allclose(heat.axes[0].images[0].get_array(), [[2 / 3, 0], [1 / 3, 0], [0, 1]])
    sizes = plot.plot_client_sizes(split)
    assert sizes.data["sizes"].tolist() == [3, 2]
    with pytest.raises(ValueError, match="kind must be one of"):
        plot.plot_label_distribution(split, kind="pie")
    plt.close("all")


def test_client_samples_show_each_clients_own_images():
    from fedlab import data, partition

    digits = data.load_digits(seed=0)
    skewed, split = partition.feature_skew(digits, num_clients=4, seed=0)
    drawn = plot.plot_client_samples(skewed, split, clients=[1, 3], per_client=5)
    assert len(drawn.axes) == 10
    for k, chosen in zip([1, 3], drawn.data["indices"], strict=True):
        assert set(chosen) <= set(split.client_indices[k].tolist())
    np.testing.assert_allclose(
        drawn.axes[0].images[0].get_array().ravel(), skewed.x_train[drawn.data["indices"][0][0]]
    )
    with pytest.raises(ValueError, match="clients must be ids"):
        plot.plot_client_samples(skewed, split, clients=[7])
    plt.close("all")


def test_accuracy_and_loss_against_megabytes_sent(history):
    # each round sends 100 bytes down and 100 up: 200, 400, 600 bytes so far
    np.testing.assert_allclose(history.megabytes_sent, [2e-4, 4e-4, 6e-4])
    fig, (ax_acc, ax_loss) = plt.subplots(1, 2)
    acc = plot.plot_accuracy(history, ax=ax_acc, x="megabytes")
    loss = plot.plot_loss(history, ax=ax_loss, x="megabytes")
    np.testing.assert_allclose(ax_acc.lines[0].get_xdata(), history.megabytes_sent)
    np.testing.assert_allclose(acc.data["megabytes"], history.megabytes_sent)
    np.testing.assert_allclose(loss.data["megabytes"], history.megabytes_sent)
    assert ax_acc.get_xlabel() == "megabytes sent (down + up)"
    with pytest.raises(ValueError, match="x must be one of"):
        plot.plot_accuracy(history, ax=ax_acc, x="bytes")
    plt.close(fig)


# --- figures left open (issue 18) -----------------------------------------------------------------


def test_plots_in_a_loop_leave_no_pyplot_figure_open_off_screen(digits):
    from fedlab import partition

    split = partition.iid(digits.y_train, 5, seed=0)
    history = History(rounds=[])
    before = plt.get_fignums()
    for _ in range(30):
        drawn = plot.plot_label_distribution(split)
        plot.plot_history(history)
    assert plt.get_fignums() == before  # Agg: nothing kept by pyplot
    assert drawn.fig.canvas is not None and drawn.axes[0].figure is drawn.fig
    buffer = io.BytesIO()
    drawn.fig.savefig(buffer, format="png")  # still a whole figure: it saves
    assert buffer.getvalue()[:4] == b"\x89PNG"


def test_where_figures_are_shown_the_plots_go_through_pyplot(monkeypatch):
    monkeypatch.setattr(
        matplotlib, "get_backend", lambda: "module://matplotlib_inline.backend_inline"
    )
    before = plt.get_fignums()
    drawn = plot.plot_history(History(rounds=[]))
    try:
        assert drawn.fig.number in plt.get_fignums() and len(plt.get_fignums()) == len(before) + 1
    finally:
        plt.close(drawn.fig)
