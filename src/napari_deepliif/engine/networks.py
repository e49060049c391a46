"""DeepLIIF's generators, rebuilt from their weights for fast batched inference.

The reference runs each net on one tile at a time with BatchNorm in training mode, so every
norm layer normalises each channel over that tile alone. Here every norm layer is an
instance norm carrying the BatchNorm's weight, bias and eps: the same arithmetic, but a batch
of tiles keeps each tile's own statistics. Layer sizes (``ngf``, number of residual blocks,
UNet depth) are read from the weights' shapes, so the TorchScript and eager files of any
width run through this one implementation.

This module imports torch at import time; the rest of the package imports it lazily.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from napari_deepliif.engine.devices import cpu_has_amx
from napari_deepliif.errors import ModelError

BN_EPS = 1e-5
LEAKY_SLOPE = 0.2
#: The innermost UNet levels whose transposed convs run as a matrix product (at 512 px
#: tiles: inputs of 1, 2 and 4 px).
_MATMUL_LEVELS = 3

# Keys a BatchNorm carries that inference ignores (running stats are never used).
_IGNORED_SUFFIXES = (".running_mean", ".running_var", ".num_batches_tracked")


def clean_state_dict(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Drop BatchNorm running statistics and counters, which inference never uses."""
    return {k: v for k, v in state.items() if not k.endswith(_IGNORED_SUFFIXES)}


def _norm_act(x: Tensor, weight: Tensor, bias: Tensor, act: str | None, *, to_nchw: bool = False,
              residual: Tensor | None = None) -> Tensor:
    """Normalise each tile's channels over its own H x W (the reference's per-tile BatchNorm
    statistics), apply the affine, then an activation, then add ``residual`` if given. The
    result keeps ``x``'s layout, or with ``to_nchw`` (a channels-last ``x``, no residual) is
    written NCHW in the same pass. ``x`` may be overwritten: pass a layer's fresh output.

    The statistics are a mean and then a mean of squared deviations, in either layout:
    PyTorch's own channels-last batch-norm statistics are ~1000x less accurate in float32
    (2e-3 against 7e-7 here at 64 x 512 x 512), enough to flip the uint8 truncation of output
    pixels, and its NCHW training-mode ``batch_norm`` (what the reference runs) takes 1.7x
    as long for the same accuracy (5.1 against 3.0 ms at 256 x 128 x 128 with the ReLU).
    """
    if x.device.type == "cpu" and x.dtype == torch.bfloat16:
        # fast precision: statistics in float32 run 2.5x faster (cpu_norms), and a float32
        # output lets the next stride-1 conv run in NNPACK; bf16 convs cast it back themselves
        x = x.float()
    if x.device.type == "cpu" and x.dtype == torch.float32 and not to_nchw:
        return _cpu_norm_(x, weight, bias, act, residual)
    scale, shift = _channel_stats_affine(x, weight, bias)
    if to_nchw and _channels_last(x):
        return _affine_act_to_nchw(x, scale, shift, act)
    y = _act_(torch.addcmul(shift[:, :, None, None], x, scale[:, :, None, None]).to(x.dtype), act)
    return y if residual is None else residual + y


def _cpu_norm_(x: Tensor, weight: Tensor, bias: Tensor, act: str | None, residual: Tensor | None) -> Tensor:
    """:func:`_norm_act` of a float32 CPU ``x`` in place, compiled (:mod:`napari_deepliif.engine.cpu_norms`:
    the same arithmetic bit for bit, in 2-3 passes over the tile instead of 4-6)."""
    from napari_deepliif.engine.cpu_norms import (  # numba: loaded on first use
        IDENTITY,
        LEAKY_RELU,
        RELU,
        planes_norm_,
        rows_norm_,
    )

    rows = _channels_last(x)
    if not rows:
        x = x.contiguous()  # written in place through the views below
    tiles, kernel = _tile_matrices(x.detach(), rows), rows_norm_ if rows else planes_norm_
    extra = None if residual is None else _tile_matrices(residual.detach(), rows)
    code = {None: IDENTITY, "relu": RELU, "leaky": LEAKY_RELU}[act]
    w, b = weight.detach().float().contiguous().numpy(), bias.detach().float().contiguous().numpy()
    for i in range(x.shape[0]):
        kernel(tiles[i].numpy(), w, b, np.float32(BN_EPS), code, np.float32(LEAKY_SLOPE),
               None if extra is None else extra[i].numpy())
    return x


def _act_(y: Tensor, act: str | None) -> Tensor:
    if act == "relu":
        return F.relu_(y)
    if act == "leaky":
        return F.leaky_relu_(y, LEAKY_SLOPE)
    return y


def _channels_last(x: Tensor) -> bool:
    """True when ``x`` is stored channels-last and not also plain NCHW (1 x 1 maps are both)."""
    return x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()


def _tile_matrices(x: Tensor, rows: bool) -> Tensor:
    """Each tile of ``x`` (N x C x H x W) as a matrix: with ``rows`` one row per pixel
    (N x HW x C, a view of a channels-last ``x``), else one row per channel (N x C x HW, a
    view of an NCHW ``x``); other layouts are copied."""
    n, c = x.shape[:2]
    return x.permute(0, 2, 3, 1).reshape(n, -1, c) if rows else x.reshape(n, c, -1)


def _channel_stats_affine(x: Tensor, weight: Tensor, bias: Tensor) -> tuple[Tensor, Tensor]:
    """Per tile and channel ``scale`` and ``shift`` (N x C, float32) that normalise ``x`` and
    apply the norm's affine: ``y = x * scale + shift``. On the CPU in float32 the statistics
    come from :mod:`napari_deepliif.engine.cpu_norms` (2-3x faster, float64 sums)."""
    if x.device.type == "cpu" and x.dtype == torch.float32:
        mean, var = _cpu_mean_var(x)
    else:
        rows = _channels_last(x)
        flat, dim = _tile_matrices(x, rows), 1 if rows else 2
        mean = flat.mean(dim, dtype=torch.float32)
        var = (flat - mean.unsqueeze(dim)).square_().mean(dim)
    scale = weight.float() * torch.rsqrt(var + BN_EPS)
    return scale, bias.float() - mean * scale


def _cpu_mean_var(x: Tensor) -> tuple[Tensor, Tensor]:
    """Mean and variance (N x C, float32) of a float32 CPU ``x`` over each tile's H x W."""
    from napari_deepliif.engine.cpu_norms import (  # numba: loaded on first use
        planes_mean_var,
        rows_mean_var,
    )

    rows = _channels_last(x)
    kernel = rows_mean_var if rows else planes_mean_var
    stats = [kernel(tile.numpy()) for tile in _tile_matrices(x.detach(), rows)]
    mean = torch.from_numpy(np.stack([m for m, _ in stats])).float()
    var = torch.from_numpy(np.stack([v for _, v in stats])).float()
    return mean, var


#: Pixels per piece when a channels-last tensor is rewritten NCHW or back: PyTorch's own
#: layout copy walks the whole image once per channel (0.8 GB/s here at 64 x 512 x 512);
#: in pieces that stay in cache it is 2-3x faster.
_LAYOUT_PIECE = 1024


def _affine_act_to_nchw(x: Tensor, scale: Tensor, shift: Tensor, act: str | None) -> Tensor:
    """``act(x * scale + shift)`` of a channels-last ``x``, written NCHW piece by piece."""
    n, c, h, w = x.shape
    out = torch.empty((n, c, h, w), dtype=x.dtype, device=x.device)
    src, dst = _tile_matrices(x, rows=True), _tile_matrices(out, rows=False)
    scale, shift = scale[:, :, None], shift[:, :, None]
    for start in range(0, h * w, _LAYOUT_PIECE):
        piece = dst[:, :, start : start + _LAYOUT_PIECE]
        torch.addcmul(shift, src[:, start : start + _LAYOUT_PIECE].transpose(1, 2), scale, out=piece)
        _act_(piece, act)
    return out


def _copy_to_channels_last(dst: Tensor, src: Tensor) -> None:
    """Copy NCHW ``src`` into channels-last ``dst`` (same shape) piece by piece."""
    rows, planes = _tile_matrices(dst, rows=True), _tile_matrices(src, rows=False)
    for start in range(0, rows.shape[1], _LAYOUT_PIECE):
        rows[:, start : start + _LAYOUT_PIECE].copy_(planes[:, :, start : start + _LAYOUT_PIECE].transpose(1, 2))


_NNPACK: bool | None = None


def winograd_available() -> bool:
    """True when this PyTorch has NNPACK (Winograd 3x3 convolutions on CPU) and it starts.

    ``torch._nnpack_available()`` also initialises NNPACK, which must happen before use.
    """
    global _NNPACK
    if _NNPACK is None:
        # private PyTorch APIs: without either, the plain F.conv2d path runs (tested equal)
        _NNPACK = (hasattr(torch, "_nnpack_spatial_convolution")
                   and bool(getattr(torch, "_nnpack_available", lambda: False)()))
    return _NNPACK


def conv_stride1(x: Tensor, weight: Tensor, bias: Tensor | None = None, padding: int = 0) -> Tensor:
    """Stride-1 zero-padded convolution: the 3x3 residual convs (88% of a ResNet
    generator's work) and the 7x7 tail.

    On CPU in fp32 it uses NNPACK (Winograd for 3x3, FFT for 7x7), 2.3x to 5x faster
    than direct convolution for these shapes; its rounding differs slightly from direct
    convolution and the fixture tolerance tests run through it (see docs/benchmarks.md).
    NNPACK's batched mode is slow, so tiles go through one at a time. Elsewhere (GPU,
    reduced-precision input, see :func:`_winograd_applies`) it is an ordinary convolution.
    """
    if _winograd_applies(x) and weight.dtype == torch.float32:
        w = weight.contiguous()
        pad = [padding, padding]
        outs = [torch._nnpack_spatial_convolution(x[i : i + 1].contiguous(), w, bias, pad) for i in range(x.shape[0])]
        return outs[0] if len(outs) == 1 else torch.cat(outs)
    return F.conv2d(x, weight, bias, padding=padding)


def _winograd_applies(x: Tensor) -> bool:
    """True when :func:`conv_stride1` runs ``x`` through NNPACK: a float32 ``x`` on the CPU.

    ``fast`` precision keeps these convolutions in fp32 Winograd under its bf16 autocast:
    with AVX512-BF16 alone, bf16 direct convolution is slower than NNPACK for them and far
    less accurate. With AMX's bf16 tile instructions it is several times faster, so there
    they run bf16 (both measured with ``benchmarks/conv_kernels.py``: docs/precision.md).
    """
    return (
        x.device.type == "cpu"
        and x.dtype == torch.float32
        and winograd_available()
        and not (torch.is_autocast_enabled("cpu") and cpu_has_amx())
    )


class _Weights(nn.Module):
    """Holds a net's tensors as buffers so ``.to(device, dtype)`` moves them."""

    def __init__(self, state: Mapping[str, Tensor]):
        super().__init__()
        self._names: dict[str, str] = {}
        for i, (key, value) in enumerate(state.items()):
            buf = f"w{i}"
            # no copy: the loaded state dict is dropped after the build, so sharing is safe
            self.register_buffer(buf, value.detach().float())
            self._names[key] = buf

    def __getitem__(self, key: str) -> Tensor:
        return getattr(self, self._names[key])

    def __contains__(self, key: str) -> bool:
        return key in self._names

    def replace(self, key: str, value: Tensor) -> None:
        """Hold ``value`` under ``key`` instead (the old tensor is freed unless held elsewhere)."""
        setattr(self, self._names[key], value)

    def to_channels_last(self, keys: list[str]) -> None:
        """Store these 4-D weights channels-last (NHWC), the layout oneDNN and cuDNN run fastest."""
        for key in keys:
            self.replace(key, self[key].contiguous(memory_format=torch.channels_last))


def _require(state: Mapping[str, Tensor], key: str, ndim: int, what: str) -> Tensor:
    if key not in state:
        raise ModelError(f"{what}: weight '{key}' is missing")
    value = state[key]
    if value.ndim != ndim:
        raise ModelError(f"{what}: weight '{key}' has shape {tuple(value.shape)}, expected {ndim} dims")
    return value


def _block_convs(state: Mapping[str, Tensor], prefix: str, what: str) -> tuple[int, int] | None:
    """Indices of a residual block's two convs under ``prefix.conv_block.`` (each followed by
    its norm), or None when ``prefix`` is not a residual block."""
    pattern = re.compile(rf"{re.escape(prefix)}\.conv_block\.(\d+)\.weight$")
    convs = sorted(int(m.group(1)) for k, v in state.items() if (m := pattern.match(k)) and v.ndim == 4)
    if not convs:
        return None
    if len(convs) != 2:
        raise ModelError(f"{what}: residual block {prefix} has {len(convs)} convolutions, expected 2")
    for c in convs:
        _require(state, f"{prefix}.conv_block.{c + 1}.weight", 1, what)
    return convs[0], convs[1]


class ResnetGenerator(nn.Module):
    """The ResNet translation generator (``netG = resnet_<n>blocks``) of G1..G4.

    Layout: 7x7 conv, norm, ReLU; ``d`` stride-2 3x3 downsampling convs; ``n`` residual
    blocks of two 3x3 convs; ``d`` stride-2 transposed convs; 7x7 conv with bias; tanh.
    Zero padding (``padding: zero``) is the released model's; reflect and replicate padding
    (pad layers before the 7x7 and residual convs) also work, with or without dropout layers.
    """

    def __init__(self, state: Mapping[str, Tensor], what: str = "ResNet generator", padding: str = "zero"):
        super().__init__()
        state = clean_state_dict(state)
        top = sorted({int(m.group(1)) for k in state if (m := re.match(r"model\.(\d+)\.", k))})
        if not top:
            raise ModelError(f"{what}: no 'model.<i>.' weights: this is not a ResNet generator")
        self.pad_mode = {"zero": "constant", "reflect": "reflect", "replicate": "replicate"}.get(padding)
        if self.pad_mode is None:
            raise ModelError(f"{what}: unknown padding '{padding}' in train_opt.txt")
        self.steps: list[tuple[str, str, str | None]] = []  # (kind, conv key, norm key)
        self.block_convs: tuple[int, int] | None = None
        convs = [i for i in top if f"model.{i}.weight" in state and state[f"model.{i}.weight"].ndim == 4]
        for i in top:
            prefix = f"model.{i}"
            found = _block_convs(state, prefix, what)
            if found is not None:
                # conv_block.0 and .4 with zero padding; .1 and .5 (.6 after a dropout) behind pad layers
                if (found[0] == 0) != (self.pad_mode == "constant"):
                    raise ModelError(f"{what}: residual block {prefix} does not match padding '{padding}'")
                if self.block_convs not in (None, found):
                    raise ModelError(f"{what}: residual block {prefix} differs from the first block")
                self.block_convs = found
                self.steps.append(("block", prefix, None))
                continue
            if f"{prefix}.weight" not in state:
                continue
            w = state[f"{prefix}.weight"]
            if w.ndim == 1:
                continue  # a norm layer, consumed with its conv below
            if i == convs[0]:
                kind = "head"
            elif i == convs[-1]:
                kind = "tail"
            else:
                kind = "up" if self.block_convs else "down"
            norm = f"model.{i + 1}" if f"model.{i + 1}.weight" in state and state[f"model.{i + 1}.weight"].ndim == 1 else None
            if kind != "tail" and norm is None:
                raise ModelError(f"{what}: conv {prefix} has no norm layer after it")
            self.steps.append((kind, prefix, norm))
        if not self.block_convs or self.steps[0][0] != "head" or self.steps[-1][0] != "tail":
            raise ModelError(f"{what}: weights do not have the ResNet generator layout")
        head_w = state[f"{self.steps[0][1]}.weight"]
        self.in_channels = int(head_w.shape[1])
        self.head_kernel = int(head_w.shape[-1])
        self.ngf = int(head_w.shape[0])
        self.blocks = [conv for kind, conv, _ in self.steps if kind == "block"]
        self.n_blocks = len(self.blocks)
        # steps whose norm feeds NNPACK (the residual blocks, the tail): the last down and up steps
        self._before_nnpack = {max((i for i, s in enumerate(self.steps) if s[0] == kind), default=-1)
                               for kind in ("down", "up")}
        self.w = _Weights(state)

    def optimise_layout(self) -> None:
        """Put the weights of directly computed convolutions in channels-last layout (all of
        them off the CPU; on the CPU the residual convs and the tail stay NCHW for NNPACK)."""
        on_cpu = next(self.w.buffers()).device.type == "cpu"
        keys = [f"{conv}.weight" for kind, conv, _ in self.steps if kind != "block" and (not on_cpu or kind != "tail")]
        if not on_cpu:
            keys += [k for k in self.w._names if ".conv_block." in k and self.w[k].ndim == 4]
        self.w.to_channels_last(keys)

    def forward(self, x: Tensor) -> Tensor:
        # Channels-last throughout, except where NNPACK takes over (see conv_stride1): there
        # the residual blocks run tile by tile in NCHW and the tail runs NCHW; the norms
        # before them write NCHW directly and the blocks' output is copied back in pieces.
        w = self.w
        nnpack = _winograd_applies(x)
        x = x.contiguous(memory_format=torch.channels_last)
        to_nchw = self._before_nnpack if nnpack else set()
        for i, (kind, conv, norm) in enumerate(self.steps):
            if kind == "head":
                x = self._padded_conv(x, w[f"{conv}.weight"], None, self.head_kernel // 2, conv=F.conv2d)
                x = _norm_act(x, w[f"{norm}.weight"], w[f"{norm}.bias"], "relu")
            elif kind == "down":
                x = F.conv2d(x, w[f"{conv}.weight"], stride=2, padding=1)
                x = _norm_act(x, w[f"{norm}.weight"], w[f"{norm}.bias"], "relu", to_nchw=i in to_nchw)
            elif kind == "block":
                if conv == self.blocks[0]:  # the trunk runs every block
                    x = self._trunk(x, nnpack)
            elif kind == "up":
                x = F.conv_transpose2d(x, w[f"{conv}.weight"], stride=2, padding=1, output_padding=1)
                x = _norm_act(x, w[f"{norm}.weight"], w[f"{norm}.bias"], "relu", to_nchw=i in to_nchw)
            else:  # tail
                k = w[f"{conv}.weight"]
                p = k.shape[-1] // 2
                bias = w[f"{conv}.bias"] if f"{conv}.bias" in w else None
                x = torch.tanh(self._padded_conv(x, k, bias, p))
        return x

    def _trunk(self, x: Tensor, nnpack: bool) -> Tensor:
        """The residual blocks; with NNPACK each tile goes through all of them on its own (no
        joining of per-tile results after every layer), into a channels-last output."""
        if not nnpack:
            for prefix in self.blocks:
                x = self._block(x, prefix)
            return x
        out = torch.empty_like(x, memory_format=torch.channels_last)
        for i in range(x.shape[0]):
            tile = x[i : i + 1]
            for prefix in self.blocks:
                tile = self._block(tile, prefix)
            _copy_to_channels_last(out[i : i + 1], tile)
        return out

    def _padded_conv(self, x: Tensor, weight: Tensor, bias: Tensor | None, pad: int,
                     conv: Callable[..., Tensor] = conv_stride1) -> Tensor:
        """Stride-1 convolution (``conv``: :func:`conv_stride1`, or ``F.conv2d`` to stay
        channels-last) after padding by ``pad``; zero padding is left to the convolution itself,
        which saves copying the padded input (64 x 518 x 518 at the tail)."""
        if self.pad_mode == "constant":
            return conv(x, weight, bias, padding=pad)
        return conv(F.pad(x, (pad, pad, pad, pad), mode=self.pad_mode), weight, bias)

    def _block(self, x: Tensor, prefix: str) -> Tensor:
        """One residual block: ``x`` plus its two convs and norms (the add fused into the last norm)."""
        w = self.w
        y = x
        for conv, act, residual in ((self.block_convs[0], "relu", None), (self.block_convs[1], None, x)):
            y = self._padded_conv(y, w[f"{prefix}.conv_block.{conv}.weight"], None, 1)
            y = _norm_act(y, w[f"{prefix}.conv_block.{conv + 1}.weight"], w[f"{prefix}.conv_block.{conv + 1}.bias"],
                          act, residual=residual)
        return y


class UnetGenerator(nn.Module):
    """The UNet segmentation generator (``net_gs = unet_<size>``) of G51..G55.

    Each level: LeakyReLU(0.2), 4x4 stride-2 conv, norm (not at the innermost level), the
    inner level, ReLU, 4x4 stride-2 transposed conv, norm; the level's output is its
    LeakyReLU'd input concatenated with that (the reference's in-place LeakyReLU makes the
    skip connection carry the activated input). The outermost level has no activation
    before its conv, no norm, a biased transposed conv and tanh.
    """

    def __init__(self, state: Mapping[str, Tensor], what: str = "UNet generator"):
        super().__init__()
        state = clean_state_dict(state)
        _require(state, "model.model.0.weight", 4, what)
        _require(state, "model.model.3.weight", 4, what)
        self.levels: list[tuple[str, bool]] = []  # (prefix, innermost)
        prefix = "model.model.1"
        while True:
            _require(state, f"{prefix}.model.1.weight", 4, what)
            if f"{prefix}.model.3.weight" in state:  # innermost: up conv right after
                _require(state, f"{prefix}.model.4.weight", 1, what)
                self.levels.append((prefix, True))
                break
            _require(state, f"{prefix}.model.2.weight", 1, what)
            _require(state, f"{prefix}.model.5.weight", 4, what)
            _require(state, f"{prefix}.model.6.weight", 1, what)
            self.levels.append((prefix, False))
            prefix = f"{prefix}.model.3"
            if len(self.levels) > 16:
                raise ModelError(f"{what}: UNet deeper than 16 levels: weights are not a UNet generator")
        self.depth = len(self.levels) + 1
        self.in_channels = int(state["model.model.0.weight"].shape[1])
        self.ngf = int(state["model.model.0.weight"].shape[0])
        self.w = _Weights(state)

    def optimise_layout(self) -> None:
        """Put every conv weight in channels-last layout (oneDNN/cuDNN's fastest), except the
        transposed convs of the innermost levels, which become matrices (see :meth:`_up`)."""
        inner = {f"{prefix}.model.{3 if innermost else 5}.weight" for prefix, innermost in self.levels[-_MATMUL_LEVELS:]}
        self.w.to_channels_last([k for k in self.w._names if self.w[k].ndim == 4 and k not in inner])
        for key in inner:
            w = self.w[key]
            self.w.replace(key, w.reshape(w.shape[0], -1).t().contiguous())

    def _up(self, y: Tensor, key: str) -> Tensor:
        """4x4 stride-2 transposed convolution. At the innermost levels (inputs of a few
        pixels) it is a matrix product and a fold: the direct kernel's per-call weight
        reordering costs ~10x the arithmetic there. Their weights are kept only as matrices
        (Cout x 16 by Cin, 80 MB a UNet-512), so larger inputs at those levels, which the
        released models never see, take the same path."""
        weight = self.w[key]
        if weight.ndim == 4:
            return F.conv_transpose2d(y, weight, stride=2, padding=1)
        n, c, h, w = y.shape
        cols = weight @ y.reshape(n, c, h * w)
        return F.fold(cols, (2 * h, 2 * w), 4, stride=2, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        w = self.w
        x = F.leaky_relu_(F.conv2d(x, w["model.model.0.weight"], stride=2, padding=1), LEAKY_SLOPE)
        x = self._level(x, 0)
        bias = w["model.model.3.bias"] if "model.model.3.bias" in w else None
        return torch.tanh(F.conv_transpose2d(x, w["model.model.3.weight"], bias, stride=2, padding=1))

    def _level(self, skip: Tensor, i: int) -> Tensor:
        """Level ``i`` on its LeakyReLU'd input ``skip``. Returns the ReLU of the concatenated
        skip and up path, the ReLU the level above applies first; each activation is fused
        into the norm before it where there is one."""
        w = self.w
        prefix, innermost = self.levels[i]
        y = F.conv2d(skip, w[f"{prefix}.model.1.weight"], stride=2, padding=1)
        if innermost:
            y = F.relu_(y)
            up, norm = f"{prefix}.model.3", f"{prefix}.model.4"
        else:
            y = self._level(_norm_act(y, w[f"{prefix}.model.2.weight"], w[f"{prefix}.model.2.bias"], "leaky"), i + 1)
            up, norm = f"{prefix}.model.5", f"{prefix}.model.6"
        y = _norm_act(self._up(y, f"{up}.weight"), w[f"{norm}.weight"], w[f"{norm}.bias"], "relu")
        return torch.cat([F.relu(skip), y], 1)
