"""Stroke code from the hub: the stroke layout with the prior, against the remote-open figures.

    PYTHONPATH=. python bench/bench_stroke.py [--slices 160] [--rate 10]

Generates two head-CT studies of one patient (today's plain CT + CTA, and a prior plain CT;
512x512, ``app.dicom.synth``), sends them to a local Orthanc (loopback, basic auth, stopped by
PID) and opens today's study from the hub in the window (offscreen Qt), over loopback and over
a throttled link (``--rate`` MB/s shared by all connections). Measured side by side in one run,
each into a fresh home:

* the full download of today's study (``relay fetch``'s path);
* remote open: the first image drawn (what ``bench_remote.py`` measures);
* the stroke layout complete: today's plain CT in both windows and the prior beside it drawn
  (prior search on the hub, the prior read from the hub, slice in view first), and the CTA's
  axial and coronal MIP slabs under them drawn (from the part of the CTA read so far).

Prints the times and the layout's time as a multiple of the first image and as a share of the
full download.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
os.environ.setdefault("RELAY_KEYRING", "encrypted-file")
os.environ.setdefault("RELAY_KEYRING_PASSPHRASE", "bench-passphrase-not-secret")

from bench_remote import PASSWORD, USER, _client, full_download  # noqa: E402

from app.imports.importer import import_paths  # noqa: E402
from app.net import cryptfile  # noqa: E402
from app.net.devhub import HubConfig, OrthancHub, free_port  # noqa: E402
from app.net.queue import TransferQueue  # noqa: E402
from app.net.secrets import SecretStore  # noqa: E402
from app.net.send import run_send, send_job  # noqa: E402
from app.settings import HubProfile, TransferSettings, load_settings, save_settings  # noqa: E402
from app.store.local import Store  # noqa: E402
from app.tasks import Progress  # noqa: E402
from tests.proxies import SlowLink  # noqa: E402
from tests.workflow.stroke_studies import stroke_study  # noqa: E402


def stroke_open(url: str, study: str, home: Path) -> tuple[float, float, float]:
    """Seconds to the first image drawn, to the plain CT and the prior drawn, to the whole
    stroke screen drawn (with the CTA's slabs)."""
    from app.ui.main import application
    from app.ui.main_window import MainWindow

    home.mkdir(parents=True, exist_ok=True)
    settings = load_settings(home)
    settings.hubs = [HubProfile(name="bench", url=url, auth="basic", user=USER)]
    save_settings(home, settings)
    SecretStore(home, settings.secrets).set("bench", PASSWORD)
    cryptfile._KEYS.clear()
    app = application()
    window = MainWindow(Store(home))
    window.resize(1500, 800)
    window.show()
    settle = time.monotonic() + 10
    while window.incoming.polls == 0 and time.monotonic() < settle:
        app.processEvents()
        time.sleep(0.005)
    started = time.monotonic()
    viewer = window.open_remote_study("bench", study)
    first = plain = layout = None
    deadline = started + 600
    while time.monotonic() < deadline and layout is None:
        app.processEvents()
        shown = viewer.visible_viewports()
        if first is None and shown[0].volume is not None and shown[0].image.image is not None:
            first = time.monotonic() - started
        if (plain is None and len(shown) == 3 and shown[2].session is not None
                and shown[2].session.study.study_instance_uid != study
                and all(v.image.image is not None for v in shown)):
            plain = time.monotonic() - started
        slabs = viewer.slabs
        if plain is not None and slabs is not None and all(
                slabs.views[p].shown is not None for p in slabs.planes):
            layout = time.monotonic() - started
        time.sleep(0.001)
    assert first is not None and plain is not None and layout is not None, \
        "the stroke layout was not drawn"
    for v in window.viewers.values():
        v.close_all()
    window.close()
    app.processEvents()
    return first, plain, layout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--slices", type=int, default=160)
    parser.add_argument("--rate", type=float, default=10.0, help="throttled link, MB/s")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="relay-bench-stroke-"))
    hub = OrthancHub(HubConfig(storage=root / "hub", http_port=free_port(),
                               users={USER: PASSWORD})).start()
    slow = SlowLink(hub.config.http_port, args.rate * 1e6, shared=True)
    try:
        today = stroke_study(root / "today", date="20261201", seed=91, size=512,
                             slices=args.slices, pixel_spacing=0.45)
        prior = stroke_study(root / "prior", date="20250310", seed=92, cta=False, size=512,
                             slices=args.slices, pixel_spacing=0.45, infarct=False)
        spoke = Store(root / "spoke")
        report = import_paths(spoke, [str(p) for p in today + prior], Progress("bench"))
        queue = TransferQueue(root / "spoke")
        for uid in report.study_uids:
            sent = run_send(spoke, queue, _client(hub.url), send_job(spoke, queue, "bench",
                                                                     uid).id, TransferSettings())
            assert sent.state == "verified", sent
        study = max(spoke.studies(), key=lambda s: s.study_date).study_instance_uid
        mb = sum(p.stat().st_size for p in today) / 1e6
        print(f"today: plain CT + CTA, 2 x {args.slices} slices 512x512, {mb:.0f} MB; prior: "
              f"{args.slices} slices; hub: Orthanc on loopback; cpus: {os.cpu_count()}")
        for n, (name, url) in enumerate((("loopback", hub.url),
                                         (f"throttled {args.rate:g} MB/s", slow.url))):
            full = full_download(url, study, root / f"full-{n}")
            first, plain, layout = stroke_open(url, study, root / f"open-{n}")
            print(f"\n[{name}]")
            print(f"  full download of today's study   {full:7.2f} s")
            print(f"  remote open, first image drawn   {first:7.3f} s  "
                  f"{100 * first / full:5.1f} % of the full download")
            print(f"  plain CT and the prior drawn     {plain:7.3f} s  "
                  f"{100 * plain / full:5.1f} % of the full download, "
                  f"{plain / first:.1f}x the first image")
            print(f"  + the CTA slabs: whole screen    {layout:7.3f} s  "
                  f"{100 * layout / full:5.1f} % of the full download, "
                  f"{layout / first:.1f}x the first image")
    finally:
        slow.close()
        hub.stop()
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
