"""Screenshot of the napari widget running a translate-then-segment model, for
docs/translate-then-segment.md, from a real napari window.

Builds the test fixture (tests/translate_fixture.py: a CycleGAN ResnetGenerator with random
weights; not a published model) unless ``--model`` names a translate folder, scores the
real Ki67 tile ``shared/fixtures/inputs/ihc_22_2.png`` with it and saves
``docs/images/widget-translate.png`` (cell outlines on the image, the virtual H&E beside it). Run it on a
virtual display::

    xvfb-run -a -s "-screen 0 1600x1000x24" env PYTHONPATH=src python scripts/screenshot_translate.py
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
    parser.add_argument("--model", type=Path, default=None, help="a translate model folder (default: the fixture)")
    parser.add_argument("--out", type=Path, default=IMAGES, help="folder for the PNG")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    sys.path.insert(0, str(ROOT / "tests"))
    import napari
    from qtpy.QtWidgets import QApplication
    from translate_fixture import build

    from napari_deepliif.models.index import CACHE_DIR_ENV, CONFIG_DIR_ENV
    from napari_deepliif.widget import DeepLIIFWidget

    with tempfile.TemporaryDirectory() as tmp:
        # the model is registered (and its hash cached) there, not for the user
        os.environ[CONFIG_DIR_ENV] = str(Path(tmp) / "config")
        os.environ[CACHE_DIR_ENV] = str(Path(tmp) / "cache")
        model = args.model
        if model is None:
            model = Path(tmp) / "translate-fixture"
            build(model)
        viewer = napari.Viewer(title="napari-deepliif")
        viewer.window._qt_window.resize(1500, 950)
        ihc = np.asarray(Image.open(SHARED / "fixtures" / "inputs" / "ihc_22_2.png").convert("RGB"))
        viewer.add_image(ihc, name="Ki67 IHC", rgb=True)
        widget = DeepLIIFWidget(viewer)
        viewer.window.add_dock_widget(widget, name="DeepLIIF IHC scoring", area="right")
        app = QApplication.instance()
        widget.engine_box.add_local(model, name=model.name)
        widget.device_combo.setCurrentText("cpu")
        widget.run()
        wait(app, lambda: widget.worker is None and widget.post is not None, timeout=600)
        virtual = viewer.layers["DeepLIIF VirtualHE"]
        virtual.visible = True
        virtual.translate = (0, ihc.shape[1] + 16)  # beside the image, for the picture only
        viewer.layers["DeepLIIF outlines"].visible = True
        viewer.layers.selection.active = viewer.layers["DeepLIIF outlines"]
        viewer.reset_view()
        save(viewer, app, "translate", args.out)
        viewer.close()


if __name__ == "__main__":
    main()
