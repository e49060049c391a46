"""The Points layer of a ``points`` model's result, and napari Points as ground truth (no Qt).

:func:`show_points` adds the layer, or updates it in place after a re-selection
(:meth:`napari_deepliif.regions.points.PointsResult.rescore`): points of positive classes in
the Seg map's red, others in its blue, with ``class`` and ``confidence`` features. Placement
follows :func:`napari_deepliif.widget.layers.placement`. :func:`points_from_layer` reads a
Points layer a user annotated (a ``class`` feature per point) as
:class:`~napari_deepliif.cells.points.Points` for :func:`napari_deepliif.cells.evaluation.evaluate`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from napari_deepliif.cells.points import Points
from napari_deepliif.io.ground_truth import class_is_positive
from napari_deepliif.widget.layers import (
    NEGATIVE_HEX,
    PLUGIN_KEY,
    POSITIVE_HEX,
    find_layer,
    placement,
)

POINTS = "points"
POINTS_LAYER_NAME = "DeepLIIF points"
#: Marker size in data pixels.
POINT_SIZE = 8


def show_points(viewer: Any, result: Any, *, scale: Sequence[float], translate: Sequence[float],
                origin_xy: Sequence[int] = (0, 0), downsample: float = 1.0) -> Any:
    """Show the points of ``result`` (a ``PointsResult``) in ``viewer``, updating the layer
    this plugin made before.

    Parameters
    ----------
    viewer : napari.Viewer
    result : PointsResult
        Its :attr:`detections` are drawn (window pixels, placed at the window's origin).
    scale, translate : sequence of float
        The source image layer's ``scale`` and ``translate``.
    origin_xy : (int, int)
        ``(x, y)`` of the pixels read in the source layer's level (e.g. a pyramid level's region).
    downsample : float
        Downsample of the level read relative to the layer's level 0.

    Returns
    -------
    napari.layers.Points
    """
    found = result.detections
    data = found.xy[:, ::-1] if len(found.xy) else np.zeros((0, 2))
    window = (origin_xy[0] + result.origin[0], origin_xy[1] + result.origin[1])
    layer_scale, layer_translate = placement(scale, translate, window, downsample)
    colours = np.where(found.positive, POSITIVE_HEX, NEGATIVE_HEX).tolist()
    features = {"class": found.class_names, "confidence": found.confidence}
    metadata = {PLUGIN_KEY: {"role": POINTS, "scoring": result.scoring}}
    layer = find_layer(viewer, POINTS)
    if layer is None:
        return viewer.add_points(data, name=POINTS_LAYER_NAME, scale=layer_scale, translate=layer_translate,
                                 features=features, face_color=colours or "white", border_width=0,
                                 size=POINT_SIZE, metadata=metadata)
    layer.data = data
    layer.features = features
    if colours:
        layer.face_color = colours
    layer.scale, layer.translate = layer_scale, layer_translate
    layer.metadata = metadata
    return layer


def points_from_layer(layer: Any, class_feature: str = "class") -> Points:
    """The points of a napari Points layer as :class:`Points` (data pixels, ``(x, y)``).

    Parameters
    ----------
    layer : napari.layers.Points
        2-D (or more: the last two axes are row and column) with a class per point in the
        feature ``class_feature`` (names as :func:`~napari_deepliif.io.ground_truth.class_is_positive`
        reads them; ``Uncounted`` points are left out).

    Raises
    ------
    napari_deepliif.errors.DeepLIIFError
        For a missing feature or an unknown class name.
    """
    from napari_deepliif.errors import DeepLIIFError

    columns = list(layer.features.columns)
    if class_feature not in columns:
        raise DeepLIIFError(f"the Points layer '{layer.name}' has no '{class_feature}' feature (it has: "
                            f"{', '.join(columns) or 'none'}); give each point a class")
    flags = [class_is_positive(name) for name in layer.features[class_feature].tolist()]
    keep = np.array([f is not None for f in flags], dtype=bool)
    rows_cols = np.asarray(layer.data, dtype=np.float64)[:, -2:]
    return Points(rows_cols[keep][:, ::-1], np.array([f for f in flags if f is not None], dtype=bool))
