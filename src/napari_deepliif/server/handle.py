"""Start and stop the server from Python (the napari widget) or the ``serve`` command.

>>> handle = ServerHandle.start(engine="stain", port=0)   # port 0: any free port
>>> handle.url, handle.token
>>> handle.stop()
"""

from __future__ import annotations

import json
import logging
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Any

from napari_deepliif.engine.engines import EngineBase
from napari_deepliif.errors import DeepLIIFError
from napari_deepliif.server.defaults import DEFAULT_HOST, DEFAULT_PORT
from napari_deepliif.server.security import (
    Limits,
    is_loopback,
    load_or_create_token,
    token_path,
)

log = logging.getLogger(__name__)

#: The detail of the 400 answered to a request the HTTP parser refuses (it does not say why).
MALFORMED_DETAIL = ("malformed HTTP request: the request line or a header could not be parsed (for example a "
                    "Content-Length that is not a number, or a header name with spaces); send a valid HTTP/1.1 request")
#: Seconds ``stop`` waits for the running request to notice its cancel and for uvicorn to end.
STOP_TIMEOUT = 30.0


class ServerHandle:
    """A running server: uvicorn in a background thread, serving one engine.

    Build it with :meth:`start`; ``url``, ``token`` and ``token_path`` say how to reach it.
    Usable as a context manager (stops on exit).
    """

    def __init__(self, server: Any, thread: threading.Thread, app: Any, host: str, port: int, token: str):
        self._server = server
        self._thread = thread
        self.app = app
        self.host = host
        self.port = port
        self.token = token
        self.token_path: Path = token_path()

    @property
    def url(self) -> str:
        """``http://host:port`` (IPv6 hosts in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def running(self) -> bool:
        """Whether the server thread still runs."""
        return self._thread.is_alive()

    @classmethod
    def start(
        cls,
        engine: Any = "auto",
        *,
        model: str | Path | None = None,
        device: str = "auto",
        precision: str = "fp32",
        batch_size: int | None = None,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        limits: Limits | None = None,
        timeout: float = 30.0,
    ) -> "ServerHandle":
        """Load the engine (unless one is given), bind ``host:port`` and serve in a thread.

        Parameters
        ----------
        engine : {'auto', 'deepliif', 'stain'} or Engine or StainEngine
            An engine name (loaded here with ``model``, ``device``, ``precision``,
            ``batch_size``; see :func:`napari_deepliif.engine.engines.load_engine`) or a loaded engine.
        host : str
            Address to listen on; the default, 127.0.0.1, accepts only this machine. Requests
            must name it (or a loopback name) in their Host header.
        port : int
            TCP port; 0 picks a free one (read it back from ``handle.port``).
        limits : Limits, optional
            Request size, pixel and queue limits.
        timeout : float
            Seconds to wait for the server to accept connections.

        Raises
        ------
        DeepLIIFError
            When the engine cannot be loaded (for DeepLIIF: any net it runs cannot be read),
            the address cannot be bound, or the token file holds too short a token.
        """
        import uvicorn

        from napari_deepliif.server.app import create_app

        token = load_or_create_token()  # before the engine: a bad token file fails at once
        if isinstance(engine, str):
            from napari_deepliif.engine.engines import load_engine

            engine = load_engine(engine, model, device=device, precision=precision, batch_size=batch_size)
        _check_engine(engine)
        if not is_loopback(host):
            log.warning("listening on %s: other machines can reach this server (anyone with the token "
                        "can use it, and HTTP is not encrypted)", host)
        app = create_app(engine, token=token, limits=limits, host=host)
        sock = _bind(host, port)
        config = uvicorn.Config(app, http=_problem_protocol(), log_config=None, log_level="warning", access_log=False,
                                lifespan="on")
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="napari-deepliif-server", daemon=True)
        thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                server.should_exit = True
                sock.close()
                raise DeepLIIFError(f"the server did not start on {host}:{sock.getsockname()[1]} (see the log)")
            time.sleep(0.01)
        handle = cls(server, thread, app, host, int(sock.getsockname()[1]), token)
        log.info("serving %s engine at %s", engine.name, handle.url)
        return handle

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Cancel running and queued requests, then stop the server and wait for its thread."""
        self.app.state.deepliif.jobs.stop()
        self._server.should_exit = True
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("the server thread did not end within %.0f s", timeout)

    def wait(self) -> None:
        """Block until the server stops; Ctrl-C (SIGINT) or SIGTERM stops it gracefully.

        The signals set a flag instead of raising KeyboardInterrupt: a KeyboardInterrupt
        inside ``Thread.join`` can mark the still-running server thread as stopped
        (CPython's join releases the thread's own lock when interrupted), so ``stop``
        would not wait for it. Called from another thread than the main one, it only waits.
        """
        stopping = threading.Event()
        previous = {}
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                previous[signum] = signal.signal(signum, lambda *_: stopping.set())
        try:
            while self._thread.is_alive() and not stopping.is_set():
                time.sleep(0.1)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        if stopping.is_set():
            self.stop()

    def __enter__(self) -> "ServerHandle":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _check_engine(engine: EngineBase) -> None:
    """Run ``engine`` once on a blank image, for every output, so that a model whose nets
    cannot be read (a truncated or corrupt file) fails at start-up rather than at a request.

    A DeepLIIF engine loads each net it runs before its first tile, and keeps it: this
    loads all of them (those a request for every output needs; nets whose Seg weight is 0
    are never run, so never read). A blank tile runs no net, so this costs only the loading.
    """
    import numpy as np

    from napari_deepliif.rgb import MIN_EDGE

    engine.infer(np.zeros((MIN_EDGE, MIN_EDGE, 3), np.uint8), outputs="all")


def _problem_protocol() -> type:
    """uvicorn's h11 protocol, answering requests it cannot parse with problem JSON.

    h11 refuses a malformed request line or header (a non-numeric Content-Length, a bad
    header name) before any ASGI app sees it; uvicorn's own answer is a plain-text 400.
    Chosen explicitly, so the server behaves the same whether or not httptools is installed.
    """
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    from napari_deepliif.server.problems import PROBLEM_MEDIA_TYPE, problem_body

    class ProblemH11Protocol(H11Protocol):
        def send_400_response(self, msg: str) -> None:
            body = json.dumps(problem_body(400, MALFORMED_DETAIL)).encode()
            headers = [(b"content-type", PROBLEM_MEDIA_TYPE.encode()), (b"content-length", str(len(body)).encode()),
                       (b"connection", b"close")]
            for event in (h11.Response(status_code=400, headers=headers, reason=b"Bad Request"), h11.Data(data=body),
                          h11.EndOfMessage()):
                self.transport.write(self.conn.send(event))
            self.transport.close()

    return ProblemH11Protocol


def _bind(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` (uvicorn listens on it), with a clear error if taken.

    It is made with protocol ``IPPROTO_TCP``, not 0: accepted connections inherit it, and
    asyncio sets ``TCP_NODELAY`` only on sockets whose protocol says TCP. Without it every
    request on a kept-open connection waits ~40 ms (Nagle's algorithm against the client's
    delayed ACK).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        hint = " (another server may be running: use --port)" if port else ""
        raise DeepLIIFError(f"cannot listen on {host}:{port}: {exc.strerror or exc}{hint}") from exc
    return sock
