"""napari sample-data contributions (see napari.yaml): the shipped FHL2 image and the Ki67 tile
downloaded on first use."""

from __future__ import annotations

from napari_deepliif.io.image_input import read_image
from napari_deepliif.models.samples import SAMPLES, sample_file


def _sample_layer(key: str) -> list[tuple]:
    sample = SAMPLES[key]
    image = read_image(sample_file(key))
    return [(image, {"name": sample.name, "rgb": True, "metadata": {"source": sample.source}})]


def ihc_sample() -> list[tuple]:
    """The shipped IHC sample (FHL2, membrane and cytoplasm) as an RGB image layer."""
    return _sample_layer("fhl2")


def ki67_sample() -> list[tuple]:
    """The DeepLIIF Ki67 tile (nuclear), downloaded into the cache on first use, as an RGB image layer."""
    return _sample_layer("ki67")
