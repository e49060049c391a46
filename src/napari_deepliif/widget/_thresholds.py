"""The threshold sliders of the dock widget, showing only those that mean something for the
engine whose cells are shown (or, before a run, the engine chosen)."""

from __future__ import annotations

from typing import Any

from qtpy.QtCore import Signal
from qtpy.QtWidgets import QGroupBox, QLabel, QPushButton, QVBoxLayout, QWidget

from napari_deepliif.cells.find import MAX_SEG_THRESH
from napari_deepliif.engine.engines import StainEngine
from napari_deepliif.widget import strings
from napari_deepliif.widget._controls import ThresholdSlider
from napari_deepliif.widget.workers import STAIN

#: DAB OD slider: hundredths of an OD, up to the Marker image's top (255 = 2.55 OD).
DAB_STEPS = 100
DAB_MAX_OD = 2.55


class ThresholdBox(QGroupBox):
    """The postprocessing sliders, the stain engine's DAB threshold and Defaults.

    ``sliders`` maps a setting of ``PostprocessResult.rescore`` to its slider; ``changed``
    is emitted with (setting, value) when one moves, ``dab_changed`` with the DAB OD.
    """

    changed = Signal(str, object)
    dab_changed = Signal(float)

    def __init__(self, defaults: dict[str, Any], parent: QWidget | None = None) -> None:
        super().__init__(strings.THRESHOLDS, parent)
        layout = QVBoxLayout(self)
        self.dab = ThresholdSlider(strings.DAB_THRESH, strings.DAB_THRESH_TIP, 0, round(DAB_MAX_OD * DAB_STEPS),
                                   steps=DAB_STEPS)
        self.dab.set_value(StainEngine.dab_threshold)
        self.dab.changed.connect(self.dab_changed.emit)
        layout.addWidget(self.dab)
        self.sliders = {
            "seg_thresh": ThresholdSlider(strings.SEG_THRESH, strings.SEG_THRESH_TIP, 0, MAX_SEG_THRESH),
            "size_thresh": ThresholdSlider(strings.SIZE_THRESH, strings.SIZE_THRESH_TIP, 0, 1000),
            "size_thresh_upper": ThresholdSlider(strings.SIZE_UPPER, strings.SIZE_UPPER_TIP, 1, 1001, none_at="max"),
            "marker_thresh": ThresholdSlider(strings.MARKER_THRESH, strings.MARKER_THRESH_TIP, -1, 255, none_at="min"),
        }
        for key, slider in self.sliders.items():
            slider.set_value(defaults[key] if key != "size_thresh" else 0)
            slider.changed.connect(lambda value, key=key: self.changed.emit(key, value))
            slider.setEnabled(False)
            layout.addWidget(slider)
            if key == "seg_thresh":
                self.seg_note = QLabel(strings.SEG_THRESH_STAIN)
                self.seg_note.setWordWrap(True)
                layout.addWidget(self.seg_note)
        self.class_note = QLabel(strings.CLASS_THRESHOLDS_OFF)
        self.class_note.setWordWrap(True)
        layout.addWidget(self.class_note)
        self.defaults_button = QPushButton(strings.DEFAULTS)
        self.defaults_button.setToolTip(strings.DEFAULTS_TIP)
        layout.addWidget(self.defaults_button)
        self.show_for(chosen=STAIN, shown=None)

    def show_for(self, chosen: str, shown: str | None, by_compartment: bool = False) -> None:
        """Show the controls that act on the cells shown (engine ``shown``; None before a run)
        or on the next run (engine ``chosen``): the DAB threshold for the stain engine, which
        has no Seg probability ramp, so its Seg threshold only changes anything at its top,
        where every cell vanishes, and is replaced by a note. ``by_compartment``: a
        compartment's DAB OD decides, so the engine's class thresholds (DAB, marker) are
        greyed out, with a note."""
        stain_cells = (shown or chosen) == STAIN
        self.dab.setVisible(STAIN in (chosen, shown))
        self.sliders["seg_thresh"].setVisible(not stain_cells)
        self.seg_note.setVisible(stain_cells)
        self.dab.setEnabled(not by_compartment)
        self.sliders["marker_thresh"].setEnabled(not by_compartment and self.sliders["size_thresh"].isEnabled())
        self.class_note.setVisible(by_compartment)

    def enable(self) -> None:
        """Let the sliders act (there are cells to re-score)."""
        for slider in self.sliders.values():
            slider.setEnabled(True)
