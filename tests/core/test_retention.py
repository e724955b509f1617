"""Storage rules: what `relay purge` removes and keeps back (and why), the atomic removal of
files and index rows (a real purge process killed half-way leaves a consistent store), the
open-study registry and the low-disk warning."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from app.dicom.synth import SeriesSpec, generate_series
from app.imports.importer import import_paths
from app.net.queue import TransferQueue
from app.settings import StorageSettings, load_settings
from app.store import retention
from app.store.check import check_store
from app.store.local import Store
from app.store.opened import OpenStudies, open_studies
from app.store.space import low_disk_warning
from tests.conftest import relay_cmd, relay_env

DAY = 86400.0


def add_studies(home: Path, tmp: Path, n: int, slices: int = 3) -> list[str]:
    """``n`` small synthetic studies in the store of ``home``; their UIDs, oldest first."""
    store = Store(home)
    uids = []
    for i in range(n):
        src = tmp / f"src{i}"
        generate_series(src, SeriesSpec(slices=slices, rows=32, columns=32, seed=i,
                                        patient_id=f"P{i}",
                                        study_instance_uid=f"1.2.826.0.1.3680043.8.498.9{i}",
                                        series_instance_uid=f"1.2.826.0.1.3680043.8.498.8{i}"))
        import_paths(store, [src])
        uids.append(f"1.2.826.0.1.3680043.8.498.9{i}")
    store.close()
    return uids


def age(home: Path, study_uid: str, days: float) -> None:
    """Make ``study_uid`` look received ``days`` ago."""
    store = Store(home)
    with store.transaction() as conn:
        conn.execute("UPDATE studies SET added_at=? WHERE study_instance_uid=?",
                     (time.time() - days * DAY, study_uid))
    store.close()


def verify_on(home: Path, hub: str, study_uid: str, *, state: str = "verified",
              only: int | None = None) -> None:
    """Record a send job of ``study_uid`` to ``hub`` whose items the hub confirmed holding."""
    store = Store(home)
    sops = [r[0] for r in store.connection().execute(
        "SELECT sop_instance_uid FROM instances WHERE study_instance_uid=?", (study_uid,))]
    store.close()
    queue = TransferQueue(home)
    job = queue.create("send", hub, study_uid, [], [(s, "", "", 0) for s in sops])
    queue.mark(job.id, sops[:only] if only is not None else sops, "verified")
    with queue._tx() as conn:  # the job's own state, as the runner leaves it
        conn.execute("UPDATE jobs SET state=? WHERE id=?", (state, job.id))
    queue.close()


@pytest.fixture
def four(home: Path, tmp_path: Path) -> list[str]:
    uids = add_studies(home, tmp_path, 4)
    for uid, days in zip(uids, (40, 35, 30, 1), strict=True):
        age(home, uid, days)
    return uids


def by_uid(decisions) -> dict[str, str]:
    return {d.study_uid: d.reason for d in decisions}


def test_age_rule_purges_only_verified_old_studies_and_says_why(home: Path, four: list[str]):
    old_verified, old_unverified, old_partly, recent = four
    verify_on(home, "hub", old_verified)
    verify_on(home, "pacs", old_partly, only=1)  # one instance of three confirmed
    verify_on(home, "hub", recent)
    plan = retention.plan(Store(home), StorageSettings(keep_days=7))
    assert list(by_uid(plan.purge)) == [old_verified]
    assert "received 40 days ago" in plan.purge[0].reason
    assert "verified on hub" in plan.purge[0].reason
    kept = by_uid(plan.kept)
    assert set(kept) == {old_unverified, old_partly}  # the recent one is not reached at all
    assert all("not verified on any hub or PACS" in r for r in kept.values())


def test_rule_without_only_verified_lets_unverified_studies_go(home: Path, four: list[str]):
    plan = retention.plan(Store(home), StorageSettings(keep_days=7, only_verified=False))
    assert list(by_uid(plan.purge)) == four[:3]
    assert all("not verified on any hub or PACS (the rule allows it)" in d.reason
               for d in plan.purge)


def test_studies_open_in_a_window_or_in_a_transfer_are_never_purged(home: Path,
                                                                      four: list[str]):
    for uid in four:
        verify_on(home, "hub", uid)
    opened = OpenStudies(home)
    opened.add(four[0])
    queue = TransferQueue(home)
    queue.create("fetch", "hub", four[1], [], [])  # queued: unfinished
    queue.close()
    plan = retention.plan(Store(home), StorageSettings(keep_days=7, only_verified=False))
    assert list(by_uid(plan.purge)) == [four[2]]
    kept = by_uid(plan.kept)
    assert "open in a Relay window" in kept[four[0]]
    assert "unfinished transfer" in kept[four[1]]
    opened.clear()
    assert open_studies(home) == set()


def test_open_study_files_of_killed_windows_are_ignored(home: Path):
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        folder = home / "open-studies"
        folder.mkdir()
        (folder / f"{child.pid}.json").write_text(json.dumps(["1.2.3"]))
        assert open_studies(home) == {"1.2.3"}
    finally:
        child.kill()
        child.wait()
    assert open_studies(home) == set()
    assert not (home / "open-studies" / f"{child.pid}.json").exists()


def test_size_rule_purges_oldest_first_until_under_the_limit(home: Path, four: list[str]):
    for uid in four:
        verify_on(home, "hub", uid)
    uses = retention.study_uses(Store(home))
    total = sum(u.bytes for u in uses)
    limit_gb = (total - uses[0].bytes - uses[1].bytes // 2) / 1e9  # two oldest must go
    plan = retention.plan(Store(home), StorageSettings(keep_gb=limit_gb))
    assert list(by_uid(plan.purge)) == four[:2]
    assert "oldest go first" in plan.purge[0].reason


def test_purge_removes_files_and_rows_and_the_store_checks_clean(home: Path, four: list[str]):
    verify_on(home, "hub", four[0])
    store = Store(home)
    paths = [store.abspath(r[0]) for r in store.connection().execute(
        "SELECT path FROM instances WHERE study_instance_uid=?", (four[0],))]
    result = retention.purge(store, StorageSettings(keep_days=7))
    assert [d.study_uid for d in result.removed] == [four[0]]
    assert store.study(four[0]) is None and not any(p.exists() for p in paths)
    assert check_store(store).sound
    assert [s.study_instance_uid for s in store.studies()].count(four[1]) == 1


def test_purge_dry_run_json_lists_what_would_go_and_why(home: Path, four: list[str]):
    verify_on(home, "hub", four[0])
    out = subprocess.run(relay_cmd("--home", str(home), "purge", "--dry-run", "--json",
                                   "--keep-days", "7"),
                         capture_output=True, text=True, env=relay_env(), check=True).stdout
    plan = json.loads(out)
    assert plan["dry_run"] is True
    assert [p["study_instance_uid"] for p in plan["purge"]] == [four[0]]
    assert {k["study_instance_uid"] for k in plan["kept"]} == set(four[1:3])
    assert Store(home).study(four[0]) is not None  # a dry run removes nothing


def test_retention_command_saves_the_rule_that_purge_then_applies(home: Path, four: list[str]):
    verify_on(home, "hub", four[0])
    shown = json.loads(subprocess.run(
        relay_cmd("--home", str(home), "retention", "--keep-days", "10", "--keep-gb", "50",
                  "--no-only-verified", "--json"),
        capture_output=True, text=True, env=relay_env(), check=True).stdout)
    assert (shown["keep_days"], shown["keep_gb"], shown["only_verified"]) == (10, 50.0, False)
    assert load_settings(home).storage == StorageSettings(keep_days=10, keep_gb=50.0,
                                                          only_verified=False)
    subprocess.run(relay_cmd("--home", str(home), "retention", "--only-verified"),
                   capture_output=True, env=relay_env(), check=True)
    result = json.loads(subprocess.run(relay_cmd("--home", str(home), "purge", "--json"),
                                       capture_output=True, text=True, env=relay_env(),
                                       check=True).stdout)
    assert [r["study_instance_uid"] for r in result["removed"]] == [four[0]]


KILLED_MID_DELETE = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    from app.settings import StorageSettings
    from app.store import retention
    from app.store.local import Store

    removed = []
    real_unlink = Path.unlink

    def unlink(self, missing_ok=False):
        real_unlink(self, missing_ok=missing_ok)
        removed.append(self)
        if len(removed) == int(sys.argv[2]):  # some files of the study gone, others not yet
            os.kill(os.getpid(), signal.SIGKILL)

    Path.unlink = unlink
    retention.purge(Store(Path(sys.argv[1])), StorageSettings(keep_days=7, only_verified=False))
""")


def assert_consistent(home: Path, before: dict[str, int]) -> dict[str, int]:
    """Each study whole or gone, no index row naming a missing file, no file nobody names."""
    store = Store(home)  # finishes an interrupted deletion
    report = check_store(store)
    assert report.missing == () and report.orphans == () and report.altered == (), report
    counts = {s: n for s, n in store.connection().execute(
        "SELECT study_instance_uid, COUNT(*) FROM instances GROUP BY study_instance_uid")}
    for uid, n in counts.items():
        assert n == before[uid], f"{uid}: {n} of {before[uid]} instances left"
    assert store.connection().execute("SELECT COUNT(*) FROM pending_deletes").fetchone()[0] == 0
    store.close()
    return counts


def instance_counts(home: Path) -> dict[str, int]:
    store = Store(home)
    counts = {s: n for s, n in store.connection().execute(
        "SELECT study_instance_uid, COUNT(*) FROM instances GROUP BY study_instance_uid")}
    store.close()
    return counts


def test_purge_killed_between_removing_rows_and_files_is_finished_on_next_open(
        home: Path, tmp_path: Path):
    uids = add_studies(home, tmp_path, 2, slices=6)
    for uid in uids:
        age(home, uid, 30)
    before = instance_counts(home)
    child = subprocess.run([sys.executable, "-c", KILLED_MID_DELETE, str(home), "3"],
                           env=relay_env(), capture_output=True, text=True, timeout=120)
    assert child.returncode == -signal.SIGKILL, child.stderr
    store_files = sum(1 for p in (home / "store" / "objects").rglob("*") if p.is_file())
    assert store_files == 12 - 3  # killed with 3 of the first study's 6 files removed
    left = assert_consistent(home, before)
    assert left == {uids[1]: 6}  # the first study is gone whole; the second untouched


@pytest.mark.slow
def test_relay_purge_killed_at_a_random_moment_leaves_a_consistent_store(
        home: Path, tmp_path: Path):
    uids = add_studies(home, tmp_path, 12, slices=8)
    for uid in uids:
        age(home, uid, 30)
    before = instance_counts(home)
    purge = subprocess.Popen(relay_cmd("--home", str(home), "-v", "purge", "--keep-days", "7",
                                       "--no-only-verified"),
                             env=relay_env(), stderr=subprocess.PIPE, text=True)
    assert purge.stderr is not None
    deadline = time.monotonic() + 120
    line = ""
    while time.monotonic() < deadline and "purge: removed" not in line:
        line = purge.stderr.readline()
        if not line and purge.poll() is not None:
            break
    purge.send_signal(signal.SIGKILL)  # kill -9 while the next studies are being removed
    purge.wait()
    assert "purge: removed" in line
    left = assert_consistent(home, before)
    assert 0 < len(before) - len(left) < len(before) or purge.returncode == 0


def test_low_disk_warning_names_the_free_space_and_what_to_do(home: Path):
    assert low_disk_warning(home, StorageSettings(low_disk_gb=0.0)) is None
    warning = low_disk_warning(home, StorageSettings(low_disk_gb=1e9))  # a billion GB
    assert warning is not None
    assert "low disk space" in warning and "relay purge --dry-run" in warning
    assert str(home) in warning


def test_import_warns_before_it_runs_short_of_disk(home: Path, tmp_path: Path):
    src = tmp_path / "src"
    generate_series(src, SeriesSpec(slices=2, rows=16, columns=16))
    subprocess.run(relay_cmd("--home", str(home), "retention", "--low-disk-gb", "1000000000"),
                   env=relay_env(), check=True, capture_output=True)
    result = subprocess.run(relay_cmd("--home", str(home), "import", str(src), "--json"),
                            env=relay_env(), capture_output=True, text=True)
    assert result.returncode == 0
    assert "low disk space" in result.stderr
    assert json.loads(result.stdout)["imported"] == 2
