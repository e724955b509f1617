"""The one way Relay makes DIMSE associations: TCP_NODELAY both ends, bounded waits, and a plain
reason for each way an association can fail (real pynetdicom peers on loopback)."""

from __future__ import annotations

import queue
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from pydicom.uid import ExplicitVRLittleEndian
from pynetdicom import build_context, evt
from pynetdicom.pdu_primitives import P_DATA
from pynetdicom.sop_class import CTImageStorage, Verification

from app.errors import DimseError
from app.net.devhub import free_port
from app.net.dimse.association import Endpoint, Timeouts, associate, make_ae, start_server
from tests.proxies import LoopbackServer


class SilentPeer(LoopbackServer):
    """Accepts TCP connections and never says a word."""

    def _handle(self, conn: socket.socket) -> None:
        time.sleep(10)
        conn.close()


@pytest.fixture
def echo_scp() -> Iterator[tuple[int, list[int]]]:
    """A pynetdicom Verification SCP called 'PACS' that only knows the calling AE 'RELAY'.
    Yields its port and the TCP_NODELAY values it saw on accepted sockets."""
    seen: list[int] = []

    def on_echo(event: evt.Event) -> int:
        raw = event.assoc.dul.socket.socket
        seen.append(raw.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        return 0x0000

    ae = make_ae("PACS", supported=[build_context(Verification)])
    ae.require_calling_aet = ["RELAY"]
    ae.require_called_aet = True
    port = free_port()
    server = start_server(ae, "127.0.0.1", port, evt_handlers=[(evt.EVT_C_ECHO, on_echo)])
    try:
        yield port, seen
    finally:
        server.shutdown()


def _client(title: str = "RELAY", timeouts: Timeouts | None = None):
    return make_ae(title, timeouts=timeouts or Timeouts(), requested=[build_context(Verification)])


def test_echo_with_tcp_nodelay_on_both_ends(echo_scp):
    port, seen = echo_scp
    assoc = associate(_client(), Endpoint("127.0.0.1", port, "PACS"))
    try:
        raw = assoc.dul.socket.socket
        assert raw.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        assert assoc.send_c_echo().Status == 0
    finally:
        assoc.release()
    assert seen and all(v != 0 for v in seen)


def test_unknown_calling_ae_is_told_in_plain_words(echo_scp):
    port, _ = echo_scp
    with pytest.raises(DimseError) as info:
        associate(_client("STRANGER"), Endpoint("127.0.0.1", port, "PACS"))
    assert info.value.kind == "calling-ae"
    assert "does not know Relay's AE title 'STRANGER'" in str(info.value)
    assert not info.value.retryable


def test_wrong_called_ae_is_told_in_plain_words(echo_scp):
    port, _ = echo_scp
    with pytest.raises(DimseError) as info:
        associate(_client(), Endpoint("127.0.0.1", port, "NOTPACS"))
    assert info.value.kind == "called-ae"
    assert "is not 'NOTPACS'" in str(info.value)


def test_nothing_listening_is_unreachable():
    port = free_port()
    with pytest.raises(DimseError) as info:
        associate(_client(), Endpoint("127.0.0.1", port, "PACS"))
    assert info.value.kind == "unreachable"
    assert "refused" in str(info.value).lower()
    assert info.value.retryable


def test_peer_that_never_answers_gives_up_after_the_acse_timeout():
    peer = SilentPeer()
    try:
        started = time.monotonic()
        with pytest.raises(DimseError) as info:
            associate(_client(timeouts=Timeouts(acse=1.5)), Endpoint("127.0.0.1", peer.port, "P"))
        took = time.monotonic() - started
    finally:
        peer.close()
    assert info.value.kind == "timeout"
    assert "did not answer the association request within 2 s" in str(info.value)
    assert took < 8


def test_every_context_refused_is_named(echo_scp):
    port, _ = echo_scp
    ae = make_ae("RELAY", requested=[build_context(CTImageStorage)])
    with pytest.raises(DimseError) as info:
        associate(ae, Endpoint("127.0.0.1", port, "PACS"))
    assert info.value.kind == "refused"
    assert "CT Image Storage" in str(info.value)


def test_tls_to_a_plain_port_is_not_called_unreachable(echo_scp, tmp_path):
    from app.net.dimse.association import TlsOptions

    port, _ = echo_scp
    with pytest.raises(DimseError) as info:
        associate(_client(timeouts=Timeouts(connect=3)),
                  Endpoint("127.0.0.1", port, "PACS", TlsOptions()))
    assert info.value.kind == "tls"


def test_an_association_the_peer_drops_after_accepting_is_a_plain_error_not_a_crash():
    """A PACS (or what stands between) that closes the association right after accepting it:
    pynetdicom refuses the request with a RuntimeError, which crashed ``relay worklist`` (seen
    over TLS); Relay says what happened, as a transient DimseError."""
    from app.net.dimse.client import DimseClient

    accepted = threading.Event()
    ae = make_ae("PACS", supported=[build_context(Verification)])
    port = free_port()
    server = start_server(ae, "127.0.0.1", port,
                          evt_handlers=[(evt.EVT_ACCEPTED, lambda event: accepted.set())])
    try:
        client = DimseClient(Endpoint("127.0.0.1", port, "PACS"), "RELAY")

        def echo_after_the_drop() -> None:
            with client.association([build_context(Verification)], service="C-ECHO") as assoc:
                assert accepted.wait(10)
                for other in server.active_associations:
                    other.abort()
                deadline = time.monotonic() + 10
                while assoc.is_established and time.monotonic() < deadline:
                    time.sleep(0.01)
                assoc.send_c_echo()

        with pytest.raises(DimseError) as info:
            echo_after_the_drop()

        def fail_on_a_live_association() -> None:
            with client.association([build_context(Verification)], service="C-ECHO") as assoc:
                assert assoc.is_established
                raise RuntimeError("a fault of Relay's own")

        # any other RuntimeError is not taken for a lost connection
        with pytest.raises(RuntimeError, match="a fault of Relay's own"):
            fail_on_a_live_association()
    finally:
        server.shutdown()
    assert info.value.kind == "aborted" and info.value.retryable
    assert "PACS@127.0.0.1" in str(info.value) and "C-ECHO" in str(info.value)


def test_the_dul_reactor_wakes_when_the_peer_answers_not_after_its_idle_sleep():
    """pynetdicom's DUL thread, idle, sleeps between looks at its socket (1 ms each time: on
    one association a C-STORE per instance waited for it). Relay's ``time`` for that module
    waits on the socket instead: data ends the wait at once, no data waits as long as asked."""
    import types

    import pynetdicom.dul
    from pynetdicom.dul import DULServiceProvider

    class Reactor(DULServiceProvider):
        def __init__(self, sock: socket.socket, seconds: float) -> None:
            threading.Thread.__init__(self, daemon=True)
            self.socket = types.SimpleNamespace(socket=sock)  # type: ignore[assignment]
            self.to_provider_queue = queue.Queue()
            self.seconds = seconds
            self.took = -1.0

        def run(self) -> None:
            started = time.monotonic()
            pynetdicom.dul.time.sleep(self.seconds)
            self.took = time.monotonic() - started

    ours, theirs = socket.socketpair()
    with ours, theirs:
        waiting = Reactor(ours, 30.0)
        waiting.start()
        time.sleep(0.2)
        theirs.sendall(b"\x02")  # the peer's answer
        waiting.join(20)
        assert 0 <= waiting.took < 10, waiting.took
    quiet, silent = socket.socketpair()
    with quiet, silent:
        idle = Reactor(quiet, 0.3)  # nothing arrives: it waits as long as asked
        idle.start()
        idle.join(20)
        assert idle.took >= 0.25, idle.took
    # a PDU another thread queues for it (a C-STORE response to send) ends the wait too
    reactor_side, peer_side = socket.socketpair()
    with reactor_side, peer_side:
        sending = Reactor(reactor_side, 30.0)  # only the queued PDU can end it in time
        sending.start()
        time.sleep(0.2)
        sending.send_pdu(P_DATA())
        sending.join(20)
        assert 0 <= sending.took < 10, sending.took
        assert sending.to_provider_queue.qsize() == 1


def test_a_reactor_slow_to_resume_never_takes_the_answer_a_send_waits_for(data):
    """pynetdicom pauses an association's reactor while a ``send_*`` waits for its answer. A
    reactor that was just let go (its wait returned) but not yet running looked paused, so the
    next send went ahead and the reactor took its answer: "unexpected C-STORE service message",
    then the DIMSE timeout and an abort (a node's C-MOVE lost its sub-association under load).
    Here the reactor resumes 20 ms late and the sender looks for its answer 40 ms late, as
    preempted threads do; each C-STORE must still get its own answer at once."""
    stored: list[str] = []

    def on_store(event: evt.Event) -> int:
        stored.append(event.request.AffectedSOPInstanceUID)
        return 0x0000

    explicit = build_context(CTImageStorage, ExplicitVRLittleEndian)  # the files' syntax
    scp = make_ae("PACS", supported=[explicit])
    port = free_port()
    server = start_server(scp, "127.0.0.1", port, evt_handlers=[(evt.EVT_C_STORE, on_store)])
    files = sorted((data / "ct-head/ge-hispeed-human-gantry-tilt").glob("*.dcm"))[:12]
    try:
        ae = make_ae(timeouts=Timeouts(dimse=3.0), requested=[explicit])
        assoc = associate(ae, Endpoint("127.0.0.1", port, "PACS"))
        checkpoint = assoc._reactor_checkpoint
        resume = checkpoint.wait

        def late(timeout: float | None = None) -> bool:
            went = resume(timeout)
            time.sleep(0.02)  # the reactor thread preempted right after its wait returned
            return went

        checkpoint.wait = late  # type: ignore[method-assign]
        take = assoc.dimse.get_msg

        def sender_late(block: bool = False) -> Any:
            if block:  # the sender, after its request went out
                time.sleep(0.04)
            return take(block)

        assoc.dimse.get_msg = sender_late  # type: ignore[method-assign]
        try:
            statuses = []
            for path in files:
                started = time.monotonic()
                status = assoc.send_c_store(path)
                statuses.append((status.get("Status"), round(time.monotonic() - started, 1)))
        finally:
            assoc.release()
    finally:
        server.shutdown()
    assert all(s == 0 and took < 2 for s, took in statuses), statuses
    assert len(stored) == len(files)


def test_a_reactor_counts_as_held_only_while_it_waits_on_its_checkpoint():
    """Other threads take pynetdicom's reactor as paused only while it really waits: not before
    it waits, not once it was let go, and still when it was let go and at once held again
    before it could look (the caller that holds it again must not spin for ever)."""
    from app.net.dimse.association import _Checkpoint

    class Reactor(threading.Thread):
        def __init__(self) -> None:
            super().__init__(daemon=True)
            self.checkpoint = _Checkpoint(self)  # type: ignore[arg-type]
            self.stop = False
            self.turns = 0

        def run(self) -> None:
            while not self.stop:
                time.sleep(0.001)
                self.checkpoint.wait()
                self.turns += 1

    def held_within(seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while not checkpoint.held():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.0001)
        return True

    reactor = Reactor()
    reactor.start()
    checkpoint = reactor.checkpoint
    assert not checkpoint.held()  # never cleared: it runs
    for _ in range(20):
        checkpoint.clear()
        assert held_within(2.0)
        turns = reactor.turns
        with checkpoint._cond:  # let it go and hold it again before it can look
            checkpoint._flag = True
            checkpoint._cond.notify_all()
            checkpoint._flag = False
        assert held_within(2.0), "held again, but taken as running"
        assert reactor.turns == turns
        checkpoint.set()
        deadline = time.monotonic() + 2.0
        while reactor.turns == turns and time.monotonic() < deadline:
            time.sleep(0.001)
        assert reactor.turns > turns
    reactor.stop = True
    checkpoint.set()
    reactor.join(5)
    assert not reactor.is_alive()
