"""Read cells to evaluate, or to evaluate against, from the files people keep them in.

:func:`read_annotation` takes any of:

- a **Seg-colour mask** (PNG/TIFF RGB: red positive, blue negative, green border), e.g. the
  DeepLIIF ground truth or a ``SegRefined.png``;
- a **label image** (PNG/TIFF, 2-D integers, 0 background) with a class table: a CSV of
  ``id`` (or ``label``) and ``class``; a ``labels.tif`` inside a score folder uses the
  folder's ``cells.csv``;
- **points**: GeoJSON (QuPath's ``Point``/``MultiPoint`` objects, e.g. ground truth made with
  QuPath's Points tool, and ``Polygon`` detections or cells through their centroids), or a
  CSV of ``x``, ``y``, ``class`` (also ``centroid_x``/``centroid_y`` as in ``cells.csv``, and
  napari's ``axis-0``/``axis-1`` columns as napari saves a Points layer);
- a **score folder** written by ``score`` or ``postprocess`` (``score.json`` beside the
  cells): its ``SegRefined.png`` when it covers the whole image at full resolution, else its
  ``points.csv`` (a point-detection model) or ``cells.csv`` as points in full-resolution pixels.

Coordinates: points are ``(x, y)`` pixels with pixel centres at integers (the cell table's
convention); GeoJSON, whose pixel ``(row, col)`` is the square ``[col, col + 1] x [row, row + 1]``
(QuPath's convention), is moved by half a pixel to match.

Classes: a class name is positive or negative by its last ``:`` part, case-insensitive
(``Positive``, ``Tumor: Positive``, QuPath's intensity classes ``1+``, ``2+``, ``3+``,
``true``/``1``; ``Negative``, ``false``/``0``); ``Uncounted`` objects (cells a score did not
count) are left out; any other name is an error that lists it.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from napari_deepliif.cells.evaluation import Annotation, Instances
from napari_deepliif.cells.points import Points
from napari_deepliif.constants import (
    DEFAULT_SEG_THRESH,
    MICRONS_PER_PIXEL_BY_RESOLUTION,
)
from napari_deepliif.errors import DeepLIIFError
from napari_deepliif.io.exports import CSV_FILE, LABELS_FILE, SCORE_FILE, SEG_REFINED
from napari_deepliif.io.geojson import UNCOUNTED_CLASS
from napari_deepliif.io.image_input import read_image
from napari_deepliif.io.point_exports import POINTS_CSV

POSITIVE_NAMES = frozenset({"positive", "pos", "1+", "2+", "3+", "true", "1"})
NEGATIVE_NAMES = frozenset({"negative", "neg", "false", "0"})
#: Columns that may hold a point's or a label's class (the first present is used: a points
#: output's ``positive`` column before its model's own class names in ``class``).
CLASS_COLUMNS = ("positive", "class", "classification", "label_class", "type")
IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg")


@dataclass(frozen=True)
class LoadedAnnotation:
    """Cells read from a file, and what the file says about where they lie.

    Attributes
    ----------
    annotation : Instances or Points
    mpp : float or None
        Full-resolution pixel size (µm/px) the file records (a score folder), else None.
    region : (x, y, width, height) or None
        The full-resolution pixels whose cells the file holds when it covers only part of
        the image (a score of a region), else None.
    what : str
        How the file was read, for messages and reports.
    """

    annotation: Annotation
    mpp: float | None = None
    region: tuple[float, float, float, float] | None = None
    what: str = ""


def class_is_positive(name: object) -> bool | None:
    """Whether a class name means a positive cell; None for :data:`UNCOUNTED_CLASS`.

    Raises
    ------
    DeepLIIFError
        For a name that is neither positive nor negative.
    """
    text = str(name).strip().split(":")[-1].strip().lower()
    if text in POSITIVE_NAMES:
        return True
    if text in NEGATIVE_NAMES:
        return False
    if text == UNCOUNTED_CLASS.lower():
        return None
    raise DeepLIIFError(f"class {name!r} is neither positive nor negative (positive: {', '.join(sorted(POSITIVE_NAMES))};"
                        f" negative: {', '.join(sorted(NEGATIVE_NAMES))}; '{UNCOUNTED_CLASS}' is left out)")


def read_annotation(
    path: str | Path,
    *,
    classes: str | Path | None = None,
    seg_thresh: int = DEFAULT_SEG_THRESH,
    connectivity: int = 8,
) -> LoadedAnnotation:
    """Read cells from a Seg mask, a label image, points (GeoJSON, CSV) or a score folder.

    Parameters
    ----------
    path : str or Path
        The file or score folder (see the module docstring for the formats).
    classes : str or Path, optional
        Class table (CSV of ``id`` and ``class``) of a label image.
    seg_thresh : int
        Cell-pixel threshold on R + B for Seg-colour masks.
    connectivity : {8, 4}
        Pixel neighbourhood that forms the cells of a Seg-colour mask.

    Returns
    -------
    LoadedAnnotation

    Raises
    ------
    DeepLIIFError
        For a missing file, an unknown format, a label image without classes, missing
        columns or an unknown class name (the message says which).
    """
    path = Path(path)
    if path.is_dir():
        return _read_score_folder(path, seg_thresh, connectivity)
    if not path.is_file():
        raise DeepLIIFError(f"{path} does not exist")
    suffix = path.suffix.lower()
    if suffix in (".geojson", ".json"):
        return LoadedAnnotation(read_geojson_points(path), what=f"points from GeoJSON {path.name}")
    if suffix == ".csv":
        return LoadedAnnotation(read_csv_points(path), what=f"points from CSV {path.name}")
    if suffix not in IMAGE_SUFFIXES:
        raise DeepLIIFError(f"{path}: unknown kind of file (give a Seg mask or label image {'/'.join(IMAGE_SUFFIXES)},"
                            " points .geojson/.csv, or a score folder)")
    image = read_image(path)
    if image.ndim == 3 and image.shape[2] >= 3:
        return LoadedAnnotation(Instances.from_seg(image[..., :3], seg_thresh=seg_thresh, connectivity=connectivity),
                                what=f"Seg mask {path.name}")
    if image.ndim == 2 and image.dtype.kind in "ui":
        table = Path(classes) if classes else path.with_name(CSV_FILE) if path.name == LABELS_FILE else None
        if table is None or not table.is_file():
            raise DeepLIIFError(f"{path} is a label image: give its class table (a CSV of id and class) with"
                                " --truth-classes or --prediction-classes (Python: classes=)")
        return LoadedAnnotation(Instances.from_labels(image, read_class_table(table)),
                                what=f"label image {path.name} with classes from {table.name}")
    raise DeepLIIFError(f"{path} is neither an RGB Seg mask nor a 2-D integer label image (shape {image.shape},"
                        f" dtype {image.dtype})")


def _read_score_folder(folder: Path, seg_thresh: int, connectivity: int) -> LoadedAnnotation:
    record_path = folder / SCORE_FILE
    if not record_path.is_file():
        raise DeepLIIFError(f"{folder} is a folder without {SCORE_FILE}: give a score output folder or a file")
    try:
        place = json.loads(record_path.read_text(encoding="utf-8")).get("placement") or {}
    except (UnicodeDecodeError, json.JSONDecodeError, AttributeError) as exc:
        raise DeepLIIFError(f"{record_path} is not a score record ({exc}); score the image again") from None
    downsample = float(place.get("downsample") or 1.0)
    mpp = place.get("mpp")
    if mpp is None and place.get("resolution") in MICRONS_PER_PIXEL_BY_RESOLUTION:
        mpp = MICRONS_PER_PIXEL_BY_RESOLUTION[place["resolution"]]
    full_mpp = None if mpp is None else float(mpp) / downsample
    origin = place.get("origin") or [0, 0]
    height, width = place.get("shape") or (0, 0)
    region = place.get("region")
    whole = downsample == 1.0 and not any(origin) and region in (None, [0, 0, width, height])
    if whole and (folder / f"{SEG_REFINED}.png").is_file():
        seg = read_image(folder / f"{SEG_REFINED}.png")[..., :3]
        return LoadedAnnotation(Instances.from_seg(seg, seg_thresh=seg_thresh, connectivity=connectivity), full_mpp,
                                what=f"{folder.name}/{SEG_REFINED}.png")
    table = next((folder / name for name in (POINTS_CSV, CSV_FILE) if (folder / name).is_file()), None)
    if table is None:
        raise DeepLIIFError(f"{folder} holds none of {SEG_REFINED}.png, {POINTS_CSV} and {CSV_FILE}")
    if region is None and not whole:
        region = [origin[0], origin[1], width * downsample, height * downsample]
    return LoadedAnnotation(read_csv_points(table), full_mpp,
                            region=None if region is None or whole else tuple(float(v) for v in region),
                            what=f"{folder.name}/{table.name} (cell centres, full-resolution pixels)")


def _class_column(header: list[str], where: Path) -> str:
    lower = {name.strip().lower(): name for name in header}
    for name in CLASS_COLUMNS:
        if name in lower:
            return lower[name]
    raise DeepLIIFError(f"{where} has no class column (one of {', '.join(CLASS_COLUMNS)}); columns: {', '.join(header)}")


def _csv_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


def _number(text: str, column: str, row: int, where: Path) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        raise DeepLIIFError(f"{where}, row {row}: column {column!r} holds {text!r}, not a number") from None


def read_csv_points(path: str | Path) -> Points:
    """Points from a CSV with a header: ``x``, ``y`` (or ``centroid_x``, ``centroid_y``, or
    napari's ``axis-0`` (row) ... ``axis-N`` (column)) and a class column.

    Coordinates are pixels with pixel centres at integers. Rows of class ``Uncounted`` are
    left out.
    """
    path = Path(path)
    header, rows = _csv_rows(path)
    lower = {name.strip().lower(): name for name in header}
    axes = sorted((n for n in lower if n.startswith("axis-") and n[5:].isdigit()), key=lambda n: int(n[5:]))
    if "x" in lower and "y" in lower:
        x_col, y_col = lower["x"], lower["y"]
    elif "centroid_x" in lower and "centroid_y" in lower:
        x_col, y_col = lower["centroid_x"], lower["centroid_y"]
    elif len(axes) >= 2:  # napari: axis-0 .. axis-N, the last two are row, column
        y_col, x_col = lower[axes[-2]], lower[axes[-1]]
    else:
        raise DeepLIIFError(f"{path}: no coordinate columns (x and y, centroid_x and centroid_y, or napari's axis-0"
                            f" and axis-1); columns: {', '.join(header)}")
    class_col = _class_column(header, path)
    xy, positive = [], []
    for k, row in enumerate(rows, start=2):
        flag = class_is_positive(row[class_col])
        if flag is None:
            continue
        xy.append((_number(row[x_col], x_col, k, path), _number(row[y_col], y_col, k, path)))
        positive.append(flag)
    return Points(np.array(xy, dtype=np.float64).reshape(-1, 2), np.array(positive, dtype=bool))


def read_class_table(path: str | Path) -> np.ndarray:
    """Ids of the positive cells of a class table (CSV: ``id`` or ``label``, and a class)."""
    path = Path(path)
    header, rows = _csv_rows(path)
    lower = {name.strip().lower(): name for name in header}
    id_col = lower.get("id") or lower.get("label")
    if id_col is None:
        raise DeepLIIFError(f"{path}: a class table needs an 'id' (or 'label') column; columns: {', '.join(header)}")
    class_col = _class_column(header, path)
    return np.array([int(_number(row[id_col], id_col, k, path)) for k, row in enumerate(rows, start=2)
                     if class_is_positive(row[class_col])], dtype=np.int64)


def _features(data: object, path: Path) -> list[dict]:
    if isinstance(data, list):
        return data
    if isinstance(data, dict) and data.get("type") == "FeatureCollection":
        return list(data.get("features") or [])
    if isinstance(data, dict) and data.get("type") == "Feature":
        return [data]
    raise DeepLIIFError(f"{path} is not GeoJSON features (a FeatureCollection, a Feature or a list of them)")


def _ring_moments(ring: list) -> np.ndarray:
    """Unsigned area and first moments (x, y) of a closed ring (shoelace formula)."""
    x, y = np.asarray(ring, dtype=np.float64)[:, :2].T
    x1, y1 = np.roll(x, -1), np.roll(y, -1)
    cross = x * y1 - x1 * y
    moments = np.array([cross.sum() / 2, ((x + x1) * cross).sum() / 6, ((y + y1) * cross).sum() / 6])
    return moments if moments[0] >= 0 else -moments


def _centroid(polygons: list) -> tuple[float, float]:
    """Area centroid of polygons (each an outer ring and holes), whatever their ring orientation."""
    total = sum(_ring_moments(rings[0]) - sum((_ring_moments(h) for h in rings[1:]), np.zeros(3))
                for rings in polygons)
    if not total[0] > 0:
        raise DeepLIIFError("a cell polygon has no area")
    return float(total[1] / total[0]), float(total[2] / total[0])


def read_geojson_points(path: str | Path) -> Points:
    """Points from GeoJSON features with a classification.

    ``Point`` and ``MultiPoint`` geometries of any object give their points; ``Polygon`` and
    ``MultiPolygon`` geometries of detections and cells (``objectType`` ``detection`` or
    ``cell``) give their area centroid; other objects (annotations drawn as regions) are
    ignored. Coordinates move by half a pixel from QuPath's pixel corners to pixel centres.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DeepLIIFError(f"cannot read {path} as JSON ({exc})") from None
    xy: list[tuple[float, float]] = []
    positive: list[bool] = []
    for k, feature in enumerate(_features(data, path)):
        geometry = feature.get("geometry") or {}
        props = feature.get("properties") or {}
        kind = geometry.get("type")
        object_type = props.get("objectType") or props.get("object_type") or props.get("type")
        try:
            if kind == "Point":
                found = [geometry["coordinates"][:2]]
            elif kind == "MultiPoint":
                found = [c[:2] for c in geometry["coordinates"]]
            elif kind in ("Polygon", "MultiPolygon") and object_type in ("detection", "cell"):
                found = [_centroid([geometry["coordinates"]] if kind == "Polygon" else geometry["coordinates"])]
            else:
                continue
            found = [(float(x), float(y)) for x, y in found]
        except (KeyError, IndexError, TypeError, ValueError):
            raise DeepLIIFError(f"{path}: feature {k} has a malformed {kind} geometry") from None
        classification = props.get("classification")
        name = classification.get("name") if isinstance(classification, dict) else classification
        if name is None:
            raise DeepLIIFError(f"{path}: feature {k} ({kind}) has no classification; give each cell a class"
                                " (e.g. Positive or Negative)")
        flag = class_is_positive(name)
        if flag is None:
            continue
        xy.extend((x - 0.5, y - 0.5) for x, y in found)
        positive.extend([flag] * len(found))
    return Points(np.array(xy, dtype=np.float64).reshape(-1, 2), np.array(positive, dtype=bool))

