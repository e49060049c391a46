"""Whole slides scored on a compartment: ``batch`` measures each cell as ``score`` does on the
same pixels (a cell on a window seam included) and scores it the same way."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from test_consistency import THRESHOLD_ARGS, mosaic  # noqa: F401 (a fixture)

from napari_deepliif.cells.measure import (
    MEMBRANE_COMPLETENESS,
    MEMBRANE_DAB_MEAN,
    NUCLEUS_DAB_MEAN,
)
from napari_deepliif.cells.postprocess import Settings, postprocess
from napari_deepliif.cli.main import main
from napari_deepliif.engine.engines import load_engine
from napari_deepliif.errors import InputImageError
from napari_deepliif.regions.score import score_region
from napari_deepliif.slides.cells import find_slide_cells
from napari_deepliif.slides.measurements import Measuring

MEMBRANE_ARGS = ["--compartment", "membrane", "--positive-od", "0.15", "--bins-od", "0.3,0.5",
                 "--min-completeness", "0.3", "--expansion-um", "4", "--membrane-um", "1"]
SCORE_KEYS = ("num_total", "num_pos", "num_neg", "percent_pos", "size_thresh", "marker_thresh", "compartment",
              "positive_od", "bins_od", "min_completeness", "expansion_um", "membrane_um", "num_1plus",
              "num_2plus", "num_3plus", "h_score")


def read_rows(path: Path, counted_only: bool = False) -> dict[tuple[str, str], dict]:
    """CSV rows keyed by centroid (as written)."""
    with open(path, newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if not counted_only or r["counted"] == "True"]
    return {(r["centroid_x"], r["centroid_y"]): r for r in rows}


def test_batch_in_membrane_mode_measures_and_scores_as_score(mosaic, tmp_path) -> None:  # noqa: F811
    """2 workers, 384 px chunks: the cells, their classes and every measurement column of
    ``batch`` are those of ``score`` on the same image; so are score.json's compartment keys."""
    path, image = mosaic
    x, y, w, h = box = (308, 258, 600, 500)
    folder = tmp_path / "annotations"
    folder.mkdir()
    (folder / "mosaic.geojson").write_text(json.dumps({"type": "Feature", "properties": {"name": "tumour"},
                                                       "geometry": {"type": "Polygon", "coordinates": [
                                                           [[x, y], [x + w, y], [x + w, y + h], [x, y + h], [x, y]]]}}))
    assert main(["score", str(path), "--engine", "stain", "--out", str(tmp_path / "score"), *THRESHOLD_ARGS,
                 *MEMBRANE_ARGS]) == 0
    assert main(["batch", str(path), "--engine", "stain", "--workers", "2", "--chunk-size", "384",
                 "--annotations", str(folder), "--out", str(tmp_path / "batch"), *THRESHOLD_ARGS,
                 *MEMBRANE_ARGS]) == 0
    single = read_rows(tmp_path / "score" / "mosaic" / "cells.csv")
    slide = read_rows(tmp_path / "batch" / "mosaic" / "cells.csv", counted_only=True)
    assert len(single) > 100 and single.keys() == slide.keys()
    columns = [c for c in next(iter(single.values())) if ":" in c]
    assert MEMBRANE_DAB_MEAN in columns and MEMBRANE_COMPLETENESS in columns
    for key, row in single.items():
        assert slide[key]["class"] == row["class"], key
        assert {c: slide[key][c] for c in columns} == {c: row[c] for c in columns}, key
    assert {r["class"] for r in single.values()} == {"Positive", "Negative"}
    record = json.loads((tmp_path / "batch" / "mosaic" / "score.json").read_text())
    ours = record["scoring"]
    theirs = json.loads((tmp_path / "score" / "mosaic" / "score.json").read_text())["scoring"]
    assert {k: ours[k] for k in SCORE_KEYS} == {k: theirs[k] for k in SCORE_KEYS}
    assert ours["compartment"] == "membrane" and 0 < ours["num_pos"] < ours["num_total"]
    # the annotation is scored on the membrane as the region core scores that region
    settings = Settings(size_thresh=40, compartment="membrane", positive_od=0.15, bins_od=(0.3, 0.5),
                        min_completeness=0.3, expansion_um=4.0)
    region = score_region(load_engine("stain"), image, region=box, resolution="40x", settings=settings).scoring
    keys = ("num_total", "num_pos", "num_neg", "percent_pos", "num_1plus", "num_2plus", "num_3plus", "h_score")
    assert {k: record["regions"]["tumour"][k] for k in keys} == {k: region[k] for k in keys}
    assert region["num_total"] > 50
    features = json.loads((tmp_path / "batch" / "mosaic" / "cells.geojson").read_text())["features"]
    measured = [f["properties"]["measurements"] for f in features if f["properties"]["measurements"]["Counted"]]
    assert len(measured) == len(single)
    assert sorted(m[NUCLEUS_DAB_MEAN] for m in measured) == sorted(float(r[NUCLEUS_DAB_MEAN]) for r in single.values())


def test_a_cell_on_a_window_seam_is_measured_as_in_one_pass(mosaic) -> None:  # noqa: F811
    """Small windows (96 px cores, 8 px margins) cut the mosaic's cells and their neighbourhoods
    everywhere: every cell's measurements still equal one pass over the whole image."""
    _, image = mosaic
    image = image[:400, :400]
    result = score_region(load_engine("stain"), image, resolution="40x", settings=Settings(size_thresh=0))
    seg, marker = result.images["Seg"], result.images["Marker"]
    one_pass = postprocess(seg, marker, image=image, resolution="40x", size_thresh=0, compartment="membrane")
    measuring = Measuring(image, 0.25, 5.0, 1.0, 0.2)
    settings = Settings(resolution="40x", size_thresh=0, compartment="membrane")
    slide = find_slide_cells(seg, marker, settings=settings, core=96, margin=8, measuring=measuring)
    assert slide.regrown > 0 and len(slide.table) == len(one_pass.table) > 100
    np.testing.assert_array_equal(slide.table.centroid, one_pass.table.centroid)
    expected = one_pass.measurement_columns()
    assert slide.measurement_columns().keys() == expected.keys()
    for name, values in expected.items():
        np.testing.assert_allclose(slide.measurements[name], values, rtol=0, atol=1e-6, err_msg=name)
    np.testing.assert_array_equal(slide.positive, one_pass.positive)
    assert slide.scoring["num_pos"] == one_pass.scoring["num_pos"] > 0


def test_compartment_scoring_without_the_image_says_what_to_pass() -> None:
    seg = np.zeros((64, 64, 3), np.uint8)
    with pytest.raises(InputImageError, match="measuring="):
        find_slide_cells(seg, settings=Settings(compartment="nucleus"))
