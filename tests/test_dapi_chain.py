"""A ``classmap`` model fed by the DAPI a DeepLIIF model infers from an IHC image
(``input.source: deepliif-dapi``): the class map is the class-map network's on DeepLIIF's own
DAPI, and the region core, ``score``, ``batch`` on a pyramidal slide, the server (real HTTP)
and the widget give the same cells.

The card is written here from the two fixtures (tests/classmap_fixture.py and the fitted
DeepLIIF release-layout fixture): neither is a published model. A 384 px crop at 20x (the
class-map fixture's 0.5 µm/px) keeps the class-map tiles few: two by two on both grids.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
from pathlib import Path

import httpx
import jsonschema
import numpy as np
import pytest
import shapely.geometry
import yaml
from conftest import copy_model
from PIL import Image
from test_widget import widget  # noqa: F401 (a fixture)

from napari_deepliif.cli.main import main
from napari_deepliif.constants import CLASSES
from napari_deepliif.engine.dapi_chain import DAPI, DapiChainEngine
from napari_deepliif.engine.engines import Engine, load_engine
from napari_deepliif.errors import ModelError
from napari_deepliif.regions.score import score_region

SCORE_SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "docs" / "score.schema.json").read_text())
RESOLUTION = "20x"


def write_chain(classmap_dir: Path, target: Path, **changes) -> Path:
    """A copy of the class-map fixture whose card reads the DAPI of a DeepLIIF model;
    ``changes`` replace card fields (None removes one)."""
    card = yaml.safe_load((classmap_dir / "model.yaml").read_text())
    return copy_model(classmap_dir, target, **{"name": "dapi-chain-fixture",
                                               "input": {**card["input"], "source": "deepliif-dapi"}, **changes})


@pytest.fixture(scope="module")
def chain_dir(classmap_model_dirs, fit_model_dir, tmp_path_factory) -> Path:
    """The chained card, naming the fitted DeepLIIF fixture relative to its folder."""
    target = tmp_path_factory.mktemp("dapichain") / "dapi-chain"
    return write_chain(classmap_model_dirs[0], target,
                       deepliif_model=os.path.relpath(fit_model_dir.resolve(), target))


@pytest.fixture(scope="module")
def ihc(ihc_22_2) -> np.ndarray:
    return np.ascontiguousarray(ihc_22_2[64:448, 96:480])


@pytest.fixture(scope="module")
def engine(chain_dir):
    return load_engine("auto", chain_dir, device="cpu")


@pytest.fixture(scope="module")
def whole(engine, ihc):
    return score_region(engine, ihc, resolution=RESOLUTION, outputs="all")


def sorted_cells(xy, classes) -> list[tuple[float, float, str]]:
    return sorted((round(float(x), 6), round(float(y), 6), str(c)) for (x, y), c in zip(np.asarray(xy), classes))


def whole_cells(result) -> list[tuple[float, float, str]]:
    """(x, y, class) of the counted cells, in image pixels."""
    table, counted = result.post.table, result.post.counted
    xy = table.centroid_xy[counted] + np.asarray(result.origin, float)
    return sorted_cells(xy, np.asarray(table.class_names)[table.cell_class[counted]])


def csv_cells(path: Path, counted_only: bool = False) -> list[tuple[float, float, str]]:
    with open(path, newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if not counted_only or r["counted"] == "True"]
    return sorted_cells([(float(r["centroid_x"]), float(r["centroid_y"])) for r in rows], [r["class"] for r in rows])


def test_the_class_map_is_the_class_map_networks_on_deepliifs_dapi(engine, whole, ihc, classmap_model_dirs,
                                                                   fit_model_dir) -> None:
    assert isinstance(engine, DapiChainEngine) and engine.brightfield
    assert engine.outputs == (CLASSES, DAPI) and engine.deepliif.directory.resolve() == fit_model_dir.resolve()
    dapi = Engine.load(fit_model_dir, device="cpu").infer(ihc, resolution=RESOLUTION, outputs=[DAPI])[DAPI]
    np.testing.assert_array_equal(whole.images[DAPI], dapi)
    alone = load_engine("auto", classmap_model_dirs[0], device="cpu").infer(dapi, resolution=RESOLUTION)
    np.testing.assert_array_equal(whole.images[CLASSES], alone[CLASSES])
    assert whole.scoring["classes"]["positive"] > 3 and whole.scoring["classes"]["negative"] > 10
    assert whole.provenance["engine"] == "classmap" and whole.provenance["model"] == "dapi-chain-fixture"
    assert engine.model_hash.endswith("+" + engine.deepliif.fingerprint())


def test_a_region_is_that_box_of_the_whole_image(engine, whole, ihc) -> None:
    box = (100, 90, 200, 180)  # crosses the class-map grid's and DeepLIIF's tile seams
    region = score_region(engine, ihc, region=box, resolution=RESOLUTION, outputs="all")
    (wx, wy), (h, w) = region.origin, region.images[CLASSES].shape[:2]
    for name in engine.outputs:
        np.testing.assert_array_equal(region.images[name], whole.images[name][wy : wy + h, wx : wx + w], err_msg=name)
    x, y, bw, bh = box
    inside = [c for c in whole_cells(whole) if x - 0.5 <= c[0] < x + bw - 0.5 and y - 0.5 <= c[1] < y + bh - 0.5]
    assert len(inside) > 5 and whole_cells(region) == inside


def test_score_equals_batch_on_a_pyramidal_slide_and_the_server_region(chain_dir, whole, ihc, tmp_path,
                                                                        monkeypatch) -> None:
    from test_slides import write_ome_tiff

    from napari_deepliif.server import ServerHandle

    path = tmp_path / "ihc.png"
    Image.fromarray(ihc).save(path)
    model = ["--model", str(chain_dir), "--device", "cpu"]
    assert main(["score", str(path), *model, "--resolution", RESOLUTION, "--out", str(tmp_path / "score")]) == 0
    folder = tmp_path / "score" / "ihc"
    record = json.loads((folder / "score.json").read_text())
    jsonschema.validate(record, SCORE_SCHEMA)
    assert record["scoring"] == whole.scoring
    np.testing.assert_array_equal(np.asarray(Image.open(folder / f"{DAPI}.png")), whole.images[DAPI])
    score = csv_cells(folder / "cells.csv")
    assert score == whole_cells(whole)

    slide = write_ome_tiff(tmp_path / "slide.ome.tif", ihc, mpp=0.5, levels=2)
    assert main(["batch", str(slide), *model, "--chunk-size", "128", "--out", str(tmp_path / "batch")]) == 0
    [cells] = list((tmp_path / "batch").glob("*/cells.csv"))
    assert csv_cells(cells, counted_only=True) == score

    monkeypatch.setenv("NAPARI_DEEPLIIF_CONFIG_DIR", str(tmp_path / "config"))
    box = [150, 40, 200, 230]
    with ServerHandle.start("auto", model=chain_dir, device="cpu", host="127.0.0.1", port=0) as server:
        answer = httpx.post(f"{server.url}/api/regions/score", headers={"Authorization": f"Bearer {server.token}"},
                            json={"image": str(path), "region": box, "resolution": RESOLUTION}, timeout=600)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    x, y, w, h = box
    inside = [c for c in score if x - 0.5 <= c[0] < x + w - 0.5 and y - 0.5 <= c[1] < y + h - 0.5]
    # a polygon traced on pixel edges has the table centroid + 0.5 as its area centroid
    served = sorted_cells([np.asarray(shapely.geometry.shape(f["geometry"]).centroid.coords[0]) - 0.5
                           for f in body["features"]],
                          [f["properties"]["classification"]["name"] for f in body["features"]])
    assert len(inside) > 5 and len(served) == len(inside)
    np.testing.assert_allclose([c[:2] for c in served], [c[:2] for c in inside], atol=1e-6)
    assert [c[2] for c in served] == [c[2] for c in inside]


def test_a_deepliif_model_named_by_its_registered_name(classmap_model_dirs, fit_model_dir, tmp_path,
                                                       monkeypatch) -> None:
    from napari_deepliif.models.index import CONFIG_DIR_ENV, add_model

    monkeypatch.setenv(CONFIG_DIR_ENV, str(tmp_path / "config"))
    add_model("fit-fixture", fit_model_dir)
    engine = load_engine("auto", write_chain(classmap_model_dirs[0], tmp_path / "m", deepliif_model="fit-fixture"),
                         device="cpu")
    assert engine.deepliif.directory.resolve() == fit_model_dir.resolve()


@pytest.mark.parametrize("changes, field, message", [
    ({"deepliif_model": None}, "deepliif_model", "is None; give the DeepLIIF model folder"),
    ({"deepliif_model": "no-such-model"}, "deepliif_model",
     "names 'no-such-model', which is not a DeepLIIF model folder"),
    ({"deepliif_model": "."}, "deepliif_model", "no train_opt.txt"),
    ({"deepliif_model": "OPTIONS_ONLY"}, "deepliif_model", "is not a loadable DeepLIIF release"),
    ({"input": {"channel": "grey", "normalise": "per-tile-zscore", "source": "hoechst"}}, "input.source",
     "is 'hoechst'; allowed: image, deepliif-dapi"),
    ({"input": {"channel": "grey", "normalise": "per-tile-zscore"}, "deepliif_model": "FIT"}, "deepliif_model",
     "is given, but input.source is 'image'"),
])
def test_a_bad_chained_card_is_refused_naming_the_field(classmap_model_dirs, fit_model_dir, tmp_path, changes,
                                                        field, message) -> None:
    if changes.get("deepliif_model") == "OPTIONS_ONLY":  # a train_opt.txt without the nets
        (tmp_path / "broken").mkdir()
        shutil.copy(fit_model_dir / "train_opt.txt", tmp_path / "broken")
        changes = {"deepliif_model": str(tmp_path / "broken")}
    changes = {k: str(fit_model_dir) if v == "FIT" else v for k, v in changes.items()}
    folder = write_chain(classmap_model_dirs[0], tmp_path / "model", **{"deepliif_model": str(fit_model_dir),
                                                                         **changes})
    with pytest.raises(ModelError, match=f"field '{field}'.*{re.escape(message)}"):
        load_engine("auto", folder, device="cpu")


def test_the_chain_fields_on_other_types_are_refused(points_model_dir, fit_model_dir, tmp_path) -> None:
    folder = tmp_path / "points"
    shutil.copytree(points_model_dir, folder)
    data = yaml.safe_load((folder / "model.yaml").read_text())
    (folder / "model.yaml").write_text(yaml.safe_dump({**data, "deepliif_model": str(fit_model_dir)}))
    with pytest.raises(ModelError, match="field 'deepliif_model' is a field of 'classmap' models only"):
        load_engine("auto", folder, device="cpu")
    data["input"]["source"] = "deepliif-dapi"
    (folder / "model.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(ModelError, match="field 'input.source' is 'deepliif-dapi'; a 'points' model reads the image"):
        load_engine("auto", folder, device="cpu")


def test_the_widget_shows_the_classes_and_the_dapi_they_came_from(widget, private_model_dirs, qtbot, chain_dir, ihc, whole) -> None:
    from test_widget import plugin_layers, run_and_wait

    from napari_deepliif.widget.layers import intensity

    viewer = widget.viewer
    viewer.add_image(ihc, name="ihc", rgb=True)
    widget.engine_box.add_local(chain_dir, name="dapi-chain-fixture")
    widget.device_combo.setCurrentText("cpu")
    widget.resolution_combo.setCurrentText(RESOLUTION)
    run_and_wait(widget, qtbot)
    assert widget.post.scoring == whole.scoring
    layers = plugin_layers(viewer)
    [labels] = [layer for layer in layers.values() if layer.__class__.__name__ == "Labels"
                and np.array_equal(np.asarray(layer.data), whole.images[CLASSES][..., 0])]
    assert {"negative", "positive"} <= set(labels.features["class"])
    # shown as one intensity channel in blue, as DeepLIIF's own DAPI is
    dapi = [layer for layer in layers.values() if np.array_equal(np.asarray(layer.data), intensity(whole.images[DAPI]))]
    assert dapi, f"no layer shows the DAPI among {sorted(layers)}"
