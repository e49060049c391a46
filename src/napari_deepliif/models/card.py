"""The model card: ``model.yaml`` in a model folder says what a model of a supported type
takes, gives and how its output becomes cells (see ``docs/model-types.md``).

>>> card = read_card(folder)        # ModelCard, or ModelError naming the field at fault
>>> card.type, card.class_names
('classmap', ('background', 'CD3', 'CD8', 'CD20'))

One function, :func:`check_card`, validates a card's mapping (from ``model.yaml``, or a
bioimage.io ``rdf.yaml`` translated by :mod:`napari_deepliif.models.bioimageio`) field by
field; each error names the field, what it holds and what is allowed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from napari_deepliif.errors import ModelError
from napari_deepliif.models.bioimageio import card_from_rdf, rdf_file
from napari_deepliif.models.catalog import resolve_model
from napari_deepliif.models.registry import CARD_FILE, OPTIONS_FILE

#: Model types a card may name (``deepliif`` folders are in the release layout, no card).
CARD_TYPES: tuple[str, ...] = ("classmap", "points", "translate")
#: How the weights file is stored.
WEIGHT_FORMATS: tuple[str, ...] = ("torchscript", "state_dict")
#: Networks a ``state_dict`` can be loaded into.
ARCHITECTURES: tuple[str, ...] = ("unet-resnet34",)
#: Which channel of an RGB image the network reads (``grey``: mean of R, G and B).
INPUT_CHANNELS: tuple[str, ...] = ("grey", "red", "green", "blue")
#: Normalisation of each tile before the network: on the tile's own statistics (``per-tile-*``)
#: or a fixed scaling of 0..255 to 0..1.
NORMALISATIONS: tuple[str, ...] = ("per-tile-zscore", "per-tile-minmax", "scale-0-1")
_FIELDS = ("type", "name", "description", "weights", "format", "architecture", "input", "tile_size",
           "overlap", "pixel_size", "classes", "positive", "min_distance_um", "threshold", "segmenter",
           "dab_threshold", "nucleus_threshold", "segmenter_model", "nucleus_diameter_um",
           "flow_threshold", "cellprob_threshold", "deepliif_model")
#: Fields of ``translate`` cards only.
_TRANSLATE_FIELDS = ("segmenter", "dab_threshold", "nucleus_threshold", "segmenter_model", "nucleus_diameter_um",
                     "flow_threshold", "cellprob_threshold")
#: The ``cellpose`` segmenter's settings and their defaults (Cellpose's own).
CELLPOSE_SETTINGS: dict[str, float] = {"flow_threshold": 0.4, "cellprob_threshold": 0.0}
#: ``translate``: the generator network a state dict is loaded into (the CycleGAN repository's
#: ``ResnetGenerator``, ``netG resnet_<n>blocks``), the input scaling it was trained with, and
#: what finds nuclei on its output.
TRANSLATE_ARCHITECTURES: tuple[str, ...] = ("cyclegan-resnet",)
TRANSLATE_NORMALISATIONS: tuple[str, ...] = ("scale-minus1-1",)
SEGMENTERS: tuple[str, ...] = ("stain", "deepliif", "cellpose")
#: Heat maps a ``points`` model may give: one per class, written as the channels of one RGB output.
MAX_POINT_CLASSES = 3
_INPUT_FIELDS = ("channel", "normalise", "source")
#: What a ``classmap`` network reads: the image itself, or the DAPI a DeepLIIF model (the
#: card's ``deepliif_model``) infers from the IHC image.
INPUT_SOURCES: tuple[str, ...] = ("image", "deepliif-dapi")


@dataclass(frozen=True)
class ModelCard:
    """A validated model card.

    Attributes
    ----------
    type : str
        Model type (:data:`CARD_TYPES`).
    name : str
        Name written into every output (default: the folder's name).
    weights : Path
        The weights file.
    format : {'torchscript', 'state_dict'}
        How :attr:`weights` is stored.
    architecture : str or None
        Network a ``state_dict`` is loaded into (:data:`ARCHITECTURES`); None for TorchScript.
    channel : str
        Input channel taken from the RGB image (:data:`INPUT_CHANNELS`).
    normalise : str
        Tile normalisation (:data:`NORMALISATIONS`).
    tile_size : int
        Tile edge in pixels the network runs on.
    overlap : int
        Pixels neighbouring tiles share (even, less than ``tile_size``); each tile's outer
        ``overlap / 2`` px on inner sides are discarded.
    pixel_size : float
        Pixel size (µm/px) the model was trained at.
    class_names : tuple of str
        Output channel ``i`` is class ``i``; for ``classmap`` class 0 is background, for
        ``points`` every channel is the heat map of a cell class.
    positive_classes : tuple of int
        Indexes of the classes counted as positive (``classmap`` default: every class but
        background; ``points``: required).
    description : str
        Free text.
    card_file : Path or None
        The file the card was read from (``model.yaml`` or a bioimage.io description).
    min_distance_um : float or None
        ``points``: default suppression distance between two points (µm).
    threshold : float or None
        ``points``: default confidence threshold (0..1, on the network's sigmoid).
    segmenter : str or None
        ``translate``: what finds nuclei on the translated image (:data:`SEGMENTERS`).
    dab_threshold : float or None
        ``translate``: mean nuclear DAB OD of the input image above which a nucleus is positive.
    nucleus_threshold : float or None
        ``translate``: fixed foreground threshold (OD) of the ``stain`` segmenter; None: the
        Otsu threshold over the whole translated image.
    segmenter_model : Path or None
        ``translate`` with ``segmenter: deepliif``: the DeepLIIF model folder (release layout)
        whose Seg finds the nuclei on the translated image; with ``segmenter: cellpose``: the
        Cellpose model file.
    nucleus_diameter_um : float or None
        ``translate`` with ``segmenter: cellpose``: the nucleus diameter (µm) Cellpose is
        given; None: the diameter the Cellpose file was trained with, at ``pixel_size``.
    flow_threshold, cellprob_threshold : float or None
        ``translate`` with ``segmenter: cellpose``: Cellpose's mask settings (its defaults
        0.4 and 0.0; a flow threshold of 0 keeps every mask).
    input_source : str
        ``classmap``: what the network reads (:data:`INPUT_SOURCES`).
    deepliif_model : Path or None
        ``classmap`` with ``input.source: deepliif-dapi``: the DeepLIIF model folder (release
        layout) whose DAPI the network reads.
    """

    type: str
    name: str
    weights: Path
    format: str
    architecture: str | None
    channel: str
    normalise: str
    tile_size: int
    overlap: int
    pixel_size: float
    class_names: tuple[str, ...]
    positive_classes: tuple[int, ...]
    description: str = ""
    card_file: Path | None = None
    min_distance_um: float | None = None
    threshold: float | None = None
    segmenter: str | None = None
    dab_threshold: float | None = None
    nucleus_threshold: float | None = None
    segmenter_model: Path | None = None
    nucleus_diameter_um: float | None = None
    flow_threshold: float | None = None
    cellprob_threshold: float | None = None
    input_source: str = "image"
    deepliif_model: Path | None = None


def _fail(source: str, field: str, message: str) -> ModelError:
    return ModelError(f"{source}: field '{field}' {message}")


def _choice(data: Mapping[str, Any], key: str, allowed: tuple[str, ...], source: str, field: str,
            default: str | None = None) -> str:
    value = data.get(key, default)
    if value is None:
        raise _fail(source, field, f"is missing; give one of {', '.join(allowed)}")
    if value not in allowed:
        raise _fail(source, field, f"is {value!r}; allowed: {', '.join(allowed)}")
    return str(value)


def _whole(data: Mapping[str, Any], key: str, source: str, low: int) -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise _fail(source, key, f"is {value!r}; give a whole number of at least {low}")
    return value


def _grid_and_names(data: Mapping[str, Any], folder: Path, source: str, multiple: int,
                    why: str) -> tuple[int, int, float, str, str]:
    """The fields every card has: tile size (a multiple of ``multiple``, ``why``), overlap,
    pixel size, name and description."""
    tile = _whole(data, "tile_size", source, 32)
    if tile % multiple:
        raise _fail(source, "tile_size", f"is {tile}; {why}")
    overlap = _whole(data, "overlap", source, 0)
    if overlap % 2 or overlap >= tile:
        raise _fail(source, "overlap", f"is {overlap}; give an even number of pixels below tile_size ({tile})")
    pixel_size = data.get("pixel_size")
    if isinstance(pixel_size, bool) or not isinstance(pixel_size, (int, float)) or not 0 < pixel_size < 100:
        raise _fail(source, "pixel_size", f"is {pixel_size!r}; give the training pixel size in µm/px (e.g. 0.5)")
    name = data.get("name", Path(folder).name)
    if not isinstance(name, str) or not name:
        raise _fail(source, "name", f"is {name!r}; give a non-empty text")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise _fail(source, "description", f"is {description!r}; give a text")
    return tile, overlap, float(pixel_size), name, description


def check_card(data: Any, folder: Path, source: str | None = None) -> ModelCard:
    """Validate a card's content and return the card.

    Parameters
    ----------
    data : mapping
        The parsed ``model.yaml`` (keys: see :class:`ModelCard` and ``docs/model-types.md``).
    folder : Path
        The model folder (weights are looked up in it; its name is the default ``name``).
    source : str, optional
        What the card was read from, for messages (default ``FOLDER/model.yaml``).

    Raises
    ------
    ModelError
        Naming the first field that is missing or wrong, what it holds and what is allowed.
    """
    source = source or str(Path(folder) / CARD_FILE)
    if not isinstance(data, Mapping):
        raise ModelError(f"{source}: a model card is a mapping of fields (type, weights, classes, ...), "
                         f"got {type(data).__name__}")
    unknown = sorted(str(k) for k in data if k not in _FIELDS)
    if unknown:
        raise _fail(source, unknown[0], f"is not a card field; the fields are {', '.join(_FIELDS)}")
    kind = _choice(data, "type", CARD_TYPES, source, "type")
    if kind != "translate":
        for field in _TRANSLATE_FIELDS:
            if field in data:
                raise _fail(source, field, "is a field of 'translate' models only")
    weights = data.get("weights")
    if not isinstance(weights, str) or not weights or Path(weights).is_absolute() or ".." in Path(weights).parts:
        raise _fail(source, "weights", f"is {weights!r}; give the weights file's name inside {folder}")
    path = Path(folder) / weights
    if not path.is_file():
        raise _fail(source, "weights", f"names {weights!r}, which is not a file in {folder}")
    fmt = _choice(data, "format", WEIGHT_FORMATS, source, "format")
    if kind != "classmap" and "deepliif_model" in data:
        raise _fail(source, "deepliif_model", "is a field of 'classmap' models only (with input.source: deepliif-dapi)")
    if kind == "translate":
        return _translate_card(data, folder, source, path)
    architecture = data.get("architecture")
    if fmt == "state_dict":
        architecture = _choice(data, "architecture", ARCHITECTURES, source, "architecture")
    elif architecture is not None and architecture not in ARCHITECTURES:
        raise _fail(source, "architecture", f"is {architecture!r}; allowed: {', '.join(ARCHITECTURES)}")
    inputs = data.get("input")
    if not isinstance(inputs, Mapping):
        raise _fail(source, "input", f"is {inputs!r}; give a mapping with channel and normalise")
    extra = sorted(str(k) for k in inputs if k not in _INPUT_FIELDS)
    if extra:
        raise _fail(source, f"input.{extra[0]}", f"is not an input field; the fields are {', '.join(_INPUT_FIELDS)}")
    channel = _choice(inputs, "channel", INPUT_CHANNELS, source, "input.channel")
    normalise = _choice(inputs, "normalise", NORMALISATIONS, source, "input.normalise")
    input_source = _choice(inputs, "source", INPUT_SOURCES, source, "input.source", "image")
    if kind == "points" and input_source != "image":
        raise _fail(source, "input.source", f"is {input_source!r}; a 'points' model reads the image itself (image)")
    tile, overlap, pixel_size, name, description = _grid_and_names(
        data, folder, source, 32, "a U-Net of depth 5 needs a multiple of 32")
    if kind == "points":
        return _points_card(data, source, ModelCard(
            type=kind, name=name, weights=path, format=fmt, architecture=architecture, channel=channel,
            normalise=normalise, tile_size=tile, overlap=overlap, pixel_size=pixel_size, class_names=(),
            positive_classes=(), description=description, card_file=Path(source)))
    classes = data.get("classes")
    if (not isinstance(classes, list) or len(classes) < 2 or not all(isinstance(c, str) and c for c in classes)
            or len(set(classes)) != len(classes)):
        raise _fail(source, "classes", f"is {classes!r}; give a list of at least two distinct names, "
                                       "background first, in the order of the network's output channels")
    positive = data.get("positive", classes[1:])
    if not isinstance(positive, list) or not all(p in classes[1:] for p in positive):
        raise _fail(source, "positive", f"is {positive!r}; give a list of class names from {classes[1:]}")
    for field in ("min_distance_um", "threshold"):
        if field in data:
            raise _fail(source, field, "is a field of 'points' models only")
    return ModelCard(type=kind, name=name, weights=path, format=fmt, architecture=architecture,
                     channel=channel, normalise=normalise, tile_size=tile, overlap=overlap,
                     pixel_size=pixel_size, class_names=tuple(classes),
                     positive_classes=tuple(classes.index(p) for p in positive), description=description,
                     card_file=Path(source), input_source=input_source,
                     deepliif_model=_dapi_model(data, folder, source, input_source))


def _load_yaml(path: Path) -> Any:
    import yaml

    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ModelError(f"{path} is not valid YAML: {exc}") from exc


def _points_card(data: Mapping[str, Any], source: str, common: ModelCard) -> ModelCard:
    """``common`` (the fields every type shares) completed with a ``points`` card's heat-map
    classes, positive classes, distance and threshold."""
    classes = data.get("classes")
    if (not isinstance(classes, list) or not 1 <= len(classes) <= MAX_POINT_CLASSES
            or not all(isinstance(c, str) and c for c in classes) or len(set(classes)) != len(classes)):
        raise _fail(source, "classes", f"is {classes!r}; give 1 to {MAX_POINT_CLASSES} distinct names, one per heat map "
                                       "in the order of the network's output channels (no background)")
    positive = data.get("positive")
    if not isinstance(positive, list) or not all(p in classes for p in positive):
        raise _fail(source, "positive", f"is {positive!r}; give a list of class names from {classes}")
    distance = data.get("min_distance_um")
    if isinstance(distance, bool) or not isinstance(distance, (int, float)) or not 0 < distance < 1000:
        raise _fail(source, "min_distance_um", f"is {distance!r}; give the smallest distance between two nuclei in µm "
                                               "(e.g. 4)")
    threshold = data.get("threshold")
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 < threshold < 1:
        raise _fail(source, "threshold", f"is {threshold!r}; give the confidence a point needs, between 0 and 1")
    return replace(common, class_names=tuple(classes), positive_classes=tuple(classes.index(p) for p in positive),
                   min_distance_um=float(distance), threshold=float(threshold))


def _translate_card(data: Mapping[str, Any], folder: Path, source: str, weights: Path) -> ModelCard:
    """A ``translate`` card: a CycleGAN generator state dict, its input scaling, tile grid and
    segmenter, and the DAB threshold that classifies nuclei."""
    fmt = _choice(data, "format", ("state_dict",), source, "format")
    architecture = _choice(data, "architecture", TRANSLATE_ARCHITECTURES, source, "architecture")
    inputs = data.get("input")
    if not isinstance(inputs, Mapping) or set(inputs) != {"normalise"}:
        raise _fail(source, "input", f"is {inputs!r}; give a mapping with normalise only (the generator reads RGB)")
    normalise = _choice(inputs, "normalise", TRANSLATE_NORMALISATIONS, source, "input.normalise")
    tile, overlap, pixel_size, name, description = _grid_and_names(
        data, folder, source, 4, "the generator's two stride-2 steps need a multiple of 4")
    for field in ("classes", "positive", "min_distance_um", "threshold"):
        if field in data:
            raise _fail(source, field, "is not a field of 'translate' models (nuclei are classified by DAB)")
    segmenter = _choice(data, "segmenter", SEGMENTERS, source, "segmenter")
    values = {}
    for field, default in (("dab_threshold", 0.2), ("nucleus_threshold", None)):
        value = data.get(field, default)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 10):
            raise _fail(source, field, f"is {value!r}; give an optical density (OD, e.g. 0.2)")
        values[field] = None if value is None else float(value)
    return ModelCard(type="translate", name=name, weights=weights, format=fmt, architecture=architecture,
                     channel="rgb", normalise=normalise, tile_size=tile, overlap=overlap,
                     pixel_size=pixel_size, class_names=(), positive_classes=(), description=description,
                     card_file=Path(source), segmenter=segmenter,
                     segmenter_model=_segmenter_model(data, folder, source, segmenter),
                     nucleus_diameter_um=_nucleus_diameter(data, source, segmenter),
                     **_cellpose_settings(data, source, segmenter), **values)


def _nucleus_diameter(data: Mapping[str, Any], source: str, segmenter: str) -> float | None:
    """The ``cellpose`` segmenter's nucleus diameter in µm (None: the Cellpose file's own)."""
    value = data.get("nucleus_diameter_um")
    if value is None:
        return None
    if segmenter != "cellpose":
        raise _fail(source, "nucleus_diameter_um", f"is a setting of the 'cellpose' segmenter, not '{segmenter}'")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1000:
        raise _fail(source, "nucleus_diameter_um", f"is {value!r}; give the mean nucleus diameter in µm (e.g. 7)")
    return float(value)


def _cellpose_settings(data: Mapping[str, Any], source: str, segmenter: str) -> dict[str, float | None]:
    """The ``cellpose`` segmenter's flow and cell-probability thresholds (Cellpose's defaults
    when absent); None for the other segmenters."""
    settings: dict[str, float | None] = {}
    for field, default in CELLPOSE_SETTINGS.items():
        value = data.get(field)
        if segmenter != "cellpose":
            if value is not None:
                raise _fail(source, field, f"is a setting of the 'cellpose' segmenter, not '{segmenter}'")
            settings[field] = None
            continue
        value = default if value is None else value
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not -10 <= value <= 10:
            raise _fail(source, field, f"is {value!r}; give a number (Cellpose's default is {default})")
        settings[field] = float(value)
    return settings


def _segmenter_model(data: Mapping[str, Any], folder: Path, source: str, segmenter: str) -> Path | None:
    """The DeepLIIF model folder of ``segmenter: deepliif`` (relative to the card's folder or
    absolute, in the release layout) or the Cellpose model file of ``segmenter: cellpose``;
    None for the ``stain`` segmenter, which takes none."""
    value = data.get("segmenter_model")
    if segmenter == "cellpose":
        return _cellpose_file(value, folder, source, "nucleus_threshold" in data)
    if segmenter != "deepliif":
        if value is not None:
            raise _fail(source, "segmenter_model", f"is given, but segmenter '{segmenter}' takes no model; "
                                                   "remove it or set segmenter: deepliif")
        return None
    if "nucleus_threshold" in data:
        raise _fail(source, "nucleus_threshold", "is a setting of the 'stain' segmenter; the deepliif segmenter's "
                                                 "nuclei are those of its Seg")
    return _deepliif_folder(value, folder, source, "segmenter_model")


def _dapi_model(data: Mapping[str, Any], folder: Path, source: str, input_source: str) -> Path | None:
    """The DeepLIIF model folder of ``input.source: deepliif-dapi``; None for ``image``."""
    value = data.get("deepliif_model")
    if input_source != "deepliif-dapi":
        if value is not None:
            raise _fail(source, "deepliif_model", f"is given, but input.source is '{input_source}'; remove it or "
                                                  "set input.source: deepliif-dapi")
        return None
    return _deepliif_folder(value, folder, source, "deepliif_model")


def _deepliif_folder(value: Any, folder: Path, source: str, field: str) -> Path:
    """The DeepLIIF model a card's ``field`` names: a folder (relative to the card's
    ``folder`` or absolute), else a model index or registered name, in the release layout.

    Raises
    ------
    ModelError
        Naming ``field``: not a text, or no DeepLIIF model folder (no ``train_opt.txt``) by
        that name.
    """
    if not isinstance(value, str) or not value:
        raise _fail(source, field, f"is {value!r}; give the DeepLIIF model folder (release layout, with "
                                   f"{OPTIONS_FILE}), relative to {folder} or absolute, or a model name")
    path = Path(folder) / Path(value).expanduser()
    if not path.is_dir():
        try:
            path = resolve_model(value)
        except ModelError as exc:
            raise _fail(source, field, f"names {value!r}, which is not a DeepLIIF model folder (no folder {path}) "
                                       f"nor an installed model ({exc})") from exc
    if not (path / OPTIONS_FILE).is_file():
        raise _fail(source, field, f"names {value!r}, which is not a DeepLIIF model folder (no {OPTIONS_FILE} in "
                                   f"{path})")
    return path


def _cellpose_file(value: Any, folder: Path, source: str, has_threshold: bool) -> Path:
    """The Cellpose model file of ``segmenter: cellpose`` (relative to the card's folder or
    absolute); never downloaded, so it must be there."""
    if has_threshold:
        raise _fail(source, "nucleus_threshold", "is a setting of the 'stain' segmenter; the cellpose segmenter's "
                                                 "nuclei are Cellpose's masks")
    if not isinstance(value, str) or not value:
        raise _fail(source, "segmenter_model", f"is {value!r}; give the Cellpose model file (cellpose's cyto3 from "
                                               f"~/.cellpose/models, or one you trained), relative to {folder} or "
                                               "absolute")
    path = Path(folder) / Path(value).expanduser()
    if not path.is_file():
        raise _fail(source, "segmenter_model", f"names {value!r}, which is not a file ({path}); put the Cellpose model "
                                               "file there (it is never downloaded) or give its path")
    return path


def read_card(folder: str | Path, model_type: str | None = None) -> ModelCard:
    """Read and validate ``FOLDER/model.yaml``, else the card a bioimage.io ``rdf.yaml`` maps
    onto (:func:`~napari_deepliif.models.bioimageio.card_from_rdf`); see :func:`check_card`.

    Raises
    ------
    ModelError
        The file is missing, not YAML, or a field is wrong (named in the message), or the
        card's type is not ``model_type`` (when given).
    """
    folder = Path(folder)
    path = folder / CARD_FILE
    if path.is_file():
        card = check_card(_load_yaml(path), folder)
    else:
        rdf = rdf_file(folder)
        if rdf is None:
            raise ModelError(f"{folder} has no {CARD_FILE}; see docs/model-types.md for the model card")
        card = check_card(card_from_rdf(_load_yaml(rdf), rdf), folder, str(rdf))
    if model_type is not None and card.type != model_type:
        raise ModelError(f"{folder / CARD_FILE} is a '{card.type}' model, not '{model_type}'")
    return card


def folder_model_type(folder: str | Path) -> str:
    """The model type of a folder, in this order: the release layout (``train_opt.txt``) is
    ``deepliif``; else ``model.yaml`` gives its ``type``; else a bioimage.io ``rdf.yaml`` that
    maps onto a supported type gives that type; a folder with none of these is taken for
    ``deepliif`` (whose loader says which files are missing).

    Raises
    ------
    ModelError
        A card without a valid ``type``, or a bioimage.io package that maps onto no type.
    """
    folder = Path(folder)
    card = folder / CARD_FILE
    if (folder / OPTIONS_FILE).is_file():
        return "deepliif"
    if not card.is_file():
        rdf = rdf_file(folder)
        return "deepliif" if rdf is None else str(card_from_rdf(_load_yaml(rdf), rdf)["type"])
    data = _load_yaml(card)
    if not isinstance(data, Mapping):
        raise ModelError(f"{card}: a model card is a mapping of fields (type, weights, classes, ...)")
    return _choice(data, "type", CARD_TYPES, str(card), "type")
