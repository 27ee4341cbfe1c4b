"""Checks for notebook 09's exercises (federated fine-tuning with LoRA): the gradients of a LoRA
layer, counting LoRA's parameters, the share of full fine-tuning's gain a variant recovers,
averaging LoRA updates exactly, runs on other keyboard data, the bytes of a compressed LoRA
round and of Llama 3 8B's adapters, and the perplexity of a personalised model."""

from __future__ import annotations

import contextlib
import io
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from fedlab.exercises.core import (
    CheckFailed,
    Mistake,
    call,
    check_runs,
    diagnose,
    passed,
    require,
    same,
)

__all__ = [
    "check_average_of_updates",
    "check_client_megabytes",
    "check_heterogeneity_runs",
    "check_keyboards",
    "check_llama3_adapters",
    "check_lora_gradients",
    "check_lora_parameters",
    "check_perplexity",
    "check_personal_perplexity",
    "check_quantised_run",
    "check_share_of_gain",
]


def _number(name: str, value: Any, what: str) -> float:
    """``value`` as a float, failing with a plain message if it is not one number."""
    try:
        return float(np.asarray(value, dtype=np.float64).item())
    except (TypeError, ValueError):
        raise CheckFailed(f"{name} should be one number ({what}), got {value!r:.60}") from None


def _pair(name: str, got: Any, what: str) -> tuple[np.ndarray, np.ndarray]:
    """``got`` as two float arrays, failing with a plain message if it is not a pair."""
    if not isinstance(got, tuple | list) or len(got) != 2:
        raise CheckFailed(f"{name} should return two arrays, ({what})")
    try:
        return tuple(np.asarray(g, dtype=np.float64) for g in got)  # type: ignore[return-value]
    except (TypeError, ValueError):
        raise CheckFailed(f"{name} should return two arrays of numbers, ({what})") from None


# --- exercise 1: why LoRA needs a larger step ------------------------------------------------------


def check_lora_gradients(lora_gradients: Callable, seed: int | None = None) -> None:
    """Check ``lora_gradients(x, G, A, B)``: the gradients of a loss L with respect to the LoRA
    factors of a linear layer ``y = x @ (W + A @ B)``, given ``G = ∂L/∂y`` — ``(xᵀ G Bᵀ, Aᵀ xᵀ G)``,
    shaped like A and like B.

    It recognises: the full weight's gradient xᵀ G instead of a factor's; the two gradients
    swapped; a gradient averaged over the batch; the wrong sign (a descent step instead of the
    gradient); a factor left out of the chain rule; transposes in the wrong place.

    Example:
        >>> check_lora_gradients(lambda x, G, A, B: (x.T @ G @ B.T, A.T @ x.T @ G))
        ✓ lora_gradients: ∂L/∂A = xᵀ G Bᵀ (zero while B = 0) and ∂L/∂B = Aᵀ xᵀ G
        >>> check_lora_gradients(lambda x, G, A, B: (x.T @ G @ B.T, x.T @ G))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: ∂L/∂B has shape (4, 5)...
    """
    rng = np.random.default_rng(9 if seed is None else seed)
    batch, d_in, rank, d_out = (3, 4, 2, 5) if seed is None else (6, 7, 3, 5)
    x = rng.normal(size=(batch, d_in))
    G = rng.normal(size=(batch, d_out))
    A = rng.normal(size=(d_in, rank))
    B = rng.normal(size=(rank, d_out))
    got = call(lora_gradients, "lora_gradients", x.copy(), G.copy(), A.copy(), B.copy())
    grad_a, grad_b = _pair("lora_gradients", got, "∂L/∂A, ∂L/∂B")
    right_a, right_b = x.T @ G @ B.T, A.T @ x.T @ G
    if grad_a.shape == right_b.shape and grad_b.shape == right_a.shape:
        raise CheckFailed(
            "lora_gradients returns (∂L/∂B, ∂L/∂A): return ∂L/∂A first, shaped like A"
        )
    full = x.T @ G
    for label, grad, factor, shape in (
        ("∂L/∂A", grad_a, "A", A.shape),
        ("∂L/∂B", grad_b, "B", B.shape),
    ):
        if grad.shape == full.shape and grad.shape != shape:
            raise CheckFailed(
                f"{label} has shape {grad.shape}, W's: xᵀ G is the gradient of the full weight W. "
                f"{factor} reaches y only through A @ B, so chain it through the other factor "
                f"(its gradient has {factor}'s shape {shape})"
            )
        if grad.shape != shape:
            raise CheckFailed(
                f"{label} has shape {grad.shape}; a gradient has its variable's shape, {factor}: "
                f"{shape} — check the transposes"
            )
    for label, grad, right, other in (
        ("∂L/∂A", grad_a, right_a, "B"),
        ("∂L/∂B", grad_b, right_b, "A"),
    ):
        diagnose(
            grad,
            right,
            [
                Mistake(
                    right / batch,
                    f"{label} is divided by the batch size: G is already ∂L/∂y, so the chain "
                    "rule needs no mean",
                ),
                Mistake(
                    -right,
                    f"{label} has the wrong sign: that is the direction of a descent step, not "
                    "the gradient",
                ),
            ],
            f"{label} is not the chain rule through y = x @ (W + A @ B): y depends on A through "
            f"A @ B, so {label} involves x, G and {other}",
        )
    passed("lora_gradients: ∂L/∂A = xᵀ G Bᵀ (zero while B = 0) and ∂L/∂B = Aᵀ xᵀ G")


# --- exercise 2: rank and place --------------------------------------------------------------------


def check_lora_parameters(lora_parameters: Callable, seed: int | None = None) -> None:
    """Check ``lora_parameters(d_in, d_out, rank)``: the trainable numbers of a rank-r LoRA
    adapter on a ``d_in × d_out`` weight, A: d_in × r plus B: r × d_out, i.e. r·(d_in + d_out)
    (``fedlab.large_models.DecoderConfig.lora_parameters`` counts a whole model).

    It recognises: the weight's own size d_in·d_out; r·d_in·d_out; A or B alone; 2·r·d_in (a
    square weight assumed); r²·(d_in + d_out); the rank left out.

    Example:
        >>> check_lora_parameters(lambda d_in, d_out, rank: rank * (d_in + d_out))
        ✓ lora_parameters = r·(d_in + d_out): 65,536 for a 4096 × 4096 weight at r = 8, not 16,777,216
        >>> check_lora_parameters(lambda d_in, d_out, rank: d_in * d_out)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: lora_parameters counts the weight itself, d_in·d_out...
    """
    cases = [(4096, 4096, 8), (4096, 1024, 8), (32, 16, 4), (768, 3072, 1), (100, 7, 3)]
    if seed is not None:
        rng = np.random.default_rng(seed)
        cases = [
            (int(rng.integers(8, 5000)), int(rng.integers(8, 5000)), int(rng.integers(1, 64)))
            for _ in range(5)
        ]
    got = []
    for d_in, d_out, rank in cases:
        value = call(lora_parameters, "lora_parameters", d_in, d_out, rank)
        got.append(_number("lora_parameters", value, "a count of numbers"))

    def each(rule: Callable[[int, int, int], float]) -> list[float]:
        return [rule(*case) for case in cases]

    diagnose(
        got,
        each(lambda i, o, r: r * (i + o)),
        [
            Mistake(
                each(lambda i, o, r: i * o),
                "lora_parameters counts the weight itself, d_in·d_out: that is what full "
                "fine-tuning trains; LoRA trains A (d_in × r) and B (r × d_out) instead",
            ),
            Mistake(
                each(lambda i, o, r: r * i * o),
                "lora_parameters multiplies d_in·d_out by r: A is d_in × r and B is r × d_out, "
                "so they hold r·d_in + r·d_out numbers",
            ),
            Mistake(
                each(lambda i, o, r: r * i), "lora_parameters counts A alone: add B, r × d_out"
            ),
            Mistake(each(lambda i, o, r: r * o), "lora_parameters counts B alone: add A, d_in × r"),
            Mistake(
                each(lambda i, o, r: 2 * r * i),
                "lora_parameters assumes a square weight (2·r·d_in): B is r × d_out, and d_out "
                "need not equal d_in",
            ),
            Mistake(
                each(lambda i, o, r: r * r * (i + o)),
                "lora_parameters counts r²·(d_in + d_out): each factor has r columns or rows, once",
            ),
            Mistake(each(lambda i, o, r: i + o), "lora_parameters leaves out the rank r"),
        ],
        "lora_parameters is not the number of entries of A (d_in × r) and B (r × d_out)",
    )
    passed(
        "lora_parameters = r·(d_in + d_out): 65,536 for a 4096 × 4096 weight at r = 8, "
        "not 16,777,216"
    )


def check_share_of_gain(share_of_gain: Callable, seed: int | None = None) -> None:
    """Check ``share_of_gain(perplexity, pretrained, full)``: the share of full fine-tuning's
    perplexity gain that a run recovers, (pretrained − perplexity) / (pretrained − full): 1 for
    as good as full, 0 for no better than the pre-trained model.

    It recognises: the share still missing (1 − share); the ratio upside down; the ratio of
    perplexities; the gain relative to the pre-trained perplexity; the share of the gain in loss
    (log perplexity).

    Example:
        >>> check_share_of_gain(lambda p, p0, pf: (p0 - p) / (p0 - pf))
        ✓ share_of_gain: 0 at the pre-trained perplexity, 1 at full fine-tuning's
        >>> check_share_of_gain(lambda p, p0, pf: (p - pf) / (p0 - pf))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: share_of_gain is the share still missing...
    """
    cases = [(6.05, 6.53, 5.55), (5.89, 6.53, 5.55), (6.4, 6.53, 5.55), (6.3, 6.8, 5.9)]
    if seed is not None:
        rng = np.random.default_rng(seed)
        cases = []
        for _ in range(4):
            p0 = float(rng.uniform(4, 30))
            pf = p0 * float(rng.uniform(0.5, 0.9))
            cases.append((float(rng.uniform(pf, p0)), p0, pf))
    got = [
        _number("share_of_gain", call(share_of_gain, "share_of_gain", *case), "a share")
        for case in cases
    ]

    def each(rule: Callable[[float, float, float], float]) -> list[float]:
        return [rule(*case) for case in cases]

    right = each(lambda p, p0, pf: (p0 - p) / (p0 - pf))
    diagnose(
        got,
        right,
        [
            Mistake(
                each(lambda p, p0, pf: (p - pf) / (p0 - pf)),
                "share_of_gain is the share still missing (1 − share): measure how far the run "
                "came down from the pre-trained perplexity, pretrained − perplexity",
            ),
            Mistake(
                [1 / r for r in right],
                "share_of_gain is upside down: the run's gain over full fine-tuning's gain, "
                "(pretrained − perplexity) / (pretrained − full)",
            ),
            Mistake(
                each(lambda p, p0, pf: pf / p),
                "share_of_gain is a ratio of perplexities: compare the gains, each measured "
                "from the pre-trained perplexity",
            ),
            Mistake(
                each(lambda p, p0, pf: (p0 - p) / p0),
                "share_of_gain is the gain relative to the pre-trained perplexity: divide by "
                "full fine-tuning's gain, pretrained − full",
            ),
            Mistake(
                each(lambda p, p0, pf: math.log(p0 / p) / math.log(p0 / pf)),
                "share_of_gain compares losses (log perplexities): use the perplexities as they "
                "are",
            ),
        ],
        "share_of_gain is not (pretrained − perplexity) / (pretrained − full)",
    )
    passed("share_of_gain: 0 at the pre-trained perplexity, 1 at full fine-tuning's")


# --- exercise 3: the bias in the engine ------------------------------------------------------------


def _lora_example(seed: int | None) -> tuple[list, list, list[int]]:
    """Three clients' factors (A_k: d_in × r, B_k: r × d_out) and example counts."""
    rng = np.random.default_rng(9 if seed is None else seed)
    d_in, rank, d_out = (4, 2, 3) if seed is None else (6, 3, 5)
    As = [rng.normal(size=(d_in, rank)) for _ in range(3)]
    Bs = [rng.normal(size=(rank, d_out)) for _ in range(3)]
    counts = [10, 30, 60] if seed is None else [int(n) for n in rng.integers(5, 100, size=3)]
    return As, Bs, counts


def check_average_of_updates(average_of_updates: Callable, seed: int | None = None) -> None:
    """Check ``average_of_updates(As, Bs, counts)``: FedAvg's aggregate of LoRA clients, the
    mean of their updates A_k @ B_k weighted by n_k / n — one d_in × d_out matrix
    (``fedlab.lora.average_of_products``).

    It recognises: A and B averaged separately and multiplied (what the engine does); every
    client weighted equally; weights n_k not divided by n; the averaged factors returned instead
    of a matrix; the first client's update.

    Example:
        >>> def exact(As, Bs, counts):
        ...     p = np.asarray(counts) / np.sum(counts)
        ...     return sum(p_k * A @ B for p_k, A, B in zip(p, As, Bs))
        >>> check_average_of_updates(exact)
        ✓ average_of_updates is FedAvg's mean of the updates A_k B_k, weighted by n_k / n
        >>> def separately(As, Bs, counts):
        ...     p = np.asarray(counts) / np.sum(counts)
        ...     return sum(p_k * A for p_k, A in zip(p, As)) @ sum(p_k * B for p_k, B in zip(p, Bs))
        >>> check_average_of_updates(separately)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: average_of_updates averages A and B separately...
    """
    As, Bs, counts = _lora_example(seed)
    got = call(
        average_of_updates,
        "average_of_updates",
        [a.copy() for a in As],
        [b.copy() for b in Bs],
        list(counts),
    )
    n = np.asarray(counts, dtype=np.float64)
    p = n / n.sum()
    d_in, d_out = As[0].shape[0], Bs[0].shape[1]
    if isinstance(got, tuple | list) and len(got) == 2:
        raise CheckFailed(
            "average_of_updates returns two factors: return the averaged update itself, one "
            f"{d_in} × {d_out} matrix Σ (n_k / n) A_k B_k"
        )
    got = np.asarray(got, dtype=np.float64)
    if got.shape != (d_in, d_out):
        raise CheckFailed(
            f"average_of_updates returns shape {got.shape}: the update A_k @ B_k of a "
            f"{d_in} × {d_out} weight has shape ({d_in}, {d_out})"
        )

    def weighted(weights: Sequence[float]) -> np.ndarray:
        return sum(w * a @ b for w, a, b in zip(weights, As, Bs, strict=True))

    def separately(weights: Sequence[float]) -> np.ndarray:
        a_bar = sum(w * a for w, a in zip(weights, As, strict=True))
        b_bar = sum(w * b for w, b in zip(weights, Bs, strict=True))
        return a_bar @ b_bar

    k = len(As)
    diagnose(
        got,
        weighted(p),
        [
            Mistake(
                separately(p),
                "average_of_updates averages A and B separately and multiplies the averages: "
                "(Σ p_k A_k)(Σ p_k B_k) misses the cross terms Σ p_k (A_k − Ā)(B_k − B̄). "
                "FedAvg averages the updates: Σ p_k A_k B_k",
            ),
            Mistake(
                separately(np.full(k, 1 / k)),
                "average_of_updates averages A and B separately, and weights every client "
                "equally: average the products A_k B_k, weighted by n_k / n",
            ),
            Mistake(
                weighted(np.full(k, 1 / k)),
                "average_of_updates weights every client equally (1/K): FedAvg weights client k "
                "by n_k / n",
            ),
            Mistake(
                weighted(n),
                "average_of_updates multiplies by n_k without dividing by n = Σ n_k",
            ),
            Mistake(As[0] @ Bs[0], "average_of_updates returns the first client's update"),
        ],
        "average_of_updates is not Σ (n_k / n) A_k B_k",
    )
    passed("average_of_updates is FedAvg's mean of the updates A_k B_k, weighted by n_k / n")


def check_keyboards(keyboards: Any, data: Any, levels: Sequence[float] = (0.0, 1.0)) -> None:
    """Check ``keyboards``: ``{heterogeneity: KeyboardData}`` for each of ``levels``, each made
    as ``data`` was (same users, sentences, public corpus and seed) with only the heterogeneity
    changed.

    It recognises: the stub; a missing level; the levels swapped; data still at ``data``'s
    heterogeneity; another setting changed (numbers of users or sentences, the public corpus,
    the seed).

    Example:
        >>> from fedlab.keyboard import keyboard
        >>> data = keyboard(num_clients=4, sentences_per_client=10, heterogeneity=0.5, public_sentences=20, seed=0)
        >>> made = {h: keyboard(num_clients=4, sentences_per_client=10, heterogeneity=h, public_sentences=20, seed=0) for h in (0.0, 1.0)}
        >>> check_keyboards(made, data)
        ✓ keyboards: the same users and public corpus, at heterogeneity 0.0 and 1.0
        >>> check_keyboards({0.0: made[1.0], 1.0: made[0.0]}, data)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: keyboards[0.0] has heterogeneity 1.0...
    """
    require("keyboards", keyboards, "{heterogeneity: keyboard(...)} for " + str(list(levels)))
    if not isinstance(keyboards, Mapping):
        raise CheckFailed("keyboards should be a dict {heterogeneity: the data keyboard() makes}")
    missing = [h for h in levels if h not in keyboards]
    if missing:
        raise CheckFailed(f"keyboards has no data for heterogeneity {missing}")
    for h in levels:
        made, label = keyboards[h], f"keyboards[{h}]"
        require(
            label, made, f"keyboard(..., heterogeneity={h}, ...) with the other settings as data's"
        )
        if not hasattr(made, "heterogeneity") or not hasattr(made, "x_public"):
            raise CheckFailed(f"{label} is a {type(made).__name__}, not what keyboard() returns")
        if not math.isclose(made.heterogeneity, h):
            if math.isclose(made.heterogeneity, data.heterogeneity):
                hint = "still HETEROGENEITY's: pass heterogeneity=" + str(h)
            else:
                hint = f"this entry wants {h}"
            raise CheckFailed(f"{label} has heterogeneity {made.heterogeneity}: {hint}")
        if made.x_train.shape != data.x_train.shape or made.x_test.shape != data.x_test.shape:
            raise CheckFailed(
                f"{label} has {made.x_train.shape[0]} training rows, data has "
                f"{data.x_train.shape[0]}: keep NUM_CLIENTS and SENTENCES_PER_CLIENT, change "
                "only the heterogeneity"
            )
        if made.x_public.shape != data.x_public.shape or made.seed != data.seed:
            raise CheckFailed(
                f"{label} also changed the public corpus or the seed: keep PUBLIC_SENTENCES and "
                "SEED, change only the heterogeneity (the pre-trained model must fit it alike)"
            )
    passed(
        "keyboards: the same users and public corpus, at heterogeneity "
        + " and ".join(f"{h}" for h in levels)
    )


def _same_series(a: Any, b: Any) -> bool:
    """Whether two runs measured exactly the same test loss and accuracy in every round."""
    return all(
        np.array_equal(getattr(a, s), getattr(b, s), equal_nan=True)
        for s in ("test_loss", "test_accuracy")
    )


def check_heterogeneity_runs(het_runs: Any, reference: Mapping[str, Any]) -> None:
    """Check ``het_runs``: ``{heterogeneity: {name: History}}``, each inner dict the runs of
    ``reference`` (``{name: History}``, section 3's) made again, with every setting as before,
    on data of another heterogeneity.

    It recognises: stubs and missing runs; a setting changed (through :func:`check_runs`); a
    run identical to the reference (section 3's data again); the same results at every
    heterogeneity (one data set used for all).

    Example:
        >>> from fedlab.history import History
        >>> def run(accuracy):
        ...     from fedlab.exercises.communication import _fake_run
        ...     h = _fake_run(accuracy, [1, 1], [1, 1], [1, 1], 1.0)
        ...     h.config = {"algorithm": {"name": "FedAvg"}, "seed": 0}
        ...     return h
        >>> reference = {"a": run([0.5, 0.6])}
        >>> check_heterogeneity_runs({0.0: {"a": run([0.5, 0.7])}, 1.0: {"a": run([0.4, 0.5])}}, reference)
        ✓ het_runs: 1 runs at each of 2 heterogeneities, made as section 3's
        >>> check_heterogeneity_runs({0.0: {"a": run([0.5, 0.6])}, 1.0: {"a": run([0.4, 0.5])}}, reference)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: het_runs[0.0]['a'] is section 3's run again...
    """
    require("het_runs", het_runs, "{heterogeneity: {name: History}}, section 3's runs on each")
    if not isinstance(het_runs, Mapping) or not all(
        isinstance(v, Mapping) or v is Ellipsis or v is None for v in het_runs.values()
    ):
        raise CheckFailed("het_runs should be a dict {heterogeneity: {run name: History}}")
    for h, runs in het_runs.items():
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # one ✓ line below, not one per level
                check_runs(runs, dict(reference), name=f"het_runs[{h}]", what="section 3's runs")
        except CheckFailed as failed:  # nothing is meant to change but the data: say so
            message = str(failed).replace(
                "run it exactly as section 3's runs",
                "change only the data, so any difference you see has one cause",
            )
            raise CheckFailed(message.replace(" with :", ":")) from None
        for name, run in runs.items():
            if _same_series(run, reference[name]):
                raise CheckFailed(
                    f"het_runs[{h}][{name!r}] is section 3's run again: run it on keyboards[{h}] "
                    "and its split"
                )
    levels = list(het_runs)
    for name in reference:
        made = [het_runs[h][name] for h in levels]
        if len(levels) > 1 and all(_same_series(made[0], other) for other in made[1:]):
            raise CheckFailed(
                f"the {name!r} runs are the same at every heterogeneity: give each level its own "
                "data (keyboards[h]) and split"
            )
    passed(
        f"het_runs: {len(reference)} runs at each of {len(levels)} heterogeneities, made as "
        "section 3's"
    )


# --- exercise 4: compression on top -----------------------------------------------------------------


def check_quantised_run(quantised_lora: Any, reference: Any, codec: Any) -> None:
    """Check ``quantised_lora``: the run ``reference`` made again with ``compression=codec``
    and nothing else changed.

    It recognises: the stub; something other than a History; no compression or another codec;
    any other setting changed (through :func:`check_runs`).

    Example:
        >>> from fedlab.compression import StochasticQuantizer
        >>> from fedlab.history import History
        >>> base = History(config={"algorithm": {"name": "FedAvg", "client_lr": 4.0}, "seed": 0})
        >>> codec = StochasticQuantizer(bits=8)
        >>> check_quantised_run(History(config={**base.config, "compression": codec.config()}), base, codec)
        ✓ quantised_lora: section 3's run with compression=StochasticQuantizer(bits=8), nothing else changed
        >>> check_quantised_run(History(config=dict(base.config)), base, codec)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: quantised_lora ran without compression...
    """
    from fedlab.history import History

    wanted = codec.config()
    described = (
        f"{wanted['name']}("
        + ", ".join(f"{k}={v!r}" for k, v in wanted.items() if k not in ("name", "block_size"))
        + ")"
    )
    require("quantised_lora", quantised_lora, f"section 3's LoRA run with compression={described}")
    if not isinstance(quantised_lora, History):
        raise CheckFailed(
            f"quantised_lora is a {type(quantised_lora).__name__}, not the History that "
            "fedlab.simulate returns"
        )
    got = quantised_lora.config.get("compression")
    if got is None:
        raise CheckFailed(f"quantised_lora ran without compression: pass compression={described}")
    if got != wanted:
        raise CheckFailed(
            f"quantised_lora ran with compression {got}: this exercise wants {described}"
        )
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            check_runs(
                quantised_lora, reference, name="quantised_lora", what="section 3's LoRA run"
            )
    except CheckFailed as failed:  # only the compression is meant to change: say so
        raise CheckFailed(
            str(failed).replace(
                "run it exactly as section 3's LoRA run",
                "change only the compression, so any difference you see has one cause",
            )
        ) from None
    passed(f"quantised_lora: section 3's run with compression={described}, nothing else changed")


def check_client_megabytes(mb_per_client: Any, history: Any, clients_per_round: int) -> None:
    """Check ``mb_per_client``: the megabytes (10⁶ bytes) one client sends down and up in a
    round of ``history`` — ``(bytes_down + bytes_up) / K / 10⁶`` of its first round.

    It recognises: the stub; twice the uplink (section 3's formula, right only when the downlink
    is as big as the uplink); all K clients; the uplink or the downlink alone; bytes instead of
    megabytes.

    Example:
        >>> from fedlab.exercises.communication import _fake_run
        >>> run = _fake_run([0.5], [51_200], [13_000], [1], 1.0)
        >>> check_client_megabytes(0.00642, run, 10)
        ✓ one client sends 0.00642 MB a round: 0.00512 down, 0.00130 up
        >>> check_client_megabytes(0.0026, run, 10)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: mb_per_client = 0.0026 is twice the uplink...
    """
    require("mb_per_client", mb_per_client, "MB one client sends down and up in a round")
    got = _number("mb_per_client", mb_per_client, "megabytes")
    k = clients_per_round
    down, up = float(history.bytes_down[0]) / k, float(history.bytes_up[0]) / k
    label = f"mb_per_client = {got:g}"
    diagnose(
        got,
        (down + up) / 1e6,
        [
            Mistake(
                2 * up / 1e6,
                f"{label} is twice the uplink: section 3's formula assumed the downlink is as big "
                "as the uplink; with compression it is not. Add bytes_down and bytes_up",
            ),
            Mistake(
                k * (down + up) / 1e6,
                f"{label} counts all {k} clients of the round: divide by CLIENTS_PER_ROUND",
            ),
            Mistake(up / 1e6, f"{label} is the uplink alone: add the downlink"),
            Mistake(down / 1e6, f"{label} is the downlink alone: add the uplink"),
            Mistake(down + up, f"{label} is in bytes: divide by 10⁶ for megabytes"),
        ],
        f"{label} is not one client's bytes down and up in a round, in megabytes",
        atol=1e-7,
    )
    passed(f"one client sends {got:.5f} MB a round: {down / 1e6:.5f} down, {up / 1e6:.5f} up")


def check_llama3_adapters(
    values: Any, seconds: Any, *, config: Any, rank: int = 8, uplink_mbit_per_s: float = 10.0
) -> None:
    """Check ``values``, the numbers of rank-``rank`` LoRA adapters on q and v in every layer of
    ``config`` (Llama 3 8B: grouped-query attention makes v 4096 × 1024), and ``seconds``, one
    float32 upload of them at ``uplink_mbit_per_s``.

    It recognises: stubs; v taken as square (Llama 2's shapes); one layer only; q or v alone;
    the full matrices; seconds from bytes instead of bits (or bits instead of bytes); float16.

    Example:
        >>> from fedlab.large_models import LLAMA_3_8B
        >>> values = LLAMA_3_8B.lora_parameters(8, ("q", "v"))
        >>> check_llama3_adapters(values, 4 * values * 8 / 10e6, config=LLAMA_3_8B)
        ✓ Llama 3 8B, rank 8 on q and v: 3,407,872 adapter values, 10.9 s to upload in float32 at 10 Mbit/s
        >>> check_llama3_adapters(4_194_304, 13.4, config=LLAMA_3_8B)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: values = 4194304 takes v as square...
    """
    require("llama3_values", values, "the LoRA values on q and v in every layer of Llama 3 8B")
    require("llama3_seconds", seconds, "seconds to upload them in float32 at 10 Mbit/s")
    count = _number("llama3_values", values, "a count")
    shapes = config.matrix_shapes()
    layers = config.num_layers
    (q_in, q_out), (v_in, v_out) = shapes["q"], shapes["v"]
    per_layer_q, per_layer_v = rank * (q_in + q_out), rank * (v_in + v_out)
    right = layers * (per_layer_q + per_layer_v)
    label = f"values = {count:.0f}"
    wrong = f"{label} is not rank·(d_in + d_out) for q and v, summed over the {layers} layers"
    if count != right:  # a count is exact: diagnose only names the mistake
        diagnose(
            count,
            math.nan,
            [
                Mistake(
                    layers * (per_layer_q + rank * (v_in + v_in)),
                    f"{label} takes v as square ({v_in} × {v_in}), as in Llama 2: Llama 3 8B's "
                    f"grouped-query attention has {config.num_kv_heads} key/value heads, so v is "
                    f"{v_in} × {v_out} (matrix_shapes())",
                ),
                Mistake(per_layer_q + per_layer_v, f"{label} counts one layer: there are {layers}"),
                Mistake(layers * per_layer_q, f"{label} counts q alone: add v"),
                Mistake(layers * per_layer_v, f"{label} counts v alone: add q"),
                Mistake(
                    layers * (q_in * q_out + v_in * v_out),
                    f"{label} counts the full q and v matrices: the adapters are r·(d_in + d_out) each",
                ),
            ],
            wrong,
        )
    time = _number("llama3_seconds", seconds, "seconds")
    bits = 32 * right
    label = f"seconds = {time:.3g}"
    diagnose(
        time,
        bits / (uplink_mbit_per_s * 1e6),
        [
            Mistake(
                bits / 8 / (uplink_mbit_per_s * 1e6),
                f"{label} divides bytes by bits per second: a float32 is 4 bytes = 32 bits, and "
                "10 Mbit/s moves 10⁷ bits a second",
            ),
            Mistake(
                bits * 8 / (uplink_mbit_per_s * 1e6),
                f"{label} counts 8 bits per bit: 4 bytes per value × 8 bits, once",
            ),
            Mistake(
                bits / 2 / (uplink_mbit_per_s * 1e6),
                f"{label} is a float16 upload: the exercise sends float32, 32 bits per value",
            ),
            Mistake(
                bits / (uplink_mbit_per_s * 2**20),
                f"{label} takes a Mbit as 2²⁰ bits: network rates use 10⁶",
            ),
        ],
        f"{label} is not the float32 upload time: 32 bits × values / (10 × 10⁶ bits/s)",
        atol=1e-3,
    )
    passed(
        f"Llama 3 8B, rank {rank} on q and v: {right:,} adapter values, {time:.1f} s to upload "
        f"in float32 at {uplink_mbit_per_s:g} Mbit/s"
    )


# --- exercise 5: personalisation ---------------------------------------------------------------


class _FixedModel:
    """Stands in for a Keras model: returns fixed logits for any input (``model(x)``,
    ``model.predict(x)``)."""

    def __init__(self, logits: np.ndarray):
        self.logits = logits

    def __call__(self, x: Any, *args: Any, **kwargs: Any) -> np.ndarray:
        return self.logits[: len(x)].astype(np.float32)

    def predict(self, x: Any, *args: Any, **kwargs: Any) -> np.ndarray:
        return self(x)


def _token_losses(logits: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Cross-entropy of every target token (log-softmax of the logits)."""
    top = logits.max(axis=-1, keepdims=True)
    log_z = np.log(np.exp(logits - top).sum(axis=-1)) + top[..., 0]
    return log_z - np.take_along_axis(logits, y[..., None], axis=-1)[..., 0]


def _perplexity_example(seed: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Logits, inputs and targets with <pad> (0) targets and sentences of different lengths."""
    rng = np.random.default_rng(9 if seed is None else seed)
    batch, seq, vocab = (3, 6, 7) if seed is None else (5, 9, 11)
    lengths = [2, 5, 4] if seed is None else [int(n) for n in rng.integers(1, seq, size=batch)]
    y = np.zeros((batch, seq), np.int64)
    for i, n in enumerate(lengths):
        y[i, :n] = rng.integers(3, vocab, size=n)
    x = np.roll(y, 1, axis=1)
    x[:, 0] = 1
    logits = rng.normal(scale=1.5, size=(batch, seq, vocab))
    return logits, x, y


def check_perplexity(perplexity: Callable, seed: int | None = None) -> None:
    """Check ``perplexity(model, x, y)``: exp of the mean cross-entropy of the model's logits
    ``model(x)`` over every target token of ``y`` that is not ``<pad>`` (token 0), as the engine
    measures it (``History.perplexity``).

    It recognises: the pads counted; the mean loss without exp; the mean of per-sentence
    perplexities, or exp of the mean of per-sentence losses; 2 to the power of the loss;
    exp of the summed loss.

    Example:
        >>> def perplexity(model, x, y):
        ...     logits = np.asarray(model(x), dtype=np.float64)
        ...     log_z = np.log(np.exp(logits).sum(axis=-1))
        ...     losses = log_z - np.take_along_axis(logits, y[..., None], axis=-1)[..., 0]
        ...     return float(np.exp(losses[y != 0].mean()))
        >>> check_perplexity(perplexity)
        ✓ perplexity = exp(mean cross-entropy over the tokens that are not <pad>)
        >>> def with_pads(model, x, y):
        ...     logits = np.asarray(model(x), dtype=np.float64)
        ...     losses = np.log(np.exp(logits).sum(axis=-1)) - np.take_along_axis(logits, y[..., None], axis=-1)[..., 0]
        ...     return float(np.exp(losses.mean()))
        >>> check_perplexity(with_pads)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: perplexity counts the <pad> targets...
    """
    logits, x, y = _perplexity_example(seed)
    got = call(perplexity, "perplexity", _FixedModel(logits), x.copy(), y.copy())
    got = _number("perplexity", got, "a perplexity")
    losses = _token_losses(logits, y)
    real = y != 0
    mean = losses[real].mean()
    per_sentence = np.array([losses[i][real[i]].mean() for i in range(len(y))])
    diagnose(
        got,
        math.exp(mean),
        [
            Mistake(
                math.exp(losses.mean()),
                "perplexity counts the <pad> targets: the engine ignores them (data.ignore_class "
                "= 0); average the loss over the targets y != 0 only",
            ),
            Mistake(
                mean,
                "perplexity is the mean loss: perplexity is exp(mean cross-entropy)",
            ),
            Mistake(
                float(np.exp(per_sentence).mean()),
                "perplexity averages per-sentence perplexities: average the loss over all "
                "tokens, then take exp once",
            ),
            Mistake(
                math.exp(per_sentence.mean()),
                "perplexity averages per sentence first: a long sentence has more tokens and "
                "should count more; average over all real tokens at once",
            ),
            Mistake(2.0**mean, "perplexity is 2^loss: the loss is in nats (natural log), so exp"),
            Mistake(
                math.exp(losses[real].sum()) if losses[real].sum() < 700 else math.inf,
                "perplexity is exp of the summed loss: exp of the mean",
            ),
        ],
        "perplexity is not exp(mean cross-entropy over the non-<pad> targets)",
        atol=1e-4,
    )
    passed("perplexity = exp(mean cross-entropy over the tokens that are not <pad>)")


def check_personal_perplexity(
    user_perplexity: Any, global_model: Any, personal_model: Any, data: Any, user: int = 0
) -> None:
    """Check ``user_perplexity``: ``{"global": …, "personal": …}``, the perplexity of
    ``global_model`` and ``personal_model`` on user ``user``'s *test* sentences, and that
    personalising helped. The check measures both models itself.

    It recognises: stubs; the personal model still the global one (not fine-tuned, or the
    global model evaluated twice); either perplexity taken on the user's training sentences,
    on every user's test sentences, or as a loss; the two swapped.

    Example:
        >>> import keras
        >>> from fedlab.keyboard import keyboard
        >>> data = keyboard(num_clients=2, sentences_per_client=10, public_sentences=10, seed=0)
        >>> def model(bias):
        ...     inputs = keras.Input((data.seq_len,), dtype="int32")
        ...     logits = keras.layers.Embedding(len(data.vocab), len(data.vocab))(inputs)
        ...     m = keras.Model(inputs, logits)
        ...     m.set_weights([np.eye(len(data.vocab)) * bias])
        ...     return m
        >>> test = data.test_client_ids == 0
        >>> def ppl(m):
        ...     logits = np.asarray(m(data.x_test[test]), dtype=np.float64)
        ...     losses = np.log(np.exp(logits).sum(-1)) - np.take_along_axis(logits, data.y_test[test][..., None], -1)[..., 0]
        ...     return float(np.exp(losses[data.y_test[test] != 0].mean()))
        >>> g, p = model(0.0), model(-1.0)
        >>> check_personal_perplexity({"global": ppl(g), "personal": ppl(p)}, g, p, data)  # doctest: +ELLIPSIS
        ✓ on user 0's test sentences: perplexity ... for the global model, ... personalised
    """
    require("user0_perplexity", user_perplexity, '{"global": …, "personal": …} on user 0\'s test')
    require("personal_model", personal_model, "the global model fine-tuned on user 0's sentences")
    if not isinstance(user_perplexity, Mapping) or set(user_perplexity) != {"global", "personal"}:
        raise CheckFailed('user0_perplexity should be a dict with keys "global" and "personal"')
    test = np.asarray(data.test_client_ids) == user
    train = np.asarray(data.client_ids) == user

    def measure(model: Any, x: np.ndarray, y: np.ndarray) -> float:
        logits = np.asarray(model(x), dtype=np.float64)
        losses = _token_losses(logits, np.asarray(y))
        return float(np.exp(losses[np.asarray(y) != 0].mean()))

    truth = {
        key: measure(model, data.x_test[test], data.y_test[test])
        for key, model in (("global", global_model), ("personal", personal_model))
    }
    given = {
        key: _number(f'user0_perplexity["{key}"]', v, "a perplexity")
        for key, v in user_perplexity.items()
    }
    if (
        not same(truth["global"], truth["personal"], atol=2e-3)
        and same(given["global"], truth["personal"], atol=2e-3)
        and same(given["personal"], truth["global"], atol=2e-3)
    ):
        raise CheckFailed(
            'user0_perplexity has "global" and "personal" swapped: "global" is the global '
            "model's perplexity"
        )
    for key, model in (("global", global_model), ("personal", personal_model)):
        got, on_test = given[key], truth[key]
        label = f'user0_perplexity["{key}"] = {got:.3g}'
        diagnose(
            got,
            on_test,
            [
                Mistake(
                    measure(model, data.x_train[train], data.y_train[train]),
                    f"{label} is measured on user {user}'s training sentences: measure on their "
                    f"test sentences (data.test_client_ids == {user}), which no model trained on",
                ),
                Mistake(
                    measure(model, data.x_test, data.y_test),
                    f"{label} is measured on every user's test sentences: keep user {user}'s "
                    f"(data.test_client_ids == {user})",
                ),
                Mistake(
                    math.log(on_test),
                    f"{label} is the loss: perplexity is exp(loss)",
                ),
            ],
            f"{label} is not the {key} model's perplexity on user {user}'s test sentences",
            atol=2e-3,
        )
    if same(truth["global"], truth["personal"], atol=1e-9, rtol=0):
        raise CheckFailed(
            "personal_model gives the global model's perplexity: fine-tune it on user 0's "
            "training sentences (fit) before measuring"
        )
    if truth["personal"] >= truth["global"]:
        raise CheckFailed(
            f"personalising made user {user}'s perplexity worse ({truth['personal']:.2f} against "
            f"{truth['global']:.2f}): a smaller learning rate or fewer epochs"
        )
    passed(
        f"on user {user}'s test sentences: perplexity {truth['global']:.2f} for the global model, "
        f"{truth['personal']:.2f} personalised"
    )
