"""Screenshot of a points model run from the dock widget in a real napari window, for
docs/point-detection.md.

Builds the test fixture model (tests/points_fixture.py: the published architecture, random
weights and a fitted head; not a published model) unless ``--model`` names a points folder,
adds it as a local model folder in the widget, runs it on the real IHC tile 22_2 and saves
``docs/images/widget-points-layer.png`` (the Points layer, the Points sliders and the counts).
Run it on a virtual display::

    xvfb-run -a -s "-screen 0 1600x1000x24" env PYTHONPATH=src python scripts/screenshot_points.py
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image
from screenshots import IMAGES, save, wait

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="a points model folder (default: the fixture)")
    parser.add_argument("--out", type=Path, default=IMAGES, help="folder for the PNG")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    sys.path.insert(0, str(ROOT / "tests"))
    import napari
    from points_fixture import build
    from qtpy.QtWidgets import QApplication, QScrollArea

    from napari_deepliif.models.index import CACHE_DIR_ENV, CONFIG_DIR_ENV
    from napari_deepliif.widget import DeepLIIFWidget

    with tempfile.TemporaryDirectory() as tmp:
        # the model is registered (and its hash cached) there, not for the user
        os.environ[CONFIG_DIR_ENV] = str(Path(tmp) / "config")
        os.environ[CACHE_DIR_ENV] = str(Path(tmp) / "cache")
        model = args.model
        if model is None:
            model = Path(tmp) / "points-fixture"
            build(SHARED, model, Path(tmp) / "points-fixture-ts")
        ihc = np.asarray(Image.open(SHARED / "data" / "ihc" / "22_2.png").convert("RGB"))
        viewer = napari.Viewer(title="napari-deepliif")
        viewer.window._qt_window.resize(1500, 950)
        viewer.add_image(ihc, name="22_2 (IHC)", rgb=True)
        widget = DeepLIIFWidget(viewer)
        viewer.window.add_dock_widget(widget, name="DeepLIIF IHC scoring", area="right")
        app = QApplication.instance()
        widget.engine_box.add_local(model, name=model.name)
        widget.device_combo.setCurrentText("cpu")
        widget.run()
        wait(app, lambda: widget.worker is None and widget.last is not None, timeout=600)
        scroll = widget.findChild(QScrollArea)
        app.processEvents()
        scroll.ensureWidgetVisible(widget.result_label)
        scroll.ensureWidgetVisible(widget.points_box)
        viewer.reset_view()
        save(viewer, app, "points-layer", args.out)
        viewer.close()


if __name__ == "__main__":
    main()
