"""Slide-level outputs: the label pyramid, cells as GeoJSON/CSV/Parquet, per-annotation scores.

Coordinates written to files are full-resolution (level-0) pixels
(:class:`~napari_deepliif.io.placement.Placement`). Annotation polygons (QuPath: level-0 edge
coordinates) are mapped back the same way before cells are tested by centroid.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from napari_deepliif.atomic import write_atomic
from napari_deepliif.cells.classmap import class_counts, class_densities
from napari_deepliif.cells.find import touches_window_edge
from napari_deepliif.cells.outlines import cell_outlines
from napari_deepliif.cells.scoring import (
    counts,
    density,
    in_polygons,
    intensity_classes,
)
from napari_deepliif.constants import CLASSES, SEG
from napari_deepliif.engine.base import EngineBase
from napari_deepliif.errors import InputImageError
from napari_deepliif.io.exports import CSV_COLUMNS
from napari_deepliif.io.geojson import MEASUREMENT_NAMES, _class_names, stain_columns
from napari_deepliif.io.placement import Placement
from napari_deepliif.slides import omezarr
from napari_deepliif.slides.cells import (
    SlideCells,
    compartment_values,
    global_ids,
    region_classes,
    store_arrays,
)
from napari_deepliif.slides.windows import ClassMap, whole_cell, window_cells, windows

log = logging.getLogger(__name__)



def write_labels_and_outlines(root: Any, cells: SlideCells, geojson: Path | None, *, core: int,
                              margin: int, engine: EngineBase | None = None) -> None:
    """Paint the ``Seg/labels/cells`` (class map: ``Classes/labels/cells``) pyramid (slide cell ids) and, if ``geojson`` is given,
    stream every cell's outline there as a QuPath detection, window by window (``engine``:
    the run's, whose class map holds the cells of a class-map model, see :func:`store_arrays`)."""
    seg, marker = store_arrays(root, engine)
    classification = _class_names(cells, np.arange(len(cells.table)))
    stains = stain_columns(cells, np.arange(len(cells.table)))
    labels = omezarr.create_labels(root, cells.shape, root.attrs["napari_deepliif"]["mpp"],
                                   CLASSES if isinstance(seg, ClassMap) else SEG)
    place = Placement.from_settings(root.attrs["napari_deepliif"])

    def paint_and_write(sink: Any) -> None:
        if sink:
            sink.write('{"type": "FeatureCollection", "features": [\n')
        first_feature = True
        for inner, window in windows(cells.shape, core, margin):
            found, _ = window_cells(seg, marker, window, cells.settings.seg_thresh)
            first = found.first_pixels() + (window[0], window[2])
            ids = global_ids(cells, first)
            y0, y1, x0, x1 = inner
            in_core = (first[:, 0] >= y0) & (first[:, 0] < y1) & (first[:, 1] >= x0) & (first[:, 1] < x1)
            # pieces of cells cut by this window's edge that reach its core: found whole, so that
            # they are painted with their slide id and their own outline is written
            bbox = found.table.bbox + (window[0], window[2], window[0], window[2])
            reach = (bbox[:, 0] < y1) & (bbox[:, 2] > y0) & (bbox[:, 1] < x1) & (bbox[:, 3] > x0)
            wholes = {}
            for local in np.flatnonzero(touches_window_edge(found.table.bbox, window, cells.shape) & reach & ((ids == 0) | in_core)):
                big, row, big_window = whole_cell(seg, marker, tuple(first[local]), bbox[local], cells.shape, margin,
                                                  cells.settings.seg_thresh)
                true_first = big.first_pixels()[row] + (big_window[0], big_window[2])
                ids[local] = global_ids(cells, true_first[None])[0]
                in_core[local] = (y0 <= true_first[0] < y1) and (x0 <= true_first[1] < x1)
                wholes[local] = (big, row, big_window)
            labels["0"][y0:y1, x0:x1] = found.paint(ids, 0, rows=range(y0 - window[0], y1 - window[0]),
                                                    cols=range(x0 - window[2], x1 - window[2]))
            if sink is None:
                continue
            owned = np.flatnonzero(in_core & (ids > 0))
            plain = [local for local in owned if local not in wholes]
            outlines = dict(zip(plain, cell_outlines(found, np.asarray(plain, int), origin=(window[2], window[0]))))
            for local, (big, row, big_window) in wholes.items():
                if local in set(owned.tolist()):
                    outlines[local] = cell_outlines(big, np.array([row]), origin=(big_window[2], big_window[0]))[0]
            for local in owned:
                row = int(ids[local]) - 1
                t = cells.table
                measurements = dict(zip(MEASUREMENT_NAMES, (int(t.area[row]), int(t.marker[row]), int(t.n_positive_px[row]),
                                                            int(t.n_negative_px[row]), int(t.id[row]))))
                # an empty compartment has no measurement, as in the single-image export
                measurements.update({name: values[row] for name, values in stains.items() if not np.isnan(values[row])})
                feature = _feature([place.edges_to_full(r) for r in outlines[local]], classification[row],
                                   bool(cells.counted[row]), measurements)
                sink.write(("" if first_feature else ",\n") + json.dumps(feature))
                first_feature = False
        if sink:
            sink.write("\n]}\n")

    if geojson is None:
        paint_and_write(None)
    else:
        def stream(tmp: Path) -> None:
            with open(tmp, "w") as sink:
                paint_and_write(sink)

        write_atomic(geojson, stream)
    omezarr.build_pyramid(labels)


def _feature(rings: list[np.ndarray], classification: str, counted: bool, row: dict) -> dict:
    """One QuPath detection in the single-image export's form (:mod:`napari_deepliif.io.exports`)."""
    return {"type": "Feature", "id": str(uuid.uuid4()),
            "geometry": {"type": "Polygon", "coordinates": [np.round(r, 3).tolist() for r in rings]},
            "properties": {"objectType": "detection", "classification": classification,
                           "measurements": {**row, "Counted": int(counted)}}}


def cell_rows(cells: SlideCells, place: Placement) -> dict[str, np.ndarray]:
    """Columns of the cell table, named as the single-image CSV (:data:`exports.CSV_COLUMNS`),
    then the stain measurements of measured cells (QuPath names, rounded as the single-image
    CSV, NaN for an empty compartment), then ``counted``; centroids and boxes in level-0 pixels."""
    t = cells.table
    centroid = place.centres_to_full(t.centroid_xy)
    corner0 = place.edges_to_full(t.bbox[:, [1, 0]])
    corner1 = place.edges_to_full(t.bbox[:, [3, 2]])
    classes = np.array(_class_names(cells, np.arange(len(t))))
    columns = {"id": t.id, "centroid_x": centroid[:, 0], "centroid_y": centroid[:, 1], "area_px": t.area,
               "bbox_x0": corner0[:, 0], "bbox_y0": corner0[:, 1], "bbox_x1": corner1[:, 0], "bbox_y1": corner1[:, 1],
               "class": classes, "n_positive_px": t.n_positive_px, "n_negative_px": t.n_negative_px,
               "marker": t.marker}
    stains = {name: np.asarray(values) for name, values in stain_columns(cells, np.arange(len(t))).items()}
    return {**{name: columns[name] for name in CSV_COLUMNS}, **stains, "counted": cells.counted}


def write_cells_csv(path: Path, cells: SlideCells, place: Placement) -> Path:
    """One row per cell (see :func:`cell_rows`; an empty compartment's field empty); ``x``/``y``
    in level-0 pixels."""
    columns = {name: values.tolist() for name, values in cell_rows(cells, place).items()}
    for name in cells.measurement_columns():
        columns[name] = ["" if math.isnan(v) else v for v in columns[name]]

    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(columns)
            writer.writerows(zip(*columns.values()))

    write_atomic(path, write)
    return path


def parquet_available() -> bool:
    """Whether pyarrow (needed for Parquet) is installed."""
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return False
    return True


def write_cells_parquet(path: Path, cells: SlideCells, place: Placement) -> Path:
    """The cell table as Parquet (needs pyarrow: ``pip install pyarrow``)."""
    if not parquet_available():
        raise InputImageError("Parquet export needs pyarrow: pip install pyarrow (CSV is always written)")
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table(cell_rows(cells, place)), path)
    return path


def read_annotations(path: Path) -> dict[str, list[tuple[np.ndarray, list[np.ndarray]]]]:
    """Named polygons of a GeoJSON file (QuPath's annotation export: a FeatureCollection, a
    list of features, or one feature), in level-0 pixels.

    Returns
    -------
    dict
        Name (``properties.name``, else the classification, else ``annotation N``) -> list of
        (exterior (k, 2), holes) polygons; Polygon and MultiPolygon geometries are read.
    """
    data = json.loads(Path(path).read_text())
    features = data.get("features", [data]) if isinstance(data, dict) else data
    regions: dict[str, list] = {}
    for i, feature in enumerate(features, 1):
        geometry = feature.get("geometry") or {}
        props = feature.get("properties") or {}
        name = props.get("name") or (props.get("classification") or {}).get("name") or f"annotation {i}"
        if name in regions:
            name = f"{name} ({i})"
        kind, coords = geometry.get("type"), geometry.get("coordinates")
        polygons = [coords] if kind == "Polygon" else coords if kind == "MultiPolygon" else None
        if not polygons:
            log.warning("%s: feature %d (%s) is not a polygon; skipped", Path(path).name, i, kind)
            continue
        regions[name] = [(np.asarray(p[0], float), [np.asarray(h, float) for h in p[1:]]) for p in polygons]
    return regions


def score_annotations(cells: SlideCells, regions: dict, place: Placement, mpp: float | None,
                      marker: Any | None = None) -> dict[str, dict]:
    """Score of each named region (QuPath annotations), as every front end scores a region:
    the cells whose centroid lies in it (holes excluded), with default thresholds taken from
    the cells and Marker of its bounding box (see :func:`region_classes`); adds a class-map
    model's ``classes``, a compartment score's bins (``bins_od``), and ``area_mm2`` and
    ``pos_per_mm2`` (and ``classes_per_mm2``) when the pixel size is known."""
    centroids = cells.table.centroid_xy
    height, width = cells.shape
    result = {}
    for name, polygons in regions.items():
        rings = place.full_polygons_to_centres(polygons)
        inside = in_polygons(centroids, rings)
        area = rings_area(rings)
        corners = np.concatenate([exterior for exterior, _ in polygons])
        x0, y0 = corners.min(axis=0)
        x1, y1 = corners.max(axis=0)
        box = place.box_in_scored((x0, y0, x1 - x0, y1 - y0), (height, width))
        counted, positive = region_classes(cells, box, marker, inside)
        scores = {**counts(counted, positive), **class_counts(cells.table, counted)}
        values, _ = compartment_values(cells)
        if cells.settings.bins_od is not None:
            scores.update(intensity_classes(values, counted, positive, cells.settings.bins_od))
        if mpp and area > 0:
            scores.update(density(scores["num_pos"], area, mpp))
            if "classes" in scores:
                scores.update(class_densities(scores["classes"], scores["area_mm2"]))
        result[name] = scores
    return result


def rings_area(rings: list[tuple[np.ndarray, list[np.ndarray]]]) -> float:
    """Area (pixels) of (exterior, holes) polygons of ``(x, y)`` vertices, holes excluded."""
    return sum(_area(exterior) - sum(_area(h) for h in holes) for exterior, holes in rings)


def _area(ring: np.ndarray) -> float:
    x, y = ring[:, 0], ring[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))
