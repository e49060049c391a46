"""What the canvas shows after a recolour (screenshots of a real viewer under Xvfb), and
results with more cells than napari's plain-numpy colour mapping can take."""

from __future__ import annotations

import numpy as np
import pytest

from napari_deepliif.cells.postprocess import postprocess
from napari_deepliif.widget import layers, roi

CELL, PITCH = 60, 100  # 60 px square cells on a 100 px grid


def grid_seg(rows: int, cols: int, cell: int = CELL, pitch: int = PITCH) -> np.ndarray:
    """A Seg map of square cells, positive (red) and negative (blue) in a checkerboard."""
    yy, xx = np.mgrid[:rows * pitch, :cols * pitch]
    inside = (yy % pitch < cell) & (xx % pitch < cell)
    positive = (yy // pitch + xx // pitch) % 2 == 0
    seg = np.zeros((rows * pitch, cols * pitch, 3), np.uint8)
    seg[inside & positive, 0] = 255
    seg[inside & ~positive, 2] = 255
    return seg


def shown(viewer, layer, labels: np.ndarray, qtbot) -> dict[int, np.ndarray]:
    """Cell id -> the RGB the canvas shows at that cell's centre."""
    qtbot.wait(50)
    shot = viewer.screenshot(canvas_only=True, flash=False)
    h, w = shot.shape[:2]
    camera = roi.viewer_camera(viewer)
    zoom, center = camera.zoom, np.asarray(camera.center)[-2:]
    colours = {}
    for cell in np.unique(labels[labels > 0]):
        ys, xs = np.nonzero(labels == cell)
        world = np.asarray(layer.data_to_world((ys.mean(), xs.mean())))[-2:]
        row, col = np.round((world - center) * zoom + (h / 2, w / 2)).astype(int)
        colours[int(cell)] = shot[row, col, :3]
    return colours


def colour_name(rgb: np.ndarray) -> str:
    r, g, b = (int(v) for v in rgb)
    if r > 150 and b < 80:
        return "red"
    if b > 150 and r < 80:
        return "blue"
    if max(r, g, b) < 40:
        return "none"
    return f"other {r, g, b}"


def expected_names(post) -> dict[int, str]:
    return {int(i): ("red" if p else "blue") if c else "none"
            for i, c, p in zip(post.table.id, post.counted, post.positive)}


def test_recolouring_shows_the_new_colours_on_the_canvas(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    post = postprocess(grid_seg(3, 5), resolution="40x", size_thresh=0)
    assert (post.scoring["num_pos"], post.scoring["num_neg"]) == (8, 7)
    made = layers.show_result(viewer, {}, post, scale=np.ones(2), translate=np.zeros(2), meta={})
    outlines = made[layers.OUTLINES]
    cells = made[layers.CELLS]
    outlines.visible, cells.visible, cells.opacity = False, True, 1.0
    viewer.reset_view()
    labels = post.labels()
    assert {k: colour_name(v) for k, v in shown(viewer, cells, labels, qtbot).items()} == expected_names(post)

    events = []
    cells.events.colormap.connect(events.append)
    ids = post.table.id
    # one negative cell made positive, another excluded: positive cells are still the most
    # (the default colour) and the same colours are listed, so the renderer's colour table
    # is kept (no colormap event) and only the shown labels are re-mapped
    negatives = ids[~post.positive]
    flipped = post.rescore(overrides={int(negatives[0]): "positive", int(negatives[1]): "exclude"})
    layers.recolor(viewer, flipped)
    assert not events
    assert {k: colour_name(v) for k, v in shown(viewer, cells, labels, qtbot).items()} == expected_names(flipped)

    # every cell negative: one colour less, so the colour table changes (the ordinary event)
    negative = post.rescore(overrides={int(i): "negative" for i in ids})
    layers.recolor(viewer, negative)
    assert events
    assert set(expected_names(negative).values()) == {"blue"}
    assert {k: colour_name(v) for k, v in shown(viewer, cells, labels, qtbot).items()} == expected_names(negative)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_more_cells_than_napari_numpy_colour_mapping_takes(make_napari_viewer, qtbot):
    # 264 x 264 cells of 4 x 4 px: 69,696 labels, above the 65,536 that napari maps with plain
    # numpy; the compiled backend (PartSegCore) this package depends on maps any number
    post = postprocess(grid_seg(264, 264, cell=4, pitch=6), resolution="40x", size_thresh=0)
    assert len(post.table) == 264 * 264
    viewer = make_napari_viewer(show=True)
    made = layers.show_result(viewer, {}, post, scale=np.ones(2), translate=np.zeros(2), meta={})
    cells = made[layers.CELLS]
    cells.visible = True
    viewer.reset_view()
    qtbot.wait(50)
    top = int(post.table.id.max())
    assert top > 2 ** 16
    rgba = cells.colormap.map(np.array([top]))[0]
    assert (rgba[3] > 0) == bool(post.counted[-1])
    shot = viewer.screenshot(canvas_only=True, flash=False)
    assert (shot[..., 0] > 100).any() and (shot[..., 2] > 100).any()  # red and blue cells drawn
    layers.recolor(viewer, post.rescore(overrides={top: "exclude"}))
    assert cells.colormap.map(np.array([top]))[0, 3] == 0
