"""The keys that sign wallet passes: configured in production, generated in development.

Apple Wallet wants a Pass Type ID certificate (issued by Apple's WWDR intermediate) and Google
Wallet a service account's RSA key. Neither can be had on a fresh development machine, so
development makes stand-ins in ``<workspace>/wallet-dev/``: a root, a stand-in "WWDR"
intermediate and a signer certificate for Apple, an RSA key in a fake service-account file for
Google. Passes signed with them are structurally the real thing (Wallet itself refuses them),
which is what tests and demos need. Production never generates anything: missing paths are a
:class:`WalletNotConfiguredError`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.x509.oid import NameOID

from cardissuer.core.config import Environment, Settings
from cardissuer.errors import IssuerError

log = logging.getLogger("fmcard.wallet")

DEV_DIRECTORY = "wallet-dev"


class WalletNotConfiguredError(IssuerError):
    """Wallet passes are asked for but their signing keys are not configured."""

    code = "wallet-not-configured"
    http_status = 503


@dataclass(frozen=True)
class AppleCredentials:
    certificate: x509.Certificate
    key: PrivateKeyTypes
    wwdr: x509.Certificate
    development: bool


@dataclass(frozen=True)
class GoogleCredentials:
    client_email: str
    private_key_pem: str
    development: bool


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "fmcard development (not Apple)"),
        ]
    )


def _certificate(
    subject: str,
    key: rsa.RSAPrivateKey,
    issuer: str,
    issuer_key: rsa.RSAPrivateKey,
    *,
    ca: bool,
) -> x509.Certificate:
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=10 * 365))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=not ca,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )
    return builder.sign(issuer_key, hashes.SHA256())


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem_key(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    path.chmod(0o600)


def development_apple_files(workspace: Path) -> dict[str, Path]:
    """Create (once) the development root, stand-in WWDR intermediate and signer."""
    directory = workspace / DEV_DIRECTORY
    files = {
        "root": directory / "apple-dev-root.pem",
        "wwdr": directory / "apple-dev-wwdr.pem",
        "certificate": directory / "apple-dev-pass.pem",
        "key": directory / "apple-dev-pass.key",
    }
    if all(path.exists() for path in files.values()):
        return files
    root_key, wwdr_key, pass_key = _new_key(), _new_key(), _new_key()
    root_name = "fmcard development wallet root"
    wwdr_name = "fmcard development stand-in for Apple WWDR"
    root = _certificate(root_name, root_key, root_name, root_key, ca=True)
    wwdr = _certificate(wwdr_name, wwdr_key, root_name, root_key, ca=True)
    signer = _certificate("Pass Type ID: development", pass_key, wwdr_name, wwdr_key, ca=False)
    pem = serialization.Encoding.PEM
    _write(files["root"], root.public_bytes(pem))
    _write(files["wwdr"], wwdr.public_bytes(pem))
    _write(files["certificate"], signer.public_bytes(pem))
    _write(files["key"], _pem_key(pass_key))
    log.warning(
        "development: generated a self-signed Apple Wallet signer and stand-in WWDR in %s; "
        "Wallet will not accept these passes",
        directory,
    )
    return files


def development_google_file(workspace: Path) -> Path:
    """Create (once) a fake service-account file with a fresh RSA key."""
    path = workspace / DEV_DIRECTORY / "google-service-account.json"
    if path.exists():
        return path
    account = {
        "type": "service_account",
        "client_email": "fmcard-development@fmcard-development.iam.gserviceaccount.com",
        "private_key": _pem_key(_new_key()).decode(),
        "development": True,
    }
    _write(path, json.dumps(account, indent=2).encode())
    log.warning(
        "development: generated a fake Google service account in %s; Google will not accept "
        "its save links",
        path,
    )
    return path


def apple_credentials(settings: Settings) -> AppleCredentials:
    certificate_path = settings.apple_signer_certificate
    key_path = settings.apple_signer_key
    wwdr_path = settings.apple_wwdr_certificate
    if certificate_path and key_path and wwdr_path:
        password = settings.apple_signer_key_password
        development = False
    elif settings.environment is Environment.PRODUCTION:
        raise WalletNotConfiguredError(
            "Apple Wallet passes need FMCARD_APPLE_SIGNER_CERTIFICATE, FMCARD_APPLE_SIGNER_KEY "
            "and FMCARD_APPLE_WWDR_CERTIFICATE"
        )
    else:
        files = development_apple_files(settings.workspace)
        certificate_path, key_path, wwdr_path = files["certificate"], files["key"], files["wwdr"]
        password = None
        development = True
    key = serialization.load_pem_private_key(
        key_path.read_bytes(),
        password=password.get_secret_value().encode() if password else None,
    )
    return AppleCredentials(
        certificate=x509.load_pem_x509_certificate(certificate_path.read_bytes()),
        key=key,
        wwdr=x509.load_pem_x509_certificate(wwdr_path.read_bytes()),
        development=development,
    )


def google_credentials(settings: Settings) -> GoogleCredentials:
    path = settings.google_service_account_file
    development = False
    if path is None:
        if settings.environment is Environment.PRODUCTION:
            raise WalletNotConfiguredError(
                "Google Wallet save links need FMCARD_GOOGLE_SERVICE_ACCOUNT_FILE"
            )
        path = development_google_file(settings.workspace)
        development = True
    account: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return GoogleCredentials(
        client_email=str(account["client_email"]),
        private_key_pem=str(account["private_key"]),
        development=development,
    )
