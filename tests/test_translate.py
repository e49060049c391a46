"""The ``translate`` model type: a CycleGAN generator (``latest_net_G_A.pth`` in the CycleGAN
repository's ResnetGenerator layout) makes a virtual H&E, the stain engine's nucleus finder
segments it, and the IHC's own DAB classifies the nuclei; the same cells through the region
core, the ``score`` command, the server and ``batch`` (real files, real HTTP).

The fixture (tests/translate_fixture.py) has random weights: it checks the plumbing and the
layout, not any translation.
"""

from __future__ import annotations

import csv
import json
import os
import re
from pathlib import Path

import jsonschema
import numpy as np
import pytest
import torch
from conftest import copy_model
from PIL import Image
from test_consistency import SCORE_SCHEMA, counted_centroids, in_box, sorted_xy
from test_server_support import client, png_bytes, running_server
from test_widget import widget  # noqa: F401 (a fixture)
from translate_fixture import cyclegan_generator

from napari_deepliif.cli.main import main
from napari_deepliif.engine.engines import load_engine
from napari_deepliif.engine.translate import VIRTUAL_HE, TranslateEngine
from napari_deepliif.errors import ModelError
from napari_deepliif.regions.score import score_region
from napari_deepliif.rgb import stain_od


@pytest.fixture(scope="module")
def engine(translate_model_dir):
    return load_engine("auto", translate_model_dir, device="cpu")


@pytest.fixture(scope="module")
def whole(engine, ihc_22_2):
    return score_region(engine, ihc_22_2, resolution="40x", outputs="all")


def test_the_generator_file_has_the_cyclegan_layout_and_runs_as_that_network(translate_model_dir, engine,
                                                                            ihc_22_2) -> None:
    state = torch.load(translate_model_dir / "latest_net_G_A.pth", weights_only=True)
    assert list(state)[:2] == ["model.1.weight", "model.1.bias"]
    assert "model.18.conv_block.5.weight" in state and list(state)[-2:] == ["model.26.weight", "model.26.bias"]
    # resnet_9blocks at ngf=64: the parameter count CycleGAN prints for G_A (11.378 M)
    assert sum(v.numel() for v in cyclegan_generator(64).state_dict().values()) == 11_378_179

    net = cyclegan_generator()
    net.load_state_dict(state)
    tile = ihc_22_2[:256, :256]
    with torch.no_grad():
        y = net(torch.from_numpy(tile.copy()).permute(2, 0, 1)[None].float() / 127.5 - 1)
    expected = ((y + 1) / 2 * 255).clamp(0, 255).to(torch.uint8)[0].permute(1, 2, 0).numpy()
    ours = engine.infer(tile, resolution="40x", outputs=[VIRTUAL_HE])[VIRTUAL_HE]
    diff = np.abs(ours.astype(int) - expected.astype(int))
    assert diff.max() <= 1 and (diff == 0).mean() > 0.995


def test_a_batch_norm_generator_runs_as_the_repository_runs_it(translate_model_dir, ihc_22_2, tmp_path) -> None:
    torch.manual_seed(3)
    net = cyclegan_generator(norm="batch")
    with torch.no_grad():  # norm weights away from 1 and 0, so a lost affine shows
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
    folder = copy_model(translate_model_dir, tmp_path / "batch-norm")
    torch.save(net.state_dict(), folder / "latest_net_G_A.pth")
    assert "model.2.weight" in net.state_dict() and "model.2.running_mean" in net.state_dict()
    tile = ihc_22_2[256:, 256:]
    with torch.no_grad():  # test.py without --eval: batch norm in training mode, one image per batch
        y = net.train()(torch.from_numpy(tile.copy()).permute(2, 0, 1)[None].float() / 127.5 - 1)
    expected = ((y + 1) / 2 * 255).clamp(0, 255).to(torch.uint8)[0].permute(1, 2, 0).numpy()
    ours = load_engine("auto", folder, device="cpu").infer(tile, resolution="40x", outputs=[VIRTUAL_HE])[VIRTUAL_HE]
    diff = np.abs(ours.astype(int) - expected.astype(int))
    assert diff.max() <= 1 and (diff == 0).mean() > 0.995


def test_auto_loads_the_type_and_classifies_nuclei_by_the_ihcs_dab(engine, whole, ihc_22_2) -> None:
    assert isinstance(engine, TranslateEngine) and engine.outputs == (VIRTUAL_HE, "Marker", "Seg")
    scoring = whole.scoring
    assert scoring["num_pos"] > 0 and scoring["num_total"] - scoring["num_pos"] > 20
    dab = stain_od(ihc_22_2)[..., 2]
    np.testing.assert_array_equal(whole.images["Marker"][..., 0], np.clip(np.rint(dab * 100), 0, 255).astype(np.uint8))
    # positive nuclei lie on the IHC's DAB, negative ones off it
    seg = whole.images["Seg"]
    red = (seg[..., 0] == 255) & (seg[..., 1] == 0)
    blue = (seg[..., 2] == 255) & (seg[..., 1] == 0)
    assert dab[red].mean() > 0.2 > dab[blue].mean()


def assert_region_is_that_box(engine, region, whole, box, *, least: int) -> None:
    """The region's counted cells (more than ``least``) are the whole image's in ``box``, and
    every output is that box of the whole image's."""
    expected = in_box(counted_centroids(whole), box)
    assert len(expected) > least
    np.testing.assert_allclose(counted_centroids(region), expected, atol=1e-6)
    (wx, wy), (h, w) = region.origin, region.images["Seg"].shape[:2]
    for name in engine.outputs:
        np.testing.assert_array_equal(region.images[name], whole.images[name][wy : wy + h, wx : wx + w], err_msg=name)


@pytest.mark.parametrize("box", [(40, 40, 300, 300), (147, 45, 330, 300)])
def test_a_region_gives_the_whole_images_cells_there(engine, ihc_22_2, whole, box) -> None:
    region = score_region(engine, ihc_22_2, region=box, resolution="40x", outputs="all")
    assert_region_is_that_box(engine, region, whole, box, least=10)


def test_cli_score_and_the_server_give_the_same_cells(translate_model_dir, ihc_22_2, whole, tmp_path) -> None:
    path = tmp_path / "ihc.png"
    Image.fromarray(ihc_22_2).save(path)
    assert main(["score", str(path), "--model", str(translate_model_dir), "--device", "cpu",
                 "--resolution", "40x", "--out", str(tmp_path / "out")]) == 0
    folder = tmp_path / "out" / "ihc"
    record = json.loads((folder / "score.json").read_text())
    jsonschema.validate(record, SCORE_SCHEMA)
    assert record["scoring"]["num_total"] == whole.scoring["num_total"] > 0
    assert record["scoring"]["num_pos"] == whole.scoring["num_pos"]
    assert record["provenance"]["engine"] == "translate" and record["provenance"]["model"] == "translate-fixture"
    with open(folder / "cells.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    np.testing.assert_allclose(sorted_xy([(float(r["centroid_x"]), float(r["centroid_y"])) for r in rows]),
                               counted_centroids(whole), atol=1e-6)

    with running_server(tmp_path, "auto", model=translate_model_dir, device="cpu") as handle, client(handle) as http:
        assert http.get("/api/health").json()["engine"] == "translate"
        body = http.post("/api/score", content=png_bytes(ihc_22_2), headers={"Content-Type": "image/png"},
                         params={"resolution": "40x"}).json()
    assert body["score"]["scoring"] == record["scoring"]
    assert len(body["features"]) == len(rows)


def assert_batch_gives_the_whole_images_cells(model_dir: Path, image: np.ndarray, whole, tmp_path: Path) -> None:
    """``batch`` with ``model_dir`` on a two-level pyramidal slide of ``image`` (256 px chunks)
    gives the counted cells of ``whole``, the region core's result on ``image``."""
    from test_slides import write_ome_tiff

    slide = write_ome_tiff(tmp_path / "slide.ome.tif", image, mpp=0.25, levels=2)
    assert main(["batch", str(slide), "--model", str(model_dir), "--device", "cpu", "--chunk-size", "256",
                 "--out", str(tmp_path / "batch")]) == 0
    [cells] = list((tmp_path / "batch").glob("*/cells.csv"))
    with open(cells, newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["counted"] == "True"]
    np.testing.assert_allclose(sorted_xy([(float(r["centroid_x"]), float(r["centroid_y"])) for r in rows]),
                               counted_centroids(whole), atol=1e-6)


def test_batch_scores_a_pyramidal_slide_with_the_regions_cells(translate_model_dir, ihc_22_2, whole,
                                                               tmp_path) -> None:
    assert_batch_gives_the_whole_images_cells(translate_model_dir, ihc_22_2, whole, tmp_path)



@pytest.mark.parametrize("changes, field", [
    ({"format": "torchscript"}, "format"),
    ({"architecture": "unet-resnet34"}, "architecture"),
    ({"input": {"channel": "grey", "normalise": "scale-minus1-1"}}, "input"),
    ({"input": {"normalise": "scale-0-1"}}, "input.normalise"),
    ({"tile_size": 254}, "tile_size"),
    ({"overlap": 31}, "overlap"),
    ({"segmenter": "cellpose-cyto3"}, "segmenter"),
    ({"segmenter": None}, "segmenter"),
    ({"dab_threshold": "high"}, "dab_threshold"),
    ({"classes": ["background", "cell"]}, "classes"),
    ({"weights": "latest_net_G_B.pth"}, "weights"),
])
def test_a_bad_card_is_refused_naming_the_field(translate_model_dir, tmp_path, changes, field) -> None:
    folder = copy_model(translate_model_dir, tmp_path / "model", **changes)
    with pytest.raises(ModelError, match=f"field '{field}'"):
        load_engine("auto", folder, device="cpu")


def test_translate_fields_on_another_type_are_refused(classmap_model_dirs, tmp_path) -> None:
    folder = copy_model(classmap_model_dirs[0], tmp_path / "model", segmenter="stain")
    with pytest.raises(ModelError, match="field 'segmenter' is a field of 'translate' models only"):
        load_engine("auto", folder, device="cpu")


@pytest.mark.parametrize("edit, message", [
    (lambda s: s.pop("model.13.conv_block.5.bias"), r"lacks 1 parameters \(first: 'model.13.conv_block.5.bias'\)"),
    (lambda s: s.update({"model.3.weight": torch.ones(8)}), r"1 parameters .* lacks \(first: 'model.3.weight'\)"),
    (lambda s: s.update({"model.26.weight": torch.zeros(1, 8, 7, 7)}),
     r"parameter 'model.26.weight' has shape \(1, 8, 7, 7\), expected \(3, 8, 7, 7\)"),
    (lambda s: s.pop("model.1.weight"), r"no 4-D 'model.1.weight'"),
])
def test_mismatched_generator_weights_name_the_parameter(translate_model_dir, tmp_path, edit, message) -> None:
    folder = copy_model(translate_model_dir, tmp_path / "model")
    state = torch.load(folder / "latest_net_G_A.pth", weights_only=True)
    edit(state)
    torch.save(state, folder / "latest_net_G_A.pth")
    with pytest.raises(ModelError, match=message):
        load_engine("auto", folder, device="cpu")


def test_the_widget_scores_with_the_translate_model_rescores_and_exports(widget, private_model_dirs, qtbot, translate_model_dir,
                                                                         ihc_22_2, whole, tmp_path) -> None:
    from test_widget import plugin_layers, run_and_wait

    viewer = widget.viewer
    viewer.add_image(ihc_22_2, name="ihc", rgb=True)
    widget.engine_box.add_local(translate_model_dir, name="translate-fixture")
    widget.device_combo.setCurrentText("cpu")
    run_and_wait(widget, qtbot)
    assert widget.post.scoring == whole.scoring
    assert "translate" in widget.engine_box.engine_label.text()
    layers = plugin_layers(viewer)
    assert widget.post.scoring["num_total"] == len(counted_centroids(whole))
    assert any(name.endswith("cells") for name in layers)
    virtual = [layer for layer in layers.values() if np.array_equal(np.asarray(layer.data), whole.images[VIRTUAL_HE])]
    assert virtual, f"no layer shows the virtual H&E among {sorted(layers)}"

    widget.sliders["size_thresh"].move_to(200)
    qtbot.waitUntil(lambda: widget.post.scoring["size_thresh"] == 200, timeout=5000)
    assert widget.post.scoring == whole.rescore(size_thresh=200).scoring
    assert 0 < widget.post.scoring["num_total"] < whole.scoring["num_total"]

    widget.export(tmp_path / "export")
    record = json.loads((tmp_path / "export" / "score.json").read_text())
    assert record["scoring"] == widget.post.scoring and record["provenance"]["engine"] == "translate"
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "export" / f"{VIRTUAL_HE}.png")),
                                  whole.images[VIRTUAL_HE])
    with open(tmp_path / "export" / "cells.csv", newline="") as handle:
        assert len(list(csv.DictReader(handle))) == widget.post.scoring["num_total"]


# segmenter: deepliif -- a DeepLIIF model's Seg of the virtual H&E finds the nuclei


@pytest.fixture(scope="module")
def deepliif_seg_dir(translate_model_dir, fit_model_dir, tmp_path_factory) -> Path:
    """The fixture generator with ``segmenter: deepliif``, naming the fitted DeepLIIF fixture
    relative to the card's folder."""
    target = tmp_path_factory.mktemp("transeg") / "translate-deepliif"
    return copy_model(translate_model_dir, target, segmenter="deepliif",
                 segmenter_model=os.path.relpath(fit_model_dir.resolve(), target))


@pytest.fixture(scope="module")
def deepliif_seg_whole(deepliif_seg_dir, ihc_22_2):
    engine = load_engine("auto", deepliif_seg_dir, device="cpu")
    return engine, score_region(engine, ihc_22_2, resolution="40x", outputs="all")


def test_the_deepliif_segmenter_finds_the_nuclei_of_its_seg_and_the_ihcs_dab_classifies_them(
        deepliif_seg_whole, fit_model_dir, ihc_22_2) -> None:
    from napari_deepliif.constants import DEFAULT_SEG_THRESH, SEG_BOUNDARY_MAX_GREEN
    from napari_deepliif.engine.engines import Engine

    engine, whole = deepliif_seg_whole
    assert engine.outputs == (VIRTUAL_HE, "Marker", "Seg")
    assert engine.segmenter.directory.resolve() == fit_model_dir.resolve()
    # the DeepLIIF model's own Seg of the virtual H&E: its cell pixels are exactly the nuclei drawn
    seg = Engine.load(fit_model_dir, device="cpu").infer(whole.images[VIRTUAL_HE], resolution="40x",
                                                          outputs=["Seg"])["Seg"]
    cell = (seg[..., 0].astype(int) + seg[..., 2] > DEFAULT_SEG_THRESH) & (seg[..., 1] <= SEG_BOUNDARY_MAX_GREEN)
    ours = whole.images["Seg"]
    np.testing.assert_array_equal(ours.any(axis=2), cell)
    dab = stain_od(ihc_22_2)[..., 2]
    np.testing.assert_array_equal(whole.images["Marker"][..., 0], np.clip(np.rint(dab * 100), 0, 255).astype(np.uint8))
    red = (ours[..., 0] == 255) & (ours[..., 1] == 0)
    blue = (ours[..., 2] == 255) & (ours[..., 1] == 0)
    assert red.sum() > 50 and blue.sum() > 500
    assert dab[red].mean() > 0.2 > dab[blue].mean()
    assert whole.scoring["num_pos"] > 0 and whole.scoring["num_total"] - whole.scoring["num_pos"] > 10


def test_the_deepliif_segmenters_region_is_that_box_of_the_whole_image(deepliif_seg_whole, ihc_22_2) -> None:
    engine, whole = deepliif_seg_whole
    box = (147, 45, 330, 300)  # crosses the generator's and the DeepLIIF model's tile seams
    region = score_region(engine, ihc_22_2, region=box, resolution="40x", outputs="all")
    # the automatic size threshold is the region's own: count at the whole image's
    region = region.rescore(size_thresh=whole.scoring["size_thresh"])
    assert_region_is_that_box(engine, region, whole, box, least=5)


def test_cli_score_with_the_deepliif_segmenter(deepliif_seg_dir, deepliif_seg_whole, ihc_22_2, tmp_path) -> None:
    engine, whole = deepliif_seg_whole
    path = tmp_path / "ihc.png"
    Image.fromarray(ihc_22_2).save(path)
    assert main(["score", str(path), "--model", str(deepliif_seg_dir), "--device", "cpu",
                 "--resolution", "40x", "--out", str(tmp_path / "out")]) == 0
    folder = tmp_path / "out" / "ihc"
    record = json.loads((folder / "score.json").read_text())
    jsonschema.validate(record, SCORE_SCHEMA)
    assert record["scoring"] == whole.scoring and record["scoring"]["num_total"] > 10
    assert record["provenance"]["engine"] == "translate"
    # the hash names the generator and the segmenter's weights
    assert record["provenance"]["model_hash"] == engine.model_hash
    assert engine.model_hash.endswith("+" + engine.segmenter.fingerprint())
    np.testing.assert_array_equal(np.asarray(Image.open(folder / "Seg.png")), whole.images["Seg"])
    with open(folder / "cells.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    np.testing.assert_allclose(sorted_xy([(float(r["centroid_x"]), float(r["centroid_y"])) for r in rows]),
                               counted_centroids(whole), atol=1e-6)


def test_batch_with_the_deepliif_segmenter_gives_the_regions_cells(deepliif_seg_dir, deepliif_seg_whole, ihc_22_2,
                                                                    tmp_path) -> None:
    assert_batch_gives_the_whole_images_cells(deepliif_seg_dir, ihc_22_2, deepliif_seg_whole[1], tmp_path)


@pytest.mark.parametrize("changes, field, message", [
    ({"segmenter": "deepliif"}, "segmenter_model", "is None; give the DeepLIIF model folder"),
    ({"segmenter": "deepliif", "segmenter_model": "no-such-model"}, "segmenter_model",
     "names 'no-such-model', which is not a DeepLIIF model folder"),
    ({"segmenter": "deepliif", "segmenter_model": "."}, "segmenter_model", "no train_opt.txt"),
    ({"segmenter_model": "deepliif-fit-ngf8"}, "segmenter_model", "segmenter 'stain' takes no model"),
    ({"segmenter": "deepliif", "segmenter_model": "FIT", "nucleus_threshold": 0.1}, "nucleus_threshold",
     "a setting of the 'stain' segmenter"),
])
def test_a_bad_deepliif_segmenter_card_is_refused_naming_the_field(translate_model_dir, fit_model_dir, tmp_path,
                                                                   changes, field, message) -> None:
    changes = {k: str(fit_model_dir) if v == "FIT" else v for k, v in changes.items()}
    folder = copy_model(translate_model_dir, tmp_path / "model", **changes)
    with pytest.raises(ModelError, match=f"field '{field}' .*{re.escape(message)}"):
        load_engine("auto", folder, device="cpu")
