"""Exact pixel-edge cell outlines, checked with shapely against the pixels they enclose.

Hand-made Seg maps and label images cover the corner cases (cells touching only at a corner,
holes, image borders); random pixel noise covers the rest.
"""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from shapely.geometry import Polygon, box, shape

from napari_deepliif.cells.outlines import cell_outlines, outline_rings
from napari_deepliif.cells.postprocess import postprocess
from napari_deepliif.io.exports import cells_geojson


def _pixel_union(mask: np.ndarray, origin=(0, 0)):
    """The union of the unit squares of ``mask``'s pixels, QuPath coordinates."""
    rows, cols = np.nonzero(mask)
    x0, y0 = origin
    return shapely.union_all([box(x0 + c, y0 + r, x0 + c + 1, y0 + r + 1)
                              for r, c in zip(rows, cols)])


def _seg(mask_positive: np.ndarray, mask_negative: np.ndarray | None = None) -> np.ndarray:
    seg = np.zeros((*mask_positive.shape, 3), np.uint8)
    seg[mask_positive] = (230, 0, 40)
    if mask_negative is not None:
        seg[mask_negative] = (40, 0, 230)
    return seg


def test_outlines_of_hand_made_cells() -> None:
    """Corner-joined pixels, a chain of pinches, a hole, the image border, a lattice."""
    shape_ = (40, 40)
    pos, neg = np.zeros(shape_, bool), np.zeros(shape_, bool)
    pos[2:5, 2:5] = pos[5:8, 5:8] = True              # two squares joined at one corner
    for k in range(5):                                 # diagonal staircases of single pixels
        pos[12 + k, 2 + k] = pos[12 + k, 20 - k] = True
    pos[31, 10] = pos[32, 11] = pos[31, 12] = pos[32, 13] = pos[31, 14] = True  # a zigzag
    pos[36, 10] = pos[35, 11] = pos[36, 12] = pos[35, 13] = pos[36, 14] = True  # upside down
    neg[20:30, 20:30] = True                           # a ring with a hole (filled by the table)
    neg[23:27, 23:27] = False
    pos[0:6, 34:40] = True                             # in the image corner
    neg[2:6, 28:34] = True                             # same cell: touching it along an edge
    neg[8, 12] = neg[9, 13] = neg[8, 14] = neg[9, 11] = neg[10, 12] = neg[10, 14] = True  # lattice
    post = postprocess(_seg(pos, neg), size_thresh=0)
    labels = post.labels()
    assert post.scoring["num_total"] == len(post.table) == 8
    outlines = cell_outlines(post.cells, np.arange(len(post.table)))
    geo = cells_geojson(post, origin=(7, 3))
    for i, (rings, feature) in enumerate(zip(outlines, geo["features"])):
        polygon = Polygon(rings[0], rings[1:])
        assert len(rings) == 1 and polygon.is_valid, shapely.is_valid_reason(polygon)
        assert (np.diff(rings[0], axis=0) != 0).any(axis=1).all()  # no repeated vertex
        assert polygon.area == post.table.area[i]
        assert polygon.symmetric_difference(_pixel_union(labels == i + 1)).area < 0.05
        moved = shape(feature["geometry"])
        assert moved.is_valid and moved.area == polygon.area
        assert np.array_equal(np.array(moved.exterior.coords),
                              np.array(polygon.exterior.coords) + (7, 3))
    assert post.table.area.tolist() == [60, 18, 7, 5, 5, 100, 5, 5]  # holes count (lattice, ring)
    assert cell_outlines(post.cells, []) == []
    with pytest.raises(IndexError):
        cell_outlines(post.cells, [len(post.table)])


def test_outlines_of_random_cells() -> None:
    """Random pixel noise: many corner joins, holes and odd shapes; every outline is exact."""
    rng = np.random.default_rng(7)
    for density in (0.35, 0.45, 0.55, 0.65):
        seg = _seg(rng.random((48, 48)) < density)
        post = postprocess(seg, size_thresh=0)
        labels = post.labels()
        rows, cols = np.mgrid[0:48, 0:48]
        for i, rings in enumerate(cell_outlines(post.cells, np.arange(len(post.table)))):
            polygon = Polygon(rings[0])
            assert len(rings) == 1 and polygon.is_valid, shapely.is_valid_reason(polygon)
            assert polygon.exterior.is_ccw and polygon.area == post.table.area[i]
            inside = shapely.contains_xy(polygon, cols + 0.5, rows + 0.5)
            assert np.array_equal(inside, labels == i + 1)
            assert (np.diff(rings[0], axis=0) != 0).any(axis=1).all()


def test_outlines_of_labels_with_holes_and_parts() -> None:
    """Label images that find_cells never makes: an unfilled hole, a cell in two parts."""
    labels = np.zeros((12, 12), np.uint32)
    labels[1:8, 1:8] = 1
    labels[3:5, 3:6] = 0                     # hole
    labels[9:11, 9:11] = 2
    points, bounds, rings = outline_rings(labels, np.array([2, 1]))
    assert [len(r) for r in rings] == [1, 2]
    outer, hole = (points[bounds[k]:bounds[k + 1]] for k in rings[1])
    polygon = Polygon(outer, [hole])
    assert polygon.is_valid and polygon.area == 49 - 6 and not Polygon(hole).exterior.is_ccw
    labels[0, 10] = 2                         # a second, separate part of cell 2
    with pytest.raises(ValueError, match="2 outer outlines"):
        outline_rings(labels, np.array([2]))
