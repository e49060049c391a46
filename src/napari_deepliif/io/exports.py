"""Files that record one scoring result: score JSON, cell GeoJSON/CSV, label TIFF, images.

The CLI, the napari widget and the HTTP server all write a result through
:func:`write_score_outputs` (or the single-file functions below), so every front end produces
the same files. All writes are atomic (:func:`napari_deepliif.io.image_output.write_atomic`):
an interrupted run leaves each file either complete or absent, never half-written.

The cells' GeoJSON (QuPath detections with exact pixel-edge outlines, and what QuPath's source
shows it reads) is built in :mod:`napari_deepliif.io.geojson` and re-exported here.

Coordinates
-----------
Two pixel conventions meet here; each file states which it uses.

- **Cell table convention** (``cells.csv``, ``labels.tif``, the rest of this package, napari,
  scikit-image): pixel ``(row, col)`` has its centre at ``(x, y) = (col, row)``; the image
  spans ``[-0.5, W - 0.5] x [-0.5, H - 0.5]``.
- **QuPath / GeoJSON convention** (``cells.geojson``): pixel ``(row, col)`` is the unit square
  ``[col, col + 1] x [row, row + 1]``; the image spans ``[0, W] x [0, H]`` with ``(0, 0)`` at
  the top-left corner of the full-resolution image, as QuPath places ROIs on pixels (sources
  in :mod:`napari_deepliif.cells.outlines`). A cell's polygon centroid is its table centroid + 0.5.

Both are full-resolution (level-0) coordinates: a :class:`~napari_deepliif.io.placement.Placement`
says where the pixels scored lie (their origin, and the downsample of the level scored).
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from napari_deepliif.atomic import write_atomic, write_bytes
from napari_deepliif.cells.postprocess import PostprocessResult
from napari_deepliif.errors import InputImageError
from napari_deepliif.io.geojson import (
    _chosen_cells,
    _class_names,
    cells_geojson,
    stain_columns,
)
from napari_deepliif.io.image_output import write_images
from napari_deepliif.io.jsonable import json_bytes
from napari_deepliif.io.placement import Placement
from napari_deepliif.rgb import check_input

__all__ = [
    "CSV_COLUMNS",
    "CSV_FILE",
    "GEOJSON_FILE",
    "LABELS_FILE",
    "SCORE_FILE",
    "SEG_OVERLAID",
    "SEG_REFINED",
    "cells_rows",
    "write_cells_csv",
    "write_json",
    "write_labels_tiff",
    "write_score_outputs",
]

CSV_COLUMNS: tuple[str, ...] = (
    "id", "centroid_x", "centroid_y", "area_px", "bbox_x0", "bbox_y0", "bbox_x1", "bbox_y1",
    "class", "n_positive_px", "n_negative_px", "marker",
)

SCORE_FILE = "score.json"
GEOJSON_FILE = "cells.geojson"
CSV_FILE = "cells.csv"
LABELS_FILE = "labels.tif"
SEG_REFINED, SEG_OVERLAID = "SegRefined", "SegOverlaid"

_IMAGE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


# ---- JSON ---------------------------------------------------------------------------------

def write_json(path: str | Path, obj: Any, *, indent: int | None = 2) -> None:
    """Write ``obj`` as UTF-8 JSON, atomically.

    Parameters
    ----------
    path : str or Path
    obj : JSON-able
        numpy scalars and arrays and paths are converted; NaN and infinity are refused (not
        JSON).
    indent : int or None
        Indentation (2 by default); None writes compact JSON (used for GeoJSON).

    Raises
    ------
    ValueError
        If ``obj`` holds NaN or infinity.
    TypeError
        If ``obj`` holds something JSON cannot represent.
    """
    write_bytes(Path(path), json_bytes(obj, indent))


# ---- CSV ------------------------------------------------------------------------------------

def cells_rows(post: PostprocessResult, *, placement: Placement = Placement()) -> list[dict]:
    """One row per counted cell, in table order (the content of ``cells.csv``).

    Coordinates follow the cell table convention (pixel centres at integers; see module
    docstring) in full-resolution pixels (``placement``: where the pixels scored lie).

    Returns
    -------
    list of dict
        Keys :data:`CSV_COLUMNS`: ``id`` (label in ``labels.tif``), ``centroid_x``,
        ``centroid_y`` (mean pixel position, holes included), ``area_px`` (pixels scored),
        ``bbox_x0``, ``bbox_y0`` (first column/row), ``bbox_x1``, ``bbox_y1`` (last
        column/row + 1), ``class`` (``"Positive"``/``"Negative"``, final; a class-map model's
        class name), ``n_positive_px``, ``n_negative_px``, ``marker`` (max Marker value, 0-255;
        0 without a Marker); then, when the result has the IHC image, the stain measurements
        under their QuPath names (:func:`napari_deepliif.io.geojson.stain_columns`; empty
        where a compartment is).
    """
    table = post.table
    indices = _chosen_cells(post, counted_only=True)
    centroid = placement.centres_to_full(table.centroid_xy[indices])
    corner0 = placement.edges_to_full(table.bbox[indices][:, [1, 0]])
    corner1 = placement.edges_to_full(table.bbox[indices][:, [3, 2]])
    columns = zip(table.id[indices].tolist(), centroid[:, 0].tolist(), centroid[:, 1].tolist(),
                  table.area[indices].tolist(), *(_whole(c) for c in (corner0[:, 0], corner0[:, 1], corner1[:, 0],
                                                                      corner1[:, 1])),
                  _class_names(post, indices),
                  table.n_positive_px[indices].tolist(), table.n_negative_px[indices].tolist(),
                  table.marker[indices].tolist())
    rows = [dict(zip(CSV_COLUMNS, values)) for values in columns]
    for name, values in stain_columns(post, indices).items():
        for row, value in zip(rows, values):
            row[name] = "" if math.isnan(value) else value
    return rows


def _whole(values: np.ndarray) -> list:
    """``values`` as ints where they all are whole numbers (edges at a whole downsample)."""
    return values.astype(np.int64).tolist() if np.all(values == np.round(values)) else values.tolist()


def write_cells_csv(path: str | Path, post: PostprocessResult, *, placement: Placement = Placement()) -> None:
    """Write :func:`cells_rows` as a UTF-8 CSV with a header row, atomically."""
    _write_csv(Path(path), cells_rows(post, placement=placement), _columns(post))


def _columns(post: PostprocessResult) -> list[str]:
    """The CSV's header: :data:`CSV_COLUMNS`, then the stain measurements the result has."""
    return [*CSV_COLUMNS, *post.measurement_columns()]


def _write_csv(path: Path, rows: list[dict], columns: list[str]) -> None:
    def write(tmp: Path) -> None:
        with tmp.open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)

    write_atomic(path, write)


# ---- label image ----------------------------------------------------------------------------

def write_labels_tiff(path: str | Path, labels: np.ndarray) -> None:
    """Write a label image as a zlib-compressed uint32 TIFF, atomically.

    Parameters
    ----------
    path : str or Path
    labels : ndarray, shape (H, W), integer
        Cell ids (``table.id``), 0 for background; region pixels, no origin applied.

    Raises
    ------
    ValueError
        If ``labels`` is not 2-D, not integer, or has values outside 0 .. 2**32 - 1.
    """
    import tifffile

    labels = np.asarray(labels)
    if labels.ndim != 2 or labels.dtype.kind not in "ui":
        raise ValueError(f"labels must be an (H, W) integer array, got shape {labels.shape}"
                         f" and dtype {labels.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() > np.iinfo(np.uint32).max):
        raise ValueError("labels must lie in 0 .. 2**32 - 1 to be stored as uint32")
    data = np.ascontiguousarray(labels, dtype=np.uint32)
    write_atomic(Path(path), lambda tmp: tifffile.imwrite(
        tmp, data, compression="zlib", photometric="minisblack", metadata=None))


# ---- everything at once ---------------------------------------------------------------------

def write_score_outputs(
    directory: str | Path,
    *,
    post: PostprocessResult,
    image: np.ndarray,
    images: Mapping[str, np.ndarray],
    record: Mapping[str, Any],
    placement: Placement = Placement(),
) -> dict[str, Path]:
    """Write every file of one scoring result into ``directory``.

    Every file's content is computed (and the JSON encoded) before the first file is written,
    and each file is written atomically: bad input writes nothing, and an interruption or I/O
    error leaves no partial file (files completed before it stay).

    Parameters
    ----------
    directory : str or Path
        Created if missing; existing files of the same names are replaced.
    post : PostprocessResult
    image : ndarray, shape (H, W, 3), uint8
        The scored pixels, for ``SegOverlaid.png``: IHC, or one channel (H x W, uint8 or
        uint16) for an engine of fluorescence images.
    images : mapping of str to ndarray (H, W, 3) uint8
        Engine outputs (e.g. ``Hema``, ``DAPI``, ``Lap2``, ``Marker``, ``Seg``), each written
        as ``<name>.png``; names are plain file stems and must not be ``SegRefined`` or
        ``SegOverlaid``.
    record : mapping
        The score record (:func:`napari_deepliif.io.score_format.score_record`), written as
        ``score.json``.
    placement : Placement
        Where the pixels scored lie in the full-resolution image: GeoJSON and CSV coordinates
        are full-resolution pixels.

    Returns
    -------
    dict of str to Path
        File name -> path: ``<name>.png`` for each engine image, ``SegRefined.png``,
        ``SegOverlaid.png``, ``score.json``, ``cells.geojson``, ``cells.csv``, ``labels.tif``.

    Raises
    ------
    ValueError
        For a bad image name, or a record that holds NaN or infinity.
    TypeError
        For a record that JSON cannot represent.
    InputImageError
        For an image that is not H x W x 3 uint8 of the result's size.
    """
    directory = Path(directory)
    height, width = post.cells.shape
    for name, array in images.items():
        if not isinstance(name, str) or not _IMAGE_NAME.match(name) \
                or name in (SEG_REFINED, SEG_OVERLAID):
            raise ValueError(f"image name {name!r} cannot be a file name here")
        _check_image(array, name, (height, width))
    _check_image(image, "image", (height, width), grey=True)

    score = json_bytes(dict(record), 2)
    labels = post.labels()
    geojson = json_bytes(cells_geojson(post, origin=tuple(int(v) for v in placement.origin),
                                          downsample=placement.downsample), None)
    rows = cells_rows(post, placement=placement)
    derived = {SEG_REFINED: post.seg_refined(), SEG_OVERLAID: post.seg_overlaid(image)}

    paths = {f"{name}.png": path for name, path in write_images(directory, {**images, **derived}).items()}
    paths[SCORE_FILE] = directory / SCORE_FILE
    write_bytes(paths[SCORE_FILE], score)
    paths[GEOJSON_FILE] = directory / GEOJSON_FILE
    write_bytes(paths[GEOJSON_FILE], geojson)
    paths[CSV_FILE] = directory / CSV_FILE
    _write_csv(paths[CSV_FILE], rows, _columns(post))
    paths[LABELS_FILE] = directory / LABELS_FILE
    write_labels_tiff(paths[LABELS_FILE], labels)
    return paths


def _check_image(array: Any, what: str, shape: tuple[int, int], *, grey: bool = False) -> None:
    """Raise :class:`InputImageError` unless ``array`` is an ``shape`` x 3 uint8 image (or,
    with ``grey``, a one-channel ``shape`` image: see :func:`check_input`)."""
    checked = check_input(array, what, grey=grey)
    if tuple(array.shape) != (*shape, 3) and not (grey and tuple(checked.shape) == shape):
        raise InputImageError(f"{what} is {tuple(array.shape)}; expected {shape[0]} x {shape[1]}"
                              " x 3 (RGB, no alpha) like the scored image")
