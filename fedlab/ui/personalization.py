"""A live panel for personalisation under heterogeneous data (``13_personalisation_and_multitask``).

:class:`PersonalizationPanel` has sliders for the Dirichlet concentration α of the client split
(small α: each client sees few labels) and Ditto's λ (how strongly each personal model is pulled
towards the global one), and the number of rounds. The **Run** button gives every client a
held-out test set of its own (:func:`fedlab.partition.hold_out`), trains Ditto(λ) and local-only
training with the same settings, and draws how well each client is served: on the left every
client's accuracy at the last round — the global FedAvg model (Ditto trains it alongside), the
Ditto personal models and the local-only models — sorted worst to best
(:func:`fedlab.plot.plot_client_accuracy`); on the right the mean and worst-10 % accuracy over
the rounds (:func:`fedlab.plot.plot_fairness`). The status line prints those numbers.

The plots are drawn into one :class:`matplotlib.figure.Figure` that pyplot never sees and shown
as a PNG, so pressing Run many times leaves no figures behind. Until the first Run the plots are
their empty axes with the sliders' settings and a note to press Run; displayed in a notebook,
the panel leaves that PNG in the cell's output, so GitHub and nbviewer show it as it was saved.
"""

from __future__ import annotations

import html
import threading
from typing import Any

import ipywidgets as widgets
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from fedlab.controls import checked_slider, panel_bundle, round_log
from fedlab.data import Dataset
from fedlab.engine import DivergenceError, Simulation, simulate
from fedlab.history import History
from fedlab.metrics import fairness
from fedlab.models import ModelFn, model_fn
from fedlab.partition import ClientSplit, dirichlet, hold_out
from fedlab.personalization import Ditto, LocalOnly
from fedlab.plot import canvas_png, plot_client_accuracy, plot_fairness
from fedlab.validate import check_float, check_int

_ERROR_COLOR = "#c62828"
_LAYOUT = {"left": 0.06, "right": 0.99, "top": 0.92, "bottom": 0.14}
"""Where the two plots go: a fixed layout, as "constrained" would cost about half a second per Run."""


def _sliders() -> dict[str, tuple]:
    """name: (widget, description, min, max, step); the log sliders' are powers of 10."""
    return {
        "alpha": (widgets.FloatLogSlider, "Dirichlet α", -2, 2, 0.1),
        "lam": (widgets.FloatLogSlider, "Ditto λ", -3, 2, 0.1),
        "num_rounds": (widgets.IntSlider, "rounds T", 1, 100, 1),
    }


class PersonalizationPanel:
    """Move the data's heterogeneity α and Ditto's λ; **Run** shows how well each client is served.

    Each Run splits ``data`` over ``num_clients`` clients with a Dirichlet(α) label skew, holds
    out ``test_fraction`` of every client's examples as its own test set, and trains Ditto(λ)
    (which also trains the global FedAvg model) and local-only training for ``num_rounds`` rounds
    with the same clients, local training and seed. Local-only training does not depend on λ:
    it is trained once per α and T and reused.

    Args:
        data: the dataset (e.g. ``fedlab.load_digits()``).
        num_clients: number of clients (at least 2).
        alpha: Dirichlet concentration α of the split, 0.01 to 100 (small: few labels each).
        lam: Ditto's λ, 0.001 to 100 (small: nearly local-only; large: nearly the global model).
        num_rounds: T, 1 to 100.
        clients_per_round: clients sampled each round, 1 to ``num_clients``.
        test_fraction: share of each client's examples held out as its test set, in (0, 1).
        client_lr, local_epochs, batch_size: the clients' local training (both runs).
        model: a ``model_fn`` (default: the MLP of ``fedlab.models.model_fn("mlp", 10)``).
        seed: seeds the split, the held-out sets and both runs.

    Attributes:
        controls: the sliders by name (``"alpha"``, ``"lam"``, ``"num_rounds"``); set
            ``.value`` to drive it.
        button: the Run button (or call :meth:`run`).
        histories: the last Run's Histories, ``{"ditto": ..., "local": ...}`` (empty before the
            first Run). Ditto's has the global model's per-client accuracy as kind ``"global"``
            and the personal models' as ``"personal"``; local-only's as ``"personal"``.
        status: the HTML line with the mean and worst-10 % accuracy of each model, or an error.
        image: the PNG of the two plots (before the first Run: their empty axes, with the
            sliders' settings and a note to press Run).
        widget: the whole panel (an ``ipywidgets.VBox``).

    Example:
        >>> panel = PersonalizationPanel(digits, alpha=0.1, lam=0.5)  # doctest: +SKIP
        >>> panel.run()  # trains Ditto and local-only, draws them  # doctest: +SKIP
        >>> panel.histories["ditto"].fairness("personal")["worst10"][-1]  # doctest: +SKIP
    """

    def __init__(
        self,
        data: Dataset,
        num_clients: int = 20,
        alpha: float = 0.3,
        lam: float = 0.1,
        num_rounds: int = 20,
        clients_per_round: int = 10,
        test_fraction: float = 0.2,
        client_lr: float = 0.1,
        local_epochs: int = 1,
        batch_size: int | None = 20,
        model: ModelFn | None = None,
        seed: int = 0,
    ):
        self._data = data
        self._num_clients = check_int("num_clients", num_clients, low=2)
        self._clients_per_round = check_int(
            "clients_per_round", clients_per_round, low=1, high=self._num_clients
        )
        self._test_fraction = check_float(
            "test_fraction",
            test_fraction,
            low=0.0,
            high=1.0,
            low_inclusive=False,
            high_inclusive=False,
        )
        self._training = {
            "client_lr": check_float("client_lr", client_lr, low=0.0, low_inclusive=False),
            "local_epochs": check_int("local_epochs", local_epochs, low=1),
            "batch_size": None
            if batch_size is None
            else check_int("batch_size", batch_size, low=1),
        }
        self._model = model if model is not None else model_fn("mlp", 10)
        self._seed = check_int("seed", seed, low=0)
        given = {"alpha": alpha, "lam": lam, "num_rounds": num_rounds}
        style = {"description_width": "initial"}
        self.controls: dict[str, widgets.ValueWidget] = {
            name: checked_slider(name, spec, given[name], style=style)
            for name, spec in _sliders().items()
        }
        for name in ("alpha", "lam"):
            self.controls[name].readout_format = ".3g"
        self.status = widgets.HTML(html.escape("press Run to train Ditto and local-only"))
        self.button = widgets.Button(description="Run", button_style="primary")
        self.button.on_click(lambda _: self.run())
        self.image = widgets.Image(format="png", layout=widgets.Layout(max_width="100%"))
        c = self.controls
        self.widget = widgets.VBox(
            [
                widgets.HBox([c["alpha"], c["lam"], c["num_rounds"], self.button]),
                self.status,
                self.image,
            ]
        )
        self._figure = Figure(figsize=(10.0, 3.8), dpi=80)
        FigureCanvasAgg(self._figure)  # draws to PNG without pyplot: no figure to leak
        self.histories: dict[str, History] = {}
        self._splits: dict[float, ClientSplit] = {}
        self._local: dict[tuple[float, int], History] = {}
        self._shown = ""  # the last Run's settings and numbers, for the text of the panel
        for control in self.controls.values():
            control.observe(self._on_slider, names="value")
        self._draw()
        # trace both runs' TensorFlow functions now, in the background, so that the first Run
        # does not pay a second or two of tracing (later runs share the traced functions)
        self._warming: threading.Thread | None = threading.Thread(
            target=self._warm_up, name="fedlab-personalization-warm-up", daemon=True
        )
        self._warming.start()

    @property
    def alpha(self) -> float:
        """The slider's α, rounded to 3 significant digits."""
        return round_log(self.controls["alpha"].value)

    @property
    def lam(self) -> float:
        """The slider's λ, rounded to 3 significant digits."""
        return round_log(self.controls["lam"].value)

    def split(self) -> ClientSplit:
        """The client split for the slider's α, with each client's held-out test set (cached)."""
        alpha = self.alpha
        if alpha not in self._splits:
            labels = self._data.y_train
            split = dirichlet(labels, self._num_clients, alpha, seed=self._seed)
            self._splits[alpha] = hold_out(split, labels, self._test_fraction, seed=self._seed)
        return self._splits[alpha]

    def _algorithms(self) -> tuple:
        """Ditto with the slider's λ and local-only, both with the panel's local training."""
        return Ditto(self.lam, **self._training), LocalOnly(**self._training)

    def _warm_up(self) -> None:
        """(Background thread) trace Ditto's and local-only's round and evaluation functions."""
        try:
            for algorithm in self._algorithms():
                Simulation(
                    algorithm,
                    self._model,
                    self._data,
                    self.split(),
                    clients_per_round=self._clients_per_round,
                    seed=self._seed,
                ).warm_up()
        except Exception:  # noqa: BLE001 - bad settings are reported when Run is pressed
            return

    def _simulate(self, algorithm, split: ClientSplit, num_rounds: int) -> History:
        return simulate(
            algorithm,
            self._model,
            self._data,
            split,
            num_rounds,
            clients_per_round=self._clients_per_round,
            seed=self._seed,
            progress=False,
        )

    def run(self) -> dict[str, History] | None:
        """Train Ditto(λ) (and, once per α and T, local-only) with the sliders' settings; redraw.

        Returns :attr:`histories`, or ``None`` when fedlab refuses the settings or training
        diverges (the message is shown in the status line).
        """
        if self._warming is not None:
            self._warming.join()
            self._warming = None
        alpha, lam, rounds = self.alpha, self.lam, self.controls["num_rounds"].value
        self.status.value = html.escape(f"training Ditto λ={lam:g} and local-only at α={alpha:g}…")
        try:
            split = self.split()
            ditto_algorithm, local_algorithm = self._algorithms()
            ditto = self._simulate(ditto_algorithm, split, rounds)
            if (alpha, rounds) not in self._local:
                self._local[(alpha, rounds)] = self._simulate(local_algorithm, split, rounds)
        except (ValueError, TypeError, DivergenceError) as error:
            self.status.value = (
                f'<span style="color:{_ERROR_COLOR}">⚠ '
                f"{html.escape(f'Could not run: {error}')}</span>"
            )
            return None
        self.histories = {"ditto": ditto, "local": self._local[(alpha, rounds)]}
        self._draw()
        return self.histories

    def _settings_text(self) -> str:
        """The sliders' settings, e.g. ``α=0.3, λ=0.1, T=20``."""
        return f"α={self.alpha:g}, λ={self.lam:g}, T={self.controls['num_rounds'].value}"

    def _on_slider(self, change: Any = None) -> None:
        """Before the first Run, show the new settings on the empty plots (after it, the plots
        keep the last Run until the next)."""
        if not self.histories:
            self._draw()

    def _labels(self) -> dict[str, tuple[History, str]]:
        """Curve label: (History, kind of per-client accuracy)."""
        return {
            "global (FedAvg)": (self.histories["ditto"], "global"),
            f"Ditto λ={self.lam:g}": (self.histories["ditto"], "personal"),
            "local only": (self.histories["local"], "personal"),
        }

    def _draw(self) -> None:
        """Per-client accuracy at the last round and fairness over the rounds (before the first
        Run: the empty axes and the settings), as a PNG."""
        if not self.histories:
            self._draw_not_run()
            return
        runs = self._labels()
        accuracies = {name: h.last_client_accuracy(kind) for name, (h, kind) in runs.items()}
        parts = []
        for name, values in accuracies.items():
            stats = fairness(values)
            parts.append(
                f"{name}: mean {100 * stats['mean']:.1f} %, worst 10 % "
                f"{100 * stats['worst10']:.1f} %"
            )
        self.status.value = html.escape(" · ".join(parts))
        self._shown = f"run with {self._settings_text()}: {' · '.join(parts)}"
        fig = self._figure
        fig.clear()
        ax_clients, ax_fair = fig.subplots(1, 2, gridspec_kw=_LAYOUT)
        plot_client_accuracy(accuracies, ax=ax_clients)
        plot_fairness(runs, stats=("mean", "worst10"), ax=ax_fair)
        ax_fair.legend(fontsize="x-small", loc="lower right")
        fig.canvas.draw()
        self.image.value = canvas_png(fig.canvas)

    def _draw_not_run(self) -> None:
        """The two plots' empty axes, with the sliders' settings and a note to press Run."""
        fig = self._figure
        fig.clear()
        ax_clients, ax_fair = fig.subplots(1, 2, gridspec_kw=_LAYOUT)
        ax_clients.set(
            xlabel="clients ranked by accuracy, worst → best (fraction)",
            ylabel="accuracy on own test set",
            title="Accuracy per client",
            xlim=(0, 1),
            ylim=(0, 1),
        )
        ax_fair.set(
            xlabel="round",
            ylabel="accuracy on clients' own test sets",
            title="Fairness across clients",
            xlim=(0, self.controls["num_rounds"].value),
            ylim=(0, 1),
        )
        ax_fair.xaxis.set_major_locator(MaxNLocator(integer=True))  # rounds are whole numbers
        ax_clients.text(
            0.5,
            0.5,
            f"not run yet: press Run to train\nDitto and local-only on {self._num_clients} "
            f"clients\nwith {self._settings_text()}",
            ha="center",
            va="center",
            color="0.35",
            transform=ax_clients.transAxes,
        )
        fig.canvas.draw()
        self.image.value = canvas_png(fig.canvas)

    def __repr__(self) -> str:
        """The sliders and what the plots show, e.g. ``PersonalizationPanel(α=0.3, ...)``."""
        if not self.histories:
            return f"PersonalizationPanel({self._settings_text()}; not run yet)"
        return f"PersonalizationPanel({self._shown})"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict:
        """The panel for live front ends, plus the plots as a PNG for static viewers."""
        return panel_bundle(self.widget, self.image.value, repr(self))


__all__ = ["PersonalizationPanel"]
