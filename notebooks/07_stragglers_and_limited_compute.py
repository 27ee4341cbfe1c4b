# %% [markdown]
# # 07 · Stragglers and limited compute
#
# *Purpose: see what happens when some clients cannot finish their local work before the round
# ends, compare the two things a server can do about it — leave them out, or use what they
# managed — and reproduce, at small scale, the FedProx paper's stragglers experiment.*
#
# **Goals**
# - Explain **systems heterogeneity** and how `fedlab.Stragglers(fraction, drop)` simulates it,
#   following the FedProx paper's reference code.
# - Read, in a run's `History`, which clients straggled in a round, which were dropped and how
#   many local steps each one made; check that FedAvg and FedProx with the same seed face exactly
#   the same stragglers.
# - Reproduce Li et al. (2020), Fig. 1 on Synthetic(1, 1) with 0 %, 50 % and 90 % stragglers:
#   FedAvg dropping them, FedProx (μ = 0 and μ = 1) keeping their partial work.
# - See what giving *every* client less compute (a smaller E) does, compared with stragglers.
#
# **You will need:** [03 · FedSGD vs FedAvg](03_fedsgd_vs_fedavg.ipynb) (local epochs, the local
# work u = E·n/(K·B)), [04 · Client drift](04_client_drift.ipynb) and
# [05 · FedProx and SCAFFOLD](05_fedprox_and_scaffold.ipynb) (the proximal term μ, Synthetic(1, 1));
# about 45 s to run on a laptop CPU (no GPU needed).

# %% [markdown]
# ## Setup
#
# `import fedlab` comes **first**: it quietens TensorFlow's start-up log lines before TensorFlow
# loads.

# %%
import sys

FEDLAB = "fedlab-edu @ git+https://github.com/fedlab-edu/fedlab"  # what Colab installs
if "google.colab" in sys.modules:  # elsewhere `python3 dev.py lab` has installed fedlab already
    import subprocess

    subprocess.run([sys.executable, "-m", "pip", "install", "-q", FEDLAB], check=True)

# %%
import fedlab  # first: it quietens TensorFlow's start-up log lines

import matplotlib.pyplot as plt
import numpy as np

print(", ".join(f"{name} {version}" for name, version in fedlab.versions().items()))

# %% [markdown]
# The next cell holds the FedProx paper's settings for its synthetic experiment (Li et al. 2020,
# Sec. 5.2), with **two of them shrunk** so that the notebook runs in under a minute: 20 rounds
# instead of 200, and E = 5 local epochs instead of 20. Everything else is the paper's.

# %%
NUM_DEVICES = 30  # Synthetic(1, 1) with its natural split, as in the paper
CLIENTS_PER_ROUND = 10  # K: devices selected each round
LOCAL_EPOCHS = 5  # E (the paper: 20)
BATCH_SIZE = 10  # B
CLIENT_LR = 0.01  # η, local SGD step size
NUM_ROUNDS = 20  # (the paper: 200)
FRACTIONS = (0.0, 0.5, 0.9)  # share of each round's selected devices that straggle
SEED = 0

# %% [markdown]
# ## 1. Systems heterogeneity: clients that cannot finish
#
# Notebooks 04 and 05 were about *statistical* heterogeneity: clients whose data differ. Real
# federated clients also differ as *machines*: a new phone on a charger and Wi-Fi trains many
# times faster than an old one on a weak battery and a mobile network, and some devices are
# simply busy. A real server gives every round a **deadline**. Ask every selected device for
# E local epochs, and some — the **stragglers** — will not have finished when the deadline
# comes. The server can
#
# - **drop them** (FedAvg as the FedProx paper runs it): aggregate only the devices that
#   finished, and throw the stragglers' partial work away; or
# - **keep their partial work** (FedProx): a straggler sends whatever it has after the epochs it
#   managed, and it is averaged like everyone else's, weighted by example count.
#
# With S_t the round's selected devices, D_t ⊆ S_t the stragglers and Δ_k = w_k − w^t a device's
# update, the two policies are
#
# $$w^{t+1} = w^t + \sum_{k \in S_t \setminus D_t} \frac{n_k}{\sum_{j \in S_t \setminus D_t} n_j}\,\Delta_k
# \quad\text{(drop)}, \qquad
# w^{t+1} = w^t + \sum_{k \in S_t} \frac{n_k}{\sum_{j \in S_t} n_j}\,\Delta_k
# \quad\text{(keep)},$$
#
# where a straggler's Δ_k comes from fewer epochs. FedProx's analysis allows exactly this: each
# device only has to solve its local problem $\min_w F_k(w) + \frac{\mu}{2}\|w - w^t\|^2$
# *inexactly*, to a tolerance γ_k^t that may differ from device to device and round to round
# (Li et al. 2020, Definition 2); the proximal term keeps a device that does a lot of work from
# wandering off, whichever amount of work it did.
#
# **How `fedlab.Stragglers(fraction, drop)` simulates it** (`fedlab/stragglers.py`, after the
# paper's reference code): of the K devices selected in a round, K − round(K·(1 − fraction)) are
# drawn at random as stragglers; each does x local epochs with x uniform in {1, …, E − 1} (the
# reference code's `np.random.randint(1, E)`) — the first x epochs of the mini-batches it would have
# used. `drop=True` leaves them out, `drop=False` aggregates their partial updates. Who straggles
# and how much depend only on the seed, the round and the selected devices, never on the
# algorithm.
#
# The data: Synthetic(1, 1), 30 devices with their own labelling functions and their own input
# distributions, and very different sizes.

# %% tags=["nbval-check-output"]
data = fedlab.synthetic(1, 1, num_clients=NUM_DEVICES, seed=SEED)
split = fedlab.partition.natural(data.client_ids, data.y_train, data.num_classes)
sizes = split.sizes
full_steps = LOCAL_EPOCHS * np.ceil(sizes / BATCH_SIZE).astype(int)  # E epochs of batches
low, high, median = sizes.min(), sizes.max(), np.median(sizes)
print(f"{len(sizes)} devices of {low}-{high} training examples (median {median:.0f})")
print(f"E = {LOCAL_EPOCHS}, B = {BATCH_SIZE}: {full_steps.min()}-{full_steps.max()} local steps")


# %% [markdown]
# The model is the paper's multinomial logistic regression, a single dense layer of logits
# (`fedlab.models.logistic_regression`). One more copy of it, `evaluator`, will score weights.

# %%
def model_fn():
    return fedlab.models.logistic_regression(data.num_classes)


evaluator, _ = fedlab.steps.initialize(model_fn, data.x_train, SEED)  # a model to score weights


# %% [markdown]
# The paper plots the **training loss of the global model**, f(w^t) = Σ_k (n_k/n) F_k(w^t): the
# mean loss over all 30 devices' training data. That is *not* `history.train_loss`, which is the
# mean loss the round's participants saw *during* their local training (with 90 % of the devices
# dropped it is the loss of a single device on its own data). So `run` below steps a
# `fedlab.Simulation` round by round and scores the global model on all training data after each
# round with `fedlab.steps.evaluate`.

# %%
def run(algorithm, stragglers=None):
    """NUM_ROUNDS rounds; the History and the global model's training loss after each round."""
    sim = fedlab.Simulation(
        algorithm, model_fn, data, split, CLIENTS_PER_ROUND, seed=SEED, stragglers=stragglers
    )
    loss = []
    for _ in range(NUM_ROUNDS):
        sim.step()
        loss.append(fedlab.steps.evaluate(evaluator, sim.weights, data.x_train, data.y_train)[0])
    return sim.history, np.array(loss)


# %% [markdown]
# The paper's three ways of dealing with stragglers, each an algorithm and a `drop` setting. At
# μ = 0 FedProx *is* FedAvg, so the first two differ only in what happens to the stragglers.

# %%
settings = dict(local_epochs=LOCAL_EPOCHS, batch_size=BATCH_SIZE, client_lr=CLIENT_LR)
METHODS = {  # name: (algorithm, drop the stragglers?)
    "FedAvg, drop": (fedlab.FedAvg(**settings), True),
    "FedProx μ=0, keep": (fedlab.FedProx(mu=0.0, **settings), False),
    "FedProx μ=1, keep": (fedlab.FedProx(mu=1.0, **settings), False),
}


def run_method(name, fraction):
    algorithm, drop = METHODS[name]
    return run(algorithm, fedlab.Stragglers(fraction, drop=drop))


# %% [markdown]
# Two runs with half of every round's devices straggling, one per policy (about 8 s). They are
# kept in `runs` for section 2, keyed by (fraction, method).

# %%
runs = {}
for name in ("FedAvg, drop", "FedProx μ=0, keep"):
    runs[0.5, name] = run_method(name, 0.5)
dropping, keeping = runs[0.5, "FedAvg, drop"][0], runs[0.5, "FedProx μ=0, keep"][0]

# %% [markdown]
# Round 1 as each run recorded it. `record.stragglers` are the selected devices that straggled,
# `record.dropped` those left out, `record.clients` those aggregated, and `record.client_steps`
# the local SGD steps each aggregated device made — against the full E·⌈n_k/B⌉ it was asked for.

# %% tags=["nbval-check-output"]
first_drop, first_keep = dropping.rounds[0], keeping.rounds[0]
print("stragglers:", first_keep.stragglers)
print("dropped by FedAvg:", first_drop.dropped, " by FedProx:", first_keep.dropped)
for k, done in zip(first_keep.clients, first_keep.client_steps, strict=True):
    epochs = done * LOCAL_EPOCHS // full_steps[k]
    note = f"  straggler: {epochs} of {LOCAL_EPOCHS} epochs" if k in first_keep.stragglers else ""
    print(f"device {k:2d}: {sizes[k]:3d} examples, {done:3d} of {full_steps[k]:3d} steps{note}")
print("FedAvg aggregated:", first_drop.clients, "with steps", first_drop.client_steps)

# %% [markdown]
# Five of the ten selected devices straggle (10 − round(10 · 0.5) = 5), each managing 1 to 4 of
# its 5 epochs: device 28 stopped after one epoch (7 of its 35 steps), device 24 after four (140 of
# 175). FedProx aggregates all ten updates, the stragglers' partial ones included. FedAvg
# aggregates only the five devices that finished — and one of those, device 6, holds 711 of their
# 977 examples, so this round's new global model is 73 % device 6's update (with the stragglers
# kept, 40 %). Dropping stragglers does not just throw work away: it hands the round to whoever
# happened to finish.
#
# The same seed gives the same stragglers whichever algorithm runs — otherwise comparing the
# policies would be comparing luck. A check over every round of the two runs:

# %% tags=["nbval-check-output"]
for r_drop, r_keep in zip(dropping.rounds, keeping.rounds, strict=True):
    assert r_drop.stragglers == r_keep.stragglers  # the same devices straggle...
    assert r_drop.dropped == r_drop.stragglers and r_keep.dropped == ()  # ...policies differ
    finished = [k for k in r_keep.clients if k not in r_keep.stragglers]
    assert list(r_drop.clients) == finished  # FedAvg aggregates exactly the others
print(f"same stragglers in all {NUM_ROUNDS} rounds ✓")
per_round = dropping.num_participants.mean(), keeping.num_participants.mean()
print("devices aggregated per round: FedAvg {:.0f}, FedProx {:.0f}".format(*per_round))

# %% [markdown]
# ## 2. The FedProx paper's experiment, small
#
# Li et al. (2020), Sec. 5.2 and Fig. 1: Synthetic(1, 1), 30 devices, multinomial logistic
# regression, 10 devices per round, B = 10, η = 0.01, and 0 %, 50 % or 90 % stragglers; three
# methods. Here, to fit in a notebook:
#
# | | paper | here |
# |---|---|---|
# | rounds | 200 | **20** |
# | local epochs E | 20 | **5** (stragglers do 1–4) |
# | everything else | | the same |
#
# The full-size run (200 rounds, E = 20; about 7 minutes on two cores) is the benchmark
# `python3 dev.py bench fedprox_stragglers` (`benchmarks/bench_fedprox_stragglers.py`, described in
# `benchmarks/README.md`). Two more differences from the paper, also the benchmark's: fedlab samples
# devices uniformly and weights their updates by example count (the paper samples by example count
# and averages uniformly; the same in expectation), and the paper's model has a small L2 penalty.
#
# Two of the nine runs are done. At 0 % there is nothing to drop and FedProx with μ = 0 is FedAvg,
# so "FedAvg, drop" would repeat "FedProx μ=0, keep" to the last digit (the benchmark prints both
# as a built-in check); one run serves for both. That leaves six (about 25 s):

# %%
for fraction in FRACTIONS:
    for name in METHODS:
        if (fraction, name) not in runs and (fraction, name) != (0.0, "FedAvg, drop"):
            runs[fraction, name] = run_method(name, fraction)
runs[0.0, "FedAvg, drop"] = runs[0.0, "FedProx μ=0, keep"]  # identical: see above

# %% [markdown]
# The training loss of the global model, one panel per share of stragglers, as in the paper's
# figure:

# %%
fig, axes = plt.subplots(1, 3, figsize=(12, 3.4), sharey=True, layout="constrained")
for ax, fraction in zip(axes, FRACTIONS, strict=True):
    for name, style in zip(METHODS, ("-", "--", "-"), strict=True):
        ax.plot(np.arange(1, NUM_ROUNDS + 1), runs[fraction, name][1], style, label=name)
    ax.set(title=f"{fraction:.0%} stragglers", xlabel="round")
axes[0].set_ylabel("training loss f(w)")
axes[0].legend(fontsize="small");


# %% [markdown]
# And the numbers after the last round: the global model's training loss and test accuracy, how
# many devices were aggregated per round, and the local steps those devices made in all (the
# computation the server actually used).

# %% tags=["nbval-check-output"]
def steps_used(history):
    return sum(sum(r.client_steps) for r in history.rounds)  # local steps aggregated, all rounds


print(f"{'stragglers':>10}  {'method':<18}{'loss':>7}{'test acc':>9}{'devices':>8}{'steps':>7}")
for (fraction, name), (history, loss) in sorted(runs.items()):
    accuracy, devices = history.test_accuracy[-1], history.num_participants.mean()
    print(f"{fraction:>10.0%}  {name:<18}{loss[-1]:>7.3f}{accuracy:>9.3f}{devices:>8.1f}", end="")
    print(f"{steps_used(history):>7}")

# %% [markdown]
# What this run shows, in the table and the figure:
#
# - **0 % stragglers**: nothing to drop, and the two μ = 0 runs are one (the blue curve is hidden
#   under the dashed one): training loss about 1.07, test accuracy about 0.65 after 20 rounds.
#   μ = 1 is a little behind (about 1.14): its proximal term pulls every device back towards w^t,
#   and here that mostly slows progress.
# - **Dropping stragglers hurts more as their share grows.** At 50 % FedAvg hears from 5 devices a
#   round; it stays near 2.5 until round 8 while the others fall to about 1.9 in round 4, and ends
#   at about 1.34 (test accuracy about 0.55) against about 1.08 (0.64) for keeping the partial
#   work. At 90 % the server hears from a single device a round and the global model lurches
#   towards whichever it is: the loss *rises*, from about 2.5 in round 4 to about 3.6 in round 13,
#   and is still about 2.8 after 20 rounds (test accuracy about 0.38).
# - **Keeping partial work costs almost nothing.** FedProx μ = 0 with 90 % stragglers ends at
#   about 1.10, against about 1.07 with none — on 9280 local steps instead of 16615. Partial work
#   from ten devices is worth far more than complete work from one.
# - **μ = 1 did not help in this short run.** It trails μ = 0 by roughly 0.05–0.07 at every share
#   (about 1.14–1.15). It is the least disturbed by stragglers (its loss moves by about 0.01 from
#   0 % to 90 %, μ = 0's by about 0.03), and its test accuracy at 50 % and 90 % is within a hair
#   of μ = 0's (all about 0.63–0.64): these are small differences.
#
# The paper's Fig. 1 shows the first two effects too: the more stragglers, the worse dropping them
# gets, and keeping their partial work helps. Its third finding — that μ > 0 makes training
# markedly more stable on heterogeneous data — comes from 200 rounds of E = 20 epochs: four times
# the local steps per round, so unconstrained devices drift much further, and ten times the
# rounds. We ran that full size once (`python3 dev.py bench fedprox_stragglers`, about 7 minutes
# on two cores). After 200 rounds with 90 % stragglers, dropping them ends at training loss about
# 0.82 (test accuracy about 0.70), keeping their partial work at about 0.39 (0.85) with μ = 0 and
# 0.36 (0.87) with μ = 1. There μ = 1 had the lowest loss at 0 % and 90 % stragglers; at 50 %
# dropping was a hair lower in loss (about 0.34 against 0.36) but not in accuracy (about 0.86
# against 0.88).

# %% [markdown]
# ## 3. Limited compute for everyone: a smaller E
#
# Stragglers are *some* devices doing less. The other way to live with a deadline is to ask
# *every* device for less: a smaller E. Notebook [03](03_fedsgd_vs_fedavg.ipynb) showed the trade:
# fewer local steps per round (u = E·n/(K·B)) mean less **client drift**, but also less progress
# per round. One more run, FedAvg with E = 1 and no stragglers, against the E = 5 run of
# section 2 (at 0 % stragglers):

# %% tags=["nbval-check-output"]
small_e = run(fedlab.FedAvg(local_epochs=1, batch_size=BATCH_SIZE, client_lr=CLIENT_LR))
compare = {
    "E=5, no stragglers": runs[0.0, "FedProx μ=0, keep"],
    "E=5, 90% stragglers kept": runs[0.9, "FedProx μ=0, keep"],
    "E=1, no stragglers": small_e,
}
print(f"{'run':<26}{'loss':>7}{'drift':>7}{'steps':>7}")
for name, (history, loss) in compare.items():
    drift = history.drift_mean.mean()
    print(f"{name:<26}{loss[-1]:>7.3f}{drift:>7.3f}{steps_used(history):>7}")

# %% [markdown]
# Five times less local work for everyone (E = 1: 3323 steps in all instead of 16615) costs only
# about 0.09 of training loss after 20 rounds (about 1.16 against 1.07), and cuts the mean client
# drift from about 0.53 to 0.33. The run with 90 % stragglers kept lies in between on every count
# (loss about 1.10, drift about 0.44, 9280 steps). This is the trade of notebook 03: local steps
# buy progress per round and cost drift. On this problem, with η = 0.01 and devices whose
# labelling functions differ, extra local epochs buy little progress — which is also why the
# stragglers' missing epochs cost so little, while the missing *devices* of "FedAvg, drop" cost a
# lot. Which way a real system should go depends on how much progress a round's local work buys;
# measure it, as here.

# %% [markdown]
# ## Summary
#
# - **Systems heterogeneity**: with a round deadline, some selected devices (the stragglers) finish
#   only part of their E epochs. `fedlab.Stragglers(fraction, drop)` simulates it as the FedProx
#   paper's code does: K − round(K·(1 − fraction)) stragglers a round, each doing 1 to E − 1
#   epochs; `history.rounds[r].stragglers`, `.dropped` and `.client_steps` record it, and the same
#   seed gives the same stragglers for every algorithm.
# - **Dropping stragglers** leaves the server with fewer devices, whichever happened to finish (in
#   round 1 one device got 73 % of the weight). On Synthetic(1, 1) after 20 rounds: training loss
#   about 1.34 at 50 % stragglers and 2.8 at 90 % (test accuracy about 0.55 and 0.38), against
#   about 1.07 with none.
# - **Keeping partial work** (FedProx) barely noticed the stragglers: about 1.08 at 50 %, 1.10 at
#   90 %.
# - **The proximal term μ = 1** trailed μ = 0 slightly (about 1.14–1.15) in this 20-round, E = 5
#   version; at the paper's full size (200 rounds, E = 20) it had the lowest loss at 90 %
#   stragglers: about 0.36 against 0.39 for μ = 0 and 0.82 for dropping.
# - **Less compute for everyone** (E = 1 instead of 5) cut drift from about 0.53 to 0.33 and the
#   local steps fivefold, for about 0.09 more training loss: here the devices' epochs mattered
#   far less than which devices were heard.
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
# 1. **The full experiment, and its control.** Rerun section 2's 90 % runs on the paper's
#    Synthetic IID (`fedlab.synthetic(..., iid=True)`: one labelling function and one input
#    distribution for every device): does μ = 1 help there, or was it the heterogeneity that made
#    the proximal term pay? Then, outside the notebook, run `python3 dev.py bench
#    fedprox_stragglers` (about 7 minutes; `--quick` for a 10-round smoke run), compare its table
#    with the numbers quoted in section 2, and rerun it with `--iid`. (`--alpha 0 --beta 0` is not
#    that control: each device still draws its own labelling function $W_k$.)
# 2. **Slow, but not that slow.** `fedlab.Stragglers(0.9, drop=False, min_epochs=3)` lets every
#    straggler finish at least 3 of the 5 epochs. Rerun the 90 % "keep" runs with it: how much of
#    the gap to 0 % stragglers closes? Count the steps used, as in the table.
# 3. **How many take part?** Plot `history.num_participants` of the three "FedAvg, drop" runs
#    against the round. With 10 devices per round, why is it exactly 5 at 50 % and 1 at 90 % (hint:
#    `fedlab.Stragglers(0.9).num_stragglers(10)`; see `fedlab.Stragglers.num_stragglers`)? What
#    would a real server do when *every* device straggles — and what does fedlab do
#    (`fedlab.Stragglers(1.0, drop=True)`)?
# 4. **Stragglers and SCAFFOLD.** `fedlab.Scaffold(**settings)` with `fedlab.Stragglers(0.9,
#    drop=False)`: a straggler's control variate is computed from fewer steps. Compare its loss
#    curve with FedProx μ = 0 at 90 %; look at its `fedlab.History.client_state_norm`.
# 5. **More heterogeneity.** Repeat section 2's 90 % runs on `fedlab.synthetic(0, 0, ...)` (only
#    the devices' labelling functions differ) and compare with Synthetic(1, 1) and the IID control
#    of exercise 1: when does dropping stragglers cost the least?

# %%
from fedlab import exercises

# %% [markdown]
# ### Exercise 1 · The full experiment, and its control
#
# `run` trains on `data`. For another dataset with the same 30 devices, `run_on` does the same:
# its natural split, the same model, seed and rounds, and the global model's training loss after
# each round.

# %%
def run_on(dataset, algorithm, stragglers=None):
    """`run` on another dataset: its History and the global model's training loss per round."""
    devices = fedlab.partition.natural(dataset.client_ids, dataset.y_train, dataset.num_classes)
    sim = fedlab.Simulation(
        algorithm, model_fn, dataset, devices, CLIENTS_PER_ROUND, seed=SEED, stragglers=stragglers
    )
    loss = []
    for _ in range(NUM_ROUNDS):
        sim.step()
        scored = fedlab.steps.evaluate(evaluator, sim.weights, dataset.x_train, dataset.y_train)
        loss.append(scored[0])
    return sim.history, np.array(loss)


# %% [markdown]
# **(a)** Make `iid_data`, the paper's Synthetic IID (`fedlab.synthetic(1, 1, num_clients=
# NUM_DEVICES, seed=SEED, iid=True)`), and run the three methods of section 2 on it with 90 %
# stragglers, into `iid_runs`, a dict keyed by the method's name. Print each one's final training
# loss beside section 2's on Synthetic(1, 1).

# %%
iid_data = ...  # Synthetic IID: fedlab.synthetic(..., iid=True)
iid_runs = ...  # {method name: run_on(iid_data, ...)}, 90 % stragglers
# BEGIN SOLUTION
iid_data = fedlab.synthetic(1, 1, num_clients=NUM_DEVICES, seed=SEED, iid=True)
iid_runs = {}
for name, (algorithm, drop) in METHODS.items():
    iid_runs[name] = run_on(iid_data, algorithm, fedlab.Stragglers(0.9, drop=drop))
print(f"90 % stragglers     {'Synthetic(1, 1)':>16}{'IID':>8}")
for name, (_, loss) in iid_runs.items():
    print(f"{name:<18}{runs[0.9, name][1][-1]:>17.3f}{loss[-1]:>8.3f}")
# END SOLUTION

# %% tags=["self-check"]
at_90 = {name: runs[0.9, name] for name in METHODS}
iid = {"dataset": "synthetic-iid"}
exercises.check_straggler_runs(
    iid_runs, at_90, name="iid_runs", what="section 2's 90 % runs", **iid
)

# %% [markdown]
# **(b)** Does μ = 1 help on IID devices? And at the paper's size (the benchmark, with and without
# `--iid`)?
#
# <!-- BEGIN SOLUTION -->
# **Model answer.** At this notebook's size μ = 1 helps nowhere, and on IID devices it hurts
# most: with 90 % stragglers it ends at 1.769 against μ = 0's 1.612, 0.16 worse, where on
# Synthetic(1, 1) it was 0.055 worse (1.153 against 1.098). IID devices all walk towards the same
# optimum, so there is no drift for the proximal term to hold back; pulling each device towards
# w^t only slows it down. The benchmark says the same at the paper's size. Without `--iid` its
# table gives section 2's numbers (90 % stragglers: 0.82 for dropping, 0.39 for μ = 0 and 0.36
# for μ = 1; about 7 minutes on two cores), and μ = 1 has the lowest loss at 0 % (0.35 against
# 0.43) and at 90 %. With `--iid`, μ = 1 is far behind at every share of stragglers: 0.96
# against 0.49 at 0 %, 0.99 against 0.54 at 50 %, 1.01 against 0.62 at 90 % (test accuracy about
# 0.72 against 0.81–0.86). The benchmark's gradient dissimilarity shows why: about 20–34 on
# Synthetic(1, 1) (μ = 1 lowers it from 31 to 20 at 0 %) and about 0.01–0.02 on the IID data,
# where there is no disagreement between devices to correct. So it was the heterogeneity that
# made the proximal term pay: it is a remedy for drift, and its price, slower local progress, is
# all that IID devices get from it. (On the IID data dropping stragglers also costs little, 0.66
# against 0.62 at 90 %, and at 50 % dropping is even a little lower: exercise 5 measures it.)
# <!-- END SOLUTION -->

# %% [markdown]
# ### Exercise 2 · Slow, but not that slow
#
# **(a)** Rerun the two 90 % "keep" runs of section 2 with `fedlab.Stragglers(0.9, drop=False,
# min_epochs=3)`, into `min3_runs`, keyed by the method's name. Print their final loss and the
# steps they used beside section 2's runs at 90 % and at 0 %.

# %%
min3_runs = ...  # {"FedProx μ=0, keep": ..., "FedProx μ=1, keep": ...}, min_epochs=3
# BEGIN SOLUTION
slower = fedlab.Stragglers(0.9, drop=False, min_epochs=3)
keepers = ("FedProx μ=0, keep", "FedProx μ=1, keep")
min3_runs = {name: run(METHODS[name][0], slower) for name in keepers}
print("final loss (steps used)  90 %            90 %, ≥ 3 epochs  0 %")
for name in keepers:
    cells = [runs[0.9, name], min3_runs[name], runs[0.0, name]]
    text = [f"{loss[-1]:.3f} ({steps_used(history)})" for history, loss in cells]
    print(f"{name:<24}" + "".join(f"{t:<18}" for t in text))
# END SOLUTION

# %% tags=["self-check"]
keep_90 = {name: runs[0.9, name] for name in ("FedProx μ=0, keep", "FedProx μ=1, keep")}
at_least_3 = {"min_epochs": 3}
exercises.check_straggler_runs(
    min3_runs, keep_90, name="min3_runs", what="section 2's 90 % keep runs", stragglers=at_least_3
)

# %% [markdown]
# **(b)** For each of the two, compute the share of the gap between 90 % and 0 % stragglers
# (final training loss) that `min_epochs=3` closes, into `gap_closed`, keyed like `min3_runs`.

# %%
gap_closed = ...  # {method name: (L_90 − L_min3) / (L_90 − L_0)}
# BEGIN SOLUTION
gap_closed = {}
for name, (_, loss) in min3_runs.items():
    at_90, at_0 = runs[0.9, name][1][-1], runs[0.0, name][1][-1]
    gap_closed[name] = (at_90 - loss[-1]) / (at_90 - at_0)
print({name: f"{share:.0%}" for name, share in gap_closed.items()})
# END SOLUTION

# %% tags=["self-check"]
exercises.check_gap_closed(gap_closed, min3_runs, runs)

# %% [markdown]
# **(c)** How much of the gap closes, and for how many more steps?
#
# <!-- BEGIN SOLUTION -->
# **Model answer.** With at least 3 of the 5 epochs for every straggler, FedProx μ = 0 at 90 %
# ends at 1.079 instead of 1.098, against 1.066 with no stragglers: 60 % of the gap closes; for
# μ = 1 (1.143 instead of 1.153, against 1.139) 70 %. It costs 12 253 local steps instead of
# 9 280, a third more, still three quarters of the 16 615 of a round without stragglers. The
# gap was small to begin with (0.03 in loss for μ = 0, 0.014 for μ = 1): the partial work of ten
# devices was already nearly as good as their full work, and the extra epochs buy little, as
# E = 1 against E = 5 in section 3 showed. On this problem a deadline that cuts epochs is cheap;
# one that cuts devices ("FedAvg, drop") is not.
# <!-- END SOLUTION -->

# %% [markdown]
# ### Exercise 3 · How many take part?
#
# **(a)** Plot `history.num_participants` of the three "FedAvg, drop" runs against the round.

# %%
# BEGIN SOLUTION
fig, ax = plt.subplots(figsize=(6, 3), layout="constrained")
for fraction in FRACTIONS:
    history = runs[fraction, "FedAvg, drop"][0]
    ax.plot(history.round, history.num_participants, marker="o", label=f"{fraction:.0%}")
ax.set(xlabel="round", ylabel="devices aggregated", ylim=(0, 11), xticks=range(0, 21, 5))
ax.legend(title="stragglers");
# END SOLUTION

# %% [markdown]
# **(b)** Write `num_stragglers(fraction, num_selected)`: how many of a round's selected devices
# straggle, as section 1 says fedlab counts them.

# %%
def num_stragglers(fraction, num_selected):
    """How many of `num_selected` devices straggle when a `fraction` of them do."""
    # BEGIN SOLUTION
    return num_selected - round(num_selected * (1 - fraction))
    # END SOLUTION


# %% tags=["self-check"]
exercises.check_num_stragglers(num_stragglers)
# BEGIN HIDDEN TESTS
exercises.check_num_stragglers(num_stragglers, seed=1)
# END HIDDEN TESTS

# %% [markdown]
# **(c)** Run FedAvg with `fedlab.Stragglers(1.0, drop=True)`, every device a straggler, into
# `all_dropped`, and set `model_changed` to whether the global model ever changed.

# %%
all_dropped = ...  # run(...) with every device straggling and dropped
model_changed = ...  # True or False: did the global model change in any round?
# BEGIN SOLUTION
all_dropped = run(METHODS["FedAvg, drop"][0], fedlab.Stragglers(1.0, drop=True))
history, loss = all_dropped
model_changed = bool(np.ptp(loss) > 0)
print("devices aggregated per round:", history.num_participants.max())
print(f"training loss from {loss.min():.3f} to {loss.max():.3f} over the {NUM_ROUNDS} rounds")
# END SOLUTION

# %% tags=["self-check"]
everyone = {"fraction": 1.0}
reference = runs[0.9, "FedAvg, drop"]
what = "section 2's FedAvg at 90 %"
exercises.check_straggler_runs(
    all_dropped, reference, name="all_dropped", what=what, stragglers=everyone
)
nobody = "with nobody to aggregate, the server keeps w: look at the loss, round by round"
exercises.check_choice("model_changed", model_changed, False, {True: nobody})

# %% [markdown]
# **(d)** Why is it exactly 5 at 50 % and 1 at 90 %? What would a real server do when every
# device straggles, and what does fedlab do?
#
# <!-- BEGIN SOLUTION -->
# **Model answer.** The *number* of stragglers is not random, only *which* devices straggle:
# `fedlab.Stragglers` makes K − round(K · (1 − fraction)) of the K = 10 selected devices
# straggle, 10 − round(5) = 5 at 50 % and 10 − round(1) = 9 at 90 %, and "FedAvg, drop"
# aggregates the rest, 5 and 1, in every round (the flat lines of the plot). The count rounds
# the devices that *finish*, as the paper's code does; rounding K · fraction instead gives the
# same for K = 10 but not always (K = 5 at 50 %: 3 stragglers, not 2). When every device
# straggles, fedlab's round happens, nobody is aggregated (0 devices) and the global model stays
# as it was: the training loss is 3.224, the initial model's, in all 20 rounds — twenty wasted
# rounds (the paper's code would divide by zero). A real server would not waste them: it would
# wait longer (a later deadline), use whatever partial work arrived (the "keep" policy), or,
# as production systems do, select more devices than it needs and close the round with the
# first ones to report (Bonawitz et al. 2019, *Towards federated learning at scale*), retrying a
# round that gets too few.
# <!-- END SOLUTION -->

# %% [markdown]
# ### Exercise 4 · Stragglers and SCAFFOLD
#
# Run `fedlab.Scaffold(**settings)` with `fedlab.Stragglers(0.9, drop=False)` into `scaffold_90`.
# Plot its training loss beside FedProx μ = 0's at 90 % and SCAFFOLD's without stragglers, and
# the `fedlab.History.client_state_norm` of both SCAFFOLD runs.

# %%
scaffold_90 = ...  # run(...): SCAFFOLD, 90 % stragglers, partial work kept
# BEGIN SOLUTION
scaffold_90 = run(fedlab.Scaffold(**settings), fedlab.Stragglers(0.9, drop=False))
scaffold_0 = run(fedlab.Scaffold(**settings))
curves = {"FedProx μ=0, 90 %": runs[0.9, "FedProx μ=0, keep"], "SCAFFOLD, 90 %": scaffold_90}
curves["SCAFFOLD, 0 %"] = scaffold_0
fig, (ax_loss, ax_state) = plt.subplots(1, 2, figsize=(10, 3), layout="constrained")
print("training loss in rounds 5, 10, 15 and 20")
for name, (history, loss) in curves.items():
    (line,) = ax_loss.plot(history.round, loss, label=name)
    print(f"{name:<18}" + ", ".join(f"{loss[r - 1]:.2f}" for r in (5, 10, 15, 20)))
    if name.startswith("SCAFFOLD"):
        norm = history.client_state_norm
        ax_state.plot(history.round, norm, color=line.get_color())
        print(f"{'':<18}mean ‖c_k‖ up to {norm.max():.2f}, {norm[-1]:.2f} after round 20")
ax_loss.set(xlabel="round", ylabel="training loss f(w)", xticks=range(0, 21, 5))
ax_state.set(xlabel="round", title="SCAFFOLD: mean ‖c_k‖", xticks=range(0, 21, 5))
ax_loss.legend();
# END SOLUTION

# %% tags=["self-check"]
exercises.check_straggler_runs(
    scaffold_90,
    runs[0.9, "FedAvg, drop"],
    name="scaffold_90",
    what="section 2's 90 % runs",
    algorithm="SCAFFOLD",
    stragglers={"drop": False},
)

# %% [markdown]
# **How does SCAFFOLD cope with partial work, and what do its control variates do?**
#
# <!-- BEGIN SOLUTION -->
# **Model answer.** Well: with 90 % stragglers SCAFFOLD ends at a training loss of 0.60,
# against 1.10 for FedProx μ = 0 with the same stragglers, and no worse than SCAFFOLD without
# stragglers (0.80 after round 20, 0.72 in round 15: both SCAFFOLD curves wobble by 0.1–0.2
# from round to round in the second half, so the two are about equal); both are bumpy early on,
# the one with stragglers jumping back to 2.38 in round 5. Partial work does not break it because
# fedlab updates a device's control variate from the steps the device actually took,
# c_k ← c_k − c + (w − w_k) / (K_k · η) with K_k its own number of steps: a straggler's variate
# is still an average gradient, over a shorter path. The norms show the difference: the mean
# ‖c_k‖ climbs to 3.2 with stragglers against 1.8 without, and ends at 1.9 against 1.1. An
# average over a device's first few steps leaves out the later steps, where local training has
# already made the device's gradient smaller, so it is larger. The variates are also a memory:
# a device keeps its variate until it is selected again (10 of 30 a round), so a short-path
# estimate stays in use for several rounds.
# <!-- END SOLUTION -->

# %% [markdown]
# ### Exercise 5 · More heterogeneity
#
# **(a)** Run "FedAvg, drop" and "FedProx μ=0, keep" with 90 % stragglers on
# `fedlab.synthetic(0, 0, num_clients=NUM_DEVICES, seed=SEED)` (only the devices' labelling
# functions differ), into `s00_runs`, keyed by the method's name.

# %%
s00_runs = ...  # {"FedAvg, drop": ..., "FedProx μ=0, keep": ...} on Synthetic(0, 0)
# BEGIN SOLUTION
s00 = fedlab.synthetic(0, 0, num_clients=NUM_DEVICES, seed=SEED)
s00_runs = {}
for name in ("FedAvg, drop", "FedProx μ=0, keep"):
    algorithm, drop = METHODS[name]
    s00_runs[name] = run_on(s00, algorithm, fedlab.Stragglers(0.9, drop=drop))
# END SOLUTION

# %% tags=["self-check"]
pair_90 = {name: runs[0.9, name] for name in ("FedAvg, drop", "FedProx μ=0, keep")}
s00_wanted = {"dataset": "synthetic(0,0)"}
exercises.check_straggler_runs(
    s00_runs, pair_90, name="s00_runs", what="section 2's 90 % runs", **s00_wanted
)

# %% [markdown]
# **(b)** For each dataset, compute what dropping the stragglers costs: the final training loss of
# "FedAvg, drop" minus that of "FedProx μ=0, keep", at 90 %, into `drop_cost` with the keys
# `"Synthetic(1, 1)"`, `"Synthetic(0, 0)"` and `"IID"` (exercise 1's runs).

# %%
drop_cost = ...  # {"Synthetic(1, 1)": ..., "Synthetic(0, 0)": ..., "IID": ...}
# BEGIN SOLUTION
heterogeneous = {name: runs[0.9, name] for name in s00_runs}
on = {"Synthetic(1, 1)": heterogeneous, "Synthetic(0, 0)": s00_runs, "IID": iid_runs}
drop_cost = {
    label: pairs["FedAvg, drop"][1][-1] - pairs["FedProx μ=0, keep"][1][-1]
    for label, pairs in on.items()
}
print({label: round(float(cost), 3) for label, cost in drop_cost.items()})
# END SOLUTION

# %% tags=["self-check"]
datasets = {"Synthetic(1, 1)": pair_90, "Synthetic(0, 0)": s00_runs, "IID": iid_runs}
exercises.check_drop_cost(drop_cost, datasets)

# %% [markdown]
# **(c)** When does dropping stragglers cost the least, and why?
#
# <!-- BEGIN SOLUTION -->
# **Model answer.** Dropping stragglers costs least on the IID control: 0.04 in final training
# loss (1.648 against 1.612), against 1.21 on Synthetic(0, 0) (2.48 against 1.28) and 1.66 on
# Synthetic(1, 1) (2.76 against 1.10). On IID devices every device's data look like everyone's:
# a round that hears from one device takes a smaller, noisier step, but towards the same
# optimum, so it is almost as good as ten partial updates. On Synthetic(0, 0) every device has
# its own labelling function: a single device pulls the global model towards *its* function,
# and the next round another device pulls it elsewhere. Synthetic(1, 1) adds devices whose
# inputs differ too (β = 1; α changes no label, as `fedlab.synthetic`'s documentation notes):
# each device also sees its own region of the input space, and the pulls are larger still. So the
# cost of hearing few devices grows with how much the devices differ, just as the client
# fraction did in notebook 03 (exercise 4). (The losses themselves are on different problems:
# compare the differences, not the levels.)
# <!-- END SOLUTION -->
