"""Shared test fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

# qtpy (napari) must pick the binding pytest-qt uses (qt_api in pyproject.toml), even where
# PyQt5 is installed too
os.environ.setdefault("QT_API", "pyqt6")

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture(scope="session", autouse=True)
def _private_cache_dir(tmp_path_factory: pytest.TempPathFactory):
    """Tests never write the user's cache dir (e.g. the model hash cache): a session folder
    unless NAPARI_DEEPLIIF_CACHE_DIR is set already (tests may still move it per test)."""
    from napari_deepliif.model_registry import CACHE_DIR_ENV

    if os.environ.get(CACHE_DIR_ENV):
        yield
        return
    os.environ[CACHE_DIR_ENV] = str(tmp_path_factory.mktemp("user-cache"))
    try:
        yield
    finally:
        os.environ.pop(CACHE_DIR_ENV, None)


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


def assert_matches_reference(ours: np.ndarray, ref: np.ndarray, what: str) -> None:
    """The fixtures' tolerance: per channel, max |diff| <= 2 and >= 99.5% of pixels identical."""
    assert ours.shape == ref.shape, f"{what}: shape {ours.shape} != reference {ref.shape}"
    assert ours.dtype == np.uint8
    diff = np.abs(ours.astype(np.int16) - ref.astype(np.int16))
    for c in range(ref.shape[2]):
        same = float((diff[..., c] == 0).mean())
        assert diff[..., c].max() <= 2, f"{what} channel {c}: max diff {diff[..., c].max()}"
        assert same >= 0.995, f"{what} channel {c}: only {same:.4%} of pixels identical"


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory):
    """A loopback HTTP server over a folder of model zips: (base URL, folder, {zip: sha256}).

    ``both.zip`` is the fixture model with TorchScript and eager nets plus release extras,
    ``eager.zip`` the eager nets only, ``broken.zip`` lacks G55, ``notazip.zip`` is not a zip.
    """
    from model_server import FIXTURE_MODEL, build_model_zip, serve_folder

    from napari_deepliif.model_index import EAGER_FILES, TORCHSCRIPT_FILES

    root = tmp_path_factory.mktemp("www")
    hashes = {
        "both.zip": build_model_zip(root / "both.zip", sorted(p.name for p in FIXTURE_MODEL.iterdir())),
        "eager.zip": build_model_zip(root / "eager.zip", sorted(["train_opt.txt", *EAGER_FILES])),
        "broken.zip": build_model_zip(root / "broken.zip", sorted(n for n in ["train_opt.txt", *TORCHSCRIPT_FILES] if n != "G55.pt")),
    }
    (root / "notazip.zip").write_bytes(b"hello")
    with serve_folder(root) as base:
        yield base, root, hashes


@pytest.fixture
def user_model_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """The model registry (config) and download cache in a temporary folder, never the user's."""
    from napari_deepliif.model_index import CACHE_DIR_ENV, CONFIG_DIR_ENV

    config, cache = tmp_path / "config", tmp_path / "cache"
    monkeypatch.setenv(CONFIG_DIR_ENV, str(config))
    monkeypatch.setenv(CACHE_DIR_ENV, str(cache))
    return config, cache
