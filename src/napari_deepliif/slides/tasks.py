"""The cluster tasks of a batch: a slide's start, its chunks and its finish, run on dask workers.

A slide is three kinds of task (driven by :mod:`napari_deepliif.slides.cluster`):

1. :func:`start_task` opens (or resumes) the slide's store, plans the chunks and computes the
   engine's whole-image statistics once (:func:`~napari_deepliif.slides.stream.ensure_statistics`).
2. :func:`chunk_task` computes one chunk of the plan (:func:`~napari_deepliif.regions.infer.compute_chunk`),
   a pure function of the slide, its level, the chunk, the engine and the statistics, and
   writes it to the store. Chunk boxes follow the engine's tile grid, not the store's storage
   chunks (files), so two chunks may share a file: a chunk writes while it holds the
   cluster-wide locks of the files it touches, taken in one order.
3. :func:`finish_task` is the reduce: pyramids, cells merged across chunk seams with the one
   merge rule over the finished store (:func:`~napari_deepliif.slides.run.finish_slide`), cell
   files and ``score.json``.

Each worker process loads the engine once and keeps it (:func:`worker_engine`), and keeps each
store's tissue mask. Start and finish never raise: a failure is a record with status
``failed`` and its reason.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from napari_deepliif.cells.postprocess import Settings
from napari_deepliif.engine.tiling import Chunk
from napari_deepliif.errors import DeepLIIFError
from napari_deepliif.regions.infer import compute_chunk, progress_units
from napari_deepliif.slides import omezarr
from napari_deepliif.slides.readers import LevelChoice, open_slide
from napari_deepliif.slides.run import STORE_NAME, finish_slide, finished, slide_request
from napari_deepliif.slides.stream import (
    SlideRun,
    ensure_statistics,
    finish_inference,
    open_store_run,
    slide_source,
    store_writer,
    stored_mask,
)
from napari_deepliif.slides.tissue import TissueMask

log = logging.getLogger(__name__)

#: Topic of the progress events workers send to the client.
PROGRESS_TOPIC = "napari-deepliif-progress"
#: Seconds between two progress events of one slide.
PROGRESS_INTERVAL = 1.0


@dataclass(frozen=True)
class BatchOptions:
    """How every slide of a batch is scored (engine settings and :func:`score_slide` options)."""

    engine: str = "auto"
    model: str | None = None
    device: str = "auto"
    precision: str = "fp32"
    batch_size: int | None = None
    #: engine parameters (``EngineBase.with_parameters``), e.g. the stain engine's ``dab_threshold``
    parameters: dict[str, Any] = field(default_factory=dict)
    resolution: str | None = None
    mpp: float | None = None
    region: tuple[int, int, int, int] | None = None
    outputs: str = "score"
    chunk_size: int = 2048
    tissue: bool = True
    settings: Settings = field(default_factory=Settings)
    annotations: str | None = None
    geojson: bool = True
    parquet: bool = False
    overwrite: bool = False
    #: a ``points`` model's confidence threshold and suppression distance (µm); None: its card's
    threshold: float | None = None
    min_distance_um: float | None = None


@dataclass(frozen=True)
class ChunkJob:
    """What every chunk task of one slide needs (sent with each task; small).

    Attributes
    ----------
    slide, out : str
        The slide file and its output directory, as the workers see them.
    options : BatchOptions
        The engine and the run's options.
    choice : LevelChoice
        The level scored, as the start task chose it.
    statistics : dict
        The engine's whole-image statistics.
    names : tuple of str
        Outputs computed.
    """

    slide: str
    out: str
    options: BatchOptions
    choice: LevelChoice
    statistics: dict
    names: tuple[str, ...]

    @property
    def store(self) -> Path:
        """The slide's OME-Zarr store."""
        return Path(self.out) / STORE_NAME


@dataclass
class SlideStart:
    """What :func:`start_task` hands the client: the chunks left and the counts so far.

    Attributes
    ----------
    job : ChunkJob
    run : SlideRun
        Shape, resolution and stored settings of the run (counts filled by the client).
    todo : list of Chunk
        The chunks not done yet, in plan order.
    units_total, units_done : int
        Tiles (chunks for an untiled engine) in the plan, and done by an earlier run.
    request : dict
        What ``score.json`` records as asked for.
    annotations : str or None
        The slide's annotation file.
    """

    job: ChunkJob
    run: SlideRun
    todo: list[Chunk]
    units_total: int
    units_done: int
    request: dict
    annotations: str | None


@dataclass
class ChunkDone:
    """What :func:`chunk_task` hands the client for the run record and the summary.

    Attributes
    ----------
    index : int
        The chunk's index in the plan.
    box : (y0, y1, x0, x1)
        Where it was written (level-0 pixels of the store).
    checksums : dict
        :func:`omezarr.chunk_checksums` of what was written.
    units, tiles_run, tiles_skipped : int
        Progress units of the chunk; tiles computed and skipped (no tissue).
    worker : str
        The worker that computed it.
    seconds : float
        Its time on that worker.
    """

    index: int
    box: tuple[int, int, int, int]
    checksums: dict[str, list[str]]
    units: int
    tiles_run: int
    tiles_skipped: int
    worker: str
    seconds: float


_ENGINES: dict[tuple, Any] = {}
_MASKS: dict[tuple[str, int], TissueMask | None] = {}


def worker_engine(options: BatchOptions) -> Any:
    """The engine for ``options``, loaded once per process and kept."""
    from napari_deepliif.engine.engines import load_engine

    key = (options.engine, options.model, options.device, options.precision, options.batch_size)
    if key not in _ENGINES:
        _ENGINES[key] = load_engine(options.engine, options.model, device=options.device,
                                    precision=options.precision, batch_size=options.batch_size)
    return _ENGINES[key].with_parameters(**options.parameters)


def _worker_mask(store: Path) -> TissueMask | None:
    """The store's tissue mask, read once per process (per store as written)."""
    try:
        written = (store / "tissue_mask" / ".zarray").stat().st_mtime_ns
    except FileNotFoundError:
        return None
    key = (str(store), written)
    if key not in _MASKS:
        _MASKS[key] = stored_mask(store)
    return _MASKS[key]


def worker_name() -> str:
    """The address of the dask worker running this (``host:pid`` outside a worker)."""
    from distributed import get_worker

    try:
        return get_worker().address
    except ValueError:  # not on a worker
        return f"{socket.gethostname()}:{os.getpid()}"


def publisher(slide: str) -> Callable[[str, int, int], None]:
    """Progress callback ``(stage, done, total)`` sending throttled events to the client
    (when run on a worker)."""
    try:
        from distributed import get_worker

        worker = get_worker()
    except ValueError:  # not on a worker
        worker = None
    last = [0.0]

    def publish(stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        if worker is None or (now - last[0] < PROGRESS_INTERVAL and done < total):
            return
        last[0] = now
        worker.log_event(PROGRESS_TOPIC, {"slide": slide, "stage": stage, "done": done, "total": total})

    return publish


def failure(exc: BaseException) -> dict:
    """The record of a slide that failed with ``exc``."""
    return {"run": {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}}


@contextmanager
def guarded(slide: Path, out: Path) -> Iterator[dict]:
    """Catch a slide's failure into the record yielded (a bad slide is reported once, in its
    row, and the batch goes on); an output folder made by the failed step and left empty is
    removed."""
    created = not out.exists()
    holder: dict = {}
    try:
        yield holder
    except DeepLIIFError as exc:  # a bad slide (unreadable...)
        holder["failed"] = failure(exc)
    except Exception as exc:  # an unexpected failure (a bug) must not stop the batch either; its traceback is logged
        log.exception("%s: unexpected error; please report it with this traceback", slide.name)
        holder["failed"] = failure(exc)
    if "failed" in holder and created and out.is_dir() and not any(out.iterdir()):
        out.rmdir()


def slide_annotations(options: BatchOptions, out: Path) -> str | None:
    """The slide's annotation file: ``<options.annotations>/<out's name>.geojson`` if there is one."""
    if not options.annotations:
        return None
    candidate = Path(options.annotations) / f"{out.name}.geojson"
    return str(candidate) if candidate.is_file() else None


def start_task(slide: str, out: str, options: BatchOptions) -> SlideStart | dict:
    """Open or resume a slide's store, plan it and take its statistics (a cluster task).

    Returns
    -------
    SlideStart or dict
        The slide's start; or a record: the slide's ``score.json`` when it is already scored
        with these options (``run.skipped``), or a failure (``run.status`` ``'failed'``).
    """
    slide_path, out_path = Path(slide), Path(out)
    if not slide_path.is_file():  # e.g. a remote worker that does not see the client's files
        error = (f"{slide_path} cannot be read on the worker at {socket.gethostname()}: a cluster's workers must see "
                 "the slides (and --out) at the same paths as this machine, e.g. on a shared file system")
        return {"run": {"status": "failed", "error": error}}
    annotations = slide_annotations(options, out_path)
    with guarded(slide_path, out_path) as outcome:
        engine = worker_engine(options)
        request = slide_request(engine, slide_path, resolution=options.resolution, mpp=options.mpp,
                                region=options.region, outputs=options.outputs, chunk_size=options.chunk_size,
                                tissue=options.tissue, settings=options.settings, annotations=annotations,
                                threshold=options.threshold, min_distance_um=options.min_distance_um)
        if not options.overwrite and (done := finished(out_path, request)) is not None:
            log.info("%s: already scored, skipped", slide_path.name)
            return {**done, "run": {**done["run"], "skipped": True}}
        out_path.mkdir(parents=True, exist_ok=True)
        with open_slide(slide_path, mpp=options.mpp) as opened_slide:
            opened = open_store_run(engine, opened_slide, out_path / STORE_NAME, resolution=options.resolution,
                                    outputs=options.outputs, region=options.region, chunk_size=options.chunk_size,
                                    tissue=options.tissue, overwrite=options.overwrite)
            statistics = ensure_statistics(engine, opened)
        todo = opened.todo()
        opened.run.chunks_resumed = len(opened.chunks) - len(todo)
        job = ChunkJob(str(slide_path), str(out_path), options, opened.choice, statistics, opened.names)
        units = [progress_units(c) for c in opened.chunks]
        return SlideStart(job, opened.run, todo, sum(units), sum(units) - sum(progress_units(c) for c in todo),
                          request, annotations)
    return outcome["failed"]


@contextmanager
def storage_locks(store: Path, box: tuple[int, int, int, int]) -> Iterator[None]:
    """Hold the cluster-wide locks of the storage chunks (files) ``box`` touches.

    A write into part of a file reads, changes and rewrites the whole file, so two chunks
    writing one file at once would lose one's pixels. Locks are taken in raster order of the
    files, so two chunks never wait on each other; a killed worker's locks are released by
    the scheduler when their lease runs out.
    """
    from distributed import Lock

    with ExitStack() as held:
        for row, column in omezarr.storage_keys(box):
            held.enter_context(Lock(f"napari-deepliif:{store}:{row}.{column}"))
        yield


def chunk_task(job: ChunkJob, chunk: Chunk) -> ChunkDone:
    """Compute one chunk of a slide and write it to its store (a cluster task).

    The result depends only on the slide, its level, the chunk, the engine and the
    statistics, so a chunk recomputed elsewhere (its worker died) writes the same pixels.
    """
    started = time.perf_counter()
    options = job.options
    engine = worker_engine(options)
    engine = engine.with_statistics(job.statistics) if job.statistics else engine
    mask = _worker_mask(job.store) if options.tissue else None
    with open_slide(job.slide, mpp=options.mpp) as slide:
        source, include = slide_source(slide, job.choice, options.region, mask, grey=not engine.brightfield)
        buffers, ran, skipped = compute_chunk(engine, source, chunk, job.choice.resolution, job.names,
                                              include=include)
    write = store_writer(job.store, job.names)
    with storage_locks(job.store, chunk.box):
        for name in job.names:
            write(name, chunk.box, buffers[name])
    return ChunkDone(chunk.index, chunk.box, omezarr.chunk_checksums(chunk.box, buffers), progress_units(chunk),
                     ran, skipped, worker_name(), time.perf_counter() - started)


def finish_task(start: SlideStart, run: SlideRun, seconds: float, workers: dict[str, dict]) -> dict:
    """The reduce of a slide whose chunks are all written (a cluster task): pyramids, cells,
    cell files and ``score.json``; returns its score record (or a failure record).

    Parameters
    ----------
    start : SlideStart
    run : SlideRun
        The run with its counts over all workers.
    seconds : float
        Time the slide took so far (start and chunks).
    workers : dict
        Worker -> ``{"chunks", "tiles", "seconds"}`` it spent on this slide.
    """
    job = start.job
    with guarded(Path(job.slide), Path(job.out)) as outcome:
        record = omezarr.RunRecord.load(job.store)
        if record is None:
            raise DeepLIIFError(f"{job.store / omezarr.RECORD} cannot be read on the worker at "
                                f"{socket.gethostname()}: the workers and this machine must share --out")
        finish_inference(run, record, job.names)
        options = job.options
        publish = publisher(Path(job.slide).name)
        return finish_slide(run, job.slide, Path(job.out), start.request, engine=worker_engine(options),
                            settings=options.settings, annotations=start.annotations,
                            geojson=options.geojson, parquet=options.parquet, seconds=seconds,
                            facts={"workers": workers}, progress=lambda done, total: publish("cells", done, total))
    return outcome["failed"]
