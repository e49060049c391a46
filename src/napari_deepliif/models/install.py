"""Changing and checking what is installed: fetch (download with pooch), add, remove, verify.

* :func:`fetch_model` downloads a model from the index (or any URL) with
  :func:`napari_deepliif.models.download.download_and_unpack`, checks its SHA256 and records the
  download in the user's registry file;
* :func:`add_model` registers a local model folder under a name; :func:`remove_model` forgets
  one, or deletes a downloaded model's folder;
* :func:`verify_model` checks that a model's files are there and that it loads.

Names are looked up with :mod:`napari_deepliif.models.catalog`; front ends import these functions
through :mod:`napari_deepliif.models.index`.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from napari_deepliif.errors import ModelError
from napari_deepliif.models.catalog import (
    IndexEntry,
    ModelEntry,
    _check_name,
    _index,
    _normalise_sha256,
    get_model,
    resolve_model,
)
from napari_deepliif.models.download import ProgressCallback, download_and_unpack
from napari_deepliif.models.registry import (
    CARD_FILE,
    NET_IDS,
    OPTIONS_FILE,
    download_dir,
    load_registry,
    missing_files,
    model_format,
    record_download,
    record_local,
    registry_path,
    save_registry,
)

logger = logging.getLogger(__name__)


@dataclass
class VerifyReport:
    """Result of :func:`verify_model`.

    Attributes
    ----------
    name : str
        The name or path that was verified.
    path : pathlib.Path
        The model folder.
    format : str or None
        ``"torchscript"`` (all ``G*.pt``), ``"eager"`` (all ``latest_net_G*.pth`` and not all
        ``.pt``), or None when neither set is complete.
    missing : list of str
        Files needed by the engine that are absent (``train_opt.txt`` and the nets of the most
        complete format).
    loaded : bool or None
        True when :func:`napari_deepliif.models.loader.load_model` loaded the model, False when it
        failed, None when it was not tried (files missing, or no loader installed).
    messages : list of str
        Human-readable findings, one per line.
    """

    name: str
    path: Path
    format: str | None
    missing: list[str] = field(default_factory=list)
    loaded: bool | None = None
    messages: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every file is present and the model loaded (or no loader could be tried)."""
        return not self.missing and self.format is not None and self.loaded is not False


def add_model(
    name: str,
    path: str | Path,
    *,
    replace: bool = False,
    index: Mapping[str, IndexEntry] | None = None,
) -> ModelEntry:
    """Register a local model folder under a name (for offline use or own models).

    Parameters
    ----------
    name : str
        New name; must not be an indexed or downloaded model's name.
    path : str or pathlib.Path
        Folder holding ``train_opt.txt`` and the nine nets (``G*.pt`` or ``latest_net_G*.pth``).
    replace : bool
        Allow replacing a local model already registered under ``name``.
    index : mapping of str to IndexEntry, optional
        The download index; :data:`BUILTIN_INDEX` when None.

    Returns
    -------
    ModelEntry
        The new row of :func:`list_models`.

    Raises
    ------
    ModelError
        Bad or taken name, missing folder, or a folder that is not a complete model.
    """
    _check_name(name)
    idx = _index(index)
    registry = load_registry()
    if name in idx or name in registry["downloaded"]:
        raise ModelError(f"{name!r} is the name of a downloadable model: choose another name")
    if name in registry["local"] and not replace:
        raise ModelError(
            f"a local model named {name!r} is already registered at "
            f"{registry['local'][name]['path']} (use --replace to change it)"
        )
    folder = Path(path).expanduser().resolve()
    if not folder.is_dir():
        raise ModelError(f"model folder {folder} does not exist")
    if model_format(folder) is None:
        raise ModelError(
            f"{folder} is not a model folder: no model card ({CARD_FILE}, see docs/model-types.md), and "
            "missing " + ", ".join(missing_files(folder))
        )
    record_local(registry, name, folder)
    logger.info("registered local model %r at %s", name, folder)
    return get_model(name, index)


def remove_model(name: str, index: Mapping[str, IndexEntry] | None = None) -> None:
    """Forget a local model, or delete a downloaded model's unpacked folder.

    A local folder itself is never deleted. A downloaded model keeps its index entry (it can be
    fetched again) and its recorded hash is dropped only if it came from a non-indexed URL.

    Raises
    ------
    ModelError
        When no local or downloaded model has that name.
    """
    idx = _index(index)
    registry = load_registry()
    if name in registry["local"]:
        del registry["local"][name]
        save_registry(registry)
        logger.info("unregistered local model %r", name)
        return
    folder = download_dir(name)
    if name in registry["downloaded"] or folder.exists():
        if folder.exists():
            shutil.rmtree(folder)
            logger.info("deleted %s", folder)
        if name not in idx:
            registry["downloaded"].pop(name, None)
            save_registry(registry)
        return
    raise ModelError(f"no local or downloaded model named {name!r}")


def fetch_model(
    name: str,
    progress: ProgressCallback | None = None,
    *,
    url: str | None = None,
    sha256: str | None = None,
    force: bool = False,
    index: Mapping[str, IndexEntry] | None = None,
) -> Path:
    """Download, check and unpack a model; return its folder.

    Only ``train_opt.txt`` and the TorchScript nets (or, if the archive has none, the eager
    ``latest_net_G*.pth``) are unpacked. Nothing is kept or registered unless every step
    succeeds.

    Parameters
    ----------
    name : str
        An indexed name, or a new name when ``url`` is given.
    progress : callable, optional
        ``progress(done_bytes, total_bytes)`` during the download (``total_bytes`` None when
        unknown). Raising from it, e.g. :class:`~napari_deepliif.errors.Cancelled`, stops the
        download; the exception propagates and nothing is left behind.
    url : str, optional
        Download from this URL instead of the index's.
    sha256 : str, optional
        Expected SHA256 of the archive. Defaults to the index's, else the one recorded at this
        name's first download from the same URL. With no hash at all, the download is accepted
        and its hash recorded (see ``docs/models.md``, "Pinning the hash").
    force : bool
        Download again even if the model is installed.
    index : mapping of str to IndexEntry, optional
        The download index; :data:`BUILTIN_INDEX` when None.

    Returns
    -------
    pathlib.Path
        The unpacked model folder, ``<cache dir>/models/<name>``.

    Raises
    ------
    ModelError
        Unknown name, network failure, hash mismatch, or an archive without a model.
    """
    _check_name(name)
    idx = _index(index)
    registry = load_registry()
    if name in registry["local"]:
        raise ModelError(f"{name!r} is a local model folder: nothing to download")
    entry = idx.get(name)
    record = registry["downloaded"].get(name, {})
    if url is None:
        if entry is None:
            url = record.get("url")
        else:
            url = entry.url
    if not url:
        raise ModelError(
            f"no downloadable model named {name!r} (indexed: {', '.join(idx) or 'none'}); "
            "give a URL with --url"
        )
    expected = _normalise_sha256(sha256)
    if expected is None and entry is not None and entry.url == url:
        expected = entry.sha256
    if expected is None and record.get("url") == url:
        expected = _normalise_sha256(record.get("sha256"))

    target = download_dir(name)
    if not force and model_format(target) is not None:
        recorded = _normalise_sha256(record.get("sha256"))
        if expected is not None and recorded is not None and recorded != expected:
            raise ModelError(
                f"model {name!r} is installed from an archive with SHA256 {recorded}, not "
                f"{expected}: fetch it again with --force"
            )
        logger.info("model %r already downloaded at %s", name, target)
        return target

    result = download_and_unpack(url, target, sha256=expected, progress=progress)
    record_download(name, url, sha256=result.sha256, size=result.size, fmt=result.format)
    if expected is None:
        logger.warning(
            "model %r downloaded without a known hash; its SHA256 %s is recorded in %s and "
            "checked on later downloads (pin it in the index, see docs/models.md)",
            name,
            result.sha256,
            registry_path(),
        )
    else:
        logger.info("model %r downloaded and verified (sha256 %s)", name, result.sha256)
    return target


def verify_model(
    name_or_path: str | Path, index: Mapping[str, IndexEntry] | None = None
) -> VerifyReport:
    """Check that a model's files are there and, when a loader is installed, that it loads.

    Parameters
    ----------
    name_or_path : str or pathlib.Path
        Anything :func:`resolve_model` accepts.
    index : mapping of str to IndexEntry, optional
        The download index; :data:`BUILTIN_INDEX` when None.

    Returns
    -------
    VerifyReport
        ``report.ok`` tells whether the model is usable.

    Raises
    ------
    ModelError
        When the name cannot be resolved to a folder.
    """
    folder = resolve_model(name_or_path, index)
    fmt = model_format(folder)
    report = VerifyReport(name=str(name_or_path), path=folder, format=fmt)
    if fmt is None:
        report.missing = missing_files(folder)
        report.messages.append(f"{folder}: missing " + ", ".join(report.missing))
        return report
    if fmt == "card":
        from napari_deepliif.models.card import read_card

        try:
            card = read_card(folder)
        except ModelError as exc:
            report.loaded = False
            report.messages.append(f"model card refused: {exc}")
            return report
        report.messages.append(f"{folder}: a valid {card.type} model card; its weights are checked when the "
                               "model loads (napari-deepliif score --model FOLDER)")
        return report
    report.messages.append(f"{folder}: {OPTIONS_FILE} and all nine {fmt} nets present")
    try:
        from napari_deepliif.models.loader import load_model
    except ImportError as exc:
        if exc.name != "napari_deepliif.models.loader":  # the loader exists but is broken
            raise
        report.messages.append("no model loader installed: checked the files only")
        return report
    try:
        model = load_model(folder)
    except ModelError as exc:
        report.loaded = False
        report.messages.append(f"does not load: {exc}")
        return report
    build = getattr(model, "net", None)  # the loader builds nets lazily: build each one
    if not callable(build):
        report.loaded = True
        report.messages.append("model loads")
        return report
    for net_id in NET_IDS:
        try:
            build(f"G{net_id}")
        except ModelError as exc:
            report.loaded = False
            report.messages.append(f"G{net_id} does not load: {exc}")
    if report.loaded is None:
        report.loaded = True
        report.messages.append("all nine nets load")
    return report
