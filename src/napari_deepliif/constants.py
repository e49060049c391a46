"""Numbers and colours taken from the reference DeepLIIF pipeline (``deepliif`` 1.2.7).

Every rule that the engine shares with the reference lives here, once. See
``docs/reference-pipeline.md`` for where each comes from.
"""

from __future__ import annotations

#: Magnification -> tile size fed to the tiler (the network always sees ``SCALE_SIZE``).
TILE_SIZE_BY_RESOLUTION: dict[str, int] = {"40x": 512, "20x": 256, "10x": 128}

#: Nominal pixel size (micrometres per pixel) of each magnification.
MICRONS_PER_PIXEL_BY_RESOLUTION: dict[str, float] = {"40x": 0.25, "20x": 0.5, "10x": 1.0}

DEFAULT_RESOLUTION = "40x"

#: Overlap between tiles is ``tile_size // OVERLAP_DIVISOR``.
OVERLAP_DIVISOR = 16

#: Names of the inferred modalities, in network order (G1..G4), and the segmentation.
MODALITIES: tuple[str, ...] = ("Hema", "DAPI", "Lap2", "Marker")
SEG = "Seg"
ALL_OUTPUTS: tuple[str, ...] = (*MODALITIES, SEG)
#: The output of a class-map model: each pixel's class index, in all three channels (0:
#: background; see ``docs/model-types.md``).
CLASSES = "Classes"
#: The translated image of a ``translate`` model (``docs/translate-then-segment.md``).
VIRTUAL_HE = "VirtualHE"
#: Colour of class index i (1, 2, ...) of a class map, cycling: QuPath classifications and
#: napari layers use the same ones.
CLASS_PALETTE: tuple[tuple[int, int, int], ...] = (
    (228, 26, 28), (55, 126, 184), (77, 175, 74), (152, 78, 163), (255, 127, 0), (166, 86, 40),
    (247, 129, 191), (255, 255, 51),
)

#: A tile whose grey pixels (0 and 255 ignored) vary less than this is not run.
EMPTY_TILE_VARIANCE = 9.0

#: Constant outputs written for an empty tile.
EMPTY_TILE_COLOURS: dict[str, tuple[int, int, int]] = {
    "Hema": (201, 211, 208),
    "DAPI": (10, 10, 10),
    "Lap2": (0, 0, 0),
    "Marker": (10, 10, 10),
    "Seg": (0, 0, 0),
}

#: Seg weights (IHC, Hema, DAPI, Lap2, Marker) of the released model: ``modalities_no`` 4
#: and no ``modalities_names`` in ``train_opt.txt``.
RELEASED_SEG_WEIGHTS: tuple[float, ...] = (0.5, 0.0, 0.0, 0.0, 0.5)
#: Seg weights from the DeepLIIF paper, used when ``train_opt.txt`` names none otherwise.
PAPER_SEG_WEIGHTS: tuple[float, ...] = (0.25, 0.15, 0.25, 0.1, 0.25)

# ---- postprocessing (compute_final_results) ------------------------------------------
DEFAULT_SEG_THRESH = 120
#: A pixel is a cell pixel only if its green (boundary) channel is at most this.
SEG_BOUNDARY_MAX_GREEN = 80
#: Cells of this size or smaller (pixels) are noise.
NOISE_SIZE = 4
#: Upper size caps used for ``size_thresh_upper='default'``.
DEFAULT_LARGE_NOISE_BY_RESOLUTION: dict[str, int] = {"10x": 1000, "20x": 4000, "40x": 16000}
#: (min, default, max) clamps of the KDE size threshold, in sqrt(pixels).
SIZE_THRESH_CLAMPS_BY_RESOLUTION: dict[str, tuple[int, int, int]] = {
    "40x": (4, 7, 10),
    "20x": (3, 4, 6),
    "10x": (2, 2, 3),
}
#: Gaussian KDE of sqrt(cell sizes) behind the default size threshold: bins over
#: [0, max + 1) and bandwidth (in sqrt(pixels)).
SIZE_KDE_BINS = 500
SIZE_KDE_BANDWIDTH = 1.0
#: Default marker threshold: lo + round(FRACTION * (hi - lo)), lo/hi the rounded percentiles
#: below of the non-zero Marker pixels (Marker reduced per pixel to max(R, G, B)).
MARKER_RANGE_PERCENTILES = (0.1, 99.9)
MARKER_THRESH_FRACTION = 0.9
#: Postprocessing resolution from the tile size: above 384 px 40x, above 192 px 20x, else 10x.
RESOLUTION_BY_TILE_SIZE_ABOVE: tuple[tuple[int, str], ...] = ((384, "40x"), (192, "20x"))
LOWEST_RESOLUTION = "10x"

#: Colours of the Seg map convention (also used by the classical engine).
POSITIVE_RGB = (255, 0, 0)
NEGATIVE_RGB = (0, 0, 255)
BOUNDARY_RGB = (0, 255, 0)
