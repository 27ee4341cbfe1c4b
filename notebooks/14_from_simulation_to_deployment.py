# %% [markdown]
# # 14 · From simulation to deployment
#
# *Purpose: run the algorithm of the previous notebooks with every client a real process that
# holds only its own data and talks to a server through messages — with
# [Flower](https://flower.ai) — and see what stays the same and what a deployment adds.*
#
# **Goals**
# - Name what a deployment adds to a simulation: processes, messages, serialisation, clients
#   that are slow or gone, and security.
# - Start a Flower **SuperLink** (the server side) and three **SuperNodes** (one per client) as
#   processes on this machine (`fedlab.flower.LocalFederation`), and run FedAvg on them.
# - Check that the deployment's History equals fedlab's in-process engine's, round by round, and
#   compare their speed — and that of Flower's simulation runtime.
# - Count the messages and bytes that actually travelled.
# - Know the commands that turn a classroom into a federation (one SuperNode per laptop), and
#   how to make that safe (TLS, node authentication).
#
# **You will need:** [01 · One round by hand](01_one_round_by_hand.ipynb) (the round and `simulate`) and
# Flower (`pip install "fedlab-edu[flower]"`, part of the test extras); about 50 s to run, most
# of it starting processes; CPU is fine. Nothing listens beyond 127.0.0.1.

# %% [markdown]
# ## Setup
#
# `import fedlab` comes **first**: it quietens TensorFlow's start-up log lines before TensorFlow
# loads. `fedlab.flower` holds the Flower side: the settings of a run (`FlowerConfig`), the
# ServerApp and ClientApp, and `LocalFederation`.

# %%
import sys

FEDLAB = "fedlab-edu @ git+https://github.com/fedlab-edu/fedlab"  # what Colab installs
if "google.colab" in sys.modules:  # elsewhere `python3 dev.py lab` has installed fedlab already
    import subprocess

    subprocess.run([sys.executable, "-m", "pip", "install", "-q", FEDLAB], check=True)

# %%
import fedlab  # first: it quietens TensorFlow's start-up log lines
from fedlab.flower import FlowerConfig, LocalFederation, write_app
from fedlab.plot import plot_accuracy

import tempfile
import time
from pathlib import Path

import flwr
import numpy as np

versions = {**fedlab.versions(), "flwr": flwr.__version__}
print(", ".join(f"{name} {version}" for name, version in versions.items()))

# %% [markdown]
# One run, described once. `FlowerConfig` holds what `fedlab.simulate` would take, as plain
# numbers and strings — the form Flower passes to every process of a run. Three clients, each
# with a third of the digits, three rounds of FedAvg (the default algorithm).

# %%
NUM_NODES = 3  # one SuperNode (one client, one partition) each
NUM_ROUNDS = 3
BATCH_SIZE = 40  # 12 local steps a round per client: keeps a deployed round short
CONFIG = FlowerConfig(num_clients=NUM_NODES, num_rounds=NUM_ROUNDS, batch_size=BATCH_SIZE, seed=0)
CONFIG

# %% [markdown]
# ## 1 · The run in one process
#
# First the way of every notebook so far: fedlab's engine trains all clients at once inside this
# Python process. A client is a slice of an array; "sending" the model is passing a tensor.

# %%
start = time.perf_counter()
reference = CONFIG.simulate()
engine_seconds = time.perf_counter() - start
print(f"engine: {NUM_ROUNDS} rounds in {engine_seconds:.2f} s")

# %% [markdown]
# ## 2 · What a deployment adds
#
# In a deployment every client is a program on its own machine, and that changes five things:
#
# | | simulation (fedlab's engine) | deployment (Flower) |
# |---|---|---|
# | **processes** | one Python process | a server process, one process per client, each task in a fresh process |
# | **data** | every client's slice in one array | each client loads only its own partition; the server never sees it |
# | **messages** | a tensor passed in memory | the model is serialised, sent, pulled by the client, the update sent back |
# | **time** | a round = one compiled function | network, start-up and polling delays; slow clients are real, not simulated |
# | **security** | nothing to attack | who may join? who can read the updates? (TLS, authentication, §6) |
#
# Flower's names for the pieces: the **SuperLink** is the long-running server side; a
# **SuperNode** runs on each client machine and holds its data (here: its `partition-id`); a
# **ServerApp** is one run's server logic and a **ClientApp** answers one message. fedlab
# provides both apps: the ServerApp uses fedlab's client sampling, aggregation and server update
# (`fedlab.steps`, the functions of notebook 01), the ClientApp fedlab's local update
# (`steps.local_update`).

# %% [markdown]
# A Flower app is a folder that `flwr run` packs and sends to the SuperLink. fedlab writes it
# for you; its module only points at fedlab's two apps:

# %%
app = write_app(Path(tempfile.mkdtemp()) / "app", CONFIG)
print((app / "fedlab_flower_app.py").read_text())

# %% [markdown]
# ## 3 · Start a federation on this machine
#
# `LocalFederation` starts the SuperLink and one SuperNode per partition, each a separate process
# listening on 127.0.0.1 only. Flower runs every ServerApp run and every ClientApp message in a
# process of its own; starting a fresh Python for each would import TensorFlow every time (about
# 8 s on two cores), so fedlab's executor imports it once and *forks* those task processes.
# Starting takes a few seconds — mostly that one import.

# %%
start = time.perf_counter()
federation = LocalFederation(NUM_NODES).start()
print(f"started in {time.perf_counter() - start:.1f} s")
for name, pid, what in federation.describe():
    print(f"{name:10}  pid {pid:>7}  {what}")


# %% [markdown]
# Now the run. `federation.run` hands the app to the SuperLink (`flwr run`), which starts the
# ServerApp; it waits for the three SuperNodes, asks each which partition it holds, and then
# drives the rounds. We print each round as the server saves it.

# %%
def show(history):
    print(f"round {len(history)}: test accuracy {history.test_accuracy[-1]:.3f}")


start = time.perf_counter()
history = federation.run(CONFIG, on_round=show)
flower_seconds = time.perf_counter() - start

# %% [markdown]
# ## 4 · The same numbers
#
# Same seed, same client selection, same initial weights, same batches: the deployment's
# History should equal the engine's up to float rounding. This is the test that keeps a course
# honest — the algorithm you studied in simulation *is* the one that ran on the processes.

# %% tags=["nbval-check-output"]
same_clients = [r.clients for r in history.rounds] == [r.clients for r in reference.rounds]
gap = np.max(np.abs(np.array(history.test_loss) - np.array(reference.test_loss)))
print("same clients every round:", same_clients)
print("largest test-loss difference below 1e-5:", bool(gap < 1e-5))
print(
    "final test accuracy, Flower and engine:",
    round(history.test_accuracy[-1], 3),
    round(reference.test_accuracy[-1], 3),
)

# %%
drawn = plot_accuracy(reference, label="fedlab engine, one process")
drawn = plot_accuracy(history, ax=drawn.axes[0], label="Flower, a process per client")
drawn.axes[0].lines[1].set_linestyle("--")  # dashed on top: the two curves coincide

# %% [markdown]
# ## 5 · Messages, bytes and time
#
# Every SuperNode got one *query* (the server asking for its partition id) and one *train*
# message per round. Flower **pulls**: a SuperNode asks the SuperLink for work; nothing is
# pushed into a client machine.

# %% tags=["nbval-check-output"]
for node, counts in federation.messages_received().items():
    print(f"SuperNode {node}: {counts}")

# %% [markdown]
# The History's bytes are measured from the arrays Flower actually sent. The engine counts the
# float32 weights; a message adds a small header per array (its dtype and shape).

# %% tags=["nbval-check-output"]
sent, counted = history.rounds[0], reference.rounds[0]
print(f"round 1 down: measured {sent.bytes_down:,} B, engine counted {counted.bytes_down:,} B")
print(f"round 1 up:   measured {sent.bytes_up:,} B, engine counted {counted.bytes_up:,} B")
print(f"headers down: {sent.bytes_down - counted.bytes_down} B for 3 clients x 4 arrays")

# %% [markdown]
# And time. The engine's round is one compiled function; a deployed round is messages
# serialised, pulled, a process forked per message, a model built and trained, the reply sent
# and pulled back — on two cores shared by all processes.

# %%
engine_round = float(np.median(reference.wall_time))  # the median round: not the compiling one
flower_round = float(np.median(history.wall_time))
print(f"engine: {engine_round * 1000:.0f} ms a round ({engine_seconds:.1f} s with compiling)")
print(
    f"Flower: {flower_round:.1f} s a round ({flower_round / engine_round:.0f}x), "
    f"{flower_seconds:.0f} s for the whole run with its start"
)

# %% [markdown]
# That ratio is why the course simulates: sweeping a slider through twenty settings is
# seconds in the engine and many minutes deployed. On real machines the round time is set by
# the **slowest** client the server waits for — a straggler you did not have to simulate.
# `FlowerConfig(round_timeout=...)` bounds the wait; a client that misses it, or whose SuperNode
# dies, is recorded in the round's `dropped` and the round goes on with the others
# (`on_node_failure="continue"`, the default), or the run stops naming the client
# (`"fail"`). A restarted SuperNode rejoins with its partition id.

# %% [markdown]
# Flower has a second way to run an app on one machine, its **simulation runtime**: the ServerApp
# and the ClientApps run inside one [Ray](https://www.ray.io) session, whose worker processes each
# import TensorFlow once and then serve many virtual clients. The apps are the same, and so is the
# History (`tests/test_flower_simulation.py` checks it against the engine):
#
# ```python
# from fedlab.flower_simulation import run_simulation_runtime  # pip install "fedlab-edu[flower-simulation]"
#
# history = run_simulation_runtime(CONFIG)  # every process it starts ends with it
# ```
#
# We do not run it here: starting Ray and its workers takes most of a minute on two cores. What
# `python3 dev.py bench flower` measured (5 rounds of this run on a quiet 2-core laptop):
#
# | | a round | the whole run |
# |---|---|---|
# | fedlab's engine | ≈ 25 ms | ≈ 1.6 s, compiling included |
# | Flower simulation runtime (Ray) | ≈ 1.3 s | ≈ 60 s, Ray's start included |
# | Flower deployment, forked task processes (above) | ≈ 4 s | ≈ 27 s, + 13 s to start the processes |
# | Flower deployment, a fresh Python per message (Flower's default) | ≈ 24 s | ≈ 160 s |

# %% [markdown]
# Done: stop every process. (`with LocalFederation(3) as federation:` does this for you; so does
# leaving Python.)

# %% tags=["nbval-check-output"]
federation.stop()
print("processes still running:", len(federation.running()))

# %% [markdown]
# ## 6 · A classroom federation, and making it safe
#
# `LocalFederation` used **insecure mode** on 127.0.0.1: messages are not encrypted and any
# process that reaches the port may join as a client. Across a network that means anyone on
# the Wi-Fi can read every update (notebook 10 showed what updates leak) or join and send
# poisoned ones. Two of Flower's options close that: **TLS** (the SuperLink proves who it is
# and the traffic is encrypted) and **node authentication** (only registered SuperNodes may
# join). Neither hides an update from the server itself — that is what secure aggregation
# (notebook 12) and differential privacy (notebook 11) are for.
#
# The teacher's machine runs the server; every student's laptop is one client:
#
# ```bash
# # teacher: the SuperLink, reachable on the classroom network, with TLS
# flower-superlink --host 0.0.0.0 --port 8000 --isolation subprocess \
#     --ssl-ca-certfile ca.crt --ssl-certfile server.pem --ssl-keyfile server.key
# python -c "from fedlab.flower import FlowerConfig, write_app; \
# write_app('fedlab-app', FlowerConfig(num_clients=20, num_rounds=10))"
#
# # student k = 0 ... 19 (fedlab-edu[flower] installed, the teacher's ca.crt copied over)
# flower-supernode --superlink TEACHER_IP:8000 --root-certificates ca.crt \
#     --isolation subprocess --node-config "partition-id=k num-partitions=20"
#
# # teacher, once everyone is connected (the SuperLink is named in ~/.flwr/config.toml)
# flwr run fedlab-app classroom --stream
# ```
#
# For node authentication, start the SuperLink with `--enable-supernode-auth` and register each
# student's public key with `flwr supernode register`; the README has the full recipe.
# `fedlab-app/history.json` is a fedlab History after every round: load it with
# `fedlab.History.load` and every plot of the course works on it.

# %% [markdown]
# ## Summary
#
# - A deployment runs the same algorithm with every client a process that holds only its own
#   data; Flower provides the processes and messages (SuperLink, SuperNodes, ServerApp,
#   ClientApp), fedlab the algorithm (`fedlab.flower`).
# - With the same seed the deployed History equals the engine's round by round — the
#   simulation taught the real thing.
# - A deployed round costs seconds, not milliseconds: serialisation, pulling, process start-up
#   and the slowest client. Flower's own simulation runtime (Ray) sits in between. That is why we
#   simulate to explore, and deploy to demonstrate.
# - Messages carry a few bytes of header per array on top of the weights the engine counts.
# - Insecure mode is for one machine only; across a network use TLS and node authentication,
#   and remember that neither hides updates from the server.
#
# ## Exercises
#
# *Functions, classes and arguments that no cell above uses are named in full (`fedlab.…`):
# `help()` on one (or on its class) shows its documentation, and on the course website the name
# links to its entry in the API reference.*
#
# 1. Run SCAFFOLD on the federation (`fedlab.flower.FlowerConfig(algorithm="scaffold",
#    clients_per_round=2)`). Its control variate c_k must stay on the client between rounds: where
#    does it live in a deployment? (Look at `_client_train` in `fedlab/flower.py`: `context.state`.)
#    Check the History still equals `CONFIG.simulate()`.
# 2. Crash a client: pass `on_round=lambda h: federation.kill_node(2) if len(h) == 1 else None` to
#    `federation.run` with five rounds (see `fedlab.flower.LocalFederation.kill_node`). Which rounds
#    list client 2 in `dropped` (`fedlab.history.RoundRecord.dropped`), and how long does the server
#    wait before it notices? Restart it with `federation.start_node(2)` (see
#    `fedlab.flower.LocalFederation.start_node`).
# 3. Compress the uploads: `fedlab.flower.FlowerConfig(compression="topk",
#    compression_fraction=0.05, error_feedback=True)`. How many bytes go up now, and does the
#    History still equal `simulate`'s? Each client's error-feedback residual must survive between
#    rounds: where does it live?
# 4. Compare `fedlab.flower.LocalFederation(3, task_processes="spawn", fast_polling=False)` —
#    Flower's own process model, a fresh Python per message — with the forked task processes used
#    above (`python3 dev.py bench flower` times both). Where does the time go?
# 5. With four classmates, run the classroom recipe on your own network (insecure mode is fine
#    for one try on a network you trust; then add TLS).
