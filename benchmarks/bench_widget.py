"""Slider-to-updated-layer latency of the napari widget on a 3000 x 3000 region.

The region is the real DeepLIIF Seg and Marker outputs of image 22_2 (shared/data/
deepliif-2021-outputs) tiled and cut to 3000 x 3000 (thousands of cells; ``--size`` for
another side). They are postprocessed once and shown by the widget as after a run; then each
slider is moved N times and every move is timed end to end: slider value set -> rescore ->
colormap (and, for the seg threshold, label image) set -> Qt events processed (the canvas
redrawn); the time until the layers are set (before the redraw) is printed too, since under
Xvfb the redraw is software OpenGL (llvmpipe) and far slower than on a GPU. Also printed: the
longest stretch in each move during which the GUI thread could not handle input (on areas over
16 MP a seg threshold move finds the cells in a worker thread, so this stays short). Medians
are over the moves that changed some cell's colour; moves that changed none (only the score
panel is updated) are counted apart. Last, the floor any update pays: a redraw with nothing
changed, and a slider repaint alone.

The napari window is set to ``--window`` (default 1920 x 1080, a common desktop; the canvas
is what napari's docks and this widget leave of it) and the region fills the canvas, as
after opening it: the canvas size sets both how many label pixels napari re-maps and how
long a software-rendered frame takes.

Run (a real window on a virtual display at least as big as the window)::

    xvfb-run -a -s "-screen 0 1920x1080x24" env PYTHONPATH=src python benchmarks/bench_widget.py [--moves 20] [--size 3000]
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


def tiled(name: str, size: int = SIZE) -> np.ndarray:
    """A 512 x 512 output tiled to ``size`` x ``size``."""
    from PIL import Image

    with Image.open(OUTPUTS / f"22_2_{name}.png") as im:
        rgb = np.asarray(im.convert("RGB"))
    reps = -(-size // rgb.shape[0])
    return np.ascontiguousarray(np.tile(rgb, (reps, reps, 1))[:size, :size])


def crossing(values: np.ndarray, moves: int, start: float, stop: float) -> list[int]:
    """``moves`` thresholds, each a different one of the cells' distinct ``values`` (taken
    from the ``start`` to the ``stop`` quantile of them), so every move changes some cell:
    the region repeats one tile, so most thresholds between two of its values change none."""
    distinct = np.unique(values)
    picks = np.round(np.linspace(start, stop, moves) * (len(distinct) - 1)).astype(int)
    return [int(v) for v in distinct[picks]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moves", type=int, default=10, help="moves per slider")
    parser.add_argument("--size", type=int, default=SIZE, help="side of the region (px)")
    parser.add_argument("--worker", choices=("auto", "always", "never"), default="auto",
                        help="where a seg threshold's cells are found: as the widget does (a worker thread "
                        "above 16 MP), always in a worker, or never (on the GUI thread, as before 2026-12-07)")
    parser.add_argument("--window", default="1920x1080", help="napari window size, WIDTHxHEIGHT "
                        "(the canvas is what the docks leave; the display must be at least this big)")
    args = parser.parse_args()

    import napari
    from qtpy.QtWidgets import QApplication

    from napari_deepliif.cells.postprocess import postprocess
    from napari_deepliif.regions.score import ScoreResult
    from napari_deepliif.widget import DeepLIIFWidget, _widget

    if args.worker != "auto":
        _widget.RELABEL_ON_GUI_THREAD_MAX_PX = 0 if args.worker == "always" else float("inf")

    seg, marker = tiled("Seg", args.size), tiled("Marker", args.size)
    start = time.perf_counter()
    post = postprocess(seg, marker, resolution="40x")
    first = time.perf_counter() - start
    viewer = napari.Viewer(show=True)
    image = viewer.add_image(tiled("IHC", args.size), name="ihc", rgb=True)
    widget = DeepLIIFWidget(viewer)
    viewer.window.add_dock_widget(widget)
    app = QApplication.instance()
    viewer.window._qt_window.resize(*(int(v) for v in args.window.split("x")))
    result = ScoreResult(image.data, {"Seg": seg, "Marker": marker}, post,
                         {"engine": "deepliif", "model": "DeepLIIF 2021 outputs", "model_hash": None,
                          "version": "", "resolution": "40x"})
    widget._show((_StubName(), result), _Spec(), image, 0)
    for _ in range(20):
        app.processEvents()
    viewer.reset_view()  # the whole region fills the canvas, as after opening it
    for _ in range(20):
        app.processEvents()
    native = viewer.window._qt_viewer.canvas.native.size()
    print(f"region {args.size} x {args.size}: {len(post.table)} cells, {post.scoring['num_total']} counted; "
          f"first postprocess {first * 1e3:.0f} ms; window {args.window}, canvas "
          f"{native.width()} x {native.height()} px")

    table = post.table
    plans = {
        "size_thresh": crossing(table.area, args.moves, 0.02, 0.4),
        "size_thresh_upper": crossing(table.area, args.moves, 0.995, 0.8),
        "marker_thresh": crossing(table.marker, args.moves, 0.1, 0.9),
        "seg_thresh": [100 + 15 * i for i in range(args.moves)],
    }
    cells = next(layer for layer in viewer.layers if layer.name == "DeepLIIF outlines")  # shown; filled cells start hidden
    for key, values in plans.items():
        times, applied, unchanged, stalls = [], [], [], []
        for value in values:
            before, colormap = widget.post, cells.colormap
            t0 = time.perf_counter()
            widget.sliders[key].move_to(value)
            last = time.perf_counter()
            stall = last - t0  # the longest time the GUI thread had no chance to handle input
            while widget.post is before and time.perf_counter() - t0 < 30:  # throttled: the first move applies at once
                time.sleep(0.0002)  # a large area's cells are found in a worker thread: leave it the CPU
                app.processEvents()
                stall, last = max(stall, time.perf_counter() - last), time.perf_counter()
            if widget.post is before:  # the slider was already there: nothing to time
                continue
            t_set = time.perf_counter() - t0
            app.processEvents()
            t_end = time.perf_counter() - t0
            stalls.append(max(stall, t_end - (last - t0)))
            if cells.colormap is colormap:  # no cell changed class or gating: panel only
                unchanged.append(t_end)
            else:
                applied.append(t_set)
                times.append(t_end)
            time.sleep(0.06)  # past the throttle window, as a user's separate moves
            app.processEvents()
        ms, ms_set = [t * 1e3 for t in times], [t * 1e3 for t in applied]
        line = (f"{key:18s} end to end median {statistics.median(ms):6.1f} ms  max {max(ms):6.1f} ms;  "
                f"rescore + layers set median {statistics.median(ms_set):6.1f} ms;  GUI thread busy at a "
                f"stretch median {statistics.median(stalls) * 1e3:6.1f} ms  (n={len(ms)})")
        if unchanged:
            line += f"; {len(unchanged)} moves changed no cell: median {statistics.median(unchanged) * 1e3:.1f} ms"
        print(line)
    redraw_floor(viewer, widget, app, args.moves)
    viewer.close()


def redraw_floor(viewer, widget, app, moves: int) -> None:
    """What a redraw costs with no layer changed (the camera nudged by 0.01%), with all
    layers shown and with all hidden, and what repainting only a moved slider costs."""
    from qtpy.QtWidgets import QSlider

    from napari_deepliif.widget.roi import viewer_camera

    camera = viewer_camera(viewer)

    def timed(step) -> float:
        times = []
        for i in range(moves):
            time.sleep(0.06)
            app.processEvents()
            t0 = time.perf_counter()
            step(i)
            app.processEvents()
            times.append(time.perf_counter() - t0)
        return statistics.median(times) * 1e3

    def nudge(i: int) -> None:
        camera.zoom = camera.zoom * (1.0001 if i % 2 else 1 / 1.0001)

    shown = [layer for layer in viewer.layers if layer.visible]
    with_layers = timed(nudge)
    for layer in shown:
        layer.visible = False
    empty = timed(nudge)
    for layer in shown:
        layer.visible = True
    slider = widget.sliders["size_thresh"].findChild(QSlider)
    slider.blockSignals(True)  # the slider repaints; nothing is re-scored
    only_slider = timed(lambda i: slider.setValue(slider.value() + (1 if i % 2 else -1)))
    slider.blockSignals(False)
    print(f"redraw with nothing changed: median {with_layers:.1f} ms with the {len(shown)} shown layers, "
          f"{empty:.1f} ms with none shown; repainting only a moved slider {only_slider:.1f} ms")


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
