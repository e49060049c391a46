"""Who may use the server, and how much: Host check, token and request limits, enforced
before any route runs.

Every request must name this server in its ``Host`` header (a loopback name, or the address
it was told to listen on), so a web page that rebinds its own DNS name to 127.0.0.1 cannot
reach it. The token lives in ``<config dir>/server-token`` (mode 0600; the config dir is the
one the model index uses, ``$NAPARI_DEEPLIIF_CONFIG_DIR`` or the user config dir). Every
request except ``GET /api/health`` and the OpenAPI document must send
``Authorization: Bearer <token>`` (the scheme in any case).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import re
import secrets
import socket
import stat
from dataclasses import dataclass
from pathlib import Path

from napari_deepliif.atomic import write_bytes
from napari_deepliif.errors import DeepLIIFError
from napari_deepliif.server.defaults import DEFAULT_MAX_PIXELS, DEFAULT_MAX_REQUEST_MB, DEFAULT_QUEUE_SIZE
from napari_deepliif.server.problems import PROBLEM_MEDIA_TYPE, Problem, problem_body

log = logging.getLogger(__name__)

TOKEN_FILE = "server-token"
#: Shortest token the server accepts from the token file (a new one has 43 characters,
#: 256 random bits); a shorter, hand-written one may be guessed.
MIN_TOKEN_LENGTH = 32
#: Paths answered without a token: the health check and the API description.
PUBLIC_PATHS = frozenset({"/api/health", "/openapi.json"})

#: Addresses that mean "every interface": any IP literal may then name the server.
WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})
#: What may follow the host in a Host header: nothing, or ":" and a port (RFC 9110 lets it be empty).
_PORT = re.compile(r"(:[0-9]*)?")


@dataclass(frozen=True)
class Limits:
    """What one request may ask of the server.

    Attributes
    ----------
    max_request_bytes : int
        Largest request body (413 above it).
    max_pixels : int
        Largest image, width x height (422 above it), checked from the image header.
    queue_size : int
        Requests that may wait while one runs (429 beyond them).
    """

    max_request_bytes: int = DEFAULT_MAX_REQUEST_MB * 1024 * 1024
    max_pixels: int = DEFAULT_MAX_PIXELS
    queue_size: int = DEFAULT_QUEUE_SIZE

    def __post_init__(self) -> None:
        for name in ("max_request_bytes", "max_pixels"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.queue_size < 0:
            raise ValueError(f"queue_size must be 0 or more, got {self.queue_size}")


def token_path() -> Path:
    """Where the token is kept: ``<config dir>/server-token``."""
    from napari_deepliif.models.index import config_dir

    return config_dir() / TOKEN_FILE


def load_or_create_token() -> str:
    """The server token, created (``secrets.token_urlsafe(32)``, file mode 0600) if missing.

    An existing token file that other users may read is used, with a warning (logged: the
    command line shows it on stderr).

    Raises
    ------
    DeepLIIFError
        When the token in the file is shorter than ``MIN_TOKEN_LENGTH`` characters.
    """
    path = token_path()
    if path.is_file():
        token = path.read_text(encoding="utf-8").strip()
        if token:
            _check_token_file(path, token)
            return token
    token = secrets.token_urlsafe(32)
    write_bytes(path, (token + "\n").encode("utf-8"), mode=0o600)
    log.info("created a new server token in %s", path)
    return token


def _check_token_file(path: Path, token: str) -> None:
    if len(token) < MIN_TOKEN_LENGTH:
        raise DeepLIIFError(f"the token in {path} has {len(token)} characters; the server needs at least "
                            f"{MIN_TOKEN_LENGTH}, so that it cannot be guessed: delete the file and a new token is made")
    mode = stat.S_IMODE(path.stat().st_mode)
    if os.name == "posix" and mode & 0o077:
        log.warning("the token file %s can be read by other users (mode %03o): anyone who reads it can use the "
                    "server; make it private with `chmod 600 %s`", path, mode, path)


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an IP address, IPv6 without brackets) means this machine only."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def host_name(header: str) -> str | None:
    """The host of a ``Host`` header value, lowercased, without port or IPv6 brackets.

    None when the value is not ``name[:port]`` or ``[IPv6][:port]`` (e.g. it holds user
    information or a path).
    """
    if header.startswith("["):
        name, bracket, port = header[1:].partition("]")
        if not bracket:
            return None
        try:
            ipaddress.IPv6Address(name)
        except ValueError:
            return None
    else:
        name, colon, port = header.partition(":")
        port = colon + port
        if not name or any(c in name for c in "@/\\[] "):
            return None
    return name.lower() if _PORT.fullmatch(port) else None


class HostCheck:
    """Which ``Host`` headers the server answers (DNS-rebinding protection, as Jupyter does).

    Always: ``localhost`` and loopback IP addresses (127.0.0.1, ::1, ...), with any port.
    Listening on another address adds it; listening on every interface (0.0.0.0, ::) adds
    every IP address and this machine's host name. A browser names a page's own host in
    ``Host``, so a page whose DNS name was rebound to 127.0.0.1 is refused.

    Parameters
    ----------
    bind_host : str
        The address (or name) the server listens on.
    """

    def __init__(self, bind_host: str):
        bound = bind_host.strip("[]").lower()
        self.any_ip = bound in WILDCARD_HOSTS
        try:
            bound = str(ipaddress.ip_address(bound))  # one spelling per address (IPv6 has several)
        except ValueError:
            pass
        self.names = {"localhost", bound}
        if self.any_ip:
            self.names.add(socket.gethostname().lower())

    def accepts(self, header: str) -> bool:
        """Whether a request with this ``Host`` header value is for this server."""
        name = host_name(header)
        if name is None:
            return False
        try:
            address = ipaddress.ip_address(name)
        except ValueError:
            return name in self.names
        return self.any_ip or address.is_loopback or str(address) in self.names


def bearer_token(header: bytes) -> bytes | None:
    """The credentials of an ``Authorization: Bearer <token>`` header; the scheme is
    case-insensitive (RFC 9110 section 11.1). None for another scheme."""
    scheme, _, credentials = header.partition(b" ")
    return credentials.strip(b" ") if scheme.lower() == b"bearer" else None


class Guard:
    """ASGI middleware: Host, then token, then media type, then body size (Content-Length,
    then the bytes as they come).

    All run before the route (and before FastAPI parses a multipart form), so a request
    for another host, without the token, or with a body over the limit, costs no parsing.
    """

    def __init__(self, app, token: str, limits: Limits, accepted_types: dict[str, tuple[str, ...]],
                 hosts: HostCheck):
        self.app = app
        self.token = token.encode()
        self.limits = limits
        self.accepted_types = accepted_types
        self.hosts = hosts

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or ())
        host = headers.get(b"host", b"").decode("latin-1")
        if not self.hosts.accepts(host):
            await _send_problem(send, 400, f"Host {host or '(none)'!r} is not this server: send the address "
                                "the server listens on (http://127.0.0.1:PORT or http://localhost:PORT); other "
                                "names are refused so that web pages cannot reach the server (DNS rebinding)")
            return
        if scope["path"] not in PUBLIC_PATHS and not secrets.compare_digest(
                bearer_token(headers.get(b"authorization", b"")) or b"", self.token):
            reason = "wrong token" if b"authorization" in headers else "no Authorization header"
            await _send_problem(send, 401, f"{reason}: send 'Authorization: Bearer <token>'; "
                                "`napari-deepliif token` prints the token", {"www-authenticate": "Bearer"})
            return
        accepted = self.accepted_types.get(scope["path"]) if scope["method"] == "POST" else None
        media_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower().decode("latin-1")
        if accepted and media_type not in accepted:
            await _send_problem(send, 415, f"Content-Type {media_type or '(none)'!r} is not accepted here; "
                                f"send {' or '.join(accepted)}")
            return
        limit = self.limits.max_request_bytes
        length = headers.get(b"content-length")
        # h11 (see handle.py) answers a Content-Length that is not a number itself, as problem JSON
        if length is not None and int(length) > limit:
            await _send_problem(send, 413, _too_large(int(length), limit))
            return
        received = 0

        async def counted_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise Problem(413, _too_large(received, limit, so_far=True))
            return message

        await self.app(scope, counted_receive, send)


def _too_large(size: int, limit: int, so_far: bool = False) -> str:
    what = f"more than {size}" if so_far else f"{size}"
    return (f"the request body is {what} bytes; this server takes at most {limit} bytes "
            "(--max-request-mb): send a smaller region or restart the server with a higher limit")


async def _send_problem(send, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
    body = json.dumps(problem_body(status, detail)).encode()
    raw = [(b"content-type", PROBLEM_MEDIA_TYPE.encode()), (b"content-length", str(len(body)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
