"""Federated algorithms as four replaceable slots (``01_one_round_by_hand``, ``03_fedsgd_vs_fedavg``).

A round is *sample + broadcast* -> *client update* -> *aggregate* -> *server update*. An
:class:`Algorithm` holds the client's training settings and one object per slot that differs
between algorithms; every algorithm below is a combination of these slots, run by the same
engine:

====================  ======================================  ===================================
slot                  here                                    algorithms that change it
====================  ======================================  ===================================
sample + broadcast    ``Algorithm.sample_clients``,           SCAFFOLD (sends the server control
                      ``Algorithm.broadcast_state``           variate c down with the weights)
client update         ``Algorithm.local_gradient``,           FedProx (+ μ(w − w_g)), SCAFFOLD
                      ``client_state_init``,                  (+ c − c_k, keeps c_k per client);
                      ``client_state_update`` (hooks);        personalisation: FedPer, Ditto,
                      the optional ``personalization``        local-only, fine-tuning, IFCA,
                      slot (what stays on the clients)        multi-task heads
                                                              (:mod:`fedlab.personalization`)
aggregate             ``Algorithm.aggregator``, an object     FedNova (:class:`~fedlab.aggregators.
                      of :mod:`fedlab.aggregators`:           FedNovaMean`), DP-FedAvg
                      :class:`~fedlab.aggregators.            (:mod:`fedlab.privacy`); FedPer,
                      WeightedMean` by default                multi-task heads (a masked mean);
                                                              secure aggregation (its sums)
server update         ``server_optimizer``:                   FedAvg/FedSGD, FedAvgM, FedAdam,
                      :class:`ServerSGD`,                     FedYogi, FedAdagrad; SCAFFOLD (also
                      :class:`ServerMomentum`,                updates c)
                      :class:`ServerAdam`,
                      :class:`ServerYogi`,
                      :class:`ServerAdagrad`,
                      :class:`ControlVariateServer`
====================  ======================================  ===================================

The factories :func:`FedAvg`, :func:`FedSGD`, :func:`FedProx`, :func:`Scaffold`, :func:`FedAvgM`,
:func:`FedAdam`, :func:`FedYogi`, :func:`FedAdagrad` and :func:`FedNova` (all in
:data:`ALGORITHMS`) pick the slots. The client-update hooks and the aggregator are written with TensorFlow ops so the same
code runs eagerly (one client at a time, :mod:`fedlab.steps`) and compiled over a client axis
(:mod:`fedlab.engine`). The server update is NumPy float32: it runs once per round on one model.
Server optimisers treat the aggregated update Δ (the clients' mean ``w_k − w``) as the negative
of a pseudo-gradient, so ``w ← w + server_lr · Δ`` is plain FedAvg.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Protocol, runtime_checkable

import numpy as np
import tensorflow as tf

from fedlab.aggregators import Aggregator, FedNovaMean, WeightedMean
from fedlab.validate import check_float, check_int

if TYPE_CHECKING:
    from fedlab.personalization import Personalization

Weights = list[np.ndarray]


def _store(obj: object, **values: object) -> None:
    """Keep checked, plain-Python values on a frozen dataclass (so configs save as JSON)."""
    for name, value in values.items():
        object.__setattr__(obj, name, value)


def _check_bool(name: str, value: object) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{name} must be True or False, got {type(value).__name__} {value!r}")
    return bool(value)


def _check_beta(name: str, value: object) -> float:
    return check_float(name, value, low=0.0, high=1.0, high_inclusive=False)


def _check_positive(name: str, value: object) -> float:
    return check_float(name, value, low=0.0, low_inclusive=False)


@runtime_checkable
class ServerOptimizer(Protocol):
    """What the server-update slot provides: ``init``, ``apply`` and ``config`` (NumPy).

    ``apply`` must return new arrays and a new state dict, never change its arguments.

    Example:
        >>> isinstance(ServerAdam(), ServerOptimizer), isinstance("adam", ServerOptimizer)
        (True, False)
    """

    server_lr: float

    def init(self, weights: Weights) -> dict: ...

    def apply(self, weights: Weights, delta: Weights, state: dict) -> tuple[Weights, dict]: ...

    def config(self) -> dict: ...


# -- server optimisers (slot 4) ------------------------------------------------------------------


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
        _store(self, server_lr=_check_positive("server_lr", self.server_lr))

    def init(self, weights: Weights) -> dict:
        """Server-optimiser state for ``weights`` (plain SGD keeps none)."""
        return {}

    def apply(self, weights: Weights, delta: Weights, state: dict) -> tuple[Weights, dict]:
        """Return the next global weights and optimiser state."""
        new = [
            (w + np.float32(self.server_lr) * np.asarray(d, np.float32)).astype(np.float32)
            for w, d in zip(weights, delta, strict=True)
        ]
        return new, state

    def config(self) -> dict:
        """The settings, JSON-friendly.

        Example:
            >>> ServerSGD(0.5).config()
            {'name': 'ServerSGD', 'server_lr': 0.5}
        """
        return {"name": "ServerSGD", "server_lr": self.server_lr}


@dataclass(frozen=True)
class ServerMomentum:
    """Server-update slot with heavy-ball momentum (FedAvgM, Hsu et al. 2019; Reddi et al. 2021).

    Each round, with Δ the aggregated client update::

        v ← momentum · v + Δ                      (v starts at 0)
        w ← w + server_lr · v                     (nesterov=False)
        w ← w + server_lr · (momentum · v + Δ)    (nesterov=True, with the new v)

    ``momentum=0`` is exactly :class:`ServerSGD`.

    Attributes:
        server_lr: step size η (> 0).
        momentum: β in [0, 1).
        nesterov: use Nesterov's look-ahead form.

    Example:
        >>> opt = ServerMomentum(server_lr=1.0, momentum=0.5)
        >>> w, state = opt.apply([np.zeros(1)], [np.ones(1)], opt.init([np.zeros(1)]))
        >>> w, state = opt.apply(w, [np.ones(1)], state)  # v = 0.5 · 1 + 1
        >>> w[0].tolist(), state["velocity"][0].tolist()
        ([2.5], [1.5])
    """

    server_lr: float = 1.0
    momentum: float = 0.9
    nesterov: bool = False

    def __post_init__(self):
        _store(
            self,
            server_lr=_check_positive("server_lr", self.server_lr),
            momentum=_check_beta("momentum", self.momentum),
            nesterov=_check_bool("nesterov", self.nesterov),
        )

    def init(self, weights: Weights) -> dict:
        """Zero velocity, one array per weight."""
        return {"velocity": [np.zeros(np.shape(w), np.float32) for w in weights]}

    def apply(self, weights: Weights, delta: Weights, state: dict) -> tuple[Weights, dict]:
        """Return the next global weights and a new state (``state`` is left unchanged)."""
        lr, beta = np.float32(self.server_lr), np.float32(self.momentum)
        new_w, new_v = [], []
        for w, d, v in zip(weights, delta, state["velocity"], strict=True):
            d = np.asarray(d, np.float32)
            v = beta * np.asarray(v, np.float32) + d
            step = beta * v + d if self.nesterov else v
            new_w.append((np.asarray(w, np.float32) + lr * step).astype(np.float32))
            new_v.append(v.astype(np.float32))
        return new_w, {"velocity": new_v}

    def config(self) -> dict:
        """The settings, JSON-friendly."""
        return {
            "name": "ServerMomentum",
            "server_lr": self.server_lr,
            "momentum": self.momentum,
            "nesterov": self.nesterov,
        }


class _AdaptiveServer:
    """Shared part of Algorithm 2 of Reddi et al. (2021); subclasses choose the v update."""

    server_lr: float
    beta1: float
    tau: float

    def _check(self) -> None:
        _store(
            self,
            server_lr=_check_positive("server_lr", self.server_lr),
            beta1=_check_beta("beta1", self.beta1),
            tau=_check_positive("tau", self.tau),
        )

    def init(self, weights: Weights) -> dict:
        """``m = 0`` and ``v = τ²`` (Algorithm 2 needs ``v_{-1} ≥ τ²``), one array per weight."""
        tau2 = np.float32(self.tau) ** 2
        return {
            "m": [np.zeros(np.shape(w), np.float32) for w in weights],
            "v": [np.full(np.shape(w), tau2, np.float32) for w in weights],
        }

    def _second_moment(self, v: np.ndarray, d2: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def apply(self, weights: Weights, delta: Weights, state: dict) -> tuple[Weights, dict]:
        """One server step; returns new weights and a new state (``state`` is left unchanged)."""
        lr, b1, tau = np.float32(self.server_lr), np.float32(self.beta1), np.float32(self.tau)
        new_w, new_m, new_v = [], [], []
        for w, d, m, v in zip(weights, delta, state["m"], state["v"], strict=True):
            d = np.asarray(d, np.float32)
            m = b1 * np.asarray(m, np.float32) + (np.float32(1) - b1) * d
            v = self._second_moment(np.asarray(v, np.float32), d * d)
            new_w.append(
                (np.asarray(w, np.float32) + lr * m / (np.sqrt(v) + tau)).astype(np.float32)
            )
            new_m.append(m.astype(np.float32))
            new_v.append(v.astype(np.float32))
        return new_w, {"m": new_m, "v": new_v}


@dataclass(frozen=True)
class ServerAdam(_AdaptiveServer):
    """Server-update slot of FedAdam: Adam on the pseudo-gradient −Δ (Reddi et al. 2021, Alg. 2).

    With Δ the aggregated client update, starting from ``m = 0`` and ``v = τ²``::

        m ← β1 · m + (1 − β1) · Δ
        v ← β2 · v + (1 − β2) · Δ²
        w ← w + server_lr · m / (√v + τ)

    No bias correction, as in the paper. τ bounds the per-coordinate step by ``server_lr · |m| / τ``:
    the smaller τ, the more adaptive. Defaults (η = 10⁻², β1 = 0.9, β2 = 0.99, τ = 10⁻³) are the
    paper's β values and a middle point of its tuning grids for η and τ.

    Attributes:
        server_lr: η (> 0).
        beta1: first-moment decay β1 in [0, 1).
        beta2: second-moment decay β2 in [0, 1).
        tau: adaptivity τ (> 0).

    Example:
        >>> opt = ServerAdam(server_lr=0.1, beta1=0.0, beta2=0.0, tau=1.0)
        >>> w, _ = opt.apply([np.zeros(1)], [np.array([3.0])], opt.init([np.zeros(1)]))
        >>> round(float(w[0][0]), 6)  # 0.1 · 3 / (√9 + 1)
        0.075
    """

    server_lr: float = 0.01
    beta1: float = 0.9
    beta2: float = 0.99
    tau: float = 1e-3

    def __post_init__(self):
        self._check()
        _store(self, beta2=_check_beta("beta2", self.beta2))

    def _second_moment(self, v: np.ndarray, d2: np.ndarray) -> np.ndarray:
        b2 = np.float32(self.beta2)
        return b2 * v + (np.float32(1) - b2) * d2

    def config(self) -> dict:
        """The settings, JSON-friendly."""
        return {
            "name": type(self).__name__,
            "server_lr": self.server_lr,
            "beta1": self.beta1,
            "beta2": self.beta2,
            "tau": self.tau,
        }


@dataclass(frozen=True)
class ServerYogi(ServerAdam):
    """Server-update slot of FedYogi (Reddi et al. 2021, Alg. 2): Adam with Yogi's additive v.

    As :class:`ServerAdam` but ``v ← v − (1 − β2) · Δ² · sign(v − Δ²)``: v moves towards Δ² by
    at most ``(1 − β2) Δ²`` per round, so it cannot collapse after a few small updates.

    Example:
        >>> opt = ServerYogi(server_lr=0.1, beta1=0.0, beta2=0.5, tau=1.0)
        >>> _, state = opt.apply([np.zeros(1)], [np.array([2.0])], opt.init([np.zeros(1)]))
        >>> state["v"][0].tolist()  # 1 − 0.5 · 4 · sign(1 − 4)
        [3.0]
    """

    def _second_moment(self, v: np.ndarray, d2: np.ndarray) -> np.ndarray:
        return v - (np.float32(1) - np.float32(self.beta2)) * d2 * np.sign(v - d2)


@dataclass(frozen=True)
class ServerAdagrad(_AdaptiveServer):
    """Server-update slot of FedAdagrad (Reddi et al. 2021, Alg. 2): v sums every Δ².

    As :class:`ServerAdam` but ``v ← v + Δ²`` (no β2). ``beta1=0`` gives classic Adagrad
    without momentum.

    Attributes:
        server_lr: η (> 0).
        beta1: first-moment decay β1 in [0, 1).
        tau: adaptivity τ (> 0).

    Example:
        >>> opt = ServerAdagrad(server_lr=1.0, beta1=0.0, tau=1.0)
        >>> w, state = opt.apply([np.zeros(1)], [np.array([3.0])], opt.init([np.zeros(1)]))
        >>> state["v"][0].tolist(), round(float(w[0][0]), 6)  # v = 1 + 9; w = 3 / (√10 + 1)
        ([10.0], 0.720759)
    """

    server_lr: float = 0.01
    beta1: float = 0.9
    tau: float = 1e-3

    def __post_init__(self):
        self._check()

    def _second_moment(self, v: np.ndarray, d2: np.ndarray) -> np.ndarray:
        return v + d2

    def config(self) -> dict:
        """The settings, JSON-friendly."""
        return {
            "name": "ServerAdagrad",
            "server_lr": self.server_lr,
            "beta1": self.beta1,
            "tau": self.tau,
        }


@dataclass(frozen=True)
class ControlVariateServer:
    """SCAFFOLD's server-update slot: any server optimiser plus the server control variate c.

    The state is ``{"c": [...], "optimizer": <the inner optimiser's state>}``; ``c`` starts at
    zero and is changed only by :meth:`update_control_variate` (called by :class:`ScaffoldAlgorithm`).

    Attributes:
        optimizer: moves the weights (default ``ServerSGD(1.0)``: ``x ← x + η_g Δx``).

    Example:
        >>> server = ControlVariateServer(ServerSGD(1.0))
        >>> state = server.init([np.zeros(2)])
        >>> server.update_control_variate(state, [np.array([1.0, -2.0])], 0.5)["c"][0].tolist()
        [0.5, -1.0]
    """

    optimizer: ServerOptimizer = field(default_factory=ServerSGD)

    def __post_init__(self):
        if not isinstance(self.optimizer, ServerOptimizer):
            raise TypeError(
                "optimizer must be a server optimiser such as ServerSGD(), got "
                f"{type(self.optimizer).__name__}"
            )

    @property
    def server_lr(self) -> float:
        """The inner optimiser's step size η_g."""
        return self.optimizer.server_lr

    def init(self, weights: Weights) -> dict:
        """``c = 0`` and the inner optimiser's initial state."""
        return {
            "c": [np.zeros(np.shape(w), np.float32) for w in weights],
            "optimizer": self.optimizer.init(weights),
        }

    def apply(self, weights: Weights, delta: Weights, state: dict) -> tuple[Weights, dict]:
        """Move the weights with the inner optimiser; ``c`` is carried over unchanged."""
        new, inner = self.optimizer.apply(weights, delta, state["optimizer"])
        return new, {"c": list(state["c"]), "optimizer": inner}

    def update_control_variate(
        self, state: dict, mean_variate_change: Weights, participation: float
    ) -> dict:
        """``c ← c + (|S|/N) · mean_{k∈S}(c_k⁺ − c_k)``; returns a new state."""
        p = np.float32(participation)
        c = [
            (np.asarray(c, np.float32) + p * np.asarray(dc, np.float32)).astype(np.float32)
            for c, dc in zip(state["c"], mean_variate_change, strict=True)
        ]
        return {**state, "c": c}

    def config(self) -> dict:
        """The settings, JSON-friendly."""
        return {
            "name": "ControlVariateServer",
            "server_lr": self.server_lr,
            "optimizer": self.optimizer.config(),
        }


# -- the algorithm: client settings + slots -------------------------------------------------------


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
        personalization: the optional personalisation slot: what each client keeps for itself
            (:mod:`fedlab.personalization`: personal models, heads, clusters); ``None``: one
            global model for everyone.

    Subclasses change a slot; the engine never needs to know which algorithm it runs.

    Example:
        >>> Algorithm(local_epochs=2, name="mine").config()["local_epochs"]
        2
    """

    local_epochs: int = 1
    batch_size: int | None = 20
    client_lr: float = 0.1
    aggregator: Aggregator = field(default_factory=WeightedMean)
    server_optimizer: ServerOptimizer = field(default_factory=ServerSGD)
    name: str = "algorithm"
    personalization: Personalization | None = None
    graph_is_fedavg: ClassVar[bool] = False
    """True when the compiled client update is plain FedAvg's although the class differs (DP,
    personalisation): the engine then shares FedAvg's traced graphs."""

    def __post_init__(self):
        check_int("local_epochs", self.local_epochs, low=1)
        if self.batch_size is not None:
            check_int("batch_size", self.batch_size, low=1)
        check_float("client_lr", self.client_lr, low=0.0, low_inclusive=False)
        if not isinstance(self.aggregator, Aggregator):
            raise TypeError(
                "aggregator must be an aggregator such as WeightedMean() (init, apply, config; "
                f"see fedlab.aggregators), got {type(self.aggregator).__name__}"
            )
        if not isinstance(self.server_optimizer, ServerOptimizer):
            raise TypeError(
                "server_optimizer must be a server optimiser such as ServerSGD(), got "
                f"{type(self.server_optimizer).__name__}"
            )
        from fedlab.personalization import Personalization

        if self.personalization is not None and not isinstance(
            self.personalization, Personalization
        ):
            raise TypeError(
                "personalization must be None or a fedlab.personalization slot such as "
                f"PersonalHead(2), got {type(self.personalization).__name__}"
            )

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
    def client_state_init(self, weights: Weights) -> Weights:
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

    # -- slot 3: aggregate (the aggregator object, fedlab.aggregators) ---------------------
    def with_aggregator(self, aggregator: Aggregator) -> Algorithm:
        """This algorithm with ``aggregator`` in its aggregate slot (e.g. a robust defence from
        :mod:`fedlab.robust`), named ``"<name> + <aggregator>"``.

        Refused (ValueError) where the aggregate is part of the algorithm itself: DP-FedAvg's
        Gaussian mechanism, FedNova's normalised mean.

        Example:
            >>> from fedlab.aggregators import PlainSum, WeightedMean
            >>> FedAvg().with_aggregator(WeightedMean(PlainSum())).name
            'FedAvg + WeightedMean'
        """
        if not isinstance(aggregator, Aggregator):
            raise TypeError(
                "aggregator must be an aggregator such as fedlab.robust.Krum(1) (init, apply, "
                f"config), got {type(aggregator).__name__}"
            )
        if self.aggregator != WeightedMean() or type(self).default_aggregator is not (
            Algorithm.default_aggregator
        ):
            raise ValueError(
                f"{self.name}'s aggregate ({type(self.aggregator).__name__}) is part of the "
                f"algorithm: replacing it with {type(aggregator).__name__} would no longer be "
                f"{self.name}; start from FedAvg (or another plain-mean algorithm)"
            )
        label = f"{self.name} + {aggregator.config()['name']}"
        return dataclasses.replace(self, aggregator=aggregator, name=label)

    def default_aggregator(self) -> Aggregator:
        """The aggregator this class uses unless told otherwise (DP-FedAvg's follows from its
        clipping and noise settings); :meth:`config` names the aggregator only when it differs."""
        return WeightedMean()

    def make_accountant(self, sampling_rate: float):
        """A privacy accountant for this algorithm (``None``: it promises no privacy)."""
        return None

    # -- slot 4: server update -------------------------------------------------------------
    def server_update(
        self,
        weights: Weights,
        aggregated_delta: Weights,
        server_state: dict,
        client_state_delta: Weights,
        participation: float,
    ) -> tuple[Weights, dict]:
        """Next global weights and server state from the aggregated update (NumPy).

        ``client_state_delta`` is the mean change of the participating clients' states and
        ``participation`` the fraction of clients that took part (SCAFFOLD's server variate
        needs both); the default ignores them and applies ``server_optimizer``.
        """
        return self.server_optimizer.apply(weights, aggregated_delta, server_state)

    def config(self) -> dict:
        """A JSON-friendly description of the settings (saved in a History).

        Server optimisers other than plain :class:`ServerSGD` add their settings under
        ``"server_optimizer"``.
        """
        config = {
            "name": self.name,
            "local_epochs": self.local_epochs,
            "batch_size": self.batch_size,
            "client_lr": self.client_lr,
            "server_lr": getattr(self.server_optimizer, "server_lr", None),
        }
        if type(self.server_optimizer) is not ServerSGD:
            config["server_optimizer"] = self.server_optimizer.config()
        if self.aggregator != self.default_aggregator():
            config["aggregator"] = self.aggregator.config()
        return config

    @classmethod
    def from_config(cls, config: dict) -> Algorithm:
        """The algorithm a :meth:`config` describes, e.g. the one a History ran (Keras's
        ``get_config``/``from_config``): ``Algorithm.from_config(history.config["algorithm"])``.

        ``config["name"]`` picks the algorithm among :data:`fedlab.registry.ALGORITHMS` (FedAvg,
        DP-FedAvg, Ditto, ...); the rebuilt algorithm's ``config()`` must equal ``config``, else
        a ValueError names the key that differs. Called on a subclass, the algorithm must be one
        of its kind (``DPFedAvgAlgorithm.from_config`` refuses a FedAvg config).

        Example:
            >>> Algorithm.from_config(FedProx(mu=0.1).config()) == FedProx(mu=0.1)
            True
        """
        from fedlab.registry import algorithm_from_config  # (the registry imports this module)

        algorithm = algorithm_from_config(config)
        if not isinstance(algorithm, cls):
            raise ValueError(
                f"config['name'] is {config['name']!r}, which makes {type(algorithm).__name__}, "
                f"not {cls.__name__}"
            )
        return algorithm


@dataclass(frozen=True)
class ProxAlgorithm(Algorithm):
    """FedProx's client update: local SGD on ``F_k(w) + (mu/2)·‖w − w_g‖²`` (Li et al. 2020).

    Each local step's direction is ``∇F_k(w) + mu · (w − w_g)``, with ``w_g`` the broadcast
    global weights: the proximal term pulls the client back towards the global model and so
    limits client drift. ``mu = 0`` is FedAvg.

    Attributes:
        mu: proximal strength μ (>= 0).

    Example:
        >>> prox = ProxAlgorithm(mu=0.5)
        >>> g = prox.local_gradient([tf.constant([1.0])], [tf.constant([3.0])], [tf.constant([1.0])])
        >>> g[0].numpy().tolist()  # 1 + 0.5 · (3 − 1)
        [2.0]
    """

    mu: float = 0.01

    def __post_init__(self):
        super().__post_init__()
        _store(self, mu=check_float("mu", self.mu, low=0.0))

    def local_gradient(
        self,
        grads: list,
        weights: list,
        broadcast_weights: list,
        client_state: list = (),
        broadcast: list = (),
    ) -> list:
        """``g + mu · (w − w_broadcast)`` for every weight."""
        mu = tf.constant(self.mu, tf.float32)
        return [
            g + mu * (w - w0) for g, w, w0 in zip(grads, weights, broadcast_weights, strict=True)
        ]

    def config(self) -> dict:
        """The settings, with ``mu``."""
        return {**super().config(), "mu": self.mu}


@dataclass(frozen=True)
class ScaffoldAlgorithm(Algorithm):
    """SCAFFOLD (Karimireddy et al. 2020, Algorithm 1, option II) as slots and hooks.

    In the paper's notation: x the global weights, c the server control variate, c_i client i's
    variate (both start at 0), η_l = ``client_lr``, η_g = the server optimiser's ``server_lr``,
    K the client's local steps this round, S the sampled clients out of N:

    * broadcast: (x, c) — ``broadcast_state`` sends c;
    * local step: ``y_i ← y_i − η_l (g_i(y_i) − c_i + c)`` — ``local_gradient``;
    * option II: ``c_i⁺ ← c_i − c + (x − y_i) / (K η_l)`` — ``client_state_update``, with
      ``x − y_i = −delta``; the engine keeps c_i for clients not sampled;
    * server: ``x ← x + η_g Δx`` and ``c ← c + (|S|/N) · mean_{i∈S}(c_i⁺ − c_i)`` —
      ``server_update`` via :class:`ControlVariateServer`.

    One difference from the paper: Δx is the ``aggregator``'s example-weighted mean of
    ``y_i − x`` (the paper's plain mean over S; equal when clients hold equally many examples).
    With uniform sampling the update of c keeps ``c = mean over all N clients of c_i``.

    Example:
        >>> algo = ScaffoldAlgorithm(client_lr=0.5)
        >>> g = algo.local_gradient([tf.constant([1.0])], [tf.constant([0.0])], [tf.constant([0.0])],
        ...                         client_state=[tf.constant([2.0])], broadcast=[tf.constant([3.0])])
        >>> g[0].numpy().tolist()  # g − c_i + c = 1 − 2 + 3
        [2.0]
    """

    server_optimizer: ControlVariateServer = field(default_factory=ControlVariateServer)
    name: str = "SCAFFOLD"

    def __post_init__(self):
        super().__post_init__()
        if not isinstance(self.server_optimizer, ControlVariateServer):
            raise TypeError(
                "server_optimizer must be a ControlVariateServer for SCAFFOLD (it keeps the "
                f"server control variate), got {type(self.server_optimizer).__name__}"
            )

    def broadcast_state(self, server_state: dict) -> list[np.ndarray]:
        """The server control variate c, one array per weight."""
        return list(server_state["c"])

    def client_state_init(self, weights: Weights) -> Weights:
        """``c_i = 0``, one array per weight."""
        return [np.zeros(np.shape(w), np.float32) for w in weights]

    def local_gradient(
        self,
        grads: list,
        weights: list,
        broadcast_weights: list,
        client_state: list = (),
        broadcast: list = (),
    ) -> list:
        """The corrected direction ``g − c_i + c``."""
        return [g - ci + c for g, ci, c in zip(grads, client_state, broadcast, strict=True)]

    def client_state_update(
        self, client_state: list, delta: list, num_steps, client_lr, broadcast: list = ()
    ) -> list:
        """Option II: ``c_i⁺ = c_i − c + (x − y_i)/(K η_l) = c_i − c − delta/(K η_l)``."""
        scale = num_steps * client_lr
        return [ci - c - d / scale for ci, c, d in zip(client_state, broadcast, delta, strict=True)]

    def server_update(
        self,
        weights: Weights,
        aggregated_delta: Weights,
        server_state: dict,
        client_state_delta: Weights,
        participation: float,
    ) -> tuple[Weights, dict]:
        """``x ← x + η_g Δx`` (the inner optimiser) and ``c ← c + (|S|/N) mean(Δc_i)``."""
        new, state = self.server_optimizer.apply(weights, aggregated_delta, server_state)
        return new, self.server_optimizer.update_control_variate(
            state, client_state_delta, participation
        )


# -- factories ------------------------------------------------------------------------------------


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


def FedProx(  # noqa: N802
    mu: float = 0.01,
    local_epochs: int = 1,
    batch_size: int | None = 20,
    client_lr: float = 0.1,
    server_lr: float = 1.0,
) -> ProxAlgorithm:
    """FedProx (Li et al. 2020): FedAvg whose clients minimise ``F_k(w) + (μ/2)‖w − w_global‖²``.

    ``mu`` (>= 0) is the proximal strength; ``mu=0`` gives exactly FedAvg. The paper tunes μ in
    {0.001, 0.01, 0.1, 1}; 0.01 is the default here. See :class:`ProxAlgorithm`.

    Example:
        >>> FedProx(mu=0.1).config()["mu"]
        0.1
    """
    return ProxAlgorithm(
        local_epochs=local_epochs,
        batch_size=batch_size,
        client_lr=client_lr,
        server_optimizer=ServerSGD(server_lr),
        name="FedProx",
        mu=mu,
    )


def Scaffold(  # noqa: N802
    local_epochs: int = 1,
    batch_size: int | None = 20,
    client_lr: float = 0.1,
    server_lr: float = 1.0,
) -> ScaffoldAlgorithm:
    """SCAFFOLD (Karimireddy et al. 2020): local steps corrected by control variates, option II.

    ``server_lr`` is the paper's global step size η_g. See :class:`ScaffoldAlgorithm` for the
    formulas.

    Example:
        >>> Scaffold(client_lr=0.05).config()["server_optimizer"]["name"]
        'ControlVariateServer'
    """
    return ScaffoldAlgorithm(
        local_epochs=local_epochs,
        batch_size=batch_size,
        client_lr=client_lr,
        server_optimizer=ControlVariateServer(ServerSGD(server_lr)),
        name="SCAFFOLD",
    )


def FedAvgM(  # noqa: N802
    local_epochs: int = 1,
    batch_size: int | None = 20,
    client_lr: float = 0.1,
    server_lr: float = 1.0,
    momentum: float = 0.9,
    nesterov: bool = False,
) -> Algorithm:
    """FedAvg with server momentum (Hsu et al. 2019): :class:`ServerMomentum` on the server.

    ``momentum=0`` is exactly FedAvg. With momentum β the long-run step is about
    ``server_lr / (1 − β)`` times Δ, so lower ``server_lr`` when raising β.

    Example:
        >>> FedAvgM(momentum=0.5).config()["server_optimizer"]["momentum"]
        0.5
    """
    return Algorithm(
        local_epochs=local_epochs,
        batch_size=batch_size,
        client_lr=client_lr,
        server_optimizer=ServerMomentum(server_lr, momentum, nesterov),
        name="FedAvgM",
    )


def FedAdam(  # noqa: N802
    local_epochs: int = 1,
    batch_size: int | None = 20,
    client_lr: float = 0.1,
    server_lr: float = 0.01,
    beta1: float = 0.9,
    beta2: float = 0.99,
    tau: float = 1e-3,
) -> Algorithm:
    """FedAdam (Reddi et al. 2021): client SGD, :class:`ServerAdam` on the server.

    Example:
        >>> FedAdam(tau=1e-2).config()["server_optimizer"]["tau"]
        0.01
    """
    return Algorithm(
        local_epochs=local_epochs,
        batch_size=batch_size,
        client_lr=client_lr,
        server_optimizer=ServerAdam(server_lr, beta1, beta2, tau),
        name="FedAdam",
    )


def FedYogi(  # noqa: N802
    local_epochs: int = 1,
    batch_size: int | None = 20,
    client_lr: float = 0.1,
    server_lr: float = 0.01,
    beta1: float = 0.9,
    beta2: float = 0.99,
    tau: float = 1e-3,
) -> Algorithm:
    """FedYogi (Reddi et al. 2021): client SGD, :class:`ServerYogi` on the server.

    Example:
        >>> FedYogi().config()["server_optimizer"]["name"]
        'ServerYogi'
    """
    return Algorithm(
        local_epochs=local_epochs,
        batch_size=batch_size,
        client_lr=client_lr,
        server_optimizer=ServerYogi(server_lr, beta1, beta2, tau),
        name="FedYogi",
    )


def FedAdagrad(  # noqa: N802
    local_epochs: int = 1,
    batch_size: int | None = 20,
    client_lr: float = 0.1,
    server_lr: float = 0.01,
    beta1: float = 0.9,
    tau: float = 1e-3,
) -> Algorithm:
    """FedAdagrad (Reddi et al. 2021): client SGD, :class:`ServerAdagrad` on the server.

    Example:
        >>> FedAdagrad(beta1=0.0).config()["server_optimizer"]["beta1"]
        0.0
    """
    return Algorithm(
        local_epochs=local_epochs,
        batch_size=batch_size,
        client_lr=client_lr,
        server_optimizer=ServerAdagrad(server_lr, beta1, tau),
        name="FedAdagrad",
    )


def FedNova(  # noqa: N802
    local_epochs: int = 1,
    batch_size: int | None = 20,
    client_lr: float = 0.1,
    server_lr: float = 1.0,
) -> Algorithm:
    """FedNova (Wang et al. 2020): FedAvg's clients, the server normalises by local steps.

    Each client's update is divided by the number of local steps τ_k it took, averaged, and
    scaled back by τ_eff = Σ p_k τ_k (:class:`~fedlab.aggregators.FedNovaMean`). When clients
    take different numbers of steps (stragglers, ``max_local_steps`` per client, unequal data
    with a fixed batch size), FedAvg minimises the τ-weighted objective Σ p_k τ_k F_k; FedNova
    the true one. With equal τ_k it is FedAvg.

    Example:
        >>> FedNova().config()["aggregator"]["name"]
        'FedNovaMean'
    """
    return Algorithm(
        local_epochs=local_epochs,
        batch_size=batch_size,
        client_lr=client_lr,
        aggregator=FedNovaMean(),
        server_optimizer=ServerSGD(server_lr),
        name="FedNova",
    )


ALGORITHMS = {
    "fedavg": FedAvg,
    "fedsgd": FedSGD,
    "fedprox": FedProx,
    "scaffold": Scaffold,
    "fedavgm": FedAvgM,
    "fedadam": FedAdam,
    "fedyogi": FedYogi,
    "fedadagrad": FedAdagrad,
    "fednova": FedNova,
}
