"""Scanned text: what is stripped around it and where the size limit applies."""

from __future__ import annotations

import pytest

from schemas.qrtext import MAX_QR_TEXT
from verifier._qr import Rejection, scan
from verifier.reason import Reason

ALGORITHMS = frozenset({"ES256", "EdDSA"})
# A text of the maximum length that decodes but is no card: its verdict is MALFORMED, so
# anything else shows the size check (TOO_LARGE) or the stripping at work.
LONGEST = "FM1:" + "0" * (MAX_QR_TEXT - 4)


def reason(text: str) -> Reason:
    with pytest.raises(Rejection) as caught:
        scan(text, allowed_algorithms=ALGORITHMS)
    return caught.value.reason


@pytest.mark.parametrize("around", [" ", "\t", "\r", "\n", "\r\n", " \t"])
def test_scanner_whitespace_is_stripped_before_the_4296_limit(around: str) -> None:
    assert reason(around + LONGEST + around) is Reason.MALFORMED


@pytest.mark.parametrize(
    "around",
    [
        pytest.param("\u00a0", id="no-break-space"),
        pytest.param("\u3000", id="ideographic-space"),
        pytest.param("\x0b", id="vertical-tab"),
        pytest.param("\x0c", id="form-feed"),
        pytest.param("\x1e", id="record-separator"),
        pytest.param("\u2028", id="line-separator"),
    ],
)
def test_other_white_space_is_not_stripped(around: str) -> None:
    """Only space, HT, CR and LF are a scanner's; anything else makes the text unreadable,
    and a text of 4296 characters plus one of them is too large."""
    assert reason(LONGEST[:-3] + around) is Reason.MALFORMED
    assert reason(LONGEST + around) is Reason.TOO_LARGE


def test_more_than_4300_characters_are_too_large_before_stripping() -> None:
    assert reason(LONGEST + "\r\n\r\n") is Reason.MALFORMED
    assert reason(LONGEST + "\r\n\r\n\n") is Reason.TOO_LARGE
