"""The engine part of the dock widget: model choice, download and local folders."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from napari.qt.threading import create_worker
from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import QObject, Qt, Signal
from qtpy.QtWidgets import (
    QComboBox,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from napari_deepliif.engine.engines import EngineBase
from napari_deepliif.errors import Cancelled, DeepLIIFError
from napari_deepliif.models.index import add_model, list_models
from napari_deepliif.widget import strings
from napari_deepliif.widget.workers import STAIN, download

#: Item data role holding whether a model is installed.
INSTALLED_ROLE = Qt.ItemDataRole.UserRole + 1


class _Relay(QObject):
    progress = Signal(int, int)


def describe(engine: EngineBase) -> str:
    """What an engine is, for the label that always names it."""
    if engine.name == STAIN:
        return strings.STAIN_ITEM
    return f"{engine.name} - model {engine.model_name} ({engine.model_hash})"


class EngineBox(QGroupBox):
    """Engine combo (installed models, downloadable ones, ``stain``), Download (with progress
    and cancel), "Use local folder..." and the name of the engine in use; ``chosen`` is emitted
    whenever the choice changes (by the user or a refresh)."""

    chosen = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(strings.ENGINE, parent)
        self.combo = QComboBox()
        self.combo.setToolTip(strings.ENGINE_TIP)
        self.download_button, self.local_button = QPushButton(strings.DOWNLOAD), QPushButton(strings.LOCAL)
        self.download_button.setToolTip(strings.DOWNLOAD_TIP)
        self.local_button.setToolTip(strings.LOCAL_TIP)
        self.cancel_button = QPushButton(strings.CANCEL)
        self.progress_bar = QProgressBar()
        self.progress_bar.setVisible(False)
        self.cancel_button.setVisible(False)
        self.engine_label = QLabel(strings.ENGINE_NONE)
        self.engine_label.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(self.combo)
        row = QHBoxLayout()
        for w in (self.download_button, self.local_button):
            row.addWidget(w)
        layout.addLayout(row)
        row = QHBoxLayout()
        row.addWidget(self.progress_bar)
        row.addWidget(self.cancel_button)
        layout.addLayout(row)
        layout.addWidget(self.engine_label)
        self._relay = _Relay()
        self._relay.progress.connect(self._on_progress)
        self._cancel = threading.Event()
        self.worker: Any = None
        self._downloading = ""  # the model the download in progress fetches
        self.combo.currentIndexChanged.connect(self._choice_changed)
        self.download_button.clicked.connect(self.download)
        self.local_button.clicked.connect(self._local_clicked)
        self.cancel_button.clicked.connect(self._cancel.set)
        self.refresh()

    def refresh(self, select: str | None = None) -> None:
        """Re-read the model index; select ``select`` (a model name), else keep the choice,
        else the first installed model, else ``stain``."""
        keep = select or self.combo.currentData()
        self.combo.blockSignals(True)
        self.combo.clear()
        installed = []
        for entry in list_models():
            text = entry.name if entry.installed else f"{entry.name} ({strings.NOT_INSTALLED})"
            self.combo.addItem(text, entry.name)
            self.combo.setItemData(self.combo.count() - 1, entry.installed, INSTALLED_ROLE)
            if entry.installed:
                installed.append(entry.name)
        self.combo.addItem(strings.STAIN_ITEM, STAIN)
        names = [self.combo.itemData(i) for i in range(self.combo.count())]
        target = keep if keep in names else (installed[0] if installed else STAIN)
        self.combo.setCurrentIndex(names.index(target))
        self.combo.blockSignals(False)
        self._choice_changed()

    def model(self) -> str:
        """``stain`` or the chosen model's name (raises DeepLIIFError if not installed)."""
        if not self.installed():
            raise DeepLIIFError(f"model {self.combo.currentData()} is not installed: press {strings.DOWNLOAD}")
        return self.combo.currentData()

    def installed(self) -> bool:
        """Whether the chosen engine can run now."""
        return self.combo.currentData() == STAIN or bool(self.combo.itemData(self.combo.currentIndex(), INSTALLED_ROLE))

    def model_type(self) -> str | None:
        """The chosen engine's model type (``stain``, ``deepliif``, ``classmap``, ``points``;
        None while it is not installed or its folder cannot be read)."""
        if self.combo.currentData() == STAIN:
            return STAIN
        if not self.installed():
            return None
        from napari_deepliif.models.card import folder_model_type
        from napari_deepliif.models.index import resolve_model

        try:
            return folder_model_type(resolve_model(self.combo.currentData()))
        except DeepLIIFError:
            return None

    def _choice_changed(self, index: int = -1) -> None:
        self.download_button.setEnabled(not self.installed() and self.worker is None)
        self.chosen.emit()

    def show_engine(self, engine: EngineBase) -> None:
        """Name the engine that produced the results shown."""
        self.engine_label.setText(strings.ENGINE_IN_USE.format(engine=describe(engine)))

    # ---- download and local folders ----------------------------------------------------------
    def download(self) -> Any:
        """Fetch the chosen model in a worker (progress bar, Cancel); returns the worker."""
        name = self.combo.currentData()
        self._cancel.clear()
        worker = create_worker(download, name, self._relay.progress.emit, self._cancel,
                               _connect={"errored": self._on_error}, _start_thread=False)
        self._downloading = name
        worker.returned.connect(self._downloaded)  # bound methods: dropped if the widget is closed
        worker.finished.connect(self._on_finished)
        self.worker = worker
        for w in (self.progress_bar, self.cancel_button):
            w.setVisible(True)
        self.download_button.setEnabled(False)
        worker.start()
        return worker

    def _on_progress(self, done: int, total: int) -> None:
        self.progress_bar.setMaximum(total if total > 0 else 0)
        self.progress_bar.setValue(done if total > 0 else 0)

    def _downloaded(self, path: Path) -> None:
        show_info(strings.DOWNLOADED.format(name=self._downloading, path=path))
        self.refresh(select=self._downloading)

    def _on_error(self, exc: BaseException) -> None:
        if isinstance(exc, Cancelled):
            show_info(str(exc))
        else:
            show_error(f"DeepLIIF: {exc}")

    def _on_finished(self) -> None:
        self.worker = None
        for w in (self.progress_bar, self.cancel_button):
            w.setVisible(False)
        self._choice_changed()

    def _local_clicked(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, strings.LOCAL_DIALOG)
        if folder:
            self.add_local(Path(folder))

    def add_local(self, folder: Path, name: str | None = None) -> None:
        """Register a model folder (under its folder name by default) and select it."""
        name = name or folder.name
        try:
            entry = add_model(name, folder, replace=True)
        except DeepLIIFError as exc:
            show_error(f"DeepLIIF: {exc}")
            return
        show_info(strings.ADDED.format(name=entry.name, path=folder))
        self.refresh(select=entry.name)
