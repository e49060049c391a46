"""Files that record one scoring result: score JSON, cell GeoJSON/CSV, label TIFF, images.

The CLI, the napari widget and the HTTP server all write a result through
:func:`write_score_outputs` (or the single-file functions below), so every front end produces
the same files. All writes are atomic (:func:`napari_deepliif.image_output.write_atomic`):
an interrupted run leaves each file either complete or absent, never half-written.

Coordinates
-----------
Two pixel conventions meet here; each file states which it uses.

- **Cell table convention** (``cells.csv``, ``labels.tif``, the rest of this package, napari,
  scikit-image): pixel ``(row, col)`` has its centre at ``(x, y) = (col, row)``; the image
  spans ``[-0.5, W - 0.5] x [-0.5, H - 0.5]``.
- **QuPath / GeoJSON convention** (``cells.geojson``): pixel ``(row, col)`` is the unit square
  ``[col, col + 1] x [row, row + 1]``; the image spans ``[0, W] x [0, H]`` with ``(0, 0)`` at
  the top-left corner of the full-resolution image, as QuPath places ROIs on pixels (sources
  in :mod:`napari_deepliif.outlines`). A cell's polygon centroid is its table centroid + 0.5.

Both are full-image coordinates: ``origin = (x0, y0)`` is the top-left pixel of the scored
region in the full image and is added to every coordinate.

Cell outlines
-------------
A cell's GeoJSON polygon is its exact pixel-edge outline from :mod:`napari_deepliif.outlines`
(the same outlines every front end writes): its area equals the cell table's ``area`` (pixels,
enclosed holes included: the cell table fills holes, so a cell has no interior ring), a part
joined only at a pixel corner stays in the polygon, which is valid for GEOS all the same, and
the outer ring is counter-clockwise in ``(x, y)`` as written, as RFC 7946 asks.

QuPath's GeoJSON, as read from its source (``qupath/qupath``)
-------------------------------------------------------------
``qupath-core/src/main/java/qupath/lib/io/PathObjectTypeAdapters.java``,
``PathObjectTypeAdapter`` (v0.4 and later):

- a ``FeatureCollection``'s ``features`` are read one by one; ``properties.objectType``
  ``"detection"`` makes a detection (``object_type`` and ``type`` are accepted aliases;
  without any of them QuPath makes an *annotation*);
- ``id`` is kept when it parses as a UUID; any other string is ignored and QuPath assigns a
  new one. We write random UUIDs;
- ``properties.measurements`` is a JSON object ``{name: number}`` (read as
  ``Map<String, Double>``; the pre-0.4 ``[{"name", "value"}]`` list is still read). We write
  finite numbers only;
- ``properties.classification`` goes to ``GsonTools.PathClassTypeAdapter.read``. In the
  versions of ``qupath-core/src/main/java/qupath/lib/io/GsonTools.java`` available to read
  (before PR qupath/qupath#1099, v0.4's new PathClass form), ``read`` is
  ``new Gson().fromJson(in, PathClass.class)``: reflective reading that needs a JSON object,
  so a plain string fails there ("Expected BEGIN_OBJECT but was STRING"). Since v0.4 QuPath
  writes ``{"name": "Positive", "color": [r, g, b]}``; the v0.4+ reader's source was not
  available, so whether it accepts a plain string is **not verified**. The plain string is
  the default here, as asked (``classification="string"``); ``classification="object"``
  writes QuPath 0.4+'s own form (with the Seg map's colours), which QuPath 0.4+ reads back
  by construction.
"""

from __future__ import annotations

import contextlib
import csv
import gc
import json
import math
import re
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np

from .constants import NEGATIVE_RGB, POSITIVE_RGB
from .errors import InputImageError
from .image_input import check_rgb
from .image_output import write_atomic, write_images, write_png
from .outlines import outline_rings
from .postprocess import PostprocessResult

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

POSITIVE_CLASS, NEGATIVE_CLASS = "Positive", "Negative"
#: Per-cell measurements written to GeoJSON (QuPath shows them in its measurement table).
MEASUREMENT_NAMES: tuple[str, ...] = (
    "Area px", "Marker value", "Positive pixels", "Negative pixels", "Cell id",
)
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


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many small lists (3x faster).

    Nothing built here forms reference cycles; the collector runs again afterwards.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


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


# ---- GeoJSON and CSV ------------------------------------------------------------------------

def _chosen_cells(post: PostprocessResult, counted_only: bool) -> np.ndarray:
    return np.flatnonzero(post.counted) if counted_only else np.arange(len(post.table))


def _class_names(post: PostprocessResult, indices: np.ndarray) -> list[str]:
    return np.where(post.positive[indices], POSITIVE_CLASS, NEGATIVE_CLASS).tolist()


def _extra_columns(post: PostprocessResult, measurements_extra: Mapping[str, Any] | None
                   ) -> dict[str, np.ndarray]:
    extra = {}
    for name, values in (measurements_extra or {}).items():
        values = np.asarray(values)
        if not isinstance(name, str) or name in MEASUREMENT_NAMES or name == "Counted":
            raise ValueError(f"extra measurement name {name!r} is not a new string")
        if values.shape != (len(post.table),) or not np.issubdtype(values.dtype, np.number):
            raise ValueError(f"extra measurement {name!r} must be {len(post.table)} numbers (one"
                             f" per table row), got shape {values.shape} and dtype {values.dtype}")
        extra[name] = values.astype(np.float64)
    return extra


def cells_geojson(
    post: PostprocessResult,
    *,
    origin: tuple[int, int] = (0, 0),
    counted_only: bool = True,
    measurements_extra: Mapping[str, Any] | None = None,
    classification: Literal["string", "object"] = "string",
) -> dict:
    """Cells as a GeoJSON FeatureCollection that QuPath imports as detections.

    Parameters
    ----------
    post : PostprocessResult
    origin : (x0, y0)
        Full-image position (pixels) of the scored region's top-left pixel; added to every
        coordinate.
    counted_only : bool
        True: exactly the counted cells (``post.counted``), so the feature count is
        ``num_total``. False: every cell of the table, with a ``Counted`` measurement (1/0).
    measurements_extra : mapping of str to array-like, optional
        More per-cell numbers, one per table row (``table.id - 1``), added to each feature's
        measurements (a non-finite value is left out for that cell).
    classification : {'string', 'object'}
        ``'string'``: ``"classification": "Positive"`` (or ``"Negative"``); ``'object'``:
        QuPath 0.4+'s own ``{"name": "Positive", "color": [255, 0, 0]}``. See the module
        docstring for what QuPath's source shows about each.

    Returns
    -------
    dict
        ``{"type": "FeatureCollection", "features": [...]}`` in table order; each feature has
        a random UUID ``id``, a ``Polygon`` geometry (module docstring: QuPath pixel-corner
        coordinates, exact outline, closed counter-clockwise outer ring) and ``properties``
        ``objectType`` ``"detection"``, ``classification`` (final class, ``post.positive``) and
        ``measurements``: ``Area px``, ``Marker value``, ``Positive pixels``,
        ``Negative pixels``, ``Cell id``.
    """
    if classification not in ("string", "object"):
        raise ValueError(f"classification must be 'string' or 'object', got {classification!r}")
    indices = _chosen_cells(post, counted_only)
    return _geojson(post, post.labels(), indices, origin, counted_only, measurements_extra,
                    classification)


def _geojson(post: PostprocessResult, labels: np.ndarray, indices: np.ndarray,
             origin: tuple[int, int], counted_only: bool,
             measurements_extra: Mapping[str, Any] | None, classification: str) -> dict:
    extra = _extra_columns(post, measurements_extra)
    points, bounds, rings = outline_rings(labels, indices + 1, origin=origin)
    with _gc_paused():
        return _features(post, indices, _ring_lists(points, bounds), rings, counted_only, extra,
                         classification)


def _features(post: PostprocessResult, indices: np.ndarray, coordinates: list, rings: list,
              counted_only: bool, extra: dict[str, np.ndarray], classification: str) -> dict:
    table = post.table
    columns = {
        "Area px": table.area[indices].tolist(),
        "Marker value": table.marker[indices].tolist(),
        "Positive pixels": table.n_positive_px[indices].tolist(),
        "Negative pixels": table.n_negative_px[indices].tolist(),
        "Cell id": table.id[indices].tolist(),
    }
    if not counted_only:
        columns["Counted"] = post.counted[indices].astype(int).tolist()
    extra_values = {name: values[indices].tolist() for name, values in extra.items()}
    colours = {POSITIVE_CLASS: list(POSITIVE_RGB), NEGATIVE_CLASS: list(NEGATIVE_RGB)}
    features = []
    for k, class_name in enumerate(_class_names(post, indices)):
        measurements = {name: values[k] for name, values in columns.items()}
        for name, values in extra_values.items():
            if math.isfinite(values[k]):
                measurements[name] = values[k]
        features.append({
            "type": "Feature",
            "id": str(uuid.uuid4()),
            "geometry": {"type": "Polygon", "coordinates": [coordinates[r] for r in rings[k]]},
            "properties": {
                "objectType": "detection",
                "classification": class_name if classification == "string"
                else {"name": class_name, "color": list(colours[class_name])},
                "measurements": measurements,
            },
        })
    return {"type": "FeatureCollection", "features": features}


def _ring_lists(points: np.ndarray, bounds: np.ndarray) -> list[list[list[float]]]:
    """Each ring as a list of ``[x, y]``; rings whose vertices are all whole numbers hold ints.

    Most outlines have only whole-pixel corners; ints keep the file shorter and faster to write.
    """
    n_rings = bounds.size - 1
    if n_rings == 0:
        return []
    whole_point = (points == np.round(points)).all(axis=1)
    whole_ring = np.logical_and.reduceat(whole_point, bounds[:-1])
    per_point = np.repeat(whole_ring, np.diff(bounds))
    ints = points[per_point].astype(np.int64).tolist()
    floats = points[~per_point].tolist()
    sizes = np.diff(bounds)
    start_in = np.where(whole_ring, np.cumsum(np.where(whole_ring, sizes, 0)),
                        np.cumsum(np.where(whole_ring, 0, sizes))) - sizes
    return [(ints if whole else floats)[begin:begin + size]
            for whole, begin, size in zip(whole_ring.tolist(), start_in.tolist(), sizes.tolist())]


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
