"""napari-deepliif: score IHC images with DeepLIIF, interactively and at scale.

The engine is importable without Qt or napari, and ``torch`` is imported only when a model
is loaded, so ``import napari_deepliif`` stays fast.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("napari-deepliif")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
