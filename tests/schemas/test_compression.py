"""Payload compression: raw DEFLATE with and without the ``D1`` preset dictionary."""

from __future__ import annotations

import io
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from schemas import compression, strictjson
from schemas.errors import EncodingError
from tests.factories import make_card

ZIP_NAMES = ["DEF", "D1"]


def _claims_json() -> bytes:
    return strictjson.dumps(make_card().to_claims())


def _avif_portrait() -> bytes:
    """A 96x120 grey AVIF portrait as the issuer makes them (libavif through Pillow)."""
    image = Image.linear_gradient("L").resize((96, 120))
    out = io.BytesIO()
    image.save(out, "AVIF", quality=20)
    return out.getvalue()


def _raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush()


def test_default_is_d1() -> None:
    assert compression.DEFAULT_ZIP == "D1"
    assert set(compression.DICTIONARIES) == {"DEF", "D1"}


@pytest.mark.parametrize("zip_name", ZIP_NAMES)
def test_round_trip_of_card_claims(zip_name: str) -> None:
    data = _claims_json()
    packed = compression.deflate(data, zip_name)
    assert compression.inflate(packed, zip_name) == data


@pytest.mark.parametrize("zip_name", ZIP_NAMES)
@settings(deadline=None, max_examples=100)
@given(data=st.binary(max_size=compression.MAX_INFLATED))
def test_round_trip_of_any_bytes(zip_name: str, data: bytes) -> None:
    assert compression.inflate(compression.deflate(data, zip_name), zip_name) == data


def test_def_is_plain_raw_deflate() -> None:
    data = _claims_json()
    packed = compression.deflate(data, "DEF")
    assert zlib.decompress(packed, -15) == data
    assert compression.inflate(_raw_deflate(data), "DEF") == data


def test_d1_needs_its_dictionary() -> None:
    data = _claims_json()
    packed = compression.deflate(data, "D1")
    inflater = zlib.decompressobj(-15, zdict=compression.DICTIONARY_1)
    assert inflater.decompress(packed) == data
    # Read without the dictionary, a D1 stream fails or yields other bytes.
    try:
        without = zlib.decompress(packed, -15)
    except zlib.error:
        return
    assert without != data


def test_d1_is_smaller_than_def_on_a_realistic_card() -> None:
    data = _claims_json()
    with_dictionary = len(compression.deflate(data, "D1"))
    without = len(compression.deflate(data, "DEF"))
    assert with_dictionary < without
    assert without < len(data)
    # The dictionary is worth its place in the format: it saves a good part of the payload.
    assert without - with_dictionary >= 30, (len(data), without, with_dictionary)


def test_d1_knows_the_avif_portrait_header() -> None:
    portrait = _avif_portrait()
    assert portrait[4:12] == b"ftypavif"
    data = _claims_json() + b"\n" + portrait
    with_dictionary = len(compression.deflate(data, "D1"))
    without = len(compression.deflate(data, "DEF"))
    assert compression.inflate(compression.deflate(data, "D1"), "D1") == data
    # The dictionary's AVIF boxes save most of the ~260 header bytes of every photo card.
    assert without - with_dictionary >= 150, (len(data), without, with_dictionary)


@pytest.mark.parametrize("zip_name", ZIP_NAMES)
def test_exactly_the_limit_is_accepted(zip_name: str) -> None:
    data = b"x" * compression.MAX_INFLATED
    assert compression.inflate(compression.deflate(data, zip_name), zip_name) == data


@pytest.mark.parametrize("zip_name", ZIP_NAMES)
def test_one_byte_over_the_limit_is_refused(zip_name: str) -> None:
    data = b"x" * (compression.MAX_INFLATED + 1)
    with pytest.raises(
        EncodingError, match=f"inflates to more than {compression.MAX_INFLATED} bytes"
    ):
        compression.inflate(compression.deflate(data, zip_name), zip_name)


@pytest.mark.parametrize("zip_name", ZIP_NAMES)
def test_decompression_bomb_is_capped(zip_name: str) -> None:
    bomb = compression.deflate(b"\x00" * 50_000_000, zip_name)
    assert len(bomb) < 100_000
    with pytest.raises(EncodingError, match=f"more than {compression.MAX_INFLATED} bytes"):
        compression.inflate(bomb, zip_name)


def test_custom_limit() -> None:
    data = b"y" * 100
    packed = compression.deflate(data, "DEF")
    assert compression.inflate(packed, "DEF", limit=100) == data
    with pytest.raises(EncodingError, match="more than 99 bytes"):
        compression.inflate(packed, "DEF", limit=99)


@pytest.mark.parametrize("zip_name", ZIP_NAMES)
def test_truncated_stream_is_refused(zip_name: str) -> None:
    packed = compression.deflate(_claims_json(), zip_name)
    for end in range(len(packed)):
        with pytest.raises(EncodingError, match=r"truncated|not valid DEFLATE"):
            compression.inflate(packed[:end], zip_name)


@pytest.mark.parametrize("zip_name", ZIP_NAMES)
@pytest.mark.parametrize("trailer", [b"\x00", b"x", b"garbage after the stream"])
def test_trailing_data_is_refused(zip_name: str, trailer: bytes) -> None:
    packed = compression.deflate(_claims_json(), zip_name)
    with pytest.raises(EncodingError, match="data after the end"):
        compression.inflate(packed + trailer, zip_name)


def test_second_stream_after_the_first_is_refused() -> None:
    packed = compression.deflate(b"first", "DEF")
    with pytest.raises(EncodingError, match="data after the end"):
        compression.inflate(packed + compression.deflate(b"second", "DEF"), "DEF")


@pytest.mark.parametrize("data", [b"\xff\xff\xff\xff", b"\x07"])
def test_invalid_deflate_data_is_refused(data: bytes) -> None:
    with pytest.raises(EncodingError, match="not valid DEFLATE"):
        compression.inflate(data, "DEF")


def test_zlib_wrapped_stream_is_not_raw_deflate() -> None:
    with pytest.raises(EncodingError):
        compression.inflate(zlib.compress(_claims_json()), "DEF")


@pytest.mark.parametrize("name", ["XYZ", "", "d1", "DEFLATE", "D2"])
def test_unknown_compression_name_is_refused(name: str) -> None:
    with pytest.raises(EncodingError, match="unknown compression"):
        compression.deflate(b"data", name)
    with pytest.raises(EncodingError, match="unknown compression"):
        compression.inflate(compression.deflate(b"data", "DEF"), name)
