"""The answer of the score endpoints for a ``points`` model: QuPath point detections and the
score record (the features of ``points.geojson``, see :mod:`napari_deepliif.io.point_exports`)."""

from __future__ import annotations

from typing import Any

from napari_deepliif.io.point_exports import points_geojson


def points_answer(result: Any, *, image: str | None, level: int = 0, downsample: float = 1.0,
                  mpp: float | None = None, level_origin: tuple[float, float] = (0, 0)) -> dict:
    """A FeatureCollection of ``result``'s points with its ``score`` record.

    Parameters
    ----------
    result : PointsResult
        From :func:`napari_deepliif.regions.points.detect_region` (pixels of the level read).
    image, level, downsample, mpp, level_origin
        As :meth:`napari_deepliif.regions.points.PointsResult.record`: ``level_origin`` is
        where the pixels read lie in the level, ``downsample`` that level's to full resolution.

    Returns
    -------
    dict
        ``features``: one ``Point`` detection per point (full-resolution pixels, QuPath's
        convention), ``classification`` the model's class name; ``score``: the record.
    """
    answer = points_geojson(result.detections, placement=result.placement(level_origin, downsample))
    answer["score"] = result.record(image=image, level=level, downsample=downsample, mpp=mpp,
                                    level_origin=level_origin)
    return answer
