# %% [markdown]
# # 11 · Differential privacy
#
# *Purpose: make FedAvg differentially private for every client — clip, add noise, count the
# privacy budget ε with a real accountant — and measure what it costs in accuracy.*
#
# **Goals**
# - Say what user-level (ε, δ)-differential privacy promises, and what it does not.
# - Clip client updates by hand and with `fedlab.privacy.clip_updates`; add the noise by hand and
#   with `dp_aggregate`; check they match.
# - Count ε with Google's `dp-accounting` (`epsilon`, `PrivacyAccountant`,
#   `calibrate_noise_multiplier`): how it grows with rounds, falls with noise, and depends on the
#   sampling rate q.
# - Draw a privacy–utility curve on digits: test accuracy against ε at δ = 10⁻⁵.
# - See why more clients per round help, why a handful of clients cannot have useful DP, and why
#   *local* DP (noise on each client) costs far more accuracy than central DP at the same ε.
# - Move z, S and q in a live panel.
#
# **You will need:** [01 · One round by hand](01_one_round_by_hand.ipynb) (client updates,
# `fedlab.steps`) and [03 · FedSGD vs FedAvg](03_fedsgd_vs_fedavg.ipynb); about 50 s to run,
# CPU is fine.

# %% [markdown]
# ## Setup
#
# `import fedlab` comes **first**: it quietens TensorFlow's start-up log lines before TensorFlow
# loads. `fedlab.privacy` and the panel are imported by name.

# %%
import sys

FEDLAB = "fedlab-edu @ git+https://github.com/fedlab-edu/fedlab"  # what Colab installs
if "google.colab" in sys.modules:  # elsewhere `python3 dev.py lab` has installed fedlab already
    import subprocess

    subprocess.run([sys.executable, "-m", "pip", "install", "-q", FEDLAB], check=True)

# %%
import fedlab  # first: it quietens TensorFlow's start-up log lines
from fedlab import privacy
from fedlab.privacy_panel import PrivacyPanel

import matplotlib.pyplot as plt
import numpy as np

print(", ".join(f"{name} {version}" for name, version in fedlab.versions().items()))

# %% [markdown]
# The run sizes. Digits has only 1,437 training images; to protect *clients* we need many of
# them, so the images are split IID among 400 clients (3–4 images each — think of 400 phones with
# a few pictures each). Each round samples about 40 of them (q = 0.1). Every client trains 5 local
# epochs of full-batch gradient descent. Every DP run costs a few seconds, most of it the
# accountant computing ε after each round.

# %%
NUM_CLIENTS = 400  # N
CLIENTS_PER_ROUND = 40  # K, expected: each client takes part with probability q = K/N
NUM_ROUNDS = 15  # T
CLIP_NORM = 0.5  # S
DELTA = 1e-5  # δ, well below 1/N
LOCAL = dict(client_lr=0.2, local_epochs=5, batch_size=None)  # full-batch local training
SEED = 0

# %% [markdown]
# ## 1. What DP promises
#
# A randomised training procedure M is **(ε, δ)-differentially private** if for any two
# *neighbouring* datasets D, D′ and any set of outcomes O
#
# $$P[M(D) \in O] \le e^{\varepsilon}\, P[M(D') \in O] + \delta .$$
#
# In federated learning the natural unit is the **client**: D and D′ differ by *all* the data of
# one client (add or remove one user). This is **user-level** DP: whatever one person holds —
# one image or a thousand — changes the distribution of the final model (and of every
# intermediate one) by at most a factor e^ε, except with probability δ. An attacker who sees
# the models cannot tell confidently whether you took part. ε ≈ 1 is strong, ε ≈ 10 is weak
# but still meaningful; δ should be far below 1/N.
#
# DP says nothing about what the model learns from *everyone* (that is the point of training)
# and nothing if the server itself is not trusted: in DP-FedAvg the server sees the clients'
# clipped updates before adding noise (secure aggregation, notebook 12, or local DP, section 7,
# remove that trust).
#
# DP-FedAvg (McMahan et al. 2018) gets there in four steps (`fedlab.privacy`): **Poisson
# sampling** of clients with probability q, **clipping** each update to norm ≤ S, **Gaussian
# noise** of standard deviation z·S on the sum, divided by the *expected* K = qN, and an
# **accountant** that turns (z, q, T) into ε.

# %% [markdown]
# ## 2. Clipping, by hand and with `clip_updates`
#
# Noise can only hide a client if no client can move the aggregate by much. Clipping bounds
# that: each update Δ_k (all its weights together, as one vector) is scaled to norm at most S,
#
# $$\bar\Delta_k = \Delta_k \cdot \min\Big(1, \frac{S}{\lVert \Delta_k \rVert}\Big).$$
#
# Real updates to clip: one round of FedAvg on 40 clients, one client at a time
# (`fedlab.steps.run_round`, notebook 01). `stacked` holds one `[K, ...]` array per weight.

# %%
digits = fedlab.load_digits()
split = fedlab.partition.iid(digits.y_train, num_clients=NUM_CLIENTS, seed=SEED)
mlp = fedlab.models.model_fn("mlp", 10)  # hashable: all runs below share one compiled kernel
model, weights = fedlab.steps.initialize(mlp, digits.x_train, SEED)
fedavg = fedlab.FedAvg(**LOCAL)

# %% [markdown]
# One round on K = 40 clients; stack each weight's 40 updates into one `[K, ...]` array. Notice
# the leading 40 in every shape:

# %%
result = fedlab.steps.run_round(
    model, weights, digits, split, fedavg, CLIENTS_PER_ROUND, round_num=1, seed=SEED
)
stacked = [np.stack(arrays) for arrays in zip(*[c.delta for c in result.clients], strict=True)]
print([a.shape for a in stacked])

# %% [markdown]
# Scratch: the norm of each client's whole update, the scale factor, the clipped updates. Then
# the package; they must match.

# %% tags=["nbval-check-output"]
norms = np.sqrt(sum(np.sum(a.reshape(len(a), -1) ** 2, axis=1) for a in stacked))
scale = np.minimum(1.0, CLIP_NORM / norms)
by_hand = [a * scale.reshape(-1, *[1] * (a.ndim - 1)) for a in stacked]

# %% [markdown]
# The package does the same in one call; the two must agree, and notice how many clients S
# clips:

# %% tags=["nbval-check-output"]
clipped, package_norms = privacy.clip_updates(stacked, CLIP_NORM)
np.testing.assert_allclose(package_norms, norms, rtol=1e-5)
for mine, theirs in zip(by_hand, clipped, strict=True):
    np.testing.assert_allclose(mine, theirs, rtol=1e-5, atol=1e-8)
print(f"norms {norms.min():.3f} to {norms.max():.3f}, median {np.median(norms):.3f}")
print(f"clipped at S = {CLIP_NORM}: {np.mean(norms > CLIP_NORM):.0%} of the clients")

# %%
clipped_norms = np.minimum(norms, CLIP_NORM)  # a clipped update is min(‖Δ‖, S) long
fig, ax = plt.subplots(figsize=(6, 3), layout="constrained")
bins = np.linspace(0, norms.max() * 1.05, 25)
ax.hist(norms, bins, alpha=0.6, label="before clipping")
ax.hist(clipped_norms, bins, alpha=0.6, label="after clipping")
ax.axvline(CLIP_NORM, color="k", ls="--", label=f"S = {CLIP_NORM}")
ax.set(xlabel="‖Δ_k‖ (all weights)", ylabel="clients", title="Round 1: update norms")
ax.legend(fontsize="small")
plt.show()

# %% [markdown]
# S is a trade-off. Too small and every update is shrunk — a bias that slows training (and the
# update's *direction* is all that is left of a big update); too large and the noise, which is
# proportional to S, drowns the signal. A common rule is to put S near the median norm, so that
# about half the updates are clipped. Here S = 0.5 is well below the median (about 1.3) and
# clips *every* update: a deliberately small S, because the noise z·S would be 2.6 times larger
# at S = 1.3 (exercise 1 looks for the best S). Clipping everything turns each update into its
# direction times S — training still works. DP-FedAvg reports the share clipped every round
# (`History.clipped_fraction`).

# %% [markdown]
# ## 3. Noise, by hand and with `dp_aggregate`
#
# The server sums the clipped updates, adds one Gaussian vector with standard deviation z·S per
# coordinate, and divides by the **expected** number of clients qN (a fixed number, so the
# divisor does not reveal how many took part):
#
# $$\tilde\Delta = \frac{1}{qN}\Big(\sum_k \bar\Delta_k + \mathcal N(0, z^2S^2 I)\Big).$$
#
# The noise on the average has standard deviation **z·S/(qN) = z·S/K** per coordinate. With the
# same random generator the hand version and `dp_aggregate` agree to float32 precision:

# %% tags=["nbval-check-output"]
z = 1.0
rng = np.random.default_rng(SEED)
noise = [rng.normal(0.0, z * CLIP_NORM, size=a.shape[1:]) for a in clipped]
mine = [(a.sum(axis=0) + n) / CLIENTS_PER_ROUND for a, n in zip(clipped, noise, strict=True)]

# %% [markdown]
# `dp_aggregate` with a generator seeded alike must give the same aggregate. Notice the two norms
# it reports — the signal and the noise on the average:

# %% tags=["nbval-check-output"]
theirs, stats = privacy.dp_aggregate(
    stacked, CLIP_NORM, z, CLIENTS_PER_ROUND, np.random.default_rng(SEED)
)
for a, b in zip(mine, theirs, strict=True):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
print(f"signal ‖Σ clipped‖/K = {stats.update_norm:.3f}, noise ‖noise‖/K = {stats.noise_norm:.3f}")
print(f"clipped fraction {stats.clipped_fraction:.2f}")

# %% [markdown]
# The noise vector is far **longer** than the signal: it has 9,610 coordinates (the MLP's
# weights), each with standard deviation z·S/K = 0.0125, so its norm is about
# 0.0125·√9610 ≈ 1.2. That looks hopeless, but the noise is fresh every round and points in a
# random direction, while the signal points the same way round after round: over many rounds
# the signal adds up linearly and the noise only like a random walk. Training still works — more
# slowly.

# %% [markdown]
# ## 4. The accountant: how much ε a run spends
#
# One round of DP-FedAvg is a **Poisson-subsampled Gaussian mechanism**; T rounds compose. The
# ε of that composition has no simple formula: `fedlab.privacy` asks Google's `dp-accounting`
# library (`round_event(z, q)` is the event it composes). `epsilon(z, q, T, δ)` is the budget
# after T rounds — never hand-compute it from the old "√T·ε per round" bounds, which are many
# times too loose. ε against rounds for a few noise multipliers at q = 0.1:

# %%
q = CLIENTS_PER_ROUND / NUM_CLIENTS
rounds = [5, 15, 50, 150]
curves = {z: [privacy.epsilon(z, q, t, DELTA) for t in rounds] for z in (0.7, 1.0, 2.0)}
fig, ax = plt.subplots(figsize=(6, 3), layout="constrained")
for z, eps in curves.items():
    ax.plot(rounds, eps, "o-", label=f"z = {z}")
ax.set(xscale="log", yscale="log", xlabel="rounds T", ylabel="ε", title=f"q = {q}, δ = {DELTA}")
ax.legend(fontsize="small")
plt.show()

# %% [markdown]
# ε grows with T (roughly like √T once T is large) and falls quickly with z. Two accountants
# answer the same question: RDP (Rényi DP, fast, a little loose) and PLD (privacy loss
# distributions, tighter, slower). `PrivacyAccountant` steps round by round — the engine uses it
# to record `History.epsilon` after every round — and `calibrate_noise_multiplier` inverts the
# relation: the z that makes ε exactly the target.

# %% tags=["nbval-check-output"]
rdp = privacy.epsilon(1.0, q, NUM_ROUNDS, DELTA, accountant="rdp")
pld = privacy.epsilon(1.0, q, NUM_ROUNDS, DELTA, accountant="pld")
accountant = privacy.PrivacyAccountant(1.0, q, DELTA)
accountant.step(NUM_ROUNDS)
assert accountant.epsilon() == rdp
print(f"z = 1, q = {q}, T = {NUM_ROUNDS}: ε = {rdp:.2f} (RDP), {pld:.2f} (PLD)")

# %% [markdown]
# And the other way round: the z for a target ε = 4. Notice it lands exactly on the target:

# %% tags=["nbval-check-output"]
z_for_4 = privacy.calibrate_noise_multiplier(4.0, q, NUM_ROUNDS, DELTA)
print(f"z for ε = 4: {z_for_4:.3f} (check: ε = {privacy.epsilon(z_for_4, q, NUM_ROUNDS):.2f})")

# %% [markdown]
# PLD's ε is about 15 % smaller for the same run: the privacy is the same, RDP's bound on it is
# just looser. The rest of the notebook uses RDP (the default) because it is fast.

# %% [markdown]
# ## 5. The privacy–utility curve
#
# Now train. `privacy.DPFedAvg(z, S, ...)` is FedAvg with Poisson sampling, clipping and noise;
# with `fedlab.simulate` it records ε after every round. Four noise multipliers from weak to
# strong privacy, against two baselines: plain FedAvg, and DP-FedAvg with z = 0 (clipping only,
# ε = ∞: what clipping alone costs).

# %%
RUN = dict(clients_per_round=CLIENTS_PER_ROUND, seed=SEED, progress=False)


def dp_run(z, clip_norm=CLIP_NORM, **run):
    algorithm = privacy.DPFedAvg(z, clip_norm, delta=DELTA, **LOCAL)
    return fedlab.simulate(algorithm, mlp, digits, split, NUM_ROUNDS, **{**RUN, **run})


# %% [markdown]
# `dp_run(z)` trains one DP-FedAvg run with this notebook's settings. The six runs (about 10 s):

# %%
baseline = fedlab.simulate(fedavg, mlp, digits, split, NUM_ROUNDS, **RUN)
clip_only = dp_run(0.0)
dp_runs = {z: dp_run(z) for z in (0.8, 1.2, 2.0, 4.0)}

# %% tags=["nbval-check-output"]
runs = {"FedAvg": baseline, "DP-FedAvg z = 0.0": clip_only}
runs |= {f"DP-FedAvg z = {z}": h for z, h in dp_runs.items()}
print(privacy.dp_table(runs))

# %%
fig, ax1 = plt.subplots(figsize=(6, 3.2), layout="constrained")
eps = [h.epsilon[-1] for h in dp_runs.values()]
ax1.plot(eps, [h.test_accuracy[-1] for h in dp_runs.values()], "o-", label="DP-FedAvg")
ax1.axhline(baseline.test_accuracy[-1], color="k", ls="--", label="FedAvg (ε = ∞)")
ax1.axhline(clip_only.test_accuracy[-1], color="gray", ls=":", label="clipping only")
ax1.set(xscale="log", xlabel=f"ε at δ = {DELTA}", ylabel="final test accuracy")
ax1.set_xticks(eps, [f"{e:.1f}" for e in eps], minor=False)
ax1.minorticks_off()
ax1.set(title="Privacy–utility")
ax1.legend(fontsize="small")
plt.show()

# %% [markdown]
# The same runs round by round: notice which curves are still climbing at round 15.

# %%
fig, ax = plt.subplots(figsize=(6, 3.2), layout="constrained")
for z, h in dp_runs.items():
    ax.plot(h.round, h.test_accuracy, label=f"z = {z} (ε = {h.epsilon[-1]:.1f})")
ax.plot(baseline.round, baseline.test_accuracy, "k--", label="FedAvg")
ax.set(xlabel="round", ylabel="test accuracy", ylim=(0, 1))
ax.legend(fontsize="small")
plt.show()

# %% [markdown]
# Read the first plot from right to left: clipping alone costs about 2 points (about 0.85 against
# FedAvg's 0.87); ε ≈ 6 costs almost nothing more, ε ≈ 2.7 another 3 points, ε ≈ 1 about 10,
# and at ε ≈ 0.4 the noise wins within 15 rounds (about 0.46). In the second, the DP runs are
# still climbing at round 15 while FedAvg has levelled off: clipped updates are short (S = 0.5
# against norms of about 1.3) and noisy, so DP-FedAvg needs more rounds — which cost ε. The
# recorded noise norm (`history.series("noise_norm")`) is the same every round for a given z —
# it is z·S·√d/K whatever the model does — while the signal shrinks as the model converges; more
# rounds at the same z raise ε.

# %% [markdown]
# ## 6. More clients per round
#
# The noise on the average has standard deviation z·S/K: with more clients per round, each
# client's signal is drowned by less noise. The price: q = K/N grows, so each client is sampled
# more often, and sampling amplifies privacy less — ε grows at the same z. The accountant says
# how much; at the same z, from 20 to 100 clients per round:

# %% tags=["nbval-check-output"]
table = privacy.sampling_table(
    (20, 40, 100), NUM_CLIENTS, NUM_ROUNDS, CLIP_NORM, target_epsilon=4.0, delta=DELTA
)
print(privacy.format_sampling_table(table))  # ε at z = 1; z and its noise for ε = 4
z_at_4 = {row.clients_per_round: row.noise_multiplier for row in table}

# %% [markdown]
# At a fixed target ε = 4, z has to grow with q, but much more slowly than K: the noise std on
# the average, z·S/K, falls 2.6-fold from K = 20 to K = 100. Train both ends at ε = 4:

# %% tags=["nbval-check-output"]
more = {k: dp_run(z_at_4[k], clients_per_round=k) for k in (20, 100)}
print(privacy.dp_table({f"K = {k}": h for k, h in more.items()}))

# %% [markdown]
# Same ε, same rounds, better model: **more clients per round is the cheapest privacy there is**
# — the reason production systems with DP (e.g. Gboard's) train with thousands of clients per
# round. `num_participants` shows that Poisson sampling varies the count around K:

# %% tags=["nbval-check-output"]
participants = more[100].num_participants
print(f"K = 100 expected: {participants.min()} to {participants.max()} took part")

# %% [markdown]
# The other end: **a handful of clients**, say N = 10 hospitals with K = 5 per round
# (q = 0.5). Little sampling amplification, few updates to share the noise: ε ≈ 4 needs z ≈ 2.5,
# and since a clipped update is at most S long, the noise on the average is at least
# z·√d/K times the signal. No training run is needed to see that user-level DP over a handful
# of clients is hopeless — each client's whole dataset must be hidden, and there is no crowd to
# hide it in:

# %% tags=["nbval-check-output"]
z_few, k_few = 2.5, 5
num_weights = sum(a[0].size for a in stacked)
print(f"N = 10, K = 5, z = {z_few}: ε = {privacy.epsilon(z_few, 0.5, NUM_ROUNDS, DELTA):.2f}")
noise_few, noise_100 = z_few * CLIP_NORM / k_few, z_at_4[100] * CLIP_NORM / 100
print(f"noise std on the average {noise_few:.3f} ({noise_few / noise_100:.0f}x the K = 100 run's)")
print(f"noise/signal ≥ z·√d/K = {z_few * np.sqrt(num_weights) / k_few:.0f}, every round")

# %% [markdown]
# ## 7. Local DP: noise on each client
#
# Central DP trusts the server with each client's clipped update (or hides them with secure
# aggregation). **Local DP** trusts no one: every client adds N(0, (zS)²·I) to its own clipped
# update before sending, and the server just averages (`privacy.local_dp_aggregate`, and the
# algorithm `privacy.LocalDPFedAvg`). The neighbouring relation is the same — one client's data
# changed — but the guarantee now holds against whoever sees a *single message*, server
# included. Two things get worse:
#
# 1. **No noise sharing.** K independent noises average to standard deviation z·S/√K per
#    coordinate instead of z·S/K: √K times more (√40 ≈ 6.3 here).
# 2. **No amplification by sampling.** The server sees who sent, so the round is an unsampled
#    Gaussian (q = 1 in the accountant): a client that takes part in every round spends ε as if
#    q = 1. For the same ε, z must be larger.
#
# The first point, measured on pure noise (no signal, K = 40, z = 1):

# %% tags=["nbval-check-output"]
zeros = [np.zeros_like(a) for a in stacked]
central, _ = privacy.dp_aggregate(
    zeros, CLIP_NORM, 1.0, CLIENTS_PER_ROUND, np.random.default_rng(1)
)
local, _ = privacy.local_dp_aggregate(zeros, CLIP_NORM, 1.0, np.random.default_rng(1))
std_central, std_local = privacy.noise_std(central), privacy.noise_std(local)
print(f"central: {std_central:.4f} (z·S/K = {CLIP_NORM / CLIENTS_PER_ROUND:.4f})")
print(f"local:   {std_local:.4f} (z·S/√K = {CLIP_NORM / np.sqrt(CLIENTS_PER_ROUND):.4f})")
print(f"ratio {std_local / std_central:.2f} ≈ √K = {np.sqrt(CLIENTS_PER_ROUND):.2f}")

# %% [markdown]
# And in training, at the same ε per client after 15 rounds: central DP-FedAvg with z = 1.2
# (section 5's run, ε ≈ 2.7), local DP with the z that the unsampled accountant asks for to
# reach the same ε:

# %% tags=["nbval-check-output"]
central_run = dp_runs[1.2]
z_local = privacy.calibrate_noise_multiplier(central_run.epsilon[-1], 1.0, NUM_ROUNDS, DELTA)
algorithm = privacy.LocalDPFedAvg(z_local, CLIP_NORM, delta=DELTA, **LOCAL)
local_run = fedlab.simulate(algorithm, mlp, digits, split, NUM_ROUNDS, **RUN)
print(privacy.dp_table({"central z = 1.2": central_run, f"local z = {z_local:.2f}": local_run}))

# %% [markdown]
# Local DP needs a larger z *and* loses the 1/K averaging: its noise is about 200 times the
# signal (central: about 9) and the model barely learns in 15 rounds (about 0.13 against 0.82).
# Local DP only works with very many clients per round (noise falls like 1/√K), or with a much
# larger ε per client; that is why deployed federated systems pair **central** DP with secure
# aggregation rather than rely on local noise.
#
# (Careful with the comparison: both ε are per client over the whole run, at the same δ, but
# local DP's also protects against the server, so it is a stronger promise for the same number.)
#
# Local DP's ε is also a **worst case**: the accountant charges every client for all 15 rounds,
# though with q = 0.1 a client sends in only q·T = 1.5 of them on average. The server sees who
# sent, so each client's ε can be counted over the rounds it actually sent in,
# `privacy.epsilon(z, 1.0, m)` for m rounds:

# %% tags=["nbval-check-output"]
sent = np.bincount(np.concatenate([r.clients for r in local_run.rounds]), minlength=NUM_CLIENTS)
eps_by_sent = {m: privacy.epsilon(z_local, 1.0, m, DELTA) for m in np.unique(sent[sent > 0])}
print(f"rounds per client: mean {sent.mean():.1f}, most {sent.max()}, none {np.sum(sent == 0)}")
print("ε after m rounds:", ", ".join(f"m = {m}: {e:.2f}" for m, e in eps_by_sent.items()))

# %% [markdown]
# Even the busiest client spent only about 1.6, not 2.7. But that count is known only after the
# run: a budget promised in advance must charge every round, as above, unless the server caps
# how many rounds a client may join.

# %% [markdown]
# ## 8. Try it: the privacy panel
#
# `PrivacyPanel` shows ε the moment you move z, S, K (q = K/N) or T, with the noise std on the
# average; **Run** trains DP-FedAvg with those settings and draws it beside FedAvg (a few
# seconds). Things to try: double K at fixed z (ε up a little, accuracy up); halve S (noise
# halves, but more clipping); raise T until ε passes 10.

# %%
knobs = dict(clip_norm=CLIP_NORM, clients_per_round=CLIENTS_PER_ROUND, delta=DELTA)
panel = PrivacyPanel(digits, split, noise_multiplier=1.0, num_rounds=NUM_ROUNDS, **knobs)
panel.run()  # the first run, so that a reader without a kernel sees its curves
panel

# %% [markdown]
# ## Summary
#
# - **User-level (ε, δ)-DP**: the trained models hardly change whether or not one client — all
#   of its data — took part. It needs many clients: with 10 clients no useful ε is possible.
# - **DP-FedAvg** = Poisson sampling (q) + clipping to S + Gaussian noise z·S on the sum,
#   divided by the expected K. `clip_updates` and `dp_aggregate` are exactly the hand versions.
# - **ε comes from an accountant** (`epsilon`, `PrivacyAccountant`; RDP fast, PLD tighter), never
#   a formula; `calibrate_noise_multiplier` finds z for a target ε. ε grows with T and q, falls
#   with z.
# - **Privacy–utility on digits** (400 clients, 40 per round, 15 rounds): clipping costs about 2
#   points, ε ≈ 6 little more, ε ≈ 2.7 another 3, ε ≈ 1 about 10, ε ≈ 0.4 half of what was learnt.
# - **More clients per round**: noise std z·S/K falls much faster than z rises for a fixed ε —
#   at ε = 4, K = 100 reaches about 0.85 and K = 20 only about 0.77.
# - **Local DP** adds noise on each client: √K times more noise on the average and no
#   amplification by sampling, so far worse accuracy at the same ε (a worst case: each client
#   charged for every round).
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
# 1. **Choose S.** Write DP-FedAvg's aggregate as a function, then rerun section 5's z = 1.2
#    run with `clip_norm` 0.1, 0.25, 1 and 2. Plot accuracy and `clipped_fraction` against S.
#    Why is there an optimum, and where does it sit relative to the median update norm of
#    section 2?
# 2. **Longer training.** Train z = 1.2 for 60 rounds. How much higher is accuracy, and how much
#    higher is ε? At a fixed ε = 4, is it better to train 15 rounds with a small z or 60 rounds
#    with a larger one (`calibrate_noise_multiplier` for each)?
# 3. **RDP vs PLD.** Run `fedlab.privacy.DPFedAvg(..., accountant="pld")` and compare
#    `History.epsilon` with the RDP run's. The models are identical: why?
# 4. **Local DP at scale.** With `local_dp_aggregate` on zeros, find the K for which local DP's
#    noise std on the average equals central DP's at K = 40. How many clients per round would
#    local DP need on digits?
# 5. **Who is protected?** With `fedlab.partition.iid(..., num_clients=1437)` every client holds
#    one image: user-level DP becomes example-level DP. Redo the privacy–utility table. Which
#    promise is stronger, and which costs more accuracy?

# %%
from fedlab import exercises

# %% [markdown]
# ### Exercise 1 · Choose S
#
# **(a)** Write DP-FedAvg's aggregate of section 3 for a list of client updates (each a list of
# arrays, one per weight): clip each client's update to norm `clip_norm` (all its weights
# together), sum, add one draw of N(0, (z·S)²) per coordinate from `rng`, and divide by
# `expected_clients`.

# %%
def dp_mean(updates, clip_norm, noise_multiplier, expected_clients, rng):
    """(Σ_k clip(Δ_k) + N(0, (z·S)² I)) / expected_clients, one array per weight."""
    # BEGIN SOLUTION
    clipped = []
    for update in updates:
        norm = np.sqrt(sum(np.sum(np.square(u)) for u in update))
        clipped.append([u * min(1.0, clip_norm / max(norm, 1e-12)) for u in update])
    total = [np.sum(layer, axis=0) for layer in zip(*clipped, strict=True)]
    std = noise_multiplier * clip_norm
    return [(t + rng.normal(0.0, std, t.shape)) / expected_clients for t in total]
    # END SOLUTION


# %% tags=["self-check"]
exercises.check_dp_mean(dp_mean)
# BEGIN HIDDEN TESTS
exercises.check_dp_mean(dp_mean, seed=1)
exercises.check_dp_mean(dp_mean, seed=2)
# END HIDDEN TESTS

# %% [markdown]
# **(b)** Check `dp_mean` against `dp_aggregate` on section 2's round, with generators seeded
# alike. Then rerun section 5's z = 1.2 run with `clip_norm` 0.1, 0.25, 1 and 2, into
# `clip_runs` keyed by S, and plot the final accuracy and the mean `clipped_fraction` against S,
# with section 5's S = 0.5.

# %%
clip_runs = ...  # {S: History}, section 5's z = 1.2 run with clip_norm=S
# BEGIN SOLUTION
deltas = [client.delta for client in result.clients]
mine = dp_mean(deltas, CLIP_NORM, 1.0, CLIENTS_PER_ROUND, np.random.default_rng(SEED))
theirs, _ = privacy.dp_aggregate(
    stacked, CLIP_NORM, 1.0, CLIENTS_PER_ROUND, np.random.default_rng(SEED)
)
agree = all(np.allclose(a, b, atol=1e-6) for a, b in zip(mine, theirs, strict=True))
print("dp_mean == dp_aggregate:", agree)
clip_runs = {s: dp_run(1.2, clip_norm=s) for s in (0.1, 0.25, 1.0, 2.0)}
by_s = dict(sorted({CLIP_NORM: dp_runs[1.2], **clip_runs}.items()))
print(privacy.dp_table({f"S = {s}": h for s, h in by_s.items()}))
fig, ax = plt.subplots(figsize=(6, 3), layout="constrained")
ax.plot(list(by_s), [h.test_accuracy[-1] for h in by_s.values()], "o-", label="final accuracy")
clipped_share = [np.mean(h.series("clipped_fraction")) for h in by_s.values()]
ax.plot(list(by_s), clipped_share, "s--", label="clipped fraction")
ax.axvline(np.median(norms), color="k", ls=":", label="median ‖Δ‖, round 1")
ax.set(xscale="log", xlabel="clip norm S", title="z = 1.2, 15 rounds")
ax.legend(fontsize="small");
# END SOLUTION

# %% tags=["self-check"]
clip_norms = {s: s for s in (0.1, 0.25, 1.0, 2.0)}
exercises.check_runs(
    clip_runs, dp_runs[1.2], name="clip_runs", what="section 5's z = 1.2 run", clip_norm=clip_norms
)

# %% [markdown]
# **Why is there an optimum, and where does it sit relative to the median update norm?**
#
# <!-- BEGIN SOLUTION -->
# **Model answer.** Two costs pull in opposite directions. The noise's std is z·S: it grows
# with S whatever the updates do. The signal grows with S only while S is below the update
# norms: a clipped update is S long, an unclipped one keeps its own length. Below the norms
# (S = 0.1 to 0.5, every update clipped) signal and noise both grow like S, so the
# noise/signal ratio hardly moves (8.6 to 9.3), but every round moves the model only S/‖Δ‖ of
# the way its clients wanted: after 15 rounds S = 0.1 reaches 0.36, 0.25 reaches 0.69, 0.5
# reaches 0.82. Above the norms (S = 2, nothing clipped) the signal stops growing and the noise
# does not: noise/signal 16.7 and 0.74. The optimum lies between, where the clip just bites:
# S = 1 gives 0.87 (FedAvg without DP: 0.87), clipping 59 % of the updates on average, a bit
# below round 1's median norm of 1.28 (updates shrink as the model trains). Hence the rule of
# thumb of section 2: S near the median norm. S = 0.5, this notebook's choice, costs about
# 5 points; a real run tunes S on a public proxy or spends a little ε choosing it privately.
# <!-- END SOLUTION -->

# %% [markdown]
# ### Exercise 2 · Longer training
#
# **(a)** Before training, ask the accountant: `eps_60`, the ε after 60 rounds at z = 1.2 with
# this notebook's q and δ.

# %%
eps_60 = ...  # ε after 60 rounds of DP-FedAvg at z = 1.2, q = K/N, δ = DELTA
# BEGIN SOLUTION
eps_60 = privacy.epsilon(1.2, q, 60, DELTA)
print(f"z = 1.2: ε = {dp_runs[1.2].epsilon[-1]:.2f} after 15 rounds, {eps_60:.2f} after 60")
# END SOLUTION

# %% tags=["self-check"]
exercises.check_epsilon(eps_60, 1.2, q, 60, DELTA, name="eps_60", reference_rounds=NUM_ROUNDS)

# %% [markdown]
# **(b)** Train section 5's z = 1.2 run for 60 rounds (`fedlab.simulate` with `num_rounds=60`;
# everything else as in `dp_run`), keep it as `long_run` and print it beside the 15-round run
# (`privacy.dp_table`).

# %%
long_run = ...  # section 5's z = 1.2 run, 60 rounds
# BEGIN SOLUTION
dp_12 = privacy.DPFedAvg(1.2, CLIP_NORM, delta=DELTA, **LOCAL)
long_run = fedlab.simulate(dp_12, mlp, digits, split, 60, **RUN)
print(privacy.dp_table({"15 rounds": dp_runs[1.2], "60 rounds": long_run}))
# END SOLUTION

# %% tags=["self-check"]
exercises.check_runs(
    long_run, dp_runs[1.2], name="long_run", what="section 5's z = 1.2 run", num_rounds=60
)

# %% [markdown]
# **(c)** At a fixed budget ε = 4: the noise multiplier for 15 rounds and for 60 rounds
# (`calibrate_noise_multiplier`), as `z_by_rounds = {15: z, 60: z}`.

# %%
z_by_rounds = ...  # {rounds: the z whose ε after that many rounds is 4}
# BEGIN SOLUTION
z_by_rounds = {t: privacy.calibrate_noise_multiplier(4.0, q, t, DELTA) for t in (15, 60)}
print({t: round(z, 3) for t, z in z_by_rounds.items()})
# END SOLUTION

# %% tags=["self-check"]
exercises.check_calibrated_z(z_by_rounds, 4.0, q, DELTA, rounds=(15, 60))

# %% [markdown]
# **(d)** Train both, into `budget_runs = {15: History, 60: History}`, and print them.

# %%
budget_runs = ...  # {15: 15 rounds at z_by_rounds[15], 60: 60 rounds at z_by_rounds[60]}
# BEGIN SOLUTION
budget_runs = {}
for t, z_t in z_by_rounds.items():
    algorithm = privacy.DPFedAvg(z_t, CLIP_NORM, delta=DELTA, **LOCAL)
    budget_runs[t] = fedlab.simulate(algorithm, mlp, digits, split, t, **RUN)
print(privacy.dp_table({f"ε = 4, {t} rounds": h for t, h in budget_runs.items()}))
# END SOLUTION

# %% tags=["self-check"]
exercises.check_runs(
    budget_runs,
    dp_runs[1.2],
    name="budget_runs",
    what="section 5's z = 1.2 run",
    noise_multiplier=z_by_rounds,
    num_rounds={15: 15, 60: 60},
)

# %% [markdown]
# **How much do accuracy and ε grow with 60 rounds? At ε = 4, which is better?**
#
# <!-- BEGIN SOLUTION -->
# **Model answer.** Four times the rounds at z = 1.2: accuracy from 0.82 to 0.90, and ε from
# 2.69 to 4.51 — 1.7 times, not 4: composition makes ε grow roughly like √T, and sampling
# amplification helps every round. At a fixed ε = 4 the accountant allows z = 0.98 for 15
# rounds and z = 1.28 for 60: four times the rounds cost only 30 % more noise per round. The
# long run wins clearly: 0.90 against 0.84, with the same promise. The noise of each round is
# fresh and points in a random direction, while the signal points the same way round after
# round, so more rounds with a little more noise average the noise out. The price is compute
# and communication (four times the rounds); and the gain does not go on for ever: z grows with
# T, and at some point the noise of each round drowns the signal. The quoted ε must be the
# one for all the rounds actually run — `eps_60` is known before training, from z, q and T
# alone.
# <!-- END SOLUTION -->

# %% [markdown]
# ### Exercise 3 · RDP vs PLD
#
# Run section 5's z = 1.2 run for its first 5 rounds with the PLD accountant
# (`fedlab.privacy.DPFedAvg(..., accountant="pld")`; PLD is slower, hence 5 rounds) as
# `pld_run`. Print its `epsilon` and `test_accuracy` beside the first 5 rounds of
# `dp_runs[1.2]`, and set `same_models` to whether the accuracies are identical.

# %%
pld_run = ...  # section 5's z = 1.2 run, 5 rounds, accountant="pld"
same_models = ...  # True if pld_run's test accuracies equal those of dp_runs[1.2]'s rounds 1–5
# BEGIN SOLUTION
dp_pld = privacy.DPFedAvg(1.2, CLIP_NORM, delta=DELTA, accountant="pld", **LOCAL)
pld_run = fedlab.simulate(dp_pld, mlp, digits, split, 5, **RUN)
rdp_run = dp_runs[1.2]
print("ε, RDP:     ", np.round(rdp_run.epsilon[:5], 2))
print("ε, PLD:     ", np.round(pld_run.epsilon, 2))
print("accuracy:   ", np.round(rdp_run.test_accuracy[:5], 3), np.round(pld_run.test_accuracy, 3))
same_models = bool(np.array_equal(pld_run.test_accuracy, rdp_run.test_accuracy[:5]))
# END SOLUTION

# %% tags=["self-check"]
exercises.check_runs(
    pld_run,
    dp_runs[1.2],
    name="pld_run",
    what="section 5's z = 1.2 run",
    accountant="pld",
    num_rounds=5,
)

# %% tags=["self-check"]
hint = "compare pld_run.test_accuracy with dp_runs[1.2].test_accuracy[:5], round by round"
exercises.check_choice("same_models", same_models, True, {False: hint})

# %% [markdown]
# **The models are identical: why?**
#
# <!-- BEGIN SOLUTION -->
# **Model answer.** Both runs compute exactly the same thing: Poisson sampling with q, clipping
# to S and noise z·S, from the same seeds, so the five accuracies are identical (0.122, 0.208,
# 0.281, 0.308, 0.422). The accountant does not take part in training: it reads only z, q and the
# number of rounds, and computes afterwards how much privacy that mechanism can lose. RDP and
# PLD are two ways of bounding the same loss; PLD's is tighter: after 5 rounds ε = 1.61 against
# RDP's 2.00, about 20 % less (section 4: 15 %, after 15 rounds). So the same model carries a
# better guarantee for free — or, calibrating z with PLD, the same ε needs less noise. The only
# cost is the accountant's own time: PLD is far slower to compute (hence 5 rounds here), RDP
# almost free.
# <!-- END SOLUTION -->

# %% [markdown]
# ### Exercise 4 · Local DP at scale
#
# **(a)** Measure local DP's noise std on the average, z = 1 and S = `CLIP_NORM`, for K = 40,
# 160, 640, 1600 and 2560 clients: `privacy.local_dp_aggregate` of K all-zero updates of 1,000
# numbers each (`[np.zeros((K, 1000))]`), then `privacy.noise_std`. Keep them as `local_std`,
# `{K: std}`, and print them beside central DP's at K = 40.

# %%
local_std = ...  # {K: noise std on the average under local DP, z = 1}
# BEGIN SOLUTION
local_std = {}
for k in (40, 160, 640, 1600, 2560):
    noisy, _ = privacy.local_dp_aggregate(
        [np.zeros((k, 1000))], CLIP_NORM, 1.0, np.random.default_rng(SEED)
    )
    local_std[k] = privacy.noise_std(noisy)
print(f"central, K = 40: {std_central:.4f}")
print("local:", {k: round(v, 4) for k, v in local_std.items()})
# END SOLUTION

# %% tags=["self-check"]
exercises.check_local_std(local_std, CLIP_NORM, 1.0)

# %% [markdown]
# **(b)** `k_local`: the K at which local DP's noise std on the average equals central DP's at
# K = `CLIENTS_PER_ROUND`, both at the same z. Then print how many clients per round local DP
# would need to match the noise of section 7's central run (z = 1.2, K = 40) *at the same ε*,
# where local DP's noise multiplier is `z_local`.

# %%
k_local = ...  # the K at which local DP's noise std equals central DP's at K = 40
# BEGIN SOLUTION
k_local = CLIENTS_PER_ROUND**2  # z·S/√K = z·S/40  ⇔  K = 40²
same_eps = (CLIENTS_PER_ROUND * z_local / 1.2) ** 2  # z·S_local/√K = 1.2·S/40
print(f"same noise at the same z: K = {k_local}", end="; ")
print(f"at the same ε (z = {z_local:.2f}): K ≈ {same_eps:,.0f}")
# END SOLUTION

# %% tags=["self-check"]
exercises.check_k_local(k_local, CLIENTS_PER_ROUND)

# %% [markdown]
# **How many clients per round would local DP need on digits?**
#
# <!-- BEGIN SOLUTION -->
# **Model answer.** Local noise on the average falls like 1/√K: 0.078 at K = 40, 0.040 at 160,
# 0.020 at 640, and at K = 1,600 = 40² it is 0.0125, central DP's at K = 40. So at the same z
# local DP needs 1,600 clients per round, four times the 400 clients of this notebook and more
# than digits has images (1,437). And the same z is not the same ε: without amplification by
# sampling, local DP needs z = 6.38 for section 7's ε ≈ 2.7, where central DP used 1.2, so the
# same noise on the average takes (40 · 6.38 / 1.2)² ≈ 45,000 clients per round. On digits local
# DP cannot work; it needs populations of millions (which is where it is deployed, for simple
# statistics rather than models), or a much larger ε.
# <!-- END SOLUTION -->

# %% [markdown]
# ### Exercise 5 · Who is protected?
#
# Split the training set IID over `digits.num_train` = 1,437 clients, one image each, and sample
# the same q (`round(q * digits.num_train)` = 144 clients per round). Rerun section 5's four
# DP-FedAvg runs on it into `example_runs`, keyed by z like `dp_runs`, and print them with
# `privacy.dp_table`, beside plain FedAvg and clipping only (z = 0) on the same split.

# %%
example_runs = ...  # {z: History}, section 5's runs with one image per client
# BEGIN SOLUTION
one_each = fedlab.partition.iid(digits.y_train, num_clients=digits.num_train, seed=SEED)
each_round = {**RUN, "clients_per_round": round(q * digits.num_train)}


def example_run(algorithm):
    return fedlab.simulate(algorithm, mlp, digits, one_each, NUM_ROUNDS, **each_round)


example_runs = {
    z: example_run(privacy.DPFedAvg(z, CLIP_NORM, delta=DELTA, **LOCAL)) for z in dp_runs
}
table_runs = {"FedAvg, 1 image each": example_run(fedavg)}
table_runs["z = 0.0, 1 image each"] = example_run(privacy.DPFedAvg(0.0, CLIP_NORM, **LOCAL))
table_runs |= {f"z = {z}, 1 image each": h for z, h in example_runs.items()}
print(privacy.dp_table(table_runs))
# END SOLUTION

# %% tags=["self-check"]
one_image = {"num_clients": digits.num_train, "clients_per_round": round(q * digits.num_train)}
exercises.check_runs(example_runs, dp_runs, name="example_runs", what="section 5", **one_image)

# %% [markdown]
# **Which promise is stronger, and which costs more accuracy?**
#
# <!-- BEGIN SOLUTION -->
# **Model answer.** The ε numbers are the same (q ≈ 0.1 and the same z and T), but the promises
# differ. User-level DP of section 5 hides everything one client holds, 3–4 images; with one
# image per client it hides one image: example-level DP. A person with m images then gets only
# group privacy, an ε that grows with m (roughly m·ε), so user-level is the stronger promise at
# the same ε. It also costs more accuracy, because it has fewer units to hide in: 400 clients
# and 40 per round against 1,437 and 144, so the noise on the average, z·S/K, is 3.6 times
# smaller for examples (noise/signal 5.3 against 9.3 at z = 1.2). Measured from each split's
# clipping-only run, the noise costs examples 2–3 points from ε ≈ 6 to ε ≈ 1 and 10 points at
# ε = 0.42, users 1, 3, 11 and 39 points. The absolute numbers hide that: one-image clients
# reach only 0.66–0.67, because clipping alone costs them 15 points (0.84 → 0.69): S = 0.5 was
# chosen for clients of 3–4 images, and a single image's update is longer and more varied, so
# S must be tuned again for the new split (exercise 1).
# <!-- END SOLUTION -->
