"""The reading window for one study: series strip, 1×1 / 1×2 / 2×2 viewports, tools, presets."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, cast

import numpy as np
from PySide6.QtCore import QMimeData, QObject, QSize, Qt, QTimer, Signal
from PySide6.QtGui import (
    QAction,
    QActionGroup,
    QColor,
    QDrag,
    QDragEnterEvent,
    QDropEvent,
    QIcon,
    QImage,
    QKeySequence,
    QPixmap,
)
from PySide6.QtWidgets import (
    QApplication,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QInputDialog,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QMessageBox,
    QSpinBox,
    QStackedWidget,
    QToolBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.dicom.secondary_capture import CaptureSeries
from app.errors import RelayError
from app.model import Series, Study
from app.net.preview import Preview
from app.net.remote import RemoteStudy
from app.render.link import linked_slice, offset_for
from app.render.scout import reference_line
from app.render.thumbnails import slice_thumbnail
from app.render.window_presets import WindowPreset
from app.store.local import Store, StoredFile
from app.ui.aspects_tool import AspectsTool, KeyImageMark, MidlineTool
from app.ui.format import format_date
from app.ui.labels import tooltip
from app.ui.mouse_model import LEFT_DRAG_MODES, load_left_drag, save_left_drag
from app.ui.mpr_widget import MprWidget
from app.ui.prewarm import prewarm_3d, prewarmed
from app.ui.remote_session import PreviewSeries, RemoteLoadedSeries
from app.ui.series_session import LoadedSeries
from app.ui.stroke import (
    apply_stage,
    collect_findings,
    place_regions,
    show_display,
    show_findings,
)
from app.ui.theme import style_reading_area
from app.ui.thumbs import to_qimage
from app.ui.user_presets import offered_presets, save_user_preset
from app.ui.view_export import IMAGE_FILTERS, compose, default_name, from_rgb, save_to_study
from app.ui.viewport import CINE_FPS, CINE_FPS_RANGE, ReferenceLine, ViewportWidget
from app.workflow.findings import Findings, read_findings, save_findings
from app.workflow.hanging import (
    HungStage,
    Protocol,
    choose,
    hang,
    protocols,
    save_choice,
    series_kind,
    study_key,
)
from app.workflow.priors import PriorSearch, is_earlier
from app.workflow.table_offsets import load_offset, save_offset

#: While more of a study is arriving at Relay's node, a series on screen opens again, taking
#: what came, once it has this many times the images it was opened with (and when it ends).
REOPEN_GROWTH = 1.25
#: The series strip item's full text (its tool tip is that text escaped for display).
SERIES_TEXT_ROLE = Qt.ItemDataRole.UserRole + 7
#: A strip entry of a prior only on a hub: (hub, study UID).
PRIOR_ROLE = Qt.ItemDataRole.UserRole + 8

if TYPE_CHECKING:
    from app.ui.volume3d import Volume3DWidget  # VTK's Qt glue is imported when 3D opens
    from app.volume.geometry import VolumeGeometry

log = logging.getLogger(__name__)

SERIES_MIME = "application/x-relay-series"
#: Tools offered in the Stroke menu rather than on the tool bar.
STROKE_TOOLS = ("arrow", "aspects", "midline")
#: The 3D view's OpenGL window is made ahead of time (:meth:`ViewerWidget._warm_3d`), one
#: piece per turn of the event loop this long apart, once the reader has left the slices alone
#: for WARM_3D_IDLE_S (each piece holds the GUI thread 10-60 ms on a software OpenGL: the frames
#: whose shaders it compiles are drawn on a thread of their own, ``Volume3DWidget.warm_up``).
WARM_3D_GAP_MS = 150
WARM_3D_IDLE_S = 1.0
LAYOUTS = {"1×1": (1, 1), "1×2": (1, 2), "1×3": (1, 3), "2×2": (2, 2)}

SHORTCUTS = [
    ("Mouse wheel", "next / previous slice"),
    ("Left drag", "the tool: draw with the selected tool (W/L tool: window / level); in MPR "
                  "the crosshair. View ▸ Left drag = window / level makes it window / level "
                  "in 2D and MPR"),
    ("Shift + left drag", "window / level, whatever the tool (in MPR too)"),
    ("Ctrl + left drag", "the tool (measure / crosshair) when left drag is window / level"),
    ("Double-click", "show this view alone / the whole layout again"),
    ("Right drag", "zoom"),
    ("Middle drag", "pan"),
    ("↑ ↓ ← →", "previous / next slice"),
    ("Page Up / Page Down", "jump 10 % of the series"),
    ("Home / End", "first / last slice"),
    ("Space", "start / stop cine"),
    ("R", "reset window, zoom and pan"),
    ("I", "invert grey scale"),
    ("H / V", "flip left-right / top-bottom (the letters follow; R resets)"),
    ("Ctrl+R / Ctrl+Shift+R", "rotate 90° clockwise / counter-clockwise (R resets)"),
    ("S", "smooth (interpolated) / true pixels"),
    ("1 … 9", "window presets (Brain, Stroke, Subdural, CTA, Bone, …); 0 = file's window"),
    ("Delete", "remove the measurements on this slice"),
    ("Esc", "abandon an unfinished angle"),
    ("K", "mark / unmark the image in view as a key image"),
    ("G  /  [  ]", "ASPECTS tool: ganglionic / supraganglionic level; smaller / larger guide"),
    ("Alt + drag or wheel", "scroll this view alone (sets its offset to the prior)"),
    ("MPR: click / drag", "move the crosshair (the other planes follow)"),
    ("MPR: drag a coloured line", "tilt the other two planes (oblique MPR)"),
    ("MPR: Shift + drag", "window / level"),
    ("3D: left / middle / right drag", "rotate / pan / zoom"),
]


class SeriesStrip(QListWidget):
    """Thumbnails of the study's series; drag one onto a viewport, or double-click it."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setViewMode(QListWidget.ViewMode.IconMode)
        self.setFlow(QListWidget.Flow.TopToBottom)
        self.setWrapping(False)
        self.setIconSize(QSize(112, 112))
        self.setFixedWidth(150)
        self.setMovement(QListWidget.Movement.Static)
        self.setDragEnabled(True)
        self.setSpacing(4)
        self.setWordWrap(False)

    def label(self, text: str) -> str:
        """``text`` with each line elided to the strip's width ("#3 Axial 0.5 mm CTA Br…"):
        a long description takes one line, not one line per word; the tooltip has it all."""
        metrics = self.fontMetrics()
        width = self.width() - 2 * self.spacing() - 12
        return "\n".join(metrics.elidedText(line, Qt.TextElideMode.ElideRight, width)
                         for line in text.split("\n"))

    def startDrag(self, actions: Qt.DropAction) -> None:  # noqa: N802
        item = self.currentItem()
        if item is None:
            return
        mime = QMimeData()
        mime.setData(SERIES_MIME, item.data(Qt.ItemDataRole.UserRole).encode())
        drag = QDrag(self)
        drag.setMimeData(mime)
        drag.setPixmap(item.icon().pixmap(64, 64))
        drag.exec(Qt.DropAction.CopyAction)


class _DropViewport(ViewportWidget):
    series_dropped = Signal(object, str)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802
        if event.mimeData().hasFormat(SERIES_MIME):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        uid = bytes(event.mimeData().data(SERIES_MIME).data()).decode()
        self.series_dropped.emit(self, uid)
        event.acceptProposedAction()


class ViewerWidget(QWidget):
    """All of one study: open series, viewports and the tool bar."""

    #: A short message for the status bar (e.g. "View saved to the study...").
    status_message = Signal(str)
    #: Findings were saved to the study: the new series' UIDs.
    findings_saved = Signal(list)
    #: "Send findings to the hub": the study UID and the findings series to send.
    send_findings = Signal(str, list)
    #: A prior only on a hub was double-clicked: the hub's name and the study UID.
    prior_requested = Signal(str, str)
    #: A prior only on a PACS was double-clicked: the PACS's name and the study UID.
    prior_retrieve_requested = Signal(str, str)

    def __init__(self, store: Store, study: Study, parent: QWidget | None = None, *,
                 priors: list[Study] | None = None,
                 last_slice: dict[str, int] | None = None) -> None:
        super().__init__(parent)
        self.store = store
        self.study = study
        #: The hub the study is being read from, while it downloads (see :meth:`set_remote`).
        self.remote: RemoteStudy | None = None
        #: Earlier studies of the same patient, offered in the strip for side-by-side reading.
        self.priors = list(priors or [])
        #: Last slice looked at per series (shared with the main window; reopening resumes there).
        self.last_slice = last_slice if last_slice is not None else {}
        self._series: dict[str, tuple[Study, Series]] = {}
        self.sessions: dict[str, LoadedSeries] = {}
        self._thumbed: set[str] = set()  # remote series given a thumbnail from their volume
        self._preview: PreviewSeries | None = None  # shown until the remote series opens
        self.viewports: list[_DropViewport] = []
        self.active: ViewportWidget | None = None
        self.linked = True
        self._linking = False
        self._export_dir = ""
        self._captures: CaptureSeries | None = None
        self._capture_count = 0
        self._icons: dict[str, QIcon] = {}
        self._grid_name = "1×1"
        #: Draw the other viewports' slices as reference (scout) lines.
        self.show_reference_lines = True
        #: What a plain left drag does in 2D and MPR (see :mod:`app.ui.mouse_model`).
        self.left_drag = load_left_drag(store.home)
        self._maximised: ViewportWidget | None = None
        #: Stroke reading: the ASPECTS guide and marks, the midlines, the key images.
        self.aspects_tool = AspectsTool(self.refresh_views)
        self.midline_tool = MidlineTool(self.refresh_views)
        self.key_images: list[str] = []
        self.key_text = ""
        #: Series of different frames of reference scroll together by table position.
        self.link_by_position = False
        #: Findings read from the study, placed on each series as it opens.
        self.pending_findings: Findings | None = None
        self._findings_placed: set[str] = set()
        #: The hanging protocol's stages for this study (see :meth:`hang`).
        self.hung: list[HungStage] = []
        self.protocol: Protocol | None = None
        #: Priors being read from a hub (study UID -> its download).
        self.prior_remotes: dict[str, RemoteStudy] = {}
        #: The last search for priors (local and on the hubs), most relevant first.
        self.prior_search: PriorSearch | None = None

        self.strip = SeriesStrip(self)
        self.strip.itemDoubleClicked.connect(self._on_strip_double_clicked)
        self.pages = QStackedWidget(self)
        self.grid_host = QWidget(self.pages)
        self.grid = QGridLayout(self.grid_host)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.grid.setSpacing(2)
        self.pages.addWidget(self.grid_host)
        #: The MPR and 3D layouts, made the first time they are asked for.
        self.mpr: MprWidget | None = None
        #: A protocol's MPR slabs under the viewports, on the same screen (made when a stage
        #: asks for them; see :meth:`set_layout`).
        self.slabs: MprWidget | None = None
        self._grid_slabs = False
        #: The offset between two studies the user just set, saved once the drag rests.
        self._offset_to_save: tuple[str, str, float] | None = None
        self._offset_timer = QTimer(self)
        self._offset_timer.setSingleShot(True)
        self._offset_timer.setInterval(400)
        self._offset_timer.timeout.connect(self.save_table_offset)
        self.view3d: Volume3DWidget | None = None
        self._warm_timer = QTimer(self)
        self._warm_timer.setSingleShot(True)
        self._warm_timer.timeout.connect(self._warm_3d)
        #: When the reader last scrolled (the 3D view is warmed while they do not).
        self._last_scroll = time.monotonic()
        self.toolbar = QToolBar(self)
        self._build_toolbar()
        style_reading_area(self, self.toolbar)

        body = QHBoxLayout()
        body.setContentsMargins(0, 0, 0, 0)
        body.addWidget(self.strip)
        body.addWidget(self.pages, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.toolbar)
        layout.addLayout(body, 1)
        self.set_study(study, priors)
        self.set_layout("1×1")

    def set_study(self, study: Study, priors: list[Study] | None = None) -> None:
        """Read ``study`` (and offer ``priors``) here. For a viewer that has no series open yet:
        the main window builds one ahead of time and gives it its study when one is opened."""
        self.study = study
        self.priors = list(priors or [])
        self._series = {s.series_instance_uid: (st, s)
                        for st in [study, *self.priors] for s in st.series}
        self._fill_strip()

    def warm_up(self, size: QSize) -> None:
        """Size this (hidden) viewer for its tab and paint its first viewport's first-use work
        once off screen. (QWidget.render of the hidden viewer here left its canvas unpainted
        once shown in the bench: not used.)"""
        self.resize(size)
        self.viewports[0].warm_up()

    # -- tool bar ---------------------------------------------------------------------------
    def _build_toolbar(self) -> None:
        bar = self.toolbar
        self.layout_group = QActionGroup(self)
        for name in LAYOUTS:
            action = QAction(name, self, checkable=True)
            action.triggered.connect(lambda _=False, n=name: self.choose_layout(n))
            self.layout_group.addAction(action)
            bar.addAction(action)
        for name, slot, tip in (
                ("MPR", self.show_mpr, "Axial, coronal and sagittal planes of the active series "
                                       "with linked crosshairs, oblique planes and thick slabs"),
                ("3D", self.show_3d, "Volume rendering of the active series")):
            action = QAction(name, self, checkable=True)
            action.setToolTip(tip)
            action.triggered.connect(lambda _=False, f=slot: f())
            self.layout_group.addAction(action)
            bar.addAction(action)
        bar.addSeparator()
        self.tool_group = QActionGroup(self)
        labels = {"window": "W/L", "length": "Length", "angle": "Angle", "ellipse": "Ellipse",
                  "rect": "Rectangle", "probe": "Probe", "text": "Text", "arrow": "Arrow tool",
                  "aspects": "ASPECTS tool (click a region: affected)",
                  "midline": "Midline tool (two points: mirrored regions)"}
        for tool, label in labels.items():
            action = QAction(label, self, checkable=True)
            action.setData(tool)
            action.triggered.connect(lambda _=False, t=tool: self.set_tool(t))
            self.tool_group.addAction(action)
            if tool not in STROKE_TOOLS:  # those are in the Stroke menu
                bar.addAction(action)
            if tool == "window":
                action.setChecked(True)
        bar.addSeparator()
        self.preset_button = QToolButton(self)
        self.preset_button.setText("Presets")
        self.preset_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.preset_menu = QMenu(self)
        self.preset_menu.aboutToShow.connect(self._fill_preset_menu)
        self.preset_button.setMenu(self.preset_menu)
        #: Tool bar entries per layout kind ("grid", "mpr", "3d"): only what applies is shown.
        self._layout_actions: dict[QAction, tuple[str, ...]] = {
            action: ("grid",) for action in self.tool_group.actions()}
        self._layout_actions[bar.addWidget(self.preset_button)] = ("grid", "mpr")
        for label, slot, kinds in (
                ("Invert", lambda: self._each_active("toggle_invert"), ("grid", "mpr")),
                ("Reset", lambda: self._each_active("reset"), ("grid", "mpr", "3d")),
                ("Cine", lambda: self._each_active("toggle_cine"), ("grid",))):
            action = QAction(label, self)
            action.triggered.connect(slot)
            bar.addAction(action)
            self._layout_actions[action] = kinds
        self.mouse_button = QToolButton(self)
        self.mouse_button.setText("Mouse")
        self.mouse_button.setToolTip("What a plain left drag does, the same in 2D and MPR")
        self.mouse_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        mouse_menu = QMenu(self)
        mouse_menu.setToolTipsVisible(True)
        self.mouse_group = QActionGroup(self)
        for mode, label in LEFT_DRAG_MODES.items():
            action = mouse_menu.addAction(label)
            action.setCheckable(True)
            action.setData(mode)
            action.setChecked(mode == self.left_drag)
            action.setToolTip("Shift + left drag: window / level" if mode == "tool"
                              else "Ctrl + left drag: the tool (measure / crosshair)")
            action.triggered.connect(lambda _=False, m=mode: self.set_left_drag(m))
            self.mouse_group.addAction(action)
        self.mouse_button.setMenu(mouse_menu)
        self._layout_actions[bar.addWidget(self.mouse_button)] = ("grid", "mpr")
        self.orient_button = QToolButton(self)
        self.orient_button.setText("Flip / Rotate")
        self.orient_button.setToolTip("Flip or rotate the active view")
        self.orient_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        orient = QMenu(self)
        orient.setToolTipsVisible(True)
        for label, method, tip in (
                ("Flip left ↔ right  (H)", "flip", "Mirror the active view left-right"),
                ("Flip top ↕ bottom  (V)", "flip_vertical", "Mirror the active view top-bottom"),
                ("Rotate 90° clockwise  (Ctrl+R)", "rotate_cw",
                 "Turn the active view a quarter turn clockwise; letters and measurements "
                 "follow (R resets)"),
                ("Rotate 90° counter-clockwise  (Ctrl+Shift+R)", "rotate_ccw",
                 "Turn the active view a quarter turn counter-clockwise"),
                ("Rotate 180°", "rotate_180", "Turn the active view upside down")):
            action = orient.addAction(label)
            action.setToolTip(tip)
            action.triggered.connect(lambda _=False, m=method: self._each_active(m))
        self.orient_button.setMenu(orient)
        self._layout_actions[bar.addWidget(self.orient_button)] = ("grid",)
        self.cine_fps = QSpinBox(self)
        self.cine_fps.setRange(*CINE_FPS_RANGE)
        self.cine_fps.setValue(CINE_FPS)
        self.cine_fps.setSuffix(" fps")
        self.cine_fps.setToolTip("Cine speed (slices per second)")
        self.cine_fps.valueChanged.connect(self._on_cine_fps)
        self._layout_actions[bar.addWidget(self.cine_fps)] = ("grid",)
        self.link_action = QAction("Link", self, checkable=True)
        self.link_action.setChecked(True)
        self.link_action.setToolTip("Scroll viewports of the same frame of reference together")
        self.link_action.toggled.connect(self._on_link_toggled)
        bar.addAction(self.link_action)
        self._layout_actions[self.link_action] = ("grid",)
        self.lines_action = QAction("Lines", self, checkable=True)
        self.lines_action.setChecked(True)
        self.lines_action.setToolTip("Reference lines: where the other viewports' slices cut "
                                     "this one (same frame of reference)")
        self.lines_action.toggled.connect(self._on_lines_toggled)
        bar.addAction(self.lines_action)
        self._layout_actions[self.lines_action] = ("grid",)
        bar.addSeparator()
        self.stroke_button = QToolButton(self)
        self.stroke_button.setText("Stroke")
        self.stroke_button.setToolTip("Hanging protocol, ASPECTS, key images and findings")
        self.stroke_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.stroke_menu = QMenu(self)
        self.stroke_menu.setToolTipsVisible(True)
        self.stroke_menu.aboutToShow.connect(self._fill_stroke_menu)
        self.stroke_button.setMenu(self.stroke_menu)
        bar.addWidget(self.stroke_button)
        for label, key, slot in (("Key image", "K", self.toggle_key_image),
                                 ("ASPECTS level", "G", self.aspects_tool.toggle_level),
                                 ("Smaller guide", "[", lambda: self._scale_guide(1 / 1.05)),
                                 ("Larger guide", "]", lambda: self._scale_guide(1.05))):
            action = QAction(label, self)
            action.setShortcut(QKeySequence(key))
            action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            action.triggered.connect(slot)
            self.addAction(action)
        bar.addSeparator()
        self.export_button = QToolButton(self)
        self.export_button.setText("Export")
        self.export_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self)
        for label, whole, dicom, shortcut in (
                ("Active view as PNG / JPEG…", False, False, "Ctrl+E"),
                ("Whole layout as PNG / JPEG…", True, False, "Ctrl+Shift+E"),
                ("Active view to the study (DICOM)", False, True, ""),
                ("Whole layout to the study (DICOM)", True, True, "")):
            action = menu.addAction(label)
            if shortcut:
                action.setShortcut(QKeySequence(shortcut))
                self.addAction(action)
            export = self.save_to_study if dicom else self.export_dialog
            action.triggered.connect(lambda _=False, f=export, w=whole: f(whole=w))
        menu.actions()[2].setToolTip("A Secondary Capture image in a new series of this study, "
                                     "which can be sent to a hub like the other series")
        menu.addSeparator()
        menu.addAction("Cine / 3D turn as MP4 movie…").triggered.connect(
            lambda: self.export_movie())
        self.movie_overlay_action = menu.addAction("Patient overlay in cine movies")
        self.movie_overlay_action.setCheckable(True)
        self.movie_overlay_action.setChecked(True)
        menu.setToolTipsVisible(True)
        self.export_button.setMenu(menu)
        bar.addWidget(self.export_button)

    def _in_mpr(self) -> bool:
        return self.mpr is not None and self.pages.currentWidget() is self.mpr

    def _fill_preset_menu(self) -> None:
        """Built-in presets for the modality, the user's own, the file's window, and saving
        the current window as a preset; each shown as "name  (W width / L centre)"."""
        self.preset_menu.clear()
        session = self._shown_session()
        if session is None or (not self._in_mpr() and self.active is None):
            return
        for preset in offered_presets(self.store.home, session.modality):
            action = self.preset_menu.addAction(preset.label)
            action.triggered.connect(lambda _=False, p=preset: self.apply_preset(p))
        self.preset_menu.addAction("0  File's window").triggered.connect(
            self._reset_to_file_window)
        self.preset_menu.addSeparator()
        self.preset_menu.addAction("Save the current window as a preset…").triggered.connect(
            self.save_window_preset_dialog)

    def _reset_to_file_window(self) -> None:
        if self.mpr is not None and self._in_mpr():
            self.mpr.apply_preset_key("0", self.mpr.active.view)
        elif self.active is not None:
            self.active.file_window()

    def apply_preset(self, preset: WindowPreset) -> None:
        """The preset in the active view (the active MPR plane, or all planes when shared)."""
        if self.mpr is not None and self._in_mpr():
            self.mpr.apply_preset(preset, self.mpr.active.view)
        elif self.active is not None:
            self.active.apply_preset(preset)

    def current_window(self) -> tuple[float, float] | None:
        """(centre, width) of the active view."""
        if self.mpr is not None and self._in_mpr():
            window = self.mpr.windows[self.mpr.active.view]
        elif self.active is not None and self.active.volume is not None:
            window = self.active.state.window
        else:
            return None
        return window.pair if window.known else None

    def save_window_preset(self, name: str) -> WindowPreset | None:
        """Save the active view's window as the user's preset ``name`` for its modality."""
        session, window = self._shown_session(), self.current_window()
        name = name.strip()
        if session is None or window is None or not name:
            return None
        save_user_preset(self.store.home, name, window[0], window[1], session.modality)
        if self.mpr is not None and self.mpr.session is not None:
            self.mpr.panel.set_presets(offered_presets(self.store.home, self.mpr.session.modality))
        return next(p for p in offered_presets(self.store.home, session.modality)
                    if p.name == name and not p.key)

    def save_window_preset_dialog(self) -> None:
        window = self.current_window()
        if window is None:
            return
        name, ok = QInputDialog.getText(
            self, "Save window preset",
            f"Name for W {window[1]:g} / L {window[0]:g}:")
        if ok and name.strip():
            self.save_window_preset(name)

    def _on_lines_toggled(self, on: bool) -> None:
        self.show_reference_lines = on
        for viewport in self.visible_viewports():
            viewport.canvas.viewport().update()

    def _on_cine_fps(self, fps: int) -> None:
        for viewport in self.viewports:
            viewport.set_cine_fps(fps)

    def _each_active(self, method: str) -> None:
        page = self.pages.currentWidget()
        if self.mpr is not None and page is self.mpr:
            if method == "reset":
                self.mpr.reset()
            elif method == "toggle_invert":
                self.mpr.toggle_invert(self.mpr.active.view)
            return
        if self.view3d is not None and page is self.view3d:
            if method == "reset":
                self.view3d.reset_camera()
            return
        if self.active is not None and method == "flip_vertical":
            self.active.flip(horizontal=False)
        elif self.active is not None and method in ("rotate_cw", "rotate_ccw"):
            self.active.rotate_90(clockwise=method == "rotate_cw")
        elif self.active is not None:
            getattr(self.active, method)()

    def set_left_drag(self, mode: str, save: bool = True) -> None:
        """One mouse model for 2D and every MPR plane: plain left drag is the tool ("tool")
        or window / level ("window"); saved in the settings for the next windows."""
        self.left_drag = mode
        for viewport in self.viewports:
            viewport.left_drag = mode
        for mpr in (self.mpr, self.slabs):
            if mpr is not None:
                mpr.set_left_mode("window" if mode == "window" else "crosshair")
        for action in self.mouse_group.actions():
            action.setChecked(action.data() == mode)
        if save:
            try:
                save_left_drag(self.store.home, mode)
            except OSError as exc:
                log.warning("mouse setting not saved: %s", exc)

    def set_tool(self, tool: str) -> None:
        for viewport in self.viewports:
            viewport.tool = tool
        for action in self.tool_group.actions():
            action.setChecked(action.data() == tool)

    def _on_link_toggled(self, on: bool) -> None:
        self.linked = on

    # -- series -----------------------------------------------------------------------------
    def _fill_strip(self) -> None:
        self.strip.clear()
        for study in [self.study, *self.priors]:
            if study is not self.study:
                header = QListWidgetItem(self.strip.label(
                    f"Prior {format_date(study.study_date)}\n"
                    f"{study.study_description or ''}".strip()))
                header.setFlags(Qt.ItemFlag.NoItemFlags)
                header.setForeground(QColor(90, 140, 220))
                self.strip.addItem(header)
            for series in study.series:
                number = f"#{series.series_number} " if series.series_number is not None else ""
                text = (f"{number}{series.series_description or series.modality}\n"
                        f"{series.modality} · {self._image_count(series)} im")
                item = QListWidgetItem(self.strip.label(text))
                item.setData(Qt.ItemDataRole.UserRole, series.series_instance_uid)
                item.setData(SERIES_TEXT_ROLE, text)
                item.setToolTip(tooltip(text))
                item.setIcon(self._icons.get(series.series_instance_uid) or _placeholder_icon())
                self.strip.addItem(item)
        here = {s.study_instance_uid for s in [self.study, *self.priors]}
        for prior in self.prior_search.priors if self.prior_search is not None else ():
            if prior.local or prior.study_instance_uid in here:
                continue
            where = f"PACS {prior.source}" if prior.kind == "pacs" else prior.source
            entry = QListWidgetItem(self.strip.label(
                f"Prior {format_date(prior.study_date)} on {where}\n"
                f"{prior.study_description or ''}".strip()))
            entry.setData(PRIOR_ROLE, (prior.kind, prior.source, prior.study_instance_uid))
            verb = "retrieve" if prior.kind == "pacs" else "read"
            entry.setToolTip(tooltip(f"Double-click to {verb} this prior from {where}"))
            entry.setForeground(QColor(90, 140, 220))
            self.strip.addItem(entry)

    def _image_count(self, series: Series) -> int:
        """Images in ``series`` as the viewer counts them ("Im k / n"): each frame of a
        multi-frame object is one (an enhanced MR volume is one file of 96 images)."""
        return max(self.store.frame_count(series.series_instance_uid), series.instance_count)

    def set_thumbnail(self, series_uid: str, image: QImage) -> None:
        self._icons[series_uid] = QIcon(QPixmap.fromImage(image))
        for row in range(self.strip.count()):
            item = self.strip.item(row)
            if item.data(Qt.ItemDataRole.UserRole) == series_uid:
                item.setIcon(QIcon(QPixmap.fromImage(image)))

    def session(self, series_uid: str, focus: int | None = None) -> LoadedSeries:
        """The open series (started on first use; shared by every viewport showing it)."""
        session = self.sessions.get(series_uid)
        if session is None:
            study, series = self._series[series_uid]
            if focus is None:
                focus = self.last_slice.get(series_uid)
            remote = self.remote if study is self.study else self.prior_remotes.get(
                study.study_instance_uid)
            if remote is not None and (
                    not remote.finished or remote.series(series_uid) is not None):
                session = RemoteLoadedSeries(self.store, study, series, remote,
                                             focus=focus, parent=self)
                session.slice_ready.connect(
                    lambda k, ok, uid=series_uid: self._on_remote_slice(uid, k, ok))
            else:
                session = LoadedSeries(self.store, study, series, focus=focus, parent=self)
            session.progressed.connect(lambda uid=series_uid: self._on_progress(uid))
            session.opened.connect(lambda s=session: self._on_session_opened_findings(s))
            self.sessions[series_uid] = session
            session.start()
        return session

    def set_notice(self, text: str) -> None:
        """What the empty viewports say (e.g. while a remote study is being opened)."""
        for viewport in self.viewports:
            viewport.empty_text = text
            viewport.canvas.viewport().update()
        if self._preview is not None:  # over the preview, which would hide it
            self._preview.error = text

    def show_preview(self, preview: Preview, hub: str) -> None:
        """Show one image of the series about to open in the first viewport, while the hub's
        metadata is still coming (:meth:`set_remote` then puts the series in its place).
        Ignored once the study is open: the volume shows it already."""
        if self.remote is not None or not self.viewports:
            return
        viewport = self.viewports[0]
        self._preview = PreviewSeries(self.store, preview, hub, parent=self)
        viewport.set_series(self._preview)
        self._set_active(viewport)

    def set_remote(self, remote: RemoteStudy) -> None:
        """Read this study from a hub while it downloads: series from the hub's listing,
        slices as they arrive. Call before :meth:`open_default`."""
        self.remote = remote
        if remote.study is not None:
            self.study = remote.study
        self._series = {s.series_instance_uid: (st, s)
                        for st in [self.study, *self.priors] for s in st.series}
        self._fill_strip()

    def remote_finished(self) -> None:
        """The download is over, however it ended (verified, or stopped waiting for the PACS
        or hub): the study is an ordinary local one now (with the findings that came with
        it), and each series on screen takes what is here beyond what the download brought
        (Relay's node received it meanwhile: :meth:`took_more`)."""
        for uid in list(self.sessions):
            self._on_progress(uid)
        if self.pending_findings is None:
            self.load_findings()
        else:
            self._load_more_findings()
        self._take_more()

    def took_more(self, arriving: bool = False) -> list[str]:
        """More of this study is here than when its series were opened: it grew on the hub
        while it was read (a scanner still sending) and the rest has been fetched, or Relay's
        node received more of it. The strip counts every image, and each series on screen
        that grew opens again at the slice nearest the one shown, in the window it had, with
        its measurements (:meth:`LoadedSeries.carry_on`). ``arriving``: more is still coming
        (the node's progress), so a series opens again only once it has grown by a quarter
        (:data:`REOPEN_GROWTH`): reading a series again as each few images come would cost
        many times the series. Returns the series opened again."""
        if self.remote is not None and not self.remote.finished:
            return []  # its own download is still bringing what it knows of
        return self._take_more(arriving)

    def _take_more(self, arriving: bool = False) -> list[str]:
        """:meth:`took_more`, the study's own download being over."""
        fresh = self.store.study(self.study.study_instance_uid)
        if fresh is None:
            return []
        counts = {s.series_instance_uid: s.instance_count for s in fresh.series}
        grown = [uid for uid, session in self.sessions.items()
                 if counts.get(uid, 0) > session.series.instance_count]
        if fresh.instance_count > self.study.instance_count:
            self.remote = None  # the study is local: its series open from the store
            self.study = fresh
            self._series = {s.series_instance_uid: (st, s)
                            for st in [self.study, *self.priors] for s in st.series}
            self._fill_strip()
        if arriving:
            grown = [uid for uid in grown if counts[uid] >= REOPEN_GROWTH
                     * self.sessions[uid].series.instance_count]
        for uid in grown:
            old = self.sessions.pop(uid)
            self.session(uid).carry_on(old)
            for viewport in self.viewports:
                if viewport.session is not old:
                    continue
                shown = viewport.state.window
                was = (viewport.volume.geometry, viewport.state.k,
                       (shown.center, shown.width, shown.invert)) \
                    if viewport.volume is not None and shown.known else None
                self.show_series(uid, viewport)
                if was is not None:
                    new = self.sessions[uid]
                    new.opened.connect(lambda v=viewport, n=new, w=was: self._back_to(v, n, w))
                    if new.volume is not None:
                        self._back_to(viewport, new, was)
            old.close()
        return grown

    @staticmethod
    def _back_to(viewport: ViewportWidget, session: LoadedSeries,
                 was: tuple[VolumeGeometry, int, tuple[float, float, bool]]) -> None:
        """Once ``session`` (a series opened again, grown) has its volume: ``viewport`` as it
        was, the slice at the table position it showed and its window (a stroke layout's
        brain and stroke windows on one series)."""
        if viewport.session is session and session.volume is not None \
                and viewport.volume is not None:
            geometry, k, (center, width, invert) = was
            viewport.state.window.invert = invert
            viewport.set_window(center, width)
            viewport.show_slice(linked_slice(geometry, k, session.volume.geometry))

    def show_series(self, series_uid: str, viewport: ViewportWidget | None = None) -> None:
        viewport = viewport or self.active or self.viewports[0]
        owner = self._series.get(series_uid)
        viewport.table_offset_mm = self.table_offset(owner[0] if owner else None)
        viewport.set_series(self.session(series_uid), self.last_slice.get(series_uid))
        self._set_active(viewport)
        page = self.pages.currentWidget()
        if (page is not self.grid_host and page is not None
                and viewport.session is not None):  # MPR / 3D follow the new series
            cast("MprWidget | Volume3DWidget", page).set_series(viewport.session)

    def open_default(self) -> None:
        """Lay the study out by its hanging protocol (the stroke layout for a stroke CT),
        else fill the viewports with its image series, biggest first; then show the findings
        saved with it."""
        if not self.hang():
            candidates = sorted(self.study.series, key=lambda s: -s.instance_count)
            for viewport, series in zip(self.viewports, candidates, strict=False):
                uid = series.series_instance_uid
                viewport.set_series(self.session(uid), self.last_slice.get(uid))
            if self.viewports:
                self._set_active(self.viewports[0])
        self.load_findings()
        if self._preview is not None and all(v.session is not self._preview
                                             for v in self.viewports):
            self._preview.deleteLater()  # the volume took over
            self._preview = None

    def _on_strip_double_clicked(self, item: QListWidgetItem) -> None:
        remote = item.data(PRIOR_ROLE)
        if remote:
            kind, source, study_uid = remote
            if kind == "pacs":
                self.prior_retrieve_requested.emit(source, study_uid)
            else:
                self.prior_requested.emit(source, study_uid)
            return
        self.show_series(item.data(Qt.ItemDataRole.UserRole))

    # -- priors -----------------------------------------------------------------------------
    def has_prior_open(self) -> bool:
        """Whether a prior with series is here (local, or being read from a hub)."""
        return self._best_prior() is not None

    def set_prior_search(self, found: PriorSearch) -> None:
        """List the priors found on hubs (not here yet) at the end of the strip."""
        self.prior_search = found
        self._fill_strip()

    def add_remote_prior(self, remote: RemoteStudy) -> None:
        """A prior read from a hub: listed, and hung beside today's study when the layout
        has a place for it."""
        study = remote.study
        if study is None:
            return
        self.prior_remotes[study.study_instance_uid] = remote
        self.priors = [study, *[p for p in self.priors
                                if p.study_instance_uid != study.study_instance_uid]]
        self._series = {s.series_instance_uid: (st, s)
                        for st in [self.study, *self.priors] for s in st.series}
        self._fill_strip()
        wants_prior = bool(self.hung) and any(c.study == "prior" for c in self.hung[0].stage.cells)
        if wants_prior and self.pages.currentWidget() is self.grid_host and self.protocol:
            self.hung = hang(self.protocol, self.study, study)
            apply_stage(self, self.hung[0])
        self.status_message.emit(f"Prior of {format_date(study.study_date)} from {remote.hub}: "
                                 "reading it while it downloads.")

    def _on_remote_slice(self, series_uid: str, k: int, ok: bool) -> None:
        """The middle slice of a series coming from a hub is in: its thumbnail, from memory
        (the store's thumbnail cache waits for the whole series)."""
        session = self.sessions.get(series_uid)
        volume = session.volume if session is not None else None
        if not ok or volume is None or k != volume.shape[0] // 2 or series_uid in self._thumbed:
            return
        self._thumbed.add(series_uid)
        image = slice_thumbnail(np.asarray(volume.array[k]), volume.slices[k],
                                palette=session.palette if session is not None else None)
        self.set_thumbnail(series_uid, to_qimage(image))

    def _on_progress(self, series_uid: str) -> None:
        session = self.sessions.get(series_uid)
        if session is None or session.volume is None:
            return
        if session.volume.finished:
            prewarm_3d()  # the 3D layout can open now: load VTK off the GUI thread
            if not self._warm_timer.isActive():
                self._warm_timer.start(WARM_3D_GAP_MS)  # and make its OpenGL window
        for row in range(self.strip.count()):
            item = self.strip.item(row)
            if item.data(Qt.ItemDataRole.UserRole) == series_uid:
                base = item.data(SERIES_TEXT_ROLE)
                extra = session.progress_text()
                text = f"{base}\n{extra}" if extra else base
                item.setText(self.strip.label(text))
                item.setToolTip(tooltip(text))  # what the strip's width cut off

    # -- layout -----------------------------------------------------------------------------
    def _check_layout(self, name: str) -> None:
        for action in self.layout_group.actions():
            action.setChecked(action.text() == name)
        kind = {"MPR": "mpr", "3D": "3d"}.get(name, "grid")
        for action, kinds in self._layout_actions.items():
            action.setVisible(kind in kinds)

    def _layout_session(self) -> LoadedSeries | None:
        """The series MPR and 3D show: the active viewport's, else the first one open."""
        for viewport in [self.active, *self.viewports]:
            if viewport is not None and viewport.session is not None and (
                    not viewport.session.stand_in):  # one image: no planes to cut yet
                return viewport.session
        return None

    def show_mpr(self) -> MprWidget | None:
        """Switch to the MPR layout on the active viewport's series."""
        session = self._layout_session()
        if session is None:
            self._check_layout(self._grid_layout_name())
            return None
        if self.mpr is None:
            self.mpr = MprWidget(self.pages)
            self.mpr.set_left_mode("window" if self.left_drag == "window" else "crosshair")
            self.mpr.panel.left_mode_changed.connect(
                lambda mode: self.set_left_drag("window" if mode == "window" else "tool"))
            self.pages.addWidget(self.mpr)
        if len(self.mpr.planes) != len(self.mpr.views):  # a protocol's stage showed fewer
            self.mpr.show_planes()
        active = self.active
        if active is not None and active.session is session and active.state.window.known:
            # The window of the view MPR is opened from: a protocol shows one series in two
            # windows (Brain, Stroke), and the one set last is not the one the reader looks at.
            window = active.state.window
            session.chosen_window = (window.center, window.width, window.invert)
        self.mpr.set_series(session)
        self.pages.setCurrentWidget(self.mpr)
        self._check_layout("MPR")
        self.mpr.active.setFocus()
        return self.mpr

    def show_3d(self) -> Volume3DWidget | None:
        """Switch to the 3D layout on the active viewport's series."""
        session = self._layout_session()
        if session is None:
            self._check_layout(self._grid_layout_name())
            return None
        self._warm_timer.stop()
        view3d = self._make_view3d()
        self.pages.setCurrentWidget(view3d)
        view3d.set_series(session)
        self._check_layout("3D")
        return view3d

    def _make_view3d(self) -> Volume3DWidget:
        if self.view3d is None:
            from app.ui.volume3d import Volume3DWidget  # VTK's Qt glue only when asked for

            self.view3d = Volume3DWidget(self.pages)
            self.pages.addWidget(self.view3d)
        return self.view3d

    def _warm_3d(self) -> None:
        """Make the 3D view and its OpenGL window ahead of time, a piece per turn of the event
        loop, while it is a hidden page and the reader is not scrolling: opening 3D then only
        shows it (``bench/bench_3d_open.py`` measures both). Runs once the 3D modules are
        loaded (:func:`prewarm_3d`), while this viewer is on screen."""
        view3d = self.view3d
        if view3d is not None and (view3d.warm or view3d.scene is not None
                                   or self.pages.currentWidget() is view3d):
            return  # made, or shown (it makes what is missing itself)
        busy = (not prewarmed() or not self.isVisible()
                or QApplication.mouseButtons() != Qt.MouseButton.NoButton
                or time.monotonic() - self._last_scroll < WARM_3D_IDLE_S
                or any(v.cine_running for v in self.visible_viewports()))
        if busy:
            self._warm_timer.start(4 * WARM_3D_GAP_MS)
            return
        if view3d is None:
            view3d = self._make_view3d()
            view3d.setGeometry(self.pages.rect())  # laid out as it will be shown
            page_layout = view3d.layout()
            if page_layout is not None:
                page_layout.activate()
        else:
            ratio = view3d.vtk.devicePixelRatio()
            size = (round(view3d.vtk.width() * ratio), round(view3d.vtk.height() * ratio))
            if view3d.warm_up(size):
                return
        self._warm_timer.start(WARM_3D_GAP_MS)

    def _grid_layout_name(self) -> str:
        count = len(self.visible_viewports())
        return {1: "1×1", 2: "1×2", 3: "1×3", 4: "2×2"}.get(count, "1×1")

    def slab_widget(self) -> MprWidget:
        """The MPR that shows a protocol's slabs under the viewports (made on first use)."""
        if self.slabs is None:
            self.slabs = MprWidget(self.grid_host, with_panel=False)
            self.slabs.set_left_mode("window" if self.left_drag == "window" else "crosshair")
            self.slabs.hide()
        return self.slabs

    def choose_layout(self, name: str) -> list[str]:
        """The reader picks the layout ``name``: its empty viewports take the series not on
        screen yet (:meth:`fill_empty`); the series placed."""
        self.set_layout(name)
        return self.fill_empty()

    def fill_empty(self) -> list[str]:
        """Each empty viewport on screen, in grid order, takes the next image series of the
        study (in the strip's order) that no viewport shows, as Weasis and Horos fill a
        larger layout (reports, key images and presentation states are not images to show);
        the series placed."""
        visible = self.visible_viewports()
        shown = {v.session.series.series_instance_uid for v in visible if v.session is not None}
        todo = [s.series_instance_uid for s in self.study.series
                if series_kind(s) != "nonimage" and s.series_instance_uid not in shown]
        placed: list[str] = []
        for viewport in visible:
            if viewport.session is None and todo:
                uid = todo.pop(0)
                viewport.set_series(self.session(uid), self.last_slice.get(uid))
                placed.append(uid)
        return placed

    def set_layout(self, name: str, slabs: bool = False) -> None:
        """``name``'s grid of viewports; with ``slabs``, the protocol's MPR slabs in a row
        under them, as wide as the grid (e.g. the plain CT above, the CTA's MIPs below)."""
        rows, cols = LAYOUTS[name]
        self._grid_name = name
        self._grid_slabs = slabs
        self._maximised = None
        self._check_layout(name)
        self.pages.setCurrentWidget(self.grid_host)
        needed = rows * cols
        while len(self.viewports) < needed:
            viewport = _DropViewport(self.grid_host)
            viewport.tool = self._current_tool()
            viewport.left_drag = self.left_drag
            viewport.set_cine_fps(self.cine_fps.value())
            viewport.double_clicked.connect(self.toggle_maximised)
            viewport.reference_lines = lambda v=viewport: self._reference_lines(v)
            viewport.activated.connect(self._set_active)
            viewport.slice_changed.connect(lambda k, v=viewport: self._on_slice_changed(v))
            viewport.series_dropped.connect(lambda v, uid: self.show_series(uid, v))
            viewport.tool_hooks = [self.aspects_tool, self.midline_tool,
                                   KeyImageMark(lambda: self.key_images)]
            self.viewports.append(viewport)
        for viewport in self.viewports:
            self.grid.removeWidget(viewport)
            viewport.hide()
        if self.slabs is not None:
            self.grid.removeWidget(self.slabs)
            self.slabs.hide()
        for row in range(4):
            self.grid.setRowStretch(row, 0)
        for index, viewport in enumerate(self.viewports[:needed]):
            self.grid.addWidget(viewport, index // cols, index % cols)
            viewport.show()
        for row in range(rows):
            self.grid.setRowStretch(row, 1)
        if slabs:
            widget = self.slab_widget()
            self.grid.addWidget(widget, rows, 0, 1, cols)
            self.grid.setRowStretch(rows, rows)  # as tall as the viewports above
            widget.show()
        if self.active not in self.viewports[:needed]:
            self._set_active(self.viewports[0])

    @property
    def maximised(self) -> ViewportWidget | None:
        """The viewport shown alone (double-click), or None."""
        return self._maximised

    def toggle_maximised(self, viewport: ViewportWidget) -> None:
        """Show ``viewport`` alone over the whole grid, or the layout again (double-click)."""
        if self._maximised is not None:
            self.set_layout(self._grid_name, self._grid_slabs)
        else:
            for other in self.visible_viewports():
                if other is not viewport:
                    other.hide()
            if self.slabs is not None:  # out of the grid: its row takes no room
                self.grid.removeWidget(self.slabs)
                self.slabs.hide()
                for row in range(4):
                    self.grid.setRowStretch(row, 0)
            self._maximised = viewport
        self._set_active(viewport)
        viewport.setFocus()

    def focus_view(self) -> None:
        """Give the keyboard to the image on screen (a study was opened: shortcuts work at
        once, without a click into the image first)."""
        page = self.pages.currentWidget()
        if self.mpr is not None and page is self.mpr:
            self.mpr.active.setFocus(Qt.FocusReason.OtherFocusReason)
        elif self.view3d is not None and page is self.view3d:
            self.view3d.setFocus(Qt.FocusReason.OtherFocusReason)
        elif self.active is not None:
            self.active.setFocus(Qt.FocusReason.OtherFocusReason)

    def visible_viewports(self) -> list[ViewportWidget]:
        return [v for v in self.viewports if v.isVisibleTo(self)]

    def _current_tool(self) -> str:
        checked = self.tool_group.checkedAction()
        return checked.data() if checked else "window"

    def _set_active(self, viewport: ViewportWidget) -> None:
        self.active = viewport
        for v in self.viewports:
            v.active = v is viewport
            v.canvas.viewport().update()

    # -- linked scrolling -------------------------------------------------------------------
    def _reference_lines(self, target: ViewportWidget) -> list[ReferenceLine]:
        """Where the slices of the other visible viewports (same frame of reference) cut
        ``target``'s slice; the active viewport's line is marked."""
        if not self.show_reference_lines or target.volume is None or target.session is None:
            return []
        frame = target.session.series.frame_of_reference_uid
        lines: list[ReferenceLine] = []
        for other in self.visible_viewports():
            if (other is target or other.volume is None or other.session is None or not frame
                    or other.session.series.frame_of_reference_uid != frame):
                continue
            segment = reference_line(target.volume.geometry, target.state.k,
                                     other.volume.geometry, other.state.k)
            if segment is not None:
                lines.append((segment[0], segment[1], other is self.active))
        return lines

    def _on_slice_changed(self, source: ViewportWidget) -> None:
        self._last_scroll = time.monotonic()
        if source.session is not None:
            self.last_slice[source.session.series.series_instance_uid] = source.state.k
        for viewport in self.visible_viewports():
            if viewport is not source:
                viewport.canvas.viewport().update()  # its reference lines moved
        if not self.linked or self._linking or source.volume is None:
            return
        if source.session is None:
            return
        if self.link_by_position:
            self._link_by_position(source)
        frame = source.session.series.frame_of_reference_uid
        if not frame:
            return
        geometry = source.volume.geometry
        k = source.state.k
        rows, cols = source.volume.shape[1], source.volume.shape[2]
        point = geometry.index_to_lps(np.array([(cols - 1) / 2, (rows - 1) / 2, k]))
        self._slabs_follow(point, frame)
        self._linking = True
        try:
            for viewport in self.visible_viewports():
                if viewport is source or viewport.volume is None:
                    continue
                if (viewport.session is None
                        or viewport.session.series.frame_of_reference_uid != frame):
                    continue
                target = viewport.volume.geometry.lps_to_index(point)[2]
                viewport.show_slice(int(round(float(target))))
        finally:
            self._linking = False

    def _slabs_follow(self, point: np.ndarray, frame: str) -> None:
        """The protocol's slabs on the same screen (the CTA under the plain CT) follow a scroll
        of a viewport of their frame of reference: the axial slab goes to that level."""
        slabs = self.slabs
        if (slabs is None or not slabs.isVisibleTo(self) or slabs.crosshair is None
                or slabs.session is None
                or slabs.session.series.frame_of_reference_uid != frame):
            return
        cross = slabs.crosshair
        normal = cross.plane("axial").normal
        centre = cross.center
        cross.set_center(centre + normal * float((point - centre) @ normal))

    def _link_by_position(self, source: ViewportWidget) -> None:
        """Viewports of another frame of reference (the prior) follow by table position; with
        Alt held, ``source`` moved alone and its offset to them changes instead."""
        assert source.volume is not None and source.session is not None
        frame = source.session.series.frame_of_reference_uid
        others = [v for v in self.visible_viewports()
                  if v is not source and v.volume is not None and v.session is not None
                  and (not frame or v.session.series.frame_of_reference_uid != frame)]
        if not others:
            return
        if source.scrolling_alone or (
                QApplication.keyboardModifiers() & Qt.KeyboardModifier.AltModifier):
            other = others[0]
            assert other.volume is not None
            source.table_offset_mm = offset_for(source.volume.geometry, source.state.k,
                                                other.volume.geometry, other.state.k,
                                                other.table_offset_mm)
            self.status_message.emit(f"Offset to the other study: "
                                     f"{source.table_offset_mm:+.1f} mm")
            assert other.session is not None
            self._offset_to_save = (source.session.study.study_instance_uid,
                                    other.session.study.study_instance_uid,
                                    other.table_offset_mm - source.table_offset_mm)
            self._offset_timer.start()
            return
        self._linking = True
        try:
            for viewport in others:
                assert viewport.volume is not None
                viewport.show_slice(linked_slice(
                    source.volume.geometry, source.state.k, viewport.volume.geometry,
                    source_offset=source.table_offset_mm,
                    target_offset=viewport.table_offset_mm))
        finally:
            self._linking = False

    # -- stroke reading ---------------------------------------------------------------------
    def refresh_views(self) -> None:
        for viewport in self.visible_viewports():
            viewport.canvas.viewport().update()

    def set_active_viewport(self, viewport: ViewportWidget) -> None:
        self._set_active(viewport)

    def _scale_guide(self, factor: float) -> None:
        if self.active is not None and self.active.tool == "aspects":
            self.aspects_tool.scale(self.active, factor)

    def hang(self, prior: Study | None = None) -> bool:
        """Lay the study out by its hanging protocol (its first stage); False when only the
        default protocol applies (the caller opens the biggest series)."""
        self.protocol = choose(self.study, self.store.home)
        if prior is None:
            prior = self._best_prior()
        self.hung = hang(self.protocol, self.study, prior) if self.protocol else []
        if self.protocol is None or self.protocol.name == "default" or not self.hung:
            return False
        apply_stage(self, self.hung[0])
        return True

    def _best_prior(self) -> Study | None:
        """The first earlier study in the (most relevant first) priors."""
        return next((p for p in self.priors if p.series and is_earlier(
            (p.study_date or "").ljust(8, "0")[:8] + (p.study_time or "").ljust(6, "0")[:6],
            self.study)), None)

    def show_stage(self, index: int) -> None:
        if 0 <= index < len(self.hung):
            apply_stage(self, self.hung[index])

    def use_protocol(self, name: str, save: bool = True) -> None:
        """Lay the study out with the protocol ``name``; remember it for studies of this
        kind when ``save``."""
        found = next((p for p in protocols(self.store.home) if p.name == name), None)
        if found is None:
            return
        if save:
            try:
                save_choice(self.store.home, self.study, name)
            except (RelayError, OSError) as exc:
                log.warning("hanging protocol choice not saved: %s", exc)
        self.protocol = found
        prior = self._best_prior()
        self.hung = hang(found, self.study, prior)
        if self.hung:
            apply_stage(self, self.hung[0])

    def _fill_stroke_menu(self) -> None:
        menu = self.stroke_menu
        menu.clear()
        for action in self.tool_group.actions():
            if action.data() in STROKE_TOOLS:
                menu.addAction(action)
        menu.addSeparator()
        for index, hung in enumerate(self.hung):
            action = menu.addAction(f"Show: {hung.stage.name}")
            action.triggered.connect(lambda _=False, i=index: self.show_stage(i))
        protocols_menu = menu.addMenu("Hanging protocol")
        protocols_menu.setToolTipsVisible(True)
        for protocol in protocols(self.store.home):
            action = protocols_menu.addAction(protocol.title)
            action.setCheckable(True)
            action.setChecked(self.protocol is not None and protocol.name == self.protocol.name)
            action.setToolTip(f"{protocol.about} Used from now on for {study_key(self.study)} "
                              "studies.")
            action.triggered.connect(lambda _=False, n=protocol.name: self.use_protocol(n))
        menu.addSeparator()
        for label, slot in (
                (f"Key image (K){'  ✓' if self._key_in_view() else ''}", self.toggle_key_image),
                (f"ASPECTS level: {self.aspects_tool.level} (G)", self.aspects_tool.toggle_level),
                ("Clear ASPECTS marks", self.aspects_tool.clear),
                ("Save findings to the study", self.save_findings),
                ("Send findings to the hub…", self._request_send_findings)):
            menu.addAction(label).triggered.connect(lambda _=False, f=slot: f())

    def _sop_in_view(self) -> str:
        viewport = self.active
        if viewport is None or viewport.volume is None:
            return ""
        return viewport.volume.slices[viewport.state.k].sop_instance_uid

    def _key_in_view(self) -> bool:
        return self._sop_in_view() in self.key_images

    def toggle_key_image(self) -> None:
        """K: the image in view is a key image (again: it is not)."""
        sop = self._sop_in_view()
        if not sop:
            return
        if sop in self.key_images:
            self.key_images.remove(sop)
            self.status_message.emit("Not a key image any more.")
        else:
            self.key_images.append(sop)
            self.status_message.emit(f"Key image marked ({len(self.key_images)} in this study).")
        self.refresh_views()

    def save_findings(self) -> list[StoredFile]:
        """The ASPECTS score, regions, key images and measurements into the study as an SR, a
        KOS and a presentation state."""
        findings = collect_findings(self)
        if findings.aspects is None and not findings.regions and not findings.key_images \
                and not findings.marks:
            self.status_message.emit("No findings to save yet: score ASPECTS, draw a region, "
                                     "mark a key image (K) or measure first.")
            return []
        if findings.key_images and not self.key_text:
            text, ok = QInputDialog.getText(self, "Key images", "A short note for the key images:")
            self.key_text = text.strip() if ok else ""
            findings = collect_findings(self)
        try:
            stored = save_findings(self.store, findings, self.current_window())
        except (RelayError, OSError, ValueError) as exc:
            QMessageBox.warning(self, "Save findings", f"The findings were not saved: {exc}")
            return []
        fresh = self.store.study(self.study.study_instance_uid)
        if fresh is not None:
            self.study = fresh
            self._series = {s.series_instance_uid: (st, s)
                            for st in [self.study, *self.priors] for s in st.series}
            self._fill_strip()
        self.findings_saved.emit([s.header.series.series_instance_uid for s in stored])
        self.status_message.emit(f"Findings saved to the study ({len(stored)} objects).")
        return stored

    def _request_send_findings(self) -> None:
        stored = self.save_findings()
        if stored:
            self.send_findings.emit(self.study.study_instance_uid,
                                    [s.header.series.series_instance_uid for s in stored])

    def load_findings(self) -> None:
        """Show the findings stored with the study (by this Relay or another)."""
        try:
            findings = read_findings(self.store, self.study)
        except (RelayError, OSError) as exc:
            log.warning("findings not read: %s", exc)
            return
        if findings is not None:
            show_findings(self, findings)

    def _load_more_findings(self) -> None:
        """Findings objects that arrived after the first ones were shown (the study was opened
        while its report, key-image note or presentation state were still downloading): what
        they add is shown too, nothing twice."""
        shown = self.pending_findings
        try:  # the study as stored now: its findings series may have come after the listing
            findings = read_findings(
                self.store, self.store.study(self.study.study_instance_uid) or self.study)
        except (RelayError, OSError) as exc:
            log.warning("findings not read: %s", exc)
            return
        if findings is None or shown is None or findings == shown:
            return
        self.pending_findings = findings
        for uid, session in self.sessions.items():
            if uid in self._findings_placed:  # what is new on the series placed already
                place_regions(self, session, shown)
        show_findings(self, findings)  # the score, key images and text; the other series later

    def _on_session_opened_findings(self, session: LoadedSeries) -> None:
        self.findings_opened(session)

    def findings_opened(self, session: LoadedSeries) -> None:
        """``session`` is open: the pending findings' annotations on it (once), then, when
        its viewports have set themselves up for it, its saved window and area in view."""
        uid = session.series.series_instance_uid
        if self.pending_findings is None or uid in self._findings_placed:
            return
        self._findings_placed.add(uid)
        place_regions(self, session)
        for viewport in self.viewports:
            if viewport.session is session and viewport.volume is not None:
                viewport.show_slice(viewport.state.k)  # draws the annotations
        QTimer.singleShot(0, lambda: self._show_display(session))

    def _show_display(self, session: LoadedSeries) -> None:
        if session.series.series_instance_uid in self.sessions and show_display(self, session):
            for viewport in self.viewports:
                if viewport.session is session and viewport.volume is not None:
                    viewport.show_slice(viewport.state.k)

    # -- export / help ----------------------------------------------------------------------
    def _shown_session(self) -> LoadedSeries | None:
        """The series of what is on screen: MPR's, 3D's or the active viewport's."""
        page = self.pages.currentWidget()
        if page is not self.grid_host and page is not None:
            return cast("MprWidget | Volume3DWidget", page).session
        return self.active.session if self.active is not None else None

    def grab(  # type: ignore[override]  # not QWidget.grab(rect)
            self, whole: bool = False, overlays: bool = True) -> tuple[QImage, str] | None:
        """What is on screen, as the user sees it, without the active frame: the active view
        (a viewport, an MPR plane, the 3D view) or the ``whole`` layout; with a name for it
        ("im12", "MPR-axial", "3D"...). None when nothing is shown."""
        page = self.pages.currentWidget()
        if self.view3d is not None and page is self.view3d:
            if self.view3d.scene is None:
                return None
            return from_rgb(self.view3d.snapshot()), "3D"
        if self.mpr is not None and page is self.mpr:
            if self.mpr.source is None:
                return None
            planes = list(self.mpr.views.values()) if whole else [self.mpr.active]
            shots = [(v.canvas, v.grab_view()) for v in planes]
            where = "MPR" if whole else f"MPR-{self.mpr.active.view}"
            return compose(shots, self.mpr), where
        views = [v for v in (self.visible_viewports() if whole else [self.active])
                 if v is not None and v.volume is not None]
        if not views:
            return None
        shots = [(v.canvas, v.grab_view(overlays)) for v in views]
        slabs = self.slabs
        if whole and slabs is not None and slabs.isVisibleTo(self) and slabs.source is not None:
            shots += [(slabs.views[p].canvas, slabs.views[p].grab_view()) for p in slabs.planes]
        where = "layout" if whole else f"im{views[0].state.k + 1}"
        return compose(shots, self.grid_host), where

    def export_dialog(self, whole: bool = False) -> str:
        """Save the active view (or the whole layout) as PNG or JPEG; returns the path."""
        session = self._shown_session()
        shot = self.grab(whole)
        if shot is None:
            return ""
        image, where = shot
        name = default_name(session.series if session else None, where)
        start = str(Path(self._export_dir or Path.home()) / f"{name}.png")
        path, chosen = QFileDialog.getSaveFileName(self, "Export view", start, IMAGE_FILTERS)
        if not path:
            return ""
        if Path(path).suffix.lower() not in (".png", ".jpg", ".jpeg"):
            path += ".jpg" if "JPEG" in chosen else ".png"
        if not image.save(path, quality=95):
            QMessageBox.warning(self, "Export view", f"Could not write {path}.")
            return ""
        self._export_dir = str(Path(path).parent)
        return path

    def export_movie(self, path: str = "") -> QObject | None:
        """Save a movie for a consult note: in 3D the view turning once around, else every
        slice of the active viewport (at the cine speed, with or without the patient overlay
        as the Export menu says). Returns the running job (None when nothing was started)."""
        from app.ui.movie_export import CineMovie, start_turn_movie

        session = self._shown_session()
        view3d = self.view3d
        in_3d = view3d is not None and self.pages.currentWidget() is view3d
        if session is None or (in_3d and view3d is not None and view3d.scene is None) or (
                not in_3d and (self.active is None or self.active.volume is None)):
            return None
        if not path:
            name = default_name(session.series, "3D-turn" if in_3d else "cine")
            start = str(Path(self._export_dir or Path.home()) / f"{name}.mp4")
            path, _ = QFileDialog.getSaveFileName(self, "Export movie", start,
                                                  "MP4 movie (*.mp4)")
            if not path:
                return None
        if not path.lower().endswith(".mp4"):
            path += ".mp4"
        self._export_dir = str(Path(path).parent)
        done = f"Movie saved: {Path(path).name}"
        job: QObject
        try:
            if in_3d:
                task = start_turn_movie(view3d, path, self)
                task.succeeded.connect(lambda _p: self.status_message.emit(done))
                task.failed.connect(lambda msg: QMessageBox.warning(
                    self, "Export movie", f"The movie was not made: {msg}"))
                job = task
            else:
                assert self.active is not None
                cine = CineMovie(self.active, path, fps=self.cine_fps.value(),
                                 overlays=self.movie_overlay_action.isChecked(), parent=self)
                cine.finished.connect(lambda _p: self.status_message.emit(done))
                cine.failed.connect(lambda msg: QMessageBox.warning(
                    self, "Export movie", f"The movie was not made: {msg}"))
                job = cine.start()
        except ValueError as exc:
            QMessageBox.information(self, "Export movie", str(exc))
            return None
        self.status_message.emit("Making the movie…")
        return job

    def save_to_study(self, whole: bool = False) -> StoredFile | None:
        """Add the active view (or the whole layout) to the study as a DICOM Secondary
        Capture in a "Relay key views" series, listed in the strip and sendable to a hub."""
        session = self._shown_session()
        shot = self.grab(whole)
        if shot is None or session is None or session.volume is None:
            return None
        image, where = shot
        if self._captures is None:
            taken = [s.series_number or 0 for s in self.study.series]
            self._captures = CaptureSeries.new(max([9000, *[n + 1 for n in taken]]))
        self._capture_count += 1
        k = self.active.state.k if self.active is not None and (
            self.active.session is session) else session.first_slice()
        try:
            stored = save_to_study(self.store, image, session.volume, k, self._captures,
                                   self._capture_count, where)
        except (RelayError, OSError, ValueError) as exc:
            QMessageBox.warning(self, "Save view to the study", f"The view was not saved: {exc}")
            return None
        fresh = self.store.study(self.study.study_instance_uid)
        if fresh is not None:
            self.study = fresh
            self._series = {s.series_instance_uid: (st, s)
                            for st in [self.study, *self.priors] for s in st.series}
            self._fill_strip()
        self.status_message.emit(
            f"View saved to the study as image {self._capture_count} of series "
            f"#{self._captures.series_number} \"{self._captures.series_description}\"")
        return stored

    def save_table_offset(self) -> None:
        """Remember the offset the user set between two studies (for the next time the pair
        is opened together; see :mod:`app.workflow.table_offsets`)."""
        self._offset_timer.stop()
        pending, self._offset_to_save = self._offset_to_save, None
        if pending is not None:
            save_offset(self.store.home, *pending)

    def table_offset(self, study: Study | None) -> float:
        """The offset of ``study``'s viewports to today's: the one remembered for the pair,
        else none."""
        if study is None or study.study_instance_uid == self.study.study_instance_uid:
            return 0.0
        found = load_offset(self.store.home, self.study.study_instance_uid,
                            study.study_instance_uid)
        return found if found is not None else 0.0

    def close_all(self) -> None:
        self.save_table_offset()
        if self.mpr is not None:
            self.mpr.close_mpr()
        if self.slabs is not None:
            self.slabs.close_mpr()
        self._warm_timer.stop()
        if self.view3d is not None:
            self.view3d.close_3d()
        for session in self.sessions.values():
            session.close()


def shortcuts_dialog(parent: QWidget | None) -> None:
    rows = "".join(f"<tr><td><b>{k}</b></td><td>&nbsp;&nbsp;{v}</td></tr>" for k, v in SHORTCUTS)
    QMessageBox.information(parent, "Mouse and keyboard", f"<table>{rows}</table>")


def _placeholder_icon() -> QIcon:
    pixmap = QPixmap(112, 112)
    pixmap.fill(Qt.GlobalColor.black)
    return QIcon(pixmap)
