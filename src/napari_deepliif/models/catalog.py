"""The models every front end can name: the download index, the listing, name resolution.

Three sources of models, looked up by name:

* the **built-in index** (:data:`BUILTIN_INDEX`): models that can be downloaded, each with a URL,
  and, once pinned, its size and SHA256 (see ``docs/models.md``);
* **downloaded models**: unpacked under ``<cache dir>/models/<name>/`` by
  :func:`napari_deepliif.models.install.fetch_model`; the hash and size of each download are
  recorded in the user's registry file;
* **local folders** registered with :func:`napari_deepliif.models.install.add_model` (offline
  machines, own models).

:func:`list_models` lists all three and :func:`resolve_model` turns a name, or a path to an
existing folder, into the folder the engine loads. Changing what is installed lives in
:mod:`napari_deepliif.models.install`; front ends import both through
:mod:`napari_deepliif.models.index`.

Every public function takes an optional ``index=`` mapping, so tests and other deployments can
use another index (e.g. one read with :func:`index_from_json`) without touching the defaults;
without one, :data:`INDEX_ENV` can name a JSON index that extends the built-in one for every
front end at once.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from napari_deepliif.errors import ModelError
from napari_deepliif.models.registry import (
    download_dir,
    folder_size,
    load_registry,
    model_format,
)

#: Environment variable naming a JSON index whose entries are added to the built-in one (e.g.
#: a lab's mirror of the weights on its own server); format of :func:`index_from_json`.
INDEX_ENV = "NAPARI_DEEPLIIF_MODEL_INDEX"

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


def _normalise_sha256(value: object) -> str | None:
    """``value`` as 64 lowercase hex digits (a ``sha256:`` prefix dropped); None if empty."""
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
    """Raise :class:`ModelError` unless ``name`` is a valid model name."""
    if not _NAME_RE.match(name):
        raise ModelError(
            f"bad model name {name!r}: use letters, digits, '.', '_' and '-' "
            "(at most 64, starting with a letter or digit)"
        )


# ---- public API --------------------------------------------------------------------------


def _index(index: Mapping[str, IndexEntry] | None) -> Mapping[str, IndexEntry]:
    """The ``index=`` argument; when None, :data:`BUILTIN_INDEX` with the entries of the JSON
    file named by ``NAPARI_DEEPLIIF_MODEL_INDEX`` (if set) added or replacing same-named ones."""
    if index is not None:
        return index
    extra = os.environ.get(INDEX_ENV, "").strip()
    if not extra:
        return BUILTIN_INDEX
    try:
        return {**BUILTIN_INDEX, **index_from_json(extra)}
    except ModelError as exc:
        raise ModelError(f"{exc} (named by the environment variable {INDEX_ENV}; fix or unset it)") from exc


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


def entry_as_dict(entry: ModelEntry) -> dict[str, Any]:
    """A JSON-ready form of a :class:`ModelEntry` (paths as strings)."""
    data = asdict(entry)
    data["path"] = None if entry.path is None else str(entry.path)
    return data
