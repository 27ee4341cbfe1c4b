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
# Each exercise below has a cell for your answer, in code, and a **check** cell after it. Run the
# check: it prints ✓ and what it verified, or ✗ and the mistake it recognised, with a hint. The
# parts that ask you to explain have a cell for your answer in words. Every run reuses section
# 6's `algorithm`, `model_fn` and `settings`, and changes only what the exercise says.
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
# 6. **Shards per client.** Repeat the experiment with `shards_per_client` 1, 2, 5 and 10. How
#    many shards per client does FedAvg need to get within two points of IID?
# 7. **A natural split.** Run FedAvg on `synthetic` with the `natural` split and with
#    `partition.iid(synthetic.y_train, 30)`. Which gets higher test accuracy, and why is the
#    comparison harder to read than on digits? (Think about what the test set is.)

# %%
from fedlab import exercises

# %% [markdown]
# ### Exercise 1 · Everyone, every round
#
# Re-run section 6's four runs with all `NUM_CLIENTS` clients in every round, into a dict
# `full_runs` with the same keys as `histories`. Print, for each split, the mean accuracy of the
# last 10 rounds and the wobble with 5 and with 10 clients per round.

# %%
full_runs = ...  # {split name: History}, section 6's runs with every client in every round
# BEGIN SOLUTION
everyone = {**settings, "clients_per_round": NUM_CLIENTS}
full_runs = {
    name: fedlab.simulate(algorithm, model_fn, digits, split, **everyone)
    for name, split in experiment.items()
}
print("split    last 10: 5 clients  10 clients   wobble: 5 clients  10 clients")
for name in experiment:
    half, full = histories[name].test_accuracy, full_runs[name].test_accuracy
    wobble = [np.abs(np.diff(acc[10:])).mean() for acc in (half, full)]
    print(f"{name:<8} {half[-10:].mean():18.2f} {full[-10:].mean():11.2f}", end=" ")
    print(f"{wobble[0]:18.3f} {wobble[1]:11.3f}")
# END SOLUTION

# %% tags=["self-check"]
everyone_wanted = {"clients_per_round": NUM_CLIENTS}
exercises.check_runs(full_runs, histories, name="full_runs", what="section 6", **everyone_wanted)

# %% [markdown]
# **Which gaps shrink, which remain? Why does full participation help non-IID splits most?**
#
# <!-- BEGIN SOLUTION -->
# **Model answer.** The wobble nearly disappears: with every client in every round it falls to
# about 0.01 for every split, from 0.03–0.04 for α = 0.1 and shards. The last-10 accuracy of the
# skewed splits rises (α = 0.1 from about 0.90 to 0.93, shards from 0.84 to 0.89), while IID and
# α = 1 hardly move. What remains is the gap of the most skewed split: shards still ends about five
# points below IID, and its drift is as large as before. Full participation removes the
# *sampling* noise: with half the clients, each round averages a different handful of label
# mixes, and a round without the clients holding 3s forgets 3s. IID clients all look alike, so
# which five take part hardly matters; non-IID clients differ, so it matters a lot. It cannot
# remove the *drift*: every client still walks towards its own digits during local training.
# <!-- END SOLUTION -->

# %% [markdown]
# ### Exercise 2 · More local work
#
# Re-run section 6's four runs with five local epochs, into `epoch_runs` (same keys). Print the
# last-10 accuracy and the mean drift of each split with one and with five local epochs.

# %%
epoch_runs = ...  # {split name: History}, section 6's runs with local_epochs=5
# BEGIN SOLUTION
five = fedlab.FedAvg(local_epochs=5, batch_size=BATCH_SIZE, client_lr=CLIENT_LR)
epoch_runs = {
    name: fedlab.simulate(five, model_fn, digits, split, **settings)
    for name, split in experiment.items()
}
print("split    last 10: 1 epoch  5 epochs   drift: 1 epoch  5 epochs")
for name in experiment:
    one, many = histories[name], epoch_runs[name]
    accuracy = [run.test_accuracy[-10:].mean() for run in (one, many)]
    drift = [run.drift_mean.mean() for run in (one, many)]
    print(f"{name:<8} {accuracy[0]:16.2f} {accuracy[1]:9.2f} {drift[0]:15.2f} {drift[1]:9.2f}")
# END SOLUTION

# %% tags=["self-check"]
exercises.check_runs(epoch_runs, histories, name="epoch_runs", what="section 6", local_epochs=5)

# %% [markdown]
# **Does shards get better or worse compared with IID?**
#
# <!-- BEGIN SOLUTION -->
# **Model answer.** Both get better in absolute terms — five epochs is five times the local work
# per round — but shards gains no ground on IID: IID rises from about 0.93 to 0.96, shards from
# about 0.84 to 0.86, and the gap stays about ten points. The drift column says why: with five
# epochs every client walks further from the global model, IID from about 0.3 to 0.6 and shards
# from about 0.7 to 0.9, the most of all. On IID clients the extra steps go in similar directions
# and the average keeps them; on shards each client runs further towards its own two digits, and
# the average cancels much of that work. More local work helps least where the clients differ
# most, and with more epochs or more rounds it can make things worse (notebook 04).
# <!-- END SOLUTION -->

# %% [markdown]
# ### Exercise 3 · Is H a good predictor?
#
# **(a)** Write `last10_mean`: the mean of the last 10 values of a per-round series.

# %%
def last10_mean(accuracy):
    """The mean of the last 10 values of a per-round series such as `history.test_accuracy`."""
    # BEGIN SOLUTION
    return float(np.mean(accuracy[-10:]))
    # END SOLUTION


# %% tags=["self-check"]
exercises.check_last10_mean(last10_mean)
# BEGIN HIDDEN TESTS
exercises.check_last10_mean(last10_mean, seed=1)
# END HIDDEN TESTS

# %% [markdown]
# **(b)** For each α in `ALPHAS`, make the Dirichlet split (`seed=SEED`), run FedAvg on it and
# keep its H in `alpha_h` and its last-10 accuracy in `alpha_accuracy`, in the order of `ALPHAS`.
# Plot the accuracy against H.

# %%
ALPHAS = [100, 10, 1, 0.3, 0.1, 0.03]
alpha_h, alpha_accuracy = ..., ...  # one H and one last-10 accuracy per α
# BEGIN SOLUTION
alpha_h, alpha_accuracy = [], []
for alpha in ALPHAS:
    split = partition.dirichlet(digits.y_train, NUM_CLIENTS, alpha=alpha, seed=SEED)
    run = fedlab.simulate(algorithm, model_fn, digits, split, **settings)
    alpha_h.append(split.heterogeneity())
    alpha_accuracy.append(last10_mean(run.test_accuracy))
fig, ax = plt.subplots(figsize=(5.5, 3), layout="constrained")
ax.plot(alpha_h, alpha_accuracy, marker="o")
for alpha, h, accuracy in zip(ALPHAS, alpha_h, alpha_accuracy, strict=True):
    ax.annotate(f"α = {alpha}", (h, accuracy), xytext=(4, 4), textcoords="offset points")
ax.set(xlabel="heterogeneity H", ylabel="accuracy, mean of last 10 rounds");
# END SOLUTION

# %% tags=["self-check"]
sweep = {"labels": digits.y_train, "num_clients": NUM_CLIENTS, "seed": SEED}
exercises.check_alpha_sweep(ALPHAS, alpha_h, alpha_accuracy, **sweep)

# %% [markdown]
# **(c)** Is the relation monotone? Where does it break?
#
# <!-- BEGIN SOLUTION -->
# **Model answer.** Not quite. From α = 100 to α = 1 (H from about 0.04 to 0.36) the accuracy
# stays flat at 0.92–0.93 and even goes *up* once, from α = 100 to α = 10: differences of a point
# are within the noise of one seeded run, so H has nothing to predict there. It falls only beyond
# H ≈ 0.5 (α ≤ 0.3), slowly to about 0.91 at α = 0.3 and 0.90 at α = 0.1, then steeply to about
# 0.79 at α = 0.03 (H ≈ 0.79). So H predicts the ordering only roughly: it ignores which labels a client holds and how
# much data it has (the Dirichlet split skews sizes too), it cannot see feature skew (exercise 5),
# and a single run is too noisy to rank splits whose H differs by 0.1. Note also that α = 100
# scores *below* the IID floor of section 2: per-digit Dirichlet shares are more even than random
# sampling.
# <!-- END SOLUTION -->

# %% [markdown]
# ### Exercise 4 · The noise floor
#
# **(a)** Compute H of `partition.iid(digits.y_train, n, seed=SEED)` for n in 10, 30, 100 and 300
# clients, as a dict `iid_floor` `{n: H}`.

# %%
iid_floor = ...  # {number of clients: H of the IID split}
# BEGIN SOLUTION
iid_floor = {
    n: partition.iid(digits.y_train, n, seed=SEED).heterogeneity() for n in (10, 30, 100, 300)
}
print({n: round(h, 2) for n, h in iid_floor.items()})
# END SOLUTION

# %% tags=["self-check"]
exercises.check_iid_floor(iid_floor, digits.y_train, (10, 30, 100, 300))

# %% [markdown]
# **(b)** Write `corrected_heterogeneity(split, labels)`: H of `split` minus the H of an IID split
# with the same client sizes (shuffle the indices with a seeded generator, cut them at the
# sizes of `split`), so that IID splits of any size score about 0.

# %%
def corrected_heterogeneity(split, labels):
    """H of `split` minus the H of an IID split with the same client sizes (0 for IID)."""
    # BEGIN SOLUTION
    shuffled = np.random.default_rng(SEED).permutation(len(labels))[: split.num_examples]
    same_sizes = np.split(shuffled, np.cumsum(split.sizes)[:-1])
    floor = fedlab.ClientSplit.from_indices(same_sizes, labels).heterogeneity()
    return split.heterogeneity() - floor
    # END SOLUTION


# %% tags=["self-check"]
exercises.check_corrected_heterogeneity(corrected_heterogeneity, digits.y_train)
# BEGIN HIDDEN TESTS
exercises.check_corrected_heterogeneity(corrected_heterogeneity, digits.y_train, seed=1)
# END HIDDEN TESTS

# %% [markdown]
# **(c)** Explain the trend of (a).
#
# <!-- BEGIN SOLUTION -->
# **Model answer.** H of an IID split grows with the number of clients — about 0.09, 0.16, 0.32
# and 0.61 for 10, 30, 100 and 300 — although nothing is skewed: it measures sampling noise. A
# client of n_k random examples holds each digit in proportions that differ from the global ones
# by about √(p(1 − p) / n_k) per digit, so the total-variation distance shrinks only like 1 / √n_k;
# with 300 clients of about 5 images each, a client cannot even hold all ten digits. So H compares
# badly across numbers of clients. Subtracting the H of an IID split with the same sizes removes
# the floor: `corrected_heterogeneity` is about 0 for IID splits of any size and still about 0.7
# for shards. (Dividing instead gives 1 for IID; an expected value over several IID draws would be
# steadier than one draw.)
# <!-- END SOLUTION -->

# %% [markdown]
# ### Exercise 5 · Feature skew in training
#
# Run FedAvg on `skewed_digits` with the `rotated` split, and on the split that
# `partition.feature_skew(digits, NUM_CLIENTS, max_rotation=90.0, seed=SEED)` makes, into
# `rotation_runs` with keys `"±45°"` and `"±90°"`. Print the last-10 accuracy of each beside IID's.

# %%
rotation_runs = ...  # {"±45°": History, "±90°": History}
# BEGIN SOLUTION
skewed_90, rotated_90 = partition.feature_skew(digits, NUM_CLIENTS, max_rotation=90.0, seed=SEED)
rotation_runs = {
    "±45°": fedlab.simulate(algorithm, model_fn, skewed_digits, rotated, **settings),
    "±90°": fedlab.simulate(algorithm, model_fn, skewed_90, rotated_90, **settings),
}
for name, run in {"IID": histories["IID"], **rotation_runs}.items():
    print(f"{name:>5}: last-10 accuracy {last10_mean(run.test_accuracy):.2f}")
# END SOLUTION

# %% tags=["self-check"]
tilted = {"±45°": "feature_skew(±45°)", "±90°": "feature_skew(±90°)"}
exercises.check_runs(
    rotation_runs,
    histories["IID"],
    name="rotation_runs",
    what="section 6's IID run",
    dataset="digits+feature_skew",
    split=tilted,
)

# %% [markdown]
# **How much does accuracy suffer, although H is at the IID floor?**
#
# <!-- BEGIN SOLUTION -->
# **Model answer.** A lot: about ten points at ±45° (0.83 against IID's 0.93) and over twenty at
# ±90° (about 0.71), with H = 0.09 for all three — the labels are dealt exactly as in the IID
# split. The clients train on tilted, rescaled, noisy images and the test set is upright, so the
# average model must recognise digits at every angle the clients hold and is then tested on one
# it saw only on the middle clients; at ±90° some clients' 6s look like other clients' 9s. Label
# measures such as H cannot warn about this: feature skew needs a measure of the inputs, or a
# look at the clients' data as in section 3.
# <!-- END SOLUTION -->

# %% [markdown]
# ### Exercise 6 · Shards per client
#
# Run FedAvg on `partition.shards` splits with 1, 2, 5 and 10 shards per client (`seed=SEED`), into
# `shard_runs` keyed by the number of shards. Print how many points each ends below IID (last-10
# accuracy).

# %%
shard_runs = ...  # {shards per client: History}
# BEGIN SOLUTION
shard_runs = {}
for s in (1, 2, 5, 10):
    shard_split = partition.shards(digits.y_train, NUM_CLIENTS, shards_per_client=s, seed=SEED)
    shard_runs[s] = fedlab.simulate(algorithm, model_fn, digits, shard_split, **settings)
iid_level = last10_mean(histories["IID"].test_accuracy)
for s, run in shard_runs.items():
    print(
        f"{s:2d} shards per client: {100 * (iid_level - last10_mean(run.test_accuracy)):4.1f}",
        end="",
    )
    print(" points below IID")
# END SOLUTION

# %% tags=["self-check"]
shard_schemes = {s: f"shards({s}/client)" for s in (1, 2, 5, 10)}
exercises.check_runs(
    shard_runs, histories["IID"], name="shard_runs", what="section 6's IID run", split=shard_schemes
)

# %% [markdown]
# **How many shards per client does FedAvg need to get within two points of IID?**
#
# <!-- BEGIN SOLUTION -->
# **Model answer.** About ten. One shard per client (one digit each) ends some 25 points below
# IID, two shards about 10, five about 4.5, ten less than one. With ten shards of 72 images each,
# a client holds most digits, and H falls to about 0.34, near the IID floor of small samples. So
# the "pathological" split of the FedAvg paper is pathological because of its two shards per
# client; with a few more it behaves almost like IID.
# <!-- END SOLUTION -->

# %% [markdown]
# ### Exercise 7 · A natural split
#
# Run FedAvg on `synthetic` with the `natural` split and with `partition.iid(synthetic.y_train, 30,
# seed=SEED)`, into `synthetic_runs` with keys `"natural"` and `"IID"`. Print the last-10 accuracy
# of both.

# %%
synthetic_runs = ...  # {"natural": History, "IID": History}, both on synthetic
# BEGIN SOLUTION
synthetic_splits = {"natural": natural, "IID": partition.iid(synthetic.y_train, 30, seed=SEED)}
synthetic_runs = {
    name: fedlab.simulate(algorithm, model_fn, synthetic, split, **settings)
    for name, split in synthetic_splits.items()
}
for name, run in synthetic_runs.items():
    print(f"{name:>7}: last-10 accuracy {last10_mean(run.test_accuracy):.2f}")
# END SOLUTION

# %% tags=["self-check"]
by_device = {"natural": "natural", "IID": "iid"}
exercises.check_runs(
    synthetic_runs,
    histories["IID"],
    name="synthetic_runs",
    what="section 6's IID run",
    dataset=synthetic.name,
    num_clients=30,
    split=by_device,
)

# %% [markdown]
# **Which gets higher test accuracy, and why is the comparison harder to read than on digits?**
#
# <!-- BEGIN SOLUTION -->
# **Model answer.** The IID split, about 0.86 against 0.79 for the natural one. But on digits both
# splits held the same kind of data and the question was only how it was dealt out; here the
# devices *disagree*: each has its own labelling function, so the same x can deserve different
# labels on two devices, and no single model is right for all of them. The test set is the
# devices' own held-out examples, pooled, so it mixes those conflicting functions in proportion to
# the devices' sizes: a few big devices dominate it. The IID split trains directly on that pooled
# mixture; the natural split trains on the devices, five at a time, pulling towards each device's
# own function. The gap mixes the optimisation cost of non-IID clients with the fact that one
# global model cannot fit every device — a per-device accuracy (notebook 13, personalisation) tells
# the two apart.
# <!-- END SOLUTION -->
