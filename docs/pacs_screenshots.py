"""Screenshots of the hospital's PACS in the window, with a real Orthanc as the PACS.

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python docs/pacs_screenshots.py [OUT]

Starts an Orthanc with its DICOM port on loopback (AE title ORTHANC, Relay known to it as a
DICOM node), fills it with dcmtk's ``storescu`` from the shared head CTs and brain MR, and opens
a window whose node receives while it is open. Then: Settings → PACS and node… with the PACS
tested (C-ECHO); Query / Retrieve with the PACS's studies, what is here of each (the MR's
perfusion series was imported before) and the selected study's series; the study retrieved
(C-GET) and verified in Transfers; a study a scanner (``storescu`` calling as CT_SCANNER) sent
to Relay's node, in Incoming.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DATA = REPO.parent / "shared" / "data"

import pydicom  # noqa: E402
from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from app.imports.importer import import_paths  # noqa: E402
from app.net.devhub import HubConfig, OrthancHub, free_port  # noqa: E402
from app.settings import HubProfile, load_settings, save_settings  # noqa: E402
from app.store.local import Store  # noqa: E402
from app.ui.main_window import MainWindow  # noqa: E402
from docs.make_screenshots import save_widget, wait, wait_until  # noqa: E402

PACS_AE = "ORTHANC"
MEDIA_DIRECTORY = "1.2.840.10008.1.3.10"
#: What the PACS holds: folders of the shared data (each file one instance).
ON_PACS = ("ct-head/visible-human-male-head-1mm", "ct-head/philips-ingenuity-headphantom-std-1mm",
           "mr-brain")
#: What is here already of a study on the PACS (its Here column reads "40 of 210").
IMPORTED = "mr-brain/philips-elition-3dpcasl-perfusion"
#: What the scanner sends to Relay's node.
FROM_SCANNER = "ct-head/ge-hispeed-human-gantry-tilt"


def _is_instance(path: Path) -> bool:
    """A DICOM file holding an instance (not a DICOMDIR, however it is named)."""
    try:
        meta = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["SOPClassUID"])
    except Exception:  # not DICOM
        return False
    return str(meta.get("SOPClassUID", "")) not in ("", MEDIA_DIRECTORY)


def _storescu(calling: str, called: str, port: int, folder: Path) -> None:
    files = [str(p) for p in sorted(folder.rglob("*")) if p.is_file() and _is_instance(p)]
    subprocess.run(["storescu", "-aet", calling, "-aec", called, "127.0.0.1", str(port),
                    *files], check=True, timeout=600, capture_output=True,
                   env={"TCP_NODELAY": "1", "PATH": "/usr/bin:/bin"})


def _port(usual: int) -> int:
    """The usual port when it is free here (what a reader of the guide would see), else any."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", usual))
        except OSError:
            return free_port()
    return usual


def _row_of(table, column: int, text: str) -> int:
    return next(r for r in range(table.rowCount()) if text in table.item(r, column).text())


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    app = QApplication.instance() or QApplication(sys.argv)
    tmp = Path(tempfile.mkdtemp(prefix="relay-pacs-shots-"))
    node_port, dicom_port = _port(11112), _port(4242)
    relay_node = {"AET": "RELAY", "Host": "127.0.0.1", "Port": node_port}
    config = HubConfig(storage=tmp / "pacs", http_port=free_port(), dicom_port=dicom_port,
                       dicom_aet=PACS_AE, modalities={"relay": relay_node})
    with OrthancHub(config):
        for folder in ON_PACS:
            _storescu("MODALITY", PACS_AE, dicom_port, DATA / folder)
        home = tmp / "home"
        home.mkdir()
        settings = load_settings(home)
        settings.hubs = [HubProfile(name="orthanc", kind="dimse", host="127.0.0.1",
                                    port=dicom_port, ae_title=PACS_AE)]
        settings.node.listen = True
        settings.node.bind = "127.0.0.1"
        settings.node.port = node_port
        settings.node.allowed_callers = ["CT_SCANNER", PACS_AE]
        save_settings(home, settings)
        import_paths(Store(home), [str(DATA / IMPORTED)])
        window = MainWindow(Store(home))
        window.resize(1600, 1000)
        window.show()
        wait(500)
        assert window.node.listener is not None, "the node did not start"

        dialog = window.show_node_dialog()
        form = dialog.pacs_widget
        form.pacs_list.setCurrentRow(0)
        form.last_check = None
        form.test_pacs()
        wait_until(lambda: form.last_check is not None, 60_000)
        assert form.last_check is not None and form.last_check.ok, form.result_label.text()
        save_widget(dialog, out, "settings-pacs-and-node.png")
        dialog.close()

        query = window.query_retrieve()
        query.resize(1250, 720)
        query.search_button.click()
        wait_until(lambda: query.searches == 1, 60_000)
        columns = [query.table.horizontalHeaderItem(c).text()
                   for c in range(query.table.columnCount())]
        row = _row_of(query.table, columns.index("Description"), "Visible Human")
        query.table.selectRow(row)
        wait_until(lambda: query.series_table.rowCount() > 0
                   and "searching" not in query.series_label.text(), 30_000)
        here = columns.index("Here")
        mr = _row_of(query.table, columns.index("Modalities"), "MR")
        assert query.table.item(mr, here).text() == "40 of 210", query.table.item(mr, here).text()
        shown = query.table.viewport().width()
        assert sum(query.table.columnWidth(c) for c in range(len(columns))) <= shown, \
            "a column is out of view"
        save_widget(query, out, "pacs-query-retrieve.png")

        query.retrieve_button.click()
        job = window.transfers.selected_job()
        assert job is not None
        wait_until(lambda: window.transfers.rows.get(job) is not None
                   and window.transfers.rows[job].state == "Verified", 120_000)
        query.close()
        wait(500)
        window.resizeDocks([window.transfers_dock], [230], Qt.Orientation.Vertical)
        save_widget(window, out, "pacs-retrieved.png")

        _storescu("CT_SCANNER", "RELAY", node_port, DATA / FROM_SCANNER)
        wait_until(lambda: any(key[0].endswith("CT_SCANNER") for key in window.incoming.studies),
                   30_000)
        window.transfers_dock.hide()
        window.tabs.setCurrentWidget(window.incoming)
        wait(500)
        save_widget(window, out, "incoming-received-by-node.png")
        window.close()
    del app


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "docs" / "screenshots")
