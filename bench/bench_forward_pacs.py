"""Forwarding to a PACS as the scanner sends: a scanner sending at its pace to Relay's node,
the stroke rule forwarding to an Orthanc PACS over DIMSE (C-STORE batches of N instances or T
ms, associations kept open between batches, Storage Commitment batch by batch).

    PYTHONPATH=. python bench/bench_forward_pacs.py [--slices 300] [--rate 20]
        [--batches 16:250,50:1000] [--link 0] [--anchor]

- scanner: pynetdicom C-STORE of a generated head CT (``app.dicom.synth``, 512x512, described
  CODE STROKE), ``--rate`` slices per second;
- spoke: Relay's node (:class:`~app.net.dimse.listener.Listener`) with the stroke rule to
  ``pacs:pacs`` (:class:`~app.net.forward.Forwarder`);
- PACS: Orthanc's DICOM port on loopback (``--link`` MB/s: through a shaped line, 0 = none);
  how many instances it holds is read from its REST API every 50 ms.

Printed per batch setting: when the PACS held its first instance (from the scanner's first
slice), the last slice, when the job was verified (from the last slice), instances on the
PACS (each once), and what the audit trail holds: C-STORE and storage commitment associations
(``login`` lines: one per association, not per instance), and its lines in all.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import datetime
from pathlib import Path

import pydicom
from pynetdicom import build_context

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from app.dicom.synth import SeriesSpec, generate_series  # noqa: E402
from app.net.devhub import HubConfig, OrthancHub, free_port  # noqa: E402
from app.net.dimse.association import Endpoint, associate, make_ae  # noqa: E402
from app.net.dimse.listener import Listener  # noqa: E402
from app.net.dimse.node import NodeSettings  # noqa: E402
from app.net.forward import Forwarder  # noqa: E402
from app.net.queue import TransferQueue  # noqa: E402
from app.settings import ForwardingRule, HubProfile, load_settings, save_settings  # noqa: E402
from app.store.local import Store  # noqa: E402
from app.workflow import audit  # noqa: E402
from app.workflow.rules import example  # noqa: E402
from tests.proxies import SlowLink  # noqa: E402

CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"


def scanner_datasets(folder: Path, slices: int) -> list[pydicom.Dataset]:
    out = []
    for f in generate_series(folder, SeriesSpec(slices=slices, rows=512, columns=512)):
        ds = pydicom.dcmread(f)
        ds.StudyDescription = "CODE STROKE HEAD"
        ds.BodyPartExamined = "HEAD"
        out.append(ds)
    return out


def pacs_count(rest: str) -> int:
    with urllib.request.urlopen(f"{rest}/statistics", timeout=10) as r:
        return int(json.loads(r.read())["CountInstances"])


def one_run(root: Path, datasets: list[pydicom.Dataset], rate: float, n: int, t_ms: int,
            link_mb: float, send_too: bool = False) -> dict[str, float]:
    relay_port, dicom_port = free_port(), free_port()
    pacs = OrthancHub(HubConfig(
        storage=root / f"pacs-{n}-{t_ms}", http_port=free_port(), dicom_port=dicom_port,
        dicom_aet="ORTHANC",
        modalities={"relay": {"AET": "RELAY", "Host": "127.0.0.1", "Port": relay_port}})).start()
    link = SlowLink(dicom_port, link_mb * 1e6, shared=True) if link_mb else None
    home = root / f"spoke-{n}-{t_ms}"
    home.mkdir()
    settings = load_settings(home)
    settings.node.port = relay_port
    settings.hubs = [HubProfile(name="pacs", kind="dimse", host="127.0.0.1",
                                port=link.port if link else dicom_port, ae_title="ORTHANC")]
    settings.forwarding.rules = [
        ForwardingRule(**(example("stroke") | {"targets": ["pacs:pacs"]}))]
    settings.forwarding.batch_instances, settings.forwarding.batch_ms = n, t_ms
    settings.forwarding.quiet_seconds = 1.0
    save_settings(home, settings)
    store = Store(home)
    listener = Listener(store, NodeSettings(bind="127.0.0.1", port=relay_port))
    forwarder = Forwarder(store)
    forwarder.attach(listener)
    host, port = listener.start()
    syntaxes = sorted({str(ds.file_meta.TransferSyntaxUID) for ds in datasets})
    marks: dict[str, float] = {}
    stop = threading.Event()

    def watch(t0: float) -> None:
        while not stop.is_set():
            if pacs_count(pacs.config.rest_url) > 0:
                marks["first_on_pacs"] = time.monotonic() - t0
                return
            stop.wait(0.05)

    try:
        assoc = associate(make_ae("CT_ED_1", requested=[build_context(CT_IMAGE, syntaxes)]),
                          Endpoint(host, port, "RELAY"))
        t0 = time.monotonic()
        watcher = threading.Thread(target=watch, args=(t0,), daemon=True)
        watcher.start()
        for k, ds in enumerate(datasets):
            time.sleep(max(0.0, t0 + k / rate - time.monotonic()))
            if k == 0:
                marks["first_slice_wall"] = time.time()
            assoc.send_c_store(ds)
        marks["last_slice"] = time.monotonic() - t0
        last_wall = time.time()
        assoc.release()
        forwarder.wait_idle(600)
        job = TransferQueue(home).jobs()[0]
        marks["verified_after_last"] = job.updated - last_wall
        marks["verified"] = float(job.state == "verified")
        marks["on_pacs"] = pacs_count(pacs.config.rest_url)
        stop.set()
        watcher.join(10)
    finally:
        stop.set()
        listener.stop(grace=5.0)
        forwarder.close()
        if link is not None:
            link.close()
        pacs.stop()
    lines = list(audit.read(home))
    services = [e["detail"].get("service") for e in lines if e["event"] == "login"]
    marks["store_assocs"] = services.count("C-STORE")
    marks["commit_assocs"] = services.count("N-ACTION")
    marks["find_assocs"] = services.count("C-FIND")
    marks["audit_lines"] = len(lines)
    marks["batches"] = forwarder.stats["batches"]
    marks["chain_ok"] = float(audit.verify(home).ok)
    if send_too:  # the same study sent by ``relay send --pacs`` to a fresh PACS, same link
        marks["send_seconds"] = plain_send(root, store, f"{n}-{t_ms}", link_mb)
    return marks


def plain_send(root: Path, store: Store, tag: str, link_mb: float) -> float:
    """Seconds of an ordinary send job of the stored study to an empty PACS (the anchor)."""
    from app.net import hubs
    from app.net.send import Sender, send_job

    dicom_port, relay_port = free_port(), free_port()  # commitment reports come to relay_port
    pacs = OrthancHub(HubConfig(storage=root / f"anchor-{tag}", http_port=free_port(),
                                dicom_port=dicom_port, dicom_aet="ORTHANC", modalities={
                                    "relay": {"AET": "RELAY", "Host": "127.0.0.1",
                                              "Port": relay_port}})).start()
    link = SlowLink(dicom_port, link_mb * 1e6, shared=True) if link_mb else None
    try:
        settings = load_settings(store.home)
        settings.hubs = [HubProfile(name="anchor", kind="dimse", host="127.0.0.1",
                                    port=link.port if link else dicom_port,
                                    ae_title="ORTHANC")]
        settings.node.port = relay_port
        save_settings(store.home, settings)
        queue = TransferQueue(store.home)
        study = store.studies()[0].study_instance_uid
        job = send_job(store, queue, "anchor", study)
        peer = hubs.connect(store.home, "anchor", settings,
                            pool_size=settings.transfer.in_flight + 1)
        started = time.monotonic()
        result = Sender(store, queue, peer, settings.transfer).run(job.id)
        seconds = time.monotonic() - started
        assert result.state in ("verified", "sent"), result.message
        return seconds
    finally:
        if link is not None:
            link.close()
        pacs.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--slices", type=int, default=300)
    ap.add_argument("--rate", type=float, default=20.0, help="scanner slices per second")
    ap.add_argument("--batches", default="16:250,50:1000", help="N:T_ms pairs")
    ap.add_argument("--link", type=float, default=0.0, help="MB/s to the PACS (0: loopback)")
    ap.add_argument("--anchor", action="store_true",
                    help="also time an ordinary send job of the same study (relay send --pacs)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        datasets = scanner_datasets(root / "scan", args.slices)
        print(f"{args.slices} slices at {args.rate:g}/s to a PACS"
              f"{f' over {args.link:g} MB/s' if args.link else ' on loopback'}; "
              f"{datetime.now():%Y-%m-%d %H:%M}")
        print(f"{'N:T ms':>9} {'first on PACS':>14} {'last slice':>11} {'verified +':>11} "
              f"{'on PACS':>8} {'batches':>8} {'C-STORE as.':>12} {'commit as.':>11} "
              f"{'C-FIND as.':>11} {'audit lines':>12}")
        for pair in args.batches.split(","):
            n, t_ms = (int(x) for x in pair.split(":"))
            m = one_run(root, datasets, args.rate, n, t_ms, args.link, args.anchor)
            print(f"{pair:>9} {m.get('first_on_pacs', float('nan')):>13.2f}s "
                  f"{m['last_slice']:>10.2f}s {m['verified_after_last']:>10.2f}s "
                  f"{int(m['on_pacs']):>8} {int(m['batches']):>8} {int(m['store_assocs']):>12} "
                  f"{int(m['commit_assocs']):>11} {int(m['find_assocs']):>11} "
                  f"{int(m['audit_lines']):>12}"
                  + ("" if m["verified"] and m["chain_ok"] else "  (NOT verified / chain)"))
            if "send_seconds" in m:
                total = m["last_slice"] + m["verified_after_last"]
                print(f"{'':>9} forwarded and verified {total:.2f}s from the first slice; an "
                      f"ordinary send job of the stored study: {m['send_seconds']:.2f}s")


if __name__ == "__main__":
    main()
