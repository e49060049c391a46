"""The ``napari-deepliif`` command: a thin shell over the engine API.

Every sub-command turns its arguments into engine calls; errors are one line on stderr and
a non-zero exit status.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from . import __version__
from .constants import DEFAULT_RESOLUTION
from .devices import DEVICES, PRECISIONS
from .errors import Cancelled, DeepLIIFError
from .resolution import RESOLUTIONS

log = logging.getLogger("napari_deepliif")

EXIT_ERROR = 1
EXIT_INTERRUPTED = 130


def add_engine_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by every command that runs the model."""
    parser.add_argument("--model", default="deepliif-latest", help="model name from `napari-deepliif models list`, or a model directory (default: %(default)s)")
    parser.add_argument("--resolution", choices=RESOLUTIONS, default=None, help=f"magnification of the image (default: from --mpp, else {DEFAULT_RESOLUTION})")
    parser.add_argument("--mpp", type=float, default=None, help="pixel size in µm/px; the nearest of 0.25/0.5/1.0 picks the resolution")
    parser.add_argument("--device", choices=DEVICES, default="auto", help="where to run (default: %(default)s = cuda, else mps, else cpu)")
    parser.add_argument("--precision", choices=PRECISIONS, default="fp32", help="fp32 matches the reference; fast uses bf16/fp16 (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=None, help="tiles per batch (default: 1 on CPU, 8 on CUDA, 4 on MPS)")


def progress_bar(description: str):
    """A tqdm bar as an engine progress callback (tiles done, tiles in all)."""
    from tqdm import tqdm

    bar = tqdm(desc=description, unit="tile", disable=None, leave=False)

    def update(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()
        if done >= total:
            bar.close()

    return update


def cmd_infer(args: argparse.Namespace) -> int:
    """``infer``: write the modalities and Seg of each image as PNGs."""
    from .engine import Engine
    from .image_input import read_image
    from .image_output import write_images

    engine = Engine.load(args.model, device=args.device, precision=args.precision, batch_size=args.batch_size)
    for path in args.images:
        image = read_image(path)
        images = engine.infer(
            image, resolution=args.resolution, mpp=args.mpp, outputs=args.outputs, progress=progress_bar(Path(path).name)
        )
        written = write_images(Path(args.out) / Path(path).stem, images)
        print(f"{path}: wrote {', '.join(p.name for p in written.values())} to {Path(args.out) / Path(path).stem}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (sub-commands register themselves here)."""
    from . import cli_models

    parser = argparse.ArgumentParser(prog="napari-deepliif", description="Score IHC images with DeepLIIF on your own machine.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what the engine does")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("infer", help="write the inferred modalities and Seg map of images", description="Run DeepLIIF and write DIR/<image stem>/{Hema,DAPI,Lap2,Marker,Seg}.png (uint8 RGB, the input's size).")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="PNG, JPEG or TIFF RGB images")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")
    p.add_argument("--outputs", choices=("all", "score"), default="all", help="all modalities, or only what scoring needs (Marker, Seg)")
    add_engine_options(p)
    p.set_defaults(func=cmd_infer)

    cli_models.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``napari-deepliif`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except Cancelled as exc:
        print(f"napari-deepliif: cancelled: {exc}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        print("napari-deepliif: interrupted; no partial output was written", file=sys.stderr)
        return EXIT_INTERRUPTED
    except DeepLIIFError as exc:
        print(f"napari-deepliif: error: {exc}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
