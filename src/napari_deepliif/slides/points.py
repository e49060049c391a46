"""Points of a whole slide: a ``points`` model's heat maps in the slide's store -> its points.

The heat maps are computed chunk by chunk into the store like any engine's outputs
(:mod:`napari_deepliif.slides.stream`). Candidates (local maxima) are found window by window,
each window its core grown by one pixel, so each pixel's 3 x 3 neighbourhood is whole
(:func:`~napari_deepliif.cells.detections.find_candidates_by_window`); the selection
(threshold, then suppression within the distance) runs once over all the slide's candidates.
So the slide's points are those one pass over the whole level gives (``score --model``),
whatever the chunk and window sizes, a point at a seam included.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from napari_deepliif.cells.detections import (
    DEFAULT_FLOOR,
    PointDetections,
    find_candidates_by_window,
    select_points,
)
from napari_deepliif.cells.scoring import density
from napari_deepliif.engine.points import HEATMAP, PointsEngine
from napari_deepliif.errors import DeepLIIFError
from napari_deepliif.io.placement import Placement
from napari_deepliif.regions.points import in_rois
from napari_deepliif.slides.export import rings_area
from napari_deepliif.slides.windows import windows

#: Core edge of the windows candidates are found in (pixels of the level scored).
POINTS_CORE = 2048


def slide_points(
    store: str | Path,
    engine: PointsEngine,
    *,
    mpp: float,
    threshold: float,
    min_distance: float,
    core: int = POINTS_CORE,
    progress: Callable[[int, int], None] | None = None,
) -> PointDetections:
    """The points of the heat maps in ``store`` (see module docstring).

    Parameters
    ----------
    store : str or Path
        The slide's OME-Zarr store, its ``Heatmap`` output computed.
    engine : PointsEngine
        The run's engine (its card names the classes).
    mpp : float
        Pixel size of the level scored (µm/px), recorded with the points.
    threshold : float
        Lowest confidence kept.
    min_distance : float
        Suppression distance in pixels of the level scored.
    core : int
        Window core edge (pixels); the points do not depend on it.
    progress : callable(done, total), optional
        Windows done and in all.

    Returns
    -------
    PointDetections
        In pixels of the image scored (the level, or its region).
    """
    import zarr

    heat = zarr.open_group(str(store), mode="r")[HEATMAP]["0"]
    shape = (int(heat.shape[1]), int(heat.shape[2]))

    def read(window: tuple[int, int, int, int]) -> np.ndarray:
        y0, y1, x0, x1 = window
        return engine.heatmaps({HEATMAP: np.moveaxis(np.asarray(heat[:, y0:y1, x0:x1]), 0, -1)})

    card = engine.card
    try:
        candidates = find_candidates_by_window(read, windows(shape, core, 1), shape, card.class_names,
                                               card.positive_classes, floor=min(DEFAULT_FLOOR, threshold),
                                               progress=progress)
        return select_points(candidates, threshold=threshold, min_distance=min_distance)
    except ValueError as exc:
        raise DeepLIIFError(str(exc)) from None


def annotation_points(found: PointDetections, regions: dict[str, Any], place: Placement,
                      mpp: float | None) -> dict[str, dict]:
    """Score of each named region (QuPath annotations, level-0 edge coordinates): its points,
    by the ROI rule of every front end (:func:`~napari_deepliif.regions.points.in_rois`),
    with ``area_mm2`` and ``pos_per_mm2`` when the pixel size is known.

    Parameters
    ----------
    found : PointDetections
        The slide's points (pixels of the image scored).
    regions : dict
        Name -> list of (exterior, holes) polygons (:func:`~napari_deepliif.slides.export.read_annotations`).
    place : Placement
        Where the image scored lies in level 0.
    mpp : float, optional
        Pixel size of the level scored (µm/px).
    """
    result = {}
    for name, polygons in regions.items():
        rings = place.full_polygons_to_centres(polygons)
        inside = in_rois(found, rings)
        scores = {**{k: v for k, v in inside.scoring().items() if k.startswith(("num_", "percent_"))},
                  "classes": inside.counts()}
        area = rings_area(rings)
        if mpp and area > 0:
            scores.update(density(scores["num_pos"], area, mpp))
        result[name] = scores
    return result
