"""The reference platform's /api/infer and /api/postprocess, and the DeepLIIF engine behind the
server (the small fixture model, not DeepLIIF: it only shows the DeepLIIF path works)."""

from __future__ import annotations

import numpy as np
import pytest
from test_server_support import assert_problem, client, decode_png, png_bytes, running_server, without_ids

from napari_deepliif.cells.postprocess import Settings, postprocess
from napari_deepliif.engine.engines import load_engine
from napari_deepliif.io.geojson import cells_geojson
from napari_deepliif.io.score_format import SCORE_KEYS, reference_scoring
from napari_deepliif.regions.score import score_region

DEEPLIIF_OUTPUTS = {"Hema", "DAPI", "Lap2", "Marker", "Seg"}
#: The reference platform's documented defaults and ranges (DeepLIIF README, "Cloud API
#: Endpoints", the same for /api/infer and /api/postprocess), written out here on purpose.
DOCUMENTED = {"prob_thresh": 150, "size_thresh": "auto", "size_thresh_upper": "none", "marker_thresh": "auto"}
DOCUMENTED_PROB_RANGE = (0, 254)
#: The engine settings those defaults mean.
REFERENCE_SETTINGS = {"seg_thresh": 150, "size_thresh": "default", "size_thresh_upper": None,
                      "marker_thresh": "default"}


@pytest.fixture(scope="module")
def config_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("config")


@pytest.fixture(scope="module")
def crop(ihc_22_2):
    return np.ascontiguousarray(ihc_22_2[:256, :256])


@pytest.fixture(scope="module")
def fit_engine(fit_model_dir):
    return load_engine("deepliif", fit_model_dir, device="cpu")


@pytest.fixture(scope="module")
def deepliif_http(config_dir, fit_engine):
    with running_server(config_dir, fit_engine) as handle, client(handle) as c:
        yield c


@pytest.fixture(scope="module")
def stain_http(config_dir):
    with running_server(config_dir, "stain") as handle, client(handle) as c:
        yield c


@pytest.fixture(scope="module")
def deepliif_infer(deepliif_http, crop):
    """/api/infer with the reference's defaults (prob_thresh 150, marker_thresh 'auto')."""
    response = deepliif_http.post("/api/infer", files={"img": ("crop.png", png_bytes(crop), "image/png")},
                                  params={"resolution": "40x", "pil": "true"})
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture(scope="module")
def expected(fit_engine, crop):
    return score_region(fit_engine, crop, outputs="all", settings=Settings(**REFERENCE_SETTINGS))


def test_infer_has_the_reference_response_shape(deepliif_infer, expected, crop):
    assert set(deepliif_infer) == {"images", "scoring"}
    assert set(deepliif_infer["images"]) == DEEPLIIF_OUTPUTS | {"SegRefined", "SegOverlaid"}
    images = {name: decode_png(text) for name, text in deepliif_infer["images"].items()}
    assert all(a.shape == (256, 256, 3) and a.dtype == np.uint8 for a in images.values())
    for name in DEEPLIIF_OUTPUTS:
        np.testing.assert_array_equal(images[name], expected.images[name])
    np.testing.assert_array_equal(images["SegRefined"], expected.post.seg_refined())
    np.testing.assert_array_equal(images["SegOverlaid"], expected.post.seg_overlaid(crop))
    assert list(deepliif_infer["scoring"]) == list(SCORE_KEYS)
    assert deepliif_infer["scoring"] == reference_scoring(expected.post.scoring)
    assert deepliif_infer["scoring"]["num_total"] > 0 and deepliif_infer["scoring"]["marker_thresh"] is not None


def test_postprocess_rescores_the_infer_outputs(deepliif_http, deepliif_infer, crop):
    seg = decode_png(deepliif_infer["images"]["Seg"])
    marker = decode_png(deepliif_infer["images"]["Marker"])
    files = {"img": ("crop.png", png_bytes(crop), "image/png"), "seg_img": ("seg.png", png_bytes(seg), "image/png"),
             "marker_img": ("marker.png", png_bytes(marker), "image/png")}
    same = deepliif_http.post("/api/postprocess", files=files).json()
    assert same["scoring"] == deepliif_infer["scoring"]
    assert same["images"]["SegRefined"] == deepliif_infer["images"]["SegRefined"]
    params = {"prob_thresh": 100, "size_thresh": 30, "size_thresh_upper": 3000, "marker_thresh": "none"}
    changed = deepliif_http.post("/api/postprocess", files=files, params=params).json()
    post = postprocess(seg, marker, seg_thresh=100, size_thresh=30, size_thresh_upper=3000, marker_thresh=None)
    assert changed["scoring"] == reference_scoring(post.scoring)
    assert set(changed["images"]) == {"SegRefined", "SegOverlaid"}
    np.testing.assert_array_equal(decode_png(changed["images"]["SegOverlaid"]), post.seg_overlaid(crop))
    # without marker_img, marker_thresh has no effect (as on the reference platform)
    del files["marker_img"]
    no_marker = deepliif_http.post("/api/postprocess", files=files, params={"marker_thresh": 10}).json()
    assert no_marker["scoring"] == reference_scoring(postprocess(seg, seg_thresh=150).scoring)


def test_postprocess_refuses_images_of_different_sizes(deepliif_http, crop):
    files = {"img": ("crop.png", png_bytes(crop), "image/png"),
             "seg_img": ("seg.png", png_bytes(crop[:128]), "image/png")}
    assert_problem(deepliif_http.post("/api/postprocess", files=files), 422, "same size", "seg_img 256 x 128")
    assert_problem(deepliif_http.post("/api/postprocess", files={"img": ("c.png", png_bytes(crop), "image/png")}),
                   422, "seg_img")


def test_score_with_the_deepliif_engine(deepliif_http, fit_engine, expected, crop):
    body = deepliif_http.post("/api/score", content=png_bytes(crop), headers={"Content-Type": "image/png"},
                              params={"seg_thresh": 150, "marker_thresh": "default"}).json()
    provenance = body["score"]["provenance"]
    assert provenance == {k: expected.provenance[k] for k in ("engine", "model", "model_hash", "version", "statistics",
                                                                 "parameters")}
    assert provenance["engine"] == "deepliif" and provenance["model"] == fit_engine.model_name
    assert len(body["features"]) == body["score"]["scoring"]["num_total"] == expected.scoring["num_total"]
    assert without_ids(body["features"]) == without_ids(cells_geojson(expected.post)["features"])
    health = deepliif_http.get("/api/health").json()
    assert health["engine"] == "deepliif" and health["model_hash"] == fit_engine.model_hash


def test_slim_and_nopost(stain_http, crop):
    files = {"img": ("crop.png", png_bytes(crop), "image/png")}
    stain = load_engine("stain")
    slim = stain_http.post("/api/infer", files=files, params={"slim": ""}).json()
    expected = score_region(stain, crop, settings=Settings(**REFERENCE_SETTINGS))
    assert set(slim["images"]) == {"SegRefined"}
    np.testing.assert_array_equal(decode_png(slim["images"]["SegRefined"]), expected.post.seg_refined())
    assert slim["scoring"] == reference_scoring(expected.post.scoring)
    nopost = stain_http.post("/api/infer", files=files, params={"nopost": "true", "slim": "false"}).json()
    assert set(nopost) == {"images"} and set(nopost["images"]) == {"Hema", "Marker", "Seg"}
    np.testing.assert_array_equal(decode_png(nopost["images"]["Seg"]), expected.images["Seg"])
    full = stain_http.post("/api/infer", files=files, params={"slim": "0", "size_thresh": "auto",
                                                              "size_thresh_upper": "auto"}).json()
    assert set(full["images"]) == {"Hema", "Marker", "Seg", "SegRefined", "SegOverlaid"}
    assert full["scoring"]["size_thresh_upper"] == 16000


def test_infer_refuses_bad_uploads(stain_http, crop):
    assert_problem(stain_http.post("/api/infer", files={"img": ("a.png", b"nope", "image/png")}), 422, "form field 'img'")
    assert_problem(stain_http.post("/api/infer", files={"image": ("a.png", png_bytes(crop), "image/png")}), 422, "img")
    gray = png_bytes(crop[..., 0])
    assert_problem(stain_http.post("/api/infer", files={"img": ("a.png", gray, "image/png")}), 422, "grayscale")
    assert_problem(stain_http.post("/api/infer", files={"img": ("a.png", png_bytes(crop), "image/png")},
                                   params={"prob_thresh": 999}), 422, "prob_thresh")


@pytest.mark.parametrize("path", ["/api/infer", "/api/postprocess"])
def test_reference_endpoints_document_the_references_defaults_and_ranges(stain_http, path):
    parameters = {p["name"]: p["schema"] for p in stain_http.get("/openapi.json").json()["paths"][path]["post"]["parameters"]}
    for name, value in DOCUMENTED.items():
        assert parameters[name]["default"] == value, name
    assert (parameters["prob_thresh"]["minimum"], parameters["prob_thresh"]["maximum"]) == DOCUMENTED_PROB_RANGE


def test_reference_endpoints_without_parameters_give_the_reference_settings_answer(stain_http, crop):
    stain = load_engine("stain")
    expected = score_region(stain, crop, outputs="all", settings=Settings(**REFERENCE_SETTINGS))
    inferred = stain_http.post("/api/infer", files={"img": ("crop.png", png_bytes(crop), "image/png")}).json()
    assert inferred["scoring"] == reference_scoring(expected.post.scoring)
    assert inferred["scoring"]["seg_thresh"] == 150 and inferred["scoring"]["size_thresh_upper"] is None
    assert inferred["scoring"]["marker_thresh"] is not None
    seg, marker = expected.images["Seg"], expected.images["Marker"]
    files = {"img": ("crop.png", png_bytes(crop), "image/png"), "seg_img": ("seg.png", png_bytes(seg), "image/png"),
             "marker_img": ("marker.png", png_bytes(marker), "image/png")}
    rescored = stain_http.post("/api/postprocess", files=files).json()
    assert rescored["scoring"] == reference_scoring(postprocess(seg, marker, **REFERENCE_SETTINGS).scoring)
    assert rescored["scoring"] == inferred["scoring"]
    # /api/score keeps the package's own default (120)
    own = stain_http.post("/api/score", content=png_bytes(crop), headers={"Content-Type": "image/png"}).json()
    assert own["score"]["scoring"]["seg_thresh"] == 120


def test_prob_thresh_takes_the_references_range(stain_http, crop):
    files = {"img": ("crop.png", png_bytes(crop), "image/png")}
    assert stain_http.post("/api/infer", files=files, params={"prob_thresh": 254}).json()["scoring"]["seg_thresh"] == 254
    assert_problem(stain_http.post("/api/infer", files=files, params={"prob_thresh": 255}), 422, "prob_thresh")
