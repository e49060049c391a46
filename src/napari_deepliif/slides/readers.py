"""Open whole-slide images lazily: only the pixels asked for are read.

Backends, picked by :func:`open_slide`:

``tifffile``
    The TIFF family (Aperio SVS, Hamamatsu NDPI, OME-TIFF, generic tiled/pyramidal TIFF):
    each pyramid level is read through ``TiffFile.aszarr(level=i)`` as a zarr array, so a
    slice decodes only the TIFF tiles it touches.
``openslide``
    Other vendor formats (MRXS, SCN, VMS, BIF, ...) through ``openslide-python`` when it is
    installed (``pip install napari-deepliif[openslide]``).
``image``
    Plain PNG/JPEG (and other PIL formats), read whole: they are small.

Every level is an H x W x 3 uint8 array-like indexed ``[rows, cols]`` (``y`` then ``x``), or
H x W for a one-channel (fluorescence) image, 8- or 16-bit, which only an engine of
fluorescence images takes (:func:`napari_deepliif.rgb.check_input`).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from napari_deepliif.constants import DEFAULT_RESOLUTION, MICRONS_PER_PIXEL_BY_RESOLUTION
from napari_deepliif.errors import DeepLIIFError, InputImageError
from napari_deepliif.io.image_input import check_tiff_tiles, tiff_colour
from napari_deepliif.io.placement import Placement
from napari_deepliif.resolution import resolution_from_mpp, resolve_resolution
from napari_deepliif.slides import metadata
from napari_deepliif.slides.metadata import PixelSize

log = logging.getLogger(__name__)

#: Suffixes read by tifffile (pyramids included).
TIFF_SUFFIXES = (".tif", ".tiff", ".svs", ".ndpi", ".btf", ".tf8", ".tf2")
#: Suffixes read whole by PIL.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
#: The coarsest level whose pixel size is at most this factor above the target is read, and
#: averaged down by the whole factor nearest the remaining ratio.
LEVEL_TOLERANCE = 1.25


class SlideMetadataError(DeepLIIFError):
    """The slide's pixel size is unknown and none was given."""


@dataclass(frozen=True)
class Level:
    """One pyramid level: ``shape`` (height, width) in pixels and ``downsample`` from level 0."""

    shape: tuple[int, int]
    downsample: float


@dataclass(frozen=True)
class LevelChoice:
    """Where to read a slide for one magnification (see :meth:`Slide.level_for`).

    Attributes
    ----------
    level : int
        Pyramid level read.
    factor : int
        Extra whole-number averaging applied to that level (1: none).
    downsample : float
        Total downsample from level 0 (level downsample x ``factor``).
    mpp : float or None
        Pixel size of the pixels scored, µm/px (None when the slide's is unknown).
    resolution : str
        The magnification to tell the engine (``'40x'``, ``'20x'`` or ``'10x'``).
    """

    level: int
    factor: int
    downsample: float
    mpp: float | None
    resolution: str

    @property
    def level0_mpp(self) -> float:
        """Full-resolution pixel size, µm/px: the slide's, or the one its magnification implies."""
        return (self.mpp if self.mpp is not None else MICRONS_PER_PIXEL_BY_RESOLUTION[self.resolution]) / self.downsample

    def box(self, region: tuple[float, float, float, float], shape: tuple[int, int]) -> tuple[int, int, int, int]:
        """The pixels of the level read (of ``shape`` (H, W)) that cover ``region``
        ``(x, y, width, height)`` of full-resolution pixels, as ``(x, y, width, height)``."""
        return Placement(downsample=self.downsample).box_in_scored(region, shape)


class ChannelsLast:
    """A (C, H, W) array-like seen as (H, W, C)."""

    def __init__(self, array: Any):
        self.array = array
        self.shape = (*tuple(array.shape[1:3]), int(array.shape[0]))
        self.dtype = array.dtype

    def __getitem__(self, key: tuple[slice, slice]) -> np.ndarray:
        return np.moveaxis(np.asarray(self.array[(slice(None), *key)]), 0, -1)


class _OpenSlideLevel:
    """One OpenSlide level as an H x W x 3 uint8 array-like (transparent pixels read white)."""

    def __init__(self, handle: Any, level: int):
        self.handle, self.level = handle, level
        width, height = handle.level_dimensions[level]
        self.shape = (int(height), int(width), 3)
        self.dtype = np.dtype(np.uint8)
        self.downsample = float(handle.level_downsamples[level])

    def __getitem__(self, key: tuple[slice, slice]) -> np.ndarray:
        (y0, y1, _), (x0, x1, _) = key[0].indices(self.shape[0]), key[1].indices(self.shape[1])
        if y1 <= y0 or x1 <= x0:
            return np.zeros((max(y1 - y0, 0), max(x1 - x0, 0), 3), np.uint8)
        origin = (round(x0 * self.downsample), round(y0 * self.downsample))
        rgba = np.asarray(self.handle.read_region(origin, self.level, (x1 - x0, y1 - y0)))
        alpha = rgba[..., 3:4].astype(np.uint16)
        return ((rgba[..., :3] * alpha + 255 * (255 - alpha)) // 255).astype(np.uint8)


class Downsampled:
    """An H x W x 3 uint8 (or one-channel H x W) array-like averaged over ``factor`` x
    ``factor`` blocks, lazily.

    Output pixel ``(i, j)`` is the rounded mean of source pixels ``[i*f:(i+1)*f, j*f:(j+1)*f]``;
    a partial block at the right or bottom edge is dropped.
    """

    def __init__(self, array: Any, factor: int):
        self.array, self.factor = array, int(factor)
        grey = len(array.shape) == 2
        self.shape = (array.shape[0] // factor, array.shape[1] // factor, *(() if grey else (3,)))
        self.dtype = np.dtype(array.dtype if grey else np.uint8)

    def __getitem__(self, key: tuple[slice, slice]) -> np.ndarray:
        (y0, y1, _), (x0, x1, _) = key[0].indices(self.shape[0]), key[1].indices(self.shape[1])
        f = self.factor
        block = np.asarray(self.array[y0 * f : y1 * f, x0 * f : x1 * f])
        block = block[..., :3] if block.ndim == 3 else block
        h, w = max(y1 - y0, 0), max(x1 - x0, 0)
        mean = block.reshape(h, f, w, f, *self.shape[2:]).mean(axis=(1, 3))
        return np.rint(mean).astype(self.dtype)


class Slide:
    """A whole-slide image opened lazily; close it (or use ``with``) when done.

    Attributes
    ----------
    path : Path
    backend : {'tifffile', 'openslide', 'image'}
    levels : list of Level
        Level 0 is full resolution.
    pixel_size : PixelSize
        From the file's metadata, or the ``mpp`` given to :func:`open_slide`.
    """

    def __init__(self, path: Path, backend: str, arrays: list[Any], levels: list[Level],
                 pixel_size: PixelSize, handle: Any = None):
        self.path, self.backend = path, backend
        self._arrays, self.levels = arrays, levels
        self.pixel_size, self._handle = pixel_size, handle

    @classmethod
    def from_arrays(cls, name: str, arrays: list[Any], mpp: float | None = None) -> Slide:
        """A slide of in-memory pyramid levels (level 0 first, H x W x 3 array-likes), e.g. a
        napari layer's, so that slide rules (the tissue mask) apply to it alike."""
        height, width = (int(v) for v in arrays[0].shape[:2])
        levels = [Level((int(a.shape[0]), int(a.shape[1])), width / int(a.shape[1])) for a in arrays]
        return cls(Path(name), "arrays", list(arrays), levels, PixelSize(mpp, None, "given" if mpp else "none"))

    def __enter__(self) -> Slide:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the file handle."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width) of level 0 in pixels."""
        return self.levels[0].shape

    @property
    def mpp(self) -> float | None:
        """Pixel size of level 0 in µm/px (from the magnification if only that is known)."""
        return self.pixel_size.effective_mpp

    def level(self, index: int) -> Any:
        """Level ``index`` as a lazy H x W x 3 uint8 array-like."""
        return self._arrays[index]

    def array(self, choice: LevelChoice) -> Any:
        """The lazy H x W x 3 uint8 array-like a :class:`LevelChoice` describes."""
        source = self.level(choice.level)
        return source if choice.factor == 1 else Downsampled(source, choice.factor)

    def level_for(self, resolution: str | None = None) -> LevelChoice:
        """The level (and extra averaging) that gives ``resolution``, and what to tell the engine.

        Parameters
        ----------
        resolution : {'40x', '20x', '10x'}, optional
            Magnification to score at (0.25/0.5/1.0 µm/px). Default: level 0 as it is.

        Raises
        ------
        SlideMetadataError
            Neither the slide's pixel size nor its magnification is known and no
            ``resolution`` is given.
        """
        base = self.mpp
        if base is None:
            if resolution is None:
                raise SlideMetadataError(
                    f"{self.path.name}: the file states neither a pixel size nor a magnification; "
                    "pass --mpp (µm/px of the full-resolution level) or --resolution "
                    "(the magnification of the full-resolution level)")
            res = resolve_resolution(resolution)
            log.info("%s: pixel size unknown; the full-resolution level is scored as %s, as given", self.path.name, res)
            return LevelChoice(0, 1, 1.0, None, res)
        target = MICRONS_PER_PIXEL_BY_RESOLUTION[resolve_resolution(resolution)] if resolution else base
        mpps = [base * level.downsample for level in self.levels]
        finer = [i for i in range(len(mpps)) if mpps[i] <= target * LEVEL_TOLERANCE]
        if not finer:
            log.warning("%s: scanned at %.3g µm/px, coarser than the %.3g µm/px asked for; scoring level 0",
                        self.path.name, base, target)
        index = max(finer, key=lambda i: mpps[i]) if finer else 0
        factor = max(1, round(target / mpps[index]))
        mpp = mpps[index] * factor
        return LevelChoice(index, factor, self.levels[index].downsample * factor, mpp, resolution_from_mpp(mpp))

    def level_or_default(self, resolution: str | None = None) -> LevelChoice:
        """:meth:`level_for`, taking a file that states no pixel size as :data:`DEFAULT_RESOLUTION`.

        The rule every front end shares (``score``, ``batch``, the server): a file with a pixel
        size is read at its own (or ``resolution``), one without is scored as ``resolution``
        when given, else as 40x, and a warning says so.

        Parameters
        ----------
        resolution : {'40x', '20x', '10x'}, optional
            Magnification to score at (0.25/0.5/1.0 µm/px).
        """
        if resolution is None and self.mpp is None:
            log.warning("%s states no pixel size: assuming it is %s (give --mpp or --resolution if it is not)",
                        self.path.name, DEFAULT_RESOLUTION)
            resolution = DEFAULT_RESOLUTION
        return self.level_for(resolution)

    def __repr__(self) -> str:
        shapes = ", ".join(f"{h}x{w}" for h, w in (level.shape for level in self.levels))
        return f"Slide({self.path.name!r}, {self.backend}, levels [{shapes}], mpp {self.mpp})"


def _tiff_levels(tif: Any, path: Path) -> tuple[list[Any], list[Level]]:
    import zarr

    series = tif.series[0]
    arrays, levels = [], []
    for index, level in enumerate(series.levels):
        where = f"{path} (level {index})" if len(series.levels) > 1 else str(path)
        check_tiff_tiles(level.pages, where)
        convert = tiff_colour(level.keyframe, where)
        array = zarr.open_array(tif.aszarr(series=0, level=index), mode="r")
        squeeze = [i for i, (ax, n) in enumerate(zip(level.axes, level.shape)) if n == 1 and ax not in "YXS"]
        names = "".join(ax for i, ax in enumerate(level.axes) if i not in squeeze)
        if squeeze:
            array = _Squeezed(array, tuple(squeeze))
        if names in ("CYX", "SYX"):
            array = ChannelsLast(array)
        elif names not in ("YXS", "YX"):
            raise InputImageError(f"unsupported TIFF layout (axes {level.axes}); expected an RGB or one-channel image")
        if convert is not None:
            array = ToRGB(array, convert)
        arrays.append(array)
    width = arrays[0].shape[1]
    for array in arrays:
        levels.append(Level((int(array.shape[0]), int(array.shape[1])), width / array.shape[1]))
    return arrays, levels


class ToRGB:
    """An H x W (palette) or H x W x S (CMYK) array-like seen as H x W x 3 uint8 RGB, converted
    block by block as it is read (see :func:`napari_deepliif.io.image_input.tiff_colour`)."""

    def __init__(self, array: Any, convert: Any):
        self.array, self.convert = array, convert
        self.shape = (*tuple(array.shape[:2]), 3)
        self.dtype = np.dtype(np.uint8)

    def __getitem__(self, key: tuple[slice, slice]) -> np.ndarray:
        return self.convert(np.asarray(self.array[key]))


class _Squeezed:
    """An array-like with some length-1 leading axes dropped."""

    def __init__(self, array: Any, axes: tuple[int, ...]):
        self.array, self.axes = array, axes
        self.shape = tuple(n for i, n in enumerate(array.shape) if i not in axes)
        self.dtype = array.dtype

    def __getitem__(self, key: tuple[slice, ...]) -> np.ndarray:
        full, it = [], iter(key)
        for i in range(len(self.array.shape)):
            full.append(0 if i in self.axes else next(it, slice(None)))
        return np.asarray(self.array[tuple(full)])


def _open_tiff(path: Path, mpp: float | None) -> Slide:
    import tifffile

    tif = tifffile.TiffFile(path)
    try:
        arrays, levels = _tiff_levels(tif, path)
        pixel_size = metadata.from_tiff(tif)
    except Exception:
        tif.close()
        raise
    return Slide(path, "tifffile", arrays, levels, _override(pixel_size, mpp), tif)


def _open_openslide(path: Path, mpp: float | None) -> Slide:
    import openslide

    handle = openslide.OpenSlide(str(path))
    arrays = [_OpenSlideLevel(handle, i) for i in range(handle.level_count)]
    levels = [Level(a.shape[:2], a.downsample) for a in arrays]
    return Slide(path, "openslide", arrays, levels, _override(metadata.from_openslide(handle.properties), mpp), handle)


def _open_image(path: Path, mpp: float | None) -> Slide:
    from napari_deepliif.io.image_input import read_image
    from napari_deepliif.rgb import check_input

    # one channel is taken here; the engine scoring it says whether it reads one
    pixels = np.asarray(check_input(read_image(path), grey=True)[:, :])
    return Slide(path, "image", [pixels], [Level(pixels.shape[:2], 1.0)], _override(PixelSize(), mpp))


def _override(found: PixelSize, mpp: float | None) -> PixelSize:
    if mpp is None:
        return found
    if not (mpp > 0 and math.isfinite(mpp)):
        raise DeepLIIFError(f"pixel size must be a positive number of µm/px, got {mpp!r}")
    return PixelSize(float(mpp), found.magnification, "given")


def openslide_available() -> bool:
    """Whether ``openslide-python`` (and its library) can be imported."""
    try:
        import openslide  # noqa: F401
    except (ImportError, OSError):
        return False
    return True


def open_slide(path: str | Path, *, mpp: float | None = None, backend: str = "auto") -> Slide:
    """Open a slide lazily.

    Parameters
    ----------
    path : str or Path
        A TIFF-family slide, an OpenSlide format, or a PNG/JPEG image.
    mpp : float, optional
        Pixel size of level 0 in µm/px; overrides the file's metadata.
    backend : {'auto', 'tifffile', 'openslide', 'image'}
        ``auto``: tifffile for TIFF suffixes, PIL for PNG/JPEG, OpenSlide otherwise.

    Raises
    ------
    InputImageError
        Missing file, unknown format, or a format that needs OpenSlide when it is not
        installed.
    """
    path = Path(path)
    if not path.is_file():
        raise InputImageError(f"slide {path} does not exist")
    suffix = path.suffix.lower()
    if backend == "auto":
        backend = "tifffile" if suffix in TIFF_SUFFIXES else "image" if suffix in IMAGE_SUFFIXES else "openslide"
    if backend == "openslide" and not openslide_available():
        raise InputImageError(f"{path.name}: this format needs OpenSlide: pip install 'napari-deepliif[openslide]'")
    openers = {"tifffile": _open_tiff, "openslide": _open_openslide, "image": _open_image}
    if backend not in openers:
        raise DeepLIIFError(f"unknown slide backend '{backend}' (choose auto, {', '.join(openers)})")
    try:
        slide = openers[backend](path, mpp)
    except (InputImageError, DeepLIIFError):
        raise
    except Exception as exc:  # tifffile/OpenSlide raise many kinds for unreadable files
        raise InputImageError(f"cannot read {path} as a slide ({type(exc).__name__}: {exc})") from exc
    log.info("opened %r (pixel size from %s)", slide, slide.pixel_size.source)
    return slide
