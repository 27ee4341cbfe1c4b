"""Argument checks shared by every public function: clear errors instead of TensorFlow traces.

Each check names the argument and the allowed range, e.g.
``ValueError: num_clients must be an integer in [1, 1797], got 0``.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable

import numpy as np


def check_int(name: str, value: object, low: int | None = None, high: int | None = None) -> int:
    """Return ``value`` as an int, or raise if it is not an integer in ``[low, high]``.

    Example:
        >>> check_int("num_clients", 10, low=1)
        10
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        lo = "-inf" if low is None else low
        hi = "inf" if high is None else high
        raise ValueError(f"{name} must be an integer in [{lo}, {hi}], got {value}")
    return value


def check_float(
    name: str,
    value: object,
    low: float | None = None,
    high: float | None = None,
    *,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
) -> float:
    """Return ``value`` as a finite float in the given range, or raise a clear error.

    Example:
        >>> check_float("client_lr", 0.1, low=0.0, low_inclusive=False)
        0.1
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    value = float(value)
    bad = not np.isfinite(value)
    if low is not None:
        bad |= value < low if low_inclusive else value <= low
    if high is not None:
        bad |= value > high if high_inclusive else value >= high
    if bad:
        lo = "(-inf" if low is None else ("[" if low_inclusive else "(") + f"{low:g}"
        hi = "inf)" if high is None else f"{high:g}" + ("]" if high_inclusive else ")")
        raise ValueError(f"{name} must be a finite number in {lo}, {hi}, got {value!r}")
    return value


def check_choice(name: str, value: object, choices: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``choices``, else raise naming the allowed values.

    Example:
        >>> check_choice("strategy", "loop", ["vectorized", "loop"])
        'loop'
    """
    choices = list(choices)
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value  # type: ignore[return-value]


def check_array(
    name: str, value: object, ndim: int | None = None, dtype_kind: str | None = None
) -> np.ndarray:
    """Return ``value`` as a numpy array, checking its number of dimensions and dtype kind.

    ``dtype_kind`` is a string of allowed numpy kinds, e.g. ``"iu"`` for integer labels.

    Example:
        >>> check_array("labels", [0, 1, 1], ndim=1, dtype_kind="iu").shape
        (3,)
    """
    try:
        array = np.asarray(value)
    except Exception as error:  # noqa: BLE001 - any conversion failure is a type error here
        raise TypeError(f"{name} must be array-like, got {type(value).__name__}") from error
    if ndim is not None and array.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {array.shape}")
    if dtype_kind is not None and array.dtype.kind not in dtype_kind:
        raise TypeError(f"{name} must have dtype kind in {dtype_kind!r}, got {array.dtype}")
    return array
