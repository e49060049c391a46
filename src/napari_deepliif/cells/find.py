"""Cells of a DeepLIIF Seg map, as the reference postprocessing finds them.

Rules (``docs/deepliif-reference.md``, "Postprocessing"): a pixel is a cell pixel if
``R + B > seg_thresh`` and ``G <= 80``, positive if ``R >= B``. Background is the non-cell
pixels 4-connected to the image border; every other pixel (cell pixels and the non-cell holes
they enclose) belongs to a cell, and cells are its 8-connected components. Cells of
``NOISE_SIZE`` pixels or fewer are noise and dropped.

The image is handled as horizontal runs of equal pixel code, so that a change of ``seg_thresh``
only relabels runs (tens of thousands) instead of pixels (millions); per-cell values are
reductions over runs, and pixel images (labels, masks) are painted from the runs on demand.

Coordinates: arrays are indexed ``[row, col]`` = ``[y, x]`` with the origin at the top-left
pixel centre; sizes are in pixels.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cached_property
from typing import ClassVar

import numpy as np

from napari_deepliif.constants import NOISE_SIZE, SEG_BOUNDARY_MAX_GREEN
from napari_deepliif.errors import InputImageError
from napari_deepliif.rgb import check_rgb

logger = logging.getLogger(__name__)

#: Pixel codes of :meth:`SegPixels.pixel_codes`.
NON_CELL, NEGATIVE_PIXEL, POSITIVE_PIXEL = 0, 1, 2
#: Largest meaningful ``seg_thresh``: R + B of a uint8 RGB pixel is at most 510.
MAX_SEG_THRESH = 510


def _max_channel(marker: object, shape: tuple[int, int]) -> np.ndarray:
    """Marker reduced per pixel to max(R, G, B); a 2-D uint8 marker is used as it is."""
    if getattr(marker, "ndim", None) == 2 and getattr(marker, "dtype", None) == np.uint8:
        grey = np.asarray(marker)
    else:
        rgb = np.asarray(check_rgb(marker, "Marker"))
        grey = np.maximum(np.maximum(rgb[..., 0], rgb[..., 1]), rgb[..., 2])
    if grey.shape != shape:
        raise InputImageError(
            f"Marker is {grey.shape[1]} x {grey.shape[0]} px but Seg is {shape[1]} x {shape[0]} px;"
            " they must come from the same image"
        )
    return np.ascontiguousarray(grey)


@dataclass(frozen=True, eq=False)
class SegPixels:
    """Per-pixel data of one Seg map (and Marker) that no threshold changes.

    Attributes
    ----------
    red_plus_blue : ndarray, shape (H, W), int16
        ``R + B`` of the Seg map, or -1 where ``G > 80`` (such a pixel is never a cell).
    class_code : ndarray, shape (H, W), uint8
        ``POSITIVE_PIXEL`` where ``R >= B``, else ``NEGATIVE_PIXEL``.
    marker : ndarray, shape (H, W), uint8, or None
        Marker image reduced per pixel to ``max(R, G, B)``.
    """

    red_plus_blue: np.ndarray
    class_code: np.ndarray
    marker: np.ndarray | None
    #: A ``'default'`` size threshold follows the reference's rule (``scoring.default_size_threshold``).
    size_default_from_kde: ClassVar[bool] = True

    @classmethod
    def from_images(cls, seg: np.ndarray, marker: np.ndarray | None = None) -> SegPixels:
        """Validate a Seg map and optional Marker and prepare them.

        Parameters
        ----------
        seg : array-like, shape (H, W, 3), uint8
            DeepLIIF Seg map (red positive, blue negative, green boundary); an alpha channel
            is ignored.
        marker : array-like, shape (H, W, 3) or (H, W), uint8, optional
            Marker image of the same H x W.

        Raises
        ------
        InputImageError
            If an image has the wrong type, shape or dtype.
        """
        seg = np.asarray(check_rgb(seg, "Seg"))
        red, green, blue = seg[..., 0], seg[..., 1], seg[..., 2]
        red_plus_blue = np.add(red, blue, dtype=np.int16)
        red_plus_blue[green > SEG_BOUNDARY_MAX_GREEN] = -1
        class_code = np.where(red >= blue, np.uint8(POSITIVE_PIXEL), np.uint8(NEGATIVE_PIXEL))
        grey = None if marker is None else _max_channel(marker, seg.shape[:2])
        return cls(red_plus_blue, class_code, grey)

    @property
    def shape(self) -> tuple[int, int]:
        """(H, W) in pixels."""
        return self.red_plus_blue.shape

    def pixel_codes(self, seg_thresh: int) -> np.ndarray:
        """(H, W) uint8 image of ``NON_CELL``, ``NEGATIVE_PIXEL`` or ``POSITIVE_PIXEL``."""
        return np.multiply(self.red_plus_blue > seg_thresh, self.class_code)

    def find_cells(self, seg_thresh: int) -> CellMap:
        """The cells of this map at ``seg_thresh`` (:func:`find_cells`)."""
        return find_cells(self, seg_thresh)


@dataclass(frozen=True)
class CellTable:
    """One row per cell (noise excluded), in raster order of each cell's first pixel.

    Attributes
    ----------
    id : ndarray, shape (n,), uint32
        Label of the cell in :meth:`CellMap.labels`: ``1 .. n``.
    area : ndarray, shape (n,), int64
        Pixels of the cell, enclosed holes included.
    centroid : ndarray, shape (n, 2), float64
        Mean ``(y, x)`` = ``(row, col)`` of the cell's pixels (holes included); see
        :attr:`centroid_xy` for ``(x, y)``.
    bbox : ndarray, shape (n, 4), int64
        ``(min_row, min_col, max_row, max_col)`` with the max exclusive (as
        ``skimage.measure.regionprops``).
    n_positive_px, n_negative_px : ndarray, shape (n,), int64
        Cell pixels with ``R >= B`` / ``R < B`` (holes are neither).
    positive : ndarray, shape (n,), bool
        Class from the Seg map: ``n_positive_px >= n_negative_px``.
    marker : ndarray, shape (n,), uint8
        Max of the Marker (reduced to max(R, G, B)) over the cell, holes included; 0 without
        a Marker.
    cell_class : ndarray, shape (n,), int64, or None
        Class index of each cell, for cells of a class map (:mod:`.classmap`); None for a Seg map.
    class_names : tuple of str, or None
        Names of the class indexes (0: background), with ``cell_class``.
    positive_classes : tuple of int, or None
        Class indexes whose cells are positive, with ``cell_class``.
    """

    id: np.ndarray
    area: np.ndarray
    centroid: np.ndarray
    bbox: np.ndarray
    n_positive_px: np.ndarray
    n_negative_px: np.ndarray
    positive: np.ndarray
    marker: np.ndarray
    cell_class: np.ndarray | None = None
    class_names: tuple[str, ...] | None = None
    positive_classes: tuple[int, ...] | None = None

    def __len__(self) -> int:
        return int(self.id.size)

    @property
    def centroid_xy(self) -> np.ndarray:
        """(n, 2) float64 centroids as ``(x, y)``."""
        return self.centroid[:, ::-1]

    @property
    def centroid_pixel(self) -> np.ndarray:
        """(n, 2) int64 ``(y, x)`` pixel of each centroid, rounded half to even as the reference."""
        return np.rint(self.centroid).astype(np.int64)

    def reference_records(self) -> list[dict]:
        """Cells as the reference's ``compute_cell_results(version=3)`` lists them, minus the boundary.

        Returns
        -------
        list of dict
            ``{"size", "positive", "marker", "bbox": [[x0, y0], [x1, y1]] (inclusive),
            "centroid": [x, y] (rounded half to even)}`` per cell.
        """
        y, x = self.centroid_pixel.T
        return [
            {
                "size": int(self.area[i]),
                "positive": bool(self.positive[i]),
                "marker": int(self.marker[i]),
                "bbox": [[int(self.bbox[i, 1]), int(self.bbox[i, 0])],
                         [int(self.bbox[i, 3]) - 1, int(self.bbox[i, 2]) - 1]],
                "centroid": [int(x[i]), int(y[i])],
            }
            for i in range(len(self))
        ]


def _runs(codes: np.ndarray) -> tuple[np.ndarray, ...]:
    """Maximal horizontal runs of equal code, in raster order: start (flat index), length, code."""
    width = codes.shape[1]
    flat = codes.ravel()
    new_run = np.empty(flat.size, dtype=bool)
    new_run[0] = True
    np.not_equal(flat[1:], flat[:-1], out=new_run[1:])
    new_run[::width] = True
    start = np.flatnonzero(new_run)
    length = np.diff(start, append=flat.size)
    return start, length, flat[start]


def _row_first_run(start: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(H + 1,) index of each row's first run (``start``: runs' flat indices in raster order);
    the last entry is the number of runs."""
    return np.searchsorted(start, np.arange(shape[0] + 1) * shape[1])


@dataclass(frozen=True, eq=False)
class CellMap:
    """Cells of one Seg map at one ``seg_thresh``: the table and the run image behind it.

    Pixel images are painted from runs on demand; see :meth:`labels` and :meth:`paint`.
    """

    table: CellTable
    shape: tuple[int, int]
    seg_thresh: int
    _run_length: np.ndarray  # (m,) pixels of each run, raster order
    _run_cell: np.ndarray  # (m,) table index of the run's cell, -1 for background and noise
    _run_background: np.ndarray  # (m,) run is background (non-cell, 4-connected to the border)

    def paint(self, values: np.ndarray, fill: int | bool = 0, *, rows: range | None = None,
              cols: range | None = None) -> np.ndarray:
        """Image of ``values[i]`` on the pixels of cell i and ``fill`` elsewhere.

        Parameters
        ----------
        values : ndarray, shape (n,)
            One value per cell of :attr:`table`.
        fill : scalar
            Value of background and noise pixels.
        rows, cols : range, optional
            Paint only these rows and columns (increasing ranges within the image, any
            step): a window of the image, or of a subsampled level of it. Only the runs of
            the rows asked for are read, so a small window of a large image costs little.

        Returns
        -------
        ndarray
            ``(len(rows), len(cols))``; (H, W) without ``rows`` and ``cols``.
        """
        values = np.asarray(values)
        values = np.append(values, np.array(fill, dtype=values.dtype))  # fill at [-1]
        if rows is None and cols is None:
            return np.repeat(values[self._run_cell], self._run_length).reshape(self.shape)
        height, width = self.shape
        rows = range(height) if rows is None else rows
        cols = range(width) if cols is None else cols
        if len(rows) == 0 or len(cols) == 0:
            return np.zeros((len(rows), len(cols)), dtype=values.dtype)
        # the runs of the rows asked for, row by row
        row = np.arange(rows.start, rows.stop, rows.step)
        first, stop = self._row_first_run[row], self._row_first_run[row + 1]
        count = stop - first
        run = np.arange(count.sum()) + np.repeat(first - (np.cumsum(count) - count), count)
        # how many of the columns asked for each run covers
        x0 = self._run_start[run] - np.repeat(row * width, count)
        x1 = x0 + self._run_length[run] - 1
        step, last = cols.step, len(cols) - 1
        lo = np.clip(-((cols.start - x0) // step), 0, last + 1)  # ceil((x0 - start) / step)
        hi = np.clip((x1 - cols.start) // step, -1, last)
        return np.repeat(values[self._run_cell[run]], np.maximum(hi - lo + 1, 0)).reshape(len(rows), len(cols))

    def labels(self) -> np.ndarray:
        """(H, W) uint32 label image: ``table.id`` on each cell's pixels, 0 elsewhere."""
        return self.paint(self.table.id, 0)

    def background(self) -> np.ndarray:
        """(H, W) bool: non-cell pixels 4-connected to the image border."""
        return np.repeat(self._run_background, self._run_length).reshape(self.shape)

    def label_at(self, row: int, col: int) -> int:
        """Label (:meth:`labels`) of pixel ``(row, col)``, read from the runs: 0 off the image."""
        height, width = self.shape
        if not (0 <= row < height and 0 <= col < width):
            return 0
        run = int(np.searchsorted(self._run_start, row * width + col, side="right")) - 1
        cell = int(self._run_cell[run])
        return int(self.table.id[cell]) if cell >= 0 else 0

    @cached_property
    def _run_start(self) -> np.ndarray:
        return np.cumsum(self._run_length) - self._run_length

    @cached_property
    def _row_first_run(self) -> np.ndarray:
        return _row_first_run(self._run_start, self.shape)

    @cached_property
    def _runs_by_cell(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        in_cell = np.flatnonzero(self._run_cell >= 0)
        order = in_cell[np.argsort(self._run_cell[in_cell], kind="stable")]
        bounds = np.searchsorted(self._run_cell[order], np.arange(len(self.table) + 1))
        return order, bounds, self._run_start

    def first_pixels(self) -> np.ndarray:
        """(n, 2) int64 ``(y, x)`` of each cell's first pixel in raster order."""
        order, bounds, start = self._runs_by_cell
        return np.stack(np.divmod(start[order[bounds[:-1]]], self.shape[1]), axis=1)


def find_cells(pixels: SegPixels, seg_thresh: int) -> CellMap:
    """Find the cells of a Seg map at ``seg_thresh`` (reference rules, see module docstring).

    Parameters
    ----------
    pixels : SegPixels
        The prepared Seg map (and Marker).
    seg_thresh : int
        A pixel is a cell pixel if ``R + B > seg_thresh`` (and ``G <= 80``); 0 to 510.

    Returns
    -------
    CellMap
    """
    from napari_deepliif.cells.components import (  # numba: imported on first use
        component_sums,
        run_components,
    )

    height, width = pixels.shape
    start, length, code = _runs(pixels.pixel_codes(seg_thresh))
    row = start // width
    x0 = start - row * width
    comp, n_comp = run_components(_row_first_run(start, (height, width)), x0, x0 + length - 1,
                                  code != NON_CELL, width)
    marker = pixels.marker if pixels.marker is not None else np.zeros((0, 0), np.uint8)
    area, n_pos, n_neg, bbox, row_sum, col_sum, marker = component_sums(
        comp, n_comp, row, x0, length, code, POSITIVE_PIXEL, marker)
    keep = area > NOISE_SIZE
    new_index = np.append(np.cumsum(keep) - 1, -1)  # table index of each component; -1 at [-1]
    new_index[:-1][~keep] = -1
    n = int(keep.sum())
    area, n_pos, n_neg, bbox, marker = area[keep], n_pos[keep], n_neg[keep], bbox[keep], marker[keep]
    centroid = np.stack([row_sum[keep], col_sum[keep]], axis=1) / area[:, None]
    table = CellTable(
        id=np.arange(1, n + 1, dtype=np.uint32), area=area, centroid=centroid, bbox=bbox,
        n_positive_px=n_pos, n_negative_px=n_neg, positive=n_pos >= n_neg, marker=marker,
    )
    run_cell = new_index[comp].astype(np.int32 if n < 2**31 - 1 else np.int64)  # background: -1
    logger.debug("seg_thresh %d: %d runs, %d cells", seg_thresh, start.size, n)
    return CellMap(table, (height, width), int(seg_thresh), length, run_cell, comp < 0)


def touches_window_edge(bbox: np.ndarray, window: tuple[int, int, int, int], shape: tuple[int, int]) -> np.ndarray:
    """(n,) bool: which cells of a window touch one of its edges that is not the image's edge
    (so they may continue outside it).

    Parameters
    ----------
    bbox : ndarray, shape (n, 4)
        ``(min_row, min_col, max_row, max_col)`` in the window's pixels, max exclusive
        (``CellTable.bbox``).
    window : (y0, y1, x0, x1)
        The window in the image's pixels, end exclusive.
    shape : (int, int)
        (H, W) of the image.
    """
    y0, y1, x0, x1 = window
    return (((bbox[:, 0] == 0) & (y0 > 0)) | ((bbox[:, 1] == 0) & (x0 > 0))
            | ((bbox[:, 2] == y1 - y0) & (y1 < shape[0])) | ((bbox[:, 3] == x1 - x0) & (x1 < shape[1])))
