"""Payload compression: raw DEFLATE (RFC 1951), optionally with a preset dictionary.

Claims JSON of a few hundred bytes hardly compresses on its own (about 300 -> 250 bytes),
because DEFLATE has seen nothing yet. A preset dictionary of the claim skeleton gives it
something to refer back to and saves a further ~80 bytes; the same dictionary holds the
header boxes of an AVIF portrait, which saves ~250 bytes of every card with a photo. That is
one to three QR versions (measured in ``bench/``). The JWS header says which:

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

MAX_INFLATED = 8192
"""Bytes a card payload may inflate to: claims (~300 bytes) and a portrait (~500-800 bytes)."""

_AVIF_HEADER = bytes.fromhex(
    "0000001c667479706176696600000000617669666d6966316d696166000000e96d6574610000000000000021"
    "68646c72000000000000000070696374000000000000000000000000000000000e7069746d00000000000100"
    "00001e696c6f6300000000440000010001000000010000010d000001960000002869696e6600000000000100"
    "00001a696e6665020000000001000061763031436f6c6f72000000006869707270000000496970636f000000"
    "14697370650000000000000060000000780000000e706978690000000001080000000c6176314381001c0000"
    "000013636f6c726e636c780001000d0006800000001769706d61000000000000000100010401028304"
)
"""The 261 header bytes (``ftyp`` and ``meta`` boxes) of a 96x120 monochrome AVIF portrait as
libavif writes them. Every portrait's header differs from this only in its length field, so
DEFLATE codes the ~260 bytes of boxes in a few back-references."""

DICTIONARY_1 = _AVIF_HEADER + (
    b'"cnf":{"jwk":{"_sd":["MOHAMMEDAHMEDABDULALIHASSANIVANOVAKUMARSINGHKHANIBRAHIM'
    b'"bd":19"en":{"hc":[],"ed":[],"tr":[],"bk":[],"ho":[],"bz":[]},"st":["1",'
    b'"fn":"","gn":"","nn":"","zh":"","na":"","iat":17,"nbf":17,"exp":19'
    b'{"v":1,"iss":"CN-ZJ-YWPSB","sub":"","jti":"'
)
"""Preset dictionary ``D1``: an AVIF portrait header, then claim names, service codes and
common values, most frequent last (DEFLATE codes near distances in fewer bits)."""

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
