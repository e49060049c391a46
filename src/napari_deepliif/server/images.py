"""Decode request images (header first, then pixels) and encode result images.

The pixel limit is checked from the header (PIL's ``size``, tifffile's page shape) before any
pixel is decoded, so a small file that claims a huge image (a decompression bomb) costs
nothing. 16-bit, float and grayscale images are refused with the engine's own message
(one-channel 8- and 16-bit images are taken for an engine of fluorescence images).
"""

from __future__ import annotations

import base64
import io
import struct
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np

from napari_deepliif.errors import InputImageError
from napari_deepliif.io.image_input import read_tiff, tiff_colour
from napari_deepliif.rgb import check_input
from napari_deepliif.server.problems import Problem

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TIFF_SIGNATURES = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
JPEG_SIGNATURE = b"\xff\xd8\xff"
#: Media types /api/score takes, by format.
MEDIA_TYPES = {"png": "image/png", "tiff": "image/tiff"}


def sniff(data: bytes) -> str | None:
    """``png``, ``tiff``, ``jpeg`` from the file signature, or None."""
    if data.startswith(PNG_SIGNATURE):
        return "png"
    if data.startswith(TIFF_SIGNATURES):
        return "tiff"
    if data.startswith(JPEG_SIGNATURE):
        return "jpeg"
    return None


@dataclass(frozen=True)
class ImageHeader:
    """What an image's header says, read without decoding pixels."""

    format: str
    width: int
    height: int


def read_header(data: bytes, what: str, max_pixels: int, formats: tuple[str, ...] = ("png", "tiff", "jpeg"),
                *, grey: bool = False) -> ImageHeader:
    """Format and size of an encoded image; raises 422 problems for what cannot be scored.

    Parameters
    ----------
    data : bytes
        The encoded image.
    what : str
        How to name it in messages (``request body``, ``form field 'img'``).
    max_pixels : int
        Largest width x height accepted.
    formats : tuple of str
        Formats accepted here.
    grey : bool
        Take a one-channel image too (for an engine of fluorescence images).
    """
    fmt = sniff(data)
    if not data:
        raise Problem(422, f"{what} is empty: send the bytes of a PNG or TIFF image")
    if fmt not in formats:
        raise Problem(422, f"{what} is not a {' or '.join(f.upper() for f in formats)} image (its first bytes are {data[:8]!r})")
    if fmt == "png" and len(data) >= 24 and data[12:16] == b"IHDR":
        # the size straight from the IHDR chunk, before PIL (which refuses huge images itself)
        _check_pixels(*struct.unpack(">II", data[16:24]), what, max_pixels)
    try:
        if fmt == "tiff":
            import tifffile

            with tifffile.TiffFile(io.BytesIO(data)) as tif:
                shape, dtype = _tiff_shape(tif.pages.first, what)
        else:
            from PIL import Image

            with Image.open(io.BytesIO(data)) as im:
                shape, dtype = _pil_shape(im, data)
    except Problem:
        raise
    except Exception as exc:  # PIL and tifffile raise many kinds for broken headers
        raise Problem(422, f"{what} is not a readable {fmt.upper()} image ({type(exc).__name__}: {exc})") from exc
    height, width = int(shape[0]), int(shape[1])
    _check_pixels(width, height, what, max_pixels)
    try:  # the engine's checks (grayscale, 16-bit, too small) on the header's shape and type
        check_input(SimpleNamespace(shape=tuple(shape), dtype=np.dtype(dtype)), what, grey=grey)
    except Exception as exc:
        raise Problem(422, str(exc)) from exc
    return ImageHeader(fmt, width, height)


def _check_pixels(width: int, height: int, what: str, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise Problem(422, f"{what} is {width} x {height} = {width * height} pixels; this server takes at most "
                      f"{max_pixels} (--max-pixels): send a smaller region or tile the image")


def _pil_shape(im: Any, data: bytes) -> tuple[tuple[int, ...], np.dtype]:
    """(H, W[, C]) and dtype that ``np.asarray`` of the decoded PIL image would have."""
    width, height = im.size
    if im.format == "PNG" and data[24] == 16 and data[25] in (2, 6):
        # PIL reads 16-bit RGB(A) PNGs as 8-bit; refuse them as the engine refuses 16-bit arrays
        return (height, width, 3 if data[25] == 2 else 4), np.dtype(np.uint16)
    channels = {"1": 1, "L": 1, "P": 3, "RGB": 3, "RGBA": 4, "CMYK": 3, "YCbCr": 3, "LA": 4, "PA": 4, "RGBX": 4}
    if im.mode in channels:
        c = channels[im.mode]
        return ((height, width) if c == 1 else (height, width, c)), np.dtype(np.uint8)
    if im.mode.startswith("I;16") or im.mode == "I":
        return (height, width), np.dtype(np.uint16 if im.mode.startswith("I;16") else np.int32)
    if im.mode == "F":
        return (height, width), np.dtype(np.float32)
    raise Problem(422, f"image mode {im.mode} is not supported: send 8-bit RGB")


def _tiff_shape(page: Any, what: str) -> tuple[tuple[int, ...], np.dtype]:
    """(H, W[, C]) of the first TIFF page as decoded: channels last (planar pages are moved),
    palette and CMYK pages as the RGB they are read as (:func:`tiff_colour`)."""
    shape = tuple(int(v) for v in page.shape)
    if tiff_colour(page, what) is not None:
        return (int(page.imagelength), int(page.imagewidth), 3), np.dtype(np.uint8)
    if len(shape) == 3 and shape[0] in (3, 4) and shape[2] not in (3, 4):
        shape = (shape[1], shape[2], shape[0])
    return shape, page.dtype


def decode(data: bytes, header: ImageHeader, what: str, *, grey: bool = False) -> np.ndarray:
    """Decode an image whose header passed :func:`read_header` into H x W x 3 uint8 (alpha
    dropped), or with ``grey`` also a one-channel H x W uint8 or uint16 image."""
    try:
        if header.format == "tiff":
            array = read_tiff(io.BytesIO(data), what)
        else:
            from PIL import Image

            with Image.open(io.BytesIO(data)) as im:
                if im.mode in ("P", "CMYK", "YCbCr", "LA", "PA", "RGBX"):
                    im = im.convert("RGBA" if "A" in im.mode else "RGB")
                else:
                    im.load()
                array = np.asarray(im)
    except InputImageError as exc:  # missing tiles, inks DeepLIIF cannot read
        raise Problem(422, str(exc)) from exc
    except Exception as exc:  # truncated or corrupt pixel data
        raise Problem(422, f"{what} cannot be decoded ({type(exc).__name__}: {exc}); "
                      "the file may be truncated: send it again") from exc
    if array.shape[:2] != (header.height, header.width):
        raise Problem(422, f"{what} decodes to {array.shape[1]} x {array.shape[0]} px, not the "
                      f"{header.width} x {header.height} px its header says")
    try:
        return np.ascontiguousarray(check_input(array, what, grey=grey))
    except Exception as exc:
        raise Problem(422, str(exc)) from exc


def png_base64(image: Any) -> str:
    """An H x W x 3 uint8 image as base64 PNG text (what the reference's API returns)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(buffer, format="PNG", compress_level=1)
    return base64.b64encode(buffer.getvalue()).decode("ascii")
