"""How accurate a bf16 Winograd convolution would be, against bf16 and fp32 direct convolution.

Why `fast` keeps the ResNets' residual 3x3 convolutions in fp32 Winograd (NNPACK) on CPUs
without AMX: bf16 direct convolution is slower than that here, and the only way to fewer
operations in bf16, Winograd F(m x m, 3 x 3) with bf16 operands, loses much more accuracy.
This script measures that loss on one residual convolution's shapes (256 -> 256 channels,
a ReLU'd input, He-scaled random weights): the error of each method against the exact
float64 convolution, relative to the exact output (largest element and whole tensor).

Winograd is written out with float64 transforms; only its operands are rounded to bf16 (the
transformed input and filter, and the products that the GEMMs would return in bf16 on a
CPU), so the figures are the least error such a kernel could have. The transforms come from
the Toom-Cook construction with the interpolation points shown (plus the point at infinity).

Run::

    python benchmarks/winograd_bf16_error.py [--size 64]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from fractions import Fraction

import torch
import torch.nn.functional as F

Round = Callable[[torch.Tensor], torch.Tensor]


def toom_cook(m: int, r: int, points: list[Fraction]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Transforms ``(A^T, G, B^T)`` of Winograd F(m, r): ``y = A^T [(G g) * (B^T d)]`` is the
    valid correlation of a length ``m + r - 1`` input ``d`` with a length ``r`` filter ``g``.

    Correlation is the transpose of the polynomial product evaluated at ``points`` and at
    infinity, so ``A^T`` evaluates the output polynomial, ``G`` the filter, and ``B^T`` is the
    transposed inverse of the full evaluation matrix.
    """
    n = m + r - 1
    if len(points) != n - 1:
        raise ValueError(f"F({m}, {r}) needs {n - 1} finite points")

    def evaluation(degree: int) -> torch.Tensor:
        rows = [[float(p**j) for j in range(degree)] for p in points] + [[0.0] * (degree - 1) + [1.0]]
        return torch.tensor(rows, dtype=torch.float64)

    return evaluation(m).T, evaluation(r), torch.linalg.inv(evaluation(n)).T


def winograd_conv(x: torch.Tensor, w: torch.Tensor, m: int, points: list[Fraction], rnd: Round) -> torch.Tensor:
    """Valid 3x3 convolution of ``x`` (N, C, H, W) with ``w`` (K, C, 3, 3) by 2-D Winograd
    F(m x m, 3 x 3), rounding the transformed input, filter and products with ``rnd``."""
    at, g, bt = toom_cook(m, 3, points)
    n = m + 2
    batch, channels, h, wd = x.shape
    out_h, out_w = h - 2, wd - 2
    tiles_h, tiles_w = -(-out_h // m), -(-out_w // m)
    x = F.pad(x, (0, tiles_w * m + 2 - wd, 0, tiles_h * m + 2 - h))
    patches = x.unfold(2, n, m).unfold(3, n, m)  # N, C, tiles_h, tiles_w, n, n
    v = torch.einsum("ai,nctwij,bj->abntwc", bt, patches, bt).reshape(n * n, -1, channels)
    u = torch.einsum("ai,kcij,bj->abck", g, w, g).reshape(n * n, channels, -1)
    products = rnd(torch.bmm(rnd(v), rnd(u))).reshape(n, n, batch, tiles_h, tiles_w, -1)
    y = torch.einsum("pa,abntwk,qb->nktpwq", at, products, at)
    return y.reshape(batch, -1, tiles_h * m, tiles_w * m)[:, :, :out_h, :out_w]


def relative_errors(y: torch.Tensor, exact: torch.Tensor) -> tuple[float, float]:
    """(max |error| / max |exact|, ||error|| / ||exact||)."""
    err = (y.double() - exact).abs()
    return float(err.max() / exact.abs().max()), float(err.norm() / exact.norm())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64, help="input edge in pixels (a 512 px tile's trunk: 128)")
    parser.add_argument("--channels", type=int, default=256)
    args = parser.parse_args()
    gen = torch.Generator().manual_seed(0)
    c = args.channels
    x = torch.randn(1, c, args.size + 2, args.size + 2, generator=gen, dtype=torch.float64).relu()
    w = torch.randn(c, c, 3, 3, generator=gen, dtype=torch.float64) * (2 / (9 * c)) ** 0.5
    exact = F.conv2d(x, w)

    def bf16(t: torch.Tensor) -> torch.Tensor:
        return t.to(torch.bfloat16).double()

    def fp32(t: torch.Tensor) -> torch.Tensor:
        return t.float().double()

    rows = [
        ("direct, fp32", F.conv2d(x.float(), w.float())),
        ("direct, bf16", bf16(F.conv2d(bf16(x), bf16(w)))),
    ]
    for m, pts in ((2, [0, 1, -1]), (4, [0, 1, -1, 2, -2]), (6, [0, 1, -1, 2, -2, Fraction(1, 2), Fraction(-1, 2)])):
        points = [Fraction(p) for p in pts]
        label = f"Winograd F({m}x{m},3x3)"
        rows.append((f"{label}, fp32 operands", winograd_conv(x, w, m, points, fp32)))
        rows.append((f"{label}, bf16 operands", winograd_conv(x, w, m, points, bf16)))
    print(f"one 3x3 convolution, {c} -> {c} channels, {args.size} x {args.size} output; error against float64")
    print(f"{'method':40s} {'max rel':>10s} {'norm rel':>10s} {'vs bf16 direct':>15s}")
    reference = relative_errors(rows[1][1], exact)[1]
    for label, y in rows:
        worst, norm = relative_errors(y, exact)
        print(f"{label:40s} {worst:10.2e} {norm:10.2e} {norm / reference:14.3g}x")


if __name__ == "__main__":
    main()
