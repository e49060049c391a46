"""A model the server cannot use fails at start-up (ServerHandle and `serve`), and a fault of
the server's own is a 5xx problem, never a 4xx (real HTTP on loopback)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from test_server_support import assert_problem, client, png_bytes, running_server

from napari_deepliif.engine import StainEngine
from napari_deepliif.errors import ModelError

SRC = Path(__file__).resolve().parents[1] / "src"


def _eager_copy(model_dir: Path, target: Path, truncate: str | None = None) -> Path:
    """The fixture model's eager nets in ``target``, with ``truncate`` cut to half its size."""
    target.mkdir()
    for path in model_dir.iterdir():
        if path.suffix == ".pth" or path.name == "train_opt.txt":
            shutil.copyfile(path, target / path.name)
    if truncate:
        net = target / truncate
        net.write_bytes(net.read_bytes()[: net.stat().st_size // 2])
    return target


@pytest.mark.parametrize("net", ["latest_net_G1.pth", "latest_net_G55.pth"])
def test_a_truncated_net_stops_the_server_from_starting(tmp_path, fit_model_dir, net):
    """G1 only serves /api/infer's images, G55 every score: both are checked at start-up."""
    model = _eager_copy(fit_model_dir, tmp_path / "model", truncate=net)
    with pytest.raises(ModelError, match=f"{net} is truncated"), \
            running_server(tmp_path, "deepliif", model=model, device="cpu"):
        pass


def test_serve_reports_a_truncated_net_and_exits(tmp_path, fit_model_dir):
    model = _eager_copy(fit_model_dir, tmp_path / "model", truncate="latest_net_G2.pth")
    env = {**os.environ, "NAPARI_DEEPLIIF_CONFIG_DIR": str(tmp_path),
           "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-m", "napari_deepliif.cli", "serve", "--engine", "deepliif",
                           "--model", str(model), "--device", "cpu", "--port", "0"],
                          check=False, env=env, text=True, capture_output=True, timeout=120)
    assert done.returncode != 0 and "serving at" not in done.stdout
    assert "latest_net_G2.pth is truncated" in done.stderr


def test_an_intact_model_starts_and_serves_every_endpoint(tmp_path, fit_model_dir, ihc_small):
    model = _eager_copy(fit_model_dir, tmp_path / "model")
    with running_server(tmp_path, "deepliif", model=model, device="cpu") as handle, client(handle) as http:
        files = {"img": ("a.png", png_bytes(ihc_small), "image/png")}
        assert http.post("/api/infer", files=files).status_code == 200
        assert http.post("/api/score", content=png_bytes(ihc_small), headers={"Content-Type": "image/png"}).status_code == 200


@dataclass
class BrokenModelEngine(StainEngine):
    """An engine whose model file breaks after start-up (a disk error, a file replaced)."""

    def infer_chunk(self, *args, **kwargs):
        raise ModelError("/models/x/G4.pt cannot be read (RuntimeError: PytorchStreamReader failed); it may be corrupt")


def test_a_fault_of_the_servers_model_is_a_500_problem(tmp_path, ihc_small):
    with running_server(tmp_path, BrokenModelEngine()) as handle, client(handle) as http:
        score = http.post("/api/score", content=png_bytes(ihc_small), headers={"Content-Type": "image/png"})
        infer = http.post("/api/infer", files={"img": ("a.png", png_bytes(ihc_small), "image/png")})
        for response in (score, infer):
            body = assert_problem(response, 500, "the server's model cannot be used", "G4.pt cannot be read",
                                  "Restart the server")
            assert body["title"] == "Internal Server Error"
        # the client's own mistakes stay 4xx
        assert_problem(http.post("/api/score", content=png_bytes(np.zeros((8, 8, 3), np.uint8)),
                                 headers={"Content-Type": "image/png"}), 422)
