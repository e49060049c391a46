"""One slide over several dask workers: scaling, scheduler cost per chunk, share of the reduce.

Slide: a SIZE x SIZE (default 4096) pyramidal OME-TIFF at 0.25 µm/px (40x), built by
``bench_slides.build_slide`` from the real samples (a quarter of its 2048 px blocks glass).
For each engine (``stain``, and the fixture model ``deepliif-fit-ngf8``) the slide is scored:

- in this process (``slides.run.score_slide``, torch/OpenMP on 2 threads): the baseline;
- with :func:`napari_deepliif.slides.batch.run_batch` on a LocalCluster of worker processes,
  ``1x2`` (1 worker, 2 threads) and ``2x1`` (2 workers, 1 thread each), OpenMP 1 thread per
  task thread, so both use 2 cores.

Per cluster run, from the scheduler's task stream: wall seconds; the start task (plan, tissue
mask, statistics), the chunk tasks (count, sum and mean seconds) and the finish task (the
reduce: pyramids, cells, files) and its share of the wall time; the idle thread time per chunk
while chunks run (``(chunk phase x threads - chunk task seconds) / chunks``: scheduling,
transfers, the client's record writes and the tail where a thread has no chunk left). Then,
on a 2 x 1 cluster: the scheduler's round trip per task (200 empty tasks through
``as_completed``) and one file lock (acquire + release, as a chunk takes one per storage file
it touches). In this process: reading a 2048 px chunk of the slide, writing two outputs of it
to a store, and saving a run record of 2,500 chunks (the client's write after each chunk of a
100,000 x 80,000 slide). Last, the paper model of docs/benchmarks.md for 1, 8 and 64 GPU
workers, from these figures and an assumed per-tile GPU time (``--gpu-tile-s``; not measured
here, see docs).

Usage::

    PYTHONPATH=src python benchmarks/bench_workers.py [--size 4096] [--chunk-size 1024] [--gpu-tile-s 0.1]
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_slides import SHARED, WORK, build_slide  # noqa: E402

MODEL = str(SHARED / "fixtures" / "models" / "deepliif-fit-ngf8")
#: The slide of the issue: 100,000 x 80,000 px at 40x.
BIG = (80_000, 100_000)


def phases(stream: list[dict]) -> dict:
    """Seconds of the start, chunk and finish tasks in a task stream, and the chunk phase's span."""
    spans: dict[str, list[tuple[float, float]]] = {"start": [], "chunk": [], "finish": []}
    for task in stream:
        kind = str(task["key"]).split("-", 1)[0]
        for step in task["startstops"]:
            if step["action"] == "compute" and kind in spans:
                spans[kind].append((step["start"], step["stop"]))
    chunks = spans["chunk"]
    return {"start_s": sum(b - a for a, b in spans["start"]), "finish_s": sum(b - a for a, b in spans["finish"]),
            "chunks": len(chunks), "chunk_s": sum(b - a for a, b in chunks),
            "chunk_phase_s": max(b for _, b in chunks) - min(a for a, _ in chunks) if chunks else 0.0}


def cluster_run(slide: Path, out: Path, options, workers: int, threads: int) -> dict:
    """Score ``slide`` on a fresh LocalCluster of ``workers`` x ``threads``; the task stream's figures."""
    from distributed import Client, LocalCluster, get_task_stream

    from napari_deepliif.slides.batch import run_batch

    shutil.rmtree(out, ignore_errors=True)
    with LocalCluster(n_workers=workers, threads_per_worker=threads, processes=True, dashboard_address=None,
                      env={"OMP_NUM_THREADS": "1"}) as cluster, Client(cluster) as client:
        with get_task_stream(client) as stream:
            started = time.perf_counter()
            rows = run_batch([slide], out, options, scheduler=cluster.scheduler_address)
            wall = time.perf_counter() - started
        figures = phases(stream.data)
    assert rows[0]["status"] == "done", rows[0]["error"]
    idle = (figures["chunk_phase_s"] * workers * threads - figures["chunk_s"]) / max(figures["chunks"], 1)
    return {"layout": f"{workers}x{threads}", "wall_s": round(wall, 2), "tiles_run": int(rows[0]["tiles_run"]),
            "chunks": figures["chunks"], "chunk_mean_s": round(figures["chunk_s"] / max(figures["chunks"], 1), 3),
            "start_s": round(figures["start_s"], 2), "finish_s": round(figures["finish_s"], 2),
            "reduce_share": round(figures["finish_s"] / wall, 3), "idle_per_chunk_ms": round(1000 * idle, 1),
            "num_total": int(rows[0]["num_total"]), "workers": json.loads(rows[0]["workers"])}


def scheduler_costs(n: int = 200) -> dict:
    """Round trip of an empty task, and one lock acquire + release, on a 2 x 1 cluster (ms)."""
    from distributed import Client, LocalCluster, as_completed

    def lock_cost(count: int) -> float:
        from distributed import Lock

        started = time.perf_counter()
        for i in range(count):
            with Lock(f"bench-{i % 4}"):
                pass
        return (time.perf_counter() - started) / count

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        client.submit(abs, 0, pure=False).result()  # warm the connections
        started = time.perf_counter()
        for _ in as_completed([client.submit(abs, i, pure=False) for i in range(n)]):
            pass
        per_task = (time.perf_counter() - started) / n
        per_lock = client.submit(lock_cost, 100, pure=False).result()
    return {"task_round_trip_ms": round(1000 * per_task, 2), "lock_ms": round(1000 * per_lock, 2)}


def io_costs(slide: Path) -> dict:
    """Reading a 2048 px chunk, writing 2 outputs of it (compressed zarr), saving a 2,500-chunk record."""
    from napari_deepliif.slides import omezarr, open_slide

    with open_slide(slide) as opened:
        level = opened.array(opened.level_or_default(None))
        started = time.perf_counter()
        block = np.asarray(level[0:2048, 0:2048])
        read = time.perf_counter() - started
    folder = Path(tempfile.mkdtemp())
    try:
        root = omezarr.create_store(folder / "s.ome.zarr", ("Marker", "Seg"), (4096, 4096), 0.25, {})
        started = time.perf_counter()
        for name in ("Marker", "Seg"):
            root[name]["0"][:, 0:2048, 0:2048] = np.moveaxis(block, -1, 0)
        write = time.perf_counter() - started
        record = omezarr.RunRecord(folder / "deepliif.json", {"outputs": ["Marker", "Seg"]})
        sums = omezarr.chunk_checksums((0, 2048, 0, 2048), {"Marker": block, "Seg": block})
        for i in range(2499):
            record.checksums[str(i)] = sums
            record.done.add(i)
        started = time.perf_counter()
        record.mark(2499, (0, 2048, 0, 2048), sums)
        save = time.perf_counter() - started
    finally:
        shutil.rmtree(folder)
    return {"read_chunk_2048_s": round(read, 3), "write_chunk_2048_2_outputs_s": round(write, 3),
            "record_save_2500_chunks_ms": round(1000 * save, 1)}


def paper_model(gpu_tile_s: float, reduce_s_per_mp: float, costs: dict, chunk_size: int = 2048) -> list[dict]:
    """Wall time of the 100,000 x 80,000 slide on 1, 8 and 64 GPU workers (see docs/benchmarks.md)."""
    from napari_deepliif.engine.tiling import TileGrid, tiled_chunks

    chunks = tiled_chunks(TileGrid(*BIG, 512), chunk_size)
    tiles = sum(len(c.tiles) for c in chunks)
    per_chunk_cpu = (costs["read_chunk_2048_s"] + costs["write_chunk_2048_2_outputs_s"]
                     + 4 * costs["lock_ms"] / 1000 + costs["task_round_trip_ms"] / 1000)
    chunk_s = tiles / len(chunks) * gpu_tile_s + per_chunk_cpu
    client_s = len(chunks) * costs["record_save_2500_chunks_ms"] / 1000 / 2  # records grow from 0 to full
    reduce_s = reduce_s_per_mp * BIG[0] * BIG[1] / 1e6
    rows = []
    for workers in (1, 8, 64):
        chunks_s = math.ceil(len(chunks) / workers) * chunk_s
        rows.append({"gpu_workers": workers, "tiles": tiles, "chunks": len(chunks),
                     "chunks_h": round(max(chunks_s, client_s) / 3600, 2), "reduce_h": round(reduce_s / 3600, 2),
                     "wall_h": round((max(chunks_s, client_s) + reduce_s) / 3600, 2),
                     "reduce_share": round(reduce_s / (max(chunks_s, client_s) + reduce_s), 3),
                     "client_record_h": round(client_s / 3600, 2)})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--chunk-size", type=int, default=1024)
    parser.add_argument("--gpu-tile-s", type=float, default=0.1, help="assumed GPU seconds per 512 px tile")
    args = parser.parse_args()

    from napari_deepliif.engine.engines import load_engine
    from napari_deepliif.slides.run import score_slide
    from napari_deepliif.slides.tasks import BatchOptions

    slide = build_slide(WORK / f"bench-slide-{args.size}.ome.tif", args.size)
    results = {}
    for engine in ("stain", "fixture"):
        options = BatchOptions(engine="stain" if engine == "stain" else "deepliif",
                               model=None if engine == "stain" else MODEL, device="cpu", chunk_size=args.chunk_size,
                               geojson=False)
        out = WORK / f"bench-workers-{engine}"
        shutil.rmtree(out, ignore_errors=True)
        loaded = load_engine(options.engine, options.model, device="cpu")
        started = time.perf_counter()
        record = score_slide(loaded, slide, out / "in-process", chunk_size=args.chunk_size, geojson=False)
        runs = [{"layout": "in-process", "wall_s": round(time.perf_counter() - started, 2),
                 "num_total": record["scoring"]["num_total"]}]
        print(json.dumps({"engine": engine, **runs[0]}), flush=True)
        for workers, threads in ((1, 2), (2, 1)):
            runs.append(cluster_run(slide, out / f"{workers}x{threads}", options, workers, threads))
            print(json.dumps({"engine": engine, **runs[-1]}), flush=True)
        by = {r["layout"]: r for r in runs}
        assert len({r["num_total"] for r in runs}) == 1, "the layouts disagree"
        results[engine] = {"runs": runs, "ratio_2x1_over_1x2": round(by["2x1"]["wall_s"] / by["1x2"]["wall_s"], 3),
                           "ratio_2x1_over_in_process": round(by["2x1"]["wall_s"] / by["in-process"]["wall_s"], 3)}
        print(json.dumps({"engine": engine, **{k: v for k, v in results[engine].items() if k != "runs"}}), flush=True)
    costs = {**scheduler_costs(), **io_costs(slide)}
    print(json.dumps(costs), flush=True)
    fixture = {r["layout"]: r for r in results["fixture"]["runs"]}["1x2"]
    reduce_s_per_mp = fixture["finish_s"] / (args.size * args.size / 1e6)
    model = paper_model(args.gpu_tile_s, reduce_s_per_mp, costs)
    for row in model:
        print(json.dumps({"gpu_tile_s": args.gpu_tile_s, "reduce_s_per_mp": round(reduce_s_per_mp, 4), **row}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
