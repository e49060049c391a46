"""One image, one answer: the same pixels give the same cells through the region core, the
``score`` and ``batch`` commands and the server's region endpoint (real files, real HTTP).

The image is a mosaic of a real IHC image, mirror-tiled so that chunk and tile seams fall in
tissue; thresholds are explicit so that a region's cells can be compared with the whole
image's cells in that region.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import httpx
import numpy as np
import pytest
from conftest import read_rgb
from PIL import Image

from napari_deepliif.cells.postprocess import Settings
from napari_deepliif.cli.main import main
from napari_deepliif.engine.engines import load_engine
from napari_deepliif.regions.score import score_region
from napari_deepliif.server import ServerHandle

SETTINGS = Settings(size_thresh=40, size_thresh_upper=None, marker_thresh=None)
THRESHOLD_ARGS = ["--size-thresh", "40", "--resolution", "40x"]


@pytest.fixture(scope="module")
def mosaic(shared_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    tile = read_rgb(shared_dir / "data" / "ihc" / "ROI_1.png")[:700, :700]
    row = np.concatenate([tile, tile[:, ::-1]], axis=1)
    image = np.ascontiguousarray(np.concatenate([row, row[::-1]], axis=0)[:1300, :1300])
    path = tmp_path_factory.mktemp("mosaic") / "mosaic.png"
    Image.fromarray(image).save(path)
    return path, image


def counted_centroids(result) -> np.ndarray:
    """Counted cells' centroids (x, y) in image pixels, sorted."""
    post = result.post
    xy = post.table.centroid_xy[post.counted] + np.asarray(result.origin, float)
    return xy[np.lexsort((xy[:, 0], xy[:, 1]))]


def sorted_xy(xy: np.ndarray) -> np.ndarray:
    xy = np.asarray(xy, float).reshape(-1, 2)
    return xy[np.lexsort((xy[:, 0], xy[:, 1]))]


def in_box(xy: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    x, y, w, h = box
    return xy[(xy[:, 0] >= x - 0.5) & (xy[:, 0] < x + w - 0.5) & (xy[:, 1] >= y - 0.5) & (xy[:, 1] < y + h - 0.5)]


@pytest.fixture(scope="module")
def whole(mosaic) -> np.ndarray:
    _, image = mosaic
    return counted_centroids(score_region(load_engine("stain"), image, resolution="40x", settings=SETTINGS))


@pytest.mark.parametrize("box", [(300, 250, 600, 500), (308, 258, 600, 500)])
def test_a_region_gives_the_whole_images_cells_there_wherever_it_starts(mosaic, whole, box) -> None:
    _, image = mosaic
    result = score_region(load_engine("stain"), image, region=box, resolution="40x", settings=SETTINGS)
    assert len(whole) > 100
    np.testing.assert_allclose(counted_centroids(result), in_box(whole, box), atol=1e-6)


def test_a_region_on_the_model_grid_does_not_depend_on_its_origin(mosaic, fit_model_dir) -> None:
    _, image = mosaic
    engine = load_engine("deepliif", fit_model_dir, device="cpu")
    whole_fit = counted_centroids(score_region(engine, image, resolution="40x", settings=SETTINGS))
    for box in ((200, 200, 500, 400), (208, 200, 500, 400)):
        result = score_region(engine, image, region=box, resolution="40x", settings=SETTINGS)
        np.testing.assert_allclose(counted_centroids(result), in_box(whole_fit, box), atol=1e-6)


def test_score_batch_and_the_server_region_agree_cell_for_cell(mosaic, whole, tmp_path, monkeypatch) -> None:
    path, _ = mosaic
    assert main(["score", str(path), "--engine", "stain", "--out", str(tmp_path / "score"), *THRESHOLD_ARGS]) == 0
    with open(tmp_path / "score" / "mosaic" / "cells.csv", newline="") as handle:
        score_xy = sorted_xy([(float(r["centroid_x"]), float(r["centroid_y"])) for r in csv.DictReader(handle)])
    np.testing.assert_allclose(score_xy, whole, atol=1e-6)

    assert main(["batch", str(path), "--engine", "stain", "--no-tissue-mask", "--out", str(tmp_path / "batch"),
                 *THRESHOLD_ARGS]) == 0
    with open(tmp_path / "batch" / "mosaic" / "cells.csv", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["counted"] == "True"]
    np.testing.assert_allclose(sorted_xy([(float(r["centroid_x"]), float(r["centroid_y"])) for r in rows]), whole,
                               atol=1e-6)

    monkeypatch.setenv("NAPARI_DEEPLIIF_CONFIG_DIR", str(tmp_path / "config"))
    box = [308, 258, 600, 500]
    with ServerHandle.start("stain", host="127.0.0.1", port=0) as server:
        answer = httpx.post(f"{server.url}/api/regions/score", headers={"Authorization": f"Bearer {server.token}"},
                            json={"image": str(path), "region": box, "resolution": "40x", "size_thresh": 40},
                            timeout=300)
        missing = httpx.post(f"{server.url}/api/regions/score", headers={"Authorization": f"Bearer {server.token}"},
                             json={"image": str(tmp_path / "nothing.tif")}, timeout=60)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    centroids = []
    for feature in body["features"]:
        ring = np.asarray(feature["geometry"]["coordinates"][0], float)
        centroids.append(ring[:-1].mean(axis=0))
    assert body["score"]["scoring"]["num_total"] == len(body["features"]) == len(in_box(whole, tuple(box)))
    assert body["score"]["placement"]["downsample"] == 1.0
    # polygon vertex means are not centroids: match each cell to the nearest whole-image centroid
    expected = in_box(whole, tuple(box)) + 0.5  # pixel centres -> QuPath's pixel-edge coordinates
    nearest = np.min(np.linalg.norm(np.asarray(centroids)[:, None] - expected[None], axis=-1), axis=1)
    assert np.median(nearest) < 2.0
    assert missing.status_code == 422 and missing.json()["type"].endswith("/image-not-readable")


def test_a_batch_annotation_scores_as_the_same_region_does_everywhere(mosaic, tmp_path) -> None:
    """Default thresholds: an annotation's score in batch equals its region's score through the
    region core (which score --roi, the widget and the server use)."""
    path, image = mosaic
    box = (308, 258, 600, 500)
    x, y, w, h = box
    annotation = {"type": "Feature", "properties": {"name": "tumour"},
                  "geometry": {"type": "Polygon",
                               "coordinates": [[[x, y], [x + w, y], [x + w, y + h], [x, y + h], [x, y]]]}}
    folder = tmp_path / "annotations"
    folder.mkdir()
    (folder / "mosaic.geojson").write_text(json.dumps(annotation))
    assert main(["batch", str(path), "--engine", "stain", "--no-tissue-mask", "--annotations", str(folder),
                 "--resolution", "40x", "--marker-thresh", "default", "--out", str(tmp_path / "batch")]) == 0
    record = json.loads((tmp_path / "batch" / "mosaic" / "score.json").read_text())
    region = score_region(load_engine("stain"), image, region=box, resolution="40x",
                          settings=Settings(marker_thresh="default"))
    got = record["regions"]["tumour"]
    assert {k: got[k] for k in ("num_total", "num_pos", "num_neg", "percent_pos")} == \
        {k: region.scoring[k] for k in ("num_total", "num_pos", "num_neg", "percent_pos")}
    # the region's own default marker threshold (113) differs from the whole mosaic's (111)
    whole = score_region(load_engine("stain"), image, resolution="40x", settings=Settings(marker_thresh="default"))
    assert region.scoring["num_total"] > 50 and region.scoring["marker_thresh"] != whole.scoring["marker_thresh"]
