"""Slide-level cells: merged over chunks exactly as one pass finds them; exports; annotations."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import numpy as np
import pytest
import zarr
from test_slides import slide_pixels, write_ome_tiff

from napari_deepliif.cells.postprocess import Settings, postprocess
from napari_deepliif.cells.scoring import default_marker_threshold
from napari_deepliif.engine.engines import load_engine
from napari_deepliif.errors import InputImageError
from napari_deepliif.slides.cells import find_slide_cells, marker_threshold_from_histogram, store_arrays
from napari_deepliif.slides.run import score_slide

TABLE_FIELDS = ("id", "area", "centroid", "bbox", "n_positive_px", "n_negative_px", "positive", "marker")


@pytest.fixture(scope="module")
def seg_marker(shared_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """Seg and Marker of a real 768 x 1024 tissue crop (stain engine, 20x)."""
    pixels = slide_pixels(shared_dir)[200:968, 0:1024]
    images = load_engine("stain").infer(pixels, resolution="20x", outputs="score")
    return images["Seg"], images["Marker"]


def test_merged_cells_equal_one_pass(seg_marker: tuple[np.ndarray, np.ndarray]) -> None:
    seg, marker = seg_marker
    one = postprocess(seg, marker, resolution="20x", marker_thresh="default", size_thresh_upper="default")
    merged = find_slide_cells(seg, marker, settings=Settings("20x", marker_thresh="default", size_thresh_upper="default"),
                              core=200, margin=64)
    assert len(one.table) > 300
    # many cells straddle core borders, and none was kept twice or cut
    bbox = one.table.bbox
    crossing = ((bbox[:, 0] // 200) != ((bbox[:, 2] - 1) // 200)) | ((bbox[:, 1] // 200) != ((bbox[:, 3] - 1) // 200))
    assert crossing.sum() > 30
    assert merged.regrown == 0
    for name in TABLE_FIELDS:
        np.testing.assert_array_equal(getattr(merged.table, name), getattr(one.table, name), err_msg=name)
    np.testing.assert_array_equal(merged.first_pixel, one.cells.first_pixels())
    assert merged.scoring == one.scoring
    # table-only rescoring agrees too
    assert merged.rescore(size_thresh=30, marker_thresh=100).scoring == one.rescore(size_thresh=30, marker_thresh=100).scoring
    with pytest.raises(InputImageError, match="seg_thresh"):
        merged.rescore(seg_thresh=100)


def test_cells_larger_than_the_margin_are_found_whole(seg_marker, caplog) -> None:
    seg, marker = seg_marker
    seg = seg.copy()
    # a clump far larger than the margin, across two core borders (as a 94,937 px clump cut at a
    # chunk edge once moved the default size threshold), with a hole
    seg[150:420, 120:300] = (255, 0, 0)
    seg[250:260, 200:210] = 0
    one = postprocess(seg, marker, resolution="20x", marker_thresh="default")
    with caplog.at_level(logging.INFO):
        merged = find_slide_cells(seg, marker, settings=Settings("20x", marker_thresh="default"), core=200, margin=3)
    assert merged.regrown > 0 and "found whole" in caplog.text
    assert one.table.area.max() >= 270 * 180
    for name in TABLE_FIELDS:
        np.testing.assert_array_equal(getattr(merged.table, name), getattr(one.table, name), err_msg=name)
    assert merged.scoring == one.scoring


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_marker_threshold_from_histogram_is_exact(seed: int) -> None:
    rng = np.random.default_rng(seed)
    marker = rng.integers(0, 256, size=(97, 89), dtype=np.uint8)
    marker[rng.random(marker.shape) < 0.4] = 0
    if seed == 2:
        marker = (marker // 40).astype(np.uint8)  # few distinct values: interpolation matters
    histogram = np.bincount(marker.ravel(), minlength=256)
    assert marker_threshold_from_histogram(histogram) == default_marker_threshold(marker)


def test_score_slide_writes_cells_labels_and_annotation_scores(shared_dir: Path, tmp_path: Path) -> None:
    slide = write_ome_tiff(tmp_path / "s.ome.tif", slide_pixels(shared_dir), mpp=0.5)
    # left half of the slide, in level-0 (0.5 µm/px) pixels, with a square hole
    annotations = {"type": "FeatureCollection", "features": [{
        "type": "Feature", "properties": {"name": "left", "objectType": "annotation"},
        "geometry": {"type": "Polygon", "coordinates": [
            [[0, 0], [1024, 0], [1024, 1536], [0, 1536], [0, 0]],
            [[200, 400], [400, 400], [400, 600], [200, 600], [200, 400]]]}}]}
    (tmp_path / "a.geojson").write_text(json.dumps(annotations))
    out = tmp_path / "out"
    record = score_slide(load_engine("stain"), slide, out, resolution="10x", chunk_size=384,
                         annotations=tmp_path / "a.geojson", settings=Settings(marker_thresh="default"))
    root = zarr.open_group(str(out / "result.ome.zarr"), mode="r")
    seg, marker = store_arrays(root)
    one = postprocess(np.asarray(seg[:, :]), np.asarray(marker[:, :]), resolution="10x", marker_thresh="default")
    assert record["scoring"] == one.scoring and record["placement"]["resolution"] == "10x"
    assert record["placement"]["downsample"] == 2 and record["placement"]["mpp"] == 1.0
    # labels: the one-pass label image, as a pyramid
    labels = root["Seg/labels/cells"]
    np.testing.assert_array_equal(labels["0"][:], one.labels())
    assert labels["1"].shape == (384, 512) and labels["0"].dtype == np.uint32
    # cells.csv: level-0 centroids (10x scored from a 0.5 µm/px slide: downsample 2; a scored
    # pixel centre c covers level-0 pixels 2c and 2c + 1, centre 2c + 0.5)
    with open(out / "cells.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(one.table)
    assert float(rows[5]["centroid_x"]) == pytest.approx(2 * one.table.centroid_xy[5, 0] + 0.5)
    assert float(rows[5]["bbox_y1"]) == 2 * one.table.bbox[5, 2]
    assert rows[5]["class"] == ("Uncounted" if not one.counted[5] else "Positive" if one.positive[5] else "Negative")
    features = json.loads((out / "cells.geojson").read_text())["features"]
    assert len(features) == len(one.table)
    props = features[0]["properties"]
    assert props["objectType"] == "detection" and props["classification"] in ("Positive", "Negative", "Uncounted")
    # counting Positive and Negative detections, as a QuPath user would, reproduces the score
    classes = [f["properties"]["classification"] for f in features]
    assert (classes.count("Positive"), classes.count("Negative")) == (one.scoring["num_pos"], one.scoring["num_neg"])
    assert props["measurements"]["Cell id"] == 1 and props["measurements"]["Area px"] == one.table.area[0]
    ring = np.asarray(features[0]["geometry"]["coordinates"][0])
    y0, x0, y1, x1 = one.table.bbox[0]
    assert (ring[:, 0].min(), ring[:, 0].max(), ring[:, 1].min(), ring[:, 1].max()) == (2 * x0, 2 * x1, 2 * y0, 2 * y1)
    # annotation score: cells whose centroid (scored pixel centres) is left of the edge at
    # level-0 x = 1024 (scored centre 511.5) and outside the hole
    cx, cy = one.table.centroid_xy.T
    inside = (cx < 511.5) & ~((cx > 99.5) & (cx < 199.5) & (cy > 199.5) & (cy < 299.5))
    left = record["regions"]["left"]
    assert left["num_total"] == int((one.counted & inside).sum())
    assert left["num_pos"] == int((one.counted & one.positive & inside).sum())
    assert left["area_mm2"] == pytest.approx((512 * 768 - 100 * 100) * 1e-6)
    # a rerun with the same settings is skipped
    assert score_slide(load_engine("stain"), slide, out, resolution="10x", chunk_size=384,
                       annotations=tmp_path / "a.geojson", settings=Settings(marker_thresh="default"))["run"]["skipped"]


def test_a_clump_larger_than_the_margin_is_painted_and_outlined_whole(seg_marker, tmp_path: Path) -> None:
    from shapely.geometry import shape as geometry

    from napari_deepliif.slides import omezarr
    from napari_deepliif.slides.export import write_labels_and_outlines

    seg, marker = seg_marker
    seg = seg.copy()
    seg[150:420, 120:300] = (255, 0, 0)  # across two core borders of 200 px
    one = postprocess(seg, marker, resolution="20x")
    root = omezarr.create_store(tmp_path / "s.ome.zarr", ("Seg", "Marker"), seg.shape[:2], 0.5,
                                {"region": None, "downsample": 1.0, "mpp": 0.5})
    root["Seg"]["0"][:] = np.moveaxis(seg, -1, 0)
    root["Marker"]["0"][:] = np.moveaxis(marker, -1, 0)
    cells = find_slide_cells(*store_arrays(root), settings=Settings("20x"), core=200, margin=3)
    write_labels_and_outlines(root, cells, tmp_path / "cells.geojson", core=200, margin=3)
    np.testing.assert_array_equal(root["Seg/labels/cells"]["0"][:], one.labels())
    features = json.loads((tmp_path / "cells.geojson").read_text())["features"]
    assert len(features) == len(one.table)
    areas = sorted(round(geometry(f["geometry"]).area) for f in features)
    assert areas == sorted(one.table.area.tolist()) and areas[-1] >= 270 * 180
