"""Signing a card into its QR text: the QR carries a standard compact JWS."""

from __future__ import annotations

import base64
import json
import random
from typing import Any

import jwt
import pytest
from jwt.exceptions import InvalidSignatureError

from keys.cards import claims_of, compact_form, encode_card
from keys.jwk import generate, public_jwk, public_key_from_jwk
from keys.phone import sign_phone_card
from keys.signer import KeySigner
from schemas import base45, payload, qrtext, strictjson
from schemas.card import Card
from schemas.compression import inflate
from schemas.errors import EncodingError
from schemas.qrtext import QRParts
from tests.factories import make_card

JPEG_PORTRAIT = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 2
WEBP_PORTRAIT = b"RIFF\x00\x02\x00\x00WEBPVP8 " + bytes(range(256))
AVIF_PORTRAIT = b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf" + bytes(range(200))


@pytest.fixture(scope="module")
def signer() -> KeySigner:
    return KeySigner(generate("ES256"))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _compact(parts: QRParts) -> str:
    """The compact JWS a verifier rebuilds from the binary parts."""
    return ".".join((_b64(parts.header), _b64(parts.payload), _b64(parts.signature)))


def _claims_of(parts: QRParts, zip_name: str = "D1") -> dict[str, Any]:
    claims_json, _ = payload.split(inflate(parts.payload, zip_name))
    return strictjson.loads(claims_json)


def test_qr_carries_a_standard_compact_jws(signer: KeySigner) -> None:
    card = make_card()
    text = encode_card(card, signer)
    assert text.startswith("FM1:")
    assert len(text) <= qrtext.MAX_QR_TEXT
    parts = qrtext.unpack(text)
    compact = _compact(parts)
    # Plain pyjwt, the raw public key, one algorithm: nothing fmcard-specific.
    signed = jwt.PyJWS().decode(compact, key=signer.public_key, algorithms=["ES256"])
    assert signed == parts.payload
    assert Card.from_claims(_claims_of(parts)) == card
    assert _claims_of(parts) == card.to_claims()


def test_jws_verifies_with_the_key_read_back_from_its_public_jwk(signer: KeySigner) -> None:
    parts = qrtext.unpack(encode_card(make_card(), signer))
    key = public_key_from_jwk(public_jwk(signer.public_key))
    assert jwt.PyJWS().decode(_compact(parts), key=key, algorithms=["ES256"]) == parts.payload


def test_signature_is_raw_r_and_s(signer: KeySigner) -> None:
    parts = qrtext.unpack(encode_card(make_card(), signer))
    assert len(parts.signature) == 64


def test_header_is_exactly_alg_kid_zip(signer: KeySigner) -> None:
    parts = qrtext.unpack(encode_card(make_card(), signer))
    header = json.loads(parts.header)
    assert header == {"alg": "ES256", "kid": signer.kid, "zip": "D1"}
    assert list(header) == ["alg", "kid", "zip"]
    assert "typ" not in header
    assert b" " not in parts.header
    assert jwt.get_unverified_header(_compact(parts)) == header


def test_tampering_breaks_the_standard_verification(signer: KeySigner) -> None:
    parts = qrtext.unpack(encode_card(make_card(), signer))
    other_card = qrtext.unpack(encode_card(make_card(family_name="OTHER"), signer))
    forged = QRParts(parts.header, other_card.payload, parts.signature)
    with pytest.raises(InvalidSignatureError):
        jwt.PyJWS().decode(_compact(forged), key=signer.public_key, algorithms=["ES256"])
    stranger = KeySigner(generate("ES256"))
    with pytest.raises(InvalidSignatureError):
        jwt.PyJWS().decode(_compact(parts), key=stranger.public_key, algorithms=["ES256"])


def test_eddsa_signer() -> None:
    eddsa = KeySigner(generate("EdDSA"))
    card = make_card()
    parts = qrtext.unpack(encode_card(card, eddsa))
    assert json.loads(parts.header) == {"alg": "EdDSA", "kid": eddsa.kid, "zip": "D1"}
    assert len(parts.signature) == 64
    signed = jwt.PyJWS().decode(_compact(parts), key=eddsa.public_key, algorithms=["EdDSA"])
    assert signed == parts.payload
    assert Card.from_claims(_claims_of(parts)) == card


def test_def_compression_is_named_in_the_header(signer: KeySigner) -> None:
    card = make_card()
    parts = qrtext.unpack(encode_card(card, signer, zip_name="DEF"))
    assert json.loads(parts.header)["zip"] == "DEF"
    assert Card.from_claims(_claims_of(parts, "DEF")) == card
    d1 = qrtext.unpack(encode_card(card, signer))
    assert len(d1.payload) < len(parts.payload)


def test_unknown_compression_is_refused(signer: KeySigner) -> None:
    with pytest.raises(EncodingError, match="unknown compression"):
        encode_card(make_card(), signer, zip_name="GZ")


def _signed_payload(parts: QRParts, zip_name: str = "D1") -> tuple[bytes, bytes | None]:
    return payload.split(inflate(parts.payload, zip_name))


def test_without_portrait_the_payload_is_the_claims_alone(signer: KeySigner) -> None:
    card = make_card()
    parts = qrtext.unpack(encode_card(card, signer))
    assert parts.attachments == ()
    inflated = inflate(parts.payload, "D1")
    assert b"\n" not in inflated
    assert inflated == strictjson.dumps(card.to_claims())
    assert _signed_payload(parts) == (inflated, None)


@pytest.mark.parametrize(
    "portrait",
    [
        pytest.param(AVIF_PORTRAIT, id="avif"),
        pytest.param(WEBP_PORTRAIT, id="webp"),
        pytest.param(JPEG_PORTRAIT, id="jpeg"),
    ],
)
def test_portrait_travels_in_the_signed_payload(signer: KeySigner, portrait: bytes) -> None:
    card = make_card()
    parts = qrtext.unpack(encode_card(card, signer, portrait=portrait))
    assert parts.attachments == ()  # not an unsigned attachment
    signed = jwt.PyJWS().decode(_compact(parts), key=signer.public_key, algorithms=["ES256"])
    inflated = inflate(signed, "D1")
    assert inflated == strictjson.dumps(card.to_claims()) + b"\n" + portrait
    claims_json, carried = payload.split(inflated)
    assert carried == portrait
    assert Card.from_claims(strictjson.loads(claims_json)) == card
    assert "ph" not in strictjson.loads(claims_json)


def test_swapping_the_portrait_breaks_the_signature(signer: KeySigner) -> None:
    card = make_card()
    genuine = qrtext.unpack(encode_card(card, signer, portrait=JPEG_PORTRAIT))
    other = qrtext.unpack(encode_card(card, signer, portrait=JPEG_PORTRAIT + b"other face"))
    forged = QRParts(genuine.header, other.payload, genuine.signature)
    with pytest.raises(InvalidSignatureError):
        jwt.PyJWS().decode(_compact(forged), key=signer.public_key, algorithms=["ES256"])


@pytest.mark.parametrize(
    "portrait",
    [
        pytest.param(b"GIF89a" + bytes(100), id="gif"),
        pytest.param(b"\x89PNG\r\n\x1a\n" + bytes(100), id="png"),
        pytest.param(b"", id="empty"),
        pytest.param(b"<svg/>", id="svg"),
    ],
)
def test_portrait_that_is_not_avif_webp_or_jpeg_is_refused(
    signer: KeySigner, portrait: bytes
) -> None:
    with pytest.raises(EncodingError, match="not an AVIF, WebP or JPEG"):
        encode_card(make_card(), signer, portrait=portrait)


def test_portrait_too_large_is_refused(signer: KeySigner) -> None:
    large = JPEG_PORTRAIT[:3] + bytes(payload.MAX_PORTRAIT)
    with pytest.raises(EncodingError, match="portrait is larger than"):
        encode_card(make_card(), signer, portrait=large)
    largest = JPEG_PORTRAIT[:3] + bytes(payload.MAX_PORTRAIT - 3)
    parts = qrtext.unpack(encode_card(make_card(), signer, portrait=largest))
    assert _signed_payload(parts)[1] == largest


@pytest.mark.parametrize("size", [1500, 2000, 2500, 4000])
def test_encode_card_never_returns_text_the_reader_refuses(signer: KeySigner, size: int) -> None:
    # An incompressible portrait (as real AVIF/JPEG data is) within payload.MAX_PORTRAIT: the
    # issuer must either refuse it or return a QR text that qrtext.unpack reads back.
    portrait = b"\xff\xd8\xff" + random.Random(size).randbytes(size - 3)
    assert len(portrait) <= payload.MAX_PORTRAIT
    try:
        text = encode_card(make_card(), signer, portrait=portrait)
    except EncodingError:
        return
    parts = qrtext.unpack(text)
    assert _signed_payload(parts)[1] == portrait


def test_qr_header_is_packed_in_compact_form(signer: KeySigner) -> None:
    text = encode_card(make_card(), signer)
    container = base45.decode(text[len(qrtext.PREFIX) :])
    kid = signer.kid.encode()
    # length, marker 0x01, ES256 = 1, D1 = 2, kid; the reader rebuilds the JSON header.
    assert container.startswith(bytes([3 + len(kid), 0x01, 1, 2]) + kid)
    assert qrtext.unpack(text).header == (b'{"alg":"ES256","kid":"' + kid + b'","zip":"D1"}')


@pytest.mark.parametrize("zip_name", ["D1", "DEF"])
def test_compact_form_is_the_same_card_signed_without_its_portrait(
    signer: KeySigner, zip_name: str
) -> None:
    """What a wallet pass carries: the claims byte for byte, no portrait, a valid signature
    by the given key, the same compression; a card without portrait stays as it is."""
    card = make_card()
    with_portrait = encode_card(card, signer, portrait=AVIF_PORTRAIT, zip_name=zip_name)
    other = KeySigner(generate("ES256"))
    compact = compact_form(with_portrait, other)
    parts = qrtext.unpack(compact)
    assert jwt.PyJWS().decode(_compact(parts), key=other.public_key, algorithms=["ES256"])
    assert json.loads(parts.header) == {"alg": "ES256", "kid": other.kid, "zip": zip_name}
    claims_json, portrait = payload.split(inflate(parts.payload, zip_name))
    assert portrait is None
    assert claims_json == claims_of(with_portrait) == strictjson.dumps(card.to_claims())
    assert len(compact) < len(with_portrait) - len(AVIF_PORTRAIT)
    plain = encode_card(card, signer, zip_name=zip_name)
    assert compact_form(plain, other) == plain


def test_compact_form_refuses_a_phone_card_and_a_broken_text(signer: KeySigner) -> None:
    card = make_card()
    device = KeySigner(generate("ES256"))
    phone = sign_phone_card(
        card, signer, device_jwk=public_jwk(device.public_key), portrait=AVIF_PORTRAIT
    )
    with pytest.raises(EncodingError):
        compact_form(phone.to_text(), signer)
    with pytest.raises(EncodingError):
        compact_form("FM1:" + "0" * 40, signer)
