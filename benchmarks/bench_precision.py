"""How far ``precision='fast'`` departs from the conformant ``'fp32'`` path; writes docs/precision.md.

For every reference case in ``shared/fixtures/inference/MODEL/INPUT_tTILE`` (both fixture
models, every fixture input and tile size) the engine runs the input at both precisions. Per
output image: max and mean absolute difference (grey levels, over all channels) and the
percentage of identical pixels (all three channels equal); and fp32 against the reference's
image (max difference, identical pixels in the worst channel). Per case: the cell counts
(``num_total``, ``num_pos``) that :func:`napari_deepliif.cells.postprocess.postprocess` gives for each
precision, beside the reference's. Then one 512 x 512 tile of ``ROI_1.png`` through the
full-size (ngf=64) random-weight model (pixels only; built once into ``benchmarks/_work``).
The report is written to ``docs/precision.md`` and printed. Usage::

    PYTHONPATH=src python benchmarks/bench_precision.py [--output docs/precision.md] [--skip-fullsize]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from bench_inference import ROI, SHARED, TILE, cpu_model, fullsize_model, read_roi
from PIL import Image

from napari_deepliif.cells.postprocess import postprocess
from napari_deepliif.cells.scoring import resolution_for_tile_size
from napari_deepliif.engine.devices import fast_dtype
from napari_deepliif.engine.engines import Engine

FIXTURES = SHARED / "fixtures"
RESOLUTION_BY_TILE = {512: "40x", 256: "20x", 128: "10x"}
#: The reference's file of each output in a fixture case.
REFERENCE_FILES = {"Hema": "mod1-Hema.png", "DAPI": "mod2-DAPI.png", "Lap2": "mod3-Lap2.png",
                   "Marker": "mod4-Marker.png", "Seg": "Seg.png"}
DEFAULT_OUTPUT = Path(__file__).resolve().parents[1] / "docs" / "precision.md"

INTRO = """\
# Precision: `fp32` and `fast`

`Engine.load(..., precision=...)` (CLI `--precision`) chooses the arithmetic of the networks:

- **`fp32`** (the default) is the conformant path: float32 throughout, matching the reference
  DeepLIIF outputs within the fixtures' tolerance (max abs difference <= 2 grey levels, >= 99.5%
  identical values per image and channel). Use it for results that must agree with DeepLIIF.
- **`fast`** runs the networks under `torch.autocast` in a reduced precision where the device
  has fast kernels for it: **bfloat16 on CPUs with native bf16 instructions** (AVX512-BF16 or
  AMX, as oneDNN reports them; e.g. AMD EPYC Zen 4, Intel Sapphire Rapids), **float16 on CUDA
  and Apple MPS**. Convolutions and activations then compute in that type (bf16 keeps 8
  significant bits: the final tanh output alone is rounded to about half a grey level near the
  ends of the range); norm statistics are accumulated in float32. On a device without such
  kernels `fast` falls back to fp32 (with a warning). Tiles keep their own norm statistics
  either way; only rounding changes.
- On CPUs without AMX, `fast` keeps in fp32 the stride-1 convolutions that fp32 runs through
  NNPACK's Winograd and FFT kernels (the ResNets' 3x3 residual convolutions, 88% of their
  work, and their 7x7 tail), and its norms write float32: there bf16 direct convolution is
  slower than fp32 Winograd as well as less accurate (one residual convolution of a 512 px
  tile: 45-85 ms in bf16 against 42-72 ms in NNPACK, the tail 61-65 against 37-42, in three
  runs of `python benchmarks/conv_kernels.py` on the benchmark machine). The other
  convolutions, the transposed ones and the UNets run in bf16, at about twice their fp32
  speed. With AMX (bf16 tile instructions), everything runs in bf16.

On the 2-core benchmark machine (Zen 4: AVX512-BF16, no AMX) `fast` took 4.52 and 4.60 s per
tile for all outputs against 4.75 and 6.05 s for fp32 in the same runs, and the previous
all-bf16 `fast` 5.51 and 5.99 s in runs alternating with them (`bench_inference.py --tiles 2
--repeat 2 --configs fast,all --skip-baseline`; see [benchmarks.md](benchmarks.md)): a modest
gain, for the departures below. Its time on this CPU is bounded by those fp32 Winograd
convolutions. Winograd with bf16 operands on 4x4 or 6x6 output tiles, the ones that cut the
work 4-5x, is 9-17 times less accurate than bf16 direct convolution
(`python benchmarks/winograd_bf16_error.py`), so `fast` does not use it. `fast` is meant for GPUs, whose fp16
kernels are usually much faster than their fp32 ones (not measured here: no GPU on these
machines).

On a CPU with AMX the picture turns. An Intel Xeon guest with 2 vCPUs (`amx_bf16` in
`/proc/cpuinfo`, torch 2.13.0+cpu), on 2026-12-08: `python benchmarks/conv_kernels.py
--repeat 3` ran a residual convolution of a 512 px tile in 8.2 ms in bf16 against 53.0 ms in
NNPACK and 56.0 ms in fp32 direct (the 7x7 tail 9.4 against 47.2 ms), which is why `fast`
runs everything in bf16 there; `bench_inference.py --tiles 2 --repeat 4` gave 1.79 s per tile
for `fast` against 6.14 s for fp32 (all outputs) and 10.22 s for the baseline in the same
runs. That all-bf16 path departs further from fp32: `bench_precision.py` on that machine gave
the fitted fixture's modality images a mean absolute difference of 0.084-0.208 grey levels
(0.003-0.063 in the tables below, where those convolutions stay fp32), at most 2 grey levels,
and cell counts within 2 cells and 1 positive cell of fp32; the full-size tile 1.07-1.26
(0.92-1.11 below).

The tables below are written by `benchmarks/bench_precision.py` and compare `fast` with `fp32`
on the same machine. They measure how far `fast` departs from `fp32`, not from DeepLIIF, and the
fixture models are small stand-ins (not DeepLIIF). *identical px* = pixels whose three channels
are all equal.
"""


def read_rgb(path: Path) -> np.ndarray:
    """An image file as H x W x 3 uint8."""
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def pixel_stats(a: np.ndarray, b: np.ndarray) -> tuple[int, float, float]:
    """(max abs difference, mean abs difference, % pixels with all channels equal)."""
    diff = np.abs(a.astype(np.int16) - b.astype(np.int16))
    return int(diff.max()), float(diff.mean()), float(100 * (diff.max(axis=-1) == 0).mean())


def worst_channel_identical(a: np.ndarray, b: np.ndarray) -> float:
    """% of pixels equal in the channel where the fewest are (the fixtures' tolerance is per channel)."""
    return float(100 * min((a[..., c] == b[..., c]).mean() for c in range(a.shape[-1])))


def cases() -> list[Path]:
    """Every ``inference/MODEL/INPUT_tTILE`` directory of the fixtures."""
    return sorted(p for p in (FIXTURES / "inference").glob("*/*_t*") if p.is_dir())


def both(model: Path, image: np.ndarray, resolution: str) -> tuple[dict, dict]:
    """All outputs of ``image`` at fp32 and at fast."""
    return tuple(
        Engine.load(model, device="cpu", precision=p).infer(image, resolution=resolution) for p in ("fp32", "fast")
    )


def counts(images: dict, tile: int) -> tuple[int, int]:
    """(num_total, num_pos) of the outputs postprocessed at default settings."""
    scoring = postprocess(images["Seg"], images["Marker"], resolution=resolution_for_tile_size(tile)).scoring
    return scoring["num_total"], scoring["num_pos"]


def fixture_tables() -> tuple[list[str], list[str]]:
    """Markdown rows of the pixel table and of the cell count table for the fixture cases."""
    pixels, cells = [], []
    for case in cases():
        stem, tile_text = case.name.rsplit("_t", 1)
        tile = int(tile_text)
        model = FIXTURES / "models" / case.parent.name
        exact, fast = both(model, read_rgb(FIXTURES / "inputs" / f"{stem}.png"), RESOLUTION_BY_TILE[tile])
        label = f"{case.parent.name} | {stem} | {tile}"
        for name in exact:
            worst, mean, same = pixel_stats(exact[name], fast[name])
            reference = read_rgb(case / REFERENCE_FILES[name])
            ref_worst = pixel_stats(exact[name], reference)[0]
            pixels.append(f"| {label} | {name} | {worst} | {mean:.3f} | {same:.2f} | "
                          f"{ref_worst} | {worst_channel_identical(exact[name], reference):.3f} |")
        reference = json.loads((case / "scoring.json").read_text())
        (t32, p32), (tf, pf) = counts(exact, tile), counts(fast, tile)
        cells.append(f"| {label} | {t32} / {p32} | {tf} / {pf} | {tf - t32:+d} / {pf - p32:+d} | "
                     f"{reference['num_total']} / {reference['num_pos']} |")
        print(f"  {case.parent.name}/{case.name} done", flush=True)
    return pixels, cells


def fullsize_rows() -> list[str]:
    """Markdown rows of the pixel table for one ROI_1 tile through the full-size random model."""
    exact, fast = both(fullsize_model(), np.ascontiguousarray(read_roi()[:TILE, :TILE]), "40x")
    rows = []
    for name in exact:
        worst, mean, same = pixel_stats(exact[name], fast[name])
        rows.append(f"| {name} | {worst} | {mean:.3f} | {same:.2f} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--skip-fullsize", action="store_true", help="leave out the full-size model tile")
    args = parser.parse_args()

    import torch

    dtype = fast_dtype("cpu")
    if dtype is None:
        print("warning: this CPU has no bf16 kernels, so 'fast' runs fp32 and every difference below is 0")
    pixels, cells = fixture_tables()
    parts = [
        INTRO,
        f"Measured on: {cpu_model()}, torch {torch.__version__}, device cpu, `fast` = {dtype or 'fp32 (fallback)'}.\n",
        "## Fixture models: pixels, fast against fp32 (and fp32 against the reference)\n",
        "The last two columns compare `fp32` with DeepLIIF 1.2.7's images from the fixtures: max abs",
        "diff, and identical pixels in the channel with the fewest (tolerance: <= 2 and >= 99.5%).\n",
        "| model | input | tile | output | max abs diff | mean abs diff | identical px % "
        "| fp32 vs reference: max abs diff | worst channel identical % |",
        "|---|---|---|---|---|---|---|---|---|",
        *pixels,
        "\n## Fixture models: cell counts after postprocessing (default settings)\n",
        "num_total / num_pos; the reference column is DeepLIIF 1.2.7's fp32 result from the fixtures.\n",
        "| model | input | tile | fp32 | fast | fast - fp32 | reference |",
        "|---|---|---|---|---|---|---|",
        *cells,
    ]
    if not args.skip_fullsize:
        parts += [
            f"\n## Full-size model (ngf=64, random weights), one {TILE} x {TILE} tile of {ROI.name}\n",
            "Random weights: the images are not meaningful, only the rounding is.\n",
            "| output | max abs diff | mean abs diff | identical px % |",
            "|---|---|---|---|",
            *fullsize_rows(),
        ]
    text = "\n".join(parts) + "\n"
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    print(text)
    print(f"written to {args.output}")


if __name__ == "__main__":
    main()
