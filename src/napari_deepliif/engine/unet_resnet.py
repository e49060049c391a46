"""U-Net with a ResNet-34 encoder, with the parameter names of segmentation-models-pytorch's
``Unet("resnet34")`` so that a state dict saved from that library loads without it.

Layout (``docs/model-types.md``): the encoder is torchvision's ResNet-34 without its pooling
head (``encoder.conv1``, ``encoder.bn1``, ``encoder.layer1`` .. ``layer4``); the decoder has
five blocks (``decoder.blocks.N``), each upsampling by 2 (nearest), concatenating the encoder
feature of that scale, then two 3x3 conv + BatchNorm + ReLU (``conv1.0``/``conv1.1``,
``conv2.0``/``conv2.1``), with 256, 128, 64, 32, 16 channels; ``segmentation_head.0`` is a 3x3
conv to one logit per class. Inputs need sides divisible by 32.

This module imports torch at import time; the engine imports it only when a model loads.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from napari_deepliif.errors import ModelError

#: Residual blocks per stage of ResNet-34.
RESNET34_BLOCKS = (3, 4, 6, 3)
#: Channels of the stem and of each stage.
RESNET34_CHANNELS = (64, 64, 128, 256, 512)
#: Channels of the five decoder blocks (segmentation-models-pytorch's default).
DECODER_CHANNELS = (256, 128, 64, 32, 16)


def _conv_bn_relu(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 convolutions and a shortcut (1x1 conv where the shape changes)."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(y)) + shortcut)


class ResNet34Encoder(nn.Module):
    """ResNet-34 features at strides 2, 4, 8, 16 and 32."""

    def __init__(self, in_channels: int):
        super().__init__()
        stem = RESNET34_CHANNELS[0]
        self.conv1 = nn.Conv2d(in_channels, stem, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        cin = stem
        for i, (n, cout) in enumerate(zip(RESNET34_BLOCKS, RESNET34_CHANNELS[1:])):
            stride = 1 if i == 0 else 2
            blocks = [BasicBlock(cin, cout, stride)] + [BasicBlock(cout, cout, 1) for _ in range(n - 1)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
            cin = cout

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        f1 = self.relu(self.bn1(self.conv1(x)))
        f2 = self.layer1(self.maxpool(f1))
        f3 = self.layer2(f2)
        f4 = self.layer3(f3)
        f5 = self.layer4(f4)
        return [f1, f2, f3, f4, f5]


class DecoderBlock(nn.Module):
    """Upsample by 2, concatenate the skip feature (if any), two conv + BN + ReLU."""

    def __init__(self, cin: int, skip: int, cout: int):
        super().__init__()
        self.conv1 = _conv_bn_relu(cin + skip, cout)
        self.conv2 = _conv_bn_relu(cout, cout)

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        if skip is not None:
            x = torch.cat([x, skip], dim=1)
        return self.conv2(self.conv1(x))


class UnetDecoder(nn.Module):
    """The five decoder blocks, from the deepest encoder feature up to full resolution."""

    def __init__(self):
        super().__init__()
        deep = RESNET34_CHANNELS[::-1]  # 512, 256, 128, 64, 64
        ins = (deep[0], *DECODER_CHANNELS[:-1])
        skips = (*deep[1:], 0)
        self.blocks = nn.ModuleList(DecoderBlock(i, s, o) for i, s, o in zip(ins, skips, DECODER_CHANNELS))

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        x = features[-1]
        skips = features[-2::-1]
        for i, block in enumerate(self.blocks):
            x = block(x, skips[i] if i < len(skips) else None)
        return x


class UnetResNet34(nn.Module):
    """The whole network: N x C x H x W in (H, W divisible by 32), N x classes x H x W logits out.

    Parameters
    ----------
    in_channels : int
        Input channels (1 for a nuclear stain).
    classes : int
        Output channels, background included.
    """

    def __init__(self, in_channels: int, classes: int):
        super().__init__()
        self.encoder = ResNet34Encoder(in_channels)
        self.decoder = UnetDecoder()
        self.segmentation_head = nn.Sequential(nn.Conv2d(DECODER_CHANNELS[-1], classes, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.segmentation_head(self.decoder(self.encoder(x)))


def load_unet_resnet34(state: Mapping[str, Any], in_channels: int, classes: int, source: str | Path) -> UnetResNet34:
    """A :class:`UnetResNet34` with ``state`` loaded, in eval mode.

    Parameters
    ----------
    state : mapping of str to tensor
        A state dict in segmentation-models-pytorch's ``Unet("resnet34")`` layout (running
        BatchNorm statistics included); a checkpoint holding it under ``state_dict`` is read
        too.
    in_channels, classes : int
        What the model card says the network takes and gives.
    source : str or Path
        The file, for messages.

    Raises
    ------
    ModelError
        Naming the first missing, unexpected or mis-shaped parameter and what was expected.
    """
    if "state_dict" in state and isinstance(state["state_dict"], Mapping):
        state = state["state_dict"]
    net = UnetResNet34(in_channels, classes)
    expected = net.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"lacks {len(missing)} parameters (first: '{missing[0]}')")
        if unexpected:
            parts.append(f"has {len(unexpected)} parameters a U-Net/ResNet-34 does not (first: '{unexpected[0]}')")
        raise ModelError(f"{source} is not a segmentation-models-pytorch Unet('resnet34') state dict: "
                         f"it {' and '.join(parts)}")
    for key, value in expected.items():
        got = tuple(getattr(state[key], "shape", ()))
        if got != tuple(value.shape):
            hint = ""
            if key == "encoder.conv1.weight" and len(got) == 4:
                hint = f" (the weights take {got[1]} input channels; the card's input gives {in_channels})"
            elif key.startswith("segmentation_head.0.") and got:
                hint = f" (the weights give {got[0]} classes; the card names {classes})"
            raise ModelError(f"{source}: parameter '{key}' has shape {got}, expected {tuple(value.shape)}{hint}")
    net.load_state_dict(state)
    return net.eval()
