"""One batch on a dask cluster, from the client: every slide's start, chunks and finish as tasks.

Every slide's start task is submitted at once; as a slide's start comes back, its chunks are
submitted (so slides are not serialised behind one another, and one slide spreads over every
worker); when all its chunks are back, its finish task (the reduce) is submitted. The client
is the one writer of each slide's resume record: it marks a chunk done, with the checksums of
what the worker wrote, as the chunk's result arrives, so an interrupted batch resumes where
it stopped. Tasks are retried on errors, and the chunks of a worker that dies are recomputed
elsewhere by the scheduler (their pixels are the same, and a chunk is marked once).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from napari_deepliif.errors import DeepLIIFError
from napari_deepliif.slides import omezarr
from napari_deepliif.slides.tasks import (
    PROGRESS_INTERVAL,
    BatchOptions,
    SlideStart,
    chunk_task,
    failure,
    finish_task,
    start_task,
)

#: Times a task that raised is run again (a lost worker's tasks are rerun by the scheduler anyway).
RETRIES = 2


@dataclass
class _Slide:
    """Client-side state of one slide."""

    path: Path
    out: Path
    submitted: float
    start: SlideStart | None = None
    record: omezarr.RunRecord | None = None
    pending: set = field(default_factory=set)
    units_done: int = 0
    workers: dict[str, dict] = field(default_factory=dict)


@dataclass
class _Tiles:
    """Tiles done over tiles planned, all slides and workers together; throttled events."""

    on_progress: Callable[[dict], None] | None
    done: int = 0
    total: int = 0
    last: float = 0.0

    def report(self, slide: _Slide, units: int) -> None:
        self.done += units
        now = time.monotonic()
        if self.on_progress is None or (now - self.last < PROGRESS_INTERVAL and self.done < self.total):
            return
        self.last = now
        self.on_progress({"slide": slide.path.name, "stage": "inference", "done": slide.units_done,
                          "total": slide.start.units_total, "tiles_done": self.done, "tiles_total": self.total})


def run_slides(
    client: Any,
    slides: list[Path],
    dirs: list[Path],
    options: BatchOptions,
    *,
    on_progress: Callable[[dict], None] | None = None,
    on_record: Callable[[int, dict], None] | None = None,
) -> list[dict]:
    """Score ``slides`` into ``dirs`` (one each) on the cluster of ``client``.

    Parameters
    ----------
    client : distributed.Client
    slides, dirs : list of Path
        The slides and their output directories, as the workers see them (this machine must
        see ``dirs`` too: it writes each store's resume record).
    options : BatchOptions
    on_progress : callable(event), optional
        ``{"slide", "stage": "inference", "done", "total", "tiles_done", "tiles_total"}``:
        the slide's tiles (chunks for an untiled engine) and those of every slide started,
        over all workers; at most one a second.
    on_record : callable(index, record), optional
        Called as each slide finishes, with its score record (or skip or failure record).

    Returns
    -------
    list of dict
        Each slide's record, in the order of ``slides``.
    """
    from distributed import as_completed

    states = [_Slide(path, out, time.perf_counter()) for path, out in zip(slides, dirs)]
    records: list[dict | None] = [None] * len(slides)
    tags: dict[Any, tuple[str, int]] = {}
    queue = as_completed()
    tiles = _Tiles(on_progress)

    def submit(kind: str, i: int, function: Callable, *args: Any, name: str) -> None:
        future = client.submit(function, *args, key=f"{kind}-{name}-{uuid.uuid4().hex[:8]}", pure=False,
                               retries=RETRIES)
        tags[future] = (kind, i)
        states[i].pending.add(future)
        queue.add(future)

    def settle(i: int, record: dict) -> None:
        records[i] = record
        if states[i].pending:
            client.cancel(list(states[i].pending))
        if on_record:
            on_record(i, record)

    for i, state in enumerate(states):
        submit("start", i, start_task, str(state.path), str(state.out), options, name=state.out.name)
    for future in queue:
        kind, i = tags.pop(future)
        state = states[i]
        state.pending.discard(future)
        if records[i] is not None:  # failed already: what is left of it is cancelled
            continue
        try:
            result = future.result()
        except Exception as exc:  # a chunk's error after its retries, or a worker lost again and again
            settle(i, failure(exc))
            continue
        if kind == "finish" or isinstance(result, dict):  # a score record, a skip or a failure
            settle(i, result)
            continue
        if kind == "start":
            state.start, state.units_done = result, result.units_done
            state.record = omezarr.RunRecord.load(result.job.store)
            if state.record is None:
                settle(i, failure(DeepLIIFError(
                    f"{result.job.store} was written by a worker but cannot be read here: this machine and the "
                    "workers must see --out at the same path, e.g. on a shared file system")))
                continue
            tiles.total += result.units_total
            tiles.done += result.units_done
            for chunk in result.todo:
                submit("chunk", i, chunk_task, result.job, chunk, name=f"{state.out.name}-{chunk.index}")
        else:
            state.record.mark(result.index, result.box, result.checksums)
            run = state.start.run
            run.chunks_run, run.tiles_run, run.tiles_skipped = (run.chunks_run + 1, run.tiles_run + result.tiles_run,
                                                                run.tiles_skipped + result.tiles_skipped)
            spent = state.workers.setdefault(result.worker, {"chunks": 0, "tiles": 0, "seconds": 0.0})
            spent["chunks"] += 1
            spent["tiles"] += result.tiles_run
            spent["seconds"] += result.seconds
            state.units_done += result.units
            tiles.report(state, result.units)
        if not state.pending:
            workers = {w: {**spent, "seconds": round(spent["seconds"], 2)}
                       for w, spent in sorted(state.workers.items())}
            submit("finish", i, finish_task, state.start, state.start.run, time.perf_counter() - state.submitted,
                   workers, name=state.out.name)
    return [r for r in records if r is not None]
