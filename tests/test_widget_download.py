"""The widget's Download button against a real loopback HTTP server: a lab's mirror named
by NAPARI_DEEPLIIF_MODEL_INDEX is listed, downloaded with progress and then runs; a cancelled
download keeps nothing."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_deepliif.errors import DeepLIIFError
from napari_deepliif.models.index import INDEX_ENV, models_dir

TIMEOUT_MS = 120_000


@pytest.fixture
def mirror(served, user_model_dirs, tmp_path, monkeypatch):
    """Point the model index at the loopback server; returns a function (archive path -> size)."""
    base, root, hashes = served

    def use(path: str) -> int:
        index = tmp_path / "index.json"
        index.write_text(json.dumps({"lab-mirror": {"url": f"{base}/{path}", "sha256": hashes["both.zip"]}}))
        monkeypatch.setenv(INDEX_ENV, str(index))
        return (root / "both.zip").stat().st_size

    return use


def _widget(make_napari_viewer):
    from napari_deepliif.widget import DeepLIIFWidget

    viewer = make_napari_viewer()
    widget = DeepLIIFWidget(viewer)
    viewer.window.add_dock_widget(widget)
    box = widget.engine_box
    box.combo.setCurrentIndex(box.combo.findData("lab-mirror"))
    return widget, box


def test_download_shows_progress_installs_and_runs(make_napari_viewer, qtbot, mirror, shared_dir):
    from conftest import read_rgb

    size = mirror("both.zip")
    widget, box = _widget(make_napari_viewer)
    assert box.combo.currentData() == "lab-mirror" and "not installed" in box.combo.currentText()
    assert box.download_button.isEnabled()
    with pytest.raises(DeepLIIFError, match="not installed"):
        box.model()
    seen: list[tuple[int, int]] = []
    box._relay.progress.connect(lambda done, total: seen.append((done, total)))
    box.download()
    assert not box.download_button.isEnabled() and not box.cancel_button.isHidden()
    qtbot.waitUntil(lambda: box.worker is None, timeout=TIMEOUT_MS)
    assert seen and seen[-1] == (size, size)
    assert box.progress_bar.isHidden() and box.cancel_button.isHidden()
    assert box.combo.currentData() == "lab-mirror" and box.model() == "lab-mirror"
    assert box.combo.currentText() == "lab-mirror"
    assert (models_dir() / "lab-mirror" / "train_opt.txt").is_file()
    assert not box.download_button.isEnabled()  # nothing left to download

    image = read_rgb(shared_dir / "fixtures" / "inputs" / "ihc_22_2.png")[:128, :128]
    widget.viewer.add_image(image, name="ki67", rgb=True)
    widget.device_combo.setCurrentText("cpu")
    widget.run()
    qtbot.waitUntil(lambda: widget.worker is None and widget.run_button.isEnabled(), timeout=TIMEOUT_MS)
    cells = next(layer for layer in widget.viewer.layers if layer.name == "DeepLIIF cells")
    assert cells.data.dtype == np.uint32 and cells.data.shape == image.shape[:2]
    assert "lab-mirror" in box.engine_label.text()


def test_cancelled_download_keeps_nothing(make_napari_viewer, qtbot, mirror):
    size = mirror("slow/both.zip")  # trickles out over seconds
    _, box = _widget(make_napari_viewer)
    seen: list[int] = []

    def cancel_after_first_report(done: int, total: int) -> None:
        seen.append(done)
        if len(seen) == 1:
            box.cancel_button.click()

    box._relay.progress.connect(cancel_after_first_report)
    box.download()
    qtbot.waitUntil(lambda: box.worker is None, timeout=TIMEOUT_MS)
    assert seen and max(seen) < size  # stopped mid-download
    assert not box.installed() and "not installed" in box.combo.currentText()
    assert box.download_button.isEnabled() and box.progress_bar.isHidden()
    leftovers = list(models_dir().iterdir()) if models_dir().exists() else []
    assert leftovers == []
