"""The napari dock widget (Qt); the engine never imports this package."""

from __future__ import annotations

from napari_deepliif.widget._widget import DeepLIIFWidget

__all__ = ["DeepLIIFWidget"]
