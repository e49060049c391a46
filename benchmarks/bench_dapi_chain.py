"""Cost of a ``classmap`` model reading DeepLIIF's DAPI (``input.source: deepliif-dapi``) on CPU.

Models: the fitted DeepLIIF fixture (``shared/fixtures/models/deepliif-fit-ngf8``) or the
folder given by ``--deepliif`` (e.g. a full-size one from ``benchmarks/fullsize_model.py``),
and the published class-map architecture with random weights (as ``bench_classmap.py``),
chained by a card written into a temporary folder and loaded through ``load_engine``.
Input: ``22_2_IHC.png`` tiled to ``--size`` px square, at ``--resolution``. Printed: seconds
of the DeepLIIF DAPI alone (``Engine.infer``), of the class-map network alone on that DAPI,
and of the chain (``score_region`` over the whole image at ``--chunk-size``, best of
``--repeat``), their ratio, and the DeepLIIF tiles the chain ran against the tiles of
DeepLIIF's grid (tiles under two chunks run once for each). Usage::

    PYTHONPATH=src python benchmarks/bench_dapi_chain.py [--size 1024] [--resolution 20x] [--chunk-size 1024]
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from dataclasses import fields, replace
from pathlib import Path

import torch
from bench_classmap import random_classmap_folder
from bench_postprocess import tiled

SHARED = Path(__file__).resolve().parents[2] / "shared"


def best(fn, repeat: int) -> tuple[float, object]:
    """(best seconds, last result) of ``repeat`` calls."""
    times, out = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--resolution", default="20x")
    parser.add_argument("--chunk-size", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--deepliif", type=Path, default=SHARED / "fixtures" / "models" / "deepliif-fit-ngf8")
    args = parser.parse_args()

    from napari_deepliif.engine.classmap import ClassMapEngine
    from napari_deepliif.engine.dapi_chain import DAPI, DapiChainEngine
    from napari_deepliif.engine.engines import Engine, load_engine
    from napari_deepliif.engine.tiling import TileGrid
    from napari_deepliif.regions.score import score_region
    from napari_deepliif.resolution import tile_size_for

    class CountingChain(DapiChainEngine):
        """The chain, counting the DeepLIIF tiles it runs."""

        runs = 0

        def dapi(self, source, resolution, cancel=None):
            image = super().dapi(source, resolution, cancel)
            runner = image.runner

            def counted(tiles):
                CountingChain.runs += len(tiles)
                return runner(tiles)

            image.runner = counted
            return image

    image = tiled("IHC", args.size)
    with tempfile.TemporaryDirectory() as tmp:
        folder = random_classmap_folder(Path(tmp) / "chain", ["background", "negative", "positive"],
                                        input={"channel": "grey", "normalise": "per-tile-zscore",
                                               "source": "deepliif-dapi"},
                                        deepliif_model=str(args.deepliif.resolve()))
        loaded = load_engine("auto", folder, device="cpu")
        chain = CountingChain(**{f.name: getattr(loaded, f.name) for f in fields(loaded)})
        deepliif = Engine.load(args.deepliif, device="cpu")
        alone, out = best(lambda: deepliif.infer(image, resolution=args.resolution, outputs=[DAPI]), args.repeat)
        classmap = ClassMapEngine(card=replace(loaded.card, input_source="image"), folder=folder, device="cpu")
        net, _ = best(lambda: classmap.infer(out[DAPI], resolution=args.resolution), args.repeat)
        CountingChain.runs = 0
        whole, _ = best(lambda: score_region(chain, image, resolution=args.resolution, chunk_size=args.chunk_size),
                        args.repeat)
    grid = len(TileGrid(args.size, args.size, tile_size_for(args.resolution)).tiles())
    runs = CountingChain.runs // args.repeat
    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; DeepLIIF model {args.deepliif.name}")
    print(f"{args.size} x {args.size} IHC at {args.resolution}, chunks of {args.chunk_size} px")
    print(f"DeepLIIF DAPI alone: {alone:.2f} s; class map alone on it: {net:.2f} s; chain (score_region): "
          f"{whole:.2f} s, {whole / (alone + net):.2f}x the two alone")
    print(f"DeepLIIF tiles run by the chain: {runs} (its grid has {grid}: {runs / grid:.2f}x)")


if __name__ == "__main__":
    main()
