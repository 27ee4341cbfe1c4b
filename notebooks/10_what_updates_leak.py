# %% [markdown]
# # 10 · What updates leak
#
# *Purpose: see why "the data never leaves the device" is not the end of the story — rebuild a
# client's digits from the gradient it sends (DLG/iDLG), then measure which defences stop it and
# what they cost.*
#
# **Goals**
# - Read a client's **label** straight off its gradient (iDLG), by hand and with
#   `fedlab.leakage.infer_labels`.
# - Rebuild a client's **image** from its gradient (DLG): watch the optimisation, and compare
#   originals with reconstructions.
# - Measure the reconstruction error under five defences: batches of several examples, several
#   local steps (a FedAvg update instead of one gradient), clipping, Gaussian noise of growing
#   size, and clipping plus noise.
# - Draw the honest conclusion: which defences really stop the attack, at what noise level, and
#   at what cost to training.
# - See why "encrypt the data and send it to the server" is not federated learning at all.
#
# **You will need:** [01 · One round by hand](01_one_round_by_hand.ipynb) (`FedModel`, the
# stages in `fedlab.steps`) and [03 · FedSGD vs FedAvg](03_fedsgd_vs_fedavg.ipynb) (a gradient
# versus an update of several local steps); about 35 s to run on a laptop CPU (no GPU needed).

# %% [markdown]
# ## Setup
#
# `import fedlab` comes **first**: it quietens TensorFlow's start-up log lines before TensorFlow
# loads. `fedlab.leakage` is imported by name.

# %%
import sys

FEDLAB = "fedlab-edu @ git+https://github.com/fedlab-edu/fedlab"  # what Colab installs
if "google.colab" in sys.modules:  # elsewhere `python3 dev.py lab` has installed fedlab already
    import subprocess

    subprocess.run([sys.executable, "-m", "pip", "install", "-q", FEDLAB], check=True)

# %%
import fedlab  # first: it quietens TensorFlow's start-up log lines
from fedlab import leakage
from fedlab.leakage import Defence, attack

import matplotlib.pyplot as plt
import numpy as np

print(", ".join(f"{name} {version}" for name, version in fedlab.versions().items()))

# %% [markdown]
# The run sizes. Every attack is one optimisation of at most `MAX_ITER` L-BFGS steps on 64 pixels
# per example and costs about a second; the notebook runs 25 of them. The model is the MLP
# `FedModel(10)` of the earlier notebooks at its initial weights — the model a server sends in
# round 1.

# %%
SEED = 0  # the model's initial weights, the attacker's random start and the clients' noise
MAX_ITER = 500  # L-BFGS iterations at most (they stop far earlier when the match is exact)
CLIENT_LR = 0.1  # η, for the clients that take several local steps
BATCH_SIZES = (2, 4, 8)  # examples behind one gradient
LOCAL_STEPS = (2, 5, 20)  # full-batch steps behind one FedAvg update
NOISE_RATIOS = (0.1, 1, 3, 7, 24)  # noise norm σ·√d ÷ the update's norm ‖g‖

# %% [markdown]
# ## 1. "The data never leaves the device"
#
# That is how federated learning is usually introduced, and it is true: in every round of
# notebooks 01–09 a client sent the server its **update**, never its examples. But the update is
# computed *from* the examples. The smallest case: one client holding a single digit, sending the
# gradient of its loss at the weights the server broadcast (FedSGD with one example).

# %% tags=["nbval-check-output"]
digits = fedlab.load_digits()
x, y = digits.x_train, digits.y_train
mlp = fedlab.models.model_fn("mlp", 10)
model, weights = fedlab.steps.initialize(mlp, x, SEED)
sent = fedlab.steps.full_gradient(model, weights, x[:1], y[:1])  # what client 0 sends
print(f"the client holds 1 digit: {x[:1].size} pixels, label {y[0]}")
print(f"it sends {sum(g.size for g in sent):,} numbers: {[g.shape for g in sent]}")

# %% [markdown]
# 9,610 numbers to describe one 64-pixel image: plenty of room for the image to hide in. The
# server knows the weights (it sent them) and the architecture; all it has to do is read the
# gradient backwards. Two readings follow: the label (section 2), then the image (section 3).

# %% [markdown]
# ## 2. The label, read off the last bias (iDLG)
#
# For softmax cross-entropy with logits z = W₂ᵀh + b₂, the loss's gradient with respect to the
# logits is p − onehot(y), where p = softmax(z). Since ∂z/∂b₂ is the identity, the gradient of
# the **last bias** is that same vector. Its entries p_c are all in (0, 1), so exactly one entry
# is negative — p_y − 1 — and its position is the label (Zhao et al. 2020, "iDLG").
#
# Scratch first: the forward pass (`leakage.dense_logits` is `FedModel`'s forward pass with the
# weights as plain arrays), softmax, subtract the one-hot — and check against the last array the
# client sent:

# %% tags=["nbval-check-output"]
logits = leakage.dense_logits(weights, x[:1]).numpy()[0]
p = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
by_hand = p - np.eye(10)[y[0]]
np.testing.assert_allclose(by_hand, sent[-1], atol=1e-6)
print("∂L/∂b₂ =", np.round(sent[-1], 3))
print("label read off:", int(np.argmin(sent[-1])), "— package:", leakage.infer_labels(sent[-1]))


# %% [markdown]
# The model is untrained (every p_c ≈ 0.1), yet the one negative entry names the label exactly:
# no optimisation, no guessing. For a batch the client sends the *mean* gradient, so the last
# bias's gradient is the mean of the examples' p − onehot(y). With labels that are all different
# each one still leaves a negative entry, and `infer_labels(g, num_examples=n)` returns the n
# most negative positions. With a **repeated** label it cannot tell how many times each label
# occurs. Two batches of four — with different labels, and the first four examples as drawn:

# %% tags=["nbval-check-output"]
def different_labels(n):
    """Indices of the first example of each of the first n labels to appear in y."""
    _, first = np.unique(y, return_index=True)
    return np.sort(first)[:n]


for name, idx in (("different labels", different_labels(4)), ("as drawn", np.arange(4))):
    bias_grad = fedlab.steps.full_gradient(model, weights, x[idx], y[idx])[-1]
    found = leakage.infer_labels(bias_grad, num_examples=4)
    print(f"{name:<17} true {np.sort(y[idx])}  negative at {np.flatnonzero(bias_grad < 0)}", end="")
    print(f"  inferred {found}")

# %% [markdown]
# With different labels all four are found. As drawn, the batch holds two 3s: only three entries
# are negative, and the fourth "label" `infer_labels` returns is a guess (the least positive
# entry). Keep this in mind: it is the main reason batches protect anything in section 4.
#
# **The image, by hand.** One more identity shows how much a single gradient gives away. The
# first layer computes h = relu(xW₁ + b₁), so for one example ∂L/∂W₁[j, i] = x_j · ∂L/∂b₁[i]:
# each column of W₁'s gradient is the *image itself*, scaled by the bias gradient of that unit.
# Divide, and the image comes out:

# %% tags=["nbval-check-output"]
unit = np.argmax(np.abs(sent[1]))  # any hidden unit with a non-zero bias gradient
image = sent[0][:, unit] / sent[1][unit]
print(f"unit {unit}: largest pixel error under 1e-6? {np.abs(image - x[0]).max() < 1e-6}")


# %% [markdown]
# Exact to float32 precision, in one line. This trick needs a Dense first layer and a single
# example (for a batch, the column is a weighted mix of the images). The attack of section 3
# needs neither: it works for any model the attacker can differentiate.

# %% [markdown]
# ## 3. The image, by matching gradients (DLG)
#
# Deep Leakage from Gradients (Zhu et al. 2019) turns training around. The attacker starts from a
# random dummy image x̂ and the label found above, computes the gradient ĝ that x̂ would produce at
# the same weights, and changes x̂ — not the weights — to make ĝ match the client's g. When they
# match, x̂ is (usually) the client's image. `leakage.invert_gradient` minimises the cosine
# distance 1 − cos(ĝ, g) of "Inverting Gradients" (Geiping et al. 2020) with L-BFGS-B, pixels
# bounded to [0, 1], in float64. `leakage.attack` runs the client (`shared_update`) and the
# attacker together and scores the result against the truth — the attacker never sees `x`:

# %% tags=["nbval-check-output"]
def mse(error):
    """The pixel MSE to print. Under 1e-5 (PSNR over 50 dB) the digit is rebuilt perfectly to the
    eye, and the exact value depends on where the optimiser stopped, which varies by machine."""
    return "< 1e-5" if error < 1e-5 else f"{error:.1e}"


single = attack(model, weights, x[:1], y[:1], max_iter=MAX_ITER, seed=SEED)
print(f"label recovered: {single.labels_recovered}, pixel MSE {mse(single.error)}")

# %% [markdown]
# A pixel error at float64 round-off (`single.error`) after some 25 L-BFGS iterations: the image
# is rebuilt to the last bit of float64. (For scale: guessing the *average* digit for every image
# scores an MSE of 0.073.) To watch it happen, stop the same optimisation after 1, 3 and 8
# iterations:

# %%
snapshots = {k: leakage.invert_gradient(weights, sent, max_iter=k, seed=SEED).x for k in (1, 3, 8)}
snapshots[f"{len(single.gradient_distance) - 1} (end)"] = single.x_found
fig, axes = plt.subplots(1, 6, figsize=(12, 2.2), layout="constrained")
axes[0].semilogy(single.gradient_distance)
axes[0].set(xlabel="L-BFGS iteration", ylabel="1 − cos(ĝ, g)", title="gradient distance")
for ax, (k, guess) in zip(axes[1:], snapshots.items(), strict=False):
    ax.imshow(guess.reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
    ax.set(xticks=[], yticks=[], title=f"after {k}")
axes[5].imshow(x[0].reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
axes[5].set(xticks=[], yticks=[], title=f"original ({y[0]})");

# %% [markdown]
# The distance falls by many orders of magnitude, with the image appearing within a handful of
# iterations. Not a fluke of one digit — three more clients, one digit each:

# %% tags=["nbval-check-output"]
few = [single] + [attack(model, weights, x[i : i + 1], y[i : i + 1], seed=SEED) for i in (1, 2, 8)]
print("labels recovered:", [r.labels_recovered for r in few])
print("pixel MSE:", [mse(r.error) for r in few])

# %%
drawn = leakage.plot_reconstructions(few)

# %% [markdown]
# ## 4. Defences, measured
#
# Five things a client could do before sending, each a `leakage.Defence` or a bigger batch. The
# attacker stays the same naive one: it knows the weights and how many examples were used, reads
# the labels off the last bias, treats whatever arrives as one gradient and uses no image prior.
# Stronger attacks exist, so read every number below as a **lower bound** on the leakage.
#
# Every result is kept in `results` for the overview at the end of the section. Rows print the
# pixel MSE averaged over the examples (0.073 = no better than the average digit), the PSNR,
# whether the labels were recovered, and how many of the examples were rebuilt to an MSE under
# `READABLE` = 0.03 (by eye still readable, as the grids show).

# %%
results = {"1 example": single}
READABLE = 0.03  # per-example MSE under which a rebuilt digit is still readable


def show(names):
    for name in names:
        r = results[name]
        readable = f"{np.sum(r.errors < READABLE)}/{len(r.errors)}"
        psnr = "> 50" if r.error < 1e-5 else f"{r.psnr:.1f}"
        print(f"{name:<24} MSE {mse(r.error):>8}  PSNR {psnr:>5} dB  ", end="")
        print(f"labels {r.labels_recovered!s:<5}  readable {readable}")


# %% [markdown]
# ### 4a. Batches: several examples behind one gradient
#
# The client sends the mean gradient of n examples; the attacker optimises n dummy images at
# once (and matches them to the originals afterwards, `leakage.match_reconstructions`). Batches
# with all labels different, and the first n examples as drawn (with repeats from n = 4 on):

# %% tags=["nbval-check-output", "last-digit-tolerance"]
for n in BATCH_SIZES:
    batches = {"different": different_labels(n), "as drawn": np.arange(n)}
    for kind, idx in batches.items():
        if kind == "as drawn" and len(set(y[idx])) == n:
            continue  # the first 2 examples already have different labels
        results[f"batch {n}, {kind}"] = attack(model, weights, x[idx], y[idx], seed=SEED)
show(name for name in results if name.startswith("batch"))

# %%
fig, axes = plt.subplots(4, 8, figsize=(8.4, 4.6), layout="constrained")
for rows, kind in ((axes[:2], "different"), (axes[2:], "as drawn")):
    leakage.plot_reconstructions([results[f"batch 8, {kind}"]], [f"batch of 8, {kind}"], rows)

# %% [markdown]
# Four different digits are rebuilt as exactly as one, and eight nearly so (MSE ~2e-3: every
# digit readable). A batch gets in the way only when **labels repeat**: then the labels cannot
# all be read off, and the attacker optimises some dummies with a wrong label. Look at the grid,
# though: those come out blank, but the examples whose labels it did read — the 3, 1, 9 and 4 —
# are still rebuilt. The batch's *mean* MSE (about 0.1) is worse than guessing the average digit,
# yet half of the batch leaks: an average error hides partial leaks. Nor is this a defence a
# client controls — with 10 classes and 8 examples a repeat is almost certain, with 1000 classes
# it is rare, and stronger attacks recover the label counts too (Geiping et al. 2020; Yin et al.
# 2021 rebuild ImageNet batches of 48).
#
# ### 4b. Several local steps: a FedAvg update instead of a gradient
#
# With FedAvg the client takes several steps before sending Δ = w_local − w. The attacker still
# treats −Δ / (η · steps) as one gradient at the broadcast weights — only approximately true, as
# the weights moved during the steps (`Defence(local_steps=…)`):

# %% tags=["nbval-check-output", "last-digit-tolerance"]
for steps in LOCAL_STEPS:
    defence = Defence(local_steps=steps, client_lr=CLIENT_LR)
    results[f"{steps} local steps"] = attack(model, weights, x[:1], y[:1], defence, seed=SEED)
show(["1 example"] + [f"{steps} local steps" for steps in LOCAL_STEPS])

# %%
steps_names = ["1 example"] + [f"{steps} local steps" for steps in LOCAL_STEPS]
drawn = leakage.plot_reconstructions(
    [results[n] for n in steps_names], ["1 step", *steps_names[1:]]
)


# %% [markdown]
# Local steps blur the image: the MSE rises from round-off to about 1e-3 – 7e-3, but even after 20
# steps the digit is plainly recognisable and the label is still exact. (Attacks that model the
# local steps themselves do better still.) More local work helps communication (notebook 03),
# not privacy.
#
# ### 4c. Clipping
#
# DP-FedAvg clips every update to a norm S. Clipping changes only the update's **length**, and
# the cosine distance ignores length. Against the L2 distance of the original DLG, which compares
# lengths too, clipping does hurt. Clip to a tenth of the gradient's norm:

# %% tags=["nbval-check-output", "last-digit-tolerance"]
def norm(update):
    return float(np.sqrt(sum(np.sum(np.square(u)) for u in update)))


g_norm, d = norm(sent), sum(g.size for g in sent)
clipped = Defence(clip_norm=g_norm / 10)
results["clipped, cosine attack"] = attack(model, weights, x[:1], y[:1], clipped, seed=SEED)
results["L2 attack"] = attack(model, weights, x[:1], y[:1], distance="l2", seed=SEED)
results["clipped, L2 attack"] = attack(model, weights, x[:1], y[:1], clipped, "l2", seed=SEED)
print(f"‖g‖ = {g_norm:.3f}, clipped to {g_norm / 10:.3f}; d = {d:,} coordinates")
show(["clipped, cosine attack", "L2 attack", "clipped, L2 attack"])

# %%
clip_names = ["1 example", "clipped, cosine attack", "L2 attack", "clipped, L2 attack"]
drawn = leakage.plot_reconstructions(
    [results[n] for n in clip_names], ["none", "clip, cos", "L2", "clip, L2"]
)

# %% [markdown]
# The L2 attacker, looking for an image whose gradient is ten times shorter than any single
# digit's, fails (MSE about 0.2); the cosine attacker does not notice the clipping at all. An
# attacker chooses its distance *after* seeing the update, so clipping alone is no defence. It
# matters for another reason: it bounds how much one client can contribute, which is what lets
# noise of a known size hide it.
#
# ### 4d. Gaussian noise of growing size
#
# Add N(0, σ²) to each of the d = 9,610 coordinates. The noise vector has norm ≈ σ√d, so the
# number that matters is the **ratio** σ√d / ‖g‖ of the noise's norm to the update's. The last
# column is the cost: the cosine between the noisy update and the clean one, i.e. how much of
# what the server receives still points where training wants to go.

# %% tags=["nbval-check-output", "last-digit-tolerance"]
print(f"{'ratio':>6}{'σ':>9}{'measured':>10}{'cos(sent, g)':>14}{'MSE':>9}{'PSNR':>7}  labels")
for ratio in NOISE_RATIOS:
    defence = Defence(noise_std=ratio * g_norm / np.sqrt(d))
    noisy = leakage.shared_update(model, weights, x[:1], y[:1], defence, seed=SEED)
    noise = [a - b for a, b in zip(noisy, sent, strict=True)]
    cos = sum(np.sum(a * b) for a, b in zip(noisy, sent, strict=True)) / (norm(noisy) * g_norm)
    r = results[f"noise ratio {ratio}"] = attack(model, weights, x[:1], y[:1], defence, seed=SEED)
    row = f"{ratio:>6}{defence.noise_std:>9.4f}{norm(noise) / g_norm:>10.2f}{cos:>14.3f}"
    print(f"{row}{mse(r.error):>9}{r.psnr:>7.1f}  {r.labels_recovered}")

# %%
noise_names = [f"noise ratio {ratio}" for ratio in NOISE_RATIOS]
drawn = leakage.plot_reconstructions(
    [results[n] for n in noise_names], [f"ratio {r}" for r in NOISE_RATIOS]
)

# %% [markdown]
# Noise as large as the update itself (ratio 1) still leaves a readable digit (MSE ~2e-3). At
# ratio 3 it is blotchy but often guessable; only from ratio **≈ 7** is it no better than the
# average digit (MSE ≈ 0.07), and at 24 even the label is lost. Now read the cost column: at
# ratio 7 the update the server receives has a cosine of 0.15 with the true one — it is 98 %
# noise (cos² ≈ 0.02) for training too.
#
# ### 4e. Clipping plus noise
#
# This is what differential privacy does to one client: clip to S, then add noise of standard
# deviation σ = z·S. Clipping makes the ratio *known in advance*: the noise's norm is about
# z·S·√d and the update's at most S, so the ratio is at least z√d whatever the data. Clip to
# S = 1 and choose z for ratios 3 and 7:

# %% tags=["nbval-check-output", "last-digit-tolerance"]
CLIP = 1.0
for ratio in (3, 7):
    defence = Defence(clip_norm=CLIP, noise_std=ratio * CLIP / np.sqrt(d))
    results[f"clip {CLIP} + ratio {ratio}"] = attack(
        model, weights, x[:1], y[:1], defence, seed=SEED
    )
show([f"clip {CLIP} + ratio {ratio}" for ratio in (3, 7)])

# %% [markdown]
# The same as noise alone at the same ratio (section 4d: ~0.015 and ~0.08): against the cosine
# attacker, only the ratio counts. With the noise multipliers DP-SGD typically uses (z ≈ 1), the
# ratio for this model would be z√d ≈ 98 — far beyond what any attack here survives, and far
# beyond what training survives.
#
# ### Overview
#
# Every attack of this section, against the average-digit line:

# %%
fig, ax = plt.subplots(figsize=(9, 4.2), layout="constrained")
errors = np.array([max(r.error, 1e-17) for r in results.values()])
colors = ["C2" if r.labels_recovered else "C3" for r in results.values()]
ax.barh(list(results), errors, color=colors)
ax.axvline(0.073, color="k", linestyle="--", label="guess the average digit")
ax.set(xscale="log", xlabel="pixel MSE of the reconstruction (log; green: labels recovered)")
ax.invert_yaxis()
ax.legend(loc="lower right", bbox_to_anchor=(1, 1));

# %% [markdown]
# ## 5. The honest conclusion
#
# - **A single gradient is the data.** One example's gradient gives its label exactly (iDLG) and
#   its image to float64 precision in about a second, for a model the server knows.
# - **Batches, local steps and clipping are not defences.** Batches with different labels are
#   rebuilt just as well (8 examples: MSE ~2e-3); repeated labels hide only the examples whose
#   labels are lost (half of the batch of 8 as drawn was still readable), which the client does
#   not control and stronger attacks handle. Twenty local steps blur but do
#   not hide the digit. Clipping changes a length the cosine attacker ignores.
# - **Only noise stops it, and only a lot of it**: noise whose norm is **about 7 times the
#   update's** (σ√d/‖g‖ ≈ 7) to bring the attack down to guessing the average digit, ~24 to lose
#   the label too. An update that noisy is ~98 % noise for training as well: a client that
#   protects itself this way contributes almost nothing.
# - **Hence DP adds the noise to the sum.** DP-FedAvg clips each client's update to S and adds
#   noise z·S once, to the *sum* of many clients' updates. The sum of N updates has norm up to
#   N·S, so the same noise is N times smaller relative to the signal — with thousands of
#   clients a round, private and useful at once. That protects each client from everyone who
#   sees the models (other clients, whoever gets the final model), but not from the server,
#   which adds the noise and so sees every update before it is noised. To take the server out of
#   the trust as well, it must not see the individual updates: that is **secure aggregation**,
#   where the server learns only the sum.
#   [11 · Differential privacy](11_differential_privacy.ipynb) and
#   [12 · Secure aggregation](12_secure_aggregation.ipynb) build both.
#
# Attacks keep getting better (image priors, trained-model attacks, malicious servers that send
# crafted weights), so "we only send gradients" is never on its own a privacy argument.

# %% [markdown]
# ## 6. "Then encrypt the data and send it to the server" is not federated learning
#
# A tempting shortcut: if updates leak, why not encrypt the *data*, send it to the server, and
# train there? Follow the data:
#
# - **To train, the server must compute on the data.** With ordinary encryption (TLS, AES) it
#   has to decrypt first, so it holds every client's raw examples in the clear — exactly the
#   central collection federated learning exists to avoid. Encryption in transit protects
#   against eavesdroppers on the network, not against the party that receives the data.
# - **Homomorphic encryption** lets the server compute on ciphertexts without decrypting. It
#   exists (CKKS, for approximate arithmetic) but training on it costs orders of magnitude more
#   computation and memory than in the clear — commonly quoted as thousands of times or more for
#   even small networks — and non-linearities like ReLU and softmax must be approximated by
#   polynomials. Someone must also hold the decryption key for the trained model.
# - **And the data has still left the device.** It now sits, encrypted, on a server: kept,
#   copyable, and only as safe as the keys and the cryptography for as long as it is stored.
#
# Federated learning takes the opposite route: it **moves the computation to the data**. Raw
# examples never leave the device; only focused, ephemeral updates do, and they are aggregated
# as soon as they arrive. Sections 2–4 showed that this is necessary but not sufficient — the
# updates need protecting too. That is where cryptography does belong in federated learning:
# not to ship the data, but so that the server learns only the **sum** of the updates (secure
# aggregation, notebook 12), on top of which differential privacy's noise is affordable
# (notebook 11).

# %% [markdown]
# ## Summary
#
# - What a client sends is computed from its data: 9,610 numbers for one 64-pixel digit.
# - **iDLG**: the last bias's gradient is the mean of p − onehot(y); its negative entries are
#   the labels (`leakage.infer_labels`), exactly, unless labels repeat. For a Dense first layer
#   one example's image is even a column of W₁'s gradient divided by a bias gradient.
# - **DLG** (`leakage.invert_gradient`, `leakage.attack`): matching gradients rebuilds one digit
#   to float64 round-off in about 25 L-BFGS iterations.
# - **Defences** (`leakage.Defence`): batches with different labels (MSE ≤ ~2e-3 up to 8
#   examples), 20 local steps (~7e-3) and clipping (no effect on the cosine attack) do not stop
#   it. Repeated labels in a batch hide only the examples whose labels are lost.
# - **Noise** stops it only when its norm is ~7 times the update's (MSE ≈ the average digit),
#   when the update is ~98 % noise for training too. DP therefore adds noise to the sum over many
#   clients, behind secure aggregation (notebooks 11 and 12).
# - Encrypting the data and sending it to the server is central training: the server must
#   decrypt to train, or pay the enormous cost of homomorphic encryption. Federated learning
#   moves the computation to the data instead.
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
# 1. **A trained model.** Train the MLP for a few rounds (the stages of `fedlab.steps`, as in
#    notebook 01, or a `fedlab.Simulation`, whose `weights` are the global model) and attack
#    the trained weights. Does `infer_labels`
#    still work when the model is confident (hint: what is p − onehot(y) for a correct,
#    confident prediction)? Is the image still rebuilt?
# 2. **Repeated labels.** For the batch of 4 as drawn, pass the true labels to
#    `fedlab.leakage.invert_gradient(weights, shared, 4, labels=...)`. How much of the batch's
#    protection was only the lost labels?
# 3. **Where is the threshold?** Refine `NOISE_RATIOS` between 3 and 7, and repeat each attack
#    with three seeds. Plot the MSE against the ratio; where does the digit become unreadable?
#    Then find where the label goes: `infer_labels` on many noisy updates between ratios 7 and
#    40 (no attack needed).
# 4. **Bigger batches.** Try batches of 10 different labels, then 16 examples as drawn. Read
#    `fedlab.leakage.invert_gradient`: what labels does it use when there are more examples than
#    classes?
# 5. **The sum of many clients.** Give 50 clients one digit each and sum their gradients. Add to
#    the *sum* the noise that protected one client in section 4d (ratio 7 relative to one
#    client's ‖g‖), then divide by 50. What is the cosine of this noisy average with the clean
#    one? Compare with the 0.15 of section 4d, and explain why DP-FedAvg needs many clients per
#    round.

# %%
from fedlab import exercises

# %% [markdown]
# ### Exercise 1 · A trained model
#
# **(a)** Train the MLP with FedAvg on digits split IID over 10 clients (`fedlab.partition.iid`)
# until it is confident — 20 rounds of 5 local epochs with `client_lr=0.5` will do — from the
# same start as `weights` (a `fedlab.Simulation` with `seed=SEED` starts there). Keep the global
# model's weights as `trained_weights`.

# %%
trained_weights = ...  # the global model's weights after some rounds of FedAvg
# BEGIN SOLUTION
clients = fedlab.partition.iid(y, 10, seed=SEED)
trainer = fedlab.FedAvg(local_epochs=5, batch_size=32, client_lr=0.5)
simulation = fedlab.Simulation(trainer, mlp, digits, clients, seed=SEED)
for _ in range(20):
    last = simulation.step()
trained_weights = simulation.weights
print(f"test accuracy after 20 rounds: {last.test_accuracy:.3f}")
# END SOLUTION

# %% tags=["self-check"]
exercises.check_trained_weights(trained_weights, weights, digits.x_test, digits.y_test)

# %% [markdown]
# **(b)** Write `last_bias_gradient(weights, x, y)`, section 2's iDLG formula for a batch: the
# mean over the examples of p − onehot(y), where p is the softmax of the logits
# `leakage.dense_logits(weights, x)` (one row per example).

# %%
def last_bias_gradient(weights, x, y):
    """The gradient of the batch's mean loss with respect to the last bias (one entry per class):
    the mean over the examples of p − onehot(y), p the softmax of each example's logits."""
    # BEGIN SOLUTION
    logits = np.asarray(leakage.dense_logits(weights, x))
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    return (p - np.eye(p.shape[1])[y]).mean(axis=0)
    # END SOLUTION


# %% tags=["self-check"]
exercises.check_last_bias_gradient(last_bias_gradient)
# BEGIN HIDDEN TESTS
exercises.check_last_bias_gradient(last_bias_gradient, seed=1)
# END HIDDEN TESTS

# %% [markdown]
# **(c)** Print `last_bias_gradient` of client 0's digit at `weights` and at `trained_weights`,
# with the label `infer_labels` reads off each. Then attack the trained model as section 3
# attacked the round-1 model: keep the `Reconstruction` of client 0's digit as `trained_attack`,
# and print the pixel MSE of the same attack on the digits 1, 2 and 8 of section 3.

# %%
trained_attack = ...  # leakage's attack on client 0's digit x[:1] at trained_weights
# BEGIN SOLUTION
for name, w in {"round 1": weights, "trained": trained_weights}.items():
    bias_grad = last_bias_gradient(w, x[:1], y[:1])
    update_norm = norm(fedlab.steps.full_gradient(model, w, x[:1], y[:1]))
    print(f"{name:>7}: ∂L/∂b₂ = {np.round(bias_grad, 4)}, ‖g‖ = {update_norm:.4f}", end="")
    print(f", label read off {leakage.infer_labels(bias_grad)}")
trained_attack = attack(model, trained_weights, x[:1], y[:1], seed=SEED)
others = [attack(model, trained_weights, x[i : i + 1], y[i : i + 1], seed=SEED) for i in (1, 2, 8)]
print("trained model, labels recovered:", [r.labels_recovered for r in [trained_attack, *others]])
print("pixel MSE:", [mse(r.error) for r in [trained_attack, *others]])
# END SOLUTION

# %% tags=["self-check"]
exercises.check_trained_attack(trained_attack, trained_weights, weights, x[:1], y[:1], seed=SEED)

# %% [markdown]
# **Does `infer_labels` still work when the model is confident? Is the image still rebuilt?**
#
# <!-- BEGIN SOLUTION -->
# **Model answer.** Yes, both. For a correct, confident prediction p ≈ onehot(y), so
# p − onehot(y) is almost zero: after 20 rounds (test accuracy 0.97, from 0.06) the last bias's
# gradient of client 0's 3 is about −0.001 at the 3 and at most 0.0008 elsewhere, and the whole
# gradient is about 250 times shorter (‖g‖ 0.017 against 4.19). But its *signs* have not
# changed: every p_c is positive, so p_c − 0 > 0 for the other classes and p_y − 1 < 0 for the
# label, which stays the only negative entry however confident the model (a wrong prediction
# leaves it negative too). `infer_labels` fails only when p_y rounds to exactly 1 in float32
# and the entry vanishes. The image is rebuilt too: the cosine attack ignores the gradient's
# length, so a short gradient is as good as a long one — client 0's digit again to round-off,
# and of the other three digits two to round-off and one to 1.4e-3, every label right. A
# trained model leaks as much as a fresh one: later rounds are no safer than round 1.
# <!-- END SOLUTION -->

# %% [markdown]
# ### Exercise 2 · Repeated labels
#
# Compute the update of section 4a's batch of 4 as drawn (`leakage.shared_update`), invert it
# with `fedlab.leakage.invert_gradient`, this time given the true labels `y[:4]` (same `seed` as
# the attacks), and keep the result as `known`. Pair the reconstructions with the originals
# (`leakage.match_reconstructions`) and keep each one's MSE as `known_errors`. Print them beside
# those of section 4a's attack, `results["batch 4, as drawn"].errors`.

# %%
known = ...  # invert_gradient's Inversion of the batch of 4 as drawn, given the true labels
known_errors = ...  # the MSE of each of the 4 reconstructions, paired with its original
# BEGIN SOLUTION
shared_4 = leakage.shared_update(model, weights, x[:4], y[:4])
known = leakage.invert_gradient(weights, shared_4, 4, labels=y[:4], max_iter=MAX_ITER, seed=SEED)
_, known_errors = leakage.match_reconstructions(x[:4], known.x)
inferred = results["batch 4, as drawn"]
print(f"labels read off {inferred.label_found}: MSE {[mse(e) for e in inferred.errors]}")
print(f"true labels {known.labels}:     MSE {[mse(e) for e in known_errors]}")
# END SOLUTION

# %% tags=["self-check"]
exercises.check_known_labels(known, known_errors, x[:4], y[:4])

# %% [markdown]
# **How much of the batch's protection was only the lost labels?**
#
# <!-- BEGIN SOLUTION -->
# **Model answer.** Practically all of it. With the labels read off the gradient the attacker
# used 3, 9, 1 and a 2 for the second 3, and rebuilt two of the four readably (MSE 0.012,
# 0.043, 0.022 and 0.18). Given the true labels it rebuilds all four (MSE 4.3e-3 or less, two of
# them about 1e-4). The wrong label did not only lose its own example: the 9, with the right
# label, was spoilt as well (0.043), because the dummies are optimised together. So the batch
# hid nothing by averaging the images; it hid them by hiding a label count — and that is
# fragile: the repeated label's entry of the last bias's gradient is about twice as negative as
# the others (two examples contribute p − 1 to it), which is how stronger attacks count labels.
# <!-- END SOLUTION -->

# %% [markdown]
# ### Exercise 3 · Where is the threshold?
#
# **(a)** For each ratio in `FINE_RATIOS`, attack client 0's digit behind section 4d's noise
# (`Defence(noise_std=ratio * g_norm / np.sqrt(d))`) three times, with `seed` 0, 1 and 2 (the
# seed draws the noise and the attacker's start). Keep the pixel MSEs as `threshold_mse`,
# `{ratio: [three MSEs]}`, and plot them against the ratio.

# %%
FINE_RATIOS = (3, 4, 5, 6, 7)
threshold_mse = ...  # {ratio: [the pixel MSE of the attacks with seeds 0, 1 and 2]}
# BEGIN SOLUTION
threshold_mse = {}
for ratio in FINE_RATIOS:
    defence = Defence(noise_std=ratio * g_norm / np.sqrt(d))
    runs = [attack(model, weights, x[:1], y[:1], defence, seed=s) for s in range(3)]
    threshold_mse[ratio] = [r.error for r in runs]
    readable = sum(r.error < READABLE for r in runs)
    print(f"ratio {ratio}: MSE {[mse(r.error) for r in runs]}, readable {readable}/3", end="")
    print(f", labels {[r.labels_recovered for r in runs]}")
fig, ax = plt.subplots(figsize=(5.5, 3), layout="constrained")
for ratio, errors in threshold_mse.items():
    ax.plot([ratio] * 3, errors, "o", color="C0", alpha=0.6)
ax.plot(FINE_RATIOS, [np.mean(e) for e in threshold_mse.values()], "-", color="C0", label="mean")
ax.axhline(0.073, color="k", linestyle="--", label="guess the average digit")
ax.axhline(READABLE, color="C2", linestyle=":", label="readable")
ax.set(xlabel="noise ratio σ√d / ‖g‖", ylabel="pixel MSE", yscale="log")
ax.legend(fontsize="small");
# END SOLUTION

# %% tags=["self-check"]
exercises.check_threshold_mse(threshold_mse, low=3, high=7, repeats=3)

# %% [markdown]
# **(b)** The label needs no attack: it is the most negative entry of the noisy update's last
# array. For each ratio in `LABEL_RATIOS`, send 20 noisy updates of client 0's digit
# (`leakage.shared_update(..., defence, seed=s)` for s in 0–19) and keep in `label_rate` the
# share whose label `infer_labels` reads right.

# %%
LABEL_RATIOS = (7, 10, 14, 20, 28, 40)
label_rate = ...  # {ratio: the share of 20 noisy updates whose label is still y[0]}
# BEGIN SOLUTION
label_rate = {}
for ratio in LABEL_RATIOS:
    defence = Defence(noise_std=ratio * g_norm / np.sqrt(d))
    noisy = [leakage.shared_update(model, weights, x[:1], y[:1], defence, s) for s in range(20)]
    label_rate[ratio] = float(np.mean([leakage.infer_labels(u[-1])[0] == y[0] for u in noisy]))
print("ratio → label recovered:", {r: f"{share:.0%}" for r, share in label_rate.items()})
# END SOLUTION

# %% tags=["self-check"]
exercises.check_label_rate(label_rate, sent[-1], y[0], g_norm / np.sqrt(d), num_seeds=20)

# %% [markdown]
# **Where does the digit become unreadable, and where does the label go?**
#
# <!-- BEGIN SOLUTION -->
# **Model answer.** The digit goes between ratios 4 and 5. At 3 all three seeds leave it
# readable (MSE 0.015–0.020), at 4 two of three (0.025, 0.028, 0.078), at 5 none (0.05–0.09),
# and from 5 on the mean is at or above the average digit's 0.073. One run per ratio, as in
# section 4d, is too coarse: the seed (the noise drawn and the attacker's start) moves the MSE
# by a factor of 3 at the same ratio. The label holds much longer, and goes gradually, not at a
# threshold: it is read right from 95 % of the noisy updates at ratio 7, 70 % at 10, 55 % at
# 14, 35 % at 20, 20 % at 28 and 5 % at 40, where it is no better than a guess (10 %). The noise
# per coordinate is σ = ratio · ‖g‖ / √d ≈ 0.043 · ratio, against a gap of about 1 between the
# label's entry (−0.90) and the others (0.05–0.14): at ratio 7, σ = 0.3 seldom closes it; at 20,
# σ = 0.85 often does. Section 4d's single run kept the label at 7 and lost it at 24 — one draw
# each; here one of three seeds already loses it at 6 and 7, and then the attack fails
# completely (MSE 0.32–0.33: a dummy of the wrong digit).
# <!-- END SOLUTION -->

# %% [markdown]
# ### Exercise 4 · Bigger batches
#
# **(a)** Attack a batch of 10 examples with different labels (`different_labels(10)`) and the
# first 16 examples as drawn, into `big_batches` with keys `"10 different"` and `"16 as drawn"`.
# Print each one's MSE, whether its labels were recovered and how many examples are readable.

# %%
big_batches = ...  # {"10 different": Reconstruction, "16 as drawn": Reconstruction}
# BEGIN SOLUTION
ten, sixteen = different_labels(10), np.arange(16)
big_batches = {
    "10 different": attack(model, weights, x[ten], y[ten], seed=SEED),
    "16 as drawn": attack(model, weights, x[sixteen], y[sixteen], seed=SEED),
}
results |= {f"batch {name}": r for name, r in big_batches.items()}
show(f"batch {name}" for name in big_batches)
fig, axes = plt.subplots(4, 8, figsize=(8.4, 4.6), layout="constrained")
drawn = leakage.plot_reconstructions([big_batches["16 as drawn"]], ["batch of 16, as drawn"], axes)
# END SOLUTION

# %% tags=["self-check"]
exercises.check_big_batches(big_batches, x, y)

# %% [markdown]
# **(b)** Read `fedlab.leakage.invert_gradient` (`help()`, or its source with
# `inspect.getsource`): which labels does it use for the batch of 16 when it is not given any?
# Compute them as `labels_16` and print them beside the true labels.

# %%
labels_16 = ...  # the 16 labels invert_gradient gives the dummies of the batch of 16
# BEGIN SOLUTION
bias_16 = leakage.shared_update(model, weights, x[:16], y[:16])[-1]
labels_16 = np.resize(leakage.infer_labels(bias_16, 10), 16)  # as invert_gradient does
print("the attacker's labels:", np.sort(labels_16))
print("the true labels:      ", np.sort(y[:16]))
# END SOLUTION

# %% tags=["self-check"]
bias_gradient_16 = fedlab.steps.full_gradient(model, weights, x[:16], y[:16])[-1]
exercises.check_many_labels(labels_16, bias_gradient_16, y[:16], num_classes=10)

# %% [markdown]
# **How do bigger batches fare, and what does the attacker do with more examples than classes?**
#
# <!-- BEGIN SOLUTION -->
# **Model answer.** Ten examples with ten different labels are still rebuilt: MSE 3.4e-3,
# all ten readable, the labels exact. Batch size on its own does little while the labels are
# distinct. The 16 as drawn fail by the numbers (MSE 0.13, none under 0.03, labels wrong),
# though the grid still shows some of the 3s, 1s and the 9. The reason is in `invert_gradient`:
# without labels it calls `infer_labels` for min(16, 10) = 10 examples — all ten classes, sorted,
# whatever the gradient says — and `np.resize` repeats that list from its start to 16 labels:
# 0–9, then 0–5 again. Those labels have nothing to do with the batch (true: four 1s, four 3s,
# three 9s, two 4s, a 2, a 5 and an 8): only 10 of the 16 fit an example, and four dummies are
# labelled 0, 0, 6 and 7, digits nobody in the batch holds. So once again the protection is the
# lost label count, not the batch; an attacker that estimates the counts (exercise 2) would do
# much better.
# <!-- END SOLUTION -->

# %% [markdown]
# ### Exercise 5 · The sum of many clients
#
# **(a)** Write the server's noisy average: `noisy_mean(updates, noise_std, rng)` sums the
# clients' updates (each a list of arrays, one per layer), adds **one** draw of
# N(0, noise_std²) per coordinate (`rng.normal`), and divides by the number of clients.

# %%
def noisy_mean(updates, noise_std, rng):
    """(Σ_k updates[k] + N(0, noise_std² I)) / n, one array per layer, the noise drawn once."""
    # BEGIN SOLUTION
    sums = [np.sum(layer, axis=0) for layer in zip(*updates, strict=True)]
    return [(s + rng.normal(0.0, noise_std, s.shape)) / len(updates) for s in sums]
    # END SOLUTION


# %% tags=["self-check"]
exercises.check_noisy_mean(noisy_mean)
# BEGIN HIDDEN TESTS
exercises.check_noisy_mean(noisy_mean, seed=1)
# END HIDDEN TESTS

# %% [markdown]
# **(b)** Give the first 50 examples to 50 clients, one each, and compute every client's
# gradient at `weights`. Average them with `noisy_mean`, with section 4d's noise at ratio 7
# (`7 * g_norm / np.sqrt(d)`: relative to *one* client's ‖g‖) and `np.random.default_rng(SEED)`.
# Keep the cosine of this noisy average with the clean average as `cos_many`. For comparison,
# print also the cosine when every client adds that noise to its own gradient.

# %%
cos_many = ...  # cosine between the noisy average of the 50 gradients and the clean average
# BEGIN SOLUTION
many = [fedlab.steps.full_gradient(model, weights, x[k : k + 1], y[k : k + 1]) for k in range(50)]
clean = [np.mean(layer, axis=0) for layer in zip(*many, strict=True)]
sigma = 7 * g_norm / np.sqrt(d)


def cosine(a, b):
    return sum(np.sum(u * v) for u, v in zip(a, b, strict=True)) / (norm(a) * norm(b))


cos_many = cosine(noisy_mean(many, sigma, np.random.default_rng(SEED)), clean)
rng = np.random.default_rng(SEED)
each = [[g + rng.normal(0.0, sigma, g.shape) for g in update] for update in many]
local = [np.mean(layer, axis=0) for layer in zip(*each, strict=True)]
print(f"‖sum‖ = {50 * norm(clean):.1f}, one client's ‖g‖ = {g_norm:.2f}")
print(f"cosine with the clean average: noise on the sum {cos_many:.2f}, on every client", end="")
print(f" {cosine(local, clean):.2f}")
# END SOLUTION

# %% tags=["self-check"]
exercises.check_cos_many(cos_many, weights, x[:50], y[:50], 7 * g_norm / np.sqrt(d))

# %% [markdown]
# **Compare with the 0.15 of section 4d: why does DP-FedAvg need many clients per round?**
#
# <!-- BEGIN SOLUTION -->
# **Model answer.** The same noise that left one client's update with a cosine of 0.15
# leaves the average of 50 clients at 0.85: most of what the server receives now points where
# training wants to go. The noise is drawn once, so its norm stays σ√d ≈ 7 · 4.19 ≈ 29, while
# the signal grows with the number of clients: the 50 gradients point in similar directions, so
# ‖sum‖ = 46.5, 11 times one client's 4.19 (between √50 ≈ 7 for unrelated directions and 50 for
# identical ones). Each client is still hidden as well as in section 4d — what matters for one
# client is the noise against *its* contribution, 7 times its norm — but the average is no
# longer drowned. If every client adds that noise itself, the 50 noises add up to √50 times one
# and the cosine falls to 0.22: hardly better than one client alone. That is DP-FedAvg's design:
# clip each update to S, so that no client contributes more than S, and add noise z·S once, to
# the sum. The noise is fixed by one client's bound, the signal grows with the number of
# clients K, so the noise-to-signal ratio of the average falls as K grows (like 1/K when the
# updates agree). With a handful of clients per round the noise wins; with thousands it is
# private and useful at once (notebook 11 measures it).
# <!-- END SOLUTION -->
