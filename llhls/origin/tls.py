"""The origin's TLS certificate: a cached self-signed ECDSA P-256 certificate.

``llhls live`` serves TLS by default. Browsers and players on the same machine
trust the certificate through its file (``httpx``/``ssl``: ``cafile``) or
through the SHA-256 of its SubjectPublicKeyInfo (Chromium:
``--ignore-certificate-errors-spki-list``, which also works for QUIC, where
``--ignore-certificate-errors`` does not).

The certificate is made on first use and cached under the user cache
directory (``$XDG_CACHE_HOME/llhls/tls`` or ``~/.cache/llhls/tls``); it is made
again when it is missing, unreadable, about to expire, does not match its key,
or does not name every requested host.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import ipaddress
import logging
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from llhls.errors import OriginError

__all__ = [
    "DEFAULT_HOSTS",
    "TLSFiles",
    "default_cache_dir",
    "ensure_self_signed",
    "make_self_signed",
    "spki_sha256_base64",
]

log = logging.getLogger(__name__)

DEFAULT_HOSTS: tuple[str, ...] = ("localhost", "127.0.0.1", "::1")
"""Names and addresses the default certificate is valid for."""

CERT_NAME = "cert.pem"
"""File name of the cached certificate (PEM)."""
KEY_NAME = "key.pem"
"""File name of the cached private key (PEM, PKCS#8, unencrypted, mode 0600)."""

VALIDITY = dt.timedelta(days=365)
"""How long a new certificate is valid."""
RENEW_BEFORE = dt.timedelta(days=7)
"""A cached certificate that expires sooner than this is replaced."""
_BACKDATE = dt.timedelta(hours=1)
"""notBefore lies this far in the past, to tolerate clock skew."""


@dataclass(frozen=True, slots=True)
class TLSFiles:
    """A PEM certificate and its private key on disk."""

    certfile: Path
    """The certificate (PEM)."""
    keyfile: Path
    """The unencrypted private key (PEM)."""

    def __post_init__(self) -> None:
        if not isinstance(self.certfile, Path) or not isinstance(self.keyfile, Path):
            raise TypeError("TLSFiles takes pathlib.Path objects")


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/llhls/tls``, or ``~/.cache/llhls/tls`` without it."""
    base = os.environ.get("XDG_CACHE_HOME")
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".cache"
    return root / "llhls" / "tls"


def ensure_self_signed(
    cache_dir: Path | None = None,
    hosts: Sequence[str] = DEFAULT_HOSTS,
) -> TLSFiles:
    """The cached self-signed certificate for ``hosts``, made first if needed.

    ``cache_dir`` defaults to :func:`default_cache_dir`. A usable cached
    certificate (readable, matching its key, valid for at least another
    :data:`RENEW_BEFORE`, naming every host) is returned as it is; otherwise a
    new one is written, naming ``hosts`` plus the hosts the old one named.
    Raises :class:`OriginError` when the directory or files cannot be written.
    """
    if not hosts:
        raise ValueError("at least one host name or address is needed")
    directory = default_cache_dir() if cache_dir is None else cache_dir
    files = TLSFiles(directory / CERT_NAME, directory / KEY_NAME)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with _locked(directory):
            known = _usable_hosts(files, dt.datetime.now(dt.UTC))
            if known is not None and {_canonical(host) for host in hosts} <= known:
                return files
            names = list(dict.fromkeys([*hosts, *sorted(known or ())]))
            cert_pem, key_pem = make_self_signed(names)
            _write_atomic(files.keyfile, key_pem, mode=0o600)
            _write_atomic(files.certfile, cert_pem, mode=0o644)
    except OSError as exc:
        raise OriginError(f"cannot write the TLS certificate to {directory}: {exc}") from exc
    log.info("made a self-signed certificate for %s in %s", ", ".join(names), directory)
    return files


def make_self_signed(
    hosts: Sequence[str],
    *,
    now: dt.datetime | None = None,
    validity: dt.timedelta = VALIDITY,
) -> tuple[bytes, bytes]:
    """A new self-signed ECDSA P-256 certificate for ``hosts``: (cert PEM, key PEM).

    Every host becomes a subjectAltName: an iPAddress entry when it parses as
    an IPv4/IPv6 address, a dNSName entry otherwise. The first host is the
    subject's common name.
    """
    if not hosts:
        raise ValueError("at least one host name or address is needed")
    start = (now or dt.datetime.now(dt.UTC)) - _BACKDATE
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "llhls"),
            x509.NameAttribute(NameOID.COMMON_NAME, hosts[0][:64]),
        ]
    )
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + _BACKDATE + validity)
        .add_extension(x509.SubjectAlternativeName(_san_entries(hosts)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert_pem, key_pem


def spki_sha256_base64(certfile: Path) -> str:
    """Base64 of the SHA-256 of the certificate's DER SubjectPublicKeyInfo.

    The value Chromium's ``--ignore-certificate-errors-spki-list`` takes.
    Raises :class:`OriginError` when the file cannot be read or parsed.
    """
    try:
        cert = x509.load_pem_x509_certificate(certfile.read_bytes())
    except (OSError, ValueError) as exc:
        raise OriginError(f"cannot read the certificate {certfile}: {exc}") from exc
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(spki).digest()).decode("ascii")


def _san_entries(hosts: Sequence[str]) -> list[x509.GeneralName]:
    entries: list[x509.GeneralName] = []
    for host in hosts:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            entries.append(x509.DNSName(host))
    return entries


def _usable_hosts(files: TLSFiles, now: dt.datetime) -> set[str] | None:
    """The hosts a cached certificate names, or None when it must be made again."""
    try:
        cert = x509.load_pem_x509_certificate(files.certfile.read_bytes())
        key = serialization.load_pem_private_key(files.keyfile.read_bytes(), password=None)
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError, x509.ExtensionNotFound) as exc:
        log.warning("replacing the unreadable certificate in %s: %s", files.certfile.parent, exc)
        return None
    if cert.not_valid_after_utc - RENEW_BEFORE < now or cert.not_valid_before_utc > now:
        log.info("replacing the certificate in %s: it expires or is not yet valid", files.certfile)
        return None
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    if key.public_key().public_bytes(der, spki) != cert.public_key().public_bytes(der, spki):
        log.warning("replacing the certificate in %s: it does not match its key", files.certfile)
        return None
    hosts = {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}
    hosts.update(san.get_values_for_type(x509.DNSName))
    return {_canonical(host) for host in hosts}


def _canonical(host: str) -> str:
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host


def _write_atomic(path: Path, data: bytes, *, mode: int) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``directory`` (POSIX), so that two processes
    starting together do not write each other's certificate and key."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    with open(directory / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
