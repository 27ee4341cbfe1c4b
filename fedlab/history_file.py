"""A History on disk: strict JSON written atomically, read back with checks that name the field.

The file is one JSON object::

    {"format": "fedlab.History", "version": 1, "config": {...}, "rounds": [{...}, ...],
     "client_state": {"file": "run.3f9a1c2b4d5e.npz", "sha256": "3f9a1c2b4d5e..."}}

- **Strict JSON.** NaN is written as ``null`` and ±∞ as the strings ``"Infinity"`` and
  ``"-Infinity"`` (bare ``NaN`` tokens are not JSON, and strict parsers refuse them); the number
  fields of a round read them back as floats. NumPy scalars and arrays in a config are written as
  numbers and lists; anything else JSON cannot hold stops the save *before* a byte is written,
  naming where it is (``config['algorithm']['mu']``).
- **Nothing lost.** The JSON and its client state are written to temporary files and renamed
  over the old ones (:func:`fedlab.atomic.write_atomically`): a failed or killed save leaves the
  previous files whole. The client state (personal models, SCAFFOLD's variates, ...) goes to a
  ``.npz`` named after its content's hash, and the JSON names that file and its SHA-256, so a
  history never picks up a state file that is not its own (another run's, an older save's); the
  state file of the save it replaces is removed after the new one is in place.
- **Checked on load.** A file that is empty, not JSON, not a History, or has a round that is
  not an object, misses a field or holds a value of the wrong type raises one ``ValueError`` that
  names the file and the field (``rounds[3].test_accuracy``). Fields this version of fedlab does
  not know (a file from a newer version) are left out with a warning, not refused.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import os
import warnings
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fedlab.atomic import write_atomically

if TYPE_CHECKING:
    from fedlab.history import History, RoundRecord

__all__ = ["FORMAT", "VERSION", "read_history", "record_from_dict", "write_history"]

FORMAT = "fedlab.History"
VERSION = 1
_INFINITIES = {"Infinity": math.inf, "-Infinity": -math.inf}
_TOP_LEVEL = {"format", "version", "config", "rounds", "client_state"}


# --- writing -------------------------------------------------------------------------------------


def to_json_value(value: Any, where: str) -> Any:
    """``value`` as strict JSON can hold it: NaN → None, ±∞ → "Infinity"/"-Infinity", NumPy
    scalars and arrays → numbers and lists, tuples → lists; a ``TypeError`` naming ``where``
    for anything else.

    Example:
        >>> to_json_value({"mu": np.float32(0.5), "c": [float("nan"), float("inf")]}, "config")
        {'mu': 0.5, 'c': [None, 'Infinity']}
        >>> to_json_value({"f": print}, "config")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        TypeError: config['f'] is of type builtin_function_or_method: a History file holds ...
    """
    if isinstance(value, np.ndarray):
        return to_json_value(value.tolist(), where)
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return value
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(
                    f"{where} has the key {key!r} ({type(key).__name__}): a History file's "
                    "dicts need string keys"
                )
            out[key] = to_json_value(item, f"{where}[{key!r}]")
        return out
    if isinstance(value, list | tuple):
        return [to_json_value(item, f"{where}[{i}]") for i, item in enumerate(value)]
    raise TypeError(
        f"{where} is of type {type(value).__name__}: a History file holds numbers, strings, "
        "booleans, None, lists and dicts (convert it, e.g. with float() or str())"
    )


def write_history(history: History, path: str | os.PathLike) -> None:
    """Save ``history`` to ``path`` (JSON) and its client state beside it, atomically.

    Example:
        >>> write_history(history, "run.json")  # doctest: +SKIP
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"path {path} is a folder: give a file name, e.g. {path}/run.json")
    document: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "config": to_json_value(history.config, "config"),
        "rounds": to_json_value(history.to_dict()["rounds"], "rounds"),
    }
    files: dict[Path, bytes] = {}
    if history.client_state:  # arrays beside the JSON, keys "name/index"
        buffer = io.BytesIO()
        np.savez_compressed(
            buffer,
            **{
                f"{name}/{i}": np.asarray(a)
                for name, values in history.client_state.items()
                for i, a in enumerate(values)
            },
        )
        content = buffer.getvalue()
        digest = hashlib.sha256(content).hexdigest()
        state = path.with_name(f"{path.stem}.{digest[:12]}.npz")
        document["client_state"] = {"file": state.name, "sha256": digest}
        files[state] = content
    text = json.dumps(document, indent=1, allow_nan=False, ensure_ascii=False)
    previous = _state_file_of(path)
    files[path] = (text + "\n").encode("utf-8")  # last: it names the state file
    write_atomically(files)
    if previous is not None and previous not in files:
        with contextlib.suppress(OSError):
            previous.unlink()


def _state_file_of(path: Path) -> Path | None:
    """The state file a History file at ``path`` names (None: no file, no state, unreadable)."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        return path.with_name(Path(document["client_state"]["file"]).name)
    except (OSError, ValueError, KeyError, TypeError):
        return None


# --- reading -------------------------------------------------------------------------------------


def read_history(path: str | os.PathLike, client_state: bool = True) -> History:
    """Read a History file written by :func:`write_history` (or an older fedlab), checked.

    Example:
        >>> read_history("missing.json")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        FileNotFoundError: no History file at missing.json...
    """
    from fedlab.history import History

    path = Path(path)
    document = _parse(path)
    where = str(path)
    fmt = document.get("format", FORMAT)
    if fmt != FORMAT:
        raise ValueError(f"{where} is a {fmt!r} file, not a fedlab History ({FORMAT!r})")
    version = document.get("version", 0)
    if not isinstance(version, int) or isinstance(version, bool):
        raise ValueError(f"{where}: 'version' should be a whole number, got {version!r}")
    if version > VERSION:
        warnings.warn(
            f"{where} was written by a newer fedlab (History file version {version}; this one "
            f"reads version {VERSION}): what it does not know is left out",
            stacklevel=3,
        )
    unknown = sorted(set(document) - _TOP_LEVEL)
    if unknown:
        warnings.warn(f"{where}: unknown keys {unknown} left out (a newer fedlab?)", stacklevel=3)
    history = History.from_dict(document, where=where)
    if client_state:
        history.client_state.update(_read_state(path, document))
    return history


def _parse(path: Path) -> dict:
    """The file's JSON object, or one clear error saying what the file is instead."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(
            f"no History file at {path} (the folder holds: {_listing(path.parent)})"
        ) from None
    except IsADirectoryError:
        raise IsADirectoryError(f"{path} is a folder, not a History file") from None
    if not raw.strip():
        raise ValueError(f"{path} is empty: not a History file (an interrupted save?)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not text (a binary file?): not a History file") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(
            f"{path} is not valid JSON (line {error.lineno}, column {error.colno}: {error.msg}): "
            "not a History file, or a damaged one"
        ) from None
    if not isinstance(document, dict):
        raise ValueError(
            f"{path} holds a JSON {type(document).__name__}; a History file holds an object "
            "with 'config' and 'rounds'"
        )
    return document


def _listing(folder: Path) -> str:
    try:
        names = sorted(p.name for p in folder.iterdir() if p.suffix == ".json")
    except OSError:
        return "nothing readable"
    return ", ".join(names[:8]) + (", ..." if len(names) > 8 else "") if names else "no .json"


def _read_state(path: Path, document: dict) -> dict[str, list[np.ndarray]]:
    """The client state the file names, checked against its hash."""
    reference = document.get("client_state")
    if reference is None:
        legacy = path.with_suffix(".npz")
        if "format" not in document and legacy.exists():  # written by fedlab before version 1
            warnings.warn(
                f"{legacy} was loaded as {path.name}'s client state: files saved by older fedlab "
                "versions do not record which state file is theirs. Save the history again to "
                "record it.",
                stacklevel=4,
            )
            return _arrays(legacy.read_bytes(), legacy)
        return {}
    if not (isinstance(reference, dict) and {"file", "sha256"} <= set(reference)):
        raise ValueError(f"{path}: 'client_state' should name a 'file' and its 'sha256'")
    state = path.with_name(Path(str(reference["file"])).name)
    if not state.exists():
        raise FileNotFoundError(
            f"{path} keeps its client state in {state.name}, which is not beside it: copy both "
            "files together, or load without it: History.load(path, client_state=False)"
        )
    content = state.read_bytes()
    if hashlib.sha256(content).hexdigest() != reference["sha256"]:
        raise ValueError(
            f"{state.name} is not the client state {path.name} was saved with (its content "
            "changed): load without it with History.load(path, client_state=False)"
        )
    return _arrays(content, state)


def _arrays(content: bytes, state: Path) -> dict[str, list[np.ndarray]]:
    out: dict[str, list[np.ndarray]] = {}
    try:
        with np.load(io.BytesIO(content)) as arrays:
            keys = sorted(arrays.files, key=lambda k: (k.split("/")[0], int(k.split("/")[1])))
            for key in keys:
                out.setdefault(key.split("/")[0], []).append(arrays[key])
    except (ValueError, OSError, IndexError) as error:
        raise ValueError(f"{state} is not a client-state file ({error})") from None
    return out


def _number(value: Any, where: str) -> float:
    if value is None:
        return math.nan
    if isinstance(value, str) and value in _INFINITIES:
        return _INFINITIES[value]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{where} should be a number, got {value!r}")
    return float(value)


def _whole(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{where} should be a whole number, got {value!r}")
    return value


def _flag(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{where} should be true or false, got {value!r}")
    return value


def _sequence(value: Any, where: str, item) -> tuple:
    if not isinstance(value, list | tuple):
        raise ValueError(f"{where} should be a list, got {value!r:.60}")
    return tuple(item(v, f"{where}[{i}]") for i, v in enumerate(value))


_READERS = {
    "int": _whole,
    "float": _number,
    "bool": _flag,
    "tuple[int, ...]": lambda v, w: _sequence(v, w, _whole),
    "tuple[float, ...]": lambda v, w: _sequence(v, w, _number),
}


def record_from_dict(values: Any, where: str = "record") -> RoundRecord:
    """A :class:`~fedlab.history.RoundRecord` from a dict, every field checked against its type.

    Missing optional fields (files saved before they existed) take their defaults; ``None`` in
    a number is NaN; unknown fields are left out with a warning.

    Example:
        >>> record_from_dict({"round": "one"}, "rounds[0]")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: rounds[0] has no 'clients', 'client_loss', ...
    """
    from fedlab.history import RoundRecord

    if not isinstance(values, dict):
        raise ValueError(f"{where} should be an object with a round's numbers, got {values!r:.60}")
    known = {f.name: f for f in fields(RoundRecord)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        warnings.warn(f"{where}: unknown fields {unknown} left out (a newer fedlab?)", stacklevel=4)
    required = [
        name
        for name, f in known.items()
        if f.default is f.default_factory  # both MISSING: a field without a default
    ]
    missing = [name for name in required if name not in values]
    if missing:
        shown = ", ".join(map(repr, missing[:4])) + (", ..." if len(missing) > 4 else "")
        raise ValueError(f"{where} has no {shown}: every round of a History records them")
    checked = {
        name: _READERS[str(known[name].type)](value, f"{where}.{name}")
        for name, value in values.items()
        if name in known
    }
    return RoundRecord(**checked)


def config_from_json(value: Any) -> Any:
    """Undo :func:`to_json_value`'s ±∞ strings in a config (NaN stays None)."""
    if isinstance(value, str) and value in _INFINITIES:
        return _INFINITIES[value]
    if isinstance(value, dict):
        return {k: config_from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [config_from_json(v) for v in value]
    return value
