"""The server's connections over real HTTP on loopback: kept-open connections without the
Nagle delay, malformed requests answered as problem JSON, and a client that goes away
cancelling its request."""

from __future__ import annotations

import socket

import httpx
import pytest
from test_server_support import client, running_server


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
