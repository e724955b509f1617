"""Screenshots of hub exchange (Transfers, Incoming, reading from a hub) with a real local hub.

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python docs/exchange_screenshots.py [OUT]

Also called by make_screenshots.py. Starts an Orthanc (+ DICOMweb) on loopback with basic auth,
a spoke home that sends the shared real studies to it through a throttled link (so a transfer is
caught running, with speed and ETA) and to a second hub that is down; and a reading home whose
Incoming list shows what arrived; and a third home that reads the head CT, only on the hub, through
a slow link while it downloads (the first slice shown, the series strip counting what arrived, a
second viewport on a slice still coming). Secrets go to the encrypted-file fallback with a
throwaway passphrase (no keyring service under Xvfb).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DATA = REPO.parent / "shared" / "data"

os.environ.setdefault("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
os.environ.setdefault("RELAY_KEYRING", "encrypted-file")
os.environ.setdefault("RELAY_KEYRING_PASSPHRASE", "screenshots-only")

import numpy as np  # noqa: E402
from PySide6.QtCore import QPointF, Qt  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from app.imports.importer import import_paths  # noqa: E402
from app.net.devhub import HubConfig, OrthancHub, free_port  # noqa: E402
from app.net.secrets import SecretStore  # noqa: E402
from app.settings import HubProfile, load_settings, save_settings  # noqa: E402
from app.store.local import Store  # noqa: E402
from app.ui.main_window import MainWindow  # noqa: E402
from docs.make_screenshots import wait, wait_until  # noqa: E402
from tests.proxies import SlowLink  # noqa: E402

USER, PASSWORD = "relay", "screenshot-hub-pw"


def configure(home: Path, hubs: dict[str, str], **incoming) -> None:
    settings = load_settings(home)
    settings.hubs = [HubProfile(name=n, url=u, auth="basic", user=USER) for n, u in hubs.items()]
    settings.transfer.retry_initial_seconds = 5
    settings.transfer.retry_max_seconds = 30
    settings.incoming.lookback_days = 0
    for key, value in incoming.items():
        setattr(settings.incoming, key, value)
    save_settings(home, settings)
    secrets = SecretStore(home, settings.secrets)
    for name in hubs:
        secrets.set(name, PASSWORD)


def by_description(store: Store) -> dict[str, str]:
    return {s.study_description: s.study_instance_uid for s in store.studies()}


def job_state(window: MainWindow, job_id: str) -> str:
    return next((j.state for j in window.queue_runner().jobs() if j.id == job_id), "")


def transfers_shot(tmp: Path, hub: OrthancHub, out: Path) -> None:
    home = tmp / "spoke"
    home.mkdir()
    store = Store(home)
    import_paths(store, [str(DATA / "ct-head"), str(DATA / "mr-brain"),
                         str(DATA / "cd" / "pydicom-dicomdirtests")])
    link = SlowLink(hub.config.http_port, rate=6_000_000)
    configure(home, {"stroke-centre": link.url, "backup-pacs": "http://127.0.0.1:9/dicom-web"})
    studies = by_description(store)
    window = MainWindow(store)
    window.resize(1600, 1000)
    window.show()
    wait(300)
    try:
        first = window.queue_send("stroke-centre", studies["d2n_Philips_3T_R571"], None)
        wait_until(lambda: job_state(window, first) in ("verified", "failed"), 300_000)
        window.queue_send("backup-pacs", studies["Carotids"], None)
        window.queue_send("stroke-centre", studies["Carotids"], None)
        big = window.queue_send("stroke-centre", studies["Visible Human Male"], None)
        window.resizeDocks([window.transfers_dock], [300], Qt.Orientation.Vertical)
        wait_until(lambda: (window.transfers.rows.get(big) is not None
                            and window.transfers.rows[big].done > 0.35
                            * max(1, window.transfers.rows[big].total)), 300_000)
        window.transfers.select_job(big)
        wait(700)
        window.grab().save(str(out / "transfers.png"))
        wait_until(lambda: job_state(window, big) in ("verified", "failed"), 600_000)
    finally:
        window.close()
        link.close()


def incoming_shot(tmp: Path, hub: OrthancHub, out: Path) -> None:
    home = tmp / "reader"
    home.mkdir()
    configure(home, {"stroke-centre": hub.url}, interval_seconds=10)
    window = MainWindow(Store(home))
    window.resize(1600, 1000)
    window.show()
    incoming = window.incoming
    window.tabs.setCurrentWidget(incoming)
    wait_until(lambda: incoming.table.rowCount() >= 2, 60_000)
    uid = min(incoming.studies.values(), key=lambda s: s.instances).study_uid
    incoming.select("stroke-centre", uid)
    job = incoming.fetch_selected()
    wait_until(lambda: incoming.status_of(uid) == "Local", 120_000)
    assert job is not None
    incoming.select("stroke-centre", uid)
    wait(700)
    window.grab().save(str(out / "incoming.png"))
    window.close()


def longest_run(flags: np.ndarray) -> tuple[int, int]:
    """(first, last + 1) of the longest run of True in ``flags``."""
    best, start = (0, 0), None
    for i, flag in enumerate([*flags, False]):
        if flag and start is None:
            start = i
        elif not flag and start is not None:
            best = max(best, (start, i), key=lambda r: r[1] - r[0])
            start = None
    return best


def head_box(viewport) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) in mm of the head on the viewport's slice: the longest runs of rows
    and columns with more than a few pixels denser than fat (not the table below the head)."""
    volume = viewport.volume
    k = viewport.state.k
    mask = volume.array[k] * float(volume.slope[k]) + float(volume.intercept[k]) > -200
    c0, c1 = longest_run(mask.sum(axis=0) > 8)
    r0, r1 = longest_run(mask.sum(axis=1) > 8)
    _, dy, dx = volume.spacing
    return c0 * dx, r0 * dy, c1 * dx, r1 * dy


def zoom_to(viewport, box: tuple[float, float, float, float], fill: float = 0.65) -> None:
    """Zoom the viewport in on ``box`` (mm) as a reader would, the box filling ``fill`` of it."""
    viewport.reset_view()
    x0, y0, x1, y1 = box
    (vx0, vx1), (vy0, vy1) = viewport.view.viewRange()
    factor = max((x1 - x0) / (vx1 - vx0), (y1 - y0) / (vy1 - vy0)) / fill
    center = QPointF((x0 + x1) / 2, (y0 + y1) / 2)
    viewport.view.scaleBy((factor, factor))  # about the view's centre: then move onto the box
    (vx0, vx1), (vy0, vy1) = viewport.view.viewRange()
    viewport.view.translateBy(x=center.x() - (vx0 + vx1) / 2, y=center.y() - (vy0 + vy1) / 2)


def remote_shot(tmp: Path, hub: OrthancHub, study_uid: str, out: Path) -> None:
    """The head CT, only on the hub, read through a slow link while it downloads."""
    home = tmp / "remote-reader"
    home.mkdir()
    link = SlowLink(hub.config.http_port, rate=3_000_000)  # ~35 s for the 102 MB head CT
    configure(home, {"stroke-centre": link.url})
    window = MainWindow(Store(home))
    window.resize(1600, 1000)
    window.show()
    wait(300)
    try:
        started = time.monotonic()
        viewer = window.open_remote_study("stroke-centre", study_uid)
        first = viewer.viewports[0]
        # a preview of one image comes first; the study is planned (viewer.remote) after it,
        # and the viewport then shows the real series
        wait_until(lambda: viewer.remote is not None and first.volume is not None
                   and first.session in viewer.sessions.values()
                   and first.volume.ready[first.state.k], 120_000)
        remote = viewer.remote
        series_uid = first.session.series.series_instance_uid
        n = first.n_slices
        # let some of the study come in (the strip counts it), not most of it
        wait_until(lambda: remote.arrival(series_uid)[0] >= 0.3 * n, 120_000)
        viewer.link_action.setChecked(False)  # the second viewport scrolls on its own
        viewer.set_layout("1×2")
        second = viewer.viewports[1]
        viewer.show_series(series_uid, second)
        viewer._set_active(first)
        wait_until(lambda: second.volume is not None, 10_000)
        box = head_box(first)
        for viewport in (first, second):
            viewport.set_window(40, 80)
        wait(300)  # the layout settled: zoom on the final viewport sizes
        for viewport in (first, second):
            zoom_to(viewport, box)
        # the second viewport goes up to the brain, to a slice that has not arrived yet
        coming = [k for k in range(n) if remote.state(series_uid, k) == "coming"]
        target = min(coming, key=lambda k: abs(k - int(0.72 * n)))
        second.show_slice(target)
        shot = window.grab()  # at once: the slice now asked for first comes in a moment
        state = remote.state(series_uid, target)
        shot.save(str(out / "remote-reading.png"))
        print(f"remote-reading.png: slice {first.state.k + 1} shown, slice {target + 1} "
              f"{state} at the grab, "
              f"{remote.arrival(series_uid)} arrived, zoom {first.zoom_factor():.2f}")
        wait_until(lambda: remote.finished, 300_000)
        print(f"remote-reading: the download took {time.monotonic() - started:.0f} s")
    finally:
        window.close()
        link.close()


def main(out: Path | None = None) -> None:
    out = out or Path(sys.argv[1] if len(sys.argv) > 1 else REPO / "docs" / "screenshots")
    out.mkdir(parents=True, exist_ok=True)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        hub = OrthancHub(HubConfig(storage=tmp / "hub", http_port=free_port(),
                                   users={USER: PASSWORD})).start()
        try:
            transfers_shot(tmp, hub, out)
            incoming_shot(tmp, hub, out)
            head_ct = by_description(Store(tmp / "spoke"))["Visible Human Male"]
            remote_shot(tmp, hub, head_ct, out)
        finally:
            hub.stop()
    del app
    print(f"exchange screenshots in {out}")


if __name__ == "__main__":
    main()
