"""What a PACS opens towards Relay's node on behalf of a job, routed to that job.

A C-MOVE makes the PACS open an association to Relay's AE title and port and C-STORE the
instances there; a Storage Commitment report (N-EVENT-REPORT) may come the same way. Every job
registers a handler here for the time it waits, and whoever listens on Relay's port hands it
what belongs to it: Relay's node (:class:`~app.net.dimse.listener.Listener`) when it runs in
this process (the window's node), else one stand-in listener shared by the waiting jobs
(:class:`app.net.dimse.client.StandIn`), so that jobs side by side never clash on the port:

- a C-STORE whose Move Originator Message ID (and AE title, when given) is that of a pending
  C-MOVE goes to that move's handler (the job's ingest), not into the node's Incoming list; a
  C-STORE without originator goes to the only pending move from the storing AE title, if there
  is exactly one;
- an N-EVENT-REPORT goes to the commitment request with its Transaction UID.

Message IDs of C-MOVE requests are unique in the process (:func:`next_message_id`), so two
retrieves at once are told apart. This routing is within one process; when Relay's node runs
in another process on the same home, what it receives for a job here is handed over through
the home instead (:mod:`app.net.dimse.handover`). No Qt, no patient data.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

StoreHandler = Callable[[Any], int]
ReportHandler = Callable[[Any], Any]

_ids = itertools.count(1)
_ids_lock = threading.Lock()


def next_message_id() -> int:
    """A DIMSE message ID not used by another request of this process (1..32767; the IDs
    above are those of moves handed over between processes, :mod:`app.net.dimse.handover`)."""
    with _ids_lock:
        return next(_ids) % 32767 + 1


@dataclass(frozen=True)
class _Move:
    handler: StoreHandler
    peer_ae: str
    """The PACS asked (the storing association's calling AE title, usually)."""


class Routes:
    """Handlers of the jobs waiting for what comes to the node (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._node: tuple[str, int] | None = None  # (AE title, port) of the running node
        self._moves: dict[int, _Move] = {}
        self._reports: dict[str, ReportHandler] = {}

    # -- the node --------------------------------------------------------------------------
    def node_started(self, ae_title: str, port: int) -> None:
        with self._lock:
            self._node = (ae_title, port)

    def node_stopped(self) -> None:
        with self._lock:
            self._node = None

    def node_on(self, port: int) -> bool:
        """Is Relay's node listening on ``port`` in this process?"""
        with self._lock:
            return self._node is not None and self._node[1] == port

    # -- jobs ------------------------------------------------------------------------------
    @contextmanager
    def move(self, message_id: int, peer_ae: str, handler: StoreHandler) -> Iterator[None]:
        """Route the C-STOREs of the C-MOVE ``message_id`` to ``handler`` while it runs."""
        with self._lock:
            self._moves[message_id] = _Move(handler, peer_ae.strip())
        try:
            yield
        finally:
            with self._lock:
                self._moves.pop(message_id, None)

    @contextmanager
    def commitment(self, transaction_uid: str, handler: ReportHandler) -> Iterator[None]:
        """Route the N-EVENT-REPORT of ``transaction_uid`` to ``handler`` while it waits."""
        with self._lock:
            self._reports[transaction_uid] = handler
        try:
            yield
        finally:
            with self._lock:
                self._reports.pop(transaction_uid, None)

    # -- the node asks -----------------------------------------------------------------------
    def store_handler(self, event: Any, own_ae: str) -> StoreHandler | None:
        """The handler of the job a received C-STORE belongs to, or None (the node's own);
        ``own_ae``: the AE title it was sent to."""
        request = event.request
        origin_id = getattr(request, "MoveOriginatorMessageID", None)
        origin_ae = str(getattr(request, "MoveOriginatorApplicationEntityTitle", "") or "")
        calling = str(event.assoc.requestor.ae_title).strip()
        with self._lock:
            if origin_id is not None:
                move = self._moves.get(int(origin_id))
                if move is not None and origin_ae.strip() in ("", own_ae.strip()):
                    return move.handler
                return None
            from_peer = [m for m in self._moves.values() if m.peer_ae == calling]
        return from_peer[0].handler if len(from_peer) == 1 else None

    def report_handler(self, event: Any) -> ReportHandler | None:
        """The commitment request an N-EVENT-REPORT answers, or None."""
        info = getattr(event, "event_information", None)
        transaction = str(getattr(info, "TransactionUID", "") or "")
        with self._lock:
            return self._reports.get(transaction)


#: The routes of this process (the node and every job share it).
ROUTES = Routes()


def answer_report(event: Any) -> tuple[int, None]:
    """A Storage Commitment report: to the job that asked (0x0000), else refused (0x0110,
    processing failure: nobody here asked for it)."""
    handler = ROUTES.report_handler(event)
    if handler is None:
        log.info("a storage commitment report nobody here waits for was refused")
        return 0x0110, None
    result = handler(event)
    return result if isinstance(result, tuple) else (0x0000, None)
