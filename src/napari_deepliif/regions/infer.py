"""Chunked inference of an image: the one plan, statistics and seam rule behind every front end.

The engine plans the chunks (:meth:`EngineBase.plan`: blocks of whole tiles of the image's own
tile grid for DeepLIIF, squares on the whole image's block grid for the stain engine), its
whole-image statistics are computed once first (the stain engine's foreground threshold), and
each chunk is computed into a buffer and handed to ``write``. Chunks are disjoint and their
results do not depend on the order they run in, so the outputs equal one ``infer`` of the
whole image, pixel for pixel, whether they land in memory or in an OME-Zarr store, and
whichever front end asked.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

import numpy as np

from napari_deepliif.engine.engines import EngineBase
from napari_deepliif.engine.tiling import Chunk
from napari_deepliif.progress import CancelCheck, ProgressCallback, check_cancel

#: Default chunk edge (pixels of the image scored), rounded to whole tiles.
CHUNK_SIZE = 2048

Include = Callable[[int, int, int, int], bool]  #: (y0, y1, x0, x1) -> whether to compute it
Writer = Callable[[str, tuple[int, int, int, int], np.ndarray], None]  #: (output, box, H x W x 3)


@dataclass
class RegionRun:
    """What :func:`infer_chunks` did.

    Attributes
    ----------
    chunks_run, chunks_resumed : int
        Chunks computed now, and chunks found done before.
    tiles_run, tiles_skipped : int
        Tiles (1 per chunk for an untiled engine) computed, and skipped by ``include``.
    """

    chunks_run: int = 0
    chunks_resumed: int = 0
    tiles_run: int = 0
    tiles_skipped: int = 0


def infer_chunks(
    engine: EngineBase,
    source: Any,
    resolution: str,
    names: tuple[str, ...],
    write: Writer,
    *,
    chunk_size: int = CHUNK_SIZE,
    include: Include | None = None,
    statistics: dict | None = None,
    done: Collection[int] = (),
    on_chunk: Callable[[int, tuple[int, int, int, int]], None] | None = None,
    on_statistics: Callable[[dict], None] | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelCheck | Any | None = None,
) -> tuple[RegionRun, dict]:
    """Compute ``names`` of ``source`` chunk by chunk and hand each chunk's outputs to ``write``.

    Parameters
    ----------
    engine : EngineBase
        From :func:`napari_deepliif.engine.load_engine`.
    source : array-like, shape (H, W, 3), uint8
        The whole image scored (a level, or an in-memory image); only chunks are read.
    resolution : str
        Magnification told to the engine.
    names : tuple of str
        Outputs to compute (``engine.resolve_outputs``).
    write : callable(name, (y0, y1, x0, x1), array)
        Receives each chunk's H x W x 3 uint8 output.
    chunk_size : int
        Chunk edge in pixels (whole tiles for DeepLIIF).
    include : callable(y0, y1, x0, x1) -> bool, optional
        Parts to compute (e.g. tissue); the rest gets the empty-tile colours and is left out
        of the statistics.
    statistics : dict, optional
        The engine's whole-image statistics from an earlier run (a resumed one); computed
        here when None.
    done : collection of int
        Chunk indexes already written (skipped).
    on_chunk : callable(index, (y0, y1, x0, x1)), optional
        Called after a chunk is written (e.g. to record it for a resume).
    on_statistics : callable(dict), optional
        Called with the statistics when they were computed here, before any chunk runs.
    progress : callable(done, total), optional
        Tiles done and in all (chunks for an untiled engine), resumed ones included.
    cancel : Event or callable, optional
        Checked between chunks and batches.

    Returns
    -------
    (RegionRun, dict)
        What was done, and the statistics used.
    """
    chunks = engine.plan((int(source.shape[0]), int(source.shape[1])), resolution, chunk_size)
    run = RegionRun()
    if statistics is None and len(done) < len(chunks):
        statistics = engine.statistics(source, resolution, include=include, cancel=cancel)
        if on_statistics:
            on_statistics(statistics)
    statistics = statistics or {}
    worker = engine.with_statistics(statistics) if statistics else engine
    units = [progress_units(c) for c in chunks]
    total = sum(units)
    finished = sum(n for c, n in zip(chunks, units) if c.index in done)
    if progress:
        progress(finished, total)
    for chunk, n in zip(chunks, units):
        if chunk.index in done:
            run.chunks_resumed += 1
            continue
        check_cancel(cancel, f"cancelled after {run.chunks_run + run.chunks_resumed} of {len(chunks)} chunks")
        base = finished

        def report(k: int, _total: int, base: int = base) -> None:
            if progress:
                progress(min(base + k, total), total)

        buffers, ran, skipped = compute_chunk(worker, source, chunk, resolution, names, include=include,
                                              progress=report if progress else None, cancel=cancel)
        for name in names:
            write(name, chunk.box, buffers[name])
        if on_chunk:
            on_chunk(chunk.index, chunk.box)
        run.chunks_run += 1
        run.tiles_run += ran
        run.tiles_skipped += skipped
        finished += n
        if progress:
            progress(finished, total)
    return run, statistics


def progress_units(chunk: Chunk) -> int:
    """Progress units of ``chunk``: its tiles, or 1 for an untiled engine's chunk."""
    return max(len(chunk.tiles), 1)


def compute_chunk(
    engine: EngineBase,
    source: Any,
    chunk: Chunk,
    resolution: str,
    names: tuple[str, ...],
    *,
    include: Include | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelCheck | Any | None = None,
) -> tuple[dict[str, np.ndarray], int, int]:
    """One chunk of the plan computed into new buffers (what :func:`infer_chunks` does per chunk).

    Parameters
    ----------
    engine : EngineBase
        Already given the whole image's statistics (:meth:`EngineBase.with_statistics`).
    source : array-like, shape (H, W, 3), uint8
        The whole image the plan was made for.
    chunk : Chunk
        From :meth:`EngineBase.plan`.
    resolution, names, include, cancel
        As :func:`infer_chunks`.
    progress : callable(done, total), optional
        Tiles of this chunk done (not called for an untiled engine).

    Returns
    -------
    (dict, int, int)
        Output name -> chunk-sized H x W x 3 uint8 array; tiles computed and skipped.
    """
    y0, y1, x0, x1 = chunk.box
    buffers = {name: np.empty((y1 - y0, x1 - x0, 3), np.uint8) for name in names}
    ran, skipped = engine.infer_chunk(source, chunk, resolution, names, buffers, include=include,
                                      progress=progress if chunk.tiles else None, cancel=cancel)
    return buffers, ran, skipped
