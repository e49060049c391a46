"""The local HTTP engine over real HTTP on loopback (stain engine: fast): health, auth,
score, limits, bad images, concurrency, queue, cancel, errors as problem JSON."""

from __future__ import annotations

import json
import stat
import struct
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import jsonschema
import numpy as np
import pytest
from test_server_support import (
    assert_problem,
    client,
    decode_png,
    png_bytes,
    running_server,
    tiff_bytes,
    without_ids,
)

from napari_deepliif.cells.postprocess import Settings
from napari_deepliif.engine.engines import load_engine
from napari_deepliif.errors import InputImageError
from napari_deepliif.io.geojson import cells_geojson
from napari_deepliif.regions.score import score_region
from napari_deepliif.rgb import check_rgb

PNG = {"Content-Type": "image/png"}


@pytest.fixture(scope="module")
def config_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("config")


@pytest.fixture(scope="module")
def server(config_dir):
    with running_server(config_dir, "stain", queue_size=32) as handle:
        yield handle


@pytest.fixture(scope="module")
def http(server):
    with client(server) as c:
        yield c


@pytest.fixture(scope="module")
def stain():
    return load_engine("stain")


@pytest.fixture(scope="module")
def crop(ihc_22_2):
    """A 256 x 256 real IHC crop: small enough to score in a fraction of a second."""
    return np.ascontiguousarray(ihc_22_2[128:384, 128:384])


def score(http, body: bytes, headers=PNG, **params) -> httpx.Response:
    return http.post("/api/score", content=body, headers=headers, params=params)


# ---- health, token, OpenAPI --------------------------------------------------------------

def test_health_needs_no_token_and_reports_engine_and_limits(server):
    response = httpx.get(f"{server.url}/api/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["engine"] == "stain" and body["device"] == "cpu"
    assert body["model"] is None and body["model_hash"] is None and body["busy"] is False
    assert body["limits"]["queue_size"] == 32
    assert body["limits"]["max_pixels"] > 0 and body["limits"]["max_request_bytes"] > 0


def test_token_file_is_private_and_reused(server, config_dir):
    from napari_deepliif.server import load_or_create_token

    path = config_dir / "server-token"
    assert server.token_path == path
    assert path.read_text().strip() == server.token and len(server.token) >= 40
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # the next start (or `napari-deepliif token`) reads the same token
    import os

    os.environ["NAPARI_DEEPLIIF_CONFIG_DIR"] = str(config_dir)
    try:
        assert load_or_create_token() == server.token
    finally:
        del os.environ["NAPARI_DEEPLIIF_CONFIG_DIR"]


@pytest.mark.parametrize("token", [None, "wrong-token"])
def test_every_endpoint_but_health_needs_the_token(server, crop, token):
    with client(server, token=token) as c:
        responses = [
            c.post("/api/score", content=png_bytes(crop), headers=PNG),
            c.post("/api/infer", files={"img": ("a.png", png_bytes(crop), "image/png")}),
            c.post("/api/postprocess", files={"img": ("a.png", png_bytes(crop), "image/png")}),
            c.post("/api/cancel"),
        ]
    for response in responses:
        body = assert_problem(response, 401, "napari-deepliif token")
        assert ("no Authorization header" if token is None else "wrong token") in body["detail"]
        assert response.headers["www-authenticate"] == "Bearer"


def test_openapi_documents_every_endpoint_with_problem_errors(server):
    schema = httpx.get(f"{server.url}/openapi.json").json()
    assert set(schema["paths"]) == {"/api/health", "/api/score", "/api/cancel", "/api/infer", "/api/postprocess",
                                    "/api/regions/score"}
    problem = schema["components"]["schemas"]["ProblemDetails"]
    assert set(problem["required"]) == {"title", "status", "detail"}
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    for path, item in schema["paths"].items():
        for operation in item.values():
            if path == "/api/health":
                assert "security" not in operation
                continue
            assert operation["security"] == [{"HTTPBearer": []}]
            for status in ("401", "409", "413", "415", "422", "429", "500"):
                content = operation["responses"][status]["content"]
                assert list(content) == ["application/problem+json"]
            assert "Retry-After" in operation["responses"]["429"]["headers"]
    body = schema["paths"]["/api/score"]["post"]["requestBody"]["content"]
    assert set(body) == {"image/png", "image/tiff"}
    names = {p["name"] for p in schema["paths"]["/api/score"]["post"]["parameters"]}
    assert names == {"resolution", "seg_thresh", "size_thresh", "size_thresh_upper", "marker_thresh", "dab_threshold",
                     "compartment", "positive_od", "bins_od", "min_completeness", "expansion_um", "membrane_um",
                     "confidence", "min_distance_um", "origin_x", "origin_y", "downsample", "modalities", "request_id"}


SCORE_SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "docs" / "score.schema.json").read_text())


# ---- /api/score ----------------------------------------------------------------------------

def test_score_is_the_engines_score_as_qupath_detections(http, stain, ihc_22_2):
    response = score(http, png_bytes(ihc_22_2))
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    body = response.json()
    expected = score_region(stain, ihc_22_2)
    assert body["type"] == "FeatureCollection"
    assert len(body["features"]) == body["score"]["scoring"]["num_total"] == expected.scoring["num_total"] > 50
    assert body["score"] == expected.record(image=None)
    jsonschema.validate(body["score"], SCORE_SCHEMA)
    assert body["score"]["provenance"]["engine"] == "stain" and body["score"]["placement"]["downsample"] == 1
    assert without_ids(body["features"]) == without_ids(cells_geojson(expected.post)["features"])
    classes = {f["properties"]["classification"] for f in body["features"]}
    assert classes == {"Positive", "Negative"}
    assert sum(f["properties"]["classification"] == "Positive" for f in body["features"]) == body["score"]["scoring"]["num_pos"]
    assert all(f["properties"]["objectType"] == "detection" for f in body["features"])
    assert "images" not in body


def test_score_settings_origin_and_modalities(http, stain, crop):
    settings = {"seg_thresh": 100, "size_thresh": 20, "size_thresh_upper": 2000, "marker_thresh": 150}
    body = score(http, png_bytes(crop), resolution="20x", origin_x=1000, origin_y=50, modalities="true",
                 **settings).json()
    expected = score_region(stain, crop, resolution="20x", outputs="all", settings=Settings(**settings))
    assert body["score"]["scoring"] == expected.scoring and body["score"]["scoring"]["size_thresh"] == 20
    assert body["score"]["placement"]["resolution"] == "20x" and body["score"]["placement"]["origin"] == [1000, 50]
    shifted = without_ids(cells_geojson(expected.post, origin=(1000, 50))["features"])
    assert without_ids(body["features"]) == shifted
    xs = [x for f in body["features"] for x, _ in f["geometry"]["coordinates"][0]]
    assert min(xs) >= 1000 and max(xs) <= 1000 + crop.shape[1]
    assert set(body["images"]) == {"Hema", "Marker", "Seg"}
    for name, text in body["images"].items():
        np.testing.assert_array_equal(decode_png(text), expected.images[name])


def test_score_defaults_thresholds(http, stain, crop):
    body = score(http, png_bytes(crop), size_thresh="default", size_thresh_upper="default", marker_thresh="default").json()
    expected = score_region(stain, crop, settings=Settings(size_thresh="default", size_thresh_upper="default",
                                                           marker_thresh="default"))
    assert body["score"]["scoring"] == expected.scoring
    assert body["score"]["scoring"]["size_thresh_upper"] == 16000 and body["score"]["scoring"]["marker_thresh"] is not None


def test_tiff_and_rgba_give_the_same_score_as_png(http, crop):
    reference = score(http, png_bytes(crop)).json()
    rgba = np.dstack([crop, np.full(crop.shape[:2], 255, np.uint8)])
    for body, media_type in ((tiff_bytes(crop), "image/tiff"), (png_bytes(rgba), "image/png"),
                             (tiff_bytes(rgba), "image/tiff")):
        answer = score(http, body, headers={"Content-Type": media_type}).json()
        assert answer["score"] == reference["score"]
        assert without_ids(answer["features"]) == without_ids(reference["features"])


def test_cmyk_and_palette_tiffs_score_as_their_rgb_and_missing_tiles_are_refused(http, crop, tmp_path):
    import io

    import tifffile
    from PIL import Image

    def tiff(array: np.ndarray, **options) -> bytes:
        buffer = io.BytesIO()
        tifffile.imwrite(buffer, array, tile=(64, 64), **options)
        return buffer.getvalue()

    tiff_header = {"Content-Type": "image/tiff"}
    cmyk = np.asarray(Image.fromarray(crop).convert("CMYK"))
    as_rgb = score(http, png_bytes(np.asarray(Image.fromarray(cmyk, "CMYK").convert("RGB")))).json()
    answer = score(http, tiff(cmyk, photometric="separated"), headers=tiff_header).json()
    assert answer["score"]["scoring"] == as_rgb["score"]["scoring"]
    indexed = Image.fromarray(crop).quantize(256)
    colormap = np.asarray(indexed.getpalette()[:768], np.uint16).reshape(256, 3).T * 257
    as_rgb = score(http, png_bytes(np.asarray(indexed.convert("RGB")))).json()
    answer = score(http, tiff(np.asarray(indexed), photometric="palette", colormap=colormap), headers=tiff_header)
    assert answer.status_code == 200 and answer.json()["score"]["scoring"] == as_rgb["score"]["scoring"]
    holes = tmp_path / "holes.tif"
    holes.write_bytes(tiff(crop, photometric="rgb"))
    with tifffile.TiffFile(holes, mode="r+b") as tif:  # the first tile's byte count set to 0
        tag = tif.pages.first.tags["TileByteCounts"]
        tag.overwrite((0, *tag.value[1:]))
    assert_problem(score(http, holes.read_bytes(), headers=tiff_header), 422, "missing")


# ---- bad requests ---------------------------------------------------------------------------

@pytest.mark.parametrize("media_type", ["image/jpeg", "application/octet-stream", "multipart/form-data; boundary=x", None])
def test_score_refuses_other_media_types(http, crop, media_type):
    headers = {"Content-Type": media_type} if media_type else {}
    response = http.post("/api/score", content=png_bytes(crop), headers=headers)
    assert_problem(response, 415, "image/png or image/tiff")


def test_reference_endpoints_want_multipart(http, crop):
    response = http.post("/api/infer", content=png_bytes(crop), headers=PNG)
    assert_problem(response, 415, "multipart/form-data")


def _ihdr_png(width: int, height: int, bit_depth: int = 8, colour_type: int = 2, idat: bytes = b"") -> bytes:
    """A PNG file with the given header (and an IDAT chunk holding ``idat``, maybe incomplete)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_malformed_and_truncated_images_are_422_with_the_reason(http, crop):
    data = png_bytes(crop)
    assert_problem(score(http, b""), 422, "empty")
    assert_problem(score(http, b"GIF89a not an image at all"), 422, "not a PNG")
    assert_problem(score(http, tiff_bytes(crop)), 422, "not a PNG")  # TIFF bytes labelled PNG
    assert_problem(score(http, data[: len(data) // 2]), 422, "truncated")
    assert_problem(score(http, data[:30]), 422, "not a readable PNG")
    broken_tiff = tiff_bytes(crop)[:400]
    assert_problem(score(http, broken_tiff, headers={"Content-Type": "image/tiff"}), 422, "request body")
    # a valid header over a corrupt pixel stream
    assert_problem(score(http, _ihdr_png(64, 64, idat=zlib.compress(b"\x00" * 100))), 422, "cannot be decoded")


def _engine_message(shape, dtype) -> str:
    with pytest.raises(InputImageError) as info:
        check_rgb(np.zeros(shape, dtype), "request body")
    return str(info.value)


def test_grayscale_and_16_bit_images_get_the_engines_message(http, crop):
    gray = crop[..., 0]
    cases = [
        (png_bytes(gray), PNG, ((256, 256), np.uint8)),
        (tiff_bytes(gray), {"Content-Type": "image/tiff"}, ((256, 256), np.uint8)),
        (tiff_bytes(crop.astype(np.uint16) * 257), {"Content-Type": "image/tiff"}, ((256, 256, 3), np.uint16)),
        (tiff_bytes(crop.astype(np.float32) / 255), {"Content-Type": "image/tiff"}, ((256, 256, 3), np.float32)),
        (_png16_rgb(crop), PNG, ((256, 256, 3), np.uint16)),
        (png_bytes(crop[:10, :10]), PNG, ((10, 10, 3), np.uint8)),
    ]
    for body, headers, (shape, dtype) in cases:
        problem = assert_problem(score(http, body, headers=headers), 422)
        assert problem["detail"] == _engine_message(shape, dtype)


def _png16_rgb(image: np.ndarray) -> bytes:
    """A 16-bit RGB PNG (PIL cannot write one): filter byte 0 + big-endian samples per row."""
    samples = (image.astype(">u2") * 257).reshape(image.shape[0], -1).view(np.uint8)
    raw = np.hstack([np.zeros((image.shape[0], 1), np.uint8), samples]).tobytes()
    return _ihdr_png(image.shape[1], image.shape[0], bit_depth=16, idat=zlib.compress(raw))


@pytest.mark.parametrize("params, words", [
    ({"resolution": "60x"}, ["resolution"]),
    ({"seg_thresh": -1}, ["seg_thresh"]),
    ({"seg_thresh": 511}, ["seg_thresh"]),
    ({"size_thresh": "auto"}, ["size_thresh"]),
    ({"marker_thresh": 256}, ["marker_thresh"]),
    ({"origin_x": -5}, ["origin_x"]),
    ({"request_id": "no spaces please"}, ["request_id"]),
])
def test_bad_parameters_are_422(http, crop, params, words):
    assert_problem(score(http, png_bytes(crop), **params), 422, *words)


def test_the_upper_size_cap_takes_what_the_engine_takes(server, http, stain, crop):
    """The document's minimum for size_thresh_upper is the engine's (1), on every endpoint."""
    schema = httpx.get(f"{server.url}/openapi.json").json()
    for path in ("/api/score", "/api/infer", "/api/postprocess"):
        parameter = next(p for p in schema["paths"][path]["post"]["parameters"] if p["name"] == "size_thresh_upper")
        minimums = {s["minimum"] for s in parameter["schema"]["anyOf"] if s.get("type") == "integer"}
        assert minimums == {1}, path
    body = score(http, png_bytes(crop), size_thresh_upper=1).json()
    assert body["score"]["scoring"] == score_region(stain, crop, settings=Settings(size_thresh_upper=1)).scoring
    assert body["score"]["scoring"]["num_total"] == 0 and body["score"]["scoring"]["size_thresh_upper"] == 1
    for response in (score(http, png_bytes(crop), size_thresh_upper=0),
                     http.post("/api/infer", files={"img": ("a.png", png_bytes(crop), "image/png")},
                               params={"size_thresh_upper": 0})):
        assert_problem(response, 422, "size_thresh_upper", "greater than or equal to 1")


def test_unknown_paths_and_methods_are_problem_json(server, http):
    assert_problem(http.get("/api/nothing"), 404, "/openapi.json")
    assert_problem(http.get("/api/score"), 405, "GET")
    assert_problem(httpx.get(f"{server.url}/"), 401)  # without the token nothing is revealed


def test_unexpected_errors_become_500_problems_with_a_traceback_summary():
    from napari_deepliif.server.problems import problem_for

    try:
        {}["missing"]
    except KeyError as exc:
        problem = problem_for(exc)
    assert problem.status_code == 500
    assert "KeyError" in problem.detail and "test_server.py" in problem.detail and "report it" in problem.detail


# ---- limits -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def small(config_dir):
    """A server with small limits: 200 kB bodies, 300 x 300 px, one request waiting."""
    with running_server(config_dir, "stain", max_request_bytes=200_000, max_pixels=300 * 300, queue_size=1) as handle:
        yield handle


def test_body_over_the_limit_is_413(small, ihc_22_2):
    big = png_bytes(ihc_22_2)  # ~500 kB
    assert len(big) > 200_000
    with client(small) as c:
        assert_problem(c.post("/api/score", content=big, headers=PNG), 413, "200000 bytes", "--max-request-mb")
        # no Content-Length (chunked): counted while reading
        chunks = (big[i:i + 65536] for i in range(0, len(big), 65536))
        assert_problem(c.post("/api/score", content=chunks, headers=PNG), 413, "200000 bytes")
        files = {"img": ("a.png", big, "image/png")}
        assert_problem(c.post("/api/infer", files=files), 413)
        assert c.get("/api/health").status_code == 200


def test_too_many_pixels_is_422_before_decoding(small, ihc_22_2):
    with client(small) as c:
        assert_problem(c.post("/api/score", content=png_bytes(ihc_22_2[:301, :300]), headers=PNG),
                       422, "300 x 301", "--max-pixels")
        # a decompression bomb: a 300-byte file claiming 100000 x 100000 pixels
        bomb = _ihdr_png(100_000, 100_000, idat=zlib.compress(b"\x00" * 1000))
        start = time.monotonic()
        assert_problem(c.post("/api/score", content=bomb, headers=PNG), 422, "100000 x 100000")
        assert time.monotonic() - start < 2
        files = {"img": ("a.png", bomb, "image/png")}
        assert_problem(c.post("/api/infer", files=files), 422, "form field 'img'", "pixels")


# ---- concurrency, queue, cancel -----------------------------------------------------------

def test_parallel_requests_are_all_answered_as_sequential_ones(server, http, crop, ihc_small):
    jobs = [(png_bytes(crop), {}), (png_bytes(crop), {"seg_thresh": 90}),
            (png_bytes(ihc_small), {}), (png_bytes(ihc_small), {"size_thresh": 10, "origin_x": 7})]
    sequential = [score(http, body, **params).json() for body, params in jobs]

    def send(k: int) -> httpx.Response:
        body, params = jobs[k % len(jobs)]
        with client(server) as c:
            return score(c, body, **params)

    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(send, range(12)))
    assert [a.status_code for a in answers] == [200] * 12
    for k, answer in enumerate(answers):
        expected = sequential[k % len(jobs)]
        body = answer.json()
        assert body["score"] == expected["score"]
        assert without_ids(body["features"]) == without_ids(expected["features"])


def test_a_full_queue_answers_429_with_retry_after(small, ihc_22_2):
    body = png_bytes(ihc_22_2[:300, :300])

    def send(_: int) -> httpx.Response:
        with client(small) as c:
            return c.post("/api/score", content=body, headers=PNG)

    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(send, range(12)))
    statuses = sorted(a.status_code for a in answers)
    assert set(statuses) <= {200, 429} and len(statuses) == 12
    assert 1 <= statuses.count(200) and statuses.count(429) >= 1
    for answer in answers:
        if answer.status_code == 429:
            assert_problem(answer, 429, "busy", "--queue-size 1")
            assert int(answer.headers["retry-after"]) >= 1
    oks = [a.json()["score"] for a in answers if a.status_code == 200]
    assert all(s == oks[0] for s in oks)


def test_cancel_queued_and_running_requests_while_health_stays_responsive(server, http, ihc_22_2):
    slow = png_bytes(np.tile(ihc_22_2, (4, 4, 1)))  # 2048 x 2048: seconds of work
    results: dict[str, httpx.Response] = {}

    def send(request_id: str) -> None:
        with client(server) as c:
            results[request_id] = score(c, slow, request_id=request_id)

    first = threading.Thread(target=send, args=("first",))
    first.start()
    _wait_for(lambda: http.get("/api/health").json()["busy"])
    second = threading.Thread(target=send, args=("second",))
    second.start()
    # the second waits behind the first: cancelling it answers it at once
    _wait_for(lambda: http.post("/api/cancel", params={"request_id": "second"}).json()["cancelled"])
    second.join(30)
    assert_problem(results["second"], 409, "second", "cancelled")
    start = time.monotonic()
    health = http.get("/api/health")
    assert health.json()["busy"] is True and time.monotonic() - start < 1.0
    # without a request_id: the running one; the engine stops between blocks
    assert http.post("/api/cancel").json() == {"cancelled": True}
    first.join(60)
    assert_problem(results["first"], 409, "cancelled")
    assert http.post("/api/cancel", params={"request_id": "first"}).json() == {"cancelled": False}
    assert http.post("/api/cancel").json() == {"cancelled": False}
    _wait_for(lambda: not http.get("/api/health").json()["busy"])


def _wait_for(condition, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


# ---- Python handle ---------------------------------------------------------------------------

def test_a_taken_port_is_a_clear_error_and_stop_frees_the_port(server, config_dir):
    from napari_deepliif.errors import DeepLIIFError
    from napari_deepliif.server import ServerHandle

    with pytest.raises(DeepLIIFError, match=f"cannot listen on 127.0.0.1:{server.port}"):
        ServerHandle.start("stain", port=server.port)
    with running_server(config_dir, "stain") as other:
        port, url = other.port, other.url
        assert httpx.get(f"{url}/api/health").status_code == 200
    assert not other.running
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/api/health")
    with running_server(config_dir, "stain") as again:  # the same config gives the same token
        assert again.token == server.token and again.port != 0 and port


def test_the_api_summary_in_docs_is_current():
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "docs" / "gen_server_api.py"
    spec = importlib.util.spec_from_file_location("gen_server_api", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--check"]) == 0, "run python docs/gen_server_api.py"
