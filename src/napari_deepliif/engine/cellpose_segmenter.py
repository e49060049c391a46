"""The ``cellpose`` segmenter of the ``translate`` type: Cellpose (the optional ``cellpose``
package, 3.1) finds the nuclei on the virtual H&E, tile by tile, and the IHC's DAB
classifies them (``docs/translate-then-segment.md``).

Cellpose's own tiling and flow dynamics reach across a whole input, so it is given one tile
of the whole image's fixed tile grid at a time (:class:`CellposeSegRunner`); a region's
nuclei are then that box of the whole image's. The weights file is the card's; it is never
downloaded.
"""

from __future__ import annotations

import pickle
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from napari_deepliif.errors import ModelError

#: The install command named when the ``cellpose`` package is missing.
INSTALL_HINT = "pip install 'napari-deepliif[cellpose]'"
#: Cellpose reads the virtual H&E as one grey channel (the mean of R, G and B), no second channel.
CELLPOSE_CHANNELS = (0, 0)


@lru_cache(maxsize=2)
def _cellpose_model(path: str, device: str, stamp: tuple[int, int]) -> Any:
    """Cellpose's ``CellposeModel`` of the file ``path`` on ``device`` (cached while the file
    is unchanged)."""
    import torch

    try:
        from cellpose import models
    except ImportError as exc:
        raise ModelError(f"segmenter: cellpose needs the cellpose package, which is not installed ({exc}); install "
                         f"it with {INSTALL_HINT}") from exc
    try:
        return models.CellposeModel(pretrained_model=path, device=torch.device(device))
    except (RuntimeError, ValueError, KeyError, EOFError, OSError, pickle.UnpicklingError) as exc:
        raise ModelError(f"{path} cannot be loaded as a Cellpose model ({exc.__class__.__name__}: {str(exc)[:200]}); "
                         "give a Cellpose 3 model file (cellpose's cyto3, nuclei, or one trained with "
                         "cellpose 3)") from exc


def load_cellpose(path: str | Path, device: str) -> Any:
    """Load a Cellpose model file.

    Parameters
    ----------
    path : str or Path
        The Cellpose model file (as Cellpose saves it: a state dict of its ``CPnet``).
    device : str
        ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.

    Returns
    -------
    cellpose.models.CellposeModel

    Raises
    ------
    ModelError
        The ``cellpose`` package is not installed (naming the install command), or the file
        is not a Cellpose model.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"the Cellpose model file {path} does not exist; put it there (it is never downloaded)")
    stat = path.stat()
    return _cellpose_model(str(path.resolve()), device, (stat.st_size, stat.st_mtime_ns))


def diameter_px(model: Any, nucleus_diameter_um: float | None, pixel_size: float, resolution: str) -> float:
    """The nucleus diameter Cellpose is given, in pixels at ``resolution``.

    Parameters
    ----------
    model : cellpose.models.CellposeModel
    nucleus_diameter_um : float or None
        The card's nucleus diameter (µm); None: the diameter the Cellpose file was trained
        with (its ``diam_labels``, px), taken at the card's ``pixel_size``.
    pixel_size : float
        The card's pixel size (µm/px).
    resolution : str
        The run's magnification (40x 0.25, 20x 0.5, 10x 1.0 µm/px).
    """
    from napari_deepliif.constants import MICRONS_PER_PIXEL_BY_RESOLUTION
    from napari_deepliif.resolution import resolve_resolution

    microns = float(model.diam_labels) * pixel_size if nucleus_diameter_um is None else nucleus_diameter_um
    return microns / MICRONS_PER_PIXEL_BY_RESOLUTION[resolve_resolution(resolution)]


class CellposeSegRunner:
    """The ``cellpose`` segmenter on batches of paired tiles (IHC, virtual H&E): Cellpose's
    masks of each tile's virtual H&E (labelled within the tile) are the nuclei, the IHC's DAB
    classifies them; returns each tile's ``Marker`` and ``Seg``.

    Parameters
    ----------
    model : cellpose.models.CellposeModel
    diameter : float
        Nucleus diameter in pixels of the tiles, given to Cellpose (it rescales the tile by
        its model's ``diam_mean / diameter``).
    flow_threshold, cellprob_threshold : float
        Cellpose's mask settings.
    dab_threshold : float
        Mean nuclear DAB OD above which a nucleus is positive.
    unmixing : ndarray, shape (3, 3)
        OD to HED matrix of the IHC image.
    """

    def __init__(self, model: Any, diameter: float, flow_threshold: float, cellprob_threshold: float,
                 dab_threshold: float, unmixing: np.ndarray):
        self.model, self.diameter = model, float(diameter)
        self.flow_threshold, self.cellprob_threshold = flow_threshold, cellprob_threshold
        self.dab_threshold, self.unmixing = dab_threshold, unmixing

    def labels(self, virtual_he: np.ndarray) -> np.ndarray:
        """Cellpose's masks of one virtual H&E tile (H x W x 3 uint8): 0 background, 1..n nuclei."""
        masks = self.model.eval(virtual_he, channels=list(CELLPOSE_CHANNELS), diameter=self.diameter,
                                flow_threshold=self.flow_threshold, cellprob_threshold=self.cellprob_threshold)[0]
        return np.asarray(masks)

    def __call__(self, tiles: list[np.ndarray]) -> list[dict[str, np.ndarray]]:
        """S x S x 6 uint8 tiles (IHC, then virtual H&E) in, ``{"Marker", "Seg"}`` per tile out."""
        from napari_deepliif.engine.stain_nuclei import classified_by_dab

        return [classified_by_dab(tile[..., :3], self.labels(np.ascontiguousarray(tile[..., 3:])), self.unmixing,
                                  self.dab_threshold) for tile in tiles]
