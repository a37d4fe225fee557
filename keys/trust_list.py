"""The trust list: which issuer keys a counter trusts, signed by the trust anchor.

A trust list is a JWT (header ``typ: fmcard-trust+jwt``) signed by a separate trust-anchor key
whose public key every verifier pins. It names each issuer, the URI prefix of its status lists,
and each of its keys with a state and a signing window:

``next``
    announced before use; cards issued from ``valid_from`` on are accepted, so counters that
    synced before the switch already know the key;
``active``
    the key the issuer signs with now;
``retired``
    verify only: cards issued before ``valid_until`` stay valid until they expire;
``compromised``
    every card signed by the key is refused when verified at or after ``compromised_since``
    (or always, without it). The card's own ``iat`` is not consulted: whoever holds a stolen
    key can back-date it.

Versions only go up. :func:`read_trust_list` refuses a list that is unsigned, signed by a key
other than the pinned anchors, expired, or older than the one already held (rollback). A list
may also announce ``next_anchors``: the anchor keys allowed to sign the following version,
which is how the anchor itself is rotated without re-installing counters.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from keys.errors import RollbackError, SignedDocumentError, TrustListExpiredError
from keys.jwk import PublicKey, key_thumbprint, kid_of, public_jwk, public_key_from_jwk
from keys.jws import VerificationKey, decode_jwt, encode_jwt
from keys.signer import Signer
from schemas import strictjson

TRUST_LIST_TYP = "fmcard-trust+jwt"


class KeyState(enum.StrEnum):
    """What a trusted key may still do."""

    NEXT = "next"
    ACTIVE = "active"
    RETIRED = "retired"
    COMPROMISED = "compromised"


@dataclass(frozen=True, slots=True)
class TrustedKey:
    """One issuer key as the trust list describes it."""

    public_key: PublicKey
    state: KeyState
    valid_from: datetime
    valid_until: datetime | None = None
    compromised_since: datetime | None = None
    kid: str = field(default="")
    thumbprint: str = field(default="", init=False, repr=False, compare=False)
    """The key's full RFC 7638 thumbprint: its identity (``kid`` is only a lookup hint)."""

    def __post_init__(self) -> None:
        if not self.kid:
            object.__setattr__(self, "kid", kid_of(self.public_key))
        object.__setattr__(self, "thumbprint", key_thumbprint(self.public_key))

    @property
    def verification_key(self) -> VerificationKey:
        return VerificationKey(self.kid, self.public_key)

    def is_compromised_at(self, at: datetime) -> bool:
        """Whether everything this key signed must be refused when verifying at ``at``."""
        if self.state is not KeyState.COMPROMISED:
            return False
        return self.compromised_since is None or at >= self.compromised_since

    def covers_issue_time(self, issued_at: datetime, leeway: timedelta) -> bool:
        """Whether a card issued at ``issued_at`` falls inside this key's signing window."""
        if issued_at + leeway < self.valid_from:
            return False
        return self.valid_until is None or issued_at - leeway < self.valid_until

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kid": self.kid,
            "jwk": public_jwk(self.public_key),
            "state": self.state.value,
            "valid_from": _seconds(self.valid_from),
        }
        if self.valid_until is not None:
            out["valid_until"] = _seconds(self.valid_until)
        if self.compromised_since is not None:
            out["compromised_since"] = _seconds(self.compromised_since)
        return out

    @classmethod
    def from_json(cls, value: Any) -> TrustedKey:
        _require_members(
            value,
            {"kid", "jwk", "state", "valid_from"},
            {"valid_until", "compromised_since"},
            "trust list key",
        )
        try:
            state = KeyState(value["state"])
        except ValueError:
            raise SignedDocumentError(f"unknown key state {value['state']!r}") from None
        key = cls(
            public_key=public_key_from_jwk(value["jwk"]),
            state=state,
            valid_from=_time(value["valid_from"]),
            valid_until=_optional_time(value.get("valid_until")),
            compromised_since=_optional_time(value.get("compromised_since")),
            kid=_string(value["kid"], "kid"),
        )
        if key.compromised_since is not None and key.state is not KeyState.COMPROMISED:
            # A signed list that dates a compromise of a key it calls usable says two things
            # at once; a verifier must not have to guess which one holds.
            raise SignedDocumentError(f"key {key.kid!r} has compromised_since but is {state}")
        if key.kid != kid_of(key.public_key):
            raise SignedDocumentError(f"trust list kid {key.kid!r} does not match its key")
        return key


@dataclass(frozen=True, slots=True)
class TrustedIssuer:
    """An issuing authority: its id (the cards' ``iss``), names, status lists and keys."""

    issuer_id: str
    name_en: str
    name_zh: str
    status_uri_prefix: str
    keys: tuple[TrustedKey, ...]

    def status_uri(self, list_id: str) -> str:
        """Return the URI (the status list token's ``sub``) of list ``list_id``."""
        return self.status_uri_prefix + list_id

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.issuer_id,
            "name": {"en": self.name_en, "zh": self.name_zh},
            "status_uri_prefix": self.status_uri_prefix,
            "keys": [key.to_json() for key in self.keys],
        }

    @classmethod
    def from_json(cls, value: Any) -> TrustedIssuer:
        _require_members(value, {"id", "name", "status_uri_prefix", "keys"}, set(), "issuer")
        names = value["name"]
        _require_members(names, {"en", "zh"}, set(), "issuer name")
        if not isinstance(value["keys"], list):
            raise SignedDocumentError("issuer keys must be a list")
        return cls(
            issuer_id=_string(value["id"], "id"),
            name_en=_string(names["en"], "name.en"),
            name_zh=_string(names["zh"], "name.zh"),
            status_uri_prefix=_string(value["status_uri_prefix"], "status_uri_prefix"),
            keys=tuple(TrustedKey.from_json(key) for key in value["keys"]),
        )


@dataclass(frozen=True, slots=True)
class TrustList:
    """A verified (or about to be signed) trust list."""

    version: int
    issued_at: datetime
    expires_at: datetime
    issuers: tuple[TrustedIssuer, ...]
    next_anchors: tuple[PublicKey, ...] = ()

    def is_expired(self, at: datetime) -> bool:
        return at >= self.expires_at

    def issuer(self, issuer_id: str) -> TrustedIssuer | None:
        return next((i for i in self.issuers if i.issuer_id == issuer_id), None)

    def to_claims(self) -> dict[str, Any]:
        claims: dict[str, Any] = {
            "ver": self.version,
            "iat": _seconds(self.issued_at),
            "exp": _seconds(self.expires_at),
            "issuers": [issuer.to_json() for issuer in self.issuers],
        }
        if self.next_anchors:
            claims["next_anchors"] = [public_jwk(key) for key in self.next_anchors]
        return claims

    @classmethod
    def from_claims(cls, claims: dict[str, Any]) -> TrustList:
        _require_members(claims, {"ver", "iat", "exp", "issuers"}, {"next_anchors"}, "trust list")
        if type(claims["ver"]) is not int or claims["ver"] < 1:
            raise SignedDocumentError("trust list 'ver' must be a positive integer")
        if not isinstance(claims["issuers"], list) or not isinstance(
            claims.get("next_anchors", []), list
        ):
            raise SignedDocumentError("trust list 'issuers' and 'next_anchors' must be lists")
        issuers = tuple(TrustedIssuer.from_json(issuer) for issuer in claims["issuers"])
        refuse_repeats(issuers)
        return cls(
            version=claims["ver"],
            issued_at=_time(claims["iat"]),
            expires_at=_time(claims["exp"]),
            issuers=issuers,
            next_anchors=tuple(public_key_from_jwk(j) for j in claims.get("next_anchors", [])),
        )


def refuse_repeats(issuers: Iterable[TrustedIssuer]) -> None:
    """Refuse a trust list that names an issuer id, a status URI prefix or a key twice.

    A verifier takes the first trusted key whose signature verifies: with one key listed twice
    (``active`` beside ``compromised``, or under two issuers) the verdict would depend on the
    order of the entries, and a compromised key could pass as active. With an issuer id or a
    status URI prefix twice, which issuer a card or a status list belongs to would depend on
    the order too. A signed list that says two things at once is refused, not interpreted.
    """
    ids: set[str] = set()
    prefixes: set[str] = set()
    thumbprints: set[str] = set()
    for issuer in issuers:
        if issuer.issuer_id in ids:
            raise SignedDocumentError(f"trust list names issuer {issuer.issuer_id!r} twice")
        if issuer.status_uri_prefix in prefixes:
            raise SignedDocumentError(
                f"trust list names the status URI prefix {issuer.status_uri_prefix!r} twice"
            )
        ids.add(issuer.issuer_id)
        prefixes.add(issuer.status_uri_prefix)
        for key in issuer.keys:
            if key.thumbprint in thumbprints:
                raise SignedDocumentError(f"trust list lists key {key.kid!r} twice")
            thumbprints.add(key.thumbprint)


def sign_trust_list(trust_list: TrustList, anchor: Signer) -> str:
    """Return the trust list as a JWT signed by the trust-anchor ``anchor``."""
    refuse_repeats(trust_list.issuers)
    return encode_jwt(trust_list.to_claims(), anchor, typ=TRUST_LIST_TYP)


def read_trust_list(
    token: str,
    *,
    anchors: Iterable[PublicKey],
    at: datetime,
    current: TrustList | None = None,
    allow_expired: bool = False,
) -> TrustList:
    """Like :func:`verify_trust_list`, without telling which anchor signed."""
    trust_list, _ = verify_trust_list(
        token, anchors=anchors, at=at, current=current, allow_expired=allow_expired
    )
    return trust_list


def verify_trust_list(
    token: str,
    *,
    anchors: Iterable[PublicKey],
    at: datetime,
    current: TrustList | None = None,
    allow_expired: bool = False,
) -> tuple[TrustList, PublicKey]:
    """Verify ``token`` against the pinned ``anchors``; return the list and the anchor that
    signed it.

    ``current`` is the list already held: the new one must have a version at least as high
    (the same version is accepted only when it is the same document). When ``current``
    announces ``next_anchors``, those may sign the new list too. ``allow_expired`` lets a
    verifier load an expired list so that it can answer TRUST_LIST_EXPIRED card by card.
    """
    trusted = list(anchors) + (list(current.next_anchors) if current else [])
    if not trusted:
        raise SignedDocumentError("no trust anchor is pinned")
    keys = [VerificationKey(kid_of(key), key) for key in trusted]
    claims, signer = decode_jwt(token, typ=TRUST_LIST_TYP, keys=keys)
    trust_list = TrustList.from_claims(claims)
    if trust_list.is_expired(at) and not allow_expired:
        raise TrustListExpiredError(
            f"trust list version {trust_list.version} expired at "
            f"{trust_list.expires_at:%Y-%m-%d %H:%M} UTC"
        )
    if current is not None:
        if trust_list.version < current.version:
            raise RollbackError(
                f"trust list version {trust_list.version} is older than the held version "
                f"{current.version}"
            )
        if trust_list.version == current.version and strictjson.dumps(
            trust_list.to_claims()
        ) != strictjson.dumps(current.to_claims()):
            raise RollbackError(f"a different trust list claims the held version {current.version}")
    return trust_list, signer.public_key


def _require_members(value: Any, required: set[str], optional: set[str], what: str) -> None:
    if not isinstance(value, dict):
        raise SignedDocumentError(f"{what} must be an object")
    missing = sorted(required - set(value))
    extra = sorted(set(value) - required - optional)
    if missing:
        raise SignedDocumentError(f"{what} lacks {missing[0]!r}")
    if extra:
        raise SignedDocumentError(f"{what} has the unknown member {extra[0]!r}")


def _string(value: Any, name: str) -> str:
    if type(value) is not str or not value or len(value) > 256:
        raise SignedDocumentError(f"{name!r} must be a non-empty string")
    return value


def _time(value: Any) -> datetime:
    if type(value) is not int or not 0 <= value < 2**33:
        raise SignedDocumentError("times must be integer seconds since 1970")
    return datetime.fromtimestamp(value, UTC)


def _optional_time(value: Any) -> datetime | None:
    return None if value is None else _time(value)


def _seconds(value: datetime) -> int:
    return int(value.timestamp())
