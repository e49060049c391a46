"""The OME-Zarr (NGFF 0.4) store a whole-slide run writes, and its resume record.

Layout (``docs/whole-slides.md``)::

    RESULT.ome.zarr/
        .zattrs            {"napari_deepliif": {run settings, pixel size, ...}}
        deepliif.json      resume record: chunks done, phases done (written atomically)
        tissue_mask        2-D uint8 array, the tissue mask used (attrs: downsample)
        Hema/ Marker/ Seg/ ...   one NGFF image per output: arrays 0, 1, ... of shape
                                 (3, H/2**i, W/2**i) uint8, axes c, y, x
        Seg/labels/cells/        NGFF label image: arrays 0, 1, ... (H/2**i, W/2**i) uint32

The NGFF ``multiscales`` attributes are written here (a few lines) rather than through
ome-zarr-py, which is not a dependency. Stores use the zarr v2 format, which NGFF 0.4
readers (napari-ome-zarr, QuPath, Fiji/MoBIE, vizarr) open.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from napari_deepliif.atomic import write_bytes
from napari_deepliif.errors import DeepLIIFError

log = logging.getLogger(__name__)

NGFF_VERSION = "0.4"
#: Chunk edge of every array (pixels).
CHUNK = 1024
#: Pyramid levels are added until the long side is at most this (pixels).
SMALLEST_LEVEL = 512
#: Name of the resume record inside the store.
RECORD = "deepliif.json"
#: Group of the label image under ``Seg``.
LABELS = "cells"


def n_levels(shape: tuple[int, int]) -> int:
    """Pyramid levels for an image of ``shape``: halve until the long side is at most 512."""
    count, longest = 1, max(shape)
    while longest > SMALLEST_LEVEL:
        longest = (longest + 1) // 2
        count += 1
    return count


def level_shape(shape: tuple[int, int], level: int) -> tuple[int, int]:
    """(H, W) of pyramid ``level`` (each level halves, rounding up)."""
    height, width = shape
    for _ in range(level):
        height, width = (height + 1) // 2, (width + 1) // 2
    return height, width


def multiscales(name: str, levels: int, mpp: float | None, channel: bool) -> dict:
    """NGFF 0.4 ``multiscales`` attributes; scales in µm when ``mpp`` is known, else pixels."""
    unit = {"unit": "micrometer"} if mpp else {}
    axes = [{"name": "y", "type": "space", **unit}, {"name": "x", "type": "space", **unit}]
    step = mpp or 1.0
    datasets = [{"path": str(i), "coordinateTransformations": [
        {"type": "scale", "scale": [1.0] * channel + [step * 2**i] * 2}]} for i in range(levels)]
    return {"multiscales": [{
        "version": NGFF_VERSION, "name": name,
        "axes": [{"name": "c", "type": "channel"}] * channel + axes,
        "datasets": datasets, "type": "mean" if channel else "nearest",
    }]}


def _omero_rgb(name: str) -> dict:
    colours = ("FF0000", "00FF00", "0000FF")
    return {"omero": {"name": name, "rgb": True, "channels": [
        {"label": c, "color": colour, "active": True, "window": {"start": 0, "end": 255, "min": 0, "max": 255}}
        for c, colour in zip("RGB", colours)]}}


def create_store(path: Path, names: tuple[str, ...], shape: tuple[int, int], mpp: float | None,
                 attrs: dict) -> Any:
    """A new store with empty pyramids for ``names`` (H x W RGB each) and the run's attrs."""
    import zarr

    root = zarr.open_group(str(path), mode="w", zarr_format=2)
    root.attrs["napari_deepliif"] = attrs
    levels = n_levels(shape)
    for name in names:
        group = root.create_group(name)
        for i in range(levels):
            group.create_array(str(i), shape=(3, *level_shape(shape, i)), chunks=(3, CHUNK, CHUNK),
                               dtype=np.uint8, fill_value=0)
        group.attrs.update({**multiscales(name, levels, mpp, channel=True), **_omero_rgb(name)})
    return root


def create_labels(root: Any, shape: tuple[int, int], mpp: float | None, image: str = "Seg") -> Any:
    """The (empty) ``<image>/labels/cells`` label pyramid, uint32 (``image``: the output the
    cells were found in, ``Seg`` or a class-map model's ``Classes``)."""
    labels = root[image].require_group("labels")
    labels.attrs["labels"] = [LABELS]
    if LABELS in labels:
        del labels[LABELS]
    group = labels.create_group(LABELS)
    levels = n_levels(shape)
    for i in range(levels):
        group.create_array(str(i), shape=level_shape(shape, i), chunks=(CHUNK, CHUNK), dtype=np.uint32, fill_value=0)
    group.attrs.update({**multiscales(LABELS, levels, mpp, channel=False),
                        "image-label": {"version": NGFF_VERSION, "source": {"image": "../../"}}})
    return group


def build_pyramid(group: Any) -> None:
    """Fill levels 1.. of an NGFF group from level 0, block by block (2 x 2 mean for images,
    the top-left pixel of each 2 x 2 block for labels)."""
    count = len(group.attrs["multiscales"][0]["datasets"])
    for i in range(1, count):
        source, target = group[str(i - 1)], group[str(i)]
        height, width = target.shape[-2:]
        for y in range(0, height, CHUNK):
            for x in range(0, width, CHUNK):
                block = np.asarray(source[..., 2 * y : 2 * (y + CHUNK), 2 * x : 2 * (x + CHUNK)])
                target[..., y : y + CHUNK, x : x + CHUNK] = _halve(block, target.dtype)


def _halve(block: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if dtype != np.uint8:
        return block[..., ::2, ::2]
    h, w = block.shape[-2:]
    padded = np.pad(block, [(0, 0)] * (block.ndim - 2) + [(0, h % 2), (0, w % 2)], mode="edge")
    mean = padded.reshape(*padded.shape[:-2], (h + 1) // 2, 2, (w + 1) // 2, 2).mean(axis=(-3, -1))
    return np.rint(mean).astype(np.uint8)


Box = tuple[int, int, int, int]  #: (y0, y1, x0, x1), end exclusive


def _pieces(box: Box) -> list[tuple[tuple[int, int], slice, slice]]:
    """``box`` cut along the storage chunk grid: (chunk row, chunk column), rows, columns."""
    y0, y1, x0, x1 = box
    return [((cy, cx), slice(max(y0, cy * CHUNK), min(y1, (cy + 1) * CHUNK)),
             slice(max(x0, cx * CHUNK), min(x1, (cx + 1) * CHUNK)))
            for cy in range(y0 // CHUNK, (y1 - 1) // CHUNK + 1) for cx in range(x0 // CHUNK, (x1 - 1) // CHUNK + 1)]


def _checksum(block: Any) -> str:
    return hashlib.blake2b(np.ascontiguousarray(block).tobytes(), digest_size=8).hexdigest()


def storage_keys(box: Box) -> list[tuple[int, int]]:
    """(row, column) of each storage chunk (file) of a level-0 array that ``box`` touches,
    in raster order."""
    return [key for key, _, _ in _pieces(box)]


def chunk_checksums(box: Box, outputs: dict[str, np.ndarray]) -> dict[str, list[str]]:
    """The checksums :meth:`RunRecord.mark` records for ``box``, from the H x W x 3 outputs
    written there (as the store holds them: channels first, one per storage chunk touched)."""
    y0, _, x0, _ = box
    return {name: [_checksum(np.moveaxis(array[ys.start - y0 : ys.stop - y0, xs.start - x0 : xs.stop - x0], -1, 0))
                   for _, ys, xs in _pieces(box)] for name, array in outputs.items()}


class RunRecord:
    """The resume record (``deepliif.json``): run settings, chunks done with a checksum of what
    each holds, phases done.

    Every change is written at once, atomically (a temporary file renamed over the old one),
    so an interrupted run leaves either the old or the new record. For every chunk done it
    keeps, per output, a checksum of the chunk's level-0 pixels in each storage chunk (file)
    it touches; :meth:`check` verifies them on resume (see :meth:`verify`).
    """

    def __init__(self, path: Path, settings: dict, done: set[int] | None = None,
                 phases: list[str] | None = None, checksums: dict[str, dict[str, list[str]]] | None = None,
                 boxes: dict[str, list[int]] | None = None):
        self.path, self.settings = path, settings
        self.done = set(done or ())
        self.phases = list(phases or [])
        self.checksums = dict(checksums or {})
        self._boxes = {int(k): tuple(int(v) for v in box) for k, box in (boxes or {}).items()}

    @classmethod
    def load(cls, store: Path) -> RunRecord | None:
        """The record of ``store``, or None if it has none or it cannot be read (then the run
        starts again, with a warning naming the file)."""
        path = Path(store) / RECORD
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text())
            return cls(path, data["settings"], set(data["done"]), data["phases"], data.get("checksums"),
                       data.get("boxes"))
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("%s is damaged (%s: %s): the slide's inference starts again", path, type(exc).__name__, exc)
            return None

    def check(self, settings: dict) -> None:
        """Raise if this store was written with other settings; else :meth:`verify` it."""
        changed = {k: (self.settings.get(k), v) for k, v in settings.items() if self.settings.get(k) != v}
        if changed:
            detail = ", ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in changed.items())
            raise DeepLIIFError(f"{self.path.parent} holds a run with other settings ({detail}); "
                                "write to a new output or pass overwrite=True (--overwrite)")
        self.verify()

    def save(self) -> None:
        """Write the record atomically."""
        write_bytes(self.path, json.dumps({"settings": self.settings, "done": sorted(self.done), "phases": self.phases,
                                   "checksums": self.checksums,
                                   "boxes": {str(k): list(v) for k, v in self._boxes.items()}}).encode())

    def mark(self, chunk: int, box: Box, checksums: dict[str, list[str]] | None = None) -> None:
        """Record chunk ``chunk`` as written to ``box`` (y0, y1, x0, x1 of level 0), with the
        checksums of what the store holds there: ``checksums`` from :func:`chunk_checksums`
        of what the writer wrote, or read back from the store when None."""
        chunk = int(chunk)
        if checksums is None:
            root = self._root()
            checksums = {name: [_checksum(root[name]["0"][:, ys, xs]) for _, ys, xs in _pieces(box)]
                         for name in self.settings["outputs"]}
        self._boxes[chunk] = tuple(int(v) for v in box)
        self.checksums[str(chunk)] = checksums
        self.done.add(chunk)
        self.save()

    def finish(self, phase: str) -> None:
        """Record ``phase`` (``'inference'``, ``'pyramid'``, ``'cells'``) as done."""
        if phase not in self.phases:
            self.phases.append(phase)
        self.save()

    def boxes(self) -> dict[int, Box]:
        """Each chunk done's box (y0, y1, x0, x1) in the level-0 arrays."""
        return dict(self._boxes)

    def _root(self) -> Any:
        import zarr

        return zarr.open_group(str(self.path.parent), mode="r")

    def _file(self, name: str, key: tuple[int, int]) -> Path:
        return self.path.parent / name / "0" / ".".join(map(str, (0, *key)))

    def verify(self) -> set[int]:
        """Check every chunk done against its checksums; redo the damaged ones.

        A storage chunk (file) of a level-0 output that cannot be read, is missing or holds
        other pixels than were written is named in a warning and deleted, and every chunk done
        that touches it is marked not done (with the pyramid), so the run recomputes just
        those. Chunks recorded without checksums (older records) are trusted.

        Returns
        -------
        set of int
            The chunks marked not done.
        """
        if not self.done:
            return set()
        root, boxes = self._root(), self.boxes()
        damaged: dict[tuple[str, tuple[int, int]], str] = {}
        for chunk in sorted(self.done):
            sums = self.checksums.get(str(chunk))
            if sums is None or chunk not in boxes:
                continue
            for name in self.settings["outputs"]:
                array = root[name]["0"]
                for (key, ys, xs), expected in zip(_pieces(boxes[chunk]), sums.get(name, [])):
                    if (name, key) in damaged:
                        continue
                    try:
                        ok = _checksum(array[:, ys, xs]) == expected
                    except Exception as exc:  # codecs raise RuntimeError, ValueError, ... on damaged bytes
                        damaged[(name, key)] = f"cannot be read ({type(exc).__name__}: {exc})"
                        continue
                    if not ok:
                        missing = not self._file(name, key).exists()
                        damaged[(name, key)] = "is missing" if missing else "does not hold what was written"
        if not damaged:
            return set()
        redo = set()
        for (name, key), why in damaged.items():
            path = self._file(name, key)
            touching = {c for c in self.done if c in boxes and any(k == key for k, _, _ in _pieces(boxes[c]))}
            log.warning("%s %s: recomputing the %d chunk(s) that wrote it", path, why, len(touching))
            path.unlink(missing_ok=True)
            redo |= touching
        self.done -= redo
        for chunk in redo:
            self.checksums.pop(str(chunk), None)
        self.phases = [p for p in self.phases if p not in ("inference", "pyramid")]
        self.save()
        return redo
