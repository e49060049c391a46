"""bioimage.io model packages (``rdf.yaml`` / ``bioimageio.yaml``, format 0.5) read as model
cards, where they map onto a supported type.

A package maps onto the ``classmap`` type when it has one input with one channel and two space
axes, one output whose channels are the classes (named, background first), TorchScript weights
or a segmentation-models-pytorch ``Unet`` with a ``resnet34`` encoder as state dict, a
preprocessing this package can do per tile, and a pixel size (the space axes' ``scale`` in
micrometres). Anything else is refused naming the field; a model card (``model.yaml``) can
then describe the same weights. See ``docs/model-types.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from napari_deepliif.errors import ModelError

#: Package description files, in the order they are looked for.
RDF_FILES: tuple[str, ...] = ("rdf.yaml", "bioimageio.yaml")
#: Tile edge chosen for inputs of variable size (the smallest allowed size from this up).
PREFERRED_TILE = 256
#: Output postprocessing that keeps the order of the channels' values (argmax unchanged).
_ORDER_KEEPING = ("softmax", "sigmoid", "ensure_dtype")


def rdf_file(folder: Path) -> Path | None:
    """The package description in ``folder``, or None."""
    return next((folder / name for name in RDF_FILES if (folder / name).is_file()), None)


def _fail(source: Path, field: str, message: str) -> ModelError:
    return ModelError(f"{source}: field '{field}' {message}; describe the model with a model.yaml card instead "
                      "(docs/model-types.md)")


def _space_axes(axes: Any, source: Path, field: str) -> list[Mapping]:
    if not isinstance(axes, list) or not all(isinstance(a, Mapping) for a in axes):
        raise _fail(source, field, "is not a list of axes (format 0.5)")
    kinds = [a.get("type") for a in axes]
    if sorted(kinds) != sorted(["batch", "channel", "space", "space"]):
        raise _fail(source, field, f"has axes {kinds}; a 2-D model has batch, channel and two space axes")
    return [a for a in axes if a.get("type") == "space"]


def _tile_size(size: Any, source: Path, field: str) -> int:
    if isinstance(size, int):
        return size
    if isinstance(size, Mapping) and isinstance(size.get("min"), int) and isinstance(size.get("step"), int):
        low, step = size["min"], max(size["step"], 1)
        for n in range(4096):
            tile = low + n * step
            if tile >= PREFERRED_TILE and tile % 32 == 0:
                return tile
    raise _fail(source, field, f"is {size!r}; give a fixed size or min and step")


def _normalise(steps: Any, source: Path) -> str:
    field = "inputs[0].preprocessing"
    ops = [s for s in (steps or []) if isinstance(s, Mapping) and s.get("id") != "ensure_dtype"]
    if len(ops) != 1:
        raise _fail(source, field, f"has {len(ops)} steps; one of zero_mean_unit_variance, scale_range "
                                   "(0-100 percentiles) or scale_linear (gain 1/255) is supported")
    op, kwargs = ops[0].get("id"), ops[0].get("kwargs") or {}
    if op == "zero_mean_unit_variance" and "mean" not in kwargs:
        return "per-tile-zscore"
    if op == "scale_range" and kwargs.get("min_percentile", 0) == 0 and kwargs.get("max_percentile", 100) == 100:
        return "per-tile-minmax"
    if op == "scale_linear" and abs(float(kwargs.get("gain", 0)) - 1 / 255) < 1e-6 and not kwargs.get("offset"):
        return "scale-0-1"
    raise _fail(source, field, f"is {op!r} with {dict(kwargs)}; not one this package does per tile")


def _weights(weights: Any, source: Path) -> dict:
    if not isinstance(weights, Mapping):
        raise _fail(source, "weights", "is missing")
    script = weights.get("torchscript")
    if isinstance(script, Mapping):
        return {"weights": _local(script.get("source"), source, "weights.torchscript.source"), "format": "torchscript"}
    state = weights.get("pytorch_state_dict")
    if isinstance(state, Mapping):
        arch = state.get("architecture") or {}
        kwargs = arch.get("kwargs") or {}
        if arch.get("callable") == "Unet" and kwargs.get("encoder_name") == "resnet34":
            return {"weights": _local(state.get("source"), source, "weights.pytorch_state_dict.source"),
                    "format": "state_dict", "architecture": "unet-resnet34"}
        raise _fail(source, "weights.pytorch_state_dict.architecture",
                    f"is {arch.get('callable')!r} with {dict(kwargs)}; only segmentation-models-pytorch's Unet "
                    "with encoder_name resnet34 loads without its code")
    raise _fail(source, "weights", f"has {sorted(weights)}; torchscript or pytorch_state_dict is needed")


def _local(name: Any, source: Path, field: str) -> str:
    if not isinstance(name, str) or "://" in name:
        raise _fail(source, field, f"is {name!r}; the weights file must lie in the package folder")
    return name


def card_from_rdf(data: Any, source: Path) -> dict:
    """The model card (a mapping for :func:`~napari_deepliif.models.card.check_card`) that a
    bioimage.io model description maps onto.

    Raises
    ------
    ModelError
        Naming the description's field that does not map onto a supported type.
    """
    if not isinstance(data, Mapping) or data.get("type") != "model":
        raise _fail(source, "type", "is not 'model'")
    version = str(data.get("format_version", ""))
    if not version.startswith("0.5"):
        raise _fail(source, "format_version", f"is {version!r}; format 0.5 is read (update older packages "
                                              "with bioimageio.spec)")
    inputs, outputs = data.get("inputs"), data.get("outputs")
    if not isinstance(inputs, list) or len(inputs) != 1 or not isinstance(inputs[0], Mapping):
        raise _fail(source, "inputs", "must hold exactly one input")
    if not isinstance(outputs, list) or len(outputs) != 1 or not isinstance(outputs[0], Mapping):
        raise _fail(source, "outputs", "must hold exactly one output")
    space_in = _space_axes(inputs[0].get("axes"), source, "inputs[0].axes")
    channel_in = next(a for a in inputs[0]["axes"] if a.get("type") == "channel")
    if len(channel_in.get("channel_names") or []) != 1:
        raise _fail(source, "inputs[0].axes", "has a channel axis of more than one channel; one nuclear stain "
                                              "channel is read")
    tiles = {_tile_size(a.get("size"), source, "inputs[0].axes.size") for a in space_in}
    if len(tiles) != 1:
        raise _fail(source, "inputs[0].axes.size", f"gives tiles of {sorted(tiles)}; square tiles are run")
    scales = {(a.get("unit"), float(a.get("scale", 1.0))) for a in space_in}
    unit, pixel_size = next(iter(scales))
    if len(scales) != 1 or unit != "micrometer":
        raise _fail(source, "inputs[0].axes.scale", f"gives {sorted(scales, key=str)}; the pixel size in "
                                                    "micrometer (unit and scale of both space axes) is needed")
    space_out = _space_axes(outputs[0].get("axes"), source, "outputs[0].axes")
    channel_out = next(a for a in outputs[0]["axes"] if a.get("type") == "channel")
    classes = channel_out.get("channel_names")
    post = [s.get("id") for s in outputs[0].get("postprocessing") or [] if isinstance(s, Mapping)]
    changing = [p for p in post if p not in _ORDER_KEEPING]
    if changing:
        raise _fail(source, "outputs[0].postprocessing", f"has {changing}; a class map is the argmax of the "
                                                         "output's channels")
    halo = max(int(a.get("halo", 0)) for a in space_out)
    return {"type": "classmap", "name": str(data.get("name", source.parent.name)),
            "description": str(data.get("description", "")), **_weights(data.get("weights"), source),
            "input": {"channel": "grey", "normalise": _normalise(inputs[0].get("preprocessing"), source)},
            "tile_size": tiles.pop(), "overlap": 2 * halo, "pixel_size": pixel_size, "classes": classes}
