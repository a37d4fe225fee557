"""Attacks on the offline verifier: whatever is in a QR, the answer is a result, never a crash.

Every case below is something an attacker can print as a QR code. The verifier must answer
with a :class:`VerificationResult` carrying the right :class:`Reason`, quickly, and without
card data unless the issuer's signature really verified. Cases that need the real issuer's
signature (to get past the signature check into inflation, JSON and claims) are signed with the
test world's issuing key, which stands for an issuer bug or a stolen signing oracle.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import tracemalloc
import zlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from hypothesis import given, settings
from hypothesis import strategies as st
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from keys.cards import encode_card
from keys.jwk import EDDSA, ES256, generate, public_jwk
from keys.jws import signing_input
from keys.signer import KeySigner
from keys.status_list import CardStatus, StatusList, sign_status_list
from keys.trust_list import TrustedIssuer
from schemas import base45, strictjson
from schemas import payload as card_payload
from schemas.card import Card, StatusRef
from schemas.claims import KNOWN
from schemas.compression import deflate
from schemas.qrtext import MAX_QR_TEXT, PREFIX, QRParts, pack, unpack
from tests.factories import NOW, Authority, make_card
from verifier.bundle import Bundle, build_bundle_document
from verifier.reason import Reason
from verifier.result import VerificationResult
from verifier.verifier import Verifier

SERVICE = "hc"
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
OTHER_ISSUER = "CN-SH-PSB"
OTHER_PREFIX = "https://other.example/status/"
PORTRAIT = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 2  # JPEG magic, then anything
OTHER_PORTRAIT = b"\xff\xd8\xff\xe1" + bytes(range(255, -1, -1)) * 2
FAST = 1.0  # seconds; a verification takes well under a millisecond, this only catches hangs

REVOKED_INDEX, SUSPENDED_INDEX, SUPERSEDED_INDEX = 8, 9, 10

# Reasons reached only after the issuer's signature verified.
AFTER_SIGNATURE = frozenset(
    {
        Reason.VALID,
        Reason.NOT_YET_VALID,
        Reason.EXPIRED,
        Reason.STATUS_UNKNOWN,
        Reason.REVOKED,
        Reason.SUSPENDED,
        Reason.SUPERSEDED,
        Reason.NOT_ENTITLED,
        Reason.PORTRAIT_MISSING,
    }
)


@dataclass(frozen=True)
class World:
    """Issuer A (ES256 and EdDSA keys), issuer B, an attacker, and verifiers over them."""

    authority: Authority
    eddsa: KeySigner
    other: KeySigner
    attacker: KeySigner
    verifiers: dict[str, Verifier]
    card: Card
    qr: str
    portrait_qr: str

    @property
    def issuing(self) -> KeySigner:
        return self.authority.issuing

    @property
    def parts(self) -> QRParts:
        return unpack(self.qr)

    @property
    def portrait_parts(self) -> QRParts:
        return unpack(self.portrait_qr)


def build_world() -> World:
    authority = Authority()
    for index, status in (
        (REVOKED_INDEX, CardStatus.REVOKED),
        (SUSPENDED_INDEX, CardStatus.SUSPENDED),
        (SUPERSEDED_INDEX, CardStatus.SUPERSEDED),
    ):
        authority.statuses[index] = status
    eddsa = KeySigner(generate(EDDSA))
    other = KeySigner(generate())
    attacker = KeySigner(generate())
    issuer_a = replace(
        authority.trust_list().issuers[0],
        keys=(authority.trusted_key(), authority.trusted_key(eddsa)),
    )
    issuer_b = TrustedIssuer(
        issuer_id=OTHER_ISSUER,
        name_en="Shanghai Public Security Bureau",
        name_zh="上海市公安局",
        status_uri_prefix=OTHER_PREFIX,
        keys=(authority.trusted_key(other),),
    )
    trust_list = authority.trust_list(issuers=(issuer_a, issuer_b))
    other_status = sign_status_list(
        StatusList(64, 2),
        uri=OTHER_PREFIX + "1",
        signer=other,
        issued_at=NOW - timedelta(hours=3),
        expires_at=NOW + timedelta(days=30),
        ttl=3600,
    )

    def bundle(status_issued_at: datetime) -> Bundle:
        document = build_bundle_document(
            anchors=[authority.anchor.public_key],
            trust_list=authority.trust_list_token(trust_list),
            status_lists=[authority.status_token(issued_at=status_issued_at), other_status],
        )
        return Bundle.from_json(document, at=NOW)

    fresh = bundle(NOW - timedelta(hours=3))
    stale = bundle(NOW - timedelta(days=8))
    card = make_card()
    return World(
        authority=authority,
        eddsa=eddsa,
        other=other,
        attacker=attacker,
        verifiers={
            "main": Verifier(fresh),
            "stale": Verifier(stale),
            "es256-only": Verifier(fresh, algorithms=frozenset({ES256})),
            "no-leeway": Verifier(fresh, leeway=timedelta(0)),
        },
        card=card,
        qr=encode_card(card, authority.issuing),
        portrait_qr=encode_card(card, authority.issuing, portrait=PORTRAIT),
    )


@pytest.fixture(scope="module")
def world() -> World:
    return build_world()


def check(
    world: World, qr_text: str, *, verifier: str = "main", at: datetime = NOW
) -> VerificationResult:
    """Verify and return the result, failing the test on an exception or a slow answer."""
    started = time.perf_counter()
    result = world.verifiers[verifier].verify(qr_text, service=SERVICE, at=at)
    elapsed = time.perf_counter() - started
    assert isinstance(result, VerificationResult)
    assert elapsed < FAST, f"verification took {elapsed:.2f} s"
    return result


def assert_no_card_data(result: VerificationResult) -> None:
    assert result.card is None
    assert result.portrait is None
    assert result.issuer_id is None
    assert result.kid is None
    assert result.entitlement is None
    assert result.status_issued_at is None
    assert "card" not in result.to_json()


# --- Crafting helpers -------------------------------------------------------------------------


def text_of(container: bytes) -> str:
    return PREFIX + base45.encode(container)


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def container(*chunks: bytes) -> bytes:
    return b"".join(varint(len(chunk)) + chunk for chunk in chunks)


def repack(
    world: World,
    *,
    header: bytes | None = None,
    payload: bytes | None = None,
    signature: bytes | None = None,
    attachments: tuple[bytes, ...] | None = None,
    portrait: bool = False,
) -> str:
    """The genuine card's QR with some parts replaced (no re-signing)."""
    parts = world.portrait_parts if portrait else world.parts
    return pack(
        QRParts(
            parts.header if header is None else header,
            parts.payload if payload is None else payload,
            parts.signature if signature is None else signature,
            parts.attachments if attachments is None else attachments,
        )
    )


def header_of(signer: KeySigner, **changes: Any) -> dict[str, Any]:
    """A card header for ``signer``; a change to ``None`` drops the member."""
    members: dict[str, Any] = {"alg": signer.algorithm, "kid": signer.kid, "zip": "D1"}
    members.update(changes)
    return {name: value for name, value in members.items() if value is not None}


def signed(
    payload: bytes,
    signer: KeySigner,
    *,
    header: dict[str, Any] | bytes | None = None,
    attachments: tuple[bytes, ...] = (),
) -> str:
    """QR text whose signature by ``signer`` covers exactly ``header`` and ``payload``."""
    if header is None:
        header = header_of(signer)
    header_bytes = header if isinstance(header, bytes) else strictjson.dumps(header)
    signature = signer.sign(signing_input(header_bytes, payload))
    return pack(QRParts(header_bytes, payload, signature, attachments))


def with_header(world: World, header: dict[str, Any] | bytes, signature: bytes) -> str:
    """The genuine payload under another header, with the given signature bytes."""
    header_bytes = header if isinstance(header, bytes) else strictjson.dumps(header)
    return pack(QRParts(header_bytes, world.parts.payload, signature))


def claims_of(world: World, **changes: Any) -> dict[str, Any]:
    claims = world.card.to_claims()
    claims.update(changes)
    return claims


def signed_json(
    world: World, document: bytes, *, zip_name: str = "D1", signer: KeySigner | None = None
) -> str:
    """``document`` compressed and signed by the real issuer key (or ``signer``)."""
    signer = signer or world.issuing
    return signed(deflate(document, zip_name), signer, header=header_of(signer, zip=zip_name))


def signed_claims(world: World, **changes: Any) -> str:
    return signed_json(world, strictjson.dumps(claims_of(world, **changes)))


def signed_without(world: World, claim: str) -> str:
    claims = claims_of(world)
    del claims[claim]
    return signed_json(world, strictjson.dumps(claims))


def signed_raw_payload(world: World, payload: bytes, *, zip_name: str = "D1") -> str:
    return signed(payload, world.issuing, header=header_of(world.issuing, zip=zip_name))


def signed_card(world: World, signer: KeySigner | None = None, **fields: Any) -> str:
    return encode_card(make_card(**fields), signer or world.issuing)


def flip(data: bytes, index: int, bit: int = 0) -> bytes:
    out = bytearray(data)
    out[index] ^= 1 << bit
    return bytes(out)


def rs(signature: bytes) -> tuple[int, int]:
    return int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")


def raw_signature(r: int, s: int) -> bytes:
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def tampered_payload(world: World) -> bytes:
    return deflate(strictjson.dumps(claims_of(world, fn="MALLORY")))


def high_s_forgery(world: World) -> str:
    """A tampered payload under the genuine signature in its other (high-S) form."""
    r, s = rs(world.parts.signature)
    return repack(
        world, payload=tampered_payload(world), signature=raw_signature(r, P256_ORDER - s)
    )


def der_signature(world: World) -> bytes:
    return encode_dss_signature(*rs(world.parts.signature))


def hs256(world: World, secret: bytes) -> str:
    """The algorithm-confusion forgery: HMAC keyed with the issuer's *public* key."""
    header = strictjson.dumps(header_of(world.issuing, alg="HS256"))
    payload = tampered_payload(world)
    mac = hmac.new(secret, signing_input(header, payload), hashlib.sha256).digest()
    return pack(QRParts(header, payload, mac))


def public_pem(world: World) -> bytes:
    return world.issuing.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def public_jwk_bytes(world: World) -> bytes:
    return json.dumps(public_jwk(world.issuing.public_key)).encode()


def foreign_algorithm(world: World, alg: str) -> str:
    """A real signature by a key of ``alg`` over the genuine payload, claiming the real kid."""
    header = strictjson.dumps(header_of(world.issuing, alg=alg))
    message = signing_input(header, world.parts.payload)
    if alg == "RS256":
        signature = RSAAlgorithm(RSAAlgorithm.SHA256).sign(
            message,
            # 1024 bits: a 128-byte signature fits the container, so the header is what is refused
            rsa.generate_private_key(65537, 1024),  # noqa: S505
        )
    elif alg == "ES384":
        signature = ECAlgorithm(ECAlgorithm.SHA384).sign(
            message, ec.generate_private_key(ec.SECP384R1())
        )
    elif alg == "ES512":
        signature = ECAlgorithm(ECAlgorithm.SHA512).sign(
            message, ec.generate_private_key(ec.SECP521R1())
        )
    else:
        signature = world.issuing.sign(message)
    return pack(QRParts(header, world.parts.payload, signature))


def embedded_jwk(world: World, *, kid: str) -> str:
    """Signed with the attacker's key, which the header carries as ``jwk``."""
    header = header_of(world.attacker, kid=kid, jwk=public_jwk(world.attacker.public_key))
    return signed(tampered_payload(world), world.attacker, header=header)


def header_member(world: World, **members: Any) -> str:
    """Signed by the real issuer key with extra or changed header members."""
    return signed(world.parts.payload, world.issuing, header=header_of(world.issuing, **members))


def body(world: World) -> str:
    return world.qr[len(PREFIX) :]


def duplicate_member(world: World, claim: str, value: str) -> bytes:
    document = strictjson.dumps(claims_of(world))
    assert document.endswith(b"}")
    return document[:-1] + b',"' + claim.encode() + b'":' + value.encode() + b"}"


def deep(depth: int) -> bytes:
    return b'{"en":' + b"[" * depth + b"]" * depth + b"}"


def deep_in_claims(world: World, depth: int) -> bytes:
    document = strictjson.dumps(claims_of(world))
    nested = b'{"jwk":{"x":' + b"[" * depth + b"]" * depth + b"}}"
    return document[:-1] + b',"cnf":' + nested + b"}"


def bomb() -> bytes:
    return deflate(b"\0" * 1_000_000, "DEF")


def non_minimal_header_length(world: World) -> str:
    parts = world.parts
    assert len(parts.header) < 0x80
    data = bytes([len(parts.header) | 0x80, 0x00]) + parts.header
    return text_of(data + container(parts.payload, parts.signature))


def three_byte_payload_length(world: World) -> str:
    parts = world.parts
    size = len(parts.payload)
    assert 0x80 <= size < 0x4000
    data = container(parts.header)
    data += bytes([size & 0x7F | 0x80, size >> 7 | 0x80, 0x00]) + parts.payload
    return text_of(data + container(parts.signature))


def card_with_status(world: World, index: int, list_id: str = "1") -> str:
    return signed_card(world, status=StatusRef(list_id, index))


# --- The attack table ---------------------------------------------------------------------


@dataclass(frozen=True)
class Attack:
    """``craft`` builds the QR text; ``genuine`` marks a signature that verifies."""

    craft: Callable[[World], str]
    expected: Reason
    genuine: bool = False
    verifier: str = "main"


def attack(
    case_id: str,
    craft: Callable[[World], str],
    expected: Reason,
    *,
    genuine: bool = False,
    verifier: str = "main",
) -> Any:
    return pytest.param(Attack(craft, expected, genuine, verifier), id=case_id)


MAL, ALG, SIG, KEY = (
    Reason.MALFORMED,
    Reason.UNSUPPORTED_ALGORITHM,
    Reason.BAD_SIGNATURE,
    Reason.UNKNOWN_KEY,
)

ATTACKS = [
    # Algorithm: none, HMAC with the public key, anything outside ES256/EdDSA.
    attack(
        "alg-none-empty-signature",
        lambda w: with_header(w, header_of(w.issuing, alg="none"), b""),
        MAL,  # the container has no room for an empty signature
    ),
    attack(
        "alg-none-one-byte-signature",
        lambda w: with_header(w, header_of(w.issuing, alg="none"), b"\0"),
        ALG,
    ),
    attack(
        "alg-None-capitalised",
        lambda w: with_header(w, header_of(w.issuing, alg="None"), b"\0"),
        ALG,
    ),
    attack("hs256-public-key-pem-as-secret", lambda w: hs256(w, public_pem(w)), ALG),
    attack("hs256-public-jwk-as-secret", lambda w: hs256(w, public_jwk_bytes(w)), ALG),
    attack("hs256-random-secret", lambda w: hs256(w, b"secret-of-the-attacker"), ALG),
    attack("rs256", lambda w: foreign_algorithm(w, "RS256"), ALG),
    attack("es384", lambda w: foreign_algorithm(w, "ES384"), ALG),
    attack("es512", lambda w: foreign_algorithm(w, "ES512"), ALG),
    attack("ps256", lambda w: foreign_algorithm(w, "PS256"), ALG),
    attack("es256-lowercase", lambda w: foreign_algorithm(w, "es256"), ALG),
    attack("eddsa-lowercase", lambda w: foreign_algorithm(w, "eddsa"), ALG),
    attack("es256-trailing-space", lambda w: foreign_algorithm(w, "ES256 "), ALG),
    attack("ed25519-as-alg-name", lambda w: foreign_algorithm(w, "Ed25519"), ALG),
    attack(
        "eddsa-card-on-es256-only-counter",
        lambda w: signed_card(w, w.eddsa),
        ALG,
        genuine=True,
        verifier="es256-only",
    ),
    # Header members that would let the token choose its own key or processing.
    attack("jku", lambda w: header_member(w, jku="https://evil.example/jwks.json"), MAL),
    attack("x5u", lambda w: header_member(w, x5u="https://evil.example/cert.pem"), MAL),
    attack("x5c", lambda w: header_member(w, x5c=["MIIBszCCAVmgAwIBAgIUJ"]), MAL),
    attack("x5t", lambda w: header_member(w, x5t="dGh1bWJwcmludA"), MAL),
    attack("embedded-jwk-attacker-kid", lambda w: embedded_jwk(w, kid=w.attacker.kid), MAL),
    attack("embedded-jwk-issuer-kid", lambda w: embedded_jwk(w, kid=w.issuing.kid), MAL),
    attack("crit-b64", lambda w: header_member(w, crit=["b64"], b64=False), MAL),
    attack("b64-false", lambda w: header_member(w, b64=False), MAL),
    attack("typ-jwt", lambda w: header_member(w, typ="JWT"), MAL),
    attack("cty", lambda w: header_member(w, cty="JWT"), MAL),
    attack("kid-missing", lambda w: header_member(w, kid=None), MAL),
    attack("alg-missing", lambda w: header_member(w, alg=None), MAL),
    attack("zip-missing", lambda w: header_member(w, zip=None), MAL),
    attack("kid-integer", lambda w: header_member(w, kid=12345678), MAL),
    attack("kid-null-json", lambda w: signed_json_header(w, b'"kid":null'), MAL),
    attack("kid-list", lambda w: header_member(w, kid=[w.issuing.kid]), MAL),
    attack("kid-empty", lambda w: header_member(w, kid=""), MAL),
    attack("kid-65-characters", lambda w: header_member(w, kid="A" * 65), MAL),
    attack("kid-200-characters", lambda w: header_member(w, kid="A" * 200), MAL),
    attack("kid-longer-than-header-limit", lambda w: header_member(w, kid="A" * 300), MAL),
    attack("alg-integer", lambda w: header_member(w, alg=256), MAL),
    attack(
        "duplicate-alg-member",
        lambda w: signed(
            w.parts.payload,
            w.issuing,
            header=b'{"alg":"none","alg":"ES256","kid":"'
            + w.issuing.kid.encode()
            + b'","zip":"D1"}',
        ),
        MAL,
    ),
    attack("header-is-array", lambda w: signed(w.parts.payload, w.issuing, header=b"[]"), MAL),
    attack(
        "header-not-json", lambda w: signed(w.parts.payload, w.issuing, header=b"\xff\xfe"), MAL
    ),
    attack(
        "kid-of-another-issuer-key",
        lambda w: signed(
            tampered_payload(w), w.issuing, header=header_of(w.issuing, kid=w.other.kid)
        ),
        SIG,
    ),
    attack(
        "kid-of-eddsa-key-with-es256",
        lambda w: signed(w.parts.payload, w.issuing, header=header_of(w.issuing, kid=w.eddsa.kid)),
        KEY,  # no ES256 key has that kid
    ),
    attack("card-from-untrusted-key", lambda w: signed_card(w, w.attacker), KEY),
    attack(
        "untrusted-key-claiming-issuer-kid",
        lambda w: signed(
            tampered_payload(w), w.attacker, header=header_of(w.attacker, kid=w.issuing.kid)
        ),
        SIG,
    ),
    attack(
        "other-issuer-key-signs-card-of-issuer",
        lambda w: signed_card(w, w.other),
        KEY,
        genuine=True,
    ),
    attack(
        "issuer-key-signs-card-of-other-issuer",
        lambda w: signed_card(w, issuer=OTHER_ISSUER),
        KEY,
        genuine=True,
    ),
    # Tampering with the signed bytes.
    attack("header-kid-bit-flipped", lambda w: repack(w, header=flip_kid(w)), KEY),
    attack("header-last-byte-flipped", lambda w: repack(w, header=flip_last(w.parts.header)), MAL),
    attack("payload-first-bit-flipped", lambda w: repack(w, payload=flip(w.parts.payload, 0)), SIG),
    attack(
        "payload-last-bit-flipped", lambda w: repack(w, payload=flip_last(w.parts.payload)), SIG
    ),
    attack("payload-re-signed-claims", lambda w: repack(w, payload=tampered_payload(w)), SIG),
    attack(
        "signature-first-bit-flipped",
        lambda w: repack(w, signature=flip(w.parts.signature, 0)),
        SIG,
    ),
    attack(
        "signature-last-bit-flipped",
        lambda w: repack(w, signature=flip_last(w.parts.signature)),
        SIG,
    ),
    attack("signature-truncated-63", lambda w: repack(w, signature=w.parts.signature[:63]), SIG),
    attack("signature-truncated-32", lambda w: repack(w, signature=w.parts.signature[:32]), SIG),
    attack("signature-one-byte", lambda w: repack(w, signature=w.parts.signature[:1]), SIG),
    attack("signature-extended-65", lambda w: repack(w, signature=w.parts.signature + b"\0"), SIG),
    attack("signature-doubled-128", lambda w: repack(w, signature=w.parts.signature * 2), SIG),
    attack("signature-133-bytes", lambda w: repack(w, signature=b"\1" * 133), MAL),
    attack("signature-all-zeros", lambda w: repack(w, signature=bytes(64)), SIG),
    attack("signature-all-ones", lambda w: repack(w, signature=b"\xff" * 64), SIG),
    attack("signature-der-encoded", lambda w: repack(w, signature=der_signature(w)), SIG),
    attack("signature-high-s-over-tampered-payload", high_s_forgery, SIG),
    attack(
        "signature-r-zero",
        lambda w: repack(w, signature=raw_signature(0, rs(w.parts.signature)[1])),
        SIG,
    ),
    attack(
        "signature-s-zero",
        lambda w: repack(w, signature=raw_signature(rs(w.parts.signature)[0], 0)),
        SIG,
    ),
    attack(
        "signature-r-equals-n",
        lambda w: repack(w, signature=raw_signature(P256_ORDER, rs(w.parts.signature)[1])),
        SIG,
    ),
    attack(
        "signature-r-max",
        lambda w: repack(w, signature=raw_signature(2**256 - 1, rs(w.parts.signature)[1])),
        SIG,
    ),
    attack(
        "signature-s-equals-n",
        lambda w: repack(w, signature=raw_signature(rs(w.parts.signature)[0], P256_ORDER)),
        SIG,
    ),
    attack(
        "signature-s-plus-n-wraps",
        lambda w: repack(
            w,
            signature=raw_signature(
                rs(w.parts.signature)[0], (rs(w.parts.signature)[1] + P256_ORDER) % 2**256
            ),
        ),
        SIG,
    ),
    attack(
        "eddsa-signature-under-es256-card",
        lambda w: repack(w, signature=w.eddsa.sign(signing_input(w.parts.header, w.parts.payload))),
        SIG,
    ),
    # The QR text and the container.
    attack("empty-text", lambda _: "", MAL),
    attack("whitespace-only", lambda _: " \n\t ", MAL),
    attack("prefix-only", lambda _: PREFIX, MAL),
    attack("truncated-by-1", lambda w: w.qr[:-1], MAL),
    attack("truncated-by-2", lambda w: w.qr[:-2], MAL),
    attack("truncated-by-3", lambda w: w.qr[:-3], MAL),
    attack("truncated-to-half", lambda w: w.qr[: len(w.qr) // 2], MAL),
    attack("padded-with-equals", lambda w: w.qr + "===", MAL),
    attack("padded-with-zero-byte", lambda w: text_of(unpacked(w) + b"\0"), MAL),
    attack("padded-with-base45-group", lambda w: w.qr + "000", MAL),
    attack("wrong-prefix-fm2", lambda w: "FM2:" + body(w), MAL),
    attack("wrong-prefix-hc1", lambda w: "HC1:" + body(w), MAL),
    attack("no-prefix", body, MAL),
    attack("doubled-prefix", lambda w: PREFIX + w.qr, MAL),
    attack("lowercase-prefix", lambda w: "fm1:" + body(w), MAL),
    attack("lowercase-text", lambda w: w.qr.lower(), MAL),
    attack("character-outside-base45-hash", lambda w: w.qr[:10] + "#" + w.qr[11:], MAL),
    attack("character-outside-base45-lower", lambda w: w.qr[:10] + "a" + w.qr[11:], MAL),
    attack("character-outside-base45-nul", lambda w: w.qr[:10] + "\0" + w.qr[11:], MAL),
    attack("character-non-ascii", lambda w: w.qr[:10] + "\u00e9" + w.qr[11:], MAL),
    attack("character-fullwidth-digit", lambda w: w.qr[:10] + "\uff10" + w.qr[11:], MAL),
    attack("character-lone-surrogate", lambda w: w.qr[:10] + "\ud800" + w.qr[11:], MAL),
    attack("base45-group-overflow", lambda w: PREFIX + "GGW" + body(w)[3:], MAL),
    attack("base45-group-max", lambda w: PREFIX + ":::" + body(w)[3:], MAL),
    attack("base45-final-pair-overflow", lambda w: text_of(even_container(w)) + "ZZ", MAL),
    attack("trailing-continuation-byte", lambda w: text_of(unpacked(w) + b"\xff"), MAL),
    attack("trailing-length-beyond-end", lambda w: text_of(unpacked(w) + b"\x05ab"), MAL),
    attack("trailing-one-byte-part", lambda w: text_of(unpacked(w) + b"\x01X"), MAL),
    attack("non-minimal-varint-2-bytes", non_minimal_header_length, MAL),
    attack("non-minimal-varint-3-bytes", three_byte_payload_length, MAL),
    attack(
        "varint-4-bytes",
        lambda w: text_of(b"\x80\x80\x80\x01" + unpacked(w)),
        MAL,
    ),
    attack(
        "header-length-past-end",
        lambda w: text_of(varint(100) + w.parts.header[:10]),
        MAL,
    ),
    attack(
        "zero-length-header",
        lambda w: text_of(container(b"", w.parts.payload, w.parts.signature)),
        MAL,
    ),
    attack(
        "zero-length-payload",
        lambda w: text_of(container(w.parts.header, b"", w.parts.signature)),
        MAL,
    ),
    attack("header-only", lambda w: text_of(container(w.parts.header)), MAL),
    attack(
        "header-and-payload-only",
        lambda w: text_of(container(w.parts.header, w.parts.payload)),
        MAL,
    ),
    attack("payload-over-2048-bytes", lambda w: repack(w, payload=b"\0" * 2049), MAL),
    attack("header-over-256-bytes", lambda w: repack(w, header=b" " * 257), MAL),
    attack("extra-part-on-card-without-portrait", lambda w: repack(w, attachments=(b"X",)), MAL),
    attack("empty-extra-part", lambda w: repack(w, attachments=(b"",)), MAL),
    attack("three-extra-parts", lambda w: repack(w, attachments=(b"X", b"Y", b"Z")), MAL),
    attack(
        "attachment-over-2048-bytes",
        lambda w: repack(w, attachments=(b"\0" * 2049,)),
        MAL,
    ),
    # Compression.
    attack("zip-unknown-name", lambda w: header_member(w, zip="GZIP"), MAL),
    attack("zip-lowercase", lambda w: header_member(w, zip="def"), MAL),
    attack("zip-empty", lambda w: header_member(w, zip=""), MAL),
    attack("zip-integer", lambda w: header_member(w, zip=1), MAL),
    attack(
        "zip-def-for-dictionary-stream",
        lambda w: signed(w.parts.payload, w.issuing, header=header_of(w.issuing, zip="DEF")),
        MAL,
        genuine=True,
    ),
    attack(
        "plain-zlib-instead-of-raw-deflate",
        lambda w: signed_raw_payload(
            w, zlib.compress(strictjson.dumps(claims_of(w))), zip_name="DEF"
        ),
        MAL,
        genuine=True,
    ),
    attack(
        "gzip-instead-of-raw-deflate",
        lambda w: signed_raw_payload(w, gzip_of(strictjson.dumps(claims_of(w))), zip_name="DEF"),
        MAL,
        genuine=True,
    ),
    attack(
        "uncompressed-json",
        lambda w: signed_raw_payload(w, strictjson.dumps(claims_of(w)), zip_name="DEF"),
        MAL,
        genuine=True,
    ),
    attack(
        "truncated-deflate",
        lambda w: signed_raw_payload(w, w.parts.payload[:-1]),
        MAL,
        genuine=True,
    ),
    attack(
        "truncated-deflate-half",
        lambda w: signed_raw_payload(w, w.parts.payload[: len(w.parts.payload) // 2]),
        MAL,
        genuine=True,
    ),
    attack(
        "data-after-deflate-stream",
        lambda w: signed_raw_payload(w, w.parts.payload + b"\0"),
        MAL,
        genuine=True,
    ),
    attack(
        "two-deflate-streams",
        lambda w: signed_raw_payload(w, w.parts.payload + w.parts.payload),
        MAL,
        genuine=True,
    ),
    attack(
        "decompression-bomb-1mb-zeros",
        lambda w: signed_raw_payload(w, bomb(), zip_name="DEF"),
        MAL,
        genuine=True,
    ),
    attack(
        "claims-of-4097-bytes",
        lambda w: signed_json(w, strictjson.dumps(claims_of(w)).ljust(4097)),
        MAL,
        genuine=True,
    ),
    attack(
        "inflates-to-8193-bytes",
        lambda w: signed_json(w, strictjson.dumps(claims_of(w)).ljust(8193)),
        MAL,
        genuine=True,
    ),
    # Oversized text.
    attack(
        "text-4297-characters",
        lambda _: PREFIX + "0" * (MAX_QR_TEXT + 1 - len(PREFIX)),
        Reason.TOO_LARGE,
    ),
    attack(
        "genuine-card-padded-past-4296",
        lambda w: w.qr + "0" * (MAX_QR_TEXT - len(w.qr) + 3),
        Reason.TOO_LARGE,
    ),
    attack("text-10-mb", lambda _: PREFIX + "A" * 10_000_000, Reason.TOO_LARGE),
    attack("text-10-mb-non-ascii", lambda _: "\u4e2d" * 10_000_000, Reason.TOO_LARGE),
    attack(
        "genuine-card-in-10-mb-of-whitespace",
        lambda w: " " * 5_000_000 + w.qr + "\n" * 5_000_000,
        Reason.TOO_LARGE,
        genuine=True,
    ),
    # JSON that two parsers could read differently, and claims of the wrong type.
    attack(
        "duplicate-claim-family-name",
        lambda w: signed_json(w, duplicate_member(w, "fn", '"MALLORY"')),
        MAL,
        genuine=True,
    ),
    attack(
        "duplicate-claim-exp",
        lambda w: signed_json(w, duplicate_member(w, "exp", "4102444799")),
        MAL,
        genuine=True,
    ),
    attack("exp-string", lambda w: signed_claims(w, exp="1900000000"), MAL, genuine=True),
    attack("exp-float", lambda w: signed_claims(w, exp=1900000000.0), MAL, genuine=True),
    attack("exp-float-fraction", lambda w: signed_claims(w, exp=1900000000.5), MAL, genuine=True),
    attack(
        "exp-exponent",
        lambda w: signed_json(w, with_literal(w, "exp", "1.9e9")),
        MAL,
        genuine=True,
    ),
    attack("exp-bool", lambda w: signed_claims(w, exp=True), MAL, genuine=True),
    attack("exp-null", lambda w: signed_claims(w, exp=None), MAL, genuine=True),
    attack("exp-huge-10-30", lambda w: signed_claims(w, exp=10**30), MAL, genuine=True),
    attack("exp-19-digits", lambda w: signed_claims(w, exp=10**18), MAL, genuine=True),
    attack("exp-negative", lambda w: signed_claims(w, exp=-1), MAL, genuine=True),
    attack("exp-zero", lambda w: signed_claims(w, exp=0), MAL, genuine=True),
    attack("exp-nan", lambda w: signed_json(w, with_literal(w, "exp", "NaN")), MAL, genuine=True),
    attack(
        "exp-infinity",
        lambda w: signed_json(w, with_literal(w, "exp", "Infinity")),
        MAL,
        genuine=True,
    ),
    attack("iat-bool", lambda w: signed_claims(w, iat=False), MAL, genuine=True),
    attack("nbf-string", lambda w: signed_claims(w, nbf="now"), MAL, genuine=True),
    attack("v-true", lambda w: signed_claims(w, v=True), MAL, genuine=True),
    attack("v-string", lambda w: signed_claims(w, v="1"), MAL, genuine=True),
    attack("v-float", lambda w: signed_claims(w, v=1.0), MAL, genuine=True),
    attack("v-2", lambda w: signed_claims(w, v=2), MAL, genuine=True),
    attack("bd-bool", lambda w: signed_claims(w, bd=True), MAL, genuine=True),
    attack("bd-after-issue", lambda w: signed_claims(w, bd=20990101), MAL, genuine=True),
    attack("st-index-negative", lambda w: signed_claims(w, st=["1", -1]), MAL, genuine=True),
    attack("st-index-2-31", lambda w: signed_claims(w, st=["1", 2**31]), MAL, genuine=True),
    attack("st-index-bool", lambda w: signed_claims(w, st=["1", True]), MAL, genuine=True),
    attack("st-object", lambda w: signed_claims(w, st={"1": 7}), MAL, genuine=True),
    attack("en-list", lambda w: signed_claims(w, en=["hc"]), MAL, genuine=True),
    attack("en-bad-service-code", lambda w: signed_claims(w, en={"HC": []}), MAL, genuine=True),
    attack(
        "en-window-reversed",
        lambda w: signed_claims(w, en={"hc": [1900000000, 1800000000]}),
        MAL,
        genuine=True,
    ),
    attack(
        "en-window-bool", lambda w: signed_claims(w, en={"hc": [True, None]}), MAL, genuine=True
    ),
    attack("iss-list", lambda w: signed_claims(w, iss=["CN-ZJ-YWPSB"]), MAL, genuine=True),
    attack(
        "sub-bad-check-character", lambda w: signed_claims(w, sub=bad_code(w)), MAL, genuine=True
    ),
    attack(
        "cnf-private-key", lambda w: signed_claims(w, cnf={"jwk": {"d": "x"}}), MAL, genuine=True
    ),
    attack("top-level-array", lambda w: signed_json(w, b"[]"), MAL, genuine=True),
    attack("top-level-string", lambda w: signed_json(w, b'"card"'), MAL, genuine=True),
    attack("invalid-utf8", lambda w: signed_json(w, b'{"fn":"\xff"}'), MAL, genuine=True),
    attack("empty-object", lambda w: signed_json(w, b"{}"), MAL, genuine=True),
    attack("deep-nesting-3000", lambda w: signed_json(w, deep(3000)), MAL, genuine=True),
    attack("deep-nesting-2000", lambda w: signed_json(w, deep(2000)), MAL, genuine=True),
    attack("deep-nesting-900", lambda w: signed_json(w, deep(900)), MAL, genuine=True),
    attack(
        "deep-nesting-in-cnf-of-real-claims",
        lambda w: signed_json(w, deep_in_claims(w, 1500)),
        MAL,
        genuine=True,
    ),
    attack(
        "deep-object-nesting-800",
        lambda w: signed_json(w, b'{"":' * 800 + b"1" + b"}" * 800),
        MAL,
        genuine=True,
    ),
    attack("unknown-claim", lambda w: signed_claims(w, admin=True), MAL, genuine=True),
    attack("unknown-claim-empty-name", lambda w: signed_claims(w, **{"": 1}), MAL, genuine=True),
    attack(
        "registered-but-unknown-claim-aud",
        lambda w: signed_claims(w, aud="bank"),
        MAL,
        genuine=True,
    ),
    attack("missing-claim-exp", lambda w: signed_without(w, "exp"), MAL, genuine=True),
    attack("missing-claim-st", lambda w: signed_without(w, "st"), MAL, genuine=True),
    # Names that display differently from what was signed.
    attack(
        "family-name-rlo-u202e", lambda w: signed_claims(w, fn="ALI\u202eIBAH"), MAL, genuine=True
    ),
    attack(
        "given-names-lro-u202d", lambda w: signed_claims(w, gn="\u202dMOHAMMED"), MAL, genuine=True
    ),
    attack("native-name-rlo-u202e", lambda w: signed_claims(w, nn="\u202eمحمد"), MAL, genuine=True),
    attack(
        "chinese-name-rli-u2067", lambda w: signed_claims(w, zh="\u2067穆罕默德"), MAL, genuine=True
    ),
    attack("native-name-rlm-u200f", lambda w: signed_claims(w, nn="محمد\u200f"), MAL, genuine=True),
    attack("family-name-nul", lambda w: signed_claims(w, fn="ALI\0"), MAL, genuine=True),
    attack("family-name-newline", lambda w: signed_claims(w, fn="ALI\nBOB"), MAL, genuine=True),
    attack("family-name-escape", lambda w: signed_claims(w, fn="ALI\x1b[2J"), MAL, genuine=True),
    attack("family-name-del", lambda w: signed_claims(w, fn="ALI\x7f"), MAL, genuine=True),
    attack(
        "family-name-zero-width-space",
        lambda w: signed_claims(w, fn="A\u200bLI"),
        MAL,
        genuine=True,
    ),
    attack(
        "family-name-line-separator", lambda w: signed_claims(w, fn="A\u2028LI"), MAL, genuine=True
    ),
    attack(
        "family-name-lone-surrogate",
        lambda w: signed_json(w, lone_surrogate_name(w)),
        MAL,
        genuine=True,
    ),
    attack("family-name-cyrillic", lambda w: signed_claims(w, fn="\u0410LI"), MAL, genuine=True),
    attack("family-name-65-characters", lambda w: signed_claims(w, fn="A" * 65), MAL, genuine=True),
    attack("family-name-empty", lambda w: signed_claims(w, fn=""), MAL, genuine=True),
    attack("family-name-trailing-space", lambda w: signed_claims(w, fn="ALI "), MAL, genuine=True),
    # Status: revoked, suspended, superseded, stale or missing lists.
    attack(
        "revoked-fresh-list",
        lambda w: card_with_status(w, REVOKED_INDEX),
        Reason.REVOKED,
        genuine=True,
    ),
    attack(
        "revoked-stale-list",
        lambda w: card_with_status(w, REVOKED_INDEX),
        Reason.STATUS_UNKNOWN,
        genuine=True,
        verifier="stale",
    ),
    attack(
        "valid-card-stale-list",
        lambda w: card_with_status(w, 7),
        Reason.STATUS_UNKNOWN,
        genuine=True,
        verifier="stale",
    ),
    attack(
        "suspended", lambda w: card_with_status(w, SUSPENDED_INDEX), Reason.SUSPENDED, genuine=True
    ),
    attack(
        "superseded",
        lambda w: card_with_status(w, SUPERSEDED_INDEX),
        Reason.SUPERSEDED,
        genuine=True,
    ),
    attack(
        "status-index-outside-list",
        lambda w: card_with_status(w, 4096),
        Reason.STATUS_UNKNOWN,
        genuine=True,
    ),
    attack(
        "status-index-max",
        lambda w: card_with_status(w, 2**31 - 1),
        Reason.STATUS_UNKNOWN,
        genuine=True,
    ),
    attack(
        "status-list-not-in-bundle",
        lambda w: card_with_status(w, 7, list_id="2"),
        Reason.STATUS_UNKNOWN,
        genuine=True,
    ),
    attack(
        "status-list-id-unknown",
        lambda w: card_with_status(w, 7, list_id="other"),
        Reason.STATUS_UNKNOWN,
        genuine=True,
    ),
    # The portrait travels after the claims inside the signed payload.
    attack(
        "portrait-swapped",
        lambda w: repack(w, payload=portrait_payload(w, OTHER_PORTRAIT), portrait=True),
        SIG,
    ),
    attack(
        "portrait-one-bit-flipped",
        lambda w: repack(w, payload=portrait_payload(w, flip(PORTRAIT, 100)), portrait=True),
        SIG,
    ),
    attack(
        "portrait-truncated",
        lambda w: repack(w, payload=portrait_payload(w, PORTRAIT[:-1]), portrait=True),
        SIG,
    ),
    attack(
        "portrait-removed",
        lambda w: repack(w, payload=portrait_payload(w, None), portrait=True),
        SIG,
    ),
    attack(
        "portrait-added-to-card-without-one",
        lambda w: repack(w, payload=portrait_payload(w, PORTRAIT)),
        SIG,
    ),
    attack(
        "portrait-as-unsigned-attachment",
        lambda w: repack(w, attachments=(PORTRAIT,)),
        MAL,
    ),
    attack(
        "extra-attachment-on-portrait-card",
        lambda w: repack(w, attachments=(b"extra",), portrait=True),
        MAL,
    ),
    attack(
        "portrait-not-an-image",
        lambda w: signed_json(w, strictjson.dumps(claims_of(w)) + b"\nGIF89a" + bytes(100)),
        MAL,
        genuine=True,
    ),
    attack(
        "portrait-empty-after-separator",
        lambda w: signed_json(w, strictjson.dumps(claims_of(w)) + b"\n"),
        MAL,
        genuine=True,
    ),
    attack(
        "portrait-over-4096-bytes",
        lambda w: signed_json(w, strictjson.dumps(claims_of(w)) + b"\n" + b"\xff\xd8\xff" * 1366),
        MAL,
        genuine=True,
    ),
    attack(
        "line-feed-inside-claims-json",
        lambda w: signed_json(w, strictjson.dumps(claims_of(w)).replace(b",", b",\n", 1)),
        MAL,
        genuine=True,
    ),
    attack("ph-claim-is-unknown", lambda w: signed_claims(w, ph="A" * 43), MAL, genuine=True),
]


def portrait_payload(world: World, portrait: bytes | None) -> bytes:
    """The genuine claims followed by ``portrait``, compressed but not re-signed."""
    return deflate(card_payload.join(strictjson.dumps(world.card.to_claims()), portrait))


def signed_json_header(world: World, kid_member: bytes) -> str:
    header = b'{"alg":"ES256",' + kid_member + b',"zip":"D1"}'
    return signed(world.parts.payload, world.issuing, header=header)


def flip_last(data: bytes) -> bytes:
    return flip(data, len(data) - 1)


def flip_kid(world: World) -> bytes:
    header = world.parts.header
    index = header.index(world.issuing.kid.encode())
    flipped = flip(header, index, 1)
    assert strictjson.loads(flipped)["kid"] != world.issuing.kid
    return flipped


def unpacked(world: World) -> bytes:
    parts = world.parts
    return container(parts.header, parts.payload, parts.signature)


def even_container(world: World) -> bytes:
    data = unpacked(world)
    if len(data) % 2:
        data = container(world.parts.header + b" ", world.parts.payload, world.parts.signature)
    assert len(data) % 2 == 0
    return data


def gzip_of(data: bytes) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    return compressor.compress(data) + compressor.flush()


def with_literal(world: World, claim: str, literal: str) -> bytes:
    """The genuine claims with ``claim`` replaced by the raw JSON ``literal``."""
    claims = claims_of(world)
    claims[claim] = "@@@"
    return strictjson.dumps(claims).replace(b'"@@@"', literal.encode())


def lone_surrogate_name(world: World) -> bytes:
    return with_literal(world, "fn", '"ALI\\ud800"')


def bad_code(world: World) -> str:
    code = world.card.code
    alphabet = "023456789ABCDEFGHJKMNPQRSTVWXYZ"
    return code[:-1] + next(c for c in alphabet if c != code[-1])


@pytest.mark.parametrize("case", ATTACKS)
def test_attack_is_refused_with_the_right_reason(world: World, case: Attack) -> None:
    qr_text = case.craft(world)
    result = check(world, qr_text, verifier=case.verifier)
    assert result.reason is case.expected, result.detail
    assert not result.ok
    assert result.checked_at == NOW
    assert result.service == SERVICE
    if not case.genuine or result.reason not in AFTER_SIGNATURE:
        assert_no_card_data(result)


def test_no_attack_result_carries_card_data_unless_the_signature_verified(world: World) -> None:
    """Card data comes back only for a card whose issuer signature verified."""
    seen_with_card = 0
    for param in ATTACKS:
        case: Attack = param.values[0]
        result = check(world, case.craft(world), verifier=case.verifier)
        if result.card is None:
            assert_no_card_data(result)
            continue
        seen_with_card += 1
        assert case.genuine, param.id
        assert result.reason in AFTER_SIGNATURE, param.id
        assert result.issuer_id == result.card.issuer
        assert result.kid is not None
    assert seen_with_card >= 5  # revoked, suspended, superseded, stale, index cases


def test_genuine_cards_are_valid(world: World) -> None:
    """The controls: without tampering the same world says VALID, so refusals mean something."""
    for qr_text in (world.qr, world.portrait_qr, signed_card(world, world.eddsa)):
        result = check(world, qr_text)
        assert result.reason is Reason.VALID, result.detail
        assert result.card is not None
    portrait = check(world, world.portrait_qr)
    assert portrait.portrait == PORTRAIT
    other = check(world, signed_card(world, world.other, issuer=OTHER_ISSUER))
    assert other.reason is Reason.VALID, other.detail
    assert other.issuer_id == OTHER_ISSUER
    # Re-signed with the same key, the crafting helpers make valid cards: what they change is
    # what the attack cases change.
    assert check(world, signed_claims(world)).reason is Reason.VALID
    assert check(world, signed_json(world, strictjson.dumps(claims_of(world)), zip_name="DEF")).ok
    assert check(world, header_member(world)).ok
    assert check(world, world.qr, verifier="es256-only").ok
    assert check(world, world.qr, verifier="no-leeway").ok
    assert check(
        world, signed_claims(world, nn="\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645")
    ).ok  # ZWNJ is allowed


def test_every_bit_flip_of_a_genuine_card_is_refused(world: World) -> None:
    """Every single-bit change of header, payload (portrait included) or signature is caught."""
    parts = world.portrait_parts
    for index in range(len(parts.payload)):
        for bit in range(8):
            qr_text = repack(world, payload=flip(parts.payload, index, bit), portrait=True)
            result = check(world, qr_text)
            assert result.reason is Reason.BAD_SIGNATURE, (index, bit)
            assert_no_card_data(result)
    for index in range(len(parts.signature)):
        for bit in range(8):
            qr_text = repack(world, signature=flip(parts.signature, index, bit), portrait=True)
            result = check(world, qr_text)
            assert result.reason is Reason.BAD_SIGNATURE, (index, bit)
            assert_no_card_data(result)
    for index in range(len(parts.header)):
        for bit in range(8):
            qr_text = repack(world, header=flip(parts.header, index, bit), portrait=True)
            result = check(world, qr_text)
            assert result.reason in {
                Reason.MALFORMED,
                Reason.UNSUPPORTED_ALGORITHM,
                Reason.UNKNOWN_KEY,
                Reason.BAD_SIGNATURE,
            }, (index, bit, result.reason)
            assert_no_card_data(result)


def test_high_s_twin_of_a_genuine_signature_gives_the_same_card(world: World) -> None:
    """ECDSA is malleable: (r, n - s) also verifies. It must not yield a different card."""
    r, s = rs(world.parts.signature)
    twin = repack(world, signature=raw_signature(r, P256_ORDER - s))
    original, result = check(world, world.qr), check(world, twin)
    assert result.reason is original.reason
    assert result.card == original.card


def test_decompression_bomb_is_refused_with_bounded_memory(world: World) -> None:
    qr_text = signed_raw_payload(world, bomb(), zip_name="DEF")
    assert len(qr_text) <= MAX_QR_TEXT
    assert len(zlib.decompress(unpack(qr_text).payload, -15)) == 1_000_000  # it is a real bomb
    tracemalloc.start()
    try:
        result = check(world, qr_text)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        zlib.decompress(unpack(qr_text).payload, -15)
        _, control = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.reason is Reason.MALFORMED
    assert_no_card_data(result)
    assert control >= 1_000_000  # the measurement sees what an uncapped inflate would cost
    assert peak < 256 * 1024, f"peak {peak} bytes while refusing a 1 MB bomb"


@pytest.mark.parametrize(
    "make_text",
    [
        pytest.param(lambda: PREFIX + "A" * 10_000_000, id="10-mb-base45"),
        pytest.param(lambda: "\ud800" * 10_000_000, id="10-mb-surrogates"),
        pytest.param(lambda: "\0" * 10_000_000, id="10-mb-nul"),
        pytest.param(lambda: "x" * (MAX_QR_TEXT + 1), id="4297-characters"),
    ],
)
def test_oversized_text_is_too_large_quickly(world: World, make_text: Callable[[], str]) -> None:
    qr_text = make_text()
    started = time.perf_counter()
    result = world.verifiers["main"].verify(qr_text, service=SERVICE, at=NOW)
    elapsed = time.perf_counter() - started
    assert result.reason is Reason.TOO_LARGE
    assert elapsed < 0.1, f"{elapsed:.3f} s to refuse {len(qr_text)} characters"
    assert_no_card_data(result)


def test_text_of_exactly_the_maximum_length_is_not_too_large(world: World) -> None:
    qr_text = PREFIX + "0" * (MAX_QR_TEXT - len(PREFIX))
    assert check(world, qr_text).reason is Reason.MALFORMED


# --- Validity dates around the leeway -----------------------------------------------------

EXPIRES = NOW + timedelta(hours=1)
STARTS = NOW + timedelta(hours=1)
SECOND = timedelta(seconds=1)
LEEWAY = timedelta(seconds=60)


def expiring_card(world: World) -> str:
    return signed_card(
        world,
        issued_at=NOW - timedelta(days=1),
        valid_from=NOW - timedelta(days=1),
        expires_at=EXPIRES,
    )


def future_card(world: World) -> str:
    return signed_card(world, issued_at=NOW, valid_from=STARTS)


@pytest.mark.parametrize(
    ("craft", "verifier", "at", "expected"),
    [
        pytest.param(expiring_card, "main", EXPIRES - SECOND, Reason.VALID, id="exp-minus-1s"),
        pytest.param(expiring_card, "main", EXPIRES, Reason.VALID, id="exactly-exp-within-leeway"),
        pytest.param(
            expiring_card, "main", EXPIRES + LEEWAY - SECOND, Reason.VALID, id="exp-plus-59s"
        ),
        pytest.param(expiring_card, "main", EXPIRES + LEEWAY, Reason.EXPIRED, id="exp-plus-leeway"),
        pytest.param(
            expiring_card, "main", EXPIRES + timedelta(days=1), Reason.EXPIRED, id="exp-plus-1d"
        ),
        pytest.param(
            expiring_card, "no-leeway", EXPIRES - SECOND, Reason.VALID, id="no-leeway-exp-minus-1s"
        ),
        pytest.param(
            expiring_card, "no-leeway", EXPIRES, Reason.EXPIRED, id="no-leeway-exactly-exp"
        ),
        pytest.param(
            future_card, "main", STARTS - LEEWAY - SECOND, Reason.NOT_YET_VALID, id="nbf-minus-61s"
        ),
        pytest.param(future_card, "main", STARTS - LEEWAY, Reason.VALID, id="nbf-minus-leeway"),
        pytest.param(future_card, "main", STARTS, Reason.VALID, id="exactly-nbf"),
        pytest.param(future_card, "main", NOW, Reason.NOT_YET_VALID, id="nbf-in-1h"),
        pytest.param(
            future_card,
            "no-leeway",
            STARTS - SECOND,
            Reason.NOT_YET_VALID,
            id="no-leeway-nbf-minus-1s",
        ),
        pytest.param(future_card, "no-leeway", STARTS, Reason.VALID, id="no-leeway-exactly-nbf"),
    ],
)
def test_validity_edges_around_the_leeway(
    world: World,
    craft: Callable[[World], str],
    verifier: str,
    at: datetime,
    expected: Reason,
) -> None:
    result = check(world, craft(world), verifier=verifier, at=at)
    assert result.reason is expected, result.detail
    assert result.card is not None  # these cards are genuine: refusals still show whose card


# --- Fuzzing ---------------------------------------------------------------------------------

FUZZ = settings(max_examples=200, deadline=None)
REFUSALS = frozenset(Reason) - {Reason.VALID}
BASE45_TEXT = st.text(alphabet=base45.CHARSET, max_size=600)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


def assert_refused_without_card(result: VerificationResult) -> None:
    assert result.reason in REFUSALS
    assert_no_card_data(result)


@FUZZ
@given(text=st.text(max_size=600))
def test_fuzz_random_text(world: World, text: str) -> None:
    assert_refused_without_card(check(world, text))


@FUZZ
@given(text=BASE45_TEXT)
def test_fuzz_random_base45_after_the_prefix(world: World, text: str) -> None:
    assert_refused_without_card(check(world, PREFIX + text))


@FUZZ
@given(data=st.binary(max_size=1200))
def test_fuzz_random_container_bytes(world: World, data: bytes) -> None:
    assert_refused_without_card(check(world, text_of(data)))


@FUZZ
@given(signature=st.binary(min_size=1, max_size=132))
def test_fuzz_random_signature_in_a_valid_container(world: World, signature: bytes) -> None:
    result = check(world, repack(world, signature=signature))
    assert result.reason is Reason.BAD_SIGNATURE
    assert_no_card_data(result)


@FUZZ
@given(header=st.binary(min_size=1, max_size=256))
def test_fuzz_random_header_in_a_valid_container(world: World, header: bytes) -> None:
    assert_refused_without_card(check(world, repack(world, header=header)))


@FUZZ
@given(payload=st.binary(min_size=1, max_size=2048), zip_name=st.sampled_from(["D1", "DEF"]))
def test_fuzz_random_payload_signed_by_the_issuer(
    world: World, payload: bytes, zip_name: str
) -> None:
    """Signed by the real key, random bytes reach inflation and must come back MALFORMED."""
    result = check(world, signed_raw_payload(world, payload, zip_name=zip_name))
    assert result.reason is Reason.MALFORMED
    assert_no_card_data(result)


@FUZZ
@given(document=st.binary(max_size=600))
def test_fuzz_random_json_bytes_signed_by_the_issuer(world: World, document: bytes) -> None:
    result = check(world, signed_json(world, document))
    assert result.reason is Reason.MALFORMED
    assert_no_card_data(result)


@FUZZ
@given(claim=st.sampled_from(sorted(KNOWN | {"x", "aud"})), value=JSON_VALUES)
def test_fuzz_one_claim_replaced_signed_by_the_issuer(world: World, claim: str, value: Any) -> None:
    """Any JSON value in any claim: a result whatever it is, and card data only for a card."""
    result = check(world, signed_claims(world, **{claim: value}))
    assert isinstance(result.reason, Reason)
    if result.reason in AFTER_SIGNATURE:
        assert result.card is not None
        assert result.issuer_id == result.card.issuer
    else:
        assert_no_card_data(result)
