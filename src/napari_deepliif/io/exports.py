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

Both are full-image coordinates: ``origin = (x0, y0)`` is the top-left pixel of the scored
region in the full image and is added to every coordinate.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from napari_deepliif.cells.postprocess import PostprocessResult
from napari_deepliif.errors import InputImageError
from napari_deepliif.io.geojson import (
    MEASUREMENT_NAMES,
    NEGATIVE_CLASS,
    POSITIVE_CLASS,
    _chosen_cells,
    _class_names,
    _geojson,
    cells_geojson,
)
from napari_deepliif.io.image_output import write_atomic, write_images, write_png
from napari_deepliif.rgb import check_rgb

__all__ = [
    # defined here
    "CSV_COLUMNS",
    "CSV_FILE",
    "ENGINES",
    "GEOJSON_FILE",
    "LABELS_FILE",
    "PROVENANCE_KEYS",
    "SCORE_FILE",
    "SCORE_KEYS",
    "SEG_OVERLAID",
    "SEG_REFINED",
    "cells_rows",
    "score_record",
    "write_cells_csv",
    "write_json",
    "write_labels_tiff",
    "write_score_outputs",
    # re-exported from qupath_geojson
    "MEASUREMENT_NAMES",
    "NEGATIVE_CLASS",
    "POSITIVE_CLASS",
    "cells_geojson",
]

#: Keys of the reference's score (``compute_final_results``), in its order.
SCORE_KEYS: tuple[str, ...] = (
    "num_total", "num_pos", "num_neg", "percent_pos",
    "seg_thresh", "size_thresh", "size_thresh_upper", "marker_thresh",
)
#: Provenance fields the front ends pass to :func:`score_record` (values may be None).
PROVENANCE_KEYS: tuple[str, ...] = (
    "engine", "model", "model_hash", "version", "resolution", "image", "region",
)
ENGINES: tuple[str, ...] = ("deepliif", "stain")

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


# ---- score JSON -----------------------------------------------------------------------------

def _jsonable(value: Any) -> Any:
    """``value`` with numpy scalars/arrays, tuples and Paths turned into JSON types."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.ndarray, np.generic, Path)):
        return _json_default(value)
    return value


def _json_default(value: Any) -> Any:
    """JSON form of the numpy and path values :func:`json.dumps` does not know."""
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def score_record(
    post: PostprocessResult,
    provenance: Mapping[str, Any],
    *,
    regions: Mapping[str, dict] | None = None,
) -> dict:
    """The content of ``score.json``: the reference's score, where it came from, region scores.

    Parameters
    ----------
    post : PostprocessResult
        The scored result; its ``scoring`` gives the score keys, values unchanged.
    provenance : mapping of str to JSON-able
        Where the score came from, added after the score keys in the given order. Front ends
        pass :data:`PROVENANCE_KEYS`: ``engine`` (``'deepliif'`` or ``'stain'``), ``model``
        (name), ``model_hash``, ``version`` (of this package), ``resolution`` (``'40x'`` ...),
        ``image`` (name) and ``region`` (e.g. ``[x0, y0, width, height]`` in full-image
        pixels, or None for the whole image); a value may be None where it does not apply.
    regions : mapping of str to dict, optional
        Per-region scores (e.g. :meth:`PostprocessResult.score_regions`), stored under
        ``"regions"``.

    Returns
    -------
    dict
        :data:`SCORE_KEYS` in the reference's order, then ``provenance``, then ``"regions"``
        if given; only JSON types (numpy scalars converted).

    Raises
    ------
    ValueError
        If a provenance key is not a string, repeats a score key or ``"regions"``, or
        ``engine`` is not one of :data:`ENGINES`.
    """
    record: dict[str, Any] = {key: _jsonable(post.scoring[key]) for key in SCORE_KEYS}
    for key in provenance:
        if not isinstance(key, str):
            raise ValueError(f"provenance keys must be strings, got {key!r}")
        if key in record or key == "regions":
            raise ValueError(f"provenance key {key!r} would overwrite a score field")
    engine = provenance.get("engine")
    if engine is not None and engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    record.update(_jsonable(dict(provenance)))
    if regions is not None:
        record["regions"] = _jsonable(dict(regions))
    return record


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
    _write_bytes(Path(path), _json_bytes(obj, indent))


def _json_bytes(obj: Any, indent: int | None) -> bytes:
    separators = (",", ":") if indent is None else None
    text = json.dumps(obj, indent=indent, separators=separators, ensure_ascii=False,
                      allow_nan=False, default=_json_default)
    return (text + "\n").encode("utf-8")


def _write_bytes(path: Path, data: bytes) -> None:
    write_atomic(path, lambda tmp: tmp.write_bytes(data))


# ---- CSV ------------------------------------------------------------------------------------

def cells_rows(post: PostprocessResult, *, origin: tuple[int, int] = (0, 0)) -> list[dict]:
    """One row per counted cell, in table order (the content of ``cells.csv``).

    Coordinates follow the cell table convention (pixel centres at integers; see module
    docstring) in full-image pixels: ``origin = (x0, y0)`` is added.

    Returns
    -------
    list of dict
        Keys :data:`CSV_COLUMNS`: ``id`` (label in ``labels.tif``), ``centroid_x``,
        ``centroid_y`` (mean pixel position, holes included), ``area_px``, ``bbox_x0``,
        ``bbox_y0`` (first column/row), ``bbox_x1``, ``bbox_y1`` (last column/row + 1),
        ``class`` (``"Positive"``/``"Negative"``, final), ``n_positive_px``,
        ``n_negative_px``, ``marker`` (max Marker value, 0-255; 0 without a Marker).
    """
    table = post.table
    indices = _chosen_cells(post, counted_only=True)
    ox, oy = origin
    centroid = table.centroid_xy[indices] + (ox, oy)
    bbox = table.bbox[indices][:, [1, 0, 3, 2]] + (ox, oy, ox, oy)
    columns = zip(table.id[indices].tolist(), centroid[:, 0].tolist(), centroid[:, 1].tolist(),
                  table.area[indices].tolist(), *bbox.T.tolist(), _class_names(post, indices),
                  table.n_positive_px[indices].tolist(), table.n_negative_px[indices].tolist(),
                  table.marker[indices].tolist())
    return [dict(zip(CSV_COLUMNS, values)) for values in columns]


def write_cells_csv(path: str | Path, post: PostprocessResult, *,
                    origin: tuple[int, int] = (0, 0)) -> None:
    """Write :func:`cells_rows` as a UTF-8 CSV with a header row, atomically."""
    _write_csv(Path(path), cells_rows(post, origin=origin))


def _write_csv(path: Path, rows: list[dict]) -> None:
    def write(tmp: Path) -> None:
        with tmp.open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
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
    provenance: Mapping[str, Any],
    origin: tuple[int, int] = (0, 0),
    regions: Mapping[str, dict] | None = None,
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
        The scored IHC image (region), for ``SegOverlaid.png``.
    images : mapping of str to ndarray (H, W, 3) uint8
        Engine outputs (e.g. ``Hema``, ``DAPI``, ``Lap2``, ``Marker``, ``Seg``), each written
        as ``<name>.png``; names are plain file stems and must not be ``SegRefined`` or
        ``SegOverlaid``.
    provenance : mapping
        See :func:`score_record`.
    origin : (x0, y0)
        Full-image position of the region's top-left pixel (GeoJSON and CSV coordinates).
    regions : mapping of str to dict, optional
        Per-region scores for ``score.json``.

    Returns
    -------
    dict of str to Path
        File name -> path: ``<name>.png`` for each engine image, ``SegRefined.png``,
        ``SegOverlaid.png``, ``score.json``, ``cells.geojson``, ``cells.csv``, ``labels.tif``.

    Raises
    ------
    ValueError
        For a bad image name, or provenance that :func:`score_record` refuses or that holds
        NaN or infinity.
    TypeError
        For provenance that JSON cannot represent.
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
    _check_image(image, "image", (height, width))

    record = _json_bytes(score_record(post, provenance, regions=regions), 2)
    labels = post.labels()
    geojson = _json_bytes(_geojson(post, labels, _chosen_cells(post, counted_only=True), origin,
                                   True, None, "string"), None)
    rows = cells_rows(post, origin=origin)
    derived = {SEG_REFINED: post.seg_refined(), SEG_OVERLAID: post.seg_overlaid(image)}

    paths = {f"{name}.png": path for name, path in write_images(directory, images).items()}
    for name, array in derived.items():
        paths[f"{name}.png"] = directory / f"{name}.png"
        write_png(paths[f"{name}.png"], array)
    paths[SCORE_FILE] = directory / SCORE_FILE
    _write_bytes(paths[SCORE_FILE], record)
    paths[GEOJSON_FILE] = directory / GEOJSON_FILE
    _write_bytes(paths[GEOJSON_FILE], geojson)
    paths[CSV_FILE] = directory / CSV_FILE
    _write_csv(paths[CSV_FILE], rows)
    paths[LABELS_FILE] = directory / LABELS_FILE
    write_labels_tiff(paths[LABELS_FILE], labels)
    return paths


def _check_image(array: Any, what: str, shape: tuple[int, int]) -> None:
    """Raise :class:`InputImageError` unless ``array`` is an ``shape`` x 3 uint8 image."""
    check_rgb(array, what)
    if tuple(array.shape) != (*shape, 3):
        raise InputImageError(f"{what} is {tuple(array.shape)}; expected {shape[0]} x {shape[1]}"
                              " x 3 (RGB, no alpha) like the scored image")
