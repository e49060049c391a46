"""``evaluate``: readers of every ground-truth format, the Python API and the CLI on real files."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import tifffile
from conftest import read_rgb

from napari_deepliif.cells.evaluation import Instances, evaluate
from napari_deepliif.cells.metrics import evaluate_seg, seg_instances
from napari_deepliif.cells.points import Points
from napari_deepliif.cells.scoring import in_box
from napari_deepliif.cli.main import main
from napari_deepliif.errors import DeepLIIFError
from napari_deepliif.io.ground_truth import read_annotation


@pytest.fixture(scope="module")
def truth_png(shared_dir) -> Path:
    return shared_dir / "data/groundtruth/22_2.png"


@pytest.fixture(scope="module")
def stain_score(shared_dir, tmp_path_factory) -> Path:
    """The stain engine's score of the real tile 22_2, written by ``napari-deepliif score``."""
    out = tmp_path_factory.mktemp("score")
    assert main(["score", "--engine", "stain", str(shared_dir / "data/ihc/22_2.png"), "--out", str(out)]) == 0
    return out / "22_2"


def _evaluate_cli(capsys, *args: str | Path) -> tuple[dict, str]:
    json_path = Path(str(args[0]) + ".evaluation.json")
    assert main(["evaluate", *map(str, args), "--json", str(json_path)]) == 0
    return json.loads(json_path.read_text()), capsys.readouterr().out


def _same(flat: dict, expected: dict) -> None:
    assert flat.keys() == expected.keys()
    for key, value in expected.items():
        assert flat[key] == pytest.approx(value, abs=1e-12), key


def test_cli_on_a_score_folder_gives_the_api_figures_of_its_seg_refined(stain_score, truth_png, capsys):
    report, printed = _evaluate_cli(capsys, stain_score, truth_png)
    expected = evaluate_seg(read_rgb(stain_score / "SegRefined.png"), read_rgb(truth_png))
    _same(report["mask"], expected.as_dict())
    assert report["settings"]["mpp"] == 0.25 and report["settings"]["radius_px"] == 16
    assert "the prediction's score" in report["settings"]["mpp_source"]
    assert f"{expected.aji:.3f}" in printed and f"{expected.dice:.3f}" in printed
    # the point metrics are those of the centroids of the same cells
    truth = Instances.from_seg(read_rgb(truth_png))
    predicted = Instances.from_seg(read_rgb(stain_score / "SegRefined.png"))
    api = evaluate(predicted, truth, mpp=0.25, radius_um=4)
    _same(report["points"], api.points.as_dict())
    assert report["points"]["num_predicted"] == json.loads((stain_score / "score.json").read_text())["scoring"]["num_total"]


def test_cli_on_the_engine_seg_reproduces_the_stain_engine_table(stain_score, truth_png, capsys):
    """docs/stain-engine.md scores the stain engine's Seg as it comes out."""
    report, _ = _evaluate_cli(capsys, stain_score / "Seg.png", truth_png)
    _same(report["mask"], evaluate_seg(read_rgb(stain_score / "Seg.png"), read_rgb(truth_png)).as_dict())
    assert report["settings"]["mpp_source"].startswith("assumed")


def test_cli_reproduces_the_published_deepliif_2021_figures(shared_dir, truth_png, tmp_path, capsys):
    """SOURCES.md: Dice 0.77, IoU 0.63, AJI 0.46, F1 0.57, 1.7 pp (4-connected instances)."""
    outputs = shared_dir / "data/deepliif-2021-outputs"
    assert main(["postprocess", str(outputs / "22_2_IHC.png"), "--seg", str(outputs / "22_2_Seg.png"),
                 "--marker", str(outputs / "22_2_Marker.png"), "--out", str(tmp_path)]) == 0
    report, _ = _evaluate_cli(capsys, tmp_path / "22_2_IHC", truth_png, "--connectivity", "4")
    m = report["mask"]
    assert round(m["dice"], 2) == 0.77 and round(m["iou"], 2) == 0.63
    assert round(m["aji"], 2) == 0.46 and round(m["f1"], 2) == 0.57
    assert round(m["quantification_difference"], 1) == 1.7


def test_a_label_image_with_a_class_table_reads_as_its_seg_mask(stain_score, truth_png, tmp_path, capsys):
    labels, positive = seg_instances(read_rgb(truth_png))
    ids = np.where(labels > 0, labels * 1000 + 7, 0).astype(np.uint32)  # arbitrary ids
    tifffile.imwrite(tmp_path / "truth.tif", ids)
    with (tmp_path / "classes.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "class"])
        writer.writerows([k * 1000 + 7, "Positive" if positive[k] else "Negative"] for k in range(1, len(positive)))
    report, _ = _evaluate_cli(capsys, stain_score / "Seg.png", tmp_path / "truth.tif",
                              "--truth-classes", tmp_path / "classes.csv")
    _same(report["mask"], evaluate_seg(read_rgb(stain_score / "Seg.png"), read_rgb(truth_png)).as_dict())
    with pytest.raises(DeepLIIFError, match="class table"):
        read_annotation(tmp_path / "truth.tif")
    # a score folder's labels.tif takes its classes from the folder's cells.csv
    own = read_annotation(stain_score / "labels.tif").annotation
    refined = Instances.from_seg(read_rgb(stain_score / "SegRefined.png"))
    assert (len(own), int(own.positive.sum())) == (len(refined), int(refined.positive.sum()))


def _assert_same_points(a: Points, b: Points) -> None:
    order_a, order_b = np.lexsort(a.xy.T), np.lexsort(b.xy.T)
    np.testing.assert_allclose(a.xy[order_a], b.xy[order_b], atol=1e-9)
    np.testing.assert_array_equal(a.positive[order_a], b.positive[order_b])


def test_the_cells_geojson_of_a_score_gives_the_centroids_of_its_cells_csv(stain_score):
    from_geojson = read_annotation(stain_score / "cells.geojson").annotation
    from_csv = read_annotation(stain_score / "cells.csv").annotation
    assert len(from_csv) == json.loads((stain_score / "score.json").read_text())["scoring"]["num_total"]
    _assert_same_points(from_geojson, from_csv)


def test_qupath_point_objects_and_plain_csv(truth_png, tmp_path, capsys):
    truth = read_annotation(truth_png).annotation.centroids()
    pos, neg = truth.xy[truth.positive] + 0.5, truth.xy[~truth.positive] + 0.5  # QuPath pixel corners
    features = [  # as QuPath exports its Points tool: one MultiPoint annotation per class
        {"type": "Feature", "geometry": {"type": "MultiPoint", "coordinates": pos.tolist()},
         "properties": {"objectType": "annotation", "classification": {"name": "Positive", "color": [255, 0, 0]}}},
        *({"type": "Feature", "geometry": {"type": "Point", "coordinates": xy},
           "properties": {"objectType": "detection", "classification": "Tumor: Negative"}} for xy in neg.tolist()),
        {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [512, 0], [512, 512], [0, 0]]]},
         "properties": {"objectType": "annotation", "classification": "Region*"}},  # a region: not a cell
    ]
    (tmp_path / "truth.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    _assert_same_points(read_annotation(tmp_path / "truth.geojson").annotation, truth)

    with (tmp_path / "truth.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["X", "Y", "Class"])
        writer.writerows([x, y, "1+" if p else "negative"] for (x, y), p in zip(truth.xy, truth.positive))
    _assert_same_points(read_annotation(tmp_path / "truth.csv").annotation, truth)

    report, printed = _evaluate_cli(capsys, truth_png, tmp_path / "truth.geojson")
    assert report["mask"] is None and "masks" not in printed
    assert report["points"]["f1"] == 1.0 and report["points"]["mean_distance_px"] == pytest.approx(0, abs=1e-9)


def test_a_points_layer_saved_by_napari(make_napari_viewer, truth_png, tmp_path):
    truth = read_annotation(truth_png).annotation.centroids()
    viewer = make_napari_viewer()
    layer = viewer.add_points(truth.xy[:, ::-1], features={"class": np.where(truth.positive, "positive", "negative")})
    written = layer.save(str(tmp_path / "points.csv"))
    assert written
    loaded = read_annotation(tmp_path / "points.csv").annotation
    _assert_same_points(loaded, truth)
    m = evaluate(Instances.from_seg(read_rgb(truth_png)), loaded, mpp=0.25)
    assert m.mask is None and m.points.detection.f1 == 1.0 and m.points.class_agreement == 1.0


def test_a_region_score_counts_only_the_truth_in_its_region(shared_dir, truth_png, tmp_path, capsys):
    assert main(["score", "--engine", "stain", str(shared_dir / "data/ihc/22_2.png"), "--roi", "100,50,300,250",
                 "--out", str(tmp_path)]) == 0
    report, printed = _evaluate_cli(capsys, tmp_path / "22_2", truth_png)
    truth = read_annotation(truth_png).annotation.centroids()
    assert report["mask"] is None and "cells.csv" in printed
    assert report["points"]["num_truth"] == int(in_box(truth.xy, (100, 50, 300, 250)).sum())
    assert report["points"]["num_truth"] < len(truth)


@pytest.mark.parametrize(("content", "message"), [
    ("x,y\n1,2\n", "no class column"),
    ("a,b,class\n1,2,Positive\n", "no coordinate columns"),
    ("x,y,class\n1,2,Stroma\n", "neither positive nor negative"),
    ("x,y,class\n1,oops,Positive\n", "not a number"),
])
def test_bad_point_files_say_what_is_wrong(tmp_path, content, message):
    (tmp_path / "p.csv").write_text(content)
    with pytest.raises(DeepLIIFError, match=message):
        read_annotation(tmp_path / "p.csv")


def test_bad_inputs_give_one_line_errors(stain_score, truth_png, tmp_path, capsys):
    (tmp_path / "p.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [1, 2]}, "properties": {}}]}))
    with pytest.raises(DeepLIIFError, match="no classification"):
        read_annotation(tmp_path / "p.geojson")
    with pytest.raises(DeepLIIFError, match="without score.json"):
        read_annotation(tmp_path)
    with pytest.raises(DeepLIIFError, match="does not exist"):
        read_annotation(tmp_path / "missing.png")
    small = read_rgb(truth_png)[:100, :100]
    from PIL import Image

    Image.fromarray(small).save(tmp_path / "small.png")
    assert main(["evaluate", str(stain_score), str(tmp_path / "small.png")]) == 1
    assert "mask sizes differ" in capsys.readouterr().err


def test_a_malformed_geometry_is_named(tmp_path):
    (tmp_path / "p.geojson").write_text(json.dumps([
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": ["a"]}, "properties": {"classification": "Positive"}}]))
    with pytest.raises(DeepLIIFError, match="feature 0 has a malformed Point"):
        read_annotation(tmp_path / "p.geojson")


def test_a_broken_score_record_is_named(tmp_path):
    (tmp_path / "score.json").write_text("{not json")
    with pytest.raises(DeepLIIFError, match="is not a score record"):
        read_annotation(tmp_path)
