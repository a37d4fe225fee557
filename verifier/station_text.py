"""The words of the counter station's page, by the key the page uses (``t("show_qr")``).

The page (``station/station.js``) holds no text of its own: ``GET /api/config`` sends these
strings translated into every shipped language, with the reasons' messages and the service's
name, so the clerk can switch language without a reload and the station works offline.
The English here is the message id of the ``fmcard-verifier`` catalogs, under the context
``station``.
"""

from __future__ import annotations

from verifier.i18n import LANGUAGES, N_, gettext, pgettext

STATION_TEXT: dict[str, str] = {
    "title": N_("station", "Counter station"),
    "show_qr": N_("station", "Show the card's QR code"),
    "scan_hint": N_("station", "Hold the QR code to the camera, or use the scanner."),
    "scanner": N_("station", "Scanner (keep this box focused)"),
    "scanner_placeholder": N_("station", "Scanned codes are checked on Enter"),
    "scanner_garbled": N_(
        "station",
        "The scanner typed characters no card has ({chars}): set the scanner to this PC's "
        "keyboard layout, then scan again",
    ),
    "other_inputs": N_("station", "Other ways: paste or photo"),
    "paste": N_("station", "Paste the QR text"),
    "verify": N_("station", "Verify"),
    "photo": N_("station", "Upload a photo of the card"),
    "keys": N_("station", "Keyboard: Enter scan next · Esc clear"),
    "privacy": N_("station", "This station keeps no scan history"),
    "camera_starting": N_("station", "Starting the camera…"),
    "camera_on": N_("station", "Camera on"),
    "camera_off": N_("station", "No camera: use the scanner, paste or a photo"),
    "checking": N_("station", "Checking…"),
    "no_qr_in_photo": N_("station", "No QR code found in the photo"),
    "head_green": N_("station", "VALID"),
    "head_red": N_("station", "NOT VALID"),
    "head_amber": N_("station", "CANNOT CONFIRM"),
    "head_valid_old": N_("station", "VALID · data getting old"),
    "name": N_("station", "Name"),
    "native_name": N_("station", "Native name"),
    "chinese_name": N_("station", "Chinese name"),
    "code": N_("station", "Foreigner code"),
    "nationality": N_("station", "Nationality"),
    "birth_date": N_("station", "Born"),
    "card_dates": N_("station", "Card valid"),
    "entitlement": N_("station", "Entitlement"),
    "no_entitlement": N_("station", "none for {service}"),
    "issuer": N_("station", "Issuer"),
    "no_portrait": N_("station", "No photo on the card: compare the face with the passport"),
    "level_live": N_("station", "Live phone card"),
    "level_copy": N_("station", "Copy of a phone card (a screenshot or a replay)"),
    "level_printed": N_("station", "Printed card or wallet pass: not bound to a phone"),
    "not_disclosed": N_("station", "not disclosed"),
    "portrait_not_disclosed": N_("station", "Photo not disclosed to this service"),
    "portrait_caption": N_("station", "Signed photo: compare with the holder"),
    "range": N_("station", "{start} to {end}"),
    "open_end": N_("station", "open"),
    "status_age": N_("station", "status list {age} old"),
    "status_limit": N_("station", "(limit {age})"),
    "no_status": N_("station", "no status list"),
    "trust_expires": N_("station", "trust list expires in {age}"),
    "trust_expired": N_("station", "trust list EXPIRED"),
    "sync_now": N_("station", "Data too old: sync the station now"),
    "sync_soon": N_("station", "Data getting old: sync the station soon"),
    "reload_error": N_("station", "New data was refused; the held data stays in use"),
    "sync_failed": N_("station", "Last sync failed: {e}"),
    "clock_behind": N_(
        "station", "This counter's clock is {age} behind the issuer's: set the date and time"
    ),
    "clock_ahead": N_(
        "station", "This counter's clock is {age} ahead of the issuer's: set the date and time"
    ),
    "returning": N_("station", "Back to scanning in {s} s · Enter next · Esc clear"),
    "stays": N_("station", "Enter next · Esc clear"),
    "error": N_("station", "Station error: {e}"),
    "unit_min": N_("station", "{n} min"),
    "unit_h": N_("station", "{n} h"),
    "unit_d": N_("station", "{n} d"),
}
"""key -> English text; ``{name}`` fields are filled in by the page."""


def station_text(language: str) -> dict[str, str]:
    """Every string of the page in ``language``."""
    return {key: pgettext(language, "station", text) for key, text in STATION_TEXT.items()}


def service_names(name_en: str) -> dict[str, str]:
    """A service's name (English in the catalogue) in every shipped language."""
    return {language: gettext(language, name_en) for language in LANGUAGES}
