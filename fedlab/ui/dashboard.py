"""A live training dashboard for the classroom (``03_fedsgd_vs_fedavg``).

:class:`Dashboard` wires ipywidgets controls — dataset, client split, number of clients, clients
per round, algorithm and its hyper-parameters, a robust aggregator and malicious clients, rounds,
seed — to :class:`fedlab.Simulation` and draws the run's :class:`~fedlab.history.History` with
:mod:`fedlab.plot` after every round: loss (with the spread of the clients' losses), test accuracy
(with earlier runs kept for comparison), client drift and update agreement. The dashboard computes
no metric itself; every number on screen comes from the History.

Training runs in a background thread, one round at a time, so the kernel keeps handling button
clicks while it trains: Stop takes effect after the round in flight. The plots are one
:class:`matplotlib.figure.Figure`, made once and never registered with pyplot, rendered to PNG
bytes into an :class:`ipywidgets.Image`: no figure leaks, no flicker, and the same picture in
JupyterLab, Notebook, VS Code and under nbval.
"""

from __future__ import annotations

import html
import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from matplotlib.transforms import Bbox

from fedlab import data as datasets
from fedlab import partition, registry
from fedlab.controls import SliderSpec, checked_slider, panel_bundle, round_log
from fedlab.engine import DivergenceError, Simulation
from fedlab.history import History
from fedlab.models import model_fn
from fedlab.plot import (
    Drawn,
    canvas_png,
    plot_accuracy,
    plot_client_accuracy,
    plot_drift,
    plot_loss,
)
from fedlab.registry import TRAINING_SETTINGS, Setting
from fedlab.validate import check_choice, check_float, check_int

# What the dashboard offers, by key of fedlab.registry; every setting, range, default and label
# of its controls comes from the registry.
_SCHEMES = ("natural", "iid", "dirichlet", "shards")

DATASETS = {registry.DATASETS[name].label: name for name in ("digits", "synthetic")}
"""Dataset dropdown: label shown -> name used in code."""

PARTITIONS = {
    name: tuple(k for k in _SCHEMES if registry.SPLITS[k].needs <= registry.DATASETS[name].has)
    for name in DATASETS.values()
}
"""The client splits offered for each dataset: those that fit it (``natural``: Synthetic's own
devices). To offer another scheme of :mod:`fedlab.partition`, declare it in
:data:`fedlab.registry.SPLITS` (its setting with a ``span`` for the slider) and add it to
``_SCHEMES``."""

PARAMETER_OF = {k: (registry.SPLITS[k].names or (None,))[0] for k in _SCHEMES}
"""The one parameter control each partition scheme uses (``None``: none)."""

PERSONALIZED = ("ditto", "fedper", "local", "finetune")
"""The personalised algorithms offered: they give each client a model of its own. IFCA and
multi-task FedAvg are left out: they need data made for them (planted client groups, tasks)."""

ALGORITHM_NAMES = {key: registry.ALGORITHMS[key].label for key in registry.FEDERATED + PERSONALIZED}
"""Algorithm dropdown: name used in code (a key of :data:`fedlab.algorithms.ALGORITHMS` or of
:data:`fedlab.personalization.PERSONALIZATION`) -> label (the algorithm's ``name``)."""

ALGORITHM_PARAMETERS = {
    key: names
    for key in ALGORITHM_NAMES
    if (names := tuple(s.name for s in registry.ALGORITHMS[key].hyperparameters if s.span))
}
"""The extra controls each algorithm uses beyond E, B and the learning rates: its settings that
the registry gives a slider ``span``."""

DEFENCE_NAMES = {key: c.label or key.replace("_", " ") for key, c in registry.DEFENCES.items()}
"""Aggregator dropdown: name used in code (a key of :data:`fedlab.registry.DEFENCES`) -> label.
``"mean"`` is the algorithm's own weighted mean: no defence."""

DEFENCE_PARAMETERS = {
    key: names
    for key, defence in registry.DEFENCES.items()
    if (names := tuple(s.name for s in defence.settings if s.span))
}
"""The controls each robust aggregator uses: its settings that the registry gives a slider
``span`` (the others, e.g. Multi-Krum's ``num_selected``, keep their defaults)."""

ATTACK_NAMES = {key: c.label or key for key, c in registry.ATTACK_KINDS.items()}
"""Attack dropdown: name used in code (a key of :data:`fedlab.registry.ATTACK_KINDS`) -> label;
``"none"``: every client is honest."""

MAX_ATTACKERS = 10
"""The "attackers" slider's top (lower when there are fewer clients)."""

_PARAMETERS = tuple(dict.fromkeys(n for names in ALGORITHM_PARAMETERS.values() for n in names))
_DEFENCE_SETTINGS = {  # the defence controls, by setting name (shared: Krum's and Bulyan's f)
    s.name: s
    for key, names in DEFENCE_PARAMETERS.items()
    for s in registry.DEFENCES[key].settings
    if s.name in names
}
_SYMBOLS = {name: registry.ALGORITHM_SETTINGS[name].symbol for name in _PARAMETERS}
_DATA_SETTINGS = {  # the dataset controls: Synthetic's α as "synthetic_alpha"
    f"{key}_{setting.name}": setting
    for key in DATASETS.values()
    for setting in registry.DATASETS[key].settings
}
_DEFAULTS = {  # the controls' defaults: FedAvg's, each algorithm's extra settings', the data's
    **registry.ALGORITHMS["fedavg"].defaults(),
    **{
        s.name: s.default
        for key, names in ALGORITHM_PARAMETERS.items()
        for s in registry.ALGORITHMS[key].settings
        if s.name in names
    },
    **{s.name: s.default for k in _SCHEMES for s in registry.SPLITS[k].settings},
    **{name: setting.default for name, setting in _DATA_SETTINGS.items()},
    **{name: setting.default for name, setting in _DEFENCE_SETTINGS.items()},
}

BATCH_SIZES = (5, 10, 20, 50, 100, None)
"""Batch sizes in the dropdown; ``None`` is full batch (one step per local epoch)."""

VIEWS = {"curves": "curves", "per client": "clients"}
"""The "view" toggle: the training curves, or each run's accuracy per client at its last
evaluated round (:func:`fedlab.plot.plot_client_accuracy`)."""

X_AXES = {"round": "round", "MB sent": "megabytes"}
"""The "x axis" toggle: label shown -> ``x`` of :func:`fedlab.plot.plot_accuracy` and
:func:`~fedlab.plot.plot_loss` (``"megabytes"``: cumulative megabytes sent, up + down)."""

_FIGSIZE = (9.0, 5.6)  # inches; at _DPI that is 720 x 448 pixels
_DPI = 80
_ERROR_COLOR = "#c62828"


def _slider(setting: Setting) -> SliderSpec:
    """The slider of a registry setting: its label and span (a log slider's in powers of 10)."""
    low, high, step = setting.span
    if setting.log:
        return (widgets.FloatLogSlider, setting.label, math.log10(low), math.log10(high), step)
    kind = widgets.IntSlider if setting.kind is int else widgets.FloatSlider
    return (kind, setting.label, low, high, step)


def _read(setting: Setting, value: Any) -> Any:
    """A control's value as a setting: a log slider's rounded to 3 digits, a float's to 0.001."""
    if setting.log:
        return round_log(value)
    return round(value, 3) if setting.kind is float else value


# name: (widget class, description, min, max, step); a log slider's min/max are powers of 10
_SLIDERS = {
    **{name: _slider(setting) for name, setting in _DATA_SETTINGS.items()},
    **{s.name: _slider(s) for k in _SCHEMES for s in registry.SPLITS[k].settings},
    "num_clients": (widgets.IntSlider, "clients", 2, 100, 1),
    "clients_per_round": (widgets.IntSlider, "clients / round", 1, 100, 1),
    **{
        s.name: _slider(s)
        for k in ALGORITHM_NAMES
        for s in registry.ALGORITHMS[k].settings
        if s.span
    },
}

# the robust aggregators' sliders, apart from _SLIDERS: a defence's clip_norm is not DP-FedAvg's
_DEFENCE_SLIDERS = {name: _slider(setting) for name, setting in _DEFENCE_SETTINGS.items()}

# fedlab's errors name Python arguments; the dashboard shows the control's own label.
_LABEL_OF = {name: spec[1] for name, spec in {**_SLIDERS, **_DEFENCE_SLIDERS}.items()} | {
    "num_rounds": "rounds",
    "seed": "seed",
    "batch_size": "batch size B",
    "aggregator": "aggregator",
    "attack": "attack",
    "attackers": "attackers",
    "count": "attackers",  # fedlab.poisoning.Attackers(count=...)
}


def _friendly(error: Exception) -> str:
    """fedlab's message, with a leading argument name replaced by the control's label."""
    message = str(error.args[0]) if isinstance(error, KeyError) and error.args else str(error)
    for name, spec in _DEFENCE_SLIDERS.items():  # "Krum with num_byzantine=1 needs ..."
        message = message.replace(f"{name}=", f"“{spec[1]}” = ")
    for name, label in _LABEL_OF.items():
        if message.startswith(f"{name} "):
            return f"“{label}”{message[len(name) :]}"
    return message


def run_label(settings: dict) -> str:
    """A short name for a run's settings, e.g. ``FedAvg E=1 B=20 lr=0.1 C=10/10 iid``.

    ``C=5/10``: 5 of the 10 clients train each round (the FedAvg paper's client fraction C). A
    robust aggregator follows the algorithm (``FedAvg + <aggregator>`` and its settings) and
    malicious clients end it (``, 2 × sign_flip``); the plain mean and no attack add nothing.

    Example:
        >>> run_label({"algorithm": "fedsgd", "client_lr": 0.5, "server_lr": 1.0,
        ...            "clients_per_round": 5, "num_clients": 10, "partition": "iid"})
        'FedSGD lr=0.5 C=5/10 iid'
        >>> run_label({"algorithm": "fedsgd", "client_lr": 0.5, "server_lr": 1.0,
        ...            "clients_per_round": 5, "num_clients": 10, "partition": "iid",
        ...            "aggregator": "median", "attack": "sign_flip", "attackers": 2})
        'FedSGD + median lr=0.5 C=5/10 iid, 2 × sign_flip'
    """
    s = settings
    parts = [ALGORITHM_NAMES.get(s["algorithm"], s["algorithm"])]
    aggregator = s.get("aggregator", "mean")
    if aggregator != "mean":
        parts += ["+", DEFENCE_NAMES.get(aggregator, aggregator)]
        parts += [
            f"{setting.symbol or setting.name}={s[setting.name]:g}"
            for setting in registry.DEFENCES[aggregator].settings
            if setting.name in s
        ]
    parts += [f"{symbol}={s[name]:g}" for name, symbol in _SYMBOLS.items() if name in s]
    if "local_epochs" in s:
        batch = "∞" if s.get("batch_size") is None else s["batch_size"]
        parts += [f"E={s['local_epochs']}", f"B={batch}"]
    parts.append(f"lr={s['client_lr']:g}")
    if "server_lr" in s and s["server_lr"] != _default_server_lr(s["algorithm"]):
        parts.append(f"η={s['server_lr']:g}")
    parts.append(f"C={s['clients_per_round']}/{s['num_clients']}")
    split = s["partition"]
    if split == "dirichlet":
        split = f"dir α={s['alpha']:g}"
    elif split == "shards":
        split = f"shards {s['shards_per_client']}"
    parts.append(split)
    if s.get("dataset", "digits") == "synthetic":
        parts.append(f"syn({s['synthetic_alpha']:g},{s['synthetic_beta']:g})")
    if s.get("model", "mlp") != "mlp":
        parts.append(s["model"])
    if s.get("seed", 0):
        parts.append(f"seed={s['seed']}")
    label = " ".join(parts)
    if s.get("attack", "none") != "none":
        label += f", {s.get('attackers', 0)} × {ATTACK_NAMES.get(s['attack'], s['attack'])}"
    return label


def _attackers(attack: str, count: int):
    """The run's malicious clients (``None``: attack ``"none"`` with 0 attackers); an attack with
    no attackers, or attackers with no attack, is a ValueError saying which control to move."""
    count = check_int("attackers", count, low=0)
    try:
        return registry.make_attackers(attack, count)
    except ValueError:  # the one rule make_attackers adds: both or neither
        if attack == "none":
            raise ValueError(
                f"“attackers” is {count} but “attack” is none: choose what the attackers do, "
                "or set “attackers” to 0"
            ) from None
        raise ValueError(
            f"“attack” {ATTACK_NAMES[attack]} needs at least one attacker: move “attackers” "
            "above 0, or choose attack none"
        ) from None


def _default_server_lr(algorithm: str) -> float:
    """The server learning rate an algorithm's factory uses by default (1, or 0.01 if adaptive;
    1 for local-only, which has none)."""
    return registry.ALGORITHMS[algorithm].defaults().get("server_lr", 1.0)


def client_loss_range(history: History) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per round: the round numbers, the lowest and the highest ``client_loss`` of that round.

    Example:
        >>> from fedlab.history import RoundRecord
        >>> r = RoundRecord(1, (0, 1), (0.5, 2.0), (5, 5), 1.25, 1.0, 0.5, (0.1, 0.2), 0.15,
        ...                 0.2, (1.0, 0.9), 0, 0, 0.01)
        >>> [a.tolist() for a in client_loss_range(History(rounds=[r]))]
        [[1], [0.5], [2.0]]
    """
    losses = [np.asarray(r.client_loss, dtype=float) for r in history.rounds]
    low = np.array([x.min() if x.size else np.nan for x in losses])
    high = np.array([x.max() if x.size else np.nan for x in losses])
    return history.round, low, high


def _x_values(history: History, x: str) -> np.ndarray:
    """The x values of ``history``'s rounds for ``x`` (a value of :data:`X_AXES`)."""
    return history.round if x == "round" else history.megabytes_sent


def _plot_client_loss_range(history: History, ax: Axes, color: str, x: str = "round") -> Drawn:
    """Shade the min–max of the clients' training losses per round (numbers from the History)."""
    _, low, high = client_loss_range(history)
    xs = _x_values(history, x)
    ax.fill_between(xs, low, high, color=color, alpha=0.18, lw=0, label="clients: min–max")
    return Drawn(ax.figure, (ax,), {x: xs, "client_loss_min": low, "client_loss_max": high})


def _clear(ax: Axes) -> None:
    """Remove what was drawn on ``ax`` but keep the axes and their ticks.

    ``ax.cla()`` would rebuild every tick on the next draw; removing the artists and resetting
    the data limits makes a redraw about a third faster.
    """
    for artist in [*ax.lines, *ax.collections, *ax.patches, *ax.texts]:
        artist.remove()
    if ax.legend_ is not None:
        ax.legend_.remove()
    ax.set_prop_cycle(None)
    ax.dataLim.set_points(Bbox.null().get_points())
    ax.ignore_existing_data_limits = True


@dataclass(frozen=True)
class _Run:
    """A run on the charts: its settings, their label and its History."""

    settings: dict
    label: str
    history: History


class Dashboard:
    """A live panel to train federated models in class: set the controls, press Run, watch.

    **Controls:** dataset (digits, or Synthetic(α, β) with its two sliders), client split (iid,
    Dirichlet label skew with α, the FedAvg paper's shards, or Synthetic's natural devices),
    number of clients, model, seed; algorithm (FedAvg, FedSGD, FedProx with its μ, SCAFFOLD,
    FedAvgM with its server momentum β, FedAdam, FedYogi, FedAdagrad, and the personalised
    Ditto with its λ, FedPer, local-only training and FedAvg + fine-tuning), local epochs E,
    batch size B, client and server learning rates; clients per round and rounds; *aggregator*
    (the algorithm's own mean, or a robust rule of :mod:`fedlab.robust` in its place: median,
    trimmed mean with its β, Krum, Multi-Krum and Bulyan with f, the attackers they are built to
    withstand, norm clipping with its clip norm; each control shown only for the aggregator that
    takes it), *attack* (what the malicious clients of :mod:`fedlab.poisoning` do) and
    *attackers* (how many of the clients are malicious: at most 10, and at most the clients).
    IFCA and multi-task FedAvg (:mod:`fedlab.personalization`) are not offered: they need data
    made for them (planted client groups, tasks). *x axis* (display only): the loss and accuracy
    curves against the round or against the megabytes sent so far (up + down,
    ``History.megabytes_sent``); switching redraws every run, no training. *view* (display only):
    ``curves``, or ``per client``: every run's accuracy on each client's own held-out test set at
    its last evaluated round, worst to best (:func:`fedlab.plot.plot_client_accuracy`; the
    global model, and for the personalised algorithms the clients' own models too).

    **Buttons:** *Run* trains until the run has ``rounds`` rounds (again from scratch once it
    has), *Stop* pauses after the round in flight and keeps the history (Run resumes it), *Step*
    trains one round, *Reset* starts over, *Clear* removes the earlier runs from the charts,
    *Save* writes ``history.json`` and ``dashboard.png`` into the folder in the text box.

    **New runs and comparison:** the controls are read when Run, Step or Reset is pressed. If
    they differ from the current run's settings, a new :class:`~fedlab.Simulation` is built and
    the old run's accuracy and test-loss curves stay on the charts, labelled with its settings
    (e.g. ``FedAvg E=1 B=20 lr=0.1 C=10/10 iid``), until Clear. Changing ``rounds`` or the save
    folder never starts a new run. A value fedlab refuses (say more clients per round than
    clients) shows fedlab's message above the plots instead of a traceback; a diverging run shows
    its message and keeps the rounds before it.

    **Threading (a deliberate choice):** Run starts one background :class:`threading.Thread`
    that calls :meth:`fedlab.Simulation.run` with a :class:`threading.Event` as ``stop_event``
    and a callback that redraws the plot and the status line after every round. The kernel's
    main thread stays free, so Stop (which sets the event) is handled while training runs;
    ipykernel sends widget updates made from the thread to the browser. Only one training thread
    runs at a time: Run and Step are disabled, and ignored from code, while it runs. Step runs its
    one round in the caller's thread. Use :meth:`wait` to block until a run ends.

    **Drawing:** one :class:`~matplotlib.figure.Figure` with four axes, made once without pyplot
    and rendered by an Agg canvas to PNG bytes, which replace ``image.value`` after every round.
    Each redraw removes the previous curves and calls :func:`fedlab.plot.plot_loss`,
    :func:`~fedlab.plot.plot_accuracy` and :func:`~fedlab.plot.plot_drift` on the same axes.
    The x axes follow the rounds done, growing in steps (10, 20, 50, 100, 200, ... rounds), not
    the ``rounds`` planned: the first rounds of a long run fill the plot. Displayed in a
    notebook, the panel also leaves its PNG in the cell's output, for GitHub and nbviewer.

    Args:
        dataset: ``"digits"`` or ``"synthetic"`` (FedProx's Synthetic(α, β)).
        synthetic_alpha: Synthetic's α, how different the clients' labelling functions are (0–2).
        synthetic_beta: Synthetic's β, how different the clients' inputs are (0–2).
        partition: ``"iid"``, ``"dirichlet"``, ``"shards"``, or ``"natural"`` (synthetic only).
        alpha: Dirichlet concentration, 0.01–100 (small: each client has few labels).
        shards_per_client: shards per client for ``"shards"``, 1–10.
        num_clients: number of clients, 2–100 (synthetic: number of devices generated).
        clients_per_round: clients sampled each round (1–100; more than ``num_clients`` is
            reported when a run starts).
        model: ``"mlp"`` (FedModel), ``"logreg"`` or ``"cnn"`` (digits only).
        algorithm: a key of :data:`ALGORITHM_NAMES`: ``"fedavg"``, ``"fedsgd"`` (one full-batch
            step: E and B are not used), ``"fedprox"``, ``"scaffold"``, ``"fedavgm"``,
            ``"fedadam"``, ``"fedyogi"``, ``"fedadagrad"``, ``"fednova"``, ``"ditto"``, ``"fedper"``,
            ``"local"`` (local-only: no server, the server lr is not used), ``"finetune"``.
            Choosing one in the dropdown sets the server lr to that algorithm's default (0.01
            for the adaptive ones, else 1).
        local_epochs: local epochs E, 1–20.
        batch_size: local batch size B, or ``None`` for full batch.
        client_lr: client learning rate, 0.001–10.
        server_lr: server learning rate, 0.001–10 (``None``: the algorithm's default; 1 is
            plain FedAvg).
        mu: FedProx's proximal weight μ, 0.001–10.
        momentum: FedAvgM's server momentum β, 0–0.99.
        lam: Ditto's λ, 0.001–100 (how strongly personal models are pulled to the global one).
        aggregator: a key of :data:`DEFENCE_NAMES`: ``"mean"`` (the algorithm's own weighted
            mean: no defence), ``"median"``, ``"trimmed_mean"``, ``"krum"``, ``"multi_krum"``,
            ``"bulyan"`` or ``"clipping"`` (:data:`fedlab.registry.DEFENCES`). Krum needs more
            than 2f + 2 clients per round and Bulyan at least 4f + 3: fewer is reported when a
            run starts. FedNova's normalised mean cannot be replaced (reported too).
        trim_beta: the trimmed mean's β, the share of the largest and of the smallest values
            dropped per coordinate, 0–0.45.
        num_byzantine: f, how many attackers Krum, Multi-Krum and Bulyan are built to withstand,
            0–10.
        clip_norm: norm clipping's largest accepted update norm, 0.05–5.
        attack: a key of :data:`ATTACK_NAMES`: ``"none"`` (every client honest),
            ``"label_flip"``, ``"sign_flip"``, ``"scaled"``, ``"gaussian"``, ``"free_rider"``,
            ``"alie"`` or ``"backdoor"`` (:data:`fedlab.registry.ATTACK_KINDS`).
        attackers: how many clients are malicious, 0 to ``min(10, num_clients)``, drawn once from
            the seed. An attack needs at least one attacker and attackers need an attack: either
            alone is reported when a run starts.
        num_rounds: rounds of a run (the ``rounds`` box), at least 1.
        seed: seeds the data split, initial weights, client sampling and batch order.
        save_dir: folder that Save writes into.
        x_axis: what the loss and accuracy panels plot against: ``"round"`` or ``"megabytes"``
            (cumulative MB sent, up + down; the drift panels stay per round). Not a run setting:
            changing it redraws the runs on the charts and never starts a new one.
        warm_up: build the run the controls ask for, and trace its TensorFlow functions, in a
            background thread as soon as the Dashboard is made, so that the first Run shows a
            round at once instead of after a second or two of tracing.
        client_test_fraction: share of each client's examples held out as its own test set
            (:func:`fedlab.partition.hold_out`), in [0, 1); every evaluated round records each
            client's accuracy on it, for the per-client view and the personalised algorithms
            (e.g. 0.2). 0 (the default): every example trains, so a run equals
            ``fedlab.simulate`` with the same settings; the per-client view then says how to
            turn it on.
        view: ``"curves"`` or ``"clients"`` (the *view* toggle; display only).

    Attributes:
        controls: the control widgets by name (the argument names above); set ``.value`` to
            drive the dashboard from code.
        buttons: the buttons by description (``"Run"``, ``"Stop"``, ...).
        status: the status line, ``"ready"`` or ``"round r · ... · ms/round"``.
        message: where errors and saved paths appear.
        image: the PNG of the plots.
        drawn: what the last redraw drew, by panel (``"loss"``, ``"client_loss"``, ``"drift"``,
            and ``"accuracy: <label>"`` per run; in the per-client view ``"clients"``), as
            :class:`fedlab.plot.Drawn` records.
        widget: the whole panel, an :class:`ipywidgets.VBox`.

    Example:
        >>> dash = Dashboard(num_rounds=3, num_clients=5, clients_per_round=5)
        >>> dash.run(block=True)
        >>> len(dash.history), dash.status.value.startswith("round 3 ·")
        (3, True)
        >>> dash.controls["local_epochs"].value = 2  # a new setting: the next Run starts anew
        >>> dash.step().round, len(dash.runs)
        (1, 2)
        >>> dash  # in a notebook cell: shows the panel  # doctest: +SKIP
    """

    def __init__(
        self,
        dataset: str = "digits",
        synthetic_alpha: float = _DEFAULTS["synthetic_alpha"],
        synthetic_beta: float = _DEFAULTS["synthetic_beta"],
        partition: str = "iid",
        alpha: float = _DEFAULTS["alpha"],
        shards_per_client: int = _DEFAULTS["shards_per_client"],
        num_clients: int = 10,
        clients_per_round: int = 10,
        model: str = "mlp",
        algorithm: str = "fedavg",
        local_epochs: int = _DEFAULTS["local_epochs"],
        batch_size: int | None = _DEFAULTS["batch_size"],
        client_lr: float = _DEFAULTS["client_lr"],
        server_lr: float | None = None,
        mu: float = _DEFAULTS["mu"],
        momentum: float = _DEFAULTS["momentum"],
        lam: float = _DEFAULTS["lam"],
        aggregator: str = "mean",
        trim_beta: float = _DEFAULTS["trim_beta"],
        num_byzantine: int = _DEFAULTS["num_byzantine"],
        clip_norm: float = _DEFAULTS["clip_norm"],
        attack: str = "none",
        attackers: int = 0,
        num_rounds: int = 30,
        seed: int = 0,
        save_dir: str = "fedlab-runs",
        x_axis: str = "round",
        warm_up: bool = True,
        client_test_fraction: float = 0.0,
        view: str = "curves",
    ):
        check_choice("dataset", dataset, list(PARTITIONS))
        check_choice("x_axis", x_axis, list(X_AXES.values()))
        check_choice("view", view, list(VIEWS.values()))
        self._client_test_fraction = check_float(
            "client_test_fraction", client_test_fraction, low=0.0, high=1.0, high_inclusive=False
        )
        check_choice(f"partition (for {dataset})", partition, PARTITIONS[dataset])
        check_choice("model", model, list(registry.MODELS))
        check_choice("algorithm", algorithm, list(ALGORITHM_NAMES))
        check_choice("aggregator", aggregator, list(DEFENCE_NAMES))
        check_choice("attack", attack, list(ATTACK_NAMES))
        if server_lr is None:
            server_lr = _default_server_lr(algorithm)
        if batch_size is not None:
            batch_size = check_int("batch_size", batch_size, low=1)
        given = {
            "synthetic_alpha": synthetic_alpha,
            "synthetic_beta": synthetic_beta,
            "alpha": alpha,
            "shards_per_client": shards_per_client,
            "num_clients": num_clients,
            "clients_per_round": clients_per_round,
            "local_epochs": local_epochs,
            "client_lr": client_lr,
            "server_lr": server_lr,
            "mu": mu,
            "momentum": momentum,
            "lam": lam,
            "trim_beta": trim_beta,
            "num_byzantine": num_byzantine,
            "clip_norm": clip_norm,
        }
        style = {"description_width": "initial"}
        c: dict[str, widgets.ValueWidget] = {}
        c["dataset"] = widgets.Dropdown(
            options=list(DATASETS.items()), value=dataset, description="dataset", style=style
        )
        c["partition"] = widgets.Dropdown(
            options=PARTITIONS[dataset], value=partition, description="split", style=style
        )
        for name, spec in _SLIDERS.items():
            c[name] = checked_slider(
                name, spec, given[name], style=style, layout=widgets.Layout(width="290px")
            )
            if spec[0] is widgets.FloatLogSlider:
                c[name].readout_format = ".3g"
        c["aggregator"] = widgets.Dropdown(
            options=[(label, key) for key, label in DEFENCE_NAMES.items()],
            value=aggregator,
            description="aggregator",
            style=style,
        )
        for name, spec in _DEFENCE_SLIDERS.items():
            c[name] = checked_slider(
                name, spec, given[name], style=style, layout=widgets.Layout(width="290px")
            )
        c["attack"] = widgets.Dropdown(
            options=[(label, key) for key, label in ATTACK_NAMES.items()],
            value=attack,
            description="attack",
            style=style,
        )
        most = min(MAX_ATTACKERS, c["num_clients"].value)  # no more attackers than clients
        c["attackers"] = checked_slider(
            "attackers",
            (widgets.IntSlider, "attackers", 0, most, 1),
            attackers,
            style=style,
            layout=widgets.Layout(width="290px"),
        )
        c["model"] = widgets.Dropdown(
            options=list(registry.MODELS), value=model, description="model", style=style
        )
        c["algorithm"] = widgets.Dropdown(
            options=[(label, name) for name, label in ALGORITHM_NAMES.items()],
            value=algorithm,
            description="algorithm",
            style=style,
        )
        sizes = sorted({*BATCH_SIZES[:-1], *([batch_size] if batch_size else [])})
        c["batch_size"] = widgets.Dropdown(
            options=[(str(b), b) for b in sizes] + [("full", None)],
            value=batch_size,
            description="batch size B",
            style=style,
            layout=widgets.Layout(width="170px"),
        )
        c["num_rounds"] = widgets.IntText(
            value=check_int("num_rounds", num_rounds, low=1),
            description="rounds",
            style=style,
            layout=widgets.Layout(width="130px"),
        )
        c["seed"] = widgets.IntText(
            value=check_int("seed", seed, low=0),
            description="seed",
            style=style,
            layout=widgets.Layout(width="110px"),
        )
        c["save_dir"] = widgets.Text(
            value=str(save_dir), description="save to", style=style, layout={"width": "220px"}
        )
        c["x_axis"] = widgets.ToggleButtons(
            options=list(X_AXES.items()),
            value=x_axis,
            description="x axis",
            tooltips=["loss and accuracy per round", "... per megabyte sent so far (up + down)"],
            style=style | {"button_width": "70px"},
        )
        c["view"] = widgets.ToggleButtons(
            options=list(VIEWS.items()),
            value=view,
            description="view",
            tooltips=[
                "loss, accuracy and drift over the rounds",
                "each run's accuracy per client (own test set) at its last evaluated round",
            ],
            style=style | {"button_width": "80px"},
        )
        for name in ("dataset", "partition", "model", "algorithm", "aggregator", "attack"):
            c[name].layout.width = "190px"
        self.controls = c

        self.buttons = {
            name: widgets.Button(description=name, tooltip=tip, layout={"width": "70px"})
            for name, tip in [
                ("Run", "train until the run has `rounds` rounds"),
                ("Stop", "stop after the round in flight (Run resumes)"),
                ("Step", "train one round"),
                ("Reset", "start over with the current settings"),
                ("Clear", "remove earlier runs from the charts"),
                ("Save", "write history.json and dashboard.png"),
            ]
        }
        self.buttons["Run"].button_style = "success"
        self.buttons["Stop"].button_style = "warning"
        self.buttons["Stop"].disabled = True
        self.buttons["Run"].on_click(lambda _: self.run())
        self.buttons["Stop"].on_click(lambda _: self.stop())
        self.buttons["Step"].on_click(lambda _: self.step())
        self.buttons["Reset"].on_click(lambda _: self.reset())
        self.buttons["Clear"].on_click(lambda _: self.clear())
        self.buttons["Save"].on_click(lambda _: self.save())

        self.status = widgets.HTML("ready").add_class("fedlab-status")
        self.message = widgets.HTML("").add_class("fedlab-message")
        self.image = widgets.Image(format="png", layout={"max_width": "100%"})
        self.image.add_class("fedlab-plot")
        b = self.buttons
        wrap = {"flex_flow": "row wrap"}
        self.widget = widgets.VBox(
            [
                widgets.HBox(
                    [c["dataset"], *(c[name] for name in _DATA_SETTINGS)]
                    + [c["partition"], *(c[n] for n in filter(None, PARAMETER_OF.values()))]
                    + [c["num_clients"], c["model"]],
                    layout=wrap,
                ),
                widgets.HBox(
                    [c["algorithm"], *(c[n] for n in _PARAMETERS), c["local_epochs"]]
                    + [c["batch_size"]]
                    + [c["client_lr"], c["server_lr"], c["clients_per_round"], c["seed"]]
                    + [  # on a line of its own below: the robust aggregator and the attack
                        widgets.HBox(
                            [c["aggregator"], *(c[name] for name in _DEFENCE_SLIDERS)]
                            + [c["attack"], c["attackers"]],
                            layout=wrap | {"width": "100%"},
                        )
                    ],
                    layout=wrap,
                ),
                widgets.HBox(
                    [c["num_rounds"], b["Run"], b["Stop"], b["Step"], b["Reset"], b["Clear"]]
                    + [c["x_axis"], c["view"], c["save_dir"], b["Save"]],
                    layout=wrap,
                ),
                self.status,
                self.message,
                self.image,
            ]
        ).add_class("fedlab-dashboard")

        self._plots = _Plots()
        self.drawn: dict[str, Drawn] = {}
        self.draw_seconds = 0.0  # the last redraw's time, shown in the status line

        self._lock = threading.RLock()  # one redraw at a time: a Figure is not thread-safe
        self._stop_event = threading.Event()
        self._thread: threading.Thread | None = None
        self._simulation: Simulation | None = None
        self._settings: dict | None = None  # the current simulation's settings
        self._kept: list[_Run] = []  # earlier runs, kept for comparison until Clear
        self._data_cache: dict[tuple, datasets.Dataset] = {}
        self._prepared: tuple[dict, Simulation] | None = None  # built and traced ahead of Run
        self._preparing: threading.Thread | None = None
        self._sync_controls()
        for name, control in c.items():
            if name not in ("num_rounds", "save_dir", "x_axis", "view"):
                control.observe(self._on_control, names="value")
        for name in ("x_axis", "view"):  # display only: no new run
            c[name].observe(lambda _: self._redraw(), names="value")
        self._redraw()
        if warm_up:  # after the first drawing, which would otherwise wait for the thread's GIL
            self._preparing = threading.Thread(
                target=self._prepare, args=(self.settings(),), name="fedlab-warm-up", daemon=True
            )
            self._preparing.start()

    # -- reading the controls --------------------------------------------------------------
    def settings(self) -> dict:
        """The run settings the controls ask for now (what a new :class:`Simulation` would use).

        Settings that the chosen options do not use are left out (E and B for FedSGD, α for an
        IID split, ...), so changing them does not start a new run.

        Example:
            >>> Dashboard(algorithm="fedsgd").settings()["algorithm"]  # doctest: +SKIP
            'fedsgd'
        """
        c = self.controls
        names = ("dataset", "partition", "num_clients", "clients_per_round", "model", "seed")
        s: dict[str, Any] = {name: c[name].value for name in (*names, "algorithm")}
        for setting in registry.ALGORITHMS[s["algorithm"]].settings:  # those with a control
            if setting.name in c:
                s[setting.name] = _read(setting, c[setting.name].value)
        for setting in registry.SPLITS[s["partition"]].settings:
            s[setting.name] = _read(setting, c[setting.name].value)
        for setting in registry.DATASETS[s["dataset"]].settings:
            name = f"{s['dataset']}_{setting.name}"
            s[name] = _read(setting, c[name].value)
        s["aggregator"] = c["aggregator"].value
        for setting in registry.DEFENCES[s["aggregator"]].settings:  # those with a control
            if setting.name in _DEFENCE_SLIDERS:
                s[setting.name] = _read(setting, c[setting.name].value)
        s["attack"], s["attackers"] = c["attack"].value, c["attackers"].value
        return s

    def _sync_controls(self) -> None:
        """Show only the controls the chosen options use; offer the dataset's splits."""
        c = self.controls
        dataset = c["dataset"].value
        if tuple(c["partition"].options) != PARTITIONS[dataset]:
            keep = c["partition"].value
            c["partition"].options = PARTITIONS[dataset]
            c["partition"].value = keep if keep in PARTITIONS[dataset] else PARTITIONS[dataset][0]
        for name in _DATA_SETTINGS:
            c[name].layout.display = None if name.startswith(f"{dataset}_") else "none"
        for name in filter(None, set(PARAMETER_OF.values())):
            shown = name == PARAMETER_OF[c["partition"].value]
            c[name].layout.display = None if shown else "none"
        algorithm = c["algorithm"].value
        for name in TRAINING_SETTINGS:  # FedSGD takes no E and B, local-only no server lr
            c[name].disabled = name not in registry.ALGORITHMS[algorithm].names
        for name in _PARAMETERS:
            shown = name in ALGORITHM_PARAMETERS.get(algorithm, ())
            c[name].layout.display = None if shown else "none"
        for name in _DEFENCE_SLIDERS:
            shown = name in DEFENCE_PARAMETERS.get(c["aggregator"].value, ())
            c[name].layout.display = None if shown else "none"
        most = min(MAX_ATTACKERS, c["num_clients"].value)
        if c["attackers"].max != most:  # (a value above the new top moves down to it)
            c["attackers"].max = most

    def _on_control(self, change: Any = None) -> None:
        if change is not None and change.get("owner") is self.controls["algorithm"]:
            self.controls["server_lr"].value = _default_server_lr(change["new"])
        self._sync_controls()
        if self._simulation is not None and len(self._simulation.history):
            if self.settings() != self._settings:
                self._say(
                    "Settings changed: Run or Step starts a new run; the current one stays on "
                    "the charts for comparison (Clear removes it)."
                )
            else:
                self._say("")

    def _dataset(self, s: dict) -> datasets.Dataset:
        """The dataset the settings ask for (cached: regenerating Synthetic takes a moment)."""
        dataset = registry.DATASETS[s["dataset"]]
        own = {x.name: s[f"{dataset.key}_{x.name}"] for x in dataset.settings}
        key = (dataset.key, s["num_clients"], s["seed"], *own.values())
        if key not in self._data_cache:
            if len(self._data_cache) >= 4:
                self._data_cache.pop(next(iter(self._data_cache)))
            self._data_cache[key] = dataset.build(s["num_clients"], s["seed"], **own)
        return self._data_cache[key]

    def _build(self, s: dict) -> Simulation:
        """A new Simulation for settings ``s``; fedlab raises ValueError/TypeError on bad values."""
        check_int("seed", s["seed"], low=0)
        scheme, algorithm = registry.SPLITS[s["partition"]], registry.ALGORITHMS[s["algorithm"]]
        offered = tuple(DATASETS.values())
        registry.check_fits(
            "model", registry.MODELS[s["model"]], registry.DATASETS[s["dataset"]], offered
        )
        data = registry.data_for_model(s["model"], self._dataset(s))
        split = scheme.build(data, s["num_clients"], s["seed"], **scheme.pick(s))
        if self._client_test_fraction > 0:  # each client's own test set, for the per-client view
            split = partition.hold_out(
                split, data.y_train, self._client_test_fraction, seed=s["seed"]
            )
        defence = registry.DEFENCES[s["aggregator"]]
        algorithm = registry.with_defence(
            algorithm.build(**algorithm.pick(s)), s["aggregator"], **defence.pick(s)
        )
        return Simulation(
            algorithm,
            model_fn(s["model"], data.num_classes),
            data,
            split,
            clients_per_round=s["clients_per_round"],
            seed=s["seed"],
            attackers=_attackers(s["attack"], s["attackers"]),
        )

    def _prepare(self, s: dict) -> None:
        """(Background thread) build the run for settings ``s`` and trace it, ready for Run."""
        try:
            simulation = self._build(s)
            simulation.warm_up()
        except Exception:  # noqa: BLE001 - bad settings are reported when Run is pressed
            return
        self._prepared = (s, simulation)

    def _take_prepared(self, s: dict) -> Simulation | None:
        """The warmed-up run if it has settings ``s`` (waiting for the warm-up to end)."""
        if self._preparing is not None:
            self._preparing.join()
            self._preparing = None
        prepared, self._prepared = self._prepared, None
        return prepared[1] if prepared is not None and prepared[0] == s else None

    def _ensure_simulation(self, fresh: bool = False) -> Simulation | None:
        """The simulation to train: the current one, or a new one if the settings changed.

        A replaced run with rounds is kept for comparison unless the new run has the same
        settings (it would draw the same curve again). Bad settings show fedlab's message in the
        message area and return ``None``.
        """
        s = self.settings()
        if not fresh and self._simulation is not None and s == self._settings:
            return self._simulation
        self._status("building the simulation (its first round also compiles it, about 1 s)…")
        try:
            simulation = self._take_prepared(s) or self._build(s)
        except (ValueError, TypeError, KeyError) as error:
            self._say(f"Can't start this run: {_friendly(error)}", error=True)
            self._status("ready" if self._simulation is None else self._round_text())
            return None
        with self._lock:
            self._keep_current()
            self._kept = [run for run in self._kept if run.settings != s]
            self._simulation, self._settings = simulation, s
        self._say("")
        return simulation

    def _keep_current(self) -> None:
        if self._simulation is not None and len(self._simulation.history):
            self._kept.append(_Run(self._settings, run_label(self._settings), self.history))

    # -- the Python API the buttons call -----------------------------------------------------
    @property
    def history(self) -> History:
        """The current run's History (empty before the first round or after Reset)."""
        return History() if self._simulation is None else self._simulation.history

    @property
    def runs(self) -> list[tuple[str, History]]:
        """Every run on the charts as ``(label, history)``: earlier runs first, the current last."""
        runs = [(run.label, run.history) for run in self._kept]
        if self._simulation is not None:
            runs.append((run_label(self._settings), self.history))
        return runs

    @property
    def running(self) -> bool:
        """True while the training thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def run(self, num_rounds: int | None = None, block: bool = False) -> None:
        """Train in the background thread: ``num_rounds`` more rounds, or (``None``) until the
        run has ``rounds`` rounds, starting over first if it already has them.

        Returns at once unless ``block=True``; ignored (with a message) while a run is going.

        Example:
            >>> dash.run(num_rounds=5, block=True)  # doctest: +SKIP
        """
        if self.running:
            self._say("Already running: press Stop first.")
            return
        if num_rounds is not None:
            num_rounds = check_int("num_rounds", num_rounds, low=0)
        target = self.controls["num_rounds"].value
        if num_rounds is None and target < 1:
            self._say(f"“rounds” must be at least 1, got {target}", error=True)
            return
        complete = self._simulation is not None and len(self.history) >= target
        simulation = self._ensure_simulation(fresh=num_rounds is None and complete)
        if simulation is None:
            return
        todo = target - len(simulation.history) if num_rounds is None else num_rounds
        self._stop_event.clear()
        self._set_running(True)
        self._thread = threading.Thread(
            target=self._train, args=(simulation, todo), name="fedlab-dashboard", daemon=True
        )
        self._thread.start()
        if block:
            self.wait()

    def _train(self, simulation: Simulation, num_rounds: int) -> None:
        """The training thread: rounds until done or stopped, redrawing after each one."""
        state, planned = "done", len(simulation.history) + num_rounds
        try:
            simulation.run(
                num_rounds,
                callbacks=[lambda record, history: self._show("running…")],
                progress=False,
                stop_event=self._stop_event,
            )
            if self._stop_event.is_set() and len(simulation.history) < planned:
                state = "stopped"
        except DivergenceError as error:
            state = "diverged"
            self._say(str(error), error=True)
        except Exception as error:  # noqa: BLE001 - show it in the panel, not in a lost thread
            state = "failed"
            self._say(f"{type(error).__name__}: {error}", error=True)
        finally:
            self._set_running(False)
            self._show(state)

    def step(self) -> Any:
        """Train one round now (in the caller's thread); return its RoundRecord, or ``None``.

        Continues the current run, or starts a new one if the settings changed.

        Example:
            >>> dash.step().round  # doctest: +SKIP
            1
        """
        if self.running:
            self._say("Training is running: press Stop first.")
            return None
        simulation = self._ensure_simulation()
        if simulation is None:
            return None
        try:
            record = simulation.step()
        except DivergenceError as error:
            self._say(str(error), error=True)
            self._show("diverged")
            return None
        self._show(None)
        return record

    def stop(self) -> None:
        """Ask the training thread to stop after the round in flight; the history is kept.

        Returns at once; :meth:`wait` blocks until the thread has ended.
        """
        self._stop_event.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the training thread ends (or ``timeout`` seconds); True if it has ended."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return not self.running

    def reset(self) -> None:
        """Stop, then start over: the next Run or Step builds a new run from the controls.

        The old run (if it had rounds) stays on the charts for comparison until Clear.
        """
        self.stop()
        self.wait()
        with self._lock:
            self._keep_current()
            self._simulation = self._settings = None
        self._say("")
        self._show(None)

    def clear(self) -> None:
        """Remove the earlier runs from the charts (the current run stays)."""
        with self._lock:
            self._kept = []
        self._show(None)

    def save(self, folder: str | Path | None = None) -> tuple[Path, Path] | None:
        """Write the current run's ``history.json`` and the plots' ``dashboard.png`` to ``folder``.

        ``folder`` defaults to the "save to" box. Returns the two paths (also shown in the
        message area), or ``None`` when there is nothing to save or the folder cannot be made.

        Example:
            >>> dash.save("runs/fedavg")  # doctest: +SKIP
            (PosixPath('runs/fedavg/history.json'), PosixPath('runs/fedavg/dashboard.png'))
        """
        folder = Path(self.controls["save_dir"].value if folder is None else folder)
        with self._lock:
            history = History(dict(self.history.config), list(self.history.rounds))
            png = self.png()
        if not len(history):
            self._say("Nothing to save yet: run at least one round.")
            return None
        json_path, png_path = folder / "history.json", folder / "dashboard.png"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            history.save(json_path)
            png_path.write_bytes(png)
        except OSError as error:
            self._say(f"Could not save to {folder}: {error.strerror or error}", error=True)
            return None
        self._say(
            f"Saved {len(history)} rounds to <code>{html.escape(str(json_path))}</code> and the "
            f"plots to <code>{html.escape(str(png_path))}</code>.",
            escape=False,
        )
        return json_path, png_path

    # -- showing ---------------------------------------------------------------------------
    def png(self) -> bytes:
        """The plots as they are on screen, as PNG bytes."""
        return bytes(self.image.value)

    def _say(self, text: str, error: bool = False, escape: bool = True) -> None:
        text = html.escape(text) if escape else text
        if error and text:
            text = f'<span style="color:{_ERROR_COLOR}">⚠ {text}</span>'
        self.message.value = text

    def _status(self, text: str) -> None:
        self.status.value = html.escape(text)

    def _round_text(self) -> str:
        """``round r · train loss · test loss · test accuracy · ms/round``, from the History."""
        history = self.history
        if not len(history):
            return "ready"
        last = history.rounds[-1]
        personal = ""
        if (self._settings or {}).get("algorithm") in PERSONALIZED:
            mean = history.last_client_accuracy("personal")
            if mean is not None:
                personal = f" · personalised mean {np.nanmean(mean):.3f}"
        return (
            f"round {last.round} · train loss {last.train_loss:.3f} · test loss "
            f"{last.test_loss:.3f} · test accuracy {last.test_accuracy:.3f}{personal} · "
            f"{1000 * last.wall_time:.0f} ms/round (+{1000 * self.draw_seconds:.0f} ms plot)"
        )

    def _show(self, state: str | None) -> None:
        """Redraw the plots and the status line; ``state`` ends the line ("running…", "done")."""
        self._redraw()
        text = self._round_text()
        if state and text != "ready":
            text = f"{text} · {state}"
        self._status(text)

    def _set_running(self, running: bool) -> None:
        self.buttons["Run"].disabled = self.buttons["Step"].disabled = running
        self.buttons["Stop"].disabled = not running

    def _redraw(self) -> None:
        """Draw every run on the one figure and put its PNG into the image widget."""
        with self._lock:
            start = time.perf_counter()
            if self._simulation is None:
                current = _Run({}, run_label(self.settings()), History())
            else:  # a snapshot: the training thread may append a round while we draw
                live = self.history
                snapshot = History(live.config, list(live.rounds))
                current = _Run(self._settings, run_label(self._settings), snapshot)
            if self.controls["view"].value == "clients":
                self._plots.show("clients")
                self.drawn, legends = _draw_clients(
                    self._plots.client_ax, [*self._kept, current], self._client_test_fraction
                )
            else:
                self._plots.show("curves")
                x = self.controls["x_axis"].value
                self.drawn, legends = _draw(self._plots.axes, current, self._kept, x)
            self.image.value = self._plots.render(legends)
            self.draw_seconds = time.perf_counter() - start

    def __repr__(self) -> str:
        """The status line, e.g. ``Dashboard(round 5 · train loss 0.412 · ... · done)``."""
        return f"Dashboard({html.unescape(self.status.value)})"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict:
        """The widget for live front ends, plus the plots as a PNG for static viewers."""
        return panel_bundle(self.widget, self.image.value, repr(self))


class _Plots:
    """The dashboard's one figure (2×2 axes, no pyplot) and its rendering to PNG bytes.

    Rendering the whole figure takes about 100 ms on a small CPU, mostly for text: tick labels,
    titles, legends. Between two rounds that text rarely changes, because the x axes grow in
    steps (10, 20, 50, 100, 200, ... rounds: :func:`_rounds_shown`), the y axes of loss and drift
    snap to round numbers, and the legends keep their labels and places. So the curves are drawn
    *animated* (left out of a full draw), the rest is rendered once into a cached background,
    the opaque legends are cached as small images, and a redraw pastes the background, draws the
    curves and pastes the legends on top. The caches are rendered again whenever an axis range,
    an x label or a legend changes.
    """

    def __init__(self, figsize: tuple[float, float] = _FIGSIZE, dpi: float = _DPI):
        self.figure = Figure(figsize=figsize, dpi=dpi)
        self.canvas = FigureCanvasAgg(self.figure)  # renders without pyplot: no figure to leak
        self.figure.subplots_adjust(
            left=0.075, right=0.985, top=0.95, bottom=0.085, hspace=0.42, wspace=0.2
        )
        self.axes = self.figure.subplots(2, 2)
        for ax in self.axes.flat:  # (_draw sets the x tick locators: rounds or megabytes)
            ax.tick_params(labelsize=8.5)
        # the "per client" view: one axes over the whole figure, shown instead of the four
        self.client_ax = self.figure.add_axes((0.075, 0.085, 0.91, 0.865), visible=False)
        self.client_ax.tick_params(labelsize=8.5)
        self._cache_key: tuple | None = None
        self._background = None
        self._legend_images: list = []

    def show(self, view: str) -> None:
        """Show the four curve axes (``"curves"``) or the per-client axes (``"clients"``)."""
        for ax in self.axes.flat:
            ax.set_visible(view == "curves")
        self.client_ax.set_visible(view == "clients")

    def _shown(self) -> list[Axes]:
        return [ax for ax in self.figure.axes if ax.get_visible()]

    def render(self, legends: Sequence[tuple[Axes, dict]] = ()) -> bytes:
        """The figure as PNG bytes, from the cached background and legends where still valid.

        ``legends`` asks for a legend on each of these axes (with these keyword arguments); a
        legend is built only when the caches are rendered again: building one costs more than
        drawing every curve, and its image is reused until its labels change.
        """
        curves = {
            ax: sorted((*ax.lines, *ax.collections, *ax.patches), key=lambda a: a.get_zorder())
            for ax in self._shown()
        }
        for artist in (a for artists in curves.values() for a in artists):
            artist.set_animated(True)
        key = (
            tuple(
                (id(ax), ax.get_xlim(), ax.get_ylim(), ax.get_xlabel())
                + tuple(text.get_text() for text in ax.texts)
                for ax in self._shown()
            ),
            tuple(
                (id(ax), tuple(ax.get_legend_handles_labels()[1]), tuple(sorted(kw.items())))
                for ax, kw in legends
            ),
        )
        fresh = key != self._cache_key
        if fresh:
            self.canvas.draw()  # everything but the animated artists
            self._background = self.canvas.copy_from_bbox(self.figure.bbox)
        else:
            self.canvas.restore_region(self._background)
        for ax, artists in curves.items():
            for artist in artists:
                ax.draw_artist(artist)
        if fresh:
            made = [ax.legend(fontsize="x-small", framealpha=1, **kw) for ax, kw in legends]
            for legend in made:
                legend.set_animated(True)
                legend.axes.draw_artist(legend)
            self._legend_images = [
                self.canvas.copy_from_bbox(legend.get_window_extent().padded(2)) for legend in made
            ]
            self._cache_key = key
        else:
            for image in self._legend_images:
                self.canvas.restore_region(image)
        return canvas_png(self.canvas)


def _nice_top(value: float) -> float:
    """The smallest round number (a tick of MaxNLocator) at or above ``value``, for a y range."""
    if not np.isfinite(value) or value <= 0:
        return 1.0
    ticks = MaxNLocator(nbins=5, steps=[1, 2, 2.5, 5, 10]).tick_values(0.0, value)
    return float(min(t for t in ticks if t >= value))


def _rounds_shown(rounds: int) -> int:
    """How many rounds the x axes span: the first of 10, 20, 50, 100, 200, 500, ... ≥ ``rounds``.

    The axes follow the rounds done, not the rounds planned, so the first rounds of a long run
    fill the plot; they grow in these steps so that the cached background (see :class:`_Plots`)
    is rendered again only a few times in a run, not after every round.

    Example:
        >>> [_rounds_shown(n) for n in (0, 5, 10, 11, 21, 60, 2000)]
        [10, 10, 10, 20, 50, 100, 2000]
    """
    scale = 10
    while True:
        for mantissa in (1, 2, 5):
            if mantissa * scale >= rounds:
                return mantissa * scale
        scale *= 10


def _x_locator(x: str) -> MaxNLocator:
    """Tick positions for an x axis of rounds (whole numbers) or of megabytes."""
    if x == "round":
        return MaxNLocator(nbins=6, steps=[1, 2, 5, 10], integer=True)
    return MaxNLocator(nbins=6, steps=[1, 2, 2.5, 5, 10])


def _draw_clients(
    ax: Axes, runs: Sequence[_Run], client_test_fraction: float
) -> tuple[dict[str, Drawn], list[tuple[Axes, dict]]]:
    """Every run's accuracy per client at its last evaluated round, worst to best, on ``ax``.

    Each run's global model on the clients' own test sets, and, for an algorithm of
    :data:`PERSONALIZED`, its personalised models (local-only and FedPer have no global model).
    Reads the Histories only; trains nothing.
    """
    _clear(ax)
    ax.set_title("")
    accuracies: dict[str, np.ndarray] = {}
    for run in runs:
        personal = run.settings.get("algorithm") in PERSONALIZED
        for kind, suffix in (("global", "global"), ("personal", "personalised")):
            if kind == "personal" and not personal:
                continue
            values = run.history.last_client_accuracy(kind)
            if values is not None:
                accuracies[f"{run.label} · {suffix}" if personal else run.label] = values
    if not accuracies:
        if client_test_fraction == 0:
            text = (
                "No per-client test sets: make the Dashboard with client_test_fraction=0.2\n"
                "to hold out a test set of every client's own."
            )
        else:
            text = "No evaluated round yet: Run or Step to see each client's accuracy."
        ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes)
        ax.set(xlim=(0, 1), ylim=(0, 1))
        return {}, []
    drawn = {"clients": plot_client_accuracy(accuracies, ax=ax, legend=False)}
    ax.set_xlabel(ax.get_xlabel(), fontsize=9, labelpad=1)
    return drawn, [(ax, {"loc": "lower right"})]


def _draw(
    axes: np.ndarray, current: _Run, kept: Sequence[_Run], x: str = "round"
) -> tuple[dict[str, Drawn], list[tuple[Axes, dict]]]:
    """Loss, accuracy (every run), drift and update agreement on the 2×2 ``axes``.

    ``x``: the loss and accuracy panels' x axis, ``"round"`` or ``"megabytes"`` (the drift
    panels are always per round). The round axes span :func:`_rounds_shown` of the most rounds
    any run on the charts has done (the rounds planned play no part); the megabyte axes span
    what the current run would have sent by then at its megabytes per round so far, or the
    most any kept run sent, whichever is more. Returns what was drawn and the legends to show
    (axes and placement), which :meth:`_Plots.render` builds only when their labels change.
    """
    ax_loss, ax_acc, ax_drift, ax_cos = axes.flat
    for ax in axes.flat:
        _clear(ax)
    drawn: dict[str, Drawn] = {}
    history = current.history
    drawn["loss"] = plot_loss(history, ax=ax_loss, legend=False, x=x)
    # the current run keeps the first colour of the cycle (plot_loss uses it); earlier runs the rest
    current_color, *others = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    drawn["client_loss"] = _plot_client_loss_range(history, ax_loss, current_color, x)
    colors = [others[i % len(others)] for i in range(len(kept))]
    for run, color in zip(kept, colors, strict=True):  # earlier runs: thin test-loss lines
        xs = _x_values(run.history, x)
        ax_loss.plot(xs, run.history.test_loss, color=color, lw=0.9, alpha=0.8)
    ax_acc.set_prop_cycle(color=[*colors, current_color])
    for run in kept:
        drawn[f"accuracy: {run.label}"] = plot_accuracy(
            run.history, ax=ax_acc, label=run.label, legend=False, x=x
        )
    drawn[f"accuracy: {current.label}"] = plot_accuracy(
        history, ax=ax_acc, label=f"{current.label} (now)", legend=False, x=x
    )
    ax_acc.lines[-1].set_linewidth(2.2)
    drawn["drift"] = plot_drift(history, axes=(ax_drift, ax_cos), legend=False)
    legends = [
        (ax_loss, {"loc": "upper right"}),
        (ax_acc, {"loc": "lower right"}),
        (ax_drift, {"loc": "upper right", "ncols": 3}),
        (ax_cos, {"loc": "lower left"}),
    ]
    # from 0 to a round number, with room for the legend: steady ticks, a steady background
    for ax, room in ((ax_loss, 1.03), (ax_drift, 1.25)):
        ax.set_ylim(0.0, _nice_top(room * ax.dataLim.y1) if ax.dataLim.height >= 0 else 1.0)
    shown = _rounds_shown(max([len(history), *(len(run.history) for run in kept)]))
    rounds_right = shown + 0.5
    if x == "round":
        right = rounds_right
    else:  # the most sent by a kept run, or by this one after `shown` rounds at its pace so far
        sent = [run.history.megabytes_sent[-1] for run in kept if len(run.history)]
        if len(history):
            sent.append(history.megabytes_sent[-1] / len(history) * shown)
        right = _nice_top(1.02 * max(sent, default=0.0))
    for ax in axes.flat:
        panel_x = x if ax in (ax_loss, ax_acc) else "round"
        ax.xaxis.set_major_locator(_x_locator(panel_x))  # microseconds: ticks are made on draw
        ax.set_xlim(0, right if panel_x != "round" else rounds_right)
        ax.set_xlabel(ax.get_xlabel(), fontsize=9, labelpad=1)  # as fedlab.plot names it
    return drawn, legends


__all__ = [
    "ALGORITHM_NAMES",
    "ALGORITHM_PARAMETERS",
    "ATTACK_NAMES",
    "BATCH_SIZES",
    "DATASETS",
    "DEFENCE_NAMES",
    "DEFENCE_PARAMETERS",
    "MAX_ATTACKERS",
    "PARAMETER_OF",
    "PARTITIONS",
    "PERSONALIZED",
    "VIEWS",
    "X_AXES",
    "Dashboard",
    "run_label",
]
