"""One cell table for a whole slide, found chunk by chunk from the Seg map in the store.

Merging rule: the image is cut into core squares; each core is read with a margin around it
and its cells are found there (:func:`napari_deepliif.cells.find.find_cells`, the reference's
rules). A cell is kept by the chunk whose core holds its first pixel (raster order), so
every cell is kept exactly once. A cell's table row depends only on its own pixels and
holes, so a cell that does not touch its window's edge is found exactly as a single pass
over the whole image finds it. A cell that does touch it (larger than the margin) may be
cut there: it is found again in a window grown around it until it no longer touches that
window's edge (:func:`whole_cell`), and kept by the window whose core holds its true first
pixel. So the table equals a single pass over the whole image, whatever the cells' size;
ids are then given in raster order of first pixels, as a single pass gives them.

With the IHC image (:class:`~napari_deepliif.slides.measurements.Measuring`), each kept cell
is measured in the window it was kept from when that window holds its whole neighbourhood
(:func:`~napari_deepliif.slides.measurements.exact_rows`), else in a window grown around it
(:func:`~napari_deepliif.slides.windows.measured_cell`), so its measurements, too, are a single
pass's; then the cells can be scored on a compartment's DAB OD as the region core scores them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from napari_deepliif.cells.classmap import class_counts
from napari_deepliif.cells.find import CellTable, touches_window_edge
from napari_deepliif.cells.measure import COMPARTMENT_COLUMNS, MEMBRANE_COMPLETENESS
from napari_deepliif.cells.postprocess import Settings
from napari_deepliif.cells.scoring import (
    Override,
    check_overrides,
    classify,
    compartment_positive,
    counts,
    default_size_threshold,
    in_box,
    intensity_classes,
)
from napari_deepliif.constants import (
    CLASSES,
    MARKER_RANGE_PERCENTILES,
    MARKER_THRESH_FRACTION,
    SEG,
)
from napari_deepliif.engine.base import EngineBase
from napari_deepliif.errors import InputImageError
from napari_deepliif.resolution import tile_size_for
from napari_deepliif.slides.measurements import Measuring
from napari_deepliif.slides.readers import ChannelsLast
from napari_deepliif.slides.windows import (
    ClassMap,
    Window,
    measured_cell,
    measured_rows,
    whole_cell,
    window_cells,
    windows,
)

log = logging.getLogger(__name__)

#: Core edge of the cell-finding chunks (pixels).
CELL_CHUNK = 2048


def default_margin(resolution: str) -> int:
    """Context read around each core: half a tile (256/128/64 px at 40x/20x/10x)."""
    return tile_size_for(resolution) // 2


def marker_threshold_from_histogram(histogram: np.ndarray) -> int:
    """:func:`scoring.default_marker_threshold` from a 256-bin histogram of marker values
    (exactly: numpy's linear percentile of the sorted non-zero values)."""
    values = np.asarray(histogram, dtype=np.int64).copy()
    values[0] = 0
    n = int(values.sum())
    if n == 0:
        return 0
    cumulative = np.cumsum(values)

    def percentile(q: float) -> float:
        position = (n - 1) * (q / 100)
        lo, frac = int(np.floor(position)), position - np.floor(position)
        v_lo = int(np.searchsorted(cumulative, lo, side="right"))
        v_hi = int(np.searchsorted(cumulative, min(lo + 1, n - 1), side="right"))
        return v_lo + frac * (v_hi - v_lo)

    low, high = (round(percentile(q)) for q in MARKER_RANGE_PERCENTILES)
    return round((high - low) * MARKER_THRESH_FRACTION) + low


@dataclass(frozen=True, eq=False)
class SlideCells:
    """Cells and score of a whole slide (or region), merged over chunks.

    Attributes
    ----------
    table : CellTable
        Coordinates in pixels of the image scored (the chosen level, or the region).
    first_pixel : ndarray, shape (n, 2), int64
        ``(y, x)`` of each cell's first pixel in raster order.
    shape : (int, int)
        (H, W) of the image scored.
    marker_histogram : ndarray, shape (256,), int64
        Counts of marker values (max of R, G, B) over the image; None without a Marker.
    settings : Settings
        Postprocessing settings as asked for.
    regrown : int
        Cells found again in a grown window (larger than the margin; see module docstring).
    overrides, counted, positive, scoring
        As :class:`napari_deepliif.cells.postprocess.PostprocessResult`.
    measurements : dict of str to ndarray, optional
        Stain measurements (QuPath names, one value per cell, membrane completeness at the
        settings' ``positive_od``); None when the cells were not measured.
    """

    table: CellTable
    first_pixel: np.ndarray
    shape: tuple[int, int]
    marker_histogram: np.ndarray | None
    settings: Settings
    regrown: int = 0
    overrides: dict[int, Override] = field(default_factory=dict)
    counted: np.ndarray = field(default=None, repr=False)
    positive: np.ndarray = field(default=None, repr=False)
    scoring: dict = field(default_factory=dict)
    measurements: dict[str, np.ndarray] | None = field(default=None, repr=False)

    def measurement_columns(self) -> dict[str, np.ndarray]:
        """QuPath-style name -> (n,) value per cell (table order); empty when not measured
        (as :meth:`napari_deepliif.cells.postprocess.PostprocessResult.measurement_columns`)."""
        return dict(self.measurements or {})

    def rescore(self, **changes: Any) -> SlideCells:
        """Change ``size_thresh``, ``size_thresh_upper``, ``marker_thresh``, ``overrides`` or,
        for measured cells, ``compartment``, ``bins_od`` and ``min_completeness`` (table only;
        a new ``seg_thresh``, expansion, ring width or ``positive_od`` needs
        :func:`find_slide_cells` again)."""
        overrides = changes.pop("overrides", self.overrides)
        for name in ("seg_thresh", "expansion_um", "membrane_um", "positive_od"):
            if name in changes and changes[name] != getattr(self.settings, name):
                raise InputImageError(f"a new {name} changes the cells or their measurements: run find_slide_cells"
                                      " again")
        return _scored(replace(self, settings=replace(self.settings, **changes)), overrides)


def compartment_values(cells: SlideCells) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The compartment's DAB OD per cell and which cells are positive on it (the settings'
    ``positive_od`` and ``min_completeness``); (None, None) in the class mode.

    Raises
    ------
    InputImageError
        In a compartment mode for cells that were not measured.
    """
    settings = cells.settings
    if settings.compartment == "class":
        return None, None
    if cells.measurements is None:
        raise InputImageError("compartment scoring needs the cells' stain measurements: find the slide's cells"
                              " with the IHC image (find_slide_cells(..., measuring=...))")
    values = cells.measurements[COMPARTMENT_COLUMNS[settings.compartment]]
    completeness = None if settings.min_completeness is None else cells.measurements[MEMBRANE_COMPLETENESS]
    return values, compartment_positive(values, settings.positive_od, completeness, settings.min_completeness)


def _default_size(cells: SlideCells, members: np.ndarray) -> int:
    """The ``'default'`` size threshold of the cells ``members``: the reference's rule for a
    Seg map's cells, 0 for a class map's (as the region core)."""
    if cells.table.cell_class is not None:
        return 0
    return default_size_threshold(cells.table.area[members], cells.settings.resolution)


def _scored(cells: SlideCells, overrides: dict | None) -> SlideCells:
    settings = cells.settings.checked(cells.marker_histogram is not None)
    cells = replace(cells, settings=settings)
    checked = check_overrides(overrides, len(cells.table))
    values, by_compartment = compartment_values(cells)
    # in a compartment mode the compartment's DAB OD decides and the marker is not used
    marker_thresh = None if by_compartment is not None else settings.marker_thresh
    thresholds = replace(settings, marker_thresh=marker_thresh).resolved(
        lambda: _default_size(cells, np.ones(len(cells.table), bool)),
        lambda: marker_threshold_from_histogram(cells.marker_histogram))
    counted, positive = classify(cells.table, thresholds["size_thresh"], thresholds["size_thresh_upper"],
                                 thresholds["marker_thresh"], checked, by_compartment)
    scoring = {**counts(counted, positive), **thresholds, **class_counts(cells.table, counted),
               **settings.compartment_scoring()}
    if settings.bins_od is not None:
        scoring.update(intensity_classes(values, counted, positive, settings.bins_od))
    return replace(cells, overrides=checked, counted=counted, positive=positive, scoring=scoring)


def region_classes(cells: SlideCells, box: tuple[int, int, int, int], marker: Any | None,
                   inside: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Which cells count and are positive when the region ``box`` (x, y, width, height) of the
    image scored is scored on its own, as every front end scores a region: only cells whose
    centroid lies in it count, and default thresholds come from its cells and its Marker.

    Parameters
    ----------
    cells : SlideCells
    box : (x, y, width, height)
        Pixels of the image scored.
    marker : array-like, shape (H, W, 3), optional
        The Marker (for a default marker threshold).
    inside : ndarray, shape (n,), bool, optional
        The cells in the region's ROI polygons (:func:`~napari_deepliif.cells.scoring.in_polygons`).
    """
    members = in_box(cells.table.centroid_xy, box)
    if inside is not None:
        members &= inside
    histogram = None
    if cells.settings.marker_thresh == "default" and cells.settings.compartment == "class" and marker is not None:
        x, y, w, h = box
        histogram = np.bincount(np.asarray(marker[y : y + h, x : x + w]).max(axis=-1).ravel(), minlength=256)
    settings = cells.settings
    _, by_compartment = compartment_values(cells)
    marker_thresh = None if by_compartment is not None else settings.marker_thresh
    thresholds = replace(settings, marker_thresh=marker_thresh).resolved(
        lambda: _default_size(cells, members), lambda: marker_threshold_from_histogram(histogram))
    counted, positive = classify(cells.table, thresholds["size_thresh"], thresholds["size_thresh_upper"],
                                 thresholds["marker_thresh"], cells.overrides, by_compartment)
    return counted & members, positive


def _shifted_centroids(table: CellTable, rows: np.ndarray, window: Window) -> np.ndarray:
    """Centroids moved to image coordinates exactly as one pass computes them: the integer
    coordinate sums are shifted, then divided by the area."""
    area = table.area[rows][:, None]
    sums = np.rint(table.centroid[rows] * area).astype(np.int64) + np.array([window[0], window[2]]) * area
    return sums / area


def _rows(table: CellTable, rows: np.ndarray, first: np.ndarray, window: Window) -> dict[str, np.ndarray]:
    """Table rows ``rows`` of a window moved to image coordinates (``first``: their first
    pixels in image coordinates)."""
    return {"first": first, "area": table.area[rows], "centroid": _shifted_centroids(table, rows, window),
            "bbox": table.bbox[rows] + (window[0], window[2], window[0], window[2]),
            "n_positive_px": table.n_positive_px[rows], "n_negative_px": table.n_negative_px[rows],
            "positive": table.positive[rows], "marker": table.marker[rows],
            **({} if table.cell_class is None else {"cell_class": table.cell_class[rows]})}


def find_slide_cells(
    seg: Any,
    marker: Any | None = None,
    *,
    settings: Settings,
    core: int = CELL_CHUNK,
    margin: int | None = None,
    measuring: Measuring | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> SlideCells:
    """Cells and score of a large Seg map read window by window (see module docstring).

    Parameters
    ----------
    seg, marker : array-like, shape (H, W, 3), uint8
        Seg map and Marker (numpy, zarr, ...; :func:`store_arrays` gives a store's).
    settings : Settings
        Resolution and thresholds (see :func:`napari_deepliif.cells.postprocess.postprocess`).
    core, margin : int
        Core edge and context in pixels (margin default: :func:`default_margin`).
    measuring : Measuring, optional
        The IHC image and measurement settings: each cell gets its stain measurements
        (needed to score on a compartment, ``settings.compartment``).
    progress : callable(done, total), optional
        Windows done and in all.

    Raises
    ------
    InputImageError
        For invalid settings, or a compartment mode without ``measuring``.
    """
    settings = settings.checked(marker is not None)
    if settings.compartment != "class" and measuring is None:
        raise InputImageError(f"scoring on the {settings.compartment} needs the cells' stain measurements: pass"
                              " measuring= (the IHC image the engine read)")
    shape = (int(seg.shape[0]), int(seg.shape[1]))
    margin = default_margin(settings.resolution) if margin is None else margin
    boxes = list(windows(shape, core, margin))
    parts: list[dict[str, np.ndarray]] = []
    histogram = np.zeros(256, np.int64) if marker is not None else None
    suspects: list[tuple[tuple[int, int], np.ndarray]] = []
    for done, (inner, window) in enumerate(boxes):
        cells, pixels = window_cells(seg, marker, window, settings.seg_thresh)
        first = cells.first_pixels() + (window[0], window[2])
        own = ((first[:, 0] >= inner[0]) & (first[:, 0] < inner[1])
               & (first[:, 1] >= inner[2]) & (first[:, 1] < inner[3]))
        cut = own & touches_window_edge(cells.table.bbox, window, shape)
        t = cells.table
        keep = own & ~cut
        parts.append(_rows(t, keep, first[keep], window))
        if measuring is not None:
            parts[-1]["measurements"] = measured_rows(seg, marker, measuring, cells, np.flatnonzero(keep), first[keep],
                                                       window, shape, margin, settings.seg_thresh)
        for row in np.flatnonzero(cut):
            suspects.append(((int(first[row, 0]), int(first[row, 1])),
                             t.bbox[row] + (window[0], window[2], window[0], window[2])))
        if histogram is not None:
            iy, ix = inner[0] - window[0], inner[2] - window[2]
            core_marker = pixels.marker[iy : iy + inner[1] - inner[0], ix : ix + inner[3] - inner[2]]
            histogram += np.bincount(core_marker.ravel(), minlength=256)
        if progress:
            progress(done + 1, len(boxes))
    # cells cut by their window: each found whole, kept once, by its true first pixel
    kept = {tuple(f) for part in parts for f in part["first"].tolist()}
    for seed, bbox in suspects:
        cells, row, window = whole_cell(seg, marker, seed, bbox, shape, margin, settings.seg_thresh)
        true_first = cells.first_pixels()[row] + (window[0], window[2])
        if tuple(true_first.tolist()) in kept:
            continue
        kept.add(tuple(true_first.tolist()))
        rows = np.zeros(len(cells.table), bool)
        rows[row] = True
        parts.append(_rows(cells.table, rows, true_first[None], window))
        if measuring is not None:
            parts[-1]["measurements"] = {name: np.array([value]) for name, value in measured_cell(
                seg, marker, measuring, seed, bbox, shape, margin, settings.seg_thresh).items()}
    measured = [p.pop("measurements") for p in parts] if measuring is not None else None
    merged = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    order = np.lexsort((merged["first"][:, 1], merged["first"][:, 0]))
    merged = {k: v[order] for k, v in merged.items()}
    columns = None if measured is None else {name: np.concatenate([m[name] for m in measured])[order]
                                             for name in measured[0]}
    n = len(order)
    table = CellTable(id=np.arange(1, n + 1, dtype=np.uint32), area=merged["area"], centroid=merged["centroid"],
                      bbox=merged["bbox"], n_positive_px=merged["n_positive_px"],
                      n_negative_px=merged["n_negative_px"], positive=merged["positive"], marker=merged["marker"],
                      cell_class=merged.get("cell_class"),
                      class_names=seg.class_names if isinstance(seg, ClassMap) else None,
                      positive_classes=tuple(seg.positive_classes) if isinstance(seg, ClassMap) else None)
    if suspects:
        log.info("%d cell pieces reached a window edge (cells over %d px); each was found whole in a grown window",
                 len(suspects), margin)
    cells = SlideCells(table, merged["first"], shape, histogram, settings, len(suspects), measurements=columns)
    return _scored(cells, None)


def global_ids(cells: SlideCells, first: np.ndarray) -> np.ndarray:
    """Slide cell id of each first pixel ``(y, x)`` given (0 where no slide cell starts there)."""
    width = cells.shape[1]
    keys = cells.first_pixel[:, 0] * width + cells.first_pixel[:, 1]
    wanted = first[:, 0] * width + first[:, 1]
    index = np.clip(np.searchsorted(keys, wanted), 0, max(len(keys) - 1, 0))
    found = (keys[index] == wanted) if len(keys) else np.zeros(len(wanted), bool)
    return np.where(found, cells.table.id[index] if len(keys) else 0, 0).astype(np.uint32)


def store_arrays(root: Any, engine: EngineBase | None = None) -> tuple[Any, Any | None]:
    """What a result store's cells are found from, at level 0: Seg and Marker (or None) as
    H x W x 3 array-likes; for an engine with classes (a class-map model) its
    :class:`ClassMap` and None."""
    if engine is not None and engine.class_names is not None:
        return ClassMap(ChannelsLast(root[CLASSES]["0"]), tuple(engine.class_names),
                        tuple(engine.positive_classes)), None
    marker = ChannelsLast(root["Marker"]["0"]) if "Marker" in root else None
    return ChannelsLast(root[SEG]["0"]), marker
