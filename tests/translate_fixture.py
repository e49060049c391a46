"""A small translate-then-segment model folder for tests, built the way a user's would be.

The generator is the CycleGAN repository's ``ResnetGenerator`` (``netG resnet_9blocks``,
``norm instance``: convs with biases, norms without parameters, reflection padding) at a
small width, built here layer by layer so its ``state_dict`` has that repository's names
(``model.1.weight``, ``model.10.conv_block.1.weight``, ..., ``model.26.bias``), with
random weights (seeded). It is saved as ``latest_net_G_A.pth`` next to a ``model.yaml``.
It is not a published model and translates nothing: never present its output as one.
"""

from __future__ import annotations

from pathlib import Path

import yaml

#: Generator width of the fixture (the published models use 64).
NGF = 8
#: Residual blocks (``resnet_9blocks``).
N_BLOCKS = 9


def card(**changes: object) -> dict:
    """The fixture's model card, with ``changes`` applied."""
    data = {
        "type": "translate", "name": "translate-fixture", "description": "test fixture, not a published model",
        "weights": "latest_net_G_A.pth", "format": "state_dict", "architecture": "cyclegan-resnet",
        "input": {"normalise": "scale-minus1-1"}, "tile_size": 256, "overlap": 32, "pixel_size": 0.25,
        "segmenter": "stain", "dab_threshold": 0.2,
    }
    data.update(changes)
    return data


def cyclegan_generator(ngf: int = NGF, n_blocks: int = N_BLOCKS, norm: str = "instance"):
    """The CycleGAN ``ResnetGenerator`` layout (RGB -> RGB, no dropout; ``norm`` instance, the
    repository's default, or batch) as a torch module whose parameter names are that
    repository's."""
    from torch import nn

    bias = norm == "instance"

    def Norm(channels: int) -> nn.Module:  # noqa: N802 -- a layer factory, named like the layers
        return nn.InstanceNorm2d(channels) if norm == "instance" else nn.BatchNorm2d(channels)

    class Block(nn.Module):
        def __init__(self, dim: int):
            super().__init__()
            self.conv_block = nn.Sequential(
                nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=bias), Norm(dim), nn.ReLU(True),
                nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=bias), Norm(dim))

        def forward(self, x):
            return x + self.conv_block(x)

    class Generator(nn.Module):
        def __init__(self):
            super().__init__()
            layers = [nn.ReflectionPad2d(3), nn.Conv2d(3, ngf, 7, bias=bias), Norm(ngf), nn.ReLU(True)]
            for mult in (1, 2):
                layers += [nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=2, padding=1, bias=bias),
                           Norm(ngf * mult * 2), nn.ReLU(True)]
            layers += [Block(ngf * 4) for _ in range(n_blocks)]
            for mult in (4, 2):
                layers += [nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 3, stride=2, padding=1, output_padding=1,
                                              bias=bias),
                           Norm(ngf * mult // 2), nn.ReLU(True)]
            layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, 3, 7), nn.Tanh()]
            self.model = nn.Sequential(*layers)

        def forward(self, x):
            return self.model(x)

    return Generator().eval()


def build(folder: Path, *, seed: int = 7) -> None:
    """Write ``latest_net_G_A.pth`` (random weights, seeded) and ``model.yaml`` into ``folder``."""
    import torch

    torch.manual_seed(seed)
    net = cyclegan_generator()
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), folder / "latest_net_G_A.pth")
    (folder / "model.yaml").write_text(yaml.safe_dump(card(), sort_keys=False), encoding="utf-8")
