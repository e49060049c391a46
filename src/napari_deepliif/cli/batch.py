"""``napari-deepliif batch``: score whole slides on a local or remote dask cluster.

A thin shell over :func:`napari_deepliif.slides.batch.run_batch`: progress (tiles done over tiles
planned, all workers) and one line per finished slide on stderr/stdout, the summary table in ``OUT/summary.csv``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from napari_deepliif.cli.options import (
    EXIT_ERROR,
    add_compartment_options,
    add_dab_threshold_option,
    add_engine_options,
    add_output_option,
    add_point_options,
    add_threshold_options,
    engine_parameters,
    thresholds,
)
from napari_deepliif.engine.engines import ENGINES
from napari_deepliif.regions.infer import CHUNK_SIZE

DESCRIPTION = (
    "Score whole slides (SVS, NDPI, OME-TIFF, tiled TIFF; other vendor formats with the openslide extra; "
    "PNG/JPEG) on a dask cluster, each slide's chunks spread over every worker. Writes OUT/<slide>/ (result.ome.zarr, cells.csv, cells.geojson, "
    "score.json; a points model: points.csv and points.geojson instead of the cell files) and OUT/summary.csv. Rerunning skips finished slides and resumes interrupted ones."
)


def add_parser(subparsers: Any) -> None:
    """Register the ``batch`` sub-command."""
    p = subparsers.add_parser("batch", help="score many whole slides on a dask cluster", description=DESCRIPTION)
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="slide files, folders of slides or glob patterns")
    add_output_option(p)
    where = p.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, default=1, metavar="N", help="worker processes of the local cluster, 1 thread each (default: %(default)s)")
    where.add_argument("--scheduler", metavar="ADDRESS", help="address of a running dask scheduler (tcp://host:8786) instead of a local cluster; its workers must read the slides and --out at the same paths as this machine")
    p.add_argument("--engine", choices=ENGINES, default="auto", help="auto: DeepLIIF if --model is given or deepliif-latest is installed, else the classical stain engine")
    p.add_argument("--outputs", choices=("score", "all"), default="score", help="store only Marker and Seg, or every modality (default: %(default)s)")
    p.add_argument("--chunk-size", type=int, default=CHUNK_SIZE, metavar="PX", help="chunk edge in pixels; memory grows with its square (default: %(default)s)")
    p.add_argument("--no-tissue-mask", dest="tissue", action="store_false", help="run every tile, glass included")
    p.add_argument("--annotations", metavar="DIR", help="folder of <slide>.geojson annotation polygons (level-0 pixels, e.g. from QuPath) to score separately")
    p.add_argument("--parquet", action="store_true", help="also write cells.parquet (needs pyarrow)")
    p.add_argument("--no-geojson", dest="geojson", action="store_false", help="skip cells.geojson (cell outlines)")
    p.add_argument("--overwrite", action="store_true", help="redo slides already scored")
    add_engine_options(p, model_default=None)
    add_dab_threshold_option(p)
    add_threshold_options(p)
    add_compartment_options(p)
    add_point_options(p)
    p.set_defaults(func=cmd_batch)


def _show_progress(event: dict) -> None:
    where = f"{event['slide']}: {event['stage']} {event['done']}/{event['total']}"
    if "tiles_total" in event:
        where = f"tiles {event['tiles_done']}/{event['tiles_total']} over all workers ({where})"
    print(f"  {where}", file=sys.stderr)


def _show_result(done: int, total: int, row: dict) -> None:
    if row["status"] == "done":
        what = (f"{row['num_total']} {'points' if row['engine'] == 'points' else 'cells'}, {row['num_pos']} positive ({row['percent_pos']}%)"
                + (" [already scored]" if row["skipped"] else f" in {row['seconds']} s"))
    else:
        what = f"FAILED: {row['error']}"
    print(f"[{done}/{total}] {row['slide']}: {what}", flush=True)


def cmd_batch(args: argparse.Namespace) -> int:
    """Run the batch; exit status 1 if any slide failed."""
    from pathlib import Path

    from napari_deepliif.cells.postprocess import Settings
    from napari_deepliif.slides.batch import SUMMARY_NAME, run_batch
    from napari_deepliif.slides.tasks import BatchOptions

    options = BatchOptions(engine=args.engine, model=args.model, device=args.device, precision=args.precision,
                           batch_size=args.batch_size, parameters=engine_parameters(args), resolution=args.resolution, mpp=args.mpp,
                           outputs=args.outputs, chunk_size=args.chunk_size, tissue=args.tissue,
                           settings=Settings(**thresholds(args)), annotations=args.annotations, geojson=args.geojson,
                           parquet=args.parquet, overwrite=args.overwrite, threshold=args.confidence,
                           min_distance_um=args.min_distance_um)
    # distributed logs its start and stop at INFO (some 25 lines): shown with -v only. Its import
    # sets its logger's level, so it is imported first
    import distributed  # noqa: F401

    quiet = logging.getLogger("distributed")
    level = quiet.level
    if not args.verbose:
        quiet.setLevel(logging.WARNING)
    try:
        rows = run_batch(args.inputs, args.out, options, workers=args.workers, scheduler=args.scheduler,
                         on_progress=_show_progress, on_result=_show_result)
    finally:
        quiet.setLevel(level)
    failed = [r for r in rows if r["status"] != "done"]
    print(f"{len(rows) - len(failed)} of {len(rows)} slides scored; summary in {Path(args.out) / SUMMARY_NAME}")
    return EXIT_ERROR if failed else 0
