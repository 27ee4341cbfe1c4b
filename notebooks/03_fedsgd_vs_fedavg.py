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
# Each exercise below has a cell for your answer, in code, and a **check** cell after it. Run the
# check: it prints ✓ and what it verified, or ✗ and the mistake it recognised, with a hint. The
# parts that ask you to explain have a cell for your answer in words.
#
# 1. **Drift that hurts.** Make a `fedlab.partition.shards(digits.y_train, NUM_CLIENTS, 2)` split
#    and repeat the E × B grid of section 3 on it (pass it to `fedlab.simulate`). Does more local
#    work still mean fewer rounds? Compare the drift column with the IID one, run by run.
# 2. **Rounds or steps?** For every run of the grid, multiply rounds-to-90 % by u: the total local
#    steps a client made before the model was good; count the examples it processed, too. Which
#    setting needs the fewest *steps*? Is FedAvg cheaper in computation too, or only in
#    communication?
# 3. **A fair FedSGD.** The comparison of section 2 used one learning rate for both. Tune FedSGD's
#    `client_lr` (0.3, 1 and 3, with `experiment`): how many rounds does the best FedSGD need, and
#    how much faster is FedAvg then? (The paper tuned each algorithm's rate.)
# 4. **Client fraction on non-IID data.** Repeat section 4 on the shards split of exercise 1. Does
#    sampling fewer clients per round hurt more when clients differ? Why?
# 5. **The server's step.** `fedlab.FedAvg(server_lr=2.0)` takes twice the averaged step. Work out
#    FedSGD's round on paper (in code), then compare `server_lr=2.0` with `client_lr` doubled
#    instead on section 2's FedAvg: are they the same thing?
# 6. **Keep a run.** Press Save on the dashboard, then load the file with
#    `fedlab.History.load(...)` and draw `fedlab.plot.plot_drift` of it in a new cell.

# %%
from fedlab import exercises

# %% [markdown]
# ### Exercise 1 · Drift that hurts
#
# **(a)** Make `shards_split`, the shards split of `fedlab.partition.shards` (two shards per
# client, `seed=SEED`), and run section 3's six runs of E × B on it, into `shards_grid`, a dict
# with the keys of `grid`. Print the `report` and, as no run may reach 90 %, the rounds to 80 %.

# %%
shards_split = ...  # fedlab.partition.shards(digits.y_train, NUM_CLIENTS, 2, seed=SEED)
shards_grid = ...  # {run name: History}: section 3's grid on shards_split
# BEGIN SOLUTION
shards_split = fedlab.partition.shards(digits.y_train, NUM_CLIENTS, 2, seed=SEED)
shards_grid = {}
for E in (1, 5):
    for B in (50, 10, None):
        algorithm = fedlab.FedAvg(local_epochs=E, batch_size=B, client_lr=CLIENT_LR)
        shards_grid[f"E={E} B={B or '∞'}"] = fedlab.simulate(
            algorithm, model_fn, digits, shards_split, NUM_ROUNDS, NUM_CLIENTS, SEED, progress=False
        )
report(shards_grid)
print("rounds to 80 %:", {name: rounds_to(run, 0.8) for name, run in shards_grid.items()})
# END SOLUTION

# %% tags=["self-check"]
exercises.check_runs(
    shards_grid, grid, name="shards_grid", what="section 3's grid", split="shards(2/client)"
)

# %% [markdown]
# **(b)** For every run, divide its mean drift on the shards split by its mean drift on IID
# clients (`mean_drift`), into a dict `drift_ratio` with the same keys.

# %%
drift_ratio = ...  # {run name: mean drift on shards / mean drift on IID}
# BEGIN SOLUTION
drift_ratio = {name: mean_drift(shards_grid[name]) / mean_drift(grid[name]) for name in grid}
print({name: round(ratio, 1) for name, ratio in drift_ratio.items()})
# END SOLUTION

# %% tags=["self-check"]
exercises.check_drift_ratio(drift_ratio, shards_grid, grid)

# %% [markdown]
# **(c)** Does more local work still mean fewer rounds? What does the drift say?
#
# <!-- BEGIN SOLUTION -->
# **Model answer.** Yes, but much less. No run reaches 90 % in 20 rounds on the shards split:
# every FedAvg run levels off at 0.87–0.89 (FedSGD, E = 1 and B = ∞, at 0.79). Towards 80 % the
# order of section 3 survives: 8 rounds for u ≈ 3 (E = 1, B = 50), 5 for u ≈ 14 (E = 1, B = 10 and
# E = 5, B = 50), 4 for u ≈ 72 (E = 5, B = 10); but u ≈ 72, which was at 90 % after a single round
# on IID clients, now needs four rounds to reach 80 %, and no amount of local work lifts the
# ceiling. The drift says why: on shards every run drifts 1.3 to 4 times as far as the same run on
# IID clients (E = 1, B = 10: 0.86 against 0.46; E = 5, B = 10: 1.08 against 0.85). Each client
# holds two digits and walks towards a model for *those*; the clients walk in different
# directions, and their average lands where none of them was heading. The ratio is largest for
# little local work (4.0 for FedSGD, 3.6 for E = 1, B = 50): a few steps are enough to turn
# towards one's own digits. More local steps keep buying early progress, but less and less of it
# survives the averaging (notebook 04).
# <!-- END SOLUTION -->

# %% [markdown]
# ### Exercise 2 · Rounds or steps?
#
# **(a)** Write `steps_to_target(history)`: the local SGD steps one client made before the run
# first reached `TARGET`, rounds-to-target × u (`rounds_to` and `local_updates` above), or `None`
# if it never did.

# %%
def steps_to_target(history):
    """Local steps one client made until the run first reached TARGET (None: never)."""
    # BEGIN SOLUTION
    rounds = rounds_to(history)
    return None if rounds is None else rounds * local_updates(history)
    # END SOLUTION


# %% tags=["self-check"]
exercises.check_steps_to_target(steps_to_target, num_examples=n, target=TARGET)
# BEGIN HIDDEN TESTS
exercises.check_steps_to_target(steps_to_target, num_examples=n, target=TARGET, seed=1)
# END HIDDEN TESTS

# %% [markdown]
# **(b)** A step of batch size B processes B examples, a FedSGD step all of the client's n/K.
# Write `examples_to_target(history)`: the training examples one client processed before the run
# first reached `TARGET` (E passes over its n/K examples per round), or `None` if it never did.

# %%
def examples_to_target(history):
    """Examples one client processed until the run first reached TARGET (None: never)."""
    # BEGIN SOLUTION
    rounds = rounds_to(history)
    if rounds is None:
        return None
    epochs = history.config["algorithm"]["local_epochs"]
    return rounds * epochs * n / history.config["num_clients"]
    # END SOLUTION


# %% tags=["self-check"]
exercises.check_examples_to_target(examples_to_target, num_examples=n, target=TARGET)
# BEGIN HIDDEN TESTS
exercises.check_examples_to_target(examples_to_target, num_examples=n, target=TARGET, seed=1)
# END HIDDEN TESTS

# %% [markdown]
# **(c)** Print, for every run of `grid` that reaches 90 % and for `fedsgd_long`, its rounds, steps
# and examples to 90 %.

# %%
# BEGIN SOLUTION
print(f"{'run':<10}{'rounds':>7}{'steps':>7}{'examples':>10}")
for name, run in {**grid, "FedSGD": fedsgd_long}.items():
    if rounds_to(run) is not None:
        steps, seen = steps_to_target(run), examples_to_target(run)
        print(f"{name:<10}{rounds_to(run):>7}{steps:>7.0f}{seen:>10.0f}")
# END SOLUTION

# %% [markdown]
# **Which setting needs the fewest steps? Is FedAvg cheaper in computation too, or only in
# communication?**
#
# <!-- BEGIN SOLUTION -->
# **Model answer.** Steps hardly differ: every run that reaches 90 % needs 72–101 local steps
# per client — 72 for E = 5, B = 10 (one round), 86 for E = 1, B = 10, 100 for E = 5, B = ∞ and
# 101 for E = 5, B = 50 — and FedSGD 95 (95 rounds of one step). u local steps are worth about u
# global steps, so FedAvg does not save *steps*: it takes them between two messages instead of
# one per message. Computation is another matter, because a step's cost is its batch: a FedSGD
# step is a gradient over all of a client's 144 examples, a B = 10 step over ten. Counted in
# examples processed, E = 5, B = 10 needed 718 per client and E = 1, B = 10 862, against 13 652
# for FedSGD: about 19 times less computation as well as 95 times fewer rounds. Large batches
# save rounds but not computation: E = 5, B = ∞ needs 20 rounds but 14 370 examples, more than
# FedSGD. So small-batch FedAvg is cheaper in both; its saving in computation is the old
# advantage of mini-batch SGD over full-batch gradient descent. (Wall time is another question:
# a device computes a full batch in parallel, so the saving in time is smaller than in FLOPs.)
# <!-- END SOLUTION -->

# %% [markdown]
# ### Exercise 3 · A fair FedSGD
#
# **(a)** Run FedSGD for 120 rounds, like `fedsgd_long`, with `client_lr` 0.3, 1.0 and 3.0, into a
# dict `fedsgd_runs` keyed by the learning rate. Print the round each reaches 90 % in.

# %%
fedsgd_runs = ...  # {client_lr: History}, FedSGD for 120 rounds at 0.3, 1.0 and 3.0
# BEGIN SOLUTION
fedsgd_runs = {
    lr: experiment(fedlab.FedSGD(client_lr=lr), num_rounds=120) for lr in (0.3, 1.0, 3.0)
}
for lr, run in fedsgd_runs.items():
    final = run.test_accuracy[-1]
    print(f"client_lr {lr}: 90 % in round {rounds_to(run) or '—'}, {final:.2f} after 120")
# END SOLUTION

# %% tags=["self-check"]
tuned = {"client_lr": {0.3: 0.3, 1.0: 1.0, 3.0: 3.0}}
exercises.check_runs(fedsgd_runs, fedsgd_long, name="fedsgd_runs", what="fedsgd_long", **tuned)

# %% [markdown]
# **(b)** Set `best_rounds` to the fewest rounds any of them needs to reach 90 %, and `speedup` to
# `best_rounds` divided by the rounds FedAvg (section 2, `fedavg`) needed.

# %%
best_rounds = ...  # the fewest rounds to TARGET of the runs in fedsgd_runs
speedup = ...  # best_rounds / FedAvg's rounds to TARGET
# BEGIN SOLUTION
best_rounds = min(r for r in map(rounds_to, fedsgd_runs.values()) if r is not None)
speedup = best_rounds / rounds_to(fedavg)
print(f"best FedSGD: {best_rounds} rounds; FedAvg is {speedup:.1f}x faster")
# END SOLUTION

# %% tags=["self-check"]
exercises.check_fair_fedsgd(best_rounds, speedup, fedsgd_runs, fedavg, target=TARGET)

# %% [markdown]
# **How much faster is FedAvg than the best FedSGD, and is that comparison fair now?**
#
# <!-- BEGIN SOLUTION -->
# **Model answer.** The best FedSGD is `client_lr` = 1.0, at 90 % in round 20; 0.3 needs 32
# rounds, and 3.0 overshoots and never recovers (0.11 after 120 rounds, chance level). Against
# FedAvg at `client_lr` 0.1 (round 12) the gap shrinks from 7.9× to 1.7×. But now the comparison
# is unfair the other way: FedSGD is tuned and FedAvg is not. Section 5 tuned FedAvg's rate too:
# at `client_lr` = 1.0 it reaches 90 % in round 5, four times faster than the best FedSGD, and
# with E = 5, B = 10 (section 3) it is there after one round. FedSGD at its best rate is also
# unsteady: it is at 0.83 after five rounds, falls to 0.68 in round 10 and only then climbs. So
# the paper's conclusion holds once each algorithm gets its best rate: FedAvg needs several times
# fewer rounds.
# <!-- END SOLUTION -->

# %% [markdown]
# ### Exercise 4 · Client fraction on non-IID data
#
# Run section 4's three runs (C = 0.1, 0.3, 1.0) on `shards_split`, into `shards_fraction`, with
# the keys of `fraction`. Print each run's mean accuracy over the last five rounds, and how much
# its accuracy changes from round to round, beside the IID runs'.

# %%
shards_fraction = ...  # {"C=0.1": History, ...}: section 4's runs on shards_split
# BEGIN SOLUTION
shards_fraction = {}
for C in (0.1, 0.3, 1.0):
    algorithm = fedlab.FedAvg(local_epochs=1, batch_size=20, client_lr=CLIENT_LR)
    per_round = round(C * NUM_CLIENTS)
    shards_fraction[f"C={C}"] = fedlab.simulate(
        algorithm, model_fn, digits, shards_split, NUM_ROUNDS, per_round, SEED, progress=False
    )
print("mean accuracy of the last 5 rounds (lowest–highest of the last 10)")
for name, run in shards_fraction.items():
    iid, shards = fraction[name].test_accuracy[-10:], run.test_accuracy[-10:]
    print(f"{name:<6} IID {iid[-5:].mean():.2f} ({iid.min():.2f}–{iid.max():.2f})", end="")
    print(f"   shards {shards[-5:].mean():.2f} ({shards.min():.2f}–{shards.max():.2f})")
# END SOLUTION

# %% tags=["self-check"]
exercises.check_runs(
    shards_fraction,
    fraction,
    name="shards_fraction",
    what="section 4's runs",
    split="shards(2/client)",
)

# %% [markdown]
# **Does sampling fewer clients per round hurt more when clients differ? Why?**
#
# <!-- BEGIN SOLUTION -->
# **Model answer.** Much more. On the IID clients the client fraction hardly matters: over the last
# five rounds C = 0.1, 0.3 and 1.0 average 0.88, 0.91 and 0.92. On shards they average 0.26, 0.60
# and 0.87. With one client per round the global model is retrained every round on one client's
# two or three digits and forgets the others: it stays between 0.15 and 0.33 (two or three digits
# of ten), whichever client is drawn. With three clients a round sees about six of the ten digits,
# which ones depends on the draw, and the accuracy swings between 0.48 and 0.69 from round to round.
# Only with every client in every round does each round see every digit. The average of a sample
# of clients estimates the average of all of them; on IID clients every client's update is
# already a good estimate, so a small sample costs little, while on non-IID clients the updates
# differ a lot and a small sample is a poor, noisy estimate — on top of each client's drift
# towards its own digits. Notebook 02 measured the same wobble.
# <!-- END SOLUTION -->

# %% [markdown]
# ### Exercise 5 · The server's step
#
# **(a)** In FedSGD (E = 1, B = ∞) every client takes one step, Δ_k = −η_c · g_k, from the global
# weights w, and the server moves w + η_s · Δ, Δ the clients' mean step. Write `fedsgd_round`: the
# new global weights, given the clients' mean gradient g (one array per layer).

# %%
def fedsgd_round(weights, gradient, client_lr, server_lr):
    """The global weights after one FedSGD round with mean gradient `gradient`."""
    # BEGIN SOLUTION
    return [w - server_lr * client_lr * g for w, g in zip(weights, gradient, strict=True)]
    # END SOLUTION


# %% tags=["self-check"]
exercises.check_fedsgd_round(fedsgd_round)
# BEGIN HIDDEN TESTS
exercises.check_fedsgd_round(fedsgd_round, seed=1)
# END HIDDEN TESTS

# %% [markdown]
# **(b)** For FedSGD, is `server_lr=2.0` the same as `client_lr` doubled? Set `same_for_fedsgd` to
# `True` or `False`.

# %%
same_for_fedsgd = ...  # True or False
# BEGIN SOLUTION
same_for_fedsgd = True  # fedsgd_round depends on the two rates only through their product
# END SOLUTION

# %% tags=["self-check"]
product = "look at fedsgd_round: the two rates appear only as their product η_s · η_c"
exercises.check_choice("same_for_fedsgd", same_for_fedsgd, True, {False: product})

# %% [markdown]
# **(c)** Now with several local steps: run section 2's FedAvg (E = 1, B = 20) once with
# `server_lr=2.0` and once with `client_lr` doubled, into `doubled` with keys `"server_lr=2"` and
# `"client_lr=0.2"`. Print, beside `fedavg`'s, the round each reaches 90 % in, its mean drift
# and its first rounds' accuracy.

# %%
doubled = ...  # {"server_lr=2": History, "client_lr=0.2": History}
# BEGIN SOLUTION
doubled = {
    "server_lr=2": experiment(
        fedlab.FedAvg(local_epochs=1, batch_size=20, client_lr=CLIENT_LR, server_lr=2.0)
    ),
    "client_lr=0.2": experiment(
        fedlab.FedAvg(local_epochs=1, batch_size=20, client_lr=2 * CLIENT_LR)
    ),
}
for name, run in {"FedAvg": fedavg, **doubled}.items():
    first = ", ".join(f"{a:.2f}" for a in run.test_accuracy[:4])
    print(f"{name:<13}: 90 % in round {rounds_to(run)}, drift {mean_drift(run):.2f}; {first}, …")
pair = [fedlab.FedSGD(client_lr=CLIENT_LR, server_lr=2.0), fedlab.FedSGD(client_lr=2 * CLIENT_LR)]
fedsgd_pair = [experiment(algorithm).test_accuracy for algorithm in pair]
print("FedSGD, the same two changes: equal every round:", np.allclose(*fedsgd_pair))
# END SOLUTION

# %% tags=["self-check"]
one_rate = {
    "server_lr": {"server_lr=2": 2.0, "client_lr=0.2": 1.0},
    "client_lr": {"server_lr=2": CLIENT_LR, "client_lr=0.2": 2 * CLIENT_LR},
}
exercises.check_runs(doubled, fedavg, name="doubled", what="section 2's FedAvg", **one_rate)

# %% [markdown]
# **Are they the same thing?**
#
# <!-- BEGIN SOLUTION -->
# **Model answer.** Only for FedSGD. There `fedsgd_round` gives w − η_s η_c g: the two rates
# appear only as their product, and the runs agree round for round. With several local steps
# they differ. Section 2's FedAvg (u ≈ 7 steps of B = 20) with `server_lr` = 2 reaches 90 % in
# round 10, with `client_lr` = 0.2 in round 9, but on different paths (0.64 against 0.52 after
# one round) and with different drift: 0.34 against 0.58. Doubling `client_lr` doubles every
# local step, and each step's gradient is taken where the previous one got to, so the clients
# travel a different and longer path: their drift grows, and with it the harm drift does on
# non-IID clients. Doubling `server_lr` leaves local training as it was (drift 0.34, about the 0.37
# of `server_lr` = 1) and only extends the straight line from w to the average of the clients'
# models, after the fact. Notebook 06 builds on this: the server's step is an optimiser of its
# own (momentum, Adam).
# <!-- END SOLUTION -->

# %% [markdown]
# ### Exercise 6 · Keep a run
#
# Press **Save** on the dashboard of section 6 (or call `dash.save(folder)`), read the
# `history.json` it wrote back with `fedlab.History.load` into `saved`, and draw
# `fedlab.plot.plot_drift(saved)`.

# %%
saved = ...  # the dashboard's run, read back from its history.json
# BEGIN SOLUTION
import tempfile

json_path, png_path = dash.save(tempfile.mkdtemp())  # Save writes into the folder in its box
saved = fedlab.History.load(json_path)
fedlab.plot.plot_drift(saved);
# END SOLUTION

# %% tags=["self-check"]
exercises.check_saved_history(saved, dash.history)
