"""The napari dock widget in a real viewer (pytest-qt + Xvfb): runs, placement, sliders,
overrides, cancel and bad input. Small images and the stain engine or the tiny fixture model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from napari_deepliif.engine.engines import StainEngine  # noqa: E402
from napari_deepliif.io.sample import load_sample  # noqa: E402
from napari_deepliif.regions.score import score_region

RUN_TIMEOUT_MS = 120_000


pytestmark = pytest.mark.usefixtures("private_model_dirs")


@pytest.fixture
def widget(make_napari_viewer):
    from napari_deepliif.widget import DeepLIIFWidget

    viewer = make_napari_viewer()
    w = DeepLIIFWidget(viewer)
    viewer.window.add_dock_widget(w)
    return w


def choose_stain(w) -> None:
    w.engine_box.combo.setCurrentIndex(w.engine_box.combo.findData("stain"))


def run_and_wait(w, qtbot):
    worker = w.run()
    assert worker is not None
    qtbot.waitUntil(lambda: w.worker is None and w.run_button.isEnabled(), timeout=RUN_TIMEOUT_MS)


def plugin_layers(viewer):
    from napari_deepliif.widget.layers import PLUGIN_KEY

    return {layer.name: layer for layer in viewer.layers if PLUGIN_KEY in layer.metadata}


def test_opening_the_widget_does_not_import_torch():
    code = ("import sys, napari; v = napari.Viewer(show=False)\n"
            "from napari_deepliif.widget import DeepLIIFWidget\n"
            "w = DeepLIIFWidget(v)\nprint('torch' in sys.modules)\nv.close()\n")
    env = {**__import__("os").environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "False"


def test_manifest_is_valid_and_names_the_widget():
    import npe2

    manifest = npe2.PluginManifest.from_file(Path(__file__).parents[1] / "napari.yaml")
    assert manifest.name == "napari-deepliif"
    commands = {c.id: c.python_name for c in manifest.contributions.commands}
    assert commands["napari-deepliif.widget"] == "napari_deepliif.widget:DeepLIIFWidget"
    assert [w.command for w in manifest.contributions.widgets] == ["napari-deepliif.widget"]
    menus = manifest.contributions.menus
    assert any(item.command == "napari-deepliif.widget" for item in menus["napari/layers/segment"])
    assert manifest.contributions.sample_data[0].key == "ihc"
    writer = manifest.contributions.writers[0]
    assert writer.layer_types == ["labels"]


def test_stain_run_on_the_sample_matches_the_engine(widget, qtbot):
    viewer = widget.viewer
    image = load_sample()
    viewer.add_image(image, name="ihc", rgb=True)
    choose_stain(widget)
    assert "stain" in widget.engine_box.combo.currentText()
    run_and_wait(widget, qtbot)
    layers = plugin_layers(viewer)
    assert set(layers) == {"DeepLIIF Hema", "DeepLIIF Marker", "DeepLIIF cells", "DeepLIIF outlines"}
    cells = layers["DeepLIIF cells"]
    assert cells.data.dtype == np.uint32 and cells.data.shape == image.shape[:2]
    assert layers["DeepLIIF Hema"].rgb and layers["DeepLIIF Hema"].data.shape == image.shape
    assert layers["DeepLIIF Marker"].blending == "additive"
    from napari_deepliif.widget.layers import outlines

    np.testing.assert_array_equal(layers["DeepLIIF outlines"].data, outlines(cells.data))
    own = score_region(StainEngine(), image, resolution="40x")
    assert widget.scores()[0][1]["num_total"] == own.scoring["num_total"]
    assert widget.post.scoring == own.scoring
    np.testing.assert_array_equal(cells.data, own.post.labels())
    assert widget.score_table.cell_text(0, 1) == str(own.scoring["num_total"])
    assert "stain" in widget.engine_box.engine_label.text()
    # the image stays the active layer (a click pans; it does not paint into the labels)
    assert viewer.layers.selection.active is viewer.layers["ihc"]
    # the first view is the image with its cell outlines; the modalities wait in the layer list
    shown = {layer.name for layer in viewer.layers if layer.visible}
    assert shown == {"ihc", "DeepLIIF outlines"}
    for name in ("DeepLIIF Hema", "DeepLIIF Marker", "DeepLIIF cells"):  # thumbnails show them, not black
        assert layers[name].thumbnail[..., :3].max() > 0, name
    # a re-run updates the same layers in place, and keeps what the user chose to show
    layers["DeepLIIF Marker"].visible = True
    before = {name: id(layer) for name, layer in layers.items()}
    run_and_wait(widget, qtbot)
    assert {name: id(layer) for name, layer in plugin_layers(viewer).items()} == before
    assert {layer.name for layer in viewer.layers if layer.visible} == shown | {"DeepLIIF Marker"}


def test_roi_run_on_a_scaled_translated_layer_is_placed_over_the_roi(widget, qtbot):
    viewer = widget.viewer
    image = load_sample()
    viewer.add_image(image, name="ihc", rgb=True, scale=(0.5, 0.5), translate=(100, 50))
    # rectangle in world coordinates covering pixels rows 40..199, cols 60..259
    y0, x0, y1, x1 = 100 + 0.5 * 39.5, 50 + 0.5 * 59.5, 100 + 0.5 * 199.5, 50 + 0.5 * 259.5
    shapes = viewer.add_shapes([[[y0, x0], [y0, x1], [y1, x1], [y1, x0]]], shape_type="rectangle", name="rois")
    shapes.add_polygons([[[y0, x0], [y0, x0 + 40], [y0 + 40, x0]]])
    choose_stain(widget)
    widget.area_combo.setCurrentText("ROIs of a Shapes layer")
    widget.shapes_combo.setCurrentIndex(widget.shapes_combo.findText("rois"))
    run_and_wait(widget, qtbot)
    cells = plugin_layers(viewer)["DeepLIIF cells"]
    own = score_region(StainEngine(), image, region=(60, 40, 200, 160), resolution="40x")
    # the layers show the ROIs' bounding box with its context (a 40x tile each way, here the
    # whole image), placed where that window lies
    ox, oy = own.origin
    assert cells.data.shape == own.post.cells.shape == image.shape[:2]
    np.testing.assert_allclose(cells.scale, (0.5, 0.5))
    np.testing.assert_allclose(cells.translate, (100 + oy * 0.5, 50 + ox * 0.5))
    for name, layer in plugin_layers(viewer).items():
        np.testing.assert_allclose(layer.translate, cells.translate, err_msg=name)
    np.testing.assert_array_equal(cells.data, own.post.labels())
    rows = widget.scores()
    assert [name for name, _ in rows] == ["All", "ROI 1", "ROI 2"]
    box = np.array([[59.5, 39.5], [259.5, 39.5], [259.5, 199.5], [59.5, 199.5]]) - (ox, oy)
    assert rows[1][1]["num_total"] == own.post.score(box)["num_total"] == own.scoring["num_total"]
    assert rows[2][1]["num_total"] <= rows[1][1]["num_total"]


def test_sliders_rescore_and_recolour_as_the_engine(widget, qtbot):
    from napari_deepliif.widget.layers import outlines as border_pixels

    viewer = widget.viewer
    image = load_sample()
    viewer.add_image(image, name="ihc", rgb=True)
    choose_stain(widget)
    run_and_wait(widget, qtbot)
    cells = plugin_layers(viewer)["DeepLIIF cells"]
    outlines = plugin_layers(viewer)["DeepLIIF outlines"]
    assert outlines.visible and not cells.visible  # filled cells are shown on demand
    base = widget.post
    moves = {"size_thresh": base.scoring["size_thresh"] + 60, "size_thresh_upper": 300,
             "marker_thresh": 100, "seg_thresh": 300}
    for key, value in moves.items():
        before = dict(widget.post.scoring)
        widget.sliders[key].move_to(value)
        qtbot.waitUntil(lambda key=key, value=value: widget.post.scoring[key] == value, timeout=3000)
        expected = base.rescore(**{k: widget.settings[k] for k in widget.settings})
        assert widget.post.scoring == expected.scoring
        assert widget.post.scoring != before, key
        assert widget.score_table.cell_text(0, 1) == str(expected.scoring["num_total"])
        for layer in (outlines, cells):
            layer.visible = True  # a hidden layer has the new cells, and its colours when shown
            labels = expected.labels()
            np.testing.assert_array_equal(layer.data, labels if layer is cells else border_pixels(labels))
            colours = layer.colormap.map(expected.table.id)
            red = colours[:, 0] == 1
            np.testing.assert_array_equal(red & (colours[:, 3] > 0), expected.counted & expected.positive)
            np.testing.assert_array_equal(colours[:, 3] > 0, expected.counted)
        cells.visible = False
    widget.defaults_button.click()  # the seg threshold goes back too: the cells are found again
    qtbot.waitUntil(lambda: widget.relabelling is None, timeout=3000)
    assert widget.post.scoring == base.scoring


def test_seg_threshold_moves_on_large_areas_find_the_cells_in_the_background(widget, qtbot, monkeypatch):
    from napari_deepliif.widget import _widget
    from napari_deepliif.widget.layers import outlines as border_pixels

    monkeypatch.setattr(_widget, "RELABEL_ON_GUI_THREAD_MAX_PX", 100 * 100)  # the sample is "large"
    viewer = widget.viewer
    viewer.add_image(load_sample(), name="ihc", rgb=True)
    choose_stain(widget)
    run_and_wait(widget, qtbot)
    base = widget.post
    widget.set_threshold("seg_thresh", 200)
    assert widget.relabelling is not None and not widget.score_table.isEnabled()  # the panel says: wait
    assert widget.post is base
    # moves made meanwhile (throttled or not) are all applied when the search ends
    widget.settings.update(seg_thresh=260, size_thresh=base.scoring["size_thresh"] + 30)
    widget.apply_settings()
    qtbot.waitUntil(lambda: widget.relabelling is None and widget.post.settings.seg_thresh == 260, timeout=10000)
    expected = base.rescore(seg_thresh=260, size_thresh=base.scoring["size_thresh"] + 30)
    assert widget.post.scoring == expected.scoring
    assert widget.score_table.isEnabled()
    assert widget.score_table.cell_text(0, 1) == str(expected.scoring["num_total"])
    assert widget.sliders["seg_thresh"].value() == 260
    outlines = plugin_layers(viewer)["DeepLIIF outlines"]
    np.testing.assert_array_equal(outlines.data, border_pixels(expected.labels()))
    colours = outlines.colormap.map(expected.table.id)
    np.testing.assert_array_equal(colours[:, 3] > 0, expected.counted)


def test_a_seg_threshold_move_redraws_a_large_area_shown_as_a_pyramid(widget, qtbot, monkeypatch, tmp_path):
    import tifffile

    from napari_deepliif.widget import layers
    from napari_deepliif.widget.layers import outlines as border_pixels

    monkeypatch.setattr(layers, "PYRAMID_ABOVE", 256)  # the 512 px sample is "large"
    monkeypatch.setattr(layers, "PYRAMID_SMALLEST", 128)
    viewer = widget.viewer
    viewer.add_image(load_sample(), name="ihc", rgb=True)
    choose_stain(widget)
    run_and_wait(widget, qtbot)
    found = plugin_layers(viewer)
    outlines, cells = found["DeepLIIF outlines"], found["DeepLIIF cells"]
    assert outlines.multiscale and cells.multiscale
    viewer.window.show()  # napari draws nothing in a hidden window
    viewer.layers["ihc"].visible = False  # the picture is the outlines alone
    drawn = (viewer.export_figure(flash=False)[..., :3] > 0).any(axis=2).mean()
    assert drawn > 0.01
    base = widget.post
    widget.sliders["seg_thresh"].move_to(300)
    qtbot.waitUntil(lambda: widget.post.scoring["seg_thresh"] == 300, timeout=3000)
    expected = base.rescore(seg_thresh=300)
    cells.visible = True  # recoloured when shown
    for layer, paint in ((outlines, border_pixels), (cells, lambda labels: labels)):
        for level, f in zip(layer.data, layers.pyramid_factors(512)):
            np.testing.assert_array_equal(np.asarray(level), paint(expected.labels()[::f, ::f]))
    cells.visible = False
    # the stain engine's Seg is pure red or blue: above 255 no pixel is a cell, and the canvas shows it
    assert (viewer.export_figure(flash=False)[..., :3] > 0).any(axis=2).mean() == 0
    widget.sliders["seg_thresh"].move_to(120)  # cells again, saved at full resolution
    qtbot.waitUntil(lambda: widget.post.scoring["seg_thresh"] == 120, timeout=3000)
    saved = tmp_path / "cells.tif"
    cells.save(str(saved), plugin="napari-deepliif")
    np.testing.assert_array_equal(tifffile.imread(saved), base.labels())


def test_the_widget_fits_a_laptop_screen(widget, qtbot):
    window = widget.viewer.window._qt_window
    window.show()
    window.resize(1280, 720)
    qtbot.waitUntil(lambda: window.height() <= 720, timeout=3000)
    from qtpy.QtWidgets import QScrollArea

    scroll = widget.findChild(QScrollArea)
    assert scroll.verticalScrollBar().maximum() > 0  # the controls scroll instead
    assert scroll.width() >= scroll.widget().minimumSizeHint().width()  # never cut sideways
    assert widget.viewer.window._qt_viewer.canvas.native.width() > 300


def test_a_move_that_changes_no_cell_keeps_the_colours(widget, qtbot):
    viewer = widget.viewer
    viewer.add_image(load_sample(), name="ihc", rgb=True)
    choose_stain(widget)
    run_and_wait(widget, qtbot)
    outlines = plugin_layers(viewer)["DeepLIIF outlines"]
    colormap, largest = outlines.colormap, int(widget.post.table.area.max())
    slider = widget.sliders["size_thresh_upper"]
    slider.move_to(largest + 1)  # above every cell: gates none out
    qtbot.waitUntil(lambda: widget.post.scoring["size_thresh_upper"] == largest + 1, timeout=3000)
    assert outlines.colormap is colormap
    slider.move_to(largest - 1)  # the largest cell is gated out now
    qtbot.waitUntil(lambda: widget.post.scoring["size_thresh_upper"] == largest - 1, timeout=3000)
    assert outlines.colormap is not colormap
    biggest = int(widget.post.table.id[np.argmax(widget.post.table.area)])
    assert outlines.colormap.map(np.array([biggest]))[0, 3] == 0


def test_overriding_a_cell_changes_the_counts(widget, qtbot):
    from napari.utils._proxies import ReadOnlyWrapper
    from napari.utils.interactions import mouse_press_callbacks
    from vispy.util.event import Event

    viewer = widget.viewer
    viewer.add_image(load_sample(), name="ihc", rgb=True)
    choose_stain(widget)
    run_and_wait(widget, qtbot)
    post = widget.post
    cell = int(np.flatnonzero(post.counted & post.positive)[0]) + 1
    y, x = post.table.centroid_pixel[cell - 1]
    assert post.labels()[y, x] == cell
    cells = plugin_layers(viewer)["DeepLIIF outlines"]  # the layer shown (borders only)
    viewer.layers.selection.active = cells
    widget.click_combo.setCurrentText("flips its class")
    event = ReadOnlyWrapper(Event(type="mouse_press", position=(y, x), view_direction=None,
                                  dims_displayed=[0, 1], modifiers=[]))
    mouse_press_callbacks(cells, event)
    assert widget.post.scoring["num_pos"] == post.scoring["num_pos"] - 1
    assert widget.post.scoring["num_total"] == post.scoring["num_total"]
    outlines = plugin_layers(viewer)["DeepLIIF outlines"]
    assert tuple(outlines.colormap.map(np.array([cell]))[0, :3]) == (0, 0, 1)
    widget.click_combo.setCurrentText("excludes it")
    mouse_press_callbacks(cells, event)
    assert widget.post.scoring["num_total"] == post.scoring["num_total"] - 1
    assert outlines.colormap.map(np.array([cell]))[0, 3] == 0
    widget.click_combo.setCurrentText("restores it")
    mouse_press_callbacks(cells, event)
    assert widget.post.scoring == post.scoring
    # with the filled-cells layer deleted, the outlines still take clicks
    viewer.layers.remove(plugin_layers(viewer)["DeepLIIF cells"])
    widget.click_combo.setCurrentText("excludes it")
    mouse_press_callbacks(cells, event)
    assert widget.post.scoring["num_total"] == post.scoring["num_total"] - 1


def test_fixture_model_from_a_local_folder(widget, qtbot, fit_model_dir, shared_dir):
    from conftest import read_rgb

    viewer = widget.viewer
    image = read_rgb(shared_dir / "fixtures" / "inputs" / "ihc_22_2.png")[:256, :256]
    viewer.add_image(image, name="ki67", rgb=True)
    widget.engine_box.add_local(fit_model_dir, name="fit-ngf8")
    assert widget.engine_box.combo.currentData() == "fit-ngf8"
    widget.device_combo.setCurrentText("cpu")
    run_and_wait(widget, qtbot)
    layers = plugin_layers(viewer)
    assert {"DeepLIIF Hema", "DeepLIIF DAPI", "DeepLIIF Lap2", "DeepLIIF Marker", "DeepLIIF cells"} <= set(layers)
    assert layers["DeepLIIF cells"].data.dtype == np.uint32
    label = widget.engine_box.engine_label.text()
    assert "fit-ngf8" in label and "deepliif" in label
    assert widget.post.scoring["num_total"] > 0


def test_cancel_leaves_no_layers(widget, qtbot, fit_model_dir, shared_dir):
    from conftest import read_rgb

    viewer = widget.viewer
    image = read_rgb(shared_dir / "fixtures" / "inputs" / "ihc_22_2.png")
    viewer.add_image(np.tile(image, (2, 2, 1)), name="big", rgb=True)
    widget.engine_box.add_local(fit_model_dir, name="fit-ngf8")
    widget.device_combo.setCurrentText("cpu")
    enabled_while_running = []

    def first_tile_done(done, total):
        enabled_while_running.append((widget.run_button.isEnabled(), widget.cancel_button.isEnabled()))
        widget.cancel_button.click()

    widget._relay.progress.connect(first_tile_done)
    run_and_wait(widget, qtbot)
    assert enabled_while_running and enabled_while_running[0] == (False, True)
    assert widget.run_button.isEnabled() and not widget.cancel_button.isEnabled()
    assert plugin_layers(viewer) == {}
    assert widget.post is None


@pytest.mark.parametrize("bad", ["grayscale", "16-bit"])
def test_a_bad_layer_gives_a_notification(widget, qtbot, bad):
    from napari.utils.notifications import notification_manager

    image = load_sample()
    data = image[..., 0] if bad == "grayscale" else image.astype(np.uint16) * 257
    widget.viewer.add_image(data, name="bad", rgb=bad != "grayscale")
    choose_stain(widget)
    seen = []
    notification_manager.notification_ready.connect(seen.append)
    run_and_wait(widget, qtbot)
    assert plugin_layers(widget.viewer) == {}
    assert any("DeepLIIF" in str(n.message) for n in seen), [str(n.message) for n in seen]


def test_field_of_view_run_scores_what_the_canvas_shows(widget, qtbot):
    from napari_deepliif.widget import roi

    viewer = widget.viewer
    image = load_sample()
    layer = viewer.add_image(image, name="ihc", rgb=True, scale=(2, 2), translate=(10, 20))
    camera = roi.viewer_camera(viewer)
    camera.center = (10 + 2 * 255.5, 20 + 2 * 255.5)
    camera.zoom = 4.0  # screen px per world unit
    choose_stain(widget)
    widget.area_combo.setCurrentText("Current field of view")
    x, y, w, h = roi.view_rect(viewer, layer, 512, 512)
    hh, ww = viewer.canvas.size
    assert abs(w - ww / 8) <= 2 and abs(h - hh / 8) <= 2 and abs(x + w / 2 - 256) <= 1.5
    run_and_wait(widget, qtbot)
    cells = plugin_layers(viewer)["DeepLIIF cells"]
    own = score_region(StainEngine(), image, region=(x, y, w, h))
    ox, oy = own.origin
    assert cells.data.shape == own.post.cells.shape
    np.testing.assert_allclose(cells.translate, (10 + 2 * oy, 20 + 2 * ox))
    assert widget.post.scoring == own.scoring


def test_pyramid_level_reads_only_the_roi_and_is_placed_at_level_scale(widget, qtbot):
    viewer = widget.viewer
    full = np.tile(load_sample(), (2, 2, 1))
    levels = [full, full[::2, ::2]]
    viewer.add_image(levels, name="pyramid", rgb=True, multiscale=True, metadata={"mpp": 0.5})
    assert widget.resolution_combo.currentText() == "20x"  # from the metadata pixel size
    viewer.add_shapes([[[100, 200], [100, 600], [500, 600], [500, 200]]], shape_type="rectangle", name="roi")
    choose_stain(widget)
    widget.area_combo.setCurrentText("ROIs of a Shapes layer")
    widget.shapes_combo.setCurrentIndex(widget.shapes_combo.findText("roi"))
    widget.level_spin.setValue(1)
    # level 1 has 1.0 µm pixels: the magnification follows the level
    assert widget.resolution_combo.currentText() == "10x"
    run_and_wait(widget, qtbot)
    cells = plugin_layers(viewer)["DeepLIIF cells"]
    # world rows 100..500 = level-1 rows 50..250, cols 100..300: 201 pixels touched each way,
    # scored with a tile (128 px at 10x) of context each way
    own = score_region(StainEngine(), levels[1], region=(100, 50, 201, 201), resolution="10x")
    assert own.origin == (0, 0) and cells.data.shape == (50 + 201 + 128, 100 + 201 + 128)
    np.testing.assert_allclose(cells.scale, (2, 2))
    np.testing.assert_allclose(cells.translate, (0, 0))
    np.testing.assert_array_equal(cells.data, own.post.labels())


def test_pixel_size_in_microns_prefills_the_magnification(widget):
    layer = widget.viewer.add_image(load_sample(), name="ihc", rgb=True, scale=(1.0, 1.0), units="µm")
    assert widget.image_combo.currentData() is layer
    assert widget.resolution_combo.currentText() == "10x"


def test_napari_opens_the_widget_from_the_manifest(make_napari_viewer, npe2pm, qtbot):
    """The npe2 path users take: the manifest registered as an installed plugin's would be
    (in npe2's test plugin manager, so no other test sees it)."""
    import npe2

    npe2pm.register(npe2.PluginManifest.from_file(Path(__file__).parents[1] / "napari.yaml"))
    viewer = make_napari_viewer()
    dock, widget = viewer.window.add_plugin_dock_widget("napari-deepliif", "DeepLIIF IHC scoring")
    assert type(widget).__name__ == "DeepLIIFWidget"
    viewer.open_sample("napari-deepliif", "ihc")
    assert widget.image_combo.currentText() == "ihc_colon_fhl2"
    choose_stain(widget)
    run_and_wait(widget, qtbot)
    assert widget.post is not None and "DeepLIIF cells" in plugin_layers(viewer)


def test_closing_napari_while_cells_are_found_in_the_background(widget, qtbot, monkeypatch):
    from napari_deepliif.widget import _widget

    monkeypatch.setattr(_widget, "RELABEL_ON_GUI_THREAD_MAX_PX", 0)
    viewer = widget.viewer
    viewer.add_image(load_sample(), name="ihc", rgb=True)
    choose_stain(widget)
    run_and_wait(widget, qtbot)
    widget.set_threshold("seg_thresh", 250)
    worker = widget.relabelling
    assert worker is not None
    viewer.close()  # the widget goes with the window; its search's result must find nothing to touch
    qtbot.waitUntil(lambda: not worker.is_running, timeout=10000)
    qtbot.wait(200)


def test_a_failed_run_clears_the_previous_table(widget, qtbot):
    viewer = widget.viewer
    viewer.add_image(load_sample(), name="ihc", rgb=True)
    choose_stain(widget)
    run_and_wait(widget, qtbot)
    assert widget.score_table.rowCount() == 1
    viewer.add_image(np.zeros((10, 10, 3), np.uint8), name="tiny", rgb=True)  # under 16 px: refused
    widget.image_combo.setCurrentIndex(widget.image_combo.findText("tiny"))
    run_and_wait(widget, qtbot)
    assert widget.score_table.rowCount() == 0
