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
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from screenshots import IMAGES, open_window, private_models, run_local_model, save

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="a points model folder (default: the fixture)")
    parser.add_argument("--out", type=Path, default=IMAGES, help="folder for the PNG")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    sys.path.insert(0, str(ROOT / "tests"))
    from points_fixture import build
    from qtpy.QtWidgets import QScrollArea

    with private_models() as tmp:
        model = args.model
        if model is None:
            model = tmp / "points-fixture"
            build(SHARED, model, tmp / "points-fixture-ts")
        ihc = np.asarray(Image.open(SHARED / "data" / "ihc" / "22_2.png").convert("RGB"))
        viewer, widget, app = open_window(ihc, "22_2 (IHC)")
        run_local_model(widget, app, model, lambda: widget.worker is None and widget.last is not None)
        scroll = widget.findChild(QScrollArea)
        app.processEvents()
        scroll.ensureWidgetVisible(widget.result_label)
        scroll.ensureWidgetVisible(widget.points_box)
        viewer.reset_view()
        save(viewer, app, "points-layer", args.out)
        viewer.close()


if __name__ == "__main__":
    main()
