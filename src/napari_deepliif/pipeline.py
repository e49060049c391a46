"""Image (+ region) -> engine outputs -> cells -> score: the path every front end shares."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from . import __version__
from .constants import DEFAULT_SEG_THRESH
from .engine import input_region
from .inference import CancelCheck, ProgressCallback
from .postprocess import PostprocessResult, Threshold, postprocess
from .resolution import resolve_resolution


@dataclass(frozen=True, eq=False)
class ScoreResult:
    """What scoring an image (or a region of it) produced.

    Attributes
    ----------
    image : ndarray
        The RGB pixels scored (H x W x 3 uint8), for overlays.
    images : dict of str to ndarray
        The engine's outputs (``Marker`` and ``Seg`` at least), H x W x 3 uint8.
    post : PostprocessResult
        Cells and score; :meth:`rescore` changes settings without rerunning the engine.
    provenance : dict
        ``engine``, ``model``, ``model_hash``, ``version`` and ``resolution``.
    origin : (int, int)
        ``(x, y)`` of the scored region's top-left pixel in the full image.
    """

    image: np.ndarray
    images: dict[str, np.ndarray]
    post: PostprocessResult
    provenance: dict[str, Any] = field(default_factory=dict)
    origin: tuple[int, int] = (0, 0)

    @property
    def scoring(self) -> dict:
        """The reference's score keys for the current settings."""
        return self.post.scoring

    def rescore(self, **changes: Any) -> "ScoreResult":
        """Change postprocessing settings (see :meth:`PostprocessResult.rescore`)."""
        return replace(self, post=self.post.rescore(**changes))


def score_image(
    engine: Any,
    image: Any,
    *,
    resolution: str | None = None,
    mpp: float | None = None,
    region: tuple[int, int, int, int] | None = None,
    outputs: str = "score",
    seg_thresh: int = DEFAULT_SEG_THRESH,
    size_thresh: Threshold = "default",
    size_thresh_upper: Threshold = None,
    marker_thresh: Threshold = None,
    progress: ProgressCallback | None = None,
    cancel: CancelCheck | Any | None = None,
) -> ScoreResult:
    """Run ``engine`` on ``image`` (or ``region``) and score the result.

    Parameters
    ----------
    engine : Engine or StainEngine
        From :func:`napari_deepliif.engine.load_engine`.
    image : array-like
        H x W x 3 uint8 RGB (numpy, zarr, dask, ...).
    resolution, mpp
        Magnification, or pixel size (µm/px) to pick it; default 40x.
    region : (x, y, width, height), optional
        The rectangle to score, in full-image pixels.
    outputs : 'score' or 'all'
        ``score`` infers only Marker and Seg; ``all`` every modality too.
    seg_thresh, size_thresh, size_thresh_upper, marker_thresh
        Postprocessing settings (reference defaults; see :class:`postprocess.Settings`).
    progress, cancel
        As :meth:`Engine.infer`.
    """
    res = resolve_resolution(resolution, mpp)
    source = input_region(image, region)
    images = dict(engine.infer(source, resolution=res, outputs=outputs, progress=progress, cancel=cancel))
    post = postprocess(images["Seg"], images.get("Marker"), resolution=res, seg_thresh=seg_thresh,
                       size_thresh=size_thresh, size_thresh_upper=size_thresh_upper, marker_thresh=marker_thresh)
    provenance = {"engine": engine.name, "model": engine.model_name, "model_hash": engine.model_hash,
                  "version": __version__, "resolution": res}
    origin = (int(region[0]), int(region[1])) if region is not None else (0, 0)
    return ScoreResult(np.asarray(source), images, post, provenance, origin)
