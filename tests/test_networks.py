"""The rebuilt ResNet generator against a plain PyTorch one for the padding modes the release
does not use (reflect, replicate), whose residual blocks hold pad and dropout layers."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from napari_deepliif.engine.networks import ResnetGenerator
from napari_deepliif.errors import ModelError

PADS = {"reflect": nn.ReflectionPad2d, "replicate": nn.ReplicationPad2d}


def _norm(channels: int) -> nn.BatchNorm2d:
    norm = nn.BatchNorm2d(channels)
    nn.init.uniform_(norm.weight, 0.5, 1.5)
    nn.init.uniform_(norm.bias, -0.5, 0.5)
    return norm


class _Block(nn.Module):
    def __init__(self, dim: int, pad: type[nn.Module], dropout: bool):
        super().__init__()
        layers = [pad(1), nn.Conv2d(dim, dim, 3, bias=False), _norm(dim), nn.ReLU(True)]
        layers += [nn.Dropout(0.5)] if dropout else []
        layers += [pad(1), nn.Conv2d(dim, dim, 3, bias=False), _norm(dim)]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


def _reference(padding: str, dropout: bool, ngf: int = 4, n_blocks: int = 2) -> nn.Module:
    """A pix2pix-style ResNet generator written out plainly (pad layers, BatchNorm per tile)."""
    pad = PADS[padding]
    layers: list[nn.Module] = [pad(3), nn.Conv2d(3, ngf, 7, bias=False), _norm(ngf), nn.ReLU(True)]
    for mult in (1, 2):
        layers += [nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=2, padding=1, bias=False), _norm(ngf * mult * 2),
                   nn.ReLU(True)]
    layers += [_Block(ngf * 4, pad, dropout) for _ in range(n_blocks)]
    for mult in (4, 2):
        layers += [nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 3, stride=2, padding=1, output_padding=1,
                                      bias=False), _norm(ngf * mult // 2), nn.ReLU(True)]
    layers += [pad(3), nn.Conv2d(ngf, 3, 7), nn.Tanh()]
    net = nn.Module()
    net.model = nn.Sequential(*layers)
    return net


@pytest.mark.parametrize("padding", ["reflect", "replicate"])
@pytest.mark.parametrize("dropout", [True, False])
@pytest.mark.parametrize("nnpack", [True, False], ids=["nnpack", "no-nnpack"])
def test_padded_generators_match_plain_pytorch(padding: str, dropout: bool, nnpack: bool,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    if not nnpack:  # as on a PyTorch build without NNPACK: the trunk stays channels-last
        monkeypatch.setattr("napari_deepliif.engine.networks._NNPACK", False)
    torch.manual_seed(0)
    reference = _reference(padding, dropout)
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        # training-mode BatchNorm on one tile at a time: the reference's per-tile statistics;
        # dropout off, as at inference
        reference.train()
        for m in reference.modules():
            if isinstance(m, nn.Dropout):
                m.eval()
        expected = torch.cat([reference.model(x[i : i + 1]) for i in range(2)])
        ours = ResnetGenerator(reference.state_dict(), padding=padding)
        ours.optimise_layout()
        got = ours(x)
    assert ours.n_blocks == 2
    torch.testing.assert_close(got, expected, atol=2e-5, rtol=0)


def test_blocks_that_do_not_match_the_padding_are_refused() -> None:
    state = _reference("reflect", True).state_dict()
    with pytest.raises(ModelError, match="does not match padding 'zero'"):
        ResnetGenerator(state, padding="zero")


@pytest.mark.parametrize("channels_last", [True, False])
def test_norm_statistics_are_per_tile_and_exact(channels_last: bool) -> None:
    from napari_deepliif.engine.networks import BN_EPS, _channel_stats_affine

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 32, 40, 24, generator=gen) * torch.tensor([3.0, 0.5]).view(2, 1, 1, 1) + 7.0
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    weight, bias = torch.rand(32, generator=gen) + 0.5, torch.randn(32, generator=gen)
    exact = x.double()
    mean = exact.mean(dim=(2, 3))
    var = exact.var(dim=(2, 3), unbiased=False)
    scale = weight.double() / torch.sqrt(var + BN_EPS)
    shift = bias.double() - mean * scale
    # float32 on the CPU: the compiled statistics; bfloat16: PyTorch's reductions (as on a GPU)
    for dtype, rtol, atol in ((torch.float32, 1e-6, 1e-5), (torch.bfloat16, 2e-2, 0.3)):
        got_scale, got_shift = _channel_stats_affine(x.to(dtype), weight, bias)
        assert got_scale.dtype == torch.float32 and got_scale.shape == (2, 32)
        torch.testing.assert_close(got_scale.double(), scale, rtol=rtol, atol=0.0)
        torch.testing.assert_close(got_shift.double(), shift, rtol=rtol, atol=atol)


@pytest.mark.parametrize("act", [None, "relu", "leaky"])
@pytest.mark.parametrize("with_residual", [True, False])
@pytest.mark.parametrize("channels_last", [True, False])
def test_compiled_norm_layers_equal_pytorch_arithmetic_bit_for_bit(act: str | None, with_residual: bool,
                                                                    channels_last: bool) -> None:
    import torch.nn.functional as F

    from napari_deepliif.engine.networks import LEAKY_SLOPE, _channel_stats_affine, _norm_act

    gen = torch.Generator().manual_seed(1)
    x = torch.randn(2, 16, 33, 20, generator=gen) * torch.tensor([2.0, 0.3]).view(2, 1, 1, 1) - 1.0
    weight, bias = torch.rand(16, generator=gen) + 0.5, torch.randn(16, generator=gen)
    residual = torch.randn(2, 16, 33, 20, generator=gen) if with_residual else None
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    scale, shift = _channel_stats_affine(x, weight, bias)
    expected = torch.addcmul(shift[:, :, None, None], x, scale[:, :, None, None])
    if act == "relu":
        expected = F.relu(expected)
    elif act == "leaky":
        expected = F.leaky_relu(expected, LEAKY_SLOPE)
    if residual is not None:
        expected = residual + expected
    got = _norm_act(x.clone(), weight, bias, act, residual=residual)
    assert got.is_contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    assert torch.equal(got, expected)
    # the PyTorch path the GPUs take (here: any dtype but CPU float32) means the same layer
    generic = _norm_act(x.double(), weight, bias, act, residual=None if residual is None else residual.double())
    torch.testing.assert_close(generic, expected.double(), rtol=1e-5, atol=1e-5)


def test_a_pytorch_without_the_private_nnpack_api_falls_back_to_plain_convolution(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fast CPU kernels use private PyTorch APIs; where one is missing the engine runs plain
    PyTorch, with the same result as the reference generator."""
    import torch

    from napari_deepliif.engine import networks

    monkeypatch.setattr(networks, "_NNPACK", None)
    monkeypatch.delattr(torch, "_nnpack_spatial_convolution", raising=False)
    assert networks.winograd_available() is False
    torch.manual_seed(0)
    reference = _reference("reflect", False)
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        reference.train()
        expected = reference.model(x)
        ours = ResnetGenerator(reference.state_dict(), padding="reflect")
        ours.optimise_layout()
        got = ours(x)
    torch.testing.assert_close(got, expected, atol=2e-5, rtol=0)
