"""The model index shared by every front end (widget, server, CLI).

Three sources of models, looked up by name:

* the **built-in index** (:data:`BUILTIN_INDEX`): models that can be downloaded, each with a URL,
  and, once pinned, its size and SHA256 (see ``docs/models.md``);
* **downloaded models**: unpacked under ``<cache dir>/models/<name>/`` by :func:`fetch_model`;
  the hash and size of each download are recorded in the user's registry file;
* **local folders** registered with :func:`add_model` (offline machines, own models).

A path to an existing folder can be used wherever a name is accepted. The registry is a JSON
file in the user config dir. Both dirs can be moved with the environment variables
:data:`CONFIG_DIR_ENV` and :data:`CACHE_DIR_ENV`.

This module is the one front ends import; it gathers:

* :mod:`napari_deepliif.models.catalog`: the built-in index, the listing and name resolution;
* :mod:`napari_deepliif.models.install`: fetch (download with pooch), add, remove and verify;
* :mod:`napari_deepliif.models.registry`: the dirs, the registry file and the model folder
  layout;
* :data:`ProgressCallback` from :mod:`napari_deepliif.models.download`.

Every public function takes an optional ``index=`` mapping, so tests and other deployments can
use another index (e.g. one read with :func:`index_from_json`) without touching the defaults.
"""

from __future__ import annotations

from napari_deepliif.models.catalog import (
    BUILTIN_INDEX,
    INDEX_ENV,
    IndexEntry,
    ModelEntry,
    entry_as_dict,
    get_model,
    index_from_json,
    list_models,
    resolve_model,
)
from napari_deepliif.models.download import ProgressCallback
from napari_deepliif.models.install import (
    VerifyReport,
    add_model,
    fetch_model,
    remove_model,
    verify_model,
)
from napari_deepliif.models.registry import (
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
    model_format,
    models_dir,
    registry_path,
)

__all__ = [
    # from model_catalog
    "BUILTIN_INDEX",
    "INDEX_ENV",
    "IndexEntry",
    "ModelEntry",
    "entry_as_dict",
    "get_model",
    "index_from_json",
    "list_models",
    "resolve_model",
    # from model_install
    "VerifyReport",
    "add_model",
    "fetch_model",
    "remove_model",
    "verify_model",
    # from model_registry and model_download
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
