"""The counter's optional scan log (``fmcard-verify serve --log FILE``): off by default.

One JSON line per scan with only what an operator needs to count and audit verdicts::

    {"t": "2026-11-22T09:30:12Z", "reason": "REVOKED", "service": "hc", "card": "3f0c...e1"}

``card`` is an HMAC-SHA256 of the card's issuer and serial under a random salt that never
leaves the station (``log-salt`` in its data directory, mode 0600), cut to 128 bits: the same
card gives the same value at this station, so repeated scans can be counted, but neither the
issuer (who knows every serial) nor anyone else holding the log can tell whose card it was.
Names, codes, birth dates and the QR text are never written; cards refused before their
signature checked out (nothing proves whose they are) have ``"card": null``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import threading
from datetime import UTC
from pathlib import Path

from keys.store import write_private_file
from verifier.result import VerificationResult

SALT_FILE = "log-salt"
SALT_BYTES = 32


def load_or_create_salt(path: Path) -> bytes:
    """The station's log salt at ``path``, made on first use (mode 0600)."""
    try:
        salt = path.read_bytes()
    except FileNotFoundError:
        salt = secrets.token_bytes(SALT_BYTES)
        write_private_file(path, salt)
        return salt
    if len(salt) < 16:
        raise ValueError(f"the log salt in {path} is too short")
    return salt


class ScanLog:
    """Appends one privacy-preserving line per verification; safe to share between threads."""

    def __init__(self, path: Path, salt: bytes) -> None:
        self.path = path
        self._salt = salt
        self._lock = threading.Lock()

    def card_hash(self, issuer: str, serial: str) -> str:
        message = f"{issuer}\x00{serial}".encode()
        return hmac.new(self._salt, message, hashlib.sha256).hexdigest()[:32]

    def entry(self, result: VerificationResult) -> dict[str, str | None]:
        card = result.card
        return {
            "t": result.checked_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "reason": result.reason.value,
            "service": result.service,
            "card": self.card_hash(card.issuer, card.serial) if card is not None else None,
        }

    def record(self, result: VerificationResult) -> None:
        line = (json.dumps(self.entry(result), separators=(",", ":")) + "\n").encode()
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)
