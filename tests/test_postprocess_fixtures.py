"""Postprocessing against the reference's outputs: every scoring row, cell and image, exactly."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED, read_rgb

from napari_deepliif.cells.postprocess import PostprocessResult, postprocess
from napari_deepliif.cells.scoring import resolution_for_tile_size

POSTPROCESS = SHARED / "fixtures" / "postprocess"
INFERENCE = SHARED / "fixtures" / "inference"
CELL_KEYS = ("size", "positive", "marker", "bbox", "centroid")


def _cases() -> list[str]:
    return sorted(p.name for p in POSTPROCESS.iterdir() if p.is_dir())


def _grid_rows() -> list[tuple[str, int]]:
    return [(case, i) for case in _cases()
            for i in range(len(json.loads((POSTPROCESS / case / "scoring_grid.json").read_text())["rows"]))]


def _inference_cases() -> list[Path]:
    return sorted(p for p in INFERENCE.glob("*/*") if p.is_dir())


@lru_cache(maxsize=None)
def _inputs(case: str) -> tuple[np.ndarray, np.ndarray | None, str]:
    folder = POSTPROCESS / case
    marker = read_rgb(folder / "marker.png") if (folder / "marker.png").exists() else None
    resolution = json.loads((folder / "scoring_grid.json").read_text())["resolution"]
    return read_rgb(folder / "seg.png"), marker, resolution


@lru_cache(maxsize=None)
def _default(case: str) -> PostprocessResult:
    seg, marker, resolution = _inputs(case)
    return postprocess(seg, marker, resolution=resolution)


def test_every_case_is_covered() -> None:
    assert len(_cases()) == 5
    assert len(_grid_rows()) == 54
    assert len(_inference_cases()) == 15


@pytest.mark.parametrize(("case", "row"), _grid_rows(), ids=lambda v: str(v))
def test_scoring_grid_row(case: str, row: int) -> None:
    """``postprocess(**settings)`` gives the reference's scoring, every key."""
    expected = json.loads((POSTPROCESS / case / "scoring_grid.json").read_text())["rows"][row]
    seg, marker, resolution = _inputs(case)
    result = postprocess(seg, marker, resolution=resolution, **expected["settings"])
    assert result.scoring == expected["scoring"]
    assert list(result.scoring) == list(expected["scoring"])


@pytest.mark.parametrize("case", _cases())
def test_rescore_reproduces_the_grid(case: str) -> None:
    """The interactive path: one result re-scored row after row (settings carried over)."""
    rows = json.loads((POSTPROCESS / case / "scoring_grid.json").read_text())["rows"]
    result = _default(case)
    defaults = dict(seg_thresh=120, size_thresh="default", size_thresh_upper=None, marker_thresh=None)
    for row in rows + rows[::-1]:
        if "marker_thresh" in row["settings"] and _inputs(case)[1] is None:
            continue
        result = result.rescore(**{**defaults, **row["settings"]})
        assert result.scoring == row["scoring"], row["settings"]


@pytest.mark.parametrize("case", _cases())
def test_cells_match_cells_v3(case: str) -> None:
    reference = json.loads((POSTPROCESS / case / "cells_v3.json").read_text())
    ours = _default(case).table.reference_records()
    assert len(ours) == len(reference["cells"])
    for i, (mine, theirs) in enumerate(zip(ours, reference["cells"])):
        assert mine == {key: theirs[key] for key in CELL_KEYS}, f"cell {i}"
    settings = reference["settings"]
    result = _default(case)
    assert result.scoring["size_thresh"] == settings["default_size_thresh"]
    if settings["default_marker_thresh"] is not None:
        assert result.rescore(marker_thresh="default").scoring["marker_thresh"] == settings["default_marker_thresh"]


@pytest.mark.parametrize("case", _cases())
def test_seg_refined_and_overlaid_pixel_for_pixel(case: str) -> None:
    result = _default(case)
    np.testing.assert_array_equal(result.seg_refined(), read_rgb(POSTPROCESS / case / "SegRefined.png"))
    overlaid = result.seg_overlaid(read_rgb(POSTPROCESS / case / "orig.png"))
    np.testing.assert_array_equal(overlaid, read_rgb(POSTPROCESS / case / "SegOverlaid.png"))


@pytest.mark.parametrize("case", _inference_cases(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_inference_case_end_to_end(case: Path) -> None:
    """scoring.json, SegRefined and SegOverlaid of ``deepliif test`` from its Seg and Marker."""
    stem, tile = case.name.rsplit("_t", 1)
    result = postprocess(read_rgb(case / "Seg.png"), read_rgb(case / "mod4-Marker.png"),
                         resolution=resolution_for_tile_size(int(tile)))
    assert result.scoring == json.loads((case / "scoring.json").read_text())
    np.testing.assert_array_equal(result.seg_refined(), read_rgb(case / "SegRefined.png"))
    image = read_rgb(SHARED / "fixtures" / "inputs" / f"{stem}.png")
    np.testing.assert_array_equal(result.seg_overlaid(image), read_rgb(case / "SegOverlaid.png"))
