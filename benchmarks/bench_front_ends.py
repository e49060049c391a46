"""End-to-end time of ``score`` and ``batch`` on one image, this code against another checkout.

Each command runs as a user runs it (``python -m napari_deepliif.cli ...`` in a fresh process,
imports and model loading included) on a mosaic of a real IHC image (``--size`` px square,
written once as a PNG), with the stain engine and with the small fitted fixture model. With
``--against DIR`` (a checkout of another version, e.g. ``git worktree add /tmp/before REV``)
the two versions take turns, round after round, which is the only fair comparison on a
machine whose speed drifts; the ratio (this / other) of each round is printed, then the
median seconds and the median ratio. A first, untimed round compiles numba's caches for each
checkout (first run only).

Run::

    python benchmarks/bench_front_ends.py [--size 2048] [--rounds 3] [--against /tmp/before]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
FIXTURE = SHARED / "fixtures" / "models" / "deepliif-fit-ngf8"


def mosaic(size: int, path: Path) -> Path:
    """A ``size`` x ``size`` mirror-tiled mosaic of ROI_1.png (seams fall in tissue)."""
    with Image.open(SHARED / "data" / "ihc" / "ROI_1.png") as im:
        tile = np.asarray(im.convert("RGB"))
    reps = size // min(tile.shape[:2]) + 2
    row = np.concatenate([tile, tile[:, ::-1]] * reps, axis=1)
    image = np.concatenate([row, row[::-1]] * reps, axis=0)[:size, :size]
    Image.fromarray(np.ascontiguousarray(image)).save(path)
    return path


def commands(image: Path, out: Path) -> dict[str, list[str]]:
    stain = ["--engine", "stain"]
    fixture = ["--engine", "deepliif", "--model", str(FIXTURE), "--device", "cpu"]
    common = ["--resolution", "40x"]
    return {
        "score stain": ["score", str(image), *stain, *common, "--out", str(out / "s")],
        "score fixture": ["score", str(image), *fixture, *common, "--outputs", "score", "--out", str(out / "f")],
        "batch stain": ["batch", str(image), *stain, *common, "--overwrite", "--out", str(out / "bs")],
        "batch fixture": ["batch", str(image), *fixture, *common, "--overwrite", "--out", str(out / "bf")],
    }


def run(src: Path, args: list[str]) -> float:
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_WAIT_POLICY": "PASSIVE"}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "napari_deepliif.cli", *args], env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args[:2])} failed with {src}:\n{done.stderr[-2000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2048, help="mosaic edge in pixels (default 2048)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; in each every command runs once per version")
    parser.add_argument("--against", type=Path, help="a checkout of another version to time in turns")
    args = parser.parse_args()
    versions = {"this": REPO / "src"}
    if args.against:
        versions["other"] = args.against.resolve() / "src"
    with tempfile.TemporaryDirectory() as tmp:
        image = mosaic(args.size, Path(tmp) / "mosaic.png")
        times: dict[tuple[str, str], list[float]] = {}
        for name in commands(image, Path(tmp)):  # warm-up: numba compiles into each checkout's cache
            for version, src in versions.items():
                run(src, commands(image, Path(tmp) / version)[name])
        for round_ in range(1, args.rounds + 1):
            for name in commands(image, Path(tmp)):
                line = []
                for version, src in versions.items():
                    out = Path(tmp) / version
                    seconds = run(src, commands(image, out)[name])
                    times.setdefault((name, version), []).append(seconds)
                    line.append(f"{version} {seconds:6.2f} s")
                ratio = (f"  ratio {times[(name, 'this')][-1] / times[(name, 'other')][-1]:.3f}"
                         if "other" in versions else "")
                print(f"round {round_}  {name:14s} " + "  ".join(line) + ratio, flush=True)
    print(f"\n{args.size} x {args.size} mosaic, {args.rounds} rounds, medians:")
    for name in commands(image, Path(".")):
        this = statistics.median(times[(name, "this")])
        text = f"  {name:14s} this {this:6.2f} s"
        if "other" in versions:
            ratios = [a / b for a, b in zip(times[(name, "this")], times[(name, "other")])]
            text += f"  other {statistics.median(times[(name, 'other')]):6.2f} s  ratio {statistics.median(ratios):.3f}"
        print(text)


if __name__ == "__main__":
    main()
