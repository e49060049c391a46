"""Magnification, pixel size and tile size, as the reference relates them."""

from __future__ import annotations

from napari_deepliif.constants import (
    DEFAULT_RESOLUTION,
    MICRONS_PER_PIXEL_BY_RESOLUTION,
    TILE_SIZE_BY_RESOLUTION,
)
from napari_deepliif.errors import DeepLIIFError

RESOLUTIONS = tuple(TILE_SIZE_BY_RESOLUTION)


def resolution_from_mpp(mpp: float) -> str:
    """The magnification whose nominal pixel size (0.25/0.5/1.0 µm/px) is nearest ``mpp``,
    compared on a log scale (0.35 µm/px is nearer 40x than 20x)."""
    import math

    if not mpp or mpp <= 0 or not math.isfinite(mpp):
        raise DeepLIIFError(f"pixel size must be a positive number of µm/px, got {mpp!r}")
    return min(MICRONS_PER_PIXEL_BY_RESOLUTION, key=lambda r: abs(math.log(mpp / MICRONS_PER_PIXEL_BY_RESOLUTION[r])))


def resolve_resolution(resolution: str | None = None, mpp: float | None = None) -> str:
    """``10x``/``20x``/``40x`` from an explicit resolution, else from a pixel size, else 40x."""
    if resolution is not None:
        key = str(resolution).lower().strip()
        if key not in TILE_SIZE_BY_RESOLUTION:
            raise DeepLIIFError(f"unknown resolution '{resolution}' (choose one of {', '.join(RESOLUTIONS)})")
        return key
    if mpp is not None:
        return resolution_from_mpp(mpp)
    return DEFAULT_RESOLUTION


def tile_size_for(resolution: str) -> int:
    """Tile edge in pixels for a magnification (512 at 40x, 256 at 20x, 128 at 10x)."""
    return TILE_SIZE_BY_RESOLUTION[resolve_resolution(resolution)]
