"""Postprocessing speed: a first full postprocess and re-scores, against a straightforward baseline.

A real DeepLIIF Seg map and Marker (``shared/data/deepliif-2021-outputs/22_2_*``, 512 x 512)
are tiled to N x N. Timed: the first full :func:`postprocess` (fresh, no cache), re-scores after
a size, marker and seg threshold change, and on a much larger map a re-score after a size change.
The baseline recomputes everything per call the obvious way (ndimage hole filling,
skimage.measure.label + regionprops, a per-cell loop); its score is checked equal to ours.
Figures are medians (and minima) in milliseconds. Usage::

    PYTHONPATH=src python benchmarks/bench_postprocess.py [--size 3000] [--large 20000] [--repeat 7]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Iterator
from itertools import count
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage as ndi
from skimage.measure import label, regionprops

from napari_deepliif.cells.postprocess import postprocess
from napari_deepliif.cells.scoring import counts, default_size_threshold

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "deepliif-2021-outputs"
#: Wall time of one reference (deepliif 1.2.7) recompute at 3000 x 3000 on these machines.
REFERENCE_RECOMPUTE_S = 0.6


def tiled(name: str, size: int) -> np.ndarray:
    """``22_2_<name>.png`` tiled to size x size x 3 uint8."""
    with Image.open(DATA / f"22_2_{name}.png") as im:
        tile = np.asarray(im.convert("RGB"))
    reps = (size // tile.shape[0] + 1, size // tile.shape[1] + 1, 1)
    return np.ascontiguousarray(np.tile(tile, reps)[:size, :size])


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, float, object]:
    """(median ms, min ms, last result) of ``repeat`` calls."""
    times, out = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), min(times), out


def baseline(seg: np.ndarray, marker: np.ndarray, resolution: str, seg_thresh: int = 120,
             size_thresh: int | str = "default", marker_thresh: int | None = None) -> dict:
    """Faithful straightforward scoring, everything recomputed per call."""
    red, green, blue = (seg[..., i].astype(np.int16) for i in range(3))
    cell = (red + blue > seg_thresh) & (green <= 80)
    positive_px, negative_px = cell & (red >= blue), cell & (red < blue)
    regions = regionprops(label(ndi.binary_fill_holes(cell), connectivity=2),
                          intensity_image=marker.max(axis=-1))
    sizes, positive, marker_value = [], [], []
    for region in regions:
        if region.area > 4:
            rows, cols = region.coords.T
            sizes.append(int(region.area))
            positive.append(positive_px[rows, cols].sum() >= negative_px[rows, cols].sum())
            marker_value.append(region.intensity_max)
    sizes = np.array(sizes)
    if size_thresh == "default":
        size_thresh = default_size_threshold(sizes, resolution)
    positive = np.array(positive)
    if marker_thresh is not None:
        positive |= np.array(marker_value) > marker_thresh
    return counts(sizes > size_thresh, positive)


def cycle(values: Iterator[int], fn: Callable[[int], object]) -> Callable[[], object]:
    """A call of ``fn`` with the next value each time (so no call hits a cache of the last)."""
    return lambda: fn(next(values))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=3000, help="edge of the main map (px)")
    parser.add_argument("--large", type=int, default=20000, help="edge of the large map (px); 0 skips it")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    n, rep = args.size, args.repeat

    seg, marker = tiled("Seg", n), tiled("Marker", n)
    postprocess(seg[:512, :512], marker[:512, :512])  # warm imports and caches of numpy/scipy
    first, first_min, result = timed(lambda: postprocess(seg, marker), rep)
    print(f"{n} x {n} Seg map + Marker: {len(result.table)} cells, scoring {result.scoring}")
    size, size_min, _ = timed(cycle(count(30), lambda v: result.rescore(size_thresh=v)), 50)
    mark, mark_min, _ = timed(cycle(count(60), lambda v: result.rescore(marker_thresh=v)), 50)
    seg_t, seg_min, _ = timed(cycle(count(90, 7), lambda v: result.rescore(seg_thresh=v)), rep)
    default_marker, _, _ = timed(lambda: postprocess(seg, marker).rescore(marker_thresh="default"), 1)

    checks = {(120, "default", None): result.scoring, (150, 40, 90): result.rescore(
        seg_thresh=150, size_thresh=40, marker_thresh=90).scoring}
    base_times = []
    for (s, z, m), ours in checks.items():
        b_med, _, b_score = timed(lambda: baseline(seg, marker, "40x", s, z, m), 2)
        assert b_score == {k: ours[k] for k in b_score}, (b_score, ours)
        base_times.append(b_med)
    base = statistics.median(base_times)

    print(f"\n{'operation':<44}{'median ms':>10}{'min ms':>9}{'target ms':>11}{'baseline/ours':>15}")
    rows = [
        ("first full postprocess", first, first_min, 300),
        ("re-score: size threshold changed", size, size_min, 5),
        ("re-score: marker threshold changed", mark, mark_min, 5),
        ("re-score: seg threshold changed", seg_t, seg_min, 100),
    ]
    for name, med, low, target in rows:
        print(f"{name:<44}{med:>10.3f}{low:>9.3f}{target:>11}{base / med:>15.1f}")
    print(f"{'baseline: any change (full recompute)':<44}{base:>10.1f}")
    print(f"first postprocess + marker_thresh='default' (one-off percentile): {default_marker:.1f} ms")
    print(f"reference recompute ~{REFERENCE_RECOMPUTE_S * 1000:.0f} ms: ratio to ours "
          f"{REFERENCE_RECOMPUTE_S * 1000 / size:.0f}x (size/marker), "
          f"{REFERENCE_RECOMPUTE_S * 1000 / seg_t:.1f}x (seg), {REFERENCE_RECOMPUTE_S * 1000 / first:.1f}x (first)")

    if args.large:
        del seg, marker, result
        big_seg, big_marker = tiled("Seg", args.large), tiled("Marker", args.large)
        big_first, _, big = timed(lambda: postprocess(big_seg, big_marker), 1)
        big_size, big_size_min, _ = timed(cycle(count(30), lambda v: big.rescore(size_thresh=v)), 20)
        print(f"\n{args.large} x {args.large}: {len(big.table)} cells; first full postprocess"
              f" {big_first / 1000:.1f} s; re-score after a size change {big_size:.2f} ms median"
              f" ({big_size_min:.2f} min; target 100 ms)")


if __name__ == "__main__":
    main()
