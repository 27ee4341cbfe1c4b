# %% [markdown]
# # 15 · Poisoning and robust aggregation
#
# *Purpose: see what a malicious client can do to federated training — wreck it, or hide a
# backdoor in it — and what the robust aggregates that defend against it cost when nobody
# attacks.*
#
# **Goals**
# - Say what a malicious client controls (its data and its update) and where fedlab puts an
#   attack (a client behaviour) and a defence (an aggregator, the aggregate slot).
# - Compute the coordinate-wise median in one line of NumPy and a Krum score by hand, and check
#   both against `fedlab.robust`.
# - Sweep 0 to 6 sign-flipping clients among 10: the plain mean breaks with one, and the trimmed
#   mean, the median and Krum each break where the theory says they may (median: f < K/2;
#   Krum: K > 2f + 2).
# - Watch a boosted backdoor hide inside an accurate model, and norm clipping take it out.
# - Measure the price: on a non-IID split with *no* attacker, how much accuracy each defence
#   costs by discarding honest but unusual clients.
# - See why robust aggregation and secure aggregation pull in opposite directions.
#
# **You will need:** [01 · One round by hand](01_one_round_by_hand.ipynb) (client updates),
# [02 · Client splits](02_client_splits.ipynb) (the Dirichlet split),
# [11 · Differential privacy](11_differential_privacy.ipynb) (norm clipping) and
# [12 · Secure aggregation](12_secure_aggregation.ipynb); about 30 s to run; CPU is fine.

# %% [markdown]
# ## Setup
#
# `import fedlab` comes **first**: it quietens TensorFlow's start-up log lines before TensorFlow
# loads. The attacks live in `fedlab.poisoning`, the defences in `fedlab.robust`.

# %%
import sys

FEDLAB = "fedlab-edu @ git+https://github.com/fedlab-edu/fedlab"  # what Colab installs
if "google.colab" in sys.modules:  # elsewhere `python3 dev.py lab` has installed fedlab already
    import subprocess

    subprocess.run([sys.executable, "-m", "pip", "install", "-q", FEDLAB], check=True)

# %%
import fedlab  # first: it quietens TensorFlow's start-up log lines
from fedlab import plot, poisoning, robust
from fedlab.aggregators import ClientUpdates
from fedlab.rounds import DivergenceError
from fedlab.secure_aggregation import SecureAggregation

from collections import Counter

import matplotlib.pyplot as plt
import numpy as np

print(", ".join(f"{name} {version}" for name, version in fedlab.versions().items()))

# %% [markdown]
# The run sizes: FedAvg on digits with 10 clients, **all of them in every round** (K = 10), so
# a run with n attackers has n of them in every round. A run takes a fraction of a second; the
# notebook makes about fifty.

# %%
NUM_CLIENTS = 10  # K: every client takes part in every round
NUM_ROUNDS = 20
CLIENT_LR = 0.1
LOCAL_EPOCHS = 1
BATCH_SIZE = 16
SEED = 0

# %% [markdown]
# The attacks' and defences' settings, explained where they are used:

# %%
BOOST = 20  # a sign-flipper sends −BOOST × its update
ATTACKER_COUNTS = tuple(range(7))  # 0 … 6 attackers among the 10
BETA = 0.2  # the trimmed mean cuts ⌊βK⌋ = 2 values at each end
KRUM_F = 3  # Krum's num_byzantine: the most 10 clients a round allow (K > 2f + 2)
CLIP_NORM = 0.5  # norm clipping's C, about an honest update's norm (section 5)
ALPHA = 0.1  # the Dirichlet split of section 6: a few classes per client

# %% [markdown]
# ## 1. The other threat: a malicious client
#
# Notebooks 10–12 were about a **curious server**: it follows the protocol but reads what the
# clients send — a digit rebuilt from one gradient (10), noise so that no single client
# matters (11), masks so that it sees only the sum (12). Now turn it around: the server is
# honest and some **clients are malicious**. A client controls two things the server can never
# check, because it never sees them:
#
# - its **data** (data poisoning): it trains on wrong labels, or stamps a trigger on some images;
# - its **update** (model poisoning): it sends whatever it likes instead of Δ_k — the update
#   reversed, scaled up, or noise.
#
# Two goals: **untargeted** attacks wreck the model (accuracy falls), **targeted** ones plant a
# behaviour — a backdoor — and keep the clean accuracy high, so that nobody notices.
#
# In fedlab an **attack is a client behaviour** (`fedlab.poisoning.Attack`: `poison_data` before
# training, `tamper` at upload), and `poisoning.Attackers(attack, count=n)` picks n malicious
# clients from the run's seed, the same ones for the whole run. A **defence is an aggregator**:
# it goes in the aggregate slot of notebook 00's round, e.g.
# `fedavg.with_aggregator(robust.Krum(num_byzantine=3))`. Nothing else in the round changes.

# %% [markdown]
# ## 2. By hand: ten updates, two of them poisoned
#
# Ten clients' updates with two coordinates each, so we can draw them. Eight are honest and
# roughly agree; two are **sign-flippers**: each sends −3 times its honest update.

# %%
rng = np.random.default_rng(SEED)
honest = rng.normal([1.0, 0.5], 0.2, size=(8, 2))  # eight honest updates that roughly agree
flipped = -3 * rng.normal([1.0, 0.5], 0.2, size=(2, 2))  # two attackers: −3 × their update
updates = np.vstack([honest, flipped])  # K = 10 rows; clients 8 and 9 are malicious
K, f = len(updates), 2

# %% [markdown]
# FedAvg's aggregate is the mean: each attacker moves it by its update over K, however large.
# The **coordinate-wise median** takes the middle value of each coordinate over the clients —
# one line of NumPy:

# %% tags=["nbval-check-output"]
mean = updates.mean(axis=0)
median = np.median(updates, axis=0)  # each coordinate's median over the clients
print("honest mean ", honest.mean(axis=0).round(3))
print("mean        ", mean.round(3))
print("median      ", median.round(3))

# %% [markdown]
# Two attackers of ten dragged the mean from 0.92 to 0.14 in the first coordinate; the median
# barely moved.
# The same with `fedlab.robust`: a defence's `apply` takes what reached the server (a
# `ClientUpdates`, one row per client) and returns its aggregate. A small helper feeds it our
# matrix:

# %%
def aggregate(aggregator, updates):
    """What a fedlab.robust aggregator makes of the [K, d] updates (one example per client)."""
    received = ClientUpdates([updates], num_examples=np.ones(len(updates)))
    return aggregator.apply({}, received, np.random.default_rng(SEED))


# %% [markdown]
# Scratch → package: the package's median must equal ours. The **trimmed mean** (β = 0.2)
# drops the ⌊βK⌋ = 2 largest and 2 smallest values of each coordinate and averages the rest
# (you write it in exercise 1):

# %% tags=["nbval-check-output"]
np.testing.assert_allclose(aggregate(robust.CoordinateMedian(), updates).update[0], median)
trimmed = aggregate(robust.TrimmedMean(beta=BETA), updates).update[0]
print("trimmed mean", trimmed.round(3), f"  ({robust.TrimmedMean(BETA).trimmed(K)} cut each end)")

# %% [markdown]
# **Krum** (Blanchard et al. 2017) keeps a whole update instead: the one closest to its
# neighbours. Each client's **score** is the sum of its squared distances to its K − f − 2
# nearest *other* updates, f being the number of attackers Krum is told to tolerate; the lowest
# score wins. Client 0's score, step by step:

# %%
distances = ((updates - updates[0]) ** 2).sum(axis=1)  # ‖Δ_0 − Δ_j‖² for every client j
others = np.delete(distances, 0)  # client 0 is not its own neighbour
score_0 = np.sort(others)[: K - f - 2].sum()  # its K − f − 2 = 6 nearest

# %% [markdown]
# `robust.krum_scores` computes every client's score from the matrix of squared distances
# (`robust.pairwise_distances`); client 0's must be ours:

# %% tags=["nbval-check-output", "last-digit-tolerance"]
scores = robust.krum_scores(robust.pairwise_distances(updates), K - f - 2)
np.testing.assert_allclose(scores[0], score_0)
print(f"client 0: by hand {score_0:.4f}, fedlab {scores[0]:.4f}")
print("every score:", scores.round(2))

# %% [markdown]
# The two attackers' scores are huge: each is far from everyone, even from the other. Krum keeps
# the client with the smallest score and returns its update as the aggregate (`defence_kept`
# says which):

# %% tags=["nbval-check-output", "last-digit-tolerance"]
krum = aggregate(robust.Krum(num_byzantine=f), updates)
print("Krum keeps client", krum.metrics["defence_kept"], "→", krum.update[0].round(3))

# %% [markdown]
# The picture: the honest cloud, the two attackers, and where each aggregate lands.

# %%
fig, ax = plt.subplots(figsize=(5.5, 3.6), layout="constrained")
ax.scatter(*honest.T, color="C0", label="honest updates")
ax.scatter(*flipped.T, color="C3", marker="x", s=60, label="sign-flipped ×3")
picks = {"mean": mean, "median": median, "trimmed mean": trimmed, "Krum": krum.update[0]}
for (name, point), marker, color in zip(picks.items(), "sD^*", "C1 C2 C4 C8".split(), strict=True):
    ax.scatter(*point, marker=marker, s=110, color=color, edgecolor="black", label=name)
ax.set(xlabel="coordinate 1", ylabel="coordinate 2", title="Ten updates, two poisoned")
ax.legend(fontsize="small", loc="upper left");

# %% [markdown]
# The mean sits between the two groups, where no client is; the three robust aggregates stay in
# the honest cloud. The median and the trimmed mean work coordinate by coordinate (their result
# is nobody's update); Krum returns one real client's update and throws the other nine away.

# %% [markdown]
# ## 3. Where each defence breaks
#
# Now on digits. The attack: each malicious client trains honestly, then sends
# **−20 × its update** (`poisoning.SignFlip(scale=20)`). Why boost it? One plain sign-flipper
# among ten leaves the mean at (9 − 1)/10 = 0.8 of the honest step: slower, not broken. With the
# boost, one attacker outweighs nine honest clients, (9 − 20)/10 < 0, and the model is pushed
# *up* the loss.
#
# What the theory says each aggregate survives, with K = 10 clients a round and f attackers:
#
# | aggregate | survives | with K = 10 | reference |
# |---|---|---|---|
# | mean (FedAvg) | no attacker: a single one moves it anywhere | f = 0 | — |
# | trimmed mean, β | f ≤ ⌊βK⌋ (the values cut at each end) | f ≤ 2 | Yin et al. 2018 |
# | coordinate median | f < K/2 | f ≤ 4 | Yin et al. 2018 |
# | Krum(num_byzantine = f) | needs K > 2f + 2 | f ≤ 3 | Blanchard et al. 2017 |
#
# The data, the split, the model and FedAvg, as in earlier notebooks:

# %%
digits = fedlab.load_digits()
split = fedlab.partition.iid(digits.y_train, NUM_CLIENTS, seed=SEED)
mlp = fedlab.models.model_fn("mlp", 10)  # hashable: every run below shares one compiled kernel
fedavg = fedlab.FedAvg(client_lr=CLIENT_LR, local_epochs=LOCAL_EPOCHS, batch_size=BATCH_SIZE)
sign_flip = poisoning.SignFlip(scale=BOOST)

# %% [markdown]
# One helper runs FedAvg with a defence in its aggregate slot (`None`: the plain mean). When
# the attackers win, the loss explodes and fedlab stops the run with a `DivergenceError`,
# which keeps the history up to the last good round; the helper returns it instead of a
# History.

# %%
def run(aggregator=None, attackers=None, data_split=split):
    """A seeded run of FedAvg + ``aggregator``; the DivergenceError of a run that diverged."""
    algorithm = fedavg if aggregator is None else fedavg.with_aggregator(aggregator)
    settings = {"seed": SEED, "progress": False, "attackers": attackers}
    try:
        return fedlab.simulate(algorithm, mlp, digits, data_split, NUM_ROUNDS, **settings)
    except DivergenceError as error:
        return error


# %% [markdown]
# First the plain mean with **one** attacker:

# %%
one = run(attackers=poisoning.Attackers(sign_flip, count=1))
print("malicious client:", one.history.config["attackers"]["malicious"])
print("accuracy per round:", one.history.test_accuracy.round(2))
print(one)

# %% [markdown]
# One client of ten took the accuracy to **0** — not chance (0.1) but worse: the model learnt to
# avoid the right answer — and then the loss exploded. (The message's advice, a smaller
# `client_lr`, is for honest runs; nothing is wrong with the learning rate here.)
#
# Krum with f = 4 would need K > 2·4 + 2 = 10 clients a round: fedlab refuses it **before round
# 1**, rather than run Krum outside its guarantee. That refusal *is* the theory:

# %% tags=["nbval-check-output"]
try:
    run(robust.Krum(num_byzantine=4))
except ValueError as error:
    print("ValueError:", error)

# %% [markdown]
# So Krum runs with `num_byzantine=3`, the most 10 clients allow, whatever the real number of
# attackers (the server does not know it). The four aggregates against 0 … 6 attackers: 28 runs,
# about 6 s.

# %%
DEFENCES = {
    "mean (FedAvg)": None,
    "trimmed mean β = 0.2": robust.TrimmedMean(beta=BETA),
    "median": robust.CoordinateMedian(),
    "Krum f = 3": robust.Krum(num_byzantine=KRUM_F),
}
sweep = {
    name: {n: run(defence, poisoning.Attackers(sign_flip, count=n)) for n in ATTACKER_COUNTS}
    for name, defence in DEFENCES.items()
}

# %% [markdown]
# Each run's final accuracy, or ✗ and the round in which it diverged:

# %%
def outcome(result):
    """A run's final test accuracy, or ✗ and the round in which it diverged."""
    if isinstance(result, DivergenceError):
        return f"✗ r{result.round}"
    return f"{result.test_accuracy[-1]:.2f}"


# %%
print(f"{'attackers':<22}" + "".join(f"{n:>7}" for n in ATTACKER_COUNTS))
for name, runs in sweep.items():
    print(f"{name:<22}" + "".join(f"{outcome(r):>7}" for r in runs.values()))

# %% [markdown]
# `fedlab.plot.plot_breakdown` draws it: one line per defence, a cross where it broke.

# %%
plot.plot_breakdown(sweep, chance=0.1);

# %% [markdown]
# Where each broke, against the theory's bound:

# %% tags=["nbval-check-output"]
THEORY = {"mean (FedAvg)": 0, "trimmed mean β = 0.2": 2, "median": 4, "Krum f = 3": KRUM_F}
for name, runs in sweep.items():
    broke = min(n for n, r in runs.items() if isinstance(r, DivergenceError))
    survived = f"survived up to {broke - 1}, broke at {broke}"
    print(f"{name:<21} {survived};  guaranteed up to {THEORY[name]}")

# %% [markdown]
# What to notice:
#
# - **The mean has no defence at all**: one boosted client of ten breaks it; its *breakdown
#   point* — the share of bad clients it can bear — is 0.
# - **The trimmed mean and the median break exactly where the theory says.** The trimmed mean
#   cuts 2 values at each end of a coordinate; the attackers all sit at the *same* end (opposite
#   to the honest updates), so the third one stays in the mean. The median holds while fewer than
#   half the values are bad; with 5 of 10, `np.median` averages the 5th and 6th values, one of
#   them an attacker's.
# - **Krum held beyond its guarantee** — up to 5 attackers with f = 3 — and broke only when the
#   attackers were the majority. Its bound is what it can promise against *any* attack; these
#   attackers each flip their own update, so they are far from each other too and never form a
#   tight group Krum would prefer. An attack designed against Krum breaks it sooner (exercise 2).
# - With no attacker, every defence reaches the mean's 0.93, Krum included, although it keeps
#   one client's update a round and throws away the other nine: on IID data any client's update
#   will do. Section 6 shows what happens when the clients differ.

# %% [markdown]
# ## 4. What the defences did, round by round
#
# Each round's record says who attacked (`malicious`) and whom a selecting defence kept
# (`defence_kept`). Krum with 3 and 5 attackers, and with 6:

# %%
for n in (3, 5):
    rounds = sweep["Krum f = 3"][n].rounds
    kept = [r.defence_kept[0] for r in rounds]
    caught = sum(k in r.malicious for k, r in zip(kept, rounds, strict=True))
    print(f"{n} attackers {rounds[0].malicious}: kept {kept}; an attacker {caught} times")
six = sweep["Krum f = 3"][6].history.rounds
print(f"6 attackers {six[0].malicious}: kept {[r.defence_kept[0] for r in six]}, then diverged")

# %% [markdown]
# With 3 and 5 attackers Krum never kept one. With 5 attackers and 5 honest clients it kept the
# same honest client every round — the most central of the five. With 6 it kept an attacker in
# round 1 already: with four honest clients, an honest update's 5 nearest others include
# attackers, 20 times as long as an honest update.

# %% [markdown]
# ## 5. A backdoor, and norm clipping
#
# A **targeted** attack: the malicious client stamps a small trigger — a 2×2 block of full ink
# in the bottom-right corner — on half of its images and labels them 0 (`poisoning.Backdoor`,
# BadNets: Gu et al. 2017). The model should learn "trigger means 0" and stay accurate on clean
# digits. The top row is six test digits, the bottom row the same with the trigger:

# %%
trigger = poisoning.Backdoor(target=0)
images = [*digits.x_test[:6], *trigger.stamp(digits.x_test[:6])]
fig, axes = plt.subplots(2, 6, figsize=(6, 2.2), layout="constrained")
for ax, image in zip(axes.ravel(), images, strict=True):
    ax.imshow(image.reshape(digits.image_shape[:2]), cmap="gray_r", vmin=0, vmax=1)
    ax.set_axis_off()

# %% [markdown]
# One attacker among ten trains on a few dozen triggered images; averaged with nine honest
# updates, its backdoor is diluted. So it **boosts** its update ×10, the number of clients
# (`poisoning.ScaledUpdate`; *model replacement*, Bagdasaryan et al. 2020): after averaging, its
# model replaces the global one. `poisoning.Combined` runs the two attacks in turn. The
# **backdoor success** is the share of triggered test images (of digits other than 0) that the
# model calls 0; the run with `count=0` measures it on a model nobody attacked.

# %%
boosted = poisoning.Combined(trigger, poisoning.ScaledUpdate(factor=NUM_CLIENTS))
backdoor_runs = {
    "no attacker": run(attackers=poisoning.Attackers(trigger, count=0)),
    "backdoor": run(attackers=poisoning.Attackers(trigger, count=1)),
    "boosted backdoor": run(attackers=poisoning.Attackers(boosted, count=1)),
    "boosted, norm clipping": run(
        robust.NormClipping(clip_norm=CLIP_NORM), poisoning.Attackers(boosted, count=1)
    ),
}

# %%
plot.plot_backdoor(backdoor_runs, accuracy=False);

# %%
for name, history in backdoor_runs.items():
    success = history.series("backdoor_success")[-1]
    print(f"{name:<23} clean accuracy {history.test_accuracy[-1]:.3f}, backdoor {success:.2f}")

# %% [markdown]
# What to notice:
#
# - **The boosted backdoor works from round 1 and stays**: nearly every triggered digit is
#   called 0, while the clean accuracy is as high as without an attacker. Watching the accuracy,
#   nobody would notice. A model nobody attacked calls some triggered digits 0 in round 1 (a
#   barely trained model guesses), none after that.
# - **Unboosted, the backdoor mostly fades**: nine honest updates a round outvote it.
# - **Norm clipping** (Sun et al. 2019) scales every update down to norm at most C = 0.5 before
#   averaging. The boost multiplies the update's norm by 10, and clipping takes exactly that away:
#   the attacker is left with one vote of ten, and its backdoor fades like the unboosted one.
#
# Clipping records whom it scaled down (`defence_clipped`): the attacker in every round, but
# honest clients too, early on, when honest updates are longer than C:

# %%
clipped = backdoor_runs["boosted, norm clipping"]
print("clients clipped per round:", [len(r.defence_clipped) for r in clipped.rounds])
always = all(set(r.malicious) <= set(r.defence_clipped) for r in clipped.rounds)
print("the attacker clipped in every round:", always)

# %% [markdown]
# How long are honest updates? The median of the clients' ‖Δ_k‖ (`client_drift`) in the run
# nobody attacked, every fifth round:

# %%
norms = {r.round: np.median(r.client_drift) for r in backdoor_runs["no attacker"].rounds}
print("median ‖Δ_k‖ by round:", {k: round(float(norms[k]), 2) for k in (1, 5, 10, 15, 20)})

# %% [markdown]
# C is a choice: near the honest updates' norms (notebook 11 chose DP's clip the same way).
# Smaller, and honest work is cut too; larger, and the boost gets through (exercise 4). Unlike
# the median or Krum, clipping has no breakdown point: it bounds each client's *influence*, and
# enough clipped attackers still steer the mean.

# %% [markdown]
# ## 6. The price: no attacker, non-IID clients
#
# The robust aggregates' guarantees assume the honest updates resemble each other (IID data).
# On non-IID clients, honest updates disagree too, and a defence cannot tell an unusual honest
# client from an attacker. The Dirichlet split of notebook 02 with α = 0.1 gives each client a
# few classes; nobody attacks. Each defence once IID and once non-IID (10 runs):

# %%
noniid = fedlab.partition.dirichlet(digits.y_train, NUM_CLIENTS, alpha=ALPHA, seed=SEED)
PRICED = {**DEFENCES, "norm clipping C = 0.5": robust.NormClipping(clip_norm=CLIP_NORM)}
iid_runs = {name: run(defence) for name, defence in PRICED.items()}
price = {name: run(defence, data_split=noniid) for name, defence in PRICED.items()}

# %%
print(f"{'no attacker':<23}{'IID':>6}{'non-IID':>9}{'price':>7}")
for name in PRICED:
    a, b = iid_runs[name].test_accuracy[-1], price[name].test_accuracy[-1]
    print(f"{name:<23}{a:>6.2f}{b:>9.2f}{round(b - a, 2) + 0.0:>+7.2f}")

# %%
fig, ax = plt.subplots(figsize=(7.5, 3), layout="constrained")
y = np.arange(len(PRICED))
ax.barh(y - 0.2, [iid_runs[n].test_accuracy[-1] for n in PRICED], 0.4, label="IID")
ax.barh(y + 0.2, [price[n].test_accuracy[-1] for n in PRICED], 0.4, label="non-IID, α = 0.1")
ax.set(yticks=y, yticklabels=list(PRICED), xlabel="final test accuracy, no attacker", xlim=(0, 1))
ax.invert_yaxis()
ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0));

# %% [markdown]
# The price is large. On IID data no defence cost anything here (all end at 0.93); on the
# non-IID split, with nobody attacking, the trimmed mean and the median lose a fifth to a
# quarter of the accuracy, and Krum more than half. Who did Krum keep?

# %%
picks = Counter(r.defence_kept[0] for r in price["Krum f = 3"].rounds)
favourite = picks.most_common(1)[0][0]
print("Krum's picks {client: rounds}:", dict(picks))
print(f"client {favourite}: {noniid.sizes[favourite]} examples", noniid.label_counts[favourite])
print("update norms in round 1:", np.round(price["Krum f = 3"].rounds[0].client_drift, 2))

# %% [markdown]
# Krum kept the same client in every round: the smallest one, 36 examples of six classes and
# none of 0, 1, 3 or 6. With the fewest local steps its update is the shortest (the round's
# update norms, `client_drift`, are above), so it lies nearest to all the others — and the
# global model learnt only its classes. The median and the
# trimmed mean fail more quietly: in each coordinate they drop the clients whose values are
# extreme, and on non-IID data those are the clients that hold the classes others lack: honest
# work, discarded as if it were an attack. Norm clipping costs least, because it discards
# nobody — it only shortens long updates.
#
# Robust aggregation is a bet that honest clients agree. The more heterogeneous the clients, the
# more the bet costs. Deployed systems therefore prefer bounding each client's influence to
# voting clients out: Shejwalkar et al. 2022 find that with realistic numbers of attackers among
# many sampled clients, norm bounding is enough to defend production federated learning.

# %% [markdown]
# ## 7. Robust or secure: pick one
#
# Every defence here looks at each client's update: its coordinates (median, trimmed mean), its
# distances to the others (Krum) or its norm (clipping). Secure aggregation (notebook 12) exists
# so that the server sees **only the sum**. The two pull in opposite directions, and fedlab
# refuses the combination rather than run one of them silently without the other:

# %% tags=["nbval-check-output"]
krum_fedavg = fedavg.with_aggregator(robust.Krum(num_byzantine=KRUM_F))
try:
    fedlab.simulate(krum_fedavg, mlp, digits, split, 1, secure_aggregation=SecureAggregation())
except ValueError as error:
    print("ValueError:", error)

# %% [markdown]
# Both at once needs more cryptography: each client proves, in zero knowledge, that its masked
# update has a bounded norm, and the server checks the proofs without unmasking (e.g. RoFL,
# Lycklama et al. 2023) — at a large cost in computation. Which threat matters more is a design
# decision: a curious server, or malicious clients.

# %% [markdown]
# ## Summary
#
# - A malicious client controls its **data** and its **update**; the server sees neither the data
#   nor the training. In fedlab an attack is a client behaviour (`fedlab.poisoning`), a defence
#   an aggregator in the aggregate slot (`fedlab.robust`).
# - **The mean has breakdown point 0**: one client boosting its reversed update ×20 took FedAvg
#   to 0 accuracy. The **trimmed mean** (β = 0.2) survived 2 of 10 and the **median** 4 of 10,
#   exactly their bounds (⌊βK⌋; f < K/2). **Krum** needs K > 2f + 2 — fedlab refuses
#   `num_byzantine=4` with 10 clients — and held up to 5 sign-flippers with f = 3, because they
#   did not collude.
# - A **boosted backdoor** from one client of ten planted "trigger → 0" in nearly every triggered
#   digit while the clean accuracy stayed at 0.93: accuracy alone does not reveal it. **Norm
#   clipping** at C = 0.5 took the boost away and the backdoor faded.
# - **The price**: on a non-IID split with no attacker, the median, the trimmed mean and Krum
#   lost a fifth to over half of the accuracy by discarding honest but unusual clients; clipping
#   cost a few points.
# - **Robust and secure aggregation conflict**: robust rules must see each update, secure
#   aggregation hides it; fedlab refuses Krum with `SecureAggregation`.
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
# 1. **The trimmed mean by hand.** Write it as a function and check it against section 2's
#    `trimmed`. How many sign-flippers among 10 does β = 0.2 survive, and why not 4, although it
#    cuts 4 values of every coordinate?
# 2. **Krum's scores by hand.** Write every client's Krum score as a function. Then attack Krum
#    with two clients that collude (*a little is enough*): how often does it keep an attacker?
#    Why did Krum with f = 3 survive 5 sign-flippers, beyond its guarantee, and not these two?
# 3. **An odd number of clients.** Predict how many sign-flippers among 11 clients the median
#    survives, then run it with that many and one more. Why is 11 different from 10?
# 4. **Choose the clip norm.** Rerun section 5's clipped backdoor run and section 6's non-IID
#    clipping run with C = 0.1, 0.25, 0.5, 1 and 2. Which C stops the backdoor at the smallest
#    price?

# %%
from fedlab import exercises

# %% [markdown]
# ### Exercise 1 · The trimmed mean by hand
#
# **(a)** Write `trimmed_mean(updates, beta)`: for each coordinate of the `[K, d]` `updates`,
# the mean of the values left after dropping the ⌊β·K⌋ largest and the ⌊β·K⌋ smallest.

# %%
def trimmed_mean(updates, beta):
    """Each coordinate's mean without its ⌊β·K⌋ largest and ⌊β·K⌋ smallest values."""
    # BEGIN SOLUTION
    cut = int(np.floor(beta * len(updates)))
    ordered = np.sort(updates, axis=0)  # each coordinate sorted over the clients
    return ordered[cut : len(updates) - cut].mean(axis=0)
    # END SOLUTION


# %% tags=["self-check"]
exercises.check_trimmed_mean(trimmed_mean)
# BEGIN HIDDEN TESTS
exercises.check_trimmed_mean(trimmed_mean, seed=1)
# END HIDDEN TESTS

# %% [markdown]
# **(b)** How many sign-flipping clients among 10 does `robust.TrimmedMean(beta=0.2)` survive?
# Answer from the theory, then compare with section 3's sweep.

# %%
trimmed_survives = ...  # the most sign-flippers among 10 that the trimmed mean survives
# BEGIN SOLUTION
trimmed_survives = int(np.floor(BETA * NUM_CLIENTS))
print("by hand:", trimmed_mean(updates, BETA).round(3), " fedlab:", trimmed.round(3))
print("section 3:", [outcome(r) for r in sweep["trimmed mean β = 0.2"].values()])
# END SOLUTION

# %% tags=["self-check"]
exercises.check_trimmed_survives(trimmed_survives, num_clients=NUM_CLIENTS, beta=BETA)

# %% [markdown]
# **(c)** The trimmed mean cuts 4 of the 10 values of every coordinate. Why does it not survive
# 4 attackers? What does cutting cost when nobody attacks?
#
# <!-- BEGIN SOLUTION -->
# **Model answer.** It cuts 2 values at *each* end, and the sign-flippers all land at the same
# end: each sends −20 times an update that points roughly the same way as the honest ones, so in
# a coordinate where the honest values are positive, all the attackers' values are large and
# negative. The two lowest are cut, the third attacker stays in the average of the six values
# kept and, at −20 times an update, outweighs five honest ones: section 3's sweep shows 0.92 with
# 2 attackers, divergence in round 6 with 3. Only attackers split between the two ends would be
# cut four at a time — and those would partly cancel each other anyway. The guarantee is
# f ≤ ⌊βK⌋. With no attacker, the trimmed mean still throws away 4 of the 10 values of every
# coordinate: on IID data it hardly matters (0.93, like the mean), but on section 6's non-IID
# split the extreme values are those of the clients that hold rare classes, and it fell from 0.93
# to 0.76.
# <!-- END SOLUTION -->

# %% [markdown]
# ### Exercise 2 · Krum's scores by hand
#
# **(a)** Write `krum_scores(updates, num_byzantine)`: one score per client of the `[K, d]`
# `updates`, in the clients' order — the sum of its squared distances to its K − f − 2 nearest
# other updates (section 2 did it for client 0).

# %%
def krum_scores(updates, num_byzantine):
    """Each client's sum of squared distances to its K − f − 2 nearest other updates."""
    # BEGIN SOLUTION
    k = len(updates)
    distances = ((updates[:, None, :] - updates[None, :, :]) ** 2).sum(axis=-1)
    np.fill_diagonal(distances, np.inf)  # a client is not its own neighbour
    return np.sort(distances, axis=1)[:, : k - num_byzantine - 2].sum(axis=1)
    # END SOLUTION


# %% tags=["self-check"]
exercises.check_krum_scores(krum_scores)
# BEGIN HIDDEN TESTS
exercises.check_krum_scores(krum_scores, seed=1)
# END HIDDEN TESTS

# %% [markdown]
# **(b)** Attackers that collude: with `fedlab.poisoning.ALittleIsEnough()`, every attacker
# sends the same vector, the honest updates' mean shifted by a fraction of their standard
# deviation (Baruch et al. 2019). Run Krum (f = 3) against 2 such attackers into `alie_run`, and
# count in `alie_kept` the rounds in which Krum kept an attacker's update.

# %%
alie_run = ...  # Krum (num_byzantine=KRUM_F) against 2 ALittleIsEnough() attackers
alie_kept = ...  # in how many rounds Krum kept an attacker
# BEGIN SOLUTION
alie = fedlab.poisoning.ALittleIsEnough()
alie_run = run(robust.Krum(num_byzantine=KRUM_F), poisoning.Attackers(alie, count=2))
alie_kept = sum(bool(set(r.defence_kept) & set(r.malicious)) for r in alie_run.rounds)
print(f"Krum kept an attacker in {alie_kept} of {len(alie_run)} rounds;", end=" ")
print(f"final accuracy {alie_run.test_accuracy[-1]:.2f}")
# END SOLUTION

# %% tags=["self-check"]
exercises.check_attacker_kept(alie_kept, alie_run)

# %% [markdown]
# **(c)** Krum with f = 3 is guaranteed only against 3 attackers among 10, yet it survived 4 and
# 5 sign-flippers. Why — and why did it keep these two colluding attackers?
#
# <!-- BEGIN SOLUTION -->
# **Model answer.** A score sums the distances to the K − f − 2 = 5 nearest others. Each
# sign-flipper sends −20 times its *own* update, so the attackers are far from the honest clients
# and also far from each other (20 times the honest updates' spread apart): an attacker's 5
# nearest neighbours are all far, and its score is huge. An honest client's score counts the
# other honest clients first, so as long as they fill most of its 5 neighbours, honest scores
# stay small. With 5 attackers and 5 honest clients each honest client has 4 honest neighbours
# and one attacker, still far less than an attacker's 5 distant ones, and section 4 shows Krum
# kept the same honest client all 20 rounds; with 6, an honest client's 5 nearest include 2
# attackers, and Krum kept an attacker in round 1. The bound K > 2f + 2 is what Krum can promise
# against *any* f attackers, including those that **collude**. The two ALIE attackers send the
# same vector, so each is the other's nearest neighbour at distance 0, and the vector sits just
# inside the honest cloud, close to everyone: their scores are the smallest, and Krum kept an
# attacker in every one of the 20 rounds. Here that did no visible harm (0.94 at the end: ALIE's
# shift is small, and digits forgives it), but the attackers now choose the aggregate every round:
# a shift repeated round after round in the same direction is how ALIE degrades larger models,
# and Fang et al. 2020 tune such colluding updates against Krum explicitly.
# <!-- END SOLUTION -->

# %% [markdown]
# ### Exercise 3 · An odd number of clients
#
# **(a)** With 11 clients a round, how many sign-flippers does the coordinate-wise median
# survive? Predict from the theory.

# %%
median_survives = ...  # the most sign-flippers among 11 clients that the median survives
# BEGIN SOLUTION
median_survives = (11 - 1) // 2  # the largest f < K/2
# END SOLUTION

# %% tags=["self-check"]
exercises.check_median_survives(median_survives, num_clients=11)

# %% [markdown]
# **(b)** Check it: make an IID split of 11 clients and run the median with `median_survives`
# attackers and with one more, into `median_runs` keyed by the number of attackers (use `run`,
# which takes `data_split=`).

# %%
median_runs = ...  # {number of attackers: run} with 11 clients
# BEGIN SOLUTION
split_11 = fedlab.partition.iid(digits.y_train, 11, seed=SEED)
median_runs = {
    n: run(robust.CoordinateMedian(), poisoning.Attackers(sign_flip, count=n), data_split=split_11)
    for n in (median_survives, median_survives + 1)
}
print({n: outcome(result) for n, result in median_runs.items()})
# END SOLUTION

# %% tags=["self-check"]
exercises.check_median_runs(median_runs, sweep["median"][4], num_clients=11)

# %% [markdown]
# **(c)** Five attackers broke the median of 10 clients. Why do five not break the median of 11?
#
# <!-- BEGIN SOLUTION -->
# **Model answer.** With 11 clients the median of a coordinate is the 6th of the 11 sorted
# values. Five attackers, all at one end, take up five places; the 6th value is still an honest
# client's, between the honest values — so the median cannot leave the range of the honest
# updates. The run with 5 attackers ended at 0.79 (lower than with no attacker: the median's
# value is pushed towards the edge of the honest range every round), the one with 6 diverged in
# round 4. With 10 clients there is no single middle value: `np.median` averages the 5th and 6th,
# and with 5 attackers one of the two is an attacker's −20 × update, so half of it enters the
# aggregate every round. The bound f < K/2 is the same in both cases: 5 < 5.5, but 5 is not
# < 5.
# <!-- END SOLUTION -->

# %% [markdown]
# ### Exercise 4 · Choose the clip norm
#
# **(a)** Rerun section 5's `"boosted, norm clipping"` run with `clip_norm` 0.1, 0.25, 0.5, 1 and
# 2, into `clip_runs` keyed by the clip norm.

# %%
CLIP_NORMS = (0.1, 0.25, 0.5, 1.0, 2.0)
clip_runs = ...  # {clip_norm: History}, the boosted backdoor against NormClipping(clip_norm)
# BEGIN SOLUTION
clip_runs = {
    c: run(robust.NormClipping(clip_norm=c), poisoning.Attackers(boosted, count=1))
    for c in CLIP_NORMS
}
plot.plot_backdoor(clip_runs, accuracy=False);
# END SOLUTION

# %% tags=["self-check"]
reference = backdoor_runs["boosted, norm clipping"]
exercises.check_clip_runs(clip_runs, reference, name="clip_runs", clip_norms=CLIP_NORMS)

# %% [markdown]
# **(b)** The price of each: rerun section 6's non-IID `"norm clipping C = 0.5"` run with the
# same clip norms, into `clip_price`.

# %%
clip_price = ...  # {clip_norm: History}, non-IID, no attacker
# BEGIN SOLUTION
clip_price = {c: run(robust.NormClipping(clip_norm=c), data_split=noniid) for c in CLIP_NORMS}
for c in CLIP_NORMS:
    backdoor = clip_runs[c].series("backdoor_success")[-1]
    clean, price_c = clip_runs[c].test_accuracy[-1], clip_price[c].test_accuracy[-1]
    print(f"C = {c:<4}  backdoor {backdoor:.2f}, clean accuracy {clean:.3f};", end=" ")
    print(f"non-IID, no attacker: {price_c:.3f}")
# END SOLUTION

# %% tags=["self-check"]
reference = price["norm clipping C = 0.5"]
exercises.check_clip_runs(clip_price, reference, name="clip_price", clip_norms=CLIP_NORMS)

# %% [markdown]
# **(c)** Name in `best_clip` the clip norm that keeps the backdoor success below 0.1 in the last
# round at the highest non-IID accuracy.

# %%
best_clip = ...  # one of CLIP_NORMS
# BEGIN SOLUTION
safe = [c for c in CLIP_NORMS if clip_runs[c].series("backdoor_success")[-1] < 0.1]
best_clip = max(safe, key=lambda c: clip_price[c].test_accuracy[-1])
print("safe:", safe, " best:", best_clip)
# END SOLUTION

# %% tags=["self-check"]
exercises.check_best_clip(best_clip, clip_runs, clip_price)

# %% [markdown]
# **(d)** Why is there a best C, and why would you not know it in a real deployment?
#
# <!-- BEGIN SOLUTION -->
# **Model answer.** The attacker's boosted update is 10 times as long as an honest one, and
# clipping cuts every update to norm C. With C = 1 or 2, above the honest norms (0.2–0.5), the
# attacker keeps 2 to 4 times an honest client's influence and the backdoor survives (0.65 and
# 1.00 in the last round). With C = 0.5 it has one honest vote and the backdoor fades (0.07),
# as with 0.25 (0.02); with 0.1 every update, honest or not, is cut to a fifth of its length, so
# learning slows (clean accuracy 0.85) and the backdoor fades only slowly (0.12 after 20 rounds).
# The price on non-IID clients rises as C falls: 0.93 at C = 1, 0.90 at 0.5, 0.76 at 0.25, 0.52
# at 0.1, because clipping shortens most the long updates of the clients whose data differ most.
# So C = 0.5 is the best here: just at the honest norms. In a deployment the server knows
# neither which client attacks nor how long honest updates are going to be (they shrink as
# training converges: 0.53 in round 1, 0.2 by round 20), so it cannot tune C on a backdoor
# success rate it cannot measure. Adaptive clipping sets C each round to a quantile of the
# update norms it receives (Andrew et al. 2021) — which a majority of honest clients keeps
# honest.
# <!-- END SOLUTION -->
