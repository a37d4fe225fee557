"""Shared builders for tests: a fixed clock, keys, trust lists, status lists and cards.

Everything is deterministic except key generation; tests that need fixed bytes use the
vectors under ``tests/vectors``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from keys.jwk import PublicKey, generate
from keys.signer import KeySigner
from keys.status_list import StatusList, sign_status_list
from keys.trust_list import KeyState, TrustedIssuer, TrustedKey, TrustList, sign_trust_list
from schemas import code as foreigner_code
from schemas.card import BirthDate, Card, Entitlement, StatusRef
from verifier.bundle import Bundle, build_bundle_document
from verifier.policy import Policy

NOW = datetime(2026, 11, 22, 9, 30, tzinfo=UTC)
ISSUER_ID = "CN-ZJ-YWPSB"
STATUS_PREFIX = "https://fmcard.example/status/"
LIST_ID = "1"
STATUS_URI = STATUS_PREFIX + LIST_ID


@dataclass(frozen=True)
class Impostor:
    """A real key whose headers carry a chosen ``kid`` (a Signer, not a mock)."""

    signer: KeySigner
    claimed_kid: str

    @property
    def kid(self) -> str:
        return self.claimed_kid

    @property
    def algorithm(self) -> str:
        return self.signer.algorithm

    @property
    def public_key(self) -> PublicKey:
        return self.signer.public_key

    def sign(self, signing_input: bytes) -> bytes:
        return self.signer.sign(signing_input)


def make_card(**overrides: Any) -> Card:
    """A valid card issued at NOW, with healthcare and banking; override any field."""
    fields: dict[str, Any] = {
        "issuer": ISSUER_ID,
        "code": foreigner_code.generate(),
        "serial": "A7K3M9QX",
        "issued_at": NOW - timedelta(days=1),
        "valid_from": NOW - timedelta(days=1),
        "expires_at": NOW + timedelta(days=365 * 3),
        "family_name": "AL-HASHIMI",
        "given_names": "MOHAMMED ABDULLAH",
        "native_name": "محمد عبدالله الهاشمي",
        "chinese_name": "穆罕默德",
        "nationality": "SAU",
        "birth_date": BirthDate(1985, 3, 14),
        "entitlements": (Entitlement("hc"), Entitlement("bk")),
        "status": StatusRef(LIST_ID, 7),
    }
    fields.update(overrides)
    return Card(**fields)


@dataclass
class Authority:
    """An issuer with a trust anchor, an issuing key and one status list, as a test world."""

    anchor: KeySigner = field(default_factory=lambda: KeySigner(generate()))
    issuing: KeySigner = field(default_factory=lambda: KeySigner(generate()))
    statuses: StatusList = field(default_factory=lambda: StatusList(4096, 2))
    version: int = 1

    def trusted_key(self, signer: KeySigner | None = None, **overrides: Any) -> TrustedKey:
        fields: dict[str, Any] = {
            "public_key": (signer or self.issuing).public_key,
            "state": KeyState.ACTIVE,
            "valid_from": NOW - timedelta(days=365),
        }
        fields.update(overrides)
        return TrustedKey(**fields)

    def trust_list(self, keys: tuple[TrustedKey, ...] | None = None, **overrides: Any) -> TrustList:
        issuer = TrustedIssuer(
            issuer_id=ISSUER_ID,
            name_en="Yiwu Public Security Bureau",
            name_zh="义乌市公安局",
            status_uri_prefix=STATUS_PREFIX,
            keys=keys if keys is not None else (self.trusted_key(),),
        )
        fields: dict[str, Any] = {
            "version": self.version,
            "issued_at": NOW - timedelta(hours=1),
            "expires_at": NOW + timedelta(days=30),
            "issuers": (issuer,),
        }
        fields.update(overrides)
        return TrustList(**fields)

    def trust_list_token(self, trust_list: TrustList | None = None) -> str:
        return sign_trust_list(trust_list or self.trust_list(), self.anchor)

    def status_token(
        self,
        *,
        issued_at: datetime = NOW - timedelta(hours=3),
        signer: KeySigner | None = None,
        uri: str = STATUS_URI,
    ) -> str:
        return sign_status_list(
            self.statuses,
            uri=uri,
            signer=signer or self.issuing,
            issued_at=issued_at,
            expires_at=issued_at + timedelta(days=30),
            ttl=3600,
        )

    def bundle_document(
        self,
        *,
        trust_list: TrustList | None = None,
        status_tokens: list[str] | None = None,
        policies: list[Policy] | None = None,
    ) -> dict[str, Any]:
        return build_bundle_document(
            anchors=[self.anchor.public_key],
            trust_list=self.trust_list_token(trust_list),
            status_lists=status_tokens if status_tokens is not None else [self.status_token()],
            policies=policies,
        )

    def bundle(self, **kwargs: Any) -> Bundle:
        return Bundle.from_json(self.bundle_document(**kwargs), at=NOW)
