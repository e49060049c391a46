"""Shared test fixtures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The read-only ``shared/`` folder beside the repository (real images, fixtures).

    It is part of every checkout and of CI; a missing folder is an error, not a skip.
    """
    if not SHARED.is_dir():
        pytest.fail(f"shared data folder {SHARED} not found: clone the repository beside shared/")
    return SHARED


@pytest.fixture(scope="session")
def fit_model_dir(shared_dir: Path) -> Path:
    """The small fitted fixture model (ngf=8): its Seg maps contain cells."""
    return shared_dir / "fixtures" / "models" / "deepliif-fit-ngf8"


@pytest.fixture(scope="session")
def random_model_dir(shared_dir: Path) -> Path:
    """The small random-weight fixture model (ngf=4)."""
    return shared_dir / "fixtures" / "models" / "deepliif-random-ngf4"


def read_rgb(path: Path) -> np.ndarray:
    """Read an image file as H x W x 3 uint8."""
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


@pytest.fixture(scope="session")
def ihc_22_2(shared_dir: Path) -> np.ndarray:
    """Real 512 x 512 Ki67 IHC tile (40x)."""
    return read_rgb(shared_dir / "fixtures" / "inputs" / "ihc_22_2.png")


@pytest.fixture(scope="session")
def ihc_small(shared_dir: Path) -> np.ndarray:
    """Real 300 x 200 IHC crop, smaller than a 40x tile."""
    return read_rgb(shared_dir / "fixtures" / "inputs" / "ihc_34_3_crop_300x200.png")
