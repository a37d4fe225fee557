// fmcard counter station: camera / scanner / paste / photo -> POST /api/verify -> verdict.
// No framework, no network beyond this station's own server, no scan history: a verdict
// lives in the DOM until the page returns to scanning. Card data is only ever inserted as
// text (never as HTML).
"use strict";

(() => {
  const UI = {
    title: ["柜台核验", "Counter station"],
    show_qr: ["请出示二维码", "Show the card's QR code"],
    scan_hint: [
      "将二维码对准摄像头，或用扫码枪扫描。",
      "Hold the QR code to the camera, or use the scanner.",
    ],
    scanner: ["扫码枪（保持此框为焦点）", "Scanner (keep this box focused)"],
    scanner_placeholder: ["扫码后自动核验", "Scanned codes are checked on Enter"],
    other_inputs: ["其他方式：粘贴或照片", "Other ways: paste or photo"],
    paste: ["粘贴二维码文本", "Paste the QR text"],
    verify: ["核验", "Verify"],
    photo: ["上传卡片照片", "Upload a photo of the card"],
    keys: [
      "键盘：Enter 扫描下一张 · Esc 清除",
      "Keyboard: Enter scan next · Esc clear",
    ],
    privacy: ["本站不保存扫描记录", "This station keeps no scan history"],
    camera_starting: ["正在打开摄像头…", "Starting the camera…"],
    camera_on: ["摄像头已开启", "Camera on"],
    camera_off: ["摄像头不可用：请使用扫码枪、粘贴或照片", "No camera: use the scanner, paste or a photo"],
    checking: ["正在核验…", "Checking…"],
    no_qr_in_photo: ["照片中未找到二维码", "No QR code found in the photo"],
    head_green: ["有效", "VALID"],
    head_red: ["无效", "NOT VALID"],
    head_amber: ["无法确认", "CANNOT CONFIRM"],
    head_valid_old: ["有效 · 数据即将过期", "VALID · data getting old"],
    holder: ["持卡人", "For the holder"],
    name: ["姓名", "Name"],
    native_name: ["本国文字姓名", "Native name"],
    chinese_name: ["中文名", "Chinese name"],
    code: ["外国人编码", "Foreigner code"],
    nationality: ["国籍", "Nationality"],
    birth_date: ["出生日期", "Born"],
    card_dates: ["卡片有效期", "Card valid"],
    entitlement: ["服务资格", "Entitlement"],
    no_entitlement: ["无{service}资格", "none for {service}"],
    issuer: ["发证机关", "Issuer"],
    no_portrait: ["卡片无照片", "No photo on the card"],
    portrait_caption: ["卡内签名照片，请核对本人", "Signed photo: compare with the holder"],
    to: ["至", "to"],
    open_end: ["不限", "open"],
    status_age: ["状态列表 {age}前更新", "status list {age} old"],
    status_limit: ["（上限 {age}）", " (limit {age})"],
    no_status: ["无状态列表", "no status list"],
    trust_expires: ["信任列表 {age}后过期", "trust list expires in {age}"],
    trust_expired: ["信任列表已过期", "trust list EXPIRED"],
    sync_now: ["数据过旧：请立即同步本站", "Data too old: sync the station now"],
    sync_soon: ["数据即将过期：请尽快同步本站", "Data getting old: sync the station soon"],
    reload_error: ["新数据被拒绝，继续使用原数据", "New data was refused; the held data stays in use"],
    sync_failed: ["上次同步失败：{e}", "Last sync failed: {e}"],
    returning: ["{s} 秒后返回扫描 · Enter 下一张 · Esc 清除", "Back to scanning in {s} s · Enter next · Esc clear"],
    stays: ["Enter 下一张 · Esc 清除", "Enter next · Esc clear"],
    error: ["本站出错：{e}", "Station error: {e}"],
  };
  const UNITS = { min: ["分钟", " min"], h: ["小时", " h"], d: ["天", " d"] };
  const HOLDER_LANGS = ["en", "ru", "ar"];
  const LANG_NAMES = { en: "English", ru: "Русский", ar: "العربية", zh: "中文" };
  const SCAN_REPEAT_MS = 2500;   // the same code seen again within this time is not re-sent
  // A scanner ends a code with a suffix: Enter, CR+LF (two Enters), Tab or Enter+Tab. Keys of
  // the suffix arrive within a few ms of each other; an empty Enter or Tab this soon after a
  // scan (or after its verdict appeared) is the rest of that suffix, never the clerk's
  // "next card".
  const SUFFIX_GRACE_MS = 400;

  const $ = (id) => document.getElementById(id);
  const state = {
    config: null,
    lang: "zh",
    mode: "scanning",
    busy: false,
    last: null,            // {text, seenAt}: suppresses re-reading the card still in view
    returnTimer: null,
    countdownTimer: null,
    stream: null,
    status: null,
    decoding: false,       // a camera frame is being decoded: later frames are skipped
    previousFrame: null,   // {frame, count, hadCode} of the camera frame decoded before
    scanEndedAt: -Infinity, // when the scanner's last code ended (its first suffix key)
    shownAt: -Infinity,     // when the verdict of the last scanner code was put on screen
  };
  window.__fmcardTimings = [];

  function t(key, values) {
    const entry = UI[key];
    let text = entry ? entry[state.lang === "zh" ? 0 : 1] : key;
    for (const [name, value] of Object.entries(values || {})) {
      text = text.replace(`{${name}}`, value);
    }
    return text;
  }

  function duration(seconds) {
    const s = Math.max(0, Math.abs(seconds));
    const i = state.lang === "zh" ? 0 : 1;
    if (s < 3600) return `${Math.floor(s / 60)}${UNITS.min[i]}`;
    if (s < 72 * 3600) return `${Math.floor(s / 3600)}${UNITS.h[i]}`;
    return `${Math.floor(s / 86400)}${UNITS.d[i]}`;
  }

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  // --- language -------------------------------------------------------------------------

  function applyLanguage(lang) {
    state.lang = lang;
    document.documentElement.lang = lang;
    try { localStorage.setItem("fmcard.lang", lang); } catch (e) { /* private mode */ }
    for (const node of document.querySelectorAll("[data-t]")) node.textContent = t(node.dataset.t);
    for (const node of document.querySelectorAll("[data-t-placeholder]")) {
      node.placeholder = t(node.dataset.tPlaceholder);
    }
    for (const button of document.querySelectorAll(".lang")) {
      button.setAttribute("aria-pressed", String(button.dataset.lang === lang));
    }
    document.title = `fmcard · ${t("title")}`;
    renderService();
    renderStatus();
    if (state.lastView) renderResult(state.lastView, true);
  }

  function renderService() {
    const config = state.config;
    if (!config) return;
    const name = config.service_name ? config.service_name[state.lang] : config.service;
    $("service").textContent = `${name} · ${config.service}`;
  }

  // --- data age ---------------------------------------------------------------------------

  async function refreshStatus() {
    try {
      const response = await fetch("/api/status", { cache: "no-store" });
      state.status = await response.json();
    } catch (e) {
      state.status = null;
    }
    renderStatus();
  }

  function ageText(data) {
    if (data.oldest_status_age_seconds === null) return t("no_status");
    let text = t("status_age", { age: duration(data.oldest_status_age_seconds) });
    if (data.max_status_age_seconds) {
      text += t("status_limit", { age: duration(data.max_status_age_seconds) });
    }
    return text;
  }

  function renderStatus() {
    const status = state.status;
    const badge = $("data-age");
    const banner = $("banner");
    if (!status) { badge.textContent = ""; return; }
    const parts = [ageText(status)];
    parts.push(status.trust_list_expired
      ? t("trust_expired")
      : t("trust_expires", { age: duration(status.trust_list_expires_in_seconds) }));
    badge.textContent = parts.join(" · ");
    badge.classList.toggle("too-old", status.too_old || status.trust_list_expired);
    badge.classList.toggle("getting-old", status.getting_old && !status.too_old);
    let warning = "";
    if (status.too_old || status.trust_list_expired) warning = t("sync_now");
    else if (status.getting_old) warning = t("sync_soon");
    if (status.reload_error) warning = `${warning ? warning + " · " : ""}${t("reload_error")}`;
    if (status.last_sync_error) {
      const failed = t("sync_failed", { e: status.last_sync_error });
      warning = `${warning ? warning + " · " : ""}${failed}`;
    }
    banner.hidden = !warning;
    banner.textContent = warning;
    banner.classList.toggle("too-old", Boolean(status.too_old || status.trust_list_expired));
  }

  // --- verifying --------------------------------------------------------------------------

  async function submit(text, source, timing) {
    text = (text || "").trim();
    if (!text || state.busy) return;
    state.busy = true;
    state.last = { text, seenAt: performance.now() };
    const mark = timing || {};
    mark.source = source;
    mark.sent = performance.now();
    $("camera-state").textContent = t("checking");
    let view;
    try {
      const response = await fetch("/api/verify", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ text }),
        cache: "no-store",
      });
      view = await response.json();
      if (!response.ok) throw new Error(view.error || response.statusText);
    } catch (error) {
      state.busy = false;
      $("camera-state").textContent = t("error", { e: error.message });
      return;
    }
    mark.response = performance.now();
    renderResult(view, false);
    if (source === "wedge") state.shownAt = performance.now();
    state.busy = false;
    afterPaint(() => {
      mark.painted = performance.now();
      mark.reason = view.reason;
      mark.verdict = view.verdict;
      if (mark.frame !== undefined) mark.frameToPaintMs = mark.painted - mark.frame;
      if (mark.decoded !== undefined) mark.decodeToPaintMs = mark.painted - mark.decoded;
      mark.requestMs = mark.response - mark.sent;
      window.__fmcardTimings.push(mark);
    });
  }

  function afterPaint(callback) {
    // A rAF callback runs just before the frame is painted; a message posted from it is
    // handled after that paint.
    requestAnimationFrame(() => {
      const channel = new MessageChannel();
      channel.port1.onmessage = () => callback();
      channel.port2.postMessage(null);
    });
  }

  function headline(view) {
    if (view.verdict === "green") return t("head_green");
    if (view.verdict === "red") return t("head_red");
    return view.reason === "VALID" ? t("head_valid_old") : t("head_amber");
  }

  function renderResult(view, relabel) {
    state.lastView = view;
    const clerk = state.lang;
    const other = clerk === "zh" ? "en" : "zh";
    document.body.dataset.mode = "result";
    document.body.dataset.verdict = view.verdict;
    document.body.dataset.reason = view.reason;
    state.mode = "result";
    $("scan").hidden = true;
    $("result").hidden = false;

    const verdict = $("verdict");
    verdict.className = `verdict ${view.verdict}`;
    $("mark").textContent = view.verdict === "green" ? "✓" : view.verdict === "red" ? "✗" : "!";
    $("headline").textContent = headline(view);
    $("reason").textContent = view.message[clerk];
    $("reason").lang = clerk;
    $("reason-alt").textContent = view.message[other];
    $("reason-alt").lang = other;
    $("reason-code").textContent = view.reason;

    const holder = $("holder-messages");
    holder.replaceChildren();
    for (const lang of HOLDER_LANGS) {
      if (lang === clerk) continue;
      const rtl = state.config && state.config.rtl_languages.includes(lang);
      const item = el("span", { lang, dir: rtl ? "rtl" : "ltr", "data-lang": lang });
      item.append(el("b", {}, `${LANG_NAMES[lang]}: `), document.createTextNode(view.message[lang]));
      holder.append(item);
    }

    renderCard(view);
    renderDataLine(view);
    if (!relabel) scheduleReturn();
  }

  function renderCard(view) {
    const card = view.card;
    const box = $("card");
    box.hidden = !card;
    if (!card) return;
    const portraitBox = $("portrait-box");
    const img = $("portrait");
    const showsPortrait = view.show.includes("portrait");
    portraitBox.hidden = !showsPortrait;
    if (view.portrait) {
      img.src = view.portrait;
      portraitBox.classList.remove("none");
      $("portrait-caption").textContent = t("portrait_caption");
    } else {
      img.removeAttribute("src");
      portraitBox.classList.add("none");
      $("portrait-caption").textContent = t("no_portrait");
    }
    const fields = $("fields");
    fields.replaceChildren();
    const add = (key, value, cls, attrs) => {
      if (value === undefined || value === null || value === "") return;
      fields.append(el("dt", {}, t(key)));
      fields.append(el("dd", Object.assign({ class: cls || key, "data-field": key }, attrs || {}), value));
    };
    const latin = card.given_names ? `${card.family_name}, ${card.given_names}` : card.family_name;
    add("name", latin, "name", { lang: "en", dir: "ltr" });
    add("native_name", card.native_name, "native", { dir: "auto" });
    add("chinese_name", card.chinese_name, "chinese", { lang: "zh" });
    add("code", card.code_grouped, "code", { dir: "ltr" });
    add("nationality", card.nationality);
    add("birth_date", card.birth_date);
    if (card.valid_from && card.expires_at) {
      add("card_dates", `${day(card.valid_from)} ${t("to")} ${day(card.expires_at)}`);
    }
    if (!view.entitlement && view.show.includes("entitlement")) {
      const names = state.config && state.config.service_name;
      const label = names ? names[state.lang] : state.config.service;
      add("entitlement", t("no_entitlement", { service: `${label} (${state.config.service})` }));
    }
    if (view.entitlement) {
      const e = view.entitlement;
      const names = state.config && state.config.service_name;
      const label = e.service === state.config.service && names ? names[state.lang] : e.service;
      const span = e.valid_from || e.valid_until
        ? `${e.valid_from ? day(e.valid_from) : "…"} ${t("to")} ${e.valid_until ? day(e.valid_until) : t("open_end")}`
        : "";
      add("entitlement", `${label} (${e.service})${span ? " · " + span : ""}`);
    }
    if (card.issuer) {
      const name = card.issuer_name ? card.issuer_name[state.lang] : "";
      add("issuer", name ? `${name} (${card.issuer})` : card.issuer);
    }
  }

  function day(iso) { return iso.slice(0, 10); }

  function renderDataLine(view) {
    const line = $("data-line");
    const data = view.data || {};
    const age = view.status_age_seconds !== null && view.status_age_seconds !== undefined
      ? view.status_age_seconds : data.oldest_status_age_seconds;
    let text = age === null || age === undefined ? t("no_status") : t("status_age", { age: duration(age) });
    if (data.max_status_age_seconds) text += t("status_limit", { age: duration(data.max_status_age_seconds) });
    if (data.getting_old || data.too_old) text += ` · ${data.too_old ? t("sync_now") : t("sync_soon")}`;
    line.textContent = text;
    line.className = data.getting_old || data.too_old ? "old" : "";
  }

  function scheduleReturn() {
    clearTimeout(state.returnTimer);
    clearInterval(state.countdownTimer);
    const delay = state.config ? state.config.return_after_ms : 6000;
    if (!delay) { $("countdown").textContent = t("stays"); return; }
    const until = Date.now() + delay;
    const tick = () => {
      const left = Math.max(0, Math.ceil((until - Date.now()) / 1000));
      $("countdown").textContent = t("returning", { s: left });
    };
    tick();
    state.countdownTimer = setInterval(tick, 250);
    state.returnTimer = setTimeout(() => backToScanning(), delay);
  }

  function backToScanning() {
    // The card just read stays ignored by the camera while it is still in view (see
    // SCAN_REPEAT_MS): "next" means the next card. The scanner and paste always verify.
    clearTimeout(state.returnTimer);
    clearInterval(state.countdownTimer);
    state.lastView = null;
    state.mode = "scanning";
    document.body.dataset.mode = "scanning";
    delete document.body.dataset.verdict;
    delete document.body.dataset.reason;
    $("result").hidden = true;
    $("scan").hidden = false;
    // Nothing of the card stays in the page.
    $("fields").replaceChildren();
    $("portrait").removeAttribute("src");
    $("holder-messages").replaceChildren();
    $("camera-state").textContent = state.stream ? t("camera_on") : t("camera_off");
    clearInputs();
    focusWedge();
  }

  function clearInputs() {
    // Nothing of a card stays in a form control: the browser keeps control values in its
    // session files (form restore) unless autocomplete is off, and this is the second guard.
    $("wedge").value = "";
    $("paste").value = "";
    $("photo").value = "";
  }

  // --- camera -----------------------------------------------------------------------------

  async function startCamera() {
    const video = $("video");
    $("camera-state").textContent = t("camera_starting");
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      $("camera-state").textContent = t("camera_off");
      return;
    }
    try {
      state.stream = await navigator.mediaDevices.getUserMedia({
        video: { facingMode: "environment", width: { ideal: 1280 }, height: { ideal: 720 } },
        audio: false,
      });
    } catch (error) {
      $("camera-state").textContent = t("camera_off");
      return;
    }
    video.srcObject = state.stream;
    try { await video.play(); } catch (e) { /* autoplay of a muted stream is allowed */ }
    $("camera-state").textContent = t("camera_on");
    nextFrame(video);
  }

  function nextFrame(video) {
    if ("requestVideoFrameCallback" in video) {
      video.requestVideoFrameCallback((now, meta) => onFrame(video, now, meta));
    } else {
      requestAnimationFrame((now) => onFrame(video, now, null));
    }
  }

  function onFrame(video, now, meta) {
    try {
      if (state.mode === "scanning" && !state.busy && video.videoWidth) {
        if (!state.decoding) decodeFrame(video, now, meta);
      } else {
        state.previousFrame = null;
      }
    } finally {
      nextFrame(video);
    }
  }

  async function decodeFrame(video, now, meta) {
    // The frame's own time when the browser gives it (camera capture, else presentation),
    // its number and its media time: how the latency is measured from the first frame that
    // showed the card, not from the one that was decoded.
    const frame = meta && (meta.captureTime || meta.presentationTime) || now;
    const count = meta ? meta.presentedFrames : undefined;
    const mediaTime = meta ? meta.mediaTime : undefined;
    state.decoding = true;
    const started = performance.now();
    let text = null;
    try {
      text = await window.fmcardDecoder.fromFrame(video, $("canvas"));
    } catch (error) {
      text = null;
    } finally {
      state.decoding = false;
    }
    const decoded = performance.now();
    const previous = state.previousFrame;
    state.previousFrame = { frame, count, hadCode: Boolean(text) };
    if (!text || state.mode !== "scanning" || state.busy) return;
    const last = state.last;
    if (last && last.text === text && decoded - last.seenAt < SCAN_REPEAT_MS) {
      last.seenAt = decoded;     // the same card is still in front of the camera
      return;
    }
    // For the latency figures: the frame decoded before this one had no code; frames the
    // decoder skipped in between (skippedFrames) may have shown it first.
    submit(text, "camera", {
      frame, frameCount: count, mediaTime, frameStart: started, decoded,
      decodeMs: decoded - started,
      previousFrame: previous ? previous.frame : undefined,
      previousHadCode: previous ? previous.hadCode : undefined,
      skippedFrames: previous && count !== undefined && previous.count !== undefined
        ? count - previous.count - 1 : undefined,
    });
  }

  // --- photo, paste, scanner --------------------------------------------------------------

  async function onPhoto(event) {
    const file = event.target.files && event.target.files[0];
    $("photo-state").textContent = "";
    if (!file) return;
    try {
      const bitmap = await createImageBitmap(file);
      const started = performance.now();
      const text = await window.fmcardDecoder.fromPhoto(bitmap, $("canvas"));
      bitmap.close();
      if (!text) { $("photo-state").textContent = t("no_qr_in_photo"); return; }
      submit(text, "photo", { decoded: performance.now(), decodeMs: performance.now() - started });
    } catch (error) {
      $("photo-state").textContent = t("no_qr_in_photo");
    } finally {
      event.target.value = "";
    }
  }

  function focusWedge() {
    const active = document.activeElement;
    // The paste box and the photo picker keep the focus while the clerk uses them.
    const elsewhere = active && active !== document.body && active.id !== "wedge" &&
      active.closest("#more");
    if (!elsewhere) $("wedge").focus({ preventScroll: true });
  }

  function onKey(event) {
    const target = event.target;
    const inPaste = target && target.id === "paste";
    const editable = target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA");
    if (!editable && event.key.length === 1 && event.key !== " " && !event.ctrlKey &&
        !event.metaKey && !event.altKey) {
      // A scanner typing while a button or the page has the focus: the characters go to
      // the scanner box (focus moved during keydown takes this very key).
      $("wedge").focus({ preventScroll: true });
    }
    if (event.key === "Escape") {
      event.preventDefault();
      if (inPaste) target.value = "";
      backToScanning();
      return;
    }
    if ((event.key !== "Enter" && event.key !== "Tab") || event.isComposing) return;
    if (inPaste) {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        submitPaste();
      }
      return;
    }
    const typed = $("wedge").value;
    const now = performance.now();
    if (!typed.trim()) {
      const suffix = state.busy || now - state.scanEndedAt < SUFFIX_GRACE_MS ||
        now - state.shownAt < SUFFIX_GRACE_MS;
      if (suffix) {
        event.preventDefault();   // the rest of the scanner's suffix: keep verdict and focus
        focusWedge();
        return;
      }
      if (event.key === "Tab") return;   // the clerk moving through the page
      if (target && (target.tagName === "BUTTON" || target.tagName === "SUMMARY")) return;
      if (editable && target.id !== "wedge") return;   // the photo picker
      event.preventDefault();
      if (state.mode === "result") backToScanning();
      return;
    }
    // Text in the scanner box ends with Enter, or with Tab for a scanner set to that suffix.
    event.preventDefault();
    $("wedge").value = "";
    state.scanEndedAt = now;
    submit(scannerText(typed), "wedge", { decoded: now });
    focusWedge();
  }

  function scannerText(typed) {
    // With Caps Lock on, a scanner's letters arrive in lower case. The QR alphabet (FM1: and
    // Base45) has no lower-case letters, so upper-casing a card's text is lossless.
    const text = typed.trim();
    if (text.slice(0, 4).toUpperCase() !== "FM1:") return text;
    return text.replace(/[a-z]+/g, (letters) => letters.toUpperCase());
  }

  function submitPaste() {
    const text = $("paste").value;
    $("paste").value = "";
    submit(text, "paste", { decoded: performance.now() });
  }

  // --- start ------------------------------------------------------------------------------

  async function start() {
    const response = await fetch("/api/config", { cache: "no-store" });
    state.config = await response.json();
    let lang = state.config.clerk_language;
    try {
      const saved = localStorage.getItem("fmcard.lang");
      if (state.config.clerk_languages.includes(saved)) lang = saved;
    } catch (e) { /* private mode */ }
    applyLanguage(lang);
    for (const button of document.querySelectorAll(".lang")) {
      button.addEventListener("click", () => { applyLanguage(button.dataset.lang); focusWedge(); });
    }
    document.addEventListener("keydown", onKey);
    window.addEventListener("pagehide", () => { clearInputs(); backToScanning(); });
    $("wedge").addEventListener("blur", () => setTimeout(focusWedge, 0));
    document.addEventListener("click", () => setTimeout(focusWedge, 0));
    $("paste-verify").addEventListener("click", submitPaste);
    $("photo").addEventListener("change", onPhoto);
    focusWedge();
    refreshStatus();
    setInterval(refreshStatus, 30000);
    // The page is ready, and the camera opens, once the decoder is loaded and warmed up (its
    // first decodes compile the WebAssembly and keep the page busy for a moment): a frame it
    // could not decode would only be lost. Without a decoder the scanner, paste and photo
    // still verify.
    const decoder = window.fmcardDecoder;
    const decoding = Boolean(decoder) && await decoder.ready;
    document.body.dataset.ready = "true";
    if (decoding) startCamera();
    else $("camera-state").textContent = t("camera_off");
  }

  document.addEventListener("DOMContentLoaded", start);
})();
