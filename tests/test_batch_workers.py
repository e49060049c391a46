"""One slide over many workers (a real dask LocalCluster of worker processes): the same cells
and pixels as one pass in this process, a worker killed mid-slide included; every chunk written
and recorded once; resume after damage; tiles progress over all workers and per-worker figures.
"""

from __future__ import annotations

import csv
import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import zarr
from distributed import Client, LocalCluster
from test_slides import slide_pixels, write_ome_tiff

from napari_deepliif.cells.postprocess import Settings
from napari_deepliif.cli.main import main
from napari_deepliif.engine.engines import load_engine
from napari_deepliif.slides import omezarr
from napari_deepliif.slides.batch import run_batch
from napari_deepliif.slides.run import STORE_NAME, score_slide
from napari_deepliif.slides.tasks import BatchOptions

#: Chunks of 512 px: seams through cells, and up to 4 chunks share each 1024 px storage file.
CHUNK = 512
SETTINGS = Settings(size_thresh=40, size_thresh_upper=None, marker_thresh=None)
OPTIONS = BatchOptions(engine="stain", chunk_size=CHUNK, settings=SETTINGS, geojson=False)


@pytest.fixture(scope="module")
def slide(shared_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1100 x 1300 pyramidal OME-TIFF at 0.25 µm/px (40x): real tissue, glass at two edges."""
    folder = tmp_path_factory.mktemp("workers")
    return write_ome_tiff(folder / "w.ome.tif", slide_pixels(shared_dir, (1100, 1300)), mpp=0.25, levels=2)


@pytest.fixture(scope="module")
def one_pass(slide: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The slide scored in this process, chunk after chunk (score_slide): the reference."""
    out = tmp_path_factory.mktemp("one") / "w"
    score_slide(load_engine("stain"), slide, out, chunk_size=CHUNK, settings=SETTINGS, geojson=False)
    return out


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    """Three worker processes (each under a nanny, which restarts a killed one)."""
    with LocalCluster(n_workers=3, threads_per_worker=1, processes=True, dashboard_address=None) as started:
        yield started


def level0(out: Path, name: str) -> np.ndarray:
    return np.asarray(zarr.open_group(str(out / STORE_NAME), mode="r")[name]["0"][:])


def assert_same_result(out: Path, reference: Path) -> None:
    """Cells, score and stored pixels equal; every chunk recorded once, with intact checksums."""
    assert (out / "cells.csv").read_text() == (reference / "cells.csv").read_text()
    ours, theirs = (json.loads((d / "score.json").read_text()) for d in (out, reference))
    assert ours["scoring"] == theirs["scoring"] and ours["scoring"]["num_total"] > 100
    for name in ("Seg", "Marker"):
        np.testing.assert_array_equal(level0(out, name), level0(reference, name), err_msg=name)
    record = omezarr.RunRecord.load(out / STORE_NAME)
    chunks = load_engine("stain").plan(tuple(level0(out, "Seg").shape[1:]), "40x", CHUNK)
    assert record.done == {c.index for c in chunks} and not record.verify()
    assert record.boxes() == {c.index: c.box for c in chunks}
    cover = np.zeros(level0(out, "Seg").shape[1:], int)
    for y0, y1, x0, x1 in record.boxes().values():
        cover[y0:y1, x0:x1] += 1
    assert (cover == 1).all()  # the chunks written tile the image: nothing twice, nothing missing


def test_a_killed_worker_costs_only_its_chunks(slide: Path, one_pass: Path, cluster: LocalCluster,
                                               tmp_path: Path) -> None:
    with Client(cluster) as client:
        pids = client.run(os.getpid)
    victim = pids[sorted(pids)[0]]
    killed: list[dict] = []

    def kill_after_first_chunks(event: dict) -> None:
        if event["stage"] == "inference" and not killed:
            os.kill(victim, signal.SIGKILL)
            killed.append(event)

    rows = run_batch([slide], tmp_path, OPTIONS, scheduler=cluster.scheduler_address,
                     on_progress=kill_after_first_chunks)
    assert killed and killed[0]["tiles_done"] < killed[0]["tiles_total"]  # killed mid-slide
    assert rows[0]["status"] == "done"
    assert_same_result(tmp_path / "w", one_pass)
    with Client(cluster) as client:
        assert victim not in client.run(os.getpid).values()


def test_a_damaged_store_resumes_only_the_chunks_that_wrote_the_lost_file(slide: Path, one_pass: Path,
                                                                          cluster: LocalCluster,
                                                                          tmp_path: Path) -> None:
    first = run_batch([slide], tmp_path, OPTIONS, scheduler=cluster.scheduler_address)
    record = omezarr.RunRecord.load(tmp_path / "w" / STORE_NAME)
    touching = [c for c, box in record.boxes().items() if (0, 1) in omezarr.storage_keys(box)]
    (tmp_path / "w" / STORE_NAME / "Seg" / "0" / "0.0.1").unlink()  # storage chunk (0, 1) of Seg

    again = run_batch([slide], tmp_path, OPTIONS, scheduler=cluster.scheduler_address)
    redone = int(again[0]["tiles_run"]) + int(again[0]["tiles_skipped"])  # chunks on glass are skipped, not run
    assert not again[0]["skipped"] and 0 < redone == len(touching) < int(first[0]["tiles_run"])
    assert_same_result(tmp_path / "w", one_pass)
    assert run_batch([slide], tmp_path, OPTIONS, scheduler=cluster.scheduler_address)[0]["skipped"]


def test_cli_shows_tiles_over_all_workers_and_the_summary_each_workers_share(slide: Path, one_pass: Path,
                                                                             tmp_path: Path, capsys) -> None:
    copy = tmp_path / "copy.ome.tif"
    copy.write_bytes(slide.read_bytes())
    assert main(["batch", str(slide), str(copy), "--workers", "2", "--engine", "stain", "--chunk-size", str(CHUNK),
                 "--size-thresh", "40", "--no-geojson", "--out", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    planned = [line for line in err.splitlines() if "over all workers" in line]
    assert planned and planned[-1].strip().startswith("tiles ")
    done, total = planned[-1].split()[1].split("/")
    assert done == total  # the last event: every tile of both slides
    with open(tmp_path / "out" / "summary.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        workers = json.loads(row["workers"])
        assert 1 <= len(workers) <= 2
        assert sum(w["tiles"] for w in workers.values()) == int(row["tiles_run"])
        assert all(w["seconds"] > 0 and w["chunks"] > 0 for w in workers.values())
    assert any(len(json.loads(row["workers"])) == 2 for row in rows)  # a slide spread over both workers
    for name in ("w", "copy"):
        assert (tmp_path / "out" / name / "cells.csv").read_text() == (one_pass / "cells.csv").read_text()


def test_many_chunks_writing_one_storage_file_at_once_lose_nothing(shared_dir: Path, cluster: LocalCluster,
                                                                    tmp_path: Path) -> None:
    """208 chunks of 64 px share one storage file; many lie in glass (whole 512 px squares of
    it), so their tasks are little more than a write, and the three workers write that file at the same time (without the
    locks, some chunks' pixels are lost)."""
    path = write_ome_tiff(tmp_path / "g.ome.tif", slide_pixels(shared_dir)[:1024, 1272:], mpp=0.25, levels=1)
    options = BatchOptions(engine="stain", chunk_size=64, settings=SETTINGS, geojson=False)
    reference = tmp_path / "one" / "g"
    score_slide(load_engine("stain"), path, reference, chunk_size=64, settings=SETTINGS, geojson=False)
    rows = run_batch([path], tmp_path / "three", options, scheduler=cluster.scheduler_address)
    assert int(rows[0]["tiles_skipped"]) > 50 and len(json.loads(rows[0]["workers"])) == 3
    for name in ("Seg", "Marker"):
        np.testing.assert_array_equal(level0(tmp_path / "three" / "g", name), level0(reference, name), err_msg=name)
    record = omezarr.RunRecord.load(tmp_path / "three" / "g" / STORE_NAME)
    assert len(record.done) == 16 * 13 and not record.verify()
