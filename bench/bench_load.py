"""Volume load speed and memory, measured side by side in one run.

For each series: (a) reading all file bytes into memory in Python (kept in a list, as a load
must keep them; plus a streaming read for comparison, like ``cat``), (b) the header index (every
file's header read as at import), (c) the full volume load through the index (fast path), each
load in a fresh process so its peak RSS is its own. Also the plain pydicom loop (``dcmread`` +
``pixel_array`` + ``np.stack``) for reference. Printed: seconds, c/a, first slice / full load,
peak RSS / volume bytes, and CPU seconds per wall second for the load (cores used).

Series: a generated 400-slice 512×512 CT (uncompressed, JPEG lossless, JPEG-LS, JPEG 2000;
made once with ``relay synth`` into ``--cache``) and the real 245-slice Visible Human head.

Run from the repository root::

    PYTHONPATH=. python bench/bench_load.py [--cache /tmp/relay-bench] [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SYNTHS = ["explicit", "jpeg-lossless", "jpegls", "j2k"]


def _status_mb(field: str, pid: str = "self") -> float:
    """A ``/proc/PID/status`` memory field in MiB (``VmRSS``, or ``VmHWM`` for the peak;
    ru_maxrss would carry the parent's peak across fork + exec); 0 when the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _rss_mb(field: str = "VmRSS") -> float:
    """This process's RSS (or with ``VmHWM`` its peak)."""
    return _status_mb(field)


def _pool_pids() -> list[int]:
    """The codec pool's worker processes (children of the fork server)."""
    from app.dicom import decodepool

    return list(getattr(decodepool._pool, "_processes", {}) or {})


def _workers_cpu() -> float:
    """CPU seconds used so far by the codec pool's workers."""
    total = 0.0
    for pid in _pool_pids():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            pass
    return total


def _workers_peak_mb() -> float:
    """Peak RSS summed over the codec pool's workers (they share the fork server's pages)."""
    return sum(_status_mb("VmHWM", str(pid)) for pid in _pool_pids())


def child_load(home: str, uid: str, mode: str) -> dict:
    """Run in a fresh process: load once (cold) and again (warm), report times and memory.

    Start-up as in ``relay load``: the store is opened and, only when the series needs them,
    the codec processes are started, before the load's clock starts."""
    import numpy as np

    from app.dicom import decodepool
    from app.dicom.pixels import needs_decoder
    from app.startup import startup_done
    from app.store.local import Store
    from app.volume.early_slice import early_slice
    from app.volume.loader import VolumeLoader
    from app.volume.plans import series_plan
    from app.volume.stack import plan_series

    store = Store(Path(home))
    if mode == "floor":
        return _floor(store, uid)
    if mode == "plain":
        decodepool.preload()  # pydicom decodes in this process
    elif needs_decoder(store.pixel_formats(uid)):
        decodepool.start()  # the codec processes, ready; this process imports no codec
    startup_done()  # as `relay load` does
    baseline = _rss_mb()
    out: dict = {"baseline_rss_mb": baseline}
    t0 = time.monotonic()
    cpu0 = os.times()
    if mode == "plain":
        import pydicom

        refs = plan_series(store.instances(uid)).main.slices
        arrays = [pydicom.dcmread(r.path).pixel_array for r in refs]
        volume = np.stack(arrays)
        out.update(seconds=time.monotonic() - t0, first_slice_seconds=None,
                   volume_bytes=volume.nbytes)
    else:
        # as `relay load`: the middle slice first, the plan as the program makes it (from the
        # index, no plan cached in this fresh process), compressed frames by the codec processes
        early = early_slice(store, uid, codecs=False)
        plan = series_plan(store, uid)
        loader = VolumeLoader.for_stack(plan.main, started=t0, early=early, codecs_here=False)
        vol = loader.run()
        checksum = int(vol.array.sum(dtype=np.int64))  # touch every page: RSS counts it all
        out.update(seconds=loader.seconds, first_slice_seconds=loader.first_slice_seconds,
                   volume_bytes=vol.array.nbytes, failed=len(vol.failed_slices),
                   checksum=checksum)
        out["peak_rss_mb"] = _rss_mb("VmHWM")
        # warm: a viewer's second series (pool and imports ready)
        del vol, loader
        t1 = time.monotonic()
        loader2 = VolumeLoader.for_stack(plan.main, started=t1, codecs_here=False)
        loader2.run()
        out.update(warm_seconds=loader2.seconds, warm_first=loader2.first_slice_seconds)
        worker_cpu = _workers_cpu()
        out["codec_processes_peak_mb"] = _workers_peak_mb()
        cpu1 = os.times()
        wall = out["seconds"] + (loader2.seconds or 0.0)
        out["cores_used"] = ((cpu1.user - cpu0.user + cpu1.system - cpu0.system
                              + cpu1.children_user - cpu0.children_user
                              + worker_cpu) / wall)
        return out
    out["peak_rss_mb"] = _rss_mb("VmHWM")
    return out


def _floor(store, uid: str) -> dict:
    """The physical floor of a load: the same pixel bytes read into one freshly allocated
    array of the volume's size (each file's pixel data straight into its slice), in this
    fresh process, one thread."""
    import numpy as np

    from app.volume.stack import plan_series

    slices = plan_series(store.instances(uid)).main.slices
    info = slices[0].info
    t0 = time.monotonic()
    volume = np.empty((len(slices), info.rows, info.columns), dtype=np.int16)
    for k, ref in enumerate(slices):
        with open(ref.path, "rb", buffering=0) as fp:
            fp.seek(ref.info.pixel_offset)
            fp.readinto(memoryview(volume[k].reshape(-1).view(np.uint8)))
    return {"seconds": time.monotonic() - t0, "volume_bytes": volume.nbytes}


def _child(home: Path, uid: str, mode: str) -> dict:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, __file__, "--child", str(home), uid, mode],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=900)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure(name: str, folder: Path, work: Path, repeat: int = 3) -> dict:
    from app.dicom.header import read_header
    from app.imports.importer import import_paths
    from app.store.local import Store

    files = sorted(p for p in folder.iterdir() if p.is_file())
    for p in files:  # warm the page cache: every figure below is from memory
        p.read_bytes()
    t = time.monotonic()
    kept = [p.read_bytes() for p in files]
    raw_kept = time.monotonic() - t
    del kept
    t = time.monotonic()
    for p in files:
        p.read_bytes()
    raw_stream = time.monotonic() - t
    t = time.monotonic()
    for p in files:
        read_header(p.read_bytes(), str(p))
    header = time.monotonic() - t

    home = work / name
    store = Store(home)
    t = time.monotonic()
    import_paths(store, [str(folder)])
    import_s = time.monotonic() - t
    uid = next(s.series_instance_uid for st in store.studies() for s in st.series)
    for p in store.instances(uid):  # the store's copies are what a load reads
        Path(p.path).read_bytes()
    t = time.monotonic()
    for inst in store.instances(uid):
        Path(inst.path).read_bytes()
    raw_store = time.monotonic() - t
    # the floor and the load taken in turns, the best of each: on a shared machine one run
    # of either can be several times its usual time
    # the first child after the import and the reads above ran several times slower than the
    # rest, every time (floors 0.27-0.74 s against ~0.04 s, 7 runs of 7): one run, not counted
    _child(home, uid, "floor")
    floors, fasts = [], []
    for _ in range(max(1, repeat)):
        floors.append(_child(home, uid, "floor")["seconds"])
        fasts.append(_child(home, uid, "fast"))
    fast = min(fasts, key=lambda f: f["seconds"])
    plain = _child(home, uid, "plain")
    return dict(name=name, files=len(files), raw_kept=raw_kept, raw_stream=raw_stream,
                raw_store=raw_store, header=header, import_s=import_s, fast=fast, plain=plain,
                floor=min(floors), loads=[f["seconds"] for f in fasts], floors=floors)


def _print(rows: list[dict]) -> None:
    head = (f"{'series':<22}{'files':>6}{'(a)read':>9}{'(a)strm':>9}{'(b)hdr':>8}"
            f"{'(c)load':>9}{'c/a':>6}{'1st':>8}{'1st/c':>7}{'warm c':>8}{'w 1st':>8}"
            f"{'floor':>7}{'c/fl':>6}{'cores':>6}{'RSS/vol':>8}{'+RSS/vol':>9}{'codecMB':>8}"
            f"{'plain':>8}{'pl RSS/v':>9}")
    print(head)
    for r in rows:
        f, p = r["fast"], r["plain"]
        vol = f["volume_bytes"] / 2**20
        print(f"{r['name']:<22}{r['files']:>6}{r['raw_kept']:>9.3f}{r['raw_stream']:>9.3f}"
              f"{r['header']:>8.3f}{f['seconds']:>9.3f}{f['seconds'] / r['raw_kept']:>6.2f}"
              f"{f['first_slice_seconds']:>8.4f}"
              f"{f['first_slice_seconds'] / f['seconds']:>7.1%}"
              f"{f['warm_seconds']:>8.3f}{f['warm_first']:>8.4f}"
              f"{r['floor']:>7.3f}{f['seconds'] / r['floor']:>6.2f}{f['cores_used']:>6.2f}"
              f"{f['peak_rss_mb'] / vol:>8.2f}"
              f"{(f['peak_rss_mb'] - f['baseline_rss_mb']) / vol:>9.2f}"
              f"{f.get('codec_processes_peak_mb', 0.0):>8.0f}"
              f"{p['seconds']:>8.3f}{p['peak_rss_mb'] / vol:>9.2f}")
    for r in rows:
        print(f"{r['name']}: loads " + " ".join(f"{s:.3f}" for s in r["loads"])
              + " s; floors " + " ".join(f"{s:.3f}" for s in r["floors"]) + " s")
    print("\n(a)read: all file bytes read and kept in a list; (a)strm: read and dropped (like cat);"
          "\n(b)hdr: every header parsed as at import; (c)load: index -> full volume, fresh"
          " process (its start-up,\nas in relay load: the store opened, the codec processes"
          " started when the series needs them);\nc/a = (c)/(a)read; 1st: first slice ready;"
          " warm: a second load in the same process;\nfloor: the pixel bytes read into one"
          " fresh array of the volume's size in a fresh process (target c/fl <= 1.5;"
          "\n(c) and floor are the best of --repeat runs taken in turns);"
          "\ncores: CPU s per wall s over the cold and"
          " warm loads, workers included; RSS/vol: peak RSS of the loading\nprocess / volume"
          " bytes; +RSS/vol: the same above the process's RSS before the load; codecMB: peak"
          " RSS\nsummed over the codec processes (they share the fork server's pages and write"
          " into the volume's shared\nmemory); plain: dcmread + pixel_array + np.stack loop (s)"
          " and its RSS/vol.")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "relay-bench")
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--only", nargs="*", default=None)
    parser.add_argument("--repeat", type=int, default=3,
                        help="loads and floors measured in turns, the best of each (default 3)")
    parser.add_argument("--child", nargs=3, metavar=("HOME", "UID", "MODE"))
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child_load(*args.child)))
        return 0
    from app.dicom.synth import SeriesSpec, generate_series

    series: list[tuple[str, Path]] = []
    for syntax in SYNTHS:
        if args.only and not any(o in f"synth-400 {syntax}" for o in args.only):
            continue
        folder = args.cache / syntax
        if not (folder / "IM00400.dcm").exists():
            print(f"generating {folder} ...", file=sys.stderr)
            generate_series(folder, SeriesSpec(slices=400, transfer_syntax=syntax))
        series.append((f"synth-400 {syntax}", folder))
    series.append(("visible-human 245", args.data / "ct-head" / "visible-human-male-head-1mm"))
    if args.only:
        series = [s for s in series if any(o in s[0] for o in args.only)]
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for name, folder in series:
            rows.append(measure(name.replace(" ", "-"), folder, Path(work), args.repeat))
    _print(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
