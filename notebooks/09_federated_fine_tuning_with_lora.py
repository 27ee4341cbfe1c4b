# %% [markdown]
# # 09 · Federated fine-tuning with LoRA
#
# *Purpose: pre-train a tiny language model centrally, fine-tune it federatedly on keyboard users'
# sentences in four ways — every weight, LoRA adapters, LoRA with a frozen A, the output layer
# only — and weigh quality against megabytes sent and client memory.*
#
# **Goals**
# - Meet the classic federated workload, next-word prediction on phone keyboards
#   (`fedlab.keyboard`): one language, but each user writes about their own things.
# - Pre-train `fedlab.models.tiny_transformer` on a public corpus and measure it on the users'
#   test sentences: the "round 0" every fine-tuning run starts from.
# - Fine-tune it with FedAvg (`fedlab.fine_tuning.FineTuning`): full, LoRA of rank 8, LoRA
#   with a frozen A, head-only. Compare next-token accuracy, perplexity, megabytes per round,
#   peak client memory and FLOPs (`fedlab.compute.training_cost`).
# - See why averaging the LoRA factors A and B separately is **not** FedAvg, and two exact
#   alternatives (`fedlab.lora`).
# - Scale the bill up to a 7-billion-parameter model (`fedlab.large_models`).
#
# **You will need:** [08 · Communication cost](08_communication_cost.ipynb) (bytes per round,
# `History.megabytes_sent`) and [03 · FedSGD vs FedAvg](03_fedsgd_vs_fedavg.ipynb) (local
# epochs); about 40 s to run on a laptop CPU (no GPU needed).

# %% [markdown]
# ## Setup
#
# `import fedlab` comes **first**: it quietens TensorFlow's start-up log lines before TensorFlow
# loads. The large-model modules are imported by name.

# %%
import sys

FEDLAB = "fedlab-edu @ git+https://github.com/fedlab-edu/fedlab"  # what Colab installs
if "google.colab" in sys.modules:  # elsewhere `python3 dev.py lab` has installed fedlab already
    import subprocess

    subprocess.run([sys.executable, "-m", "pip", "install", "-q", FEDLAB], check=True)

# %%
import fedlab  # first: it quietens TensorFlow's start-up log lines
from fedlab import compute, large_models, lora
from fedlab.fine_tuning import FineTuning, pretrain
from fedlab.keyboard import keyboard

import matplotlib.pyplot as plt
import numpy as np

print(", ".join(f"{name} {version}" for name, version in fedlab.versions().items()))

# %% [markdown]
# The run sizes. There are four fine-tuning runs of 15 rounds with 10 of 20 users a round; each
# costs a few seconds, most of it compiling the round once per variant. The model is tiny (one
# transformer block of width 32) so that everything runs on a CPU in well under a minute.

# %%
NUM_CLIENTS = 20  # keyboard users
SENTENCES_PER_CLIENT = 60  # 48 to train on, 12 to test
HETEROGENEITY = 0.8  # 0: every user writes alike; 1: each has favourite topics and words
PUBLIC_SENTENCES = 1000  # the public corpus for pre-training
PRETRAIN_EPOCHS = 10
D_MODEL, NUM_HEADS, NUM_LAYERS = 32, 2, 1  # the tiny transformer
CLIENTS_PER_ROUND = 10  # K
NUM_ROUNDS = 15
LOCAL_EPOCHS = 1  # E
BATCH_SIZE = 16  # B
FULL_LR = 0.3  # η for full and head-only fine-tuning
LORA_LR = 4.0  # η for LoRA: adapters need a much larger step (section 3)
SEED = 0

# %% [markdown]
# ## 1. The keyboard story
#
# Federated learning went into production on phone keyboards (Hard et al. 2018, Gboard): the
# model that suggests your next word is improved from what people type, without what they type
# leaving the phone. `fedlab.keyboard` generates such data offline: one small English grammar,
# and users who each lean towards some topics (food, sport, work, ...), words and phrasings.
# `HETEROGENEITY` slides every user between the generic writer (0) and their own quirks (1).
# A public corpus, written by the generic writer, stands in for the web text a model is
# pre-trained on.

# %% tags=["nbval-check-output"]
data = keyboard(
    num_clients=NUM_CLIENTS,
    sentences_per_client=SENTENCES_PER_CLIENT,
    heterogeneity=HETEROGENEITY,
    public_sentences=PUBLIC_SENTENCES,
    seed=SEED,
)
split = data.split()  # the natural split: one client per user
print(data.summary())
print(f"client divergence (mean TV distance of word frequencies): {data.client_divergence():.3f}")

# %% [markdown]
# Each row is one sentence: `<bos>`, the words, `<eos>`, then `<pad>` (token 0) up to 16 tokens.
# The target `y` is `x` shifted left by one, and `<pad>` targets count in no loss or metric
# (`data.ignore_class`). Two users' first sentences, decoded:

# %% tags=["nbval-check-output"]
for user in (0, 1):
    rows = split.client_indices[user][:4]
    print(f"user {user}:", " | ".join(data.decode(data.x_train[i]) for i in rows))
print("tokens of the first:", data.x_train[split.client_indices[0][0]])

# %% [markdown]
# The same grammar, different worlds. Each user's favourite words: those whose frequency
# (`data.word_distributions()`) is furthest above the average user's, with both frequencies:

# %% tags=["nbval-check-output"]
freq = data.word_distributions()  # [user, word], each row sums to 1
average = freq.mean(axis=0)
for user in (0, 1):
    top = np.argsort(-(freq[user] - average), kind="stable")[:6]
    favourites = [f"{data.vocab[w]} {freq[user, w]:.3f}/{average[w]:.3f}" for w in top]
    print(f"user {user}:", ", ".join(favourites))


# %% [markdown]
# User 0 writes about travel (trip) and likes "see you at the … today"; user 1 finishes work
# and asks "can we … with …". A keyboard model that serves both must know both worlds, and the
# public corpus knows them only "on average". Fine-tuning federatedly on the users' own
# sentences should move the model towards what the *users* write, without collecting it.

# %% [markdown]
# ## 2. Pre-training, and round 0
#
# Big models are not trained federatedly from scratch: a model pre-trained on public data is
# *fine-tuned* on the clients. `pretrain` trains a fresh model centrally on the public corpus
# (Keras `fit`, Adam, padding ignored) and returns its weights (about 7 s):

# %% tags=["nbval-check-output"]
def make_model():
    return fedlab.models.tiny_transformer(
        len(data.vocab), data.seq_len, d_model=D_MODEL, num_heads=NUM_HEADS, num_layers=NUM_LAYERS
    )


weights = pretrain(
    make_model, data.x_public, data.y_public, PRETRAIN_EPOCHS, ignore_class=data.ignore_class
)
print(f"{make_model().count_params():,} parameters")

# %% [markdown]
# `FineTuning(make_model, weights, variant=...)` is a model function like any other: each call
# rebuilds the pre-trained model with only one variant's weights trainable, and the engine sends
# **only trainable weights** (frozen ones are the same on every client). One instance per
# variant, reused, so each variant compiles once:
#
# - `"full"`: every weight trains and travels;
# - `"lora"`: every weight is frozen and rank-r adapters `W + A·B` (A: d_in × r, B: r × d_out,
#   B starting at 0) on the attention's query and value projections train;
#   `train_a=False` freezes A too, so only B trains;
# - `"head"`: only the output layer (the logits `Dense`) trains.

# %%
full = FineTuning(make_model, weights, variant="full")
lora_8 = FineTuning(make_model, weights, variant="lora", rank=8, targets=("q", "v"))
frozen_a = FineTuning(make_model, weights, variant="lora", rank=8, train_a=False)
head = FineTuning(make_model, weights, variant="head")
VARIANTS = {  # name: (model function, client_lr)
    "full": (full, FULL_LR),
    "LoRA r=8": (lora_8, LORA_LR),
    "LoRA r=8, frozen A": (frozen_a, LORA_LR),
    "head only": (head, FULL_LR),
}

# %% [markdown]
# One `Simulation` per variant, same seed: the same users each round and the same batches. Before
# any round, `evaluate()` scores the pre-trained model on all users' test sentences — round 0,
# the baseline every variant starts from (LoRA's B = 0 leaves the model unchanged):

# %% tags=["nbval-check-output"]
sims = {}
for name, (make, lr) in VARIANTS.items():
    algorithm = fedlab.FedAvg(client_lr=lr, local_epochs=LOCAL_EPOCHS, batch_size=BATCH_SIZE)
    sims[name] = fedlab.Simulation(
        algorithm, make, data, split, CLIENTS_PER_ROUND, seed=SEED, strategy="loop"
    )
base_loss, base_accuracy = sims["full"].evaluate()
print(f"pre-trained: next-token accuracy {base_accuracy:.3f}, perplexity {np.exp(base_loss):.2f}")

# %% [markdown]
# Perplexity is exp(mean cross-entropy per token): the number of words the model is, in effect,
# choosing between (1 is perfect, the vocabulary size 218 is guessing). Next-token accuracy counts
# how often its top guess is right — the suggestion a keyboard would show first.

# %% [markdown]
# ## 3. Federated fine-tuning: full, LoRA, head-only
#
# Now 15 rounds of FedAvg for each variant (about 15 s in all). The learning rates were
# measured, not guessed: for full fine-tuning, 0.1, 0.3 and 1 gave final perplexities of about
# 5.63, 5.55 and 6.36; for LoRA r=8, 2, 4 and 8 gave about 6.09, 6.05 and 11.0. **LoRA needs a
# step about ten times larger**: B starts at 0 and the adapters are small (exercise 1). Head-only
# uses 0.3 like full fine-tuning (1 gives perplexity about 5.75 but no accuracy gain).

# %%
runs = {name: sim.run(NUM_ROUNDS, progress=False) for name, sim in sims.items()}

# %% [markdown]
# What each variant costs a client: `compute.training_cost` reads a built model (what is
# trainable comes from the model itself) and estimates the FLOPs of one training example and the
# peak memory of a step on a batch of 16 with plain SGD (weights + gradients + kept activations).

# %%
costs = {name: compute.training_cost(make(), BATCH_SIZE) for name, (make, _) in VARIANTS.items()}
print(costs["LoRA r=8"].summary())

# %% [markdown]
# The table. "MB / round" is what one client sends down and up in a round (float32 trainable
# weights, `History.bytes_up` per client); accuracy and perplexity are after the last round.

# %% tags=["nbval-check-output", "last-digit-tolerance"]
print(f"{'variant':<20}{'trainable':>10}{'MB/round':>10}{'accuracy':>10}{'perplexity':>11}", end="")
print(f"{'peak MB':>9}{'kFLOPs/ex':>11}")
print(f"{'pre-trained':<20}{'':>10}{'':>10}{base_accuracy:>10.3f}{np.exp(base_loss):>11.2f}")
for name, h in runs.items():
    per_client = 2 * h.bytes_up[0] / CLIENTS_PER_ROUND / 1e6  # down + up, one client
    print(f"{name:<20}{h.config['num_parameters']:>10,}{per_client:>10.4f}", end="")
    print(f"{h.test_accuracy[-1]:>10.3f}{h.perplexity[-1]:>11.2f}", end="")
    print(f"{costs[name].peak_memory_bytes / 1e6:>9.3f}{costs[name].train_flops / 1e3:>11,.0f}")

# %% [markdown]
# Accuracy against rounds and against all megabytes sent (log scale: the variants differ by a
# factor of 100), and perplexity per round:

# %%
fig, axes = plt.subplots(1, 3, figsize=(14, 3.8), layout="constrained")
for name, h in runs.items():
    fedlab.plot.plot_accuracy(h, ax=axes[0], label=name, legend=False)
    fedlab.plot.plot_accuracy(h, ax=axes[1], label=name, legend=False, x="megabytes")
    axes[2].plot(np.arange(1, len(h.perplexity) + 1), h.perplexity, label=name)
low = min(h.test_accuracy.min() for h in runs.values())
high = max(h.test_accuracy.max() for h in runs.values())
for ax in axes[:2]:
    ax.axhline(base_accuracy, color="grey", linestyle=":", label="pre-trained")
    ax.set_ylim(low - 0.005, high + 0.005)
axes[0].set_title("Accuracy per round")
axes[1].set(xscale="log", title="… against megabytes sent (log scale)")
axes[2].axhline(np.exp(base_loss), color="grey", linestyle=":", label="pre-trained")
axes[2].set(xlabel="round", ylabel="test perplexity", title="Perplexity (lower is better)")
axes[0].legend(fontsize="small");

# %% [markdown]
# What to notice:
#
# - **Full fine-tuning first makes the model worse**: after round 1 its perplexity is about 11,
#   far above the pre-trained 6.5, and it needs about five rounds to get back. A step of 0.3 on
#   *every* weight, averaged over clients who each pull towards their own words, knocks the
#   pre-trained model off before it settles. LoRA and head-only change the model only a little at
#   a time: their perplexity is below the pre-trained one from round 1 on.
# - **Every variant ends better than the pre-trained model**, by different amounts.
#   Perplexity is the clearer signal: next-token accuracy moves by about two points at most,
#   because many next words (a noun after "the") stay uncertain however good the model is.
# - **Full fine-tuning gains most** (perplexity about 5.55, accuracy about 0.49 → 0.52), and sends
#   all 27,450 weights down and up every round: 0.22 MB per client.
# - **Head-only** comes second (about 5.9): these users differ mostly in *which words* they use, and
#   word frequencies live in the output layer. It sends a quarter of the model, and needs the
#   least memory (0.40 MB) and compute (1.1 million FLOPs an example against 1.9): backprop stops
#   at the head.
# - **LoRA r=8 on q and v** gets half of full fine-tuning's perplexity gain (about 6.05) for one
#   twenty-first of the bytes (0.010 MB). **Freezing A** sends a fifth of that again (256 values:
#   a query kernel is 32 × 2 heads × 16, and Keras factors it as A: 32 × 2 × r, B: r × 16) and
#   still gains (about 6.3), though its accuracy barely moves.
# - **Client memory.** LoRA saves the gradients of the frozen weights but keeps every weight and
#   almost every activation (backprop must pass through the whole block to reach the adapters):
#   its peak is only 18 % below full. On a model this small activations dominate; on a 7B model
#   the weights, gradients and optimizer state do (section 5).

# %% [markdown]
# **"Does not fit on this phone."** Suppose a client may spend at most 0.8 MB on training (a
# budget scaled down with the model: think of the 8 GB of a phone and section 5's 7B model).
# `TrainingCost.fits` answers per variant:

# %% tags=["nbval-check-output"]
BUDGET = 800_000  # bytes a client may use for training
for name, cost in costs.items():
    print(f"{name:<20}{cost.peak_memory_bytes / 1e6:>7.3f} MB  fits: {cost.fits(BUDGET)}")

# %% [markdown]
# ## 4. The A·B averaging pitfall
#
# A LoRA client trains factors A_k and B_k; its update to the weight is A_k·B_k. FedAvg wants the
# average of the **updates**, Σ p_k A_k B_k. But the engine, like any "FedAvg on the trainable
# weights", averages each **factor**, and the server's model computes with (Σ p_k A_k)(Σ p_k B_k).
# These differ by the cross terms; for two equally weighted clients
#
# $$\tfrac12(A_1B_1 + A_2B_2) - \tfrac12(A_1+A_2)\,\tfrac12(B_1+B_2) = \tfrac14(A_1-A_2)(B_1-B_2).$$
#
# Scratch → package: two clients with random rank-1 factors, the identity by hand, checked
# against `lora.average_of_products` and `lora.product_of_averages`:

# %% tags=["nbval-check-output"]
example = lora.two_client_example(seed=SEED, d_in=4, d_out=4, rank=1, spread=1.0)
(A1, A2), (B1, B2) = example.As, example.Bs
exact, naive = (A1 @ B1 + A2 @ B2) / 2, (A1 + A2) / 2 @ ((B1 + B2) / 2)
np.testing.assert_allclose(exact, lora.average_of_products(example.As, example.Bs))
np.testing.assert_allclose(naive, lora.product_of_averages(example.As, example.Bs))
np.testing.assert_allclose(exact - naive, (A1 - A2) @ (B1 - B2) / 4)
error = lora.aggregation_error(example.As, example.Bs)
print(f"relative error of averaging the factors: {error:.3f}")

# %% [markdown]
# On one colour scale: the two clients' updates, the exact average, what factor averaging gives,
# and their difference.

# %%
lora.plot_lora_aggregation(example);

# %% [markdown]
# The error is zero when the clients agree (`spread=0`), and grows as they differ — exactly the
# non-IID case federated learning is about. Try it: move the sliders (rank, how different the two
# clients are, seed).

# %%
lora.LoraAggregationPanel(rank=1, spread=1.0)

# %% [markdown]
# **Two exact alternatives.**
#
# 1. **Freeze A** (FFA-LoRA, Sun et al. 2024): every client starts from the same seeded A and
#    never trains it, so Σ p_k A B_k = A (Σ p_k B_k): averaging B is exact, and only B
#    travels (half the adapter of a square matrix; here a fifth, as A is the larger factor of
#    Keras's attention kernels). This is the "LoRA r=8, frozen A" run of section 3 — in the
#    engine, with no special aggregation at all. The price: each update lies in the fixed
#    column space of A, and in section 3 it learnt little after round 1.
# 2. **Average the products, then re-factorise** (`lora.aggregate_svd`): the server builds
#    Σ p_k A_k B_k and splits it with a truncated SVD. Exact when the rank kept is at least the
#    rank of the average (at most the sum of the clients' ranks); otherwise the best
#    approximation of that rank.

# %% tags=["nbval-check-output"]
A, B = lora.aggregate_frozen_a(A1, [B1, B2])
print(f"frozen A:  A·B̄ equals the average of A·B_k: {np.allclose(A @ B, (A1 @ B1 + A1 @ B2) / 2)}")
for rank in (1, 2):
    A, B = lora.aggregate_svd(example.As, example.Bs, rank=rank)
    error = np.linalg.norm(A @ B - exact) / np.linalg.norm(exact)
    print(f"SVD, rank {rank}: relative error {error:.3f}")

# %% [markdown]
# Two rank-1 updates average to a rank-2 matrix: re-factorising at rank 2 is exact, at rank 1 it
# keeps the best rank-1 part — and even that beats averaging the factors (0.254 against 0.290).
# In section 3 the "LoRA r=8" run averaged its factors and the frozen-A run was exact, yet the
# former did better: it trains five times as many numbers, and after one local epoch from a
# shared start the clients' factors are still close, so the cross term is small. It grows with
# how far the clients drift apart (exercise 3).

# %% [markdown]
# ## 5. What if the model had 7 billion parameters?
#
# `large_models` counts a decoder's weights by formula. The same formula counts our tiny
# transformer exactly, which is how we trust it for Llama:

# %% tags=["nbval-check-output"]
sizes = dict(d_model=D_MODEL, num_heads=NUM_HEADS, num_layers=NUM_LAYERS)
tiny = large_models.tiny_transformer_config(len(data.vocab), data.seq_len, **sizes)
assert tiny.num_parameters() == make_model().count_params()
llama = large_models.LLAMA_2_7B
print(f"tiny: {tiny.num_parameters():,}   Llama 2 7B: {llama.num_parameters():,}")
for part, n in llama.parameter_breakdown().items():
    print(f"  {part:<11}{n:>15,}")

# %% [markdown]
# One client's upload per round over a 10 Mbit/s uplink: the full update against LoRA r=8 on q
# and v (4.2 million values, 0.06 % of the model), in float32, float16 and 8 bits
# (`large_models.upload_comparison`):

# %% tags=["nbval-check-output"]
rows = large_models.upload_comparison(llama, rank=8, targets=("q", "v"), uplink_mbit_per_s=10)
print(f"{'update':<7}{'bits':>5}{'values':>16}{'MB':>12}{'upload':>14}")
for r in rows:
    seconds = r["seconds"]
    when = f"{seconds / 3600:.1f} h" if seconds > 3600 else f"{seconds:.1f} s"
    print(f"{r['update']:<7}{r['bits_per_value']:>5.0f}{r['values']:>16,}", end="")
    print(f"{r['bytes'] / 1e6:>12,.1f}{when:>14}")

# %% [markdown]
# The rank sets the adapter's size linearly: r·(4096 + 4096) values per matrix and layer.

# %% tags=["nbval-check-output"]
for rank in (1, 2, 8, 64):
    n = llama.lora_parameters(rank, ("q", "v"))
    seconds = large_models.upload_seconds(large_models.upload_bytes(n), uplink_mbit_per_s=10)
    print(f"r = {rank:>2}: {n:>10,} values, {4 * n / 1e6:>6.1f} MB, {seconds:>5.1f} s at 10 Mbit/s")

# %% [markdown]
# Six hours to upload a full float32 update, three in float16, one and a half in 8 bits;
# LoRA r=8's adapters take 13 s in float32. And memory: full fine-tuning with Adam keeps, per
# weight, the weight, its gradient and two moments — 16 bytes in float32 — before any
# activation. LoRA keeps the frozen weights (in 16 bits, say) and the 4-value state only for the
# adapters:

# %% tags=["nbval-check-output"]
n, n_lora = llama.num_parameters(), llama.lora_parameters(8, ("q", "v"))
full_gb = 16 * n / 1e9  # float32 weight + gradient + 2 Adam moments
lora_gb = (2 * n + 16 * n_lora) / 1e9  # float16 frozen weights + float32 adapter state
print(f"full fine-tuning: {full_gb:,.1f} GB   LoRA r=8: {lora_gb:,.1f} GB (activations excluded)")


# %% [markdown]
# 108 GB is a cluster of GPUs; 13.5 GB is one large GPU — or, with 4-bit frozen weights (QLoRA,
# Dettmers et al. 2023), about 3.4 GB, a high-end phone. At this scale LoRA is what makes
# federated fine-tuning possible at all; in our tiny model it is mainly a communication saving.

# %% [markdown]
# ## 6. What the keyboard suggests
#
# Finally, use the models. `Simulation.global_model()` is the Keras model with the federation's
# weights; `full()` rebuilds the pre-trained one. For a prompt, the model's logits at the last
# word give the next-word distribution; the top five, before and after full fine-tuning:

# %%
def top_words(model, prompt, k=5):
    tokens = np.zeros(data.seq_len, np.int32)
    words = np.concatenate([[1], data.encode(prompt)])  # <bos> first
    tokens[: len(words)] = words
    logits = np.asarray(model(tokens[None]))[0, len(words) - 1]
    p = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    return ", ".join(f"{data.vocab[w]} {p[w]:.2f}" for w in np.argsort(-p)[:k])


# %%
pretrained, tuned = full(), sims["full"].global_model()
for prompt in ("i want to", "lets book the", "can we hear the", "lets eat the"):
    print(f"{prompt!r}\n  pre-trained: {top_words(pretrained, prompt)}")
    print(f"  fine-tuned:  {top_words(tuned, prompt)}")

# %% [markdown]
# The pre-trained model already knows the grammar and the topics: after "lets eat the" it
# suggests food, after "can we hear the" music. Fine-tuning moves it towards what these 20 users
# write: after "i want to", *send*, *book* and *finish* (work and travel, favourites of users 0
# and 1 among others) climb into the top five, and *coffee* more than doubles after "lets eat the"
# — learnt without a single sentence leaving a phone. It is still **one** model for everyone: the
# average user's keyboard, not user 0's. Personalising it — each user fine-tuning their own copy,
# or their own small adapter on top of the shared model — is the natural next step (exercise 5).

# %% [markdown]
# ## Summary
#
# - **The keyboard workload**: one language, users with their own topics and words
#   (`fedlab.keyboard`, client divergence 0.44 at heterogeneity 0.8); pad tokens are ignored in
#   every loss and metric.
# - **Pre-train centrally, fine-tune federatedly**: `pretrain` gives the starting weights,
#   `FineTuning(make_model, weights, variant=...)` is the model function; the engine sends only
#   trainable weights, so the variant sets the bill.
# - **Quality vs bytes vs memory** (15 rounds, perplexity from about 6.5): full fine-tuning gained
#   most (about 5.55) and sent the whole model; head-only (about 5.9) sent a quarter of it and
#   needed less than half the memory; LoRA r=8 on q, v got half of full's gain (about 6.05) for
#   1/21 of the bytes, and with a frozen A (about 6.3) for 1/100. LoRA's memory saving is small
#   here, where activations dominate.
# - **LoRA needs a larger learning rate** (4 against 0.3 here): B starts at 0 and the adapters
#   are small.
# - **Averaging A and B separately is not FedAvg**: the error is the cross term
#   Σ p_k (A_k − Ā)(B_k − B̄). Freezing A (FFA-LoRA) or averaging the products and re-factorising
#   with an SVD are exact.
# - **At 7B**: a full float32 update takes 6 hours to upload at 10 Mbit/s and full fine-tuning
#   with Adam needs ~108 GB; LoRA r=8 on q, v uploads in 13 s and fits in ~13.5 GB (3.4 GB with
#   4-bit frozen weights).
#
# ## Exercises
#
# *Functions, classes and arguments that no cell above uses are named in full (`fedlab.…`):
# `help()` on one (or on its class) shows its documentation, and on the course website the name
# links to its entry in the API reference.*
#
# 1. **The LoRA step size.** Rerun "LoRA r=8" with `client_lr` 0.3, 1 and 8. Why does a factor that
#    starts at B = 0 need a larger step? What does `fedlab.fine_tuning.FineTuning(...,
#    lora_alpha=16)` (scale α/r = 2) do to the best learning rate?
# 2. **Rank and place.** Add LoRA runs with `rank=2` and `rank=32`: is the gain worth the bytes?
#    Then try `targets=("q", "v", "up", "down")` and `("up", "down")`, and `variant="bitfit"`
#    (biases only; every variant is in `fedlab.fine_tuning.FineTuning`). Which recovers most of full
#    fine-tuning per megabyte? Put your answer next to the head-only result: where do these users'
#    differences live?
# 3. **The bias in the engine.** Run "LoRA r=8" with `HETEROGENEITY = 0.0` and `1.0`, and
#    compare with the frozen-A run each time. Does the gap between factor averaging and exact
#    averaging grow with heterogeneity, as section 4 predicts?
# 4. **Compression on top.** Add `compression=fedlab.compression.StochasticQuantizer(bits=8)` to the
#    LoRA r=8 run (notebook 08). How many megabytes per round now, and what does it cost? Redo
#    section 5's upload table for Llama 3 8B (`fedlab.large_models.LLAMA_3_8B`).
# 5. **Personalisation.** Take the fine-tuned global model and fine-tune it a few more steps on user
#    0's training sentences only (Keras
#    [`fit`](https://keras.io/api/models/model_training_apis/#fit-method), as `pretrain` does).
#    Compare its perplexity on user 0's test sentences (`data.test_client_ids == 0`; see
#    `fedlab.keyboard.KeyboardData.test_client_ids`) with the global model's, and its top words for
#    "lets eat the".
