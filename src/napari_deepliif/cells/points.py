"""Cells as points, and detection metrics between predicted and true points.

A point is a cell centre ``(x, y)`` in pixels, pixel centres at integer coordinates (the cell
table's convention), with a class: positive or negative. Points are matched one to one within
a radius, optimally: the matching has as many pairs as any matching within the radius can
have, and among those the smallest sum of distances (a greedy nearest-first matching can
miss pairs where cells crowd).

Detection scores (precision, recall, F1) are computed three ways: regardless of class
(``detection``), and for each class with points matched only to points of the same class
(``positive``, ``negative``). The count error is predicted minus true points; the proportion
error is the absolute difference of their percentages of positive points, in percentage
points (the IHC quantification difference of :mod:`napari_deepliif.cells.metrics`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from napari_deepliif.cells.metrics import percent_positive


@dataclass(frozen=True)
class Points:
    """Cell centres with a class.

    Attributes
    ----------
    xy : ndarray of float, shape (n, 2)
        ``(x, y)`` in pixels, pixel centres at integers.
    positive : ndarray of bool, shape (n,)
        Whether each point is a positive cell.
    """

    xy: np.ndarray
    positive: np.ndarray

    def __post_init__(self) -> None:
        xy = np.asarray(self.xy, dtype=np.float64).reshape(-1, 2)
        positive = np.asarray(self.positive, dtype=bool).reshape(-1)
        if len(xy) != len(positive):
            raise ValueError(f"{len(xy)} points but {len(positive)} classes")
        if not np.isfinite(xy).all():
            raise ValueError("point coordinates must be finite numbers")
        object.__setattr__(self, "xy", xy)
        object.__setattr__(self, "positive", positive)

    def __len__(self) -> int:
        return len(self.xy)

    @property
    def num_positive(self) -> int:
        """Number of positive points."""
        return int(np.count_nonzero(self.positive))

    def subset(self, keep: np.ndarray) -> Points:
        """The points selected by a boolean mask or index array."""
        return Points(self.xy[keep], self.positive[keep])


def match_points(predicted_xy: np.ndarray, truth_xy: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """Optimal one-to-one matching of two point sets within a radius.

    Parameters
    ----------
    predicted_xy, truth_xy : ndarray, shape (n, 2) and (m, 2)
        Point coordinates (any units, the same for both and for ``radius``).
    radius : float
        A pair can match when its distance is at most this.

    Returns
    -------
    predicted_index, truth_index : ndarray of int, shape (k,)
        Matched pairs, sorted by predicted index. ``k`` is the largest number of pairs any
        one-to-one matching within ``radius`` has, and their summed distance is the least
        among such matchings.
    """
    from scipy.optimize import linear_sum_assignment  # slow to import; only matching needs it

    if not radius >= 0:
        raise ValueError(f"radius must be a non-negative number, got {radius}")
    predicted_xy = np.asarray(predicted_xy, dtype=np.float64).reshape(-1, 2)
    truth_xy = np.asarray(truth_xy, dtype=np.float64).reshape(-1, 2)
    empty = np.zeros(0, dtype=np.intp)
    if not len(predicted_xy) or not len(truth_xy):
        return empty, empty
    candidates = cKDTree(predicted_xy).query_ball_tree(cKDTree(truth_xy), radius)
    p_idx = np.repeat(np.arange(len(predicted_xy)), [len(c) for c in candidates])
    t_idx = np.fromiter((j for c in candidates for j in c), dtype=np.intp, count=len(p_idx))
    if not len(p_idx):
        return empty, empty
    distance = np.hypot(*(predicted_xy[p_idx] - truth_xy[t_idx]).T)
    # solve each connected group of candidate pairs on its own: groups are small
    n_pred = len(predicted_xy)
    graph = coo_matrix((np.ones(len(p_idx)), (p_idx, n_pred + t_idx)), shape=(n_pred + len(truth_xy),) * 2)
    _, group = connected_components(graph, directed=False)
    pair_group = group[p_idx]
    alone = np.bincount(pair_group)[pair_group] == 1  # a group of one pair: that pair matches
    matched_p, matched_t = [p_idx[alone]], [t_idx[alone]]
    crowded = np.flatnonzero(~alone)
    order = crowded[np.argsort(pair_group[crowded], kind="stable")]
    bounds = np.flatnonzero(np.diff(pair_group[order])) + 1
    for pairs in np.split(order, bounds) if len(order) else ():
        rows, r_inv = np.unique(p_idx[pairs], return_inverse=True)
        cols, c_inv = np.unique(t_idx[pairs], return_inverse=True)
        # a missing pair costs more than any matching's whole distance: pairs come first
        forbidden = 1.0 + distance[pairs].sum()
        cost = np.full((len(rows), len(cols)), forbidden)
        cost[r_inv, c_inv] = distance[pairs]
        r, c = linear_sum_assignment(cost)
        allowed = cost[r, c] < forbidden
        matched_p.append(rows[r[allowed]])
        matched_t.append(cols[c[allowed]])
    pred_index = np.concatenate(matched_p)
    truth_index = np.concatenate(matched_t)
    sort = np.argsort(pred_index)
    return pred_index[sort], truth_index[sort]


@dataclass(frozen=True)
class DetectionScores:
    """Matches of predicted points to true ones: counts and the fractions derived from them.

    Precision, recall and F1 are 1 when there are neither predicted nor true points, and 0
    where only one side has points.
    """

    true_positives: int
    false_positives: int
    false_negatives: int

    @property
    def precision(self) -> float:
        """Matched predicted points / predicted points."""
        predicted = self.true_positives + self.false_positives
        return self.true_positives / predicted if predicted else float(self.false_negatives == 0)

    @property
    def recall(self) -> float:
        """Matched true points / true points."""
        truth = self.true_positives + self.false_negatives
        return self.true_positives / truth if truth else float(self.false_positives == 0)

    @property
    def f1(self) -> float:
        """2 TP / (2 TP + FP + FN)."""
        total = 2 * self.true_positives + self.false_positives + self.false_negatives
        return 2 * self.true_positives / total if total else 1.0

    def as_dict(self) -> dict[str, float]:
        """Counts and fractions as a flat dict."""
        return {**asdict(self), "precision": self.precision, "recall": self.recall, "f1": self.f1}


def _scores(n_predicted: int, n_truth: int, matches: int) -> DetectionScores:
    return DetectionScores(matches, n_predicted - matches, n_truth - matches)


@dataclass(frozen=True)
class PointMetrics:
    """Predicted points against true points, matched within ``radius`` (pixels).

    ``mean_distance`` is the mean distance of the class-agnostic matches in pixels and
    ``class_agreement`` the fraction of those matches whose classes agree (both None without
    matches).
    """

    radius: float
    detection: DetectionScores
    positive: DetectionScores
    negative: DetectionScores
    class_agreement: float | None
    mean_distance: float | None
    num_truth: int
    num_predicted: int
    num_positive_truth: int
    num_positive_predicted: int

    @property
    def count_error(self) -> int:
        """Predicted points minus true points."""
        return self.num_predicted - self.num_truth

    @property
    def percent_positive_truth(self) -> float:
        """Percentage of positive true points."""
        return percent_positive(self.num_positive_truth, self.num_truth - self.num_positive_truth)

    @property
    def percent_positive_predicted(self) -> float:
        """Percentage of positive predicted points."""
        return percent_positive(self.num_positive_predicted, self.num_predicted - self.num_positive_predicted)

    @property
    def proportion_error(self) -> float:
        """Absolute difference of the percentages of positive points (percentage points)."""
        return abs(self.percent_positive_predicted - self.percent_positive_truth)

    def as_dict(self) -> dict[str, float | None]:
        """Flat ``{name: value}`` of every metric (class scores prefixed by their class)."""
        flat: dict[str, float | None] = {"radius_px": self.radius}
        for name in ("detection", "positive", "negative"):
            scores = getattr(self, name).as_dict()
            flat.update(scores if name == "detection" else {f"{k}_{name}": v for k, v in scores.items()})
        flat.update(class_agreement=self.class_agreement, mean_distance_px=self.mean_distance,
                    num_truth=self.num_truth, num_predicted=self.num_predicted, count_error=self.count_error,
                    percent_positive_truth=self.percent_positive_truth,
                    percent_positive_predicted=self.percent_positive_predicted,
                    proportion_error=self.proportion_error)
        return flat


def evaluate_points(predicted: Points, truth: Points, radius: float) -> PointMetrics:
    """Detection and class metrics of predicted points against true points.

    Parameters
    ----------
    predicted, truth : Points
        In the same pixel coordinates.
    radius : float
        Largest distance (pixels) at which a predicted point detects a true one.

    Returns
    -------
    PointMetrics
    """
    p_idx, t_idx = match_points(predicted.xy, truth.xy, radius)
    same_class = predicted.positive[p_idx] == truth.positive[t_idx]
    per_class = {}
    for name, flag in (("positive", True), ("negative", False)):
        pred_c, true_c = predicted.subset(predicted.positive == flag), truth.subset(truth.positive == flag)
        per_class[name] = _scores(len(pred_c), len(true_c), len(match_points(pred_c.xy, true_c.xy, radius)[0]))
    distance = np.hypot(*(predicted.xy[p_idx] - truth.xy[t_idx]).T)
    return PointMetrics(
        radius=float(radius),
        detection=_scores(len(predicted), len(truth), len(p_idx)),
        class_agreement=float(same_class.mean()) if len(p_idx) else None,
        mean_distance=float(distance.mean()) if len(p_idx) else None,
        num_truth=len(truth),
        num_predicted=len(predicted),
        num_positive_truth=truth.num_positive,
        num_positive_predicted=predicted.num_positive,
        **per_class,
    )
