"""Payload compression: raw DEFLATE (RFC 1951), optionally with a preset dictionary.

Claims JSON of a few hundred bytes hardly compresses on its own (about 300 -> 250 bytes),
because DEFLATE has seen nothing yet. A preset dictionary of the claim skeleton gives it
something to refer back to and saves a further ~80 bytes, which is one to two QR versions
(measured in ``bench/``). The JWS header says which:

``zip: "DEF"``
    raw DEFLATE, no dictionary (as SMART Health Cards do);
``zip: "D1"``
    raw DEFLATE with :data:`DICTIONARY_1` as preset dictionary (what the issuer writes).

The dictionary is part of the format: changing one byte makes every card unreadable, so a new
dictionary gets a new name. Inflation is capped (:data:`MAX_INFLATED`) and must end exactly at
the end of a complete stream: a decompression bomb costs at most the cap, and trailing or
truncated data is an error.
"""

from __future__ import annotations

import zlib

from schemas.errors import EncodingError

MAX_INFLATED = 4096
"""Bytes of claims JSON a card may inflate to; cards are ~300 bytes."""

DICTIONARY_1 = (
    b'"cnf":{"jwk":{"_sd":["MOHAMMEDAHMEDABDULALIHASSANIVANOVAKUMARSINGHKHANIBRAHIM'
    b'"ph":""bd":19"en":{"hc":[],"ed":[],"tr":[],"bk":[],"ho":[],"bz":[]},"st":["1",'
    b'"fn":"","gn":"","nn":"","zh":"","na":"","iat":17,"nbf":17,"exp":19'
    b'{"v":1,"iss":"CN-ZJ-YWPSB","sub":"","jti":"'
)
"""Preset dictionary ``D1``: claim names, service codes and common values, most frequent last
(DEFLATE codes near distances in fewer bits)."""

DICTIONARIES = {"DEF": b"", "D1": DICTIONARY_1}
DEFAULT_ZIP = "D1"


def deflate(data: bytes, zip_name: str = DEFAULT_ZIP) -> bytes:
    """Compress ``data`` with raw DEFLATE at level 9 and the dictionary named ``zip_name``."""
    dictionary = _dictionary(zip_name)
    compressor = (
        zlib.compressobj(9, zlib.DEFLATED, -15, 9, zlib.Z_DEFAULT_STRATEGY, dictionary)
        if dictionary
        else zlib.compressobj(9, zlib.DEFLATED, -15, 9)
    )
    return compressor.compress(data) + compressor.flush()


def inflate(data: bytes, zip_name: str, *, limit: int = MAX_INFLATED) -> bytes:
    """Decompress a complete raw DEFLATE stream of at most ``limit`` bytes, nothing after it."""
    dictionary = _dictionary(zip_name)
    inflater = zlib.decompressobj(-15, zdict=dictionary) if dictionary else zlib.decompressobj(-15)
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error:
        raise EncodingError("payload is not valid DEFLATE data") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise EncodingError(f"payload inflates to more than {limit} bytes")
    if not inflater.eof:
        raise EncodingError("payload DEFLATE stream is truncated")
    if inflater.unused_data:
        raise EncodingError("payload has data after the end of the DEFLATE stream")
    return out


def _dictionary(zip_name: str) -> bytes:
    try:
        return DICTIONARIES[zip_name]
    except KeyError:
        raise EncodingError(f"unknown compression {zip_name!r}") from None
