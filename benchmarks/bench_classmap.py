"""Speed of the ``classmap`` type on CPU: the U-Net/ResNet-34 per tile, and a whole image scored.

Model: the published architecture (segmentation-models-pytorch's ``Unet("resnet34")`` layout,
one input channel, 4 classes) with random weights, which runs exactly as fast as trained
weights; written as a state dict with a card into a temporary folder and loaded through
``load_engine`` as a user's folder is. Input: the mpIF DAPI panel of
``shared/data/paired/Lung1.png``, mirror-tiled to ``--size`` px square. Printed: seconds per
256 px tile (one tile per batch, best and median of ``--repeat`` runs after a warm-up), the
tiles of the image's grid at the card's overlap (128 px: 50%, the published method's) and
without overlap, and the seconds of ``score_region`` over the whole image (best and median
of ``--repeat``) and per tile of its grid. Usage::

    PYTHONPATH=src python benchmarks/bench_classmap.py [--size 1024] [--repeat 3]
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
import yaml
from PIL import Image

SHARED = Path(__file__).resolve().parents[2] / "shared"


def dapi_image(size: int) -> np.ndarray:
    lung = np.asarray(Image.open(SHARED / "data" / "paired" / "Lung1.png").convert("RGB"))
    panel = lung[:, 1024:1536]
    row = np.concatenate([panel, panel[:, ::-1]], axis=1)
    block = np.concatenate([row, row[::-1]], axis=0)
    reps = -(-size // block.shape[0])
    return np.ascontiguousarray(np.tile(block, (reps, reps, 1))[:size, :size])


def random_classmap_folder(folder: Path, classes: list[str], **card) -> Path:
    """``folder`` holding the published class-map architecture with seeded random weights (one
    input channel, a class per name) and its card; ``card`` adds or replaces card fields."""
    from napari_deepliif.engine.unet_resnet import UnetResNet34

    folder.mkdir()
    torch.manual_seed(0)
    torch.save(UnetResNet34(1, len(classes)).state_dict(), folder / "model.pt")
    fields = {"type": "classmap", "weights": "model.pt", "format": "state_dict", "architecture": "unet-resnet34",
              "input": {"channel": "grey", "normalise": "per-tile-zscore"}, "tile_size": 256, "overlap": 128,
              "pixel_size": 0.5, "classes": classes, **card}
    (folder / "model.yaml").write_text(yaml.safe_dump(fields))
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from napari_deepliif.engine.classmap import ClassMapRunner
    from napari_deepliif.engine.engines import load_engine
    from napari_deepliif.regions.score import score_region

    image = dapi_image(args.size)
    with tempfile.TemporaryDirectory() as tmp:
        folder = random_classmap_folder(Path(tmp) / "unet-resnet34-random", ["background", "CD3", "CD8", "CD20"])
        engine = load_engine("auto", folder, device="cpu")
        runner = ClassMapRunner(engine)
        tile = [image[:256, :256]]
        runner(tile)  # warm-up
        times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            runner(tile)
            times.append(time.perf_counter() - start)
        per_tile = min(times)
        tiles = len(engine.grid(image.shape[:2]).tiles())
        plain = len(type(engine.grid(image.shape[:2]))(args.size, args.size, 256, 0).tiles())
        runs = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            result = score_region(engine, image, resolution="40x")
            runs.append(time.perf_counter() - start)
    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    print(f"U-Net/ResNet-34, one 256 px tile: best {per_tile:.3f} s, median {statistics.median(times):.3f} s")
    print(f"{args.size} x {args.size} image: {tiles} tiles at 128 px overlap ({plain} without overlap, "
          f"ratio {tiles / plain:.2f})")
    print(f"score_region, whole image: best {min(runs):.2f} s, median {statistics.median(runs):.2f} s "
          f"({min(runs) / tiles:.3f} s per tile), {result.scoring['num_total']} cells (random weights)")


if __name__ == "__main__":
    main()
