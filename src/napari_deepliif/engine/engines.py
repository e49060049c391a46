"""The one engine API every front end (widget, server, CLI, scripts) calls.

>>> engine = Engine.load("deepliif-latest")            # or a model directory
>>> images = engine.infer(rgb, resolution="40x")         # {"Hema": ..., "Seg": ...}
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from napari_deepliif.constants import EMPTY_TILE_COLOURS, SEG
from napari_deepliif.engine.inference import TileRunner, modality_names, run_tiles
from napari_deepliif.engine.tiling import (
    ArrayRegion,
    Chunk,
    TileGrid,
    square_chunks,
    tiled_chunks,
)
from napari_deepliif.errors import DeepLIIFError
from napari_deepliif.progress import CancelCheck, ProgressCallback
from napari_deepliif.resolution import resolve_resolution, tile_size_for
from napari_deepliif.rgb import check_rgb

if TYPE_CHECKING:
    from napari_deepliif.engine.stain_vectors import StainVectors

log = logging.getLogger(__name__)

#: ``outputs="score"``: what scoring needs (the Marker for marker values, and Seg).
SCORE_OUTPUTS = ("Marker", SEG)
#: The model used when none is named.
DEFAULT_MODEL = "deepliif-latest"


class EngineBase:
    """What every engine shares: output names, ``infer`` (around each engine's ``_run``) and
    the score path."""

    name: str
    outputs: tuple[str, ...]
    #: Attributes a run may change without reloading the engine (:meth:`with_parameters`);
    #: they are recorded with every result (:attr:`parameters`).
    parameter_names: tuple[str, ...] = ()

    @property
    def parameters(self) -> dict[str, Any]:
        """The engine's values of :attr:`parameter_names` (what a score record keeps)."""
        return {name: getattr(self, name) for name in self.parameter_names}

    def with_parameters(self, **parameters: Any) -> "EngineBase":
        """This engine with some of :attr:`parameter_names` changed (a copy sharing the loaded
        model, so a server can run each request with its own).

        Raises
        ------
        DeepLIIFError
            For a parameter this engine does not have.
        """
        unknown = sorted(set(parameters) - set(self.parameter_names))
        if unknown:
            takes = f"it takes {', '.join(self.parameter_names)}" if self.parameter_names else "it takes none"
            raise DeepLIIFError(f"the {self.name} engine has no parameter {', '.join(unknown)} ({takes}; "
                                "dab_threshold is the stain engine's: choose that engine to set it)")
        return replace(self, **parameters) if parameters else self

    def resolve_outputs(self, outputs: str | Iterable[str] = "all") -> tuple[str, ...]:
        """``all`` -> every output, ``score`` -> Marker and Seg, else the names given."""
        if outputs == "all":
            return self.outputs
        if outputs == "score":
            return SCORE_OUTPUTS
        names = tuple(dict.fromkeys((outputs,) if isinstance(outputs, str) else outputs))
        unknown = set(names) - set(self.outputs)
        if unknown:
            raise DeepLIIFError(f"unknown outputs {sorted(unknown)}; the {self.name} engine gives {', '.join(self.outputs)}")
        return names

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
        """Run the engine on an RGB image (or a region of one), tile by tile.

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
        source = input_region(image, region)
        names = self.resolve_outputs(outputs)
        result = output_arrays(names, (int(source.shape[0]), int(source.shape[1])), out)
        self._run(source, resolve_resolution(resolution, mpp), names, result, progress, cancel)
        return result

    def _run(self, source: Any, resolution: str, names: tuple[str, ...], result: MutableMapping[str, Any],
             progress: ProgressCallback | None, cancel: CancelCheck | Any | None) -> None:
        """Compute ``names`` of ``source`` into the arrays of ``result`` (see :meth:`infer`)."""
        raise NotImplementedError

    # ---- the chunk protocol the region core drives (one plan, one seam rule for every engine) ----

    def plan(self, shape: tuple[int, int], resolution: str, chunk_size: int) -> list[Chunk]:
        """The chunks an image of ``shape`` (H, W) is computed in, in raster order.

        Chunks are disjoint and cover the image; computing them one by one (in any order,
        with :meth:`infer_chunk`) equals one :meth:`infer` of the whole image. Default:
        squares of ``chunk_size``.
        """
        return square_chunks(shape, chunk_size)

    def statistics(self, source: Any, resolution: str, *, include: Callable[[int, int, int, int], bool] | None = None,
                   cancel: CancelCheck | Any | None = None) -> dict:
        """What this engine computes once over a whole image before its chunks (JSON-able).

        ``include(y0, y1, x0, x1)`` leaves parts out (e.g. glass). Default: nothing.
        """
        return {}

    def with_statistics(self, statistics: Mapping[str, Any]) -> "EngineBase":
        """This engine using ``statistics`` from :meth:`statistics` for every chunk."""
        return self

    def unmixing(self, statistics: Mapping[str, Any]) -> np.ndarray | None:
        """The stain unmixing matrix (3 x 3) that cells scored with ``statistics`` are
        measured with (see :func:`napari_deepliif.rgb.stain_od`); None: the HED matrix."""
        return None

    def infer_chunk(self, source: Any, chunk: Chunk, resolution: str, names: tuple[str, ...],
                    out: Mapping[str, np.ndarray], *, include: Callable[[int, int, int, int], bool] | None = None,
                    progress: ProgressCallback | None = None, cancel: CancelCheck | Any | None = None) -> tuple[int, int]:
        """Compute ``chunk`` of ``source`` into ``out`` (name -> chunk-sized H x W x 3 buffers).

        Parts for which ``include`` is False get the reference's empty-tile colours.

        Returns
        -------
        (int, int)
            Units (tiles, or 1 for an untiled chunk) computed, and skipped by ``include``.
        """
        raise NotImplementedError


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
        from napari_deepliif.engine.devices import (
            DEFAULT_BATCH_SIZE,
            PRECISIONS,
            resolve_device,
        )
        from napari_deepliif.models.index import resolve_model
        from napari_deepliif.models.loader import load_model

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
        size = grid.tile_size
        keep = [t for t in chunk.tiles if include is None or include(t.y, t.y + size, t.x, t.x + size)]
        y0, _, x0, _ = chunk.box
        for t in set(chunk.tiles) - set(keep):
            ty0, ty1, tx0, tx1 = t.write
            fill_empty(out, names, (ty0 - y0, ty1 - y0, tx0 - x0, tx1 - x0))
        runner = TileRunner(self.model, names, self.precision)
        run_tiles(source, grid, runner, names, {name: _Offset(out[name], y0, x0) for name in names},
                  batch_size=self.batch_size, tiles=keep, progress=progress, cancel=cancel)
        return len(keep), len(chunk.tiles) - len(keep)


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


ENGINES = ("auto", "deepliif", "stain")


def load_engine(
    engine: str = "auto",
    model: str | Path | None = None,
    *,
    device: str = "auto",
    precision: str = "fp32",
    batch_size: int | None = None,
) -> "Engine | StainEngine":
    """The engine a front end asked for.

    Parameters
    ----------
    engine : {'auto', 'deepliif', 'stain'}
        ``auto``: DeepLIIF when ``model`` is given or ``deepliif-latest`` is installed, else
        the classical ``stain`` engine (logged, and named in every output).
    model : str or Path, optional
        Model index name or directory for DeepLIIF (default ``deepliif-latest``).
    device, precision, batch_size
        As :meth:`Engine.load` (ignored by ``stain``).
    """
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
    return Engine.load(model or DEFAULT_MODEL, device=device, precision=precision, batch_size=batch_size)


def input_region(image: Any, region: tuple[int, int, int, int] | None) -> Any:
    """Check ``image`` (see :func:`check_rgb`) and return it, or a lazy view of ``region``."""
    source = check_rgb(image)
    if region is not None:
        source = check_rgb(_region(source, region), "region")
    return source


def output_arrays(
    names: Iterable[str], shape: tuple[int, int], out: MutableMapping[str, Any] | None
) -> MutableMapping[str, Any]:
    """``out`` completed with new zeroed H x W x 3 uint8 arrays; given arrays are checked."""
    result: MutableMapping[str, Any] = out if out is not None else {}
    expected = (*shape, 3)
    for name in names:
        if name not in result:
            result[name] = np.zeros(expected, np.uint8)
        elif tuple(result[name].shape) != expected:
            raise DeepLIIFError(f"out['{name}'] has shape {tuple(result[name].shape)}, expected {expected}")
    return result


def _region(image: Any, region: tuple[int, int, int, int]) -> ArrayRegion:
    x, y, w, h = (int(v) for v in region)
    height, width = int(image.shape[0]), int(image.shape[1])
    if w <= 0 or h <= 0:
        raise DeepLIIFError(f"region {region} is empty (width and height must be positive)")
    if x < 0 or y < 0 or x + w > width or y + h > height:
        raise DeepLIIFError(f"region {region} (x, y, width, height) lies outside the {width} x {height} image")
    return ArrayRegion(image, x, y, w, h)


def square_units(box: tuple[int, int, int, int], size: int) -> list[tuple[int, int, int, int]]:
    """The squares of ``size`` px on the whole image's grid that meet ``box`` (y0, y1, x0, x1),
    as (y0, y1, x0, x1), whole (a square is judged whole, whatever part of it ``box`` holds)."""
    y0, y1, x0, x1 = box
    return [(sy, sy + size, sx, sx + size)
            for sy in range(y0 // size * size, y1, size) for sx in range(x0 // size * size, x1, size)]


def fill_empty(out: Mapping[str, np.ndarray], names: Iterable[str], box: tuple[int, int, int, int]) -> None:
    """Give ``box`` (y0, y1, x0, x1) of each output the reference's empty-tile colour."""
    y0, y1, x0, x1 = box
    for name in names:
        out[name][y0:y1, x0:x1] = EMPTY_TILE_COLOURS.get(name, (0, 0, 0))


class _Offset:
    """Writes at image coordinates land in a buffer whose top-left is at (y0, x0)."""

    def __init__(self, buffer: np.ndarray, y0: int, x0: int):
        self.buffer, self.y0, self.x0 = buffer, y0, x0
        self.shape = buffer.shape

    def __setitem__(self, key: tuple[slice, slice], value: Any) -> None:
        ys, xs = key
        self.buffer[ys.start - self.y0 : ys.stop - self.y0, xs.start - self.x0 : xs.stop - self.x0] = value

