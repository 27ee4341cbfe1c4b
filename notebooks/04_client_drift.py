# %% [markdown]
# # 04 · Client drift: seen and measured
#
# *Purpose: understand why FedAvg, given clients whose data differ, settles at the wrong point —
# first on a two-parameter problem you can look at, then on handwritten digits — and measure the
# drift that causes it.*
#
# **Goals**
# - Explain **client drift**: with several local steps on non-IID data every client walks towards
#   its *own* optimum, and the average of the clients' models is not the global optimum.
# - See it on a 2-D **playground**, compute FedAvg's biased fixed point in closed form, and watch
#   the bias grow with the number of local steps τ.
# - Get a first look at the two cures of notebook 05: **FedProx** shrinks the bias, **SCAFFOLD**
#   removes it.
# - Measure drift on digits as the Dirichlet α shrinks: accuracy, client drift, **update
#   agreement** and **gradient dissimilarity**.
# - Test whether more local work still saves rounds when the clients differ.
#
# **You will need:** [02 · client splits](02_client_splits.ipynb) (Dirichlet α, the
# heterogeneity index H) and [03 · FedSGD vs FedAvg](03_fedsgd_vs_fedavg.ipynb) (FedAvg, local
# steps u, client drift, the dashboard); about 45 s to run on a laptop CPU (no GPU needed).

# %% [markdown]
# ## Setup
#
# `import fedlab` comes **first**: it quietens TensorFlow's start-up log lines before TensorFlow
# loads. `fedlab.playground` is the 2-D problem of section 2 (pure NumPy, no TensorFlow).

# %%
import sys

FEDLAB = "fedlab-edu @ git+https://github.com/fedlab-edu/fedlab"  # what Colab installs
if "google.colab" in sys.modules:  # elsewhere `python3 dev.py lab` has installed fedlab already
    import subprocess

    subprocess.run([sys.executable, "-m", "pip", "install", "-q", FEDLAB], check=True)

# %%
import fedlab  # first: it quietens TensorFlow's start-up log lines
import fedlab.playground as playground
import fedlab.widgets

import matplotlib.pyplot as plt
import numpy as np

print(", ".join(f"{name} {version}" for name, version in fedlab.versions().items()))

# %% [markdown]
# Every size and rate is set in the next cell: the playground's settings first, then the digits
# experiments (20 clients, half of them sampled each round, 25 rounds).

# %%
PLAY_ROUNDS = 50  # rounds on the playground
PLAY_LR = 0.1  # η, the playground clients' step size
NUM_CLIENTS = 20  # clients on digits
CLIENTS_PER_ROUND = 10  # sampled each round
NUM_ROUNDS = 25  # rounds of every digits experiment
LOCAL_EPOCHS = 2  # E
BATCH_SIZE = 20  # B
CLIENT_LR = 0.1
ALPHAS = (100, 1, 0.1)  # Dirichlet α: from nearly IID to a few labels per client
SEED = 0

# %% [markdown]
# ## 1. What client drift is
#
# Client k holds its own data and so its own loss $F_k(w)$; the federation wants the minimiser
# $w^\star$ of the weighted average
#
# $$f(w) = \sum_k p_k F_k(w), \qquad p_k = n_k / n .$$
#
# On IID clients every $F_k$ looks like $f$. On non-IID clients each $F_k$ has its own minimiser
# $w_k^\star$, and in general $w_k^\star \ne w^\star$.
#
# A FedAvg round (notebook 03) starts every client at the global model $w_t$, lets it take
# τ local steps $y_{k,s+1} = y_{k,s} - \eta \nabla F_k(y_{k,s})$ from $y_{k,0} = w_t$, and
# averages where the clients end up:
#
# $$w_{t+1} - w_t = \sum_k p_k \,(y_{k,\tau} - w_t)
#  = -\eta \sum_k p_k \sum_{s=0}^{\tau-1} \nabla F_k(y_{k,s}).$$
#
# - **τ = 1:** the step is $-\eta \sum_k p_k \nabla F_k(w_t) = -\eta \nabla f(w_t)$, gradient
#   descent on $f$. It stops only where $\nabla f = 0$, at $w^\star$.
# - **τ > 1:** the later gradients are taken at $y_{k,s}$, points that have already moved
#   *towards that client's own optimum* $w_k^\star$. The sum is no longer the gradient of $f$, and
#   FedAvg stops where the clients' trips cancel, $\sum_k p_k (y_{k,\tau} - w) = 0$ — not where
#   their gradients cancel. The more local steps, the further each client gets towards
#   $w_k^\star$ and the further that point lies from $w^\star$: FedAvg converges to a **biased**
#   point. With τ → ∞ every client reaches its own optimum, and FedAvg just averages the
#   $w_k^\star$.
#
# The length of a client's trip, $\lVert y_{k,\tau} - w_t \rVert$, is its **client drift**
# (the name is from Karimireddy et al. 2020, who built SCAFFOLD to remove it; Zhao et al. 2018
# measured the same effect as "weight divergence"). Drift by itself is harmless — on IID clients
# in notebook 03 the clients travelled far and all in similar directions. The damage comes from
# drift **in different directions**.

# %% [markdown]
# ## 2. The playground: drift you can see
#
# `fedlab.playground` makes a federation small enough to draw: two parameters, three clients,
# each with a quadratic loss
#
# $$F_k(w) = \tfrac12 (w - o_k)^\top A_k (w - o_k),$$
#
# an elliptic bowl with its own optimum $o_k$ and its own curvature $A_k$. The global optimum is
# a curvature-weighted average of the clients' optima,
# $w^\star = (\sum_k p_k A_k)^{-1} \sum_k p_k A_k o_k$. Clients use full-batch gradient steps and
# all take part in every round, so there is no noise: what you see is the algorithm.
# `heterogeneity` scales how much the clients differ (0: identical clients).

# %% tags=["nbval-check-output"]
problem = playground.make_problem(num_clients=3, heterogeneity=1.0, seed=SEED)
w_star = problem.global_optimum()
print("client optima o_k:", problem.optima.round(2).tolist())
print("global optimum w*:", w_star.round(2).tolist())
print(f"plain mean of the o_k is {np.linalg.norm(problem.optima.mean(0) - w_star):.2f} from w*")

# %% [markdown]
# ### (a) FedAvg with 1 and with 10 local steps
#
# Both runs start at the black square and run 50 rounds with step size η = 0.1. Each landscape
# panel shows the loss contours of $f$, the clients' optima (coloured dots), the path of the
# global model (black), and — in colour — the clients' local steps in the **last** round, with
# the black arrow the server's averaged step. The gold star is $w^\star$; the red ring is where
# the algorithm's formula (below) says it must stop. The right panel tracks the distance to
# $w^\star$ on a log scale.

# %%
one_step = playground.run(problem, "fedavg", local_steps=1, lr=PLAY_LR, num_rounds=PLAY_ROUNDS)
ten_steps = playground.run(problem, "fedavg", local_steps=10, lr=PLAY_LR, num_rounds=PLAY_ROUNDS)
playground.plot_comparison([one_step, ten_steps]);

# %% [markdown]
# With τ = 1 the clients barely move in a round and the global path runs straight into the
# star. With τ = 10 each client walks a long way towards its own dot; by round 50 the global
# model no longer moves (the arrow has shrunk to nothing) even though the clients still walk off
# every round — their trips cancel, but *away from* $w^\star$. The distance curve flattens at
# the dashed line: more rounds do not help.
#
# **Where FedAvg stops, in closed form.** For a quadratic, a local step is
# $y - o_k \leftarrow (I - \eta A_k)(y - o_k)$, so after τ steps from $w$ the client's update is
#
# $$\Delta_k = y_{k,\tau} - w = -M_k (w - o_k), \qquad M_k = I - (I - \eta A_k)^\tau .$$
#
# The server stands still where $\sum_k p_k \Delta_k = 0$:
#
# $$w_{\text{FedAvg}} = \Big(\sum_k p_k M_k\Big)^{-1} \sum_k p_k M_k\, o_k .$$
#
# Compare $w^\star$, the same formula with $A_k$ in place of $M_k$. For τ = 1,
# $M_k = \eta A_k$ and the two agree. For τ > 1 the $M_k$ are no longer proportional to the
# $A_k$ (their eigenvalues $1 - (1 - \eta\lambda)^\tau$ saturate at 1), and as τ → ∞ every
# $M_k \to I$: the fixed point slides towards the plain mean of the optima. (Charles &
# Konečný 2021 analyse local-update methods in just this way, on quadratics.)
# `playground.fedavg_fixed_point` computes it; the table compares it with where 50 rounds
# actually got to, and with how far the clients travelled in the last round.

# %% tags=["nbval-check-output"]
print(f"{'τ':>3}{'after 50 rounds':>17}{'formula':>9}{'drift':>7}   (distances from w*)")
for tau in (1, 2, 5, 10, 50):
    result = playground.run(problem, "fedavg", local_steps=tau, lr=PLAY_LR, num_rounds=PLAY_ROUNDS)
    bias = np.linalg.norm(playground.fedavg_fixed_point(problem, tau, PLAY_LR) - w_star)
    drift = result.client_drift[-1].mean()
    print(f"{tau:>3}{result.distance[-1]:>17.3f}{bias:>9.3f}{drift:>7.2f}")

# %% [markdown]
# The bias grows with τ: nothing at τ = 1 (the run is still 8·10⁻⁵ away after 50 rounds,
# 0.000 when rounded, since one step per round converges slowly), 0.097 at τ = 2, 0.650 at τ = 10
# and 1.239 at τ = 50 — close to the 1.30 of the plain mean of the optima printed above. Every
# run has landed exactly on its formula. The last column is how far the clients still walk in
# round 50, 0.19 for τ = 1 up to 1.77 for τ = 50, although the global model no longer moves.
#
# So drift by itself is not the bias: at τ = 1 the clients move 0.19 each round at $w^\star$,
# and their moves cancel *there*. The bias appears when the trips cancel somewhere else. And note
# the trade-off in the distance plot above: τ = 10 reached its plateau within about 5 rounds,
# while τ = 1 needed about 8 rounds to get as close — more local steps are faster at first, then
# stuck.

# %% [markdown]
# ### (b) Identical clients: no bias
#
# With `heterogeneity=0` all clients have the same optimum and curvature, so $M_k = M$ for every
# k and the formula gives $w^\star$ for any τ:

# %% tags=["nbval-check-output"]
same = playground.make_problem(num_clients=3, heterogeneity=0.0, seed=SEED)
result = playground.run(same, "fedavg", local_steps=50, lr=PLAY_LR, num_rounds=PLAY_ROUNDS)
print(f"heterogeneity 0, τ = 50: ‖w − w*‖ = {result.distance[-1]:.3f} after 50 rounds")

# %% [markdown]
# ### (c) A teaser for notebook 05: FedProx and SCAFFOLD
#
# Two algorithms attack the bias. **FedProx** (Li et al. 2020) adds $\tfrac{\mu}{2}\lVert y - w
# \rVert^2$ to every client's loss, a spring that pulls the client back towards the broadcast
# model. **SCAFFOLD** (Karimireddy et al. 2020) adds a correction $c - c_k$ to every local
# gradient — an estimate of how the global gradient differs from the client's own — so each
# client walks the way $f$ descends. `playground.compare` runs all three with the same τ = 10:

# %%
runs = playground.compare(problem, local_steps=10, lr=PLAY_LR, mu=2.0, num_rounds=PLAY_ROUNDS)
playground.plot_comparison(runs);

# %% tags=["nbval-check-output"]
for result in runs:
    bias = np.linalg.norm(result.fixed_point - w_star)
    print(f"{result.label:<28} ‖w − w*‖ = {result.distance[-1]:.3f}  (formula: {bias:.3f})")

# %% [markdown]
# Same τ = 10, same 50 rounds: FedAvg stops 0.650 from $w^\star$, FedProx with μ = 2 at
# 0.408 — the spring keeps each client nearer the broadcast model, so the trips are shorter and
# bend less towards each client's own optimum — and SCAFFOLD at 0.000 (2·10⁻¹⁰ and still
# falling; its fixed point is $w^\star$ itself, for every τ). In SCAFFOLD's panel the clients'
# last-round steps have shrunk to nothing at the star. FedProx's bias shrinks as μ grows but never
# reaches zero, and a large μ slows every round down. Notebook 05,
# [FedProx and SCAFFOLD](05_fedprox_and_scaffold.ipynb), derives both and runs them on digits.

# %% [markdown]
# ### (d) Your turn: the playground panel
#
# Every control re-runs in milliseconds. The left plot is the run on its landscape (the slider
# *show round* picks which round's local steps are drawn); the right plot is the distance to
# $w^\star$, with the other two algorithms drawn faintly for comparison.

# %%
playground.Playground(local_steps=10, lr=PLAY_LR, num_rounds=PLAY_ROUNDS)

# %% [markdown]
# Things to try:
#
# 1. **More local steps.** Drag τ from 1 to 100 with FedAvg: the red ring slides from the star
#    towards the middle of the three client optima.
# 2. **Larger heterogeneity.** Move it from 0 to 2: no bias at 0, and the bias grows with it.
# 3. **Round 1 vs the last round.** With τ = 10, set *show round* to 1: far from every optimum,
#    the clients' trips are long and so is their average (the arrow). At the last round the trips
#    are still long, but they cancel: the arrow has gone.
# 4. **FedProx μ.** Pick FedProx and raise μ from 0 to 5: the bias shrinks but never reaches
#    zero, and convergence gets slower. Then try τ = 2: there a larger μ makes it *worse*.
# 5. **SCAFFOLD.** Pick it with τ = 50: still straight to the star.

# %% [markdown] tags=["class-break"]
# ---
# **Class break · end of part 1.** Part 1 (sections 1–2) showed why FedAvg with several local
# steps on clients that differ stops at a biased point, on a 2-D playground where that point has a
# closed form, and how FedProx shrinks the bias and SCAFFOLD removes it. Part 2 (sections 3–5)
# measures drift on handwritten digits as the Dirichlet α shrinks, asks whether more local work
# still pays, and watches the drift live in the dashboard. Coming back to the notebook in a new
# session? Run every cell above this one first (*Run ▸ Run All Above Selected Cell*, about 5 s,
# most of it importing TensorFlow).

# %% [markdown]
# ## 3. Drift on digits as α shrinks
#
# Now a real model: the MLP of the earlier notebooks on the handwritten digits, dealt to 20
# clients by a Dirichlet split (notebook 02). α = 100 is nearly IID; at α = 0.1 most clients
# hold a few digits only. H is the split's heterogeneity index (the mean total-variation distance
# of a client's labels from the global mix).

# %% tags=["nbval-check-output"]
digits = fedlab.load_digits(seed=SEED)
splits = {a: fedlab.partition.dirichlet(digits.y_train, NUM_CLIENTS, a, seed=SEED) for a in ALPHAS}
for alpha, split in splits.items():
    low, high = split.sizes.min(), split.sizes.max()
    print(f"α = {alpha:<5} H = {split.heterogeneity():.2f}  client sizes {low}–{high}")


# %% [markdown]
# The same FedAvg (E = 2, B = 20, client lr 0.1) runs on each split. `dissimilarity_every=5`
# makes the engine also compute, every fifth round, the **gradient dissimilarity** at the global
# model over *all* N clients, from each client's full-batch gradient $\nabla F_k(w)$:
#
# $$G(w) = \frac1N \sum_k \lVert \nabla F_k(w) - \nabla f(w) \rVert^2 , \qquad
# \nabla f(w) = \sum_k \frac{n_k}{n} \nabla F_k(w),$$
#
# zero when every client's gradient equals the global one. (It is `nan` in the other rounds.)
# It is the spread of gradients that the FedProx paper (Li et al. 2020) tracks in its
# experiments, computed as its reference code does: every client counts equally, although $f$
# weights them by size. The paper's theory measures dissimilarity by a ratio instead,
# $B(w)^2 = \sum_k \frac{n_k}{n} \lVert \nabla F_k(w) \rVert^2 / \lVert \nabla f(w) \rVert^2$
# (1 when all clients agree), which equals 1 plus the size-weighted version of G divided by
# $\lVert \nabla f(w) \rVert^2$.

# %%
def model_fn():
    return fedlab.FedModel(10)


def experiment(split, local_epochs=LOCAL_EPOCHS, dissimilarity_every=None):
    """FedAvg on `split` with this notebook's settings; returns its History."""
    algorithm = fedlab.FedAvg(local_epochs=local_epochs, batch_size=BATCH_SIZE, client_lr=CLIENT_LR)
    return fedlab.simulate(
        algorithm,
        model_fn,
        digits,
        split,
        NUM_ROUNDS,
        CLIENTS_PER_ROUND,
        SEED,
        progress=False,
        dissimilarity_every=dissimilarity_every,
    )


# %% [markdown]
# Three runs, one per α:

# %%
by_alpha = {alpha: experiment(splits[alpha], dissimilarity_every=5) for alpha in ALPHAS}


# %% [markdown]
# Four numbers per run. Accuracy is averaged over the last five rounds, because on non-IID
# clients it jumps from round to round with the clients sampled. **Drift** is the mean
# ‖w_k − w_global‖ over clients and rounds. **Agreement** is the mean cosine between each client's
# update Δ_k and the averaged update Δ (`history.rounds[i].update_cosine` holds one per client):
# 1 if all clients push the same way, 0 if their pushes are unrelated. **G** is the gradient
# dissimilarity, averaged over the rounds where it was computed.

# %%
def agreement(history):
    """Mean cosine between each client's update and the aggregate, per round."""
    return np.array([np.mean(record.update_cosine) for record in history.rounds])


def summary(history):
    """Accuracy (mean of the last 5 rounds), mean drift and mean agreement of a run."""
    accuracy = history.test_accuracy[-5:].mean()
    return accuracy, history.drift_mean.mean(), agreement(history).mean()


# %% tags=["nbval-check-output"]
print(f"{'α':>5}{'H':>6}{'accuracy':>10}{'drift':>7}{'agreement':>11}{'G':>7}")
for alpha, history in by_alpha.items():
    accuracy, drift, cosine = summary(history)
    h, g = splits[alpha].heterogeneity(), np.nanmean(history.gradient_dissimilarity)
    print(f"{alpha:>5}{h:>6.2f}{accuracy:>10.2f}{drift:>7.2f}{cosine:>11.2f}{g:>7.2f}")

# %% [markdown]
# The same runs round by round: accuracy, mean drift and mean agreement.

# %%
fig, (ax_acc, ax_drift, ax_cos) = plt.subplots(1, 3, figsize=(13, 3.3), layout="constrained")
for alpha, history in by_alpha.items():
    label = f"α = {alpha} (H = {splits[alpha].heterogeneity():.2f})"
    fedlab.plot.plot_accuracy(history, ax=ax_acc, label=label)
    ax_drift.plot(history.round, history.drift_mean, label=label)
    ax_cos.plot(history.round, agreement(history), label=label)
ax_drift.set(xlabel="round", ylabel="mean ‖w_k − w_global‖", title="Client drift")
ax_cos.set(xlabel="round", ylabel="mean cos(Δ_k, Δ)", title="Update agreement", ylim=(0, 1))
ax_cos.legend(fontsize="small");

# %% [markdown]
# Everything moves together as α shrinks (H from 0.04 to 0.69):
#
# - **Drift grows**, about 0.3 → 0.4 → 0.6: each client's local epochs carry it further from the
#   global model, towards a model of its own few digits.
# - **Agreement falls**, about 0.7 → 0.5 → 0.3: the clients' updates point in ever more
#   different directions.
# - **Gradient dissimilarity grows about ninety-fold**, roughly 0.1 → 1 → 9: already at the
#   global model, before any local step, the clients' gradients disagree.
# - **Accuracy** holds at α = 1 (about 0.93, as near-IID) but drops to about 0.86 at α = 0.1, and
#   that curve jumps from round to round.
#
# Why high drift with low agreement is the bad combination: the server's step is the average
# $\sum_k p_k \Delta_k$. Long vectors that point the same way average to a long step (IID
# clients, notebook 03). Long vectors that point different ways mostly cancel — the server's
# step is far shorter than any client's trip, so most of the local work is thrown away — and
# what is left leans towards whichever clients happened to be sampled this round. The next
# round samples other clients and leans elsewhere: hence the jumps in the α = 0.1 curve. Drift
# shrinks over the rounds in every run (gradients shrink as the model improves), but the
# agreement at α = 0.1 stays around 0.3 throughout.
#
# `fedlab.plot.plot_drift` shows the same per client (grey dots), for the two extreme splits:

# %%
fig, axes = plt.subplots(2, 2, figsize=(10, 5.6), layout="constrained", sharey="col")
for row, alpha in zip(axes, (100, 0.1), strict=True):
    fedlab.plot.plot_drift(by_alpha[alpha], axes=row, legend=alpha == 100)
    row[0].set_title(f"Client drift, α = {alpha}")
    row[1].set_title(f"Update agreement, α = {alpha}")

# %% [markdown]
# At α = 100 every client drifts about as far as every other, and early on all their updates
# agree with the average (cosines near 0.9). At α = 0.1 the dots spread: in one round one
# client may drift several times as far as another — clients with more data take more local
# steps (E·n_k/B, and the sizes here range from 11 to 206) and tend to drift further — and the
# cosines scatter from below 0 to about 0.9: some clients' updates point *against* the direction
# the server takes.

# %% [markdown]
# ## 4. More local work on non-IID clients
#
# In notebook 03, on IID clients, more local steps per round meant fewer rounds. Does that still
# hold when the clients pull apart? Run E = 10 local epochs (five times the local work) on the
# nearly IID split and on α = 0.1, and compare with the E = 2 runs above.

# %%
by_epochs = {(alpha, 2): by_alpha[alpha] for alpha in (100, 0.1)}
for alpha in (100, 0.1):
    by_epochs[alpha, 10] = experiment(splits[alpha], local_epochs=10)


# %% tags=["nbval-check-output"]
def rounds_to(history, target):
    reached = np.flatnonzero(history.test_accuracy >= target)
    return int(history.round[reached[0]]) if reached.size else "—"


print(f"{'α':>5}{'E':>4}{'to 80 %':>9}{'to 90 %':>9}{'accuracy':>10}{'drift':>7}{'agreement':>11}")
for (alpha, epochs), h in sorted(by_epochs.items(), key=lambda item: -item[0][0]):
    accuracy, drift, cosine = summary(h)
    print(
        f"{alpha:>5}{epochs:>4}{rounds_to(h, 0.8):>9}{rounds_to(h, 0.9):>9}"
        f"{accuracy:>10.2f}{drift:>7.2f}{cosine:>11.2f}"
    )

# %% [markdown]
# The accuracy curves (colour: the split; dashed E = 2, solid E = 10):

# %%
fig, ax = plt.subplots(figsize=(6.5, 3.3), layout="constrained")
for (alpha, epochs), history in by_epochs.items():
    fedlab.plot.plot_accuracy(history, ax=ax, label=f"α = {alpha}, E = {epochs}")
    color, style = ("tab:blue" if alpha == 100 else "tab:orange"), ("--" if epochs == 2 else "-")
    ax.lines[-1].set(color=color, linestyle=style)
ax.set_ylim(0.2, 1)
ax.legend(fontsize="small");

# %% [markdown]
# On the nearly IID split five times the local work pays as in notebook 03: 90 % in about 3
# rounds instead of about 13, and 80 % after the first. On α = 0.1 it **still helps in this run**,
# but less: 90 % in about 12 rounds instead of about 23, 80 % in about 6 instead of about 11, and
# about 0.91 instead of 0.86 over the last five rounds — half the rounds for five times the work,
# where the IID split got a quarter. Drift rises (about 0.6 → 0.7) while agreement stays at about
# 0.3: the extra steps carry each client further towards its own digits, not towards a common
# goal. And E = 10 on α = 0.1 (solid orange) still ends below plain E = 2 on the nearly IID split
# (about 0.91 vs 0.93 over the last five rounds), and still jumps around.
#
# The playground explains the picture: more local steps reach the neighbourhood of the answer
# in fewer rounds, but the neighbourhood's centre — FedAvg's fixed point — moves away from the
# optimum as τ grows. On these digits the biased point is still good enough that speed wins.
# With stronger skew, more local steps or a higher learning rate the bias can win instead, and E
# must be tuned per split (exercise 2). One seed and one run per setting: differences of a few
# points are within the noise.

# %% [markdown]
# ## 5. The dashboard on non-IID clients
#
# The dashboard of notebook 03, started on this section's α = 0.1 split with the same FedAvg
# settings. Its lower panels are the drift plots of section 3, redrawn after every round:
# each client's drift (grey dots) with the mean and maximum, and each client's update agreement.
# Five rounds are run now so that the saved notebook shows a picture.

# %%
dash = fedlab.widgets.Dashboard(
    partition="dirichlet",
    alpha=0.1,
    num_clients=NUM_CLIENTS,
    clients_per_round=CLIENTS_PER_ROUND,
    local_epochs=LOCAL_EPOCHS,
    batch_size=BATCH_SIZE,
    client_lr=CLIENT_LR,
    num_rounds=NUM_ROUNDS,
    seed=SEED,
)
dash.run(num_rounds=5, block=True)  # five rounds now, so the saved notebook shows a plot
dash

# %% [markdown]
# Same settings, same seed: the dashboard's run *is* the α = 0.1 run of section 3.

# %% tags=["nbval-check-output"]
np.testing.assert_allclose(dash.history.test_accuracy, by_alpha[0.1].test_accuracy[:5])
accuracy = dash.history.test_accuracy[-1]
print(f"dashboard: {len(dash.history)} rounds, test accuracy {accuracy:.2f}, as in section 3 ✓")

# %% [markdown]
# Look at the loss panel: the clients' own training loss (solid) lies far below the global
# model's test loss (dashed). Each client fits its own few digits well; the average of those
# models fits everyone worse.
#
# Things to try (press Run after each change):
#
# 1. Press **Run**: the run goes on to 25 rounds. Watch the grey dots of the drift panel — which
#    clients drift furthest?
# 2. Set **Dirichlet α** to 100 and Run: the α = 0.1 curve stays on the accuracy chart, so the
#    two compare on one chart; the agreement panel moves up towards 1.
# 3. Back to α = 0.1 with **local epochs E** = 10: faster at first, but how noisy?
# 4. Pick **FedProx** (try μ = 0.1) or **SCAFFOLD** in the algorithm dropdown on α = 0.1: a
#    preview of notebook 05. Does either steady the accuracy curve?
# 5. Split **shards** with 1 shard per client: every client sees a single digit. How low does the
#    agreement go?

# %% [markdown]
# ## Summary
#
# - **Client drift**: with τ > 1 local steps on non-IID clients, each client walks towards its
#   own optimum, and FedAvg stops where the clients' trips cancel, not where the gradients
#   cancel — a **biased** fixed point, $w_{\text{FedAvg}} = (\sum_k p_k M_k)^{-1}
#   \sum_k p_k M_k o_k$ with $M_k = I - (I - \eta A_k)^\tau$ on quadratics.
# - On the playground the bias was 0.000 at τ = 1, 0.097 at τ = 2, 0.650 at τ = 10 and 1.239 at
#   τ = 50, approaching the plain mean of the clients' optima (1.30 from $w^\star$); with
#   identical clients it was 0.000 even at τ = 50. More local steps converged faster, to a worse
#   point.
# - At τ = 10, FedProx (μ = 2) shrank the bias from 0.650 to 0.408 and SCAFFOLD removed it
#   (0.000): notebook 05.
# - On digits, from α = 100 to α = 0.1 (H 0.04 → 0.69): mean drift about 0.3 → 0.6, update
#   agreement about 0.7 → 0.3, gradient dissimilarity about 0.1 → 9, accuracy about
#   0.93 → 0.86 with jumps from round to round. Drift is harmful when it comes with low
#   agreement: the clients' updates cancel in the average.
# - Five times more local work (E = 2 → 10) cut the rounds to 90 % from about 13 to 3 near IID
#   but only from about 23 to 12 at α = 0.1, with more drift and no better agreement.
# - The dashboard shows the same drift panels live, and keeps earlier runs for comparison.
#
# ## Exercises
#
# *Functions, classes and arguments that no cell above uses are named in full (`fedlab.…`):
# `help()` on one (or on its class) shows its documentation, and on the course website the name
# links to its entry in the API reference.*
#
# Each exercise below has a cell for your answer, in code, and a **check** cell after it. Run the
# check: it prints ✓ and what it verified, or ✗ and the mistake it recognised, with a hint. The
# parts that ask you to explain have a cell for your answer in words. The digits exercises reuse
# section 3's `experiment`, `splits`, `by_alpha` and `summary` and section 4's `by_epochs` and
# `rounds_to`; the playground ones section 2's `problem` and `w_star`.
#
# 1. **Shards.** Add `fedlab.partition.shards(digits.y_train, NUM_CLIENTS, 2, seed=SEED)` to the
#    table of section 3 (one more run). Where does it fall on H, drift, agreement and G? Is G
#    ordered like H?
# 2. **When does more local work stop paying?** On the α = 0.1 split, run E = 1, 5 and 20. Is
#    there an E after which the rounds to 90 % grow again? Repeat E = 2, 10 and 20 with `seed=1`
#    and `seed=2` before you trust a difference.
# 3. **ητ.** On the playground, compute `playground.fedavg_fixed_point(problem, tau, lr)` for
#    (τ, η) = (10, 0.1), (20, 0.05), (50, 0.02) and (100, 0.01). What do you notice about the
#    bias? Write the fixed point with the approximation
#    $M_k = I - (I - \eta A_k)^\tau \approx I - e^{-\eta\tau A_k}$ and explain the bias from it.
# 4. **How much μ?** With τ = 10 and η = 0.1, compute the distance of
#    `fedlab.playground.fedprox_fixed_point(problem, 10, PLAY_LR, mu)` from $w^\star$ for μ from 0
#    to 13. How close can FedProx get? Why does it get worse again as μ nears 13? (Hint:
#    `fedlab.playground.max_stable_lr(problem, mu)`: find the μ where it falls to η.)
# 5. **Dissimilarity during training.** Plot the computed (non-`nan`) values of
#    `history.gradient_dissimilarity` against `history.round` for the three α. Does G shrink as
#    the model trains, as drift does? (FedProx's analysis, Li et al. 2020, assumes the ratio
#    B(w) stays bounded.)

# %%
from fedlab import exercises

# %% [markdown]
# ### Exercise 1 · Shards
#
# **(a)** Make `shard_split`, the split `fedlab.partition.shards(digits.y_train, NUM_CLIENTS, 2,
# seed=SEED)`, and `shard_run`, section 3's FedAvg on it, with the gradient dissimilarity every
# fifth round as section 3 computed it.

# %%
shard_split = ...  # the shards split, 2 shards per client
shard_run = ...  # section 3's run (experiment) on shard_split
# BEGIN SOLUTION
shard_split = fedlab.partition.shards(digits.y_train, NUM_CLIENTS, 2, seed=SEED)
shard_run = experiment(shard_split, dissimilarity_every=5)
# END SOLUTION

# %% tags=["self-check"]
shards_wanted = {"split": "shards(2/client)"}
exercises.check_runs(
    shard_run, by_alpha[0.1], name="shard_run", what="section 3's α = 0.1 run", **shards_wanted
)

# %% [markdown]
# **(b)** Write `table`, section 3's table with a row for shards: `{key: (H, accuracy, drift,
# agreement, G)}`, with the keys of `by_alpha` and `"shards"`, every number computed as section 3
# computes it. Print it.

# %%
table = ...  # {α or "shards": (H, accuracy, drift, agreement, G)}
# BEGIN SOLUTION
table = {}
for name, history in {**by_alpha, "shards": shard_run}.items():
    split = shard_split if name == "shards" else splits[name]
    g = np.nanmean(history.gradient_dissimilarity)
    table[name] = (split.heterogeneity(), *summary(history), g)
print(f"{'':>7}{'H':>6}{'accuracy':>10}{'drift':>7}{'agreement':>11}{'G':>7}")
for name, (h, accuracy, drift, cosine, g) in table.items():
    print(f"{name:>7}{h:>6.2f}{accuracy:>10.2f}{drift:>7.2f}{cosine:>11.2f}{g:>7.2f}")
# END SOLUTION

# %% tags=["self-check"]
all_splits, all_runs = {**splits, "shards": shard_split}, {**by_alpha, "shards": shard_run}
exercises.check_drift_table(table, all_splits, all_runs)

# %% [markdown]
# **(c)** Is G ordered like H over the four splits? Set `g_follows_h` to True or False.

# %%
g_follows_h = ...  # True if, sorted by H, the splits have G in the same order
# BEGIN SOLUTION
g_by_h = [row[-1] for row in sorted(table.values())]  # G of the rows sorted by H (first)
g_follows_h = bool(np.all(np.diff(g_by_h) > 0))
# END SOLUTION

# %% tags=["self-check"]
exercises.check_g_follows_h(g_follows_h, table)

# %% [markdown]
# **Where does shards fall on H, drift, agreement and G?**
#
# <!-- BEGIN SOLUTION -->
# **Model answer.** Beyond α = 0.1 on almost every measure. Its H is 0.80, the highest of the four
# (every client holds two shards, at most two digits); its drift 0.74 is the largest (α = 0.1:
# 0.58) and its G 13.9 too (α = 0.1: 9.2); its accuracy, 0.83 over the last five rounds, the
# lowest. Only the agreement does not move on: 0.33, the same as α = 0.1's 0.32 within the noise —
# once every client holds a few digits, their updates are about as unrelated as they get, and
# agreement stops telling skewed splits apart while G goes on growing. The drift is not a matter of
# a few big clients here: shards gives every client 70–72 examples, where α = 0.1 ranges from 11 to
# 206; label skew alone carries each client further. G is ordered like H on these four splits
# (0.10, 1.05, 9.2, 13.9 for H = 0.04, 0.33, 0.69, 0.80), though not in proportion: from α = 100 to
# α = 0.1 H grows about seventeen-fold and G about ninety-fold.
# <!-- END SOLUTION -->

# %% [markdown]
# ### Exercise 2 · When does more local work stop paying?
#
# **(a)** On the α = 0.1 split, run E = 1, 5 and 20 with `experiment`, into `epoch_sweep` keyed
# by E. With section 4's E = 2 and E = 10, print for every E the rounds to 80 % and to 90 %
# (`rounds_to`) and the accuracy of the last five rounds.

# %%
epoch_sweep = ...  # {E: History} for E = 1, 5 and 20 on the α = 0.1 split
# BEGIN SOLUTION
epoch_sweep = {e: experiment(splits[0.1], local_epochs=e) for e in (1, 5, 20)}
sweep = {**epoch_sweep, 2: by_epochs[0.1, 2], 10: by_epochs[0.1, 10]}
print(f"{'E':>3}{'to 80 %':>9}{'to 90 %':>9}{'accuracy':>10}")
for e in sorted(sweep):
    h = sweep[e]
    print(f"{e:>3}{rounds_to(h, 0.8):>9}{rounds_to(h, 0.9):>9}{summary(h)[0]:>10.2f}")
# END SOLUTION

# %% tags=["self-check"]
more_epochs = {"local_epochs": {1: 1, 5: 5, 20: 20}}
exercises.check_runs(
    epoch_sweep,
    by_epochs[0.1, 10],
    name="epoch_sweep",
    what="section 4's α = 0.1 run with E = 10",
    **more_epochs,
)

# %% [markdown]
# **(b)** A seed fixes the initial model, the clients sampled each round and the batches. Run
# E = 2, 10 and 20 on the α = 0.1 split again with `seed=1` and with `seed=2` (`fedlab.simulate`
# as `experiment` calls it, with another seed), into `seed_runs` keyed by `(E, seed)`. Print the
# rounds to 90 % for every E and the seeds 0, 1 and 2.

# %%
seed_runs = ...  # {(E, seed): History} for E in (2, 10, 20) and seed in (1, 2)
# BEGIN SOLUTION
seed_runs, split = {}, splits[0.1]
as_section_4 = {"num_rounds": NUM_ROUNDS, "clients_per_round": CLIENTS_PER_ROUND, "progress": False}
for e in (2, 10, 20):
    algorithm = fedlab.FedAvg(local_epochs=e, batch_size=BATCH_SIZE, client_lr=CLIENT_LR)
    for s in (1, 2):
        seed_runs[e, s] = fedlab.simulate(
            algorithm, model_fn, digits, split, seed=s, **as_section_4
        )
seed_0 = {2: by_epochs[0.1, 2], 10: by_epochs[0.1, 10], 20: epoch_sweep[20]}
print("rounds to 90 %  seed 0  seed 1  seed 2")
for e in (2, 10, 20):
    found = [rounds_to(h, 0.9) for h in (seed_0[e], seed_runs[e, 1], seed_runs[e, 2])]
    print(f"E = {e:<11}" + "".join(f"{r:>8}" for r in found))
# END SOLUTION

# %% tags=["self-check"]
keys = [(e, s) for e in (2, 10, 20) for s in (1, 2)]
per_seed = {"local_epochs": {k: k[0] for k in keys}, "seed": {k: k[1] for k in keys}}
exercises.check_runs(
    seed_runs, by_epochs[0.1, 10], name="seed_runs", what="section 4's α = 0.1 run", **per_seed
)

# %% [markdown]
# **Is there an E after which the rounds to 90 % grow again? Do the seeds agree?**
#
# <!-- BEGIN SOLUTION -->
# **Model answer.** Not up to E = 20. With seed 0, E = 1 never reaches 90 % in 25 rounds (80 % in
# round 15), E = 2 and E = 5 reach it in round 23, E = 10 in round 12 and E = 20 in round 10, and
# the accuracy of the last five rounds rises with E: 0.84, 0.86, 0.90, 0.91, 0.92. The seeds agree
# on the large step and not on the small one: E = 2 reaches 90 % with seed 0 only (round 23),
# E = 10 with all three (rounds 12, 14, 15), so going from 2 to 10 epochs is a real gain. E = 20
# needs 10, 6 and 15 rounds: better than E = 10 with two seeds and the same with the third, a
# difference of a few rounds that one seed cannot settle, since at α = 0.1 the accuracy jumps by
# several points from round to round. The rounds are not free either: E = 20 does ten times the
# local computation of E = 2 per round and twice that of E = 10, for a few rounds at best. Counted
# in client computation rather than rounds, more local work stopped paying before E = 20. The bias
# of section 2 grows with τ, but on these digits, with this split and learning rate, it has not yet
# cost the 90 % line: no turning point up to E = 20.
# <!-- END SOLUTION -->

# %% [markdown]
# ### Exercise 3 · ητ
#
# **(a)** For each (τ, η) in `PAIRS`, compute FedAvg's bias on the playground problem — the
# distance of `playground.fedavg_fixed_point(problem, tau, lr)` from `w_star` — into `biases`,
# keyed by `(tau, lr)`. Print them.

# %%
PAIRS = [(10, 0.1), (20, 0.05), (50, 0.02), (100, 0.01)]  # (τ, η)
biases = ...  # {(τ, η): ‖w_FedAvg − w*‖}
# BEGIN SOLUTION
biases = {
    (tau, lr): np.linalg.norm(playground.fedavg_fixed_point(problem, tau, lr) - w_star)
    for tau, lr in PAIRS
}
for (tau, lr), bias in biases.items():
    print(f"τ = {tau:<3}  η = {lr:<4}  ητ = {tau * lr:.1f}  bias {bias:.4f}")
# END SOLUTION

# %% tags=["self-check"]
exercises.check_bias_by_eta_tau(biases, problem, PAIRS)

# %% [markdown]
# **(b)** For small η, $(1 - \eta\lambda)^\tau \approx e^{-\eta\tau\lambda}$, so
# $M_k \approx I - e^{-\eta\tau A_k}$, a *matrix* exponential. Write
# `approx_fixed_point(problem, tau, lr)`: FedAvg's fixed point
# $(\sum_k p_k M_k)^{-1} \sum_k p_k M_k o_k$ with that approximation of every $M_k$
# (`problem.curvatures` holds the $A_k$, `problem.weights` the $p_k$, `problem.optima` the $o_k$).
# Hint: a symmetric $A = V \,\mathrm{diag}(\lambda)\, V^\top$ (`np.linalg.eigh`) has
# $e^{-cA} = V \,\mathrm{diag}(e^{-c\lambda})\, V^\top$.

# %%
def approx_fixed_point(problem, tau, lr):
    """FedAvg's fixed point with every M_k = I − e^{−η τ A_k}, a matrix exponential."""
    # BEGIN SOLUTION
    lam, vec = np.linalg.eigh(problem.curvatures)  # every client's A_k at once
    m = np.eye(2) - vec @ (np.exp(-lr * tau * lam)[..., None] * vec.transpose(0, 2, 1))
    a = np.einsum("k,kij->ij", problem.weights, m)
    b = np.einsum("k,kij,kj->i", problem.weights, m, problem.optima)
    return np.linalg.solve(a, b)
    # END SOLUTION


# %% tags=["self-check"]
exercises.check_exp_fixed_point(approx_fixed_point)
# BEGIN HIDDEN TESTS
exercises.check_exp_fixed_point(approx_fixed_point, seed=1)
# END HIDDEN TESTS

# %% [markdown]
# **(c)** Print, for every pair of `PAIRS`, the bias of `approx_fixed_point` beside the exact one
# of (a). What do you notice about the bias? Explain it from $M_k \approx I - e^{-\eta\tau A_k}$.

# %%
# BEGIN SOLUTION
for tau, lr in PAIRS:
    approx = np.linalg.norm(approx_fixed_point(problem, tau, lr) - w_star)
    print(f"τ = {tau:<3}  η = {lr:<4}  exact {biases[tau, lr]:.4f}  with e^(−ητA) {approx:.4f}")
# END SOLUTION

# %% [markdown]
# <!-- BEGIN SOLUTION -->
# **Model answer.** The bias is almost the same for all four pairs: 0.6504, 0.6472, 0.6455 and
# 0.6450, and every pair has ητ = 1. It tends to 0.6445 as η shrinks, the value of
# `approx_fixed_point`, which is the same for all four. An eigenvalue of M_k is 1 − (1 − ηλ)^τ, and
# for small ηλ, (1 − ηλ)^τ = e^{τ ln(1 − ηλ)} ≈ e^{−ητλ}. So M_k ≈ I − e^{−ητA_k} depends on η and
# τ only through their product, and so does the fixed point made of the M_k. τ local steps of size
# η are a discretised walk down F_k for a "time" ητ: how that time is cut into steps hardly
# matters. What is left (0.6504 against 0.6445 at η = 0.1, 0.0005 at η = 0.01) is the error of
# ln(1 − ηλ) ≈ −ηλ, which shrinks with η. So the bias is set by how far a client walks, ητ, not by
# τ alone: halve the learning rate and the clients can take twice as many local steps at the same
# bias, and a comparison of local step counts means something only at a fixed η.
# <!-- END SOLUTION -->

# %% [markdown]
# ### Exercise 4 · How much μ?
#
# **(a)** With τ = 10 and η = `PLAY_LR`, compute FedProx's bias — the distance of
# `fedlab.playground.fedprox_fixed_point(problem, 10, PLAY_LR, mu)` from `w_star` — for every μ in
# `mus`, into `prox_bias`, and set `best_mu` to the μ with the smallest bias. Plot the bias
# against μ.

# %%
mus = np.arange(0, 13.01, 0.25)  # μ from 0 (FedAvg) to 13
prox_bias = ...  # ‖w_FedProx − w*‖ for every μ in mus
best_mu = ...  # the μ of mus with the smallest bias
# BEGIN SOLUTION
prox_bias = [
    np.linalg.norm(playground.fedprox_fixed_point(problem, 10, PLAY_LR, mu) - w_star) for mu in mus
]
best_mu = mus[np.argmin(prox_bias)]
print(f"μ = 0 (FedAvg): {prox_bias[0]:.3f}   μ = 13: {prox_bias[-1]:.3f}", end="   ")
print(f"smallest: {min(prox_bias):.3f} at μ = {best_mu}")
fig, ax = plt.subplots(figsize=(5.5, 3), layout="constrained")
ax.plot(mus, prox_bias)
ax.set(xlabel="μ", ylabel="‖w_FedProx − w*‖", title="FedProx's bias, τ = 10, η = 0.1");
# END SOLUTION

# %% tags=["self-check"]
exercises.check_prox_sweep(mus, prox_bias, best_mu, problem=problem, local_steps=10, lr=PLAY_LR)

# %% [markdown]
# **(b)** `fedlab.playground.max_stable_lr(problem, mu)` is the largest step size at which every
# client's local gradient descent on $F_k(y) + \frac{\mu}{2}\lVert y - w \rVert^2$ still
# contracts. Find `mu_limit`, the μ at which it falls to `PLAY_LR` (solve its formula for μ, or
# search).

# %%
mu_limit = ...  # the μ where max_stable_lr(problem, μ) = PLAY_LR
# BEGIN SOLUTION
steepest = problem.eigenvalues()[:, 1].max()  # the largest curvature λ_max of any client
mu_limit = 2 / PLAY_LR - steepest  # max_stable_lr(problem, μ) = 2 / (λ_max + μ)
stable = playground.max_stable_lr(problem, mu_limit)
print(f"steepest λ_max = {steepest:.2f}; max_stable_lr at μ = {mu_limit:.2f}: {stable:.3f}")
# END SOLUTION

# %% tags=["self-check"]
exercises.check_mu_limit(mu_limit, problem, PLAY_LR)

# %% [markdown]
# **(c)** How close can FedProx get? Why does it get worse again as μ nears 13?
#
# <!-- BEGIN SOLUTION -->
# **Model answer.** To 0.128 from $w^\star$ at μ = 10.5, five times closer than FedAvg's 0.650
# (μ = 0), but never to 0. Beyond that the bias grows again, to 0.397 at μ = 13, about as bad as
# μ = 2 (0.408). The proximal term makes client k's local loss a bowl of curvature A_k + μI, and a
# local step of size η multiplies the distance to that bowl's centre by 1 − η(λ + μ) along each
# axis. `max_stable_lr(problem, μ)` = 2 / (λ_max + μ) falls to η = 0.1 at μ = 13.50 (the steepest
# client has λ_max = 6.50). Near that limit 1 − η(λ_max + μ) nears −1 (−0.95 at μ = 13): along the
# steepest axis the client jumps from side to side instead of settling, and after τ = 10 steps it
# has covered only part of the way (its factor 1 − (1 − η(λ + μ))^τ is 0.40 at μ = 13, against 0.97
# at μ = 10.5). The steep axes of N_k lose weight, N_k stops being nearly proportional to A_k, and
# the fixed point slides away from $w^\star$ again — the same kind of distortion as FedAvg's, now
# from steps that are too large for the stiffened bowl. From μ = 13.5 on, the local steps diverge.
# The best μ is a compromise: large enough that (A_k + μI)⁻¹A_k ≈ A_k / μ, small enough that
# η(λ_max + μ) stays well below 2; and every increase of μ also shortens the clients' trips, so
# convergence slows.
# <!-- END SOLUTION -->

# %% [markdown]
# ### Exercise 5 · Dissimilarity during training
#
# **(a)** Write `computed(history)`: the round numbers where G was computed and its values there,
# as two arrays `(rounds, values)`.

# %%
def computed(history):
    """(rounds, values): history.round and history.gradient_dissimilarity where G is not nan."""
    # BEGIN SOLUTION
    g = history.gradient_dissimilarity
    done = ~np.isnan(g)
    return history.round[done], g[done]
    # END SOLUTION


# %% tags=["self-check"]
exercises.check_computed_dissimilarity(computed)
# BEGIN HIDDEN TESTS
exercises.check_computed_dissimilarity(computed, seed=1)
# END HIDDEN TESTS

# %% [markdown]
# **(b)** Plot G against the round for the three α of section 3 (a log scale helps), and set
# `g_shrinks[α]` to True where G in the last round it was computed is below G in the first. Print
# the first and last G and the mean drift of the first and the last round of every α.

# %%
g_shrinks = ...  # {α: True if G fell from its first to its last computation}
# BEGIN SOLUTION
g_shrinks = {}
fig, ax = plt.subplots(figsize=(5.5, 3), layout="constrained")
for alpha, history in by_alpha.items():
    rounds, values = computed(history)
    ax.plot(rounds, values, marker="o", label=f"α = {alpha}")
    g_shrinks[alpha] = bool(values[-1] < values[0])
    drift = history.drift_mean
    print(f"α = {alpha:<4} G {values[0]:5.2f} → {values[-1]:5.2f}", end="   ")
    print(f"drift {drift[0]:.2f} → {drift[-1]:.2f}")
ax.set(xlabel="round", ylabel="gradient dissimilarity G", yscale="log")
ax.legend(fontsize="small");
# END SOLUTION

# %% tags=["self-check"]
exercises.check_g_shrinks(g_shrinks, by_alpha)

# %% [markdown]
# **(c)** Does G shrink as the model trains, as drift does? What does that mean for an analysis
# that assumes the ratio $B(w)^2 = \sum_k \frac{n_k}{n} \lVert \nabla F_k(w) \rVert^2 /
# \lVert \nabla f(w) \rVert^2$ stays bounded?
#
# <!-- BEGIN SOLUTION -->
# **Model answer.** Not as drift does. The drift shrinks in every run (α = 0.1: from 1.06 in round
# 1 to 0.36 in round 25). G shrinks at α = 1, from 1.61 in round 5 to 0.64 in round 25, and at
# α = 0.1, from 12.3 to 6.6 but not steadily (it rises again in round 20); at α = 100 it does not
# shrink at all, 0.08 → 0.10, the sampling noise of clients that each hold about 70 examples. Drift
# shrinks because the gradients get shorter as the model improves; G measures how the clients'
# gradients differ, and training does not remove that: at the optimum $w^\star$ of f,
# $\nabla f(w^\star) = 0$ but every $\nabla F_k(w^\star)$ is not (unless the clients agree), so
# $G(w^\star) = \frac1N \sum_k \lVert \nabla F_k(w^\star) \rVert^2 > 0$. Then $B(w)^2$ has a
# numerator that stays of the order of G and a denominator $\lVert \nabla f(w) \rVert^2$ that goes
# to 0: it grows without bound as the model nears $w^\star$. An analysis that assumes B bounded
# holds far from the optimum, not near it, where the bias of section 2 sits. SCAFFOLD's analysis
# needs no such bound (notebook 05).
# <!-- END SOLUTION -->
