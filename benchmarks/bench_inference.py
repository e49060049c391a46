"""Inference speed and memory of the engine against the batch-of-one baseline, on CPU.

Model: the full-size (ngf=64) DeepLIIF architecture with random weights, which runs exactly as
fast as the released weights; it is built once into ``benchmarks/_work/random-ngf64`` by
``fullsize_model.py``. Input: a crop of the real ``shared/data/ihc/ROI_1.png`` (mirror-padded
when larger) sized so that the 40x tile grid has exactly ``--tiles`` 512 x 512 tiles, none
computed twice. Each configuration runs in its own process so peak memory does not mix: it
loads and runs one warm-up tile (untimed), then the processes take turns: ``--repeat`` rounds
in which every configuration runs the whole image once, one process at a time (the order
reversed every other round). Taking turns keeps the configurations' figures comparable on a
virtual machine whose speed drifts by 10-40% over minutes: a ratio is taken within each round,
between runs a few seconds apart.

Configurations (``--configs``): ``all`` engine, every output, fp32; ``score`` engine, Marker and
Seg only, fp32; ``fast`` engine, every output, ``precision='fast'``; ``baseline``
(``baseline.py``) every output, nine nets, one tile at a time. Printed: seconds per tile (best
and median of the repeats), tiles/s, CPU seconds per tile (user + system, all threads: less
disturbed than wall time on a shared machine), peak RSS of the process (``ru_maxrss``, loading
included), RSS after loading, and the targets; with the baseline, the engine/baseline time
ratio of each round (median and range) and what the median means on a machine where the
reference takes its measured ~12.9 s per tile, the yardstick of the targets.

``--large`` instead runs a 10000 x 10000 zarr v3 input (``ROI_1.png`` tiled, chunks 512 x 512 x 3,
cached in ``benchmarks/_work``) with score outputs written into zarr arrays on disk through
``engine.infer(..., out=...)``; target: peak RSS <= 2 GB. With the full-size model it takes
15-20 minutes; ``--max-tiles N`` stops after N tiles (through the engine's progress and cancel
callbacks) and reports what was measured so far; ``--large-model fixture`` runs the small
fixture model to check memory behaviour quickly. Usage::

    PYTHONPATH=src python benchmarks/bench_inference.py [--tiles 6] [--repeat 3] [--configs all,score,fast,baseline] [--skip-baseline]
    PYTHONPATH=src python benchmarks/bench_inference.py --large [--large-model fullsize|fixture|DIR] [--max-tiles N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
WORK = HERE / "_work"
SHARED = HERE.parents[1] / "shared"
ROI = SHARED / "data" / "ihc" / "ROI_1.png"
FIXTURE_MODEL = SHARED / "fixtures" / "models" / "deepliif-fit-ngf8"
FULLSIZE_MODEL = WORK / "random-ngf64"
LARGE_SIZE = 10000
LARGE_INPUT = WORK / f"roi1-{LARGE_SIZE}.zarr"
LARGE_OUTPUT = WORK / f"roi1-{LARGE_SIZE}-out.zarr"
LARGE_RSS_TARGET_GB = 2.0
TILE = 512
#: Distance between tile starts at 40x: the tile less twice the overlap (512 // 16).
STEP = TILE - 2 * (TILE // 16)
#: Reference (deepliif 1.2.7, all outputs) wall time per 512 tile on these machines.
REFERENCE_S_PER_TILE = 12.9
RESULT_PREFIX = "RESULT "
NETS = ("G1", "G2", "G3", "G4", "G51", "G52", "G53", "G54", "G55")


@dataclass(frozen=True)
class Config:
    """One measured configuration."""

    label: str
    outputs: str
    precision: str
    target_s: float | None  #: target seconds per tile (full-size model), None for the baseline


CONFIGS = {
    "all": Config("engine  all outputs   fp32", "all", "fp32", 5.0),
    "score": Config("engine  score outputs fp32", "score", "fp32", 1.6),
    "fast": Config("engine  all outputs   fast", "all", "fast", 2.5),
    "baseline": Config("baseline all outputs fp32, batch of one", "all", "fp32", None),
}


def fullsize_model() -> Path:
    """The full-size random-weight model directory, built on first use (about 1.5 GB)."""
    files = ["train_opt.txt", *(f"latest_net_{n}.pth" for n in NETS)]
    if all((FULLSIZE_MODEL / f).is_file() for f in files):
        return FULLSIZE_MODEL
    from fullsize_model import build

    print(f"building the full-size random model in {FULLSIZE_MODEL} (once) ...", flush=True)
    partial = FULLSIZE_MODEL.with_name(FULLSIZE_MODEL.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    build(partial)
    shutil.rmtree(FULLSIZE_MODEL, ignore_errors=True)
    partial.rename(FULLSIZE_MODEL)
    return FULLSIZE_MODEL


def resolve_model(choice: str) -> Path:
    """``fullsize`` (built on demand), ``fixture`` (the small fitted model) or a directory."""
    if choice == "fullsize":
        return fullsize_model()
    if choice == "fixture":
        return FIXTURE_MODEL
    return Path(choice)


def read_roi() -> np.ndarray:
    """``ROI_1.png`` as H x W x 3 uint8."""
    with Image.open(ROI) as im:
        return np.asarray(im.convert("RGB"))


def grid_shape(n_tiles: int) -> tuple[int, int]:
    """(rows, columns) of tiles, as square as ``n_tiles`` allows (rows <= columns)."""
    rows = max(r for r in range(1, int(n_tiles**0.5) + 1) if n_tiles % r == 0)
    return rows, n_tiles // rows


def side_for(n: int) -> int:
    """Largest image side with exactly ``n`` tiles along it and no tile computed twice."""
    return TILE if n == 1 else STEP * n


def bench_image(n_tiles: int) -> np.ndarray:
    """A crop of ROI_1 (mirror-padded where needed) whose 40x grid has ``n_tiles`` tiles."""
    rows, cols = grid_shape(n_tiles)
    height, width = side_for(rows), side_for(cols)
    roi = read_roi()
    pad = ((0, max(0, height - roi.shape[0])), (0, max(0, width - roi.shape[1])), (0, 0))
    return np.ascontiguousarray(np.pad(roi, pad, mode="symmetric")[:height, :width])


def peak_rss_gb() -> float:
    """Peak resident memory of this process so far (Linux ``ru_maxrss`` is in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9


def current_rss_gb() -> float:
    """Resident memory of this process now."""
    resident_pages = int(Path("/proc/self/statm").read_text().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE") / 1e9


def cpu_seconds() -> float:
    """User + system CPU time of this process so far (all threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def serve_tiles(name: str, model: Path, n_tiles: int) -> None:
    """Worker: load and warm up on one tile, then time one run of the benchmark image for every
    ``run`` line on stdin; a ``stop`` line (or the end of stdin) ends it with its peak RSS."""
    config = CONFIGS[name]
    image = bench_image(n_tiles)
    start = time.perf_counter()
    if name == "baseline":
        from baseline import Baseline

        base = Baseline(model)

        def run(img: np.ndarray) -> None:
            base.infer(img, TILE)
    else:
        from napari_deepliif.engine.engines import Engine

        engine = Engine.load(model, device="cpu", precision=config.precision)

        def run(img: np.ndarray) -> None:
            engine.infer(img, resolution="40x", outputs=config.outputs)

    run(image[:TILE, :TILE])  # builds the nets; not timed
    emit({"load_s": time.perf_counter() - start, "loaded_rss_gb": current_rss_gb()})
    for line in sys.stdin:
        if line.strip() != "run":
            break
        start, start_cpu = time.perf_counter(), cpu_seconds()
        run(image)
        emit({"time": time.perf_counter() - start, "cpu": cpu_seconds() - start_cpu})
    emit({"peak_rss_gb": peak_rss_gb()})


def emit(result: dict[str, Any]) -> None:
    """Worker: hand one result line to the driver."""
    print(RESULT_PREFIX + json.dumps(result), flush=True)


def measure_large(model: Path, max_tiles: int | None) -> dict[str, Any]:
    """Worker: score outputs of the large zarr input into zarr arrays on disk."""
    import zarr

    from napari_deepliif.engine.engines import Engine
    from napari_deepliif.errors import Cancelled

    source = zarr.open_array(LARGE_INPUT, mode="r")
    start = time.perf_counter()
    engine = Engine.load(model, device="cpu")
    group = zarr.open_group(LARGE_OUTPUT, mode="w")
    out = {
        name: group.create_array(name, shape=source.shape, chunks=(TILE, TILE, 3), dtype="uint8")
        for name in engine.resolve_outputs("score")
    }
    marks: list[tuple[int, int, float]] = []  # (tiles done, tiles in all, time); the first when tiling starts

    def progress(done: int, total: int) -> None:
        marks.append((done, total, time.perf_counter()))
        if done % 25 == 0 or done == total:
            print(f"  {done}/{total} tiles, peak RSS {peak_rss_gb():.2f} GB", file=sys.stderr, flush=True)

    def cancel() -> bool:
        return max_tiles is not None and marks[-1][0] >= max_tiles

    try:
        engine.infer(source, resolution="40x", outputs="score", out=out, progress=progress, cancel=cancel)
    except Cancelled:
        pass  # stopped after max_tiles: what was measured so far is the result
    done, total, end = marks[-1]
    first = marks[0][2]
    return {"load_s": first - start, "done": done, "total": total, "tiles_s": end - first,
            "peak_rss_gb": peak_rss_gb(), "final_rss_gb": current_rss_gb()}


def build_large_input() -> None:
    """Tile ROI_1 into a LARGE_SIZE x LARGE_SIZE x 3 zarr v3 array (chunks 512 x 512 x 3), once."""
    import zarr

    if LARGE_INPUT.exists():
        existing = zarr.open_array(LARGE_INPUT, mode="r")
        if existing.shape == (LARGE_SIZE, LARGE_SIZE, 3) and existing.attrs.get("complete"):
            return
    print(f"writing {LARGE_INPUT} (once) ...", flush=True)
    roi = read_roi()
    array = zarr.create_array(LARGE_INPUT, shape=(LARGE_SIZE, LARGE_SIZE, 3), chunks=(TILE, TILE, 3),
                              dtype="uint8", overwrite=True)
    cols = np.arange(LARGE_SIZE) % roi.shape[1]
    for y in range(0, LARGE_SIZE, TILE):
        rows = np.arange(y, min(y + TILE, LARGE_SIZE)) % roi.shape[0]
        array[y : y + len(rows)] = roi[np.ix_(rows, cols)]
    array.attrs["complete"] = True


def worker_env() -> dict[str, str]:
    """The environment of a worker process."""
    env = dict(os.environ)
    # NNPACK (the engine's fp32 stride-1 convs) has its own thread pool; OpenMP threads that
    # spin-wait after each oneDNN/ATen op (the default ACTIVE policy) then compete with it for
    # the cores. PASSIVE makes idle OpenMP threads sleep (and idle workers cost no CPU).
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return env


def worker_command(args: list[str]) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), *args]


def run_worker(args: list[str]) -> dict[str, Any] | None:
    """Run this script as a worker in a fresh process; its result, or None if it failed."""
    proc = subprocess.run(worker_command(args), env=worker_env(), stdout=subprocess.PIPE, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if proc.returncode != 0 or not lines:
        print(f"  worker {' '.join(args)} failed (exit {proc.returncode})")
        return None
    return json.loads(lines[-1][len(RESULT_PREFIX):])


class TileWorker:
    """A configuration's worker process (:func:`serve_tiles`), driven one run at a time."""

    def __init__(self, name: str, args: list[str]):
        self.name = name
        self.proc = subprocess.Popen(worker_command(["--worker", name, *args]), env=worker_env(),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.result: dict[str, Any] = {**self._read(), "times": [], "cpu": []}

    def _read(self) -> dict[str, Any]:
        for line in self.proc.stdout:
            if line.startswith(RESULT_PREFIX):
                return json.loads(line[len(RESULT_PREFIX):])
        raise RuntimeError(f"worker {self.name} ended (exit {self.proc.wait()})")

    def run(self) -> None:
        self.proc.stdin.write("run\n")
        self.proc.stdin.flush()
        r = self._read()
        self.result["times"].append(r["time"])
        self.result["cpu"].append(r["cpu"])

    def stop(self) -> dict[str, Any]:
        self.proc.stdin.write("stop\n")
        self.proc.stdin.flush()
        self.result.update(self._read())
        self.proc.wait()
        return self.result

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()


def measure_in_turns(names: list[str], args: list[str], repeat: int) -> dict[str, dict[str, Any]] | None:
    """Start a worker per configuration (one after another), then ``repeat`` rounds in which
    each runs once, in turn; every worker's result, or None if one failed."""
    workers: list[TileWorker] = []
    try:
        for name in names:
            print(f"  loading {name} ...", flush=True)
            workers.append(TileWorker(name, args))
        for round_no in range(repeat):
            print(f"  round {round_no + 1} of {repeat} ...", flush=True)
            for worker in workers if round_no % 2 == 0 else reversed(workers):
                worker.run()
        return {w.name: w.stop() for w in workers}
    except (RuntimeError, BrokenPipeError) as exc:
        print(f"  {exc}")
        return None
    finally:
        for worker in workers:
            worker.kill()


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (else what ``platform`` knows)."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def print_machine() -> None:
    """CPU, cores, torch and the exact command line."""
    import torch

    from napari_deepliif.engine.devices import fast_dtype

    env = " ".join(f"{k}={os.environ[k]}" for k in ("PYTHONPATH", "OMP_WAIT_POLICY", "OMP_NUM_THREADS")
                   if k in os.environ)
    print(f"command: {env + ' ' if env else ''}{shlex.join([Path(sys.executable).name, *sys.argv])}")
    print(f"cpu: {cpu_model()}, {len(os.sched_getaffinity(0))} usable cores ({os.cpu_count()} online), "
          f"torch {torch.__version__} with {torch.get_num_threads()} threads, "
          f"'fast' on cpu = {fast_dtype('cpu') or 'fp32 (no bf16 kernels)'}, "
          f"OMP_WAIT_POLICY in workers = {os.environ.get('OMP_WAIT_POLICY', 'PASSIVE')}")


def verdict(value: float, target: float | None, unit: str = "") -> str:
    """``target <= X: ok`` / ``MISSED`` beside a figure, or nothing without a target."""
    if target is None:
        return ""
    return f"target <= {target:g}{unit}: {'ok' if value <= target else 'MISSED'}"


def report_tiles(results: dict[str, dict[str, Any]], n_tiles: int, fullsize: bool) -> None:
    """The table of the tile configurations and the engine/baseline ratios."""
    print(f"\n{'configuration':40s} {'s/tile best':>11s} {'median':>7s} {'tiles/s':>8s} {'load s':>7s} "
          f"{'cpu s/tile':>10s} {'RSS loaded':>10s} {'peak RSS':>9s}  target (s/tile)")
    best: dict[str, float] = {}
    for name, r in results.items():
        per_tile = [t / n_tiles for t in r["times"]]
        best[name] = min(per_tile)
        cpu_per_tile = min(r["cpu"]) / n_tiles
        target = CONFIGS[name].target_s if fullsize else None
        print(f"{CONFIGS[name].label:40s} {best[name]:11.3f} {statistics.median(per_tile):7.3f} "
              f"{1 / best[name]:8.3f} {r['load_s']:7.1f} {cpu_per_tile:10.2f} "
              f"{r['loaded_rss_gb']:8.2f}GB {r['peak_rss_gb']:7.2f}GB  "
              f"{verdict(best[name], target)}")
    if "baseline" in best:
        print("\nengine / baseline, run by run within each round (median, range)"
              + (f"; x {REFERENCE_S_PER_TILE} s = on a machine where the reference takes its usual time" if fullsize else "")
              + ":")
        base = results["baseline"]["times"]
        for name, r in results.items():
            if name == "baseline":
                continue
            ratios = [t / b for t, b in zip(r["times"], base)]
            ratio = statistics.median(ratios)
            line = f"  {name:6s} {ratio:6.3f} ({min(ratios):.3f}-{max(ratios):.3f}, {1 / ratio:.1f}x faster)"
            if fullsize:
                scaled = ratio * REFERENCE_S_PER_TILE
                line += f"  -> {scaled:.2f} s/tile  {verdict(scaled, CONFIGS[name].target_s)}"
            print(line)
    if fullsize:
        print(f"\nreference deepliif 1.2.7 on these machines: ~{REFERENCE_S_PER_TILE} s/tile (all outputs); "
              "targets apply to s/tile on a quiet machine")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--tiles", type=int, default=6, help="512 tiles per timed run (default 6: a 896 x 1344 crop)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds: each configuration runs the image once per round")
    parser.add_argument("--configs", default=",".join(CONFIGS), help=f"comma-separated, from {','.join(CONFIGS)}")
    parser.add_argument("--skip-baseline", action="store_true", help="leave the baseline out")
    parser.add_argument("--model", default="fullsize", help="fullsize, fixture or a model directory")
    parser.add_argument("--large", action="store_true", help=f"run the {LARGE_SIZE} x {LARGE_SIZE} zarr benchmark instead")
    parser.add_argument("--large-model", default="fullsize", help="model of --large: fullsize, fixture or a directory")
    parser.add_argument("--max-tiles", type=int, help="--large: stop after this many tiles")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker == "large":
        result = measure_large(Path(args.large_model), args.max_tiles)
        print(RESULT_PREFIX + json.dumps(result))
        return 0
    if args.worker:
        serve_tiles(args.worker, Path(args.model), args.tiles)
        return 0

    print_machine()
    if args.large:
        model = resolve_model(args.large_model)
        build_large_input()
        print(f"\nlarge: {LARGE_SIZE} x {LARGE_SIZE} zarr input, score outputs into zarr on disk, model {model}"
              + (f", first {args.max_tiles} tiles" if args.max_tiles else ""), flush=True)
        worker = ["--worker", "large", "--large-model", str(model)]
        r = run_worker(worker + (["--max-tiles", str(args.max_tiles)] if args.max_tiles else []))
        if r is None:
            return 1
        per_tile = r["tiles_s"] / max(1, r["done"])
        print(f"tiles done {r['done']} of {r['total']} in {r['tiles_s']:.1f} s: {per_tile:.3f} s/tile, "
              f"{1 / per_tile:.2f} tiles/s; load {r['load_s']:.1f} s; "
              f"all tiles at this rate ~{per_tile * r['total'] / 60:.1f} min")
        print(f"peak RSS {r['peak_rss_gb']:.2f} GB ({verdict(r['peak_rss_gb'], LARGE_RSS_TARGET_GB, ' GB')}), "
              f"RSS at the end {r['final_rss_gb']:.2f} GB")
        return 0 if r["peak_rss_gb"] <= LARGE_RSS_TARGET_GB else 1

    names = [n.strip() for n in args.configs.split(",") if n.strip()]
    unknown = [n for n in names if n not in CONFIGS]
    if unknown:
        parser.error(f"unknown configs {unknown}; choose from {', '.join(CONFIGS)}")
    if args.skip_baseline:
        names = [n for n in names if n != "baseline"]
    model = resolve_model(args.model)
    image = bench_image(args.tiles)
    from napari_deepliif.engine.inference import is_empty_tile
    from napari_deepliif.engine.tiling import TileGrid

    grid = TileGrid(image.shape[0], image.shape[1], TILE)
    if len(grid.tiles()) != args.tiles:
        raise AssertionError(f"{image.shape[1]} x {image.shape[0]} has {len(grid.tiles())} tiles, not {args.tiles}")
    empty = sum(is_empty_tile(grid.read(image, t)) for t in grid.tiles())
    print(f"model {model}; image {image.shape[1]} x {image.shape[0]} from {ROI.name}: {len(grid.tiles())} tiles of "
          f"{TILE}, {empty} empty; {args.repeat} rounds, each configuration in its own process", flush=True)
    results = measure_in_turns(names, ["--model", str(model), "--tiles", str(args.tiles)], args.repeat)
    if results is None:
        return 1
    report_tiles(results, args.tiles, fullsize=model == FULLSIZE_MODEL)
    return 0


if __name__ == "__main__":
    sys.exit(main())
