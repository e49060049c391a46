"""What every engine shares: the ``infer`` API around each engine's ``_run``, and the chunk
protocol (``plan``, ``statistics``, ``with_statistics``, ``infer_chunk``) the region core drives.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, MutableMapping
from dataclasses import replace
from typing import Any

import numpy as np

from napari_deepliif.constants import EMPTY_TILE_COLOURS, SEG
from napari_deepliif.engine.tiling import ArrayRegion, Chunk, square_chunks
from napari_deepliif.errors import DeepLIIFError
from napari_deepliif.progress import CancelCheck, ProgressCallback
from napari_deepliif.resolution import resolve_resolution
from napari_deepliif.rgb import check_input

#: ``outputs="score"``: what scoring needs (the Marker for marker values, and Seg).
SCORE_OUTPUTS = ("Marker", SEG)


class EngineBase:
    """What every engine shares: output names, ``infer`` (around each engine's ``_run``) and
    the score path."""

    name: str
    outputs: tuple[str, ...]
    #: What ``outputs="score"`` computes: what the cells are found from.
    score_outputs: tuple[str, ...] = SCORE_OUTPUTS
    #: Cell class names, index = class value of a ``Classes`` output (0: background), for an
    #: engine whose cells come from a class map; None for a Seg map.
    class_names: tuple[str, ...] | None = None
    #: Indexes of :attr:`class_names` counted as positive (``num_pos``).
    positive_classes: tuple[int, ...] = ()
    #: The engine reads brightfield images: the slide tissue mask (bright glass left out)
    #: applies to them. False for fluorescence, whose background is dark.
    brightfield: bool = True
    #: Attributes a run may change without reloading the engine (:meth:`with_parameters`);
    #: they are recorded with every result (:attr:`parameters`).
    parameter_names: tuple[str, ...] = ()

    def tissue(self, mask: Callable[[], Any]) -> Any:
        """The tissue mask ``mask()`` makes, where it applies to this engine's images; None
        (every part computed) for an engine of fluorescence images, whose background is
        dark while the mask leaves out bright glass. Every front end and the region core
        ask here, so the mask is not even made for such an engine (it reads RGB)."""
        return mask() if self.brightfield else None

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
        """``all`` -> every output, ``score`` -> :attr:`score_outputs`, else the names given."""
        if outputs == "all":
            return self.outputs
        if outputs == "score":
            return self.score_outputs
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
            H x W x 3 (or x 4) uint8: numpy, zarr, dask, ... Only the tiles are read. An
            engine of fluorescence images (:attr:`brightfield` False) also takes one channel,
            H x W (or x 1), uint8 or uint16.
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
        source = input_region(image, region, grey=not self.brightfield)
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


def input_region(image: Any, region: tuple[int, int, int, int] | None, *, grey: bool = False) -> Any:
    """Check ``image`` (see :func:`check_input`) and return it, or a lazy view of ``region``."""
    source = check_input(image, grey=grey)
    if region is not None:
        source = check_input(_region(source, region), "region", grey=grey)
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


def fill_empty(out: Mapping[str, np.ndarray], names: Iterable[str], box: tuple[int, int, int, int]) -> None:
    """Give ``box`` (y0, y1, x0, x1) of each output the reference's empty-tile colour."""
    y0, y1, x0, x1 = box
    for name in names:
        out[name][y0:y1, x0:x1] = EMPTY_TILE_COLOURS.get(name, (0, 0, 0))


class Offset:
    """Writes at image coordinates land in a buffer whose top-left is at (y0, x0)."""

    def __init__(self, buffer: np.ndarray, y0: int, x0: int):
        self.buffer, self.y0, self.x0 = buffer, y0, x0
        self.shape = buffer.shape

    def __setitem__(self, key: tuple[slice, slice], value: Any) -> None:
        ys, xs = key
        self.buffer[ys.start - self.y0 : ys.stop - self.y0, xs.start - self.x0 : xs.stop - self.x0] = value

