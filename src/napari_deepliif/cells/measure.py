"""Per-cell stain measurements on the IHC image: nucleus, cytoplasm, membrane ring, whole cell.

The same for every engine: a cell's nucleus is its pixels in the cell table (DeepLIIF's Seg
cell, the stain engine's nucleus); the IHC pixels are split into hematoxylin and DAB optical
densities by :func:`napari_deepliif.rgb.stain_od`. As QuPath's positive cell detection does,
a cell is its nucleus expanded by ``expansion_um`` (``skimage.segmentation.expand_labels``:
each background pixel within that distance goes to the nearest nucleus, so expansions stop
where neighbours meet); the cytoplasm is the cell minus its nucleus, and the membrane ring is
the part of the cytoplasm within ``membrane_um`` (Euclidean, rounded to whole pixels, at least
one) of a pixel outside the cell (background or a neighbouring cell; the image's border is not
an edge).

Every measurement is a column of one value per cell in table order (label ``i`` is row
``i - 1``), named as QuPath names its measurements so that QuPath users can classify on them;
a compartment with no pixel has NaN. Columns are computed once per cell table; scoring on them
(:mod:`napari_deepliif.cells.scoring`) only compares numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from napari_deepliif.errors import InputImageError
from napari_deepliif.rgb import DAB, HEMATOXYLIN, stain_od

NUCLEUS_AREA = "Nucleus: Area µm^2"
NUCLEUS_HEMATOXYLIN_MEAN = "Nucleus: Hematoxylin OD mean"
NUCLEUS_DAB_MEAN = "Nucleus: DAB OD mean"
NUCLEUS_DAB_MAX = "Nucleus: DAB OD max"
CELL_AREA = "Cell: Area µm^2"
CELL_DAB_MEAN = "Cell: DAB OD mean"
CYTOPLASM_DAB_MEAN = "Cytoplasm: DAB OD mean"
MEMBRANE_DAB_MEAN = "Membrane: DAB OD mean"
MEMBRANE_COMPLETENESS = "Membrane: completeness"

#: The compartments a cell can be scored on, and the column that scores it.
COMPARTMENT_COLUMNS: dict[str, str] = {
    "nucleus": NUCLEUS_DAB_MEAN, "cytoplasm": CYTOPLASM_DAB_MEAN,
    "membrane": MEMBRANE_DAB_MEAN, "cell": CELL_DAB_MEAN,
}
#: QuPath's positive cell detection defaults: cell expansion (µm) and the 1+/2+/3+ DAB OD
#: thresholds (docs/measurements.md).
DEFAULT_EXPANSION_UM = 5.0
DEFAULT_POSITIVE_OD = 0.2
DEFAULT_BINS_OD = (0.4, 0.6)
#: Width of the membrane ring (µm).
DEFAULT_MEMBRANE_UM = 1.0
#: Largest OD threshold and expansion a front end takes (a DAB OD of 5 transmits 1/100,000
#: of the light; an expansion past 50 µm is no longer one cell's).
MAX_OD, MAX_EXPANSION_UM = 5.0, 50.0

#: Rows of the image converted to optical densities at once (bounds the float32 memory).
_OD_ROWS = 512
#: Ring values are kept sorted per cell as ``row * _KEY_SPAN + OD - _OD_FLOOR`` (ODs clipped
#: to the span), so the pixels above any threshold are counted per cell by one binary search.
_OD_FLOOR, _KEY_SPAN = -2.0, 16.0


@dataclass(frozen=True, eq=False)
class CellMeasurements:
    """Stain measurements of the cells of one cell table.

    Attributes
    ----------
    columns : dict of str to ndarray, shape (n,), float64
        QuPath-style name -> one value per cell (table order): :data:`NUCLEUS_AREA`,
        :data:`NUCLEUS_HEMATOXYLIN_MEAN`, :data:`NUCLEUS_DAB_MEAN`, :data:`NUCLEUS_DAB_MAX`,
        and with an expansion :data:`CELL_AREA`, :data:`CELL_DAB_MEAN`,
        :data:`CYTOPLASM_DAB_MEAN`, :data:`MEMBRANE_DAB_MEAN`. ODs in log10 units, areas in
        µm²; NaN for an empty compartment.
    microns_per_pixel, expansion_um, membrane_um : float
        Pixel size, cell expansion and membrane ring width the columns were measured with.
    """

    columns: dict[str, np.ndarray]
    microns_per_pixel: float
    expansion_um: float
    membrane_um: float
    _ring_keys: np.ndarray
    _ring_bounds: np.ndarray

    def __len__(self) -> int:
        return int(self.columns[NUCLEUS_AREA].size)

    def dab(self, compartment: str) -> np.ndarray:
        """(n,) mean DAB OD of ``compartment`` (one of :data:`COMPARTMENT_COLUMNS`).

        Raises
        ------
        InputImageError
            For an unknown compartment, or one beyond the nucleus without a cell expansion.
        """
        if compartment not in COMPARTMENT_COLUMNS:
            raise InputImageError(f"unknown compartment {compartment!r}: one of {tuple(COMPARTMENT_COLUMNS)}")
        name = COMPARTMENT_COLUMNS[compartment]
        if name not in self.columns:
            raise InputImageError(f"the {compartment} is measured only with a cell expansion: set expansion_um"
                                  f" above 0 (QuPath's default is {DEFAULT_EXPANSION_UM:g} µm)")
        return self.columns[name]

    def completeness(self, threshold: float) -> np.ndarray:
        """(n,) fraction of each cell's membrane ring pixels whose DAB OD is above ``threshold``
        (NaN for a cell without a ring, and for every cell without an expansion)."""
        n = len(self)
        if not self.expansion_um > 0:
            return np.full(n, np.nan)
        rows = np.arange(n, dtype=np.float64) * _KEY_SPAN
        at_most = np.searchsorted(self._ring_keys, rows + _clip_od(threshold), side="right")
        size = np.diff(self._ring_bounds)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(size > 0, (self._ring_bounds[1:] - at_most) / size, np.nan)

    def table(self, threshold: float) -> dict[str, np.ndarray]:
        """Every column, and with an expansion :data:`MEMBRANE_COMPLETENESS` at ``threshold``."""
        if not self.expansion_um > 0:
            return dict(self.columns)
        return {**self.columns, MEMBRANE_COMPLETENESS: self.completeness(threshold)}


def _clip_od(od: np.ndarray | float) -> np.ndarray | float:
    return np.clip(od, _OD_FLOOR, _OD_FLOOR + _KEY_SPAN * 0.999) - _OD_FLOOR


def check_lengths(microns_per_pixel: float, expansion_um: float, membrane_um: float) -> None:
    """Raise :class:`InputImageError` unless the pixel size and membrane width are positive
    and the expansion is not negative (all finite)."""
    for name, value, low_ok in (("microns_per_pixel", microns_per_pixel, False),
                                ("expansion_um", expansion_um, True), ("membrane_um", membrane_um, False)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
                or not math.isfinite(value) or value < 0 or (value == 0 and not low_ok):
            bound = "0 or more" if low_ok else "above 0"
            raise InputImageError(f"{name} must be a number {bound} (µm), got {value!r}")


def _stain_channels(rgb: np.ndarray, unmixing: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Hematoxylin and DAB OD images (H, W) float32 of ``rgb``, converted a band of rows at a time."""
    height, width = rgb.shape[:2]
    hema, dab = np.empty((height, width), np.float32), np.empty((height, width), np.float32)
    for y in range(0, height, _OD_ROWS):
        od = stain_od(np.asarray(rgb[y : y + _OD_ROWS, :, :3]), unmixing)
        hema[y : y + _OD_ROWS], dab[y : y + _OD_ROWS] = od[..., HEMATOXYLIN], od[..., DAB]
    return hema, dab


def _means(sums: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(sizes > 0, sums / np.maximum(sizes, 1), np.nan)


def measure_cells(
    labels: np.ndarray,
    rgb: np.ndarray,
    microns_per_pixel: float,
    *,
    n_cells: int | None = None,
    expansion_um: float = DEFAULT_EXPANSION_UM,
    membrane_um: float = DEFAULT_MEMBRANE_UM,
    unmixing: np.ndarray | None = None,
) -> CellMeasurements:
    """Stain measurements of every cell of a label image (see module docstring).

    Parameters
    ----------
    labels : ndarray, shape (H, W), integer
        Cell ids ``1 .. n`` (the cell table's ``id``), 0 for background.
    rgb : ndarray, shape (H, W, 3), uint8
        The IHC pixels of the same window.
    microns_per_pixel : float
        Pixel size (µm/px): areas in µm² and the expansion and ring width in pixels.
    n_cells : int, optional
        Number of cells (rows); default the largest label.
    expansion_um : float
        Cell expansion beyond the nucleus (µm); 0 measures the nucleus alone.
    membrane_um : float
        Width of the membrane ring (µm; at least one pixel).
    unmixing : ndarray, shape (3, 3), optional
        The image's stain unmixing matrix (see :func:`napari_deepliif.rgb.stain_od`), e.g.
        the stain engine's estimated vectors; default the HED matrix.

    Returns
    -------
    CellMeasurements

    Raises
    ------
    InputImageError
        For images of different sizes, or a length that is not a positive number.
    """
    from scipy import ndimage as ndi
    from skimage.morphology import disk
    from skimage.segmentation import expand_labels

    check_lengths(microns_per_pixel, expansion_um, membrane_um)
    labels = np.asarray(labels)
    if tuple(rgb.shape[:2]) != labels.shape:
        raise InputImageError(f"the IHC image is {rgb.shape[1]} x {rgb.shape[0]} px but the cells' labels are"
                              f" {labels.shape[1]} x {labels.shape[0]} px; they must cover the same window")
    n = int(labels.max(initial=0)) if n_cells is None else int(n_cells)
    hema, dab = _stain_channels(rgb, unmixing)
    flat, dab_flat = labels.ravel().astype(np.intp), dab.ravel()  # bincount's index type, cast once
    nucleus_px = np.bincount(flat, minlength=n + 1)[1 : n + 1]
    nucleus_dab = np.bincount(flat, dab_flat, minlength=n + 1)[1 : n + 1]
    dab_max = np.full(n + 1, -np.inf, np.float32)  # the values' type: ufunc.at's fast path
    np.maximum.at(dab_max, flat, dab_flat)
    area = microns_per_pixel**2
    columns = {
        NUCLEUS_AREA: nucleus_px * area,
        NUCLEUS_HEMATOXYLIN_MEAN: _means(np.bincount(flat, hema.ravel(), minlength=n + 1)[1 : n + 1], nucleus_px),
        NUCLEUS_DAB_MEAN: _means(nucleus_dab, nucleus_px),
        NUCLEUS_DAB_MAX: np.where(nucleus_px > 0, dab_max[1:], np.nan),
    }
    keys, bounds = np.zeros(0), np.zeros(n + 1, np.int64)
    if expansion_um > 0:
        cells = expand_labels(labels, distance=expansion_um / microns_per_pixel)
        cell_flat = cells.ravel().astype(np.intp)
        cell_px = np.bincount(cell_flat, minlength=n + 1)[1 : n + 1]
        cell_dab = np.bincount(cell_flat, dab_flat, minlength=n + 1)[1 : n + 1]
        within = disk(max(1, round(membrane_um / microns_per_pixel)))
        edge = (ndi.maximum_filter(cells, footprint=within, mode="nearest") != cells) \
            | (ndi.minimum_filter(cells, footprint=within, mode="nearest") != cells)
        ring = np.flatnonzero(edge.ravel() & (cell_flat > 0) & (flat == 0))
        ring_row = cell_flat[ring].astype(np.int64) - 1
        ring_dab = dab_flat[ring]
        ring_px = np.bincount(ring_row, minlength=n)
        columns.update({
            CELL_AREA: cell_px * area,
            CELL_DAB_MEAN: _means(cell_dab, cell_px),
            CYTOPLASM_DAB_MEAN: _means(cell_dab - nucleus_dab, cell_px - nucleus_px),
            MEMBRANE_DAB_MEAN: _means(np.bincount(ring_row, ring_dab, minlength=n), ring_px),
        })
        keys = np.sort(ring_row * _KEY_SPAN + _clip_od(ring_dab.astype(np.float64)))
        bounds = np.concatenate([[0], np.cumsum(ring_px)])
    return CellMeasurements({k: np.asarray(v, np.float64) for k, v in columns.items()}, float(microns_per_pixel),
                            float(expansion_um), float(membrane_um), keys, bounds)
