"""A cheap tissue mask from a low-resolution view, so glass is never sent through the networks.

Rule: on a view of :data:`MASK_MPP` µm/px (long side between :data:`MIN_MASK_SIZE` and
:data:`MASK_SIZE` px; the pixel size is the slide's, else the one the magnification scored
implies), a pixel is tissue when its
HSV saturation ``(max - min) / max`` (Gaussian-smoothed) exceeds a threshold: Otsu's
threshold of the saturation, clamped to :data:`SATURATION_RANGE` so that a slide that is all
tissue (or all glass) is not split in two. The mask is then closed, its holes filled, specks
under :data:`MIN_OBJECT_PX` removed and the rest dilated by :data:`DILATE_PX` (tissue edges
keep their tiles). Stained tissue (hematoxylin, DAB) is saturated; glass and the white
background are not.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage as ndi
from skimage.filters import threshold_otsu
from skimage.morphology import disk

from napari_deepliif.constants import MICRONS_PER_PIXEL_BY_RESOLUTION
from napari_deepliif.slides.readers import Downsampled, Slide

log = logging.getLogger(__name__)

#: Pixel size of the view the mask is computed on (µm/px): nuclei and the gaps between them
#: blur into tissue, glass stays glass.
MASK_MPP = 8.0
#: Longest side of that view (pixels), at most...
MASK_SIZE = 2048
#: ...and at least (a small image keeps enough pixels for the rule's sizes to make sense).
MIN_MASK_SIZE = 64
#: Saturation threshold is Otsu's, clamped to this range.
SATURATION_RANGE = (0.04, 0.12)
#: Gaussian sigma (mask pixels) applied to the saturation first.
SMOOTHING_PX = 1.0
#: Closing radius, smallest object kept and dilation (mask pixels).
CLOSING_PX = 2
MIN_OBJECT_PX = 16
DILATE_PX = 2
#: Rows read at once when averaging a large level down (bounds memory).
_ROWS_PER_READ = 64


@dataclass(frozen=True)
class TissueMask:
    """Tissue (True) / background mask of a slide at a low resolution.

    Attributes
    ----------
    mask : ndarray, shape (h, w), bool
    downsample : float
        Level-0 pixels per mask pixel.
    threshold : float
        The saturation threshold used.
    """

    mask: np.ndarray
    downsample: float
    threshold: float

    @property
    def fraction(self) -> float:
        """Share of the slide that is tissue."""
        return float(self.mask.mean()) if self.mask.size else 0.0

    def includer(self, downsample: float = 1.0, origin: tuple[int, int] = (0, 0)) -> Callable[[int, int, int, int], bool]:
        """:meth:`covers` as a ``(y0, y1, x0, x1) -> bool`` test of boxes of an image at
        ``downsample`` whose pixel (0, 0) is pixel ``origin`` (y, x) of its level."""
        oy, ox = origin

        def include(y0: int, y1: int, x0: int, x1: int) -> bool:
            return self.covers(y0 + oy, y1 + oy, x0 + ox, x1 + ox, downsample)

        return include

    def covers(self, y0: int, y1: int, x0: int, x1: int, downsample: float = 1.0) -> bool:
        """Whether the box ``[y0, y1) x [x0, x1)`` of an image at ``downsample`` holds tissue.

        Coordinates are pixels of the image scored (level 0 divided by ``downsample``).
        """
        scale = downsample / self.downsample
        r0, c0 = int(math.floor(y0 * scale)), int(math.floor(x0 * scale))
        r1, c1 = int(math.ceil(y1 * scale)), int(math.ceil(x1 * scale))
        return bool(self.mask[max(r0, 0) : max(r1, r0 + 1), max(c0, 0) : max(c1, c0 + 1)].any())


def _low_resolution_view(slide: Slide, mpp: float | None) -> tuple[np.ndarray, float]:
    """The slide averaged down to about :data:`MASK_MPP` µm/px (see module docstring) from the
    coarsest level fine enough, level 0 being ``mpp`` µm/px; returns RGB and its downsample
    from level 0."""
    longest = max(slide.shape)
    wanted = max(min(MASK_MPP / mpp if mpp else 1.0, longest / MIN_MASK_SIZE), longest / MASK_SIZE, 1.0)
    index = max((i for i, lvl in enumerate(slide.levels) if lvl.downsample <= wanted),
                key=lambda i: slide.levels[i].downsample)
    level = slide.level(index)
    factor = max(1, math.floor(wanted / slide.levels[index].downsample))
    view: Any = level if factor == 1 else Downsampled(level, factor)
    height, width = view.shape[:2]
    rows = [np.asarray(view[y : min(y + _ROWS_PER_READ, height), 0:width])[..., :3]
            for y in range(0, height, _ROWS_PER_READ)]
    return np.concatenate(rows), slide.levels[index].downsample * factor


def saturation(rgb: np.ndarray) -> np.ndarray:
    """HSV saturation ``(max - min) / max`` in [0, 1] (0 for black)."""
    high = rgb.max(axis=-1).astype(np.float32)
    low = rgb.min(axis=-1).astype(np.float32)
    return np.divide(high - low, high, out=np.zeros_like(high), where=high > 0)


def tissue_mask_from_rgb(rgb: np.ndarray, downsample: float = 1.0) -> TissueMask:
    """Tissue mask of a low-resolution RGB view (see module docstring).

    Parameters
    ----------
    rgb : ndarray, shape (h, w, 3), uint8
    downsample : float
        Level-0 pixels per pixel of ``rgb``.
    """
    sat = ndi.gaussian_filter(saturation(rgb), SMOOTHING_PX)
    otsu = float(threshold_otsu(sat)) if np.ptp(sat) > 0 else SATURATION_RANGE[1]
    threshold = float(np.clip(otsu, *SATURATION_RANGE))
    padded = np.pad(sat > threshold, CLOSING_PX)  # a closing must not eat tissue at the border
    mask = ndi.binary_closing(padded, disk(CLOSING_PX))[CLOSING_PX:-CLOSING_PX, CLOSING_PX:-CLOSING_PX]
    mask = ndi.binary_fill_holes(mask)
    labels, _ = ndi.label(mask)
    mask = (np.bincount(labels.ravel()) >= MIN_OBJECT_PX)[labels] & mask
    mask = ndi.binary_dilation(mask, disk(DILATE_PX))
    log.debug("tissue mask %s at downsample %.2f: threshold %.3f, %.1f%% tissue",
              mask.shape, downsample, threshold, 100 * mask.mean())
    return TissueMask(mask, float(downsample), threshold)


def tissue_mask(slide: Slide, assumed_mpp: float | None = None) -> TissueMask:
    """Tissue mask of a slide from a low-resolution view (see module docstring).

    ``assumed_mpp``: the full-resolution pixel size to work with when the slide states none
    (the magnification it is scored at says it), so that the view is small all the same.
    """
    rgb, downsample = _low_resolution_view(slide, slide.mpp or assumed_mpp)
    return tissue_mask_from_rgb(rgb, downsample)


def levels_tissue(levels: list[Any], level: int, resolution: str,
                  mpp: float | None = None) -> Callable[[int, int, int, int], bool]:
    """The tissue test of ``score`` and ``batch`` for in-memory pyramid levels (a napari
    layer's, or an uploaded image as one level): which boxes of level ``level`` hold tissue.

    Parameters
    ----------
    levels : list of array-like
        H x W x 3 levels, level 0 first.
    level : int
        The level the boxes are in, scored at ``resolution``.
    resolution : str
        Its magnification: gives level 0's pixel size when ``mpp`` is unknown.
    mpp : float, optional
        Level 0's pixel size (µm/px).
    """
    slide = Slide.from_arrays("levels", levels, mpp)
    downsample = slide.levels[level].downsample
    assumed = MICRONS_PER_PIXEL_BY_RESOLUTION[resolution] / downsample
    return tissue_mask(slide, assumed).includer(downsample)
