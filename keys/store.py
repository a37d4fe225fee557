"""Private keys at rest: encrypted PKCS#8 PEM files, never written in clear.

The passphrase comes from an environment variable or a file (a mounted secret), never from a
command-line argument (other users can read those in ``ps``). Files are written atomically
with mode 0600, so a crash leaves the old key or the new key, never half a key.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from keys.errors import KeyFileError, PassphraseError, UnsupportedKeyError
from keys.jwk import PrivateKey, algorithm_of

PASSPHRASE_ENV = "FMCARD_KEY_PASSPHRASE"  # noqa: S105 - a variable name, not a secret
PASSPHRASE_FILE_ENV = "FMCARD_KEY_PASSPHRASE_FILE"  # noqa: S105
MIN_PASSPHRASE_LENGTH = 12


@dataclass(frozen=True, slots=True)
class Passphrase:
    """Where the passphrase for key files comes from; read only when a key is opened."""

    value: bytes

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Passphrase:
        """Read ``FMCARD_KEY_PASSPHRASE``, or the file named by ``FMCARD_KEY_PASSPHRASE_FILE``."""
        env = dict(os.environ) if environ is None else environ
        if env.get(PASSPHRASE_FILE_ENV):
            return cls.from_file(Path(env[PASSPHRASE_FILE_ENV]))
        if env.get(PASSPHRASE_ENV):
            return cls.from_text(env[PASSPHRASE_ENV])
        raise PassphraseError(f"no key passphrase: set {PASSPHRASE_ENV} or {PASSPHRASE_FILE_ENV}")

    @classmethod
    def from_file(cls, path: Path) -> Passphrase:
        """Read the passphrase from the first line of ``path``."""
        try:
            text = path.read_text(encoding="utf-8").splitlines()[0]
        except (OSError, IndexError, UnicodeDecodeError):
            raise PassphraseError(f"cannot read a passphrase from {path}") from None
        return cls.from_text(text)

    @classmethod
    def from_text(cls, text: str) -> Passphrase:
        if len(text) < MIN_PASSPHRASE_LENGTH:
            raise PassphraseError(
                f"the key passphrase must have at least {MIN_PASSPHRASE_LENGTH} characters"
            )
        return cls(text.encode("utf-8"))

    def __repr__(self) -> str:
        return "Passphrase(<hidden>)"


def save_private_key(key: PrivateKey, path: Path, passphrase: Passphrase) -> None:
    """Write ``key`` to ``path`` as encrypted PKCS#8 PEM (mode 0600, atomic replace)."""
    algorithm_of(key)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase.value),
    )
    write_private_file(path, pem)


def load_private_key(path: Path, passphrase: Passphrase) -> PrivateKey:
    """Read an encrypted PKCS#8 key; refuse unencrypted files and unsupported key types."""
    try:
        pem = path.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"cannot read key file {path}: {exc.strerror}") from None
    if b"ENCRYPTED PRIVATE KEY" not in pem:
        raise KeyFileError(f"{path} is not an encrypted PKCS#8 key; refusing a key in clear")
    try:
        key = serialization.load_pem_private_key(pem, password=passphrase.value)
    except ValueError:
        raise PassphraseError(
            f"the passphrase does not open {path} (or the file is damaged)"
        ) from None
    except TypeError:
        raise KeyFileError(f"{path} is not an encrypted key") from None
    if not isinstance(key, PrivateKey):
        raise UnsupportedKeyError(f"{path} holds a {type(key).__name__}, not P-256 or Ed25519")
    algorithm_of(key)
    return key


def write_private_file(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, readable by the owner only."""
    write_file(path, data, mode=0o600)


def write_file(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` atomically (temporary file, fsync, rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
