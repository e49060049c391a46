"""The local HTTP engine: the DeepLIIF engine behind a token-protected, size-limited API.

``napari-deepliif serve`` and the napari widget both start it with :meth:`ServerHandle.start`;
the API is described in ``docs/server.md`` and at ``/openapi.json``.
"""

from __future__ import annotations

from napari_deepliif.server.app import create_app
from napari_deepliif.server.handle import DEFAULT_HOST, DEFAULT_PORT, ServerHandle
from napari_deepliif.server.security import Limits, load_or_create_token, token_path

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "Limits", "ServerHandle", "create_app", "load_or_create_token", "token_path"]
