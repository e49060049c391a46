"""The model index shared by every front end (widget, server, CLI).

Three sources of models, looked up by name:

* the **built-in index** (:data:`BUILTIN_INDEX`): models that can be downloaded, each with a URL,
  and, once pinned, its size and SHA256 (see ``docs/models.md``);
* **downloaded models**: unpacked under ``<cache dir>/models/<name>/`` by :func:`fetch_model`;
  the hash and size of each download are recorded in the user's registry file;
* **local folders** registered with :func:`add_model` (offline machines, own models).

A path to an existing folder can be used wherever a name is accepted. The registry is a JSON
file in the user config dir. Both dirs can be moved with the environment variables
:data:`CONFIG_DIR_ENV` and :data:`CACHE_DIR_ENV`. The dirs, the registry file and the model
folder layout are kept in :mod:`napari_deepliif.model_registry` and re-exported here, so front
ends need only this module.

Every public function takes an optional ``index=`` mapping, so tests and other deployments can
use another index (e.g. one read with :func:`index_from_json`) without touching the defaults.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from napari_deepliif.errors import ModelError
from napari_deepliif.model_download import ProgressCallback, download_and_unpack
from napari_deepliif.model_registry import (
    APP_NAME,
    CACHE_DIR_ENV,
    CONFIG_DIR_ENV,
    EAGER_FILES,
    NET_IDS,
    OPTIONS_FILE,
    REGISTRY_FILE,
    REGISTRY_SCHEMA,
    TORCHSCRIPT_FILES,
    cache_dir,
    config_dir,
    download_dir,
    folder_size,
    load_registry,
    missing_files,
    model_format,
    models_dir,
    record_download,
    record_local,
    registry_path,
    save_registry,
)

__all__ = [
    # defined here
    "BUILTIN_INDEX",
    "IndexEntry",
    "ModelEntry",
    "VerifyReport",
    "add_model",
    "entry_as_dict",
    "fetch_model",
    "get_model",
    "index_from_json",
    "list_models",
    "remove_model",
    "resolve_model",
    "verify_model",
    # re-exported from model_registry and model_download
    "APP_NAME",
    "CACHE_DIR_ENV",
    "CONFIG_DIR_ENV",
    "EAGER_FILES",
    "NET_IDS",
    "OPTIONS_FILE",
    "REGISTRY_FILE",
    "REGISTRY_SCHEMA",
    "TORCHSCRIPT_FILES",
    "ProgressCallback",
    "cache_dir",
    "config_dir",
    "download_dir",
    "model_format",
    "models_dir",
    "registry_path",
]

logger = logging.getLogger(__name__)

#: A model name: letters, digits, ``.``, ``_`` and ``-``, starting with a letter or digit.
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class IndexEntry:
    """A downloadable model.

    Parameters
    ----------
    name : str
        Name used by every front end (``--model NAME``).
    url : str
        HTTPS URL of a zip archive holding one model folder.
    size : int or None
        Archive size in bytes, None while not pinned.
    sha256 : str or None
        Lowercase hex SHA256 of the archive, None while not pinned.
    description : str
        One line for listings.
    """

    name: str
    url: str
    size: int | None = None
    sha256: str | None = None
    description: str = ""

    @classmethod
    def from_dict(cls, name: str, data: Mapping[str, Any]) -> IndexEntry:
        """Build an entry from its JSON form (``{"url": ..., "size": ..., "sha256": ...}``)."""
        if "url" not in data:
            raise ModelError(f"index entry {name!r} has no 'url'")
        return cls(
            name=name,
            url=str(data["url"]),
            size=None if data.get("size") is None else int(data["size"]),
            sha256=_normalise_sha256(data.get("sha256")),
            description=str(data.get("description", "")),
        )


#: The built-in index. Pin ``size`` and ``sha256`` here (docs/models.md, "Pinning the hash").
BUILTIN_INDEX: dict[str, IndexEntry] = {
    "deepliif-latest": IndexEntry(
        name="deepliif-latest",
        url="https://zenodo.org/records/4751737/files/DeepLIIF_Latest_Model.zip?download=1",
        size=None,
        sha256=None,
        description="DeepLIIF latest released model (Zenodo record 4751737, about 3 GB zip)",
    ),
}


@dataclass(frozen=True)
class ModelEntry:
    """One row of :func:`list_models`.

    Attributes
    ----------
    name : str
        Model name.
    kind : str
        ``"download"`` (from an index or fetched from a URL) or ``"local"`` (a registered folder).
    source : str
        Download URL, or the folder of a local model.
    installed : bool
        True when the model folder exists and holds a complete model.
    path : pathlib.Path or None
        Folder the engine loads from (None for a download not yet fetched).
    size : int or None
        Archive size in bytes for downloads (pinned or recorded at download), total size of
        the model files for local folders; None when unknown.
    sha256 : str or None
        SHA256 of the archive (pinned in the index or recorded at the first download).
    pinned : bool
        True when the hash comes from the index (checked on every download).
    description : str
        One line for listings.
    """

    name: str
    kind: str
    source: str
    installed: bool
    path: Path | None
    size: int | None
    sha256: str | None
    pinned: bool = False
    description: str = ""


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
        True when :func:`napari_deepliif.models.load_model` loaded the model, False when it
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



def _normalise_sha256(value: object) -> str | None:
    if value is None or value == "":
        return None
    text = str(value).strip().lower()
    if text.startswith("sha256:"):
        text = text[len("sha256:") :]
    if not re.fullmatch(r"[0-9a-f]{64}", text):
        raise ModelError(f"not a SHA256 hash (64 hex digits): {value!r}")
    return text


def index_from_json(path: str | Path) -> dict[str, IndexEntry]:
    """Read an index from a JSON file ``{"NAME": {"url": ..., "size": ..., "sha256": ...}}``.

    Parameters
    ----------
    path : str or pathlib.Path
        The JSON file.

    Returns
    -------
    dict of str to IndexEntry
        Usable as the ``index=`` argument of every function here.
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read the model index {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ModelError(f"the model index {path} is not a JSON object")
    return {name: IndexEntry.from_dict(name, entry) for name, entry in data.items()}


def _check_name(name: str) -> None:
    if not _NAME_RE.match(name):
        raise ModelError(
            f"bad model name {name!r}: use letters, digits, '.', '_' and '-' "
            "(at most 64, starting with a letter or digit)"
        )


# ---- public API --------------------------------------------------------------------------


def _index(index: Mapping[str, IndexEntry] | None) -> Mapping[str, IndexEntry]:
    return BUILTIN_INDEX if index is None else index


def list_models(index: Mapping[str, IndexEntry] | None = None) -> list[ModelEntry]:
    """Every model the front ends can offer: indexed, downloaded and local ones.

    Parameters
    ----------
    index : mapping of str to IndexEntry, optional
        The download index; :data:`BUILTIN_INDEX` when None.

    Returns
    -------
    list of ModelEntry
        Indexed models first (in index order), then models fetched from other URLs, then
        local folders (sorted by name).
    """
    idx = _index(index)
    registry = load_registry()
    downloaded: dict[str, Any] = registry["downloaded"]
    entries: list[ModelEntry] = []
    names = list(idx) + sorted(n for n in downloaded if n not in idx)
    for name in names:
        entry = idx.get(name)
        record = downloaded.get(name, {})
        folder = download_dir(name)
        installed = model_format(folder) is not None
        url = entry.url if entry else str(record.get("url", ""))
        # a record made from another URL says nothing about this entry's archive
        same_source = record.get("url") == url
        entries.append(
            ModelEntry(
                name=name,
                kind="download",
                source=url,
                installed=installed,
                path=folder if installed else None,
                size=(entry.size if entry and entry.size else None)
                or (record.get("size") if same_source else None),
                sha256=(entry.sha256 if entry else None)
                or (record.get("sha256") if same_source else None),
                pinned=bool(entry and entry.sha256),
                description=entry.description if entry else "",
            )
        )
    for name in sorted(registry["local"]):
        if name in idx or name in downloaded:
            continue
        folder = Path(registry["local"][name]["path"])
        installed = model_format(folder) is not None
        entries.append(
            ModelEntry(
                name=name,
                kind="local",
                source=str(folder),
                installed=installed,
                path=folder,
                size=folder_size(folder) if installed else None,
                sha256=None,
                description=str(registry["local"][name].get("description", "")),
            )
        )
    return entries


def get_model(name: str, index: Mapping[str, IndexEntry] | None = None) -> ModelEntry:
    """The :func:`list_models` row of one model.

    Raises
    ------
    ModelError
        When no model has that name.
    """
    for entry in list_models(index):
        if entry.name == name:
            return entry
    raise ModelError(_unknown_name_message(name, index))


def _unknown_name_message(name: str, index: Mapping[str, IndexEntry] | None) -> str:
    known = ", ".join(e.name for e in list_models(index)) or "none"
    return (
        f"no model named {name!r} and no folder at that path (known models: {known}; "
        "add a local folder with `napari-deepliif models add NAME PATH`)"
    )


def resolve_model(
    name_or_path: str | Path, index: Mapping[str, IndexEntry] | None = None
) -> Path:
    """The folder to load a model from.

    Parameters
    ----------
    name_or_path : str or pathlib.Path
        A :class:`~pathlib.Path` or a string naming an existing folder is used as is. A model
        name (indexed, downloaded or registered) maps to its folder; a bare name wins over a
        same-named folder in the current directory (write ``./NAME`` for the folder).
    index : mapping of str to IndexEntry, optional
        The download index; :data:`BUILTIN_INDEX` when None.

    Returns
    -------
    pathlib.Path
        An existing folder.

    Raises
    ------
    ModelError
        When the name is unknown, the model is not downloaded yet, or a registered folder is
        gone. The message says what to run.
    """
    if isinstance(name_or_path, Path):
        if name_or_path.is_dir():
            return name_or_path
        raise ModelError(f"model folder {name_or_path} does not exist")
    text = str(name_or_path)
    idx = _index(index)
    registry = load_registry()
    is_name = _NAME_RE.match(text) is not None
    if is_name and (text in idx or text in registry["downloaded"]):
        folder = download_dir(text)
        if model_format(folder) is not None:
            return folder
        raise ModelError(
            f"model {text!r} is not downloaded yet: run `napari-deepliif models fetch {text}`"
            + (" (about 3 GB)" if text == "deepliif-latest" else "")
            + ", or use a local model folder (`napari-deepliif models add NAME PATH`, or pass "
            "the folder's path)"
        )
    if is_name and text in registry["local"]:
        folder = Path(registry["local"][text]["path"])
        if folder.is_dir():
            return folder
        raise ModelError(
            f"model {text!r} is registered at {folder}, which no longer exists: "
            f"register it again with `napari-deepliif models add --replace {text} PATH`"
        )
    path = Path(text).expanduser()
    if path.is_dir():
        return path
    raise ModelError(_unknown_name_message(text, index))


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
            f"{folder} is not a DeepLIIF model folder: missing "
            + ", ".join(missing_files(folder))
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
    report.messages.append(f"{folder}: {OPTIONS_FILE} and all nine {fmt} nets present")
    try:
        from napari_deepliif.models import load_model
    except ImportError as exc:
        if exc.name != "napari_deepliif.models":  # the loader exists but is broken
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


def entry_as_dict(entry: ModelEntry) -> dict[str, Any]:
    """A JSON-ready form of a :class:`ModelEntry` (paths as strings)."""
    data = asdict(entry)
    data["path"] = None if entry.path is None else str(entry.path)
    return data
