"""Errors as RFC 9457 problem details (``application/problem+json``), never a bare 500.

Every error the server sends has ``type``, ``title``, ``status`` and a ``detail`` that says
what went wrong and what to do about it.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Mapping

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from napari_deepliif.errors import Cancelled, DeepLIIFError, InputImageError, ModelError

log = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"

#: Titles by status (RFC 9110 reason phrases; 409 is what a cancelled request gets).
TITLES: dict[int, str] = {
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Cancelled",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class ProblemDetails(BaseModel):
    """The body of every error response."""

    type: str = Field("about:blank", description="'about:blank': the status and title say what kind of error it is")
    title: str = Field(description="short summary of the kind of error (the status's reason phrase)")
    status: int = Field(description="the HTTP status code")
    detail: str = Field(description="what went wrong with this request, and what to do")


class Problem(HTTPException):
    """An error answered as problem JSON; raise it anywhere in a request.

    It is a Starlette ``HTTPException`` so that FastAPI passes it through body parsing
    unchanged (a size limit hit while a multipart form is read stays a 413).
    """

    def __init__(self, status: int, detail: str, headers: Mapping[str, str] | None = None, *,
                 problem_type: str = "about:blank"):
        super().__init__(status_code=status, detail=detail, headers=dict(headers or {}))
        self.problem_type = problem_type


def problem_body(status: int, detail: str, problem_type: str = "about:blank") -> dict:
    """The problem JSON object for ``status``."""
    return ProblemDetails(type=problem_type, title=TITLES.get(status, "Error"), status=status,
                          detail=detail).model_dump()


def problem_response(status: int, detail: str, headers: Mapping[str, str] | None = None,
                     problem_type: str = "about:blank") -> JSONResponse:
    """A problem JSON response."""
    return JSONResponse(problem_body(status, detail, problem_type), status_code=status, headers=dict(headers or {}),
                        media_type=PROBLEM_MEDIA_TYPE)


def problem_for(exc: BaseException) -> Problem:
    """The problem an exception from the engine (or anything else) is answered with."""
    if isinstance(exc, Problem):
        return exc
    if isinstance(exc, Cancelled):
        return Problem(409, f"cancelled: {exc}" if str(exc) else "cancelled at the client's request")
    if isinstance(exc, InputImageError):
        return Problem(422, str(exc))
    if isinstance(exc, ModelError):
        # the server's own model failed (start-up loads its nets, so rarely): not the client's fault
        return Problem(500, f"the server's model cannot be used: {exc}. Restart the server with a working model")
    if isinstance(exc, DeepLIIFError):
        # the engine's other errors are about the request's settings (resolution, region)
        return Problem(422, str(exc))
    return Problem(500, internal_detail(exc))


def internal_detail(exc: BaseException) -> str:
    """A one-paragraph traceback summary for a 500: the error and where it was raised."""
    frames = traceback.extract_tb(exc.__traceback__)[-3:]
    where = "; ".join(f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno} in {f.name}" for f in frames)
    return (f"internal error {type(exc).__name__}: {exc} (at {where or 'unknown'}). "
            "This is a bug in napari-deepliif: please report it with the server's log")


def install_handlers(app: FastAPI) -> None:
    """Answer HTTP errors, invalid parameters and unexpected exceptions with problem JSON."""

    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if not isinstance(exc, Problem) and exc.status_code == 404:
            detail = f"no endpoint at {request.url.path}; see /openapi.json for the API"
        elif not isinstance(exc, Problem) and exc.status_code == 405:
            detail = f"{request.method} is not allowed on {request.url.path}; see /openapi.json"
        return problem_response(exc.status_code, detail, exc.headers, getattr(exc, "problem_type", "about:blank"))

    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        reasons = []
        for error in exc.errors():
            where = ".".join(str(part) for part in error.get("loc", ()) if part not in ("constrained-int",))
            reasons.append(f"{where}: {error.get('msg', 'invalid')}")
        return problem_response(422, "invalid request: " + "; ".join(reasons))

    async def engine_error(request: Request, exc: DeepLIIFError) -> JSONResponse:
        problem = problem_for(exc)
        log.info("%s %s: %s", request.method, request.url.path, problem.detail)
        return problem_response(problem.status_code, problem.detail, problem.headers, problem.problem_type)

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error in %s %s", request.method, request.url.path)
        problem = problem_for(exc)
        return problem_response(problem.status_code, problem.detail, problem.headers, problem.problem_type)

    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(DeepLIIFError, engine_error)
    app.add_exception_handler(Exception, unexpected)
