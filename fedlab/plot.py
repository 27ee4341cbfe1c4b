"""Plots of a :class:`~fedlab.history.History` (``01_one_round_by_hand``, ``04_client_drift``,
and the per-client fairness plots of the personalisation notebook).

Every function takes ``ax=None`` (a new figure is made when it is ``None``), reads numbers that
were computed elsewhere, and returns a :class:`Drawn` record: the figure, the axes and the exact
arrays it drew, so a test or a widget can check what is on screen.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import PIL.Image
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from numpy.typing import ArrayLike

from fedlab.history import History
from fedlab.metrics import fairness
from fedlab.validate import check_choice


@dataclass(frozen=True)
class Drawn:
    """What a plot function drew.

    Attributes:
        fig: the matplotlib figure.
        axes: the axes drawn on (one or more).
        data: the arrays plotted, by series name.
    """

    fig: Figure
    axes: tuple[Axes, ...]
    data: dict[str, np.ndarray] = field(default_factory=dict)


def new_figure(nrows: int = 1, ncols: int = 1, **kwargs) -> tuple[Figure, Any]:
    """``plt.subplots(nrows, ncols, **kwargs)`` where figures are shown (a notebook's inline
    backend, a window); elsewhere (Agg: scripts, the command line, tests) a figure pyplot does
    not keep, so a loop of plots leaves no figures open: it goes when nothing refers to it.

    Example:
        >>> fig, ax = new_figure(figsize=(2, 2))
        >>> fig.number if hasattr(fig, "number") else "not kept by pyplot"  # doctest: +SKIP
    """
    if matplotlib.get_backend().lower() in _OFF_SCREEN:
        fig = Figure(**{k: v for k, v in kwargs.items() if k in _FIGURE_ARGUMENTS})
        FigureCanvasAgg(fig)
        grid = {k: v for k, v in kwargs.items() if k not in _FIGURE_ARGUMENTS}
        return fig, fig.subplots(nrows, ncols, **grid)
    return plt.subplots(nrows, ncols, **kwargs)


_FIGURE_ARGUMENTS = {"figsize", "dpi", "layout", "facecolor", "edgecolor", "frameon"}
# matplotlib's non-interactive backends (backend_registry's NON_INTERACTIVE list, 3.9+)
_OFF_SCREEN = {"agg", "cairo", "pdf", "pgf", "ps", "svg", "template"}


def _axes(ax: Axes | None, ncols: int = 1, width: float = 4.5) -> tuple[Figure, list[Axes]]:
    if ax is None:
        fig, axes = new_figure(1, ncols, figsize=(width * ncols, 3.2), layout="constrained")
        return fig, list(np.atleast_1d(axes))
    axes = list(np.atleast_1d(ax))
    if len(axes) != ncols:
        raise ValueError(f"ax must hold {ncols} axes for this plot, got {len(axes)}")
    return axes[0].figure, axes


def canvas_png(canvas: FigureCanvasAgg) -> bytes:
    """What an Agg canvas has drawn, as PNG bytes, fast: the live panels call this every redraw.

    Light compression (level 1) and no alpha channel: a few ms instead of ``savefig``'s tens.

    Example:
        >>> fig = Figure(figsize=(1, 1), dpi=10)
        >>> canvas = FigureCanvasAgg(fig)
        >>> canvas.draw()
        >>> canvas_png(canvas)[:4]
        b'\\x89PNG'
    """
    width, height = canvas.get_width_height()
    image = PIL.Image.frombuffer("RGBA", (width, height), canvas.buffer_rgba())
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="png", compress_level=1)
    return buffer.getvalue()


def _check_history(history: History) -> None:
    if not isinstance(history, History):
        raise TypeError(f"history must be a fedlab History, got {type(history).__name__}")


_X_AXES = {"round": "round", "megabytes": "megabytes sent (down + up)"}


def _x_values(history: History, x: str) -> np.ndarray:
    """The x values for ``x="round"`` or ``x="megabytes"`` (cumulative, from the History)."""
    if x not in _X_AXES:
        raise ValueError(f"x must be one of {sorted(_X_AXES)}, got {x!r}")
    return history.round if x == "round" else history.megabytes_sent


def plot_loss(
    history: History,
    ax: Axes | None = None,
    label: str | None = None,
    legend: bool = True,
    x: str = "round",
) -> Drawn:
    """Training loss (clients, weighted) and global test loss per round.

    ``legend=False`` leaves the legend to the caller (the Dashboard draws its own, cached).
    ``x="megabytes"`` puts the megabytes sent so far on the x axis instead of the round.

    Example:
        >>> drawn = plot_loss(history)  # doctest: +SKIP
    """
    _check_history(history)
    fig, (ax,) = _axes(ax)
    prefix = f"{label}: " if label else ""
    xs, train, test = _x_values(history, x), history.train_loss, history.test_loss
    (line,) = ax.plot(xs, train, label=f"{prefix}train (clients)")
    ax.plot(xs, test, "--", color=line.get_color(), label=f"{prefix}test (global)")
    ax.set(xlabel=_X_AXES[x], ylabel="cross-entropy loss", title="Loss")
    if legend:
        ax.legend(fontsize="small")
    return Drawn(fig, (ax,), {x: xs, "train_loss": train, "test_loss": test})


def plot_accuracy(
    history: History,
    ax: Axes | None = None,
    label: str | None = None,
    legend: bool = True,
    x: str = "round",
) -> Drawn:
    """Global model's test accuracy per round (``legend=False``: no legend drawn).

    ``x="megabytes"``: accuracy against the megabytes sent so far (``History.megabytes_sent``),
    so that methods with different costs per round are compared fairly.

    Example:
        >>> drawn = plot_accuracy(history, label="FedAvg")  # doctest: +SKIP
    """
    _check_history(history)
    fig, (ax,) = _axes(ax)
    xs, acc = _x_values(history, x), history.test_accuracy
    ax.plot(
        xs, acc, label=label or history.config.get("algorithm", {}).get("name", "test accuracy")
    )
    ax.set(xlabel=_X_AXES[x], ylabel="test accuracy", title="Accuracy", ylim=(0, 1))
    if legend:
        ax.legend(fontsize="small")
    return Drawn(fig, (ax,), {x: xs, "test_accuracy": acc})


def plot_history(
    history: History, axes: Sequence[Axes] | None = None, label: str | None = None
) -> Drawn:
    """Loss and accuracy side by side (two axes).

    Example:
        >>> plot_history(fedlab.simulate(...))  # doctest: +SKIP
    """
    fig, (ax_loss, ax_acc) = _axes(axes, ncols=2)
    loss = plot_loss(history, ax_loss, label)
    acc = plot_accuracy(history, ax_acc, label)
    return Drawn(fig, (ax_loss, ax_acc), {**loss.data, **acc.data})


def plot_drift(history: History, axes: Sequence[Axes] | None = None, legend: bool = True) -> Drawn:
    """Client drift per round: each client's ‖w_k − w‖ (dots), mean and max; and update cosines.

    ``legend=False`` leaves the legends to the caller.

    Example:
        >>> plot_drift(history)  # doctest: +SKIP
    """
    _check_history(history)
    fig, (ax_drift, ax_cos) = _axes(axes, ncols=2)
    rounds = history.round
    client_rounds = np.concatenate([[r.round] * len(r.clients) for r in history.rounds] or [[]])
    client_drift = np.concatenate([r.client_drift for r in history.rounds] or [[]])
    cosine = np.concatenate([r.update_cosine for r in history.rounds] or [[]])
    cosine_mean = history.update_cosine_mean
    ax_drift.scatter(
        client_rounds, client_drift, s=6, alpha=0.35, color="tab:gray", label="each client"
    )
    ax_drift.plot(rounds, history.drift_mean, label="mean")
    ax_drift.plot(rounds, history.drift_max, "--", label="max")
    ax_drift.set(xlabel="round", ylabel="‖w_k − w_global‖₂", title="Client drift")
    ax_cos.scatter(client_rounds, cosine, s=6, alpha=0.35, color="tab:gray", label="each client")
    ax_cos.plot(rounds, cosine_mean, color="tab:purple", label="mean")
    ax_cos.axhline(0.0, color="black", lw=0.5)
    ax_cos.set(xlabel="round", ylabel="cos(Δ_k, Δ)", title="Update agreement", ylim=(-1.05, 1.05))
    if legend:
        ax_drift.legend(fontsize="small")
        ax_cos.legend(fontsize="small")
    data = {
        "round": rounds,
        "client_round": client_rounds,
        "client_drift": client_drift,
        "drift_mean": history.drift_mean,
        "drift_max": history.drift_max,
        "update_cosine": cosine,
        "cosine_mean": cosine_mean,
    }
    return Drawn(fig, (ax_drift, ax_cos), data)


def _check_split(split) -> None:
    if not hasattr(split, "label_counts") or not hasattr(split, "client_indices"):
        raise TypeError(f"split must be a fedlab ClientSplit, got {type(split).__name__}")


def plot_label_distribution(
    split, ax: Axes | None = None, kind: str = "bars", normalize: bool = False
) -> Drawn:
    """Which labels each client holds: stacked bars per client, or a clients × classes heatmap.

    ``normalize=True`` shows each client's label *proportions* instead of counts.

    Example:
        >>> plot_label_distribution(partition.iid(digits.y_train, 10), kind="heatmap")  # doctest: +SKIP
    """
    _check_split(split)
    if kind not in ("bars", "heatmap"):
        raise ValueError(f"kind must be one of ['bars', 'heatmap'], got {kind!r}")
    values = split.label_distribution() if normalize else split.label_counts.astype(float)
    fig, (ax,) = _axes(ax, width=6.0)
    clients = np.arange(split.num_clients)
    if kind == "bars":
        colors = plt.get_cmap("tab10" if split.num_classes <= 10 else "tab20")
        bottom = np.zeros(split.num_clients)
        for c in range(split.num_classes):
            ax.bar(
                clients,
                values[:, c],
                bottom=bottom,
                color=colors(c % colors.N),
                label=str(c),
                width=0.85,
            )
            bottom += values[:, c]
        ax.set(xlabel="client", ylabel="share of examples" if normalize else "examples")
        if split.num_classes <= 20:
            ax.legend(
                title="label",
                fontsize="x-small",
                ncols=2,
                loc="upper left",
                bbox_to_anchor=(1.0, 1.0),
            )
    else:
        image = ax.imshow(
            values.T, aspect="auto", cmap="viridis", origin="lower", interpolation="nearest"
        )
        ax.figure.colorbar(image, ax=ax, label="share" if normalize else "examples")
        ax.set(xlabel="client", ylabel="label")
    ax.set_title(f"Labels per client ({split.scheme})")
    return Drawn(fig, (ax,), {"client": clients, "values": values})


def plot_client_sizes(split, ax: Axes | None = None, bins: int = 20) -> Drawn:
    """Histogram of how many examples each client holds.

    Example:
        >>> plot_client_sizes(split)  # doctest: +SKIP
    """
    _check_split(split)
    fig, (ax,) = _axes(ax)
    sizes = split.sizes
    ax.hist(sizes, bins=bins, color="tab:blue", edgecolor="white")
    ax.set(xlabel="examples on a client", ylabel="clients", title=f"Client sizes ({split.scheme})")
    return Drawn(fig, (ax,), {"sizes": sizes})


def plot_client_samples(
    dataset, split, clients: Sequence[int] | None = None, per_client: int = 6, seed: int = 0
) -> Drawn:
    """A grid of example images: one row per client (first 5 by default), ``per_client`` columns.

    Shows what feature skew looks like: same digits, differently rotated / lit on each client.

    Example:
        >>> skewed, split = partition.feature_skew(digits, 5)  # doctest: +SKIP
        >>> plot_client_samples(skewed, split)  # doctest: +SKIP
    """
    _check_split(split)
    if getattr(dataset, "image_shape", None) is None:
        raise ValueError(
            "plot_client_samples needs a dataset of images (dataset.image_shape must be set)"
        )
    clients = (
        list(range(min(5, split.num_clients))) if clients is None else [int(k) for k in clients]
    )
    for k in clients:
        if not 0 <= k < split.num_clients:
            raise ValueError(f"clients must be ids in [0, {split.num_clients - 1}], got {k}")
    rng = np.random.default_rng(seed)
    picks = [
        rng.choice(
            split.client_indices[k],
            size=min(per_client, len(split.client_indices[k])),
            replace=False,
        )
        for k in clients
    ]
    fig, axes = new_figure(
        len(clients), per_client, figsize=(1.0 * per_client, 1.05 * len(clients)), squeeze=False
    )
    height, width = dataset.image_shape[:2]
    for row, (k, chosen) in enumerate(zip(clients, picks, strict=True)):
        for col, ax in enumerate(axes[row]):
            ax.set_xticks([])
            ax.set_yticks([])
            if col < len(chosen):
                ax.imshow(
                    dataset.x_train[chosen[col]].reshape(height, width),
                    cmap="gray_r",
                    vmin=0,
                    vmax=1,
                )
                ax.set_title(str(dataset.y_train[chosen[col]]), fontsize=8, pad=2)
        axes[row][0].set_ylabel(f"client {k}", fontsize=8)
    return Drawn(
        fig,
        tuple(axes.ravel()),
        {"client": np.array(clients), "indices": np.array(picks, dtype=object)},
    )


def _check_runs(name: str, runs: object) -> None:
    if not isinstance(runs, Mapping):
        raise TypeError(f"{name} must be a dict of run name -> values, got {type(runs).__name__}")
    if not runs:
        raise ValueError(f"{name} must hold at least one run, got an empty {type(runs).__name__}")


def _client_accuracies(name: str, values: ArrayLike) -> np.ndarray:
    """One run's per-client accuracies, checked: 1-D, in [0, 1], ``nan`` left out, at least one."""
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"{name} must be a 1-D array of per-client accuracies, got {type(values).__name__}"
        ) from error
    if array.ndim != 1:
        raise ValueError(
            f"{name} must be a 1-D array of per-client accuracies (e.g. one row of "
            f"History.client_accuracy()), got shape {array.shape}"
        )
    array = array[~np.isnan(array)]
    if len(array) == 0:
        raise ValueError(f"{name} must hold at least one accuracy that is not nan")
    if np.any((array < 0) | (array > 1)):
        raise ValueError(f"{name} must hold accuracies in [0, 1], got {array.min()}..{array.max()}")
    return array


def plot_client_accuracy(
    runs: Mapping[str, ArrayLike], ax: Axes | None = None, legend: bool = True
) -> Drawn:
    """How well each client is served: per-client accuracies of several models, worst to best.

    ``runs`` maps a name to one accuracy per client (``nan`` entries, clients not evaluated, are
    left out), e.g. ``{"global": ..., "personalised": ..., "local only": ...}``. Each run is one
    step curve: its clients sorted from worst to best, client *i* of *n* at x = (i + ½)/n, so
    runs with different numbers of clients share the x axis (0: the worst client, 1: the best).
    A flat, high curve is a model that is fair as well as accurate; a curve that dives on the
    left leaves some clients behind. The run's mean (:func:`fedlab.metrics.fairness`) is a thin
    dotted line across the plot, its worst-10 % mean a thick bar over those worst clients, and
    both numbers are in the legend. ``legend=False`` leaves the legend to the caller.

    ``data`` holds, per run ``name``: ``"name/rank"`` and ``"name/accuracy"`` (the curve, sorted)
    and ``"name/mean"``, ``"name/worst10"`` (0-d arrays).

    Example:
        >>> drawn = plot_client_accuracy({"global": [0.9, np.nan, 0.6, 0.7, 0.8]})
        >>> drawn.data["global/accuracy"].tolist(), drawn.data["global/rank"].tolist()
        ([0.6, 0.7, 0.8, 0.9], [0.125, 0.375, 0.625, 0.875])
        >>> drawn.axes[0].get_legend().get_texts()[0].get_text()
        'global: mean 0.75, worst 10 % 0.60'
        >>> plt.close(drawn.fig)
    """
    _check_runs("runs", runs)
    checked = {name: _client_accuracies(f"runs[{name!r}]", v) for name, v in runs.items()}
    fig, (ax,) = _axes(ax)
    data: dict[str, np.ndarray] = {}
    for name, values in checked.items():
        accuracy = np.sort(values)
        n = len(accuracy)
        rank = (np.arange(n) + 0.5) / n
        stats = fairness(accuracy)
        num_worst = max(1, int(np.ceil(0.1 * n)))  # the clients fairness()'s worst10 averages
        (line,) = ax.plot(
            rank,
            accuracy,
            drawstyle="steps-mid",
            marker="o" if n <= 50 else None,
            markersize=3,
            label=f"{name}: mean {stats['mean']:.2f}, worst 10 % {stats['worst10']:.2f}",
        )
        color = line.get_color()
        ax.axhline(stats["mean"], color=color, linestyle=":", linewidth=1, alpha=0.8)
        ax.plot(
            [0, num_worst / n],
            [stats["worst10"]] * 2,
            color=color,
            linewidth=4,
            alpha=0.45,
            solid_capstyle="butt",
        )
        data[f"{name}/rank"] = rank
        data[f"{name}/accuracy"] = accuracy
        data[f"{name}/mean"] = np.array(stats["mean"])
        data[f"{name}/worst10"] = np.array(stats["worst10"])
    ax.set(
        xlabel="clients ranked by accuracy, worst → best (fraction)",
        ylabel="accuracy on own test set",
        title="Accuracy per client",
        xlim=(0, 1),
        ylim=(0, 1),
    )
    if legend:
        ax.legend(fontsize="small", loc="lower right")
    return Drawn(fig, (ax,), data)


_STATS = {
    "mean": ("mean", "-"),
    "median": ("median", "-."),
    "worst10": ("worst 10 %", "--"),
    "std": ("std", ":"),
}
_KINDS = {"personal": "personalised models", "global": "global model"}


def plot_fairness(
    histories: Mapping[str, History | tuple[History, str]],
    kind: str = "personal",
    stats: Sequence[str] = ("mean", "worst10"),
    ax: Axes | None = None,
    x: str = "round",
    legend: bool = True,
) -> Drawn:
    """Fairness over training: statistics of the per-client accuracies of several runs per round.

    For each run, :meth:`History.fairness` of its ``kind`` of accuracy (``"personal"``: each
    client's personalised model; ``"global"``: the global model on each client's own test set):
    one colour per run, one line style per statistic (``mean`` solid, ``median`` dash-dot,
    ``worst10`` dashed, ``std`` dotted). Rounds without per-client evaluation are skipped: the
    line joins the evaluated rounds. To give one run another kind, pass ``(history, kind)``
    instead of the History, e.g. ``{"FedAvg": (fedavg, "global"), "Ditto": ditto}`` (runs of
    mixed kinds carry their kind in the legend). ``x="megabytes"`` puts the megabytes sent so far
    on the x axis; ``legend=False`` leaves the legend to the caller.

    ``data`` holds, per run ``name``: ``"name/round"`` (or ``"name/megabytes"``), the evaluated
    rounds' x values, and ``"name/<stat>"`` for each statistic drawn.

    Example:
        >>> from fedlab.history import RoundRecord
        >>> r = RoundRecord(1, (0,), (0.5,), (5,), 0.5, 0.4, 0.9, (0.1,), 0.1, 0.1, (1.0,), 8, 8,
        ...                 0.01, client_personal_accuracy=(0.9, 0.5))
        >>> drawn = plot_fairness({"Ditto": History(rounds=[r])})
        >>> drawn.data["Ditto/mean"].tolist(), drawn.data["Ditto/worst10"].tolist()
        ([0.7], [0.5])
        >>> plt.close(drawn.fig)
    """
    _check_runs("histories", histories)
    check_choice("kind", kind, _KINDS)
    check_choice("x", x, _X_AXES)
    stats = [stats] if isinstance(stats, str) else list(stats)
    if not stats:
        raise ValueError(f"stats must name at least one of {list(_STATS)}, got none")
    for stat in stats:
        check_choice("stats", stat, _STATS)
    runs: dict[str, tuple[str, np.ndarray, dict[str, np.ndarray]]] = {}
    for name, value in histories.items():
        history, run_kind = value if isinstance(value, tuple) else (value, kind)
        if not isinstance(history, History):
            raise TypeError(
                f"histories[{name!r}] must be a fedlab History or a (History, kind) tuple, "
                f"got {type(value).__name__}"
            )
        check_choice(f"kind of histories[{name!r}]", run_kind, _KINDS)
        table = history.fairness(run_kind)
        if np.isnan(table["mean"]).all():
            raise ValueError(
                f"histories[{name!r}] has no per-client {run_kind} accuracy in any round "
                "(was the split made with test_indices?)"
            )
        runs[name] = run_kind, _x_values(history, x), table
    mixed = len({run_kind for run_kind, _, _ in runs.values()}) > 1
    fig, (ax,) = _axes(ax)
    data: dict[str, np.ndarray] = {}
    for name, (run_kind, xs, table) in runs.items():
        evaluated = ~np.isnan(table["mean"])
        data[f"{name}/{x}"] = xs[evaluated]
        color = None
        for stat in stats:
            label, style = _STATS[stat]
            values = table[stat][evaluated]
            (line,) = ax.plot(
                xs[evaluated],
                values,
                style,
                color=color,
                marker=".",
                label=f"{name} ({run_kind}): {label}" if mixed else f"{name}: {label}",
            )
            color = line.get_color()
            data[f"{name}/{stat}"] = values
    title = "Fairness across clients"
    if not mixed:
        title += f" ({_KINDS[next(iter(runs.values()))[0]]})"
    ax.set(
        xlabel=_X_AXES[x],
        ylabel="accuracy on clients' own test sets",
        title=title,
        ylim=(0, 1),
    )
    if legend:
        ax.legend(fontsize="small")
    return Drawn(fig, (ax,), data)


# --- poisoning and robust aggregation (15_poisoning_and_robust_aggregation) ------------------------


def _final_accuracy(name: str, value: object) -> float:
    """One run's final test accuracy for :func:`plot_breakdown`: a History's last round, a
    number as it is, ``nan`` for a run that left no usable model (``None``, ``nan`` or the
    :class:`~fedlab.rounds.DivergenceError` it raised)."""
    from fedlab.rounds import DivergenceError

    if value is None or isinstance(value, DivergenceError):
        return float("nan")
    if isinstance(value, History):
        if len(value) == 0:
            raise ValueError(f"{name} is a History with no rounds: it has no final accuracy")
        return float(value.test_accuracy[-1])
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        raise TypeError(
            f"{name} must be a History, an accuracy, or None / a DivergenceError for a run that "
            f"diverged; got {type(value).__name__}"
        )
    accuracy = float(value)
    if not np.isnan(accuracy) and not 0.0 <= accuracy <= 1.0:
        raise ValueError(f"{name} must be an accuracy in [0, 1], got {accuracy}")
    return accuracy


def plot_breakdown(
    results: Mapping[str, Mapping[int, object]],
    ax: Axes | None = None,
    chance: float | None = None,
    legend: bool = True,
) -> Drawn:
    """Where each defence breaks: final test accuracy against the number of attackers, one line
    per defence.

    ``results`` maps a defence's name to ``{number of attackers: run}``, a run being a
    :class:`~fedlab.history.History` (its last round's test accuracy is drawn), an accuracy, or
    — for a run that left no usable model — ``None``, ``nan`` or the
    :class:`~fedlab.rounds.DivergenceError` it raised. Such a run is drawn as a cross on the
    x axis (accuracy 0 on the plot; ``nan`` in ``data``), joined to the line: that is where the
    defence broke. ``chance`` draws a dotted line at a uniform guess's accuracy (0.1 for ten
    classes). ``legend=False`` leaves the legend to the caller.

    ``data`` holds, per defence ``name``: ``"name/attackers"`` (sorted), ``"name/accuracy"``
    (``nan`` where the run diverged) and ``"name/diverged"`` (booleans).

    Example:
        >>> drawn = plot_breakdown({"mean": {0: 0.93, 1: None}, "median": {1: 0.92, 0: 0.93}})
        >>> drawn.data["mean/accuracy"].tolist(), drawn.data["mean/diverged"].tolist()
        ([0.93, nan], [False, True])
        >>> drawn.data["median/attackers"].tolist()
        [0, 1]
        >>> plt.close(drawn.fig)
    """
    _check_runs("results", results)
    if chance is not None and not 0.0 <= float(chance) <= 1.0:
        raise ValueError(f"chance must be an accuracy in [0, 1] or None, got {chance!r}")
    lines: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name, runs in results.items():
        if not isinstance(runs, Mapping) or not runs:
            raise TypeError(
                f"results[{name!r}] must be a non-empty dict of number of attackers -> run, got "
                f"{type(runs).__name__} {runs!r:.60}"
            )
        counts = sorted(runs)
        for count in counts:
            if isinstance(count, bool) or not isinstance(count, int | np.integer) or count < 0:
                raise ValueError(
                    f"results[{name!r}] must be keyed by numbers of attackers (integers >= 0), "
                    f"got {count!r}"
                )
        accuracy = [_final_accuracy(f"results[{name!r}][{c}]", runs[c]) for c in counts]
        lines[name] = np.array(counts, dtype=int), np.array(accuracy, dtype=float)
    fig, (ax,) = _axes(ax, width=5.5)
    data: dict[str, np.ndarray] = {}
    for name, (counts, accuracy) in lines.items():
        diverged = np.isnan(accuracy)
        drawn = np.where(diverged, 0.0, accuracy)
        (line,) = ax.plot(counts, drawn, "-", label=name)
        color = line.get_color()
        ax.plot(counts[~diverged], drawn[~diverged], "o", color=color)
        ax.plot(counts[diverged], drawn[diverged], "x", color=color, markersize=9, mew=2)
        data[f"{name}/attackers"] = counts
        data[f"{name}/accuracy"] = accuracy
        data[f"{name}/diverged"] = diverged
    if chance is not None:
        ax.axhline(float(chance), color="gray", linestyle=":", linewidth=1, label="chance")
    every = sorted({int(c) for counts, _ in lines.values() for c in counts})
    ax.set_xticks(every)
    ax.set(
        xlabel="attackers among the round's clients",
        ylabel="final test accuracy (× diverged)",
        title="Where each defence breaks",
        ylim=(-0.03, 1.0),
    )
    if legend:
        ax.legend(fontsize="small")
    return Drawn(fig, (ax,), data)


def plot_backdoor(
    histories: Mapping[str, History],
    ax: Axes | None = None,
    accuracy: bool = True,
    legend: bool = True,
) -> Drawn:
    """A backdoor's success per round (solid), and the clean test accuracy (dashed, same colour),
    for several runs.

    Backdoor success is :attr:`~fedlab.history.RoundRecord.backdoor_success`: the share of the
    triggered test images (true label not the target) the global model classifies as the
    target. A backdoor that succeeds while the clean accuracy stays high is one nobody notices.
    Rounds not evaluated are skipped. ``accuracy=False`` draws the backdoor success alone;
    ``legend=False`` leaves the legend to the caller.

    ``data`` holds, per run ``name``: ``"name/round"`` (the evaluated rounds),
    ``"name/backdoor_success"`` and, with ``accuracy``, ``"name/test_accuracy"``.

    Example:
        >>> from fedlab.history import RoundRecord
        >>> rounds = [RoundRecord(r, (0,), (0.5,), (5,), 0.5, 0.4, 0.9, (0.1,), 0.1, 0.1, (1.0,), 8,
        ...                       8, 0.01, backdoor_success=s) for r, s in [(1, 0.5), (2, 0.75)]]
        >>> drawn = plot_backdoor({"no defence": History(rounds=rounds)})
        >>> drawn.data["no defence/backdoor_success"].tolist()
        [0.5, 0.75]
        >>> plt.close(drawn.fig)
    """
    _check_runs("histories", histories)
    for name, history in histories.items():
        if not isinstance(history, History):
            raise TypeError(
                f"histories[{name!r}] must be a fedlab History, got {type(history).__name__}"
            )
        if np.isnan(history.series("backdoor_success")).all():
            raise ValueError(
                f"histories[{name!r}] has no backdoor success in any round: run it with "
                "attackers=Attackers(Backdoor(...), ...) (fedlab.poisoning)"
            )
    fig, (ax,) = _axes(ax, width=5.5)
    data: dict[str, np.ndarray] = {}
    for name, history in histories.items():
        success = history.series("backdoor_success")
        evaluated = ~np.isnan(success)
        rounds = history.round[evaluated]
        (line,) = ax.plot(rounds, success[evaluated], "-", marker=".", label=f"{name}: backdoor")
        data[f"{name}/round"] = rounds
        data[f"{name}/backdoor_success"] = success[evaluated]
        if accuracy:
            clean = history.test_accuracy[evaluated]
            ax.plot(rounds, clean, "--", color=line.get_color(), label=f"{name}: clean accuracy")
            data[f"{name}/test_accuracy"] = clean
    ax.set(
        xlabel="round",
        ylabel="share of test images",
        title="Backdoor success" + (" and clean accuracy" if accuracy else ""),
        ylim=(-0.03, 1.03),
    )
    if legend:
        ax.legend(fontsize="small")
    return Drawn(fig, (ax,), data)
