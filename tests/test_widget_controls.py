"""Controls that mean something per engine, in a real napari viewer: the stain engine's DAB
threshold slider (shown for it alone, re-scoring as ``score --dab-threshold`` does) and the Seg
threshold slider replaced by a note where the engine's Seg map has no probability ramp."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import read_rgb
from test_widget import RUN_TIMEOUT_MS, widget  # noqa: F401 (a fixture)

from napari_deepliif.cli.main import main

pytestmark = pytest.mark.usefixtures("private_model_dirs")


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


def test_compartment_modes_rescore_live_as_score_does_and_export(widget, qtbot, tmp_path):
    """The FHL2 sample (a cytoplasmic/membranous stain) scored on its membrane: every control
    of the "Positive by" box re-scores from the cell table as ``score --compartment`` does."""
    import csv

    from napari_deepliif.io.sample import load_sample

    widget.viewer.add_image(load_sample(), name="fhl2", rgb=True)
    choose(widget, "stain")
    widget.run()
    wait_idle(widget, qtbot)
    box = widget.compartment_box
    assert not box.positive_od.isEnabled() and box.note.isVisibleTo(widget)  # class mode: explained
    cells_before = widget.post.labels().copy()

    def settled() -> bool:
        return widget.relabelling is None and widget.score_table.isEnabled()

    def expect(*options: str) -> dict:
        out = tmp_path / f"cli{len(list(tmp_path.iterdir()))}"
        assert main(["score", "--sample", "--engine", "stain", "--out", str(out), *options]) == 0
        return json.loads((out / "ihc_colon_fhl2" / "score.json").read_text())["scoring"]

    box.mode.setCurrentIndex(box.mode.findData("membrane"))  # first measurement: in the background
    qtbot.waitUntil(lambda: widget.post.settings.compartment == "membrane" and settled(), timeout=30_000)
    assert widget.post.scoring == expect("--compartment", "membrane")
    assert box.positive_od.isEnabled() and not box.note.isVisibleTo(widget)
    # the engine's class thresholds do nothing now: greyed out, and said so
    thresholds = widget.threshold_box
    assert not widget.dab_slider.isEnabled() and not widget.sliders["marker_thresh"].isEnabled()
    assert thresholds.class_note.isVisibleTo(widget)
    assert "membrane DAB OD > 0.20" in widget.result_label.text()
    box.positive_od.move_to(35)
    box.bins.setChecked(True)
    box.completeness.move_to(50)
    qtbot.waitUntil(lambda: widget.post.settings.min_completeness == 0.5 and settled(), timeout=3000)
    expected = expect("--compartment", "membrane", "--positive-od", "0.35", "--bins-od", "0.4,0.6",
                      "--min-completeness", "0.5")
    assert widget.post.scoring == expected and "h_score" in expected
    assert widget.score_table.columnCount() == 9
    assert widget.score_table.cell_text(0, 8) == str(expected["h_score"])
    assert f"H-score {expected['h_score']}" in widget.result_label.text()
    box.expansion.move_to(6)  # 3 µm: the cells are measured again, in the background
    qtbot.waitUntil(lambda: widget.post.settings.expansion_um == 3.0 and settled(), timeout=30_000)
    expected = expect("--compartment", "membrane", "--positive-od", "0.35", "--bins-od", "0.4,0.6",
                      "--min-completeness", "0.5", "--expansion-um", "3")
    assert widget.post.scoring == expected
    assert (widget.post.labels() == cells_before).all()  # no cell was found again, no network run
    widget.export(tmp_path / "export")
    record = json.loads((tmp_path / "export" / "score.json").read_text())
    assert record["scoring"] == expected
    with open(tmp_path / "export" / "cells.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == expected["num_total"] and "Membrane: DAB OD mean" in rows[0]
    assert sum(r["class"] == "Positive" for r in rows) == expected["num_pos"]
    box.mode.setCurrentIndex(box.mode.findData("class"))  # back to the engine's class
    qtbot.waitUntil(lambda: widget.post.settings.compartment == "class" and settled(), timeout=3000)
    assert widget.post.scoring["num_pos"] == expect()["num_pos"]
    assert widget.result_label.text() == "Positive by the engine's class."
    assert widget.dab_slider.isEnabled() and widget.sliders["marker_thresh"].isEnabled()
    assert not thresholds.class_note.isVisibleTo(widget)


def test_compartments_are_measured_at_the_layers_pixel_size(widget, qtbot, tmp_path):
    """A layer that says it is 0.45 µm/px is scored at 20x (nominally 0.5 µm/px), and its cells
    are measured and expanded in micrometres of its own pixel size, as ``score --mpp 0.45``
    does for the file."""
    from napari_deepliif.io.sample import load_sample

    widget.viewer.add_image(load_sample(), name="fhl2", rgb=True, metadata={"mpp": 0.45})
    assert widget.resolution_combo.currentText() == "20x"
    choose(widget, "stain")
    widget.run()
    wait_idle(widget, qtbot)
    box = widget.compartment_box
    box.mode.setCurrentIndex(box.mode.findData("cytoplasm"))
    qtbot.waitUntil(lambda: widget.post.settings.compartment == "cytoplasm" and widget.relabelling is None,
                    timeout=30_000)
    assert main(["score", "--sample", "--engine", "stain", "--mpp", "0.45", "--compartment", "cytoplasm",
                 "--out", str(tmp_path)]) == 0
    expected = json.loads((tmp_path / "ihc_colon_fhl2" / "score.json").read_text())["scoring"]
    assert widget.post.scoring == expected
    areas = widget.post.measurements.columns["Nucleus: Area µm^2"]
    assert areas[0] == pytest.approx(widget.post.table.area[0] * 0.45**2)
