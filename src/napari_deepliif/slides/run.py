"""Score one whole slide end to end: stream inference, merge cells, write every output.

``OUT/`` (one directory per slide) receives::

    result.ome.zarr    outputs, cell labels and tissue mask (see slides.omezarr)
    cells.csv          one row per cell (level-0 centroids), cells.parquet with pyarrow
    cells.geojson      QuPath detections (cell outlines, level-0 pixels)
    score.json         slide score, per-annotation scores, settings and provenance

A ``points`` model writes ``points.csv`` and ``points.geojson`` (:mod:`napari_deepliif.io.point_exports`)
instead of the cell files, its points found over the store's heat maps
(:func:`napari_deepliif.slides.points.slide_points`).

Rerunning resumes inference where it stopped; a slide whose ``score.json`` matches the
settings is not touched.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from napari_deepliif.atomic import write_bytes
from napari_deepliif.cells.postprocess import Settings
from napari_deepliif.constants import MICRONS_PER_PIXEL_BY_RESOLUTION
from napari_deepliif.engine.engines import EngineBase
from napari_deepliif.engine.points import PointsEngine
from napari_deepliif.errors import DeepLIIFError
from napari_deepliif.io.checksums import sha256_file
from napari_deepliif.io.jsonable import json_bytes
from napari_deepliif.io.placement import Placement
from napari_deepliif.io.point_exports import POINTS_CSV, POINTS_GEOJSON, point_files
from napari_deepliif.io.score_format import FORMAT_VERSION, placement, score_record
from napari_deepliif.regions.infer import CHUNK_SIZE
from napari_deepliif.regions.points import points_scoring, selection
from napari_deepliif.slides import omezarr
from napari_deepliif.slides.cells import (
    CELL_CHUNK,
    default_margin,
    find_slide_cells,
    store_arrays,
)
from napari_deepliif.slides.export import (
    read_annotations,
    score_annotations,
    write_cells_csv,
    write_cells_parquet,
    write_labels_and_outlines,
)
from napari_deepliif.slides.measurements import Measuring
from napari_deepliif.slides.points import annotation_points, slide_points
from napari_deepliif.slides.readers import LevelChoice, open_slide
from napari_deepliif.slides.stream import SlideRun, infer_slide, slide_source

log = logging.getLogger(__name__)

STORE_NAME = "result.ome.zarr"
SCORE_NAME = "score.json"
#: Cell (or point) files whose checksum score.json keeps (a rerun finds them again if one changed).
CELL_FILES = ("cells.csv", "cells.geojson", "cells.parquet", POINTS_CSV, POINTS_GEOJSON)


def finished(out: Path, request: dict) -> dict | None:
    """The score record in ``out`` if it was made with ``request`` and what it describes is
    intact, else None: then the slide is scored again (resuming what is intact), with a
    warning naming what is not. Checked: ``score.json`` reads, each cell file has the
    checksum recorded when it was written, and each chunk of the store holds what was
    written (:meth:`omezarr.RunRecord.verify`)."""
    path = Path(out) / SCORE_NAME
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        log.warning("%s cannot be read (%s): the slide is scored again", path, exc)
        return None
    if not isinstance(record, dict) or record.get("format_version") != FORMAT_VERSION:
        return None
    if record.get("run", {}).get("request") != request:
        return None
    for name, expected in record["run"].get("files", {}).items():
        file = Path(out) / name
        if not file.is_file() or sha256_file(file) != expected:
            log.warning("%s is missing or not what was written: the slide's cells are found again", file)
            return None
    store = omezarr.RunRecord.load(Path(out) / STORE_NAME)
    if store is None or store.verify():
        log.warning("%s is damaged: the slide is scored again, its intact chunks kept", Path(out) / STORE_NAME)
        return None
    return record


def check_slide_engine(engine: EngineBase, settings: Settings) -> None:
    """Raise :class:`DeepLIIFError` for what ``batch`` does not score: a compartment mode with
    a ``points`` model (its points have no compartments) or with an engine of fluorescence
    images (stain measurements are brightfield optical densities)."""
    if settings.compartment != "class" and isinstance(engine, PointsEngine):
        raise DeepLIIFError(f"a '{engine.name}' model finds points, which have no compartments to measure: "
                            "leave out --compartment")
    if settings.compartment != "class" and not engine.brightfield:
        raise DeepLIIFError(f"the '{engine.name}' engine reads fluorescence images, and compartment scoring "
                            "measures brightfield (IHC) stain: score on the engine's class (--compartment class)")


def slide_request(engine: EngineBase, path: str | Path, *, resolution: str | None, mpp: float | None,
                  region: tuple[int, int, int, int] | None, outputs: str, chunk_size: int, tissue: bool,
                  settings: Settings, annotations: str | Path | None, threshold: float | None = None,
                  min_distance_um: float | None = None) -> dict:
    """What a slide's ``score.json`` records as asked for: a rerun with the same request and
    intact files is skipped (:func:`finished`). ``threshold`` and ``min_distance_um`` are a
    ``points`` model's selection (None: its card's); its request records them.

    Raises
    ------
    DeepLIIFError
        For an engine or settings a slide is not scored with (before any work is done).
    """
    check_slide_engine(engine, settings)
    if isinstance(engine, PointsEngine):
        thresholds = {"confidence": threshold, "min_distance_um": min_distance_um}
    else:
        thresholds = {"seg_thresh": settings.seg_thresh, "size_thresh": settings.size_thresh,
                      "size_thresh_upper": settings.size_thresh_upper, "marker_thresh": settings.marker_thresh,
                      **settings.compartment_scoring()}
    return {"slide": str(Path(path).resolve()), "resolution": resolution, "mpp": mpp,
            "region": list(region) if region else None, "outputs": outputs, "chunk_size": chunk_size,
            "tissue": tissue, "annotations": str(annotations) if annotations else None,
            "engine": engine.name, "model_hash": engine.model_hash, "parameters": engine.parameters, **thresholds}


def finish_slide(
    run: SlideRun,
    path: str | Path,
    out: Path,
    request: dict,
    *,
    engine: EngineBase,
    settings: Settings,
    annotations: str | Path | None = None,
    geojson: bool = True,
    parquet: bool = False,
    seconds: float = 0.0,
    facts: dict | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """The reduce of a slide whose inference is done: its cells merged over the whole store
    with the one merge rule (:func:`find_slide_cells`), the cell files and ``score.json``.

    Parameters
    ----------
    run : SlideRun
        The inference (:func:`infer_slide`, or its chunks on a cluster).
    path : str or Path
        The slide, as named by the user.
    out : Path
        The slide's output directory (holds the store).
    request : dict
        From :func:`slide_request`.
    engine : EngineBase
        The run's engine (its stain vectors measure the cells in a compartment mode).
    settings, annotations, geojson, parquet
        As :func:`score_slide`.
    seconds : float
        Time spent on the slide before this step (added to this step's).
    facts : dict, optional
        More run facts for ``score.json`` (e.g. per-worker tiles and seconds).
    progress : callable(done, total), optional
        Cell windows done and in all.

    Returns
    -------
    dict
        The score record written.
    """
    import zarr

    if isinstance(engine, PointsEngine):
        return finish_points(run, path, out, request, engine=engine, annotations=annotations, seconds=seconds,
                             facts=facts, progress=progress)
    started = time.perf_counter()
    store = out / STORE_NAME
    root = zarr.open_group(str(store), mode="r+")
    seg, marker = store_arrays(root, engine)
    margin = default_margin(run.resolution)
    stored = run.settings
    statistics = omezarr.RunRecord.load(store).settings.get("statistics")
    with open_slide(path, mpp=request["mpp"]) as slide:
        measuring = None
        if settings.compartment != "class" and engine.brightfield:
            # the pixels the engine read: the level (or region) of the run, with its stain vectors
            choice = LevelChoice(stored["level"], stored["factor"], stored["downsample"], stored["mpp"],
                                 stored["resolution"])
            image, _ = slide_source(slide, choice, stored["region"], None)
            measuring = Measuring(image, stored["mpp"] or MICRONS_PER_PIXEL_BY_RESOLUTION[run.resolution],
                                  settings.expansion_um, settings.membrane_um, settings.positive_od,
                                  engine.unmixing(statistics or {}))
        cells = find_slide_cells(seg, marker, settings=replace(settings, resolution=run.resolution), margin=margin,
                                 measuring=measuring, progress=progress)
    place = Placement.from_settings(run.settings)
    write_labels_and_outlines(root, cells, out / "cells.geojson" if geojson else None, core=CELL_CHUNK,
                              margin=margin, engine=engine)
    write_cells_csv(out / "cells.csv", cells, place)
    if parquet:
        write_cells_parquet(out / "cells.parquet", cells, place)
    regions = (score_annotations(cells, read_annotations(Path(annotations)), place, stored["mpp"], marker)
               if annotations else {})
    run_facts = {"cells_regrown": cells.regrown, **(facts or {})}
    return _write_score(run, path, out, request, cells.scoring, regions, run_facts, seconds + time.perf_counter() - started)


def finish_points(
    run: SlideRun,
    path: str | Path,
    out: Path,
    request: dict,
    *,
    engine: PointsEngine,
    annotations: str | Path | None = None,
    seconds: float = 0.0,
    facts: dict | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """The reduce of a ``points`` model's slide (parameters as :func:`finish_slide`): its points
    over the store's heat maps at the request's selection (:func:`~napari_deepliif.slides.points.slide_points`),
    ``points.csv``, ``points.geojson`` and ``score.json``."""
    started = time.perf_counter()
    stored = run.settings
    pixel, threshold, distance = selection(engine, run.resolution, stored["mpp"], request["confidence"],
                                           request["min_distance_um"])
    found = slide_points(out / STORE_NAME, engine, mpp=pixel, threshold=threshold, min_distance=distance,
                         progress=progress)
    place = Placement.from_settings(stored)
    for name, data in point_files(found, placement=place).items():
        write_bytes(out / name, data)
    regions = (annotation_points(found, read_annotations(Path(annotations)), place, stored["mpp"])
               if annotations else {})
    scoring = points_scoring(found, pixel)
    run_facts = {"threshold": scoring["threshold"], "min_distance_um": scoring["min_distance_um"], **(facts or {})}
    return _write_score(run, path, out, request, scoring, regions, run_facts, seconds + time.perf_counter() - started)


def _write_score(run: SlideRun, path: str | Path, out: Path, request: dict, scoring: dict, regions: dict,
                 facts: dict, seconds: float) -> dict:
    """Write the slide's ``score.json`` (its files written already: their checksums go in it)."""
    stored = run.settings
    place = Placement.from_settings(stored)
    region = request["region"]
    region_full = (None if region is None
                   else (*place.corner, region[2] * place.downsample, region[3] * place.downsample))
    where = placement(image=Path(path).name, resolution=run.resolution, shape=run.shape,
                      level=stored["level"], downsample=place.downsample, mpp=stored["mpp"], origin=place.corner,
                      region=region_full)
    provenance = {**{k: stored[k] for k in ("engine", "model", "model_hash", "version", "parameters")},
                  "statistics": omezarr.RunRecord.load(out / STORE_NAME).settings.get("statistics")}
    run_facts = {"status": "done", "seconds": round(seconds, 2), "tiles_run": run.tiles_run,
                 "tiles_skipped": run.tiles_skipped, "chunks_resumed": run.chunks_resumed, **facts, "request": request,
                 "files": {name: sha256_file(out / name) for name in CELL_FILES if (out / name).is_file()}}
    record = score_record(scoring, placement=where, provenance=provenance, regions=regions, run=run_facts)
    write_bytes(out / SCORE_NAME, json_bytes(record))
    return record


def score_slide(
    engine: EngineBase,
    path: str | Path,
    out: str | Path,
    *,
    resolution: str | None = None,
    mpp: float | None = None,
    region: tuple[int, int, int, int] | None = None,
    outputs: str = "score",
    chunk_size: int = CHUNK_SIZE,
    tissue: bool = True,
    settings: Settings | None = None,
    annotations: str | Path | None = None,
    geojson: bool = True,
    parquet: bool = False,
    overwrite: bool = False,
    threshold: float | None = None,
    min_distance_um: float | None = None,
    progress: Any = None,
    cancel: Any = None,
) -> dict:
    """Score the slide at ``path`` into directory ``out``; returns the score record.

    Parameters
    ----------
    engine : Engine or StainEngine
    path : str or Path
        The slide (see :func:`open_slide`).
    out : str or Path
        Output directory for this slide (created).
    resolution, mpp
        Magnification to score at; pixel size of level 0 (µm/px) when the file lacks it.
    region : (x, y, width, height), optional
        Rectangle in pixels of the chosen level.
    outputs : 'score' or 'all'
        Store only Marker and Seg, or every modality too.
    chunk_size, tissue
        As :func:`infer_slide`.
    settings : Settings, optional
        Thresholds (its resolution is the one scored); default the package's.
    annotations : path, optional
        GeoJSON polygons (level-0 pixels, e.g. QuPath's export) to score separately.
    geojson, parquet : bool
        Also write ``cells.geojson`` / ``cells.parquet`` (Parquet needs pyarrow).
    overwrite : bool
        Redo everything.
    threshold, min_distance_um : float, optional
        A ``points`` model's confidence threshold and suppression distance (µm); default its
        card's. Such a model writes points (see module docstring), and ignores ``settings``.
    progress : callable(stage, done, total), optional
        Stage ``'inference'`` (tiles) or ``'cells'`` (windows).
    cancel : callable or threading.Event, optional

    Raises
    ------
    DeepLIIFError
        For a compartment mode with a ``points`` model or a fluorescence engine
        (:func:`check_slide_engine`).
    """
    settings = settings or Settings()
    request = slide_request(engine, path, resolution=resolution, mpp=mpp, region=region, outputs=outputs,
                            chunk_size=chunk_size, tissue=tissue, settings=settings, annotations=annotations,
                            threshold=threshold, min_distance_um=min_distance_um)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if not overwrite and (done := finished(out, request)) is not None:
        log.info("%s: already scored, skipped", Path(path).name)
        return {**done, "run": {**done["run"], "skipped": True}}
    started = time.perf_counter()

    def stage(name: str):
        return (lambda done, total: progress(name, done, total)) if progress else None

    with open_slide(path, mpp=mpp) as slide:
        run = infer_slide(engine, slide, out / STORE_NAME, resolution=resolution, outputs=outputs, region=region,
                          chunk_size=chunk_size, tissue=tissue, overwrite=overwrite,
                          progress=stage("inference"), cancel=cancel)
    return finish_slide(run, path, out, request, engine=engine, settings=settings, annotations=annotations,
                        geojson=geojson, parquet=parquet, seconds=time.perf_counter() - started,
                        progress=stage("cells"))
