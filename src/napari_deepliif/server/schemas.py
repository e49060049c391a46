"""Request parameters and response bodies of the HTTP API, as the OpenAPI document shows them."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Query
from pydantic import BaseModel, ConfigDict, Field

from napari_deepliif.cells.find import MAX_SEG_THRESH
from napari_deepliif.cells.measure import MAX_EXPANSION_UM, MAX_OD
from napari_deepliif.cells.scoring import COMPARTMENTS
from napari_deepliif.resolution import RESOLUTIONS

#: Largest threshold or coordinate a query parameter takes (keeps numbers in int32 range).
MAX_INT = 2**31 - 1

Resolution = Literal[RESOLUTIONS]  # type: ignore[valid-type]
WholeNumber = Annotated[int, Field(ge=0, le=MAX_INT)]
#: An upper size cap: the engine counts cells with fewer pixels than it, so 0 would count none
#: and it refuses it.
UpperCap = Annotated[int, Field(ge=1, le=MAX_INT)]
DAB_THRESHOLD_TEXT = ("stain engine only: a nucleus whose mean DAB OD is above this is positive (default 0.2, "
                      "QuPath's); raise it where hematoxylin-only nuclei come out positive")

#: What decides positive, and the compartment settings (docs/measurements.md), for query
#: parameters and request bodies alike.
Compartment = Literal[COMPARTMENTS]  # type: ignore[valid-type]
COMPARTMENT_HELP = ("what decides positive: 'class' the engine's class; 'nucleus', 'cytoplasm', 'membrane' or 'cell' "
                    "that compartment's mean DAB OD above positive_od")
OD = Annotated[float, Field(ge=0, le=MAX_OD)]
POSITIVE_OD_HELP = "DAB OD above which a cell is positive (1+) in a compartment mode, and a membrane pixel stained"
BINS_OD_HELP = "two DAB ODs above which a positive cell is 2+ and 3+ (a compartment mode): adds the bins and the H-score"
Fraction = Annotated[float, Field(ge=0, le=1)]
COMPLETENESS_HELP = "a compartment mode's positive cell needs at least this fraction of its membrane ring above positive_od"
Expansion = Annotated[float, Field(ge=0, le=MAX_EXPANSION_UM)]
EXPANSION_HELP = "cell expansion beyond the nucleus, micrometres (cytoplasm, membrane and cell measurements; 0: none)"
RingWidth = Annotated[float, Field(ge=0.01, le=MAX_EXPANSION_UM)]
MEMBRANE_HELP = "width of the membrane ring, micrometres"

# ---- query parameters -------------------------------------------------------------------

ResolutionQuery = Annotated[Resolution, Query(description="magnification the image was scanned at; picks the tile size (512/256/128 px) and the size-threshold rules")]
SegThreshQuery = Annotated[int, Query(ge=0, le=MAX_SEG_THRESH, description="a Seg pixel is a cell pixel if R + B > seg_thresh")]
SizeThreshQuery = Annotated[WholeNumber | Literal["default"], Query(description="count cells with more pixels than this; 'default': the reference's KDE rule")]
UpperQuery = Annotated[UpperCap | Literal["default"] | None, Query(description="count cells with fewer pixels than this; 'default': 1000/4000/16000 at 10x/20x/40x; absent: no cap")]
MarkerQuery = Annotated[Annotated[int, Field(ge=0, le=255)] | Literal["default"] | None, Query(description="a cell whose marker value (0-255) is above this is positive; 'default': 90 % of the Marker's range; absent: not applied")]
DabThresholdQuery = Annotated[OD | None, Query(description=DAB_THRESHOLD_TEXT)]
OriginQuery = Annotated[int, Query(ge=0, le=MAX_INT, description="added to every returned coordinate (e.g. the region's top-left pixel in the slide)")]
DownsampleQuery = Annotated[float, Query(ge=1, le=1024, description="full-resolution pixels per pixel of the image sent: returned coordinates are (x + origin) * downsample")]
CompartmentQuery = Annotated[Compartment, Query(description=COMPARTMENT_HELP)]
PositiveOdQuery = Annotated[OD, Query(description=POSITIVE_OD_HELP)]
BinsOdQuery = Annotated[list[OD] | None, Query(min_length=2, max_length=2, description=BINS_OD_HELP + " (repeat the parameter: bins_od=0.4&bins_od=0.6)")]
CompletenessQuery = Annotated[Fraction | None, Query(description=COMPLETENESS_HELP)]
ExpansionQuery = Annotated[Expansion, Query(description=EXPANSION_HELP)]
MembraneQuery = Annotated[RingWidth, Query(description=MEMBRANE_HELP)]
ModalitiesQuery = Annotated[bool, Query(description="also return the engine's images (Hema, Marker, Seg, ...) as base64 PNG")]
CONFIDENCE_HELP = "points models: lowest confidence (0.05-1) a point needs; absent: the model card's"
MIN_DISTANCE_HELP = "points models: a point suppresses weaker points within this distance (µm); absent: the model card's"
ConfidenceQuery = Annotated[float | None, Query(ge=0, le=1, description=CONFIDENCE_HELP)]
MinDistanceQuery = Annotated[float | None, Query(ge=0, le=1000, description=MIN_DISTANCE_HELP)]
RequestIdQuery = Annotated[str | None, Query(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$", description="your id for this request, to cancel it with POST /api/cancel")]

# The reference platform's API (DeepLIIF README, "Cloud API Endpoints"; see docs/server.md):
# its spellings ('auto', 'none'), ranges and defaults, for /api/infer and /api/postprocess only
# (/api/score, the CLI and the widget keep the package's own, e.g. seg_thresh 120).
REF_PROB_THRESH = 150
REF_MAX_PROB_THRESH = 254
REF_SIZE_THRESH = "auto"
REF_SIZE_THRESH_UPPER = "none"
REF_MARKER_THRESH = "auto"

RefSegThreshQuery = Annotated[int, Query(ge=0, le=REF_MAX_PROB_THRESH, description="seg_thresh: a Seg pixel is a cell pixel if R + B > prob_thresh (the reference API's range and default, 150; /api/score's seg_thresh defaults to 120, as deepliif 1.2.7)")]
RefSizeQuery = Annotated[WholeNumber | Literal["auto", "default"], Query(description="count cells with more pixels than this; 'auto' (= 'default'): the KDE rule")]
RefUpperQuery = Annotated[UpperCap | Literal["none", "auto", "default"], Query(description="count cells with fewer pixels than this; 'none': no cap; 'auto'/'default': 1000/4000/16000 at 10x/20x/40x")]
RefMarkerQuery = Annotated[Annotated[int, Field(ge=0, le=255)] | Literal["none", "auto", "default"], Query(description="a cell whose marker value is above this is positive; 'auto' (= 'default'): from the Marker's range; 'none': not applied")]
FlagQuery = Annotated[str | None, Query(max_length=16, description="a flag: present (with any value but false/0/no/off) means on")]


def flag(value: str | None) -> bool:
    """A reference-style presence flag: ``?slim``, ``?slim=true`` are on; ``false``/``0`` off."""
    return value is not None and value.strip().lower() not in ("false", "0", "no", "off")


def reference_threshold(value: int | str) -> int | str | None:
    """The reference's ``auto``/``none`` as the engine's ``'default'``/None."""
    if value == "auto":
        return "default"
    if value == "none":
        return None
    return value


# ---- responses ----------------------------------------------------------------------------

class LimitsBody(BaseModel):
    max_request_bytes: int = Field(description="largest request body, bytes (413 above)")
    max_pixels: int = Field(description="largest image, width x height (422 above)")
    queue_size: int = Field(description="requests that may wait while one runs (429 beyond)")


class Health(BaseModel):
    status: Literal["ok"]
    version: str = Field(description="napari-deepliif version")
    engine: Literal["deepliif", "stain", "classmap", "translate", "points"]
    model: str | None
    model_hash: str | None
    device: str = Field(description="cpu, cuda, cuda:N or mps")
    limits: LimitsBody
    busy: bool = Field(description="whether a request is running or queued")


class Score(BaseModel):
    """The reference's score (``compute_final_results``) and the thresholds it used."""

    num_total: int
    num_pos: int
    num_neg: int
    percent_pos: float
    seg_thresh: int
    size_thresh: int
    size_thresh_upper: int | None
    marker_thresh: int | None


class Feature(BaseModel):
    """A QuPath detection: ``geometry`` in (x, y) pixels, ``properties.classification``
    Positive/Negative, ``properties.measurements`` {name: number}."""

    model_config = ConfigDict(extra="allow")
    type: Literal["Feature"]
    geometry: dict[str, Any]
    properties: dict[str, Any]


class ScoreResponse(BaseModel):
    """A GeoJSON FeatureCollection of the counted cells, with the score."""

    type: Literal["FeatureCollection"]
    features: list[Feature] = Field(description="one per counted cell (len == score.scoring.num_total)")
    score: dict[str, Any] = Field(description="the score record, format version 1 (docs/score.schema.json): "
                                              "scoring, placement, provenance, regions, run")
    images: dict[str, str] | None = Field(None, description="engine images as base64 PNG (modalities=true only)")


class ReferenceResponse(BaseModel):
    """The reference platform's response."""

    images: dict[str, str] = Field(description="name -> base64 PNG")
    scoring: Score | None = Field(None, description="absent with nopost")


class CancelResponse(BaseModel):
    cancelled: bool = Field(description="whether a queued or running request was found and cancelled")

