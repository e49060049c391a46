"""Slider-to-updated-layer latency of the napari widget on a 3000 x 3000 region.

The region is the real DeepLIIF Seg and Marker outputs of image 22_2 (shared/data/
deepliif-2021-outputs) tiled 6 x 6 and cut to 3000 x 3000 (thousands of cells). They are
postprocessed once and shown by the widget as after a run; then each slider is moved N times
and every move is timed end to end: slider value set -> rescore -> colormap (and, for the seg
threshold, label image) set -> Qt events processed (the canvas redrawn); the time until the
layers are set (before the redraw) is printed too, since under Xvfb the redraw is software
OpenGL (llvmpipe) and far slower than on a GPU.

Run (a real window on a virtual display)::

    xvfb-run -a env PYTHONPATH=src python benchmarks/bench_widget.py [--moves 10]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared"
OUTPUTS = SHARED / "data" / "deepliif-2021-outputs"
SIZE = 3000


def tiled(name: str) -> np.ndarray:
    """A 512 x 512 output tiled to SIZE x SIZE."""
    from PIL import Image

    with Image.open(OUTPUTS / f"22_2_{name}.png") as im:
        rgb = np.asarray(im.convert("RGB"))
    reps = -(-SIZE // rgb.shape[0])
    return np.ascontiguousarray(np.tile(rgb, (reps, reps, 1))[:SIZE, :SIZE])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moves", type=int, default=10, help="moves per slider")
    args = parser.parse_args()

    import napari
    from qtpy.QtWidgets import QApplication

    from napari_deepliif.pipeline import ScoreResult
    from napari_deepliif.postprocess import postprocess
    from napari_deepliif.widget import DeepLIIFWidget
    from napari_deepliif.widget._widget import _Run

    seg, marker = tiled("Seg"), tiled("Marker")
    start = time.perf_counter()
    post = postprocess(seg, marker, resolution="40x")
    first = time.perf_counter() - start
    viewer = napari.Viewer(show=True)
    image = viewer.add_image(tiled("IHC"), name="ihc", rgb=True)
    widget = DeepLIIFWidget(viewer)
    viewer.window.add_dock_widget(widget)
    app = QApplication.instance()
    result = ScoreResult(image.data, {"Seg": seg, "Marker": marker}, post,
                         {"engine": "deepliif", "model": "DeepLIIF 2021 outputs", "model_hash": None,
                          "version": "", "resolution": "40x"})
    widget._show((_StubName(), result), _Spec(), image, 0)
    for _ in range(20):
        app.processEvents()
    print(f"region {SIZE} x {SIZE}: {len(post.table)} cells, {post.scoring['num_total']} counted; "
          f"first postprocess {first * 1e3:.0f} ms")

    size0 = post.scoring["size_thresh"]
    plans = {
        "size_thresh": [size0 + 5 * (i % 8) for i in range(1, args.moves + 1)],
        "size_thresh_upper": [200 + 40 * i for i in range(args.moves)],
        "marker_thresh": [60 + 10 * i for i in range(args.moves)],
        "seg_thresh": [100 + 15 * i for i in range(args.moves)],
    }
    cells = next(layer for layer in viewer.layers if layer.name == "DeepLIIF outlines")  # shown; filled cells start hidden
    for key, values in plans.items():
        times, applied = [], []
        for value in values:
            before = cells.colormap
            t0 = time.perf_counter()
            widget.sliders[key].move_to(value)
            while cells.colormap is before:  # throttled: the first move applies at once
                app.processEvents()
            applied.append(time.perf_counter() - t0)
            app.processEvents()
            times.append(time.perf_counter() - t0)
            time.sleep(0.06)  # past the throttle window, as a user's separate moves
            app.processEvents()
        ms, ms_set = [t * 1e3 for t in times], [t * 1e3 for t in applied]
        print(f"{key:18s} end to end median {statistics.median(ms):6.1f} ms  max {max(ms):6.1f} ms;  "
              f"rescore + layers set median {statistics.median(ms_set):6.1f} ms  (n={len(ms)})")
    viewer.close()


class _StubName:
    """Names the engine of the precomputed outputs (the DeepLIIF 2021 release)."""

    name = "deepliif"
    model_name = "DeepLIIF 2021 outputs"
    model_hash = "n/a"


class _Spec:
    """The whole image, no ROIs."""

    rect = None
    polygons: list = []


if __name__ == "__main__":
    main()
