"""Screenshot of a points model's result in a real napari window, for docs/point-detection.md.

Builds the test fixture model (tests/points_fixture.py: the published architecture, random
weights and a fitted head; not a published model) unless ``--model`` names a points folder,
finds points on the real IHC tile 22_2 and shows them as the plugin's Points layer
(:func:`napari_deepliif.widget.points_layer.show_points`; the dock widget does not run points
models yet), then saves ``docs/images/points-layer.png``. Run it on a virtual display::

    xvfb-run -a -s "-screen 0 1600x1000x24" env PYTHONPATH=src python scripts/screenshot_points.py
"""

from __future__ import annotations

import argparse
import logging
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
    from qtpy.QtWidgets import QApplication

    from napari_deepliif.engine.engines import load_engine
    from napari_deepliif.regions.points import detect_region
    from napari_deepliif.widget.points_layer import show_points

    with tempfile.TemporaryDirectory() as tmp:
        model = args.model
        if model is None:
            model = Path(tmp) / "points-fixture"
            build(SHARED, model, Path(tmp) / "points-fixture-ts")
        ihc = np.asarray(Image.open(SHARED / "data" / "ihc" / "22_2.png").convert("RGB"))
        result = detect_region(load_engine("auto", model, device="cpu"), ihc)
        viewer = napari.Viewer(title="napari-deepliif")
        viewer.window._qt_window.resize(1500, 950)
        image = viewer.add_image(ihc, name="22_2 (IHC)", rgb=True)
        show_points(viewer, result, scale=image.scale, translate=image.translate)
        app = QApplication.instance()
        wait(app, lambda: True)
        viewer.reset_view()
        save(viewer, app, "points-layer", args.out)
        viewer.close()


if __name__ == "__main__":
    main()
