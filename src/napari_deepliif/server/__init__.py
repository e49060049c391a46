"""The local HTTP engine: the DeepLIIF engine behind a token-protected, size-limited API.

``napari-deepliif serve`` and the napari widget both start it with :meth:`ServerHandle.start`;
the API is described in ``docs/server.md`` and at ``/openapi.json``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from napari_deepliif.server.app import create_app
    from napari_deepliif.server.defaults import DEFAULT_HOST, DEFAULT_PORT
    from napari_deepliif.server.handle import ServerHandle
    from napari_deepliif.server.security import Limits, load_or_create_token, token_path

# Names resolve on first use, so that reading a default (the CLI's parser, the widget's port
# box) does not import the web framework.
_HOMES = {"create_app": "app", "DEFAULT_HOST": "defaults", "DEFAULT_PORT": "defaults", "ServerHandle": "handle",
          "Limits": "security", "load_or_create_token": "security", "token_path": "security"}

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "Limits", "ServerHandle", "create_app", "load_or_create_token", "token_path"]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
