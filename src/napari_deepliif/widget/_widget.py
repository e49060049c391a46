"""The DeepLIIF dock widget: a thin Qt shell over the engine (``score``, ``rescore``, exports)."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import napari.viewer
import numpy as np
from napari.layers import Image, Labels, Shapes
from napari.qt.threading import create_worker
from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import QObject, Signal
from qtpy.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)
from superqt.utils import qdebounced, qthrottled

from napari_deepliif.constants import DEFAULT_RESOLUTION, DEFAULT_SEG_THRESH
from napari_deepliif.engine.cpu_memory import keep_freed_memory
from napari_deepliif.engine.devices import DEVICES, PRECISIONS
from napari_deepliif.engine.engines import EngineBase
from napari_deepliif.errors import Cancelled, DeepLIIFError
from napari_deepliif.regions.points import PointsResult
from napari_deepliif.resolution import RESOLUTIONS
from napari_deepliif.widget import layers as out
from napari_deepliif.widget import roi, strings
from napari_deepliif.widget._compartments import (
    COMPARTMENT_DEFAULTS,
    CompartmentBox,
    result_text,
)
from napari_deepliif.widget._controls import ScoreTable, VerticalScroll
from napari_deepliif.widget._engine_box import EngineBox
from napari_deepliif.widget._points_box import PointsBox
from napari_deepliif.widget._serve_box import ServeBox
from napari_deepliif.widget._thresholds import ThresholdBox
from napari_deepliif.widget.points_layer import show_points
from napari_deepliif.widget.workers import (
    STAIN,
    EngineChoice,
    RunSpec,
    roi_scores,
    score_area,
)

log = logging.getLogger(__name__)

#: Slider input is applied at most this often (ms); the first move applies at once.
THROTTLE_MS = 40
#: A DAB threshold move re-runs the stain engine once the slider has rested this long (ms).
DAB_DEBOUNCE_MS = 250
#: Largest area (pixels) whose cells a seg threshold move finds on the GUI thread (~30-55 ms
#: for 9 MP on the machines of docs/benchmarks.md, ~230-330 ms for 64 MP); larger ones are
#: found in a worker thread so napari never freezes (at 64 MP its longest stall is then
#: ~80-100 ms). Below it the worker would cost more than it saves: on 2 cores with software
#: OpenGL, the repaints it lets through slow the search itself (40-54 -> 74-83 ms at 9 MP).
RELABEL_ON_GUI_THREAD_MAX_PX = 16_000_000
#: Reference defaults of the thresholds (see ``napari_deepliif.cells.postprocess.Settings``).
DEFAULT_SETTINGS = {"seg_thresh": DEFAULT_SEG_THRESH, "size_thresh": "default",
                    "size_thresh_upper": None, "marker_thresh": None, **COMPARTMENT_DEFAULTS}
AREAS = (strings.AREA_WHOLE, strings.AREA_ROIS, strings.AREA_VIEW)


class _Relay(QObject):
    """Carries progress from the worker thread to the GUI thread (queued signal)."""

    progress = Signal(int, int)


@dataclass
class _Run:
    """What the widget keeps of the last run (the engine result and where it lies)."""

    result: Any
    engine: EngineBase
    polygons: list
    union: np.ndarray | None
    source: str
    origin: tuple[int, int]
    level: int = 0
    downsample: float = 1.0
    mpp: float | None = None
    spec: RunSpec | None = None
    layer: Any = None


class DeepLIIFWidget(QWidget):
    """Score an RGB IHC image layer (whole, ROIs or field of view) with DeepLIIF or ``stain``.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
        The viewer whose layers are read and written.
    """

    def __init__(self, viewer: napari.viewer.Viewer, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        keep_freed_memory()  # runs happen in worker threads, which must start after this
        self.viewer = viewer
        self.worker: Any = None
        self.post: Any = None
        self.relabelling: Any = None  # the worker finding the cells for a new seg threshold
        self._relabel_for: _Run | None = None  # the run whose cells it finds again
        self._relabel_again = False  # settings changed while it ran
        self._running: tuple = ()  # (spec, layer, level, keep) of the run in progress
        self._dab_again = False  # the DAB threshold moved while a run was going
        self.last: _Run | None = None
        self.settings: dict[str, Any] = dict(DEFAULT_SETTINGS)
        self._cancel = threading.Event()
        self._relay = _Relay()
        self._relay.progress.connect(self._on_progress)
        self.apply_settings_throttled = qthrottled(self.apply_settings, timeout=THROTTLE_MS, leading=True)
        self.rerun_dab_debounced = qdebounced(self.rerun_dab, timeout=DAB_DEBOUNCE_MS)
        self.select_points_throttled = qthrottled(self.select_points, timeout=THROTTLE_MS, leading=True)
        layout = QVBoxLayout(self._scrolled())
        layout.addWidget(self._input_box())
        self.engine_box = EngineBox(self)
        layout.addWidget(self.engine_box)
        layout.addWidget(self._options_box())
        layout.addLayout(self._run_row())
        layout.addWidget(self._threshold_box())
        self.compartment_box = CompartmentBox()
        self.compartment_box.changed.connect(self.set_compartment)
        layout.addWidget(self.compartment_box)
        self.points_box = PointsBox()
        self.points_box.changed.connect(self.select_points_throttled)
        layout.addWidget(self.points_box)
        layout.addWidget(self._cells_box())
        self.serve_box = ServeBox(self.engine_choice)
        layout.addWidget(self.serve_box)
        layout.addStretch(1)
        self.engine_box.chosen.connect(self._show_controls)
        self._show_controls()
        for event in (viewer.layers.events.inserted, viewer.layers.events.removed,
                      viewer.layers.events.reordered):
            event.connect(self._refresh_layers)
        self._refresh_layers()

    # ---- construction ----------------------------------------------------------------------
    def _scrolled(self) -> QWidget:
        """The widget that holds the controls, in a vertical scroll area filling this one: all
        the groups stand ~900 px tall, more than a laptop screen leaves a dock."""
        content = QWidget()
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(VerticalScroll(content))
        return content

    def _input_box(self) -> QGroupBox:
        box = QGroupBox(strings.IMAGE)
        form = QFormLayout(box)
        self.image_combo, self.shapes_combo = QComboBox(), QComboBox()
        self.area_combo, self.level_spin = QComboBox(), QSpinBox()
        self.area_combo.addItems(AREAS)
        _add_rows(form, ((strings.IMAGE, self.image_combo, strings.IMAGE_TIP),
                         (strings.AREA, self.area_combo, strings.AREA_TIP),
                         (strings.SHAPES, self.shapes_combo, strings.SHAPES_TIP),
                         (strings.LEVEL, self.level_spin, strings.LEVEL_TIP)))
        self.image_combo.currentIndexChanged.connect(self._image_changed)
        self.level_spin.valueChanged.connect(self._level_changed)
        return box

    def _options_box(self) -> QGroupBox:
        box = QGroupBox(strings.OUTPUTS)
        form = QFormLayout(box)
        self.resolution_combo, self.device_combo = QComboBox(), QComboBox()
        self.precision_combo, self.outputs_combo = QComboBox(), QComboBox()
        self.resolution_combo.addItems(RESOLUTIONS)
        self.resolution_combo.setCurrentText(DEFAULT_RESOLUTION)
        self.device_combo.addItems(DEVICES)
        self.precision_combo.addItems(PRECISIONS)
        self.outputs_combo.addItems([strings.OUTPUTS_ALL, strings.OUTPUTS_SCORE])
        _add_rows(form, ((strings.RESOLUTION, self.resolution_combo, strings.RESOLUTION_TIP),
                         (strings.DEVICE, self.device_combo, strings.DEVICE_TIP),
                         (strings.PRECISION, self.precision_combo, strings.PRECISION_TIP),
                         (strings.OUTPUTS, self.outputs_combo, strings.OUTPUTS_TIP)))
        return box

    def _run_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.run_button, self.cancel_button = QPushButton(strings.RUN), QPushButton(strings.CANCEL)
        self.run_button.setToolTip(strings.RUN_TIP)
        self.cancel_button.setToolTip(strings.CANCEL_TIP)
        self.cancel_button.setEnabled(False)
        self.progress_bar = QProgressBar()
        self.run_button.clicked.connect(self.run)
        self.cancel_button.clicked.connect(self.cancel)
        for w in (self.run_button, self.cancel_button, self.progress_bar):
            row.addWidget(w)
        return row

    def _threshold_box(self) -> ThresholdBox:
        self.threshold_box = box = ThresholdBox(DEFAULT_SETTINGS)
        self.sliders, self.dab_slider, self.defaults_button = box.sliders, box.dab, box.defaults_button
        box.changed.connect(self.set_threshold)
        box.dab_changed.connect(self.set_dab_threshold)
        box.defaults_button.clicked.connect(self.reset_thresholds)
        return box

    def _cells_box(self) -> QGroupBox:
        box = QGroupBox("Score")
        layout = QVBoxLayout(box)
        row = QHBoxLayout()
        self.click_combo = QComboBox()
        self.click_combo.addItems([strings.CLICK_NOTHING, strings.CLICK_EXCLUDE, strings.CLICK_FLIP,
                                   strings.CLICK_RESTORE])
        self.click_combo.setToolTip(strings.CLICK_TIP)
        row.addWidget(QLabel(strings.CLICK))
        row.addWidget(self.click_combo)
        layout.addLayout(row)
        self.score_table = ScoreTable()
        layout.addWidget(self.score_table)
        self.result_label = QLabel()
        self.result_label.setWordWrap(True)
        layout.addWidget(self.result_label)
        self.export_button = QPushButton(strings.EXPORT)
        self.export_button.setToolTip(strings.EXPORT_TIP)
        self.export_button.clicked.connect(self._export_clicked)
        layout.addWidget(self.export_button)
        return box

    # ---- layer choices -----------------------------------------------------------------------
    def _refresh_layers(self, event: Any = None) -> None:
        for combo, kind in ((self.image_combo, Image), (self.shapes_combo, Shapes)):
            current = combo.currentData()
            candidates = [layer for layer in self.viewer.layers if isinstance(layer, kind)
                          and out.PLUGIN_KEY not in layer.metadata]
            combo.blockSignals(True)
            combo.clear()
            for layer in candidates:
                combo.addItem(layer.name, layer)
            if current in candidates:
                combo.setCurrentIndex(candidates.index(current))
            combo.blockSignals(False)
        self._image_changed()

    def _image_changed(self, index: int = -1) -> None:
        layer = self.image_combo.currentData()
        if layer is None:
            return
        self.level_spin.setMaximum(len(layer.data) - 1 if layer.multiscale else 0)
        self._level_changed()

    def _level_changed(self, _value: int = 0) -> None:
        """The magnification follows the pyramid level chosen, when the pixel size is known."""
        layer = self.image_combo.currentData()
        mpp = roi.pixel_size_um(layer) if layer is not None else None
        if mpp is not None:
            from napari_deepliif.resolution import resolution_from_mpp

            level = self.level_spin.value() if layer.multiscale else 0
            self.resolution_combo.setCurrentText(resolution_from_mpp(mpp * roi.downsample_factors(layer, level)[-1]))

    # ---- running -------------------------------------------------------------------------------
    def _spec(self) -> tuple[RunSpec, Any, int]:
        """The run asked for by the controls (raises DeepLIIFError with the reason)."""
        layer = self.image_combo.currentData()
        if layer is None:
            raise DeepLIIFError(strings.NO_IMAGE)
        level = self.level_spin.value() if layer.multiscale else 0
        data = layer.data[level] if layer.multiscale else layer.data
        height, width = int(data.shape[0]), int(data.shape[1])
        area, polygons, rect = self.area_combo.currentText(), [], None
        if area == strings.AREA_ROIS:
            shapes = self.shapes_combo.currentData()
            polygons = roi.shapes_to_polygons(shapes, layer, level) if shapes is not None else []
            if not polygons:
                raise DeepLIIFError(strings.NO_SHAPES)
            rect = roi.bounding_rect(polygons, width, height)
            polygons = [roi.in_region(p, rect) for p in polygons]
        elif area == strings.AREA_VIEW:
            rect = roi.view_rect(self.viewer, layer, width, height, level)
        choice = self.engine_choice()
        outputs = "all" if self.outputs_combo.currentText() == strings.OUTPUTS_ALL else "score"
        levels = list(layer.data) if layer.multiscale else [layer.data]
        mpp = roi.pixel_size_um(layer)
        scored = None if mpp is None else mpp * float(roi.downsample_factors(layer, level)[-1])
        spec = RunSpec(choice, data, rect, self.resolution_combo.currentText(), outputs, polygons, levels, level,
                       mpp, scored)
        return spec, layer, level

    def engine_choice(self) -> EngineChoice:
        """The engine the controls ask for (raises DeepLIIFError if it is not installed)."""
        model = self.engine_box.model()
        return EngineChoice(model, self.device_combo.currentText(), self.precision_combo.currentText(),
                            self.dab_slider.value() if model == STAIN else None)

    def _show_controls(self) -> None:
        # the controls of the result shown, else (before a run) of the engine chosen
        kind = self.last.engine.name if self.last is not None else self.engine_box.model_type()
        points = kind == "points"
        for box in (self.threshold_box, self.compartment_box):
            box.setVisible(not points)
        self.click_combo.setEnabled(not points)
        self.points_box.setVisible(points)
        self.points_box.setEnabled(points and self.last is not None)
        self.threshold_box.show_for(chosen=self.engine_box.combo.currentData(),
                                    shown=self.last.engine.name if self.last is not None else None,
                                    by_compartment=self.post is not None and self.post.settings.compartment != "class")

    def run(self) -> Any:
        """Start a run in a worker thread; returns the worker (None if the input is unusable)."""
        try:
            spec, layer, level = self._spec()
        except DeepLIIFError as exc:
            show_error(str(exc))
            return None
        return self._start(spec, layer, level, keep=False)

    def _start(self, spec: RunSpec, layer: Any, level: int, keep: bool) -> Any:
        """Score ``spec`` in a worker; ``keep``: the same area again, whose cells keep the
        thresholds and clicks the user set."""
        self._cancel = threading.Event()
        worker = create_worker(score_area, spec, self._relay.progress.emit, self._cancel,
                               _connect={"errored": self._on_error}, _start_thread=False)
        # bound methods, not lambdas: Qt drops these connections if the widget is closed first
        self._running = (spec, layer, level, keep)
        worker.returned.connect(self._run_returned)
        worker.finished.connect(self._on_finished)
        self.run_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.progress_bar.setValue(0)
        self.worker = worker
        worker.start()
        return worker

    def cancel(self) -> None:
        """Ask the running engine to stop between batches (nothing is added)."""
        self._cancel.set()

    def _on_progress(self, done: int, total: int) -> None:
        self.progress_bar.setMaximum(max(total, 1))
        self.progress_bar.setValue(done)

    def _on_error(self, exc: BaseException) -> None:
        if not isinstance(exc, Cancelled):  # a table left from another run would be misread as this one's
            self.score_table.show_scores([])
        if isinstance(exc, Cancelled):
            show_info(strings.CANCELLED)
        elif isinstance(exc, DeepLIIFError):
            show_error(f"DeepLIIF: {exc}")
        else:
            log.error("DeepLIIF run failed", exc_info=exc)
            show_error(f"DeepLIIF run failed: {type(exc).__name__}: {exc}")

    def _on_finished(self) -> None:
        self.run_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self.worker = None
        if self._dab_again:
            self._dab_again = False
            self.rerun_dab()

    def _run_returned(self, found: tuple[Any, Any]) -> None:
        self._show(found, *self._running)

    def _show(self, found: tuple[Any, Any], spec: RunSpec, layer: Any, level: int, keep: bool = False) -> None:
        engine, result = found
        if isinstance(result, PointsResult):
            self._show_points(engine, result, spec, layer, level)
            return
        if keep and self.post is not None:  # the same cells: the user's settings and clicks stay
            same = np.array_equal(result.post.table.centroid_xy, self.post.table.centroid_xy)
            result = result.rescore(**self.settings, **({"overrides": self.post.overrides} if same else {}))
        # the layers show the window scored (the area and its context), ROIs move with it
        origin = result.origin
        scale, translate = out.placement(layer.scale, layer.translate, origin, roi.downsample_factors(layer, level))
        rect_origin = np.array(spec.rect[:2] if spec.rect else (0, 0), float)
        polygons = [np.asarray(p, float) + rect_origin - np.array(origin, float) for p in spec.polygons]
        union = roi.union_mask(polygons, result.post.cells.shape) if polygons else None
        factors = roi.downsample_factors(layer, level)
        base_mpp = roi.pixel_size_um(layer)
        self.last = _Run(result, engine, polygons, union, layer.name, origin, level, float(factors[-1]),
                         None if base_mpp is None else base_mpp * float(factors[-1]), spec, layer)
        if not keep:
            self.settings = dict(DEFAULT_SETTINGS)
        self.post = result.post
        meta = {"source": layer.name, "origin_xy": list(origin), "level": level,
                "provenance": dict(result.provenance)}
        shown = out.show_result(self.viewer, result.images, self.post, scale=scale, translate=translate, meta=meta)
        for role in (out.CELLS, out.OUTLINES):
            if self._on_click not in shown[role].mouse_drag_callbacks:
                shown[role].mouse_drag_callbacks.append(self._on_click)
                shown[role].events.visible.connect(self._layer_shown)
        self.engine_box.show_engine(engine)
        self.threshold_box.enable()
        self._update_panel()
        # the image stays the active layer: a click then pans, not paints into the new labels
        self.viewer.layers.selection.active = layer

    def _show_points(self, engine: Any, result: PointsResult, spec: RunSpec, layer: Any, level: int) -> None:
        """Show a points model's result: the Points layer, its sliders and counts."""
        factors = roi.downsample_factors(layer, level)
        base_mpp = roi.pixel_size_um(layer)
        self.last = _Run(result, engine, [], None, layer.name, result.origin, level, float(factors[-1]),
                         None if base_mpp is None else base_mpp * float(factors[-1]), spec, layer)
        self.post = None  # no cells: the cell controls do nothing until a cell engine runs
        self.engine_box.show_engine(engine)
        self.points_box.show_selection(result.detections.threshold, result.min_distance_um)
        self._show_controls()
        self._show_points_result()
        self.viewer.layers.selection.active = layer

    def _show_points_result(self) -> None:
        last = self.last
        show_points(self.viewer, last.result, scale=last.layer.scale, translate=last.layer.translate,
                    downsample=roi.downsample_factors(last.layer, last.level))
        scoring = last.result.scoring
        self.score_table.show_scores([(strings.SCORE_ALL, scoring)] + [
            (strings.SCORE_ROI.format(index=i + 1), s) for i, s in enumerate(last.result.roi_scores)])
        self.result_label.setText(strings.RESULT_POINTS.format(threshold=scoring["threshold"],
                                                               distance=scoring["min_distance_um"])
                                  + ("" if last.result.exact else strings.POINTS_NOT_EXACT))

    def select_points(self, confidence: float, distance_um: float) -> None:
        """Re-select the shown points at another confidence and NMS distance (µm), from the
        network's candidates (as the Points sliders do; throttled there)."""
        last = self.last
        if last is None or not isinstance(last.result, PointsResult) or last.layer not in self.viewer.layers:
            return
        try:
            self.last = replace(last, result=last.result.rescore(threshold=confidence, min_distance_um=distance_um))
        except ValueError as exc:
            show_error(f"DeepLIIF: {exc}")
            return
        self._show_points_result()

    # ---- thresholds, clicks and score -------------------------------------------------------------
    def set_threshold(self, key: str, value: int | None) -> None:
        """Change one threshold (as a slider does) and re-score, throttled."""
        self.settings[key] = value
        self.apply_settings_throttled()

    def set_dab_threshold(self, value: float) -> None:
        """The stain engine's DAB threshold moved: the shown stain cells are scored again
        (:meth:`rerun_dab`, debounced); before a run it is the next run's."""
        if self.last is not None and self.last.engine.name == STAIN:
            self.rerun_dab_debounced()

    def rerun_dab(self) -> Any:
        """Score the shown stain-engine area again at the slider's DAB threshold; returns the
        worker (None if there is nothing to re-score, or a run is going: it follows that run).

        The stain engine classifies each nucleus by its mean DAB OD while it segments, so its
        Seg map changes: the engine runs again on the same pixels with its whole-image
        statistics kept (the cells equal ``score --dab-threshold``), and the thresholds and
        clicks set here stay.
        """
        last = self.last
        if last is None or last.engine.name != STAIN or last.spec is None or last.layer not in self.viewer.layers:
            return None
        if self.worker is not None:
            self._dab_again = True
            return None
        choice = replace(last.spec.engine, dab_threshold=self.dab_slider.value())
        spec = replace(last.spec, engine=choice, statistics=last.result.provenance["statistics"])
        return self._start(spec, last.layer, last.level, keep=True)

    def set_compartment(self, values: dict) -> None:
        """Change what decides positive (the compartment settings, as the "Positive by" box
        does) and re-score, throttled."""
        self.settings.update(values)
        self.apply_settings_throttled()

    def reset_thresholds(self) -> None:
        """Back to the reference defaults."""
        self.settings = dict(DEFAULT_SETTINGS)
        self.apply_settings()

    def apply_settings(self) -> None:
        """Re-score the cell table with the current settings and recolour the cells layers;
        a new seg threshold finds the cells again (see :meth:`_relabel`)."""
        if self.post is None:
            return
        if self.relabelling is not None:
            self._relabel_again = True
            return
        if self.settings["seg_thresh"] != self.post.settings.seg_thresh:
            self._relabel(in_background=np.prod(self.post.cells.shape) > RELABEL_ON_GUI_THREAD_MAX_PX)
            return
        if self._measures_again():
            self._relabel(in_background=True)
            return
        before, self.post = self.post, self.post.rescore(**self.settings)
        if not (np.array_equal(before.counted, self.post.counted)
                and np.array_equal(before.positive, self.post.positive)):
            out.recolor(self.viewer, self.post)
        self._update_panel()

    def _measures_again(self) -> bool:
        """Whether the settings score a compartment whose measurements are not there yet: the
        first compartment mode, or a new cell expansion (the IHC image is measured again,
        ~0.5 s per megapixel, so in a worker)."""
        now, asked = self.post.settings, self.settings
        return asked["compartment"] != "class" and (now.compartment == "class"
                                                    or asked["expansion_um"] != now.expansion_um)

    def _relabel(self, in_background: bool) -> None:
        """Re-score for the current settings where that means finding the cells again (a new
        seg threshold) or measuring them again (see :meth:`_measures_again`), and show them;
        ``in_background``: in a worker thread (on a large area this takes long enough to
        freeze napari), with the score table greyed out and settings changed meanwhile
        applied when it ends."""
        self._relabel_for = self.last
        settings = dict(self.settings)
        if not in_background:
            self._relabelled(self.post.rescore(**settings))
            return
        worker = create_worker(self.post.rescore, _connect={"errored": self._on_error}, _start_thread=False,
                               **settings)
        worker.returned.connect(self._relabelled)  # bound methods: dropped if the widget is closed
        worker.finished.connect(self._relabel_finished)
        self.relabelling = worker
        self.score_table.setEnabled(False)
        worker.start()

    def _relabelled(self, post: Any) -> None:
        if self.last is not self._relabel_for:  # a new run replaced these cells meanwhile
            return
        before, self.post = self.post, post
        out.recolor(self.viewer, self.post, relabel=post.settings.seg_thresh != before.settings.seg_thresh)
        if self._relabel_again:  # the sliders stay where the user has moved them since
            self._show_scores()
        else:
            self._update_panel()

    def _relabel_finished(self) -> None:
        self.relabelling = None
        self.score_table.setEnabled(True)
        if self._relabel_again:
            self._relabel_again = False
            self.apply_settings()

    def override_cell(self, cell_id: int, what: str | None) -> None:
        """Override one cell (``exclude``/``include``/``positive``/``negative``; None: restore)."""
        overrides = dict(self.post.overrides)
        if what is None:
            overrides.pop(int(cell_id), None)
        else:
            overrides[int(cell_id)] = what
        self.post = self.post.rescore(overrides=overrides)
        out.recolor(self.viewer, self.post)
        self._update_panel()

    def _layer_shown(self, event: Any) -> None:
        if self.post is not None:
            out.refresh_if_stale(event.source, self.post)

    def _on_click(self, layer: Labels, event: Any) -> None:
        mode = self.click_combo.currentText()
        if (self.post is None or self.relabelling is not None or mode == strings.CLICK_NOTHING
                or event.type != "mouse_press"):
            return  # (while cells are being found, the ones shown are about to go)
        cell_id = out.cell_at(self.viewer, self.post, event.position)
        if not cell_id:
            return
        if mode == strings.CLICK_EXCLUDE:
            self.override_cell(cell_id, "exclude")
        elif mode == strings.CLICK_FLIP:
            self.override_cell(cell_id, "negative" if self.post.positive[cell_id - 1] else "positive")
        else:
            self.override_cell(cell_id, None)

    def _update_panel(self) -> None:
        scoring, table = self.post.scoring, self.post.table
        biggest = int(table.area.max(initial=0)) + 1
        self.sliders["seg_thresh"].set_value(scoring["seg_thresh"])
        self.sliders["size_thresh"].set_value(scoring["size_thresh"], high=max(biggest, scoring["size_thresh"] + 1))
        self.sliders["size_thresh_upper"].set_value(scoring["size_thresh_upper"], high=biggest + 1)
        self.sliders["marker_thresh"].set_value(scoring["marker_thresh"])
        self.compartment_box.show_settings(self.post.settings)
        self._show_controls()
        dab = self.last.result.provenance.get("parameters", {}).get("dab_threshold")
        if dab is not None:
            self.dab_slider.set_value(dab)
        self._show_scores()

    def _show_scores(self) -> None:
        self.score_table.show_scores(self.scores())
        self.result_label.setText(result_text(self.post.scoring))

    def scores(self) -> list[tuple[str, dict]]:
        """``[(name, score)]``: the whole area (or all ROIs together), then each ROI."""
        last = self.last
        rows = [(strings.SCORE_ALL, self.post.score(last.union) if last.union is not None else self.post.score())]
        rows += [(strings.SCORE_ROI.format(index=i + 1), s) for i, s in enumerate(roi_scores(self.post, last.polygons))]
        return rows

    # ---- export -------------------------------------------------------------------------------------
    def _export_clicked(self) -> None:
        directory = QFileDialog.getExistingDirectory(self, strings.EXPORT_DIALOG)
        if directory:
            self.export(Path(directory))

    def export(self, directory: Path) -> None:
        """Write score, cells, labels and modalities of the last run (exports.write_score_outputs);
        a points model's score, points.geojson and points.csv (point_exports.write_point_outputs)."""
        if self.last is not None and isinstance(self.last.result, PointsResult):
            self._export_points(directory)
            return
        if self.post is None:
            show_error(strings.NOTHING_TO_EXPORT)
            return
        from napari_deepliif.io.exports import write_score_outputs

        last = self.last
        result = replace(last.result, post=self.post)  # the score as the sliders left it
        record = result.record(image=last.source, level=last.level, downsample=last.downsample, mpp=last.mpp,
                               regions=dict(self.scores()[1:]) or None)
        try:
            write_score_outputs(directory, post=self.post, image=result.image, images=result.images, record=record,
                                placement=result.placement(downsample=last.downsample))
        except (DeepLIIFError, OSError, ValueError) as exc:
            show_error(f"DeepLIIF export failed: {exc}")
            return
        show_info(strings.EXPORTED.format(path=directory))

    def _export_points(self, directory: Path) -> None:
        from napari_deepliif.io.point_exports import write_point_outputs

        last = self.last
        record = last.result.record(image=last.source, level=last.level, downsample=last.downsample, mpp=last.mpp)
        try:
            write_point_outputs(directory, last.result.detections, record=record,
                                placement=last.result.placement(downsample=last.downsample))
        except (DeepLIIFError, OSError, ValueError) as exc:
            show_error(f"DeepLIIF export failed: {exc}")
            return
        show_info(strings.EXPORTED.format(path=directory))


def _add_rows(form: QFormLayout, rows: tuple) -> None:
    """Add (label, widget, tooltip) rows to a form."""
    for label, widget, tip in rows:
        widget.setToolTip(tip)
        form.addRow(label, widget)
