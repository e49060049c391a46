"""A real HTTP server on loopback serving model archives, as Zenodo or a lab mirror would.

Files are served from a folder; under ``/slow/`` the same files trickle out (64 KiB every
20 ms), so a test can cancel a download while it is really in progress.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import shutil
import threading
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

FIXTURE_MODEL = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "models" / "deepliif-random-ngf4"
#: The top folder inside the release zip.
ARCHIVE_TOP = "DeepLIIF_Latest_Model"
SLOW_PREFIX = "/slow/"
SLOW_CHUNK = 64 * 1024
SLOW_PAUSE_S = 0.02


def build_model_zip(path: Path, files: list[str], extras: bool = True) -> str:
    """Zip ``files`` of the fixture model under ``ARCHIVE_TOP/`` like the release; return sha256."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr(f"{ARCHIVE_TOP}/", "")
        for name in files:
            zf.write(FIXTURE_MODEL / name, f"{ARCHIVE_TOP}/{name}")
        if extras:
            zf.writestr(f"{ARCHIVE_TOP}/README.txt", "not needed")
            zf.writestr(f"{ARCHIVE_TOP}/test_latest/images/x.png", b"\x89PNG not needed")
            zf.writestr(f"__MACOSX/{ARCHIVE_TOP}/._train_opt.txt", "junk")
    return hashlib.sha256(path.read_bytes()).hexdigest()


class _Handler(http.server.SimpleHTTPRequestHandler):
    def translate_path(self, path: str) -> str:
        slow = path.startswith(SLOW_PREFIX)
        self._slow = slow
        return super().translate_path("/" + path[len(SLOW_PREFIX):] if slow else path)

    def copyfile(self, source: BinaryIO, outputfile: BinaryIO) -> None:
        if not getattr(self, "_slow", False):
            shutil.copyfileobj(source, outputfile)
            return
        while chunk := source.read(SLOW_CHUNK):
            outputfile.write(chunk)
            time.sleep(SLOW_PAUSE_S)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        """Keep test output clean."""


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        """A cancelled download closes the connection mid-file: expected, not an error."""


@contextmanager
def serve_folder(root: Path) -> Iterator[str]:
    """Serve ``root`` on 127.0.0.1 until the block ends; yields the base URL."""
    server = _Server(("127.0.0.1", 0), functools.partial(_Handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
