"""npe2 writer: a labels layer (e.g. the cells layer) as a uint32 TIFF (see napari.yaml)."""

from __future__ import annotations

from typing import Any

from napari_deepliif.io.exports import write_labels_tiff as _write


def write_labels_tiff(path: str, data: Any, meta: dict) -> list[str]:
    """Write a 2-D labels layer's data to ``path`` (zlib-compressed uint32 TIFF); a pyramid's
    full-resolution level (napari turns a pyramid into its coarsest level when it is read as
    one array).

    Returns the paths written (npe2 single-layer writer contract).
    """
    if isinstance(data, (list, tuple)) or hasattr(data, "shapes"):  # napari's MultiScaleData
        data = data[0]
    _write(path, data)
    return [path]
