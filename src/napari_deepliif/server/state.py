"""What every route module shares: the server state, the token scheme, the error responses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.security import HTTPBearer

from napari_deepliif.engine.engines import EngineBase
from napari_deepliif.errors import DeepLIIFError
from napari_deepliif.server.jobs import JobQueue
from napari_deepliif.server.problems import Problem, ProblemDetails
from napari_deepliif.server.security import Limits

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

    engine: EngineBase
    limits: Limits
    jobs: JobQueue

    @property
    def device(self) -> str:
        """The engine's device (the stain engine runs on the CPU)."""
        return str(getattr(self.engine, "device", "cpu"))

    def engine_with(self, **parameters: Any) -> EngineBase:
        """The served engine with a request's parameters (those not None): a copy sharing the
        loaded model, so requests never change one another's engine; 422 for a parameter the
        served engine does not have."""
        try:
            return self.engine.with_parameters(**{k: v for k, v in parameters.items() if v is not None})
        except DeepLIIFError as exc:
            raise Problem(422, str(exc)) from exc


def state(request: Request) -> ServerState:
    """The server state of the application that received ``request``."""
    return request.app.state.deepliif
