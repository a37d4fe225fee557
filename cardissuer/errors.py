"""Errors of the issuer's domain code (never HTTP-specific: one handler maps them).

Tree::

    IssuerError                 anything the issuer refuses to do
    ├── PortraitError           the photo cannot be made into a portrait
    ├── CardInputError          a card request is malformed or invalid
    ├── WorkspaceError          the offline issuing workspace is missing or inconsistent
    ├── DemoRefusedError        demo data (published passwords) asked for in production
    ├── NotFoundError           no such record (or not visible to this officer's office)
    ├── ConflictError           the change contradicts the records (passport registered...)
    │   └── DuplicateSuspectedError   likely the same person as existing records
    ├── AccessDeniedError       the officer's role or office does not allow it
    ├── AuthenticationError     wrong credentials or an expired session
    │   └── RateLimitedError    too many failed logins; try later
    └── AuditChainError         the audit log was edited, reordered or truncated
"""

from __future__ import annotations

from typing import Any


class IssuerError(Exception):
    """Base class for every error of the ``cardissuer`` package."""

    #: Stable identifier used in RFC 9457 problem ``type`` URIs.
    code = "issuer-error"


class PortraitError(IssuerError):
    """The photo is unreadable, too large or of a format that is not accepted."""

    code = "invalid-photo"


class CardInputError(IssuerError):
    """A card request is malformed or a field is invalid; the message names the field."""

    code = "invalid-card-request"


class WorkspaceError(IssuerError):
    """The offline issuing workspace is missing, damaged or full."""

    code = "workspace-error"


class DemoRefusedError(IssuerError):
    """Demo officers and persons were asked for in production: their password is published
    and their cards would be signed with the production key, so nothing is written."""

    code = "demo-refused"


class NotFoundError(IssuerError):
    """No such record, or none this officer may see."""

    code = "not-found"


class ConflictError(IssuerError):
    """The request contradicts existing records."""

    code = "conflict"


class PhoneCardNotPrintableError(ConflictError):
    """A phone card is shown live from its holder's phone (FORMAT.md section 11): printed,
    put in a wallet or shown as a plain QR it has no device proof, and every counter refuses
    it, so the service makes none of these."""

    code = "phone-card-not-printable"


class DuplicateSuspectedError(ConflictError):
    """The person looks already registered; the officer must link or confirm a new person."""

    code = "duplicate-suspected"

    def __init__(self, message: str, candidates: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.candidates = candidates


class AccessDeniedError(IssuerError):
    """The officer's role or office does not allow this; nothing was changed."""

    code = "access-denied"


class AuthenticationError(IssuerError):
    """Credentials are wrong, or the session is missing or expired."""

    code = "authentication-failed"


class RateLimitedError(AuthenticationError):
    """Too many failed logins for this account; try again later (``retry_after`` seconds)."""

    code = "rate-limited"

    def __init__(self, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class AuditChainError(IssuerError):
    """The audit log does not verify; ``seq`` is the first broken entry."""

    code = "audit-chain-broken"

    def __init__(self, message: str, seq: int | None) -> None:
        super().__init__(message)
        self.seq = seq
