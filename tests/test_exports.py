"""Exports of a scoring result: score JSON, cell GeoJSON (read back with shapely), CSV, label TIFF.

Real data: the DeepLIIF 2021 outputs of tile 22_2 (40x), postprocessed by the engine. Outline
corner cases (cells touching only at a corner, holes, image borders) are in test_outlines.py.
"""

from __future__ import annotations

import csv
import json
import uuid
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import shapely
import tifffile
from conftest import read_rgb
from shapely.geometry import shape

from napari_deepliif.cells.postprocess import postprocess
from napari_deepliif.errors import InputImageError
from napari_deepliif.io import exports
from napari_deepliif.io.exports import (
    cells_rows,
    write_cells_csv,
    write_json,
    write_labels_tiff,
    write_score_outputs,
)
from napari_deepliif.io.geojson import MEASUREMENT_NAMES, cells_geojson
from napari_deepliif.io.placement import Placement
from napari_deepliif.io.score_format import SCORE_KEYS, placement, score_record

OUTPUTS = "data/deepliif-2021-outputs"
PROVENANCE = {
    "engine": "deepliif", "model": "DeepLIIF_Latest_Model", "model_hash": "0" * 16,
    "version": "0.1.0", "statistics": {},
}
SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "docs" / "score.schema.json").read_text())


def record_of(post, **where) -> dict:
    """A score record of ``post`` for tile 22_2 (40x), placed as ``where`` says."""
    return score_record(post.scoring, placement=placement(image="22_2_IHC.png", resolution="40x",
                                                          shape=post.cells.shape, **where),
                        provenance=PROVENANCE)


@pytest.fixture(scope="module")
def outputs(shared_dir: Path) -> dict[str, np.ndarray]:
    """The reference outputs of tile 22_2, name -> H x W x 3 uint8."""
    return {name: read_rgb(shared_dir / OUTPUTS / f"22_2_{name}.png")
            for name in ("IHC", "Hema", "DAPI", "Lap2", "Marker", "Seg")}


@pytest.fixture(scope="module")
def post(outputs):
    return postprocess(outputs["Seg"], outputs["Marker"], resolution="40x")


@pytest.fixture(scope="module")
def geojson(post) -> dict:
    return cells_geojson(post)


# ---- GeoJSON ------------------------------------------------------------------------------

def test_geojson_is_a_qupath_detection_collection(post, geojson) -> None:
    assert geojson["type"] == "FeatureCollection"
    features = geojson["features"]
    assert len(features) == post.scoring["num_total"] == 114
    ids = [f["id"] for f in features]
    assert len(set(ids)) == len(ids) and all(str(uuid.UUID(i)) == i for i in ids)
    for f in features:
        assert f["type"] == "Feature" and f["geometry"]["type"] == "Polygon"
        assert f["properties"]["objectType"] == "detection"
        assert f["properties"]["classification"] in ("Positive", "Negative")  # a plain string
        assert set(f["properties"]["measurements"]) == set(MEASUREMENT_NAMES)
    classes = Counter(f["properties"]["classification"] for f in features)
    assert classes == {"Positive": post.scoring["num_pos"], "Negative": post.scoring["num_neg"]}
    assert json.loads(json.dumps(geojson, allow_nan=False)) == geojson


def test_geojson_polygons_are_the_cells_exactly(post, geojson) -> None:
    table, padded = post.table, np.pad(post.labels(), 1)
    counted = np.flatnonzero(post.counted)
    for feature, i in zip(geojson["features"], counted):
        polygon = shape(feature["geometry"])
        ring = feature["geometry"]["coordinates"][0]
        assert polygon.is_valid, shapely.is_valid_reason(polygon)
        assert ring[0] == ring[-1] and len(feature["geometry"]["coordinates"]) == 1
        assert polygon.exterior.is_ccw  # RFC 7946 right-hand rule, in (x, y) as written
        assert polygon.area == table.area[i]  # pixels, holes included: exact
        # QuPath puts pixel (row, col) at [col, col + 1] x [row, row + 1]: centroids shift by 0.5
        centroid = np.array(polygon.centroid.coords[0]) - 0.5
        assert np.abs(centroid - table.centroid_xy[i]).max() < 1e-3
        # the polygon holds exactly the centres of the cell's pixels, none around them
        y0, x0, y1, x1 = table.bbox[i]
        rows, cols = np.mgrid[y0 - 1:y1 + 1, x0 - 1:x1 + 1]
        inside = shapely.contains_xy(polygon, cols + 0.5, rows + 0.5)
        assert np.array_equal(inside, padded[y0:y1 + 2, x0:x1 + 2] == table.id[i])
        m = feature["properties"]["measurements"]
        assert [m[k] for k in MEASUREMENT_NAMES] == [table.area[i], table.marker[i],
                                                             table.n_positive_px[i],
                                                             table.n_negative_px[i], table.id[i]]
        expected_class = "Positive" if post.positive[i] else "Negative"
        assert feature["properties"]["classification"] == expected_class


def test_real_cells_touching_at_corners_stay_valid(geojson) -> None:
    """Some real cells have pixels joined only at a corner: their rings carry the offsets."""
    pinched = [f for f in geojson["features"]
               if any(x != int(x) for x, _ in f["geometry"]["coordinates"][0])]
    assert pinched
    assert all(shape(f["geometry"]).is_valid for f in pinched)


def test_geojson_origin_shifts_every_coordinate(post, geojson) -> None:
    shifted = cells_geojson(post, origin=(100, 50))
    assert len(shifted["features"]) == len(geojson["features"])
    for a, b in zip(geojson["features"], shifted["features"]):
        ring_a, ring_b = (np.array(f["geometry"]["coordinates"][0]) for f in (a, b))
        assert np.array_equal(ring_b, ring_a + (100, 50))
        assert a["properties"] == b["properties"]


def test_geojson_of_all_cells_marks_the_counted(post) -> None:
    everything = cells_geojson(post, counted_only=False)
    assert len(everything["features"]) == len(post.table) > post.scoring["num_total"]
    counted = [f["properties"]["measurements"]["Counted"] for f in everything["features"]]
    assert counted == post.counted.astype(int).tolist()
    # uncounted cells say so: counting Positive and Negative detections (as a QuPath user
    # would) reproduces the score
    classes = Counter(f["properties"]["classification"] for f in everything["features"])
    assert classes["Uncounted"] == len(post.table) - post.scoring["num_total"] > 0
    assert (classes["Positive"], classes["Negative"]) == (post.scoring["num_pos"], post.scoring["num_neg"])
    assert all(shape(f["geometry"]).is_valid for f in everything["features"])
    areas = [shape(f["geometry"]).area for f in everything["features"]]
    assert areas == post.table.area.tolist()


def test_geojson_extra_measurements_and_class_objects(post) -> None:
    extra = np.arange(len(post.table), dtype=float)
    extra[np.flatnonzero(post.counted)[0]] = np.nan
    result = cells_geojson(post, measurements_extra={"Rank": extra}, classification="object")
    first, second = result["features"][:2]
    assert "Rank" not in first["properties"]["measurements"]  # NaN is left out, not written
    assert second["properties"]["measurements"]["Rank"] == np.flatnonzero(post.counted)[1]
    assert second["properties"]["classification"] in (
        {"name": "Positive", "color": [255, 0, 0]}, {"name": "Negative", "color": [0, 0, 255]})
    with pytest.raises(ValueError, match="one per"):
        cells_geojson(post, measurements_extra={"Rank": extra[:-1]})
    with pytest.raises(ValueError, match="not a new"):
        cells_geojson(post, measurements_extra={"Area px": extra})
    with pytest.raises(ValueError, match="classification"):
        cells_geojson(post, classification="name")


def test_geojson_without_counted_cells() -> None:
    post = postprocess(np.zeros((32, 32, 3), np.uint8))
    assert cells_geojson(post) == {"type": "FeatureCollection", "features": []}
    assert cells_rows(post) == []


# ---- score JSON ---------------------------------------------------------------------------

def test_score_record_is_the_one_format_and_valid_against_its_schema(post, tmp_path) -> None:
    import jsonschema

    regions = post.score_regions({"left": np.array([[0, 0], [255, 0], [255, 511], [0, 511]])},
                                 microns_per_pixel=0.25)
    record = score_record(post.scoring, placement=placement(image="22_2_IHC.png", resolution="40x",
                                                            shape=post.cells.shape, mpp=0.25),
                          provenance=PROVENANCE, regions=regions)
    assert list(record) == ["format", "format_version", "scoring", "placement", "provenance", "regions", "run"]
    assert record["format"] == "napari-deepliif/score" and record["format_version"] == 1
    assert list(record["scoring"]) == list(SCORE_KEYS) and record["scoring"] == post.scoring
    assert record["regions"]["left"]["num_total"] <= record["scoring"]["num_total"]
    jsonschema.validate(record, SCHEMA)
    path = tmp_path / "score.json"
    write_json(path, record)
    assert json.loads(path.read_text(encoding="utf-8")) == record
    with pytest.raises(ValueError, match="engine"):
        score_record(post.scoring, placement=record["placement"], provenance={**PROVENANCE, "engine": "cellpose"})
    with pytest.raises(ValueError, match="model_hash"):
        score_record(post.scoring, placement=record["placement"],
                     provenance={k: v for k, v in PROVENANCE.items() if k != "model_hash"})
    broken = {**record, "scoring": {**record["scoring"], "num_total": -1}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, SCHEMA)


def test_write_json_is_utf8_and_refuses_nan(tmp_path) -> None:
    path = tmp_path / "x.json"
    write_json(path, {"image": "coupe_µ.png", "n": np.int64(3), "xs": np.arange(2)})
    expected = {"image": "coupe_µ.png", "n": 3, "xs": [0, 1]}
    assert json.loads(path.read_bytes().decode("utf-8")) == expected
    with pytest.raises(ValueError):
        write_json(tmp_path / "nan.json", {"x": float("nan")})
    assert not (tmp_path / "nan.json").exists()


# ---- CSV and labels -----------------------------------------------------------------------

def test_cells_csv_rows_match_the_table(post, tmp_path) -> None:
    path = tmp_path / "cells.csv"
    write_cells_csv(path, post, placement=Placement((100, 50)))
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == post.scoring["num_total"]
    assert list(rows[0]) == list(exports.CSV_COLUMNS)
    table, counted = post.table, np.flatnonzero(post.counted)
    for row, i in zip(rows, counted):
        assert int(row["id"]) == table.id[i] and int(row["area_px"]) == table.area[i]
        assert float(row["centroid_x"]) == table.centroid_xy[i, 0] + 100
        assert float(row["centroid_y"]) == table.centroid_xy[i, 1] + 50
        y0, x0, y1, x1 = table.bbox[i]
        assert [int(row[k]) for k in ("bbox_x0", "bbox_y0", "bbox_x1", "bbox_y1")] \
            == [x0 + 100, y0 + 50, x1 + 100, y1 + 50]
        assert row["class"] == ("Positive" if post.positive[i] else "Negative")
        assert (int(row["n_positive_px"]), int(row["n_negative_px"]), int(row["marker"])) \
            == (table.n_positive_px[i], table.n_negative_px[i], table.marker[i])
    assert Counter(r["class"] for r in rows)["Positive"] == post.scoring["num_pos"]
    assert cells_rows(post, placement=Placement((100, 50)))[0]["centroid_x"] == float(rows[0]["centroid_x"])
    # a pyramid level at downsample 2: level-0 pixel centres and edges
    level = cells_rows(post, placement=Placement((100, 50), 2.0))[0]
    i = counted[0]
    assert level["centroid_x"] == (table.centroid_xy[i, 0] + 100 + 0.5) * 2 - 0.5
    assert level["bbox_y0"] == (table.bbox[i, 0] + 50) * 2


def test_labels_tiff_round_trip(post, tmp_path) -> None:
    path = tmp_path / "labels.tif"
    write_labels_tiff(path, post.labels())
    with tifffile.TiffFile(path) as tif:
        assert tif.pages[0].compression == tifffile.COMPRESSION.ADOBE_DEFLATE
        data = tif.asarray()
    assert data.dtype == np.uint32 and np.array_equal(data, post.labels())
    big = np.array([[0, 70_000], [2**32 - 1, 1]], dtype=np.int64)
    write_labels_tiff(path, big)
    assert np.array_equal(tifffile.imread(path), big) and tifffile.imread(path).dtype == np.uint32
    for bad in (np.zeros((4, 4), float), np.zeros((2, 4, 4), np.uint8), np.array([[-1, 0]])):
        with pytest.raises(ValueError):
            write_labels_tiff(tmp_path / "bad.tif", bad)


def test_interrupted_write_leaves_no_partial_file(post, tmp_path, monkeypatch) -> None:
    path = tmp_path / "labels.tif"

    def interrupted(file, data, **kwargs):
        Path(file).write_bytes(b"II*\0 half a TIFF")
        raise KeyboardInterrupt

    monkeypatch.setattr(tifffile, "imwrite", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_labels_tiff(path, post.labels())
    assert list(tmp_path.iterdir()) == []


# ---- all outputs --------------------------------------------------------------------------

def test_write_score_outputs_writes_every_file(post, outputs, tmp_path) -> None:
    images = {name: outputs[name] for name in ("Hema", "DAPI", "Lap2", "Marker", "Seg")}
    record = record_of(post, downsample=2.0, origin=(200, 100))
    paths = write_score_outputs(tmp_path / "run", post=post, image=outputs["IHC"], images=images,
                                record=record, placement=Placement((100, 50), 2.0))
    expected = [f"{n}.png" for n in images] + ["SegRefined.png", "SegOverlaid.png", "score.json",
                                               "cells.geojson", "cells.csv", "labels.tif"]
    assert sorted(paths) == sorted(expected)
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == sorted(expected)  # no leftovers
    for name, array in images.items():
        assert np.array_equal(read_rgb(paths[f"{name}.png"]), array)
    assert np.array_equal(read_rgb(paths["SegRefined.png"]), post.seg_refined())
    assert np.array_equal(read_rgb(paths["SegOverlaid.png"]), post.seg_overlaid(outputs["IHC"]))
    score = json.loads(paths["score.json"].read_text(encoding="utf-8"))
    assert score == record
    geo = json.loads(paths["cells.geojson"].read_text(encoding="utf-8"))
    assert len(geo["features"]) == post.scoring["num_total"]
    first = np.array(geo["features"][0]["geometry"]["coordinates"][0])
    i = np.flatnonzero(post.counted)[0]
    # level-0 pixels: (edge + origin) * downsample
    assert tuple(first.min(axis=0)) == ((post.table.bbox[i, 1] + 100) * 2, (post.table.bbox[i, 0] + 50) * 2)
    with paths["cells.csv"].open(newline="", encoding="utf-8") as f:
        assert len(list(csv.DictReader(f))) == post.scoring["num_total"]
    assert np.array_equal(tifffile.imread(paths["labels.tif"]), post.labels())
    # files get the permissions open() gives (0o666 less the umask), not mkstemp's 0o600
    import os

    mask = os.umask(0)
    os.umask(mask)
    assert {p.stat().st_mode & 0o777 for p in paths.values()} == {0o666 & ~mask}


def test_write_score_outputs_checks_before_writing(post, outputs, tmp_path) -> None:
    run = tmp_path / "run"
    kwargs = dict(post=post, image=outputs["IHC"], record=record_of(post))
    with pytest.raises(ValueError, match="file name"):
        write_score_outputs(run, images={"SegRefined": outputs["Seg"]}, **kwargs)
    with pytest.raises(ValueError, match="file name"):
        write_score_outputs(run, images={"../Seg": outputs["Seg"]}, **kwargs)
    with pytest.raises(InputImageError):
        write_score_outputs(run, images={"Seg": outputs["Seg"][:100]}, **kwargs)
    with pytest.raises(InputImageError):
        write_score_outputs(run, post=post, image=outputs["IHC"][:100, :, 0], images={}, record=record_of(post))
    with pytest.raises(TypeError):
        write_score_outputs(run, post=post, image=outputs["IHC"], images={"Seg": outputs["Seg"]},
                            record={**record_of(post), "run": {"when": object()}})
    assert not run.exists()
