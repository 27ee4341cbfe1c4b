# %% [markdown]
# # 05 · FedProx and SCAFFOLD: two cures for client drift
#
# *Purpose: derive and check the two classic fixes for client drift — FedProx's proximal term,
# which shortens each client's trip, and SCAFFOLD's control variates, which correct its
# direction — and measure what each buys on non-IID clients.*
#
# **Goals**
# - Derive the **FedProx** local step, write it yourself with `tf.GradientTape` in a dozen lines,
#   and check it against `fedlab.FedProx` to the last digit.
# - Derive **SCAFFOLD**'s corrected step and its control-variate updates (option II), and check
#   them on one client of a real run.
# - Compare FedAvg, FedProx (two values of μ) and SCAFFOLD on pathologically non-IID digits:
#   accuracy, rounds to 90 %, client drift, and the size of SCAFFOLD's control variates.
# - Repeat the comparison on **Synthetic(1, 1)**, the FedProx paper's own data.
#
# **You will need:** [03 · FedSGD vs FedAvg](03_fedsgd_vs_fedavg.ipynb) (FedAvg, the local work
# u = E·n/(K·B)) and [04 · Client drift](04_client_drift.ipynb) (what client drift is and why
# non-IID data causes it); under a minute to run on a laptop CPU (no GPU needed).

# %% [markdown]
# ## Setup
#
# `import fedlab` comes **first**: it quietens TensorFlow's start-up log lines before TensorFlow
# loads. Keras and TensorFlow are needed only for the hand-written FedProx step of section 2.

# %%
import sys

FEDLAB = "fedlab-edu @ git+https://github.com/fedlab-edu/fedlab"  # what Colab installs
if "google.colab" in sys.modules:  # elsewhere `python3 dev.py lab` has installed fedlab already
    import subprocess

    subprocess.run([sys.executable, "-m", "pip", "install", "-q", FEDLAB], check=True)

# %%
import fedlab  # first: it quietens TensorFlow's start-up log lines

import keras
import matplotlib.pyplot as plt
import numpy as np
import tensorflow as tf

print(", ".join(f"{name} {version}" for name, version in fedlab.versions().items()))

# %% [markdown]
# Every size and rate is set in the next cell. The digits runs are deliberately hard on FedAvg:
# two digits per client, half the clients per round and u ≈ 36 local steps per round.

# %%
NUM_CLIENTS = 20  # digits clients, two label shards each
CLIENTS_PER_ROUND = 10  # half of them take part in each round
NUM_ROUNDS = 30
LOCAL_EPOCHS = 5  # E
BATCH_SIZE = 10  # B: with about 72 digits per client, u = E·n/(K·B) ≈ 36 local steps
CLIENT_LR = 0.1  # η_l, the local SGD step size
TARGET = 0.90  # test accuracy that counts as "reached" on digits
SYN_CLIENTS, SYN_EPOCHS, SYN_BATCH, SYN_LR = 30, 1, 20, 0.01  # Synthetic(1, 1), section 5
SYN_TARGET = 0.80
SEED = 0

# %% [markdown]
# ## 1. Why FedAvg drifts
#
# Recap of [04 · Client drift](04_client_drift.ipynb): on non-IID clients every client's own loss
# F_k has its minimum somewhere else, and the many local steps of a FedAvg round carry each client
# towards *its own* optimum rather than the global one, so the server averages models that have
# wandered apart. There are two ways to fix that: keep the clients close to the global model
# (FedProx), or make their steps point where the *global* gradient points (SCAFFOLD). Notebook 04's
# 2-D playground gave a first look at both; here we derive them and test them on real data.
#
# The clients: the FedAvg paper's pathological split of the digits, sorted by label and cut into
# 40 shards, two per client.

# %% tags=["nbval-check-output"]
digits = fedlab.load_digits(seed=SEED)
split = fedlab.partition.shards(digits.y_train, NUM_CLIENTS, 2, seed=SEED)
sizes, labels = split.sizes, (split.label_counts > 0).sum(axis=1)
print(f"{NUM_CLIENTS} clients of {sizes.min()}-{sizes.max()} digits each,", end=" ")
print(f"{labels.min()}-{labels.max()} different labels per client")


# %% [markdown]
# Most clients hold two digits; a shard that straddles two labels adds a third, and two shards of
# the same digit leave a client with one. Two helpers run an experiment on these clients (or
# others) and find the first round at which a run reaches a target accuracy.

# %%
def model_fn():
    return fedlab.FedModel(10)


def experiment(algorithm, data=digits, split=split, model=model_fn):
    """One federated run: NUM_ROUNDS rounds, CLIENTS_PER_ROUND clients per round."""
    return fedlab.simulate(
        algorithm, model, data, split, NUM_ROUNDS, CLIENTS_PER_ROUND, SEED, progress=False
    )


def rounds_to(history, target):
    """The first round whose test accuracy is at least `target` (None: not reached)."""
    reached = np.flatnonzero(history.test_accuracy >= target)
    return int(history.round[reached[0]]) if reached.size else None


# %% [markdown]
# ## 2. FedProx: a spring back to the global model
#
# FedProx (Li et al. 2020) changes only what a client minimises. In round t client k receives the
# global weights $w^t$ and, instead of its own loss $F_k$, (approximately) minimises
#
# $$h_k(w) = F_k(w) + \frac{\mu}{2}\,\lVert w - w^t\rVert^2 ,$$
#
# whose gradient is $\nabla F_k(w) + \mu\,(w - w^t)$. So each local SGD step, with $g$ the
# mini-batch gradient of $F_k$, is
#
# $$w \leftarrow w - \eta\,\big(g + \mu\,(w - w^t)\big).$$
#
# The extra term is a **spring**: it pulls w back towards the point the server broadcast, the more
# strongly the further away it is. Written for the displacement $d = w - w^t$ the step reads
# $d \leftarrow (1 - \eta\mu)\,d - \eta g$: every step first shrinks the distance travelled so
# far by the factor $1 - \eta\mu$, then adds the gradient step. If $\lVert g\rVert \le G$, the
# geometric series caps the trip at $\lVert d\rVert \le G/\mu$, however many local steps the
# client takes. With η = 0.1 the factor is 0.99 per step for μ = 0.1 (after the 40 steps of a
# round the first step still counts $0.99^{40} ≈ 0.67$) and 0.9 for μ = 1 ($0.9^{40} ≈ 0.015$): a
# weak spring and a strong one. μ = 0 is exactly FedAvg.
#
# Here is the whole client update, written from that formula:

# %%
def fedprox_local_update(model, x, y, w_global, mu, lr, batches):
    """Local SGD on F_k(w) + (μ/2)‖w − w_global‖², starting at w_global; the new weights."""
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    for v, w0 in zip(model.trainable_variables, w_global, strict=True):
        v.assign(w0)
    for batch in batches:
        with tf.GradientTape() as tape:
            loss = loss_fn(y[batch], model(x[batch], training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        for v, g, w0 in zip(model.trainable_variables, grads, w_global, strict=True):
            v.assign_sub(lr * (g + mu * (v - w0)))  # the spring pulls v back towards w0
    return [v.numpy() for v in model.trainable_variables]


# %% [markdown]
# To compare it with `fedlab`, give it the same model, the same client and the *same mini-batches*:
# `fedlab.steps.batch_order` is the seeded shuffle that `fedlab.steps.local_update` (and the fast
# engine) use, so the hand-written step and `fedlab.FedProx` see identical data in identical
# order.

# %% tags=["nbval-check-output"]
model, w_global = fedlab.steps.initialize(model_fn, digits.x_train, seed=SEED)
k = 0  # any client will do
x_k, y_k = digits.x_train[split.client_indices[k]], digits.y_train[split.client_indices[k]]
batches = fedlab.steps.batch_order(len(x_k), BATCH_SIZE, LOCAL_EPOCHS, 1, k, seed=SEED)
mine = fedprox_local_update(model, x_k, y_k, w_global, 1.0, CLIENT_LR, batches)

prox = fedlab.FedProx(mu=1.0, local_epochs=LOCAL_EPOCHS, batch_size=BATCH_SIZE, client_lr=CLIENT_LR)
theirs = fedlab.steps.local_update(model, w_global, x_k, y_k, prox, 1, k, SEED)  # round 1, client k
for a, b in zip(mine, theirs.weights, strict=True):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
print(f"client {k}, {len(batches)} local steps: fedprox_local_update == fedlab.FedProx(mu=1) ✓")


# %% [markdown]
# Now let the spring do its work: the same client, the same 40 mini-batches, three values of μ,
# and the length of the client's trip $\lVert w_k - w^t\rVert$.

# %% tags=["nbval-check-output"]
def norm(arrays):
    """The L2 norm of a list of arrays, taken together as one long vector."""
    return float(np.sqrt(sum(np.sum(np.square(a)) for a in arrays)))


trips = {1.0: mine}  # μ = 1: the run checked above
for mu in (0.0, 0.1):
    trips[mu] = fedprox_local_update(model, x_k, y_k, w_global, mu, CLIENT_LR, batches)
for mu, w_k in sorted(trips.items()):
    trip = norm([a - b for a, b in zip(w_k, w_global, strict=True)])
    print(f"μ = {mu:<3}: ‖w_k − w_global‖ = {trip:.2f}")

# %% [markdown]
# The weak spring (μ = 0.1) shortens this client's first trip from 1.86 to 1.62, the strong one
# (μ = 1) to 0.98, about half. Notice what the spring cannot do: it pulls straight back along
# $w - w^t$, so it shortens the part of the trip that helps every client just as much as the part
# that only suits this client's two digits. FedProx trades drift for progress per round, and μ
# sets the exchange rate. (The paper's second motivation, clients too slow to finish their local
# work, is the subject of [07 · Stragglers and limited compute](07_stragglers_and_limited_compute.ipynb).)

# %% [markdown]
# ## 3. SCAFFOLD: correct the direction, not the distance
#
# SCAFFOLD (Karimireddy et al. 2020) attacks the cause instead. What a client *should* follow is
# the global gradient $\nabla f(y) = \sum_k \frac{n_k}{n} \nabla F_k(y)$, but it can only compute
# its own. Write
#
# $$\nabla f(y) = \nabla F_k(y) + \big(\nabla f(y) - \nabla F_k(y)\big):$$
#
# the bracket is the correction that would turn the client's gradient into the global one.
# SCAFFOLD estimates it with two **control variates** kept from earlier rounds: $c_k$, client k's
# estimate of its own gradient, and $c$, the server's estimate of the global gradient. With x the
# global weights the server broadcasts (x, c) and each local step, starting from $y_k = x$, is
#
# $$y_k \leftarrow y_k - \eta_l\,\big(g_k(y_k) - c_k + c\big).$$
#
# After its K local steps the client updates its variate (the paper's **option II**):
#
# $$c_k^+ = c_k - c + \frac{1}{K\eta_l}\,(x - y_k).$$
#
# Why that formula? The client moved $x - y_k = \eta_l \sum_{j=1}^{K}(g_j - c_k + c)$, so
# $(x - y_k)/(K\eta_l) = \bar g - c_k + c$ and therefore $c_k^+ = \bar g$, **the average of the
# client's own gradients along this round's path**, at no extra cost (option I would spend one more
# full pass over the client's data to compute $\nabla F_k(x)$). The client sends
# $\Delta y_k = y_k - x$ and $\Delta c_k = c_k^+ - c_k$; with S the sampled clients out of N, the
# server updates
#
# $$x \leftarrow x + \eta_g\,\overline{\Delta y}, \qquad
# c \leftarrow c + \frac{|S|}{N}\cdot\frac{1}{|S|}\sum_{k\in S}\Delta c_k .$$
#
# Both variates start at 0, so the second update keeps $c = \frac{1}{N}\sum_{k=1}^{N} c_k$, the mean
# over *all* clients, including the ones not sampled this round (their $c_k$ is older). (One
# difference from the paper: fedlab's $\overline{\Delta y}$ weights clients by their example counts,
# the paper's is a plain mean; here every client holds 70–72 digits, so they agree.)
#
# Check it on the run of section 4: start SCAFFOLD, take two rounds, and recompute by hand the new
# $c_k$ of a client that took part in both — so that $c_k$, $c$ and $x - y_k$ are all non-zero.

# %%
scaffold = fedlab.Scaffold(LOCAL_EPOCHS, BATCH_SIZE, CLIENT_LR)
sim = fedlab.Simulation(scaffold, model_fn, digits, split, CLIENTS_PER_ROUND, SEED)
first = sim.step()  # round 1: c and every c_k start at 0
x, c = sim.weights, sim.server_state["c"]  # what the server broadcasts in round 2
c_before = [s.copy() for s in sim.client_states]  # row k of each array: client k's c_k
second = sim.step()  # round 2
k = next(k for k in second.clients if k in first.clients)  # a client in both rounds

# %% [markdown]
# The engine keeps every $c_k$ but not the clients' updates, so replay client k's round-2 training
# with `fedlab.steps.local_update` (same weights, same variates, same batches) to get its
# $x - y_k$ and K; then apply option II by hand and compare with the $c_k$ the engine stored.
# Finally check the server's $c$ both ways: by its update formula and as the mean of all N
# $c_k$.

# %% tags=["nbval-check-output"]
x_k, y_k = digits.x_train[split.client_indices[k]], digits.y_train[split.client_indices[k]]
c_k = [s[k] for s in c_before]
replay = fedlab.steps.local_update(
    model, x, x_k, y_k, scaffold, 2, k, SEED, client_state=c_k, broadcast_state=c
)  # round 2, client k
K, x_minus_y = replay.num_steps, [-d for d in replay.delta]  # delta = y_k − x
c_k_new = [a - b + d / (K * CLIENT_LR) for a, b, d in zip(c_k, c, x_minus_y, strict=True)]
for mine, stored in zip(c_k_new, sim.client_states, strict=True):
    np.testing.assert_allclose(stored[k], mine, rtol=1e-4, atol=1e-5)
print(f"client {k}, K = {K}: c_k⁺ = c_k − c + (x − y_k)/(K·η_l) ✓", end="  ")
print(f"(‖c_k‖ {norm(c_k):.2f} → {norm(c_k_new):.2f})")

# %% tags=["nbval-check-output"]
S = list(second.clients)
share = len(S) / NUM_CLIENTS  # |S|/N
triples = zip(c, sim.client_states, c_before, strict=True)
c_expected = [ci + share * np.mean(new[S] - old[S], axis=0) for ci, new, old in triples]
for mine, stored, all_k in zip(c_expected, sim.server_state["c"], sim.client_states, strict=True):
    np.testing.assert_allclose(stored, mine, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(stored, all_k.mean(axis=0), rtol=1e-4, atol=1e-6)
print(f"c ← c + (|S|/N)·mean Δc_k with |S|/N = {share:.1f} ✓", end=";  ")
print(f"c == mean of all {NUM_CLIENTS} c_k ✓")

# %% [markdown]
# The formulas and the engine agree: client 3 took K = 40 local steps in round 2 and its variate
# grew from ‖c_k‖ = 0.48 to 0.66; with half of the clients sampled, the server moved c by half of
# their mean change, which keeps c the mean of all 20 c_k. The price is visible in the formulas
# too: the server sends c next to x, and each client sends $\Delta c_k$ next to its update, both
# as large as the model — twice FedAvg's traffic (exercise 3). And every client must *keep* its
# $c_k$ from one round to the next.

# %% [markdown] tags=["class-break"]
# ---
# **Class break · end of part 1.** Part 1 (sections 1–3) derived the two cures for client drift,
# FedProx's spring back to the global model and SCAFFOLD's control variates, and checked each
# formula against `fedlab` on one client. Part 2 (sections 4–5) measures what each buys on
# non-IID digits and on the FedProx paper's own Synthetic(1, 1) data. Coming back to the notebook
# in a new session? Run every cell above this one first (*Run ▸ Run All Above Selected Cell*,
# about 5 s): section 4 continues section 3's SCAFFOLD run.

# %% [markdown]
# ## 4. The comparison on non-IID digits
#
# Four runs on the same clients, the same sampled clients per round and the same mini-batches:
# FedAvg, FedProx with a weak (μ = 0.1) and a strong (μ = 1) spring, and SCAFFOLD, whose run is
# the simulation of section 3 continued for the remaining rounds.

# %%
runs = {
    "FedAvg": experiment(fedlab.FedAvg(LOCAL_EPOCHS, BATCH_SIZE, CLIENT_LR)),
    "FedProx μ=0.1": experiment(fedlab.FedProx(0.1, LOCAL_EPOCHS, BATCH_SIZE, CLIENT_LR)),
    "FedProx μ=1": experiment(fedlab.FedProx(1.0, LOCAL_EPOCHS, BATCH_SIZE, CLIENT_LR)),
    "SCAFFOLD": sim.run(NUM_ROUNDS - sim.round, progress=False),  # section 3's run, continued
}


# %%
def report(runs, target):
    reach = f"rounds to {target:.0%}"
    print(f"{'run':<14}{'final':>6}{'last 5':>8}{reach:>15}{'drift':>7}{'agreement':>11}")
    for name, h in runs.items():
        last5, reached = h.test_accuracy[-5:].mean(), rounds_to(h, target) or "—"
        agreement = np.mean([np.mean(r.update_cosine) for r in h.rounds])
        print(f"{name:<14}{h.test_accuracy[-1]:>6.2f}{last5:>8.2f}{reached:>15}", end="")
        print(f"{h.drift_mean.mean():>7.2f}{agreement:>11.2f}")


# %% [markdown]
# The table: test accuracy after the last round and averaged over the last five (with half the
# clients per round the curves wobble), the first round at 90 %, the client drift
# ‖w_k − w_global‖ averaged over clients and rounds, and the clients' **agreement**: the cosine
# between each client's update and the averaged update, averaged the same way (1 would mean every
# client moved in the same direction).

# %% tags=["nbval-check-output"]
report(runs, TARGET)


# %% [markdown]
# Round by round — accuracy on the left, client drift on the right:

# %%
def compare(runs, title):
    fig, (ax_acc, ax_drift) = plt.subplots(1, 2, figsize=(10, 3.2), layout="constrained")
    for name, history in runs.items():
        fedlab.plot.plot_accuracy(history, ax=ax_acc, label=name)
        ax_drift.plot(history.round, history.drift_mean, label=name)
    ax_acc.set(title=f"Accuracy: {title}")
    ax_drift.set(xlabel="round", ylabel="mean ‖w_k − w_global‖", title="Client drift")
    ax_drift.legend(fontsize="small")


compare(runs, "two digits per client, 10 of 20 clients per round")

# %% [markdown]
# What to notice:
#
# - **SCAFFOLD wins clearly**: 90 % in about half FedAvg's rounds, and about 0.96 after 30 rounds
#   against 0.88. In round 1 it *is* FedAvg (both variates start at 0: same accuracy, same drift);
#   from round 2 on the corrections steer every client along the estimated global gradient.
# - **FedProx lowers drift but not the rounds.** μ = 1 cuts the mean drift from about 0.88 to
#   about 0.56 — lower than SCAFFOLD's — yet it is the slowest run and never reaches 90 % in 30
#   rounds; μ = 0.1 is a slightly slower FedAvg (90 % around round 21). The spring pulls back the
#   useful part of every trip along with the harmful part, so each round makes less progress, and
#   here that costs more than the drift did. Honest verdict for this setting: FedProx does not
#   help. (The paper tunes μ per data set and saw its largest gains with many more local epochs
#   and with stragglers; exercise 1.)
# - **The agreement column explains why.** FedProx leaves the clients' directions as they were
#   (about 0.33, like FedAvg): its clients travel less far, but still each towards its own digits.
#   SCAFFOLD raises agreement to about 0.6: its clients travel about as far as FedProx μ = 1's,
#   but in directions that agree, so the average keeps what they learned.
#
# What are the control variates doing meanwhile?

# %%
history = runs["SCAFFOLD"]
fig, ax = plt.subplots(figsize=(6.5, 3.2), layout="constrained")
ax.plot(history.round, history.server_state_norm, label="server ‖c‖")
ax.plot(history.round, history.client_state_norm, label="mean over clients ‖c_k‖")
ax.set(xlabel="round", ylabel="norm", title="SCAFFOLD's control variates")
ax.legend();

# %% tags=["nbval-check-output"]
never = NUM_CLIENTS - len(set().union(*(r.clients for r in history.rounds[:3])))
c_norm, c_k_norm = history.server_state_norm, history.client_state_norm
print(f"after round 3: ‖c‖ = {c_norm[2]:.2f}, mean ‖c_k‖ = {c_k_norm[2]:.2f}", end=" ")
print(f"({never} clients not yet sampled: their c_k = 0)")
print(f"after round {NUM_ROUNDS}: ‖c‖ = {c_norm[-1]:.2f}, mean ‖c_k‖ = {c_k_norm[-1]:.2f}")

# %% [markdown]
# At first the clients' mean ‖c_k‖ grows as more clients are sampled (after round 3, three clients
# still hold c_k = 0). Then the two norms part: the server's ‖c‖ shrinks to about 0.04 while the
# clients' mean ‖c_k‖ grows to about 0.8. That is what the derivation predicts. $c_k$ estimates
# client k's own gradient along its path near the global model; near a minimum of the global loss
# those gradients are large — each client would still like to run towards its two digits — but
# they cancel on average, so their mean $c \approx \nabla f$ goes to zero. The correction
# $c - c_k$ added to every local step is then almost $-c_k$: it cancels the client's own pull.
# (The c_k keep growing partly *because* the corrections work: a corrected client no longer runs
# down to its own optimum, where its own gradients would be small.) FedAvg has no such term, and
# its clients follow that pull for 40 steps every round.

# %% [markdown]
# ## 5. Synthetic(1, 1): the FedProx paper's data
#
# Synthetic(α, β) (Li et al. 2020) gives each of 30 devices its own softmax model $W_k, b_k$, which
# labels its inputs, and its own input distribution, whose means spread out with β. (So the
# devices' labelling functions differ at any α: α only shifts all ten logits of an example by the
# same amount, which changes no label — see `fedlab.synthetic`'s docstring.) Device sizes are
# heavy-tailed, and the model is the paper's multinomial logistic regression (one dense layer,
# `fedlab.models.logistic_regression`). We keep the paper's step size η = 0.01 but, to stay
# quick, only one local epoch of batches of 20; 10 of the 30 devices take part in each round.

# %% tags=["nbval-check-output"]
synthetic = fedlab.synthetic(1, 1, SYN_CLIENTS, seed=SEED)
syn_split = fedlab.partition.natural(synthetic.client_ids, synthetic.y_train)
sizes = syn_split.sizes
local_steps = SYN_EPOCHS * np.ceil(sizes / SYN_BATCH).astype(int)
print(f"{SYN_CLIENTS} devices of {sizes.min()}-{sizes.max()} training examples", end=" ")
print(f"(median {np.median(sizes):.0f}): {local_steps.min()}-{local_steps.max()} local steps each")


# %%
def logistic_regression():
    return fedlab.models.logistic_regression(synthetic.num_classes)


syn_args = dict(local_epochs=SYN_EPOCHS, batch_size=SYN_BATCH, client_lr=SYN_LR)
syn_runs = {
    name: experiment(algorithm, synthetic, syn_split, logistic_regression)
    for name, algorithm in [
        ("FedAvg", fedlab.FedAvg(**syn_args)),
        ("FedProx μ=1", fedlab.FedProx(mu=1.0, **syn_args)),
        ("SCAFFOLD", fedlab.Scaffold(**syn_args)),
    ]
}

# %% tags=["nbval-check-output"]
report(syn_runs, SYN_TARGET)

# %%
compare(syn_runs, "Synthetic(1, 1), 10 of 30 devices per round")

# %% [markdown]
# - **SCAFFOLD** again: 80 % after about 14 rounds and about 0.86 at the end, with half the drift
#   (about 0.12 against 0.24) and far more agreement (about 0.6 against 0.2). FedAvg is stuck
#   around 0.66.
# - **FedProx with μ = 1 is indistinguishable from FedAvg** here, to within rounding in every
#   column.
#   With η = 0.01 its spring shrinks the trip by only 1 % per step ($1 - \eta\mu = 0.99$), and the
#   devices take just 3 to 40 steps per round, so there is almost nothing to pull back. In the
#   paper the devices run 20 local epochs — hundreds of steps — which is where μ = 1 starts to
#   matter, and FedProx's clearest gains there are with stragglers.
# - **Why FedAvg stalls.** Every device has its own labelling function $W_k$, so the local optima
#   really differ; and the local work is very uneven (3 to 40 steps), so the large devices both
#   move furthest and weigh most in the average. Part of FedAvg's problem is this *objective
#   inconsistency* (Wang et al. 2020): it settles near a compromise between clients rather than at
#   the minimum of the global loss. SCAFFOLD corrects every step of every device towards the
#   estimated global gradient, however many steps it takes.

# %% [markdown]
# ## Summary
#
# - **Client drift** comes from many local steps, each client towards its own optimum. There are
#   two classic cures: shorten the trip (FedProx) or correct its direction (SCAFFOLD).
# - **FedProx** (Li et al. 2020) minimises $F_k(w) + \frac{\mu}{2}\lVert w - w^t\rVert^2$, so each
#   local step uses $g + \mu(w - w^t)$: a spring that shrinks the trip by $1 - \eta\mu$ per step.
#   A 12-line `GradientTape` version matched `fedlab.FedProx` exactly; on one client, μ = 1 halved
#   the first trip (1.86 → 0.98).
# - **SCAFFOLD** (Karimireddy et al. 2020) steps along $g - c_k + c$; option II sets
#   $c_k^+ = c_k - c + (x - y_k)/(K\eta_l)$, the mean gradient along the client's path, and the
#   server keeps c the mean of all $c_k$. Both were checked by hand on client 3 of a real run.
# - **Non-IID digits** (two digits per client, 10 of 20 clients per round, 35–40 local steps):
#   SCAFFOLD reached 90 % in about half FedAvg's rounds and ended at about 0.96 against 0.88,
#   raising the clients' agreement from about 0.3 to 0.6. FedProx cut drift (about 0.88 → 0.56
#   with μ = 1) but not rounds: μ = 0.1 needed a few more than FedAvg, μ = 1 did not reach 90 % in
#   30. Less drift is not the goal in itself; drift in agreeing directions is harmless.
# - SCAFFOLD's server ‖c‖ fell to about 0.04 while the clients' mean ‖c_k‖ rose to about 0.8: the
#   clients' pulls are large but cancel on average, and the variates cancel them step by step.
# - **Synthetic(1, 1)**: SCAFFOLD about 0.86, FedAvg and FedProx (μ = 1) about 0.66; with
#   η = 0.01 and at most 40 local steps the proximal term had nothing to do.
# - SCAFFOLD's price: twice the bytes per round (c down, $\Delta c_k$ up) and a state on every
#   client that must survive between rounds — a problem in cross-device federated learning, where a
#   phone may be sampled only once or twice.
#
# ## Exercises
#
# *Functions, classes and arguments that no cell above uses are named in full (`fedlab.…`):
# `help()` on one (or on its class) shows its documentation, and on the course website the name
# links to its entry in the API reference.*
#
# 1. **Tune μ.** Write FedProx's local steps once more, in NumPy, then run FedProx on the digits
#    clients with μ ∈ {0.001, 0.01, 0.3, 3} and plot the accuracy of the last five rounds and the
#    mean drift against μ. Is there a μ that beats FedAvg here? Repeat with `LOCAL_EPOCHS = 20`
#    (u ≈ 144 steps): does the best μ change, and does FedProx start to help?
# 2. **Participation.** Run FedAvg and SCAFFOLD with all 20 clients per round and with 4 (20 %).
#    With fewer clients per round each $c_k$ is older when it is used: does SCAFFOLD's lead over
#    FedAvg shrink? On Synthetic(1, 1), does FedAvg still stall near 0.66 with all 30 devices per
#    round — is its problem client sampling or something else?
# 3. **What SCAFFOLD costs.** Work out what SCAFFOLD really sends per round (x and c down;
#    $\Delta y_k$ and $\Delta c_k$ up, each as large as the model) and compare it with the
#    `fedlab.History.bytes_down` and `fedlab.History.bytes_up` of the FedAvg and SCAFFOLD runs of
#    section 4: do fedlab's byte counts include the control variates? Then redraw the accuracy
#    curves against megabytes sent instead of rounds. Does SCAFFOLD still win per byte?
# 4. **Stragglers, FedProx's other half.** On Synthetic(1, 1) with five local epochs and half the
#    devices straggling (`stragglers=fedlab.Stragglers(0.5, drop=...)` in `fedlab.simulate`),
#    compare FedAvg that drops its stragglers (`drop=True`: the server does not wait for slow
#    devices), FedAvg that keeps their partial work (`drop=False`) and FedProx μ = 1 that keeps
#    it. Which wins, and why? What changes with 90 % stragglers? (Notebook
#    [07](07_stragglers_and_limited_compute.ipynb) goes further.)
# 5. **SCAFFOLD by hand.** Turn `fedprox_local_update` into `scaffold_local_update(model, x, y,
#    w_global, c_k, c, lr, batches)` that steps along g − c_k + c, and check it against
#    `replay.weights` from section 3 (same client, `batch_order(..., round_num=2, ...)`).
#
# Each exercise below has a cell for your answer, in code, and a **check** cell after it. Run the
# check: it prints ✓ and what it verified, or ✗ and the mistake it recognised, with a hint. The
# parts that ask you to explain have a cell for your answer in words. The runs reuse the
# notebook's settings, `experiment` and `report`, and change only what the exercise says.

# %%
from fedlab import exercises

# %% [markdown]
# ### Exercise 1 · Tune μ
#
# **(a)** Before you tune the spring, write it once more, in NumPy and for any client loss:
# `fedprox_local_sgd` takes `num_steps` local steps from `w_global`, each
# $w \leftarrow w - \eta\,\big(g + \mu\,(w - w^t)\big)$, where `gradient(w)` returns g, the
# gradient of the client's own loss at w (one array per layer, like the weights). Return the final
# weights as a new list and leave `w_global` as it is: it is the point the spring pulls towards.

# %%
def fedprox_local_sgd(w_global, gradient, mu, lr, num_steps):
    """`num_steps` FedProx steps from `w_global`: w ← w − lr·(gradient(w) + mu·(w − w_global))."""
    # BEGIN SOLUTION
    w = [a.copy() for a in w_global]
    for _ in range(num_steps):
        g = gradient(w)
        w = [wi - lr * (gi + mu * (wi - w0)) for wi, gi, w0 in zip(w, g, w_global, strict=True)]
    return w
    # END SOLUTION


# %% tags=["self-check"]
exercises.check_fedprox_local_sgd(fedprox_local_sgd)
# BEGIN HIDDEN TESTS
exercises.check_fedprox_local_sgd(fedprox_local_sgd, seed=1)
# END HIDDEN TESTS

# %% [markdown]
# **(b)** Run section 4's FedProx on the digits clients for each μ in `MU_GRID`, changing nothing
# but μ, into `mu_runs` keyed by μ. Then set `best_mu` to the μ whose run has the best mean test
# accuracy over the last five rounds (`last5`, below), among FedAvg (μ = 0), section 4's two
# FedProx runs and yours. `plot_sweep` plots and prints the last-5 accuracy and the mean drift of
# a dict of runs `{μ: History}` against μ.

# %%
def last5(history):
    """The mean test accuracy of the last five rounds: the "last 5" of `report`."""
    return history.test_accuracy[-5:].mean()


def plot_sweep(sweep, title):
    """Last-5 accuracy and mean drift against μ (symlog axis: μ = 0 is FedAvg)."""
    mus = sorted(sweep)
    accuracy, drift = [last5(sweep[mu]) for mu in mus], [sweep[mu].drift_mean.mean() for mu in mus]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3), layout="constrained")
    labels = ("last-5 accuracy", "mean drift")
    for ax, values, label in zip(axes, (accuracy, drift), labels, strict=True):
        ax.plot(mus, values, marker="o")
        ax.set_xscale("symlog", linthresh=1e-3)
        ax.set(xlabel="μ (0: FedAvg)", ylabel=label, title=title)
    print(f"{'μ':<7}{'last 5':>7}{'drift':>7}{'rounds to 90 %':>16}")
    for mu, a, d in zip(mus, accuracy, drift, strict=True):
        print(f"{mu:<7g}{a:>7.3f}{d:>7.2f}{rounds_to(sweep[mu], TARGET) or '—':>16}")


# %%
MU_GRID = [0.001, 0.01, 0.3, 3.0]
mu_runs = ...  # {μ: History}, section 4's FedProx run with each μ of MU_GRID
best_mu = ...  # the μ with the best last-5 accuracy (0 if FedAvg's is best)
# BEGIN SOLUTION
mu_runs = {
    mu: experiment(fedlab.FedProx(mu, LOCAL_EPOCHS, BATCH_SIZE, CLIENT_LR)) for mu in MU_GRID
}
sweep = {0.0: runs["FedAvg"], 0.1: runs["FedProx μ=0.1"], 1.0: runs["FedProx μ=1"], **mu_runs}
best_mu = max(sweep, key=lambda mu: last5(sweep[mu]))
plot_sweep(sweep, f"{LOCAL_EPOCHS} local epochs")
# END SOLUTION

# %% tags=["self-check"]
each_mu = {"mu": {mu: mu for mu in MU_GRID}}
fedprox_run = {"name": "mu_runs", "what": "section 4's FedProx run"}
exercises.check_runs(mu_runs, runs["FedProx μ=1"], **fedprox_run, **each_mu)
exercises.check_best_mu(best_mu, mu_runs, runs)

# %% [markdown]
# **(c)** Repeat with 20 local epochs (about 144 local steps per round): run FedProx with each μ of
# `LONG_MUS` (μ = 0 is FedAvg), changing nothing else, into `long_runs` keyed by μ, and set
# `best_mu_20` as in (b).

# %%
LONG_MUS = [0.0, 0.01, 0.1, 1.0]
long_runs = ...  # {μ: History}, section 4's FedProx run with local_epochs=20 and each μ
best_mu_20 = ...  # the μ of long_runs with the best last-5 accuracy
# BEGIN SOLUTION
long_runs = {mu: experiment(fedlab.FedProx(mu, 20, BATCH_SIZE, CLIENT_LR)) for mu in LONG_MUS}
best_mu_20 = max(long_runs, key=lambda mu: last5(long_runs[mu]))
plot_sweep(long_runs, "20 local epochs")
# END SOLUTION

# %% tags=["self-check"]
each_mu = {"mu": {mu: mu for mu in LONG_MUS}, "local_epochs": 20}
fedprox_run = {"name": "long_runs", "what": "section 4's FedProx run"}
exercises.check_runs(long_runs, runs["FedProx μ=1"], **fedprox_run, **each_mu)
exercises.check_best_mu(best_mu_20, long_runs, name="best_mu_20")

# %% [markdown]
# **Is there a μ that beats FedAvg here? With 20 local epochs, does the best μ change, and does
# FedProx start to help?**
#
# <!-- BEGIN SOLUTION -->
# **Model answer.** Not here. With five local epochs FedAvg (μ = 0) ends at a last-5 accuracy of
# 0.901; μ = 0.001 and 0.01 give the same to three decimals (the spring shrinks the trip by
# $1 - \eta\mu$ = 0.9999 and 0.999 per step: almost nothing), and every larger μ is worse: 0.894
# at μ = 0.1, 0.882 at 0.3, 0.876 at 1 and 0.854 at 3; from μ = 1 on, the runs no longer reach
# 90 % in 30 rounds. Meanwhile the drift falls steadily, from 0.88 to 0.48: less drift, less
# accuracy. With 20 local epochs (about 144 steps) FedAvg gains a little (0.911, its drift up from
# 0.88 to 1.04); the best μ is still 0 (μ = 0.01 ties at 0.911) and FedProx helps even less:
# μ = 1 now ends 0.057 below FedAvg instead of 0.025. Look at the drift with a spring, though:
# 0.78 for μ = 0.1 and 0.56 for μ = 1, with 20 epochs exactly as with 5. The client settles at the
# minimum of its own $h_k = F_k + \frac{\mu}{2}\lVert w - w^t\rVert^2$ and further steps do not
# take it further: μ, not the local work, sets the length of the trip (section 2's bound), while
# without a spring the trip keeps growing with the local work. That is FedProx's promise, but on
# these clients the part of the trip the spring cuts was useful: FedAvg's drift costs less than
# the progress it buys. FedProx pays off where the drift does real harm, and with stragglers
# (exercise 4).
# <!-- END SOLUTION -->

# %% [markdown]
# ### Exercise 2 · Participation
#
# **(a)** Run FedAvg and SCAFFOLD as in section 4 with all `NUM_CLIENTS` clients in every round and
# with 4, into `participation_runs` keyed by (name, clients per round): `("FedAvg", 20)`,
# `("SCAFFOLD", 20)`, `("FedAvg", 4)` and `("SCAFFOLD", 4)`. (`experiment` always samples
# `CLIENTS_PER_ROUND`: call `fedlab.simulate` yourself.)

# %%
participation_runs = ...  # {(name, clients per round): History}
# BEGIN SOLUTION
participation_runs = {}
for m in (NUM_CLIENTS, 4):
    for name, make in (("FedAvg", fedlab.FedAvg), ("SCAFFOLD", fedlab.Scaffold)):
        algorithm = make(LOCAL_EPOCHS, BATCH_SIZE, CLIENT_LR)
        participation_runs[name, m] = fedlab.simulate(
            algorithm, model_fn, digits, split, NUM_ROUNDS, m, SEED, progress=False
        )
# END SOLUTION

# %% tags=["self-check"]
section_4 = {(name, m): runs[name] for name in ("FedAvg", "SCAFFOLD") for m in (NUM_CLIENTS, 4)}
per_run = {"clients_per_round": {key: key[1] for key in section_4}}
named = {"name": "participation_runs", "what": "section 4's run"}
exercises.check_runs(participation_runs, section_4, **named, **per_run)

# %% [markdown]
# **(b)** Compute `scaffold_lead`: for 4, 10 (section 4's runs) and 20 clients per round,
# SCAFFOLD's last-5 accuracy minus FedAvg's.

# %%
scaffold_lead = ...  # {clients per round: SCAFFOLD's last-5 accuracy − FedAvg's}
# BEGIN SOLUTION
both = ("FedAvg", "SCAFFOLD")
by_size = {m: {name: participation_runs[name, m] for name in both} for m in (4, 20)}
by_size[CLIENTS_PER_ROUND] = {name: runs[name] for name in both}
scaffold_lead = {m: last5(pair["SCAFFOLD"]) - last5(pair["FedAvg"]) for m, pair in by_size.items()}
for m in sorted(by_size):
    print(f"— {m} clients per round (SCAFFOLD's lead {scaffold_lead[m]:+.3f})")
    report(by_size[m], TARGET)
# END SOLUTION

# %% tags=["self-check"]
exercises.check_scaffold_lead(scaffold_lead, participation_runs, runs)

# %% [markdown]
# **Does SCAFFOLD's lead shrink when fewer clients take part, and each $c_k$ is older?**
#
# <!-- BEGIN SOLUTION -->
# **Model answer.** No — it grows as fewer clients take part. SCAFFOLD's lead in last-5 accuracy
# is 0.04 with all 20 clients per round, 0.065 with 10 and 0.10 with 4: SCAFFOLD hardly suffers
# from the smaller rounds (0.97, 0.97, 0.95) while FedAvg does (0.93, 0.90, 0.85), and SCAFFOLD
# reaches 90 % in 7, 9 and 14 rounds, FedAvg in 17–18 each time. Stale variates may cost
# something — with 4 of 20 clients a client is sampled every fifth round on average, so its
# $c_k$, and most of the 20 that make up c, are several rounds old, and SCAFFOLD needs 14 rounds
# instead of 7 — but sampling costs FedAvg far more: four clients holding two digits each cover
# at most eight digits, and the round's average pulls towards those and forgets the others.
# SCAFFOLD's c is the mean of *all* 20 $c_k$, absent clients included, so its corrected steps
# still aim at the gradient of all ten digits: the variates remember the clients that are not
# there. Old estimates are good enough as long as the model moves slowly compared with how often
# a client comes back.
# <!-- END SOLUTION -->

# %% [markdown]
# **(c)** Run section 5's FedAvg and SCAFFOLD on Synthetic(1, 1) with all `SYN_CLIENTS` devices
# in every round, into `syn_full` with keys `"FedAvg"` and `"SCAFFOLD"`.

# %%
syn_full = ...  # {"FedAvg": History, "SCAFFOLD": History}, every device in every round
# BEGIN SOLUTION
everyone = {"num_rounds": NUM_ROUNDS, "clients_per_round": SYN_CLIENTS, "seed": SEED}
syn_full = {
    name: fedlab.simulate(
        make(**syn_args), logistic_regression, synthetic, syn_split, **everyone, progress=False
    )
    for name, make in (("FedAvg", fedlab.FedAvg), ("SCAFFOLD", fedlab.Scaffold))
}
report(syn_full, SYN_TARGET)
# END SOLUTION

# %% tags=["self-check"]
section_5 = {name: syn_runs[name] for name in ("FedAvg", "SCAFFOLD")}
every_device = {"clients_per_round": SYN_CLIENTS}
exercises.check_runs(syn_full, section_5, name="syn_full", what="section 5's run", **every_device)

# %% [markdown]
# **Does FedAvg still stall with every device in every round? Is its problem client sampling or
# something else?**
#
# <!-- BEGIN SOLUTION -->
# **Model answer.** It still stalls: with all 30 devices in every round FedAvg's last-5 accuracy
# is 0.67, about what it was with 10 (0.66), and it never reaches 80 %; SCAFFOLD gets there in 9
# rounds instead of 14 and ends at 0.86 again. So client sampling is not FedAvg's problem: with
# every device in every round there is no sampling noise at all, and the average still settles in
# the wrong place. What remains is section 5's bias: each device has its own labelling function,
# its local steps run towards its own optimum, and the large devices take the most steps and weigh
# the most, so FedAvg's fixed point is a compromise between the devices rather than the minimum of
# the global loss (objective inconsistency). SCAFFOLD's corrections remove that bias: with every
# device its drift falls to 0.08 (FedAvg's 0.25) and its agreement rises to 0.72 (FedAvg's
# 0.12).
# <!-- END SOLUTION -->

# %% [markdown]
# ### Exercise 3 · What SCAFFOLD costs
#
# **(a)** Write `scaffold_round_bytes`: the bytes one SCAFFOLD round sends down and up, as a pair
# `(down, up)`, when `num_clients` clients take part and the model has `num_parameters` float32
# numbers. Each client receives x and c and sends $\Delta y_k$ and $\Delta c_k$.

# %%
def scaffold_round_bytes(num_parameters, num_clients):
    """(bytes down, bytes up) of one SCAFFOLD round with `num_clients` clients, float32 numbers."""
    # BEGIN SOLUTION
    one_copy = 4 * num_parameters  # a float32 copy of the model: x, c, Δy_k or Δc_k
    return 2 * one_copy * num_clients, 2 * one_copy * num_clients
    # END SOLUTION


# %% tags=["self-check"]
exercises.check_scaffold_round_bytes(scaffold_round_bytes)
# BEGIN HIDDEN TESTS
exercises.check_scaffold_round_bytes(scaffold_round_bytes, seed=1)
# END HIDDEN TESTS

# %% [markdown]
# **(b)** Compare your count for section 4's model and `CLIENTS_PER_ROUND` clients with the
# `bytes_down` and `bytes_up` that section 4's SCAFFOLD and FedAvg runs recorded in their first
# round. Set `variates_counted` to `True` if fedlab's counts include c and $\Delta c_k$, `False` if
# not.

# %%
variates_counted = ...  # True or False
# BEGIN SOLUTION
num_parameters = sum(w.size for w in w_global)
by_hand = scaffold_round_bytes(num_parameters, CLIENTS_PER_ROUND)
for name in ("FedAvg", "SCAFFOLD"):
    h = runs[name]
    print(f"{name:<9} round 1: {h.bytes_down[0]:,} bytes down, {h.bytes_up[0]:,} bytes up")
print(f"scaffold_round_bytes({num_parameters}, {CLIENTS_PER_ROUND}) = {by_hand}")
variates_counted = (runs["SCAFFOLD"].bytes_down[0], runs["SCAFFOLD"].bytes_up[0]) == by_hand
# END SOLUTION

# %% tags=["self-check"]
look = "compare runs['SCAFFOLD'].bytes_down[0] with FedAvg's and with your count"
exercises.check_choice("variates_counted", variates_counted, True, {False: look})

# %% [markdown]
# **(c)** Redraw section 4's accuracy curves against `fedlab.History.megabytes_sent` (down and up,
# so far) instead of rounds, and record in `mb_to_target` the megabytes FedAvg and SCAFFOLD had
# sent when they first reached `TARGET`.

# %%
mb_to_target = ...  # {"FedAvg": megabytes, "SCAFFOLD": megabytes} sent until TARGET
# BEGIN SOLUTION
fig, ax = plt.subplots(figsize=(6.5, 3.2), layout="constrained")
for name, h in runs.items():
    ax.plot(h.megabytes_sent, h.test_accuracy, label=name)
ax.axhline(TARGET, color="grey", lw=0.8, ls=":")
ax.set(xlabel="megabytes sent (down + up)", ylabel="test accuracy", ylim=(0.5, 1))
ax.legend(fontsize="small")
mb_to_target = {}
for name in ("FedAvg", "SCAFFOLD"):
    h, r = runs[name], rounds_to(runs[name], TARGET)
    mb_to_target[name] = h.megabytes_sent[r - 1]
    print(f"{name:<9} {TARGET:.0%} in round {r}, after {mb_to_target[name]:.1f} MB")
budget = runs["FedAvg"].megabytes_sent[-1]  # what FedAvg's 30 rounds sent
within = runs["SCAFFOLD"].megabytes_sent <= budget
print(f"with FedAvg's {budget:.1f} MB: FedAvg {runs['FedAvg'].test_accuracy[-1]:.2f},", end=" ")
print(f"SCAFFOLD {runs['SCAFFOLD'].test_accuracy[within][-1]:.2f} after {within.sum()} rounds")
# END SOLUTION

# %% tags=["self-check"]
exercises.check_megabytes_to(mb_to_target, runs, TARGET, names=("FedAvg", "SCAFFOLD"))

# %% [markdown]
# **Does SCAFFOLD still win per byte?**
#
# <!-- BEGIN SOLUTION -->
# **Model answer.** First, fedlab's counts do include the variates: a FedAvg round of section 4
# sends 384 400 bytes down and as many up (10 clients × 9 610 float32 numbers × 4 bytes), a
# SCAFFOLD round 768 800 each way, exactly `scaffold_round_bytes(9610, 10)`. Per byte, the race
# to 90 % is a dead heat: SCAFFOLD gets there in 9 rounds instead of 18, at twice the bytes per
# round, so both have sent 13.8 MB. After that SCAFFOLD still wins, but by less than per round:
# with the 23.1 MB FedAvg spends on its 30 rounds, SCAFFOLD runs 15 rounds and reaches 0.93
# against FedAvg's 0.88, and its curve is steadier. So most of its lead per round disappears
# per byte. Whether it is worth it depends on what is scarce: rounds (latency, the clients' time
# and battery) or bandwidth. And it still needs every client to keep its $c_k$ from one round to
# the next. Compressing what is sent (notebook 08) changes the accounting again.
# <!-- END SOLUTION -->

# %% [markdown]
# ### Exercise 4 · Stragglers, FedProx's other half
#
# **(a)** On Synthetic(1, 1), with five local epochs and `stragglers=fedlab.Stragglers(0.5,
# drop=...)` passed to `fedlab.simulate`, make three runs into `straggler_runs`: `"FedAvg drop"`
# (section 5's FedAvg, stragglers dropped), `"FedAvg keep"` (their partial work kept) and
# `"FedProx keep"` (section 5's FedProx μ = 1, partial work kept). Change nothing else. Besides
# `report`'s table, `steadiness` prints each run's mean accuracy over rounds 11–30 and its lowest
# and highest.

# %%
def steadiness(runs):
    """Each run's mean test accuracy over rounds 11–30, and its lowest and highest."""
    for key, h in runs.items():
        later = h.test_accuracy[10:]
        span = f"from {later.min():.2f} to {later.max():.2f}"
        print(f"{key:<13} rounds 11–30: mean {later.mean():.2f}, {span}")


# %%
straggler_runs = ...  # {"FedAvg drop": History, "FedAvg keep": History, "FedProx keep": History}
# BEGIN SOLUTION
five_epochs = {**syn_args, "local_epochs": 5}
syn_settings = {"num_rounds": NUM_ROUNDS, "clients_per_round": CLIENTS_PER_ROUND, "seed": SEED}
plans = {
    "FedAvg drop": (fedlab.FedAvg(**five_epochs), True),
    "FedAvg keep": (fedlab.FedAvg(**five_epochs), False),
    "FedProx keep": (fedlab.FedProx(mu=1.0, **five_epochs), False),
}


def straggling(fraction):
    """The three runs, with `fraction` of each round's devices straggling."""
    made = {}
    for key, (algorithm, drop) in plans.items():
        late = {"stragglers": fedlab.Stragglers(fraction, drop=drop), "progress": False}
        made[key] = fedlab.simulate(
            algorithm, logistic_regression, synthetic, syn_split, **syn_settings, **late
        )
    return made


straggler_runs = straggling(0.5)
report(straggler_runs, SYN_TARGET)
steadiness(straggler_runs)
# END SOLUTION

# %% tags=["self-check"]
drops = {"FedAvg drop": True, "FedAvg keep": False, "FedProx keep": False}
section_5 = {"FedAvg drop": syn_runs["FedAvg"], "FedAvg keep": syn_runs["FedAvg"]}
section_5["FedProx keep"] = syn_runs["FedProx μ=1"]
exercises.check_drop_or_keep(straggler_runs, section_5, drops, fraction=0.5, local_epochs=5)

# %% [markdown]
# **(b)** The same three runs with 90 % stragglers, into `harsh_runs`.

# %%
harsh_runs = ...  # the three runs of (a), with 90 % stragglers
# BEGIN SOLUTION
harsh_runs = straggling(0.9)
report(harsh_runs, SYN_TARGET)
steadiness(harsh_runs)
# END SOLUTION

# %% tags=["self-check"]
harsh = {"fraction": 0.9, "local_epochs": 5, "name": "harsh_runs"}
exercises.check_drop_or_keep(harsh_runs, section_5, drops, **harsh)

# %% [markdown]
# **Which wins, and why? What changes with 90 % stragglers?**
#
# <!-- BEGIN SOLUTION -->
# **Model answer.** With half the devices straggling no run clearly wins, and the proximal term
# adds nothing. FedAvg that drops its stragglers has the best last five rounds (0.72 against 0.68
# and 0.68), but that is the wobble of averaging only five devices a round: over rounds 11–30 it
# averages 0.61 and swings between 0.46 and 0.74, while both runs that keep the partial work
# average 0.64. FedProx μ = 1 that keeps it is indistinguishable from FedAvg that keeps it (0.64
# over rounds 11–30, drift 0.35 against 0.38): with η = 0.01 its spring shortens a trip by 1 % a
# step, and the stragglers take fewer steps, not more. With 90 % stragglers the answer is clear:
# dropping them leaves one device a round, and FedAvg collapses to about 0.4 (its agreement is
# 1.00: one update agrees with itself), while keeping the partial work of the other nine holds
# both runs at 0.68 in the last five rounds. So here FedProx's advantage with stragglers comes
# entirely from *using partial work* — which FedAvg can do too (`drop=False`) — and not from μ.
# In the paper μ matters more because its devices run 20 local epochs, where the spring has
# hundreds of steps to act on.
# <!-- END SOLUTION -->

# %% [markdown]
# ### Exercise 5 · SCAFFOLD by hand
#
# **(a)** Turn section 2's `fedprox_local_update` into `scaffold_local_update`: local SGD from
# `w_global`, one step per batch of `batches`, each along the corrected direction g − c_k + c
# (`c_k` and `c` are lists of arrays, one per weight). Return the new weights.

# %%
def scaffold_local_update(model, x, y, w_global, c_k, c, lr, batches):
    """Local SGD from w_global along g − c_k + c, one step per batch; the new weights."""
    # BEGIN SOLUTION
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    for v, w0 in zip(model.trainable_variables, w_global, strict=True):
        v.assign(w0)
    for batch in batches:
        with tf.GradientTape() as tape:
            loss = loss_fn(y[batch], model(x[batch], training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        for v, g, ck, ci in zip(model.trainable_variables, grads, c_k, c, strict=True):
            v.assign_sub(lr * (g - ck + ci))  # the correction turns g towards the global gradient
    return [v.numpy() for v in model.trainable_variables]
    # END SOLUTION


# %% tags=["self-check"]
exercises.check_scaffold_local_update(scaffold_local_update)
# BEGIN HIDDEN TESTS
exercises.check_scaffold_local_update(scaffold_local_update, seed=1)
# END HIDDEN TESTS

# %% [markdown]
# **(b)** Replay section 3's client k in round 2 with your function — the same `model`, client
# data `x_k, y_k`, broadcast weights `x`, variates `c_k` and `c`, and round 2's batches — into
# `my_replay`, and compare it with `replay.weights`.

# %%
my_replay = ...  # scaffold_local_update on section 3's client k, round 2
# BEGIN SOLUTION
batches_2 = fedlab.steps.batch_order(len(x_k), BATCH_SIZE, LOCAL_EPOCHS, 2, k, seed=SEED)
my_replay = scaffold_local_update(model, x_k, y_k, x, c_k, c, CLIENT_LR, batches_2)
gap = max(float(np.abs(a - b).max()) for a, b in zip(my_replay, replay.weights, strict=True))
print(f"client {k}, {len(batches_2)} steps: largest difference from replay.weights {gap:.1e}")
# END SOLUTION

# %% tags=["self-check"]
exercises.check_scaffold_replay(my_replay, replay.weights, x)
