"""Why a card was accepted or refused: stable codes, and words a clerk understands.

The codes are part of the interface (logs, the counter page, ``--json`` output) and never
change meaning; new codes may be added. Messages exist in Chinese and English.
"""

from __future__ import annotations

import enum


class Reason(enum.StrEnum):
    """The outcome of verifying one card, checks in the order ``docs/SECURITY.md`` gives."""

    VALID = "VALID"
    TOO_LARGE = "TOO_LARGE"
    MALFORMED = "MALFORMED"
    UNSUPPORTED_ALGORITHM = "UNSUPPORTED_ALGORITHM"
    TRUST_LIST_EXPIRED = "TRUST_LIST_EXPIRED"
    UNKNOWN_KEY = "UNKNOWN_KEY"
    BAD_SIGNATURE = "BAD_SIGNATURE"
    KEY_COMPROMISED = "KEY_COMPROMISED"
    NOT_YET_VALID = "NOT_YET_VALID"
    EXPIRED = "EXPIRED"
    STATUS_UNKNOWN = "STATUS_UNKNOWN"
    REVOKED = "REVOKED"
    SUSPENDED = "SUSPENDED"
    SUPERSEDED = "SUPERSEDED"
    NOT_ENTITLED = "NOT_ENTITLED"
    PORTRAIT_MISSING = "PORTRAIT_MISSING"

    def message(self, language: str = "en") -> str:
        """Return the clerk-facing message in ``language`` (``"en"`` or ``"zh"``)."""
        return _MESSAGES[self][1 if language.startswith("zh") else 0]


_MESSAGES: dict[Reason, tuple[str, str]] = {
    Reason.VALID: ("Card is valid for this service.", "卡片有效，可办理本项服务。"),
    Reason.TOO_LARGE: (
        "This is not a merchant card: the code is far too large.",
        "这不是商户卡：二维码内容过大。",
    ),
    Reason.MALFORMED: (
        "This is not a readable merchant card. Scan again or ask for the card.",
        "无法识别为商户卡。请重新扫描或查验实体卡。",
    ),
    Reason.UNSUPPORTED_ALGORITHM: (
        "Card uses a signature method that is not accepted.",
        "卡片使用了不被接受的签名方式。",
    ),
    Reason.TRUST_LIST_EXPIRED: (
        "This counter's trust data is out of date. Update the station.",
        "本柜台的信任数据已过期，请更新。",
    ),
    Reason.UNKNOWN_KEY: (
        "Card was not signed by a recognised issuer.",
        "卡片不是由认可的发证机关签发。",
    ),
    Reason.BAD_SIGNATURE: (
        "Card is forged or altered: its signature does not match.",
        "卡片签名不符，可能被伪造或篡改。",
    ),
    Reason.KEY_COMPROMISED: (
        "Card was signed with a key that is no longer trusted.",
        "卡片的签名密钥已不再受信任。",
    ),
    Reason.NOT_YET_VALID: ("Card is not valid yet.", "卡片尚未生效。"),
    Reason.EXPIRED: ("Card has expired.", "卡片已过期。"),
    Reason.STATUS_UNKNOWN: (
        "Card status cannot be confirmed: the revocation data is missing or "
        "too old. Update the station.",
        "无法确认卡片状态：注销数据缺失或过旧，请更新。",
    ),
    Reason.REVOKED: ("Card has been revoked.", "卡片已被注销。"),
    Reason.SUSPENDED: ("Card is suspended.", "卡片已被暂停使用。"),
    Reason.SUPERSEDED: (
        "Card was replaced by a newer card. Ask for the new card.",
        "此卡已被新卡取代，请出示新卡。",
    ),
    Reason.NOT_ENTITLED: ("Holder is not entitled to this service.", "持卡人无权办理本项服务。"),
    Reason.PORTRAIT_MISSING: (
        "This service needs a card with a photo.",
        "本项服务需要带照片的卡片。",
    ),
}
