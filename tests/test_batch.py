"""Batches on a real dask LocalCluster: summary table, per-slide failures, skip on rerun,
and the same results with 1 or 2 workers."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from distributed import LocalCluster
from test_slides import slide_pixels, write_ome_tiff, write_svs

from napari_deepliif.cli.main import main
from napari_deepliif.errors import InputImageError
from napari_deepliif.slides.batch import BatchOptions, expand_inputs, output_names, run_batch


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
