"""Whole-slide streaming with the classical stain engine: one threshold for the whole image,
so results do not depend on the chunk size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_slides_stream import level0, slide_path  # noqa: F401 (slide_path is a fixture)

from napari_deepliif.engine import stain
from napari_deepliif.engine.engines import StainEngine
from napari_deepliif.engine.stain import STAIN_OUTPUTS, stain_threshold
from napari_deepliif.slides import open_slide
from napari_deepliif.slides.omezarr import RunRecord
from napari_deepliif.slides.stream import infer_slide

#: At 20x (level 0 of the 0.5 µm/px slide), across the glass edges (x = 700 and the top rows).
REGION_20X = (100, 0, 800, 640)




def test_stain_results_do_not_depend_on_the_chunk_size(slide_path: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(stain, "BLOCK_SIZE", 128)  # 5 x 7 blocks, each cut by the chunks below
    results = {}
    with open_slide(slide_path) as slide:
        for chunk_size in (192, 320):
            store = tmp_path / f"c{chunk_size}.ome.zarr"
            run = infer_slide(StainEngine(), slide, store, resolution="20x", region=REGION_20X,
                              chunk_size=chunk_size, tissue=False)
            assert run.chunks_run > 1
            results[chunk_size] = {name: level0(store, name) for name in STAIN_OUTPUTS}
        x, y, w, h = REGION_20X
        image = np.asarray(slide.array(slide.level_for("20x")))[y : y + h, x : x + w]
    threshold = stain_threshold(image, "20x")
    assert RunRecord.load(tmp_path / "c192.ome.zarr").settings["statistics"]["stain_threshold"] == pytest.approx(threshold)
    whole = StainEngine(threshold=threshold).infer(image, resolution="20x")
    assert (whole["Seg"] == (255, 0, 0)).all(-1).any() and (whole["Seg"] == (0, 0, 255)).all(-1).any()
    for name in STAIN_OUTPUTS:
        np.testing.assert_array_equal(results[192][name], results[320][name], err_msg=name)
        np.testing.assert_array_equal(results[192][name], whole[name], err_msg=name)


def test_a_stain_engine_threshold_is_kept(slide_path: Path, tmp_path: Path) -> None:
    store = tmp_path / "t.ome.zarr"
    with open_slide(slide_path) as slide:
        infer_slide(StainEngine(threshold=5.0), slide, store, resolution="20x", region=REGION_20X,
                    chunk_size=512, tissue=False)
    assert RunRecord.load(store).settings["statistics"] == {"stain_threshold": 5.0}
    assert not level0(store, "Seg").any()  # nothing reaches 5 OD of contrast
