"""Check and read input images: what the engine accepts, and a clear error for the rest."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from napari_deepliif.errors import InputImageError


def read_image(path: str | Path) -> np.ndarray:
    """Read a PNG, JPEG or (non-pyramidal) TIFF file into an H x W x C numpy array.

    Raises
    ------
    InputImageError
        When the file is missing or cannot be decoded.
    """
    path = Path(path)
    if not path.is_file():
        raise InputImageError(f"image file {path} does not exist")
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            data = tifffile.imread(path)
            if data.ndim == 3 and data.shape[0] in (3, 4) and data.shape[2] not in (3, 4):
                data = np.moveaxis(data, 0, -1)  # planar (C, H, W) TIFF
            return data
        from PIL import Image

        with Image.open(path) as im:
            if im.mode in ("P", "CMYK", "YCbCr", "LA", "PA"):
                im = im.convert("RGBA" if "A" in im.mode else "RGB")
            return np.asarray(im)
    except InputImageError:
        raise
    except Exception as exc:  # PIL and tifffile raise many kinds for broken files
        raise InputImageError(f"cannot read {path} as an image ({type(exc).__name__}: {exc})") from exc
