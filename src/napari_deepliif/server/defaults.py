"""The server's default address and limits, importable without the web framework."""

from __future__ import annotations

#: Listen on this machine's loopback interface only, unless told otherwise.
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8642
DEFAULT_MAX_REQUEST_MB = 256
#: 8192 x 8192: a 40x field of about 2 x 2 mm. The reference web app stops at 3000 x 3000.
DEFAULT_MAX_PIXELS = 8192 * 8192
DEFAULT_QUEUE_SIZE = 8
