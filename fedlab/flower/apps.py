"""fedlab's rounds as Flower apps: the ServerApp and the ClientApp
(``14_from_simulation_to_deployment``).

:data:`server_app` is fedlab's server loop as a Flower ``ServerApp`` (Message API): each round
it samples clients (:func:`fedlab.steps.sample_clients`), sends each the global weights, waits
for their replies, then aggregates, updates the model and records the round with the stages
every fedlab runner shares (:mod:`fedlab.rounds`), evaluates, and saves the :class:`~fedlab.history.History` so far. :data:`client_app` is the
``ClientApp`` each SuperNode runs: it loads only its own partition (``--node-config
"partition-id=P num-partitions=N"``), trains with :func:`fedlab.steps.local_update` and sends
back its update, compressed if the run says so; what a client keeps between rounds (SCAFFOLD's
control variate, an error-feedback residual) stays in its Flower context. Both read the run's
:class:`~fedlab.flower.config.FlowerConfig` from Flower's run config.

:func:`write_app` writes the app folder ``flwr run`` needs, pointing at these apps
(``fedlab.flower:server_app``). The apps are made on first use, so this module imports without
Flower; using them needs ``pip install 'fedlab-edu[flower]'`` (``flwr>=1.42,<1.43``).

Example:
    >>> import tempfile
    >>> (write_app(tempfile.mkdtemp()) / "fedlab_flower_app.py").is_file()
    True
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from fedlab.flower.config import FlowerConfig

INSTALL_HINT = "pip install 'fedlab-edu[flower]'"
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
    import dataclasses

    from fedlab import rounds, steps
    from fedlab.aggregators import ClientUpdates
    from fedlab.history import History
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
        rounds.check_composition(algorithm, clients_per_round=per_round, compression=compression)
        aggregator = rounds.compose(algorithm)
        aggregator_state = aggregator.init(weights)
        limit = rounds.loss_limit(int(np.shape(model(x_test[:1]))[-1]))
        attackers = config.make_attackers()  # the attackers are clients: the server only records
        malicious = attackers.malicious(config.num_clients, config.seed) if attackers else []
        attack_sets = attackers.attack.evaluation_sets(x_test, y_test) if attackers else {}
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
            plan = rounds.plan_round(algorithm, num_clients, per_round, round_num, config.seed)
            sent_state = algorithm.broadcast_state(server_state)
            messages, bytes_down, failed = {}, 0, {}
            for k in plan.clients.tolist():
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
            rounds.check_losses(clients, losses, round_num, limit)
            stacked = rounds.stack(deltas, shapes)
            received = ClientUpdates(
                stacked,
                counts,
                clients,
                [max(int(m["steps"]), 1) for m in metrics],
                round_num,
                per_round,
                config.seed,
                weights,
            )
            changes = [
                ok[k].content["state-change"].to_numpy_ndarrays()
                for k in clients
                if "state-change" in ok[k].content
            ]
            result = None
            if clients or aggregator.acts_without_clients:
                result = rounds.aggregate(aggregator, aggregator_state, received)
                aggregator_state = result.state
            done = rounds.server_update(
                algorithm,
                weights,
                server_state,
                result,
                changes,
                len(clients) / num_clients,
                round_num,
                clients,
            )
            weights, server_state = done.weights, done.server_state
            # with compression, drift and cosine are of the decoded updates (all the server
            # sees); fedlab.simulate measures them before compression
            drift = client_drift(stacked).numpy() if clients else np.zeros(0)
            cosine = update_cosine(stacked, done.update).numpy() if clients else np.zeros(0)
            test_loss, test_accuracy = steps.evaluate(model, weights, x_test, y_test)
            measured = {  # e.g. the backdoor's success rate on triggered test images
                name: steps.evaluate(model, weights, x, y)[1]
                for name, (x, y) in attack_sets.items()
            }
            sent_state = algorithm.broadcast_state(server_state)
            server_norm = (
                float(
                    np.sqrt(sum(np.sum(np.square(np.asarray(b, np.float64))) for b in sent_state))
                )
                if sent_state
                else float("nan")
            )
            replied = dataclasses.replace(
                plan, clients=np.array(clients, np.int64), dropped=np.array(sorted(failed))
            )
            record = rounds.record(
                replied,
                losses,
                counts,
                started=start,
                drift=drift,
                cosine=cosine,
                client_steps=[int(m["steps"]) for m in metrics],
                client_examples=[int(m["examples"]) for m in metrics],
                test_loss=test_loss,
                test_accuracy=test_accuracy,
                bytes_down=int(bytes_down),
                bytes_up=int(bytes_up),
                server_state_norm=server_norm,
                malicious=tuple(int(k) for k in clients if k in malicious),
                **measured,
                **done.metrics,
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
    from fedlab import poisoning, steps
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
    attackers = config.make_attackers()
    malicious = attackers.malicious(config.num_clients, config.seed) if attackers else []
    if pid in malicious:  # this client attacks: it poisons its own data (if its attack does)
        stream = poisoning.attack_stream(config.seed, poisoning.DATA, pid)
        x, y = attackers.attack.poison_data(x, y, dataset.num_classes, stream)
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
    delta = result.delta
    if pid in malicious:  # ... and sends what it chooses instead of its honest update
        rows = [d[None] for d in delta]
        tampered = poisoning.tamper_round(
            attackers.attack, rows, [pid], malicious, round_num, config.seed
        )
        delta = [d[0] for d in tampered]
    compression = config.make_compression()
    about = None
    if compression is None:
        update = _arrays(app, delta)
    else:  # the encoded arrays travel; an error-feedback residual stays in this process
        has_residual = isinstance(compression, ErrorFeedback)
        if has_residual and _RESIDUAL_KEY in context.state:
            residual = context.state[_RESIDUAL_KEY].to_numpy_ndarrays()
        else:
            residual = compression.init(weights) if has_residual else []
        update, about, residual = _compressed_reply(
            app, compression, delta, round_num, pid, config.seed, residual
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


# -- the app folder for flwr run --------------------------------------------------------------


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
