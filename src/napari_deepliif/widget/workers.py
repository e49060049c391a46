"""What the widget runs off the GUI thread: engine loading, scoring and model downloads (no Qt).

The run and download functions take a ``progress(done, total)`` callback and a ``threading.Event``
to cancel; the widget runs them in a ``napari.qt.threading`` worker and relays progress to its bar.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from napari_deepliif.engine.engines import load_engine
from napari_deepliif.engine.points import PointsEngine
from napari_deepliif.errors import Cancelled
from napari_deepliif.models.index import fetch_model
from napari_deepliif.regions.points import PointsResult, detect_region
from napari_deepliif.regions.score import ScoreResult, score_region
from napari_deepliif.rgb import check_input
from napari_deepliif.slides.tissue import levels_tissue

#: Engine choice of the widget for the classical engine (else a model name or folder).
STAIN = "stain"

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class EngineChoice:
    """Which engine to load: ``model`` is ``STAIN`` or a model index name/folder;
    ``dab_threshold`` (the stain engine's, OD) None: the engine's default."""

    model: str
    device: str = "auto"
    precision: str = "fp32"
    dab_threshold: float | None = None


@dataclass(frozen=True)
class RunSpec:
    """One run: the pixels, where they are, and the settings.

    Attributes
    ----------
    image : array-like
        The level read (H x W x 3 uint8; numpy, dask, zarr); only ``rect`` is read.
    rect : (x, y, w, h) or None
        Pixel rectangle of ``image`` to score (None: all of it).
    polygons : list of ndarray
        ROI polygons ``(x, y)`` relative to ``rect``'s origin (empty: no ROIs).
    resolution : str
        ``10x``/``20x``/``40x``.
    outputs : str
        ``all`` or ``score``.
    levels : list of array-like
        Every pyramid level of the layer (level 0 first), for the tissue mask.
    level : int
        The level ``image`` is.
    mpp : float, optional
        Level 0's pixel size (µm/px), when the layer says.
    pixel_size : float, optional
        Pixel size of the level scored (µm/px), when the layer says: the cells' stain
        measurements (areas, cell expansion) use it, as ``score`` uses the file's.
    statistics : dict, optional
        The engine's whole-image statistics from an earlier run of the same pixels, so a
        re-run with another engine parameter skips computing them again.
    """

    engine: EngineChoice
    image: Any
    rect: tuple[int, int, int, int] | None
    resolution: str
    outputs: str = "all"
    polygons: list = field(default_factory=list)
    levels: list = field(default_factory=list)
    level: int = 0
    mpp: float | None = None
    pixel_size: float | None = None
    statistics: dict | None = None

    def tissue(self) -> Any:
        """Which parts of ``image`` hold tissue: the slide rule ``score`` and ``batch`` apply
        (:func:`napari_deepliif.slides.tissue.tissue_mask`), on the layer's levels."""
        if not self.levels:
            return levels_tissue([self.image], 0, self.resolution, self.mpp)
        return levels_tissue(self.levels, self.level, self.resolution, self.mpp)


def get_engine(choice: EngineChoice) -> Any:
    """Load (or reuse: networks are cached by :mod:`napari_deepliif.models.loader`) an engine."""
    if choice.model == STAIN:
        engine = load_engine("stain")
    else:
        engine = load_engine("auto", choice.model, device=choice.device, precision=choice.precision)
    return engine.with_parameters(**({} if choice.dab_threshold is None else {"dab_threshold": choice.dab_threshold}))


def score_area(spec: RunSpec, progress: Progress | None = None,
               cancel: threading.Event | None = None) -> tuple[Any, ScoreResult | PointsResult]:
    """Load the engine and score ``spec``'s area; returns ``(engine, result)``. A ``points``
    model finds the points of the area's rectangle that lie in its ROI polygons
    (:func:`~napari_deepliif.regions.points.detect_region`, at its card's confidence and distance).

    Raises :class:`~napari_deepliif.errors.Cancelled` when ``cancel`` is set between batches
    and any :class:`~napari_deepliif.errors.DeepLIIFError` of the engine.
    """
    engine = get_engine(spec.engine)
    if cancel is not None and cancel.is_set():
        raise Cancelled("run cancelled before it started")
    check_input(spec.image, "image layer", grey=not engine.brightfield)  # before the tissue mask, which reads RGB
    origin = np.array(spec.rect[:2] if spec.rect else (0, 0), float)
    rois = [(np.asarray(p, float) + origin, []) for p in spec.polygons] or None
    include = engine.tissue(spec.tissue)
    if isinstance(engine, PointsEngine):
        return engine, detect_region(engine, spec.image, region=spec.rect, rois=rois, resolution=spec.resolution,
                                     mpp=spec.pixel_size, include=include, progress=progress, cancel=cancel)
    result = score_region(engine, spec.image, region=spec.rect, rois=rois, resolution=spec.resolution,
                          mpp=spec.pixel_size, outputs=spec.outputs, include=include,
                          statistics=spec.statistics, progress=progress, cancel=cancel)
    return engine, result


def download(name: str, progress: Progress | None = None, cancel: threading.Event | None = None) -> Path:
    """Fetch an indexed model; ``cancel`` stops the download (nothing is kept)."""

    def report(done: int, total: int | None) -> None:
        if cancel is not None and cancel.is_set():
            raise Cancelled(f"download of {name} cancelled")
        if progress is not None:
            progress(int(done), int(total or 0))

    return fetch_model(name, progress=report)


def roi_scores(post: Any, polygons: list[np.ndarray]) -> list[dict]:
    """Score of each ROI polygon (cells counted by centroid)."""
    return [post.score(np.asarray(poly)) for poly in polygons]
