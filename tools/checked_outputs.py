"""What a checked notebook cell must print to pass: the committed text, up to one last digit.

A code cell tagged ``nbval-check-output`` is compared with its committed output by nbval. Most
print numbers that are the same on every machine at their printed precision. Some cannot: the
result of a long training run or an optimiser (L-BFGS), whose low bits depend on the CPU's
kernels, can land on either side of a rounding boundary. Such a cell also carries the tag
``last-digit-tolerance``: then every decimal number it prints (``0.917``, ``56.4``, ``1.2e-03``)
may differ from the committed one by one unit in its last printed digit, and everything else —
words, integers (rounds, counts, labels), the layout — must be the same. ``notebooks/conftest.py``
applies this to nbval's comparison; ``tools/output_audit.py`` uses it too.

    >>> tolerate("PSNR 56.4 dB", "PSNR 56.3 dB")
    'PSNR 56.3 dB'
    >>> tolerate("PSNR 56.5 dB", "PSNR 56.3 dB")  # two units off: left as it is, and fails
    'PSNR 56.5 dB'
"""

from __future__ import annotations

import copy
import re

CHECKED = "nbval-check-output"
TOLERANCE = "last-digit-tolerance"
# a decimal number: digits with a point, or in scientific notation; integers are not matched
DECIMAL = re.compile(r"[-+]?\d*\.\d+(?:[eE][-+]?\d+)?|[-+]?\d+[eE][-+]?\d+")


def last_digit(number: str) -> float:
    """The value of one unit in the last printed digit: ``"0.917"`` -> 0.001, ``"1.2e-03"`` -> 1e-4.

    >>> last_digit("56.4"), last_digit("1.2e-03")
    (0.1, 0.0001)
    """
    mantissa, _, exponent = number.lower().partition("e")
    decimals = len(mantissa.partition(".")[2])
    return float(f"1e{int(exponent or 0) - decimals}")


def within_last_digit(test: str, reference: str) -> bool:
    """Whether two printed decimals differ by at most one unit in the last printed digit."""
    unit = max(last_digit(test), last_digit(reference))
    return abs(float(test) - float(reference)) <= unit * (1 + 1e-9)


def tolerate(test: str, reference: str) -> str:
    """``reference`` if ``test`` says the same thing up to one last digit per decimal (and spacing
    around numbers that got a digit longer, ``9.9`` -> ``10.0``); else ``test`` unchanged."""
    test_numbers, reference_numbers = DECIMAL.findall(test), DECIMAL.findall(reference)
    words = [part.split() for part in DECIMAL.split(test)]
    if len(test_numbers) != len(reference_numbers) or words != [
        part.split() for part in DECIMAL.split(reference)
    ]:
        return test
    if all(map(within_last_digit, test_numbers, reference_numbers)):
        return reference
    return test


def tolerate_outputs(test: list, reference: list) -> list:
    """A copy of a cell's fresh outputs in which each text that matches its committed counterpart
    up to one last digit (:func:`tolerate`) is replaced by that counterpart."""
    test = copy.deepcopy(test)
    for fresh, committed in zip(test, reference, strict=False):
        if "text" in fresh and "text" in committed:
            fresh["text"] = tolerate(text_of(fresh["text"]), text_of(committed["text"]))
        fresh_data, committed_data = fresh.get("data", {}), committed.get("data", {})
        if "text/plain" in fresh_data and "text/plain" in committed_data:
            fresh_data["text/plain"] = tolerate(
                text_of(fresh_data["text/plain"]), text_of(committed_data["text/plain"])
            )
    return test


def text_of(value: str | list[str]) -> str:
    return value if isinstance(value, str) else "".join(value)


def tolerate_in_nbval(items: list) -> None:
    """A ``pytest_collection_modifyitems`` hook: nbval compares each cell tagged
    ``last-digit-tolerance`` through :func:`tolerate_outputs` (notebooks/conftest.py uses it)."""
    for item in items:
        cell = getattr(item, "cell", None)  # nbval's cell items have one
        if cell is None or TOLERANCE not in cell.metadata.get("tags", []):
            continue

        def compare(test, ref, skip_compare=None, original=item.compare_outputs):
            return original(tolerate_outputs(test, ref), ref, skip_compare)

        item.compare_outputs = compare
