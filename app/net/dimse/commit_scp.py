"""Storage Commitment as Relay's node answers it (PS3.4 J.3, Push Model SCP).

An N-ACTION (Request Storage Commitment) is answered at once (0x0000 when it can be read); the
verdict follows in an N-EVENT-REPORT: each referenced instance is committed only when the store
indexes it under the same SOP Class UID and its file is there with the recorded size and
SHA-256 (read again: "stored" is not enough, it must be intact). The report goes on a new
association when the caller is a known destination (its AE title configured with a host and
port, as Orthanc and most PACS expect), else on the request's own association while the caller
keeps it open. Failure reasons are those of PS3.3 C.14.1.1: 0x0112 no such object instance,
0x0119 class instance conflict, 0x0110 processing failure (the file is damaged or gone).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydicom.dataset import Dataset
from pynetdicom import build_context, build_role

from app.errors import DimseError
from app.net.dimse.association import Endpoint, Timeouts, associate, make_ae
from app.net.dimse.client import COMMITMENT_INSTANCE, StorageCommitmentPushModel
from app.net.dimse.node import NodeSettings
from app.store.local import Store, sha256_file

log = logging.getLogger(__name__)

NO_SUCH_INSTANCE = 0x0112
CLASS_INSTANCE_CONFLICT = 0x0119
PROCESSING_FAILURE = 0x0110
#: N-ACTION failure: "Invalid argument value" (no Transaction UID, no references).
INVALID_ARGUMENT = 0x0115


@dataclass(frozen=True)
class Verdict:
    """What the node commits to keep of one request."""

    transaction_uid: str
    committed: tuple[tuple[str, str], ...]
    """(SOP Class UID, SOP Instance UID) stored and intact."""
    failed: tuple[tuple[str, str, int], ...]
    """(SOP Class UID, SOP Instance UID, failure reason)."""


def request_refs(action: Dataset) -> tuple[str, list[tuple[str, str]]]:
    """The Transaction UID and the references of an N-ACTION; ValueError when unreadable."""
    transaction = str(action.get("TransactionUID", "") or "").strip()
    items = action.get("ReferencedSOPSequence") or []
    refs = [(str(i.get("ReferencedSOPClassUID", "")).strip(),
             str(i.get("ReferencedSOPInstanceUID", "")).strip()) for i in items]
    if not transaction or not refs or any(not uid for _, uid in refs):
        raise ValueError("a storage commitment request needs a Transaction UID and references")
    return transaction, refs


def judge(store: Store, transaction: str, refs: Sequence[tuple[str, str]]) -> Verdict:
    """Check each reference against the store (index row, class, size and SHA-256)."""
    committed: list[tuple[str, str]] = []
    failed: list[tuple[str, str, int]] = []
    for sop_class, sop_uid in refs:
        reason = _fault(store, sop_class, sop_uid)
        if reason:
            failed.append((sop_class, sop_uid, reason))
        else:
            committed.append((sop_class, sop_uid))
    return Verdict(transaction, tuple(committed), tuple(failed))


def _fault(store: Store, sop_class: str, sop_uid: str) -> int:
    inst = store.instance(sop_uid)
    if inst is None or inst.path is None:
        return NO_SUCH_INSTANCE
    if sop_class and inst.sop_class_uid != sop_class:
        return CLASS_INSTANCE_CONFLICT
    try:
        if inst.path.stat().st_size != inst.size or (
                inst.sha256 and sha256_file(inst.path) != inst.sha256):
            return PROCESSING_FAILURE
    except OSError:
        return PROCESSING_FAILURE
    return 0


def report_dataset(verdict: Verdict) -> Dataset:
    """The N-EVENT-REPORT's Event Information (PS3.4 J.3.3)."""
    ds = Dataset()
    ds.TransactionUID = verdict.transaction_uid
    if verdict.committed:
        ds.ReferencedSOPSequence = [_ref(c, i) for c, i in verdict.committed]
    if verdict.failed:
        ds.FailedSOPSequence = [_ref(c, i, reason) for c, i, reason in verdict.failed]
    return ds


def _ref(sop_class: str, sop_uid: str, reason: int = 0) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = sop_class
    item.ReferencedSOPInstanceUID = sop_uid
    if reason:
        item.FailureReason = reason
    return item


class CommitmentScp:
    """The node's N-ACTION handler and the reports it sends (one thread per request)."""

    def __init__(self, store: Store, node: NodeSettings, timeouts: Timeouts) -> None:
        self.store = store
        self.node = node
        self.timeouts = timeouts

    def on_action(self, event: Any) -> tuple[int, Dataset | None]:
        """EVT_N_ACTION: 0x0000 and the report later, or a failure status now."""
        calling = str(event.assoc.requestor.ae_title).strip()
        if str(event.request.RequestedSOPClassUID) != StorageCommitmentPushModel:
            return 0x0122, None  # SOP class not supported
        try:
            transaction, refs = request_refs(event.action_information)
        except (ValueError, AttributeError) as exc:
            log.warning("storage commitment request from %s refused: %s", calling, exc)
            return INVALID_ARGUMENT, None
        threading.Thread(target=self._report, args=(event.assoc, calling, transaction, refs),
                         name="commit-report", daemon=True).start()
        return 0x0000, None

    def _report(self, assoc: Any, calling: str, transaction: str,
                refs: list[tuple[str, str]]) -> None:
        verdict = judge(self.store, transaction, refs)
        event_type = 2 if verdict.failed else 1  # 1: all committed; 2: failures exist
        report = report_dataset(verdict)
        log.info("storage commitment for %s: %d committed, %d failed", calling,
                 len(verdict.committed), len(verdict.failed))
        try:
            dest = self.node.destination(calling)
            if dest is not None:
                self._report_anew(Endpoint(dest.host, dest.port, dest.ae_title), report,
                                  event_type)
            elif assoc.is_established:
                _send_report(assoc, report, event_type)
            else:
                log.warning("the storage commitment report for %s could not be sent: it "
                            "closed the association and is not a known destination "
                            "(add it with its host and port)", calling)
        except DimseError as exc:
            log.warning("the storage commitment report for %s could not be sent: %s",
                        calling, exc)

    def _report_anew(self, peer: Endpoint, report: Dataset, event_type: int) -> None:
        ae = make_ae(self.node.ae_title, timeouts=self.timeouts)
        ae.add_requested_context(StorageCommitmentPushModel)
        try:
            assoc = associate(ae, peer, contexts=[build_context(StorageCommitmentPushModel)],
                              ext_neg=[build_role(StorageCommitmentPushModel, scp_role=True)])
        except DimseError as exc:
            self._audit_login(peer, exc)
            raise
        self._audit_login(peer, None)
        try:
            _send_report(assoc, report, event_type)
        finally:
            if assoc.is_established:
                assoc.release()


    def _audit_login(self, peer: Endpoint, failure: DimseError | None) -> None:
        """The association the node asked for to report: one audit event (110114)."""
        from app.net.dimse.client import TRANSIENT_REFUSALS
        from app.workflow import audit

        outcome = audit.SUCCESS if failure is None else audit.MINOR_FAILURE \
            if failure.kind in TRANSIENT_REFUSALS else audit.SERIOUS_FAILURE
        audit.record(self.store.home, "login", outcome=outcome, peer=peer.where,
                     detail={"protocol": "DIMSE", "service": "N-EVENT-REPORT",
                             "calling_ae": self.node.ae_title,
                             **({"reason": failure.kind} if failure else {})})


def _send_report(assoc: Any, report: Dataset, event_type: int) -> None:
    since = time.monotonic()
    status, _ = assoc.send_n_event_report(report, event_type, StorageCommitmentPushModel,
                                          COMMITMENT_INSTANCE)
    if status is None or "Status" not in status:
        waited = time.monotonic() - since
        raise DimseError("aborted", f"no answer to the report ({waited:.0f} s)")
    if int(status.Status) != 0:
        log.info("the caller answered the commitment report with 0x%04X", int(status.Status))
