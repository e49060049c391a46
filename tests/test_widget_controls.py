"""Controls that mean something per engine, in a real napari viewer: the stain engine's DAB
threshold slider (shown for it alone, re-scoring as ``score --dab-threshold`` does) and the Seg
threshold slider replaced by a note where the engine's Seg map has no probability ramp."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import read_rgb

from napari_deepliif.cli.main import main
from napari_deepliif.models.index import CACHE_DIR_ENV, CONFIG_DIR_ENV

RUN_TIMEOUT_MS = 120_000


@pytest.fixture(autouse=True)
def private_model_dirs(tmp_path, monkeypatch):
    monkeypatch.setenv(CONFIG_DIR_ENV, str(tmp_path / "config"))
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "cache"))


@pytest.fixture
def widget(make_napari_viewer):
    from napari_deepliif.widget import DeepLIIFWidget

    viewer = make_napari_viewer()
    w = DeepLIIFWidget(viewer)
    viewer.window.add_dock_widget(w)
    return w


def choose(w, data: str) -> None:
    w.engine_box.combo.setCurrentIndex(w.engine_box.combo.findData(data))


def wait_idle(w, qtbot) -> None:
    qtbot.waitUntil(lambda: w.worker is None and w.run_button.isEnabled() and not w._dab_again,
                    timeout=RUN_TIMEOUT_MS)


def cli_score(image: Path, out: Path, *extra: str) -> dict:
    assert main(["score", str(image), "--engine", "stain", "--resolution", "40x", "--out", str(out), *extra]) == 0
    return json.loads((out / image.stem / "score.json").read_text())["scoring"]


def test_only_the_stain_engine_shows_a_dab_slider_and_it_hides_the_seg_slider(widget, fit_model_dir):
    box = widget.threshold_box
    choose(widget, "stain")
    assert not box.dab.isHidden() and box.dab.value() == 0.2
    assert box.sliders["seg_thresh"].isHidden() and not box.seg_note.isHidden()
    assert "stain engine" in box.seg_note.text()
    widget.engine_box.add_local(fit_model_dir, name="fit")  # a DeepLIIF model: its Seg has a ramp
    assert widget.engine_box.combo.currentData() == "fit"
    assert box.dab.isHidden() and box.seg_note.isHidden() and not box.sliders["seg_thresh"].isHidden()


def test_the_dab_slider_rescores_as_score_dab_threshold_does(widget, qtbot, shared_dir, tmp_path):
    path = shared_dir / "fixtures" / "inputs" / "roi1_crop_700x600.png"
    widget.viewer.add_image(read_rgb(path), name="roi1", rgb=True)
    choose(widget, "stain")
    widget.run()
    wait_idle(widget, qtbot)
    default = cli_score(path, tmp_path / "default")
    assert widget.post.scoring == default
    # a size threshold and a click set before the move stay with the cells
    widget.sliders["size_thresh"].move_to(default["size_thresh"] + 20)
    qtbot.waitUntil(lambda: widget.post.scoring["size_thresh"] == default["size_thresh"] + 20, timeout=3000)
    counted = [int(i) for i in widget.post.table.id[widget.post.counted]]
    widget.override_cell(counted[0], "exclude")
    for od in (0.45, 0.3):
        widget.dab_slider.move_to(round(od * 100))
        qtbot.waitUntil(lambda: widget.worker is not None, timeout=3000)  # debounced, then re-run
        wait_idle(widget, qtbot)
        expected = cli_score(path, tmp_path / f"dab{od}", "--dab-threshold", str(od),
                             "--size-thresh", str(default["size_thresh"] + 20))
        assert widget.last.result.provenance["parameters"] == {"dab_threshold": od}
        assert widget.post.overrides == {counted[0]: "exclude"}
        assert widget.post.scoring["num_total"] == expected["num_total"] - 1  # the excluded cell
        positive_excluded = int(widget.post.rescore(overrides={}).scoring["num_pos"]) - widget.post.scoring["num_pos"]
        assert widget.post.scoring["num_pos"] + positive_excluded == expected["num_pos"]
        assert widget.score_table.cell_text(0, 2) == str(widget.post.scoring["num_pos"])
    assert expected["num_pos"] < default["num_pos"]
    assert widget.dab_slider.value() == 0.3 and widget.threshold_box.seg_note.isVisibleTo(widget)
