"""Opening a study that is only on the hub: the first image while it downloads (real Orthanc)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QKeyEvent

from app.net.queue import TransferQueue
from app.net.send import run_send, send_job
from app.store.local import Store
from app.ui.main_window import MainWindow
from app.ui.remote_session import PreviewSeries, RemoteLoadedSeries
from tests.net.conftest import (  # noqa: F401
    HUB_PASSWORD,
    HUB_USER,
    SlowLink,
    add_hub,
    ct_files,
    hub,
    hub_sop_uids,
    import_study,
    no_system_keyring,
)
from tests.proxies import HoldLink
from tests.ui.conftest import shown_window

pytestmark = pytest.mark.orthanc

RATE = 1_000_000  # bytes/s, all connections together (one line): the 4.5 MB study ~5 s


def _upload(hub, home: Path, files) -> str:  # noqa: F811
    from app.net.dicomweb import DicomWebClient
    from app.net.http import HubSession
    from app.settings import HubProfile, TransferSettings

    store, study = import_study(home, files)
    queue = TransferQueue(home)
    client = DicomWebClient(HubSession(HubProfile("h", hub.url, "basic", HUB_USER),
                                       HUB_PASSWORD))
    assert run_send(store, queue, client, send_job(store, queue, "hub", study).id,
                    TransferSettings()).state == "verified"
    return study


def _reader_window(qtbot, tmp_path: Path, hub_url: str) -> MainWindow:
    """The hub's reader: a fresh home with the hub ("Stroke hub") added, its window shown."""
    home = tmp_path / "reader"
    home.mkdir()
    assert add_hub(home, hub_url, name="Stroke hub").returncode == 0
    return shown_window(qtbot, home, 1000, 700)


@pytest.fixture
def slow(hub):  # noqa: F811
    link = SlowLink(hub.config.http_port, RATE, shared=True)
    try:
        yield link
    finally:
        link.close()


def test_remote_study_reads_while_it_downloads(qtbot, hub, slow, tmp_path,  # noqa: F811
                                               ct_files):  # noqa: F811
    study = _upload(hub, tmp_path / "spoke", ct_files)
    window = _reader_window(qtbot, tmp_path, slow.url)

    started = time.monotonic()
    viewer = window.open_remote_study("Stroke hub", study)
    assert window.tabs.currentWidget() is viewer  # the viewer is there at once
    viewport = viewer.viewports[0]
    assert "Opening the study from Stroke hub" in viewport.empty_text
    viewport.grab()

    # The first image (a preview, or the planned volume's slice) is drawn while the download
    # is still running; then the volume's.
    qtbot.waitUntil(lambda: viewport.volume is not None and viewport.image.image is not None,
                    timeout=30_000)
    first = time.monotonic() - started
    qtbot.waitUntil(lambda: isinstance(viewport.session, RemoteLoadedSeries)
                    and viewport.image.image is not None, timeout=30_000)
    session = viewport.session
    remote = session.remote
    assert not remote.finished, "the download ended before the first image was drawn"
    n = viewport.n_slices
    opened = remote.series(session.series.series_instance_uid)
    assert n == len(ct_files) and viewport.state.k == opened.first
    assert abs(opened.first - n // 2) <= 1  # the preview's instance, or the middle
    middle = viewport.image.image.copy()
    assert "from Stroke hub" in session.progress_text()
    # the strip's thumbnail comes from the slice already here, not after the download
    assert session.series.series_instance_uid in viewer._thumbed
    # the status bar counts the images already local (the browser waits for the end)
    qtbot.waitUntil(lambda: not window.counts_label.text().startswith("0 studies"),
                    timeout=10_000)

    # Scrolling ahead of the download: a clear placeholder, then the image once it arrived.
    uid = session.series.series_instance_uid
    far = next(i for i in (*range(n - 1, n // 2, -1), *range(n // 2))
               if remote.state(uid, i) == "coming")
    viewport.show_slice(far)
    assert viewport.image.image is None  # not a stale image
    text = session.pending_text(far)
    assert text == f"Slice {far + 1} of {n} — still coming from Stroke hub…" or (
        remote.state(uid, far) != "coming")
    viewport.grab()  # the placeholder paints
    qtbot.waitUntil(lambda: viewport.image.image is not None, timeout=30_000)
    assert remote.state(uid, far) == "ready"
    assert not np.array_equal(viewport.image.image, middle)
    assert not remote.finished or far in (0, n - 1)

    # When the download ends the study is an ordinary local study.
    qtbot.waitUntil(lambda: remote.finished and not window._openers, timeout=60_000)
    total = time.monotonic() - started
    assert first < 0.5 * total, (first, total)
    assert [s.study_instance_uid for s in window.store.studies()] == [study]
    # the browser reads the store off the GUI thread after an arrival (a moment later)
    qtbot.waitUntil(lambda: window.pages.currentWidget() is window.browser, timeout=10_000)
    local = window.store.instances(uid)
    assert sorted(i.sop_instance_uid for i in local) == sorted(hub_sop_uids(hub))
    assert "local now" in window.statusBar().currentMessage()
    qtbot.waitUntil(lambda: session.progress_text() == "", timeout=10_000)
    job = next(j for j in window.queue_runner().jobs() if j.kind == "fetch")
    assert job.state == "verified"
    window.close()
    assert window._runner is None


def test_remote_open_of_an_unknown_study_says_so(qtbot, hub, tmp_path):  # noqa: F811
    home = tmp_path / "reader"
    home.mkdir()
    assert add_hub(home, hub.url).returncode == 0
    window = MainWindow(Store(home))
    qtbot.addWidget(window)
    tabs = window.tabs.count()
    viewer = window.open_remote_study("hub", "1.2.3.4.5.404")
    qtbot.waitUntil(lambda: "Cannot open" in viewer.viewports[0].empty_text, timeout=30_000)
    assert "not on hub" in viewer.viewports[0].empty_text
    again = window.open_remote_study("hub", "1.2.3.4.5.404")  # tried again, not the old tab
    assert again is not viewer and window.tabs.count() == tabs + 1
    qtbot.waitUntil(lambda: "Cannot open" in again.viewports[0].empty_text, timeout=30_000)
    assert "not on hub" in again.viewports[0].empty_text
    window.close()


def test_a_preview_shows_before_the_series_is_planned(qtbot, hub, tmp_path,  # noqa: F811
                                                      ct_files):  # noqa: F811
    study = _upload(hub, tmp_path / "spoke", ct_files)
    link = HoldLink(hub.config.http_port, hold="/metadata")  # the plan waits for the test
    window = _reader_window(qtbot, tmp_path, link.url)
    try:
        viewer = window.open_remote_study("Stroke hub", study)
        viewport = viewer.viewports[0]
        qtbot.waitUntil(lambda: viewport.session is not None and viewport.session.stand_in
                        and viewport.image.image is not None, timeout=30_000)
        assert link.held.is_set()  # the metadata is still unanswered
        preview = viewport.session
        assert isinstance(preview, PreviewSeries)
        number = len(ct_files) // 2 + 1
        # Marked as a preview, with the instance's own number (its place is not known yet).
        assert preview.slice_label(0, 1) == f"Im #{number} (preview)"
        assert preview.notice().startswith(f"Preview — placing {len(ct_files)} images from "
                                           "Stroke hub")
        assert "opening" not in window.tabs.tabText(window.tabs.indexOf(viewer))
        viewport.grab()  # the overlay paints
        shown = viewport.image.image.copy()
        # Scrolling before the plan: nothing moves, nothing breaks, it says what is coming.
        viewport.scroll(5)
        viewport.keyPressEvent(QKeyEvent(QEvent.Type.KeyPress, Qt.Key.Key_End,
                                         Qt.KeyboardModifier.NoModifier))
        assert viewport.state.k == 0 and viewport.image.image is not None
        assert "Scrolling starts" in preview.notice()
        viewport.grab()

        link.release()
        qtbot.waitUntil(lambda: isinstance(viewport.session, RemoteLoadedSeries)
                        and viewport.image.image is not None, timeout=30_000)
        session = viewport.session
        remote = session.remote
        series = remote.series(session.series.series_instance_uid)
        # The volume took over at the preview's instance, with the same image.
        assert viewport.state.k == series.first
        assert series.sops[series.first] == preview.preview.sop_instance_uid
        assert np.array_equal(viewport.image.image, shown)
        assert session.series.series_instance_uid in viewer._thumbed
        qtbot.waitUntil(lambda: remote.finished and not window._openers, timeout=60_000)
        assert remote.download.singles.count(preview.preview.sop_instance_uid) == 1
    finally:
        link.release()
        window.close()
        link.close()
