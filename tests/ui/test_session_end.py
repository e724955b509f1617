"""SIGTERM (a desktop session ending, a service manager) and Ctrl-C close the window as
File -> Quit does: transfers and the node stop, the open-study registry is cleared, exit 0."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest

from tests.conftest import StderrLines, relay_cmd, relay_env


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_closes_the_window_cleanly_with_exit_0(home: Path, signum: int) -> None:
    env = dict(relay_env(), QT_QPA_PLATFORM="offscreen")
    subprocess.run(relay_cmd("--home", str(home), "demo", "--slices", "16", "--json"),
                   env=env, check=True, capture_output=True, timeout=300)
    window = subprocess.Popen(relay_cmd("--home", str(home), "-v", str(home / "store")),
                              env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                              text=True)
    try:
        StderrLines(window).wait_for(["window shown", "study opened"], timeout=120)
        assert list((home / "open-studies").glob("*.json"))  # the study is marked open
        window.send_signal(signum)
        assert window.wait(timeout=60) == 0
        assert not list((home / "open-studies").glob("*.json"))  # and no longer
    finally:
        if window.poll() is None:
            window.kill()
            window.wait()
