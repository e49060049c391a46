"""Reading whole slides: TIFF-family pyramids, metadata, level choice and the tissue mask.

The slides are written here with tifffile from the real sample ROI_1.png: real tissue on the
left, glass (bright, unsaturated, slightly noisy) on the right and along the top.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
from conftest import read_rgb
from scipy import ndimage as ndi

from napari_deepliif.engine.tiling import mirror_index
from napari_deepliif.errors import InputImageError
from napari_deepliif.slides import SlideMetadataError, open_slide, tissue_mask
from napari_deepliif.slides.readers import openslide_available

SLIDE_SHAPE = (1536, 2048)
#: Glass: x at or beyond GLASS_X, and y below GLASS_Y.
GLASS_X, GLASS_Y = 1400, 192
TILE = (256, 256)


def slide_pixels(shared_dir: Path, shape: tuple[int, int] = SLIDE_SHAPE, seed: int = 0) -> np.ndarray:
    """An H x W x 3 slide: ROI_1 mirrored to fill, with glass right of GLASS_X and above GLASS_Y."""
    roi = read_rgb(shared_dir / "data" / "ihc" / "ROI_1.png")
    height, width = shape
    pixels = roi[mirror_index(roi.shape[0], height)][:, mirror_index(roi.shape[1], width)]
    rng = np.random.default_rng(seed)
    glass = np.zeros(shape, bool)
    glass[:, min(GLASS_X, width):] = True
    glass[:GLASS_Y] = True
    pixels = pixels.copy()
    pixels[glass] = rng.integers(236, 246, size=(int(glass.sum()), 1), dtype=np.uint8)
    return pixels


def _pyramid(pixels: np.ndarray, n: int) -> list[np.ndarray]:
    return [pixels[:: 2**i, :: 2**i] for i in range(n)]


def write_ome_tiff(path: Path, pixels: np.ndarray, mpp: float, levels: int = 3) -> Path:
    """OME-TIFF with SubIFD pyramid levels (1, 2, 4, ...) and PhysicalSizeX."""
    opts = dict(tile=TILE, photometric="rgb", compression=None)
    pyramid = _pyramid(pixels, levels)
    with tifffile.TiffWriter(path, ome=True) as tif:
        tif.write(pyramid[0], subifds=levels - 1, metadata={"axes": "YXS", "PhysicalSizeX": mpp, "PhysicalSizeY": mpp}, **opts)
        for level in pyramid[1:]:
            tif.write(level, subfiletype=1, **opts)
    return path


def write_svs(path: Path, pixels: np.ndarray, mpp: float | None, magnification: int | None) -> Path:
    """Aperio-style SVS: tiled base level, stripped thumbnail, tiled 4x level."""
    fields = [f"{pixels.shape[1]}x{pixels.shape[0]} [0,0 {pixels.shape[1]}x{pixels.shape[0]}] (256x256) RGB"]
    if magnification:
        fields.append(f"AppMag = {magnification}")
    if mpp:
        fields.append(f"MPP = {mpp}")
    description = "Aperio Image Library v12.0.15 \n" + "|".join(fields)
    opts = dict(photometric="rgb", compression=None, metadata=None)
    with tifffile.TiffWriter(path) as tif:
        tif.write(pixels, tile=TILE, description=description, **opts)
        tif.write(pixels[::16, ::16], description="Aperio Image Library thumbnail", **opts)
        tif.write(pixels[::4, ::4], tile=TILE, description="Aperio Image Library level", **opts)
    return path


def write_generic_tiff(path: Path, pixels: np.ndarray, mpp: float | None, levels: int = 3) -> Path:
    """Generic tiled TIFF: one page per level, resolution tags in centimetres."""
    with tifffile.TiffWriter(path) as tif:
        for i, level in enumerate(_pyramid(pixels, levels)):
            res = {} if mpp is None else {"resolution": (1e4 / (mpp * 2**i),) * 2, "resolutionunit": "CENTIMETER"}
            tif.write(level, tile=TILE, photometric="rgb", compression=None, metadata=None, subfiletype=1 if i else 0, **res)
    return path


@pytest.fixture(scope="module")
def pixels(shared_dir: Path) -> np.ndarray:
    return slide_pixels(shared_dir)


def test_ome_tiff_levels_metadata_and_lazy_reads(tmp_path: Path, pixels: np.ndarray) -> None:
    path = write_ome_tiff(tmp_path / "s.ome.tif", pixels, mpp=0.5)
    with open_slide(path) as slide:
        assert slide.backend == "tifffile"
        assert [lvl.shape for lvl in slide.levels] == [(1536, 2048), (768, 1024), (384, 512)]
        assert [lvl.downsample for lvl in slide.levels] == [1.0, 2.0, 4.0]
        assert slide.mpp == pytest.approx(0.5)
        assert "OME" in slide.pixel_size.source
        np.testing.assert_array_equal(slide.level(0)[700:900, 1300:1500], pixels[700:900, 1300:1500])
        np.testing.assert_array_equal(slide.level(2)[10:20, 5:9], pixels[::4, ::4][10:20, 5:9])


def test_svs_metadata_and_level_choice(tmp_path: Path, pixels: np.ndarray) -> None:
    path = write_svs(tmp_path / "s.svs", pixels, mpp=0.2527, magnification=40)
    with open_slide(path) as slide:
        assert slide.mpp == pytest.approx(0.2527)
        assert slide.pixel_size.magnification == 40
        assert [lvl.downsample for lvl in slide.levels] == [1.0, 4.0]
        native = slide.level_for(None)
        assert (native.level, native.factor, native.resolution) == (0, 1, "40x")
        ten = slide.level_for("10x")
        assert (ten.level, ten.factor, ten.resolution) == (1, 1, "10x")
        assert ten.mpp == pytest.approx(0.2527 * 4)
        # no 2x level: level 0 averaged 2 x 2
        twenty = slide.level_for("20x")
        assert (twenty.level, twenty.factor, twenty.downsample, twenty.resolution) == (0, 2, 2.0, "20x")
        view = slide.array(twenty)
        assert view.shape == (768, 1024, 3)
        block = pixels[400:404, 600:604].astype(float).reshape(2, 2, 2, 2, 3).mean(axis=(1, 3))
        np.testing.assert_array_equal(view[200:202, 300:302], np.rint(block).astype(np.uint8))


def test_magnification_only_gives_nominal_pixel_size(tmp_path: Path, pixels: np.ndarray) -> None:
    with open_slide(write_svs(tmp_path / "m.svs", pixels, mpp=None, magnification=20)) as slide:
        assert slide.mpp == pytest.approx(0.5)
        assert slide.level_for(None).resolution == "20x"


def test_generic_tiff_resolution_tags(tmp_path: Path, pixels: np.ndarray) -> None:
    with open_slide(write_generic_tiff(tmp_path / "g.tif", pixels, mpp=1.0)) as slide:
        assert slide.mpp == pytest.approx(1.0)
        assert len(slide.levels) == 3
        assert slide.level_for(None).resolution == "10x"
        # asking for 40x on a 10x scan: level 0, with the resolution it really has
        assert slide.level_for("40x").resolution == "10x"


def test_unknown_pixel_size_says_what_to_pass(tmp_path: Path, pixels: np.ndarray, caplog) -> None:
    import logging

    path = write_generic_tiff(tmp_path / "u.tif", pixels, mpp=None)
    with open_slide(path) as slide, caplog.at_level(logging.INFO):
        with pytest.raises(SlideMetadataError, match="--mpp.*--resolution"):
            slide.level_for(None)
        choice = slide.level_for("20x")
        assert (choice.level, choice.resolution, choice.mpp) == (0, "20x", None)
        assert "pixel size unknown" in caplog.text
    with open_slide(path, mpp=0.25) as slide:
        assert slide.pixel_size.source == "given"
        assert slide.level_for("10x").downsample == 4.0


def test_plain_png_and_missing_file(tmp_path: Path, shared_dir: Path) -> None:
    with open_slide(shared_dir / "data" / "ihc" / "ROI_1.png", mpp=0.5) as slide:
        assert slide.backend == "image" and slide.shape == (949, 1381)
        assert slide.level_for(None).resolution == "20x"
    with pytest.raises(InputImageError, match="does not exist"):
        open_slide(tmp_path / "nothing.svs")


@pytest.mark.skipif(not openslide_available(), reason="openslide-python is an optional extra")
def test_openslide_backend_matches_tifffile(tmp_path: Path, pixels: np.ndarray) -> None:
    path = write_generic_tiff(tmp_path / "o.tif", pixels, mpp=0.5)
    with open_slide(path, backend="openslide") as slide, open_slide(path) as reference:
        assert [lvl.shape for lvl in slide.levels] == [lvl.shape for lvl in reference.levels]
        np.testing.assert_array_equal(slide.level(1)[100:300, 400:700], reference.level(1)[100:300, 400:700])


def test_tissue_mask_finds_tissue_not_glass(tmp_path: Path, pixels: np.ndarray) -> None:
    with open_slide(write_ome_tiff(tmp_path / "t.ome.tif", pixels, mpp=0.5)) as slide:
        tissue = tissue_mask(slide)
    # 8 µm/px view of a 0.5 µm/px slide
    assert tissue.downsample == 16.0 and tissue.mask.shape == (96, 128)
    truth = np.zeros(tissue.mask.shape, bool)
    truth[GLASS_Y // 16 :, : GLASS_X // 16] = True
    edge = ndi.binary_dilation(truth, iterations=2) & ~ndi.binary_erosion(truth, iterations=2)
    # the sample has a few white lumens: most of the tissue, almost none of the glass
    assert tissue.mask[truth & ~edge].mean() > 0.9
    assert tissue.mask[~truth & ~edge].mean() < 0.02
    # tiles wholly on glass are skipped, tiles on tissue are not
    assert not tissue.covers(0, 128, 1600, 1728)
    assert tissue.covers(600, 728, 300, 428)
    # in pixels of a 4x downsampled view
    assert not tissue.covers(0, 32, 400, 432, downsample=4)
    assert tissue.covers(150, 182, 75, 107, downsample=4)


def test_metadata_parsers_units_and_bad_values() -> None:
    from napari_deepliif.slides import metadata

    ome = ('<OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06"><Instrument><Objective '
           'NominalMagnification="40"/></Instrument><Image><Pixels PhysicalSizeX="250" PhysicalSizeXUnit="nm"/>'
           '</Image></OME>')
    assert metadata.from_ome_xml(ome) == metadata.PixelSize(0.25, 40.0, "OME-XML")
    assert metadata.from_ome_xml("<OME") == metadata.PixelSize()
    aperio = "Aperio Image Library v11\n46000x32914 (256x256) JPEG/RGB Q=30|AppMag = 20|MPP = 0.4990"
    assert metadata.from_aperio(aperio) == metadata.PixelSize(0.499, 20.0, "Aperio")
    assert metadata.from_aperio("Aperio x|MPP = nan|AppMag = -1") == metadata.PixelSize()
    assert metadata.PixelSize(None, 10.0).effective_mpp == pytest.approx(1.0)


def test_tiff_resolution_in_inches(tmp_path: Path, pixels: np.ndarray) -> None:
    path = tmp_path / "inch.tif"
    tifffile.imwrite(path, pixels[:256, :256], photometric="rgb", metadata=None,
                     resolution=(25400 / 0.5, 25400 / 0.5), resolutionunit="INCH")
    with open_slide(path) as slide:
        assert slide.mpp == pytest.approx(0.5) and slide.pixel_size.source == "TIFF resolution tags"
    tifffile.imwrite(tmp_path / "none.tif", pixels[:256, :256], photometric="rgb", metadata=None,
                     resolution=(300, 300), resolutionunit="NONE")
    with open_slide(tmp_path / "none.tif") as slide:
        assert slide.mpp is None  # resolution without a unit says nothing about size


# ---- batch output integrity: what a resumed run finds damaged is named and recomputed --------

#: A region of the 0.5 µm/px slide scored at 20x (level 0): 1100 x 1400 px, 2 x 2 storage
#: chunks of 1024 px, across the glass edge; chunks of 2 x 2 tiles of 256 px.
REGION_20X = (600, 300, 1400, 1100)


@pytest.fixture(scope="module")
def scored(shared_dir: Path, tmp_path_factory: pytest.TempPathFactory, fit_model_dir: Path):
    """A slide scored once into a folder kept as the pristine copy: (slide, out, record)."""
    from napari_deepliif.engine.engines import load_engine
    from napari_deepliif.slides.run import score_slide

    root = tmp_path_factory.mktemp("scored")
    slide = write_ome_tiff(root / "s.ome.tif", slide_pixels(shared_dir), mpp=0.5, levels=1)
    out = root / "out"
    engine = load_engine("deepliif", fit_model_dir, device="cpu")
    record = score_slide(engine, slide, out, resolution="20x", region=REGION_20X, chunk_size=448, geojson=False)
    assert record["scoring"]["num_total"] > 50
    return slide, out, record


def _rescore(scored, tmp_path: Path, damage, fit_model_dir: Path):
    """Copy the scored folder, drop score.json (as if stopped while finding cells), apply
    ``damage(store)``, score again: (new record, store, first record)."""
    import shutil

    from napari_deepliif.engine.engines import load_engine
    from napari_deepliif.slides.run import score_slide

    slide, out, first = scored
    copy = shutil.copytree(out, tmp_path / "out")
    (copy / "score.json").unlink()
    store = copy / "result.ome.zarr"
    damage(store)
    engine = load_engine("deepliif", fit_model_dir, device="cpu")
    record = score_slide(engine, slide, copy, resolution="20x", region=REGION_20X, chunk_size=448, geojson=False)
    return record, store, first


def _boxes_and_done(store: Path) -> tuple[dict, set[int]]:
    from napari_deepliif.slides.omezarr import RunRecord

    record = RunRecord.load(store)
    return record.boxes(), record.done


@pytest.mark.parametrize("damage", ["corrupt", "deleted"])
def test_damaged_seg_chunk_is_named_and_only_its_chunks_recomputed(scored, tmp_path: Path, fit_model_dir: Path,
                                                                   caplog, damage: str) -> None:
    import logging

    import zarr

    seg_file = "Seg/0/0.1.0"

    def hurt(store: Path) -> None:
        path = store / seg_file
        if damage == "corrupt":
            path.write_bytes(b"\x02\x01" + bytes(path.stat().st_size - 2))
        else:
            path.unlink()

    with caplog.at_level(logging.WARNING):
        record, store, first = _rescore(scored, tmp_path, hurt, fit_model_dir)
    # the user is told which file, and the scores are those of the undamaged run
    assert str(store / seg_file) in caplog.text
    assert record["scoring"] == first["scoring"]
    # just the chunks whose box reaches into storage chunk (1, 0) (y from 1024, x below 1024) ran again
    boxes, done = _boxes_and_done(store)
    assert done == set(boxes)
    touching = sum(y1 > 1024 and x0 < 1024 for _, y1, x0, _ in boxes.values())
    assert 0 < touching < len(boxes)
    assert record["run"]["chunks_resumed"] == len(boxes) - touching
    pristine = zarr.open_group(str(scored[1] / "result.ome.zarr"), mode="r")
    again = zarr.open_group(str(store), mode="r")
    for name in ("Seg", "Marker"):
        np.testing.assert_array_equal(again[name]["0"][:], pristine[name]["0"][:], err_msg=name)
        np.testing.assert_array_equal(again[name]["1"][:], pristine[name]["1"][:], err_msg=f"{name} pyramid")


def test_truncated_score_json_is_scored_again(scored, tmp_path: Path, fit_model_dir: Path, caplog) -> None:
    import logging
    import shutil

    from napari_deepliif.engine.engines import load_engine
    from napari_deepliif.slides.run import score_slide

    slide, out, first = scored
    copy = shutil.copytree(out, tmp_path / "out")
    text = (copy / "score.json").read_text()
    (copy / "score.json").write_text(text[: len(text) // 2])
    engine = load_engine("deepliif", fit_model_dir, device="cpu")
    with caplog.at_level(logging.WARNING):
        record = score_slide(engine, slide, copy, resolution="20x", region=REGION_20X, chunk_size=448, geojson=False)
    assert str(copy / "score.json") in caplog.text
    assert "skipped" not in record["run"] and record["scoring"] == first["scoring"]
    assert record["run"]["tiles_run"] == 0  # every chunk was verified and resumed


@pytest.mark.parametrize("damage", ["cells.csv", "chunk"])
def test_a_finished_slide_whose_outputs_changed_is_scored_again(scored, tmp_path: Path, fit_model_dir: Path,
                                                                  caplog, damage: str) -> None:
    """score.json present: a truncated cells.csv or a corrupt chunk is noticed on a rerun, the
    slide is scored again (damaged chunks only) and its files are whole again."""
    import logging
    import shutil

    from napari_deepliif.engine.engines import load_engine
    from napari_deepliif.slides.run import score_slide

    slide, out, first = scored
    copy = shutil.copytree(out, tmp_path / "out")
    engine = load_engine("deepliif", fit_model_dir, device="cpu")
    rows = (copy / "cells.csv").read_text()
    if damage == "cells.csv":
        (copy / "cells.csv").write_text(rows[: len(rows) // 2])
    else:
        path = copy / "result.ome.zarr" / "Seg/0/0.1.0"
        path.write_bytes(b"\x02\x01" + bytes(path.stat().st_size - 2))
    with caplog.at_level(logging.WARNING):
        record = score_slide(engine, slide, copy, resolution="20x", region=REGION_20X, chunk_size=448, geojson=False)
    assert "skipped" not in record["run"] and record["scoring"] == first["scoring"]
    assert (copy / "cells.csv").read_text() == rows
    named = "cells.csv" if damage == "cells.csv" else "Seg/0/0.1.0"
    assert named in caplog.text
    if damage == "cells.csv":  # the store was intact: no tile ran again
        assert record["run"]["tiles_run"] == 0
    else:
        assert 0 < record["run"]["tiles_run"]
    # and a rerun now skips it
    again = score_slide(engine, slide, copy, resolution="20x", region=REGION_20X, chunk_size=448, geojson=False)
    assert again["run"]["skipped"]
