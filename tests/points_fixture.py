"""A small point-detection model folder for tests, built the way a user's would be.

The network is the published architecture the ``points`` type loads from a state dict (U-Net
with a ResNet-34 encoder, in segmentation-models-pytorch's layout) with two output channels,
random weights (seeded) except for its 3x3 head, which is fitted for a few hundred steps
(binary cross-entropy on the sigmoid) to Gaussian heat maps at the centroids of the positive
and negative ground-truth cells of the paired DeepLIIF sample's IHC panel
(shared/data/paired/Lung1.png). Poor at its job, but its heat maps peak on nuclei of both
classes, so counts are non-trivial. It is not a published model: never present its output as
one. The folder holds ``model.pt`` (state dict) and ``model.yaml``; a twin folder holds the
same network traced to TorchScript.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from unet_head_fixture import build_fitted, lung_panel

from napari_deepliif.cells.metrics import seg_instances

CLASS_NAMES = ["positive", "negative"]
IHC_PANEL, SEG_PANEL = 0, 5
#: Gaussian spread of the target peaks (pixels).
SIGMA = 3.0


def card(weights: str, fmt: str) -> dict:
    """The fixture's model card."""
    return {
        "type": "points", "name": "points-fixture", "description": "test fixture, not a published model",
        "weights": weights, "format": fmt, "architecture": "unet-resnet34",
        "input": {"channel": "grey", "normalise": "per-tile-zscore"},
        "tile_size": 256, "overlap": 64, "pixel_size": 0.25,
        "classes": CLASS_NAMES, "positive": ["positive"], "min_distance_um": 3.0, "threshold": 0.3,
    }


def lung_ihc(shared: Path) -> tuple[np.ndarray, np.ndarray]:
    """(IHC panel, uint8 RGB; ground-truth Seg panel) of the paired sample."""
    return lung_panel(shared, IHC_PANEL), lung_panel(shared, SEG_PANEL)


def target_heatmaps(seg: np.ndarray) -> np.ndarray:
    """(2, H, W) Gaussian peaks at the centroids of the Seg panel's positive and negative cells."""
    from scipy import ndimage as ndi

    labels, positive = seg_instances(seg)
    index = np.arange(1, len(positive))
    centres = np.asarray(ndi.center_of_mass(np.ones(labels.shape), labels, index)).reshape(-1, 2)
    yy, xx = np.mgrid[: seg.shape[0], : seg.shape[1]]
    maps = np.zeros((2, *seg.shape[:2]), np.float32)
    for (cy, cx), pos in zip(centres, positive[1:]):
        c = 0 if pos else 1
        maps[c] = np.maximum(maps[c], np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * SIGMA**2)))
    return maps


def _peaks_weighted(target):
    import torch

    # peaks cover a few % of the pixels: weigh them up so the head does not learn "nothing"
    return torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(20.0))


def build(shared: Path, folder: Path, twin: Path, *, seed: int = 7, steps: int = 300) -> None:
    """Write the state-dict model into ``folder`` and its TorchScript twin into ``twin``."""
    ihc, seg = lung_ihc(shared)
    build_fitted(ihc, target_heatmaps(seg), len(CLASS_NAMES), _peaks_weighted, folder, twin, card,
                 seed=seed, steps=steps, lr=0.05)
