"""Plots of a :class:`~fedlab.history.History` (``01_one_round_by_hand``, ``04_client_drift``).

Every function takes ``ax=None`` (a new figure is made when it is ``None``), reads numbers that
were computed elsewhere, and returns a :class:`Drawn` record: the figure, the axes and the exact
arrays it drew, so a test or a widget can check what is on screen.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field

import matplotlib.pyplot as plt
import numpy as np
import PIL.Image
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from fedlab.history import History


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


def _axes(ax: Axes | None, ncols: int = 1, width: float = 4.5) -> tuple[Figure, list[Axes]]:
    if ax is None:
        fig, axes = plt.subplots(1, ncols, figsize=(width * ncols, 3.2), layout="constrained")
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
    fig, axes = plt.subplots(
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
