"""Soak with the window open: its event loop never stalls while 20 studies go out and come in
through a link that breaks connections at random.

A real Orthanc behind :class:`tests.proxies.FaultyLink`; a spoke's queue runner sends 20 studies
(``verify_bytes`` on: the hub's copies compared byte for byte by the product), then the window's
own queue runner fetches them into the window's store while the browser follows. A 5 ms timer
on the GUI thread measures every gap in the event loop, from before the first job to after
the last. Jobs the faults stopped are retried as a user would (the Retry button).

The link and the spoke are processes of their own (``tests/soak_peers.py``): as threads of this
process they took the GIL from the window's GUI thread, work no real window shares a process
with. Beside the window, an empty Qt event loop in another process is probed the same way: the
stalls the machine alone causes at the same moment (the report prints both).

Measured 2026-12-04 on the 2-core machine (``./setup.sh test tests/ui/test_soak_window.py -k
faulty -s``), CPU hogs being ``python3 -c 'while 1: pass'``:

* one hog beside the test (load 1.9-2.1), 4 runs: the window's max stall 32, 54, 62 and 68 ms,
  none over 100 ms; the empty event loop at the same moments 5-8 ms;
* two hogs (load 1.8-2.0 with them), 3 runs: 42, 101 and 110 ms, those over 100 ms mostly
  waiting for a CPU (runnable 63-86 ms, its own work 13-32 ms);
* two hogs and other agents' benches and test runs (load 4.3-5.9), 11 runs: the window 59-388
  ms, the empty event loop at the same moments 16-245 ms (it too passed 100 ms in 3 of the 11).

The GUI thread ran 0.35-0.66 s of each 9-14 s soak (the empty loop 0.11-0.22 s). Before the
peers moved out (earlier figures, same machine) stalls over 100 ms also waited 4-21 % for the
GIL; now that share is the window's own threads. Earlier: lowering the background threads'
priority (nice 4 or 10) made it worse (a low-priority thread preempted while holding the GIL).
"""

from __future__ import annotations

import dataclasses
import gc
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from PySide6.QtCore import QTimer

from app.net.runner import QueueRunner
from app.settings import load_settings, save_settings
from app.startup import startup_done
from app.store.local import Store
from app.ui.main import application
from app.ui.main_window import MainWindow
from tests.conftest import REPO, relay_env
from tests.loop_probe import LoopProbe, Stall
from tests.net import conftest as net
from tests.net.conftest import add_hub, hub_sop_uids, import_study, make_hub
from tests.net.test_soak import SLICES, STUDIES, _studies
from tests.proxies import FaultyLink

no_system_keyring = net.no_system_keyring


#: The event loop may not stall longer than this in the 99th percentile of its gaps, nor at
#: all longer than STALL_MAX: a real freeze here (the GUI thread waiting on the hub) lasts at
#: least the link's read timeout (1 s) or its stalls (1.5 s). Between the two, a busy 2-core
#: machine stretches stalls: with a CPU hog beside the test up to ~700 ms seen (and once
#: 900 ms with the whole process stopped), of which the GUI thread's own work was at most
#: ~80 ms; the rest was waiting for a CPU or for the GIL (tests/loop_probe.py splits them).
STALL_P99 = 0.100
STALL_MAX = 0.750
#: The GUI thread's own CPU time in any one stall (its work, as opposed to the time it waited
#: for a CPU or the GIL): under 100 ms even when other processes stretch the stall around it.
GUI_WORK_MAX = 0.100
#: Where the GUI thread may never be found during a stall: talking to the hub.
NETWORK_CODE = ("net/http.py", "net/dicomweb.py", "net/fetch.py", "net/send.py")


@pytest.fixture
def as_relay_runs(qapp):
    """The test process set up as ``relay`` sets up its own (:func:`app.ui.main.run`): the GUI
    thread's GIL switch interval, start-up objects out of the collector's full passes."""
    interval = sys.getswitchinterval()
    application()
    startup_done()
    yield
    gc.unfreeze()
    sys.setswitchinterval(interval)


def _settings(home: Path, url: str, *, verify_bytes: bool = False) -> None:
    assert add_hub(home, url).returncode == 0
    settings = load_settings(home)
    settings.hubs = [dataclasses.replace(h, read_timeout=1.0, connect_timeout=2.0)
                     for h in settings.hubs]
    settings.transfer = dataclasses.replace(
        settings.transfer, batch_instances=2, in_flight=2, max_attempts=4,
        retry_initial_seconds=0.05, retry_max_seconds=0.3, verify_bytes=verify_bytes)
    save_settings(home, settings)


def _queued(qtbot, queue_them) -> list[str]:
    """Queue the jobs from a thread of their own (as a prefetch or a script would): twenty
    durable queue writes in a row are the test's, not a click's."""
    out: list[str] = []
    worker = threading.Thread(target=lambda: out.extend(queue_them()))
    worker.start()
    qtbot.waitUntil(lambda: not worker.is_alive(), timeout=60_000)
    return out


def _until_all_verified(qtbot, runner: QueueRunner, job_ids: list[str], timeout: float) -> None:
    """Wait (the event loop running) until every job is verified; retry stopped ones."""
    retries = 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = {j.id: j.state for j in runner.jobs() if j.id in job_ids}
        if all(s == "verified" for s in states.values()):
            return
        for job_id, state in states.items():
            if state in ("failed", "stuck"):
                retries += 1
                assert retries < 10 * len(job_ids), states
                runner.retry(job_id)
        qtbot.wait(200)
    raise AssertionError(f"not all verified: {states}")


def _stall_naming(probe: LoopProbe, where: str) -> Stall:
    named = [s for s in probe.stalls if any(where in sample[0] for sample in s.samples)]
    assert named, probe.report()
    return max(named, key=lambda s: s.seconds)


def test_the_probe_catches_a_frozen_event_loop_and_names_where(qtbot) -> None:
    """What the soak asserts would fail on a freeze: a GUI-thread wait of 1 s (as a socket
    read on the GUI thread would be) is measured, named, and counted as waiting, not work; a
    busy GUI thread is counted as work (running, or runnable when the CPUs are taken)."""
    probe = LoopProbe()
    probe.start()
    qtbot.wait(100)
    QTimer.singleShot(0, lambda: time.sleep(1.0))  # stands for a socket read on the GUI thread
    qtbot.wait(1300)

    def busy() -> None:
        end = time.perf_counter() + 0.5
        while time.perf_counter() < end:
            pass
    QTimer.singleShot(0, busy)
    qtbot.wait(800)
    probe.stop()
    assert probe.stall() >= STALL_MAX
    # on a busy machine a stall can begin before the callback does (the loop late already):
    # the stall is the one whose samples name it, not necessarily its first sample
    frozen = _stall_naming(probe, "<lambda>")
    spun = _stall_naming(probe, " busy")
    assert frozen.seconds >= 0.9 and frozen.waiting >= 0.7, probe.report()
    assert "<lambda>" in frozen.top(1)[0][1][0], probe.report()  # most samples name it
    assert spun.seconds >= 0.4 and spun.running + spun.runnable >= 0.3, probe.report()
    assert " busy" in spun.top(1)[0][1][0], probe.report()


class _Peer:
    """A child process of :mod:`tests.soak_peers` (the link or the spoke), its output read."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.soak_peers", *args], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True, env=relay_env(), cwd=REPO)

    def answer(self, line: str | None = None) -> dict:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        if line is not None:
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


@pytest.mark.orthanc
@pytest.mark.slow
def test_the_window_never_stalls_during_the_faulty_link_soak(qtbot, tmp_path,
                                                             as_relay_runs) -> None:
    hub = make_hub(tmp_path).start(timeout=60)
    # the WAN and the spoke station are processes of their own, as they are in life: threads
    # of this process would take the GIL from the window's GUI thread (tests/soak_peers.py)
    link = _Peer("link", str(hub.config.http_port), "--rate", "0.35", "--seed", "21",
                 "--stall", "1.5", "--max-cut", str(48 * 1024))
    spoke: _Peer | None = None
    bare: _Peer | None = None
    spoke_home, reader_home = tmp_path / "spoke", tmp_path / "reader"
    reader_home.mkdir(mode=0o700)
    probe = LoopProbe()
    try:
        url = f"http://127.0.0.1:{link.answer()['port']}/dicom-web"
        studies = [import_study(spoke_home, files)[1] for files in _studies(tmp_path / "src")]
        spoke_store = Store(spoke_home)
        expected = sorted(i.sop_instance_uid for uid in studies
                          for s in spoke_store.study(uid).series
                          for i in spoke_store.instances(s.series_instance_uid))
        _settings(spoke_home, url, verify_bytes=True)
        _settings(reader_home, url)
        window = MainWindow(Store(reader_home))
        qtbot.addWidget(window)
        window.show()
        qtbot.waitExposed(window)
        bare = _Peer("bare")
        assert bare.answer()["ready"]
        probe.start()

        spoke = _Peer("spoke", str(spoke_home), *studies, "--timeout", "600")
        qtbot.waitUntil(lambda: spoke is not None and spoke.proc.poll() is not None,
                        timeout=660_000)
        sent = spoke.answer()
        assert spoke.proc.returncode == 0, sent
        # the test's own look at the hub, off the GUI thread (the probe measures the window)
        assert sorted(_queued(qtbot, lambda: hub_sop_uids(hub))) == expected

        runner = window.queue_runner()
        fetches = _queued(qtbot, lambda: [runner.fetch("hub", uid) for uid in studies])
        _until_all_verified(qtbot, runner, fetches, timeout=600)
        qtbot.wait(500)  # the browser catches up with the last arrivals
        probe.stop()
        anchor = bare.answer("stop")
        held = Store(reader_home)
        assert sum(len(held.instances(s.series_instance_uid)) for uid in studies
                   for s in held.study(uid).series) == STUDIES * SLICES
        counts = link.answer("counts")
    finally:
        probe.stop()
        for peer in (spoke, bare):
            if peer is not None:
                peer.close()
        link.close()
        hub.stop()
    faults = {k: v for k, v in counts.items() if k != "none"}
    assert len(faults) == len(FaultyLink.FAULTS), counts
    sys.stderr.write(probe.report(5) + "\n")
    # the machine's share, measured beside it: an empty Qt event loop in a process of its own
    sys.stderr.write(f"bare Qt event loop, same time: {anchor['summary']}\n")
    assert probe.stall(0.99) < STALL_P99, probe.report()
    assert probe.stall() < STALL_MAX, probe.report()
    # the product's own share: no single stretch of GUI-thread work (its CPU time, which a busy
    # machine does not stretch) of 100 ms or more; waiting for a CPU or the GIL is not work
    assert all(s.running < GUI_WORK_MAX for s in probe.stalls), probe.report()
    assert not [s for s in probe.stalls for stack in s.samples
                if any(n in frame for frame in stack for n in NETWORK_CODE)], probe.report(10)
