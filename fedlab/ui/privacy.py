"""A live panel for DP-FedAvg's knobs (``11_differential_privacy``).

:class:`PrivacyPanel` has sliders for the noise multiplier z, the clipping norm S, the expected
clients per round K (so q = K/N) and the number of rounds. Every change prints ε at once
(:func:`fedlab.privacy.epsilon`, no training) and the noise's standard deviation on the
averaged update, z·S/K. The **Run** button trains DP-FedAvg with those settings and draws its
test accuracy beside a non-private FedAvg baseline (same clients, same local training).

The plot is drawn into one :class:`matplotlib.figure.Figure` that pyplot never sees and shown
as a PNG, so pressing Run many times leaves no figures behind. Until the first Run the plot is
the empty accuracy axes over the sliders' T rounds, with the settings and their ε written on
them and a note to press Run; displayed in a notebook, the panel leaves that PNG in the cell's
output, so GitHub and nbviewer show the panel as it was saved, run or not.
"""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as widgets
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from fedlab.algorithms import FedAvg
from fedlab.controls import checked_slider, panel_bundle
from fedlab.data import Dataset
from fedlab.engine import simulate
from fedlab.history import History
from fedlab.models import ModelFn, model_fn
from fedlab.partition import ClientSplit
from fedlab.plot import canvas_png
from fedlab.privacy import DEFAULT_DELTA, DPFedAvg, epsilon
from fedlab.validate import check_float, check_int


def _sliders(num_clients: int) -> dict[str, tuple]:
    """name: (widget, description, min, max, step); the log slider's are powers of 10."""
    return {
        "noise_multiplier": (widgets.FloatSlider, "noise z", 0.0, 4.0, 0.05),
        "clip_norm": (widgets.FloatLogSlider, "clip S", -2, 1, 0.1),
        "clients_per_round": (widgets.IntSlider, "clients / round K", 1, num_clients, 1),
        "num_rounds": (widgets.IntSlider, "rounds T", 1, 100, 1),
    }


class PrivacyPanel:
    """Move z, S, K (q = K/N) and T; see ε at once, and DP-FedAvg's accuracy after **Run**.

    Args:
        data: the dataset (e.g. ``fedlab.load_digits()``).
        split: its client split; user-level DP needs many clients (100 or more).
        noise_multiplier: z, 0 to 4.
        clip_norm: S, 0.01 to 10.
        clients_per_round: K, the expected clients per round, 1 to N.
        num_rounds: T, 1 to 100.
        delta: the δ at which ε is shown.
        client_lr, local_epochs, batch_size: the clients' local training (both runs).
        model: a ``model_fn`` (default: the MLP of ``fedlab.models.model_fn("mlp", 10)``).
        seed: seed of both runs.

    Attributes:
        controls: the sliders by name (``"noise_multiplier"``, ``"clip_norm"``,
            ``"clients_per_round"``, ``"num_rounds"``); set ``.value`` to drive it.
        status: the HTML line with ε and the noise on the average.
        button: the Run button (or call :meth:`run`).
        image: the PNG of the accuracy curves (before the first Run: the empty axes, with the
            sliders' settings and ε and a note to press Run).
        widget: the whole panel (an ``ipywidgets.VBox``).
        history, baseline: the last DP-FedAvg and FedAvg runs (``None`` before the first Run).

    Example:
        >>> panel = PrivacyPanel(digits, split, noise_multiplier=1.0, num_rounds=10)  # doctest: +SKIP
        >>> panel.epsilon  # doctest: +SKIP
        >>> panel.run()  # trains both runs and draws them  # doctest: +SKIP
    """

    def __init__(
        self,
        data: Dataset,
        split: ClientSplit,
        noise_multiplier: float = 1.0,
        clip_norm: float = 0.5,
        clients_per_round: int = 40,
        num_rounds: int = 20,
        delta: float = DEFAULT_DELTA,
        client_lr: float = 0.2,
        local_epochs: int = 5,
        batch_size: int | None = None,
        model: ModelFn | None = None,
        seed: int = 0,
    ):
        if not isinstance(split, ClientSplit):
            raise TypeError(f"split must be a fedlab ClientSplit, got {type(split).__name__}")
        self._data, self._split = data, split
        self._num_clients = split.num_clients
        self._delta = check_float("delta", delta, low=0.0, high=1.0, low_inclusive=False)
        self._training = {
            "client_lr": check_float("client_lr", client_lr, low=0.0, low_inclusive=False),
            "local_epochs": check_int("local_epochs", local_epochs, low=1),
            "batch_size": batch_size,
        }
        self._model = model if model is not None else model_fn("mlp", 10)
        self._seed = check_int("seed", seed, low=0)
        given = {
            "noise_multiplier": noise_multiplier,
            "clip_norm": clip_norm,
            "clients_per_round": clients_per_round,
            "num_rounds": num_rounds,
        }
        style = {"description_width": "initial"}
        self.controls: dict[str, widgets.ValueWidget] = {
            name: checked_slider(name, spec, given[name], style=style)
            for name, spec in _sliders(self._num_clients).items()
        }
        self.status = widgets.HTML()
        self.button = widgets.Button(description="Run", button_style="primary")
        self.button.on_click(lambda _: self.run())
        self.image = widgets.Image(format="png", layout=widgets.Layout(max_width="100%"))
        c = self.controls
        self.widget = widgets.VBox(
            [
                widgets.HBox([c["noise_multiplier"], c["clip_norm"]]),
                widgets.HBox([c["clients_per_round"], c["num_rounds"], self.button]),
                self.status,
                self.image,
            ]
        )
        self._figure = Figure(figsize=(6.5, 3.0), layout="constrained")
        FigureCanvasAgg(self._figure)  # draws to PNG without pyplot: no figure to leak
        self.history: History | None = None
        self.baseline: History | None = None
        self._baselines: dict[tuple[int, int], History] = {}
        for control in self.controls.values():
            control.observe(self._update, names="value")
        self._update()

    @property
    def sampling_rate(self) -> float:
        """q = K / N."""
        return self.controls["clients_per_round"].value / self._num_clients

    @property
    def epsilon(self) -> float:
        """ε after T rounds at the panel's δ for the sliders' z and q (``inf`` when z = 0)."""
        c = self.controls
        return epsilon(
            c["noise_multiplier"].value, self.sampling_rate, c["num_rounds"].value, self._delta
        )

    @property
    def noise_std(self) -> float:
        """Standard deviation of the noise on the averaged update, per coordinate: z·S/K."""
        c = self.controls
        return c["noise_multiplier"].value * c["clip_norm"].value / c["clients_per_round"].value

    def _settings_text(self) -> str:
        """The sliders' settings and their ε, e.g. ``z=1, S=0.5, K=40/100, T=20: ε = 3.49``."""
        c = self.controls
        return (
            f"z={c['noise_multiplier'].value:g}, S={c['clip_norm'].value:.3g}, "
            f"K={c['clients_per_round'].value}/{self._num_clients}, T={c['num_rounds'].value}: "
            f"ε = {self.epsilon:.2f} at δ = {self._delta:g}"
        )

    def _update(self, change: Any = None) -> None:
        """Print ε and the noise on the average for the current sliders (and, before the first
        Run, draw them on the empty plot)."""
        self.status.value = html.escape(
            f"ε = {self.epsilon:.2f} at δ = {self._delta:g} · q = K/N = {self.sampling_rate:.3f}"
            f" · noise std on the average z·S/K = {self.noise_std:.4f}"
            + ("" if self.history is None else " · press Run to train with these settings")
        )
        if self.history is None:
            self._draw()

    def run(self) -> History:
        """Train DP-FedAvg (and, once per K and T, FedAvg) with the sliders' settings; redraw."""
        c = self.controls
        k, rounds = c["clients_per_round"].value, c["num_rounds"].value
        common = {"clients_per_round": k, "seed": self._seed, "progress": False}
        algo = DPFedAvg(
            noise_multiplier=c["noise_multiplier"].value,
            clip_norm=c["clip_norm"].value,
            delta=self._delta,
            **self._training,
        )
        self.history = simulate(algo, self._model, self._data, self._split, rounds, **common)
        if (k, rounds) not in self._baselines:
            self._baselines[(k, rounds)] = simulate(
                FedAvg(**self._training), self._model, self._data, self._split, rounds, **common
            )
        self.baseline = self._baselines[(k, rounds)]
        self._update()
        self.status.value += html.escape(
            f" · last run: accuracy {self.history.test_accuracy[-1]:.3f} (FedAvg"
            f" {self.baseline.test_accuracy[-1]:.3f})"
        )
        self._draw()
        return self.history

    def _draw(self) -> None:
        """The two accuracy curves (before the first Run: the empty axes and the settings), as a
        PNG."""
        fig = self._figure
        fig.clear()
        ax = fig.subplots()
        ax.set(xlabel="round", ylabel="test accuracy", ylim=(0, 1))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # rounds are whole numbers
        if self.history is None:
            ax.set_xlim(0, self.controls["num_rounds"].value)
            ax.text(
                0.5,
                0.5,
                f"not run yet: press Run to train DP-FedAvg\nwith {self._settings_text()}\n"
                "beside FedAvg (no privacy)",
                ha="center",
                va="center",
                color="0.35",
                transform=ax.transAxes,
            )
        else:
            eps = self.history.epsilon[-1]
            for history, label in (
                (self.baseline, "FedAvg (no privacy)"),
                (self.history, f"DP-FedAvg (ε = {eps:.2f})"),
            ):
                ax.plot(history.round, history.test_accuracy, label=label)
            ax.legend(fontsize="small", loc="lower right")
        fig.canvas.draw()
        self.image.value = canvas_png(fig.canvas)

    def __repr__(self) -> str:
        """The sliders and the last run, e.g. ``PrivacyPanel(z=1, S=0.5, ...: not run yet)``."""
        if self.history is None:
            shown = "not run yet"
        else:
            shown = (
                f"last run: DP-FedAvg accuracy {self.history.test_accuracy[-1]:.3f} at ε = "
                f"{self.history.epsilon[-1]:.2f}, FedAvg {self.baseline.test_accuracy[-1]:.3f}"
            )
        return f"PrivacyPanel({self._settings_text()}; {shown})"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict:
        """The panel for live front ends, plus the plot as a PNG for static viewers."""
        return panel_bundle(self.widget, self.image.value, repr(self))


__all__ = ["PrivacyPanel"]
