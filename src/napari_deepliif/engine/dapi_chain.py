"""A ``classmap`` model fed by the DAPI a DeepLIIF model infers from an IHC image
(``input: {source: deepliif-dapi}`` in its card, ``deepliif_model`` naming the DeepLIIF model;
see ``docs/model-types.md``).

1. **DAPI.** The DeepLIIF model's G2 runs on the IHC image on DeepLIIF's own tile grid (the
   resolution's tile size, the reference's overlap and blank-tile rule), as
   :class:`~napari_deepliif.engine.engines.Engine` runs it: the ``DAPI`` output.
2. **Class map.** The class-map network runs on the DAPI on the card's tile grid, each tile
   prepared as the card says (``input.channel`` picks the DAPI's channel, ``grey`` their mean).

The DAPI is read lazily (:class:`~napari_deepliif.engine.translate.TiledImage`): a class-map
tile asks for its part of it and only the DeepLIIF tiles under it run, each once per chunk,
so a region's outputs are that box of the whole image's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from napari_deepliif.constants import CLASSES
from napari_deepliif.engine.classmap import ClassMapEngine, ClassMapRunner
from napari_deepliif.engine.tiling import Chunk, TileGrid
from napari_deepliif.engine.translate import TiledImage
from napari_deepliif.errors import ModelError
from napari_deepliif.progress import CancelCheck, ProgressCallback
from napari_deepliif.resolution import tile_size_for

#: The DeepLIIF output the class-map network reads.
DAPI = "DAPI"


class DapiChainRunner(ClassMapRunner):
    """The class-map network on batches of DAPI tiles; returns each tile's ``Classes`` and the
    DAPI tile itself (so the DAPI output is written where the class map is)."""

    def __call__(self, tiles: list[np.ndarray]) -> list[dict[str, np.ndarray]]:
        """S x S x 3 uint8 DAPI tiles in, ``{"Classes", "DAPI"}`` per tile out."""
        return [{**out, DAPI: tile} for out, tile in zip(super().__call__(tiles), tiles)]


@dataclass
class DapiChainEngine(ClassMapEngine):
    """A ``classmap`` model reading the DAPI a DeepLIIF model infers from the IHC image.

    Build one with :meth:`DapiChainEngine.load` (or :func:`~napari_deepliif.engine.engines.load_engine`,
    which picks it for such a card).

    Attributes
    ----------
    deepliif : DeepLIIFModel or None
        The card's ``deepliif_model``, loaded on the engine's device.
    """

    deepliif: Any = None

    outputs = (CLASSES, DAPI)
    brightfield = True
    runner_type = DapiChainRunner
    input_source = "deepliif-dapi"

    @classmethod
    def load(cls, folder: str | Path, *, device: str = "auto", precision: str = "fp32",
             batch_size: int | None = None) -> DapiChainEngine:
        """Open a model folder whose ``classmap`` card reads ``input.source: deepliif-dapi``.

        Parameters
        ----------
        folder : str or Path
            Holds ``model.yaml`` and the weights it names; the card's ``deepliif_model`` names
            the DeepLIIF model, loaded here.
        device, precision, batch_size
            As :meth:`napari_deepliif.engine.engines.Engine.load`.

        Raises
        ------
        ModelError
            A bad card (naming the field), class-map weights that do not fit it, or a DeepLIIF
            model that cannot be loaded or gives no DAPI (naming ``deepliif_model``).
        """
        from napari_deepliif.engine.inference import modality_names
        from napari_deepliif.models.loader import load_model

        engine = super().load(folder, device=device, precision=precision, batch_size=batch_size)
        card = engine.card
        where = f"{card.card_file}: field 'deepliif_model' ({card.deepliif_model})"
        try:
            model = load_model(card.deepliif_model, device=engine.device)
        except ModelError as exc:
            raise ModelError(f"{where} is not a loadable DeepLIIF release: {exc}") from exc
        names = modality_names(model)
        if DAPI not in names:
            raise ModelError(f"{where} gives {', '.join(names)}, no {DAPI}; name a DeepLIIF model with a DAPI output")
        return replace(engine, deepliif=model)

    @property
    def model_hash(self) -> str:
        """The class-map model's hash, then the DeepLIIF model's fingerprint after a ``+``."""
        return f"{super().model_hash}+{self.deepliif.fingerprint()}"

    def dapi(self, source: Any, resolution: str, cancel: CancelCheck | Any | None = None) -> TiledImage:
        """The DeepLIIF model's DAPI of ``source`` (H x W x 3 uint8 IHC) on its own tile grid,
        computed as parts of it are read."""
        from napari_deepliif.engine.inference import TileRunner

        grid = TileGrid(int(source.shape[0]), int(source.shape[1]), tile_size_for(resolution))
        return TiledImage(source, grid, TileRunner(self.deepliif, (DAPI,), self.precision), DAPI, self.batch_size,
                          cancel, skip_empty=True)

    def _run(self, source: Any, resolution: str, names: tuple[str, ...], result: MutableMapping[str, Any],
             progress: ProgressCallback | None, cancel: CancelCheck | Any | None) -> None:
        super()._run(self.dapi(source, resolution, cancel), resolution, names, result, progress, cancel)

    def infer_chunk(self, source: Any, chunk: Chunk, resolution: str, names: tuple[str, ...],
                    out: Mapping[str, np.ndarray], *, include: Callable[[int, int, int, int], bool] | None = None,
                    progress: ProgressCallback | None = None, cancel: CancelCheck | Any | None = None) -> tuple[int, int]:
        """The chunk's class-map tiles on the DAPI of the whole image (see
        :meth:`EngineBase.infer_chunk`): the DeepLIIF tiles under them run once per chunk;
        class-map tiles ``include`` rejects get the empty-tile colours and no DAPI is made
        for them."""
        return super().infer_chunk(self.dapi(source, resolution, cancel), chunk, resolution, names, out,
                                   include=include, progress=progress, cancel=cancel)
