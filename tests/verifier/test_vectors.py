"""The published test vectors (tests/vectors/, docs/FORMAT.md) hold.

Each case must get its stated verdict, each bundle update its outcome, and regenerating the
vectors from their fixed keys must give the same bytes (EdDSA is deterministic; for the ES256
case only the signature differs). The specification is parsed, not copied: the ``D1`` bytes
it prints, the file beside the vectors and :data:`schemas.compression.DICTIONARY_1` must be
one and the same, and every reason code its table names must have a vector.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import zlib
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from schemas import qrtext
from schemas.compression import DICTIONARY_1
from schemas.countries import ICAO_EXTRAS, ISO_3166_ALPHA3
from tests.vectors import generate
from verifier import Bundle, Reason, ReplayMemory, Verifier
from verifier.errors import BundleError

ROOT = Path(__file__).parent.parent.parent
VECTORS = ROOT / "tests" / "vectors"
SPEC = (ROOT / "docs" / "FORMAT.md").read_text(encoding="utf-8")
DATA: dict[str, Any] = json.loads((VECTORS / "cards.json").read_text(encoding="utf-8"))
CASES = {case["name"]: case for case in DATA["cases"]}
UPDATES = {update["name"]: update for update in DATA["bundle_updates"]}


@pytest.mark.parametrize("name", sorted(CASES))
def test_vector_gets_its_verdict(name: str) -> None:
    case = CASES[name]
    at = datetime.fromisoformat(case["at"])
    memory = ReplayMemory() if case.get("scanned_before") else None
    verifier = Verifier(Bundle.from_json(DATA["bundle"], at=at), replay_memory=memory)
    assert verifier.leeway.total_seconds() == DATA["leeway_seconds"]
    assert verifier.proof_skew.total_seconds() == DATA["proof_skew_seconds"]
    if memory is not None:
        first = verifier.verify(case["qr"], service=case["service"], at=at)
        assert first.reason is Reason.VALID, first.detail
    result = verifier.verify(case["qr"], service=case["service"], at=at)
    assert result.reason is Reason(case["reason"]), result.detail
    if "level" in case:
        assert result.level is not None
        assert result.level.value == case["level"]
    if "disclosed" in case:
        assert result.disclosed is not None
        assert sorted(result.disclosed) == case["disclosed"]
        assert result.closed == case["closed"]
    if "claims" in case:
        assert result.card is not None
        assert result.card.to_claims() == case["claims"]
    if "portrait" in case:
        assert result.portrait == (VECTORS / case["portrait"]).read_bytes()


@pytest.mark.parametrize("name", sorted(n for n, c in CASES.items() if "proof_input" in c))
def test_proof_input_is_published_byte_for_byte(name: str) -> None:
    """The exact bytes a phone signs (FORMAT.md 11.4), rebuilt from the QR with the stdlib:
    what a phone page checks its own proof input against."""
    case = CASES[name]
    parts = qrtext.unpack(case["qr"])
    jws = b".".join(
        base64.urlsafe_b64encode(p).rstrip(b"=") for p in (parts.header, parts.payload,
                                                          parts.signature)
    )  # fmt: skip
    slot = int.from_bytes(parts.attachments[1][:4], "big")
    expected = (
        b"FM2-proof\x00"
        + hashlib.sha256(jws).digest()
        + hashlib.sha256(parts.attachments[0]).digest()
        + slot.to_bytes(4, "big")
        + case["service"].encode()
    )
    assert bytes.fromhex(case["proof_input"]) == expected
    assert slot * 10 == int(datetime.fromisoformat(case["at"]).timestamp())


@pytest.mark.parametrize("name", sorted(UPDATES))
def test_bundle_update_gets_its_outcome(name: str) -> None:
    update = UPDATES[name]
    at = datetime.fromisoformat(update["at"])
    held = Bundle.from_json(DATA["bundle"], at=at)
    if update["outcome"] == "refused":
        with pytest.raises(BundleError):
            held.update(update["update"], at=at)
    else:
        assert update["outcome"] == "accepted"
        fresh = held.update(update["update"], at=at)
        assert fresh.trust_list_token == update["update"]["trust_list"]


def test_vectors_regenerate_byte_for_byte() -> None:
    fresh = {case["name"]: case for case in generate.build()["cases"]}
    assert fresh.keys() == CASES.keys()
    for name, case in CASES.items():
        assert fresh[name] == case, name  # ES256 too: signed with RFC 6979 nonces


def test_bundles_regenerate_byte_for_byte() -> None:
    fresh = generate.build()
    assert fresh["bundle"] == DATA["bundle"]
    assert fresh["bundle_updates"] == DATA["bundle_updates"]


def _spec_section(title: str) -> str:
    match = re.search(rf"^#+ {re.escape(title)}\n(.*?)(?=^## |\Z)", SPEC, re.M | re.S)
    assert match is not None, f"docs/FORMAT.md has no section {title!r}"
    return match.group(1)


def test_dictionary_d1_is_published_exactly() -> None:
    """The spec's base64 block, its stated length and SHA-256, the file beside the vectors and
    the constant the code compresses with are the same bytes."""
    section = _spec_section("Appendix A. The D1 dictionary")
    block = re.search(r"```text\n(.*?)```", section, re.S)
    length = re.search(r"Length: (\d+) bytes", section)
    digest = re.search(r"SHA-256: `([0-9a-f]{64})`", section)
    assert block is not None
    assert length is not None
    assert digest is not None
    printed = base64.b64decode("".join(block.group(1).split()), validate=True)
    published = (VECTORS / DATA["dictionary"]).read_bytes()
    assert printed == published == DICTIONARY_1
    assert int(length.group(1)) == len(DICTIONARY_1)
    assert digest.group(1) == hashlib.sha256(DICTIONARY_1).hexdigest()
    assert f"`{digest.group(1)}`" in _spec_section("4. Payload and compression")


_BASE45 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"


def _independent_payload(text: str, dictionary: bytes) -> bytes:
    """Inflate a card's payload with nothing but the spec, the stdlib and ``dictionary``:
    Base45, the container's varint parts and raw DEFLATE (no signature check)."""
    body = [_BASE45.index(char) for char in text.strip(" \t\r\n").removeprefix("FM1:")]
    data = bytearray()
    for i in range(0, len(body), 3):
        group = body[i : i + 3]
        value = sum(digit * 45**power for power, digit in enumerate(group))
        data += value.to_bytes(2 if len(group) == 3 else 1, "big")
    parts, offset = [], 0
    while offset < len(data):
        length = shift = 0
        while True:
            byte = data[offset]
            offset += 1
            length |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        parts.append(bytes(data[offset : offset + length]))
        offset += length
    header = parts[0]
    zip_name = "DEF" if header[:1] == b"\x01" and header[2] == 1 else "D1"
    if header[:1] == b"{":
        zip_name = json.loads(header)["zip"]
    inflater = zlib.decompressobj(-15, zdict=dictionary) if zip_name == "D1" else None
    return (inflater or zlib.decompressobj(-15)).decompress(parts[1])


@pytest.mark.parametrize("name", sorted(n for n, c in CASES.items() if "claims" in c))
def test_valid_vector_decodes_with_the_published_dictionary_alone(name: str) -> None:
    """What an outside implementer has (the spec's dictionary file) is enough to read every
    card, not only the ones that happen to use the bytes the vectors reveal."""
    case = CASES[name]
    inflated = _independent_payload(case["qr"], (VECTORS / DATA["dictionary"]).read_bytes())
    assert json.loads(inflated.partition(b"\n")[0]) == case["claims"]


def _spec_reason_codes() -> list[str]:
    table = _spec_section("Reason codes")
    codes = [code for row in re.findall(r"^\|([^|\n]*)\|", table, re.M)
             for code in re.findall(r"`([A-Z_]+)`", row)]  # fmt: skip
    assert codes, "no reason codes found in the spec's table"
    return codes


def test_spec_names_every_reason_and_no_other() -> None:
    assert set(_spec_reason_codes()) == {reason.value for reason in Reason}


@pytest.mark.parametrize("code", _spec_reason_codes())
def test_every_reason_of_the_spec_has_a_vector(code: str) -> None:
    assert any(case["reason"] == code for case in CASES.values()), code


def test_nationality_codes_are_published_exactly() -> None:
    """Appendix B lists exactly the codes the verifier accepts: an outside verifier built
    from the spec refuses and accepts the same nationalities."""
    section = _spec_section("Appendix B. Nationality codes")
    block = re.search(r"```text\n(.*?)```", section, re.S)
    assert block is not None
    assert set(block.group(1).split()) == ISO_3166_ALPHA3
    assert len(block.group(1).split()) == len(ISO_3166_ALPHA3)
    assert set(re.findall(r"`([A-Z]{3})`", section)) == ICAO_EXTRAS
