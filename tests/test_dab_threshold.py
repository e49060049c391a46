"""The stain engine's DAB threshold as a user sets it: ``score --dab-threshold`` and the
server's ``dab_threshold`` (uploaded pixels and a file region) give the same cells, record the
threshold, and refuse it clearly where it means nothing (a DeepLIIF engine, a bad number)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import jsonschema
import pytest
from conftest import read_rgb
from test_server_support import assert_problem, client, png_bytes, running_server

from napari_deepliif.cli.main import main
from napari_deepliif.engine.engines import StainEngine
from napari_deepliif.regions.score import score_region

SCORE_SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "docs" / "score.schema.json").read_text())
#: Raised from the default 0.2 OD: hematoxylin-only nuclei with some DAB become negative.
RAISED = 0.4


@pytest.fixture(autouse=True)
def private_config(tmp_path, monkeypatch):
    monkeypatch.setenv("NAPARI_DEEPLIIF_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("NAPARI_DEEPLIIF_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def crop_path(shared_dir: Path) -> Path:
    return shared_dir / "fixtures" / "inputs" / "roi1_crop_700x600.png"


@pytest.fixture(scope="module")
def cli_records(crop_path: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """``score`` of the ROI_1 crop at the default and the raised DAB threshold."""
    out = tmp_path_factory.mktemp("cli")
    records = {}
    for name, extra in (("default", []), ("raised", ["--dab-threshold", str(RAISED)])):
        assert main(["score", str(crop_path), "--engine", "stain", "--resolution", "40x",
                     "--out", str(out / name), *extra]) == 0
        folder = out / name / crop_path.stem
        records[name] = {"score": json.loads((folder / "score.json").read_text()),
                         "cells": json.loads((folder / "cells.geojson").read_text())["features"]}
    return records


def test_score_dab_threshold_reclassifies_and_is_recorded(cli_records, crop_path):
    default, raised = cli_records["default"]["score"], cli_records["raised"]["score"]
    for record in (default, raised):
        jsonschema.validate(record, SCORE_SCHEMA)
    assert default["provenance"]["parameters"] == {"dab_threshold": StainEngine.dab_threshold}
    assert raised["provenance"]["parameters"] == {"dab_threshold": RAISED}
    # the same nuclei, fewer of them positive
    assert raised["scoring"]["num_total"] == default["scoring"]["num_total"] > 100
    assert 0 < raised["scoring"]["num_pos"] < default["scoring"]["num_pos"]
    expected = score_region(StainEngine(dab_threshold=RAISED), read_rgb(crop_path), resolution="40x")
    assert raised["scoring"] == expected.record(image=None)["scoring"]


def test_bad_dab_thresholds_are_refused_before_any_work(crop_path, tmp_path, capsys, fit_model_dir):
    for bad in ("-0.1", "nan", "inf", "high"):
        with pytest.raises(SystemExit) as stop:
            main(["score", str(crop_path), "--engine", "stain", "--dab-threshold", bad, "--out", str(tmp_path)])
        assert stop.value.code == 2
        assert "--dab-threshold" in capsys.readouterr().err
    # DeepLIIF classifies by its Seg map: the option would silently do nothing, so it is refused
    assert main(["score", str(crop_path), "--model", str(fit_model_dir), "--device", "cpu",
                 "--dab-threshold", "0.3", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "dab_threshold" in err and "stain engine" in err and err.strip().count("\n") == 0
    assert not (tmp_path / crop_path.stem).exists()


def cells(features: list[dict]) -> list[tuple]:
    """Outline, class name and measurements of each cell (the CLI writes the classification as
    a name and colour, the region endpoint as QuPath's object form)."""
    def name(classification: str | dict) -> str:
        return classification["name"] if isinstance(classification, dict) else classification

    return [(json.dumps(f["geometry"]), name(f["properties"]["classification"]),
             json.dumps(f["properties"]["measurements"], sort_keys=True)) for f in features]


@pytest.fixture(scope="module")
def stain_server(tmp_path_factory):
    with running_server(tmp_path_factory.mktemp("config"), "stain") as handle:
        with client(handle) as http:
            yield http


def test_server_requests_with_a_dab_threshold_equal_the_cli(stain_server, cli_records, crop_path):
    raised = cli_records["raised"]
    uploaded = stain_server.post("/api/score", content=png_bytes(read_rgb(crop_path)),
                                 params={"dab_threshold": RAISED, "resolution": "40x"},
                                 headers={"Content-Type": "image/png"})
    region = stain_server.post("/api/regions/score",
                               json={"image": str(crop_path.resolve()), "resolution": "40x", "dab_threshold": RAISED})
    for answer in (uploaded, region):
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["score"]["scoring"] == raised["score"]["scoring"]
        assert body["score"]["provenance"]["parameters"] == {"dab_threshold": RAISED}
        assert cells(body["features"]) == cells(raised["cells"])
    # each request has its own engine: one without the option gets the default again
    plain = stain_server.post("/api/regions/score", json={"image": str(crop_path.resolve()), "resolution": "40x"})
    assert plain.json()["score"]["scoring"] == cli_records["default"]["score"]["scoring"]


@pytest.mark.parametrize("value", [-1, "abc"])
def test_server_refuses_a_bad_dab_threshold(stain_server, crop_path, value):
    answer = stain_server.post("/api/regions/score", json={"image": str(crop_path.resolve()), "dab_threshold": value})
    assert_problem(answer, 422, "dab_threshold")
    answer = stain_server.post("/api/score", content=png_bytes(read_rgb(crop_path)), params={"dab_threshold": value},
                               headers={"Content-Type": "image/png"})
    assert_problem(answer, 422, "dab_threshold")


def test_a_deepliif_server_refuses_a_dab_threshold(fit_model_dir, crop_path, tmp_path):
    with running_server(tmp_path / "config", "deepliif", model=fit_model_dir, device="cpu") as handle:
        with client(handle) as http:
            answer = http.post("/api/regions/score", json={"image": str(crop_path.resolve()), "dab_threshold": 0.3})
            assert_problem(answer, 422, "dab_threshold", "stain engine")
            assert httpx.get(f"{handle.url}/api/health").json()["engine"] == "deepliif"


def test_batch_dab_threshold_equals_score_and_is_kept_with_the_slide(cli_records, crop_path, tmp_path):
    from napari_deepliif.slides.batch import BatchOptions, score_one

    options = BatchOptions(engine="stain", resolution="40x", parameters={"dab_threshold": RAISED})
    row = score_one(str(crop_path), str(tmp_path / "slide"), options)
    assert row["status"] == "done", row["error"]
    record = json.loads((tmp_path / "slide" / "score.json").read_text())
    jsonschema.validate(record, SCORE_SCHEMA)
    assert record["provenance"]["parameters"] == {"dab_threshold": RAISED}
    expected = cli_records["raised"]["score"]["scoring"]
    assert {k: record["scoring"][k] for k in ("num_total", "num_pos")} == {k: expected[k] for k in ("num_total", "num_pos")}
    # the store was computed at RAISED: another threshold is not resumed from it
    other = score_one(str(crop_path), str(tmp_path / "slide"), BatchOptions(engine="stain", resolution="40x"))
    assert other["status"] != "done" and "dab_threshold" in other["error"] and "--overwrite" in other["error"]


def test_batch_takes_the_option_as_score_does(tmp_path):
    from napari_deepliif.cli.main import build_parser
    from napari_deepliif.cli.options import engine_parameters

    args = build_parser().parse_args(["batch", "slides/", "--out", str(tmp_path), "--dab-threshold", "0.35"])
    assert engine_parameters(args) == {"dab_threshold": 0.35}
    args = build_parser().parse_args(["batch", "slides/", "--out", str(tmp_path)])
    assert engine_parameters(args) == {}
