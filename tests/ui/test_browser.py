"""The store browser follows the store in place: arrivals add rows without rebuilding the tree,
the reader's selection, collapsed patients and series strip stay, and the store is read off the
GUI thread after arrivals."""

from __future__ import annotations

import threading
from pathlib import Path

from PySide6.QtCore import QModelIndex, QPersistentModelIndex

from app.dicom.synth import SeriesSpec, generate_series
from app.imports.importer import import_paths
from app.store.local import Store
from app.ui.browser import KIND_ROLE, UID_ROLE
from app.ui.main_window import MainWindow
from tests.ui.conftest import shown_window


def _import(home: Path, root: Path, *, patient: str, seed: int, study_uid: str | None = None,
            series: int = 1) -> str:
    files: list[Path] = []
    for n in range(series):
        files += generate_series(root / f"{patient}-{seed}-{n}", SeriesSpec(
            slices=2, rows=16, columns=16, seed=seed * 10 + n, patient_id=patient, noise_hu=0,
            study_instance_uid=study_uid))
    report = import_paths(Store(home), [str(f) for f in files])
    assert report.imported == len(files), report
    return report.study_uids[0]


def _study_items(window: MainWindow) -> dict[str, object]:
    model = window.browser.model
    out = {}
    for p in range(model.rowCount()):
        patient = model.item(p, 0)
        for s in range(patient.rowCount()):
            item = patient.child(s, 0)
            out[item.data(UID_ROLE)] = item
    return out


def _patients(window: MainWindow) -> list[str]:
    model = window.browser.model
    return sorted(model.item(p, 1).text() for p in range(model.rowCount()))


def test_an_arrival_changes_only_its_rows_and_the_reader_keeps_his_place(qtbot, tmp_path,
                                                                          home) -> None:
    first = _import(home, tmp_path, patient="A", seed=1)
    others = [_import(home, tmp_path, patient=p, seed=i + 2) for i, p in enumerate("BCDEFG")]
    window = shown_window(qtbot, home, 1200, 800)
    browser = window.browser
    assert len(_patients(window)) == 7  # more than 5 patients: studies start collapsed
    before = _study_items(window)
    assert browser.select_study(first)
    assert browser.strip.isVisible()
    # a persistent index: the arrival may take a row above it (rows are sorted by date)
    patient_b = QPersistentModelIndex(next(
        browser.proxy.index(r, 0) for r in range(browser.proxy.rowCount())
        if browser.proxy.index(r, 1).data() == "B"))
    assert browser.tree.isExpanded(QModelIndex(patient_b))
    browser.tree.collapse(QModelIndex(patient_b))  # the reader folds a patient away

    arrived = _import(home, tmp_path, patient="H", seed=20)
    window.refresh_soon()
    qtbot.waitUntil(lambda: arrived in _study_items(window), timeout=10_000)

    after = _study_items(window)
    assert all(after[uid] is before[uid] for uid in [first, *others])  # not rebuilt
    assert browser.selected() == ("study", first)  # still selected, strip still shown
    assert browser.strip.isVisible() and browser.strip.study is not None
    assert browser.strip.study.study_instance_uid == first
    assert patient_b.sibling(patient_b.row(), 1).data() == "B"  # the same patient
    assert not browser.tree.isExpanded(QModelIndex(patient_b))  # still folded
    new_patient = next(browser.proxy.index(r, 0) for r in range(browser.proxy.rowCount())
                       if browser.proxy.index(r, 1).data() == "H")
    assert browser.tree.isExpanded(new_patient)  # the newcomer is shown open


def test_a_study_that_grows_or_goes_is_updated_in_place(qtbot, tmp_path, home) -> None:
    study = _import(home, tmp_path, patient="A", seed=1)
    gone = _import(home, tmp_path, patient="B", seed=2)
    window = shown_window(qtbot, home, 1200, 800)
    item = _study_items(window)[study]
    assert item.rowCount() == 1  # one series
    assert window.browser.select_study(study)

    _import(home, tmp_path, patient="A", seed=3, study_uid=study, series=2)  # two more series
    Store(home).delete_study(gone)
    window.refresh()

    items = _study_items(window)
    assert items[study] is item and item.rowCount() == 3
    assert [item.child(r, 0).data(KIND_ROLE) for r in range(3)] == ["series"] * 3
    model = window.browser.model
    patient = item.parent()
    assert model.item(patient.row(), 8).text() == "6"  # the patient's image count follows
    assert gone not in items and _patients(window) == ["A"]  # the empty patient row went too
    assert window.browser.selected() == ("study", study)
    assert len(window.browser.strip.series_uids()) == 3  # the strip shows the new series


def test_a_note_replaces_the_last_one(qtbot, tmp_path, home) -> None:
    study = _import(home, tmp_path, patient="A", seed=1)
    window = shown_window(qtbot, home, 1200, 800)
    browser = window.browser
    item = _study_items(window)[study]
    base = item.text()
    browser.set_marks({study: "reconciled copy"})
    assert item.text() == f"{base}  [reconciled copy]"
    browser.set_marks({study: "de-identified copy"})
    assert item.text() == f"{base}  [de-identified copy]"
    browser.set_marks({})
    assert item.text() == base


def test_arrivals_are_read_off_the_gui_thread(qtbot, tmp_path, home) -> None:
    _import(home, tmp_path, patient="A", seed=1)
    window = shown_window(qtbot, home, 1200, 800)
    readers: list[str] = []
    read = window._read_store

    def recorded():
        readers.append(threading.current_thread().name)
        return read()
    window._read_store = recorded  # type: ignore[method-assign]
    arrived = _import(home, tmp_path, patient="B", seed=2)
    for _ in range(3):  # a burst of arrivals: read once or twice, not three times at once
        window.refresh_soon()
    qtbot.waitUntil(lambda: arrived in _study_items(window), timeout=10_000)
    assert readers and threading.main_thread().name not in readers, readers
    window.refresh()  # the user's own action reads at once, here
    assert readers[-1] == threading.main_thread().name
