"""The reference's SegRefined and SegOverlaid images, drawn from the counted cells.

What the reference (``deepliif`` 1.2.7, checked pixel for pixel against its outputs) draws:
only counted cells (after size gating, in their final class, marker threshold included).
Borders lie in the background around a cell, not on it:

1. a cell's first pixel in raster order is a border pixel of its class;
2. every background pixel 4-adjacent to another pixel of a counted cell becomes a border
   pixel of that cell's class (the first such cell in table order wins);
3. twice: every background pixel with a border pixel among its 8 neighbours becomes a border
   pixel, of the class of the first such neighbour in raster order.

SegRefined: border pixels green, the other pixels of positive cells red, of negative cells
blue (holes included), the rest black. SegOverlaid: the input image with border pixels red
(positive) or blue (negative). Background is as in :mod:`napari_deepliif.cells.find`.
"""

from __future__ import annotations

import numpy as np

from napari_deepliif.cells.find import CellMap
from napari_deepliif.constants import BOUNDARY_RGB, NEGATIVE_RGB, POSITIVE_RGB
from napari_deepliif.errors import InputImageError
from napari_deepliif.rgb import check_input

_POSITIVE, _NEGATIVE = 1, 2
#: How many times borders grow by one pixel into the background.
_BORDER_GROWTH = 2
_NEIGHBOURS_4 = ((-1, 0), (1, 0), (0, -1), (0, 1))
#: 8-neighbour offsets (dy, dx) in raster order.
_NEIGHBOURS_RASTER = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1))


def _pairs(shape: tuple[int, int], dy: int, dx: int) -> tuple[tuple[slice, slice], tuple[slice, slice]]:
    """Slices (at, neighbour) pairing each pixel p with p + (dy, dx) where both lie in ``shape``."""
    h, w = shape
    at = (slice(max(0, -dy), h - max(0, dy)), slice(max(0, -dx), w - max(0, dx)))
    neighbour = (slice(max(0, dy), h - max(0, -dy)), slice(max(0, dx), w - max(0, -dx)))
    return at, neighbour


def cell_classes_and_borders(cells: CellMap, counted: np.ndarray,
                             positive: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel class of the counted cells and of their borders (module docstring).

    Parameters
    ----------
    cells : CellMap
    counted, positive : ndarray, shape (n,), bool
        Which cells are drawn and their final class.

    Returns
    -------
    interior, border : ndarray, shape (H, W), uint8
        1 (positive) or 2 (negative) on the pixels of drawn cells / on border pixels, else 0.
    """
    drawn_class = np.where(counted, np.where(positive, _POSITIVE, _NEGATIVE), 0).astype(np.uint8)
    interior = cells.paint(drawn_class, 0)
    background = cells.background()
    # owner: table index of the drawn cell on each pixel, max uint32 elsewhere and on first pixels
    index = np.where(counted, np.arange(len(counted), dtype=np.uint32), np.iinfo(np.uint32).max)
    owner = cells.paint(index, np.iinfo(np.uint32).max)
    first = cells.first_pixels()[counted]
    owner[first[:, 0], first[:, 1]] = np.iinfo(np.uint32).max
    nearest = np.full_like(owner, np.iinfo(np.uint32).max)
    for dy, dx in _NEIGHBOURS_4:
        at, neighbour = _pairs(owner.shape, dy, dx)
        np.minimum(nearest[at], owner[neighbour], out=nearest[at])
    border = np.zeros_like(interior)
    on_border = background & (nearest != np.iinfo(np.uint32).max)
    border[on_border] = drawn_class[nearest[on_border]]
    border[first[:, 0], first[:, 1]] = drawn_class[counted]
    for _ in range(_BORDER_GROWTH):
        grown = np.zeros_like(border)
        for dy, dx in _NEIGHBOURS_RASTER:
            at, neighbour = _pairs(border.shape, dy, dx)
            np.copyto(grown[at], border[neighbour], where=grown[at] == 0)
        np.copyto(border, grown, where=background & (border == 0))
    return interior, border


def seg_refined(interior: np.ndarray, border: np.ndarray) -> np.ndarray:
    """SegRefined (H x W x 3 uint8) from :func:`cell_classes_and_borders`."""
    refined = np.zeros((*interior.shape, 3), dtype=np.uint8)
    refined[interior == _POSITIVE] = POSITIVE_RGB
    refined[interior == _NEGATIVE] = NEGATIVE_RGB
    refined[border != 0] = BOUNDARY_RGB
    return refined


def seg_overlaid(image: np.ndarray, border: np.ndarray) -> np.ndarray:
    """SegOverlaid (H x W x 3 uint8): ``image`` with positive borders red, negative blue.

    Parameters
    ----------
    image : array-like, shape (H, W, 3), uint8, or (H, W) uint8 or uint16
        The input image the cells were found in (alpha ignored); a one-channel image is
        drawn grey (16-bit scaled so that its brightest pixel is white).
    border : ndarray, shape (H, W), uint8
        From :func:`cell_classes_and_borders`.
    """
    overlaid = _drawable(np.asarray(check_input(image, "image", grey=True)))
    if overlaid.shape[:2] != border.shape:
        raise InputImageError(
            f"image is {overlaid.shape[1]} x {overlaid.shape[0]} px but the Seg map is"
            f" {border.shape[1]} x {border.shape[0]} px")
    overlaid[border == _POSITIVE] = POSITIVE_RGB
    overlaid[border == _NEGATIVE] = NEGATIVE_RGB
    return overlaid


def _drawable(pixels: np.ndarray) -> np.ndarray:
    """A new H x W x 3 uint8 copy of checked pixels (RGB, or one channel drawn grey)."""
    if pixels.ndim == 3:
        return np.array(pixels, dtype=np.uint8)
    if pixels.dtype == np.uint16:
        top = max(int(pixels.max()), 1)
        pixels = (pixels.astype(np.uint32) * 255 // top).astype(np.uint8)
    return np.repeat(pixels[..., None], 3, axis=2)
