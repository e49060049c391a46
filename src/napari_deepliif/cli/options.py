"""Options, progress and one-line summaries shared by the sub-commands."""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from napari_deepliif.cells.measure import (
    DEFAULT_BINS_OD,
    DEFAULT_EXPANSION_UM,
    DEFAULT_MEMBRANE_UM,
    DEFAULT_POSITIVE_OD,
)
from napari_deepliif.cells.scoring import COMPARTMENTS
from napari_deepliif.constants import DEFAULT_RESOLUTION, DEFAULT_SEG_THRESH
from napari_deepliif.engine.devices import DEVICES, PRECISIONS
from napari_deepliif.engine.engines import StainEngine
from napari_deepliif.resolution import RESOLUTIONS

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


def download_bar(description: str = "download") -> tuple[Callable[[int, int | None], None], Callable[[], None]]:
    """A download progress callback ``(done_bytes, total_bytes)`` drawing a tqdm bar on stderr,
    and a function closing the bar."""
    from tqdm import tqdm

    state: dict[str, Any] = {"bar": None, "done": 0}

    def update(done: int, total: int | None) -> None:
        bar = state["bar"]
        if bar is None:
            bar = state["bar"] = tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=description)
        bar.update(done - state["done"])
        state["done"] = done

    def close() -> None:
        if state["bar"] is not None:
            state["bar"].close()

    return update, close


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


def od_pair(text: str) -> tuple[float, float]:
    """``T2,T3``: two DAB ODs."""
    try:
        low, high = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected T2,T3 (two DAB ODs, e.g. 0.4,0.6), got {text!r}") from None
    return low, high


def add_threshold_options(parser: argparse.ArgumentParser) -> None:
    """The postprocessing settings, with the reference's defaults."""
    parser.add_argument("--seg-thresh", type=int, default=DEFAULT_SEG_THRESH, metavar="N", help="a pixel is a cell pixel if R + B > N (default: %(default)s)")
    parser.add_argument("--size-thresh", type=threshold, default="default", metavar="N|default", help="count cells larger than N pixels (default: the reference's KDE rule)")
    parser.add_argument("--size-thresh-upper", type=threshold, default=None, metavar="N|default", help="count cells smaller than N pixels (default: no cap)")
    parser.add_argument("--marker-thresh", type=threshold, default=None, metavar="N|default", help="a cell whose marker value exceeds N is positive (default: not applied)")


def add_point_options(parser: argparse.ArgumentParser) -> None:
    """A ``points`` model's selection (docs/point-detection.md); default the model card's."""
    group = parser.add_argument_group("points models", "selection of a points model's points (default: its card's)")
    group.add_argument("--confidence", type=float, default=None, metavar="C", help="lowest confidence (0.05-1) a point needs")
    group.add_argument("--min-distance-um", type=float, default=None, metavar="UM", help="a point suppresses weaker points within this distance (µm)")


def optical_density(text: str) -> float:
    """An OD option: a finite number, not negative."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an optical density (a number such as 0.3), got {text!r}") from None
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"an optical density is a finite number, 0 or more, got {text!r}")
    return value


def add_dab_threshold_option(parser: argparse.ArgumentParser) -> None:
    """``--dab-threshold OD``: the stain engine's positive rule."""
    parser.add_argument("--dab-threshold", type=optical_density, default=None, metavar="OD",
                        help="stain engine: a nucleus whose mean DAB OD exceeds OD is positive; raise it where "
                             f"hematoxylin-only nuclei come out positive (default: {StainEngine.dab_threshold})")


def engine_parameters(args: argparse.Namespace) -> dict:
    """The engine parameters given on the command line (``EngineBase.with_parameters``)."""
    return {} if args.dab_threshold is None else {"dab_threshold": args.dab_threshold}


def add_compartment_options(parser: argparse.ArgumentParser) -> None:
    """Stain measurements and compartment scoring (commands that have the IHC image)."""
    group = parser.add_argument_group("compartment scoring", "score on a compartment's DAB OD measured on the IHC image (see docs/measurements.md)")
    group.add_argument("--compartment", choices=COMPARTMENTS, default="class", help="what decides positive: the engine's class, or that compartment's mean DAB OD above --positive-od (default: %(default)s)")
    group.add_argument("--positive-od", type=float, default=DEFAULT_POSITIVE_OD, metavar="OD", help="DAB OD above which a cell is positive (1+) and a membrane pixel stained (default: %(default)s)")
    group.add_argument("--bins-od", type=od_pair, default=None, metavar="T2,T3", help=f"DAB ODs above which a positive cell is 2+ and 3+: adds the bins and the H-score (QuPath: {','.join(map(str, DEFAULT_BINS_OD))})")
    group.add_argument("--min-completeness", type=float, default=None, metavar="F", help="a positive cell needs at least this fraction (0-1) of its membrane ring above --positive-od")
    group.add_argument("--expansion-um", type=float, default=DEFAULT_EXPANSION_UM, metavar="UM", help="cell expansion beyond the nucleus in µm, stopped where neighbours meet; 0: nucleus only (default: %(default)s)")
    group.add_argument("--membrane-um", type=float, default=DEFAULT_MEMBRANE_UM, metavar="UM", help="width of the membrane ring in µm (default: %(default)s)")


def thresholds(args: argparse.Namespace) -> dict:
    """The threshold options (and the compartment options, where the command has them) as
    keyword arguments of ``postprocess``."""
    chosen = {"seg_thresh": args.seg_thresh, "size_thresh": args.size_thresh,
              "size_thresh_upper": args.size_thresh_upper, "marker_thresh": args.marker_thresh}
    if hasattr(args, "compartment"):
        chosen.update(compartment=args.compartment, positive_od=args.positive_od, bins_od=args.bins_od,
                      min_completeness=args.min_completeness, expansion_um=args.expansion_um,
                      membrane_um=args.membrane_um)
    return chosen


def summary(name: str, scoring: dict, provenance: dict, directory: Path) -> str:
    """One line per scored image."""
    model = f", model {provenance['model']}" if provenance.get("model") else ""
    mode = f" by {scoring['compartment']} DAB OD > {scoring['positive_od']:g}" if "compartment" in scoring else ""
    h_score = f", H-score {scoring['h_score']}" if "h_score" in scoring else ""
    classes = "".join(f", {n} {name}" for name, n in scoring.get("classes", {}).items())
    return (f"{name}: {scoring['num_total']} cells, {scoring['num_pos']} positive{mode} "
            f"({scoring['percent_pos']}%{h_score}){classes} [engine {provenance['engine']}{model}, "
            f"{provenance['resolution']}] -> {directory}")


def output_folder(text: str) -> Path:
    """``--out``: a folder that exists or can be made and written to, checked before any work
    (a mistyped path must not cost a whole run)."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a file: give a folder for the outputs")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise argparse.ArgumentTypeError(f"cannot create the folder {text} ({exc.strerror}): "
                                         "give a folder you can write to") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"cannot write to {text}: give a folder you can write to")
    return path


def add_output_option(parser: argparse.ArgumentParser) -> None:
    """``--out DIR``, checked when the command line is read."""
    parser.add_argument("--out", required=True, metavar="DIR", type=output_folder, help="output folder (created)")
