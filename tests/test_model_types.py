"""Model types as plug-ins: the model card, the class-map type (U-Net/ResNet-34 state dict in
segmentation-models-pytorch's layout, and TorchScript), cells from class maps, and the same
counts through the region core, the ``score`` command and the server (real files, real HTTP).

The fixture model (tests/classmap_fixture.py) maps the mpIF DAPI panel of the paired DeepLIIF
sample to negative and positive cells; it is loaded through the same loaders a user's folder
goes through.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import jsonschema
import numpy as np
import pytest
import torch
import yaml
from classmap_fixture import CLASS_NAMES, lung_panels
from conftest import copy_model
from PIL import Image
from test_server_support import client, png_bytes, running_server
from test_widget import widget  # noqa: F401 (a fixture)

from napari_deepliif.cli.main import main
from napari_deepliif.constants import CLASSES
from napari_deepliif.engine.engines import load_engine
from napari_deepliif.engine.unet_resnet import UnetResNet34
from napari_deepliif.errors import DeepLIIFError, ModelError
from napari_deepliif.regions.score import score_region

SCORE_SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "docs" / "score.schema.json").read_text())


def counted_centroids(result) -> np.ndarray:
    """Counted cells' centroids (x, y) in image pixels, sorted."""
    xy = result.post.table.centroid_xy[result.post.counted] + np.asarray(result.origin, float)
    return xy[np.lexsort((xy[:, 0], xy[:, 1]))]


def in_box(xy: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    x, y, w, h = box
    return xy[(xy[:, 0] >= x - 0.5) & (xy[:, 0] < x + w - 0.5) & (xy[:, 1] >= y - 0.5) & (xy[:, 1] < y + h - 0.5)]


@pytest.fixture(scope="module")
def dapi(shared_dir: Path) -> np.ndarray:
    """384 x 384 px of the real mpIF DAPI panel (grey stored as RGB): 2 x 2 tiles of 256 px."""
    return np.ascontiguousarray(lung_panels(shared_dir)[0][:384, :384])


@pytest.fixture(scope="module")
def engine(classmap_model_dirs):
    return load_engine("auto", classmap_model_dirs[0], device="cpu")


@pytest.fixture(scope="module")
def whole(engine, dapi):
    return score_region(engine, dapi, resolution="40x")


def test_the_network_has_segmentation_models_pytorchs_layout() -> None:
    state = UnetResNet34(3, 1).state_dict()
    # smp's Unet("resnet34", in_channels=3, classes=1) has 24,436,369 parameters and these names
    assert sum(v.numel() for k, v in state.items() if "running" not in k and "num_batches" not in k) == 24_436_369
    for key, shape in {"encoder.conv1.weight": (64, 3, 7, 7), "encoder.layer2.0.downsample.0.weight": (128, 64, 1, 1),
                       "encoder.layer3.5.bn2.running_var": (256,), "decoder.blocks.0.conv1.0.weight": (256, 768, 3, 3),
                       "decoder.blocks.4.conv2.1.weight": (16,), "segmentation_head.0.weight": (1, 16, 3, 3)}.items():
        assert tuple(state[key].shape) == shape, key
    assert not any(k.startswith(("encoder.fc", "decoder.center")) for k in state)


def test_auto_loads_the_cards_type_and_scores_cells_with_their_classes(engine, whole) -> None:
    assert engine.name == "classmap" and engine.model_name == "classmap-fixture"
    assert engine.class_names == tuple(CLASS_NAMES) and engine.outputs == (CLASSES,)
    counts = whole.scoring["classes"]
    assert set(counts) == {"negative", "positive"}
    assert counts["negative"] > 15 and counts["positive"] >= 3
    assert whole.scoring["num_total"] == sum(counts.values())
    assert whole.scoring["num_pos"] == counts["positive"]
    table = whole.post.table
    assert set(np.unique(table.cell_class[whole.post.counted])) == {1, 2}
    # every counted cell's class is the class of most of its pixels
    labels, classes = whole.post.labels(), whole.images[CLASSES][..., 0]
    for i in np.flatnonzero(whole.post.counted)[:20]:
        pixels = classes[labels == table.id[i]]
        assert table.cell_class[i] == np.argmax(np.bincount(pixels[pixels > 0], minlength=3))


def test_torchscript_twin_gives_the_same_class_map(classmap_model_dirs, dapi, whole) -> None:
    twin = load_engine("classmap", classmap_model_dirs[1], device="cpu")
    classes = twin.infer(dapi)[CLASSES]
    np.testing.assert_array_equal(classes, whole.images[CLASSES])
    assert twin.model_hash != load_engine("auto", classmap_model_dirs[0], device="cpu").model_hash


@pytest.mark.parametrize("box", [(40, 40, 300, 300), (47, 45, 300, 300)])
def test_a_region_gives_the_whole_images_cells_there(engine, dapi, whole, box) -> None:
    region = score_region(engine, dapi, region=box, resolution="40x")
    expected = in_box(counted_centroids(whole), box)
    assert len(expected) > 10
    np.testing.assert_allclose(counted_centroids(region), expected, atol=1e-6)
    (wx, wy), (h, w) = region.origin, region.images[CLASSES].shape[:2]
    np.testing.assert_array_equal(region.images[CLASSES], whole.images[CLASSES][wy : wy + h, wx : wx + w])


def test_size_gates_and_rescore_work_on_class_map_cells(whole) -> None:
    gated = whole.rescore(size_thresh=60)
    assert 0 < gated.scoring["num_total"] < whole.scoring["num_total"]
    assert gated.scoring["classes"]["negative"] + gated.scoring["classes"]["positive"] == gated.scoring["num_total"]
    scored = whole.post.score(microns_per_pixel=0.5)
    area_mm2 = 384 * 384 * 0.25e-6
    assert scored["classes_per_mm2"]["positive"] == round(scored["classes"]["positive"] / area_mm2, 1)


def test_cli_score_writes_class_counts_and_class_named_cells(classmap_model_dirs, dapi, whole, tmp_path) -> None:
    path = tmp_path / "dapi.png"
    Image.fromarray(dapi).save(path)
    assert main(["score", str(path), "--model", str(classmap_model_dirs[0]), "--device", "cpu",
                 "--resolution", "40x", "--out", str(tmp_path / "out")]) == 0
    folder = tmp_path / "out" / "dapi"
    record = json.loads((folder / "score.json").read_text())
    jsonschema.validate(record, SCORE_SCHEMA)
    assert record["scoring"]["classes"] == whole.scoring["classes"]
    assert record["provenance"]["engine"] == "classmap" and record["provenance"]["model"] == "classmap-fixture"
    with open(folder / "cells.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {c: sum(r["class"] == c for r in rows) for c in ("negative", "positive")} == whole.scoring["classes"]
    features = json.loads((folder / "cells.geojson").read_text())["features"]
    assert sorted(f["properties"]["classification"] for f in features) == sorted(r["class"] for r in rows)
    np.testing.assert_array_equal(np.asarray(Image.open(folder / "Classes.png"))[..., 0], whole.images[CLASSES][..., 0])


def test_the_server_scores_with_the_class_map_model(classmap_model_dirs, dapi, whole, tmp_path) -> None:
    with running_server(tmp_path, "auto", model=classmap_model_dirs[0], device="cpu") as handle, \
            client(handle) as http:
        assert http.get("/api/health").json()["engine"] == "classmap"
        body = http.post("/api/score", content=png_bytes(dapi), headers={"Content-Type": "image/png"},
                         params={"resolution": "40x"}).json()
    assert body["score"] == whole.record(image=None)
    jsonschema.validate(body["score"], SCORE_SCHEMA)
    named = [f["properties"]["classification"] for f in body["features"]]
    assert {c: named.count(c) for c in ("negative", "positive")} == whole.scoring["classes"]




@pytest.mark.parametrize("changes, field", [
    ({"type": "unet"}, "type"),
    ({"type": None}, "type"),
    ({"weights": "missing.pt"}, "weights"),
    ({"weights": "../model.pt"}, "weights"),
    ({"format": "onnx"}, "format"),
    ({"architecture": "unet-resnet50"}, "architecture"),
    ({"input": {"channel": "far-red", "normalise": "per-tile-zscore"}}, "input.channel"),
    ({"input": {"channel": "grey", "normalise": "none"}}, "input.normalise"),
    ({"input": {"channel": "grey", "normalise": "scale-0-1", "mean": 3}}, "input.mean"),
    ({"tile_size": 250}, "tile_size"),
    ({"overlap": 127}, "overlap"),
    ({"overlap": 256}, "overlap"),
    ({"pixel_size": "half a micron"}, "pixel_size"),
    ({"classes": ["background"]}, "classes"),
    ({"classes": ["background", "CD3", "CD3"]}, "classes"),
    ({"positive": ["CD8"]}, "positive"),
    ({"colour": "red"}, "colour"),
])
def test_a_bad_card_is_refused_naming_the_field(classmap_model_dirs, tmp_path, changes, field) -> None:
    folder = copy_model(classmap_model_dirs[0], tmp_path / "model", **changes)
    with pytest.raises(ModelError, match=f"field '{field}'"):
        load_engine("auto", folder, device="cpu")


def test_a_card_that_is_not_yaml_or_not_a_mapping_is_refused(classmap_model_dirs, tmp_path) -> None:
    folder = copy_model(classmap_model_dirs[0], tmp_path / "model")
    (folder / "model.yaml").write_text("type: classmap\nclasses: [a, b\n")
    with pytest.raises(ModelError, match="not valid YAML"):
        load_engine("auto", folder, device="cpu")
    (folder / "model.yaml").write_text("- classmap\n")
    with pytest.raises(ModelError, match="mapping of fields"):
        load_engine("auto", folder, device="cpu")


def test_mismatched_weights_name_the_parameter(classmap_model_dirs, tmp_path) -> None:
    folder = copy_model(classmap_model_dirs[0], tmp_path / "renamed")
    state = torch.load(folder / "model.pt", weights_only=True)
    state["encoder.layer9.weight"] = state.pop("encoder.layer1.0.conv1.weight")
    torch.save(state, folder / "model.pt")
    with pytest.raises(ModelError, match=r"lacks 1 parameters \(first: 'encoder.layer1.0.conv1.weight'\).*"
                                         r"'encoder.layer9.weight'"):
        load_engine("auto", folder, device="cpu")

    folder = copy_model(classmap_model_dirs[0], tmp_path / "four-classes", classes=["background", "a", "b", "c"],
                   positive=["c"])
    with pytest.raises(ModelError, match=r"'segmentation_head.0.weight' has shape \(3, 16, 3, 3\), expected "
                                         r"\(4, 16, 3, 3\) \(the weights give 3 classes; the card names 4\)"):
        load_engine("auto", folder, device="cpu")

    folder = copy_model(classmap_model_dirs[1], tmp_path / "script-as-state", format="state_dict")
    with pytest.raises(ModelError, match="set 'format: torchscript'"):
        load_engine("auto", folder, device="cpu")
    folder = copy_model(classmap_model_dirs[0], tmp_path / "state-as-script", format="torchscript")
    with pytest.raises(ModelError, match="set 'format: state_dict'"):
        load_engine("auto", folder, device="cpu")
    folder = copy_model(classmap_model_dirs[1], tmp_path / "script-four", classes=["background", "a", "b", "c"],
                   positive=["c"])
    with pytest.raises(ModelError, match=r"gives \(1, 3, 256, 256\).*need \(1, 4, 256, 256\)"):
        load_engine("auto", folder, device="cpu")


def test_an_engine_of_another_type_is_refused_naming_both(classmap_model_dirs, fit_model_dir) -> None:
    with pytest.raises(DeepLIIFError, match="holds a 'classmap' model, not 'deepliif'"):
        load_engine("deepliif", classmap_model_dirs[0], device="cpu")
    with pytest.raises(DeepLIIFError, match="holds a 'deepliif' model, not 'classmap'"):
        load_engine("classmap", fit_model_dir, device="cpu")


def test_the_widget_shows_named_classes_rescores_and_exports(widget, private_model_dirs, qtbot, classmap_model_dirs, dapi,
                                                              whole, tmp_path) -> None:
    from test_widget import plugin_layers, run_and_wait

    viewer = widget.viewer
    viewer.add_image(dapi, name="dapi", rgb=True)
    widget.engine_box.add_local(classmap_model_dirs[0], name="classmap-fixture")
    widget.device_combo.setCurrentText("cpu")
    run_and_wait(widget, qtbot)
    assert widget.post.scoring == whole.scoring
    assert "classmap" in widget.engine_box.engine_label.text()
    layers = plugin_layers(viewer)
    classes = layers["DeepLIIF classes"]
    np.testing.assert_array_equal(classes.data, whole.images[CLASSES][..., 0])
    assert list(classes.features["class"]) == CLASS_NAMES
    cells = layers["DeepLIIF cells"]
    colours = cells.colormap.map(whole.post.table.id)
    counted = whole.post.counted
    for k in (1, 2):  # each class its own colour, the same as in the classes layer
        members = counted & (whole.post.table.cell_class == k)
        np.testing.assert_allclose(colours[members], np.repeat(classes.colormap.map(np.array([k])), members.sum(), 0))
    headers = [widget.score_table.horizontalHeaderItem(c).text() for c in range(widget.score_table.columnCount())]
    assert headers[-2:] == ["negative", "positive"]
    assert widget.score_table.cell_text(0, len(headers) - 1) == str(whole.scoring["classes"]["positive"])

    widget.sliders["size_thresh"].move_to(60)
    qtbot.waitUntil(lambda: widget.post.scoring["size_thresh"] == 60, timeout=5000)
    assert widget.post.scoring == whole.rescore(size_thresh=60).scoring
    assert widget.score_table.cell_text(0, len(headers) - 2) == str(widget.post.scoring["classes"]["negative"])

    widget.export(tmp_path / "export")
    record = json.loads((tmp_path / "export" / "score.json").read_text())
    assert record["scoring"]["classes"] == widget.post.scoring["classes"]
    with open(tmp_path / "export" / "cells.csv", newline="") as handle:
        assert {r["class"] for r in csv.DictReader(handle)} == {"negative", "positive"}


def _rdf(weights: dict, classes: list[str], **changes) -> dict:
    """A bioimage.io model description (format 0.5) of the fixture's network."""
    space = [{"type": "space", "id": axis, "size": {"min": 64, "step": 32}, "scale": 0.5, "unit": "micrometer"}
             for axis in ("y", "x")]
    out_space = [{"type": "space", "id": axis, "halo": 64, "size": {"tensor_id": "dapi", "axis_id": axis}}
                 for axis in ("y", "x")]
    rdf = {"format_version": "0.5.4", "type": "model", "name": "classmap-fixture-bioimageio",
           "inputs": [{"id": "dapi", "axes": [{"type": "batch"}, {"type": "channel", "channel_names": ["dapi"]}, *space],
                       "preprocessing": [{"id": "ensure_dtype", "kwargs": {"dtype": "float32"}},
                                         {"id": "zero_mean_unit_variance", "kwargs": {"axes": ["y", "x"]}}]}],
           "outputs": [{"id": "classes", "axes": [{"type": "batch"}, {"type": "channel", "channel_names": classes},
                                                  *out_space], "postprocessing": [{"id": "softmax"}]}],
           "weights": weights}
    rdf.update(changes)
    return rdf


def test_a_bioimageio_package_loads_as_the_class_map_type(classmap_model_dirs, dapi, whole, tmp_path) -> None:
    folder = tmp_path / "package"
    shutil.copytree(classmap_model_dirs[1], folder)
    (folder / "model.yaml").unlink()
    (folder / "rdf.yaml").write_text(yaml.safe_dump(_rdf({"torchscript": {"source": "model.ts"}}, CLASS_NAMES)))
    engine = load_engine("auto", folder, device="cpu")
    assert engine.name == "classmap" and engine.model_name == "classmap-fixture-bioimageio"
    card = engine.card
    assert (card.tile_size, card.overlap, card.pixel_size, card.normalise) == (256, 128, 0.5, "per-tile-zscore")
    np.testing.assert_array_equal(engine.infer(dapi)[CLASSES], whole.images[CLASSES])

    state = tmp_path / "state-package"
    shutil.copytree(classmap_model_dirs[0], state)
    (state / "model.yaml").unlink()
    smp = {"pytorch_state_dict": {"source": "model.pt", "architecture": {
        "callable": "Unet", "import_from": "segmentation_models_pytorch",
        "kwargs": {"encoder_name": "resnet34", "in_channels": 1, "classes": 3}}}}
    (state / "rdf.yaml").write_text(yaml.safe_dump(_rdf(smp, CLASS_NAMES)))
    assert load_engine("auto", state, device="cpu").card.format == "state_dict"


@pytest.mark.parametrize("weights, changes, field", [
    ({"onnx": {"source": "model.onnx"}}, {}, "weights"),
    ({"torchscript": {"source": "https://example.org/model.ts"}}, {}, "weights.torchscript.source"),
    ({"torchscript": {"source": "model.ts"}}, {"format_version": "0.4.10"}, "format_version"),
    ({"pytorch_state_dict": {"source": "model.ts", "architecture": {"callable": "UNet2d", "kwargs": {}}}}, {},
     "weights.pytorch_state_dict.architecture"),
])
def test_a_bioimageio_package_that_maps_onto_no_type_is_refused_naming_the_field(classmap_model_dirs, tmp_path,
                                                                                   weights, changes, field) -> None:
    folder = tmp_path / "package"
    shutil.copytree(classmap_model_dirs[1], folder)
    (folder / "model.yaml").unlink()
    (folder / "rdf.yaml").write_text(yaml.safe_dump(_rdf(weights, CLASS_NAMES, **changes)))
    with pytest.raises(ModelError, match=f"field '{field}'.*model.yaml card instead"):
        load_engine("auto", folder, device="cpu")
