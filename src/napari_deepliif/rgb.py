"""The one rule for input pixels: every engine, region and front end checks them with it.

Brightfield engines take 8-bit RGB (:func:`check_rgb`); an engine of fluorescence images also
takes one channel, 8- or 16-bit (:func:`check_input` with ``grey=True``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from napari_deepliif.errors import InputImageError

#: Smallest accepted edge, in pixels. Smaller images are mirrored many times over to fill a
#: tile, which gives meaningless cells.
MIN_EDGE = 16


def check_rgb(image: Any, what: str = "image") -> Any:
    """Check that ``image`` is an H x W x 3 (or x 4, alpha ignored) uint8 array-like.

    Returns the array-like itself (RGB) or a lazy view without the alpha channel; nothing is
    read. Works for numpy, zarr, dask and other objects with ``shape``, ``dtype`` and slicing.

    Raises
    ------
    InputImageError
        Grayscale, wrong channel count, 16-bit or float data, or an image under 16 px.
    """
    shape = tuple(getattr(image, "shape", ()))
    dtype = np.dtype(getattr(image, "dtype", np.uint8)) if hasattr(image, "dtype") else None
    if dtype is None or len(shape) not in (2, 3):
        raise InputImageError(f"{what} must be an H x W x 3 RGB array; got {type(image).__name__} of shape {shape}")
    if len(shape) == 2 or shape[2] == 1:
        raise InputImageError(
            f"{what} is grayscale ({shape}); this engine needs a colour (RGB) brightfield IHC image "
            "(one-channel fluorescence images are read by classmap models: docs/model-types.md)"
        )
    if shape[2] not in (3, 4):
        raise InputImageError(
            f"{what} has {shape[2]} channels; expected RGB (3) or RGBA (4). "
            "For multichannel fluorescence data DeepLIIF does not apply"
        )
    if dtype != np.uint8:
        if dtype.kind in "ui":
            hint = "convert it to 8-bit (for 16-bit: divide by 257) before scoring"
        elif dtype.kind == "f":
            hint = "scale it to 0..255 and convert to uint8 (values are read as 8-bit RGB)"
        else:
            hint = "convert it to 8-bit RGB"
        raise InputImageError(f"{what} has dtype {dtype}; DeepLIIF takes 8-bit RGB: {hint}")
    if min(shape[:2]) < MIN_EDGE:
        raise InputImageError(
            f"{what} is {shape[1]} x {shape[0]} px; at least {MIN_EDGE} px per side is needed"
        )
    if shape[2] == 4:
        return _Channels(image, slice(0, 3))
    return image


def is_grey(image: Any) -> bool:
    """Whether ``image`` (an array-like) has one channel: H x W or H x W x 1."""
    shape = tuple(getattr(image, "shape", ()))
    return len(shape) == 2 or (len(shape) == 3 and shape[2] == 1)


def check_input(image: Any, what: str = "image", *, grey: bool = False) -> Any:
    """Check ``image`` for an engine: RGB as :func:`check_rgb`, or, when ``grey`` (an engine
    of fluorescence images), also a one-channel H x W or H x W x 1 uint8 or uint16 image.

    Returns the array-like, or a lazy view of it: RGB (alpha dropped), or H x W for a
    one-channel image (its values unchanged). Nothing is read.

    Raises
    ------
    InputImageError
        As :func:`check_rgb` (a grey image when ``grey`` is False), or a one-channel image of
        another dtype or under 16 px.
    """
    if not (grey and is_grey(image)):
        return check_rgb(image, what)
    shape = tuple(image.shape)
    dtype = np.dtype(image.dtype)
    if dtype not in (np.dtype(np.uint8), np.dtype(np.uint16)):
        raise InputImageError(f"{what} has dtype {dtype}; a one-channel image must be 8-bit or 16-bit "
                              "unsigned integers: convert it (e.g. scale a float image to 0..65535 as uint16)")
    if min(shape[:2]) < MIN_EDGE:
        raise InputImageError(
            f"{what} is {shape[1]} x {shape[0]} px; at least {MIN_EDGE} px per side is needed"
        )
    return image if len(shape) == 2 else _Channels(image, 0)


class _Channels:
    """Lazy view of some channels of an H x W x C array-like: ``slice(0, 3)`` drops alpha (as
    PIL's convert('RGB') does), ``0`` gives the H x W plane of a one-channel image."""

    def __init__(self, array: Any, channels: slice | int):
        self.array, self.channels = array, channels
        height, width = (int(n) for n in array.shape[:2])
        self.shape = (height, width, 3) if isinstance(channels, slice) else (height, width)
        self.dtype = np.dtype(array.dtype) if isinstance(channels, int) else np.dtype(np.uint8)
        self.ndim = len(self.shape)

    def __getitem__(self, key: Any) -> np.ndarray:
        return np.asarray(self.array[key])[..., self.channels]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return self[:, :] if dtype is None else self[:, :].astype(dtype)


#: Channels of :func:`stain_od`'s last axis.
HEMATOXYLIN, EOSIN, DAB = 0, 1, 2


def optical_density(rgb: np.ndarray) -> np.ndarray:
    """Optical density ``-log10(I / 255)`` per channel (float32, same shape) of brightfield
    pixels; a zero channel counts as 1. The one OD rule behind the stain engine and every
    per-cell stain measurement, so a DAB OD means the same number everywhere."""
    return -np.log10(np.maximum(rgb, 1).astype(np.float32) / np.float32(255.0))


def stain_od(rgb: np.ndarray, unmixing: np.ndarray | None = None) -> np.ndarray:
    """Hematoxylin, eosin and DAB optical densities (log10 units) of brightfield pixels.

    Ruifrok & Johnston (2001) colour deconvolution of :func:`optical_density`, with
    scikit-image's HED stain matrix unless an image's own stain vectors are given.

    Parameters
    ----------
    rgb : ndarray, shape (H, W, 3), uint8
        The incident light is 255 per channel; a zero channel counts as 1.
    unmixing : ndarray, shape (3, 3), optional
        ``od @ unmixing`` = (hematoxylin, third stain, DAB) ODs, e.g. the stain engine's
        estimated vectors for the image; default ``skimage.color.hed_from_rgb``.

    Returns
    -------
    ndarray, shape (H, W, 3), float32
        ``optical_density(rgb) @ unmixing``: channels :data:`HEMATOXYLIN`, :data:`EOSIN` (or
        the third stain), :data:`DAB`.
    """
    if unmixing is None:
        from skimage.color import hed_from_rgb

        unmixing = hed_from_rgb
    return optical_density(rgb) @ np.asarray(unmixing, np.float32)
