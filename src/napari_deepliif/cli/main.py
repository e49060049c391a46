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

from napari_deepliif import __version__
from napari_deepliif.cli.options import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    add_compartment_options,
    add_dab_threshold_option,
    add_engine_options,
    add_output_option,
    add_point_options,
    add_resolution_options,
    add_threshold_options,
    download_bar,
    engine_parameters,
    progress_bar,
    roi,
    summary,
    thresholds,
)
from napari_deepliif.engine.engines import ENGINES
from napari_deepliif.errors import Cancelled, DeepLIIFError
from napari_deepliif.models.samples import SAMPLES

log = logging.getLogger("napari_deepliif")

def cmd_infer(args: argparse.Namespace) -> int:
    """``infer``: write the outputs of each image (modalities and Seg, or Classes) as PNGs."""
    from napari_deepliif.engine.engines import load_engine
    from napari_deepliif.io.image_input import read_image
    from napari_deepliif.io.image_output import write_images

    engine = load_engine("auto", args.model, device=args.device, precision=args.precision, batch_size=args.batch_size)
    for path in args.images:
        image = read_image(path)
        images = engine.infer(
            image, resolution=args.resolution, mpp=args.mpp, outputs=args.outputs, progress=progress_bar(Path(path).name)
        )
        written = write_images(Path(args.out) / Path(path).stem, images)
        print(f"{path}: wrote {', '.join(p.name for p in written.values())} to {Path(args.out) / Path(path).stem}")
    return 0


def sample_download(key: str) -> Path:
    """The sample's file, with a download bar the first time a downloaded sample is used."""
    from napari_deepliif.models.samples import sample_file

    update, close = download_bar(f"sample {key}")
    try:
        return sample_file(key, progress=update)
    finally:
        close()


def cmd_score(args: argparse.Namespace) -> int:
    """``score``: cells, score and images of each image (or the bundled sample)."""
    from napari_deepliif.cells.postprocess import Settings
    from napari_deepliif.engine.engines import load_engine
    from napari_deepliif.io.exports import write_score_outputs
    from napari_deepliif.io.point_exports import write_point_outputs
    from napari_deepliif.regions.points import PointsResult
    from napari_deepliif.slides.batch import output_names
    from napari_deepliif.slides.region import score_file_region

    if not args.images and not args.sample:
        raise DeepLIIFError("give IMAGE files or --sample")
    engine = load_engine(args.engine, args.model, device=args.device, precision=args.precision, batch_size=args.batch_size)
    engine = engine.with_parameters(**engine_parameters(args))
    paths = [Path(p) for p in args.images]
    jobs = [(SAMPLES[args.sample].name, sample_download(args.sample))] if args.sample else []
    jobs += list(zip(output_names(paths), paths))
    failed = []
    for stem, path in jobs:
        try:
            result, level = score_file_region(engine, path, region=args.roi, resolution=args.resolution,
                                              mpp=args.mpp, settings=Settings(**thresholds(args)),
                                              outputs=args.outputs, threshold=args.confidence,
                                              min_distance_um=args.min_distance_um, progress=progress_bar(stem))
        except Cancelled:
            raise
        except DeepLIIFError as exc:  # one unreadable image of several: said, and the others are scored
            if len(jobs) == 1:
                raise
            print(f"napari-deepliif: {path}: {exc}", file=sys.stderr)
            failed.append(str(path))
            continue
        directory = Path(args.out) / stem
        record = result.record(image=stem, level=level.level, downsample=level.downsample, mpp=level.mpp)
        if isinstance(result, PointsResult):
            write_point_outputs(directory, result.detections, record=record,
                                placement=result.placement(downsample=level.downsample))
        else:
            write_score_outputs(directory, post=result.post, image=result.image, images=result.images,
                                record=record, placement=result.placement(downsample=level.downsample))
        print(summary(stem, result.scoring, result.provenance, directory))
    if failed:
        print(f"napari-deepliif: {len(failed)} of {len(jobs)} images not scored: {', '.join(failed)}", file=sys.stderr)
        return EXIT_ERROR
    return 0


def cmd_postprocess(args: argparse.Namespace) -> int:
    """``postprocess``: re-score existing DeepLIIF Seg (and Marker) images."""
    from napari_deepliif import __version__
    from napari_deepliif.cells.postprocess import postprocess
    from napari_deepliif.io.exports import write_score_outputs
    from napari_deepliif.io.image_input import read_image
    from napari_deepliif.io.score_format import placement, score_record
    from napari_deepliif.resolution import resolve_resolution
    from napari_deepliif.rgb import check_rgb

    orig = check_rgb(read_image(args.orig), "original image")[:, :]
    seg = check_rgb(read_image(args.seg), "Seg image")[:, :]
    marker = check_rgb(read_image(args.marker), "Marker image")[:, :] if args.marker else None
    for name, other in (("Seg", seg), ("Marker", marker)):
        if other is not None and other.shape != orig.shape:
            raise DeepLIIFError(f"{name} image is {other.shape[1]} x {other.shape[0]} px but the original is {orig.shape[1]} x {orig.shape[0]}")
    resolution = resolve_resolution(args.resolution, args.mpp)
    post = postprocess(seg, marker, resolution=resolution, image=orig, microns_per_pixel=args.mpp, **thresholds(args))
    stem = Path(args.orig).stem
    # the Seg/Marker came from a DeepLIIF run elsewhere: the model is not known here
    provenance = {"engine": "deepliif", "model": None, "model_hash": None, "version": __version__,
                  "statistics": None, "resolution": resolution}
    where = placement(image=stem, resolution=resolution, shape=post.cells.shape, mpp=args.mpp)
    record = score_record(post.scoring, placement=where, provenance=provenance,
                          run={"seg": str(args.seg), "marker": str(args.marker) if args.marker else None})
    directory = Path(args.out) / stem
    write_score_outputs(directory, post=post, image=orig, images={}, record=record)
    print(summary(stem, post.scoring, provenance, directory))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (sub-commands register themselves here)."""
    from napari_deepliif.cli import batch as cli_batch
    from napari_deepliif.cli import evaluate as cli_evaluate
    from napari_deepliif.cli import models as cli_models
    from napari_deepliif.cli import serve as cli_server

    parser = argparse.ArgumentParser(prog="napari-deepliif", description="Score IHC images with DeepLIIF on your own machine.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what the engine does")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("infer", help="write the inferred modalities and Seg map of images", description="Run DeepLIIF and write DIR/<image stem>/{Hema,DAPI,Lap2,Marker,Seg}.png (uint8 RGB, the input's size).")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="PNG, JPEG or TIFF RGB images")
    add_output_option(p)
    p.add_argument("--outputs", choices=("all", "score"), default="all", help="all modalities, or only what scoring needs (Marker, Seg)")
    add_engine_options(p)
    p.set_defaults(func=cmd_infer)

    p = sub.add_parser("score", help="find and classify cells and write the IHC score", description="Score images: writes DIR/<image stem>/ with the engine's images, SegRefined.png, SegOverlaid.png, score.json, cells.geojson (QuPath detections), cells.csv and labels.tif.")
    p.add_argument("images", nargs="*", metavar="IMAGE", help="PNG, JPEG or TIFF RGB images")
    p.add_argument("--sample", nargs="?", const="fhl2", default=None, choices=tuple(SAMPLES), metavar="NAME",
                   help="score a sample image: fhl2 (the default; shipped with the package: FHL2, membrane and "
                        "cytoplasm) or ki67 (a DeepLIIF Ki67 tile, nuclear; downloaded once, then cached)")
    p.add_argument("--engine", choices=ENGINES, default="auto", help="auto: the model's own type (a DeepLIIF release folder, or a folder with a model.yaml card) if --model is given, else DeepLIIF if deepliif-latest is installed, else the classical stain engine")
    p.add_argument("--roi", type=roi, default=None, metavar="X,Y,W,H", help="score only this rectangle (full-image pixels)")
    p.add_argument("--outputs", choices=("score", "all"), default="all", help="all modalities, or only what scoring needs")
    add_output_option(p)
    add_engine_options(p, model_default=None)
    add_dab_threshold_option(p)
    add_threshold_options(p)
    add_compartment_options(p)
    add_point_options(p)
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("postprocess", help="re-score existing DeepLIIF Seg/Marker images", description="Re-score the outputs of a DeepLIIF run (the reference's /api/postprocess): writes DIR/<ORIG stem>/ with SegRefined.png, SegOverlaid.png, score.json, cells.geojson, cells.csv and labels.tif.")
    p.add_argument("orig", metavar="ORIG", help="the original IHC image")
    p.add_argument("--seg", required=True, metavar="SEG", help="the Seg image DeepLIIF produced for ORIG")
    p.add_argument("--marker", metavar="MARKER", help="the Marker image (needed for --marker-thresh)")
    add_output_option(p)
    add_resolution_options(p)
    add_threshold_options(p)
    add_compartment_options(p)
    p.set_defaults(func=cmd_postprocess)

    cli_models.add_parser(sub)
    cli_server.add_parser(sub)
    cli_batch.add_parser(sub)
    cli_evaluate.add_parser(sub)
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
