"""Notebook 06's checks (fedlab/exercises/server_optimizers.py): each passes the right answer and
names every anticipated mistake with its own message; a stub fails with "still `...`" or
"returns None"."""

import numpy as np
import pytest

from fedlab import exercises
from fedlab.algorithms import ServerAdam, ServerMomentum
from fedlab.exercises import CheckFailed


def fails(check, *args, match: str, **kwargs):
    with pytest.raises(CheckFailed, match=match):
        check(*args, **kwargs)


# --- momentum_step -------------------------------------------------------------------------------


def momentum_step(w, d, v, lr, beta, nesterov=False):
    v = beta * v + d
    return w + lr * (beta * v + d if nesterov else v), v


def fedlab_momentum(w, d, v, lr, beta, nesterov=False):
    """fedlab's ServerMomentum, one layer: the reference the notebook compares with."""
    opt = ServerMomentum(server_lr=lr, momentum=beta, nesterov=nesterov)
    (new_w,), state = opt.apply([w], [d], {"velocity": [v]})
    return new_w, state["velocity"][0]


def plain_only(step):
    """A mistake in the plain step; Nesterov's step written right."""
    return lambda w, d, v, lr, beta, nesterov=False: (
        momentum_step(w, d, v, lr, beta, True) if nesterov else step(w, d, v, lr, beta)
    )


def nesterov_only(step):
    """The plain step written right; a mistake in Nesterov's."""
    return lambda w, d, v, lr, beta, nesterov=False: (
        step(w, d, v, lr, beta) if nesterov else momentum_step(w, d, v, lr, beta)
    )


def in_place(w, d, v, lr, beta, nesterov=False):
    v *= beta
    v += d
    return w + lr * v, v


MOMENTUM_MISTAKES = {
    "steps against the velocity": plain_only(
        lambda w, d, v, lr, b: (w - lr * (b * v + d), b * v + d)
    ),
    r"adds up the pseudo-gradient −Δ: here": plain_only(
        lambda w, d, v, lr, b: (w + lr * (b * v - d), b * v - d)
    ),
    r"adds up the pseudo-gradient −Δ \(and steps with −η\)": plain_only(
        lambda w, d, v, lr, b: (w - lr * (b * v - d), b * v - d)
    ),
    r"averages, v ← β·v \+ \(1 − β\)·Δ": plain_only(
        lambda w, d, v, lr, b: (w + lr * (b * v + (1 - b) * d), b * v + (1 - b) * d)
    ),
    "steps with last round's velocity": plain_only(lambda w, d, v, lr, b: (w + lr * v, b * v + d)),
    "puts β on Δ": plain_only(lambda w, d, v, lr, b: (w + lr * (v + b * d), v + b * d)),
    "ignores the old velocity": plain_only(lambda w, d, v, lr, b: (w + lr * d, d)),
    "keeps the velocity unchanged": plain_only(lambda w, d, v, lr, b: (w + lr * d, v)),
    "ignores server_lr": plain_only(lambda w, d, v, lr, b: (w + b * v + d, b * v + d)),
    "returns the old velocity": plain_only(lambda w, d, v, lr, b: (w + lr * (b * v + d), v)),
    "velocity depends on the weights": plain_only(
        lambda w, d, v, lr, b: (w + lr * (b * v + w), b * v + w)
    ),
    r"step depends on the weights themselves": plain_only(
        lambda w, d, v, lr, b: (b * w + lr * (b * v + d), b * v + d)
    ),
    "with nesterov=False momentum_step takes Nesterov's step": plain_only(
        lambda w, d, v, lr, b: momentum_step(w, d, v, lr, b, True)
    ),
    "with nesterov=True momentum_step takes the plain momentum step": nesterov_only(
        lambda w, d, v, lr, b: momentum_step(w, d, v, lr, b)
    ),
    "Nesterov step leaves Δ out": nesterov_only(
        lambda w, d, v, lr, b: (w + lr * b * (b * v + d), b * v + d)
    ),
    "Nesterov step leaves β out": nesterov_only(
        lambda w, d, v, lr, b: (w + lr * (b * v + 2 * d), b * v + d)
    ),
    r"Nesterov step \(nesterov=True\) is not FedAvgM's": nesterov_only(
        lambda w, d, v, lr, b: (w + lr * (b * v + d) ** 2, b * v + d)
    ),
    "changed an argument in place": in_place,
    "should return a pair": lambda w, d, v, lr, beta, nesterov=False: w + lr * (beta * v + d),
    "two arrays shaped like weights": lambda w, d, v, lr, beta, nesterov=False: (w[:1], v),
    "returns None": lambda w, d, v, lr, beta, nesterov=False: None,
}


@pytest.mark.parametrize("seed", [None, 1, 4])
def test_the_momentum_step_check_passes_fedavgm_and_names_each_slip(seed, capsys):
    exercises.check_momentum_step(momentum_step, seed=seed)
    exercises.check_momentum_step(fedlab_momentum, seed=seed)
    assert capsys.readouterr().out.startswith("✓ momentum_step")
    for message, wrong in MOMENTUM_MISTAKES.items():
        fails(exercises.check_momentum_step, wrong, seed=seed, match=message)


# --- adam_path -----------------------------------------------------------------------------------


def adam_path(w0, deltas, server_lr, beta1=0.9, beta2=0.99, tau=1e-3, *, how=None):
    """FedAdam's server path, or one of its usual variants (``how``)."""
    how = how or {}
    w, m, v, path = w0, 0 * w0, np.full_like(w0, how.get("v0", tau**2)), []
    for t, d in enumerate(deltas, start=1):
        m = beta1 * m + how.get("m_rate", 1 - beta1) * d
        v = how["v"](v, d, m) if "v" in how else beta2 * v + (1 - beta2) * d**2
        m_hat = m / (1 - beta1**t) if how.get("correct_m") else m
        v_hat = v / (1 - beta2**t) if how.get("correct_v") else v
        step = how.get("step", lambda m, v, d: server_lr * m / (np.sqrt(v) + tau))
        w = w + step(m_hat, v_hat, d)
        path.append(w)
    return np.array(path)


def fedlab_adam(w0, deltas, server_lr, beta1, beta2, tau):
    opt = ServerAdam(server_lr=server_lr, beta1=beta1, beta2=beta2, tau=tau)
    weights, state, path = [w0], opt.init([w0]), []
    for d in deltas:
        weights, state = opt.apply(weights, [d], state)
        path.append(weights[0])
    return np.array(path)


def adam_variant(**how):
    def variant(w0, deltas, lr, b1, b2, tau):
        steps = {
            "against": lambda m, v, d: -lr * m / (np.sqrt(v) + tau),
            "tau_in_sqrt": lambda m, v, d: lr * m / np.sqrt(v + tau),
            "no_sqrt": lambda m, v, d: lr * m / (v + tau),
            "delta": lambda m, v, d: lr * d / (np.sqrt(v) + tau),
        }
        seconds = {
            "abs": lambda v, d, m: b2 * v + (1 - b2) * np.abs(d),
            "plain": lambda v, d, m: b2 * v + (1 - b2) * d,
            "whole": lambda v, d, m: b2 * v + d**2,
            "of_m": lambda v, d, m: b2 * v + (1 - b2) * m**2,
            "yogi": lambda v, d, m: v - (1 - b2) * d**2 * np.sign(v - d**2),
            "adagrad": lambda v, d, m: v + d**2,
        }
        spec = dict(how)
        if "step" in spec:
            spec["step"] = steps[spec["step"]]
        if "v" in spec:
            spec["v"] = seconds[spec["v"]]
        return adam_path(w0, deltas, lr, b1, b2, tau, how=spec)

    return variant


ADAM_MISTAKES = {
    r"corrects the bias \(m / \(1 − β1\^t\), v": adam_variant(correct_m=True, correct_v=True),
    "corrects m's bias": adam_variant(correct_m=True),
    r"adds \|Δ\|, not its square": adam_variant(v="abs"),
    "NaN: a square root of a negative v|adds Δ, not its square": adam_variant(v="plain"),
    "steps against m": adam_variant(step="against"),
    "starts v at 0": adam_variant(v0=0.0),
    "adds Δ and Δ² whole": adam_variant(m_rate=1.0, v="whole"),
    "adds Δ to m whole": adam_variant(m_rate=1.0),
    "puts τ inside the square root": adam_variant(step="tau_in_sqrt"),
    "divides by v, not by √v": adam_variant(step="no_sqrt"),
    "steps with this round's Δ, not with m": adam_variant(step="delta"),
    "second moment squares m": adam_variant(v="of_m"),
    "moves v as Yogi does": adam_variant(v="yogi"),
    "sums v as Adagrad does": adam_variant(v="adagrad"),
    "returns one vector of weights": lambda w0, deltas, *a: adam_path(w0, deltas, *a)[-1],
    "leave w0 out": lambda w0, deltas, *a: np.vstack([w0, adam_path(w0, deltas, *a)]),
    "want \\(": lambda w0, deltas, *a: adam_path(w0, deltas, *a)[:, :1],
    "not FedAdam's": lambda w0, deltas, *a: adam_path(w0, deltas, *a) + 0.01,
    "returns None": lambda *a: None,
}


@pytest.mark.filterwarnings("ignore:invalid value encountered in sqrt:RuntimeWarning")
@pytest.mark.parametrize("seed", [None, 1, 6])
def test_the_adam_path_check_names_bias_correction_missing_square_and_the_sign(seed, capsys):
    exercises.check_adam_path(adam_path, seed=seed)
    exercises.check_adam_path(fedlab_adam, seed=seed)
    assert capsys.readouterr().out.startswith("✓ adam_path")
    for message, wrong in ADAM_MISTAKES.items():
        fails(exercises.check_adam_path, wrong, seed=seed, match=message)


# --- runs of a server optimiser ------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny(digits):
    """A run maker: two rounds on four clients, as quick as training gets."""
    import fedlab

    split = fedlab.partition.iid(digits.y_train, 4, seed=0)

    def run(algorithm, rounds=2):
        return fedlab.simulate(
            algorithm, lambda: fedlab.FedModel(10), digits, split, num_rounds=rounds, progress=False
        )

    return run


def test_the_server_runs_check_sees_the_server_optimisers_settings(tiny):
    import fedlab
    from fedlab.algorithms import ProxAlgorithm

    client = {"local_epochs": 1, "batch_size": 50, "client_lr": 0.1}
    avgm = tiny(fedlab.FedAvgM(**client, server_lr=0.2))
    nesterov = tiny(fedlab.FedAvgM(**client, server_lr=0.2, nesterov=True))
    exercises.check_server_runs(nesterov, avgm, name="nesterov_run", nesterov=True)
    fails(
        exercises.check_server_runs,
        avgm,
        avgm,
        name="nesterov_run",
        nesterov=True,
        match="ran with nesterov=False",
    )
    fails(
        exercises.check_server_runs,
        tiny(fedlab.FedAvgM(**client, server_lr=0.1, nesterov=True)),
        avgm,
        name="nesterov_run",
        nesterov=True,
        match=r"also changed server_lr \(0.2 → 0.1\)",
    )
    fails(exercises.check_server_runs, ..., avgm, name="nesterov_run", match="still `...`")
    betas = {
        0.5: tiny(fedlab.FedAvgM(**client, server_lr=1.0, momentum=0.5)),
        0.95: tiny(fedlab.FedAvgM(**client, server_lr=0.1, momentum=0.95)),
    }
    wanted = {"momentum": {0.5: 0.5, 0.95: 0.95}, "server_lr": {0.5: 1.0, 0.95: 0.1}}
    exercises.check_server_runs(betas, avgm, name="beta_runs", **wanted)
    same_lr = {**betas, 0.5: tiny(fedlab.FedAvgM(**client, server_lr=0.2, momentum=0.5))}
    fails(
        exercises.check_server_runs,
        same_lr,
        avgm,
        name="beta_runs",
        match=r"beta_runs\[0.5\] ran with server_lr=0.2",
        **wanted,
    )
    adam = tiny(fedlab.FedAdam(**client, server_lr=0.03))
    prox_adam = tiny(
        ProxAlgorithm(mu=0.01, **client, server_optimizer=ServerAdam(0.03), name="FedProx+Adam")
    )
    exercises.check_server_runs(prox_adam, adam, name="prox_adam", mu=0.01)
    fails(
        exercises.check_server_runs,
        tiny(fedlab.FedProx(mu=0.01, **client)),
        adam,
        name="prox_adam",
        mu=0.01,
        match="server optimiser is ServerSGD, the reference run's ServerAdam",
    )
    fails(
        exercises.check_server_runs,
        tiny(fedlab.FedAdam(**client, server_lr=0.03, tau=0.1)),
        adam,
        name="tau_runs",
        tau=1e-4,
        match="ran with tau=0.1",
    )
    fails(exercises.check_server_runs, [adam], adam, name="one", match="not the History")


# --- gains ---------------------------------------------------------------------------------------


def gains(accuracy, baseline):
    return {k: a[-1] - accuracy[baseline][-1] for k, a in accuracy.items() if k != baseline}


def gains_by(measure, sign=1.0):
    return lambda accuracy, baseline: {
        k: sign * (measure(a) - measure(accuracy[baseline]))
        for k, a in accuracy.items()
        if k != baseline
    }


GAIN_MISTAKES = {
    "baseline minus the run": gains_by(lambda a: a[-1], -1.0),
    "percentage points": gains_by(lambda a: 100 * a[-1]),
    "compares the best rounds": gains_by(np.max),
    "compares the mean over all rounds": gains_by(np.mean),
    "compares the first rounds": gains_by(lambda a: a[0]),
    "has an entry for the baseline": lambda accuracy, baseline: {
        k: a[-1] - accuracy[baseline][-1] for k, a in accuracy.items()
    },
    "has no entry for": lambda accuracy, baseline: dict(
        list(gains(accuracy, baseline).items())[1:]
    ),
    "should return a dict": lambda accuracy, baseline: list(gains(accuracy, baseline).values()),
    "not each run's final accuracy": gains_by(lambda a: a[-2]),
    "returns None": lambda accuracy, baseline: None,
}


@pytest.mark.parametrize("seed", [None, 2, 5])
def test_the_gains_check_names_the_sign_and_the_wrong_round(seed):
    exercises.check_gains(gains, seed=seed)
    for message, wrong in GAIN_MISTAKES.items():
        fails(exercises.check_gains, wrong, seed=seed, match=message)


# --- FedAdam's first steps -----------------------------------------------------------------------


def test_the_first_steps_check_names_the_sign_rule_and_the_usual_slips():
    deltas, lr = np.array([0.001, 0.01, 0.1, 1.0]), 1.0
    right = adam_path(np.zeros(4), deltas[None], lr)[0]
    exercises.check_first_steps(right, deltas, lr)
    exercises.check_first_steps(np.round(right, 3).tolist(), deltas, lr)  # by hand, rounded
    fails(exercises.check_first_steps, ..., deltas, lr, match="first_steps is still `...`")
    mistakes = {
        r"η·sign\(Δ\) for every Δ": np.ones(4),
        "SGD's step": lr * deltas,
        "starts v at 0": adam_path(np.zeros(4), deltas[None], lr, how={"v0": 0.0})[0],
        "corrects the bias": adam_path(
            np.zeros(4), deltas[None], lr, how={"correct_m": True, "correct_v": True}
        )[0],
        "forgets m's factor": 10 * right,
        "0.03 times FedAdam's first steps": 0.03 * right,
        "has 3 numbers for 4": right[:3],
        "are not FedAdam's first steps": right[::-1],
        "should be numbers": ["a", "b", "c", "d"],
    }
    for message, wrong in mistakes.items():
        fails(exercises.check_first_steps, wrong, deltas, lr, match=message)
