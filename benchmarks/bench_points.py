"""Speed of point matching (evaluate), of point selection (re-scoring a points model) and of
the check that a region's selection is settled in its window (the deciders of every point).

Points are laid out like nuclei at 40x: one per ~20 x 20 px cell of a square field, moved at
random; the "prediction" is the truth moved by up to 4 px in x and in y, with 10% of points
dropped and 10% added. Prints seconds per call (best of ``--repeat``) for each size, and the ratio to the
smallest size per point.

    PYTHONPATH=src python benchmarks/bench_points.py [--sizes 1000 10000 100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from napari_deepliif.cells.detections import (
    PointCandidates,
    deciders,
    select_points,
    suppress,
)
from napari_deepliif.cells.points import match_points


def field(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(truth, prediction) of about ``n`` points each."""
    side = int(np.ceil(np.sqrt(n)))
    grid = np.stack(np.meshgrid(np.arange(side), np.arange(side)), axis=-1).reshape(-1, 2)[:n] * 20.0
    truth = grid + rng.uniform(-5, 5, grid.shape)
    kept = truth[rng.random(n) > 0.1]
    moved = kept + rng.uniform(-4, 4, kept.shape)
    extra = rng.uniform(0, side * 20, (n // 10, 2))
    return truth, np.concatenate([moved, extra])


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    base = None
    print(f"{'points':>8} {'match 16 px (s)':>16} {'suppress 12 px (s)':>19} {'deciders 12 px (s)':>19} "
          f"{'per point vs smallest':>22}")
    for n in args.sizes:
        truth, predicted = field(n, rng)
        confidence = rng.random(len(predicted))
        t_match = best(lambda p=predicted, t=truth: match_points(p, t, 16.0), args.repeat)
        t_nms = best(lambda p=predicted, c=confidence: suppress(p, c, 12.0), args.repeat)
        candidates = PointCandidates(predicted, np.zeros(len(predicted), np.int64), confidence, ("nucleus",), (0,),
                                     0.0, (0, 0))
        selected = select_points(candidates, threshold=0.0, min_distance=12.0)
        everything = np.ones(len(predicted), bool)
        t_deciders = best(lambda s=selected, e=everything: deciders(s, e), args.repeat)
        per_point = (t_match + t_nms) / n
        base = base or per_point
        print(f"{n:>8} {t_match:>16.4f} {t_nms:>19.4f} {t_deciders:>19.4f} {per_point / base:>22.2f}")


if __name__ == "__main__":
    main()
