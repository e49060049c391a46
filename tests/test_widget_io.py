"""The widget's exports, the labels TIFF writer and the "Serve for QuPath" toggle (real files,
real HTTP on loopback)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from test_widget import choose_stain, run_and_wait, widget  # noqa: E402,F401

from napari_deepliif.io.sample import load_sample  # noqa: E402

pytestmark = pytest.mark.usefixtures("private_model_dirs")


def test_export_writes_score_cells_labels_and_modalities(widget, qtbot, tmp_path):
    import tifffile

    widget.viewer.add_image(load_sample(), name="ihc", rgb=True)
    widget.viewer.add_shapes([[[10, 10], [10, 300], [300, 300], [300, 10]]], shape_type="rectangle", name="rois")
    choose_stain(widget)
    widget.area_combo.setCurrentText("ROIs of a Shapes layer")
    run_and_wait(widget, qtbot)
    widget.sliders["size_thresh"].move_to(widget.post.scoring["size_thresh"] + 30)
    qtbot.waitUntil(lambda: widget.settings["size_thresh"] != "default", timeout=3000)
    widget.export(tmp_path / "out")
    record = json.loads((tmp_path / "out" / "score.json").read_text())
    schema = json.loads((Path(__file__).resolve().parents[1] / "docs" / "score.schema.json").read_text())
    jsonschema.validate(record, schema)
    assert record["scoring"] == widget.post.scoring
    assert record["provenance"]["engine"] == "stain" and record["placement"]["image"] == "ihc"
    # the pixels the ROI touches (10..300) are the region whose cells count
    assert record["placement"]["region"] == [10, 10, 291, 291]
    assert set(record["regions"]) == {"ROI 1"}
    geo = json.loads((tmp_path / "out" / "cells.geojson").read_text())
    assert len(geo["features"]) == widget.post.scoring["num_total"]
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "out" / "labels.tif"), widget.post.labels())
    assert (tmp_path / "out" / "Hema.png").is_file() and (tmp_path / "out" / "cells.csv").is_file()


def test_labels_writer_contribution(tmp_path):
    import tifffile

    from napari_deepliif.widget.writers import write_labels_tiff

    labels = np.arange(12, dtype=np.uint32).reshape(3, 4) * 10_000
    path = str(tmp_path / "cells.tif")
    assert write_labels_tiff(path, labels, {}) == [path]
    read = tifffile.imread(path)
    assert read.dtype == np.uint32
    np.testing.assert_array_equal(read, labels)


def test_serve_for_qupath_toggle_starts_and_stops_the_server(widget, qtbot):
    import httpx

    choose_stain(widget)
    box = widget.serve_box
    box.port = 0
    box.button.click()
    qtbot.waitUntil(lambda: box.handle is not None or not box.button.isChecked(), timeout=60_000)
    assert box.handle is not None, "server did not start"
    url = box.handle.url
    health = httpx.get(f"{url}/api/health", timeout=10).json()
    assert health["engine"] == "stain"
    assert url in box.label.text()
    box.button.click()
    assert box.handle is None and not box.button.isChecked()
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{url}/api/health", timeout=2)
