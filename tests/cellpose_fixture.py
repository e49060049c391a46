"""A ``translate`` model folder whose nuclei come from Cellpose, for tests.

The Cellpose model file is made here, never downloaded: Cellpose's own ``CPnet`` (the
network ``CellposeModel`` builds: ``nbase`` 2, 32, 64, 128, 256, three outputs) with seeded
random weights, saved with its ``save_model``. A fit was too slow for a test (minutes per
few hundred crops on one core), so the output layer is scaled instead: its flow outputs x20
and its cell probability shifted up by 0.1, and the card turns Cellpose's flow check off
(``flow_threshold: 0``), so Cellpose's dynamics turn them into masks (the basins of a random
flow field). It finds no real nuclei: never present its output as a segmentation.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

#: The Cellpose file's name in the model folder.
CELLPOSE_FILE = "cellpose_fixture.pth"
#: The card's nucleus diameter (µm): 30 px, Cellpose's ``diam_mean``, at 20x (0.5 µm/px).
NUCLEUS_DIAMETER_UM = 15.0


def cellpose_network(seed: int = 0):
    """Cellpose's ``CPnet`` as ``CellposeModel`` builds it, with the fixture's weights."""
    import torch
    from cellpose.resnet_torch import CPnet

    torch.manual_seed(seed)
    net = CPnet([2, 32, 64, 128, 256], 3, sz=3, diam_mean=30.0)
    conv = net.output[-1]
    with torch.no_grad():
        conv.weight[:2] *= 20
        conv.bias[2] += 0.1
    return net


def build(folder: Path, generator_folder: Path) -> None:
    """Copy the translate fixture at ``generator_folder`` to ``folder``, write the Cellpose
    file into it and point its card at it."""
    shutil.copytree(generator_folder, folder)
    cellpose_network().save_model(str(folder / CELLPOSE_FILE))
    card = yaml.safe_load((folder / "model.yaml").read_text(encoding="utf-8"))
    card.update(name="translate-cellpose-fixture", segmenter="cellpose", segmenter_model=CELLPOSE_FILE,
                nucleus_diameter_um=NUCLEUS_DIAMETER_UM, flow_threshold=0)
    (folder / "model.yaml").write_text(yaml.safe_dump(card, sort_keys=False), encoding="utf-8")
