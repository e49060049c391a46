"""Shared test fixtures."""

from __future__ import annotations

import functools
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

# qtpy (napari) must pick the binding pytest-qt uses (qt_api in pyproject.toml), even where
# PyQt5 is installed too
os.environ.setdefault("QT_API", "pyqt6")

SHARED = Path(__file__).resolve().parents[1].parent / "shared"

# ---- tests that need a display or a JDK: skipped with what to install, failed under CI -------

#: Fixtures that open a Qt application (pytest-qt, napari): a test using any needs a display.
DISPLAY_FIXTURES = frozenset({"qapp", "qtbot", "make_napari_viewer", "make_napari_viewer_proxy"})
#: Tests that start Qt in a subprocess, so no fixture tells (better: ``@pytest.mark.needs_display``
#: in the test module itself, which is another engineer's file today).
DISPLAY_TESTS = frozenset({"test_widget.py::test_opening_the_widget_does_not_import_torch"})
#: Fixtures that compile and run the QuPath extension's Java core (tests/test_qupath_regions.py).
JDK_FIXTURES = frozenset({"junit_run"})
#: The jars qupath-extension/ci/test-core.sh compiles and runs against (Debian's packages).
JAVA_JARS = ("gson.jar", "jts-core.jar", "junit-jupiter-api.jar", "junit-jupiter-params.jar", "opentest4j.jar",
             "apiguardian-api.jar", "junit-platform-console-standalone.jar")
DISPLAY_HELP = ("install Xvfb with Mesa OpenGL (Debian/Ubuntu: apt-get install xvfb libgl1-mesa-dri "
                "libglx-mesa0 libegl1 xauth libxkbcommon-x11-0 libxcb-cursor0; .ci/run lists all) and "
                "pytest-xvfb starts it, or run the tests in a desktop session")
JDK_HELP = ("install a JDK 17+ and Debian's jars (apt-get install openjdk-17-jdk-headless junit5 "
            "libgoogle-gson-java libjts-java), or point JAVA_LIB at a folder holding them")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "needs_display: the test opens Qt/napari windows (also found from "
                            "its fixtures: " + ", ".join(sorted(DISPLAY_FIXTURES)) + ")")
    config.addinivalue_line("markers", "needs_jdk: the test compiles and runs Java with JUnit 5")


def running_in_ci() -> bool:
    """Whether the environment variable CI is set (CI=true, as .ci/run and CI services set it)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def missing_display() -> str | None:
    """Why no display is available for Qt, or None. Read at test setup, after pytest-xvfb has
    started Xvfb (it sets DISPLAY) where Xvfb is installed."""
    if not sys.platform.startswith("linux") or os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return None
    xvfb = "Xvfb is not installed" if shutil.which("Xvfb") is None else "Xvfb was not started (--no-xvfb?)"
    return f"needs a display for napari/Qt, and there is none (DISPLAY is not set, {xvfb}): {DISPLAY_HELP}"


@functools.lru_cache(maxsize=None)
def missing_jdk(path: str | None, java_lib: str | None) -> str | None:
    """Why the Java core cannot be compiled and tested here, or None (arguments: PATH and
    JAVA_LIB, so a changed environment is checked again)."""
    tools = [t for t in ("javac", "java") if shutil.which(t, path=path) is None]
    lib = Path(java_lib or "/usr/share/java")
    jars = [j for j in JAVA_JARS if not (lib / j).is_file()]
    if not tools and not jars:
        return None
    what = ([f"{', '.join(tools)} not found on PATH"] if tools else []) + (
        [f"{', '.join(jars)} not in {lib}"] if jars else [])
    return f"needs a JDK and JUnit 5 jars for the QuPath extension's core ({'; '.join(what)}): {JDK_HELP}"


def missing_requirements(item: pytest.Item) -> list[str]:
    """What ``item`` needs and this machine lacks, as sentences that say what to install."""
    fixtures = set(getattr(item, "fixturenames", ()))
    reasons = []
    by_name = item.nodeid.split("/")[-1] in DISPLAY_TESTS
    if item.get_closest_marker("needs_display") or fixtures & DISPLAY_FIXTURES or by_name:
        reasons.append(missing_display())
    if item.get_closest_marker("needs_jdk") or fixtures & JDK_FIXTURES:
        reasons.append(missing_jdk(os.environ.get("PATH"), os.environ.get("JAVA_LIB")))
    return [r for r in reasons if r]


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip a test whose display or JDK is missing, before its fixtures start Qt (a QApplication
    without a display aborts the whole run); with CI set, fail it with the same reason."""
    reasons = missing_requirements(item)
    if not reasons:
        return
    reason = "; ".join(reasons)
    if running_in_ci():
        pytest.fail(f"{reason} [CI is set, so this is a failure, not a skip]", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session", autouse=True)
def _private_cache_dir(tmp_path_factory: pytest.TempPathFactory):
    """Tests never write the user's cache dir (e.g. the model hash cache): a session folder
    unless NAPARI_DEEPLIIF_CACHE_DIR is set already (tests may still move it per test)."""
    from napari_deepliif.models.registry import CACHE_DIR_ENV

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


@pytest.fixture(scope="session")
def classmap_model_dirs(shared_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A class-map model folder (U-Net/ResNet-34 state dict + model.yaml) and its TorchScript
    twin (see tests/classmap_fixture.py): their class maps hold cells of both classes."""
    from classmap_fixture import build

    root = tmp_path_factory.mktemp("classmap")
    build(shared_dir, root / "classmap-fixture", root / "classmap-fixture-ts")
    return root / "classmap-fixture", root / "classmap-fixture-ts"


@pytest.fixture(scope="session")
def points_model_dir(shared_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A points model folder (U-Net/ResNet-34 state dict + model.yaml, see tests/points_fixture.py)."""
    from points_fixture import build

    root = tmp_path_factory.mktemp("points")
    build(shared_dir, root / "points-fixture", root / "points-fixture-ts")
    return root / "points-fixture"


@pytest.fixture
def private_model_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Model registry and cache in this test's temporary folder (never the user's)."""
    from napari_deepliif.models.registry import CACHE_DIR_ENV, CONFIG_DIR_ENV

    monkeypatch.setenv(CONFIG_DIR_ENV, str(tmp_path / "config"))
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "cache"))


def copy_model(source: Path, target: Path, **changes) -> Path:
    """A copy of the model folder ``source`` at ``target`` whose card (``model.yaml``) has
    ``changes`` applied: each field set to its value, or removed where the value is None."""
    import yaml

    shutil.copytree(source, target)
    data = yaml.safe_load((target / "model.yaml").read_text())
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    (target / "model.yaml").write_text(yaml.safe_dump(data))
    return target


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

    from napari_deepliif.models.index import EAGER_FILES, TORCHSCRIPT_FILES

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
    from napari_deepliif.models.index import CACHE_DIR_ENV, CONFIG_DIR_ENV

    config, cache = tmp_path / "config", tmp_path / "cache"
    monkeypatch.setenv(CONFIG_DIR_ENV, str(config))
    monkeypatch.setenv(CACHE_DIR_ENV, str(cache))
    return config, cache


@pytest.fixture(scope="session")
def translate_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A translate-then-segment model folder (a CycleGAN ResnetGenerator ``latest_net_G_A.pth``
    with random weights + model.yaml; see tests/translate_fixture.py)."""
    from translate_fixture import build

    folder = tmp_path_factory.mktemp("translate") / "translate-fixture"
    build(folder)
    return folder
