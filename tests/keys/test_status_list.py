"""Status lists: the IETF draft's test vectors, bit packing, strict decoding and signed tokens."""

from __future__ import annotations

import base64
import json
import zlib
from dataclasses import dataclass
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keys.errors import SignedDocumentError, StatusListError
from keys.jwk import generate
from keys.jws import VerificationKey, encode_jwt
from keys.signer import KeySigner
from keys.status_list import (
    STATUS_LIST_TYP,
    CardStatus,
    StatusList,
    read_status_list,
    sign_status_list,
)
from tests.factories import NOW

VECTORS_FILE = Path(__file__).parent.parent / "vectors" / "status_list_ietf.json"


@dataclass(frozen=True)
class Vector:
    bits: int
    size: int
    statuses: dict[int, int]
    lst: str


def _load_vectors() -> list[Vector]:
    document: dict[str, Any] = json.loads(VECTORS_FILE.read_text(encoding="utf-8"))
    return [
        Vector(
            bits=entry["bits"],
            size=entry["size"],
            statuses={int(index): value for index, value in entry["set"].items()},
            lst=entry["lst"],
        )
        for entry in document["vectors"]
    ]


VECTORS = _load_vectors()


def _vector_id(vector: Vector) -> str:
    return f"bits{vector.bits}-size{vector.size}"


def _reference_bytes(vector: Vector) -> bytes:
    """The uncompressed list, packed by hand: index i at bit i*bits, LSB first in each byte."""
    data = bytearray((vector.size * vector.bits + 7) // 8)
    for index, value in vector.statuses.items():
        position = index * vector.bits
        data[position // 8] |= value << (position % 8)
    return bytes(data)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def test_vectors_file_is_complete() -> None:
    assert len(VECTORS) >= 6
    assert {vector.bits for vector in VECTORS} == {1, 2, 4, 8}
    for vector in VECTORS:
        assert vector.statuses
        assert all(0 < value < 1 << vector.bits for value in vector.statuses.values())


@pytest.mark.parametrize("vector", VECTORS, ids=_vector_id)
def test_decode_ietf_vector(vector: Vector) -> None:
    statuses = StatusList.from_lst(vector.lst, vector.bits)
    assert statuses.bits == vector.bits
    assert statuses.size == vector.size
    # Every index at once, against a list packed independently of StatusList.
    assert statuses.to_bytes() == _reference_bytes(vector)
    for index, value in vector.statuses.items():
        assert statuses[index] == value
    if vector.size <= 4096:  # and index by index through __getitem__ where that is cheap
        for index in range(vector.size):
            assert statuses[index] == vector.statuses.get(index, 0), index
    else:
        for index in range(0, vector.size, 997):
            assert statuses[index] == vector.statuses.get(index, 0), index


@pytest.mark.parametrize("vector", VECTORS, ids=_vector_id)
def test_build_ietf_vector(vector: Vector) -> None:
    statuses = StatusList(vector.size, vector.bits)
    for index, value in vector.statuses.items():
        statuses[index] = value
    assert statuses.to_bytes() == _reference_bytes(vector)
    # zlib builds may compress differently, so compare what the encodings decode to.
    ours = statuses.to_lst()
    assert zlib.decompress(base64.urlsafe_b64decode(ours + "=" * (-len(ours) % 4))) == (
        _reference_bytes(vector)
    )
    decoded = StatusList.from_lst(ours, vector.bits)
    assert decoded.size == vector.size
    assert decoded.to_bytes() == StatusList.from_lst(vector.lst, vector.bits).to_bytes()
    assert "=" not in ours


def test_small_ietf_vectors_match_exactly() -> None:
    # The two small examples of the draft, written out in the draft as bytes.
    one_bit = next(v for v in VECTORS if v.bits == 1 and v.size == 16)
    assert _reference_bytes(one_bit) == bytes([0xB9, 0xA3])
    two_bits = next(v for v in VECTORS if v.bits == 2 and v.size == 12)
    assert _reference_bytes(two_bits) == bytes([0xC9, 0x44, 0xF9])


@pytest.mark.parametrize("bits", [1, 2, 4, 8])
def test_get_and_set_every_value(bits: int) -> None:
    size = 64
    statuses = StatusList(size, bits)
    assert statuses.size == size
    assert len(statuses.to_bytes()) == size * bits // 8
    assert all(statuses[i] == 0 for i in range(size))
    expected = {i: (i * 7 + 3) % (1 << bits) for i in range(size)}
    for index, value in expected.items():
        statuses[index] = value
    for index, value in expected.items():
        assert statuses[index] == value
    # Overwrite with the largest value, then clear: neighbours never change.
    statuses[10] = (1 << bits) - 1
    statuses[10] = 0
    for index, value in expected.items():
        assert statuses[index] == (0 if index == 10 else value)


@settings(deadline=None, max_examples=100)
@given(
    bits=st.sampled_from([1, 2, 4, 8]),
    writes=st.lists(st.tuples(st.integers(0, 199), st.integers(0, 255)), max_size=60),
)
def test_status_list_behaves_like_an_array(bits: int, writes: list[tuple[int, int]]) -> None:
    statuses = StatusList(200, bits)
    model = [0] * 200
    for index, raw in writes:
        value = raw % (1 << bits)
        statuses[index] = value
        model[index] = value
    assert [statuses[i] for i in range(200)] == model
    again = StatusList.from_lst(statuses.to_lst(), bits)
    assert [again[i] for i in range(200)] == model


def test_lsb_first_layout() -> None:
    statuses = StatusList(8, 2)
    statuses[0] = 1
    statuses[3] = 2
    statuses[4] = 3
    assert statuses.to_bytes() == bytes([0b10_00_00_01, 0b00_00_00_11])


def test_size_not_a_multiple_of_the_byte_is_rounded_up() -> None:
    statuses = StatusList(5, 2)
    assert len(statuses.to_bytes()) == 2
    statuses[4] = 3
    assert statuses[4] == 3
    with pytest.raises(StatusListError):
        statuses[5] = 1


@pytest.mark.parametrize("bits", [1, 2, 4, 8])
@pytest.mark.parametrize("index", [-1, 16, 17, 10**9])
def test_index_out_of_range_is_refused(bits: int, index: int) -> None:
    statuses = StatusList(16, bits)
    with pytest.raises(StatusListError, match="outside the list"):
        statuses[index]
    with pytest.raises(StatusListError, match="outside the list"):
        statuses[index] = 1


@pytest.mark.parametrize(("bits", "value"), [(1, 2), (2, 4), (4, 16), (8, 256), (2, -1)])
def test_value_that_does_not_fit_is_refused(bits: int, value: int) -> None:
    statuses = StatusList(16, bits)
    with pytest.raises(StatusListError, match=f"does not fit in {bits} bits"):
        statuses[3] = value
    assert statuses.to_bytes() == bytes(len(statuses.to_bytes()))


@pytest.mark.parametrize("bits", [0, 3, 5, 16, -1])
def test_bits_must_be_1_2_4_or_8(bits: int) -> None:
    with pytest.raises(StatusListError, match="1, 2, 4 or 8"):
        StatusList(16, bits)
    lst = StatusList(16, 2).to_lst()
    with pytest.raises(StatusListError, match="1, 2, 4 or 8"):
        StatusList.from_lst(lst, bits)


@pytest.mark.parametrize("size", [0, -1, 32 * 1024 * 1024 * 8 + 1])
def test_size_out_of_range_is_refused(size: int) -> None:
    with pytest.raises(StatusListError, match="size is out of range"):
        StatusList(size, 1)


def test_data_of_the_wrong_length_is_refused() -> None:
    with pytest.raises(StatusListError, match="wrong length"):
        StatusList(16, 2, bytes(3))


def test_card_status_values() -> None:
    assert [int(s) for s in CardStatus] == [0, 1, 2, 3]
    statuses = StatusList(4, 2)
    statuses[2] = CardStatus.SUSPENDED
    assert statuses[2] == CardStatus.SUSPENDED


# --- from_lst refusals ---------------------------------------------------------------------------


def test_zlib_bomb_above_max_bytes_is_refused() -> None:
    bomb = zlib.compress(bytes(10_000_000), 9)
    assert len(bomb) < 20_000
    with pytest.raises(StatusListError, match="more than 1000 bytes"):
        StatusList.from_lst(_b64(bomb), 1, max_bytes=1000)
    # At max_bytes exactly, it is read.
    exact = zlib.compress(bytes(1000), 9)
    assert StatusList.from_lst(_b64(exact), 1, max_bytes=1000).size == 8000
    with pytest.raises(StatusListError, match="more than 999 bytes"):
        StatusList.from_lst(_b64(exact), 1, max_bytes=999)


def test_default_cap_refuses_a_huge_bomb() -> None:
    compressor = zlib.compressobj(9)
    chunk = bytes(1 << 20)
    parts = [compressor.compress(chunk) for _ in range(33)]  # 33 MiB of zeros
    bomb = b"".join(parts) + compressor.flush()
    with pytest.raises(StatusListError, match="decompresses to more than"):
        StatusList.from_lst(_b64(bomb), 2)


def _vector_stream() -> bytes:
    return zlib.compress(_reference_bytes(VECTORS[0]), 9)


def test_truncated_stream_is_refused() -> None:
    stream = _vector_stream()
    for end in range(len(stream)):
        with pytest.raises(StatusListError):
            StatusList.from_lst(_b64(stream[:end]), 1)


@pytest.mark.parametrize("trailer", [b"\x00", b"x", zlib.compress(b"second")])
def test_trailing_data_is_refused(trailer: bytes) -> None:
    with pytest.raises(StatusListError, match="trailing data"):
        StatusList.from_lst(_b64(_vector_stream() + trailer), 1)


def test_empty_list_is_refused() -> None:
    with pytest.raises(StatusListError, match="empty"):
        StatusList.from_lst(_b64(zlib.compress(b"")), 1)


def test_raw_deflate_without_zlib_header_is_refused() -> None:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    raw = compressor.compress(bytes(16)) + compressor.flush()
    with pytest.raises(StatusListError, match="not a zlib stream"):
        StatusList.from_lst(_b64(raw), 1)


def test_corrupted_checksum_is_refused() -> None:
    stream = bytearray(_vector_stream())
    stream[-1] ^= 0xFF
    with pytest.raises(StatusListError):
        StatusList.from_lst(_b64(bytes(stream)), 1)


@pytest.mark.parametrize(
    "lst",
    [
        pytest.param(VECTORS[0].lst + "=", id="padding"),
        pytest.param(VECTORS[0].lst + "==", id="double-padding"),
        pytest.param(VECTORS[1].lst.replace("_", "/") + "/", id="standard-base64-slash"),
        pytest.param("eNo+", id="plus"),
        pytest.param(VECTORS[0].lst[:5] + " " + VECTORS[0].lst[5:], id="space"),
        pytest.param(VECTORS[0].lst[:5] + "\n" + VECTORS[0].lst[5:], id="newline"),
        pytest.param(VECTORS[0].lst + "A", id="impossible-length"),
        pytest.param(VECTORS[0].lst[:5] + "é" + VECTORS[0].lst[6:], id="non-ascii"),
        pytest.param("", id="empty"),
    ],
)
def test_non_base64url_is_refused(lst: str) -> None:
    with pytest.raises(StatusListError):
        StatusList.from_lst(lst, 1)


def test_non_canonical_trailing_bits_are_refused() -> None:
    lst = VECTORS[0].lst  # "eNrbuRgAAhcBXQ": 14 characters, the last carries 4 spare bits
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    value = alphabet.index(lst[-1])
    changed = lst[:-1] + alphabet[value | 1]
    assert changed != lst
    assert base64.urlsafe_b64decode(changed + "==") == base64.urlsafe_b64decode(lst + "==")
    with pytest.raises(StatusListError):
        StatusList.from_lst(changed, 1)


# --- signed tokens -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def signer() -> KeySigner:
    return KeySigner(generate())


def _keys(signer: KeySigner) -> list[VerificationKey]:
    return [VerificationKey(signer.kid, signer.public_key)]


@pytest.mark.parametrize("algorithm", ["ES256", "EdDSA"])
def test_sign_and_read_round_trip(algorithm: str) -> None:
    signer = KeySigner(generate(algorithm))
    statuses = StatusList(4096, 2)
    statuses[7] = CardStatus.REVOKED
    statuses[4095] = CardStatus.SUPERSEDED
    token = sign_status_list(
        statuses,
        uri="https://fmcard.example/status/1",
        signer=signer,
        issued_at=NOW,
        expires_at=NOW + timedelta(days=30),
        ttl=3600,
    )
    read = read_status_list(token, keys=_keys(signer))
    assert read.uri == "https://fmcard.example/status/1"
    assert read.issued_at == NOW
    assert read.issued_at.tzinfo is UTC
    assert read.expires_at == NOW + timedelta(days=30)
    assert read.ttl == 3600
    assert read.kid == signer.kid
    assert read.statuses.bits == 2
    assert read.statuses.size == 4096
    assert read.statuses.to_bytes() == statuses.to_bytes()
    assert read.statuses[7] == CardStatus.REVOKED
    assert read.statuses[4095] == CardStatus.SUPERSEDED
    assert read.statuses[8] == CardStatus.VALID


def _header(token: str) -> dict[str, Any]:
    head = token.split(".")[0]
    value: dict[str, Any] = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    return value


def test_token_header_has_the_status_list_typ(signer: KeySigner) -> None:
    token = sign_status_list(
        StatusList(8, 1),
        uri="u",
        signer=signer,
        issued_at=NOW,
        expires_at=NOW + timedelta(days=1),
        ttl=60,
    )
    assert _header(token) == {"alg": "ES256", "kid": signer.kid, "typ": "statuslist+jwt"}
    assert STATUS_LIST_TYP == "statuslist+jwt"


def _claims(bits: int = 1, lst: str | None = None) -> dict[str, Any]:
    return {
        "sub": "https://fmcard.example/status/1",
        "iat": int(NOW.timestamp()),
        "exp": int((NOW + timedelta(days=1)).timestamp()),
        "ttl": 60,
        "status_list": {"bits": bits, "lst": lst or StatusList(8, bits).to_lst()},
    }


@pytest.mark.parametrize("typ", ["JWT", "trustlist+jwt", "statuslist+JWT", "application/jwt"])
def test_wrong_typ_is_refused(signer: KeySigner, typ: str) -> None:
    token = encode_jwt(_claims(), signer, typ=typ)
    with pytest.raises(SignedDocumentError, match="typ must be 'statuslist\\+jwt'"):
        read_status_list(token, keys=_keys(signer))


def test_the_right_typ_with_the_same_claims_is_read(signer: KeySigner) -> None:
    # Control for the typ test above: only the typ differs.
    token = encode_jwt(_claims(), signer, typ=STATUS_LIST_TYP)
    assert read_status_list(token, keys=_keys(signer)).statuses.size == 8


def test_other_key_is_refused(signer: KeySigner) -> None:
    other = KeySigner(generate())
    token = encode_jwt(_claims(), other, typ=STATUS_LIST_TYP)
    with pytest.raises(SignedDocumentError):
        read_status_list(token, keys=_keys(signer))
    # Even when the attacker's header names the trusted kid.
    header = _b64(
        json.dumps(
            {"alg": "ES256", "kid": signer.kid, "typ": STATUS_LIST_TYP}, separators=(",", ":")
        ).encode()
    )
    payload = token.split(".")[1]
    signature = other.sign(f"{header}.{payload}".encode())
    with pytest.raises(SignedDocumentError, match="does not verify"):
        read_status_list(f"{header}.{payload}.{_b64(signature)}", keys=_keys(signer))
    # Control: the same construction signed with the trusted key is read.
    genuine = signer.sign(f"{header}.{payload}".encode())
    assert read_status_list(f"{header}.{payload}.{_b64(genuine)}", keys=_keys(signer)).kid == (
        signer.kid
    )


def test_tampered_payload_is_refused(signer: KeySigner) -> None:
    token = encode_jwt(_claims(), signer, typ=STATUS_LIST_TYP)
    header, _, signature = token.split(".")
    payload = _b64(json.dumps(_claims(bits=2), separators=(",", ":")).encode())
    with pytest.raises(SignedDocumentError):
        read_status_list(f"{header}.{payload}.{signature}", keys=_keys(signer))


@pytest.mark.parametrize(
    "claims",
    [
        pytest.param({k: v for k, v in _claims().items() if k != "status_list"}, id="no-list"),
        pytest.param({k: v for k, v in _claims().items() if k != "sub"}, id="no-sub"),
        pytest.param({**_claims(), "extra": 1}, id="unknown-claim"),
        pytest.param({**_claims(), "status_list": {"bits": 1}}, id="no-lst"),
        pytest.param({**_claims(), "status_list": {"bits": "1", "lst": "x"}}, id="string-bits"),
        pytest.param({**_claims(), "status_list": {"bits": True, "lst": "x"}}, id="bool-bits"),
        pytest.param(
            {**_claims(), "status_list": {**_claims()["status_list"], "x": 1}}, id="extra-member"
        ),
        pytest.param({**_claims(), "status_list": []}, id="list-not-object"),
        pytest.param({**_claims(), "iat": -1}, id="negative-iat"),
        pytest.param({**_claims(), "ttl": "60"}, id="string-ttl"),
        pytest.param({**_claims(), "sub": 1}, id="numeric-sub"),
    ],
)
def test_malformed_claims_are_refused(signer: KeySigner, claims: dict[str, Any]) -> None:
    token = encode_jwt(claims, signer, typ=STATUS_LIST_TYP)
    with pytest.raises(SignedDocumentError):
        read_status_list(token, keys=_keys(signer))


def test_malformed_lst_in_a_signed_token_is_a_status_list_error(signer: KeySigner) -> None:
    token = encode_jwt(_claims(lst=VECTORS[0].lst + "="), signer, typ=STATUS_LIST_TYP)
    with pytest.raises(StatusListError):
        read_status_list(token, keys=_keys(signer))
