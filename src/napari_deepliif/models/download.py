"""Download a model archive with pooch, check it, and unpack only what inference needs.

Used by :func:`napari_deepliif.models.index.fetch_model`; front ends call that, not this.
Everything happens in a ``.partial-*`` folder next to the destination, which is moved into
place only when the download, the hash check and the unpacking all succeeded, and deleted
otherwise (a cancelled or failed download leaves nothing behind).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from napari_deepliif.errors import ModelError
from napari_deepliif.models.registry import MODEL_FORMATS, OPTIONS_FILE, model_format

logger = logging.getLogger(__name__)

#: ``callable(done_bytes, total_bytes)``; ``total_bytes`` is None when the server does not say.
#: Raising from it (e.g. :class:`napari_deepliif.errors.Cancelled`) stops a download.
ProgressCallback = Callable[[int, "int | None"], None]
#: Bytes read per chunk (and per progress step) while downloading.
CHUNK_SIZE = 1 << 20
#: Seconds without data before a download fails.
TIMEOUT_S = 60
_ARCHIVE = "archive.zip"
_UNPACKED = "unpacked"


@dataclass(frozen=True)
class DownloadResult:
    """What :func:`download_and_unpack` installed.

    Attributes
    ----------
    path : pathlib.Path
        The model folder.
    sha256 : str
        SHA256 of the archive (lowercase hex).
    size : int
        Archive size in bytes.
    format : str
        ``"torchscript"`` or ``"eager"``.
    members : tuple of str
        The archive members that were unpacked.
    """

    path: Path
    sha256: str
    size: int
    format: str
    members: tuple[str, ...]


class _ProgressAdapter:
    """Turns pooch's tqdm-like progress protocol into ``callback(done_bytes, total_bytes)``.

    pooch sets ``total``, calls ``update(chunk_size)`` per chunk (so the last step may
    overshoot), then ``reset()`` and ``update(total)``. Reported counts never exceed the total
    and only increase.
    """

    def __init__(self, callback: ProgressCallback) -> None:
        self.callback = callback
        self.total: int | None = None
        self.n = 0
        self._reported = 0

    def update(self, step: int) -> None:
        self.n += step
        if self.total:
            self.n = min(self.n, self.total)
        if self.n > self._reported:
            self._reported = self.n
            self.callback(self.n, self.total or None)

    def reset(self) -> None:
        self.n = 0

    def close(self) -> None:
        """Nothing to release (part of the protocol pooch calls)."""


def select_members(names: Iterable[str]) -> tuple[str, list[str]]:
    """Pick the model folder in a zip listing and the members inference needs.

    Parameters
    ----------
    names : iterable of str
        ``ZipFile.namelist()`` (``/``-separated).

    Returns
    -------
    prefix : str
        The model folder inside the archive, ``""`` or ending in ``/``.
    members : list of str
        ``train_opt.txt`` and the nine TorchScript nets, or (when the folder has no complete
        TorchScript set) the nine eager ``latest_net_G*.pth``.

    Raises
    ------
    ModelError
        When no folder holds ``train_opt.txt`` and a complete set of nets.
    """
    listed = {n for n in names if not n.startswith("__MACOSX/")}
    prefixes = sorted(
        (
            n[: -len(OPTIONS_FILE)]
            for n in listed
            if n == OPTIONS_FILE or n.endswith("/" + OPTIONS_FILE)
        ),
        key=lambda p: (p.count("/"), p),
    )
    for files in MODEL_FORMATS.values():
        for prefix in prefixes:
            if all(prefix + f in listed for f in files):
                return prefix, [prefix + OPTIONS_FILE] + [prefix + f for f in files]
    raise ModelError(
        "the archive holds no DeepLIIF model folder (train_opt.txt with G1..G4.pt and "
        "G51..G55.pt, or with latest_net_G*.pth)"
    )


class _ModelUnzip:
    """pooch processor: list the archive, then unzip only the selected members."""

    def __init__(self) -> None:
        self.prefix: str | None = None
        self.members: list[str] = []

    def __call__(self, fname: str, action: str, pooch: Any) -> list[str]:
        try:
            with zipfile.ZipFile(fname) as archive:
                self.prefix, self.members = select_members(archive.namelist())
        except zipfile.BadZipFile as exc:
            raise ModelError(f"the download is not a zip archive: {exc}") from exc
        import pooch as pooch_module

        logger.info("unpacking %d files from %s", len(self.members), fname)
        unzip = pooch_module.Unzip(members=self.members, extract_dir=_UNPACKED)
        return unzip(fname, action, pooch)


def _remove_tree(path: Path) -> None:
    try:
        shutil.rmtree(path)
    except OSError as exc:  # cleanup must not hide the error that brought us here
        logger.warning("could not delete the partial download %s: %s", path, exc)


def retrieve(url: str, path: Path, *, sha256: str | None = None, progress: ProgressCallback | None = None,
             chunk_size: int = CHUNK_SIZE, processor: Any = None) -> None:
    """Download ``url`` to the file ``path`` with pooch, checking its SHA256 when given.

    Parameters
    ----------
    url : str
        File URL (``https://``; ``http://`` for loopback tests and local mirrors).
    path : pathlib.Path
        Where the file goes; its folder must exist.
    sha256 : str, optional
        Expected SHA256 (lowercase hex); a file that does not match is deleted.
    progress : callable, optional
        ``progress(done_bytes, total_bytes)``; raising from it stops the download.
    chunk_size : int
        Bytes per read.
    processor : callable, optional
        A pooch processor run on the downloaded file.

    Raises
    ------
    ModelError
        Network failure or hash mismatch.
    """
    import pooch
    import requests

    downloader = pooch.HTTPDownloader(
        progressbar=_ProgressAdapter(progress) if progress is not None else False,
        chunk_size=chunk_size,
        timeout=TIMEOUT_S,
    )
    # pooch logs every step (and every unzipped member) to stderr at INFO; our own logger reports instead
    pooch_logger = pooch.get_logger()
    pooch_level = pooch_logger.level
    pooch_logger.setLevel(max(pooch_level, logging.WARNING))
    logger.info("downloading %s to %s", url, path)
    try:
        pooch.retrieve(url, known_hash=None if sha256 is None else f"sha256:{sha256}", fname=path.name,
                       path=path.parent, processor=processor, downloader=downloader)
    except requests.exceptions.RequestException as exc:
        raise ModelError(f"cannot download {url}: {exc}") from exc
    except ValueError as exc:
        if "known hash" not in str(exc):
            raise
        raise ModelError(
            f"the file downloaded from {url} does not have the expected SHA256 {sha256}; "
            "it was deleted and nothing was installed (a changed or corrupted file: check "
            "the URL and hash)"
        ) from exc
    finally:
        pooch_logger.setLevel(pooch_level)


def download_and_unpack(
    url: str,
    target: str | Path,
    *,
    sha256: str | None = None,
    progress: ProgressCallback | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> DownloadResult:
    """Download a model zip, check its hash, unpack the needed files to ``target``.

    Parameters
    ----------
    url : str
        Archive URL (``https://``; ``http://`` for loopback tests).
    target : str or pathlib.Path
        Model folder to create; an existing one is replaced only after full success.
    sha256 : str, optional
        Expected SHA256 (lowercase hex), checked by pooch before anything is unpacked.
    progress : callable, optional
        ``progress(done_bytes, total_bytes)``; raising from it stops the download and the
        exception propagates.
    chunk_size : int
        Bytes per read.

    Returns
    -------
    DownloadResult

    Raises
    ------
    ModelError
        Network failure, hash mismatch, or no model in the archive.
    """
    import pooch

    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".partial-{target.name}-", dir=target.parent))
    processor = _ModelUnzip()
    try:
        retrieve(url, staging / _ARCHIVE, sha256=sha256, progress=progress, chunk_size=chunk_size,
                 processor=processor)
        archive = staging / _ARCHIVE
        size = archive.stat().st_size
        digest = sha256 if sha256 is not None else pooch.file_hash(str(archive), alg="sha256")
        model_dir = staging / _UNPACKED / (processor.prefix or "")
        fmt = model_format(model_dir)
        if fmt is None:  # select_members guarantees the files; this guards the unpacking
            raise ModelError(f"unpacking {url} did not produce a complete model folder")
        previous = staging / "previous"
        if target.exists():
            os.replace(target, previous)
        try:
            os.replace(model_dir, target)
        except OSError:
            if previous.exists():
                os.replace(previous, target)
            raise
        logger.info("model unpacked to %s (%s, sha256 %s)", target, fmt, digest)
        return DownloadResult(
            path=target,
            sha256=digest,
            size=size,
            format=fmt,
            members=tuple(processor.members),
        )
    finally:
        _remove_tree(staging)
