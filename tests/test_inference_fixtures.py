"""The engine's default path against every reference inference case in the fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import SHARED, assert_matches_reference, read_rgb

from napari_deepliif.engine.engines import Engine

FILES = {"Hema": "mod1-Hema.png", "DAPI": "mod2-DAPI.png", "Lap2": "mod3-Lap2.png", "Marker": "mod4-Marker.png", "Seg": "Seg.png"}
RESOLUTION = {512: "40x", 256: "20x", 128: "10x"}


def _cases() -> list[Path]:
    root = SHARED / "fixtures" / "inference"
    return sorted(p for p in root.glob("*/*") if p.is_dir())


@pytest.mark.parametrize("case", _cases(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_matches_reference(case: Path, shared_dir: Path) -> None:
    stem, tile = case.name.rsplit("_t", 1)
    image = read_rgb(shared_dir / "fixtures" / "inputs" / f"{stem}.png")
    engine = Engine.load(shared_dir / "fixtures" / "models" / case.parent.name, device="cpu")
    result = engine.infer(image, resolution=RESOLUTION[int(tile)])
    assert set(result) == set(FILES)
    for name, file in FILES.items():
        assert_matches_reference(result[name], read_rgb(case / file), f"{case.name} {name}")


def test_every_case_is_covered() -> None:
    cases = _cases()
    models = {c.parent.name for c in cases}
    assert models == {"deepliif-fit-ngf8", "deepliif-random-ngf4"}
    assert len(cases) == 15


def test_results_do_not_depend_on_the_thread_count(shared_dir, fit_model_dir, ihc_small):
    """Norm statistics (a mean, then a mean of squared deviations) are accurate in float32
    whatever the number of threads (dask workers run with one)."""
    import torch

    engine = Engine.load(fit_model_dir, device="cpu")
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        single = engine.infer(ihc_small, resolution="20x")
    finally:
        torch.set_num_threads(threads)
    several = engine.infer(ihc_small, resolution="20x")
    for name in several:
        same = (single[name] == several[name]).all(axis=2).mean()
        assert same >= 0.9999, f"{name}: {same:.5%} identical"
