"""The console's words: a stable key per string, its English here, translations in catalogs.

Officers at the bureau read Chinese; some work with foreign colleagues or read names off
passports in English, and the console speaks every shipped language (``?lang=ko``, remembered
in the ``lang`` cookie; Chinese by default). Form labels also show a second language in small
type (English under Chinese, Chinese under any other), because names and passport fields are
copied from documents printed in Latin script.

Templates call ``t("key", name=value)``. The key is the catalog context (``msgctxt``) and the
English below the message id of the ``fmcard-console`` catalog
(``cardissuer/locale/<lang>/LC_MESSAGES/fmcard-console.po``): a translator sees both, and the
key keeps the call sites stable when the English is reworded. Adding a string: a line here,
then ``./dev i18n`` and a translation in every catalog (``docs/TRANSLATING.md``).

Messages of the domain (``cardissuer.errors``) are English sentences with details such as a
role or a service code. The console does not translate that free text: it shows a translated
title (:data:`ERROR_TITLES` in ``rendering``), then a translated sentence for the kind of
refusal, chosen by the error's stable code (``refusal_<code>``), then the English detail.
"""

from __future__ import annotations

import gettext as _gettext

from fastapi import Request

from cardissuer.i18n import HTML_LANG, LANGUAGE_NAMES, LANGUAGES, RTL_LANGUAGES, catalog
from verifier.i18n import supported

__all__ = [
    "DEFAULT_LANGUAGE",
    "DOMAIN",
    "HTML_LANG",
    "LANGUAGES",
    "LANGUAGE_NAMES",
    "LANG_COOKIE",
    "RTL_LANGUAGES",
    "STRINGS",
    "Language",
    "Translator",
    "language_of",
    "parse_language",
]

Language = str
DOMAIN = "fmcard-console"
DEFAULT_LANGUAGE: Language = "zh"
LANG_COOKIE = "lang"
PLURAL_COUNT = {"search_results": "total", "review_open": "count", "review_age": "count"}
"""For a plural message: the value that chooses the form."""

Message = str | tuple[str, str]
"""English text, or (singular, plural) for a message with plural forms."""


def K_(key: str, english: str) -> str:  # noqa: N802 - the gettext marker convention
    """Mark ``english`` for extraction under the context ``key``."""
    del key
    return english


def KN_(key: str, singular: str, plural: str) -> tuple[str, str]:  # noqa: N802
    """Mark a plural message for extraction under the context ``key``."""
    del key
    return singular, plural


STRINGS: dict[str, Message] = {
    "card_png_front": K_("card_png_front", "Card front (PNG)"),
    "card_png_back": K_("card_png_back", "Card back (PNG)"),
    "card_pdf": K_("card_pdf", "Printable card (PDF)"),
    "apple_wallet": K_("apple_wallet", "Apple Wallet pass"),
    "google_wallet": K_("google_wallet", "Add to Google Wallet"),
    "holder_link_make": K_("holder_link_make", "Link for the holder's phone"),
    "holder_link_title": K_("holder_link_title", "Link for the holder"),
    "holder_link_hint": K_(
        "holder_link_hint",
        "Have the holder scan this code or open the link on their phone; it works only on "
        "the first device that opens it.",
    ),
    "holder_link_expires": K_("holder_link_expires", "Open it before"),
    "back_to_person": K_("back_to_person", "Back to the person"),
    # --- frame ---------------------------------------------------------------------------
    "app_name": K_("app_name", "Foreign Merchant Card · Officer console"),
    "bureau": K_("bureau", "Yiwu Public Security Bureau"),
    "skip_to_content": K_("skip_to_content", "Skip to content"),
    "main_navigation": K_("main_navigation", "Main navigation"),
    "nav_search": K_("nav_search", "Search"),
    "nav_register": K_("nav_register", "Register"),
    "nav_mark_passport": K_("nav_mark_passport", "Report passport"),
    "nav_duplicates": K_("nav_duplicates", "Duplicate reviews"),
    "nav_audit": K_("nav_audit", "Audit log"),
    "logged_in_as": K_("logged_in_as", "Signed in"),
    "logout": K_("logout", "Log out"),
    "language": K_("language", "Language"),
    "times_note": K_("times_note", "Times are China Standard Time (UTC+8)."),
    "role_registrar": K_("role_registrar", "Registrar"),
    "role_supervisor": K_("role_supervisor", "Supervisor"),
    "role_auditor": K_("role_auditor", "Auditor"),
    "role_admin": K_("role_admin", "Administrator"),
    # --- login ---------------------------------------------------------------------------
    "login_title": K_("login_title", "Officer login"),
    "username": K_("username", "Username"),
    "password": K_("password", "Password"),
    "login_button": K_("login_button", "Log in"),
    "login_hint": K_("login_hint", "Sessions expire after {minutes} minutes; then log in again."),
    # --- errors --------------------------------------------------------------------------
    "error_denied": K_("error_denied", "Not allowed"),
    "error_denied_hint": K_("error_denied_hint", "The attempt has been recorded in the audit log."),
    "error_not_found": K_("error_not_found", "Not found"),
    "error_conflict": K_("error_conflict", "This cannot be done"),
    "error_duplicate": K_("error_duplicate", "Possible duplicate registration"),
    "error_photo": K_("error_photo", "The photo cannot be used"),
    "error_auth": K_("error_auth", "Wrong username or password"),
    "error_rate_limited": K_("error_rate_limited", "Too many failed logins; try again later"),
    "error_session": K_("error_session", "Please log in again"),
    "error_invalid": K_("error_invalid", "Please check the form"),
    "error_csrf": K_(
        "error_csrf",
        "The form has expired or did not come from this console. Reload the page and try again.",
    ),
    "error_generic": K_("error_generic", "Something went wrong"),
    "error_page_missing": K_("error_page_missing", "Page not found"),
    "error_internal": K_("error_internal", "The request failed; nothing was changed."),
    "error_detail": K_("error_detail", "Detail"),
    # What each kind of refusal means, by the error's stable code (the detail below it is
    # the server's own English sentence, which may name a role, a service or a field).
    "refusal_access_denied": K_(
        "refusal_access_denied",
        "Your role or office does not allow this; nothing was changed.",
    ),
    "refusal_not_found": K_("refusal_not_found", "There is no such record."),
    "refusal_already_granted": K_(
        "refusal_already_granted",
        "The person already holds this service; withdraw it first to change its dates.",
    ),
    "refusal_card_suspended": K_(
        "refusal_card_suspended",
        "The person's current card is suspended: reinstate or revoke it before issuing another.",
    ),
    "refusal_duplicate_suspected": K_(
        "refusal_duplicate_suspected",
        "A registered person looks like the same person: link the passport to them, or have "
        "a supervisor confirm a new person.",
    ),
    "refusal_idempotency_key_reused": K_(
        "refusal_idempotency_key_reused",
        "This request key was already used for another request.",
    ),
    "refusal_invalid_person": K_(
        "refusal_invalid_person",
        "The person's details do not fit the card's rules (names, nationality or birth date).",
    ),
    "refusal_name_not_printable": K_(
        "refusal_name_not_printable",
        "A name has characters that the card fonts cannot print (field and characters "
        "below); check them against the passport.",
    ),
    "refusal_name_too_long": K_(
        "refusal_name_too_long",
        "A name is too long to print on the card, even on two lines of the smallest type (6 "
        "pt); use the passport's spelling or its abbreviation.",
    ),
    "refusal_invalid_photo": K_(
        "refusal_invalid_photo",
        "The photo is unreadable, too large or of a format that is not accepted.",
    ),
    "refusal_invalid_transition": K_(
        "refusal_invalid_transition",
        "The card's current state does not allow this change.",
    ),
    "refusal_no_entitlement": K_(
        "refusal_no_entitlement",
        "The person has no entitlement: grant at least one service first.",
    ),
    "refusal_passport_blocked": K_(
        "refusal_passport_blocked",
        "This passport was reported lost or stolen: it can never register or be linked again.",
    ),
    "refusal_passport_registered": K_(
        "refusal_passport_registered",
        "This passport already belongs to a registered person: look them up instead.",
    ),
    "refusal_unknown_service": K_(
        "refusal_unknown_service",
        "The service is not in the bureau's catalogue.",
    ),
    "refusal_reason_required": K_(
        "refusal_reason_required",
        "A reason is required to revoke a card.",
    ),
    "refusal_status_list_full": K_(
        "refusal_status_list_full",
        "The status list is full: tell an administrator.",
    ),
    "refusal_wallet_not_configured": K_(
        "refusal_wallet_not_configured",
        "Wallet passes are not configured yet: tell an administrator.",
    ),
    "back_to_search": K_("back_to_search", "Back to search"),
    # --- search --------------------------------------------------------------------------
    "search_title": K_("search_title", "Find a foreign merchant"),
    "search_label": K_("search_label", "Name, foreigner code or passport number"),
    "search_button": K_("search_button", "Search"),
    "search_results": KN_("search_results", "{total} result", "{total} results"),
    "search_results_capped": K_("search_results_capped", "More than {total} results"),
    "search_none": K_("search_none", "No one matches."),
    "recent_persons": K_("recent_persons", "Recently registered"),
    "col_code": K_("col_code", "Code"),
    "col_name": K_("col_name", "Name"),
    "col_nationality": K_("col_nationality", "Nationality"),
    "col_birth": K_("col_birth", "Birth date"),
    "col_office": K_("col_office", "Office"),
    "pagination": K_("pagination", "Pages"),
    "page_prev": K_("page_prev", "Previous"),
    "page_next": K_("page_next", "Next"),
    "page_first": K_("page_first", "First page"),
    "page_of": K_("page_of", "Page {page} of {pages}"),
    # --- person --------------------------------------------------------------------------
    "code_label": K_("code_label", "Foreigner code"),
    "code_read_aloud": K_("code_read_aloud", "read aloud in two groups"),
    "family_name": K_("family_name", "Family name (as in the passport)"),
    "given_names": K_("given_names", "Given names (as in the passport)"),
    "native_name": K_("native_name", "Name in native script"),
    "chinese_name": K_("chinese_name", "Chinese name"),
    "nationality": K_("nationality", "Nationality (3-letter code)"),
    "birth_date": K_("birth_date", "Birth date"),
    "sex": K_("sex", "Sex"),
    "sex_M": K_("sex_M", "Male"),
    "sex_F": K_("sex_F", "Female"),
    "sex_X": K_("sex_X", "Unspecified"),
    "phone": K_("phone", "Phone"),
    "email": K_("email", "Email"),
    "office": K_("office", "Office"),
    "registered_at": K_("registered_at", "Registered"),
    "person_details": K_("person_details", "Person"),
    "portrait": K_("portrait", "Portrait"),
    "portrait_alt": K_("portrait_alt", "Portrait of {name}"),
    "no_portrait": K_("no_portrait", "No portrait"),
    "passports": K_("passports", "Passports"),
    "passport_number": K_("passport_number", "Passport number"),
    "issuing_country": K_("issuing_country", "Issuing country (3-letter code)"),
    "passport_expires": K_("passport_expires", "Passport expires"),
    "recorded_at": K_("recorded_at", "Recorded"),
    "state": K_("state", "State"),
    "actions": K_("actions", "Actions"),
    "passport_state_current": K_("passport_state_current", "Current"),
    "passport_state_replaced": K_("passport_state_replaced", "Replaced"),
    "passport_state_expired": K_("passport_state_expired", "Expired"),
    "passport_state_lost": K_("passport_state_lost", "Reported lost"),
    "passport_state_stolen": K_("passport_state_stolen", "Reported stolen"),
    "change_passport": K_("change_passport", "Change passport"),
    "report_passport": K_("report_passport", "Report"),
    "report_passport_label": K_("report_passport_label", "Report passport {number} lost or stolen"),
    "entitlements": K_("entitlements", "Entitlements"),
    "service": K_("service", "Service"),
    "valid_from": K_("valid_from", "Valid from"),
    "valid_until": K_("valid_until", "Valid until"),
    "granted_at": K_("granted_at", "Granted"),
    "no_entitlements": K_("no_entitlements", "No entitlements yet."),
    "grant_service": K_("grant_service", "Grant a service"),
    "grant_button": K_("grant_button", "Grant"),
    "withdraw": K_("withdraw", "Withdraw"),
    "withdraw_label": K_("withdraw_label", "Withdraw {service}"),
    "valid_until_optional": K_("valid_until_optional", "Valid until (optional)"),
    "all_granted": K_("all_granted", "Every service in the catalogue is granted."),
    "unlimited": K_("unlimited", "open-ended"),
    "cards": K_("cards", "Cards"),
    "serial": K_("serial", "Serial"),
    "issued_at": K_("issued_at", "Issued"),
    "expires_at": K_("expires_at", "Expires"),
    "no_cards": K_("no_cards", "No card has been issued yet."),
    "card_state_active": K_("card_state_active", "Active"),
    "card_state_suspended": K_("card_state_suspended", "Suspended"),
    "card_state_revoked": K_("card_state_revoked", "Revoked"),
    "card_state_superseded": K_("card_state_superseded", "Superseded"),
    "card_state_expired": K_("card_state_expired", "Expired"),
    "issue_card": K_("issue_card", "Issue card"),
    "reissue_card": K_("reissue_card", "Re-issue card"),
    "issue_hint": K_(
        "issue_hint",
        "A new card replaces the current one; at least one entitlement is needed.",
    ),
    "current_card": K_("current_card", "Current card"),
    "earlier_cards": K_("earlier_cards", "Earlier cards"),
    "qr_code": K_("qr_code", "QR code"),
    "qr_alt": K_("qr_alt", "QR code of card {serial}"),
    "download_png": K_("download_png", "Download QR image (PNG)"),
    "download_text": K_("download_text", "Download QR text"),
    "qr_text": K_("qr_text", "QR text"),
    "suspend": K_("suspend", "Suspend"),
    "reinstate": K_("reinstate", "Reinstate"),
    "revoke": K_("revoke", "Revoke"),
    "reason": K_("reason", "Reason"),
    "reason_optional": K_("reason_optional", "Reason (optional)"),
    "revoke_reason": K_("revoke_reason", "Reason for revoking (required)"),
    "revoke_hint": K_("revoke_hint", "Revoking cannot be undone."),
    "revoked_reason": K_("revoked_reason", "Reason for revocation"),
    "update_portrait": K_("update_portrait", "Update portrait"),
    "save_portrait": K_("save_portrait", "Save portrait"),
    # --- photo widget ---------------------------------------------------------------------
    "photo": K_("photo", "Photo"),
    "photo_file": K_("photo_file", "Photo file (JPEG, PNG or WebP, at most {kb} KB)"),
    "camera": K_("camera", "Or take a photo with the camera"),
    "camera_start": K_("camera_start", "Start camera"),
    "camera_take": K_("camera_take", "Take photo"),
    "camera_stop": K_("camera_stop", "Stop camera"),
    "camera_unavailable": K_(
        "camera_unavailable",
        "The camera is not available here; upload a photo file instead.",
    ),
    "camera_taken": K_("camera_taken", "Photo taken; it is saved with the form."),
    "camera_video": K_("camera_video", "Camera picture"),
    "photo_too_large": K_("photo_too_large", "The photo is larger than {kb} KB."),
    "photo_kept": K_("photo_kept", "The photo sent before is kept."),
    "photo_preview": K_("photo_preview", "Photo preview"),
    # --- register ------------------------------------------------------------------------
    "register_title": K_("register_title", "Register a foreign merchant"),
    "passport_section": K_("passport_section", "Current passport"),
    "register_button": K_("register_button", "Register"),
    "required": K_("required", "required"),
    "birth_date_hint": K_(
        "birth_date_hint",
        "YYYY-MM-DD; YYYY-MM or YYYY when the month or day is unknown",
    ),
    "country_hint": K_("country_hint", "for example NGA, RUS, SAU"),
    "duplicates_found": K_(
        "duplicates_found",
        "Someone already registered may be the same person. If it is the same person, link "
        "the passport to them; if not, a supervisor may confirm a new person.",
    ),
    "candidates_caption": K_("candidates_caption", "Registered persons who may be the same"),
    "other_office_person": K_(
        "other_office_person",
        "registered at {office} (another office: names not shown; ask that office)",
    ),
    "candidate_score": K_("candidate_score", "Similarity"),
    "link_passport": K_("link_passport", "Link passport to this person"),
    "register_new": K_("register_new", "Register as a new person"),
    "register_new_hint": K_("register_new_hint", "supervisors only"),
    # --- passport change and reports ------------------------------------------------------
    "passport_change_title": K_("passport_change_title", "Change passport"),
    "new_passport": K_("new_passport", "New passport"),
    "change_reason": K_("change_reason", "What happened to the old passport"),
    "reason_renewed": K_("reason_renewed", "Renewed"),
    "reason_lost": K_("reason_lost", "Lost"),
    "reason_stolen": K_("reason_stolen", "Stolen"),
    "reason_replaced": K_("reason_replaced", "Replaced"),
    "code_stays": K_("code_stays", "The foreigner code stays the same."),
    "save": K_("save", "Save"),
    "cancel": K_("cancel", "Cancel"),
    "mark_title": K_("mark_title", "Report a passport lost or stolen"),
    "mark_hint": K_(
        "mark_hint",
        "A passport reported lost or stolen can never be used to register again.",
    ),
    "mark_state": K_("mark_state", "Report as"),
    "mark_lost": K_("mark_lost", "Lost"),
    "mark_stolen": K_("mark_stolen", "Stolen"),
    "mark_button": K_("mark_button", "Report"),
    # --- duplicate reviews ---------------------------------------------------------------
    "duplicates_title": K_("duplicates_title", "Duplicate review decisions"),
    "decision": K_("decision", "Decision"),
    "decision_new": K_("decision_new", "Confirmed a new person"),
    "decision_linked": K_("decision_linked", "Linked to a registered person"),
    "candidates": K_("candidates", "Candidates"),
    "person": K_("person", "Person"),
    "officer": K_("officer", "Officer"),
    "decided_at": K_("decided_at", "Time"),
    "no_duplicates": K_("no_duplicates", "No decisions yet."),
    # --- audit ---------------------------------------------------------------------------
    "audit_title": K_("audit_title", "Audit log"),
    "audit_newest": K_("audit_newest", "Newest first."),
    "seq": K_("seq", "No."),
    "at": K_("at", "Time"),
    "action": K_("action", "Action"),
    "record": K_("record", "Record"),
    "outcome": K_("outcome", "Outcome"),
    "outcome_ok": K_("outcome_ok", "OK"),
    "outcome_denied": K_("outcome_denied", "Denied"),
    "detail": K_("detail", "Detail"),
    "entry_hash": K_("entry_hash", "Hash"),
    "verify_chain": K_("verify_chain", "Verify chain"),
    "chain_ok": K_(
        "chain_ok",
        "The chain is intact: {entries} entries, {checkpoints} signed checkpoints, head at {head}.",
    ),
    "chain_broken": K_("chain_broken", "The audit chain is broken"),
    "system": K_("system", "system"),
    # --- outcomes after a form ----------------------------------------------------------
    "done_registered": K_("done_registered", "Registered."),
    "done_linked": K_("done_linked", "The passport is linked to this person."),
    "done_passport_changed": K_("done_passport_changed", "Passport changed; the code is the same."),
    "done_passport_marked": K_("done_passport_marked", "The passport is reported."),
    "done_granted": K_("done_granted", "Service granted."),
    "done_withdrawn": K_("done_withdrawn", "Service withdrawn."),
    "done_issued": K_("done_issued", "Card issued."),
    "done_suspended": K_("done_suspended", "Card suspended."),
    "done_reinstated": K_("done_reinstated", "Card reinstated."),
    "done_revoked": K_("done_revoked", "Card revoked."),
    "done_portrait": K_("done_portrait", "Portrait updated."),
    "done_logged_out": K_("done_logged_out", "You have logged out."),
    # --- review queue -----------------------------------------------------------------
    "nav_review": K_("nav_review", "Applications"),
    "review_title": K_("review_title", "Online applications"),
    "review_filters": K_("review_filters", "Filter the applications"),
    "review_kind": K_("review_kind", "Kind"),
    "review_any": K_("review_any", "Any"),
    "review_state": K_("review_state", "State"),
    "review_open_states": K_("review_open_states", "Open (all)"),
    "review_filter": K_("review_filter", "Filter"),
    "review_oldest_first": K_("review_oldest_first", "Oldest first"),
    "review_reference": K_("review_reference", "Reference"),
    "review_waiting": K_("review_waiting", "Waiting"),
    "review_today": K_("review_today", "Today"),
    "review_none": K_("review_none", "No application matches."),
    "review_mail_failed": K_("review_mail_failed", "E-mail not delivered"),
    "review_mail_failed_hint": K_(
        "review_mail_failed_hint",
        "The decision stands, but the e-mail to the applicant was not delivered. Send it "
        "again once the mail server answers.",
    ),
    "review_resend": K_("review_resend", "Send the e-mail again"),
    "review_mailed": K_("review_mailed", "E-mail delivered to the mail server:"),
    "review_application": K_("review_application", "Application {reference}"),
    "review_back": K_("review_back", "Back to the applications"),
    "review_submitted": K_("review_submitted", "Submitted"),
    "review_form": K_("review_form", "What the applicant entered"),
    "review_holder": K_("review_holder", "Card holder"),
    "review_new_passport": K_("review_new_passport", "New passport"),
    "review_services": K_("review_services", "Services requested"),
    "review_question": K_("review_question", "Question to the applicant"),
    "review_answer": K_("review_answer", "The applicant's answer"),
    "review_reason": K_("review_reason", "Reason"),
    "review_dispatched": K_("review_dispatched", "Card sent"),
    "review_mrz": K_("review_mrz", "Machine-readable zone (MRZ)"),
    "review_file_portrait": K_("review_file_portrait", "Portrait"),
    "review_file_passport_page": K_(
        "review_file_passport_page", "Photo of the passport's data page"
    ),
    "review_file_document": K_("review_file_document", "Supporting document"),
    "review_candidates": K_("review_candidates", "Registered persons who may be the applicant"),
    "review_no_duplicates": K_(
        "review_no_duplicates",
        "No registered person has this nationality, birth date and a similar name.",
    ),
    "review_passport_holders": K_(
        "review_passport_holders", "Persons who ever held this passport number"
    ),
    "review_no_passport_holders": K_(
        "review_no_passport_holders", "Nobody has held this passport number."
    ),
    "review_approve_link": K_("review_approve_link", "Approve for this person"),
    "review_decide": K_("review_decide", "Decision"),
    "review_take": K_("review_take", "Take into review"),
    "review_approve": K_("review_approve", "Approve and issue the card"),
    "review_approve_new": K_(
        "review_approve_new", "Approve: register a new person and issue the card"
    ),
    "review_approve_new_confirmed": K_(
        "review_approve_new_confirmed",
        "Approve as a new person despite the candidates (supervisor)",
    ),
    "review_needs_supervisor": K_(
        "review_needs_supervisor",
        "Registered persons look alike: approve for one of them, or have a supervisor "
        "approve a new person.",
    ),
    "review_ask": K_("review_ask", "Ask the applicant"),
    "review_reject": K_("review_reject", "Reject"),
    "review_courier": K_("review_courier", "Courier"),
    "review_tracking": K_("review_tracking", "Tracking number"),
    "review_dispatch": K_("review_dispatch", "Record the dispatch"),
    "done_review_take": K_("done_review_take", "The application is under review."),
    "done_review_ask": K_("done_review_ask", "The question was sent to the applicant."),
    "done_review_reject": K_(
        "done_review_reject", "The application was rejected; the applicant was told why."
    ),
    "done_review_approve": K_(
        "done_review_approve",
        "Approved: the card is issued and the link was sent to the applicant.",
    ),
    "done_review_dispatch": K_(
        "done_review_dispatch", "The dispatch is recorded; the applicant sees it."
    ),
    "done_review_resend": K_("done_review_resend", "The e-mail was sent again."),
    "done_review_mail_failed": K_(
        "done_review_mail_failed",
        "The decision is saved, but its e-mail could not be delivered: send it again later.",
    ),
    "refusal_application_state": K_(
        "refusal_application_state",
        "The application's state does not allow this decision (it may have been decided "
        "meanwhile).",
    ),
    "refusal_invalid_decision": K_(
        "refusal_invalid_decision",
        "The decision is incomplete: write a question, choose a reason or fill in the "
        "courier and number.",
    ),
    "review_open": KN_("review_open", "{count} open application", "{count} open applications"),
    "review_age": KN_("review_age", "{count} day", "{count} days"),
}
"""Every string of the console: key -> English (the catalogs translate it)."""


def _catalog(language: str) -> _gettext.NullTranslations:
    return catalog(DOMAIN, language)


class Translator:
    """Looks up strings in one language; templates call it as ``t("key", name=value)``."""

    def __init__(self, language: Language) -> None:
        self.language = language
        self._catalog = _catalog(language)

    @property
    def other(self) -> Language:
        """The second language of bilingual labels: English under Chinese, else Chinese."""
        return "en" if self.language == "zh" else "zh"

    def __call__(self, key: str, **values: object) -> str:
        entry = STRINGS.get(key)
        if entry is None:  # a missing string shows its key rather than breaking the page
            return key
        if isinstance(entry, tuple):
            count = values.get(PLURAL_COUNT[key])
            n = count if isinstance(count, int) else 0
            text = self._catalog.npgettext(key, entry[0], entry[1], n)
        else:
            text = self._catalog.pgettext(key, entry)
        return text.format(**values) if values else text

    def alt(self, key: str, **values: object) -> str:
        """``key`` in the other language (for bilingual labels)."""
        return Translator(self.other)(key, **values)

    def service(self, name_en: str) -> str:
        """A service's name (English in the catalogue), from the counter's catalog."""
        return self._catalog.gettext(name_en)


def parse_language(value: str | None) -> Language | None:
    """A shipped language named exactly (``ko``), else ``None``."""
    return value if value in LANGUAGES else None


def language_of(request: Request) -> Language:
    """The language asked for in the query, else remembered in the cookie, else Chinese.

    A cookie set by the holder page in a region subtag form (``zh-CN``) counts too."""
    return (
        parse_language(request.query_params.get("lang"))
        or supported(request.cookies.get(LANG_COOKIE))
        or DEFAULT_LANGUAGE
    )
