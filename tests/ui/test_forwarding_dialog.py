"""Settings → Forwarding…: rules edited, checked and saved; the window applies them.

The user guide's screenshot is taken here: set RELAY_SCREENSHOTS=docs/screenshots."""

from __future__ import annotations

import os
from pathlib import Path

from app.settings import HubProfile, load_settings, save_settings
from app.ui.forwarding_dialog import ForwardingDialog


def with_hub(home):
    settings = load_settings(home)
    settings.hubs = [HubProfile(name="stroke-hub", url="https://hub.example.org/dicom-web")]
    save_settings(home, settings)


def test_the_stroke_example_is_added_aimed_at_the_hub_and_saved(qtbot, home, tmp_path):
    with_hub(home)
    dialog = ForwardingDialog(home)
    qtbot.addWidget(dialog)
    dialog.add_example()
    dialog.resize(900, 620)
    dialog.show()
    qtbot.waitExposed(dialog)
    out = Path(os.environ.get("RELAY_SCREENSHOTS") or tmp_path / "shots")
    out.mkdir(parents=True, exist_ok=True)
    assert dialog.grab().save(str(out / "door-forwarding.png"))
    assert dialog.table.rowCount() == 1
    assert dialog.form.description_edit.text() == "STROKE|CODE|CTA"
    dialog.form.modalities_edit.setText("ct, mr")
    dialog.n_spin.setValue(8)
    dialog.imports_box.setChecked(True)
    assert dialog.save()
    fwd = load_settings(home).forwarding
    (rule,) = fwd.rules
    assert rule.targets == ["hub:stroke-hub"] and rule.priority == "stroke"
    assert rule.modalities == ["CT", "MR"] and fwd.batch_instances == 8 and fwd.imports


def test_a_wrong_regular_expression_is_refused_in_plain_words(qtbot, home):
    with_hub(home)
    dialog = ForwardingDialog(home)
    qtbot.addWidget(dialog)
    dialog.add_example()
    dialog.form.body_edit.setText("HEAD(")
    assert not dialog.save()
    assert "not a regular expression" in dialog.status.text()
    assert load_settings(home).forwarding.rules == []
    dialog.remove_current()
    assert dialog.save() and dialog.table.rowCount() == 0
