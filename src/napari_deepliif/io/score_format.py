"""The one score format: what ``score.json`` holds for an image, a region, ROIs or a slide.

Every front end (``score``, ``batch``, the widget's export, the server's answers) builds its
record with :func:`score_record`; ``docs/score-format.md`` describes it and
``docs/score.schema.json`` is its JSON Schema. ``scoring`` holds the reference's score keys
in the reference's order (``compute_final_results``), as the reference web API's ``scoring``
does; ``placement`` says where the pixels scored lie in the full-resolution image, and
``provenance`` what produced the score. A score on a compartment's DAB OD (rather than the
engine's class) adds its settings and, with intensity bins, the bin counts and H-score after
the reference's keys; a record without them is laid out exactly as before, so a version-1
reader that reads the reference's keys reads either.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from napari_deepliif.io.jsonable import jsonable

#: Name and version of the format (``format``, ``format_version``).
FORMAT = "napari-deepliif/score"
FORMAT_VERSION = 1
#: Keys of the reference's score (``compute_final_results``), in its order.
SCORE_KEYS: tuple[str, ...] = (
    "num_total", "num_pos", "num_neg", "percent_pos",
    "seg_thresh", "size_thresh", "size_thresh_upper", "marker_thresh",
)
#: Keys a compartment score adds after :data:`SCORE_KEYS` (``Settings.compartment_scoring``).
COMPARTMENT_KEYS: tuple[str, ...] = (
    "compartment", "positive_od", "bins_od", "min_completeness", "expansion_um", "membrane_um",
)
#: Keys intensity bins add: counts of the positive cells in each bin and the H-score.
BIN_KEYS: tuple[str, ...] = ("num_1plus", "num_2plus", "num_3plus", "h_score")
#: Keys of ``placement``: where the scored pixels are in the full-resolution image.
PLACEMENT_KEYS: tuple[str, ...] = ("image", "level", "downsample", "mpp", "resolution", "origin", "shape", "region")
#: Keys of ``provenance``: what produced the score.
PROVENANCE_KEYS: tuple[str, ...] = ("engine", "model", "model_hash", "version", "statistics", "parameters")
ENGINES: tuple[str, ...] = ("deepliif", "stain", "classmap", "points", "translate")
#: Score keys a class-map model adds: counted cells per class name (``cells.classmap``); a
#: ``points`` model adds the names of the classes counted in ``num_pos`` too.
CLASS_KEYS: tuple[str, ...] = ("classes", "positive_classes")


def reference_scoring(scoring: Mapping[str, Any]) -> dict:
    """The reference's score keys of ``scoring`` (e.g. ``PostprocessResult.scoring``), in order,
    then the per-class counts of a class-map model where ``scoring`` has them."""
    keys = SCORE_KEYS + tuple(key for key in CLASS_KEYS if key in scoring)
    return {key: jsonable(scoring[key]) for key in keys}


def record_scoring(scoring: Mapping[str, Any]) -> dict:
    """``scoring`` of a record: :data:`SCORE_KEYS`, then the :data:`COMPARTMENT_KEYS` and
    :data:`BIN_KEYS` that ``scoring`` holds, in that order."""
    extra = [key for key in (*COMPARTMENT_KEYS, *BIN_KEYS) if key in scoring]
    return {**reference_scoring(scoring), **{key: jsonable(scoring[key]) for key in extra}}


def placement(*, image: str | None, resolution: str, shape: tuple[int, int], level: int = 0,
              downsample: float = 1.0, mpp: float | None = None, origin: tuple[float, float] = (0, 0),
              region: tuple[float, float, float, float] | None = None) -> dict:
    """Where the scored pixels lie.

    Parameters
    ----------
    image : str, optional
        The image's name (or path).
    resolution : str
        Magnification scored at.
    shape : (int, int)
        (height, width) of the pixels scored (the region, at ``level``).
    level : int
        Pyramid level read (0: full resolution).
    downsample : float
        Full-resolution pixels per scored pixel (the level's, times any extra averaging).
    mpp : float, optional
        Pixel size scored (µm/px), when known.
    origin : (x, y)
        Top-left corner of the pixels scored (the region and its context), in
        full-resolution pixels; they span ``shape * downsample`` from there.
    region : (x, y, width, height), optional
        The region whose cells count, in full-resolution pixels; None: all the pixels scored.
    """
    return {"image": image, "level": int(level), "downsample": float(downsample),
            "mpp": None if mpp is None else float(mpp), "resolution": resolution,
            "origin": [float(origin[0]), float(origin[1])], "shape": [int(shape[0]), int(shape[1])],
            "region": None if region is None else [float(v) for v in region]}


def score_record(
    scoring: Mapping[str, Any],
    *,
    placement: Mapping[str, Any],
    provenance: Mapping[str, Any],
    regions: Mapping[str, Mapping[str, Any]] | None = None,
    run: Mapping[str, Any] | None = None,
) -> dict:
    """The content of ``score.json`` (and of the server's ``score``), format version 1.

    Parameters
    ----------
    scoring : mapping
        The score: at least :data:`SCORE_KEYS` (``PostprocessResult.scoring``); its
        :data:`COMPARTMENT_KEYS` and :data:`BIN_KEYS` are kept too (:func:`record_scoring`).
    placement : mapping
        From :func:`placement`.
    provenance : mapping
        ``engine`` (one of :data:`ENGINES`), ``model``, ``model_hash``, ``version``, the
        engine's whole-image ``statistics`` (values may be None where they do not apply) and
        its ``parameters`` (``EngineBase.parameters``, e.g. the stain engine's
        ``dab_threshold``; absent: ``{}``).
    regions : mapping of str to dict, optional
        Per-region (ROI, annotation) scores: the count keys, and ``area_mm2`` and
        ``pos_per_mm2`` where the pixel size is known.
    run : mapping, optional
        How the run went (slides: ``status``, ``seconds``, tiles and chunks).

    Returns
    -------
    dict
        ``format``, ``format_version``, ``scoring`` (:func:`record_scoring`; :data:`CLASS_KEYS`
        too for a class-map model), ``placement``,
        ``provenance``, ``regions`` and ``run``; JSON types only.

    Raises
    ------
    ValueError
        For a placement or provenance key missing, or an unknown engine.
    """
    provenance = {"parameters": {}, **provenance}
    missing = [k for k in PLACEMENT_KEYS if k not in placement] + [k for k in PROVENANCE_KEYS if k not in provenance]
    if missing:
        raise ValueError(f"score record without {', '.join(missing)}")
    if provenance["engine"] not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {provenance['engine']!r}")
    return {"format": FORMAT, "format_version": FORMAT_VERSION, "scoring": record_scoring(scoring),
            "placement": jsonable({k: placement[k] for k in PLACEMENT_KEYS}),
            "provenance": jsonable({k: provenance[k] for k in PROVENANCE_KEYS}),
            "regions": jsonable(dict(regions or {})), "run": jsonable(dict(run or {}))}
