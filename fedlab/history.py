"""What a federated run measured, round by round (``01_one_round_by_hand``).

Everything downstream of the engine — plots, widgets, the command line — reads a
:class:`History`; nothing re-runs training. A History saves to JSON and loads back exactly
(no pickle).
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field, fields

import numpy as np

from fedlab.history_file import config_from_json, read_history, record_from_dict, write_history


@dataclass(frozen=True)
class RoundRecord:
    """The numbers of one round.

    Attributes:
        round: round number, starting at 1.
        clients: ids of the clients that took part.
        client_loss: each client's mean local training loss.
        client_num_examples: each client's number of training examples (its aggregation weight).
        train_loss: example-weighted mean of ``client_loss``.
        test_loss: global model's test loss after the round (``nan`` if not evaluated).
        test_accuracy: global model's test accuracy after the round (``nan`` if not evaluated).
        client_drift: each client's ‖w_k − w_global‖₂ after local training.
        drift_mean: mean of ``client_drift``.
        drift_max: max of ``client_drift``.
        update_cosine: cosine similarity of each client's update to the aggregated update.
        bytes_down: bytes sent from server to clients this round (weights, plus any broadcast
            state such as SCAFFOLD's c).
        bytes_up: bytes sent from clients to server this round (updates, plus any client-state
            change such as SCAFFOLD's Δc_k).
        wall_time: seconds the round took (training, aggregation and evaluation).
        stragglers: ids of the selected clients that straggled (see :mod:`fedlab.stragglers`).
        dropped: ids of the stragglers left out of the round; ``clients`` are the selected
            clients that were not dropped (empty when all were: the global model stayed put).
        client_steps: local SGD steps each client in ``clients`` took.
        client_examples: examples each client in ``clients`` processed (summed over its local
            steps): with :class:`fedlab.compute.TrainingCost`, its FLOPs this round.
        gradient_dissimilarity: (1/N) Σ_k ‖∇F_k(w) − ∇f(w)‖² over all N clients at the global
            model after the round (:func:`fedlab.metrics.gradient_dissimilarity`); ``nan`` when
            not computed (see ``Simulation(dissimilarity_every=...)``).
        server_state_norm: L2 norm of the state the server broadcasts with the weights after the
            round (SCAFFOLD: the control variates' norms, here ‖c‖); ``nan`` when there is none.
        client_state_norm: mean over all N clients of the L2 norm of their persistent state after
            the round (SCAFFOLD: the control variates' norms, here mean ‖c_k‖); ``nan`` when
            there is none.
        epsilon: the (ε, δ) privacy budget spent so far, at the algorithm's δ (DP-FedAvg;
            ``nan`` for algorithms without a privacy guarantee).
        clipped_fraction: share of the round's clients whose update was clipped (DP-FedAvg),
            or of the coordinates sent that ``clip`` cut (secure aggregation).
        update_norm: norm of the clipped updates' sum over the expected number of clients,
            the signal before noise (DP-FedAvg).
        noise_norm: norm of the noise over the expected number of clients (DP-FedAvg).
        secure_dropped: clients that trained but dropped out of secure aggregation before
            sending their masked update (lost to this round).
        secure_aborted: too few clients were left for secure aggregation's threshold: the
            server refused to unmask and the global model did not change.
        client_test_accuracy: accuracy of the global model on each client's own held-out test
            set, one number per client in client-id order (all N clients, selected or not);
            empty when not evaluated (the split has no ``test_indices``, or not an evaluation
            round), ``nan`` for an algorithm without one global model (FedPer, local-only, IFCA).
        client_personal_accuracy: accuracy of each client's personalised model (FedPer's body +
            own head, Ditto's personal model, the cluster model IFCA's client chose, the global
            model fine-tuned on the client...) on its own test set; for algorithms that do not
            personalise, the global model's (equal to ``client_test_accuracy``).
        client_cluster: clustered FL (IFCA): the cluster model each client chose when it last
            took part, one per client (-1: not yet chosen); empty for other algorithms.
        malicious: the round's clients that attacked (:mod:`fedlab.poisoning`); empty without
            an attack.
        defence_kept: the clients whose updates a selecting defence used (Krum, Multi-Krum,
            Bulyan: :mod:`fedlab.robust`); empty for defences that select nobody.
        defence_clipped: the clients whose updates a norm-clipping defence scaled down.
        trust_scores: FLTrust's trust score of each of the round's clients (in ``clients``
            order); empty for other aggregators.
        backdoor_success: share of the triggered test images (true label not the target) the
            global model classifies as the backdoor's target; ``nan`` without a backdoor or
            when not evaluated.
    """

    round: int
    clients: tuple[int, ...]
    client_loss: tuple[float, ...]
    client_num_examples: tuple[int, ...]
    train_loss: float
    test_loss: float
    test_accuracy: float
    client_drift: tuple[float, ...]
    drift_mean: float
    drift_max: float
    update_cosine: tuple[float, ...]
    bytes_down: int
    bytes_up: int
    wall_time: float
    stragglers: tuple[int, ...] = ()
    dropped: tuple[int, ...] = ()
    client_steps: tuple[int, ...] = ()
    client_examples: tuple[int, ...] = ()
    gradient_dissimilarity: float = math.nan
    server_state_norm: float = math.nan
    client_state_norm: float = math.nan
    epsilon: float = math.nan
    clipped_fraction: float = math.nan
    update_norm: float = math.nan
    noise_norm: float = math.nan
    secure_dropped: tuple[int, ...] = ()
    secure_aborted: bool = False
    client_test_accuracy: tuple[float, ...] = ()
    client_personal_accuracy: tuple[float, ...] = ()
    client_cluster: tuple[int, ...] = ()
    malicious: tuple[int, ...] = ()
    defence_kept: tuple[int, ...] = ()
    defence_clipped: tuple[int, ...] = ()
    trust_scores: tuple[float, ...] = ()
    backdoor_success: float = math.nan

    @classmethod
    def from_dict(cls, values: dict) -> RoundRecord:
        """Rebuild a record from :meth:`History.to_dict` output (lists become tuples).

        Every field is checked against its type (a ``ValueError`` names the field); fields missing
        from ``values`` (files saved before they existed) take their defaults, ``None`` in a number
        becomes ``nan``, and fields this version does not know are left out with a warning.

        Example:
            >>> old = dict(round=1, clients=[0], client_loss=[0.5], client_num_examples=[9],
            ...            train_loss=0.5, test_loss=0.4, test_accuracy=0.9, client_drift=[0.1],
            ...            drift_mean=0.1, drift_max=0.1, update_cosine=[1.0], bytes_down=8,
            ...            bytes_up=8, wall_time=0.01, gradient_dissimilarity=None)
            >>> r = RoundRecord.from_dict(old)
            >>> r.clients, r.dropped, r.gradient_dissimilarity
            ((0,), (), nan)
        """
        return record_from_dict(values)


@dataclass
class History:
    """A run's settings and its per-round records; per-round series as NumPy arrays.

    Attributes:
        config: the run's settings (algorithm, data, split, seed, ...), JSON-friendly.
        rounds: one :class:`RoundRecord` per completed round.

    Example:
        >>> h = History(config={"seed": 0})
        >>> len(h), h.test_accuracy.shape
        (0, (0,))
    """

    config: dict = field(default_factory=dict)
    rounds: list[RoundRecord] = field(default_factory=list)
    client_state: dict[str, list[np.ndarray]] = field(default_factory=dict, compare=False)
    """Per-client state after the last round (personal models, cluster models and choices,
    SCAFFOLD's variates), one ``[num_clients, ...]`` array per weight; saved beside the JSON
    as ``.npz`` by :meth:`save`. Not part of equality."""

    def __len__(self) -> int:
        return len(self.rounds)

    def append(self, record: RoundRecord) -> None:
        """Add the next round's record."""
        self.rounds.append(record)

    def series(self, name: str) -> np.ndarray:
        """One scalar field of every round as an array, e.g. ``series("drift_mean")``."""
        valid = {f.name for f in fields(RoundRecord)}
        if name not in valid:
            raise ValueError(
                f"name must be a RoundRecord field, one of {sorted(valid)}, got {name!r}"
            )
        return np.array([getattr(r, name) for r in self.rounds], dtype=float)

    round = property(lambda self: self.series("round").astype(int), doc="Round numbers.")
    train_loss = property(
        lambda self: self.series("train_loss"), doc="Weighted client training loss per round."
    )
    test_loss = property(lambda self: self.series("test_loss"), doc="Global test loss per round.")
    test_accuracy = property(
        lambda self: self.series("test_accuracy"), doc="Global test accuracy per round."
    )
    drift_mean = property(
        lambda self: self.series("drift_mean"), doc="Mean client drift per round."
    )
    drift_max = property(lambda self: self.series("drift_max"), doc="Max client drift per round.")
    update_cosine_mean = property(
        lambda self: np.array(
            [np.mean(r.update_cosine) if r.update_cosine else np.nan for r in self.rounds]
        ),
        doc="Mean cosine of each client's update with the aggregate per round (update "
        "agreement: 1 when clients pull the same way; nan if no client reported).",
    )
    bytes_down = property(
        lambda self: self.series("bytes_down").astype(np.int64), doc="Bytes sent down per round."
    )
    bytes_up = property(
        lambda self: self.series("bytes_up").astype(np.int64), doc="Bytes sent up per round."
    )
    megabytes_sent = property(
        lambda self: np.cumsum(self.series("bytes_down") + self.series("bytes_up")) / 1e6,
        doc="Megabytes (10⁶ bytes) sent down and up so far, after each round: the x axis that "
        "compares methods with different costs per round fairly.",
    )
    personal_accuracy = property(
        lambda self: self.fairness("personal")["mean"],
        doc="Mean over clients of each client's personalised-model accuracy on its own test set, "
        "per round (nan where not evaluated).",
    )
    perplexity = property(
        lambda self: np.exp(self.series("test_loss")),
        doc="exp(test loss) per round: for a language model (per-token loss), the test perplexity.",
    )
    client_gflops = property(
        lambda self: np.array(
            [
                float(np.sum(r.client_examples))
                * self.config.get("client_cost", {}).get("train_gflops", math.nan)
                for r in self.rounds
            ]
        ),
        doc="Client training compute per round, GFLOPs summed over the round's clients: examples "
        "processed × the model's training FLOPs per example (``config['client_cost']``, from "
        ":func:`fedlab.compute.training_cost`); nan when the model's cost is unknown.",
    )
    wall_time = property(lambda self: self.series("wall_time"), doc="Seconds per round.")
    gradient_dissimilarity = property(
        lambda self: self.series("gradient_dissimilarity"),
        doc="Gradient dissimilarity at the global model per round (nan where not computed).",
    )
    server_state_norm = property(
        lambda self: self.series("server_state_norm"),
        doc="Norm of the server's broadcast state per round (SCAFFOLD: ‖c‖; nan if none).",
    )
    client_state_norm = property(
        lambda self: self.series("client_state_norm"),
        doc="Mean norm of the clients' persistent state per round (SCAFFOLD: mean ‖c_k‖).",
    )
    epsilon = property(
        lambda self: self.series("epsilon"),
        doc="Privacy budget ε spent after each round (DP-FedAvg; nan without a guarantee).",
    )
    clipped_fraction = property(
        lambda self: self.series("clipped_fraction"),
        doc="Share of each round's clients whose update was clipped (DP-FedAvg).",
    )
    num_stragglers = property(
        lambda self: np.array([len(r.stragglers) for r in self.rounds], dtype=int),
        doc="Number of stragglers per round.",
    )
    num_dropped = property(
        lambda self: np.array([len(r.dropped) for r in self.rounds], dtype=int),
        doc="Number of clients dropped from aggregation per round.",
    )
    num_participants = property(
        lambda self: np.array([len(r.clients) for r in self.rounds], dtype=int),
        doc="Number of clients whose updates were aggregated per round.",
    )

    def client_accuracy(self, kind: str = "personal") -> np.ndarray:
        """Per-client test accuracy after every round, ``[num_rounds, num_clients]``.

        ``kind`` is ``"personal"`` (each client's personalised model) or ``"global"`` (the global
        model on each client's own test set). Rows of rounds without per-client evaluation are
        ``nan``.

        Example:
            >>> History().client_accuracy().shape
            (0, 0)
        """
        if kind not in ("personal", "global"):
            raise ValueError(f"kind must be 'personal' or 'global', got {kind!r}")
        name = "client_personal_accuracy" if kind == "personal" else "client_test_accuracy"
        rows = [getattr(r, name) for r in self.rounds]
        width = max((len(r) for r in rows), default=0)
        out = np.full((len(rows), width), np.nan)
        for i, row in enumerate(rows):
            if len(row) == width:
                out[i] = row
        return out

    def last_client_accuracy(self, kind: str = "personal") -> np.ndarray | None:
        """Each client's accuracy at the last round that evaluated clients (``None``: none did).

        Example:
            >>> History().last_client_accuracy() is None
            True
        """
        rows = [row for row in self.client_accuracy(kind) if np.isfinite(row).any()]
        return rows[-1] if rows else None

    def fairness(self, kind: str = "personal") -> dict[str, np.ndarray]:
        """Statistics of the per-client accuracies after every round (nan where not evaluated):
        ``mean``, ``median``, ``worst10`` (mean of the worst 10 % of clients, at least one) and
        ``std`` (see :func:`fedlab.metrics.fairness`).

        Example:
            >>> sorted(History().fairness())
            ['mean', 'median', 'std', 'worst10']
        """
        from fedlab.metrics import fairness

        table = self.client_accuracy(kind)
        stats = [fairness(row) for row in table]
        names = ("mean", "median", "worst10", "std")
        return {n: np.array([s[n] for s in stats], dtype=float) for n in names}

    def to_dict(self) -> dict:
        """A JSON-friendly dict (tuples become lists)."""
        return {"config": self.config, "rounds": [asdict(r) for r in self.rounds]}

    @classmethod
    def from_dict(cls, values: dict, where: str = "the History dict") -> History:
        """Inverse of :meth:`to_dict`, every round checked (``where`` names the source in errors).

        Example:
            >>> History.from_dict({"config": {}, "rounds": [None]})  # doctest: +ELLIPSIS
            Traceback (most recent call last):
            ...
            ValueError: the History dict: rounds[0] should be an object with a round's numbers...
        """
        if not isinstance(values, dict) or "rounds" not in values:
            raise ValueError(f"{where} needs 'config' and 'rounds' keys")
        config, rounds = values.get("config", {}), values["rounds"]
        if config is None:
            config = {}
        if not isinstance(config, dict):
            raise ValueError(f"{where}: 'config' should be an object, got {config!r:.60}")
        if not isinstance(rounds, list):
            raise ValueError(f"{where}: 'rounds' should be a list, got {rounds!r:.60}")
        return cls(
            config=config_from_json(config),
            rounds=[record_from_dict(r, f"{where}: rounds[{i}]") for i, r in enumerate(rounds)],
        )

    def save(self, path: str | os.PathLike) -> None:
        """Write the history to a JSON file, and its client state (if any) to a ``.npz`` beside it.

        The save is atomic: if it fails or is interrupted, the previous file is left whole (see
        :mod:`fedlab.history_file`). NaN is written as ``null``, so the file is strict JSON; a
        config value JSON cannot hold stops the save before anything is written. A missing folder
        is created.

        Example:
            >>> history.save("history.json"); History.load("history.json") == history  # doctest: +SKIP
            True
        """
        write_history(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike, client_state: bool = True) -> History:
        """Read a history written by :meth:`save`, with its client state unless
        ``client_state=False``. A file that is not a History, or a damaged one, raises a
        ``ValueError`` naming the file and the field.

        Example:
            >>> History.load("history.json")  # doctest: +SKIP
        """
        return read_history(path, client_state=client_state)

    def __eq__(self, other: object) -> bool:
        """Equal when configs match and every number matches exactly (NaN equals NaN)."""
        if not isinstance(other, History):
            return NotImplemented
        return _same(self.to_dict(), other.to_dict())

    def matches(self, other: History) -> bool:
        """Same settings and results, ignoring wall time: what the same seed must reproduce.

        Example:
            >>> run(seed=0).matches(run(seed=0))  # doctest: +SKIP
            True
        """

        def results(h: History) -> dict:
            values = h.to_dict()
            for r in values["rounds"]:
                r.pop("wall_time")
            return values

        return _same(results(self), results(other))


def _same(a, b) -> bool:
    """Exact equality of nested JSON-like values, NaN equal to NaN."""
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b
