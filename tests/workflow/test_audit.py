"""The append-only, hash-chained audit record."""

from __future__ import annotations

import json
import subprocess
import sys
import threading

from app.workflow import audit


def test_a_chain_of_events_verifies_and_any_edit_or_removal_is_found(home):
    for n in range(5):
        audit.record(home, "export", study_uid=f"1.2.3.{n}", detail={"instances": n})
    assert audit.verify(home) == audit.Verification(ok=True, lines=5)
    path = audit.audit_path(home)
    lines = path.read_text().splitlines(keepends=True)
    edited = json.loads(lines[2])
    edited["detail"]["instances"] = 99
    path.write_text("".join(lines[:2] + [json.dumps(edited) + "\n"] + lines[3:]))
    bad = audit.verify(home)
    assert not bad.ok and bad.bad_line == 3 and "edited" in bad.reason
    path.write_text("".join(lines[:1] + lines[2:]))
    removed = audit.verify(home)
    assert not removed.ok and removed.bad_line == 2
    run = subprocess.run([sys.executable, "-m", "app", "--home", str(home), "audit", "--verify",
                          "--json"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 1 and json.loads(run.stdout)["verified"]["bad_line"] == 2


def test_events_carry_the_dicom_audit_codes_user_and_host(home):
    entry = audit.record(home, "reconcile", study_uid="1.2.3", outcome=audit.MINOR_FAILURE)
    assert entry["event_id"] == {"code": "110110", "scheme": "DCM", "meaning": "Patient Record"}
    assert entry["action"] == "U" and entry["outcome"] == 4
    assert entry["host"] and "user" in entry and entry["time"][-6] in "+-"


def test_writers_on_several_threads_keep_one_chain(home):
    threads = [threading.Thread(target=lambda: [audit.record(home, "import") for _ in range(20)])
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert audit.verify(home) == audit.Verification(ok=True, lines=80)


def test_a_search_is_recorded_by_the_kinds_of_its_keys_never_their_values(home):
    from pydicom.dataset import Dataset

    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.PatientName = "DOE^J*"
    query.PatientID = ""  # a return key (universal matching), not a matching key
    query.StudyDate = None
    query.ModalitiesInStudy = ["CT", "MR"]
    query.SOPInstanceUID = []
    step = Dataset()
    step.Modality = "CT"
    step.ScheduledStationAETitle = ""
    query.ScheduledProcedureStepSequence = [step]
    keys = audit.matching_keys(query)
    assert keys == ["ModalitiesInStudy", "PatientName", "ScheduledProcedureStepSequence.Modality"]
    audit.query(home, "pacs@PACS@10.0.0.2:104", 3, level="STUDY", keys=keys)
    (entry,) = audit.read(home)
    assert entry["event_id"]["code"] == "110112"
    assert entry["detail"] == {"level": "study", "keys": keys, "answers": 3}
    assert "DOE" not in json.dumps(entry)
