"""Per-tile norm layers on the CPU in float32, compiled with numba.

DeepLIIF's norm layers normalise each tile's channels over that tile's H x W. PyTorch needs
three passes and a temporary the size of the activation for the two-pass statistics (mean,
then mean of squared deviations), then one pass each for the affine, the activation and a
residual add. Here the statistics are two passes in place with float64 sums (exact to ~1e-14
where float32 reductions are ~3e-7), and the affine, activation and residual add one more.
In an NCHW tile (the ResNet trunk) all of it happens one channel plane at a time while the
plane is in cache. The results equal PyTorch's float32 arithmetic on the same statistics bit
for bit (``tests/test_networks.py``).
"""

from __future__ import annotations

import numpy as np
from numba import njit

#: Activation codes of :func:`planes_norm_` and :func:`rows_norm_`.
IDENTITY, RELU, LEAKY_RELU = 0, 1, 2


@njit(cache=True, nogil=True)
def rows_mean_var(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (biased) variance of each column of ``a`` (P x C, float32): a tile stored
    channels-last, one row per pixel. Returns two float64 arrays of C."""
    p, c = a.shape
    total = np.zeros(c)
    for i in range(p):
        for j in range(c):
            total[j] += a[i, j]
    mean = total / p
    squares = np.zeros(c)
    for i in range(p):
        for j in range(c):
            d = a[i, j] - mean[j]
            squares[j] += d * d
    return mean, squares / p


@njit(cache=True, nogil=True, fastmath=True)  # reassociated float64 sums: vectorised
def _plane_mean_var(plane: np.ndarray) -> tuple[float, float]:
    p = plane.shape[0]
    total = 0.0
    for i in range(p):
        total += plane[i]
    m = total / p
    squares = 0.0
    for i in range(p):
        d = plane[i] - m
        squares += d * d
    return m, squares / p


@njit(cache=True, nogil=True)
def planes_mean_var(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (biased) variance of each row of ``a`` (C x P, float32): a tile stored NCHW,
    one row per channel. Returns two float64 arrays of C."""
    c = a.shape[0]
    mean = np.empty(c)
    var = np.empty(c)
    for j in range(c):
        mean[j], var[j] = _plane_mean_var(a[j])
    return mean, var


# No fast-math here, nor in any caller: a jitted function without flags of its own takes those
# of the first caller it is compiled for. The float32 roundings of
# networks._channel_stats_affine, one by one.
@njit(cache=True, nogil=True)
def _scale_shift(mean: float, var: float, weight: np.float32, bias: np.float32,
                 eps: np.float32) -> tuple[np.float32, np.float32]:
    scale = weight * (np.float32(1.0) / np.sqrt(np.float32(var) + eps))
    return scale, bias - np.float32(mean) * scale


# Contraction only: value * scale + shift becomes one fused multiply-add, as in torch.addcmul.
@njit(cache=True, nogil=True, fastmath={"contract"})
def _layer(value: np.float32, scale: np.float32, shift: np.float32, act: int, slope: np.float32) -> np.float32:
    y = value * scale + shift
    if act == RELU:
        return max(y, np.float32(0.0))
    if act == LEAKY_RELU and y < np.float32(0.0):
        return y * slope
    return y


@njit(cache=True, nogil=True, fastmath={"contract"})
def _apply_plane(plane: np.ndarray, scale: np.float32, shift: np.float32, act: int, slope: np.float32,
                 residual: np.ndarray | None) -> None:
    for i in range(plane.shape[0]):
        y = _layer(plane[i], scale, shift, act, slope)
        plane[i] = y if residual is None else residual[i] + y


@njit(cache=True, nogil=True)
def planes_norm_(a: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: np.float32, act: int,
                 slope: np.float32, residual: np.ndarray | None) -> None:
    """Norm layer of one NCHW tile ``a`` (C x P, float32), in place:
    ``a = residual + act(a * scale + shift)``, each channel's ``scale`` and ``shift`` from its
    mean and variance over P and the layer's ``weight``, ``bias`` (float32 arrays of C) and
    ``eps``. ``act``: :data:`IDENTITY`, :data:`RELU` or :data:`LEAKY_RELU` (negative values
    times ``slope``); ``residual``: C x P, or None. One visit of each channel plane.
    """
    for j in range(a.shape[0]):
        mean, var = _plane_mean_var(a[j])
        scale, shift = _scale_shift(mean, var, weight[j], bias[j], eps)
        _apply_plane(a[j], scale, shift, act, slope, None if residual is None else residual[j])


@njit(cache=True, nogil=True, fastmath={"contract"})
def _apply_rows(a: np.ndarray, scale: np.ndarray, shift: np.ndarray, act: int, slope: np.float32,
                residual: np.ndarray | None) -> None:
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            y = _layer(a[i, j], scale[j], shift[j], act, slope)
            a[i, j] = y if residual is None else residual[i, j] + y


@njit(cache=True, nogil=True)
def rows_norm_(a: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: np.float32, act: int,
               slope: np.float32, residual: np.ndarray | None) -> None:
    """:func:`planes_norm_` for a channels-last tile ``a`` (P x C, float32; ``residual``
    P x C): the statistics in two passes, then the affine, activation and add in one."""
    mean, var = rows_mean_var(a)
    c = a.shape[1]
    scale = np.empty(c, np.float32)
    shift = np.empty(c, np.float32)
    for j in range(c):
        scale[j], shift[j] = _scale_shift(mean[j], var[j], weight[j], bias[j], eps)
    _apply_rows(a, scale, shift, act, slope, residual)
