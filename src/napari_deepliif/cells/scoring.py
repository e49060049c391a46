"""From a cell table to an IHC score: default thresholds, gating, overrides, regions, extras.

Everything here works on the per-cell columns of a :class:`~napari_deepliif.cells.find.CellTable`
(arrays of length n), so moving a size or marker slider costs microseconds. The rules are the
reference's ``compute_final_results`` (``docs/deepliif-reference.md``, "Postprocessing").
Coordinates: ROI polygons are ``(x, y)`` vertices and masks ``[y, x]`` arrays in image pixels
(pixel centres at integer coordinates).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Literal, get_args

import numpy as np
from skimage.measure import points_in_poly

from napari_deepliif.cells.find import CellTable
from napari_deepliif.constants import (
    LOWEST_RESOLUTION,
    MARKER_RANGE_PERCENTILES,
    MARKER_THRESH_FRACTION,
    RESOLUTION_BY_TILE_SIZE_ABOVE,
    SIZE_KDE_BANDWIDTH,
    SIZE_KDE_BINS,
    SIZE_THRESH_CLAMPS_BY_RESOLUTION,
)
from napari_deepliif.errors import InputImageError

#: What a user can say about one cell: leave it out, count it whatever its size, or count it
#: with this class.
Override = Literal["exclude", "include", "positive", "negative"]
OVERRIDES: tuple[str, ...] = get_args(Override)
#: What decides a cell's class: the engine's class (the Seg map, and a marker threshold), or
#: the mean DAB OD of one compartment (:mod:`napari_deepliif.cells.measure`).
Compartment = Literal["class", "nucleus", "cytoplasm", "membrane", "cell"]
COMPARTMENTS: tuple[str, ...] = get_args(Compartment)
#: Cells whose KDE terms are summed at once (8 MB of float64).
_KDE_BLOCK = 2_000


def resolution_for_tile_size(tile_size: int) -> str:
    """Postprocessing resolution for a tile size in pixels (> 384: 40x, > 192: 20x, else 10x)."""
    return next((res for above, res in RESOLUTION_BY_TILE_SIZE_ABOVE if tile_size > above),
                LOWEST_RESOLUTION)


def _kde_bin_exact(values: np.ndarray, x: float) -> float:
    """One KDE bin summed term by term with ``math.exp``, as the reference does."""
    inv_sqrt_2pi, inv_bandwidth = 1 / math.sqrt(2 * math.pi), 1 / SIZE_KDE_BANDWIDTH
    total = 0.0
    for v in values.tolist():
        d = (x - v) * inv_bandwidth
        total += math.exp(-(d * d / 2)) * inv_sqrt_2pi
    return total / (values.size * SIZE_KDE_BANDWIDTH)


def _size_kde(values: np.ndarray) -> tuple[np.ndarray, float]:
    """float32 Gaussian KDE of ``values`` on ``SIZE_KDE_BINS`` bins over [0, max + 1), and the step.

    Terms are summed in cell order like the reference (each distinct value's terms are
    computed once). ``np.exp`` may differ from ``math.exp`` in the last bit, so bins whose
    float32 rounding that could flip are redone term by term.
    """
    step = (values.max() + 1) / SIZE_KDE_BINS
    x = np.arange(SIZE_KDE_BINS) * step
    distinct, which = np.unique(values, return_inverse=True)
    d = (x[None, :] - distinct[:, None]) * (1 / SIZE_KDE_BANDWIDTH)
    table = np.exp(-(d * d / 2)) * (1 / math.sqrt(2 * math.pi))
    total = np.zeros(SIZE_KDE_BINS)
    for i in range(0, values.size, _KDE_BLOCK):
        terms = table[which[i:i + _KDE_BLOCK]]
        terms[0] += total
        total = terms.sum(axis=0)  # row after row: the reference's order
    kde64 = total / (values.size * SIZE_KDE_BANDWIDTH)
    kde = kde64.astype(np.float32)
    # float32 rounding boundary nearest each bin; flag bins within a relative 1e-11 of one
    other = np.where(kde64 > kde, np.nextafter(kde, np.float32(np.inf)),
                     np.nextafter(kde, np.float32(-np.inf)))
    midpoint = (kde.astype(np.float64) + other) / 2
    for i in np.flatnonzero(np.abs(kde64 - midpoint) <= 1e-11 * np.abs(kde64)):
        kde[i] = np.float32(_kde_bin_exact(values, float(x[i])))
    return kde, float(step)


def default_size_threshold(sizes: np.ndarray, resolution: str) -> int:
    """The reference's default lower size threshold, in pixels.

    Gaussian KDE (bandwidth 1) of sqrt(cell sizes) on 500 bins over [0, max + 1); the first
    local minimum at bin i gives t = (i - 1) * step, clamped to the resolution's
    (min, default, max): below min -> min, above max -> default; returns round(t^2).

    Parameters
    ----------
    sizes : ndarray, shape (n,)
        Areas (pixels) of all cells above the noise threshold, in table order.
    resolution : {'10x', '20x', '40x'}

    Returns
    -------
    int
        0 when there are fewer than two cells.
    """
    sizes = np.asarray(sizes)
    if sizes.size <= 1:
        return 0
    kde, step = _size_kde(np.sqrt(sizes.astype(np.float64)))
    minima = np.flatnonzero((kde[1:-1] < kde[:-2]) & (kde[1:-1] < kde[2:])) + 1
    t = ((int(minima[0]) if minima.size else 1) - 1) * step
    low, default, high = SIZE_THRESH_CLAMPS_BY_RESOLUTION[resolution]
    if t < low:
        t = low
    elif t > high:
        t = default
    return round(t * t)


def default_marker_threshold(marker: np.ndarray) -> int:
    """The reference's default marker threshold: lo + round(0.9 * (hi - lo)).

    Parameters
    ----------
    marker : ndarray, shape (H, W), uint8
        Marker image reduced per pixel to max(R, G, B).

    Returns
    -------
    int
        lo/hi are the rounded 0.1th/99.9th percentiles of the non-zero pixels (0 if none).
    """
    nonzero = marker[marker != 0]
    if nonzero.size == 0:
        return 0
    low, high = (round(np.percentile(nonzero, q)) for q in MARKER_RANGE_PERCENTILES)
    return round((high - low) * MARKER_THRESH_FRACTION) + low


def check_overrides(overrides: Mapping[int, Override] | None, n_cells: int) -> dict[int, Override]:
    """Validate ``{cell id: override}`` against a table of ``n_cells`` cells (ids 1..n).

    Raises
    ------
    InputImageError
        For an unknown cell id or override.
    """
    checked: dict[int, Override] = {}
    for cell_id, what in (overrides or {}).items():
        if isinstance(cell_id, bool) or not isinstance(cell_id, (int, np.integer)) \
                or not 1 <= cell_id <= n_cells:
            raise InputImageError(f"no cell with id {cell_id!r} (ids run from 1 to {n_cells})")
        if what not in OVERRIDES:
            raise InputImageError(f"cell {cell_id}: unknown override {what!r} (one of {OVERRIDES})")
        checked[int(cell_id)] = what
    return checked


def classify(table: CellTable, size_thresh: int, size_thresh_upper: int | None,
             marker_thresh: int | None, overrides: Mapping[int, Override],
             positive: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Which cells count and which of them are positive.

    A cell counts if ``area > size_thresh`` and (no upper cap or ``area < size_thresh_upper``);
    it is positive if its Seg class is positive or (with a marker threshold) ``marker >
    marker_thresh``, unless ``positive`` gives the class (a compartment's, see
    :func:`compartment_positive`). Overrides (validated, keyed by cell id) then apply:
    ``exclude`` removes a cell, ``include`` counts it whatever its size,
    ``positive``/``negative`` count it with that class.

    Returns
    -------
    counted, positive : ndarray, shape (n,), bool
    """
    counted = table.area > size_thresh
    if size_thresh_upper is not None:
        counted &= table.area < size_thresh_upper
    if positive is not None:
        positive = np.asarray(positive, bool).copy()
    else:
        positive = table.positive.copy()
        if marker_thresh is not None:
            positive |= table.marker > marker_thresh
    for cell_id, what in overrides.items():
        counted[cell_id - 1] = what != "exclude"
        if what in ("positive", "negative"):
            positive[cell_id - 1] = what == "positive"
    return counted, positive


def counts(counted: np.ndarray, positive: np.ndarray) -> dict[str, int | float]:
    """``num_total``, ``num_pos``, ``num_neg`` and ``percent_pos`` (rounded to 0.1; 0 if no positive)."""
    num_total = int(np.count_nonzero(counted))
    num_pos = int(np.count_nonzero(counted & positive))
    return {
        "num_total": num_total,
        "num_pos": num_pos,
        "num_neg": num_total - num_pos,
        "percent_pos": round(num_pos / num_total * 100, 1) if num_pos > 0 else 0,
    }


def in_box(centroid_xy: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """(n,) bool: which centroids (pixel centres at integers, (x, y)) lie in the pixels of
    ``box`` = (x, y, width, height): the rule every front end counts a region's cells by."""
    x, y, w, h = box
    cx, cy = centroid_xy[:, 0], centroid_xy[:, 1]
    return (cx >= x - 0.5) & (cx < x + w - 0.5) & (cy >= y - 0.5) & (cy < y + h - 0.5)


def in_polygons(centroid_xy: np.ndarray, polygons: Sequence[tuple[np.ndarray, Sequence[np.ndarray]]]) -> np.ndarray:
    """(n,) bool: which centroids ((x, y), pixel centres at integers) lie in any of
    ``polygons``, each ``(exterior, holes)`` of (k, 2) ``(x, y)`` vertices in the same
    coordinates; a centroid in a hole is outside. The ROI rule of every front end."""
    from skimage.measure import points_in_poly

    inside = np.zeros(len(centroid_xy), bool)
    if not len(centroid_xy):
        return inside
    for exterior, holes in polygons:
        hit = points_in_poly(centroid_xy, np.asarray(exterior, float))
        for hole in holes:
            hit &= ~points_in_poly(centroid_xy, np.asarray(hole, float))
        inside |= hit
    return inside


def region_cells(table: CellTable, region: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, float]:
    """Cells whose centroid lies in an ROI, and the ROI's area.

    Parameters
    ----------
    region : ndarray
        Either a polygon, shape (k, 2), of ``(x, y)`` vertices (k >= 3) inside the image extent
        [-0.5, W - 0.5] x [-0.5, H - 0.5]; a cell is in it if its centroid (float) is; or a
        bool mask of shape (H, W); a cell is in it if the pixel of its rounded centroid is.
    shape : (H, W)
        Image size in pixels.

    Returns
    -------
    inside : ndarray, shape (n,), bool
    area : float
        ROI area in pixels (polygon area, or pixels of the mask).

    Raises
    ------
    InputImageError
        For an ROI that is empty, outside the image, or neither a polygon nor a mask.
    """
    region = np.asarray(region)
    height, width = shape
    if region.dtype == bool:
        if region.shape != (height, width):
            raise InputImageError(f"ROI mask is {region.shape}; it must match the image, {shape}")
        area = float(np.count_nonzero(region))
        if area == 0:
            raise InputImageError("ROI mask is empty (no pixel selected)")
        y, x = table.centroid_pixel.T
        return region[y, x], area
    if region.ndim != 2 or region.shape[1] != 2 or region.shape[0] < 3 \
            or not np.issubdtype(region.dtype, np.number) or not np.isfinite(region).all():
        raise InputImageError(
            f"ROI must be a (k, 2) polygon of (x, y) vertices (k >= 3) or an H x W bool mask,"
            f" got an array of shape {region.shape} and dtype {region.dtype}")
    x, y = region[:, 0].astype(np.float64), region[:, 1].astype(np.float64)
    outside = (x < -0.5) | (x > width - 0.5) | (y < -0.5) | (y > height - 0.5)
    if outside.any():
        i = int(np.argmax(outside))
        raise InputImageError(
            f"ROI vertex (x={x[i]:g}, y={y[i]:g}) lies outside the {width} x {height} px image;"
            " clip the ROI to the image")
    area = 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))
    if area == 0:
        raise InputImageError("ROI polygon has zero area")
    return points_in_poly(table.centroid_xy, np.column_stack([x, y])), area


def intensity_classes(values: np.ndarray, counted: np.ndarray, positive: np.ndarray,
                      thresholds: tuple[float, float]) -> dict[str, int | float]:
    """Intensity classes of the counted positive cells and the H-score.

    A positive cell is 3+ if ``value > thresholds[1]``, else 2+ if ``value > thresholds[0]``,
    else 1+; negative cells are 0. H-score = (1 * n1+ + 2 * n2+ + 3 * n3+) / num_total * 100,
    from 0 to 300, rounded to 0.1 (0 without cells).

    Parameters
    ----------
    values : ndarray, shape (n,)
        What is binned, per cell: the marker value (0-255, ``table.marker``) or a
        compartment's DAB OD.
    thresholds : (number, number)
        Values above which a positive cell is 2+ and 3+; the first must not exceed the second.
    """
    low, high = thresholds
    if not low <= high:
        raise InputImageError(f"intensity thresholds must satisfy 2+ <= 3+, got {thresholds}")
    binned = np.asarray(values)[counted & positive]
    n3 = int(np.count_nonzero(binned > high))
    n2 = int(np.count_nonzero(binned > low)) - n3
    n1 = binned.size - n2 - n3
    total = int(np.count_nonzero(counted))
    return {
        "num_1plus": n1, "num_2plus": n2, "num_3plus": n3,
        "h_score": round((n1 + 2 * n2 + 3 * n3) / total * 100, 1) if total else 0,
    }


def check_compartment(compartment: str, positive_od: float, bins_od: tuple[float, float] | None,
                      min_completeness: float | None) -> None:
    """Raise :class:`InputImageError` unless these compartment-scoring settings make sense:
    a known compartment, finite ODs with ``positive_od <= bins_od[0] <= bins_od[1]``, a
    completeness from 0 to 1; bins and completeness only with a compartment."""
    if compartment not in COMPARTMENTS:
        raise InputImageError(f"compartment must be one of {COMPARTMENTS}, got {compartment!r}")
    if not _is_number(positive_od):
        raise InputImageError(f"positive_od must be a DAB OD (a number), got {positive_od!r}")
    pair = isinstance(bins_od, (tuple, list)) and len(bins_od) == 2 and all(_is_number(t) for t in bins_od)
    if bins_od is not None and not (pair and positive_od <= bins_od[0] <= bins_od[1]):
        raise InputImageError(f"bins_od must be two DAB ODs (2+, 3+) with positive_od ({positive_od}) <= 2+ <= 3+,"
                              f" got {bins_od!r}")
    if min_completeness is not None and not (_is_number(min_completeness) and 0 <= min_completeness <= 1):
        raise InputImageError(f"min_completeness must be a fraction from 0 to 1, got {min_completeness!r}")
    if compartment == "class" and (bins_od is not None or min_completeness is not None):
        raise InputImageError("bins_od and min_completeness score a compartment's DAB OD: choose a compartment"
                              " (nucleus, cytoplasm, membrane or cell) or leave them None")


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) \
        and math.isfinite(value)


def compartment_positive(values: np.ndarray, positive_od: float, completeness: np.ndarray | None = None,
                         min_completeness: float | None = None) -> np.ndarray:
    """(n,) bool: cells whose compartment DAB OD is above ``positive_od`` (an empty
    compartment, NaN, is negative) and, with ``min_completeness``, whose membrane
    ``completeness`` (fraction of the ring above ``positive_od``) is at least that."""
    with np.errstate(invalid="ignore"):
        positive = np.asarray(values) > positive_od
        if min_completeness is not None:
            positive &= np.asarray(completeness) >= min_completeness
    return positive


def density(num_pos: int, area_px: float, microns_per_pixel: float) -> dict[str, float]:
    """``area_mm2`` and positive cells per mm^2 (``pos_per_mm2``, rounded to 0.1).

    Parameters
    ----------
    area_px : float
        Region area in pixels.
    microns_per_pixel : float
        Pixel size in µm/px (square pixels).
    """
    if not microns_per_pixel > 0 or not math.isfinite(microns_per_pixel):
        raise InputImageError(f"pixel size must be a positive number of µm/px, got {microns_per_pixel!r}")
    area_mm2 = area_px * (microns_per_pixel / 1000) ** 2
    return {"area_mm2": area_mm2, "pos_per_mm2": round(num_pos / area_mm2, 1)}
