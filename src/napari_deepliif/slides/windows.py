"""Cells of one window of a slide: the windows a slide is read in, the cells of a window of a
Seg map or a class map, and a cell found (or measured) whole in a window grown around it.

These are the steps of :func:`napari_deepliif.slides.cells.find_slide_cells` (the merge rule
is described there) that the cell labels and outlines (:mod:`napari_deepliif.slides.export`)
repeat.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from napari_deepliif.cells.classmap import ClassPixels
from napari_deepliif.cells.find import CellMap, SegPixels, touches_window_edge
from napari_deepliif.rgb import MIN_EDGE
from napari_deepliif.slides.measurements import Measuring, exact_rows

Window = tuple[int, int, int, int]  #: (y0, y1, x0, x1)


def windows(shape: tuple[int, int], core: int, margin: int) -> Iterator[tuple[Window, Window]]:
    """(core, window) boxes in raster order; windows are cores grown by ``margin``, clipped."""
    height, width = shape
    for y in range(0, height, core):
        for x in range(0, width, core):
            inner = (y, min(y + core, height), x, min(x + core, width))
            yield inner, (max(0, y - margin), min(height, inner[1] + margin),
                          max(0, x - margin), min(width, inner[3] + margin))


@dataclass(frozen=True, eq=False)
class ClassMap:
    """A class-map model's class map over the image (its ``Classes`` output): what the
    slide's cells are found from instead of a Seg map (see :mod:`napari_deepliif.cells.classmap`).

    Attributes
    ----------
    array : array-like, shape (H, W, 3), uint8
        Class index per pixel (in every channel).
    class_names : tuple of str
        Name of each class index (0: background).
    positive_classes : tuple of int
        Class indexes counted as positive.
    """

    array: Any
    class_names: tuple[str, ...]
    positive_classes: tuple[int, ...]

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.array.shape)


def window_cells(seg: Any, marker: Any | None, window: Window,
                 seg_thresh: int) -> tuple[CellMap, SegPixels | ClassPixels]:
    """Cells of one window of an H x W x 3 Seg map (and Marker) or of a :class:`ClassMap`
    (each cell with its majority class)."""
    y0, y1, x0, x1 = window
    if isinstance(seg, ClassMap):
        pixels = ClassPixels.from_map(np.asarray(seg.array[y0:y1, x0:x1]), seg.class_names, seg.positive_classes)
    else:
        pixels = SegPixels.from_images(np.asarray(seg[y0:y1, x0:x1]),
                                       None if marker is None else np.asarray(marker[y0:y1, x0:x1]))
    return pixels.find_cells(seg_thresh), pixels


def _grown(seg: Any, marker: Any | None, seed: tuple[int, int], bbox: Any, shape: tuple[int, int], grow: int,
           seg_thresh: int, settled: Callable[[CellMap, int, Window], bool]) -> tuple[CellMap, int, Window]:
    """The cells of a window ``grow`` px around ``bbox``, and the row of the cell holding
    ``seed``: the window is grown around that cell, ``grow`` doubling, until ``settled``."""
    height, width = shape
    box = [int(v) for v in bbox]
    while True:
        window = (max(0, box[0] - grow), min(height, box[2] + grow), max(0, box[1] - grow), min(width, box[3] + grow))
        cells, _ = window_cells(seg, marker, window, seg_thresh)
        label = cells.label_at(seed[0] - window[0], seed[1] - window[2])
        row = int(np.flatnonzero(cells.table.id == label)[0])
        if settled(cells, row, window):
            return cells, row, window
        t = cells.table.bbox[row]
        box = [t[0] + window[0], t[1] + window[2], t[2] + window[0], t[3] + window[2]]
        grow *= 2


def whole_cell(seg: Any, marker: Any | None, seed: tuple[int, int], bbox: np.ndarray, shape: tuple[int, int],
               margin: int, seg_thresh: int) -> tuple[CellMap, int, Window]:
    """The cell holding pixel ``seed`` (y, x), found whole: in a window grown around ``bbox``
    ((min_row, min_col, max_row, max_col) of what is known of it, image pixels) until the
    cell no longer touches the window's edge (or the window is the image).

    Returns
    -------
    (CellMap, int, Window)
        The window's cells, the cell's row in their table, and the window.
    """
    # a window is at least MIN_EDGE px on a side
    return _grown(seg, marker, seed, bbox, shape, max(int(margin), MIN_EDGE), seg_thresh,
                  lambda cells, row, window: not touches_window_edge(cells.table.bbox, window, shape)[row])


def measured_cell(seg: Any, marker: Any | None, measuring: Measuring, seed: tuple[int, int], bbox: np.ndarray,
                  shape: tuple[int, int], margin: int, seg_thresh: int) -> dict[str, float]:
    """The measurements of the cell holding pixel ``seed`` (y, x), in a window grown around
    ``bbox`` (image pixels, as :func:`whole_cell`) until the cell and its neighbourhood are
    whole in it (:func:`~napari_deepliif.slides.measurements.exact_rows`)."""
    whole_image = (0, shape[0], 0, shape[1])
    cells, row, window = _grown(
        seg, marker, seed, bbox, shape, max(int(margin), MIN_EDGE) + measuring.reach, seg_thresh,
        lambda cells, row, window: exact_rows(cells.table, window, shape, measuring.reach)[row] or window == whole_image)
    return {name: float(values[row]) for name, values in measuring.measure(cells, window).items()}


def measured_rows(seg: Any, marker: Any | None, measuring: Measuring, cells: CellMap, rows: np.ndarray,
                   first: np.ndarray, window: Window, shape: tuple[int, int], margin: int,
                   seg_thresh: int) -> dict[str, np.ndarray]:
    """Measurements of the window's cells ``rows`` (``first``: their first pixels, image
    pixels): measured in the window where it holds their neighbourhood, else alone."""
    columns = {name: values[rows] for name, values in measuring.measure(cells, window).items()}
    exact = exact_rows(cells.table, window, shape, measuring.reach)[rows]
    offset = (window[0], window[2], window[0], window[2])
    for k in np.flatnonzero(~exact):
        alone = measured_cell(seg, marker, measuring, tuple(first[k]), cells.table.bbox[rows[k]] + offset, shape,
                              margin, seg_thresh)
        for name, value in alone.items():
            columns[name][k] = value
    return columns
