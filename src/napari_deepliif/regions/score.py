"""Score a region of an image: the one path behind ``score``, the widget and the server.

The region is scored on the *whole image's* plan (:func:`~napari_deepliif.regions.infer.infer_chunks`:
the engine's own tile grid of the image, its whole-image statistics), so a region gives the
cells the whole image gives there, wherever the region starts. Only the chunks' tiles that
reach the region grown by a context margin are computed; cells are found in that window, so
a cell crossing the region's edge is found whole; a cell counts when its centroid lies in
the region, and the default thresholds are taken from the region's cells (see
:func:`napari_deepliif.cells.postprocess.postprocess`). A cell still touching the window's
edge is larger than the margin: the window is then grown and scored again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from napari_deepliif import __version__
from napari_deepliif.cells.classmap import ClassPixels
from napari_deepliif.cells.find import SegPixels, touches_window_edge
from napari_deepliif.cells.postprocess import (
    PostprocessResult,
    Settings,
    postprocess_pixels,
)
from napari_deepliif.constants import CLASSES, SEG
from napari_deepliif.engine.engines import EngineBase
from napari_deepliif.engine.points import PointsEngine
from napari_deepliif.errors import DeepLIIFError
from napari_deepliif.io.placement import Placement
from napari_deepliif.io.score_format import placement, score_record
from napari_deepliif.progress import CancelCheck, ProgressCallback
from napari_deepliif.regions.infer import CHUNK_SIZE, Include, infer_chunks
from napari_deepliif.resolution import resolve_resolution, tile_size_for
from napari_deepliif.rgb import check_input

Box = tuple[int, int, int, int]  #: (y0, y1, x0, x1), end exclusive


@dataclass(frozen=True, eq=False)
class ScoreResult:
    """What scoring a region of an image produced.

    Attributes
    ----------
    image : ndarray
        The pixels of the window scored (the region and its context): H x W x 3 uint8, or
        H x W (uint8 or uint16) for a one-channel image.
    images : dict of str to ndarray
        The engine's outputs over the window (``Marker`` and ``Seg`` at least).
    post : PostprocessResult
        Cells of the window; only those in the region count. :meth:`rescore` changes
        settings without rerunning the engine.
    provenance : dict
        ``engine``, ``model``, ``model_hash``, ``version``, ``resolution``, the engine's
        whole-image ``statistics`` and its ``parameters``.
    origin : (int, int)
        ``(x, y)`` of the window's top-left pixel in the image.
    region : (int, int, int, int)
        ``(x, y, width, height)`` of the region scored, in image pixels.
    """

    image: np.ndarray
    images: dict[str, np.ndarray]
    post: PostprocessResult
    provenance: dict[str, Any] = field(default_factory=dict)
    origin: tuple[int, int] = (0, 0)
    region: tuple[int, int, int, int] = (0, 0, 0, 0)

    @property
    def scoring(self) -> dict:
        """The reference's score keys for the current settings."""
        return self.post.scoring

    def rescore(self, **changes: Any) -> ScoreResult:
        """Change postprocessing settings (see :meth:`PostprocessResult.rescore`)."""
        return replace(self, post=self.post.rescore(**changes))

    def placement(self, level_origin: tuple[float, float] = (0, 0), downsample: float = 1.0) -> Placement:
        """Where the pixels scored lie in the full-resolution image, when the image scored
        is a pyramid level at ``downsample`` (its pixel ``(0, 0)`` at ``level_origin``, pixels
        of the level)."""
        return Placement((level_origin[0] + self.origin[0], level_origin[1] + self.origin[1]), downsample)

    def record(self, *, image: str | None, level: int = 0, downsample: float = 1.0, mpp: float | None = None,
               level_origin: tuple[float, float] = (0, 0), regions: dict | None = None,
               run: dict | None = None) -> dict:
        """The score record (:func:`napari_deepliif.io.score_format.score_record`) of this result.

        Parameters
        ----------
        image : str, optional
            The image's name.
        level, downsample, mpp
            Pyramid level scored, its full-resolution pixels per pixel and its pixel size.
        level_origin : (x, y)
            Position of the scored image's pixel (0, 0) in the level (e.g. a region read
            from a file), pixels of the level.
        regions, run
            Per-region scores and run facts.
        """
        place = self.placement(level_origin, downsample)
        x, y, w, h = self.region
        region = ((level_origin[0] + x) * downsample, (level_origin[1] + y) * downsample, w * downsample, h * downsample)
        where = placement(image=image, resolution=self.provenance["resolution"], shape=self.post.cells.shape,
                          level=level, downsample=downsample, mpp=mpp, origin=place.corner, region=region)
        return score_record(self.scoring, placement=where, provenance=self.provenance, regions=regions, run=run)


def score_region(
    engine: EngineBase,
    image: Any,
    *,
    region: tuple[int, int, int, int] | None = None,
    rois: Sequence[tuple[np.ndarray, Sequence[np.ndarray]]] | None = None,
    resolution: str | None = None,
    mpp: float | None = None,
    settings: Settings | None = None,
    outputs: str = "score",
    include: Include | None = None,
    statistics: dict | None = None,
    chunk_size: int = CHUNK_SIZE,
    progress: ProgressCallback | None = None,
    cancel: CancelCheck | Any | None = None,
) -> ScoreResult:
    """Score ``region`` of ``image`` (see module docstring).

    Parameters
    ----------
    engine : EngineBase
        From :func:`napari_deepliif.engine.load_engine`.
    image : array-like, shape (H, W, 3), uint8
        The whole image or pyramid level (numpy, zarr, dask, a slide level); for an engine of
        fluorescence images also one channel, (H, W) or (H, W, 1), uint8 or uint16. Only the
        region's window is read, and the whole image once for the stain engine's statistics
        unless ``statistics`` is given.
    region : (x, y, width, height), optional
        The rectangle scored, in pixels of ``image``; default all of it.
    rois : list of (exterior, holes), optional
        ROI polygons in ``region`` ((k, 2) ``(x, y)`` vertices, pixels of ``image``, pixel
        centres at integers): only cells whose centroid lies in one count, and the default
        size threshold comes from them.
    resolution, mpp
        Magnification of ``image``, or its pixel size (µm/px) to pick it; default 40x. The
        pixel size, when given, is also the one the cells' stain measurements use (else the
        resolution's nominal one).
    settings : Settings, optional
        Thresholds and compartment scoring (its ``resolution`` is replaced by the one scored);
        default the package's. Cells are measured on ``image``'s pixels of the window.
    outputs : 'score' or 'all'
        ``score`` infers only Marker and Seg; ``all`` every modality too.
    include : callable(y0, y1, x0, x1) -> bool, optional
        Parts of ``image`` worth computing (a tissue mask); the rest is left empty. Ignored
        for an engine of fluorescence images (``engine.brightfield`` False): the tissue mask
        leaves out bright glass, and a fluorescence background is dark.
    statistics : dict, optional
        The engine's whole-image statistics (e.g. cached by a server for a slide).
    chunk_size : int
        Chunk edge of the plan (pixels).
    progress, cancel
        See :mod:`napari_deepliif.progress`; progress counts tiles of the window.
    """
    source = check_input(image, grey=not engine.brightfield)
    res = resolve_resolution(resolution, mpp)
    height, width = int(source.shape[0]), int(source.shape[1])
    x, y, w, h = (0, 0, width, height) if region is None else (int(v) for v in region)
    if w <= 0 or h <= 0 or x < 0 or y < 0 or x + w > width or y + h > height:
        raise DeepLIIFError(f"region {region} (x, y, width, height) is empty or lies outside the {width} x {height} image")
    names = engine.resolve_outputs(outputs)
    include = engine.tissue(lambda: include)
    settings = replace(settings or Settings(), resolution=res)
    if statistics is None:
        statistics = engine.statistics(source, res, include=include, cancel=cancel)
    margin = tile_size_for(res)
    while True:
        window = (max(0, y - margin), min(height, y + h + margin), max(0, x - margin), min(width, x + w + margin))
        images = infer_window(engine, source, res, names, window, include, statistics, chunk_size, progress, cancel)
        wy0, wy1, wx0, wx1 = window
        pixels = np.asarray(source[wy0:wy1, wx0:wx1])
        # stain measurements are brightfield optical densities: none for a fluorescence input
        post = postprocess_pixels(cell_pixels(engine, images), **asdict(settings), region=(x - wx0, y - wy0, w, h),
                                  rois=_shifted(rois, (wx0, wy0)), image=pixels if engine.brightfield else None,
                                  microns_per_pixel=mpp, unmixing=engine.unmixing(statistics))
        if not _cut_at_window_edge(post, window, (height, width)) or window == (0, height, 0, width):
            break
        margin *= 2
    provenance = {"engine": engine.name, "model": engine.model_name, "model_hash": engine.model_hash,
                  "version": __version__, "resolution": res, "statistics": statistics, "parameters": engine.parameters}
    return ScoreResult(pixels, images, post, provenance, (wx0, wy0), (x, y, w, h))


def cell_pixels(engine: EngineBase, images: dict[str, np.ndarray]) -> SegPixels | ClassPixels:
    """What cells are found from in ``images`` (an engine's outputs): the class map of an
    engine with classes, else the Seg map and Marker."""
    if isinstance(engine, PointsEngine):
        raise DeepLIIFError("a 'points' model finds points, not cells: use napari_deepliif.regions.points"
                            ".detect_region (napari-deepliif score --model DIR); here it is not supported yet")
    if engine.class_names is not None:
        return ClassPixels.from_map(images[CLASSES], engine.class_names, engine.positive_classes)
    return SegPixels.from_images(images[SEG], images.get("Marker"))


def _shifted(rois: Sequence[tuple[np.ndarray, Sequence[np.ndarray]]] | None,
             origin: tuple[int, int]) -> list | None:
    """ROI polygons moved into the window whose top-left pixel is ``origin`` (x, y)."""
    if not rois:
        return None
    shift = np.asarray(origin, float)
    return [(np.asarray(exterior, float) - shift, [np.asarray(h, float) - shift for h in holes])
            for exterior, holes in rois]


def infer_window(engine: EngineBase, source: Any, resolution: str, names: tuple[str, ...], window: Box,
                  include: Include | None, statistics: dict, chunk_size: int, progress: ProgressCallback | None,
                  cancel: CancelCheck | Any | None) -> dict[str, np.ndarray]:
    """The engine's outputs over ``window`` of ``source``, computed on the whole image's plan."""
    wy0, wy1, wx0, wx1 = window
    images = {name: np.zeros((wy1 - wy0, wx1 - wx0, 3), np.uint8) for name in names}

    def wanted(y0: int, y1: int, x0: int, x1: int) -> bool:
        overlaps = y0 < wy1 and y1 > wy0 and x0 < wx1 and x1 > wx0
        return overlaps and (include is None or include(y0, y1, x0, x1))

    def write(name: str, box: Box, array: np.ndarray) -> None:
        y0, y1, x0, x1 = box
        cy0, cy1, cx0, cx1 = max(y0, wy0), min(y1, wy1), max(x0, wx0), min(x1, wx1)
        if cy0 < cy1 and cx0 < cx1:
            images[name][cy0 - wy0 : cy1 - wy0, cx0 - wx0 : cx1 - wx0] = array[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0]

    infer_chunks(engine, source, resolution, names, write, chunk_size=chunk_size, include=wanted,
                 statistics=statistics, progress=progress, cancel=cancel)
    return images


def _cut_at_window_edge(post: PostprocessResult, window: Box, shape: tuple[int, int]) -> bool:
    """Whether a cell of the region touches a window edge that is not the image's edge."""
    return bool(touches_window_edge(post.table.bbox[post.members], window, shape).any())
