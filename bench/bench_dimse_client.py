"""DIMSE speed: Relay against dcmtk, side by side in one run, with Orthanc as the PACS.

    PYTHONPATH=. python bench/bench_dimse_client.py [--slices 400] [--rounds 2] [--rate 25e6]
        [--send-only | --retrieve-only] [--lanes N]

A generated CT series (``app.dicom.synth``, 512x512, explicit VR little endian) is sent to an
empty Orthanc (DICOM port on, loopback) with ``relay send --pacs`` (the durable send job over the
PACS's DimsePeer: C-FIND of what the PACS has, C-STORE batches on ``--lanes`` kept associations,
storage commitment asked batch by batch while the send runs) and
with dcmtk ``storescu`` (the same files, one association, no verification). Then the study is
retrieved with Relay (C-GET into a fresh local store: header-checked, SHA-256, fsync'ed, indexed)
with dcmtk ``getscu`` into a folder, and with the equal-work anchor: ``getscu``, then
``sha256sum`` of its files and ``sync`` of the files and their folder (what Relay's durable
ingest must do besides receiving); the three take turns. Last, a retrieve through a shaped
link (``SlowLink``, ``--rate`` bytes/s shared, 0: none): the time until the first instance is
in the store (openable) as a share of the whole retrieve. Best of ``--rounds``; prints MB/s,
the CPU seconds (Relay's process, the dcmtk tools) and the ratios against the goals (send >=
1.0x storescu, retrieve >= 0.8x getscu, first image <= 5 %) and against the anchor.

Measured 2026-12-04 (2 shared cores, ``--send-only --rounds 3``, default 2 lanes, dcmtk with
TCP_NODELAY=1 as the bench now sets it): the send is 1.08x storescu on a quiet machine (turns
1.08-1.15x; 2.15-2.27 s against 2.33-2.48 s, both near what Orthanc takes in: ~95 MB/s), 0.80x
with a CPU hog beside it (Relay's 0.9-1.1 s of CPU against storescu's 0.3-0.5 s), and 0.78x on one
association (``--lanes 1``). Before the DUL reactor woke on data (app/net/dimse/association.py)
one association gave 0.60x and two 1.03x. Earlier figures of 2-3.5x were against a storescu
without TCP_NODELAY, held by Nagle's algorithm (6.8-7.6 s for the same files): not an anchor.
The retrieve (C-GET) in the same conditions: 3.63 s against getscu's 0.87 s, 0.24x (the earlier
3.37x was against a Nagle-held getscu too); pynetdicom decodes Orthanc's 16 kB PDUs in Python
and Relay checks, hashes, fsyncs and indexes each instance. The first image of a retrieve over a
25 MB/s link: 1.3 % of the whole.

Issue 13, after the receive work (same day, load 2-4 from other agents, ``--slices 400 --rounds
3``, this tree and f40f365 back to back): retrieve 2.11 s against getscu's 0.62 s, 0.29x (f40f365:
2.59 s, 0.24x); the send 1.06x (f40f365 in its run: 0.90x; the send is unchanged, the turns swing
0.65-1.24x). Relay's CPU for the retrieve alone (Download.run against this Orthanc, one retrieve at
a time): 2.9-3.0 s -> 2.1 s. The C-STOREs of a C-GET now go through app/net/dimse/rawreceive.py
(Orthanc sends 128 kB PDUs to a peer without a limit: 4 per slice) and Relay's C-STORE answers are
encoded by hand; what is left is the ingest pipeline shared with WADO (app/store/part_ingest.py: the
header checked on the network thread, the workers' fdatasync and folder fsync per batch, on which
the network thread waits when 256 parts are pending) and pynetdicom's per-message work.

Issue 13, second pass (2026-12-04 20:20-20:30 UTC, 2 shared cores, load 6-8: other agents'
tests and a CPU hog; ``--slices 400 --rounds 3 --retrieve-only --rate 0``, this tree and
f01959e back to back, twice): Relay's retrieve 1.44-1.52 s (f01959e: 2.10-2.26 s), CPU
1.11-1.14 s (1.48-1.62 s); getscu 0.68-0.90 s in the same runs; ratio vs getscu 0.59-0.61x best
of rounds, 0.55-0.89x turn by turn (f01959e: 0.30-0.39x, turns 0.30-0.66x); vs the equal-work
anchor 1.56-2.21x (f01959e 1.23-1.54x). The whole command (``--slices 400 --rounds 3``, load
6-7): retrieve 1.23 s against getscu 0.47 s (0.38x best of rounds, turns 0.31-0.60x), anchor
1.36 s (1.10x); send 0.86x (turns 0.74-0.99x); first image 1.6 %. What changed: the DUL reactor's
idle wait ends when a PDU is queued for it (each C-STORE response waited up to 1 ms: a
do-nothing pynetdicom C-GET went 1.18 s -> 0.73 s, getscu 0.68 s beside it), the C-STORE-RQ
and C-GET-RSP command sets are read by hand, the file meta group is encoded by hand. What is
left is Relay's ingest on each instance's path before its C-STORE answer (Orthanc sends the
next instance only then): the SHA-256 (0.33 ms for a slice quiet, 0.6 ms loaded), the file write
(0.5-0.9 ms, which getscu pays too), the header check (~0.3 ms) and the temp file, ~0.7 s of
CPU beside the bare C-GET's ~0.4 s; 0.8x needs them off that path, i.e. answering before the
instance is written, which would turn a full disk from a refused C-STORE into a missing one.

2026-12-06, a new VM, quiet (load ~1), ``--rounds 3`` (25 MB/s link for the first image): send
1.06x storescu (turns 1.06/1.04/0.88x; 1.72 s against 1.82 s, Relay's CPU 0.82 s); retrieve
1.11 s against getscu's 0.47 s, 0.42x (turns 0.31-0.52x), 1.22x the equal-work anchor; first
image 1.9 % of the retrieve. The retrieve is CPU-bound: Relay's process used 1.14 s of CPU in
its 1.11 s and Orthanc 0.25 s, so even with both cores busy the whole time the pair needs
(1.14 + 0.25) / 2 = 0.69 s, 0.68x getscu at best (the "CPU budget" line). Setting the
interpreter's switch interval to 0.5 ms (as the window does) changed nothing here (best
0.99 s at 5 ms, 1.08 s at 0.5 ms, taking turns).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from app.dicom.synth import SeriesSpec, generate_series
from app.imports.importer import import_paths
from app.net.devhub import HubConfig, OrthancHub, free_port
from app.net.dimse.association import Endpoint
from app.net.dimse.client import DimseClient
from app.net.dimse.peer import DimsePeer
from app.net.fetch import Download
from app.net.queue import TransferQueue
from app.net.send import Sender, send_job
from app.settings import TransferSettings
from app.store.local import Store
from tests.proxies import SlowLink

AE = "ORTHANC"


def _pacs(root: Path, name: str, relay_port: int) -> OrthancHub:
    return OrthancHub(HubConfig(storage=root / name, http_port=free_port(),
                                dicom_port=free_port(), dicom_aet=AE,
                                modalities={"relay": {"AET": "RELAY", "Host": "127.0.0.1",
                                                      "Port": relay_port}})).start()


def _best(rounds: int, once: Callable[[int], float]) -> float:
    return min(once(i) for i in range(rounds))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--slices", type=int, default=400)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--rate", type=float, default=25e6,
                    help="shaped link, bytes/s (0: no first-image measurement)")
    ap.add_argument("--send-only", action="store_true")
    ap.add_argument("--retrieve-only", action="store_true",
                    help="skip the send comparison (the files go to the PACS with storescu)")
    ap.add_argument("--lanes", type=int, default=TransferSettings().in_flight,
                    help="C-STORE associations side by side (settings: transfer.in_flight)")
    args = ap.parse_args()
    # dcmtk reads TCP_NODELAY from the environment; without it Nagle's algorithm holds each
    # PDU's tail and storescu/getscu run 3-20x slower: the anchor must be dcmtk at its best
    os.environ["TCP_NODELAY"] = "1"
    for tool in ("storescu", "getscu"):
        if shutil.which(tool) is None:
            sys.exit(f"bench_dimse needs dcmtk's {tool} (apt-get install dcmtk)")
    root = Path(tempfile.mkdtemp(prefix="bench-dimse-"))
    relay_port = free_port()
    try:
        files = generate_series(root / "src", SeriesSpec(slices=args.slices, seed=11))
        mb = sum(f.stat().st_size for f in files) / 1e6
        home = root / "relay"
        store = Store(home)
        report = import_paths(store, [str(f) for f in files])
        study = report.study_uids[0]
        print(f"{len(files)} instances, {mb:.1f} MB (512x512 CT, explicit VR LE)")

        def relay_send(i: int) -> float:
            pacs = _pacs(root, f"send-relay-{i}", relay_port)
            try:
                queue = TransferQueue(home)
                client = DimseClient(Endpoint("127.0.0.1", pacs.config.dicom_port, AE), "RELAY",
                                     listen_port=relay_port)
                job = send_job(store, queue, f"bench{i}", study)
                started = time.perf_counter()
                cpu = time.process_time()
                result = Sender(store, queue, DimsePeer(client),
                                TransferSettings(in_flight=args.lanes)).run(job.id)
                took = time.perf_counter() - started
                cpu = time.process_time() - cpu
                assert result.state == "verified", result
                print(f"  relay send --pacs:  {took:6.2f} s  {mb / took:6.1f} MB/s  "
                      f"CPU {cpu:5.2f} s  ({result.message})")
                return took
            finally:
                pacs.stop()

        def dcmtk_send(i: int) -> float:
            pacs = _pacs(root, f"send-dcmtk-{i}", relay_port)
            try:
                started = time.perf_counter()
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                subprocess.run(["storescu", "-aet", "RELAY", "-aec", AE, "127.0.0.1",
                                str(pacs.config.dicom_port), *map(str, files)], check=True,
                               timeout=600)
                took = time.perf_counter() - started
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
                print(f"  dcmtk storescu:     {took:6.2f} s  {mb / took:6.1f} MB/s  "
                      f"CPU {cpu:5.2f} s")
                return took
            finally:
                pacs.stop()

        send_ratio = float("nan")
        if not args.retrieve_only:
            print("send (best of rounds, Relay and storescu taking turns so load hits both "
                  "alike):")
            relay_times: list[float] = []
            dcmtk_times: list[float] = []
            for i in range(args.rounds):
                relay_times.append(relay_send(i))
                dcmtk_times.append(dcmtk_send(i))
            relay_s, dcmtk_s = min(relay_times), min(dcmtk_times)
            send_ratio = dcmtk_s / relay_s
            pairs = "  ".join(f"{d / r:.2f}x"
                              for r, d in zip(relay_times, dcmtk_times, strict=True))
            print(f"  ratio of each turn: {pairs}")
        if args.send_only:
            print(f"send     relay/storescu speed ratio: {send_ratio:.2f}x  (goal >= 1.0x)")
            return 0

        pacs = _pacs(root, "retrieve", relay_port)
        try:
            port = pacs.config.dicom_port
            subprocess.run(["storescu", "-aet", "RELAY", "-aec", AE, "127.0.0.1", str(port),
                            *map(str, files)], check=True, timeout=600)

            def relay_get(i: int, via: int = port, first: list[float] | None = None) -> float:
                other = root / f"get-{i}-{via}"
                st = Store(other)
                queue = TransferQueue(other)
                client = DimseClient(Endpoint("127.0.0.1", via, AE), "RELAY")
                done = threading.Event()
                started = time.perf_counter()
                cpu, pacs_cpu = time.process_time(), pacs.cpu_seconds()
                if first is not None:
                    threading.Thread(target=_watch_first, args=(other, started, first, done),
                                     daemon=True).start()
                result = Download(st, queue, DimsePeer(client), "bench", study,
                                  TransferSettings()).run()
                took = time.perf_counter() - started
                cpu, pacs_cpu = time.process_time() - cpu, pacs.cpu_seconds() - pacs_cpu
                done.set()
                assert result.state == "verified", result
                if first is None:
                    print(f"  relay retrieve:          {took:6.2f} s  {mb / took:6.1f} MB/s  "
                          f"CPU {cpu:5.2f} s, Orthanc's {pacs_cpu:5.2f} s")
                    budget.append((took, (cpu + pacs_cpu) / (os.cpu_count() or 1)))
                return took

            def dcmtk_get(i: int, durable: bool = False) -> float:
                out = root / f"getscu-{i}-{durable}"
                out.mkdir()
                started = time.perf_counter()
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                pacs_cpu = pacs.cpu_seconds()
                subprocess.run(["getscu", "-aet", "RELAY", "-aec", AE, "-S", "-od", str(out),
                                "-k", "QueryRetrieveLevel=STUDY", "-k",
                                f"StudyInstanceUID={study}", "127.0.0.1", str(port)],
                               check=True, timeout=600)
                got = sorted(map(str, out.iterdir()))
                assert len(got) == len(files)
                if durable:  # the work Relay's ingest does: hash every file, make it durable
                    subprocess.run(["sha256sum", *got], check=True, timeout=600,
                                   stdout=subprocess.DEVNULL)
                    subprocess.run(["sync", *got, str(out)], check=True, timeout=600)
                took = time.perf_counter() - started
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
                name = "getscu+sha256sum+sync" if durable else "dcmtk getscu"
                print(f"  {name + ':':<24}{took:6.2f} s  {mb / took:6.1f} MB/s  "
                      f"CPU {cpu:5.2f} s, Orthanc's {pacs.cpu_seconds() - pacs_cpu:5.2f} s")
                return took

            # (wall time, CPU-bound floor) of each Relay retrieve: its and Orthanc's CPU seconds
            # over the cores, the shortest time they allow if both kept every core busy
            budget: list[tuple[float, float]] = []
            print("retrieve (Relay, getscu and the equal-work anchor taking turns):")
            turns = [(relay_get(i), dcmtk_get(i), dcmtk_get(i, durable=True))
                     for i in range(args.rounds)]
            get_s = min(t[0] for t in turns)
            getscu_s = min(t[1] for t in turns)
            anchor_s = min(t[2] for t in turns)
            get_ratio = getscu_s / get_s
            anchor_ratio = anchor_s / get_s
            pairs = "  ".join(f"{g / r:.2f}x/{a / r:.2f}x" for r, g, a in turns)
            print(f"  ratio of each turn (vs getscu / vs getscu+sha256sum+sync): {pairs}")
            floor = min(f for t, f in budget if t == get_s)
            print(f"  CPU budget of the fastest Relay retrieve: Relay's and Orthanc's CPU over "
                  f"{os.cpu_count()} cores allow {floor:.2f} s at best, i.e. at most "
                  f"{getscu_s / floor:.2f}x getscu here")
            share = float("nan")
            if args.rate > 0:
                share = _first_share(port, args.rate, relay_get)
        finally:
            pacs.stop()

        if not args.retrieve_only:
            print(f"send     relay/storescu speed ratio: {send_ratio:.2f}x  (goal >= 1.0x)")
        print(f"retrieve relay/getscu  speed ratio: {get_ratio:.2f}x  (goal >= 0.8x)")
        print(f"retrieve relay/(getscu+sha256sum+sync) speed ratio: {anchor_ratio:.2f}x")
        print(f"first image of a retrieve: {share * 100:.1f} % of the whole  (goal <= 5 %)")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


def _first_share(port: int, rate: float, relay_get: Callable[..., float]) -> float:
    """A retrieve through a shaped link: the time until the first instance is in the store as
    a share of the whole."""
    link = SlowLink(port, rate=rate, shared=True)
    try:
        first: list[float] = []
        whole = relay_get(99, via=link.port, first=first)
    finally:
        link.close()
    print(f"retrieve over a {rate / 1e6:.0f} MB/s link: first image "
          f"{first[0] if first else float('nan'):.2f} s of {whole:.2f} s")
    return first[0] / whole if first else 1.0


def _watch_first(home: Path, started: float, first: list[float], done: threading.Event) -> None:
    """Record when the first instance is in the store (indexed: openable)."""
    while not done.is_set():
        try:
            if Store(home).counts()["instances"] > 0:
                first.append(time.perf_counter() - started)
                return
        except Exception:
            pass
        time.sleep(0.005)


if __name__ == "__main__":
    sys.exit(main())
