"""Atomic file writes: an interrupted run leaves each file complete or absent, never half-written.

Files get the permissions an ordinary ``open()`` would give them (``0o666`` less the umask),
whichever front end writes them, unless a ``mode`` is asked for (a secret: ``0o600``); the
temporary file is private from its creation.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(path: str | Path, write: Callable[[Path], None], *, mode: int | None = None) -> None:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it into place
    (with ``mode``, else the permissions ``open()`` gives)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o666 & ~_umask() if mode is None else mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_bytes(path: str | Path, data: bytes, *, mode: int | None = None) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`write_atomic`)."""
    write_atomic(path, lambda tmp: tmp.write_bytes(data), mode=mode)
