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
# 1. **Nesterov.** Rerun section 4's FedAvgM as `fedlab.FedAvgM(**CLIENT, server_lr=0.2,
#    nesterov=True)`. Does the look-ahead make up for momentum's slow start? Then keep η/(1−β) = 2
#    and try β = 0.5 (η = 1) and β = 0.95 (η = 0.1): which rounds get faster, and which get noisier?
# 2. **τ sweep.** Run FedAdam with τ ∈ {10⁻¹, 10⁻², 10⁻³, 10⁻⁴} and the same η = 0.03
#    (`fedlab.FedAdam(**CLIENT, server_lr=0.03, tau=...)`). When τ is much larger than the typical
#    |Δ|, √v + τ ≈ τ and Adam turns into server momentum with a long-run step of η/τ (0.3 for τ =
#    10⁻¹): compare that run with the FedAvg runs of section 3. When τ is tiny, even coordinates
#    with almost no Δ get a full η-sized step. Which τ is best here?
# 3. **FedProx on the client, Adam on the server.** A `fedlab` algorithm has four slots —
#    sampling and broadcast, the client update, the aggregator, the server optimiser — and they
#    combine freely: `fedlab.algorithms.ProxAlgorithm(mu=0.01, **CLIENT,
#    server_optimizer=fedlab.algorithms.ServerAdam(server_lr=0.03), name="FedProx+Adam")` keeps
#    FedProx's local step and swaps in Adam's server step. Does the proximal term add anything to
#    FedAdam on the shards split? Try μ = 0.1 too.
# 4. **Less heterogeneity.** Repeat section 4 on `fedlab.partition.dirichlet(digits.y_train,
#    NUM_CLIENTS, alpha=0.3, seed=SEED)`. Do the gaps between FedAvg and the server optimisers
#    shrink, as section 5 suggests?
# 5. **Adaptive η.** Plain FedAvg sets η = 1. Why would `FedAdam(server_lr=1.0)` be a disaster?
#    Use section 1's η·sign(Δ) argument to predict the size of its first step, then run it and
#    look at the first rounds' accuracy.
