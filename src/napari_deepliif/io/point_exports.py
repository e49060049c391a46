"""Files of a point-detection result: ``points.geojson`` (QuPath point detections),
``points.csv`` and ``score.json``.

Coordinates are full-resolution (level-0) pixels through a
:class:`~napari_deepliif.io.placement.Placement`. ``points.csv`` uses the cell table's
convention (pixel centres at integers, as ``cells.csv`` and napari); ``points.geojson`` uses
QuPath's (pixel ``(row, col)`` is the square ``[col, col + 1] x [row, row + 1]``), so a point
at a pixel's centre is written at ``x + 0.5, y + 0.5``. Every write is atomic.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from napari_deepliif.atomic import write_bytes
from napari_deepliif.cells.detections import PointDetections
from napari_deepliif.io.exports import SCORE_FILE
from napari_deepliif.io.jsonable import json_bytes
from napari_deepliif.io.placement import Placement

POINTS_GEOJSON = "points.geojson"
POINTS_CSV = "points.csv"
POINT_COLUMNS: tuple[str, ...] = ("id", "x", "y", "class", "positive", "confidence")


def points_rows(detections: PointDetections, *, placement: Placement | None = None) -> list[dict]:
    """One row per point, strongest first (the content of ``points.csv``).

    Returns
    -------
    list of dict
        Keys :data:`POINT_COLUMNS`: ``id`` (1, 2, ...), ``x``, ``y`` (full-resolution pixels,
        centres at integers), ``class`` (the model's class name), ``positive`` (``true`` or
        ``false``), ``confidence``.
    """
    xy = (placement or Placement()).centres_to_full(detections.xy)
    return [dict(zip(POINT_COLUMNS, (k + 1, x, y, name, "true" if pos else "false", conf)))
            for k, ((x, y), name, pos, conf) in enumerate(zip(xy.tolist(), detections.class_names,
                                                              detections.positive.tolist(),
                                                              detections.confidence.tolist()))]


def points_geojson(detections: PointDetections, *, placement: Placement | None = None) -> dict:
    """The points as a GeoJSON FeatureCollection that QuPath imports as point detections.

    Each feature: a random UUID ``id``, a ``Point`` geometry (QuPath pixel coordinates, see
    the module docstring), ``properties`` ``objectType`` ``"detection"``, ``classification``
    (the class name) and ``measurements`` ``{"Confidence": value}``.
    """
    xy = (placement or Placement()).centres_to_full(detections.xy) + 0.5
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "id": str(uuid.uuid4()), "geometry": {"type": "Point", "coordinates": [x, y]},
         "properties": {"objectType": "detection", "classification": name, "measurements": {"Confidence": conf}}}
        for (x, y), name, conf in zip(xy.tolist(), detections.class_names, detections.confidence.tolist())]}


def point_files(detections: PointDetections, *, placement: Placement | None = None) -> dict[str, bytes]:
    """The encoded ``points.geojson`` and ``points.csv`` of ``detections`` (name -> bytes)."""
    rows = points_rows(detections, placement=placement)
    table = io.StringIO(newline="")
    writer = csv.DictWriter(table, fieldnames=POINT_COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    return {POINTS_GEOJSON: json_bytes(points_geojson(detections, placement=placement), None),
            POINTS_CSV: table.getvalue().encode("utf-8")}


def write_point_outputs(directory: str | Path, detections: PointDetections, *, record: Mapping[str, Any],
                        placement: Placement | None = None) -> dict[str, Path]:
    """Write ``score.json``, ``points.geojson`` and ``points.csv`` into ``directory``.

    Everything is encoded before the first file is written; each file is written atomically.

    Returns
    -------
    dict of str to Path
        File name -> path.
    """
    directory = Path(directory)
    encoded = {SCORE_FILE: json_bytes(dict(record), 2), **point_files(detections, placement=placement)}
    paths = {name: directory / name for name in encoded}
    for name, data in encoded.items():
        write_bytes(paths[name], data)
    return paths
