"""Qt-free parts of the widget: placement maths, colours, outlines, pyramids and ROI geometry."""

from __future__ import annotations

import numpy as np
import pytest

from napari_deepliif.cells.find import SegPixels, find_cells  # noqa: E402
from napari_deepliif.constants import NEGATIVE_RGB, POSITIVE_RGB  # noqa: E402
from napari_deepliif.errors import DeepLIIFError  # noqa: E402
from napari_deepliif.widget import layers, roi  # noqa: E402


def test_placement_puts_the_roi_origin_over_its_source_pixel():
    scale, translate = layers.placement((0.5, 0.25), (100, 50), origin_xy=(60, 40))
    np.testing.assert_allclose(scale, (0.5, 0.25))
    np.testing.assert_allclose(translate, (100 + 40 * 0.5, 50 + 60 * 0.25))
    scale, translate = layers.placement((1, 1, 0.5, 0.5), (7, 0, 10, 20), origin_xy=(3, 2), downsample=4)
    np.testing.assert_allclose(scale, (2, 2))
    np.testing.assert_allclose(translate, (10 + 2 * 2, 20 + 3 * 2))


def test_cell_colours_follow_counted_and_class():
    from napari.utils.colormaps import DirectLabelColormap

    ids = np.arange(1, 6, dtype=np.uint32)
    counted = np.array([True, True, False, True, False])
    positive = np.array([True, False, True, False, False])
    cmap = DirectLabelColormap(color_dict=layers.cell_color_dict(ids, counted, positive))
    rgba = cmap.map(np.array([0, 1, 2, 3, 4, 5]))
    assert tuple(np.round(rgba[1, :3] * 255)) == POSITIVE_RGB
    assert tuple(np.round(rgba[2, :3] * 255)) == NEGATIVE_RGB
    np.testing.assert_array_equal(rgba[:, 3] > 0, [False, True, True, False, True, False])


def test_the_largest_group_of_cells_is_left_to_the_default_colour():
    from napari.utils.colormaps import DirectLabelColormap

    ids = np.arange(1, 101, dtype=np.uint32)
    counted = ids > 10  # 90 counted: 80 negative, 10 positive; 10 not counted
    positive = ids > 90
    colors = layers.cell_color_dict(ids, counted, positive)
    assert len(colors) == 2 + 20  # None, background, the 10 positive and 10 uncounted cells
    rgba = DirectLabelColormap(color_dict=colors).map(ids)
    assert (rgba[10:90, 3] > 0).all() and tuple(np.round(rgba[50, :3] * 255)) == NEGATIVE_RGB
    assert tuple(np.round(rgba[95, :3] * 255)) == POSITIVE_RGB
    assert (rgba[:10, 3] == 0).all()


def test_no_counted_cell_still_gives_a_direct_colormap():
    colors = layers.cell_color_dict(np.arange(1, 4), np.zeros(3, bool), np.zeros(3, bool))
    assert len(colors) == 3 and set(colors.values()) == {"transparent"}


def test_outlines_keep_only_border_pixels():
    labels = np.zeros((7, 7), np.uint32)
    labels[1:6, 1:6] = 3
    edge = layers.outlines(labels)
    assert edge[3, 3] == 0 and edge[1, 1] == 3 and edge[1, 3] == 3 and edge[0, 0] == 0
    assert np.count_nonzero(edge) == 16  # the 5 x 5 square's ring


def test_outlines_of_a_tall_image_match_the_neighbour_rule():
    # taller than one band of rows, so borders between bands count too
    labels = np.random.default_rng(0).integers(0, 4, (layers._OUTLINE_BAND * 3 + 5, 37)).astype(np.uint32)
    padded = np.pad(labels, 1, mode="edge")
    centre = padded[1:-1, 1:-1]
    differs = ((padded[:-2, 1:-1] != centre) | (padded[2:, 1:-1] != centre)
               | (padded[1:-1, :-2] != centre) | (padded[1:-1, 2:] != centre))
    np.testing.assert_array_equal(layers.outlines(labels), np.where(differs, labels, 0))


def test_large_label_images_become_pyramids_painted_per_window():
    rng = np.random.default_rng(3)
    small = SegPixels.from_images(rng.integers(0, 256, (100, 90, 3), dtype=np.uint8))
    cells = find_cells(small, 200)
    np.testing.assert_array_equal(layers.cells_layer_data(cells, layers.CELLS), cells.labels())
    np.testing.assert_array_equal(layers.cells_layer_data(cells, layers.OUTLINES), layers.outlines(cells.labels()))

    seg = np.zeros((3000, 2100, 3), np.uint8)
    seg[::7, :, 0] = 250  # horizontal stripes, cut into cells by blue columns
    seg[:, ::13, 2] = 250
    seg[rng.random(seg.shape[:2]) < 0.05] = (0, 0, 0)
    cells = find_cells(SegPixels.from_images(seg), 120)
    labels = cells.labels()
    levels = layers.cells_layer_data(cells, layers.CELLS)
    # factors 1, 2, 3, 4, 6: napari shows at most 1.5x (from 2 on) the screen's pixels
    assert [lvl.shape for lvl in levels] == [(3000, 2100), (1500, 1050), (1000, 700), (750, 525), (500, 350)]
    assert all(lvl.dtype == np.uint32 and lvl.ndim == 2 for lvl in levels)
    np.testing.assert_array_equal(np.asarray(levels[2]), labels[::3, ::3])
    borders = layers.cells_layer_data(cells, layers.OUTLINES)
    for level, border, f in zip(levels, borders, layers.pyramid_factors(3000)):
        expected, edge = labels[::f, ::f], layers.outlines(labels[::f, ::f])
        for window in ((slice(0, 40), slice(0, 50)), (slice(37, 301), slice(5, 6)),
                       (slice(level.shape[0] - 9, None), slice(level.shape[1] - 17, None))):
            np.testing.assert_array_equal(level[window], expected[window])
            np.testing.assert_array_equal(border[window], edge[window])  # a window's rim as the whole's
        assert border[12, 34] == edge[12, 34] and border[-1, 5] == edge[-1, 5] and border[..., 3].shape == (level.shape[0],)
        np.testing.assert_array_equal(level[7], expected[7])
        np.testing.assert_array_equal(level[2:9, -4], expected[2:9, -4])
    with pytest.raises(IndexError):
        levels[0][3000, 0]
    assert layers.pyramid_factors(20000)[-3:] == [24, 32, 48] and -(-20000 // 48) <= layers.PYRAMID_SMALLEST


def test_bounding_rect_covers_touched_pixels_and_clips():
    square = np.array([[9.5, 19.5], [29.5, 19.5], [29.5, 49.5], [9.5, 49.5]])
    assert roi.bounding_rect([square], 100, 100) == (10, 20, 20, 30)
    assert roi.bounding_rect([square - 15], 100, 100) == (0, 5, 15, 30)
    with pytest.raises(DeepLIIFError):
        roi.bounding_rect([square + 500], 100, 100)
    local = roi.in_region(square + (0, 100), (10, 20, 20, 30))
    assert local.max(axis=0).tolist() == [19.5, 29.5]


def test_field_of_view_is_the_canvas_over_the_zoom():
    corners = roi.field_of_view((50, 80), zoom=2.0, canvas_hw=(600, 800))
    np.testing.assert_allclose(corners, [[50 - 150, 80 - 200], [50 + 150, 80 + 200]])


def test_union_mask_of_polygons():
    a = np.array([[-0.5, -0.5], [4.5, -0.5], [4.5, 4.5], [-0.5, 4.5]])
    mask = roi.union_mask([a, a + 5], (10, 10))
    assert mask.sum() == 50 and mask[0, 0] and mask[9, 9] and not mask[0, 9]
