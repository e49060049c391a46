"""The cluster a batch starts on this machine: only the batch can use it.

Its scheduler speaks TLS with credentials made for it, so a process without them (another user,
a web page's script, a stray notebook) can neither connect nor run code on the workers; no
dashboard or other HTTP page is served; and a batch still scores through it.
"""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from distributed import Client, LocalCluster
from distributed.security import Security
from PIL import Image
from test_slides import slide_pixels

from napari_deepliif.cli.main import main
from napari_deepliif.slides.batch import local_cluster

DASHBOARD_PORT = 8787
PAGES = ("/status", "/metrics", "/health", "/json/identity.json", "/info/main/workers.html")


def answers(port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:``port``."""
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def run_code(address: str, security: Security | None = None) -> int | Exception:
    """Run a function on the cluster's workers as a client would: its result, or why it could not."""
    try:
        # not the default client: a refused one would leave dask's global scheduler set to it
        with Client(address, security=security, timeout="3s", set_as_default=False) as client:
            return sum(client.run(lambda: 1).values())
    except (OSError, TypeError) as exc:  # refused (TLS handshake, closed comm) or no TLS context to offer
        return exc


@pytest.fixture(scope="module")
def dashboard_taken_before() -> bool:
    """Whether another program on this shared machine already held port 8787 before our cluster."""
    return answers(DASHBOARD_PORT)


@pytest.fixture(scope="module")
def cluster(dashboard_taken_before: bool) -> Iterator[LocalCluster]:
    """The cluster exactly as ``run_batch`` starts it (one worker)."""
    with local_cluster(1) as started:
        yield started


def test_strangers_cannot_connect_or_run_code(cluster: LocalCluster) -> None:
    address = cluster.scheduler_address
    assert run_code(address, cluster.security) == 1  # the batch's own client works
    assert isinstance(run_code(address), Exception)  # no credentials
    assert isinstance(run_code(address, Security.temporary()), Exception)  # a stranger's own certificates
    assert isinstance(run_code(address.replace("tls://", "tcp://")), Exception)  # plain TCP
    assert address.startswith("tls://127.0.0.1:")  # loopback only


def test_no_dashboard_or_http_page(cluster: LocalCluster, dashboard_taken_before: bool) -> None:
    if not dashboard_taken_before:
        assert not answers(DASHBOARD_PORT)
    ports = [sock.getsockname() for sock in cluster.scheduler.http_server._sockets.values()]
    assert all(host == "127.0.0.1" and port != DASHBOARD_PORT for host, port in ports)
    for _, port in ports:
        for page in PAGES:
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(f"http://127.0.0.1:{port}{page}", timeout=5)
            assert refused.value.code == 404, page


def test_batch_scores_through_the_secured_cluster(shared_dir: Path, tmp_path: Path, capsys) -> None:
    Image.fromarray(slide_pixels(shared_dir, (384, 384))).save(tmp_path / "small.png")
    status = main(["batch", str(tmp_path / "small.png"), "--out", str(tmp_path / "out"), "--engine", "stain"])
    assert status == 0
    assert "[1/1] small.png:" in capsys.readouterr().out
    assert json.loads((tmp_path / "out" / "small" / "score.json").read_text())["scoring"]["num_total"] > 0
