"""Detect points in a region of an image: the region path of the ``points`` model type.

As for cells (:mod:`napari_deepliif.regions.score`), the region is computed on the whole
image's plan, so its heat maps are the whole image's there. Candidates are found and selected in
a window: first the region grown by twice the suppression distance plus one pixel. Whether a
candidate in the region is kept rests on a chain of stronger candidates within the distance of
one another (:func:`~napari_deepliif.cells.detections.deciders`); where that chain comes within
the distance plus one pixel of a window side inside the image
(:func:`~napari_deepliif.cells.detections.decided_inside`), the margin is doubled and the
window run again, until the chain stays inside or the window is the whole image. The region's
points are thus the whole image's there, however long the chain. A point counts when it lies
in the region (:func:`~napari_deepliif.cells.scoring.in_box`) and, given ROI polygons, in one
of them (:func:`~napari_deepliif.cells.scoring.in_polygons`, the rule a cell's centroid follows).

A new threshold or distance re-selects from the window's candidates
(:meth:`PointsResult.rescore`) without running the network; the result says whether the
window still settles the region's points at the new settings (:attr:`PointsResult.exact`):
where it does not, only a new run of the region gives the whole image's points.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from napari_deepliif import __version__
from napari_deepliif.cells.detections import (
    PointDetections,
    Window,
    decided_inside,
    detect_points,
)
from napari_deepliif.cells.scoring import in_box, in_polygons
from napari_deepliif.constants import MICRONS_PER_PIXEL_BY_RESOLUTION
from napari_deepliif.engine.points import PointsEngine
from napari_deepliif.errors import DeepLIIFError
from napari_deepliif.io.placement import Placement
from napari_deepliif.io.score_format import placement, score_record
from napari_deepliif.progress import CancelCheck, ProgressCallback
from napari_deepliif.regions.infer import CHUNK_SIZE, Include
from napari_deepliif.regions.score import infer_window
from napari_deepliif.resolution import resolve_resolution
from napari_deepliif.rgb import check_rgb


@dataclass(frozen=True, eq=False)
class PointsResult:
    """Points found in a region of an image.

    Attributes
    ----------
    window_points : PointDetections
        Points of the window (window pixels); :attr:`detections` are those in the region.
    heatmaps : ndarray, shape (classes, H, W)
        The window's heat maps (confidences 0..1).
    mpp : float
        Pixel size (µm/px) that turns ``min_distance_um`` into pixels.
    provenance : dict
        ``engine``, ``model``, ``model_hash``, ``version``, ``resolution``, ``statistics``.
    origin : (int, int)
        ``(x, y)`` of the window's top-left pixel in the image.
    region : (int, int, int, int)
        ``(x, y, width, height)`` of the region, in image pixels.
    rois : list of (exterior, holes), optional
        ROI polygons in image pixels (pixel centres at integers): only points in one count.
    image_shape : (int, int), optional
        (height, width) of the image the window lies in; default the window's own.
    """

    window_points: PointDetections
    heatmaps: np.ndarray
    mpp: float
    provenance: dict[str, Any] = field(default_factory=dict)
    origin: tuple[int, int] = (0, 0)
    region: tuple[int, int, int, int] = (0, 0, 0, 0)
    rois: Sequence[tuple[np.ndarray, Sequence[np.ndarray]]] | None = None
    image_shape: tuple[int, int] | None = None

    @property
    def exact(self) -> bool:
        """Whether the region's points are the whole image's there at this result's settings;
        False after a :meth:`rescore` whose chains of suppression reach past the window (run
        the region again)."""
        height, width = self.heatmaps.shape[1:]
        window = (self.origin[1], self.origin[1] + height, self.origin[0], self.origin[0] + width)
        return region_settled(self.window_points, self.region, window, self.image_shape or (height, width))

    @property
    def min_distance_um(self) -> float:
        """Suppression distance in µm."""
        return self.window_points.min_distance * self.mpp

    @property
    def detections(self) -> PointDetections:
        """The points in the region and its ROIs (window pixels), strongest first."""
        x, y, w, h = self.region
        inside = in_box(self.window_points.xy, (x - self.origin[0], y - self.origin[1], w, h))
        found = replace(self.window_points, index=self.window_points.index[inside])
        return in_rois(found, self.rois, self.origin) if self.rois else found

    @property
    def scoring(self) -> dict:
        """Counts of the region's points in the score's keys (thresholds of cells: None), with
        ``classes`` (points per class name), ``positive_classes`` (the names counted in
        ``num_pos``, so a client that drops points can recount), ``threshold`` and
        ``min_distance_um``."""
        return points_scoring(self.detections, self.mpp)

    @property
    def roi_scores(self) -> list[dict]:
        """The score (:attr:`scoring`'s keys) of the region's points in each ROI polygon."""
        return [points_scoring(in_rois(self.detections, [roi], self.origin), self.mpp) for roi in self.rois or ()]

    def rescore(self, *, threshold: float | None = None, min_distance_um: float | None = None) -> PointsResult:
        """The points at another confidence threshold or distance, without the network."""
        distance = None if min_distance_um is None else min_distance_um / self.mpp
        return replace(self, window_points=self.window_points.reselect(threshold=threshold, min_distance=distance))

    def placement(self, level_origin: tuple[float, float] = (0, 0), downsample: float = 1.0) -> Placement:
        """Where the window's pixels lie in the full-resolution image (see
        :meth:`napari_deepliif.regions.score.ScoreResult.placement`)."""
        return Placement((level_origin[0] + self.origin[0], level_origin[1] + self.origin[1]), downsample)

    def record(self, *, image: str | None, level: int = 0, downsample: float = 1.0, mpp: float | None = None,
               level_origin: tuple[float, float] = (0, 0)) -> dict:
        """The score record of the region's points (``run`` holds the threshold and distance)."""
        place = self.placement(level_origin, downsample)
        x, y, w, h = self.region
        region = ((level_origin[0] + x) * downsample, (level_origin[1] + y) * downsample, w * downsample, h * downsample)
        where = placement(image=image, resolution=self.provenance["resolution"], shape=self.heatmaps.shape[1:],
                          level=level, downsample=downsample, mpp=mpp, origin=place.corner, region=region)
        scoring = self.scoring
        return score_record(scoring, placement=where, provenance=self.provenance,
                            run={"threshold": scoring["threshold"], "min_distance_um": scoring["min_distance_um"]})


def in_rois(detections: PointDetections, rois: Sequence[tuple[np.ndarray, Sequence[np.ndarray]]],
            origin: tuple[float, float] = (0, 0)) -> PointDetections:
    """The points that lie in one of ``rois`` (holes excluded): the rule a cell's centroid
    follows (:func:`~napari_deepliif.cells.scoring.in_polygons`), for every front end.

    Parameters
    ----------
    detections : PointDetections
        Points in pixels whose ``(0, 0)`` is at ``origin`` of the image.
    rois : list of (exterior, holes)
        Polygons, ``(k, 2)`` ``(x, y)`` vertices in image pixels (pixel centres at integers).
    origin : (x, y)
        Where the points' pixel ``(0, 0)`` lies in the image.
    """
    inside = in_polygons(detections.xy + np.asarray(origin, float), rois)
    return replace(detections, index=detections.index[inside])


def points_scoring(found: PointDetections, mpp: float) -> dict:
    """The score of ``found`` (see :attr:`PointsResult.scoring`); ``mpp`` (µm/px) turns the
    suppression distance into µm."""
    counts = found.scoring()
    names = found.candidates.class_names
    return {**{k: counts[k] for k in ("num_total", "num_pos", "num_neg", "percent_pos")},
            "seg_thresh": None, "size_thresh": None, "size_thresh_upper": None, "marker_thresh": None,
            "classes": found.counts(), "positive_classes": [names[i] for i in found.candidates.positive_classes],
            "threshold": found.threshold, "min_distance_um": found.min_distance * mpp}


def region_settled(found: PointDetections, region: tuple[int, int, int, int], window: Window,
                   shape: tuple[int, int]) -> bool:
    """Whether the points ``found`` in ``window`` (``(y0, y1, x0, x1)`` of an image of ``shape``)
    select the candidates of ``region`` (``(x, y, width, height)``, image pixels) as the whole
    image does (:func:`~napari_deepliif.cells.detections.decided_inside`)."""
    x, y, w, h = region
    start = in_box(found.candidates.xy, (x - window[2], y - window[0], w, h))
    open_sides = (window[0] > 0, window[1] < shape[0], window[2] > 0, window[3] < shape[1])
    return decided_inside(found, start, open_sides)


def detect_in_region(
    read: Callable[[Window], np.ndarray],
    shape: tuple[int, int],
    region: tuple[int, int, int, int],
    class_names: Sequence[str],
    positive_classes: Sequence[int],
    *,
    threshold: float,
    min_distance: float,
) -> tuple[PointDetections, np.ndarray, Window]:
    """The whole image's selection of points in ``region``, from the heat maps of windows around it.

    The first window grows the region by ``2 * ceil(min_distance) + 1`` pixels; while the
    region's points are not settled in it (:func:`region_settled`), the margin doubles.

    Parameters
    ----------
    read : callable((y0, y1, x0, x1)) -> ndarray, shape (C, h, w)
        The image's heat maps in a window (the whole image's values there).
    shape : (int, int)
        (height, width) of the image.
    region : (x, y, width, height)
        In image pixels.
    class_names, positive_classes, threshold, min_distance
        As :func:`~napari_deepliif.cells.detections.detect_points` (distance in pixels).

    Returns
    -------
    (PointDetections, ndarray, (y0, y1, x0, x1))
        The window's points (window pixels), its heat maps, and the window.
    """
    x, y, w, h = region
    margin = 2 * math.ceil(min_distance) + 1
    while True:
        window = (max(0, y - margin), min(shape[0], y + h + margin), max(0, x - margin), min(shape[1], x + w + margin))
        heatmaps = read(window)
        found = detect_points(heatmaps, class_names, positive_classes, threshold=threshold, min_distance=min_distance)
        if window == (0, shape[0], 0, shape[1]) or region_settled(found, region, window, shape):
            return found, heatmaps, window
        margin *= 2


def selection(engine: PointsEngine, resolution: str, mpp: float | None, threshold: float | None,
              min_distance_um: float | None) -> tuple[float, float, float]:
    """How points are selected at a pixel size: ``(pixel size µm/px, threshold, suppression
    distance in pixels)``, the card's threshold and distance unless given; the pixel size is
    ``mpp``, else the magnification's nominal one."""
    pixel = float(mpp) if mpp is not None else MICRONS_PER_PIXEL_BY_RESOLUTION[resolution]
    card = engine.card
    threshold = card.threshold if threshold is None else threshold
    return pixel, threshold, (card.min_distance_um if min_distance_um is None else min_distance_um) / pixel


def detect_region(
    engine: PointsEngine,
    image: Any,
    *,
    region: tuple[int, int, int, int] | None = None,
    rois: Sequence[tuple[np.ndarray, Sequence[np.ndarray]]] | None = None,
    resolution: str | None = None,
    mpp: float | None = None,
    threshold: float | None = None,
    min_distance_um: float | None = None,
    include: Include | None = None,
    chunk_size: int = CHUNK_SIZE,
    progress: ProgressCallback | None = None,
    cancel: CancelCheck | Any | None = None,
) -> PointsResult:
    """Points in ``region`` of ``image`` (see module docstring).

    Parameters
    ----------
    engine : PointsEngine
    image : array-like, shape (H, W, 3), uint8
        The whole image or pyramid level; only the region's window is read.
    region : (x, y, width, height), optional
        In pixels of ``image``; default all of it.
    rois : list of (exterior, holes), optional
        ROI polygons, ``(k, 2)`` ``(x, y)`` vertices in pixels of ``image`` (pixel centres at
        integers): only the region's points that lie in one count.
    resolution, mpp
        Magnification of ``image`` or its pixel size (µm/px); ``mpp`` also converts the
        distance (default: the magnification's nominal pixel size).
    threshold, min_distance_um : float, optional
        Confidence threshold and suppression distance (µm); default the model card's.
    include, chunk_size, progress, cancel
        As :func:`napari_deepliif.regions.score.score_region`.
    """
    if not isinstance(engine, PointsEngine):
        raise DeepLIIFError(f"points need a 'points' model; the {engine.name} engine finds cells")
    source = check_rgb(image)
    res = resolve_resolution(resolution, mpp)
    height, width = int(source.shape[0]), int(source.shape[1])
    x, y, w, h = (0, 0, width, height) if region is None else (int(v) for v in region)
    if w <= 0 or h <= 0 or x < 0 or y < 0 or x + w > width or y + h > height:
        raise DeepLIIFError(f"region {region} (x, y, width, height) is empty or lies outside the {width} x {height} image")
    pixel, threshold, distance = selection(engine, res, mpp, threshold, min_distance_um)
    statistics = engine.statistics(source, res, include=include, cancel=cancel)

    def read(window: Window) -> np.ndarray:
        return engine.heatmaps(infer_window(engine, source, res, engine.outputs, window, include, statistics,
                                            chunk_size, progress, cancel))

    try:
        found, heatmaps, window = detect_in_region(read, (height, width), (x, y, w, h), engine.card.class_names,
                                                   engine.card.positive_classes, threshold=threshold,
                                                   min_distance=distance)
    except ValueError as exc:
        raise DeepLIIFError(str(exc)) from None
    provenance = {"engine": engine.name, "model": engine.model_name, "model_hash": engine.model_hash,
                  "version": __version__, "resolution": res, "statistics": statistics}
    return PointsResult(found, heatmaps, pixel, provenance, (window[2], window[0]), (x, y, w, h),
                        None if rois is None else list(rois), (height, width))
