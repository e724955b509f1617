"""docs/conformance-statement.md is true to the code: its SOP class and transfer syntax tables
are compared with the lists the code uses (derived here from the modules themselves), so a new
SOP class, a dropped transfer syntax or a changed order of preference fails this test until the
document says so (regenerate the tables with docs/conformance_tables.py)."""

from __future__ import annotations

import importlib.util
import re
from types import ModuleType

import pytest
from pynetdicom.sop_class import _STORAGE_CLASSES as STORAGE_CLASSES

from app import __version__
from app.dicom.codecs import CODECS, NATIVE
from app.net.dimse import client, listener
from app.workflow.worklist import MWL_FIND, PATIENT_ROOT_FIND
from tests.conftest import REPO

DOC = REPO / "docs" / "conformance-statement.md"
UID_CELL = re.compile(r"`([0-9.]+)`")


def block(name: str) -> list[str]:
    """The UIDs listed between ``<!-- list: name -->`` and ``<!-- end -->``, in order."""
    text = DOC.read_text(encoding="utf-8")
    found = re.search(rf"<!-- list: {re.escape(name)} -->\n(.*?)<!-- end -->", text, re.S)
    assert found, f"{DOC.name} has no '{name}' list"
    return UID_CELL.findall(found.group(1))


def tables() -> ModuleType:
    """docs/conformance_tables.py, which reads the roles from the node's application entity and
    from the SCU modules' source."""
    spec = importlib.util.spec_from_file_location("conformance_tables",
                                                  REPO / "docs" / "conformance_tables.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def roles() -> dict[str, tuple[str, str]]:
    """The services table of the document: ``{uid: (SCU, SCP)}``."""
    text = DOC.read_text(encoding="utf-8")
    found = re.search(r"<!-- list: services -->\n(.*?)<!-- end -->", text, re.S)
    assert found
    rows = re.findall(r"\| `([0-9.]+)` \| (Yes|No) \| (Yes|No) \|", found.group(1))
    return {uid: (scu, scp) for uid, scu, scp in rows}


def test_services_and_roles_are_the_ones_the_node_and_the_client_use() -> None:
    yes = {True: "Yes", False: "No"}
    code = {uid: (yes[scu], yes[scp]) for uid, scu, scp in tables().services()}
    assert roles() == code


def test_the_dimse_services_are_all_found_in_the_code() -> None:
    """The derivation itself: every service DIMSE landed with, in the role it has."""
    services = {uid: (scu, scp) for uid, scu, scp in tables().services()}
    study_root = listener._QR_MODELS
    patient_root = listener.find_scp.PATIENT_ROOT_MODELS
    assert services[listener.VERIFICATION] == (True, True)
    assert all(services[uid] == (True, True) for uid in study_root)  # FIND, GET, MOVE
    assert services[PATIENT_ROOT_FIND] == (True, True)  # worklist's patient query; the node
    assert all(services[uid] == (False, True) for uid in patient_root[1:])  # GET, MOVE
    assert services[str(client.StorageCommitmentPushModel)] == (True, True)
    assert services[MWL_FIND] == (True, False)
    assert len(services) == 9


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
