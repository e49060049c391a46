"""Who may use the server, over real HTTP on loopback: the Host check (DNS rebinding), the
bearer token (scheme in any case) and the token file."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_server_support import assert_problem, client, running_server

SRC = Path(__file__).resolve().parents[1] / "src"


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


# ---- the token file --------------------------------------------------------------------------

TOKEN = "k" * 43


def _cli_token(config_dir) -> subprocess.CompletedProcess:
    """``napari-deepliif token`` (the real command line, with its logging) on ``config_dir``."""
    env = {**os.environ, "NAPARI_DEEPLIIF_CONFIG_DIR": str(config_dir),
           "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "napari_deepliif.cli", "token"], check=False, env=env, text=True,
                          capture_output=True, timeout=120)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604], ids=oct)
def test_a_token_file_others_can_read_is_used_with_a_warning(tmp_path, caplog, mode):
    path = tmp_path / "server-token"
    path.write_text(TOKEN + "\n")
    path.chmod(mode)
    done = _cli_token(tmp_path)
    assert done.returncode == 0 and done.stdout.strip() == TOKEN
    assert "can be read by other users" in done.stderr and f"chmod 600 {path}" in done.stderr
    with caplog.at_level(logging.WARNING, logger="napari_deepliif.server"), running_server(tmp_path) as handle:
        assert handle.token == TOKEN
    assert any("can be read by other users" in r.getMessage() and str(path) in r.getMessage() for r in caplog.records)


def test_a_private_token_file_gives_no_warning(tmp_path, caplog):
    path = tmp_path / "server-token"
    path.write_text(TOKEN + "\n")
    path.chmod(0o600)
    done = _cli_token(tmp_path)
    assert done.returncode == 0 and done.stdout.strip() == TOKEN and done.stderr == ""
    with caplog.at_level(logging.WARNING, logger="napari_deepliif.server"), running_server(tmp_path):
        pass
    assert not [r for r in caplog.records if "token" in r.getMessage()]


def test_a_short_token_is_refused(tmp_path):
    from napari_deepliif.errors import DeepLIIFError

    path = tmp_path / "server-token"
    path.write_text("secret\n")
    path.chmod(0o600)
    done = _cli_token(tmp_path)
    assert done.returncode != 0 and done.stdout == ""
    assert f"the token in {path} has 6 characters" in done.stderr and "at least 32" in done.stderr
    with pytest.raises(DeepLIIFError, match="delete the file"), running_server(tmp_path):
        pass
    path.write_text("x" * 32)  # the shortest accepted
    with running_server(tmp_path) as handle:
        assert handle.token == "x" * 32
