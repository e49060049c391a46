"""Stain measurements of a slide's cells, window by window, equal to one pass over the image.

A cell's measurements (:func:`napari_deepliif.cells.measure.measure_cells`) depend on more
than its own pixels: its expansion takes the background within ``d`` (the expansion in
pixels) that is nearer to it than to any other nucleus, so nuclei up to ``2 d`` away count,
and its membrane ring looks ``r`` (the ring width) beyond the expanded cells. So the cell's
columns in a window equal the whole image's when the window holds everything within
``2 d + r`` of the cell (its *reach*) and every cell there is whole in the window: a cell
cut by the window edge, or a piece of one dropped as noise (a piece of at most
``NOISE_SIZE`` pixels lies within that many pixels of the edge), could change its
neighbourhood. :func:`exact_rows` tells which cells of a window meet that test; the others
are measured again in a window grown around them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from napari_deepliif.cells.find import CellMap, CellTable, touches_window_edge
from napari_deepliif.cells.measure import measure_cells
from napari_deepliif.constants import NOISE_SIZE

Window = tuple[int, int, int, int]  #: (y0, y1, x0, x1)


@dataclass(frozen=True, eq=False)
class Measuring:
    """How a slide's cells are measured.

    Attributes
    ----------
    image : array-like, shape (H, W, 3), uint8
        The IHC pixels the engine read (the level scored, or its region).
    microns_per_pixel : float
        Pixel size of ``image`` (µm/px).
    expansion_um, membrane_um : float
        Cell expansion and membrane ring width (µm).
    positive_od : float
        DAB OD above which a membrane pixel is stained (the membrane completeness).
    unmixing : ndarray, shape (3, 3), optional
        The run's stain unmixing matrix (``EngineBase.unmixing`` of its statistics); None: HED.
    """

    image: Any
    microns_per_pixel: float
    expansion_um: float
    membrane_um: float
    positive_od: float
    unmixing: np.ndarray | None = None

    @property
    def reach(self) -> int:
        """Pixels around a cell its measurements depend on (see module docstring), plus one
        for rounding."""
        if not self.expansion_um > 0:
            return 1
        expansion = self.expansion_um / self.microns_per_pixel
        ring = max(1, round(self.membrane_um / self.microns_per_pixel))
        return math.ceil(2 * expansion) + ring + 1

    def measure(self, cells: CellMap, window: Window) -> dict[str, np.ndarray]:
        """Every measurement column (QuPath names, membrane completeness at ``positive_od``)
        of the cells of ``window``, one value per row of ``cells.table``."""
        y0, y1, x0, x1 = window
        rgb = np.asarray(self.image[y0:y1, x0:x1])[..., :3]
        measured = measure_cells(cells.labels(), rgb, self.microns_per_pixel, n_cells=len(cells.table),
                                 expansion_um=self.expansion_um, membrane_um=self.membrane_um,
                                 unmixing=self.unmixing)
        return measured.table(self.positive_od)


def exact_rows(table: CellTable, window: Window, shape: tuple[int, int], reach: int) -> np.ndarray:
    """(n,) bool: cells of ``window`` whose measurements there are the whole image's.

    Parameters
    ----------
    table : CellTable
        The window's cells (window pixels).
    window : (y0, y1, x0, x1)
        In image pixels.
    shape : (int, int)
        (H, W) of the image.
    reach : int
        :attr:`Measuring.reach`.
    """
    height, width = shape
    y0, y1, x0, x1 = window
    # the reach of each cell, in window pixels, clipped to the image
    zone = table.bbox + np.array([-reach, -reach, reach, reach])
    zone = np.stack([np.maximum(zone[:, 0], -y0), np.maximum(zone[:, 1], -x0),
                     np.minimum(zone[:, 2], height - y0), np.minimum(zone[:, 3], width - x0)], axis=1)
    # noise pieces at a window edge (not the image's) lie within NOISE_SIZE px of it
    inside = (((zone[:, 0] >= NOISE_SIZE) | (y0 == 0)) & ((zone[:, 1] >= NOISE_SIZE) | (x0 == 0))
              & ((zone[:, 2] <= (y1 - y0) - NOISE_SIZE) | (y1 == height))
              & ((zone[:, 3] <= (x1 - x0) - NOISE_SIZE) | (x1 == width)))
    cut = table.bbox[touches_window_edge(table.bbox, window, shape)]
    if len(cut):
        meets = ((zone[:, None, 0] < cut[None, :, 2]) & (cut[None, :, 0] < zone[:, None, 2])
                 & (zone[:, None, 1] < cut[None, :, 3]) & (cut[None, :, 1] < zone[:, None, 3]))
        inside &= ~meets.any(axis=1)
    return inside
