"""Why a card was accepted or refused: stable codes, and words a clerk understands.

The codes are part of the interface (logs, the counter page, ``--json`` output) and never
change meaning; new codes may be added. Messages exist in Chinese and English (for the clerk)
and in Russian and Arabic (for the holder standing at the counter: many of Yiwu's foreign
merchants read one of these better than English).
"""

from __future__ import annotations

import enum

LANGUAGES = ("en", "zh", "ru", "ar")
"""Languages of the messages, in the order of the tuples below."""
RTL_LANGUAGES = frozenset({"ar"})


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
    DISCLOSURE_INVALID = "DISCLOSURE_INVALID"
    PROOF_MISSING = "PROOF_MISSING"
    PROOF_INVALID = "PROOF_INVALID"
    PROOF_STALE = "PROOF_STALE"
    PROOF_REPLAYED = "PROOF_REPLAYED"
    LIVE_REQUIRED = "LIVE_REQUIRED"
    NOT_ENTITLED = "NOT_ENTITLED"
    PORTRAIT_MISSING = "PORTRAIT_MISSING"

    def message(self, language: str = "en") -> str:
        """Return the message in ``language``: ``"zh"``, ``"en"``, ``"ru"`` or ``"ar"``
        (a tag such as ``"zh-CN"`` counts by its first part; anything else gives English)."""
        primary = language.split("-", 1)[0].split("_", 1)[0].lower()
        return _MESSAGES[self][LANGUAGES.index(primary) if primary in LANGUAGES else 0]


class Level(enum.StrEnum):
    """How a card was shown (``docs/FORMAT.md`` 11.5): a live phone card, a copy of a phone
    card (screenshot, replay, a proof that does not fit), or a printed card."""

    LIVE = "live"
    COPY = "copy"
    PRINTED = "printed"


_MESSAGES: dict[Reason, tuple[str, str, str, str]] = {
    Reason.VALID: (
        "Card is valid for this service.",
        "卡片有效，可办理本项服务。",
        "Карта действительна для этой услуги.",
        "البطاقة صالحة لهذه الخدمة.",
    ),
    Reason.TOO_LARGE: (
        "This is not a merchant card: the code is far too large.",
        "这不是商户卡：二维码内容过大。",
        "Это не карта торговца: код слишком большой.",
        "هذه ليست بطاقة تاجر: الرمز كبير جدًا.",
    ),
    Reason.MALFORMED: (
        "This is not a readable merchant card. Scan again or ask for the card.",
        "无法识别为商户卡。请重新扫描或查验实体卡。",
        "Карту торговца не удалось прочитать. Отсканируйте ещё раз или покажите карту.",
        "تعذّرت قراءة بطاقة التاجر. امسح الرمز مرة أخرى أو قدّم البطاقة.",
    ),
    Reason.UNSUPPORTED_ALGORITHM: (
        "Card uses a signature method that is not accepted.",
        "卡片使用了不被接受的签名方式。",
        "Карта подписана неприемлемым способом.",
        "البطاقة موقّعة بطريقة توقيع غير مقبولة.",
    ),
    Reason.TRUST_LIST_EXPIRED: (
        "This counter's trust data is out of date. Update the station.",
        "本柜台的信任数据已过期，请更新。",
        "Данные доверия на этой стойке устарели. Карту сейчас нельзя проверить.",
        "بيانات الثقة في هذا المكتب قديمة. لا يمكن التحقق من البطاقة الآن.",
    ),
    Reason.UNKNOWN_KEY: (
        "Card was not signed by a recognised issuer.",
        "卡片不是由认可的发证机关签发。",
        "Карта подписана не признанным органом выдачи.",
        "البطاقة غير موقّعة من جهة إصدار معترف بها.",
    ),
    Reason.BAD_SIGNATURE: (
        "Card is forged or altered: its signature does not match.",
        "卡片签名不符，可能被伪造或篡改。",
        "Подпись карты не совпадает: карта подделана или изменена.",
        "توقيع البطاقة غير مطابق: البطاقة مزوّرة أو معدّلة.",
    ),
    Reason.KEY_COMPROMISED: (
        "Card was signed with a key that is no longer trusted.",
        "卡片的签名密钥已不再受信任。",
        "Карта подписана ключом, которому больше не доверяют.",
        "البطاقة موقّعة بمفتاح لم يعد موثوقًا.",
    ),
    Reason.NOT_YET_VALID: (
        "Card is not valid yet.",
        "卡片尚未生效。",
        "Карта ещё не действует.",
        "البطاقة لم تصبح صالحة بعد.",
    ),
    Reason.EXPIRED: (
        "Card has expired.",
        "卡片已过期。",
        "Срок действия карты истёк.",
        "انتهت صلاحية البطاقة.",
    ),
    Reason.STATUS_UNKNOWN: (
        "Card status cannot be confirmed: the revocation data is missing or "
        "too old. Update the station.",
        "无法确认卡片状态：注销数据缺失或过旧，请更新。",
        "Статус карты нельзя подтвердить: данные об отзыве отсутствуют или устарели.",
        "لا يمكن تأكيد حالة البطاقة: بيانات الإلغاء مفقودة أو قديمة.",
    ),
    Reason.REVOKED: (
        "Card has been revoked.",
        "卡片已被注销。",
        "Карта отозвана.",
        "تم إلغاء البطاقة.",
    ),
    Reason.SUSPENDED: (
        "Card is suspended.",
        "卡片已被暂停使用。",
        "Действие карты приостановлено.",
        "البطاقة موقوفة مؤقتًا.",
    ),
    Reason.SUPERSEDED: (
        "Card was replaced by a newer card. Ask for the new card.",
        "此卡已被新卡取代，请出示新卡。",
        "Карта заменена новой. Покажите новую карту.",
        "تم استبدال البطاقة ببطاقة أحدث. يرجى تقديم البطاقة الجديدة.",
    ),
    Reason.DISCLOSURE_INVALID: (
        "The phone card's data was altered: a disclosed item does not match the card.",
        "手机卡数据被篡改：披露的信息与卡片不符。",
        "Данные карты в телефоне изменены: раскрытые сведения не совпадают с картой.",
        "تم تعديل بيانات بطاقة الهاتف: المعلومات المعروضة لا تطابق البطاقة.",
    ),
    Reason.PROOF_MISSING: (
        "This is a copy of a phone card, not the live card. Ask for the holder's phone.",
        "这是手机卡的副本，不是实时卡。请查验持卡人的手机。",
        "Это копия карты из телефона, а не живая карта. Попросите телефон владельца.",
        "هذه نسخة من بطاقة الهاتف وليست البطاقة الحية. اطلب هاتف حامل البطاقة.",
    ),
    Reason.PROOF_INVALID: (
        "This phone card was not shown from its holder's phone for this service.",
        "此手机卡并非由持卡人本人手机为本项服务出示。",
        "Эта карта показана не с телефона владельца или не для этой услуги.",
        "لم تُعرض بطاقة الهاتف هذه من هاتف صاحبها أو لهذه الخدمة.",
    ),
    Reason.PROOF_STALE: (
        "This phone card code is not current (a screenshot, or the phone's clock is wrong). "
        "Ask the holder to show the live code.",
        "手机卡二维码已失效（截图或手机时间错误）。请持卡人出示实时二维码。",
        "Код карты устарел (снимок экрана или неверное время в телефоне). "
        "Попросите показать живой код.",
        "رمز بطاقة الهاتف غير حالي (لقطة شاشة أو ساعة الهاتف خاطئة). اطلب عرض الرمز الحي.",
    ),
    Reason.PROOF_REPLAYED: (
        "This phone card code was already scanned. Ask the holder to show the next code.",
        "此手机卡二维码已被扫描过。请持卡人出示下一个二维码。",
        "Этот код карты уже сканировали. Попросите показать следующий код.",
        "تم مسح رمز بطاقة الهاتف هذا من قبل. اطلب عرض الرمز التالي.",
    ),
    Reason.LIVE_REQUIRED: (
        "This service needs the live card on the holder's phone; a printed card is not accepted.",
        "本项服务需要持卡人手机上的实时卡，不接受纸质卡。",
        "Для этой услуги нужна живая карта в телефоне владельца; печатная карта не принимается.",
        "تتطلب هذه الخدمة البطاقة الحية على هاتف حاملها؛ البطاقة المطبوعة غير مقبولة.",
    ),
    Reason.NOT_ENTITLED: (
        "Holder is not entitled to this service.",
        "持卡人无权办理本项服务。",
        "У владельца карты нет права на эту услугу.",
        "لا يحق لحامل البطاقة الحصول على هذه الخدمة.",
    ),
    Reason.PORTRAIT_MISSING: (
        "This service needs a card with a photo.",
        "本项服务需要带照片的卡片。",
        "Для этой услуги нужна карта с фотографией.",
        "تتطلب هذه الخدمة بطاقة تحمل صورة.",
    ),
}
