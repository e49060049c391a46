"""Read a model's ``train_opt.txt`` the way the reference does.

Lines look like ``key: value [default: x]``; the ``[default: ...]`` part is dropped and the
value is a Python literal or a bare string.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from napari_deepliif.constants import PAPER_SEG_WEIGHTS, RELEASED_SEG_WEIGHTS
from napari_deepliif.errors import ModelError
from napari_deepliif.models.registry import OPTIONS_FILE

_DEFAULT_SUFFIX = re.compile(r"\s*\[default:.*\]\s*$")


def _parse_value(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_train_opt(text: str) -> dict[str, Any]:
    """Parse the text of a ``train_opt.txt`` into a dict of option values.

    Parameters
    ----------
    text : str
        Contents of the file.

    Returns
    -------
    dict
        Option name -> value (int, float, bool, list, None or str).
    """
    values: dict[str, Any] = {}
    for line in text.splitlines():
        if ":" not in line or line.strip().startswith("-"):
            continue
        key, _, raw = line.partition(":")
        key = key.strip()
        if not key or " " in key:
            continue
        values[key] = _parse_value(_DEFAULT_SUFFIX.sub("", raw).strip())
    return values


@dataclass(frozen=True)
class ModelOptions:
    """The options of a DeepLIIF model that inference depends on."""

    model: str
    net_g: str
    net_gs: str
    ngf: int
    norm: str
    padding: str
    modalities_no: int
    input_no: int
    scale_size: int
    seg_weights: tuple[float, ...]
    modalities_names: tuple[str, ...] | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


def seg_weights_for(values: dict[str, Any], modalities_no: int) -> tuple[float, ...]:
    """Seg weights (IHC, then one per modality) used by ``deepliif test`` for these options.

    An explicit ``seg_weights`` option wins; otherwise the released layout (4 modalities, no
    ``modalities_names``) gets ``[0.5, 0, 0, 0, 0.5]`` and anything else the paper's weights.
    """
    given = values.get("seg_weights")
    if given not in (None, "None", ""):
        if isinstance(given, str):
            given = [float(x) for x in given.split(",")]
        weights = tuple(float(w) for w in given)
    elif modalities_no == 4 and not values.get("modalities_names"):
        weights = RELEASED_SEG_WEIGHTS
    else:
        weights = PAPER_SEG_WEIGHTS
    if len(weights) != modalities_no + 1:
        raise ModelError(
            f"seg_weights has {len(weights)} values but the model has {modalities_no} modalities "
            f"(expected {modalities_no + 1}: IHC plus one per modality)"
        )
    return weights


def read_model_options(path: str | Path) -> ModelOptions:
    """Read ``train_opt.txt`` from a model directory (or the file itself).

    Raises
    ------
    ModelError
        When the file is missing, unreadable, or lacks what inference needs.
    """
    path = Path(path)
    if path.is_dir():
        path = path / OPTIONS_FILE
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        raise ModelError(
            f"{path} is missing: a DeepLIIF model directory needs train_opt.txt beside its G*.pt files"
        ) from None
    except OSError as exc:
        raise ModelError(f"cannot read {path}: {exc}") from exc
    values = parse_train_opt(text)
    if "modalities_no" in values:
        modalities_no = int(values["modalities_no"])
    elif "targets_no" in values:  # older files count the Seg target too
        modalities_no = int(values["targets_no"]) - 1
    else:
        modalities_no = 4
    names = values.get("modalities_names")
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    try:
        return ModelOptions(
            model=str(values.get("model", "DeepLIIF")),
            net_g=str(values.get("netG", "resnet_9blocks")),
            net_gs=str(values.get("net_gs", "unet_512")),
            ngf=int(values.get("ngf", 64)),
            norm=str(values.get("norm", "batch")),
            padding=str(values.get("padding", "zero")),
            modalities_no=modalities_no,
            input_no=int(values.get("input_no", 1)),
            scale_size=int(values.get("scale_size", 512)),
            seg_weights=seg_weights_for(values, modalities_no),
            modalities_names=tuple(names) if names else None,
            raw=values,
        )
    except (TypeError, ValueError) as exc:
        raise ModelError(f"{path}: unexpected option value ({exc})") from exc
