"""Screenshot of the napari widget running a translate-then-segment model, for
docs/translate-then-segment.md, from a real napari window.

Builds the test fixture (tests/translate_fixture.py: a CycleGAN ResnetGenerator with random
weights; not a published model) unless ``--model`` names a translate folder, scores the
real Ki67 tile ``shared/fixtures/inputs/ihc_22_2.png`` with it and saves
``docs/images/widget-translate.png`` (cell outlines on the image, the virtual H&E beside it).
Run it on a virtual display::

    xvfb-run -a -s "-screen 0 1600x1000x24" env PYTHONPATH=src python scripts/screenshot_translate.py
"""

from __future__ import annotations

import sys

import numpy as np
from PIL import Image
from screenshots import ROOT, SHARED, fixture_screenshot

sys.path.insert(0, str(ROOT / "tests"))
from translate_fixture import build

IHC = SHARED / "fixtures" / "inputs" / "ihc_22_2.png"


def _arrange(viewer, widget, app) -> None:
    virtual = viewer.layers["DeepLIIF VirtualHE"]
    virtual.visible = True
    virtual.translate = (0, viewer.layers["Ki67 IHC"].data.shape[1] + 16)  # beside the image, for the picture only
    viewer.layers["DeepLIIF outlines"].visible = True
    viewer.layers.selection.active = viewer.layers["DeepLIIF outlines"]


if __name__ == "__main__":
    fixture_screenshot(
        __doc__.splitlines()[0], "translate", lambda folder, tmp: build(folder),
        lambda: np.asarray(Image.open(IHC).convert("RGB")), "Ki67 IHC",
        lambda widget: widget.worker is None and widget.post is not None, _arrange, "translate")
