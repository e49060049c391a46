"""Who may use the server, over real HTTP on loopback: the Host check (DNS rebinding), the
bearer token (scheme in any case) and the token file."""

from __future__ import annotations

import httpx
import pytest
from test_server_support import assert_problem, client, running_server


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running_server(tmp_path_factory.mktemp("config"), "stain") as handle:
        yield handle


# ---- Host ---------------------------------------------------------------------------------

@pytest.mark.parametrize("host", ["localhost", "localhost:{port}", "LocalHost:{port}", "127.0.0.1",
                                  "127.0.0.1:{port}", "[::1]:{port}", "[::1]", "127.0.0.2:{port}"])
def test_loopback_host_names_are_answered(server, host):
    with client(server) as c:
        response = c.get("/api/health", headers={"Host": host.format(port=server.port)})
        assert response.status_code == 200
        assert c.post("/api/cancel", headers={"Host": host.format(port=server.port)}).status_code == 200


@pytest.mark.parametrize("host", ["evil.example", "evil.example:{port}", "localhost.evil.example:{port}",
                                  "127.0.0.1.nip.io:{port}", "user@127.0.0.1:{port}", "127.0.0.1:{port}/x",
                                  "[::1:{port}", "[evil.example]:{port}", "127.0.0.1:port", "192.0.2.7:{port}"])
def test_other_host_names_are_refused_before_anything_else(server, host):
    """A page whose DNS name was rebound to 127.0.0.1 sends its own name as Host."""
    host = host.format(port=server.port)
    with client(server) as c:
        for method, path in (("GET", "/api/health"), ("GET", "/openapi.json"), ("POST", "/api/cancel"),
                             ("GET", "/api/health/"), ("GET", "/api/nothing")):
            response = c.request(method, path, headers={"Host": host})
            assert_problem(response, 400, "is not this server", "DNS rebinding")
            assert "location" not in response.headers  # no redirect that reflects the host


def test_the_trailing_slash_redirect_names_the_servers_own_host(server):
    with client(server) as c:
        response = c.get("/api/health/", headers={"Host": f"localhost:{server.port}"})
    assert response.status_code == 307
    assert response.headers["location"] == f"http://localhost:{server.port}/api/health"


def test_a_server_listening_elsewhere_also_answers_its_own_address():
    from napari_deepliif.server.security import HostCheck

    lan = HostCheck("192.168.1.5")
    assert lan.accepts("192.168.1.5:8642") and lan.accepts("127.0.0.1:8642") and lan.accepts("localhost")
    assert not lan.accepts("192.168.1.6:8642") and not lan.accepts("evil.example")
    named = HostCheck("scope-pc.lan")
    assert named.accepts("SCOPE-PC.lan:8642") and not named.accepts("evil.example:8642")
    v6 = HostCheck("fd00::0:5")
    assert v6.accepts("[fd00::5]:8642") and not v6.accepts("[fd00::6]:8642")
    # every interface: any IP address names it, host names still do not (but its own)
    anywhere = HostCheck("0.0.0.0")
    assert anywhere.accepts("10.1.2.3:8642") and anywhere.accepts("[fd00::7]")
    assert not anywhere.accepts("evil.example:8642") and not anywhere.accepts("")


# ---- token ---------------------------------------------------------------------------------

@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
def test_the_bearer_scheme_is_case_insensitive(server, scheme):
    with client(server, token=None) as c:
        response = c.post("/api/cancel", headers={"Authorization": f"{scheme} {server.token}"})
    assert response.status_code == 200 and response.json() == {"cancelled": False}


@pytest.mark.parametrize("header", ["Basic {token}", "Bearer{token}", "Bearer", "{token}",
                                    "Bearer {token}x", "Token {token}"])
def test_other_schemes_and_tokens_are_refused(server, header):
    with client(server, token=None) as c:
        response = c.post("/api/cancel", headers={"Authorization": header.format(token=server.token)})
    assert_problem(response, 401, "wrong token")
