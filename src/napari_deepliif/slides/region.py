"""Score a region of an image file: the path ``score`` and the server's region endpoint share.

The file is opened with the slide readers, the level that gives the magnification asked for
(from the file's pixel size) is read lazily, and the region core scores the region on that
level's own tile grid, with the level's statistics and the slide's tissue mask, as ``batch``
does for the whole slide.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from napari_deepliif.cells.postprocess import Settings
from napari_deepliif.engine.engines import EngineBase
from napari_deepliif.engine.points import PointsEngine
from napari_deepliif.errors import DeepLIIFError, InputImageError
from napari_deepliif.io.placement import Placement
from napari_deepliif.progress import CancelCheck, ProgressCallback
from napari_deepliif.regions.points import PointsResult, detect_region
from napari_deepliif.regions.score import ScoreResult, score_region
from napari_deepliif.rgb import check_input
from napari_deepliif.slides.readers import LevelChoice, open_slide
from napari_deepliif.slides.tissue import tissue_mask


class RegionTooLarge(InputImageError):
    """A region of more pixels than a front end scores at once."""


def score_file_region(
    engine: EngineBase,
    path: str | Path,
    *,
    region: tuple[float, float, float, float] | None = None,
    rois: list[tuple[np.ndarray, list[np.ndarray]]] | None = None,
    resolution: str | None = None,
    mpp: float | None = None,
    settings: Settings | None = None,
    outputs: str = "score",
    tissue: bool = True,
    max_pixels: int | None = None,
    threshold: float | None = None,
    min_distance_um: float | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelCheck | Any | None = None,
) -> tuple[ScoreResult | PointsResult, LevelChoice]:
    """Score ``region`` of the image file ``path`` (see module docstring); a ``points`` model
    finds points instead (:func:`napari_deepliif.regions.points.detect_region`, with its card's
    threshold and distance unless given; ``rois`` keep the points in them).

    Parameters
    ----------
    engine : EngineBase
        From :func:`napari_deepliif.engine.load_engine`.
    path : str or Path
        A PNG, JPEG, TIFF or whole-slide file (:func:`~napari_deepliif.slides.open_slide`).
    region : (x, y, width, height), optional
        In full-resolution pixels; default the whole image.
    rois : list of (exterior, holes), optional
        ROI polygons in full-resolution pixel-edge coordinates (QuPath's): only cells whose
        centroid (a ``points`` model: point) lies in one count.
    resolution : {'40x', '20x', '10x'}, optional
        Magnification to score at; default the file's own (its pixel size), else 40x.
    mpp : float, optional
        Full-resolution pixel size (µm/px) when the file does not state one.
    settings, outputs, progress, cancel
        As :func:`napari_deepliif.regions.score.score_region`.
    tissue : bool
        Skip tiles outside the slide's tissue mask (as ``batch`` does; never for an engine of
        fluorescence images).
    max_pixels : int, optional
        Refuse a region of more pixels than this at the level scored (a server's limit).
    threshold, min_distance_um : float, optional
        A ``points`` model's confidence threshold and suppression distance (µm); default
        its card's.

    Raises
    ------
    RegionTooLarge
        The region is larger than ``max_pixels``.
    DeepLIIFError
        The region is empty or lies wholly outside the image.

    Returns
    -------
    (ScoreResult or PointsResult, LevelChoice)
        The result (coordinates in pixels of the level read) and the level read.
    """
    with open_slide(path, mpp=mpp) as slide:
        choice = slide.level_or_default(resolution)
        # the engine's input rule before the tissue mask, which reads RGB
        level = check_input(slide.array(choice), slide.path.name, grey=not engine.brightfield)
        shape = (int(level.shape[0]), int(level.shape[1]))
        if region is not None:
            _check_overlap(region, slide.levels[0].shape)
        box = (0, 0, shape[1], shape[0]) if region is None else choice.box(region, shape)
        if max_pixels is not None and box[2] * box[3] > max_pixels:
            raise RegionTooLarge(
                f"the region is {box[2]} x {box[3]} = {box[2] * box[3]} pixels at {choice.resolution}; at most "
                f"{max_pixels} are scored here: score a smaller region, or the whole slide with napari-deepliif batch")
        include = engine.tissue(lambda: tissue_mask(slide, choice.level0_mpp).includer(choice.downsample)) \
            if tissue else None
        statistics = _level_statistics(engine, Path(path), choice, level, include, include is not None, cancel)
        place = Placement(downsample=choice.downsample)
        level_rois = None if rois is None else place.full_polygons_to_centres(rois)
        if isinstance(engine, PointsEngine):
            result = detect_region(engine, level, region=box, rois=level_rois, resolution=choice.resolution,
                                   mpp=choice.mpp, threshold=threshold, min_distance_um=min_distance_um, include=include,
                                   progress=progress, cancel=cancel)
        else:
            result = score_region(engine, level, region=box, rois=level_rois, resolution=choice.resolution,
                                  mpp=choice.mpp, settings=settings, outputs=outputs, include=include,
                                  statistics=statistics, progress=progress, cancel=cancel)
    return result, choice


def _check_overlap(region: tuple[float, float, float, float], full_shape: tuple[int, int]) -> None:
    """Refuse a region ``(x, y, width, height)`` of level-0 pixels that is empty or misses the
    image (a part outside it is cut off, as a QuPath annotation over the slide's edge is)."""
    x, y, w, h = region
    height, width = full_shape
    if not (w > 0 and h > 0 and x < width and y < height and x + w > 0 and y + h > 0):
        raise DeepLIIFError(f"region {tuple(region)} (x, y, width, height) is empty or lies outside the "
                            f"{width} x {height} image (full-resolution pixels): give one that overlaps it")


#: Whole-level statistics of the last files scored: many regions of one slide (QuPath's
#: annotations) take the stain threshold over the whole level once, not once per region.
_STATISTICS: OrderedDict[tuple, dict] = OrderedDict()
_STATISTICS_KEPT = 16


def _level_statistics(engine: EngineBase, path: Path, choice: LevelChoice, level: Any, include: Any,
                      tissue: bool, cancel: Any) -> dict:
    """The engine's statistics of ``level`` of the file ``path``, kept while the file is unchanged."""
    stat = path.stat()
    key = (engine.name, engine.model_hash, repr(engine), str(path.resolve()), stat.st_size, stat.st_mtime_ns,
           choice, tissue)
    if key not in _STATISTICS:
        _STATISTICS[key] = engine.statistics(level, choice.resolution, include=include, cancel=cancel)
        while len(_STATISTICS) > _STATISTICS_KEPT:
            _STATISTICS.popitem(last=False)
    _STATISTICS.move_to_end(key)
    return _STATISTICS[key]
