"""The one engine API every front end (widget, server, CLI, scripts) calls.

>>> engine = Engine.load("deepliif-latest")            # or a model directory
>>> images = engine.infer(rgb, resolution="40x")         # {"Hema": ..., "Seg": ...}
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .constants import SEG
from .errors import DeepLIIFError
from .image_input import check_rgb
from .inference import CancelCheck, ProgressCallback, TileRunner, modality_names, run_tiles
from .resolution import resolve_resolution, tile_size_for
from .tiling import ArrayRegion, TileGrid

log = logging.getLogger(__name__)

#: ``outputs="score"``: what scoring needs (the Marker for marker values, and Seg).
SCORE_OUTPUTS = ("Marker", SEG)


@dataclass
class Engine:
    """A loaded DeepLIIF model on a device, with the settings inference runs with.

    Build one with :meth:`Engine.load`; loaded networks are cached and shared.
    """

    model: Any
    device: str
    precision: str = "fp32"
    batch_size: int = 1

    @classmethod
    def load(
        cls,
        model: str | Path = "deepliif-latest",
        *,
        device: str = "auto",
        precision: str = "fp32",
        batch_size: int | None = None,
    ) -> "Engine":
        """Open a model by index name (``deepliif-latest``, a registered name) or directory.

        Parameters
        ----------
        model : str or Path
            A model index name or a directory in the release layout.
        device : str
            ``auto`` (cuda, then mps, then cpu), ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
        precision : str
            ``fp32`` (matches the reference) or ``fast`` (bf16 on CPUs with bf16 kernels,
            fp16 on GPUs; see ``docs/precision.md`` for how far it departs).
        batch_size : int, optional
            Tiles per batch; default by device (1 on CPU, 8 on CUDA, 4 on MPS).
        """
        from .devices import DEFAULT_BATCH_SIZE, PRECISIONS, resolve_device
        from .model_index import resolve_model
        from .models import load_model

        if precision not in PRECISIONS:
            raise DeepLIIFError(f"unknown precision '{precision}' (choose fp32 or fast)")
        dev = resolve_device(device)
        loaded = load_model(resolve_model(model), device=dev)
        size = batch_size or DEFAULT_BATCH_SIZE[dev.split(":")[0]]
        if size < 1:
            raise DeepLIIFError(f"batch size must be at least 1, got {size}")
        return cls(model=loaded, device=dev, precision=precision, batch_size=size)

    @property
    def name(self) -> str:
        """Engine name written into every output (``deepliif``)."""
        return "deepliif"

    @property
    def outputs(self) -> tuple[str, ...]:
        """Every output this model can give: its modalities, then Seg."""
        return (*modality_names(self.model), SEG)

    def resolve_outputs(self, outputs: str | Iterable[str] = "all") -> tuple[str, ...]:
        """``all`` -> every output, ``score`` -> Marker and Seg, else the names given."""
        if outputs == "all":
            return self.outputs
        if outputs == "score":
            return SCORE_OUTPUTS
        names = (outputs,) if isinstance(outputs, str) else tuple(outputs)
        return tuple(dict.fromkeys(names))

    def infer(
        self,
        image: Any,
        *,
        resolution: str | None = None,
        mpp: float | None = None,
        outputs: str | Iterable[str] = "all",
        region: tuple[int, int, int, int] | None = None,
        out: MutableMapping[str, Any] | None = None,
        progress: ProgressCallback | None = None,
        cancel: CancelCheck | Any | None = None,
    ) -> MutableMapping[str, Any]:
        """Run the model on an RGB image (or a region of one), tile by tile.

        Parameters
        ----------
        image : array-like
            H x W x 3 (or x 4) uint8: numpy, zarr, dask, ... Only the tiles are read.
        resolution : {'40x', '20x', '10x'}, optional
            Magnification; picks the tile size (512/256/128). Default from ``mpp``, else 40x.
        mpp : float, optional
            Pixel size in µm/px; the nearest of 0.25/0.5/1.0 sets the resolution.
        outputs : 'all', 'score' or names
            ``all``: every modality and Seg; ``score``: Marker and Seg only.
        region : (x, y, width, height), optional
            Pixel rectangle of ``image`` to process; outputs have the region's size.
        out : mapping, optional
            Output name -> H x W x 3 uint8 array-like to write into (e.g. zarr arrays), so
            memory is bounded by the batch; by default numpy arrays are returned.
        progress : callable(done, total), optional
            Called with tiles done and tiles in all, after each batch.
        cancel : callable() -> bool or threading.Event, optional
            Checked between batches; raises :class:`~napari_deepliif.errors.Cancelled`.
            Arrays created here are then dropped; arrays passed in ``out`` keep what was
            written so far.

        Returns
        -------
        dict
            Output name -> H x W x 3 uint8 array (``out`` itself when given).
        """
        source = check_rgb(image)
        if region is not None:
            source = check_rgb(_region(source, region), "region")
        names = self.resolve_outputs(outputs)
        height, width = int(source.shape[0]), int(source.shape[1])
        grid = TileGrid(height, width, tile_size_for(resolve_resolution(resolution, mpp)))
        runner = TileRunner(self.model, names, self.precision)
        result: MutableMapping[str, Any] = out if out is not None else {}
        for name in names:
            if name not in result:
                result[name] = np.zeros((height, width, 3), np.uint8)
            elif tuple(result[name].shape) != (height, width, 3):
                raise DeepLIIFError(f"out['{name}'] has shape {tuple(result[name].shape)}, expected {(height, width, 3)}")
        run_tiles(source, grid, runner, names, result, batch_size=self.batch_size, progress=progress, cancel=cancel)
        return result


def _region(image: Any, region: tuple[int, int, int, int]) -> ArrayRegion:
    x, y, w, h = (int(v) for v in region)
    height, width = int(image.shape[0]), int(image.shape[1])
    if w <= 0 or h <= 0:
        raise DeepLIIFError(f"region {region} is empty (width and height must be positive)")
    if x < 0 or y < 0 or x + w > width or y + h > height:
        raise DeepLIIFError(f"region {region} (x, y, width, height) lies outside the {width} x {height} image")
    return ArrayRegion(image, x, y, w, h)
