"""Engine behaviour a user relies on: outputs, streaming, regions, progress, cancel."""

from __future__ import annotations

import threading

import dask.array as da
import numpy as np
import pytest
import zarr

from napari_deepliif.constants import EMPTY_TILE_COLOURS
from napari_deepliif.engine import networks
from napari_deepliif.engine.devices import fast_dtype
from napari_deepliif.engine.engines import Engine
from napari_deepliif.errors import Cancelled, DeepLIIFError


@pytest.fixture(scope="module")
def engine(fit_model_dir) -> Engine:
    return Engine.load(fit_model_dir, device="cpu")


@pytest.fixture(scope="module")
def reference_run(engine, ihc_22_2):
    """All outputs of the real 512 x 512 tile at 20x (3 x 3 tiles of 256 with overlap)."""
    return engine.infer(ihc_22_2, resolution="20x")


def test_outputs_are_uint8_rgb_of_the_input_size(reference_run):
    assert list(reference_run) == ["Hema", "DAPI", "Lap2", "Marker", "Seg"]
    for image in reference_run.values():
        assert image.shape == (512, 512, 3) and image.dtype == np.uint8
    # the fitted model finds cells: the Seg map has red and blue pixels
    seg = reference_run["Seg"].astype(int)
    assert ((seg[..., 0] + seg[..., 2]) > 120).sum() > 1000


def test_score_outputs_run_only_the_nets_scoring_needs(fit_model_dir, ihc_22_2, reference_run):
    from napari_deepliif.models.loader import DeepLIIFModel, read_model_options

    model = DeepLIIFModel(directory=fit_model_dir, options=read_model_options(fit_model_dir))
    result = Engine(model=model, device="cpu").infer(ihc_22_2, resolution="20x", outputs="score")
    assert set(result) == {"Marker", "Seg"}
    # released seg weights are (0.5, 0, 0, 0, 0.5): G51 on IHC, G55 on G4's Marker
    assert sorted(model._nets) == ["G4", "G51", "G55"]
    for name in ("Marker", "Seg"):
        np.testing.assert_array_equal(result[name], reference_run[name])


def test_batches_keep_each_tiles_own_statistics(fit_model_dir, ihc_22_2, reference_run):
    batched = Engine.load(fit_model_dir, device="cpu", batch_size=4).infer(ihc_22_2, resolution="20x")
    for name, image in batched.items():
        diff = np.abs(image.astype(int) - reference_run[name].astype(int))
        assert diff.max() <= 1 and (diff == 0).mean() > 0.999, name


def test_zarr_and_dask_inputs_stream_into_zarr_outputs(engine, ihc_22_2, reference_run, tmp_path):
    source = zarr.open_array(tmp_path / "in.zarr", mode="w", shape=ihc_22_2.shape, chunks=(128, 128, 3), dtype="u1")
    source[:] = ihc_22_2
    out = {n: zarr.open_array(tmp_path / f"{n}.zarr", mode="w", shape=(512, 512, 3), chunks=(256, 256, 3), dtype="u1") for n in ("Marker", "Seg")}
    returned = engine.infer(source, resolution="20x", outputs="score", out=out)
    assert returned is out
    for name in ("Marker", "Seg"):
        np.testing.assert_array_equal(out[name][:], reference_run[name])
    lazy = engine.infer(da.from_array(ihc_22_2, chunks=100), resolution="20x", outputs=["Hema"])
    np.testing.assert_array_equal(lazy["Hema"], reference_run["Hema"])


def test_region_equals_running_on_the_crop(engine, shared_dir):
    from conftest import read_rgb

    big = read_rgb(shared_dir / "data" / "ihc" / "ROI_1.png")
    x, y, w, h = 300, 200, 400, 300
    via_region = engine.infer(big, resolution="20x", region=(x, y, w, h), outputs=["Seg"])
    via_crop = engine.infer(np.ascontiguousarray(big[y : y + h, x : x + w]), resolution="20x", outputs=["Seg"])
    np.testing.assert_array_equal(via_region["Seg"], via_crop["Seg"])
    assert via_region["Seg"].shape == (h, w, 3)


@pytest.mark.parametrize("region", [(0, 0, 0, 10), (-1, 0, 20, 20), (500, 500, 20, 20)])
def test_bad_regions_are_refused(engine, ihc_22_2, region):
    with pytest.raises(DeepLIIFError, match="region"):
        engine.infer(ihc_22_2, region=region)


def test_progress_reports_every_tile(engine, ihc_22_2):
    calls = []
    engine.infer(ihc_22_2, resolution="20x", outputs=["Seg"], progress=lambda d, t: calls.append((d, t)))
    assert calls[0] == (0, 9) and calls[-1] == (9, 9)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_cancel_stops_between_batches_and_returns_nothing(engine, ihc_22_2):
    stop = threading.Event()
    seen = []

    def progress(done, total):
        seen.append(done)
        if done >= 1:
            stop.set()

    with pytest.raises(Cancelled):
        engine.infer(ihc_22_2, resolution="20x", progress=progress, cancel=stop)
    assert max(seen) == 1  # stopped after the first batch of one tile
    with pytest.raises(Cancelled):
        engine.infer(ihc_22_2, resolution="20x", cancel=lambda: True)


def test_blank_white_image_gives_the_empty_tile_colours_and_no_cells(engine):
    white = np.full((300, 400, 3), 255, np.uint8)
    result = engine.infer(white)
    for name, colour in EMPTY_TILE_COLOURS.items():
        assert (result[name] == np.array(colour, np.uint8)).all(), name


def test_pixel_size_picks_the_nearest_resolution(engine, ihc_22_2, reference_run):
    via_mpp = engine.infer(ihc_22_2, mpp=0.46, outputs=["Seg"])  # nearest 0.5 µm/px = 20x
    np.testing.assert_array_equal(via_mpp["Seg"], reference_run["Seg"])


def test_unknown_output_and_resolution_are_named(engine, ihc_22_2):
    with pytest.raises(DeepLIIFError, match="unknown outputs"):
        engine.infer(ihc_22_2, outputs=["Ki67"])
    with pytest.raises(DeepLIIFError, match="resolution"):
        engine.infer(ihc_22_2, resolution="63x")


def test_fast_precision_stays_close_to_fp32(fit_model_dir, ihc_22_2, reference_run):
    fast = Engine.load(fit_model_dir, device="cpu", precision="fast").infer(ihc_22_2, resolution="20x")
    for name, image in fast.items():
        diff = np.abs(image.astype(int) - reference_run[name].astype(int))
        # measured on this fixture (docs/precision.md): well under these bounds
        assert np.mean(diff) < 3.0, name


@pytest.mark.skipif(fast_dtype("cpu") != "bfloat16", reason="a CPU without bf16 kernels: fast runs fp32 there")
def test_fast_keeps_winograd_convolutions_in_fp32_unless_the_cpu_has_amx(fit_model_dir, ihc_22_2, reference_run,
                                                                        monkeypatch):
    # The modality images come from the ResNets, whose residual convs stay fp32 Winograd
    # without AMX: a few hundredths of a grey level from fp32 on average (docs/precision.md).
    # With AMX they run bf16 too and depart further. Seg comes from the UNets, bf16 either way.
    def departures(amx: bool) -> dict[str, float]:
        monkeypatch.setattr(networks, "cpu_has_amx", lambda: amx)
        fast = Engine.load(fit_model_dir, device="cpu", precision="fast").infer(ihc_22_2, resolution="20x")
        return {name: float(np.mean(np.abs(fast[name].astype(int) - reference_run[name].astype(int))))
                for name in ("Hema", "DAPI", "Lap2", "Marker")}

    kept, with_amx = departures(False), departures(True)
    for name in kept:
        assert kept[name] < 0.08 and kept[name] < with_amx[name] < 0.5, (name, kept[name], with_amx[name])
