"""The client-drift playground as a live panel (``04_client_drift``).

:class:`Playground` wires ipywidgets controls — the algorithm, local steps τ, the clients' step
size η, FedProx's μ, the problem's heterogeneity, the number of clients, the seed and the number
of rounds — to the exact quadratic maths of :mod:`fedlab.playground`
(:func:`~fedlab.playground.make_problem`, :func:`~fedlab.playground.run`) and draws what it
returns with :func:`~fedlab.playground.plot_run` and :func:`~fedlab.playground.plot_distance`.
The panel computes nothing itself. Its old import path, ``fedlab.playground.Playground``, gives
this class too.
"""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as widgets
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from fedlab.controls import checked_slider, panel_bundle
from fedlab.playground import (
    ALGORITHMS,
    NAMES,
    PlaygroundRun,
    QuadraticProblem,
    make_problem,
    plot_distance,
    plot_run,
    run,
)
from fedlab.plot import Drawn, canvas_png
from fedlab.validate import check_choice, check_int

_ERROR_COLOR = "#c62828"

_SLIDERS = {  # name: (widget, description, min, max, step)
    "local_steps": (widgets.IntSlider, "local steps τ", 1, 100, 1),
    "lr": (widgets.FloatSlider, "client lr η", 0.01, 1.5, 0.01),
    "mu": (widgets.FloatSlider, "FedProx μ", 0.0, 5.0, 0.1),
    "heterogeneity": (widgets.FloatSlider, "heterogeneity", 0.0, 2.0, 0.05),
    "num_clients": (widgets.IntSlider, "clients", 2, 10, 1),
    "num_rounds": (widgets.IntSlider, "rounds", 1, 500, 1),
}


class Playground:
    """A live panel: pick an algorithm and its settings, watch the clients drift on the landscape.

    Controls: the algorithm (FedAvg, FedProx, SCAFFOLD), local steps τ, the clients' step size
    η, FedProx's μ (greyed out for the others), the problem's heterogeneity, number of clients
    and seed (see :func:`~fedlab.playground.make_problem`), the number of rounds, and which
    round's client trajectories to show. Any change re-runs :func:`~fedlab.playground.run`
    (milliseconds) and redraws :func:`~fedlab.playground.plot_run` next to
    :func:`~fedlab.playground.plot_distance`, where the other two algorithms, run with the same
    settings, are drawn faintly; moving only the round slider just redraws.
    Settings that cannot run — say an η at which a client's own gradient descent diverges — show
    the reason in red and keep the last valid picture; nothing with NaNs is drawn.

    Args:
        algorithm: one of :data:`~fedlab.playground.ALGORITHMS`.
        local_steps: τ, 1 to 100.
        lr: η, 0.01 to 1.5.
        mu: μ for FedProx, 0 to 5.
        heterogeneity: 0 to 2.
        num_clients: 2 to 10.
        num_rounds: 1 to 500.
        seed: seed of :func:`~fedlab.playground.make_problem`.
        round_number: the round whose trajectories are shown (``None``: the last).

    Attributes:
        controls: the control widgets by name (``"algorithm"``, ``"local_steps"``, ``"lr"``,
            ``"mu"``, ``"heterogeneity"``, ``"num_clients"``, ``"num_rounds"``, ``"seed"``,
            ``"round"``); set their ``.value`` to drive the panel from code.
        status: the HTML line with the run's numbers, or the error in red.
        image: the PNG image of the plots.
        widget: the whole panel (an ``ipywidgets.VBox``).
        drawn: the :class:`~fedlab.plot.Drawn` of the landscape panel now on screen.
        references: the other two algorithms run with the same settings, drawn faintly in the
            distance panel so that the three compare (one that cannot run is left out).
        redraws: how many times the picture has been drawn.

    Example:
        >>> panel = Playground(algorithm="fedavg", local_steps=10, num_rounds=30)
        >>> panel.run.path.shape
        (31, 2)
        >>> panel.controls["algorithm"].value = "scaffold"
        >>> panel.run.name, panel.error
        ('SCAFFOLD', None)
        >>> panel.controls["lr"].value = 1.5
        >>> panel.error.startswith("lr = 1.5 is too large")
        True
        >>> panel  # in a notebook cell: shows the panel  # doctest: +SKIP
    """

    def __init__(
        self,
        algorithm: str = "fedavg",
        local_steps: int = 10,
        lr: float = 0.1,
        mu: float = 2.0,
        heterogeneity: float = 1.0,
        num_clients: int = 3,
        num_rounds: int = 50,
        seed: int = 0,
        round_number: int | None = None,
    ):
        check_choice("algorithm", algorithm, ALGORITHMS)
        seed = check_int("seed", seed, low=0)
        given = {
            "local_steps": local_steps,
            "lr": lr,
            "mu": mu,
            "heterogeneity": heterogeneity,
            "num_clients": num_clients,
            "num_rounds": num_rounds,
        }
        style = {"description_width": "initial"}
        self.controls: dict[str, widgets.ValueWidget] = {
            "algorithm": widgets.ToggleButtons(
                options=[(NAMES[a], a) for a in ALGORITHMS],
                value=algorithm,
                style={"button_width": "90px"},
            )
        }
        for name, spec in _SLIDERS.items():
            self.controls[name] = checked_slider(name, spec, given[name], style=style)
        num_rounds = self.controls["num_rounds"].value
        shown = num_rounds if round_number is None else round_number
        shown = check_int("round_number", shown, low=1, high=num_rounds)
        self.controls["seed"] = widgets.IntText(
            value=seed, description="seed", layout=widgets.Layout(width="150px")
        )
        self.controls["round"] = widgets.IntSlider(
            value=shown,
            min=1,
            max=num_rounds,
            description="show round",
            continuous_update=False,
            style=style,
        )
        self.status = widgets.HTML()
        self.image = widgets.Image(format="png", layout=widgets.Layout(max_width="100%"))
        c = self.controls
        self.widget = widgets.VBox(
            [
                c["algorithm"],
                widgets.HBox([c["local_steps"], c["lr"], c["mu"]]),
                widgets.HBox([c["heterogeneity"], c["num_clients"], c["seed"]]),
                widgets.HBox([c["num_rounds"], c["round"]]),
                self.status,
                self.image,
            ]
        )
        self._figure = Figure(figsize=(11.0, 4.4), dpi=90)
        self._canvas = FigureCanvasAgg(self._figure)  # renders without pyplot: no figure to leak
        self._figure.subplots_adjust(left=0.055, right=0.985, bottom=0.11, top=0.88, wspace=0.75)
        self._axes = self._figure.subplots(1, 2, width_ratios=[1.2, 1])  # made once, reused
        self._run: PlaygroundRun | None = None
        self._error: str | None = None
        self._syncing = False
        self.drawn: Drawn | None = None
        self.references: tuple[PlaygroundRun, ...] = ()
        self.redraws = 0
        for name, control in self.controls.items():
            control.observe(self._on_round if name == "round" else self._update, names="value")
        self._update()
        if self._error is not None:  # bad starting values: say so now, as any function would
            raise ValueError(self._error)

    @property
    def run(self) -> PlaygroundRun | None:
        """The run on screen: the current controls' run, or the last valid one (see ``error``)."""
        return self._run

    @property
    def error(self) -> str | None:
        """Why the current controls cannot be run or drawn, else ``None``."""
        return self._error

    @property
    def problem(self) -> QuadraticProblem | None:
        """The problem on screen."""
        return None if self._run is None else self._run.problem

    def settings(self) -> dict:
        """The arguments of :func:`~fedlab.playground.make_problem` and
        :func:`~fedlab.playground.run` the controls now ask for.

        Example:
            >>> Playground(num_rounds=5).settings()["run"]["num_rounds"]
            5
        """
        c = {name: control.value for name, control in self.controls.items()}
        return {
            "problem": {
                "num_clients": c["num_clients"],
                "heterogeneity": c["heterogeneity"],
                "seed": c["seed"],
            },
            "run": {
                "algorithm": c["algorithm"],
                "local_steps": c["local_steps"],
                "lr": c["lr"],
                "mu": c["mu"] if c["algorithm"] == "fedprox" else 0.0,
                "num_rounds": c["num_rounds"],
            },
        }

    def _update(self, change: Any = None) -> None:
        """Re-make the problem, re-run and redraw (or show why not)."""
        if self._syncing:
            return
        self.controls["mu"].disabled = self.controls["algorithm"].value != "fedprox"
        self._sync_round_slider(change)
        settings = self.settings()
        try:
            problem = make_problem(**settings["problem"])
            result = run(problem, **settings["run"])
            if result.diverged:
                raise ValueError(
                    f"{result.name} diverged with these settings (the global model ran off to "
                    "infinity); lower the client lr η or the number of local steps"
                )
        except (ValueError, TypeError) as error:
            self._show_error(str(error))
            return
        self._run, self._error = result, None
        self.references = self._reference_runs(problem, settings["run"])
        self._redraw()

    def _reference_runs(self, problem: QuadraticProblem, settings: dict) -> tuple:
        """The other two algorithms with the same settings (those that run), for comparison."""
        references = []
        for algorithm in ALGORITHMS:
            if algorithm == settings["algorithm"]:
                continue
            mu = self.controls["mu"].value if algorithm == "fedprox" else 0.0
            try:
                result = run(problem, **{**settings, "algorithm": algorithm, "mu": mu})
            except ValueError:
                continue
            if not result.diverged:
                references.append(result)
        return tuple(references)

    def _sync_round_slider(self, change: Any) -> None:
        """Keep the round slider within 1..num_rounds; at the last round it follows the end."""
        if change is None or change.get("owner") is not self.controls["num_rounds"]:
            return
        slider = self.controls["round"]
        follow = slider.value == change["old"]
        self._syncing = True
        try:
            slider.max = change["new"]
            if follow:
                slider.value = change["new"]
        finally:
            self._syncing = False

    def _on_round(self, change: Any = None) -> None:
        if self._syncing or self._run is None:
            return
        if self._error is None:
            self._redraw()

    def _show_error(self, message: str) -> None:
        self._error = message
        kept = " (the plots still show the last valid run)" if self._run is not None else ""
        self.status.value = (
            f'<span style="color:{_ERROR_COLOR}">⚠ {html.escape(message)}{kept}</span>'
        )

    def _round_shown(self) -> int:
        return min(self.controls["round"].value, self._run.num_rounds)

    def _status_line(self) -> str:
        result, shown = self._run, self._round_shown()
        gap = np.linalg.norm(result.fixed_point - result.optimum)
        drift = result.client_drift[shown - 1].mean()
        return (
            f"{result.label}: after {result.num_rounds} rounds ‖w − w*‖ = "
            f"{result.distance[-1]:.3g}; closed-form fixed point: {gap:.3g} from w* · "
            f"round {shown}: clients moved {drift:.3g} on average"
        )

    def _redraw(self) -> None:
        """Draw the run on the one figure and put its PNG into the image widget."""
        ax_run, ax_distance = self._axes
        for ax in self._axes:
            ax.clear()
        shown = self._round_shown()
        self.drawn = plot_run(self._run, shown, ax=ax_run, legend=False)
        ax_run.legend(  # beside the landscape, so that it hides none of it
            fontsize="x-small", loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0
        )
        runs = sorted([self._run, *self.references], key=lambda r: ALGORITHMS.index(r.algorithm))
        plot_distance(runs, ax=ax_distance, legend=False)
        for line in ax_distance.lines:  # the other algorithms faint, for comparison
            if line.get_label().lstrip("_") != self._run.label:
                line.set(alpha=0.35, lw=1.0)
        ax_distance.legend(fontsize="x-small", loc="best")
        ax_distance.axvline(shown, color="gray", lw=0.8, ls=":")
        # a fixed layout and a fast PNG: constrained layout and full compression cost more
        # than drawing the plots
        self._canvas.draw()
        self.image.value = canvas_png(self._canvas)
        self.status.value = html.escape(self._status_line())
        self.redraws += 1

    def __repr__(self) -> str:
        """The run on screen, e.g. ``Playground(FedAvg ...: after 50 rounds ‖w − w*‖ = ...)``."""
        refused = "" if self._error is None else f"; refused: {self._error}"
        return f"Playground({self._status_line()}{refused})"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict:
        """The widget for live front ends, plus the plots as a PNG for static viewers."""
        return panel_bundle(self.widget, self.image.value, repr(self))


__all__ = ["Playground"]
