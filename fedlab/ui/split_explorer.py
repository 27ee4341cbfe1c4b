"""An interactive panel for client splits (``02_client_splits``).

:class:`SplitExplorer` wires a few ipywidgets controls — the partition scheme, its one parameter,
the number of clients and the seed — to :mod:`fedlab.partition` and :mod:`fedlab.plot`. On every
change it makes the split again, prints its heterogeneity index and mean label entropy, and
redraws the label distribution and the client sizes. The numbers come from the
:class:`~fedlab.partition.ClientSplit`; the panel only shows them.

The plots are drawn into one :class:`matplotlib.figure.Figure`, made once and never registered
with pyplot, and shown as a PNG in an :class:`ipywidgets.Image`, so moving a slider a hundred
times leaves no figures behind and looks the same in every Jupyter front end. Displayed in a
notebook, the panel also leaves that PNG in the cell's output, so GitHub and nbviewer show the
split as it was (:func:`fedlab.controls.panel_bundle`).
"""

from __future__ import annotations

import html
import io
from typing import Any

import ipywidgets as widgets
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from numpy.typing import ArrayLike

from fedlab import partition
from fedlab.controls import checked_slider, panel_bundle
from fedlab.data import Dataset
from fedlab.plot import plot_client_sizes, plot_label_distribution
from fedlab.validate import check_array, check_choice, check_int

SCHEMES = (
    "iid",
    "dirichlet",
    "shards",
    "label_limit",
    "quantity_skew",
    "mixed",
    "feature_skew",
)
"""The schemes in the dropdown (``feature_skew`` only when the data are images)."""

PARAMETER_OF = {
    "iid": None,
    "dirichlet": "alpha",
    "shards": "shards_per_client",
    "label_limit": "classes_per_client",
    "quantity_skew": "sigma",
    "mixed": "similarity",
    "feature_skew": "max_rotation",
}
"""The one parameter slider each scheme uses (``None``: no parameter)."""

_SLIDERS = {  # name: (widget, description, min, max, step); the log slider's are powers of 10
    "alpha": (widgets.FloatLogSlider, "α", -2, 2, 0.1),
    "shards_per_client": (widgets.IntSlider, "shards / client", 1, 10, 1),
    "classes_per_client": (widgets.IntSlider, "classes / client", 1, 10, 1),
    "sigma": (widgets.FloatSlider, "σ", 0.0, 3.0, 0.1),
    "similarity": (widgets.FloatSlider, "similarity s", 0.0, 1.0, 0.05),
    "max_rotation": (widgets.FloatSlider, "max rotation (°)", 0.0, 90.0, 5.0),
    "num_clients": (widgets.IntSlider, "clients", 2, 100, 1),
}

_ERROR_COLOR = "#c62828"


def _summary_line(split: partition.ClientSplit) -> str:
    """The numbers shown under the controls, e.g. ``heterogeneity H = 0.63 · ...``."""
    sizes = split.sizes
    return (
        f"heterogeneity H = {split.heterogeneity():.2f} · "
        f"mean label entropy {split.label_entropy().mean():.2f} bits · "
        f"sizes {sizes.min()}–{sizes.max()}"
    )


class SplitExplorer:
    """A live panel: pick a partition scheme and its parameter, see the clients' labels change.

    Controls: the scheme, one parameter slider per scheme (only the current scheme's is shown:
    α for ``dirichlet`` on a log scale, shards per client, classes per client for
    ``label_limit``, σ for ``quantity_skew``, the IID share for ``mixed``, the largest rotation
    for ``feature_skew``), the number of clients, the seed, and how to draw the labels (stacked
    bars or a heatmap, counts or proportions). Any change re-makes the split with
    :mod:`fedlab.partition` and redraws it. A combination the partitioner refuses (say
    ``dirichlet`` with α = 0.01 and 100 clients, where some client cannot get ``min_size``
    examples) shows the partitioner's message in red and keeps the last valid split on screen.

    Args:
        data: a :class:`~fedlab.data.Dataset` (its training labels are split; ``feature_skew``
            is offered when it holds images) or the labels themselves.
        scheme: the scheme shown first, one of :data:`SCHEMES`.
        num_clients: number of clients, 2 to 100 (at most the number of examples).
        seed: seed of the partitioner.
        alpha: Dirichlet concentration, 0.01 to 100.
        shards_per_client: shards per client, 1 to 10.
        classes_per_client: classes per client for ``label_limit``, 1 to 10 (at most the
            number of classes).
        sigma: lognormal σ of the client sizes for ``quantity_skew``, 0 to 3.
        similarity: share of IID examples for ``mixed``, 0 to 1.
        max_rotation: largest rotation in degrees for ``feature_skew``, 0 to 90.
        kind: ``"bars"`` or ``"heatmap"``, as in :func:`fedlab.plot.plot_label_distribution`.
        normalize: draw label proportions instead of counts.
        min_size: the fewest examples ``dirichlet`` may give a client (its ``min_size``); lower
            it to allow small α with many clients.

    Attributes:
        controls: the control widgets by name (``"scheme"``, ``"alpha"``, ``"num_clients"``, ...);
            set their ``.value`` to drive the panel from code.
        status: the HTML line with the split's numbers, or the error in red.
        image: the PNG image of the plots.
        widget: the whole panel (an ``ipywidgets.VBox``).

    Example:
        >>> import numpy as np
        >>> explorer = SplitExplorer(np.arange(200) % 10, scheme="dirichlet", alpha=0.5, num_clients=5)
        >>> explorer.split.scheme, explorer.split.num_clients
        ('dirichlet(α=0.5)', 5)
        >>> explorer.controls["scheme"].value = "shards"
        >>> explorer.split.scheme
        'shards(2/client)'
        >>> explorer  # in a notebook cell: shows the panel  # doctest: +SKIP
    """

    def __init__(
        self,
        data: Dataset | ArrayLike,
        scheme: str = "dirichlet",
        num_clients: int = 10,
        seed: int = 0,
        alpha: float = 0.5,
        shards_per_client: int = 2,
        classes_per_client: int = 2,
        sigma: float = 1.0,
        similarity: float = 0.2,
        max_rotation: float = 45.0,
        kind: str = "bars",
        normalize: bool = False,
        min_size: int = 10,
    ):
        if isinstance(data, Dataset):
            self._dataset: Dataset | None = data if data.image_shape is not None else None
            labels = data.y_train
        else:
            self._dataset = None
            labels = data
        self._labels = check_array("labels", labels, ndim=1, dtype_kind="iu")
        if len(self._labels) < 2 or self._labels.min() < 0:
            raise ValueError("labels must hold at least two non-negative class ids")
        schemes = [s for s in SCHEMES if s != "feature_skew" or self._dataset is not None]
        check_choice("scheme", scheme, schemes)
        check_choice("kind", kind, ["bars", "heatmap"])
        seed = check_int("seed", seed, low=0)
        self._min_size = check_int("min_size", min_size, low=0)
        given = {
            "alpha": alpha,
            "shards_per_client": shards_per_client,
            "classes_per_client": classes_per_client,
            "sigma": sigma,
            "similarity": similarity,
            "max_rotation": max_rotation,
            "num_clients": num_clients,
        }
        highest = {  # the data cap these two sliders
            "classes_per_client": min(10, int(self._labels.max()) + 1),
            "num_clients": min(100, len(self._labels)),
        }
        self.controls: dict[str, widgets.ValueWidget] = {
            "scheme": widgets.Dropdown(options=schemes, value=scheme, description="scheme")
        }
        for name, (kind_of, description, low, high, step) in _SLIDERS.items():
            spec = (kind_of, description, low, highest.get(name, high), step)
            self.controls[name] = checked_slider(
                name, spec, given[name], style={"description_width": "initial"}
            )
        self.controls["seed"] = widgets.IntText(
            value=seed, description="seed", layout=widgets.Layout(width="150px")
        )
        self.controls["kind"] = widgets.ToggleButtons(
            options=["bars", "heatmap"], value=kind, style={"button_width": "70px"}
        )
        self.controls["normalize"] = widgets.Checkbox(
            value=bool(normalize), description="proportions", indent=False
        )
        self.status = widgets.HTML()
        self.image = widgets.Image(format="png", layout=widgets.Layout(max_width="100%"))
        parameters = [self.controls[name] for name in PARAMETER_OF.values() if name]
        c = self.controls
        self.widget = widgets.VBox(
            [
                widgets.HBox([c["scheme"], c["num_clients"], c["seed"]]),
                widgets.HBox([*parameters, c["kind"], c["normalize"]]),
                self.status,
                self.image,
            ]
        )
        self._figure = Figure(figsize=(10.0, 3.4), layout="constrained")
        FigureCanvasAgg(self._figure)  # draws to PNG without pyplot: no figure to leak
        self._split: partition.ClientSplit | None = None
        self._error: str | None = None
        for control in self.controls.values():
            control.observe(self._update, names="value")
        self._update()
        if self._error is not None:  # bad starting values: say so now, as any function would
            raise ValueError(self._error)

    @property
    def split(self) -> partition.ClientSplit:
        """The split on screen: the current controls' split, or the last valid one (see ``error``)."""
        return self._split

    @property
    def error(self) -> str | None:
        """Why the current controls give no split (the partitioner's message), else ``None``."""
        return self._error

    def _make_split(self) -> partition.ClientSplit:
        """The split the controls ask for, computed by :mod:`fedlab.partition` (may raise ValueError)."""
        scheme = self.controls["scheme"].value
        num_clients = self.controls["num_clients"].value
        seed = self.controls["seed"].value
        name = PARAMETER_OF[scheme]
        value = self.controls[name].value if name else None
        if scheme == "feature_skew":
            _, split = partition.feature_skew(
                self._dataset, num_clients, max_rotation=value, seed=seed
            )
            return split
        kwargs = {name: value} if name else {}
        if scheme == "dirichlet":  # the log slider's 0.50119 is meant as 0.5
            kwargs = {"alpha": float(f"{value:.2g}"), "min_size": self._min_size}
        return partition.PARTITIONERS[scheme](self._labels, num_clients, seed=seed, **kwargs)

    def _update(self, change: Any = None) -> None:
        """Show only the current scheme's slider, re-make the split and redraw (or show the error)."""
        scheme = self.controls["scheme"].value
        for name in filter(None, PARAMETER_OF.values()):
            self.controls[name].layout.display = None if name == PARAMETER_OF[scheme] else "none"
        try:
            split = self._make_split()
        except ValueError as error:
            self._error = str(error)
            kept = " (the plots still show the last valid split)" if self._split else ""
            self.status.value = (
                f'<span style="color:{_ERROR_COLOR}">⚠ {html.escape(self._error)}{kept}</span>'
            )
            return
        self._split, self._error = split, None
        note = " · labels IID, the <i>inputs</i> differ" if scheme == "feature_skew" else ""
        self.status.value = html.escape(_summary_line(split)) + note
        self.image.value = self._draw(split)

    def _draw(self, split: partition.ClientSplit) -> bytes:
        """Redraw the one figure for ``split`` and return it as PNG bytes."""
        fig = self._figure
        fig.clear()  # also removes a heatmap's colorbar
        ax_labels, ax_sizes = fig.subplots(1, 2, width_ratios=[2.4, 1])
        plot_label_distribution(
            split,
            ax=ax_labels,
            kind=self.controls["kind"].value,
            normalize=self.controls["normalize"].value,
        )
        plot_client_sizes(split, ax=ax_sizes)
        ax_sizes.set_title("Client sizes")
        ax_sizes.yaxis.set_major_locator(MaxNLocator(integer=True))  # a count of clients
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=90)
        return buffer.getvalue()

    def __repr__(self) -> str:
        """The split on screen, e.g. ``SplitExplorer(dirichlet(α=0.5), 10 clients, H = 0.63)``."""
        split = self._split
        refused = "" if self._error is None else f"; refused: {self._error}"
        return (
            f"SplitExplorer({split.scheme}, {split.num_clients} clients, "
            f"H = {split.heterogeneity():.2f}{refused})"
        )

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict:
        """The panel for live front ends, plus the plots as a PNG for static viewers."""
        return panel_bundle(self.widget, self.image.value, repr(self))


__all__ = ["PARAMETER_OF", "SCHEMES", "SplitExplorer"]
