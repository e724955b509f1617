"""What the Incoming list costs the hub: the quick search (studies dated yesterday or today)
against the full search, on a local Orthanc holding ``--today`` studies of today and ``--old``
older ones; bytes per answer (as sent, gzip) and the requests per minute of each schedule.

    PYTHONPATH=. python bench/bench_incoming_cost.py [--today 20] [--old 200]
"""

from __future__ import annotations

import argparse
import datetime
import sys
import tempfile
import time
from pathlib import Path

import pydicom
import urllib3

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from app.dicom.synth import SeriesSpec, generate_series  # noqa: E402
from app.net.devhub import HubConfig, OrthancHub, free_port  # noqa: E402
from app.net.incoming import IncomingPoller  # noqa: E402
from app.settings import IncomingSettings  # noqa: E402


def upload(hub: OrthancHub, folder: Path, date: str, seed: int) -> None:
    """One small study dated ``date``, posted to Orthanc's REST API (setup, not measured)."""
    files = generate_series(folder / str(seed), SeriesSpec(
        slices=1, rows=16, columns=16, seed=seed,
        study_instance_uid=f"1.2.826.0.1.3680043.10.{seed}",
        series_instance_uid=f"1.2.826.0.1.3680043.11.{seed}"))
    for f in files:
        ds = pydicom.dcmread(f)
        ds.StudyDate = date
        ds.StudyDescription = "CT HEAD CODE STROKE"
        ds.save_as(f)
        resp = urllib3.request("POST", hub.config.rest_url + "/instances", body=f.read_bytes(),
                               timeout=30)
        assert resp.status == 200, resp.status


def answer_bytes(hub: OrthancHub, params: dict[str, str]) -> tuple[int, float]:
    """(bytes on the wire, seconds) of one QIDO-RS study search as Relay asks it (gzip)."""
    fields = {"includefield": "StudyDescription,PatientBirthDate", **params}
    started = time.perf_counter()
    resp = urllib3.request("GET", hub.url + "/studies", fields=fields, timeout=30,
                           headers={"Accept": "application/dicom+json",
                                    "Accept-Encoding": "gzip"}, decode_content=False)
    seconds = time.perf_counter() - started
    assert resp.status in (200, 204), resp.status
    return len(resp.data) + sum(len(k) + len(v) + 4 for k, v in resp.headers.items()), seconds


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--today", type=int, default=20)
    ap.add_argument("--old", type=int, default=200)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        hub = OrthancHub(HubConfig(storage=root / "hub", http_port=free_port())).start()
        try:
            today = datetime.date.today().strftime("%Y%m%d")
            for n in range(args.today):
                upload(hub, root, today, n)
            for n in range(args.old):
                upload(hub, root, "20190301", 10_000 + n)
            quick = answer_bytes(hub, IncomingPoller.quick_match())
            full = answer_bytes(hub, {})
        finally:
            hub.stop()
    s = IncomingSettings()
    quick_per_min = 60 / s.quick_seconds
    full_per_min = 60 / s.interval_seconds
    print(f"hub holds {args.today} studies of today, {args.old} older")
    print(f"quick search: {quick[0]:>8} bytes, {quick[1] * 1000:6.1f} ms")
    print(f"full search:  {full[0]:>8} bytes, {full[1] * 1000:6.1f} ms")
    print(f"schedule (defaults: quick every {s.quick_seconds:g} s, full every "
          f"{s.interval_seconds:g} s): {quick_per_min + full_per_min:.0f} requests/min, "
          f"{(quick_per_min * quick[0] + full_per_min * full[0]) / 1024:.0f} kB/min, "
          f"{quick_per_min * quick[1] + full_per_min * full[1]:.1f} s of hub time/min; "
          f"a full search every {s.quick_seconds:g} s instead: "
          f"{60 / s.quick_seconds * full[0] / 1024:.0f} kB/min, "
          f"{60 / s.quick_seconds * full[1]:.1f} s of hub time/min")


if __name__ == "__main__":
    main()
