"""napari reader for the OME-Zarr stores of whole-slide runs: lazy multiscale layers.

Each output becomes an RGB image layer and the cells a labels layer, all multiscale dask
arrays read from the zarr levels on demand (napari loads only what is on screen). No napari
import: the reader returns napari's layer-data tuples.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from napari_deepliif.slides import omezarr

LayerData = tuple[Any, dict, str]


def is_result_store(path: str | Path) -> bool:
    """Whether ``path`` is a store written by :func:`slides.stream.infer_slide`."""
    return (Path(path) / omezarr.RECORD).is_file()


def pyramid(group: Any) -> list[Any]:
    """The levels of an NGFF group as dask arrays, RGB ones as (y, x, c)."""
    import dask.array as da

    paths = [d["path"] for d in group.attrs["multiscales"][0]["datasets"]]
    levels = [da.from_zarr(group[p]) for p in paths]
    return [da.moveaxis(a, 0, -1) if a.ndim == 3 else a for a in levels]


def read_store(path: str | Path) -> list[LayerData]:
    """Layer data for every output and the cells of a result store.

    Layers are scaled in µm when the pixel size is known (else in pixels of the image
    scored) and translated to the scored region's origin.
    """
    import zarr

    root = zarr.open_group(str(path), mode="r")
    settings = root.attrs["napari_deepliif"]
    step = (settings["mpp"] or 1.0)
    scale = (step, step)
    region = settings.get("region")
    translate = (region[1] * step, region[0] * step) if region else (0.0, 0.0)
    stem = Path(path).name.split(".")[0]
    layers: list[LayerData] = []
    for name in settings["outputs"]:
        meta = {"name": f"{stem} {name}", "rgb": True, "multiscale": True, "scale": scale,
                "translate": translate, "visible": name == "Seg", "metadata": {"napari_deepliif": settings}}
        layers.append((pyramid(root[name]), meta, "image"))
    labels = f"Seg/labels/{omezarr.LABELS}"
    if labels in root:
        meta = {"name": f"{stem} cells", "multiscale": True, "scale": scale, "translate": translate}
        layers.append((pyramid(root[labels]), meta, "labels"))
    return layers


def get_reader(path: str | list[str]) -> Callable[[str], list[LayerData]] | None:
    """npe2 reader contribution: :func:`read_store` for result stores, else None."""
    if isinstance(path, list):
        if len(path) != 1:
            return None
        path = path[0]
    return read_store if is_result_store(path) else None
