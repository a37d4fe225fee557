"""Regenerate ``cards.json``, the card test vectors (run: ``python -m tests.vectors.generate``).

The keys are fixed test keys, published here on purpose. Anchor and issuer sign with EdDSA,
which is deterministic, so the same inputs give the same QR text byte for byte; one ES256
vector shows the default algorithm (ECDSA signatures are randomised, so only its verdict and
its header and payload bytes are reproducible). Regenerating must not change an existing
vector unless the format changed on purpose.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from keys.cards import encode_card
from keys.signer import KeySigner
from keys.status_list import CardStatus, StatusList, sign_status_list
from keys.trust_list import KeyState, TrustedIssuer, TrustedKey, TrustList, sign_trust_list
from schemas import qrtext
from schemas.card import BirthDate, Card, Entitlement, StatusRef
from verifier.bundle import build_bundle_document

HERE = Path(__file__).parent
AT = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
ISSUED = datetime(2026, 11, 1, tzinfo=UTC)
PREFIX = "https://fmcard.example/status/"

ANCHOR_SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
ISSUER_SEED = bytes.fromhex("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb")
OTHER_SEED = bytes.fromhex("c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7")
ES256_SCALAR = 0xC9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721


def _portrait() -> bytes:
    return (HERE / "portrait-96x120.avif").read_bytes()


def _card(**overrides: Any) -> Card:
    fields: dict[str, Any] = {
        "issuer": "CN-ZJ-YWPSB",
        "code": "7KQ4MX9TRN",
        "serial": "VEC0000001",
        "issued_at": ISSUED,
        "valid_from": ISSUED,
        "expires_at": ISSUED + timedelta(days=365 * 5),
        "family_name": "OKONKWO",
        "given_names": "CHIDI EMEKA",
        "nationality": "NGA",
        "birth_date": BirthDate(1979, 7, 2),
        "entitlements": (Entitlement("hc"), Entitlement("bk")),
        "status": StatusRef("1", 10),
    }
    fields.update(overrides)
    return Card(**fields)


def build() -> dict[str, Any]:
    anchor = KeySigner(ed25519.Ed25519PrivateKey.from_private_bytes(ANCHOR_SEED))
    issuing = KeySigner(ed25519.Ed25519PrivateKey.from_private_bytes(ISSUER_SEED))
    other = KeySigner(ed25519.Ed25519PrivateKey.from_private_bytes(OTHER_SEED))
    es256 = KeySigner(ec.derive_private_key(ES256_SCALAR, ec.SECP256R1()))
    window = ISSUED - timedelta(days=30)
    issuer = TrustedIssuer(
        issuer_id="CN-ZJ-YWPSB",
        name_en="Yiwu Public Security Bureau",
        name_zh="义乌市公安局",
        status_uri_prefix=PREFIX,
        keys=(
            TrustedKey(issuing.public_key, KeyState.ACTIVE, window),
            TrustedKey(es256.public_key, KeyState.ACTIVE, window),
        ),
    )
    trust_list = TrustList(7, AT - timedelta(days=1), AT + timedelta(days=30), (issuer,))
    statuses = StatusList(1024, 2)
    statuses[20] = CardStatus.REVOKED
    statuses[21] = CardStatus.SUSPENDED
    statuses[22] = CardStatus.SUPERSEDED
    status_token = sign_status_list(
        statuses, uri=PREFIX + "1", signer=issuing, issued_at=AT - timedelta(hours=2),
        expires_at=AT + timedelta(days=7), ttl=3600,
    )  # fmt: skip
    bundle = build_bundle_document(
        anchors=[anchor.public_key],
        trust_list=sign_trust_list(trust_list, anchor),
        status_lists=[status_token],
    )
    tampered = qrtext.unpack(encode_card(_card(), issuing))
    tampered_payload = bytearray(tampered.payload)
    tampered_payload[-1] ^= 0x01
    none_header = b'{"alg":"none","kid":"%s","zip":"D1"}' % issuing.kid.encode()
    cases: list[dict[str, Any]] = []

    def case(
        name: str, qr: str, service: str, reason: str, at: datetime = AT, **extra: Any
    ) -> None:
        cases.append({"name": name, "qr": qr, "service": service, "at": at.isoformat(),
                      "reason": reason, **extra})  # fmt: skip

    def signed(card: Card, signer: KeySigner = issuing, portrait: bytes | None = None) -> str:
        return encode_card(card, signer, portrait=portrait)

    minimal = _card()
    case("latin-name-healthcare", signed(minimal), "hc", "VALID",
         claims=minimal.to_claims())  # fmt: skip
    russian = _card(
        serial="VEC0000002", family_name="IVANOVA", given_names="ANNA SERGEEVNA",
        native_name="Иванова Анна Сергеевна", chinese_name="伊万诺娃·安娜", nationality="RUS",
        birth_date=BirthDate(1990, 11, 0), status=StatusRef("1", 11),
        entitlements=(Entitlement("hc"), Entitlement("ed", ISSUED, AT - timedelta(hours=1))),
    )  # fmt: skip
    case("russian-chinese-education-window", signed(russian), "ed", "VALID",
         at=AT - timedelta(minutes=90), claims=russian.to_claims())  # fmt: skip
    case("education-window-over", signed(russian), "ed", "NOT_ENTITLED")
    arabic = _card(
        serial="VEC0000003", family_name="AL-HASHIMI", given_names="MOHAMMED ABDULLAH",
        native_name="محمد عبدالله الهاشمي", chinese_name="穆罕默德", nationality="SAU",
        birth_date=BirthDate(1985, 3, 14), status=StatusRef("1", 12),
    )  # fmt: skip
    case("arabic-chinese-with-portrait", signed(arabic, portrait=_portrait()), "hc", "VALID",
         claims=arabic.to_claims(), portrait="portrait-96x120.avif")  # fmt: skip
    case("not-entitled-at-school", signed(minimal), "ed", "NOT_ENTITLED")
    case("revoked", signed(_card(serial="VEC0000020", status=StatusRef("1", 20))), "hc",
         "REVOKED")  # fmt: skip
    case("suspended", signed(_card(serial="VEC0000021", status=StatusRef("1", 21))), "hc",
         "SUSPENDED")  # fmt: skip
    case("superseded", signed(_card(serial="VEC0000022", status=StatusRef("1", 22))), "hc",
         "SUPERSEDED")  # fmt: skip
    expired = _card(serial="VEC0000004", expires_at=AT - timedelta(days=1))
    case("expired", signed(expired), "hc", "EXPIRED")
    case("not-yet-valid", signed(_card(valid_from=AT + timedelta(days=1))), "hc", "NOT_YET_VALID")
    case("status-index-outside-list", signed(_card(status=StatusRef("1", 5000))), "hc",
         "STATUS_UNKNOWN")  # fmt: skip
    case("status-list-too-old-for-policy", signed(minimal), "hc", "STATUS_UNKNOWN",
         at=AT + timedelta(days=7, hours=1))  # fmt: skip
    case(
        "tampered-payload",
        qrtext.pack(qrtext.QRParts(tampered.header, bytes(tampered_payload), tampered.signature)),
        "hc",
        "BAD_SIGNATURE",
    )
    case("signed-by-untrusted-key", signed(minimal, other), "hc", "UNKNOWN_KEY")
    case("alg-none", qrtext.pack(qrtext.QRParts(none_header, tampered.payload, b"\x00")), "hc",
         "UNSUPPORTED_ALGORITHM")  # fmt: skip
    case("es256-default-algorithm", signed(minimal, es256), "hc", "VALID",
         claims=minimal.to_claims())  # fmt: skip
    case("wrong-prefix", "HC1:" + encode_card(minimal, issuing)[4:], "hc", "MALFORMED")
    return {
        "description": "fmcard card test vectors; see docs/FORMAT.md. Test keys only.",
        "keys": {
            "anchor_ed25519_seed": ANCHOR_SEED.hex(),
            "issuer_ed25519_seed": ISSUER_SEED.hex(),
            "untrusted_ed25519_seed": OTHER_SEED.hex(),
            "issuer_p256_scalar": f"{ES256_SCALAR:064x}",
        },
        "bundle": bundle,
        "cases": cases,
    }


if __name__ == "__main__":
    path = HERE / "cards.json"
    path.write_text(json.dumps(build(), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {path}")
