# %% [markdown]
# # 03 · FedSGD vs FedAvg, and a live dashboard
#
# *Purpose: find out why Federated Averaging lets every client take many local steps per round
# instead of sending one gradient, measure what local epochs, batch size, client fraction and
# learning rate change, then explore all of it live on a dashboard.*
#
# **Goals**
# - Run **FedSGD** and **FedAvg** on the same clients for the same number of rounds and compare
#   their accuracy round by round.
# - Count the local updates a client makes per round, **u = E·n/(K·B)**, and see how it predicts
#   the number of rounds needed.
# - Measure what local epochs E, batch size B, client fraction C and the client learning rate do
#   to **rounds-to-accuracy** and to **client drift**.
# - Run your own experiments on `fedlab.widgets.Dashboard` and compare runs on one chart.
#
# **You will need:** [01 · one round by hand](01_one_round_by_hand.ipynb) (what a round is,
# `fedlab.simulate`, `History`); about 40 s to run on a laptop CPU (no GPU needed).

# %% [markdown]
# ## Setup
#
# `import fedlab` comes **first**: it quietens TensorFlow's start-up log lines before TensorFlow
# loads. `fedlab.widgets` holds the dashboard of section 6.

# %%
import sys

FEDLAB = "fedlab-edu @ git+https://github.com/fedlab-edu/fedlab"  # what Colab installs
if "google.colab" in sys.modules:  # elsewhere `python3 dev.py lab` has installed fedlab already
    import subprocess

    subprocess.run([sys.executable, "-m", "pip", "install", "-q", FEDLAB], check=True)

# %%
import fedlab  # first: it quietens TensorFlow's start-up log lines
import fedlab.widgets

import matplotlib.pyplot as plt
import numpy as np

print(", ".join(f"{name} {version}" for name, version in fedlab.versions().items()))

# %% [markdown]
# Every size and rate is set in the next cell. Each experiment below is 20 rounds on ten clients,
# so the whole notebook runs in well under a minute on two CPU cores.

# %%
NUM_CLIENTS = 10  # K: clients, each holding about 144 digits
NUM_ROUNDS = 20  # rounds of every experiment
TARGET = 0.90  # the test accuracy that counts as "reached"
CLIENT_LR = 0.1  # local SGD learning rate, unless an experiment varies it
SEED = 0

# %% [markdown]
# ## 1. The clients and one experiment
#
# The handwritten digits of notebook 01, dealt out evenly (IID) to ten clients. Every experiment
# uses these same clients, the same model and the same seed, so only the algorithm and its
# settings differ.

# %% tags=["nbval-check-output"]
digits = fedlab.load_digits(seed=SEED)
split = fedlab.partition.iid(digits.y_train, num_clients=NUM_CLIENTS, seed=SEED)
n = digits.num_train
print(f"n = {n} training examples on K = {NUM_CLIENTS} clients, {n / NUM_CLIENTS:.1f} each")


# %%
def model_fn():
    return fedlab.FedModel(10)


def experiment(algorithm, clients_per_round=NUM_CLIENTS, num_rounds=NUM_ROUNDS):
    """One federated run on the clients above; returns its History."""
    return fedlab.simulate(
        algorithm, model_fn, digits, split, num_rounds, clients_per_round, SEED, progress=False
    )


# %% [markdown]
# Two numbers summarise a run: the first round whose test accuracy reaches `TARGET` (fewer rounds
# means fewer messages between clients and server, the scarce resource in federated learning), and
# the **client drift** ‖w_k − w_global‖ after local training, averaged over clients and rounds (how
# far the clients wander from the global model before the server averages them).

# %%
def rounds_to(history, target=TARGET):
    """The first round whose test accuracy is at least `target` (None: not reached)."""
    reached = np.flatnonzero(history.test_accuracy >= target)
    return int(history.round[reached[0]]) if reached.size else None


def mean_drift(history):
    return float(history.drift_mean.mean())


# %% [markdown]
# ## 2. FedSGD vs FedAvg
#
# - **FedSGD**: each client computes *one* gradient on all its data at the global weights; the
#   server averages the gradients and takes one step. With every client taking part, that is
#   exactly full-batch gradient descent on the pooled data — one step per round.
# - **FedAvg**: each client runs E epochs of mini-batch SGD (batch size B) on its own data, starting
#   from the global weights; the server averages the resulting models.
#
# Same clients, same learning rate, same 20 rounds:

# %%
fedsgd = experiment(fedlab.FedSGD(client_lr=CLIENT_LR))
fedavg = experiment(fedlab.FedAvg(local_epochs=1, batch_size=20, client_lr=CLIENT_LR))

# %%
fig, ax = plt.subplots(figsize=(6.5, 3.2), layout="constrained")
fedlab.plot.plot_accuracy(fedsgd, ax=ax, label="FedSGD")
fedlab.plot.plot_accuracy(fedavg, ax=ax, label="FedAvg E=1 B=20")
ax.axhline(TARGET, color="gray", lw=0.8, ls=":");

# %% tags=["nbval-check-output"]
for name, history in [("FedSGD", fedsgd), ("FedAvg E=1 B=20", fedavg)]:
    accuracy, reached = history.test_accuracy[-1], rounds_to(history) or "—"
    print(f"{name:>15}: {accuracy:.2f} after {NUM_ROUNDS} rounds; {TARGET:.0%} in round {reached}")

# %% [markdown]
# FedAvg passes 90 % after about a dozen rounds; FedSGD is still near 80 % after 20 rounds. How
# many rounds *would* FedSGD need? Its rounds are cheap to simulate (one step each), so run it
# longer:

# %% tags=["nbval-check-output"]
fedsgd_long = experiment(fedlab.FedSGD(client_lr=CLIENT_LR), num_rounds=120)
slow, fast = rounds_to(fedsgd_long), rounds_to(fedavg)
print(f"{TARGET:.0%}: FedSGD in round {slow}, FedAvg in round {fast} ({slow / fast:.1f}x fewer)")

# %% [markdown]
# About eight times fewer rounds for the same accuracy. FedSGD is not a different algorithm from
# FedAvg: it *is* FedAvg with one local epoch and one batch holding all of a client's data
# (B = ∞). The engine agrees to the last digit:

# %% tags=["nbval-check-output"]
full_batch = experiment(fedlab.FedAvg(local_epochs=1, batch_size=None, client_lr=CLIENT_LR))
np.testing.assert_allclose(full_batch.test_accuracy, fedsgd.test_accuracy)
print("FedAvg with E=1, B=∞ == FedSGD ✓")


# %% [markdown]
# ## 3. Local work per round: u = E·n/(K·B)
#
# So the difference is how much **local computation** each client does per round. McMahan et al.
# (2017), the paper that introduced FedAvg, measure it as the expected number of local SGD
# updates a client makes per round,
#
# $$u = \frac{E\, n}{K\, B},$$
#
# with n/K the examples per client (here 143.7), E the local epochs and B the batch size. FedSGD
# has u = 1; FedAvg with E = 1, B = 20 has u ≈ 7.2. About eight times fewer rounds for about
# seven times more steps per round is no coincidence: on IID clients, *u local steps are worth
# almost u global steps*. A helper reads E and B from a history's saved settings:

# %%
def local_updates(history):
    """u = E·n/(K·B), read from the run's settings (B = ∞ means n/K)."""
    algorithm, per_client = history.config["algorithm"], n / history.config["num_clients"]
    return algorithm["local_epochs"] * per_client / (algorithm["batch_size"] or per_client)


def report(runs):
    print(f"{'run':<10}{'u':>6}{'rounds to ' + format(TARGET, '.0%'):>15}{'drift':>7}")
    for name, h in runs.items():
        print(f"{name:<10}{local_updates(h):>6.1f}{rounds_to(h) or '—':>15}{mean_drift(h):>7.2f}")


# %% [markdown]
# Now vary E and B together: two epoch counts, three batch sizes (six runs, about 5 s).

# %%
grid = {}
for E in (1, 5):
    for B in (50, 10, None):
        algorithm = fedlab.FedAvg(local_epochs=E, batch_size=B, client_lr=CLIENT_LR)
        grid[f"E={E} B={B or '∞'}"] = experiment(algorithm)

# %% tags=["nbval-check-output"]
report(grid)


# %% [markdown]
# The pattern of the FedAvg paper's Table 2, in miniature: **the larger u, the fewer rounds**.
# Smaller batches and more epochs both add local steps; E = 5 with B = 10 (u ≈ 72) is at about
# 90 % after a single round, while B = ∞ with E = 1 (that is FedSGD, u = 1) never gets there in
# 20 rounds. E = 1, B = 10 and E = 5, B = 50 have the same u ≈ 14 and need about the same rounds:
# what counts is the number of local steps, not how they are cut into epochs and batches. The
# price is in the last column: more local steps carry each client further from the global model
# before the server averages. Both, round by round:

# %%
def compare(runs, title):
    fig, (ax_acc, ax_drift) = plt.subplots(1, 2, figsize=(10, 3.2), layout="constrained")
    for name, history in runs.items():
        fedlab.plot.plot_accuracy(history, ax=ax_acc, label=name)
        ax_drift.plot(history.round, history.drift_mean, label=name)
    ax_acc.set(title=f"Accuracy: {title}", ylim=(0.4, 1))
    ax_drift.set(xlabel="round", ylabel="mean ‖w_k − w_global‖", title="Client drift")
    ax_drift.legend(fontsize="small", ncols=2)


# %%
compare(grid, "local epochs E and batch size B")

# %% [markdown]
# On these IID clients drift is harmless: every client's data look alike, so however far the
# clients go, they go in similar directions, and the average lands somewhere good. Drift only
# hurts when the clients' data differ — they then pull apart, and the average of far-travelled
# models can be worse than any of them. That is the subject of notebook 04; exercise 1 gives you
# a first look.
#
# ## 4. The client fraction C
#
# Each round the server samples a fraction C of the K clients. Fewer clients per round means less
# communication per round; does it cost rounds?

# %% tags=["nbval-check-output"]
fraction = {}
for C in (0.1, 0.3, 1.0):
    algorithm = fedlab.FedAvg(local_epochs=1, batch_size=20, client_lr=CLIENT_LR)
    fraction[f"C={C}"] = experiment(algorithm, clients_per_round=round(C * NUM_CLIENTS))
report(fraction)

# %%
compare(fraction, "client fraction C")

# %% [markdown]
# With one client per round (C = 0.1) the global model simply follows whichever client was drawn:
# the curve is noisier and reaches 90 % later. From a third of the clients on there is little
# difference — and C = 0.3 needs only 3 uploads per round instead of 10. The paper found the same:
# beyond C = 0.1 of its 100 clients, more clients per round bought little. Drift does not depend
# on C: it measures each client's own trip, which is the same however many clients take part.
#
# ## 5. The client learning rate
#
# The step size of local SGD scales how far each local step goes, so it changes drift directly.

# %% tags=["nbval-check-output"]
rates = {"lr=0.1": fedavg}
for lr in (0.03, 0.3, 1.0):
    rates[f"lr={lr}"] = experiment(fedlab.FedAvg(local_epochs=1, batch_size=20, client_lr=lr))
report(rates)

# %% [markdown]
# Drift grows with the rate, though more slowly than the rate itself: ten times the rate
# (0.03 → 0.3) carries the clients only about five times as far. On these IID clients larger
# rates also need fewer rounds (about five at lr = 1) — up to a point, where steps overshoot:
# try FedSGD with client lr 3 in the dashboard below. The rate and u work together, since both
# set how far a client travels in a round; with many local steps a smaller rate is often needed.
#
# ## 6. Now try it yourself
#
# The dashboard runs the same engine with the controls you set, and redraws after every round:
# loss (the shaded band is the spread of the clients' own training losses), test accuracy,
# client drift, and update agreement (cosine between each client's update and the average).
#
# - **Run** trains until the run has `rounds` rounds; **Stop** pauses (Run resumes);
#   **Step** trains one round; **Reset** starts over.
# - Change a setting and press Run: a new run starts, and the old one stays on the accuracy chart,
#   labelled with its settings, so you can compare. **Clear** removes the old curves.
# - **Save** writes the run's `history.json` and the picture `dashboard.png` into the folder in the
#   box; `fedlab.History.load("fedlab-runs/history.json")` brings the numbers back.
#
# It starts with this notebook's FedAvg settings and five rounds already done. (The first
# round of every new run also compiles the run's TensorFlow function: about a second.)

# %%
dash = fedlab.widgets.Dashboard(num_rounds=30, client_test_fraction=0)  # all data trains, as above
dash.run(num_rounds=5, block=True)  # five rounds now, so the saved notebook shows a plot
dash

# %% [markdown]
# Everything the dashboard shows comes from its `History`, the same record `fedlab.simulate`
# returns — with the same settings and seed it *is* the run of section 2:

# %% tags=["nbval-check-output"]
np.testing.assert_allclose(dash.history.test_accuracy, fedavg.test_accuracy[:5])
accuracy = dash.history.test_accuracy[-1]
print(f"dashboard: {len(dash.history)} rounds, test accuracy {accuracy:.2f}, as in section 2 ✓")

# %% [markdown]
# Things to try (press Run after each change):
#
# 1. Just press **Run**: the run goes on to 30 rounds.
# 2. Switch the algorithm to **FedSGD** and Run: the FedAvg curve stays for comparison.
# 3. FedSGD with client lr 1.0, then 3.0: where does a bigger step stop helping?
# 4. FedAvg with E = 5, B = 10: the accuracy jumps in round one; watch the drift panel.
# 5. Split **shards** (2 per client, so most clients hold two digits): drift grows, the update
#    agreement falls, and the clients' losses (the shaded band) spread apart.
# 6. Set clients / round to 12 with 10 clients: the dashboard explains what is wrong.

# %% [markdown]
# ## Summary
#
# - **FedSGD** is FedAvg with E = 1 and B = ∞: one gradient step per round. **FedAvg** lets each
#   client take u = E·n/(K·B) local steps before the server averages.
# - On IID digits, u local steps are worth nearly u rounds: FedAvg (E = 1, B = 20, u ≈ 7) needed
#   about 8× fewer rounds than FedSGD to reach 90 %, and E = 5, B = 10 was at about 90 % after
#   one round. Rounds are communication, and communication is what federated learning pays for.
# - More local work and larger learning rates increase **client drift**. On IID clients that is
#   harmless; on clients with different data it is the central problem (notebook 04).
# - A client fraction of about a third of the clients learned as fast as all of them, at a
#   third of the uploads per round; a single client per round was slower and noisier.
# - `fedlab.widgets.Dashboard` runs these experiments live and keeps earlier runs for comparison;
#   every number it shows is in `dash.history`.
#
# ## Exercises
#
# *Functions, classes and arguments that no cell above uses are named in full (`fedlab.…`):
# `help()` on one (or on its class) shows its documentation, and on the course website the name
# links to its entry in the API reference.*
#
# 1. **Drift that hurts.** Make a `fedlab.partition.shards(digits.y_train, NUM_CLIENTS, 2)` split
#    and repeat the E × B grid of section 3 on it (pass it to `fedlab.simulate`). Does more local
#    work still mean fewer rounds? Compare the drift column with the IID one.
# 2. **Rounds or steps?** For every run of the grid, multiply rounds-to-90 % by u: the total local
#    steps a client made before the model was good. Which setting needs the fewest *steps*? Is
#    FedAvg cheaper in computation too, or only in communication?
# 3. **A fair FedSGD.** The comparison of section 2 used one learning rate for both. Tune FedSGD's
#    `client_lr` (try 0.3, 1 and 3, in the dashboard or with `experiment`): how many rounds does the
#    best FedSGD need, and how much faster is FedAvg then? (The paper tuned each algorithm's rate.)
# 4. **Client fraction on non-IID data.** Repeat section 4 on the shards split of exercise 1. Does
#    sampling fewer clients per round hurt more when clients differ? Why?
# 5. **The server's step.** `fedlab.FedAvg(server_lr=2.0)` takes twice the averaged step. Compare it
#    in the dashboard with `client_lr` doubled instead: are they the same thing? (Hint: with E = 1
#    and B = ∞, work it out on paper.)
# 6. **Keep a run.** Press Save on the dashboard, then load the file with
#    `fedlab.History.load(...)` and draw `fedlab.plot.plot_drift` of it in a new cell.
