"""Remote open: the first image of a study that is only on the hub, against its whole download.

    PYTHONPATH=. python bench/bench_remote.py [--slices 400] [--rates 25,10] [--rounds 1]
                                              [--no-widget]

Generates a CT series (``app.dicom.synth``, 512x512, explicit VR little endian), sends it to a local
Orthanc (DICOMweb plugin, basic auth on, loopback only, stopped by PID) and then, over the
plain loopback link and over throttled links (a proxy in this script passing each of ``--rates``
MB/s, shared by all connections, like one WAN line; the first rate again with ``--rtt-ms`` of
round trip before each request), measures into fresh local stores:

* the full download: ``relay fetch``'s path (:class:`app.net.fetch.Download`), start to verified;
* remote open, core path: :class:`app.net.remote.RemoteStudy` from nothing (series listing)
  to the first image: the preview (the instance guessed to be in the middle, fetched, stored,
  indexed and decoded beside the series' WADO-RS metadata request, :mod:`app.net.preview`);
  and to the slice in view of the planned volume ready (metadata, volume allocated, the slice
  in view fetched first, or taken from the preview);
* remote open, widget path: ``MainWindow.open_remote_study`` (offscreen Qt) to the first image
  drawn in the viewport (the preview), and to the planned volume's slice drawn (the hub profile
  and its secret in the home, as a user would have; the window started and its Incoming list's
  first check of the hub done, as by the time anyone picks a study).

Prints each time (best of ``--rounds``) and the ratio first image / full download (target
<= 5 %).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
os.environ.setdefault("RELAY_KEYRING", "encrypted-file")
os.environ.setdefault("RELAY_KEYRING_PASSPHRASE", "bench-passphrase-not-secret")

from app.dicom.synth import SeriesSpec, generate_series  # noqa: E402
from app.imports.importer import import_paths  # noqa: E402
from app.net import cryptfile  # noqa: E402
from app.net.devhub import HubConfig, OrthancHub, free_port  # noqa: E402
from app.net.dicomweb import DicomWebClient  # noqa: E402
from app.net.fetch import Download  # noqa: E402
from app.net.http import HubSession  # noqa: E402
from app.net.queue import TransferQueue  # noqa: E402
from app.net.remote import RemoteStudy  # noqa: E402
from app.net.secrets import SecretStore  # noqa: E402
from app.net.send import run_send, send_job  # noqa: E402
from app.settings import HubProfile, TransferSettings, load_settings, save_settings  # noqa: E402
from app.store.local import Store  # noqa: E402
from tests.proxies import SlowLink  # noqa: E402

USER, PASSWORD = "bench", "bench-password"


def _client(url: str) -> DicomWebClient:
    profile = HubProfile(name="bench", url=url, auth="basic", user=USER)
    return DicomWebClient(HubSession(profile, PASSWORD, pool_size=8))


def full_download(url: str, study: str, home: Path) -> float:
    started = time.monotonic()
    store = Store(home)
    result = Download(store, TransferQueue(home), _client(url), "bench", study,
                      TransferSettings()).run()
    seconds = time.monotonic() - started
    assert result.state == "verified", result
    return seconds


def core_open(url: str, study: str, home: Path) -> tuple[float, float, float]:
    """(seconds to the first image decoded, to the planned volume's slice in view decoded, to
    the download verified). The first image is the preview, or the volume's slice when the
    plan came first."""
    started = time.monotonic()
    previewed: list[float] = []
    store = Store(home)
    client = _client(url)
    download = Download(store, TransferQueue(home), client, "bench", study, TransferSettings())
    remote = RemoteStudy(store, download, client)
    series = remote.open_series(preview=lambda _: previewed.append(time.monotonic()))
    series.loader.volume.wait(series.first, 300)
    planned = time.monotonic() - started
    first = min([planned, *(t - started for t in previewed)])
    result = remote.wait(600)
    total = time.monotonic() - started
    assert result is not None and result.state == "verified", result
    series.loader.join(60)
    return first, planned, total


def widget_open(url: str, study: str, home: Path) -> tuple[float, float, float]:
    """Through the window: (seconds to the first image drawn, to the planned volume's slice
    drawn, to the download end)."""
    from app.ui.main import application
    from app.ui.main_window import MainWindow

    home.mkdir(parents=True, exist_ok=True)
    settings = load_settings(home)
    settings.hubs = [HubProfile(name="bench", url=url, auth="basic", user=USER)]
    save_settings(home, settings)
    SecretStore(home, settings.secrets).set("bench", PASSWORD)
    cryptfile._KEYS.clear()  # as in a program just started: its secrets file not opened yet
    app = application()  # as the program sets it up (GIL switch interval included)
    window = MainWindow(Store(home))
    window.resize(1000, 700)
    window.show()
    # What the window does once started, before anyone picks a study: its Incoming list's
    # first check of the hub (which opens the secrets file).
    settle = time.monotonic() + 10
    while window.incoming.polls == 0 and time.monotonic() < settle:
        app.processEvents()
        time.sleep(0.005)
    app.processEvents()
    started = time.monotonic()
    viewer = window.open_remote_study("bench", study)
    viewport = viewer.viewports[0]
    first = planned = None
    deadline = started + 600
    while time.monotonic() < deadline:
        app.processEvents()
        drawn = viewport.volume is not None and viewport.image.image is not None
        if first is None and drawn:
            first = time.monotonic() - started
        if planned is None and drawn and not viewport.session.stand_in:
            planned = time.monotonic() - started
        if planned is not None and not window._openers:
            break
        time.sleep(0.001)
    total = time.monotonic() - started
    assert first is not None and planned is not None, "no image drawn"
    window.close()
    app.processEvents()
    return first, planned, total


def _ms(values: Iterable[float]) -> str:
    return " ".join(f"{1000 * v:.0f}" for v in values) + " ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--slices", type=int, default=400)
    parser.add_argument("--rates", default="25,10",
                        help="throttled links to measure, MB/s, comma-separated")
    parser.add_argument("--rtt-ms", type=float, default=40.0,
                        help="also measure the first rate with this round trip per request")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--no-widget", action="store_true")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="relay-bench-remote-"))
    hub = OrthancHub(HubConfig(storage=root / "hub", http_port=free_port(),
                               users={USER: PASSWORD})).start()
    rates = [float(r) for r in args.rates.split(",") if r.strip()]
    throttles = [SlowLink(hub.config.http_port, rate * 1e6, shared=True) for rate in rates]
    if rates and args.rtt_ms:
        throttles.append(SlowLink(hub.config.http_port, rates[0] * 1e6, shared=True,
                                  rtt=args.rtt_ms / 1000))
    try:
        files = generate_series(root / "ct", SeriesSpec(slices=args.slices, seed=11))
        mb = sum(f.stat().st_size for f in files) / 1e6
        spoke = Store(root / "spoke")
        report = import_paths(spoke, [str(f) for f in files])
        study = report.study_uids[0]
        queue = TransferQueue(root / "spoke")
        sent = run_send(spoke, queue, _client(hub.url), send_job(spoke, queue, "bench", study).id,
                        TransferSettings())
        assert sent.state == "verified", sent
        print(f"study: {args.slices} slices 512x512, {mb:.0f} MB; hub: Orthanc on loopback; "
              f"cpus: {os.cpu_count()}")
        plain = zip(rates, throttles[:len(rates)], strict=True)
        links = [("loopback", hub.url)] + [(f"throttled {rate:g} MB/s ({rate * 8:g} Mbit/s)",
                                             t.url) for rate, t in plain]
        if rates and args.rtt_ms:
            links.append((f"throttled {rates[0]:g} MB/s, {args.rtt_ms:g} ms round trip",
                          throttles[-1].url))
        run = 0
        for name, url in links:
            full, core, widget = [], [], []
            for _ in range(args.rounds):
                run += 1
                full.append(full_download(url, study, root / f"full-{run}"))
                core.append(core_open(url, study, root / f"core-{run}"))
                if not args.no_widget:
                    widget.append(widget_open(url, study, root / f"widget-{run}"))
                for home in root.glob(f"*-{run}"):
                    shutil.rmtree(home, ignore_errors=True)
            best_full = min(full)
            print(f"\n[{name}]")
            print(f"  full download (relay fetch path)   {best_full:7.2f} s "
                  f"({mb / best_full:.0f} MB/s)")
            for label, times in (("core", core), ("window", widget)):
                if not times:
                    continue
                first, planned = min(t[0] for t in times), min(t[1] for t in times)
                print(f"  remote open, {label + ':':7s} first image  {first:7.3f} s   "
                      f"{100 * first / best_full:5.1f} % of the full download "
                      f"(all: {_ms(t[0] for t in times)})")
                print(f"  {'':21s}planned slice {planned:7.3f} s   "
                      f"{100 * planned / best_full:5.1f} %  (all: {_ms(t[1] for t in times)}; "
                      f"download while reading: {min(t[2] for t in times):.2f} s)")
        print("\ntarget: remote open to first image <= 5 % of the full download time")
    finally:
        for t in throttles:
            t.close()
        hub.stop()
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
