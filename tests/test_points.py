"""Points: detection metrics (hand-made cases with known answers, the shared ground truth moved by
known amounts) and point detection from heat maps (synthetic maps with known peaks)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import maximum_bipartite_matching

from napari_deepliif.cells.detections import (
    detect_points,
    find_candidates,
    select_points,
    suppress,
)
from napari_deepliif.cells.evaluation import Instances
from napari_deepliif.cells.points import Points, evaluate_points, match_points
from napari_deepliif.io.ground_truth import read_annotation


def _points(xy, positive=None) -> Points:
    xy = np.asarray(xy, dtype=float).reshape(-1, 2)
    return Points(xy, np.ones(len(xy), bool) if positive is None else positive)


def test_matching_finds_the_pairs_a_nearest_first_matching_misses():
    truth = [(0, 0), (2, 0)]
    predicted = [(1.1, 0), (3.2, 0)]  # nearest pair first (0.9) would leave the second alone
    p, t = match_points(predicted, truth, radius=1.5)
    assert p.tolist() == [0, 1] and t.tolist() == [0, 1]


def test_matching_takes_the_least_total_distance_among_the_largest_matchings():
    p, t = match_points([(9, 0), (1, 0)], [(0, 0), (10, 0)], radius=20)
    assert p.tolist() == [0, 1] and t.tolist() == [1, 0]


def test_a_pair_at_exactly_the_radius_matches():
    assert len(match_points([(3, 4)], [(0, 0)], radius=5)[0]) == 1
    assert len(match_points([(3, 4)], [(0, 0)], radius=4.999)[0]) == 0
    with pytest.raises(ValueError):
        match_points([(0, 0)], [(0, 0)], radius=-1)


def test_matching_is_as_large_and_as_short_as_a_dense_assignment():
    rng = np.random.default_rng(3)
    truth = rng.uniform(0, 60, (80, 2))
    predicted = np.concatenate([truth[:60] + rng.normal(0, 2.5, (60, 2)), rng.uniform(0, 60, (30, 2))])
    radius = 4.0
    p, t = match_points(predicted, truth, radius)
    distance = np.hypot(*(predicted[:, None, :] - truth[None, :, :]).transpose(2, 0, 1))
    assert (distance[p, t] <= radius).all()
    assert len(set(p.tolist())) == len(p) and len(set(t.tolist())) == len(t)
    # the size of a maximum matching of the "within radius" graph
    largest = int((maximum_bipartite_matching(csr_matrix(distance <= radius), perm_type="column") >= 0).sum())
    assert len(p) == largest
    cost = np.where(distance <= radius, distance, 1e6)
    r, c = linear_sum_assignment(cost)
    assert distance[p, t].sum() == pytest.approx(cost[r, c][cost[r, c] < 1e6].sum())


def test_detection_and_class_scores_known_values():
    truth = _points([(0, 0), (50, 0), (100, 0), (150, 0)], [True, True, False, False])
    # one positive called negative, one extra negative far away, the second negative missed
    predicted = _points([(1, 0), (50, 1), (100, 0), (400, 400)], [True, False, False, False])
    m = evaluate_points(predicted, truth, radius=3)
    d = m.detection
    assert (d.true_positives, d.false_positives, d.false_negatives) == (3, 1, 1)
    assert (d.precision, d.recall, d.f1) == (0.75, 0.75, 0.75)
    assert m.class_agreement == pytest.approx(2 / 3)
    assert m.mean_distance == pytest.approx(2 / 3)
    pos, neg = m.positive, m.negative
    assert (pos.true_positives, pos.false_positives, pos.false_negatives) == (1, 0, 1)
    assert (neg.true_positives, neg.false_positives, neg.false_negatives) == (1, 2, 1)
    assert neg.precision == pytest.approx(1 / 3) and neg.recall == 0.5 and neg.f1 == pytest.approx(0.4)
    assert m.count_error == 0
    assert (m.percent_positive_truth, m.percent_positive_predicted, m.proportion_error) == (50.0, 25.0, 25.0)
    flat = m.as_dict()
    assert flat["f1"] == 0.75 and flat["recall_positive"] == 0.5 and flat["radius_px"] == 3


def test_empty_point_sets():
    none = _points(np.zeros((0, 2)))
    m = evaluate_points(none, none, radius=5)
    assert (m.detection.precision, m.detection.recall, m.detection.f1) == (1.0, 1.0, 1.0)
    assert m.class_agreement is None and m.mean_distance is None and m.proportion_error == 0.0
    some = _points([(0, 0), (9, 9)])
    missed = evaluate_points(none, some, radius=5)
    assert (missed.detection.precision, missed.detection.recall, missed.detection.f1) == (0.0, 0.0, 0.0)
    assert missed.count_error == -2
    with pytest.raises(ValueError):
        Points(np.zeros((2, 2)), np.zeros(3, bool))
    with pytest.raises(ValueError):
        Points([(np.nan, 1)], [True])


@pytest.fixture(scope="module")
def truth_centroids(shared_dir) -> Points:
    loaded = read_annotation(shared_dir / "data/groundtruth/22_2.png")
    assert isinstance(loaded.annotation, Instances)
    return loaded.annotation.centroids()


def test_ground_truth_centroids_against_themselves_moved(truth_centroids):
    truth = truth_centroids
    assert (len(truth), truth.num_positive) == (136, 10)
    nearest = np.sort(np.hypot(*(truth.xy[:, None] - truth.xy[None]).transpose(2, 0, 1)), axis=1)[:, 1].min()
    assert nearest > 14  # so a 5 px move keeps every point nearer its own cell than any other
    moved = Points(truth.xy + (3, 4), truth.positive)  # 5 px
    m = evaluate_points(moved, truth, radius=5.001)
    assert (m.detection.f1, m.positive.f1, m.negative.f1, m.class_agreement) == (1.0, 1.0, 1.0, 1.0)
    assert m.mean_distance == pytest.approx(5.0)
    assert evaluate_points(moved, truth, radius=4.99).detection.true_positives == 0

    kept = np.arange(len(truth)) % 4 != 0  # drop every fourth point, flip the class of 5 more
    flipped = moved.positive.copy()
    flip = np.flatnonzero(kept)[:5]
    flipped[flip] = ~flipped[flip]
    thinned = Points(moved.xy[kept], flipped[kept])
    m = evaluate_points(thinned, truth, radius=6)
    assert (m.detection.true_positives, m.detection.false_negatives, m.detection.false_positives) == (102, 34, 0)
    assert m.class_agreement == pytest.approx(97 / 102)
    assert m.count_error == -34
    assert m.num_positive_predicted == int(flipped[kept].sum())
    assert m.proportion_error == pytest.approx(abs(100 * flipped[kept].mean() - 100 * 10 / 136))


# ---- point detection: heat maps -> points ---------------------------------------------------


def _blobs(shape, peaks, sigma=3.0) -> np.ndarray:
    """Heat maps (C, H, W): Gaussian blobs ``(class, x, y, height)``, the maximum where they overlap."""
    n_classes = max(c for c, *_ in peaks) + 1
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    maps = np.zeros((n_classes, *shape))
    for c, x, y, height in peaks:
        maps[c] = np.maximum(maps[c], height * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma**2)))
    return maps


NAMES = ("Positive", "Negative")


def test_known_peaks_become_points_with_class_and_confidence():
    peaks = [(0, 20, 30, 0.9), (1, 60, 30, 0.8), (1, 40, 70, 0.6),
             (0, 80, 80, 0.7), (1, 81, 80, 0.5),  # one nucleus seen by both classes: positive wins
             (1, 10, 90, 0.2)]  # too weak
    found = detect_points(_blobs((100, 100), peaks), NAMES, (0,), threshold=0.3, min_distance=6)
    order = np.lexsort(found.xy.T)
    np.testing.assert_array_equal(found.xy[order], [[20, 30], [60, 30], [40, 70], [80, 80]])
    assert [found.class_names[i] for i in order] == ["Positive", "Negative", "Negative", "Positive"]
    np.testing.assert_allclose(found.confidence[order], [0.9, 0.8, 0.6, 0.7])
    assert found.counts() == {"Positive": 2, "Negative": 2}
    assert found.scoring() == {"num_total": 4, "num_pos": 2, "num_neg": 2, "percent_pos": 50.0,
                               "threshold": 0.3, "min_distance": 6.0}
    assert found.reselect(threshold=0.1).scoring()["num_total"] == 5


def test_reselection_equals_a_fresh_run_and_the_distance_merges_close_nuclei():
    peaks = [(0, 20, 20, 0.9), (0, 30, 20, 0.8), (1, 70, 70, 0.6), (1, 70, 80, 0.55)]  # two pairs 10 px apart
    maps = _blobs((100, 100), peaks, sigma=2.0)
    base = detect_points(maps, NAMES, (0,), threshold=0.1, min_distance=5, floor=0.05)
    assert base.scoring()["num_total"] == 4
    merged = base.reselect(min_distance=12)
    assert merged.scoring()["num_total"] == 2
    np.testing.assert_array_equal(np.sort(merged.confidence), [0.6, 0.9])
    for threshold, distance in ((0.1, 12), (0.58, 5), (0.05, 0)):
        again = base.reselect(threshold=threshold, min_distance=distance)
        fresh = detect_points(maps, NAMES, (0,), threshold=threshold, min_distance=distance, floor=0.05)
        np.testing.assert_array_equal(again.xy, fresh.xy)
        np.testing.assert_array_equal(again.cls, fresh.cls)
    with pytest.raises(ValueError, match="below"):
        base.reselect(threshold=0.01)


def test_a_plateau_gives_one_point_and_suppression_is_greedy():
    maps = np.zeros((1, 20, 20))
    maps[0, 5:8, 5:8] = 0.7  # flat top: several local maxima, one point
    found = detect_points(maps, ("Positive",), (0,), threshold=0.5, min_distance=3)
    assert found.scoring()["num_total"] == 1
    # a chain: 1 suppresses 2 (dist 4), so 3 (dist 4 from 2, 8 from 1) survives
    kept = suppress(np.array([[0.0, 0], [4, 0], [8, 0]]), np.array([0.9, 0.8, 0.7]), min_distance=5)
    assert kept.tolist() == [0, 2]


def test_bad_heat_maps_are_refused():
    with pytest.raises(ValueError, match="class names"):
        find_candidates(np.zeros((2, 5, 5)), ("Positive",), (0,))
    with pytest.raises(ValueError, match="classes, height, width"):
        find_candidates(np.zeros((5, 5)), ("Positive",), (0,))
    with pytest.raises(ValueError, match="NaN"):
        find_candidates(np.full((1, 5, 5), np.nan), ("Positive",), (0,))
    with pytest.raises(ValueError, match="positive classes"):
        find_candidates(np.zeros((1, 5, 5)), ("Positive",), (3,))
    empty = select_points(find_candidates(np.zeros((2, 5, 5)), NAMES, (0,)), threshold=0.5, min_distance=3)
    assert empty.scoring()["num_total"] == 0 and empty.counts() == {"Positive": 0, "Negative": 0}


def test_point_files_read_back_as_the_points_written(tmp_path):
    from napari_deepliif.io.ground_truth import read_annotation
    from napari_deepliif.io.placement import Placement
    from napari_deepliif.io.point_exports import write_point_outputs

    peaks = [(0, 20, 30, 0.9), (1, 60, 30, 0.8), (1, 40, 70, 0.6)]
    found = detect_points(_blobs((100, 100), peaks), NAMES, (0,), threshold=0.3, min_distance=6)
    record = {"placement": {"mpp": 0.5, "downsample": 1.0, "origin": [1000, 2000], "shape": [100, 100],
                            "region": [1000, 2000, 100, 100], "resolution": "20x"}}
    paths = write_point_outputs(tmp_path, found, record=record, placement=Placement((1000, 2000)))
    geojson = json.loads(paths["points.geojson"].read_text())
    assert [f["geometry"]["coordinates"] for f in geojson["features"]] == [[1020.5, 2030.5], [1060.5, 2030.5],
                                                                            [1040.5, 2070.5]]
    assert [f["properties"]["classification"] for f in geojson["features"]] == ["Positive", "Negative", "Negative"]
    assert {f["properties"]["objectType"] for f in geojson["features"]} == {"detection"}
    expected = Points(found.xy + (1000, 2000), found.positive)
    for source in (paths["points.geojson"], paths["points.csv"], tmp_path):
        loaded = read_annotation(source)
        np.testing.assert_allclose(loaded.annotation.xy, expected.xy)
        np.testing.assert_array_equal(loaded.annotation.positive, expected.positive)
    folder = read_annotation(tmp_path)
    assert (folder.mpp, folder.region) == (0.5, (1000, 2000, 100, 100))
