"""Federated algorithms as four replaceable slots (``01_one_round_by_hand``, ``03_fedsgd_vs_fedavg``).

A round is *sample + broadcast* -> *client update* -> *aggregate* -> *server update*. An
:class:`Algorithm` holds the client's training settings and one object per slot that differs
between algorithms:

========================  =====================================  ==============================
slot                      here                                   later issues plug in
========================  =====================================  ==============================
sample + broadcast        ``Algorithm.sample_clients``           Poisson sampling, stragglers
client update             ``Algorithm.local_gradient`` (hook)    FedProx's μ(w − w_g), SCAFFOLD
aggregate                 :class:`WeightedMean`                  DP noise, secure aggregation
server update             :class:`ServerSGD`                     FedAvgM, FedAdam, FedYogi
========================  =====================================  ==============================

The client-update hook and the aggregator are written with TensorFlow ops so the same code runs
eagerly (one client at a time, :mod:`fedlab.steps`) and compiled over a client axis
(:mod:`fedlab.engine`). The server update is NumPy: it runs once per round on one model.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf

from fedlab.validate import check_float, check_int


@dataclass(frozen=True)
class WeightedMean:
    """Aggregate slot: the example-weighted mean of client updates, Σ_k n_k Δ_k / Σ_k n_k.

    Example:
        >>> agg = WeightedMean()
        >>> [float(v) for v in agg([np.array([[1.0], [3.0]])], np.array([1, 3]))[0]]
        [2.5]
    """

    def __call__(self, stacked_deltas: list, num_examples) -> list[tf.Tensor]:
        """Combine ``stacked_deltas`` (one [K, ...] array per weight) weighted by ``num_examples`` [K]."""
        n = tf.cast(tf.convert_to_tensor(num_examples), tf.float32)
        share = n / tf.reduce_sum(n)
        return [tf.tensordot(share, tf.cast(d, tf.float32), axes=1) for d in stacked_deltas]


@dataclass(frozen=True)
class ServerSGD:
    """Server-update slot: ``w ← w + server_lr · Δ`` (FedAvg uses ``server_lr = 1``).

    Attributes:
        server_lr: step size applied to the aggregated update (> 0).

    Example:
        >>> w, _ = ServerSGD(0.5).apply([np.ones(2)], [np.array([2.0, 4.0])], ServerSGD(0.5).init([np.ones(2)]))
        >>> w[0].tolist()
        [2.0, 3.0]
    """

    server_lr: float = 1.0

    def __post_init__(self):
        check_float("server_lr", self.server_lr, low=0.0, low_inclusive=False)

    def init(self, weights: list[np.ndarray]) -> dict:
        """Server-optimiser state for ``weights`` (plain SGD keeps none)."""
        return {}

    def apply(
        self, weights: list[np.ndarray], delta: list[np.ndarray], state: dict
    ) -> tuple[list[np.ndarray], dict]:
        """Return the next global weights and optimiser state."""
        new = [
            (w + np.float32(self.server_lr) * np.asarray(d, np.float32)).astype(np.float32)
            for w, d in zip(weights, delta, strict=True)
        ]
        return new, state


@dataclass(frozen=True)
class Algorithm:
    """A federated algorithm: the client's local-training settings plus the four slots.

    Attributes:
        local_epochs: passes over the client's data per round (>= 1).
        batch_size: local mini-batch size, or ``None`` for full batch (one step per epoch).
        client_lr: local SGD learning rate (> 0).
        aggregator: the aggregate slot (default :class:`WeightedMean`).
        server_optimizer: the server-update slot (default :class:`ServerSGD`).
        name: shown in plots and saved in histories.

    Subclasses change a slot; the engine never needs to know which algorithm it runs.
    """

    local_epochs: int = 1
    batch_size: int | None = 20
    client_lr: float = 0.1
    aggregator: WeightedMean = field(default_factory=WeightedMean)
    server_optimizer: ServerSGD = field(default_factory=ServerSGD)
    name: str = "algorithm"

    def __post_init__(self):
        check_int("local_epochs", self.local_epochs, low=1)
        if self.batch_size is not None:
            check_int("batch_size", self.batch_size, low=1)
        check_float("client_lr", self.client_lr, low=0.0, low_inclusive=False)

    # -- slot 1: sample + broadcast ------------------------------------------------------
    def sample_clients(
        self, num_clients: int, clients_per_round: int, rng: np.random.Generator
    ) -> np.ndarray:
        """Pick this round's clients uniformly without replacement (sorted ids)."""
        return np.sort(rng.choice(num_clients, size=clients_per_round, replace=False))

    def broadcast_state(self, server_state: dict) -> list[np.ndarray]:
        """Arrays sent down with the global weights (SCAFFOLD: the server control variate).

        Plain FedAvg sends none. Shapes must not change from round to round.
        """
        return []

    # -- slot 2: client update -----------------------------------------------------------
    def client_state_init(self, weights: list[np.ndarray]) -> list[np.ndarray]:
        """A client's persistent state before its first round (SCAFFOLD: zero control variates).

        The engine keeps one copy per client, also for clients not selected in a round. Plain
        FedAvg keeps none.
        """
        return []

    def local_gradient(
        self,
        grads: list,
        weights: list,
        broadcast_weights: list,
        client_state: list = (),
        broadcast: list = (),
    ) -> list:
        """Turn the loss gradient into the direction of the local SGD step.

        Plain SGD returns ``grads`` unchanged. FedProx adds ``mu * (w - w_broadcast)``; SCAFFOLD
        adds ``c - c_k`` from ``broadcast`` and ``client_state``. Written in TF ops: it runs
        eagerly (:mod:`fedlab.steps`) and vectorised over clients (:mod:`fedlab.engine`).
        """
        return grads

    def client_state_update(
        self, client_state: list, delta: list, num_steps, client_lr, broadcast: list = ()
    ) -> list:
        """The client's new persistent state after local training (TF ops; default: unchanged).

        ``delta`` is ``w_k - w_broadcast`` and ``num_steps`` the local SGD steps it took.
        """
        return list(client_state)

    # -- slot 3 is ``aggregator`` ----------------------------------------------------------

    # -- slot 4: server update -------------------------------------------------------------
    def server_update(
        self,
        weights: list[np.ndarray],
        aggregated_delta: list[np.ndarray],
        server_state: dict,
        client_state_delta: list[np.ndarray],
        participation: float,
    ) -> tuple[list[np.ndarray], dict]:
        """Next global weights and server state from the aggregated update (NumPy).

        ``client_state_delta`` is the mean change of the participating clients' states and
        ``participation`` the fraction of clients that took part (SCAFFOLD's server variate
        needs both); the default ignores them and applies ``server_optimizer``.
        """
        return self.server_optimizer.apply(weights, aggregated_delta, server_state)

    def config(self) -> dict:
        """A JSON-friendly description of the settings (saved in a History)."""
        return {
            "name": self.name,
            "local_epochs": self.local_epochs,
            "batch_size": self.batch_size,
            "client_lr": self.client_lr,
            "server_lr": getattr(self.server_optimizer, "server_lr", None),
        }


def FedAvg(  # noqa: N802 - reads like the algorithm's name, as in the papers
    local_epochs: int = 1,
    batch_size: int | None = 20,
    client_lr: float = 0.1,
    server_lr: float = 1.0,
) -> Algorithm:
    """Federated Averaging (McMahan et al. 2017): E local epochs of mini-batch SGD, weighted mean.

    Example:
        >>> FedAvg(local_epochs=2, batch_size=10, client_lr=0.05).config()["local_epochs"]
        2
    """
    return Algorithm(
        local_epochs=local_epochs,
        batch_size=batch_size,
        client_lr=client_lr,
        server_optimizer=ServerSGD(server_lr),
        name="FedAvg",
    )


def FedSGD(client_lr: float = 0.1, server_lr: float = 1.0) -> Algorithm:  # noqa: N802
    """Federated SGD: each client takes one full-batch gradient step; the server averages.

    With every client in every round this equals centralised full-batch gradient descent.

    Example:
        >>> FedSGD(client_lr=0.5).batch_size is None
        True
    """
    return Algorithm(
        local_epochs=1,
        batch_size=None,
        client_lr=client_lr,
        server_optimizer=ServerSGD(server_lr),
        name="FedSGD",
    )


ALGORITHMS = {"fedavg": FedAvg, "fedsgd": FedSGD}
