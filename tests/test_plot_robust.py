"""The plots of notebook 15 (poisoning and robust aggregation): where each defence breaks, and a
backdoor's success over the rounds. Hand-made Histories, numbers that are exact."""

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from fedlab import plot  # noqa: E402
from fedlab.history import History, RoundRecord  # noqa: E402
from fedlab.rounds import DivergenceError  # noqa: E402

NAN = float("nan")


def record(r, accuracy, backdoor=NAN):
    return RoundRecord(
        r,
        (0, 1),
        (0.5, 0.5),
        (5, 5),
        0.5,
        0.4,
        accuracy,
        (0.1, 0.1),
        0.1,
        0.1,
        (1.0, 1.0),
        8,
        8,
        0.01,
        backdoor_success=backdoor,
    )


def history(accuracies, backdoor=None):
    backdoor = backdoor or [NAN] * len(accuracies)
    return History(
        config={"algorithm": {"name": "FedAvg"}},
        rounds=[
            record(r + 1, a, b) for r, (a, b) in enumerate(zip(accuracies, backdoor, strict=True))
        ],
    )


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


# --- plot_breakdown ------------------------------------------------------------------------------


def test_breakdown_draws_each_defences_final_accuracy_and_crosses_where_it_diverged():
    diverged = DivergenceError(3, [0], history([0.5, 0.2]))
    results = {
        "mean": {2: None, 0: history([0.5, 0.75]), 1: diverged},
        "median": {0: 0.75, 1: 0.5, 2: NAN},
    }
    drawn = plot.plot_breakdown(results, chance=0.1)
    data = drawn.data
    assert data["mean/attackers"].tolist() == [0, 1, 2]  # sorted
    np.testing.assert_array_equal(data["mean/accuracy"], [0.75, NAN, NAN])
    assert data["mean/diverged"].tolist() == [False, True, True]
    np.testing.assert_array_equal(data["median/accuracy"], [0.75, 0.5, NAN])
    assert data["median/diverged"].tolist() == [False, False, True]
    (ax,) = drawn.axes
    lines = ax.get_lines()
    # per defence: the line (diverged drawn at 0), the measured dots, the crosses
    mean_line, mean_dots, mean_crosses = lines[:3]
    assert mean_line.get_ydata().tolist() == [0.75, 0.0, 0.0]
    assert mean_dots.get_xdata().tolist() == [0] and mean_dots.get_marker() == "o"
    assert mean_crosses.get_xdata().tolist() == [1, 2] and mean_crosses.get_marker() == "x"
    assert mean_dots.get_color() == mean_line.get_color() == mean_crosses.get_color()
    assert list(lines[-1].get_ydata()) == [0.1, 0.1]  # the chance line
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["mean", "median", "chance"]
    assert [int(t) for t in ax.get_xticks()] == [0, 1, 2]


def test_breakdown_draws_on_the_axes_it_is_given_and_can_leave_the_legend_out():
    fig, ax = plt.subplots()
    drawn = plot.plot_breakdown({"Krum": {0: 0.9, 6: None}}, ax=ax, legend=False)
    assert drawn.fig is fig and drawn.axes == (ax,)
    assert ax.get_legend() is None
    assert [int(t) for t in ax.get_xticks()] == [0, 6]


@pytest.mark.parametrize(
    ("results", "error", "message"),
    [
        ([0.9], TypeError, "results must be a dict"),
        ({}, ValueError, "at least one run"),
        ({"mean": [0.9]}, TypeError, "results\\['mean'\\] must be a non-empty dict"),
        ({"mean": {}}, TypeError, "non-empty dict"),
        ({"mean": {-1: 0.9}}, ValueError, "integers >= 0"),
        ({"mean": {1.5: 0.9}}, ValueError, "integers >= 0"),
        ({"mean": {True: 0.9}}, ValueError, "integers >= 0"),
        ({"mean": {0: 1.5}}, ValueError, "accuracy in \\[0, 1\\], got 1.5"),
        ({"mean": {0: "0.9"}}, TypeError, "must be a History, an accuracy, or None"),
        ({"mean": {0: True}}, TypeError, "must be a History, an accuracy, or None"),
        ({"mean": {0: History()}}, ValueError, "History with no rounds"),
    ],
)
def test_breakdown_refuses_what_is_not_runs_by_number_of_attackers(results, error, message):
    with pytest.raises(error, match=message):
        plot.plot_breakdown(results)


def test_breakdown_refuses_a_chance_level_that_is_no_accuracy():
    with pytest.raises(ValueError, match="chance must be an accuracy"):
        plot.plot_breakdown({"mean": {0: 0.9}}, chance=10)


# --- plot_backdoor --------------------------------------------------------------------------------


def test_backdoor_draws_success_and_clean_accuracy_of_the_evaluated_rounds():
    attacked = history([0.5, 0.75, 0.875], backdoor=[1.0, NAN, 0.75])
    clipped = history([0.5, 0.75, 0.75], backdoor=[0.5, 0.25, 0.0])
    drawn = plot.plot_backdoor({"no defence": attacked, "clipped": clipped})
    data = drawn.data
    assert data["no defence/round"].tolist() == [1, 3]  # round 2 was not evaluated
    assert data["no defence/backdoor_success"].tolist() == [1.0, 0.75]
    assert data["no defence/test_accuracy"].tolist() == [0.5, 0.875]
    assert data["clipped/backdoor_success"].tolist() == [0.5, 0.25, 0.0]
    (ax,) = drawn.axes
    success, accuracy = ax.get_lines()[:2]
    assert success.get_linestyle() == "-" and accuracy.get_linestyle() == "--"
    assert success.get_color() == accuracy.get_color()
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[:2] == ["no defence: backdoor", "no defence: clean accuracy"]
    assert ax.get_ylim()[0] < 0 < 1 < ax.get_ylim()[1]


def test_backdoor_without_accuracy_draws_one_line_a_run():
    fig, ax = plt.subplots()
    runs = {"a": history([0.5], backdoor=[0.25]), "b": history([0.5], backdoor=[0.5])}
    drawn = plot.plot_backdoor(runs, ax=ax, accuracy=False, legend=False)
    assert drawn.axes == (ax,) and len(ax.get_lines()) == 2
    assert "a/test_accuracy" not in drawn.data and ax.get_legend() is None
    assert ax.get_title() == "Backdoor success"


def test_backdoor_refuses_runs_that_measured_no_backdoor():
    with pytest.raises(ValueError, match="no backdoor success in any round"):
        plot.plot_backdoor({"clean": history([0.5, 0.75])})
    with pytest.raises(TypeError, match="must be a fedlab History"):
        plot.plot_backdoor({"clean": [0.5]})
    with pytest.raises(ValueError, match="at least one run"):
        plot.plot_backdoor({})
    assert math.isnan(history([0.5]).series("backdoor_success")[0])
