# %% [markdown]
# # 02 · Client splits: IID and non-IID
#
# *Purpose: make every kind of client split that federated learning research uses, measure how
# different the clients are with one number, and see what that difference does to FedAvg.*
#
# **Goals**
# - Explain why **non-IID** data — clients whose data differ — is the central difficulty of
#   federated learning.
# - Make and read the common splits: **label skew** (Dirichlet α, shards, *k* classes per client),
#   **quantity skew**, a **mixed** split, **feature skew** and a **natural** split.
# - Measure a split with the **heterogeneity index H** and the clients' **label entropy**, first by
#   hand, then with `fedlab`.
# - Explore splits live with a panel of sliders.
# - Run FedAvg on four splits of the same data and watch it slow down, wobble and drift as H grows.
#
# **You will need:** [01 · one round by hand](01_one_round_by_hand.ipynb); about 20 s to run on a
# laptop CPU (no GPU needed).

# %% [markdown]
# ## Setup
#
# `import fedlab` comes **first**, as in notebook 01, to quieten TensorFlow's start-up lines.
# `SplitExplorer` is the interactive panel of section 5.

# %%
import sys

FEDLAB = "fedlab-edu @ git+https://github.com/fedlab-edu/fedlab"  # what Colab installs
if "google.colab" in sys.modules:  # elsewhere `python3 dev.py lab` has installed fedlab already
    import subprocess

    subprocess.run([sys.executable, "-m", "pip", "install", "-q", FEDLAB], check=True)

# %%
import fedlab  # first: it quietens TensorFlow's start-up log lines
from fedlab import partition, plot
from fedlab.split_explorer import SplitExplorer

import matplotlib.pyplot as plt
import numpy as np

print(", ".join(f"{name} {version}" for name, version in fedlab.versions().items()))

# %% [markdown]
# The knobs. Every split below has `NUM_CLIENTS` clients; the last four settings are for the
# FedAvg experiment in section 6 (four runs of 30 rounds: a few seconds in all).

# %%
NUM_CLIENTS = 10  # clients in every split
SEED = 0  # seeds the splits and the training runs
NUM_ROUNDS = 30  # rounds of each FedAvg run (section 6)
CLIENTS_PER_ROUND = 5  # clients taking part in each round: half of them
LOCAL_EPOCHS = 1  # passes over its own data each client makes per round
BATCH_SIZE = 20  # local mini-batch size
CLIENT_LR = 0.1  # local SGD learning rate

# %% [markdown]
# ## 1. Why non-IID data is the heart of federated learning
#
# In notebook 01 every client held a small random sample of the whole dataset: the clients were
# **IID** (independent and identically distributed), and FedAvg came close to centralised
# training. Real clients are not like that. A phone's keyboard sees its owner's words; a hospital
# sees its own patients; a camera sees its own lighting. Clients differ in **which labels** they
# hold (*label skew*), in **how much** data they hold (*quantity skew*) and in **what the inputs
# look like** (*feature skew*).
#
# Why that hurts: each client's own loss has its own minimum. During local training every client
# walks towards *its* minimum — the clients **drift apart** — and the average of models that went
# in different directions is not the model that training on all the data would give. The server
# cannot look at the data to fix this; the algorithm has to cope. Notebooks 04 (client drift),
# 05 (FedProx and SCAFFOLD) and 13 (personalisation) all start from here.
#
# To study it, simulations make non-IID clients **on purpose**, by splitting one dataset in a
# controlled way, with a knob that sets how different the clients are. This notebook is a tour of
# those splits.

# %% [markdown]
# ## 2. The data, and two numbers that describe a split
#
# The 8×8 digits of notebook 01: 1 437 training images, with each digit about equally common.

# %% tags=["nbval-check-output"]
digits = fedlab.load_digits(seed=SEED)
print(digits.summary())
print("examples of each digit 0..9:", np.bincount(digits.y_train).tolist())

# %% [markdown]
# How different are the clients of a split? Two numbers answer it; both read only the clients'
# **label counts**.
#
# - **Total-variation distance of a client** from the whole: with $p_k(c)$ the share of label $c$
#   on client $k$ and $p(c)$ its share in all the data, $\tfrac12 \sum_c |p_k(c) - p(c)|$. It is
#   the fraction of the client's examples that would need another label for the client to look like
#   the whole: 0 for a perfect miniature, 0.9 for a client holding one digit of ten.
# - The **heterogeneity index** $H$ is its average over the clients.
# - The **label entropy** of a client, $-\sum_c p_k(c) \log_2 p_k(c)$ bits, counts how many
#   labels it effectively has: $\log_2 10 = 3.32$ bits for all ten digits equally, 1 bit for two,
#   0 for one.
#
# Compute them by hand for the IID split of notebook 01:

# %% tags=["nbval-check-output"]
iid_split = partition.iid(digits.y_train, NUM_CLIENTS, seed=SEED)
p_k = iid_split.label_distribution()  # [clients, classes], rows sum to 1
p = iid_split.label_counts.sum(axis=0) / iid_split.num_examples  # all the data
distance = 0.5 * np.abs(p_k - p).sum(axis=1)  # one number per client
entropy = -(p_k * np.log2(p_k)).sum(axis=1)  # every client has every digit: no log(0)
print("distance per client:", np.round(distance, 2).tolist())
print(f"H = {distance.mean():.2f}, mean label entropy {entropy.mean():.2f} bits")

# %% [markdown]
# `ClientSplit.heterogeneity()` and `ClientSplit.label_entropy()` compute the same (the second also
# copes with labels a client lacks). Check, then use them from now on:

# %% tags=["nbval-check-output"]
np.testing.assert_allclose(distance.mean(), iid_split.heterogeneity())
np.testing.assert_allclose(entropy, iid_split.label_entropy())
print("by hand == fedlab ✓")


# %% [markdown]
# Even an IID split has $H = 0.09$, not 0: a random sample of 143 images never holds the ten
# digits in exactly the global proportions. Keep this floor in mind — with smaller clients it
# rises (section 5).
#
# A small helper prints the numbers of any split, and the IID split's picture: one bar per client,
# coloured by digit.

# %%
def describe(split):
    """Print a split's heterogeneity H, mean label entropy and client sizes, rounded."""
    h, entropy = split.heterogeneity(), split.label_entropy().mean()
    sizes = f"{split.sizes.min()}–{split.sizes.max()}"
    print(f"{split.scheme}: H = {h:.2f}, label entropy {entropy:.2f} bits, sizes {sizes}")


# %% tags=["nbval-check-output"]
plot.plot_label_distribution(iid_split)
describe(iid_split)

# %% [markdown]
# Ten bars of the same height with the same ten colours in nearly the same amounts: ten
# miniatures of the whole dataset.
#
# ## 3. Every scheme on digits
#
# ### Label skew with a Dirichlet distribution
#
# The split most papers use (Yurochkin et al., 2019; Wang et al., 2020). For each digit, draw
# shares $(q_1, \dots, q_{10}) \sim \mathrm{Dir}(\alpha, \dots, \alpha)$ — ten random
# non-negative numbers summing to 1 — and give client $k$ the fraction $q_k$ of that digit's
# images. **α sets the skew**: with large α the shares are all close to 1/10 (IID); with small α
# one or two clients take most of each digit. (Hsu et al., 2019, draw the other way round: each
# client draws its own mix of digits $q_k \sim \mathrm{Dir}(\alpha\, p)$, $p$ the digits'
# overall shares, and is filled in those proportions. Both leave each client a few dominant
# digits at small α; `partition.dirichlet` is the per-digit one.) α = 1 first:

# %% tags=["nbval-check-output"]
dirichlet_1 = partition.dirichlet(digits.y_train, NUM_CLIENTS, alpha=1.0, seed=SEED)
plot.plot_label_distribution(dirichlet_1)
describe(dirichlet_1)

# %% [markdown]
# Every client still sees most digits, in clearly different amounts. Now α = 0.1:

# %% tags=["nbval-check-output"]
dirichlet_01 = partition.dirichlet(digits.y_train, NUM_CLIENTS, alpha=0.1, seed=SEED)
plot.plot_label_distribution(dirichlet_01)
describe(dirichlet_01)

# %% [markdown]
# Most clients are dominated by two or three digits (entropy 1.65 bits, about three effective
# labels), and the sizes now differ eightfold: a Dirichlet split skews quantity as well as labels,
# because a client that draws large shares of several digits ends up big. The partitioner retries
# until every client holds at least `min_size=10` examples.
#
# ### Shards: the FedAvg paper's pathological split
#
# McMahan et al. (2017) sorted MNIST by label, cut it into 200 equal **shards** and dealt two to
# each of 100 clients, so most clients saw only two digits. Here: 20 shards for our 10 clients. With every client the same size, a
# **heatmap** (clients across, digits up) reads better than bars:

# %% tags=["nbval-check-output"]
shards_2 = partition.shards(digits.y_train, NUM_CLIENTS, shards_per_client=2, seed=SEED)
plot.plot_label_distribution(shards_2, kind="heatmap")
describe(shards_2)

# %% [markdown]
# Two bright cells per column. A few clients show a third, faint digit: a shard that straddles the
# boundary between two digits in the sorted order.
#
# ### Exactly *k* classes per client
#
# `label_limit` makes "each client holds *k* digits" exact: digits are dealt round-robin, and each
# digit's images are shared equally among the clients holding it.

# %% tags=["nbval-check-output"]
two_classes = partition.label_limit(digits.y_train, NUM_CLIENTS, classes_per_client=2, seed=SEED)
plot.plot_label_distribution(two_classes, kind="heatmap")
describe(two_classes)

# %% [markdown]
# Exactly two digits each: entropy exactly 1 bit, and H = 0.80, the largest of any scheme so far
# (one digit per client would give 0.90).
#
# ### Quantity skew: different sizes, same labels
#
# Sizes proportional to lognormal draws with spread σ, examples dealt at random: a few big clients
# and many small ones, as with real devices — but every client's labels are still a random
# sample.

# %% tags=["nbval-check-output"]
quantity = partition.quantity_skew(digits.y_train, NUM_CLIENTS, sigma=1.0, seed=SEED)
plot.plot_label_distribution(quantity)
describe(quantity)

# %% [markdown]
# Sizes from 29 to 375, yet H = 0.11, hardly above the IID floor: H measures **label** skew only.
# The small clients' bars are the least balanced — the same sampling noise as before, on fewer
# examples. Weighting by example count (as FedAvg does) lets the big clients dominate the average.
#
# ### Mixed: SCAFFOLD's "similarity"
#
# Karimireddy et al. (2020) give each client a share *s* of IID data and fill the rest from the
# label-sorted data: *s* = 1 is IID, *s* = 0 fully sorted. With *s* = 0.2, as proportions:

# %% tags=["nbval-check-output"]
mixed = partition.mixed(digits.y_train, NUM_CLIENTS, similarity=0.2, seed=SEED)
plot.plot_label_distribution(mixed, kind="heatmap", normalize=True)
describe(mixed)

# %% [markdown]
# Each client's column has one bright cell (its own run of the sorted data, about one digit) on a
# dim background of every other digit: a gentler cousin of shards, with one knob from IID to
# sorted.
#
# ### A natural split: Synthetic(1, 1)
#
# Some datasets come already split: each example belongs to a device. The FedProx paper's
# Synthetic(α, β) benchmark (`fedlab.synthetic`) has 30 devices, each with its own labelling
# function, input distribution and size. `partition.natural` keeps those devices as clients:

# %% tags=["nbval-check-output"]
synthetic = fedlab.synthetic(1, 1, seed=SEED)
natural = partition.natural(synthetic.client_ids, synthetic.y_train)
plot.plot_label_distribution(natural, normalize=True)
describe(natural)

# %% [markdown]
# The most heterogeneous split here (H = 0.82, about 1.5 effective labels per device), and nobody
# chose a parameter: each device's labelling function favours a few classes. Real federated data
# (keyboards, hospitals) tends to look like this, not like IID.
#
# ### Feature skew: same labels, different inputs
#
# `partition.feature_skew` deals the examples IID, then transforms each client's **images**: client
# *k* rotates them by its own angle (from −45° to +45°), scales their brightness and adds a little
# noise — ten cameras mounted differently. It returns the transformed dataset with its split.

# %% tags=["nbval-check-output"]
skewed_digits, rotated = partition.feature_skew(digits, NUM_CLIENTS, max_rotation=45, seed=SEED)
describe(rotated)

# %% [markdown]
# H is exactly the IID split's: the labels did not change. The difference is in the pictures —
# clients 0, 3, 6 and 9 (−45°, −15°, +15°, +45°):

# %%
plot.plot_client_samples(skewed_digits, rotated, clients=[0, 3, 6, 9], per_client=8);

# %% [markdown]
# The same digits, tilted differently on each client. **H is blind to feature skew**: label-based
# measures see nothing, yet a model that learns "a 1 is a vertical stroke" on client 5 meets
# slanted 1s on client 9.
#
# ## 4. All the schemes side by side

# %% tags=["nbval-check-output"]
schemes = [iid_split, quantity, rotated, dirichlet_1, dirichlet_01, mixed, shards_2, two_classes]
print(f"{'scheme':<20} {'H':>5} {'entropy':>8}")
for split in schemes + [natural]:
    print(f"{split.scheme:<20} {split.heterogeneity():5.2f} {split.label_entropy().mean():8.2f}")

# %% [markdown]
# From IID to two classes per client, H climbs from 0.09 to 0.80 while the entropy falls from 3.3
# bits to 1. Quantity and feature skew sit at the IID floor, because H looks only at label
# proportions; they need other measures (sizes, what the inputs look like).
#
# ## 5. Now explore
#
# The panel below re-makes a split whenever you change a control and redraws its labels and sizes;
# the line under the sliders gives H, the mean label entropy and the range of client sizes. Only
# the current scheme's parameter is shown. (It needs a running kernel: in a static view you see
# the panel as it was saved.) Things to try:
#
# - **dirichlet**: slide α from 100 down to 0.01 and watch H climb; switch to *heatmap* and
#   *proportions* to see each client's mix.
# - **iid** with 100 clients: H is about 0.32 with no skew at all — the sampling-noise floor of
#   14-image clients.
# - **dirichlet** with α = 0.1 and 100 clients: the line turns red. Read the message: some client
#   cannot get 10 examples. (`SplitExplorer(digits, min_size=2)` relaxes that.)
# - **quantity_skew**: σ from 0 to 3 — the sizes histogram changes, H barely moves, except through
#   the smallest clients.
# - **mixed**: similarity from 1 down to 0 goes smoothly from IID to sorted.

# %%
explorer = SplitExplorer(digits, scheme="dirichlet", alpha=0.5, num_clients=NUM_CLIENTS, seed=SEED)
explorer

# %% [markdown]
# Whatever the panel shows is an ordinary `ClientSplit`, ready for an experiment —
# `explorer.split` (as saved here: its starting values):

# %% tags=["nbval-check-output"]
print(explorer.split)
describe(explorer.split)

# %% [markdown]
# ## 6. Does it matter? FedAvg on four splits
#
# Same data, same model, same seed, same 30 rounds — only the split changes: IID, Dirichlet α = 1,
# Dirichlet α = 0.1 and shards. Each round **half** the clients take part (`CLIENTS_PER_ROUND = 5`),
# as in real deployments where only some devices are online. That is where skew bites hardest:
# each round averages a different handful of label mixes.

# %%
algorithm = fedlab.FedAvg(local_epochs=LOCAL_EPOCHS, batch_size=BATCH_SIZE, client_lr=CLIENT_LR)


def model_fn():
    return fedlab.FedModel(10)


experiment = {"IID": iid_split, "α = 1": dirichlet_1, "α = 0.1": dirichlet_01, "shards": shards_2}

# %%
settings = dict(
    num_rounds=NUM_ROUNDS, clients_per_round=CLIENTS_PER_ROUND, seed=SEED, progress=False
)
histories = {}
for name, split in experiment.items():
    histories[name] = fedlab.simulate(algorithm, model_fn, digits, split, **settings)

# %%
fig, ax = plt.subplots(figsize=(7.5, 3.8), layout="constrained")
for name, history in histories.items():
    label = f"{name} (H = {experiment[name].heterogeneity():.2f})"
    plot.plot_accuracy(history, ax=ax, label=label)
ax.set_title(f"FedAvg on digits, {CLIENTS_PER_ROUND} of {NUM_CLIENTS} clients per round")
ax.legend(loc="lower right");

# %% [markdown]
# The same runs in numbers: the final accuracy; the mean of the last 10 rounds (steadier than
# any single round); the first round at 85 %; the *wobble*, the average jump of accuracy from one
# round to the next after round 10; and the mean client drift ‖w_k − w‖.

# %% tags=["nbval-check-output"]
print("split        H  final  last 10  ≥ 0.85 at  wobble  drift")
for name, history in histories.items():
    acc = history.test_accuracy
    reached = history.round[np.argmax(acc >= 0.85)] if (acc >= 0.85).any() else "never"
    wobble = np.abs(np.diff(acc[10:])).mean()
    h = experiment[name].heterogeneity()
    print(
        f"{name:<8} {h:5.2f} {acc[-1]:6.2f} {acc[-10:].mean():8.2f} {reached:>10} "
        f"{wobble:7.3f} {history.drift_mean.mean():6.2f}"
    )

# %% [markdown]
# **What to notice.** The further down the table (the larger H), the worse FedAvg does, in three
# ways:
#
# - **Slower.** IID passes 85 % around round 5, α = 1 around round 10, α = 0.1 around round 18,
#   shards only around round 27. Each round's average is pulled between clients that want
#   different things, so it makes less progress.
# - **Noisier.** The IID curve rises smoothly; the α = 0.1 and shards curves zig-zag, jumping
#   three to four times as much from round to round. With half the clients per round, a round
#   whose clients happen to hold few 3s forgets 3s. A single round's number can mislead: α = 0.1
#   ends about level with IID in round 30, but its last-10 mean is clearly lower.
# - **Worse where it ends up**, for the most skewed split: after 30 rounds shards averages about
#   0.84, some nine points below IID.
#
# And the cause, **client drift**: the more skewed the split, the further each client's local
# training carries it from the global model (about 0.3 for IID, 0.7 for shards). The drift plots of
# IID and shards, on the same scales:

# %%
fig, axes = plt.subplots(2, 2, figsize=(9, 5.6), sharex=True, sharey="col", layout="constrained")
for row, name in zip(axes, ["IID", "shards"], strict=True):
    plot.plot_drift(histories[name], axes=row)
    row[0].set_title(f"Client drift: {name}")
    row[1].set_title(f"Update agreement: {name}")

# %% [markdown]
# On IID clients every client moves about the same small distance and the updates agree with their
# average (cosines near 0.9 early on). On shards each client moves about twice as far, and its
# update points much less in the average's direction: every client is chasing its own two digits,
# and the average partly cancels them out. Notebook 04 studies drift properly; notebook 05 meets
# FedProx and SCAFFOLD, which were designed against it.

# %% [markdown]
# ## Summary
#
# - Real clients are **non-IID**: they differ in labels, in quantity and in inputs. Local training
#   then pulls each client towards its own minimum (**client drift**), and averaging no longer
#   gives the centralised answer.
# - `fedlab.partition` makes the standard splits from one dataset: `iid`, `dirichlet` (α: smaller
#   is more skewed), `shards`, `label_limit` (*k* classes), `quantity_skew` (σ), `mixed`
#   (similarity *s*), `feature_skew`, and `natural` for data that come split by device.
# - The **heterogeneity index** H (mean total-variation distance of each client's labels from the
#   whole) and the mean **label entropy** summarise label skew in two numbers. Even IID splits have
#   H > 0 from sampling noise; H cannot see quantity or feature skew.
# - `SplitExplorer` shows any split live; `explorer.split` is the split on screen.
# - On digits with half the clients per round, FedAvg gets **slower, noisier and drifts more** as H
#   grows; shards, the most skewed, is the worst.
#
# ## Exercises
#
# 1. **Everyone, every round.** Set `CLIENTS_PER_ROUND = 10` and re-run section 6. Which gaps
#    shrink, which remain? Why does full participation help non-IID splits most?
# 2. **More local work.** With `LOCAL_EPOCHS = 5`, does shards get better or worse compared with
#    IID? Look at the drift column before you answer.
# 3. **Is H a good predictor?** Run FedAvg on Dirichlet splits with α in 100, 10, 1, 0.3, 0.1,
#    0.03 and plot the mean accuracy of the last 10 rounds against H. Is the relation monotone?
#    Where does it break?
# 4. **The noise floor.** Compute H of `partition.iid` for 10, 30, 100 and 300 clients. Explain the
#    trend, and propose a corrected index that is 0 for IID splits of any size (hint: compare with
#    the H of an IID split with the same client sizes).
# 5. **Feature skew in training.** Run FedAvg on `skewed_digits` with the `rotated` split, and on
#    `partition.feature_skew(digits, NUM_CLIENTS, max_rotation=90.0)`. The test set is not
#    rotated: how much does accuracy suffer, although H is at the IID floor?
# 6. **Shards per client.** Repeat the experiment with `shards_per_client` 1, 2 and 5. How many
#    shards per client does FedAvg need to get within two points of IID?
# 7. **A natural split.** Run FedAvg on `synthetic` with the `natural` split and with
#    `partition.iid(synthetic.y_train, 30)`. Which gets higher test accuracy, and why is the
#    comparison harder to read than on digits? (Think about what the test set is.)
