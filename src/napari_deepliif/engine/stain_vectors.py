"""Stain vectors of a hematoxylin-DAB image: Macenko's estimate, with the fixed HED matrix as fallback.

Macenko et al. (ISBI 2009, "A method for normalizing histology slides for quantitative
analysis") find the two stains of an image as the extreme directions of its optical-density
(OD) pixels: the plane of the two largest eigenvectors of the OD second moments is the stain
plane, and the ``ANGLE_PERCENTILE`` and ``100 - ANGLE_PERCENTILE`` percentiles of the pixels'
angles in that plane are the two stain directions. The estimate is built from sums over
pixels (:func:`od_moments`, then :func:`angle_histogram` in a second pass), so an image of
any size is read piece by piece and the result does not depend on how it was split.

The estimate is checked against scikit-image's HED matrix (Ruifrok & Johnston 2001) and
that matrix is used instead when too few pixels are stained or an estimated stain lies
further than ``MAX_DEVIATION_DEG`` from its reference (e.g. a slide with no DAB, whose
second direction is noise or background). See ``docs/stain-engine.md``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from skimage.color import rgb_from_hed

log = logging.getLogger(__name__)

#: Pixels whose OD vector is shorter than this are background and left out (Macenko's beta).
OD_MIN = 0.15
#: Percentile of the pixels' angles taken as each stain's direction (Macenko's alpha).
ANGLE_PERCENTILE = 1.0
#: Fewer stained pixels than this: the reference matrix is used.
MIN_STAINED_PIXELS = 1000
#: An estimated stain further than this from its reference (degrees) is implausible.
MAX_DEVIATION_DEG = 15.0
#: OD quantum of the second moments (1 / OD_STEPS).
OD_STEPS = 4096
#: Bins of the angle histogram over [-90, 90) degrees.
ANGLE_BINS = 7200

_REFERENCE = rgb_from_hed / np.linalg.norm(rgb_from_hed, axis=1, keepdims=True)

Vector = tuple[float, float, float]


def _vector(values: Any) -> Vector:
    x, y, z = (float(v) for v in values)
    return x, y, z


@dataclass(frozen=True)
class StainVectors:
    """Unit OD vectors (red, green, blue) of the stains an image is unmixed into.

    Attributes
    ----------
    hematoxylin, third, dab : tuple of 3 float
        Unit OD vectors. ``third`` is eosin in the reference matrix and the direction
        orthogonal to both stains in an estimate (it collects what neither explains).
    estimated : bool
        True for a Macenko estimate, False for the reference HED matrix.
    """

    hematoxylin: Vector
    third: Vector
    dab: Vector
    estimated: bool

    def unmixing(self) -> np.ndarray:
        """Matrix (3 x 3, float32) with ``od @ matrix`` = (hematoxylin, third, DAB) ODs."""
        rows = np.array([self.hematoxylin, self.third, self.dab], dtype=np.float64)
        return np.linalg.inv(rows).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (lists of floats), as kept in a run's statistics."""
        return {"hematoxylin": list(self.hematoxylin), "third": list(self.third), "dab": list(self.dab),
                "estimated": self.estimated}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StainVectors:
        """The vectors of :meth:`to_dict`."""
        return cls(_vector(data["hematoxylin"]), _vector(data["third"]), _vector(data["dab"]),
                   bool(data["estimated"]))


#: scikit-image's HED matrix (``skimage.color.rgb_from_hed``): the fallback.
REFERENCE_VECTORS = StainVectors(*(_vector(row) for row in rgb_from_hed), estimated=False)


def od_moments(od: np.ndarray) -> tuple[int, np.ndarray]:
    """Count and second-moment sum (3 x 3, int64, OD in units of 1 / ``OD_STEPS``) of the
    stained pixels of ``od`` (..., 3).

    Integer sums are exact, so the moments of an image are the same however it is split
    (up to ~10^11 pixels).
    """
    stained = np.rint(_stained(od) * OD_STEPS).astype(np.int64)
    columns = [stained[:, i] for i in range(3)]
    moments = np.array([[int(np.dot(a, b)) for b in columns] for a in columns], dtype=np.int64)
    return len(stained), moments


def stain_plane(count: int, moments: np.ndarray) -> np.ndarray | None:
    """The plane (3 x 2, columns unit, first = principal direction with a positive sum) of
    the two largest eigenvectors of the moments; None for fewer than ``MIN_STAINED_PIXELS``."""
    if count < MIN_STAINED_PIXELS:
        return None
    _, vectors = np.linalg.eigh(moments / (count * OD_STEPS**2))
    plane = vectors[:, [2, 1]]
    return plane * np.sign(plane.sum(axis=0))


def angle_histogram(od: np.ndarray, plane: np.ndarray) -> np.ndarray:
    """Histogram (``ANGLE_BINS`` counts over [-90, 90) degrees) of the stained pixels' angles
    in ``plane``, measured from its principal direction."""
    stained = _stained(od).astype(np.float64)
    # element by element, so a pixel's angle never depends on how many pixels come with it
    x, y = (stained[:, 0] * plane[0, k] + stained[:, 1] * plane[1, k] + stained[:, 2] * plane[2, k] for k in (0, 1))
    angles = np.arctan2(y, x)
    bins = np.clip(((angles + math.pi / 2) * (ANGLE_BINS / math.pi)).astype(np.int64), 0, ANGLE_BINS - 1)
    return np.bincount(bins, minlength=ANGLE_BINS)


def vectors_from_angles(plane: np.ndarray | None, counts: np.ndarray) -> StainVectors:
    """The stain vectors at the angle percentiles of ``counts``, or :data:`REFERENCE_VECTORS`
    when there is no plane or the estimate is implausible (logged)."""
    if plane is None:
        log.info("stain vectors: too few stained pixels, using the reference HED matrix")
        return REFERENCE_VECTORS
    cumulative = np.cumsum(counts) / counts.sum()
    edges = np.linspace(-math.pi / 2, math.pi / 2, ANGLE_BINS + 1)
    ends = [edges[np.searchsorted(cumulative, q / 100) + 1] for q in (ANGLE_PERCENTILE, 100 - ANGLE_PERCENTILE)]
    first, second = (plane @ np.array([math.cos(a), math.sin(a)]) for a in ends)
    first, second = first / np.linalg.norm(first), second / np.linalg.norm(second)
    if _angle(first, _REFERENCE[0]) + _angle(second, _REFERENCE[2]) > _angle(second, _REFERENCE[0]) + _angle(first, _REFERENCE[2]):
        first, second = second, first
    deviations = (_angle(first, _REFERENCE[0]), _angle(second, _REFERENCE[2]))
    if max(deviations) > MAX_DEVIATION_DEG:
        log.info("stain vectors: estimate %.0f and %.0f degrees from the reference hematoxylin and DAB, "
                 "using the reference HED matrix", *deviations)
        return REFERENCE_VECTORS
    third = np.cross(first, second)
    return StainVectors(_vector(first), _vector(third / np.linalg.norm(third)), _vector(second), estimated=True)


def _stained(od: np.ndarray) -> np.ndarray:
    flat = od.reshape(-1, 3)
    return flat[np.einsum("ij,ij->i", flat, flat) > OD_MIN**2]


def _angle(a: np.ndarray, b: np.ndarray) -> float:
    return math.degrees(math.acos(min(1.0, abs(float(a @ b)))))

