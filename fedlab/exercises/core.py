"""The parts every exercise check is made of: :class:`CheckFailed`, :class:`Mistake` and
:func:`diagnose`, the stub tests, and the checks every notebook uses (:func:`check_runs` for
a controlled re-run, :func:`check_choice` for a short answer)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "CheckFailed",
    "Mistake",
    "Weights",
    "call",
    "check_choice",
    "check_runs",
    "diagnose",
    "is_stub",
    "passed",
    "require",
    "same",
]

Weights = list[np.ndarray]


class CheckFailed(AssertionError):
    """An exercise's answer is wrong (or still the stub); the message says what and what to do.

    In a notebook it shows as one line, ``✗ message``, without a traceback: the message is the
    feedback, and the frames of the check's own code would only hide it.

    Example:
        >>> str(CheckFailed("your aggregate weights every client equally"))
        'your aggregate weights every client equally'
    """

    __module__ = "fedlab.exercises"  # where students meet it: `exercises.CheckFailed`

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
                f"{label} also changed {setting} ({value!r} → {got.get(setting)!r}): "
                + (
                    f"change only {' and '.join(wants)}, so any difference you see has one cause"
                    if wants
                    else f"run it exactly as {what}"
                )
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
    return " and ".join(parts) or "the same settings"


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
