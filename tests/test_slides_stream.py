"""Streaming whole-slide inference to OME-Zarr: equality with one pass, resume, tissue skip,
pyramids and the napari reader."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import zarr
from test_slides import slide_pixels, write_ome_tiff

from napari_deepliif.constants import EMPTY_TILE_COLOURS
from napari_deepliif.engine.engines import load_engine
from napari_deepliif.engine.tiling import TileGrid, disjoint_tiles
from napari_deepliif.errors import Cancelled, DeepLIIFError
from napari_deepliif.slides import open_slide
from napari_deepliif.slides.omezarr import RunRecord
from napari_deepliif.slides.stream import infer_slide
from napari_deepliif.widget.slide_reader import get_reader

#: At 10x (level 1 of the 0.5 µm/px slide): 2 x 3 tiles of 128 px across the glass edge
#: (level-1 x = 700), the second row and the last column moved flush to the region's edges
#: (they overlap their neighbours); the last column (x 732-860) lies on glass.
REGION_10X = (560, 200, 300, 200)


@pytest.fixture(scope="module")
def slide_path(shared_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_ome_tiff(tmp_path_factory.mktemp("slide") / "s.ome.tif", slide_pixels(shared_dir), mpp=0.5)


def level0(store: Path, name: str) -> np.ndarray:
    return np.moveaxis(np.asarray(zarr.open_group(str(store), mode="r")[name]["0"][:]), 0, -1)


def test_interrupted_then_resumed_run_equals_one_pass(slide_path: Path, fit_model_dir: Path, tmp_path: Path) -> None:
    engine = load_engine("deepliif", fit_model_dir, device="cpu")
    store = tmp_path / "r.ome.zarr"
    options = dict(resolution="10x", outputs="score", region=REGION_10X, chunk_size=112)

    def one_chunk_done() -> bool:
        record = RunRecord.load(store)
        return record is not None and len(record.done) >= 1

    with open_slide(slide_path) as slide:
        with pytest.raises(Cancelled):
            infer_slide(engine, slide, store, cancel=one_chunk_done, **options)
        first = RunRecord.load(store)
        assert first.done == {0} and "inference" not in first.phases
        resumed = infer_slide(engine, slide, store, **options)
        # the rerun computes only the rest; the tiles on glass never reach the network
        assert (resumed.chunks_resumed, resumed.chunks_run) == (1, 5)
        assert (resumed.tiles_run, resumed.tiles_skipped) == (3, 2)
        whole = engine.infer(slide.array(slide.level_for("10x")), resolution="10x", outputs="score",
                             region=REGION_10X)
    for name in ("Marker", "Seg"):
        np.testing.assert_array_equal(level0(store, name), whole[name], err_msg=name)
    # rerunning a finished store does nothing
    with open_slide(slide_path) as slide:
        again = infer_slide(engine, slide, store, **options)
    assert (again.chunks_run, again.chunks_resumed) == (0, 6)


@pytest.mark.parametrize("shape, tile", [((1536, 2048), 128), ((300, 200), 512), ((1000, 1001), 256), ((129, 5000), 128)])
def test_disjoint_tiles_cover_once_with_the_reference_owner(shape: tuple[int, int], tile: int) -> None:
    grid = TileGrid(*shape, tile)
    owner, ours = np.full(shape, -1), np.zeros(shape, int)
    for k, t in enumerate(grid.tiles()):  # the reference: later tiles overwrite earlier ones
        y0, y1, x0, x1 = t.write
        owner[y0:y1, x0:x1] = k
    flat = [t for row in disjoint_tiles(grid) for t in row]
    assert [(t.y, t.x) for t in flat] == [(t.y, t.x) for t in grid.tiles()]
    for k, t in enumerate(flat):
        y0, y1, x0, x1 = t.write
        assert (ours[y0:y1, x0:x1] == 0).all(), "boxes overlap"
        ours[y0:y1, x0:x1] = k + 1
    np.testing.assert_array_equal(ours - 1, owner)


def test_store_layout_pyramid_tissue_skip_and_reader(slide_path: Path, tmp_path: Path) -> None:
    store = tmp_path / "s.ome.zarr"
    with open_slide(slide_path) as slide:
        run = infer_slide(load_engine("stain"), slide, store, resolution="10x", chunk_size=384)
        with pytest.raises(DeepLIIFError, match="other settings"):
            infer_slide(load_engine("stain"), slide, store, resolution="20x", chunk_size=384)
        with pytest.raises(DeepLIIFError, match="outside"):
            infer_slide(load_engine("stain"), slide, tmp_path / "x.ome.zarr", resolution="10x", region=(900, 0, 200, 200))
    assert run.shape == (768, 1024) and run.resolution == "10x" and run.chunks_run == 6
    root = zarr.open_group(str(store), mode="r")
    assert root.attrs["napari_deepliif"]["mpp"] == pytest.approx(1.0)
    ms = root["Seg"].attrs["multiscales"][0]
    assert ms["version"] == "0.4" and [a["name"] for a in ms["axes"]] == ["c", "y", "x"]
    assert ms["datasets"][0]["coordinateTransformations"][0]["scale"] == [1.0, 1.0, 1.0]
    hema = level0(store, "Hema")
    # the chunks right of x = 768 (level 1) are glass: the empty-tile colours, never inferred
    np.testing.assert_array_equal(hema[:, 768:], np.broadcast_to(EMPTY_TILE_COLOURS["Hema"], hema[:, 768:].shape))
    assert not (hema[300:, :512] == EMPTY_TILE_COLOURS["Hema"]).all()
    # level 1 is the 2 x 2 mean of level 0
    half = np.moveaxis(np.asarray(root["Hema"]["1"][:]), 0, -1)
    assert half.shape == (384, 512, 3)
    expected = np.rint(hema[:2, :2].reshape(1, 2, 1, 2, 3).mean(axis=(1, 3)))[0, 0]
    np.testing.assert_array_equal(half[0, 0], expected)
    record = json.loads((store / "deepliif.json").read_text())
    assert record["phases"] == ["inference", "pyramid"] and sorted(record["done"]) == list(range(6))

    reader = get_reader(str(store))
    assert reader is not None and get_reader(str(slide_path)) is None
    layers = reader(str(store))
    names = [meta["name"] for _, meta, _ in layers]
    assert names == ["s Hema", "s Marker", "s Seg"]
    data, meta, kind = layers[2]
    assert kind == "image" and meta["rgb"] and meta["scale"] == (1.0, 1.0)
    assert [tuple(a.shape) for a in data] == [(768, 1024, 3), (384, 512, 3)]
    np.testing.assert_array_equal(np.asarray(data[0][100:110, 200:210]), level0(store, "Seg")[100:110, 200:210])
