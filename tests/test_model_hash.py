"""A model is identified by its content: weights changed in place, swapped nets and a resumed
slide run on changed weights."""

from __future__ import annotations

import json
import shutil
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tifffile
from conftest import read_rgb

from napari_deepliif.engine.engines import load_engine
from napari_deepliif.errors import Cancelled, DeepLIIFError
from napari_deepliif.models.hash import hash_cache_path
from napari_deepliif.models.loader import load_model
from napari_deepliif.slides.omezarr import RunRecord
from napari_deepliif.slides.run import STORE_NAME, score_slide


@pytest.fixture
def model_copy(fit_model_dir: Path, tmp_path: Path, user_model_dirs) -> Path:
    """A writable copy of the fitted fixture model (TorchScript nets only)."""
    dst = tmp_path / "model"
    dst.mkdir()
    for f in [fit_model_dir / "train_opt.txt", *fit_model_dir.glob("*.pt")]:
        shutil.copy(f, dst)
        (dst / f.name).chmod(0o644)
    return dst


def perturb_weight(path: Path) -> None:
    """Scale the first 16 floats of the largest tensor of a TorchScript file, in place: the
    file keeps its size and still loads."""
    with zipfile.ZipFile(path) as z:
        info = max((i for i in z.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    with open(path, "r+b") as f:
        f.seek(info.header_offset + 26)
        name_len, extra_len = struct.unpack("<HH", f.read(4))
        start = info.header_offset + 30 + name_len + extra_len
        f.seek(start)
        values = np.frombuffer(f.read(64), np.float32) * np.float32(1.5) + np.float32(0.01)
        f.seek(start)
        f.write(values.astype(np.float32).tobytes())


def model_hash(directory: Path) -> str:
    return load_model(directory).fingerprint()


def test_hash_changes_with_weights_changed_in_place(model_copy: Path) -> None:
    loaded = load_model(model_copy)
    before = loaded.fingerprint()
    size = (model_copy / "G51.pt").stat().st_size
    perturb_weight(model_copy / "G51.pt")
    assert (model_copy / "G51.pt").stat().st_size == size
    after = model_hash(model_copy)
    assert after != before
    assert len(after) == 16 and int(after, 16) >= 0  # short hex, as before
    # the model is loaded again from the changed files, not taken from the in-memory cache
    assert load_model(model_copy) is not loaded


def test_hash_changes_when_two_nets_are_swapped(model_copy: Path) -> None:
    before = model_hash(model_copy)
    # G53 and G55 have the same size: only their bytes tell them apart
    a, b, tmp = model_copy / "G53.pt", model_copy / "G55.pt", model_copy / "swap"
    assert a.stat().st_size == b.stat().st_size
    a.rename(tmp)
    b.rename(a)
    tmp.rename(b)
    assert model_hash(model_copy) != before


def test_same_files_elsewhere_give_the_same_hash(model_copy: Path, tmp_path: Path) -> None:
    other = shutil.copytree(model_copy, tmp_path / "elsewhere")
    assert model_hash(other) == model_hash(model_copy)
    (other / "train_opt.txt").write_text((other / "train_opt.txt").read_text() + "\n# note\n")
    assert model_hash(other) != model_hash(model_copy)


def test_file_hashes_are_cached_by_size_and_mtime(model_copy: Path, user_model_dirs, monkeypatch: pytest.MonkeyPatch) -> None:
    from napari_deepliif.models import hash as mh

    first = model_hash(model_copy)
    # the cache lives in the cache dir, moved like the others by NAPARI_DEEPLIIF_CACHE_DIR
    assert hash_cache_path().parent == user_model_dirs[1]
    cache = json.loads(hash_cache_path().read_text())
    assert str((model_copy / "G51.pt").resolve()) in cache
    # a new process (empty memory) takes every file hash from the JSON cache: nothing is read
    monkeypatch.setattr(mh, "_MEMORY", {})
    read = []
    monkeypatch.setattr(mh, "sha256_file", lambda p: read.append(p) or "0" * 64)
    assert model_hash(model_copy) == first and read == []
    # a changed file is hashed again, only that one
    perturb_weight(model_copy / "G51.pt")
    model_hash(model_copy)
    assert [p.name for p in read] == ["G51.pt"]


def _small_tiff(shared_dir: Path, path: Path) -> Path:
    """The real 512 x 512 IHC image 22_2 as a TIFF at 0.5 µm/px (20x)."""
    pixels = read_rgb(shared_dir / "data" / "ihc" / "22_2.png")
    tifffile.imwrite(path, pixels, photometric="rgb", tile=(256, 256),
                     resolution=(1e4 / 0.5, 1e4 / 0.5), resolutionunit="CENTIMETER")
    return path


@pytest.mark.parametrize("stop", ["finished", "half-done"])
def test_slide_run_refuses_changed_weights(shared_dir: Path, model_copy: Path, tmp_path: Path, stop: str) -> None:
    slide = _small_tiff(shared_dir, tmp_path / "s.tif")
    out = tmp_path / "out"
    options = dict(resolution="20x", chunk_size=224, geojson=False)
    if stop == "finished":
        first = score_slide(load_engine("deepliif", model_copy, device="cpu"), slide, out, **options)
        assert first["run"]["status"] == "done"
    else:
        def one_chunk_done() -> bool:
            record = RunRecord.load(out / STORE_NAME)
            return record is not None and len(record.done) >= 1

        with pytest.raises(Cancelled):
            score_slide(load_engine("deepliif", model_copy, device="cpu"), slide, out, cancel=one_chunk_done,
                        **options)
    perturb_weight(model_copy / "G51.pt")
    engine = load_engine("deepliif", model_copy, device="cpu")
    with pytest.raises(DeepLIIFError, match=r"model_hash: .* -> .*--overwrite"):
        score_slide(engine, slide, out, **options)
    # --overwrite scores it again with the new weights
    again = score_slide(engine, slide, out, overwrite=True, **options)
    assert again["provenance"]["model_hash"] == engine.model_hash
    assert "skipped" not in again["run"]
