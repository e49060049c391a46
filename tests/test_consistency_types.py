"""One image, one answer for the model types beyond DeepLIIF: a ``classmap`` model and a
``translate`` model (with the stain segmenter, and with a DeepLIIF model's Seg) give the same
cells through the region core (whole image and regions wherever they start), ``score --model
DIR``, ``batch`` over two workers, the server's region endpoint (real HTTP: a box and a
QuPath-style polygon) and the napari widget (a layer, two ROIs, a pyramid level); cell for
cell, with their classes.

The images are mirror mosaics (see :func:`test_consistency.mirror_mosaic`) of the class-map
fixture's real DAPI panel and of a real IHC image, so that tile, chunk and mosaic seams fall
in cells. The class-map fixture is scored at 20x (its card's 0.5 µm/px), the translate
fixture at 40x (0.25 µm/px); thresholds are explicit where a region is compared with the
whole image, as in tests/test_consistency.py.
"""

from __future__ import annotations

import csv
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import httpx
import jsonschema
import numpy as np
import pytest
import shapely.geometry
import yaml
from classmap_fixture import lung_panels
from conftest import read_rgb
from PIL import Image
from test_consistency import SCORE_SCHEMA, SETTINGS, mirror_mosaic
from test_widget import widget  # noqa: F401 (a fixture)

from napari_deepliif.cells.scoring import in_box, in_polygons
from napari_deepliif.cli.main import main
from napari_deepliif.engine.engines import load_engine
from napari_deepliif.regions.score import ScoreResult, score_region
from napari_deepliif.server import ServerHandle


@dataclass(frozen=True)
class Case:
    """One model type's run: its model folder, the mosaic (file and pixels), the resolution
    and pixel size it is scored at, two boxes on and off the model's tile grid and two ROIs."""

    name: str
    model: Path
    path: Path
    image: np.ndarray
    resolution: str
    mpp: float
    boxes: tuple[tuple[int, int, int, int], ...]
    rois: tuple[tuple[int, int, int, int], ...]  #: (y0, x0, y1, x1), as napari rectangles

    def args(self) -> list[str]:
        """The command-line model and thresholds of :data:`SETTINGS`."""
        return ["--model", str(self.model), "--device", "cpu", "--resolution", self.resolution,
                "--size-thresh", "40"]


@pytest.fixture(scope="module", params=["classmap", "translate", "translate+deepliif"])
def case(request, shared_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Case:
    folder = tmp_path_factory.mktemp(f"types-{request.param}")
    if request.param == "classmap":
        # the card's tiles are 256 px overlapping by 128: tiles start at 0 and 128, their write
        # seam lies at 192; the mosaic's mirror seam at 220
        image = mirror_mosaic(lung_panels(shared_dir)[0][292:, 292:], 384)
        model, resolution, mpp = request.getfixturevalue("classmap_model_dirs")[0], "20x", 0.5
        boxes = ((128, 128, 256, 256), (137, 131, 247, 250))
        rois = ((20, 30, 170, 200), (210, 190, 370, 370))
    else:
        # 256 px tiles overlapping by 32: tiles start at 0, 224, 384 (the DeepLIIF segmenter's
        # 512 px tiles at 0 and 128); mirror seam at 350
        image = mirror_mosaic(read_rgb(shared_dir / "data" / "ihc" / "ROI_1.png")[:350, :350], 640)
        model, resolution, mpp = request.getfixturevalue("translate_model_dir"), "40x", 0.25
        if request.param == "translate+deepliif":
            model = with_deepliif_segmenter(model, request.getfixturevalue("fit_model_dir"), folder / "model")
        boxes = ((224, 224, 300, 280), (231, 229, 300, 280))
        rois = ((60, 90, 230, 300), (380, 330, 600, 610))
    path = folder / "mosaic.png"
    Image.fromarray(image).save(path)
    return Case(request.param, model, path, image, resolution, mpp, boxes, rois)


def with_deepliif_segmenter(translate: Path, deepliif: Path, folder: Path) -> Path:
    """A copy of the translate fixture whose card segments with the DeepLIIF model ``deepliif``."""
    shutil.copytree(translate, folder)
    card = yaml.safe_load((folder / "model.yaml").read_text())
    card.update(segmenter="deepliif", segmenter_model=str(deepliif.resolve()))
    (folder / "model.yaml").write_text(yaml.safe_dump(card))
    return folder


@pytest.fixture(scope="module")
def engine(case: Case):
    return load_engine("auto", case.model, device="cpu")


@pytest.fixture(scope="module")
def whole(case: Case, engine) -> ScoreResult:
    return score_region(engine, case.image, resolution=case.resolution, settings=SETTINGS)


def counted_cells(result: ScoreResult) -> tuple[np.ndarray, list[str]]:
    """Counted cells' centroids (x, y, image pixels) sorted by (y, x), and each one's class
    name (a class map's class, else Positive or Negative) in that order."""
    post = result.post
    table = post.table
    xy = table.centroid_xy[post.counted] + np.asarray(result.origin, float)
    if table.cell_class is not None:
        names = np.asarray(table.class_names, dtype=object)[table.cell_class[post.counted]]
    else:
        names = np.where(post.positive[post.counted], "Positive", "Negative")
    order = np.lexsort((xy[:, 0], xy[:, 1]))
    return xy[order], [str(n) for n in np.asarray(names)[order]]


def chosen(cells: tuple[np.ndarray, list[str]], keep: np.ndarray) -> tuple[np.ndarray, list[str]]:
    xy, names = cells
    return xy[keep], [n for n, k in zip(names, keep) if k]


def csv_cells(path: Path, *, counted_only: bool = False) -> tuple[np.ndarray, list[str]]:
    """The cells of a ``cells.csv`` as :func:`counted_cells` gives them."""
    with open(path, newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if not counted_only or r["counted"] == "True"]
    xy = np.array([(float(r["centroid_x"]), float(r["centroid_y"])) for r in rows], float).reshape(-1, 2)
    order = np.lexsort((xy[:, 0], xy[:, 1]))
    return xy[order], [rows[i]["class"] for i in order]


def pixels_centroid(geometry: dict) -> np.ndarray:
    """Mean ``(x, y)`` (pixel centres at integers) of the pixels a GeoJSON cell outline
    (pixel-edge coordinates) holds: the cell table's centroid of that cell. (The polygon's own
    area centroid is off by up to about 1e-5 px where the outline is pulled apart at a pinch
    corner, see :mod:`napari_deepliif.cells.outlines`.)"""
    polygon = shapely.geometry.shape(geometry)
    x0, y0, x1, y1 = (int(v) for v in np.round(polygon.bounds))
    cols, rows = np.meshgrid(np.arange(x0, x1), np.arange(y0, y1))
    centres = np.column_stack([cols.ravel(), rows.ravel()]).astype(float)
    inside = shapely.contains_xy(polygon, centres[:, 0] + 0.5, centres[:, 1] + 0.5)
    assert inside.sum() == polygon.area, "an outline holds whole pixels"
    return centres[inside].mean(axis=0)


def assert_same_cells(got: tuple[np.ndarray, list[str]], expected: tuple[np.ndarray, list[str]], what: str) -> None:
    assert len(got[0]) == len(expected[0]), f"{what}: {len(got[0])} cells, expected {len(expected[0])}"
    np.testing.assert_allclose(got[0], expected[0], atol=1e-6, err_msg=what)
    assert got[1] == expected[1], what


def test_the_whole_mosaic_has_cells_of_every_class(case, whole) -> None:
    _, names = counted_cells(whole)
    classes = {"negative", "positive"} if case.name == "classmap" else {"Negative", "Positive"}
    assert set(names) == classes and min(names.count(c) for c in classes) >= 5 and len(names) > 15


@pytest.mark.parametrize("which", ["on the tile grid", "off the tile grid"])
def test_a_region_gives_the_whole_images_cells_there_wherever_it_starts(case, engine, whole, which) -> None:
    box = case.boxes[0 if which == "on the tile grid" else 1]
    region = score_region(engine, case.image, region=box, resolution=case.resolution, settings=SETTINGS)
    cells = counted_cells(whole)
    expected = chosen(cells, in_box(cells[0], box))
    assert len(expected[0]) > 5
    assert_same_cells(counted_cells(region), expected, f"{case.name} region {box}")


def test_score_and_the_servers_region_give_the_whole_images_cells(case, whole, tmp_path, monkeypatch) -> None:
    expected = counted_cells(whole)
    assert main(["score", str(case.path), *case.args(), "--out", str(tmp_path / "score")]) == 0
    assert_same_cells(csv_cells(tmp_path / "score" / "mosaic" / "cells.csv"), expected, f"{case.name} score")

    # QuPath's requests: a box, and an annotation's polygon (full-resolution pixel edges)
    monkeypatch.setenv("NAPARI_DEEPLIIF_CONFIG_DIR", str(tmp_path / "config"))
    box = list(case.boxes[1])
    height, width = case.image.shape[:2]
    triangle = [[10, 10], [width - 10, 10], [10, height - 10], [10, 10]]
    with ServerHandle.start("auto", model=case.model, device="cpu", host="127.0.0.1", port=0) as server:
        headers = {"Authorization": f"Bearer {server.token}"}
        common = {"image": str(case.path), "resolution": case.resolution, "size_thresh": 40}
        answers = [httpx.post(f"{server.url}/api/regions/score", headers=headers, timeout=300, json=request)
                   for request in ({**common, "region": box},
                                   {**common, "roi": {"type": "Polygon", "coordinates": [triangle]}})]
    in_the_box = chosen(expected, in_box(expected[0], tuple(box)))
    # the polygon's edges are pixel edges: pixel centres lie half a pixel in
    in_the_triangle = chosen(expected, in_polygons(expected[0], [(np.asarray(triangle, float) - 0.5, [])]))
    positives = 0
    for answer, want, what in ((answers[0], in_the_box, "box"), (answers[1], in_the_triangle, "polygon")):
        assert answer.status_code == 200, answer.text
        body = answer.json()
        jsonschema.validate(body["score"], SCORE_SCHEMA)
        assert body["score"]["provenance"]["engine"] == case.name.split("+")[0]
        assert body["score"]["scoring"]["num_total"] == len(body["features"]) == len(want[0]) > 5, what
        # each polygon holds the pixels of the whole image's cell at that place
        xy = np.array([pixels_centroid(f["geometry"]) for f in body["features"]]).reshape(-1, 2)
        order = np.lexsort((xy[:, 0], xy[:, 1]))
        names = [body["features"][i]["properties"]["classification"]["name"] for i in order]
        assert_same_cells((xy[order], names), want, f"{case.name} server {what}")
        # QuPath counts a cell positive when its class is one of the record's positive classes
        # (a record without them: when it is "Positive"), as the score counts it
        positive = body["score"]["scoring"].get("positive_classes", ["Positive"])
        assert sum(name in positive for name in names) == body["score"]["scoring"]["num_pos"], what
        positives += body["score"]["scoring"]["num_pos"]
    assert positives > 0


def test_batch_over_two_workers_gives_the_whole_images_cells(case, whole, tmp_path) -> None:
    """Chunks of one tile each, spread over two worker processes: chunk seams are the tile
    seams, through cells."""
    assert main(["batch", str(case.path), *case.args(), "--workers", "2", "--chunk-size", "128", "--no-geojson",
                 "--out", str(tmp_path / "batch")]) == 0
    assert_same_cells(csv_cells(tmp_path / "batch" / "mosaic" / "cells.csv", counted_only=True),
                      counted_cells(whole), f"{case.name} batch")
    with open(tmp_path / "batch" / "summary.csv", newline="") as handle:
        spent = json.loads(next(csv.DictReader(handle))["workers"])
    assert sum(w["chunks"] for w in spent.values()) > 1


def test_the_widget_gives_the_same_cells_on_a_layer_two_rois_and_a_pyramid_level(case, whole, widget, private_model_dirs,
                                                                                  qtbot, tmp_path) -> None:
    from test_slides import write_ome_tiff
    from test_widget import run_and_wait

    viewer = widget.viewer
    widget.engine_box.add_local(case.model, name=case.model.name)
    widget.device_combo.setCurrentText("cpu")

    def counted_at_40_px() -> tuple[np.ndarray, list[str]]:
        widget.sliders["size_thresh"].move_to(40)
        qtbot.waitUntil(lambda: widget.post.scoring["size_thresh"] == 40, timeout=5000)
        return counted_cells(ScoreResult(widget.last.result.image, {}, widget.post, origin=widget.last.origin))

    # the whole layer (its pixel size picks the resolution)
    viewer.add_image(case.image, name="mosaic", rgb=True, metadata={"mpp": case.mpp})
    assert widget.resolution_combo.currentText() == case.resolution
    run_and_wait(widget, qtbot)
    expected = counted_cells(whole)
    assert_same_cells(counted_at_40_px(), expected, f"{case.name} widget layer")
    widget.export(tmp_path / "layer")
    assert_same_cells(csv_cells(tmp_path / "layer" / "cells.csv"), expected, f"{case.name} widget export")

    # two ROIs: the whole image's cells in them
    (ay0, ax0, ay1, ax1), (by0, bx0, by1, bx1) = case.rois
    viewer.add_shapes([[[ay0, ax0], [ay1, ax1]]], shape_type="rectangle", name="rois")
    viewer.layers["rois"].add_rectangles([[[by0, bx0], [by1, bx1]]])
    widget.area_combo.setCurrentText("ROIs of a Shapes layer")
    widget.shapes_combo.setCurrentIndex(widget.shapes_combo.findText("rois"))
    run_and_wait(widget, qtbot)
    rois = [(np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], float), [])
            for y0, x0, y1, x1 in case.rois]
    assert_same_cells(counted_at_40_px(), chosen(expected, in_polygons(expected[0], rois)), f"{case.name} widget ROIs")

    # pyramid level 1, default thresholds: the cells score finds on level 1 of the same
    # pyramid in an OME-TIFF (level 0 is the mosaic at twice the size, so level 1, the mosaic,
    # is at the model's own pixel size)
    viewer.layers.clear()
    doubled = np.repeat(np.repeat(case.image, 2, axis=0), 2, axis=1)
    viewer.add_image([doubled, case.image], name="pyramid", rgb=True, multiscale=True,
                     metadata={"mpp": case.mpp / 2})
    widget.area_combo.setCurrentText("Whole image")
    widget.level_spin.setValue(1)
    assert widget.resolution_combo.currentText() == case.resolution
    run_and_wait(widget, qtbot)
    widget.export(tmp_path / "level1")
    tiff = write_ome_tiff(tmp_path / "mosaic.ome.tif", doubled, case.mpp / 2, levels=2)
    assert main(["score", str(tiff), "--model", str(case.model), "--device", "cpu", "--resolution", case.resolution,
                 "--out", str(tmp_path / "tiff")]) == 0
    ours = json.loads((tmp_path / "level1" / "score.json").read_text())
    theirs = json.loads((tmp_path / "tiff" / "mosaic" / "score.json").read_text())
    assert ours["scoring"] == theirs["scoring"] and ours["scoring"]["num_total"] > 5
    assert (ours["placement"]["level"], ours["placement"]["downsample"]) == (1, 2.0) == \
        (theirs["placement"]["level"], theirs["placement"]["downsample"])
    assert_same_cells(csv_cells(tmp_path / "level1" / "cells.csv"), csv_cells(tmp_path / "tiff" / "mosaic" / "cells.csv"),
                      f"{case.name} widget level 1")
