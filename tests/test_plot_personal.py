"""Per-client accuracy and fairness: History's tables and statistics, and the plots that draw them.

Accuracies are multiples of 1/4, so every mean and median below is exact.
"""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from fedlab import plot  # noqa: E402
from fedlab.history import History, RoundRecord  # noqa: E402
from fedlab.metrics import fairness  # noqa: E402

NAN = float("nan")


def record(r, personal=(), global_=()):
    return RoundRecord(
        r,
        (0, 1),
        (1.0, 2.0),
        (5, 5),
        1.5,
        1.2,
        0.5,
        (0.1, 0.3),
        0.2,
        0.3,
        (0.9, -0.1),
        100 * r,
        100,
        0.01,
        client_test_accuracy=global_,
        client_personal_accuracy=personal,
    )


@pytest.fixture
def history():
    """Four clients; rounds 1 and 3 evaluated per client, round 2 not."""
    return History(
        config={"algorithm": {"name": "Ditto"}},
        rounds=[
            record(1, personal=(0.5, 1.0, 0.75, 0.25), global_=(0.5, 0.5, 0.75, 0.25)),
            record(2),
            record(3, personal=(1.0, 0.75, 0.75, 0.5), global_=(0.25, 0.5, 0.75, 1.0)),
        ],
    )


# --- History.client_accuracy / fairness and metrics.fairness -------------------------------------


def test_client_accuracy_is_rounds_by_clients_with_nan_rows_where_not_evaluated(history):
    personal = history.client_accuracy("personal")
    np.testing.assert_array_equal(
        personal, [[0.5, 1.0, 0.75, 0.25], [NAN] * 4, [1.0, 0.75, 0.75, 0.5]]
    )
    np.testing.assert_array_equal(history.client_accuracy(), personal)  # "personal" is the default
    np.testing.assert_array_equal(
        history.client_accuracy("global"), [[0.5, 0.5, 0.75, 0.25], [NAN] * 4, [0.25, 0.5, 0.75, 1]]
    )
    with pytest.raises(ValueError, match="kind must be 'personal' or 'global'"):
        history.client_accuracy("local")


def test_fairness_per_round_exact(history):
    personal = history.fairness("personal")
    np.testing.assert_array_equal(personal["mean"], [0.625, NAN, 0.75])
    np.testing.assert_array_equal(personal["median"], [0.625, NAN, 0.75])
    np.testing.assert_array_equal(personal["worst10"], [0.25, NAN, 0.5])  # 4 clients: the worst 1
    # population std: sqrt(((3/8)² + (1/8)² + (1/8)² + (3/8)²) / 4) and sqrt((2 · (1/4)²) / 4)
    np.testing.assert_allclose(personal["std"], [np.sqrt(0.078125), NAN, np.sqrt(0.03125)])
    np.testing.assert_array_equal(history.personal_accuracy, [0.625, NAN, 0.75])
    glob = history.fairness("global")
    np.testing.assert_array_equal(glob["mean"], [0.5, NAN, 0.625])
    np.testing.assert_array_equal(glob["median"], [0.5, NAN, 0.625])
    np.testing.assert_array_equal(glob["worst10"], [0.25, NAN, 0.25])


def test_metrics_fairness_leaves_out_nan_and_averages_the_worst_tenth():
    assert fairness([NAN, 0.5, 1.0, NAN]) == {
        "mean": 0.75,
        "median": 0.75,
        "worst10": 0.5,
        "std": 0.25,
    }
    # 20 clients: the worst 10 % are 2 clients, 0.0 and 0.25
    assert fairness([0.0, 0.25] + [1.0] * 18)["worst10"] == 0.125
    # 11 clients: ceil(1.1) = 2 clients
    assert fairness([0.5] + [0.25] + [1.0] * 9)["worst10"] == 0.375
    assert all(np.isnan(v) for v in fairness([NAN, NAN]).values())
    assert all(np.isnan(v) for v in fairness([]).values())


def test_rows_of_another_width_count_as_not_evaluated():
    h = History(rounds=[record(1, personal=(0.5, 1.0)), record(2, personal=(0.25, 0.5, 0.75))])
    np.testing.assert_array_equal(h.client_accuracy(), [[NAN, NAN, NAN], [0.25, 0.5, 0.75]])
    np.testing.assert_array_equal(h.fairness()["mean"], [NAN, 0.5])


# --- plot_client_accuracy ------------------------------------------------------------------------


def test_client_accuracy_curves_are_the_sorted_accuracies(history):
    runs = {
        "global": history.client_accuracy("global")[-1],  # 0.25, 0.5, 0.75, 1.0
        "personalised": [1.0, NAN, 0.75, 0.5, 0.75],  # the nan client is left out
    }
    drawn = plot.plot_client_accuracy(runs)
    (ax,) = drawn.axes
    curves = [line for line in ax.lines if line.get_drawstyle() == "steps-mid"]
    assert len(curves) == 2
    np.testing.assert_array_equal(curves[0].get_xdata(), [0.125, 0.375, 0.625, 0.875])
    np.testing.assert_array_equal(curves[0].get_ydata(), [0.25, 0.5, 0.75, 1.0])
    np.testing.assert_array_equal(curves[1].get_ydata(), [0.5, 0.75, 0.75, 1.0])
    np.testing.assert_array_equal(drawn.data["personalised/accuracy"], [0.5, 0.75, 0.75, 1.0])
    np.testing.assert_array_equal(drawn.data["personalised/rank"], [0.125, 0.375, 0.625, 0.875])
    assert drawn.data["global/mean"] == 0.625 and drawn.data["global/worst10"] == 0.25
    assert drawn.data["personalised/mean"] == 0.75 and drawn.data["personalised/worst10"] == 0.5
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "global: mean 0.62, worst 10 % 0.25",
        "personalised: mean 0.75, worst 10 % 0.50",
    ]
    # mean: dotted line across; worst 10 %: a bar over the worst client (1 of 4: x in [0, 1/4])
    global_color = curves[0].get_color()
    assert curves[1].get_color() != global_color
    marks = [
        line for line in ax.lines if line.get_color() == global_color and line is not curves[0]
    ]
    mean_line = next(line for line in marks if line.get_linestyle() == ":")
    worst_bar = next(line for line in marks if line.get_linestyle() == "-")
    assert list(mean_line.get_ydata()) == [0.625, 0.625]
    assert list(worst_bar.get_xdata()) == [0, 0.25] and list(worst_bar.get_ydata()) == [0.25, 0.25]
    assert ax.get_ylim() == (0, 1) and ax.get_xlim() == (0, 1)
    assert ax.get_xlabel() == "clients ranked by accuracy, worst → best (fraction)"
    plt.close(drawn.fig)


def test_client_accuracy_draws_on_a_given_axes():
    fig, axes = plt.subplots(1, 2)
    drawn = plot.plot_client_accuracy({"a": [0.5]}, ax=axes[1], legend=False)
    assert drawn.fig is fig and drawn.axes == (axes[1],)
    assert axes[1].get_legend() is None and len(axes[0].lines) == 0
    np.testing.assert_array_equal(axes[1].lines[0].get_xdata(), [0.5])
    plot.plot_client_accuracy({"b": np.array([0.25, 1.0])}, ax=axes[1])
    assert [t.get_text() for t in axes[1].get_legend().get_texts()] == [
        "a: mean 0.50, worst 10 % 0.50",
        "b: mean 0.62, worst 10 % 0.25",
    ]
    with pytest.raises(ValueError, match="ax must hold 1 axes"):
        plot.plot_client_accuracy({"a": [0.5]}, ax=axes)
    plt.close(fig)


@pytest.mark.parametrize(
    ("runs", "error", "message"),
    [
        ({}, ValueError, "runs must hold at least one run"),
        ([[0.5, 1.0]], TypeError, "runs must be a dict"),
        ({"a": [[0.5, 1.0], [0.5, 1.0]]}, ValueError, r"runs\['a'\] must be a 1-D array.*\(2, 2\)"),
        ({"a": 0.5}, ValueError, r"runs\['a'\] must be a 1-D array"),
        ({"a": [NAN, NAN]}, ValueError, r"runs\['a'\] must hold at least one accuracy"),
        ({"a": []}, ValueError, r"runs\['a'\] must hold at least one accuracy"),
        ({"a": [0.5, 1.5]}, ValueError, r"runs\['a'\] must hold accuracies in \[0, 1\]"),
        ({"a": ["high", "low"]}, TypeError, r"runs\['a'\] must be a 1-D array"),
    ],
)
def test_client_accuracy_rejects_bad_runs(runs, error, message):
    figures = plt.get_fignums()
    with pytest.raises(error, match=message):
        plot.plot_client_accuracy(runs)
    assert plt.get_fignums() == figures  # checked before a figure is made


# --- plot_fairness -------------------------------------------------------------------------------


def test_fairness_joins_the_evaluated_rounds(history):
    other = History(rounds=[record(2, personal=(0.5, 0.5)), record(4, personal=(1.0, 0.5))])
    drawn = plot.plot_fairness({"Ditto": history, "FedPer": other})
    (ax,) = drawn.axes
    ditto_mean, ditto_worst, fedper_mean, fedper_worst = ax.lines
    np.testing.assert_array_equal(ditto_mean.get_xdata(), [1, 3])  # round 2 skipped
    np.testing.assert_array_equal(ditto_mean.get_ydata(), [0.625, 0.75])
    np.testing.assert_array_equal(ditto_worst.get_ydata(), [0.25, 0.5])
    np.testing.assert_array_equal(fedper_mean.get_xdata(), [2, 4])
    np.testing.assert_array_equal(fedper_mean.get_ydata(), [0.5, 0.75])
    np.testing.assert_array_equal(fedper_worst.get_ydata(), [0.5, 0.5])
    # one colour per run, one line style per statistic
    assert ditto_mean.get_color() == ditto_worst.get_color() != fedper_mean.get_color()
    assert fedper_mean.get_color() == fedper_worst.get_color()
    assert [line.get_linestyle() for line in ax.lines] == ["-", "--", "-", "--"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "Ditto: mean",
        "Ditto: worst 10 %",
        "FedPer: mean",
        "FedPer: worst 10 %",
    ]
    assert sorted(drawn.data) == [
        "Ditto/mean",
        "Ditto/round",
        "Ditto/worst10",
        "FedPer/mean",
        "FedPer/round",
        "FedPer/worst10",
    ]
    np.testing.assert_array_equal(drawn.data["Ditto/round"], [1, 3])
    assert ax.get_title() == "Fairness across clients (personalised models)"
    assert ax.get_ylim() == (0, 1) and ax.get_xlabel() == "round"
    plt.close(drawn.fig)


def test_fairness_kind_for_all_runs_or_per_run(history):
    drawn = plot.plot_fairness({"FedAvg": history}, kind="global", stats=("median", "std"))
    np.testing.assert_array_equal(drawn.data["FedAvg/median"], [0.5, 0.625])
    np.testing.assert_allclose(drawn.data["FedAvg/std"], [np.sqrt(0.03125), np.sqrt(0.078125)])
    assert [line.get_linestyle() for line in drawn.axes[0].lines] == ["-.", ":"]
    assert drawn.axes[0].get_title() == "Fairness across clients (global model)"
    plt.close(drawn.fig)

    drawn = plot.plot_fairness({"FedAvg": (history, "global"), "Ditto": history}, stats="mean")
    np.testing.assert_array_equal(drawn.data["FedAvg/mean"], [0.5, 0.625])
    np.testing.assert_array_equal(drawn.data["Ditto/mean"], [0.625, 0.75])
    assert [t.get_text() for t in drawn.axes[0].get_legend().get_texts()] == [
        "FedAvg (global): mean",
        "Ditto (personal): mean",
    ]
    assert drawn.axes[0].get_title() == "Fairness across clients"
    plt.close(drawn.fig)


def test_fairness_against_megabytes_on_a_given_axes(history):
    fig, ax = plt.subplots()
    drawn = plot.plot_fairness({"Ditto": history}, ax=ax, x="megabytes", legend=False)
    assert drawn.fig is fig and drawn.axes == (ax,) and ax.get_legend() is None
    # bytes: 200, 300, 400 per round -> 200, 500, 900 so far; rounds 1 and 3 evaluated
    np.testing.assert_allclose(ax.lines[0].get_xdata(), [2e-4, 9e-4])
    np.testing.assert_allclose(drawn.data["Ditto/megabytes"], [2e-4, 9e-4])
    assert ax.get_xlabel() == "megabytes sent (down + up)"
    plt.close(fig)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (dict(histories={}), ValueError, "histories must hold at least one run"),
        (dict(histories=["h"]), TypeError, "histories must be a dict"),
        (dict(histories={"a": {"rounds": []}}), TypeError, r"histories\['a'\] must be a fedlab"),
        (dict(kind="local"), ValueError, r"kind must be one of \['personal', 'global'\]"),
        (dict(stats=("mean", "worst")), ValueError, r"stats must be one of \['mean', 'median'"),
        (dict(stats=()), ValueError, "stats must name at least one"),
        (dict(x="bytes"), ValueError, "x must be one of"),
    ],
)
def test_fairness_rejects_bad_arguments(history, kwargs, error, message):
    kwargs = {"histories": {"a": history}, **kwargs}
    figures = plt.get_fignums()
    with pytest.raises(error, match=message):
        plot.plot_fairness(**kwargs)
    assert plt.get_fignums() == figures


def test_fairness_rejects_a_bad_run_kind_and_runs_never_evaluated(history):
    with pytest.raises(ValueError, match=r"kind of histories\['a'\] must be one of"):
        plot.plot_fairness({"a": (history, "local")})
    never = History(rounds=[record(1), record(2)])
    figures = plt.get_fignums()
    with pytest.raises(ValueError, match=r"histories\['b'\] has no per-client personal accuracy"):
        plot.plot_fairness({"a": history, "b": never})
    assert plt.get_fignums() == figures
