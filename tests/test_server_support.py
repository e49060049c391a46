"""Helpers shared by the server tests (no tests here): start a real server on loopback,
encode images, talk to it with httpx."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np

from napari_deepliif.server import Limits, ServerHandle


@contextmanager
def running_server(config_dir: Path, engine="stain", *, model: Path | None = None, device: str = "auto",
                   **limits) -> Iterator[ServerHandle]:
    """A server on 127.0.0.1 (a free port) whose token lives in ``config_dir``; ``model`` and
    ``device`` are for an engine given by name."""
    previous = os.environ.get("NAPARI_DEEPLIIF_CONFIG_DIR")
    os.environ["NAPARI_DEEPLIIF_CONFIG_DIR"] = str(config_dir)
    try:
        handle = ServerHandle.start(engine, model=model, device=device, host="127.0.0.1", port=0,
                                    limits=Limits(**limits))
        try:
            yield handle
        finally:
            handle.stop()
    finally:
        if previous is None:
            os.environ.pop("NAPARI_DEEPLIIF_CONFIG_DIR", None)
        else:
            os.environ["NAPARI_DEEPLIIF_CONFIG_DIR"] = previous


def client(handle: ServerHandle, token: str | None = "right", timeout: float = 120) -> httpx.Client:
    """An httpx client for ``handle`` sending the right token, a given one, or none."""
    headers = {}
    if token is not None:
        headers["Authorization"] = f"Bearer {handle.token if token == 'right' else token}"
    return httpx.Client(base_url=handle.url, headers=headers, timeout=timeout)


def png_bytes(image: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def tiff_bytes(image: np.ndarray) -> bytes:
    import tifffile

    buffer = io.BytesIO()
    tifffile.imwrite(buffer, image, photometric="rgb" if image.ndim == 3 else "minisblack")
    return buffer.getvalue()


def decode_png(text: str) -> np.ndarray:
    import base64

    from PIL import Image

    with Image.open(io.BytesIO(base64.b64decode(text))) as im:
        assert im.format == "PNG"
        return np.asarray(im)


def without_ids(features: list[dict]) -> list[dict]:
    """Features without their random UUIDs (everything else is deterministic)."""
    return [{k: v for k, v in f.items() if k != "id"} for f in features]


def assert_problem(response: httpx.Response, status: int, *words: str) -> dict:
    """``response`` is problem JSON with ``status`` whose detail contains ``words``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert set(body) == {"type", "title", "status", "detail"}
    assert body["status"] == status and body["title"] and body["detail"]
    for word in words:
        assert word in body["detail"], body["detail"]
    return body
