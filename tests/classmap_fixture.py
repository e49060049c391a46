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
import yaml
from PIL import Image

#: The fixture's classes, in output-channel order.
CLASS_NAMES = ["background", "negative", "positive"]
#: Panels of Lung1.png: IHC, Hematoxylin, DAPI, Lap2, Marker, Seg (512 px each).
PANEL = 512
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
    lung = np.asarray(Image.open(shared / "data" / "paired" / "Lung1.png").convert("RGB"))
    dapi = np.ascontiguousarray(lung[:, DAPI_PANEL * PANEL : (DAPI_PANEL + 1) * PANEL])
    seg = lung[:, SEG_PANEL * PANEL : (SEG_PANEL + 1) * PANEL].astype(int)
    red, green, blue = seg[..., 0], seg[..., 1], seg[..., 2]
    classes = np.zeros(seg.shape[:2], np.int64)
    classes[(blue > 128) & (green < 128)] = 1
    classes[(red > 128) & (green < 128)] = 2
    return dapi, classes


def build(shared: Path, folder: Path, twin: Path, *, seed: int = 7, steps: int = 100) -> None:
    """Write the state-dict model into ``folder`` and its TorchScript twin into ``twin``."""
    import torch

    from napari_deepliif.engine.classmap import tile_input
    from napari_deepliif.engine.unet_resnet import UnetResNet34

    torch.manual_seed(seed)
    net = UnetResNet34(1, len(CLASS_NAMES)).eval()
    dapi, truth = lung_panels(shared)
    x = torch.from_numpy(tile_input(dapi[None], "grey", "per-tile-zscore"))
    with torch.no_grad():
        features = net.decoder(net.encoder(x))
    target = torch.from_numpy(truth)[None]
    head = net.segmentation_head[0]
    weight = torch.bincount(target.ravel(), minlength=len(CLASS_NAMES)).float()
    loss_fn = torch.nn.CrossEntropyLoss(weight=weight.sum() / (weight + 1))
    optimiser = torch.optim.Adam(head.parameters(), lr=0.1)
    for _ in range(steps):
        optimiser.zero_grad()
        loss = loss_fn(head(features), target)
        loss.backward()
        optimiser.step()
    net.requires_grad_(False)
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), folder / "model.pt")
    (folder / "model.yaml").write_text(yaml.safe_dump(card("model.pt", "state_dict"), sort_keys=False))
    twin.mkdir(parents=True, exist_ok=True)
    traced = torch.jit.trace(net, torch.zeros(1, 1, 256, 256), check_trace=False)
    traced.save(str(twin / "model.ts"))
    (twin / "model.yaml").write_text(yaml.safe_dump(card("model.ts", "torchscript"), sort_keys=False))
