"""The ``points`` model type: a fully convolutional network that gives one heat map per cell
class, high at nucleus centres (``docs/point-detection.md``).

Tiles are cut, normalised and run exactly as for the ``classmap`` type (the card's input
channel and normalisation, the image's own tile grid with the card's overlap); the network's
logits go through a sigmoid, and the ``Heatmap`` output holds class ``c``'s confidence in
channel ``c`` as ``round(255 x sigmoid)`` (up to three classes; unused channels 0). Points
are found from the heat maps in :mod:`napari_deepliif.cells.detections`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from napari_deepliif.engine.classmap import ClassMapEngine, ClassMapRunner

#: Name of the heat-map output.
HEATMAP = "Heatmap"


class PointsRunner(ClassMapRunner):
    """Runs the network on batches of uint8 RGB tiles; returns each tile's ``Heatmap``."""

    def __call__(self, tiles: list[np.ndarray]) -> list[dict[str, np.ndarray]]:
        """S x S x 3 uint8 tiles in, ``{"Heatmap": S x S x 3 uint8}`` per tile out."""
        import torch

        heat = torch.sigmoid(self.logits(tiles)).mul(255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        padded = np.zeros((*heat.shape[:3], 3), np.uint8)
        padded[..., : heat.shape[3]] = heat
        return [{HEATMAP: tile} for tile in padded]


@dataclass
class PointsEngine(ClassMapEngine):
    """A point-detection model (``type: points`` in its card) on a device.

    Build one with :meth:`PointsEngine.load` (the ``classmap`` loader: the same card checks,
    weights formats and architectures).
    """

    name = "points"
    brightfield = True  # IHC: glass outside the slide's tissue mask is not run
    outputs = (HEATMAP,)
    score_outputs = (HEATMAP,)
    runner_type = PointsRunner

    def heatmaps(self, images: dict[str, np.ndarray]) -> np.ndarray:
        """The heat maps of an ``images`` output as (classes, H, W) confidences in 0..1."""
        heat = np.asarray(images[HEATMAP])[..., : len(self.card.class_names)]
        return np.moveaxis(heat, 2, 0).astype(np.float32) / 255
