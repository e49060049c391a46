"""The real IHC image shipped inside the package (see ``data/SOURCES.md``)."""

from __future__ import annotations

from importlib.resources import files

import numpy as np

SAMPLE_NAME = "ihc_colon_fhl2"
#: Shown wherever the sample appears (napari layer metadata, outputs).
SAMPLE_SOURCE = (
    "scikit-image data.immunohistochemistry(): colonic glands, FHL2 revealed with DAB, "
    "hematoxylin counterstain; CMMI; no known copyright restrictions"
)


def sample_path():
    """Path (a Traversable) of the bundled sample PNG."""
    return files("napari_deepliif") / "data" / f"{SAMPLE_NAME}.png"


def load_sample() -> np.ndarray:
    """The bundled 512 x 512 RGB IHC sample as uint8."""
    from PIL import Image

    with sample_path().open("rb") as fh, Image.open(fh) as im:
        return np.asarray(im.convert("RGB"))
