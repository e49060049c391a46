"""Whole-slide batch throughput and memory, with 1 and 2 dask workers.

Slide: a SIZE x SIZE (default 20000) pyramidal OME-TIFF at 0.25 µm/px (40x), tiles 512,
built once into ``benchmarks/_work`` from the real samples (``shared/data/ihc/*.png`` mirrored
into 2048 px blocks) with a quarter of the blocks left as glass, as slides have. The batch is
``--slides`` copies of it (symbolic links), so that 2 workers have 2 slides to share.

For each worker count (``--workers 1 2``) a fresh output directory is scored with
:func:`napari_deepliif.slides.batch.run_batch` (LocalCluster, 1 thread per worker). Printed per run:
wall seconds, tiles run and skipped (glass), tiles/s, seconds per megapixel of tissue (the
tissue mask's area at the scored level), and peak RSS of the driver plus all worker processes
(psutil, sampled every 0.2 s) and of the largest single process.

``--region X,Y,W,H`` (pixels of the scored level) limits the area so a run takes minutes; the
fixture model (``--model fixture``, default) is small, ``--model fullsize`` builds the
full-size random-weight model (``fullsize_model.py``; as fast as the released weights).
Usage::

    PYTHONPATH=src python benchmarks/bench_slides.py [--size 20000] [--model fixture|fullsize|DIR]
        [--resolution 40x] [--region 0,0,4096,4096] [--workers 1 2] [--slides 2] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import threading
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
WORK = HERE / "_work"
SHARED = HERE.parent.parent / "shared"
BLOCK = 2048


def build_slide(path: Path, size: int) -> Path:
    """The benchmark slide (see module docstring), written block row by block row."""
    import tifffile
    from PIL import Image

    from napari_deepliif.engine.tiling import mirror_index

    if path.is_file():
        return path
    samples = []
    for png in sorted((SHARED / "data" / "ihc").glob("*.png")):
        with Image.open(png) as im:
            rgb = np.asarray(im.convert("RGB"))
        samples.append(rgb[mirror_index(rgb.shape[0], BLOCK)][:, mirror_index(rgb.shape[1], BLOCK)])
    rng = np.random.default_rng(0)
    n = -(-size // BLOCK)
    glass = rng.random((n, n)) < 0.25
    choice = rng.integers(0, len(samples), (n, n))

    def block_row(r: int, step: int) -> np.ndarray:
        row = np.concatenate([np.full((BLOCK, BLOCK, 3), 240, np.uint8) if glass[r, c] else samples[choice[r, c]]
                              for c in range(n)], axis=1)[:, :size]
        return row[::step, ::step]

    def bands(step: int):
        """The level as bands of 512 rows (padded at the bottom and right)."""
        side = -(-size // step)
        if BLOCK // step < 512:  # small level: built whole
            rows = [np.concatenate([block_row(r, step) for r in range(n)], axis=0)[:side]]
        else:
            rows = (block_row(r, step)[: max(0, side - r * BLOCK // step)] for r in range(n))
        for row in rows:
            for y in range(0, row.shape[0], 512):
                band = row[y : y + 512]
                yield np.pad(band, ((0, 512 - band.shape[0]), (0, -band.shape[1] % 512), (0, 0)))

    def tiles(step: int):
        for band in bands(step):
            for x in range(0, band.shape[1], 512):
                yield np.ascontiguousarray(band[:, x : x + 512])

    path.parent.mkdir(parents=True, exist_ok=True)
    steps = [1, 4, 16]
    with tifffile.TiffWriter(path, bigtiff=True, ome=True) as tif:
        for i, step in enumerate(steps):
            side = -(-size // step)
            extra = {"subifds": len(steps) - 1, "metadata": {"axes": "YXS", "PhysicalSizeX": 0.25,
                                                             "PhysicalSizeY": 0.25}} if i == 0 else {"subfiletype": 1}
            tif.write(tiles(step), shape=(side, side, 3), dtype=np.uint8, tile=(512, 512), photometric="rgb", **extra)
    return path


class PeakRSS:
    """Peak RSS of this process and all its children (sum) and of the largest one, sampled."""

    def __init__(self, interval: float = 0.2):
        import psutil

        self.psutil, self.interval = psutil, interval
        self.total = self.single = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = self.psutil.Process()
        while not self._stop.is_set():
            rss = []
            for proc in [me, *me.children(recursive=True)]:
                try:
                    rss.append(proc.memory_info().rss)
                except self.psutil.Error:  # a process ended between listing and reading
                    continue
            self.total, self.single = max(self.total, sum(rss)), max(self.single, max(rss))
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def tissue_megapixels(store: Path, settings: dict) -> float:
    import zarr

    root = zarr.open_group(str(store), mode="r")
    if "tissue_mask" not in root:
        return float(np.prod(root["Seg"]["0"].shape[1:])) / 1e6
    mask = root["tissue_mask"]
    px = float(mask.attrs["downsample"]) / float(settings["downsample"])
    fraction_area = float(np.asarray(mask[:]).sum()) * px * px
    region = settings.get("region")
    if region:  # the region's share of the tissue, by the mask at its place
        m = np.asarray(mask[:]).astype(bool)
        y0, x0 = int(region[1] / px), int(region[0] / px)
        sub = m[y0 : y0 + int(np.ceil(region[3] / px)), x0 : x0 + int(np.ceil(region[2] / px))]
        fraction_area = min(float(sub.sum()) * px * px, float(region[2] * region[3]))
    return fraction_area / 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=20000)
    parser.add_argument("--model", default="fixture", help="fixture, fullsize or a model directory")
    parser.add_argument("--engine", default="deepliif", choices=("deepliif", "stain"))
    parser.add_argument("--resolution", default="40x")
    parser.add_argument("--region", default=None, help="X,Y,W,H in pixels of the scored level")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--slides", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--chunk-size", type=int, default=2048)
    args = parser.parse_args()

    from napari_deepliif.slides.batch import BatchOptions, run_batch

    model = {"fixture": str(SHARED / "fixtures" / "models" / "deepliif-fit-ngf8"),
             "fullsize": str(WORK / "random-ngf64")}.get(args.model, args.model)
    if args.model == "fullsize" and not (WORK / "random-ngf64").is_dir():
        sys.path.insert(0, str(HERE))
        from fullsize_model import build

        build(WORK / "random-ngf64")
    slide = build_slide(WORK / f"bench-slide-{args.size}.ome.tif", args.size)
    links = WORK / "bench-slides"
    shutil.rmtree(links, ignore_errors=True)
    links.mkdir()
    for i in range(args.slides):
        (links / f"slide{i}.ome.tif").symlink_to(slide)
    region = tuple(int(v) for v in args.region.split(",")) if args.region else None
    options = BatchOptions(engine=args.engine, model=model if args.engine == "deepliif" else None, device=args.device,
                           batch_size=args.batch_size, resolution=args.resolution, chunk_size=args.chunk_size,
                           region=region)
    results = []
    for workers in args.workers:
        out = WORK / f"bench-out-{workers}"
        shutil.rmtree(out, ignore_errors=True)
        started = time.perf_counter()
        with PeakRSS() as rss:
            rows = run_batch([links], out, options, workers=workers)
        wall = time.perf_counter() - started
        tiles = sum(int(r["tiles_run"] or 0) for r in rows)
        skipped = sum(int(r["tiles_skipped"] or 0) for r in rows)
        settings = json.loads((out / "slide0" / "result.ome.zarr" / "deepliif.json").read_text())["settings"]
        tissue = tissue_megapixels(out / "slide0" / "result.ome.zarr", settings) * len(rows)
        result = {"workers": workers, "slides": len(rows), "failed": sum(r["status"] != "done" for r in rows),
                  "wall_s": round(wall, 1), "tiles_run": tiles, "tiles_skipped": skipped,
                  "tiles_per_s": round(tiles / wall, 3), "s_per_tissue_mp": round(wall / max(tissue, 1e-9), 2),
                  "tissue_mp": round(tissue, 2), "peak_rss_total_mb": rss.total // 2**20,
                  "peak_rss_largest_mb": rss.single // 2**20}
        results.append(result)
        print(json.dumps(result), flush=True)
    print(json.dumps({"model": args.model, "resolution": args.resolution, "size": args.size, "region": region,
                      "device": args.device, "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
