"""Screenshots of the technologist's screens: import report, send dialog, browser columns, tag
viewer, transfers, open from hub.

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python docs/tech_screenshots.py [OUT]

Imports the shared CD test disc with one series' files removed (a disc burnt half way) plus the
malformed set, sends one study to a local Orthanc (no auth) so the send dialog has a history and
the browser a sent state, and searches that hub by patient name.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DATA = REPO.parent / "shared" / "data"

from PySide6.QtWidgets import QApplication  # noqa: E402

from app.net.devhub import HubConfig, OrthancHub, free_port  # noqa: E402
from app.settings import HubProfile  # noqa: E402
from docs.make_screenshots import save_widget, wait, wait_until, window_with_hubs  # noqa: E402


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    app = QApplication.instance() or QApplication(sys.argv)
    tmp = Path(tempfile.mkdtemp(prefix="relay-tech-shots-"))
    disc = tmp / "disc"
    shutil.copytree(DATA / "cd" / "pydicom-dicomdirtests", disc)
    shutil.rmtree(disc / "77654033" / "CT2")
    with OrthancHub(HubConfig(storage=tmp / "hub", http_port=free_port())) as hub:
        home = tmp / "home"
        window = window_with_hubs(home, [HubProfile(name="regional-hub", url=hub.url)],
                                  (1500, 900), lookback_days=3)
        wait(500)
        window.import_paths([str(disc), str(DATA / "malformed")])
        wait_until(lambda: window.report_dialog is not None, 120_000)
        save_widget(window.report_dialog, out, "import-report.png")
        window.report_dialog.reject()

        study = next(s for s in window.store.studies() if len(s.series) > 1)
        job = window.queue_send("regional-hub", study.study_instance_uid, None)
        wait_until(lambda: window.transfers.rows.get(job) is not None
                   and window.transfers.rows[job].state == "Verified", 60_000)
        wait(500)
        window.browser.select_study(study.study_instance_uid)
        window.resizeDocks([window.transfers_dock], [220], window.transfers_dock.orientation()
                           if hasattr(window.transfers_dock, "orientation") else
                           __import__("PySide6.QtCore").QtCore.Qt.Orientation.Vertical)
        wait(500)
        save_widget(window, out, "browser-columns.png")
        save_widget(window.transfers, out, "transfers.png")

        dialog = window.send_to_hub(study.study_instance_uid)
        wait(1500)  # thumbnails
        save_widget(dialog, out, "send-dialog.png")
        dialog.reject()

        series = study.series[0].series_instance_uid
        tags = window.manage.show_tags(series)
        tags.search.setText("0008,1140")
        wait(300)
        tags.search.setText("")
        save_widget(tags, out, "tag-viewer.png")
        tags.search.setText("window")
        save_widget(tags, out, "tag-viewer-search.png")
        tags.reject()

        from app.ui.remote_dialog import OpenRemoteDialog

        remote = OpenRemoteDialog(home, window)
        remote.name_edit.setText("carotid")
        remote.search()
        wait_until(lambda: remote.searches > 0, 30_000)
        remote.name_edit.setText("")
        remote.search()
        wait_until(lambda: remote.searches > 1, 30_000)
        save_widget(remote, out, "open-from-hub.png")
        remote.reject()
        window.close()
    del app


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "docs" / "screenshots")
