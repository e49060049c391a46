"""The reference's tile grid (InferenceTiler with no padding), computed rather than iterated.

An image narrower or shorter than a tile is grown by mirror tiling (each doubling appends a
mirrored copy) and cropped back at the end; the grown image is never built: tile reads map
their indices into the original. Tiles go row by row; a tile that would pass the right or
bottom edge is moved flush to it. Each tile writes its centre (and, on the image border, its
border strips) and later tiles overwrite earlier ones, so tiles must be written in order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from napari_deepliif.constants import OVERLAP_DIVISOR


def mirror_index(n_source: int, n_grown: int) -> np.ndarray:
    """Source index of each position of an axis grown by repeated mirror doubling.

    Appending a mirrored copy until the length reaches ``n_grown`` yields the symmetric
    periodic extension ``A, mirror(A), A, ...``.
    """
    pos = np.arange(n_grown) % (2 * n_source)
    return np.where(pos < n_source, pos, 2 * n_source - 1 - pos)


def _starts(length: int, tile: int, step: int) -> list[int]:
    starts: list[int] = []
    for s in range(0, length, step):
        s = min(s, length - tile)
        # a tile moved flush to the edge may repeat; writing it twice changes nothing
        if not starts or starts[-1] != s:
            starts.append(s)
    return starts


@dataclass(frozen=True)
class Tile:
    """One tile: where it is read from and which part of its result is written where.

    All coordinates are in pixels of the (possibly grown) image, ``y`` then ``x``.
    """

    y: int
    x: int
    write: tuple[int, int, int, int]  #: (y0, y1, x0, x1) of the image the tile's result covers


@dataclass(frozen=True)
class TileGrid:
    """The tiles of an image of ``height`` x ``width`` at ``tile_size``.

    Parameters
    ----------
    height, width : int
        Size of the original image in pixels.
    tile_size : int
        Tile edge in pixels (512 at 40x, 256 at 20x, 128 at 10x).
    margin : int, optional
        Pixels each tile discards at its inner edges (neighbours share twice as many);
        default ``tile_size // 16``, the reference's.
    """

    height: int
    width: int
    tile_size: int
    margin: int | None = None

    @property
    def grown_height(self) -> int:
        return max(self.height, self.tile_size)

    @property
    def grown_width(self) -> int:
        return max(self.width, self.tile_size)

    @property
    def overlap(self) -> int:
        return self.tile_size // OVERLAP_DIVISOR if self.margin is None else self.margin

    def _axis(self, length: int) -> tuple[list[int], int]:
        overlap = 0 if length <= self.tile_size else self.overlap
        return _starts(length, self.tile_size, self.tile_size - 2 * overlap), overlap

    def tiles(self) -> list[Tile]:
        """Tiles in the reference's order (row by row), with their write boxes clipped to
        the original image."""
        t = self.tile_size
        hg, wg = self.grown_height, self.grown_width
        ys, oy = self._axis(hg)
        xs, ox = self._axis(wg)
        out = []
        for y in ys:
            y0 = 0 if y == 0 else y + oy
            y1 = hg if y == hg - t else y + t - oy
            for x in xs:
                x0 = 0 if x == 0 else x + ox
                x1 = wg if x == wg - t else x + t - ox
                out.append(Tile(y, x, (y0, min(y1, self.height), x0, min(x1, self.width))))
        return out

    def read(self, image: Any, tile: Tile) -> np.ndarray:
        """Read one tile (``tile_size`` x ``tile_size`` x C) from ``image`` (H x W x C array-like).

        Along an axis that was not grown only the tile's pixels are read.
        """
        rows, row_index = self._axis_read(self.height, tile.y)
        cols, col_index = self._axis_read(self.width, tile.x)
        block = np.asarray(image[rows, cols])
        if row_index is not None:
            block = block[row_index]
        if col_index is not None:
            block = block[:, col_index]
        return block

    def _axis_read(self, length: int, start: int) -> tuple[slice, np.ndarray | None]:
        if length >= self.tile_size:
            return slice(start, start + self.tile_size), None
        return slice(0, length), mirror_index(length, self.tile_size)


class ArrayRegion:
    """A lazy rectangular window ``[y, y+h) x [x, x+w)`` of an H x W x C array-like.

    Slicing it slices the underlying array (numpy, zarr, dask, tifffile's zarr store), so
    only what is asked for is read.
    """

    def __init__(self, array: Any, x: int, y: int, width: int, height: int):
        self.array = array
        self.x, self.y = int(x), int(y)
        self.shape = (int(height), int(width), *tuple(array.shape[2:]))
        self.dtype = array.dtype
        self.ndim = len(self.shape)

    def __getitem__(self, key: tuple[slice, slice]) -> Any:
        ys, xs = key
        y0, y1, _ = ys.indices(self.shape[0])
        x0, x1, _ = xs.indices(self.shape[1])
        return self.array[self.y + y0 : self.y + y1, self.x + x0 : self.x + x1]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        data = np.asarray(self[:, :])
        return data if dtype is None else data.astype(dtype)


Box = tuple[int, int, int, int]  #: (y0, y1, x0, x1), end exclusive


@dataclass(frozen=True)
class Chunk:
    """One unit of work: ``box`` of the image and the tiles that fill it (none for an engine
    that is not tiled)."""

    index: int
    box: Box
    tiles: tuple[Tile, ...] = ()


def disjoint_tiles(grid: TileGrid) -> list[list[Tile]]:
    """The grid's tiles as rows, each write box cut where the next tile's begins.

    Where two write boxes overlap (only next to a tile moved flush to the right or bottom
    edge) the later tile wins; cutting the earlier box there gives boxes that tile the image
    without overlap, so the result does not depend on the order chunks run in.
    """
    tiles = grid.tiles()
    rows = _cut({t.y: (t.write[0], t.write[1]) for t in tiles})
    cols = _cut({t.x: (t.write[2], t.write[3]) for t in tiles})
    return [[Tile(y, x, (*rows[y], *cols[x])) for x in cols] for y in rows]


def _cut(spans: dict[int, tuple[int, int]]) -> dict[int, tuple[int, int]]:
    """Per tile start, its write span along one axis ended where the next span begins."""
    starts = sorted(spans)
    ends = [spans[nxt][0] for nxt in starts[1:]] + [spans[starts[-1]][1]]
    return {s: (spans[s][0], min(spans[s][1], end)) for s, end in zip(starts, ends)}


def tiled_chunks(grid: TileGrid, chunk_size: int) -> list[Chunk]:
    """Blocks of about ``chunk_size`` px of whole tiles of ``grid``, in raster order."""
    rows = disjoint_tiles(grid)
    per = max(1, chunk_size // (grid.tile_size - 2 * grid.overlap))
    chunks = []
    for r in range(0, len(rows), per):
        for c in range(0, len(rows[0]), per):
            block = [t for row in rows[r : r + per] for t in row[c : c + per]]
            box = (block[0].write[0], block[-1].write[1], block[0].write[2], block[-1].write[3])
            chunks.append(Chunk(len(chunks), box, tuple(block)))
    return chunks


def square_chunks(shape: tuple[int, int], chunk_size: int) -> list[Chunk]:
    """Squares of ``chunk_size`` px (the last ones cut at the edges), in raster order."""
    height, width = shape
    boxes = [(y, min(y + chunk_size, height), x, min(x + chunk_size, width))
             for y in range(0, height, chunk_size) for x in range(0, width, chunk_size)]
    return [Chunk(i, box) for i, box in enumerate(boxes)]

