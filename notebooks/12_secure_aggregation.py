# %% [markdown]
# # 12 · Secure aggregation
#
# *Purpose: let the server learn the sum of the clients' updates and nothing else — masks that
# cancel, keys agreed in the open, secret shares for clients that drop out — and see what it
# costs and what it still leaves exposed.*
#
# **Goals**
# - Mask three clients' numbers by hand so that each masked number looks random but the masks
#   cancel in the sum; then check `fedlab.secure_aggregation.mask_breakdown` does the same.
# - See why two clients can share a mask seed without ever talking (X25519 + HKDF), and why
#   dropouts need self masks and Shamir secret sharing (any t shares rebuild a secret, t − 1 say
#   nothing).
# - Run the full protocol of Bonawitz et al. (2017) with `secure_sum`: the exact quantised sum,
#   dropouts, and the server's refusal below the threshold.
# - Show that what the server sees (the masked vectors) is unrelated to each update.
# - Run FedAvg through it (`simulate(..., secure_aggregation=SecureAggregation(...))`): the same
#   accuracy as plain FedAvg up to the quantisation error, with 10 % and 30 % of clients dropping.
# - Measure its cost per client and for the server as the number of clients n grows.
# - See what it does **not** protect against: the sum itself can leak — combine with DP.
#
# **You will need:** [08 · Communication cost](08_communication_cost.ipynb) (quantisation, bytes
# per round), [10 · What updates leak](10_what_updates_leak.ipynb) (rebuilding digits from a
# gradient) and [11 · Differential privacy](11_differential_privacy.ipynb) (clipping and noise);
# about 40 s to run; CPU is fine.

# %% [markdown]
# ## Setup
#
# `import fedlab` comes **first**: it quietens TensorFlow's start-up log lines before TensorFlow
# loads. The protocol lives in `fedlab.secure_aggregation` (imported as `sa`); the key-exchange
# primitive comes from `cryptography`, the library the module uses.

# %%
import sys

FEDLAB = "fedlab-edu @ git+https://github.com/fedlab-edu/fedlab"  # what Colab installs
if "google.colab" in sys.modules:  # elsewhere `python3 dev.py lab` has installed fedlab already
    import subprocess

    subprocess.run([sys.executable, "-m", "pip", "install", "-q", FEDLAB], check=True)

# %%
import fedlab  # first: it quietens TensorFlow's start-up log lines
from fedlab import leakage, privacy
from fedlab import secure_aggregation as sa

from itertools import combinations

import matplotlib.pyplot as plt
import numpy as np
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

print(", ".join(f"{name} {version}" for name, version in fedlab.versions().items()))

# %% [markdown]
# The run sizes: four 10-round FedAvg runs on digits with 10 clients (a second or two each), and
# one secure round each for 5 to 50 clients to measure the cost.

# %%
NUM_CLIENTS = 10
NUM_ROUNDS = 10
CLIENT_LR = 0.1
LOCAL_EPOCHS = 1
BATCH_SIZE = 16
SEED = 0

# %% [markdown]
# Secure aggregation's settings: the coordinate range and the quantisation bits, and the sizes
# for the cost measurements of section 7.

# %%
CLIP = 1.0  # secure aggregation's coordinate range [-CLIP, CLIP]
BITS = 16  # quantisation bits per coordinate
OVERHEAD_CLIENTS = (5, 10, 20, 50)  # n for the cost measurements
VECTOR_LENGTH = 1000  # parameters per update in the cost measurements

# %% [markdown]
# ## 1. The goal: Σ Δ_k, not any Δ_k
#
# In FedAvg the server needs exactly one thing from a round: the (weighted) **sum** of the
# clients' updates Δ_k. Everything else it receives — each single Δ_k — is surplus, and
# notebook 10 showed how much a single update gives away (a digit rebuilt from one gradient).
# Secure aggregation is a protocol between the clients and the server whose output is Σ_k Δ_k
# and which reveals *nothing else* about the Δ_k to the server, even though every message goes
# through it. No trusted third party, no special hardware: only masks that cancel.

# %% [markdown]
# ## 2. Three clients, by hand
#
# Work with integers mod 2^k (here k = 8: numbers 0 … 255, wrapping around). Every pair of
# clients u < v agrees on a random mask r_uv; u **adds** it, v **subtracts** it:
#
#     y_0 = x_0 + r_01 + r_02
#     y_1 = x_1 − r_01 + r_12
#     y_2 = x_2 − r_02 − r_12          (all mod 256)
#
# Each y_u alone is x_u plus a uniformly random number mod 256 — itself uniformly random, whatever
# x_u is (a one-time pad). Their sum is x_0 + x_1 + x_2: every r_uv appears once with + and once
# with −.

# %%
MOD = 2**8
x = {0: np.array([10, 20, 30, 40]), 1: np.array([1, 2, 3, 4]), 2: np.array([100, 0, 100, 0])}
rng = np.random.default_rng(SEED)
r = {pair: rng.integers(0, MOD, size=4) for pair in [(0, 1), (0, 2), (1, 2)]}

# %% [markdown]
# Three clients' numbers and one random mask per pair. Now each client masks its x; notice that
# every r appears once with + and once with −:

# %% tags=["nbval-check-output"]
y = {
    0: (x[0] + r[0, 1] + r[0, 2]) % MOD,
    1: (x[1] - r[0, 1] + r[1, 2]) % MOD,
    2: (x[2] - r[0, 2] - r[1, 2]) % MOD,
}
for u in x:
    print(f"client {u}: x = {x[u]}  ->  y = {y[u]}")
print("Σ y mod 256 =", sum(y.values()) % MOD, "  Σ x =", sum(x.values()))

# %% [markdown]
# The server sees only the y's: client 2's `[100, 0, 100, 0]` became four unremarkable numbers,
# yet the sum is exact. Working mod 2^k (not with real numbers) is what makes the masking perfect:
# a real-valued mask would have to be huge to hide x_u, and its size would still leak something.
#
# `sa.mask_breakdown` does the same with the protocol's real machinery (section 3): pairwise
# masks from agreed keys and a PRG, and one more mask per client, the **self mask** PRG(b_u), whose
# use we meet in section 3. Scratch → package: rebuild every y_u from its masks by hand and compare.

# %%
demo = sa.mask_breakdown([x[0], x[1], x[2]], modulus_bits=8, seed=SEED)
p, b = demo.pairwise_masks, demo.self_masks
by_hand = {
    0: (x[0] + b[0] + p[0, 1] + p[0, 2]) % MOD,
    1: (x[1] + b[1] - p[0, 1] + p[1, 2]) % MOD,
    2: (x[2] + b[2] - p[0, 2] - p[1, 2]) % MOD,
}

# %% [markdown]
# The package's masked vectors must match these by hand, element for element, and removing the
# self masks from Σ y must leave Σ x:

# %% tags=["nbval-check-output"]
for u in x:
    np.testing.assert_array_equal(demo.masked[u], by_hand[u])
print("y_0 =", demo.masked[0], "  Σ y =", demo.masked_sum())
print("Σ y − Σ PRG(b_u) =", demo.unmasked_sum())
np.testing.assert_array_equal(demo.unmasked_sum(), sum(x.values()))

# %% [markdown]
# The pairwise masks cancel in Σ y, the self masks do not: the server must learn Σ_u PRG(b_u)
# to finish — and only the sum of them, never a single b_u, while that client's y_u counts.

# %% [markdown]
# ## 3. Agreeing on masks, and surviving dropouts
#
# **Key agreement.** Clients cannot talk to each other directly; everything goes through the
# server. Yet u and v must share a secret mask seed s_uv that the server does not know.
# Diffie–Hellman key agreement does exactly this: each client makes a key pair and publishes only
# the public half; u combines *its* private key with v's public key, v combines its private key
# with u's public key, and both get the same shared secret (X25519), which HKDF-SHA256 turns into a
# 32-byte seed. The server relays the public keys and learns nothing from them. A PRG (ChaCha20)
# then stretches the 32-byte seed into a mask as long as the model.

# %% tags=["nbval-check-output"]
key_u = X25519PrivateKey.from_private_bytes(bytes(range(32)))  # u's secret
key_v = X25519PrivateKey.from_private_bytes(bytes(range(100, 132)))  # v's secret
public_u = key_u.public_key().public_bytes_raw()  # what goes through the server
public_v = key_v.public_key().public_bytes_raw()

# %% [markdown]
# Only `public_u` and `public_v` travel. Each side combines its own private key with the other's
# public key — notice that both arrive at the same seed, and so the same mask:

# %% tags=["nbval-check-output"]
seed_at_u = sa.agree(key_u, public_v, sa.MASK_INFO)
seed_at_v = sa.agree(key_v, public_u, sa.MASK_INFO)
print("same seed at both ends:", seed_at_u == seed_at_v, "  seed starts", seed_at_u[:6].hex())
print("same 5 mask values:", sa.prg(seed_at_u, 5, k=20), sa.prg(seed_at_v, 5, k=20))

# %% [markdown]
# **Dropouts.** Phones drop out mid-round. If client 2 agreed masks with 0 and 1 and then never
# sends y_2, the sum y_0 + y_1 = x_0 + x_1 + r_02 − r_12 is garbage: the server must remove r_02
# and r_12, i.e. learn client 2's mask key. So, before masking, every client splits its secret
# key into **Shamir shares** and gives one (encrypted) to each other client; if it drops, the
# survivors hand their shares of *its* key to the server, which rebuilds it and removes its masks.
#
# But what if client 2 was only slow, and its y_2 arrives after the server has rebuilt its key?
# The server could then strip every pairwise mask off y_2 and read x_2. That is what the **self
# mask** PRG(b_u) is for: b_u is shared too, and each survivor gives the server, for each client,
# either its share of b_u (if that client's y arrived) or its share of the mask key (if it did
# not) — never both. A y_u is never left with no mask on it.
#
# **Shamir secret sharing** with small numbers, first by hand over the prime 97: hide the secret
# 42 as f(0) of a random polynomial of degree t − 1 = 2, and hand out f(1), …, f(5).

# %% tags=["nbval-check-output"]
P, SECRET, T = 97, 42, 3
coefficients = [SECRET, 5, 17]  # f(x) = 42 + 5x + 17x² mod 97; 5 and 17 drawn at random
shares = [(i, sum(c * i**j for j, c in enumerate(coefficients)) % P) for i in range(1, 6)]
print("shares:", shares)


# %% [markdown]
# Five numbers that look nothing like 42. To get f(0) back from any t of them, write Lagrange
# interpolation plainly:

# %%
def rebuild(points, p=P):
    """f(0) by Lagrange interpolation: Σ_i y_i Π_{j≠i} x_j / (x_j − x_i) mod p."""
    total = 0
    for xi, yi in points:
        others = [xj for xj, _ in points if xj != xi]
        num, den = np.prod(others), np.prod([xj - xi for xj in others])
        total += yi * int(num) * pow(int(den), -1, p)
    return total % p


# %% tags=["nbval-check-output"]
print("every 3 of them give:", {rebuild(list(c)) for c in combinations(shares, T)})

# %% [markdown]
# Any 3 shares give 42. Two shares say **nothing**: for every candidate secret s there is exactly
# one polynomial of degree 2 through (0, s) and the two shares, so each of the 97 values is
# equally consistent with what two colluders hold:

# %% tags=["nbval-check-output"]
(x1, y1), (x2, y2) = shares[:2]
consistent = 0
for s in range(P):  # does some f(x) = s + a x + c x² pass through both shares?
    for a in range(P):
        c = (y1 - s - a * x1) * pow(x1 * x1, -1, P) % P
        consistent += (s + a * x2 + c * x2 * x2) % P == y2
print(f"{consistent} of {P} candidate secrets fit two shares (one polynomial each)")

# %% [markdown]
# The package does the same over the prime 2^521 − 1, big enough for a 32-byte key as one number.
# A share is a 66-byte number; with too few shares (calling with a too-small `threshold`)
# interpolation returns an unrelated field element.

# %% tags=["nbval-check-output"]
big = sa.shamir_split(SECRET, threshold=T, num_shares=5, rng=np.random.default_rng(SEED))
print("share 1 has", big[0][1].bit_length(), "bits")
print("any 3 of 5 give:", {sa.shamir_reconstruct(list(c), T) for c in combinations(big, T)})
print(
    "2 shares, pretending t = 2, give a",
    sa.shamir_reconstruct(big[:2], 2).bit_length(),
    "bit number",
)

# %% [markdown]
# The threshold t also protects the clients from the server: it must be more than n/2, so the
# server cannot get t shares of b_u from one group and t shares of u's mask key from another.

# %% [markdown] tags=["class-break"]
# ---
# **Class break · end of part 1.** Part 1 (sections 1–3) showed why the server should learn only
# the sum, masked three clients' numbers by hand so that the masks cancel, and built the two tools
# the protocol needs: masks agreed through the server (X25519 + HKDF) and Shamir shares for the
# clients that drop out. Part 2 (sections 4–6) runs the whole protocol with `secure_sum`, looks at
# what the server sees, and trains FedAvg through it. Coming back to the notebook in a new
# session? Part 2 needs only the *Setup* cells (the imports, the run sizes and secure
# aggregation's settings): run those, or every cell above this one (*Run ▸ Run All Above Selected
# Cell*, about 10 s, nearly all of it importing TensorFlow).

# %% [markdown]
# ## 4. The whole protocol: `secure_sum`
#
# `sa.secure_sum` runs the four rounds of Bonawitz et al. (2017) with explicit client and server
# state (the module docstring lists them): **AdvertiseKeys** (two public keys each),
# **ShareKeys** (Shamir shares of b_u and of the mask key, encrypted with AES-GCM for each
# recipient and routed by the server), **MaskedInputCollection** (the y_u) and **Unmasking**
# (shares back, the server rebuilds and removes what it must).
#
# It works on integers, so each float update is first **quantised**: a value in [−clip, clip]
# becomes one of 2^bits − 1 levels, a step of 2·clip / (2^bits − 2) apart — an odd number of
# levels, so that 0 is one of them. With 2 bits and clip 1 the levels are −1, 0, 1:

# %% tags=["nbval-check-output"]
levels = sa.quantize([-1.0, -0.5, 0.0, 0.2, 1.0], clip=1.0, bits=2)
print("levels:", levels, "  back:", np.round(sa.dequantize(levels, 1, clip=1.0, bits=2), 3))
print("error bound for a sum of 3 at 2 bits:", round(sa.quantization_error_bound(3, 1.0, 2), 4))
print(f"at {BITS} bits: {sa.quantization_error_bound(3, CLIP, BITS):.2e}")

# %% [markdown]
# Each coordinate is off by at most half a step, so a sum of m clients is within m · step / 2 of
# the float sum (`quantization_error_bound`). Notice 0.0: it is a level, so an unchanged weight is
# sent exactly. With 2^bits levels (one more) 0 would sit halfway between two and always land on
# the same side — the worst case, in the same direction for every client: a small *bias*, not
# noise that averages out. At 16 bits half a step is 1.5e-5 per client and coordinate.
#
# The sum is taken mod 2^k with k = bits + ⌈log2 n⌉ bits, enough that n values below 2^bits never
# wrap. Five clients with random updates:

# %% tags=["nbval-check-output"]
rng = np.random.default_rng(SEED)
updates = {u: rng.uniform(-0.1, 0.1, size=6) for u in range(5)}
result = sa.secure_sum(updates, clip=CLIP, bits=BITS, seed=SEED)
exact = sum(sa.quantize(v, CLIP, BITS) for v in updates.values())
np.testing.assert_array_equal(result.sum_int, exact)  # the integer sum is exact

# %% [markdown]
# The assertion passed: the integer sum is exactly the sum of the quantised updates. The float sum
# differs from the true one only by quantisation, within the bound:

# %% tags=["nbval-check-output"]
error = np.abs(result.sum - sum(updates.values())).max()
print(f"summed {result.summed_ids}, t = {result.threshold}, k = {result.modulus_bits} bits")
print(f"float sum {np.round(sum(updates.values()), 4)}")
print(f"secure    {np.round(result.sum, 4)}   max error {error:.1e} <= {result.error_bound:.1e}")

# %% [markdown]
# Now dropouts. Client 3 drops **before** sending y_3 (its update is lost; the
# survivors' shares of its mask key clean up the masks it left in the others' y); client 4 sends
# y_4 and drops **before unmasking** (its update still counts: the others hold shares of b_4):

# %% tags=["nbval-check-output"]
late = sa.secure_sum(updates, clip=CLIP, bits=BITS, dropouts={3}, late_dropouts={4}, seed=SEED)
plain = updates[0] + updates[1] + updates[2] + updates[4]
print(f"summed {late.summed_ids}, dropped {late.dropped_ids}, late {late.late_dropped_ids}")
print(f"max error against x_0 + x_1 + x_2 + x_4: {np.abs(late.sum - plain).max():.1e}")

# %% [markdown]
# With n = 5 the threshold is t = 3, so at most 2 clients may drop. Three, and the server has
# too few shares to unmask anything — it refuses, and the round is lost:

# %% tags=["nbval-check-output"]
try:
    sa.secure_sum(updates, clip=CLIP, bits=BITS, dropouts={2, 3, 4}, seed=SEED)
except sa.SecureAggregationAborted as error:
    print("SecureAggregationAborted:", error)

# %% [markdown]
# ## 5. What the server sees
#
# Take one realistic update — 2,000 coordinates, small and bell-shaped like a gradient step — and
# look at everything the server receives from that client: the masked vector y_u. Is there
# anything of x_u in it?

# %%
rng = np.random.default_rng(SEED)
updates = {u: np.clip(rng.normal(0.0, 0.02, size=2000), -CLIP, CLIP) for u in range(4)}
seen = sa.secure_sum(updates, clip=CLIP, bits=BITS, seed=SEED)
seen_again = sa.secure_sum(updates, clip=CLIP, bits=BITS, seed=SEED + 1)  # next round, same x
x_0 = sa.quantize(updates[0], CLIP, BITS).astype(float)
y_0, y_0_again = (r.masked[0].astype(float) / 2**r.modulus_bits for r in (seen, seen_again))

# %% [markdown]
# `y_0` is client 0's masked vector scaled to [0, 1), from two rounds with the same update. Side
# by side, the update and what the server gets of it:

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 3.2), layout="constrained")
axes[0].hist(updates[0], bins=40, color="C0")
axes[0].set(title="client 0's update x_0", xlabel="value")
axes[1].hist(y_0, bins=20, color="C1")
axes[1].set(title="what the server gets: y_0 / 2^k", xlabel="value");

# %% [markdown]
# The update is a narrow bell around 0; the masked vector is flat over the whole range — uniform,
# as a one-time pad should be. Numbers: the share of y_0 in each tenth of the range (uniform:
# 0.1 each), its correlation with x_0, and with y_0 from a second round in which client 0 sends
# **the same** update (fresh keys and seeds, a different masked vector):

# %% tags=["nbval-check-output"]
counts, _ = np.histogram(y_0, bins=10, range=(0, 1))
print("share per tenth:", np.round(counts / len(y_0), 2))
print(f"corr(y_0, x_0) = {np.corrcoef(y_0, x_0)[0, 1]:+.3f}")
print(f"corr(y_0, y_0 next round, same x_0) = {np.corrcoef(y_0, y_0_again)[0, 1]:+.3f}")
print(f"same masked vector twice: {np.array_equal(y_0, y_0_again)}")
print(f"and yet the sum is right: max error {np.abs(seen.sum - sum(updates.values())).max():.1e}")

# %% [markdown]
# Correlations of ±0.02 are what two independent samples of 2,000 give by chance (±1/√2000 ≈
# 0.022 is one standard deviation). Strictly, y_u is not "uncorrelated" but **independent** of
# x_u: PRG(b_u) is uniform mod 2^k, and a uniform number plus anything is uniform. The server
# could learn x_u only by breaking X25519 or ChaCha20, or by collecting t shares of b_u and the
# mask key together, which the threshold (t > n/2) and honest clients prevent.

# %% [markdown]
# ## 6. FedAvg through secure aggregation
#
# `fedlab.simulate(..., secure_aggregation=sa.SecureAggregation(...))` computes every round's
# weighted mean with `secure_sum` (`SecureAggregation.sum` is the summation stage of the aggregator):
# client k sends (n_k / n_max) · Δ_k, flattened, clipped to [−clip, clip] and quantised; the server
# unmasks the sum and divides by Σ n_k / n_max over the clients whose input arrived. With
# `dropout=0.1` a seeded tenth of the clients drop each round after sharing their keys — their
# training is lost, the round goes on without them.
#
# First, **one** round against plain FedAvg from the same start: the global weights may differ
# by at most the quantisation bound divided by Σ n_k / n_max.

# %%
digits = fedlab.load_digits()
split = fedlab.partition.iid(digits.y_train, NUM_CLIENTS, seed=SEED)
mlp = fedlab.models.model_fn("mlp", 10)  # hashable: every run below shares one compiled kernel
algorithm = fedlab.FedAvg(client_lr=CLIENT_LR, local_epochs=LOCAL_EPOCHS, batch_size=BATCH_SIZE)
secure = sa.SecureAggregation(clip=CLIP, bits=BITS)

# %% [markdown]
# Two simulations from the same seed, so the same start, the same clients and the same batches —
# one plain, one secure — and one round of each:

# %%
one = {
    name: fedlab.Simulation(algorithm, mlp, digits, split, seed=SEED, secure_aggregation=setting)
    for name, setting in (("plain", None), ("secure", secure))
}
start = [w.copy() for w in one["plain"].weights]
records = {name: sim.step() for name, sim in one.items()}

# %%
sizes = np.array([len(ix) for ix in split.client_indices], float)
bound = sa.quantization_error_bound(NUM_CLIENTS, CLIP, BITS) / (sizes / sizes.max()).sum()
gaps = sa.weight_gaps(one["plain"].weights, one["secure"].weights, start)
assert gaps.max_gap <= bound + 1e-7  # + float32 rounding of the weights

# %% [markdown]
# `sa.weight_gaps` compares the two models weight by weight, separating the weights plain FedAvg
# did not move at all (its update was exactly 0) from the rest:

# %% tags=["nbval-check-output", "last-digit-tolerance"]
print(f"largest weight difference after one round: {gaps.max_gap:.1e}  (bound {bound:.2e})")
print(
    f"{gaps.num_unchanged:,} weights plain FedAvg left alone: "
    f"mean gap {gaps.mean_gap_unchanged:.1e}"
)
print(f"the other {gaps.num_changed:,}: mean gap {gaps.mean_gap_changed:.1e}")
print(
    f"accuracy: plain {records['plain'].test_accuracy:.2f}, "
    f"secure {records['secure'].test_accuracy:.2f}"
)

# %% [markdown]
# Within the bound, and far below it on average. The weights whose update was exactly zero
# (first-layer weights of pixels that are blank in every image these clients hold) do not move at
# all: 0 is a quantisation level (section 4). Everywhere else the clients' rounding errors partly
# cancel.
#
# Now ten rounds each: plain FedAvg, secure aggregation without dropouts, and with 10 % and 30 %
# of the clients dropping every round (about a second each).

# %%
SETTINGS = {
    "plain FedAvg": None,
    "secure": secure,
    "secure, dropout 0.1": sa.SecureAggregation(clip=CLIP, bits=BITS, dropout=0.1),
    "secure, dropout 0.3": sa.SecureAggregation(clip=CLIP, bits=BITS, dropout=0.3),
}

# %% [markdown]
# Everything else — data, split, model, seed — is the same in all four runs, so any difference
# comes from the secure aggregation setting alone:

# %%
runs = {
    name: fedlab.simulate(
        algorithm,
        mlp,
        digits,
        split,
        NUM_ROUNDS,
        seed=SEED,
        progress=False,
        secure_aggregation=setting,
    )
    for name, setting in SETTINGS.items()
}

# %% tags=["nbval-check-output"]
print(sa.runs_table(runs, baseline="plain FedAvg"))
print("dropped, dropout 0.3:", [r.secure_dropped for r in runs["secure, dropout 0.3"].rounds[:4]])

# %%
fig, ax = plt.subplots(figsize=(6, 3.5), layout="constrained")
for (name, h), style in zip(runs.items(), ["-", "--", "-.", ":"], strict=True):
    ax.plot(h.round, h.test_accuracy, style, label=name)
ax.set(xlabel="round", ylabel="test accuracy", title="FedAvg on digits, 10 clients")
ax.legend(fontsize="small");

# %% [markdown]
# What to notice:
#
# - **Secure aggregation without dropouts is FedAvg**: over ten rounds its accuracy never differs
#   from plain FedAvg's by more than 0.003 — one test digit of 360 — and ends equal. The only
#   difference is quantisation (at most 1.5e-5 per weight a round, checked above) and clipping at
#   ±1, which these updates never reach.
# - **Dropouts cost training, not correctness**: with 10 % or 30 % dropping, each round averages
#   fewer updates (the "summed/round" column), so the curve is a little different — but no round
#   was aborted: with t = 6 of 10, up to four clients may drop.
# - **Bytes**: plain FedAvg sends 10 × 9,610 float32 = 384.4 kB up a round. Secure aggregation
#   sends *less* here, because the masked vectors are 20-bit integers (16 bits + ⌈log2 10⌉), not
#   32-bit floats; keys, encrypted shares and the unmasking shares add 64 + 9 × 160 + 10 × 70 =
#   2,204 bytes a client to its 24,025-byte vector. The fair comparison is
#   16-bit quantisation without secure aggregation (notebook 08): 192.2 kB, so the protocol costs
#   about 36 % more. Dropped clients still sent keys and shares, so they count too.

# %% [markdown] tags=["class-break"]
# ---
# **Class break · end of part 2.** Part 2 (sections 4–6) ran the four rounds of Bonawitz et al.
# with `secure_sum` — an exact integer sum, dropouts survived, a refusal below the threshold —
# showed that each masked vector the server sees is uniform noise, and trained FedAvg through it
# to plain FedAvg's accuracy. Part 3 (sections 7–8) measures what the protocol costs as n grows and
# what it does not protect against, and ends with the exercises. Coming back to the notebook in a
# new session? Sections 7 and 8 need only the *Setup* cells and the first code cell of section 6
# (`digits`, `split`, `mlp`, …); the exercises also use the results of sections 5 and 6, so for
# them run every cell above this one first (*Run ▸ Run All Above Selected Cell*, about 15 s).

# %% [markdown]
# ## 7. What it costs as n grows
#
# `sa.measure_overhead` runs one secure round on random updates of 1,000 parameters for each n and
# reports payload bytes and computation time, per client and for the server — once with everyone
# present and once with 30 % dropping before sending y (about 3 s).

# %%
rows = sa.measure_overhead(OVERHEAD_CLIENTS, vector_length=VECTOR_LENGTH, seed=SEED)
rows_drop = sa.measure_overhead(
    OVERHEAD_CLIENTS, vector_length=VECTOR_LENGTH, dropout_fraction=0.3, seed=SEED
)

# %% tags=["nbval-check-output"]
print(sa.overhead_table(rows, rows_drop))

# %%
n = np.array(OVERHEAD_CLIENTS)
fig, ax = plt.subplots(figsize=(5.5, 3.4), layout="constrained")
ax.plot(n, [r.client_bytes_sent / 1e3 for r in rows], "o-", label="client sends")
ax.plot(n, [r.client_bytes_received / 1e3 for r in rows], "s-", label="client receives")
ax.plot(n, [r.plain_bytes / 1e3 for r in rows], "k:", label="plain float32 update")
ax.set(xlabel="clients n", ylabel="kB per client", title="Bytes per client, m = 1,000")
ax.legend(fontsize="small");

# %% [markdown]
# Bytes per client climb in a straight line with n while the plain update stays flat. The
# computation, for one client and for the server (with and without dropouts):

# %%
fig, ax = plt.subplots(figsize=(5.5, 3.4), layout="constrained")
ax.plot(n, [r.client_seconds * 1e3 for r in rows], "o-", label="one client")
ax.plot(n, [r.server_seconds * 1e3 for r in rows], "s-", label="server")
ax.plot(n, [r.server_seconds * 1e3 for r in rows_drop], "s--", label="server, 30 % dropped")
ax.set(xlabel="clients n", ylabel="ms (this machine)", title="Computation per round")
ax.legend(fontsize="small");

# %% [markdown]
# What to notice (the times vary from run to run; the shapes do not):
#
# - **Per client, bytes grow linearly in n**: it sends one 160-byte encrypted share pair to every
#   other client and receives as many, plus the public-key list, and returns a 70-byte share per
#   client at unmasking. The masked vector (m · k bits)
#   grows only by a bit per doubling of n. For a real model (m in the millions) the vector
#   dominates and the overhead is small; for many clients and a small model the shares do
#   (at n = 50, m = 1,000: 3.5 × a float32 update).
# - **Per client, computation grows linearly in n** too: one key agreement and one PRG expansion
#   of length m per other client, plus n Shamir splits.
# - **The server's work grows fastest, and dropouts make it worse**: it interpolates n secrets
#   from t ≈ n/2 shares each (≈ n² work), and for every dropped client it must regenerate that
#   client's pairwise mask with every survivor — (dropped × survivors) PRG expansions of length m,
#   growing like n² · m. This is the protocol's known weak point; later work (Bell et al. 2020,
#   SecAgg+) lets each client mask with only O(log n) neighbours instead of all n − 1.

# %% [markdown]
# ## 8. What secure aggregation does not protect against
#
# Secure aggregation hides each update **inside the sum**. It says nothing about what the sum
# itself reveals. Three ways the sum leaks, with real gradients from notebook 10's setting: three
# clients, each holding one digit, send the gradient of their loss at the current weights.

# %%
model = fedlab.models.build_model(mlp, digits.x_train[:1], SEED)
weights = [v.numpy() for v in model.trainable_variables]
shapes = [w.shape for w in weights]

# %% [markdown]
# The model at its starting weights. Each of three clients holds one digit and computes its
# gradient there; the server will only ever see them through `secure_sum`:

# %% tags=["nbval-check-output"]
picked = [0, 1, 2]
grads = [
    leakage.shared_update(model, weights, digits.x_train[i : i + 1], digits.y_train[i : i + 1])
    for i in picked
]
flat = [np.concatenate([g.ravel() for g in grad]) for grad in grads]
g_clip = float(max(np.abs(f).max() for f in flat))  # every coordinate fits in [-g_clip, g_clip]
print("labels:", digits.y_train[picked], f"  {len(flat[0]):,} values each, clip {g_clip:.3f}")


# %% [markdown]
# A small helper: cut a flat vector back into the model's weight shapes (`sa.unflatten`), run
# notebook 10's attack (`leakage.invert_gradient`, iDLG labels, L-BFGS) on it, and score it
# against the true digits.

# %%
def mse(error):
    """The pixel MSE to print: under 1e-4 the digit is rebuilt perfectly to the eye, and the exact
    value depends on where the optimiser stopped, which varies by machine (notebook 10)."""
    return "< 1e-4" if error < 1e-4 else f"{error:.0e}"


def invert(vector, rows, seed=SEED):
    gradient = sa.unflatten(vector, shapes)
    found = leakage.invert_gradient(weights, gradient, num_examples=len(rows), seed=seed)
    x_true, y_true = digits.x_train[rows], digits.y_train[rows]
    order, errors = leakage.match_reconstructions(x_true, found.x)
    labels = found.labels[order]
    return leakage.Reconstruction(
        x_true, y_true, found.x[order], labels, errors, [], leakage.Defence()
    )


# %% [markdown]
# **(a) A small sum is a batch.** The securely aggregated sum of the three gradients is three
# times the gradient of a batch of three examples, and notebook 10 rebuilt batches of up to 4
# digits with different labels almost exactly. The server does not learn *who* held which digit —
# but it sees all three.

# %% tags=["nbval-check-output"]
total = sa.secure_sum(flat, clip=g_clip, bits=24, seed=SEED)
from_sum = invert(total.sum / 3, picked)
print("labels found:", from_sum.label_found, f"  pixel MSE {mse(from_sum.error)} (guessing: 0.07)")

# %% [markdown]
# **(b) Two clients.** With n = 2, each client knows its own update and the sum: subtracting
# gives the other's update exactly (up to quantisation). A curious server that controls one
# fake client — or simply picks a round with one real client and its own dummies — can do the same.
#
# **(c) Differencing across rounds.** The server picks the clients. It aggregates {0, 1, 2} in one
# round and {0, 1} in the next (with the same weights, as when a round is repeated) and subtracts:
# client 2's gradient, alone — and from it, client 2's digit.

# %% tags=["nbval-check-output", "last-digit-tolerance"]
round_a = sa.secure_sum(flat, clip=g_clip, bits=24, seed=SEED + 1)
round_b = sa.secure_sum(flat[:2], clip=g_clip, bits=24, seed=SEED + 2)
difference = round_a.sum - round_b.sum
print(f"max |difference − client 2's gradient| = {np.abs(difference - flat[2]).max():.1e}")
alone = invert(difference, [2])
print("client 2's label:", alone.label_found, f"  pixel MSE {mse(alone.error)}")

# %%
leakage.plot_reconstructions(
    [from_sum, alone], titles=["(a) from the sum of 3", "(c) differenced"]
);

# %% [markdown]
# **Combine with differential privacy.** The remedy is notebook 11's: bound each client's
# influence (clip its update to norm S) and add Gaussian noise of standard deviation z·S to the
# **sum**. DP's guarantee holds for anything computed from the noisy sums — differences across
# rounds included — and secure aggregation is what lets the noise go on the sum rather than on each
# update. Without a trusted server, each client adds its part of the noise before masking
# (*distributed* DP: n independent draws of standard deviation z·S/√n add up to z·S), and the
# server never sees a noise-free quantity. With z = 1, the differencing attack now gives noise:

# %%
S, Z = 1.0, 1.0  # clip norm and noise multiplier (notebook 11)
rng = np.random.default_rng(SEED)
round_a = sa.distributed_dp_sum(flat, S, Z, rng, bits=BITS, seed=SEED + 1)
round_b = sa.distributed_dp_sum(flat[:2], S, Z, rng, bits=BITS, seed=SEED + 2)
difference = round_a - round_b

# %% [markdown]
# `sa.distributed_dp_sum` does each client's part — clip to norm S, add noise of standard deviation
# z·S/√n — and then runs `secure_sum`. Compare the size of client 2's clipped gradient with the
# noise left in the difference, and attack the difference:

# %% tags=["nbval-check-output", "last-digit-tolerance"]
signal = flat[2] * min(1.0, S / np.linalg.norm(flat[2]))
print(
    f"‖client 2's clipped gradient‖ = {np.linalg.norm(signal):.2f}, "
    f"‖noise in the difference‖ = {np.linalg.norm(difference - signal):.0f}"
)
print(f"attack on the difference: pixel MSE {invert(difference, [2]).error:.2f} (guessing: 0.07)")

# %% [markdown]
# The digit is gone (worse than guessing the average digit): the noise in the difference is over a
# hundred times the signal's norm. On
# the sum of a *thousand* clients the same noise is small next to the signal, which is why DP-FedAvg
# needs many clients per round (notebook 11).
#
# **Distributed DP in a run.** `fedlab.simulate` combines the two: `DPFedAvg` with
# `secure_aggregation=...` has every client clip its update to norm S, the clipped updates are
# summed by the protocol, and the server adds the noise N(0, (z·S)²) to the unmasked sum
# (`fedlab.aggregators.GaussianSum` through `SecureAggregation`). The server learns the sum of the
# clipped updates but no single update; what it releases — the model — carries the noise. We chose
# the noise on the sum rather than as clients' shares: with shares, every client that drops takes
# its share of the noise with it, so ε would have to be accounted for the fewest survivors the
# threshold allows. Here the mechanism is central DP's on the same sum, so ε is the same, and the
# model differs from central DP-FedAvg's only by quantisation. Two runs with the same seed:

# %%
dp = privacy.DPFedAvg(noise_multiplier=Z, clip_norm=S, client_lr=CLIENT_LR, batch_size=BATCH_SIZE)
settings = {"central": None, "distributed": sa.SecureAggregation(clip=S, bits=24)}
DP_ROUNDS, DP_CLIENTS = 5, NUM_CLIENTS // 2  # 5 rounds of about 5 clients (Poisson sampling)
dp_runs = {}
for name, setting in settings.items():
    sim = fedlab.Simulation(dp, mlp, digits, split, DP_CLIENTS, SEED, secure_aggregation=setting)
    dp_runs[name] = sim.run(DP_ROUNDS, progress=False)

# %% tags=["nbval-check-output"]
central, distributed = dp_runs.values()
same_clients = [r.clients for r in central.rounds] == [r.clients for r in distributed.rounds]
same_epsilon = list(central.series("epsilon")) == list(distributed.series("epsilon"))
print("same clients and the same ε in every round:", same_clients and same_epsilon)
gap = np.abs(central.test_loss - distributed.test_loss).max()
print("test losses within 0.001:", bool(gap < 1e-3))

# %%
print(f"ε after 5 rounds: {central.rounds[-1].epsilon:.2f}; largest test-loss gap {gap:.0e}")

# %% [markdown]
# Secure aggregation also does not protect against: a **malicious** server that lies about who
# dropped out, to unmask one client (Bonawitz et al.'s active version adds signatures and a
# consistency round; this simulation is the honest-but-curious one), **poisoned** updates (the
# server cannot inspect what it sums, so it cannot filter outliers — robust aggregation and secure
# aggregation pull in opposite directions), and anything the **final model** memorises.

# %% [markdown]
# ## Summary
#
# - **Pairwise masks cancel**: u adds PRG(s_uv), v subtracts it, mod 2^k; each masked vector is
#   uniform (a one-time pad), the sum is exact. Two clients agree on s_uv through the server with
#   X25519 + HKDF, without the server learning it.
# - **Dropouts**: Shamir shares (any t rebuild, t − 1 say nothing) let the survivors rebuild a
#   dropped client's mask key; a self mask b_u, shared too, stops the server from unmasking a late
#   arrival. t > n/2, and with fewer than t clients left the server refuses (`SecureAggregationAborted`).
# - **Exact up to quantisation**: the integer sum is exact; the float sum is within
#   m · step / 2 (0 is a level, so unchanged weights stay exact). FedAvg
#   through `SecureAggregation` stayed within one test digit (0.003) of plain FedAvg over 10 rounds; with
#   10 % and 30 % dropouts it simply averaged fewer clients.
# - **What the server sees**: a flat histogram, correlation ~0 with the update, a different vector
#   each round for the same update.
# - **Cost**: per client, bytes and work grow linearly in n (shares and masks for every other
#   client); the server's work grows like n², and dropouts add (dropped × survivors) mask
#   regenerations. For large models the masked vector dominates the bytes.
# - **Not protected**: the sum itself — a sum of three digits' gradients is a batch the attack
#   inverts, two clients reveal each other, differencing rounds isolates one client. Clip and add
#   noise to the sum (DP, notebook 11); secure aggregation is what makes noise on the sum enough.
#
# ## Exercises
#
# *Functions, classes and arguments that no cell above uses are named in full (`fedlab.…`):
# `help()` on one (or on its class) shows its documentation, and on the course website the name
# links to its entry in the API reference.*
#
# Each exercise below has a cell for your answer, in code, and a **check** cell after it. Run the
# check: it prints ✓ and what it verified, or ✗ and the mistake it recognised, with a hint. The
# parts that ask you to explain have a cell for your answer in words. Every run reuses section
# 6's `algorithm`, `mlp`, `digits` and `split`, and changes only what the exercise says.
#
# 1. **Bits.** Write the quantiser and its inverse, then rerun section 6 with `bits=8` and
#    `bits=4` in `SecureAggregation`. When does accuracy start to suffer? Compare the error bound
#    with the typical size of an update (`np.abs(...)` of a delta). Why does fedlab use
#    2^bits − 1 levels rather than 2^bits: what would happen to the zeros with a level on either
#    side of 0 instead of at it?
# 2. **Clip.** Set `clip=0.01`: what share of the coordinates is clipped now (the History's
#    `clipped_fraction`, one number a round, from each round's
#    `fedlab.secure_aggregation.SecureRound`), and what does it do to accuracy? Why is clipping
#    coordinates different from DP's clipping of the whole norm?
# 3. **Dropouts and the threshold.** Write a client's masking and the server's removal of a
#    dropped client's masks. Then, with 10 clients of which 15 % drop every round, run
#    `fedlab.secure_aggregation.SecureAggregation(clip=CLIP, bits=BITS, dropout=0.15,
#    threshold=0.5)` and again with `threshold=0.9`. How many rounds abort (`r.secure_aborted`
#    for `r` in `history.rounds`; see `fedlab.history.RoundRecord.secure_aborted`)? What does a
#    higher threshold buy the clients, and what does it cost?
# 4. **The server's bill.** Extend section 7 to n = 100 with `dropout_fraction` 0, 0.1 and 0.3
#    and plot the server's time against n on log–log axes. What slope do you read off? Which
#    phase (`secure_sum(...).server_seconds`) takes the server longest, and why does it grow
#    fastest?
# 5. **Differencing with dropouts.** The server can also *declare* a client dropped. Run
#    `secure_sum` on section 5's updates again, with `dropouts={2}`; what does the difference
#    from section 5's sum reveal? Why is a client that truly dropped not at risk, and what does
#    the active version of the protocol add to stop a server that lies?

# %%
from fedlab import exercises

# %% [markdown]
# ### Exercise 1 · Bits
#
# **(a)** Write the quantiser a client applies before masking (section 4): for each value of `x`
# (all in [−clip, clip]), the number q of the nearest of the 2^bits − 1 levels q · step − clip,
# step = 2·clip / (2^bits − 2). (`sa.quantize` does it; write it yourself.)

# %%
def quantize_levels(x, clip, bits):
    """The level number q (0 … 2^bits − 2) of the level q · step − clip nearest to each value."""
    # BEGIN SOLUTION
    step = 2 * clip / (2**bits - 2)
    return np.rint((np.asarray(x) + clip) / step).astype(np.int64)
    # END SOLUTION


# %% tags=["self-check"]
exercises.check_quantize_levels(quantize_levels)
# BEGIN HIDDEN TESTS
exercises.check_quantize_levels(quantize_levels, seed=1)
# END HIDDEN TESTS

# %% [markdown]
# **(b)** The server's side: after unmasking it holds the integer sum of `num_clients` clients'
# levels (a `uint64` array, like `result.sum_int` in section 4). Turn it back into the float sum
# those levels stand for.

# %%
def dequantize_sum(q_sum, num_clients, clip, bits):
    """The float sum that q_sum, the sum of num_clients clients' levels, stands for."""
    # BEGIN SOLUTION
    step = 2 * clip / (2**bits - 2)
    return q_sum.astype(np.float64) * step - num_clients * clip
    # END SOLUTION


# %% tags=["self-check"]
exercises.check_dequantize_sum(dequantize_sum)
# BEGIN HIDDEN TESTS
exercises.check_dequantize_sum(dequantize_sum, seed=1)
# END HIDDEN TESTS

# %% [markdown]
# **(c)** Rerun section 6's `"secure"` run with `bits=8` and with `bits=4` — change nothing else —
# into `bits_runs`, keyed by the number of bits. Print them beside section 6's plain and secure
# runs with `sa.runs_table`.

# %%
bits_runs = ...  # {8: History, 4: History}: section 6's "secure" run with fewer bits
# BEGIN SOLUTION
bits_runs = {
    b: fedlab.simulate(
        algorithm,
        mlp,
        digits,
        split,
        NUM_ROUNDS,
        seed=SEED,
        progress=False,
        secure_aggregation=sa.SecureAggregation(clip=CLIP, bits=b),
    )
    for b in (8, 4)
}
by_bits = {"plain FedAvg": runs["plain FedAvg"], f"{BITS} bits": runs["secure"]}
by_bits.update({f"{b} bits": history for b, history in bits_runs.items()})
print(sa.runs_table(by_bits, baseline="plain FedAvg"))
# END SOLUTION

# %% tags=["self-check"]
secure_run = 'section 6\'s "secure" run'
exercises.check_secure_runs(
    bits_runs, runs["secure"], name="bits_runs", what=secure_run, bits={8: 8, 4: 4}
)

# %% [markdown]
# **(d)** Compare the error with an update. Compute `mean_error`: for 16, 8 and 4 bits, the
# largest error quantisation can cause in one coordinate of the aggregated mean update
# (section 6's `bound`), as a dict keyed by bits; and `update_size`: the median |Δ| over every
# weight of plain FedAvg's first-round update (`one["plain"].weights` minus `start`).

# %%
mean_error = ...  # {bits: error bound of one coordinate of the mean update}, for 16, 8 and 4
update_size = ...  # the median |Δ| of plain FedAvg's first-round update
# BEGIN SOLUTION
weight = (sizes / sizes.max()).sum()
mean_error = {b: sa.quantization_error_bound(NUM_CLIENTS, CLIP, b) / weight for b in (16, 8, 4)}
pairs = zip(one["plain"].weights, start, strict=True)
delta = np.concatenate([(after - before).ravel() for after, before in pairs])
update_size = float(np.median(np.abs(delta)))
print(f"|Δ|: median {update_size:.1e}, largest {np.abs(delta).max():.1e}")
for b, error in mean_error.items():
    below = np.mean(np.abs(delta) < error)
    print(f"{b:2d} bits: error ≤ {error:.1e}, above {below:.0%} of the |Δ|")
# END SOLUTION

# %% tags=["self-check"]
exercises.check_bits_error(
    mean_error,
    update_size,
    sizes=sizes,
    clip=CLIP,
    plain_weights=one["plain"].weights,
    start=start,
)

# %% [markdown]
# **(e)** When does accuracy start to suffer, and how does that fit the numbers of (d)? Why does
# fedlab use 2^bits − 1 levels rather than 2^bits: what would happen to the zeros with a level on
# either side of 0 instead of at it?
#
# <!-- BEGIN SOLUTION -->
# **Model answer.** At 8 bits accuracy hardly changes (0.886 after ten
# rounds against 0.889, never more than 0.008 from plain FedAvg); at 4 bits the model never
# moves: its accuracy stays at the starting model's 0.056 in every round. The numbers of (d) say
# why. A typical coordinate of the mean update is 1.1e-3 and the largest 4.1e-2. At 16 bits the
# error bound, 1.5e-5, is far below almost every step. At 8 bits it is 3.9e-3, above 75 % of the
# steps: small steps are rounded to 0 or to one level, but the large ones — which carry most of
# the learning — get through, and the clients' rounding errors are not all at their worst, so
# training goes on (try `bits=6`: the first rounds fall behind by up to 0.30). At 4 bits half a
# step is 0.071 per client, more than the largest step of all: every coordinate of every client
# rounds to the level of 0, every client sends exactly 0, and the sum is exactly zero. So accuracy
# starts to suffer somewhere between 8 and 6 bits, when half a step passes the size of the
# informative steps. With 2^bits levels, step = 2·clip / (2^bits − 1) and 0 lies exactly halfway
# between two levels (at 4 bits, between −0.067 and +0.067); rounding is deterministic, so every
# 0 goes the same way, in every client, every round. The 1,237 weights that plain FedAvg does not
# move at all (section 6) — and every step smaller than half a step — would move by half a step
# each round, all in the same direction: a bias that grows with the rounds instead of noise that
# averages out (at 4 bits 0.067 a round, 0.67 after ten). With 2^bits − 1 levels, 0 is a level
# and an unchanged weight is sent exactly.
# <!-- END SOLUTION -->

# %% [markdown]
# ### Exercise 2 · Clip
#
# **(a)** Rerun section 6's `"secure"` run with `clip=0.01` into `clip_run`, and print it beside
# section 6's plain and secure runs.

# %%
clip_run = ...  # section 6's "secure" run with clip=0.01
# BEGIN SOLUTION
clip_run = fedlab.simulate(
    algorithm,
    mlp,
    digits,
    split,
    NUM_ROUNDS,
    seed=SEED,
    progress=False,
    secure_aggregation=sa.SecureAggregation(clip=0.01, bits=BITS),
)
by_clip = {"plain FedAvg": runs["plain FedAvg"], "clip 1": runs["secure"], "clip 0.01": clip_run}
print(sa.runs_table(by_clip, baseline="plain FedAvg"))
for name, history in by_clip.items():
    print(f"{name:>12}: accuracy per round {np.round(history.test_accuracy, 2)}")
# END SOLUTION

# %% tags=["self-check"]
exercises.check_secure_runs(clip_run, runs["secure"], name="clip_run", what=secure_run, clip=0.01)

# %% [markdown]
# **(b)** `clipped_share`: the share of the coordinates sent that the clip cut, averaged over
# the rounds (`clip_run.clipped_fraction` has one share a round).

# %%
clipped_share = ...  # the mean over the rounds of the share of coordinates clipped
# BEGIN SOLUTION
clipped_share = float(clip_run.clipped_fraction.mean())
print("clipped per round:", np.round(clip_run.clipped_fraction, 3), f" mean {clipped_share:.3f}")
# END SOLUTION

# %% tags=["self-check"]
exercises.check_clipped_share(clipped_share, clip_run)

# %% [markdown]
# **(c)** What does the clip do to accuracy? Why is clipping each coordinate different from DP's
# clipping of the whole update's norm (notebook 11)?
#
# <!-- BEGIN SOLUTION -->
# **Model answer.** The clip cut 5.7 % of the coordinates on average, 7.5 % in round 1
# falling to 3.2 % in round 10 as the updates shrink. Accuracy starts slower — 0.31 after round 1
# against 0.48, 0.68 after round 2 against 0.77 (the largest gap, 0.17) — and catches up: 0.883
# after ten rounds against 0.889. The coordinates cut are the largest ones, the steps that carry
# most of the learning, so early rounds, when the steps are largest, lose most. (With clip = 1
# nothing was cut: the largest step is 0.04.) Clipping each coordinate to [−c, c] changes the
# update's *direction*: large coordinates are flattened, small ones pass. DP's clipping
# multiplies the whole update by min(1, S / ‖Δ‖): the direction is kept, only the length is
# capped, and the cap ‖Δ_k‖ ≤ S is exactly the bound on one client's influence that calibrates
# the noise. A coordinate clip bounds the norm only by c·√d (0.01 · √9,610 ≈ 0.98 here), and it
# is not there for privacy at all: it fixes the range that the 2^bits − 1 levels cover, so that
# every value is representable and the sum cannot wrap. It trades bias (a small clip cuts) against
# quantisation error (a large clip makes the step 2·c / (2^bits − 2) coarse). Secure aggregation
# with a clip gives no privacy guarantee; combine it with DP's norm clipping and noise (section
# 8).
# <!-- END SOLUTION -->

# %% [markdown]
# ### Exercise 3 · Dropouts and the threshold
#
# **(a)** Section 2 for any number of clients: write client u's masked vector. `pair_masks` holds
# one mask r_ab for every pair of clients a < b (`pair_masks[(a, b)]`); the smaller id adds it,
# the larger subtracts it, and every sum is mod 2^k.

# %%
def mask_update(x, u, pair_masks, k):
    """Client u's y_u: x plus r_uv for every v > u, minus r_vu for every v < u, mod 2^k."""
    # BEGIN SOLUTION
    y = x.copy()
    for (a, b), r in pair_masks.items():
        if a == u:
            y = y + r
        elif b == u:
            y = y - r
    return y % 2**k
    # END SOLUTION


# %% tags=["self-check"]
exercises.check_mask_update(mask_update)
# BEGIN HIDDEN TESTS
exercises.check_mask_update(mask_update, seed=1)
# END HIDDEN TESTS

# %% [markdown]
# **(b)** The server after a dropout (section 3): it holds `masked_sum`, Σ y_u over the
# `survivors`, and — rebuilt from the Shamir shares of the `dropped` clients' keys — the masks of
# every pair that includes a dropped client (`pair_masks`, keyed (a, b) with a < b). Remove them
# and return the survivors' Σ x mod 2^k.

# %%
def remove_dropped_masks(masked_sum, survivors, dropped, pair_masks, k):
    """Σ x over the survivors mod 2^k: masked_sum without the masks shared with dropped clients."""
    # BEGIN SOLUTION
    total = masked_sum.copy()
    for (a, b), r in pair_masks.items():
        if a in survivors:  # b dropped; survivor a < b had added r_ab
            total = total - r
        elif b in survivors:  # a dropped; survivor b > a had subtracted r_ab
            total = total + r
    return total % 2**k
    # END SOLUTION


# %% tags=["self-check"]
exercises.check_remove_dropped_masks(remove_dropped_masks)
# BEGIN HIDDEN TESTS
exercises.check_remove_dropped_masks(remove_dropped_masks, seed=1)
# END HIDDEN TESTS

# %% [markdown]
# **(c)** Rerun section 6's `"secure"` run with 15 % of the clients dropping every round
# (`dropout=0.15`), once with `threshold=0.5` and once with `threshold=0.9`, into
# `threshold_runs` keyed by the threshold. Print them with `sa.runs_table`.

# %%
threshold_runs = ...  # {0.5: History, 0.9: History}, dropout=0.15
# BEGIN SOLUTION
threshold_runs = {
    t: fedlab.simulate(
        algorithm,
        mlp,
        digits,
        split,
        NUM_ROUNDS,
        seed=SEED,
        progress=False,
        secure_aggregation=sa.SecureAggregation(clip=CLIP, bits=BITS, dropout=0.15, threshold=t),
    )
    for t in (0.5, 0.9)
}
by_threshold = {"plain FedAvg": runs["plain FedAvg"]}
by_threshold.update({f"threshold {t}": history for t, history in threshold_runs.items()})
print(sa.runs_table(by_threshold, baseline="plain FedAvg"))
# END SOLUTION

# %% tags=["self-check"]
wanted = {"dropout": 0.15, "threshold": {0.5: 0.5, 0.9: 0.9}}
exercises.check_secure_runs(
    threshold_runs, runs["secure"], name="threshold_runs", what=secure_run, **wanted
)

# %% [markdown]
# **(d)** Count the rounds each run aborted, into `aborted` (same keys).

# %%
aborted = ...  # {threshold: number of rounds the server refused to unmask}
# BEGIN SOLUTION
aborted = {t: sum(r.secure_aborted for r in h.rounds) for t, h in threshold_runs.items()}
for t, history in threshold_runs.items():
    needed = sa.SecureAggregation(threshold=t).threshold_for(NUM_CLIENTS)
    dropped = [len(r.secure_dropped) for r in history.rounds]
    print(f"threshold {t}: t = {needed}, dropped per round {dropped}, {aborted[t]} aborted")
# END SOLUTION

# %% tags=["self-check"]
exercises.check_aborted_rounds(aborted, threshold_runs)

# %% [markdown]
# **(e)** What does a higher threshold buy the clients, and what does it cost?
#
# <!-- BEGIN SOLUTION -->
# **Model answer.** With 15 % dropping, one or two of the ten clients drop each
# round. At threshold 0.5, t = 6: up to four may drop, so no round aborted, and the run ends at
# 0.894 (averaging 8.5 clients a round costs nothing here). At 0.9, t = 9: only one may drop, so
# the five rounds in which two dropped aborted — the server refused to unmask, the model did not
# move, and every client's training and bytes in those rounds were wasted. It ends at 0.856 and is
# up to 0.42 behind in the first rounds (round 1 aborted). What a higher t buys: any secret — a
# client's self-mask seed b_u or its mask key — needs t shares to rebuild, so to unmask a single
# client the server must collude with t − 1 clients, 8 instead of 5 here; the clients' privacy
# holds against a larger coalition. What it costs: robustness, since at most n − t clients may
# drop out, and on phones that drop by the tens of per cent a high t aborts rounds. The threshold
# cannot go below n/2 + 1 anyway (t > n/2: otherwise two disjoint groups could hand over the
# shares of b_u and of the mask key of the same client), so with half the clients dropping every
# round aborts whatever the threshold.
# <!-- END SOLUTION -->

# %% [markdown]
# ### Exercise 4 · The server's bill
#
# **(a)** Measure section 7's costs again for n = 5, 10, 20, 50 and 100, with `dropout_fraction`
# 0, 0.1 and 0.3, into `server_rows` keyed by the fraction. Plot the server's time against n
# on log–log axes.

# %%
server_rows = ...  # {dropout fraction: sa.measure_overhead rows for n = 5 … 100}
# BEGIN SOLUTION
many = (*OVERHEAD_CLIENTS, 100)
server_rows = {
    f: sa.measure_overhead(many, VECTOR_LENGTH, dropout_fraction=f, seed=SEED)
    for f in (0.0, 0.1, 0.3)
}
fig, ax = plt.subplots(figsize=(5.5, 3.4), layout="constrained")
for f, rows_f in server_rows.items():
    ax.loglog(many, [r.server_seconds for r in rows_f], "o-", label=f"{f:.0%} drop")
ax.set(xlabel="clients n", ylabel="server seconds", title="The server's time, log–log")
ax.legend(fontsize="small");
# END SOLUTION

# %% tags=["self-check"]
exercises.check_server_rows(server_rows, (*OVERHEAD_CLIENTS, 100), (0.0, 0.1, 0.3), VECTOR_LENGTH)

# %% [markdown]
# **(b)** Read the slope off: for each fraction, the slope of a straight line through all five
# points of log(server seconds) against log(n) (`np.polyfit`), into `slopes`.

# %%
slopes = ...  # {dropout fraction: slope on log–log axes}
# BEGIN SOLUTION
slopes = {
    f: np.polyfit(np.log(many), np.log([r.server_seconds for r in rows_f]), 1)[0]
    for f, rows_f in server_rows.items()
}
print({f: round(float(s), 2) for f, s in slopes.items()})
# END SOLUTION

# %% tags=["self-check"]
exercises.check_loglog_slopes(slopes, server_rows)

# %% [markdown]
# **(c)** Run `sa.secure_sum` once with 100 clients (random updates of `VECTOR_LENGTH` values in
# [−1, 1]), 30 of them dropping before they send y, and name in `slowest_phase` the phase in
# which the server spends the most time (`.server_seconds`).

# %%
slowest_phase = ...  # "advertise_keys", "share_keys", "masked_input" or "unmasking"
# BEGIN SOLUTION
rng = np.random.default_rng(SEED)
big_round = sa.secure_sum(
    list(rng.uniform(-1, 1, size=(100, VECTOR_LENGTH))), dropouts=range(70, 100), seed=SEED
)
print({phase: f"{s * 1e3:.1f} ms" for phase, s in big_round.server_seconds.items()})
slowest_phase = max(big_round.server_seconds, key=big_round.server_seconds.get)
# END SOLUTION

# %% tags=["self-check"]
exercises.check_slowest_phase(slowest_phase)

# %% [markdown]
# **(d)** What slope do you read off, and why does that phase grow fastest?
#
# <!-- BEGIN SOLUTION -->
# **Model answer.** The server's time grows with a slope between 2 and 3 on log–log axes: 2.75,
# 2.62 and 2.60 for 0, 10 % and 30 % dropping in the run saved here. The times at n = 5 and 10 are
# fractions of a millisecond and jitter with the machine's load, so the slopes move from run to
# run (2.1 to 2.5 on a quiet machine, 1.4 to 2.8 on a busy one), but the server's work clearly
# grows faster than n, and at least like n². Nearly all of it is unmasking: 860 ms at n = 100
# with 30 dropped, against at most 1 ms for each of the other three phases, in which the server
# only relays keys and ciphertexts and stores each y_u. In unmasking it rebuilds one secret per
# client (b_u of every survivor, the mask key of every dropped client) by Lagrange interpolation
# from t ≈ n/2 shares of 521 bits: t modular inverses and t² products per secret, so n²/2
# inverses and n·t² ≈ n³/4 products in all, the products taking over as n grows — hence a slope
# above 2. Then, for every dropped client, it agrees a key with and expands a mask for every
# survivor: (dropped × survivors) key agreements and PRG expansions of length m, ≈ 0.3 n · 0.7 n ·
# m at 30 % — what dropouts add, another n² term. Computing the Lagrange coefficients once, for
# all the secrets whose shares come from the same clients, would bring the interpolation down to
# about n², the bound of Bonawitz et al.; SecAgg+ (Bell et al. 2020) cuts the work further by
# masking each client with O(log n) neighbours only.
# <!-- END SOLUTION -->

# %% [markdown]
# ### Exercise 5 · Differencing with dropouts
#
# **(a)** Be the lying server: run `sa.secure_sum` on section 5's `updates` again (a fresh
# `seed`), declaring client 2 dropped (`dropouts={2}`), and subtract that sum from section 5's
# `seen.sum` into `revealed`.

# %%
revealed = ...  # seen.sum minus the sum with client 2 declared dropped
# BEGIN SOLUTION
declared = sa.secure_sum(updates, clip=CLIP, bits=BITS, dropouts={2}, seed=SEED + 2)
revealed = seen.sum - declared.sum
print(f"summed {declared.summed_ids}, dropped {declared.dropped_ids}")
print(f"max |revealed − client 2's update| = {np.abs(revealed - updates[2]).max():.1e}")
# END SOLUTION

# %% tags=["self-check"]
exercises.check_declared_dropout(revealed, updates, client=2, clip=CLIP, bits=BITS)

# %% [markdown]
# **(b)** Why is a client that truly dropped not at risk, and what does the active version of the
# protocol add to stop a server that lies?
#
# <!-- BEGIN SOLUTION -->
# **Model answer.** `revealed` is client 2's update to within 1.5e-5, half a
# quantisation step: the difference of the two dequantised sums is exactly client 2's level times
# the step, minus the clip. A client that *truly* dropped is not at risk within a round: its y_2
# never reached the server, so rebuilding its mask key (to clean the others' y) unmasks nothing,
# and its b_2 is never rebuilt. A lying server tries the opposite: it receives y_2, then tells
# the others that client 2 dropped, to collect the shares of its mask key and strip the pairwise
# masks off y_2. The self mask PRG(b_2) still hides x_2, and an honest client hands over, for each
# client, a share of b_u or of its mask key, never both; since t > n/2, the server can collect t
# of both only by telling different clients different stories about who dropped. The active
# version of Bonawitz et al. stops that: a PKI and signatures on every message (the server cannot
# forge clients or answer for them), and a ConsistencyCheck round in which every survivor signs
# the list of survivors it was told and refuses to send shares unless t clients signed the same
# list. What the exercise did needs no lie the protocol could catch: two sums over the *same*
# updates that differ by one client, a dropout that looks real. This is section 8's differencing
# across rounds; only fresh DP noise in every sum (and refusing to sum the same update twice, or
# too few clients) defends against it.
# <!-- END SOLUTION -->
