"""Small Qt building blocks of the dock widget: a threshold slider row, the score table and
the scroll area the controls stand in."""

from __future__ import annotations

from collections.abc import Sequence

from qtpy.QtCore import QSize, Qt, Signal
from qtpy.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QScrollArea,
    QSlider,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)

from napari_deepliif.widget import strings


class ThresholdSlider(QWidget):
    """A labelled slider whose ends can mean "not applied" (None).

    ``none_at``: ``"min"`` or ``"max"`` makes that end of the range stand for None.
    ``steps``: slider positions per unit; above 1 the threshold is a float (``low`` and
    ``high`` are then in positions, e.g. hundredths). ``changed`` is emitted with the
    threshold (int, float or None) when the user moves it.
    """

    changed = Signal(object)

    def __init__(self, title: str, tooltip: str, low: int, high: int,
                 none_at: str | None = None, steps: int = 1, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.none_at, self.steps = none_at, steps
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(low, high)
        self.value_label = QLabel()
        self.value_label.setMinimumWidth(48)
        title_label = QLabel(title)
        title_label.setMinimumWidth(110)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for w in (title_label, self.slider, self.value_label):
            w.setToolTip(tooltip)
            layout.addWidget(w)
        self.slider.valueChanged.connect(self._moved)
        self._show(self.slider.value())

    def _is_none(self, position: int) -> bool:
        return (self.none_at == "min" and position == self.slider.minimum()) or \
            (self.none_at == "max" and position == self.slider.maximum())

    def _show(self, position: int) -> None:
        text = str(position) if self.steps == 1 else f"{position / self.steps:.2f}"
        self.value_label.setText(strings.OFF if self._is_none(position) else text)

    def _moved(self, position: int) -> None:
        self._show(position)
        self.changed.emit(self.value())

    def value(self) -> int | float | None:
        """The threshold shown (None at the "not applied" end)."""
        position = self.slider.value()
        if self._is_none(position):
            return None
        return position if self.steps == 1 else position / self.steps

    def set_value(self, value: int | float | None, *, high: int | None = None) -> None:
        """Show ``value`` (None: the "not applied" end) without emitting ``changed``;
        ``high`` moves the top of the range first."""
        self.slider.blockSignals(True)
        try:
            if high is not None:
                self.slider.setMaximum(max(high, self.slider.minimum() + 1))
            if value is None:
                position = self.slider.maximum() if self.none_at == "max" else self.slider.minimum()
            else:
                position = min(max(round(value * self.steps), self.slider.minimum()), self.slider.maximum())
                if self.none_at == "max" and position == self.slider.maximum():
                    self.slider.setMaximum(position + 1)
            self.slider.setValue(position)
            self._show(position)
        finally:
            self.slider.blockSignals(False)

    def move_to(self, position: int) -> None:
        """Move as a user would (emits ``changed``)."""
        self.slider.setValue(position)


class ScoreTable(QTableWidget):
    """Rows of area name, total, positive, negative and % positive, then the cells of each
    class of a class-map model."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(0, len(strings.SCORE_HEADERS), parent)
        self.setHorizontalHeaderLabels(strings.SCORE_HEADERS)
        self.verticalHeader().setVisible(False)
        self.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.horizontalHeader().setStretchLastSection(True)
        self.setMinimumHeight(140)

    def show_scores(self, rows: Sequence[tuple[str, dict]]) -> None:
        """One row per ``(name, score)``; score has the reference's count keys, and the
        intensity bins and H-score (``num_1plus`` ... ``h_score``) and a class-map model's
        per-class counts (``classes``) add columns."""
        keys = ["num_total", "num_pos", "num_neg", "percent_pos"]
        headers = list(strings.SCORE_HEADERS)
        if rows and all("h_score" in score for _, score in rows):
            keys += ["num_1plus", "num_2plus", "num_3plus", "h_score"]
            headers += strings.BIN_HEADERS
        classes = list(rows[0][1].get("classes", {})) if rows else []
        headers += classes
        self.setColumnCount(len(headers))
        self.setHorizontalHeaderLabels(headers)
        # nine columns do not fit a dock's width in equal shares: each gets what it shows
        mode = QHeaderView.ResizeMode.Stretch if len(headers) == len(strings.SCORE_HEADERS) \
            else QHeaderView.ResizeMode.ResizeToContents
        self.horizontalHeader().setSectionResizeMode(mode)
        self.setRowCount(len(rows))
        for r, (name, score) in enumerate(rows):
            values = (name, *(score[k] for k in keys), *(score["classes"][c] for c in classes))
            for c, value in enumerate(values):
                self.setItem(r, c, QTableWidgetItem(str(value)))

    def cell_text(self, row: int, column: int) -> str:
        """Text shown in one cell (for tests and screen readers)."""
        item = self.item(row, column)
        return "" if item is None else item.text()


class VerticalScroll(QScrollArea):
    """A frameless scroll area around ``content`` that scrolls only vertically: as wide as the
    content needs (so nothing is cut at the side), as short as the dock it stands in."""

    def __init__(self, content: QWidget):
        super().__init__()
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setWidget(content)

    def minimumSizeHint(self) -> QSize:
        width = self.widget().minimumSizeHint().width() + self.verticalScrollBar().sizeHint().width()
        return QSize(width, super().minimumSizeHint().height())
