"""A batch-of-one baseline of the reference DeepLIIF pipeline, for the inference benchmarks.

Written from ``shared/docs/deepliif-reference.md``: the generators are plain ``torch.nn``
modules laid out as the reference's ResNet-9 (G1..G4) and UNet-512 (G51..G55), so the
reference's state dicts load into them by key name; BatchNorm keeps no running statistics,
so every norm layer normalises over the one tile it is given. Tiles run one at a time, NCHW,
float32, under ``torch.no_grad``, through all nine nets (G52..G54 too, although their seg
weight is 0), with PIL bicubic resizing and the reference's tiling (mirror growth, row-by-row
tiles moved flush to the edges, centres pasted with later tiles overwriting earlier ones).

Run as a script, it checks the baseline against the engine (and both against the reference
outputs in the fixtures) within the fixtures' tolerance: max abs difference <= 2 and >= 99.5%
identical values per image and channel. Usage::

    PYTHONPATH=src python benchmarks/baseline.py [--model DIR] [--image PNG] [--resolution 40x]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from napari_deepliif.constants import (
    EMPTY_TILE_COLOURS,
    EMPTY_TILE_VARIANCE,
    MODALITIES,
    SEG,
    TILE_SIZE_BY_RESOLUTION,
)
from napari_deepliif.models.options import ModelOptions, read_model_options

SHARED = Path(__file__).resolve().parents[2] / "shared"
FIXTURE_MODEL = SHARED / "fixtures" / "models" / "deepliif-fit-ngf8"
FIXTURE_IMAGE = SHARED / "fixtures" / "inputs" / "ihc_22_2.png"
#: Reference output file of each output name in ``fixtures/inference/MODEL/INPUT_tTILE/``.
REFERENCE_FILES = {"Hema": "mod1-Hema.png", "DAPI": "mod2-DAPI.png", "Lap2": "mod3-Lap2.png",
                   "Marker": "mod4-Marker.png", "Seg": "Seg.png"}
#: The fixtures' tolerance for the fp32 path (see ``shared/fixtures/README.md``).
MAX_ABS_DIFF = 2
MIN_IDENTICAL = 0.995
_RUNNING_STATS = (".running_mean", ".running_var", ".num_batches_tracked")


def _norm(channels: int) -> nn.BatchNorm2d:
    # Without running statistics BatchNorm always normalises with the statistics of the batch
    # it is given (also in eval mode): with a batch of one, those of the tile.
    return nn.BatchNorm2d(channels, track_running_stats=False)


class ResnetBlock(nn.Module):
    """Two 3x3 convs with norms (ReLU and dropout between them), added to the input."""

    def __init__(self, dim: int):
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.Conv2d(dim, dim, 3, padding=1, bias=False), _norm(dim), nn.ReLU(True), nn.Dropout(0.5),
            nn.Conv2d(dim, dim, 3, padding=1, bias=False), _norm(dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    """ResNet-``n_blocks`` translation generator with zero padding (``model.<i>`` keys)."""

    def __init__(self, ngf: int, n_blocks: int = 9):
        super().__init__()
        layers: list[nn.Module] = [nn.ZeroPad2d(3), nn.Conv2d(3, ngf, 7, bias=False), _norm(ngf), nn.ReLU(True)]
        for mult in (1, 2):
            layers += [nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=2, padding=1, bias=False),
                       _norm(ngf * mult * 2), nn.ReLU(True)]
        layers += [ResnetBlock(ngf * 4) for _ in range(n_blocks)]
        for mult in (4, 2):
            layers += [nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 3, stride=2, padding=1, output_padding=1,
                                          bias=False), _norm(ngf * mult // 2), nn.ReLU(True)]
        layers += [nn.ZeroPad2d(3), nn.Conv2d(ngf, 3, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class UnetLevel(nn.Module):
    """One UNet level: LeakyReLU, 4x4 stride-2 conv, norm (not innermost), the inner level,
    ReLU, 4x4 stride-2 transposed conv, norm; output = [activated input, result].

    The reference's LeakyReLU runs in place on the level's input, so its skip connection
    carries the activated input; here that is explicit.
    """

    def __init__(self, outer: int, inner: int, inner_level: "UnetLevel | None"):
        super().__init__()
        layers: list[nn.Module] = [nn.LeakyReLU(0.2), nn.Conv2d(outer, inner, 4, stride=2, padding=1, bias=False)]
        if inner_level is None:
            layers += [nn.ReLU(True), nn.ConvTranspose2d(inner, outer, 4, stride=2, padding=1, bias=False), _norm(outer)]
        else:
            layers += [_norm(inner), inner_level, nn.ReLU(True),
                       nn.ConvTranspose2d(inner * 2, outer, 4, stride=2, padding=1, bias=False), _norm(outer)]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = self.model[0](x)
        return torch.cat([skip, self.model[1:](skip)], 1)


class UnetOutermost(nn.Module):
    """The outermost level: conv, the inner levels, ReLU, biased transposed conv, tanh."""

    def __init__(self, ngf: int, inner_level: UnetLevel):
        super().__init__()
        self.model = nn.Sequential(nn.Conv2d(3, ngf, 4, stride=2, padding=1, bias=False), inner_level, nn.ReLU(True),
                                   nn.ConvTranspose2d(ngf * 2, 3, 4, stride=2, padding=1), nn.Tanh())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class UnetGenerator(nn.Module):
    """UNet segmentation generator with ``num_downs`` levels (``model.model...`` keys)."""

    def __init__(self, ngf: int, num_downs: int = 9):
        super().__init__()
        # (outer, inner) channels per level below the outermost, innermost first
        channels = [(ngf * 8, ngf * 8)] * (num_downs - 4) + [(ngf * 4, ngf * 8), (ngf * 2, ngf * 4), (ngf, ngf * 2)]
        level = None
        for outer, inner in channels:
            level = UnetLevel(outer, inner, level)
        self.model = UnetOutermost(ngf, level)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def _number(name: str, prefix: str, suffix: str = "") -> int:
    """The number in ``<prefix><n><suffix>`` (``resnet_9blocks`` -> 9, ``unet_512`` -> 512)."""
    middle = name.removeprefix(prefix).removesuffix(suffix)
    if not name.startswith(prefix) or not name.endswith(suffix) or not middle.isdigit():
        raise ValueError(f"unsupported network '{name}' (expected {prefix}<n>{suffix})")
    return int(middle)


def read_state(directory: Path, name: str) -> dict[str, torch.Tensor]:
    """Net ``name``'s state dict: TorchScript ``<name>.pt`` if present, else ``latest_net_<name>.pth``."""
    script = directory / f"{name}.pt"
    if script.is_file():
        return dict(torch.jit.load(str(script), map_location="cpu").state_dict())
    return torch.load(str(directory / f"latest_net_{name}.pth"), map_location="cpu", weights_only=True)


def load_net(net: nn.Module, state: dict[str, torch.Tensor], what: str) -> nn.Module:
    """Load ``state`` into ``net``; only BatchNorm running statistics may be left over."""
    result = net.load_state_dict(state, strict=False)
    unexpected = [k for k in result.unexpected_keys if not k.endswith(_RUNNING_STATS)]
    if result.missing_keys or unexpected:
        raise ValueError(f"{what}: missing {result.missing_keys[:5]}, unexpected {unexpected[:5]}")
    return net.eval()


class Baseline:
    """The reference pipeline with the nine nets of a model directory, one tile at a time."""

    def __init__(self, directory: Path):
        self.options: ModelOptions = read_model_options(directory)
        opt = self.options
        if opt.padding != "zero":
            raise ValueError(f"{directory}: the baseline builds zero-padded generators, not '{opt.padding}'")
        n_blocks = _number(opt.net_g, "resnet_", "blocks")
        num_downs = _number(opt.net_gs, "unet_").bit_length() - 1  # unet_512: 9 stride-2 levels
        self.names = opt.modalities_names or MODALITIES[: opt.modalities_no]
        self.translation = [load_net(ResnetGenerator(opt.ngf, n_blocks), read_state(directory, f"G{i}"), f"G{i}")
                            for i in range(1, opt.modalities_no + 1)]
        self.segmentation = [load_net(UnetGenerator(opt.ngf, num_downs), read_state(directory, f"G5{k}"), f"G5{k}")
                             for k in range(1, opt.modalities_no + 2)]

    @property
    def outputs(self) -> tuple[str, ...]:
        """Output names: the modalities (G1..G4), then Seg."""
        return (*self.names, SEG)

    def run_tile(self, tile: np.ndarray) -> dict[str, np.ndarray]:
        """Outputs (S x S x 3 uint8) of one S x S x 3 uint8 tile."""
        size = tile.shape[0]
        grey = np.asarray(Image.fromarray(tile).convert("L"))
        rest = grey[(grey != 0) & (grey != 255)]
        if rest.size == 0 or rest.var() < EMPTY_TILE_VARIANCE:
            return {name: np.full((size, size, 3), EMPTY_TILE_COLOURS[name], np.uint8) for name in self.outputs}
        scale = self.options.scale_size
        pil = Image.fromarray(tile)
        if size != scale:
            pil = pil.resize((scale, scale), Image.Resampling.BICUBIC)
        x = torch.from_numpy(np.asarray(pil).copy()).permute(2, 0, 1).float().div(255)
        x = ((x - 0.5) / 0.5).unsqueeze(0)
        with torch.no_grad():
            modalities = [net(x) for net in self.translation]
            inputs = [x, *modalities]
            seg = sum(w * net(inp) for w, net, inp in zip(self.options.seg_weights, self.segmentation, inputs))
        images = {}
        for name, t in zip(self.outputs, [*modalities, seg]):
            array = ((t[0].permute(1, 2, 0).numpy() + 1) / 2 * 255).astype(np.uint8)
            if size != scale:
                array = np.asarray(Image.fromarray(array).resize((size, size), Image.Resampling.BICUBIC))
            images[name] = array
        return images

    def infer(self, image: np.ndarray, tile_size: int) -> dict[str, np.ndarray]:
        """Every output (H x W x 3 uint8) of an H x W x 3 uint8 image, tiled as the reference."""
        height, width = image.shape[:2]
        grown = image
        # mirror growth of a side shorter than a tile: append mirrored copies, keep one tile
        while grown.shape[1] < tile_size:
            grown = np.concatenate([grown, grown[:, ::-1]], axis=1)[:, :tile_size]
        while grown.shape[0] < tile_size:
            grown = np.concatenate([grown, grown[::-1]], axis=0)[:tile_size]
        gh, gw = grown.shape[:2]
        oy = 0 if gh <= tile_size else tile_size // 16
        ox = 0 if gw <= tile_size else tile_size // 16
        out = {name: np.zeros((gh, gw, 3), np.uint8) for name in self.outputs}
        for y in range(0, gh, tile_size - 2 * oy):
            y = min(y, gh - tile_size)
            for x in range(0, gw, tile_size - 2 * ox):
                x = min(x, gw - tile_size)
                result = self.run_tile(np.ascontiguousarray(grown[y : y + tile_size, x : x + tile_size, :3]))
                r0 = 0 if y == 0 else oy
                r1 = tile_size if y + tile_size == gh else tile_size - oy
                c0 = 0 if x == 0 else ox
                c1 = tile_size if x + tile_size == gw else tile_size - ox
                for name, tile in result.items():
                    out[name][y + r0 : y + r1, x + c0 : x + c1] = tile[r0:r1, c0:c1]
        return {name: a[:height, :width] for name, a in out.items()}


def compare(a: np.ndarray, b: np.ndarray) -> tuple[int, float]:
    """(max abs difference, smallest per-channel fraction of identical values) of two images."""
    diff = np.abs(a.astype(np.int16) - b.astype(np.int16))
    return int(diff.max()), float(min((diff[..., c] == 0).mean() for c in range(diff.shape[-1])))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=FIXTURE_MODEL)
    parser.add_argument("--image", type=Path, default=FIXTURE_IMAGE)
    parser.add_argument("--resolution", default="40x", choices=sorted(TILE_SIZE_BY_RESOLUTION))
    args = parser.parse_args()

    from napari_deepliif.engine.engines import Engine

    image = np.asarray(Image.open(args.image).convert("RGB"))
    tile_size = TILE_SIZE_BY_RESOLUTION[args.resolution]
    ours = Baseline(args.model).infer(image, tile_size)
    engine = Engine.load(args.model, device="cpu").infer(image, resolution=args.resolution)
    case = SHARED / "fixtures" / "inference" / args.model.name / f"{args.image.stem}_t{tile_size}"
    pairs = [("engine", engine)]
    if case.is_dir():
        pairs.append(("reference", {n: np.asarray(Image.open(case / f).convert("RGB")) for n, f in REFERENCE_FILES.items()}))
    print(f"baseline on {args.image.name} ({image.shape[1]} x {image.shape[0]}), model {args.model}, {args.resolution}")
    print(f"tolerance: max abs diff <= {MAX_ABS_DIFF}, identical >= {MIN_IDENTICAL:.1%} per channel")
    ok = True
    for other, images in pairs:
        for name in ours:
            if name not in images:
                continue
            worst, same = compare(ours[name], images[name])
            passed = worst <= MAX_ABS_DIFF and same >= MIN_IDENTICAL
            ok &= passed
            print(f"  baseline vs {other:9s} {name:6s} max {worst:3d}  identical {same:8.3%}  {'ok' if passed else 'FAIL'}")
    print("baseline matches" if ok else "baseline DOES NOT match")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
