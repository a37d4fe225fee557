"""Errors of the ``keys`` package.

Tree::

    KeysError                   anything wrong with keys, key files or signed lists
    ├── KeyFileError            a key file or key ring is missing, unreadable or malformed
    ├── PassphraseError         no passphrase was given, or it does not open the key
    ├── UnsupportedKeyError     a key type or algorithm fmcard does not use
    ├── SignedDocumentError     a trust list or status list token is malformed or badly signed
    │   ├── TrustListExpiredError   the trust list's ``exp`` has passed
    │   └── RollbackError           the document is older than the one already held
    └── StatusListError         a status list is malformed, too large or out of range
"""

from __future__ import annotations


class KeysError(Exception):
    """Base class for every error of the ``keys`` package."""


class KeyFileError(KeysError):
    """A key file or the key ring index is missing, unreadable or malformed."""


class PassphraseError(KeysError):
    """No passphrase was configured, or the passphrase does not decrypt the key."""


class UnsupportedKeyError(KeysError):
    """The key type, curve or algorithm is not one fmcard signs or verifies with."""


class SignedDocumentError(KeysError):
    """A signed trust list or status list is malformed, unsigned or signed by the wrong key."""


class TrustListExpiredError(SignedDocumentError):
    """The trust list has expired: the issuer has not published a fresh one in time."""


class RollbackError(SignedDocumentError):
    """The document is older than the one already held: an attacker may be replaying it."""


class StatusListError(KeysError):
    """A status list is malformed, decompresses too far, or an index is out of range."""
