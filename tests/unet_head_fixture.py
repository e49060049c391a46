"""What the class-map and points test fixtures share: the published U-Net (ResNet-34
encoder) with seeded random weights whose 3x3 head alone is fitted to a panel of the paired
DeepLIIF sample (shared/data/paired/Lung1.png), written as a state-dict folder and a
TorchScript twin. Not a published model: never present its output as one.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from PIL import Image

#: Panels of Lung1.png: IHC, Hematoxylin, DAPI, Lap2, Marker, Seg (512 px each).
PANEL = 512


def lung_panel(shared: Path, index: int) -> np.ndarray:
    """Panel ``index`` of the paired sample, uint8 RGB."""
    lung = np.asarray(Image.open(shared / "data" / "paired" / "Lung1.png").convert("RGB"))
    return np.ascontiguousarray(lung[:, index * PANEL : (index + 1) * PANEL])


def build_fitted(image: np.ndarray, target: np.ndarray, outputs: int, loss: Callable[[Any], Callable],
                 folder: Path, twin: Path, card: Callable[[str, str], dict], *, seed: int, steps: int,
                 lr: float, check_trace: bool = True) -> None:
    """Fit the head of a seeded random U-Net to map ``image`` (grey input, per-tile z-score)
    to ``target`` for ``steps`` Adam steps of ``lr`` under the loss ``loss(target tensor)``;
    write ``model.pt`` with ``card('model.pt', 'state_dict')`` into ``folder`` and the traced
    network with ``card('model.ts', 'torchscript')`` into ``twin``."""
    import torch

    from napari_deepliif.engine.classmap import tile_input
    from napari_deepliif.engine.unet_resnet import UnetResNet34

    torch.manual_seed(seed)
    net = UnetResNet34(1, outputs).eval()
    x = torch.from_numpy(tile_input(image[None], "grey", "per-tile-zscore"))
    with torch.no_grad():
        features = net.decoder(net.encoder(x))
    target = torch.from_numpy(target)[None]
    loss_fn = loss(target)
    head = net.segmentation_head[0]
    optimiser = torch.optim.Adam(head.parameters(), lr=lr)
    for _ in range(steps):
        optimiser.zero_grad()
        loss_fn(head(features), target).backward()
        optimiser.step()
    net.requires_grad_(False)
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), folder / "model.pt")
    (folder / "model.yaml").write_text(yaml.safe_dump(card("model.pt", "state_dict"), sort_keys=False))
    twin.mkdir(parents=True, exist_ok=True)
    traced = torch.jit.trace(net, torch.zeros(1, 1, 256, 256), check_trace=check_trace)
    traced.save(str(twin / "model.ts"))
    (twin / "model.yaml").write_text(yaml.safe_dump(card("model.ts", "torchscript"), sort_keys=False))
