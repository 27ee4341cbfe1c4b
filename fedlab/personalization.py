"""Personalised and multi-task federated learning (``13_personalisation_and_multitask``).

One global model is an average: under heterogeneous data it can serve some clients badly. The
algorithms here give each client a model of its own while still learning together; each is
FedAvg's slots (:mod:`fedlab.algorithms`) plus an optional **personalisation slot**
(:class:`Personalization`: what each client keeps for itself), trained for all clients at once:

==========================  =====================================================================
algorithm                   what each client ends up with
==========================  =====================================================================
:func:`LocalOnly`           a model trained on its own data only (no collaboration: the baseline)
:func:`FedAvgFineTune`      the FedAvg model after ``fine_tune_steps`` local steps on its data
:func:`FedPer`              the averaged body with its own head, which never leaves the client
                            (Arivazhagan et al. 2019)
:func:`Ditto`               a personal model ``v_k`` trained on ``F_k(v) + λ/2‖v − w‖²`` beside
                            the FedAvg model ``w`` (Li et al. 2021): λ = 0 local-only, λ → ∞ ``w``
:func:`IFCA`                the one of K cluster models with the lowest loss on its data, which
                            it then trains (Ghosh et al. 2020)
:func:`MultiTaskFedAvg`     a shared body averaged over every client and one head per task,
                            averaged over that task's clients only
==========================  =====================================================================

Personal state (personal models, heads, cluster choices) is kept by the engine for every
client, also for clients not selected in a round, and left in ``History.client_state``. With a
split that has per-client test sets (:func:`fedlab.partition.hold_out`) every evaluation round
records each client's accuracy with the global and with its personalised model
(``History.client_accuracy``, ``History.fairness``).

Example:
    >>> algo = Ditto(lam=0.5, client_lr=0.1)
    >>> algo.personalization.personal_strength(), algo.config()["lam"]
    (0.5, 0.5)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from fedlab.algorithms import Algorithm, ServerSGD, Weights, _store
from fedlab.history import History
from fedlab.metrics import fairness
from fedlab.validate import check_float, check_int


def _copies(weights: Weights) -> Weights:
    return [np.array(w, np.float32, copy=True) for w in weights]


def _check_head(head_weights: int, weights: Weights) -> int:
    if head_weights >= len(weights):
        raise ValueError(
            f"head_weights must be between 1 and {len(weights) - 1} for this model (it has "
            f"{len(weights)} weight arrays and needs a body), got {head_weights}"
        )
    return head_weights


# -- the personalisation slot ------------------------------------------------------------------


@dataclass(frozen=True)
class Personalization:
    """The optional personalisation slot of an :class:`~fedlab.algorithms.Algorithm`: what each
    client keeps for itself. This base keeps nothing; the engine reads only these hooks.

    Each subclass below changes some of them: :class:`LocalModels` (local-only),
    :class:`FineTuneAfter` (FedAvg + fine-tuning), :class:`PersonalHead` (FedPer),
    :class:`PersonalModels` (Ditto), :class:`Clusters` (IFCA), :class:`TaskHeads` (multi-task
    FedAvg). Any algorithm takes one, e.g. FedProx with FedPer's personal head::

        ProxAlgorithm(mu=0.1, personalization=PersonalHead(2))

    Attributes:
        trains_global: False when nothing is sent and only the personal models train.

    Example:
        >>> Personalization().num_global_models(), PersonalHead(2).trains_global
        (1, True)
    """

    trains_global: ClassVar[bool] = True

    def personal_init(self, weights: Weights) -> Weights | None:
        """A client's personal weights before its first round (``None``: the client keeps no
        personal model). Kept by the engine per client, also for clients not selected."""
        return None

    def personal_mask(self, weights: Weights) -> Weights | None:
        """0/1 per weight element, 1 where the weight stays on the client (FedPer's head):
        local training starts from the client's own values there, and they are never sent."""
        return None

    def personal_strength(self) -> float | None:
        """λ of a personal model trained after the global update on ``F_k(v) + λ/2‖v − w‖²``
        (Ditto; 0: local-only training). ``None``: no personal training pass."""
        return None

    def fine_tune_steps(self) -> int:
        """Local SGD steps each client fine-tunes the global model for before it is evaluated
        on the client's own test set (0: none)."""
        return 0

    def num_global_models(self) -> int:
        """How many global models the server keeps (clustered FL, IFCA: one per cluster)."""
        return 1

    def share_masks(self, weights: Weights, data, split) -> Weights | None:
        """Which parts of its update each client sends and which clients each weight is averaged
        over: one 0/1 array per weight, broadcastable to ``[num_clients, *weight.shape]``
        (``None``: every client sends everything); the aggregate is then a masked mean."""
        return None


NO_PERSONALIZATION = Personalization()
"""What an algorithm without a personalisation slot keeps on its clients: nothing."""


@dataclass(frozen=True)
class LocalModels(Personalization):
    """Every client trains a model of its own and nothing is sent (local-only training).

    Example:
        >>> LocalModels().trains_global, LocalModels().personal_strength()
        (False, 0.0)
    """

    trains_global: ClassVar[bool] = False

    def personal_init(self, weights: Weights) -> Weights:
        """Every client starts from the same initial weights."""
        return _copies(weights)

    def personal_strength(self) -> float:
        """λ = 0: plain local training."""
        return 0.0


@dataclass(frozen=True)
class FineTuneAfter(Personalization):
    """Each client fine-tunes the global model for ``steps`` local steps before using it.

    Example:
        >>> FineTuneAfter(3).fine_tune_steps()
        3
    """

    steps: int = 5

    def __post_init__(self):
        _store(self, steps=check_int("fine_tune_steps", self.steps, low=1))

    def fine_tune_steps(self) -> int:
        """Steps of local fine-tuning before evaluation."""
        return self.steps


@dataclass(frozen=True)
class PersonalHead(Personalization):
    """The model's last ``head_weights`` weight arrays stay on the client (FedPer).

    Example:
        >>> mask = PersonalHead(2).personal_mask([np.zeros((3, 2)), np.zeros(2), np.zeros((2, 4)), np.zeros(4)])
        >>> [float(m.max()) for m in mask]
        [0.0, 0.0, 1.0, 1.0]
    """

    head_weights: int = 2

    def __post_init__(self):
        _store(self, head_weights=check_int("head_weights", self.head_weights, low=1))

    def personal_init(self, weights: Weights) -> Weights:
        """Every client's head starts from the global initial head."""
        return _copies(weights)

    def personal_mask(self, weights: Weights) -> Weights:
        """1 on the last ``head_weights`` arrays (kept on the client), 0 on the body."""
        first_head = len(weights) - _check_head(self.head_weights, weights)
        return [
            np.full(np.shape(w), float(j >= first_head), np.float32) for j, w in enumerate(weights)
        ]


@dataclass(frozen=True)
class PersonalModels(Personalization):
    """A personal model per client, trained on ``F_k(v) + λ/2‖v − w‖²`` beside the global one
    (Ditto; ``lam = 0``: local training, but the global model still trains).

    Example:
        >>> PersonalModels(0.5).personal_strength()
        0.5
    """

    lam: float = 0.1

    def __post_init__(self):
        _store(self, lam=check_float("lam", self.lam, low=0.0))

    def personal_init(self, weights: Weights) -> Weights:
        """Personal models start from the global initial weights."""
        return _copies(weights)

    def personal_strength(self) -> float:
        """λ."""
        return self.lam


@dataclass(frozen=True)
class Clusters(Personalization):
    """K global models; each client trains the one with the lowest loss on its data (IFCA).

    Example:
        >>> Clusters(4).num_global_models()
        4
    """

    num_clusters: int = 2

    def __post_init__(self):
        _store(self, num_clusters=check_int("num_clusters", self.num_clusters, low=1))

    def num_global_models(self) -> int:
        """K."""
        return self.num_clusters


@dataclass(frozen=True)
class TaskHeads(Personalization):
    """A body shared by every client and one head per task, averaged over that task's clients
    (multi-task FedAvg; the data's ``label_groups`` name the tasks).

    Example:
        >>> TaskHeads(2).head_weights
        2
    """

    head_weights: int = 2

    def __post_init__(self):
        _store(self, head_weights=check_int("head_weights", self.head_weights, low=1))

    def share_masks(self, weights: Weights, data, split) -> Weights:
        """Body: 1 for every client; output columns: 1 for the clients of the column's task."""
        groups = getattr(data, "label_groups", None)
        if not groups:
            raise ValueError(
                "multi-task FedAvg needs data with tasks (data.label_groups), e.g. "
                "fedlab.multitask.multitask_digits(load_digits(), num_clients)"
            )
        first_head = len(weights) - _check_head(self.head_weights, weights)
        outputs = np.shape(weights[-1])[-1]
        for t, (start, stop) in enumerate(groups):
            if stop > outputs:
                raise ValueError(
                    f"task {t} (classes {start}..{stop - 1}) has no head: the model's output "
                    f"layer has {outputs} outputs; build it with {groups[-1][1]}"
                )
        columns = np.zeros((len(split.client_indices), outputs), np.float32)
        labels = np.asarray(data.y_train)
        for k, own in enumerate(split.client_indices):
            for t in np.unique(_task_ids(labels[own], groups)):
                start, stop = groups[t]
                columns[k, start:stop] = 1.0
        masks = []
        for j, w in enumerate(weights):
            shape = np.shape(w)
            if j < first_head:
                masks.append(np.ones((1, *shape), np.float32))
            elif shape[-1] != outputs:
                raise ValueError(
                    f"head weight {j} has shape {shape}; every head weight must end in the "
                    f"{outputs} outputs (set head_weights)"
                )
            else:
                lead = (1,) * (len(shape) - 1)
                masks.append(np.asarray(columns.reshape(len(columns), *lead, outputs)))
        return masks


# -- the algorithms: FedAvg with a personalisation slot ----------------------------------------


@dataclass(frozen=True)
class LocalOnlyAlgorithm(Algorithm):
    """Every client trains a model on its own data and never communicates.

    The baseline for personalisation: as good as a client's data allows and no better. Each
    selected client runs ``local_epochs`` of SGD on its personal model each round; the server's
    model never changes and nothing is sent (0 bytes). Slot: :class:`LocalModels`.

    Example:
        >>> LocalOnlyAlgorithm().personalization.trains_global
        False
    """

    name: str = "local only"
    graph_is_fedavg: ClassVar[bool] = True

    def __post_init__(self):
        _store(self, personalization=LocalModels())
        super().__post_init__()


@dataclass(frozen=True)
class FineTuneAlgorithm(Algorithm):
    """FedAvg, then each client fine-tunes the global model on its own data before using it.

    The personalised model of client k is the global model after ``tune_steps`` local SGD steps
    (mini-batches of ``batch_size``, learning rate ``client_lr``) on k's training data; it is
    made afresh at every evaluation round and not kept. Slot: :class:`FineTuneAfter`.

    Attributes:
        tune_steps: local fine-tuning steps (>= 1).

    Example:
        >>> FineTuneAlgorithm(tune_steps=3).personalization.fine_tune_steps()
        3
    """

    tune_steps: int = 5
    name: str = "FedAvg + fine-tuning"
    graph_is_fedavg: ClassVar[bool] = True

    def __post_init__(self):
        _store(self, personalization=FineTuneAfter(self.tune_steps))
        _store(self, tune_steps=self.personalization.steps)
        super().__post_init__()

    def config(self) -> dict:
        """The settings, with ``fine_tune_steps``."""
        return {**super().config(), "fine_tune_steps": self.tune_steps}


@dataclass(frozen=True)
class FedPerAlgorithm(Algorithm):
    """FedPer (Arivazhagan et al. 2019): the body is federated, each client keeps its own head.

    The last ``head_weights`` weight arrays (default 2: the output layer's kernel and bias) are
    personal: a client's local training starts from the global body and *its own* head, only
    the body's update is sent and averaged, and the trained head stays on the client for its
    next round. There is no global head, so no single global model to evaluate. Slot:
    :class:`PersonalHead`.

    Attributes:
        head_weights: how many of the model's last weight arrays form the personal head.

    Example:
        >>> FedPerAlgorithm(head_weights=1).personalization
        PersonalHead(head_weights=1)
    """

    head_weights: int = 2
    name: str = "FedPer"
    graph_is_fedavg: ClassVar[bool] = True

    def __post_init__(self):
        _store(self, personalization=PersonalHead(self.head_weights))
        _store(self, head_weights=self.personalization.head_weights)
        super().__post_init__()

    def config(self) -> dict:
        """The settings, with ``head_weights``."""
        return {**super().config(), "head_weights": self.head_weights}


@dataclass(frozen=True)
class DittoAlgorithm(Algorithm):
    """Ditto (Li et al. 2021): FedAvg for the global model ``w`` plus a personal model per client.

    After its FedAvg local training, a selected client k trains its personal ``v_k`` on the same
    mini-batches for ``F_k(v) + λ/2 ‖v − w^t‖²`` (``w^t`` the global model it received). Each
    step is an SGD step on ``F_k`` followed by the proximal step of the λ term,
    ``v ← (v + η λ w^t) / (1 + η λ)``: stable for every λ, to first order in ηλ the paper's
    gradient step. λ = 0 is local-only training, λ → ∞ gives ``v_k = w^t``. Slot:
    :class:`PersonalModels`.

    Attributes:
        lam: λ >= 0, how strongly a personal model is pulled towards the global one.

    Example:
        >>> DittoAlgorithm(lam=0.0).personalization.personal_strength()
        0.0
    """

    lam: float = 0.1
    name: str = "Ditto"
    graph_is_fedavg: ClassVar[bool] = True

    def __post_init__(self):
        _store(self, personalization=PersonalModels(self.lam))
        _store(self, lam=self.personalization.lam)
        super().__post_init__()

    def config(self) -> dict:
        """The settings, with ``lam``."""
        return {**super().config(), "lam": self.lam}


@dataclass(frozen=True)
class IFCAAlgorithm(Algorithm):
    """Clustered FL, IFCA (Ghosh et al. 2020): K global models; each client picks one.

    Each round every selected client receives all K cluster models, computes each one's loss on
    its own training data, trains the one with the lowest loss (FedAvg local training) and sends
    it back with its choice; the server averages each cluster model over the clients that
    picked it. The cluster models start from different random weights. A client's personalised
    model is its cluster's; ``History`` records every client's choice (``client_cluster``).
    Slot: :class:`Clusters`.

    Attributes:
        num_clusters: K (at most the number of clients).

    Example:
        >>> IFCAAlgorithm(num_clusters=4).personalization.num_global_models()
        4
    """

    num_clusters: int = 2
    name: str = "IFCA"
    graph_is_fedavg: ClassVar[bool] = True

    def __post_init__(self):
        _store(self, personalization=Clusters(self.num_clusters))
        _store(self, num_clusters=self.personalization.num_clusters)
        super().__post_init__()

    def config(self) -> dict:
        """The settings, with ``num_clusters``."""
        return {**super().config(), "num_clusters": self.num_clusters}


@dataclass(frozen=True)
class MultiTaskAlgorithm(Algorithm):
    """Multi-task FedAvg: a body shared by every client, one head per task.

    For data with several tasks (``data.label_groups``, e.g. :func:`fedlab.multitask.multitask_digits`)
    the model's output layer holds every task's classes side by side: a client's loss and
    prediction use its own task's columns only (so the other heads get exactly zero gradient from
    it). Aggregation averages the body over all clients and each task's columns of the output
    layer (the last ``head_weights`` arrays) over that task's clients only. Slot:
    :class:`TaskHeads`.

    Attributes:
        head_weights: how many of the model's last weight arrays hold the heads (kernel, bias).

    Example:
        >>> MultiTaskAlgorithm().config()["head_weights"]
        2
    """

    head_weights: int = 2
    name: str = "multi-task FedAvg"
    graph_is_fedavg: ClassVar[bool] = True

    def __post_init__(self):
        _store(self, personalization=TaskHeads(self.head_weights))
        _store(self, head_weights=self.personalization.head_weights)
        super().__post_init__()

    def config(self) -> dict:
        """The settings, with ``head_weights``."""
        return {**super().config(), "head_weights": self.head_weights}


def _task_ids(labels: np.ndarray, groups) -> np.ndarray:
    from fedlab.multitask import task_of

    return task_of(labels, groups)


# -- factories ------------------------------------------------------------------------------------


def LocalOnly(  # noqa: N802 - reads like the algorithm's name
    local_epochs: int = 1, batch_size: int | None = 20, client_lr: float = 0.1
) -> LocalOnlyAlgorithm:
    """Local-only training: no collaboration, each client's own model (the baseline).

    Example:
        >>> LocalOnly(client_lr=0.05).config()["client_lr"]
        0.05
    """
    return LocalOnlyAlgorithm(local_epochs=local_epochs, batch_size=batch_size, client_lr=client_lr)


def FedAvgFineTune(  # noqa: N802
    fine_tune_steps: int = 5,
    local_epochs: int = 1,
    batch_size: int | None = 20,
    client_lr: float = 0.1,
    server_lr: float = 1.0,
) -> FineTuneAlgorithm:
    """FedAvg, then ``fine_tune_steps`` local SGD steps on each client before it uses the model.

    Example:
        >>> FedAvgFineTune(fine_tune_steps=10).config()["fine_tune_steps"]
        10
    """
    return FineTuneAlgorithm(
        local_epochs=local_epochs,
        batch_size=batch_size,
        client_lr=client_lr,
        server_optimizer=ServerSGD(server_lr),
        tune_steps=fine_tune_steps,
    )


def FedPer(  # noqa: N802
    head_weights: int = 2,
    local_epochs: int = 1,
    batch_size: int | None = 20,
    client_lr: float = 0.1,
    server_lr: float = 1.0,
) -> FedPerAlgorithm:
    """FedPer: shared body, personal head (the last ``head_weights`` weight arrays).

    Example:
        >>> FedPer().config()["head_weights"]
        2
    """
    return FedPerAlgorithm(
        local_epochs=local_epochs,
        batch_size=batch_size,
        client_lr=client_lr,
        server_optimizer=ServerSGD(server_lr),
        head_weights=head_weights,
    )


def Ditto(  # noqa: N802
    lam: float = 0.1,
    local_epochs: int = 1,
    batch_size: int | None = 20,
    client_lr: float = 0.1,
    server_lr: float = 1.0,
) -> DittoAlgorithm:
    """Ditto: FedAvg plus a personal model per client pulled towards it with strength ``lam``.

    Example:
        >>> Ditto(lam=1.0).config()["lam"]
        1.0
    """
    return DittoAlgorithm(
        local_epochs=local_epochs,
        batch_size=batch_size,
        client_lr=client_lr,
        server_optimizer=ServerSGD(server_lr),
        lam=lam,
    )


def IFCA(  # noqa: N802
    num_clusters: int = 2,
    local_epochs: int = 1,
    batch_size: int | None = 20,
    client_lr: float = 0.1,
    server_lr: float = 1.0,
) -> IFCAAlgorithm:
    """IFCA clustered FL with ``num_clusters`` global models.

    Example:
        >>> IFCA(num_clusters=3).config()["num_clusters"]
        3
    """
    return IFCAAlgorithm(
        local_epochs=local_epochs,
        batch_size=batch_size,
        client_lr=client_lr,
        server_optimizer=ServerSGD(server_lr),
        num_clusters=num_clusters,
    )


def MultiTaskFedAvg(  # noqa: N802
    head_weights: int = 2,
    local_epochs: int = 1,
    batch_size: int | None = 20,
    client_lr: float = 0.1,
    server_lr: float = 1.0,
) -> MultiTaskAlgorithm:
    """Multi-task FedAvg: the body averaged over everyone, each task head over its task's clients.

    Example:
        >>> MultiTaskFedAvg().name
        'multi-task FedAvg'
    """
    return MultiTaskAlgorithm(
        local_epochs=local_epochs,
        batch_size=batch_size,
        client_lr=client_lr,
        server_optimizer=ServerSGD(server_lr),
        head_weights=head_weights,
    )


PERSONALIZATION = {
    "local": LocalOnly,
    "finetune": FedAvgFineTune,
    "fedper": FedPer,
    "ditto": Ditto,
    "ifca": IFCA,
    "multitask": MultiTaskFedAvg,
}


def cluster_purity(assigned, planted) -> float:
    """Share of clients whose cluster's majority planted group is their own.

    1.0 when every found cluster holds clients of one planted group only (a cluster may hold a
    whole group; two clusters may split one). Clients with ``assigned < 0`` (never chose) count
    as wrong.

    Example:
        >>> cluster_purity([0, 0, 1, 1], [2, 2, 5, 5]), cluster_purity([0, 0, 0, 1], [0, 1, 1, 1])
        (1.0, 0.75)
    """
    assigned, planted = np.asarray(assigned), np.asarray(planted)
    if assigned.shape != planted.shape or assigned.ndim != 1:
        raise ValueError(
            f"assigned and planted must be 1-D of the same length, got {assigned.shape} and "
            f"{planted.shape}"
        )
    if len(assigned) == 0:
        return float("nan")
    right = sum(
        Counter(planted[assigned == c].tolist()).most_common(1)[0][1]
        for c in np.unique(assigned)
        if c >= 0
    )
    return right / len(assigned)


def fairness_table(runs: Mapping[str, tuple[History, str]]) -> str:
    """A text table of each run's per-client accuracy at its last evaluated round: mean, median
    and worst 10 % (:meth:`fedlab.history.History.fairness`).

    ``runs`` maps a label to ``(history, kind)``, kind ``"global"`` or ``"personal"``.

    Example:
        >>> print(fairness_table({"FedAvg": (fedavg, "global"), "Ditto": (ditto, "personal")}))  # doctest: +SKIP
                                 mean median worst10
        FedAvg                  0.798  0.910   0.107
        Ditto                   0.955  1.000   0.733
    """
    if not isinstance(runs, Mapping) or not runs:
        raise ValueError("runs must be a non-empty dict of label -> (History, kind)")
    width = max(22, max(len(name) for name in runs) + 1)
    lines = [f"{'':{width}s} {'mean':>6s} {'median':>6s} {'worst10':>7s}"]
    for name, (history, kind) in runs.items():
        stats = fairness(history.last_client_accuracy(kind) if len(history) else [])
        lines.append(
            f"{name:{width}s} {stats['mean']:6.3f} {stats['median']:6.3f} {stats['worst10']:7.3f}"
        )
    return "\n".join(lines)
