# ruff: noqa: RUF001 - Chinese text uses full-width punctuation on purpose.
"""The console's words in Chinese and English.

Officers at the bureau read Chinese; some work with foreign colleagues or read names off
passports in English, so every page can switch language (``?lang=zh|en``, remembered in the
``lang`` cookie; Chinese by default). Form labels also show the other language in small type,
because names and passport fields are copied from documents printed in Latin script.

Messages of the domain (``cardissuer.errors``) are English sentences with details such as a
role or a service code. The console does not translate that free text: it shows a translated
title (:data:`ERROR_TITLES` in ``rendering``), then a translated sentence for the kind of
refusal, chosen by the error's stable code (``refusal_<code>``), then the English detail.
"""

from __future__ import annotations

from typing import Literal

from fastapi import Request

Language = Literal["zh", "en"]
LANGUAGES: tuple[Language, ...] = ("zh", "en")
DEFAULT_LANGUAGE: Language = "zh"
LANG_COOKIE = "lang"

STRINGS: dict[str, tuple[str, str]] = {
    "card_png_front": ("卡片正面 PNG", "Card front (PNG)"),
    "card_png_back": ("卡片背面 PNG", "Card back (PNG)"),
    "card_pdf": ("打印版 PDF", "Printable card (PDF)"),
    "apple_wallet": ("Apple 钱包", "Apple Wallet pass"),
    "google_wallet": ("Google 钱包", "Add to Google Wallet"),
    "holder_link_make": ("生成持卡人链接", "Link for the holder's phone"),
    "holder_link_title": ("持卡人链接", "Link for the holder"),
    "holder_link_hint": (
        "请持卡人用手机扫描此二维码或打开链接；链接只能在第一次打开它的设备上使用。",
        "Have the holder scan this code or open the link on their phone; it works only on the "
        "first device that opens it.",
    ),
    "holder_link_expires": ("首次打开期限", "Open it before"),
    "back_to_person": ("返回人员页面", "Back to the person"),
    # --- frame ---------------------------------------------------------------------------
    "app_name": ("外国商人卡 · 警务控制台", "Foreign Merchant Card · Officer console"),
    "bureau": ("义乌市公安局", "Yiwu Public Security Bureau"),
    "skip_to_content": ("跳到正文", "Skip to content"),
    "main_navigation": ("主导航", "Main navigation"),
    "nav_search": ("查询", "Search"),
    "nav_register": ("登记", "Register"),
    "nav_mark_passport": ("护照挂失", "Report passport"),
    "nav_duplicates": ("重复审核", "Duplicate reviews"),
    "nav_audit": ("审计日志", "Audit log"),
    "logged_in_as": ("当前警员", "Signed in"),
    "logout": ("退出", "Log out"),
    "language": ("语言", "Language"),
    "times_note": ("时间均为北京时间（UTC+8）。", "Times are China Standard Time (UTC+8)."),
    "role_registrar": ("登记员", "Registrar"),
    "role_supervisor": ("主管", "Supervisor"),
    "role_auditor": ("审计员", "Auditor"),
    "role_admin": ("管理员", "Administrator"),
    # --- login ---------------------------------------------------------------------------
    "login_title": ("警员登录", "Officer login"),
    "username": ("用户名", "Username"),
    "password": ("密码", "Password"),
    "login_button": ("登录", "Log in"),
    "login_hint": (
        "会话在 {minutes} 分钟后过期，届时请重新登录。",
        "Sessions expire after {minutes} minutes; then log in again.",
    ),
    # --- errors --------------------------------------------------------------------------
    "error_denied": ("无权操作", "Not allowed"),
    "error_denied_hint": (
        "此次尝试已记入审计日志。",
        "The attempt has been recorded in the audit log.",
    ),
    "error_not_found": ("未找到", "Not found"),
    "error_conflict": ("无法执行", "This cannot be done"),
    "error_duplicate": ("疑似重复登记", "Possible duplicate registration"),
    "error_photo": ("照片无法使用", "The photo cannot be used"),
    "error_auth": ("用户名或密码错误", "Wrong username or password"),
    "error_rate_limited": (
        "登录失败次数过多，请稍后再试",
        "Too many failed logins; try again later",
    ),
    "error_session": ("请重新登录", "Please log in again"),
    "error_invalid": ("请检查填写的内容", "Please check the form"),
    "error_csrf": (
        "表单已过期或并非来自本控制台。请刷新页面后重试。",
        "The form has expired or did not come from this console. Reload the page and try again.",
    ),
    "error_generic": ("出错了", "Something went wrong"),
    "error_page_missing": ("页面不存在", "Page not found"),
    "error_internal": ("请求失败，未做任何更改。", "The request failed; nothing was changed."),
    "error_detail": ("详细信息", "Detail"),
    # What each kind of refusal means, by the error's stable code (the detail below it is
    # the server's own English sentence, which may name a role, a service or a field).
    "refusal_access_denied": (
        "您的角色或所属办公室不允许此操作，未做任何更改。",
        "Your role or office does not allow this; nothing was changed.",
    ),
    "refusal_not_found": ("没有这条记录。", "There is no such record."),
    "refusal_already_granted": (
        "此人已享有该服务；如需更改期限，请先撤销再重新授予。",
        "The person already holds this service; withdraw it first to change its dates.",
    ),
    "refusal_card_suspended": (
        "此人的现有卡片已暂停：请先恢复或吊销，再签发新卡。",
        "The person's current card is suspended: reinstate or revoke it before issuing another.",
    ),
    "refusal_duplicate_suspected": (
        "已登记人员中有疑似同一人：请将护照关联到该人员，或由主管确认为新人员。",
        "A registered person looks like the same person: link the passport to them, or have a "
        "supervisor confirm a new person.",
    ),
    "refusal_idempotency_key_reused": (
        "该请求编号已用于另一请求。",
        "This request key was already used for another request.",
    ),
    "refusal_invalid_person": (
        "人员信息不符合卡片的规则（姓名、国籍或出生日期）。",
        "The person's details do not fit the card's rules (names, nationality or birth date).",
    ),
    "refusal_name_not_printable": (
        "姓名中有卡片字体无法打印的字符（见下方所列字段和字符），请按护照核对后改正。",
        "A name has characters that the card fonts cannot print (field and characters below); "
        "check them against the passport.",
    ),
    "refusal_name_too_long": (
        "姓名过长，即使分两行并使用最小字号（6 磅）也无法印在卡片上，请使用护照上的写法或缩写。",
        "A name is too long to print on the card, even on two lines of the smallest type "
        "(6 pt); use the passport's spelling or its abbreviation.",
    ),
    "refusal_invalid_photo": (
        "照片无法读取、过大，或格式不被接受。",
        "The photo is unreadable, too large or of a format that is not accepted.",
    ),
    "refusal_invalid_transition": (
        "卡片的当前状态不允许此更改。",
        "The card's current state does not allow this change.",
    ),
    "refusal_no_entitlement": (
        "此人没有任何服务权限：请先授予至少一项服务。",
        "The person has no entitlement: grant at least one service first.",
    ),
    "refusal_passport_blocked": (
        "该护照已挂失或被盗，不能再用于登记或关联。",
        "This passport was reported lost or stolen: it can never register or be linked again.",
    ),
    "refusal_passport_registered": (
        "该护照已属于一名已登记人员：请查找该人员。",
        "This passport already belongs to a registered person: look them up instead.",
    ),
    "refusal_unknown_service": (
        "该服务不在本局的服务目录中。",
        "The service is not in the bureau's catalogue.",
    ),
    "refusal_reason_required": (
        "吊销卡片必须填写原因。",
        "A reason is required to revoke a card.",
    ),
    "refusal_status_list_full": (
        "状态列表已满：请通知管理员。",
        "The status list is full: tell an administrator.",
    ),
    "refusal_wallet_not_configured": (
        "电子钱包卡券尚未配置：请通知管理员。",
        "Wallet passes are not configured yet: tell an administrator.",
    ),
    "back_to_search": ("返回查询", "Back to search"),
    # --- search --------------------------------------------------------------------------
    "search_title": ("查询外国商人", "Find a foreign merchant"),
    "search_label": ("姓名、外国人编码或护照号码", "Name, foreigner code or passport number"),
    "search_button": ("查询", "Search"),
    "search_results": ("共 {total} 条结果", "{total} result(s)"),
    "search_results_capped": ("超过 {total} 条结果", "More than {total} results"),
    "search_none": ("没有找到匹配的人员。", "No one matches."),
    "recent_persons": ("最近登记的人员", "Recently registered"),
    "col_code": ("编码", "Code"),
    "col_name": ("姓名", "Name"),
    "col_nationality": ("国籍", "Nationality"),
    "col_birth": ("出生日期", "Birth date"),
    "col_office": ("登记单位", "Office"),
    "pagination": ("分页", "Pages"),
    "page_prev": ("上一页", "Previous"),
    "page_next": ("下一页", "Next"),
    "page_first": ("第一页", "First page"),
    "page_of": ("第 {page} 页，共 {pages} 页", "Page {page} of {pages}"),
    # --- person --------------------------------------------------------------------------
    "code_label": ("外国人编码", "Foreigner code"),
    "code_read_aloud": ("分两组读出", "read aloud in two groups"),
    "family_name": ("姓（按护照拼写）", "Family name (as in the passport)"),
    "given_names": ("名（按护照拼写）", "Given names (as in the passport)"),
    "native_name": ("本国文字姓名", "Name in native script"),
    "chinese_name": ("中文名", "Chinese name"),
    "nationality": ("国籍（三位字母代码）", "Nationality (3-letter code)"),
    "birth_date": ("出生日期", "Birth date"),
    "sex": ("性别", "Sex"),
    "sex_M": ("男", "Male"),
    "sex_F": ("女", "Female"),
    "sex_X": ("未说明", "Unspecified"),
    "phone": ("电话", "Phone"),
    "email": ("电子邮件", "Email"),
    "office": ("登记单位", "Office"),
    "registered_at": ("登记时间", "Registered"),
    "person_details": ("个人信息", "Person"),
    "portrait": ("照片", "Portrait"),
    "portrait_alt": ("{name} 的照片", "Portrait of {name}"),
    "no_portrait": ("无照片", "No portrait"),
    "passports": ("护照记录", "Passports"),
    "passport_number": ("护照号码", "Passport number"),
    "issuing_country": ("签发国（三位字母代码）", "Issuing country (3-letter code)"),
    "passport_expires": ("护照有效期至", "Passport expires"),
    "recorded_at": ("记录时间", "Recorded"),
    "state": ("状态", "State"),
    "actions": ("操作", "Actions"),
    "passport_state_current": ("当前有效", "Current"),
    "passport_state_replaced": ("已更换", "Replaced"),
    "passport_state_expired": ("已过期", "Expired"),
    "passport_state_lost": ("已挂失（遗失）", "Reported lost"),
    "passport_state_stolen": ("已挂失（被盗）", "Reported stolen"),
    "change_passport": ("更换护照", "Change passport"),
    "report_passport": ("挂失", "Report"),
    "report_passport_label": ("挂失护照 {number}", "Report passport {number} lost or stolen"),
    "entitlements": ("服务权益", "Entitlements"),
    "service": ("服务", "Service"),
    "valid_from": ("生效时间", "Valid from"),
    "valid_until": ("有效期至", "Valid until"),
    "granted_at": ("授予时间", "Granted"),
    "no_entitlements": ("尚无服务权益。", "No entitlements yet."),
    "grant_service": ("授予服务", "Grant a service"),
    "grant_button": ("授予", "Grant"),
    "withdraw": ("撤销", "Withdraw"),
    "withdraw_label": ("撤销服务 {service}", "Withdraw {service}"),
    "valid_until_optional": ("有效期至（可选）", "Valid until (optional)"),
    "all_granted": ("目录中的服务均已授予。", "Every service in the catalogue is granted."),
    "unlimited": ("不限", "open-ended"),
    "cards": ("卡片", "Cards"),
    "serial": ("卡号", "Serial"),
    "issued_at": ("签发时间", "Issued"),
    "expires_at": ("到期时间", "Expires"),
    "no_cards": ("尚未签发卡片。", "No card has been issued yet."),
    "card_state_active": ("有效", "Active"),
    "card_state_suspended": ("已暂停", "Suspended"),
    "card_state_revoked": ("已吊销", "Revoked"),
    "card_state_superseded": ("已被新卡替换", "Superseded"),
    "card_state_expired": ("已过期", "Expired"),
    "issue_card": ("签发卡片", "Issue card"),
    "reissue_card": ("重新签发卡片", "Re-issue card"),
    "issue_hint": (
        "新卡将替换当前卡片；签发前须至少有一项服务权益。",
        "A new card replaces the current one; at least one entitlement is needed.",
    ),
    "current_card": ("当前卡片", "Current card"),
    "earlier_cards": ("以往卡片", "Earlier cards"),
    "qr_code": ("二维码", "QR code"),
    "qr_alt": ("卡片 {serial} 的二维码", "QR code of card {serial}"),
    "download_png": ("下载二维码图片（PNG）", "Download QR image (PNG)"),
    "download_text": ("下载二维码文本", "Download QR text"),
    "qr_text": ("二维码文本", "QR text"),
    "suspend": ("暂停", "Suspend"),
    "reinstate": ("恢复", "Reinstate"),
    "revoke": ("吊销", "Revoke"),
    "reason": ("原因", "Reason"),
    "reason_optional": ("原因（可选）", "Reason (optional)"),
    "revoke_reason": ("吊销原因（必填）", "Reason for revoking (required)"),
    "revoke_hint": ("吊销不可撤回。", "Revoking cannot be undone."),
    "revoked_reason": ("吊销原因", "Reason for revocation"),
    "update_portrait": ("更新照片", "Update portrait"),
    "save_portrait": ("保存照片", "Save portrait"),
    # --- photo widget ---------------------------------------------------------------------
    "photo": ("照片", "Photo"),
    "photo_file": (
        "上传照片文件（JPEG、PNG 或 WebP，最大 {kb} KB）",
        "Photo file (JPEG, PNG or WebP, at most {kb} KB)",
    ),
    "camera": ("或用摄像头拍照", "Or take a photo with the camera"),
    "camera_start": ("打开摄像头", "Start camera"),
    "camera_take": ("拍照", "Take photo"),
    "camera_stop": ("关闭摄像头", "Stop camera"),
    "camera_unavailable": (
        "此浏览器无法使用摄像头，请上传照片文件。",
        "The camera is not available here; upload a photo file instead.",
    ),
    "camera_taken": ("已拍照，提交表单时一并保存。", "Photo taken; it is saved with the form."),
    "camera_video": ("摄像头画面", "Camera picture"),
    "photo_too_large": ("照片超过 {kb} KB。", "The photo is larger than {kb} KB."),
    "photo_kept": ("已保留之前提交的照片。", "The photo sent before is kept."),
    "photo_preview": ("照片预览", "Photo preview"),
    # --- register ------------------------------------------------------------------------
    "register_title": ("登记外国商人", "Register a foreign merchant"),
    "passport_section": ("当前护照", "Current passport"),
    "register_button": ("登记", "Register"),
    "required": ("必填", "required"),
    "birth_date_hint": (
        "格式 YYYY-MM-DD；月或日不详时写 YYYY-MM 或 YYYY",
        "YYYY-MM-DD; YYYY-MM or YYYY when the month or day is unknown",
    ),
    "country_hint": ("例如 NGA、RUS、SAU", "for example NGA, RUS, SAU"),
    "duplicates_found": (
        "已登记人员中可能有同一人。请核对：若是同一人，将护照关联到此人；"
        "若确实不是同一人，主管可确认登记为新人员。",
        "Someone already registered may be the same person. If it is the same person, link "
        "the passport to them; if not, a supervisor may confirm a new person.",
    ),
    "candidates_caption": ("疑似同一人的已登记人员", "Registered persons who may be the same"),
    "other_office_person": (
        "在 {office} 登记（其他办公室，姓名不显示；请联系该办公室）",
        "registered at {office} (another office: names not shown; ask that office)",
    ),
    "candidate_score": ("相似度", "Similarity"),
    "link_passport": ("将护照关联到此人", "Link passport to this person"),
    "register_new": ("登记为新人员", "Register as a new person"),
    "register_new_hint": ("仅限主管", "supervisors only"),
    # --- passport change and reports ------------------------------------------------------
    "passport_change_title": ("更换护照", "Change passport"),
    "new_passport": ("新护照", "New passport"),
    "change_reason": ("原护照的情况", "What happened to the old passport"),
    "reason_renewed": ("到期换发", "Renewed"),
    "reason_lost": ("遗失", "Lost"),
    "reason_stolen": ("被盗", "Stolen"),
    "reason_replaced": ("其他原因补发", "Replaced"),
    "code_stays": ("外国人编码保持不变。", "The foreigner code stays the same."),
    "save": ("保存", "Save"),
    "cancel": ("取消", "Cancel"),
    "mark_title": ("护照挂失", "Report a passport lost or stolen"),
    "mark_hint": (
        "挂失的护照永远不能再用于登记。",
        "A passport reported lost or stolen can never be used to register again.",
    ),
    "mark_state": ("挂失类型", "Report as"),
    "mark_lost": ("遗失", "Lost"),
    "mark_stolen": ("被盗", "Stolen"),
    "mark_button": ("挂失", "Report"),
    # --- duplicate reviews ---------------------------------------------------------------
    "duplicates_title": ("重复登记审核记录", "Duplicate review decisions"),
    "decision": ("决定", "Decision"),
    "decision_new": ("确认为新人员", "Confirmed a new person"),
    "decision_linked": ("关联到已登记人员", "Linked to a registered person"),
    "candidates": ("候选人员", "Candidates"),
    "person": ("人员", "Person"),
    "officer": ("警员", "Officer"),
    "decided_at": ("时间", "Time"),
    "no_duplicates": ("暂无审核记录。", "No decisions yet."),
    # --- audit ---------------------------------------------------------------------------
    "audit_title": ("审计日志", "Audit log"),
    "audit_newest": ("最新记录在前。", "Newest first."),
    "seq": ("序号", "No."),
    "at": ("时间", "Time"),
    "action": ("操作", "Action"),
    "record": ("记录", "Record"),
    "outcome": ("结果", "Outcome"),
    "outcome_ok": ("成功", "OK"),
    "outcome_denied": ("被拒绝", "Denied"),
    "detail": ("说明", "Detail"),
    "entry_hash": ("哈希", "Hash"),
    "verify_chain": ("校验审计链", "Verify chain"),
    "chain_ok": (
        "审计链完整：{entries} 条记录，{checkpoints} 个签名检查点，链头序号 {head}。",
        "The chain is intact: {entries} entries, {checkpoints} signed checkpoints, head at {head}.",
    ),
    "chain_broken": ("审计链已损坏", "The audit chain is broken"),
    "system": ("系统", "system"),
    # --- outcomes after a form ----------------------------------------------------------
    "done_registered": ("已登记。", "Registered."),
    "done_linked": ("护照已关联到此人。", "The passport is linked to this person."),
    "done_passport_changed": ("护照已更换，编码不变。", "Passport changed; the code is the same."),
    "done_passport_marked": ("护照已挂失。", "The passport is reported."),
    "done_granted": ("已授予服务。", "Service granted."),
    "done_withdrawn": ("已撤销服务。", "Service withdrawn."),
    "done_issued": ("卡片已签发。", "Card issued."),
    "done_suspended": ("卡片已暂停。", "Card suspended."),
    "done_reinstated": ("卡片已恢复。", "Card reinstated."),
    "done_revoked": ("卡片已吊销。", "Card revoked."),
    "done_portrait": ("照片已更新。", "Portrait updated."),
    "done_logged_out": ("您已退出。", "You have logged out."),
}
"""Every string of the console: key -> (Chinese, English)."""


class Translator:
    """Looks up strings in one language; templates call it as ``t("key", name=value)``."""

    def __init__(self, language: Language) -> None:
        self.language = language
        self._index = LANGUAGES.index(language)

    @property
    def other(self) -> Language:
        """The language not shown: labels show it in small type beside the main one."""
        return LANGUAGES[1 - self._index]

    def __call__(self, key: str, **values: object) -> str:
        pair = STRINGS.get(key)
        if pair is None:  # a missing string shows its key rather than breaking the page
            return key
        text = pair[self._index]
        return text.format(**values) if values else text

    def alt(self, key: str, **values: object) -> str:
        """``key`` in the other language (for bilingual labels)."""
        return Translator(self.other)(key, **values)


def parse_language(value: str | None) -> Language | None:
    for language in LANGUAGES:
        if value == language:
            return language
    return None


def language_of(request: Request) -> Language:
    """The language asked for in the query, else remembered in the cookie, else Chinese."""
    return (
        parse_language(request.query_params.get("lang"))
        or parse_language(request.cookies.get(LANG_COOKIE))
        or DEFAULT_LANGUAGE
    )
