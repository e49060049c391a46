"""The FastAPI application: health, score, cancel, and the reference platform's endpoints.

Routes only translate HTTP into engine calls: they check the request, queue the work (see
:mod:`.jobs`) and turn the engine's result into JSON with :mod:`napari_deepliif.exports`.
"""

from __future__ import annotations

import json
import threading
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from fastapi.security import HTTPBearer

from .. import __version__
from ..constants import DEFAULT_RESOLUTION, DEFAULT_SEG_THRESH
from .images import MEDIA_TYPES, decode, png_base64, read_header
from .jobs import JobQueue
from .problems import PROBLEM_MEDIA_TYPE, ProblemDetails, install_handlers
from .schemas import (
    CancelResponse,
    Health,
    MarkerQuery,
    ModalitiesQuery,
    OriginQuery,
    RequestIdQuery,
    ResolutionQuery,
    ScoreResponse,
    SegThreshQuery,
    SizeThreshQuery,
    UpperQuery,
)
from .security import DEFAULT_HOST, Guard, HostCheck, Limits

#: Media types each POST endpoint takes (anything else: 415, before the body is read).
ACCEPTED_TYPES: dict[str, tuple[str, ...]] = {
    "/api/score": tuple(MEDIA_TYPES.values()),
    "/api/infer": ("multipart/form-data",),
    "/api/postprocess": ("multipart/form-data",),
}

#: Error responses of every authenticated endpoint, for the OpenAPI document.
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ProblemDetails, "description": text}
    for status, text in {
        400: "malformed request, or a Host header that does not name this server",
        401: "missing or wrong token",
        409: "cancelled (POST /api/cancel), or a request_id already in use",
        413: "request body larger than the server's limit",
        415: "wrong Content-Type",
        422: "bad image or parameters (unreadable or truncated image, grayscale, 16-bit, too many pixels)",
        429: "queue full: retry after the Retry-After header's seconds",
        500: "a fault of the server: its model cannot be read, or an internal error (with a traceback summary)",
        503: "the server is shutting down",
    }.items()
}
#: Documents the token in the OpenAPI document; :class:`.security.Guard` enforces it, before
#: any body is read.
bearer = HTTPBearer(auto_error=False, description="the token `napari-deepliif token` prints")


@dataclass
class ServerState:
    """What the routes share: the engine, its job queue and the limits."""

    engine: Any
    limits: Limits
    jobs: JobQueue

    @property
    def device(self) -> str:
        """The engine's device (the stain engine runs on the CPU)."""
        return str(getattr(self.engine, "device", "cpu"))


def state(request: Request) -> ServerState:
    """The server state of the application that received ``request``."""
    return request.app.state.deepliif


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
    origin_x: OriginQuery = 0,
    origin_y: OriginQuery = 0,
    modalities: ModalitiesQuery = False,
    request_id: RequestIdQuery = None,
) -> Response:
    """Score the image in the body: a GeoJSON FeatureCollection of the counted cells (QuPath
    detections, coordinates in pixels of the image plus the origin) with the score."""
    server = state(request)
    media_type = request.headers["content-type"].split(";")[0].strip().lower()
    data = await request.body()
    fmt = next(f for f, t in MEDIA_TYPES.items() if t == media_type)
    header = read_header(data, "request body", server.limits.max_pixels, formats=(fmt,))
    settings = {"seg_thresh": seg_thresh, "size_thresh": size_thresh,
                "size_thresh_upper": size_thresh_upper, "marker_thresh": marker_thresh}

    def work(cancel: threading.Event) -> bytes:
        from ..exports import cells_geojson, score_record

        image = decode(data, header, "request body")
        result = server.engine.score(image, resolution=resolution, outputs="all" if modalities else "score",
                                     cancel=cancel, **settings)
        body = cells_geojson(result.post, origin=(origin_x, origin_y))
        body["score"] = score_record(result.post, {})
        body["provenance"] = dict(result.provenance)
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


def create_app(engine: Any, *, token: str, limits: Limits | None = None, host: str = DEFAULT_HOST) -> FastAPI:
    """The ASGI application serving ``engine``.

    Parameters
    ----------
    engine : Engine or StainEngine
        From :func:`napari_deepliif.engine.load_engine`; used by one request at a time.
    token : str
        The bearer token every request but health must send.
    limits : Limits, optional
        Request size, pixel and queue limits (defaults: :class:`Limits`).
    host : str
        The address the server listens on: requests must name it, or a loopback name, in
        their Host header (see :class:`.security.HostCheck`).
    """
    from .reference_api import router as reference_router

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
    install_handlers(app)
    app.add_middleware(Guard, token=token, limits=limits, accepted_types=ACCEPTED_TYPES, hosts=HostCheck(host))

    def openapi() -> dict:
        if app.openapi_schema is None:
            app.openapi_schema = error_content(get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes))
        return app.openapi_schema

    app.openapi = openapi
    return app
