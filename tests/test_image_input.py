"""What the engine accepts as an image, and the message for what it does not."""

from __future__ import annotations

import numpy as np
import pytest

from napari_deepliif.engine.engines import Engine
from napari_deepliif.errors import InputImageError
from napari_deepliif.io.image_input import read_image
from napari_deepliif.rgb import check_rgb


@pytest.fixture(scope="module")
def engine(fit_model_dir):
    return Engine.load(fit_model_dir, device="cpu")


@pytest.mark.parametrize(
    "image, message",
    [
        (np.zeros((64, 64), np.uint8), "grayscale"),
        (np.zeros((64, 64, 1), np.uint8), "grayscale"),
        (np.zeros((64, 64, 5), np.uint8), "5 channels"),
        (np.zeros((64, 64, 3), np.uint16), "uint16.*divide by 257"),
        (np.zeros((64, 64, 3), np.float32), "float32.*0..255"),
        (np.zeros((10, 64, 3), np.uint8), "at least 16 px"),
        (np.zeros((64,), np.uint8), "H x W x 3"),
    ],
)
def test_bad_images_get_a_clear_error(engine, image, message):
    with pytest.raises(InputImageError, match=message):
        engine.infer(image)


def test_rgba_uses_the_rgb_channels(engine, ihc_small):
    rgba = np.dstack([ihc_small, np.full(ihc_small.shape[:2], 77, np.uint8)])
    assert check_rgb(rgba).shape == ihc_small.shape
    a = engine.infer(rgba, outputs=["Seg"])["Seg"]
    b = engine.infer(ihc_small, outputs=["Seg"])["Seg"]
    np.testing.assert_array_equal(a, b)


def test_16_px_image_runs(engine, ihc_small):
    tiny = np.ascontiguousarray(ihc_small[:16, :16])
    result = engine.infer(tiny, resolution="10x")
    assert result["Seg"].shape == (16, 16, 3)


def test_read_image_formats_and_errors(tmp_path, ihc_small):
    import tifffile
    from PIL import Image

    Image.fromarray(ihc_small).save(tmp_path / "a.png")
    Image.fromarray(ihc_small).save(tmp_path / "a.jpg", quality=95)
    tifffile.imwrite(tmp_path / "a.tif", ihc_small)
    tifffile.imwrite(tmp_path / "planar.tif", np.moveaxis(ihc_small, -1, 0), photometric="rgb", planarconfig="separate")
    np.testing.assert_array_equal(read_image(tmp_path / "a.png"), ihc_small)
    np.testing.assert_array_equal(read_image(tmp_path / "a.tif"), ihc_small)
    np.testing.assert_array_equal(read_image(tmp_path / "planar.tif"), ihc_small)
    assert read_image(tmp_path / "a.jpg").shape == ihc_small.shape
    with pytest.raises(InputImageError, match="does not exist"):
        read_image(tmp_path / "missing.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    with pytest.raises(InputImageError, match="cannot read"):
        read_image(tmp_path / "broken.png")
