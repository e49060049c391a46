"""One image, one answer, for a ``points`` model: the same pixels give the same points (positions,
classes, confidences, counts) through ``score --model``, ``batch``, the server's region endpoint
(real HTTP on loopback) and the napari widget (a real viewer), for the whole image and for a
triangle ROI (the points of its bounding rectangle's run that lie in it, by the one ROI rule).

The image is the real IHC tile 22_2 as a two-level pyramidal OME-TIFF (0.25 µm/px, 40x); the
model is the points fixture (tests/points_fixture.py).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from conftest import read_rgb
from test_server_support import client, running_server
from test_slides import write_ome_tiff
from test_widget import run_and_wait

from napari_deepliif.cells.scoring import in_polygons
from napari_deepliif.cli.main import main
from napari_deepliif.widget.points_layer import POINTS_LAYER_NAME

#: A triangle ROI, (x, y) pixel centres of the image.
TRIANGLE = np.array([[60.0, 40.0], [430.0, 150.0], [170.0, 400.0]])


pytestmark = pytest.mark.usefixtures("private_model_dirs")


def point_rows(path: Path) -> list[tuple[float, float, str, float]]:
    """(x, y, class, confidence) of each row of a points.csv."""
    with open(path, newline="") as handle:
        return [(float(r["x"]), float(r["y"]), r["class"], float(r["confidence"])) for r in csv.DictReader(handle)]


def answer_rows(body: dict) -> list[tuple[float, float, str, float]]:
    """The server's features as points.csv rows (QuPath's pixel edges back to pixel centres)."""
    return [(f["geometry"]["coordinates"][0] - 0.5, f["geometry"]["coordinates"][1] - 0.5,
             f["properties"]["classification"], f["properties"]["measurements"]["Confidence"])
            for f in body["features"]]


def layer_rows(layer) -> list[tuple[float, float, str, float]]:
    """The widget's Points layer as points.csv rows (placed over an image layer at the origin, scale 1)."""
    world = layer.data * layer.scale + layer.translate
    return [(float(x), float(y), c, float(conf)) for (y, x), c, conf in
            zip(world.tolist(), layer.features["class"], layer.features["confidence"])]


def test_points_are_the_same_through_score_batch_the_server_and_the_widget(points_model_dir, shared_dir,
                                                                             make_napari_viewer, qtbot, tmp_path):
    from napari_deepliif.widget import DeepLIIFWidget, strings

    pixels = read_rgb(shared_dir / "data/ihc/22_2.png")
    slide = write_ome_tiff(tmp_path / "tile.ome.tif", pixels, 0.25, levels=2)
    model = ["--model", str(points_model_dir), "--device", "cpu"]

    assert main(["score", str(slide), *model, "--out", str(tmp_path / "score")]) == 0
    whole = point_rows(tmp_path / "score" / "tile" / "points.csv")
    assert len(whole) > 100
    assert main(["batch", str(slide), *model, "--chunk-size", "256", "--out", str(tmp_path / "batch")]) == 0
    assert point_rows(tmp_path / "batch" / "tile" / "points.csv") == whole

    viewer = make_napari_viewer()
    widget = DeepLIIFWidget(viewer)
    viewer.add_image(pixels, name="tile", rgb=True)
    widget.engine_box.add_local(points_model_dir)
    widget.device_combo.setCurrentText("cpu")
    widget.resolution_combo.setCurrentText("40x")
    run_and_wait(widget, qtbot)
    assert layer_rows(viewer.layers[POINTS_LAYER_NAME]) == whole

    viewer.add_shapes([TRIANGLE[:, ::-1]], shape_type="polygon", name="roi")
    widget.area_combo.setCurrentText(strings.AREA_ROIS)
    widget.shapes_combo.setCurrentIndex(widget.shapes_combo.findText("roi"))
    rect = widget._spec()[0].rect
    run_and_wait(widget, qtbot)
    in_roi = layer_rows(viewer.layers[POINTS_LAYER_NAME])
    # the CLI's points of the ROI's bounding rectangle that lie in the triangle
    assert main(["score", str(slide), *model, "--roi", ",".join(map(str, rect)), "--out", str(tmp_path / "rect")]) == 0
    box = point_rows(tmp_path / "rect" / "tile" / "points.csv")
    kept = [row for row, hit in zip(box, in_polygons(np.array([r[:2] for r in box]), [(TRIANGLE, [])])) if hit]
    assert 0 < len(kept) < len(box) and in_roi == kept
    positive = sum(c == "positive" for _, _, c, _ in kept)
    assert widget.score_table.rowCount() == 2  # all ROIs, then the one ROI
    for row in (0, 1):
        assert widget.score_table.cell_text(row, 1) == str(len(kept))
        assert widget.score_table.cell_text(row, 2) == str(positive)

    edges = [(TRIANGLE + 0.5).tolist() + [(TRIANGLE[0] + 0.5).tolist()]]  # QuPath's pixel-edge coordinates
    with running_server(tmp_path, "auto", model=points_model_dir, device="cpu") as handle, client(handle) as http:
        on_file = http.post("/api/regions/score", json={"image": str(slide)})
        on_roi = http.post("/api/regions/score", json={"image": str(slide), "region": list(rect),
                                                      "roi": {"type": "Polygon", "coordinates": edges}})
    assert on_file.status_code == 200 and on_roi.status_code == 200, (on_file.text, on_roi.text)
    assert answer_rows(on_file.json()) == whole
    assert answer_rows(on_roi.json()) == kept
    scoring = on_roi.json()["score"]["scoring"]
    assert (scoring["num_total"], scoring["num_pos"]) == (len(kept), positive)
