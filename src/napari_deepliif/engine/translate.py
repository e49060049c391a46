"""The ``translate`` model type: translate the IHC image into a virtual H&E, find nuclei on
it, and classify each nucleus by the IHC's own DAB (``docs/translate-then-segment.md``).

1. **Translate.** A CycleGAN generator (the CycleGAN repository's ``ResnetGenerator``,
   ``netG resnet_<n>blocks``, saved as ``latest_net_G_A.pth``) runs on tiles of the card's
   ``tile_size`` on the whole image's tile grid, neighbours sharing the card's ``overlap``
   (each pixel from the tile whose centre part covers it), input scaled to [-1, 1]: the
   ``VirtualHE`` output. Its norms normalise each tile on its own, as the CycleGAN test
   script runs them.
2. **Segment** (``segmenter: stain``). The stain engine's nucleus finder
   (:func:`napari_deepliif.engine.stain.stain_infer`) on the virtual H&E, unmixed with
   scikit-image's H&E(-DAB) stain vectors; an H&E image has no DAB, so only hematoxylin
   contrast makes the nuclear signal. ``segmenter: deepliif``: a DeepLIIF model's Seg of the
   virtual H&E (on the whole image's DeepLIIF tile grid) gives the nuclei instead, each tile's
   cell pixels labelled within the tile (:class:`DeepLIIFSegRunner`); ``segmenter: cellpose``:
   Cellpose's masks of each tile of that grid
   (:class:`~napari_deepliif.engine.cellpose_segmenter.CellposeSegRunner`).
3. **Classify.** A nucleus is positive when the mean DAB OD of the IHC image under it
   exceeds ``dab_threshold``; ``Marker`` is that DAB OD and ``Seg`` the nuclei in the Seg
   colours, so cells, scores, exports, widget, server and ``batch`` take them as DeepLIIF's.

The virtual H&E is read lazily (:class:`VirtualHE`, a :class:`TiledOutputs`): the
segmenter's blocks or tiles ask for parts of it and only the generator tiles under them run,
so a region's outputs are that box of the whole image's.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from napari_deepliif.constants import SEG, VIRTUAL_HE
from napari_deepliif.engine.base import EngineBase, fill_empty
from napari_deepliif.engine.inference import run_tiles
from napari_deepliif.engine.tiling import (
    Chunk,
    Tile,
    TileGrid,
    disjoint_tiles,
    tiled_chunks,
)
from napari_deepliif.errors import ModelError
from napari_deepliif.models.card import CARD_FILE, ModelCard, read_card
from napari_deepliif.progress import CancelCheck, ProgressCallback
from napari_deepliif.resolution import tile_size_for

log = logging.getLogger(__name__)


#: Where the generator's layers sit: ``model.1`` (head), ``model.4``/``model.7`` (down), the
#: residual blocks from ``model.10``; after ``n`` blocks the transposed convs at ``10 + n`` and
#: ``13 + n`` and the tail at ``17 + n`` (pad, ReLU and Tanh layers hold no parameters).
_FIRST_BLOCK = 10


@dataclass(frozen=True)
class _Conv:
    """One convolution of the generator: its key prefix, weight shape and output channels."""

    key: str
    shape: tuple[int, ...]
    out: int
    tail: bool = False

    @property
    def norm(self) -> str:
        """Key prefix of the norm layer after it (``model.4`` -> ``model.5``)."""
        head, index = self.key.rsplit(".", 1)
        return f"{head}.{int(index) + 1}"


def _convs(state: Mapping[str, Any], path: str) -> tuple[list[_Conv], bool]:
    """The convolutions of the CycleGAN ``ResnetGenerator`` that ``state`` claims to be (its
    width, block count and dropout read from the state itself), and whether its
    norms carry parameters (``norm=batch``) or not (``norm=instance``, CycleGAN's default,
    whose convs carry biases instead).

    Raises
    ------
    ModelError
        ``state`` has no 4-D ``model.1.weight`` or its residual blocks are not at
        ``model.10``, ``model.11``, ...
    """
    head = state.get("model.1.weight")
    if head is None or getattr(head, "ndim", 0) != 4:
        raise ModelError(f"{path}: no 4-D 'model.1.weight': this is not a CycleGAN ResnetGenerator state dict "
                         "(latest_net_G_A.pth of netG resnet_9blocks)")
    ngf = int(head.shape[0])
    blocks = sorted({int(m.group(1)) for k in state if (m := re.match(r"model\.(\d+)\.conv_block\.", k))})
    if not blocks or blocks != list(range(_FIRST_BLOCK, _FIRST_BLOCK + len(blocks))):
        raise ModelError(f"{path}: residual blocks at {blocks or 'none'}; a ResnetGenerator has them at "
                         "model.10, model.11, ...")
    n, dim = len(blocks), 4 * ngf
    after_dropout = state.get(f"model.{_FIRST_BLOCK}.conv_block.6.weight")
    first, second = 1, 6 if getattr(after_dropout, "ndim", 0) == 4 else 5
    convs = [_Conv("model.1", (ngf, 3, 7, 7), ngf), _Conv("model.4", (2 * ngf, ngf, 3, 3), 2 * ngf),
             _Conv("model.7", (dim, 2 * ngf, 3, 3), dim)]
    convs += [_Conv(f"model.{b}.conv_block.{c}", (dim, dim, 3, 3), dim) for b in blocks for c in (first, second)]
    convs += [_Conv(f"model.{_FIRST_BLOCK + n}", (dim, 2 * ngf, 3, 3), 2 * ngf),
              _Conv(f"model.{_FIRST_BLOCK + n + 3}", (2 * ngf, ngf, 3, 3), ngf),
              _Conv(f"model.{_FIRST_BLOCK + n + 7}", (3, ngf, 7, 7), 3, tail=True)]
    return convs, "model.2.weight" in state


def cyclegan_layout(state: Mapping[str, Any], path: str) -> dict[str, tuple[int, ...]]:
    """Parameter name -> shape of the CycleGAN ``ResnetGenerator`` (RGB to RGB) that ``state``
    claims to be: ``model.1`` 7x7 conv, ``model.4`` and ``model.7`` stride-2 convs, ``n``
    residual blocks from ``model.10`` (``conv_block.1`` and ``.5``, ``.6`` after a dropout:
    the repository always builds them with reflection padding), two transposed convs and a
    7x7 tail conv with bias.
    With ``norm=instance`` every conv has a bias; with ``norm=batch`` each norm after a conv
    has a weight and a bias instead.

    Raises
    ------
    ModelError
        See :func:`_convs`.
    """
    convs, batch = _convs(state, path)
    layout: dict[str, tuple[int, ...]] = {}
    for conv in convs:
        layout[f"{conv.key}.weight"] = conv.shape
        if conv.tail or not batch:
            layout[f"{conv.key}.bias"] = (conv.out,)
        else:
            layout[f"{conv.norm}.weight"] = layout[f"{conv.norm}.bias"] = (conv.out,)
    return layout


def generator_state(state: Mapping[str, Any], path: str) -> dict[str, Any]:
    """``state`` checked against :func:`cyclegan_layout` and put in the layout
    :class:`~napari_deepliif.engine.networks.ResnetGenerator` reads: a parameter-free
    instance norm gets weight 1 and bias 0, and the bias of a conv before a norm is dropped
    (the norm subtracts each channel's mean, so such a bias changes nothing).

    Raises
    ------
    ModelError
        Naming the first missing or unexpected parameter, or one of the wrong shape.
    """
    import torch

    from napari_deepliif.engine.networks import clean_state_dict

    state = clean_state_dict(state)
    layout = cyclegan_layout(state, path)
    missing = [k for k in layout if k not in state]
    if missing:
        raise ModelError(f"{path}: the generator lacks {len(missing)} parameters (first: '{missing[0]}') of the "
                         "CycleGAN ResnetGenerator layout")
    unexpected = [k for k in state if k not in layout]
    if unexpected:
        raise ModelError(f"{path}: the generator has {len(unexpected)} parameters the CycleGAN ResnetGenerator "
                         f"layout lacks (first: '{unexpected[0]}')")
    for key, shape in layout.items():
        if tuple(state[key].shape) != shape:
            raise ModelError(f"{path}: parameter '{key}' has shape {tuple(state[key].shape)}, expected {shape} "
                             "(an RGB to RGB generator)")
    convs, batch = _convs(state, path)
    if batch:
        return dict(state)
    result = dict(state)
    for conv in convs:
        if not conv.tail:
            del result[f"{conv.key}.bias"]
            result[f"{conv.norm}.weight"] = torch.ones(conv.out)
            result[f"{conv.norm}.bias"] = torch.zeros(conv.out)
    return result


@lru_cache(maxsize=2)
def _generator(path: str, device: str, stamp: tuple[int, int]) -> Any:
    """The generator of a ``latest_net_G_A.pth`` on ``device`` (cached while the file is unchanged)."""
    import torch

    from napari_deepliif.engine.networks import ResnetGenerator

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, ValueError, EOFError) as exc:
        raise ModelError(f"{path} cannot be read as a state dict ({exc.__class__.__name__}: {str(exc)[:200]}); "
                         "give the latest_net_G_A.pth the CycleGAN repository saves") from exc
    if not isinstance(state, Mapping):
        raise ModelError(f"{path} holds a {type(state).__name__}, not a state dict; give the latest_net_G_A.pth "
                         "the CycleGAN repository saves")
    net = ResnetGenerator(generator_state(state, path), path, padding="reflect")
    del state
    net = net.to(device).eval()
    net.optimise_layout()
    return net


class GeneratorRunner:
    """Runs the generator on batches of uint8 RGB tiles; returns each tile's ``VirtualHE``."""

    def __init__(self, engine: TranslateEngine):
        self.engine = engine

    def __call__(self, tiles: list[np.ndarray]) -> list[dict[str, np.ndarray]]:
        """S x S x 3 uint8 tiles in, ``{"VirtualHE": S x S x 3 uint8}`` per tile out: input
        scaled to [-1, 1] (``x / 127.5 - 1``), output mapped back as ``(y + 1) / 2 * 255``
        truncated to uint8 (as the CycleGAN repository saves its images)."""
        import torch

        from napari_deepliif.engine.devices import precision_context

        x = torch.from_numpy(np.stack(tiles)).to(self.engine.device).permute(0, 3, 1, 2).float() / 127.5 - 1
        with torch.inference_mode(), precision_context(self.engine.device, self.engine.precision):
            y = self.engine.network(x)
        images = ((y.float() + 1) / 2 * 255).clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        return [{VIRTUAL_HE: image} for image in images]


class TiledOutputs:
    """Outputs of a tile runner on an image's tile grid, computed as parts of them are read:
    a read runs the tiles under it (each once per instance) and takes each pixel from the
    tile whose write box holds it, so any part equals that part of the whole.

    Parameters
    ----------
    source : array-like, shape (H, W, C), uint8
        What the tiles are read from (numpy, zarr, a slide level, ...).
    grid : TileGrid
        The whole image's tile grid.
    runner : callable
        Tiles in, one ``{name: S x S x 3 uint8}`` per tile out (as :func:`run_tiles` takes).
    names : tuple of str
        The runner's outputs.
    batch_size : int
    cancel : callable or threading.Event, optional
        Checked between batches of tiles.
    skip_empty : bool
        Apply the reference's blank-tile rule (see :func:`run_tiles`).
    """

    def __init__(self, source: Any, grid: TileGrid, runner: Callable[[list[np.ndarray]], list[dict[str, np.ndarray]]],
                 names: tuple[str, ...], batch_size: int, cancel: CancelCheck | Any | None = None,
                 skip_empty: bool = False):
        self.source, self.grid, self.runner, self.names = source, grid, runner, names
        self.batch_size, self.cancel, self.skip_empty = batch_size, cancel, skip_empty
        self.rows = disjoint_tiles(grid)
        self._done: dict[tuple[int, int], dict[str, np.ndarray]] = {}

    def read(self, name: str, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        """Output ``name`` over rows ``y0:y1``, columns ``x0:x1`` (H x W x 3 uint8)."""
        under = [t for row in self.rows for t in row
                 if t.write[0] < y1 and t.write[1] > y0 and t.write[2] < x1 and t.write[3] > x0]
        self._run([t for t in under if (t.y, t.x) not in self._done])
        out = np.zeros((y1 - y0, x1 - x0, 3), np.uint8)
        for t in under:
            ty0, ty1, tx0, tx1 = max(t.write[0], y0), min(t.write[1], y1), max(t.write[2], x0), min(t.write[3], x1)
            out[ty0 - y0 : ty1 - y0, tx0 - x0 : tx1 - x0] = self._done[(t.y, t.x)][name][
                ty0 - t.write[0] : ty1 - t.write[0], tx0 - t.write[2] : tx1 - t.write[2]]
        return out

    def _run(self, tiles: list[Tile]) -> None:
        """Run ``tiles`` and keep each one's write box of every output."""
        if not tiles:
            return
        buffers = {(t.y, t.x): {name: np.zeros((t.write[1] - t.write[0], t.write[3] - t.write[2], 3), np.uint8)
                                for name in self.names} for t in tiles}
        writers = {name: _TileWriter({key: tile[name] for key, tile in buffers.items()}, tiles) for name in self.names}
        run_tiles(self.source, self.grid, self.runner, self.names, writers, batch_size=self.batch_size, tiles=tiles,
                  cancel=self.cancel, skip_empty=self.skip_empty)
        self._done.update(buffers)


class TiledImage(TiledOutputs):
    """One output of a tile runner as an H x W x 3 uint8 array (``image[ys, xs]``), computed
    as parts of it are read (see :class:`TiledOutputs`, whose parameters it takes, with the
    one output ``name``)."""

    def __init__(self, source: Any, grid: TileGrid, runner: Callable[[list[np.ndarray]], list[dict[str, np.ndarray]]],
                 name: str, batch_size: int, cancel: CancelCheck | Any | None = None, skip_empty: bool = False):
        self.shape = (int(source.shape[0]), int(source.shape[1]), 3)
        self.dtype = np.dtype(np.uint8)
        self.ndim = 3
        self.name = name
        super().__init__(source, grid, runner, (name,), batch_size, cancel, skip_empty)

    def __getitem__(self, key: tuple[slice, slice]) -> np.ndarray:
        ys, xs = key[:2]
        y0, y1, _ = ys.indices(self.shape[0])
        x0, x1, _ = xs.indices(self.shape[1])
        return self.read(self.name, y0, y1, x0, x1)


class VirtualHE(TiledImage):
    """The virtual H&E of an RGB image as an array (``image[ys, xs]``), computed as parts of
    it are read (see :class:`TiledOutputs`).

    Parameters
    ----------
    engine : TranslateEngine
    source : array-like, shape (H, W, 3), uint8
        The IHC image (numpy, zarr, a slide level, ...).
    cancel : callable or threading.Event, optional
        Checked between batches of tiles.
    """

    def __init__(self, engine: TranslateEngine, source: Any, cancel: CancelCheck | Any | None = None):
        super().__init__(source, engine.grid((int(source.shape[0]), int(source.shape[1]))), GeneratorRunner(engine),
                         VIRTUAL_HE, engine.batch_size, cancel)


class _TileWriter:
    """Takes :func:`run_tiles`' writes (image coordinates, one tile's write box each) into
    that tile's own buffer."""

    def __init__(self, buffers: dict[tuple[int, int], np.ndarray], tiles: list[Tile]):
        self.by_box = {(t.write[0], t.write[2]): buffers[(t.y, t.x)] for t in tiles}

    def __setitem__(self, key: tuple[slice, slice], value: np.ndarray) -> None:
        self.by_box[(key[0].start, key[1].start)][...] = value


class _Paired:
    """The IHC image and its virtual H&E side by side as one 6-channel array, so that one
    tile read gives a segmenter tile both."""

    def __init__(self, source: Any, virtual: VirtualHE):
        self.source, self.virtual = source, virtual
        self.shape = (*virtual.shape[:2], 6)

    def __getitem__(self, key: tuple[slice, slice]) -> np.ndarray:
        return np.concatenate([np.asarray(self.source[key], dtype=np.uint8)[..., :3], self.virtual[key]], axis=2)


class DeepLIIFSegRunner:
    """The ``deepliif`` segmenter on batches of paired tiles (IHC, virtual H&E): the DeepLIIF
    model's Seg of the virtual H&E finds the nuclei (its cell pixels, at the default
    ``seg_thresh``, split by its boundaries), the IHC's DAB classifies them; returns each
    tile's ``Marker`` and ``Seg`` as the stain segmenter renders them."""

    def __init__(self, engine: TranslateEngine):
        from napari_deepliif.engine.inference import TileRunner

        self.seg = TileRunner(engine.segmenter, (SEG,), engine.precision)
        self.dab_threshold = engine.dab_threshold
        self.unmixing = engine.unmixing({})

    def __call__(self, tiles: list[np.ndarray]) -> list[dict[str, np.ndarray]]:
        """S x S x 6 uint8 tiles (IHC, then virtual H&E) in, ``{"Marker", "Seg"}`` per tile out."""
        from scipy import ndimage as ndi

        from napari_deepliif.constants import DEFAULT_SEG_THRESH, SEG_BOUNDARY_MAX_GREEN
        from napari_deepliif.engine.stain_nuclei import classified_by_dab

        segs = self.seg([np.ascontiguousarray(t[..., 3:]) for t in tiles])
        out = []
        for tile, result in zip(tiles, segs):
            seg = result[SEG]
            cell = (np.add(seg[..., 0], seg[..., 2], dtype=np.int16) > DEFAULT_SEG_THRESH) & (
                seg[..., 1] <= SEG_BOUNDARY_MAX_GREEN)
            labels, _ = ndi.label(cell)
            out.append(classified_by_dab(tile[..., :3], labels, self.unmixing, self.dab_threshold))
        return out


def _he_settings() -> Any:
    """The stain engine's settings on a virtual H&E: it holds no DAB, so its third channel
    adds nothing to the nuclear signal."""
    from napari_deepliif.engine.stain_nuclei import StainSettings

    return StainSettings(dab_detection_od=math.inf)


@dataclass
class TranslateEngine(EngineBase):
    """A translate-then-segment model (``type: translate`` in its card) on a device.

    Build one with :meth:`TranslateEngine.load`.

    Attributes
    ----------
    dab_threshold : float
        Mean nuclear DAB OD (of the IHC image) above which a nucleus is positive; the card's
        by default, changeable per run (:meth:`with_parameters`).
    nucleus_threshold : float or None
        The ``stain`` segmenter's foreground threshold (OD); None: the Otsu threshold of the
        whole virtual H&E (:meth:`statistics`).
    segmenter : DeepLIIFModel, cellpose.models.CellposeModel or None
        The ``deepliif`` or ``cellpose`` segmenter's model (the card's ``segmenter_model``);
        None for ``stain``.
    """

    card: ModelCard
    folder: Path
    device: str
    precision: str = "fp32"
    batch_size: int = 1
    dab_threshold: float = 0.2
    nucleus_threshold: float | None = None
    segmenter: Any = None

    name = "translate"
    outputs = (VIRTUAL_HE, "Marker", SEG)
    parameter_names = ("dab_threshold",)

    @classmethod
    def load(cls, folder: str | Path, *, device: str = "auto", precision: str = "fp32",
             batch_size: int | None = None) -> TranslateEngine:
        """Open a model folder with a ``translate`` card.

        Parameters
        ----------
        folder : str or Path
            Holds ``model.yaml`` and the generator file it names (``latest_net_G_A.pth``); a
            ``segmenter: deepliif`` card names a DeepLIIF model folder too, a ``segmenter:
            cellpose`` card a Cellpose model file (run in fp32), both loaded here.
        device, precision, batch_size
            As :meth:`napari_deepliif.engine.engines.Engine.load`.

        Raises
        ------
        ModelError
            A bad card (naming the field), a generator that does not have the CycleGAN
            ResnetGenerator layout (naming the parameter), or (``cellpose``) no ``cellpose``
            package or a file it cannot load.
        """
        from napari_deepliif.engine.devices import run_settings

        dev, size = run_settings(device, precision, batch_size)
        folder = Path(folder)
        card = read_card(folder, cls.name)
        segmenter = None
        if card.segmenter == "cellpose":
            from napari_deepliif.engine.cellpose_segmenter import load_cellpose

            segmenter = load_cellpose(card.segmenter_model, dev)
        elif card.segmenter_model is not None:
            from napari_deepliif.models.loader import load_model

            segmenter = load_model(card.segmenter_model, device=dev)
        engine = cls(card=card, folder=folder, device=dev, precision=precision, batch_size=size,
                     dab_threshold=float(card.dab_threshold), nucleus_threshold=card.nucleus_threshold,
                     segmenter=segmenter)
        engine.network  # noqa: B018 -- load now, so a bad generator file fails here, not mid-run
        return engine

    @property
    def network(self) -> Any:
        """The generator, loaded once per file and device."""
        stat = self.card.weights.stat()
        return _generator(str(self.card.weights.resolve()), self.device, (stat.st_size, stat.st_mtime_ns))

    @property
    def model_name(self) -> str:
        """The card's name."""
        return self.card.name

    @property
    def model_hash(self) -> str:
        """A short hash of the card and the generator's bytes (and the ``cellpose`` segmenter's
        file), then (``deepliif`` segmenter) its model's fingerprint after a ``+``."""
        from napari_deepliif.models.hash import content_hash

        files = [("weights", self.card.weights)]
        if self.card.segmenter == "cellpose":
            files.append(("segmenter", self.card.segmenter_model))
        own = content_hash(self.card.card_file or self.folder / CARD_FILE, files)
        return own if self.card.segmenter != "deepliif" else f"{own}+{self.segmenter.fingerprint()}"

    def grid(self, shape: tuple[int, int]) -> TileGrid:
        """The tile grid of an image of ``shape`` (H, W): the card's tile size and overlap."""
        return TileGrid(int(shape[0]), int(shape[1]), self.card.tile_size, self.card.overlap // 2)

    def _run(self, source: Any, resolution: str, names: tuple[str, ...], result: MutableMapping[str, Any],
             progress: ProgressCallback | None, cancel: CancelCheck | Any | None) -> None:
        self._compute(source, resolution, names, result, (0, int(source.shape[0]), 0, int(source.shape[1])),
                      progress, cancel)

    def _compute(self, source: Any, resolution: str, names: tuple[str, ...], out: Mapping[str, Any],
                 box: tuple[int, int, int, int], progress: ProgressCallback | None,
                 cancel: CancelCheck | Any | None) -> None:
        """``names`` of ``box`` (y0, y1, x0, x1) of ``source`` into ``out`` (box-sized arrays)."""
        from napari_deepliif.engine.stain import stain_infer
        from napari_deepliif.engine.stain_vectors import REFERENCE_VECTORS

        virtual = VirtualHE(self, source, cancel)
        y0, y1, x0, x1 = box
        if VIRTUAL_HE in names:
            out[VIRTUAL_HE][:] = virtual[y0:y1, x0:x1]
        wanted = tuple(n for n in names if n != VIRTUAL_HE)
        if not wanted:
            return
        if self.segmenter is not None:
            grid = TileGrid(int(source.shape[0]), int(source.shape[1]), tile_size_for(resolution))
            segmented = TiledOutputs(_Paired(source, virtual), grid, self._segmenter_runner(resolution),
                                     ("Marker", SEG), self.batch_size, cancel)
            for name in wanted:
                out[name][:] = segmented.read(name, y0, y1, x0, x1)
            return
        images = stain_infer(virtual, resolution, dab_threshold=self.dab_threshold,
                             threshold=self.nucleus_threshold, vectors=REFERENCE_VECTORS, box=box,
                             settings=_he_settings(), dab_image=source, progress=progress, cancel=cancel)
        for name in wanted:
            out[name][:] = images[name]

    def _segmenter_runner(self, resolution: str) -> Callable[[list[np.ndarray]], list[dict[str, np.ndarray]]]:
        """The ``deepliif`` or ``cellpose`` segmenter's tile runner at ``resolution``."""
        if self.card.segmenter != "cellpose":
            return DeepLIIFSegRunner(self)
        from napari_deepliif.engine.cellpose_segmenter import (
            CellposeSegRunner,
            diameter_px,
        )

        diameter = diameter_px(self.segmenter, self.card.nucleus_diameter_um, self.card.pixel_size, resolution)
        return CellposeSegRunner(self.segmenter, diameter, self.card.flow_threshold, self.card.cellprob_threshold,
                                 self.dab_threshold, self.unmixing({}))

    def plan(self, shape: tuple[int, int], resolution: str, chunk_size: int) -> list[Chunk]:
        """Blocks of whole tiles of the image's own tile grid (see :meth:`EngineBase.plan`)."""
        return tiled_chunks(self.grid(shape), chunk_size)

    def statistics(self, source: Any, resolution: str, *, include: Callable[[int, int, int, int], bool] | None = None,
                   cancel: CancelCheck | Any | None = None) -> dict:
        """The ``stain`` segmenter's foreground threshold over the whole virtual H&E (the parts
        ``include`` accepts), unless the card fixes it; nothing for ``deepliif`` and ``cellpose``."""
        from napari_deepliif.engine.stain import stain_threshold
        from napari_deepliif.engine.stain_vectors import REFERENCE_VECTORS

        if self.segmenter is not None:
            return {}
        threshold = self.nucleus_threshold
        if threshold is None:
            threshold = stain_threshold(VirtualHE(self, source, cancel), resolution, vectors=REFERENCE_VECTORS,
                                        settings=_he_settings(), include=include, cancel=cancel)
            log.info("translate: nucleus threshold %.3f OD over the whole virtual H&E", threshold)
        return {"nucleus_threshold": float(threshold)}

    def with_statistics(self, statistics: Mapping[str, Any]) -> TranslateEngine:
        """This engine with the nucleus threshold of :meth:`statistics` (none for ``deepliif``
        and ``cellpose``)."""
        if "nucleus_threshold" not in statistics:
            return self
        return replace(self, nucleus_threshold=float(statistics["nucleus_threshold"]))

    def unmixing(self, statistics: Mapping[str, Any]) -> np.ndarray | None:
        """The HED matrix the IHC's DAB was classified with (the same numbers cells measure)."""
        from napari_deepliif.engine.stain_vectors import REFERENCE_VECTORS

        return REFERENCE_VECTORS.unmixing()

    def infer_chunk(self, source: Any, chunk: Chunk, resolution: str, names: tuple[str, ...],
                    out: Mapping[str, np.ndarray], *, include: Callable[[int, int, int, int], bool] | None = None,
                    progress: ProgressCallback | None = None, cancel: CancelCheck | Any | None = None) -> tuple[int, int]:
        """The chunk as that box of the whole image scored: the generator's tiles and the
        segmenter's blocks stay on the whole image's grids (see :meth:`EngineBase.infer_chunk`);
        the write boxes of tiles ``include`` rejects get the empty-tile colours."""
        size = self.card.tile_size
        left_out = [t for t in chunk.tiles if include is not None and not include(t.y, t.y + size, t.x, t.x + size)]
        y0, _, x0, _ = chunk.box
        if len(left_out) < len(chunk.tiles):
            self._compute(source, resolution, names, out, chunk.box, progress, cancel)
        for t in left_out:
            fill_empty(out, names, (t.write[0] - y0, t.write[1] - y0, t.write[2] - x0, t.write[3] - x0))
        return len(chunk.tiles) - len(left_out), len(left_out)
