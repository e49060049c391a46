"""``serve`` and ``token`` as commands, in a subprocess: startup lines, token file, Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
#: The two sub-commands on a parser of their own (cli.py registers them the same way).
RUN = ("import argparse, sys; from napari_deepliif.cli import serve as cli_server; p = argparse.ArgumentParser(); "
       "cli_server.add_parser(p.add_subparsers()); a = p.parse_args(sys.argv[1:]); sys.exit(a.func(a))")


def command(config_dir: Path, *args: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "NAPARI_DEEPLIIF_CONFIG_DIR": str(config_dir),
           "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, "-c", RUN, *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


def test_token_creates_and_prints_the_token(tmp_path):
    out, err = command(tmp_path, "token").communicate(timeout=60)
    token = out.strip()
    assert len(token) >= 40 and (tmp_path / "server-token").read_text().strip() == token
    again, _ = command(tmp_path, "token").communicate(timeout=60)
    assert again.strip() == token


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["ctrl_c", "sigterm"])
def test_serve_prints_url_and_token_path_and_stops_on_ctrl_c_or_sigterm(tmp_path, stop_signal):
    server = command(tmp_path, "serve", "--engine", "stain", "--port", "0", "--queue-size", "3",
                     "--max-pixels", "1000000", "--max-request-mb", "2")
    try:
        lines = []
        while not any(line.startswith("token file:") for line in lines):
            line = server.stdout.readline()
            assert line, f"serve ended early: {server.stderr.read()}"
            lines.append(line.strip())
        url = next(line for line in lines if line.startswith("serving at")).split()[2]
        assert url.startswith("http://127.0.0.1:")
        token = (tmp_path / "server-token").read_text().strip()
        assert str(tmp_path / "server-token") in lines[-1]
        assert not any(token in line for line in lines), "the token must not be printed"
        health = httpx.get(f"{url}/api/health", timeout=30).json()
        assert health["engine"] == "stain"
        assert health["limits"] == {"max_request_bytes": 2 * 1024 * 1024, "max_pixels": 1_000_000, "queue_size": 3}
        cancel = httpx.post(f"{url}/api/cancel", headers={"Authorization": f"Bearer {token}"}, timeout=30)
        assert cancel.json() == {"cancelled": False}
        server.send_signal(stop_signal)
        _, err = server.communicate(timeout=30)
        assert server.returncode == 0, err
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def test_serve_reports_a_taken_port(tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        start = time.monotonic()
        server = command(tmp_path, "serve", "--engine", "stain", "--port", str(port))
        out, err = server.communicate(timeout=120)
    assert server.returncode != 0 and f"cannot listen on 127.0.0.1:{port}" in err
    assert time.monotonic() - start < 120
