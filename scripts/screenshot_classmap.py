"""Screenshot of the napari widget running a class-map model, for docs/model-types.md, from a
real napari window.

Builds the test fixture model (tests/classmap_fixture.py: the published architecture, random
weights and a fitted head; not a published model) unless ``--model`` names a class-map folder,
scores the mpIF DAPI panel of the paired DeepLIIF sample with it and saves
``docs/images/widget-classmap.png`` (class map and cells shown). Run it on a virtual display::

    xvfb-run -a -s "-screen 0 1600x1000x24" env PYTHONPATH=src python scripts/screenshot_classmap.py
"""

from __future__ import annotations

import sys

from screenshots import ROOT, SHARED, fixture_screenshot

sys.path.insert(0, str(ROOT / "tests"))
from classmap_fixture import build, lung_panels


def _arrange(viewer, widget, app) -> None:
    viewer.layers["DeepLIIF classes"].visible = True
    viewer.layers["DeepLIIF cells"].visible = True
    viewer.layers.selection.active = viewer.layers["DeepLIIF cells"]


if __name__ == "__main__":
    fixture_screenshot(
        __doc__.splitlines()[0], "class-map", lambda folder, tmp: build(SHARED, folder, tmp / "classmap-fixture-ts"),
        lambda: lung_panels(SHARED)[0], "DAPI (mpIF)",
        lambda widget: widget.worker is None and widget.post is not None, _arrange, "classmap")
