"""Whole slides with a ``points`` model: ``batch`` finds the points ``score --model`` finds on the
same level of a pyramidal slide (positions, classes, confidences), with chunk and window seams
running through detections, scores annotations by the ROI rule of every front end, and skips a
slide already scored (the fixture model of tests/points_fixture.py on the real IHC tile 22_2)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from conftest import read_rgb
from test_slides import write_ome_tiff

from napari_deepliif.cells.detections import detect_points, find_candidates
from napari_deepliif.cells.scoring import in_polygons
from napari_deepliif.cli.main import main
from napari_deepliif.engine.engines import load_engine
from napari_deepliif.engine.points import HEATMAP
from napari_deepliif.slides.points import slide_points
from napari_deepliif.slides.run import STORE_NAME, score_slide

SCORE_SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "docs" / "score.schema.json").read_text())
#: A triangle annotation in level-0 pixel-edge coordinates (QuPath's), across the chunk seams.
TRIANGLE = [[40, 30], [480, 200], [150, 470], [40, 30]]


@pytest.fixture(scope="module")
def slide(shared_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tile 22_2 (512 x 512, 0.25 µm/px) as a two-level pyramidal OME-TIFF."""
    pixels = read_rgb(shared_dir / "data/ihc/22_2.png")
    return write_ome_tiff(tmp_path_factory.mktemp("slide") / "tile.ome.tif", pixels, 0.25, levels=2)


def point_rows(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def near_seam(xy: np.ndarray, step: int, reach: float) -> np.ndarray:
    """Which points lie within ``reach`` pixels of a seam of a ``step`` px grid."""
    off = (xy + 0.5) % step  # seams lie at pixel edges, k * step - 0.5 in pixel-centre coordinates
    return (np.minimum(off, step - off) <= reach).any(axis=1)


def test_batch_with_a_points_model_equals_score(points_model_dir, slide, tmp_path) -> None:
    """2 workers, 256 px chunks (one tile each): the points, their classes and confidences and
    the score are ``score --model``'s; a triangle annotation counts the points in it; a rerun
    with the same request is skipped, one with another selection reuses the heat maps."""
    model = ["--model", str(points_model_dir), "--device", "cpu"]
    assert main(["score", str(slide), *model, "--out", str(tmp_path / "score")]) == 0
    folder = tmp_path / "annotations"
    folder.mkdir()
    (folder / "tile.geojson").write_text(json.dumps({"type": "Feature", "properties": {"name": "triangle"},
                                                     "geometry": {"type": "Polygon", "coordinates": [TRIANGLE]}}))
    batch = ["batch", str(slide), *model, "--workers", "2", "--chunk-size", "256", "--annotations", str(folder),
             "--out", str(tmp_path / "batch")]
    assert main(batch) == 0
    single = point_rows(tmp_path / "score" / "tile" / "points.csv")
    ours = point_rows(tmp_path / "batch" / "tile" / "points.csv")
    assert len(single) > 100 and ours == single
    xy = np.array([(float(r["x"]), float(r["y"])) for r in single])
    # the fixture card's distance (3 µm = 12 px) reaches across the chunk seams at 256 px for several points
    assert near_seam(xy, 256, 12).sum() >= 5
    assert {r["class"] for r in single} == {"positive", "negative"}

    record = json.loads((tmp_path / "batch" / "tile" / "score.json").read_text())
    theirs = json.loads((tmp_path / "score" / "tile" / "score.json").read_text())
    jsonschema.validate(record, SCORE_SCHEMA)
    assert record["scoring"] == theirs["scoring"] and record["scoring"]["num_total"] == len(single)
    assert record["run"]["threshold"] == theirs["run"]["threshold"] == 0.3
    assert record["run"]["min_distance_um"] == theirs["run"]["min_distance_um"]
    assert record["placement"]["mpp"] == theirs["placement"]["mpp"] == 0.25
    inside = [r for r, hit in zip(single, in_polygons(xy + 0.5, [(np.array(TRIANGLE, float), [])])) if hit]
    positive = sum(r["positive"] == "true" for r in inside)
    region = record["regions"]["triangle"]
    assert 0 < len(inside) < len(single)
    assert (region["num_total"], region["num_pos"], region["num_neg"]) == (len(inside), positive, len(inside) - positive)
    assert region["classes"] == {name: sum(r["class"] == name for r in inside) for name in ("positive", "negative")}
    features = json.loads((tmp_path / "batch" / "tile" / "points.geojson").read_text())["features"]
    theirs_features = json.loads((tmp_path / "score" / "tile" / "points.geojson").read_text())["features"]
    assert [(f["geometry"], f["properties"]) for f in features] == [(f["geometry"], f["properties"])
                                                                    for f in theirs_features]

    assert main(batch) == 0
    summary = point_rows(tmp_path / "batch" / "summary.csv")
    assert [(r["status"], r["skipped"], r["num_total"]) for r in summary] == [("done", "True", str(len(single)))]

    # another selection is another request: the points are selected again from the stored heat maps
    strict = ["--confidence", "0.5", "--min-distance-um", "5"]
    assert main(["score", str(slide), *model, *strict, "--out", str(tmp_path / "strict")]) == 0
    assert main([*batch, *strict]) == 0
    strict_rows = point_rows(tmp_path / "batch" / "tile" / "points.csv")
    assert strict_rows == point_rows(tmp_path / "strict" / "tile" / "points.csv") and 0 < len(strict_rows) < len(single)
    again = json.loads((tmp_path / "batch" / "tile" / "score.json").read_text())
    assert again["run"]["chunks_resumed"] > 0 and again["run"]["tiles_run"] == 0
    assert again["run"]["min_distance_um"] == pytest.approx(5.0)


def test_window_seams_do_not_change_the_points(points_model_dir, slide, tmp_path) -> None:
    """Candidates found in 64 px windows (1 px halo) are those of the whole heat map, and the
    selection over them gives one pass's points, many of them at a window seam."""
    engine = load_engine("auto", points_model_dir, device="cpu")
    record = score_slide(engine, slide, tmp_path / "out", chunk_size=256)
    store = tmp_path / "out" / STORE_NAME
    import zarr

    whole = engine.heatmaps({HEATMAP: np.moveaxis(np.asarray(zarr.open_group(str(store), mode="r")[HEATMAP]["0"]),
                                                  0, -1)})
    card = engine.card
    distance = card.min_distance_um / 0.25
    one_pass = detect_points(whole, card.class_names, card.positive_classes, threshold=card.threshold,
                             min_distance=distance)
    windowed = slide_points(store, engine, mpp=0.25, threshold=card.threshold, min_distance=distance, core=64)
    candidates = find_candidates(whole, card.class_names, card.positive_classes, floor=0.05)
    np.testing.assert_array_equal(windowed.candidates.xy, candidates.xy)
    np.testing.assert_array_equal(windowed.candidates.cls, candidates.cls)
    np.testing.assert_array_equal(windowed.candidates.confidence, candidates.confidence)
    np.testing.assert_array_equal(windowed.xy, one_pass.xy)
    np.testing.assert_array_equal(windowed.cls, one_pass.cls)
    assert record["scoring"]["num_total"] == len(one_pass.index) > 100
    assert near_seam(windowed.xy, 64, 1).sum() >= 10
