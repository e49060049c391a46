"""Screenshot of the napari widget running a class-map model, for docs/model-types.md, from a
real napari window.

Builds the test fixture model (tests/classmap_fixture.py: the published architecture, random
weights and a fitted head; not a published model) unless ``--model`` names a class-map folder,
scores the mpIF DAPI panel of the paired DeepLIIF sample with it and saves
``docs/images/classmap-widget.png`` (class map and cells shown). Run it on a virtual display::

    xvfb-run -a -s "-screen 0 1600x1000x24" env PYTHONPATH=src python scripts/screenshot_classmap.py
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from pathlib import Path

from screenshots import IMAGES, save, wait

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
log = logging.getLogger("screenshots")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="a class-map model folder (default: the fixture)")
    parser.add_argument("--out", type=Path, default=IMAGES, help="folder for the PNG")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    sys.path.insert(0, str(ROOT / "tests"))
    import napari
    from classmap_fixture import build, lung_panels
    from qtpy.QtWidgets import QApplication

    from napari_deepliif.models.index import CACHE_DIR_ENV, CONFIG_DIR_ENV
    from napari_deepliif.widget import DeepLIIFWidget

    with tempfile.TemporaryDirectory() as tmp:
        # the model is registered (and its hash cached) there, not for the user
        os.environ[CONFIG_DIR_ENV] = str(Path(tmp) / "config")
        os.environ[CACHE_DIR_ENV] = str(Path(tmp) / "cache")
        model = args.model
        if model is None:
            model = Path(tmp) / "classmap-fixture"
            build(SHARED, model, Path(tmp) / "classmap-fixture-ts")
        viewer = napari.Viewer(title="napari-deepliif")
        viewer.window._qt_window.resize(1500, 950)
        viewer.add_image(lung_panels(SHARED)[0], name="DAPI (mpIF)", rgb=True)
        widget = DeepLIIFWidget(viewer)
        viewer.window.add_dock_widget(widget, name="DeepLIIF IHC scoring", area="right")
        app = QApplication.instance()
        widget.engine_box.add_local(model, name=model.name)
        widget.device_combo.setCurrentText("cpu")
        widget.run()
        wait(app, lambda: widget.worker is None and widget.post is not None, timeout=600)
        viewer.layers["DeepLIIF classes"].visible = True
        viewer.layers["DeepLIIF cells"].visible = True
        viewer.layers.selection.active = viewer.layers["DeepLIIF cells"]
        viewer.reset_view()
        save(viewer, app, "classmap", args.out)
        viewer.close()


if __name__ == "__main__":
    main()
