"""The Timeline panel, and the view (first image drawn) it reads from the audit.

The user guide's screenshot is taken here: set RELAY_SCREENSHOTS=docs/screenshots."""

from __future__ import annotations

import pytest

from app.imports.importer import import_paths
from app.store.local import Store
from app.ui.timeline_panel import duration_words
from app.workflow import audit
from tests.ui.conftest import shown_window

GE = "ct-head/ge-hispeed-human-gantry-tilt"


@pytest.mark.parametrize(("seconds", "words"), [
    (None, "—"), (38.54, "38.5 s"), (252, "4 min 12 s"), (7500, "2 h 05 min")])
def test_durations_read_as_words(seconds, words):
    assert duration_words(seconds) == words


def test_opening_a_study_records_its_first_image_and_the_panel_shows_door_to_image(
        qtbot, home, data, tmp_path):
    store = Store(home)
    report = import_paths(store, [str(p) for p in sorted((data / GE).glob("*.dcm"))[:8]])
    (study,) = report.study_uids
    window = shown_window(qtbot, home, 1200, 800)
    window.reading.open_study(study)

    def viewed() -> bool:
        return any(e["event"] == "view" for e in audit.select(home, study_uid=study))

    qtbot.waitUntil(viewed, timeout=60_000)
    (view,) = [e for e in audit.select(home, study_uid=study) if e["event"] == "view"]
    assert view["event_id"]["code"] == "110103"
    assert view["detail"]["opened"] <= view["detail"]["first_image"]

    dialog = window.show_timeline(study)
    qtbot.waitUntil(lambda: dialog.timeline is not None, timeout=30_000)
    assert dialog.timeline is not None
    assert [s.stage for s in dialog.timeline.stages] == ["imported", "first_image"]
    assert dialog.headline.text().startswith("Door to image: ")
    assert dialog.table.rowCount() == 2
    assert dialog.table.item(1, 0).text() == "First image shown"
    out = tmp_path / "shots"  # the guide shows a whole stroke CT's way (docs/door_screenshots.py)
    out.mkdir()
    assert dialog.grab().save(str(out / "door-timeline-import.png"))
    dialog.close()
    store.close()


def test_stage_labels_that_crowd_together_do_not_overlap_and_stay_inside():
    from app.ui.timeline_panel import label_positions

    marks = [10.0, 700.0, 702.0, 703.0, 705.0, 706.0]
    widths = [60.0, 80.0, 70.0, 60.0, 90.0, 50.0]
    centres = label_positions(marks, widths, 0.0, 720.0)
    for side in (0, 1):
        spans = [(centres[i] - widths[i] / 2, centres[i] + widths[i] / 2)
                 for i in range(side, len(marks), 2)]
        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:], strict=False))
        assert all(lo >= 0.0 and hi <= 720.0 for lo, hi in spans)
    assert centres[0] == 10.0 + 20.0  # pushed inside the left edge, no further
