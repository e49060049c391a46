"""The QuPath extension's Java core against the real server, one request per annotation: run
its JUnit 5 tests (qupath-extension/ci/test-core.sh) against a stain-engine server on loopback,
and check that the cells QuPath ends up with for an elliptical annotation equal the engine's
``score`` of the same region, counted in the same outline, whether the server reads the region
from the file (POST /api/regions/score) or the extension uploads its pixels (POST /api/score)."""

from __future__ import annotations

import json
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
#: Polygon centroids (pixel-edge outlines) and table centroids + 0.5 agree to float precision.
CENTROID_TOLERANCE = 0.01
#: Cells whose centroid lies this close to the outline may be counted by one side only (the
#: server tests its own centroid, the extension the outline's).
BOUNDARY = 1.0


@pytest.fixture(scope="module")
def junit_run(shared_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Run ci/test-core.sh once against a live server; its output and the cells it wrote."""
    if shutil.which("javac") is None:
        pytest.fail("javac not found: install a JDK 17+ (apt-get install openjdk-17-jdk-headless)")
    work = tmp_path_factory.mktemp("qupath-regions")
    sample = shared_dir / "data" / "ihc" / "ROI_1.png"
    results = work / "results"
    env_before = os.environ.get("NAPARI_DEEPLIIF_CONFIG_DIR")
    os.environ["NAPARI_DEEPLIIF_CONFIG_DIR"] = str(work / "config")
    try:
        with ServerHandle.start("stain", host="127.0.0.1", port=0) as server:
            env = dict(os.environ, DEEPLIIF_URL=server.url, DEEPLIIF_TOKEN=server.token,
                       DEEPLIIF_SAMPLE=str(sample.resolve()), DEEPLIIF_RESULT=str(results))
            run = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=600)
    finally:
        if env_before is None:
            os.environ.pop("NAPARI_DEEPLIIF_CONFIG_DIR", None)
        else:
            os.environ["NAPARI_DEEPLIIF_CONFIG_DIR"] = env_before

    def load(name: str) -> dict | None:
        path = results / f"{name}.json"
        return json.loads(path.read_text()) if path.exists() else None

    return {"returncode": run.returncode, "output": run.stdout + run.stderr, "server": load("server"),
            "upload": load("upload"), "image": read_rgb(sample)}


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
    # the stain engine's DAB threshold, sent with a region and with an upload
    assert "theStainEnginesDabThresholdIsSentWithTheRegionAndTheUpload() ✔" in output
    # a compartment score with bins, read by the server and uploaded
    assert "aCompartmentScoreComesBackWithBinsAndMeasurementsOnEveryCell() ✔" in output


def engine_cells(image: np.ndarray, region: tuple[int, int, int, int], outline, uploaded: bool = False):
    """Counted cells of the region core's ``score_region(image, region=region, rois=[outline])``
    (for an upload: of the uploaded pixels alone, all the server sees, counted in the outline
    afterwards by the extension): level-0 polygon centroids (table centroid + 0.5, the GeoJSON
    pixel-corner convention), positive flags and areas."""
    if uploaded:
        x, y, w, h = region
        result = score_region(load_engine("stain"), image[y : y + h, x : x + w])
        offset = np.array([x, y], float)
    else:
        ring = np.asarray(outline.exterior.coords, float) - 0.5  # pixel edges -> pixel centres
        result = score_region(load_engine("stain"), image, region=region, rois=[(ring, [])])
        offset = np.zeros(2)
    post = result.post
    counted = np.asarray(post.counted)
    centroids = post.table.centroid_xy[counted] + 0.5 + np.asarray(result.origin, float) + offset
    return centroids, np.asarray(post.positive)[counted], np.asarray(post.table.area)[counted]


def assert_same_cells_in_outline(data: dict, image: np.ndarray, what: str) -> None:
    """The Java cells equal the engine's cells of the annotation's bounds whose centroid lies in
    the outline, one to one with the same class and area; only cells within BOUNDARY px of the
    outline may be on one side alone."""
    from shapely import contains_xy, wkt
    from shapely.geometry import Point

    outline = wkt.loads(data["roi_wkt"])
    x0, y0, x1, y1 = outline.bounds
    bounds = (int(np.floor(x0)), int(np.floor(y0)), int(np.ceil(x1) - np.floor(x0)), int(np.ceil(y1) - np.floor(y0)))
    centroids, positive, areas = engine_cells(image, bounds, outline, uploaded=data["uploaded"])
    inside = contains_xy(outline, centroids[:, 0], centroids[:, 1])
    near = np.array([outline.boundary.distance(Point(c)) < BOUNDARY for c in centroids], bool).reshape(-1)
    java = data["cells"]
    got = np.array([[c[0], c[1]] for c in java], float).reshape(-1, 2)
    assert len(got) > 50, f"{what}: too few cells ({len(got)})"
    distance, index = cKDTree(centroids).query(got)
    assert distance.max(initial=0) < CENTROID_TOLERANCE, f"{what}: a Java cell is {distance.max()} px from any engine cell"
    assert len(set(index.tolist())) == len(index), f"{what}: two Java cells matched one engine cell"
    missing = set(np.flatnonzero(inside & ~near).tolist()) - set(index.tolist())
    assert not missing, f"{what}: {len(missing)} engine cells inside the outline are missing"
    extra = [i for i in index.tolist() if not inside[i] and not near[i]]
    assert not extra, f"{what}: {len(extra)} cells outside the outline were kept"
    java_positive = np.array([c[2] == "Positive" for c in java])
    np.testing.assert_array_equal(java_positive, positive[index], err_msg=f"{what}: classes differ")
    np.testing.assert_allclose([c[3] for c in java], areas[index], atol=1e-6, err_msg=f"{what}: areas differ")
    assert data["num_total"] == len(java)
    assert data["num_positive"] == int(java_positive.sum())
    assert data["percent_positive"] == round(java_positive.sum() / len(java) * 100, 1)
    assert data["engine"] == "stain"


def test_the_server_reading_the_file_gives_the_engines_cells(junit_run: dict) -> None:
    """Needs POST /api/regions/score."""
    data = junit_run["server"]
    assert data is not None, junit_run["output"][-4000:]
    assert data["uploaded"] is False
    assert_same_cells_in_outline(data, junit_run["image"], "server read")


def test_one_upload_gives_the_engines_cells(junit_run: dict) -> None:
    """Needs the score record layout and the downsample parameter of POST /api/score."""
    data = junit_run["upload"]
    assert data is not None, junit_run["output"][-4000:]
    assert data["uploaded"] is True
    assert_same_cells_in_outline(data, junit_run["image"], "upload")
