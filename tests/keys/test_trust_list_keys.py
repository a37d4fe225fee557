"""A trust list key's members must agree with each other."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from keys.errors import SignedDocumentError
from keys.jwk import generate
from keys.trust_list import KeyState, TrustedKey

SINCE = datetime(2026, 6, 1, tzinfo=UTC)


@pytest.mark.parametrize("state", [KeyState.NEXT, KeyState.ACTIVE, KeyState.RETIRED])
def test_compromised_since_on_a_key_not_compromised_is_refused(state: KeyState) -> None:
    """A signed list that dates the compromise of a key it still calls usable is refused,
    rather than one of its two statements being silently ignored."""
    member = TrustedKey(generate("EdDSA").public_key(), state, SINCE).to_json()
    member["compromised_since"] = int(SINCE.timestamp())
    with pytest.raises(SignedDocumentError, match="compromised_since"):
        TrustedKey.from_json(member)


def test_compromised_since_on_a_compromised_key_is_read() -> None:
    key = TrustedKey(generate("EdDSA").public_key(), KeyState.COMPROMISED, SINCE, None, SINCE)
    assert TrustedKey.from_json(key.to_json()).compromised_since == SINCE
