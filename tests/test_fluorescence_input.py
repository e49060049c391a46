"""One-channel (fluorescence) images for an engine of fluorescence images (the class-map type):
8- and 16-bit grey arrays, PNG/TIFF files and a one-channel pyramidal OME-TIFF give the cells
the RGB image holding the same grey gives, through the region core, ``score``, ``batch``, the
server and the widget; brightfield engines keep refusing them with the RGB rule's message.

The grey image is the mpIF DAPI panel of the paired DeepLIIF sample (one of its three equal
channels), scored by the fixture model of tests/classmap_fixture.py.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import tifffile
import yaml
from classmap_fixture import CLASS_NAMES, lung_panels
from PIL import Image
from test_server_support import client, png_bytes, running_server
from test_widget import widget  # noqa: F401 (a fixture)

from napari_deepliif.cli.main import main
from napari_deepliif.constants import CLASSES
from napari_deepliif.engine.engines import load_engine
from napari_deepliif.errors import InputImageError
from napari_deepliif.regions.score import score_region

#: Edge of the panel crop scored (2 x 2 tiles of the fixture's 256 px).
EDGE = 384
RGB_MESSAGE = "grayscale.*needs a colour \\(RGB\\) brightfield IHC image"


@pytest.fixture(scope="module")
def grey(shared_dir: Path) -> np.ndarray:
    """The DAPI panel's grey, H x W uint8."""
    return np.ascontiguousarray(lung_panels(shared_dir)[0][:EDGE, :EDGE, 0])


@pytest.fixture(scope="module")
def rgb(grey) -> np.ndarray:
    return np.repeat(grey[..., None], 3, axis=2)


@pytest.fixture(scope="module")
def engine(classmap_model_dirs):
    return load_engine("auto", classmap_model_dirs[0], device="cpu")


@pytest.fixture(scope="module")
def whole(engine, grey):
    return score_region(engine, grey, resolution="40x")


def normalised_as(model: Path, target: Path, normalise: str) -> Path:
    """A copy of the model folder whose card normalises tiles by ``normalise``."""
    shutil.copytree(model, target)
    card = yaml.safe_load((target / "model.yaml").read_text())
    card["input"]["normalise"] = normalise
    (target / "model.yaml").write_text(yaml.safe_dump(card))
    return target


def cells(result) -> list[tuple[float, float, int]]:
    """Counted cells as (x, y, class), image pixels, sorted."""
    table = result.post.table
    xy = table.centroid_xy[result.post.counted] + np.asarray(result.origin, float)
    return sorted(zip(xy[:, 0].tolist(), xy[:, 1].tolist(), table.cell_class[result.post.counted].tolist()))


def cell_rows(path: Path, counted_only: bool) -> dict[tuple[str, str], str]:
    """Centroid (as written) -> class of each cell of a cells.csv."""
    with open(path, newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if not counted_only or r["counted"] == "True"]
    return {(r["centroid_x"], r["centroid_y"]): r["class"] for r in rows}


def write_pyramid(path: Path, pixels: np.ndarray, mpp: float = 0.25) -> Path:
    """A one-channel OME-TIFF with a SubIFD level at half size."""
    opts = {"tile": (128, 128), "photometric": "minisblack", "compression": None}
    with tifffile.TiffWriter(path, ome=True) as tif:
        tif.write(pixels, subifds=1, metadata={"axes": "YX", "PhysicalSizeX": mpp, "PhysicalSizeY": mpp}, **opts)
        tif.write(pixels[::2, ::2], subfiletype=1, **opts)
    return path


def test_a_grey_image_gives_the_cells_of_the_rgb_image_holding_it(engine, grey, rgb, whole) -> None:
    assert whole.scoring["classes"]["negative"] > 15 and whole.scoring["classes"]["positive"] >= 3
    from_rgb = score_region(engine, rgb, resolution="40x")
    assert whole.scoring == from_rgb.scoring and cells(whole) == cells(from_rgb)
    np.testing.assert_array_equal(whole.images[CLASSES], from_rgb.images[CLASSES])
    assert whole.image.shape == grey.shape and whole.image.dtype == np.uint8
    # a grey SegOverlaid is the RGB one
    np.testing.assert_array_equal(whole.post.seg_overlaid(whole.image), from_rgb.post.seg_overlaid(rgb))


def test_min_max_normalisation_of_grey_and_rgb_agree(classmap_model_dirs, grey, rgb, tmp_path) -> None:
    minmax = load_engine("auto", normalised_as(classmap_model_dirs[0], tmp_path / "minmax", "per-tile-minmax"),
                         device="cpu")
    from_grey = score_region(minmax, grey[..., None], resolution="40x")
    from_rgb = score_region(minmax, rgb, resolution="40x")
    assert from_grey.scoring["num_total"] > 0
    assert from_grey.scoring == from_rgb.scoring and cells(from_grey) == cells(from_rgb)


def test_a_region_of_a_grey_image_gives_the_whole_images_cells_there(engine, grey, whole) -> None:
    box = (47, 45, 300, 300)
    region = score_region(engine, grey, region=box, resolution="40x")
    x, y, w, h = box
    expected = [c for c in cells(whole) if x - 0.5 <= c[0] < x + w - 0.5 and y - 0.5 <= c[1] < y + h - 0.5]
    assert len(expected) > 10 and cells(region) == expected
    (wx, wy), (wh, ww) = region.origin, region.images[CLASSES].shape[:2]
    np.testing.assert_array_equal(region.images[CLASSES], whole.images[CLASSES][wy : wy + wh, wx : wx + ww])
    with pytest.raises(InputImageError, match="float32.*8-bit or 16-bit"):
        score_region(engine, grey.astype(np.float32), resolution="40x")


def test_score_and_batch_of_a_16_bit_pyramid_give_the_8_bit_images_cells(classmap_model_dirs, grey, tmp_path) -> None:
    """scale-0-1 divides by the dtype's maximum: 16-bit = 8-bit x 257 gives the same cells;
    ``score`` and ``batch`` (2 workers) give them cell for cell."""
    model = normalised_as(classmap_model_dirs[0], tmp_path / "scaled", "scale-0-1")
    expected = score_region(load_engine("auto", model, device="cpu"), grey, resolution="40x")
    assert expected.scoring["num_total"] > 0
    slide = write_pyramid(tmp_path / "dapi16.ome.tif", grey.astype(np.uint16) * 257)
    args = ["--model", str(model), "--device", "cpu"]
    assert main(["score", str(slide), *args, "--out", str(tmp_path / "score")]) == 0
    assert main(["batch", str(slide), *args, "--workers", "2", "--chunk-size", "256", "--out", str(tmp_path / "batch")]) == 0
    single = cell_rows(tmp_path / "score" / "dapi16" / "cells.csv", counted_only=False)
    assert cell_rows(tmp_path / "batch" / "dapi16" / "cells.csv", counted_only=True) == single
    scored = json.loads((tmp_path / "score" / "dapi16" / "score.json").read_text())["scoring"]
    assert scored == json.loads((tmp_path / "batch" / "dapi16" / "score.json").read_text())["scoring"]
    assert scored["classes"] == expected.scoring["classes"] and len(single) == expected.scoring["num_total"]
    assert sorted(single.values()) == sorted(CLASS_NAMES[c] for _, _, c in cells(expected))


def test_score_of_a_grey_tiff_and_the_stains_refusal(engine, grey, whole, tmp_path, capsys) -> None:
    path = tmp_path / "dapi.tif"
    tifffile.imwrite(path, grey)
    model = ["--model", str(engine.folder), "--device", "cpu", "--resolution", "40x"]
    assert main(["score", str(path), *model, "--out", str(tmp_path / "out")]) == 0
    record = json.loads((tmp_path / "out" / "dapi" / "score.json").read_text())
    assert record["scoring"]["classes"] == whole.scoring["classes"]
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "out" / "dapi" / "SegOverlaid.png")),
                                  whole.post.seg_overlaid(np.repeat(grey[..., None], 3, axis=2)))
    capsys.readouterr()
    assert main(["score", str(path), "--engine", "stain", "--resolution", "40x", "--out", str(tmp_path / "stain")]) != 0
    assert re.search(RGB_MESSAGE, capsys.readouterr().err)
    assert not (tmp_path / "stain" / "dapi").exists()


def test_the_server_takes_grey_images_for_a_class_map_model_only(classmap_model_dirs, grey, whole, tmp_path) -> None:
    path = tmp_path / "dapi.png"
    Image.fromarray(grey).save(path)
    region = {"image": str(path), "resolution": "40x"}
    with running_server(tmp_path / "a", "auto", model=classmap_model_dirs[0], device="cpu") as handle, \
            client(handle) as http:
        uploaded = http.post("/api/score", content=png_bytes(grey), headers={"Content-Type": "image/png"},
                             params={"resolution": "40x"})
        from_file = http.post("/api/regions/score", json=region)
    assert uploaded.status_code == 200 and from_file.status_code == 200, (uploaded.text, from_file.text)
    assert uploaded.json()["score"] == whole.record(image=None)
    assert from_file.json()["score"]["scoring"] == whole.scoring
    named = [f["properties"]["classification"] for f in uploaded.json()["features"]]
    assert {c: named.count(c) for c in ("negative", "positive")} == whole.scoring["classes"]
    with running_server(tmp_path / "b", "stain") as handle, client(handle) as http:
        uploaded = http.post("/api/score", content=png_bytes(grey), headers={"Content-Type": "image/png"})
        from_file = http.post("/api/regions/score", json=region)
    for answer in (uploaded, from_file):
        assert answer.status_code == 422 and "needs a colour (RGB) brightfield IHC image" in answer.json()["detail"]


def test_the_widget_scores_a_grey_layer_and_rois_over_it(widget, private_model_dirs, qtbot, engine, grey, whole, tmp_path) -> None:
    from test_widget import plugin_layers, run_and_wait

    viewer = widget.viewer
    layer = viewer.add_image(grey.astype(np.uint16) * 257, name="dapi16")
    assert not layer.rgb
    widget.engine_box.add_local(engine.folder, name="classmap-fixture")
    widget.device_combo.setCurrentText("cpu")
    widget.resolution_combo.setCurrentText("40x")
    run_and_wait(widget, qtbot)
    assert widget.post is not None and widget.post.scoring == whole.scoring
    np.testing.assert_array_equal(plugin_layers(viewer)["DeepLIIF classes"].data, whole.images[CLASSES][..., 0])

    box = (47, 45, 300, 300)  # x, y, width, height: pixel rows 45..344, columns 47..346
    y0, x0, y1, x1 = 45 - 0.5, 47 - 0.5, 45 + 300 - 0.5, 47 + 300 - 0.5
    viewer.add_shapes([[[y0, x0], [y0, x1], [y1, x1], [y1, x0]]], shape_type="rectangle", name="roi")
    widget.area_combo.setCurrentText("ROIs of a Shapes layer")
    widget.shapes_combo.setCurrentIndex(widget.shapes_combo.findText("roi"))
    run_and_wait(widget, qtbot)
    x, y, w, h = box
    inside = [c for c in cells(whole) if x - 0.5 <= c[0] < x + w - 0.5 and y - 0.5 <= c[1] < y + h - 0.5]
    assert widget.post.scoring["num_total"] == len(inside) > 10
    widget.export(tmp_path / "export")
    assert len(cell_rows(tmp_path / "export" / "cells.csv", counted_only=False)) == len(inside)

    # a one-channel pyramid (as napari opens a one-channel pyramidal TIFF), scored at level 1
    levels = [grey.astype(np.uint16) * 257, grey[::2, ::2].astype(np.uint16) * 257]
    viewer.add_image(levels, multiscale=True, name="dapi16 pyramid")
    widget.image_combo.setCurrentIndex(widget.image_combo.findText("dapi16 pyramid"))
    widget.area_combo.setCurrentText("Whole image")
    widget.level_spin.setValue(1)
    run_and_wait(widget, qtbot)
    expected = score_region(engine, levels[1], resolution="40x")
    assert widget.post.scoring == expected.scoring and expected.scoring["num_total"] > 0
    cells_layer = plugin_layers(viewer)["DeepLIIF cells"]
    np.testing.assert_allclose(cells_layer.scale, (2, 2))
    np.testing.assert_array_equal(cells_layer.data, expected.post.labels())


def test_a_one_channel_pyramid_opens_as_grey_levels(grey, tmp_path) -> None:
    from napari_deepliif.slides.readers import open_slide

    sixteen = grey.astype(np.uint16) * 257
    with open_slide(write_pyramid(tmp_path / "dapi16.ome.tif", sixteen)) as slide:
        assert slide.mpp == 0.25 and [level.shape for level in slide.levels] == [(EDGE, EDGE), (EDGE // 2, EDGE // 2)]
        np.testing.assert_array_equal(np.asarray(slide.level(0)[:, :]), sixteen)
        choice = slide.level_for("10x")  # level 1 (0.5 µm/px) averaged 2 x 2
        assert (choice.level, choice.factor) == (1, 2)
        level = slide.array(choice)
        assert level.shape == (EDGE // 4, EDGE // 4) and level.dtype == np.uint16
        blocks = sixteen[::2, ::2].reshape(EDGE // 4, 2, EDGE // 4, 2).mean(axis=(1, 3))
        np.testing.assert_array_equal(level[:, :], np.rint(blocks).astype(np.uint16))
