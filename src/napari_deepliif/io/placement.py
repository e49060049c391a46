"""Where scored pixels lie in the full-resolution image, for every file that records cells.

Coordinates written to files are full-resolution (level-0) pixels. Centroids have pixel
centres at integers; outlines and boxes run along pixel edges (pixel ``(row, col)`` is the
square ``[col, col + 1] x [row, row + 1]``, QuPath's convention). A scored pixel covers
``downsample`` x ``downsample`` level-0 pixels, so an edge coordinate ``e`` of the pixels
scored is ``(e + origin) * downsample`` at level 0, and a centre coordinate ``c`` is
``(c + origin + 0.5) * downsample - 0.5``, where ``origin`` is the scored pixels' top-left
in pixels of the level scored.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


class Placement:
    """Maps the image scored to level 0: region origin (x, y) in scored pixels and downsample
    (see module docstring for the two coordinate conventions)."""

    def __init__(self, origin: tuple[float, float] = (0, 0), downsample: float = 1.0):
        self.origin = np.array([float(origin[0]), float(origin[1])])
        self.downsample = float(downsample)

    @classmethod
    def from_settings(cls, settings: dict) -> Placement:
        """The placement of a slide run's settings (``region`` of the level, ``downsample``)."""
        region = settings.get("region") or (0, 0)
        return cls((region[0], region[1]), settings["downsample"])

    @property
    def corner(self) -> tuple[float, float]:
        """Level-0 ``(x, y)`` of the top-left corner of the pixels scored."""
        x, y = self.origin * self.downsample
        return float(x), float(y)

    def edges_to_full(self, xy: np.ndarray) -> np.ndarray:
        """(k, 2) ``(x, y)`` edge coordinates (outlines, boxes) -> level-0 pixels."""
        return (np.asarray(xy, float) + self.origin) * self.downsample

    def centres_to_full(self, xy: np.ndarray) -> np.ndarray:
        """(k, 2) ``(x, y)`` centre coordinates (centroids) -> level-0 pixels."""
        if self.downsample == 1:  # exact: no half-pixel round trip
            return np.asarray(xy, float) + self.origin
        return (np.asarray(xy, float) + self.origin + 0.5) * self.downsample - 0.5

    def full_edges_to_centres(self, xy: np.ndarray) -> np.ndarray:
        """(k, 2) level-0 edge coordinates (QuPath polygons) -> scored centre coordinates."""
        return np.asarray(xy, float) / self.downsample - self.origin - 0.5

    def full_polygons_to_centres(self, polygons: Sequence[tuple[np.ndarray, Sequence[np.ndarray]]]
                                 ) -> list[tuple[np.ndarray, list[np.ndarray]]]:
        """(exterior, holes) polygons of level-0 edge coordinates (QuPath annotations) -> the
        same polygons in scored centre coordinates (:meth:`full_edges_to_centres`)."""
        return [(self.full_edges_to_centres(exterior), [self.full_edges_to_centres(h) for h in holes])
                for exterior, holes in polygons]

    def box_in_scored(self, region: tuple[float, float, float, float], shape: tuple[int, int]) -> tuple[int, int, int, int]:
        """The pixels scored (an image of ``shape`` (H, W)) that cover ``region``
        ``(x, y, width, height)`` of level-0 pixels, as ``(x, y, width, height)``."""
        x, y, w, h = region
        d = self.downsample
        ox, oy = self.origin
        height, width = shape
        x0, y0 = min(max(int(x // d - ox), 0), width - 1), min(max(int(y // d - oy), 0), height - 1)
        x1 = min(width, max(x0 + 1, math.ceil((x + w) / d - ox)))
        y1 = min(height, max(y0 + 1, math.ceil((y + h) / d - oy)))
        return x0, y0, x1 - x0, y1 - y0
