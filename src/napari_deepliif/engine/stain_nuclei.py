"""Nuclei of one block of stain ODs: detection, splitting, classes and DeepLIIF-style renderings.

The per-pixel and per-block steps of the ``stain`` engine (:mod:`.stain` runs them block by
block with the whole image's statistics); the method is described in
``docs/stain-engine.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi
from skimage.color import rgb_from_hed
from skimage.segmentation import find_boundaries, watershed

from napari_deepliif.constants import (
    BOUNDARY_RGB,
    MICRONS_PER_PIXEL_BY_RESOLUTION,
    NEGATIVE_RGB,
    NOISE_SIZE,
    POSITIVE_RGB,
)

#: Mean nuclear DAB OD above which a nucleus is positive (QuPath's default threshold).
DEFAULT_DAB_THRESHOLD = 0.2
#: Marker image grey level per unit of DAB OD (level = OD * this, capped at 255).
MARKER_LEVELS_PER_OD = 100.0


@dataclass(frozen=True)
class StainSettings:
    """Detection settings in physical units; converted to pixels for each resolution.

    Attributes
    ----------
    smoothing_sigma_um : float
        Gaussian sigma applied to the hematoxylin and DAB ODs (µm).
    background_radius_um : float
        Half-width of the square grey opening that estimates the local hematoxylin and DAB
        backgrounds (µm); QuPath's default background radius is 8 µm.
    min_nuclear_od : float
        Lowest foreground threshold on the hematoxylin contrast (OD); keeps blank or
        faint images from producing nuclei out of noise.
    dab_detection_od : float
        DAB contrast (OD above its local background) above which DAB adds to the nuclear
        signal (OD); by default the positivity threshold ``DEFAULT_DAB_THRESHOLD``.
    min_area_um2 : float
        Smallest nucleus kept (µm²); QuPath's default minimum nucleus area is 10 µm².
    max_area_um2 : float
        Largest nucleus kept (µm²); the ground-truth nuclei of the sample tiles are at most
        ~100 µm². Larger objects are looked into (``clump_max_dab_share``) and what is
        still larger is dropped.
    split_depth_um : float
        Touching nuclei are split where the distance to the background dips by more than
        this between two centres (µm): the depth of the h-maxima that mark nuclei.
    distance_smoothing_um : float
        Gaussian sigma applied to that distance map before its domes are found (µm), so
        the steps of the pixel grid do not make domes of their own.
    block_margin_um : float
        Context added around each block so nuclei crossing block edges are split the same
        way on both sides (µm).
    clump_threshold_step : float
        An object larger than ``max_area_um2`` found by its hematoxylin is packed nuclei
        whose gaps stay above the threshold: it is cut again with the threshold raised by
        this factor, up to ``clump_steps`` times, before what is still too large is dropped.
    clump_steps : int
        How many times the threshold is raised inside such a clump.
    clump_max_dab_share : float
        Largest share of a clump's nuclear signal that may come from DAB for it to be cut
        again as packed nuclei. An object found more through its DAB is stained tissue (a
        gland under a membranous or cytoplasmic stain): the nuclei in it are found by their
        hematoxylin alone, where it exceeds the threshold and the DAB part.
    """

    smoothing_sigma_um: float = 0.5
    background_radius_um: float = 8.0
    min_nuclear_od: float = 0.05
    dab_detection_od: float = DEFAULT_DAB_THRESHOLD
    min_area_um2: float = 10.0
    max_area_um2: float = 200.0
    split_depth_um: float = 0.125
    distance_smoothing_um: float = 0.25
    block_margin_um: float = 16.0
    clump_threshold_step: float = 1.3
    clump_steps: int = 3
    clump_max_dab_share: float = 0.25


@dataclass(frozen=True)
class PixelSettings:
    """:class:`StainSettings` with lengths and areas in pixels of one resolution."""

    sigma: float
    background_radius: int
    min_area: int
    max_area: int
    split_depth: float
    distance_sigma: float
    margin: int
    min_nuclear_od: float
    dab_detection_od: float
    clump_threshold_step: float
    clump_steps: int
    clump_max_dab_share: float

    @classmethod
    def from_settings(cls, settings: StainSettings, resolution: str) -> PixelSettings:
        """``settings`` at ``resolution`` ('40x', '20x' or '10x'), with its nominal pixel size."""
        mpp = MICRONS_PER_PIXEL_BY_RESOLUTION[resolution]
        return cls(
            sigma=settings.smoothing_sigma_um / mpp,
            background_radius=max(1, round(settings.background_radius_um / mpp)),
            min_area=max(1, round(settings.min_area_um2 / mpp**2)),
            max_area=round(settings.max_area_um2 / mpp**2),
            split_depth=settings.split_depth_um / mpp,
            distance_sigma=settings.distance_smoothing_um / mpp,
            margin=math.ceil(settings.block_margin_um / mpp),
            min_nuclear_od=settings.min_nuclear_od,
            dab_detection_od=settings.dab_detection_od,
            clump_threshold_step=settings.clump_threshold_step,
            clump_steps=settings.clump_steps,
            clump_max_dab_share=settings.clump_max_dab_share,
        )


def contrast(od: np.ndarray, px: PixelSettings) -> np.ndarray:
    """A stain's local contrast: its OD smoothed, minus its local background.

    Parameters
    ----------
    od : ndarray of float, shape (H, W)
        One stain's OD.
    px : PixelSettings
        Smoothing sigma and background radius in pixels.

    Returns
    -------
    ndarray of float, shape (H, W)
        Gaussian-smoothed OD (negative OD counted as 0) minus its grey opening over a square
        of half-width ``px.background_radius``; >= 0.
    """
    smooth = ndi.gaussian_filter(np.maximum(od, 0), px.sigma)
    return smooth - ndi.grey_opening(smooth, size=2 * px.background_radius + 1)


def nuclear_signal(ods: np.ndarray, px: PixelSettings) -> tuple[np.ndarray, np.ndarray]:
    """The two parts of the nuclear signal: hematoxylin contrast, and DAB contrast in excess
    of ``px.dab_detection_od``.

    Parameters
    ----------
    ods : ndarray of float, shape (H, W, 3)
        Hematoxylin, third-stain and DAB ODs.
    px : PixelSettings
        Settings in pixels.

    Returns
    -------
    tuple of ndarray of float, each shape (H, W)
        The hematoxylin and DAB parts (OD); :func:`segment_nuclei` thresholds their sum.
    """
    return contrast(ods[..., 0], px), np.maximum(contrast(ods[..., 2], px) - px.dab_detection_od, 0)


def segment_nuclei(hematoxylin: np.ndarray, dab: np.ndarray, threshold: float, px: PixelSettings) -> np.ndarray:
    """Nuclei where the nuclear signal exceeds ``threshold``, touching nuclei split; objects
    larger than a nucleus are looked into (step 4 of ``docs/stain-engine.md``): by their
    hematoxylin alone where they were found mostly through DAB (stained tissue), at a higher
    threshold where through hematoxylin (packed nuclei).

    Parameters
    ----------
    hematoxylin, dab : ndarray of float, shape (H, W)
        The parts of :func:`nuclear_signal` (OD).
    threshold : float
        Foreground threshold on their sum (OD).
    px : PixelSettings
        Areas, split depth, smoothing and clump settings in pixels.

    Returns
    -------
    ndarray of int32, shape (H, W)
        Nucleus labels, 0 for background; every nucleus reads back as one cell from
        :func:`render_seg`.
    """
    signal = hematoxylin + dab
    labels = _split(_objects(signal > threshold, px), px)
    _, stained = _oversized(labels, signal, dab, px)
    _recut(labels, stained, (hematoxylin > threshold) & (hematoxylin > dab), px)
    _cut_clumps(labels, signal, dab, threshold, px)
    sizes = np.bincount(labels.ravel())
    labels[(sizes[labels] < px.min_area) | (sizes[labels] > px.max_area)] = 0
    return _one_interior_each(labels)


def _objects(mask: np.ndarray, px: PixelSettings) -> np.ndarray:
    """Labelled objects of ``mask`` with holes filled, those under ``px.min_area`` removed."""
    objects, _ = ndi.label(ndi.binary_fill_holes(mask))
    sizes = np.bincount(objects.ravel())
    sizes[0] = 0
    objects[sizes[objects] < px.min_area] = 0
    return objects


def _split(objects: np.ndarray, px: PixelSettings) -> np.ndarray:
    """Watershed of the objects' distance transform from its domes (:func:`_domes`)."""
    if not objects.any():
        return objects.astype(np.int32)
    distance = ndi.distance_transform_edt(objects > 0)
    markers, _ = ndi.label(_domes(ndi.gaussian_filter(distance, px.distance_sigma), objects, px.split_depth),
                           structure=np.ones((3, 3)))
    return watershed(-distance, markers, mask=objects > 0).astype(np.int32)


def _oversized(labels: np.ndarray, signal: np.ndarray, dab: np.ndarray,
               px: PixelSettings) -> tuple[np.ndarray, np.ndarray]:
    """Which labels are larger than ``px.max_area``: (found mostly by their hematoxylin,
    found by their DAB), split at ``px.clump_max_dab_share`` of their signal; index 0 is False."""
    n = int(labels.max()) + 1
    area = np.bincount(labels.ravel(), minlength=n)
    total = np.bincount(labels.ravel(), weights=signal.ravel(), minlength=n)
    from_dab = np.bincount(labels.ravel(), weights=dab.ravel(), minlength=n)
    large = area > px.max_area
    large[0] = False
    by_dab = from_dab > px.clump_max_dab_share * total
    return large & ~by_dab, large & by_dab


def _recut(labels: np.ndarray, chosen: np.ndarray, mask: np.ndarray, px: PixelSettings) -> None:
    """Replace, in place, each label that ``chosen`` marks by the split objects of its pixels
    in ``mask``, numbered after every label."""
    boxes = ndi.find_objects(labels)
    top = int(labels.max(initial=0))
    for label in np.flatnonzero(chosen):
        box = boxes[label - 1]
        clump = labels[box] == label
        pieces = _split(_objects(clump & mask[box], px), px)
        within = labels[box]
        within[clump] = 0
        within[pieces > 0] = pieces[pieces > 0] + top
        top += int(pieces.max(initial=0))


def _cut_clumps(labels: np.ndarray, signal: np.ndarray, dab: np.ndarray, threshold: float,
                px: PixelSettings) -> None:
    """Cut, in place, the objects larger than ``px.max_area`` whose signal is mostly
    hematoxylin again, at ``px.clump_threshold_step`` times the threshold, then that
    squared, up to ``px.clump_steps`` times; each step re-examines the pieces of the last."""
    for step in range(1, px.clump_steps + 1):
        clumps, _ = _oversized(labels, signal, dab, px)
        if not clumps.any():
            return
        _recut(labels, clumps, signal > threshold * px.clump_threshold_step**step, px)


#: Pixel pairs that are 8-neighbours: (these pixels, their neighbours) to the right, below,
#: below right and below left.
_NEIGHBOURS = (
    ((slice(None), slice(None, -1)), (slice(None), slice(1, None))),
    ((slice(None, -1), slice(None)), (slice(1, None), slice(None))),
    ((slice(None, -1), slice(None, -1)), (slice(1, None), slice(1, None))),
    ((slice(None, -1), slice(1, None)), (slice(1, None), slice(None, -1))),
)


def _domes(height: np.ndarray, blobs: np.ndarray, depth: float) -> np.ndarray:
    """Markers of the nuclei in ``blobs``: the local maxima of ``height`` whose dome rises more
    than ``depth`` above the saddle to any higher one in the same blob (their dynamics, as in
    h-maxima), so two domes count apart only when the neck between them dips by more.

    Every local maximum gets its basin (a watershed of ``-height``); the saddle of two
    adjacent basins is the highest of ``min(height)`` over their adjacent pixel pairs; basins
    are then merged from the highest saddle down, and at each merge the lower of the two
    maxima is kept only if it rises more than ``depth`` above that saddle.
    """
    eight = np.ones((3, 3))
    tops, n_tops = ndi.label((height == ndi.maximum_filter(height, size=3)) & (blobs > 0), structure=eight)
    if n_tops < 2:
        return tops > 0
    basins = watershed(-height, tops, mask=blobs > 0, connectivity=2)
    peak = np.zeros(n_tops + 1)
    on_top = tops > 0
    np.maximum.at(peak, tops[on_top], height[on_top])
    keys, saddles = [], []
    for here, there in _NEIGHBOURS:
        a, b = basins[here], basins[there]
        across = (a != b) & (a > 0) & (b > 0) & (blobs[here] == blobs[there])
        low, high = np.minimum(a[across], b[across]), np.maximum(a[across], b[across])
        keys.append(low.astype(np.int64) * (n_tops + 1) + high)
        saddles.append(np.minimum(height[here][across], height[there][across]))
    keys, saddles = np.concatenate(keys), np.concatenate(saddles)
    if keys.size == 0:
        return tops > 0
    order = np.argsort(keys, kind="stable")
    keys, saddles = keys[order], saddles[order]
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    pair_keys, pair_saddles = keys[starts], np.maximum.reduceat(saddles, starts)
    root = np.arange(n_tops + 1)

    def find(i: int) -> int:
        while root[i] != i:
            root[i] = root[root[i]]
            i = root[i]
        return i

    kept = np.ones(n_tops + 1, dtype=bool)
    for index in np.argsort(-pair_saddles, kind="stable"):
        first, second = find(int(pair_keys[index] // (n_tops + 1))), find(int(pair_keys[index] % (n_tops + 1)))
        if first == second:
            continue
        lower, higher = (first, second) if peak[first] < peak[second] else (second, first)
        kept[lower] = peak[lower] - pair_saddles[index] > depth
        root[lower] = higher
    kept[0] = False
    return kept[tops]


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


def positive_labels(labels: np.ndarray, dab: np.ndarray, dab_threshold: float) -> np.ndarray:
    """Which nuclei are positive: mean DAB OD above ``dab_threshold``.

    Parameters
    ----------
    labels : ndarray of int, shape (H, W)
        Nucleus labels, 0 for background.
    dab : ndarray of float, shape (H, W)
        DAB OD.
    dab_threshold : float
        Mean nuclear DAB OD above which a nucleus is positive.

    Returns
    -------
    ndarray of bool, shape (max label + 1,)
        True for a positive label; index 0 (background) is False.
    """
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


def render_hema(hematoxylin_od: np.ndarray, colour: tuple[float, float, float] | None = None) -> np.ndarray:
    """Hematoxylin-only RGB image (uint8, H x W x 3) from hematoxylin OD (H x W).

    ``colour`` is the hematoxylin OD vector (red, green, blue), by default scikit-image's.
    """
    vector = rgb_from_hed[0] if colour is None else np.asarray(colour)
    od = np.maximum(hematoxylin_od, 0)[..., None] * vector.astype(np.float32)
    return np.clip(np.rint(255.0 * np.power(np.float32(10.0), -od)), 0, 255).astype(np.uint8)


def render_marker(dab_od: np.ndarray) -> np.ndarray:
    """Grey DAB image on black (uint8, H x W x 3): level = DAB OD * 100, capped at 255."""
    level = np.clip(np.rint(dab_od * MARKER_LEVELS_PER_OD), 0, 255).astype(np.uint8)
    return np.repeat(level[..., None], 3, axis=2)


def classified_by_dab(ihc: np.ndarray, labels: np.ndarray, unmixing: np.ndarray,
                      dab_threshold: float) -> dict[str, np.ndarray]:
    """``Marker`` and ``Seg`` of nuclei found on another image, each classified by the mean
    DAB OD of the IHC image under it (the translate segmenters' last step).

    Parameters
    ----------
    ihc : ndarray of uint8, shape (H, W, 3)
        The IHC tile.
    labels : ndarray of int, shape (H, W)
        Nucleus labels, 0 for background.
    unmixing : ndarray, shape (3, 3)
        OD to (H, E or other, DAB) matrix.
    dab_threshold : float
        Mean nuclear DAB OD above which a nucleus is positive.

    Returns
    -------
    dict
        ``Marker`` (:func:`render_marker` of the DAB OD) and ``Seg`` (:func:`render_seg`).
    """
    from napari_deepliif.rgb import stain_od

    dab = stain_od(np.ascontiguousarray(ihc), unmixing)[..., 2]
    return {"Marker": render_marker(dab), "Seg": render_seg(labels, positive_labels(labels, dab, dab_threshold))}
