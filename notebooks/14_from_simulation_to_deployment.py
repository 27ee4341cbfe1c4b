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
# The federation keeps running: the exercises use it, and the notebook's last cell stops every
# process. (`with LocalFederation(3) as federation:` stops them at the end of the block; so does
# leaving Python.)

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
# 1. **SCAFFOLD on the federation.** Run SCAFFOLD on it (`fedlab.flower.FlowerConfig(
#    algorithm="scaffold", clients_per_round=2)`, two rounds). Its control variate c_k must stay
#    on the client between rounds: where does it live in a deployment? (Look at `_client_train`
#    in `fedlab/flower/apps.py`.) Check the History still equals `simulate`'s.
# 2. **Compress the uploads:** `fedlab.flower.FlowerConfig(compression="topk",
#    compression_fraction=0.05, error_feedback=True)`. How many bytes go up now, and does the
#    History still equal `simulate`'s? Each client's error-feedback residual must survive between
#    rounds: where does it live?
# 3. **Crash a client:** pass `on_round=lambda h: federation.kill_node(2) if len(h) == 1 else None`
#    to `federation.run` (see `fedlab.flower.LocalFederation.kill_node`), with a
#    `round_timeout` of 10 s. Which rounds list client 2 in `dropped`
#    (`fedlab.history.RoundRecord.dropped`), and how long does the server wait before it
#    notices? What would `federation.start_node(2)` (see
#    `fedlab.flower.LocalFederation.start_node`) bring back, and what not?
# 4. **A fresh Python per message.** `fedlab.flower.LocalFederation(3, task_processes="spawn",
#    fast_polling=False)` is Flower's own process model, a fresh Python per message, against the
#    forked task processes used above (`python3 dev.py bench flower` times both). Time what each
#    pays to start a task process. Where does the time go?
# 5. **A classroom federation.** Write the command each student runs in section 6's recipe, and
#    say what TLS and node authentication protect — and what not. Then, with four classmates,
#    run the recipe on your own network (insecure mode is fine for one try on a network you
#    trust; then add TLS).
#
# Each exercise below has a cell for your answer, in code, and a **check** cell after it. Run the
# check: it prints ✓ and what it verified, or ✗ and the mistake it recognised, with a hint. The
# parts that ask you to explain have a cell for your answer in words. Exercises 1–3 run on the
# `federation` started in section 3 (a run of two rounds takes about ten seconds); `CONFIG`
# with a few settings changed is `dataclasses.replace(CONFIG, ...)`.

# %%
from fedlab import exercises

import dataclasses

# %% [markdown]
# ### Exercise 1 · SCAFFOLD on the federation
#
# **(a)** Run `CONFIG` with `algorithm="scaffold"`, `clients_per_round=2` and `num_rounds=2` on
# the federation, as `scaffold_run`, and the same config in this process, as
# `scaffold_reference` (its `.simulate()`). Print the clients of each round.

# %%
scaffold_run = ...  # SCAFFOLD, 2 of 3 clients a round, two rounds, on the federation
scaffold_reference = ...  # the same config run by fedlab's engine
# BEGIN SOLUTION
scaffold = dataclasses.replace(CONFIG, algorithm="scaffold", clients_per_round=2, num_rounds=2)
scaffold_run = federation.run(scaffold, on_round=show)
scaffold_reference = scaffold.simulate()
print("clients of each round:", [list(r.clients) for r in scaffold_run.rounds])
# END SOLUTION

# %% tags=["self-check"]
exercises.check_deployed(
    scaffold_run,
    scaffold_reference,
    CONFIG,
    name="scaffold_run",
    reference_name="scaffold_reference",
    algorithm="scaffold",
    clients_per_round=2,
)

# %% [markdown]
# **(b)** Where does client k's control variate c_k live between two rounds: on the `"server"`,
# in a `"message"`, in the SuperNode's `"context.state"` or in `"history.json"`?

# %%
c_k_lives = ...  # "server", "message", "context.state" or "history.json"
# BEGIN SOLUTION
c_k_lives = "context.state"
# END SOLUTION

# %% tags=["self-check"]
hints = {
    "server": "the server keeps c, the clients' mean; c_k is client k's own (only Δc_k goes up)",
    "message": "a message lives for one round; c_k must outlive it until k is sampled again",
    "history.json": "the History is the server's record of the rounds; it holds no client state",
}
exercises.check_choice("c_k_lives", c_k_lives, "context.state", hints)

# %% [markdown]
# **Why must c_k stay on the client, and what happens to it when a SuperNode restarts?**
#
# <!-- BEGIN SOLUTION -->
# **Model answer.** c_k is client k's own: its estimate of its own gradient, which,
# beside the server's c, corrects its local steps for drift; it is computed from its data and
# used only in its own local steps. Only its change Δc_k
# goes up, so that the server can keep c, the mean; c_k itself must wait on the client until the
# client is sampled again, perhaps many rounds later. In the deployment it lives in
# `context.state`, the state Flower keeps for the run inside the SuperNode's process: the task
# process that answered the round's message is gone once it has replied, so a Python variable
# would not survive to the next round. The numbers show it works: clients 1 and 2 trained in
# both rounds, and the deployment equals the engine to the last digit (largest test-loss
# difference 0), so round 2 used the c_k of round 1. When a SuperNode restarts, its
# `context.state` is lost: the client starts again from c_k = 0 while the server's c still
# counts the old one, and the History no longer equals the engine's. A real deployment would keep
# c_k on the device's disk.
# <!-- END SOLUTION -->

# %% [markdown]
# ### Exercise 2 · Compress the uploads
#
# **(a)** Run `CONFIG` with `compression="topk"`, `compression_fraction=0.05`,
# `error_feedback=True` and `num_rounds=2` on the federation, as `topk_run`, and in this process,
# as `topk_reference`. Print round 1's bytes up beside those of section 3's run (`history`).

# %%
topk_run = ...  # top-k uploads (5 %) with error feedback, two rounds, on the federation
topk_reference = ...  # the same config run by fedlab's engine
# BEGIN SOLUTION
topk = dataclasses.replace(
    CONFIG, compression="topk", compression_fraction=0.05, error_feedback=True, num_rounds=2
)
topk_run = federation.run(topk, on_round=show)
topk_reference = topk.simulate()
print(f"round 1 up: top-k {topk_run.rounds[0].bytes_up:,} B, ", end="")
print(f"uncompressed {history.rounds[0].bytes_up:,} B (section 3)")
# END SOLUTION

# %% tags=["self-check"]
topk_settings = {"compression": "topk", "compression_fraction": 0.05, "error_feedback": True}
names = {"name": "topk_run", "reference_name": "topk_reference"}
exercises.check_deployed(topk_run, topk_reference, CONFIG, **names, **topk_settings)

# %% [markdown]
# **(b)** Compute `upload_share`: round 1's bytes up with top-k as a fraction of round 1's bytes
# up in section 3's run.

# %%
upload_share = ...  # round 1's bytes up, top-k over uncompressed
# BEGIN SOLUTION
upload_share = topk_run.rounds[0].bytes_up / history.rounds[0].bytes_up
# END SOLUTION

# %% tags=["self-check"]
exercises.check_upload_share(upload_share, topk_run, history)

# %% [markdown]
# **How many bytes go up now, and why more than 5 % of them? Does the History still equal
# `simulate`'s? Where does each client's error-feedback residual live?**
#
# <!-- BEGIN SOLUTION -->
# **Model answer.** Round 1's uploads are 12,312 B instead of 116,856 B, a share of 0.105:
# about a tenth, twice the 5 % of the coordinates that top-k keeps, because every value kept (a
# float32, 4 bytes) travels with its int32 index (4 more): 481 of 9,610 coordinates × 8 B =
# 3,848 B a client — the 11,544 B the engine counts for three — plus a small header per array.
# The History still equals `simulate`'s exactly (largest test-loss difference 0), error feedback
# included: each client's residual, what top-k left out of its update and adds to the next one,
# stays in that client's `context.state`, like SCAFFOLD's c_k. Only the client has its full
# update, so only it can remember what it did not send; a restarted SuperNode would start with
# an empty residual. The saving has a price per round: after two rounds the top-k run is at 0.644
# against 0.817 without compression (section 3's run).
# <!-- END SOLUTION -->

# %% [markdown]
# ### Exercise 3 · Crash a client
#
# **(a)** Run `CONFIG` for two rounds with `round_timeout=10.0` as `crash_run`, killing
# SuperNode 2 as soon as round 1 is saved (`on_round`). Print each round's clients, dropped
# clients and wall time.

# %%
crash_run = ...  # two rounds; SuperNode 2 killed once round 1 is saved


# BEGIN SOLUTION
def crash(history_so_far):
    show(history_so_far)
    if len(history_so_far) == 1:
        federation.kill_node(2)


crash_config = dataclasses.replace(CONFIG, num_rounds=2, round_timeout=10.0)
crash_run = federation.run(crash_config, on_round=crash)
for r in crash_run.rounds:
    print(f"round {r.round}: clients {list(r.clients)}, dropped {list(r.dropped)}, ", end="")
    print(f"{r.wall_time:.1f} s")
# END SOLUTION

# %% tags=["self-check"]
exercises.check_crash(crash_run, node=2, round_timeout=10.0)

# %% [markdown]
# **(b)** How many seconds did the server spend on round 2? Put it in `waited`.

# %%
waited = ...  # seconds round 2 took
# BEGIN SOLUTION
waited = crash_run.wall_time[1]
# END SOLUTION

# %% tags=["self-check"]
exercises.check_waited(waited, crash_run)

# %% [markdown]
# **Which rounds list client 2 in `dropped`, how long did the server wait, and what sets that
# wait? What would `federation.start_node(2)` bring back, and what not?**
#
# <!-- BEGIN SOLUTION -->
# **Model answer.** Round 1 trained all three clients (4.3 s); round 2 lists client 2 in
# `dropped`, aggregated clients 0 and 1 only, and took 10.1 s: the server waited for SuperNode
# 2's reply until `round_timeout` (10 s) ran out, then went on without it. Round 2's accuracy is
# still close to the run without a crash (0.786 against 0.817), the average of two clients'
# updates instead of three. So the wait is set by `round_timeout`: the server cannot tell a dead
# client from a slow one, it only sees that no reply came in time. A short timeout drops slow but
# healthy clients; a long one makes every round with a crash that long (with the default 300 s,
# Flower's own heartbeat check may notice the dead SuperNode sooner: run the cell again with
# `round_timeout=300` and time it to see when). `federation.start_node(2)` starts a new SuperNode for partition 2: it registers with
# a new node id, the server asks it for its partition at the start of the next round and sends
# it work again, and its data are back (it loads its own partition). Not back: the round it
# missed, and its `context.state` — SCAFFOLD's c_k or an error-feedback residual start again from
# zero.
# <!-- END SOLUTION -->

# %% [markdown]
# ### Exercise 4 · A fresh Python per message
#
# **(a)** Time what each process model pays to start a task process: `import_seconds`, a fresh
# Python that imports TensorFlow (`subprocess.run([sys.executable, "-c", "import tensorflow"])`,
# what `task_processes="spawn"` pays for every message), and `fork_seconds`, a fork of this
# Python, which has imported it already (`os.fork()`: the child calls `os._exit(0)` at once,
# the parent waits with `os.waitpid`).

# %%
import_seconds = ...  # a fresh Python importing tensorflow
fork_seconds = ...  # os.fork() of this process, and waiting for the child
# BEGIN SOLUTION
import os
import subprocess

start = time.perf_counter()
subprocess.run([sys.executable, "-c", "import tensorflow"], check=True, capture_output=True)
import_seconds = time.perf_counter() - start
start = time.perf_counter()
child = os.fork()
if child == 0:  # the child: exit at once, without Python's clean-up
    os._exit(0)
os.waitpid(child, 0)
fork_seconds = time.perf_counter() - start
print(f"fresh Python + TensorFlow: {import_seconds:.1f} s; fork: {fork_seconds * 1000:.1f} ms")
# END SOLUTION

# %% tags=["self-check"]
exercises.check_process_start(import_seconds, fork_seconds)

# %% [markdown]
# **(b)** With a fresh Python per message, how many times does one round of section 3's run
# import TensorFlow? (Section 5 counted the messages.)

# %%
imports_per_round = ...  # fresh Pythons, each importing TensorFlow, in one round
# BEGIN SOLUTION
imports_per_round = NUM_NODES  # one train message per SuperNode a round, each its own process
# END SOLUTION

# %% tags=["self-check"]
hints = {
    1: "every SuperNode gets its own train message each round, and each message a fresh Python",
    NUM_NODES + 1: "the ServerApp starts once for the whole run, not once a round",
    2 * NUM_NODES: "the query message came once, before round 1: one train message a round each",
}
exercises.check_choice("imports_per_round", imports_per_round, NUM_NODES, hints)

# %% [markdown]
# **Where does the time of a round go with a fresh Python per message?**
#
# <!-- BEGIN SOLUTION -->
# **Model answer.** A fresh Python that imports TensorFlow took 9.1 s here, a fork of
# this Python, which has TensorFlow loaded already, 99 ms — about ninety times quicker: a fork
# copies the running process, imports and all, and shares its memory until one side writes to it.
# (The machine was busy while these numbers were taken; section 3 says about 8 s for the import
# on two cores.) With a fresh Python per message, every round pays the import once per client,
# three times, and on two cores that is about 3 × 9 s / 2 ≈ 14 s of a round before any training:
# most of the ≈ 24 s a round that `dev.py bench flower` measured for Flower's own process model,
# against ≈ 4 s with forked task processes. The rest is waiting: without fast polling an idle
# SuperNode asks the SuperLink for work only every 3 s. The learning itself — 12 local steps of a
# small network on each client — takes milliseconds in the engine. On a model this small a
# deployment's time goes into starting processes and passing messages, which is why fedlab's
# executor imports TensorFlow once and forks; the larger the model, the larger the share of
# training.
# <!-- END SOLUTION -->

# %% [markdown]
# ### Exercise 5 · A classroom federation
#
# **(a)** Write `supernode_command`: the command student `k` of `num_students` runs to join the
# teacher's SuperLink at `teacher_ip` (listening on `port`) over TLS, as in section 6's recipe.

# %%
def supernode_command(k, num_students, teacher_ip, port=8000):
    """The shell command with which student k's laptop joins the classroom federation (TLS)."""
    # BEGIN SOLUTION
    node_config = f"partition-id={k} num-partitions={num_students}"
    return (
        f"flower-supernode --superlink {teacher_ip}:{port} --root-certificates ca.crt "
        f'--isolation subprocess --node-config "{node_config}"'
    )
    # END SOLUTION


# %% tags=["self-check"]
exercises.check_supernode_command(supernode_command)
# BEGIN HIDDEN TESTS
exercises.check_supernode_command(supernode_command, seed=1)
# END HIDDEN TESTS

# %% [markdown]
# **(b)** With TLS and node authentication both on, can the teacher's server still read every
# student's update? (`True` or `False`)

# %%
server_reads_updates = ...  # True or False
# BEGIN SOLUTION
server_reads_updates = True
# END SOLUTION

# %% tags=["self-check"]
hint = "TLS encrypts the link, and the server is its other end: it decrypts every update"
exercises.check_choice("server_reads_updates", server_reads_updates, True, {False: hint})

# %% [markdown]
# **What do TLS and node authentication protect a classroom federation against, and what not?**
#
# <!-- BEGIN SOLUTION -->
# **Model answer.** TLS encrypts the link between each laptop and the SuperLink and proves
# the server's identity: the laptops check its certificate against `ca.crt`. Nobody else on the
# Wi-Fi can read the updates in transit (notebook 10 showed what an update leaks), change them,
# or pose as the teacher's server. Node authentication lets only registered SuperNodes join, so a
# stranger can neither take a partition nor send poisoned updates. Neither hides anything from
# the server itself: it is the other end of every TLS link and decrypts every update to aggregate
# it, so whoever runs (or breaks into) the teacher's machine sees each student's update — secure
# aggregation (notebook 12) hides the individual updates, differential privacy (notebook 11)
# bounds what even their average reveals. Neither stops a registered student from sending a
# malicious update (that needs robust aggregation), and every participant receives the global
# model in clear. Insecure mode, as `LocalFederation` uses it, is only for 127.0.0.1.
# <!-- END SOLUTION -->

# %% [markdown]
# ## Done
#
# Stop every process the federation started, the task processes included.

# %% tags=["nbval-check-output"]
federation.stop()
print("processes still running:", len(federation.running()))
