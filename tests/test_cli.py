"""The command line as a user runs it: files written, one-line errors, exit codes."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from conftest import read_rgb

from napari_deepliif.cli.main import main

SCORE_SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "docs" / "score.schema.json").read_text())
REFERENCE_KEYS = ["num_total", "num_pos", "num_neg", "percent_pos", "seg_thresh", "size_thresh", "size_thresh_upper", "marker_thresh"]


@pytest.fixture(autouse=True)
def private_config(tmp_path, monkeypatch):
    """No model installed: config and cache in empty temporary folders."""
    monkeypatch.setenv("NAPARI_DEEPLIIF_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("NAPARI_DEEPLIIF_CACHE_DIR", str(tmp_path / "cache"))


def test_infer_writes_the_five_images_at_the_input_size(shared_dir, fit_model_dir, tmp_path, capsys):
    image = shared_dir / "fixtures" / "inputs" / "ihc_34_3_crop_300x200.png"
    assert main(["infer", str(image), "--model", str(fit_model_dir), "--resolution", "40x", "--out", str(tmp_path / "out")]) == 0
    folder = tmp_path / "out" / "ihc_34_3_crop_300x200"
    assert sorted(p.name for p in folder.iterdir()) == ["DAPI.png", "Hema.png", "Lap2.png", "Marker.png", "Seg.png"]
    for png in folder.iterdir():
        data = read_rgb(png)
        assert data.shape == (200, 300, 3) and data.dtype == np.uint8
    assert "wrote" in capsys.readouterr().out


def test_score_sample_uses_the_stain_engine_when_no_model_is_installed(tmp_path, capsys):
    assert main(["score", "--sample", "--out", str(tmp_path / "out")]) == 0
    folder = tmp_path / "out" / "ihc_colon_fhl2"
    names = {p.name for p in folder.iterdir()}
    assert {"Hema.png", "Marker.png", "Seg.png", "SegRefined.png", "SegOverlaid.png", "score.json", "cells.geojson", "cells.csv", "labels.tif"} <= names
    record = json.loads((folder / "score.json").read_text())
    jsonschema.validate(record, SCORE_SCHEMA)
    score = record["scoring"]
    assert list(score) == REFERENCE_KEYS
    assert record["provenance"]["engine"] == "stain" and score["num_total"] > 20
    assert record["placement"]["image"] == "ihc_colon_fhl2" and record["placement"]["downsample"] == 1
    features = json.loads((folder / "cells.geojson").read_text())["features"]
    assert len(features) == score["num_total"]
    assert sum(f["properties"]["classification"] == "Positive" for f in features) == score["num_pos"]
    with open(folder / "cells.csv", newline="") as fh:
        assert len(list(csv.DictReader(fh))) == score["num_total"]
    assert "engine stain" in capsys.readouterr().out


def test_scoring_with_the_stain_engine_loads_neither_the_web_server_nor_torch(tmp_path):
    """What a command imports is start-up time on every run: the web framework is for
    ``serve``, torch for the networks, scipy.optimize for ``evaluate``'s matching."""
    code = ("import sys\nfrom napari_deepliif.cli.main import main\n"
            f"assert main(['score', '--sample', '--engine', 'stain', '--out', {str(tmp_path)!r}]) == 0\n"
            "print(sorted(m for m in ('fastapi', 'torch', 'scipy.optimize') if m in sys.modules))\n")
    env = {**__import__("os").environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src"),
           "NAPARI_DEEPLIIF_CONFIG_DIR": str(tmp_path / "config"), "NAPARI_DEEPLIIF_CACHE_DIR": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"
    assert (tmp_path / "ihc_colon_fhl2" / "cells.csv").is_file()


def test_score_roi_with_a_model_offsets_cells_into_full_image_pixels(shared_dir, fit_model_dir, tmp_path):
    image = shared_dir / "data" / "ihc" / "ROI_1.png"
    args = ["score", str(image), "--model", str(fit_model_dir), "--resolution", "20x", "--roi", "400,300,256,200", "--out", str(tmp_path)]
    assert main(args) == 0
    folder = tmp_path / "ROI_1"
    record = json.loads((folder / "score.json").read_text())
    jsonschema.validate(record, SCORE_SCHEMA)
    score, provenance = record["scoring"], record["provenance"]
    assert provenance["engine"] == "deepliif" and provenance["model"] == "deepliif-fit-ngf8" and provenance["model_hash"]
    assert record["placement"]["region"] == [400, 300, 256, 200]
    # the images cover the ROI and a tile (256 px at 20x) of context, where cells crossing
    # the ROI's edge are found whole; a cell counts when its centroid lies in the ROI
    assert read_rgb(folder / "SegOverlaid.png").shape == (200 + 2 * 256, 256 + 2 * 256, 3)
    features = json.loads((folder / "cells.geojson").read_text())["features"]
    assert len(features) == score["num_total"] > 0
    for feature in features:
        xs, ys = np.array(feature["geometry"]["coordinates"][0]).T
        assert 400 <= xs.mean() <= 656 and 300 <= ys.mean() <= 500


def test_postprocess_reproduces_the_reference_scoring(shared_dir, tmp_path):
    case = shared_dir / "fixtures" / "inference" / "deepliif-fit-ngf8" / "roi1_crop_700x600_t512"
    orig = shared_dir / "fixtures" / "inputs" / "roi1_crop_700x600.png"
    args = ["postprocess", str(orig), "--seg", str(case / "Seg.png"), "--marker", str(case / "mod4-Marker.png"), "--resolution", "40x", "--out", str(tmp_path)]
    assert main(args) == 0
    folder = tmp_path / "roi1_crop_700x600"
    ours = json.loads((folder / "score.json").read_text())["scoring"]
    reference = json.loads((case / "scoring.json").read_text())
    assert {k: ours[k] for k in reference} == reference
    np.testing.assert_array_equal(read_rgb(folder / "SegRefined.png"), read_rgb(case / "SegRefined.png"))
    np.testing.assert_array_equal(read_rgb(folder / "SegOverlaid.png"), read_rgb(case / "SegOverlaid.png"))
    features = json.loads((folder / "cells.geojson").read_text())["features"]
    assert len(features) == reference["num_total"]


def test_postprocess_threshold_options(shared_dir, tmp_path):
    case = shared_dir / "fixtures" / "postprocess" / "deepliif2021_22_2"
    args = ["postprocess", str(case / "orig.png"), "--seg", str(case / "seg.png"), "--marker", str(case / "marker.png"),
            "--resolution", "40x", "--seg-thresh", "150", "--size-thresh", "30", "--marker-thresh", "default", "--out", str(tmp_path)]
    assert main(args) == 0
    score = json.loads((tmp_path / "orig" / "score.json").read_text())["scoring"]
    assert score["seg_thresh"] == 150 and score["size_thresh"] == 30 and isinstance(score["marker_thresh"], int)


def test_errors_are_one_line_with_a_non_zero_status(tmp_path, shared_dir, fit_model_dir):
    result = subprocess.run([sys.executable, "-m", "napari_deepliif.cli.main", "score", str(tmp_path / "missing.png"), "--engine", "stain", "--out", str(tmp_path)],
                            capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0 and "does not exist" in result.stderr
    gray = tmp_path / "gray.png"
    from PIL import Image

    Image.fromarray(np.full((64, 64), 128, np.uint8)).save(gray)
    assert main(["score", str(gray), "--engine", "stain", "--out", str(tmp_path)]) == 1
    assert main(["score", "--engine", "deepliif", "--sample", "--out", str(tmp_path)]) == 1  # nothing installed
    assert main(["score", "--out", str(tmp_path)]) == 1  # no input at all
    with pytest.raises(SystemExit):
        main(["score", "--sample", "--roi", "1,2,3", "--out", str(tmp_path)])
    for roi in ("5000,0,100,100", "10,10,0,50"):  # beyond the sample's edge; empty
        assert main(["score", "--sample", "--roi", roi, "--out", str(tmp_path / "roi")]) == 1
    assert not (tmp_path / "roi" / "ihc_colon_fhl2").exists()
    seg = shared_dir / "fixtures" / "postprocess" / "gt_22_2_crop" / "seg.png"  # 375 x 301
    orig = shared_dir / "fixtures" / "inputs" / "ihc_22_2.png"  # 512 x 512
    assert main(["postprocess", str(orig), "--seg", str(seg), "--out", str(tmp_path)]) == 1
    assert not (tmp_path / "ihc_22_2").exists()


def test_a_bad_out_is_refused_before_any_work(tmp_path, shared_dir, capsys):
    image = shared_dir / "data" / "ihc" / "ROI_1.png"
    a_file = tmp_path / "results.txt"
    a_file.write_text("not a folder")
    for out, reason in ((a_file, "is a file"), (a_file / "sub", "cannot create the folder")):
        with pytest.raises(SystemExit) as stop:
            main(["score", str(image), "--engine", "stain", "--out", str(out)])
        assert stop.value.code == 2
        assert reason in capsys.readouterr().err
    assert a_file.read_text() == "not a folder"


def test_one_unreadable_image_does_not_stop_the_others(tmp_path, shared_dir, capsys):
    good = shared_dir / "fixtures" / "inputs" / "ihc_22_2.png"
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a PNG")
    assert main(["score", str(good), str(bad), str(good.parent / "ihc_34_3_crop_300x200.png"), "--engine", "stain",
                 "--out", str(tmp_path / "out")]) == 1
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["ihc_22_2", "ihc_34_3_crop_300x200"]
    err = capsys.readouterr().err
    assert "bad.png" in err and "1 of 3 images not scored" in err
