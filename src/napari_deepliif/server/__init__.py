"""The local HTTP engine: the DeepLIIF engine behind a token-protected, size-limited API.

``napari-deepliif serve`` and the napari widget both start it with :meth:`ServerHandle.start`;
the API is described in ``docs/server.md`` and at ``/openapi.json``.
"""

from __future__ import annotations

from .app import create_app
from .handle import DEFAULT_HOST, DEFAULT_PORT, ServerHandle
from .security import Limits, load_or_create_token, token_path

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "Limits", "ServerHandle", "create_app", "load_or_create_token", "token_path"]
