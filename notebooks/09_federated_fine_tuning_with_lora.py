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
# Each exercise below has a cell for your answer, in code, and a **check** cell after it. Run the
# check: it prints ✓ and what it verified, or ✗ and the mistake it recognised, with a hint. The
# parts that ask you to explain have a cell for your answer in words. Every run changes only what
# the exercise says and is otherwise section 3's: the same users, rounds and seed.
#
# *Functions, classes and arguments that no cell above uses are named in full (`fedlab.…`):
# `help()` on one (or on its class) shows its documentation, and on the course website the name
# links to its entry in the API reference.*
#
# 1. **The LoRA step size.** Write the gradients of a LoRA layer's two factors, then rerun
#    "LoRA r=8" with `client_lr` 0.3 (full fine-tuning's) and 8. Why does a factor that starts at
#    B = 0 need a larger step? What does `fedlab.fine_tuning.FineTuning(..., lora_alpha=16)`
#    (scale α/r = 2) do to the best learning rate?
# 2. **Rank and place.** Count a LoRA adapter's numbers, then add LoRA runs with `rank=2` and
#    `rank=32`: is the gain worth the bytes? Then try `targets=("up", "down")` (the MLP) and
#    `variant="bitfit"` (biases only; every variant is in `fedlab.fine_tuning.FineTuning`). Which
#    recovers most of full fine-tuning per megabyte? Put your answer next to the head-only result:
#    where do these users' differences live?
# 3. **The bias in the engine.** Write FedAvg's exact aggregate of LoRA updates. Run "LoRA r=8"
#    with `HETEROGENEITY = 0.0` and `1.0`, and compare with the frozen-A run each time. Does the
#    gap between factor averaging and exact averaging grow with heterogeneity, as section 4
#    predicts?
# 4. **Compression on top.** Add `compression=fedlab.compression.StochasticQuantizer(bits=8)` to the
#    LoRA r=8 run (notebook 08). How many megabytes per round now, and what does it cost? Redo
#    section 5's upload table for Llama 3 8B (`fedlab.large_models.LLAMA_3_8B`).
# 5. **Personalisation.** Write the perplexity of a model on some sentences. Take the fine-tuned
#    global model and fine-tune it a few more steps on user 0's training sentences only (Keras
#    [`fit`](https://keras.io/api/models/model_training_apis/#fit-method), as `pretrain` does).
#    Compare its perplexity on user 0's test sentences (`data.test_client_ids == 0`; see
#    `fedlab.keyboard.KeyboardData.test_client_ids`) with the global model's, and its top words for
#    "lets eat the".

# %%
from fedlab import exercises

# %% [markdown]
# Every run below goes through `fine_tune`: section 3's settings, with a model function, a learning
# rate and, where an exercise says so, other data or a codec.

# %%
def fine_tune(make, client_lr, data=data, **settings):
    """FedAvg as in section 3 (same users, rounds, seed) with model function `make`."""
    algorithm = fedlab.FedAvg(client_lr=client_lr, local_epochs=LOCAL_EPOCHS, batch_size=BATCH_SIZE)
    run = dict(clients_per_round=CLIENTS_PER_ROUND, seed=SEED, strategy="loop", progress=False)
    return fedlab.simulate(algorithm, make, data, data.split(), NUM_ROUNDS, **run, **settings)


# %% [markdown]
# ### Exercise 1 · The LoRA step size
#
# **(a)** A LoRA layer computes y = x (W + A B) with W frozen. Given G = ∂L/∂y for a batch x, write
# the gradients of the loss with respect to the factors: `lora_gradients(x, G, A, B)` returns
# (∂L/∂A, ∂L/∂B), shaped like A and B (the chain rule through the product A B).

# %%
def lora_gradients(x, G, A, B):
    """(∂L/∂A, ∂L/∂B) for y = x @ (W + A @ B), given G = ∂L/∂y."""
    # BEGIN SOLUTION
    return x.T @ G @ B.T, A.T @ x.T @ G
    # END SOLUTION


# %% tags=["self-check"]
exercises.check_lora_gradients(lora_gradients)
# BEGIN HIDDEN TESTS
exercises.check_lora_gradients(lora_gradients, seed=1)
# END HIDDEN TESTS

# %% [markdown]
# **(b)** Rerun "LoRA r=8" with `client_lr` 0.3 (full fine-tuning's) and 8, into `lr_runs` keyed by
# the learning rate. Print the perplexity after the last round beside section 3's (`LORA_LR`).

# %%
lr_runs = ...  # {0.3: History, 8.0: History}, "LoRA r=8" with that client_lr
# BEGIN SOLUTION
lr_runs = {lr: fine_tune(lora_8, lr) for lr in (0.3, 8.0)}
for lr, h in sorted({**lr_runs, LORA_LR: runs["LoRA r=8"]}.items()):
    print(f"client_lr {lr:>3}: perplexity {h.perplexity[-1]:5.2f}", end="")
    print(f", accuracy {h.test_accuracy[-1]:.3f}")
# END SOLUTION

# %% tags=["self-check"]
lrs = {"client_lr": {0.3: 0.3, 8.0: 8.0}}
reference = runs["LoRA r=8"]
exercises.check_runs(lr_runs, reference, name="lr_runs", what="section 3's LoRA run", **lrs)

# %% [markdown]
# **(c)** Make `lora_16 = FineTuning(make_model, weights, variant="lora", rank=8, lora_alpha=16)`
# (Keras scales A B by α/r = 2) and run it with `client_lr` 2 and 4, into `alpha_runs` keyed by the
# learning rate.

# %%
alpha_runs = ...  # {2.0: History, 4.0: History}, LoRA r=8 with lora_alpha=16
# BEGIN SOLUTION
lora_16 = FineTuning(make_model, weights, variant="lora", rank=8, lora_alpha=16)
alpha_runs = {lr: fine_tune(lora_16, lr) for lr in (2.0, 4.0)}
for lr, h in alpha_runs.items():
    print(f"α = 16, client_lr {lr}: perplexity {h.perplexity[-1]:5.2f}")
# END SOLUTION

# %% tags=["self-check"]
scaled = {**runs["LoRA r=8"].config["fine_tuning"], "lora_alpha": 16}
alphas = {"client_lr": {2.0: 2.0, 4.0: 4.0}, "fine_tuning": {2.0: scaled, 4.0: scaled}}
exercises.check_runs(
    alpha_runs, reference, name="alpha_runs", what="section 3's LoRA run", **alphas
)

# %% [markdown]
# **(d)** Why does a factor that starts at B = 0 need a larger step? What does α = 16 do to the
# best learning rate?
#
# <!-- BEGIN SOLUTION -->
# **Model answer.** The gradients say it. ∂L/∂A = xᵀ G Bᵀ is zero while B = 0, so at first only
# B moves, and ∂L/∂B = Aᵀ xᵀ G: the weight changes by A ΔB = −η A Aᵀ (xᵀ G). That is full
# fine-tuning's gradient xᵀ G squeezed through the r columns of A: only its part in an
# 8-dimensional subspace survives, and A's entries are small (He-uniform), so the same η moves
# the weight much less than a full step does. Hence the larger step: at full fine-tuning's 0.3,
# LoRA ends at perplexity 6.28 (the pre-trained model has 6.53), at 4 at 6.05, and at 8 it
# overshoots to 11.74, with accuracy 0.408, worse than where it started. `lora_alpha` scales the
# adapter: with α = 16 the layer adds 2 A B, and the gradients of A and B double too, so every
# step moves the weight further. The best learning rate drops: α = 16 with 2 ends at 6.03, as good
# as α = 8 with 4, and with 4 it overshoots (9.70). α and the learning rate trade off; fixing α
# while the rank changes (or scaling by α/√r, rsLoRA) keeps the step size from changing with r.
# <!-- END SOLUTION -->

# %% [markdown]
# ### Exercise 2 · Rank and place
#
# **(a)** Write `lora_parameters(d_in, d_out, rank)`: how many numbers a rank-r adapter A B on a
# d_in × d_out weight trains (and sends). Print it for Llama 2's 4096 × 4096 query matrix at
# r = 8, beside the matrix's own size.

# %%
def lora_parameters(d_in, d_out, rank):
    """Numbers of a rank-`rank` LoRA adapter (A: d_in × rank, B: rank × d_out)."""
    # BEGIN SOLUTION
    return rank * (d_in + d_out)
    # END SOLUTION


# BEGIN SOLUTION
print(f"4096 × 4096 at r = 8: {lora_parameters(4096, 4096, 8):,} against {4096 * 4096:,}")
# END SOLUTION

# %% tags=["self-check"]
exercises.check_lora_parameters(lora_parameters)
# BEGIN HIDDEN TESTS
exercises.check_lora_parameters(lora_parameters, seed=1)
# END HIDDEN TESTS

# %% [markdown]
# **(b)** Run each variant of `MORE` into `more_runs` (same keys), and print each run's trainable
# numbers, MB per round per client, perplexity and accuracy beside section 3's table.

# %%
MORE = {  # variant: (model function, client_lr)
    "LoRA r=2": (FineTuning(make_model, weights, variant="lora", rank=2), LORA_LR),
    "LoRA r=32": (FineTuning(make_model, weights, variant="lora", rank=32), LORA_LR),
    "LoRA r=8 on the MLP": (
        FineTuning(make_model, weights, variant="lora", rank=8, targets=("up", "down")),
        LORA_LR,
    ),
    "bitfit": (FineTuning(make_model, weights, variant="bitfit"), LORA_LR),
}

# %%
more_runs = ...  # {name: History}, one run per variant of MORE
# BEGIN SOLUTION
more_runs = {name: fine_tune(make, lr) for name, (make, lr) in MORE.items()}
print(f"{'variant':<20}{'trainable':>10}{'MB/round':>10}{'perplexity':>11}{'accuracy':>10}")
for name, h in {**runs, **more_runs}.items():
    per_client = 2 * h.bytes_up[0] / CLIENTS_PER_ROUND / 1e6  # down + up, one client
    print(f"{name:<20}{h.config['num_parameters']:>10,}{per_client:>10.4f}", end="")
    print(f"{h.perplexity[-1]:>11.2f}{h.test_accuracy[-1]:>10.3f}")
# END SOLUTION

# %% tags=["self-check"]
models = {name: make() for name, (make, _) in MORE.items()}
more = {
    "fine_tuning": {name: make.config() for name, (make, _) in MORE.items()},
    "client_lr": {name: lr for name, (_, lr) in MORE.items()},
    "num_frozen_parameters": {
        name: sum(int(np.prod(v.shape)) for v in m.non_trainable_variables)
        for name, m in models.items()
    },
}
exercises.check_runs(more_runs, reference, name="more_runs", what="section 3's LoRA run", **more)

# %% [markdown]
# **(c)** Write `share_of_gain(perplexity, pretrained, full)`: the share of full fine-tuning's
# perplexity gain a run recovers — 1 if it ends as low as full fine-tuning, 0 if no lower than the
# pre-trained model. Print it, and the share per MB a client sends per round, for every run so
# far.

# %%
def share_of_gain(perplexity, pretrained, full):
    """The share of full fine-tuning's perplexity gain a run recovers (1: all of it, 0: none)."""
    # BEGIN SOLUTION
    return (pretrained - perplexity) / (pretrained - full)
    # END SOLUTION


# BEGIN SOLUTION
pretrained_ppl, full_ppl = np.exp(base_loss), runs["full"].perplexity[-1]
for name, h in {**runs, **more_runs}.items():
    share = share_of_gain(h.perplexity[-1], pretrained_ppl, full_ppl)
    per_client = 2 * h.bytes_up[0] / CLIENTS_PER_ROUND / 1e6
    print(f"{name:<20} share of full's gain {share:5.2f}, per MB a round {share / per_client:7.1f}")
# END SOLUTION

# %% tags=["self-check"]
exercises.check_share_of_gain(share_of_gain)
# BEGIN HIDDEN TESTS
exercises.check_share_of_gain(share_of_gain, seed=1)
# END HIDDEN TESTS

# %% [markdown]
# **(d)** Is a larger rank worth the bytes? Which variant recovers most of full fine-tuning per
# megabyte? Next to head-only: where do these users' differences live?
#
# <!-- BEGIN SOLUTION -->
# **Model answer.** Not at this learning rate. Rank 2 recovers 0.35 of full fine-tuning's gain
# (perplexity 6.19) with a quarter of rank 8's bytes, rank 8 recovers 0.49 (6.05), and rank 32
# only 0.10 (6.43) with four times rank 8's bytes. With Keras's default α = r the scale is 1, so a
# larger rank adds more columns to A and a larger step A Aᵀ (exercise 1): rank 32 at `LORA_LR`
# overshoots, and rank 2 behaves like rank 8 at a smaller rate. Per megabyte a client sends in a
# round, the smallest adapters win: LoRA r=2 gets 136 (share of the gain per MB), frozen A 116,
# bitfit (506 biases) 87, LoRA r=8 on q and v 48, on the MLP 35, head-only 11, full
# fine-tuning 4.6. In absolute terms LoRA r=8 on the MLP is the best of the cheap variants: 0.72
# of full fine-tuning's gain (5.83), more than head-only's 0.65 (5.89) with a third of its bytes
# (0.021 against 0.058 MB), and far more than the same adapters on q and v (0.49). These users
# share the grammar and differ in which words they use; word choice lives in the MLP and the
# output layer, not in the attention patterns (q, v), which say which earlier words to look at.
# <!-- END SOLUTION -->

# %% [markdown]
# ### Exercise 3 · The bias in the engine
#
# **(a)** Write FedAvg's exact aggregate of LoRA clients: `average_of_updates(As, Bs, counts)`
# returns the mean of the clients' updates A_k B_k, client k weighted by n_k / n (one matrix).
# Compare it with averaging the factors on section 4's `example`.

# %%
def average_of_updates(As, Bs, counts):
    """Σ_k (n_k / n) A_k @ B_k: FedAvg's mean of the clients' LoRA updates."""
    # BEGIN SOLUTION
    shares = np.asarray(counts, dtype=np.float64) / np.sum(counts)
    return sum(p * A @ B for p, A, B in zip(shares, As, Bs, strict=True))
    # END SOLUTION


# BEGIN SOLUTION
exact = average_of_updates(example.As, example.Bs, [1, 1])
naive = lora.product_of_averages(example.As, example.Bs)
gap = np.linalg.norm(exact - naive) / np.linalg.norm(exact)
print(f"‖exact − factor average‖ / ‖exact‖ = {gap:.3f}")
# END SOLUTION

# %% tags=["self-check"]
exercises.check_average_of_updates(average_of_updates)
# BEGIN HIDDEN TESTS
exercises.check_average_of_updates(average_of_updates, seed=1)
# END HIDDEN TESTS

# %% [markdown]
# **(b)** Make the keyboard data again with `heterogeneity` 0.0 and 1.0 and everything else as
# `data`, into `keyboards` keyed by the heterogeneity (the public corpus stays the same, so the
# pre-trained `weights` still fit).

# %%
keyboards = ...  # {0.0: data with heterogeneity 0, 1.0: data with heterogeneity 1}
# BEGIN SOLUTION
same_data = dict(
    num_clients=NUM_CLIENTS,
    sentences_per_client=SENTENCES_PER_CLIENT,
    public_sentences=PUBLIC_SENTENCES,
    seed=SEED,
)
keyboards = {h: keyboard(heterogeneity=h, **same_data) for h in (0.0, 1.0)}
for h, made in keyboards.items():
    print(f"heterogeneity {h}: client divergence {made.client_divergence():.3f}")
# END SOLUTION

# %% tags=["self-check"]
exercises.check_keyboards(keyboards, data)

# %% [markdown]
# **(c)** On each, run "LoRA r=8" and "LoRA r=8, frozen A" as in section 3, into
# `het_runs = {heterogeneity: {name: History}}`. Print, per heterogeneity, the pre-trained
# model's perplexity (`fedlab.steps.evaluate`), each run's, and the gap between the two runs.

# %%
het_runs = ...  # {0.0: {"LoRA r=8": History, "LoRA r=8, frozen A": History}, 1.0: {...}}
# BEGIN SOLUTION
pair = {name: VARIANTS[name] for name in ("LoRA r=8", "LoRA r=8, frozen A")}
het_runs = {
    h: {name: fine_tune(make, lr, made) for name, (make, lr) in pair.items()}
    for h, made in keyboards.items()
}
every_level = {**het_runs, HETEROGENEITY: {name: runs[name] for name in pair}}
pretrained, levels = full(), {**keyboards, HETEROGENEITY: data}
for h in sorted(every_level):
    made = levels[h]
    loss, _ = fedlab.steps.evaluate(
        pretrained, weights, made.x_test, made.y_test, made.ignore_class
    )
    lora_ppl, frozen_ppl = (every_level[h][name].perplexity[-1] for name in pair)
    print(f"heterogeneity {h}: pre-trained {np.exp(loss):.2f}, LoRA {lora_ppl:.2f}", end="")
    print(f", frozen A {frozen_ppl:.2f}, gap {frozen_ppl - lora_ppl:.2f}")
# END SOLUTION

# %% tags=["self-check"]
section_3 = {name: runs[name] for name in ("LoRA r=8", "LoRA r=8, frozen A")}
exercises.check_heterogeneity_runs(het_runs, section_3)

# %% [markdown]
# **(d)** Does the gap grow with heterogeneity, as section 4 predicts? What else changes with it?
#
# <!-- BEGIN SOLUTION -->
# **Model answer.** No. The gap between factor averaging (LoRA r=8) and exact averaging (frozen A)
# is 0.26 at heterogeneity 0, 0.24 at 0.8 and 0.06 at 1.0: it shrinks. The runs compare more
# than the aggregation: frozen A trains a fifth of the numbers and learns less on any data, and
# the pre-trained model starts from another perplexity on each data set (6.58, 6.53, 6.63). And the
# bias of section 4 is small here: it is the spread of the clients' factors, Σ p_k (A_k − Ā)(B_k −
# B̄), after one local epoch from a shared start where B = 0, and ∂L/∂A = xᵀ G Bᵀ is zero at
# first (exercise 1), so the A_k hardly differ. What the runs do show is consistent with it: at
# heterogeneity 1, LoRA gains less over the pre-trained model than at 0.8 (0.34 against 0.48)
# while frozen A gains more (0.28 against 0.23). One seed per setting cannot separate that from
# noise; measuring `lora.aggregation_error` of the clients' factors in a round, at each
# heterogeneity, would test the prediction directly.
# <!-- END SOLUTION -->

# %% [markdown]
# ### Exercise 4 · Compression on top
#
# **(a)** Run "LoRA r=8" with `compression=fedlab.compression.StochasticQuantizer(bits=8)` (the
# uplink quantised, as in notebook 08), into `quantised_lora`.

# %%
quantised_lora = ...  # section 3's "LoRA r=8" run with an 8-bit uplink
# BEGIN SOLUTION
eight_bit = fedlab.compression.StochasticQuantizer(bits=8)
quantised_lora = fine_tune(lora_8, LORA_LR, compression=eight_bit)
for name, h in {"float32": runs["LoRA r=8"], "8-bit up": quantised_lora}.items():
    print(f"{name:<9} perplexity {h.perplexity[-1]:.3f}, accuracy {h.test_accuracy[-1]:.3f}")
# END SOLUTION

# %% tags=["self-check"]
codec = fedlab.compression.StochasticQuantizer(bits=8)
exercises.check_quantised_run(quantised_lora, runs["LoRA r=8"], codec)

# %% [markdown]
# **(b)** How many megabytes does one client send, down and up, in a round of `quantised_lora`?
# Compute `mb_per_client` from its `bytes_down` and `bytes_up`.

# %%
mb_per_client = ...  # MB one client sends down + up in a round of quantised_lora
# BEGIN SOLUTION
h = quantised_lora
mb_per_client = (h.bytes_down[0] + h.bytes_up[0]) / CLIENTS_PER_ROUND / 1e6
float32_mb = 2 * runs["LoRA r=8"].bytes_up[0] / CLIENTS_PER_ROUND / 1e6
print(f"per client and round: {mb_per_client:.5f} MB with 8-bit up, {float32_mb:.5f} float32")
# END SOLUTION

# %% tags=["self-check"]
exercises.check_client_megabytes(mb_per_client, quantised_lora, CLIENTS_PER_ROUND)

# %% [markdown]
# **(c)** For Llama 3 8B (`fedlab.large_models.LLAMA_3_8B`), compute with your `lora_parameters`
# and `large_models.LLAMA_3_8B.matrix_shapes()` the numbers of rank-8 adapters on q and v in all
# its layers, `llama3_values`, and the seconds one float32 upload of them takes at 10 Mbit/s,
# `llama3_seconds`. Then print section 5's upload table for it.

# %%
llama3_values = ...  # rank-8 LoRA numbers on q and v, all layers of Llama 3 8B
llama3_seconds = ...  # seconds to upload them in float32 at 10 Mbit/s
# BEGIN SOLUTION
llama3 = large_models.LLAMA_3_8B
shapes = llama3.matrix_shapes()
llama3_values = llama3.num_layers * sum(lora_parameters(*shapes[t], 8) for t in ("q", "v"))
llama3_seconds = 32 * llama3_values / 10e6  # bits / (bits per second)
print(f"q {shapes['q']}, v {shapes['v']}: {llama3_values:,} values, {llama3_seconds:.1f} s")
for r in large_models.upload_comparison(llama3, rank=8, uplink_mbit_per_s=10):
    seconds = r["seconds"]
    when = f"{seconds / 3600:.1f} h" if seconds > 3600 else f"{seconds:.1f} s"
    print(f"{r['update']:<7}{r['bits_per_value']:>5.0f}{r['values']:>16,}{when:>10}")
# END SOLUTION

# %% tags=["self-check"]
exercises.check_llama3_adapters(llama3_values, llama3_seconds, config=large_models.LLAMA_3_8B)

# %% [markdown]
# **(d)** What does the 8-bit uplink save, and what does it cost? What changes from Llama 2 7B to
# Llama 3 8B?
#
# <!-- BEGIN SOLUTION -->
# **Model answer.** The 8-bit uplink shrinks a client's upload from 5,120 to 1,300 bytes (1,280
# one-byte codes and five 4-byte scales), so a client's round falls from 0.0102 to 0.0064 MB,
# 37 % less; the float32 downlink (5,120 bytes) is now 80 % of it. It costs nothing measurable:
# perplexity 6.054 and accuracy 0.501, as without compression — unbiased rounding noise on
# updates, averaged over ten clients (notebook 08). For Llama 3 8B the full model grows to 8.03
# billion parameters (7.1 h for one float32 upload at 10 Mbit/s, against 6.0 h for Llama 2 7B),
# but its rank-8 adapters on q and v shrink to 3,407,872 values, 10.9 s against 13.4 s: with
# grouped-query attention 8 key/value heads share the 32 query heads, so v is 4096 × 1024 and
# its adapter r·(4096 + 1024) instead of r·(4096 + 4096). The extra parameters are in the
# embeddings and MLP (a vocabulary of 128,256), where no adapter sits.
# <!-- END SOLUTION -->

# %% [markdown]
# ### Exercise 5 · Personalisation
#
# **(a)** Write `perplexity(model, x, y)`: exp of the mean cross-entropy of `model(x)`'s logits
# over the target tokens of `y` that are not `<pad>` (token 0), as the engine measures it.

# %%
def perplexity(model, x, y):
    """exp(mean cross-entropy of model(x) over the targets y that are not <pad>)."""
    # BEGIN SOLUTION
    logits = np.asarray(model(x), dtype=np.float64)
    top = logits.max(axis=-1, keepdims=True)
    log_z = np.log(np.exp(logits - top).sum(axis=-1)) + top[..., 0]
    losses = log_z - np.take_along_axis(logits, y[..., None], axis=-1)[..., 0]
    return float(np.exp(losses[y != data.ignore_class].mean()))
    # END SOLUTION


# %% tags=["self-check"]
exercises.check_perplexity(perplexity)
# BEGIN HIDDEN TESTS
exercises.check_perplexity(perplexity, seed=1)
# END HIDDEN TESTS

# %% [markdown]
# **(b)** Fine-tune a copy of the federated "full" model for a few epochs on user 0's training
# sentences only, into `personal_model` (`full()` builds a model of its own; give it the weights
# of `sims["full"].global_model()`, which is the simulation's model itself). Measure both models on
# user 0's test sentences: `user0_perplexity = {"global": …, "personal": …}`.

# %%
personal_model = ...  # the global model, fine-tuned further on user 0's sentences
user0_perplexity = ...  # {"global": perplexity, "personal": perplexity} on user 0's test
# BEGIN SOLUTION
import keras

own = split.client_indices[0]
test_0 = data.test_client_ids == 0
personal_model = full()  # a model of its own, with the federation's weights
personal_model.set_weights(sims["full"].global_model().get_weights())
loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=data.ignore_class)
personal_model.compile(optimizer=keras.optimizers.SGD(FULL_LR), loss=loss)
personal_model.fit(data.x_train[own], data.y_train[own], batch_size=BATCH_SIZE, epochs=5, verbose=0)
user0_perplexity = {
    name: perplexity(model, data.x_test[test_0], data.y_test[test_0])
    for name, model in {"global": tuned, "personal": personal_model}.items()
}
print({name: round(value, 2) for name, value in user0_perplexity.items()})
others = ~test_0
for name, model in {"global": tuned, "personal": personal_model}.items():
    other = perplexity(model, data.x_test[others], data.y_test[others])
    print(f"{name}, other users' test sentences: {other:.2f}")
print(f"'lets eat the', personalised: {top_words(personal_model, 'lets eat the')}")
# END SOLUTION

# %% tags=["self-check"]
federated = sims["full"].global_model()
exercises.check_personal_perplexity(user0_perplexity, federated, personal_model, data)

# %% [markdown]
# **(c)** How much does personalising help user 0, and what happens to the top words for "lets eat
# the"? What would you watch out for?
#
# <!-- BEGIN SOLUTION -->
# **Model answer.** A lot, for user 0: five epochs on their 48 sentences take the perplexity on
# their *test* sentences from 6.12 to 5.10, 17 % lower than the global model's. After "lets eat
# the" *coffee* rises from 0.18 to 0.21 and *soup* from 0.03 to 0.06 while *pizza* falls from 0.39 to
# 0.32: the model moves towards what user 0 writes. Watch out for three things. Overfitting: 48
# sentences are few, so the number of epochs and the learning rate need a held-out set of the
# user's own (here their test sentences; on a phone, a few kept aside). Forgetting: the personal
# model is worse for everyone else (on the other users' test sentences its perplexity is 8.16,
# the global model's 5.53), so it must stay on user 0's phone and never replace the global
# model. And cost: each user trains and keeps a copy of the whole model; a personal LoRA adapter
# or head (notebook 13) does the same with a small fraction of the memory and storage.
# <!-- END SOLUTION -->
