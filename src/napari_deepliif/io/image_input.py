"""Read input images: PNG, JPEG and TIFF (palette and CMYK converted), with a clear error
for what cannot be read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from napari_deepliif.errors import InputImageError


def cmyk_to_rgb(cmyk: np.ndarray) -> np.ndarray:
    """8-bit CMYK (H x W x 4, extra samples after K ignored) to RGB, as Pillow converts it:
    ``R = (255 - C) * (255 - K) / 255`` rounded, and so on for G (M) and B (Y)."""
    ink = 255 - cmyk[..., :3].astype(np.uint32)
    white = 255 - cmyk[..., 3:4].astype(np.uint32)
    return ((ink * white + 127) // 255).astype(np.uint8)


def palette_to_rgb(indices: np.ndarray, colormap: np.ndarray) -> np.ndarray:
    """Indexed pixels (H x W) through a TIFF colormap (3 x 2**bits, 16-bit) to 8-bit RGB."""
    colormap = np.asarray(colormap)
    if colormap.max() <= 255:  # some writers store 8-bit values in the 16-bit table
        table = colormap.T.astype(np.uint8)
    else:
        table = np.rint(colormap.T / 257.0).clip(0, 255).astype(np.uint8)
    return table[np.asarray(indices).astype(np.intp, copy=False)]


#: TIFF Photometric values, for messages.
_PHOTOMETRIC_NAMES = {0: "MINISWHITE", 1: "MINISBLACK", 2: "RGB", 3: "PALETTE", 4: "MASK", 5: "SEPARATED",
                      6: "YCBCR", 8: "CIELAB", 9: "ICCLAB", 10: "ITULAB", 32844: "LOGL", 32845: "LOGLUV"}


def tiff_colour(page: Any, where: str) -> Any:
    """How to turn pixels of a TIFF page into RGB: a function of a decoded block
    (H x W for palette, H x W x S for CMYK), or None when they are RGB (or grey) already.

    Parameters
    ----------
    page : tifffile.TiffPage
        The page (or a pyramid level's key frame).
    where : str
        The file, for messages.

    Raises
    ------
    InputImageError
        A colour space DeepLIIF cannot read: separated inks other than CMYK, or CIE Lab.
    """
    photometric = int(page.photometric)
    if photometric == 3:  # PALETTE
        colormap = page.colormap
        if colormap is None:
            raise InputImageError(f"{where} is an indexed (palette) TIFF without a colormap")
        return lambda block: palette_to_rgb(block, colormap)
    if photometric == 5:  # SEPARATED
        inkset = page.tags.get("InkSet")
        samples = int(page.samplesperpixel) - len(page.extrasamples or ())
        if (inkset is not None and int(inkset.value) != 1) or samples != 4 or page.dtype != np.uint8:
            raise InputImageError(
                f"{where} holds separated inks other than 8-bit CMYK ({samples} inks, dtype {page.dtype}); "
                "convert it to RGB")
        return cmyk_to_rgb
    if photometric in (8, 9, 10, 32844, 32845):
        raise InputImageError(f"{where} is in the {_PHOTOMETRIC_NAMES[photometric]} colour space; convert it to RGB")
    return None


def check_tiff_tiles(pages: Any, where: str) -> None:
    """Raise if any tile or strip of ``pages`` is missing from the file (byte count 0):
    tifffile would read it as black, silently.

    Raises
    ------
    InputImageError
        Naming the file and how many tiles are missing.
    """
    for index, page in enumerate(pages):
        counts = np.asarray(getattr(page, "databytecounts", ()) or ())
        missing = int((counts == 0).sum())
        if missing:
            raise InputImageError(
                f"{where}: {missing} of {counts.size} tiles (or strips) of image {index} are missing from the "
                "file (byte count 0); the file is incomplete (an interrupted copy or conversion?): "
                "copy or convert it again")


def read_tiff(source: Any, where: str) -> np.ndarray:
    """The first image of a TIFF (a path or a binary file object) as H x W x C, channels last
    (planar images moved), palette and CMYK converted to RGB.

    Raises
    ------
    InputImageError
        Missing tiles, or a colour space other than RGB, grey, palette or CMYK.
    """
    import tifffile

    with tifffile.TiffFile(source) as tif:
        series = tif.series[0]
        check_tiff_tiles(series.pages, where)
        convert = tiff_colour(series.keyframe, where)
        data = series.asarray()
    if data.ndim == 3 and data.shape[0] in (3, 4, 5) and data.shape[2] not in (3, 4, 5):
        data = np.moveaxis(data, 0, -1)  # planar (C, H, W) TIFF
    return convert(data) if convert is not None else data


def read_image(path: str | Path) -> np.ndarray:
    """Read a PNG, JPEG or (non-pyramidal) TIFF file into an H x W x C numpy array.

    Indexed (palette) and CMYK images are converted to RGB.

    Raises
    ------
    InputImageError
        When the file is missing or cannot be decoded, or a TIFF has missing tiles or a colour
        space other than RGB, grey, palette or CMYK.
    """
    path = Path(path)
    if not path.is_file():
        raise InputImageError(f"image file {path} does not exist")
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            return read_tiff(path, str(path))
        from PIL import Image

        with Image.open(path) as im:
            if im.mode in ("P", "CMYK", "YCbCr", "LA", "PA"):
                im = im.convert("RGBA" if "A" in im.mode else "RGB")
            return np.asarray(im)
    except InputImageError:
        raise
    except Exception as exc:  # PIL and tifffile raise many kinds for broken files
        raise InputImageError(f"cannot read {path} as an image ({type(exc).__name__}: {exc})") from exc
