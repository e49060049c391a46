"""Point detection: heat maps per class -> one point per nucleus, with a class and a confidence.

A point-detection network (``docs/point-detection.md``) gives one heat map per class, high at
the centres of nuclei of that class. Points come from it in two steps:

1. **Candidates** (once per network run): every local maximum of each class's heat map
   (:func:`skimage.feature.peak_local_max` over a 3 x 3 neighbourhood) whose value is at
   least ``floor``, with its class and its value as confidence.
2. **Selection** (any number of times, from the candidates alone): candidates under the
   confidence ``threshold`` are dropped; then, strongest first, each point suppresses every
   weaker point within ``min_distance`` pixels, whatever their classes (non-maximum
   suppression across classes), so a nucleus keeps one point, of its best class.

A new threshold (not below ``floor``) or distance re-selects from the candidates without
running the network again, and gives exactly what a first run with those settings gives.
Coordinates are ``(x, y)`` pixels, pixel centres at integers (the cell table's convention).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree
from skimage.feature import peak_local_max

from napari_deepliif.cells.metrics import percent_positive
from napari_deepliif.cells.points import Points

Window = tuple[int, int, int, int]  #: (y0, y1, x0, x1), end exclusive

#: Lowest confidence a candidate is kept at, unless a model says otherwise.
DEFAULT_FLOOR = 0.05


@dataclass(frozen=True)
class PointCandidates:
    """Local maxima of a network's heat maps, before thresholding and suppression.

    Attributes
    ----------
    xy : ndarray of float, shape (n, 2)
        ``(x, y)`` pixel positions.
    cls : ndarray of int, shape (n,)
        Class index (heat map channel) of each candidate.
    confidence : ndarray of float, shape (n,)
        Heat map value at the candidate.
    class_names : tuple of str
        Name of each class index.
    positive_classes : tuple of int
        Class indexes counted as positive.
    floor : float
        Lowest confidence kept; no threshold below it can be applied.
    shape : (int, int)
        (height, width) of the heat maps.
    """

    xy: np.ndarray
    cls: np.ndarray
    confidence: np.ndarray
    class_names: tuple[str, ...]
    positive_classes: tuple[int, ...]
    floor: float
    shape: tuple[int, int]

    def __len__(self) -> int:
        return len(self.xy)


def find_candidates(
    heatmaps: np.ndarray,
    class_names: Sequence[str],
    positive_classes: Sequence[int],
    *,
    floor: float = DEFAULT_FLOOR,
) -> PointCandidates:
    """Every local maximum of each class's heat map at or above ``floor``.

    Parameters
    ----------
    heatmaps : ndarray of float, shape (C, H, W)
        One map per class (values are confidences, usually 0..1).
    class_names : sequence of str
        ``C`` class names.
    positive_classes : sequence of int
        Indexes of the classes counted as positive.
    floor : float
        Lowest heat map value a candidate may have.

    Returns
    -------
    PointCandidates
        In the order class, then row, then column.

    Raises
    ------
    ValueError
        For heat maps that are not (C, H, W) finite numbers, or names and classes that do
        not match them.
    """
    heatmaps = np.asarray(heatmaps)
    if heatmaps.ndim != 3 or not np.issubdtype(heatmaps.dtype, np.number):
        raise ValueError(f"heat maps must be a (classes, height, width) array of numbers, got shape {heatmaps.shape}")
    if len(class_names) != heatmaps.shape[0]:
        raise ValueError(f"{heatmaps.shape[0]} heat maps but {len(class_names)} class names")
    if any(not 0 <= c < len(class_names) for c in positive_classes):
        raise ValueError(f"positive classes {tuple(positive_classes)} are not among the {len(class_names)} classes")
    if not np.isfinite(heatmaps).all():
        raise ValueError("heat maps hold NaN or infinity")
    xy, cls, confidence = [], [], []
    for index, heatmap in enumerate(heatmaps):
        # min_distance=1: a 3 x 3 maximum; plateaus give several pixels, which selection merges
        rows_cols = peak_local_max(heatmap, min_distance=1, threshold_abs=floor, threshold_rel=None,
                                   exclude_border=False)
        rows_cols = rows_cols[np.lexsort((rows_cols[:, 1], rows_cols[:, 0]))]
        xy.append(rows_cols[:, ::-1].astype(np.float64))
        cls.append(np.full(len(rows_cols), index, dtype=np.int64))
        confidence.append(heatmap[rows_cols[:, 0], rows_cols[:, 1]].astype(np.float64))
    return PointCandidates(np.concatenate(xy).reshape(-1, 2), np.concatenate(cls), np.concatenate(confidence),
                           tuple(str(n) for n in class_names), tuple(int(c) for c in positive_classes),
                           float(floor), (int(heatmaps.shape[1]), int(heatmaps.shape[2])))


def find_candidates_by_window(
    read: Callable[[Window], np.ndarray],
    boxes: Iterable[tuple[Window, Window]],
    shape: tuple[int, int],
    class_names: Sequence[str],
    positive_classes: Sequence[int],
    *,
    floor: float = DEFAULT_FLOOR,
    progress: Callable[[int, int], None] | None = None,
) -> PointCandidates:
    """:func:`find_candidates` of an image too large to hold, read window by window.

    Each window's candidates in its core are kept, so every pixel is judged once, in a
    window that holds its 3 x 3 neighbourhood; joined in :func:`find_candidates`' order, they
    are the candidates of the whole image.

    Parameters
    ----------
    read : callable((y0, y1, x0, x1)) -> ndarray, shape (C, h, w)
        The heat maps of a window of the image.
    boxes : iterable of (core, window)
        ``(y0, y1, x0, x1)`` boxes (end exclusive): cores that tile the image, each in a window
        that grows it by at least one pixel where it is not at the image's edge.
    shape : (int, int)
        (height, width) of the image.
    class_names, positive_classes, floor
        As :func:`find_candidates`.
    progress : callable(done, total), optional
        Windows done and in all.

    Returns
    -------
    PointCandidates
        In image pixels, in the order class, then row, then column.
    """
    boxes = list(boxes)
    xy, cls, confidence = [np.empty((0, 2))], [np.empty(0, np.int64)], [np.empty(0)]
    for done, (core, window) in enumerate(boxes, 1):
        found = find_candidates(read(window), class_names, positive_classes, floor=floor)
        at = found.xy + (window[2], window[0])
        inside = ((at[:, 1] >= core[0]) & (at[:, 1] < core[1]) & (at[:, 0] >= core[2]) & (at[:, 0] < core[3]))
        xy.append(at[inside])
        cls.append(found.cls[inside])
        confidence.append(found.confidence[inside])
        if progress:
            progress(done, len(boxes))
    xy_all, cls_all, confidence_all = np.concatenate(xy), np.concatenate(cls), np.concatenate(confidence)
    order = np.lexsort((xy_all[:, 0], xy_all[:, 1], cls_all))
    return PointCandidates(xy_all[order], cls_all[order], confidence_all[order], tuple(str(n) for n in class_names),
                           tuple(int(c) for c in positive_classes), float(floor), (int(shape[0]), int(shape[1])))


def suppression_order(confidence: np.ndarray) -> np.ndarray:
    """Indexes by decreasing confidence, ties first in the input first: the order in which
    :func:`suppress` visits points."""
    return np.argsort(-np.asarray(confidence, dtype=np.float64), kind="stable")


def neighbours_within(xy: np.ndarray, min_distance: float) -> list[list[int]]:
    """For each point, the indexes of the other points within ``min_distance`` (Euclidean,
    inclusive): the pairs :func:`suppress` judges."""
    neighbours: list[list[int]] = [[] for _ in range(len(xy))]
    if len(xy):
        for a, b in cKDTree(xy).query_pairs(min_distance, output_type="ndarray").tolist():
            neighbours[a].append(b)
            neighbours[b].append(a)
    return neighbours


def suppress(xy: np.ndarray, confidence: np.ndarray, min_distance: float) -> np.ndarray:
    """Greedy non-maximum suppression: indexes of the points kept, strongest first.

    Points are visited by decreasing confidence (ties: first in the input first); a point is
    kept unless a kept point lies within ``min_distance`` (Euclidean, inclusive).

    Parameters
    ----------
    xy : ndarray, shape (n, 2)
    confidence : ndarray, shape (n,)
    min_distance : float
        Pixels; 0 only merges points at the same place.

    Returns
    -------
    ndarray of int
    """
    if not min_distance >= 0:
        raise ValueError(f"the minimum distance must be 0 or more pixels, got {min_distance}")
    order = suppression_order(confidence)
    neighbours = neighbours_within(xy, min_distance)
    suppressed = np.zeros(len(order), dtype=bool)
    kept = []
    for i in order.tolist():
        if suppressed[i]:
            continue
        kept.append(i)
        suppressed[neighbours[i]] = True
    return np.array(kept, dtype=np.intp)


@dataclass(frozen=True)
class PointDetections:
    """Points selected from candidates at a threshold and a minimum distance.

    Attributes
    ----------
    candidates : PointCandidates
    threshold : float
        Lowest confidence kept.
    min_distance : float
        Suppression distance (pixels).
    index : ndarray of int
        Candidates kept, strongest first.
    """

    candidates: PointCandidates
    threshold: float
    min_distance: float
    index: np.ndarray

    @property
    def xy(self) -> np.ndarray:
        """(n, 2) ``(x, y)`` of the points."""
        return self.candidates.xy[self.index]

    @property
    def cls(self) -> np.ndarray:
        """(n,) class index of each point."""
        return self.candidates.cls[self.index]

    @property
    def confidence(self) -> np.ndarray:
        """(n,) confidence of each point."""
        return self.candidates.confidence[self.index]

    @property
    def positive(self) -> np.ndarray:
        """(n,) whether each point is of a positive class."""
        return np.isin(self.cls, self.candidates.positive_classes)

    @property
    def class_names(self) -> list[str]:
        """Class name of each point."""
        return [self.candidates.class_names[c] for c in self.cls.tolist()]

    def counts(self) -> dict[str, int]:
        """Points per class name, in class order."""
        per_class = np.bincount(self.cls, minlength=len(self.candidates.class_names))
        return dict(zip(self.candidates.class_names, per_class.tolist()))

    def scoring(self) -> dict:
        """``num_total``, ``num_pos``, ``num_neg`` and ``percent_pos`` (the score's count keys),
        with the ``threshold`` and ``min_distance`` that selected the points."""
        n_pos = int(np.count_nonzero(self.positive))
        n_neg = len(self.index) - n_pos
        return {"num_total": len(self.index), "num_pos": n_pos, "num_neg": n_neg,
                "percent_pos": round(percent_positive(n_pos, n_neg), 1),
                "threshold": self.threshold, "min_distance": self.min_distance}

    def points(self) -> Points:
        """The points with their positive/negative class, for evaluation."""
        return Points(self.xy, self.positive)

    def reselect(self, *, threshold: float | None = None, min_distance: float | None = None) -> PointDetections:
        """The points at another threshold or distance, from the same candidates."""
        return select_points(self.candidates, threshold=self.threshold if threshold is None else threshold,
                             min_distance=self.min_distance if min_distance is None else min_distance)


def select_points(candidates: PointCandidates, *, threshold: float, min_distance: float) -> PointDetections:
    """Threshold candidates and suppress all but the strongest point within ``min_distance``.

    Parameters
    ----------
    candidates : PointCandidates
    threshold : float
        Lowest confidence kept; at least ``candidates.floor``.
    min_distance : float
        Pixels: a point suppresses weaker points (of any class) within this distance.

    Returns
    -------
    PointDetections

    Raises
    ------
    ValueError
        For a threshold below the candidates' floor (those points were never kept).
    """
    if not threshold >= candidates.floor:
        raise ValueError(f"confidence threshold {threshold} is below {candidates.floor}, the lowest the network's"
                         " points were kept at; raise it (or run the model with a lower floor)")
    above = np.flatnonzero(candidates.confidence >= threshold)
    kept = above[suppress(candidates.xy[above], candidates.confidence[above], min_distance)]
    return PointDetections(candidates, float(threshold), float(min_distance), kept)


def detect_points(
    heatmaps: np.ndarray,
    class_names: Sequence[str],
    positive_classes: Sequence[int],
    *,
    threshold: float,
    min_distance: float,
    floor: float = DEFAULT_FLOOR,
) -> PointDetections:
    """Heat maps per class -> points: :func:`find_candidates` then :func:`select_points`.

    Parameters
    ----------
    heatmaps : ndarray of float, shape (C, H, W)
    class_names : sequence of str
    positive_classes : sequence of int
    threshold : float
        Lowest confidence kept (at least ``floor``).
    min_distance : float
        Suppression distance in pixels (convert micrometres with the pixel size first).
    floor : float
        Lowest confidence kept as a candidate for later re-selection.

    Returns
    -------
    PointDetections
    """
    candidates = find_candidates(heatmaps, class_names, positive_classes, floor=min(floor, threshold))
    return select_points(candidates, threshold=threshold, min_distance=min_distance)


def deciders(detections: PointDetections, start: np.ndarray) -> np.ndarray:
    """The candidates whose selection decides which of the candidates ``start`` are points.

    :func:`suppress` keeps a candidate unless a stronger kept candidate lies within the
    distance, so its fate rests on its stronger neighbours, theirs on their stronger
    neighbours, and so on. The deciders are that closure: the candidates of ``start`` over the
    threshold, then every candidate over the threshold within ``min_distance`` of a decider
    and ahead of it in :func:`suppress`'s order (ties included), repeated until none is added.

    Parameters
    ----------
    detections : PointDetections
        A selection (its threshold and distance are the ones judged).
    start : ndarray of bool, shape (n,)
        Which candidates to account for.

    Returns
    -------
    ndarray of int
        Candidate indexes, in candidate order.
    """
    candidates = detections.candidates
    above = np.flatnonzero(candidates.confidence >= detections.threshold)
    rank = np.empty(len(above), dtype=np.intp)
    rank[suppression_order(candidates.confidence[above])] = np.arange(len(above))
    neighbours = neighbours_within(candidates.xy[above], detections.min_distance)
    member = np.asarray(start, bool)[above]
    frontier = np.flatnonzero(member).tolist()
    while frontier:
        added = [j for i in frontier for j in neighbours[i] if rank[j] < rank[i] and not member[j]]
        member[added] = True
        frontier = list(set(added))
    return above[member]


def decided_inside(detections: PointDetections, start: np.ndarray, open_sides: tuple[bool, bool, bool, bool]) -> bool:
    """Whether the candidates ``start`` are selected as they would be in any larger image that
    holds these heat maps.

    Beyond an open side of the heat maps lie pixels not seen: candidates there, or local maxima
    its outermost pixels hide or fake, can change the selection of every decider
    (:func:`deciders`) within ``min_distance + 1`` pixels of it, and through them the fate of
    ``start``. With no decider that near an open side, the fate of ``start`` is settled.

    Parameters
    ----------
    detections : PointDetections
        A selection from the candidates of heat maps that are a window of a larger image's.
    start : ndarray of bool, shape (n,)
        Which candidates to account for (usually those in a region of the window).
    open_sides : (bool, bool, bool, bool)
        Whether the top, bottom, left and right sides of the heat maps lie inside the larger
        image (False where they are its edge).

    Returns
    -------
    bool
    """
    xy = detections.candidates.xy[deciders(detections, start)]
    height, width = detections.candidates.shape
    reach = detections.min_distance + 1
    top, bottom, left, right = open_sides
    near = ((top & (xy[:, 1] < reach)) | (bottom & (xy[:, 1] > height - 1 - reach))
            | (left & (xy[:, 0] < reach)) | (right & (xy[:, 0] > width - 1 - reach)))
    return not near.any()
