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

import sys

import numpy as np
from PIL import Image
from screenshots import ROOT, SHARED, fixture_screenshot

sys.path.insert(0, str(ROOT / "tests"))
from points_fixture import build


def _arrange(viewer, widget, app) -> None:
    from qtpy.QtWidgets import QScrollArea

    scroll = widget.findChild(QScrollArea)
    app.processEvents()
    scroll.ensureWidgetVisible(widget.result_label)
    scroll.ensureWidgetVisible(widget.points_box)


if __name__ == "__main__":
    fixture_screenshot(
        __doc__.splitlines()[0], "points", lambda folder, tmp: build(SHARED, folder, tmp / "points-fixture-ts"),
        lambda: np.asarray(Image.open(SHARED / "data" / "ihc" / "22_2.png").convert("RGB")), "22_2 (IHC)",
        lambda widget: widget.worker is None and widget.last is not None, _arrange, "points-layer")
