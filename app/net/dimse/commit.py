"""Storage Commitment as SCU (PS3.4 J.3), asked for while a send is still running.

A :class:`Commitments` collects the instances a C-STORE loop reports stored (:meth:`add`, from
any thread) and, every :data:`COMMIT_EVERY` of them, asks the PACS to commit that batch (an
N-ACTION on its own association, from one background thread). The PACS's N-EVENT-REPORTs arrive
on Relay's listening port (the node's when it runs in this process, else the shared stand-in
listener, :data:`~app.net.dimse.client.STAND_IN`; both route them by Transaction UID through
:data:`~app.net.dimse.routes.ROUTES`) or on the N-ACTION's association. When Relay's node of
this home runs in another process, each Transaction UID is registered in the home before its
N-ACTION, that node records the report there, and a thread of this object looks for it every
:data:`~app.net.dimse.handover.POLL` s (:mod:`app.net.dimse.handover`).
:meth:`finish` asks for what is left and waits for every report: the SOP Instance UIDs the PACS
commits to keep, or None when there is no evidence to be had from commitment (the service is
not offered, Relay's port is taken, a report did not come in time). Overlapping the commitment
with the send hides most of it: Orthanc took 1.2-1.8 s to report 400 instances at once and
0.1-0.2 s for 64 (bench/bench_dimse_client.py).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from types import TracebackType

from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from pynetdicom import build_context, evt

from app.errors import DimseError
from app.net.dimse.client import (
    COMMITMENT_INSTANCE,
    STAND_IN,
    DimseClient,
    StorageCommitmentPushModel,
    _check,
)
from app.net.dimse.handover import POLL, Handover, Renewal
from app.net.dimse.routes import ROUTES

log = logging.getLogger(__name__)

#: Instances per N-ACTION while the send runs (the last batch is what the send waits for).
COMMIT_EVERY = 64


@dataclass
class _Transaction:
    """One N-ACTION: what it asked for, and the PACS's report once it came."""

    uids: frozenset[str]
    reported: threading.Event = field(default_factory=threading.Event)
    committed: frozenset[str] = frozenset()


class Commitments:
    """Storage Commitment for one send; use as a context manager (stops the report listener).

    ``wait`` bounds, in seconds, both each N-ACTION's answer and the wait for the reports
    after the last one was answered.
    """

    def __init__(self, client: DimseClient, *, wait: float = 30.0,
                 every: int = COMMIT_EVERY) -> None:
        self.client = client
        self.wait = wait
        self.every = max(1, every)
        self._lock = threading.Lock()
        self._batch: list[tuple[str, str]] = []
        #: SOP Instance UID -> the transaction that asked for it ("" while in the batch)
        self._asked: dict[str, str] = {}
        self._transactions: dict[str, _Transaction] = {}
        self._futures: list[Future[None]] = []
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="commit")
        #: the routes of this send's transactions and its hold on Relay's port
        self._held = ExitStack()
        self._listening = False
        #: None: not known yet; False: no evidence to be had (logged once why).
        self._offered: bool | None = None
        self._fatal: DimseError | None = None
        #: Relay's node of another process takes the reports for this one (see the module)
        self._handover: Handover | None = None
        self._handed: set[str] = set()  # transactions registered there, not reported yet
        self._closed = threading.Event()
        self._poller: threading.Thread | None = None

    def __enter__(self) -> Commitments:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._closed.set()
        if self._poller is not None:
            self._poller.join()
        with self._lock:
            self._held.close()
            handed, self._handed = self._handed, set()
        for uid in handed:
            self._unregister(uid)

    # -- while the send runs ---------------------------------------------------------------
    def add(self, sop_class: str, sop_uid: str) -> None:
        """One instance the PACS answered C-STORE success for (thread-safe)."""
        with self._lock:
            if self._offered is False or not self._needs_asking_locked(sop_uid):
                return
            self._batch.append((sop_class, sop_uid))
            self._asked[sop_uid] = ""
            if len(self._batch) >= self.every:
                self._submit_locked()

    def _needs_asking_locked(self, sop_uid: str) -> bool:
        """Never asked, or reported as not committed (sent again since)."""
        if sop_uid not in self._asked:
            return True
        transaction = self._transactions.get(self._asked[sop_uid])
        return transaction is not None and transaction.reported.is_set() \
            and sop_uid not in transaction.committed

    def _submit_locked(self) -> None:
        batch, self._batch = self._batch, []
        if batch:
            uid = generate_uid()
            self._transactions[uid] = _Transaction(frozenset(i for _, i in batch))
            self._held.enter_context(ROUTES.commitment(uid, self._on_report))
            self._asked.update((i, uid) for _, i in batch)
            self._futures.append(self._pool.submit(self._ask, uid, batch))

    # -- at the end ------------------------------------------------------------------------
    def finish(self, refs: Iterable[tuple[str, str]]) -> set[str] | None:
        """Ask for ``refs`` not asked yet, wait for every report: the committed SOP Instance
        UIDs (of all batches), or None when commitment gives no evidence. A PACS that became
        unreachable raises (the caller waits it out)."""
        refs = list(refs)
        with self._lock:
            for sop_class, sop_uid in refs:
                if self._needs_asking_locked(sop_uid):
                    self._batch.append((sop_class, sop_uid))
            self._submit_locked()
            futures, self._futures = self._futures, []
            wanted = {self._asked[i] for _, i in refs if i in self._asked}
        for future in futures:
            future.result()
        if self._fatal is not None:
            fatal, self._fatal = self._fatal, None
            raise fatal
        if not self._offered:
            return None
        deadline = time.monotonic() + self.wait
        committed: set[str] = set()
        for uid in wanted:
            transaction = self._transactions.get(uid)
            if transaction is None or \
                    not transaction.reported.wait(max(0.0, deadline - time.monotonic())):
                log.info("no storage commitment report from %s within %.0f s",
                         self.client.peer.where, self.wait)
                return None
            committed |= transaction.committed
        return committed & {i for _, i in refs}

    # -- the background thread -------------------------------------------------------------
    def _ask(self, uid: str, refs: Sequence[tuple[str, str]]) -> None:
        if self._offered is False or self._fatal is not None:
            self._forget(uid)
            return
        if not self._listen():
            self._give_up("Relay's port for the reports cannot be opened")
            return
        if self._handover is not None:
            try:
                self._handover.open_commitment(uid)
            except sqlite3.Error as exc:
                self._give_up(f"Relay's node in another program cannot take the report ({exc})")
                return
            with self._lock:
                self._handed.add(uid)
        action = Dataset()
        action.TransactionUID = uid
        action.ReferencedSOPSequence = [_ref(c, i) for c, i in refs]
        client = self.client
        short = replace(client.timeouts, dimse=min(client.timeouts.dimse, self.wait))
        answered = threading.Event()  # our answer to a report that came on this association
        reported = self._transactions[uid].reported

        def on_sent(event: evt.Event) -> None:
            # on the wire (EVT_DIMSE_SENT fires before the message is queued): the only data
            # Relay sends after the report came is its answer to it
            if reported.is_set() and type(event.pdu).__name__ == "P_DATA_TF":
                answered.set()

        handlers: list[tuple[evt.EventType, object]] = [
            (evt.EVT_N_EVENT_REPORT, self._on_report), (evt.EVT_PDU_SENT, on_sent)]
        try:
            with client.association([build_context(StorageCommitmentPushModel)], timeouts=short,
                                    service="N-ACTION",
                                    handlers=handlers) as assoc:
                since = time.monotonic()
                status, _ = assoc.send_n_action(action, 1, StorageCommitmentPushModel,
                                                COMMITMENT_INSTANCE)
                code = _check(assoc, status, client.peer, "storage commitment", since=since)
                if code == 0 and not self._listening:
                    # no port of Relay's: the report can come only on this association
                    if self._transactions[uid].reported.wait(self.wait):
                        answered.wait(5.0)  # released only once the report is answered
        except DimseError as exc:
            if exc.kind == "unreachable":
                self._fatal = exc
                self._forget(uid)  # asked again by the next finish()
                return
            # not offered (refused), refused for Relay, or no answer: no evidence from it
            self._give_up(str(exc))
            return
        if code != 0:
            self._give_up(f"the PACS answered the request with 0x{code:04X}")
            return
        self._offered = True

    def _forget(self, uid: str) -> None:
        with self._lock:
            transaction = self._transactions.pop(uid, None)
            for sop_uid in transaction.uids if transaction else ():
                if self._asked.get(sop_uid) == uid:
                    del self._asked[sop_uid]

    def _give_up(self, why: str) -> None:
        if self._offered is not False:
            log.info("no storage commitment from %s: %s", self.client.peer.where, why)
        self._offered = False

    def _listen(self) -> bool:
        """Relay's port held for reports the PACS sends on an association of its own (once):
        the node's, when it runs in this process, or the shared stand-in listener."""
        client = self.client
        if self._listening:
            return True
        if not client.listen_port:
            return True  # reports come on the N-ACTION's association (waited for there)
        handover = STAND_IN.elsewhere(client)
        if handover is not None:  # Relay's node in another process takes them for us
            self._handover = handover
            self._poller = threading.Thread(target=self._poll, name="commit-handed",
                                            daemon=True)
            self._poller.start()
            self._listening = True
            return True
        try:
            with self._lock:
                self._held.enter_context(STAND_IN.held(client))
        except DimseError as exc:
            log.info("no storage commitment: %s", exc)
            return False
        self._listening = True
        return True

    def _on_report(self, event: evt.Event) -> tuple[int, None]:
        info = event.event_information
        self._reported(str(getattr(info, "TransactionUID", "")),
                       {str(r.ReferencedSOPInstanceUID)
                        for r in getattr(info, "ReferencedSOPSequence", [])})
        return 0x0000, None

    def _reported(self, uid: str, committed: set[str]) -> None:
        transaction = self._transactions.get(uid)
        if transaction is None:
            return  # a report for another transaction (another job, an old one)
        transaction.committed = frozenset(committed & transaction.uids)
        transaction.reported.set()

    def _poll(self) -> None:
        """Reports the node of another process recorded for this send (until closed)."""
        assert self._handover is not None
        renewal = Renewal()
        while not self._closed.wait(POLL):
            with self._lock:
                waiting = sorted(self._handed)
            if not waiting:
                continue
            try:
                for uid, (committed, _) in self._handover.reports(waiting).items():
                    self._reported(uid, committed)
                    with self._lock:
                        self._handed.discard(uid)
                    self._unregister(uid)
                if renewal.due():
                    self._handover.renew_commitments(waiting)
            except sqlite3.Error as exc:  # busy for long: looked at again next time
                log.info("the storage commitment reports cannot be read now: %s", exc)

    def _unregister(self, uid: str) -> None:
        if self._handover is not None:
            try:
                self._handover.close_commitment(uid)
            except sqlite3.Error as exc:  # its lease runs out instead
                log.info("a storage commitment registration stays: %s", exc)


def _ref(sop_class: str, sop_uid: str) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = sop_class
    item.ReferencedSOPInstanceUID = sop_uid
    return item
