"""The ``stain`` engine: classical nucleus detection by colour deconvolution, no weights.

It writes the same images as the DeepLIIF engine's scoring outputs, so the same
postprocessing, cell table, sliders, scores and exports apply:

``Hema``
    Hematoxylin-only RGB rendering of the deconvolved hematoxylin optical density (OD).
``Marker``
    DAB OD as a grey image on black: every channel is ``round(100 * DAB OD)``, capped at
    255, so ``max(R, G, B)`` of a pixel is its DAB OD in hundredths.
``Seg``
    Seg colour convention: positive nuclei red (255, 0, 0), negative nuclei blue (0, 0, 255),
    a green (0, 255, 0) line on the edge of every nucleus (1 px against background, 2 px
    between touching nuclei), black background.

Method (Ruifrok & Johnston 2001 colour deconvolution with scikit-image's HED stain matrix,
then a QuPath-like positive cell detection; the full description and measured accuracy are
in ``docs/stain-engine.md``):

1. OD = -log10(I / 255) per channel; stain ODs = OD @ ``skimage.color.hed_from_rgb``.
2. Hematoxylin contrast = Gaussian-smoothed hematoxylin OD minus its local background (a
   grey opening over ``background_radius_um``, as QuPath subtracts a background), so dense
   tissue and pale nuclei are judged against their surroundings.
3. Nuclear signal = hematoxylin contrast + smoothed DAB OD above ``dab_detection_od`` (so
   DAB-positive nuclei, whose hematoxylin is masked by DAB, are found too).
   Foreground = nuclear signal above the Otsu threshold of the hematoxylin contrast over the
   whole image (at least ``min_nuclear_od``; :func:`stain_threshold`), or above a threshold
   given, e.g. one computed once over a whole slide so that its chunks agree; holes filled,
   objects under ``min_area_um2`` removed. The threshold is taken from hematoxylin alone so
   that strongly stained nuclei do not pull it up.
4. Touching nuclei are split by a watershed of the distance transform from its peaks that are
   at least ``peak_min_distance_um`` apart.
5. A nucleus is positive when its mean DAB OD exceeds ``dab_threshold`` (default 0.2 OD,
   QuPath's default "Nucleus: DAB OD mean" threshold).

Lengths and areas are set in micrometres and converted to pixels with the nominal pixel size
of the resolution (40x 0.25, 20x 0.5, 10x 1.0 µm/px). Large images are processed in
overlapping blocks, so memory beyond the outputs stays bounded.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage as ndi
from skimage.color import rgb_from_hed
from skimage.feature import peak_local_max
from skimage.filters import threshold_otsu
from skimage.segmentation import find_boundaries, watershed

from napari_deepliif.constants import (
    BOUNDARY_RGB,
    MICRONS_PER_PIXEL_BY_RESOLUTION,
    NEGATIVE_RGB,
    NOISE_SIZE,
    POSITIVE_RGB,
)
from napari_deepliif.errors import DeepLIIFError
from napari_deepliif.progress import ProgressCallback, check_cancel
from napari_deepliif.resolution import resolve_resolution
from napari_deepliif.rgb import check_rgb
from napari_deepliif.rgb import stain_od as _stain_od

log = logging.getLogger(__name__)

#: Engine name written into outputs and accepted by the front ends.
ENGINE_NAME = "stain"
#: Outputs of the engine, in the DeepLIIF engine's names.
STAIN_OUTPUTS: tuple[str, ...] = ("Hema", "Marker", "Seg")
#: Mean nuclear DAB OD above which a nucleus is positive (QuPath's default threshold).
DEFAULT_DAB_THRESHOLD = 0.2
#: Marker image grey level per unit of DAB OD (level = OD * this, capped at 255).
MARKER_LEVELS_PER_OD = 100.0

#: Edge of the blocks an image is processed in (pixels), and the histogram used to find
#: one Otsu threshold for all of them (OD range and bins).
BLOCK_SIZE = 1024
_OTSU_RANGE = (0.0, 3.0)
_OTSU_BINS = 600



@dataclass(frozen=True)
class StainSettings:
    """Detection settings in physical units; converted to pixels for each resolution.

    Attributes
    ----------
    smoothing_sigma_um : float
        Gaussian sigma applied to the hematoxylin and DAB ODs (µm).
    background_radius_um : float
        Half-width of the square grey opening that estimates the local hematoxylin
        background (µm); QuPath's default background radius is 8 µm.
    min_nuclear_od : float
        Lowest foreground threshold on the hematoxylin contrast (OD); keeps blank or
        faint images from producing nuclei out of noise.
    dab_detection_od : float
        DAB OD above which DAB adds to the nuclear signal (OD).
    min_area_um2 : float
        Smallest nucleus kept (µm²); QuPath's default minimum nucleus area is 10 µm².
    max_area_um2 : float
        Largest nucleus kept (µm²). Larger objects are stained tissue, not nuclei (glands
        under a cytoplasmic or membranous DAB stain); the ground-truth nuclei of the sample
        tiles are at most ~100 µm².
    peak_min_distance_um : float
        Smallest distance between the centres of two touching nuclei (µm).
    block_margin_um : float
        Context added around each block so nuclei crossing block edges are split the same
        way on both sides (µm).
    """

    smoothing_sigma_um: float = 0.5
    background_radius_um: float = 8.0
    min_nuclear_od: float = 0.05
    dab_detection_od: float = 0.5
    min_area_um2: float = 10.0
    max_area_um2: float = 200.0
    peak_min_distance_um: float = 2.0
    block_margin_um: float = 16.0


@dataclass(frozen=True)
class _PixelSettings:
    """:class:`StainSettings` with lengths and areas in pixels of one resolution."""

    sigma: float
    background_radius: int
    min_area: int
    max_area: int
    min_distance: int
    margin: int
    min_nuclear_od: float
    dab_detection_od: float

    @classmethod
    def from_settings(cls, settings: StainSettings, resolution: str) -> _PixelSettings:
        mpp = MICRONS_PER_PIXEL_BY_RESOLUTION[resolution]
        return cls(
            sigma=settings.smoothing_sigma_um / mpp,
            background_radius=max(1, round(settings.background_radius_um / mpp)),
            min_area=max(1, round(settings.min_area_um2 / mpp**2)),
            max_area=round(settings.max_area_um2 / mpp**2),
            min_distance=max(1, round(settings.peak_min_distance_um / mpp)),
            margin=math.ceil(settings.block_margin_um / mpp),
            min_nuclear_od=settings.min_nuclear_od,
            dab_detection_od=settings.dab_detection_od,
        )


def stain_infer(
    image: Any,
    resolution: str = "40x",
    *,
    dab_threshold: float = DEFAULT_DAB_THRESHOLD,
    threshold: float | None = None,
    box: tuple[int, int, int, int] | None = None,
    settings: StainSettings | None = None,
    progress: ProgressCallback | None = None,
    cancel: Callable[[], bool] | Any | None = None,
) -> dict[str, np.ndarray]:
    """Detect and classify nuclei by colour deconvolution; DeepLIIF-style output images.

    Parameters
    ----------
    image : array-like, shape (H, W, 3) or (H, W, 4)
        8-bit brightfield RGB IHC image (rows, columns, channels); alpha is ignored.
    resolution : {'40x', '20x', '10x'}
        Magnification (0.25, 0.5, 1.0 µm/px); sets every size in pixels.
    dab_threshold : float
        Mean nuclear DAB OD above which a nucleus is positive.
    threshold : float, optional
        Foreground threshold on the nuclear signal (OD), e.g. from :func:`stain_threshold`
        over a larger image this one is part of, so that its pieces are segmented alike.
        Default: :func:`stain_threshold` of ``image`` itself (one extra pass over it).
    box : (y0, y1, x0, x1), optional
        Part of ``image`` to compute (pixels, end exclusive); the outputs have its size.
        Blocks stay on the whole image's grid and read their margins from it, so the
        outputs equal that part of the whole image's outputs (with the same ``threshold``),
        whatever the boxes an image is split into. Default: the whole image.
    settings : StainSettings, optional
        Detection settings; defaults to ``StainSettings()``.
    progress : callable, optional
        Called as ``progress(done, total)`` with counts of processing steps.
    cancel : callable or threading.Event, optional
        Checked between steps; when it returns True (or is set), :class:`Cancelled` is raised.

    Returns
    -------
    dict of str to ndarray
        ``Hema``, ``Marker`` and ``Seg``, each uint8 of shape (H, W, 3) (the box's with ``box``).

    Raises
    ------
    InputImageError
        The image is not 8-bit RGB(A), or is under 16 px on a side.
    DeepLIIFError
        Unknown resolution, a negative ``dab_threshold`` or ``threshold``, or a ``box``
        that is empty or leaves the image.
    Cancelled
        ``cancel`` asked to stop.
    """
    image = check_rgb(image)
    resolution = resolve_resolution(resolution)
    for label, value in (("dab_threshold", dab_threshold), ("threshold", threshold)):
        if value is not None and not (math.isfinite(value) and value >= 0):
            raise DeepLIIFError(f"{label} must be a non-negative OD, got {value!r}")
    px = _PixelSettings.from_settings(settings or StainSettings(), resolution)
    height, width = image.shape[:2]
    y0, y1, x0, x1 = (int(v) for v in box) if box is not None else (0, height, 0, width)
    if not (0 <= y0 < y1 <= height and 0 <= x0 < x1 <= width):
        raise DeepLIIFError(f"box {box} (y0, y1, x0, x1) is empty or leaves the {width} x {height} image")
    blocks = list(_blocks(height, width, px.margin))
    parts = [(outer, inner, (ys, xs)) for outer, inner, (ys, xs) in blocks
             if ys.start < y1 and ys.stop > y0 and xs.start < x1 and xs.stop > x0]
    steps = _Steps(len(parts) + (0 if threshold is not None else len(blocks)), progress, cancel)
    if threshold is None:
        threshold = _threshold(image, px, blocks, steps)
        log.debug("stain engine: hematoxylin contrast threshold %.3f OD at %s", threshold, resolution)

    out = {name: np.zeros((y1 - y0, x1 - x0, 3), dtype=np.uint8) for name in STAIN_OUTPUTS}
    for outer, _, core in parts:
        steps.check()
        ods = _stain_od(_read(image, outer))
        labels = _segment(_nuclear_signal(ods, px), threshold, px)
        positive = _positive_labels(labels, ods[..., 2], dab_threshold)
        # the part of this block's core inside the box: in the outputs, and in the block read
        cy0, cy1 = max(core[0].start, y0), min(core[0].stop, y1)
        cx0, cx1 = max(core[1].start, x0), min(core[1].stop, x1)
        dst = (slice(cy0 - y0, cy1 - y0), slice(cx0 - x0, cx1 - x0))
        src = (slice(cy0 - outer[0].start, cy1 - outer[0].start), slice(cx0 - outer[1].start, cx1 - outer[1].start))
        out["Hema"][dst] = render_hema(ods[..., 0])[src]
        out["Marker"][dst] = render_marker(ods[..., 2])[src]
        out["Seg"][dst] = render_seg(labels, positive)[src]
        steps.done()
    return out


def stain_threshold(
    image: Any,
    resolution: str = "40x",
    *,
    settings: StainSettings | None = None,
    include: Callable[[int, int, int, int], bool] | None = None,
    progress: ProgressCallback | None = None,
    cancel: Callable[[], bool] | Any | None = None,
) -> float:
    """The foreground threshold :func:`stain_infer` uses: Otsu of the hematoxylin contrast.

    The image is read block by block (``BLOCK_SIZE`` px with the settings' margin), so a
    lazy array (zarr, dask, a slide level) of any size can be given.

    Parameters
    ----------
    image : array-like, shape (H, W, 3) or (H, W, 4)
        8-bit RGB(A) image (rows, columns, channels).
    resolution : {'40x', '20x', '10x'}
        Magnification (0.25, 0.5, 1.0 µm/px).
    settings : StainSettings, optional
        Detection settings; defaults to ``StainSettings()``.
    include : callable(y0, y1, x0, x1) -> bool, optional
        Called with each block's box (pixels of ``image``, end exclusive); blocks for which
        it returns False (e.g. no tissue) are left out of the histogram. Default: all.
    progress : callable, optional
        Called as ``progress(done, total)`` after each block.
    cancel : callable or threading.Event, optional
        Checked before each block; raises :class:`Cancelled`.

    Returns
    -------
    float
        Threshold in OD, never below ``settings.min_nuclear_od`` (which it is when no block
        is included).
    """
    image = check_rgb(image)
    px = _PixelSettings.from_settings(settings or StainSettings(), resolve_resolution(resolution))
    blocks = list(_blocks(*image.shape[:2], px.margin))
    if include is not None:
        blocks = [b for b in blocks if include(b[2][0].start, b[2][0].stop, b[2][1].start, b[2][1].stop)]
    return _threshold(image, px, blocks, _Steps(len(blocks), progress, cancel))


class _Steps:
    """Progress reports and cancel checks between the steps of one run."""

    def __init__(self, total: int, progress: ProgressCallback | None, cancel: Any) -> None:
        self.total, self.count = total, 0
        self.progress, self.cancel = progress, cancel

    def check(self) -> None:
        check_cancel(self.cancel, "stain engine run cancelled")

    def done(self) -> None:
        self.count += 1
        if self.progress is not None:
            self.progress(self.count, self.total)


_Region = tuple[slice, slice]


def _blocks(height: int, width: int, margin: int) -> Iterator[tuple[_Region, _Region, _Region]]:
    """Blocks row by row: (region read, with margin; its core within that region; the core
    within the image)."""
    for y0 in range(0, height, BLOCK_SIZE):
        for x0 in range(0, width, BLOCK_SIZE):
            y1, x1 = min(y0 + BLOCK_SIZE, height), min(x0 + BLOCK_SIZE, width)
            oy0, ox0 = max(0, y0 - margin), max(0, x0 - margin)
            oy1, ox1 = min(height, y1 + margin), min(width, x1 + margin)
            yield (
                (slice(oy0, oy1), slice(ox0, ox1)),
                (slice(y0 - oy0, y1 - oy0), slice(x0 - ox0, x1 - ox0)),
                (slice(y0, y1), slice(x0, x1)),
            )


def _read(image: Any, region: _Region) -> np.ndarray:
    return np.ascontiguousarray(image[region], dtype=np.uint8)


def _threshold(image: Any, px: _PixelSettings, blocks: list[tuple[_Region, _Region, _Region]],
               steps: _Steps) -> float:
    """Otsu threshold of the hematoxylin contrast over the cores of ``blocks``."""
    counts = np.zeros(_OTSU_BINS, dtype=np.int64)
    for outer, inner, _ in blocks:
        steps.check()
        contrast = _hematoxylin_contrast(_stain_od(_read(image, outer)), px)[inner]
        counts += np.histogram(np.clip(contrast, *_OTSU_RANGE), bins=_OTSU_BINS, range=_OTSU_RANGE)[0]
        steps.done()
    return _foreground_threshold(counts, px.min_nuclear_od)


def _hematoxylin_contrast(ods: np.ndarray, px: _PixelSettings) -> np.ndarray:
    """Smoothed hematoxylin OD minus its local background (grey opening), >= 0."""
    hema = ndi.gaussian_filter(np.maximum(ods[..., 0], 0), px.sigma)
    return hema - ndi.grey_opening(hema, size=2 * px.background_radius + 1)


def _nuclear_signal(ods: np.ndarray, px: _PixelSettings) -> np.ndarray:
    """Hematoxylin contrast plus smoothed DAB OD in excess of ``dab_detection_od``."""
    dab = ndi.gaussian_filter(ods[..., 2], px.sigma)
    return _hematoxylin_contrast(ods, px) + np.maximum(dab - px.dab_detection_od, 0)


def _foreground_threshold(counts: np.ndarray, floor: float) -> float:
    """Otsu threshold of a hematoxylin-contrast histogram, never below ``floor``."""
    if np.count_nonzero(counts) < 2:
        return floor
    edges = np.linspace(*_OTSU_RANGE, _OTSU_BINS + 1)
    centres = (edges[:-1] + edges[1:]) / 2
    return max(floor, float(threshold_otsu(hist=(counts, centres))))


def _segment(signal: np.ndarray, threshold: float, px: _PixelSettings) -> np.ndarray:
    """Nucleus labels (int32, 0 = background) from the nuclear signal."""
    foreground = ndi.binary_fill_holes(signal > threshold)
    blobs, n_blobs = ndi.label(foreground)
    if n_blobs == 0:
        return blobs.astype(np.int32)
    sizes = np.bincount(blobs.ravel())
    sizes[0] = 0
    blobs[sizes[blobs] < px.min_area] = 0
    distance = ndi.distance_transform_edt(blobs > 0)
    peaks = peak_local_max(distance, min_distance=px.min_distance, labels=blobs, exclude_border=False)
    markers = np.zeros(blobs.shape, dtype=np.int32)
    markers[tuple(peaks.T)] = 1
    markers, _ = ndi.label(markers, structure=np.ones((3, 3)))
    labels = watershed(-distance, markers, mask=blobs > 0).astype(np.int32)
    sizes = np.bincount(labels.ravel())
    labels[(sizes[labels] < px.min_area) | (sizes[labels] > px.max_area)] = 0
    return _one_interior_each(labels)


def _one_interior_each(labels: np.ndarray) -> np.ndarray:
    """Trim nuclei so each reads back as exactly one cell from its Seg rendering.

    The interior of a nucleus (its pixels minus the green edge of :func:`render_seg`) can fall
    apart at a neck 1-2 px wide; the postprocessing would count each piece as a cell. Keep
    the pixels within one pixel (8-neighbourhood) of the largest interior piece; drop
    nuclei whose interior has no more pixels than the postprocessing's noise size.
    """
    interior = (labels > 0) & ~find_boundaries(labels, connectivity=2, mode="inner")
    pieces, n_pieces = ndi.label(interior, structure=np.ones((3, 3)))
    if n_pieces == 0:
        return np.zeros_like(labels)
    piece_size = np.bincount(pieces.ravel())
    piece_label = np.zeros(n_pieces + 1, dtype=labels.dtype)
    piece_label[pieces[interior]] = labels[interior]
    ids = np.arange(1, n_pieces + 1)
    order = np.lexsort((-piece_size[ids], piece_label[ids]))  # per label, largest first
    first = np.ones(order.size, dtype=bool)
    first[1:] = piece_label[ids][order][1:] != piece_label[ids][order][:-1]
    kept = ids[order][first]
    kept = kept[piece_size[kept] > NOISE_SIZE]
    kept_labels = np.where(np.isin(pieces, kept), labels, 0)
    keep = np.zeros(labels.shape, dtype=bool)
    padded = np.pad(kept_labels, 1)
    height, width = labels.shape
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            keep |= padded[dy : dy + height, dx : dx + width] == labels
    return np.where(keep & (labels > 0), labels, 0)


def _positive_labels(labels: np.ndarray, dab: np.ndarray, dab_threshold: float) -> np.ndarray:
    """Boolean per label id (index 0 = background, False): mean DAB OD > threshold."""
    n = int(labels.max(initial=0)) + 1
    area = np.bincount(labels.ravel(), minlength=n)
    total = np.bincount(labels.ravel(), weights=dab.ravel().astype(np.float64), minlength=n)
    mean = np.divide(total, area, out=np.zeros(n), where=area > 0)
    positive = mean > dab_threshold
    positive[0] = False
    return positive


def render_seg(labels: np.ndarray, positive: np.ndarray) -> np.ndarray:
    """Seg-colour image of labelled nuclei.

    Parameters
    ----------
    labels : ndarray of int, shape (H, W)
        Nucleus labels, 0 for background.
    positive : ndarray of bool
        ``positive[label]`` is True for a positive nucleus (index 0 ignored).

    Returns
    -------
    ndarray of uint8, shape (H, W, 3)
        Red positive / blue negative interiors; green on every nucleus pixel that has an
        8-neighbour outside its nucleus, so the interiors of two nuclei are never
        8-connected and every green line reaches the background.
    """
    seg = np.zeros((*labels.shape, 3), dtype=np.uint8)
    seg[(labels > 0) & positive[labels]] = POSITIVE_RGB
    seg[(labels > 0) & ~positive[labels]] = NEGATIVE_RGB
    seg[find_boundaries(labels, connectivity=2, mode="inner")] = BOUNDARY_RGB
    return seg


def render_hema(hematoxylin_od: np.ndarray) -> np.ndarray:
    """Hematoxylin-only RGB image (uint8, H x W x 3) from hematoxylin OD (H x W)."""
    od = np.maximum(hematoxylin_od, 0)[..., None] * rgb_from_hed[0].astype(np.float32)
    return np.clip(np.rint(255.0 * np.power(np.float32(10.0), -od)), 0, 255).astype(np.uint8)


def render_marker(dab_od: np.ndarray) -> np.ndarray:
    """Grey DAB image on black (uint8, H x W x 3): level = DAB OD * 100, capped at 255."""
    level = np.clip(np.rint(dab_od * MARKER_LEVELS_PER_OD), 0, 255).astype(np.uint8)
    return np.repeat(level[..., None], 3, axis=2)
