"""Screenshots of hub exchange (Transfers panel, Incoming list) with a real local Orthanc hub.

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python docs/exchange_screenshots.py [OUT]

Also called by make_screenshots.py. Starts an Orthanc (+ DICOMweb) on loopback with basic auth,
a spoke home that sends the shared real studies to it through a throttled link (so a transfer is
caught running, with speed and ETA) and to a second hub that is down; and a reading home whose
Incoming list shows what arrived. Secrets go to the encrypted-file fallback with a throwaway
passphrase (no keyring service under Xvfb).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DATA = REPO.parent / "shared" / "data"

os.environ.setdefault("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
os.environ.setdefault("RELAY_KEYRING", "encrypted-file")
os.environ.setdefault("RELAY_KEYRING_PASSPHRASE", "screenshots-only")

from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from app.importer import import_paths  # noqa: E402
from app.net.devhub import HubConfig, OrthancHub, free_port  # noqa: E402
from app.net.secrets import SecretStore  # noqa: E402
from app.settings import HubProfile, load_settings, save_settings  # noqa: E402
from app.store import Store  # noqa: E402
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
        finally:
            hub.stop()
    del app
    print(f"exchange screenshots in {out}")


if __name__ == "__main__":
    main()
