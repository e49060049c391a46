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
