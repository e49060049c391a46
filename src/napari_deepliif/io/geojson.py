"""Cells as a GeoJSON FeatureCollection that QuPath imports as detections (``cells.geojson``).

:func:`cells_geojson` builds it for :func:`napari_deepliif.io.exports.write_score_outputs` and the
HTTP server; the class names and the choice of cells here are shared with the cell CSV
(:func:`napari_deepliif.io.exports.cells_rows`). Coordinates follow QuPath's convention: pixel
``(row, col)`` is the unit square ``[col, col + 1] x [row, row + 1]`` of the full-resolution
image (see :mod:`napari_deepliif.io.exports` for how this meets the cell table's convention), and
``origin = (x0, y0)``, the top-left pixel of the scored region in the full image, is added to
every coordinate.

Cell outlines
-------------
A cell's GeoJSON polygon is its exact pixel-edge outline from :mod:`napari_deepliif.cells.outlines`
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
- ``properties.classification`` goes to ``GsonTools.PathClassTypeAdapter.read``. Before
  v0.4 (PR qupath/qupath#1099) that was ``new Gson().fromJson(in, PathClass.class)``, which
  needs a JSON object. The v0.4+ reader (``GsonTools.java`` at qupath/qupath commit
  0a77ded, read in the indexed source) takes a JSON string as the class name
  (``PathClass.fromString``), ``null`` as no class, and an object only when it has
  ``"name"`` (or ``"names"``) **and** ``"color"`` (any other object is a parse error), or
  the pre-0.4 reflective form. So the plain string written by default
  (``classification="string"``, as asked) is read by that reader (the 0.6 source was not
  in the index to confirm it unchanged); ``classification="object"`` writes QuPath's own
  ``{"name": ..., "color": [r, g, b]}`` with the Seg map's colours.
"""

from __future__ import annotations

import contextlib
import gc
import math
import uuid
from collections.abc import Iterator, Mapping
from typing import Any, Literal

import numpy as np

from napari_deepliif.cells.outlines import outline_rings
from napari_deepliif.cells.postprocess import PostprocessResult
from napari_deepliif.constants import CLASS_PALETTE, NEGATIVE_RGB, POSITIVE_RGB

POSITIVE_CLASS, NEGATIVE_CLASS = "Positive", "Negative"
#: Class of a cell written but not counted (outside the size gates or the region, or
#: excluded): a QuPath count of Positive and Negative detections then reproduces the score.
UNCOUNTED_CLASS = "Uncounted"
#: Colour of uncounted cells where a colour is written (QuPath's object classification).
UNCOUNTED_RGB = (160, 160, 160)
#: Per-cell measurements written to GeoJSON (QuPath shows them in its measurement table).
MEASUREMENT_NAMES: tuple[str, ...] = (
    "Area px", "Marker value", "Positive pixels", "Negative pixels", "Cell id",
)
#: Decimals the stain measurements (ODs, µm²) are written with.
STAIN_DECIMALS = 4


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


def _chosen_cells(post: PostprocessResult, counted_only: bool) -> np.ndarray:
    """Table row indices of the counted cells, or of every cell."""
    return np.flatnonzero(post.counted) if counted_only else np.arange(len(post.table))


def class_names(positive: np.ndarray, counted: np.ndarray) -> list[str]:
    """Class of each cell: :data:`POSITIVE_CLASS` or :data:`NEGATIVE_CLASS` when counted,
    else :data:`UNCOUNTED_CLASS`."""
    names = np.where(positive, POSITIVE_CLASS, NEGATIVE_CLASS)
    return np.where(counted, names, UNCOUNTED_CLASS).tolist()


def _class_names(post: PostprocessResult, indices: np.ndarray) -> list[str]:
    """:func:`class_names` of the rows in ``indices``; for cells of a class map, each counted
    cell's class name instead of Positive/Negative."""
    table = post.table
    if table.cell_class is None or table.class_names is None:
        return class_names(post.positive[indices], post.counted[indices])
    names = np.asarray(table.class_names, dtype=object)[table.cell_class[indices]]
    return np.where(post.counted[indices], names, UNCOUNTED_CLASS).tolist()


def class_colours(post: PostprocessResult) -> dict[str, list[int]]:
    """Colour of each class name a cell of ``post`` can have (QuPath's classification)."""
    colours = {POSITIVE_CLASS: list(POSITIVE_RGB), NEGATIVE_CLASS: list(NEGATIVE_RGB),
               UNCOUNTED_CLASS: list(UNCOUNTED_RGB)}
    for i, name in enumerate(post.table.class_names or ()):
        if i > 0:
            colours[name] = list(CLASS_PALETTE[(i - 1) % len(CLASS_PALETTE)])
    return colours


def stain_columns(post: PostprocessResult, indices: np.ndarray) -> dict[str, list[float]]:
    """The cells' stain measurements (:meth:`PostprocessResult.measurement_columns`, QuPath
    names) of the rows in ``indices``, rounded to :data:`STAIN_DECIMALS`; NaN where a
    compartment is empty; no column without the IHC image."""
    return {name: np.round(values[indices], STAIN_DECIMALS).tolist()
            for name, values in post.measurement_columns().items()}


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
    downsample: float = 1.0,
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
    downsample : float
        Level-0 pixels per pixel scored: coordinates (after ``origin``) are multiplied by it,
        so a pyramid level's cells land where QuPath shows the full-resolution image.
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
        ``objectType`` ``"detection"``, ``classification`` (final class, ``post.positive``; a
        class-map model's class name) and
        ``measurements``: ``Area px``, ``Marker value``, ``Positive pixels``,
        ``Negative pixels``, ``Cell id`` and, when the result has the IHC image, the stain
        measurements (:func:`stain_columns`; an empty compartment's is left out).
    """
    if classification not in ("string", "object"):
        raise ValueError(f"classification must be 'string' or 'object', got {classification!r}")
    indices = _chosen_cells(post, counted_only)
    return _geojson(post, post.labels(), indices, origin, counted_only, measurements_extra,
                    classification, downsample)


def _geojson(post: PostprocessResult, labels: np.ndarray, indices: np.ndarray,
             origin: tuple[int, int], counted_only: bool,
             measurements_extra: Mapping[str, Any] | None, classification: str, downsample: float = 1.0) -> dict:
    extra = _extra_columns(post, measurements_extra)
    points, bounds, rings = outline_rings(labels, indices + 1, origin=origin)
    if downsample != 1.0:
        points = points * downsample
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
    extra_values = {**stain_columns(post, indices),
                    **{name: values[indices].tolist() for name, values in extra.items()}}
    colours = class_colours(post)
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
