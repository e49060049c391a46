"""Points of a slide-sized heat map: window by window (what ``batch`` does) against one pass.

Two class heat maps of nucleus-like Gaussian peaks (one per ~20 x 20 px, sigma 3 px, random
class and height) are written as uint8 to a Zarr array; then the candidates are found in
2048 px windows with a 1 px halo (``cells.detections.find_candidates_by_window``, reading the
array) and, for comparison, in one pass over the whole map in memory (``find_candidates``);
each is followed by the one selection (0.3, 12 px). Prints seconds, peak traced memory (MiB,
Python allocations incl. numpy), candidates and points of each, and whether they are equal.

    PYTHONPATH=src python benchmarks/bench_slide_points.py [--size 4096] [--core 2048]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import tracemalloc

import numpy as np

from napari_deepliif.cells.detections import (
    find_candidates,
    find_candidates_by_window,
    select_points,
)
from napari_deepliif.slides.windows import windows

NAMES, POSITIVE = ("positive", "negative"), (0,)


def heat_maps(size: int, rng: np.random.Generator) -> np.ndarray:
    """(2, size, size) uint8 heat maps with a Gaussian peak per ~20 x 20 px."""
    maps = np.zeros((2, size, size), np.float32)
    ys, xs = np.mgrid[-9:10, -9:10]
    bump = np.exp(-(ys**2 + xs**2) / (2 * 3.0**2))
    for cy in range(15, size - 15, 20):
        for cx in range(15, size - 15, 20):
            y, x = cy + rng.integers(-5, 6), cx + rng.integers(-5, 6)
            c = int(rng.random() < 0.3)
            patch = maps[c, y - 9 : y + 10, x - 9 : x + 10]
            np.maximum(patch, bump * rng.uniform(0.2, 1.0), out=patch)
    return np.round(maps * 255).astype(np.uint8)


def measured(fn):
    tracemalloc.start()
    start = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return result, seconds, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--core", type=int, default=2048)
    args = parser.parse_args()
    import zarr

    maps = heat_maps(args.size, np.random.default_rng(0))
    with tempfile.TemporaryDirectory() as folder:
        stored = zarr.open_array(f"{folder}/heat.zarr", mode="w", shape=maps.shape, chunks=(2, 512, 512),
                                 dtype=np.uint8)
        stored[:] = maps
        shape = (args.size, args.size)

        def by_window():
            def read(w):
                return np.asarray(stored[:, w[0] : w[1], w[2] : w[3]]).astype(np.float32) / 255

            found = find_candidates_by_window(read, windows(shape, args.core, 1), shape, NAMES, POSITIVE)
            return select_points(found, threshold=0.3, min_distance=12.0)

        def one_pass():
            found = find_candidates(np.asarray(stored[:]).astype(np.float32) / 255, NAMES, POSITIVE)
            return select_points(found, threshold=0.3, min_distance=12.0)

        windowed, t_window, m_window = measured(by_window)
        whole, t_whole, m_whole = measured(one_pass)
    same = np.array_equal(windowed.xy, whole.xy) and np.array_equal(windowed.cls, whole.cls)
    print(f"heat maps 2 x {args.size} x {args.size}, windows {args.core} px + 1 px halo")
    print(f"{'pass':>10} {'seconds':>8} {'peak MiB':>9} {'candidates':>11} {'points':>7}")
    for name, result, seconds, peak in (("windowed", windowed, t_window, m_window), ("one pass", whole, t_whole, m_whole)):
        print(f"{name:>10} {seconds:>8.2f} {peak:>9.0f} {len(result.candidates):>11} {len(result.index):>7}")
    print(f"time windowed / one pass: {t_window / t_whole:.2f}; memory: {m_window / m_whole:.2f}; same points: {same}")


if __name__ == "__main__":
    main()
