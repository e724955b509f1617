"""Render resources/icons/relay.svg into the PNG sizes desktops ask for, a Windows .ico and a
macOS .icns (``python packaging/make_icons.py``; the results are committed, so a build needs
neither Qt's SVG module nor this script).

PNG: 16, 24, 32, 48, 64, 128, 256 and 512 px (freedesktop hicolor theme sizes), rendered by Qt's
SVG renderer; the .ico (16-256) and .icns (16-512) are written by Pillow from the 512 px PNG.
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QImage, QPainter
from PySide6.QtSvg import QSvgRenderer

ICONS = Path(__file__).resolve().parent.parent / "resources" / "icons"
SIZES = (16, 24, 32, 48, 64, 128, 256, 512)


def render_png(svg: Path, size: int, out: Path) -> None:
    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise SystemExit(f"make_icons: {svg} is not a valid SVG")
    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter)
    painter.end()
    if not image.save(str(out)):
        raise SystemExit(f"make_icons: could not write {out}")


def main() -> int:
    QGuiApplication.instance() or QGuiApplication(sys.argv[:1])
    svg = ICONS / "relay.svg"
    for size in SIZES:
        render_png(svg, size, ICONS / f"relay-{size}.png")
    big = Image.open(ICONS / "relay-512.png")
    big.save(ICONS / "relay.ico", sizes=[(s, s) for s in (16, 24, 32, 48, 64, 128, 256)])
    big.save(ICONS / "relay.icns")
    sys.stdout.write(f"make_icons: {len(SIZES)} PNGs, relay.ico and relay.icns in {ICONS}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
