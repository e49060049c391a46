"""A region's points are the whole image's there, however long a chain of suppressions decides
them: heat maps with a crafted chain of peaks through the pure rule and the region loop, and the
points fixture model through ``detect_region`` on a real IHC crop."""

from __future__ import annotations

import math

import numpy as np
import pytest

from napari_deepliif.cells.detections import decided_inside, deciders, detect_points
from napari_deepliif.cells.scoring import in_box
from napari_deepliif.regions.points import PointsResult, detect_in_region

NAMES, POSITIVE = ("positive", "negative"), (0,)
SHAPE = (40, 200)
#: Peaks every 4 px along row 20 from x = 10 to 150; the suppression distance is just over that.
CHAIN_X = np.arange(10, 151, 4)
DISTANCE = 4.5
THRESHOLD = 0.1
#: Right of the chain's end: the first window (margin 2 * 5 + 1) starts at x = 133.
REGION = (144, 10, 30, 20)


def chain_heatmaps(confidence: np.ndarray, alternate: bool = True) -> np.ndarray:
    """(2, 40, 200) heat maps: a Gaussian peak (sigma 1 px) of ``confidence[k]`` at
    (CHAIN_X[k], 20), of class k % 2 (``alternate``) or 0."""
    yy, xx = np.mgrid[: SHAPE[0], : SHAPE[1]]
    maps = np.zeros((2, *SHAPE))
    for k, (x, c) in enumerate(zip(CHAIN_X, confidence)):
        maps[k % 2 * alternate] = np.maximum(maps[k % 2 * alternate], c * np.exp(-((yy - 20) ** 2 + (xx - x) ** 2) / 2))
    return maps


def region_points(found, origin, region=REGION) -> set[tuple[float, float]]:
    """The image-pixel (x, y) of the points of ``found`` (window pixels at ``origin``) in ``region``."""
    xy = found.xy + origin
    return {tuple(p) for p in xy[in_box(xy, region)].tolist()}


def window_reader(heatmaps: np.ndarray, seen: list):
    def read(window):
        seen.append(window)
        return heatmaps[:, window[0] : window[1], window[2] : window[3]]
    return read


# ties are visited in candidate order (class, row, column): one class, so leftmost first
@pytest.mark.parametrize(("confidence", "alternate"), [(0.95 - 0.02 * np.arange(len(CHAIN_X)), True),
                                                       (np.full(len(CHAIN_X), 0.8), False)], ids=["decreasing", "ties"])
def test_a_chain_from_outside_the_margin_decides_the_region_as_in_the_whole_image(confidence, alternate):
    maps = chain_heatmaps(confidence, alternate)
    whole = detect_points(maps, NAMES, POSITIVE, threshold=THRESHOLD, min_distance=DISTANCE)
    # strongest first (ties: leftmost first), every other peak of the chain is kept
    assert sorted(map(tuple, whole.xy.tolist())) == [(float(x), 20.0) for x in CHAIN_X[::2]]
    expected = region_points(whole, (0, 0))
    assert expected == {(146.0, 20.0)}

    # the region plus a fixed margin misses the chain's start: its first peak there wins wrongly
    margin = 2 * math.ceil(DISTANCE) + 1
    x, y, w, h = REGION
    fixed = (0, SHAPE[0], x - margin, x + w + margin)  # rows: the image's
    cut = detect_points(maps[:, fixed[0] : fixed[1], fixed[2] : fixed[3]], NAMES, POSITIVE, threshold=THRESHOLD,
                        min_distance=DISTANCE)
    assert region_points(cut, (fixed[2], fixed[0])) == {(150.0, 20.0)}
    in_region = in_box(cut.candidates.xy, (x - fixed[2], y - fixed[0], w, h))
    assert not decided_inside(cut, in_region, (False, False, True, True))
    assert len(deciders(cut, in_region)) == len(cut.candidates)  # the whole cut chain decides

    seen = []
    found, heatmaps, window = detect_in_region(window_reader(maps, seen), SHAPE, REGION, NAMES, POSITIVE,
                                               threshold=THRESHOLD, min_distance=DISTANCE)
    assert region_points(found, (window[2], window[0])) == expected
    assert seen[0] == fixed and window[2] == 0  # grown until the chain's start is in
    assert [w[2] for w in seen] == [133, 122, 100, 56, 0]
    assert heatmaps.shape == (2, window[1] - window[0], window[3] - window[2])


def test_a_region_the_chain_does_not_reach_keeps_the_first_window():
    maps = chain_heatmaps(0.95 - 0.02 * np.arange(len(CHAIN_X)))
    seen = []
    region = (165, 5, 30, 30)  # 15 px right of the chain's last peak
    found, _, window = detect_in_region(window_reader(maps, seen), SHAPE, region, NAMES, POSITIVE,
                                        threshold=THRESHOLD, min_distance=DISTANCE)
    assert seen == [window] == [(0, 40, 154, 200)]
    assert region_points(found, (154, 0), region) == set()


def test_a_rescore_says_whether_its_window_still_settles_the_region():
    maps = chain_heatmaps(0.95 - 0.02 * np.arange(len(CHAIN_X)))
    region = (145, 10, 30, 20)  # holds the peaks at x = 146 and 150

    def run(distance):
        found, heatmaps, window = detect_in_region(window_reader(maps, []), SHAPE, region, NAMES, POSITIVE,
                                                   threshold=THRESHOLD, min_distance=distance)
        return PointsResult(found, heatmaps, 1.0, origin=(window[2], window[0]), region=region, image_shape=SHAPE)

    def whole(distance):
        return region_points(detect_points(maps, NAMES, POSITIVE, threshold=THRESHOLD, min_distance=distance),
                             (0, 0), region)

    near = run(2.0)  # peaks 4 px apart do not suppress at 2 px: the first window settles it
    assert near.origin == (140, 5) and near.exact
    assert region_points(near.detections, near.origin) == whole(2.0) == {(146.0, 20.0), (150.0, 20.0)}
    at_chain = near.rescore(min_distance_um=DISTANCE)
    # the chain behind x = 146 now decides the region, out of the window: the window's answer is wrong and says so
    assert not at_chain.exact
    assert region_points(at_chain.detections, at_chain.origin) == {(150.0, 20.0)} != whole(DISTANCE)
    rerun = run(DISTANCE)
    assert rerun.exact and region_points(rerun.detections, rerun.origin) == whole(DISTANCE) == {(146.0, 20.0)}
    assert rerun.rescore(min_distance_um=2.0).exact  # a shorter reach stays inside the larger window
