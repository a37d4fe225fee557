"""The published test vectors (tests/vectors/cards.json, docs/FORMAT.md) hold.

Each case must get its stated verdict, and regenerating the vectors from their fixed keys must
give the same bytes (EdDSA is deterministic; for the ES256 case only the signature differs).
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from schemas import qrtext
from tests.vectors import generate
from verifier import Bundle, Reason, Verifier

VECTORS = Path(__file__).parent.parent / "vectors"
DATA: dict[str, Any] = json.loads((VECTORS / "cards.json").read_text(encoding="utf-8"))
CASES = {case["name"]: case for case in DATA["cases"]}


@pytest.mark.parametrize("name", sorted(CASES))
def test_vector_gets_its_verdict(name: str) -> None:
    case = CASES[name]
    at = datetime.fromisoformat(case["at"])
    verifier = Verifier(Bundle.from_json(DATA["bundle"], at=at))
    result = verifier.verify(case["qr"], service=case["service"], at=at)
    assert result.reason is Reason(case["reason"]), result.detail
    if "claims" in case:
        assert result.card is not None
        assert result.card.to_claims() == case["claims"]
    if "portrait" in case:
        assert result.portrait == (VECTORS / case["portrait"]).read_bytes()


def test_vectors_regenerate_byte_for_byte() -> None:
    fresh = {case["name"]: case for case in generate.build()["cases"]}
    assert fresh.keys() == CASES.keys()
    for name, case in CASES.items():
        if name == "es256-default-algorithm":
            old, new = qrtext.unpack(case["qr"]), qrtext.unpack(fresh[name]["qr"])
            assert (old.header, old.payload) == (new.header, new.payload)
        else:
            assert fresh[name]["qr"] == case["qr"], name


def test_bundle_regenerates_byte_for_byte() -> None:
    assert generate.build()["bundle"] == DATA["bundle"]
