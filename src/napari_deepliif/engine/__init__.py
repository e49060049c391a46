"""The engine room: models and the classical stain method turned into images (no Qt, no HTTP).

``Engine`` (DeepLIIF), ``ClassMapEngine`` (class-map models), ``StainEngine`` and
:func:`load_engine` are the public entry points; ``MODEL_TYPES`` maps a model type to its
engine; tiling, devices, networks and CPU kernels are its internals.
"""

from napari_deepliif.engine.engines import (
    DEFAULT_MODEL,
    ENGINES,
    MODEL_TYPES,
    ClassMapEngine,
    Engine,
    StainEngine,
    load_engine,
)

__all__ = ["DEFAULT_MODEL", "ENGINES", "MODEL_TYPES", "ClassMapEngine", "Engine", "StainEngine", "load_engine"]
