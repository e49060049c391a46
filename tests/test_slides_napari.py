"""The whole-slide result reader in a real napari viewer: lazy multiscale layers."""

from __future__ import annotations

from pathlib import Path

import dask.array as da
import numpy as np
from test_slides import slide_pixels, write_ome_tiff

from napari_deepliif.engine.engines import load_engine
from napari_deepliif.slides.run import STORE_NAME, score_slide
from napari_deepliif.widget.slide_reader import get_reader


def test_reader_layers_open_lazily_in_napari(make_napari_viewer, shared_dir: Path, tmp_path: Path) -> None:
    from napari.layers import Layer

    slide = write_ome_tiff(tmp_path / "s.ome.tif", slide_pixels(shared_dir)[:, :1200], mpp=0.5)
    score_slide(load_engine("stain"), slide, tmp_path / "out", resolution="10x", chunk_size=384, geojson=False)
    store = str(tmp_path / "out" / STORE_NAME)
    viewer = make_napari_viewer()
    for data, meta, kind in get_reader(store)(store):
        viewer.add_layer(Layer.create(data, meta, kind))
    assert [layer.name for layer in viewer.layers] == ["result Marker", "result Seg", "result cells"]
    seg, cells = viewer.layers["result Seg"], viewer.layers["result cells"]
    assert seg.multiscale and seg.rgb and isinstance(seg.data[0], da.Array)
    assert [tuple(level.shape) for level in seg.data] == [(768, 600, 3), (384, 300, 3)]
    assert cells.multiscale and cells.data[0].dtype == np.uint32 and int(cells.data[0].max()) > 100
    np.testing.assert_allclose(seg.scale, (1.0, 1.0))  # µm: 10x is 1 µm/px
