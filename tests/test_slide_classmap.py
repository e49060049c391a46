"""Whole slides with a class-map model: ``batch`` finds the cells in the class map, each with
its majority class, as ``score`` does on the same pixels (the fixture model of
tests/classmap_fixture.py on a real mpIF DAPI panel)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from classmap_fixture import lung_panels
from PIL import Image

from napari_deepliif.cells.classmap import ClassPixels
from napari_deepliif.cells.postprocess import Settings, postprocess_pixels
from napari_deepliif.cli.main import main
from napari_deepliif.constants import CLASSES
from napari_deepliif.engine.engines import load_engine
from napari_deepliif.errors import DeepLIIFError
from napari_deepliif.regions.score import score_region
from napari_deepliif.slides.cells import find_slide_cells
from napari_deepliif.slides.windows import ClassMap

SCORE_SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "docs" / "score.schema.json").read_text())


@pytest.fixture(scope="module")
def dapi(shared_dir: Path) -> np.ndarray:
    return lung_panels(shared_dir)[0]


@pytest.fixture(scope="module")
def engine(classmap_model_dirs):
    return load_engine("auto", classmap_model_dirs[0], device="cpu")


def cell_rows(path: Path, counted_only: bool) -> dict[tuple[str, str], str]:
    """Centroid (as written) -> class of each cell of a cells.csv."""
    with open(path, newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if not counted_only or r["counted"] == "True"]
    return {(r["centroid_x"], r["centroid_y"]): r["class"] for r in rows}


def test_batch_with_a_class_map_model_equals_score(classmap_model_dirs, dapi, tmp_path) -> None:
    """2 workers, 256 px chunks: the same cells, classes and class counts as ``score``; an
    annotation over the whole panel gets the class counts too."""
    path = tmp_path / "dapi.png"
    Image.fromarray(dapi).save(path)
    model = ["--model", str(classmap_model_dirs[0]), "--device", "cpu", "--resolution", "40x"]
    assert main(["score", str(path), *model, "--out", str(tmp_path / "score")]) == 0
    height, width = dapi.shape[:2]
    folder = tmp_path / "annotations"
    folder.mkdir()
    (folder / "dapi.geojson").write_text(json.dumps({"type": "Feature", "properties": {"name": "all"}, "geometry": {
        "type": "Polygon", "coordinates": [[[0, 0], [width, 0], [width, height], [0, height], [0, 0]]]}}))
    assert main(["batch", str(path), *model, "--workers", "2", "--chunk-size", "256", "--annotations", str(folder),
                 "--out", str(tmp_path / "batch")]) == 0
    single = cell_rows(tmp_path / "score" / "dapi" / "cells.csv", counted_only=False)
    slide = cell_rows(tmp_path / "batch" / "dapi" / "cells.csv", counted_only=True)
    assert len(single) > 30 and slide == single
    assert set(single.values()) == {"negative", "positive"}
    ours = json.loads((tmp_path / "batch" / "dapi" / "score.json").read_text())
    theirs = json.loads((tmp_path / "score" / "dapi" / "score.json").read_text())
    jsonschema.validate(ours, SCORE_SCHEMA)
    assert ours["scoring"] == theirs["scoring"] and sum(ours["scoring"]["classes"].values()) == len(single)
    assert ours["regions"]["all"]["classes"] == theirs["scoring"]["classes"]
    features = json.loads((tmp_path / "batch" / "dapi" / "cells.geojson").read_text())["features"]
    assert sorted(f["properties"]["classification"] for f in features) == sorted(single.values())


def test_a_class_map_cut_into_small_windows_gives_one_passs_cells_and_classes(engine, dapi) -> None:
    """96 px cores with 8 px margins cut many cells: each merged cell has the class most of
    its pixels have, as one pass over the whole map gives it."""
    result = score_region(engine, dapi, resolution="40x")
    classes = result.images[CLASSES]
    one_pass = postprocess_pixels(ClassPixels.from_map(classes, engine.class_names, engine.positive_classes),
                                  resolution="40x")
    slide = find_slide_cells(ClassMap(classes, engine.class_names, engine.positive_classes),
                             settings=Settings("40x"), core=96, margin=8)
    assert slide.regrown > 0 and len(slide.table) == len(one_pass.table) > 30
    np.testing.assert_array_equal(slide.table.centroid, one_pass.table.centroid)
    np.testing.assert_array_equal(slide.table.cell_class, one_pass.table.cell_class)
    assert slide.scoring == one_pass.scoring and slide.scoring["size_thresh"] == 0


def test_batch_refuses_compartment_scoring_with_a_fluorescence_model(engine, dapi, tmp_path) -> None:
    from napari_deepliif.slides.run import score_slide

    path = tmp_path / "dapi.png"
    Image.fromarray(dapi).save(path)
    with pytest.raises(DeepLIIFError, match="fluorescence.*--compartment class"):
        score_slide(engine, path, tmp_path / "out", settings=Settings(compartment="nucleus"))
    assert not (tmp_path / "out").exists()
