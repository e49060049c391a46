"""Each convolution of a 512 px tile, timed with the CPU kernels the engine can choose from.

For every convolution shape of a full-size (ngf=64) ResNet-9 generator, and the largest ones of
a UNet-512, on one 512 x 512 tile: fp32 and bf16 direct convolution (oneDNN, channels-last,
weights cast beforehand) and, for the stride-1 ones, NNPACK (fp32 Winograd for 3x3, FFT for
7x7; NCHW, as the engine runs it). Printed: milliseconds per call (best of ``--repeat``) and the
nominal GMAC/s (multiply-adds of direct convolution per second). This is the measurement
behind ``fast``'s choice on CPUs without AMX: the residual convs and the tail stay in fp32
NNPACK, everything else runs bf16 (see ``networks._winograd_applies``). Random inputs and
weights: the kernels' speed does not depend on the values.

Run::

    python benchmarks/conv_kernels.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F


class Conv(NamedTuple):
    """One convolution of a 512 px tile."""

    name: str
    c_in: int
    c_out: int
    size_in: int  #: input edge (pixels, padding included for the stride-1 ones)
    kernel: int
    stride: int
    transposed: bool = False

    @property
    def padding(self) -> int:
        """The stride-2 layers pad by 1 themselves; the stride-1 inputs come padded."""
        return 1 if self.stride == 2 else 0

    def gmac(self) -> float:
        """Multiply-adds of direct convolution, in billions."""
        if self.transposed:
            pixels = self.size_in**2  # every input pixel meets every tap
        else:
            pixels = ((self.size_in + 2 * self.padding - self.kernel) // self.stride + 1) ** 2
        return pixels * self.c_in * self.c_out * self.kernel**2 / 1e9


CONVS = [
    Conv("ResNet head 7x7", 3, 64, 518, 7, 1),
    Conv("ResNet down 1", 64, 128, 512, 3, 2),
    Conv("ResNet down 2", 128, 256, 256, 3, 2),
    Conv("ResNet residual 3x3 (x18)", 256, 256, 130, 3, 1),
    Conv("ResNet up 1", 256, 128, 128, 3, 2, True),
    Conv("ResNet up 2", 128, 64, 256, 3, 2, True),
    Conv("ResNet tail 7x7", 64, 3, 518, 7, 1),
    Conv("UNet down 64->128", 64, 128, 256, 4, 2),
    Conv("UNet up 256->64", 256, 64, 128, 4, 2, True),
    Conv("UNet up 512->128", 512, 128, 64, 4, 2, True),
]


def best_ms(call: Callable[[], torch.Tensor], repeat: int) -> float:
    call()
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - start)
    return best * 1e3


def time_conv(conv: Conv, repeat: int) -> dict[str, float]:
    """Milliseconds per call of each kernel that applies to ``conv``."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(1, conv.c_in, conv.size_in, conv.size_in, generator=gen)
    if conv.transposed:
        w = torch.randn(conv.c_in, conv.c_out, conv.kernel, conv.kernel, generator=gen)

        def direct(xx: torch.Tensor, ww: torch.Tensor) -> torch.Tensor:
            # the ResNet's 3x3 ones add output_padding=1 to double the size exactly
            return F.conv_transpose2d(xx, ww, stride=2, padding=1, output_padding=conv.kernel % 2)
    else:
        w = torch.randn(conv.c_out, conv.c_in, conv.kernel, conv.kernel, generator=gen)

        def direct(xx: torch.Tensor, ww: torch.Tensor) -> torch.Tensor:
            return F.conv2d(xx, ww, stride=conv.stride, padding=conv.padding)

    cl = torch.channels_last
    x32, w32 = x.contiguous(memory_format=cl), w.contiguous(memory_format=cl)
    x16, w16 = x32.bfloat16(), w32.bfloat16()
    times = {"fp32 direct": best_ms(lambda: direct(x32, w32), repeat),
             "bf16 direct": best_ms(lambda: direct(x16, w16), repeat)}
    if conv.stride == 1 and getattr(torch, "_nnpack_available", lambda: False)():
        times["fp32 NNPACK"] = best_ms(lambda: torch._nnpack_spatial_convolution(x, w, None, [0, 0]), repeat)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed calls per kernel (the best is kept)")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; one 512 px tile; ms per call "
          "(nominal GMAC/s)")
    kernels = ("fp32 direct", "bf16 direct", "fp32 NNPACK")
    print(f"{'convolution':28s} {'GMAC':>6s}" + "".join(f" {k:>20s}" for k in kernels))
    with torch.inference_mode():
        for conv in CONVS:
            times = time_conv(conv, args.repeat)
            cells = [f"{times[k]:7.1f} ({conv.gmac() / times[k] * 1e3:5.0f})" if k in times else "-" for k in kernels]
            print(f"{conv.name:28s} {conv.gmac():6.2f}" + "".join(f" {c:>20s}" for c in cells))


if __name__ == "__main__":
    main()
