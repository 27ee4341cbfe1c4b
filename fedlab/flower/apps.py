"""fedlab's algorithms on Flower: clients as real processes (``14_from_simulation_to_deployment``).

:func:`fedlab.simulate` trains every client inside one Python process. This module runs the same
algorithm with `Flower <https://flower.ai>`_ (1.42, Message API): a SuperLink, one SuperNode per
client (a separate process holding only its own partition) and fedlab's server loop as a Flower
``ServerApp``. The same :class:`FlowerConfig` and seed give the same data split, initial weights,
client selection and batch order as :func:`fedlab.simulate`, so both produce the same
:class:`~fedlab.history.History` numbers (``tests/test_flower.py``).

* :class:`FlowerConfig` — one run's settings, flattened into Flower's ``--run-config``;
* :data:`server_app`, :data:`client_app` — the Flower apps (``fedlab.flower:server_app``);
* :func:`write_app` — a minimal Flower app folder pointing at them, for ``flwr run``;
* :class:`LocalFederation` — SuperLink + SuperNodes on 127.0.0.1 as subprocesses, for teaching
  and tests: ``with LocalFederation(3) as fed: history = fed.run(FlowerConfig(num_clients=3))``.

Flower itself is optional: this module imports without it; the apps and the federation need
``pip install 'fedlab-edu[flower]'`` (``flwr>=1.42,<1.43``).

Example:
    >>> FlowerConfig(num_clients=3).to_run_config()["algorithm"]
    'fedavg'
"""

from __future__ import annotations

import atexit
import dataclasses
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from fedlab.flower.watchdog import descendants as _descendants
from fedlab.flower.watchdog import proc_table as _proc_table
from fedlab.validate import check_choice, check_float, check_int

if TYPE_CHECKING:
    from fedlab.compression import Codec, ErrorFeedback

INSTALL_HINT = "pip install 'fedlab-edu[flower]'"
DATASETS = ("digits", "synthetic")
PARTITIONS = ("iid", "dirichlet")
ON_NODE_FAILURE = ("continue", "fail")
_STATE_KEY = "fedlab-client-state"  # context.state entry holding a client's persistent state
_RESIDUAL_KEY = "fedlab-residual"  # context.state entry: a client's error-feedback residual
_CLIENT_ERROR = 2  # flwr ErrorCode.CLIENT_APP_RAISED_EXCEPTION: a bug or a config mismatch


def _require_flwr():
    """The Flower modules, or an ImportError saying how to install them."""
    try:
        import flwr.app as app
        import flwr.clientapp as clientapp
        import flwr.serverapp as serverapp
    except ImportError as error:
        raise ImportError(f"fedlab.flower needs Flower: {INSTALL_HINT}") from error
    return app, clientapp, serverapp


# -- settings ---------------------------------------------------------------------------------

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


# -- messages ---------------------------------------------------------------------------------


def _record_bytes(record) -> int:
    """Bytes of an ArrayRecord as it travels: the sum of its Arrays' serialized ``data``."""
    return int(sum(len(array.data) for array in record.values()))


def _content_bytes(content) -> int:
    return int(sum(_record_bytes(r) for r in content.array_records.values()))


def _arrays(app, weights) -> object:
    return app.ArrayRecord([np.asarray(w) for w in weights])


# -- ServerApp --------------------------------------------------------------------------------


def _send_and_receive(grid, messages: list, timeout: float, poll: float = 0.1) -> list:
    """``grid.send_and_receive`` polling every ``poll`` s (Flower 1.42's waits 3 s per poll)."""
    waiting = set(grid.push_messages(messages))
    replies = []
    deadline = time.monotonic() + timeout
    while waiting and time.monotonic() < deadline:
        got = list(grid.pull_messages(list(waiting)))
        replies += got
        waiting -= {reply.metadata.reply_to_message_id for reply in got}
        if waiting:
            time.sleep(poll)
    return replies


class _NodeMap:
    """Which SuperNode (node id) holds which partition, refreshed each round."""

    def __init__(self, num_clients: int):
        self.num_clients = num_clients
        self.node_of: dict[int, int] = {}  # partition id -> node id
        self.known: set[int] = set()  # node ids already asked

    def refresh(self, app, grid, timeout: float, first: bool) -> None:
        current = set(int(n) for n in grid.get_node_ids())
        new = sorted(current - self.known)
        if not new:
            return
        query = app.RecordDict({"config": app.ConfigRecord({"ask": "partition-id"})})
        messages = [app.Message(query, int(n), app.MessageType.QUERY) for n in new]
        claims: dict[int, list[int]] = {}
        for reply in _send_and_receive(grid, messages, timeout):
            node = int(reply.metadata.src_node_id)
            if reply.has_error():
                if reply.error.code == _CLIENT_ERROR:
                    raise RuntimeError(
                        f"SuperNode {node} could not say its partition: {reply.error.reason}"
                    )
                continue  # not reachable now: asked again next round
            self.known.add(node)
            pid = int(reply.content["partition"]["partition-id"])
            num = int(reply.content["partition"]["num-partitions"])
            if num != self.num_clients:
                raise ValueError(
                    f"SuperNode {node} has num-partitions={num} in its --node-config but the run "
                    f"has num_clients={self.num_clients}"
                )
            if not 0 <= pid < self.num_clients:
                raise ValueError(
                    f"SuperNode {node} has partition-id={pid}; it must be in "
                    f"[0, {self.num_clients - 1}]"
                )
            claims.setdefault(pid, []).append(node)
        for pid, nodes in claims.items():
            if len(nodes) > 1 or (first and pid in self.node_of):
                raise ValueError(
                    f"partition-id={pid} is claimed by several SuperNodes {sorted(nodes)}; "
                    "give each SuperNode its own partition-id"
                )
            self.node_of[pid] = nodes[0]  # a restarted node (new id) replaces its old self

    def forget(self, pid: int) -> None:
        self.node_of.pop(pid, None)


def _server_main(grid, context) -> None:
    from fedlab import steps
    from fedlab.history import History, RoundRecord
    from fedlab.metrics import client_drift, update_cosine
    from fedlab.models import num_parameters

    app, _, _ = _require_flwr()
    run_config = dict(context.run_config)
    config = FlowerConfig.from_run_config(run_config)  # validates first
    history_path = str(run_config.get("history-path", "") or "history.json")
    wait_nodes = float(run_config.get("wait-nodes-timeout", 120.0))
    try:
        dataset = config.load_data()
        x_test = np.asarray(dataset.x_test, np.float32)
        y_test = np.asarray(dataset.y_test, np.int32)
        num_classes = dataset.num_classes
        model_fn = config.make_model_fn(dataset)
        del dataset  # the server keeps only the test set, never the clients' data
        algorithm = config.make_algorithm()
        compression = config.make_compression()
        codec = None if compression is None else steps._codec_of(compression)
        model, weights = steps.initialize(model_fn, x_test, config.seed)
        server_state = algorithm.server_optimizer.init(weights)
        num_clients = config.num_clients
        per_round = config.clients_per_round or num_clients
        history = History(
            config={
                **config.history_config(),
                "algorithm_config": algorithm.config(),
                "num_parameters": num_parameters(weights),
                "num_classes": num_classes,
            }
        )
        history.save(history_path)

        deadline = time.monotonic() + wait_nodes
        while len(list(grid.get_node_ids())) < num_clients:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"only {len(list(grid.get_node_ids()))} of {num_clients} SuperNodes "
                    f"registered within {wait_nodes:g} s; start one per partition-id"
                )
            time.sleep(0.5)
        nodes = _NodeMap(num_clients)
        nodes.refresh(app, grid, config.round_timeout, first=True)
        missing = sorted(set(range(num_clients)) - set(nodes.node_of))
        if missing:
            raise RuntimeError(f"no SuperNode answered for partition-id(s) {missing}")

        for round_num in range(1, config.num_rounds + 1):
            start = time.perf_counter()
            nodes.refresh(app, grid, config.round_timeout, first=False)
            selected = steps.sample_clients(
                num_clients, per_round, round_num, config.seed, algorithm
            )
            sent_state = algorithm.broadcast_state(server_state)
            messages, bytes_down, failed = {}, 0, {}
            for k in selected.tolist():
                if k not in nodes.node_of:
                    failed[k] = (None, "no SuperNode holds this partition now")
                    continue
                content = app.RecordDict(
                    {
                        "arrays": _arrays(app, weights),
                        "config": app.ConfigRecord({"round": round_num, "client-id": k}),
                    }
                )
                if sent_state:
                    content["broadcast"] = _arrays(app, sent_state)
                bytes_down += _content_bytes(content)
                messages[k] = app.Message(
                    content, nodes.node_of[k], app.MessageType.TRAIN, group_id=str(round_num)
                )
            client_of = {nodes.node_of[k]: k for k in messages}
            replies = {}
            if messages:
                for reply in _send_and_receive(grid, list(messages.values()), config.round_timeout):
                    k = client_of.get(int(reply.metadata.src_node_id))
                    if k is not None:
                        replies[k] = reply
            ok = {}
            for k in messages:
                reply = replies.get(k)
                if reply is None:
                    failed[k] = (nodes.node_of[k], f"no reply within {config.round_timeout:g} s")
                elif reply.has_error():
                    if reply.error.code == _CLIENT_ERROR:
                        raise RuntimeError(
                            f"client {k} (SuperNode {nodes.node_of[k]}) raised in round "
                            f"{round_num}: {reply.error.reason}"
                        )
                    failed[k] = (nodes.node_of[k], str(reply.error.reason))
                else:
                    ok[k] = reply
            for k in failed:
                nodes.forget(k)
            if failed and config.on_node_failure == "fail":
                k = min(failed)
                node, reason = failed[k]
                raise RuntimeError(
                    f"round {round_num}: client partition-id={k} on SuperNode {node} failed "
                    f"({reason}); the history of rounds 1-{round_num - 1} is in {history_path}"
                )
            clients = sorted(ok)
            shapes = [tuple(np.shape(w)) for w in weights]
            deltas = [_received_update(ok[k].content, codec, shapes) for k in clients]
            metrics = [ok[k].content["metrics"] for k in clients]
            bytes_up = sum(_content_bytes(ok[k].content) for k in clients)
            counts = np.array([int(m["num-examples"]) for m in metrics])
            losses = np.array([float(m["loss"]) for m in metrics])
            drift = cosine = np.zeros(0)
            if clients:
                stacked = [np.stack(d) for d in zip(*deltas, strict=True)]
                changes = [
                    ok[k].content["state-change"].to_numpy_ndarrays()
                    for k in clients
                    if "state-change" in ok[k].content
                ]
                weights, server_state, aggregated, _ = steps.server_step(
                    algorithm,
                    weights,
                    server_state,
                    stacked,
                    counts,
                    round_num,
                    num_clients,
                    per_round,
                    config.seed,
                    changes,
                )
                # with compression, drift and cosine are of the decoded updates (all the
                # server sees); fedlab.simulate measures them before compression
                drift = client_drift(stacked).numpy()
                cosine = update_cosine(stacked, aggregated).numpy()
            test_loss, test_accuracy = steps.evaluate(model, weights, x_test, y_test)
            sent_state = algorithm.broadcast_state(server_state)
            server_norm = (
                float(
                    np.sqrt(sum(np.sum(np.square(np.asarray(b, np.float64))) for b in sent_state))
                )
                if sent_state
                else float("nan")
            )
            record = RoundRecord(
                round=round_num,
                clients=tuple(clients),
                client_loss=tuple(losses.tolist()),
                client_num_examples=tuple(int(n) for n in counts),
                train_loss=float(np.average(losses, weights=counts)) if clients else float("nan"),
                test_loss=test_loss,
                test_accuracy=test_accuracy,
                client_drift=tuple(drift.tolist()),
                drift_mean=float(drift.mean()) if clients else float("nan"),
                drift_max=float(drift.max()) if clients else float("nan"),
                update_cosine=tuple(cosine.tolist()),
                bytes_down=int(bytes_down),
                bytes_up=int(bytes_up),
                wall_time=time.perf_counter() - start,
                dropped=tuple(sorted(failed)),
                client_steps=tuple(int(m["steps"]) for m in metrics),
                client_examples=tuple(int(m["examples"]) for m in metrics),
                server_state_norm=server_norm,
            )
            history.append(record)
            history.save(history_path)  # the history so far survives a crash
            print(
                f"[fedlab] round {round_num}: clients {list(clients)} dropped "
                f"{sorted(failed)} test accuracy {test_accuracy:.4f}",
                flush=True,
            )
    except BaseException as error:
        Path(history_path + ".error").write_text(f"{type(error).__name__}: {error}\n")
        raise


# -- ClientApp --------------------------------------------------------------------------------


def _node_partition(context) -> tuple[int, int]:
    node_config = context.node_config
    for key in ("partition-id", "num-partitions"):
        if key not in node_config:
            raise ValueError(
                f"the SuperNode needs --node-config 'partition-id=P num-partitions=N' (missing {key})"
            )
    return int(node_config["partition-id"]), int(node_config["num-partitions"])


def _client_query(msg, context):
    app, _, _ = _require_flwr()
    pid, num = _node_partition(context)
    record = app.MetricRecord({"partition-id": pid, "num-partitions": num})
    return app.Message(app.RecordDict({"partition": record}), reply_to=msg)


def _compressed_reply(app, compression, delta, round_num: int, client_id: int, seed: int, residual):
    """The client's side of compression: ``delta`` encoded as :func:`fedlab.steps.compress_update`
    encodes it (same seeded stream). Returns an ArrayRecord of the encoded arrays in the dtypes
    they travel in (e.g. int32 indices and float32 values for TopK), a ConfigRecord with what
    decoding needs (the codec's settings and the update's shapes, as JSON), and the new
    error-feedback residual (empty without error feedback)."""
    import json

    from fedlab import steps

    encoded, residual = steps._encode_update(
        compression, delta, round_num, client_id, seed, residual
    )
    arrays = app.ArrayRecord({name: app.Array(a) for name, a in encoded.arrays.items()})
    about = app.ConfigRecord(
        {"codec": json.dumps(encoded.config), "shapes": json.dumps(encoded.shapes)}
    )
    return arrays, about, residual


def _decode_reply(codec, arrays, about, shapes: list[tuple[int, ...]]) -> list[np.ndarray]:
    """The server's side: the float32 update decoded from a client's ``arrays`` and ``about``
    (what :func:`_compressed_reply` made) with the run's ``codec``; checks that the client used
    the same codec and the model's ``shapes``."""
    import json

    from fedlab.compression import Encoded

    config = json.loads(about["codec"])
    got = tuple(tuple(int(d) for d in shape) for shape in json.loads(about["shapes"]))
    if config != codec.config():
        raise ValueError(
            f"a client encoded its update with {config} but the run uses {codec.config()}"
        )
    if list(got) != [tuple(s) for s in shapes]:
        raise ValueError(f"a client's update has shapes {list(got)}, the model {list(shapes)}")
    encoded = Encoded(config, got, {name: array.numpy() for name, array in arrays.items()})
    return codec.decode(encoded)


def _received_update(content, codec, shapes) -> list[np.ndarray]:
    """A client's update from its reply: the arrays as sent, or decoded with ``codec``."""
    if codec is None:
        return content["arrays"].to_numpy_ndarrays()
    if "compression" not in content:
        raise ValueError(
            f"the run compresses updates with {codec.config()} but a client sent them "
            "uncompressed: server and client disagree about the run config"
        )
    return _decode_reply(codec, content["arrays"], content["compression"], shapes)


def _client_train(msg, context):
    from fedlab import steps
    from fedlab.compression import ErrorFeedback
    from fedlab.models import build_model

    app, _, _ = _require_flwr()
    config = FlowerConfig.from_run_config(context.run_config)
    pid, num = _node_partition(context)
    if num != config.num_clients:
        raise ValueError(
            f"this SuperNode has num-partitions={num} but the run has num_clients="
            f"{config.num_clients}; restart it with --node-config 'partition-id={pid} "
            f"num-partitions={config.num_clients}'"
        )
    client_id = int(msg.content["config"]["client-id"])
    round_num = int(msg.content["config"]["round"])
    if client_id != pid:
        raise ValueError(f"message for client {client_id} reached the SuperNode of partition {pid}")
    dataset = config.load_data()
    own = config.make_split(dataset).client_indices[pid]  # this node's partition only
    x = np.asarray(dataset.x_train[own], np.float32)
    y = np.asarray(dataset.y_train[own], np.int32)
    ignore_class = getattr(dataset, "ignore_class", None)
    label_groups = getattr(dataset, "label_groups", None)
    model = build_model(config.make_model_fn(dataset), x, config.seed)
    del dataset
    weights = msg.content["arrays"].to_numpy_ndarrays()
    shapes = [tuple(v.shape) for v in model.trainable_variables]
    if [tuple(w.shape) for w in weights] != shapes:
        raise ValueError(
            f"the received weights {[tuple(w.shape) for w in weights]} do not fit model "
            f"{config.model!r} {shapes}: server and client disagree about the model"
        )
    algorithm = config.make_algorithm()
    if _STATE_KEY in context.state:
        state = context.state[_STATE_KEY].to_numpy_ndarrays()
    else:
        state = [np.asarray(a, np.float32) for a in algorithm.client_state_init(weights)]
    sent = msg.content["broadcast"].to_numpy_ndarrays() if "broadcast" in msg.content else []
    result = steps.local_update(
        model,
        weights,
        x,
        y,
        algorithm,
        round_num,
        client_id=pid,
        seed=config.seed,
        client_state=state,
        broadcast_state=sent,
        ignore_class=ignore_class,
        label_groups=label_groups,
    )
    compression = config.make_compression()
    about = None
    if compression is None:
        update = _arrays(app, result.delta)
    else:  # the encoded arrays travel; an error-feedback residual stays in this process
        has_residual = isinstance(compression, ErrorFeedback)
        if has_residual and _RESIDUAL_KEY in context.state:
            residual = context.state[_RESIDUAL_KEY].to_numpy_ndarrays()
        else:
            residual = compression.init(weights) if has_residual else []
        update, about, residual = _compressed_reply(
            app, compression, result.delta, round_num, pid, config.seed, residual
        )
        if has_residual:
            context.state[_RESIDUAL_KEY] = _arrays(app, residual)
    content = app.RecordDict(
        {
            "arrays": update,
            "metrics": app.MetricRecord(
                {
                    "num-examples": result.num_examples,
                    "loss": float(result.loss),
                    "steps": result.num_steps,
                    "examples": result.num_examples * algorithm.local_epochs,
                    "partition-id": pid,
                }
            ),
        }
    )
    if about is not None:
        content["compression"] = about
    if len(result.client_state):
        change = [new - old for new, old in zip(result.client_state, state, strict=True)]
        content["state-change"] = _arrays(app, change)  # Δc_k goes up, c_k stays here
        context.state[_STATE_KEY] = _arrays(app, result.client_state)
    return app.Message(content, reply_to=msg)


_APPS: dict[str, object] = {}


def _make_app(name: str):
    app, clientapp, serverapp = _require_flwr()
    if name == "server_app":
        server = serverapp.ServerApp()
        server.main()(_server_main)
        return server
    client = clientapp.ClientApp()
    client.train()(_client_train)
    client.query()(_client_query)
    return client


def __getattr__(name: str):
    """``server_app`` and ``client_app`` are built on first use, so that fedlab imports without Flower."""
    if name in ("server_app", "client_app"):
        if name not in _APPS:
            _APPS[name] = _make_app(name)
        return _APPS[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# -- app folder and a local federation ----------------------------------------------------------


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_app(folder: str | os.PathLike, config: FlowerConfig | None = None) -> Path:
    """Write a minimal Flower app folder for ``flwr run``; return its path.

    Its ``pyproject.toml`` points at :data:`server_app` and :data:`client_app` through a
    three-line module in the folder (``fedlab_flower_app.py``) and lists every run-config key
    with ``config``'s values as defaults (Flower refuses override keys it does not know).

    Example:
        >>> import tempfile
        >>> path = write_app(tempfile.mkdtemp())
        >>> "serverapp" in (path / "pyproject.toml").read_text()
        True
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = config or FlowerConfig()
    defaults = {
        **config.to_run_config(),
        "history-path": str(folder / "history.json"),
        "wait-nodes-timeout": 120.0,
    }
    lines = [
        "[build-system]",
        'requires = ["hatchling"]',
        'build-backend = "hatchling.build"',
        "",
        "[project]",
        'name = "fedlab-flower-app"',
        'version = "0.1.0"',
        'description = "fedlab algorithms on Flower (fedlab.flower)"',
        'license = "Apache-2.0"',
        "dependencies = []",
        "",
        "[tool.hatch.build.targets.wheel]",
        'packages = ["."]',
        "",
        "[tool.flwr.app]",
        'publisher = "fedlab"',
        "",
        "[tool.flwr.app.components]",
        'serverapp = "fedlab_flower_app:server_app"',
        'clientapp = "fedlab_flower_app:client_app"',
        "",
        "[tool.flwr.app.config]",
        *(f"{key} = {_toml_value(value)}" for key, value in defaults.items()),
        "",
    ]
    (folder / "pyproject.toml").write_text("\n".join(lines))
    (folder / "fedlab_flower_app.py").write_text(
        '"""The Flower app: fedlab.flower\'s ServerApp and ClientApp."""\n\n'
        "from fedlab import flower\n\n"
        "# plain assignments: `flwr run` checks the components statically (AST) before loading\n"
        "server_app = flower.server_app\n"
        "client_app = flower.client_app\n"
    )
    return folder


def _running(pid: int) -> bool:
    """Does ``pid`` exist and is it not a zombie (an ended process not yet reaped)?"""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _end_processes(
    processes: list[subprocess.Popen],
    seen: set[int],
    find=None,
    grace: float = 10.0,
    polite: bool = True,
) -> None:
    """End ``processes``, every descendant, every process in their process groups and whatever
    ``find()`` returns (e.g. processes re-parented away from the tree), all together: SIGTERM
    first, SIGKILL for what is left after ``grace`` seconds (``polite=False``: SIGKILL at once).
    Each process started in a session of its own, so its group is not ours; Flower's
    ``flower-superexec`` starts yet another session, hence the descendants' groups too. Every
    pid met is remembered (and still ended if its parent goes first) and added to ``seen``."""
    own = {os.getpgid(0), 0}
    groups = {p.pid for p in processes} - own
    met: set[int] = set()  # only this call's: an old pid may belong to someone else by now

    def left() -> set[int]:
        table = _proc_table()
        children: dict[int, list[int]] = {}
        for pid, (parent, _, _) in table.items():
            children.setdefault(parent, []).append(pid)
        todo = [p.pid for p in processes if p.poll() is None]
        todo += [
            *met,
            *(find() if find else ()),
            *(pid for pid in table if table[pid][1] in groups),
        ]
        found: set[int] = set()
        while todo:
            pid = todo.pop()
            if pid not in found and pid in table and table[pid][2] != "Z" and pid != os.getpid():
                found.add(pid)
                todo += children.get(pid, [])
        met.update(found)
        seen.update(found)
        groups.update(table[pid][1] for pid in found)
        groups.difference_update(own)
        return found

    for sig in (signal.SIGTERM, signal.SIGKILL) if polite else (signal.SIGKILL,):
        pids = left()
        for group in list(groups):
            try:
                os.killpg(group, sig)
            except (ProcessLookupError, PermissionError):
                pass
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace
        while left() and time.monotonic() < deadline:
            time.sleep(0.05)
        if not left():
            break
    for process in processes:
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalFederation:
    """A SuperLink and ``num_nodes`` SuperNodes on 127.0.0.1, as subprocesses, for one session.

    SuperNode ``i`` holds partition ``i`` of ``num_nodes``. Each process runs in its own process
    group and is ended, children included, by :meth:`stop` (also when the ``with`` block fails).
    Nothing listens beyond 127.0.0.1; Flower's telemetry and update checks are off.

    Each ServerApp run and each message to a ClientApp runs in a process of its own, as Flower
    does it. ``task_processes="fork"`` (default) forks those processes from
    :mod:`fedlab.flower.executor`, which imports TensorFlow once when the federation starts;
    ``"spawn"`` lets Flower start a new Python for each (``--isolation subprocess``), which
    imports TensorFlow again for every message (~8 s of CPU each on a 2-core laptop).

    Args:
        num_nodes: SuperNodes to start (the run's ``num_clients``).
        start_timeout: seconds to wait for the SuperLink to become healthy and the task
            executor to finish its imports.
        workdir: folder for logs, the app and histories (default: a new temporary folder).
        task_processes: ``"fork"`` or ``"spawn"``, see above.
        fast_polling: SuperNodes ask the SuperLink for work every 0.5 s
            (:mod:`fedlab.flower.node`) instead of Flower's fixed 3 s when idle.

    Example:
        >>> with LocalFederation(3) as federation:  # doctest: +SKIP
        ...     history = federation.run(FlowerConfig(num_clients=3, num_rounds=2))
    """

    def __init__(
        self,
        num_nodes: int,
        start_timeout: float = 60.0,
        workdir: str | os.PathLike | None = None,
        task_processes: str = "fork",
        fast_polling: bool = True,
    ):
        self.num_nodes = check_int("num_nodes", num_nodes, low=1, high=100)
        self.task_processes = check_choice("task_processes", task_processes, ("fork", "spawn"))
        if not isinstance(fast_polling, bool):
            raise TypeError(f"fast_polling must be True or False, got {fast_polling!r}")
        self.fast_polling = fast_polling
        self.start_timeout = check_float(
            "start_timeout", start_timeout, low=0.0, low_inclusive=False
        )
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="fedlab-flower-"))
        self.bin = Path(sys.executable).parent
        self.processes: dict[str, subprocess.Popen] = {}
        self._logs: dict[str, object] = {}
        self.link_port = 0
        self.node_ports: dict[int, int] = {}
        self._executor_of: dict[int, int] = {}  # partition -> pid serving its tasks (fork)
        self._runs = 0
        self._seen: set[int] = set()  # descendants found when processes were ended
        self.history_path: Path | None = None  # the last run's History JSON (kept on failure)
        self._watchdog: subprocess.Popen | None = None

    # -- processes
    def _env(self) -> dict[str, str]:
        return dict(
            os.environ,
            FLWR_HOME=str(self.workdir / "flwr_home"),
            FLWR_TELEMETRY_ENABLED="0",
            FLWR_DISABLE_UPDATE_CHECK="1",
            TF_CPP_MIN_LOG_LEVEL="3",
            TF_ENABLE_ONEDNN_OPTS="0",
            PYTHONHASHSEED="0",
            CUDA_VISIBLE_DEVICES=os.environ.get("CUDA_VISIBLE_DEVICES", ""),
            PYTHONUNBUFFERED="1",
            TF_NUM_INTRAOP_THREADS="1",
            TF_NUM_INTEROP_THREADS="1",
            PATH=f"{self.bin}{os.pathsep}{os.environ.get('PATH', '')}",
        )

    def _tool(self, name: str) -> str:
        path = self.bin / name
        if not path.exists():
            found = shutil.which(name)
            if found is None:
                raise FileNotFoundError(f"{name} not found: {INSTALL_HINT}")
            return found
        return str(path)

    def _start(self, name: str, command: list[str]) -> subprocess.Popen:
        old = self._logs.pop(name, None)
        if old is not None:
            old.close()
        log = open(self.workdir / f"{name}.log", "a")  # noqa: SIM115 - closed in _end()
        self._logs[name] = log
        process = subprocess.Popen(
            command,
            env=self._env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # own process group: its children end with it
            cwd=self.workdir,
        )
        self.processes[name] = process
        self._watch("add", process.pid)
        return process

    def _watch(self, command: str, argument: object) -> None:
        """Tell the watchdog (:mod:`fedlab.flower.watchdog`) what to end if this process dies."""
        watchdog = self._watchdog
        if watchdog is None or watchdog.poll() is not None:
            return
        try:
            watchdog.stdin.write(f"{command} {argument}\n")
            watchdog.stdin.flush()
        except (BrokenPipeError, ValueError):
            pass

    def _start_watchdog(self) -> None:
        """A process that ends this federation's processes (and removes its temporary folder)
        if the Python process that owns it dies without stopping it: a killed kernel."""
        self._watchdog = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("watchdog.py"))],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            text=True,
            start_new_session=True,  # not ended with the owner's process group
        )
        if self._own_workdir:
            self._watch("folder", self.workdir)

    def _stop_watchdog(self) -> None:
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is None:
            return
        try:
            watchdog.stdin.write("stop\n")
            watchdog.stdin.close()
        except (BrokenPipeError, ValueError):
            pass
        try:
            watchdog.wait(timeout=10)
        except subprocess.TimeoutExpired:
            watchdog.kill()
            watchdog.wait()

    def _end(self, *names: str, grace: float = 10.0, polite: bool = True) -> None:
        """End processes ``names`` together, with their process groups and every descendant
        (:func:`_end_processes`); close their logs."""
        processes = [self.processes[n] for n in names if n in self.processes]
        _end_processes(processes, self._seen, grace=grace, polite=polite)
        for name in names:
            log = self._logs.pop(name, None)
            if log is not None:
                log.close()

    def _wait_healthy(self, port: int) -> None:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.processes["superlink"].poll() is not None:
                raise RuntimeError(f"flower-superlink exited: see {self.workdir / 'superlink.log'}")
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=0.5)
                return
            except OSError:
                time.sleep(0.1)
        raise TimeoutError(f"the SuperLink was not healthy within {self.start_timeout:g} s")

    def start(self) -> LocalFederation:
        """Start the SuperLink and every SuperNode; return self. They are stopped by
        :meth:`stop`, at the end of a ``with`` block, or when this Python process exits."""
        atexit.register(self.stop)
        try:
            self._start_watchdog()
            self.link_port = _free_port()
            ports = {i: _free_port() for i in range(self.num_nodes)}
            if self.task_processes == "fork":  # its imports overlap the SuperLink's start
                executor = self._launch_executor("executor", [self.link_port, *ports.values()])
            self._start(
                "superlink",
                [
                    self._tool("flower-superlink"),
                    "--insecure",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.link_port),
                    "--isolation",
                    self._isolation,
                    "--disable-runtime-dependency-installation",
                ],
            )
            self._wait_healthy(self.link_port)
            home = self.workdir / "flwr_home"
            home.mkdir(exist_ok=True)
            (home / "config.toml").write_text(
                '[superlink]\ndefault = "local"\n\n[superlink.local]\n'
                f'address = "127.0.0.1:{self.link_port}"\ninsecure = true\n'
            )
            for i in range(self.num_nodes):
                self.start_node(i, executor=False, port=ports[i])
            if self.task_processes == "fork":
                self._await_executor("executor", executor)
        except BaseException:
            self.stop()
            raise
        return self

    @property
    def _isolation(self) -> str:
        return "process" if self.task_processes == "fork" else "subprocess"

    def _launch_executor(self, name: str, ports: list[int]) -> subprocess.Popen:
        """Start fedlab.flower.executor for the Runtime APIs on ``ports``."""
        command = [sys.executable, "-m", "fedlab.flower.executor", "--insecure"]
        for port in ports:
            command += ["--runtime-api-address", f"127.0.0.1:{port}"]
        return self._start(name, command)

    def _await_executor(self, name: str, process: subprocess.Popen) -> None:
        """Wait until executor ``name`` has imported fedlab; note which pid serves which node."""
        log_path = self.workdir / f"{name}.log"
        deadline = time.monotonic() + max(self.start_timeout, 120.0)
        while True:
            text = log_path.read_text() if log_path.exists() else ""
            if "fedlab.flower.executor: ready" in text:
                break
            if process.poll() is not None:
                raise RuntimeError(f"fedlab.flower.executor exited: see {log_path}\n{text[-2000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"fedlab.flower.executor was not ready in time: see {log_path}")
            time.sleep(0.1)
        by_address = dict(re.findall(r"serving 127\.0\.0\.1:(\d+) as pid (\d+)", text))
        for i, port in self.node_ports.items():
            if str(port) in by_address:
                self._executor_of[i] = int(by_address[str(port)])
            elif name == f"executor{i}":
                self._executor_of[i] = process.pid

    def start_node(self, i: int, executor: bool = True, port: int | None = None) -> None:
        """Start (or restart) the SuperNode of partition ``i``; a restart gets a new node id
        (and, with ``task_processes="fork"``, its own task executor unless ``executor=False``)."""
        i = check_int("i", i, low=0, high=self.num_nodes - 1)
        name = f"supernode{i}"
        if name in self.processes and self.processes[name].poll() is None:
            raise RuntimeError(f"SuperNode {i} is already running")
        port = port or _free_port()
        self.node_ports[i] = port
        command = [sys.executable, str(Path(__file__).with_name("node.py"))]
        self._start(
            name,
            [
                *(command if self.fast_polling else [self._tool("flower-supernode")]),
                "--insecure",
                "--superlink",
                f"127.0.0.1:{self.link_port}",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--isolation",
                self._isolation,
                "--node-config",
                f"partition-id={i} num-partitions={self.num_nodes}",
            ],
        )
        if executor and self.task_processes == "fork":
            name = f"executor{i}"
            self._await_executor(name, self._launch_executor(name, [port]))

    def kill_node(self, i: int) -> None:
        """Kill SuperNode ``i`` at once (SIGKILL), as a crash would."""
        i = check_int("i", i, low=0, high=self.num_nodes - 1)
        process = self.processes[f"supernode{i}"]
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait()
        serving = self._executor_of.pop(i, None)
        if serving is not None:  # its task executor goes with it, tasks in flight included
            for pid in [serving, *_descendants(serving)]:
                self._seen.add(pid)
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def describe(self) -> list[tuple[str, int, str]]:
        """``(name, pid, what it is)`` for each process this federation started and still runs.

        Example:
            >>> with LocalFederation(2) as federation:  # doctest: +SKIP
            ...     for name, pid, what in federation.describe():
            ...         print(name, what)
        """
        roles = {"superlink": f"SuperLink on 127.0.0.1:{self.link_port} (the server side)"}
        for i, port in self.node_ports.items():
            roles[f"supernode{i}"] = f"SuperNode of partition {i} (runtime API 127.0.0.1:{port})"
            roles[f"executor{i}"] = f"forks the task processes of SuperNode {i}"
        roles["executor"] = "fedlab.flower.executor: forks every ServerApp/ClientApp task process"
        return [
            (name, process.pid, roles.get(name, "flwr run: submits the run to the SuperLink"))
            for name, process in self.processes.items()
            if process.poll() is None
        ]

    def messages_received(self) -> dict[int, dict[str, int]]:
        """Messages each SuperNode received so far, by type (from its log), e.g.
        ``{0: {"query": 1, "train": 3}, ...}``."""
        counts: dict[int, dict[str, int]] = {}
        for i in sorted(self.node_ports):
            path = self.workdir / f"supernode{i}.log"
            text = path.read_text() if path.exists() else ""
            found = re.findall(r"Receiving: (\w+) message", text)
            counts[i] = {kind: found.count(kind) for kind in sorted(set(found))}
        return counts

    def running(self) -> list[int]:
        """Ids of this federation's processes (and their descendants) still running."""
        return [pid for pid in self.pids() if _running(pid)]

    def pids(self) -> list[int]:
        """Ids of every process this federation started, and of their descendants seen so far
        (``flwr-serverapp``, ``flwr-clientapp``, ``flower-superexec``)."""
        found = set(self._seen) | {p.pid for p in self.processes.values()}
        for process in self.processes.values():
            if process.poll() is None:
                found.update(_descendants(process.pid))
        return sorted(found)

    def stop(self) -> None:
        """End every process group (SIGTERM, then SIGKILL) and wait for them; remove the
        temporary folder the federation made (not a ``workdir`` you gave)."""
        executors = [name for name in self.processes if name.startswith("executor")]
        self._end(*executors, polite=False)  # no state to save: a task in flight is lost anyway
        self._end(*(name for name in self.processes if name not in executors + ["superlink"]))
        self._end("superlink")
        self._stop_watchdog()
        if self._own_workdir:  # its logs and histories: a temporary folder of this federation
            shutil.rmtree(self.workdir, ignore_errors=True)
        atexit.unregister(self.stop)

    def __enter__(self) -> LocalFederation:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- runs
    def run(self, config: FlowerConfig, timeout: float = 900.0, on_round=None):
        """Run ``config`` with ``flwr run`` and return its :class:`~fedlab.history.History`.

        ``on_round(history_so_far)`` is called each time the ServerApp saves a new round (e.g.
        to kill a node). Raises ``RuntimeError`` with the ServerApp's error if the run failed.
        """
        from fedlab.history import History

        if not isinstance(config, FlowerConfig):
            raise TypeError(f"config must be a FlowerConfig, got {type(config).__name__}")
        if config.num_clients != self.num_nodes:
            raise ValueError(
                f"config.num_clients={config.num_clients} must equal the federation's "
                f"num_nodes={self.num_nodes}"
            )
        timeout = check_float("timeout", timeout, low=0.0, low_inclusive=False)
        self._runs += 1
        run_dir = self.workdir / f"run{self._runs}"
        app_dir = write_app(run_dir / "app", config)
        history_path = run_dir / "history.json"
        self.history_path = history_path
        overrides = {**config.to_run_config(), "history-path": str(history_path)}
        run_config = " ".join(f"{k}={_toml_value(v)}" for k, v in overrides.items())
        name = f"flwr-run{self._runs}"
        process = self._start(
            name,
            [
                self._tool("flwr"),
                "run",
                str(app_dir),
                "local",
                "--stream",
                "--run-config",
                run_config,
            ],
        )
        deadline = time.monotonic() + timeout
        seen = 0
        error_file = Path(str(history_path) + ".error")
        try:
            while True:
                if history_path.exists() and on_round is not None:
                    try:
                        history = History.load(history_path)
                    except ValueError:  # being written
                        history = None
                    if history is not None and len(history) > seen:
                        seen = len(history)
                        on_round(history)
                if error_file.exists():
                    raise RuntimeError(f"the Flower run failed: {error_file.read_text().strip()}")
                if history_path.exists():
                    try:
                        history = History.load(history_path)
                    except ValueError:
                        history = None
                    if history is not None and len(history) == config.num_rounds:
                        if on_round is not None and len(history) > seen:
                            on_round(history)
                        return history
                if process.poll() is not None and not history_path.exists():
                    raise RuntimeError(
                        f"flwr run exited ({process.returncode}) before the ServerApp wrote a "
                        f"history: see {self.workdir / (name + '.log')}"
                    )
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the Flower run did not finish within {timeout:g} s")
                time.sleep(0.2)
        finally:
            try:  # `flwr run --stream` ends once the run has finished
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
            self._end(name)

    def log(self, name: str = "superlink") -> str:
        """The text of one process's log (``superlink``, ``supernode0``, ``flwr-run1``...)."""
        return (self.workdir / f"{name}.log").read_text()
