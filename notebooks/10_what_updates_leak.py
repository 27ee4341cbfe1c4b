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
# 1. **A trained model.** Train the MLP for a few rounds (the stages of `fedlab.steps`, as in
#    notebook 01, or a `fedlab.Simulation`, whose `weights` are the global model) and attack
#    the trained weights. Does `infer_labels`
#    still work when the model is confident (hint: what is p − onehot(y) for a correct,
#    confident prediction)? Is the image still rebuilt?
# 2. **Repeated labels.** For the batch of 4 as drawn, pass the true labels to
#    `fedlab.leakage.invert_gradient(weights, shared, 4, labels=...)`. How much of the batch's
#    protection was only the lost labels?
# 3. **Where is the threshold?** Refine `NOISE_RATIOS` between 3 and 7, and repeat each attack
#    with three seeds. Plot the MSE against the ratio; at which ratio does the label go?
# 4. **Bigger batches.** Try batches of 10 different labels, then 16 examples as drawn. Read
#    `fedlab.leakage.invert_gradient`: what labels does it use when there are more examples than
#    classes?
# 5. **The sum of many clients.** Give 50 clients one digit each and sum their gradients. Add to
#    the *sum* the noise that protected one client in section 4d (ratio 7 relative to one
#    client's ‖g‖), then divide by 50. What is the cosine of this noisy average with the clean
#    one? Compare with the 0.15 of section 4d, and explain why DP-FedAvg needs many clients per
#    round.
