"""The QuPath extension's Java core against the real server: compile it with javac, run its
JUnit 5 tests (qupath-extension/ci/test-core.sh) against a stain-engine server on loopback, and
check that the cells the Java client ends up with equal the engine's for the same pixels."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import read_rgb
from scipy.spatial import cKDTree

from napari_deepliif.engine.engines import load_engine
from napari_deepliif.regions.score import score_region
from napari_deepliif.server import ServerHandle

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "qupath-extension" / "ci" / "test-core.sh"
#: Polygon centroids (pixel-edge outlines) and table centroids + 0.5 agree to float precision;
#: 1/64 px corner adjustments move a centroid by far less than this.
CENTROID_TOLERANCE = 0.01


@pytest.fixture(scope="module")
def junit_run(shared_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Run ci/test-core.sh once against a live server; its output and the round-trip JSON."""
    if shutil.which("javac") is None:
        pytest.fail("javac not found: install a JDK 17+ (apt-get install openjdk-17-jdk-headless)")
    work = tmp_path_factory.mktemp("qupath-core")
    sample = shared_dir / "data" / "ihc" / "ROI_1.png"
    result = work / "roundtrip.json"
    env_before = os.environ.get("NAPARI_DEEPLIIF_CONFIG_DIR")
    os.environ["NAPARI_DEEPLIIF_CONFIG_DIR"] = str(work / "config")
    try:
        with ServerHandle.start("stain", host="127.0.0.1", port=0) as server:
            env = dict(os.environ, DEEPLIIF_URL=server.url, DEEPLIIF_TOKEN=server.token,
                       DEEPLIIF_SAMPLE=str(sample), DEEPLIIF_RESULT=str(result))
            run = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=600)
    finally:
        if env_before is None:
            os.environ.pop("NAPARI_DEEPLIIF_CONFIG_DIR", None)
        else:
            os.environ["NAPARI_DEEPLIIF_CONFIG_DIR"] = env_before
    output = run.stdout + run.stderr
    data = json.loads(result.read_text()) if result.exists() else None
    return {"returncode": run.returncode, "output": output, "result": data, "image": read_rgb(sample)}


def summary_count(output: str, what: str) -> int:
    match = re.search(rf"\[\s*(\d+) tests {what}\s*\]", output)
    assert match, f"no '{what}' line in JUnit's summary:\n{output[-3000:]}"
    return int(match.group(1))


def test_junit_core_tests_pass_against_the_real_server(junit_run: dict) -> None:
    output = junit_run["output"]
    assert junit_run["returncode"] == 0, output[-6000:]
    assert summary_count(output, "successful") > 0
    assert summary_count(output, "failed") == 0
    assert summary_count(output, "aborted") == 0
    assert summary_count(output, "skipped") == 0
    assert "excluding the tests tagged 'server'" not in output
    assert "ServerClientTest" in output and "RoundTripTest" in output, "the server tests did not run"


def expected_cells(image: np.ndarray, region: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Counted cells of ``engine.score(image, region)``: full-image polygon centroids (table
    centroid + 0.5, the GeoJSON pixel-corner convention), positive flags and areas."""
    result = score_region(load_engine("stain"), image, region=region)
    post = result.post
    counted = np.asarray(post.counted)
    centroids = post.table.centroid_xy[counted] + 0.5 + np.asarray(result.origin, float)
    return centroids, np.asarray(post.positive)[counted], np.asarray(post.table.area)[counted]


def assert_same_cells(java: list, centroids: np.ndarray, positive: np.ndarray, areas: np.ndarray, what: str) -> None:
    """Same number of cells, matched one to one by centroid, with the same class and area."""
    got = np.array([[c[0], c[1]] for c in java], float).reshape(-1, 2)
    assert len(got) == len(centroids), f"{what}: Java kept {len(got)} cells, the engine gives {len(centroids)}"
    distance, index = cKDTree(centroids).query(got)
    assert distance.max(initial=0) < CENTROID_TOLERANCE, f"{what}: centroid off by {distance.max()} px"
    assert len(set(index.tolist())) == len(index), f"{what}: two Java cells matched one engine cell"
    java_positive = np.array([c[2] == "Positive" for c in java])
    assert set(c[2] for c in java) <= {"Positive", "Negative"}
    np.testing.assert_array_equal(java_positive, positive[index], err_msg=f"{what}: classes differ")
    np.testing.assert_allclose([c[3] for c in java], areas[index], atol=1e-6, err_msg=f"{what}: areas differ")


def test_single_tile_round_trip_equals_the_engine(junit_run: dict) -> None:
    data = junit_run["result"]
    assert data is not None, junit_run["output"][-4000:]
    region = tuple(data["region"])
    centroids, positive, areas = expected_cells(junit_run["image"], region)
    single = data["single"]
    assert_same_cells(single["cells"], centroids, positive, areas, "single tile")
    assert single["num_positive"] == int(positive.sum())
    assert single["percent_positive"] == round(positive.sum() / len(positive) * 100, 1)
    assert single["engine"] == "stain"


def axis_tiles(length: int, size: int, overlap: int) -> list[tuple[int, float, float]]:
    """(start, core start, core end) along one axis: tiles every size - overlap px, the last one
    ending at the edge; cores meet in the middle of each overlap."""
    if length <= size:
        return [(0, -math.inf, math.inf)]
    step = size - overlap
    n = math.ceil((length - size) / step) + 1
    starts = [min(i * step, length - size) for i in range(n)]
    bounds = [-math.inf] + [(starts[i] + starts[i - 1] + size) / 2 for i in range(1, n)] + [math.inf]
    return [(starts[i], bounds[i], bounds[i + 1]) for i in range(n)]


def test_tiled_round_trip_keeps_each_owned_cell_once(junit_run: dict) -> None:
    """Tiling changes what the engine sees at tile borders (and the per-tile default size
    threshold), so the tiled run is compared with the engine on each tile: each cell comes from
    the tile whose core holds its centroid, and must lie inside the mask."""
    import shapely
    from shapely import wkt

    data = junit_run["result"]
    assert data is not None, junit_run["output"][-4000:]
    x0, y0, width, height = data["region"]
    tiled = data["tiled"]
    mask = wkt.loads(tiled["mask_wkt"])
    xs, ys = axis_tiles(width, 512, 64), axis_tiles(height, 512, 64)
    layout = [(x, y) for y, *_ in ys for x, *_ in xs]
    assert [(t["x"], t["y"]) for t in tiled["tiles"]] == layout
    image = junit_run["image"]
    centroids, positive, areas = [], [], []
    for (ty, cy0, cy1) in ys:
        for (tx, cx0, cx1) in xs:
            w, h = min(512, width), min(512, height)
            c, p, a = expected_cells(image, (x0 + tx, y0 + ty, w, h))
            local = c - (x0, y0)
            near = np.abs(local[:, :1] - [[cx0, cx1]]).min(initial=math.inf) if len(c) else math.inf
            near = min(near, np.abs(local[:, 1:] - [[cy0, cy1]]).min(initial=math.inf) if len(c) else math.inf)
            assert near > 1e-6, "a centroid lies on a core boundary: pick another region"
            owned = ((local[:, 0] >= cx0) & (local[:, 0] < cx1) & (local[:, 1] >= cy0) & (local[:, 1] < cy1)
                     & shapely.contains_xy(mask, c[:, 0], c[:, 1]))
            centroids.append(c[owned])
            positive.append(p[owned])
            areas.append(a[owned])
    centroids, positive, areas = np.concatenate(centroids), np.concatenate(positive), np.concatenate(areas)
    assert 50 < len(centroids)
    assert_same_cells(tiled["cells"], centroids, positive, areas, "tiled with overlap")
