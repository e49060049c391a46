"""The engine room: models and the classical stain method turned into images (no Qt, no HTTP).

``Engine`` (DeepLIIF), ``StainEngine`` and :func:`load_engine` are the public entry points;
tiling, devices, networks and CPU kernels are its internals.
"""

from napari_deepliif.engine.engines import (
    DEFAULT_MODEL,
    ENGINES,
    Engine,
    StainEngine,
    load_engine,
)

__all__ = ["DEFAULT_MODEL", "ENGINES", "Engine", "StainEngine", "load_engine"]
