"""The ``napari-deepliif`` command: a thin shell over the engine API.

Every sub-command turns its arguments into engine calls; errors are one line on stderr and
a non-zero exit status.
"""

from __future__ import annotations

import argparse
import logging
import os
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


def add_resolution_options(parser: argparse.ArgumentParser) -> None:
    """--resolution and --mpp."""
    parser.add_argument("--resolution", choices=RESOLUTIONS, default=None, help=f"magnification of the image (default: from --mpp, else {DEFAULT_RESOLUTION})")
    parser.add_argument("--mpp", type=float, default=None, help="pixel size in µm/px; the nearest of 0.25/0.5/1.0 picks the resolution")


def add_engine_options(parser: argparse.ArgumentParser, model_default: str | None = "deepliif-latest") -> None:
    """Options shared by every command that runs the model."""
    parser.add_argument("--model", default=model_default, help="model name from `napari-deepliif models list`, or a model directory (default: %(default)s)")
    add_resolution_options(parser)
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


def threshold(text: str) -> int | str:
    """A threshold option: a whole number or ``default`` (the reference's default rule)."""
    if text == "default":
        return text
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number or 'default', got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"thresholds are not negative, got {value}")
    return value


def roi(text: str) -> tuple[int, int, int, int]:
    """``X,Y,W,H`` in full-image pixels."""
    try:
        x, y, w, h = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected X,Y,W,H (four whole numbers), got {text!r}") from None
    return x, y, w, h


def add_threshold_options(parser: argparse.ArgumentParser) -> None:
    """The postprocessing settings, with the reference's defaults."""
    from .constants import DEFAULT_SEG_THRESH

    parser.add_argument("--seg-thresh", type=int, default=DEFAULT_SEG_THRESH, metavar="N", help="a pixel is a cell pixel if R + B > N (default: %(default)s)")
    parser.add_argument("--size-thresh", type=threshold, default="default", metavar="N|default", help="count cells larger than N pixels (default: the reference's KDE rule)")
    parser.add_argument("--size-thresh-upper", type=threshold, default=None, metavar="N|default", help="count cells smaller than N pixels (default: no cap)")
    parser.add_argument("--marker-thresh", type=threshold, default=None, metavar="N|default", help="a cell whose marker value exceeds N is positive (default: not applied)")


def thresholds(args: argparse.Namespace) -> dict:
    """The threshold options as keyword arguments of ``postprocess``."""
    return {"seg_thresh": args.seg_thresh, "size_thresh": args.size_thresh,
            "size_thresh_upper": args.size_thresh_upper, "marker_thresh": args.marker_thresh}


def summary(name: str, scoring: dict, provenance: dict, directory: Path) -> str:
    """One line per scored image."""
    model = f", model {provenance['model']}" if provenance.get("model") else ""
    return (f"{name}: {scoring['num_total']} cells, {scoring['num_pos']} positive "
            f"({scoring['percent_pos']}%) [engine {provenance['engine']}{model}, "
            f"{provenance['resolution']}] -> {directory}")


def cmd_score(args: argparse.Namespace) -> int:
    """``score``: cells, score and images of each image (or the bundled sample)."""
    from .engine import load_engine
    from .exports import write_score_outputs
    from .image_input import read_image
    from .sample import SAMPLE_NAME, load_sample

    if not args.images and not args.sample:
        raise DeepLIIFError("give IMAGE files or --sample")
    engine = load_engine(args.engine, args.model, device=args.device, precision=args.precision, batch_size=args.batch_size)
    jobs = [(SAMPLE_NAME, load_sample)] if args.sample else []
    jobs += [(Path(p).stem, lambda p=p: read_image(p)) for p in args.images]
    for stem, read in jobs:
        result = engine.score(read(), resolution=args.resolution, mpp=args.mpp, region=args.roi,
                              outputs=args.outputs, progress=progress_bar(stem), **thresholds(args))
        directory = Path(args.out) / stem
        write_score_outputs(directory, post=result.post, image=result.image, images=result.images,
                            provenance={**result.provenance, "image": stem, "region": list(args.roi) if args.roi else None}, origin=result.origin)
        print(summary(stem, result.scoring, result.provenance, directory))
    return 0


def cmd_postprocess(args: argparse.Namespace) -> int:
    """``postprocess``: re-score existing DeepLIIF Seg (and Marker) images."""
    from . import __version__
    from .exports import write_score_outputs
    from .image_input import check_rgb, read_image
    from .postprocess import postprocess
    from .resolution import resolve_resolution

    orig = check_rgb(read_image(args.orig), "original image")[:, :]
    seg = check_rgb(read_image(args.seg), "Seg image")[:, :]
    marker = check_rgb(read_image(args.marker), "Marker image")[:, :] if args.marker else None
    for name, other in (("Seg", seg), ("Marker", marker)):
        if other is not None and other.shape != orig.shape:
            raise DeepLIIFError(f"{name} image is {other.shape[1]} x {other.shape[0]} px but the original is {orig.shape[1]} x {orig.shape[0]}")
    resolution = resolve_resolution(args.resolution, args.mpp)
    post = postprocess(seg, marker, resolution=resolution, **thresholds(args))
    stem = Path(args.orig).stem
    # the Seg/Marker came from a DeepLIIF run elsewhere: the model is not known here
    provenance = {"engine": "deepliif", "model": None, "model_hash": None, "version": __version__,
                  "resolution": resolution, "image": stem, "seg": str(args.seg), "marker": str(args.marker) if args.marker else None}
    directory = Path(args.out) / stem
    write_score_outputs(directory, post=post, image=orig, images={}, provenance=provenance)
    print(summary(stem, post.scoring, provenance, directory))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (sub-commands register themselves here)."""
    from . import cli_batch, cli_models, cli_server

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

    p = sub.add_parser("score", help="find and classify cells and write the IHC score", description="Score images: writes DIR/<image stem>/ with the engine's images, SegRefined.png, SegOverlaid.png, score.json, cells.geojson (QuPath detections), cells.csv and labels.tif.")
    p.add_argument("images", nargs="*", metavar="IMAGE", help="PNG, JPEG or TIFF RGB images")
    p.add_argument("--sample", action="store_true", help="score the IHC image shipped with the package")
    p.add_argument("--engine", choices=("auto", "deepliif", "stain"), default="auto", help="auto: DeepLIIF if --model is given or deepliif-latest is installed, else the classical stain engine")
    p.add_argument("--roi", type=roi, default=None, metavar="X,Y,W,H", help="score only this rectangle (full-image pixels)")
    p.add_argument("--outputs", choices=("score", "all"), default="all", help="all modalities, or only what scoring needs")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")
    add_engine_options(p, model_default=None)
    add_threshold_options(p)
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("postprocess", help="re-score existing DeepLIIF Seg/Marker images", description="Re-score the outputs of a DeepLIIF run (the reference's /api/postprocess): writes DIR/<ORIG stem>/ with SegRefined.png, SegOverlaid.png, score.json, cells.geojson, cells.csv and labels.tif.")
    p.add_argument("orig", metavar="ORIG", help="the original IHC image")
    p.add_argument("--seg", required=True, metavar="SEG", help="the Seg image DeepLIIF produced for ORIG")
    p.add_argument("--marker", metavar="MARKER", help="the Marker image (needed for --marker-thresh)")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")
    add_resolution_options(p)
    add_threshold_options(p)
    p.set_defaults(func=cmd_postprocess)

    cli_models.add_parser(sub)
    cli_server.add_parser(sub)
    cli_batch.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``napari-deepliif`` console script."""
    # NNPACK's worker threads and OpenMP's spinning ones otherwise compete for the cores;
    # set before torch is first imported (it is imported lazily, when a model loads)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except Cancelled as exc:
        print(f"napari-deepliif: cancelled: {exc}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        print("napari-deepliif: interrupted; files are written only when complete "
              "(batch: finished chunks and slides are kept and resume)", file=sys.stderr)
        return EXIT_INTERRUPTED
    except DeepLIIFError as exc:
        print(f"napari-deepliif: error: {exc}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
