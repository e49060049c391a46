"""A model's identity by content: a short hash over its options and the bytes of its weights.

The hash (``model_hash`` in every output) covers ``train_opt.txt`` and, for each net in order
(``G1`` .. ``G4``, ``G51`` .. ``G55``), the name of the file the net is loaded from and the
sha256 of that file's bytes. So weights changed in place (same sizes) or two nets swapped give
another hash, and a copy of the same files in another folder gives the same one.

Reading a 1.5 GB net file takes seconds, so each file's sha256 is kept in a small JSON cache,
``<cache dir>/model-file-hashes.json`` (the cache dir of :mod:`napari_deepliif.models.registry`,
moved with ``NAPARI_DEEPLIIF_CACHE_DIR``), keyed by the file's absolute path and valid while
its size and ``mtime_ns`` are unchanged. A cache that cannot be read or written only costs a
re-hash; it is never an error.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Iterable
from pathlib import Path

from napari_deepliif.atomic import write_bytes
from napari_deepliif.io.checksums import sha256_file
from napari_deepliif.models.registry import cache_dir

log = logging.getLogger(__name__)

#: Name of the file-hash cache in the cache dir.
HASH_CACHE_FILE = "model-file-hashes.json"
#: Hex digits kept of the model hash (as before: 16).
HASH_LENGTH = 16

_LOCK = threading.Lock()
_MEMORY: dict[str, tuple[int, int, str]] = {}


def hash_cache_path() -> Path:
    """The JSON cache of file hashes: ``<cache dir>/model-file-hashes.json``."""
    return cache_dir() / HASH_CACHE_FILE


def _read_cache(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning("model hash cache %s is unreadable (%s); files will be hashed again", path, exc)
        return {}
    return data if isinstance(data, dict) else {}


def _write_cache(path: Path, data: dict) -> None:
    try:
        write_bytes(path, json.dumps(data).encode("utf-8"))
    except OSError as exc:
        log.warning("cannot write the model hash cache %s (%s); files will be hashed again next time", path, exc)


def files_sha256(paths: Iterable[Path]) -> list[str]:
    """The sha256 (hex) of the bytes of each path, from the cache while the file's size and
    mtime hold; the cache is read and written once."""
    paths = [Path(p).resolve() for p in paths]
    stats = [p.stat() for p in paths]
    keys = [str(p) for p in paths]
    with _LOCK:
        hit = [_MEMORY.get(k) for k in keys]
        if all(h is not None and h[:2] == (s.st_size, s.st_mtime_ns) for h, s in zip(hit, stats)):
            return [h[2] for h in hit]
        cache_path = hash_cache_path()
        cache = _read_cache(cache_path)
        changed = False
        result = []
        for path, key, st in zip(paths, keys, stats):
            entry = cache.get(key)
            if (isinstance(entry, dict) and entry.get("size") == st.st_size
                    and entry.get("mtime_ns") == st.st_mtime_ns and isinstance(entry.get("sha256"), str)):
                sha = entry["sha256"]
            else:
                log.info("hashing %s (%.0f MB)", path, st.st_size / 1e6)
                sha = sha256_file(path)
                after = path.stat()
                if (after.st_size, after.st_mtime_ns) == (st.st_size, st.st_mtime_ns):
                    cache[key] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": sha}
                    changed = True
            _MEMORY[key] = (st.st_size, st.st_mtime_ns, sha)
            result.append(sha)
        if changed:
            _write_cache(cache_path, cache)
        return result


def content_hash(options_file: Path, nets: Iterable[tuple[str, Path]]) -> str:
    """The short model hash over ``options_file`` and each ``(net, file)`` in order.

    Parameters
    ----------
    options_file : Path
        ``train_opt.txt``.
    nets : iterable of (str, Path)
        Each net's name (``G1`` ...) and the file it is loaded from.

    Returns
    -------
    str
        The first 16 hex digits of a sha256.
    """
    nets = list(nets)
    digest = hashlib.sha256(Path(options_file).read_bytes())
    for (name, path), sha in zip(nets, files_sha256([p for _, p in nets])):
        digest.update(f"\n{name}:{Path(path).name}:{sha}".encode())
    return digest.hexdigest()[:HASH_LENGTH]
