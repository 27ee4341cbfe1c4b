# %% [markdown]
# # 00 · Federated learning with `fedlab`: the map of the course
#
# *Purpose: see what federated learning is, how one round of it is built, and where each notebook
# takes you.*
#
# **Goals**
# - Say in one sentence what federated learning (FL) is, and what never leaves a device.
# - Name the five stages of a federated round and the four slots `fedlab` builds them from.
# - Know which notebook to open next.
#
# **You will need:** nothing but curiosity; this notebook runs in about 10 s, CPU is fine.

# %% [markdown]
# ## What federated learning is
#
# In ordinary ("centralised") machine learning, everyone's data is copied to one server and a model
# is trained there. In **federated learning** the data **stays on the devices** that produced it —
# phones, hospitals, sensors — and the **model travels** instead. A server sends the current model to
# some clients; each client improves it on its own data; the clients upload only their model
# *updates* (numbers describing how the weights changed); the server combines the updates into a
# new model, and the next round begins. The server never sees a single training example.
#
# ```
#                  ┌───────────── server ─────────────┐
#                  │  global model w  ◄── average Δ's │
#                  └────┬───────────────────────▲─────┘
#                send w │                       │ upload Δ_k = w_k − w and n_k
#             ┌─────────┼─────────┐   ┌─────────┼─────────┐
#             ▼         ▼         ▼   │         │         │
#         client 1  client 2 … client K  (train w on own data → w_k)
#         [data 1]  [data 2]   [data K]   ← data never moves
# ```

# %% [markdown]
# ## One round, five stages, four slots
#
# Every federated algorithm in this course is built from the same five stages; the data stays on
# the clients throughout:
#
# 1. **Initialise** — the server builds the global model (once, before the first round).
# 2. **Send** — the server picks this round's clients and sends each a copy of the global weights
#    (*broadcast*).
# 3. **Train locally** — each selected client runs a few steps of SGD on its own data.
# 4. **Upload** — each client sends back its update (how its weights changed) and how many
#    examples it trained on; nothing else.
# 5. **Aggregate and update** — the server combines the updates, usually a mean weighted by how
#    many examples each client has, and moves the global model along the result.
#
# Stages 2–5 repeat every round. Stage 1 happens once and needs only the model (`model_fn`), so
# `fedlab` builds the repeating round from **four replaceable slots**; an algorithm is a choice of
# what goes in each:
#
# | slot | stages | in `fedlab` | later notebooks plug in… |
# |---|---|---|---|
# | **sample + broadcast** | 2 send | `Algorithm.sample_clients`, `steps.broadcast` | stragglers, compressed downloads |
# | **client update** | 3 train locally | `steps.local_update` (+ `Algorithm.local_gradient`) | FedProx, SCAFFOLD, LoRA, personal heads |
# | **aggregate** | 4 upload, 5 aggregate | `steps.aggregate`, `algorithms.WeightedMean` | compression, DP noise, secure aggregation: what is uploaded and how it is summed |
# | **server update** | 5 update | `steps.server_update`, `algorithms.ServerSGD` | server learning rate, FedAdam, FedYogi |
#
# `fedlab.steps` runs these slots one client at a time, in plain readable code (for learning);
# `fedlab.simulate` runs the very same slots for all clients at once (for speed). Notebook 01 proves
# the two give the same numbers.

# %% [markdown]
# ## The notebooks
#
# | # | notebook | what you will do | status |
# |---|---|---|---|
# | 00 | this index | the map | ✓ |
# | 01 | [One round by hand](01_one_round_by_hand.ipynb) | write a FedAvg round stage by stage, check it against `fedlab`, then run 30 rounds; fix a broken federated loop | available |
# | 02 | [Client splits](02_client_splits.ipynb) | IID, Dirichlet label skew, shards, k classes, quantity and feature skew: what "non-IID" looks like, and what it does to FedAvg | available |
# | 03 | [FedSGD vs FedAvg](03_fedsgd_vs_fedavg.ipynb) | local epochs trade communication for drift; a live training dashboard | available |
# | 04 | [Client drift](04_client_drift.ipynb) | watch clients pull the model apart: a 2-D playground you can steer, then drift measured on digits | available |
# | 05 | [FedProx and SCAFFOLD](05_fedprox_and_scaffold.ipynb) | two fixes for drift: a proximal term and control variates; write a client step yourself | available |
# | 06 | [Server optimisers](06_server_optimizers.ipynb) | server learning rate, FedAvgM, FedAdam, FedYogi, FedAdagrad | available |
# | 07 | [Stragglers and limited compute](07_stragglers_and_limited_compute.ipynb) | clients that do less work, or drop out: the FedProx paper's experiment | available |
# | 08 | [Communication cost and compression](08_communication_cost.ipynb) | what a round sends; float16, k-bit quantisation, top-k and error feedback: accuracy per megabyte | available |
# | 09 | [Federated LoRA fine-tuning](09_federated_fine_tuning_with_lora.ipynb) | pre-train a tiny transformer, fine-tune it on keyboard users: full, LoRA, head-only; the A·B pitfall; a 7B model's bill | available |
# | 10 | [What updates leak](10_what_updates_leak.ipynb) | rebuild a digit and its label from one gradient (DLG, iDLG); which defences really stop it | available |
# | 11 | [Differential privacy](11_differential_privacy.ipynb) | DP-FedAvg: clipping, noise, ε from a real accountant; privacy vs accuracy; local vs central DP | available |
# | 12 | [Secure aggregation](12_secure_aggregation.ipynb) | masks that cancel, Shamir shares for dropouts: the server learns the sum, not the parts | available |
# | 13 | [Personalisation and multi-task](13_personalisation_and_multitask.ipynb) | one global model is unfair to some clients: fine-tuning, FedPer, Ditto, clustered FL (IFCA); tasks sharing a body | available |
# | 14 | [From simulation to deployment](14_from_simulation_to_deployment.ipynb) | the same FedAvg with every client a process: a Flower SuperLink and SuperNodes on this machine; same numbers, messages, time; the classroom recipe | available |
# | 15 | [Poisoning and robust aggregation](15_poisoning_and_robust_aggregation.ipynb) | what malicious clients can do: sign flips that break the mean, a hidden backdoor; where the median, the trimmed mean and Krum break, and what they cost on non-IID clients | available |
#
# Work through them in order: each one assumes the ones before it.

# %% [markdown]
# ## Setup
#
# Import `fedlab` **first** in every notebook: it quietens TensorFlow's start-up log lines and sets
# a thread count that suits small CPUs. Then check the versions you are running.

# %%
import sys

FEDLAB = "fedlab-edu @ git+https://github.com/fedlab-edu/fedlab"  # what Colab installs
if "google.colab" in sys.modules:  # elsewhere `python3 dev.py lab` has installed fedlab already
    import subprocess

    subprocess.run([sys.executable, "-m", "pip", "install", "-q", FEDLAB], check=True)

# %%
import fedlab  # first: it quietens TensorFlow's start-up log lines

for name, version in fedlab.versions().items():
    print(f"{name:<11} {version}")

# %% [markdown]
# If this cell printed a table of versions (and no red error), your setup works and you are ready
# for notebook 01. Every notebook runs in under a minute on a laptop CPU; no GPU is needed.

# %% [markdown]
# ## Summary
#
# - Federated learning moves the **computation to the data**: the model travels, the data stays.
# - A round is *initialise (once) → send → train locally → upload → aggregate and update*;
#   `fedlab` builds it from four slots (sample + broadcast, client update, aggregate, server
#   update), and the algorithms in this course differ only in what they put in these slots.
# - `fedlab.steps` shows a round one client at a time; `fedlab.simulate` runs it fast; they agree.
#
# ## Exercises
#
# Each exercise has a cell for your answer and a **check** cell after it: run the check, it prints
# ✓ and what it verified, or ✗ and the mistake it recognised. The parts that ask you to explain
# have a cell for your answer in words.
#
# 1. **What is, and what is not, federated learning?** Mark five scenarios. Then name three
#    settings where the data *cannot* be pooled on one server (think law, bandwidth, trust). For
#    each, who would run the server and who the clients?
# 2. **Do weights reveal data?** A client sends back its updated weights rather than its data. Can
#    you think of a way those weights might still reveal something about the data? (Notebook 10
#    comes back to this.)
# 3. **Big and small clients.** Suppose half of the clients have 1 000 examples and the other half
#    10. Should the server average their updates equally, or weight them by example count? What
#    could go wrong with each choice?

# %%
from fedlab import exercises

# %% [markdown]
# ### Exercise 1 · What is, and what is not, federated learning?
#
# **(a)** For each scenario, set its value to `True` if it is federated learning, `False` if not:
#
# - `"hospitals"`: hospitals train a shared model; each keeps its patients' records and sends only
#   model updates, which a server averages.
# - `"encrypted upload"`: phones encrypt their users' photos and upload them; the server decrypts
#   them and trains one model.
# - `"alone"`: every phone trains its own model on its own photos and never shares anything.
# - `"trusted party"`: banks send their customers' records to a trusted third party, which trains
#   the model.
# - `"keyboards"`: each phone trains a next-word model on what its user typed and uploads an update;
#   the server averages the updates.

# %%
is_federated = {
    "hospitals": ...,
    "encrypted upload": ...,
    "alone": ...,
    "trusted party": ...,
    "keyboards": ...,
}
# BEGIN SOLUTION
verdicts = [True, False, False, False, True]  # in the order of the list above
is_federated = dict(zip(is_federated, verdicts, strict=True))
# END SOLUTION

# %% tags=["self-check"]
exercises.check_federated_or_not(is_federated)

# %% [markdown]
# **(b) Three settings where the data cannot be pooled: who runs the server, who are the
# clients?**
#
# <!-- BEGIN SOLUTION -->
# **Model answer.** *Law:* hospitals in several countries may not move patient records across
# borders (GDPR, HIPAA); a research consortium or one hospital runs the server, the hospitals are
# the clients. *Bandwidth:* a fleet of cars or wind turbines makes terabytes of sensor data a day
# that no uplink can carry; the manufacturer runs the server, each vehicle or turbine is a client.
# *Trust:* competing banks want a better fraud model but will not show each other their
# customers' transactions; an industry body runs the server, the banks are the clients. (Phones
# and keyboards combine all three: private text, millions of devices, a company's server.) In
# every case the model travels and the data stay — which is why encrypting the data and sending
# it to a server, as some articles describe it, is not federated learning: the data still leave.
# <!-- END SOLUTION -->

# %% [markdown]
# ### Exercise 2 · Do weights reveal data?
#
# **(a)** Can the weights a client sends back reveal something about its data? Set
# `weights_can_leak` to `True` or `False`.

# %%
weights_can_leak = ...  # True or False
# BEGIN SOLUTION
weights_can_leak = True
# END SOLUTION

# %% tags=["self-check"]
leak_hint = (
    "a client's update is computed from its data: notebook 10 rebuilds a client's images from "
    "one gradient"
)
exercises.check_choice("weights_can_leak", weights_can_leak, True, {False: leak_hint})

# %% [markdown]
# **(b) How might they?**
#
# <!-- BEGIN SOLUTION -->
# **Model answer.** The update Δ_k = w_k − w is what the client's data did to the model, so it
# carries information about them. With one example, the gradient of the last layer's bias is
# softmax(logits) − one-hot(label): its only negative entry *is* the label, and the weight
# gradient is that vector times the input, so the input can be read back (notebook 10 rebuilds
# digits from one gradient by gradient inversion, DLG). With more data, an update still shows
# which classes a client holds (a model drifting towards "3" has seen 3s), and a model that
# memorised can reveal whether a given example was in the training set (membership inference).
# The defences come later: secure aggregation (notebook 12) shows the server only the sum of many
# updates, differential privacy (notebook 11) clips and noises them so no single example can
# matter much.
# <!-- END SOLUTION -->

# %% [markdown]
# ### Exercise 3 · Big and small clients
#
# **(a)** Half of the clients have 1 000 examples, the other half 10. FedAvg weights client k by
# n_k / n. Compute `small_share`: the share of the aggregate that all the small clients together
# get (a number between 0 and 1).

# %%
small_share = ...  # the small clients' total weight in FedAvg's average
# BEGIN SOLUTION
num_clients = 10  # any even number: it cancels
sizes = [1000] * (num_clients // 2) + [10] * (num_clients // 2)
small_share = sum(sizes[num_clients // 2 :]) / sum(sizes)
print(f"small clients' share of the aggregate: {small_share:.4f}")
# END SOLUTION

# %% tags=["self-check"]
exercises.check_small_share(small_share)

# %% [markdown]
# **(b) Equal weights or by example count: what could go wrong with each?**
#
# <!-- BEGIN SOLUTION -->
# **Model answer.** Weighting by example count (FedAvg's n_k / n) treats every *example* equally:
# the model is the one you would train on all the data pooled, but the small clients together
# carry only 1 % of it — if their data differ (another language, rare patients), the model
# serves them badly, and a client that *claims* a huge n_k can take over the average. Equal
# weights treat every *client* equally: the small clients get half of the say, but each of their
# examples then counts a hundred times more than a big client's, so their noise (10 examples
# make a noisy update) and any bad or poisoned client are amplified, and the model fits the
# pooled data worse. Which to choose depends on what "good" means: the best model on average
# over examples (n_k / n), or a model that also works for every client (closer to equal, or a
# fairness-aware weighting — notebook 13 measures per-client accuracy).
# <!-- END SOLUTION -->
