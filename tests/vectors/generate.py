"""Regenerate ``cards.json``, the card test vectors (run: ``python -m tests.vectors.generate``).

The keys are fixed test keys, published here on purpose. Anchor and issuer sign with EdDSA,
which is deterministic, so the same inputs give the same QR text byte for byte; one ES256
vector shows the default algorithm, signed with deterministic ECDSA (RFC 6979) so that it
regenerates byte for byte too. Regenerating must not change an existing vector unless the
format changed on purpose.

It also writes ``dictionary-D1.bin``, the exact bytes of the ``D1`` preset dictionary, whose
length and SHA-256 ``docs/FORMAT.md`` states (a test holds the three together).

Besides ``cases`` (one QR text, one verdict each, against the main ``bundle``), the file holds
``bundle_updates``: new bundle documents for a counter that holds the main ``bundle``, and
whether it accepts the update or refuses it (keeping the held bundle).
"""

from __future__ import annotations

import base64
import hashlib
import json
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from keys.cards import encode_card
from keys.jwk import PublicKey, kid_of, public_jwk
from keys.jws import sign_parts
from keys.phone import PhoneCard, present, sign_phone_card
from keys.signer import KeySigner, Signer
from keys.status_list import CardStatus, StatusList, sign_status_list
from keys.trust_list import KeyState, TrustedIssuer, TrustedKey, TrustList, sign_trust_list
from schemas import base45, qrtext, strictjson
from schemas.card import BirthDate, Card, Entitlement, StatusRef
from schemas.compression import DICTIONARY_1, deflate
from schemas.disclosure import Disclosure, pack_disclosures
from schemas.presentation import PROOF_LENGTH, Proof, card_digest, proof_input, slot_of
from verifier.bundle import build_bundle_document
from verifier.policy import Policy, sign_policies

HERE = Path(__file__).parent
AT = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
ISSUED = datetime(2026, 11, 1, tzinfo=UTC)
PREFIX = "https://fmcard.example/status/"

ANCHOR_SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
ISSUER_SEED = bytes.fromhex("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb")
OTHER_SEED = bytes.fromhex("c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7")
ES256_SCALAR = 0xC9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721
COMPROMISED_SEED = bytes.fromhex("f5e5767cf153319517630f226876b86c8160cc583bc013744c6bf255f5cc0ee5")
RETIRED_SEED = bytes.fromhex("833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42")
COMPROMISED_SINCE = AT - timedelta(hours=1)  # after the status lists (AT - 2 h)
RETIRED_UNTIL = ISSUED
STATUS_ISSUED = AT - timedelta(hours=2)
DICTIONARY_FILE = "dictionary-D1.bin"
DIGEST = base64.urlsafe_b64encode(hashlib.sha256(b"a disclosure").digest()[:16]).decode()[:22]
HOLDER_JWK = {
    "crv": "P-256",
    "kty": "EC",
    "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
    "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
}


DEVICE_SCALAR = 0x3F1D6C2B9A8E7D6C5B4A39281706F5E4D3C2B1A09F8E7D6C5B4A392817065F4E
OTHER_DEVICE_SCALAR = 0x5A4B3C2D1E0F9A8B7C6D5E4F3A2B1C0D9E8F7A6B5C4D3E2F1A0B9C8D7E6F5A4B


class _DeviceSigner:
    """An ES256 key of the vectors (a phone's device key, the issuer's P-256 key) signing
    with deterministic ECDSA (RFC 6979), so that the vectors regenerate byte for byte. A
    phone or an issuer signs with random nonces; the verifier cannot tell and does not care."""

    def __init__(self, scalar: int, kid: str = "device") -> None:
        self._key = ec.derive_private_key(scalar, ec.SECP256R1())
        self.kid = kid
        self.algorithm = "ES256"

    @property
    def public_key(self) -> PublicKey:
        return self._key.public_key()

    def sign(self, signing_input: bytes) -> bytes:
        der = self._key.sign(signing_input, ec.ECDSA(hashes.SHA256(), deterministic_signing=True))
        r, s = decode_dss_signature(der)
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def _salts(label: str) -> Any:
    """Deterministic 16-byte salts for the vectors (an issuer draws them at random)."""
    counter = iter(range(1000))

    def salt(size: int) -> bytes:
        return hashlib.sha256(f"{label}-{next(counter)}".encode()).digest()[:size]

    return salt


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


class _Keys:
    """The fixed test keys."""

    def __init__(self) -> None:
        def eddsa(seed: bytes) -> KeySigner:
            return KeySigner(ed25519.Ed25519PrivateKey.from_private_bytes(seed))

        self.anchor = eddsa(ANCHOR_SEED)
        self.issuing = eddsa(ISSUER_SEED)
        self.other = eddsa(OTHER_SEED)
        self.compromised = eddsa(COMPROMISED_SEED)
        self.retired = eddsa(RETIRED_SEED)
        es256_key = ec.derive_private_key(ES256_SCALAR, ec.SECP256R1())
        self.es256 = _DeviceSigner(ES256_SCALAR, kid_of(es256_key))


def _trust_list(keys: _Keys, version: int = 7) -> str:
    window = ISSUED - timedelta(days=30)
    issuer = TrustedIssuer(
        issuer_id="CN-ZJ-YWPSB",
        name_en="Yiwu Public Security Bureau",
        name_zh="义乌市公安局",
        status_uri_prefix=PREFIX,
        keys=(
            TrustedKey(keys.issuing.public_key, KeyState.ACTIVE, window),
            TrustedKey(keys.es256.public_key, KeyState.ACTIVE, window),
            TrustedKey(
                keys.compromised.public_key, KeyState.COMPROMISED, window,
                compromised_since=COMPROMISED_SINCE,
            ),
            TrustedKey(
                keys.retired.public_key, KeyState.RETIRED, window - timedelta(days=365),
                valid_until=RETIRED_UNTIL,
            ),
        ),
    )  # fmt: skip
    trust_list = TrustList(version, AT - timedelta(days=1), AT + timedelta(days=30), (issuer,))
    return sign_trust_list(trust_list, keys.anchor)


def _status_list_1(keys: _Keys, *, issued_at: datetime = STATUS_ISSUED, revoke: int = 20) -> str:
    statuses = StatusList(1024, 2)
    statuses[revoke] = CardStatus.REVOKED
    statuses[21] = CardStatus.SUSPENDED
    statuses[22] = CardStatus.SUPERSEDED
    return sign_status_list(
        statuses, uri=PREFIX + "1", signer=keys.issuing, issued_at=issued_at,
        expires_at=AT + timedelta(days=7), ttl=3600,
    )  # fmt: skip


def _status_list_2(keys: _Keys) -> str:
    """A list of 4-bit statuses: readers accept 1, 2, 4 and 8 bits, and a value above 3 means
    nothing to a version-1 verifier."""
    statuses = StatusList(64, 4)
    statuses[5] = 7
    return sign_status_list(
        statuses, uri=PREFIX + "2", signer=keys.issuing, issued_at=STATUS_ISSUED,
        expires_at=AT + timedelta(days=7), ttl=3600,
    )  # fmt: skip


def _signed_policies(keys: _Keys, version: int = 2, hours: int = 24) -> str:
    policy = Policy("ho", max_status_age=timedelta(hours=hours), require_portrait=True)
    return sign_policies(
        [policy], issuer_id="CN-ZJ-YWPSB", version=version, issued_at=AT - timedelta(days=1),
        signer=keys.issuing,
    )  # fmt: skip


UNSIGNED_POLICIES = [
    # Tightens: transport counters must see a portrait.
    {"service": "tr", "require_portrait": True},
    # Tightens: business licensing accepts only live phone cards.
    {"service": "bz", "accept": ["live"]},
    # Would loosen the banks' shipped 24 hours: ignored.
    {"service": "bk", "max_status_age_seconds": 2678400},
]


def _bundle(
    keys: _Keys,
    *,
    trust_list: str | None = None,
    status_lists: list[str] | None = None,
    signed_policies: list[str] | None = None,
) -> dict[str, Any]:
    document = build_bundle_document(
        anchors=[keys.anchor.public_key],
        trust_list=trust_list or _trust_list(keys),
        status_lists=status_lists
        if status_lists is not None
        else [_status_list_1(keys), _status_list_2(keys)],
        signed_policies=signed_policies
        if signed_policies is not None
        else [_signed_policies(keys)],
    )
    document["policies"] = UNSIGNED_POLICIES
    return document


def _pack(header: bytes, data: bytes, signature: bytes, *attachments: bytes) -> str:
    return qrtext.pack(qrtext.QRParts(header, data, signature, attachments))


def _signed_raw(signer: KeySigner, inflated: bytes, header_zip: str = "D1") -> str:
    """A QR text whose payload is ``inflated`` exactly, signed by ``signer``: for cards the
    issuer would never write (the verdict then shows what a verifier does with them). The
    payload is compressed with ``D1`` whatever ``header_zip`` claims."""
    data = deflate(inflated, "D1")
    header, signature = sign_parts(data, signer, zip=header_zip)
    return _pack(header, data, signature)


def _signed_claims(signer: KeySigner, **changes: Any) -> str:
    claims = _card().to_claims()
    for name, value in changes.items():
        if value is None:
            del claims[name]
        else:
            claims[name] = value
    return _signed_raw(signer, strictjson.dumps(claims))


def _seconds(value: datetime) -> int:
    return int(value.timestamp())


def build() -> dict[str, Any]:
    keys = _Keys()
    issuing, other, es256 = keys.issuing, keys.other, keys.es256
    bundle = _bundle(keys)
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

    def signed(card: Card, signer: Signer = issuing, portrait: bytes | None = None) -> str:
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
    case("status-list-expired", signed(minimal), "hc", "STATUS_UNKNOWN",
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
    _more_cases(case, keys)
    _rule_cases(case, keys)
    _phone_cases(case, keys)
    _disclosure_rule_cases(case, keys)
    return {
        "description": "fmcard card test vectors; see docs/FORMAT.md. Test keys only.",
        "keys": {
            "anchor_ed25519_seed": ANCHOR_SEED.hex(),
            "issuer_ed25519_seed": ISSUER_SEED.hex(),
            "untrusted_ed25519_seed": OTHER_SEED.hex(),
            "issuer_p256_scalar": f"{ES256_SCALAR:064x}",
            "compromised_ed25519_seed": COMPROMISED_SEED.hex(),
            "retired_ed25519_seed": RETIRED_SEED.hex(),
            "device_p256_scalar": f"{DEVICE_SCALAR:064x}",
            "other_device_p256_scalar": f"{OTHER_DEVICE_SCALAR:064x}",
        },
        "leeway_seconds": 60,
        "proof_skew_seconds": 15,
        "dictionary": DICTIONARY_FILE,
        "bundle": bundle,
        "cases": cases,
        "bundle_updates": _bundle_updates(keys),
    }


class _Case(Protocol):
    """The ``case`` recorder of :func:`build`."""

    def __call__(
        self, name: str, qr: str, service: str, reason: str, at: datetime = ..., **extra: Any
    ) -> None: ...


def _more_cases(case: _Case, keys: _Keys) -> None:
    """Vectors for every rule of docs/FORMAT.md that a verdict shows."""
    issuing = keys.issuing
    minimal = _card()
    qr = encode_card(minimal, issuing)
    parts = qrtext.unpack(qr)
    # Section 1: size and white space.
    case("too-large-4297-characters", "FM1:" + "0" * 4293, "hc", "TOO_LARGE")
    case("too-large-4296-plus-5-spaces", "FM1:" + "0" * 4292 + " " * 5, "hc", "TOO_LARGE")
    case("longest-text-after-stripping-is-not-too-large", "FM1:" + "0" * 4292 + "\r\n",
         "hc", "MALFORMED")  # fmt: skip
    case("scanner-line-ending-stripped", " \t" + qr + "\r\n", "hc", "VALID")
    case("no-break-space-not-stripped", qr + "\u00a0", "hc", "MALFORMED")
    case("base45-non-canonical-group", qr[:-3] + ":::", "hc", "MALFORMED")
    # Section 2-3: container and header.
    case("attachment-without-sd", _pack(parts.header, parts.payload, parts.signature, b"x"),
         "hc", "MALFORMED")  # fmt: skip
    case("compact-header-unknown-zip-code",
         _pack(b"\x01\x02\x03" + issuing.kid.encode(), parts.payload, parts.signature),
         "hc", "MALFORMED")  # fmt: skip
    case("json-header-unknown-zip", _signed_raw(issuing, strictjson.dumps(minimal.to_claims()),
         "D9"), "hc", "MALFORMED")  # fmt: skip
    typ_header, typ_signature = sign_parts(parts.payload, issuing, typ="JWT", zip="D1")
    case("json-header-with-typ", _pack(typ_header, parts.payload, typ_signature), "hc",
         "MALFORMED")  # fmt: skip
    # Section 4: compression and portrait.
    deflated = _card(serial="VEC0000005")
    case("zip-def-no-dictionary", encode_card(deflated, issuing, zip_name="DEF"), "hc", "VALID",
         claims=deflated.to_claims())  # fmt: skip
    claims_json = strictjson.dumps(minimal.to_claims())
    case("empty-portrait-after-line-feed", _signed_raw(issuing, claims_json + b"\n"), "hc",
         "MALFORMED")  # fmt: skip
    case("portrait-not-avif-webp-jpeg", _signed_raw(issuing, claims_json + b"\nGIF89a" +
         bytes(16)), "hc", "MALFORMED")  # fmt: skip
    case("payload-not-deflate-signed", _signed_raw_data(issuing, b"\xff" * 8), "hc",
         "MALFORMED")  # fmt: skip
    case("payload-not-deflate-unsigned", _pack(parts.header, b"\xff" * 8, parts.signature),
         "hc", "BAD_SIGNATURE")  # fmt: skip
    # Section 5: claims.
    case("unknown-claim", _signed_claims(issuing, pp="E12345678"), "hc", "MALFORMED")
    case("sub-not-canonical", _signed_claims(issuing, sub="7kq4m-x9trn"), "hc", "MALFORMED")
    case("name-not-nfc", _signed_claims(issuing, fn="MU\u0308LLER"), "hc", "MALFORMED")
    case("name-with-bidi-override", _signed_claims(issuing, nn="\u202eOKONKWO"), "hc",
         "MALFORMED")  # fmt: skip
    case("version-bool", _signed_claims(issuing, v=True), "hc", "MALFORMED")
    case("birth-date-month-and-day-unknown", _signed_claims(issuing, bd=19850000), "hc", "VALID")
    case("birth-date-day-without-month", _signed_claims(issuing, bd=19850015), "hc", "MALFORMED")
    case("birth-date-no-such-day", _signed_claims(issuing, bd=19850230), "hc", "MALFORMED")
    case("birth-date-after-issue-date", _signed_claims(issuing, bd=20261102), "hc", "MALFORMED")
    case("birth-year-before-1900", _signed_claims(issuing, bd=18991231), "hc", "MALFORMED")
    nbf = _seconds(ISSUED)
    case("validity-exactly-7320-days", _signed_claims(issuing, exp=nbf + 7320 * 86400), "hc",
         "VALID")  # fmt: skip
    case("validity-7320-days-and-1-second", _signed_claims(issuing, exp=nbf + 7320 * 86400 + 1),
         "hc", "MALFORMED")  # fmt: skip
    case("time-at-2100-refused", _signed_claims(issuing, exp=4102444800), "hc", "MALFORMED")
    until = _seconds(AT)
    case("entitlement-from-after-until",
         _signed_claims(issuing, en={"hc": [until, until - 1]}), "hc", "MALFORMED")  # fmt: skip
    case("entitlement-from-equals-until",
         _signed_claims(issuing, en={"hc": [until, until]}), "hc", "MALFORMED")  # fmt: skip
    case("entitlement-both-bounds-null",
         _signed_claims(issuing, en={"hc": [None, None]}), "hc", "MALFORMED")  # fmt: skip
    window = _card(
        serial="VEC0000006", entitlements=(Entitlement("hc", AT, AT + timedelta(hours=1)),)
    )
    case("entitlement-from-is-inclusive", encode_card(window, issuing), "hc", "VALID")
    case("entitlement-until-is-exclusive", encode_card(window, issuing), "hc", "NOT_ENTITLED",
         at=AT + timedelta(hours=1))  # fmt: skip
    case("entitlement-no-leeway", encode_card(window, issuing), "hc", "NOT_ENTITLED",
         at=AT - timedelta(seconds=1))  # fmt: skip
    # Section 6: version 1 binds nothing and carries no attachments.
    case("version-1-with-cnf-refused", _signed_claims(issuing, cnf={"jwk": HOLDER_JWK}), "hc",
         "MALFORMED")  # fmt: skip
    case("version-1-with-sd-refused", _signed_claims(issuing, _sd=[DIGEST]), "hc", "MALFORMED")
    plain = qrtext.unpack(encode_card(minimal, issuing))
    case("version-1-with-attachment-refused",
         _pack(plain.header, plain.payload, plain.signature, b"a disclosure"),
         "hc", "MALFORMED")  # fmt: skip
    case("version-1-with-empty-attachment-refused",
         _pack(plain.header, plain.payload, plain.signature, b""), "hc", "MALFORMED")  # fmt: skip
    case("card-of-another-issuer", _signed_claims(issuing, iss="CN-ZJ-OTHER"), "hc",
         "UNKNOWN_KEY")  # fmt: skip
    # Dates and leeway (60 seconds).
    case("nbf-within-leeway", encode_card(_card(valid_from=AT + timedelta(seconds=60)),
         issuing), "hc", "VALID")  # fmt: skip
    case("nbf-past-leeway", encode_card(_card(valid_from=AT + timedelta(seconds=61)),
         issuing), "hc", "NOT_YET_VALID")  # fmt: skip
    case("exp-within-leeway", encode_card(_card(expires_at=AT - timedelta(seconds=59)),
         issuing), "hc", "VALID")  # fmt: skip
    case("exp-at-leeway", encode_card(_card(expires_at=AT - timedelta(seconds=60)),
         issuing), "hc", "EXPIRED")  # fmt: skip
    case("iat-in-the-future", encode_card(_card(issued_at=AT + timedelta(seconds=61)),
         issuing), "hc", "NOT_YET_VALID")  # fmt: skip
    case("iat-within-leeway", encode_card(_card(issued_at=AT + timedelta(seconds=60)),
         issuing), "hc", "VALID")  # fmt: skip
    # Section 9: key states and windows.
    case("key-compromised", encode_card(minimal, keys.compromised), "hc", "KEY_COMPROMISED")
    case("key-compromised-before-compromised-since", encode_card(minimal, keys.compromised),
         "hc", "VALID", at=COMPROMISED_SINCE - timedelta(seconds=1))  # fmt: skip
    case("key-compromised-payload-never-read",
         _signed_raw_data(keys.compromised, b"\xff" * 8), "hc", "KEY_COMPROMISED")  # fmt: skip
    old = RETIRED_UNTIL - timedelta(days=1)
    case("retired-key-old-card", encode_card(_card(issued_at=old, valid_from=old),
         keys.retired), "hc", "VALID")  # fmt: skip
    late = RETIRED_UNTIL + timedelta(seconds=59)
    case("retired-key-card-within-leeway", encode_card(_card(issued_at=late), keys.retired),
         "hc", "VALID")  # fmt: skip
    late = RETIRED_UNTIL + timedelta(seconds=60)
    case("retired-key-card-after-valid-until", encode_card(_card(issued_at=late),
         keys.retired), "hc", "UNKNOWN_KEY")  # fmt: skip
    case("trust-list-expired", qr, "hc", "TRUST_LIST_EXPIRED", at=AT + timedelta(days=30))
    # Section 8: status lists.
    case("status-value-above-3", encode_card(_card(status=StatusRef("2", 5)), issuing), "hc",
         "STATUS_UNKNOWN")  # fmt: skip
    case("status-list-4-bits-valid", encode_card(_card(status=StatusRef("2", 6)), issuing),
         "hc", "VALID")  # fmt: skip
    # The list was signed at STATUS_ISSUED: a counter whose clock is behind by more than the
    # leeway sees a list from the future, whose age says nothing.
    case("status-list-dated-within-leeway", qr, "hc", "VALID",
         at=STATUS_ISSUED - timedelta(seconds=60))  # fmt: skip
    case("status-list-dated-in-the-future", qr, "hc", "STATUS_UNKNOWN",
         at=STATUS_ISSUED - timedelta(seconds=61))  # fmt: skip
    case("status-list-of-unknown-list-id", encode_card(_card(status=StatusRef("9", 6)), issuing),
         "hc", "STATUS_UNKNOWN")  # fmt: skip
    # Section 10: policies. Banks' shipped policy: 24 hours (the bundle's unsigned attempt to
    # allow 31 days is ignored); the status list was issued 2 hours before AT.
    case("status-list-exactly-as-old-as-bank-policy", qr, "bk", "VALID",
         at=AT + timedelta(hours=22))  # fmt: skip
    case("status-list-too-old-for-policy", qr, "bk", "STATUS_UNKNOWN",
         at=AT + timedelta(hours=22, seconds=1))  # fmt: skip
    housing = _card(serial="VEC0000009", entitlements=(Entitlement("ho"), Entitlement("tr")))
    case("signed-policy-portrait-missing", encode_card(housing, issuing), "ho",
         "PORTRAIT_MISSING")  # fmt: skip
    with_portrait = encode_card(housing, issuing, portrait=_portrait())
    case("signed-policy-portrait-present", with_portrait, "ho", "VALID")
    case("signed-policy-status-too-old", with_portrait, "ho", "STATUS_UNKNOWN",
         at=AT + timedelta(hours=23))  # fmt: skip
    case("unsigned-restriction-portrait-missing", encode_card(housing, issuing), "tr",
         "PORTRAIT_MISSING")  # fmt: skip


def _raw_text(container: bytes, prefix: str = "FM1:") -> str:
    """A QR text around ``container`` exactly as given (no compact header, no checks)."""
    return prefix + base45.encode(container)


def _rule_cases(case: _Case, keys: _Keys) -> None:
    """One vector for each refusal rule of sections 1-6 that the cases above leave out, with a
    passing neighbour where the bound itself is the question."""
    issuing = keys.issuing
    minimal = _card()
    qr = encode_card(minimal, issuing)
    parts = qrtext.unpack(qr)
    header = b"\x01\x02\x02" + issuing.kid.encode()
    part = qrtext.write_part
    body = qr[4:]
    # Sections 1-2: Base45 and the container.
    case("base45-character-outside-the-45", "FM1:" + body[:-3] + "ab=", "hc", "MALFORMED")
    case("base45-length-3n-plus-1", "FM1:" + body + "0" * ((1 - len(body)) % 3), "hc",
         "MALFORMED")  # fmt: skip
    case("varint-not-minimal", _raw_text(bytes([0x80 | len(header), 0x00]) + header +
         part(parts.payload) + part(parts.signature)), "hc", "MALFORMED")  # fmt: skip
    case("more-than-5-parts", _raw_text(part(header) + part(parts.payload) +
         part(parts.signature) + part(b"a") + part(b"b") + part(b"c"), "FM2:"), "hc",
         "MALFORMED")  # fmt: skip
    case("empty-signature-part", _raw_text(part(header) + part(parts.payload) + part(b"")),
         "hc", "MALFORMED")  # fmt: skip
    case("signature-part-over-132-bytes", _raw_text(part(header) + part(parts.payload) +
         part(parts.signature + bytes(69))), "hc", "MALFORMED")  # fmt: skip
    case("attachment-over-2048-bytes", _raw_text(part(header) + part(parts.payload) +
         part(parts.signature) + part(bytes(2049))), "hc", "MALFORMED")  # fmt: skip
    case("compact-header-kid-not-base64url", _raw_text(part(b"\x01\x02\x02FtIu.VbG") +
         part(parts.payload) + part(parts.signature)), "hc", "MALFORMED")  # fmt: skip
    # Section 3: the JSON header, in its order (members, then alg, then zip and kid).
    json_header = b'{"alg":"%s","kid":"%s","zip":"D1"}' % (b"EdDSA", issuing.kid.encode())
    duplicate = json_header.replace(b'{"alg":"EdDSA"', b'{"alg":"EdDSA","alg":"EdDSA"')
    case("json-header-duplicate-member", _raw_text(part(duplicate) + part(parts.payload) +
         part(parts.signature)), "hc", "MALFORMED")  # fmt: skip
    non_string = json_header.replace(b'"EdDSA"', b"2")
    case("json-header-non-string-alg", _raw_text(part(non_string) + part(parts.payload) +
         part(parts.signature)), "hc", "MALFORMED")  # fmt: skip
    hmac_unknown_zip = b'{"alg":"HS256","kid":"%s","zip":"D9"}' % issuing.kid.encode()
    case("alg-checked-before-zip", _raw_text(part(hmac_unknown_zip) + part(parts.payload) +
         part(parts.signature)), "hc", "UNSUPPORTED_ALGORITHM")  # fmt: skip
    long_kid = json_header.replace(issuing.kid.encode(), b"A" * 65)
    case("json-header-kid-over-64-characters", _raw_text(part(long_kid) +
         part(parts.payload) + part(parts.signature)), "hc", "MALFORMED")  # fmt: skip
    # Section 4: inflation and the portrait.
    claims_json = strictjson.dumps(minimal.to_claims())
    padded = claims_json[:-1] + b" " * (4096 - len(claims_json)) + b"}"
    jpeg = b"\xff\xd8\xff"
    case("inflates-to-exactly-8192-bytes", _signed_raw(issuing, padded + b"\n" + jpeg +
         bytes(8192 - 4097 - 3)), "hc", "VALID")  # fmt: skip
    case("inflates-to-8193-bytes", _signed_raw(issuing, padded + b"\n" + jpeg +
         bytes(8193 - 4097 - 3)), "hc", "MALFORMED")  # fmt: skip
    case("claims-over-4096-bytes", _signed_raw(issuing, claims_json[:-1] +
         b" " * (4097 - len(claims_json)) + b"}"), "hc", "MALFORMED")  # fmt: skip
    case("deflate-stream-with-a-byte-after-its-end",
         _signed_raw_data(issuing, deflate(claims_json, "D1") + b"\x00"), "hc",
         "MALFORMED")  # fmt: skip
    case("portrait-jpeg-magic", _signed_raw(issuing, claims_json + b"\n" + jpeg), "hc", "VALID")
    case("portrait-webp-magic", _signed_raw(issuing, claims_json + b"\nRIFF\x00\x00\x00\x00WEBP"),
         "hc", "VALID")  # fmt: skip
    case("portrait-over-4096-bytes", _signed_raw(issuing, claims_json + b"\n" + jpeg +
         bytes(4094)), "hc", "MALFORMED")  # fmt: skip
    # Section 5: JSON and claims.
    case("claims-with-insignificant-white-space-and-escapes", _signed_raw(issuing,
         b" " + claims_json.replace(b'"OKONKWO"', b'"OKONKW\\u004f"').replace(b",", b", ")),
         "hc", "VALID")  # fmt: skip
    case("integer-with-20-digits", _signed_raw(issuing, claims_json.replace(
         b'"1",10]', b'"1",00000000000000000010]')), "hc", "MALFORMED")  # fmt: skip
    case("integer-with-fraction", _signed_raw(issuing, claims_json.replace(b'"v":1',
         b'"v":1.0')), "hc", "MALFORMED")  # fmt: skip
    case("exp-not-after-iat", _signed_claims(issuing, exp=_seconds(ISSUED)), "hc", "MALFORMED")
    case("jti-over-32-characters", _signed_claims(issuing, jti="J" * 33), "hc", "MALFORMED")
    case("status-index-2-to-the-31", _signed_claims(issuing, st=["1", 2**31]), "hc",
         "MALFORMED")  # fmt: skip
    case("nationality-not-a-code", _signed_claims(issuing, na="ZZZ"), "hc", "MALFORMED")
    case("nationality-icao-stateless", _signed_claims(issuing, na="XXA"), "hc", "VALID")
    case("birth-date-on-29-february-of-a-leap-year", _signed_claims(issuing, bd=20000229),
         "hc", "VALID")  # fmt: skip
    case("birth-date-on-the-issue-day", _signed_claims(issuing, bd=20261101), "hc", "VALID")
    case("time-at-2000-accepted", _signed_claims(issuing, en={"hc": [946684800, None]}), "hc",
         "VALID")  # fmt: skip
    case("time-before-2000-refused", _signed_claims(issuing, en={"hc": [946684799, None]}),
         "hc", "MALFORMED")  # fmt: skip
    case("entitlement-window-of-one-bound", _signed_claims(issuing, en={"hc": [946684800]}),
         "hc", "MALFORMED")  # fmt: skip
    case("more-than-16-entitlements", _signed_claims(issuing, en={f"s{i:02d}": [] for i in
         range(17)}), "hc", "MALFORMED")  # fmt: skip
    case("service-code-of-one-letter", _signed_claims(issuing, en={"h": [], "hc": []}), "hc",
         "MALFORMED")  # fmt: skip
    case("name-of-64-code-points", _signed_claims(issuing, nn="\U00020000" * 64), "hc",
         "VALID")  # fmt: skip
    case("name-of-65-code-points", _signed_claims(issuing, nn="\U00020000" * 65), "hc",
         "MALFORMED")  # fmt: skip
    case("name-with-double-space", _signed_claims(issuing, fn="DE  LA CRUZ"), "hc",
         "MALFORMED")  # fmt: skip
    case("name-with-no-break-space", _signed_claims(issuing, fn="DE\u00a0LA CRUZ"), "hc",
         "MALFORMED")  # fmt: skip
    case("name-with-zero-width-space", _signed_claims(issuing, nn="OKON\u200bKWO"), "hc",
         "MALFORMED")  # fmt: skip
    persian = "\u0645\u0647\u062f\u06cc \u0631\u062d\u06cc\u0645\u06cc"
    persian += "\u200c\u0646\u0698\u0627\u062f"  # with a zero-width non-joiner
    case("persian-name-with-zero-width-non-joiner", _signed_claims(issuing, nn=persian), "hc",
         "VALID")  # fmt: skip
    case("turkish-dotted-capital-i", _signed_claims(issuing, gn="\u0130SMA\u0130L",
         nn="\u0130smail Y\u0131ld\u0131z"),
         "hc", "VALID")  # fmt: skip
    case("latin-name-with-cyrillic-letter", _signed_claims(issuing, fn="IV\u0410NOVA"), "hc",
         "MALFORMED")  # fmt: skip
    case("empty-optional-name", _signed_claims(issuing, gn=""), "hc", "MALFORMED")
    # Order: the issuer binding (step 9) before attachments (10) before dates (11).
    bound = qrtext.unpack(_signed_claims(issuing, iss="CN-ZJ-OTHER"))
    case("attachment-on-a-card-of-another-issuer", _pack(bound.header, bound.payload,
         bound.signature, b"x"), "hc", "UNKNOWN_KEY")  # fmt: skip
    future = qrtext.unpack(encode_card(_card(valid_from=AT + timedelta(days=1)), issuing))
    case("attachment-on-a-card-not-yet-valid", _pack(future.header, future.payload,
         future.signature, b"x"), "hc", "MALFORMED")  # fmt: skip


def _phone_card(keys: _Keys, device: _DeviceSigner, **overrides: Any) -> PhoneCard:
    fields: dict[str, Any] = {
        "serial": "VEC0000040",
        "status": StatusRef("1", 40),
        "entitlements": (Entitlement("hc"), Entitlement("tr"), Entitlement("bk"),
                         Entitlement("bz")),
    }  # fmt: skip
    fields.update(overrides)
    return sign_phone_card(
        _card(**fields), keys.issuing, device_jwk=public_jwk(device.public_key),
        portrait=_portrait(), salt=_salts(fields["serial"]),
    )  # fmt: skip


def _repack(text: str, *attachments: bytes, version: int = 2) -> str:
    parts = qrtext.unpack(text)
    return qrtext.pack(
        qrtext.QRParts(parts.header, parts.payload, parts.signature, attachments, version)
    )


def _phone_cases(case: Any, keys: _Keys) -> None:
    """Section 11: phone cards and live presentations. Slots are 10 s; AT starts a slot."""
    device, other_device = _DeviceSigner(DEVICE_SCALAR), _DeviceSigner(OTHER_DEVICE_SCALAR)
    assert slot_of(AT) * 10 == _seconds(AT)
    phone = _phone_card(keys, device)

    def live(service: str, at: datetime = AT, **options: Any) -> str:
        return present(phone, device, service=service, at=at, **options)

    def parts(text: str) -> qrtext.QRParts:
        return qrtext.unpack(text)

    case("live-bus-profile", live("tr"), "tr", "VALID", level="live",
         disclosed=["en.tr", "pt"], closed=5)  # fmt: skip
    hospital = parts(live("hc"))
    case("live-hospital-profile", live("hc"), "hc", "VALID", level="live",
         disclosed=["bd", "en.hc", "na", "pt"], closed=3,
         proof_input=proof_input(card_digest(hospital.header, hospital.payload,
                                             hospital.signature), hospital.attachments[0],
                                 slot_of(AT), "hc").hex())  # fmt: skip
    case("live-bank-everything", live("bk"), "bk", "VALID", level="live",
         disclosed=["bd", "en.bk", "en.bz", "en.hc", "en.tr", "na", "pt"], closed=0)  # fmt: skip
    case("live-where-only-live-is-accepted", live("bz"), "bz", "VALID", level="live")
    case("printed-where-only-live-is-accepted", encode_card(_card(), keys.issuing), "bz",
         "LIVE_REQUIRED", level="printed")  # fmt: skip
    case("printed-card-level", encode_card(_card(), keys.issuing), "hc", "VALID",
         level="printed")  # fmt: skip
    # The window: hospital 30 s, bus 60 s, skew allowance 15 s: t0 - 15 <= at < t0 + W + 15.
    case("proof-window-last-second", live("hc"), "hc", "VALID", level="live",
         at=AT + timedelta(seconds=44))  # fmt: skip
    case("proof-window-over", live("hc"), "hc", "PROOF_STALE", level="copy",
         at=AT + timedelta(seconds=45))  # fmt: skip
    case("proof-window-fraction-before-end", live("hc"), "hc", "VALID", level="live",
         at=AT + timedelta(seconds=44, microseconds=999999))  # fmt: skip
    case("bus-window-last-second", live("tr"), "tr", "VALID", level="live",
         at=AT + timedelta(seconds=74))  # fmt: skip
    case("bus-window-over", live("tr"), "tr", "PROOF_STALE", level="copy",
         at=AT + timedelta(seconds=75))  # fmt: skip
    case("bank-window-over", live("bk"), "bk", "PROOF_STALE", level="copy",
         at=AT + timedelta(seconds=35))  # fmt: skip
    case("phone-clock-ahead-within-skew", live("hc"), "hc", "VALID", level="live",
         at=AT - timedelta(seconds=15))  # fmt: skip
    case("phone-clock-ahead-past-skew", live("hc"), "hc", "PROOF_STALE", level="copy",
         at=AT - timedelta(seconds=16))  # fmt: skip
    case("phone-clock-behind-by-a-minute", live("hc", slot=slot_of(AT) - 6), "hc",
         "PROOF_STALE", level="copy")  # fmt: skip
    case("screenshot-a-day-later", live("hc"), "hc", "PROOF_STALE", level="copy",
         at=AT + timedelta(days=1))  # fmt: skip
    case("replay-inside-the-window-without-memory", live("hc"), "hc", "VALID", level="live",
         at=AT + timedelta(seconds=20))  # fmt: skip
    case("replay-inside-the-window-with-memory", live("hc"), "hc", "PROOF_REPLAYED",
         level="copy", scanned_before=True)  # fmt: skip
    case("proof-missing", present(phone, None, service="hc", at=AT), "hc", "PROOF_MISSING",
         level="copy")  # fmt: skip
    case("proof-from-another-device", present(phone, other_device, service="hc", at=AT), "hc",
         "PROOF_INVALID", level="copy")  # fmt: skip
    other_card = _phone_card(keys, device, serial="VEC0000041", status=StatusRef("1", 41))
    mine = parts(live("hc"))
    bare = parts(live("hc", disclose=()))
    case("proof-for-another-card", _repack(present(other_card, None, service="hc", at=AT,
         disclose=()), b"", bare.attachments[1]), "hc", "PROOF_INVALID",
         level="copy")  # fmt: skip
    case("proof-for-another-service", live("tr"), "hc", "PROOF_INVALID", level="copy")
    case("proof-too-short", _repack(live("hc"), mine.attachments[0],
         mine.attachments[1][:-1]), "hc", "PROOF_INVALID", level="copy")  # fmt: skip
    bus = parts(live("tr"))
    added = pack_disclosures([*(d for d in phone.profile("tr")),
                              *(d for d in phone.disclosures if d.label == "bd")])  # fmt: skip
    case("disclosure-added-after-the-proof", _repack(live("tr"), added, bus.attachments[1]),
         "tr", "PROOF_INVALID", level="copy")  # fmt: skip
    case("proof-with-empty-part", _repack(live("hc"), mine.attachments[0], b""), "hc",
         "PROOF_INVALID", level="copy")  # fmt: skip
    assert len(mine.attachments[1]) == PROOF_LENGTH
    # Disclosures (11.3).
    nationality = next(d for d in phone.disclosures if d.name == "na")
    forged = Disclosure(nationality.salt, "na", b'"CHN"')
    case("disclosure-does-not-match-its-digest", _tampered(phone, device, [forged]), "hc",
         "DISCLOSURE_INVALID")  # fmt: skip
    case("disclosure-of-another-card", _tampered(phone, device, list(other_card.profile("hc"))),
         "hc", "DISCLOSURE_INVALID")  # fmt: skip
    case("disclosure-repeated", _tampered(phone, device, [nationality, nationality]), "hc",
         "DISCLOSURE_INVALID")  # fmt: skip
    case("disclosures-not-deflate",
         _repack(live("hc"), b"\xff\xff", mine.attachments[1]), "hc",
         "DISCLOSURE_INVALID")  # fmt: skip
    case("entitlement-withheld", live("hc", disclose={"pt", "na"}), "hc", "NOT_ENTITLED",
         level="live", disclosed=["na", "pt"], closed=5)  # fmt: skip
    case("portrait-withheld-where-required", live("tr", disclose={"en.tr"}), "tr",
         "PORTRAIT_MISSING", level="live", disclosed=["en.tr"], closed=6)  # fmt: skip
    case("nothing-disclosed", live("hc", disclose=()), "hc", "NOT_ENTITLED", level="live",
         disclosed=[], closed=7)  # fmt: skip
    # A bound card shown as a printed one, and other version mix-ups (11.1).
    case("bound-card-rewrapped-as-FM1", _repack(live("hc"), version=1), "hc", "MALFORMED")
    case("printed-card-wrapped-as-FM2", _repack(encode_card(_card(), keys.issuing), b""),
         "hc", "MALFORMED")  # fmt: skip
    case("FM2-without-disclosures-part", _repack(live("hc")), "hc", "MALFORMED")
    revoked = _phone_card(keys, device, serial="VEC0000042", status=StatusRef("1", 20))
    case("revoked-phone-card-screenshot", present(revoked, device, service="hc", at=AT),
         "hc", "REVOKED", level="copy", at=AT + timedelta(hours=1))  # fmt: skip
    not_on_curve = {**public_jwk(device.public_key), "y": "A" * 43}
    claims = {
        **_card(
            version=2,
            nationality=None,
            birth_date=None,
            entitlements=(),
            holder_key={"jwk": not_on_curve},
            disclosure_digests=(DIGEST,),
        ).to_claims()
    }
    case("device-key-not-on-the-curve", _repack(_signed_raw(keys.issuing,
         strictjson.dumps(claims)), b"", version=2), "hc", "MALFORMED")  # fmt: skip
    with_portrait = _signed_raw(keys.issuing, strictjson.dumps({**claims,
         "cnf": {"jwk": public_jwk(device.public_key)}}) + b"\n" + _portrait())  # fmt: skip
    case("phone-card-with-portrait-in-payload", _repack(with_portrait, b"", version=2), "hc",
         "MALFORMED")  # fmt: skip


def _bound_claims(device: _DeviceSigner, digests: list[str], **changes: Any) -> dict[str, Any]:
    """The claims of a phone card with exactly ``digests`` in ``_sd`` (and ``changes``)."""
    claims = _card(
        version=2, serial="VEC0000043", status=StatusRef("1", 43), nationality=None,
        birth_date=None, entitlements=(), holder_key={"jwk": public_jwk(device.public_key)},
        disclosure_digests=tuple(digests),
    ).to_claims()  # fmt: skip
    claims.update(changes)
    return claims


def _raw_presentation(
    keys: _Keys, device: _DeviceSigner, disclosures: list[bytes], *, claims: dict[str, Any],
    service: str = "hc", slot: int | None = None, packed: bytes | None = None,
) -> str:  # fmt: skip
    """A live presentation of a phone card signed with ``claims`` whose disclosures are the
    raw ``disclosures`` (what the issuer's own types would refuse to make)."""
    data = deflate(strictjson.dumps(claims), "D1")
    header, signature = sign_parts(data, keys.issuing, zip="D1")
    if packed is None:
        packed = deflate(b"".join(qrtext.write_part(d) for d in disclosures), "D1")
    number = slot_of(AT) if slot is None else slot
    proof = device.sign(proof_input(card_digest(header, data, signature), packed, number, service))
    attachments = (packed, Proof(number, proof).to_bytes())
    return qrtext.pack(qrtext.QRParts(header, data, signature, attachments, 2))


def _digest_of(raw: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(raw).digest()[:16]).rstrip(b"=").decode()


def _disclosure_rule_cases(case: _Case, keys: _Keys) -> None:
    """Sections 11.2-11.4: one vector per disclosure and proof rule left out above."""
    device = _DeviceSigner(DEVICE_SCALAR)
    salt = _salts("rules")

    def raw(name: bytes, value: bytes) -> bytes:
        salted: bytes = salt(16)
        return salted + qrtext.write_part(name) + value

    hc, na = raw(b"en", b'{"hc":[]}'), raw(b"na", b'"NGA"')

    def shown(*disclosures: bytes, **options: Any) -> str:
        digests = list(dict.fromkeys(_digest_of(d) for d in disclosures))
        claims = _bound_claims(device, digests, **options.pop("changes", {}))
        return _raw_presentation(keys, device, list(disclosures), claims=claims, **options)

    case("disclosure-live-control", shown(hc, na), "hc", "VALID", level="live",
         disclosed=["en.hc", "na"], closed=0)  # fmt: skip
    case("disclosure-with-unknown-name", shown(hc, raw(b"zz", b'"x"')), "hc",
         "DISCLOSURE_INVALID")  # fmt: skip
    case("disclosure-value-breaks-its-rule", shown(hc, raw(b"na", b'"nga"')), "hc",
         "DISCLOSURE_INVALID")  # fmt: skip
    case("disclosure-entitlement-with-two-services", shown(raw(b"en", b'{"hc":[],"bk":[]}')),
         "hc", "DISCLOSURE_INVALID")  # fmt: skip
    case("disclosure-service-repeated", shown(hc, raw(b"en", b'{"hc":[]}')), "hc",
         "DISCLOSURE_INVALID")  # fmt: skip
    case("disclosure-portrait-empty", shown(hc, raw(b"pt", b"")), "hc", "DISCLOSURE_INVALID")
    case("disclosure-value-with-white-space", shown(raw(b"en", b'{"hc": [] }'), na), "hc",
         "VALID", level="live")  # fmt: skip
    case("disclosures-inflate-to-no-part", shown(hc, packed=deflate(b"", "D1")), "hc",
         "DISCLOSURE_INVALID")  # fmt: skip
    case("disclosures-with-bytes-after-the-last-part",
         shown(hc, packed=deflate(qrtext.write_part(hc) + b"\x05", "D1")), "hc",
         "DISCLOSURE_INVALID")  # fmt: skip
    case("bound-card-without-sd", shown(hc, changes={"_sd": []}), "hc", "MALFORMED")
    case("bound-card-with-repeated-digest", shown(hc, changes={"_sd": [_digest_of(hc)] * 2}),
         "hc", "MALFORMED")  # fmt: skip
    case("bound-card-with-nationality-in-clear", shown(hc, changes={"na": "NGA"}), "hc",
         "MALFORMED")  # fmt: skip
    case("bound-card-cnf-with-extra-member", shown(hc, changes={"cnf": {"jwk": {
         **public_jwk(device.public_key), "use": "sig"}}}), "hc", "MALFORMED")  # fmt: skip
    # Step 13 in its order: a proof that does not verify is PROOF_INVALID even when stale; a
    # copy is refused after the card's dates and status (an expired copy is EXPIRED).
    other_device = _DeviceSigner(OTHER_DEVICE_SCALAR)
    stale = _raw_presentation(keys, other_device, [hc], slot=slot_of(AT) - 100,
                              claims=_bound_claims(device, [_digest_of(hc)]))  # fmt: skip
    case("proof-invalid-and-stale", stale, "hc", "PROOF_INVALID", level="copy")
    expired = _bound_claims(device, [_digest_of(hc)], exp=_seconds(AT) - 3600)
    case("expired-copy", _raw_presentation(keys, device, [hc], claims=expired,
         slot=slot_of(AT) - 100), "hc", "EXPIRED", level="copy")  # fmt: skip


def _tampered(phone: PhoneCard, device: _DeviceSigner, disclosures: list[Disclosure]) -> str:
    """A presentation whose disclosures were swapped before the proof was made: the device
    signs them, but the card does not."""
    part = pack_disclosures(disclosures)
    slot = slot_of(AT)
    digest = card_digest(phone.header, phone.payload, phone.signature)
    proof = Proof(slot, device.sign(proof_input(digest, part, slot, "hc"))).to_bytes()
    return qrtext.pack(
        qrtext.QRParts(phone.header, phone.payload, phone.signature, (part, proof), 2)
    )


def _signed_raw_data(signer: KeySigner, data: bytes) -> str:
    header, signature = sign_parts(data, signer, zip="D1")
    return _pack(header, data, signature)


def _bundle_updates(keys: _Keys) -> list[dict[str, Any]]:
    """Updates of the main bundle (the held one): accepted, or refused keeping the held."""
    status_2 = _status_list_2(keys)
    updates: list[dict[str, Any]] = []

    def update(name: str, document: dict[str, Any], outcome: str) -> None:
        updates.append({"name": name, "at": AT.isoformat(), "update": document,
                        "outcome": outcome})  # fmt: skip

    update("identical-bundle", _bundle(keys), "accepted")
    newer = _status_list_1(keys, issued_at=STATUS_ISSUED + timedelta(hours=1), revoke=30)
    update("newer-status-list", _bundle(keys, status_lists=[newer, status_2]), "accepted")
    older = _status_list_1(keys, issued_at=STATUS_ISSUED - timedelta(hours=1), revoke=30)
    update("older-status-list", _bundle(keys, status_lists=[older, status_2]), "refused")
    replay = _status_list_1(keys, revoke=30)
    update("status-list-same-iat-different-content",
           _bundle(keys, status_lists=[replay, status_2]), "refused")  # fmt: skip
    update("trust-list-lower-version", _bundle(keys, trust_list=_trust_list(keys, 6)), "refused")
    update("trust-list-higher-version", _bundle(keys, trust_list=_trust_list(keys, 8)),
           "accepted")  # fmt: skip
    forged_by_other = sign_status_list(
        StatusList(1024, 2), uri=PREFIX + "1", signer=keys.other, issued_at=STATUS_ISSUED,
        expires_at=AT + timedelta(days=7), ttl=3600,
    )  # fmt: skip
    update("one-status-list-by-an-untrusted-key",
           _bundle(keys, status_lists=[forged_by_other, status_2]), "refused")  # fmt: skip
    update("status-list-signed-by-compromised-key", _bundle(keys, status_lists=[
        sign_status_list(StatusList(1024, 2), uri=PREFIX + "1", signer=keys.compromised,
                         issued_at=STATUS_ISSUED + timedelta(hours=1),
                         expires_at=AT + timedelta(days=7), ttl=3600), status_2]),
           "refused")  # fmt: skip
    update("signed-policy-lower-version",
           _bundle(keys, signed_policies=[_signed_policies(keys, version=1, hours=48)]),
           "refused")  # fmt: skip
    update("signed-policy-same-version-different-content",
           _bundle(keys, signed_policies=[_signed_policies(keys, version=2, hours=48)]),
           "refused")  # fmt: skip
    update("signed-policy-dropped", _bundle(keys, signed_policies=[]), "refused")
    update("signed-policy-higher-version",
           _bundle(keys, signed_policies=[_signed_policies(keys, version=3, hours=48)]),
           "accepted")  # fmt: skip
    _more_updates(update, keys)
    return updates


def _claims_of(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    claims: dict[str, Any] = strictjson.loads(base64.urlsafe_b64decode(payload + "=" * 3))
    return claims


def _resigned(signer: KeySigner, typ: str, claims: dict[str, Any], **header: str) -> str:
    """``claims`` signed by ``signer`` as a ``typ`` token, with ``header`` members added."""
    payload = strictjson.dumps(claims)
    head, signature = sign_parts(payload, signer, typ=typ, **header)
    return b".".join(base64.urlsafe_b64encode(p).rstrip(b"=")
                     for p in (head, payload, signature)).decode()  # fmt: skip


def _more_updates(update: Any, keys: _Keys) -> None:
    """One refused update for each bundle rule of sections 8-10 left out above."""
    status_1, status_2 = _status_list_1(keys), _status_list_2(keys)
    base = _claims_of(_trust_list(keys, 8))

    def trust(change: Any = None, signer: KeySigner | None = None, **header: str) -> str:
        claims = json.loads(json.dumps(base))
        if change is not None:
            change(claims)
        return _resigned(signer or keys.anchor, "fmcard-trust+jwt", claims, **header)

    def issuer_keys(claims: dict[str, Any]) -> list[dict[str, Any]]:
        keys_: list[dict[str, Any]] = claims["issuers"][0]["keys"]
        return keys_

    update("trust-list-resigned-control", _bundle(keys, trust_list=trust()), "accepted")
    update("trust-list-same-version-different-content", _bundle(keys, trust_list=trust(
        lambda c: c.update(ver=7, exp=c["exp"] + 1))), "refused")  # fmt: skip
    update("trust-list-expired-on-update", _bundle(keys, trust_list=trust(
        lambda c: c.update(exp=_seconds(AT)))), "refused")  # fmt: skip
    update("trust-list-signed-by-an-issuer-key",
           _bundle(keys, trust_list=trust(signer=keys.issuing)), "refused")  # fmt: skip
    update("trust-list-header-with-another-member",
           _bundle(keys, trust_list=trust(cty="JWT")), "refused")  # fmt: skip
    update("trust-list-compromised-since-on-an-active-key", _bundle(keys, trust_list=trust(
        lambda c: issuer_keys(c)[0].update(compromised_since=_seconds(AT)))),
        "refused")  # fmt: skip
    update("trust-list-key-listed-twice", _bundle(keys, trust_list=trust(
        lambda c: issuer_keys(c).append({**issuer_keys(c)[0], "state": "compromised"}))),
        "refused")  # fmt: skip
    update("trust-list-key-kid-not-its-thumbprint", _bundle(keys, trust_list=trust(
        lambda c: issuer_keys(c)[0].update(kid="AAAAAAAA"))), "refused")  # fmt: skip
    update("status-list-dropped", _bundle(keys, status_lists=[status_2]), "refused")
    update("two-status-lists-for-one-uri",
           _bundle(keys, status_lists=[status_1, status_1, status_2]), "refused")  # fmt: skip
    empty = _claims_of(status_1)
    empty["iat"] += 3600
    empty["status_list"]["lst"] = base64.urlsafe_b64encode(zlib.compress(b"")).rstrip(
        b"=").decode()  # fmt: skip
    update("status-list-without-statuses", _bundle(keys, status_lists=[
        _resigned(keys.issuing, "statuslist+jwt", empty), status_2]), "refused")  # fmt: skip
    bits_3 = _claims_of(status_1)
    bits_3["iat"] += 3600
    bits_3["status_list"]["bits"] = 3
    update("status-list-of-3-bits", _bundle(keys, status_lists=[
        _resigned(keys.issuing, "statuslist+jwt", bits_3), status_2]), "refused")  # fmt: skip
    policy = _claims_of(_signed_policies(keys, version=3))
    update("signed-policy-by-the-anchor", _bundle(keys, signed_policies=[
        _resigned(keys.anchor, "fmcard-policy+jwt", policy)]), "refused")  # fmt: skip
    update("signed-policy-by-a-compromised-key", _bundle(keys, signed_policies=[
        _resigned(keys.compromised, "fmcard-policy+jwt", policy)]), "refused")  # fmt: skip
    malformed = _bundle(keys)
    malformed["policies"] = [*UNSIGNED_POLICIES, {"service": "hc", "max_age": 60}]
    update("unsigned-restriction-with-unknown-member", malformed, "refused")
    extra = _bundle(keys)
    extra["comment"] = "members the format does not name are ignored"
    update("unknown-bundle-member-ignored", extra, "accepted")


if __name__ == "__main__":
    path = HERE / "cards.json"
    path.write_text(json.dumps(build(), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    (HERE / DICTIONARY_FILE).write_bytes(DICTIONARY_1)
    print(f"wrote {path} and {HERE / DICTIONARY_FILE}")
