"""Where a fetch's time goes: Relay's WADO-RS download broken down by thread and stage.

    PYTHONPATH=. python bench/profile_fetch.py [--slices 400] [--rounds 3]

Fills a local Orthanc (loopback, as ``bench_exchange.py``) with a generated CT series, then per
round fetches the study with curl (one WADO-RS multipart request to one file) and with Relay
(:class:`app.net.fetch.Download` into a fresh store). For Relay it prints the wall time, the
process CPU split into user and system time, Orthanc's CPU, and per thread the calls, wall
time and CPU time (``time.thread_time``) of each stage of the fetch path: reading the socket,
creating, hashing and writing each part, its header check, the ingest workers (placing,
syncing, indexing). A stage whose wall time is well above its CPU time waited: for the hub,
for the disk, for a lock or the interpreter, or for a core. The stages are timed by wrapping
the functions in place (a few microseconds per call).

Then a ladder of the bare work a durable fetch needs, without Relay's threads, queue or index,
each step adding one thing to the one before, alternating with curl and Relay over
``--rounds``: read and split the multipart answer; write each part to its own new file; hash it
(SHA-256); place it durably (rename into its ``objects/xx`` folder, fdatasync, fsync of the
folders, in 8 threads after the stream); check its header from memory. The gap between a step
and curl is what that work costs on this machine, whoever does it. A last rung does the
durable step's work (no header check, no index) pipelined over both cores: the reader writes,
a thread hashes from a ring of buffers, each part is placed and its write-back started while
the stream goes on. It bounds what a restructured Relay fetch could reach here.
"""

from __future__ import annotations

import argparse
import collections
import functools
import hashlib
import os
import queue
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import app.net.dicomweb as dicomweb
import app.net.fetch as fetch
import app.store.local as store_module
import app.store.part_ingest as ingest
from app.dicom.synth import SeriesSpec, generate_series
from app.imports.importer import import_paths
from app.net.dicomweb import DicomWebClient
from app.net.multipart import boundary_of, read_parts
from app.net.queue import TransferQueue
from app.settings import TransferSettings
from app.store.local import Store
from bench.bench_exchange import _bodies, _client, _curl, _curl_stow, _hub

#: (thread, stage) -> [calls, wall seconds, CPU seconds of that thread]
STATS: dict[tuple[str, str], list[float]] = collections.defaultdict(lambda: [0, 0.0, 0.0])

#: (owner, function name, stage label): the fetch path's stages.
STAGES: list[tuple[Any, str, str]] = [
    (dicomweb._Direct, "read", "read framing"),
    (dicomweb._Direct, "readinto", "read part bodies"),
    (ingest.PartIngest, "open_part", "open part"),
    (ingest.PartIngest, "_take_buffer", "wait for a buffer"),
    (ingest.PartIngest, "submit", "hand over"),
    (ingest.PartIngest, "_write_piece", "create + write + hash"),
    (ingest, "_write_all", "write"),
    (ingest, "check_buffer", "header check (memory)"),
    (ingest, "check_part", "header check (file)"),
    (ingest, "_start_writeback", "start write-back"),
    (ingest, "place_part", "move into the store"),
    (store_module.Store, "sync_placed", "fsync files + folders"),
    (store_module.Store, "commit", "index (SQLite)"),
    (ingest.PartIngest, "flush", "batch (sync + index)"),
]


def _timed(fn: Callable[..., Any], label: str) -> Callable[..., Any]:
    @functools.wraps(fn)
    def inner(*args: Any, **kwargs: Any) -> Any:
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            return fn(*args, **kwargs)
        finally:
            thread = threading.current_thread().name.split("_")[0]
            entry = STATS[(thread, label)]
            entry[0] += 1
            entry[1] += time.perf_counter() - wall
            entry[2] += time.thread_time() - cpu
    return inner


def _instrument() -> None:
    for owner, name, label in STAGES:
        setattr(owner, name, _timed(getattr(owner, name), label))


def _cpu_of(pid: int) -> float:
    """User + system CPU seconds of another process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class _BareSink:
    """One part for the ladder: optionally written to a new file and hashed, through one buffer."""

    def __init__(self, folder: Path, buffer: bytearray, files: bool, hashing: bool) -> None:
        self.buffer = buffer
        self.hash = hashlib.sha256() if hashing else None
        self.path = folder / f"{id(self)}.part"
        self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL) if files else -1
        self.size = 0

    def write(self, data: bytes | memoryview) -> None:
        self.size += len(data)
        if self.hash is not None:
            self.hash.update(data)
        if self.fd >= 0:
            os.write(self.fd, data)

    def free(self) -> memoryview:
        return memoryview(self.buffer)

    def filled(self, n: int) -> None:
        with memoryview(self.buffer) as view, view[:n] as piece:
            self.write(piece)


def _bare(client: DicomWebClient, path: str, folder: Path, step: int) -> float:
    """Fetch ``path`` doing the first ``step`` things of the ladder; return the seconds."""
    folder.mkdir()
    buffer = bytearray(ingest.PART_BUFFER)
    parts: list[_BareSink] = []

    def close(part: _BareSink) -> None:
        if step >= 5:
            ingest.check_buffer(buffer, part.size, "part")
        parts.append(part)

    started = time.perf_counter()
    resp = client.session.request("GET", path, headers={"Accept": dicomweb.WADO_ACCEPT},
                                  stream=True)
    for _ in read_parts(dicomweb._direct(resp), boundary_of(resp.headers["Content-Type"]),
                        lambda headers: _BareSink(folder, buffer, step >= 2, step >= 3), close):
        pass
    resp.release_conn()
    if step >= 4:
        with ThreadPoolExecutor(8) as pool:
            folders = set(pool.map(_place, parts))
            list(pool.map(os.fdatasync, [p.fd for p in parts]))
            list(pool.map(store_module._fsync_path, map(str, folders)))
    seconds = time.perf_counter() - started
    for part in parts:
        if part.fd >= 0:
            os.close(part.fd)
    shutil.rmtree(folder)
    return seconds


class _Hasher:
    """The pipelined rung's hashing thread: it hashes each part's bytes in order from a ring of
    buffers the reader fills from the socket, so reading and writing go on meanwhile."""

    def __init__(self, buffers: int = 4) -> None:
        self.buffers = [bytearray(ingest.PART_BUFFER) for _ in range(buffers)]
        self.free: queue.Queue[int] = queue.Queue()
        for i in range(1, buffers):
            self.free.put(i)
        self.current = 0
        self.work: queue.Queue[tuple[Any, ...] | None] = queue.Queue()
        self.thread = threading.Thread(target=self._run, name="hasher", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while (item := self.work.get()) is not None:
            kind, sink, arg, n = item
            if kind == "buffer":
                with memoryview(self.buffers[arg]) as view, view[:n] as piece:
                    sink.hash.update(piece)
                self.free.put(arg)
            elif kind == "bytes":
                sink.hash.update(arg)
            else:  # the part is complete
                arg(sink, sink.hash.hexdigest())

    def close(self) -> None:
        self.work.put(None)
        self.thread.join()


class _PipedSink:
    """One part for the pipelined rung: written to its own file by the reader, hashed by
    :class:`_Hasher`."""

    def __init__(self, folder: Path, hasher: _Hasher) -> None:
        self.hasher = hasher
        self.hash = hashlib.sha256()
        self.path = folder / f"{id(self)}.part"
        self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        self.size = 0

    def write(self, data: bytes | memoryview) -> None:  # bytes that came with the framing
        piece = bytes(data)
        os.write(self.fd, piece)
        self.size += len(piece)
        self.hasher.work.put(("bytes", self, piece, 0))

    def free(self) -> memoryview:
        return memoryview(self.hasher.buffers[self.hasher.current])

    def filled(self, n: int) -> None:
        i = self.hasher.current
        with memoryview(self.hasher.buffers[i]) as view, view[:n] as piece:
            os.write(self.fd, piece)
        self.size += n
        self.hasher.work.put(("buffer", self, i, n))
        self.hasher.current = self.hasher.free.get()  # waits while the hasher is behind


def _pipelined(client: DicomWebClient, path: str, folder: Path) -> float:
    """The ladder's durable rung (files, SHA-256, durable placement) pipelined over the two
    cores: hashing on its own thread, each part renamed into the store and its write-back
    started as soon as it is hashed (during the stream), the fdatasyncs after it."""
    folder.mkdir()
    hasher = _Hasher()
    placer = ThreadPoolExecutor(1)
    placed: list[tuple[_PipedSink, Path]] = []

    def place(sink: _PipedSink, digest: str) -> None:
        target = folder / "objects" / digest[:2]
        target.mkdir(parents=True, exist_ok=True)
        os.replace(sink.path, target / f"{digest}.dcm")
        ingest._start_writeback(sink.fd)
        placed.append((sink, target))

    def hashed(sink: _PipedSink, digest: str) -> None:
        placer.submit(place, sink, digest)

    started = time.perf_counter()
    resp = client.session.request("GET", path, headers={"Accept": dicomweb.WADO_ACCEPT},
                                  stream=True)
    for _ in read_parts(dicomweb._direct(resp), boundary_of(resp.headers["Content-Type"]),
                        lambda headers: _PipedSink(folder, hasher),
                        lambda sink: hasher.work.put(("end", sink, hashed, 0))):
        pass
    resp.release_conn()
    hasher.close()
    placer.shutdown(wait=True)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(os.fdatasync, [sink.fd for sink, _ in placed]))
        list(pool.map(store_module._fsync_path, {str(f) for _, f in placed}))
    seconds = time.perf_counter() - started
    for sink, _ in placed:
        os.close(sink.fd)
    shutil.rmtree(folder)
    return seconds


def _place(part: _BareSink) -> Path:
    assert part.hash is not None
    digest = part.hash.hexdigest()
    folder = part.path.parent / "objects" / digest[:2]
    folder.mkdir(parents=True, exist_ok=True)
    os.replace(part.path, folder / f"{digest}.dcm")
    return folder


LADDER = ("read + split the multipart answer", "+ one new file per part",
          "+ SHA-256", "+ durable placement (after the stream)", "+ header check")
PIPELINED = "files, SHA-256, durable: pipelined"


def _ladder(root: Path, client: DicomWebClient, hub_url: str, study: str, rounds: int) -> None:
    path = f"/studies/{study}"
    times: dict[str, list[float]] = collections.defaultdict(list)
    for n in range(rounds):
        out = root / "wado.bin"
        started = time.perf_counter()
        _curl("-H", f"Accept: {dicomweb.WADO_ACCEPT}", "-o", str(out), hub_url + path)
        times["curl (one request -> one file)"].append(time.perf_counter() - started)
        out.unlink()
        for step, name in enumerate(LADDER, 1):
            times[name].append(_bare(client, path, root / f"bare{n}-{step}", step))
        times[PIPELINED].append(_pipelined(client, path, root / f"piped{n}"))
        home = root / f"ladder{n}"
        download = fetch.Download(Store(home), TransferQueue(home), client, "bench", study,
                                  TransferSettings())
        started = time.perf_counter()
        assert download.run().state == "verified"
        times["relay Download"].append(time.perf_counter() - started)
        shutil.rmtree(home, ignore_errors=True)
    curl = sorted(times["curl (one request -> one file)"])
    print(f"\nladder ({rounds} rounds; ratio = curl's time / this one's)")
    for name, values in times.items():
        values.sort()
        best, median = values[0], values[len(values) // 2]
        print(f"  {name:<40} best {best:.3f} s  median {median:.3f} s   ratio best "
              f"{curl[0] / best:.2f}  median {curl[len(curl) // 2] / median:.2f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--slices", type=int, default=400)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--no-ladder", action="store_true", help="only the stages of Relay's fetch")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="relay-profile-"))
    try:
        return _run(root, args)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _run(root: Path, args: argparse.Namespace) -> int:
    src = generate_series(root / "ct", SeriesSpec(slices=args.slices, rows=512, columns=512,
                                                  seed=1))
    spoke = Store(root / "spoke")
    study = import_paths(spoke, [str(p) for p in src]).study_uids[0]
    series = spoke.study(study).series[0].series_instance_uid  # type: ignore[union-attr]
    files = [(Path(i.path), i.size) for i in spoke.instances(series)]  # type: ignore[arg-type]
    mb = sum(size for _, size in files) / 1e6
    hub = _hub(root, "hub")
    try:
        _curl_stow(hub, _bodies(files, 50, root / "b50"), 2)
        client = _client(hub)
        assert hub.proc is not None
        orthanc = hub.proc.pid
        _instrument()
        print(f"profile: {len(files)} instances, {mb:.1f} MB, {os.cpu_count()} cores")
        for n in range(args.rounds):
            out = root / "wado.bin"
            started, hub_cpu = time.perf_counter(), _cpu_of(orthanc)
            _curl("-H", f"Accept: {dicomweb.WADO_ACCEPT}", "-o", str(out),
                  f"{hub.url}/studies/{study}")
            print(f"\nround {n + 1}: curl {time.perf_counter() - started:.3f} s "
                  f"(Orthanc CPU {_cpu_of(orthanc) - hub_cpu:.2f} s)")
            out.unlink()
            home = root / f"reader{n}"
            store = Store(home)
            download = fetch.Download(store, TransferQueue(home), client, "bench", study,
                                      TransferSettings())
            STATS.clear()
            before, hub_cpu = os.times(), _cpu_of(orthanc)
            started = time.perf_counter()
            result = download.run()
            wall = time.perf_counter() - started
            after = os.times()
            assert result.state == "verified", result
            print(f"  relay {wall:.3f} s: process CPU user {after.user - before.user:.2f} s + "
                  f"system {after.system - before.system:.2f} s; Orthanc CPU "
                  f"{_cpu_of(orthanc) - hub_cpu:.2f} s")
            for (thread, label), (calls, spent, cpu) in sorted(STATS.items()):
                print(f"    {thread:<12} {label:<26} {int(calls):5d} calls  wall {spent:6.3f} s"
                      f"  CPU {cpu:6.3f} s")
            store.close()
            shutil.rmtree(home, ignore_errors=True)
        if not args.no_ladder:
            _ladder(root, client, hub.url, study, args.rounds)
    finally:
        hub.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
