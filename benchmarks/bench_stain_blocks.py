"""The stain engine on one large image: its blocks one at a time against several at once.

A mirror-tiled mosaic of the real ROI_1.png (``--size`` px square, 40x) is scored by
``stain_infer`` with its statistics given (computed once, untimed), and the two statistics
passes are timed alone; each with ``OMP_NUM_THREADS=1`` and then with ``--threads``
(default: what ``block_threads()`` picks here). Prints the best of ``--repeat`` runs, the
ratio, and whether the outputs are identical. Usage::

    PYTHONPATH=src python benchmarks/bench_stain_blocks.py [--size 2048] [--threads N] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np
from bench_front_ends import mosaic
from bench_postprocess import timed
from PIL import Image

from napari_deepliif.engine import stain


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    threads = args.threads or stain.block_threads()
    with tempfile.TemporaryDirectory() as tmp:
        with Image.open(mosaic(args.size, Path(tmp) / "mosaic.png")) as im:
            image = np.asarray(im.convert("RGB"))
    vectors = stain.stain_vectors(image)
    threshold = stain.stain_threshold(image, vectors=vectors)
    print(f"{args.size} x {args.size} mosaic of ROI_1.png at 40x, blocks of {stain.BLOCK_SIZE} px, "
          f"{os.cpu_count()} CPUs, best of {args.repeat}")
    figures = {}
    for count in (1, threads):
        os.environ["OMP_NUM_THREADS"] = str(count)
        _, stats_ms, _ = timed(lambda: stain.stain_threshold(image, vectors=stain.stain_vectors(image)), args.repeat)
        _, infer_ms, out = timed(lambda: stain.stain_infer(image, threshold=threshold, vectors=vectors), args.repeat)
        stats_s, infer_s = stats_ms / 1000, infer_ms / 1000
        figures[count] = (stats_s, infer_s, out)
        print(f"  {count} thread(s): statistics {stats_s:.2f} s, stain_infer {infer_s:.2f} s")
    one, many = figures[1], figures[threads]
    same = all(np.array_equal(one[2][name], many[2][name]) for name in stain.STAIN_OUTPUTS)
    print(f"{threads} threads / 1: statistics {many[0] / one[0]:.2f}, stain_infer {many[1] / one[1]:.2f}; "
          f"identical outputs: {same}")


if __name__ == "__main__":
    main()
