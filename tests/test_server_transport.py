"""The server's connections over real HTTP on loopback: kept-open connections without the
Nagle delay, malformed requests answered as problem JSON, and a client that goes away
cancelling its request."""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field

import httpx
import numpy as np
import pytest
from test_server_support import client, png_bytes, running_server

from napari_deepliif.engine import StainEngine
from napari_deepliif.errors import Cancelled


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running_server(tmp_path_factory.mktemp("config"), "stain") as handle:
        yield handle


def _server_sockets(handle) -> list[socket.socket]:
    """The server's side of its open connections (uvicorn keeps their protocols)."""
    return [p.transport.get_extra_info("socket") for p in handle._server.server_state.connections]


def test_kept_open_connections_send_without_the_nagle_delay(server):
    with client(server) as c:
        answers = [c.get("/api/health") for _ in range(20)]
        assert [a.status_code for a in answers] == [200] * 20
        # one connection served all 20 (keep-alive), and its socket sends small writes at once:
        # with Nagle's algorithm each response's second write waits for the client's delayed
        # ACK (~40 ms a request)
        sockets = _server_sockets(server)
        assert len(sockets) == 1
        assert sockets[0].getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


def _raw_exchange(handle, request: bytes) -> bytes:
    """Send ``request`` bytes as they are and read the answer until the server closes."""
    with socket.create_connection((handle.host, handle.port), timeout=30) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


@pytest.mark.parametrize("header", [b"Content-Length: abc", b"Content-Length: -1", b"Content-Length: 1e3",
                                    b"Content-Length: 99999999999999999999999", b"Bad Header: x"])
def test_requests_the_parser_refuses_are_400_problem_json(server, header):
    import json

    request = (b"POST /api/score HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + server.token.encode()
               + b"\r\nContent-Type: image/png\r\n" + header + b"\r\n\r\nhello")
    head, _, body = _raw_exchange(server, request).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0] == "HTTP/1.1 400 Bad Request"
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    assert headers["content-type"] == "application/problem+json" and headers["connection"] == "close"
    problem = json.loads(body)
    assert problem["status"] == 400 and problem["title"] == "Bad Request" and problem["type"] == "about:blank"
    assert "malformed HTTP request" in problem["detail"] and "Content-Length" in problem["detail"]
    assert int(headers["content-length"]) == len(body)
    # the server keeps serving
    assert httpx.get(f"{server.url}/api/health").status_code == 200


@dataclass
class WaitingEngine(StainEngine):
    """The stain engine, but its whole-image statistics (the first thing the region core asks
    for) wait (up to a minute) until the request is cancelled."""

    started: threading.Event = field(default_factory=threading.Event)
    cancelled: threading.Event = field(default_factory=threading.Event)
    calls: int = 0

    def statistics(self, source, resolution, *, include=None, cancel=None):
        self.calls += 1
        self.started.set()
        if cancel.wait(60):
            self.cancelled.set()
            raise Cancelled("cancelled while scoring")
        return super().statistics(source, resolution, include=include, cancel=cancel)


def _request(handle, path: str, image: np.ndarray, request_id: str) -> bytes:
    """A raw authorised POST of ``image`` to ``path`` (/api/score: the body; else multipart)."""
    if path == "/api/score":
        body, media_type = png_bytes(image), "image/png"
    else:
        body = (b"--b\r\nContent-Disposition: form-data; name=\"img\"; filename=\"a.png\"\r\n"
                b"Content-Type: image/png\r\n\r\n" + png_bytes(image) + b"\r\n--b--\r\n")
        media_type = "multipart/form-data; boundary=b"
    return (f"POST {path}?request_id={request_id} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {handle.token}\r\nContent-Type: {media_type}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


@pytest.mark.parametrize("path", ["/api/score", "/api/infer"])
def test_a_client_that_goes_away_cancels_its_request(tmp_path, ihc_small, path):
    engine = WaitingEngine()
    with running_server(tmp_path, engine) as handle, client(handle) as http:
        running = socket.create_connection((handle.host, handle.port), timeout=30)
        running.sendall(_request(handle, path, ihc_small, "running"))
        assert engine.started.wait(30)
        queued = socket.create_connection((handle.host, handle.port), timeout=30)
        queued.sendall(_request(handle, path, ihc_small, "queued"))
        waiting = handle.app.state.deepliif.jobs._waiting  # the queue behind the running job
        _wait_for(lambda: len(waiting) == 1)
        # the waiting request's client leaves: its job leaves the queue, never runs
        queued.close()
        _wait_for(lambda: not waiting)
        assert not engine.cancelled.is_set()
        # the running request's client leaves: the engine's cancel event is set
        running.close()
        assert engine.cancelled.wait(10), "the running job was not cancelled when its client left"
        _wait_for(lambda: not http.get("/api/health").json()["busy"])
        assert engine.calls == 1


def _wait_for(condition, timeout: float = 10) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)
