"""Choose a torch device and numeric precision."""

from __future__ import annotations

import contextlib
import functools
import logging
from typing import Iterator

from napari_deepliif.errors import DeepLIIFError

log = logging.getLogger(__name__)

DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("fp32", "fast")

#: Tiles per batch by device kind when the caller gives none. On CPU a larger batch gains
#: nothing (the convolutions already fill both cores) and costs ~0.3 GB per tile.
DEFAULT_BATCH_SIZE = {"cpu": 1, "cuda": 8, "mps": 4}


def run_settings(device: str, precision: str, batch_size: int | None) -> tuple[str, int]:
    """The device (resolved, see :func:`resolve_device`) and batch size (default by device
    kind) a model runs with, after checking ``precision``.

    Raises
    ------
    DeepLIIFError
        For an unknown precision or device, or a batch size below 1.
    """
    if precision not in PRECISIONS:
        raise DeepLIIFError(f"unknown precision '{precision}' (choose fp32 or fast)")
    dev = resolve_device(device)
    size = batch_size or DEFAULT_BATCH_SIZE[dev.split(":")[0]]
    if size < 1:
        raise DeepLIIFError(f"batch size must be at least 1, got {size}")
    return dev, size


def resolve_device(device: str = "auto") -> str:
    """Turn ``auto`` into ``cuda``, else ``mps``, else ``cpu``; check an explicit choice.

    Raises
    ------
    DeepLIIFError
        When the requested device is not available on this machine.
    """
    import torch

    if device == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    kind = device.split(":")[0]
    if kind == "cuda" and not torch.cuda.is_available():
        raise DeepLIIFError(f"device '{device}' was asked for but this PyTorch has no CUDA GPU; use --device cpu or auto")
    if kind == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise DeepLIIFError(f"device '{device}' was asked for but Apple MPS is not available; use --device cpu or auto")
    if kind not in ("cpu", "cuda", "mps"):
        raise DeepLIIFError(f"unknown device '{device}' (choose one of {', '.join(DEVICES)}, or cuda:N)")
    return device


def cpu_supports_bf16() -> bool:
    """True when oneDNN reports native bf16 kernels (AVX512-BF16 or AMX) on this CPU."""
    import torch

    probe = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    return bool(probe and probe())


@functools.cache
def cpu_has_amx() -> bool:
    """True when this CPU has AMX tiles, whose bf16 convolutions outrun fp32 Winograd."""
    import torch

    probe = getattr(torch.cpu, "_is_amx_tile_supported", None)
    return bool(probe and probe())


def fast_dtype(device: str) -> "str | None":
    """The reduced precision ``fast`` uses on ``device`` (``bfloat16``/``float16``), or None
    when the device has no fast reduced-precision kernels (then ``fast`` runs fp32)."""
    kind = device.split(":")[0]
    if kind == "cuda" or kind == "mps":
        return "float16"
    return "bfloat16" if cpu_supports_bf16() else None


@contextlib.contextmanager
def precision_context(device: str, precision: str) -> Iterator[None]:
    """Autocast for ``fast`` precision; nothing for ``fp32`` (the conformant default)."""
    import torch

    if precision not in PRECISIONS:
        raise DeepLIIFError(f"unknown precision '{precision}' (choose fp32 or fast)")
    dtype_name = fast_dtype(device) if precision == "fast" else None
    if dtype_name is None:
        if precision == "fast":
            log.warning("precision 'fast' has no reduced-precision kernels on %s; running fp32", device)
        yield
        return
    with torch.autocast(device_type=device.split(":")[0], dtype=getattr(torch, dtype_name)):
        yield
