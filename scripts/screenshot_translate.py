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
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from screenshots import IMAGES, open_window, private_models, run_local_model, save

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="a translate model folder (default: the fixture)")
    parser.add_argument("--out", type=Path, default=IMAGES, help="folder for the PNG")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    sys.path.insert(0, str(ROOT / "tests"))
    from translate_fixture import build

    with private_models() as tmp:
        model = args.model
        if model is None:
            model = tmp / "translate-fixture"
            build(model)
        ihc = np.asarray(Image.open(SHARED / "fixtures" / "inputs" / "ihc_22_2.png").convert("RGB"))
        viewer, widget, app = open_window(ihc, "Ki67 IHC")
        run_local_model(widget, app, model, lambda: widget.worker is None and widget.post is not None)
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
