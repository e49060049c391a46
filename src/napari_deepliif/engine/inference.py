"""Tiled DeepLIIF inference: the reference pipeline, batched and streamed.

Per tile (see ``docs/reference-pipeline.md``): skip empty tiles with constant outputs;
resize to the model's ``scale_size`` with PIL bicubic; scale to [-1, 1]; run G1..G4 on the
IHC tensor, G51 on it and G5k on G(k-1)'s tensor output; Seg = sum of w_k * G5k; convert
``(t + 1) / 2 * 255`` to uint8 by truncation; resize back. Many tiles go through each net
at once; every norm layer keeps each tile's own statistics (see :mod:`.networks`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, MutableMapping, Sequence
from typing import Any

import numpy as np
from PIL import Image

from napari_deepliif.constants import (
    EMPTY_TILE_COLOURS,
    EMPTY_TILE_VARIANCE,
    MODALITIES,
    SEG,
)
from napari_deepliif.engine.base import Offset, fill_empty
from napari_deepliif.engine.tiling import Chunk, Tile, TileGrid
from napari_deepliif.errors import DeepLIIFError
from napari_deepliif.models.loader import DeepLIIFModel
from napari_deepliif.progress import CancelCheck, ProgressCallback, check_cancel

log = logging.getLogger(__name__)

def modality_names(model: DeepLIIFModel) -> tuple[str, ...]:
    """Output names of G1..Gn: the model's ``modalities_names``, else Hema, DAPI, Lap2, Marker."""
    n = model.options.modalities_no
    if model.options.modalities_names:
        return tuple(model.options.modalities_names)
    return MODALITIES[:n] if n <= len(MODALITIES) else tuple(f"mod{i}" for i in range(1, n + 1))


def plan_nets(model: DeepLIIFModel, outputs: Iterable[str]) -> tuple[list[int], list[int]]:
    """Which translation nets (1-based) and segmentation nets (1-based k of G5k) to run.

    Segmentation nets whose seg weight is 0 are skipped; G5k (k >= 2) needs G(k-1)'s output.
    """
    names = modality_names(model)
    wanted = set(outputs)
    unknown = wanted - set(names) - {SEG}
    if unknown:
        raise DeepLIIFError(f"unknown outputs {sorted(unknown)}; this model gives {', '.join((*names, SEG))}")
    translation = {i + 1 for i, n in enumerate(names) if n in wanted}
    segmentation: list[int] = []
    if SEG in wanted:
        segmentation = [k + 1 for k, w in enumerate(model.options.seg_weights) if w != 0]
        translation |= {k - 1 for k in segmentation if k >= 2}
    return sorted(translation), segmentation


def is_empty_tile(tile: np.ndarray) -> bool:
    """The reference's blank-tile rule: grey levels (0 and 255 ignored) vary by less than 9."""
    grey = np.asarray(Image.fromarray(tile).convert("L"))
    values = grey[(grey != 0) & (grey != 255)]
    return values.size == 0 or float(np.var(values, dtype=np.float64)) < EMPTY_TILE_VARIANCE


def _resize(tile: np.ndarray, size: int) -> np.ndarray:
    if tile.shape[0] == size and tile.shape[1] == size:
        return tile
    return np.asarray(Image.fromarray(tile).resize((size, size), Image.Resampling.BICUBIC))


class TileRunner:
    """Runs the needed nets on batches of uint8 tiles and returns uint8 outputs per tile."""

    def __init__(self, model: DeepLIIFModel, outputs: Iterable[str], precision: str = "fp32"):
        import torch

        self.torch = torch
        self.model = model
        self.outputs = tuple(outputs)
        self.precision = precision
        self.names = modality_names(model)
        self.translation, self.segmentation = plan_nets(model, self.outputs)
        model.preload(tuple(f"G{i}" for i in self.translation) + tuple(f"G5{k}" for k in self.segmentation))

    def __call__(self, tiles: list[np.ndarray]) -> list[dict[str, np.ndarray]]:
        """Run the nets on ``tiles`` (each S x S x 3 uint8) and return S x S x 3 uint8 outputs."""
        from napari_deepliif.engine.devices import precision_context

        torch = self.torch
        size = tiles[0].shape[0]
        scale = self.model.options.scale_size
        batch = np.stack([_resize(t, scale) for t in tiles])
        device = self.model.device
        with torch.inference_mode(), precision_context(device, self.precision):
            x = torch.from_numpy(batch).to(device).permute(0, 3, 1, 2).float().div(255)
            x = x.sub(0.5).div(0.5).contiguous(memory_format=torch.channels_last)
            results: dict[str, Any] = {}
            translated: dict[int, Any] = {}
            for i in self.translation:
                translated[i] = self.model.net(f"G{i}")(x)
                if self.names[i - 1] in self.outputs:
                    results[self.names[i - 1]] = translated[i]
            if self.segmentation:
                seg = None
                for k in self.segmentation:
                    inp = x if k == 1 else translated[k - 1]
                    term = self.model.net(f"G5{k}")(inp).float() * self.model.options.seg_weights[k - 1]
                    seg = term if seg is None else seg + term
                results[SEG] = seg
            images = {
                name: ((t.float() + 1) / 2 * 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
                for name, t in results.items()
            }
        return [{name: _resize(images[name][j], size) for name in self.outputs} for j in range(len(tiles))]


def run_tiles(
    image: Any,
    grid: TileGrid,
    runner: Callable[[list[np.ndarray]], list[dict[str, np.ndarray]]],
    outputs: Iterable[str],
    out: MutableMapping[str, Any],
    *,
    batch_size: int = 1,
    progress: ProgressCallback | None = None,
    cancel: CancelCheck | Any | None = None,
    tiles: Sequence[Tile] | None = None,
    skip_empty: bool = True,
) -> None:
    """Read, run and write every tile of ``grid`` in order, ``batch_size`` tiles at a time.

    ``out`` maps each output name to an H x W x 3 uint8 array-like (numpy, zarr, ...) that
    receives the stitched result. Empty tiles get the reference's constant colours.
    Raises :class:`Cancelled` when ``cancel`` is set between batches. ``tiles``: run only
    these tiles of ``grid`` (e.g. one chunk of a whole slide), in the order given.
    ``skip_empty``: apply the reference's blank-tile rule (:func:`is_empty_tile`).
    """
    outputs = tuple(outputs)
    tiles = grid.tiles() if tiles is None else list(tiles)
    total = len(tiles)
    if progress:
        progress(0, total)
    for start in range(0, total, max(1, batch_size)):
        check_cancel(cancel, f"cancelled after {start} of {total} tiles")
        batch: list[Tile] = tiles[start : start + batch_size]
        pixels = [grid.read(image, t) for t in batch]
        full = [j for j, p in enumerate(pixels) if not (skip_empty and is_empty_tile(p))]
        results: dict[int, Mapping[str, np.ndarray]] = {}
        if full:
            for j, res in zip(full, runner([pixels[j] for j in full])):
                results[j] = res
        for j, tile in enumerate(batch):
            y0, y1, x0, x1 = tile.write
            if y1 <= y0 or x1 <= x0:
                continue
            for name in outputs:
                if j in results:
                    out[name][y0:y1, x0:x1] = results[j][name][y0 - tile.y : y1 - tile.y, x0 - tile.x : x1 - tile.x]
                else:
                    out[name][y0:y1, x0:x1] = np.array(EMPTY_TILE_COLOURS.get(name, (0, 0, 0)), np.uint8)
        if progress:
            progress(min(start + batch_size, total), total)


def run_chunk(
    source: Any,
    grid: TileGrid,
    chunk: Chunk,
    runner: Callable[[list[np.ndarray]], list[dict[str, np.ndarray]]],
    names: tuple[str, ...],
    out: Mapping[str, np.ndarray],
    *,
    batch_size: int = 1,
    include: Callable[[int, int, int, int], bool] | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelCheck | Any | None = None,
    skip_empty: bool = True,
) -> tuple[int, int]:
    """Run the tiles of ``chunk`` (of ``grid``, the whole image's) into ``out``, the chunk's
    buffers; tiles ``include(y0, y1, x0, x1)`` rejects get the empty-tile colours.

    Returns
    -------
    (int, int)
        Tiles run and tiles skipped by ``include``.
    """
    size = grid.tile_size
    keep = [t for t in chunk.tiles if include is None or include(t.y, t.y + size, t.x, t.x + size)]
    y0, _, x0, _ = chunk.box
    for t in set(chunk.tiles) - set(keep):
        ty0, ty1, tx0, tx1 = t.write
        fill_empty(out, names, (ty0 - y0, ty1 - y0, tx0 - x0, tx1 - x0))
    run_tiles(source, grid, runner, names, {name: Offset(out[name], y0, x0) for name in names},
              batch_size=batch_size, tiles=keep, progress=progress, cancel=cancel, skip_empty=skip_empty)
    return len(keep), len(chunk.tiles) - len(keep)
