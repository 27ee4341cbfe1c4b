"""Checks for notebook 01's exercises (a round by hand): the aggregate and the server step,
what travels, one client is centralised training, sequential training."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from fedlab.exercises.core import (
    CheckFailed,
    Mistake,
    Weights,
    call,
    diagnose,
    passed,
    require,
    same,
)

# --- aggregation and the server step (notebook 01, section 4(e)) ---------------------------------


__all__ = [
    "check_chain_accuracy",
    "check_fedavg_aggregate",
    "check_same_training",
    "check_sequential_iid",
    "check_server_update",
    "check_what_travels",
]


def _aggregate_example(seed: int | None) -> tuple[list[Weights], list[int]]:
    """Three clients' deltas (two layers) and example counts: by hand, or random with a seed."""
    if seed is None:
        deltas = [
            [np.array([1.0]), np.array([0.0, 2.0])],
            [np.array([3.0]), np.array([4.0, 0.0])],
            [np.array([10.0]), np.array([1.0, 1.0])],
        ]
        return deltas, [1, 2, 7]
    rng = np.random.default_rng(seed)
    counts = [int(n) for n in rng.integers(5, 200, size=4)]
    deltas = [[rng.normal(size=3), rng.normal(size=(2, 2))] for _ in counts]
    return deltas, counts


def _weighted(deltas: list[Weights], weights: Sequence[float]) -> Weights:
    return [
        sum(w * d[i] for w, d in zip(weights, deltas, strict=True)) for i in range(len(deltas[0]))
    ]


def check_fedavg_aggregate(fedavg_aggregate: Callable, seed: int | None = None) -> None:
    """Check ``fedavg_aggregate(deltas, counts)``: the mean of the clients' deltas, one array per
    layer, client k weighted by n_k / n (``fedlab.steps.aggregate``).

    It recognises: every client weighted equally (1/K); weights n_k not divided by n; the plain
    sum; weights inverted (1/n_k); the first client's update; a single array instead of one per
    layer; only the first layer.

    Example:
        >>> from fedlab.steps import aggregate
        >>> check_fedavg_aggregate(aggregate)
        ✓ fedavg_aggregate weights client k by n_k / n, layer by layer
        >>> def equal_weights(deltas, counts):
        ...     return [np.mean([d[i] for d in deltas], axis=0) for i in range(len(deltas[0]))]
        >>> check_fedavg_aggregate(equal_weights)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: fedavg_aggregate weights every client equally (1/K)...
    """
    deltas, counts = _aggregate_example(seed)
    got = call(
        fedavg_aggregate, "fedavg_aggregate", [[d.copy() for d in c] for c in deltas], counts
    )
    n = np.asarray(counts, dtype=np.float64)
    k = len(counts)
    expected = _weighted(deltas, n / n.sum())
    if isinstance(got, np.ndarray) or np.isscalar(got):
        raise CheckFailed(
            "fedavg_aggregate returns one array; return a list with one array per layer, like "
            "each client's delta (the model has several weight arrays)"
        )
    mistakes = [
        Mistake(
            _weighted(deltas, np.full(k, 1 / k)),
            "fedavg_aggregate weights every client equally (1/K); FedAvg weights client k by "
            "n_k / n, its share of all the examples, so a client with more data counts more",
        ),
        Mistake(
            _weighted(deltas, n),
            "fedavg_aggregate multiplies each delta by n_k but does not divide by n = Σ n_k: the "
            "weights n_k / n must sum to 1",
        ),
        Mistake(
            _weighted(deltas, np.ones(k)),
            "fedavg_aggregate adds the deltas up: divide, weighting client k by n_k / n",
        ),
        Mistake(
            _weighted(deltas, (1 / n) / (1 / n).sum()),
            "fedavg_aggregate gives small clients the large weights (1/n_k); client k's weight "
            "is n_k / n",
        ),
        Mistake(
            deltas[0],
            "fedavg_aggregate returns the first client's update; average all the clients', "
            "weighting client k by n_k / n",
        ),
    ]
    if len(got) != len(expected):
        raise CheckFailed(
            f"fedavg_aggregate returns {len(got)} arrays for deltas of {len(expected)} layers: "
            "aggregate every layer (one array per layer, in order)"
        )
    diagnose(
        got,
        expected,
        mistakes,
        "fedavg_aggregate's result is not the n_k / n-weighted mean of the deltas; check the "
        "weights (they must sum to 1) and that each layer is averaged on its own",
    )
    passed("fedavg_aggregate weights client k by n_k / n, layer by layer")


def check_server_update(server_update: Callable, seed: int | None = None) -> None:
    """Check ``server_update(weights, delta, server_lr)``: the new global weights
    ``w + server_lr · Δ``, one array per layer, without changing ``weights`` in place.

    It recognises: the wrong sign (``w − η Δ``); ``server_lr`` ignored; the step without the
    weights (``η Δ``); the learning rate applied to the weights too (``η (w + Δ)``); the weights
    returned unchanged; ``weights`` changed in place.

    Example:
        >>> from fedlab.steps import server_update
        >>> check_server_update(server_update)
        ✓ server_update moves w along the clients' mean update: w + server_lr · Δ
        >>> check_server_update(lambda w, d, lr: [a - lr * b for a, b in zip(w, d)])  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: server_update steps against the clients' update...
    """
    if seed is None:
        weights, delta, lr = (
            [np.array([1.0, 2.0]), np.array([[0.5]])],
            [np.array([2.0, -2.0]), np.array([[1.0]])],
            0.5,
        )
    else:
        rng = np.random.default_rng(seed)
        weights = [rng.normal(size=4), rng.normal(size=(3, 2))]
        delta = [rng.normal(size=4), rng.normal(size=(3, 2))]
        lr = float(rng.uniform(0.3, 3.0))
    given = [w.copy() for w in weights]
    got = call(server_update, "server_update", given, [d.copy() for d in delta], lr)
    if not same(given, weights):
        raise CheckFailed(
            "server_update changed the weights it was given (in place, e.g. with +=): the server "
            "still needs the old global weights; build new arrays (w + server_lr * d)"
        )
    if isinstance(got, np.ndarray):
        raise CheckFailed("server_update returns one array; return a list, one array per layer")
    expected = [w + lr * d for w, d in zip(weights, delta, strict=True)]
    mistakes = [
        Mistake(
            [w - lr * d for w, d in zip(weights, delta, strict=True)],
            "server_update steps against the clients' update (w − η_s Δ): Δ = w_k − w already "
            "points where the clients went, downhill; the server moves along it, w + η_s Δ",
        ),
        Mistake(
            [w + d for w, d in zip(weights, delta, strict=True)],
            "server_update ignores server_lr: scale the update, w + server_lr · Δ",
        ),
        Mistake(
            [lr * d for d in delta],
            "server_update returns only the step η_s Δ: add it to the current weights",
        ),
        Mistake(
            [lr * (w + d) for w, d in zip(weights, delta, strict=True)],
            "server_update scales the weights too (η_s (w + Δ)): only the update is scaled, "
            "w + η_s Δ",
        ),
        Mistake(weights, "server_update returns the weights unchanged: add server_lr · delta"),
    ]
    diagnose(
        got, expected, mistakes, "server_update's result is not w + server_lr · Δ, layer by layer"
    )
    passed("server_update moves w along the clients' mean update: w + server_lr · Δ")


# --- what travels (notebook 01, exercise 6) ------------------------------------------------------


def check_what_travels(
    upload: Any,
    own_data: Any,
    million: Any,
    bigger: Any,
    *,
    weights: Weights,
    x: np.ndarray,
    y: np.ndarray,
    num_clients: int,
) -> None:
    """Check three byte counts: ``upload``, what one client sends per round (its update: as many
    numbers as ``weights``, float32); ``own_data``, the bytes of that client's examples ``x`` and
    labels ``y``; ``million``, one client's upload for a model of a million float32 parameters;
    ``bigger``, ``"upload"`` or ``"data"``, whichever of the first two is bigger.

    It recognises: stubs; numbers of parameters instead of bytes; every client's upload instead of
    one; the inputs without the labels (or the labels alone); float64 (8 bytes) instead of the
    float32 the weights are; ``bigger`` contradicting the two numbers.

    Example:
        >>> w = [np.zeros((2, 3), np.float32), np.zeros(3, np.float32)]
        >>> x, y = np.zeros((5, 4), np.float32), np.zeros(5, np.int32)
        >>> check_what_travels(36, 100, 4_000_000, "data", weights=w, x=x, y=y, num_clients=10)
        ✓ one client uploads 36 bytes per round and holds 100 bytes of data; a million float32 parameters are 4 MB
        >>> check_what_travels(9, 100, 4_000_000, "data", weights=w, x=x, y=y, num_clients=10)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: upload = 9 is the number of parameters, not bytes:...
    """
    require(
        "upload",
        upload,
        "the bytes one client sends per round (its update is as big as global_weights)",
    )
    require("own_data", own_data, "the bytes of client 0's own examples and labels (.nbytes)")
    require("million", million, "the bytes of one upload for a million float32 parameters")
    require("bigger", bigger, 'write "upload" or "data"')
    params = sum(int(np.size(w)) for w in weights)
    item = int(np.asarray(weights[0]).dtype.itemsize)
    diagnose(
        upload,
        params * item,
        [
            Mistake(
                params,
                f"upload = {upload} is the number of parameters, not bytes: each is a "
                f"float{8 * item} of {item} bytes (w.nbytes counts them)",
            ),
            Mistake(
                params * item * num_clients,
                f"upload = {upload} is what all {num_clients} "
                "clients send together; count one client's upload",
            ),
            Mistake(
                params * 8,
                f"upload = {upload} counts 8 bytes per parameter: the weights are "
                f"float{8 * item}, {item} bytes each (w.nbytes)",
            ),
        ],
        "upload is not the size of one client's update: count the bytes of every array it "
        "sends (.nbytes), one client, one round",
    )
    diagnose(
        own_data,
        x.nbytes + y.nbytes,
        [
            Mistake(
                x.nbytes,
                "own_data counts the inputs only: the labels are data the client "
                "holds too (x.nbytes + y.nbytes)",
            ),
            Mistake(y.nbytes, "own_data counts the labels only: add the inputs (x.nbytes)"),
            Mistake(x.size + y.size, "own_data counts numbers, not bytes: use .nbytes"),
            Mistake(
                x.size * 8 + y.nbytes, "own_data counts 8 bytes per pixel: x is float32 (x.nbytes)"
            ),
        ],
        "own_data is not the bytes of client 0's own examples and labels (the rows of x_train "
        "and y_train at split.client_indices[0])",
    )
    diagnose(
        million,
        1_000_000 * item,
        [
            Mistake(1_000_000, "million = 1000000 counts parameters; in bytes it is 4 per float32"),
            Mistake(8_000_000, "million counts 8 bytes per parameter: float32 is 4"),
            Mistake(
                1_000_000 * item * num_clients, "million counts every client: one client's upload"
            ),
        ],
        "million is not the bytes of a million float32 parameters",
    )
    truth = "upload" if upload > own_data else "data"
    if bigger not in ("upload", "data"):
        raise CheckFailed(f'bigger = {bigger!r}: answer "upload" or "data"')
    if bigger != truth:
        raise CheckFailed(
            f"bigger = {bigger!r}, but upload = {upload} and own_data = {own_data} bytes: "
            "compare the two numbers you computed"
        )
    passed(
        f"one client uploads {upload} bytes per round and holds {own_data} bytes of data; a million "
        f"float{8 * item} parameters are {million / 1e6:g} MB"
    )


# --- one client is centralised training (notebook 01, exercise 5) --------------------------------


def check_same_training(fedavg: Any, sgd: Any, start: Weights) -> None:
    """Check that one FedAvg round with one client (``fedavg``) and one epoch of mini-batch SGD on
    all the data (``sgd``), both from ``start``, gave the same weights (to 1e-5).

    It recognises: stubs; a result equal to ``start`` (nothing trained); the FedAvg step a
    multiple of the SGD step (a server learning rate other than 1); results that differ otherwise
    (different batches, order or learning rate).

    Example:
        >>> start = [np.zeros(2)]
        >>> check_same_training([np.ones(2)], [np.ones(2)], start)
        ✓ one FedAvg round with one client == one epoch of SGD on all the data (to 1e-5)
        >>> check_same_training([np.full(2, 0.5)], [np.ones(2)], start)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: the FedAvg round moved 0.50 times as far as SGD...
    """
    require("fedavg_weights", fedavg, "one FedAvg round with one client holding all the data")
    require("sgd_weights", sgd, "one epoch of mini-batch SGD over all the data")
    for label, got in (("fedavg_weights", fedavg), ("sgd_weights", sgd)):
        shapes = [np.shape(w) for w in got] if isinstance(got, list | tuple) else None
        if shapes != [np.shape(w) for w in start]:
            raise CheckFailed(
                f"{label} should be a list of weight arrays shaped like global_weights"
            )
        if same(got, start, atol=1e-9, rtol=0):
            raise CheckFailed(f"{label} equals the starting weights: nothing was trained")
    if same(fedavg, sgd):
        passed("one FedAvg round with one client == one epoch of SGD on all the data (to 1e-5)")
        return
    step_a = np.concatenate([np.ravel(a - s) for a, s in zip(fedavg, start, strict=True)])
    step_b = np.concatenate([np.ravel(b - s) for b, s in zip(sgd, start, strict=True)])
    ratio = float(step_a @ step_b / (step_b @ step_b))
    if np.allclose(step_a, ratio * step_b, atol=1e-5):
        raise CheckFailed(
            f"the FedAvg round moved {ratio:.2f} times as far as SGD: with one client the server "
            "step must be the client's own (server_lr = 1)"
        )
    raise CheckFailed(
        "the two results differ: use the same batches in the same order (fedlab.steps.batch_order "
        "with round_num=1, client_id=0 and SEED), the same client_lr and one local epoch"
    )


# --- sequential training (notebook 01, exercises 4 and 7) ----------------------------------------


def check_sequential_iid(accuracy: Any, num_passes: int, sorted_accuracy: Sequence[float]) -> None:
    """Check the test accuracy after each pass of the one-client-after-another loop run on the
    IID split (notebook 01, exercise 4): ``num_passes`` numbers in [0, 1], not the curve of the
    one-digit split (``sorted_accuracy``, section 7(i)).

    Example:
        >>> check_sequential_iid([0.7, 0.8, 0.9], 3, [0.1, 0.2, 0.5])
        ✓ sequential_iid_accuracy: 3 passes on the IID split, 0.70 after the first, 0.90 after the last
        >>> check_sequential_iid([0.1, 0.2, 0.5], 3, [0.1, 0.2, 0.5])  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: that is section 7(i)'s curve, on the one-digit split...
    """
    require(
        "sequential_iid_accuracy", accuracy, "the test accuracy after each pass on the IID split"
    )
    values = np.asarray(accuracy, dtype=np.float64).ravel()
    if len(values) != num_passes:
        raise CheckFailed(
            f"sequential_iid_accuracy has {len(values)} numbers: record the test accuracy once "
            f"after each of the {num_passes} passes"
        )
    if values.min() < 0 or values.max() > 1:
        raise CheckFailed("accuracies lie in [0, 1]: append the accuracy that evaluate returns")
    if same(values, np.asarray(sorted_accuracy, dtype=np.float64)[:num_passes]):
        raise CheckFailed(
            "that is section 7(i)'s curve, on the one-digit split: loop over the IID `split`'s "
            "clients instead (split.client_indices[k])"
        )
    passed(
        f"sequential_iid_accuracy: {num_passes} passes on the IID split, {values[0]:.2f} after the "
        f"first, {values[-1]:.2f} after the last"
    )


def check_chain_accuracy(chain: Any, num_clients: int, num_classes: int) -> None:
    """Check ``chain``: the test accuracy on each digit after each client of one pass of the
    sequential loop on one-digit clients, row k after client k (notebook 01, exercise 7).

    It recognises: the stub; one overall accuracy per client instead of one per digit; counts
    instead of fractions; the same row repeated (the same weights evaluated after every client);
    rows in which client k's own digit is not among the best (rows not in client order, or the
    weights evaluated before the client trained).

    Example:
        >>> check_chain_accuracy(np.eye(3) * 0.5 + 0.5, 3, 3)
        ✓ chain_accuracy: 3 clients × 3 digits; right after client k, digit k is at the top of its row
        >>> check_chain_accuracy(np.full((3, 3), 0.8), 3, 3)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: every row of chain_accuracy is the same...
    """
    require("chain_accuracy", chain, "one row per client, one accuracy per digit in each row")
    values = np.asarray(chain, dtype=np.float64)
    if values.ndim == 1 and len(values) == num_clients:
        raise CheckFailed(
            "chain_accuracy holds one number per client: the overall accuracy. Record one per "
            "digit: np.mean(predicted[y_test == c] == c) for c in range(10), a row per client"
        )
    if values.shape != (num_clients, num_classes):
        raise CheckFailed(
            f"chain_accuracy has shape {values.shape}; it should be ({num_clients}, {num_classes}): "
            "row k after client k, column c the accuracy on digit c"
        )
    if values.min() < 0 or values.max() > 1:
        raise CheckFailed(
            "chain_accuracy has values outside [0, 1]: counts? Divide by the number of test "
            "images of each digit (np.mean does it)"
        )
    if np.allclose(values, values[:1]):
        raise CheckFailed(
            "every row of chain_accuracy is the same: evaluate the weights right after client k "
            "has trained, inside the loop over clients"
        )
    if np.allclose(values, values[:, :1]):
        raise CheckFailed(
            "within each row every digit has the same accuracy: that is the overall accuracy. "
            "Per digit: np.mean(predicted[y_test == c] == c)"
        )
    own = np.diag(values)
    low = [k for k in range(num_clients) if own[k] < values[k].max() - 0.1]
    if len(low) >= 2:
        raise CheckFailed(
            f"right after client k trains on digit k, digit k should be among the best of row k; "
            f"it is not in rows {low}. Rows in client order, evaluated after the client trained?"
        )
    passed(
        f"chain_accuracy: {num_clients} clients × {num_classes} digits; right after client k, "
        "digit k is at the top of its row"
    )
