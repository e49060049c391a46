"""Whole slides: lazy readers, pixel-size metadata, tissue masks, streaming inference to
OME-Zarr and slide-level cells (see ``docs/whole-slides.md``)."""

from napari_deepliif.slides.metadata import PixelSize
from napari_deepliif.slides.readers import (
    Level,
    LevelChoice,
    Slide,
    SlideMetadataError,
    open_slide,
)
from napari_deepliif.slides.tissue import TissueMask, tissue_mask

__all__ = ["Level", "LevelChoice", "PixelSize", "Slide", "SlideMetadataError", "TissueMask", "open_slide", "tissue_mask"]
