// fmcard counter station: camera / scanner / paste / photo -> POST /api/verify -> verdict.
// No framework, no network beyond this station's own server, no scan history: a verdict
// lives in the DOM until the page returns to scanning. Card data is only ever inserted as
// text (never as HTML).
"use strict";

(() => {
  // Every word of the page comes from the station's catalogs through /api/config
  // (config.text[language][key]); the Chinese in index.html only shows until it has loaded.
  const SCAN_REPEAT_MS = 2500;   // the same code seen again within this time is not re-sent
  // A scanner ends a code with a suffix: Enter, CR+LF (two Enters), Tab or Enter+Tab. Keys of
  // the suffix arrive within a few ms of each other; an empty Enter or Tab this soon after a
  // scan (or after its verdict appeared) is the rest of that suffix, never the clerk's
  // "next card".
  const SUFFIX_GRACE_MS = 400;
  // A key typed this recently into the scanner or paste box means a code is on its way: the
  // automatic return to scanning leaves that box alone (it used to empty it mid-scan).
  const TYPING_MS = 1500;
  // Some scanners put a prefix before the code: the AIM symbology identifier (]Q1 for QR)
  // or a configured string. A card's text starts with FM1: or FM2:, so at most this many
  // characters before it are dropped.
  const MAX_PREFIX = 16;
  // A card's text after FM1: / FM2: is Base45: digits, upper-case letters, space $ % * + - . / :
  const CARD_TEXT = /^FM[12]:[0-9A-Z $%*+\-./:]*$/;

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
    typingAt: -Infinity,    // when a key last went into the scanner or paste box
    pending: null,          // {text, source, timing}: a code that arrived while one was verifying
  };
  window.__fmcardTimings = [];

  function t(key, values) {
    const table = state.config && state.config.text[state.lang];
    let text = table && table[key] !== undefined ? table[key] : key;
    for (const [name, value] of Object.entries(values || {})) {
      text = text.replaceAll(`{${name}}`, value);
    }
    return text;
  }

  function duration(seconds) {
    const s = Math.max(0, Math.abs(seconds));
    if (s < 3600) return t("unit_min", { n: Math.floor(s / 60) });
    if (s < 72 * 3600) return t("unit_h", { n: Math.floor(s / 3600) });
    return t("unit_d", { n: Math.floor(s / 86400) });
  }

  function isRtl(lang) {
    return Boolean(state.config && state.config.rtl_languages.includes(lang));
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
    document.documentElement.lang = lang === "zh" ? "zh-CN" : lang;
    document.documentElement.dir = isRtl(lang) ? "rtl" : "ltr";
    try { localStorage.setItem("fmcard.lang", lang); } catch (e) { /* private mode */ }
    for (const node of document.querySelectorAll("[data-t]")) node.textContent = t(node.dataset.t);
    for (const node of document.querySelectorAll("[data-t-placeholder]")) {
      node.placeholder = t(node.dataset.tPlaceholder);
    }
    for (const button of document.querySelectorAll(".lang")) {
      button.setAttribute("aria-pressed", String(button.dataset.lang === lang));
    }
    $("lang-menu").value = lang;
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
      text += " " + t("status_limit", { age: duration(data.max_status_age_seconds) });
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
    // The last sync found this PC's clock off the issuer's (sync.json): behind, every
    // fresh status list is "dated after this counter's time"; ahead, the data ages too fast.
    const offset = status.clock_offset_seconds;
    if (offset) {
      const age = duration(Math.round(offset / 60) * 60);   // to the nearest minute
      const clock = t(offset > 0 ? "clock_behind" : "clock_ahead", { age });
      warning = `${warning ? warning + " · " : ""}${clock}`;
    }
    banner.hidden = !warning;
    banner.textContent = warning;
    banner.classList.toggle("too-old", Boolean(status.too_old || status.trust_list_expired));
  }

  // --- verifying --------------------------------------------------------------------------

  async function submit(text, source, timing) {
    text = (text || "").trim();
    if (!text) return;
    if (state.busy) {
      // A code scanned or pasted while the previous one is verifying is verified next (it
      // was dropped without a word); the camera never queues (it reads again).
      if (source !== "camera") state.pending = { text, source, timing };
      return;
    }
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
      submitPending();
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
    submitPending();
  }

  function submitPending() {
    const next = state.pending;
    state.pending = null;
    if (next) submit(next.text, next.source, next.timing);
  }

  // A scanner's text that cannot be a card's, although the scanner read one: it types
  // what its keyboard layout makes of each character, so a scanner set to a US layout on a
  // French or German PC turns FM1: into F?&M or FM1Ö. Shown as such, never as "not valid".
  function scannerProblem(text) {
    if (CARD_TEXT.test(text)) return null;
    const card = /^FM[12]:/.test(text);
    // Without FM1:/FM2:, only a long text of upper case and symbols (a garbled card, not a
    // web address or another QR) is taken for a scanner problem.
    const garbled = /^FM[12][^:]/.test(text);   // FM1Ö...: the colon typed on another layout
    if (!card && !garbled && (text.length < 40 || /[a-z]/.test(text))) return null;
    const body = card ? text.slice(4) : text;
    const odd = [...new Set(body.replace(/[0-9A-Z $%*+\-./:]/g, ""))].slice(0, 6).join(" ");
    if (!odd && card) return null;
    return odd || text.slice(0, 4);
  }

  function showScannerProblem(characters) {
    const message = {};
    for (const lang of state.config.languages) {
      const table = state.config.text[lang] || {};
      message[lang] = (table.scanner_garbled || "scanner_garbled").replaceAll("{chars}", characters);
    }
    renderResult({
      verdict: "amber", reason: "SCANNER_LAYOUT", message, card: null, level: null, show: [],
      data: state.status || {},
    }, false);
    state.shownAt = performance.now();
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
    const names = state.config.language_names;
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
    $("reason").dir = isRtl(clerk) ? "rtl" : "ltr";
    $("reason-alt").textContent = view.message[other];
    $("reason-alt").lang = other;
    $("reason-alt").dir = "ltr";
    $("reason-code").textContent = view.reason;
    // How the card was shown (docs/FORMAT.md 11.5): a live phone card, a copy of one, or a
    // printed card; nothing for a refusal made before the card's signature was checked.
    const level = $("level");
    level.hidden = !view.level;
    level.dataset.level = view.level || "";
    level.textContent = view.level ? t(`level_${view.level}`) : "";

    const holder = $("holder-messages");
    holder.replaceChildren();
    for (const lang of state.config.holder_languages) {
      if (lang === clerk || lang === other) continue;
      const item = el("span", { lang, dir: isRtl(lang) ? "rtl" : "ltr", "data-lang": lang });
      item.append(el("b", {}, `${names[lang]}: `), document.createTextNode(view.message[lang]));
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
      // A phone card may leave the photo undisclosed to this service: say so, not "no photo".
      const closed = view.disclosed !== null && view.disclosed !== undefined;
      $("portrait-caption").textContent = t(closed ? "portrait_not_disclosed" : "no_portrait");
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
    // A phone card shows only what its holder disclosed to this service; the rest is said so.
    const closed = view.disclosed !== null && view.disclosed !== undefined;
    const shown = (value) => (closed && (value === null || value === undefined)
      ? t("not_disclosed") : value);
    if (view.show.includes("nationality")) add("nationality", shown(card.nationality));
    if (view.show.includes("birth_date")) add("birth_date", shown(card.birth_date));
    if (card.valid_from && card.expires_at) {
      add("card_dates", t("range", { start: day(card.valid_from), end: day(card.expires_at) }));
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
        ? t("range", {
          start: e.valid_from ? day(e.valid_from) : "…",
          end: e.valid_until ? day(e.valid_until) : t("open_end"),
        })
        : "";
      add("entitlement", `${label} (${e.service})${span ? " · " + span : ""}`);
    }
    if (card.issuer) {
      const names = card.issuer_name;
      const name = names ? names[state.lang] || names.en : "";
      add("issuer", name ? `${name} (${card.issuer})` : card.issuer);
    }
  }

  // A date is isolated left to right (U+2066 ... U+2069): inside a right-to-left sentence the
  // bidirectional algorithm would otherwise show 2026-11-21 as 21-11-2026.
  function day(iso) { return `\u2066${iso.slice(0, 10)}\u2069`; }

  function renderDataLine(view) {
    const line = $("data-line");
    const data = view.data || {};
    const age = view.status_age_seconds !== null && view.status_age_seconds !== undefined
      ? view.status_age_seconds : data.oldest_status_age_seconds;
    let text = age === null || age === undefined ? t("no_status") : t("status_age", { age: duration(age) });
    if (data.max_status_age_seconds) text += " " + t("status_limit", { age: duration(data.max_status_age_seconds) });
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
    state.returnTimer = setTimeout(() => backToScanning(true), delay);
  }

  function backToScanning(automatic) {
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
    // The automatic return leaves a code being typed in (a scanner mid-code, a clerk
    // pasting): it is cleared once sent. The clerk's Esc and closing the page clear all.
    clearInputs(automatic && performance.now() - state.typingAt < TYPING_MS);
    focusWedge();
  }

  function clearInputs(keepTyped) {
    // Nothing of a card stays in a form control: the browser keeps control values in its
    // session files (form restore) unless autocomplete is off, and this is the second guard.
    if (!keepTyped) {
      $("wedge").value = "";
      $("paste").value = "";
    }
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

  // A scanner set to a control-key suffix sends Ctrl+J (line feed) or Ctrl+M (carriage
  // return) as keydown with ctrlKey: those are its Enter. (On a non-Latin layout the key is
  // that layout's letter; the physical key says J or M.)
  function keyOf(event) {
    if (event.ctrlKey && !event.altKey && !event.metaKey && !event.shiftKey) {
      const letter = /^[a-z]$/i.test(event.key) ? event.key.toLowerCase()
        : ({ KeyJ: "j", KeyM: "m" })[event.code];
      if (letter === "j" || letter === "m") return "Enter";
    }
    return event.key;
  }

  function onKey(event) {
    const key = keyOf(event);
    const target = event.target;
    const inPaste = target && target.id === "paste";
    // The photo picker takes no typing: a scanner's characters there were lost (the focus
    // stays on it after a photo was chosen), so they go to the scanner box as from a button.
    const editable = target && (target.tagName === "TEXTAREA" ||
      (target.tagName === "INPUT" && target.type !== "file"));
    if (!editable && event.key.length === 1 && event.key !== " " && !event.ctrlKey &&
        !event.metaKey && !event.altKey) {
      // A scanner typing while a button or the page has the focus: the characters go to
      // the scanner box (focus moved during keydown takes this very key).
      $("wedge").focus({ preventScroll: true });
    }
    if (key === "Escape") {
      event.preventDefault();
      if (inPaste) target.value = "";
      backToScanning();
      return;
    }
    if ((key !== "Enter" && key !== "Tab") || event.isComposing) return;
    if (inPaste) {
      // Enter (a card's text is one line) or Ctrl+Enter verifies; so does a scanner that
      // typed into this box and ended with Enter or Tab. Shift+Enter stays a new line.
      const text = target.value.trim();
      const tabbed = key === "Tab" && !event.shiftKey && /^FM[12]:/i.test(text);
      if ((key === "Enter" && !event.shiftKey) || tabbed) {
        if (!text) {
          if (key === "Enter") event.preventDefault();   // a suffix's second Enter
          return;
        }
        event.preventDefault();
        state.scanEndedAt = performance.now();
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
      if (key === "Tab") return;   // the clerk moving through the page
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
    const text = scannerText(typed);
    const problem = scannerProblem(text);
    if (problem !== null) showScannerProblem(problem);
    else submit(text, "wedge", { decoded: now });
    focusWedge();
  }

  function scannerText(typed) {
    // A prefix before FM1:/FM2: (see MAX_PREFIX) is dropped. With Caps Lock on, a scanner's
    // letters arrive in lower case; the QR alphabet (FM1: or FM2: and Base45) has no
    // lower-case letters, so upper-casing a card's text is lossless.
    let text = typed.trim();
    const start = text.search(/FM[12]:/i);
    if (start > 0 && start <= MAX_PREFIX) text = text.slice(start);
    // (FM1 or FM2 without its colon: a scanner on another layout, see scannerProblem)
    if (!/^FM[12]/i.test(text)) return text;
    return text.replace(/[a-z]+/g, (letters) => letters.toUpperCase());
  }

  function submitPaste() {
    const text = scannerText($("paste").value);
    $("paste").value = "";
    const problem = scannerProblem(text);
    if (problem !== null) showScannerProblem(problem);
    else submit(text, "paste", { decoded: performance.now() });
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
    const menu = $("lang-menu");
    for (const lang of state.config.clerk_languages) {
      menu.append(el("option", { value: lang, lang }, state.config.language_names[lang]));
    }
    menu.addEventListener("change", () => { applyLanguage(menu.value); focusWedge(); });
    document.addEventListener("keydown", onKey);
    for (const box of [$("wedge"), $("paste")]) {
      box.addEventListener("input", () => { state.typingAt = performance.now(); });
    }
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
