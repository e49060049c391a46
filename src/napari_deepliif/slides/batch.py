"""Score many slides on a dask.distributed cluster, each slide spread over every worker.

A private LocalCluster (processes, N workers, 1 thread each, TLS on loopback, no dashboard:
:func:`local_cluster`) is started unless a scheduler address is given. Each slide is planned
once, its chunks run as tasks on whichever workers are free, and its cells are merged in one
finish task (:mod:`napari_deepliif.slides.cluster`, :mod:`napari_deepliif.slides.tasks`); slides
run side by side. Each worker process loads the engine once and keeps it, and uses the device
it was started with (give each worker of a GPU cluster its own GPU, e.g. with
``CUDA_VISIBLE_DEVICES``). A slide is scored into ``OUT/<slide name>/``; a failure is reported
once, in its summary row, and the batch goes on; finished slides are skipped on a rerun and
interrupted ones resume. Results do not depend on the number of workers: every chunk is the
same pure function of the slide wherever it runs, and cells are merged by the one merge rule.
"""

from __future__ import annotations

import csv
import glob
import json
import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from napari_deepliif.atomic import write_atomic
from napari_deepliif.engine.cpu_memory import worker_environment
from napari_deepliif.errors import InputImageError
from napari_deepliif.slides.cluster import run_slides
from napari_deepliif.slides.readers import IMAGE_SUFFIXES, TIFF_SUFFIXES
from napari_deepliif.slides.tasks import PROGRESS_TOPIC, BatchOptions, guarded, slide_annotations, worker_engine

if TYPE_CHECKING:
    from distributed import LocalCluster

log = logging.getLogger(__name__)

#: Suffixes picked from a folder (OpenSlide formats included; they need the extra).
SLIDE_SUFFIXES = (*TIFF_SUFFIXES, *IMAGE_SUFFIXES, ".mrxs", ".scn", ".vms", ".vmu", ".bif", ".czi")
SUMMARY_NAME = "summary.csv"
SUMMARY_COLUMNS = ("slide", "status", "num_total", "num_pos", "num_neg", "percent_pos", "seg_thresh", "size_thresh",
                   "size_thresh_upper", "marker_thresh", "engine", "model", "resolution", "mpp", "tiles_run",
                   "tiles_skipped", "cells_regrown", "seconds", "workers", "skipped", "out", "error")


def expand_inputs(inputs: Iterable[str | Path]) -> list[Path]:
    """Slides named by ``inputs``: files, folders (their slide files, sorted) and glob patterns.

    Raises
    ------
    InputImageError
        For an input that names nothing, or when no slide is found.
    """
    inputs = list(inputs)
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
        raise InputImageError(f"no slides found in {', '.join(str(i) for i in inputs)}: a folder's files are read "
                              f"when their names end in {', '.join(SLIDE_SUFFIXES)}")
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


def summary_row(slide: Path, out: Path, record: dict) -> dict:
    """A summary CSV row from a slide's score record (or a failure's ``{"run": {...}}``)."""
    run, provenance, placement = (record.get(k, {}) for k in ("run", "provenance", "placement"))
    return {**dict.fromkeys(SUMMARY_COLUMNS), "slide": slide.name, "status": run.get("status"),
            **record.get("scoring", {}),
            "engine": provenance.get("engine"), "model": provenance.get("model"),
            "resolution": placement.get("resolution"), "mpp": placement.get("mpp"),
            **{k: run.get(k) for k in ("tiles_run", "tiles_skipped", "cells_regrown", "seconds", "error")},
            "workers": json.dumps(run["workers"]) if run.get("workers") else None,
            "skipped": bool(run.get("skipped")), "out": str(out)}


def score_one(slide: str | Path, out: str | Path, options: BatchOptions = BatchOptions()) -> dict:
    """Score one slide in this process with a batch's options (no cluster): its summary row.

    The slide is scored by :func:`~napari_deepliif.slides.run.score_slide`, whose chunks and
    cells a batch's tasks compute the same way; a failure is a row with status ``failed``, as
    in a batch.
    """
    from napari_deepliif.slides.run import score_slide

    slide_path, out_path = Path(slide), Path(out)
    with guarded(slide_path, out_path) as outcome:
        record = score_slide(worker_engine(options), slide_path, out_path, resolution=options.resolution,
                             mpp=options.mpp, region=options.region, outputs=options.outputs,
                             chunk_size=options.chunk_size, tissue=options.tissue, settings=options.settings,
                             annotations=slide_annotations(options, out_path), geojson=options.geojson,
                             parquet=options.parquet, overwrite=options.overwrite, threshold=options.threshold,
                             min_distance_um=options.min_distance_um)
        return summary_row(slide_path, out_path, record)
    return summary_row(slide_path, out_path, outcome["failed"])


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
        Progress events ``{"slide", "stage", "done", "total"}``: stage ``'inference'`` (with
        ``tiles_done`` and ``tiles_total`` over every slide and worker, see
        :func:`~napari_deepliif.slides.cluster.run_slides`) and ``'cells'`` from the finish task.
    on_result : callable(done, total, row), optional
        Called as each slide finishes.
    """
    from distributed import Client

    slides = expand_inputs(inputs)
    out = Path(out).absolute()  # the workers open it, perhaps on another machine, from another folder
    out.mkdir(parents=True, exist_ok=True)
    dirs = [out / name for name in output_names(slides)]
    cluster = None if scheduler else local_cluster(workers)
    rows: list[dict | None] = [None] * len(slides)

    def finished(i: int, record: dict) -> None:
        rows[i] = summary_row(slides[i], dirs[i], record)
        if on_result:
            on_result(sum(r is not None for r in rows), len(slides), rows[i])
        write_summary(out / SUMMARY_NAME, [r for r in rows if r is not None])

    try:
        with Client(scheduler or cluster) as client:
            if on_progress:
                client.subscribe_topic(PROGRESS_TOPIC, lambda event: on_progress(event[1]))
            run_slides(client, slides, dirs, options, on_progress=on_progress, on_record=finished)
    finally:
        if cluster is not None:
            cluster.close()
    log.info("batch: %d slides, options %s", len(slides), asdict(options))
    return [r for r in rows if r is not None]
