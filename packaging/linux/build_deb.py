"""Build the Debian package of Relay from the PyInstaller bundle (``./setup.sh bundle`` runs it).

    python3 packaging/linux/build_deb.py [--dist dist/relay] [--out dist]

The package installs the bundle under ``/opt/relay``, ``/usr/bin/relay`` (a link to it), a desktop
entry, the icon (SVG and PNG sizes in the hicolor theme) and a MIME definition for DICOM files and
DICOMDIRs; the desktop entry also takes folders, so a file manager offers "Open with Relay" for a
.dcm file, a DICOMDIR and a CD or exam folder. The desktop and MIME databases are refreshed by
dpkg's own triggers (desktop-file-utils, shared-mime-info), so there are no maintainer scripts.
Prints the path of the .deb. Standard library only: it runs with the system Python.
"""

from __future__ import annotations

import argparse
import ast
import email.utils
import gzip
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
ICON_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)

#: Libraries the bundle takes from the system (PyInstaller leaves out glibc, OpenGL/EGL, X11/xcb,
#: fontconfig/freetype and D-Bus by design): the Debian packages that carry them.
DEPENDS = ("libc6 (>= 2.36), libgl1, libegl1, libglx0, libopengl0, libx11-6, libx11-xcb1, libxcb1, "
           "libxext6, libxrender1, libxkbcommon0, libxkbcommon-x11-0, libxcb-cursor0, "
           "libxcb-icccm4, libxcb-image0, libxcb-keysyms1, libxcb-randr0, libxcb-render-util0, "
           "libxcb-shape0, libxcb-xfixes0, libxcb-xinerama0, libxcb-xkb1, libfontconfig1, "
           "libfreetype6, libdbus-1-3, libglib2.0-0 | libglib2.0-0t64")
#: Who signs the package: a site that rebuilds Relay puts its own address here.
MAINTAINER = os.environ.get("RELAY_DEB_MAINTAINER", "Relay developers <relay@example.org>")
#: Debian revision of this packaging (the upstream version is app.__version__).
REVISION = "1"
#: A fixed date for the changelog entry, so the package is the same from the same sources.
SOURCE_DATE = float(os.environ.get("SOURCE_DATE_EPOCH", "1764547200"))  # 2025-12-01
RECOMMENDS = "orthanc, orthanc-dicomweb, desktop-file-utils, shared-mime-info"


def version() -> str:
    """Relay's version, from app/__init__.py (the one place it is written)."""
    tree = ast.parse((ROOT / "app" / "__init__.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "__version__":
            return str(ast.literal_eval(node.value))
    raise SystemExit("build_deb: __version__ not found in app/__init__.py")


def architecture() -> str:
    return subprocess.run(["dpkg", "--print-architecture"], check=True, capture_output=True,
                          text=True).stdout.strip()


def control(ver: str, arch: str, installed_kb: int) -> str:
    return (f"Package: relay\nVersion: {ver}-{REVISION}\nArchitecture: {arch}\n"
            f"Maintainer: {MAINTAINER}\n"
            f"Installed-Size: {installed_kb}\nDepends: {DEPENDS}\nRecommends: {RECOMMENDS}\n"
            "Section: science\nPriority: optional\nHomepage: https://localhost.localdomain/relay\n"
            "Description: telestroke image exchange and DICOM viewer\n"
            " Relay imports outside CDs, USB sticks, folders and zips, checks them and\n"
            " sends them to a stroke hub (DICOMweb) or a PACS (DIMSE); at the hub it\n"
            " opens studies while they download and reads CT, CTA and MR with stroke\n"
            " windows, MPR, thick-slab MIP and 3D. It is also a DICOM node (C-STORE,\n"
            " C-FIND, C-GET, C-MOVE).\n"
            " .\n"
            " This package is a self-contained bundle (its own Python, Qt and VTK)\n"
            " installed in /opt/relay.\n")


def gzip_to(src: bytes, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    with gzip.GzipFile(dest, "wb", compresslevel=9, mtime=0) as f:
        f.write(src)


def manual_page(ver: str) -> bytes:
    return (f'.TH RELAY 1 "" "relay {ver}" "User Commands"\n'
            ".SH NAME\nrelay \\- telestroke image exchange and DICOM viewer\n"
            ".SH SYNOPSIS\n.B relay\n[\\fIPATH\\fR...]\n.br\n.B relay\n\\fICOMMAND\\fR "
            "[\\fIOPTIONS\\fR] [\\-\\-json]\n"
            ".SH DESCRIPTION\nWithout a command, \\fBrelay\\fR opens the window; with paths "
            "(folders, DICOMDIR media, zips, DICOM files) it imports them and opens the first "
            "study. \\fBrelay \\-\\-help\\fR lists the commands (import, ls, send, fetch, "
            "retention, purge, pacs, node, listen, ...).\n"
            ".SH FILES\nThe data dir (store, settings, queue, audit log) is "
            "\\fI~/.local/share/Relay\\fR unless \\fB\\-\\-home\\fR or \\fBRELAY_HOME\\fR say "
            "otherwise. The user guide is in \\fI/opt/relay/_internal/docs/user-guide.md\\fR.\n"
            ).encode()


def debian_changelog(ver: str) -> bytes:
    """The Debian changelog of this packaging (one entry; Relay's own history is changelog.gz)."""
    when = email.utils.formatdate(SOURCE_DATE, usegmt=False)
    return (f"relay ({ver}-{REVISION}) unstable; urgency=medium\n\n"
            "  * Relay's PyInstaller bundle packaged for Debian (see changelog.gz).\n\n"
            f" -- {MAINTAINER}  {when}\n").encode()


def stage(bundle: Path, pkg: Path, ver: str) -> None:
    """Lay the package's files out under ``pkg``."""
    opt = pkg / "opt" / "relay"
    shutil.copytree(bundle, opt, symlinks=True)
    for path in opt.rglob("*"):  # sane modes: programs 0755, libraries and data 0644
        if path.is_symlink():
            continue
        program = path == opt / "relay" or (os.access(path, os.X_OK) and ".so" not in path.name)
        path.chmod(0o755 if path.is_dir() or program else 0o644)
    usr = pkg / "usr"
    (usr / "bin").mkdir(parents=True)
    (usr / "bin" / "relay").symlink_to("/opt/relay/relay")
    share = usr / "share"
    (share / "applications").mkdir(parents=True)
    shutil.copy(HERE / "relay.desktop", share / "applications" / "relay.desktop")
    (share / "mime" / "packages").mkdir(parents=True)
    shutil.copy(HERE / "relay-mime.xml", share / "mime" / "packages" / "relay.xml")
    icons = ROOT / "resources" / "icons"
    for size in ICON_SIZES:
        dest = share / "icons" / "hicolor" / f"{size}x{size}" / "apps"
        dest.mkdir(parents=True)
        shutil.copy(icons / f"relay-{size}.png", dest / "relay.png")
    scalable = share / "icons" / "hicolor" / "scalable" / "apps"
    scalable.mkdir(parents=True)
    shutil.copy(icons / "relay.svg", scalable / "relay.svg")
    doc = share / "doc" / "relay"
    doc.mkdir(parents=True)
    shutil.copy(HERE / "copyright", doc / "copyright")
    gzip_to((ROOT / "CHANGELOG.md").read_bytes(), doc / "changelog.gz")
    gzip_to(debian_changelog(ver), doc / "changelog.Debian.gz")
    gzip_to(manual_page(ver), share / "man" / "man1" / "relay.1.gz")
    overrides = share / "lintian" / "overrides"
    overrides.mkdir(parents=True)
    shutil.copy(HERE / "lintian-overrides", overrides / "relay")
    for path in [pkg / "usr", *(pkg / "usr").rglob("*")]:
        if not path.is_symlink():
            path.chmod(0o755 if path.is_dir() else 0o644)


def size_kb(folder: Path) -> int:
    return sum(p.lstat().st_size for p in folder.rglob("*") if not p.is_dir()) // 1024 + 1


def build(bundle: Path, out: Path) -> Path:
    if not (bundle / "relay").is_file():
        raise SystemExit(f"build_deb: no bundle at {bundle} (run `./setup.sh bundle`)")
    ver, arch = version(), architecture()
    out.mkdir(parents=True, exist_ok=True)
    deb = out / f"relay_{ver}-{REVISION}_{arch}.deb"
    old_umask = os.umask(0o022)  # the package's modes are set here, not by the caller's umask
    try:
        with tempfile.TemporaryDirectory(dir=out) as tmp:
            pkg = Path(tmp) / "relay"
            stage(bundle, pkg, ver)
            for folder in (pkg, pkg / "opt"):
                folder.chmod(0o755)
            (pkg / "DEBIAN").mkdir(mode=0o755)
            (pkg / "DEBIAN").chmod(0o755)
            (pkg / "DEBIAN" / "control").write_text(control(ver, arch, size_kb(pkg)))
            (pkg / "DEBIAN" / "control").chmod(0o644)
            subprocess.run(["dpkg-deb", "--root-owner-group", "-Zgzip", "-z6", "--build",
                            str(pkg), str(deb)], check=True, stdout=subprocess.DEVNULL)
    finally:
        os.umask(old_umask)
    return deb


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dist", type=Path, default=ROOT / "dist" / "relay")
    parser.add_argument("--out", type=Path, default=ROOT / "dist")
    args = parser.parse_args(argv)
    deb = build(args.dist.resolve(), args.out.resolve())
    sys.stdout.write(f"{deb}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
