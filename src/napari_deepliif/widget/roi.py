"""Areas to score: Shapes ROIs and the field of view as pixel polygons and rectangles (no Qt).

Pixel coordinates are ``(x, y)`` with pixel centres at integers (napari's data coordinates of
an image layer, and the engine's polygon convention); a rectangle is ``(x, y, width,
height)`` in whole pixels.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from napari_deepliif.errors import DeepLIIFError
from napari_deepliif.widget import strings

log = logging.getLogger(__name__)

#: Shape types that are read as ROI polygons.
ROI_SHAPE_TYPES = ("rectangle", "polygon")


def downsample_factors(image_layer: Any, level: int) -> np.ndarray:
    """(y, x) downsample factor of pyramid ``level`` of an image layer (1 if not multiscale)."""
    if not image_layer.multiscale or level == 0:
        return np.ones(2)
    full, part = image_layer.data[0].shape, image_layer.data[level].shape
    rgb = 1 if image_layer.rgb else 0
    return np.array([full[-2 - rgb] / part[-2 - rgb], full[-1 - rgb] / part[-1 - rgb]], float)


def world_to_pixels(image_layer: Any, world_yx: np.ndarray, level: int = 0) -> np.ndarray:
    """World points (n, 2) ``(y, x)`` -> ``(x, y)`` pixels of ``level`` of ``image_layer``."""
    data = np.array([image_layer.world_to_data(p)[-2:] for p in world_yx], float).reshape(-1, 2)
    return (data / downsample_factors(image_layer, level))[:, ::-1]


def shapes_to_polygons(shapes_layer: Any, image_layer: Any, level: int = 0) -> list[np.ndarray]:
    """The rectangles and polygons of a Shapes layer as ``(x, y)`` pixel polygons of the image.

    The shapes' data coordinates go through the Shapes layer's transform to the world and
    through the image layer's inverse transform to its pixels, so both layers' scale,
    translate (and any affine) are honoured. Other shape types (ellipses, lines, paths) are
    skipped (logged).
    """
    polygons = []
    for vertices, kind in zip(shapes_layer.data, shapes_layer.shape_type, strict=True):
        if kind not in ROI_SHAPE_TYPES:
            log.info("ROI layer %r: a %s is not an area and is skipped", shapes_layer.name, kind)
            continue
        world = np.array([shapes_layer.data_to_world(v)[-2:] for v in np.asarray(vertices)], float)
        polygons.append(world_to_pixels(image_layer, world, level))
    return polygons


def bounding_rect(polygons: Sequence[np.ndarray], width: int, height: int) -> tuple[int, int, int, int]:
    """Smallest pixel rectangle ``(x, y, w, h)`` holding every pixel the polygons touch,
    clipped to a ``width`` x ``height`` image.

    Raises
    ------
    DeepLIIFError
        When the polygons lie outside the image.
    """
    points = np.concatenate([np.asarray(p, float).reshape(-1, 2) for p in polygons])
    x0, y0 = np.floor(points.min(axis=0) + 0.5).astype(int)
    x1, y1 = np.ceil(points.max(axis=0) + 0.5).astype(int)
    x0, y0 = max(x0, 0), max(y0, 0)
    x1, y1 = min(x1, width), min(y1, height)
    if x1 <= x0 or y1 <= y0:
        raise DeepLIIFError(strings.ROI_OUTSIDE)
    return int(x0), int(y0), int(x1 - x0), int(y1 - y0)


def in_region(polygon: np.ndarray, rect: tuple[int, int, int, int]) -> np.ndarray:
    """A pixel polygon relative to ``rect``'s origin, clipped to the rectangle's extent
    ``[-0.5, w - 0.5] x [-0.5, h - 0.5]`` (exact for rectangles)."""
    x, y, w, h = rect
    local = np.asarray(polygon, float) - (x, y)
    return np.clip(local, -0.5, (w - 0.5, h - 0.5))


def union_mask(polygons: Sequence[np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    """(H, W) bool mask of the pixels whose centres lie in any of the ``(x, y)`` polygons."""
    from skimage.draw import polygon2mask

    mask = np.zeros(shape, bool)
    for poly in polygons:
        mask |= polygon2mask(shape, np.asarray(poly)[:, ::-1])
    return mask


def field_of_view(center_yx: Sequence[float], zoom: float, canvas_hw: Sequence[int]) -> np.ndarray:
    """World corners ``[[y0, x0], [y1, x1]]`` of what the canvas shows.

    Parameters
    ----------
    center_yx : (float, float)
        ``viewer.camera.center`` (last two axes).
    zoom : float
        ``viewer.camera.zoom``: screen pixels per world unit.
    canvas_hw : (int, int)
        Canvas height and width in screen pixels (``viewer.canvas.size``).
    """
    center = np.asarray(center_yx, float)[-2:]
    half = np.asarray(canvas_hw, float)[-2:] / (2.0 * zoom)
    return np.array([center - half, center + half])


def view_rect(viewer: Any, image_layer: Any, width: int, height: int, level: int = 0) -> tuple[int, int, int, int]:
    """The pixel rectangle of ``image_layer`` (level ``level``) that the viewer now shows."""
    camera = viewer_camera(viewer)
    (y0, x0), (y1, x1) = field_of_view(camera.center, camera.zoom, viewer.canvas.size)
    corners = np.array([[y0, x0], [y0, x1], [y1, x0], [y1, x1]])
    return bounding_rect([world_to_pixels(image_layer, corners, level)], width, height)


#: Metadata keys read as the pixel size in µm/px when the layer's units are not microns.
MPP_METADATA_KEYS = ("mpp", "microns_per_pixel", "pixel_size_um")


def pixel_size_um(layer: Any) -> float | None:
    """The layer's pixel size in µm/px: its x scale when its units are microns, else a
    metadata value (``mpp``, ``microns_per_pixel``, ``pixel_size_um``), else None."""
    units = getattr(layer, "units", None)
    if units is not None and str(units[-1]) in ("micrometer", "µm", "um", "micron"):
        return float(layer.scale[-1])
    for key in MPP_METADATA_KEYS:
        value = layer.metadata.get(key)
        if isinstance(value, (int, float)) and value > 0:
            return float(value)
    return None


def viewer_camera(viewer: Any) -> Any:
    """The viewer's camera: ``viewer.scene.camera`` from napari 0.9, ``viewer.camera`` before."""
    scene = getattr(viewer, "scene", None)
    return scene.camera if scene is not None and hasattr(scene, "camera") else viewer.camera
