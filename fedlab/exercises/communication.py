"""Checks for notebook 08's exercises (communication cost): what a rotated quantiser sends and
how far it lands, low-bit quantisers and error feedback, a float16 downlink, top-k written by
hand, what a run costs to reach an accuracy, and the bill of a round of a 7B model."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from fedlab.exercises.core import (
    CheckFailed,
    Mistake,
    call,
    diagnose,
    passed,
    require,
    same,
)

__all__ = [
    "check_cost_to",
    "check_error_feedback_step",
    "check_exploded",
    "check_float16_downlink",
    "check_low_bit_errors",
    "check_rotated_bytes",
    "check_rotation",
    "check_residual_growth",
    "check_rounds_or_bytes",
    "check_scale_megabytes",
    "check_top_k",
]


def _flat(weights: Any) -> np.ndarray:
    return np.concatenate([np.ravel(np.asarray(w, dtype=np.float64)) for w in weights])


def _number(name: str, value: Any, what: str) -> float:
    """``value`` as a float, failing with a plain message if it is not one number."""
    try:
        return float(np.asarray(value, dtype=np.float64).item())
    except (TypeError, ValueError):
        raise CheckFailed(f"{name} should be one number ({what}), got {value!r:.60}") from None


def _errors(codec: Any, delta: Sequence, seeds: Sequence[int]) -> np.ndarray:
    """The relative error ‖decode(encode(Δ)) − Δ‖ / ‖Δ‖ of one message, for each seed."""
    d = _flat(delta)
    return np.array(
        [
            np.linalg.norm(_flat(codec.decode(codec.encode(delta, seed=s))) - d) / np.linalg.norm(d)
            for s in seeds
        ]
    )


def _within(value: float, errors: np.ndarray, slack: float = 0.2) -> bool:
    """Whether ``value`` lies in the range of ``errors`` (several seeds), widened by ``slack``."""
    return (1 - slack) * errors.min() <= value <= (1 + slack) * errors.max()


# --- exercise 1: rotate before quantising --------------------------------------------------------


def check_rotation(rotated_size: Any, rotated_error: Any, delta: Sequence) -> None:
    """Check what ``RandomRotation(StochasticQuantizer(bits=4))`` does to ``delta``:
    ``rotated_size``, the bytes of its message (``Encoded.num_bytes``), and ``rotated_error``, the
    relative error ‖decode(encode(Δ)) − Δ‖ / ‖Δ‖ of one message (any seed: the error is compared
    with the range of a few seeds).

    It recognises: stubs; the size or the error of the plain 4-bit quantiser (not rotated); bits
    instead of bytes; the float32 size; the codes without the scales; an error not divided by
    ‖Δ‖, or squared; the error of an 8-bit quantiser.

    Example:
        >>> from fedlab import compression
        >>> delta = [np.random.default_rng(0).normal(size=300) ** 3]
        >>> codec = compression.RandomRotation(compression.StochasticQuantizer(bits=4))
        >>> enc = codec.encode(delta, seed=0)
        >>> error = np.linalg.norm(codec.decode(enc)[0] - delta[0]) / np.linalg.norm(delta[0])
        >>> check_rotation(enc.num_bytes, error, delta)  # doctest: +ELLIPSIS
        ✓ the rotated 4-bit message: 264 bytes, relative error 0.1..., against 0.4... without the rotation
        >>> check_rotation(enc.num_bytes * 8, error, delta)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: rotated_size = 2112 counts bits...
    """
    from fedlab import compression

    require("rotated_size", rotated_size, "the bytes of the rotated 4-bit message (num_bytes)")
    require("rotated_error", rotated_error, "the relative error of one rotated 4-bit message")
    size = _number("rotated_size", rotated_size, "bytes")
    error = _number("rotated_error", rotated_error, "a relative error")
    quantiser = compression.StochasticQuantizer(bits=4)
    rotated = compression.RandomRotation(quantiser)
    n = int(_flat(delta).size)
    d = 1 << max(n - 1, 0).bit_length()
    truth = rotated.encode(delta, seed=0).num_bytes
    diagnose(
        size,
        truth,
        [
            Mistake(
                quantiser.encode(delta, seed=0).num_bytes,
                f"rotated_size = {size:g} is the plain 4-bit quantiser's message: put delta "
                "through RandomRotation(StochasticQuantizer(bits=4)) and take its num_bytes",
            ),
            Mistake(
                8 * truth,
                f"rotated_size = {size:g} counts bits: num_bytes is already in bytes (8 bits each)",
            ),
            Mistake(
                4 * n,
                f"rotated_size = {size:g} is the float32 update (4 bytes per parameter): measure "
                "the encoded message, codec.encode(delta).num_bytes",
            ),
            Mistake(
                4 * d,
                f"rotated_size = {size:g} is the padded vector in float32: the quantiser sends 4-bit "
                "codes, measure codec.encode(delta).num_bytes",
            ),
            Mistake(
                d // 2,
                f"rotated_size = {size:g} counts the codes only: the message also carries a "
                "float32 scale per block of 256 (num_bytes counts every array sent)",
            ),
        ],
        f"rotated_size = {size:g} is not the size of the rotated 4-bit message: "
        "codec.encode(delta, seed=SEED).num_bytes",
    )
    seeds = range(4)
    right = _errors(rotated, delta, seeds)
    if _within(error, right):
        plain = _errors(quantiser, delta, seeds[:1])[0]
        passed(
            f"the rotated 4-bit message: {truth} bytes, relative error {error:.3f}, against "
            f"{plain:.3f} without the rotation"
        )
        return
    norm = float(np.linalg.norm(_flat(delta)))
    if _within(error, _errors(quantiser, delta, seeds)):
        raise CheckFailed(
            f"rotated_error = {error:.3g} is the plain 4-bit quantiser's error: decode with the "
            "rotated codec the message it encoded (codec.decode(codec.encode(delta)))"
        )
    if _within(error, right * norm):
        raise CheckFailed(
            f"rotated_error = {error:.3g} is ‖decode(encode(Δ)) − Δ‖: divide by ‖Δ‖ for the "
            "relative error"
        )
    if _within(error, right**2):
        raise CheckFailed(
            f"rotated_error = {error:.3g} is the squared relative error: take the norms, not "
            "their squares (np.linalg.norm)"
        )
    eight = compression.RandomRotation(compression.StochasticQuantizer(bits=8))
    if _within(error, _errors(eight, delta, seeds)):
        raise CheckFailed(
            f"rotated_error = {error:.3g} is an 8-bit quantiser's error: the exercise rotates "
            "StochasticQuantizer(4)"
        )
    raise CheckFailed(
        f"rotated_error = {error:.3g} is not the relative error of one rotated 4-bit message: "
        "‖decode(encode(Δ)) − Δ‖ / ‖Δ‖, both flattened (flat)"
    )


def _rotated_bytes(
    n: int, bits: int, padded: int | None = None, scales: bool = True, per_byte: int = 8
) -> int:
    """Bytes of RandomRotation(StochasticQuantizer(bits)) for n parameters: padded to d (the
    next power of two, or ``padded``), ``per_byte`` bits to a byte, with or without the scales."""
    d = (1 << max(n - 1, 0).bit_length()) if padded is None else padded
    return math.ceil(d * bits / per_byte) + (4 * math.ceil(d / 256) if scales else 0)


def check_rotated_bytes(rotation_bytes: Callable, seed: int | None = None) -> None:
    """Check ``rotation_bytes(n, bits)``: the bytes ``RandomRotation(StochasticQuantizer(bits))``
    sends for an update of n parameters — n padded to the next power of two d, ⌈d·bits/8⌉ bytes
    of codes and a float32 scale (4 bytes) per block of 256.

    It recognises: no padding (n instead of d); bits instead of bytes; the codes without the
    scales; padding to 2n; an n that is already a power of two padded again; the scales counted
    for the n unpadded coordinates.

    Example:
        >>> from fedlab import compression
        >>> def measured(n, bits):
        ...     codec = compression.RandomRotation(compression.StochasticQuantizer(bits))
        ...     return codec.encode([np.zeros(n)]).num_bytes
        >>> check_rotated_bytes(measured)
        ✓ rotation_bytes pads n to a power of two d and sends d·bits/8 bytes of codes + 4 per block
        >>> check_rotated_bytes(lambda n, bits: math.ceil(n * bits / 8) + 4 * math.ceil(n / 256))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: rotation_bytes does not pad...
    """
    cases = [(9610, 4), (9610, 8), (4096, 4), (4097, 2), (300, 1), (1_000_000, 4)]
    if seed is not None:
        rng = np.random.default_rng(seed)
        cases = [(int(rng.integers(300, 200_000)), int(rng.choice([1, 2, 4, 8]))) for _ in range(4)]
        cases.append((1 << int(rng.integers(9, 16)), int(rng.choice([2, 4, 8]))))
    got = [call(rotation_bytes, "rotation_bytes", n, bits) for n, bits in cases]
    expected = [_rotated_bytes(n, bits) for n, bits in cases]

    def each(fn: Callable[[int, int], int]) -> list[int]:
        return [fn(n, bits) for n, bits in cases]

    def twice(n: int) -> int:  # next power of two above n, even if n is one
        return 1 << n.bit_length()

    mistakes = [
        Mistake(
            each(lambda n, b: math.ceil(n * b / 8) + 4 * math.ceil(n / 256)),
            "rotation_bytes does not pad: the Hadamard transform needs a power-of-two length, so "
            "n is padded with zeros to d = the next power of two, and all d coordinates are sent",
        ),
        Mistake(
            each(lambda n, b: _rotated_bytes(n, b, per_byte=1)),
            "rotation_bytes counts the codes in bits: d codes of `bits` bits are d·bits/8 bytes",
        ),
        Mistake(
            each(lambda n, b: 8 * _rotated_bytes(n, b)),
            "rotation_bytes counts bits, not bytes: divide by 8",
        ),
        Mistake(
            each(lambda n, b: _rotated_bytes(n, b, scales=False)),
            "rotation_bytes counts the codes only: each block of 256 coordinates also sends its "
            "scale, a float32 (4 bytes)",
        ),
        Mistake(
            each(lambda n, b: _rotated_bytes(n, b, padded=2 * n)),
            "rotation_bytes pads to 2n: the padding goes to the next power of two, d = 2^⌈log₂ n⌉ "
            "(at most 2n)",
        ),
        Mistake(
            each(lambda n, b: _rotated_bytes(n, b, padded=twice(n))),
            "rotation_bytes pads an n that is already a power of two to 2n: then d = n "
            "(1 << (n - 1).bit_length())",
        ),
        Mistake(
            each(lambda n, b: _rotated_bytes(n, b, scales=False) + 4 * math.ceil(n / 256)),
            "rotation_bytes counts the scales of the n unpadded coordinates: the quantiser cuts "
            "all d padded coordinates into blocks of 256",
        ),
    ]
    diagnose(
        got,
        expected,
        mistakes,
        "rotation_bytes is not what the rotated quantiser sends: d = the next power of two ≥ n, "
        "then ⌈d·bits/8⌉ bytes of codes + 4 bytes per block of 256",
    )
    passed(
        "rotation_bytes pads n to a power of two d and sends d·bits/8 bytes of codes + 4 per block"
    )


# --- exercise 2: fewer bits, and error feedback --------------------------------------------------


def check_low_bit_errors(low_bit_errors: Any, delta: Sequence) -> None:
    """Check ``low_bit_errors``: ``{bits: relative error}`` of one message of
    ``StochasticQuantizer(bits)`` on ``delta``, for 2 and 1 bits (any seed: compared with the
    range of a few seeds).

    It recognises: the stub; a missing or swapped entry; an error not divided by ‖Δ‖, squared,
    or in per cent.

    Example:
        >>> from fedlab import compression
        >>> delta = [np.random.default_rng(0).normal(size=500) ** 3]
        >>> def error(bits):
        ...     q = compression.StochasticQuantizer(bits)
        ...     return np.linalg.norm(q.decode(q.encode(delta, seed=0))[0] - delta[0]) / np.linalg.norm(delta[0])
        >>> check_low_bit_errors({2: error(2), 1: error(1)}, delta)  # doctest: +ELLIPSIS
        ✓ one message's relative error: ... with 2 bits, ... with 1 bit
        >>> check_low_bit_errors({2: error(1), 1: error(2)}, delta)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: low_bit_errors has the two errors swapped...
    """
    from fedlab import compression

    require("low_bit_errors", low_bit_errors, "{2: error of one 2-bit message, 1: of a 1-bit one}")
    if not isinstance(low_bit_errors, Mapping):
        raise CheckFailed(
            "low_bit_errors should be a dict {bits: relative error}, e.g. {2: …, 1: …}"
        )
    missing = [b for b in (2, 1) if b not in low_bit_errors]
    if missing:
        raise CheckFailed(f"low_bit_errors has no entry for {missing} bits")
    seeds = range(4)
    right = {b: _errors(compression.StochasticQuantizer(b), delta, seeds) for b in (2, 1)}
    got = {
        b: _number(f"low_bit_errors[{b}]", low_bit_errors[b], "a relative error") for b in (2, 1)
    }
    if _within(got[2], right[1]) and _within(got[1], right[2]):
        raise CheckFailed(
            "low_bit_errors has the two errors swapped: low_bit_errors[2] belongs to "
            "StochasticQuantizer(bits=2)"
        )
    norm = float(np.linalg.norm(_flat(delta)))
    for bits in (2, 1):
        label, value = f"low_bit_errors[{bits}]", got[bits]
        if _within(value, right[bits]):
            continue
        if _within(value, right[bits] * norm):
            raise CheckFailed(f"{label} = {value:.3g} is ‖q − Δ‖: divide by ‖Δ‖")
        if _within(value, right[bits] ** 2):
            raise CheckFailed(f"{label} = {value:.3g} is the squared relative error: use the norms")
        if _within(value, 100 * right[bits]):
            raise CheckFailed(
                f"{label} = {value:.3g} is in per cent: give the fraction (1.0 = 100 %)"
            )
        raise CheckFailed(
            f"{label} = {value:.3g} is not the relative error of one {bits}-bit message: "
            f"‖decode(encode(Δ)) − Δ‖ / ‖Δ‖ with StochasticQuantizer(bits={bits})"
        )
    passed(f"one message's relative error: {got[2]:.2f} with 2 bits, {got[1]:.2f} with 1 bit")


def _top(vector: np.ndarray, k: int) -> np.ndarray:
    """``vector`` with all but its k largest-magnitude entries set to zero (ties: earlier wins)."""
    keep = np.argsort(-np.abs(vector), kind="stable")[:k]
    out = np.zeros_like(vector)
    out[keep] = vector[keep]
    return out


def _ef_example(seed: int | None) -> tuple[np.ndarray, np.ndarray, Callable]:
    """An update, a residual and a compressor (top-k, k fixed) for the error-feedback check."""
    if seed is None:
        update = np.array([1.0, -0.5, 0.25, 0.0, 2.0, -1.5])
        residual = np.array([0.0, -1.0, 0.5, 0.3, -0.25, 0.25])
        return update, residual, lambda v: _top(np.asarray(v, dtype=np.float64), 2)
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 60))
    k = int(rng.integers(2, n // 4))
    update, residual = rng.normal(size=n), rng.normal(scale=0.7, size=n)
    return update, residual, lambda v: _top(np.asarray(v, dtype=np.float64), k)


def check_error_feedback_step(error_feedback_step: Callable, seed: int | None = None) -> None:
    """Check ``error_feedback_step(compress, update, residual)``: one round of error feedback,
    returning ``(sent, new_residual)`` with ``sent = compress(update + residual)`` and
    ``new_residual = update + residual − sent`` (``compress`` maps a vector to what arrives).
    Tried with a top-k compressor, for one round and then for five rounds in a row.

    It recognises: the residual left out of what is compressed; the residual added twice (to
    what is sent, or to the new residual); the residual added after compressing; nothing
    compressed; the residual thrown away, returned unchanged, or not including the old one; the
    residual with the wrong sign; the two results swapped; the arguments changed in place.

    Example:
        >>> def right(compress, update, residual):
        ...     sent = compress(update + residual)
        ...     return sent, update + residual - sent
        >>> check_error_feedback_step(right)
        ✓ error_feedback_step sends compress(update + residual) and keeps what it left out: after 5 rounds Σ sent + residual = Σ updates
        >>> def forgets(compress, update, residual):
        ...     sent = compress(update)
        ...     return sent, update - sent
        >>> check_error_feedback_step(forgets)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: error_feedback_step compresses the update alone...
    """
    update, residual, compress = _ef_example(seed)
    given_u, given_r = update.copy(), residual.copy()
    got = call(error_feedback_step, "error_feedback_step", compress, given_u, given_r)
    if not same(given_u, update) or not same(given_r, residual):
        raise CheckFailed(
            "error_feedback_step changed its arguments in place (e.g. residual += update): "
            "return new arrays, the caller keeps the old ones"
        )
    if not isinstance(got, tuple | list) or len(got) != 2:
        raise CheckFailed("error_feedback_step should return two arrays, (sent, new_residual)")
    sent, new = (np.asarray(g, dtype=np.float64) for g in got)
    corrected = update + residual
    right_sent = compress(corrected)
    right_new = corrected - right_sent
    if same(sent, right_new) and same(new, right_sent) and not same(sent, new):
        raise CheckFailed(
            "error_feedback_step returns (new_residual, sent): return (sent, new_residual)"
        )
    diagnose(
        sent,
        right_sent,
        [
            Mistake(
                compress(update),
                "error_feedback_step compresses the update alone: add the residual first and "
                "compress update + residual, so what was left out before gets its chance",
            ),
            Mistake(
                compress(update + 2 * residual),
                "error_feedback_step adds the residual twice: compress update + residual, once",
            ),
            Mistake(
                compress(update) + residual,
                "error_feedback_step adds the residual after compressing, so it travels "
                "uncompressed: compress update + residual",
            ),
            Mistake(
                corrected,
                "error_feedback_step sends update + residual uncompressed: sent = "
                "compress(update + residual)",
            ),
        ],
        "error_feedback_step's sent is not compress(update + residual)",
    )
    diagnose(
        new,
        right_new,
        [
            Mistake(
                np.zeros_like(residual),
                "error_feedback_step throws the residual away (zeros): keep what compress left "
                "out, update + residual − sent, for the next round",
            ),
            Mistake(
                residual,
                "error_feedback_step returns the old residual unchanged: the new one is what this "
                "round left out, update + residual − sent",
            ),
            Mistake(
                update - right_sent,
                "error_feedback_step's new residual is update − sent: the old residual was part "
                "of what was compressed, so it is update + residual − sent",
            ),
            Mistake(
                right_new + residual,
                "error_feedback_step adds the old residual twice to the new one: it is "
                "update + residual − sent",
            ),
            Mistake(
                -right_new,
                "error_feedback_step's residual has the wrong sign (sent − update − residual): "
                "it is what is still to send, update + residual − sent",
            ),
            Mistake(
                corrected,
                "error_feedback_step keeps all of update + residual as the residual: subtract "
                "what was sent",
            ),
        ],
        "error_feedback_step's new residual is not update + residual − sent",
    )
    rng = np.random.default_rng(0 if seed is None else seed + 1)
    residual, total_sent, total = (
        np.zeros_like(update),
        np.zeros_like(update),
        np.zeros_like(update),
    )
    for _ in range(5):
        step = rng.normal(size=update.size)
        sent, residual = (
            np.asarray(r, dtype=np.float64)
            for r in call(error_feedback_step, "error_feedback_step", compress, step, residual)
        )
        total_sent += sent
        total += step
    if not same(total_sent + residual, total):
        raise CheckFailed(
            "over five rounds, Σ sent + residual ≠ Σ updates: each round must compress "
            "update + residual and keep update + residual − sent"
        )
    passed(
        "error_feedback_step sends compress(update + residual) and keeps what it left out: "
        "after 5 rounds Σ sent + residual = Σ updates"
    )


def check_residual_growth(residual_growth: Any, delta: Sequence, rounds: int = 20) -> None:
    """Check ``residual_growth``: ``{bits: [‖e_t‖ / ‖Δ‖ for t = 1 … rounds]}``, the size of the
    error-feedback residual after each of ``rounds`` rounds in which ``delta`` is sent again and
    again through ``StochasticQuantizer(bits)`` (a fresh seed each round), for 2 and 1 bits.

    It recognises: the stub; a missing entry or a wrong number of rounds; norms not divided by
    ‖Δ‖; a first round that is not one message's error; a 1-bit residual that does not grow (the
    residual not carried from round to round); a 2-bit residual that grows.

    Example:
        >>> from fedlab import compression
        >>> delta = [np.random.default_rng(0).normal(size=500) ** 3]
        >>> growth = {}
        >>> for bits in (2, 1):
        ...     ef, residual, ratios = compression.ErrorFeedback(compression.StochasticQuantizer(bits)), [np.zeros(500)], []
        ...     for t in range(1, 21):
        ...         _, residual = ef.apply(delta, residual, seed=t)
        ...         ratios.append(np.linalg.norm(residual[0]) / np.linalg.norm(delta[0]))
        ...     growth[bits] = ratios
        >>> check_residual_growth(growth, delta)  # doctest: +ELLIPSIS
        ✓ residual_growth: with 2 bits the residual stays below ... ‖Δ‖; with 1 bit it grows ...-fold in 20 rounds
    """
    from fedlab import compression

    require("residual_growth", residual_growth, "{2: [‖e‖ / ‖Δ‖ after each round], 1: [...]}")
    if not isinstance(residual_growth, Mapping):
        raise CheckFailed("residual_growth should be a dict {bits: list of ‖e‖ / ‖Δ‖ per round}")
    missing = [b for b in (2, 1) if b not in residual_growth]
    if missing:
        raise CheckFailed(f"residual_growth has no entry for {missing} bits")
    norm = float(np.linalg.norm(_flat(delta)))
    series = {}
    for bits in (2, 1):
        label = f"residual_growth[{bits}]"
        try:
            values = np.asarray(residual_growth[bits], dtype=np.float64).ravel()
        except (TypeError, ValueError):
            raise CheckFailed(f"{label} should be a list of numbers, one per round") from None
        if len(values) != rounds:
            raise CheckFailed(f"{label} has {len(values)} numbers: one per round, {rounds} rounds")
        if not np.all(np.isfinite(values)):
            raise CheckFailed(f"{label} holds nan or inf: the norms should be finite numbers")
        first = _errors(compression.StochasticQuantizer(bits), delta, range(4))
        if _within(values[0], first * norm) and not _within(values[0], first):
            raise CheckFailed(f"{label} holds ‖e‖, not ‖e‖ / ‖Δ‖: divide by ‖Δ‖")
        if not _within(values[0], first, slack=0.3):
            raise CheckFailed(
                f"{label}[0] = {values[0]:.3g}: after the first round the residual is what one "
                f"{bits}-bit message left out, ‖q − Δ‖ / ‖Δ‖ — as in low_bit_errors"
            )
        series[bits] = values
    if series[1][-1] < 10 * series[1][0]:
        raise CheckFailed(
            "residual_growth[1] does not grow: feed each round's new residual into the next "
            "round (residual = the second value error_feedback_step returns)"
        )
    if series[2].max() > 10 * series[2][0]:
        raise CheckFailed(
            "residual_growth[2] grows too: with 2 bits the residual should stay about as large as "
            "one message's error; check error_feedback_step"
        )
    passed(
        f"residual_growth: with 2 bits the residual stays below {series[2].max():.1f} ‖Δ‖; with 1 "
        f"bit it grows {series[1][-1] / series[1][0]:,.0f}-fold in {rounds} rounds"
    )


# --- exercise 3: the downlink --------------------------------------------------------------------


def check_float16_downlink(mb_total: Any, down_share: Any, runs: Mapping[str, Any]) -> None:
    """Check the table of a float16 downlink: for every run in ``runs``, ``mb_total[name]``, the
    megabytes (10⁶ bytes) sent down and up over the whole run if the downlink were float16
    (half of ``bytes_down``, ``bytes_up`` as it was), and ``down_share[name]``, the fraction of
    those bytes that go down.

    It recognises: stubs; a missing run; the float32 downlink (the table unchanged); both
    directions halved; the downlink alone; bytes or mebibytes instead of megabytes; the share
    of the uplink; a ratio down/up; a share in per cent.

    Example:
        >>> from fedlab.history import History, RoundRecord
        >>> record = dict(clients=(0,), client_loss=(0.1,), client_num_examples=(5,),
        ...               train_loss=0.1, test_loss=0.1, test_accuracy=0.9, client_drift=(0.1,),
        ...               drift_mean=0.1, drift_max=0.1, update_cosine=(1.0,), wall_time=0.0)
        >>> run = History(rounds=[RoundRecord(round=1, bytes_down=4_000_000, bytes_up=1_000_000, **record)])
        >>> check_float16_downlink({"a": 3.0}, {"a": 2 / 3}, {"a": run})
        ✓ with a float16 downlink: a 3.00 MB (67 % down)
        >>> check_float16_downlink({"a": 5.0}, {"a": 0.8}, {"a": run})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: mb_total['a'] = 5 is the float32 downlink's total...
    """
    require("mb_total_16", mb_total, "{setting: MB down + up with a float16 downlink}")
    require("down_share_16", down_share, "{setting: fraction of those bytes sent down}")
    for label, value in (("mb_total_16", mb_total), ("down_share_16", down_share)):
        if not isinstance(value, Mapping):
            raise CheckFailed(f"{label} should be a dict with one number per setting of `runs`")
        missing = [name for name in runs if name not in value]
        if missing:
            raise CheckFailed(f"{label} has no entry for {', '.join(map(repr, missing))}")
    for name, history in runs.items():
        down = float(np.sum(history.bytes_down))
        up = float(np.sum(history.bytes_up))
        total = _number(f"mb_total_16[{name!r}]", mb_total[name], "megabytes")
        expected = (down / 2 + up) / 1e6
        label = f"mb_total[{name!r}] = {total:g}"
        diagnose(
            total,
            expected,
            [
                Mistake(
                    (down + up) / 1e6,
                    f"{label} is the float32 downlink's total (the table above): float16 halves "
                    "bytes_down",
                ),
                Mistake(
                    (down + up) / 2e6,
                    f"{label} halves the uplink too: only the downlink becomes float16; bytes_up "
                    "is what the codec sent",
                ),
                Mistake(down / 2e6, f"{label} is the downlink alone: add bytes_up"),
                Mistake(
                    down / 2 + up,
                    f"{label} is in bytes: divide by 10⁶ for megabytes",
                ),
                Mistake(
                    (down / 2 + up) / 2**20,
                    f"{label} is in mebibytes (2²⁰ bytes): the table uses megabytes, 10⁶ bytes",
                ),
            ],
            f"{label} is not the megabytes sent down and up with a float16 downlink: "
            "(bytes_down.sum() / 2 + bytes_up.sum()) / 1e6",
            atol=1e-3,
        )
        share = _number(f"down_share_16[{name!r}]", down_share[name], "a fraction")
        right = (down / 2) / (down / 2 + up)
        label = f"down_share[{name!r}] = {share:g}"
        diagnose(
            share,
            right,
            [
                Mistake(
                    down / (down + up),
                    f"{label} is the float32 downlink's share: halve bytes_down first",
                ),
                Mistake(
                    1 - right, f"{label} is the uplink's share: the downlink's is down / total"
                ),
                Mistake(
                    (down / 2) / up,
                    f"{label} is down / up: divide by the total, down + up",
                ),
                Mistake(100 * right, f"{label} is in per cent: give the fraction (0.5 = 50 %)"),
            ],
            f"{label} is not the fraction of the bytes that go down with a float16 downlink",
            atol=1e-3,
        )
    first = next(iter(runs))
    passed(
        f"with a float16 downlink: {first} {float(mb_total[first]):.2f} MB "
        f"({100 * float(down_share[first]):.0f} % down)"
    )


# --- exercise 4: top-k, and what a run costs to reach an accuracy ---------------------------------


def check_top_k(top_k: Callable, seed: int | None = None) -> None:
    """Check ``top_k(vector, fraction)``: a new vector with the k = ⌈fraction·n⌉ entries of
    largest magnitude kept and every other entry zero (``fedlab.compression.TopK``).

    It recognises: the largest *values* instead of magnitudes; the smallest magnitudes; k
    rounded down or to the nearest; the kept values alone (or their indices) instead of the full
    vector; magnitudes kept without their signs; every entry but the top k; the input changed in
    place.

    Example:
        >>> def top_k(vector, fraction):
        ...     k = math.ceil(fraction * len(vector))
        ...     keep = np.argsort(-np.abs(vector))[:k]
        ...     out = np.zeros_like(vector)
        ...     out[keep] = vector[keep]
        ...     return out
        >>> check_top_k(top_k)
        ✓ top_k keeps the ⌈fraction·n⌉ entries of largest magnitude, with their signs
        >>> def by_value(vector, fraction):
        ...     keep = np.argsort(-vector)[: math.ceil(fraction * len(vector))]
        ...     out = np.zeros_like(vector)
        ...     out[keep] = vector[keep]
        ...     return out
        >>> check_top_k(by_value)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: top_k keeps the largest values...
    """
    if seed is None:
        cases = [
            (np.array([0.3, -2.0, 1.5, -0.1, 0.8, -0.9, 0.05]), 0.3),
            (np.array([-0.4, 0.2, -0.25, 0.1, 0.6, -0.7, 0.35, -0.05, 0.15, 0.3]), 0.27),
        ]
    else:
        rng = np.random.default_rng(seed)
        cases = []
        for low, high in ((0.1, 0.4), (0.6, 0.9), (0.1, 0.9)):
            n = int(rng.integers(15, 400))
            # fraction·n has a fractional part in (low, high): ceil, floor and round differ
            k = int(rng.integers(1, n // 3)) + float(rng.uniform(low, high))
            cases.append((rng.normal(size=n), k / n))
    results = []
    for vector, fraction in cases:
        given = vector.copy()
        out = call(top_k, "top_k", given, fraction)
        if not same(given, vector):
            raise CheckFailed(
                "top_k changed the vector it was given: build a new one (np.zeros_like) and copy "
                "the kept entries into it"
            )
        out = np.asarray(out, dtype=np.float64)
        k = math.ceil(round(fraction * vector.size, 9))
        if out.shape != vector.shape:
            kind = "indices" if np.all(np.mod(out, 1) == 0) and out.size == k else "values"
            raise CheckFailed(
                f"top_k returns {out.size} numbers for a vector of {vector.size}: return the whole "
                f"vector, the kept entries in place and zeros elsewhere (not only the kept {kind})"
            )
        results.append(out)

    def each(rule: Callable[[np.ndarray, float], np.ndarray]) -> list[np.ndarray]:
        return [rule(v, f) for v, f in cases]

    def kept(vector: np.ndarray, order: np.ndarray, k: int) -> np.ndarray:
        out = np.zeros_like(vector)
        out[order[:k]] = vector[order[:k]]
        return out

    def ceil_k(v: np.ndarray, f: float) -> int:
        return math.ceil(round(f * v.size, 9))

    diagnose(
        results,
        each(lambda v, f: _top(v, ceil_k(v, f))),
        [
            Mistake(
                each(lambda v, f: kept(v, np.argsort(-v, kind="stable"), ceil_k(v, f))),
                "top_k keeps the largest values: a large negative entry matters as much as a large "
                "positive one, so rank by magnitude, np.argsort(-np.abs(vector))",
            ),
            Mistake(
                each(lambda v, f: kept(v, np.argsort(np.abs(v), kind="stable"), ceil_k(v, f))),
                "top_k keeps the smallest magnitudes: sort by -np.abs(vector) (largest first)",
            ),
            Mistake(
                each(lambda v, f: _top(v, math.floor(f * v.size))),
                "top_k keeps ⌊fraction·n⌋ entries: TopK keeps k = ⌈fraction·n⌉ (round up, "
                "math.ceil)",
            ),
            Mistake(
                each(lambda v, f: _top(v, round(f * v.size))),
                "top_k rounds fraction·n to the nearest integer: TopK keeps k = ⌈fraction·n⌉ "
                "(round up, math.ceil)",
            ),
            Mistake(
                each(lambda v, f: np.abs(_top(v, ceil_k(v, f)))),
                "top_k keeps the magnitudes without their signs: copy vector[keep], not "
                "np.abs(vector)[keep]",
            ),
            Mistake(
                each(lambda v, f: v - _top(v, ceil_k(v, f))),
                "top_k keeps every entry except the top k: zero the others, keep the top k",
            ),
        ],
        "top_k does not keep exactly the ⌈fraction·n⌉ entries of largest magnitude (with their "
        "signs) and zero the rest",
    )
    passed("top_k keeps the ⌈fraction·n⌉ entries of largest magnitude, with their signs")


def _fake_run(
    accuracy: Sequence[float],
    down: Sequence[int],
    up: Sequence[int],
    examples: Sequence[int],
    gflops: float,
) -> Any:
    """A History with these per-round numbers (for checks of functions that read one)."""
    from fedlab.history import History, RoundRecord

    rounds = [
        RoundRecord(
            round=i + 1,
            clients=(0, 1),
            client_loss=(0.5, 0.5),
            client_num_examples=(10, 10),
            train_loss=0.5,
            test_loss=0.5,
            test_accuracy=float(a),
            client_drift=(0.1, 0.1),
            drift_mean=0.1,
            drift_max=0.1,
            update_cosine=(1.0, 1.0),
            bytes_down=int(bd),
            bytes_up=int(bu),
            wall_time=0.0,
            client_examples=(int(e) // 2, int(e) - int(e) // 2),
        )
        for i, (a, bd, bu, e) in enumerate(zip(accuracy, down, up, examples, strict=True))
    ]
    return History(config={"client_cost": {"train_gflops": gflops}}, rounds=rounds)


def _cost_example(seed: int | None) -> tuple[list[Any], float]:
    """Runs to measure, and the target accuracy (the last never reaches it)."""
    if seed is None:
        accuracy = [[0.3, 0.6, 0.85, 0.91, 0.88, 0.93, 0.95], [0.2, 0.5, 0.7, 0.8, 0.85]]
        target = 0.9
    else:
        rng = np.random.default_rng(seed)
        accuracy = [np.clip(np.sort(rng.uniform(0.1, 0.97, 12)) + rng.normal(0, 0.03, 12), 0, 1)]
        target = float(np.round(np.sort(accuracy[0])[-5] - 0.005, 3))
        accuracy.append(np.minimum(accuracy[0], target - 0.01))
    runs = []
    for i, acc in enumerate(accuracy):
        rounds = len(acc)
        down = [400_000 + 1000 * i] * rounds
        up = [50_000 + 7000 * r for r in range(rounds)]
        examples = [1000 + 150 * r + 40 * i for r in range(rounds)]
        runs.append(_fake_run(acc, down, up, examples, gflops=2e-5))
    return runs, target


def check_cost_to(cost_to: Callable, seed: int | None = None) -> None:
    """Check ``cost_to(history, accuracy)``: ``(megabytes, gflops)`` spent by the round in which
    the test accuracy first reaches ``accuracy`` — ``history.megabytes_sent`` then (down + up,
    running total) and the clients' training GFLOPs summed up to and including that round
    (``history.client_gflops`` is per round) — or ``(nan, nan)`` if it never does.

    It recognises: the last round's totals; the GFLOPs of that one round instead of the sum;
    the round before or after; the uplink megabytes alone; the round from which the accuracy
    stays above the target instead of the first to reach it; something other than nan for a run that never gets there.

    Example:
        >>> def cost_to(history, accuracy):
        ...     reached = np.flatnonzero(history.test_accuracy >= accuracy)
        ...     if len(reached) == 0:
        ...         return np.nan, np.nan
        ...     i = reached[0]
        ...     return history.megabytes_sent[i], history.client_gflops[: i + 1].sum()
        >>> check_cost_to(cost_to)
        ✓ cost_to gives the megabytes and GFLOPs spent by the first round that reaches the accuracy
        >>> check_cost_to(lambda h, a: (h.megabytes_sent[-1], h.client_gflops.sum()))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: cost_to gives the totals of the whole run...
    """
    runs, target = _cost_example(seed)
    reached_run, never_run = runs[0], runs[1]
    got = call(cost_to, "cost_to", reached_run, target)
    if not isinstance(got, tuple | list | np.ndarray) or len(got) != 2:
        raise CheckFailed("cost_to should return two numbers, (megabytes, gflops)")
    got = [
        _number("cost_to's megabytes", got[0], "megabytes"),
        _number("cost_to's gflops", got[1], "GFLOPs"),
    ]
    acc = reached_run.test_accuracy
    first = int(np.flatnonzero(acc >= target)[0])
    below = np.flatnonzero(acc < target)
    stays = int(below[-1]) + 1 if len(below) and below[-1] + 1 < len(acc) else first
    mb, gf = reached_run.megabytes_sent, reached_run.client_gflops
    up = np.cumsum(reached_run.bytes_up) / 1e6

    def at(i: int) -> list[float]:
        return [mb[i], gf[: i + 1].sum()]

    diagnose(
        got,
        at(first),
        [
            Mistake(
                [mb[-1], gf.sum()],
                "cost_to gives the totals of the whole run: stop at the first round whose test "
                "accuracy reaches the target",
            ),
            Mistake(
                [mb[first], gf[first]],
                "cost_to's GFLOPs are that one round's: history.client_gflops is per round, so "
                "sum it up to and including that round",
            ),
            Mistake(
                at(first - 1),
                "cost_to stops one round early: include the round that reaches the target "
                "(index i, so [: i + 1])",
            ),
            Mistake(
                at(first + 1),
                "cost_to stops one round late: the first round that reaches the target is index "
                "i = np.flatnonzero(accuracy >= target)[0]",
            ),
            Mistake(
                [up[first], gf[: first + 1].sum()],
                "cost_to counts the uplink only: megabytes_sent counts down and up",
            ),
            Mistake(
                at(stays),
                "cost_to waits until the accuracy stays at or above the target: the first round "
                "that reaches it counts, even if a later round dips below",
            ),
            Mistake(
                [mb[first], gf[:first].sum()],
                "cost_to's GFLOPs leave out the round that reaches the target: sum "
                "client_gflops[: i + 1]",
            ),
        ],
        "cost_to is not (megabytes_sent, Σ client_gflops) at the first round that reaches the "
        "target accuracy",
        atol=1e-6,
    )
    never = call(cost_to, "cost_to", never_run, target)
    if not isinstance(never, tuple | list | np.ndarray) or len(never) != 2:
        raise CheckFailed(
            "cost_to should return two numbers, (megabytes, gflops), also for a run that never gets there"
        )
    if not all(np.isnan(_number("cost_to", v, "nan")) for v in never):
        raise CheckFailed(
            "for a run that never reaches the accuracy cost_to should give (nan, nan), got "
            f"{tuple(never)!r:.80}: it spent everything and got nowhere"
        )
    passed(
        "cost_to gives the megabytes and GFLOPs spent by the first round that reaches the accuracy"
    )


def _cost(history: Any, accuracy: float) -> tuple[float, float]:
    reached = np.flatnonzero(history.test_accuracy >= accuracy)
    if not len(reached):
        return math.inf, math.inf
    i = int(reached[0])
    return float(history.megabytes_sent[i]), float(history.client_gflops[: i + 1].sum())


def check_rounds_or_bytes(
    fewer_megabytes: Any, less_computation: Any, runs: Any, accuracy: float = 0.9
) -> None:
    """Check two answers about ``runs`` (a dict of Histories): ``fewer_megabytes``, the name of
    the run that first reaches ``accuracy`` with the fewest megabytes sent, and
    ``less_computation``, the one that gets there with the fewest client GFLOPs.

    It recognises: stubs; a name that is not a run; either answer contradicting the runs.

    Example:
        >>> from fedlab.exercises.communication import _fake_run
        >>> cheap = _fake_run([0.5, 0.95], [100, 100], [10, 10], [50, 50], 1.0)
        >>> slow = _fake_run([0.5, 0.8, 0.95], [100] * 3, [1, 1, 1], [10, 10, 10], 1.0)
        >>> check_rounds_or_bytes("cheap", "slow", {"cheap": cheap, "slow": slow})
        ✓ to reach 90 %: 'cheap' sends the fewest megabytes, 'slow' computes the least
        >>> check_rounds_or_bytes("slow", "slow", {"cheap": cheap, "slow": slow})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: fewer_megabytes = 'slow', but ...
    """
    require("fewer_megabytes", fewer_megabytes, "the name of the run that needs the fewest MB")
    require("less_computation", less_computation, "the name of the run that computes the least")
    require("runs", runs, "make the runs first")
    costs = {name: _cost(history, accuracy) for name, history in runs.items()}
    for label, answer, index, what in (
        ("fewer_megabytes", fewer_megabytes, 0, "megabytes_sent"),
        ("less_computation", less_computation, 1, "the client GFLOPs summed"),
    ):
        if answer not in costs:
            raise CheckFailed(
                f"{label} = {answer!r}: answer with one of {', '.join(map(repr, costs))}"
            )
        best = min(costs, key=lambda name: costs[name][index])
        if answer != best:
            raise CheckFailed(
                f"{label} = {answer!r}, but another run reaches {100 * accuracy:g} % with less: compare "
                f"{what} up to the first round at {100 * accuracy:g} % (cost_to)"
            )
    passed(
        f"to reach {100 * accuracy:g} %: {fewer_megabytes!r} sends the fewest megabytes, "
        f"{less_computation!r} computes the least"
    )


# --- exercise 5: what dominates at scale ---------------------------------------------------------


def check_scale_megabytes(
    mb_4bit: Any,
    mb_topk: Any,
    mb_lora: Any,
    *,
    num_parameters: int,
    lora_parameters: int,
    clients_per_round: int,
) -> None:
    """Check the megabytes (10⁶ bytes) of one round with ``clients_per_round`` clients for a
    model of ``num_parameters``: ``mb_4bit``, float32 downlink and 4-bit uplink
    (``StochasticQuantizer(bits=4)``: ⌈n/2⌉ bytes of codes + 4 per block of 256); ``mb_topk``,
    float32 downlink and top-k 1 % uplink (int32 index + float32 value per kept entry); and
    ``mb_lora``, only ``lora_parameters`` sent both ways in float32.

    It recognises: stubs; bits instead of bytes; the quantiser's scales forgotten; the uplink
    alone; one client instead of K; the downlink quantised too; bytes or mebibytes instead of
    megabytes; top-k's values without their indices, or int64 indices; LoRA one way only, or
    with the full model sent down.

    Example:
        >>> n, k = 1_000_000, 10
        >>> up = n // 2 + 4 * math.ceil(n / 256)
        >>> mb_4bit = k * (4 * n + up) / 1e6
        >>> mb_topk = k * (4 * n + 8 * 10_000) / 1e6
        >>> kw = dict(num_parameters=n, lora_parameters=2000, clients_per_round=k)
        >>> check_scale_megabytes(mb_4bit, mb_topk, k * 2 * 4 * 2000 / 1e6, **kw)
        ✓ a round with K = 10: 45.16 MB with a 4-bit uplink, 40.80 MB with top-k 1 %, 0.16 MB with LoRA adapters alone
        >>> check_scale_megabytes(mb_4bit, k * (4 * n + 4 * 10_000) / 1e6, 0.16, **kw)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: mb_topk counts the values without their indices...
    """
    from fedlab import compression

    require("mb_4bit", mb_4bit, "MB per round: float32 down, 4-bit up, K clients")
    require("mb_topk", mb_topk, "MB per round: float32 down, top-k 1 % up, K clients")
    require("mb_lora", mb_lora, "MB per round: LoRA adapters only, float32, both ways, K clients")
    n, lora, k = num_parameters, lora_parameters, clients_per_round
    down = 4 * n
    codes, scales = math.ceil(n * 4 / 8), 4 * math.ceil(n / 256)
    four = codes + scales
    got = _number("mb_4bit", mb_4bit, "megabytes")
    diagnose(
        got,
        k * (down + four) / 1e6,
        [
            Mistake(
                k * (down + 4 * n + scales) / 1e6,
                "mb_4bit counts the 4-bit codes as 4 bytes each: 4 bits are half a byte, "
                "⌈n·4/8⌉ bytes of codes",
            ),
            Mistake(
                k * (down + 32 * n + scales) / 1e6,
                "mb_4bit counts the codes in bits: n codes of 4 bits are n·4/8 bytes",
            ),
            Mistake(
                k * (down + codes) / 1e6,
                "mb_4bit forgets the scales: each block of 256 sends a float32 (4 bytes) beside "
                "its codes",
            ),
            Mistake(k * four / 1e6, "mb_4bit counts the uplink alone: add the float32 downlink"),
            Mistake((down + four) / 1e6, "mb_4bit counts one client: K clients take part"),
            Mistake(
                2 * k * four / 1e6,
                "mb_4bit quantises the downlink too: the server sends the float32 model, 4n bytes",
            ),
            Mistake(k * (down + four), "mb_4bit is in bytes: divide by 10⁶ for megabytes"),
            Mistake(
                k * (down + four) / 2**20,
                "mb_4bit is in mebibytes (2²⁰ bytes): use megabytes, 10⁶ bytes",
            ),
        ],
        "mb_4bit is not K × (4n bytes down + ⌈n/2⌉ + 4⌈n/256⌉ bytes up), in megabytes",
        atol=1e-3,
    )
    kept = compression.TopK(0.01).num_kept(n)
    got = _number("mb_topk", mb_topk, "megabytes")
    diagnose(
        got,
        k * (down + 8 * kept) / 1e6,
        [
            Mistake(
                k * (down + 4 * kept) / 1e6,
                "mb_topk counts the values without their indices: each kept entry travels as an "
                "int32 index and a float32 value, 8 bytes",
            ),
            Mistake(
                k * (down + 12 * kept) / 1e6,
                "mb_topk sends int64 indices (8 bytes): TopK's indices are int32, 4 bytes",
            ),
            Mistake(
                k * 8 * kept / 1e6, "mb_topk counts the uplink alone: add the float32 downlink"
            ),
            Mistake((down + 8 * kept) / 1e6, "mb_topk counts one client: K clients take part"),
            Mistake(
                k * (down + 64 * kept) / 1e6,
                "mb_topk counts the kept entries in bits: 8 bytes each (int32 index + float32 value)",
            ),
            Mistake(k * (down + 8 * kept), "mb_topk is in bytes: divide by 10⁶ for megabytes"),
        ],
        "mb_topk is not K × (4n bytes down + 8⌈n/100⌉ bytes up), in megabytes",
        atol=1e-3,
    )
    got = _number("mb_lora", mb_lora, "megabytes")
    diagnose(
        got,
        k * 2 * 4 * lora / 1e6,
        [
            Mistake(
                k * 4 * lora / 1e6, "mb_lora counts one direction: the adapters go down and up"
            ),
            Mistake(2 * 4 * lora / 1e6, "mb_lora counts one client: K clients take part"),
            Mistake(
                k * (down + 4 * lora) / 1e6,
                "mb_lora sends the full model down: with LoRA the clients already hold the frozen "
                "base model, only the adapters travel, both ways",
            ),
            Mistake(k * 2 * 32 * lora / 1e6, "mb_lora counts bits: a float32 is 4 bytes"),
            Mistake(k * 2 * 4 * lora, "mb_lora is in bytes: divide by 10⁶ for megabytes"),
            Mistake(k * 2 * lora / 1e6, "mb_lora counts parameters, not bytes: 4 bytes each"),
        ],
        "mb_lora is not K × 2 × 4 bytes × the LoRA parameters, in megabytes",
        atol=1e-4,
    )
    passed(
        f"a round with K = {k}: {float(mb_4bit):,.2f} MB with a 4-bit uplink, {float(mb_topk):,.2f} "
        f"MB with top-k 1 %, {float(mb_lora):,.2f} MB with LoRA adapters alone"
    )


def check_exploded(error: Any, num_rounds: int) -> None:
    """Check ``error``: the ``fedlab.DivergenceError`` a run whose loss exploded raised, caught
    and kept (notebook 08, exercise 2(e)).

    It recognises: the stub; the History of the rounds before (``error.history``) or a History
    of a finished run instead of the error; another exception; an error of a run that diverged
    for another reason (a NaN) rather than an exploding loss.

    Example:
        >>> from fedlab.engine import DivergenceError
        >>> from fedlab.history import History
        >>> check_exploded(DivergenceError(4, [1, 2], History(), reason="an exploding loss (up to 1e+09)"), 30)
        ✓ one_bit_ef_error: the loss exploded in round 4 of 30 (clients [1, 2]); error.history keeps the rounds before
        >>> check_exploded(History(), 30)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: one_bit_ef_error is a History, not the error: ...
    """
    from fedlab.engine import DivergenceError
    from fedlab.history import History

    require("one_bit_ef_error", error, "catch the DivergenceError the 1-bit + EF run raises")
    if isinstance(error, History):
        raise CheckFailed(
            "one_bit_ef_error is a History, not the error: keep the exception itself "
            "(`except fedlab.DivergenceError as error: one_bit_ef_error = error`); its "
            ".history holds the rounds before"
        )
    if not isinstance(error, DivergenceError):
        raise CheckFailed(
            f"one_bit_ef_error is a {type(error).__name__}, not the fedlab.DivergenceError the "
            "run raised"
        )
    if "exploding" not in error.reason:
        raise CheckFailed(
            f"this run diverged with {error.reason}, not an exploding loss: run section 3's "
            "settings with ErrorFeedback(one_bit)"
        )
    if not 1 <= error.round <= num_rounds:
        raise CheckFailed(f"the error names round {error.round}, outside the run's 1–{num_rounds}")
    passed(
        f"one_bit_ef_error: the loss exploded in round {error.round} of {num_rounds} (clients "
        f"{list(error.clients)}); error.history keeps the rounds before"
    )
