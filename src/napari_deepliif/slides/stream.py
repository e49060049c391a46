"""Whole-slide inference streamed to OME-Zarr, chunk by chunk, resumable.

Chunks lie on the global tile grid of the image scored (the reference's grid of the whole
level or region, :class:`~napari_deepliif.tiling.TileGrid`). Each tile writes a box, and
where two boxes overlap (only next to a tile moved flush to the right or bottom edge) the
later tile wins; here every tile's box is cut where the next tile's begins, so the boxes
tile the image without overlap and the result does not depend on the order chunks run in.
A chunk is a block of ``chunk_size // step`` x ``chunk_size // step`` tiles; it is inferred
into a buffer of its boxes' union (memory: one chunk of outputs plus one batch) and written
to the store, then recorded as done. A rerun skips the chunks done. Results equal one
:meth:`Engine.infer` call on the whole image, pixel for pixel.

Tiles whose footprint has no tissue in the tissue mask are not run; they get the
reference's constant empty-tile outputs, as blank tiles do.

The classical ``stain`` engine is not tiled: its chunks are plain squares, each computed as
that box of the whole image scored (``stain_infer(..., box=)``: its blocks stay on the whole
image's block grid and read their margins from it). Its foreground threshold (an Otsu
threshold of the hematoxylin contrast, :func:`~napari_deepliif.stain.stain_threshold`) is
computed once, before streaming, over the whole image scored (only its blocks with tissue
when the tissue mask is used), kept in the run record for a resumed run, and given to every
chunk. So the stain results equal one ``StainEngine(threshold=...).infer`` of the image with
that threshold, pixel for pixel, whatever the chunk size. A chunk smaller than the stain
block (1024 px) recomputes the blocks it shares with its neighbours, so keep chunks a
multiple of it (the default 2048 is).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..constants import EMPTY_TILE_COLOURS
from ..engine import Engine, StainEngine, input_region
from ..errors import Cancelled
from ..inference import TileRunner, run_tiles
from ..resolution import tile_size_for
from ..stain import stain_infer, stain_threshold
from ..tiling import Tile, TileGrid
from . import omezarr
from .readers import Slide
from .tissue import TissueMask, tissue_mask

log = logging.getLogger(__name__)

#: Default chunk edge (pixels of the image scored), rounded to whole tiles.
CHUNK_SIZE = 2048

Box = tuple[int, int, int, int]  #: (y0, y1, x0, x1), end exclusive


@dataclass(frozen=True)
class Chunk:
    """One unit of work: ``box`` of the image scored and the tiles that fill it (none for an
    untiled engine)."""

    index: int
    box: Box
    tiles: tuple[Tile, ...] = ()


def disjoint_tiles(grid: TileGrid) -> list[list[Tile]]:
    """The grid's tiles as rows, each write box cut where the next tile's begins (see module
    docstring), so boxes do not overlap and cover the image."""
    tiles = grid.tiles()
    rows = _cut({t.y: (t.write[0], t.write[1]) for t in tiles})
    cols = _cut({t.x: (t.write[2], t.write[3]) for t in tiles})
    return [[Tile(y, x, (*rows[y], *cols[x])) for x in cols] for y in rows]


def _cut(spans: dict[int, tuple[int, int]]) -> dict[int, tuple[int, int]]:
    """Per tile start, its write span along one axis ended where the next span begins."""
    starts = sorted(spans)
    ends = [spans[nxt][0] for nxt in starts[1:]] + [spans[starts[-1]][1]]
    return {s: (spans[s][0], min(spans[s][1], end)) for s, end in zip(starts, ends)}


def plan_chunks(shape: tuple[int, int], resolution: str, chunk_size: int = CHUNK_SIZE,
                tiled: bool = True) -> tuple[TileGrid | None, list[Chunk]]:
    """The chunks of an image of ``shape`` (H, W) in raster order, and its tile grid.

    ``tiled``: blocks of whole tiles of the global grid (DeepLIIF); else squares of
    ``chunk_size`` (untiled engines).
    """
    height, width = shape
    if not tiled:
        boxes = [(y, min(y + chunk_size, height), x, min(x + chunk_size, width))
                 for y in range(0, height, chunk_size) for x in range(0, width, chunk_size)]
        return None, [Chunk(i, box) for i, box in enumerate(boxes)]
    grid = TileGrid(height, width, tile_size_for(resolution))
    rows = disjoint_tiles(grid)
    per = max(1, chunk_size // (grid.tile_size - 2 * grid.overlap))
    chunks = []
    for r in range(0, len(rows), per):
        for c in range(0, len(rows[0]), per):
            block = [t for row in rows[r : r + per] for t in row[c : c + per]]
            box = (block[0].write[0], block[-1].write[1], block[0].write[2], block[-1].write[3])
            chunks.append(Chunk(len(chunks), box, tuple(block)))
    return grid, chunks


@dataclass
class SlideRun:
    """What :func:`infer_slide` did.

    Attributes
    ----------
    store : Path
        The OME-Zarr store.
    shape : (int, int)
        (H, W) of the image scored (the chosen level, or the region).
    resolution : str
        Magnification told to the engine.
    settings : dict
        The run's settings as recorded in the store.
    chunks_run, chunks_resumed : int
        Chunks inferred now, and chunks found done by an earlier run.
    tiles_run, tiles_skipped : int
        Tiles sent through the networks, and tiles skipped as outside the tissue mask.
    """

    store: Path
    shape: tuple[int, int]
    resolution: str
    settings: dict
    chunks_run: int = 0
    chunks_resumed: int = 0
    tiles_run: int = 0
    tiles_skipped: int = 0


class _Offset:
    """Writes at image coordinates land in a buffer whose top-left is at (y0, x0)."""

    def __init__(self, buffer: np.ndarray, y0: int, x0: int):
        self.buffer, self.y0, self.x0 = buffer, y0, x0
        self.shape = buffer.shape

    def __setitem__(self, key: tuple[slice, slice], value: Any) -> None:
        ys, xs = key
        self.buffer[ys.start - self.y0 : ys.stop - self.y0, xs.start - self.x0 : xs.stop - self.x0] = value


def _settings(engine: Any, slide: Slide, choice: Any, region: tuple[int, int, int, int] | None,
              names: tuple[str, ...], chunk_size: int, use_tissue: bool) -> dict:
    return {"engine": engine.name, "model": engine.model_name, "model_hash": engine.model_hash,
            "version": __version__, "slide": slide.path.name, "level": choice.level, "factor": choice.factor,
            "downsample": choice.downsample, "mpp": choice.mpp, "resolution": choice.resolution,
            "region": list(region) if region else None, "outputs": list(names),
            "chunk_size": chunk_size, "tissue_mask": use_tissue}


def _create(store: Path, settings: dict, shape: tuple[int, int], mask: TissueMask | None) -> omezarr.RunRecord:
    root = omezarr.create_store(store, tuple(settings["outputs"]), shape, settings["mpp"], settings)
    if mask is not None:
        root.create_array("tissue_mask", data=mask.mask.astype(np.uint8), chunks=(omezarr.CHUNK,) * 2)
        root["tissue_mask"].attrs.update({"downsample": mask.downsample, "threshold": mask.threshold})
    record = omezarr.RunRecord(store / omezarr.RECORD, settings)
    record.save()
    return record


def _stored_mask(store: Path) -> TissueMask | None:
    import zarr

    root = zarr.open_group(str(store), mode="r")
    if "tissue_mask" not in root:
        return None
    array = root["tissue_mask"]
    return TissueMask(np.asarray(array[:]).astype(bool), float(array.attrs["downsample"]),
                      float(array.attrs["threshold"]))


def infer_slide(
    engine: Any,
    slide: Slide,
    store: str | Path,
    *,
    resolution: str | None = None,
    outputs: str | Iterable[str] = "all",
    region: tuple[int, int, int, int] | None = None,
    chunk_size: int = CHUNK_SIZE,
    tissue: bool | TissueMask = True,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
    cancel: Any = None,
) -> SlideRun:
    """Infer a whole slide (or a region) into an OME-Zarr store, resuming what is there.

    Parameters
    ----------
    engine : Engine or StainEngine
        From :func:`napari_deepliif.engine.load_engine`.
    slide : Slide
        From :func:`napari_deepliif.slides.open_slide`.
    store : str or Path
        Directory of the OME-Zarr store (``*.ome.zarr``); created if missing, resumed if it
        holds a run with the same settings.
    resolution : {'40x', '20x', '10x'}, optional
        Magnification to score at; picks the level (:meth:`Slide.level_for`).
    outputs : 'all', 'score' or names
        As :meth:`Engine.infer`.
    region : (x, y, width, height), optional
        Rectangle in pixels of the chosen level; default the whole level.
    chunk_size : int
        Chunk edge in pixels (whole tiles for DeepLIIF); memory grows with its square.
    tissue : bool or TissueMask
        Skip tiles outside the tissue mask (True: computed here; False: run every tile).
        For the stain engine it also restricts the pixels its one threshold is taken from
        (see module docstring); a ``StainEngine`` with a ``threshold`` set keeps that one.
    overwrite : bool
        Start again even if the store holds a run.
    progress : callable(done, total), optional
        Tiles (chunks for an untiled engine) done and in all, resumed ones included.
    cancel : callable or threading.Event, optional
        Checked between batches; raises :class:`Cancelled`; chunks done stay done.
    """
    store = Path(store)
    choice = slide.level_for(resolution)
    names = engine.resolve_outputs(outputs)
    source = input_region(slide.array(choice), region)  # checks the region lies in the level
    oy, ox = (int(region[1]), int(region[0])) if region is not None else (0, 0)
    shape = (int(source.shape[0]), int(source.shape[1]))
    settings = _settings(engine, slide, choice, region, names, chunk_size, tissue is not False)
    record = None if overwrite else omezarr.RunRecord.load(store)
    if record is not None:
        record.check(settings)
    mask = None
    if tissue is not False:
        mask = _stored_mask(store) if record is not None else None
        mask = mask or (tissue if isinstance(tissue, TissueMask) else tissue_mask(slide))
    if record is None:
        record = _create(store, settings, shape, mask)
    tiled = isinstance(engine, Engine)
    grid, chunks = plan_chunks(shape, choice.resolution, chunk_size, tiled)
    run = SlideRun(store, shape, choice.resolution, settings)

    def has_tissue(y0: int, y1: int, x0: int, x1: int) -> bool:
        return mask is None or mask.covers(y0 + oy, y1 + oy, x0 + ox, x1 + ox, choice.downsample)

    if isinstance(engine, StainEngine) and engine.threshold is None and len(record.done) < len(chunks):
        engine = replace(engine, threshold=_slide_stain_threshold(source, choice.resolution, record, has_tissue, cancel))

    import zarr

    root = zarr.open_group(str(store), mode="r+")
    targets = {name: root[name]["0"] for name in names}
    runner = TileRunner(engine.model, names, engine.precision) if tiled else None
    total = sum(max(len(c.tiles), 1) for c in chunks)
    done = sum(max(len(c.tiles), 1) for c in chunks if c.index in record.done)
    if progress:
        progress(done, total)
    for chunk in chunks:
        if chunk.index in record.done:
            run.chunks_resumed += 1
            continue
        if cancel is not None and (cancel.is_set() if hasattr(cancel, "is_set") else cancel()):
            raise Cancelled(f"cancelled after {len(record.done)} of {len(chunks)} chunks")
        y0, y1, x0, x1 = chunk.box
        buffers = {name: np.empty((y1 - y0, x1 - x0, 3), np.uint8) for name in names}
        if tiled:
            size = grid.tile_size
            keep = [t for t in chunk.tiles if has_tissue(t.y, t.y + size, t.x, t.x + size)]
            for t in set(chunk.tiles) - set(keep):
                ty0, ty1, tx0, tx1 = t.write
                for name in names:
                    buffers[name][ty0 - y0 : ty1 - y0, tx0 - x0 : tx1 - x0] = EMPTY_TILE_COLOURS.get(name, (0, 0, 0))
            base = done

            def report(n: int, _total: int) -> None:
                if progress:
                    progress(base + n + len(chunk.tiles) - len(keep), total)

            out = {name: _Offset(buffers[name], y0, x0) for name in names}
            run_tiles(source, grid, runner, names, out, batch_size=engine.batch_size, tiles=keep,
                      progress=report, cancel=cancel)
            run.tiles_run += len(keep)
            run.tiles_skipped += len(chunk.tiles) - len(keep)
        else:
            _infer_untiled(engine, source, chunk.box, names, choice.resolution, buffers,
                           has_tissue(y0, y1, x0, x1), cancel)
        for name in names:
            targets[name][:, y0:y1, x0:x1] = np.moveaxis(buffers[name], -1, 0)
        record.mark(chunk.index)
        run.chunks_run += 1
        done += max(len(chunk.tiles), 1)
        if progress:
            progress(done, total)
    record.finish("inference")
    if "pyramid" not in record.phases:
        for name in names:
            omezarr.build_pyramid(root[name])
        record.finish("pyramid")
    log.info("%s: %d chunks run, %d resumed; %d tiles run, %d skipped (no tissue)", slide.path.name,
             run.chunks_run, run.chunks_resumed, run.tiles_run, run.tiles_skipped)
    return run


def _slide_stain_threshold(source: Any, resolution: str, record: omezarr.RunRecord,
                           include: Callable[[int, int, int, int], bool], cancel: Any) -> float:
    """The stain engine's threshold for the whole image scored, over its blocks with tissue;
    computed once and kept in the run record, so a resumed run uses the same one."""
    if "stain_threshold" not in record.settings:
        threshold = stain_threshold(source, resolution, include=include, cancel=cancel)
        log.info("stain engine: slide threshold %.3f OD", threshold)
        record.settings["stain_threshold"] = threshold
        record.save()
    return float(record.settings["stain_threshold"])


def _infer_untiled(engine: StainEngine, source: Any, box: Box, names: tuple[str, ...],
                   resolution: str, buffers: dict[str, np.ndarray], tissue: bool, cancel: Any) -> None:
    if not tissue:
        for name in names:
            buffers[name][:] = EMPTY_TILE_COLOURS.get(name, (0, 0, 0))
        return
    images = stain_infer(source, resolution, dab_threshold=engine.dab_threshold, threshold=engine.threshold,
                         box=box, cancel=cancel)
    for name in names:
        buffers[name][:] = images[name]
