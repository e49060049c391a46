"""``POST /api/regions/score``: score a region of an image file this machine can open.

QuPath (or any client on the same machine) names the file, the region in full-resolution
pixels and an optional ROI (a ``points`` model: answered with the points in it as QuPath
``Point`` detections); the server reads the pixels with its own slide readers and scores
them with the region core, on the level's own tile grid and with the whole level's
statistics and tissue mask, so the cells equal what ``score`` and ``batch`` give for the same
pixels. The answer is the cells (full-resolution pixels) and the score record.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from napari_deepliif.cells.find import MAX_SEG_THRESH
from napari_deepliif.cells.measure import (
    DEFAULT_EXPANSION_UM,
    DEFAULT_MEMBRANE_UM,
    DEFAULT_POSITIVE_OD,
)
from napari_deepliif.cells.postprocess import Settings
from napari_deepliif.constants import DEFAULT_SEG_THRESH
from napari_deepliif.engine.engines import EngineBase
from napari_deepliif.engine.points import PointsEngine
from napari_deepliif.errors import InputImageError
from napari_deepliif.io.geojson import cells_geojson
from napari_deepliif.server.points import points_answer
from napari_deepliif.server.problems import Problem
from napari_deepliif.server.schemas import (
    BINS_OD_HELP,
    COMPARTMENT_HELP,
    COMPLETENESS_HELP,
    CONFIDENCE_HELP,
    DAB_THRESHOLD_TEXT,
    EXPANSION_HELP,
    MEMBRANE_HELP,
    MIN_DISTANCE_HELP,
    OD,
    POSITIVE_OD_HELP,
    Compartment,
    Expansion,
    Fraction,
    RingWidth,
    WholeNumber,
)
from napari_deepliif.server.state import ERRORS, bearer, state
from napari_deepliif.slides.readers import SlideMetadataError
from napari_deepliif.slides.region import RegionTooLarge, score_file_region

router = APIRouter(prefix="/api")

#: ``type`` of the problem answered when the server cannot open the file named.
NOT_READABLE = "https://napari-deepliif.invalid/problems/image-not-readable"


class RegionRequest(BaseModel):
    """A region of an image file to score (coordinates in full-resolution pixels)."""

    model_config = ConfigDict(extra="forbid")

    image: str = Field(description="absolute path of the image file (the server reads it)")
    region: list[WholeNumber] | None = Field(None, min_length=4, max_length=4,
                                             description="[x, y, width, height]; absent: the whole image")
    roi: dict[str, Any] | None = Field(None, description="GeoJSON Polygon or MultiPolygon: only cells whose centroid (points: point) lies in it count")
    resolution: Literal["40x", "20x", "10x"] | None = Field(None, description="absent: from the file's pixel size")
    mpp: float | None = Field(None, gt=0, description="full-resolution pixel size (µm/px) when the file lacks it")
    seg_thresh: Annotated[int, Field(ge=0, le=MAX_SEG_THRESH)] = DEFAULT_SEG_THRESH
    size_thresh: WholeNumber | Literal["default"] = "default"
    size_thresh_upper: Annotated[int, Field(ge=1)] | Literal["default"] | None = None
    marker_thresh: Annotated[int, Field(ge=0, le=255)] | Literal["default"] | None = None
    dab_threshold: OD | None = Field(None, description=DAB_THRESHOLD_TEXT)
    compartment: Compartment = Field("class", description=COMPARTMENT_HELP)
    positive_od: OD = Field(DEFAULT_POSITIVE_OD, description=POSITIVE_OD_HELP)
    bins_od: list[OD] | None = Field(None, min_length=2, max_length=2, description=BINS_OD_HELP)
    min_completeness: Fraction | None = Field(None, description=COMPLETENESS_HELP)
    expansion_um: Expansion = Field(DEFAULT_EXPANSION_UM, description=EXPANSION_HELP)
    membrane_um: RingWidth = Field(DEFAULT_MEMBRANE_UM, description=MEMBRANE_HELP)
    confidence: Fraction | None = Field(None, description=CONFIDENCE_HELP)
    min_distance_um: Annotated[float, Field(ge=0, le=1000)] | None = Field(None, description=MIN_DISTANCE_HELP)
    request_id: str | None = Field(None, min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$")


@router.post("/regions/score", tags=["score"], summary="Cells and IHC score of a region of an image file",
             responses=ERRORS, dependencies=[Depends(bearer)])
async def score_region_of_a_file(request: Request, body: RegionRequest) -> Response:
    """Score ``region`` of the file ``image`` (see the module docstring); 422 with the problem
    type ``.../image-not-readable`` when the file cannot be opened here (upload it to
    ``/api/score`` instead)."""
    server = state(request)
    engine = server.engine_with(dab_threshold=body.dab_threshold)

    def work(cancel: threading.Event) -> bytes:
        return json.dumps(_score(server, engine, body, cancel), separators=(",", ":"), allow_nan=False).encode()

    return Response(await server.jobs.run(work, body.request_id), media_type="application/json")


def _score(server: Any, engine: EngineBase, body: RegionRequest, cancel: threading.Event) -> dict:
    path = Path(body.image)
    if not (path.is_absolute() and path.is_file()):
        raise Problem(422, f"{path} is not an image file this server can see (an absolute path of an existing "
                           "file is needed): upload the pixels to /api/score instead", problem_type=NOT_READABLE)
    settings = Settings(seg_thresh=body.seg_thresh, size_thresh=body.size_thresh,
                        size_thresh_upper=body.size_thresh_upper, marker_thresh=body.marker_thresh,
                        compartment=body.compartment, positive_od=body.positive_od,
                        bins_od=None if body.bins_od is None else tuple(body.bins_od),
                        min_completeness=body.min_completeness, expansion_um=body.expansion_um,
                        membrane_um=body.membrane_um)
    try:
        settings.checked(has_marker=True)
    except InputImageError as exc:
        raise Problem(422, str(exc)) from exc
    try:
        result, choice = score_file_region(engine, path, region=body.region, rois=_polygons(body.roi),
                                           resolution=body.resolution, mpp=body.mpp, settings=settings,
                                           max_pixels=server.limits.max_pixels, threshold=body.confidence,
                                           min_distance_um=body.min_distance_um, cancel=cancel)
    except RegionTooLarge as exc:
        raise Problem(422, str(exc)) from exc
    except (InputImageError, SlideMetadataError) as exc:
        raise Problem(422, f"cannot read {path} here: {exc}", problem_type=NOT_READABLE) from exc
    if isinstance(engine, PointsEngine):
        return points_answer(result, image=str(path), level=choice.level, downsample=choice.downsample,
                             mpp=choice.mpp)
    answer = cells_geojson(result.post, origin=result.origin, downsample=choice.downsample, classification="object")
    answer["score"] = result.record(image=str(path), level=choice.level, downsample=choice.downsample, mpp=choice.mpp)
    return answer


def _polygons(roi: dict | None) -> list[tuple[np.ndarray, list[np.ndarray]]] | None:
    """A GeoJSON Polygon or MultiPolygon as ``(exterior, holes)`` vertex arrays."""
    if roi is None:
        return None
    kind, coordinates = roi.get("type"), roi.get("coordinates")
    polygons = [coordinates] if kind == "Polygon" else coordinates if kind == "MultiPolygon" else None
    if not polygons:
        raise Problem(422, f"roi must be a GeoJSON Polygon or MultiPolygon, got {kind!r}")
    try:
        return [(np.asarray(p[0], float).reshape(-1, 2), [np.asarray(h, float).reshape(-1, 2) for h in p[1:]])
                for p in polygons]
    except (ValueError, TypeError, IndexError) as exc:
        raise Problem(422, f"roi coordinates are not [[x, y], ...] rings: {exc}") from exc
