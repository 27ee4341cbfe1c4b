# %% [markdown]
# # 06 · Server optimisers: server learning rate, FedAvgM, FedAdam, FedYogi
#
# *Purpose: see that the server's half of FedAvg is one step of an optimiser, swap in momentum
# and adaptive optimisers (Adam, Yogi, Adagrad), and measure when they help and when they do not.*
#
# **Goals**
# - Read the averaged client update Δ as a **pseudo-gradient** −Δ, and write the server update
#   rules of server SGD, momentum (FedAvgM), Adam, Yogi and Adagrad.
# - Apply `fedlab`'s `ServerMomentum` and `ServerAdam` to a two-number weight vector and check
#   them against a few lines of NumPy.
# - Measure what the **server learning rate** η does on non-IID clients.
# - Compare FedAvg, FedAvgM, FedAdam, FedYogi and FedAdagrad on non-IID clients with partial
#   participation, with the **effective step** η/(1−β) in mind, and on IID clients as a control.
#
# **You will need:** [03 · FedSGD vs FedAvg](03_fedsgd_vs_fedavg.ipynb) (rounds, E, B, client
# lr), [04 · client drift](04_client_drift.ipynb) (why non-IID clients pull apart) and
# [05 · FedProx and SCAFFOLD](05_fedprox_and_scaffold.ipynb) (the client-side fixes for drift);
# about 40 s to run on a laptop CPU (no GPU needed).

# %% [markdown]
# ## Setup
#
# `import fedlab` comes **first**: it quietens TensorFlow's start-up log lines.

# %%
import sys

FEDLAB = "fedlab-edu @ git+https://github.com/fedlab-edu/fedlab"  # what Colab installs
if "google.colab" in sys.modules:  # elsewhere `python3 dev.py lab` has installed fedlab already
    import subprocess

    subprocess.run([sys.executable, "-m", "pip", "install", "-q", FEDLAB], check=True)

# %%
import fedlab  # first: it quietens TensorFlow's start-up log lines
from fedlab.algorithms import ServerAdam, ServerMomentum

import matplotlib.pyplot as plt
import numpy as np

print(", ".join(f"{name} {version}" for name, version in fedlab.versions().items()))

# %% [markdown]
# Every experiment uses the same clients and client update; only the server step changes. Twenty
# clients, half of them sampled each round, 30 rounds (nine runs in all, a few seconds each).

# %%
NUM_CLIENTS = 20  # K: clients
CLIENTS_PER_ROUND = 10  # clients sampled each round (partial participation)
NUM_ROUNDS = 30  # rounds of every run
LOCAL_EPOCHS = 1  # E: local epochs per round
BATCH_SIZE = 20  # B: local mini-batch size
CLIENT_LR = 0.1  # local SGD learning rate (the client update never changes)
TARGET = 0.90  # the test accuracy that counts as "reached"
SEED = 0

# %% [markdown]
# ## 1. The server step is an optimiser step
#
# In round t the server sends w_t to the sampled clients S_t, each client k trains locally to
# w_k, and the server averages their **updates**, weighting client k by its share p_k of the
# examples:
#
# $$\Delta_t = \sum_{k \in S_t} p_k\,(w_k - w_t), \qquad w_{t+1} = w_t + \Delta_t \quad
# \text{(FedAvg)}.$$
#
# If every client took a single gradient step of size η_l, Δ_t would be −η_l times the average
# gradient. With many local steps it is not a gradient of anything, but it still points downhill,
# so −Δ_t is called a **pseudo-gradient**. Reddi et al. (2021, *Adaptive Federated
# Optimization*) observe that the server may feed −Δ_t to *any* optimiser that eats gradients —
# FedAvg's server is plain SGD with learning rate 1. All rules below are elementwise and start
# from v = 0 (momentum) or m = 0, v = τ² (adaptive):
#
# | server optimiser | state update | weight update |
# |---|---|---|
# | SGD (FedAvg) | — | $w \leftarrow w + \eta\,\Delta$ |
# | momentum (FedAvgM, Hsu et al. 2019) | $v \leftarrow \beta v + \Delta$ | $w \leftarrow w + \eta\, v$ |
# | Nesterov momentum | $v \leftarrow \beta v + \Delta$ | $w \leftarrow w + \eta\,(\beta v + \Delta)$ |
# | Adam (FedAdam) | $m \leftarrow \beta_1 m + (1-\beta_1)\Delta,\ v \leftarrow \beta_2 v + (1-\beta_2)\Delta^2$ | $w \leftarrow w + \eta\,\dfrac{m}{\sqrt{v}+\tau}$ |
# | Yogi (FedYogi) | same m, $v \leftarrow v - (1-\beta_2)\,\Delta^2\,\mathrm{sign}(v - \Delta^2)$ | same |
# | Adagrad (FedAdagrad) | same m, $v \leftarrow v + \Delta^2$ | same |
#
# Two things to notice before running anything:
#
# - **Momentum's effective step.** If Δ stayed the same every round, v would grow to
#   Δ/(1−β), so in the long run FedAvgM moves **η/(1−β)** times Δ per round: with β = 0.9 that
#   is 10η. After t rounds v has reached only (1−β^t)/(1−β)·Δ (65 % of the way after 10 rounds
#   with β = 0.9), so momentum also starts slowly.
# - **The adaptive step has its own scale.** There is no bias correction (as in the paper), so
#   after the first round m = (1−β₁)Δ and v ≈ (1−β₂)Δ²; with β₁ = 0.9, β₂ = 0.99 the step is
#   η·0.1Δ/(0.1|Δ| + τ) ≈ **η·sign(Δ)** for every coordinate with |Δ| ≫ 10τ. So η is a distance in
#   weight units per coordinate, not a multiplier of Δ, and an adaptive server needs its own η
#   (about 0.01–0.1, not 1). τ caps how much a coordinate with a tiny Δ can be amplified: smaller
#   τ means more adaptive.
#
# `fedlab`'s defaults (see the docstrings in `fedlab/algorithms.py`): `FedAvgM(server_lr=1.0,
# momentum=0.9, nesterov=False)` — an effective step of 10, so lower `server_lr` when you use
# momentum, as its docstring warns; `FedAdam` and `FedYogi` use η = 10⁻², β₁ = 0.9, β₂ = 0.99,
# τ = 10⁻³ (the paper's β values and a middle point of its grids for η and τ); `FedAdagrad` uses
# η = 10⁻², β₁ = 0.9, τ = 10⁻³.

# %% [markdown]
# ## 2. Two server steps by hand
#
# A server optimiser in `fedlab` is a small object with `init(weights)`, which returns its state
# (velocity, or m and v), and `apply(weights, delta, state)`, which returns the new weights and
# the new state. Feed a two-number weight vector three rounds of made-up updates Δ:

# %%
w0 = np.array([1.0, 2.0], np.float32)
deltas = np.array([[0.5, -1.0], [0.3, -0.8], [-0.2, -0.6]], np.float32)  # Δ of rounds 1-3


def server_path(optimizer):
    """The weights after each of the three rounds, stepped by `optimizer`."""
    weights, state, path = [w0], optimizer.init([w0]), []
    for delta in deltas:
        weights, state = optimizer.apply(weights, [delta], state)
        path.append(weights[0])
    return np.array(path)


# %% [markdown]
# `compare` prints fedlab's weights next to ours, round by round, and fails loudly if they
# differ:

# %%
def compare(by_fedlab, by_hand):
    for t, (a, b) in enumerate(zip(by_fedlab, by_hand, strict=True), start=1):
        print(f"round {t}: fedlab ({a[0]:.4f}, {a[1]:.4f})   by hand ({b[0]:.4f}, {b[1]:.4f})")
    np.testing.assert_allclose(by_fedlab, by_hand, rtol=1e-5)


# %% [markdown]
# Momentum with η = 0.5 and β = 0.9, by `fedlab` and by the two lines of the table:

# %% tags=["nbval-check-output"]
momentum_fedlab = server_path(ServerMomentum(server_lr=0.5, momentum=0.9))
w, v, momentum_hand = w0.copy(), np.zeros(2), []
for delta in deltas:
    v = 0.9 * v + delta
    w = w + 0.5 * v
    momentum_hand.append(w)
compare(momentum_fedlab, momentum_hand)
print("ServerMomentum == by hand ✓")

# %% [markdown]
# The second coordinate's Δ is −1.0, −0.8, −0.6 — shrinking — yet its steps grow (−0.5, −0.85,
# −1.065): the velocity remembers earlier rounds. In round 3 the first coordinate's Δ turns
# negative (−0.2), but w₁ still moves *up* (1.625 → 1.8625): momentum carries the model through a
# single update that disagrees with the trend. On noisy, non-IID rounds that is the point; when
# the trend really changes, momentum overshoots.
#
# Now Adam with η = 0.1, β₁ = 0.9, β₂ = 0.99, τ = 10⁻³:

# %% tags=["nbval-check-output"]
adam_fedlab = server_path(ServerAdam(server_lr=0.1, beta1=0.9, beta2=0.99, tau=1e-3))
w, m, v, adam_hand = w0.copy(), np.zeros(2), np.full(2, 1e-3**2), []
for delta in deltas:
    m = 0.9 * m + 0.1 * delta
    v = 0.99 * v + 0.01 * delta**2
    w = w + 0.1 * m / (np.sqrt(v) + 1e-3)
    adam_hand.append(w)
compare(adam_fedlab, adam_hand)
print("ServerAdam == by hand ✓")

# %% [markdown]
# Look at round 1: Δ = (0.5, −1.0), one coordinate twice the other, yet Adam moves both by about
# the same amount, +0.098 and −0.099 — almost exactly η·sign(Δ), as worked out in section 1.
# Adam rescales every coordinate by its own recent size of Δ. That is all a server optimiser
# does: a few lines of arithmetic on the averaged update, with no extra communication and no
# extra work for the clients.

# %% [markdown]
# ## 3. The server learning rate
#
# The clients: the digits dealt out as **shards** (the FedAvg paper's pathological split), so
# that most clients hold only two digits. With 10 of 20 clients per round, each round's average
# is pulled towards whichever digits happen to be sampled.

# %% tags=["nbval-check-output"]
digits = fedlab.load_digits(seed=SEED)
split = fedlab.partition.shards(digits.y_train, NUM_CLIENTS, shards_per_client=2, seed=SEED)
classes = (split.label_counts > 0).sum(axis=1)
print(
    f"{NUM_CLIENTS} clients, {split.sizes.min()}-{split.sizes.max()} examples each, "
    f"{classes.min()}-{classes.max()} digits each, heterogeneity H = {split.heterogeneity():.2f}"
)

# %% [markdown]
# Two helpers: `experiment` runs one algorithm on these clients, `rounds_to` finds the first
# round at `TARGET` accuracy. `CLIENT` holds the client-side settings shared by every run.

# %%
CLIENT = dict(local_epochs=LOCAL_EPOCHS, batch_size=BATCH_SIZE, client_lr=CLIENT_LR)


def experiment(algorithm, split=split):
    model_fn = fedlab.FedModel  # FedModel() builds the 10-class network of notebook 01
    return fedlab.simulate(
        algorithm, model_fn, digits, split, NUM_ROUNDS, CLIENTS_PER_ROUND, SEED, progress=False
    )


def rounds_to(history, target=TARGET):
    reached = np.flatnonzero(history.test_accuracy >= target)
    return int(history.round[reached[0]]) if reached.size else None


# %% [markdown]
# FedAvg with server learning rates 0.5, 1 (plain FedAvg) and 2: the server moves the global
# model half, all, or twice the way to the clients' average.

# %%
server_lr = {eta: experiment(fedlab.FedAvg(**CLIENT, server_lr=eta)) for eta in (0.5, 1.0, 2.0)}

# %% [markdown]
# Accuracy round by round (the dotted line is the 90 % target):

# %%
fig, ax = plt.subplots(figsize=(6.5, 3.2), layout="constrained")
for eta, history in server_lr.items():
    fedlab.plot.plot_accuracy(history, ax=ax, label=f"FedAvg, server lr η = {eta}")
ax.axhline(TARGET, color="gray", lw=0.8, ls=":")
ax.set(ylim=(0.3, 1), title="Server learning rate, shards split");


# %% [markdown]
# A table for every comparison from here on: accuracy after the last round, the best accuracy of
# any round, the first round at 90 %, and a measure of noise — the **worst dip**, the largest
# fall in accuracy from one round to the next after round 10 (once every run is past its
# start-up).

# %% tags=["nbval-check-output"]
def table(runs):
    target = f"rounds to {TARGET:.0%}"
    print(f"{'run':<28}{'final':>7}{'best':>7}{target:>15}{'worst dip':>11}")
    for name, h in runs.items():
        acc = h.test_accuracy
        dip = np.max(-np.diff(acc[9:]))  # largest fall from round t to t + 1, t >= 10
        print(f"{name:<28}{acc[-1]:>7.3f}{acc.max():>7.3f}{rounds_to(h) or '—':>15}{dip:>11.3f}")


table({f"FedAvg η = {eta}": h for eta, h in server_lr.items()})

# %% [markdown]
# All three curves rise and dip together: every run uses the same seed, so the same clients are
# sampled in the same rounds, and the dips (rounds 9, 22 and 24, for example) are rounds whose sampled
# clients cover only a few digits. The server learning rate scales the step along *every*
# round's Δ, good rounds and bad rounds alike. η = 0.5 is smooth (worst dip about 0.05) but still
# climbing after 30 rounds (about 0.82). η = 2 is ahead most of the time and is the only one to
# reach 90 % (around round 25, best about 0.92), but it has the worst dips (about 0.1) and its
# last round drops it to about 0.82, below plain FedAvg's 0.85. What we would like is a big step
# along the directions the rounds agree on and a small one along the directions where they
# disagree. Momentum and the adaptive optimisers each try to get there.

# %% [markdown]
# ## 4. When do server optimisers help?
#
# Same clients, same client update; only the server differs. First a small grid of server
# learning rates on this same split and seed, final accuracy after 30 rounds (about a second for
# all ten runs):

# %%
grid = {
    "momentum β = 0.9": (fedlab.FedAvgM, (0.1, 0.2, 0.3)),
    "Adam": (fedlab.FedAdam, (0.01, 0.03, 0.1)),
    "Yogi": (fedlab.FedYogi, (0.01, 0.03)),
    "Adagrad": (fedlab.FedAdagrad, (0.03, 0.1)),
}
for name, (make, etas) in grid.items():
    finals = [experiment(make(**CLIENT, server_lr=eta)).test_accuracy[-1] for eta in etas]
    tried = ", ".join(f"η {eta} → {acc:.2f}" for eta, acc in zip(etas, finals, strict=True))
    print(f"{name:<17} {tried}")

# %% [markdown]
# FedAvgM gets η = 0.2, so its effective step η/(1−β) = 0.2/0.1 = 2 equals the η = 2 of
# section 3: the same long-run step, averaged over rounds instead of taken at once. Adam and Yogi
# get η = 0.03: 0.01 was clearly slower, and 0.1 only a little better (a much larger η would
# overshoot, see exercise 5). Adagrad's v only grows (it sums every Δ²), so its steps shrink
# over the rounds and it needs a larger η, 0.1.

# %%
runs = {"FedAvg (η = 1)": server_lr[1.0]}
runs["FedAvgM (η = 0.2, β = 0.9)"] = experiment(fedlab.FedAvgM(**CLIENT, server_lr=0.2))
runs["FedAdam (η = 0.03)"] = experiment(fedlab.FedAdam(**CLIENT, server_lr=0.03))
runs["FedYogi (η = 0.03)"] = experiment(fedlab.FedYogi(**CLIENT, server_lr=0.03))
runs["FedAdagrad (η = 0.1)"] = experiment(fedlab.FedAdagrad(**CLIENT, server_lr=0.1))

# %% [markdown]
# The curves. The dashed grey line is FedAvg with η = 2 from section 3: the same long-run step as
# FedAvgM, taken all at once.

# %%
fig, ax = plt.subplots(figsize=(7, 3.6), layout="constrained")
for name, history in runs.items():
    fedlab.plot.plot_accuracy(history, ax=ax, label=name)
fedlab.plot.plot_accuracy(server_lr[2.0], ax=ax, label="FedAvg (η = 2)")
ax.get_lines()[-1].set(color="gray", ls="--", lw=1)
ax.axhline(TARGET, color="gray", lw=0.8, ls=":")
ax.set(ylim=(0.3, 1), title="Server optimisers, shards split");

# %% [markdown]
# And the table, with the same columns as in section 3:

# %% tags=["nbval-check-output"]
table(runs | {"FedAvg (η = 2)": server_lr[2.0]})

# %% [markdown]
# What to read from the table and the curves:
#
# - **Adam and Yogi help most here**: 90 % around round 19, ending at about 0.95, where plain
#   FedAvg never reaches 90 % and ends at about 0.85. They still dip in the same bad rounds as
#   FedAvg, but less (worst dip about 0.05 and 0.06 against 0.09). On this split the weights tied
#   to a digit get a large Δ in rounds that sample its clients and almost none in the others;
#   dividing by √v evens out those differences in scale, coordinate by coordinate.
# - **Adam and Yogi are nearly the same run** (within 0.01 of each other in every round). They
#   differ only in how v moves: Adam's v forgets by a factor β₂ each round, Yogi's moves towards
#   Δ² by at most (1−β₂)Δ². While Δ² > v — as in the early rounds, since v starts at
#   τ² = 10⁻⁶ — both add (1−β₂)Δ², and their v differ only by (1−β₂)v. Yogi was designed for
#   the other case (Zaheer et al. 2018): v shrinking too fast after a run of small updates, which
#   30 rounds hardly reach.
# - **FedAdagrad** (η = 0.1) is the best run for most of rounds 10–18 (about 0.89 in round 16,
#   when FedAdam has about 0.81), then stays just under 90 % for ten rounds: its v only grows, so
#   its steps keep shrinking. It reaches 90 % around round 26 and ends at about 0.93.
# - **FedAvgM** helps less on this small problem: it ends at about 0.89 and does not reach 90 % in
#   30 rounds. Compare it with FedAvg at η = 2, which has the same long-run step η/(1−β) = 2:
#   FedAvgM starts much more slowly (its velocity needs about 1/(1−β) = 10 rounds to build up)
#   but is by far the smoothest run (worst dip about 0.03 against 0.1), and its last round is its
#   best. Momentum averages away round-to-round noise; it does not rescale coordinates.
#
# Be careful with the size of these gaps: it is one seed, one split, one small network and
# 30 rounds, and part of every gain is simply a larger step than FedAvg's. Reddi et al. (2021)
# found the adaptive servers most useful on large benchmarks with heterogeneous clients and
# **sparse** or badly scaled gradients (e.g. the word embeddings of Stack Overflow next-word
# prediction, where a rare word's weights change only in the few rounds that sample clients who
# use it), and found momentum (FedAvgM) a strong baseline on image tasks; Hsu et al. (2019) show
# momentum helping most when the clients are very non-IID. On well-behaved problems with a
# well-tuned FedAvg the differences shrink, and every server optimiser adds hyper-parameters
# that have to be tuned.

# %% [markdown]
# ## 5. An IID control
#
# The same two servers, FedAvg and FedAvgM with the settings above, on clients with IID data:

# %% tags=["nbval-check-output"]
iid = fedlab.partition.iid(digits.y_train, NUM_CLIENTS, seed=SEED)
iid_avg = experiment(fedlab.FedAvg(**CLIENT), split=iid)
iid_avgm = experiment(fedlab.FedAvgM(**CLIENT, server_lr=0.2), split=iid)
print(
    f"IID, final accuracy: FedAvg {iid_avg.test_accuracy[-1]:.3f}, "
    f"FedAvgM {iid_avgm.test_accuracy[-1]:.3f}; rounds to 90 %: "
    f"{rounds_to(iid_avg) or '—'} and {rounds_to(iid_avgm) or '—'}"
)

# %% [markdown]
# Little difference, as expected: about 0.91 against 0.92, 90 % around round 24 against round
# 27. On IID clients every round's Δ points in nearly the same direction, so there is little noise
# for momentum to average away, and its slow start roughly cancels its larger long-run step. On
# the shards split the gap was larger (about 0.85 against 0.89, and the worst dip fell from about
# 0.09 to 0.03): that is where there was round-to-round noise to average.

# %% [markdown]
# ## Summary
#
# - The server's half of FedAvg is one step of SGD with learning rate 1 on the pseudo-gradient
#   −Δ. Any optimiser can take its place; `fedlab`'s `ServerMomentum` and `ServerAdam` matched a
#   few lines of NumPy on a two-number vector ✓.
# - Adam's first step is about η·sign(Δ) per coordinate (0.098 and −0.099 for Δ = (0.5, −1.0)
#   with η = 0.1), so adaptive servers need their own η, around 0.01–0.1; momentum's long-run
#   step is η/(1−β), ten times η for β = 0.9.
# - On the shards split with 10 of 20 clients per round, a larger server learning rate was faster
#   but noisier: η = 2 reached 90 % around round 25 but ended at about 0.82, below FedAvg's 0.85.
# - FedAdam and FedYogi (η = 0.03) reached 90 % around round 19 and ended at about 0.95;
#   FedAdagrad (η = 0.1) ended at about 0.93; FedAvgM (η = 0.2, β = 0.9) ended at about 0.89 —
#   slower to start than FedAvg with the same effective step η = 2, but much smoother (worst dip
#   about 0.03 against 0.1).
# - On IID clients FedAvg and FedAvgM ended about a point apart (about 0.91 and 0.92): server
#   optimisers earn their keep on noisy, heterogeneous rounds, and (Reddi et al. 2021) on sparse,
#   badly scaled gradients of large models.

# %% [markdown]
# ## Exercises
#
# *Functions, classes and arguments that no cell above uses are named in full (`fedlab.…`):
# `help()` on one (or on its class) shows its documentation, and on the course website the name
# links to its entry in the API reference.*
#
# 1. **Nesterov.** Write FedAvgM's server step by hand, with and without Nesterov's look-ahead,
#    then rerun section 4's FedAvgM as `fedlab.FedAvgM(**CLIENT, server_lr=0.2, nesterov=True)`.
#    Does the look-ahead make up for momentum's slow start? Then keep η/(1−β) = 2 and try β = 0.5
#    (η = 1) and β = 0.95 (η = 0.1): which rounds get faster, and which get noisier?
# 2. **τ sweep.** Write FedAdam's server by hand, round after round. Then run FedAdam with
#    τ ∈ {10⁻¹, 10⁻², 10⁻³, 10⁻⁴} and the same η = 0.03 (`fedlab.FedAdam(**CLIENT,
#    server_lr=0.03, tau=...)`). When τ is much larger than the typical |Δ|, √v + τ ≈ τ and Adam
#    turns into server momentum with a long-run step of η/τ (0.3 for τ = 10⁻¹): compare that run
#    with the FedAvg runs of section 3. When τ is tiny, even coordinates with almost no Δ get a
#    full η-sized step. Which τ is best here?
# 3. **FedProx on the client, Adam on the server.** A `fedlab` algorithm has four slots —
#    sampling and broadcast, the client update, the aggregator, the server optimiser — and they
#    combine freely: `fedlab.algorithms.ProxAlgorithm(mu=0.01, **CLIENT,
#    server_optimizer=fedlab.algorithms.ServerAdam(server_lr=0.03), name="FedProx+Adam")` keeps
#    FedProx's local step and swaps in Adam's server step. Does the proximal term add anything to
#    FedAdam on the shards split? Try μ = 0.1 too.
# 4. **Less heterogeneity.** Repeat section 4 on `fedlab.partition.dirichlet(digits.y_train,
#    NUM_CLIENTS, alpha=0.3, seed=SEED)` and measure each server optimiser's gain over FedAvg on
#    both splits. Do the gaps between FedAvg and the server optimisers shrink, as section 5
#    suggests?
# 5. **Adaptive η.** Plain FedAvg sets η = 1. Why would `FedAdam(server_lr=1.0)` be a disaster?
#    Use section 1's η·sign(Δ) argument (and your FedAdam of exercise 2) to predict the size of
#    its first step, then run it and look at the first rounds' accuracy.
#
# Each exercise below has a cell for your answer, in code, and a **check** cell after it. Run the
# check: it prints ✓ and what it verified, or ✗ and the mistake it recognised, with a hint. The
# parts that ask you to explain have a cell for your answer in words. Every run reuses `CLIENT`,
# `experiment` and `table`, and changes only what the exercise says.

# %%
from fedlab import exercises

# %% [markdown]
# ### Exercise 1 · Nesterov
#
# **(a)** Write FedAvgM's server step for one weight array (section 1's table): from the weights,
# the round's mean update Δ (`delta`) and the velocity, return the new weights and the new
# velocity, with Nesterov's look-ahead when `nesterov=True`. Leave the arguments unchanged: the
# server still needs them.

# %%
def momentum_step(weights, delta, velocity, server_lr, momentum, nesterov=False):
    """FedAvgM's server step: returns (new_weights, new_velocity), with v ← β·v + Δ."""
    # BEGIN SOLUTION
    velocity = momentum * velocity + delta
    step = momentum * velocity + delta if nesterov else velocity
    return weights + server_lr * step, velocity
    # END SOLUTION


# %% tags=["self-check"]
exercises.check_momentum_step(momentum_step)
# BEGIN HIDDEN TESTS
exercises.check_momentum_step(momentum_step, seed=1)
# END HIDDEN TESTS

# %% [markdown]
# **(b)** Rerun section 4's FedAvgM (η = 0.2, β = 0.9) with Nesterov's look-ahead, as
# `nesterov_run`. Print the table for both runs and their accuracy in rounds 1–10.

# %%
nesterov_run = ...  # section 4's FedAvgM with nesterov=True
# BEGIN SOLUTION
nesterov_run = experiment(fedlab.FedAvgM(**CLIENT, server_lr=0.2, nesterov=True))
momentum_runs = {"FedAvgM": runs["FedAvgM (η = 0.2, β = 0.9)"], "FedAvgM, Nesterov": nesterov_run}
table(momentum_runs)
for name, history in momentum_runs.items():
    print(f"{name:<18} rounds 1-10:", np.round(history.test_accuracy[:10], 2).tolist())
# END SOLUTION

# %% tags=["self-check"]
fedavgm = runs["FedAvgM (η = 0.2, β = 0.9)"]
exercises.check_server_runs(
    nesterov_run, fedavgm, name="nesterov_run", what="section 4's FedAvgM", nesterov=True
)

# %% [markdown]
# **(c)** Keep the long-run step η/(1−β) = 2: run FedAvgM with β = 0.5 and η = 1, and with
# β = 0.95 and η = 0.1, into `beta_runs` keyed by β. Print the table beside section 4's FedAvgM
# (β = 0.9) and FedAvg with η = 2, and the accuracy in rounds 1–10.

# %%
beta_runs = ...  # {0.5: History, 0.95: History}, η/(1−β) = 2 for both
# BEGIN SOLUTION
beta_runs = {
    beta: experiment(fedlab.FedAvgM(**CLIENT, server_lr=eta, momentum=beta))
    for beta, eta in {0.5: 1.0, 0.95: 0.1}.items()  # η/(1−β) = 2
}
same_step = {"FedAvg (η = 2)": server_lr[2.0], "FedAvgM (β = 0.9)": fedavgm}
same_step |= {f"FedAvgM (β = {beta})": history for beta, history in beta_runs.items()}
table(same_step)
for name, history in same_step.items():
    print(f"{name:<18} rounds 1-10:", np.round(history.test_accuracy[:10], 2).tolist())
# END SOLUTION

# %% tags=["self-check"]
wanted = {"momentum": {0.5: 0.5, 0.95: 0.95}, "server_lr": {0.5: 1.0, 0.95: 0.1}}
exercises.check_server_runs(
    beta_runs, fedavgm, name="beta_runs", what="section 4's FedAvgM", **wanted
)

# %% [markdown]
# **Does the look-ahead make up for momentum's slow start? With the same η/(1−β), which rounds
# get faster, and which get noisier?**
#
# <!-- BEGIN SOLUTION -->
# **Model answer.** Only in part. Nesterov's run is ahead of plain FedAvgM in each of the
# first ten rounds (0.36 against 0.32 in round 5, 0.66 against 0.59 in round 10), ends at 0.906
# against 0.889 and reaches 90 %, just, in round 30, for a slightly larger worst dip (0.039
# against 0.033). Its first step is η·(β·v + Δ) = 1.9·η·Δ instead of η·Δ, but that is still far
# from FedAvg with η = 2 (0.74 in round 10): the look-ahead cannot make up for a velocity that
# takes about 1/(1−β) = 10 rounds to build up. With the same long-run step η/(1−β) = 2, β trades
# the early rounds against smoothness. β = 0.5 (η = 1) is fast early — 0.41 in round 3, 0.71 in
# round 10, almost FedAvg η = 2's pace — reaches 90 % in round 26 and ends at 0.892, with a worst
# dip of 0.047: noisier than β = 0.9 (0.033), but half FedAvg η = 2's (0.097). β = 0.95 (η = 0.1)
# is the smoothest (0.028) and the slowest: 0.54 in round 10 and 0.825 at the end, never 90 %;
# its velocity needs about 20 rounds, two thirds of the run, to build up. A small β behaves like
# FedAvg with a large η, a large β averages over more rounds and starts later.
# <!-- END SOLUTION -->

# %% [markdown]
# ### Exercise 2 · τ sweep
#
# **(a)** Write FedAdam's server for a weight vector `w0` (section 1's table): starting from
# m = 0 and v = τ², step `w0` by each Δ in `deltas` (one row per round) and return the weights
# after every round, one row per round — section 2's `server_path` for `ServerAdam`.

# %%
def adam_path(w0, deltas, server_lr, beta1=0.9, beta2=0.99, tau=1e-3):
    """The weights after each round (one row per Δ in `deltas`) of FedAdam's server from `w0`."""
    # BEGIN SOLUTION
    w, m, v, path = w0, np.zeros_like(w0), np.full_like(w0, tau**2), []
    for delta in deltas:
        m = beta1 * m + (1 - beta1) * delta
        v = beta2 * v + (1 - beta2) * delta**2
        w = w + server_lr * m / (np.sqrt(v) + tau)
        path.append(w)
    return np.array(path)
    # END SOLUTION


# %% tags=["self-check"]
exercises.check_adam_path(adam_path)
# BEGIN HIDDEN TESTS
exercises.check_adam_path(adam_path, seed=1)
# END HIDDEN TESTS

# %% [markdown]
# **(b)** Run FedAdam (η = 0.03) with τ = 10⁻¹, 10⁻², 10⁻³ and 10⁻⁴, into `tau_runs` keyed by
# τ, and print the table beside section 3's FedAvg runs.

# %%
tau_runs = ...  # {τ: History} for τ in 1e-1, 1e-2, 1e-3, 1e-4
# BEGIN SOLUTION
tau_runs = {
    tau: experiment(fedlab.FedAdam(**CLIENT, server_lr=0.03, tau=tau))
    for tau in (1e-1, 1e-2, 1e-3, 1e-4)
}
table(
    {f"FedAdam τ = {tau:g}": history for tau, history in tau_runs.items()}
    | {f"FedAvg η = {eta}": history for eta, history in server_lr.items()}
)
# END SOLUTION

# %% tags=["self-check"]
taus = {"tau": {tau: tau for tau in (1e-1, 1e-2, 1e-3, 1e-4)}}
fedadam = runs["FedAdam (η = 0.03)"]
exercises.check_server_runs(tau_runs, fedadam, name="tau_runs", what="section 4's FedAdam", **taus)

# %% [markdown]
# **How does τ = 10⁻¹ compare with the FedAvg runs of section 3, and why? Which τ is best here?**
#
# <!-- BEGIN SOLUTION -->
# **Model answer.** With τ = 10⁻¹, much larger than the updates (exercise 5's largest first
# step, 0.74, means a Δ of about 0.03), √v + τ ≈ τ and the step is η·m/τ = 0.3·m: momentum whose long-run
# step, 0.3·Δ, is smaller than any FedAvg step of section 3, and which needs about ten rounds to
# build up. It is the slowest run of all: 0.47 after 30 rounds, where FedAvg with η = 0.5 ends
# at 0.82, and it never dips (worst dip −0.006: the accuracy rose every round after round 10), as
# a small step does. τ = 10⁻² is in between (0.87, worst dip 0.022: FedAvg η = 1's accuracy with
# a quarter of its noise). As τ shrinks, more coordinates take the full η·sign step: τ = 10⁻³
# reaches 90 % in round 19 and ends at 0.950; τ = 10⁻⁴ is best here, 90 % in round 16, 0.958 at
# the end (best 0.964) and a smaller worst dip (0.036 against 0.047). The risk of a tiny τ —
# amplifying coordinates whose Δ is mere noise — does not bite on this small problem (and a
# coordinate whose Δ is exactly 0, such as a weight of an always-blank pixel, never moves, since m
# stays 0). The gain over 10⁻³ is three rounds and a point on one seed: a reason to tune τ, not a
# rule.
# <!-- END SOLUTION -->

# %% [markdown]
# ### Exercise 3 · FedProx on the client, Adam on the server
#
# Run `fedlab.algorithms.ProxAlgorithm` with μ = 0.01 and μ = 0.1 and Adam's server step
# (`server_optimizer=fedlab.algorithms.ServerAdam(server_lr=0.03)`), into `prox_adam_runs` keyed
# by μ. Print the table beside section 4's FedAdam.

# %%
prox_adam_runs = ...  # {0.01: History, 0.1: History}: FedProx's client, Adam's server
# BEGIN SOLUTION
adam_server = fedlab.algorithms.ServerAdam(server_lr=0.03)
prox_adam_runs = {
    mu: experiment(
        fedlab.algorithms.ProxAlgorithm(
            mu=mu, **CLIENT, server_optimizer=adam_server, name="FedProx+Adam"
        )
    )
    for mu in (0.01, 0.1)
}
table({"FedAdam": fedadam} | {f"FedProx+Adam μ = {mu}": h for mu, h in prox_adam_runs.items()})
# END SOLUTION

# %% tags=["self-check"]
mus = {"mu": {0.01: 0.01, 0.1: 0.1}}
exercises.check_server_runs(
    prox_adam_runs, fedadam, name="prox_adam_runs", what="section 4's FedAdam", **mus
)

# %% [markdown]
# **Does the proximal term add anything to FedAdam on the shards split? Why?**
#
# <!-- BEGIN SOLUTION -->
# **Model answer.** Nothing measurable. With μ = 0.01 FedProx+Adam is FedAdam to three
# decimals (0.950 at the end, 90 % in round 19, worst dip 0.047); μ = 0.1 changes only the worst
# dip (0.053). The proximal term adds μ·(w − w_g) to every local gradient, and here a client takes
# one epoch of about four steps (70 examples, B = 20) at learning rate 0.1, so it never goes far
# from w_g: μ = 0.1 pulls it back by client_lr·μ = 1 % of its drift per step, nothing next to the
# gradient. FedProx fights the drift of long local training (notebook 05); the server optimiser
# fights the round-to-round noise of which clients are sampled and the uneven scale of the
# coordinates. On this split, with one local epoch, the second is the problem, so the client-side
# fix has nothing to correct. The slots combine freely, but a fix only helps where its problem
# is.
# <!-- END SOLUTION -->

# %% [markdown]
# ### Exercise 4 · Less heterogeneity
#
# **(a)** Write `gains`: from a dict of per-round accuracies `{run name: accuracy}` and the name
# of a baseline run, return `{run name: gain}` for every other run, its final accuracy minus the
# baseline's.

# %%
def gains(accuracy, baseline):
    """{run name: final accuracy minus the baseline's final accuracy}, every run but baseline."""
    # BEGIN SOLUTION
    base = accuracy[baseline][-1]
    return {name: acc[-1] - base for name, acc in accuracy.items() if name != baseline}
    # END SOLUTION


# %% tags=["self-check"]
exercises.check_gains(gains)
# BEGIN HIDDEN TESTS
exercises.check_gains(gains, seed=1)
# END HIDDEN TESTS

# %% [markdown]
# **(b)** Repeat section 4's five runs on the Dirichlet split (α = 0.3, `seed=SEED`), into
# `dirichlet_runs` with the same keys as `runs`. Print the table and each server optimiser's
# gain over FedAvg (η = 1) on both splits.

# %%
dirichlet_runs = ...  # {name: History}: section 4's runs on the Dirichlet split
# BEGIN SOLUTION
dirichlet = fedlab.partition.dirichlet(digits.y_train, NUM_CLIENTS, alpha=0.3, seed=SEED)
print(f"H: Dirichlet α = 0.3 {dirichlet.heterogeneity():.2f}, shards {split.heterogeneity():.2f}")
dirichlet_runs = {
    "FedAvg (η = 1)": experiment(fedlab.FedAvg(**CLIENT), dirichlet),
    "FedAvgM (η = 0.2, β = 0.9)": experiment(fedlab.FedAvgM(**CLIENT, server_lr=0.2), dirichlet),
    "FedAdam (η = 0.03)": experiment(fedlab.FedAdam(**CLIENT, server_lr=0.03), dirichlet),
    "FedYogi (η = 0.03)": experiment(fedlab.FedYogi(**CLIENT, server_lr=0.03), dirichlet),
    "FedAdagrad (η = 0.1)": experiment(fedlab.FedAdagrad(**CLIENT, server_lr=0.1), dirichlet),
}
table(dirichlet_runs)
for split_name, histories in {"shards": runs, "Dirichlet": dirichlet_runs}.items():
    accuracy = {name: history.test_accuracy for name, history in histories.items()}
    gain = gains(accuracy, "FedAvg (η = 1)")
    rounded = {name.split()[0]: round(float(g), 3) for name, g in gain.items()}
    print(f"gain over FedAvg, {split_name:<9}", rounded)
# END SOLUTION

# %% tags=["self-check"]
alpha = {"split": "dirichlet(α=0.3)"}
exercises.check_server_runs(dirichlet_runs, runs, name="dirichlet_runs", what="section 4", **alpha)

# %% [markdown]
# **Do the gaps between FedAvg and the server optimisers shrink, as section 5 suggests?**
#
# <!-- BEGIN SOLUTION -->
# **Model answer.** Yes. On the Dirichlet split (H = 0.53 instead of 0.80) FedAvg itself does
# much better — 0.911 and 90 % in round 23, where on shards it never got there (0.850) — and every
# gain over it shrinks: FedAdam's from +0.100 to +0.044, FedYogi's from +0.100 to +0.042,
# FedAdagrad's from +0.083 to +0.044, and FedAvgM's from +0.039 to −0.006: on the milder split
# momentum no longer pays for its slow start. The adaptive servers still help — 90 % in rounds 12
# and 13 instead of 23, about four points at the end — because the pixels' weights are still
# updated at very different scales, which is what dividing by √v evens out. So the gains grow with
# the round-to-round noise of heterogeneous clients, and momentum, which only averages that noise
# away, is the first to lose its edge, as the IID control of section 5 suggested.
# <!-- END SOLUTION -->

# %% [markdown]
# ### Exercise 5 · Adaptive η
#
# **(a)** With your `adam_path`, compute `first_steps`: the first step w₁ − w₀ of FedAdam's server
# with η = 1 (and fedlab's β₁ = 0.9, β₂ = 0.99, τ = 10⁻³) for four coordinates whose Δ are
# `probe`.

# %%
probe = np.array([0.001, 0.01, 0.1, 1.0])  # Δ of four coordinates in round 1
first_steps = ...  # FedAdam's first step, η = 1, for each Δ in probe
# BEGIN SOLUTION
first_steps = adam_path(np.zeros(4), probe[None, :], server_lr=1.0)[0]
print("Δ:", probe.tolist(), "→ first step:", np.round(first_steps, 3).tolist())
# END SOLUTION

# %% tags=["self-check"]
exercises.check_first_steps(first_steps, probe, server_lr=1.0)

# %% [markdown]
# **(b)** Run FedAdam with η = 1 as `adam_1`. Print its accuracy in rounds 1–10 beside section
# 4's FedAdam (η = 0.03), and measure its first step: with `fedlab.Simulation`, the largest and the
# median |w₁ − w₀| over all the model's weights, beside the median |w₀|.

# %%
adam_1 = ...  # FedAdam(**CLIENT, server_lr=1.0) on the shards split
# BEGIN SOLUTION
adam_1 = experiment(fedlab.FedAdam(**CLIENT, server_lr=1.0))
for name, history in {"FedAdam η = 0.03": fedadam, "FedAdam η = 1": adam_1}.items():
    print(f"{name:<16} rounds 1-10:", np.round(history.test_accuracy[:10], 2).tolist())
sim = fedlab.Simulation(
    fedlab.FedAdam(**CLIENT, server_lr=1.0), fedlab.FedModel, digits, split, CLIENTS_PER_ROUND, SEED
)
w_0 = np.concatenate([w.ravel() for w in sim.weights])
sim.step()
moved = np.abs(np.concatenate([w.ravel() for w in sim.weights]) - w_0)
print(f"first step: largest {moved.max():.2f}, median {np.median(moved):.3f}; ", end="")
print(f"median |w0| {np.median(np.abs(w_0)):.3f}; final accuracy {adam_1.test_accuracy[-1]:.2f}")
# END SOLUTION

# %% tags=["self-check"]
exercises.check_server_runs(
    adam_1, fedadam, name="adam_1", what="section 4's FedAdam", server_lr=1.0
)

# %% [markdown]
# **Why is `FedAdam(server_lr=1.0)` a disaster?**
#
# <!-- BEGIN SOLUTION -->
# **Model answer.** By section 1's argument, FedAdam's first step is about η·sign(Δ) for every
# coordinate with |Δ| ≫ 10τ = 0.01: `first_steps` gives 0.905 for Δ = 0.1 and 0.99 for Δ = 1
# (0.415 for Δ = 0.01, 0.05 for Δ = 0.001). So with η = 1 a weight moves by almost 1 whatever its
# Δ, where FedAvg with η = 1 moves it by Δ; in this network a typical weight is 0.09 (the median
# |w₀|). Measured: the first round moved some weights by 0.74, eight times a typical weight (the
# median step was only 0.02: most coordinates' Δ in round 1 is below 10τ). Every coordinate with a
# clear update jumps by a weight-sized step or more, every round, in the direction of its sign, so
# the model is thrown far from anything sensible and never settles: 0.10–0.28 in the first ten
# rounds and 0.29 at the end, where η = 0.03 had 0.72 in round 10 and ends at 0.95. An adaptive
# server's η is a distance in weight units per coordinate, not a multiplier of Δ: it must be the
# size of a sensible change of a weight per round, 0.01–0.1 here, not FedAvg's 1.
# <!-- END SOLUTION -->
