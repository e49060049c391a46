"""Scoring rules, defaults, overrides, regions and extras, on small hand-made Seg maps."""

from __future__ import annotations

import math

import numpy as np
import pytest

from napari_deepliif.cells.postprocess import postprocess
from napari_deepliif.cells.scoring import (
    _size_kde,
    counts,
    default_marker_threshold,
    default_size_threshold,
    density,
    resolution_for_tile_size,
)
from napari_deepliif.errors import DeepLIIFError, InputImageError

# (row, col, side, positive, marker value): square cells, in raster order of their first pixel
CELLS = [
    (2, 2, 3, True, 250),     # 9 px
    (2, 20, 5, False, 100),   # 25 px
    (2, 40, 8, False, 20),    # 64 px
    (20, 2, 10, True, 180),   # 100 px
    (20, 30, 12, False, 130), # 144 px
    (40, 2, 2, False, 0),     # 4 px: noise, not a cell
]


def _image(cells=CELLS, shape=(60, 60)) -> tuple[np.ndarray, np.ndarray]:
    seg = np.zeros((*shape, 3), np.uint8)
    marker = np.zeros((*shape, 3), np.uint8)
    for row, col, side, positive, value in cells:
        seg[row:row + side, col:col + side] = (230, 0, 40) if positive else (40, 0, 230)
        marker[row:row + side, col:col + side, 1] = value
    return seg, marker


@pytest.fixture(scope="module")
def result():
    seg, marker = _image()
    return postprocess(seg, marker, size_thresh=None)


def test_table_of_the_hand_made_map(result) -> None:
    table = result.table
    assert list(table.id) == [1, 2, 3, 4, 5]
    assert list(table.area) == [9, 25, 64, 100, 144]
    assert list(table.positive) == [True, False, False, True, False]
    assert list(table.marker) == [250, 100, 20, 180, 130]
    assert list(table.bbox[1]) == [2, 20, 7, 25]  # (min_row, min_col, max_row, max_col), max exclusive
    assert tuple(table.centroid[1]) == (4.0, 22.0) and tuple(table.centroid_xy[1]) == (22.0, 4.0)
    assert table.reference_records()[1]["bbox"] == [[20, 2], [24, 6]]  # reference: (x, y), inclusive
    labels = result.labels()
    assert labels.dtype == np.uint32 and labels[3, 21] == 2 and labels[40, 2] == 0


@pytest.mark.parametrize(("tile", "expected"), [(1024, "40x"), (512, "40x"), (385, "40x"), (384, "20x"),
                                                (256, "20x"), (193, "20x"), (192, "10x"), (128, "10x")])
def test_resolution_for_tile_size(tile: int, expected: str) -> None:
    assert resolution_for_tile_size(tile) == expected


def _reference_kde(values: np.ndarray) -> np.ndarray:
    """The reference's create_kde, term by term with math.exp."""
    step = (max(values) + 1) / 500
    kde = np.zeros(500, np.float32)
    for i in range(500):
        total = 0
        for v in values:
            d = (i * step - v) * 1.0
            total += math.exp(-(d * d / 2)) * (1 / math.sqrt(2 * math.pi))
        kde[i] = total / (len(values) * 1.0)
    return kde


@pytest.mark.parametrize("seed", range(4))
def test_size_kde_is_the_reference_kde_bit_for_bit(seed: int) -> None:
    rng = np.random.default_rng(seed)
    sizes = np.concatenate([rng.integers(5, 60, 40), rng.integers(100, 900, 80)])
    rng.shuffle(sizes)
    values = np.sqrt(sizes.astype(np.float64))
    kde, step = _size_kde(values)
    np.testing.assert_array_equal(kde, _reference_kde(values))
    assert step == (values.max() + 1) / 500


def test_default_size_threshold_rules() -> None:
    assert default_size_threshold(np.array([], int), "40x") == 0
    assert default_size_threshold(np.array([50]), "40x") == 0
    # one size only: no local minimum -> t = 0 -> clamped up to the minimum
    for resolution, low in (("40x", 4), ("20x", 3), ("10x", 2)):
        assert default_size_threshold(np.full(10, 200), resolution) == low * low
    # debris around 9 px and cells around 400 px: the valley between them, sqrt in [4, 10]
    sizes = np.array([9, 8, 10, 9, 11] * 4 + [400, 380, 420, 390, 410] * 8)
    t = default_size_threshold(sizes, "40x")
    assert 16 <= t <= 100 and 11 < t < 380
    # valley (sqrt 14) beyond the 40x maximum (10) -> the 40x default, 7^2
    assert default_size_threshold(np.array([64] * 20 + [400] * 20), "40x") == 49
    # a gap so wide that the float32 KDE is 0 across it has no strict minimum -> the minimum
    assert default_size_threshold(np.array([150] * 20 + [2500] * 20), "40x") == 16


def test_default_marker_threshold() -> None:
    assert default_marker_threshold(np.zeros((5, 5), np.uint8)) == 0
    marker = np.arange(256, dtype=np.uint8).reshape(16, 16)
    low, high = round(np.percentile(np.arange(1, 256), 0.1)), round(np.percentile(np.arange(1, 256), 99.9))
    assert default_marker_threshold(marker) == round((high - low) * 0.9) + low == 230


def test_counts_rounding_and_empty() -> None:
    assert counts(np.array([True, True, True]), np.array([True, False, False])) == {
        "num_total": 3, "num_pos": 1, "num_neg": 2, "percent_pos": 33.3}
    assert counts(np.zeros(0, bool), np.zeros(0, bool)) == {
        "num_total": 0, "num_pos": 0, "num_neg": 0, "percent_pos": 0}


def test_size_gates_are_strict(result) -> None:
    assert result.rescore(size_thresh=25).scoring["num_total"] == 3  # 25 itself is out
    scoring = result.rescore(size_thresh=9, size_thresh_upper=100).scoring  # 9 and 100 out
    assert (scoring["num_total"], scoring["num_pos"]) == (2, 0)
    capped = result.rescore(size_thresh_upper="default").scoring
    assert capped["size_thresh_upper"] == 16000 and capped["num_total"] == 5


def test_marker_threshold_override(result) -> None:
    assert result.scoring["num_pos"] == 2
    scoring = result.rescore(marker_thresh=100).scoring  # 130 > 100 turns cell 5 positive; 100 does not
    assert (scoring["num_pos"], scoring["marker_thresh"]) == (3, 100)
    assert result.rescore(marker_thresh=100).positive.tolist() == [True, False, False, True, True]
    assert result.rescore(marker_thresh="default").scoring["marker_thresh"] == default_marker_threshold(
        _image()[1].max(axis=-1))


def test_cell_overrides(result) -> None:
    r = result.rescore(size_thresh=30, overrides={1: "include", 3: "exclude", 2: "positive", 5: "negative"})
    assert r.counted.tolist() == [True, True, False, True, True]
    assert r.positive.tolist() == [True, True, False, True, False]
    assert (r.scoring["num_total"], r.scoring["num_pos"]) == (4, 3)
    # overrides survive size and marker changes, and win over the marker threshold
    r2 = r.rescore(size_thresh=0, marker_thresh=0)
    assert r2.overrides == r.overrides and not r2.positive[4] and not r2.counted[2]
    # ... but not a seg_thresh change: cell ids change with the cells
    assert r.rescore(seg_thresh=100).overrides == {}
    assert r.rescore(seg_thresh=100, overrides={2: "exclude"}).overrides == {2: "exclude"}


@pytest.mark.parametrize("overrides", [{6: "exclude"}, {0: "exclude"}, {1: "flip"}, {"1": "exclude"}])
def test_bad_overrides(result, overrides) -> None:
    with pytest.raises(InputImageError):
        result.rescore(overrides=overrides)


def test_rescore_reuses_cells_and_defaults(result) -> None:
    assert result.rescore(size_thresh=40).cells is result.cells
    other = result.rescore(seg_thresh=200)
    assert other.cells is not result.cells
    assert other.rescore(seg_thresh=120).cells is result.cells


def test_regions_by_centroid(result) -> None:
    square = np.array([[0, 0], [30, 0], [30, 15], [0, 15]])  # (x, y): cells 1 and 2
    scoring = result.score(square)
    assert (scoring["num_total"], scoring["num_pos"], scoring["percent_pos"]) == (2, 1, 50.0)
    mask = np.zeros((60, 60), bool)
    mask[20:40, 0:30] = True  # holds the centroid pixel of cell 4 only
    regions = result.score_regions({"square": square, "mask": mask})
    assert regions["mask"]["num_total"] == 1 and regions["square"] == scoring
    assert scoring["size_thresh"] == result.scoring["size_thresh"]


def test_region_without_cells_scores_zero(result) -> None:
    empty_corner = np.array([[50, 50], [59, 50], [59, 59], [50, 59]])
    scoring = result.score(empty_corner)
    assert {k: scoring[k] for k in ("num_total", "num_pos", "num_neg", "percent_pos")} == {
        "num_total": 0, "num_pos": 0, "num_neg": 0, "percent_pos": 0}


@pytest.mark.parametrize(("region", "message"), [
    (np.array([[0, 0], [70, 0], [70, 10]]), "outside"),
    (np.array([[-3, 0], [10, 0], [10, 10]]), "outside"),
    (np.array([[0, 0], [10, 10], [20, 20]]), "zero area"),
    (np.array([[0, 0], [10, 10]]), "polygon"),
    (np.zeros((60, 60), bool), "empty"),
    (np.ones((30, 60), bool), "must match"),
    (np.array([[0, 0], [np.nan, 1], [2, 2]]), "polygon"),
])
def test_bad_regions(result, region, message: str) -> None:
    with pytest.raises(InputImageError, match=message):
        result.score(region)


def test_intensity_classes_and_h_score(result) -> None:
    scoring = result.rescore(marker_thresh=100).score(intensity_thresholds=(150, 200))
    # positive cells: 250 (3+), 180 (2+), 130 (1+); two negative cells
    assert {k: scoring[k] for k in ("num_1plus", "num_2plus", "num_3plus", "h_score")} == {
        "num_1plus": 1, "num_2plus": 1, "num_3plus": 1, "h_score": 120.0}
    with pytest.raises(InputImageError):
        result.score(intensity_thresholds=(200, 150))
    no_marker = postprocess(_image()[0])
    with pytest.raises(InputImageError, match="Marker"):
        no_marker.score(intensity_thresholds=(100, 200))


def test_density() -> None:
    assert density(5, 2_000_000, 0.5) == {"area_mm2": 0.5, "pos_per_mm2": 10.0}
    with pytest.raises(InputImageError):
        density(1, 100, 0)


def test_density_of_image_and_region(result) -> None:
    scoring = result.score(microns_per_pixel=0.25)
    assert scoring["area_mm2"] == pytest.approx(3600 * 0.25**2 / 1e6)
    assert scoring["pos_per_mm2"] == round(2 / scoring["area_mm2"], 1)
    square = np.array([[0, 0], [30, 0], [30, 15], [0, 15]])
    assert result.score(square, microns_per_pixel=1.0)["area_mm2"] == pytest.approx(450 / 1e6)
    by_name = result.score_regions({"square": square}, microns_per_pixel=1.0)
    assert by_name["square"] == result.score(square, microns_per_pixel=1.0)


@pytest.mark.parametrize(("kwargs", "error"), [
    (dict(seg_thresh=-1), InputImageError), (dict(seg_thresh=511), InputImageError),
    (dict(seg_thresh=12.5), InputImageError), (dict(size_thresh="auto"), InputImageError),
    (dict(size_thresh=-5), InputImageError), (dict(size_thresh_upper=0), InputImageError),
    (dict(marker_thresh=300), InputImageError), (dict(resolution="60x"), DeepLIIFError),
])
def test_bad_settings(kwargs, error) -> None:
    seg, marker = _image()
    with pytest.raises(error):
        postprocess(seg, marker, **kwargs)


def test_marker_threshold_needs_a_marker() -> None:
    with pytest.raises(InputImageError, match="Marker"):
        postprocess(_image()[0], marker_thresh="default")
    assert postprocess(_image()[0]).scoring["marker_thresh"] is None


def test_map_without_cells() -> None:
    result = postprocess(np.zeros((32, 32, 3), np.uint8))
    assert result.scoring == {"num_total": 0, "num_pos": 0, "num_neg": 0, "percent_pos": 0, "seg_thresh": 120,
                              "size_thresh": 0, "size_thresh_upper": None, "marker_thresh": None}
    assert result.seg_refined().max() == 0
