"""The DeepLIIF paper's segmentation and scoring metrics between two Seg-colour masks.

Both masks use the Seg colour convention: red (255, 0, 0) positive cell, blue (0, 0, 255)
negative cell, green (0, 255, 0) border, black background. A pixel is a cell pixel when
R + B > ``seg_thresh`` and G <= 80, positive when R >= B (the reference postprocessing rule,
see ``constants.py``), so a pure-colour ground truth and a raw or refined Seg map are read the
same way. Instances are the 8-connected components of each class's pixels (as the
postprocessing forms cells); ``connectivity=4`` gives 4-connected ones, the rule under which
the anchor figures in ``shared/data/SOURCES.md`` were computed.

Pixel metrics (Dice, IoU, pixel accuracy) are computed per class over the whole image and
averaged over the two classes. Instance metrics (AJI, F1 at an IoU threshold) match cells
regardless of class; the class enters through the quantification difference: the absolute
difference of the percentages of positive cells, in percentage points.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage as ndi

from napari_deepliif.constants import DEFAULT_SEG_THRESH, SEG_BOUNDARY_MAX_GREEN

_STRUCTURES = {4: ndi.generate_binary_structure(2, 1), 8: ndi.generate_binary_structure(2, 2)}


@dataclass(frozen=True)
class PixelScores:
    """Pixel-level agreement of one class (each value in [0, 1])."""

    dice: float
    iou: float
    pixel_accuracy: float


@dataclass(frozen=True)
class SegMetrics:
    """All metrics of one predicted Seg mask against its ground truth.

    Pixel scores and instance scores are fractions in [0, 1]; percentages of positive cells
    and their difference are in percent / percentage points.
    """

    positive: PixelScores
    negative: PixelScores
    aji: float
    f1: float
    num_truth: int
    num_predicted: int
    percent_positive_truth: float
    percent_positive_predicted: float

    @property
    def dice(self) -> float:
        """Mean Dice of the positive and negative classes."""
        return (self.positive.dice + self.negative.dice) / 2

    @property
    def iou(self) -> float:
        """Mean IoU of the positive and negative classes."""
        return (self.positive.iou + self.negative.iou) / 2

    @property
    def pixel_accuracy(self) -> float:
        """Mean pixel accuracy of the positive and negative classes."""
        return (self.positive.pixel_accuracy + self.negative.pixel_accuracy) / 2

    @property
    def quantification_difference(self) -> float:
        """Absolute difference of the percentages of positive cells (percentage points)."""
        return abs(self.percent_positive_predicted - self.percent_positive_truth)

    def as_dict(self) -> dict[str, float]:
        """Flat ``{name: value}`` of every metric, class means included."""
        flat: dict[str, float] = {}
        for cls in ("positive", "negative"):
            for key, value in asdict(getattr(self, cls)).items():
                flat[f"{key}_{cls}"] = value
        flat.update(dice=self.dice, iou=self.iou, pixel_accuracy=self.pixel_accuracy)
        flat.update(aji=self.aji, f1=self.f1, num_truth=self.num_truth, num_predicted=self.num_predicted)
        flat.update(
            percent_positive_truth=self.percent_positive_truth,
            percent_positive_predicted=self.percent_positive_predicted,
            quantification_difference=self.quantification_difference,
        )
        return flat


def class_masks(seg: np.ndarray, seg_thresh: int = DEFAULT_SEG_THRESH) -> tuple[np.ndarray, np.ndarray]:
    """Positive and negative cell pixels of a Seg-colour image.

    Parameters
    ----------
    seg : ndarray, shape (H, W, 3)
        Seg-colour image (any integer dtype, RGB order).
    seg_thresh : int
        A pixel is a cell pixel when R + B exceeds this (and G <= 80).

    Returns
    -------
    positive, negative : ndarray of bool, shape (H, W)
    """
    seg = np.asarray(seg)
    if seg.ndim != 3 or seg.shape[2] < 3:
        raise ValueError(f"a Seg mask must be H x W x 3 RGB, got shape {seg.shape}")
    red = seg[..., 0].astype(np.int32)
    blue = seg[..., 2].astype(np.int32)
    cell = (red + blue > seg_thresh) & (seg[..., 1] <= SEG_BOUNDARY_MAX_GREEN)
    positive = cell & (red >= blue)
    return positive, cell & ~positive


def instance_labels(
    positive: np.ndarray, negative: np.ndarray, connectivity: int = 8
) -> tuple[np.ndarray, int, int]:
    """Label the connected components of each class; positive cells get labels 1..n_pos.

    Parameters
    ----------
    positive, negative : ndarray of bool, shape (H, W)
        Disjoint pixel masks of the two classes.
    connectivity : {8, 4}
        Pixel neighbourhood that joins pixels into one instance.

    Returns
    -------
    labels : ndarray of int32, shape (H, W)
        0 for background, positive cells 1..n_pos, negative cells n_pos+1..n_pos+n_neg.
    n_pos, n_neg : int
        Number of positive and negative instances.
    """
    if connectivity not in _STRUCTURES:
        raise ValueError(f"connectivity must be 4 or 8, got {connectivity}")
    pos_labels, n_pos = ndi.label(positive, structure=_STRUCTURES[connectivity])
    neg_labels, n_neg = ndi.label(negative, structure=_STRUCTURES[connectivity])
    labels = pos_labels.astype(np.int32)
    labels[negative] = neg_labels[negative] + n_pos
    return labels, int(n_pos), int(n_neg)


def pixel_scores(predicted: np.ndarray, truth: np.ndarray) -> PixelScores:
    """Dice, IoU and pixel accuracy of a boolean mask against the true one.

    When neither mask has a pixel, Dice and IoU are 1 (perfect agreement).
    """
    predicted = np.asarray(predicted, dtype=bool)
    truth = np.asarray(truth, dtype=bool)
    tp = int(np.count_nonzero(predicted & truth))
    fp = int(np.count_nonzero(predicted & ~truth))
    fn = int(np.count_nonzero(~predicted & truth))
    total = predicted.size
    if tp + fp + fn == 0:
        return PixelScores(dice=1.0, iou=1.0, pixel_accuracy=1.0)
    return PixelScores(
        dice=2 * tp / (2 * tp + fp + fn),
        iou=tp / (tp + fp + fn),
        pixel_accuracy=(total - fp - fn) / total,
    )


def _overlaps(truth: np.ndarray, predicted: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Intersections of every overlapping (truth, predicted) instance pair, and all areas.

    Returns ``pairs`` (k x 3 array of truth label, predicted label, intersection in pixels)
    and the areas of truth and predicted instances indexed by label.
    """
    t = truth.ravel().astype(np.int64)
    p = predicted.ravel().astype(np.int64)
    both = (t > 0) & (p > 0)
    n_pred = int(p.max(initial=0)) + 1
    keys, counts = np.unique(t[both] * n_pred + p[both], return_counts=True)
    pairs = np.stack([keys // n_pred, keys % n_pred, counts], axis=1)
    area_t = np.bincount(t, minlength=int(t.max(initial=0)) + 1)
    area_p = np.bincount(p, minlength=n_pred)
    return pairs, area_t, area_p


def aggregated_jaccard_index(truth: np.ndarray, predicted: np.ndarray) -> float:
    """AJI (Kumar et al., IEEE TMI 2017) between two instance label images (0 = background).

    Each true instance is paired with the predicted instance of highest IoU; the sum of
    their intersections is divided by the sum of their unions plus the area of every
    predicted instance that was never paired. 1.0 when both images are empty.
    """
    pairs, area_t, area_p = _overlaps(truth, predicted)
    true_ids = np.flatnonzero(area_t[1:]) + 1
    pred_ids = np.flatnonzero(area_p[1:]) + 1
    if true_ids.size == 0 and pred_ids.size == 0:
        return 1.0
    intersection = 0
    union = int(area_t[true_ids].sum())  # unmatched true instances count fully
    used = np.zeros(area_p.size, dtype=bool)
    if pairs.size:
        t_lab, p_lab, inter = pairs[:, 0], pairs[:, 1], pairs[:, 2]
        iou = inter / (area_t[t_lab] + area_p[p_lab] - inter)
        order = np.lexsort((-iou, t_lab))  # per truth label, best IoU first
        first = np.ones(order.size, dtype=bool)
        first[1:] = t_lab[order][1:] != t_lab[order][:-1]
        best = order[first]
        intersection = int(inter[best].sum())
        union += int((area_p[p_lab[best]] - inter[best]).sum())
        used[p_lab[best]] = True
    union += int(area_p[pred_ids][~used[pred_ids]].sum())
    return intersection / union if union else 0.0


def instance_f1(truth: np.ndarray, predicted: np.ndarray, iou_threshold: float = 0.5) -> float:
    """F1 of instance detection: a pair matches when its IoU exceeds ``iou_threshold``.

    With a threshold of at least 0.5 every instance has at most one match, so the matching
    is unique. 1.0 when both images are empty.

    Raises
    ------
    ValueError
        If ``iou_threshold`` is below 0.5 or not below 1.
    """
    if not 0.5 <= iou_threshold < 1:
        raise ValueError(f"iou_threshold must be in [0.5, 1), got {iou_threshold}")
    pairs, area_t, area_p = _overlaps(truth, predicted)
    n_true = int(np.count_nonzero(area_t[1:]))
    n_pred = int(np.count_nonzero(area_p[1:]))
    if n_true + n_pred == 0:
        return 1.0
    matches = 0
    if pairs.size:
        t_lab, p_lab, inter = pairs[:, 0], pairs[:, 1], pairs[:, 2]
        iou = inter / (area_t[t_lab] + area_p[p_lab] - inter)
        matches = int(np.count_nonzero(iou > iou_threshold))
    return 2 * matches / (n_true + n_pred)


def percent_positive(n_pos: int, n_neg: int) -> float:
    """Percentage of positive cells (0 when there are none)."""
    total = n_pos + n_neg
    return 100.0 * n_pos / total if total else 0.0


def evaluate_seg(
    predicted: np.ndarray,
    truth: np.ndarray,
    *,
    iou_threshold: float = 0.5,
    seg_thresh: int = DEFAULT_SEG_THRESH,
    connectivity: int = 8,
) -> SegMetrics:
    """Compare a predicted Seg-colour mask with a ground-truth one.

    Parameters
    ----------
    predicted, truth : ndarray, shape (H, W, 3)
        Seg-colour images of the same size (RGB order).
    iou_threshold : float
        IoU above which a predicted instance detects a true one (for F1).
    seg_thresh : int
        Cell-pixel threshold on R + B applied to both masks.
    connectivity : {8, 4}
        Pixel neighbourhood that forms instances (for AJI, F1 and cell counts).

    Returns
    -------
    SegMetrics
    """
    predicted = np.asarray(predicted)
    truth = np.asarray(truth)
    if predicted.shape[:2] != truth.shape[:2]:
        raise ValueError(f"mask sizes differ: predicted {predicted.shape[:2]}, truth {truth.shape[:2]} (H, W)")
    return evaluate_instances(*seg_instances(predicted, seg_thresh, connectivity),
                              *seg_instances(truth, seg_thresh, connectivity), iou_threshold=iou_threshold)


def seg_instances(seg: np.ndarray, seg_thresh: int = DEFAULT_SEG_THRESH,
                  connectivity: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """The cell instances of a Seg-colour mask and the class of each.

    Parameters
    ----------
    seg : ndarray, shape (H, W, 3)
        Seg-colour image (RGB order).
    seg_thresh : int
        Cell-pixel threshold on R + B.
    connectivity : {8, 4}
        Pixel neighbourhood that joins pixels of one class into one instance.

    Returns
    -------
    labels : ndarray of int32, shape (H, W)
        As :func:`instance_labels`.
    positive : ndarray of bool, shape (n + 1,)
        Whether instance ``k`` is positive, indexed by label (entry 0 False).
    """
    labels, n_pos, n_neg = instance_labels(*class_masks(seg, seg_thresh), connectivity)
    positive = np.arange(n_pos + n_neg + 1) <= n_pos
    positive[0] = False
    return labels, positive


def evaluate_instances(
    predicted: np.ndarray,
    predicted_positive: np.ndarray,
    truth: np.ndarray,
    truth_positive: np.ndarray,
    *,
    iou_threshold: float = 0.5,
) -> SegMetrics:
    """Compare predicted cell instances with true ones, each with a class per instance.

    Parameters
    ----------
    predicted, truth : ndarray of int, shape (H, W)
        Instance label images of the same size, 0 for background, labels 1..n.
    predicted_positive, truth_positive : ndarray of bool, shape (n + 1,)
        Whether instance ``k`` is positive, indexed by label (entry 0 is ignored).
    iou_threshold : float
        IoU above which a predicted instance detects a true one (for F1).

    Returns
    -------
    SegMetrics
        Counts are those of labels present in each image.
    """
    predicted = np.asarray(predicted)
    truth = np.asarray(truth)
    if predicted.shape != truth.shape:
        raise ValueError(f"mask sizes differ: predicted {predicted.shape}, truth {truth.shape} (H, W)")
    pred_pos, pred_n_pos, pred_n_neg = _class_split(predicted, predicted_positive)
    true_pos, true_n_pos, true_n_neg = _class_split(truth, truth_positive)
    return SegMetrics(
        positive=pixel_scores(pred_pos, true_pos),
        negative=pixel_scores((predicted > 0) & ~pred_pos, (truth > 0) & ~true_pos),
        aji=aggregated_jaccard_index(truth, predicted),
        f1=instance_f1(truth, predicted, iou_threshold),
        num_truth=true_n_pos + true_n_neg,
        num_predicted=pred_n_pos + pred_n_neg,
        percent_positive_truth=percent_positive(true_n_pos, true_n_neg),
        percent_positive_predicted=percent_positive(pred_n_pos, pred_n_neg),
    )


def _class_split(labels: np.ndarray, positive: np.ndarray) -> tuple[np.ndarray, int, int]:
    """Positive pixels of a label image, and its numbers of positive and negative labels."""
    positive = np.asarray(positive, dtype=bool)
    top = int(labels.max(initial=0))
    if labels.min(initial=0) < 0 or positive.ndim != 1 or positive.size <= top:
        raise ValueError(f"labels run 0..{top} but {positive.size} classes were given (one per label, 0 included)")
    present = np.bincount(labels.ravel(), minlength=top + 1)[1:] > 0
    n_pos = int(np.count_nonzero(present & positive[1:top + 1]))
    return positive[labels] & (labels > 0), n_pos, int(np.count_nonzero(present)) - n_pos
