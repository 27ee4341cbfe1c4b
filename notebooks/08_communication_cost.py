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
# *Functions, classes and arguments that no cell above uses are named in full (`fedlab.…`):
# `help()` on one (or on its class) shows its documentation, and on the course website the name
# links to its entry in the API reference.*
#
# 1. **Rotate before quantising.** `compression.RandomRotation(compression.StochasticQuantizer(4))`
#    (see `fedlab.compression.RandomRotation`) spreads large entries over all coordinates before
#    quantising. Put `delta` through it as in section 2: how much smaller is the error, and how many
#    bytes does it send? Explain the bytes (hint: the Hadamard transform needs a power-of-two
#    length). Is it better than plain 8-bit?
# 2. **Fewer bits.** Add `StochasticQuantizer(bits=2)` and `bits=1` to section 3. Why is the error
#    of a single 2-bit message larger than 100 % (hint: is 0 one of the levels)? Does training
#    still work? Does `ErrorFeedback` help a quantiser, which is already unbiased?
# 3. **The downlink.** Suppose the server also sent the global model in float16. Recompute the
#    "MB total" and "down %" columns of section 3's table by hand from `bytes_down` and `bytes_up`.
#    Why is compressing the downlink riskier than compressing an update (hint: what do clients
#    start their local training from)?
# 4. **Rounds or bytes?** Top-k 1 % + EF reached about 0.92 in 30 rounds. Run it for 60 rounds,
#    and try `LOCAL_EPOCHS = 5`: more local work per round, the same bytes. Which reaches 90 %
#    with fewer megabytes, and with less computation?
# 5. **What dominates at scale.** For Llama 2 7B with K = 10, compute the MB per round with 4-bit
#    uplink and float32 downlink, and then with only LoRA adapters of rank 8 sent both ways
#    (`large_models.LLAMA_2_7B.lora_parameters(8)`; see
#    `fedlab.large_models.DecoderConfig.lora_parameters`). Notebook 09 takes this further.
