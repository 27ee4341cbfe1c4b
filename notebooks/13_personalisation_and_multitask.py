# %% [markdown]
# # 13 · Personalisation and multi-task FL
#
# *Purpose: see that one global model can serve some clients badly, give every client a model of
# its own (fine-tuning, FedPer, Ditto, clustered FL) and let clients with different tasks share a
# body — and measure when collaborating pays.*
#
# **Goals**
# - Give every client its own test set (`fedlab.partition.hold_out`) and look at FedAvg's
#   accuracy **per client**: the mean hides a worst 10 % that the global model barely serves
#   (`History.fairness`, `fedlab.plot.plot_client_accuracy`).
# - Compare local-only training, FedAvg, FedAvg + fine-tuning, FedPer and Ditto
#   (`fedlab.personalization`) by mean, median and worst-10 % accuracy.
# - Write Ditto's personal update for one step by hand and check the engine does the same; sweep
#   its λ from local-only (λ = 0) to the global model (λ → ∞).
# - Recover planted groups of clients (rotated digits) with clustered FL (IFCA) and measure how
#   reliably it finds them (`cluster_purity`).
# - Let clients that solve different tasks share a body (`MultiTaskFedAvg`) and measure when
#   that beats training alone, and how it compares with one FedAvg per task.
# - Move the heterogeneity α and Ditto's λ on a panel (`PersonalizationPanel`) and watch the
#   per-client accuracies change.
#
# **You will need:** [02 · Client splits](02_client_splits.ipynb) (Dirichlet label skew) and
# [04 · Client drift](04_client_drift.ipynb) (why heterogeneity hurts FedAvg); about 40 s to run;
# CPU is fine.

# %% [markdown]
# ## Setup
#
# `import fedlab` comes **first**: it quietens TensorFlow's start-up log lines before TensorFlow
# loads. The personalised algorithms live in `fedlab.personalization`.

# %%
import sys

FEDLAB = "fedlab-edu @ git+https://github.com/fedlab-edu/fedlab"  # what Colab installs
if "google.colab" in sys.modules:  # elsewhere `python3 dev.py lab` has installed fedlab already
    import subprocess

    subprocess.run([sys.executable, "-m", "pip", "install", "-q", FEDLAB], check=True)

# %%
import fedlab  # first: it quietens TensorFlow's start-up log lines
from fedlab import FedAvg, Simulation, load_digits, simulate
from fedlab.models import model_fn
from fedlab.multitask import multitask_digits, task_table
from fedlab.partition import dirichlet, hold_out, rotated_groups
from fedlab.personalization import (
    IFCA,
    Ditto,
    FedAvgFineTune,
    FedPer,
    LocalOnly,
    MultiTaskFedAvg,
    cluster_purity,
    fairness_table,
)
from fedlab.personalization_panel import PersonalizationPanel
from fedlab.plot import plot_client_accuracy, plot_fairness

import keras
import matplotlib.pyplot as plt
import numpy as np
import tensorflow as tf

print(", ".join(f"{name} {version}" for name, version in fedlab.versions().items()))

# %% [markdown]
# The run sizes. Every run is small (20 rounds of a two-layer network on 8×8 digits) and costs
# about a second; all runs of one algorithm share one compiled kernel
# (`model_fn("mlp", 10)` is hashable, so the engine recognises it).

# %%
NUM_CLIENTS = 20
ALPHA = 0.1  # Dirichlet label skew: small = each client sees few digits
TEST_FRACTION = 0.2  # of each client's examples held out as its own test set
CLIENTS_PER_ROUND = 10
NUM_ROUNDS = 20
LOCAL_EPOCHS = 2
EVALUATE_EVERY = 5  # rounds; runs whose history we only read at the end evaluate once
LAMBDAS = (0.0, 1000.0)  # Ditto's λ: the two ends, besides the λ = 1 of section 2
NUM_GROUPS = 4  # planted rotation groups for clustered FL
IFCA_SEEDS = (0, 1, 2, 3, 4)
IFCA_ROUNDS = 10  # the clusters are settled after a few rounds
MANY_CLIENTS, FEW_CLIENTS = 40, 8  # multi-task: few examples per client, many
MT_ROUNDS = 30
SEED = 0
MODEL = model_fn("mlp", 10)

# %% [markdown]
# ## 1. One global model, many clients
#
# Label skew with α = 0.1: most clients hold two or three digits. `hold_out` moves 20 % of each
# client's examples into its **own** test set, drawn from its own distribution: the data it will
# meet when it uses the model. Every evaluation round the engine then records each client's
# accuracy on its own test set.

# %% tags=["nbval-check-output"]
digits = load_digits()
split = dirichlet(digits.y_train, NUM_CLIENTS, alpha=ALPHA, seed=SEED)
split = hold_out(split, digits.y_train, test_fraction=TEST_FRACTION, seed=SEED)
print("train examples per client:", split.sizes.tolist())
print("test examples per client: ", split.test_sizes.tolist())
print("digits with >= 5 examples:", (split.label_counts >= 5).sum(axis=1).tolist())


# %% [markdown]
# FedAvg, 10 of 20 clients a round. `History.client_accuracy("global")` is the global model's
# accuracy on each client's test set after every evaluation round (`[round, client]`, here every
# 5th round: rows in between are `nan`); `History.fairness` summarises each row: mean, median, and the mean of the worst 10 % of clients (here 2).

# %%
def run(algorithm, data=digits, split=split, **options):
    options = {"num_rounds": NUM_ROUNDS, "clients_per_round": CLIENTS_PER_ROUND} | options
    options = {"evaluate_every": EVALUATE_EVERY, "seed": SEED, "progress": False} | options
    return simulate(algorithm, MODEL, data, split, **options)


# %% tags=["nbval-check-output"]
fedavg = run(FedAvg(local_epochs=LOCAL_EPOCHS))
last = fedavg.client_accuracy("global")[-1]
print("per client:", np.round(last, 2).tolist())
print({k: round(float(v[-1]), 3) for k, v in fedavg.fairness("global").items()})
print("test accuracy on the pooled test set:", round(float(fedavg.test_accuracy[-1]), 3))

# %% [markdown]
# The pooled test accuracy (about 0.8) and the per-client mean agree, but the worst two clients
# get about one answer in ten right. Sorted from worst to best client, the picture is a curve that
# dives on the left: the thick bar is the worst-10 % mean, the dotted line the mean.

# %%
drawn = plot_client_accuracy({"FedAvg (global model)": last})
plt.show()

# %% [markdown]
# Who are they? Compare the worst clients' digits with what the global model is good at: a
# client whose digits are rare elsewhere is outvoted in every average.

# %% tags=["nbval-check-output"]
for k in np.argsort(last, kind="stable")[:3]:
    own = {int(c): int(n) for c, n in enumerate(split.label_counts[k]) if n}
    print(f"client {k:2d}: accuracy {last[k]:.2f}, its training digits {own}")

# %% [markdown]
# ## 2. A model of one's own
#
# Four ways to give each client its own model, all run by the same engine
# (`fedlab.personalization`):
#
# - **local only**: each client trains alone — no collaboration, the baseline to beat;
# - **FedAvg + fine-tuning**: FedAvg, then 5 local SGD steps on the client's data before use;
# - **FedPer**: the body is averaged, the output layer (the *head*) stays on each client;
# - **Ditto**: FedAvg for a global w, plus a personal v_k trained on F_k(v) + λ/2 ‖v − w‖².
#
# `History.client_accuracy("personal")` holds each client's accuracy with its personalised
# model.

# %%
personal = {
    "local only": run(LocalOnly(local_epochs=LOCAL_EPOCHS)),
    "FedAvg + fine-tuning": run(FedAvgFineTune(fine_tune_steps=5, local_epochs=LOCAL_EPOCHS)),
    "FedPer": run(FedPer(local_epochs=LOCAL_EPOCHS)),
    "Ditto λ=1": run(Ditto(lam=1.0, local_epochs=LOCAL_EPOCHS)),
}

# %% [markdown]
# A small table: the last round's mean, median and worst-10 % accuracy per method.

# %% tags=["nbval-check-output"]
runs = {"FedAvg (global)": (fedavg, "global")} | {n: (h, "personal") for n, h in personal.items()}
print(fairness_table(runs))

# %% [markdown]
# What to notice:
# - **Local only beats FedAvg** on the mean *and* by a lot on the worst clients: with α = 0.1 a
#   client's own few digits are an easy problem, and the global model is a compromise.
# - **Fine-tuning** the global model for 5 steps is the best of both: what FedAvg learnt from
#   everyone, bent towards the client's own digits.
# - **FedPer** sits in between: a shared body with a private head.
# - **Ditto with λ = 1** is close to fine-tuning: personal models that train on their own data
#   but are pulled towards what everyone learnt. Section 2.2 moves λ to both ends.
#
# The whole distributions (left), and how the mean (solid) and worst 10 % (dashed) develop over
# the rounds (right, same colours):

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 4))
accs = {n: h.client_accuracy(kind)[-1] for n, (h, kind) in runs.items()}
plot_client_accuracy(accs, ax=axes[0])
plot_fairness({n: r for n, r in runs.items()}, ax=axes[1], legend=False)
plt.tight_layout()
plt.show()

# %% [markdown]
# ### 2.1 Ditto's personal step, by hand
#
# After its FedAvg local training, client k trains its personal v_k on the same mini-batches.
# Each step is an SGD step on its loss F_k, then the proximal step of the λ term, which pulls v
# towards the global model w^t it received:
#
# v ← v − η ∇F_k(v),  then  v ← (v + η λ w^t) / (1 + η λ).
#
# (The exact minimiser of λ/2 ‖v − w^t‖² + ‖v − v'‖²/(2η): stable for any λ; to first order in ηλ
# it is the gradient step v − ηλ(v − w^t) of the paper.) One round of one full-batch step per
# client, with a Keras model for client 0:

# %%
LAM, LR = 0.5, 0.1
sim = Simulation(Ditto(lam=LAM, client_lr=LR, batch_size=None), MODEL, digits, split, seed=SEED)
w0 = [w.copy() for w in sim.weights]  # the global model = every personal model at the start
sim.step()  # every client: FedAvg training, then one personal step

own = split.client_indices[0]
model = MODEL()
model(digits.x_train[:1])
model.set_weights(w0)

# %%
with tf.GradientTape() as tape:
    logits = model(digits.x_train[own])
    loss = keras.losses.sparse_categorical_crossentropy(
        digits.y_train[own], logits, from_logits=True
    )
    loss = tf.reduce_mean(loss)
grads = tape.gradient(loss, model.trainable_variables)
v = [w - LR * g.numpy() for w, g in zip(w0, grads, strict=True)]  # SGD step on F_0
v = [(vi + LR * LAM * wi) / (1 + LR * LAM) for vi, wi in zip(v, w0, strict=True)]  # proximal step

# %% tags=["nbval-check-output"]
for mine, engine in zip(v, sim.personal_weights, strict=True):
    np.testing.assert_allclose(mine, engine[0], atol=1e-6)
print("client 0's personal model matches the engine's:", [p.shape for p in sim.personal_weights])

# %% [markdown]
# `sim.personal_weights` holds every client's personal model as one `[N, ...]` array per weight
# (`sim.personal_models()` gives the personalised models of any algorithm the same way).
#
# ### 2.2 Ditto's λ: from local-only to the global model
#
# λ = 0 drops the pull: v_k is trained on the client's data only, on the same batches as
# local-only training, so it must be **exactly** local-only. A very large λ pins v_k to the global
# model it last received.

# %% tags=["nbval-check-output"]
ditto = {
    lam: run(Ditto(lam=lam, local_epochs=LOCAL_EPOCHS), evaluate_every=NUM_ROUNDS)
    for lam in LAMBDAS
}
ditto = dict(sorted((ditto | {1.0: personal["Ditto λ=1"]}).items()))
same = ditto[0.0].last_client_accuracy() == personal["local only"].last_client_accuracy()
print("λ = 0 equals local only:", bool(same.all()))
table = {f"Ditto λ={lam:g}": (history, "personal") for lam, history in ditto.items()}
print(fairness_table({"global (FedAvg)": (ditto[1.0], "global")} | table))

# %% [markdown]
# The global model is the same FedAvg run for every λ (Ditto's w *is* FedAvg: λ only shapes the
# personal models). λ = 0 is local-only to the last bit. As λ grows the personal models move
# towards the global model: at λ = 1000 their accuracy is close to the global model's, but not
# identical, because v_k is pinned to the global model of the *last round client k took part in*
# (10 of 20 clients a round), not the final one. In between is the point of Ditto: with λ = 1 the
# personal models beat both ends, on the mean and even more on the worst clients (exercise 2 looks
# for the best λ).

# %% [markdown]
# ## 3. Clustered FL: finding the groups
#
# Sometimes the clients fall into a few groups that want different models. `rotated_groups`
# plants four: the labels are split IID, but client k's images are all turned by
# 90° · (k mod 4). One global model must read digits in four orientations; **IFCA** keeps four
# cluster models, and each client trains the one with the lowest loss on its data.

# %% tags=["nbval-check-output"]
rotated, rot_split = rotated_groups(digits, NUM_CLIENTS, num_groups=NUM_GROUPS, seed=SEED)
rot_split = hold_out(rot_split, rotated.y_train, test_fraction=TEST_FRACTION, seed=SEED)
print("planted groups:", rot_split.client_groups.tolist())

# %%
fig, axes = plt.subplots(1, NUM_GROUPS, figsize=(6, 1.6))
for g, ax in enumerate(axes):
    first = rot_split.client_indices[g][0]
    ax.imshow(rotated.x_train[first].reshape(8, 8), cmap="gray_r")
    ax.set(title=f"group {g}", xticks=[], yticks=[])
plt.show()

# %% [markdown]
# FedAvg against IFCA with 4 clusters, every client every round (a client must compute every
# cluster model's loss to choose). `cluster_purity` is the share of clients whose found cluster's
# majority group is their own: 1.0 when the groups are recovered (one collapsed cluster would
# score 0.25).

# %%
every_client = {"num_rounds": IFCA_ROUNDS, "clients_per_round": None, "evaluate_every": IFCA_ROUNDS}
rot_fedavg = run(FedAvg(local_epochs=LOCAL_EPOCHS), rotated, rot_split, **every_client)
ifca = {
    seed: run(
        IFCA(NUM_GROUPS, local_epochs=LOCAL_EPOCHS), rotated, rot_split, seed=seed, **every_client
    )
    for seed in IFCA_SEEDS
}

# %% tags=["nbval-check-output"]
purity = {
    s: cluster_purity(h.rounds[-1].client_cluster, rot_split.client_groups) for s, h in ifca.items()
}
for seed, history in ifca.items():
    print(
        f"seed {seed}: clusters {list(history.rounds[-1].client_cluster)}  purity {purity[seed]:.2f}"
    )
table = {f"IFCA seed {seed}": (history, "personal") for seed, history in ifca.items()}
print(fairness_table({"FedAvg (global)": (rot_fedavg, "global")} | table))

# %% [markdown]
# IFCA is far better than one global model on every seed, but it does **not** reliably recover
# the four groups: on 3 of 5 seeds the purity is 1.0, on the others two rotation groups end up
# sharing a cluster model (purity 0.75), and that pair's clients get a compromise model. Which
# groups merge depends on the clusters' random initial weights: in the first round every client
# picks by the loss of untrained models, and a cluster that wins two groups early keeps them.
# Does training longer, more local epochs or a smaller learning rate fix it? Rerun the seeds that
# merged two groups three ways (a few seconds):

# %% tags=["nbval-check-output"]
stuck = [seed for seed, score in purity.items() if score < 1]
variants = {  # IFCA's settings, rounds
    "3× the rounds": ({"local_epochs": LOCAL_EPOCHS}, 3 * IFCA_ROUNDS),
    "5 local epochs": ({"local_epochs": 5}, IFCA_ROUNDS),
    "client lr 0.03": ({"local_epochs": LOCAL_EPOCHS, "client_lr": 0.03}, IFCA_ROUNDS),
}
for name, (settings, rounds) in variants.items():
    options = every_client | {"num_rounds": rounds, "evaluate_every": rounds}
    algorithm = IFCA(NUM_GROUPS, **settings)
    again = [run(algorithm, rotated, rot_split, seed=s, **options) for s in stuck]
    found = [cluster_purity(h.rounds[-1].client_cluster, rot_split.client_groups) for h in again]
    print(f"{name:<15} seeds {stuck}: purity {[round(score, 2) for score in found]}")

# %% [markdown]
# No: the groups that merged stay merged. Restarts (several seeds, keep the best training loss)
# or initialising the cluster models from a few rounds of FedAvg are common remedies. The
# accuracy per client, for seed 0 and the best seed:

# %%
best = max(purity, key=purity.get)
accuracy = {"FedAvg (global)": rot_fedavg.last_client_accuracy("global")}
accuracy |= {f"IFCA seed {seed}": ifca[seed].last_client_accuracy() for seed in (SEED, best)}
drawn = plot_client_accuracy(accuracy)
plt.show()

# %% [markdown]
# ## 4. Different tasks, one shared body
#
# Now the clients ask different questions about the same kind of image. `multitask_digits`
# splits the digits IID and gives client k task k mod 4: **which digit** (10 classes), **odd?**,
# **≥ 5?**, **drawn with a closed loop?** (2 classes each). One model with 16 outputs holds every
# task's head side by side; each client's loss and prediction use its own task's columns only.
# `MultiTaskFedAvg` averages the body over every client and each head over its task's clients.
#
# We compare it, per task, with **local only** and with **one FedAvg per task** (the same
# clients and data, but each task's clients only). A client's task-only split is the multi-task
# split restricted to that task's clients, `split.subset(clients)`.

# %% [markdown]
# Each comparison runs on its own multi-task federation of `n` clients, every client in every
# round, and prints the mean accuracy of each task's clients:

# %%
MODEL16 = model_fn("mlp", 16)  # 10 + 2 + 2 + 2 outputs


def compare(n, num_rounds=MT_ROUNDS):
    joint, mt = multitask_digits(digits, n, seed=SEED)
    mt = hold_out(mt, joint.y_train, test_fraction=TEST_FRACTION, seed=SEED)
    common = dict(num_rounds=num_rounds, evaluate_every=num_rounds, seed=SEED, progress=False)
    algorithms = {"multi-task FedAvg": MultiTaskFedAvg(), "local only": LocalOnly()}
    acc = {
        name: simulate(algo, MODEL16, joint, mt, **common).last_client_accuracy()
        for name, algo in algorithms.items()
    }
    acc["FedAvg per task"] = np.zeros(n)  # one FedAvg per task, on that task's clients only
    for task in range(4):
        mine = np.flatnonzero(mt.client_groups == task)
        alone = simulate(FedAvg(), MODEL16, joint, mt.subset(mine), **common)
        acc["FedAvg per task"][mine] = alone.last_client_accuracy("global")
    print(f"{n} clients, {mt.sizes.mean():.0f} training examples each")
    print(task_table(acc, mt.client_groups))
    return acc


# %% [markdown]
# **Many clients, few examples each**: 40 clients, 10 per task, about 29 training examples each.

# %% tags=["nbval-check-output"]
many = compare(MANY_CLIENTS)

# %% [markdown]
# **Few clients, many examples each**: 8 clients, 2 per task, about 144 training examples each
# (the same digits, shared among fewer clients).

# %% tags=["nbval-check-output"]
few = compare(FEW_CLIENTS)

# %% [markdown]
# What to notice:
# - **Few examples per client (40 clients)**: sharing helps over training alone on every task
#   (mean about 0.80 against 0.74): 29 examples are too few to learn good features alone.
# - **Many examples per client (8 clients)**: local training already does well, and the shared
#   body buys nothing (about 0.90 either way).
# - **One FedAvg per task beats the shared body here** (about 0.88 against 0.80 with 40 clients,
#   about 0.92 against 0.90 with 8). The four tasks are all functions of the digit, so one might
#   expect them to help each other; but each round the body moves by the average of four tasks'
#   updates, so each task's features are learnt more slowly than in a federation of its own.

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 4))
for ax, n, acc in zip(axes, (MANY_CLIENTS, FEW_CLIENTS), (many, few), strict=True):
    plot_client_accuracy(acc, ax=ax)
    ax.set_title(f"{n} clients, 4 tasks")
plt.tight_layout()
plt.show()

# %% [markdown]
# Does the gap close with more training? The 40-client comparison again, with twice the rounds
# (a couple of seconds):

# %% tags=["nbval-check-output"]
longer = compare(MANY_CLIENTS, num_rounds=2 * MT_ROUNDS)

# %% [markdown]
# It shrinks (about 0.88 against 0.90) but does not close; whether less data changes that is
# exercise 4. Sharing a body pays against training *alone*; against separate federations it
# depends on the tasks: measure.
#
# ## 5. A panel: heterogeneity and λ
#
# `fedlab.personalization_panel.PersonalizationPanel` splits the digits with the slider's α, trains
# Ditto with the slider's λ and local-only training, and draws every client's accuracy with the
# global model, its Ditto model and its local model. Built with this notebook's settings, its first
# Run repeats section 2's Ditto λ = 1 and local-only runs. Move α up (milder skew) and watch the
# global model catch up with the personal ones; move λ and watch Ditto slide between local-only
# and the global model.

# %%
panel = PersonalizationPanel(
    digits,
    num_clients=NUM_CLIENTS,
    alpha=ALPHA,
    lam=1.0,
    num_rounds=NUM_ROUNDS,
    clients_per_round=CLIENTS_PER_ROUND,
    local_epochs=LOCAL_EPOCHS,
    model=MODEL,
    seed=SEED,
)
panel.run()
panel

# %% tags=["nbval-check-output"]
for name, mine in (("ditto", personal["Ditto λ=1"]), ("local", personal["local only"])):
    same = panel.histories[name].fairness()["mean"][-1] == mine.fairness()["mean"][-1]
    print(f"panel's {name} run matches section 2's: {same}")

# %% [markdown]
# The live Dashboard of notebook 03 offers Ditto (with a λ slider), FedPer, local-only training
# and FedAvg + fine-tuning too. Make it with `fedlab.widgets.Dashboard(client_test_fraction=0.2)`
# to hold out every client's own test set; its *view: per client* toggle then draws this
# worst-to-best picture for every run you kept.

# %% [markdown]
# ## Summary
#
# - **Measure per client.** Under label skew (α = 0.1) FedAvg's pooled accuracy is about 0.8,
#   but its worst 10 % of clients get about 0.1 on their own data: `hold_out` gives every client a
#   test set, `History.fairness` the mean / median / worst-10 %.
# - **Personalise.** Local-only training beats the global model under strong skew; FedAvg +
#   5 steps of fine-tuning is best on mean and worst clients; FedPer (private head) sits between.
# - **Ditto** is FedAvg plus a personal model per client, pulled to w by λ: λ = 0 is exactly
#   local-only, large λ approaches the global model, λ = 1 beats both. The personal step is an SGD step followed by
#   v ← (v + ηλw)/(1 + ηλ) — checked by hand against the engine.
# - **Clustered FL (IFCA)** serves planted rotation groups far better than one model, but which
#   groups it separates depends on the initialisation: purity 1.0 on 3 of 5 seeds, 0.75 on the
#   others.
# - **Multi-task FL**: a body shared between tasks helps clients with few examples compared with
#   training alone, buys little for clients with many; here one FedAvg per task was as good or
#   better.
#
# ## Exercises
#
# *Functions, classes and arguments that no cell above uses are named in full (`fedlab.…`):
# `help()` on one (or on its class) shows its documentation, and on the course website the name
# links to its entry in the API reference.*
#
# 1. **Milder skew.** Rerun sections 1–2 with `ALPHA = 1.0`. Does local-only still beat FedAvg?
#    Which λ of Ditto is best now?
# 2. **Ditto's λ and fine-tuning's steps.** Sweep λ over 0.01 … 100 (`LAMBDAS`): where is the
#    best mean, and the best worst-10 %? Then try `fine_tune_steps` 1, 5 and 20 in
#    `FedAvgFineTune`: when do the worst clients start to lose what FedAvg taught them?
# 3. **IFCA restarts.** For each seed, compute the final mean training loss
#    (`history.train_loss[-1]`; see `fedlab.History.train_loss`). Does the run with the lowest loss
#    have purity 1.0? Write a "best of 3 seeds" rule and measure how often it recovers all four
#    groups.
# 4. **Scarce tasks.** Give the multi-task run less data (`fedlab.load_digits(test_size=0.8)`) or
#    more rounds (`MT_ROUNDS = 80`). Does the shared body ever beat one FedAvg per task? What if the
#    "which digit" task had only two clients?
# 5. **FedPer's head.** `fedlab.personalization.FedPer(head_weights=4)` keeps the whole network
#    private. Which method of section 2 does it become, and why?
