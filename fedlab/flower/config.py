"""One Flower run's settings: :class:`FlowerConfig` (``14_from_simulation_to_deployment``).

What :func:`fedlab.simulate` would take, as flat scalars that travel in Flower's
``--run-config`` (:meth:`FlowerConfig.to_run_config`), and the fedlab objects they make — the
dataset, the client split, the algorithm, the model, the update codec — made the same way by the
ServerApp, by every ClientApp (:mod:`fedlab.flower.apps`) and by :meth:`FlowerConfig.simulate`,
the same run with :func:`fedlab.simulate` in this process. Imports without Flower.

Example:
    >>> FlowerConfig(num_clients=3).to_run_config()["algorithm"]
    'fedavg'
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fedlab import registry
from fedlab.registry import ALGORITHM_SETTINGS, Setting
from fedlab.validate import check_int

if TYPE_CHECKING:
    from fedlab.compression import Codec, ErrorFeedback

DATASETS = ("digits", "synthetic")
PARTITIONS = ("iid", "dirichlet")
ON_NODE_FAILURE = ("continue", "fail")
COMPRESSIONS = tuple(registry.CODECS)  # FlowerConfig.compression: see make_compression


def _choice(name: str, choices, default: str) -> Setting:
    return Setting(name, str, default, choices=tuple(choices))


_SETTINGS = {  # every field's setting, in the order the fields are checked
    s.name: s
    for s in (
        _choice("algorithm", registry.FEDERATED, "fedavg"),
        *map(registry.ALGORITHMS["fedavg"].setting, ("local_epochs", "batch_size", "client_lr")),
        dataclasses.replace(ALGORITHM_SETTINGS["server_lr"], none="the algorithm's default"),
        registry.ALGORITHMS["fedprox"].setting("mu"),
        _choice("dataset", DATASETS, "digits"),
        _choice("partition", PARTITIONS, "iid"),
        registry.SPLITS["dirichlet"].setting("alpha"),
        Setting("num_clients", int, 3, low=1, high=1000),
        Setting("clients_per_round", int, None, low=1, none="all"),
        Setting("num_rounds", int, 3, low=0),
        _choice("model", registry.MODELS, "mlp"),
        Setting("seed", int, 0, low=0),
        Setting("round_timeout", float, 300.0, low=0.0, low_inclusive=False),
        _choice("on_node_failure", ON_NODE_FAILURE, "continue"),
        _choice("compression", COMPRESSIONS, "none"),
        dataclasses.replace(
            registry.CODECS["topk"].setting("fraction"), name="compression_fraction"
        ),
        Setting("error_feedback", bool, False),
        _choice("aggregator", registry.DEFENCES, "mean"),
        *(
            setting
            for name in ("trimmed_mean", "multi_krum", "clipping")
            for setting in registry.DEFENCES[name].settings
        ),
        _choice("attack", registry.ATTACK_KINDS, "none"),
        Setting("num_attackers", int, 0, low=0),
    )
}


@dataclass(frozen=True)
class FlowerConfig:
    """One federated run on Flower: what :func:`fedlab.simulate` would take, as flat scalars.

    The settings' ranges and the algorithms' defaults are those of :mod:`fedlab.registry`.

    Attributes:
        algorithm: a key of :data:`fedlab.algorithms.ALGORITHMS` (``"fedavg"``, ``"scaffold"``...).
        local_epochs, batch_size, client_lr: the clients' local SGD (``batch_size=None``: full
            batch); ignored by ``"fedsgd"`` which takes one full-batch step.
        server_lr: the server step (``None``: the algorithm's default).
        mu: FedProx's proximal strength (only ``"fedprox"``).
        dataset: ``"digits"`` or ``"synthetic"`` (Synthetic(1, 1)).
        partition: ``"iid"`` or ``"dirichlet"`` (label skew with ``alpha``).
        alpha: the Dirichlet concentration (> 0).
        num_clients: number of partitions, one SuperNode each.
        clients_per_round: clients sampled each round (``None``: all).
        num_rounds: rounds to run.
        model: a key of :data:`fedlab.models.MODELS`.
        seed: seeds data, split, initial weights, sampling and batch order.
        round_timeout: seconds the server waits for a round's replies.
        on_node_failure: ``"continue"`` (aggregate who replied, record the rest as dropped) or
            ``"fail"`` (save the history so far and stop with an error).
        compression: how clients compress their updates (:mod:`fedlab.compression`):
            ``"none"``, ``"float16"`` (:class:`~fedlab.compression.Float16`), ``"int8"``
            (:class:`~fedlab.compression.StochasticQuantizer` with 8 bits) or ``"topk"``
            (:class:`~fedlab.compression.TopK` keeping ``compression_fraction``).
        compression_fraction: share of coordinates ``"topk"`` sends, in (0, 1].
        error_feedback: wrap the codec in :class:`~fedlab.compression.ErrorFeedback`; each
            client keeps its residual in its own process (needs a ``compression``).
        aggregator: the server's aggregator: ``"mean"`` (the algorithm's own) or a robust
            defence of :data:`fedlab.registry.DEFENCES` (``"median"``, ``"trimmed_mean"``,
            ``"krum"``, ``"multi_krum"``, ``"bulyan"``, ``"clipping"``), run in the ServerApp.
        trim_beta, num_byzantine, num_selected, clip_norm, noise_std: the defences' settings
            (each used only by the defence that takes it).
        attack: what the malicious clients do (:data:`fedlab.registry.ATTACK_KINDS`), in their
            own ClientApp processes; ``"alie"`` is refused (it needs every honest update).
        num_attackers: how many clients are malicious (fixed, seeded; 0 with ``"none"``).

    Example:
        >>> config = FlowerConfig(algorithm="scaffold", num_clients=4, clients_per_round=2)
        >>> FlowerConfig.from_run_config(config.to_run_config()) == config
        True
    """

    algorithm: str = _SETTINGS["algorithm"].default
    local_epochs: int = _SETTINGS["local_epochs"].default
    batch_size: int | None = _SETTINGS["batch_size"].default
    client_lr: float = _SETTINGS["client_lr"].default
    server_lr: float | None = None
    mu: float = _SETTINGS["mu"].default
    dataset: str = _SETTINGS["dataset"].default
    partition: str = _SETTINGS["partition"].default
    alpha: float = _SETTINGS["alpha"].default
    num_clients: int = _SETTINGS["num_clients"].default
    clients_per_round: int | None = None
    num_rounds: int = _SETTINGS["num_rounds"].default
    model: str = _SETTINGS["model"].default
    seed: int = _SETTINGS["seed"].default
    round_timeout: float = _SETTINGS["round_timeout"].default
    on_node_failure: str = _SETTINGS["on_node_failure"].default
    compression: str = _SETTINGS["compression"].default
    compression_fraction: float = _SETTINGS["compression_fraction"].default
    error_feedback: bool = _SETTINGS["error_feedback"].default
    aggregator: str = _SETTINGS["aggregator"].default
    trim_beta: float = _SETTINGS["trim_beta"].default
    num_byzantine: int = _SETTINGS["num_byzantine"].default
    num_selected: int = _SETTINGS["num_selected"].default
    clip_norm: float = _SETTINGS["clip_norm"].default
    noise_std: float = _SETTINGS["noise_std"].default
    attack: str = _SETTINGS["attack"].default
    num_attackers: int = _SETTINGS["num_attackers"].default

    def __post_init__(self):
        for name, setting in _SETTINGS.items():
            setting.check(getattr(self, name))
        if self.clients_per_round is not None:
            check_int("clients_per_round", self.clients_per_round, low=1, high=self.num_clients)
        dataset = registry.DATASETS[self.dataset]
        registry.check_fits("model", registry.MODELS[self.model], dataset, DATASETS)
        if self.error_feedback and self.compression == "none":
            raise ValueError(
                "error_feedback=True needs a lossy compression: set compression to one of "
                f"{list(COMPRESSIONS[1:])}"
            )
        check_int("num_attackers", self.num_attackers, low=0, high=self.num_clients)
        attackers = self.make_attackers()  # an attack without attackers, or the reverse: refused
        if attackers is not None and attackers.attack.sees_honest_updates:
            raise ValueError(
                f"attack={self.attack!r} crafts its update from every honest client's update "
                "(an omniscient attacker): only a simulation can hand those to it; on Flower each "
                "ClientApp sees its own update alone. Run it with FlowerConfig.simulate()."
            )

    # Flower's run config holds scalars only: None travels as 0 (batch_size, server_lr,
    # clients_per_round), which no valid setting uses.
    def to_run_config(self) -> dict[str, int | float | str]:
        """The settings as Flower run-config scalars (keys in kebab-case, ``None`` as 0).

        Example:
            >>> FlowerConfig(batch_size=None).to_run_config()["batch-size"]
            0
        """
        return {
            f.name.replace("_", "-"): (
                0 if getattr(self, f.name) is None else getattr(self, f.name)
            )
            for f in dataclasses.fields(self)
        }

    @classmethod
    def from_run_config(cls, run_config) -> FlowerConfig:
        """Inverse of :meth:`to_run_config`; other keys (``history-path``) are ignored.

        Example:
            >>> FlowerConfig.from_run_config({"algorithm": "fedprox", "mu": 0.1}).mu
            0.1
        """
        values = {}
        for name, setting in _SETTINGS.items():
            key = name.replace("_", "-")
            if key in run_config:
                value = run_config[key]
                if setting.none and value == 0:
                    value = None
                elif setting.kind is float:  # Flower may hand an int back for a float
                    value = float(value)
                values[name] = value
        return cls(**values)

    # -- the fedlab objects, built as fedlab.simulate's callers (the CLI) build them --------
    def load_data(self):
        """The :class:`~fedlab.data.Dataset` (as images for the CNN)."""
        dataset = registry.DATASETS[self.dataset].build(self.num_clients, self.seed)
        return registry.data_for_model(self.model, dataset)

    def make_split(self, dataset):
        """The :class:`~fedlab.partition.ClientSplit` of ``dataset``'s training set."""
        split = registry.SPLITS[self.partition]
        return split.build(dataset, self.num_clients, self.seed, **split.pick(vars(self)))

    def make_algorithm(self):
        """The :class:`~fedlab.algorithms.Algorithm` with these settings (those it takes), with
        the robust aggregator ``aggregator`` (:mod:`fedlab.robust`; ``"mean"``: its own)."""
        algorithm = registry.ALGORITHMS[self.algorithm]
        made = algorithm.build(**algorithm.pick(vars(self)))
        defence = registry.DEFENCES[self.aggregator]
        return registry.with_defence(made, self.aggregator, **defence.pick(vars(self)))

    def make_attackers(self):
        """The run's :class:`~fedlab.poisoning.Attackers` (``None`` for ``attack="none"``): each
        malicious client's ClientApp poisons its own data and tampers with its own update.

        Example:
            >>> FlowerConfig(attack="sign_flip", num_attackers=1).make_attackers().count
            1
        """
        return registry.make_attackers(self.attack, self.num_attackers)

    def make_model_fn(self, dataset):
        """The ``model_fn`` (:func:`fedlab.models.model_fn`)."""
        from fedlab.models import model_fn

        return model_fn(self.model, dataset.num_classes)

    def make_compression(self) -> Codec | ErrorFeedback | None:
        """The codec the clients encode their updates with, wrapped in
        :class:`~fedlab.compression.ErrorFeedback` if ``error_feedback``; ``None`` for
        ``compression="none"``. :meth:`simulate` passes the same one to :func:`fedlab.simulate`.

        Example:
            >>> config = FlowerConfig(compression="topk", compression_fraction=0.1)
            >>> config.make_compression()
            TopK(fraction=0.1)
            >>> dataclasses.replace(config, error_feedback=True).make_compression()
            ErrorFeedback(codec=TopK(fraction=0.1))
        """
        from fedlab.compression import ErrorFeedback

        codec = registry.CODECS[self.compression]
        made = codec.build(**codec.pick({"fraction": self.compression_fraction}))
        return ErrorFeedback(made) if self.error_feedback else made

    def simulate(self):
        """The same run with :func:`fedlab.simulate` in this process (the reference).

        Example:
            >>> FlowerConfig(num_rounds=1).simulate().clients  # doctest: +SKIP
        """
        from fedlab.engine import simulate

        dataset = self.load_data()
        return simulate(
            self.make_algorithm(),
            self.make_model_fn(dataset),
            dataset,
            self.make_split(dataset),
            self.num_rounds,
            self.clients_per_round,
            seed=self.seed,
            compression=self.make_compression(),
            attackers=self.make_attackers(),
            progress=False,
        )

    def history_config(self) -> dict:
        """What the History saved by the ServerApp records as its settings."""
        return {"runtime": "flower", **dataclasses.asdict(self)}
