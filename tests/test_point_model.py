"""The ``points`` model type end to end: card, loaders, region path, ``score --model DIR``, files
and ``evaluate``, with a fixture of the published architecture (tests/points_fixture.py)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import copy_model, read_rgb
from points_fixture import build

from napari_deepliif.cells.detections import detect_points
from napari_deepliif.cells.points import evaluate_points
from napari_deepliif.cells.scoring import in_box
from napari_deepliif.cli.main import main
from napari_deepliif.engine.engines import load_engine
from napari_deepliif.engine.points import PointsEngine
from napari_deepliif.errors import DeepLIIFError, ModelError
from napari_deepliif.io.ground_truth import read_annotation
from napari_deepliif.regions.points import detect_region


@pytest.fixture(scope="module")
def point_models(shared_dir, tmp_path_factory) -> tuple[Path, Path]:
    """(state-dict folder, TorchScript folder) of the fixture model."""
    root = tmp_path_factory.mktemp("points-model")
    build(shared_dir, root / "state_dict", root / "torchscript")
    return root / "state_dict", root / "torchscript"


@pytest.fixture(scope="module")
def engine(point_models) -> PointsEngine:
    loaded = load_engine("auto", point_models[0], device="cpu")
    assert isinstance(loaded, PointsEngine)
    return loaded


@pytest.fixture(scope="module")
def ihc(shared_dir) -> np.ndarray:
    """A 384 x 320 crop of the real tile 22_2 (small, so the network runs fast on a CPU)."""
    return read_rgb(shared_dir / "data/ihc/22_2.png")[:320, :384]


def test_score_with_a_points_model_writes_points_that_evaluate_reads(point_models, shared_dir, tmp_path, capsys):
    image = shared_dir / "data/ihc/22_2.png"
    assert main(["score", "--model", str(point_models[0]), str(image), "--out", str(tmp_path)]) == 0
    folder = tmp_path / "22_2"
    assert sorted(p.name for p in folder.iterdir()) == ["points.csv", "points.geojson", "score.json"]
    record = json.loads((folder / "score.json").read_text())
    rows = list(csv.DictReader((folder / "points.csv").open()))
    features = json.loads((folder / "points.geojson").read_text())["features"]
    scoring = record["scoring"]
    assert record["provenance"]["engine"] == "points" and record["provenance"]["model"] == "points-fixture"
    assert scoring["num_total"] == len(rows) == len(features) > 0
    assert scoring["num_pos"] == sum(r["positive"] == "true" for r in rows) == scoring["classes"]["positive"]
    assert scoring["num_neg"] == scoring["classes"]["negative"]
    assert record["run"] == {"threshold": 0.3, "min_distance_um": pytest.approx(3.0)}
    assert {f["geometry"]["type"] for f in features} == {"Point"}
    assert {f["properties"]["objectType"] for f in features} == {"detection"}
    assert [f["geometry"]["coordinates"] for f in features] == [[float(r["x"]) + 0.5, float(r["y"]) + 0.5] for r in rows]
    assert all(float(r["confidence"]) >= 0.3 for r in rows)
    xy = np.array([[float(r["x"]), float(r["y"])] for r in rows])
    gaps = np.hypot(*(xy[:, None] - xy[None]).transpose(2, 0, 1)) + np.eye(len(xy)) * 1e9
    assert gaps.min() > 3.0 / 0.25  # no two points within the card's 3 µm at 40x

    truth_png = shared_dir / "data/groundtruth/22_2.png"
    assert main(["evaluate", str(folder), str(truth_png), "--json", str(tmp_path / "e.json")]) == 0
    report = json.loads((tmp_path / "e.json").read_text())
    assert report["mask"] is None
    truth = read_annotation(truth_png).annotation.centroids()
    expected = evaluate_points(read_annotation(folder / "points.csv").annotation, truth, radius=16)
    assert report["points"] == pytest.approx(expected.as_dict())
    # a fitted fixture, not a real model: it finds most nuclei, with many extra points
    assert report["points"]["recall"] > 0.5 and report["points"]["num_predicted"] == scoring["num_total"]


def test_torchscript_and_state_dict_give_the_same_points(point_models, engine, ihc):
    traced = load_engine("points", point_models[1], device="cpu")
    a = detect_region(engine, ihc).detections
    b = detect_region(traced, ihc).detections
    matched = evaluate_points(a.points(), b.points(), radius=0.5)
    assert matched.detection.f1 > 0.98 and matched.class_agreement == 1.0


def test_a_region_gets_the_points_the_whole_image_has_there(engine, ihc):
    whole = detect_region(engine, ihc).detections
    region = (100, 90, 200, 150)
    part = detect_region(engine, ihc, region=region)
    inside = (whole.xy[:, 0] >= region[0] - 0.5) & (whole.xy[:, 0] < region[0] + region[2] - 0.5) \
        & (whole.xy[:, 1] >= region[1] - 0.5) & (whole.xy[:, 1] < region[1] + region[3] - 0.5)
    found = part.detections
    ours = {tuple(p) for p in (found.xy + part.origin).tolist()}
    assert ours == {tuple(p) for p in whole.xy[inside].tolist()}
    assert part.scoring["num_total"] == int(inside.sum())


def test_a_region_whose_chain_of_suppressions_leaves_the_first_window_still_gets_the_whole_images_points(
        engine, ihc):
    threshold, distance_um = 0.1, 3.0  # 12 px at 0.25 µm/px: the first window's margin is 25 px
    whole = detect_region(engine, ihc, threshold=threshold, min_distance_um=distance_um)
    region = (120, 160, 40, 40)
    x, y, w, h = region
    expected = {tuple(p) for p in whole.detections.xy[in_box(whole.detections.xy, region)].tolist()}
    assert len(expected) > 3
    # the fixed margin's answer on the same heat maps differs from the whole image's
    margin = 25
    fixed = (y - margin, y + h + margin, x - margin, x + w + margin)
    cut = detect_points(whole.heatmaps[:, fixed[0]:fixed[1], fixed[2]:fixed[3]], engine.card.class_names,
                        engine.card.positive_classes, threshold=threshold, min_distance=distance_um / 0.25)
    cut_xy = cut.xy + (fixed[2], fixed[0])
    assert {tuple(p) for p in cut_xy[in_box(cut_xy, region)].tolist()} != expected

    part = detect_region(engine, ihc, region=region, threshold=threshold, min_distance_um=distance_um)
    assert part.heatmaps.shape[1] > h + 2 * margin or part.heatmaps.shape[2] > w + 2 * margin  # the window grew
    assert {tuple(p) for p in (part.detections.xy + part.origin).tolist()} == expected
    inside = in_box(whole.detections.xy, region)
    assert part.exact and part.scoring["num_total"] == len(expected)
    assert part.scoring["num_pos"] == int(whole.detections.positive[inside].sum())


def test_rescoring_without_the_network_equals_a_fresh_run(engine, ihc):
    base = detect_region(engine, ihc)
    for threshold, distance in ((0.6, 6.0), (0.1, 1.0)):
        again = base.rescore(threshold=threshold, min_distance_um=distance)
        fresh = detect_region(engine, ihc, threshold=threshold, min_distance_um=distance)
        np.testing.assert_array_equal(again.detections.xy, fresh.detections.xy)
        assert again.scoring == fresh.scoring and again.exact  # the window is the whole image
    assert base.rescore(threshold=0.9).scoring["num_total"] < base.scoring["num_total"]
    assert base.rescore(min_distance_um=8).scoring["num_total"] < base.scoring["num_total"]
    with pytest.raises(ValueError, match="below"):
        base.rescore(threshold=0.01)



@pytest.mark.parametrize(("changes", "field"), [
    ({"min_distance_um": None}, "min_distance_um"),
    ({"threshold": 1.5}, "threshold"),
    ({"classes": ["a", "b", "c", "d"]}, "classes"),
    ({"positive": ["tumour"]}, "positive"),
    ({"positive": None}, "positive"),
])
def test_bad_cards_name_the_field(point_models, tmp_path, changes, field):
    folder = copy_model(point_models[1], tmp_path / "m", **changes)
    with pytest.raises(ModelError, match=f"field '{field}'"):
        load_engine("auto", folder, device="cpu")


def test_weights_that_do_not_fit_the_card_are_refused(point_models, tmp_path):
    three = ["positive", "negative", "other"]
    with pytest.raises(ModelError, match="TorchScript model gives"):
        load_engine("auto", copy_model(point_models[1], tmp_path / "ts", classes=three), device="cpu")
    with pytest.raises(ModelError):
        load_engine("auto", copy_model(point_models[0], tmp_path / "sd", classes=three), device="cpu")
    with pytest.raises(DeepLIIFError, match="not 'classmap'"):
        load_engine("classmap", point_models[0], device="cpu")


def test_front_ends_without_points_say_so(engine, ihc, shared_dir, tmp_path, user_model_dirs):
    from napari_deepliif.cells.postprocess import Settings
    from napari_deepliif.regions.score import score_region
    from napari_deepliif.slides.run import score_slide

    with pytest.raises(DeepLIIFError, match="finds points, not cells"):
        score_region(engine, ihc)
    with pytest.raises(DeepLIIFError, match="points, which have no compartments"):
        score_slide(engine, shared_dir / "data/ihc/22_2.png", tmp_path / "out", settings=Settings(compartment="nucleus"))
    assert not (tmp_path / "out").exists()


def test_points_layer_in_a_real_viewer_updates_in_place_and_reads_back(make_napari_viewer, engine, ihc):
    from napari_deepliif.widget.points_layer import (
        POINTS_LAYER_NAME,
        points_from_layer,
        show_points,
    )

    viewer = make_napari_viewer()
    image = viewer.add_image(ihc, rgb=True, scale=(2, 2), translate=(10, 20))
    result = detect_region(engine, ihc, region=(40, 30, 300, 250))
    found = result.detections
    layer = show_points(viewer, result, scale=image.scale, translate=image.translate)
    assert layer.name == POINTS_LAYER_NAME and len(layer.data) == found.scoring()["num_total"] > 0
    world = layer.data_to_world(layer.data[0])
    x, y = found.xy[0] + result.origin
    np.testing.assert_allclose(world, [10 + 2 * y, 20 + 2 * x])
    red = np.array([1.0, 0, 0, 1])
    np.testing.assert_allclose(layer.face_color[found.positive], np.tile(red, (int(found.positive.sum()), 1)))
    assert layer.features["class"].tolist() == found.class_names
    fewer = result.rescore(threshold=0.6)
    assert show_points(viewer, fewer, scale=image.scale, translate=image.translate) is layer
    assert len(viewer.layers) == 2 and len(layer.data) == fewer.scoring["num_total"] < len(found.xy)
    back = points_from_layer(layer)
    np.testing.assert_allclose(back.xy, fewer.detections.xy)
    np.testing.assert_array_equal(back.positive, fewer.detections.positive)
