"""A ``points`` model served over real HTTP on loopback: ``/api/score`` (upload) and
``/api/regions/score`` (a file) answer QuPath ``Point`` detections and the score record,
equal to what ``score --model DIR`` writes for the same pixels and settings."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from conftest import read_rgb
from PIL import Image
from test_server_support import client, png_bytes, running_server

from napari_deepliif.cli.main import main

SCORE_SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "docs" / "score.schema.json").read_text())


@pytest.fixture(scope="module")
def crop(shared_dir, tmp_path_factory) -> tuple[np.ndarray, Path]:
    """A 384 x 320 crop of the real IHC tile 22_2, and the PNG file holding it."""
    pixels = read_rgb(shared_dir / "data/ihc/22_2.png")[:320, :384]
    path = tmp_path_factory.mktemp("crop") / "crop.png"
    Image.fromarray(pixels).save(path)
    return pixels, path


def cli_points(model: Path, image: Path, out: Path, *options: str) -> tuple[dict, list[dict]]:
    """(score record, points.csv rows) of ``score --model`` on ``image``."""
    assert main(["score", "--model", str(model), "--device", "cpu", str(image), "--out", str(out), *options]) == 0
    folder = out / image.stem
    return json.loads((folder / "score.json").read_text()), list(csv.DictReader((folder / "points.csv").open()))


def assert_same_points(body: dict, rows: list[dict], record: dict) -> None:
    features = body["features"]
    assert {f["geometry"]["type"] for f in features} == {"Point"}
    assert {f["properties"]["objectType"] for f in features} == {"detection"}
    assert [f["geometry"]["coordinates"] for f in features] == [[float(r["x"]) + 0.5, float(r["y"]) + 0.5]
                                                                 for r in rows]
    assert [f["properties"]["classification"] for f in features] == [r["class"] for r in rows]
    assert body["score"]["scoring"] == record["scoring"]
    assert body["score"]["run"] == record["run"]
    jsonschema.validate(body["score"], SCORE_SCHEMA)
    jsonschema.validate(record, SCORE_SCHEMA)


def test_upload_and_file_region_answer_the_clis_points(points_model_dir, crop, tmp_path):
    pixels, path = crop
    record, rows = cli_points(points_model_dir, path, tmp_path / "default")
    strict, strict_rows = cli_points(points_model_dir, path, tmp_path / "strict", "--confidence", "0.5",
                                     "--min-distance-um", "5")
    region, region_rows = cli_points(points_model_dir, path, tmp_path / "roi", "--roi", "100,60,200,150")
    assert len(rows) > len(strict_rows) > 0 and 0 < len(region_rows) < len(rows)
    with running_server(tmp_path, "auto", model=points_model_dir, device="cpu") as handle, client(handle) as http:
        assert http.get("/api/health").json()["engine"] == "points"
        upload = http.post("/api/score", content=png_bytes(pixels), headers={"Content-Type": "image/png"},
                           params={"resolution": "40x"})
        strict_upload = http.post("/api/score", content=png_bytes(pixels), headers={"Content-Type": "image/png"},
                                  params={"resolution": "40x", "confidence": 0.5, "min_distance_um": 5})
        on_file = http.post("/api/regions/score", json={"image": str(path), "region": [100, 60, 200, 150]})
        strict_file = http.post("/api/regions/score", json={"image": str(path), "confidence": 0.5,
                                                            "min_distance_um": 5})
        too_low = http.post("/api/regions/score", json={"image": str(path), "confidence": 1.5})
    for answer in (upload, strict_upload, on_file, strict_file):
        assert answer.status_code == 200, answer.text
    assert_same_points(upload.json(), rows, record)
    assert upload.json()["score"]["scoring"]["num_total"] == len(rows)
    assert_same_points(strict_upload.json(), strict_rows, strict)
    assert_same_points(on_file.json(), region_rows, region)
    assert on_file.json()["score"]["placement"] == {**region["placement"], "image": str(path)}
    assert_same_points(strict_file.json(), strict_rows, strict)
    assert strict_file.json()["score"]["run"] == {"threshold": 0.5, "min_distance_um": pytest.approx(5.0)}
    assert too_low.status_code == 422


def test_a_region_with_an_roi_polygon_answers_the_clis_points_in_the_polygon(points_model_dir, crop, tmp_path):
    """QuPath sends an annotation's bounding box as ``region`` and its outline as ``roi``: the
    answer is the CLI's points of that rectangle whose position lies in the outline."""
    _, path = crop
    record, rows = cli_points(points_model_dir, path, tmp_path / "box", "--roi", "100,60,200,150")
    # A right triangle over the rectangle, in QuPath's pixel-edge coordinates: a point at
    # (x + 0.5, y + 0.5) is in it when it lies left of the hypotenuse (no point lies on it).
    triangle = [[100, 60], [300, 60], [100, 210], [100, 60]]
    kept = [r for r in rows if (float(r["x"]) + 0.5 - 100) / 200 + (float(r["y"]) + 0.5 - 60) / 150 < 1]
    assert 0 < len(kept) < len(rows)
    with running_server(tmp_path, "auto", model=points_model_dir, device="cpu") as handle, client(handle) as http:
        answer = http.post("/api/regions/score", json={"image": str(path), "region": [100, 60, 200, 150],
                                                       "roi": {"type": "Polygon", "coordinates": [triangle]}})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert [f["geometry"]["coordinates"] for f in body["features"]] == [[float(r["x"]) + 0.5, float(r["y"]) + 0.5]
                                                                         for r in kept]
    assert [f["properties"]["classification"] for f in body["features"]] == [r["class"] for r in kept]
    scoring = body["score"]["scoring"]
    positive = sum(r["positive"] == "true" for r in kept)
    assert (scoring["num_total"], scoring["num_pos"], scoring["num_neg"]) == (len(kept), positive, len(kept) - positive)
    assert scoring["classes"] == {name: sum(r["class"] == name for r in kept) for name in record["scoring"]["classes"]}
    assert scoring["positive_classes"] == record["scoring"]["positive_classes"] == ["positive"]
    assert body["score"]["placement"] == {**record["placement"], "image": str(path)}
    assert body["score"]["run"] == record["run"]
    jsonschema.validate(body["score"], SCORE_SCHEMA)
    jsonschema.validate(record, SCORE_SCHEMA)
