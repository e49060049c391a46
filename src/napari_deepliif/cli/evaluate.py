"""``napari-deepliif evaluate``: score a prediction against ground truth and print the metrics."""

from __future__ import annotations

import argparse
from pathlib import Path

from napari_deepliif.cells.evaluation import DEFAULT_RADIUS_UM, Evaluation, evaluate
from napari_deepliif.constants import (
    DEFAULT_RESOLUTION,
    DEFAULT_SEG_THRESH,
    MICRONS_PER_PIXEL_BY_RESOLUTION,
)
from napari_deepliif.errors import DeepLIIFError
from napari_deepliif.io.exports import write_json
from napari_deepliif.io.ground_truth import read_annotation

#: Rows of the printed table: (label, key in the result's dict, format).
MASK_ROWS = (("Dice (+ / - / mean)", ("dice_positive", "dice_negative", "dice"), "{:.3f}"),
             ("IoU (+ / - / mean)", ("iou_positive", "iou_negative", "iou"), "{:.3f}"),
             ("pixel accuracy (+ / - / mean)", ("pixel_accuracy_positive", "pixel_accuracy_negative", "pixel_accuracy"),
              "{:.3f}"),
             ("AJI", ("aji",), "{:.3f}"), ("F1 at IoU", ("f1",), "{:.3f}"),
             ("cells (prediction / truth)", ("num_predicted", "num_truth"), "{}"),
             ("% positive (prediction / truth)", ("percent_positive_predicted", "percent_positive_truth"), "{:.1f}"),
             ("quantification difference (pp)", ("quantification_difference",), "{:.1f}"))
POINT_ROWS = (("precision / recall / F1", ("precision", "recall", "f1"), "{:.3f}"),
              ("positive: precision / recall / F1", ("precision_positive", "recall_positive", "f1_positive"), "{:.3f}"),
              ("negative: precision / recall / F1", ("precision_negative", "recall_negative", "f1_negative"), "{:.3f}"),
              ("matched / missed / extra", ("true_positives", "false_negatives", "false_positives"), "{}"),
              ("class agreement of matches", ("class_agreement",), "{:.3f}"),
              ("mean distance of matches (px)", ("mean_distance_px",), "{:.2f}"),
              ("cells (prediction / truth)", ("num_predicted", "num_truth"), "{}"),
              ("count error (prediction - truth)", ("count_error",), "{:+d}"),
              ("% positive (prediction / truth)", ("percent_positive_predicted", "percent_positive_truth"), "{:.1f}"),
              ("proportion error (pp)", ("proportion_error",), "{:.1f}"))


def _rows(values: dict, rows: tuple) -> list[str]:
    width = max(len(label) for label, _, _ in rows)
    return [f"  {label:<{width}}  " + " / ".join("-" if values[k] is None else fmt.format(values[k]) for k in keys)
            for label, keys, fmt in rows]


def table(result: Evaluation, iou_threshold: float) -> str:
    """The metrics of ``result`` as the lines the command prints."""
    flat = result.as_dict()
    lines = []
    if flat["mask"] is not None:
        lines += [f"masks (F1 at IoU > {iou_threshold:g}):", *_rows(flat["mask"], MASK_ROWS)]
    lines += [f"points (matched within {result.radius_um:g} µm = {result.points.radius:.1f} px at {result.mpp:g} µm/px):",
              *_rows(flat["points"], POINT_ROWS)]
    return "\n".join(lines)


def cmd_evaluate(args: argparse.Namespace) -> int:
    """``evaluate``: read both sides, compare, print a table and write JSON."""
    common = {"seg_thresh": args.seg_thresh, "connectivity": args.connectivity}
    prediction = read_annotation(args.prediction, classes=args.prediction_classes, **common)
    truth = read_annotation(args.truth, classes=args.truth_classes, **common)
    mpp, source = args.mpp, "--mpp"
    for side, name in ((prediction, "prediction"), (truth, "truth")):
        if mpp is None and side.mpp is not None:
            mpp, source = side.mpp, f"the {name}'s score"
    if mpp is None:
        mpp, source = MICRONS_PER_PIXEL_BY_RESOLUTION[DEFAULT_RESOLUTION], f"assumed ({DEFAULT_RESOLUTION}); give --mpp"
    try:
        result = evaluate(prediction.annotation, truth.annotation, mpp=mpp, radius_um=args.radius_um,
                          iou_threshold=args.iou, region=prediction.region)
    except ValueError as exc:
        raise DeepLIIFError(f"cannot compare {args.prediction} with {args.truth}: {exc}") from None
    print(f"prediction: {prediction.what}\ntruth: {truth.what}\npixel size: {mpp:g} µm/px ({source})")
    print(table(result, args.iou))
    if args.json:
        report = result.as_dict()
        report["settings"].update(iou_threshold=args.iou, connectivity=args.connectivity, seg_thresh=args.seg_thresh,
                                  mpp_source=source)
        write_json(args.json, {"prediction": str(args.prediction), "truth": str(args.truth), **report})
        print(f"wrote {args.json}")
    return 0


def _non_negative(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {text}")
    return value


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``evaluate`` sub-command."""
    p = subparsers.add_parser(
        "evaluate", help="score cells against ground truth (Dice, IoU, AJI, F1; point precision/recall/F1)",
        description="Compare PRED with TRUTH. Each is a Seg-colour mask, a label image (with --*-classes), points "
                    "(GeoJSON, CSV with x,y,class, a napari Points CSV) or a score output folder. Two masks get "
                    "the DeepLIIF paper's metrics and point metrics of their centroids; points get point metrics. "
                    "See docs/evaluation.md.")
    p.add_argument("prediction", type=Path, metavar="PRED", help="what an engine found")
    p.add_argument("truth", type=Path, metavar="TRUTH", help="the ground truth")
    p.add_argument("--radius-um", type=_non_negative, default=DEFAULT_RADIUS_UM, metavar="R",
                   help="a predicted cell centre detects a true one within R µm (default: %(default)s)")
    p.add_argument("--mpp", type=_positive, default=None, metavar="M",
                   help="pixel size in µm/px (default: from a score folder, else 0.25, 40x)")
    p.add_argument("--iou", type=float, default=0.5, metavar="T", help="IoU above which masks' cells match, for F1 (default: %(default)s)")
    p.add_argument("--connectivity", type=int, choices=(8, 4), default=8,
                   help="pixels that form one cell of a Seg mask: 8 as the postprocessing forms cells; 4 as the"
                        " DeepLIIF paper's figures were computed (default: %(default)s)")
    p.add_argument("--seg-thresh", type=int, default=DEFAULT_SEG_THRESH, metavar="N",
                   help="a Seg pixel is a cell pixel when R + B > N (default: %(default)s)")
    p.add_argument("--prediction-classes", type=Path, default=None, metavar="CSV", help="class table (id, class) of a label image PRED")
    p.add_argument("--truth-classes", type=Path, default=None, metavar="CSV", help="class table (id, class) of a label image TRUTH")
    p.add_argument("--json", type=Path, default=None, metavar="OUT", help="also write every metric to this JSON file")
    p.set_defaults(func=cmd_evaluate)
