"""DICOM TLS against real TLS peers, with certificates this test makes (its own CAs): Relay's
node speaks TLS to dcmtk's echoscu/storescu (a caller with a certificate from the node's CA is
served, one from another CA is refused, the node stays up), and Relay's client speaks TLS to
dcmtk's storescp (its certificate verified against the CA file; another CA refused with a
plain reason)."""

from __future__ import annotations

import datetime
import ipaddress
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.dicom.synth import SeriesSpec, generate_series
from app.errors import DimseError
from app.net.devhub import free_port
from app.net.dimse.association import Endpoint, TlsOptions
from app.net.dimse.client import DimseClient
from app.store.local import Store
from tests.net.dimse_node import dcmtk, needs_dcmtk, running_node

pytestmark = needs_dcmtk


@dataclass(frozen=True)
class Pki:
    """One CA and the server and client certificates it signed (PEM paths)."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _key():  # type: ignore[no-untyped-def]
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _write(path: Path, key, cert) -> None:  # type: ignore[no-untyped-def]
    from cryptography.hazmat.primitives import serialization

    path.with_suffix(".key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption()))
    path.with_suffix(".crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def make_pki(folder: Path, name: str) -> Pki:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = _key()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(hours=1))
          .not_valid_after(now + datetime.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False,
                                       encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    _write(folder / "ca", ca_key, ca)

    def leaf(role: str, usage):  # type: ignore[no-untyped-def]
        key = _key()
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
                .issuer_name(ca_name).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(hours=1))
                .not_valid_after(now + datetime.timedelta(days=1))
                .add_extension(x509.SubjectAlternativeName([
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
                .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
                .sign(ca_key, hashes.SHA256()))
        _write(folder / role, key, cert)

    leaf("server", ExtendedKeyUsageOID.SERVER_AUTH)
    leaf("client", ExtendedKeyUsageOID.CLIENT_AUTH)
    return Pki(folder / "ca.crt", folder / "server.crt", folder / "server.key",
               folder / "client.crt", folder / "client.key")


@pytest.fixture(scope="module")
def pkis(tmp_path_factory: pytest.TempPathFactory) -> tuple[Pki, Pki]:
    """The hospital's CA, and another one nobody here trusts."""
    root = tmp_path_factory.mktemp("pki")
    return make_pki(root / "good", "good"), make_pki(root / "other", "other")


def _tls_args(pki: Pki, trust: Pki) -> list[str]:
    """dcmtk's options: present ``pki``'s client certificate, trust ``trust``'s CA."""
    return ["+tls", str(pki.client_key), str(pki.client_cert), "+cf", str(trust.ca)]


def test_node_speaks_tls_to_callers_from_its_ca_and_refuses_others(home: Path, tmp_path: Path,
                                                                    pkis):
    good, other = pkis
    files = generate_series(tmp_path / "ct", SeriesSpec(slices=3, rows=32, columns=32, seed=2))
    with running_node(home, tls_cert_file=str(good.server_cert),
                      tls_key_file=str(good.server_key), tls_ca_file=str(good.ca)) as node:
        host, port = node.address or ("", 0)
        where = ["-aec", node.node.ae_title, host, str(port)]
        ok = dcmtk("echoscu", *_tls_args(good, good), *where)
        assert ok.returncode == 0, ok.stderr
        stranger = dcmtk("echoscu", *_tls_args(other, good), *where)
        assert stranger.returncode != 0
        plain = dcmtk("echoscu", *where, timeout=60)
        assert plain.returncode != 0
        with socket.create_connection((host, port)):  # connects, never says a word
            late = dcmtk("echoscu", *_tls_args(good, good), *where, timeout=60)
            assert late.returncode == 0, late.stderr  # served while the silent one waits
        sent = dcmtk("storescu", *_tls_args(good, good), *where, *map(str, files))
        assert sent.returncode == 0, sent.stderr  # still up after the refused callers
    assert Store(home).counts()["instances"] == 3


def test_relays_client_verifies_the_peers_certificate(home: Path, tmp_path: Path, pkis):
    good, other = pkis
    port = free_port()
    out = tmp_path / "received"
    out.mkdir()
    scp = subprocess.Popen(["storescp", "+tls", str(good.server_key), str(good.server_cert),
                            "+cf", str(good.ca), "-aet", "TLSSCP", "-od", str(out), str(port)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_port(port)
        trusted = TlsOptions(ca_file=str(good.ca), cert_file=str(good.client_cert),
                             key_file=str(good.client_key))
        DimseClient(Endpoint("127.0.0.1", port, "TLSSCP", trusted), "RELAY").echo()
        wrong_ca = TlsOptions(ca_file=str(other.ca), cert_file=str(good.client_cert),
                              key_file=str(good.client_key))
        with pytest.raises(DimseError) as refused:
            DimseClient(Endpoint("127.0.0.1", port, "TLSSCP", wrong_ca), "RELAY").echo()
        assert refused.value.kind == "tls"
        assert "certificate not trusted" in str(refused.value)
        DimseClient(Endpoint("127.0.0.1", port, "TLSSCP", trusted), "RELAY").echo()  # still up
    finally:
        scp.terminate()
        scp.wait(timeout=10)


def test_relays_client_and_node_speak_tls_to_each_other(home: Path, pkis):
    good, _ = pkis
    with running_node(home, tls_cert_file=str(good.server_cert),
                      tls_key_file=str(good.server_key), tls_ca_file=str(good.ca)) as node:
        host, port = node.address or ("", 0)
        tls = TlsOptions(ca_file=str(good.ca), cert_file=str(good.client_cert),
                         key_file=str(good.client_key))
        DimseClient(Endpoint(host, port, node.node.ae_title, tls), "RELAY").echo()
        with pytest.raises(DimseError) as plain:
            DimseClient(Endpoint(host, port, node.node.ae_title), "RELAY").echo()
        assert "does it expect TLS?" in str(plain.value)


def _wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on {port}")

