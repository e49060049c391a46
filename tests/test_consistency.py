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
import jsonschema
import numpy as np
import pytest
import shapely.geometry
from conftest import read_rgb
from PIL import Image
from test_widget import widget  # noqa: F401 (a fixture)

from napari_deepliif.cells.postprocess import Settings
from napari_deepliif.cli.main import main
from napari_deepliif.engine.engines import load_engine
from napari_deepliif.regions.score import score_region
from napari_deepliif.server import ServerHandle
from napari_deepliif.slides.tissue import levels_tissue

SETTINGS = Settings(size_thresh=40, size_thresh_upper=None, marker_thresh=None)
THRESHOLD_ARGS = ["--size-thresh", "40", "--resolution", "40x"]
SCORE_SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "docs" / "score.schema.json").read_text())


def mirror_mosaic(tile: np.ndarray, size: int) -> np.ndarray:
    """``tile`` and its mirror images, 2 x 2, cropped to ``size`` x ``size``: an image larger
    than ``tile`` that is tissue everywhere, so seams at any place fall in cells."""
    row = np.concatenate([tile, tile[:, ::-1]], axis=1)
    return np.ascontiguousarray(np.concatenate([row, row[::-1]], axis=0)[:size, :size])


@pytest.fixture(scope="module")
def mosaic(shared_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    image = mirror_mosaic(read_rgb(shared_dir / "data" / "ihc" / "ROI_1.png")[:700, :700], 1300)
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


@pytest.mark.parametrize("engine", ["stain", "fixture"])
def test_score_batch_and_the_server_region_agree_cell_for_cell(mosaic, fit_model_dir, engine, tmp_path,
                                                                monkeypatch) -> None:
    path, image = mosaic
    args = ["--engine", "stain"] if engine == "stain" else ["--engine", "deepliif", "--model", str(fit_model_dir)]
    loaded = load_engine("stain") if engine == "stain" else load_engine("deepliif", fit_model_dir, device="cpu")
    whole = counted_centroids(score_region(loaded, image, resolution="40x", settings=SETTINGS))
    assert len(whole) > 50

    assert main(["score", str(path), *args, "--out", str(tmp_path / "score"), *THRESHOLD_ARGS]) == 0
    with open(tmp_path / "score" / "mosaic" / "cells.csv", newline="") as handle:
        score_xy = sorted_xy([(float(r["centroid_x"]), float(r["centroid_y"])) for r in csv.DictReader(handle)])
    np.testing.assert_allclose(score_xy, whole, atol=1e-6)

    # batch over two workers (two copies, one per worker): chunk seams at 2048 px fall in the
    # cells of the copies scored with 512 px chunks
    copy = tmp_path / "copy.png"
    copy.write_bytes(path.read_bytes())
    assert main(["batch", str(path), str(copy), *args, "--workers", "2", "--chunk-size", "512",
                 "--out", str(tmp_path / "batch"), *THRESHOLD_ARGS]) == 0
    for name in ("mosaic", "copy"):
        with open(tmp_path / "batch" / name / "cells.csv", newline="") as handle:
            rows = [r for r in csv.DictReader(handle) if r["counted"] == "True"]
        np.testing.assert_allclose(sorted_xy([(float(r["centroid_x"]), float(r["centroid_y"])) for r in rows]),
                                   whole, atol=1e-6, err_msg=name)

    monkeypatch.setenv("NAPARI_DEEPLIIF_CONFIG_DIR", str(tmp_path / "config"))
    box = [308, 258, 600, 500]
    server_args = {"engine": "stain"} if engine == "stain" else {"engine": "deepliif", "model": fit_model_dir,
                                                                   "device": "cpu"}
    with ServerHandle.start(host="127.0.0.1", port=0, **server_args) as server:
        headers = {"Authorization": f"Bearer {server.token}"}
        answer = httpx.post(f"{server.url}/api/regions/score", headers=headers,
                            json={"image": str(path), "region": box, "resolution": "40x", "size_thresh": 40},
                            timeout=300)
        missing = httpx.post(f"{server.url}/api/regions/score", headers=headers,
                             json={"image": str(tmp_path / "nothing.tif")}, timeout=60)
        beyond = httpx.post(f"{server.url}/api/regions/score", headers=headers,
                            json={"image": str(path), "region": [5000, 0, 100, 100]}, timeout=60)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    jsonschema.validate(body["score"], SCORE_SCHEMA)
    expected = in_box(whole, tuple(box))
    assert body["score"]["scoring"]["num_total"] == len(body["features"]) == len(expected)
    assert body["score"]["placement"]["downsample"] == 1.0 and body["score"]["placement"]["region"] == box
    # each polygon holds the whole image's cell at that place: its area-weighted centroid
    # (pixel-edge coordinates) is the table centroid + 0.5
    centroids = sorted_xy([np.asarray(shapely.geometry.shape(f["geometry"]).centroid.coords[0]) - 0.5
                           for f in body["features"]])
    np.testing.assert_allclose(centroids, expected, atol=1e-6)
    assert missing.status_code == 422 and missing.json()["type"].endswith("/image-not-readable")
    assert beyond.status_code == 422 and "lies outside the" in beyond.json()["detail"]


def test_what_the_tissue_mask_leaves_out_does_not_depend_on_the_chunks(mosaic) -> None:
    """The stain engine asks the tissue mask about squares of the tile size on the image's
    grid, not about its chunks: 256 px and 1024 px chunks give the same cells."""
    _, image = mosaic
    include = levels_tissue([image], 0, "40x")
    engine = load_engine("stain")
    by_chunks = [counted_centroids(score_region(engine, image, resolution="40x", settings=SETTINGS,
                                                include=include, chunk_size=size)) for size in (256, 1024)]
    assert len(by_chunks[1]) > 50
    np.testing.assert_array_equal(by_chunks[0], by_chunks[1])


@pytest.fixture(scope="module")
def whole_by_engine(mosaic, fit_model_dir) -> dict[str, np.ndarray]:
    """The whole mosaic's counted cells, per engine (the stain engine, the fixture model)."""
    _, image = mosaic
    engines = {"stain": load_engine("stain"), "fixture": load_engine("deepliif", fit_model_dir, device="cpu")}
    return {name: counted_centroids(score_region(engine, image, resolution="40x", settings=SETTINGS))
            for name, engine in engines.items()}


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_one_slide_over_several_workers_gives_the_cells_of_one_pass(mosaic, fit_model_dir, whole_by_engine,
                                                                      workers, tmp_path) -> None:
    """``batch`` spreads the mosaic's chunks over 1, 2 or 3 worker processes: 384 px chunks for
    the stain engine, one 512 px tile each for the model (seams through cells, several chunks
    per storage file); the cells are the whole image's, cell for cell. The tissue mask is on:
    what it leaves out must not depend on the chunks."""
    path, _ = mosaic
    for engine, args in (("stain", ["--engine", "stain"]),
                         ("fixture", ["--engine", "deepliif", "--model", str(fit_model_dir)])):
        whole = whole_by_engine[engine]
        out = tmp_path / engine
        assert main(["batch", str(path), *args, "--workers", str(workers), "--chunk-size", "384", "--no-geojson",
                     "--out", str(out), *THRESHOLD_ARGS]) == 0
        with open(out / "mosaic" / "cells.csv", newline="") as handle:
            rows = [r for r in csv.DictReader(handle) if r["counted"] == "True"]
        np.testing.assert_allclose(sorted_xy([(float(r["centroid_x"]), float(r["centroid_y"])) for r in rows]),
                                   whole, atol=1e-6, err_msg=engine)
        with open(out / "summary.csv", newline="") as handle:
            spent = json.loads(next(csv.DictReader(handle))["workers"])
        assert 1 <= len(spent) <= workers and sum(w["chunks"] for w in spent.values()) > 1


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
    assert main(["batch", str(path), "--engine", "stain", "--annotations", str(folder),
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


# ---- the widget ------------------------------------------------------------------------------

def csv_centroids(path: Path) -> np.ndarray:
    with open(path, newline="") as handle:
        return sorted_xy([(float(r["centroid_x"]), float(r["centroid_y"])) for r in csv.DictReader(handle)])


def test_the_widget_gives_the_same_cells_on_a_layer_two_rois_and_a_pyramid_level(mosaic, widget, qtbot,
                                                                                  tmp_path) -> None:
    from test_slides import write_ome_tiff
    from test_widget import choose_stain, run_and_wait

    path, image = mosaic
    viewer = widget.viewer
    choose_stain(widget)
    # the whole layer, default thresholds: the score command's cells
    viewer.add_image(image, name="mosaic", rgb=True)
    run_and_wait(widget, qtbot)
    assert main(["score", str(path), "--engine", "stain", "--resolution", "40x", "--out", str(tmp_path / "score")]) == 0
    widget.export(tmp_path / "layer")
    np.testing.assert_allclose(csv_centroids(tmp_path / "layer" / "cells.csv"),
                               csv_centroids(tmp_path / "score" / "mosaic" / "cells.csv"), atol=1e-6)
    # two ROIs: the cells in them (their bounding box and its context scored), as the region
    # core gives them
    viewer.add_shapes([[[258, 308], [258, 608], [458, 608], [458, 308]]], shape_type="rectangle", name="rois")
    viewer.layers["rois"].add_rectangles([[[600, 700], [900, 1000]]])
    widget.area_combo.setCurrentText("ROIs of a Shapes layer")
    widget.shapes_combo.setCurrentIndex(widget.shapes_combo.findText("rois"))
    run_and_wait(widget, qtbot)
    x0, y0 = 308, 258
    box = (x0, y0, 1000 - x0 + 1, 900 - y0 + 1)
    rois = [(np.array([[308, 258], [608, 258], [608, 458], [308, 458]], float), []),
            (np.array([[700, 600], [1000, 600], [1000, 900], [700, 900]], float), [])]
    region = score_region(load_engine("stain"), image, region=box, rois=rois, resolution="40x")
    assert widget.post.scoring == region.scoring
    shown = sorted_xy(widget.post.table.centroid_xy[widget.post.counted] + np.asarray(widget.last.origin, float))
    np.testing.assert_allclose(shown, counted_centroids(region), atol=1e-6)
    # pyramid level 1 of a 0.25 µm/px pyramid: 20x, as score reads level 1 of the same OME-TIFF
    viewer.layers.clear()
    viewer.add_image([image, image[::2, ::2]], name="pyramid", rgb=True, multiscale=True, metadata={"mpp": 0.25})
    widget.area_combo.setCurrentText("Whole image")
    widget.level_spin.setValue(1)
    assert widget.resolution_combo.currentText() == "20x"
    run_and_wait(widget, qtbot)
    widget.export(tmp_path / "level1")
    tiff = write_ome_tiff(tmp_path / "mosaic.ome.tif", image, 0.25, levels=2)
    assert main(["score", str(tiff), "--engine", "stain", "--resolution", "20x", "--out", str(tmp_path / "tiff")]) == 0
    ours = json.loads((tmp_path / "level1" / "score.json").read_text())
    theirs = json.loads((tmp_path / "tiff" / "mosaic" / "score.json").read_text())
    assert ours["scoring"] == theirs["scoring"] and ours["scoring"]["num_total"] > 50
    assert (ours["placement"]["level"], ours["placement"]["downsample"]) == (1, 2.0) == \
        (theirs["placement"]["level"], theirs["placement"]["downsample"])
    np.testing.assert_allclose(csv_centroids(tmp_path / "level1" / "cells.csv"),
                               csv_centroids(tmp_path / "tiff" / "mosaic" / "cells.csv"), atol=1e-6)


def test_regions_of_one_file_take_the_whole_level_statistics_once(mosaic, monkeypatch) -> None:
    """QuPath scores annotation after annotation of one slide: the stain engine's threshold over
    the whole level is computed for the first region only (and again once the file changes)."""
    from napari_deepliif.engine.engines import StainEngine
    from napari_deepliif.slides import region as file_regions

    path, _ = mosaic
    calls = []
    original = StainEngine.statistics
    monkeypatch.setattr(StainEngine, "statistics", lambda self, *a, **k: calls.append(1) or original(self, *a, **k))
    monkeypatch.setattr(file_regions, "_STATISTICS", type(file_regions._STATISTICS)())
    engine = load_engine("stain")
    first, _ = file_regions.score_file_region(engine, path, region=(100, 100, 300, 300), resolution="40x")
    second, _ = file_regions.score_file_region(engine, path, region=(500, 500, 300, 300), resolution="40x")
    assert len(calls) == 1 and first.provenance["statistics"] == second.provenance["statistics"]
    path.touch()  # a changed file: its statistics are taken again
    file_regions.score_file_region(engine, path, region=(100, 100, 300, 300), resolution="40x")
    assert len(calls) == 2


def test_the_server_refuses_a_region_over_its_pixel_limit_saying_what_to_do(mosaic, tmp_path, monkeypatch) -> None:
    from napari_deepliif.server import Limits

    path, _ = mosaic
    monkeypatch.setenv("NAPARI_DEEPLIIF_CONFIG_DIR", str(tmp_path / "config"))
    with ServerHandle.start("stain", host="127.0.0.1", port=0, limits=Limits(max_pixels=500 * 500)) as server:
        headers = {"Authorization": f"Bearer {server.token}"}
        small = httpx.post(f"{server.url}/api/regions/score", headers=headers,
                           json={"image": str(path), "region": [0, 0, 400, 400], "resolution": "40x"}, timeout=120)
        large = httpx.post(f"{server.url}/api/regions/score", headers=headers,
                           json={"image": str(path), "resolution": "40x"}, timeout=120)
    assert small.status_code == 200
    assert large.status_code == 422 and not large.json()["type"].endswith("/image-not-readable")
    assert "1300 x 1300" in large.json()["detail"] and "batch" in large.json()["detail"]
