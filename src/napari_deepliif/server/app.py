"""The FastAPI application: health, score, cancel, and the reference platform's endpoints.

Routes only translate HTTP into engine calls: they check the request, queue the work (see
:mod:`.jobs`) and turn the engine's result into JSON with :mod:`napari_deepliif.io.exports`.
"""

from __future__ import annotations

import json
import threading
from contextlib import asynccontextmanager

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response

from napari_deepliif import __version__
from napari_deepliif.cells.measure import (
    DEFAULT_EXPANSION_UM,
    DEFAULT_MEMBRANE_UM,
    DEFAULT_POSITIVE_OD,
)
from napari_deepliif.cells.postprocess import Settings
from napari_deepliif.constants import DEFAULT_RESOLUTION, DEFAULT_SEG_THRESH
from napari_deepliif.engine.engines import EngineBase
from napari_deepliif.engine.points import PointsEngine
from napari_deepliif.regions.points import detect_region
from napari_deepliif.regions.score import score_region
from napari_deepliif.server.images import MEDIA_TYPES, decode, png_base64, read_header
from napari_deepliif.server.jobs import JobQueue
from napari_deepliif.server.points import points_answer
from napari_deepliif.server.problems import PROBLEM_MEDIA_TYPE, install_handlers
from napari_deepliif.server.schemas import (
    BinsOdQuery,
    CancelResponse,
    CompartmentQuery,
    CompletenessQuery,
    ConfidenceQuery,
    DabThresholdQuery,
    DownsampleQuery,
    ExpansionQuery,
    Health,
    MarkerQuery,
    MembraneQuery,
    MinDistanceQuery,
    ModalitiesQuery,
    OriginQuery,
    PositiveOdQuery,
    RequestIdQuery,
    ResolutionQuery,
    ScoreResponse,
    SegThreshQuery,
    SizeThreshQuery,
    UpperQuery,
)
from napari_deepliif.server.defaults import DEFAULT_HOST
from napari_deepliif.server.security import Guard, HostCheck, Limits
from napari_deepliif.server.state import ERRORS, ServerState, bearer, state
from napari_deepliif.slides.tissue import levels_tissue

#: Media types each POST endpoint takes (anything else: 415, before the body is read).
ACCEPTED_TYPES: dict[str, tuple[str, ...]] = {
    "/api/score": tuple(MEDIA_TYPES.values()),
    "/api/infer": ("multipart/form-data",),
    "/api/postprocess": ("multipart/form-data",),
    "/api/regions/score": ("application/json",),
}

router = APIRouter(prefix="/api")


@router.get("/health", response_model=Health, tags=["server"], summary="Server status (no token needed)")
async def health(request: Request) -> dict:
    """Version, engine, model, device, limits, and whether a request is running."""
    server = state(request)
    return {"status": "ok", "version": __version__, "engine": server.engine.name,
            "model": server.engine.model_name, "model_hash": server.engine.model_hash,
            "device": server.device, "limits": vars(server.limits), "busy": server.jobs.busy}


@router.post(
    "/score", tags=["score"], summary="Cells and IHC score of one image",
    response_model=ScoreResponse, responses=ERRORS, dependencies=[Depends(bearer)],
    openapi_extra={"requestBody": {"required": True, "description": "one 8-bit RGB(A) PNG or TIFF image",
                                   "content": {t: {"schema": {"type": "string", "format": "binary"}}
                                               for t in MEDIA_TYPES.values()}}},
)
async def score(
    request: Request,
    resolution: ResolutionQuery = DEFAULT_RESOLUTION,
    seg_thresh: SegThreshQuery = DEFAULT_SEG_THRESH,
    size_thresh: SizeThreshQuery = "default",
    size_thresh_upper: UpperQuery = None,
    marker_thresh: MarkerQuery = None,
    dab_threshold: DabThresholdQuery = None,
    compartment: CompartmentQuery = "class",
    positive_od: PositiveOdQuery = DEFAULT_POSITIVE_OD,
    bins_od: BinsOdQuery = None,
    min_completeness: CompletenessQuery = None,
    expansion_um: ExpansionQuery = DEFAULT_EXPANSION_UM,
    membrane_um: MembraneQuery = DEFAULT_MEMBRANE_UM,
    confidence: ConfidenceQuery = None,
    min_distance_um: MinDistanceQuery = None,
    origin_x: OriginQuery = 0,
    origin_y: OriginQuery = 0,
    downsample: DownsampleQuery = 1.0,
    modalities: ModalitiesQuery = False,
    request_id: RequestIdQuery = None,
) -> Response:
    """Score the image in the body: a GeoJSON FeatureCollection of the counted cells (QuPath
    detections at ``(x + origin) * downsample``, full-resolution pixels when the image was
    read at ``downsample`` from there) with the score record; a ``points`` model answers its
    points as QuPath ``Point`` detections (``confidence`` and ``min_distance_um`` select them,
    the cell settings do not apply)."""
    server = state(request)
    engine = server.engine_with(dab_threshold=dab_threshold)
    media_type = request.headers["content-type"].split(";")[0].strip().lower()
    data = await request.body()
    fmt = next(f for f, t in MEDIA_TYPES.items() if t == media_type)
    grey = not engine.brightfield  # an engine of fluorescence images takes one channel
    header = read_header(data, "request body", server.limits.max_pixels, formats=(fmt,), grey=grey)
    settings = {"seg_thresh": seg_thresh, "size_thresh": size_thresh,
                "size_thresh_upper": size_thresh_upper, "marker_thresh": marker_thresh,
                "compartment": compartment, "positive_od": positive_od,
                "bins_od": None if bins_od is None else tuple(bins_od), "min_completeness": min_completeness,
                "expansion_um": expansion_um, "membrane_um": membrane_um}

    def work(cancel: threading.Event) -> bytes:
        from napari_deepliif.io.geojson import cells_geojson

        image = decode(data, header, "request body", grey=grey)
        # the tissue rule of score and batch, the upload being the whole image
        include = engine.tissue(lambda: levels_tissue([image], 0, resolution))
        if isinstance(engine, PointsEngine):
            found = detect_region(engine, image, resolution=resolution, threshold=confidence,
                                  min_distance_um=min_distance_um, include=include, cancel=cancel)
            answer = points_answer(found, image=None, downsample=downsample, level_origin=(origin_x, origin_y))
            return json.dumps(answer, separators=(",", ":"), allow_nan=False).encode()
        result = score_region(engine, image, resolution=resolution, settings=Settings(**settings),
                              outputs="all" if modalities else "score", include=include, cancel=cancel)
        body = cells_geojson(result.post, origin=(origin_x + result.origin[0], origin_y + result.origin[1]),
                             downsample=downsample)
        body["score"] = result.record(image=None, downsample=downsample, level_origin=(origin_x, origin_y))
        if modalities:
            body["images"] = {name: png_base64(array) for name, array in result.images.items()}
        return json.dumps(body, separators=(",", ":"), allow_nan=False).encode()

    return Response(await server.jobs.run(work, request_id, request.is_disconnected), media_type="application/json")


@router.post("/cancel", tags=["server"], summary="Cancel a queued or running request",
             response_model=CancelResponse, responses=ERRORS, dependencies=[Depends(bearer)])
async def cancel(request: Request, request_id: RequestIdQuery = None) -> dict:
    """Cancel the request with ``request_id`` (queued or running), or without it the running
    one; the cancelled request is answered 409."""
    return {"cancelled": state(request).jobs.cancel(request_id)}


def error_content(schema: dict) -> dict:
    """``schema`` with every 4xx/5xx response as ``application/problem+json`` Problem."""
    problem = {"$ref": "#/components/schemas/ProblemDetails"}
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            for status, response in operation.get("responses", {}).items():
                if str(status)[0] in "45":
                    response["content"] = {PROBLEM_MEDIA_TYPE: {"schema": problem}}
                    if str(status) == "429":
                        response["headers"] = {"Retry-After": {"description": "seconds to wait",
                                                               "schema": {"type": "integer"}}}
    components = schema.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    return schema


def create_app(engine: EngineBase, *, token: str, limits: Limits | None = None, host: str = DEFAULT_HOST) -> FastAPI:
    """The ASGI application serving ``engine``.

    Parameters
    ----------
    engine : Engine or StainEngine
        From :func:`napari_deepliif.engine.engines.load_engine`; used by one request at a time.
    token : str
        The bearer token every request but health must send.
    limits : Limits, optional
        Request size, pixel and queue limits (defaults: :class:`Limits`).
    host : str
        The address the server listens on: requests must name it, or a loopback name, in
        their Host header (see :class:`.security.HostCheck`).
    """
    from napari_deepliif.server.reference_api import router as reference_router
    from napari_deepliif.server.regions import router as regions_router

    limits = limits or Limits()
    jobs = JobQueue(limits.queue_size)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        jobs.stop()

    app = FastAPI(title="napari-deepliif local engine", version=__version__, lifespan=lifespan,
                  docs_url=None, redoc_url=None,
                  description="Score IHC images with DeepLIIF (or the classical stain engine) on this "
                              "machine. Every endpoint but /api/health needs `Authorization: Bearer <token>`.")
    app.state.deepliif = ServerState(engine, limits, jobs)
    app.include_router(router)
    app.include_router(reference_router)
    app.include_router(regions_router)
    install_handlers(app)
    app.add_middleware(Guard, token=token, limits=limits, accepted_types=ACCEPTED_TYPES, hosts=HostCheck(host))

    def openapi() -> dict:
        if app.openapi_schema is None:
            app.openapi_schema = error_content(get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes))
        return app.openapi_schema

    app.openapi = openapi
    return app
