"""napari sample-data contribution (see napari.yaml)."""

from __future__ import annotations

from napari_deepliif.io.sample import SAMPLE_NAME, SAMPLE_SOURCE, load_sample


def ihc_sample() -> list[tuple]:
    """The bundled IHC sample as an RGB image layer."""
    return [(load_sample(), {"name": SAMPLE_NAME, "rgb": True, "metadata": {"source": SAMPLE_SOURCE}})]
