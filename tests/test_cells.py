"""Run-based cell finding against a straightforward pixel oracle, and its edge cases."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from napari_deepliif.cells.find import SegPixels, find_cells
from napari_deepliif.cells.outlines import cell_outlines
from napari_deepliif.errors import InputImageError


def _oracle(seg: np.ndarray, marker: np.ndarray | None, seg_thresh: int) -> dict[str, np.ndarray]:
    """The reference rules pixel by pixel with scipy.ndimage (slow but obvious)."""
    r, g, b = (seg[..., i].astype(int) for i in range(3))
    cell = (r + b > seg_thresh) & (g <= 80)
    filled = ndi.binary_fill_holes(cell)  # background grows 4-connected from the border
    labels, n = ndi.label(filled, structure=np.ones((3, 3)))
    index = np.arange(1, n + 1)
    area = ndi.sum_labels(np.ones_like(labels), labels, index).astype(int)
    keep = area > 4
    ids = np.zeros(n + 1, dtype=np.uint32)
    ids[index[keep]] = np.arange(1, keep.sum() + 1)
    yy, xx = np.indices(labels.shape)
    grey = np.zeros(labels.shape, np.uint8) if marker is None else marker.max(axis=-1)
    boxes = [s for s, k in zip(ndi.find_objects(labels), keep) if k]
    return {
        "labels": ids[labels],
        "area": area[keep],
        "n_positive_px": ndi.sum_labels(cell & (r >= b), labels, index)[keep].astype(int),
        "n_negative_px": ndi.sum_labels(cell & (r < b), labels, index)[keep].astype(int),
        "centroid": np.stack([ndi.sum_labels(yy, labels, index), ndi.sum_labels(xx, labels, index)],
                             axis=1)[keep] / area[keep, None],
        "bbox": np.array([[s[0].start, s[1].start, s[0].stop, s[1].stop] for s in boxes]).reshape(-1, 4),
        "marker": ndi.maximum(grey, labels, index)[keep].astype(np.uint8) if n else np.zeros(0, np.uint8),
    }


def _random_seg(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Blobby Seg-like map: smooth random red/blue, green ridges, some sharp noise."""
    channels = []
    for sigma in (2.5, 1.5, 2.5):
        field = ndi.gaussian_filter(rng.random(shape), sigma)
        field = (field - field.min()) / (np.ptp(field) + 1e-9)
        channels.append((field * 255).astype(np.uint8))
    seg = np.stack(channels, axis=-1)
    seg[rng.random(shape) < 0.02] = rng.integers(0, 256, 3, dtype=np.uint8)
    return seg


@pytest.mark.parametrize("seed", range(6))
def test_matches_pixel_oracle_on_random_maps(seed: int) -> None:
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(16, 90)), int(rng.integers(16, 90)))
    seg = _random_seg(rng, shape)
    marker = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    pixels = SegPixels.from_images(seg, marker)
    for seg_thresh in (60, 150, 220, 300):
        cells = find_cells(pixels, seg_thresh)
        expected = _oracle(seg, marker, seg_thresh)
        np.testing.assert_array_equal(cells.labels(), expected["labels"])
        rows, cols = np.indices(shape)
        at = [cells.label_at(r, c) for r, c in zip(rows.ravel(), cols.ravel())]
        np.testing.assert_array_equal(np.reshape(at, shape), expected["labels"])  # a click's cell
        assert cells.label_at(-1, 0) == cells.label_at(0, shape[1]) == 0
        for column in ("area", "n_positive_px", "n_negative_px", "centroid", "bbox", "marker"):
            np.testing.assert_array_equal(getattr(cells.table, column), expected[column], err_msg=column)


def test_paints_any_window_of_any_subsampled_level() -> None:
    rng = np.random.default_rng(7)
    cells = find_cells(SegPixels.from_images(_random_seg(rng, (97, 131))), 150)
    labels = cells.labels()
    for _ in range(200):
        step = int(rng.integers(1, 8))
        level = labels[::step, ::step]
        r0, c0 = (int(rng.integers(0, n)) for n in level.shape)
        r1, c1 = int(rng.integers(r0, level.shape[0] + 1)), int(rng.integers(c0, level.shape[1] + 1))
        window = cells.paint(cells.table.id, 0, rows=range(r0 * step, r1 * step, step)[: r1 - r0],
                             cols=range(c0 * step, labels.shape[1], step)[: c1 - c0])
        np.testing.assert_array_equal(window, level[r0:r1, c0:c1])
    area_or_fill = np.append(cells.table.area, -1)[labels[5:6].astype(np.int64) - 1]  # label 0: the fill
    np.testing.assert_array_equal(cells.paint(cells.table.area, -1, rows=range(5, 6)), area_or_fill)


@pytest.mark.parametrize("seed", range(3))
def test_matches_pixel_oracle_on_nested_rings(seed: int) -> None:
    """Contour bands of a smooth field: nested rings, holes and islands inside holes."""
    rng = np.random.default_rng(100 + seed)
    field = ndi.gaussian_filter(rng.random((120, 110)), 6)
    field = (field - field.min()) / np.ptp(field)
    band = (field * 40) % 1 < 0.5
    seg = np.zeros((*field.shape, 3), np.uint8)
    seg[band] = np.where(rng.random((int(band.sum()), 1)) < 0.5, (200, 0, 90), (90, 0, 200))
    pixels = SegPixels.from_images(seg, seg)
    cells = find_cells(pixels, 120)
    expected = _oracle(seg, seg, 120)
    assert (ndi.binary_fill_holes(band) & ~band).sum() > 100  # the case really has holes
    np.testing.assert_array_equal(cells.labels(), expected["labels"])
    for column in ("area", "n_positive_px", "n_negative_px", "centroid", "bbox", "marker"):
        np.testing.assert_array_equal(getattr(cells.table, column), expected[column], err_msg=column)


def _seg_from_codes(rows: list[str]) -> np.ndarray:
    """'+' positive, '-' negative, 'g' boundary green, '.' empty."""
    colours = {"+": (255, 0, 0), "-": (0, 0, 255), "g": (0, 255, 0), ".": (0, 0, 0)}
    seg = np.array([[colours[c] for c in row] for row in rows], dtype=np.uint8)
    return np.pad(seg, ((0, 16 - seg.shape[0]), (0, 16 - seg.shape[1]), (0, 0)))


def test_holes_belong_to_the_cell_and_background_is_4_connected() -> None:
    # ring missing its corner pixel: the inside touches the outside only diagonally, so it is
    # a hole (background is 4-connected) and belongs to the cell; the corner is background
    seg = _seg_from_codes([
        "......",
        ".----.",
        ".-..-.",
        ".-..-.",
        ".---..",
        "......",
    ])
    table = find_cells(SegPixels.from_images(seg), 120).table
    assert len(table) == 1
    assert table.area[0] == 11 + 4  # ring pixels and the hole
    assert (table.n_positive_px[0], table.n_negative_px[0]) == (0, 11)


def test_cells_are_8_connected_and_noise_is_dropped() -> None:
    seg = _seg_from_codes([
        "++.......",
        "++.......",
        "..+......",  # diagonal: same cell as the block above (5 px)
        ".........",
        ".....--..",  # 4 px: noise
        ".....--..",
    ])
    cells = find_cells(SegPixels.from_images(seg), 120)
    assert list(cells.table.area) == [5]
    assert cells.table.positive[0]
    labels = cells.labels()
    assert labels.dtype == np.uint32 and labels.max() == 1 and labels[4:6, 5:7].max() == 0


def test_whole_image_cell_and_empty_map() -> None:
    full = np.zeros((20, 30, 3), np.uint8)
    full[..., 2] = 200
    table = find_cells(SegPixels.from_images(full), 120).table
    assert list(table.area) == [600] and list(table.bbox[0]) == [0, 0, 20, 30]
    empty = find_cells(SegPixels.from_images(np.zeros((20, 30, 3), np.uint8)), 120)
    assert len(empty.table) == 0 and empty.labels().max() == 0
    assert empty.first_pixels().shape == (0, 2)


def test_outline_and_first_pixel() -> None:
    seg = np.zeros((40, 50, 3), np.uint8)
    seg[5:30, 10:40] = (0, 0, 255)
    cells = find_cells(SegPixels.from_images(seg), 120)
    assert list(cells.first_pixels()[0]) == [5, 10]
    # pixel-edge (x, y) corners: columns 10..39 and rows 5..29 span [10, 40] x [5, 30]
    [[ring]] = cell_outlines(cells, [0])
    assert np.array_equal(ring[0], ring[-1]) and len(ring) == 5
    assert sorted(map(tuple, ring[:-1].tolist())) == [(10, 5), (10, 30), (40, 5), (40, 30)]
    [[moved]] = cell_outlines(cells, [0], origin=(100, 50))
    assert np.array_equal(moved, ring + (100, 50))
    assert np.allclose(cells.table.centroid_xy[0], (24.5, 17.0))


@pytest.mark.parametrize(("seg", "marker", "message"), [
    (np.zeros((20, 20), np.uint8), None, "grayscale"),
    (np.zeros((20, 20, 3), np.float32), None, "dtype"),
    (np.zeros((20, 20, 3), np.uint8), np.zeros((20, 21, 3), np.uint8), "same image"),
    (np.zeros((20, 20, 3), np.uint8), np.zeros((20, 20, 2), np.uint8), "channels"),
    ([[0, 0, 0]], None, "RGB array"),
])
def test_bad_images_are_refused(seg, marker, message: str) -> None:
    with pytest.raises(InputImageError, match=message):
        SegPixels.from_images(seg, marker)


def test_rgba_seg_and_grey_marker_are_accepted() -> None:
    seg = np.zeros((20, 20, 4), np.uint8)
    seg[5:10, 5:10] = (255, 0, 0, 255)
    grey = np.full((20, 20), 7, np.uint8)
    table = find_cells(SegPixels.from_images(seg, grey), 120).table
    assert list(table.marker) == [7] and list(table.positive) == [True]
