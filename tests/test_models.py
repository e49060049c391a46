"""Loading model directories: both release formats, train_opt.txt, and clear errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from napari_deepliif.engine.engines import Engine
from napari_deepliif.errors import ModelError
from napari_deepliif.models.loader import load_model
from napari_deepliif.models.options import parse_train_opt, read_model_options


def _copy(src: Path, dst: Path, keep: str) -> Path:
    """Copy train_opt.txt and the files matching ``keep`` ('*.pt' or '*.pth')."""
    dst.mkdir(parents=True)
    shutil.copy(src / "train_opt.txt", dst)
    for f in src.glob(keep):
        shutil.copy(f, dst)
    return dst


@pytest.mark.parametrize("model", ["deepliif-random-ngf4", "deepliif-fit-ngf8"])
def test_torchscript_and_eager_files_give_the_same_images(shared_dir, tmp_path, ihc_small, model):
    src = shared_dir / "fixtures" / "models" / model
    results = []
    for keep in ("*.pt", "*.pth"):
        engine = Engine.load(_copy(src, tmp_path / keep.strip("*."), keep), device="cpu")
        results.append(engine.infer(ihc_small, resolution="40x"))
    for name in results[0]:
        np.testing.assert_array_equal(results[0][name], results[1][name])


def test_width_is_read_from_the_weights(fit_model_dir, random_model_dir):
    assert load_model(fit_model_dir).net("G1").ngf == 8
    assert load_model(random_model_dir).net("G51").ngf == 4
    assert load_model(random_model_dir).net("G1").n_blocks == 9
    assert load_model(random_model_dir).net("G51").depth == 9  # unet_512: 512 px down to 1


def test_train_opt_parsing_drops_defaults_and_reads_literals():
    values = parse_train_opt(
        "----------------- Options ---------------\n"
        "                    ngf: 64                            [default: 64]\n"
        "                   netG: resnet_9blocks\n"
        "             targets_no: 5\n"
        "                gpu_ids: [0, 1]                        [default: 0]\n"
        "             no_dropout: False\n"
        "----------------- End -------------------\n"
    )
    assert values == {"ngf": 64, "netG": "resnet_9blocks", "targets_no": 5, "gpu_ids": [0, 1], "no_dropout": False}


def test_legacy_targets_no_and_seg_weights(tmp_path):
    (tmp_path / "train_opt.txt").write_text("model: DeepLIIF\ntargets_no: 5\n")
    opts = read_model_options(tmp_path)
    assert opts.modalities_no == 4
    assert opts.seg_weights == (0.5, 0.0, 0.0, 0.0, 0.5)  # the released layout
    (tmp_path / "train_opt.txt").write_text("modalities_no: 4\nmodalities_names: ['Hema','DAPI','Lap2','Marker']\n")
    assert read_model_options(tmp_path).seg_weights == (0.25, 0.15, 0.25, 0.1, 0.25)
    (tmp_path / "train_opt.txt").write_text("modalities_no: 4\nseg_weights: [0.2, 0.2, 0.2, 0.2, 0.2]\n")
    assert read_model_options(tmp_path).seg_weights == (0.2,) * 5
    (tmp_path / "train_opt.txt").write_text("modalities_no: 4\nseg_weights: [0.5, 0.5]\n")
    with pytest.raises(ModelError, match="seg_weights has 2 values"):
        read_model_options(tmp_path)


def test_missing_and_empty_directories(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        load_model(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="is empty"):
        load_model(tmp_path / "empty")
    (tmp_path / "no_opt").mkdir()
    (tmp_path / "no_opt" / "G1.pt").write_bytes(b"x")
    with pytest.raises(ModelError, match="train_opt.txt is missing"):
        load_model(tmp_path / "no_opt")


def test_missing_net_is_named(fit_model_dir, tmp_path):
    model = _copy(fit_model_dir, tmp_path / "m", "*.pt")
    (model / "G53.pt").unlink()
    with pytest.raises(ModelError, match="lacks nets G53"):
        load_model(model)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_corrupt_files_are_named(fit_model_dir, tmp_path, ihc_small, damage):
    model = _copy(fit_model_dir, tmp_path / "m", "*.pt")
    target = model / "G4.pt"
    data = target.read_bytes()
    target.write_bytes({"truncate": data[: len(data) // 2], "garbage": b"\x00not a model" * 50, "empty": b""}[damage])
    engine = Engine.load(model, device="cpu")
    with pytest.raises(ModelError, match="G4.pt"):
        engine.infer(ihc_small, outputs="score")


def test_unknown_netg_is_refused(fit_model_dir, tmp_path):
    model = _copy(fit_model_dir, tmp_path / "m", "*.pt")
    opt = model / "train_opt.txt"
    opt.write_text(opt.read_text().replace("resnet_9blocks", "swin_transformer"))
    with pytest.raises(ModelError, match="netG 'swin_transformer' is not supported"):
        load_model(model)


def test_weights_of_the_wrong_shape_are_refused(fit_model_dir, random_model_dir, tmp_path, ihc_small):
    import torch

    model = _copy(fit_model_dir, tmp_path / "m", "*.pth")
    # a UNet's weights where a ResNet is expected
    shutil.copy(random_model_dir / "latest_net_G51.pth", model / "latest_net_G4.pth")
    with pytest.raises(ModelError, match="latest_net_G4.pth"):
        Engine.load(model, device="cpu").infer(ihc_small, outputs=["Marker"])
    # a net that takes 1 channel instead of RGB
    state = torch.load(fit_model_dir / "latest_net_G1.pth", weights_only=True)
    state["model.1.weight"] = state["model.1.weight"][:, :1]
    torch.save(state, model / "latest_net_G1.pth")
    with pytest.raises(ModelError, match="1 input channels"):
        Engine.load(model, device="cpu").infer(ihc_small, outputs=["Hema"])


def test_running_statistics_are_ignored(random_model_dir, tmp_path, ihc_small):
    """The random fixture's .pth files carry BatchNorm running stats like training
    checkpoints; they must not change anything (per-tile statistics are used)."""
    import torch

    model = _copy(random_model_dir, tmp_path / "m", "*.pth")
    state = torch.load(model / "latest_net_G1.pth", weights_only=True)
    assert any(k.endswith("running_mean") for k in state)
    before = Engine.load(model, device="cpu").infer(ihc_small, outputs=["Hema"])["Hema"]
    for k in state:
        if k.endswith(("running_mean", "running_var")):
            state[k] = torch.full_like(state[k], 123.0)
    torch.save(state, model / "latest_net_G1.pth")
    other = tmp_path / "m2"
    shutil.copytree(model, other)
    after = Engine.load(other, device="cpu").infer(ihc_small, outputs=["Hema"])["Hema"]
    np.testing.assert_array_equal(before, after)
