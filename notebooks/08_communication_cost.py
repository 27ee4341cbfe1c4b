# %% [markdown]
# # 08 · Communication cost
#
# *Purpose: count what a federated round sends over the network, put a client's update through
# the compression codecs of `fedlab.compression`, and see what each one saves in megabytes and
# costs in accuracy.*
#
# **Goals**
# - Count the bytes of one round — the global model down to each selected client, each update
#   back up — for the models used so far and for a 7-billion-parameter language model.
# - Put one real client update through float16, 8- and 4-bit stochastic quantisation and top-k
#   sparsification: its size on the wire, its error, and why the quantiser is *unbiased* and
#   top-k is not.
# - Train FedAvg on digits with eight uplink settings and compare test accuracy against rounds
#   and against megabytes sent.
# - See what **error feedback** does for top-k, and what dominates the bill once the uplink is
#   compressed.
#
# **You will need:** [01 · One round by hand](01_one_round_by_hand.ipynb) (`FedModel`, the
# stages in `fedlab.steps`), [02 · Client splits](02_client_splits.ipynb) (Dirichlet label skew)
# and [03 · FedSGD vs FedAvg](03_fedsgd_vs_fedavg.ipynb) (local epochs); about 30 s to run on a
# laptop CPU (no GPU needed).

# %% [markdown]
# ## Setup
#
# `import fedlab` comes **first**: it quietens TensorFlow's start-up log lines before TensorFlow
# loads. `fedlab.compression` and `fedlab.large_models` are imported by name.

# %%
import sys

FEDLAB = "fedlab-edu @ git+https://github.com/fedlab-edu/fedlab"  # what Colab installs
if "google.colab" in sys.modules:  # elsewhere `python3 dev.py lab` has installed fedlab already
    import subprocess

    subprocess.run([sys.executable, "-m", "pip", "install", "-q", FEDLAB], check=True)

# %%
import fedlab  # first: it quietens TensorFlow's start-up log lines
from fedlab import compression, large_models

import matplotlib.pyplot as plt
import numpy as np

print(", ".join(f"{name} {version}" for name, version in fedlab.versions().items()))

# %% [markdown]
# The run sizes. Each training run below is FedAvg on digits for 30 rounds with 10 of 20 clients
# a round (about 1.5 s each on a laptop CPU); there are eight of them.

# %%
NUM_CLIENTS = 20  # digits dealt to 20 clients...
ALPHA = 0.5  # ...with Dirichlet(0.5) label skew (notebook 02)
CLIENTS_PER_ROUND = 10  # K
NUM_ROUNDS = 30
LOCAL_EPOCHS = 2  # E
BATCH_SIZE = 20  # B
CLIENT_LR = 0.1  # η
SEED = 0

# %% [markdown]
# ## 1. What one round sends
#
# In every round of FedAvg the server sends the current global weights to each of the K selected
# clients (**downlink**), and each client sends back its update Δ_k = w_k − w^t, which has exactly
# as many numbers as the model (**uplink**). With n parameters sent as float32 (4 bytes each):
#
# $$\text{bytes per round} = \underbrace{4\,n\,K}_{\text{down}} + \underbrace{4\,n\,K}_{\text{up}}.$$
#
# Nothing depends on the data or the number of local epochs: a round costs the same whether a
# client trained for one step or a hundred. (Algorithms with extra state send more: SCAFFOLD's
# control variates double both directions.) The number of parameters of the models met so far,
# and of two larger ones:

# %%
digits = fedlab.load_digits()


def count(name, x):
    return fedlab.models.build_model(fedlab.models.model_fn(name, 10), x, SEED).count_params()


num_params = {
    "logistic regression (digits)": count("logreg", digits.x_train),
    "small CNN (digits)": count("cnn", digits.as_images().x_train),
    "MLP, FedModel (digits)": count("mlp", digits.x_train),
    "tiny transformer (256 tokens)": fedlab.models.tiny_transformer(256, 64).count_params(),
    "Llama 2 7B": large_models.LLAMA_2_7B.num_parameters(),
}

# %% [markdown]
# Megabytes (10⁶ bytes) per round with K = 10, and the seconds one client needs to upload its
# update over a 10 Mbit/s uplink (`large_models.upload_seconds`, no protocol overhead):

# %% tags=["nbval-check-output"]
print(f"{'model':<30}{'parameters':>15}{'MB per round':>15}{'upload (s)':>12}")
for name, n in num_params.items():
    megabytes = 4 * n * 2 * CLIENTS_PER_ROUND / 1e6  # float32, down + up, K clients
    seconds = large_models.upload_seconds(4 * n, uplink_mbit_per_s=10)
    print(f"{name:<30}{n:>15,}{megabytes:>15,.2f}{seconds:>12,.3f}")

# %% [markdown]
# The digits models are tiny: a round of the MLP moves 0.77 MB, and a client uploads its update in
# a thirtieth of a second. The tiny transformer is 14 times bigger; Llama 2 7B is seven hundred
# thousand times bigger than the MLP: 539 **giga**bytes a round, and six hours for one client to
# upload one float32 update. For large models communication, not computation, is what a round
# costs — the reason for compression here and for LoRA in notebook 09.
#
# The engine counts the same way. `History.bytes_down` and `History.bytes_up` record each round's
# traffic and `History.megabytes_sent` the running total; one round of the MLP on digits, split
# among the clients as in the rest of this notebook:

# %% tags=["nbval-check-output"]
split = fedlab.partition.dirichlet(digits.y_train, NUM_CLIENTS, alpha=ALPHA, seed=SEED)
mlp = fedlab.models.model_fn("mlp", 10)  # hashable: every run below shares one compiled kernel
algorithm = fedlab.FedAvg(local_epochs=LOCAL_EPOCHS, batch_size=BATCH_SIZE, client_lr=CLIENT_LR)
RUN = dict(clients_per_round=CLIENTS_PER_ROUND, seed=SEED, progress=False)
one_round = fedlab.simulate(algorithm, mlp, digits, split, num_rounds=1, **RUN)
down, up = int(one_round.bytes_down[0]), int(one_round.bytes_up[0])
assert down == up == 4 * num_params["MLP, FedModel (digits)"] * CLIENTS_PER_ROUND
print(f"client sizes {split.sizes.min()}-{split.sizes.max()} examples")
print(f"round 1: {down:,} bytes down, {up:,} up")


# %% [markdown]
# ## 2. One update through each codec
#
# The server cannot shrink the model it sends without changing what the clients train, but a
# client's update can be sent *approximately*. A codec in `fedlab.compression` turns an update
# into an `Encoded` record holding exactly the arrays that would travel, in the dtype they would
# travel in, and `decode` turns it back into float32 arrays:
#
# | codec | sends | bytes for n parameters |
# |---|---|---|
# | `Identity()` | float32 values | 4n |
# | `Float16()` | float16 values | 2n |
# | `StochasticQuantizer(bits=b)` | b-bit codes + a float32 scale per block of 256 | n·b/8 + 4n/256 |
# | `TopK(fraction)` | int32 indices + float32 values of the largest entries | 8·⌈fraction·n⌉ |
#
# A real update to work on: client 0 trains one round from the initial weights
# (`fedlab.steps.local_update`, as in notebook 01). `flat` joins a list of arrays into one
# vector.

# %% tags=["nbval-check-output"]
def flat(weights):
    return np.concatenate([np.ravel(w) for w in weights])


model, weights = fedlab.steps.initialize(mlp, digits.x_train, SEED)
x_0, y_0 = digits.x_train[split.client_indices[0]], digits.y_train[split.client_indices[0]]
delta = fedlab.steps.local_update(model, weights, x_0, y_0, algorithm, seed=SEED).delta
d = flat(delta)
print(f"n = {d.size}, ‖Δ‖ = {np.linalg.norm(d):.4f}, max |Δ_i| = {np.abs(d).max():.4f}")

# %% [markdown]
# Each codec on this update: bytes sent, the ratio to float32, and the relative error
# ‖decode(encode(Δ)) − Δ‖ / ‖Δ‖.

# %% tags=["nbval-check-output"]
CODECS = {
    "float32": compression.Identity(),
    "float16": compression.Float16(),
    "8-bit": compression.StochasticQuantizer(bits=8),
    "4-bit": compression.StochasticQuantizer(bits=4),
    "top-k 10 %": compression.TopK(0.10),
    "top-k 1 %": compression.TopK(0.01),
}
print(f"{'codec':<12}{'bytes':>8}{'ratio':>8}{'rel. error':>12}")
for name, codec in CODECS.items():
    enc = codec.encode(delta, seed=SEED)
    error = np.linalg.norm(flat(codec.decode(enc)) - d) / np.linalg.norm(d)
    print(f"{name:<12}{enc.num_bytes:>8,}{enc.num_bytes / (4 * d.size):>8.3f}{error:>12.4f}")

# %% [markdown]
# What travels is visible in the record. For 4 bits, two codes share a byte (4805 bytes for 9610
# codes) and each block of 256 coordinates sends one float32 scale (38 blocks):

# %% tags=["nbval-check-output"]
print(CODECS["4-bit"].encode(delta, seed=SEED))

# %% [markdown]
# Float16 is almost free (error 0.0002 for half the bytes); 8 bits cost about a quarter of
# float32 with a 2 % error. Then the errors grow large: 4 bits leave a 40 % error, top-k 10 % a
# 34 % one and top-k 1 % a 71 % one. Yet these errors are of two different kinds.
#
# **Top-k, scratch → package.** Top-k keeps the ⌈fraction·n⌉ entries of largest magnitude and
# zeroes the rest; by hand, and checked against `compression.TopK`:

# %%
k = int(np.ceil(0.01 * d.size))
keep = np.argsort(-np.abs(d), kind="stable")[:k]  # ties: the earlier entry wins
by_hand = np.zeros_like(d)
by_hand[keep] = d[keep]
top_1 = CODECS["top-k 1 %"]
np.testing.assert_allclose(flat(top_1.decode(top_1.encode(delta))), by_hand)

# %% [markdown]
# Top-k is deterministic: every time this update is sent, the same 97 entries arrive and the
# other 9513 never do. The decoded update is **biased** — on average it is not Δ.
#
# **Stochastic quantisation is unbiased.** `StochasticQuantizer` rounds each entry to one of the
# 2^b levels of a grid spanning [−m, m] (m the block's largest |Δ_i|), *up or down at random*, with
# the probabilities that make the expected value exactly Δ_i (QSGD, Alistarh et al. 2017). One
# message is noisy, but the noise averages out: decode the same update with many seeds and average
# — the error of the mean falls like 1/√(number of messages).

# %% tags=["nbval-check-output"]
four_bit = CODECS["4-bit"]
decoded = np.stack([flat(four_bit.decode(four_bit.encode(delta, seed=s))) for s in range(1000)])
for count in (1, 10, 100, 1000):
    error = np.linalg.norm(decoded[:count].mean(axis=0) - d) / np.linalg.norm(d)
    print(f"mean of {count:>4} messages: relative error {error:.3f}")

# %% [markdown]
# A tenfold increase in messages, a √10 ≈ 3.2-fold smaller error, down to 1.2 % after 1000. This
# is what happens in training too: the server averages K clients' updates, and the rounding noise
# of independent clients partly cancels, while top-k's missing entries are missing from every
# client's message.
#
# The codec also knows its own noise: `variance_bound(enc)` gives each entry's bound m²/s² on the
# variance (s = 2^b − 1 grid steps), and the squared error of one message stays under their sum:

# %% tags=["nbval-check-output"]
enc = four_bit.encode(delta, seed=SEED)
squared_error = np.sum((flat(four_bit.decode(enc)) - d) ** 2)
bound = flat(four_bit.variance_bound(enc)).sum()
print(f"‖q − Δ‖² = {squared_error:.4f}, bound Σ m²/s² = {bound:.4f}, ‖Δ‖² = {d @ d:.4f}")

# %% [markdown]
# ## 3. Accuracy against megabytes
#
# Now the real question: what do these errors do to training? `fedlab.simulate(...,
# compression=codec)` puts every client's update through the codec
# (`fedlab.steps.compress_update`, stage 3b of a round) before the server aggregates the decoded
# updates, and records the encoded size in `bytes_up`. The downlink stays float32.
# `compression.ErrorFeedback(codec)` adds **error feedback** (section 4); the engine keeps each
# client's residual from round to round.
#
# Eight settings, everything else equal — the same seed, so the same clients each round and the
# same batches (about 12 s):

# %%
top_10, top_1 = compression.TopK(0.10), compression.TopK(0.01)
SETTINGS = {
    "float32 (none)": None,
    "float16": compression.Float16(),
    "8-bit": compression.StochasticQuantizer(bits=8),
    "4-bit": compression.StochasticQuantizer(bits=4),
    "top-k 10 %": top_10,
    "top-k 10 % + EF": compression.ErrorFeedback(top_10),
    "top-k 1 %": top_1,
    "top-k 1 % + EF": compression.ErrorFeedback(top_1),
}
runs = {
    name: fedlab.simulate(algorithm, mlp, digits, split, NUM_ROUNDS, compression=codec, **RUN)
    for name, codec in SETTINGS.items()
}

# %% [markdown]
# Test accuracy three ways: against the round, against all megabytes sent (down + up,
# `fedlab.plot.plot_accuracy(..., x="megabytes")`), and against the uplink megabytes alone. Top-k
# with error feedback is drawn solid, without it dashed, in the same colour.

# %%
STYLES = {  # name: (colour, line style); top-k with and without EF share a colour
    "float32 (none)": ("C0", "-"),
    "float16": ("C1", "-"),
    "8-bit": ("C2", "-"),
    "4-bit": ("C3", "-"),
    "top-k 10 %": ("C4", "--"),
    "top-k 10 % + EF": ("C4", "-"),
    "top-k 1 %": ("C5", "--"),
    "top-k 1 % + EF": ("C5", "-"),
}
fig, axes = plt.subplots(1, 3, figsize=(14, 3.8), sharey=True, layout="constrained")
for name, history in runs.items():
    color, linestyle = STYLES[name]
    for ax, x in zip(axes[:2], ("round", "megabytes"), strict=True):
        fedlab.plot.plot_accuracy(history, ax=ax, label=name, legend=False, x=x)
        ax.lines[-1].set(color=color, linestyle=linestyle)
    up = np.cumsum(history.bytes_up) / 1e6
    axes[2].plot(up, history.test_accuracy, color=color, linestyle=linestyle, label=name)
axes[0].set(title="Accuracy per round", ylim=(0.1, 1))
axes[1].set_title("… against megabytes sent")
axes[2].set(xscale="log", xlabel="megabytes sent up (log scale)", title="… against uplink only")
axes[2].legend(fontsize="small", loc="lower right");


# %% [markdown]
# The numbers after the last round, and the megabytes (down + up) sent by the time the test
# accuracy first reached 90 %:

# %% tags=["nbval-check-output"]
def megabytes_to(history, accuracy):
    reached = np.flatnonzero(history.test_accuracy >= accuracy)
    return f"{history.megabytes_sent[reached[0]]:.2f}" if len(reached) else "—"


up_none = runs["float32 (none)"].bytes_up.sum() / 1e6
print(f"{'setting':<17}{'accuracy':>9}{'MB up':>8}{'÷ none':>8}{'MB total':>10}", end="")
print(f"{'down %':>8}{'MB to 90 %':>12}")
for name, h in runs.items():
    up, total = h.bytes_up.sum() / 1e6, h.megabytes_sent[-1]
    print(f"{name:<17}{h.test_accuracy[-1]:>9.3f}{up:>8.3f}{up / up_none:>8.3f}", end="")
    print(f"{total:>10.2f}{1 - up / total:>8.0%}{megabytes_to(h, 0.9):>12}")


# %% [markdown]
# What to notice:
#
# - **Float16, 8-bit and 4-bit cost nothing in accuracy here.** All reach about 0.95 after 30
#   rounds, like float32, and their curves against the round lie on top of each other — although
#   one 4-bit message had a 40 % error in section 2. Unbiased noise, averaged over 10 clients and
#   30 rounds, is small next to the noise SGD already has. 4 bits send 13 % of the uplink bytes.
# - **Top-k without error feedback pays.** 10 % ends at about 0.94, 1 % at about 0.86: top-k 1 %
#   learns far more slowly and never reaches 90 % in 30 rounds.
# - **Error feedback recovers most of it, for free.** With the same bytes (EF sends nothing
#   extra), top-k 10 % + EF ends at about 0.95 like float32, and top-k 1 % + EF at about 0.92 on
#   2 % of the uplink bytes.
# - **Against total megabytes the gains are at most 2×.** The downlink is still float32 and does
#   not shrink: once the uplink is compressed it is 67 % (float16) to 98 % (top-k 1 %) of the
#   traffic. In the middle panel no codec does better than halving the bill. In the right panel,
#   the uplink alone, top-k 1 % + EF is 50 times cheaper than float32. Which panel matters
#   depends on the network: mobile uplinks are often several times slower than downlinks.
# - **Rounds still cost.** To reach 90 % test accuracy, 4-bit and top-k 10 % + EF needed the
#   fewest megabytes in all (about 5 against about 8.5 for float32). Top-k 1 % + EF needed *more*
#   than float32 (about 9.4): its rounds are cheap, but it needs many more of them, each with a
#   full float32 downlink — and with the clients' computation and battery.

# %% [markdown]
# ## 4. Error feedback: nothing lost, only delayed
#
# With error feedback (Seide et al. 2014; Stich et al. 2018) a client does not throw away what the
# codec dropped. It keeps it in a **residual** e_k and adds it to its next update:
#
# $$\text{send } C(\Delta_k^t + e_k^t), \qquad e_k^{t+1} = \Delta_k^t + e_k^t - C(\Delta_k^t + e_k^t).$$
#
# An entry too small to make the top k this round grows in the residual until it does. Summed
# over rounds, what was sent plus the residual is exactly what the client wanted to send.
#
# The clearest case: a client with the *same* update Δ in every round. Without error feedback,
# top-k 1 % sends the same 97 entries every time; with it, the dropped entries take their turn.
# Below, `fedlab.steps.compress_update` — the engine's stage — sends Δ for 50 rounds each way,
# and we compare the sum of what arrived with the sum of what was meant (cosine similarity).

# %%
def send_repeatedly(codec, num_rounds=50):
    """Send ``delta`` num_rounds times; the cosine of Σ sent with Σ Δ after each round."""
    residual = codec.init(delta) if isinstance(codec, compression.ErrorFeedback) else []
    total, cosines = np.zeros_like(d), []
    for t in range(1, num_rounds + 1):
        sent, _, residual = fedlab.steps.compress_update(codec, delta, t, 0, SEED, residual)
        total += flat(sent)
        cosines.append(total @ d / (np.linalg.norm(total) * np.linalg.norm(d)))
    return np.array(cosines), total, residual


# %% tags=["nbval-check-output"]
plain, _, _ = send_repeatedly(top_1)
with_ef, total, residual = send_repeatedly(compression.ErrorFeedback(top_1))
np.testing.assert_allclose(total + flat(residual), 50 * d, rtol=1e-4, atol=1e-5)  # nothing lost
for t in (1, 5, 10, 25, 50):
    print(f"round {t:>2}: cosine {plain[t - 1]:.3f} without EF, {with_ef[t - 1]:.3f} with EF")

# %% [markdown]
# Without error feedback the cosine stays at 0.707 forever: the top 1 % of this update carries
# half of its squared norm (cos² = 0.5), and the other half is never sent. With error feedback it
# climbs to 0.973 after 50 rounds, and the identity Σ sent + residual = Σ Δ holds to float32
# precision: every entry is sent eventually.
#
# In training the updates change from round to round, and a client not selected keeps its residual
# until its next turn, but the effect is the same. The top-k 1 % runs of section 3, per round:

# %%
fig, ax = plt.subplots(figsize=(6, 3.6), layout="constrained")
for name in ("float32 (none)", "top-k 1 %", "top-k 1 % + EF"):
    fedlab.plot.plot_accuracy(runs[name], ax=ax, label=name, legend=False)
    ax.lines[-1].set(color=STYLES[name][0], linestyle=STYLES[name][1])
ax.legend(fontsize="small", loc="lower right");

# %% [markdown]
# The two top-k runs start identically: in round 1 every residual is zero, so both send the same
# entries. From a client's second turn on, the error-feedback run also sends what that client's
# earlier rounds left behind, and it pulls ahead (about 0.92 against 0.86 after 30 rounds). It
# still trails float32 (about 0.95): information that arrives late is computed at an older model,
# so error feedback delays part of each update.

# %% [markdown]
# ## Summary
#
# - **A round costs 4·n·K bytes down and 4·n·K up** with float32, whatever the data or the local
#   work: 0.77 MB for the digits MLP (9,610 parameters, K = 10), 539 GB for Llama 2 7B.
#   `History.bytes_down`, `bytes_up` and `megabytes_sent` record it.
# - **Codecs** (`fedlab.compression`) shrink the uplink: float16 to 50 %, 8-bit stochastic
#   quantisation to 25 %, 4-bit to 13 %, top-k 10 % and 1 % to 20 % and 2 % (indices cost as much as
#   values). `Encoded.num_bytes` is the real size of the arrays sent.
# - **Stochastic quantisation is unbiased**: a single 4-bit message had a 40 % error, the mean of
#   1000 only 1.2 %. Top-k is deterministic and **biased**: averaging does not help.
# - **On digits (30 rounds)** float16, 8- and 4-bit matched float32 (about 0.95); top-k 10 % and
#   1 % without error feedback lost accuracy (about 0.94, 0.86).
# - **Error feedback** keeps what top-k dropped and sends it later (Σ sent + residual = Σ Δ): top-k
#   10 % + EF matched float32, top-k 1 % + EF reached about 0.92 on 2 % of the uplink bytes.
# - **Once the uplink is compressed, the float32 downlink dominates** (67–98 % of the traffic):
#   compressing only the uplink can at most halve the total.
#
# ## Exercises
#
# Each exercise below has a cell for your answer, in code, and a **check** cell after it. Run the
# check: it prints ✓ and what it verified, or ✗ and the mistake it recognised, with a hint. The
# parts that ask you to explain have a cell for your answer in words.
#
# *Functions, classes and arguments that no cell above uses are named in full (`fedlab.…`):
# `help()` on one (or on its class) shows its documentation, and on the course website the name
# links to its entry in the API reference.*
#
# 1. **Rotate before quantising.** `compression.RandomRotation(compression.StochasticQuantizer(4))`
#    (see `fedlab.compression.RandomRotation`) spreads large entries over all coordinates before
#    quantising. Put `delta` through it as in section 2: how much smaller is the error, and how many
#    bytes does it send? Write the byte count as a function of n and explain it (hint: the Hadamard
#    transform needs a power-of-two length). Is it better than plain 8-bit?
# 2. **Fewer bits.** Measure one message of `StochasticQuantizer(bits=2)` and `bits=1`, and add
#    both to section 3, with and without `ErrorFeedback`. Why is the error of a single 2-bit
#    message larger than 100 % (hint: is 0 one of the levels)? Does training still work? Write
#    error feedback yourself and watch its residual: does `ErrorFeedback` help a quantiser, which
#    is already unbiased?
# 3. **The downlink.** Suppose the server also sent the global model in float16. Recompute the
#    "MB total" and "down %" columns of section 3's table by hand from `bytes_down` and `bytes_up`.
#    Why is compressing the downlink riskier than compressing an update (hint: what do clients
#    start their local training from)?
# 4. **Rounds or bytes?** Write top-k yourself. Top-k 1 % + EF reached about 0.92 in 30 rounds.
#    Run it for 60 rounds, and try `LOCAL_EPOCHS = 5`: more local work per round, the same bytes.
#    Which reaches 90 % with fewer megabytes, and with less computation
#    (`fedlab.History.client_gflops`)?
# 5. **What dominates at scale.** For Llama 2 7B with K = 10, compute the MB per round with 4-bit
#    uplink and float32 downlink, with top-k 1 % uplink, and then with only LoRA adapters of rank 8
#    sent both ways (`large_models.LLAMA_2_7B.lora_parameters(8)`; see
#    `fedlab.large_models.DecoderConfig.lora_parameters`). Notebook 09 takes this further.

# %%
from fedlab import exercises

# %% [markdown]
# ### Exercise 1 · Rotate before quantising
#
# **(a)** Put `delta` through `compression.RandomRotation(compression.StochasticQuantizer(4))`
# (`seed=SEED`) as in section 2: keep the bytes of its message in `rotated_size` and its relative
# error ‖decode(encode(Δ)) − Δ‖ / ‖Δ‖ in `rotated_error`. Print both beside plain 4-bit and 8-bit.

# %%
rotated_size = ...  # bytes of the rotated 4-bit message
rotated_error = ...  # its relative error
# BEGIN SOLUTION
rotated = compression.RandomRotation(compression.StochasticQuantizer(4))
COMPARED = {"4-bit": CODECS["4-bit"], "rotated 4-bit": rotated, "8-bit": CODECS["8-bit"]}
for name, codec in COMPARED.items():
    enc = codec.encode(delta, seed=SEED)
    error = np.linalg.norm(flat(codec.decode(enc)) - d) / np.linalg.norm(d)
    print(f"{name:<14}{enc.num_bytes:>7,} bytes, relative error {error:.4f}")
    if codec is rotated:
        rotated_size, rotated_error = enc.num_bytes, error
# END SOLUTION

# %% tags=["self-check"]
exercises.check_rotation(rotated_size, rotated_error, delta)

# %% [markdown]
# **(b)** Write `rotation_bytes(n, bits)`, the bytes the rotated quantiser sends for an update of
# n parameters, from what the codec does: it pads the update with zeros to d, the next power of
# two, rotates, and quantises all d coordinates (`bits`-bit codes, packed, and a float32 scale
# per block of 256).

# %%
def rotation_bytes(n, bits):
    """Bytes of RandomRotation(StochasticQuantizer(bits)) for an update of n parameters."""
    # BEGIN SOLUTION
    d = 1 << (n - 1).bit_length()  # the next power of two ≥ n
    return int(np.ceil(d * bits / 8)) + 4 * int(np.ceil(d / 256))
    # END SOLUTION


# %% tags=["self-check"]
exercises.check_rotated_bytes(rotation_bytes)
# BEGIN HIDDEN TESTS
exercises.check_rotated_bytes(rotation_bytes, seed=1)
# END HIDDEN TESTS

# %% [markdown]
# **(c)** How much smaller is the error, and where do the bytes come from? Is rotated 4-bit better
# than plain 8-bit?
#
# <!-- BEGIN SOLUTION -->
# **Model answer.** The rotation cuts one message's error from 0.396 to 0.127, about three
# times smaller: the largest entry of each block of 256 sets the block's scale m, and most
# entries are far smaller, so they fall between the levels of a coarse grid; after the rotation
# every coordinate is a mix of all of them, and m is close to the typical size. But the message
# grows from 4,957 to 8,448 bytes. The Hadamard transform needs a power-of-two length, so
# n = 9,610 is padded with zeros to d = 16,384 = 2¹⁴, and all d rotated coordinates are sent:
# 16,384 four-bit codes are 8,192 bytes, plus 64 blocks of 256 × a 4-byte scale = 256 bytes.
# Here the padding adds 70 % to the coordinates; with n just below a power of two it would cost
# almost nothing, with n just above one almost 100 %. It is not better than plain 8-bit: for 13 %
# fewer bytes (8,448 against 9,762) its error is six times larger (0.127 against 0.022). And
# section 3 showed that plain 4-bit already trains as well as float32 on digits, so the error of
# one message is not what limits accuracy here: fewer bytes matter more.
# <!-- END SOLUTION -->

# %% [markdown]
# ### Exercise 2 · Fewer bits
#
# **(a)** Measure one message of `StochasticQuantizer(bits=2)` and of `bits=1` on `delta`
# (`seed=SEED`), as in section 2: `low_bit_errors = {2: relative error, 1: relative error}`.

# %%
low_bit_errors = ...  # {bits: relative error of one message}
# BEGIN SOLUTION
low_bit_errors = {}
for bits in (2, 1):
    quantiser = compression.StochasticQuantizer(bits=bits)
    enc = quantiser.encode(delta, seed=SEED)
    low_bit_errors[bits] = np.linalg.norm(flat(quantiser.decode(enc)) - d) / np.linalg.norm(d)
    levels = np.linspace(-1, 1, quantiser.levels + 1)
    print(f"{bits}-bit: {enc.num_bytes:,} bytes, error {low_bit_errors[bits]:.2f}", end="")
    print(f", levels (× m): {np.round(levels, 2).tolist()}")
print(f"median |Δ_i| / max |Δ_i|: {np.median(np.abs(d)) / np.abs(d).max():.3f}")
# END SOLUTION

# %% tags=["self-check"]
exercises.check_low_bit_errors(low_bit_errors, delta)

# %% [markdown]
# **(b)** Write error feedback yourself: `error_feedback_step(compress, update, residual)` sends
# `compress(update + residual)` — `compress` maps a vector to what arrives — and returns what it
# sent and the new residual, what was left out (section 4's formula).

# %%
def error_feedback_step(compress, update, residual):
    """One round of error feedback: (what is sent, the new residual)."""
    # BEGIN SOLUTION
    corrected = update + residual
    sent = compress(corrected)
    return sent, corrected - sent
    # END SOLUTION


# %% tags=["self-check"]
exercises.check_error_feedback_step(error_feedback_step)
# BEGIN HIDDEN TESTS
exercises.check_error_feedback_step(error_feedback_step, seed=1)
# END HIDDEN TESTS

# %% [markdown]
# **(c)** As in section 4, send the same `d` for 20 rounds with your `error_feedback_step`, through
# 2-bit and through 1-bit stochastic quantisation (`seed=t` in round t). Record ‖e‖ / ‖Δ‖, the
# residual's size after each round, in `residual_growth = {2: [...], 1: [...]}`. `quantised`
# gives a `compress` function.

# %%
def quantised(bits, seed):
    """What arrives of a vector sent with `bits`-bit stochastic quantisation."""
    codec = compression.StochasticQuantizer(bits=bits)
    return lambda vector: flat(codec.decode(codec.encode([vector], seed=seed)))


# %%
residual_growth = ...  # {bits: [‖e‖ / ‖Δ‖ after each of 20 rounds]}
# BEGIN SOLUTION
residual_growth = {}
for bits in (2, 1):
    residual, sizes = np.zeros_like(d), []
    for t in range(1, 21):
        _, residual = error_feedback_step(quantised(bits, t), d, residual)
        sizes.append(np.linalg.norm(residual) / np.linalg.norm(d))
    residual_growth[bits] = sizes
    print(f"{bits}-bit: ‖e‖ / ‖Δ‖ after rounds 1, 5, 10, 20:", end=" ")
    print(", ".join(f"{sizes[t - 1]:.3g}" for t in (1, 5, 10, 20)))
# END SOLUTION

# %% tags=["self-check"]
exercises.check_residual_growth(residual_growth, delta)

# %% [markdown]
# **(d)** Run section 3 with each codec of `LOW_BITS` into `low_bit_runs` (same keys), and print
# each run's accuracy after the last round and its megabytes sent up, beside float32's and 4-bit's.

# %%
two_bit, one_bit = compression.StochasticQuantizer(bits=2), compression.StochasticQuantizer(bits=1)
LOW_BITS = {
    "2-bit": two_bit,
    "2-bit + EF": compression.ErrorFeedback(two_bit),
    "1-bit": one_bit,
}

# %%
low_bit_runs = ...  # {name: History}, section 3's run with each codec of LOW_BITS
# BEGIN SOLUTION
low_bit_runs = {
    name: fedlab.simulate(algorithm, mlp, digits, split, NUM_ROUNDS, compression=codec, **RUN)
    for name, codec in LOW_BITS.items()
}
compared = {name: runs[name] for name in ("float32 (none)", "4-bit")} | low_bit_runs
for name, h in compared.items():
    up = h.bytes_up.sum() / 1e6
    print(f"{name:<15} accuracy {h.test_accuracy[-1]:.3f}, {up:6.3f} MB up", end="")
    print(f", MB to 90 %: {megabytes_to(h, 0.9)}")
# END SOLUTION

# %% tags=["self-check"]
codecs = {name: codec.config() for name, codec in LOW_BITS.items()}
reference = runs["float32 (none)"]
exercises.check_runs(
    low_bit_runs, reference, name="low_bit_runs", what="section 3's run", compression=codecs
)

# %% [markdown]
# **(e)** Now 1-bit with error feedback, `compression.ErrorFeedback(one_bit)`. fedlab stops a run
# whose training loss explodes, with a `fedlab.DivergenceError` that names the round and the
# clients. Run it, catch the error (`try: ... except fedlab.DivergenceError as error: ...`) and
# keep it in `one_bit_ef_error`; print it.

# %%
one_bit_ef_error = ...  # the fedlab.DivergenceError the 1-bit + EF run raised
# BEGIN SOLUTION
one_bit_ef = compression.ErrorFeedback(one_bit)
try:
    fedlab.simulate(algorithm, mlp, digits, split, NUM_ROUNDS, compression=one_bit_ef, **RUN)
except fedlab.DivergenceError as error:
    one_bit_ef_error = error
    print(error)
    print("accuracy of the rounds before:", np.round(error.history.test_accuracy, 3))
# END SOLUTION

# %% tags=["self-check"]
exercises.check_exploded(one_bit_ef_error, NUM_ROUNDS)

# %% [markdown]
# **(f)** Why is the error of one 2-bit message larger than 100 %? Does training still work? Does
# error feedback help a quantiser, which is already unbiased?
#
# <!-- BEGIN SOLUTION -->
# **Model answer.** With b bits the grid has 2^b levels spread evenly over [−m, m], and for
# b = 2 they are −m, −m/3, m/3 and m (for b = 1 only ±m): 0 is not a level. Most entries of an
# update are tiny next to the block's largest (the median |Δ_i| is 0.005 of the largest here), so
# almost every entry is sent as ±m/3 (or ±m) at random — unbiased, but with an error about m/3,
# dozens of times the entry itself. Summed over 9,610 entries that is 2.13 times ‖Δ‖ for 2 bits
# and 6.52 times for 1 bit. Training still works: 2-bit ends at 0.944 and 1-bit at 0.939, against
# 0.947 for float32, and both reach 90 % with fewer megabytes than any codec of section 3 (4.10
# and 4.38 MB against 4.77 for 4-bit and 8.46 for float32), sending 0.77 and 0.41 MB up in all.
# The noise is unbiased and averages out over ten clients and many SGD-like rounds. Error
# feedback does not help a quantiser: 2-bit + EF ends at the same 0.944 (and reaches 90 % a little
# later), and 1-bit + EF breaks training altogether: its accuracy falls to chance (0.10 by round
# 12), then its loss explodes and fedlab stops the run in round 14. The residual shows why:
# error feedback assumes a codec that leaves out less than it is given, as top-k does (1 % left an
# error of 71 %). With 2 bits the residual stays about twice ‖Δ‖; with 1 bit every entry is sent
# as ±m, so an entry's residual can be almost 2m, which doubles the next round's scale m: the
# residual grows 81,100-fold in 20 rounds, and what the server receives grows with it. An unbiased
# quantiser has nothing systematic to send later; its errors already average out.
# <!-- END SOLUTION -->

# %% [markdown]
# ### Exercise 3 · The downlink
#
# **(a)** Suppose the server sent the global model in float16: half the bytes of `bytes_down`,
# the uplink as it was. For every run of section 3, compute the megabytes sent down and up over
# the 30 rounds in `mb_total_16` and the fraction of them that went down in `down_share_16`
# (dicts keyed like `runs`), and print them beside the float32 downlink's.

# %%
mb_total_16 = ...  # {setting: MB down + up with a float16 downlink}
down_share_16 = ...  # {setting: fraction of those bytes sent down}
# BEGIN SOLUTION
mb_total_16, down_share_16 = {}, {}
print(f"{'setting':<17}{'MB total':>10}{'down %':>8}{'MB total (f16)':>16}{'down % (f16)':>14}")
for name, h in runs.items():
    down, up = h.bytes_down.sum() / 1e6, h.bytes_up.sum() / 1e6
    mb_total_16[name] = down / 2 + up
    down_share_16[name] = (down / 2) / mb_total_16[name]
    print(f"{name:<17}{down + up:>10.2f}{down / (down + up):>8.0%}", end="")
    print(f"{mb_total_16[name]:>16.2f}{down_share_16[name]:>14.0%}")
# END SOLUTION

# %% tags=["self-check"]
exercises.check_float16_downlink(mb_total_16, down_share_16, runs)

# %% [markdown]
# **(b)** Why is compressing the downlink riskier than compressing an update?
#
# <!-- BEGIN SOLUTION -->
# **Model answer.** Halving the downlink takes float32's run from 23.06 to 17.30 MB and makes
# the downlink 33 % of the traffic instead of 50 %; 4-bit goes from 13.02 to 7.25 MB (79 % down)
# and top-k 1 % from 11.76 to 6.00 MB, still 96 % down. It is riskier because every client
# starts its local training from the model it receives. An error in an update is one client's
# error in one step, and the server averages it with the others, so unbiased errors cancel. An
# error in the downlink is in the starting point of every client of the round: their gradients
# are computed at the wrong weights, the update Δ_k = w_k − ŵ is measured from a model the server
# does not hold, and with the same compressed model for all it does not average out. The model's
# weights are also not like an update: all of them matter and few are small, so top-k on the
# weights would zero 99 % of the model and coarse quantisation moves every weight. Float16 (error
# 0.0002) is safe; anything coarser should compress the *change* since the client's last copy,
# which only works for clients that kept one — rarely the case with a few of many clients per
# round.
# <!-- END SOLUTION -->

# %% [markdown]
# ### Exercise 4 · Rounds or bytes?
#
# **(a)** Write top-k yourself: `top_k(vector, fraction)` returns a new vector in which the
# k = ⌈fraction · n⌉ entries of largest magnitude keep their values and every other entry is 0
# (what `compression.TopK(fraction)` delivers). Section 2 did it for 1 %.

# %%
def top_k(vector, fraction):
    """`vector` with all but its ⌈fraction·n⌉ largest-magnitude entries set to 0 (a new array)."""
    # BEGIN SOLUTION
    k = int(np.ceil(fraction * vector.size))
    keep = np.argsort(-np.abs(vector), kind="stable")[:k]
    sparse = np.zeros_like(vector)
    sparse[keep] = vector[keep]
    return sparse
    # END SOLUTION


# %% tags=["self-check"]
exercises.check_top_k(top_k)
# BEGIN HIDDEN TESTS
exercises.check_top_k(top_k, seed=1)
# END HIDDEN TESTS

# %% [markdown]
# **(b)** Run section 3's "top-k 1 % + EF" again, once for 60 rounds and once with
# `LOCAL_EPOCHS = 5` (30 rounds), into `longer_runs` with keys `"60 rounds"` and
# `"5 local epochs"`.

# %%
longer_runs = ...  # {"60 rounds": History, "5 local epochs": History}
# BEGIN SOLUTION
top_1_ef = compression.ErrorFeedback(top_1)
five_epochs = fedlab.FedAvg(local_epochs=5, batch_size=BATCH_SIZE, client_lr=CLIENT_LR)
longer_runs = {
    "60 rounds": fedlab.simulate(
        algorithm, mlp, digits, split, 2 * NUM_ROUNDS, compression=top_1_ef, **RUN
    ),
    "5 local epochs": fedlab.simulate(
        five_epochs, mlp, digits, split, NUM_ROUNDS, compression=top_1_ef, **RUN
    ),
}
for name, h in longer_runs.items():
    print(f"{name}: accuracy {h.test_accuracy[-1]:.3f} after {len(h)} rounds")
# END SOLUTION

# %% tags=["self-check"]
longer = {
    "num_rounds": {"60 rounds": 2 * NUM_ROUNDS, "5 local epochs": NUM_ROUNDS},
    "local_epochs": {"60 rounds": LOCAL_EPOCHS, "5 local epochs": 5},
}
reference = runs["top-k 1 % + EF"]
exercises.check_runs(longer_runs, reference, name="longer_runs", what="section 3's run", **longer)

# %% [markdown]
# **(c)** Write `cost_to(history, accuracy)`: what a run has spent by the first round in which
# its test accuracy reaches `accuracy` — the megabytes sent so far (`megabytes_sent`, down + up)
# and the clients' training GFLOPs so far (`fedlab.History.client_gflops` gives them per round) —
# or `(np.nan, np.nan)` if it never gets there.

# %%
def cost_to(history, accuracy):
    """(megabytes, GFLOPs) spent by the first round that reaches `accuracy`, else (nan, nan)."""
    # BEGIN SOLUTION
    reached = np.flatnonzero(history.test_accuracy >= accuracy)
    if len(reached) == 0:
        return np.nan, np.nan
    i = reached[0]
    return history.megabytes_sent[i], history.client_gflops[: i + 1].sum()
    # END SOLUTION


# %% tags=["self-check"]
exercises.check_cost_to(cost_to)
# BEGIN HIDDEN TESTS
exercises.check_cost_to(cost_to, seed=1)
# END HIDDEN TESTS

# %% [markdown]
# **(d)** Which of `longer_runs` reaches 90 % with fewer megabytes, and which with less
# computation? Answer with their keys.

# %%
fewer_megabytes = ...  # "60 rounds" or "5 local epochs"
less_computation = ...  # "60 rounds" or "5 local epochs"
# BEGIN SOLUTION
for name, h in {"30 rounds": runs["top-k 1 % + EF"], **longer_runs}.items():
    megabytes, gflops = cost_to(h, 0.9)
    print(f"{name:<15} to 90 %: {megabytes:5.2f} MB, {gflops:6.2f} GFLOPs")
costs = {name: cost_to(h, 0.9) for name, h in longer_runs.items()}
fewer_megabytes = min(costs, key=lambda name: costs[name][0])
less_computation = min(costs, key=lambda name: costs[name][1])
# END SOLUTION

# %% tags=["self-check"]
exercises.check_rounds_or_bytes(fewer_megabytes, less_computation, longer_runs)

# %% [markdown]
# **(e)** Rounds or bytes: what does each run trade, and which would you pick on a phone?
#
# <!-- BEGIN SOLUTION -->
# **Model answer.** The 60-round run is the 30-round run continued (same seed, same first
# 30 rounds), so it reaches 90 % in the same round, after 9.41 MB and 1.98 GFLOPs, and ends at
# 0.939 after 60 rounds instead of 0.917 after 30. With five local epochs each round does 2.5
# times the training for the same bytes, so 90 % comes after far fewer rounds: 5.49 MB instead of
# 9.41 (42 % less), but 2.86 GFLOPs instead of 1.98 (44 % more computation). Five local epochs
# reach 90 % with fewer megabytes, two epochs with less computation: a round's bytes are fixed
# (a full float32 downlink each time), so fewer rounds save bytes, while more local work costs
# compute and battery — and, on more skewed clients, more client drift (notebook 04); here it
# still ends at 0.931. On a phone with a slow, metered uplink, more local epochs; on a phone where
# battery or the CPU is the limit, more rounds of less work.
# <!-- END SOLUTION -->

# %% [markdown]
# ### Exercise 5 · What dominates at scale
#
# **(a)** For Llama 2 7B and K = `CLIENTS_PER_ROUND` clients, compute the megabytes (10⁶ bytes)
# of one round: `mb_4bit` with a float32 downlink and a 4-bit uplink (section 2's codec: blocks of
# 256), `mb_topk` with a float32 downlink and a top-k 1 % uplink, and `mb_lora` when only the
# rank-8 LoRA adapters travel, float32, both ways.

# %%
mb_4bit = ...  # MB per round: float32 down, 4-bit up
mb_topk = ...  # MB per round: float32 down, top-k 1 % up
mb_lora = ...  # MB per round: rank-8 LoRA adapters, float32, down and up
# BEGIN SOLUTION
n = large_models.LLAMA_2_7B.num_parameters()
lora = large_models.LLAMA_2_7B.lora_parameters(8)
down = 4 * n  # float32 model, per client
up_4bit = int(np.ceil(n * 4 / 8)) + 4 * int(np.ceil(n / 256))  # codes + a scale per block
up_topk = 8 * top_1.num_kept(n)  # an int32 index and a float32 value per kept entry
mb_4bit = CLIENTS_PER_ROUND * (down + up_4bit) / 1e6
mb_topk = CLIENTS_PER_ROUND * (down + up_topk) / 1e6
mb_lora = CLIENTS_PER_ROUND * 2 * 4 * lora / 1e6
for name, mb in {"4-bit up": mb_4bit, "top-k 1 % up": mb_topk, "LoRA r = 8": mb_lora}.items():
    print(f"{name:<13}{mb:>12,.1f} MB per round")
print(f"downlink share with 4-bit up: {down / (down + up_4bit):.0%}; LoRA: {lora:,} parameters")
# END SOLUTION

# %% tags=["self-check"]
llama = large_models.LLAMA_2_7B
exercises.check_scale_megabytes(
    mb_4bit,
    mb_topk,
    mb_lora,
    num_parameters=llama.num_parameters(),
    lora_parameters=llama.lora_parameters(8),
    clients_per_round=CLIENTS_PER_ROUND,
)

# %% [markdown]
# **(b)** What dominates the bill of a 7B model's round once the uplink is compressed, and what
# does sending only LoRA adapters change?
#
# <!-- BEGIN SOLUTION -->
# **Model answer.** The downlink. A 4-bit uplink brings a round from 539,073 MB (float32 both
# ways) to 304,282 MB, but 89 % of that is the float32 model sent down to 10 clients
# (269,537 MB); top-k 1 % brings it to 274,927 MB, 98 % down. Even an uplink of zero bytes would
# leave 270 GB per round: compressing updates alone can at most halve the bill. Sending only the
# rank-8 LoRA adapters (4,194,304 parameters, 0.06 % of the model) shrinks both directions:
# 335.5 MB per round, about 900 times less than the 4-bit round and 1,600 times less than
# float32. The frozen base model travels once (or is already on the device), and the rounds carry
# only the small part that is trained. Notebook 09 trains such adapters federatedly.
# <!-- END SOLUTION -->
