"""The checks of notebook 09's exercises (fedlab/exercises/lora.py): each passes the right answer
and names each anticipated mistake with its own message, and fails on the stub."""

import math
import zlib

import numpy as np
import pytest

from fedlab import large_models
from fedlab import lora as lora_lib
from fedlab.exercises import CheckFailed
from fedlab.exercises import lora as checks
from fedlab.exercises.communication import _fake_run


def fails(check, *args, match: str, **kwargs):
    with pytest.raises(CheckFailed, match=match):
        check(*args, **kwargs)


# --- exercise 1 ----------------------------------------------------------------------------------


def right_gradients(x, G, A, B):
    return x.T @ G @ B.T, A.T @ x.T @ G


GRADIENT_MISTAKES = {
    r"returns \(∂L/∂B, ∂L/∂A\)": lambda x, G, A, B: right_gradients(x, G, A, B)[::-1],
    "∂L/∂A has shape .* W's: xᵀ G": lambda x, G, A, B: (x.T @ G, A.T @ x.T @ G),
    "∂L/∂B has shape .* W's: xᵀ G": lambda x, G, A, B: (x.T @ G @ B.T, x.T @ G),
    "∂L/∂A is divided by the batch size": lambda x, G, A, B: (
        x.T @ G @ B.T / len(x),
        A.T @ x.T @ G,
    ),
    "∂L/∂B has the wrong sign": lambda x, G, A, B: (x.T @ G @ B.T, -(A.T @ x.T @ G)),
    "∂L/∂A is not the chain rule": lambda x, G, A, B: (2 * x.T @ G @ B.T, A.T @ x.T @ G),
    "check the transposes": lambda x, G, A, B: (x.T @ G @ B.T, (A.T @ x.T @ G).T),
    "should return two arrays": lambda x, G, A, B: x.T @ G,
    "returns None": lambda x, G, A, B: None,
    "raised ValueError": lambda x, G, A, B: (x @ G @ B, A.T @ x.T @ G),
}


@pytest.mark.parametrize("seed", [None, 1, 5])
def test_the_gradient_check_names_the_full_gradient_swaps_and_signs(seed):
    checks.check_lora_gradients(right_gradients, seed=seed)
    for message, wrong in GRADIENT_MISTAKES.items():
        fails(checks.check_lora_gradients, wrong, seed=seed, match=message)


def test_the_gradients_are_what_autodiff_gives():
    import tensorflow as tf

    rng = np.random.default_rng(0)
    x, W = rng.normal(size=(3, 4)), rng.normal(size=(4, 5))
    A, B, target = rng.normal(size=(4, 2)), rng.normal(size=(2, 5)), rng.normal(size=(3, 5))
    a, b = tf.Variable(A), tf.Variable(B)
    with tf.GradientTape() as tape:
        y = x @ (W + a @ b)
        loss = tf.reduce_sum((y - target) ** 2) / 2
    grad_a, grad_b = tape.gradient(loss, [a, b])
    G = x @ (W + A @ B) - target  # ∂L/∂y
    np.testing.assert_allclose(grad_a.numpy(), right_gradients(x, G, A, B)[0])
    np.testing.assert_allclose(grad_b.numpy(), right_gradients(x, G, A, B)[1])


# --- exercise 2 ----------------------------------------------------------------------------------


PARAMETER_MISTAKES = {
    "counts the weight itself": lambda i, o, r: i * o,
    "multiplies d_in·d_out by r": lambda i, o, r: r * i * o,
    "counts A alone": lambda i, o, r: r * i,
    "counts B alone": lambda i, o, r: r * o,
    "assumes a square weight": lambda i, o, r: 2 * r * i,
    "counts r²": lambda i, o, r: r * r * (i + o),
    "leaves out the rank": lambda i, o, r: i + o,
    "not the number of entries": lambda i, o, r: r * (i + o) + 1,
    "returns None": lambda i, o, r: None,
    "should be one number": lambda i, o, r: [r * i, r * o],
}


@pytest.mark.parametrize("seed", [None, 2, 8])
def test_the_parameter_check_names_full_matrices_and_single_factors(seed):
    checks.check_lora_parameters(lambda d_in, d_out, rank: rank * (d_in + d_out), seed=seed)
    for message, wrong in PARAMETER_MISTAKES.items():
        fails(checks.check_lora_parameters, wrong, seed=seed, match=message)


def test_the_count_agrees_with_the_large_model_formula():
    def count(d_in, d_out, rank):
        return rank * (d_in + d_out)

    config = large_models.LLAMA_3_8B
    shapes = config.matrix_shapes()
    by_hand = config.num_layers * sum(count(*shapes[t], 8) for t in ("q", "v"))
    assert by_hand == config.lora_parameters(8, ("q", "v"))


SHARE_MISTAKES = {
    "share still missing": lambda p, p0, pf: (p - pf) / (p0 - pf),
    "upside down": lambda p, p0, pf: (p0 - pf) / (p0 - p),
    "ratio of perplexities": lambda p, p0, pf: pf / p,
    "relative to the pre-trained": lambda p, p0, pf: (p0 - p) / p0,
    "compares losses": lambda p, p0, pf: math.log(p0 / p) / math.log(p0 / pf),
    "is not": lambda p, p0, pf: (p0 - p) / (p0 - pf) + 0.1,
    "returns None": lambda p, p0, pf: None,
}


@pytest.mark.parametrize("seed", [None, 1, 4])
def test_the_share_check_names_the_missing_share_and_log_ratios(seed):
    checks.check_share_of_gain(lambda p, p0, pf: (p0 - p) / (p0 - pf), seed=seed)
    for message, wrong in SHARE_MISTAKES.items():
        fails(checks.check_share_of_gain, wrong, seed=seed, match=message)


# --- exercise 3 ----------------------------------------------------------------------------------


def shares(counts):
    return np.asarray(counts, float) / np.sum(counts)


def exact(As, Bs, counts):
    return lora_lib.average_of_products(As, Bs, counts)


AVERAGE_MISTAKES = {
    "averages A and B separately and multiplies": lambda As, Bs, n: lora_lib.product_of_averages(
        As, Bs, n
    ),
    "separately, and weights every client equally": lambda As, Bs, n: lora_lib.product_of_averages(
        As, Bs
    ),
    r"weights every client equally \(1/K\)": lambda As, Bs, n: lora_lib.average_of_products(As, Bs),
    "without dividing by n": lambda As, Bs, n: sum(
        k * a @ b for k, a, b in zip(n, As, Bs, strict=True)
    ),
    "first client's update": lambda As, Bs, n: As[0] @ Bs[0],
    "returns two factors": lambda As, Bs, n: (
        sum(p * a for p, a in zip(shares(n), As, strict=True)),
        sum(p * b for p, b in zip(shares(n), Bs, strict=True)),
    ),
    "returns shape": lambda As, Bs, n: exact(As, Bs, n).T,
    r"is not Σ \(n_k / n\)": lambda As, Bs, n: 2 * exact(As, Bs, n),
    "returns None": lambda As, Bs, n: None,
}


@pytest.mark.parametrize("seed", [None, 1, 3])
def test_the_averaging_check_names_factor_averaging(seed):
    checks.check_average_of_updates(exact, seed=seed)
    for message, wrong in AVERAGE_MISTAKES.items():
        fails(checks.check_average_of_updates, wrong, seed=seed, match=message)


@pytest.fixture(scope="module")
def tiny_keyboards():
    from fedlab.keyboard import keyboard

    def make(h=0.5, **changed):
        kw = dict(num_clients=4, sentences_per_client=10, public_sentences=20, seed=0)
        return keyboard(heterogeneity=h, **{**kw, **changed})

    return make


def test_the_keyboards_check_names_swapped_unchanged_and_other_settings(tiny_keyboards):
    data = tiny_keyboards(0.5)
    right = {0.0: tiny_keyboards(0.0), 1.0: tiny_keyboards(1.0)}
    checks.check_keyboards(right, data)
    mistakes = {
        "keyboards.0.0. has heterogeneity 1.0: this entry wants 0.0": {
            0.0: right[1.0],
            1.0: right[0.0],
        },
        "still HETEROGENEITY's": {0.0: right[0.0], 1.0: data},
        "keep NUM_CLIENTS and SENTENCES_PER_CLIENT": {
            0.0: right[0.0],
            1.0: tiny_keyboards(1.0, num_clients=5),
        },
        "the public corpus or the seed": {0.0: right[0.0], 1.0: tiny_keyboards(1.0, seed=1)},
        r"no data for heterogeneity \[1.0\]": {0.0: right[0.0]},
        "not what keyboard\\(\\) returns": {0.0: right[0.0], 1.0: "data"},
        "should be a dict": [right[0.0], right[1.0]],
        "keyboards is still `...`": ...,
    }
    for message, wrong in mistakes.items():
        fails(checks.check_keyboards, wrong, data, match=message)


def fake(accuracy, **algorithm):
    run = _fake_run(accuracy, [1] * len(accuracy), [1] * len(accuracy), [1] * len(accuracy), 1.0)
    run.config = {"algorithm": {"name": "FedAvg", "client_lr": 4.0, **algorithm}, "seed": 0}
    return run


def test_the_heterogeneity_runs_check_names_reused_data_and_changed_settings():
    reference = {"LoRA": fake([0.5, 0.6]), "frozen A": fake([0.5, 0.55])}
    right = {
        0.0: {"LoRA": fake([0.52, 0.63]), "frozen A": fake([0.51, 0.57])},
        1.0: {"LoRA": fake([0.45, 0.5]), "frozen A": fake([0.44, 0.47])},
    }
    checks.check_heterogeneity_runs(right, reference)
    mistakes = {
        r"het_runs\[1.0\]\['LoRA'\] is section 3's run again": {
            **right,
            1.0: {**right[1.0], "LoRA": reference["LoRA"]},
        },
        "the 'frozen A' runs are the same at every heterogeneity": {
            **right,
            1.0: {**right[1.0], "frozen A": right[0.0]["frozen A"]},
        },
        r"also changed client_lr \(4.0 → 1.0\): change only the data": {
            **right,
            0.0: {**right[0.0], "LoRA": fake([0.5, 0.7], client_lr=1.0)},
        },
        r"has no run for 'frozen A'": {**right, 0.0: {"LoRA": right[0.0]["LoRA"]}},
        r"het_runs\[1.0\]\['LoRA'\] is still": {**right, 1.0: {**right[1.0], "LoRA": ...}},
        "should be a dict": [right[0.0], right[1.0]],
        "het_runs is still `...`": ...,
    }
    for message, wrong in mistakes.items():
        fails(checks.check_heterogeneity_runs, wrong, reference, match=message)


# --- exercise 4 ----------------------------------------------------------------------------------


def test_the_client_megabytes_check_names_the_section_3_formula_and_all_clients():
    run = _fake_run([0.5, 0.6], [51_200, 51_200], [13_000, 13_000], [1, 1], 1.0)
    checks.check_client_megabytes(0.00642, run, 10)
    mistakes = {
        "twice the uplink": 0.0026,
        "counts all 10 clients": 0.0642,
        "the uplink alone": 0.0013,
        "the downlink alone": 0.00512,
        "in bytes": 6420,
        "not one client's bytes": 0.01,
        "still `...`": ...,
    }
    for message, wrong in mistakes.items():
        fails(checks.check_client_megabytes, wrong, run, 10, match=message)


def test_the_llama3_check_names_square_kv_layers_and_bits():
    config = large_models.LLAMA_3_8B
    values = config.lora_parameters(8, ("q", "v"))
    seconds = 32 * values / 10e6
    checks.check_llama3_adapters(values, seconds, config=config)
    per_q, per_v = 8 * (4096 + 4096), 8 * (4096 + 1024)
    mistakes = {
        "takes v as square": (32 * (per_q + 8 * 8192), seconds),
        "counts one layer": (per_q + per_v, seconds),
        "counts q alone": (32 * per_q, seconds),
        "counts v alone": (32 * per_v, seconds),
        "counts the full q and v matrices": (32 * (4096 * 4096 + 4096 * 1024), seconds),
        "is not rank": (values + 1, seconds),
        "divides bytes by bits per second": (values, seconds / 8),
        "counts 8 bits per bit": (values, seconds * 8),
        "float16 upload": (values, seconds / 2),
        "Mbit as 2²⁰ bits": (values, 32 * values / (10 * 2**20)),
        "not the float32 upload time": (values, 100.0),
        "llama3_values is still": (..., seconds),
        "llama3_seconds is still": (values, ...),
    }
    for message, (v, s) in mistakes.items():
        fails(checks.check_llama3_adapters, v, s, config=config, match=message)


# --- exercise 5 ----------------------------------------------------------------------------------


def token_losses(model, x, y):
    logits = np.asarray(model(x), dtype=np.float64)
    log_z = np.log(np.exp(logits).sum(axis=-1))
    return log_z - np.take_along_axis(logits, y[..., None], axis=-1)[..., 0]


def right_perplexity(model, x, y):
    return float(np.exp(token_losses(model, x, y)[y != 0].mean()))


def per_sentence(model, x, y):
    losses, real = token_losses(model, x, y), y != 0
    return np.array([losses[i][real[i]].mean() for i in range(len(y))])


PERPLEXITY_MISTAKES = {
    "counts the <pad> targets": lambda m, x, y: np.exp(token_losses(m, x, y).mean()),
    "is the mean loss": lambda m, x, y: token_losses(m, x, y)[y != 0].mean(),
    "averages per-sentence perplexities": lambda m, x, y: np.exp(per_sentence(m, x, y)).mean(),
    "averages per sentence first": lambda m, x, y: np.exp(per_sentence(m, x, y).mean()),
    "is 2\\^loss": lambda m, x, y: 2 ** token_losses(m, x, y)[y != 0].mean(),
    "exp of the summed loss": lambda m, x, y: np.exp(token_losses(m, x, y)[y != 0].sum()),
    "is not exp": lambda m, x, y: right_perplexity(m, x, y) + 1,
    "returns None": lambda m, x, y: None,
}


@pytest.mark.parametrize("seed", [None, 1, 2])
def test_the_perplexity_check_names_pads_missing_exp_and_per_sentence_means(seed):
    checks.check_perplexity(right_perplexity, seed=seed)
    for message, wrong in PERPLEXITY_MISTAKES.items():
        fails(checks.check_perplexity, wrong, seed=seed, match=message)


def test_the_perplexity_check_accepts_keras_loss_and_predict():
    import keras

    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0)

    def with_keras(model, x, y):
        return float(np.exp(loss(y, model.predict(x, verbose=0))))

    checks.check_perplexity(with_keras)


class Logits:
    """A model whose logits favour the target tokens by ``sharpness`` (0: uniform)."""

    def __init__(self, data, sharpness):
        self.vocab, self.sharpness = len(data.vocab), sharpness
        self.lookup = {}
        for x, y in ((data.x_train, data.y_train), (data.x_test, data.y_test)):
            for row_x, row_y in zip(x, y, strict=True):
                self.lookup[row_x.tobytes()] = row_y

    def __call__(self, x):
        rows = np.asarray(x)
        y = np.stack([self.lookup[row.tobytes()] for row in rows])
        noise = [
            np.random.default_rng(zlib.crc32(row.tobytes())).normal(size=(len(row), self.vocab))
            for row in rows
        ]
        return self.sharpness * np.eye(self.vocab)[y] + np.stack(noise)


def test_the_personal_check_names_training_sentences_every_user_and_no_fine_tuning(
    tiny_keyboards,
):
    data = tiny_keyboards(0.5)
    global_model, personal = Logits(data, 0.5), Logits(data, 2.0)
    test, train = data.test_client_ids == 0, data.client_ids == 0

    def ppl(model, x, y):
        return right_perplexity(model, x, y)

    on_test = {m: ppl(m, data.x_test[test], data.y_test[test]) for m in (global_model, personal)}
    right = {"global": on_test[global_model], "personal": on_test[personal]}
    checks.check_personal_perplexity(right, global_model, personal, data)
    mistakes = {
        "training sentences": (
            {**right, "personal": ppl(personal, data.x_train[train], data.y_train[train])},
            personal,
        ),
        "every user's test sentences": (
            {**right, "global": ppl(global_model, data.x_test, data.y_test)},
            personal,
        ),
        "is the loss": ({**right, "personal": math.log(right["personal"])}, personal),
        "swapped": ({"global": right["personal"], "personal": right["global"]}, personal),
        "gives the global model's perplexity": (
            {"global": right["global"], "personal": right["global"]},
            global_model,
        ),
        "made user 0's perplexity worse": (
            {
                "global": right["global"],
                "personal": ppl(Logits(data, -1.0), data.x_test[test], data.y_test[test]),
            },
            Logits(data, -1.0),
        ),
        'keys "global" and "personal"': ({"global": right["global"]}, personal),
        "user0_perplexity is still": (..., personal),
        "personal_model is still": (right, ...),
    }
    for message, (answer, model) in mistakes.items():
        fails(checks.check_personal_perplexity, answer, global_model, model, data, match=message)
