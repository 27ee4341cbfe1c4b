# %% [markdown]
# # 01 · One round of federated learning, by hand
#
# *Purpose: write one round of Federated Averaging (FedAvg) stage by stage in plain TensorFlow, prove
# that `fedlab` computes exactly the same thing, then let `fedlab` run thirty rounds.*
#
# **Goals**
# - Train a **centralised baseline** first, so every federated number has something to be compared with.
# - Split a dataset into clients and look at what each one holds.
# - Write the five stages of a round yourself — **initialise, send, train locally, upload,
#   aggregate and update** — and see that only **weights** leave a client.
# - Read the gradient step θ ← θ − η∇J(θ) that every client runs, in a few lines of code.
# - Check your round against `fedlab.steps` and the fast engine `fedlab.Simulation` (*two paths, one truth*).
# - Recognise four common bugs in federated code, and fix them.
#
# **You will need:** [00 · the map of the course](00_index.ipynb); about 30 s to run on a laptop CPU (no GPU needed).

# %% [markdown]
# ## Setup
#
# `import fedlab` comes **first**: it quietens TensorFlow's start-up log lines before TensorFlow
# loads. Then the usual libraries, and the versions this notebook was run with.

# %%
import sys

FEDLAB = "fedlab-edu @ git+https://github.com/fedlab-edu/fedlab"  # what Colab installs
if "google.colab" in sys.modules:  # elsewhere `python3 dev.py lab` has installed fedlab already
    import subprocess

    subprocess.run([sys.executable, "-m", "pip", "install", "-q", FEDLAB], check=True)

# %%
import fedlab  # first: it quietens TensorFlow's start-up log lines

import keras
import matplotlib.pyplot as plt
import numpy as np
import tensorflow as tf

print(", ".join(f"{name} {version}" for name, version in fedlab.versions().items()))

# %% [markdown]
# Every size and rate in this notebook is set in the next cell. The values below run the whole
# notebook in well under a minute on two CPU cores; try bigger ones in the exercises.

# %%
NUM_CLIENTS = 10  # devices that hold data
NUM_ROUNDS = 30  # rounds of the full federated run (section 6)
LOCAL_EPOCHS = 1  # passes over its own data each client makes per round
BATCH_SIZE = 20  # local mini-batch size
CLIENT_LR = 0.1  # local SGD learning rate
SERVER_LR = 1.0  # step the server takes along the averaged update (FedAvg: 1)
CENTRAL_EPOCHS = 10  # epochs of the centralised baseline
SEED = 0

# %% [markdown]
# ## 1. The data
#
# scikit-learn's handwritten digits: 1 797 grey-scale images of 8×8 pixels, already on your
# disk (no download). `fedlab.load_digits` scales pixels to [0, 1], flattens each image to 64
# numbers and keeps 20 % of the images aside as a test set, with every digit in the same proportion.

# %% tags=["nbval-check-output"]
digits = fedlab.load_digits(seed=SEED)
print(digits.summary())
print("x_train", digits.x_train.shape, digits.x_train.dtype)
print("y_train", digits.y_train.shape, digits.y_train.dtype)
print("first labels:", digits.y_train[:10].tolist())

# %% [markdown]
# The labels are plain integers 0–9, not one-hot vectors — remember this for bug (iv) in section 7.
# Here are the first sixteen training images, reshaped back to 8×8:

# %%
fig, axes = plt.subplots(2, 8, figsize=(8, 2.4), layout="constrained")
for ax, x, y in zip(axes.flat, digits.x_train, digits.y_train, strict=False):
    ax.imshow(x.reshape(digits.image_shape[:2]), cmap="gray_r")
    ax.set_title(str(y))
    ax.axis("off")

# %% [markdown]
# Blurry, but a person reads most of them easily. 8×8 digits are small enough that a round of
# federated training takes milliseconds, which is what lets us experiment freely.
#
# ## 2. A centralised baseline first
#
# Before any federated round, train the same model the ordinary way: all training data in one
# place, Keras `fit`. Whatever federated learning achieves later is measured against this number.
#
# `fedlab.FedModel(10)` is a small network — `Dense(128, ReLU) → Dense(10)` — that outputs
# **logits** (raw scores, no softmax), so the loss is told `from_logits=True`.

# %%
keras.utils.set_random_seed(SEED)
baseline = fedlab.FedModel(10)
baseline.compile(
    optimizer=keras.optimizers.SGD(CLIENT_LR),
    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    metrics=["accuracy"],
)
baseline.fit(
    digits.x_train, digits.y_train, epochs=CENTRAL_EPOCHS, batch_size=BATCH_SIZE, verbose=0
);

# %% tags=["nbval-check-output"]
central_loss, central_accuracy = baseline.evaluate(digits.x_test, digits.y_test, verbose=0)
print(f"centralised baseline: test accuracy {central_accuracy:.2f}")

# %% [markdown]
# About 0.96 after ten epochs. Keep it in mind; we come back to it in section 6.
#
# ## 3. Split the data across clients
#
# Now pretend the training images were written on ten different phones. `fedlab.partition.iid`
# shuffles the examples and deals them out evenly, so every client's data looks like a small
# sample of the whole (*IID*: independent and identically distributed). Notebook 02 makes
# clients that differ.

# %% tags=["nbval-check-output"]
split = fedlab.partition.iid(digits.y_train, num_clients=NUM_CLIENTS, seed=SEED)
print("client  size  examples of each digit 0..9")
for k in range(split.num_clients):
    counts = " ".join(f"{n:3d}" for n in split.label_counts[k])
    print(f"{k:6d}  {split.sizes[k]:4d}  {counts}")


# %% [markdown]
# Each client holds 143 or 144 images, with between 7 and 25 of each digit: similar, not identical.
#
# In real federated learning each client's arrays live **on a different device**, and the server
# cannot read them. Here they are simply index sets into one array — `split.client_indices[k]` —
# and the code below keeps to the rule anyway: client *k*'s examples are read only inside client
# *k*'s own training, and nobody looks at anyone else's.
#
# ## 4. One round, written out stage by stage
#
# This is the heart of the notebook. We write one round of FedAvg in plain TensorFlow and NumPy,
# in the five stages every federated round is made of (notebook 00 lists the same five). Stage 1
# happens once; stages 2–5 repeat every round. Where each stage lives in the code:
#
# | stage | what happens | by hand, section 4 | in `fedlab.steps`, section 5 |
# |---|---|---|---|
# | 1. **Initialise** | the server builds the global model, weights w | (a) `model_fn`, `initialize` | `initialize(model_fn, …)` |
# | 2. **Send** | the server picks the round's clients and sends each a copy of w | (b) `received` | `sample_clients`, `broadcast` |
# | 3. **Train locally** | each client runs SGD on its own data, from its copy | (c) `client_update` | `local_update` |
# | 4. **Upload** | each client sends back its new weights w_k (or its update Δ_k = w_k − w) and its example count n_k — never its data | (d) `sent_back` | the `ClientResult` it returns: `.delta`, `.num_examples` |
# | 5. **Aggregate and update** | the server takes the mean of the updates weighted by n_k, then moves w along it | (e) `mean_delta`, `hand_weights` | `aggregate`, `server_update` |
#
# `fedlab.steps.run_round` does stages 2–5 in one call, and `fedlab.Simulation` (section 6) does
# them for all clients at once.
#
# ### (a) Initialise the global model
#
# The server creates the model once, with seeded initial weights. A model's weights are just a
# list of arrays; these arrays are what travel between server and clients.

# %% tags=["nbval-check-output"]
def model_fn():  # the server and every client build this same architecture
    return fedlab.FedModel(10)


model, global_weights = fedlab.steps.initialize(model_fn, digits.x_train, seed=SEED)
for w in global_weights:
    print(w.shape, w.dtype)
print("parameters:", sum(w.size for w in global_weights))

# %% [markdown]
# Four arrays, 9 610 numbers: a kernel and a bias for each of the two layers. `model_fn` is how
# `fedlab` is told which architecture to build; `initialize` calls it, seeds the weights and builds
# the model on one example (you could do the same with `keras.utils.set_random_seed` and one call).
# An untrained model is right only by chance:

# %% tags=["nbval-check-output"]
_, accuracy_0 = fedlab.steps.evaluate(model, global_weights, digits.x_test, digits.y_test)
print(f"round 0 (untrained): test accuracy {accuracy_0:.2f}")

# %% [markdown]
# ### (b) Send: sample clients and broadcast
#
# The server chooses who takes part this round and sends each chosen client **its own copy** of
# the global weights. With only ten clients we let everyone take part; later notebooks sample a
# fraction of them each round.

# %% tags=["nbval-check-output"]
round_num = 1
clients = np.arange(NUM_CLIENTS)  # this round, every client takes part
received = {k: [w.copy() for w in global_weights] for k in clients}  # broadcast: one copy each
print("clients this round:", clients.tolist())

# %% [markdown]
# ### (c) Train locally, on each client
#
# Each client improves the weights it received by **gradient descent**, the method behind every
# Keras `fit`. Write θ for all of the model's weights (the w of this notebook, 9 610 numbers):
#
# - The **loss** $J(\theta)$ says how wrong the model is on some examples — here the cross-entropy
#   between its logits and the true labels. Lower is better.
# - The **gradient** $\nabla J(\theta)$ holds one number per weight: how fast the loss grows when
#   that weight grows. TensorFlow computes it for us (`tf.GradientTape`).
# - One step moves every weight a little *against* its gradient; the **learning rate** $\eta$
#   (`CLIENT_LR`) sets how far: $\theta \leftarrow \theta - \eta \, \nabla J(\theta)$.
# - Each step computes $J$ on a **mini-batch** of `BATCH_SIZE` examples rather than on all of them:
#   cheaper steps, slightly noisy directions. This is *stochastic* gradient descent (SGD).
#
# One step by hand, on one mini-batch of client 0's data:

# %% tags=["nbval-check-output"]
loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)  # J
model.set_weights(global_weights)  # θ: the weights client 0 received
batch = split.client_indices[0][:BATCH_SIZE]  # one mini-batch of client 0's data
with tf.GradientTape() as tape:
    loss_before = loss_fn(digits.y_train[batch], model(digits.x_train[batch]))  # J(θ)
grads = tape.gradient(loss_before, model.trainable_variables)  # ∇J(θ)
for variable, g in zip(model.trainable_variables, grads, strict=True):
    variable.assign_sub(CLIENT_LR * g)  # θ ← θ − η ∇J(θ)
loss_after = loss_fn(digits.y_train[batch], model(digits.x_train[batch]))
print(f"loss on this mini-batch: {loss_before:.2f} before the step, {loss_after:.2f} after")

# %% [markdown]
# One step lowered the loss on that batch from about 2.3 to about 2.2. **Local training is this
# step in a loop**: `client_update` below starts from the weights the client received and takes
# one such step per mini-batch of its own data, nothing else — and `fedlab.steps.local_update`
# (section 5) is the same loop. It is the code that would run *on the phone*. `model` serves as a
# calculator: we load the weights we want into it, train, and read the new weights out.
#
# The order of the mini-batches comes from `fedlab.steps.batch_order` — a seeded shuffle per
# (round, client) — so that `fedlab` will see exactly the same batches when we compare in section 5.

# %%
def client_update(model, weights, x, y, client_id):
    """Runs on client `client_id`: local SGD from `weights` on its own (x, y); returns new weights."""
    for variable, w in zip(model.trainable_variables, weights, strict=True):
        variable.assign(w)  # start from the weights the server sent
    batches = fedlab.steps.batch_order(len(x), BATCH_SIZE, LOCAL_EPOCHS, round_num, client_id, SEED)
    for batch in batches:
        with tf.GradientTape() as tape:
            loss = loss_fn(y[batch], model(x[batch], training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        for variable, g in zip(model.trainable_variables, grads, strict=True):
            variable.assign_sub(CLIENT_LR * g)  # θ ← θ − η ∇J(θ)
    return [variable.numpy() for variable in model.trainable_variables]


# %% [markdown]
# ### (d) Upload
#
# Now every client trains, then uploads. Look at what goes into `sent_back`: the client's **new
# weights and its number of examples** — never `x` or `y`. (Sending the update Δ_k = w_k − w
# instead is the same information, since the server knows w; `fedlab` clients send Δ_k.)

# %% tags=["nbval-check-output"]
sent_back = {}  # what reaches the server: (new weights, example count) per client
for k in clients:
    own = split.client_indices[k]  # client k's data, read only here, on client k
    new_weights = client_update(model, received[k], digits.x_train[own], digits.y_train[own], k)
    sent_back[k] = (new_weights, len(own))
print("example counts received:", [n for _, n in sent_back.values()])

# %% [markdown]
# ### (e) Aggregate and update
#
# **Aggregate: a mean weighted by example count.** The server turns each client's new weights
# into an **update** Δ_k = w_k − w (how far the client moved), and averages the updates, giving
# client *k* the weight n_k / n — its share of all examples:
#
# $$\Delta = \sum_k \frac{n_k}{n}\, \Delta_k$$
#
# A client with twice the data counts twice as much, exactly as if its examples had been pooled.

# %%
deltas = {
    k: [w_k - w for w_k, w in zip(new, global_weights, strict=True)]
    for k, (new, _) in sent_back.items()
}
counts = np.array([n for _, n in sent_back.values()], dtype=np.float32)
shares = counts / counts.sum()  # n_k / n, sums to 1
mean_delta = [
    sum(share * deltas[k][i] for share, k in zip(shares, clients, strict=True))
    for i in range(len(global_weights))
]

# %% [markdown]
# **Update.** The server moves the global model along the averaged update: w ← w + η_s · Δ.
# With `SERVER_LR = 1` this is plain FedAvg: the new global model *is* the weighted average of the
# clients' models. (Notebook 06 uses other server steps.)

# %% tags=["nbval-check-output"]
hand_weights = [w + SERVER_LR * d for w, d in zip(global_weights, mean_delta, strict=True)]
_, accuracy_1 = fedlab.steps.evaluate(model, hand_weights, digits.x_test, digits.y_test)
print(f"round 1 (by hand): test accuracy {accuracy_1:.2f}")

# %% [markdown]
# One round took the model from about 0.06 to about 0.4: each client made only eight small SGD
# steps, and the average of their models is already much better than chance.
#
# That was the whole round. What crossed the network: 10 copies of 9 610 weights down (stage 2),
# 10 updates of 9 610 numbers and 10 example counts up (stage 4). What did not: a single pixel or
# label.
#
# ## 5. The same round with `fedlab.steps`
#
# `fedlab.steps` has one function per stage, written much like the cells above. An `Algorithm`
# such as `fedlab.FedAvg(...)` carries the settings (epochs, batch size, learning rates) so they
# are written once.

# %%
algorithm = fedlab.FedAvg(
    local_epochs=LOCAL_EPOCHS, batch_size=BATCH_SIZE, client_lr=CLIENT_LR, server_lr=SERVER_LR
)
chosen = fedlab.steps.sample_clients(NUM_CLIENTS, NUM_CLIENTS, round_num=1, seed=SEED)
copies = fedlab.steps.broadcast(global_weights, chosen)

# %% [markdown]
# `local_update` trains one client and returns a `ClientResult`: its new weights, its update
# (`delta`), its example count and its mean training loss — the record of what a client sends.

# %% tags=["nbval-check-output"]
results = []
for k, weights in copies.items():
    own = split.client_indices[k]
    x_k, y_k = digits.x_train[own], digits.y_train[own]
    result = fedlab.steps.local_update(
        model, weights, x_k, y_k, algorithm, round_num=1, client_id=k, seed=SEED
    )
    results.append(result)
first = results[0]
print(f"client {first.client_id}: {first.num_examples} examples, loss {first.loss:.2f}")

# %% tags=["nbval-check-output"]
aggregated = fedlab.steps.aggregate([r.delta for r in results], [r.num_examples for r in results])
step_weights = fedlab.steps.server_update(global_weights, aggregated, server_lr=SERVER_LR)
for ours, theirs in zip(hand_weights, step_weights, strict=True):
    np.testing.assert_allclose(ours, theirs, atol=1e-5)
print("hand-written round == fedlab.steps round ✓")

# %% [markdown]
# The assertion passed: every one of the 9 610 weights agrees to within 10⁻⁵ (the tiny
# differences come from adding floating-point numbers in a different order).
# `fedlab.steps.run_round` does all of the stages in one call, and agrees too:

# %% tags=["nbval-check-output"]
one_call = fedlab.steps.run_round(
    model, global_weights, digits, split, algorithm, NUM_CLIENTS, round_num=1, seed=SEED
)
for ours, theirs in zip(hand_weights, one_call.weights, strict=True):
    np.testing.assert_allclose(ours, theirs, atol=1e-5)
print("hand-written round == fedlab.steps.run_round ✓")

# %% [markdown]
# ## 6. Many rounds with the fast engine
#
# Training clients one after another in Python is clear but slow. `fedlab.Simulation` runs the
# same four slots with all of a round's clients trained at once inside one compiled TensorFlow
# function. Different code — so first check it computes the same round as ours.

# %% tags=["nbval-check-output"]
simulation = fedlab.Simulation(algorithm, model_fn, digits, split, seed=SEED)
record = simulation.step()  # one round
for ours, engine in zip(hand_weights, simulation.weights, strict=True):
    np.testing.assert_allclose(ours, engine, atol=1e-5)
print(f"hand-written round == fedlab.Simulation round ✓ (test accuracy {record.test_accuracy:.2f})")

# %% [markdown]
# **Two paths, one truth**: the readable step functions and the fast engine give the same weights,
# so from now on we can trust the engine and use the time it saves for experiments.
# `fedlab.simulate` creates a `Simulation` and runs it for many rounds, returning a `History`
# — every number measured in every round. Thirty rounds take about a second.

# %% tags=["nbval-check-output"]
history = fedlab.simulate(
    algorithm, model_fn, digits, split, num_rounds=NUM_ROUNDS, seed=SEED, progress=False
)
print(f"FedAvg after {len(history)} rounds: test accuracy {history.test_accuracy[-1]:.2f}")
print(f"centralised baseline:       test accuracy {central_accuracy:.2f}")

# %%
fedlab.plot.plot_history(history);

# %% [markdown]
# Notice:
# - Test accuracy climbs fast for five rounds, then slowly; after thirty rounds FedAvg is close to
#   the centralised model but a little below it.
# - Why below? In each round every client takes 8 small steps and the server *averages* them, so
#   a round moves the model roughly as far as 8 steps of SGD — while each centralised epoch took 72.
#   On IID data FedAvg mostly needs more rounds, not a different answer.
# - The clients' training loss (solid) and the global test loss (dashed) fall together: the clients'
#   data look alike, so what is good for one is good for all.
#
# The drift plot shows how far each client's local training carried it from the global model
# (left), and whether each client's update points the same way as the average (right, cosine
# similarity; 1 = same direction).

# %%
fedlab.plot.plot_drift(history);

# %% [markdown]
# On IID clients the updates start out pointing the same way (cosines around 0.85) and drift
# shrinks as the model converges. The cosines fall slowly too: near a good model there is little
# left that all clients agree on, and each update is mostly its own mini-batch noise. Notebook 04
# shows what happens when the clients' data differ.
#
# ## 7. A broken federated loop, and how to fix it
#
# Four mistakes that are easy to make and, worse, often run without an error.
#
# ### (i) Training one client after another is not federated averaging
#
# A tempting "federated" loop: hand the model to client 0, let it train, pass the result to client 1,
# and so on. To see the problem clearly, give each client **one digit** — sort the training set by
# label and deal it out in blocks (notebook 02 studies such splits).

# %% tags=["nbval-check-output"]
by_label = np.array_split(np.argsort(digits.y_train, kind="stable"), NUM_CLIENTS)
sorted_split = fedlab.ClientSplit.from_indices(by_label, digits.y_train, scheme="by label")
print("main digit of each client:", sorted_split.label_counts.argmax(axis=1).tolist())

# %% [markdown]
# We will compare it with FedAvg on the same clients, so both must get **the same work**. FedAvg
# runs `NUM_ROUNDS` rounds; the sequential loop therefore makes `NUM_ROUNDS` passes over the
# clients, and pass *p* trains each client on exactly the mini-batches it gets in FedAvg's round *p*
# (`round_num=p`). Every client then takes the same SGD steps on the same examples in both runs;
# only where each client starts, and whether anything is averaged, differ. (One pass against thirty
# rounds would hand FedAvg thirty times the work, and the comparison would say nothing.)

# %%
weights, sequential_accuracy = global_weights, []  # the broken loop: no broadcast, no average
for p in range(1, NUM_ROUNDS + 1):  # pass p: FedAvg's round-p work, one client after another
    for k in range(NUM_CLIENTS):  # client k starts from client k-1's model
        own = sorted_split.client_indices[k]
        x_k, y_k = digits.x_train[own], digits.y_train[own]
        result = fedlab.steps.local_update(
            model, weights, x_k, y_k, algorithm, round_num=p, client_id=k, seed=SEED
        )
        weights = result.weights
    _, accuracy = fedlab.steps.evaluate(model, weights, digits.x_test, digits.y_test)
    sequential_accuracy.append(accuracy)  # measured after each pass
sequential_weights = weights

# %% [markdown]
# Real FedAvg on the same one-digit clients: every client starts from the *same* global weights
# each round, and the server averages.

# %%
fedavg_sorted = fedlab.Simulation(algorithm, model_fn, digits, sorted_split, seed=SEED)
sorted_history = fedavg_sorted.run(NUM_ROUNDS, progress=False)
curves = {"one after another": sequential_accuracy, "FedAvg": sorted_history.test_accuracy}

# %% tags=["nbval-check-output", "last-digit-tolerance"]
print(f"{'test accuracy after':>19} {1:>6} {NUM_ROUNDS:>6} passes = rounds")
for name, curve in curves.items():
    print(f"{name:>19} {curve[0]:6.2f} {curve[-1]:6.2f}")

# %% [markdown]
# After one pass and one round both are close to chance. After thirty each, the sequential loop
# is *not* worse — here it is even a little ahead. Its problem is not where it ends up but how it
# gets there. Test accuracy after every pass and every round:

# %%
fig, ax = plt.subplots(figsize=(7, 2.6), layout="constrained")
for name, curve in curves.items():
    ax.plot(np.arange(1, NUM_ROUNDS + 1), curve, marker=".", label=name)
ax.set(xlabel="passes over the clients = FedAvg rounds (the same local work)")
ax.set(ylabel="test accuracy", ylim=(0, 1))
ax.legend(loc="lower right");

# %% [markdown]
# FedAvg climbs steadily and then levels off. The sequential loop starts far behind — after one
# pass it scores about 0.1, what always answering 9 would score, 9 being the digit of the last
# client it met — needs about twenty passes to catch up, and its accuracy falls back now and then:
# at every moment its model is whatever the last few clients made of it.
#
# Where do the two final models go wrong? Their accuracy on each digit separately:

# %%
runs = {"one after another": sequential_weights, "FedAvg": fedavg_sorted.weights}
fig, ax = plt.subplots(figsize=(7, 2.6), layout="constrained")
for shift, (name, weights) in zip([-0.2, 0.2], runs.items(), strict=True):
    model.set_weights(weights)
    predicted = np.argmax(model(digits.x_test), axis=1)
    per_digit = [np.mean(predicted[digits.y_test == c] == c) for c in range(10)]
    ax.bar(np.arange(10) + shift, per_digit, width=0.4, label=name)
ax.set(xticks=range(10), yticks=[0, 0.5, 1], xlabel="digit", ylabel="test accuracy", ylim=(0, 1.3))
ax.legend(fontsize="small", ncols=2, loc="upper center");


# %% [markdown]
# The sequential model is perfect on 9, the digit it trained on last, and weakest on 1; stop the
# chain after another client and its strong and weak digits move (exercise 7). FedAvg's model,
# whose every round starts all clients from the same weights and averages them, is good on every
# digit except 8, which lags far behind (notebooks 04–05 are about such clients).
#
# So with the same work the accuracy alone does not expose the broken loop. What is wrong with it:
# - **There is no aggregation.** The "global" model is the last client's model. Each client's
#   upload is the next client's download: a model trained directly on its predecessor's data, with
#   nothing averaged in between — nothing for secure aggregation to sum, nor for differential
#   privacy to add its noise to (notebooks 10–12).
# - **It is serial.** FedAvg's ten clients train at the same time, each on its own device; here
#   each waits for the one before, so a pass takes ten times as long as a round. In the time FedAvg
#   ran its thirty rounds, the sequential loop gets through three passes — about 0.2 on the curve
#   above. And one client that drops out stops the chain.
# - **It depends on the order.** The model leans towards whichever clients trained last.
# - **On IID clients it hides**: there it behaves like ordinary SGD and looks fine (exercise 4).
#
# **Fix:** broadcast the *same* global weights to every selected client, train them independently
# (in parallel on real devices), and let the server combine their updates — sections 4–6.
#
# ### (ii) A label variable that does not exist
#
# Inside a client update it is easy to refer to the labels by a name that is not defined there —
# here `labels` instead of the argument `y`:

# %% tags=["nbval-check-output"]
def broken_client_loss(model, x, y):
    return loss_fn(labels, model(x))  # bug: the labels are called `y` here


try:
    broken_client_loss(model, digits.x_train[:5], digits.y_train[:5])
except NameError as error:
    print(f"NameError: {error}")


# %% [markdown]
# In a notebook this bug is sneaky: if some earlier cell happened to define `labels`, the function
# **silently trains on those labels** — the wrong ones — and the error only appears on a fresh
# kernel. **Fix:** use the function's own arguments (`y`); lint your code (`ruff` reports this
# line as `F821 undefined name`); and before trusting a notebook, restart the kernel and run all
# cells — the tests of this course re-run every notebook from a clean kernel.
#
# ### (iii) A softmax output *and* `from_logits=True`
#
# `from_logits=True` tells the loss "these are raw scores; apply softmax yourself". If the model
# already ends in a softmax, the loss applies softmax **twice**. Below, the same network is trained
# for two epochs on all the data with `fedlab.steps.local_update` — once ending in logits, once in
# `tf.nn.softmax`:

# %%
def softmax_model():  # the bug: outputs probabilities, but the loss is told they are logits
    return keras.Sequential(
        [
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(10, activation=tf.nn.softmax),
        ]
    )


two_epochs = fedlab.FedAvg(local_epochs=2, batch_size=BATCH_SIZE, client_lr=CLIENT_LR)

# %% tags=["nbval-check-output"]
for name, make in [("logits", model_fn), ("softmax", softmax_model)]:
    net, start = fedlab.steps.initialize(make, digits.x_train, seed=SEED)
    result = fedlab.steps.local_update(net, start, digits.x_train, digits.y_train, two_epochs)
    loss, accuracy = fedlab.steps.evaluate(net, result.weights, digits.x_test, digits.y_test)
    print(f"{name:>7} output: test loss {loss:.2f}, test accuracy {accuracy:.2f}")
print(f"lowest loss a softmax model can reach here: {np.log(9 + np.e) - 1:.2f}")

# %% [markdown]
# With a double softmax the loss **cannot** go below 1.46 (the softmax of a one-hot vector is
# only 0.23 on the right class), the gradients are squashed, and learning crawls: after the same
# two epochs the model is far behind. Nothing crashes — that is what makes it dangerous.
#
# Keras 3 on TensorFlow recognises the most common spelling, `activation="softmax"`, and quietly
# repairs it everywhere (with a `UserWarning`). Inside a traced graph — `model.fit`,
# `model.evaluate`, any `tf.function` — it repairs `tf.nn.softmax` too, because it finds the
# softmax operation in the graph. So the bug bites when a softmax spelt another way meets a loss
# computed eagerly, as in `local_update` here (a plain `GradientTape` loop), and on the other
# Keras backends, which repair nothing. **Fix:** end the model with a plain `Dense` layer
# (logits), as every `fedlab` model does, and keep `from_logits=True`; apply softmax only when
# you want probabilities to show.
#
# ### (iv) `argmax` on integer labels
#
# Our labels are integers, not one-hot rows. `np.argmax(y)` on a 1-D vector returns **one number**
# — the position of the largest label — so comparing predictions with it measures nothing:

# %% tags=["nbval-check-output"]
predictions = np.argmax(baseline.predict(digits.x_test, verbose=0), axis=1)
print("np.argmax(y_test) =", np.argmax(digits.y_test), "(one index, not 360 labels)")
print(f"wrong 'accuracy': {np.mean(predictions == np.argmax(digits.y_test)):.2f}")
print(f"right accuracy:   {np.mean(predictions == digits.y_test):.2f}")

# %% [markdown]
# `np.argmax(digits.y_test)` is 8 here: the *position* of the first 9 among the test labels. So the
# "wrong accuracy" is really the fraction of images predicted to be an 8 — a number that looks
# like an accuracy and means nothing. **Fix:** take
# `argmax` of the **predictions** (`axis=1`, over classes), compare with the integer labels
# directly, and only `argmax` labels that really are one-hot (`axis=1` there too).
# `fedlab.metrics.accuracy(logits, labels)` does it right.
#
# ### Why "encrypt the data and send it to the server" is not federated learning
#
# A common proposal: "Clients encrypt their data, upload it, and the server trains on it." The data
# still **leaves the device**; the server holds the key (it must decrypt to train with ordinary
# tools), so it can read everything — encryption only protects the data on the wire. Federated
# learning turns this around: it **moves the computation to the data**, and only model updates
# travel. Updates are not automatically harmless either: notebook 10 shows what they can leak,
# notebook 11 adds differential privacy (noise that bounds what any one example can reveal), and
# notebook 12 secure aggregation (the server learns the *sum* of the updates, never one client's).

# %% [markdown]
# ## Summary
#
# - A federated round is: **initialise → send → train locally → upload → aggregate and
#   update**. Only weights, updates and example counts travel; the data stays put.
# - Local training is gradient descent: on each mini-batch of the client's own data,
#   θ ← θ − η∇J(θ) — one step of `client_update` or `fedlab.steps.local_update`.
# - FedAvg aggregates with a **mean weighted by example count**, Δ = Σ (n_k / n) Δ_k, and the server
#   applies w ← w + η_s Δ.
# - The hand-written round, `fedlab.steps` and the fast `fedlab.Simulation` produce the **same
#   weights** (to 10⁻⁵); from here on we use the engine.
# - On IID digits, 30 rounds of FedAvg reach almost the centralised baseline's accuracy.
# - Four bugs to avoid: sequential training posing as FL (given the same work its accuracy may look
#   fine, but nothing is aggregated and the clients wait for each other); names that only exist in
#   a stale kernel; a softmax output with `from_logits=True`; `argmax` on integer labels.
#
# ## Exercises
#
# Each exercise below has a cell for your answer, in code, and a **check** cell after it. Run the
# check: it prints ✓ and what it verified, or ✗ and the mistake it recognised, with a hint. The
# parts that ask you to explain have a cell for your answer in words.
#
# 1. **More local work.** Re-run section 6 with `LOCAL_EPOCHS = 5`. Do the three paths still
#    agree? How do the accuracy after 30 rounds and the client drift change?
# 2. **Unequal clients.** Build a split with `fedlab.ClientSplit.from_indices` where client 0
#    holds half of the training set and the others share the rest; write FedAvg's aggregate,
#    weighted by n_k / n. Which weighting treats every *example* equally, and which every
#    *client* (equal weights 1 / K)? When would you want each?
# 3. **The server's step.** Write the server's update, then re-run section 6 with
#    `SERVER_LR = 0.5` and `2.0`. Which one learns faster in the first rounds, and what happens
#    if you keep going?
# 4. **Sequential training on IID data.** Run the "one after another" loop of section 7(i) on the
#    IID `split` instead. Is its accuracy bad? Explain why it is still not federated learning.
# 5. **One client is centralised training.** With one client and `SERVER_LR = 1`, show that one
#    FedAvg round equals one epoch of mini-batch SGD over all the data (same batch order).
# 6. **What travels?** Compute the bytes a client uploads per round and the bytes of its own
#    data. Which is bigger here? What if the model had a million parameters? (Notebook 08 is
#    about this.)
# 7. **Which model does the chain hand you?** Run one more pass of the sequential loop of section
#    7(i) and record the accuracy on each digit after *every* client. How does the accuracy on a
#    digit change along the pass? What does this say about a model trained one client after
#    another?

# %%
from fedlab import exercises

# %% [markdown]
# ### Exercise 1 · More local work
#
# Run section 6's experiment again with five local epochs — change nothing else — and keep its
# `History` as `history_5`. Print the test accuracy after the last round and the mean client drift
# of both runs. Then check, for one round, that `fedlab.steps` and the engine still agree.

# %%
history_5 = ...  # section 6's run, with local_epochs=5
# BEGIN SOLUTION
five_epochs = fedlab.FedAvg(
    local_epochs=5, batch_size=BATCH_SIZE, client_lr=CLIENT_LR, server_lr=SERVER_LR
)
history_5 = fedlab.simulate(
    five_epochs, model_fn, digits, split, num_rounds=NUM_ROUNDS, seed=SEED, progress=False
)
for name, run in {"1 local epoch": history, "5 local epochs": history_5}.items():
    accuracy, drift = run.test_accuracy[-1], run.drift_mean.mean()
    print(f"{name:>14}: test accuracy {accuracy:.2f}, mean drift {drift:.2f}")
# END SOLUTION

# %% tags=["self-check"]
exercises.check_runs(history_5, history, name="history_5", what="section 6's run", local_epochs=5)

# %%
paths_agree = ...  # True if fedlab.steps and fedlab.Simulation give the same first round
# BEGIN SOLUTION
steps_round = fedlab.steps.run_round(
    model, global_weights, digits, split, five_epochs, NUM_CLIENTS, round_num=1, seed=SEED
)
engine = fedlab.Simulation(five_epochs, model_fn, digits, split, seed=SEED)
engine.step()
pairs = zip(steps_round.weights, engine.weights, strict=True)
paths_agree = all(np.allclose(a, b, atol=1e-5) for a, b in pairs)
print("fedlab.steps == fedlab.Simulation with 5 local epochs:", paths_agree)
# END SOLUTION

# %% tags=["self-check"]
hint = "they compute the same round: compare both rounds' weights, same algorithm and seed"
exercises.check_choice("paths_agree", paths_agree, True, {False: hint})

# %% [markdown]
# **How do the accuracy and the drift change, and why?**
#
# <!-- BEGIN SOLUTION -->
# **Model answer.** The three paths still agree: they are the same computation, whatever the
# settings (the cell above checks `fedlab.steps` against the engine; the hand-written round equals
# `fedlab.steps`, section 5). With five local epochs each client takes 40 SGD steps per round
# instead of 8, so a round moves the model further: after 30 rounds FedAvg reaches about 0.96
# instead of 0.94, closer to the centralised baseline. The client drift ‖w_k − w‖ grows too,
# from about 0.32 to 0.56 on average: each client walks further from the global model before it
# reports. On IID clients that costs nothing, because they all walk in similar directions and the
# average keeps the progress; on non-IID clients (notebooks 02 and 04) the extra drift pulls the
# clients apart and can make the average worse.
# <!-- END SOLUTION -->

# %% [markdown]
# ### Exercise 2 · Unequal clients
#
# **(a)** Build `unequal_split` with `fedlab.ClientSplit.from_indices`: shuffle the training
# indices (seeded), give the first half to client 0 and share the rest equally among the other
# `NUM_CLIENTS - 1` clients (`np.array_split`).

# %%
unequal_split = ...  # client 0 holds half of the training set, clients 1–9 share the rest
# BEGIN SOLUTION
order = np.random.default_rng(SEED).permutation(digits.num_train)
half = digits.num_train // 2
parts = [order[:half], *np.array_split(order[half:], NUM_CLIENTS - 1)]
unequal_split = fedlab.ClientSplit.from_indices(parts, digits.y_train, scheme="half on client 0")
print("client sizes:", unequal_split.sizes.tolist())
# END SOLUTION

# %% tags=["self-check"]
exercises.check_unequal_split(unequal_split, digits.y_train, NUM_CLIENTS)

# %% [markdown]
# **(b)** Write the server's aggregate of step (e): given every client's update (a list of arrays,
# one per layer) and its example count, return the mean update, layer by layer, client *k*
# weighted by n_k / n.

# %%
def fedavg_aggregate(deltas, counts):
    """The mean of the clients' `deltas`, one array per layer, client k weighted by n_k / n."""
    # BEGIN SOLUTION
    shares = np.asarray(counts, dtype=np.float64) / np.sum(counts)
    return [
        sum(share * delta[i] for share, delta in zip(shares, deltas, strict=True))
        for i in range(len(deltas[0]))
    ]
    # END SOLUTION


# %% tags=["self-check"]
exercises.check_fedavg_aggregate(fedavg_aggregate)
# BEGIN HIDDEN TESTS
exercises.check_fedavg_aggregate(fedavg_aggregate, seed=1)
# END HIDDEN TESTS

# %% [markdown]
# **(c)** On `unequal_split`, which weighting treats every *example* equally, and which every
# *client*? When would you want each?
#
# <!-- BEGIN SOLUTION -->
# **Model answer.** n_k / n treats every **example** equally: client 0's half of the data gets
# half of the say, exactly as if all the examples had been pooled, so FedAvg optimises the
# average loss over all examples. Equal weights 1 / K treat every **client** equally: client 0
# counts as much as a client with a ninth of its data, so each of client 0's examples weighs
# about nine times less than another client's. Use n_k / n when the goal is the best model for the
# data as a whole (the usual case, and FedAvg's). Use 1 / K (or something between) for fairness
# between clients — a model that also serves the small clients, a hospital with few patients as
# much as a big one — or when n_k cannot be trusted: a client that claims a huge n_k would
# otherwise dominate the average. Notebook 13 measures fairness per client.
# <!-- END SOLUTION -->

# %% [markdown]
# ### Exercise 3 · The server's step
#
# **(a)** Write the server's update of step (e): new global weights w + η_s · Δ, as a new list
# (leave `weights` unchanged: the server still needs them).

# %%
def server_update(weights, delta, server_lr):
    """The next global weights, w + server_lr · Δ, one array per layer."""
    # BEGIN SOLUTION
    return [w + server_lr * d for w, d in zip(weights, delta, strict=True)]
    # END SOLUTION


# %% tags=["self-check"]
exercises.check_server_update(server_update)
# BEGIN HIDDEN TESTS
exercises.check_server_update(server_update, seed=1)
# END HIDDEN TESTS

# %% [markdown]
# **(b)** Run section 6 again with `server_lr` 0.5 and 2.0, each for twice as many rounds
# (`2 * NUM_ROUNDS`), in a dict `lr_runs` keyed by the server learning rate. Print the mean test
# accuracy of the first five rounds, the accuracy in round 30 and in the last round, beside
# section 6's run (server_lr 1).

# %%
lr_runs = ...  # {0.5: History, 2.0: History}, each 2 * NUM_ROUNDS rounds
# BEGIN SOLUTION
lr_runs = {}
for lr in (0.5, 2.0):
    stepped = fedlab.FedAvg(
        local_epochs=LOCAL_EPOCHS, batch_size=BATCH_SIZE, client_lr=CLIENT_LR, server_lr=lr
    )
    lr_runs[lr] = fedlab.simulate(
        stepped, model_fn, digits, split, num_rounds=2 * NUM_ROUNDS, seed=SEED, progress=False
    )
print("server_lr  rounds 1–5  round 30  round 60")
for lr, run in {1.0: history, **lr_runs}.items():
    acc = run.test_accuracy
    later = f"{acc[59]:.2f}" if len(acc) >= 60 else "—"
    print(f"{lr:9}  {acc[:5].mean():10.2f}  {acc[29]:8.2f}  {later:>8}")
# END SOLUTION

# %% tags=["self-check"]
wanted = {"server_lr": {0.5: 0.5, 2.0: 2.0}, "num_rounds": 2 * NUM_ROUNDS}
exercises.check_runs(lr_runs, history, name="lr_runs", what="section 6's run", **wanted)

# %% [markdown]
# **(c)** Which learns faster in the first rounds, and what happens if you keep going?
#
# <!-- BEGIN SOLUTION -->
# **Model answer.** `server_lr = 2.0` learns fastest at first: each round moves the model twice
# as far along the clients' mean update, so it is at about 0.8 after two rounds, where 0.5 needs
# about five (the first five rounds average 0.78 against 0.55). On these IID clients the mean
# update points downhill and 2 is not yet too far: after 30 rounds 2.0 is ahead (0.96) and 0.5
# behind (0.91); going on to 60 rounds, 0.5 reaches 0.94, where 1.0 was after 30, and 2.0 stays
# at 0.96. It is less smooth, though: it dips in round 3. The server learning rate is an
# ordinary step size — too small wastes rounds, too large overshoots: try 3.0, which drops to
# about 0.4 in rounds 3–4 before it recovers. With non-IID clients the mean update is noisier
# and a large server step riskier. Notebook 06 treats the server step as an optimiser
# (momentum, Adam).
# <!-- END SOLUTION -->

# %% [markdown]
# ### Exercise 4 · Sequential training on IID data
#
# Run section 7(i)'s loop — `NUM_ROUNDS` passes, one client after another — on the IID `split`,
# from `global_weights`, and record the test accuracy after each pass in
# `sequential_iid_accuracy`.

# %%
sequential_iid_accuracy = ...  # test accuracy after each pass over the IID clients
# BEGIN SOLUTION
weights, sequential_iid_accuracy = global_weights, []
for p in range(1, NUM_ROUNDS + 1):
    for k in range(NUM_CLIENTS):
        own = split.client_indices[k]
        x_k, y_k = digits.x_train[own], digits.y_train[own]
        result = fedlab.steps.local_update(
            model, weights, x_k, y_k, algorithm, round_num=p, client_id=k, seed=SEED
        )
        weights = result.weights
    _, accuracy = fedlab.steps.evaluate(model, weights, digits.x_test, digits.y_test)
    sequential_iid_accuracy.append(accuracy)
first, last = sequential_iid_accuracy[0], sequential_iid_accuracy[-1]
print(f"one after another, IID: {first:.2f} after one pass, {last:.2f} after {NUM_ROUNDS}")
# END SOLUTION

# %% tags=["self-check"]
exercises.check_sequential_iid(sequential_iid_accuracy, NUM_ROUNDS, sequential_accuracy)

# %% [markdown]
# **Is its accuracy bad? Why is it still not federated learning?**
#
# <!-- BEGIN SOLUTION -->
# **Model answer.** Not at all: on IID clients it is about 0.74 after one pass and about 0.97
# after thirty, a little above FedAvg (0.94). Every client's data look like the whole, so passing
# the model along is just ordinary mini-batch SGD over the training set, visited in blocks. It
# is still not federated learning: there is no aggregation (the model a client receives is its
# predecessor's, trained on that predecessor's data alone, so each upload can be attacked on its
# own and nothing is averaged for secure aggregation or differential privacy to work on); the
# clients train one at a time, so a pass takes ten rounds' time and one client that drops out
# stops the chain; and the result depends on the order, as the one-digit split of section 7(i)
# showed. IID data only hides those problems.
# <!-- END SOLUTION -->

# %% [markdown]
# ### Exercise 5 · One client is centralised training
#
# Make a split with one client that holds the whole training set. Compute `fedavg_weights`, one
# FedAvg round on it with `fedlab.steps.run_round` (our `algorithm`: one local epoch, `SERVER_LR`
# = 1), and `sgd_weights`, one epoch of mini-batch SGD over all the training data from
# `global_weights`, with the same batches in the same order — section 4(c)'s `client_update` is
# such an epoch.

# %%
fedavg_weights = ...  # one FedAvg round, one client holding all the data
sgd_weights = ...  # one epoch of mini-batch SGD over all the data, the same batches
# BEGIN SOLUTION
everyone = [np.arange(digits.num_train)]
one_client = fedlab.ClientSplit.from_indices(everyone, digits.y_train, scheme="one client")
fedavg_weights = fedlab.steps.run_round(
    model, global_weights, digits, one_client, algorithm, 1, round_num=1, seed=SEED
).weights
sgd_weights = client_update(model, global_weights, digits.x_train, digits.y_train, client_id=0)
# END SOLUTION

# %% tags=["self-check"]
exercises.check_same_training(fedavg_weights, sgd_weights, global_weights)

# %% [markdown]
# ### Exercise 6 · What travels?
#
# Compute `upload`, the bytes one client sends per round (its update has as many numbers as
# `global_weights`); `own_data`, the bytes of client 0's own images and labels; and `million`, the
# bytes of one upload if the model had a million `float32` parameters. Set `bigger` to `"upload"`
# or `"data"`: which is bigger here?

# %%
upload = ...  # bytes one client uploads per round
own_data = ...  # bytes of client 0's own examples and labels
million = ...  # bytes of one upload with a million float32 parameters
bigger = ...  # "upload" or "data"
# BEGIN SOLUTION
own = split.client_indices[0]
upload = sum(w.nbytes for w in global_weights)
own_data = digits.x_train[own].nbytes + digits.y_train[own].nbytes
million = 1_000_000 * np.dtype(np.float32).itemsize
bigger = "upload" if upload > own_data else "data"
print(f"per round: upload {upload:,} bytes; client 0's data {own_data:,} bytes")
# END SOLUTION

# %% tags=["self-check"]
client_0 = split.client_indices[0]
x_0, y_0 = digits.x_train[client_0], digits.y_train[client_0]
exercises.check_what_travels(
    upload, own_data, million, bigger, weights=global_weights, x=x_0, y=y_0, num_clients=NUM_CLIENTS
)

# %% [markdown]
# **What if the model had a million parameters?**
#
# <!-- BEGIN SOLUTION -->
# **Model answer.** Here the two are about the same size: an update is 38 440 bytes (9 610
# float32 numbers), client 0's 144 images and labels 37 440 bytes — so after a single round the
# client has already sent more than its whole dataset, and after 30 rounds thirty times as much.
# With a million parameters (a small model by today's standards) one upload is 4 MB, about a
# hundred times the client's data, every round, in both directions. Federated learning keeps the
# data private, not small: communication, not data, becomes the cost that matters, which is why
# notebook 08 compresses updates and why clients often send only part of a model (notebook 09).
# <!-- END SOLUTION -->

# %% [markdown]
# ### Exercise 7 · Which model does the chain hand you?
#
# Continue section 7(i)'s chain for one more pass over the one-digit clients (`sorted_split`),
# from `sequential_weights`, with `round_num=NUM_ROUNDS + 1`. After every client, record the test
# accuracy on each digit: `chain_accuracy[k, c]` is the accuracy on digit c right after client k.

# %%
chain_accuracy = ...  # [client, digit]: accuracy on each digit right after each client
# BEGIN SOLUTION
weights, rows = sequential_weights, []
for k in range(NUM_CLIENTS):
    own = sorted_split.client_indices[k]
    x_k, y_k = digits.x_train[own], digits.y_train[own]
    weights = fedlab.steps.local_update(
        model, weights, x_k, y_k, algorithm, round_num=NUM_ROUNDS + 1, client_id=k, seed=SEED
    ).weights
    model.set_weights(weights)
    predicted = np.argmax(model(digits.x_test), axis=1)
    rows.append([np.mean(predicted[digits.y_test == c] == c) for c in range(10)])
chain_accuracy = np.array(rows)
swing = chain_accuracy.max(axis=0) - chain_accuracy.min(axis=0)
print("how far each digit's accuracy swings along the pass:", np.round(swing, 2).tolist())
fig, ax = plt.subplots(figsize=(4.5, 3.6), layout="constrained")
ax.imshow(chain_accuracy, vmin=0, vmax=1, cmap="viridis")
ax.set(xlabel="digit", ylabel="after client", xticks=range(10), yticks=range(10));
# END SOLUTION

# %% tags=["self-check"]
exercises.check_chain_accuracy(chain_accuracy, NUM_CLIENTS, 10)

# %% [markdown]
# **How does a digit's accuracy change along the pass? What does this say about a model trained
# one client after another?**
#
# <!-- BEGIN SOLUTION -->
# **Model answer.** Right after client k has trained, its own digit k is recognised (almost)
# perfectly: the bright diagonal. Most digits stay above 0.9 all along, but those that are easy to
# confuse swing: the accuracy on 8 is 1.0 right after client 8 and sinks to about 0.5 by client 7;
# the accuracy on 1 is 1.0 after clients 1–7 and about 0.6 right after client 8, whose 8s taught
# the model that such strokes are 8s; 9 drops to about 0.7 there too. A model trained one client
# after another is the last clients' model: it remembers best what it saw last and partly forgets
# the rest (catastrophic forgetting), so *which* model you get depends on where you stop the
# chain. FedAvg averages every round's clients, so no client's data
# has the last word.
# <!-- END SOLUTION -->
