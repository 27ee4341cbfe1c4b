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
# 1. **The full experiment.** Run `python3 dev.py bench fedprox_stragglers` (about 7 minutes;
#    `--quick` for a 10-round smoke run) and compare its table with the numbers quoted in
#    section 2. Then rerun it with `--iid` (the paper's Synthetic IID,
#    `fedlab.synthetic(..., iid=True)`: one labelling function and one input distribution for
#    every device): does μ = 1 still help, or was it the heterogeneity that made the proximal
#    term pay? (`--alpha 0 --beta 0` is not that control: each device still draws its own
#    labelling function $W_k$.)
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
# 5. **More heterogeneity.** Repeat section 2 on `fedlab.synthetic(0, 0, ...)` (only the devices'
#    labelling functions differ) and on `fedlab.synthetic(1, 1, iid=True, ...)`: when does
#    dropping stragglers cost the least?
