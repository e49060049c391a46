"""JSON of results: numpy values and paths turned into JSON types, NaN refused."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np


def jsonable(value: Any) -> Any:
    """``value`` with numpy scalars/arrays, tuples and Paths turned into JSON types."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (np.ndarray, np.generic, Path)):
        return json_default(value)
    return value


def json_default(value: Any) -> Any:
    """JSON form of the numpy and path values :func:`json.dumps` does not know."""
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def json_bytes(obj: Any, indent: int | None = 2) -> bytes:
    """UTF-8 JSON of ``obj`` with a final newline; ``indent=None`` writes it compact.

    Raises
    ------
    ValueError
        If ``obj`` holds NaN or infinity (not JSON).
    TypeError
        If ``obj`` holds something JSON cannot represent.
    """
    separators = (",", ":") if indent is None else None
    text = json.dumps(obj, indent=indent, separators=separators, ensure_ascii=False,
                      allow_nan=False, default=json_default)
    return (text + "\n").encode("utf-8")
