"""Relay's node under bad peers: a peer that connects and says nothing, one that goes silent
inside an association, one that aborts or drops the connection mid-instance, and many peers at
once. The node never crashes, waits are bounded, and the store stays whole."""

from __future__ import annotations

import socket
import struct
import threading
import time
from pathlib import Path

import pytest
from pydicom.uid import ExplicitVRLittleEndian
from pynetdicom import build_context

from app.dicom.synth import SeriesSpec, generate_series
from app.net.dimse.association import Endpoint, associate, make_ae
from tests.net.dimse_node import dcmtk, needs_dcmtk, peer, running_node, stored_hashes

CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"


@pytest.fixture(scope="module")
def series(tmp_path_factory: pytest.TempPathFactory) -> list[list[Path]]:
    """Eight small generated CT series (a study each), five slices each."""
    root = tmp_path_factory.mktemp("series")
    return [generate_series(root / str(i), SeriesSpec(slices=5, rows=64, columns=64, seed=i + 1,
                                                      patient_id=f"P{i}"))
            for i in range(8)]


def _scu(listener, title: str = "MODALITY"):
    host, port = listener.address
    ae = make_ae(title, requested=[build_context(CT_IMAGE, ExplicitVRLittleEndian)])
    return associate(ae, Endpoint(host, port, listener.node.ae_title))


def _closed_within(sock: socket.socket, seconds: float) -> bool:
    """Does the peer close ``sock`` within ``seconds`` (reading and dropping what it sends)?"""
    sock.settimeout(seconds)
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            if not sock.recv(65536):
                return True
    except TimeoutError:
        return False
    except OSError:
        return True
    return False


@needs_dcmtk
def test_a_peer_that_connects_and_never_speaks_is_dropped_after_the_acse_timeout(home):
    with running_node(home, acse_timeout=2.0) as listener:
        silent = socket.create_connection(listener.address, timeout=10)
        try:
            assert dcmtk("echoscu", *peer(listener)).returncode == 0  # others are served
            assert _closed_within(silent, 15.0)
        finally:
            silent.close()
        assert dcmtk("echoscu", *peer(listener)).returncode == 0


def test_an_association_that_goes_silent_is_closed_after_the_network_timeout(home):
    with running_node(home, network_timeout=2.0) as listener:
        assoc = _scu(listener)
        raw = assoc.dul.socket.socket
        started = time.monotonic()
        deadline = started + 20
        while assoc.is_established and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not assoc.is_established, "the node kept a silent association open"
        assert time.monotonic() - started < 20
        assert raw is not None
        while listener.active_associations and time.monotonic() < deadline:
            time.sleep(0.1)  # the node's association thread ends a moment later
        assert listener.active_associations == 0


def test_a_peer_that_aborts_keeps_what_it_sent_before(home, series):
    files = series[0]
    with running_node(home) as listener:
        assoc = _scu(listener)
        assert [assoc.send_c_store(p).Status for p in files[:3]] == [0, 0, 0]
        assoc.abort()
        again = _scu(listener)  # the node is still there, and takes more
        assert again.send_c_store(files[3]).Status == 0
        again.release()
        stored = stored_hashes(listener.store)
    assert len(stored) == 4


def test_a_connection_dropped_mid_instance_stores_nothing_of_it(home, series):
    files = series[1]
    with running_node(home) as listener:
        assoc = _scu(listener)
        assert assoc.send_c_store(files[0]).Status == 0
        raw = assoc.dul.socket.socket
        # A P-DATA-TF PDU announcing 1 MB, of which 4 kB arrive before the connection drops.
        raw.sendall(struct.pack(">BBI", 0x04, 0, 1 << 20) + b"\x00" * 4096)
        raw.close()
        time.sleep(0.5)
        again = _scu(listener)
        assert again.send_c_store(files[1]).Status == 0
        again.release()
        stored = stored_hashes(listener.store)
        leftovers = list(listener.store.tmp.iterdir())
    assert len(stored) == 2 and leftovers == []


def test_many_peers_at_once_are_all_stored(home, series):
    results: dict[int, list[int]] = {}
    errors: list[BaseException] = []

    def send(i: int, files: list[Path]) -> None:
        try:
            assoc = _scu(listener, f"MOD{i}")
            try:
                results[i] = [assoc.send_c_store(p).Status for p in files]
            finally:
                assoc.release()
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    seen = []
    with running_node(home, max_associations=10) as listener:
        listener.subscribe(seen.append)
        threads = [threading.Thread(target=send, args=(i, files))
                   for i, files in enumerate(series)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not any(t.is_alive() for t in threads)
        stored = stored_hashes(listener.store)
        deadline = time.monotonic() + 10
        while len(seen) < len(series) and time.monotonic() < deadline:
            time.sleep(0.05)
    assert not errors, errors
    assert all(statuses == [0] * 5 for statuses in results.values()) and len(results) == 8
    assert len(stored) == 40
    assert len(listener.store.studies()) == 8
    assert sorted(s.calling_ae for s in seen) == sorted(f"MOD{i}" for i in range(8))


def test_more_peers_than_allowed_are_told_busy_and_served_later(home, series):
    with running_node(home, max_associations=2) as listener:
        first, second = _scu(listener, "A"), _scu(listener, "B")
        from app.errors import DimseError

        with pytest.raises(DimseError) as refused:
            _scu(listener, "C")
        assert refused.value.kind == "busy"
        first.release()
        second.release()
        time.sleep(0.3)
        third = _scu(listener, "C")
        assert third.send_c_store(series[2][0]).Status == 0
        third.release()
