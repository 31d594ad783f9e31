"""The cached self-signed certificate of the origin."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ipaddress
import os
import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from llhls.errors import OriginError
from llhls.origin import tls
from llhls.origin.tls import (
    TLSFiles,
    default_cache_dir,
    ensure_self_signed,
    make_self_signed,
    spki_sha256_base64,
)


def load(files: TLSFiles) -> x509.Certificate:
    return x509.load_pem_x509_certificate(files.certfile.read_bytes())


def sans(cert: x509.Certificate) -> tuple[set[str], set[str]]:
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    dns = set(san.get_values_for_type(x509.DNSName))
    ips = {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}
    return dns, ips


def test_made_once_then_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = ensure_self_signed(tmp_path)
    assert first == TLSFiles(tmp_path / "cert.pem", tmp_path / "key.pem")
    cert_bytes = first.certfile.read_bytes()
    key_bytes = first.keyfile.read_bytes()
    mtime = first.certfile.stat().st_mtime_ns

    def no_new_certificate(*args: object, **kwargs: object) -> tuple[bytes, bytes]:
        raise AssertionError("the cached certificate was made again")

    monkeypatch.setattr(tls, "make_self_signed", no_new_certificate)
    second = ensure_self_signed(tmp_path)
    assert second == first
    assert second.certfile.read_bytes() == cert_bytes
    assert second.keyfile.read_bytes() == key_bytes
    assert second.certfile.stat().st_mtime_ns == mtime


def test_certificate_contents(tmp_path: Path) -> None:
    files = ensure_self_signed(tmp_path)
    cert = load(files)
    dns, ips = sans(cert)
    assert dns == {"localhost"}
    assert ips == {"127.0.0.1", "::1"}
    key = cert.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    assert key.curve.name == "secp256r1"
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert dt.timedelta(days=364) < lifetime < dt.timedelta(days=367)
    now = dt.datetime.now(dt.UTC)
    assert cert.not_valid_before_utc < now < cert.not_valid_after_utc
    assert cert.issuer == cert.subject
    assert stat.S_IMODE(files.keyfile.stat().st_mode) == 0o600


def test_python_ssl_accepts_it_for_every_host(tmp_path: Path) -> None:
    files = ensure_self_signed(tmp_path)
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(str(files.certfile), str(files.keyfile))
    client = ssl.create_default_context(cafile=str(files.certfile))
    for host in ("localhost", "127.0.0.1", "::1"):
        _handshake(client, server, host)
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(client, server, "example.com")


def _handshake(client: ssl.SSLContext, server: ssl.SSLContext, host: str) -> None:
    """An in-memory TLS handshake (no sockets)."""
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    c = client.wrap_bio(c_in, c_out, server_hostname=host)
    s = server.wrap_bio(s_in, s_out, server_side=True)
    done = [False, False]
    for _ in range(10):
        for i, (obj, out, peer_in) in enumerate(((c, c_out, s_in), (s, s_out, c_in))):
            if not done[i]:
                try:
                    obj.do_handshake()
                    done[i] = True
                except ssl.SSLWantReadError:
                    pass
            peer_in.write(out.read())
        if all(done):
            return
    raise AssertionError("handshake did not finish")


def test_spki_hash_format(tmp_path: Path) -> None:
    files = ensure_self_signed(tmp_path)
    value = spki_sha256_base64(files.certfile)
    assert len(value) == 44 and value.endswith("=")
    raw = base64.b64decode(value, validate=True)
    assert len(raw) == 32
    spki = (
        load(files)
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    assert raw == hashlib.sha256(spki).digest()


def test_spki_of_unreadable_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("nope")
    with pytest.raises(OriginError, match="cannot read the certificate"):
        spki_sha256_base64(bad)
    with pytest.raises(OriginError):
        spki_sha256_base64(tmp_path / "missing.pem")


def test_unreadable_cache_is_replaced(tmp_path: Path) -> None:
    files = ensure_self_signed(tmp_path)
    files.certfile.write_text("garbage")
    again = ensure_self_signed(tmp_path)
    assert sans(load(again))[0] == {"localhost"}


def test_mismatched_key_is_replaced(tmp_path: Path) -> None:
    files = ensure_self_signed(tmp_path)
    _, other_key = make_self_signed(["localhost"])
    files.keyfile.write_bytes(other_key)
    again = ensure_self_signed(tmp_path)
    cert = load(again)
    key = serialization.load_pem_private_key(again.keyfile.read_bytes(), password=None)
    der, spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    assert key.public_key().public_bytes(der, spki) == cert.public_key().public_bytes(der, spki)


def test_expiring_certificate_is_replaced(tmp_path: Path) -> None:
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=400)
    cert_pem, key_pem = make_self_signed(["localhost", "127.0.0.1", "::1"], now=old)
    tmp_path.joinpath("cert.pem").write_bytes(cert_pem)
    tmp_path.joinpath("key.pem").write_bytes(key_pem)
    files = ensure_self_signed(tmp_path)
    assert files.certfile.read_bytes() != cert_pem
    assert load(files).not_valid_after_utc > dt.datetime.now(dt.UTC) + dt.timedelta(days=300)


def test_new_host_extends_the_certificate(tmp_path: Path) -> None:
    ensure_self_signed(tmp_path)
    files = ensure_self_signed(tmp_path, hosts=("media.test", "10.0.0.7"))
    dns, ips = sans(load(files))
    assert dns == {"localhost", "media.test"}
    assert ips == {"127.0.0.1", "::1", "10.0.0.7"}
    ip = ipaddress.ip_address("10.0.0.7")
    assert str(ip) in ips


def test_default_cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "llhls" / "tls"
    files = ensure_self_signed()
    assert files.certfile == tmp_path / "llhls" / "tls" / "cert.pem"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "llhls" / "tls"


def test_unwritable_cache_dir(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OriginError, match="cannot write the TLS certificate"):
        ensure_self_signed(blocker / "tls")


def test_tlsfiles_takes_paths() -> None:
    with pytest.raises(TypeError):
        TLSFiles("cert.pem", "key.pem")  # type: ignore[arg-type]
    assert os.fspath(TLSFiles(Path("c"), Path("k")).certfile) == "c"
