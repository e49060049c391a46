"""Keep freed tensor memory inside the process during CPU inference (Linux, glibc).

glibc hands every allocation over a few megabytes to the kernel with ``mmap`` and gives it
back on free, so each new 16-67 MB activation of a 512 x 512 tile is page-faulted in afresh.
On the 2-core machines of docs/benchmarks.md that is ~1.6 us per 4 KiB page: 10% of a ResNet
generator's time and 40% of a UNet's. Serving large blocks from the heap and not trimming it
makes later tiles reuse the same pages, as PyTorch's GPU caching allocator does. Threads
share that one heap: a thread's own glibc arena cannot hold blocks over 64 MB and maps them
afresh every time (the napari widget, the server and dask run tiles in worker threads), so
call this before such threads start. The cost is that memory freed after a run stays with the
process (up to the run's peak), which a long napari session may notice; set
``NAPARI_DEEPLIIF_KEEP_FREED_MEMORY=0`` to turn this off.
"""

from __future__ import annotations

import ctypes
import logging
import os
import platform

log = logging.getLogger(__name__)

ENV_VAR = "NAPARI_DEEPLIIF_KEEP_FREED_MEMORY"
# mallopt parameters from glibc's malloc.h
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_M_ARENA_MAX = -8
#: Free memory at the top of the heap beyond this is still returned to the system.
TRIM_THRESHOLD_BYTES = 1 << 28

_applied: bool | None = None


def keep_freed_memory() -> bool:
    """Configure glibc's allocator as described above, once per process.

    Returns
    -------
    bool
        True when the setting is in effect; False on other C libraries and platforms, or
        when ``NAPARI_DEEPLIIF_KEEP_FREED_MEMORY=0``.
    """
    global _applied
    if _applied is None:
        _applied = _apply()
    return _applied


def worker_environment() -> dict[str, str]:
    """Environment for worker processes we start (a dask LocalCluster): one shared arena from
    the process's start, since their task threads exist before any model loads there.

    Returns
    -------
    dict of str to str
        ``{"MALLOC_ARENA_MAX": "1"}``, or nothing where the setting is off or not glibc's.
    """
    return {"MALLOC_ARENA_MAX": "1"} if _wanted() else {}


def _wanted() -> bool:
    if os.environ.get(ENV_VAR, "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    return platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


def _apply() -> bool:
    if not _wanted():
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    ok = all(mallopt(param, value) for param, value in
             ((_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES), (_M_ARENA_MAX, 1)))
    log.debug("glibc keeps freed memory for reuse: %s", ok)
    return ok
