"""TIFF colour spaces and damaged TIFFs: CMYK and palette images read as the RGB they show,
missing tiles refused. The TIFFs are written here with tifffile from the real IHC image 22_2."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from napari_deepliif.errors import InputImageError
from napari_deepliif.io.image_input import read_image
from napari_deepliif.rgb import check_rgb
from napari_deepliif.slides import open_slide


@pytest.fixture(scope="module")
def ihc(shared_dir: Path) -> Image.Image:
    with Image.open(shared_dir / "data" / "ihc" / "22_2.png") as im:
        return im.convert("RGB")


def _cmyk_with_black(rgb: Image.Image) -> np.ndarray:
    """A CMYK separation with black (K = min(C, M, Y), taken out of C, M, Y), as a print
    workflow or a scanner's CMYK export holds it."""
    cmy = 255 - np.asarray(rgb).astype(np.int16)
    black = cmy.min(axis=2, keepdims=True)
    return np.concatenate([cmy - black, black], axis=2).astype(np.uint8)


def _read_both(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The image as read_image + check_rgb give it, and as open_slide's level 0 gives it."""
    single = np.asarray(check_rgb(read_image(path), str(path))[:, :])
    with open_slide(path, mpp=0.25) as slide:
        level = slide.level(0)
        assert level.shape[2] == 3 and level.dtype == np.uint8
        whole = np.asarray(level[0 : level.shape[0], 0 : level.shape[1]])
    return single, whole


@pytest.mark.parametrize("black", [False, True], ids=["no-black", "with-black"])
def test_cmyk_tiff_reads_as_its_rgb(ihc: Image.Image, tmp_path: Path, black: bool) -> None:
    cmyk = _cmyk_with_black(ihc) if black else np.asarray(ihc.convert("CMYK"))
    expected = np.asarray(Image.fromarray(cmyk, "CMYK").convert("RGB"))  # Pillow's conversion
    if not black:
        np.testing.assert_array_equal(expected, np.asarray(ihc))
    path = tmp_path / "cmyk.tif"
    tifffile.imwrite(path, cmyk, photometric="separated", tile=(128, 128))
    for got in _read_both(path):
        np.testing.assert_array_equal(got, expected)


def test_palette_tiff_reads_as_its_rgb(ihc: Image.Image, tmp_path: Path) -> None:
    indexed = ihc.quantize(256)
    colormap = np.asarray(indexed.getpalette()[:768], np.uint16).reshape(256, 3).T * 257
    path = tmp_path / "palette.tif"
    tifffile.imwrite(path, np.asarray(indexed), photometric="palette", colormap=colormap, tile=(128, 128))
    expected = np.asarray(indexed.convert("RGB"))
    assert np.abs(expected.astype(int) - np.asarray(ihc)).mean() < 8  # still the tissue
    for got in _read_both(path):
        np.testing.assert_array_equal(got, expected)


def _drop_tile(path: Path, tile: int, page: int = 0) -> None:
    with tifffile.TiffFile(path, mode="r+b") as tif:
        tag = tif.pages[page].tags["TileByteCounts"]
        counts = list(tag.value)
        counts[tile] = 0
        tag.overwrite(tuple(counts))


def test_missing_tiles_are_refused_naming_the_file(ihc: Image.Image, tmp_path: Path) -> None:
    path = tmp_path / "holes.tif"
    tifffile.imwrite(path, np.asarray(ihc), photometric="rgb", tile=(128, 128))
    _drop_tile(path, 5)
    with pytest.raises(InputImageError, match=rf"{path}.*1 of 16 tiles .* missing"):
        read_image(path)
    with pytest.raises(InputImageError, match=rf"{path}.*missing"):
        open_slide(path, mpp=0.25)


def test_missing_tiles_of_a_pyramid_level_are_refused(ihc: Image.Image, tmp_path: Path) -> None:
    rgb = np.asarray(ihc)
    path = tmp_path / "pyramid.tif"
    with tifffile.TiffWriter(path) as tif:
        tif.write(rgb, tile=(128, 128), photometric="rgb", subifds=1, metadata=None)
        tif.write(rgb[::2, ::2], tile=(128, 128), photometric="rgb", subfiletype=1, metadata=None)
    with open_slide(path, mpp=0.25) as slide:
        assert len(slide.levels) == 2
    with tifffile.TiffFile(path, mode="r+b") as tif:
        tag = tif.pages[0].pages[0].tags["TileByteCounts"]
        tag.overwrite((0, *tag.value[1:]))
    with pytest.raises(InputImageError, match=r"level 1\).*missing"):
        open_slide(path, mpp=0.25)


def test_other_inks_are_refused(ihc: Image.Image, tmp_path: Path) -> None:
    path = tmp_path / "inks.tif"
    five = np.concatenate([np.asarray(ihc.convert("CMYK")), np.asarray(ihc)[..., :1]], axis=2)
    tifffile.imwrite(path, five, photometric="separated", extratags=[(332, "H", 1, 2, True)])
    with pytest.raises(InputImageError, match="CMYK"):
        read_image(path)
