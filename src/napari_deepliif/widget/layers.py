"""Output layers of the widget: names, placement, colours and in-place updates (no Qt).

Placement: napari draws data pixel ``(row, col)`` of a layer at world ``translate + (row,
col) * scale`` (pixel centres). A result computed on the pixel rectangle starting at ``(x0,
y0)`` of level ``d`` (downsample factor) of a source layer is therefore drawn with ``scale =
source.scale * d`` and ``translate = source.translate + (y0, x0) * d * source.scale``.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from napari_deepliif.constants import (
    CLASS_PALETTE,
    CLASSES,
    MODALITIES,
    NEGATIVE_RGB,
    POSITIVE_RGB,
    VIRTUAL_HE,
)

#: Metadata key that marks (and describes) the layers this plugin made.
PLUGIN_KEY = "napari_deepliif"
CELLS, OUTLINES = "cells", "outlines"
#: Role -> layer name.
LAYER_NAMES: dict[str, str] = {**{m: f"DeepLIIF {m}" for m in (*MODALITIES, VIRTUAL_HE)}, CLASSES: "DeepLIIF classes",
                               CELLS: "DeepLIIF cells", OUTLINES: "DeepLIIF outlines"}
#: Fluorescence-like modalities: colormap, shown additively so they compose into the
#: multiplex view (Hema stays RGB brightfield).
FLUORESCENCE: dict[str, str] = {"DAPI": "blue", "Lap2": "green", "Marker": "red"}
#: Opacity of the filled cells layer (hidden at first; the outlines layer is opaque).
CELLS_OPACITY = 0.45
#: Label images with a side above this are shown as pyramids (each level half the last,
#: down to PYRAMID_SMALLEST px), so that recolouring maps only what the canvas shows.
PYRAMID_ABOVE = 2048
PYRAMID_SMALLEST = 512
#: Rows per band in :func:`outlines` (64 rows of a 3000 px uint32 image: 0.75 MB).
_OUTLINE_BAND = 64


def _hex(rgb: Sequence[int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


#: Colours of counted cells (the Seg map convention), as hex strings: napari parses these
#: far faster than arrays, which matters with thousands of cells.
POSITIVE_HEX, NEGATIVE_HEX = _hex(POSITIVE_RGB), _hex(NEGATIVE_RGB)


def placement(scale: Sequence[float], translate: Sequence[float], origin_xy: Sequence[int],
              downsample: float | Sequence[float] = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Scale and translate that put an output exactly over its source pixels.

    Parameters
    ----------
    scale, translate : sequence of float
        The source layer's ``scale`` and ``translate``; the last two axes are (y, x).
    origin_xy : (int, int)
        ``(x, y)`` of the output's top-left pixel in the pixels of the level read.
    downsample : float or (float, float)
        Downsample factor (y, x) of the level read relative to the layer's level 0.

    Returns
    -------
    scale, translate : ndarray, shape (2,)
        For the output layer, (y, x).
    """
    d = np.broadcast_to(np.asarray(downsample, float), (2,))
    out_scale = np.asarray(scale, float)[-2:] * d
    origin_yx = np.asarray(origin_xy, float)[::-1]
    return out_scale, np.asarray(translate, float)[-2:] + origin_yx * out_scale


def class_hex(index: int) -> str:
    """Colour of class ``index`` (1, 2, ...) of a class map (:data:`CLASS_PALETTE`)."""
    return _hex(CLASS_PALETTE[(int(index) - 1) % len(CLASS_PALETTE)])


def cell_color_dict(ids: np.ndarray, counted: np.ndarray, positive: np.ndarray,
                    cell_class: np.ndarray | None = None) -> dict:
    """Label -> colour for a :class:`~napari.utils.colormaps.DirectLabelColormap`.

    Counted positive cells are red, counted negative cells blue (with ``cell_class``, the
    cells of a class map: each class its :func:`class_hex` colour); cells not counted (gated
    out or excluded) and the background are transparent. The largest of these groups
    takes the default (``None``) colour and only the others are listed: napari walks the
    dict in Python on every recolour, so a shorter dict is a faster slider.
    """
    if cell_class is None:
        groups = ((counted & positive, POSITIVE_HEX), (counted & ~positive, NEGATIVE_HEX), (~counted, "transparent"))
    else:
        groups = (*((counted & (cell_class == k), class_hex(k)) for k in np.unique(cell_class[counted])),
                  (~counted, "transparent"))
    largest = max(range(len(groups)), key=lambda i: int(np.count_nonzero(groups[i][0])))
    colors: dict[Any, str] = {None: groups[largest][1], 0: "transparent"}
    for i, (members, color) in enumerate(groups):
        if i != largest:
            colors.update(dict.fromkeys(ids[members].tolist(), color))
    if len(colors) == 2:
        # napari treats a dict with only the None and background keys as "no colours given"
        colors[int(ids.max(initial=0)) + 1] = groups[largest][1]
    return colors


def color_table(colors: Mapping) -> tuple:
    """What napari renders a direct colormap with ``colors`` through: the default colour,
    then each distinct colour in order of first appearance (each label is drawn as its
    colour's index in this table). Two colormaps with equal tables differ only in which
    label has which colour."""
    return colors[None], tuple(dict.fromkeys(c for key, c in colors.items() if key is not None))


def cell_colormap(post: Any) -> tuple[Any, tuple]:
    """The :class:`DirectLabelColormap` of a :class:`~napari_deepliif.cells.postprocess.PostprocessResult`
    and its :func:`color_table`."""
    from napari.utils.colormaps import DirectLabelColormap

    colors = cell_color_dict(post.table.id, post.counted, post.positive, post.table.cell_class)
    return DirectLabelColormap(color_dict=colors), color_table(colors)


#: Labels layer -> (the colormap :func:`set_cell_colormap` gave it, that colormap's table).
_GIVEN: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def set_cell_colormap(layer: Any, colormap: Any, table: tuple) -> None:
    """Give a cells layer a new colormap.

    On every colormap event napari's renderer rebuilds the layer's shader, which the OpenGL
    driver then recompiles (~20 ms a slider move with software OpenGL), although a re-score
    changes only which cell has which of the same few colours. So when the layer still
    shows the colormap given here last and the new one has the same colour table, the event
    is withheld: the setter's own refresh re-maps the shown labels through the new colormap
    and the renderer's table stays right. Any other case (a first colormap, one set by the
    user, a new table) goes through the ordinary event.
    """
    given = _GIVEN.get(layer)
    if given is not None and given[0] is layer.colormap and given[1] == table:
        with layer.events.colormap.blocker():
            layer.colormap = colormap
    else:
        layer.colormap = colormap
    _GIVEN[layer] = (colormap, table)


def intensity(rgb: np.ndarray) -> np.ndarray:
    """An RGB modality (H x W x 3 uint8) as one channel: max(R, G, B) per pixel (as the
    cell table's marker values)."""
    return np.max(rgb, axis=2)


def outlines(labels: np.ndarray) -> np.ndarray:
    """``labels`` kept only on each cell's border pixels (a 4-neighbour has another label).

    Computed once per label image, so a recolour never recomputes contours. It runs on bands
    of rows that stay in the CPU cache (with a one-row margin for the vertical neighbours):
    faster than whole-image passes, which counts on every seg threshold move.
    """
    height, width = labels.shape
    out = np.empty_like(labels)
    for top in range(0, height, _OUTLINE_BAND):
        first, stop = max(top - 1, 0), min(top + _OUTLINE_BAND + 1, height)
        band = labels[first:stop]
        edge = np.zeros(band.shape, bool)
        vertical = band[1:] != band[:-1]
        edge[1:] |= vertical
        edge[:-1] |= vertical
        horizontal = band[:, 1:] != band[:, :-1]
        edge[:, 1:] |= horizontal
        edge[:, :-1] |= horizontal
        own = slice(top - first, top - first + min(_OUTLINE_BAND, height - top))
        np.multiply(band[own], edge[own], out=out[top : top + _OUTLINE_BAND])
    return out


def pyramid_factors(side: int) -> list[int]:
    """Subsampling factors of the levels of a label image whose larger side is ``side``:
    1, 2, 3, 4, 6, 8, 12, ... until a level's side is at most PYRAMID_SMALLEST.

    napari shows the coarsest level that still has more pixels than the screen, and maps
    every shown pixel to a colour on each recolour; with factors 1.5 and 1.33 apart
    (instead of 2) it never maps more than 2.25x the screen's pixels (1500 x 1500 shown in a
    760 px canvas becomes 1000 x 1000).
    """
    factors = [1]
    if side > PYRAMID_ABOVE:
        while -(-side // factors[-1]) > PYRAMID_SMALLEST:
            f = factors[-1]
            factors.append(2 if f == 1 else f // 3 * 4 if f % 3 == 0 else f * 3 // 2)
    return factors


class LabelLevel:
    """One level of a cells layer's pyramid, painted from the cells' runs when napari reads it.

    napari reads the window it shows of the level it shows (and the coarsest level whole, for
    the thumbnail), again on every recolour; so a new seg threshold costs what the screen
    shows, not the whole label image and its outlines at every level, and no full-size label
    image is kept. The last window read is kept for the recolours that follow. Implements
    napari's layer data protocol (``shape``, ``dtype``, ``ndim``, ``size``, ``__getitem__``).

    Parameters
    ----------
    cells : CellMap
        The cells (:attr:`PostprocessResult.cells <napari_deepliif.cells.postprocess.PostprocessResult.cells>`).
    step : int
        Subsampling factor: pixel ``(i, j)`` of the level is pixel ``(i * step, j * step)``.
    outline : bool
        Keep each cell's border pixels only (:func:`outlines` of the level).
    """

    dtype = np.dtype(np.uint32)
    ndim = 2

    def __init__(self, cells: Any, step: int, outline: bool):
        self.cells, self.step, self.outline = cells, step, outline
        self.shape = tuple(-(-side // step) for side in cells.shape)
        self.size = self.shape[0] * self.shape[1]
        self._last: tuple[tuple[int, int, int, int], np.ndarray] | None = None

    def show(self, cells: Any) -> None:
        """Paint ``cells`` (of the same area) from now on; napari must then refresh the layer."""
        self.cells, self._last = cells, None

    def __getitem__(self, key: Any) -> np.ndarray:
        key = key if isinstance(key, tuple) else (key,)
        if len(key) <= 2 and all(isinstance(k, slice) or _is_whole(k) for k in key):
            window = _window(tuple(_as_slice(k, n) for k, n in zip(key, self.shape)), self.shape)
            if window is not None:  # whole numbers read one pixel, dropped from the result
                pick = tuple(0 if _is_whole(k) else slice(None) for k in key)
                return self._read(window, keep=pick == (slice(None),) * len(key))[pick]
        return self._read((0, self.shape[0], 0, self.shape[1]))[key]  # other keys: read all

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        whole = self._read((0, self.shape[0], 0, self.shape[1]))
        return whole.astype(dtype or whole.dtype, copy=bool(copy))

    def _read(self, window: tuple[int, int, int, int], keep: bool = True) -> np.ndarray:
        """The window painted, or the last one kept; ``keep`` False: a pixel or line read that
        must not push out the shown window."""
        if self._last is not None and self._last[0] == window:
            return self._last[1]
        painted = self._paint(*window)
        if keep:
            self._last = window, painted
        return painted

    def _paint(self, r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
        margin = int(self.outline)  # outlines need each pixel's neighbours
        m0, m1 = max(r0 - margin, 0), min(r1 + margin, self.shape[0])
        n0, n1 = max(c0 - margin, 0), min(c1 + margin, self.shape[1])
        s = self.step
        labels = self.cells.paint(self.cells.table.id, 0, rows=range(m0 * s, m1 * s, s),
                                  cols=range(n0 * s, n1 * s, s))
        if not self.outline:
            return labels
        return outlines(labels)[r0 - m0 : r0 - m0 + r1 - r0, c0 - n0 : c0 - n0 + c1 - c0]


def _is_whole(key: Any) -> bool:
    return isinstance(key, (int, np.integer)) and not isinstance(key, (bool, np.bool_))


def _as_slice(key: Any, size: int) -> slice:
    """A whole-number index as the one-pixel slice it reads (negative counts from the end)."""
    if not _is_whole(key):
        return key
    i = int(key) + size if key < 0 else int(key)
    if not 0 <= i < size:
        raise IndexError(f"index {int(key)} is out of bounds for size {size}")
    return slice(i, i + 1)


def _window(key: tuple[slice, ...], shape: tuple[int, int]) -> tuple[int, int, int, int] | None:
    """``(r0, r1, c0, c1)`` of at most two slices (missing axes: whole), None unless steps are 1."""
    key = key + (slice(None),) * (2 - len(key))
    bounds = [k.indices(n) for k, n in zip(key, shape)]
    if any(step != 1 for _, _, step in bounds):
        return None
    (r0, r1, _), (c0, c1, _) = bounds
    return r0, max(r1, r0), c0, max(c1, c0)


def cells_layer_data(cells: Any, role: str) -> np.ndarray | list[LabelLevel]:
    """The data of the ``CELLS`` or ``OUTLINES`` layer of a :class:`~napari_deepliif.cells.find.CellMap`:
    the label image (``OUTLINES``: its :func:`outlines`), or for a large one a pyramid of
    :class:`LabelLevel` (nearest subsampling by :func:`pyramid_factors`)."""
    outline = role == OUTLINES
    factors = pyramid_factors(max(cells.shape))
    if len(factors) == 1:
        labels = cells.labels()
        return outlines(labels) if outline else labels
    return [LabelLevel(cells, f, outline) for f in factors]


def find_layer(viewer: Any, role: str) -> Any | None:
    """The layer this plugin made for ``role`` in ``viewer``, if it is still there."""
    for layer in viewer.layers:
        meta = layer.metadata.get(PLUGIN_KEY) if isinstance(layer.metadata, Mapping) else None
        if meta and meta.get("role") == role:
            return layer
    return None


def _put(viewer: Any, role: str, kind: str, data: np.ndarray, placed: dict, meta: dict, style: dict) -> Any:
    layer = find_layer(viewer, role)
    metadata = {PLUGIN_KEY: {**meta, "role": role}}
    if layer is not None and layer.multiscale != isinstance(data, list):
        style = {**style, "visible": layer.visible}  # a new layer kind, the user's choice kept
        viewer.layers.remove(layer)
        layer = None
    if layer is None:
        add = viewer.add_labels if kind == "labels" else viewer.add_image
        return add(data, name=LAYER_NAMES[role], metadata=metadata, multiscale=isinstance(data, list),
                   **placed, **style)
    layer.data = data
    layer.scale, layer.translate = placed["scale"], placed["translate"]
    layer.metadata = metadata
    return layer


def show_result(viewer: Any, images: Mapping[str, np.ndarray], post: Any, *, scale: np.ndarray,
                translate: np.ndarray, meta: dict) -> dict[str, Any]:
    """Add or update (in place) the modality, cells and outlines layers of one run.

    The outlines layer holds each cell's border pixels (see :func:`outlines`), not napari's
    ``contour``, which would be recomputed over the whole image on every recolour.

    New modality layers start hidden: the first view is the scored image with its cell
    outlines (the opaque Hema layer would hide the image, and the additive fluorescence layers
    would wash it out); the user shows them from the layer list, and a re-run keeps that choice.
    Modality layers of an earlier run that this run did not produce are removed (they would
    lie over another area). Returns role -> layer.
    """
    placed = {"scale": scale, "translate": translate}
    layers: dict[str, Any] = {}
    for role in (*MODALITIES, VIRTUAL_HE):
        if role not in images:
            old = find_layer(viewer, role)
            if old is not None:
                viewer.layers.remove(old)
            continue
        if role in FLUORESCENCE:
            style = {"colormap": FLUORESCENCE[role], "blending": "additive", "contrast_limits": (0, 255),
                     "visible": False}
            layers[role] = _put(viewer, role, "image", intensity(images[role]), placed, meta, style)
        else:
            layers[role] = _put(viewer, role, "image", images[role], placed, meta, {"rgb": True, "visible": False})
        _refresh_thumbnail(layers[role])
    old = find_layer(viewer, CLASSES)
    if CLASSES in images and post.table.class_names is not None:
        style = class_style(post.table.class_names)
        layers[CLASSES] = _put(viewer, CLASSES, "labels", np.ascontiguousarray(images[CLASSES][..., 0]), placed, meta,
                               style)
        layers[CLASSES].colormap, layers[CLASSES].features = style["colormap"], style["features"]
        _refresh_thumbnail(layers[CLASSES])
    elif old is not None:
        viewer.layers.remove(old)
    colormap = cell_colormap(post)
    layers[CELLS] = _put(viewer, CELLS, "labels", cells_layer_data(post.cells, CELLS), placed, meta,
                         {"opacity": CELLS_OPACITY, "visible": False})
    layers[OUTLINES] = _put(viewer, OUTLINES, "labels", cells_layer_data(post.cells, OUTLINES), placed, meta,
                            {"opacity": 1.0})
    for role in (CELLS, OUTLINES):  # shown or not: the colours belong to these labels
        set_cell_colormap(layers[role], *colormap)
        _refresh_thumbnail(layers[role])
    return layers


def class_style(class_names: Sequence[str]) -> dict:
    """Layer settings of a class map: each class its colour, and a ``class`` feature naming
    the class of each label value (napari shows it under the pointer)."""
    from napari.utils.colormaps import DirectLabelColormap

    colors: dict[Any, str] = {None: "transparent", 0: "transparent"}
    colors.update({k: class_hex(k) for k in range(1, len(class_names))})
    return {"colormap": DirectLabelColormap(color_dict=colors), "visible": False, "opacity": CELLS_OPACITY,
            "features": {"index": list(range(len(class_names))), "class": list(class_names)}}


def _refresh_thumbnail(layer: Any) -> None:
    """Have napari draw the layer-list thumbnail of a hidden layer: it skips hidden layers, and
    a black square reads as an empty output (an old one as the previous run's). Shown and
    hidden again in one step, the layer never reaches the canvas."""
    if not layer.visible:
        layer.visible = True
        layer.visible = False


def recolor(viewer: Any, post: Any, *, relabel: bool = False) -> None:
    """Recolour the cells and outlines layers for new settings (one shared colormap).

    ``relabel``: the cells themselves changed (a new seg threshold), so every cells layer,
    shown or hidden, gets the new cells (:func:`_relabel_in_place`): a saved or exported layer
    must hold the cells of the score. A hidden layer's colours are only marked stale (set by
    :func:`refresh_if_stale` when it is shown), so a slider move pays for the shown layers.
    """
    colormap = None
    for role in (CELLS, OUTLINES):
        layer = find_layer(viewer, role)
        if layer is None:
            continue
        if relabel:
            _relabel_in_place(layer, post.cells)
        if not layer.visible:
            layer.metadata[PLUGIN_KEY]["stale"] = True
            continue
        colormap = colormap or cell_colormap(post)
        _set_colours(layer, colormap)


def _set_colours(layer: Any, colormap: tuple[Any, tuple]) -> None:
    """Give a cells layer a :func:`cell_colormap`; napari then re-reads and re-maps what it
    shows, once, including cells changed in place by :func:`_relabel_in_place` (setting new
    data instead would also map the new cells through the old colours, for nothing)."""
    set_cell_colormap(layer, *colormap)
    layer.metadata[PLUGIN_KEY]["stale"] = False


def _relabel_in_place(layer: Any, cells: Any) -> None:
    """Point a pyramid's :class:`LabelLevel` at ``cells`` (of the same area), or copy the new
    label image into the layer's own, without a refresh; any other change of shape or kind
    sets new data."""
    current = layer.data
    if layer.multiscale and all(isinstance(lvl, LabelLevel) and lvl.cells.shape == cells.shape for lvl in current):
        for level in current:
            level.show(cells)
        return
    data = cells_layer_data(cells, layer.metadata[PLUGIN_KEY]["role"])
    if isinstance(data, np.ndarray) and isinstance(current, np.ndarray) and current.shape == data.shape \
            and current.dtype == data.dtype:
        np.copyto(current, data)
    else:
        layer.data = data


def refresh_if_stale(layer: Any, post: Any) -> None:
    """Give a cells layer that was hidden during re-scores the colours of ``post``."""
    if layer.visible and layer.metadata.get(PLUGIN_KEY, {}).get("stale"):
        _set_colours(layer, cell_colormap(post))


def cell_at(viewer: Any, post: Any, world_position: Sequence[float]) -> int:
    """Id of the cell of ``post`` under a world position (0: none). The cells or outlines layer
    gives the placement; the id comes from ``post``'s cells (no label image is read), so
    clicks work on either layer, hidden or shown."""
    layer = find_layer(viewer, CELLS)
    layer = find_layer(viewer, OUTLINES) if layer is None else layer
    if layer is None:
        return 0
    row, col = (int(v) for v in np.round(np.asarray(layer.world_to_data(world_position))[-2:]))
    return post.cells.label_at(row, col)
