"""The one progress and cancel protocol of every long run (engine, regions, slides, front ends).

``progress(done, total)`` is called with whole counts (tiles, chunks or steps) after each
unit of work; ``cancel`` is a ``threading.Event`` or a callable returning True to stop, and
is checked between units, where :func:`check_cancel` raises :class:`Cancelled`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from napari_deepliif.errors import Cancelled

ProgressCallback = Callable[[int, int], None]
CancelCheck = Callable[[], bool]


def cancel_requested(cancel: CancelCheck | Any | None) -> bool:
    """Whether ``cancel`` (an Event, a callable or None) asks to stop."""
    if cancel is None:
        return False
    if hasattr(cancel, "is_set"):
        return bool(cancel.is_set())
    return bool(cancel())


def check_cancel(cancel: CancelCheck | Any | None, message: str) -> None:
    """Raise :class:`Cancelled` with ``message`` when ``cancel`` asks to stop."""
    if cancel_requested(cancel):
        raise Cancelled(message)
