"""Screenshots of the napari widget for docs/user-guide.md, from a real napari window.

Loads the bundled IHC sample, draws two ROIs, runs the classical ``stain`` engine (no weights
needed) and saves ``docs/images/widget-*.png``: the whole window after the run, the window
with the filled cells layer shown, and after a threshold change; then the compartment modes:
the sample (FHL2, a cytoplasmic and membranous stain) positive by membrane DAB OD, and a Ki67
tile of the shared data (``--nuclear``) positive by nucleus DAB OD, both with 1+/2+/3+ bins
and the H-score. Run it on a virtual display::

    xvfb-run -a -s "-screen 0 1600x1000x24" env PYTHONPATH=src python scripts/screenshots.py
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger("screenshots")
ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT / "docs" / "images"
SHARED = ROOT.parent / "shared"
#: A Ki67 tile of the shared data (documentation use; see ../shared/data/SOURCES.md).
KI67_TILE = SHARED / "data" / "ihc" / "22_2.png"


def wait(app, condition, timeout: float = 120.0) -> None:
    """Process Qt events until ``condition()`` holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the widget did not finish in time")
        app.processEvents()
        time.sleep(0.02)


def save(viewer, app, name: str, out: Path) -> None:
    """Grab the whole main window (dock widget included) as a PNG, without notification toasts
    (e.g. napari's notice about the Qt binding) that would cover the canvas."""
    from napari._qt.dialogs.qt_notification import NapariQtNotification

    for toast in viewer.window._qt_window.findChildren(NapariQtNotification):
        toast.close()
    for _ in range(10):
        app.processEvents()
    pixmap = viewer.window._qt_window.grab()
    path = out / f"widget-{name}.png"
    pixmap.save(str(path))
    log.info("wrote %s", path)


def open_window(image, name: str):
    """A napari window of the docs' size showing ``image`` (RGB) with the dock widget docked;
    returns (viewer, widget, app)."""
    import napari
    from qtpy.QtWidgets import QApplication

    from napari_deepliif.widget import DeepLIIFWidget

    viewer = napari.Viewer(title="napari-deepliif")
    viewer.window._qt_window.resize(1500, 950)
    viewer.add_image(image, name=name, rgb=True)
    widget = DeepLIIFWidget(viewer)
    viewer.window.add_dock_widget(widget, name="DeepLIIF IHC scoring", area="right")
    return viewer, widget, QApplication.instance()


@contextlib.contextmanager
def private_models() -> Iterator[Path]:
    """A temporary folder in which models are registered and hashes cached, not the user's."""
    from napari_deepliif.models.index import CACHE_DIR_ENV, CONFIG_DIR_ENV

    with tempfile.TemporaryDirectory() as tmp:
        os.environ[CONFIG_DIR_ENV] = str(Path(tmp) / "config")
        os.environ[CACHE_DIR_ENV] = str(Path(tmp) / "cache")
        yield Path(tmp)


def run_local_model(widget, app, model: Path, done) -> None:
    """Add a model folder to the widget, run it on the CPU and wait until ``done()``."""
    widget.engine_box.add_local(model, name=model.name)
    widget.device_combo.setCurrentText("cpu")
    widget.run()
    wait(app, done, timeout=600)


def fixture_screenshot(description: str, kind: str, build: Callable[[Path, Path], None], image: Callable[[], Any],
                       title: str, done: Callable[[Any], bool], arrange: Callable[[Any, Any, Any], None],
                       name: str) -> None:
    """The main of a model type's screenshot script: ``--model`` (a ``kind`` model folder;
    default: the test fixture, made by ``build(folder, scratch)``) and ``--out``; runs it
    from the widget on ``image()`` shown as ``title`` until ``done(widget)``, lets
    ``arrange(viewer, widget, app)`` set the view, and saves ``widget-<name>.png``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--model", type=Path, default=None, help=f"a {kind} model folder (default: the fixture)")
    parser.add_argument("--out", type=Path, default=IMAGES, help="folder for the PNG")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    with private_models() as tmp:
        model = args.model
        if model is None:
            model = tmp / f"{kind}-fixture"
            build(model, tmp)
        viewer, widget, app = open_window(image(), title)
        run_local_model(widget, app, model, lambda: done(widget))
        arrange(viewer, widget, app)
        viewer.reset_view()
        save(viewer, app, name, args.out)
        viewer.close()


def positive_by(widget, app, compartment: str, bins: bool = True) -> None:
    """Choose a compartment mode (with bins) and wait until the cells are measured and scored."""
    box = widget.compartment_box
    box.bins.setChecked(bins)
    box.mode.setCurrentIndex(box.mode.findData(compartment))
    wait(app, lambda: widget.post.settings.compartment == compartment and widget.relabelling is None
         and widget.score_table.isEnabled())


def run_whole(widget, app, layer_name: str) -> None:
    """Score the whole of an image layer with the stain engine."""
    widget.image_combo.setCurrentText(layer_name)
    widget.area_combo.setCurrentText("Whole image")
    widget.run()
    wait(app, lambda: widget.worker is None and widget.post is not None)


def show_compartment_panel(widget, app) -> None:
    """Scroll the dock so that the "Positive by" box and the score table are in view."""
    from qtpy.QtWidgets import QScrollArea

    scroll = widget.findChild(QScrollArea)
    app.processEvents()
    scroll.ensureWidgetVisible(widget.result_label)
    scroll.ensureWidgetVisible(widget.compartment_box)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=IMAGES, help="folder for the PNGs")
    parser.add_argument("--nuclear", type=Path, default=KI67_TILE, help="Ki67 tile for the nuclear example (default: %(default)s)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args.out.mkdir(parents=True, exist_ok=True)

    import napari
    from qtpy.QtWidgets import QApplication

    from napari_deepliif.io.sample import SAMPLE_NAME
    from napari_deepliif.widget import DeepLIIFWidget
    from napari_deepliif.widget.sample_data import ihc_sample

    viewer = napari.Viewer(title="napari-deepliif")
    viewer.window._qt_window.resize(1500, 950)
    data, kwargs = ihc_sample()[0]
    viewer.add_image(data, **kwargs)
    viewer.add_shapes([[[40, 40], [40, 250], [250, 250], [250, 40]],
                       [[300, 280], [300, 480], [480, 480], [480, 280]]],
                      shape_type="rectangle", name="ROIs", edge_color="yellow", face_color="transparent",
                      edge_width=3)
    widget = DeepLIIFWidget(viewer)
    viewer.window.add_dock_widget(widget, name="DeepLIIF IHC scoring", area="right")
    app = QApplication.instance()
    widget.engine_box.combo.setCurrentIndex(widget.engine_box.combo.findData("stain"))
    widget.area_combo.setCurrentText("ROIs of a Shapes layer")
    widget.run()
    wait(app, lambda: widget.worker is None and widget.post is not None)
    viewer.layers.selection.active = viewer.layers["DeepLIIF outlines"]
    viewer.reset_view()
    save(viewer, app, "outlines", args.out)
    viewer.layers["DeepLIIF cells"].visible = True
    save(viewer, app, "cells", args.out)
    widget.sliders["size_thresh"].move_to(widget.post.scoring["size_thresh"] + 80)
    wait(app, lambda: widget.settings["size_thresh"] != "default")
    save(viewer, app, "size-threshold", args.out)

    # membrane / cytoplasm: the sample, positive by membrane DAB OD, filled cells shown
    viewer.layers["ROIs"].visible = False
    run_whole(widget, app, SAMPLE_NAME)
    positive_by(widget, app, "membrane")
    viewer.layers["DeepLIIF cells"].visible = True
    viewer.layers["DeepLIIF cells"].opacity = 0.45
    viewer.reset_view()
    show_compartment_panel(widget, app)
    save(viewer, app, "membrane", args.out)

    # nuclear: a Ki67 tile, positive by nucleus DAB OD
    if args.nuclear.is_file():
        from napari_deepliif.io.image_input import read_image

        viewer.layers[SAMPLE_NAME].visible = False
        viewer.add_image(read_image(args.nuclear), name=f"Ki67 {args.nuclear.stem}", rgb=True)
        viewer.layers.move(len(viewer.layers) - 1, 0)  # under the DeepLIIF layers
        run_whole(widget, app, f"Ki67 {args.nuclear.stem}")
        positive_by(widget, app, "nucleus")
        viewer.reset_view()
        show_compartment_panel(widget, app)
        save(viewer, app, "nuclear", args.out)
    else:
        log.warning("%s not found: no nuclear example (give --nuclear)", args.nuclear)
    viewer.close()


if __name__ == "__main__":
    main()
