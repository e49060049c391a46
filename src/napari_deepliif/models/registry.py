"""Where models live on disk: the user dirs, the registry file, and the model folder layout.

* The **config dir** holds the registry file (``models.json``): the local folders registered
  with :func:`napari_deepliif.models.index.add_model` and the URL, hash and size of every
  download.
* The **cache dir** holds downloaded models, one unpacked folder each under
  ``<cache dir>/models/<name>/``.

Both dirs can be moved with the environment variables :data:`CONFIG_DIR_ENV` and
:data:`CACHE_DIR_ENV`. Front ends use :mod:`napari_deepliif.models.index`, which looks models
up by name; this module only knows paths, the registry's JSON and which files a model folder
needs (``docs/deepliif-reference.md``, "Model release layout").
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from napari_deepliif.atomic import write_bytes
from napari_deepliif.errors import ModelError

#: Environment variable that moves the config dir (where ``models.json`` lives).
CONFIG_DIR_ENV = "NAPARI_DEEPLIIF_CONFIG_DIR"
#: Environment variable that moves the cache dir (where downloaded models are unpacked).
CACHE_DIR_ENV = "NAPARI_DEEPLIIF_CACHE_DIR"
#: Name used for the platformdirs user dirs.
APP_NAME = "napari-deepliif"
#: Name of the registry file in the config dir.
REGISTRY_FILE = "models.json"
REGISTRY_SCHEMA = 1

# ---- model folder layout (docs/deepliif-reference.md, "Model release layout") -------------
OPTIONS_FILE = "train_opt.txt"
#: The model card of a folder holding a model of another type (docs/model-types.md).
CARD_FILE = "model.yaml"
#: Network suffixes: G1..G4 translate IHC to Hema, DAPI, Lap2, Marker; G51..G55 segment.
NET_IDS: tuple[str, ...] = ("1", "2", "3", "4", "51", "52", "53", "54", "55")


def net_file_names(net: str) -> tuple[str, str]:
    """File names that may hold net ``net`` (e.g. ``G51``): TorchScript first, then eager."""
    return f"{net}.pt", f"latest_net_{net}.pth"


#: TorchScript nets, preferred by the engine.
TORCHSCRIPT_FILES: tuple[str, ...] = tuple(net_file_names(f"G{i}")[0] for i in NET_IDS)
#: Eager state dicts, used only when the TorchScript nets are absent.
EAGER_FILES: tuple[str, ...] = tuple(net_file_names(f"G{i}")[1] for i in NET_IDS)
#: The complete sets of nets a model folder can hold, most preferred first.
MODEL_FORMATS: dict[str, tuple[str, ...]] = {
    "torchscript": TORCHSCRIPT_FILES,
    "eager": EAGER_FILES,
}


# ---- dirs --------------------------------------------------------------------------------


def config_dir() -> Path:
    """Folder of the registry file: ``$NAPARI_DEEPLIIF_CONFIG_DIR`` or the user config dir."""
    env = os.environ.get(CONFIG_DIR_ENV)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_config_dir(APP_NAME))


def cache_dir() -> Path:
    """Folder of downloads: ``$NAPARI_DEEPLIIF_CACHE_DIR`` or the user cache dir."""
    env = os.environ.get(CACHE_DIR_ENV)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir(APP_NAME))


def registry_path() -> Path:
    """Path of the user's registry file (it may not exist yet)."""
    return config_dir() / REGISTRY_FILE


def models_dir() -> Path:
    """Folder under the cache dir that holds one unpacked folder per downloaded model."""
    return cache_dir() / "models"


def download_dir(name: str) -> Path:
    """Folder a downloaded model named ``name`` is (or would be) unpacked to."""
    return models_dir() / name


# ---- registry file -----------------------------------------------------------------------


def _empty_registry() -> dict[str, Any]:
    return {"schema": REGISTRY_SCHEMA, "local": {}, "downloaded": {}}


def load_registry() -> dict[str, Any]:
    """The user's registry: ``{"schema": 1, "local": {...}, "downloaded": {...}}``.

    ``local`` maps a name to ``{"path", "added"}``; ``downloaded`` maps a name to ``{"url",
    "sha256", "size", "format", "fetched"}``. A missing file reads as an empty registry.

    Raises
    ------
    ModelError
        When the file cannot be read or is not a registry.
    """
    path = registry_path()
    if not path.exists():
        return _empty_registry()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read the model registry {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ModelError(f"the model registry {path} is not a JSON object")
    registry = _empty_registry()
    for key in ("local", "downloaded"):
        section = data.get(key, {})
        if not isinstance(section, dict):
            raise ModelError(f"the model registry {path} has a bad {key!r} section")
        registry[key] = section
    return registry


def save_registry(registry: Mapping[str, Any]) -> None:
    """Write the registry file atomically (a reader never sees half a file)."""
    write_bytes(registry_path(), (json.dumps(registry, indent=2, sort_keys=True) + "\n").encode("utf-8"))


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def record_local(registry: dict[str, Any], name: str, folder: Path) -> None:
    """Register ``folder`` as the local model ``name`` in ``registry`` and save it."""
    registry["local"][name] = {"path": str(folder), "added": _now()}
    save_registry(registry)


def record_download(name: str, url: str, *, sha256: str, size: int, fmt: str) -> None:
    """Record a finished download of ``name`` in the registry file.

    Parameters
    ----------
    name : str
        Model name.
    url : str
        Where the archive came from.
    sha256 : str
        SHA256 of the archive (lowercase hex).
    size : int
        Archive size in bytes.
    fmt : str
        ``"torchscript"`` or ``"eager"`` (see :func:`model_format`).
    """
    registry = load_registry()  # re-read: the download may have taken an hour
    registry["downloaded"][name] = {
        "url": url,
        "sha256": sha256,
        "size": size,
        "format": fmt,
        "fetched": _now(),
    }
    save_registry(registry)


# ---- folder checks -----------------------------------------------------------------------


def model_format(folder: str | Path) -> str | None:
    """Which complete set of nets a folder holds.

    Parameters
    ----------
    folder : str or pathlib.Path
        A model folder.

    Returns
    -------
    str or None
        ``"torchscript"`` when ``train_opt.txt`` and all nine ``G*.pt`` are there, else
        ``"eager"`` when ``train_opt.txt`` and all nine ``latest_net_G*.pth`` are there, else
        ``"card"`` when a model card (``model.yaml``) or a bioimage.io description is there
        (checked when loaded), else None.
    """
    from napari_deepliif.models.bioimageio import rdf_file

    folder = Path(folder)
    if not (folder / OPTIONS_FILE).is_file():
        return "card" if (folder / CARD_FILE).is_file() or rdf_file(folder) is not None else None
    for fmt, files in MODEL_FORMATS.items():
        if all((folder / f).is_file() for f in files):
            return fmt
    return None


def missing_files(folder: Path) -> list[str]:
    """Files the engine needs that ``folder`` lacks: ``train_opt.txt`` and the nets of the
    most complete format."""
    missing = [] if (folder / OPTIONS_FILE).is_file() else [OPTIONS_FILE]
    candidates = [
        [f for f in files if not (folder / f).is_file()] for files in MODEL_FORMATS.values()
    ]
    return missing + min(candidates, key=len)


def folder_size(folder: Path) -> int:
    """Total size in bytes of the files directly in ``folder``."""
    return sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
