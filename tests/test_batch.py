"""Batches on a real dask LocalCluster: summary table, per-slide failures, skip on rerun,
the same results with 1 or 2 workers, and what a user reads on the terminal."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
from distributed import LocalCluster
from PIL import Image
from test_slides import slide_pixels, write_ome_tiff, write_svs

from napari_deepliif.cli.main import main
from napari_deepliif.errors import InputImageError
from napari_deepliif.slides.batch import expand_inputs, output_names, run_batch
from napari_deepliif.slides.tasks import BatchOptions, start_task


@pytest.fixture(scope="module")
def slides(shared_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two small real-tissue slides (0.5 µm/px, tissue and glass) and one broken file."""
    folder = tmp_path_factory.mktemp("slides")
    pixels = slide_pixels(shared_dir)
    write_ome_tiff(folder / "a.ome.tif", pixels[0:768, 600:1624], mpp=0.5, levels=2)
    write_svs(folder / "b.svs", pixels[700:1468, 0:1024], mpp=0.5, magnification=20)
    (folder / "c.svs").write_bytes(b"not a slide at all")
    return folder


def read_summary(out: Path) -> list[dict]:
    with open(out / "summary.csv") as handle:
        return list(csv.DictReader(handle))


SCORE_COLUMNS = ("slide", "status", "num_total", "num_pos", "num_neg", "percent_pos", "size_thresh", "resolution")


def test_inputs_folders_globs_and_names(slides: Path) -> None:
    assert [p.name for p in expand_inputs([slides])] == ["a.ome.tif", "b.svs", "c.svs"]
    assert [p.name for p in expand_inputs([str(slides / "*.svs"), slides / "b.svs"])] == ["b.svs", "c.svs"]
    assert output_names([Path("x/a.svs"), Path("y/a.tif"), Path("b.ome.tif")]) == ["a-1", "a-2", "b"]
    with pytest.raises(InputImageError, match="no such file"):
        expand_inputs([slides / "missing.svs"])
    notes = slides.parent / "notes"
    notes.mkdir(exist_ok=True)
    (notes / "readme.txt").write_text("not a slide")
    with pytest.raises(InputImageError, match=r"no slides found in .*notes: a folder's files are read when .*\.svs"):
        expand_inputs(iter([notes]))


def test_cli_batch_two_workers_equals_one_worker_and_reruns_skip(slides: Path, tmp_path: Path, capsys) -> None:
    status = main(["batch", str(slides), "--out", str(tmp_path / "two"), "--workers", "2",
                   "--engine", "stain", "--resolution", "10x", "--chunk-size", "256"])
    assert status == 1  # one slide failed
    printed = capsys.readouterr().out
    assert "[3/3]" in printed and "c.svs: FAILED: InputImageError" in printed and "2 of 3 slides scored" in printed
    two = read_summary(tmp_path / "two")
    assert [(r["slide"], r["status"]) for r in two] == [("a.ome.tif", "done"), ("b.svs", "done"), ("c.svs", "failed")]
    assert int(two[0]["tiles_skipped"]) == 0 and float(two[0]["percent_pos"]) > 0  # stain: chunks, not tiles

    options = BatchOptions(engine="stain", resolution="10x", chunk_size=256)
    events: list[dict] = []
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        one = run_batch([slides / "a.ome.tif", slides / "b.svs", slides / "c.svs"], tmp_path / "one", options,
                        scheduler=cluster.scheduler_address, on_progress=events.append)
        assert [r["slide"] for r in one] == ["a.ome.tif", "b.svs", "c.svs"]
        scores = [{k: r[k] for k in SCORE_COLUMNS} for r in read_summary(tmp_path / "one")]
        assert scores == [{k: r[k] for k in SCORE_COLUMNS} for r in two]
        for name in ("a", "b"):
            assert (tmp_path / "one" / name / "cells.csv").read_text() == (tmp_path / "two" / name / "cells.csv").read_text()
        assert {e["slide"] for e in events} >= {"a.ome.tif", "b.svs"}

        again = run_batch([slides], tmp_path / "one", options, scheduler=cluster.scheduler_address)
    assert [r["skipped"] for r in again[:2]] == [True, True]
    assert [r["num_total"] for r in again[:2]] == [r["num_total"] for r in one[:2]]
    assert again[2]["status"] == "failed"


def run_cli(*args: str) -> subprocess.CompletedProcess:
    """``napari-deepliif ARGS`` in a new process, as a user runs it (workers' output included)."""
    return subprocess.run([sys.executable, "-m", "napari_deepliif.cli.main", *args], capture_output=True, text=True,
                          check=False, timeout=300)


@pytest.fixture(scope="module")
def plain_images(shared_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A PNG (no pixel size) and a file that is no image."""
    folder = tmp_path_factory.mktemp("plain")
    Image.fromarray(slide_pixels(shared_dir, (384, 384))).save(folder / "p.png")
    (folder / "c.svs").write_bytes(b"not a slide at all")
    return folder


@pytest.fixture(scope="module")
def default_run(plain_images: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess, Path]:
    """``batch`` over the PNG and the broken file with no --resolution: the result and its output folder."""
    out = tmp_path_factory.mktemp("default") / "out"
    return run_cli("batch", str(plain_images), "--out", str(out), "--engine", "stain"), out


@pytest.fixture(scope="module")
def given_run(plain_images: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess, Path]:
    """The same with ``-v`` and ``--resolution 40x``, into a folder where an empty ``c/`` was left before."""
    out = tmp_path_factory.mktemp("given") / "out"
    (out / "c").mkdir(parents=True)
    return run_cli("-v", "batch", str(plain_images), "--out", str(out), "--engine", "stain", "--resolution", "40x"), out


def test_cli_batch_scores_a_file_without_pixel_size_at_40x_as_its_help_says(default_run) -> None:
    assert "else 40x" in " ".join(run_cli("batch", "--help").stdout.split())
    result, out = default_run
    assert result.returncode == 1  # c.svs failed, p.png did not
    lines = result.stdout.splitlines()
    assert len(lines) == 3 and lines[2].startswith("1 of 2 slides scored")
    assert lines[1].startswith("[2/2] p.png: ") and " cells, " in lines[1]
    assert json.loads((out / "p" / "score.json").read_text())["placement"]["resolution"] == "40x"


def test_cli_batch_prints_a_failure_once(default_run) -> None:
    result, _ = default_run
    failed = result.stdout.splitlines()[0]
    assert failed.startswith("[1/2] c.svs: FAILED: InputImageError: cannot read ")
    message = failed.split("FAILED: InputImageError: ")[1]
    assert (result.stdout + result.stderr).count(message) == 1


def test_cli_batch_shows_distributed_log_only_with_verbose(default_run, given_run) -> None:
    assert "INFO" not in default_run[0].stderr and "distributed" not in default_run[0].stderr
    assert "INFO distributed.scheduler" in given_run[0].stderr


def test_cli_batch_says_assuming_only_when_it_assumes(default_run, given_run) -> None:
    assert default_run[0].stderr.count("p.png states no pixel size: assuming it is 40x") == 1
    assert given_run[0].returncode == 1 and (given_run[1] / "p" / "score.json").is_file()
    assert "assuming" not in given_run[0].stderr


def test_cli_batch_removes_only_the_empty_folders_it_made(default_run, given_run) -> None:
    assert sorted(p.name for p in default_run[1].iterdir()) == ["p", "summary.csv"]  # no empty c/
    assert (given_run[1] / "c").is_dir()  # there before the run: kept


def test_slide_missing_on_the_worker_fails_clearly(tmp_path: Path) -> None:
    record = start_task(str(tmp_path / "elsewhere.svs"), str(tmp_path / "out" / "elsewhere"), BatchOptions(engine="stain"))
    assert record["run"]["status"] == "failed"
    error = record["run"]["error"]
    assert "cannot be read on the worker" in error and "shared file system" in error
    assert not (tmp_path / "out").exists()
