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

from fedlab.validate import check_choice, check_float, check_int

if TYPE_CHECKING:
    from fedlab.compression import Codec, ErrorFeedback

DATASETS = ("digits", "synthetic")
PARTITIONS = ("iid", "dirichlet")
ON_NODE_FAILURE = ("continue", "fail")
COMPRESSIONS = ("none", "float16", "int8", "topk")  # FlowerConfig.compression: see make_compression


@dataclass(frozen=True)
class FlowerConfig:
    """One federated run on Flower: what :func:`fedlab.simulate` would take, as flat scalars.

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

    Example:
        >>> config = FlowerConfig(algorithm="scaffold", num_clients=4, clients_per_round=2)
        >>> FlowerConfig.from_run_config(config.to_run_config()) == config
        True
    """

    algorithm: str = "fedavg"
    local_epochs: int = 1
    batch_size: int | None = 20
    client_lr: float = 0.1
    server_lr: float | None = None
    mu: float = 0.01
    dataset: str = "digits"
    partition: str = "iid"
    alpha: float = 0.5
    num_clients: int = 3
    clients_per_round: int | None = None
    num_rounds: int = 3
    model: str = "mlp"
    seed: int = 0
    round_timeout: float = 300.0
    on_node_failure: str = "continue"
    compression: str = "none"
    compression_fraction: float = 0.01
    error_feedback: bool = False

    def __post_init__(self):
        from fedlab.algorithms import ALGORITHMS
        from fedlab.models import MODELS

        check_choice("algorithm", self.algorithm, ALGORITHMS)
        check_int("local_epochs", self.local_epochs, low=1)
        if self.batch_size is not None:
            check_int("batch_size", self.batch_size, low=1)
        check_float("client_lr", self.client_lr, low=0.0, low_inclusive=False)
        if self.server_lr is not None:
            check_float("server_lr", self.server_lr, low=0.0, low_inclusive=False)
        check_float("mu", self.mu, low=0.0)
        check_choice("dataset", self.dataset, DATASETS)
        check_choice("partition", self.partition, PARTITIONS)
        check_float("alpha", self.alpha, low=0.0, low_inclusive=False)
        check_int("num_clients", self.num_clients, low=1, high=1000)
        if self.clients_per_round is not None:
            check_int("clients_per_round", self.clients_per_round, low=1, high=self.num_clients)
        check_int("num_rounds", self.num_rounds, low=0)
        check_choice("model", self.model, MODELS)
        if self.model == "cnn" and self.dataset != "digits":
            raise ValueError("model 'cnn' needs image data: dataset must be 'digits'")
        check_int("seed", self.seed, low=0)
        check_float("round_timeout", self.round_timeout, low=0.0, low_inclusive=False)
        check_choice("on_node_failure", self.on_node_failure, ON_NODE_FAILURE)
        check_choice("compression", self.compression, COMPRESSIONS)
        check_float(
            "compression_fraction", self.compression_fraction, 0.0, 1.0, low_inclusive=False
        )
        if not isinstance(self.error_feedback, bool):
            raise TypeError(f"error_feedback must be True or False, got {self.error_feedback!r}")
        if self.error_feedback and self.compression == "none":
            raise ValueError(
                "error_feedback=True needs a lossy compression: set compression to one of "
                f"{list(COMPRESSIONS[1:])}"
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
        for f in dataclasses.fields(cls):
            key = f.name.replace("_", "-")
            if key in run_config:
                value = run_config[key]
                if f.name in ("batch_size", "server_lr", "clients_per_round") and value == 0:
                    value = None
                elif f.name in (
                    "client_lr",
                    "server_lr",
                    "mu",
                    "alpha",
                    "round_timeout",
                    "compression_fraction",
                ):
                    value = float(value)
                values[f.name] = value
        return cls(**values)

    # -- the fedlab objects, built as fedlab.simulate's callers (the CLI) build them --------
    def load_data(self):
        """The :class:`~fedlab.data.Dataset` (as images for the CNN)."""
        from fedlab import data

        if self.dataset == "digits":
            dataset = data.load_digits(seed=self.seed)
        else:
            dataset = data.synthetic(1.0, 1.0, num_clients=self.num_clients, seed=self.seed)
        return dataset.as_images() if self.model == "cnn" else dataset

    def make_split(self, dataset):
        """The :class:`~fedlab.partition.ClientSplit` of ``dataset``'s training set."""
        from fedlab import partition

        if self.partition == "iid":
            return partition.iid(dataset.y_train, self.num_clients, seed=self.seed)
        return partition.dirichlet(dataset.y_train, self.num_clients, self.alpha, seed=self.seed)

    def make_algorithm(self):
        """The :class:`~fedlab.algorithms.Algorithm` with these settings."""
        from fedlab.algorithms import ALGORITHMS

        kwargs: dict = {"client_lr": self.client_lr}
        if self.server_lr is not None:
            kwargs["server_lr"] = self.server_lr
        if self.algorithm != "fedsgd":
            kwargs.update(local_epochs=self.local_epochs, batch_size=self.batch_size)
        if self.algorithm == "fedprox":
            kwargs["mu"] = self.mu
        return ALGORITHMS[self.algorithm](**kwargs)

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
        from fedlab.compression import ErrorFeedback, Float16, StochasticQuantizer, TopK

        if self.compression == "none":
            return None
        codec = {
            "float16": Float16(),
            "int8": StochasticQuantizer(bits=8),
            "topk": TopK(self.compression_fraction),
        }[self.compression]
        return ErrorFeedback(codec) if self.error_feedback else codec

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
            progress=False,
        )

    def history_config(self) -> dict:
        """What the History saved by the ServerApp records as its settings."""
        return {"runtime": "flower", **dataclasses.asdict(self)}
