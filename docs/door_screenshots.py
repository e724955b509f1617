"""The Timeline panel of a stroke study's whole way: scanner, spoke, hub, hub workstation.

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python docs/door_screenshots.py [OUT]

A scanner (pynetdicom C-STORE, CT_ED_1) sends a generated head CT described CODE STROKE at
20 slices per second, each slice stamped with its acquisition time as it leaves, to a spoke
Relay's node; the spoke's shipped stroke rule forwards it as it arrives to an Orthanc hub
(DICOMweb, loopback) and verifies it there. A hub workstation's window notices the study in
Incoming and opens it while the rest still comes (and is fetched as it reaches the hub); its
Timeline panel, reading the spoke's audit record beside its own
(``relay timeline --with``), shows every stage and the door-to-image figure.
"""

from __future__ import annotations

import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pynetdicom import build_context  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from app.net.devhub import HubConfig, OrthancHub, free_port  # noqa: E402
from app.net.dimse.association import Endpoint, associate, make_ae  # noqa: E402
from app.net.dimse.listener import Listener  # noqa: E402
from app.net.dimse.node import NodeSettings  # noqa: E402
from app.net.forward import Forwarder  # noqa: E402
from app.settings import HubProfile  # noqa: E402
from app.store.local import Store  # noqa: E402
from app.ui.timeline_panel import TimelineDialog  # noqa: E402
from app.workflow import audit  # noqa: E402
from bench.bench_door_to_image import CT_IMAGE, scanner_datasets, spoke_home  # noqa: E402
from docs.make_screenshots import wait, wait_until, window_with_hubs  # noqa: E402

SLICES = 60
RATE = 20.0  # slices per second, a scanner's pace


def _scan(datasets, endpoint: Endpoint) -> None:
    syntaxes = sorted({str(ds.file_meta.TransferSyntaxUID) for ds in datasets})
    assoc = associate(make_ae("CT_ED_1", requested=[build_context(CT_IMAGE, syntaxes)]),
                      endpoint)
    start = time.monotonic()
    for k, ds in enumerate(datasets):
        time.sleep(max(0.0, start + k / RATE - time.monotonic()))
        ds.AcquisitionDateTime = datetime.now().astimezone().strftime("%Y%m%d%H%M%S.%f%z")
        assoc.send_c_store(ds)
    assoc.release()


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    app = QApplication.instance() or QApplication(sys.argv)
    tmp = Path(tempfile.mkdtemp(prefix="relay-door-shots-"))
    datasets = scanner_datasets(tmp / "scanner", SLICES)
    for ds in datasets:
        ds.StationName = "CT_ED_1"  # the emergency department's scanner
    study_uid = str(datasets[0].StudyInstanceUID)
    with OrthancHub(HubConfig(storage=tmp / "hub", http_port=free_port())) as hub:
        spoke = spoke_home(tmp, hub.url, 16, 250, 0)
        spoke_store = Store(spoke)
        listener = Listener(spoke_store, NodeSettings(bind="127.0.0.1", port=free_port()))
        forwarder = Forwarder(spoke_store)
        forwarder.attach(listener)
        host, port = listener.start()

        home = tmp / "hub-workstation"
        window = window_with_hubs(home, [HubProfile(name="stroke-centre", url=hub.url)],
                                  (1600, 1000), quick_seconds=2.0)
        window.tabs.setCurrentWidget(window.incoming)
        wait(3000)  # the first (full) search: what is on the hub now is old
        scanner = threading.Thread(target=_scan, args=(datasets, Endpoint(host, port, "RELAY")))
        scanner.start()
        key = ("stroke-centre", study_uid)
        wait_until(lambda: key in window.incoming.studies, 60_000)
        viewer = window.open_remote_study("stroke-centre", study_uid)
        wait_until(lambda: any(e["event"] == "view" for e in audit.select(home,
                                                                         study_uid=study_uid)),
                   60_000)
        while scanner.is_alive():
            wait(200)
        forwarder.wait_idle(120)
        # what reached the hub after it was opened is fetched as Incoming sees it
        wait_until(lambda: window.store.study(study_uid) is not None
                   and window.store.study(study_uid).instance_count == SLICES, 120_000)
        wait_until(lambda: not window.remote.openers, 120_000)
        listener.stop(grace=5.0)
        forwarder.close()
        del viewer

        dialog = TimelineDialog(window.store, study_uid, window, extra_homes=[spoke])
        wait_until(lambda: dialog.timeline is not None
                   and dialog.timeline.stage("verified") is not None, 30_000)
        dialog.resize(1000, 470)
        dialog.show()
        wait(800)
        dialog.grab().save(str(out / "door-timeline-stroke.png"))
        print("wrote", out / "door-timeline-stroke.png")
        dialog.close()
        window.close()
    del app


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "docs" / "screenshots")
