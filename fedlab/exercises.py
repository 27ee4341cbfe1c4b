"""Self-checks for the notebooks' exercises: each says *which* mistake it found, not only that
there is one (the **Exercises** of ``01_one_round_by_hand`` and ``02_client_splits`` so far).

Every exercise ends with a check cell that calls one function of this module on the student's
answer. A check either prints one line starting with ✓ that says what it verified, or raises
:class:`CheckFailed` with a message naming the mistake it recognised and what to do about it::

    >>> check_fedavg_aggregate(lambda deltas, counts: deltas[0])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    fedlab.exercises.CheckFailed: fedavg_aggregate returns the first client's update...

Each check knows the wrong answers students typically give (weighting every client equally,
a server step with the wrong sign, the last round's accuracy instead of the mean of the last ten,
...): it computes what each would give on a small example it can work out by hand, and names the
one it meets. An unchanged stub (``...``, ``None``, a function that returns nothing) fails too: a
check that cannot fail is worthless, so ``tests/test_exercises.py`` runs every check on every
anticipated wrong answer and on the stub of the student version. Checks never print the expected
answer. The optional ``seed`` of the checks of functions draws a random example instead of the
hand-computed one: the teacher's hidden tests use it, so an answer cannot be fitted to the
public example (``docs/exercises-tooling.md``: student and solution versions, nbgrader).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

Weights = list[np.ndarray]


class CheckFailed(AssertionError):
    """An exercise's answer is wrong (or still the stub); the message says what and what to do.

    In a notebook it shows as one line, ``✗ message``, without a traceback: the message is the
    feedback, and the frames of the check's own code would only hide it.

    Example:
        >>> str(CheckFailed("your aggregate weights every client equally"))
        'your aggregate weights every client equally'
    """

    def _render_traceback_(self) -> list[str]:  # IPython shows these lines instead of a traceback
        return [f"\x1b[31m✗ {self}\x1b[0m"]


def passed(what: str) -> None:
    """Print that a check passed, and what it verified.

    Example:
        >>> passed("fedavg_aggregate weights client k by n_k / n")
        ✓ fedavg_aggregate weights client k by n_k / n
    """
    print(f"✓ {what}")


def is_stub(value: object) -> bool:
    """Whether ``value`` is what an unanswered stub leaves: ``...`` or ``None``.

    Example:
        >>> is_stub(...), is_stub(None), is_stub(0)
        (True, True, False)
    """
    return value is Ellipsis or value is None


def require(name: str, value: object, task: str) -> None:
    """Fail with "``name`` is still ``...``: ``task``" if ``value`` is a stub.

    Example:
        >>> require("history_5", ..., "run FedAvg with local_epochs=5")
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: history_5 is still `...`: run FedAvg with local_epochs=5
    """
    if is_stub(value):
        raise CheckFailed(f"{name} is still `...`: {task}")


def call(fn: Callable, name: str, *args: Any) -> Any:
    """``fn(*args)``, failing with a plain message if ``fn`` is no function, raises or returns
    nothing (the stub's empty body).

    Example:
        >>> call(lambda x: x + 1, "add_one", 1)
        2
        >>> def add_one(x):
        ...     ...
        >>> call(add_one, "add_one", 1)
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: add_one returns None: write its body (and return the result)
    """
    if not callable(fn):
        raise CheckFailed(f"{name} should be a function, got {type(fn).__name__} {fn!r:.60}")
    try:
        result = fn(*args)
    except NotImplementedError:
        raise CheckFailed(f"{name} is not written yet: replace its body with your code") from None
    except Exception as error:  # the student's bug: report it as feedback, on one line
        raise CheckFailed(
            f"{name} raised {type(error).__name__}: {error} (on the check's small example)"
        ) from error
    if result is None:
        raise CheckFailed(f"{name} returns None: write its body (and return the result)")
    return result


@dataclass(frozen=True)
class Mistake:
    """A wrong answer a check expects, and what to tell a student who gives it.

    Attributes:
        answer: what the mistake gives on the check's example (a number or a list of arrays).
        hint: the feedback: what the student did, and what to do instead.

    Example:
        >>> Mistake(answer=5.0, hint="every client weighted equally").hint
        'every client weighted equally'
    """

    answer: Any
    hint: str


def _as_arrays(value: Any) -> list[np.ndarray] | None:
    """``value`` as a list of float arrays, or None if it cannot be one."""
    try:
        if isinstance(value, np.ndarray) or np.isscalar(value):
            return [np.asarray(value, dtype=np.float64)]
        return [np.asarray(v, dtype=np.float64) for v in value]
    except (TypeError, ValueError):
        return None


def same(a: Any, b: Any, atol: float = 1e-5, rtol: float = 1e-5) -> bool:
    """Whether two numbers, arrays or lists of arrays are equal within the tolerances.

    Example:
        >>> same([np.ones(2), 3.0], [np.ones(2), 3.0 + 1e-7]), same(1.0, [1.0, 2.0])
        (True, False)
    """
    left, right = _as_arrays(a), _as_arrays(b)
    if left is None or right is None or len(left) != len(right):
        return False
    return all(
        x.shape == y.shape and np.allclose(x, y, atol=atol, rtol=rtol)
        for x, y in zip(left, right, strict=True)
    )


def diagnose(
    got: Any, expected: Any, mistakes: Sequence[Mistake], otherwise: str, atol: float = 1e-5
) -> None:
    """Fail with the hint of the first mistake ``got`` equals, or ``otherwise``; pass if ``got``
    equals ``expected``. The core of every check.

    Example:
        >>> diagnose(5.0, 3.5, [Mistake(5.0, "every client weighted equally")], "not the mean")
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: every client weighted equally
        >>> diagnose(3.5, 3.5, [], "not the mean")
    """
    if same(got, expected, atol=atol):
        return
    for mistake in mistakes:
        if same(got, mistake.answer, atol=atol):
            raise CheckFailed(mistake.hint)
    raise CheckFailed(otherwise)


# --- aggregation and the server step (notebook 01, section 4(e)) ---------------------------------


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


# --- controlled experiments: re-run with one setting changed (every notebook) -------------------

_IGNORED = {"client_cost", "num_parameters", "strategy", "model"}


def _settings(history: Any) -> dict[str, Any]:
    """A History's settings as one flat dict (the algorithm's inside), plus num_rounds."""
    config = dict(history.config)
    flat = {k: v for k, v in config.items() if k != "algorithm" and k not in _IGNORED}
    flat.update({k: v for k, v in config.get("algorithm", {}).items() if k != "name"})
    flat["algorithm"] = config.get("algorithm", {}).get("name")
    flat["num_rounds"] = len(history)
    return flat


def check_runs(
    runs: Any,
    reference: Any,
    *,
    name: str = "runs",
    what: str = "the reference run",
    **changed: Any,
) -> None:
    """Check a controlled experiment: ``runs`` (a History, or a dict of them) were made exactly as
    ``reference`` (a History, or a dict with the same keys) except for the settings ``changed``.

    A value in ``changed`` applies to every run; a dict gives one value per run (and names the
    runs expected). Settings are those of ``History.config`` (``local_epochs``, ``client_lr``,
    ``clients_per_round``, ``split``, ``dataset``, ...) and ``num_rounds``. It recognises: a run
    still a stub or missing; a wanted setting not applied; another setting changed as well (two
    causes for one difference); fewer or more rounds than the reference.

    Example:
        >>> from fedlab.history import History
        >>> base = History(config={"algorithm": {"name": "FedAvg", "local_epochs": 1}, "seed": 0})
        >>> same_again = History(config={"algorithm": {"name": "FedAvg", "local_epochs": 1}, "seed": 0})
        >>> check_runs(same_again, base, name="history_5", local_epochs=5)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: history_5 ran with local_epochs=1; this exercise wants local_epochs=5...
    """
    require(name, runs, f"make the runs, each as {what} with {_describe(changed)}")
    from fedlab.history import History

    keyed = isinstance(runs, Mapping)
    wanted_keys = None
    for value in changed.values():
        if isinstance(value, Mapping):
            wanted_keys = list(value)
    if wanted_keys is None and isinstance(reference, Mapping):
        wanted_keys = list(reference)
    if wanted_keys is not None and not keyed:
        raise CheckFailed(
            f"{name} should be a dict with one History per run: {', '.join(map(repr, wanted_keys))}"
        )
    items = list(runs.items()) if keyed else [(None, runs)]
    if wanted_keys is not None:
        missing = [k for k in wanted_keys if k not in runs]
        if missing:
            raise CheckFailed(f"{name} has no run for {', '.join(map(repr, missing))}")
    for key, run in items:
        label = name if key is None else f"{name}[{key!r}]"
        require(label, run, f"run it as {what} with {_describe(changed)}")
        if not isinstance(run, History):
            raise CheckFailed(
                f"{label} is a {type(run).__name__}, not the History that fedlab.simulate returns"
            )
        ref = reference[key] if isinstance(reference, Mapping) else reference
        got, base = _settings(run), _settings(ref)
        wants = {k: (v[key] if isinstance(v, Mapping) else v) for k, v in changed.items()}
        for setting, value in wants.items():
            if got.get(setting) != value:
                raise CheckFailed(
                    f"{label} ran with {setting}={got.get(setting)!r}; this exercise wants "
                    f"{setting}={value!r} (change only that)"
                )
        for setting, value in base.items():
            if setting in wants or got.get(setting) == value:
                continue
            if setting == "num_rounds":
                raise CheckFailed(
                    f"{label} has {got['num_rounds']} rounds, {what} has {value}: run as many, "
                    "so the two compare"
                )
            raise CheckFailed(
                f"{label} also changed {setting} ({value!r} → {got.get(setting)!r}): change only "
                f"{' and '.join(wants)}, so any difference you see has one cause"
            )
    made = f"{len(items)} runs, each made" if keyed else "made"
    passed(f"{name}: {made} as {what}, with {_describe(changed)}")


def _describe(changed: Mapping[str, Any]) -> str:
    """``changed`` in words: ``local_epochs=5``, or per run ``split: 1 → 'shards(1/client)', …``."""
    parts = []
    for setting, value in changed.items():
        if isinstance(value, Mapping):
            each = ", ".join(f"{key!r} → {v!r}" for key, v in value.items())
            parts.append(f"{setting} per run ({each})")
        else:
            parts.append(f"{setting}={value!r}")
    return " and ".join(parts)


# --- client splits (notebooks 01 and 02) ---------------------------------------------------------


def check_unequal_split(split: Any, labels: np.ndarray, num_clients: int) -> None:
    """Check a split of ``labels`` over ``num_clients`` clients in which client 0 holds half of the
    examples and the others share the rest equally (notebook 01, exercise 2).

    It recognises: the stub; another number of clients; client 0 holding more or less than half;
    examples left without a client; the other clients given unequal shares.

    Example:
        >>> from fedlab.partition import ClientSplit
        >>> labels = np.zeros(12, dtype=int)
        >>> check_unequal_split(ClientSplit.from_indices([range(6), range(6, 9), range(9, 12)], labels), labels, 3)
        ✓ unequal_split: client 0 holds 6 of 12 examples, the other 2 clients 3 each
        >>> check_unequal_split(ClientSplit.from_indices([range(4), range(4, 8), range(8, 12)], labels), labels, 3)
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: client 0 holds 4 of the 12 examples (33 %); give it half: its indices are the first 6 of a shuffled order, say
    """
    require("unequal_split", split, "build it with fedlab.ClientSplit.from_indices")
    sizes, n = np.asarray(split.sizes), len(labels)
    if split.num_clients != num_clients:
        raise CheckFailed(f"unequal_split has {split.num_clients} clients; make {num_clients}")
    if sizes.sum() != n:
        raise CheckFailed(
            f"{n - sizes.sum()} of the {n} examples have no client: deal every example to one "
            "client (client 0 half of them, the others the rest)"
        )
    if abs(int(sizes[0]) - n // 2) > 1:
        raise CheckFailed(
            f"client 0 holds {sizes[0]} of the {n} examples ({100 * sizes[0] / n:.0f} %); give "
            f"it half: its indices are the first {n // 2} of a shuffled order, say"
        )
    rest = sizes[1:]
    if rest.max() - rest.min() > 1:
        raise CheckFailed(
            f"the other clients hold {rest.min()} to {rest.max()} examples: share the rest "
            "equally (np.array_split of the remaining indices)"
        )
    passed(
        f"unequal_split: client 0 holds {sizes[0]} of {n} examples, the other "
        f"{num_clients - 1} clients {rest.min()}{'' if rest.min() == rest.max() else f'–{rest.max()}'} each"
    )


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


# --- measuring a split and its runs (notebook 02) ------------------------------------------------


def check_last10_mean(last10_mean: Callable, seed: int | None = None) -> None:
    """Check ``last10_mean(accuracy)``: the mean of the last ten numbers of a per-round series.

    It recognises: the last round only; the best round; the mean over all rounds; the first ten
    rounds; the last nine or eleven (an off-by-one slice).

    Example:
        >>> check_last10_mean(lambda a: float(np.mean(a[-10:])))
        ✓ last10_mean averages the last 10 rounds
        >>> check_last10_mean(lambda a: float(a[-1]))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: last10_mean returns the last round's accuracy...
    """
    if seed is None:
        acc = np.array(
            [0.1, 0.3, 0.45, 0.6, 0.7, 0.72, 0.78, 0.8, 0.77, 0.83]
            + [0.85, 0.82, 0.88, 0.84, 0.9, 0.86, 0.89, 0.91, 0.87, 0.89]
        )
    else:
        rng = np.random.default_rng(seed)
        acc = np.clip(np.sort(rng.uniform(0.1, 0.9, 25)) + rng.normal(0, 0.03, 25), 0, 1)
    got = call(last10_mean, "last10_mean", acc.copy())
    diagnose(
        got,
        acc[-10:].mean(),
        [
            Mistake(
                acc[-1],
                "last10_mean returns the last round's accuracy: one round can be "
                "lucky or unlucky; average the last ten (accuracy[-10:])",
            ),
            Mistake(acc.max(), "last10_mean returns the best round: average the last ten"),
            Mistake(
                acc.mean(),
                "last10_mean averages every round, the early ones too: only the "
                "last ten (accuracy[-10:])",
            ),
            Mistake(
                acc[:10].mean(),
                "last10_mean averages the first ten rounds: take the last ten, accuracy[-10:]",
            ),
            Mistake(
                acc[-10:-1].mean(),
                "last10_mean averages nine rounds (accuracy[-10:-1] "
                "leaves the last out): accuracy[-10:]",
            ),
            Mistake(acc[-11:].mean(), "last10_mean averages eleven rounds: accuracy[-10:]"),
        ],
        "last10_mean is not the mean of the last ten values: np.mean(accuracy[-10:])",
    )
    passed("last10_mean averages the last 10 rounds")


def check_alpha_sweep(
    alphas: Sequence[float],
    h: Any,
    accuracy: Any,
    *,
    labels: np.ndarray,
    num_clients: int,
    seed: int,
) -> None:
    """Check a sweep over Dirichlet α (notebook 02, exercise 3): ``h[i]`` is the heterogeneity of
    ``partition.dirichlet(labels, num_clients, alpha=alphas[i], seed=seed)`` and ``accuracy[i]``
    a test accuracy in [0, 1] of FedAvg trained on it.

    It recognises: stubs; a number of results other than one per α; the results in reverse
    order; an H that is not that split's; accuracies out of [0, 1]; the same accuracy for every α
    (one split trained on every time).

    Example:
        >>> from fedlab.partition import dirichlet
        >>> labels = np.repeat(np.arange(4), 30)
        >>> h = [dirichlet(labels, 3, alpha=a, seed=0).heterogeneity() for a in (10, 0.1)]
        >>> check_alpha_sweep([10, 0.1], h, [0.9, 0.7], labels=labels, num_clients=3, seed=0)
        ✓ the sweep: H from 0.10 (α = 10) to 0.27 (α = 0.1), one accuracy for each
        >>> check_alpha_sweep([10, 0.1], h[::-1], [0.7, 0.9], labels=labels, num_clients=3, seed=0)
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: alpha_h is in the reverse order of the αs: alpha_h[i] belongs to alphas[i]
    """
    from fedlab import partition

    require("alpha_h", h, "the H of each α's Dirichlet split, in the order of the αs")
    require("alpha_accuracy", accuracy, "FedAvg's mean accuracy of the last 10 rounds, per α")
    h, accuracy = np.asarray(h, dtype=np.float64), np.asarray(accuracy, dtype=np.float64)
    if len(h) != len(alphas) or len(accuracy) != len(alphas):
        raise CheckFailed(
            f"alpha_h has {len(h)} values and alpha_accuracy {len(accuracy)}: one each per α "
            f"({len(alphas)})"
        )
    truth = []
    for alpha in alphas:
        try:
            split = partition.dirichlet(labels, num_clients, alpha=alpha, seed=seed)
        except ValueError:  # a tiny example where min_size cannot be met
            split = partition.dirichlet(labels, num_clients, alpha=alpha, seed=seed, min_size=1)
        truth.append(split.heterogeneity())
    truth = np.asarray(truth)
    if len(alphas) > 1 and same(h, truth[::-1], atol=1e-6) and not same(h, truth, atol=1e-6):
        raise CheckFailed(
            "alpha_h is in the reverse order of the αs: alpha_h[i] belongs to alphas[i]"
        )
    for alpha, got, want in zip(alphas, h, truth, strict=True):
        if not math.isclose(got, want, abs_tol=1e-6):
            raise CheckFailed(
                f"alpha_h for α = {alpha} is not the H of that split: "
                "partition.dirichlet(digits.y_train, NUM_CLIENTS, alpha=α, seed=SEED)"
                ".heterogeneity()"
            )
    if accuracy.min() < 0 or accuracy.max() > 1:
        raise CheckFailed("alpha_accuracy has values outside [0, 1]: accuracies, not percentages")
    if len(alphas) > 2 and np.ptp(accuracy) < 1e-9:
        raise CheckFailed("every α gives the same accuracy: train each run on its own α's split")
    passed(
        f"the sweep: H from {h[0]:.2f} (α = {alphas[0]:g}) to {h[-1]:.2f} (α = {alphas[-1]:g}), "
        "one accuracy for each"
    )


def check_iid_floor(floor: Any, labels: np.ndarray, sizes: Sequence[int]) -> None:
    """Check ``floor``: ``{num_clients: H}`` of ``partition.iid(labels, num_clients)`` for each
    number in ``sizes`` (any seed: H is compared to within 0.03).

    It recognises: the stub; a missing size; the label entropy instead of H; an H that is not an
    IID split's of that many clients.

    Example:
        >>> from fedlab import load_digits
        >>> from fedlab.partition import iid
        >>> labels = load_digits().y_train
        >>> check_iid_floor({n: iid(labels, n, seed=1).heterogeneity() for n in (10, 100)}, labels, (10, 100))
        ✓ iid_floor: H of IID splits grows from 0.09 (10 clients) to 0.34 (100 clients)
    """
    from fedlab import partition

    require("iid_floor", floor, "{num_clients: H of partition.iid(...)} for each size")
    if not isinstance(floor, Mapping):
        raise CheckFailed("iid_floor should be a dict {number of clients: H}")
    missing = [n for n in sizes if n not in floor]
    if missing:
        raise CheckFailed(f"iid_floor has no entry for {missing} clients")
    for n in sizes:
        split = partition.iid(labels, n, seed=0)
        if math.isclose(floor[n], split.label_entropy().mean(), abs_tol=0.05):
            raise CheckFailed(
                f"iid_floor[{n}] is the mean label entropy: the exercise wants H, "
                "split.heterogeneity()"
            )
        if abs(floor[n] - split.heterogeneity()) > 0.03:
            raise CheckFailed(
                f"iid_floor[{n}] is not the H of an IID split of {n} clients: "
                f"partition.iid(digits.y_train, {n}, seed=SEED).heterogeneity()"
            )
    first, last = sizes[0], sizes[-1]
    passed(
        f"iid_floor: H of IID splits grows from {floor[first]:.2f} ({first} clients) to "
        f"{floor[last]:.2f} ({last} clients)"
    )


def check_corrected_heterogeneity(
    corrected_heterogeneity: Callable, labels: np.ndarray, seed: int | None = None
) -> None:
    """Check ``corrected_heterogeneity(split, labels)``: H minus the H of an IID split of the same
    client sizes, so that IID splits of any size score about 0 and label skew stays positive
    (notebook 02, exercise 4). Tried on IID splits of 10 and 100 clients and a shards split.

    It recognises: the stub; the raw H; a ratio (H / H_iid, about 1 for IID); the IID floor taken
    at another number of clients; a corrected index that hides real skew.

    Example:
        >>> from fedlab import load_digits
        >>> from fedlab.partition import ClientSplit
        >>> def floor_subtracted(split, labels):
        ...     rng = np.random.default_rng(0)
        ...     cuts = np.cumsum(split.sizes)[:-1]
        ...     same_sizes = np.split(rng.permutation(split.num_examples), cuts)
        ...     floor = ClientSplit.from_indices(same_sizes, labels).heterogeneity()
        ...     return split.heterogeneity() - floor
        >>> check_corrected_heterogeneity(floor_subtracted, load_digits().y_train)
        ✓ corrected_heterogeneity is about 0 for IID splits of 10 and 100 clients, 0.7 for shards
    """
    from fedlab import partition

    labels = np.asarray(labels)
    base = 0 if seed is None else seed
    iid_10 = [partition.iid(labels, 10, seed=base + s) for s in range(3)]
    iid_100 = [partition.iid(labels, 100, seed=base + s) for s in range(3)]
    shards = partition.shards(labels, 10, shards_per_client=2, seed=base)

    def score(split: Any) -> float:
        return float(call(corrected_heterogeneity, "corrected_heterogeneity", split, labels))

    at_10 = np.mean([score(s) for s in iid_10])
    at_100 = np.mean([score(s) for s in iid_100])
    skew = score(shards)
    raw_100 = np.mean([s.heterogeneity() for s in iid_100])
    raw_10 = np.mean([s.heterogeneity() for s in iid_10])
    if abs(at_100 - raw_100) < 0.02 and abs(at_10 - raw_10) < 0.02:
        raise CheckFailed(
            f"for IID splits of 100 clients your index is {at_100:.2f}, the raw H: subtract the H "
            "of an IID split with the same client sizes (the noise floor)"
        )
    if abs(at_100 - 1) < 0.15 and abs(at_10 - 1) < 0.15:
        raise CheckFailed(
            "your index is about 1 for IID splits: a ratio H / H_iid. Subtract instead, "
            "H − H_iid, so that IID scores 0"
        )
    if abs(at_10) < 0.03 and abs(at_100) > 0.1:
        raise CheckFailed(
            f"0 for 10 clients but {at_100:.2f} for 100: compare with an IID split of the same "
            "client sizes as the split you score (split.sizes), not of 10 clients"
        )
    if abs(at_10) > 0.03 or abs(at_100) > 0.03:
        raise CheckFailed(
            f"for IID splits your index averages {at_10:.2f} (10 clients) and {at_100:.2f} (100 "
            "clients); it should be about 0 for both"
        )
    if skew < 0.3:
        raise CheckFailed(
            f"a shards split (2 digits per client) scores {skew:.2f}: the corrected index must "
            "still see real label skew (H − H_iid, not something that is always 0)"
        )
    passed(
        f"corrected_heterogeneity is about 0 for IID splits of 10 and 100 clients, {skew:.1f} for shards"
    )


def check_choice(
    name: str, answer: Any, correct: Any, hints: Mapping[Any, str] | None = None
) -> None:
    """Check a short answer (a name, a number, True/False) against ``correct``; a known wrong
    answer gets its hint from ``hints``.

    Example:
        >>> check_choice("bigger", "update", "update")
        ✓ bigger = 'update'
        >>> check_choice("bigger", "data", "update", {"data": "compare upload with own_data"})
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: bigger = 'data': compare upload with own_data
    """
    require(name, answer, "write your answer")
    if answer == correct or (
        isinstance(answer, float) and isinstance(correct, float) and math.isclose(answer, correct)
    ):
        passed(f"{name} = {answer!r}")
        return
    hint = (hints or {}).get(answer, "not what the numbers above say: look at them again")
    raise CheckFailed(f"{name} = {answer!r}: {hint}")
