"""Score many slides on a dask.distributed cluster: one slide per task, one engine per worker.

A private LocalCluster (processes, N workers, 1 thread each, TLS on loopback, no dashboard:
:func:`local_cluster`) is started unless a scheduler address is given. Each worker process
loads the engine once (cached in a worker-global) and uses the device it was started with
(give each worker of a GPU cluster its own GPU, e.g. with ``CUDA_VISIBLE_DEVICES``). A slide
is scored by :func:`slides.run.score_slide` into ``OUT/<slide name>/``; a failure is reported
once, in its summary row, and the batch goes on; finished slides are skipped on a rerun and
interrupted ones resume. Results do not depend on the number of workers: each slide is
scored whole by one worker, the same way.
"""

from __future__ import annotations

import csv
import glob
import logging
import os
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from napari_deepliif.atomic import write_atomic
from napari_deepliif.cells.postprocess import Settings
from napari_deepliif.engine.cpu_memory import worker_environment
from napari_deepliif.errors import DeepLIIFError, InputImageError
from napari_deepliif.slides.readers import IMAGE_SUFFIXES, TIFF_SUFFIXES

if TYPE_CHECKING:
    from distributed import LocalCluster

log = logging.getLogger(__name__)

#: Suffixes picked from a folder (OpenSlide formats included; they need the extra).
SLIDE_SUFFIXES = (*TIFF_SUFFIXES, *IMAGE_SUFFIXES, ".mrxs", ".scn", ".vms", ".vmu", ".bif", ".czi")
#: Topic of the progress events workers send to the client.
PROGRESS_TOPIC = "napari-deepliif-progress"
#: Seconds between two progress events of one slide.
PROGRESS_INTERVAL = 1.0
SUMMARY_NAME = "summary.csv"
SUMMARY_COLUMNS = ("slide", "status", "num_total", "num_pos", "num_neg", "percent_pos", "seg_thresh", "size_thresh",
                   "size_thresh_upper", "marker_thresh", "engine", "model", "resolution", "mpp", "tiles_run",
                   "tiles_skipped", "cells_regrown", "seconds", "skipped", "out", "error")


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


def expand_inputs(inputs: Iterable[str | Path]) -> list[Path]:
    """Slides named by ``inputs``: files, folders (their slide files, sorted) and glob patterns.

    Raises
    ------
    InputImageError
        For an input that names nothing, or when no slide is found.
    """
    found: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found += sorted(p for p in path.iterdir() if p.is_file() and p.name.lower().endswith(SLIDE_SUFFIXES))
        elif path.is_file():
            found.append(path)
        elif matches := sorted(glob.glob(str(item))):
            found += [Path(m) for m in matches if Path(m).is_file()]
        else:
            raise InputImageError(f"{item}: no such file, folder or matching files")
    slides = list(dict.fromkeys(p.absolute() for p in found))  # links keep their own names
    if not slides:
        raise InputImageError("no slides found in the inputs given")
    return slides


def output_names(slides: list[Path]) -> list[str]:
    """A directory name per slide: its name without suffixes, numbered where two collide."""
    stems = [p.name.split(".")[0] or p.name for p in slides]
    seen: dict[str, int] = {}
    names = []
    for stem in stems:
        seen[stem] = seen.get(stem, 0) + 1
        names.append(stem if stems.count(stem) == 1 else f"{stem}-{seen[stem]}")
    return names


_ENGINES: dict[tuple, Any] = {}


def worker_engine(options: BatchOptions) -> Any:
    """The engine for ``options``, loaded once per process and kept."""
    from napari_deepliif.engine.engines import load_engine

    key = (options.engine, options.model, options.device, options.precision, options.batch_size)
    if key not in _ENGINES:
        _ENGINES[key] = load_engine(options.engine, options.model, device=options.device,
                                    precision=options.precision, batch_size=options.batch_size)
    return _ENGINES[key].with_parameters(**options.parameters)


def _publisher(slide: str) -> Callable[[str, int, int], None]:
    """Progress callback sending throttled events to the client (when run on a worker)."""
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


def summary_row(slide: Path, out: Path, record: dict) -> dict:
    """A summary CSV row from a slide's score record (or a failure's ``{"run": {...}}``)."""
    run, provenance, placement = (record.get(k, {}) for k in ("run", "provenance", "placement"))
    return {**dict.fromkeys(SUMMARY_COLUMNS), "slide": slide.name, "status": run.get("status"),
            **record.get("scoring", {}),
            "engine": provenance.get("engine"), "model": provenance.get("model"),
            "resolution": placement.get("resolution"), "mpp": placement.get("mpp"),
            **{k: run.get(k) for k in ("tiles_run", "tiles_skipped", "cells_regrown", "seconds", "error")},
            "skipped": bool(run.get("skipped")), "out": str(out)}


def score_one(slide: str, out: str, options: BatchOptions) -> dict:
    """Score one slide (a cluster task); never raises: a failure is a row with status 'failed'."""
    from napari_deepliif.slides.run import score_slide

    slide_path, out_path = Path(slide), Path(out)
    if not slide_path.is_file():  # e.g. a remote worker that does not see the client's files
        error = (f"{slide_path} cannot be read on the worker at {socket.gethostname()}: a cluster's workers must see "
                 "the slides (and --out) at the same paths as this machine, e.g. on a shared file system")
        return summary_row(slide_path, out_path, {"run": {"status": "failed", "error": error}})
    created = not out_path.exists()
    annotations = None
    if options.annotations:
        candidate = Path(options.annotations) / f"{out_path.name}.geojson"
        annotations = candidate if candidate.is_file() else None
    try:
        record = score_slide(worker_engine(options), slide_path, out_path, resolution=options.resolution,
                             mpp=options.mpp, region=options.region, outputs=options.outputs, chunk_size=options.chunk_size,
                             tissue=options.tissue, annotations=annotations, geojson=options.geojson,
                             parquet=options.parquet, overwrite=options.overwrite,
                             progress=_publisher(slide_path.name), settings=options.settings)
    except DeepLIIFError as exc:  # a bad slide (unreadable...): reported once, in its row; the batch goes on
        record = {"run": {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}}
    except Exception as exc:  # an unexpected failure (a bug) must not stop the batch either; its traceback is logged
        log.exception("%s: unexpected error; please report it with this traceback", slide_path.name)
        record = {"run": {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}}
    if record["run"]["status"] == "failed" and created and out_path.is_dir() and not any(out_path.iterdir()):
        out_path.rmdir()  # made by this run and left empty: a failed slide leaves no folder behind
    return summary_row(slide_path, out_path, record)


def write_summary(path: Path, rows: list[dict]) -> Path:
    """The summary table (one row per slide, :data:`SUMMARY_COLUMNS`), written atomically."""
    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="") as handle:
            writer = csv.DictWriter(handle, SUMMARY_COLUMNS, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)

    write_atomic(path, write)
    return path


def local_cluster(workers: int) -> LocalCluster:
    """The private cluster a batch starts on this machine when no scheduler is given.

    ``workers`` processes of one thread each, every one given its share of the cores for
    torch/OpenMP. The scheduler, nannies and workers listen on 127.0.0.1 over TLS with
    credentials made for this cluster only (:meth:`distributed.security.Security.temporary`,
    kept in memory): a connection without its client certificate is refused, so another
    process or user of this machine cannot submit code to the workers. No dashboard is
    started, and the HTTP servers distributed always opens (random loopback ports) serve
    no pages.

    Parameters
    ----------
    workers : int
        Worker processes.

    Returns
    -------
    LocalCluster
        Started; ``Client(cluster)`` connects with its credentials. Close it when done.
    """
    import dask
    from distributed import LocalCluster
    from distributed.security import Security

    # each worker's torch/OpenMP gets its share of the cores, so N workers do not oversubscribe them
    threads = str(max(1, (os.cpu_count() or 1) // max(1, workers)))
    # dashboard_address=None alone still serves the scheduler's HTTP routes (metrics, call stacks)
    # on :8787; an empty route list and a random loopback port leave nothing to see
    with dask.config.set({"distributed.scheduler.http.routes": [], "distributed.worker.http.routes": []}):
        return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                            protocol="tls://", security=Security.temporary(), dashboard_address=None,
                            scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                            env={"OMP_NUM_THREADS": threads, **worker_environment()})


def run_batch(
    inputs: Iterable[str | Path],
    out: str | Path,
    options: BatchOptions = BatchOptions(),
    *,
    workers: int = 1,
    scheduler: str | None = None,
    on_progress: Callable[[dict], None] | None = None,
    on_result: Callable[[int, int, dict], None] | None = None,
) -> list[dict]:
    """Score every slide of ``inputs`` into ``out``; returns the summary rows (input order)
    and writes ``out/summary.csv``.

    Parameters
    ----------
    inputs : paths, folders or glob patterns
    out : str or Path
        Output directory: ``out/<slide name>/`` per slide and ``out/summary.csv``.
    options : BatchOptions
    workers : int
        Worker processes of the cluster started when no ``scheduler`` is given (:func:`local_cluster`).
    scheduler : str, optional
        Address of a running dask scheduler (``tcp://host:8786``) to use instead; its workers
        must read the slides and ``out`` at the same paths (see docs/whole-slides.md).
    on_progress : callable(event), optional
        Per-slide progress events ``{"slide", "stage", "done", "total"}`` from the workers.
    on_result : callable(done, total, row), optional
        Called as each slide finishes.
    """
    from distributed import Client, as_completed

    slides = expand_inputs(inputs)
    out = Path(out).absolute()  # the workers open it, perhaps on another machine, from another folder
    out.mkdir(parents=True, exist_ok=True)
    dirs = [out / name for name in output_names(slides)]
    cluster = None if scheduler else local_cluster(workers)
    rows: list[dict | None] = [None] * len(slides)
    try:
        with Client(scheduler or cluster) as client:
            if on_progress:
                client.subscribe_topic(PROGRESS_TOPIC, lambda event: on_progress(event[1]))
            futures = {client.submit(score_one, str(s), str(d), options, pure=False, key=f"slide-{i}-{d.name}"): i
                       for i, (s, d) in enumerate(zip(slides, dirs))}
            for done, future in enumerate(as_completed(futures), 1):
                i = futures[future]
                rows[i] = future.result()
                if on_result:
                    on_result(done, len(slides), rows[i])
                write_summary(out / SUMMARY_NAME, [r for r in rows if r is not None])
    finally:
        if cluster is not None:
            cluster.close()
    log.info("batch: %d slides, options %s", len(slides), asdict(options))
    return [r for r in rows if r is not None]
