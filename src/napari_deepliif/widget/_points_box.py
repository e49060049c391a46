"""The controls of a ``points`` model's result: the confidence threshold and NMS distance
sliders that re-select points from the network's candidates (``PointsResult.rescore``)."""

from __future__ import annotations

from qtpy.QtCore import Signal
from qtpy.QtWidgets import QGroupBox, QLabel, QVBoxLayout, QWidget

from napari_deepliif.cells.detections import DEFAULT_FLOOR
from napari_deepliif.widget import strings
from napari_deepliif.widget._controls import ThresholdSlider

#: Slider positions per unit: hundredths of a confidence, tenths of a µm.
CONFIDENCE_STEPS, DISTANCE_STEPS = 100, 10
#: Largest NMS distance offered (µm): several nuclei wide at any magnification.
MAX_DISTANCE_UM = 30


class PointsBox(QGroupBox):
    """A note on what applies to points, the confidence and distance sliders; ``changed`` is
    emitted with (confidence, distance µm) when either moves."""

    changed = Signal(float, float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(strings.POINTS_BOX, parent)
        layout = QVBoxLayout(self)
        note = QLabel(strings.POINTS_NOTE)
        note.setWordWrap(True)
        layout.addWidget(note)
        self.confidence = ThresholdSlider(strings.POINT_CONFIDENCE, strings.POINT_CONFIDENCE_TIP,
                                          round(DEFAULT_FLOOR * CONFIDENCE_STEPS), CONFIDENCE_STEPS,
                                          steps=CONFIDENCE_STEPS)
        self.distance = ThresholdSlider(strings.POINT_DISTANCE, strings.POINT_DISTANCE_TIP, 0,
                                        MAX_DISTANCE_UM * DISTANCE_STEPS, steps=DISTANCE_STEPS)
        for slider in (self.confidence, self.distance):
            slider.changed.connect(self._moved)
            layout.addWidget(slider)

    def _moved(self, _value: float) -> None:
        self.changed.emit(float(self.confidence.value()), float(self.distance.value()))

    def show_selection(self, confidence: float, distance_um: float) -> None:
        """Show the settings that selected the points shown (without emitting ``changed``)."""
        self.confidence.set_value(confidence)
        self.distance.set_value(distance_um)
