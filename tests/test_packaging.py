"""The wheel users install: manifest inside, sample inside, entry points declared."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(REPO)], check=True, capture_output=True)
    (path,) = out.glob("napari_deepliif-*.whl")
    return path


def test_wheel_ships_the_top_level_manifest_inside_the_package(wheel):
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        assert "napari_deepliif/napari.yaml" in names
        assert zf.read("napari_deepliif/napari.yaml") == (REPO / "napari.yaml").read_bytes()
        assert "napari_deepliif/data/ihc_colon_fhl2.png" in names
        entry_points = zf.read(next(n for n in names if n.endswith(".dist-info/entry_points.txt"))).decode()
        metadata = zf.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "napari-deepliif = napari_deepliif:napari.yaml" in entry_points
    assert "napari-deepliif = napari_deepliif.cli.main:main" in entry_points
    assert "Classifier: Framework :: napari" in metadata
    # no model weights or test data ever go into the wheel
    assert not any(n.endswith((".pt", ".pth", ".zarr")) for n in names)


def test_the_source_package_carries_the_manifest_for_editable_installs():
    """``pip install -e .`` serves the package from src/: its napari.yaml (a link to the
    top-level manifest) is what napari's entry point ``napari_deepliif:napari.yaml`` opens."""
    import npe2

    linked = REPO / "src" / "napari_deepliif" / "napari.yaml"
    assert linked.is_symlink() and linked.read_bytes() == (REPO / "napari.yaml").read_bytes()
    assert npe2.PluginManifest.from_file(linked).name == "napari-deepliif"


def test_bundled_sample_is_a_real_rgb_image():
    from napari_deepliif.io.sample import load_sample

    image = load_sample()
    assert image.shape == (512, 512, 3) and image.dtype.name == "uint8"
    assert image.std() > 10  # not blank
