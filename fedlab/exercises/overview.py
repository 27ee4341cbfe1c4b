"""Checks for notebook 00's exercises (what federated learning is, and is not)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fedlab.exercises.core import CheckFailed, Mistake, diagnose, passed, require

__all__ = ["SCENARIOS", "check_federated_or_not", "check_small_share"]

# Each scenario, whether it is federated learning, and what to tell a student who says otherwise.
SCENARIOS: dict[str, tuple[bool, str]] = {
    "hospitals": (
        True,
        "each hospital keeps its records and sends only model updates, which a server "
        "averages: that is federated learning",
    ),
    "encrypted upload": (
        False,
        "the photos still leave the phones: encrypting them on the way only hides them from "
        "eavesdroppers, and the server decrypts them and trains on them. That is centralised "
        "training with encrypted transport, not federated learning, whatever some articles say",
    ),
    "alone": (
        False,
        "nothing is shared, so nothing is learnt together: that is local training on every "
        "phone (notebook 13 calls it local-only), no federation",
    ),
    "trusted party": (
        False,
        "the data are pooled, only at someone else: that is centralised training",
    ),
    "keyboards": (
        True,
        "each phone trains on what its user typed and uploads an update; the server averages "
        "them: that is federated learning (Gboard's, in fact)",
    ),
}


def check_federated_or_not(answers: Any) -> None:
    """Check ``answers``: for every key of :data:`SCENARIOS`, True if it is federated learning.

    It recognises: the stub; a scenario left out or a value that is not True/False; and each
    wrong verdict, with what makes the scenario federated learning or not — above all, that
    encrypting the data and sending it to a server is not federated learning.

    Example:
        >>> check_federated_or_not({name: verdict for name, (verdict, _) in SCENARIOS.items()})
        ✓ all 5 scenarios told apart: the model travels, the data stay
        >>> check_federated_or_not({**{n: v for n, (v, _) in SCENARIOS.items()}, "encrypted upload": True})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: 'encrypted upload' is not federated learning: the photos still leave...
    """
    require("is_federated", answers, "mark each scenario True or False")
    if not isinstance(answers, Mapping):
        raise CheckFailed(
            f"is_federated should be a dict {{scenario: True or False}}, got {type(answers).__name__}"
        )
    missing = [name for name in SCENARIOS if name not in answers]
    if missing:
        raise CheckFailed(f"is_federated has no verdict for {', '.join(map(repr, missing))}")
    for name, (federated, why) in SCENARIOS.items():
        answer = answers[name]
        if answer is Ellipsis:
            raise CheckFailed(f"is_federated[{name!r}] is still `...`: True or False?")
        if not isinstance(answer, bool):
            raise CheckFailed(f"is_federated[{name!r}] should be True or False, got {answer!r}")
        if answer != federated:
            verdict = "is" if federated else "is not"
            raise CheckFailed(f"{name!r} {verdict} federated learning: {why}")
    passed(f"all {len(SCENARIOS)} scenarios told apart: the model travels, the data stay")


def check_small_share(small_share: Any, big: int = 1000, small: int = 10) -> None:
    """Check ``small_share``: with half of the clients holding ``big`` examples and half
    ``small``, the share of the aggregate that all the small clients together get when the
    server weights client k by n_k / n.

    It recognises: the stub; equal weights (one half); the ratio of the sizes, small / big,
    instead of a share of all examples; one small client's share; a percentage.

    Example:
        >>> check_small_share(10 / 1010)
        ✓ small_share: the small clients together carry 1.0 % of the aggregate, weighted by n_k / n
        >>> check_small_share(0.5)
        Traceback (most recent call last):
        ...
        fedlab.exercises.CheckFailed: 0.5 is what equal weights (1 / K each) give them: weight client k by n_k / n instead
    """
    require("small_share", small_share, "compute the small clients' share of the aggregate")
    try:
        value = float(small_share)
    except (TypeError, ValueError):
        raise CheckFailed(f"small_share should be a number, got {small_share!r}") from None
    share = small / (big + small)
    mistakes = [
        Mistake(
            0.5,
            "0.5 is what equal weights (1 / K each) give them: weight client k by n_k / n instead",
        ),
        Mistake(
            small / big,
            f"{small} / {big} compares the two sizes; the share is the small clients' examples over all examples",
        ),
        Mistake(100 * share, "that is a percentage: give the share as a fraction between 0 and 1"),
    ]
    diagnose(value, share, mistakes, "not the small clients' share of all the examples", atol=1e-6)
    passed(
        f"small_share: the small clients together carry {100 * share:.1f} % of the aggregate, "
        "weighted by n_k / n"
    )
