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
import sys
from pathlib import Path

from screenshots import IMAGES, open_window, private_models, run_local_model, save

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
    from classmap_fixture import build, lung_panels

    with private_models() as tmp:
        model = args.model
        if model is None:
            model = tmp / "classmap-fixture"
            build(SHARED, model, tmp / "classmap-fixture-ts")
        viewer, widget, app = open_window(lung_panels(SHARED)[0], "DAPI (mpIF)")
        run_local_model(widget, app, model, lambda: widget.worker is None and widget.post is not None)
        viewer.layers["DeepLIIF classes"].visible = True
        viewer.layers["DeepLIIF cells"].visible = True
        viewer.layers.selection.active = viewer.layers["DeepLIIF cells"]
        viewer.reset_view()
        save(viewer, app, "classmap", args.out)
        viewer.close()


if __name__ == "__main__":
    main()
