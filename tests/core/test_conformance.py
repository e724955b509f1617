"""docs/conformance-statement.md is true to the code: its SOP class and transfer syntax tables
are compared with the lists the code uses (derived here from the modules themselves), so a new
SOP class, a dropped transfer syntax or a changed order of preference fails this test until the
document says so (regenerate the tables with docs/conformance_tables.py)."""

from __future__ import annotations

import re

import pytest
from pynetdicom.sop_class import _STORAGE_CLASSES as STORAGE_CLASSES

from app import __version__
from app.dicom.codecs import CODECS, NATIVE
from app.net.dimse import client, listener
from app.workflow.worklist import MWL_FIND
from tests.conftest import REPO

DOC = REPO / "docs" / "conformance-statement.md"
UID_CELL = re.compile(r"`([0-9.]+)`")


def block(name: str) -> list[str]:
    """The UIDs listed between ``<!-- list: name -->`` and ``<!-- end -->``, in order."""
    text = DOC.read_text(encoding="utf-8")
    found = re.search(rf"<!-- list: {re.escape(name)} -->\n(.*?)<!-- end -->", text, re.S)
    assert found, f"{DOC.name} has no '{name}' list"
    return UID_CELL.findall(found.group(1))


def test_services_are_the_ones_the_node_and_the_client_use() -> None:
    code = [listener.VERIFICATION, *listener._QR_MODELS, str(client.StorageCommitmentPushModel),
            MWL_FIND]
    assert block("services") == code


def test_storage_sop_classes_are_the_ones_the_node_accepts() -> None:
    assert sorted(block("storage")) == sorted(STORAGE_CLASSES.values())


@pytest.mark.parametrize(("name", "code"), [
    ("ts-scp", listener._TRANSFER_SYNTAXES),
    ("ts-receive", [str(u) for u in client.RECEIVE_SYNTAXES]),
])
def test_transfer_syntaxes_and_their_order_of_preference(name: str, code: list[str]) -> None:
    assert block(name) == code


def test_decodable_transfer_syntaxes_are_the_codec_table() -> None:
    code = sorted(NATIVE) + [u for c in CODECS for u in c.uids]
    assert block("ts-decode") == code


def test_the_statement_is_for_this_version_and_has_the_ps3_2_sections() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert text.startswith(f"# Relay {__version__} ")
    for section in ("Overview", "Implementation model", "AE specifications",
                    "Association initiation policy", "Association acceptance policy",
                    "Network interfaces", "Configuration", "DICOMweb", "Media interchange",
                    "Transfer syntaxes", "character sets", "Security"):
        assert section.lower() in text.lower(), section
