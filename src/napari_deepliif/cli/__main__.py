"""``python -m napari_deepliif.cli``: the ``napari-deepliif`` command."""

import sys

from napari_deepliif.cli.main import main

sys.exit(main())
