"""The reading room's look: a dark reading area, an icon on every tool and layout, tool tips that
say the shortcut; and light or dark chrome around it (browser, menus, dialogs), as the user
prefers (remembered in the settings).

Reading workstations (Horos, RadiAnt, Weasis, Sectra) keep everything around the images dark, so
the eye stays adapted to the image greys; the rest of the program follows the user's choice.
Icons are Material Design Icons drawn by qtawesome (a font: sharp at any size and colour).
"""

from __future__ import annotations

import logging
from pathlib import Path

import qtawesome as qta
from PySide6.QtCore import QEvent, QObject, QSize, Qt
from PySide6.QtGui import QAction, QColor, QIcon, QPalette
from PySide6.QtWidgets import QApplication, QToolBar, QToolButton, QWidget

from app.settings import load_settings, save_settings

log = logging.getLogger(__name__)

#: The reading area (a study's tab): near-black behind the images, grey controls, light text.
READING_STYLE = """
QWidget#reading { background: #121212; color: #d8d8d8; }
QWidget#reading QToolBar { background: #1c1c1c; border: none; border-bottom: 1px solid #2c2c2c;
    spacing: 2px; }
QWidget#reading QToolButton { color: #d8d8d8; background: transparent;
    border: 1px solid transparent; border-radius: 3px; padding: 2px 4px; }
QWidget#reading QToolButton:hover { background: #2a2a2a; border-color: #3a3a3a; }
QWidget#reading QToolButton:checked { background: #244a6b; border-color: #3874a8; }
QWidget#reading QToolButton:disabled { color: #6a6a6a; }
QWidget#reading QListWidget { background: #0c0c0c; color: #d0d0d0; border: none; }
QWidget#reading QListWidget::item:selected { background: #244a6b; }
QWidget#reading QLabel { color: #d0d0d0; }
QWidget#reading QComboBox, QWidget#reading QSpinBox { background: #262626; color: #d8d8d8;
    border: 1px solid #3a3a3a; padding: 1px 4px; }
QWidget#reading QProgressBar { background: #1e1e1e; color: #d8d8d8; border: 1px solid #3a3a3a; }
QWidget#reading QCheckBox, QWidget#reading QRadioButton { color: #d0d0d0; }
QWidget#reading QCheckBox:disabled, QWidget#reading QRadioButton:disabled { color: #6a6a6a; }
QWidget#reading QPushButton { background: #262626; color: #d8d8d8; border: 1px solid #3a3a3a;
    border-radius: 3px; padding: 3px 10px; }
QWidget#reading QPushButton:hover { background: #2f2f2f; }
QWidget#reading QPushButton:checked { background: #244a6b; border-color: #3874a8; }
QWidget#reading QLineEdit { background: #1e1e1e; color: #d8d8d8; border: 1px solid #3a3a3a; }
QWidget#reading QSplitter::handle { background: #1c1c1c; }
QWidget#reading QScrollBar { background: #161616; }
"""

#: Icon (qtawesome name) per tool bar entry: a layout's or button's text, or a tool's data.
ICONS: dict[str, str] = {
    "1×1": "mdi6.square-outline", "1×2": "mdi6.view-split-vertical",
    "1×3": "mdi6.view-column-outline", "Stroke": "mdi6.brain",
    "2×2": "mdi6.view-grid-outline", "MPR": "mdi6.axis-arrow", "3D": "mdi6.cube-outline",
    "window": "mdi6.contrast-box", "length": "mdi6.ruler", "angle": "mdi6.angle-acute",
    "ellipse": "mdi6.ellipse-outline", "rect": "mdi6.rectangle-outline",
    "probe": "mdi6.eyedropper", "text": "mdi6.format-text",
    "Presets": "mdi6.palette-outline",
    "Invert": "mdi6.invert-colors", "Reset": "mdi6.restore", "Cine": "mdi6.play-circle-outline",
    "Mouse": "mdi6.mouse", "Flip / Rotate": "mdi6.flip-horizontal", "Link": "mdi6.link-variant",
    "Lines": "mdi6.vector-line", "Export": "mdi6.export",
}

#: Keys that do what a tool bar entry does (in the active view), for its tool tip.
SHORTCUTS: dict[str, str] = {
    "Presets": "1 … 9, 0 = file's window", "Invert": "I", "Reset": "R", "Cine": "Space",
    "Flip / Rotate": "H, V, Ctrl+R, Ctrl+Shift+R", "Export": "Ctrl+E; whole layout Ctrl+Shift+E",
    "window": "Shift + left drag, whatever the tool",
}

#: Default tool tips for entries that have none.
TIPS: dict[str, str] = {
    "1×1": "One viewport", "1×2": "Two viewports side by side",
    "1×3": "Three viewports side by side", "2×2": "Four viewports",
    "window": "Window / level tool: left drag changes the window",
    "length": "Measure a distance", "angle": "Measure an angle",
    "ellipse": "Elliptical region: mean, SD, area", "rect": "Rectangular region: mean, SD, area",
    "probe": "Value under a point (HU)", "text": "Write a short text on the image",
    "Presets": "Window presets",
    "Invert": "Invert the grey scale", "Reset": "Reset window, zoom, pan and orientation",
    "Cine": "Play the slices as a movie", "Export": "Save what is on screen",
}

ICON_COLOUR = "#d8d8d8"
ICON_ACTIVE = "#ffffff"
ICON_DISABLED = "#6a6a6a"


def load_icons() -> None:
    """Load the icon fonts now (reading and parsing their files, ~50 ms the first time), e.g.
    before a window shows, rather than inside the first :func:`icon_for` of a running window."""
    qta.icon(ICONS["Invert"])


def icon_for(key: str) -> QIcon:
    """The icon of tool bar entry ``key``, drawn for the dark reading area."""
    icon: QIcon = qta.icon(ICONS[key], color=ICON_COLOUR, color_active=ICON_ACTIVE,
                           color_disabled=ICON_DISABLED)
    return icon


def tooltip_with_shortcut(tip: str, shortcut: str) -> str:
    """``tip`` followed by its keys, as reading workstations show them: "Invert (I)"."""
    return f"{tip} ({shortcut})" if shortcut else tip


def style_reading_area(widget: QWidget, toolbar: QToolBar) -> None:
    """Make ``widget`` (a study's tab) a dark reading area and give every entry of its
    ``toolbar`` an icon and a tool tip with its shortcut."""
    widget.setObjectName("reading")
    widget.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
    widget.setStyleSheet(READING_STYLE)
    toolbar.setIconSize(QSize(20, 20))
    toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextUnderIcon)
    for action in toolbar.actions():
        _decorate(toolbar, action)
    toolbar.installEventFilter(_ToolbarFit(toolbar))


class _ToolbarFit(QObject):
    """Labels under the icons while the tool bar fits its window; icons alone (the tool tips
    keep the names) when it would not, so no tool falls into the overflow menu."""

    def __init__(self, toolbar: QToolBar) -> None:
        super().__init__(toolbar)
        self.toolbar = toolbar
        self.full_width = 0  # the width the tool bar needs with its labels

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() in (QEvent.Type.Resize, QEvent.Type.LayoutRequest):
            self.fit()
        return False

    def fit(self) -> None:
        bar = self.toolbar
        labelled = bar.toolButtonStyle() == Qt.ToolButtonStyle.ToolButtonTextUnderIcon
        if labelled:
            self.full_width = bar.sizeHint().width()
            if self.full_width > bar.width() > 0:
                self._set(Qt.ToolButtonStyle.ToolButtonIconOnly)
        elif bar.width() >= self.full_width:
            self._set(Qt.ToolButtonStyle.ToolButtonTextUnderIcon)

    def _set(self, style: Qt.ToolButtonStyle) -> None:
        self.toolbar.setToolButtonStyle(style)
        for action in self.toolbar.actions():
            button = self.toolbar.widgetForAction(action)
            if isinstance(button, QToolButton) and not action.text() and \
                    not button.icon().isNull():
                button.setToolButtonStyle(style)


def _decorate(toolbar: QToolBar, action: QAction) -> None:
    button = toolbar.widgetForAction(action)
    data = action.data()
    key = data if isinstance(data, str) and data in ICONS else action.text()
    if isinstance(button, QToolButton) and not action.text():  # a button added as a widget
        key = button.text()
    if key not in ICONS:
        return
    shortcut = SHORTCUTS.get(key, "")
    if not shortcut and not action.shortcut().isEmpty():
        shortcut = action.shortcut().toString()
    if isinstance(button, QToolButton) and not action.text():
        button.setIcon(icon_for(key))
        button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextUnderIcon)
        button.setToolTip(tooltip_with_shortcut(button.toolTip() or TIPS.get(key, key), shortcut))
        return
    action.setIcon(icon_for(key))
    tip = action.toolTip()
    if not tip or tip == action.text().replace("&", ""):
        tip = TIPS.get(key, action.text())
    action.setToolTip(tooltip_with_shortcut(tip, shortcut))


# -- the chrome --------------------------------------------------------------------------------
def dark_palette() -> QPalette:
    """A dark palette for the program around the reading area (Fusion style)."""
    palette = QPalette()
    colours = {
        QPalette.ColorRole.Window: "#202124", QPalette.ColorRole.WindowText: "#e0e0e0",
        QPalette.ColorRole.Base: "#17181a", QPalette.ColorRole.AlternateBase: "#222326",
        QPalette.ColorRole.ToolTipBase: "#2b2c2f", QPalette.ColorRole.ToolTipText: "#e8e8e8",
        QPalette.ColorRole.Text: "#e0e0e0", QPalette.ColorRole.Button: "#2a2b2e",
        QPalette.ColorRole.ButtonText: "#e0e0e0", QPalette.ColorRole.BrightText: "#ff6b6b",
        QPalette.ColorRole.Highlight: "#2f6ea5", QPalette.ColorRole.HighlightedText: "#ffffff",
        QPalette.ColorRole.Link: "#7fb3e6", QPalette.ColorRole.PlaceholderText: "#8a8a8a",
    }
    for role, colour in colours.items():
        palette.setColor(role, QColor(colour))
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText,
                 QPalette.ColorRole.WindowText):
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor("#707070"))
    return palette


def apply_chrome(dark: bool) -> None:
    """Light (the platform's) or dark chrome for the whole program."""
    app = QApplication.instance()
    if not isinstance(app, QApplication):
        return
    if dark:
        app.setStyle("Fusion")
        app.setPalette(dark_palette())
    else:
        app.setPalette(app.style().standardPalette())


def load_dark_chrome(home: Path) -> bool:
    """The saved choice (False: light, also when the settings cannot be read)."""
    try:
        return bool(load_settings(home).reading.dark_chrome)
    except Exception as exc:  # noqa: BLE001 - a bad settings file must not break the window
        log.warning("chrome setting not read: %s", exc)
        return False


def save_dark_chrome(home: Path, dark: bool) -> None:
    """Remember the chrome for the next start."""
    settings = load_settings(home)
    settings.reading.dark_chrome = bool(dark)
    save_settings(home, settings)
