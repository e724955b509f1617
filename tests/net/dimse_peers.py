"""DICOM peers for DIMSE tests: Orthanc with its DICOM port on (the PACS), and a pynetdicom
storage SCP that records every C-STORE it receives (for "nothing sent twice", syntaxes it
refuses, peers that abort or go silent) and, when asked, every Storage Commitment request,
reported on an association of its own as Orthanc does. Loopback only; stopped by the test."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AllStoragePresentationContexts, build_role, evt
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind, Verification

from app.errors import DimseError
from app.net.devhub import HubConfig, OrthancHub, free_port
from app.net.dimse.association import Endpoint, associate, make_ae, start_server
from app.net.dimse.client import COMMITMENT_INSTANCE, StorageCommitmentPushModel
from tests.net.conftest import HUB_PASSWORD, HUB_USER, relay

PACS_AE = "ORTHANC"


@dataclass
class Pacs:
    """An Orthanc PACS that knows Relay (AE ``RELAY``) at ``relay_port``."""

    hub: OrthancHub
    dicom_port: int
    relay_port: int

    def start(self) -> Pacs:
        self.hub.start()
        return self


@pytest.fixture
def pacs(tmp_path: Path) -> Iterator[Pacs]:
    """An Orthanc PACS for one test (import this fixture into the test module)."""
    p = make_pacs(tmp_path / "pacs").start()
    try:
        yield p
    finally:
        p.hub.stop()


def make_pacs(folder: Path, *, relay_ae: str = "RELAY", **modality: object) -> Pacs:
    relay_port, dicom_port = free_port(), free_port()
    entry = {"AET": relay_ae, "Host": "127.0.0.1", "Port": relay_port, **modality}
    hub = OrthancHub(HubConfig(storage=folder, http_port=free_port(), dicom_port=dicom_port,
                               dicom_aet=PACS_AE, modalities={"relay": entry},
                               users={HUB_USER: HUB_PASSWORD}))
    return Pacs(hub, dicom_port, relay_port)


def relay_home_for(home: Path, port: int, *, pacs_port: int, ae: str = PACS_AE,
                   name: str = "pacs", node_ae: str = "") -> Path:
    """A Relay home whose node listens on ``port`` and that knows the PACS as ``name``."""
    home.mkdir(parents=True, exist_ok=True)
    node = {"port": port, **({"ae_title": node_ae} if node_ae else {})}
    (home / "settings.json").write_text(json.dumps({"node": node}), encoding="utf-8")
    out = relay(home, "pacs", "add", name, "--host", "127.0.0.1", "--port", str(pacs_port),
                "--ae", ae)
    assert out.returncode == 0, out.stderr
    return home


class RecordingPacs:
    """A pynetdicom storage SCP (and, if ``find``, an IMAGE-level C-FIND SCP over what it
    received) that counts every C-STORE per SOP Instance UID."""

    def __init__(self, *, port: int = 0, ae_title: str = "PACS", uncompressed_only: bool = False,
                 find: bool = True, delay: float = 0.0, abort_after: int | None = None,
                 commit_to: int = 0, fail_commit_once: frozenset[str] = frozenset(),
                 hold_after: int | None = None) -> None:
        self.port = port or free_port()
        self.ae_title = ae_title
        self.received: dict[str, int] = {}
        self.syntaxes: dict[str, str] = {}
        self.datasets: dict[str, Dataset] = {}
        self.delay = delay
        self.abort_after = abort_after
        #: Relay's port for commitment reports (0: no Storage Commitment service)
        self.commit_to = commit_to
        #: instances reported as failed the first time they are asked for
        self.fail_commit_once = set(fail_commit_once)
        #: each N-ACTION: (instances asked for, C-STOREs received before it came)
        self.commit_requests: list[tuple[list[str], int]] = []
        self.reports_lost = 0  # commitment reports Relay was not there to take
        #: after this many C-STOREs, the next ones wait (30 s at most) for a commitment request
        self.hold_after = hold_after
        self._asked = threading.Event()
        self._lock = threading.Lock()
        ae = make_ae(ae_title)
        for cx in AllStoragePresentationContexts:
            assert cx.abstract_syntax is not None
            if uncompressed_only:
                ae.add_supported_context(cx.abstract_syntax,
                                         [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
            else:
                ae.add_supported_context(cx.abstract_syntax, cx.transfer_syntax + [
                    "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.70",
                    "1.2.840.10008.1.2.4.90"])
        ae.add_supported_context(Verification)
        if find:
            ae.add_supported_context(StudyRootQueryRetrieveInformationModelFind)
        if commit_to:
            ae.add_supported_context(StorageCommitmentPushModel)
        self.ae = ae
        self.server = start_server(ae, "127.0.0.1", self.port, evt_handlers=[
            (evt.EVT_C_STORE, self._on_store), (evt.EVT_C_FIND, self._on_find),
            (evt.EVT_N_ACTION, self._on_commit)])

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self.received.values())

    def _on_store(self, event: evt.Event) -> int:
        if self.delay:
            time.sleep(self.delay)
        if self.hold_after is not None and self.total >= self.hold_after \
                and not self._asked.wait(30):
            self.hold_after = None  # held once, long enough to fail the test
        ds = event.dataset
        ds.file_meta = event.file_meta
        uid = str(ds.SOPInstanceUID)
        with self._lock:
            if self.abort_after is not None and sum(self.received.values()) >= self.abort_after:
                self.abort_after = None
                event.assoc.abort()
                return 0xA700
            self.received[uid] = self.received.get(uid, 0) + 1
            self.syntaxes[uid] = str(event.context.transfer_syntax)
            self.datasets[uid] = ds
        return 0x0000

    def _on_find(self, event: evt.Event):  # type: ignore[no-untyped-def]
        ident = event.identifier
        with self._lock:
            items = list(self.datasets.values())
        for ds in items:
            if ident.get("StudyInstanceUID") and ds.StudyInstanceUID != ident.StudyInstanceUID:
                continue
            match = Dataset()
            match.QueryRetrieveLevel = "IMAGE"
            match.StudyInstanceUID = ds.StudyInstanceUID
            match.SeriesInstanceUID = ds.SeriesInstanceUID
            match.SOPInstanceUID = ds.SOPInstanceUID
            yield 0xFF00, match

    def _on_commit(self, event: evt.Event) -> tuple[int, None]:
        action = event.action_information
        asked = [str(r.ReferencedSOPInstanceUID) for r in action.ReferencedSOPSequence]
        with self._lock:
            self.commit_requests.append((asked, sum(self.received.values())))
            held = {u for u in asked if u in self.received}
            failed = (held & self.fail_commit_once) | (set(asked) - held)
            self.fail_commit_once -= held
        self._asked.set()
        threading.Thread(target=self._report, args=(str(action.TransactionUID), asked, failed),
                         daemon=True).start()
        return 0x0000, None

    def _report(self, transaction: str, asked: list[str], failed: set[str]) -> None:
        """The N-EVENT-REPORT on a new association to Relay (as Orthanc sends it)."""
        ae = make_ae(self.ae_title)
        ae.add_requested_context(StorageCommitmentPushModel)
        try:
            assoc = associate(ae, Endpoint("127.0.0.1", self.commit_to, "RELAY"),
                              ext_neg=[build_role(StorageCommitmentPushModel, scp_role=True)])
        except DimseError:  # Relay is gone (a test killed it): as a PACS, the report is lost
            self.reports_lost += 1
            return
        report = Dataset()
        report.TransactionUID = transaction
        report.ReferencedSOPSequence = [_ref(u) for u in asked if u not in failed]
        if failed:
            report.FailedSOPSequence = [_ref(u) for u in failed]
            for item in report.FailedSOPSequence:
                item.FailureReason = 0x0110
        assoc.send_n_event_report(report, 2 if failed else 1, StorageCommitmentPushModel,
                                  COMMITMENT_INSTANCE)
        assoc.release()

    def stop(self) -> None:
        self.server.shutdown()


def held(event, hold: float) -> bool:  # type: ignore[no-untyped-def]
    """Keep a C-FIND open until the caller cancels it (True) or ``hold`` seconds pass."""
    end = time.monotonic() + hold
    while time.monotonic() < end:
        if event.is_cancelled:
            return True
        time.sleep(0.05)
    return False


class SlowFindPacs:
    """A C-FIND SCP that answers one study at once, then holds the query open until the
    caller cancels it (C-CANCEL) or ``hold`` seconds pass: results must show before the end."""

    def __init__(self, hold: float = 30.0) -> None:
        self.port = free_port()
        self.hold = hold
        self.cancelled = False
        ae = make_ae("SLOW")
        ae.add_supported_context(StudyRootQueryRetrieveInformationModelFind)
        self.server = start_server(ae, "127.0.0.1", self.port,
                                   evt_handlers=[(evt.EVT_C_FIND, self._on_find)])

    def _on_find(self, event):  # type: ignore[no-untyped-def]
        match = Dataset()
        match.QueryRetrieveLevel = "STUDY"
        match.StudyInstanceUID = "1.2.826.0.1.3680043.10.1"
        match.SOPInstanceUID = "1.2.826.0.1.3680043.10.1.1"
        match.PatientName = "FIRST^ANSWER"
        match.PatientID = "SLOW-1"
        yield 0xFF00, match
        if held(event, self.hold):
            self.cancelled = True
            yield 0xFE00, None
            return
        yield 0x0000, None

    def stop(self) -> None:
        self.server.shutdown()

class HeldSeriesPacs:
    """A C-FIND SCP with two studies: listing the series of the first is held open until the
    caller cancels it (C-CANCEL) or ``hold`` seconds pass; the second's one series is answered
    at once. Counts the series listings asked for and cancelled."""

    HELD = "1.2.826.0.1.3680043.10.2"
    QUICK = "1.2.826.0.1.3680043.10.3"

    def __init__(self, hold: float = 30.0) -> None:
        self.port = free_port()
        self.hold = hold
        self.series_asked = 0
        self.cancelled = 0
        ae = make_ae("HELD")
        ae.add_supported_context(StudyRootQueryRetrieveInformationModelFind)
        self.server = start_server(ae, "127.0.0.1", self.port,
                                   evt_handlers=[(evt.EVT_C_FIND, self._on_find)])

    def _on_find(self, event):  # type: ignore[no-untyped-def]
        asked = event.identifier
        if asked.QueryRetrieveLevel == "STUDY":
            for uid, name in ((self.HELD, "FIRST^HELD"), (self.QUICK, "SECOND^QUICK")):
                match = Dataset()
                match.QueryRetrieveLevel = "STUDY"
                match.StudyInstanceUID = uid
                match.PatientName = name
                match.PatientID = name.split("^")[1]
                yield 0xFF00, match
            yield 0x0000, None
            return
        self.series_asked += 1
        if asked.StudyInstanceUID == self.QUICK:
            match = Dataset()
            match.QueryRetrieveLevel = "SERIES"
            match.StudyInstanceUID = self.QUICK
            match.SeriesInstanceUID = self.QUICK + ".1"
            match.Modality = "CT"
            match.SeriesNumber = 1
            yield 0xFF00, match
            yield 0x0000, None
            return
        if held(event, self.hold):
            self.cancelled += 1
            yield 0xFE00, None
            return
        yield 0x0000, None

    def stop(self) -> None:
        self.server.shutdown()


def _ref(sop_uid: str) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    item.ReferencedSOPInstanceUID = sop_uid
    return item
