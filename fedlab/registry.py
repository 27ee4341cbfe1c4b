"""Every named part of a run and its settings, declared once (``03_fedsgd_vs_fedavg``).

The command line (:mod:`fedlab.cli`), the Dashboard (:mod:`fedlab.ui.dashboard`) and Flower's run
settings (:class:`fedlab.flower.FlowerConfig`) build runs from names — ``"fedprox"`` with
``mu=0.1``, ``"dirichlet"`` with ``alpha=0.5`` — and this module is where those names live:

* a :class:`Setting` is one knob: name, type, default, allowed range or choices and one line of
  help; :meth:`Setting.check` raises fedlab's plain-English errors (:mod:`fedlab.validate`);
* a :class:`Component` is one named part of a run — an algorithm, a dataset, a model, a client
  split or an update codec — with the function that makes it and its settings;
* :data:`ALGORITHMS`, :data:`DATASETS`, :data:`MODELS`, :data:`SPLITS` and :data:`CODECS` map the
  names to components. An algorithm's settings are its factory's parameters (names and defaults
  read with :func:`inspect.signature`), with types, ranges and help from
  :data:`ALGORITHM_SETTINGS`; adding an algorithm is one line, ``_algorithm(...)`` below;
* :func:`algorithm_from_config` rebuilds an algorithm from the ``config()`` a History saved: it is
  :meth:`fedlab.algorithms.Algorithm.from_config` (Keras's ``get_config``/``from_config``).

Example:
    >>> ALGORITHMS["fedprox"].defaults()
    {'mu': 0.01, 'local_epochs': 1, 'batch_size': 20, 'client_lr': 0.1, 'server_lr': 1.0}
    >>> ALGORITHMS["fedprox"].build(mu=0.5).config()["mu"]
    0.5
    >>> ALGORITHMS["fedprox"].setting("mu").check(-1.0)
    Traceback (most recent call last):
    ...
    ValueError: mu must be a finite number in [0, inf), got -1.0
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from fedlab import (
    algorithms,
    compression,
    data,
    models,
    partition,
    personalization,
    poisoning,
    privacy,
    robust,
)
from fedlab.validate import check_choice, check_float, check_int

__all__ = [
    "ALGORITHMS",
    "ALGORITHM_SETTINGS",
    "ATTACK_KINDS",
    "DEFENCES",
    "CODECS",
    "DATASETS",
    "FEDERATED",
    "MODELS",
    "SPLITS",
    "TRAINING_SETTINGS",
    "Component",
    "Setting",
    "aggregator_from_config",
    "algorithm_from_config",
    "check_fits",
    "data_for_model",
    "make_attackers",
    "with_defence",
]


@dataclass(frozen=True)
class Setting:
    """One setting of a component: what it is, what values it takes, and how panels show it.

    Attributes:
        name: the Python argument (``"client_lr"``).
        kind: ``int``, ``float``, ``bool`` or ``str``.
        default: the value used when it is not given.
        help: one line saying what it does (:meth:`text` adds the range).
        low, high: the allowed range (``None``: unbounded); ``high=inf`` with
            ``high_inclusive=True`` allows ``inf`` itself (``clip_norm``: no clipping).
        low_inclusive, high_inclusive: whether the bounds themselves are allowed.
        choices: the allowed values of a ``str`` setting (empty: any string).
        none: what ``None`` means where it is allowed (``"full"``: full batch), a word the
            command line accepts for ``None`` in a number setting; empty: ``None`` is refused.
        label: the label of its control in a panel (``"μ (proximal)"``).
        symbol: its short name in a run's label (``"μ"`` gives ``μ=0.1``).
        metavar: its placeholder in command-line help (default: the name in capitals).
        span: ``(min, max, step)`` of the slider a panel offers (a teaching range inside the
            allowed one); ``None``: panels offer no control for it.
        log: the slider moves on a log scale (``min`` and ``max`` are values, not exponents).

    Example:
        >>> Setting("momentum", float, 0.9, "server momentum", low=0.0, high=1.0,
        ...         high_inclusive=False).describe()
        'in [0, 1)'
    """

    name: str
    kind: type
    default: Any = None
    help: str = ""
    low: float | None = None
    high: float | None = None
    low_inclusive: bool = True
    high_inclusive: bool = True
    choices: tuple[str, ...] = ()
    none: str = ""
    label: str = ""
    symbol: str = ""
    metavar: str = ""
    span: tuple[float, float, float] | None = None
    log: bool = False

    def check(self, value: Any) -> Any:
        """``value`` checked (ints as ``int``, numbers as ``float``), or a ValueError/TypeError
        naming the setting and what it allows.

        Example:
            >>> ALGORITHM_SETTINGS["batch_size"].check(None) is None  # full batch
            True
            >>> ALGORITHM_SETTINGS["local_epochs"].check(0)
            Traceback (most recent call last):
            ...
            ValueError: local_epochs must be an integer in [1, inf], got 0
        """
        if value is None and self.none:
            return None
        if self.kind is bool:
            if not isinstance(value, bool | np.bool_):
                raise TypeError(
                    f"{self.name} must be True or False, got {type(value).__name__} {value!r}"
                )
            return bool(value)
        if self.kind is int:
            return check_int(self.name, value, low=self.low, high=self.high)
        if self.kind is float:
            infinite = self.high == math.inf and self.high_inclusive
            if infinite and isinstance(value, int | float) and value == math.inf:
                return math.inf
            return check_float(
                self.name,
                value,
                low=self.low,
                high=None if infinite else self.high,
                low_inclusive=self.low_inclusive,
                high_inclusive=self.high_inclusive,
            )
        if self.choices:
            return check_choice(self.name, value, self.choices)
        if not isinstance(value, str | os.PathLike):
            raise TypeError(f"{self.name} must be a string, got {type(value).__name__} {value!r}")
        return value

    def describe(self) -> str:
        """The allowed values in a few characters, for help texts (``"> 0"``, ``"in [0, 1)"``).

        Example:
            >>> ALGORITHM_SETTINGS["client_lr"].describe(), ALGORITHM_SETTINGS["mu"].describe()
            ('> 0', '>= 0')
        """
        if self.choices:
            return "one of " + ", ".join(self.choices)
        if self.kind not in (int, float) or self.low is None and self.high is None:
            return ""
        if self.high is None:
            return f"{'>=' if self.low_inclusive else '>'} {self.low:g}"
        if self.low is None:
            return f"{'<=' if self.high_inclusive else '<'} {self.high:g}"
        opening = "[" if self.low_inclusive else "("
        closing = "]" if self.high_inclusive else ")"
        return f"in {opening}{self.low:g}, {self.high:g}{closing}"

    def text(self) -> str:
        """The help with the range: ``"first-moment decay in [0, 1)"``.

        Example:
            >>> ALGORITHM_SETTINGS["client_lr"].text()
            "clients' local SGD learning rate, > 0"
        """
        allowed = self.describe()
        if not allowed:
            return self.help
        return f"{self.help} {allowed}" if allowed.startswith("in ") else f"{self.help}, {allowed}"


@dataclass(frozen=True)
class Component:
    """A named part of a run — algorithm, dataset, model, split or codec — and its settings.

    ``factory`` makes it. Its arguments are the component's settings, after the ones the run
    gives every component of its kind: a dataset's factory takes ``(num_clients, seed)`` first, a
    split's ``(dataset, num_clients, seed)``, a model's ``(num_classes)``; an algorithm's and a
    codec's take settings only.

    Attributes:
        kind: ``"algorithm"``, ``"dataset"``, ``"model"``, ``"split"`` or ``"codec"``.
        key: its name in code and on the command line (``"fedprox"``).
        factory: the function that makes it.
        settings: its settings, in the factory's order.
        help: one line saying what it is.
        label: the name shown to people (an algorithm's is the ``name`` in its ``config()``).
        group: algorithms only: ``"federated"`` (:data:`fedlab.algorithms.ALGORITHMS`),
            ``"personalized"`` (:data:`fedlab.personalization.PERSONALIZATION`),
            ``"private"`` (:mod:`fedlab.privacy`) or ``""`` (none of these).
        has: what a dataset offers other components: ``"images"`` (image inputs),
            ``"clients"`` (its own natural clients).
        needs: what a model or split needs the dataset to have (see :func:`check_fits`).

    Example:
        >>> SPLITS["dirichlet"].defaults(), MODELS["cnn"].needs
        ({'alpha': 0.5}, frozenset({'images'}))
    """

    kind: str
    key: str
    factory: Callable[..., Any]
    settings: tuple[Setting, ...] = ()
    help: str = ""
    label: str = ""
    group: str = ""
    has: frozenset[str] = frozenset()
    needs: frozenset[str] = frozenset()

    @property
    def names(self) -> tuple[str, ...]:
        """The names of its settings."""
        return tuple(s.name for s in self.settings)

    @property
    def hyperparameters(self) -> tuple[Setting, ...]:
        """Its settings other than the shared :data:`TRAINING_SETTINGS` (FedProx: ``mu``)."""
        return tuple(s for s in self.settings if s.name not in TRAINING_SETTINGS)

    def setting(self, name: str) -> Setting:
        """The setting called ``name``; a ValueError lists the ones it has.

        Example:
            >>> ALGORITHMS["fedsgd"].setting("mu")
            Traceback (most recent call last):
            ...
            ValueError: fedsgd has no setting 'mu'; its settings are ['client_lr', 'server_lr']
        """
        for setting in self.settings:
            if setting.name == name:
                return setting
        raise ValueError(f"{self.key} has no setting {name!r}; its settings are {list(self.names)}")

    def defaults(self) -> dict[str, Any]:
        """Every setting's default, by name."""
        return {s.name: s.default for s in self.settings}

    def pick(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Its own settings out of ``values`` (a front end's options, with other components'
        among them). ``None`` means "not given" — the default applies — unless ``None`` is a
        value of the setting (``batch_size=None``: full batch).

        Example:
            >>> ALGORITHMS["fedsgd"].pick({"client_lr": 0.5, "server_lr": None, "mu": 0.1})
            {'client_lr': 0.5}
        """
        return {
            s.name: values[s.name]
            for s in self.settings
            if s.name in values and (values[s.name] is not None or s.none)
        }

    def check(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """``values`` checked setting by setting; a name it has no setting for is refused."""
        return {name: self.setting(name).check(value) for name, value in values.items()}

    def build(self, *run: Any, **values: Any) -> Any:
        """Make it: ``factory(*run, **settings)``, the settings not given at their defaults.

        Example:
            >>> ALGORITHMS["fedavgm"].build(momentum=0.5).config()["server_optimizer"]["momentum"]
            0.5
        """
        return self.factory(*run, **{**self.defaults(), **self.check(values)})


TRAINING_SETTINGS = ("local_epochs", "batch_size", "client_lr", "server_lr")
"""The client-training settings and server step most algorithms share. Front ends offer them
whatever the algorithm, and leave out those it does not take (FedSGD: E and B)."""


def _float(name: str, help: str, low: float | None = None, high: float | None = None, **more):
    return Setting(name, float, help=help, low=low, high=high, **more)


_POSITIVE = {"low": 0.0, "low_inclusive": False}
_FRACTION = {"low": 0.0, "high": 1.0, "high_inclusive": False}  # [0, 1): decays, momentum

ALGORITHM_SETTINGS: dict[str, Setting] = {
    s.name: s
    for s in (
        Setting(
            "local_epochs",
            int,
            help="passes over its own data each client makes per round",
            low=1,
            label="local epochs E",
            symbol="E",
            metavar="E",
            span=(1, 20, 1),
        ),
        Setting(
            "batch_size",
            int,
            help="local mini-batch size, or 'full' for one full-batch step per epoch",
            low=1,
            none="full",
            label="batch size B",
            symbol="B",
            metavar="B",
        ),
        _float(
            "client_lr",
            "clients' local SGD learning rate",
            **_POSITIVE,
            label="client lr",
            symbol="lr",
            metavar="LR",
            span=(0.001, 10.0, 0.1),
            log=True,
        ),
        _float(
            "server_lr",
            "server step applied to the averaged update (1 is plain FedAvg)",
            **_POSITIVE,
            label="server lr",
            symbol="η",
            metavar="LR",
            span=(0.001, 10.0, 0.1),
            log=True,
        ),
        _float(
            "mu",
            "proximal strength μ (0 is FedAvg)",
            low=0.0,
            label="μ (proximal)",
            symbol="μ",
            span=(0.001, 10.0, 0.1),
            log=True,
        ),
        _float(
            "momentum",
            "server momentum (0 is FedAvg)",
            **_FRACTION,
            label="server momentum β",
            symbol="β",
            metavar="BETA",
            span=(0.0, 0.99, 0.01),
        ),
        Setting("nesterov", bool, help="use Nesterov momentum"),
        _float("beta1", "first-moment decay", **_FRACTION, metavar="B1"),
        _float("beta2", "second-moment decay", **_FRACTION, metavar="B2"),
        _float("tau", "adaptivity τ (smaller is more adaptive)", **_POSITIVE),
        _float(
            "lam",
            "how strongly a personal model is pulled towards the global one (0: local only)",
            low=0.0,
            label="λ (Ditto)",
            symbol="λ",
            span=(0.001, 100.0, 0.1),
            log=True,
        ),
        Setting("fine_tune_steps", int, help="local SGD steps before a client evaluates", low=1),
        Setting("head_weights", int, help="the model's last weight arrays kept per client", low=1),
        Setting("num_clusters", int, help="K, the number of cluster models", low=1),
        _float("noise_multiplier", "z, the noise's std in units of clip_norm", low=0.0),
        _float(
            "clip_norm",
            "S, the largest L2 norm of a client's update (inf: no clipping)",
            low=0.0,
            high=math.inf,
            low_inclusive=False,
        ),
        _float(
            "delta",
            "the δ at which ε is reported",
            0.0,
            1.0,
            low_inclusive=False,
            high_inclusive=False,
        ),
        Setting("accountant", str, help="the privacy accountant", choices=privacy.ACCOUNTANTS),
    )
}
"""What each parameter of the algorithm factories is, declared once for all of them: type,
range and help (the defaults come from each factory's signature)."""


def _algorithm(key: str, factory: Callable[..., algorithms.Algorithm], help: str) -> Component:
    """The component of an algorithm factory: its parameters and defaults from its signature,
    its label from the algorithm it makes, its group from the table that lists it."""
    settings = []
    for parameter in inspect.signature(factory).parameters.values():
        if parameter.name not in ALGORITHM_SETTINGS:
            raise TypeError(
                f"{factory.__name__} takes {parameter.name!r}: declare it in ALGORITHM_SETTINGS"
            )
        settings.append(
            dataclasses.replace(ALGORITHM_SETTINGS[parameter.name], default=parameter.default)
        )
    if factory in algorithms.ALGORITHMS.values():
        group = "federated"
    elif factory in personalization.PERSONALIZATION.values():
        group = "personalized"
    else:
        group = "private" if factory.__module__ == privacy.__name__ else ""
    return Component(
        "algorithm", key, factory, tuple(settings), help, label=factory().name, group=group
    )


def _by_key(*components: Component) -> dict[str, Component]:
    return {c.key: c for c in components}


ALGORITHMS: dict[str, Component] = _by_key(
    _algorithm("fedavg", algorithms.FedAvg, "local epochs of mini-batch SGD, then a weighted mean"),
    _algorithm("fedsgd", algorithms.FedSGD, "one full-batch gradient step per client"),
    _algorithm("fedprox", algorithms.FedProx, "FedAvg with a proximal term"),
    _algorithm("scaffold", algorithms.Scaffold, "control variates correct client drift"),
    _algorithm("fedavgm", algorithms.FedAvgM, "server momentum"),
    _algorithm("fedadam", algorithms.FedAdam, "the adaptive server optimiser Adam"),
    _algorithm("fedyogi", algorithms.FedYogi, "the adaptive server optimiser Yogi"),
    _algorithm("fedadagrad", algorithms.FedAdagrad, "the adaptive server optimiser Adagrad"),
    _algorithm("fednova", algorithms.FedNova, "FedAvg normalised by each client's local steps"),
    _algorithm("local", personalization.LocalOnly, "each client trains alone (the baseline)"),
    _algorithm("finetune", personalization.FedAvgFineTune, "FedAvg, then local fine-tuning"),
    _algorithm("fedper", personalization.FedPer, "a shared body, a personal head per client"),
    _algorithm("ditto", personalization.Ditto, "FedAvg plus personal models pulled towards it"),
    _algorithm("ifca", personalization.IFCA, "K cluster models; each client picks one"),
    _algorithm("multitask", personalization.MultiTaskFedAvg, "a shared body, a head per task"),
    _algorithm("dpfedavg", privacy.DPFedAvg, "FedAvg with user-level (central) DP"),
    _algorithm("ldpfedavg", privacy.LocalDPFedAvg, "FedAvg with local DP"),
)
"""Every algorithm by key: :data:`fedlab.algorithms.ALGORITHMS` (group ``"federated"``),
:data:`fedlab.personalization.PERSONALIZATION` (``"personalized"``) and DP-FedAvg with central
and local noise (``"private"``)."""


FEDERATED = tuple(k for k, c in ALGORITHMS.items() if c.group == "federated")
"""The keys of :data:`fedlab.algorithms.ALGORITHMS`: the algorithms every front end offers."""


def _digits(num_clients: int, seed: int) -> data.Dataset:
    return data.load_digits(seed=seed)


def _synthetic(num_clients: int, seed: int, alpha: float, beta: float) -> data.Dataset:
    return data.synthetic(alpha, beta, num_clients=num_clients, seed=seed)


def _mnist(num_clients: int, seed: int, path: str | None) -> data.Dataset:
    return data.load_mnist(path)


DATASETS: dict[str, Component] = _by_key(
    Component(
        "dataset",
        "digits",
        _digits,
        help="scikit-learn's 8x8 digits, offline",
        label="digits",
        has=frozenset({"images"}),
    ),
    Component(
        "dataset",
        "synthetic",
        _synthetic,
        (
            _float(
                "alpha",
                "how different the clients' labelling functions are",
                low=0.0,
                default=1.0,
                label="α (labels)",
                metavar="ALPHA",
                span=(0.0, 2.0, 0.1),
            ),
            _float(
                "beta",
                "how different the clients' inputs are",
                low=0.0,
                default=1.0,
                label="β (inputs)",
                metavar="BETA",
                span=(0.0, 2.0, 0.1),
            ),
        ),
        help="FedProx's Synthetic(alpha, beta) with one natural client per device",
        label="Synthetic(α, β)",
        has=frozenset({"clients"}),
    ),
    Component(
        "dataset",
        "mnist",
        _mnist,
        (
            Setting(
                "path",
                str,
                help="path to Keras' mnist.npz; fedlab never downloads",
                none="~/.keras/datasets/mnist.npz",
                metavar="PATH",
            ),
        ),
        help="MNIST from Keras' mnist.npz (fedlab never downloads)",
        label="MNIST",
        has=frozenset({"images"}),
    ),
)
"""The datasets by key; a factory takes ``(num_clients, seed, **settings)`` (``num_clients``: how
many devices Synthetic generates; the others ignore it)."""

MODELS: dict[str, Component] = _by_key(
    Component("model", "mlp", models.MODELS["mlp"], help="Dense(128, relu) -> logits (FedModel)"),
    Component("model", "logreg", models.MODELS["logreg"], help="multinomial logistic regression"),
    Component(
        "model",
        "cnn",
        models.MODELS["cnn"],
        help="small CNN on the inputs as images (digits, mnist)",
        needs=frozenset({"images"}),
    ),
)
"""The models of :data:`fedlab.models.MODELS` by key; a factory takes ``num_classes``."""


def _iid(dataset: data.Dataset, num_clients: int, seed: int) -> partition.ClientSplit:
    return partition.iid(dataset.y_train, num_clients, seed=seed)


def _dirichlet(dataset: data.Dataset, num_clients: int, seed: int, alpha: float):
    return partition.dirichlet(dataset.y_train, num_clients, alpha, seed=seed)


def _shards(dataset: data.Dataset, num_clients: int, seed: int, shards_per_client: int):
    return partition.shards(dataset.y_train, num_clients, shards_per_client, seed=seed)


def _natural(dataset: data.Dataset, num_clients: int, seed: int) -> partition.ClientSplit:
    return partition.natural(dataset.client_ids, dataset.y_train)


_SHARDS_DEFAULT = inspect.signature(partition.shards).parameters["shards_per_client"].default
SPLITS: dict[str, Component] = _by_key(
    Component("split", "iid", _iid, help="shuffles and deals the examples out evenly"),
    Component(
        "split",
        "dirichlet",
        _dirichlet,
        (
            _float(
                "alpha",
                "the Dirichlet concentration (small: each client has few labels)",
                **_POSITIVE,
                default=0.5,
                label="Dirichlet α",
                span=(0.01, 100.0, 0.1),
                log=True,
            ),
        ),
        help="label skew: each class shared among the clients in Dir(alpha) proportions",
    ),
    Component(
        "split",
        "shards",
        _shards,
        (
            Setting(
                "shards_per_client",
                int,
                _SHARDS_DEFAULT,
                "label-sorted shards each client gets",
                low=1,
                label="shards / client",
                span=(1, 10, 1),
            ),
        ),
        help="the FedAvg paper's shards of label-sorted examples",
    ),
    Component(
        "split",
        "natural",
        _natural,
        help="keeps the dataset's own clients",
        needs=frozenset({"clients"}),
    ),
)
"""The client splits of :mod:`fedlab.partition` by key; a factory takes
``(dataset, num_clients, seed, **settings)`` (``natural`` ignores ``num_clients``)."""

_FRACTION_DEFAULT = inspect.signature(compression.TopK).parameters["fraction"].default
CODECS: dict[str, Component] = _by_key(
    Component("codec", "none", lambda: None, help="send updates as they are"),
    Component("codec", "float16", compression.Float16, help="half-precision floats"),
    Component(
        "codec",
        "int8",
        lambda: compression.StochasticQuantizer(bits=8),
        help="8-bit stochastic quantisation",
    ),
    Component(
        "codec",
        "topk",
        compression.TopK,
        (
            _float(
                "fraction",
                "share of coordinates sent",
                0.0,
                1.0,
                low_inclusive=False,
                default=_FRACTION_DEFAULT,
            ),
        ),
        help="only the largest coordinates",
    ),
)
"""The update codecs of :mod:`fedlab.compression` by key (``"none"`` makes ``None``)."""


def _trimmed_mean(trim_beta: float) -> robust.TrimmedMean:
    return robust.TrimmedMean(beta=trim_beta)


def _krum(num_byzantine: int) -> robust.Krum:
    return robust.Krum(num_byzantine=num_byzantine)


def _multi_krum(num_byzantine: int, num_selected: int) -> robust.Krum:
    return robust.Krum(num_byzantine=num_byzantine, num_selected=num_selected)


def _bulyan(num_byzantine: int) -> robust.Bulyan:
    return robust.Bulyan(num_byzantine=num_byzantine)


def _clipping(clip_norm: float, noise_std: float) -> robust.NormClipping:
    return robust.NormClipping(clip_norm=clip_norm, noise_std=noise_std)


_BYZANTINE = Setting(
    "num_byzantine",
    int,
    1,
    "f, how many attackers the defence is built to withstand",
    low=0,
    label="f (assumed attackers)",
    symbol="f",
    metavar="F",
    span=(0, 10, 1),
)
DEFENCES: dict[str, Component] = _by_key(
    Component(
        "defence",
        "mean",
        lambda: None,
        help="the plain weighted mean: no defence",
        label="mean (no defence)",
    ),
    Component(
        "defence",
        "median",
        robust.CoordinateMedian,
        help="coordinate-wise median (Yin 2018)",
        label="median",
    ),
    Component(
        "defence",
        "trimmed_mean",
        _trimmed_mean,
        (
            _float(
                "trim_beta",
                "share of the largest and of the smallest values dropped per coordinate",
                0.0,
                0.5,
                high_inclusive=False,
                default=0.2,
                label="trimmed β",
                symbol="β",
                span=(0.0, 0.45, 0.05),
            ),
        ),
        help="coordinate-wise trimmed mean (Yin 2018)",
        label="trimmed mean",
    ),
    Component("defence", "krum", _krum, (_BYZANTINE,), help="the update closest to its neighbours"),
    Component(
        "defence",
        "multi_krum",
        _multi_krum,
        (
            _BYZANTINE,
            Setting(
                "num_selected",
                int,
                3,
                "m, the best-scored updates averaged",
                low=1,
                symbol="m",
                metavar="M",
            ),
        ),
        help="the mean of the m best Krum scores (Blanchard 2017)",
        label="Multi-Krum",
    ),
    Component(
        "defence",
        "bulyan",
        _bulyan,
        (_BYZANTINE,),
        help="Krum, then a trimmed mean",
        label="Bulyan",
    ),
    Component(
        "defence",
        "clipping",
        _clipping,
        (
            _float(
                "clip_norm",
                "the largest L2 norm of an update the server accepts",
                **_POSITIVE,
                default=1.0,
                label="clip norm",
                symbol="S",
                metavar="NORM",
                span=(0.05, 5.0, 0.05),
            ),
            _float(
                "noise_std",
                "std of the weak-DP noise added to the mean",
                low=0.0,
                default=0.0,
                symbol="σ",
                metavar="STD",
            ),
        ),
        help="norm clipping, with optional weak DP noise (Sun 2019)",
        label="norm clipping",
    ),
)
"""The robust aggregators of :mod:`fedlab.robust` the front ends offer, by key (``"mean"`` makes
``None``: keep the algorithm's own). FLTrust is left out: it needs a root dataset on the server
(use it from Python)."""

ATTACK_KINDS: dict[str, Component] = _by_key(
    Component("attack", "none", lambda: None, help="every client is honest"),
    Component("attack", "label_flip", poisoning.LabelFlip, help="labels y -> C - 1 - y"),
    Component("attack", "sign_flip", poisoning.SignFlip, help="sends the opposite of its update"),
    Component(
        "attack",
        "scaled",
        lambda: poisoning.ScaledUpdate(10.0),
        help="sends its update scaled by 10 (model replacement's boost)",
    ),
    Component(
        "attack", "gaussian", lambda: poisoning.GaussianUpdate(1.0), help="sends N(0, 1) noise"
    ),
    Component(
        "attack", "free_rider", poisoning.FreeRider, help="sends nothing new (a zero update)"
    ),
    Component(
        "attack",
        "alie",
        poisoning.ALittleIsEnough,
        help="mean - z * std of the honest updates (Baruch 2019; simulation only)",
    ),
    Component(
        "attack",
        "backdoor",
        lambda: poisoning.Backdoor(target=0),
        help="a pixel trigger that makes the model predict 0",
    ),
)
"""The attacks of :mod:`fedlab.poisoning` the front ends offer, by key (``"none"`` makes
``None``); each with its default strength."""


def make_attackers(attack: str, num_attackers: int) -> poisoning.Attackers | None:
    """The run's :class:`~fedlab.poisoning.Attackers` from an attack's key and a count (``None``
    for ``"none"``); an attack with no attackers, or attackers with no attack, is an error.

    Example:
        >>> make_attackers("sign_flip", 2).config()["count"]
        2
    """
    check_choice("attack", attack, ATTACK_KINDS)
    num_attackers = check_int("num_attackers", num_attackers, low=0)
    if (attack == "none") != (num_attackers == 0):
        raise ValueError(
            f"attack={attack!r} with num_attackers={num_attackers}: choose an attack and at "
            "least one attacker, or attack='none' with num_attackers=0"
        )
    if attack == "none":
        return None
    return poisoning.Attackers(ATTACK_KINDS[attack].build(), count=num_attackers)


def with_defence(algorithm: algorithms.Algorithm, defence: str, **settings) -> algorithms.Algorithm:
    """``algorithm`` with the robust aggregator ``defence`` (a key of :data:`DEFENCES`) and its
    settings; ``"mean"`` leaves it as it is.

    Example:
        >>> with_defence(algorithms.FedAvg(), "krum", num_byzantine=2).name
        'FedAvg + Krum'
    """
    check_choice("defence", defence, DEFENCES)
    aggregator = DEFENCES[defence].build(**settings)
    return algorithm if aggregator is None else algorithm.with_aggregator(aggregator)


_NEEDED = {"images": "image data", "clients": "a dataset with its own clients"}


def check_fits(
    argument: str, part: Component, dataset: Component, offered: Sequence[str] | None = None
) -> None:
    """Refuse a model or split whose ``needs`` the dataset lacks, naming the datasets that fit
    among ``offered`` keys (default: all).

    Example:
        >>> check_fits("model", MODELS["cnn"], DATASETS["synthetic"], ("digits", "synthetic"))
        Traceback (most recent call last):
        ...
        ValueError: model 'cnn' needs image data (digits), which synthetic does not have
    """
    missing = sorted(part.needs - dataset.has)
    if missing:
        fitting = [k for k in offered or DATASETS if part.needs <= DATASETS[k].has]
        raise ValueError(
            f"{argument} {part.key!r} needs {_NEEDED[missing[0]]} ({' or '.join(fitting)}), "
            f"which {dataset.key} does not have"
        )


def data_for_model(model: str, dataset: data.Dataset) -> data.Dataset:
    """``dataset`` as the model ``model`` (a key of :data:`MODELS`) takes it: with its inputs
    shaped as images for a model that needs images (the CNN), else unchanged.

    Example:
        >>> data_for_model("cnn", data.load_digits()).x_train.shape
        (1437, 8, 8, 1)
    """
    return dataset.as_images() if "images" in MODELS[model].needs else dataset


# -- from a saved config back to the algorithm -----------------------------------------------


def _flatten(config: Mapping[str, Any]) -> dict[str, Any]:
    """Every key of ``config`` and of the dicts nested in it (outer keys win), but ``name``."""
    flat: dict[str, Any] = {}
    nested = []
    for key, value in config.items():
        if isinstance(value, Mapping):
            nested.append(value)
        elif key != "name":
            flat[key] = value
    for inner in nested:
        flat = {**_flatten(inner), **flat}
    return flat


def _compare(given: Mapping, rebuilt: Mapping, label: str, where: str = "config") -> None:
    for key in given:
        if key not in rebuilt:
            raise ValueError(f"{where}[{key!r}] is not a setting of {label}: unknown key")
    for key, value in rebuilt.items():
        if key not in given:
            raise ValueError(f"{where} has no {key!r}, which {label}'s config() has")
        if isinstance(value, Mapping) and isinstance(given[key], Mapping):
            _compare(given[key], value, label, f"{where}[{key!r}]")
        elif given[key] != value:
            raise ValueError(
                f"{where}[{key!r}] is {given[key]!r}, but {label} with the config's settings "
                f"has {value!r}: the config is inconsistent"
            )


def aggregator_from_config(config: Mapping[str, Any]):
    """The robust aggregator of :mod:`fedlab.robust` whose ``config()`` is ``config``.

    FLTrust is refused: its root dataset is not part of a config (rebuild it in Python).

    Example:
        >>> aggregator_from_config(robust.Krum(2).config())
        Krum(num_byzantine=2, num_selected=1, weighted=False)
    """
    if not isinstance(config, Mapping) or "name" not in config:
        raise ValueError(f"an aggregator's config must be a dict with a 'name', got {config!r}")
    classes = {
        cls.__name__: cls
        for cls in (
            robust.CoordinateMedian,
            robust.TrimmedMean,
            robust.Krum,
            robust.Bulyan,
            robust.NormClipping,
            robust.GeometricMedian,
        )
    }
    name = config["name"]
    if name == "FLTrust":
        raise ValueError(
            "FLTrust's root dataset and model are not saved in a config: rebuild it in Python"
        )
    if name not in classes:
        raise ValueError(
            f"config['aggregator']['name'] is {name!r}, which is no robust aggregator; the names "
            f"are {sorted(classes)}"
        )
    aggregator = classes[name](**{key: value for key, value in config.items() if key != "name"})
    _compare(config, aggregator.config(), name, "config['aggregator']")
    return aggregator


def algorithm_from_config(config: Mapping[str, Any]) -> algorithms.Algorithm:
    """The algorithm whose ``config()`` is ``config`` (e.g. ``history.config["algorithm"]``).

    ``config["name"]`` (``"FedAvg"``, ``"DP-FedAvg"``...) picks the registered algorithm; its
    settings are read from the config (nested ``server_optimizer`` dicts included) and the
    rebuilt algorithm's ``config()`` must be ``config`` again, else a ValueError names the key
    that differs (a FedSGD config with ``local_epochs=3`` is not one FedSGD makes).

    Example:
        >>> adam = algorithms.FedAdam(tau=0.01)
        >>> algorithm_from_config(adam.config()) == adam
        True
    """
    if not isinstance(config, Mapping):
        raise TypeError(
            f"config must be a dict (an algorithm's config()), got {type(config).__name__}"
        )
    by_label = {c.label: c for c in ALGORITHMS.values()}
    if "name" not in config:
        raise ValueError("config has no 'name': it names the algorithm (e.g. 'FedAvg')")
    label = str(config["name"])
    if label not in by_label and " + " in label and isinstance(config.get("aggregator"), Mapping):
        # an algorithm with a robust aggregator: "FedAvg + Krum" (Algorithm.with_aggregator)
        base = {key: value for key, value in config.items() if key != "aggregator"}
        base["name"] = label.rsplit(" + ", 1)[0]
        aggregator = aggregator_from_config(config["aggregator"])
        algorithm = algorithm_from_config(base).with_aggregator(aggregator)
        _compare(config, algorithm.config(), label)
        return algorithm
    component = by_label.get(config["name"])
    if component is None:
        raise ValueError(
            f"config['name'] is {config['name']!r}, which is no registered algorithm; "
            f"the names are {sorted(by_label)}"
        )
    flat = _flatten(config)
    for name in component.names:
        if name not in flat:
            raise ValueError(f"config has no {name!r}, which {component.label} needs")
    algorithm = component.build(**{name: flat[name] for name in component.names})
    _compare(config, algorithm.config(), component.label)
    return algorithm
