"""The ``classmap`` model type: a network that gives each pixel a cell class (background
included), from one channel of the image.

Per tile of the card's ``tile_size`` (on the whole image's tile grid, neighbours sharing the
card's ``overlap``; each pixel comes from the tile whose centre part covers it): take the
card's input channel, normalise the tile as the card says, run the network, and keep the
class of highest score (the argmax of the logits is the argmax of their softmax). The
``Classes`` output holds the class index in all three channels; cells are found from it in
:mod:`napari_deepliif.cells.classmap`. See ``docs/model-types.md``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from napari_deepliif.constants import CLASSES
from napari_deepliif.engine.base import EngineBase
from napari_deepliif.engine.inference import run_chunk, run_tiles
from napari_deepliif.engine.tiling import Chunk, TileGrid, tiled_chunks
from napari_deepliif.errors import ModelError
from napari_deepliif.models.card import CARD_FILE, ModelCard, read_card
from napari_deepliif.progress import CancelCheck, ProgressCallback

log = logging.getLogger(__name__)

#: Channel index of each ``input.channel`` of the card (``grey``: the mean of the three).
_CHANNEL_INDEX = {"red": 0, "green": 1, "blue": 2}
#: Keeps a flat tile's normalisation finite.
_EPSILON = 1e-6


def tile_input(tiles: np.ndarray, channel: str, normalise: str) -> np.ndarray:
    """The network input of a batch of tiles, as the card says.

    Parameters
    ----------
    tiles : ndarray, shape (N, S, S, 3) uint8, or (N, S, S) uint8 or uint16
        RGB tiles, or tiles of a one-channel image (taken as they are: ``channel`` applies
        to RGB only).
    channel : {'grey', 'red', 'green', 'blue'}
    normalise : {'per-tile-zscore', 'per-tile-minmax', 'scale-0-1'}
        Zero mean and unit standard deviation per tile, 0..1 between each tile's own minimum
        and maximum, or values / the dtype's maximum (255, or 65535 for 16-bit).

    Returns
    -------
    ndarray, shape (N, 1, S, S), float32
    """
    data = tiles.astype(np.float32)
    if tiles.ndim == 3:
        x = data
    else:
        x = data.mean(axis=3) if channel == "grey" else data[..., _CHANNEL_INDEX[channel]]
    x = x[:, None]
    if normalise == "per-tile-zscore":
        mean = x.mean(axis=(1, 2, 3), keepdims=True)
        std = x.std(axis=(1, 2, 3), keepdims=True)
        return (x - mean) / (std + _EPSILON)
    if normalise == "per-tile-minmax":
        low = x.min(axis=(1, 2, 3), keepdims=True)
        high = x.max(axis=(1, 2, 3), keepdims=True)
        return (x - low) / (high - low + _EPSILON)
    return x / np.float32(np.iinfo(tiles.dtype).max)


@lru_cache(maxsize=2)
def _network(path: str, fmt: str, architecture: str | None, classes: int, tile: int, device: str,
             stamp: tuple[int, int]) -> Any:
    """The network of a weights file on ``device`` (cached while the file is unchanged)."""
    import torch

    if fmt == "torchscript":
        try:
            net = torch.jit.load(path, map_location=device)
        except (RuntimeError, ValueError) as exc:
            raise ModelError(f"{path} is not a TorchScript file ({exc.__class__.__name__}: {str(exc)[:200]}); "
                             "if it is a state dict, set 'format: state_dict' in the card") from exc
        net.eval()
        _check_torchscript(net, path, classes, tile, device)
        return net
    from napari_deepliif.engine.unet_resnet import load_unet_resnet34

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, ValueError, EOFError) as exc:
        raise ModelError(f"{path} cannot be read as a state dict ({exc.__class__.__name__}: {str(exc)[:200]}); "
                         "if it is TorchScript, set 'format: torchscript' in the card") from exc
    if not isinstance(state, Mapping):
        raise ModelError(f"{path} holds a {type(state).__name__}, not a state dict; if it is TorchScript, "
                         "set 'format: torchscript' in the card")
    return load_unet_resnet34(state, 1, classes, path).to(device)


def _check_torchscript(net: Any, path: str, classes: int, tile: int, device: str) -> None:
    """Raise :class:`ModelError` unless ``net`` maps a 1 x 1 x tile x tile input to
    1 x classes x tile x tile."""
    import torch

    with torch.inference_mode():
        try:
            out = net(torch.zeros(1, 1, tile, tile, device=device))
        except RuntimeError as exc:
            raise ModelError(f"{path}: the TorchScript model fails on a 1 x 1 x {tile} x {tile} input "
                             f"(one channel, tile_size of the card): {str(exc)[:300]}") from exc
    shape = tuple(getattr(out, "shape", ()))
    if shape != (1, classes, tile, tile):
        raise ModelError(f"{path}: the TorchScript model gives {shape} for a 1 x 1 x {tile} x {tile} input; "
                         f"the card's classes need (1, {classes}, {tile}, {tile})")


class ClassMapRunner:
    """Runs the network on batches of uint8 RGB tiles; returns each tile's ``Classes``."""

    def __init__(self, engine: "ClassMapEngine"):
        self.engine = engine

    def logits(self, tiles: list[np.ndarray]) -> Any:
        """The network's output (a torch tensor, N x C x S x S, float32) for S x S x 3 uint8
        tiles, each prepared as the card says."""
        import torch

        from napari_deepliif.engine.devices import precision_context

        card, device = self.engine.card, self.engine.device
        x = torch.from_numpy(tile_input(np.stack(tiles), card.channel, card.normalise)).to(device)
        with torch.inference_mode(), precision_context(device, self.engine.precision):
            return self.engine.network(x).float()

    def __call__(self, tiles: list[np.ndarray]) -> list[dict[str, np.ndarray]]:
        """S x S x 3 uint8 tiles in, ``{"Classes": S x S x 3 uint8}`` per tile out."""
        import torch

        classes = self.logits(tiles).argmax(dim=1).to(torch.uint8).cpu().numpy()
        return [{CLASSES: np.repeat(c[..., None], 3, axis=2)} for c in classes]


@dataclass
class ClassMapEngine(EngineBase):
    """A class-map model (``type: classmap`` in its card) on a device.

    Build one with :meth:`ClassMapEngine.load`.
    """

    card: ModelCard
    folder: Path
    device: str
    precision: str = "fp32"
    batch_size: int = 1

    name = "classmap"
    outputs = (CLASSES,)
    score_outputs = (CLASSES,)
    brightfield = False
    #: What turns a batch of tiles into this type's outputs (a subclass may give its own).
    runner_type: ClassVar[type] = ClassMapRunner
    #: The card's ``input.source`` this engine reads (``image``: the image's own pixels).
    input_source: ClassVar[str] = "image"

    @classmethod
    def load(cls, folder: str | Path, *, device: str = "auto", precision: str = "fp32",
             batch_size: int | None = None) -> "ClassMapEngine":
        """Open a model folder with a ``classmap`` card.

        Parameters
        ----------
        folder : str or Path
            Holds ``model.yaml`` and the weights file it names.
        device, precision, batch_size
            As :meth:`napari_deepliif.engine.engines.Engine.load`.

        Raises
        ------
        ModelError
            A bad card (naming the field), or weights that do not fit it (naming the parameter).
        """
        from napari_deepliif.engine.devices import run_settings

        dev, size = run_settings(device, precision, batch_size)
        folder = Path(folder)
        card = read_card(folder, cls.name)
        if card.input_source != cls.input_source:
            raise ModelError(f"{card.card_file}: field 'input.source' is '{card.input_source}', which "
                             f"{cls.__name__} does not read; open the folder with load_engine")
        engine = cls(card=card, folder=folder, device=dev, precision=precision, batch_size=size)
        engine.network  # noqa: B018 -- load now, so a bad weights file fails here, not mid-run
        return engine

    @property
    def network(self) -> Any:
        """The torch module (eager or TorchScript), loaded once per file and device."""
        stat = self.card.weights.stat()
        return _network(str(self.card.weights.resolve()), self.card.format, self.card.architecture,
                        len(self.card.class_names), self.card.tile_size, self.device,
                        (stat.st_size, stat.st_mtime_ns))

    @property
    def model_name(self) -> str:
        """The card's name."""
        return self.card.name

    @property
    def model_hash(self) -> str:
        """A short hash of the card (or bioimage.io description) and the weights' bytes."""
        from napari_deepliif.models.hash import content_hash

        return content_hash(self.card.card_file or self.folder / CARD_FILE, [("weights", self.card.weights)])

    @property
    def class_names(self) -> tuple[str, ...]:  # type: ignore[override]
        """The card's classes (index 0: background)."""
        return self.card.class_names

    @property
    def positive_classes(self) -> tuple[int, ...]:  # type: ignore[override]
        """The card's positive classes."""
        return self.card.positive_classes

    def grid(self, shape: tuple[int, int]) -> TileGrid:
        """The tile grid of an image of ``shape`` (H, W): the card's tile size and overlap."""
        return TileGrid(int(shape[0]), int(shape[1]), self.card.tile_size, self.card.overlap // 2)

    def _run(self, source: Any, resolution: str, names: tuple[str, ...], result: MutableMapping[str, Any],
             progress: ProgressCallback | None, cancel: CancelCheck | Any | None) -> None:
        run_tiles(source, self.grid(source.shape[:2]), self.runner_type(self), names, result,
                  batch_size=self.batch_size, progress=progress, cancel=cancel, skip_empty=False)

    def plan(self, shape: tuple[int, int], resolution: str, chunk_size: int) -> list[Chunk]:
        """Blocks of whole tiles of the image's own tile grid (see :meth:`EngineBase.plan`)."""
        return tiled_chunks(self.grid(shape), chunk_size)

    def infer_chunk(self, source: Any, chunk: Chunk, resolution: str, names: tuple[str, ...],
                    out: Mapping[str, np.ndarray], *, include: Callable[[int, int, int, int], bool] | None = None,
                    progress: ProgressCallback | None = None, cancel: CancelCheck | Any | None = None) -> tuple[int, int]:
        """Run the chunk's tiles on the image's tile grid (see :meth:`EngineBase.infer_chunk`)."""
        return run_chunk(source, self.grid(source.shape[:2]), chunk, self.runner_type(self), names, out,
                         batch_size=self.batch_size, include=include, progress=progress, cancel=cancel,
                         skip_empty=False)
