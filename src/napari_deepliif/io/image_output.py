"""Write result images and files so that an interrupted run leaves nothing half-written."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np


def write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_png(path: str | Path, image: Any) -> None:
    """Write an H x W x 3 uint8 array as an RGB PNG, atomically."""
    from PIL import Image

    data = np.asarray(image, dtype=np.uint8)
    write_atomic(Path(path), lambda tmp: Image.fromarray(data).save(tmp, format="PNG"))


def write_images(directory: str | Path, images: Mapping[str, Any]) -> dict[str, Path]:
    """Write each ``name -> array`` as ``directory/<name>.png``; return the paths."""
    directory = Path(directory)
    paths = {}
    for name, image in images.items():
        paths[name] = directory / f"{name}.png"
        write_png(paths[name], image)
    return paths
