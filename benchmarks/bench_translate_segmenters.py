"""Cost of the ``translate`` type's segmenters on CPU: ``stain`` against ``cellpose``.

Model: the translate test fixture (CycleGAN ``resnet_9blocks`` generator at ``ngf=8``,
random weights) with each segmenter; the ``cellpose`` one with the Cellpose test file
(Cellpose's own ``CPnet``, the size of its ``cyto3``/``nuclei`` files, random weights, which
run as fast as trained ones up to the mask step), given a 30 px diameter (its ``diam_mean``:
no rescaling). Input: the real 512 x 512 Ki67 tile ``shared/fixtures/inputs/ihc_22_2.png``
mirror-tiled to ``--size`` px square, scored at 40x (512 px segmenter tiles). Printed: seconds
of ``score_region`` over the whole image per segmenter (best and median of ``--repeat`` after
a warm-up), per 512 px tile of the segmenter grid, and the ratio to ``stain``. Needs the
``cellpose`` extra. Usage::

    PYTHONPATH=src:tests python benchmarks/bench_translate_segmenters.py [--size 1024] [--repeat 3]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

SHARED = Path(__file__).resolve().parents[2] / "shared"


def ihc_image(size: int) -> np.ndarray:
    tile = np.asarray(Image.open(SHARED / "fixtures" / "inputs" / "ihc_22_2.png").convert("RGB"))
    row = np.concatenate([tile, tile[:, ::-1]], axis=1)
    block = np.concatenate([row, row[::-1]], axis=0)
    reps = -(-size // block.shape[0])
    return np.ascontiguousarray(np.tile(block, (reps, reps, 1))[:size, :size])


def timed(fn, repeat: int) -> tuple[float, float]:
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


def main() -> None:
    import yaml
    from cellpose_fixture import build as build_cellpose
    from translate_fixture import build as build_translate

    from napari_deepliif.engine.engines import load_engine
    from napari_deepliif.engine.tiling import TileGrid
    from napari_deepliif.regions.score import score_region

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    image = ihc_image(args.size)
    tiles = len(TileGrid(args.size, args.size, 512).tiles())
    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; {args.size} x {args.size} at 40x, {tiles} segmenter tiles")
    with tempfile.TemporaryDirectory() as tmp:
        stain = Path(tmp) / "stain"
        build_translate(stain)
        cellpose = Path(tmp) / "cellpose"
        build_cellpose(cellpose, stain)
        card = yaml.safe_load((cellpose / "model.yaml").read_text())
        card["nucleus_diameter_um"] = 30 * 0.25
        (cellpose / "model.yaml").write_text(yaml.safe_dump(card))
        base = None
        print(f"{'segmenter':>10} {'best (s)':>9} {'median (s)':>11} {'per tile (s)':>13} {'vs stain':>9}")
        for name, folder in (("stain", stain), ("cellpose", cellpose)):
            engine = load_engine("auto", folder, device="cpu")
            best, median = timed(lambda e=engine: score_region(e, image, resolution="40x"), args.repeat)
            base = base or best
            print(f"{name:>10} {best:>9.2f} {median:>11.2f} {best / tiles:>13.2f} {best / base:>9.2f}")


if __name__ == "__main__":
    main()
