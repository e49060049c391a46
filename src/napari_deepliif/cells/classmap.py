"""Cells of a class map: each pixel's class from a class-map model (0: background).

Cells are found as in a Seg map (:func:`~napari_deepliif.cells.find.find_cells`): the
8-connected components of non-background pixels, with the background holes they enclose,
minus components of ``NOISE_SIZE`` pixels or fewer. Each cell takes the class most of its
pixels have (holes do not vote; a tie goes to the lower class index); it is positive when that
class is one of the model's positive classes. A class map has no threshold: ``seg_thresh``
changes nothing, and a ``'default'`` size threshold is 0 (the Seg map's rule does not apply).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np

from napari_deepliif.cells.find import (
    NEGATIVE_PIXEL,
    NON_CELL,
    POSITIVE_PIXEL,
    CellMap,
    CellTable,
    find_cells,
)
from napari_deepliif.errors import InputImageError


@dataclass(frozen=True, eq=False)
class ClassPixels:
    """A class map prepared for finding cells.

    Attributes
    ----------
    classes : ndarray, shape (H, W), uint8
        Class index per pixel.
    class_names : tuple of str
        Name of each class index (0: background).
    positive_classes : tuple of int
        Class indexes counted as positive.
    codes : ndarray, shape (H, W), uint8
        ``NON_CELL`` on background, ``POSITIVE_PIXEL`` on positive classes, else
        ``NEGATIVE_PIXEL``.
    """

    classes: np.ndarray
    class_names: tuple[str, ...]
    positive_classes: tuple[int, ...]
    codes: np.ndarray
    marker: None = None
    size_default_from_kde: ClassVar[bool] = False

    @classmethod
    def from_map(cls, class_map: np.ndarray, class_names: Sequence[str],
                 positive_classes: Sequence[int]) -> ClassPixels:
        """Validate a class map and prepare it.

        Parameters
        ----------
        class_map : ndarray, shape (H, W) or (H, W, 3), uint8
            Class index per pixel (an engine's ``Classes`` output: the index in every channel).
        class_names : sequence of str
            One name per class index, background first.
        positive_classes : sequence of int
            Indexes counted as positive.

        Raises
        ------
        InputImageError
            A map of the wrong shape or type, or with class indexes that have no name.
        """
        array = np.asarray(class_map)
        if array.ndim == 3:
            array = array[..., 0]
        if array.ndim != 2 or array.dtype != np.uint8:
            raise InputImageError(f"a class map is an (H, W) uint8 array of class indexes; got shape "
                                  f"{np.shape(class_map)} and dtype {array.dtype}")
        top = int(array.max(initial=0))
        if top >= len(class_names):
            raise InputImageError(f"the class map holds class {top}, but only {len(class_names)} classes are named")
        positive = np.zeros(len(class_names), bool)
        positive[list(positive_classes)] = True
        lookup = np.where(positive, POSITIVE_PIXEL, NEGATIVE_PIXEL).astype(np.uint8)
        lookup[0] = NON_CELL
        return cls(np.ascontiguousarray(array), tuple(class_names), tuple(int(c) for c in positive_classes),
                   lookup[array])

    @property
    def shape(self) -> tuple[int, int]:
        """(H, W) in pixels."""
        return self.classes.shape

    def pixel_codes(self, seg_thresh: int) -> np.ndarray:
        """(H, W) uint8 pixel codes (:attr:`codes`; a class map has no threshold)."""
        return self.codes

    def find_cells(self, seg_thresh: int) -> CellMap:
        """The cells of this map, each with its majority class (see module docstring)."""
        cells = find_cells(self, seg_thresh)
        n, k = len(cells.table), len(self.class_names)
        labels = cells.labels().ravel().astype(np.int64)
        votes = np.bincount(labels * k + self.classes.ravel(), minlength=(n + 1) * k).reshape(n + 1, k)[1:]
        votes[:, 0] = 0
        cell_class = votes.argmax(axis=1) if n else np.zeros(0, np.int64)
        table = replace(cells.table, positive=np.isin(cell_class, self.positive_classes),
                        cell_class=cell_class.astype(np.int64), class_names=self.class_names,
                        positive_classes=tuple(self.positive_classes))
        return replace(cells, table=table)


def class_counts(table: CellTable, counted: np.ndarray) -> dict:
    """``{"classes": {name: count}, "positive_classes": [name, ...]}``: the counted cells per
    class (background left out) and the classes counted in ``num_pos``, so that a reader of
    the cells' class names (QuPath) counts the positive ones as the score does; empty for
    cells of a Seg map."""
    if table.cell_class is None or table.class_names is None:
        return {}
    n = np.bincount(table.cell_class[counted], minlength=len(table.class_names))
    return {"classes": {name: int(n[i]) for i, name in enumerate(table.class_names) if i > 0},
            "positive_classes": [table.class_names[i] for i in table.positive_classes or ()]}


def class_densities(classes: dict[str, int], area_mm2: float) -> dict:
    """``{"classes_per_mm2": {name: cells per mm²}}``, rounded to 0.1 as ``pos_per_mm2`` (0 for
    an empty area)."""
    return {"classes_per_mm2": {name: (round(count / area_mm2, 1) if area_mm2 > 0 else 0.0)
                                for name, count in classes.items()}}
