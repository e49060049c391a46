"""A small class-map model folder for tests, built the way a user's would be.

The network is the published architecture (U-Net with a ResNet-34 encoder, in
segmentation-models-pytorch's state-dict layout), with random weights (seeded) except for its
3x3 segmentation head, which is fitted for a hundred steps to map the mpIF DAPI panel of
the paired DeepLIIF sample (shared/data/paired/Lung1.png) to that panel's ground-truth cells
(background, negative, positive). Poor at its job, but its class maps hold cells of both
classes, so counts are non-trivial. It is not a published model: never present its output as
one. The folder holds ``model.pt`` (state dict), ``model.yaml`` and, in a twin folder, the same
network traced to TorchScript.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from unet_head_fixture import build_fitted, lung_panel

#: The fixture's classes, in output-channel order.
CLASS_NAMES = ["background", "negative", "positive"]
#: Panels of Lung1.png used: the mpIF DAPI and the Seg truth.
DAPI_PANEL, SEG_PANEL = 2, 5


def card(weights: str, fmt: str) -> dict:
    """The fixture's model card."""
    return {
        "type": "classmap", "name": "classmap-fixture", "description": "test fixture, not a published model",
        "weights": weights, "format": fmt, "architecture": "unet-resnet34",
        "input": {"channel": "grey", "normalise": "per-tile-zscore"},
        "tile_size": 256, "overlap": 128, "pixel_size": 0.5,
        "classes": CLASS_NAMES, "positive": ["positive"],
    }


def lung_panels(shared: Path) -> tuple[np.ndarray, np.ndarray]:
    """(DAPI panel as RGB uint8, ground-truth class per pixel) of the paired sample."""
    seg = lung_panel(shared, SEG_PANEL).astype(int)
    red, green, blue = seg[..., 0], seg[..., 1], seg[..., 2]
    classes = np.zeros(seg.shape[:2], np.int64)
    classes[(blue > 128) & (green < 128)] = 1
    classes[(red > 128) & (green < 128)] = 2
    return lung_panel(shared, DAPI_PANEL), classes


def _class_weighted(target):
    import torch

    weight = torch.bincount(target.ravel(), minlength=len(CLASS_NAMES)).float()
    return torch.nn.CrossEntropyLoss(weight=weight.sum() / (weight + 1))


def build(shared: Path, folder: Path, twin: Path, *, seed: int = 7, steps: int = 100) -> None:
    """Write the state-dict model into ``folder`` and its TorchScript twin into ``twin``."""
    dapi, truth = lung_panels(shared)
    build_fitted(dapi, truth, len(CLASS_NAMES), _class_weighted, folder, twin, card,
                 seed=seed, steps=steps, lr=0.1, check_trace=False)
