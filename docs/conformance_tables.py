"""Print the SOP class and transfer syntax tables of docs/conformance-statement.md from the code
(``.venv/bin/python docs/conformance_tables.py``), to paste between the document's
``<!-- list: NAME -->`` and ``<!-- end -->`` markers. tests/core/test_conformance.py derives
the same lists from the code and compares them with the document, so they cannot drift.
"""

from __future__ import annotations

from pydicom.uid import UID
from pynetdicom.sop_class import _STORAGE_CLASSES as STORAGE_CLASSES

from app.dicom.codecs import CODECS, NATIVE
from app.net.dimse import client, listener
from app.workflow.worklist import MWL_FIND


def name(uid: str) -> str:
    return UID(uid).name if UID(uid).is_valid and UID(uid).name != uid else uid


def table(rows: list[tuple[str, ...]], header: tuple[str, ...]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def blocks() -> dict[str, str]:
    services = [
        (name(listener.VERIFICATION), f"`{listener.VERIFICATION}`", "Yes", "Yes"),
        *[(name(u), f"`{u}`", "Yes", "Yes") for u in listener._QR_MODELS],
        (name(client.StorageCommitmentPushModel), f"`{client.StorageCommitmentPushModel}`",
         "Yes", "No"),
        (name(MWL_FIND), f"`{MWL_FIND}`", "Yes", "No"),
    ]
    storage = sorted(STORAGE_CLASSES.items(), key=lambda kv: kv[1])
    return {
        "services": table(services, ("SOP Class", "UID", "SCU", "SCP")),
        "storage": table([(name(uid), f"`{uid}`") for _, uid in storage],
                         ("Storage SOP Class", "UID")),
        "ts-scp": table([(name(u), f"`{u}`") for u in listener._TRANSFER_SYNTAXES],
                        ("Transfer Syntax (in order of preference)", "UID")),
        "ts-receive": table([(name(u), f"`{u}`") for u in client.RECEIVE_SYNTAXES],
                            ("Transfer Syntax (in order of preference)", "UID")),
        "ts-decode": table(
            [(name(u), f"`{u}`", "native") for u in sorted(NATIVE)]
            + [(name(u), f"`{u}`", c.name + (" (lossy)" if c.lossy else ""))
               for c in CODECS for u in c.uids],
            ("Transfer Syntax", "UID", "Decoder")),
    }


if __name__ == "__main__":
    for key, text in blocks().items():
        print(f"<!-- list: {key} -->\n{text}\n<!-- end -->\n")
