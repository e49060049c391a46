"""The "Serve for QuPath" toggle: start/stop the local engine server (issue 5) from napari."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from napari.qt.threading import create_worker
from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QLabel, QPushButton, QVBoxLayout, QWidget

from napari_deepliif.widget import strings
from napari_deepliif.widget._engine_box import describe
from napari_deepliif.widget.workers import EngineChoice, get_engine


def start_server(choice: EngineChoice, port: int | None) -> tuple[Any, Any]:
    """Load the engine and start :class:`napari_deepliif.server.ServerHandle` on 127.0.0.1
    (``port`` None: the server's default port); returns ``(engine, handle)``."""
    from napari_deepliif.server import ServerHandle
    from napari_deepliif.server.defaults import DEFAULT_PORT

    engine = get_engine(choice)
    return engine, ServerHandle.start(engine, port=DEFAULT_PORT if port is None else port)


class ServeBox(QWidget):
    """A checkable button that runs the server while checked, and a label with its URL.

    Parameters
    ----------
    engine_choice : callable
        Returns the :class:`EngineChoice` to serve (raises DeepLIIFError if none can run).
    port : int, optional
        TCP port (0: any free port; None: the server's default). The server package is
        imported only when it starts (it takes seconds to import).
    """

    def __init__(self, engine_choice: Callable[[], EngineChoice], port: int | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.engine_choice, self.port = engine_choice, port
        self.handle: Any = None
        self.worker: Any = None
        self.button = QPushButton(strings.SERVE)
        self.button.setCheckable(True)
        self.button.setToolTip(strings.SERVE_TIP)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.button)
        layout.addWidget(self.label)
        self.button.toggled.connect(self._toggled)

    def _toggled(self, on: bool) -> None:
        if on and self.handle is None:
            self.start()
        elif not on and self.handle is not None:
            self.stop()

    def start(self) -> Any:
        """Start the server in a worker (loading a model takes a while); returns the worker."""
        from napari_deepliif.errors import DeepLIIFError

        try:
            choice = self.engine_choice()
        except DeepLIIFError as exc:
            show_error(f"DeepLIIF: {exc}")
            self._set_checked(False)
            return None
        self.button.setEnabled(False)
        self.label.setText(strings.SERVE_STARTING)
        self.worker = create_worker(start_server, choice, self.port, _start_thread=False,
                                    _connect={"errored": self._failed, "returned": self._started})
        self.worker.finished.connect(self._start_finished)  # a bound method: dropped if the widget is closed
        self.worker.start()
        return self.worker

    def _start_finished(self) -> None:
        self.button.setEnabled(True)

    def _started(self, started: tuple[Any, Any]) -> None:
        engine, self.handle = started
        self.label.setText(strings.SERVE_RUNNING.format(engine=describe(engine), url=self.handle.url,
                                                        token_path=self.handle.token_path))

    def _failed(self, exc: BaseException) -> None:
        show_error(f"DeepLIIF server: {exc}")
        self.label.setText("")
        self._set_checked(False)

    def stop(self) -> None:
        """Stop the server (waits for the running request to notice its cancel)."""
        handle, self.handle = self.handle, None
        if handle is not None:
            handle.stop()
            show_info(strings.SERVE_STOPPED)
        self.label.setText("")
        self._set_checked(False)

    def _set_checked(self, on: bool) -> None:
        self.button.blockSignals(True)
        self.button.setChecked(on)
        self.button.blockSignals(False)
