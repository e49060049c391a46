"""The one postprocessing entry point: Seg map (+ Marker) -> cells -> IHC score.

Every front end (widget, server, CLI) calls :func:`postprocess` once per Seg map and then
:meth:`PostprocessResult.rescore` when a setting changes: size and marker thresholds and
per-cell overrides only touch the cell table; a new ``seg_thresh`` finds the cells again from
the prepared Seg map (never the network). Example::

    result = postprocess(seg, marker, resolution="40x")
    result.scoring                     # the reference's compute_final_results keys
    result = result.rescore(size_thresh=40, overrides={12: "exclude"})
    refined, table = result.seg_refined(), result.table
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Literal

import numpy as np

from napari_deepliif.cells import rendering
from napari_deepliif.cells.classmap import ClassPixels, class_counts, class_densities
from napari_deepliif.cells.find import (
    MAX_SEG_THRESH,
    CellMap,
    CellTable,
    SegPixels,
)
from napari_deepliif.cells.measure import (
    DEFAULT_EXPANSION_UM,
    DEFAULT_MEMBRANE_UM,
    DEFAULT_POSITIVE_OD,
    CellMeasurements,
    check_lengths,
    measure_cells,
)
from napari_deepliif.cells.scoring import (
    Compartment,
    Override,
    check_compartment,
    check_overrides,
    classify,
    compartment_positive,
    counts,
    default_marker_threshold,
    default_size_threshold,
    density,
    in_box,
    in_polygons,
    intensity_classes,
    region_cells,
)
from napari_deepliif.constants import (
    DEFAULT_LARGE_NOISE_BY_RESOLUTION,
    DEFAULT_RESOLUTION,
    DEFAULT_SEG_THRESH,
    MICRONS_PER_PIXEL_BY_RESOLUTION,
)
from napari_deepliif.errors import InputImageError
from napari_deepliif.resolution import resolve_resolution
from napari_deepliif.rgb import check_rgb

logger = logging.getLogger(__name__)

#: A threshold: a number, ``'default'`` (the reference's default rule) or None (not applied).
Threshold = int | Literal["default"] | None
#: Cells found at this many ``seg_thresh`` values are kept, so going back is instant.
_CELL_CACHE_SIZE = 4
#: Measurements kept for this many (``seg_thresh``, expansion, ring width) settings.
_MEASURED_CACHE_SIZE = 2


class _Keep(enum.Enum):
    KEEP = enum.auto()


#: "Leave this setting as it is" in :meth:`PostprocessResult.rescore`.
KEEP = _Keep.KEEP


@dataclass(frozen=True)
class Settings:
    """Postprocessing settings as asked for (``'default'`` kept as such).

    Attributes
    ----------
    resolution : {'10x', '20x', '40x'}
        Magnification; picks the size-threshold clamps and the ``'default'`` upper cap.
    seg_thresh : int
        A pixel is a cell pixel if ``R + B > seg_thresh`` (and ``G <= 80``); 0 to 510.
    size_thresh : int, 'default' or None
        Count cells with more pixels than this (None: 0; 'default': KDE rule).
    size_thresh_upper : int, 'default' or None
        Count cells with fewer pixels than this (None: no cap; 'default': 1000/4000/16000 px at
        10x/20x/40x).
    marker_thresh : int, 'default' or None
        A cell whose marker value (0-255) is above this is positive (needs a Marker;
        'default': 90 % of the Marker's 0.1-99.9 percentile range).
    compartment : {'class', 'nucleus', 'cytoplasm', 'membrane', 'cell'}
        What decides positive: the engine's class (and ``marker_thresh``), or the mean DAB OD
        of that compartment above ``positive_od`` (needs the IHC image; see
        :mod:`napari_deepliif.cells.measure`).
    positive_od : float
        DAB OD above which a cell is positive (1+) in a compartment mode, and above which a
        membrane pixel counts as stained for the membrane completeness.
    bins_od : (float, float) or None
        DAB ODs above which a positive cell is 2+ and 3+ (a compartment mode): adds
        ``num_1plus``, ``num_2plus``, ``num_3plus`` and ``h_score`` to the score.
    min_completeness : float or None
        With a compartment mode, a cell is positive only if at least this fraction (0-1) of
        its membrane ring is above ``positive_od``.
    expansion_um : float
        Cell expansion beyond the nucleus (µm) for the cytoplasm, membrane and cell
        measurements; 0: the nucleus alone.
    membrane_um : float
        Width of the membrane ring (µm).
    """

    resolution: str = DEFAULT_RESOLUTION
    seg_thresh: int = DEFAULT_SEG_THRESH
    size_thresh: Threshold = "default"
    size_thresh_upper: Threshold = None
    marker_thresh: Threshold = None
    compartment: Compartment = "class"
    positive_od: float = DEFAULT_POSITIVE_OD
    bins_od: tuple[float, float] | None = None
    min_completeness: float | None = None
    expansion_um: float = DEFAULT_EXPANSION_UM
    membrane_um: float = DEFAULT_MEMBRANE_UM

    def checked(self, has_marker: bool) -> Settings:
        """These settings validated (resolution normalised); raises :class:`InputImageError`."""
        _check_whole("seg_thresh", self.seg_thresh, 0, MAX_SEG_THRESH, optional=False)
        _check_whole("size_thresh", self.size_thresh, 0)
        _check_whole("size_thresh_upper", self.size_thresh_upper, 1)
        _check_whole("marker_thresh", self.marker_thresh, 0, 255)
        if self.marker_thresh is not None and not has_marker:
            raise InputImageError("marker_thresh needs a Marker image; pass marker= or leave it None")
        check_compartment(self.compartment, self.positive_od, self.bins_od, self.min_completeness)
        check_lengths(1.0, self.expansion_um, self.membrane_um)
        if self.expansion_um == 0 and (self.compartment in ("cytoplasm", "membrane", "cell")
                                       or self.min_completeness is not None):
            raise InputImageError(f"compartment {self.compartment!r} and min_completeness need a cell expansion:"
                                  f" set expansion_um above 0 (QuPath's default is {DEFAULT_EXPANSION_UM:g} µm)")
        bins = None if self.bins_od is None else (float(self.bins_od[0]), float(self.bins_od[1]))
        return replace(self, resolution=resolve_resolution(self.resolution), positive_od=float(self.positive_od),
                       bins_od=bins, expansion_um=float(self.expansion_um), membrane_um=float(self.membrane_um))

    def resolved(self, default_size: Callable[[], int], default_marker: Callable[[], int]) -> dict:
        """The thresholds as numbers: ``'default'`` size and marker thresholds from the callables
        (called only when needed), the default upper cap from the resolution.

        Returns
        -------
        dict
            ``seg_thresh``, ``size_thresh``, ``size_thresh_upper``, ``marker_thresh`` (the last
            two None where not applied).
        """
        size = default_size() if self.size_thresh == "default" else self.size_thresh
        upper = self.size_thresh_upper
        if upper == "default":
            upper = DEFAULT_LARGE_NOISE_BY_RESOLUTION[self.resolution]
        marker = default_marker() if self.marker_thresh == "default" else self.marker_thresh
        return {"seg_thresh": int(self.seg_thresh), "size_thresh": int(size or 0),
                "size_thresh_upper": None if upper is None else int(upper),
                "marker_thresh": None if marker is None else int(marker)}

    def compartment_scoring(self) -> dict:
        """What a compartment mode adds to the score's settings (empty for ``'class'``):
        ``compartment``, ``positive_od``, ``bins_od``, ``min_completeness``, ``expansion_um``,
        ``membrane_um``."""
        if self.compartment == "class":
            return {}
        return {"compartment": self.compartment, "positive_od": self.positive_od,
                "bins_od": None if self.bins_od is None else list(self.bins_od),
                "min_completeness": self.min_completeness, "expansion_um": self.expansion_um,
                "membrane_um": self.membrane_um}


def _check_whole(name: str, value: object, low: int, high: int | None = None, *,
                 optional: bool = True) -> None:
    """Raise unless ``value`` is a whole number in [low, high] (or, if optional, 'default'/None)."""
    if optional and (value is None or (isinstance(value, str) and value == "default")):
        return
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) \
            or value < low or (high is not None and value > high):
        span = f"from {low} to {high}" if high is not None else f"of at least {low}"
        also = ", 'default' or None" if optional else ""
        raise InputImageError(f"{name} must be a whole number {span}{also}, got {value!r}")


class _Source:
    """A prepared Seg map with what is cached across re-scores (cells, default thresholds,
    stain measurements)."""

    def __init__(self, pixels: SegPixels | ClassPixels, region: tuple[int, int, int, int] | None = None,
                 rois: Sequence[tuple[np.ndarray, Sequence[np.ndarray]]] | None = None,
                 image: np.ndarray | None = None, microns_per_pixel: float | None = None,
                 unmixing: np.ndarray | None = None):
        self.pixels = pixels
        self.region = region
        self.rois = rois
        self.image = image
        self.microns_per_pixel = microns_per_pixel
        self.unmixing = unmixing
        self._measured: dict[tuple[int, float, float], CellMeasurements] = {}
        self._cells: dict[int, CellMap] = {}
        self._default_size: dict[tuple[int, str], int] = {}
        self._default_marker: int | None = None

    def cells(self, seg_thresh: int) -> CellMap:
        cells = self._cells.get(seg_thresh)
        if cells is None:
            cells = self.pixels.find_cells(seg_thresh)
            while len(self._cells) >= _CELL_CACHE_SIZE:
                dropped = next(iter(self._cells))
                self._cells.pop(dropped, None)
                self._default_size = {k: v for k, v in self._default_size.items() if k[0] != dropped}
            self._cells[seg_thresh] = cells
        return cells

    def measurements(self, cells: CellMap, settings: Settings) -> CellMeasurements:
        """Stain measurements of ``cells`` at the settings' expansion and ring width (the
        last few kept); raises :class:`InputImageError` without the IHC image."""
        if self.image is None:
            raise InputImageError("stain measurements need the IHC image: pass image= to postprocess")
        key = (cells.seg_thresh, settings.expansion_um, settings.membrane_um)
        measured = self._measured.get(key)
        if measured is None:
            mpp = self.microns_per_pixel or MICRONS_PER_PIXEL_BY_RESOLUTION[settings.resolution]
            measured = measure_cells(cells.labels(), self.image, mpp, n_cells=len(cells.table),
                                     expansion_um=settings.expansion_um, membrane_um=settings.membrane_um,
                                     unmixing=self.unmixing)
            while len(self._measured) >= _MEASURED_CACHE_SIZE:
                self._measured.pop(next(iter(self._measured)))
            self._measured[key] = measured
        return measured

    def default_size_thresh(self, cells: CellMap, resolution: str) -> int:
        key = (cells.seg_thresh, resolution)
        if key not in self._default_size:
            self._default_size[key] = (default_size_threshold(cells.table.area[self.members(cells.table)], resolution)
                                       if self.pixels.size_default_from_kde else 0)
        return self._default_size[key]

    def default_marker_thresh(self) -> int:
        if self._default_marker is None:
            marker = self.pixels.marker
            if self.region is not None:
                x, y, w, h = self.region
                marker = marker[y : y + h, x : x + w]
            self._default_marker = default_marker_threshold(marker)
        return self._default_marker

    def members(self, table: CellTable) -> np.ndarray:
        """Which cells belong to the region scored: centroid inside its box and, with ROIs,
        inside one of them (all cells without a region)."""
        members = np.ones(len(table), bool) if self.region is None else in_box(table.centroid_xy, self.region)
        if self.rois:
            members &= in_polygons(table.centroid_xy, self.rois)
        return members


@dataclass(frozen=True, eq=False)
class PostprocessResult:
    """Cells and score of one Seg map at one set of settings.

    Attributes
    ----------
    cells : CellMap
        The cell table (``cells.table``) and the run image behind the label image.
    settings : Settings
        As asked for.
    overrides : dict of int to Override
        Per-cell overrides in force, keyed by cell id (see :func:`scoring.classify`).
    counted, positive : ndarray, shape (n,), bool
        Which cells count (gating and overrides) and their final class.
    scoring : dict
        The reference's ``compute_final_results`` scoring: ``num_total``, ``num_pos``,
        ``num_neg``, ``percent_pos``, ``seg_thresh``, ``size_thresh``, ``size_thresh_upper``,
        ``marker_thresh`` (thresholds as numbers; ``marker_thresh`` None without a Marker).
    """

    cells: CellMap
    settings: Settings
    overrides: dict[int, Override]
    counted: np.ndarray
    positive: np.ndarray
    scoring: dict
    _source: _Source = field(repr=False)

    @property
    def table(self) -> CellTable:
        """The cell table (one row per cell above the noise size, before gating)."""
        return self.cells.table

    def labels(self) -> np.ndarray:
        """(H, W) uint32 label image: ``table.id`` on each cell's pixels, 0 elsewhere."""
        return self.cells.labels()

    @property
    def members(self) -> np.ndarray:
        """(n,) bool: the cells of the region scored (all cells without a region)."""
        return self._source.members(self.table)

    @property
    def measurements(self) -> CellMeasurements | None:
        """Stain measurements of the cells at the current expansion (computed on first use),
        or None when the IHC image was not given (see :mod:`napari_deepliif.cells.measure`)."""
        if self._source.image is None:
            return None
        return self._source.measurements(self.cells, self.settings)

    def measurement_columns(self) -> dict[str, np.ndarray]:
        """QuPath-style name -> (n,) value per cell (table order), membrane completeness at
        ``positive_od`` included; empty without the IHC image."""
        measured = self.measurements
        return {} if measured is None else measured.table(self.settings.positive_od)

    def rescore(
        self,
        *,
        seg_thresh: int | _Keep = KEEP,
        size_thresh: Threshold | _Keep = KEEP,
        size_thresh_upper: Threshold | _Keep = KEEP,
        marker_thresh: Threshold | _Keep = KEEP,
        overrides: Mapping[int, Override] | None | _Keep = KEEP,
        compartment: Compartment | _Keep = KEEP,
        positive_od: float | _Keep = KEEP,
        bins_od: tuple[float, float] | None | _Keep = KEEP,
        min_completeness: float | None | _Keep = KEEP,
        expansion_um: float | _Keep = KEEP,
        membrane_um: float | _Keep = KEEP,
    ) -> PostprocessResult:
        """The result with some settings changed; the others are kept (see :class:`Settings`).

        Size and marker thresholds, overrides and the compartment settings only re-read the
        cell table and its measurements; a new expansion or ring width measures the cells
        again on the IHC image; a new ``seg_thresh`` finds the cells again from the Seg map,
        and then drops the overrides unless new ones are given (cell ids change with the
        cells).
        """
        changes = {k: v for k, v in dict(seg_thresh=seg_thresh, size_thresh=size_thresh,
                                         size_thresh_upper=size_thresh_upper,
                                         marker_thresh=marker_thresh, compartment=compartment,
                                         positive_od=positive_od, bins_od=bins_od,
                                         min_completeness=min_completeness, expansion_um=expansion_um,
                                         membrane_um=membrane_um).items() if v is not KEEP}
        settings = replace(self.settings, **changes)
        if overrides is KEEP:
            overrides = self.overrides if settings.seg_thresh == self.settings.seg_thresh else None
            if overrides is None and self.overrides:
                logger.info("seg_thresh changed: %d cell overrides dropped", len(self.overrides))
        return _score(self._source, settings, overrides)

    def score(
        self,
        region: np.ndarray | None = None,
        *,
        intensity_thresholds: tuple[int, int] | None = None,
        microns_per_pixel: float | None = None,
    ) -> dict:
        """Score of the whole image or one region, with optional extras.

        Parameters
        ----------
        region : ndarray, optional
            (k, 2) polygon of ``(x, y)`` vertices or (H, W) bool mask; cells count by
            centroid (see :func:`scoring.region_cells`). A region without cells scores 0
            everywhere (``percent_pos`` 0).
        intensity_thresholds : (int, int), optional
            Marker values above which a positive cell is 2+ and 3+: adds ``num_1plus``,
            ``num_2plus``, ``num_3plus`` and ``h_score`` (needs a Marker). Without them, a
            compartment score's ``bins_od`` bins the region's cells.
        microns_per_pixel : float, optional
            Pixel size in µm/px: adds ``area_mm2`` and ``pos_per_mm2``.

        Returns
        -------
        dict
            The keys of :attr:`scoring`, then the extras asked for.
        """
        counted, area = self.counted, float(np.prod(self.cells.shape))
        if region is not None:
            inside, area = region_cells(self.table, region, self.cells.shape)
            counted = counted & inside
        result = {**self.scoring, **counts(counted, self.positive), **class_counts(self.table, counted)}
        if intensity_thresholds is not None:
            if self._source.pixels.marker is None:
                raise InputImageError("intensity classes need a Marker image")
            if not 0 <= intensity_thresholds[0] <= intensity_thresholds[1] <= 255:
                raise InputImageError("intensity thresholds must satisfy 0 <= 2+ <= 3+ <= 255,"
                                      f" got {intensity_thresholds}")
            result.update(intensity_classes(self.table.marker, counted, self.positive, intensity_thresholds))
        elif self.settings.bins_od is not None:
            values = self.measurements.dab(self.settings.compartment)
            result.update(intensity_classes(values, counted, self.positive, self.settings.bins_od))
        if microns_per_pixel is not None:
            result.update(density(result["num_pos"], area, microns_per_pixel))
            if "classes" in result:
                result.update(class_densities(result["classes"], result["area_mm2"]))
        return result

    def score_regions(
        self,
        regions: Mapping[str, np.ndarray],
        *,
        intensity_thresholds: tuple[int, int] | None = None,
        microns_per_pixel: float | None = None,
    ) -> dict[str, dict]:
        """:meth:`score` of each named region (polygon or mask), with the same extras."""
        return {name: self.score(region, intensity_thresholds=intensity_thresholds,
                                 microns_per_pixel=microns_per_pixel)
                for name, region in regions.items()}

    @cached_property
    def _classes_and_borders(self) -> tuple[np.ndarray, np.ndarray]:
        return rendering.cell_classes_and_borders(self.cells, self.counted, self.positive)

    def seg_refined(self) -> np.ndarray:
        """The reference's SegRefined (H x W x 3 uint8) for these settings."""
        return rendering.seg_refined(*self._classes_and_borders)

    def seg_overlaid(self, image: np.ndarray) -> np.ndarray:
        """The reference's SegOverlaid: ``image`` (H x W x 3 uint8) with cell borders drawn."""
        return rendering.seg_overlaid(image, self._classes_and_borders[1])


def _score(source: _Source, settings: Settings, overrides: Mapping[int, Override] | None) -> PostprocessResult:
    settings = settings.checked(source.pixels.marker is not None)
    cells = source.cells(int(settings.seg_thresh))
    checked = check_overrides(overrides, len(cells.table))
    by_compartment = settings.compartment != "class"
    # in a compartment mode the compartment's DAB OD decides and the marker is not used
    thresholds = replace(settings, marker_thresh=None if by_compartment else settings.marker_thresh).resolved(
        lambda: source.default_size_thresh(cells, settings.resolution), source.default_marker_thresh)
    compartment = None
    if by_compartment:
        measured = source.measurements(cells, settings)
        values = measured.dab(settings.compartment)
        completeness = None if settings.min_completeness is None else measured.completeness(settings.positive_od)
        compartment = compartment_positive(values, settings.positive_od, completeness, settings.min_completeness)
    counted, positive = classify(cells.table, thresholds["size_thresh"], thresholds["size_thresh_upper"],
                                 thresholds["marker_thresh"], checked, compartment)
    counted = counted & source.members(cells.table)
    scoring = {**counts(counted, positive), **thresholds, **class_counts(cells.table, counted),
               **settings.compartment_scoring()}
    if settings.bins_od is not None:
        scoring.update(intensity_classes(values, counted, positive, settings.bins_od))
    return PostprocessResult(cells, settings, checked, counted, positive, scoring, source)


def postprocess(
    seg: np.ndarray,
    marker: np.ndarray | None = None,
    *,
    resolution: str = DEFAULT_RESOLUTION,
    seg_thresh: int = DEFAULT_SEG_THRESH,
    size_thresh: Threshold = "default",
    size_thresh_upper: Threshold = None,
    marker_thresh: Threshold = None,
    overrides: Mapping[int, Override] | None = None,
    region: tuple[int, int, int, int] | None = None,
    rois: Sequence[tuple[np.ndarray, Sequence[np.ndarray]]] | None = None,
    image: np.ndarray | None = None,
    microns_per_pixel: float | None = None,
    compartment: Compartment = "class",
    positive_od: float = DEFAULT_POSITIVE_OD,
    bins_od: tuple[float, float] | None = None,
    min_completeness: float | None = None,
    expansion_um: float = DEFAULT_EXPANSION_UM,
    membrane_um: float = DEFAULT_MEMBRANE_UM,
    unmixing: np.ndarray | None = None,
) -> PostprocessResult:
    """Cells and IHC score of a DeepLIIF Seg map, as the reference's ``compute_final_results``.

    Parameters
    ----------
    seg : array-like, shape (H, W, 3), uint8
        Seg map: red positive, blue negative, green boundary (alpha ignored).
    marker : array-like, shape (H, W, 3) or (H, W), uint8, optional
        Marker image of the same size; gives each cell its marker value.
    resolution : {'40x', '20x', '10x'}
        Magnification of the image (see :func:`scoring.resolution_for_tile_size`).
    seg_thresh, size_thresh, size_thresh_upper, marker_thresh
        See :class:`Settings`.
    overrides : dict of int to {'exclude', 'include', 'positive', 'negative'}, optional
        Per-cell decisions keyed by cell id (``table.id``).
    region : (x, y, width, height), optional
        The part of the map scored, in its pixels (the rest is context, so that cells
        crossing the region's edge are found whole): only cells whose centroid lies in it
        count, and the default size and marker thresholds are computed from those cells and
        pixels alone. Default: the whole map.
    rois : list of (exterior, holes), optional
        Polygons ((k, 2) ``(x, y)`` vertices, pixel centres at integers) in the map's pixels:
        only cells whose centroid lies in one of them count, and the default size threshold
        comes from those cells (see :func:`scoring.in_polygons`).
    image : array-like, shape (H, W, 3), uint8, optional
        The IHC pixels of the same window: gives the cells their stain measurements
        (:attr:`PostprocessResult.measurements`) and makes the compartment modes possible.
    microns_per_pixel : float, optional
        Pixel size for the measurements; default the resolution's nominal one (40x: 0.25).
    compartment, positive_od, bins_od, min_completeness, expansion_um, membrane_um
        Compartment scoring and measurement settings; see :class:`Settings`.
    unmixing : ndarray, shape (3, 3), optional
        Stain unmixing matrix for the measurements (see :func:`napari_deepliif.rgb.stain_od`);
        default the HED matrix.

    Returns
    -------
    PostprocessResult

    Raises
    ------
    InputImageError
        For images of the wrong type, shape or dtype, and for invalid settings.
    DeepLIIFError
        For an unknown resolution.
    """
    return postprocess_pixels(SegPixels.from_images(seg, marker), resolution=resolution, seg_thresh=seg_thresh,
                              size_thresh=size_thresh, size_thresh_upper=size_thresh_upper,
                              marker_thresh=marker_thresh, overrides=overrides, region=region, rois=rois,
                              image=image, microns_per_pixel=microns_per_pixel, compartment=compartment,
                              positive_od=positive_od, bins_od=bins_od, min_completeness=min_completeness,
                              expansion_um=expansion_um, membrane_um=membrane_um, unmixing=unmixing)


def postprocess_pixels(
    pixels: SegPixels | ClassPixels,
    *,
    resolution: str = DEFAULT_RESOLUTION,
    seg_thresh: int = DEFAULT_SEG_THRESH,
    size_thresh: Threshold = "default",
    size_thresh_upper: Threshold = None,
    marker_thresh: Threshold = None,
    overrides: Mapping[int, Override] | None = None,
    region: tuple[int, int, int, int] | None = None,
    rois: Sequence[tuple[np.ndarray, Sequence[np.ndarray]]] | None = None,
    image: np.ndarray | None = None,
    microns_per_pixel: float | None = None,
    compartment: Compartment = "class",
    positive_od: float = DEFAULT_POSITIVE_OD,
    bins_od: tuple[float, float] | None = None,
    min_completeness: float | None = None,
    expansion_um: float = DEFAULT_EXPANSION_UM,
    membrane_um: float = DEFAULT_MEMBRANE_UM,
    unmixing: np.ndarray | None = None,
) -> PostprocessResult:
    """:func:`postprocess` of a prepared map: a Seg map (:class:`SegPixels`) or a class map
    (:class:`~napari_deepliif.cells.classmap.ClassPixels`, whose cells have a class each and
    whose ``scoring`` adds ``classes``: counted cells per class name).
    """
    settings = Settings(resolution, seg_thresh, size_thresh, size_thresh_upper, marker_thresh, compartment,
                        positive_od, bins_od, min_completeness, expansion_um, membrane_um)
    if image is not None:
        image = np.asarray(check_rgb(image, "IHC image"))[..., :3]
        if image.shape[:2] != pixels.shape:
            raise InputImageError(f"the IHC image is {image.shape[1]} x {image.shape[0]} px but the Seg map is"
                                  f" {pixels.shape[1]} x {pixels.shape[0]} px; they must cover the same pixels")
    if microns_per_pixel is not None:
        check_lengths(microns_per_pixel, 0.0, 1.0)
    return _score(_Source(pixels, region, rois, image, microns_per_pixel, unmixing), settings, overrides)
