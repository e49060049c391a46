"""The "Positive by" controls of the dock widget: score on the engine's class or on a
compartment's DAB OD measured on the IHC image, with optional 1+/2+/3+ bins, a membrane
completeness and the cell expansion the cytoplasm and membrane are measured with."""

from __future__ import annotations

from typing import Any

from qtpy.QtCore import Signal
from qtpy.QtWidgets import QCheckBox, QComboBox, QFormLayout, QGroupBox, QLabel, QVBoxLayout, QWidget

from napari_deepliif.cells.measure import (
    DEFAULT_BINS_OD,
    DEFAULT_EXPANSION_UM,
    DEFAULT_POSITIVE_OD,
)
from napari_deepliif.cells.scoring import COMPARTMENTS
from napari_deepliif.widget import strings
from napari_deepliif.widget._controls import ThresholdSlider
from napari_deepliif.widget._thresholds import DAB_MAX_OD, DAB_STEPS

#: The compartment settings of ``PostprocessResult.rescore`` this box sets, at their defaults.
COMPARTMENT_DEFAULTS: dict[str, Any] = {"compartment": "class", "positive_od": DEFAULT_POSITIVE_OD, "bins_od": None,
                                        "min_completeness": None, "expansion_um": DEFAULT_EXPANSION_UM}
#: Cell expansion slider: half micrometres, up to 20 µm (QuPath's default is 5).
EXPANSION_STEPS, EXPANSION_MAX_UM = 2, 20


def result_text(scoring: dict) -> str:
    """What decided positive, for the line under the score table (a score's settings keys,
    ``PostprocessResult.scoring``), with the bins and H-score when there are some."""
    if scoring.get("compartment", "class") == "class":
        return strings.RESULT_CLASS
    completeness = scoring["min_completeness"]
    expanded = scoring["compartment"] != "nucleus"
    text = strings.RESULT_COMPARTMENT.format(
        compartment=scoring["compartment"], od=scoring["positive_od"],
        expansion=strings.RESULT_EXPANSION.format(expansion=scoring["expansion_um"]) if expanded else "",
        completeness="" if completeness is None else strings.RESULT_COMPLETENESS.format(share=completeness * 100))
    if "h_score" in scoring:
        text += strings.RESULT_BINS.format(n1=scoring["num_1plus"], n2=scoring["num_2plus"], n3=scoring["num_3plus"],
                                           h_score=scoring["h_score"])
    return text


def _od_slider(title: str, tooltip: str, value: float) -> ThresholdSlider:
    slider = ThresholdSlider(title, tooltip, 0, round(DAB_MAX_OD * DAB_STEPS), steps=DAB_STEPS)
    slider.set_value(value)
    return slider


class CompartmentBox(QGroupBox):
    """Mode chooser (class / nucleus / cytoplasm / membrane / cell), positive OD, optional
    2+/3+ bins, minimum membrane completeness and cell expansion.

    ``changed`` is emitted with the settings (:data:`COMPARTMENT_DEFAULTS` keys) whenever the
    user changes one; :meth:`show_settings` shows a result's settings without emitting.
    """

    changed = Signal(dict)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(strings.POSITIVE_BY_BOX, parent)
        layout = QVBoxLayout(self)
        form = QFormLayout()
        self.mode = QComboBox()
        for name in COMPARTMENTS:
            self.mode.addItem(strings.COMPARTMENT_ITEMS[name], name)
        self.mode.setToolTip(strings.POSITIVE_BY_TIP)
        form.addRow(strings.POSITIVE_BY, self.mode)
        layout.addLayout(form)
        self.positive_od = _od_slider(strings.POSITIVE_OD, strings.POSITIVE_OD_TIP, DEFAULT_POSITIVE_OD)
        self.bins = QCheckBox(strings.BINS)
        self.bins.setToolTip(strings.BINS_TIP)
        self.bin2 = _od_slider(strings.BIN_2, strings.BINS_TIP, DEFAULT_BINS_OD[0])
        self.bin3 = _od_slider(strings.BIN_3, strings.BINS_TIP, DEFAULT_BINS_OD[1])
        self.completeness = ThresholdSlider(strings.COMPLETENESS, strings.COMPLETENESS_TIP, -1, 100, none_at="min")
        self.completeness.set_value(None)
        self.expansion = ThresholdSlider(strings.EXPANSION, strings.EXPANSION_TIP, 0, EXPANSION_MAX_UM * EXPANSION_STEPS,
                                         steps=EXPANSION_STEPS)
        self.expansion.set_value(DEFAULT_EXPANSION_UM)
        self.note = QLabel(strings.CLASS_MODE_NOTE)
        self.note.setWordWrap(True)
        for w in (self.positive_od, self.bins, self.bin2, self.bin3, self.completeness, self.expansion, self.note):
            layout.addWidget(w)
        self.mode.currentIndexChanged.connect(self._changed)
        self.bins.toggled.connect(self._changed)
        for slider in (self.positive_od, self.bin2, self.bin3, self.completeness, self.expansion):
            slider.changed.connect(self._changed)
        self._enable()

    def settings(self) -> dict[str, Any]:
        """The compartment settings shown (``rescore`` keyword arguments); in the class mode
        the bins and completeness, which score a compartment, are not applied."""
        by_compartment = self.mode.currentData() != "class"
        completeness = self.completeness.value() if by_compartment else None
        return {"compartment": self.mode.currentData(), "positive_od": self.positive_od.value(),
                "bins_od": (self.bin2.value(), self.bin3.value()) if by_compartment and self.bins.isChecked() else None,
                "min_completeness": None if completeness is None else completeness / 100,
                "expansion_um": self.expansion.value()}

    def show_settings(self, settings: Any) -> None:
        """Show a result's compartment settings (a ``cells.postprocess.Settings``), silently;
        a class-mode result leaves the compartment controls as they were, for the next mode."""
        self.mode.blockSignals(True)
        try:
            self.mode.setCurrentIndex(self.mode.findData(settings.compartment))
        finally:
            self.mode.blockSignals(False)
        self.expansion.set_value(settings.expansion_um)
        self._enable()
        if settings.compartment == "class":
            return
        self.bins.blockSignals(True)
        try:
            self.bins.setChecked(settings.bins_od is not None)
        finally:
            self.bins.blockSignals(False)
        self.positive_od.set_value(settings.positive_od)
        if settings.bins_od is not None:
            self.bin2.set_value(settings.bins_od[0])
            self.bin3.set_value(settings.bins_od[1])
        self.completeness.set_value(None if settings.min_completeness is None else round(settings.min_completeness * 100))
        self._enable()

    def _changed(self, *_args: Any) -> None:
        # the bins start at the positive OD and 3+ is not below 2+ (the engine's rule)
        low = max(self.bin2.value(), self.positive_od.value())
        self.bin2.set_value(low)
        self.bin3.set_value(max(low, self.bin3.value()))
        self._enable()
        self.changed.emit(self.settings())

    def _enable(self) -> None:
        """Controls that score a compartment act only in a compartment mode; the expansion also
        sets what the exports measure, so it stays."""
        by_compartment = self.mode.currentData() != "class"
        for w in (self.positive_od, self.bins, self.completeness):
            w.setEnabled(by_compartment)
        for w in (self.bin2, self.bin3):
            w.setEnabled(by_compartment and self.bins.isChecked())
        self.note.setVisible(not by_compartment)
