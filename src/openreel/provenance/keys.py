"""The certificate and key that sign openreel's C2PA manifests.

Two sources, in this order:

1. The owner's own: ``OPENREEL_SIGNING_CERT`` (a PEM chain, signing certificate first) and
   ``OPENREEL_SIGNING_KEY`` (its PEM private key). Use this to sign with a certificate a
   public trust list knows.
2. A local CA and a signing certificate made on first run under ``home()/"keys"``. Files signed
   with it read as valid everywhere, and as trusted wherever the local CA is a trust anchor
   (this installation's own ``verify`` always is).

``OPENREEL_TRUST_ANCHORS`` may name a PEM file of more roots that ``verify`` should trust.

The recipe follows FIELD-NOTES: c2pa-rs rejects a self-signed leaf, a CA as the signer and the
serverAuth / documentSigning EKUs, so the local chain is a real two-level one: a root CA
(keyCertSign) and a leaf with digitalSignature + emailProtection.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from openreel import paths
from openreel.errors import OpenreelError

CERT_ENV = "OPENREEL_SIGNING_CERT"
KEY_ENV = "OPENREEL_SIGNING_KEY"
ANCHORS_ENV = "OPENREEL_TRUST_ANCHORS"
# The watermark secret: any string the owner chooses (several installations that share it read
# each other's marks), else a random one made on first run beside the signing key.
WATERMARK_KEY_ENV = "OPENREEL_WATERMARK_KEY"
WATERMARK_KEY = "watermark.key"

CA_CERT = "ca.pem"
CA_KEY = "ca.key"
SIGNER_CHAIN = "signer.pem"
SIGNER_KEY = "signer.key"

# Long enough that nobody meets an expiry in normal use; the leaf is re-issued from the CA
# when it gets close, so old files stay verifiable (their chain is embedded in the manifest).
_CA_YEARS = 20
_LEAF_YEARS = 5
_RENEW_BEFORE = dt.timedelta(days=30)


class SigningKeyError(OpenreelError):
    """The configured signing certificate or key cannot be used."""

    code = "signing_key_invalid"
    status = 500


@dataclass(frozen=True)
class SigningIdentity:
    chain_pem: bytes  # signing certificate first, then its issuers
    key_pem: bytes
    # "owner" when it came from OPENREEL_SIGNING_CERT/KEY, "local" for the first-run CA.
    source: str
    algorithm: str = "es256"


def keys_dir() -> Path:
    return paths.home() / "keys"


def signing_identity() -> SigningIdentity:
    """The identity to sign with: the owner's when configured, else the local one (made if needed)."""
    cert_path = os.environ.get(CERT_ENV)
    key_path = os.environ.get(KEY_ENV)
    if cert_path or key_path:
        if not (cert_path and key_path):
            raise SigningKeyError(f"set both {CERT_ENV} and {KEY_ENV}, or neither (to use the local CA)")
        return load_identity(Path(cert_path), Path(key_path), source="owner")
    return local_identity()


def load_identity(cert_path: Path, key_path: Path, *, source: str = "owner") -> SigningIdentity:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    try:
        chain_pem = cert_path.expanduser().read_bytes()
        key_pem = key_path.expanduser().read_bytes()
        chain = x509.load_pem_x509_certificates(chain_pem)
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise SigningKeyError(
            f"cannot read signing certificate {cert_path} / key {key_path}: {exc}"
        ) from None
    if chain[0].public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) != key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ):
        raise SigningKeyError(
            f"the key in {key_path} does not belong to the first certificate in {cert_path}"
        )
    # c2pa names the algorithm explicitly; pick it from the key so the owner need not.
    if isinstance(key, ec.EllipticCurvePrivateKey):
        alg = {"secp256r1": "es256", "secp384r1": "es384", "secp521r1": "es512"}.get(key.curve.name)
        if alg is None:
            raise SigningKeyError(f"unsupported EC curve {key.curve.name} in {key_path}")
    elif isinstance(key, rsa.RSAPrivateKey):
        alg = "ps256"
    elif isinstance(key, ed25519.Ed25519PrivateKey):
        alg = "ed25519"
    else:
        raise SigningKeyError(f"unsupported key type in {key_path}")
    return SigningIdentity(chain_pem=chain_pem, key_pem=key_pem, source=source, algorithm=alg)


def local_identity() -> SigningIdentity:
    folder = keys_dir()
    if not (folder / SIGNER_CHAIN).exists():
        _create_local_ca(folder)
    _renew_leaf_if_due(folder)
    return SigningIdentity(
        chain_pem=(folder / SIGNER_CHAIN).read_bytes(),
        key_pem=(folder / SIGNER_KEY).read_bytes(),
        source="local",
    )


def watermark_key() -> bytes:
    """The secret that encrypts and authenticates watermark payloads (32 bytes)."""
    import hashlib

    owner = os.environ.get(WATERMARK_KEY_ENV, "").strip()
    if owner:
        return hashlib.sha256(b"openreel-watermark-key:" + owner.encode()).digest()
    folder = keys_dir()
    if not (folder / SIGNER_CHAIN).exists():
        _create_local_ca(folder)  # the folder is made whole by rename: make it before adding to it
    path = folder / WATERMARK_KEY
    if not path.exists():
        _create_watermark_key(path)
    try:
        return bytes.fromhex(path.read_text().strip())
    except ValueError:
        raise SigningKeyError(f"{path} is not a hex watermark key; remove it to make a new one") from None


def _create_watermark_key(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".watermark-key.")
    with os.fdopen(fd, "w") as fh:
        fh.write(os.urandom(32).hex() + "\n")
    try:
        # link, not rename: if another process got there first, its key wins and stays.
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        os.unlink(tmp)


def trust_anchors_pem() -> str:
    """PEM roots that ``verify`` trusts: the local CA, the owner's root, OPENREEL_TRUST_ANCHORS."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    pems: list[str] = []
    ca = keys_dir() / CA_CERT
    if ca.exists():
        pems.append(ca.read_text())
    cert_path = os.environ.get(CERT_ENV)
    if cert_path:
        # The owner configured this chain on purpose: its self-signed root is theirs to trust.
        try:
            chain = x509.load_pem_x509_certificates(Path(cert_path).expanduser().read_bytes())
        except (OSError, ValueError):
            chain = []
        for cert in chain:
            if cert.issuer == cert.subject:
                pems.append(cert.public_bytes(serialization.Encoding.PEM).decode())
    extra = os.environ.get(ANCHORS_ENV)
    if extra:
        try:
            pems.append(Path(extra).expanduser().read_text())
        except OSError as exc:
            raise SigningKeyError(f"cannot read {ANCHORS_ENV}={extra}: {exc}") from None
    return "\n".join(p.strip() + "\n" for p in pems if p.strip())


# --- making the local chain -------------------------------------------------------------------


def make_ca(common_name: str, *, years: int = _CA_YEARS) -> tuple[object, object]:
    """A root CA (certificate, private key) that c2pa-rs accepts as an anchor. Public for tests."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "openreel"),
        ]
    )
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365 * years))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def make_leaf(
    ca_cert: object, ca_key: object, common_name: str, *, years: int = _LEAF_YEARS
) -> tuple[object, object]:
    """A signing certificate issued by ``ca_cert``. Public for tests (owner certs, unknown CAs)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value  # type: ignore[attr-defined]
    cert = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "openreel"),
                ]
            )
        )
        .issuer_name(ca_cert.subject)  # type: ignore[attr-defined]
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365 * years))
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
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    return cert, key


def cert_pem(cert: object) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return cert.public_bytes(serialization.Encoding.PEM)  # type: ignore[attr-defined]


def key_pem(key: object) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def _create_local_ca(folder: Path) -> None:
    # Several workers may start at once: each builds a complete folder under a temporary name
    # and renames it into place; a rename onto an existing folder fails, and the loser's
    # copy is thrown away, so every process ends up with the same CA and leaf.
    import socket

    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".keys-", dir=folder.parent))
    try:
        ca_cert, ca_key = make_ca(f"openreel local CA ({socket.gethostname()})")
        leaf_cert, leaf_key = make_leaf(ca_cert, ca_key, "openreel signer")
        (staging / CA_CERT).write_bytes(cert_pem(ca_cert))
        _write_private(staging / CA_KEY, key_pem(ca_key))
        (staging / SIGNER_CHAIN).write_bytes(cert_pem(leaf_cert) + cert_pem(ca_cert))
        _write_private(staging / SIGNER_KEY, key_pem(leaf_key))
        os.chmod(staging, 0o700)
        try:
            os.rename(staging, folder)
        except OSError:
            if not (folder / SIGNER_CHAIN).exists():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _renew_leaf_if_due(folder: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    leaf = x509.load_pem_x509_certificates((folder / SIGNER_CHAIN).read_bytes())[0]
    if leaf.not_valid_after_utc - dt.datetime.now(dt.timezone.utc) > _RENEW_BEFORE:
        return
    ca_cert = x509.load_pem_x509_certificate((folder / CA_CERT).read_bytes())
    ca_key = serialization.load_pem_private_key((folder / CA_KEY).read_bytes(), password=None)
    leaf_cert, leaf_key = make_leaf(ca_cert, ca_key, "openreel signer")
    # Each file is replaced by rename, so neither is ever half-written. This runs once in years;
    # a signing that races it may see the new key with the old chain and fail that one time.
    for name, data in (
        (SIGNER_KEY, key_pem(leaf_key)),
        (SIGNER_CHAIN, cert_pem(leaf_cert) + cert_pem(ca_cert)),
    ):
        tmp = folder / f".{name}.tmp"
        _write_private(tmp, data)
        os.replace(tmp, folder / name)
