"""The window soak's other parties, each in a process of its own: the faulty WAN and the spoke.

The soak (``tests/ui/test_soak_window.py``) measures the window's event loop. The link that
breaks connections and the spoke station that sends the studies are not the window: run as
threads of the test's process they took the GIL from the window's GUI thread (on a two-core
machine with a CPU hog, their threads were found holding it through stalls), so the soak charged
the window for work a real window never shares a process with. Here each is a child process:

``python -m tests.soak_peers link BACKEND_PORT [--seed N --rate R --stall S --max-cut B]``
    a :class:`tests.proxies.FaultyLink` to ``BACKEND_PORT``; prints ``{"port": P}`` when it
    listens, then answers each ``counts`` line on stdin with the faults dealt so far (JSON), and
    ends at end of input.

``python -m tests.soak_peers bare``
    an empty Qt event loop with the soak's probe: the stalls the machine alone causes (the
    anchor the window's stalls are read against); prints ``{"ready": true}``, then on a
    ``stop`` line ``{"max", "p99", "summary"}``.

``python -m tests.soak_peers spoke HOME STUDY_UID ... [--timeout S]``
    the spoke's queue runner sends each study to its hub ``hub`` and retries stopped jobs as a
    user would (the Retry button) until every job is verified; prints
    ``{"states": {job: state}, "retries": n}``; exit 0 when all are verified, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def _say(answer: dict) -> None:
    """One JSON line to the test that started this process."""
    sys.stdout.write(json.dumps(answer) + "\n")
    sys.stdout.flush()


def link(args: argparse.Namespace) -> int:
    from tests.proxies import FaultyLink

    proxy = FaultyLink(args.backend_port, rate=args.rate, seed=args.seed, stall=args.stall,
                       max_cut=args.max_cut)
    try:
        _say({"port": proxy.port})
        for line in sys.stdin:
            if line.strip() == "counts":
                _say(dict(proxy.counts))
    finally:
        proxy.close()
    return 0


def spoke(args: argparse.Namespace) -> int:
    from app.net.runner import QueueRunner

    runner = QueueRunner(Path(args.home), poll_seconds=0.1).start()
    retries = 0
    states: dict[str, str] = {}
    try:
        jobs = [runner.send("hub", uid) for uid in args.studies]
        deadline = time.monotonic() + args.timeout
        while time.monotonic() < deadline:
            states = {j.id: j.state for j in runner.jobs() if j.id in jobs}
            if all(s == "verified" for s in states.values()):
                break
            for job_id, state in states.items():
                if state in ("failed", "stuck") and retries < 10 * len(jobs):
                    retries += 1
                    runner.retry(job_id)
            time.sleep(0.2)
    finally:
        runner.stop()
    _say({"states": states, "retries": retries})
    return 0 if states and all(s == "verified" for s in states.values()) else 1


def bare(args: argparse.Namespace) -> int:
    """An empty Qt event loop probed as the window's is: how long the machine alone (the same
    CPUs, the same neighbours, no Relay code on this thread) keeps a GUI thread from its loop.
    Answers ``stop`` with ``{"max", "p99", "summary"}`` (seconds) and ends."""
    import os
    import threading

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from tests.loop_probe import LoopProbe

    sys.setswitchinterval(0.0005)  # as relay's GUI process (app.ui.main.application)
    app = QApplication([])
    probe = LoopProbe()
    asked = threading.Event()

    def read() -> None:
        for line in sys.stdin:
            if line.strip() == "stop":
                break
        asked.set()
    threading.Thread(target=read, daemon=True).start()
    poll = QTimer()
    poll.timeout.connect(lambda: asked.is_set() and app.quit())
    poll.start(50)
    probe.start()
    _say({"ready": True})
    app.exec()
    probe.stop()
    _say({"max": probe.stall(), "p99": probe.stall(0.99), "summary": probe.summary()})
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.soak_peers")
    sub = parser.add_subparsers(dest="role", required=True)
    p = sub.add_parser("link")
    p.add_argument("backend_port", type=int)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rate", type=float, default=0.3)
    p.add_argument("--stall", type=float, default=1.5)
    p.add_argument("--max-cut", type=int, default=256 * 1024)
    p.set_defaults(run=link)
    p = sub.add_parser("spoke")
    p.add_argument("home")
    p.add_argument("studies", nargs="+")
    p.add_argument("--timeout", type=float, default=600)
    p.set_defaults(run=spoke)
    sub.add_parser("bare").set_defaults(run=bare)
    args = parser.parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
