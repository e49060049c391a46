"""A ``points`` model in the dock widget, in a real viewer: the Points layer, the counts, the
confidence and NMS distance sliders and the export equal ``score --model DIR`` on the same tile."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import read_rgb
from PIL import Image
from test_widget import run_and_wait

from napari_deepliif.cli.main import main
from napari_deepliif.widget.points_layer import POINTS_LAYER_NAME


pytestmark = pytest.mark.usefixtures("private_model_dirs")


def cli_points(model: Path, image: Path, out: Path, *options: str) -> tuple[dict, list[dict]]:
    """(score record, points.csv rows) of ``score --model`` on ``image``."""
    assert main(["score", "--model", str(model), "--device", "cpu", str(image), "--out", str(out), *options]) == 0
    folder = out / image.stem
    return json.loads((folder / "score.json").read_text()), list(csv.DictReader((folder / "points.csv").open()))


def xy_class(rows: list[dict]) -> list[tuple[float, float, str]]:
    return [(float(r["x"]), float(r["y"]), r["class"]) for r in rows]


def test_points_model_run_sliders_and_export_equal_the_cli(make_napari_viewer, qtbot, points_model_dir,
                                                           shared_dir, tmp_path):
    from napari_deepliif.widget import DeepLIIFWidget

    pixels = read_rgb(shared_dir / "data/ihc/22_2.png")[:320, :384]
    path = tmp_path / "tile.png"
    Image.fromarray(pixels).save(path)
    record, rows = cli_points(points_model_dir, path, tmp_path / "cli")
    strict, strict_rows = cli_points(points_model_dir, path, tmp_path / "cli-strict", "--confidence", "0.5",
                                     "--min-distance-um", "5")
    assert len(rows) > len(strict_rows) > 0

    viewer = make_napari_viewer()
    widget = DeepLIIFWidget(viewer)
    viewer.window.add_dock_widget(widget)
    image = viewer.add_image(pixels, name="tile", rgb=True, translate=(10, 20))
    widget.engine_box.add_local(points_model_dir)
    widget.device_combo.setCurrentText("cpu")
    widget.resolution_combo.setCurrentText("40x")
    assert widget.engine_box.model_type() == "points"
    assert widget.threshold_box.isHidden() and widget.compartment_box.isHidden()
    assert not widget.points_box.isHidden()
    run_and_wait(widget, qtbot)

    layer = viewer.layers[POINTS_LAYER_NAME]
    assert len(layer.data) == record["scoring"]["num_total"] == len(rows)
    # layer data are (row, col) of the image's pixels, placed over the image layer
    world = layer.data * layer.scale + layer.translate
    np.testing.assert_allclose(world[:, ::-1] - np.array(image.translate)[::-1],
                               [(x, y) for x, y, _ in xy_class(rows)])
    assert layer.features["class"].tolist() == [r["class"] for r in rows]
    assert (layer.face_color[layer.features["class"] == "positive"][:, 0] == 1).all()
    assert widget.score_table.cell_text(0, 1) == str(len(rows))
    assert widget.score_table.cell_text(0, 2) == str(record["scoring"]["num_pos"])
    assert widget.score_table.cell_text(0, 4) == str(record["scoring"]["percent_pos"])
    assert widget.points_box.confidence.value() == pytest.approx(0.3)
    assert widget.points_box.distance.value() == pytest.approx(3.0)

    widget.points_box.confidence.move_to(50)
    widget.points_box.distance.move_to(50)
    qtbot.waitUntil(lambda: widget.last.result.scoring["min_distance_um"] == pytest.approx(5.0), timeout=5000)
    assert len(layer.data) == strict["scoring"]["num_total"] == len(strict_rows)
    assert widget.score_table.cell_text(0, 1) == str(len(strict_rows))

    widget.export(tmp_path / "export")
    exported = list(csv.DictReader((tmp_path / "export/points.csv").open()))
    assert xy_class(exported) == xy_class(strict_rows)
    saved = json.loads((tmp_path / "export/score.json").read_text())
    assert saved["scoring"] == strict["scoring"] and saved["run"] == strict["run"]
    features = json.loads((tmp_path / "export/points.geojson").read_text())["features"]
    assert [f["geometry"]["coordinates"] for f in features] == [[x + 0.5, y + 0.5] for x, y, _ in xy_class(strict_rows)]


def test_points_of_an_roi_are_those_of_its_rectangle_in_the_cli(make_napari_viewer, qtbot, points_model_dir,
                                                                 shared_dir, tmp_path):
    from napari_deepliif.widget import DeepLIIFWidget, strings

    pixels = read_rgb(shared_dir / "data/ihc/22_2.png")[:320, :384]
    path = tmp_path / "tile.png"
    Image.fromarray(pixels).save(path)
    viewer = make_napari_viewer()
    widget = DeepLIIFWidget(viewer)
    viewer.add_image(pixels, name="tile", rgb=True)
    viewer.add_shapes([np.array([[60, 100], [60, 300], [210, 300], [210, 100]])], shape_type="rectangle", name="roi")
    widget.engine_box.add_local(points_model_dir)
    widget.device_combo.setCurrentText("cpu")
    widget.resolution_combo.setCurrentText("40x")
    widget.area_combo.setCurrentText(strings.AREA_ROIS)
    widget.shapes_combo.setCurrentIndex(widget.shapes_combo.findText("roi"))
    rect = widget._spec()[0].rect
    record, rows = cli_points(points_model_dir, path, tmp_path / "cli", "--roi", ",".join(map(str, rect)))
    run_and_wait(widget, qtbot)

    layer = viewer.layers[POINTS_LAYER_NAME]
    assert 0 < len(layer.data) == len(rows) == record["scoring"]["num_total"]
    world = layer.data * layer.scale + layer.translate
    np.testing.assert_allclose(world[:, ::-1], [(x, y) for x, y, _ in xy_class(rows)])
    assert widget.score_table.cell_text(0, 1) == str(len(rows))
    assert strings.POINTS_NOT_EXACT not in widget.result_label.text()

    # at 5 µm the chains that decide points near the rectangle's edges reach past the pixels read:
    # the sliders' points are then not the whole image's, and the widget says so
    widget.points_box.distance.move_to(50)
    qtbot.waitUntil(lambda: widget.last.result.scoring["min_distance_um"] == pytest.approx(5.0), timeout=5000)
    assert not widget.last.result.exact
    assert widget.result_label.text().endswith(strings.POINTS_NOT_EXACT)
