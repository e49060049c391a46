"""Whole-slide inference streamed to OME-Zarr, chunk by chunk, resumable.

The chunks, the engine's whole-image statistics and the seam rule are the region core's
(:func:`napari_deepliif.regions.infer.infer_chunks`): results equal one ``infer`` of the
image scored, pixel for pixel, whatever the chunk size. Here each chunk is written to the
store and recorded as done, and a rerun skips the chunks done. The statistics (the stain
engine's threshold) are kept in the run record, so a resumed run uses the same ones.

Tiles whose footprint has no tissue in the tissue mask are not run; they get the
reference's constant empty-tile outputs, as blank tiles do; the stain threshold is taken
over the blocks with tissue only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from napari_deepliif import __version__
from napari_deepliif.engine.base import EngineBase, input_region
from napari_deepliif.engine.tiling import Chunk
from napari_deepliif.regions.infer import CHUNK_SIZE, Include, Writer, infer_chunks
from napari_deepliif.slides import omezarr
from napari_deepliif.slides.readers import LevelChoice, Slide
from napari_deepliif.slides.tissue import TissueMask, tissue_mask

log = logging.getLogger(__name__)

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


def _settings(engine: EngineBase, slide: Slide, choice: Any, region: tuple[int, int, int, int] | None,
              names: tuple[str, ...], chunk_size: int, use_tissue: bool) -> dict:
    return {"engine": engine.name, "model": engine.model_name, "model_hash": engine.model_hash,
            "parameters": engine.parameters, "version": __version__, "slide": slide.path.name, "level": choice.level, "factor": choice.factor,
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


def stored_mask(store: Path) -> TissueMask | None:
    """The tissue mask a store was written with (None if it was run without one)."""
    import zarr

    root = zarr.open_group(str(store), mode="r")
    if "tissue_mask" not in root:
        return None
    array = root["tissue_mask"]
    return TissueMask(np.asarray(array[:]).astype(bool), float(array.attrs["downsample"]),
                      float(array.attrs["threshold"]))


def slide_source(slide: Slide, choice: LevelChoice, region: tuple[int, int, int, int] | None,
                 mask: TissueMask | None, *, grey: bool = False) -> tuple[Any, Include | None]:
    """The image a run scores and which of its parts to compute.

    Parameters
    ----------
    slide : Slide
    choice : LevelChoice
        The level scored (:meth:`Slide.level_or_default`).
    region : (x, y, width, height), optional
        Rectangle in pixels of that level.
    mask : TissueMask, optional
    grey : bool
        Take a one-channel slide (for an engine of fluorescence images).

    Returns
    -------
    (array-like, callable or None)
        A lazy H x W x 3 (one channel: H x W) view of the level (or of ``region``, checked to
        lie in it); the tissue test of boxes of that view (None without a mask).
    """
    # checks the pixels, and that the region lies in the level
    source = input_region(slide.array(choice), region, grey=grey)
    origin = (int(region[1]), int(region[0])) if region is not None else (0, 0)
    return source, None if mask is None else mask.includer(choice.downsample, origin)


@dataclass
class StoreRun:
    """A slide's run into its store, opened (:func:`open_store_run`): what its chunks need.

    Attributes
    ----------
    run : SlideRun
        The counts, filled as the run goes.
    choice : LevelChoice
        The level scored.
    record : RunRecord
        The resume record (settings, with the statistics once known; chunks done).
    names : tuple of str
        Outputs computed.
    source : array-like
        The image scored (lazy).
    include : callable or None
        Tissue test of boxes of ``source``.
    chunks : list of Chunk
        The engine's plan of ``source``.
    """

    run: SlideRun
    choice: LevelChoice
    record: omezarr.RunRecord
    names: tuple[str, ...]
    source: Any
    include: Include | None
    chunks: list[Chunk]

    def todo(self) -> list[Chunk]:
        """The chunks not done yet."""
        return [c for c in self.chunks if c.index not in self.record.done]


def open_store_run(
    engine: EngineBase,
    slide: Slide,
    store: str | Path,
    *,
    resolution: str | None = None,
    outputs: str | Iterable[str] = "all",
    region: tuple[int, int, int, int] | None = None,
    chunk_size: int = CHUNK_SIZE,
    tissue: bool | TissueMask = True,
    overwrite: bool = False,
) -> StoreRun:
    """Create or resume the store of a run (parameters as :func:`infer_slide`), its tissue
    mask included, and plan the chunks; the statistics are not computed yet
    (:func:`ensure_statistics`)."""
    store = Path(store)
    names = engine.resolve_outputs(outputs)
    choice = slide.level_or_default(resolution)
    source, _ = slide_source(slide, choice, region, None, grey=not engine.brightfield)
    shape = (int(source.shape[0]), int(source.shape[1]))
    tissue = engine.tissue(lambda: tissue) or False  # True, a given mask, or False (off, or not for this engine)
    settings = _settings(engine, slide, choice, region, names, chunk_size, tissue is not False)
    record = None if overwrite else omezarr.RunRecord.load(store)
    if record is not None:
        record.check(settings)
    mask = None
    if tissue is not False:
        mask = stored_mask(store) if record is not None else None
        mask = mask or (tissue if isinstance(tissue, TissueMask) else tissue_mask(slide, choice.level0_mpp))
    if record is None:
        record = _create(store, settings, shape, mask)
    source, include = slide_source(slide, choice, region, mask, grey=not engine.brightfield)
    return StoreRun(SlideRun(store, shape, choice.resolution, settings), choice, record, names, source, include,
                    engine.plan(shape, choice.resolution, chunk_size))


def ensure_statistics(engine: EngineBase, opened: StoreRun, cancel: Any = None) -> dict:
    """The engine's whole-image statistics of the run: those recorded, or computed now over
    the tissue and recorded (only while chunks remain to be computed)."""
    record = opened.record
    if "statistics" not in record.settings and opened.todo():
        record.settings["statistics"] = engine.statistics(opened.source, opened.run.resolution,
                                                          include=opened.include, cancel=cancel)
        record.save()
    return record.settings.get("statistics") or {}


def store_writer(store: Path, names: tuple[str, ...]) -> Writer:
    """``write(name, box, array)`` of H x W x 3 outputs into the store's level-0 arrays."""
    import zarr

    root = zarr.open_group(str(store), mode="r+")
    targets = {name: root[name]["0"] for name in names}

    def write(name: str, box: tuple[int, int, int, int], array: np.ndarray) -> None:
        y0, y1, x0, x1 = box
        targets[name][:, y0:y1, x0:x1] = np.moveaxis(array, -1, 0)

    return write


def finish_inference(run: SlideRun, record: omezarr.RunRecord, names: tuple[str, ...]) -> SlideRun:
    """Record the inference of ``run`` as done and build the outputs' pyramids (once)."""
    import zarr

    record.finish("inference")
    if "pyramid" not in record.phases:
        root = zarr.open_group(str(run.store), mode="r+")
        for name in names:
            omezarr.build_pyramid(root[name])
        record.finish("pyramid")
    log.info("%s: %d chunks run, %d resumed; %d tiles run, %d skipped (no tissue)", run.settings["slide"],
             run.chunks_run, run.chunks_resumed, run.tiles_run, run.tiles_skipped)
    return run


def infer_slide(
    engine: EngineBase,
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
        From :func:`napari_deepliif.engine.engines.load_engine`.
    slide : Slide
        From :func:`napari_deepliif.slides.open_slide`.
    store : str or Path
        Directory of the OME-Zarr store (``*.ome.zarr``); created if missing, resumed if it
        holds a run with the same settings.
    resolution : {'40x', '20x', '10x'}, optional
        Magnification to score at; picks the level (:meth:`Slide.level_or_default`).
    outputs : 'all', 'score' or names
        As :meth:`Engine.infer`.
    region : (x, y, width, height), optional
        Rectangle in pixels of the chosen level; default the whole level.
    chunk_size : int
        Chunk edge in pixels (whole tiles for DeepLIIF); memory grows with its square.
    tissue : bool or TissueMask
        Skip tiles outside the tissue mask (True: computed here; False: run every tile); an
        engine of fluorescence images (``engine.brightfield`` False) runs every tile.
        For the stain engine it also restricts the pixels its one threshold is taken from
        (see module docstring); a ``StainEngine`` with a ``threshold`` set keeps that one.
    overwrite : bool
        Start again even if the store holds a run.
    progress : callable(done, total), optional
        Tiles (chunks for an untiled engine) done and in all, resumed ones included.
    cancel : callable or threading.Event, optional
        Checked between batches; raises :class:`Cancelled`; chunks done stay done.
    """
    opened = open_store_run(engine, slide, store, resolution=resolution, outputs=outputs, region=region,
                            chunk_size=chunk_size, tissue=tissue, overwrite=overwrite)
    statistics = ensure_statistics(engine, opened, cancel)
    record, run = opened.record, opened.run
    counts, _ = infer_chunks(engine, opened.source, run.resolution, opened.names,
                             store_writer(run.store, opened.names), chunk_size=chunk_size, include=opened.include,
                             statistics=statistics, done=set(record.done), on_chunk=record.mark, progress=progress,
                             cancel=cancel)
    run.chunks_run, run.chunks_resumed = counts.chunks_run, counts.chunks_resumed
    run.tiles_run, run.tiles_skipped = counts.tiles_run, counts.tiles_skipped
    return finish_inference(run, record, opened.names)
