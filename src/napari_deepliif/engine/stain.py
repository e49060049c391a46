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

Method (colour deconvolution with stain vectors estimated per image, then a QuPath-like
positive cell detection; the full description and measured accuracy are in
``docs/stain-engine.md``):

1. Stain vectors: Macenko's estimate over the whole image (:func:`stain_vectors`), or
   scikit-image's HED matrix when too few pixels are stained or the estimate is
   implausible (:mod:`.stain_vectors`); stain ODs = OD @ the inverse of those vectors.
2. Hematoxylin contrast = Gaussian-smoothed hematoxylin OD minus its local background (a
   grey opening over ``background_radius_um``, as QuPath subtracts a background), so dense
   tissue and pale nuclei are judged against their surroundings.
3. Nuclear signal = hematoxylin contrast + DAB contrast (the same local-background
   subtraction) above ``dab_detection_od`` (so DAB-positive nuclei, whose hematoxylin is
   masked by DAB, are found too, while broad cytoplasmic DAB is mostly subtracted).
   Foreground = nuclear signal above the Otsu threshold of the hematoxylin contrast of the
   image's DAB-free pixels (at least ``min_nuclear_od``; :func:`stain_threshold`), so brown
   nuclei cannot lift it above pale blue ones; holes filled, objects under ``min_area_um2``
   removed.
4. Touching nuclei are split by a watershed of the distance transform from its domes
   (h-maxima of depth ``split_depth_um``); an object still larger than ``max_area_um2`` and
   found by its hematoxylin (packed nuclei) is cut again at a raised threshold; in one found
   through its DAB (stained tissue) the nuclei are found by their hematoxylin alone.
5. A nucleus is positive when its mean DAB OD exceeds ``dab_threshold`` (default 0.2 OD,
   QuPath's default "Nucleus: DAB OD mean" threshold).

The vectors and the threshold are statistics of the whole image, computed once and given to
every part of it (``vectors=``, ``threshold=``, ``box=``), so its parts are segmented alike.
This module holds the image-level passes; the steps on one block are in :mod:`.stain_nuclei`
and the stain-vector estimate in :mod:`.stain_vectors`.

Lengths and areas are set in micrometres and converted to pixels with the nominal pixel size
of the resolution (40x 0.25, 20x 0.5, 10x 1.0 µm/px). Large images are processed in
overlapping blocks, so memory beyond the outputs stays bounded.
"""

from __future__ import annotations

import logging
import math
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

import numpy as np
from scipy import ndimage as ndi
from skimage.filters import threshold_otsu

from napari_deepliif.engine.stain_nuclei import (
    DEFAULT_DAB_THRESHOLD,
    PixelSettings,
    StainSettings,
    contrast,
    nuclear_signal,
    positive_labels,
    render_hema,
    render_marker,
    render_seg,
    segment_nuclei,
)
from napari_deepliif.engine.stain_vectors import (
    ANGLE_BINS,
    StainVectors,
    angle_histogram,
    od_moments,
    stain_plane,
    vectors_from_angles,
)
from napari_deepliif.errors import DeepLIIFError
from napari_deepliif.progress import ProgressCallback, check_cancel
from napari_deepliif.resolution import resolve_resolution
from napari_deepliif.rgb import check_rgb, optical_density, stain_od

log = logging.getLogger(__name__)

#: Engine name written into outputs and accepted by the front ends.
ENGINE_NAME = "stain"
#: Outputs of the engine, in the DeepLIIF engine's names.
STAIN_OUTPUTS: tuple[str, ...] = ("Hema", "Marker", "Seg")

#: Edge of the blocks an image is processed in (pixels), and the histogram used to find
#: one Otsu threshold for all of them (OD range and bins).
BLOCK_SIZE = 1024
_OTSU_RANGE = (0.0, 3.0)
_OTSU_BINS = 600
#: Share of the histogram's highest values folded onto the value below them before Otsu.
_OTSU_TAIL = 0.005
#: Most blocks worked on at once (each needs about 90 MB at the default ``BLOCK_SIZE``).
MAX_BLOCK_THREADS = 8

_T = TypeVar("_T")



def stain_infer(
    image: Any,
    resolution: str = "40x",
    *,
    dab_threshold: float = DEFAULT_DAB_THRESHOLD,
    threshold: float | None = None,
    vectors: StainVectors | None = None,
    box: tuple[int, int, int, int] | None = None,
    settings: StainSettings | None = None,
    dab_image: Any | None = None,
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
    vectors : StainVectors, optional
        Stain vectors to unmix with, e.g. from :func:`stain_vectors` over a larger image
        this one is part of. Default: :func:`stain_vectors` of ``image`` itself (two extra
        passes over it).
    box : (y0, y1, x0, x1), optional
        Part of ``image`` to compute (pixels, end exclusive); the outputs have its size.
        Blocks stay on the whole image's grid and read their margins from it, so the
        outputs equal that part of the whole image's outputs (with the same ``threshold``
        and ``vectors``), whatever the boxes an image is split into. Default: the whole image.
    settings : StainSettings, optional
        Detection settings; defaults to ``StainSettings()``.
    dab_image : array-like, shape (H, W, 3), optional
        An image of the same size whose DAB OD (unmixed with ``vectors``) classifies the
        nuclei and is the ``Marker``, instead of ``image``'s own: nuclei found on a virtual
        H&E are classified by the IHC it was translated from (the ``translate`` model type).
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
    if dab_image is not None:
        dab_image = check_rgb(dab_image, "dab_image")
        if tuple(dab_image.shape[:2]) != tuple(image.shape[:2]):
            raise DeepLIIFError(f"dab_image is {tuple(dab_image.shape[:2])} (H, W), the image {tuple(image.shape[:2])}")
    resolution = resolve_resolution(resolution)
    for label, value in (("dab_threshold", dab_threshold), ("threshold", threshold)):
        if value is not None and not (math.isfinite(value) and value >= 0):
            raise DeepLIIFError(f"{label} must be a non-negative OD, got {value!r}")
    px = PixelSettings.from_settings(settings or StainSettings(), resolution)
    height, width = image.shape[:2]
    y0, y1, x0, x1 = (int(v) for v in box) if box is not None else (0, height, 0, width)
    if not (0 <= y0 < y1 <= height and 0 <= x0 < x1 <= width):
        raise DeepLIIFError(f"box {box} (y0, y1, x0, x1) is empty or leaves the {width} x {height} image")
    blocks = list(_blocks(height, width, px.margin))
    parts = [(outer, inner, (ys, xs)) for outer, inner, (ys, xs) in blocks
             if ys.start < y1 and ys.stop > y0 and xs.start < x1 and xs.stop > x0]
    steps = _Steps(len(parts) + (0 if threshold is not None else len(blocks))
                   + (0 if vectors is not None else 2 * len(blocks)), progress, cancel)
    if vectors is None:
        vectors = _vectors(image, blocks, steps)
    if threshold is None:
        threshold = _threshold(image, px, vectors, blocks, steps)
        log.debug("stain engine: hematoxylin contrast threshold %.3f OD at %s", threshold, resolution)
    unmixing = vectors.unmixing()

    def block(rgb: np.ndarray, dab_rgb: np.ndarray | None) -> dict[str, np.ndarray]:
        ods = optical_density(rgb) @ unmixing
        labels = segment_nuclei(*nuclear_signal(ods, px), threshold, px)
        dab = ods[..., 2] if dab_rgb is None else stain_od(dab_rgb, unmixing)[..., 2]
        return {"Hema": render_hema(ods[..., 0], vectors.hematoxylin), "Marker": render_marker(dab),
                "Seg": render_seg(labels, positive_labels(labels, dab, dab_threshold))}

    reads = ((_read(image, outer), None if dab_image is None else _read(dab_image, outer)) for outer, _, _ in parts)
    out = {name: np.zeros((y1 - y0, x1 - x0, 3), dtype=np.uint8) for name in STAIN_OUTPUTS}
    for (outer, _, core), images in zip(parts, _each_block(block, reads, steps), strict=True):
        # the part of this block's core inside the box: in the outputs, and in the block read
        cy0, cy1 = max(core[0].start, y0), min(core[0].stop, y1)
        cx0, cx1 = max(core[1].start, x0), min(core[1].stop, x1)
        dst = (slice(cy0 - y0, cy1 - y0), slice(cx0 - x0, cx1 - x0))
        src = (slice(cy0 - outer[0].start, cy1 - outer[0].start), slice(cx0 - outer[1].start, cx1 - outer[1].start))
        for name in STAIN_OUTPUTS:
            out[name][dst] = images[name][src]
    return out


def stain_threshold(
    image: Any,
    resolution: str = "40x",
    *,
    vectors: StainVectors | None = None,
    settings: StainSettings | None = None,
    include: Callable[[int, int, int, int], bool] | None = None,
    progress: ProgressCallback | None = None,
    cancel: Callable[[], bool] | Any | None = None,
) -> float:
    """The foreground threshold :func:`stain_infer` uses: Otsu of the hematoxylin contrast
    over the pixels without DAB.

    Pixels whose smoothed DAB OD reaches ``DEFAULT_DAB_THRESHOLD`` (what would make a
    nucleus positive) are left out, so a tile full of brown nuclei, whose hematoxylin they
    mask and whose DAB leaks into the hematoxylin channel, cannot lift the threshold above
    its pale negative nuclei. The image is read block by block (``BLOCK_SIZE`` px with the
    settings' margin), so a lazy array (zarr, dask, a slide level) of any size can be given.

    Parameters
    ----------
    image : array-like, shape (H, W, 3) or (H, W, 4)
        8-bit RGB(A) image (rows, columns, channels).
    resolution : {'40x', '20x', '10x'}
        Magnification (0.25, 0.5, 1.0 µm/px).
    vectors : StainVectors, optional
        Stain vectors to unmix with; default :func:`stain_vectors` of the same blocks.
    settings : StainSettings, optional
        Detection settings; defaults to ``StainSettings()``.
    include : callable(y0, y1, x0, x1) -> bool, optional
        Called with each block's box (pixels of ``image``, end exclusive); blocks for which
        it returns False (e.g. no tissue) are left out of the histogram. Default: all.
    progress : callable, optional
        Called as ``progress(done, total)`` after each block step.
    cancel : callable or threading.Event, optional
        Checked before each block; raises :class:`Cancelled`.

    Returns
    -------
    float
        Threshold in OD, never below ``settings.min_nuclear_od`` (which it is when no block
        is included).
    """
    image = check_rgb(image)
    px = PixelSettings.from_settings(settings or StainSettings(), resolve_resolution(resolution))
    blocks = _included(_blocks(*image.shape[:2], px.margin), include)
    steps = _Steps(len(blocks) * (1 if vectors is not None else 3), progress, cancel)
    if vectors is None:
        vectors = _vectors(image, blocks, steps)
    return _threshold(image, px, vectors, blocks, steps)


def stain_vectors(
    image: Any,
    *,
    include: Callable[[int, int, int, int], bool] | None = None,
    progress: ProgressCallback | None = None,
    cancel: Callable[[], bool] | Any | None = None,
) -> StainVectors:
    """The stain vectors :func:`stain_infer` unmixes with: Macenko's estimate over the image,
    or the reference HED matrix when the estimate is missing or implausible.

    Two passes over the image's ``BLOCK_SIZE`` blocks (see
    :mod:`napari_deepliif.engine.stain_vectors`), so a lazy array of any size can be given.

    Parameters
    ----------
    image : array-like, shape (H, W, 3) or (H, W, 4)
        8-bit RGB(A) image (rows, columns, channels).
    include : callable(y0, y1, x0, x1) -> bool, optional
        As for :func:`stain_threshold`: blocks for which it returns False are left out.
    progress : callable, optional
        Called as ``progress(done, total)`` after each block step.
    cancel : callable or threading.Event, optional
        Checked before each block; raises :class:`Cancelled`.

    Returns
    -------
    StainVectors
        Unit OD vectors of hematoxylin and DAB (``estimated`` False for the fallback).
    """
    image = check_rgb(image)
    blocks = _included(_blocks(*image.shape[:2], 0), include)
    return _vectors(image, blocks, _Steps(2 * len(blocks), progress, cancel))


def block_threads() -> int:
    """How many blocks :func:`stain_infer` and the statistics passes work on at once.

    As many as the OpenMP threads the process is given (``OMP_NUM_THREADS``, which
    ``batch`` sets per worker so that workers do not oversubscribe the cores), else the
    CPUs it may run on; at most ``MAX_BLOCK_THREADS``.
    """
    given = os.environ.get("OMP_NUM_THREADS", "").strip()
    if given.isdigit() and int(given) > 0:
        count = int(given)
    else:
        count = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(count, MAX_BLOCK_THREADS))


def _each_block(work: Callable[..., _T], reads: Iterable[tuple], steps: _Steps) -> Iterator[_T]:
    """``work(*read)`` for each read, in order, up to :func:`block_threads` at a time.

    The reads are drawn (so the image is read) in the calling thread, so any array-like
    can be given, and never more than one per thread ahead of the results taken, so memory
    stays bounded. Cancel is checked before each block and progress reported after each,
    from the calling thread.
    """
    threads = block_threads()
    pool = ThreadPoolExecutor(threads, thread_name_prefix="stain-block")
    pending: deque[Future] = deque()
    try:
        for read in reads:
            steps.check()
            pending.append(pool.submit(work, *read))
            if len(pending) >= threads:
                result = pending.popleft().result()
                steps.done()
                yield result
        while pending:
            result = pending.popleft().result()
            steps.done()
            yield result
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


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
_Block = tuple[_Region, _Region, _Region]


def _blocks(height: int, width: int, margin: int) -> Iterator[_Block]:
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


def _included(blocks: Iterator[_Block], include: Callable[[int, int, int, int], bool] | None) -> list[_Block]:
    """The blocks whose core ``include(y0, y1, x0, x1)`` accepts (all without ``include``)."""
    if include is None:
        return list(blocks)
    return [b for b in blocks if include(b[2][0].start, b[2][0].stop, b[2][1].start, b[2][1].stop)]


def _read(image: Any, region: _Region) -> np.ndarray:
    return np.ascontiguousarray(image[region], dtype=np.uint8)


def _vectors(image: Any, blocks: list[_Block], steps: _Steps) -> StainVectors:
    """Macenko stain vectors over the cores of ``blocks``: moments, then angles."""
    count, moments = 0, np.zeros((3, 3), dtype=np.int64)
    cores = ((_read(image, core),) for _, _, core in blocks)
    for n, m in _each_block(lambda rgb: od_moments(optical_density(rgb)), cores, steps):
        count, moments = count + n, moments + m
    plane = stain_plane(count, moments)
    counts = np.zeros(ANGLE_BINS, dtype=np.int64)
    if plane is None:
        for _ in blocks:  # nothing to histogram; the steps are still counted
            steps.check()
            steps.done()
    else:
        cores = ((_read(image, core),) for _, _, core in blocks)
        for histogram in _each_block(lambda rgb: angle_histogram(optical_density(rgb), plane), cores, steps):
            counts += histogram
    vectors = vectors_from_angles(plane, counts)
    log.debug("stain vectors: %s", vectors)
    return vectors


def _threshold(image: Any, px: PixelSettings, vectors: StainVectors, blocks: list[_Block], steps: _Steps) -> float:
    """Otsu threshold of the hematoxylin contrast of the DAB-free pixels of the blocks' cores."""
    unmixing = vectors.unmixing()

    def histogram(rgb: np.ndarray, inner: _Region) -> np.ndarray:
        ods = optical_density(rgb) @ unmixing
        hema = contrast(ods[..., 0], px)[inner]
        no_dab = ndi.gaussian_filter(ods[..., 2], px.sigma)[inner] < DEFAULT_DAB_THRESHOLD
        return np.histogram(np.clip(hema[no_dab], *_OTSU_RANGE), bins=_OTSU_BINS, range=_OTSU_RANGE)[0]

    counts = np.zeros(_OTSU_BINS, dtype=np.int64)
    for part in _each_block(histogram, ((_read(image, outer), inner) for outer, inner, _ in blocks), steps):
        counts += part
    return _foreground_threshold(counts, px.min_nuclear_od)


def _foreground_threshold(counts: np.ndarray, floor: float) -> float:
    """Otsu threshold of a hematoxylin-contrast histogram, never below ``floor``.

    The top ``_OTSU_TAIL`` of the pixels is folded onto the bin below it (winsorised) first:
    a few near-black pixels (overstained or saturated nuclei) unmix to hematoxylin contrasts
    of 2-3 OD, and so few of them would otherwise pull Otsu's split between background and
    nuclei up above every pale nucleus.
    """
    counts = counts.copy()
    top = int(np.searchsorted(np.cumsum(counts), (1.0 - _OTSU_TAIL) * counts.sum()))
    counts[top] += counts[top + 1:].sum()
    counts[top + 1:] = 0
    if np.count_nonzero(counts) < 2:
        return floor
    edges = np.linspace(*_OTSU_RANGE, _OTSU_BINS + 1)
    centres = (edges[:-1] + edges[1:]) / 2
    return max(floor, float(threshold_otsu(hist=(counts, centres))))


