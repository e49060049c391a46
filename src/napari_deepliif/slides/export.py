"""Slide-level outputs: the label pyramid, cells as GeoJSON/CSV/Parquet, per-annotation scores.

Coordinates written to files are full-resolution (level-0) pixels, as QuPath expects: a
point ``(x, y)`` of the image scored is ``((x + region x) * downsample, (y + region y) *
downsample)`` (pixel centres of a downsampled level are not shifted: the same convention as
QuPath's ``downsample`` scaling).
"""

from __future__ import annotations

import csv
import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
from skimage.measure import points_in_poly

from ..errors import InputImageError
from ..outlines import cell_outlines
from ..scoring import counts, density
from . import omezarr
from .cells import SlideCells, global_ids, store_arrays, window_cells, windows

log = logging.getLogger(__name__)

#: QuPath classification colours (packed RGB as QuPath writes them).
_CLASS_COLOURS = {"Positive": [200, 0, 0], "Negative": [0, 0, 200]}


class Placement:
    """Maps the image scored to level 0: region origin (x, y) in scored pixels and downsample."""

    def __init__(self, settings: dict):
        region = settings.get("region") or (0, 0)
        self.x, self.y = float(region[0]), float(region[1])
        self.downsample = float(settings["downsample"])

    def to_full(self, xy: np.ndarray) -> np.ndarray:
        """(k, 2) ``(x, y)`` in scored pixels -> level-0 pixels."""
        return (np.asarray(xy, float) + (self.x, self.y)) * self.downsample

    def from_full(self, xy: np.ndarray) -> np.ndarray:
        """(k, 2) ``(x, y)`` in level-0 pixels -> scored pixels."""
        return np.asarray(xy, float) / self.downsample - (self.x, self.y)


def write_labels_and_outlines(root: Any, cells: SlideCells, geojson: Path | None, *, core: int,
                              margin: int) -> None:
    """Paint the ``Seg/labels/cells`` pyramid (slide cell ids) and, if ``geojson`` is given,
    stream every cell's outline there as a QuPath detection, window by window."""
    seg, marker = store_arrays(root)
    labels = omezarr.create_labels(root, cells.shape, root.attrs["napari_deepliif"]["mpp"])
    place = Placement(root.attrs["napari_deepliif"])
    sink = open(geojson.with_suffix(".tmp"), "w") if geojson else None
    try:
        if sink:
            sink.write('{"type": "FeatureCollection", "features": [\n')
        first_feature = True
        for inner, window in windows(cells.shape, core, margin):
            found, _ = window_cells(seg, marker, window, cells.settings.seg_thresh)
            ids = global_ids(cells, found.first_pixels() + (window[0], window[2]))
            painted = found.paint(ids, 0)
            y0, y1, x0, x1 = inner
            labels["0"][y0:y1, x0:x1] = painted[y0 - window[0] : y1 - window[0], x0 - window[2] : x1 - window[2]]
            if sink is None:
                continue
            first = found.first_pixels() + (window[0], window[2])
            own = (first[:, 0] >= y0) & (first[:, 0] < y1) & (first[:, 1] >= x0) & (first[:, 1] < x1) & (ids > 0)
            owned = np.flatnonzero(own)
            for local, rings in zip(owned, cell_outlines(found, owned, origin=(window[2], window[0]))):
                row = int(ids[local]) - 1
                feature = _feature(place.to_full(rings[0]), bool(cells.positive[row]), bool(cells.counted[row]),
                                   int(ids[local]))
                sink.write(("" if first_feature else ",\n") + json.dumps(feature))
                first_feature = False
        if sink:
            sink.write("\n]}\n")
    finally:
        if sink:
            sink.close()
    if geojson:
        os.replace(geojson.with_suffix(".tmp"), geojson)
    omezarr.build_pyramid(labels)


def _feature(outline: np.ndarray, positive: bool, counted: bool, cell_id: int) -> dict:
    name = "Positive" if positive else "Negative"
    ring = np.round(outline, 2).tolist()
    return {"type": "Feature", "id": str(cell_id),
            "geometry": {"type": "Polygon", "coordinates": [ring]},
            "properties": {"objectType": "detection", "classification": {"name": name, "color": _CLASS_COLOURS[name]},
                           "measurements": {"cell_id": cell_id, "counted": int(counted)}}}


def cell_rows(cells: SlideCells, place: Placement) -> dict[str, np.ndarray]:
    """Columns of the cell table: ids, level-0 centroids, areas, classes and marker values."""
    t = cells.table
    full = place.to_full(t.centroid_xy)
    return {"id": t.id, "x": full[:, 0], "y": full[:, 1], "x_scored": t.centroid_xy[:, 0], "y_scored": t.centroid_xy[:, 1],
            "area_px": t.area, "positive": cells.positive, "counted": cells.counted, "marker": t.marker,
            "n_positive_px": t.n_positive_px, "n_negative_px": t.n_negative_px}


def write_cells_csv(path: Path, cells: SlideCells, place: Placement) -> Path:
    """One row per cell (see :func:`cell_rows`); ``x``/``y`` in level-0 pixels."""
    columns = cell_rows(cells, place)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        writer.writerows(zip(*(c.tolist() for c in columns.values())))
    os.replace(tmp, path)
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


def score_annotations(cells: SlideCells, regions: dict, place: Placement, mpp: float | None) -> dict[str, dict]:
    """Score of the cells whose centroid lies in each named region (holes excluded); adds
    ``area_mm2`` and ``pos_per_mm2`` when the pixel size is known."""
    centroids = cells.table.centroid_xy
    result = {}
    for name, polygons in regions.items():
        inside = np.zeros(len(cells.table), bool)
        area = 0.0
        for exterior, holes in polygons:
            ring = place.from_full(exterior)
            hit = points_in_poly(centroids, ring) if len(centroids) else inside.copy()
            area += _area(ring)
            for hole in holes:
                hole_ring = place.from_full(hole)
                if len(centroids):
                    hit &= ~points_in_poly(centroids, hole_ring)
                area -= _area(hole_ring)
            inside |= hit
        scores = counts(cells.counted & inside, cells.positive)
        if mpp and area > 0:
            scores.update(density(scores["num_pos"], area, mpp))
        result[name] = scores
    return result


def _area(ring: np.ndarray) -> float:
    x, y = ring[:, 0], ring[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))
