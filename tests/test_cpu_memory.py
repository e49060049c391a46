"""The CPU allocator setting: large blocks come from the heap and are reused, or not at all
when the user turns it off."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import textwrap

import pytest

# Allocates a 96 MB array (in a new thread with "thread") and reports how many bytes glibc
# holds in mmap'ed blocks meanwhile; a thread's own arena would have to map a block that size.
_PROBE = textwrap.dedent(
    """
    import ctypes, sys
    import numpy as np
    from napari_deepliif.engine.cpu_memory import keep_freed_memory

    class MallInfo2(ctypes.Structure):
        _fields_ = [(n, ctypes.c_size_t) for n in
                    ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
                     "uordblks", "fordblks", "keepcost")]

    libc = ctypes.CDLL(None)
    libc.mallinfo2.restype = MallInfo2
    applied = keep_freed_memory()
    before = libc.mallinfo2().hblkhd
    mapped = []

    def allocate():
        block = np.ones(96 * 2**20, dtype=np.uint8)
        mapped.append(libc.mallinfo2().hblkhd - before)

    if sys.argv[1] == "thread":
        import threading
        worker = threading.Thread(target=allocate)
        worker.start()
        worker.join()
    else:
        allocate()
    print(applied, mapped[0])
    """
)


def _probe(env_value: str | None, where: str = "main") -> tuple[bool, int]:
    env = dict(os.environ)
    env.pop("NAPARI_DEEPLIIF_KEEP_FREED_MEMORY", None)
    if env_value is not None:
        env["NAPARI_DEEPLIIF_KEEP_FREED_MEMORY"] = env_value
    out = subprocess.run([sys.executable, "-c", _PROBE, where], env=env, capture_output=True, text=True, check=True)
    applied, mapped = out.stdout.split()
    return applied == "True", int(mapped)


GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
glibc_only = pytest.mark.skipif(not GLIBC, reason="glibc only")


@glibc_only
def test_large_blocks_come_from_the_heap_once_applied() -> None:
    applied, mapped = _probe(None)
    assert applied
    assert mapped == 0


@glibc_only
def test_threads_started_afterwards_use_the_same_heap() -> None:
    applied, mapped = _probe(None, "thread")
    assert applied
    assert mapped == 0


@glibc_only
def test_the_environment_variable_turns_it_off() -> None:
    applied, mapped = _probe("0")
    assert not applied
    assert mapped >= 96 * 2**20


def test_worker_processes_get_one_arena_unless_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    from napari_deepliif.engine.cpu_memory import worker_environment

    monkeypatch.delenv("NAPARI_DEEPLIIF_KEEP_FREED_MEMORY", raising=False)
    expected = {"MALLOC_ARENA_MAX": "1"} if GLIBC else {}
    assert worker_environment() == expected
    monkeypatch.setenv("NAPARI_DEEPLIIF_KEEP_FREED_MEMORY", "off")
    assert worker_environment() == {}
