"""The QR text container: ``FM1:`` + Base45 of length-prefixed binary parts."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import base45, qrtext
from schemas.errors import EncodingError
from schemas.qrtext import QRParts

HEADER = b'{"alg":"ES256","kid":"abcdefgh","zip":"D1"}'
PAYLOAD = bytes(range(256)) + b"payload"
SIGNATURE = bytes(range(64))


def _text(container: bytes) -> str:
    """QR text for a hand-made container."""
    return qrtext.PREFIX + base45.encode(container)


def _part(data: bytes) -> bytes:
    """A part with a one-byte length (``len(data) < 128``)."""
    assert len(data) < 128
    return bytes([len(data)]) + data


def test_prefix_keeps_the_text_in_qr_alphanumeric_mode() -> None:
    assert qrtext.PREFIX == "FM1:"
    assert set(qrtext.PREFIX) <= set(base45.CHARSET)


def test_round_trip_without_attachments() -> None:
    parts = QRParts(HEADER, PAYLOAD, SIGNATURE)
    text = qrtext.pack(parts)
    assert text.startswith("FM1:")
    assert set(text) <= set(base45.CHARSET)
    assert qrtext.unpack(text) == parts
    assert qrtext.unpack(text).attachments == ()


@pytest.mark.parametrize(
    "attachments",
    [
        pytest.param((b"\xff\xd8portrait",), id="one"),
        pytest.param((b"first", b"second"), id="two"),
        pytest.param((b"",), id="empty-attachment"),
        pytest.param((b"a" * qrtext.MAX_ATTACHMENT,), id="largest"),
    ],
)
def test_round_trip_with_attachments(attachments: tuple[bytes, ...]) -> None:
    parts = QRParts(HEADER, PAYLOAD, SIGNATURE, attachments)
    assert qrtext.unpack(qrtext.pack(parts)) == parts


@settings(deadline=None, max_examples=100)
@given(
    header=st.binary(max_size=63).map(lambda tail: b"{" + tail),  # JSON headers start with "{"
    payload=st.binary(min_size=1, max_size=600),
    signature=st.binary(min_size=1, max_size=qrtext.MAX_SIGNATURE),
    attachments=st.lists(st.binary(max_size=600), max_size=qrtext.MAX_ATTACHMENTS),
)
def test_round_trip_any_parts(
    header: bytes, payload: bytes, signature: bytes, attachments: list[bytes]
) -> None:
    parts = QRParts(header, payload, signature, tuple(attachments))
    assert qrtext.unpack(qrtext.pack(parts)) == parts


def test_parts_at_their_limits_are_accepted() -> None:
    parts = QRParts(
        b"h" * qrtext.MAX_HEADER, b"p" * qrtext.MAX_PAYLOAD, b"s" * qrtext.MAX_SIGNATURE
    )
    assert qrtext.unpack(qrtext.pack(parts)) == parts


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param(qrtext.pack(QRParts(HEADER, PAYLOAD, SIGNATURE))[4:], id="no-prefix"),
        pytest.param("FM3:" + qrtext.pack(QRParts(HEADER, PAYLOAD, SIGNATURE))[4:], id="FM3"),
        pytest.param("fm1:" + qrtext.pack(QRParts(HEADER, PAYLOAD, SIGNATURE))[4:], id="lower"),
        pytest.param(" " + qrtext.pack(QRParts(HEADER, PAYLOAD, SIGNATURE)), id="leading-space"),
        pytest.param("HC1:" + qrtext.pack(QRParts(HEADER, PAYLOAD, SIGNATURE))[4:], id="HC1"),
    ],
)
def test_missing_prefix_is_refused(text: str) -> None:
    with pytest.raises(EncodingError, match="does not start with 'FM1:'"):
        qrtext.unpack(text)


def test_text_of_the_maximum_length_is_accepted_and_one_more_is_refused() -> None:
    # container: 256 + 2048 + 132 bytes with 2-byte lengths, and an attachment with a 2-byte
    # length: 2442 bytes; 2861 bytes of container make exactly 4292 Base45 characters.
    longest = QRParts(
        b"h" * qrtext.MAX_HEADER,
        b"p" * qrtext.MAX_PAYLOAD,
        b"s" * qrtext.MAX_SIGNATURE,
        (b"a" * 417,),
    )
    text = qrtext.pack(longest)
    assert len(text) == qrtext.MAX_QR_TEXT == 4296
    assert qrtext.unpack(text) == longest
    too_long = qrtext.pack(
        QRParts(longest.header, longest.payload, longest.signature, (b"a" * 418,))
    )
    assert len(too_long) == 4297
    with pytest.raises(EncodingError, match="longer than 4296 characters"):
        qrtext.unpack(too_long)


def test_too_long_text_is_refused_before_anything_else() -> None:
    with pytest.raises(EncodingError, match="longer than 4296"):
        qrtext.unpack("x" * 100_000)
    with pytest.raises(EncodingError, match="longer than 4296"):
        qrtext.unpack("FM1:" + "0" * 4293)


def test_text_that_is_not_base45_is_refused() -> None:
    with pytest.raises(EncodingError):
        qrtext.unpack("FM1:abc")
    with pytest.raises(EncodingError):
        qrtext.unpack("FM1:GGW")


@pytest.mark.parametrize(
    "container",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"\x85", id="in-first-length"),
        pytest.param(_part(b"h") + b"\x05pay", id="in-payload"),
        pytest.param(_part(b"h") + _part(b"p") + b"\x40" + b"s" * 63, id="in-signature"),
        pytest.param(_part(b"h") + _part(b"p") + _part(b"s") + b"\x90", id="in-attachment-length"),
        pytest.param(_part(b"h") + _part(b"p") + _part(b"s") + b"\x05att", id="in-attachment"),
    ],
)
def test_truncated_container_is_refused(container: bytes) -> None:
    with pytest.raises(EncodingError, match=r"truncated|lacks"):
        qrtext.unpack(_text(container))


def test_container_cut_short_at_every_byte_is_refused() -> None:
    parts = QRParts(HEADER, PAYLOAD, SIGNATURE, (b"attachment",))
    container = base45.decode(qrtext.pack(parts)[len(qrtext.PREFIX) :])
    for end in range(len(container)):
        cut = container[:end]
        try:
            unpacked = qrtext.unpack(_text(cut))
        except EncodingError:
            continue
        # Only a cut exactly at a part boundary after the signature may still parse.
        assert unpacked.attachments == ()
        assert end == len(container) - len(b"attachment") - 1


@pytest.mark.parametrize(
    ("length_field", "data"),
    [
        pytest.param(b"\x85\x00", b"hhhhh", id="5-in-two-bytes"),
        pytest.param(b"\x80\x00", b"", id="0-in-two-bytes"),
        pytest.param(b"\x81\x80\x00", b"h", id="1-in-three-bytes"),
    ],
)
def test_non_minimal_length_is_refused(length_field: bytes, data: bytes) -> None:
    container = length_field + data + _part(b"p") + _part(b"s")
    with pytest.raises(EncodingError, match="non-minimal"):
        qrtext.unpack(_text(container))


def test_non_minimal_length_of_a_later_part_is_refused() -> None:
    container = _part(HEADER) + b"\x83\x00pay" + _part(b"s")
    with pytest.raises(EncodingError, match="non-minimal"):
        qrtext.unpack(_text(container))


def test_length_field_longer_than_three_bytes_is_refused() -> None:
    container = b"\x81\x80\x80\x00" + b"h"
    with pytest.raises(EncodingError, match="too long"):
        qrtext.unpack(_text(container))


def test_two_byte_lengths_are_read() -> None:
    # 200 = 0b1_1001000 -> 0xC8 0x01 (least significant group first).
    container = b"\xc8\x01" + b"h" * 200 + _part(b"p") + _part(b"s")
    assert qrtext.unpack(_text(container)).header == b"h" * 200


@pytest.mark.parametrize(
    ("parts", "over"),
    [
        pytest.param(QRParts(b"h" * (qrtext.MAX_HEADER + 1), b"p", b"s"), "header", id="header"),
        pytest.param(QRParts(b"h", b"p" * (qrtext.MAX_PAYLOAD + 1), b"s"), "payload", id="payload"),
        pytest.param(
            QRParts(b"h", b"p", b"s" * (qrtext.MAX_SIGNATURE + 1)), "signature", id="signature"
        ),
        pytest.param(
            QRParts(b"h", b"p", b"s", (b"a" * (qrtext.MAX_ATTACHMENT + 1),)),
            "attachment",
            id="attachment",
        ),
        pytest.param(
            QRParts(b"h", b"p", b"s", (b"a", b"a" * (qrtext.MAX_ATTACHMENT + 1))),
            "attachment",
            id="second-attachment",
        ),
    ],
)
def test_part_over_its_limit_is_refused(parts: QRParts, over: str) -> None:
    text = qrtext.pack(parts)
    assert len(text) <= qrtext.MAX_QR_TEXT, over
    with pytest.raises(EncodingError, match="too long or truncated"):
        qrtext.unpack(text)


def test_length_claiming_more_than_the_limit_is_refused_even_if_data_is_short() -> None:
    # A 3-byte length of about two million: refused by its limit, nothing is read.
    container = b"\xff\xff\x7f" + b"h"
    with pytest.raises(EncodingError, match="too long or truncated"):
        qrtext.unpack(_text(container))


def test_too_many_parts_are_refused() -> None:
    attachments = (b"a",) * (qrtext.MAX_ATTACHMENTS + 1)
    with pytest.raises(EncodingError, match="too many parts"):
        qrtext.unpack(qrtext.pack(QRParts(HEADER, PAYLOAD, SIGNATURE, attachments)))
    # A trailing empty part counts as a part too.
    container = _part(b"h") + _part(b"p") + _part(b"s") + b"\x00" * (qrtext.MAX_ATTACHMENTS + 1)
    with pytest.raises(EncodingError, match="too many parts"):
        qrtext.unpack(_text(container))


@pytest.mark.parametrize(
    "parts",
    [
        pytest.param(QRParts(b"", PAYLOAD, SIGNATURE), id="empty-header"),
        pytest.param(QRParts(HEADER, b"", SIGNATURE), id="empty-payload"),
        pytest.param(QRParts(HEADER, PAYLOAD, b""), id="empty-signature"),
        pytest.param(QRParts(b"", b"", b""), id="all-empty"),
        pytest.param(QRParts(HEADER, PAYLOAD, b"", (b"attachment",)), id="empty-sig-attached"),
    ],
)
def test_empty_header_payload_or_signature_is_refused(parts: QRParts) -> None:
    with pytest.raises(EncodingError, match="lacks a header, payload or signature"):
        qrtext.unpack(qrtext.pack(parts))


@pytest.mark.parametrize(
    "container",
    [
        pytest.param(_part(b"h"), id="header-only"),
        pytest.param(_part(b"h") + _part(b"p"), id="no-signature"),
    ],
)
def test_missing_parts_are_refused(container: bytes) -> None:
    with pytest.raises(EncodingError, match="lacks a header, payload or signature"):
        qrtext.unpack(_text(container))


# --- compact header form -----------------------------------------------------------------------


def _container(text: str) -> bytes:
    return base45.decode(text[len(qrtext.PREFIX) :])


def _canonical_header(alg: str, kid: str, zip_name: str) -> bytes:
    return f'{{"alg":"{alg}","kid":"{kid}","zip":"{zip_name}"}}'.encode("ascii")


@pytest.mark.parametrize(
    ("alg", "alg_code"),
    [pytest.param("ES256", 1, id="ES256"), pytest.param("EdDSA", 2, id="EdDSA")],
)
@pytest.mark.parametrize(
    ("zip_name", "zip_code"), [pytest.param("DEF", 1, id="DEF"), pytest.param("D1", 2, id="D1")]
)
def test_usual_header_travels_in_compact_form(
    alg: str, alg_code: int, zip_name: str, zip_code: int
) -> None:
    header = _canonical_header(alg, "o244lrz_", zip_name)
    text = qrtext.pack(QRParts(header, PAYLOAD, SIGNATURE))
    container = _container(text)
    compact = bytes([0x01, alg_code, zip_code]) + b"o244lrz_"
    assert container.startswith(bytes([len(compact)]) + compact)
    # The reader rebuilds the exact header bytes that were signed.
    assert qrtext.unpack(text) == QRParts(header, PAYLOAD, SIGNATURE)
    # JSON form of the same header: 31 to 33 bytes longer, the same parts once read.
    json_form = _text(_part(header) + container[1 + len(compact) :])
    saved = len(_container(json_form)) - len(container)
    assert saved == len(header) - len(compact)
    assert saved == 32 + len(alg) - 5 + len(zip_name) - 2
    assert qrtext.unpack(json_form) == qrtext.unpack(text)


@settings(deadline=None, max_examples=100)
@given(
    alg=st.sampled_from(sorted(qrtext.ALG_CODES)),
    zip_name=st.sampled_from(sorted(qrtext.ZIP_CODES)),
    kid=st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True),
)
def test_compact_header_round_trip(alg: str, zip_name: str, kid: str) -> None:
    header = _canonical_header(alg, kid, zip_name)
    text = qrtext.pack(QRParts(header, PAYLOAD, SIGNATURE))
    assert _container(text)[1] == 0x01
    assert qrtext.unpack(text).header == header


@pytest.mark.parametrize(
    "header",
    [
        pytest.param(b'{"alg":"ES256", "kid":"abc","zip":"D1"}', id="space"),
        pytest.param(b'{"kid":"abc","alg":"ES256","zip":"D1"}', id="other-order"),
        pytest.param(b'{"alg":"ES256","kid":"abc"}', id="no-zip"),
        pytest.param(b'{"alg":"ES256","kid":"abc","zip":"D1","typ":"x"}', id="extra-member"),
        pytest.param(b'{"alg":"ES384","kid":"abc","zip":"D1"}', id="other-alg"),
        pytest.param(b'{"alg":"ES256","kid":"abc","zip":"D2"}', id="other-zip"),
        pytest.param(b'{"alg":"ES256","kid":"a.c","zip":"D1"}', id="kid-with-dot"),
        pytest.param(b'{"alg":"ES256","kid":"' + b"k" * 65 + b'","zip":"D1"}', id="kid-65"),
        pytest.param(b'{"alg":"ES256","kid":"","zip":"D1"}', id="empty-kid"),
        pytest.param(b'{"alg":"ES256","kid":"abc","zip":"D1"}\n', id="trailing-newline"),
    ],
)
def test_other_headers_travel_verbatim(header: bytes) -> None:
    text = qrtext.pack(QRParts(header, PAYLOAD, SIGNATURE))
    assert _container(text).startswith(bytes([len(header)]) + header)
    assert qrtext.unpack(text).header == header


@pytest.mark.parametrize(
    ("compact", "message"),
    [
        pytest.param(b"\x01", "malformed compact header", id="marker-only"),
        pytest.param(b"\x01\x01\x02", "malformed compact header", id="no-kid"),
        pytest.param(b"\x01\x01\x02ab.c", "malformed compact header", id="kid-with-dot"),
        pytest.param(b'\x01\x01\x02ab"c', "malformed compact header", id="kid-with-quote"),
        pytest.param(b"\x01\x01\x02" + b"k" * 65, "malformed compact header", id="kid-65"),
        pytest.param(b"\x01\x00\x02abc", "unknown algorithm or zip", id="alg-code-0"),
        pytest.param(b"\x01\x03\x02abc", "unknown algorithm or zip", id="alg-code-3"),
        pytest.param(b"\x01\x01\x00abc", "unknown algorithm or zip", id="zip-code-0"),
        pytest.param(b"\x01\x01\x03abc", "unknown algorithm or zip", id="zip-code-3"),
    ],
)
def test_malformed_compact_header_is_refused(compact: bytes, message: str) -> None:
    container = bytes([len(compact)]) + compact + _part(b"p") + _part(b"s")
    with pytest.raises(EncodingError, match=message):
        qrtext.unpack(_text(container))


def test_phone_presentation_round_trips_with_its_prefix() -> None:
    parts = QRParts(HEADER, PAYLOAD, SIGNATURE, (b"disclosures", b"p" * 68), 2)
    text = qrtext.pack(parts)
    assert text.startswith("FM2:")
    assert qrtext.unpack(text) == parts


def test_phone_presentation_without_disclosures_part_is_refused() -> None:
    """FM2: always carries its disclosures part (it may be empty): three parts are refused."""
    text = "FM2:" + qrtext.pack(QRParts(HEADER, PAYLOAD, SIGNATURE))[4:]
    with pytest.raises(EncodingError, match="lacks its disclosures part"):
        qrtext.unpack(text)
    assert qrtext.unpack(qrtext.pack(QRParts(HEADER, PAYLOAD, SIGNATURE, (b"",), 2))).version == 2
