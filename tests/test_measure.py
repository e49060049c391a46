"""Per-cell stain measurements and compartment scoring: synthetic cells painted with known
optical densities (Beer-Lambert from the HED stain vectors), then a real tile through the
region core, the CLI and the server."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.color import rgb_from_hed
from test_server_support import client, png_bytes, running_server

from napari_deepliif.cells import measure
from napari_deepliif.cells.postprocess import Settings, postprocess
from napari_deepliif.cli.main import main
from napari_deepliif.engine.engines import load_engine
from napari_deepliif.errors import InputImageError
from napari_deepliif.io.image_input import read_image
from napari_deepliif.regions.score import score_region
from napari_deepliif.slides.tissue import levels_tissue

SCORE_SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "docs" / "score.schema.json").read_text())
MPP = 0.25


def paint(hematoxylin: np.ndarray, dab: np.ndarray) -> np.ndarray:
    """RGB pixels whose stain ODs are ``hematoxylin`` and ``dab`` (Beer-Lambert, HED vectors)."""
    od = np.stack([hematoxylin, np.zeros_like(hematoxylin), dab], axis=-1) @ rgb_from_hed
    return np.clip(np.rint(255 * 10.0 ** -od), 0, 255).astype(np.uint8)


def radius(shape: tuple[int, int], centre: tuple[float, float]) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return np.hypot(yy - centre[0], xx - centre[1])


@pytest.fixture(scope="module")
def one_cell():
    """A nucleus of radius 10 px (H 0.5, DAB 0.3 OD) in a cytoplasm of DAB 0.1 OD whose outer
    part, from 13 px out, is a membrane of DAB 0.8 OD."""
    r = radius((80, 80), (40, 40))
    nucleus = r <= 10
    dab = np.select([nucleus, r <= 13], [0.3, 0.1], 0.8)
    return nucleus.astype(np.uint32), paint(np.where(nucleus, 0.5, 0.0), dab), dab


def test_nucleus_measurements_are_the_painted_densities(one_cell):
    labels, rgb, _ = one_cell
    m = measure.measure_cells(labels, rgb, MPP, expansion_um=0)
    assert m.columns[measure.NUCLEUS_AREA][0] == pytest.approx(labels.sum() * MPP**2)
    assert m.columns[measure.NUCLEUS_DAB_MEAN][0] == pytest.approx(0.3, abs=0.01)
    assert m.columns[measure.NUCLEUS_DAB_MAX][0] == pytest.approx(0.3, abs=0.01)
    assert m.columns[measure.NUCLEUS_HEMATOXYLIN_MEAN][0] == pytest.approx(0.5, abs=0.01)
    assert measure.CELL_DAB_MEAN not in m.columns and np.isnan(m.completeness(0.2)).all()
    with pytest.raises(InputImageError, match="expansion_um"):
        m.dab("membrane")


def test_expanded_compartments_have_the_painted_densities(one_cell):
    labels, rgb, dab = one_cell
    # 1.5 um = 6 px: the cell is the disc of radius 16; a 0.5 um (2 px) ring lies in the membrane
    m = measure.measure_cells(labels, rgb, MPP, expansion_um=1.5, membrane_um=0.5)
    cell = ndi.distance_transform_edt(labels == 0) <= 6  # independent of expand_labels
    cytoplasm = cell & (labels == 0)
    assert m.columns[measure.CELL_AREA][0] == pytest.approx(cell.sum() * MPP**2)
    assert m.columns[measure.CELL_DAB_MEAN][0] == pytest.approx(dab[cell].mean(), abs=0.01)
    assert m.columns[measure.CYTOPLASM_DAB_MEAN][0] == pytest.approx(dab[cytoplasm].mean(), abs=0.01)
    assert m.columns[measure.MEMBRANE_DAB_MEAN][0] == pytest.approx(0.8, abs=0.01)
    assert m.completeness(0.5)[0] == 1.0 and m.completeness(0.9)[0] == 0.0
    assert 0.1 < m.columns[measure.CYTOPLASM_DAB_MEAN][0] < 0.8


def test_expansion_stops_where_neighbours_meet():
    """Two nuclei 31 px apart, expanded by 12 px: each stops at the midline (x = 55.5), so
    the left cell's cytoplasm holds only the DAB painted left of it and the right's none."""
    shape = (80, 110)
    left, right = radius(shape, (40, 40)) <= 8, radius(shape, (40, 71)) <= 8
    labels = left.astype(np.uint32) + 2 * right.astype(np.uint32)
    xx = np.mgrid[: shape[0], : shape[1]][1]
    dab = np.where(labels > 0, 0.0, np.where(xx <= 55, 0.6, 0.0))
    m = measure.measure_cells(labels, paint(np.zeros(shape), dab), MPP, expansion_um=3.0, membrane_um=0.25)
    area = m.columns[measure.CELL_AREA]
    assert area[0] == pytest.approx(area[1])
    assert area[0] < (np.pi * 20**2) * MPP**2 * 0.95  # smaller than an unhindered expansion
    assert m.columns[measure.CYTOPLASM_DAB_MEAN] == pytest.approx([0.6, 0.0], abs=0.01)
    # each cell has a membrane on the shared border: the left's is stained, the right's not
    assert m.columns[measure.MEMBRANE_DAB_MEAN] == pytest.approx([0.6, 0.0], abs=0.01)
    assert m.completeness(0.3).tolist() == [1.0, 0.0]


def seg_of(labels: np.ndarray) -> np.ndarray:
    """A Seg map whose cells are ``labels``' (all negative: blue)."""
    seg = np.zeros((*labels.shape, 3), np.uint8)
    seg[labels > 0, 2] = 255
    return seg


def test_compartment_modes_rescore_from_the_table(one_cell):
    labels, rgb, _ = one_cell
    post = postprocess(seg_of(labels), image=rgb, size_thresh=0, expansion_um=1.5, membrane_um=0.5)
    assert post.scoring["num_pos"] == 0 and "compartment" not in post.scoring  # the Seg class: negative
    nucleus = post.rescore(compartment="nucleus")
    assert nucleus.scoring["num_pos"] == 1 and nucleus.scoring["compartment"] == "nucleus"
    assert post.rescore(compartment="nucleus", positive_od=0.35).scoring["num_pos"] == 0
    membrane = post.rescore(compartment="membrane", positive_od=0.5, bins_od=(0.6, 0.7))
    assert membrane.scoring["num_pos"] == 1 and membrane.scoring["num_3plus"] == 1
    assert membrane.scoring["h_score"] == 300
    assert membrane.rescore(min_completeness=1.0).scoring["num_pos"] == 1
    assert membrane.rescore(positive_od=0.79, bins_od=None, min_completeness=0.5).scoring["num_pos"] == 1
    assert membrane.rescore(positive_od=0.81, bins_od=None).scoring["num_pos"] == 0
    assert membrane.rescore(compartment="class", bins_od=None).scoring == post.scoring


def test_bad_compartment_settings_say_what_to_do(one_cell):
    labels, rgb, _ = one_cell
    with pytest.raises(InputImageError, match="IHC image"):
        postprocess(seg_of(labels), compartment="nucleus")
    post = postprocess(seg_of(labels), image=rgb)
    assert post.measurements is not None and postprocess(seg_of(labels)).measurements is None
    with pytest.raises(InputImageError, match="expansion_um above 0"):
        post.rescore(compartment="membrane", expansion_um=0)
    with pytest.raises(InputImageError, match="choose a compartment"):
        post.rescore(bins_od=(0.4, 0.6))
    with pytest.raises(InputImageError, match="positive_od"):
        post.rescore(compartment="cell", bins_od=(0.1, 0.6))
    with pytest.raises(InputImageError, match="compartment must be one of"):
        post.rescore(compartment="nuclear")
    with pytest.raises(InputImageError, match="same pixels"):
        postprocess(seg_of(labels), image=rgb[:40])


# ---- a real tile through every front end ---------------------------------------------------

@pytest.fixture(scope="module")
def roi_1(shared_dir):
    path = shared_dir / "data" / "ihc" / "ROI_1.png"
    return path, read_image(path)


@pytest.fixture(scope="module")
def stain():
    return load_engine("stain")


REGION = (100, 80, 400, 300)
MEMBRANE = {"compartment": "membrane", "positive_od": 0.3, "bins_od": (0.4, 0.6), "min_completeness": 0.5}


def test_a_real_tile_scored_on_compartments(roi_1, stain):
    _, image = roi_1
    result = score_region(stain, image, region=REGION, resolution="40x")
    measured = result.post.measurements
    members = result.post.members
    nucleus = result.post.table.positive  # the stain engine: mean nuclear DAB OD > 0.2
    assert (measured.dab("nucleus")[members] > 0.2).sum() == pytest.approx(nucleus[members].sum(), abs=2)
    by_nucleus = result.rescore(compartment="nucleus")
    assert abs(by_nucleus.scoring["num_pos"] - result.scoring["num_pos"]) <= 2
    membrane = result.rescore(**MEMBRANE)
    counted = membrane.post.counted
    expected = (measured.dab("membrane") > 0.3) & (measured.completeness(0.3) >= 0.5)
    assert membrane.scoring["num_pos"] == int((expected & counted).sum())
    assert membrane.scoring["num_total"] == result.scoring["num_total"]
    assert membrane.scoring["num_1plus"] + membrane.scoring["num_2plus"] + membrane.scoring["num_3plus"] \
        == membrane.scoring["num_pos"]
    lower = result.rescore(**{**MEMBRANE, "positive_od": 0.15, "bins_od": None})
    assert lower.scoring["num_pos"] >= membrane.scoring["num_pos"]
    record = membrane.record(image="ROI_1")
    jsonschema.validate(record, SCORE_SCHEMA)
    assert record["scoring"]["compartment"] == "membrane" and record["scoring"]["bins_od"] == [0.4, 0.6]
    assert record["scoring"]["h_score"] == membrane.scoring["h_score"]


def test_cli_and_server_give_the_same_compartment_score(roi_1, tmp_path, monkeypatch):
    path, _ = roi_1
    monkeypatch.setenv("NAPARI_DEEPLIIF_CONFIG_DIR", str(tmp_path / "config"))
    x, y, w, h = REGION
    assert main(["score", str(path), "--engine", "stain", "--resolution", "40x", "--roi", f"{x},{y},{w},{h}",
                 "--compartment", "membrane", "--positive-od", "0.3", "--bins-od", "0.4,0.6",
                 "--min-completeness", "0.5", "--out", str(tmp_path / "out")]) == 0
    folder = tmp_path / "out" / "ROI_1"
    record = json.loads((folder / "score.json").read_text())
    jsonschema.validate(record, SCORE_SCHEMA)
    assert record["scoring"]["compartment"] == "membrane" and "h_score" in record["scoring"]
    with open(folder / "cells.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == record["scoring"]["num_total"]
    assert sum(r["class"] == "Positive" for r in rows) == record["scoring"]["num_pos"]
    assert all(float(r[measure.MEMBRANE_DAB_MEAN]) > 0.3 and float(r[measure.MEMBRANE_COMPLETENESS]) >= 0.5
               for r in rows if r["class"] == "Positive")
    features = json.loads((folder / "cells.geojson").read_text())["features"]
    names = set(features[0]["properties"]["measurements"])
    assert {measure.NUCLEUS_DAB_MEAN, measure.NUCLEUS_AREA, measure.CYTOPLASM_DAB_MEAN,
            measure.MEMBRANE_COMPLETENESS} <= names

    with running_server(tmp_path / "config", "stain") as server, client(server) as http:
        body = {"image": str(path), "region": list(REGION), "resolution": "40x",
                **MEMBRANE, "bins_od": list(MEMBRANE["bins_od"])}
        answer = http.post("/api/regions/score", json=body)
        assert answer.status_code == 200, answer.text
        assert answer.json()["score"]["scoring"] == record["scoring"]
        served = {f["properties"]["measurements"]["Cell id"]: f["properties"]["measurements"]
                  for f in answer.json()["features"]}
        for row in rows:
            assert served[int(row["id"])][measure.MEMBRANE_DAB_MEAN] == pytest.approx(float(row[measure.MEMBRANE_DAB_MEAN]))
        bad = http.post("/api/regions/score", json={**body, "compartment": "cell", "expansion_um": 0})
        assert bad.status_code == 422 and "expansion_um" in bad.json()["detail"]

        # uploaded pixels: the same settings as query parameters give the region core's score
        crop = np.ascontiguousarray(read_image(path)[y : y + h, x : x + w])
        params = [("resolution", "40x"), ("compartment", "cell"), ("positive_od", "0.25"),
                  ("bins_od", "0.4"), ("bins_od", "0.6"), ("expansion_um", "3")]
        uploaded = http.post("/api/score", content=png_bytes(crop), headers={"Content-Type": "image/png"},
                             params=params)
        assert uploaded.status_code == 200, uploaded.text
        settings = Settings(compartment="cell", positive_od=0.25, bins_od=(0.4, 0.6), expansion_um=3.0)
        core = score_region(load_engine("stain"), crop, resolution="40x", settings=settings,
                            include=levels_tissue([crop], 0, "40x"))
        assert uploaded.json()["score"]["scoring"] == core.record(image=None)["scoring"]


def test_cli_postprocess_scores_a_compartment_on_the_original_image(shared_dir, tmp_path):
    case = shared_dir / "fixtures" / "postprocess" / "deepliif2021_22_2"
    out = tmp_path / "out"
    assert main(["postprocess", str(case / "orig.png"), "--seg", str(case / "seg.png"), "--resolution", "40x",
                 "--compartment", "nucleus", "--bins-od", "0.4,0.6", "--out", str(out)]) == 0
    record = json.loads((out / "orig" / "score.json").read_text())
    jsonschema.validate(record, SCORE_SCHEMA)
    expected = postprocess(read_image(case / "seg.png"), image=read_image(case / "orig.png"),
                           compartment="nucleus", bins_od=(0.4, 0.6)).scoring
    assert record["scoring"] == {**expected, "bins_od": [0.4, 0.6]}
    with open(out / "orig" / "cells.csv", newline="", encoding="utf-8") as handle:
        positive = [float(r[measure.NUCLEUS_DAB_MEAN]) for r in csv.DictReader(handle) if r["class"] == "Positive"]
    assert len(positive) == record["scoring"]["num_pos"] and min(positive) > 0.2
