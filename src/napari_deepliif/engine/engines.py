"""The one engine API every front end (widget, server, CLI, scripts) calls.

>>> engine = Engine.load("deepliif-latest")            # or a model directory
>>> images = engine.infer(rgb, resolution="40x")         # {"Hema": ..., "Seg": ...}
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from napari_deepliif.constants import SEG
from napari_deepliif.engine.base import EngineBase, fill_empty
from napari_deepliif.engine.classmap import ClassMapEngine
from napari_deepliif.engine.dapi_chain import DapiChainEngine
from napari_deepliif.engine.inference import (
    TileRunner,
    modality_names,
    run_chunk,
    run_tiles,
)
from napari_deepliif.engine.points import PointsEngine
from napari_deepliif.engine.tiling import Chunk, TileGrid, tiled_chunks
from napari_deepliif.engine.translate import TranslateEngine
from napari_deepliif.errors import DeepLIIFError
from napari_deepliif.progress import CancelCheck, ProgressCallback
from napari_deepliif.resolution import tile_size_for

if TYPE_CHECKING:
    from napari_deepliif.engine.stain_vectors import StainVectors

log = logging.getLogger(__name__)

#: The model used when none is named.
DEFAULT_MODEL = "deepliif-latest"


@dataclass
class Engine(EngineBase):
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
        model: str | Path = DEFAULT_MODEL,
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
        from napari_deepliif.engine.devices import run_settings
        from napari_deepliif.models.index import resolve_model
        from napari_deepliif.models.loader import load_model

        dev, size = run_settings(device, precision, batch_size)
        loaded = load_model(resolve_model(model), device=dev)
        return cls(model=loaded, device=dev, precision=precision, batch_size=size)

    @property
    def name(self) -> str:
        """Engine name written into every output (``deepliif``)."""
        return "deepliif"

    @property
    def model_name(self) -> str:
        """The model directory's name."""
        return self.model.name

    @property
    def model_hash(self) -> str:
        """A short fingerprint of the model files (see ``DeepLIIFModel.fingerprint``)."""
        return self.model.fingerprint()

    @property
    def outputs(self) -> tuple[str, ...]:
        """Every output this model can give: its modalities, then Seg."""
        return (*modality_names(self.model), SEG)

    def _run(self, source: Any, resolution: str, names: tuple[str, ...], result: MutableMapping[str, Any],
             progress: ProgressCallback | None, cancel: CancelCheck | Any | None) -> None:
        grid = TileGrid(int(source.shape[0]), int(source.shape[1]), tile_size_for(resolution))
        runner = TileRunner(self.model, names, self.precision)
        run_tiles(source, grid, runner, names, result, batch_size=self.batch_size, progress=progress, cancel=cancel)

    def plan(self, shape: tuple[int, int], resolution: str, chunk_size: int) -> list[Chunk]:
        """Blocks of whole tiles of the image's own tile grid (see :meth:`EngineBase.plan`)."""
        return tiled_chunks(TileGrid(int(shape[0]), int(shape[1]), tile_size_for(resolution)), chunk_size)

    def infer_chunk(self, source: Any, chunk: Chunk, resolution: str, names: tuple[str, ...],
                    out: Mapping[str, np.ndarray], *, include: Callable[[int, int, int, int], bool] | None = None,
                    progress: ProgressCallback | None = None, cancel: CancelCheck | Any | None = None) -> tuple[int, int]:
        """Run the chunk's tiles on the image's tile grid; tiles ``include`` rejects get the
        empty-tile colours (see :meth:`EngineBase.infer_chunk`)."""
        grid = TileGrid(int(source.shape[0]), int(source.shape[1]), tile_size_for(resolution))
        runner = TileRunner(self.model, names, self.precision)
        return run_chunk(source, grid, chunk, runner, names, out, batch_size=self.batch_size, include=include,
                         progress=progress, cancel=cancel)


@dataclass
class StainEngine(EngineBase):
    """The classical ``stain`` engine (colour deconvolution, no weights) behind the same
    ``infer``/``score`` interface as :class:`Engine`; see :mod:`napari_deepliif.engine.stain`.

    Attributes
    ----------
    dab_threshold : float
        Mean nuclear DAB OD above which a nucleus is positive.
    threshold : float, optional
        Fixed foreground threshold (OD) for every image inferred, e.g. one
        :func:`~napari_deepliif.engine.stain.stain_threshold` of a whole slide, so that its chunks
        are segmented alike; None (default): each image's own Otsu threshold.
    vectors : StainVectors, optional
        Fixed stain vectors for every image inferred (e.g. those of a whole slide, or
        :data:`~napari_deepliif.engine.stain_vectors.REFERENCE_VECTORS` for the fixed HED
        matrix); None (default): each image's own estimate.
    """

    dab_threshold: float = 0.2
    threshold: float | None = None
    vectors: StainVectors | None = None

    name = "stain"
    parameter_names = ("dab_threshold",)
    model_name = None
    model_hash = None

    @property
    def outputs(self) -> tuple[str, ...]:
        """Hema, Marker and Seg."""
        from napari_deepliif.engine.stain import STAIN_OUTPUTS

        return STAIN_OUTPUTS

    def _run(self, source: Any, resolution: str, names: tuple[str, ...], result: MutableMapping[str, Any],
             progress: ProgressCallback | None, cancel: CancelCheck | Any | None) -> None:
        from napari_deepliif.engine.stain import stain_infer

        images = stain_infer(source, resolution, dab_threshold=self.dab_threshold, threshold=self.threshold,
                             vectors=self.vectors, progress=progress, cancel=cancel)
        for name in names:
            result[name][:] = images[name]

    def statistics(self, source: Any, resolution: str, *, include: Callable[[int, int, int, int], bool] | None = None,
                   cancel: CancelCheck | Any | None = None) -> dict:
        """The stain vectors and the foreground threshold over the whole image (its blocks
        ``include`` accepts), except those this engine has fixed already."""
        from napari_deepliif.engine.stain import stain_threshold, stain_vectors

        vectors = self.vectors or stain_vectors(source, include=include, cancel=cancel)
        threshold = self.threshold
        if threshold is None:
            threshold = stain_threshold(source, resolution, vectors=vectors, include=include, cancel=cancel)
        log.info("stain engine: threshold %.3f OD, %s stain vectors over the whole image", threshold,
                 "estimated" if vectors.estimated else "reference (HED)")
        return {"stain_threshold": float(threshold), "stain_vectors": vectors.to_dict()}

    def with_statistics(self, statistics: Mapping[str, Any]) -> "StainEngine":
        """This engine with the threshold and stain vectors of :meth:`statistics`; a record
        without vectors was written when the engine always used the HED matrix."""
        from napari_deepliif.engine.stain_vectors import REFERENCE_VECTORS, StainVectors

        vectors = statistics.get("stain_vectors")
        return replace(self, threshold=float(statistics["stain_threshold"]),
                       vectors=StainVectors.from_dict(vectors) if vectors else REFERENCE_VECTORS)

    def unmixing(self, statistics: Mapping[str, Any]) -> np.ndarray | None:
        """The stain vectors the cells were classified with, so a cell's measured nuclear
        DAB OD is the one its class came from."""
        return self.with_statistics(statistics).vectors.unmixing()

    def infer_chunk(self, source: Any, chunk: Chunk, resolution: str, names: tuple[str, ...],
                    out: Mapping[str, np.ndarray], *, include: Callable[[int, int, int, int], bool] | None = None,
                    progress: ProgressCallback | None = None, cancel: CancelCheck | Any | None = None) -> tuple[int, int]:
        """The chunk as that box of the whole image scored: blocks stay on the whole image's
        block grid and read their margins from it (see :meth:`EngineBase.infer_chunk`).

        ``include`` is asked about the squares of the resolution's tile size on the whole
        image's grid, as DeepLIIF asks about its tiles, so what is left empty does not
        depend on the chunk size."""
        from napari_deepliif.engine.stain import stain_infer

        y0, y1, x0, x1 = chunk.box
        squares = [] if include is None else square_units(chunk.box, tile_size_for(resolution))
        left_out = [s for s in squares if not include(*s)]
        if squares and len(left_out) == len(squares):
            fill_empty(out, names, (0, y1 - y0, 0, x1 - x0))
            return 0, 1
        images = stain_infer(source, resolution, dab_threshold=self.dab_threshold, threshold=self.threshold,
                             vectors=self.vectors, box=chunk.box, cancel=cancel)
        for name in names:
            out[name][:] = images[name]
        for sy0, sy1, sx0, sx1 in left_out:
            fill_empty(out, names, (max(sy0, y0) - y0, min(sy1, y1) - y0, max(sx0, x0) - x0, min(sx1, x1) - x0))
        return 1, 0


#: Model types: the type a model folder declares -> the engine class that loads it (each
#: with ``load(folder, device=, precision=, batch_size=)``); see ``docs/model-types.md``.
MODEL_TYPES: dict[str, type[EngineBase]] = {"deepliif": Engine, "classmap": ClassMapEngine, "points": PointsEngine,
                                             "translate": TranslateEngine}
ENGINES = ("auto", "stain", *MODEL_TYPES)
#: The engine of a ``classmap`` card, by what its network reads (the card's ``input.source``).
CLASSMAP_INPUTS: dict[str, type[ClassMapEngine]] = {"image": ClassMapEngine, "deepliif-dapi": DapiChainEngine}


def load_engine(
    engine: str = "auto",
    model: str | Path | None = None,
    *,
    device: str = "auto",
    precision: str = "fp32",
    batch_size: int | None = None,
) -> EngineBase:
    """The engine a front end asked for.

    Parameters
    ----------
    engine : {'auto', 'stain', 'deepliif', 'classmap', 'points', 'translate'}
        ``auto``: the model's own type (:func:`~napari_deepliif.models.card.folder_model_type`:
        the release layout is ``deepliif``, a ``model.yaml`` card names its type) when
        ``model`` is given or ``deepliif-latest`` is installed, else the classical ``stain``
        engine (logged, and named in every output). A model type checks that the model is
        of that type.
    model : str or Path, optional
        Model index name or folder (default ``deepliif-latest``).
    device, precision, batch_size
        As :meth:`Engine.load` (ignored by ``stain``).
    """
    from napari_deepliif.models.card import folder_model_type, read_card
    from napari_deepliif.models.index import resolve_model

    if engine not in ENGINES:
        raise DeepLIIFError(f"unknown engine '{engine}' (choose one of {', '.join(ENGINES)})")
    if engine == "stain":
        return StainEngine()
    if engine == "auto" and model is None:
        from napari_deepliif.models.index import get_model

        if not get_model(DEFAULT_MODEL).installed:
            log.warning("no DeepLIIF model installed: using the classical 'stain' engine "
                        "(napari-deepliif models fetch %s installs DeepLIIF)", DEFAULT_MODEL)
            return StainEngine()
    folder = resolve_model(model or DEFAULT_MODEL)
    kind = folder_model_type(folder)
    if engine not in ("auto", kind):
        raise DeepLIIFError(f"{folder} holds a '{kind}' model, not '{engine}'; choose engine '{kind}' or 'auto'")
    engine_type = MODEL_TYPES[kind]
    if kind == "classmap":
        engine_type = CLASSMAP_INPUTS[read_card(folder, kind).input_source]
    return engine_type.load(folder, device=device, precision=precision, batch_size=batch_size)


def square_units(box: tuple[int, int, int, int], size: int) -> list[tuple[int, int, int, int]]:
    """The squares of ``size`` px on the whole image's grid that meet ``box`` (y0, y1, x0, x1),
    as (y0, y1, x0, x1), whole (a square is judged whole, whatever part of it ``box`` holds)."""
    y0, y1, x0, x1 = box
    return [(sy, sy + size, sx, sx + size)
            for sy in range(y0 // size * size, y1, size) for sx in range(x0 // size * size, x1, size)]
