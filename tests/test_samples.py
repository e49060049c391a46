"""The sample images: the Ki67 tile is downloaded once from a mirror (a real HTTP server on
loopback holding the upstream file), checked against its SHA256, cached, and scored."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import read_rgb
from model_server import serve_folder

from napari_deepliif.cli.main import main
from napari_deepliif.models.registry import CACHE_DIR_ENV
from napari_deepliif.models.samples import SAMPLES, SAMPLES_URL_ENV


@pytest.fixture
def mirror(shared_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A mirror folder served on loopback (the base URL in the environment), and a fresh cache."""
    folder = tmp_path / "mirror"
    folder.mkdir()
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "cache"))
    with serve_folder(folder) as base:
        monkeypatch.setenv(SAMPLES_URL_ENV, base)
        yield folder


def scored(folder: Path) -> dict:
    return json.loads((folder / "score.json").read_text())["scoring"]


def test_the_ki67_sample_is_downloaded_once_and_scores_as_its_file(mirror, shared_dir, tmp_path, capsys):
    tile = shared_dir / "data" / "ihc" / "22_2.png"
    shutil.copy(tile, mirror / "22_2.png")

    assert main(["score", "--sample", "ki67", "--engine", "stain", "--out", str(tmp_path / "out")]) == 0
    sample = scored(tmp_path / "out" / SAMPLES["ki67"].name)
    (mirror / "22_2.png").unlink()  # the second run reads the cache, not the mirror
    assert main(["score", "--sample", "ki67", "--engine", "stain", "--out", str(tmp_path / "again")]) == 0
    assert main(["score", str(tile), "--engine", "stain", "--out", str(tmp_path / "file")]) == 0

    assert sample == scored(tmp_path / "again" / SAMPLES["ki67"].name) == scored(tmp_path / "file" / "22_2")
    # a nuclear stain the default engine gets right: the ground truth has 136 cells, 7.4% positive
    assert 100 <= sample["num_total"] <= 150 and abs(sample["percent_pos"] - 7.4) < 3
    assert (tmp_path / "cache" / "samples" / "22_2.png").read_bytes() == tile.read_bytes()


def test_a_sample_that_is_not_the_upstream_file_is_refused_and_not_kept(mirror, shared_dir, tmp_path, capsys):
    shutil.copy(shared_dir / "data" / "ihc" / "34_3.png", mirror / "22_2.png")

    assert main(["score", "--sample", "ki67", "--out", str(tmp_path / "out")]) == 1
    message = capsys.readouterr().err
    assert "SHA256" in message and SAMPLES_URL_ENV in message and "--sample fhl2" in message
    assert not list((tmp_path / "cache" / "samples").iterdir())
    assert not (tmp_path / "out" / SAMPLES["ki67"].name).exists()


def test_napari_opens_both_samples(mirror, shared_dir, make_napari_viewer):
    shutil.copy(shared_dir / "data" / "ihc" / "22_2.png", mirror / "22_2.png")
    viewer = make_napari_viewer()

    viewer.open_sample("napari-deepliif", "ki67")
    viewer.open_sample("napari-deepliif", "ihc")

    ki67, fhl2 = viewer.layers
    assert ki67.name == SAMPLES["ki67"].name and ki67.rgb and "Commons Clause" in ki67.metadata["source"]
    np.testing.assert_array_equal(ki67.data, read_rgb(shared_dir / "data" / "ihc" / "22_2.png"))
    assert fhl2.name == "ihc_colon_fhl2" and fhl2.data.shape == (512, 512, 3)
