"""A new stroke study on the hub: a sound, a tray message, and (when set) opened at once."""

from __future__ import annotations

from app.net.incoming import IncomingStudy
from app.settings import load_settings, save_settings
from app.store.local import Store
from app.ui.incoming import IncomingWidget


def study(uid: str, description: str, modality: str = "CT") -> IncomingStudy:
    return IncomingStudy(study_uid=uid, patient_name="", patient_id="", study_date="",
                         study_time="", description=description, modalities=(modality,),
                         instances=10, received=1.0, local_instances=0, new=True)


def test_a_stroke_study_is_announced_and_opened_only_when_the_setting_says(qtbot, home):
    widget = IncomingWidget(Store(home), lambda: None)  # type: ignore[arg-type, return-value]
    qtbot.addWidget(widget)
    opened: list[tuple[str, str]] = []
    widget.stroke_arrived.connect(lambda hub, uid: opened.append((hub, uid)))
    widget._announce("hub", [study("1.1", "CT HEAD CODE STROKE")])
    assert widget.notices[-1].startswith("STROKE study on hub 'hub'")
    assert opened == []  # off by default
    settings = load_settings(home)
    settings.incoming.open_stroke = True
    save_settings(home, settings)
    widget._announce("hub", [study("1.2", "CHEST ROUTINE"), study("1.3", "CTA CODE STROKE")])
    assert opened == [("hub", "1.3")]
    assert "STROKE" in widget.notices[-1]
    widget._announce("hub", [study("1.4", "CHEST ROUTINE")])
    assert opened == [("hub", "1.3")] and not widget.notices[-1].startswith("STROKE")
