"""The reference DeepLIIF platform's ``/api/infer`` and ``/api/postprocess``, served locally.

Same multipart fields, query parameters and response (``{"images": {name: base64 PNG},
"scoring": {...}}``) as deepliif.org's documented API, so its scripts (and, rebuilt with
another host, its ImageJ plugin) work against this server; see ``docs/server.md`` for what
differs. The token is needed here too.
"""

from __future__ import annotations

import json
import threading
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Request, UploadFile
from fastapi.responses import Response

from napari_deepliif.cells.postprocess import Settings
from napari_deepliif.constants import DEFAULT_RESOLUTION
from napari_deepliif.regions.score import score_region
from napari_deepliif.server.images import decode, png_base64, read_header
from napari_deepliif.server.problems import Problem
from napari_deepliif.server.schemas import (
    REF_MARKER_THRESH,
    REF_PROB_THRESH,
    REF_SIZE_THRESH,
    REF_SIZE_THRESH_UPPER,
    FlagQuery,
    ReferenceResponse,
    RefMarkerQuery,
    RefSegThreshQuery,
    RefSizeQuery,
    RefUpperQuery,
    RequestIdQuery,
    ResolutionQuery,
    flag,
    reference_threshold,
)
from napari_deepliif.server.state import ERRORS, bearer, state

router = APIRouter(prefix="/api", tags=["reference platform"], responses=ERRORS, dependencies=[Depends(bearer)])
SEG_REFINED, SEG_OVERLAID = "SegRefined", "SegOverlaid"


def _thresholds(
    prob_thresh: RefSegThreshQuery = REF_PROB_THRESH,
    size_thresh: RefSizeQuery = REF_SIZE_THRESH,
    size_thresh_upper: RefUpperQuery = REF_SIZE_THRESH_UPPER,
    marker_thresh: RefMarkerQuery = REF_MARKER_THRESH,
) -> dict[str, Any]:
    """The reference API's threshold query parameters, with its documented defaults, as
    ``postprocess`` keyword arguments."""
    return {"seg_thresh": prob_thresh, "size_thresh": reference_threshold(size_thresh),
            "size_thresh_upper": reference_threshold(size_thresh_upper),
            "marker_thresh": reference_threshold(marker_thresh)}


#: The four threshold query parameters both endpoints take, resolved by :func:`_thresholds`.
Thresholds = Annotated[dict[str, Any], Depends(_thresholds)]


def _json(body: dict) -> bytes:
    return json.dumps(body, separators=(",", ":"), allow_nan=False).encode()


async def _read(upload: UploadFile | None, field: str, max_pixels: int):
    """Bytes and header of an uploaded image (None for an absent optional field)."""
    if upload is None:
        return None
    data = await upload.read()
    return data, read_header(data, f"form field '{field}'", max_pixels)


@router.post("/infer", response_model=ReferenceResponse, response_model_exclude_none=True,
             summary="The reference platform's inference: images and scoring")
async def infer(
    request: Request,
    img: Annotated[UploadFile, File(description="the IHC image (PNG, TIFF or JPEG, 8-bit RGB)")],
    settings: Thresholds,
    resolution: ResolutionQuery = DEFAULT_RESOLUTION,
    pil: FlagQuery = None,
    slim: FlagQuery = None,
    nopost: FlagQuery = None,
    request_id: RequestIdQuery = None,
) -> Response:
    """Run the engine on ``img``. Images: the engine's (Hema, DAPI, Lap2, Marker, Seg for
    DeepLIIF; Hema, Marker, Seg for the stain engine), SegRefined and SegOverlaid; ``slim``:
    SegRefined only; ``nopost``: the engine's images only, no scoring. ``pil`` is accepted
    and has no effect (images are always read with Pillow, TIFFs with tifffile)."""
    server = state(request)
    data, header = await _read(img, "img", server.limits.max_pixels)

    def work(cancel: threading.Event) -> bytes:
        from napari_deepliif.io.score_format import reference_scoring

        image = decode(data, header, "form field 'img'")
        if flag(nopost):
            images = server.engine.infer(image, resolution=resolution, outputs="all", cancel=cancel)
            return _json({"images": {name: png_base64(a) for name, a in images.items()}})
        result = score_region(server.engine, image, resolution=resolution, settings=Settings(**settings),
                              outputs="score" if flag(slim) else "all", cancel=cancel)
        if flag(slim):
            images = {SEG_REFINED: result.post.seg_refined()}
        else:
            images = {**result.images, SEG_REFINED: result.post.seg_refined(),
                      SEG_OVERLAID: result.post.seg_overlaid(result.image)}
        return _json({"images": {name: png_base64(a) for name, a in images.items()},
                      "scoring": reference_scoring(result.post.scoring)})

    return Response(await server.jobs.run(work, request_id, request.is_disconnected), media_type="application/json")


@router.post("/postprocess", response_model=ReferenceResponse,
             summary="The reference platform's re-scoring of a previous run's Seg (and Marker) image")
async def postprocess_images(
    request: Request,
    img: Annotated[UploadFile, File(description="the image DeepLIIF was run on")],
    seg_img: Annotated[UploadFile, File(description="the Seg image DeepLIIF inferred for it")],
    settings: Thresholds,
    marker_img: Annotated[UploadFile | None, File(description="the Marker image (needed for marker_thresh)")] = None,
    resolution: ResolutionQuery = DEFAULT_RESOLUTION,
    pil: FlagQuery = None,
    request_id: RequestIdQuery = None,
) -> Response:
    """Find and score the cells of ``seg_img`` again with new thresholds: SegOverlaid,
    SegRefined and scoring. Without ``marker_img``, ``marker_thresh`` has no effect."""
    from napari_deepliif.cells.postprocess import postprocess
    from napari_deepliif.io.score_format import reference_scoring

    server = state(request)
    limit = server.limits.max_pixels
    uploads = {"img": await _read(img, "img", limit), "seg_img": await _read(seg_img, "seg_img", limit),
               "marker_img": await _read(marker_img, "marker_img", limit)}
    sizes = {name: (u[1].width, u[1].height) for name, u in uploads.items() if u is not None}
    if len(set(sizes.values())) > 1:
        raise Problem(422, "img, seg_img and marker_img must have the same size; got "
                      + ", ".join(f"{name} {w} x {h}" for name, (w, h) in sizes.items()))
    if marker_img is None:  # without a Marker image the marker threshold has nothing to act on
        settings = {**settings, "marker_thresh": None}

    def work(cancel: threading.Event) -> bytes:
        images = {name: decode(u[0], u[1], f"form field '{name}'") for name, u in uploads.items() if u is not None}
        post = postprocess(images["seg_img"], images.get("marker_img"), resolution=resolution, **settings)
        out = {SEG_OVERLAID: post.seg_overlaid(images["img"]), SEG_REFINED: post.seg_refined()}
        return _json({"images": {name: png_base64(a) for name, a in out.items()}, "scoring": reference_scoring(post.scoring)})

    return Response(await server.jobs.run(work, request_id, request.is_disconnected), media_type="application/json")
