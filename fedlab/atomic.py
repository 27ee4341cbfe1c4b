"""Saves that never destroy the previous good file: write to a temporary file in the same folder,
flush it to disk, then rename it over the target (``os.replace``: atomic on POSIX and Windows).

A save that fails half-way — a value that cannot be written, a full disk, Ctrl-C, a killed
kernel — leaves the previous file as it was, and a reader never sees half a file. Used by
:meth:`fedlab.History.save`, the command line's outputs and the Flower server's history.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

__all__ = ["write_atomically"]


def write_atomically(files: Mapping[str | os.PathLike, bytes]) -> None:
    """Write each ``path: content`` so that every target is either its old or its new content.

    All contents are first written to temporary files beside their targets (same folder, so the
    rename cannot cross file systems) and synced to disk; only then is each renamed over its
    target, in the order given — put the file that refers to the others last. Missing folders
    are created. If anything fails before the renames, the temporary files are removed and no
    target has changed.

    Example:
        >>> import tempfile, pathlib
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> write_atomically({folder / "a.txt": b"one"})
        >>> (folder / "a.txt").read_bytes()
        b'one'
    """
    staged: list[tuple[str, Path]] = []
    try:
        for path, content in files.items():
            target = Path(path)
            if target.is_dir():
                raise IsADirectoryError(f"{target} is a folder: give a file name to save to")
            target.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(
                prefix=f".{target.name}.", suffix=".tmp", dir=target.parent
            )
            staged.append((temporary, target))
            with os.fdopen(handle, "wb") as f:
                f.write(content)
                f.flush()
                os.fsync(f.fileno())
            _keep_mode(target, temporary)
        for temporary, target in staged:
            os.replace(temporary, target)
    except BaseException:
        for temporary, _ in staged:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
        raise
    for folder in {target.parent for _, target in staged}:
        _sync_folder(folder)


def _keep_mode(target: Path, temporary: str) -> None:
    """Give the new file the old one's permissions (mkstemp makes it 0600), or the umask's."""
    try:
        mode = target.stat().st_mode & 0o777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    os.chmod(temporary, mode)


def _sync_folder(folder: Path) -> None:
    """Flush the folder's entry for the renamed file (POSIX; a no-op where folders can't open)."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
