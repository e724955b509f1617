"""Help -> User guide (docs/user-guide.md, shown with its screenshots, offline) and
Help -> About (the version from :data:`app.__version__`, the one place it is written)."""

from __future__ import annotations

from PySide6.QtCore import QUrl
from PySide6.QtWidgets import QDialog, QMessageBox, QTextBrowser, QVBoxLayout, QWidget

from app import __version__
from app.resources import docs_path

GUIDE = "user-guide.md"


class GuideDialog(QDialog):
    """The user guide, rendered from its Markdown (images from docs/screenshots)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Relay user guide")
        self.resize(980, 760)
        self.browser = QTextBrowser(self)
        self.browser.setOpenExternalLinks(True)
        path = docs_path(GUIDE)
        self.browser.setSearchPaths([str(path.parent)])
        if path.is_file():
            self.browser.document().setBaseUrl(QUrl.fromLocalFile(str(path)))
            self.browser.setMarkdown(path.read_text(encoding="utf-8"))
        else:
            self.browser.setPlainText(f"The user guide is missing from this installation "
                                      f"({path}).")
        layout = QVBoxLayout(self)
        layout.addWidget(self.browser)


def about_text() -> str:
    return (f"<h3>Relay {__version__}</h3>"
            "<p>Telestroke image exchange: import outside media, send to the hub or a PACS, "
            "read CT, CTA and MR fast.</p>"
            "<p>Not a medical device unless your site has qualified it as one.</p>"
            f"<p>Licence: BSD-3-Clause. DICOM Conformance Statement: "
            f"{docs_path('conformance-statement.md')}</p>")


def show_about(parent: QWidget | None) -> QMessageBox:
    box = QMessageBox(QMessageBox.Icon.Information, "About Relay", about_text(),
                      QMessageBox.StandardButton.Ok, parent)
    box.show()
    return box
