"""Whole-slide streaming with the classical stain engine: one threshold and one set of stain
vectors for the whole image, so results do not depend on the chunk size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from test_slides_stream import level0, slide_path  # noqa: F401 (slide_path is a fixture)

from napari_deepliif.engine import stain
from napari_deepliif.engine.engines import StainEngine
from napari_deepliif.engine.stain import STAIN_OUTPUTS, stain_threshold, stain_vectors
from napari_deepliif.engine.stain_vectors import REFERENCE_VECTORS, StainVectors
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
    vectors = stain_vectors(image)
    threshold = stain_threshold(image, "20x", vectors=vectors)
    statistics = RunRecord.load(tmp_path / "c192.ome.zarr").settings["statistics"]
    assert statistics["stain_threshold"] == threshold
    assert StainVectors.from_dict(statistics["stain_vectors"]) == vectors
    whole = StainEngine(threshold=threshold, vectors=vectors).infer(image, resolution="20x")
    assert (whole["Seg"] == (255, 0, 0)).all(-1).any() and (whole["Seg"] == (0, 0, 255)).all(-1).any()
    for name in STAIN_OUTPUTS:
        np.testing.assert_array_equal(results[192][name], results[320][name], err_msg=name)
        np.testing.assert_array_equal(results[192][name], whole[name], err_msg=name)


def test_a_stain_engine_threshold_and_vectors_are_kept(slide_path: Path, tmp_path: Path) -> None:
    store = tmp_path / "t.ome.zarr"
    with open_slide(slide_path) as slide:
        infer_slide(StainEngine(threshold=5.0, vectors=REFERENCE_VECTORS), slide, store, resolution="20x",
                    region=REGION_20X, chunk_size=512, tissue=False)
    assert RunRecord.load(store).settings["statistics"] == {"stain_threshold": 5.0,
                                                            "stain_vectors": REFERENCE_VECTORS.to_dict()}
    assert not level0(store, "Seg").any()  # nothing reaches 5 OD of contrast


def test_statistics_without_vectors_mean_the_reference_matrix() -> None:
    """A run recorded before the vectors were estimated resumes with the matrix it used."""
    engine = StainEngine().with_statistics({"stain_threshold": 0.1})
    assert engine.threshold == 0.1 and engine.vectors == REFERENCE_VECTORS
