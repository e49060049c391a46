"""Build a full-size (ngf=64) DeepLIIF model with random weights in the release layout.

Random weights run exactly as fast as the real ones, so benchmarks use this instead of the
1.5 GB download. Never commit the output. Usage::

    python benchmarks/fullsize_model.py DIR [--ngf 64] [--seed 0]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

TRAIN_OPT = """----------------- Options ---------------
                    model: DeepLIIF
                     netG: resnet_9blocks
                   net_gs: unet_512
                      ngf: {ngf}
                     norm: batch
               no_dropout: False
                  padding: zero
            modalities_no: 4
                  seg_gen: True
                 input_no: 1
               scale_size: 512
----------------- End -------------------
"""


def _conv(gen: torch.Generator, out_c: int, in_c: int, k: int) -> torch.Tensor:
    return torch.randn(out_c, in_c, k, k, generator=gen) * 0.02


def _norm(state: dict, key: str, c: int, gen: torch.Generator) -> None:
    state[f"{key}.weight"] = 1 + 0.02 * torch.randn(c, generator=gen)
    state[f"{key}.bias"] = torch.zeros(c)
    state[f"{key}.num_batches_tracked"] = torch.tensor(0)


def resnet_state(ngf: int, gen: torch.Generator, n_blocks: int = 9) -> dict:
    """State dict of a ResNet generator with the reference's key names (zero padding)."""
    s: dict = {"model.1.weight": _conv(gen, ngf, 3, 7)}
    _norm(s, "model.2", ngf, gen)
    s["model.4.weight"] = _conv(gen, ngf * 2, ngf, 3)
    _norm(s, "model.5", ngf * 2, gen)
    s["model.7.weight"] = _conv(gen, ngf * 4, ngf * 2, 3)
    _norm(s, "model.8", ngf * 4, gen)
    for b in range(n_blocks):
        p = f"model.{10 + b}.conv_block"
        s[f"{p}.0.weight"] = _conv(gen, ngf * 4, ngf * 4, 3)
        _norm(s, f"{p}.1", ngf * 4, gen)
        s[f"{p}.4.weight"] = _conv(gen, ngf * 4, ngf * 4, 3)
        _norm(s, f"{p}.5", ngf * 4, gen)
    i = 10 + n_blocks
    s[f"model.{i}.weight"] = _conv(gen, ngf * 4, ngf * 2, 3)  # ConvTranspose: (in, out, k, k)
    _norm(s, f"model.{i + 1}", ngf * 2, gen)
    s[f"model.{i + 3}.weight"] = _conv(gen, ngf * 2, ngf, 3)
    _norm(s, f"model.{i + 4}", ngf, gen)
    s[f"model.{i + 7}.weight"] = _conv(gen, 3, ngf, 7)
    s[f"model.{i + 7}.bias"] = torch.zeros(3)
    return s


def unet_state(ngf: int, gen: torch.Generator, num_downs: int = 9) -> dict:
    """State dict of a UNet generator with the reference's key names."""
    # channels (outer, inner) per level below the outermost, outer to inner
    chans = [(ngf, ngf * 2), (ngf * 2, ngf * 4), (ngf * 4, ngf * 8)]
    chans += [(ngf * 8, ngf * 8)] * (num_downs - 4)
    s: dict = {"model.model.0.weight": _conv(gen, ngf, 3, 4)}
    s["model.model.3.weight"] = _conv(gen, ngf * 2, 3, 4)
    s["model.model.3.bias"] = torch.zeros(3)
    prefix = "model.model.1"
    for level, (outer, inner) in enumerate(chans):
        s[f"{prefix}.model.1.weight"] = _conv(gen, inner, outer, 4)
        if level == len(chans) - 1:
            s[f"{prefix}.model.3.weight"] = _conv(gen, inner, outer, 4)
            _norm(s, f"{prefix}.model.4", outer, gen)
        else:
            _norm(s, f"{prefix}.model.2", inner, gen)
            s[f"{prefix}.model.5.weight"] = _conv(gen, inner * 2, outer, 4)
            _norm(s, f"{prefix}.model.6", outer, gen)
            prefix = f"{prefix}.model.3"
    return s


def build(directory: Path, ngf: int = 64, seed: int = 0) -> Path:
    """Write ``train_opt.txt`` and ``latest_net_G*.pth`` for a random model into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(seed)
    (directory / "train_opt.txt").write_text(TRAIN_OPT.format(ngf=ngf))
    for n in ("G1", "G2", "G3", "G4"):
        torch.save(resnet_state(ngf, gen), directory / f"latest_net_{n}.pth")
    for n in ("G51", "G52", "G53", "G54", "G55"):
        torch.save(unet_state(ngf, gen), directory / f"latest_net_{n}.pth")
    return directory


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--ngf", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(build(args.directory, args.ngf, args.seed))
