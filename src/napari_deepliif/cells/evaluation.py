"""Score any engine's cells against ground truth: mask metrics and point metrics.

A prediction or a ground truth is either :class:`Instances` (a label image with a class per
label: from a Seg-colour mask, a labels file or a cell table) or
:class:`~napari_deepliif.cells.points.Points` (cell centres with a class). Two instance sets
get the DeepLIIF paper's mask metrics (:mod:`napari_deepliif.cells.metrics`) and, through
their centroids, the point metrics (:mod:`napari_deepliif.cells.points`); when either side is
points, only the point metrics apply. Readers of files are in
:mod:`napari_deepliif.io.ground_truth`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from napari_deepliif.cells.metrics import SegMetrics, evaluate_instances, seg_instances
from napari_deepliif.cells.points import PointMetrics, Points, evaluate_points
from napari_deepliif.cells.scoring import in_box
from napari_deepliif.constants import DEFAULT_SEG_THRESH

#: Match radius of the point metrics when none is given (micrometres): about a nucleus radius.
DEFAULT_RADIUS_UM = 4.0


@dataclass(frozen=True)
class Instances:
    """Cell instances: a label image and a class per label.

    Attributes
    ----------
    labels : ndarray of int32, shape (H, W)
        0 for background, cells 1..n (every label present).
    positive : ndarray of bool, shape (n + 1,)
        Whether cell ``k`` is positive, indexed by label (entry 0 unused).
    """

    labels: np.ndarray
    positive: np.ndarray

    @classmethod
    def from_seg(cls, seg: np.ndarray, *, seg_thresh: int = DEFAULT_SEG_THRESH, connectivity: int = 8) -> Instances:
        """The cells of a Seg-colour mask, read as :func:`~napari_deepliif.cells.metrics.evaluate_seg` reads it.

        Parameters
        ----------
        seg : ndarray, shape (H, W, 3)
            Seg-colour image (red positive, blue negative, green border).
        seg_thresh : int
            Cell-pixel threshold on R + B.
        connectivity : {8, 4}
            Pixel neighbourhood that joins pixels of one class into one cell.
        """
        return cls(*seg_instances(seg, seg_thresh, connectivity))

    @classmethod
    def from_labels(cls, labels: np.ndarray, positive_ids: np.ndarray) -> Instances:
        """Cells of a label image with any ids, given the ids of the positive cells.

        Parameters
        ----------
        labels : ndarray of int, shape (H, W)
            0 for background, any non-negative ids (renumbered 1..n in order of id).
        positive_ids : array-like of int
            Ids of the positive cells; every other id present is negative.
        """
        labels = np.asarray(labels)
        if labels.ndim != 2 or labels.dtype.kind not in "ui":
            raise ValueError(f"a label image must be 2-D integers, got shape {labels.shape} and dtype {labels.dtype}")
        if labels.size and labels.min() < 0:
            raise ValueError("label ids must be non-negative (0 is background)")
        ids, inverse = np.unique(labels, return_inverse=True)
        if ids.size and ids[0] != 0:
            ids, inverse = np.concatenate([[0], ids]), inverse + 1
        positive = np.isin(ids, np.asarray(positive_ids, dtype=ids.dtype))
        positive[0] = False
        return cls(inverse.reshape(labels.shape).astype(np.int32), positive)

    def __len__(self) -> int:
        return len(self.positive) - 1

    def centroids(self) -> Points:
        """Each cell's centroid (mean pixel position, pixel centres at integers) and class."""
        n = len(self)
        if n == 0:
            return Points(np.zeros((0, 2)), np.zeros(0, bool))
        yx = np.asarray(ndi.center_of_mass(np.ones(self.labels.shape), self.labels, np.arange(1, n + 1)))
        return Points(yx[:, ::-1], self.positive[1:])


#: What :func:`evaluate` compares: instances or points.
Annotation = Instances | Points


@dataclass(frozen=True)
class Evaluation:
    """A prediction scored against ground truth.

    Attributes
    ----------
    mask : SegMetrics or None
        The paper's mask metrics; None when either side is points.
    points : PointMetrics
        Point metrics (instances compared through their centroids).
    radius_um, mpp : float
        Match radius (µm) and the pixel size (µm/px) that turned it into pixels.
    """

    mask: SegMetrics | None
    points: PointMetrics
    radius_um: float
    mpp: float

    def as_dict(self) -> dict:
        """``{"settings": ..., "mask": {...} or None, "points": {...}}`` with JSON types."""
        return {"settings": {"radius_um": self.radius_um, "mpp": self.mpp, "radius_px": self.points.radius},
                "mask": None if self.mask is None else self.mask.as_dict(),
                "points": self.points.as_dict()}


def evaluate(
    prediction: Annotation,
    truth: Annotation,
    *,
    mpp: float,
    radius_um: float = DEFAULT_RADIUS_UM,
    iou_threshold: float = 0.5,
    region: tuple[float, float, float, float] | None = None,
) -> Evaluation:
    """Score a prediction against ground truth.

    Parameters
    ----------
    prediction, truth : Instances or Points
        In the same pixel grid (instances of the same shape; points in the same pixels).
    mpp : float
        Pixel size in µm/px, to turn ``radius_um`` into pixels.
    radius_um : float
        A predicted point detects a true one within this distance (µm).
    iou_threshold : float
        IoU above which a predicted instance detects a true one (mask F1).
    region : (x, y, width, height), optional
        Pixels whose cells count (a prediction made for a region only): points, and
        centroids of instances, outside it are left out on both sides, by the rule a score
        counts a region's cells by (:func:`~napari_deepliif.cells.scoring.in_box`).

    Returns
    -------
    Evaluation

    Raises
    ------
    ValueError
        For a non-positive pixel size, a negative radius or instances of different shapes.
    """
    if not mpp > 0 or not np.isfinite(mpp):
        raise ValueError(f"the pixel size must be a positive number of µm/px, got {mpp}")
    if not radius_um >= 0:
        raise ValueError(f"the match radius must be a non-negative number of µm, got {radius_um}")
    mask = None
    if isinstance(prediction, Instances) and isinstance(truth, Instances):
        mask = evaluate_instances(prediction.labels, prediction.positive, truth.labels, truth.positive,
                                  iou_threshold=iou_threshold)
    as_points = [a.centroids() if isinstance(a, Instances) else a for a in (prediction, truth)]
    if region is not None:
        as_points = [p.subset(in_box(p.xy, region)) for p in as_points]
    return Evaluation(mask=mask, points=evaluate_points(*as_points, radius=radius_um / mpp),
                      radius_um=float(radius_um), mpp=float(mpp))
