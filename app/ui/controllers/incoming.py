"""The Incoming tab: studies on the watched hubs, and the "Incoming (N new)" count on its tab
while the user looks elsewhere."""

from __future__ import annotations

import logging
from collections.abc import Callable

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QTabWidget

from app.net.runner import QueueRunner
from app.store.local import Store
from app.ui.incoming import IncomingWidget

log = logging.getLogger(__name__)

TAB_TITLE = "Incoming"


def tab_title(unseen: int) -> str:
    """"Incoming", or "Incoming (3 new)" while studies arrived unseen."""
    return f"{TAB_TITLE} ({unseen} new)" if unseen else TAB_TITLE


class IncomingController(QObject):
    """Adds the Incoming tab to ``tabs`` (not closable) and counts what arrives unseen."""

    def __init__(self, store: Store, runner: Callable[[], QueueRunner],
                 tabs: QTabWidget) -> None:
        super().__init__(tabs)
        self.tabs = tabs
        self.unseen = 0
        self.widget = IncomingWidget(store, runner, tabs)
        index = tabs.addTab(self.widget, TAB_TITLE)
        tabs.tabBar().setTabButton(index, tabs.tabBar().ButtonPosition.RightSide, None)
        self.widget.arrived.connect(self._on_arrived)
        tabs.currentChanged.connect(self._on_tab_changed)

    def start(self) -> None:
        self.widget.start()

    def stop(self) -> None:
        self.widget.stop()

    def check_now(self) -> None:
        """Show the tab and ask the hubs at once."""
        self.tabs.setCurrentWidget(self.widget)
        self.widget.check_now()

    def _on_arrived(self, count: int) -> None:
        if self.tabs.currentWidget() is not self.widget:
            self.unseen += count
            self.tabs.setTabText(self.tabs.indexOf(self.widget), tab_title(self.unseen))

    def _on_tab_changed(self, index: int) -> None:
        if self.tabs.widget(index) is self.widget and self.unseen:
            self.unseen = 0
            self.tabs.setTabText(index, tab_title(0))
