"""The ``translate`` type's ``cellpose`` segmenter: Cellpose (the optional package) finds the
nuclei on the virtual H&E, one tile of the whole image's fixed grid at a time, and the IHC's
DAB classifies them; the same cells for a region and through ``score`` (real files).

The Cellpose file is made by tests/cellpose_fixture.py (Cellpose's own network and save
function; random weights, never downloaded). Tests that run Cellpose need the package
(``pip install 'napari-deepliif[cellpose]'``; CI installs it).
"""

from __future__ import annotations

import csv
import json
import shutil
import sys
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pytest
from conftest import copy_model
from PIL import Image
from test_translate import assert_region_is_that_box, counted_centroids, sorted_xy

from napari_deepliif.cli.main import main
from napari_deepliif.engine.engines import load_engine
from napari_deepliif.engine.tiling import TileGrid, disjoint_tiles
from napari_deepliif.engine.translate import VIRTUAL_HE
from napari_deepliif.errors import ModelError
from napari_deepliif.regions.score import score_region
from napari_deepliif.rgb import stain_od

needs_cellpose = pytest.mark.skipif(find_spec("cellpose") is None,
                                    reason="needs cellpose: pip install 'napari-deepliif[cellpose]'")
#: The fixture's run: 20x (256 px tiles, 0.5 µm/px), so the 512 px image spans 3 x 3 tiles.
RESOLUTION = "20x"


@pytest.fixture(scope="module")
def cellpose_dir(translate_model_dir, tmp_path_factory) -> Path:
    from cellpose_fixture import build

    folder = tmp_path_factory.mktemp("transcp") / "translate-cellpose"
    build(folder, translate_model_dir)
    return folder


@pytest.fixture(scope="module")
def cellpose_whole(cellpose_dir, ihc_22_2):
    engine = load_engine("auto", cellpose_dir, device="cpu")
    return engine, score_region(engine, ihc_22_2, resolution=RESOLUTION, outputs="all")


@needs_cellpose
def test_the_nuclei_are_cellposes_masks_of_each_tile_classified_by_the_ihcs_dab(cellpose_dir, cellpose_whole,
                                                                                ihc_22_2) -> None:
    from cellpose import models
    from cellpose_fixture import CELLPOSE_FILE

    engine, whole = cellpose_whole
    assert engine.outputs == (VIRTUAL_HE, "Marker", "Seg")
    virtual, seg = whole.images[VIRTUAL_HE], whole.images["Seg"]
    dab = stain_od(ihc_22_2)[..., 2]
    # Cellpose itself, on each tile of the 20x grid, at 15 µm / 0.5 µm/px = 30 px
    model = models.CellposeModel(pretrained_model=str(cellpose_dir / CELLPOSE_FILE), device=None)
    tiles = [t for row in disjoint_tiles(TileGrid(512, 512, 256)) for t in row]
    assert len(tiles) == 9
    nuclei = positives = 0
    for t in tiles:
        masks = model.eval(virtual[t.y : t.y + 256, t.x : t.x + 256], channels=[0, 0], diameter=30.0,
                           flow_threshold=0.0, cellprob_threshold=0.0)[0]
        y0, y1, x0, x1 = t.write
        part = masks[y0 - t.y : y1 - t.y, x0 - t.x : x1 - t.x]
        np.testing.assert_array_equal(seg[y0:y1, x0:x1].any(axis=2), part > 0, err_msg=f"tile at {t.y}, {t.x}")
        tile_dab = dab[t.y : t.y + 256, t.x : t.x + 256]
        for label in np.unique(part[part > 0]):
            inside = part == label
            colours = seg[y0:y1, x0:x1][inside]
            red = (colours[:, 0] == 255) & (colours[:, 1] == 0)
            blue = (colours[:, 2] == 255) & (colours[:, 1] == 0)
            # a nucleus is classified by the mean DAB under all of its tile's mask
            positive = tile_dab[masks == label].mean() > engine.dab_threshold
            assert not (red if not positive else blue).any(), f"nucleus {label} of tile {t.y}, {t.x}"
            nuclei += 1
            positives += positive
    assert nuclei > 20 and 0 < positives < nuclei
    assert whole.scoring["num_total"] > 10 and whole.scoring["num_pos"] > 0


@needs_cellpose
def test_a_region_is_that_box_of_the_whole_image(cellpose_whole, ihc_22_2) -> None:
    engine, whole = cellpose_whole
    box = (147, 45, 330, 300)  # crosses the generator's and the Cellpose grid's tile seams
    region = score_region(engine, ihc_22_2, region=box, resolution=RESOLUTION, outputs="all")
    region = region.rescore(size_thresh=whole.scoring["size_thresh"])
    assert_region_is_that_box(engine, region, whole, box, least=5)


@needs_cellpose
def test_cli_score_with_the_cellpose_segmenter(cellpose_dir, cellpose_whole, ihc_22_2, tmp_path) -> None:
    engine, whole = cellpose_whole
    path = tmp_path / "ihc.png"
    Image.fromarray(ihc_22_2).save(path)
    assert main(["score", str(path), "--model", str(cellpose_dir), "--device", "cpu", "--resolution", RESOLUTION,
                 "--out", str(tmp_path / "out")]) == 0
    folder = tmp_path / "out" / "ihc"
    record = json.loads((folder / "score.json").read_text())
    assert record["scoring"] == whole.scoring
    assert record["provenance"]["engine"] == "translate"
    assert record["provenance"]["model"] == "translate-cellpose-fixture"
    assert record["provenance"]["model_hash"] == engine.model_hash
    np.testing.assert_array_equal(np.asarray(Image.open(folder / "Seg.png")), whole.images["Seg"])
    with open(folder / "cells.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    np.testing.assert_allclose(sorted_xy([(float(r["centroid_x"]), float(r["centroid_y"])) for r in rows]),
                               counted_centroids(whole), atol=1e-6)


@needs_cellpose
def test_the_hash_changes_with_the_cellpose_file(cellpose_dir, cellpose_whole, tmp_path) -> None:
    import torch
    from cellpose_fixture import CELLPOSE_FILE, cellpose_network

    engine, _ = cellpose_whole
    folder = shutil.copytree(cellpose_dir, tmp_path / "other")
    net = cellpose_network(seed=1)
    net.save_model(str(folder / CELLPOSE_FILE))
    assert not torch.equal(net.output[-1].weight, torch.load(cellpose_dir / CELLPOSE_FILE)["output.2.weight"])
    assert load_engine("auto", folder, device="cpu").model_hash != engine.model_hash


@needs_cellpose
def test_a_file_cellpose_cannot_load_is_refused(translate_model_dir, tmp_path) -> None:
    folder = copy_model(translate_model_dir, tmp_path / "model", segmenter="cellpose",
                   segmenter_model="latest_net_G_A.pth")
    with pytest.raises(ModelError, match="latest_net_G_A.pth cannot be loaded as a Cellpose model"):
        load_engine("auto", folder, device="cpu")


def test_without_the_cellpose_package_the_error_names_the_extra(translate_model_dir, tmp_path, monkeypatch) -> None:
    (tmp_path / "weights.pth").write_bytes(b"not read")
    folder = copy_model(translate_model_dir, tmp_path / "model", segmenter="cellpose",
                   segmenter_model=str(tmp_path / "weights.pth"))
    monkeypatch.setitem(sys.modules, "cellpose", None)
    with pytest.raises(ModelError, match=r"needs the cellpose package.*pip install 'napari-deepliif\[cellpose\]'"):
        load_engine("auto", folder, device="cpu")



@pytest.mark.parametrize("changes, field, message", [
    ({"segmenter": "cellpose"}, "segmenter_model", "is None; give the Cellpose model file"),
    ({"segmenter": "cellpose", "segmenter_model": "cyto3"}, "segmenter_model",
     "names 'cyto3', which is not a file"),
    ({"segmenter": "cellpose", "segmenter_model": "latest_net_G_A.pth", "nucleus_threshold": 0.1},
     "nucleus_threshold", "a setting of the 'stain' segmenter"),
    ({"segmenter": "cellpose", "segmenter_model": "latest_net_G_A.pth", "nucleus_diameter_um": 0},
     "nucleus_diameter_um", "is 0; give the mean nucleus diameter in µm"),
    ({"nucleus_diameter_um": 7}, "nucleus_diameter_um", "a setting of the 'cellpose' segmenter, not 'stain'"),
    ({"flow_threshold": 0.5}, "flow_threshold", "a setting of the 'cellpose' segmenter, not 'stain'"),
    ({"segmenter": "cellpose", "segmenter_model": "latest_net_G_A.pth", "cellprob_threshold": "low"},
     "cellprob_threshold", "is 'low'; give a number"),
])
def test_a_bad_cellpose_card_is_refused_naming_the_field(translate_model_dir, tmp_path, changes, field,
                                                         message) -> None:
    folder = copy_model(translate_model_dir, tmp_path / "model", **changes)
    with pytest.raises(ModelError, match=f"field '{field}' .*{message}"):
        load_engine("auto", folder, device="cpu")
