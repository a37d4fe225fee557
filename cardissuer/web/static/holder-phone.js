/* The holder page's live card (docs/FORMAT.md section 11).
 *
 * On the device the holder link was opened on, this script
 *  1. makes a P-256 ECDSA key with WebCrypto, extractable: false, and keeps the CryptoKey in
 *     IndexedDB (the browser keeps the private key; nobody, this script included, can read it);
 *  2. registers the public key (JWK) with the issuer (POST {base}/device-key), which signs the
 *     phone card bound to it, and keeps the card in IndexedDB;
 *  3. shows a live presentation for the counter the holder chose: "FM2:" Base45 of
 *     part(header) part(payload) part(signature) part(disclosures) part(proof), where the
 *     proof is the 4-byte time slot and the 64-byte ECDSA signature (WebCrypto gives r||s, the
 *     JWS form) over "FM2-proof" 0x00 SHA-256(card JWS) SHA-256(disclosures) slot service.
 *     A new QR every 10-second slot;
 *  4. keeps working with no network (a service worker keeps the page, this script and the
 *     QR encoder; IndexedDB keeps the key and the card), and warns when the phone's clock is
 *     off, the card near its end or the kept card old.
 *
 * The issuer packs each counter's disclosures (raw DEFLATE with the D1 dictionary: browsers
 * cannot deflate with a preset dictionary); this script carries them as they are and signs
 * over them. keys/phone.py::present is the same construction in Python.
 */
"use strict";

(function () {
  const SLOT_SECONDS = 10;
  const DB_NAME = "fmcard-phone";
  const STORE = "cards";
  const BASE45 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";
  const ALG_CODES = { ES256: 1, EdDSA: 2 };
  const ZIP_CODES = { DEF: 1, D1: 2 };
  const HEADER = /^\{"alg":"([A-Za-z0-9]+)","kid":"([A-Za-z0-9_-]{1,64})","zip":"([A-Z0-9]+)"\}$/;
  const SMALL_CODE_VERSION = 12;
  const DAY = 86400;
  const encoder = new TextEncoder();

  // --- bytes -------------------------------------------------------------------------------

  function fromB64url(text) {
    const padded = text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4);
    const raw = atob(padded);
    const out = new Uint8Array(raw.length);
    for (let i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
    return out;
  }

  function concat(chunks) {
    const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
    let offset = 0;
    for (const chunk of chunks) {
      out.set(chunk, offset);
      offset += chunk.length;
    }
    return out;
  }

  /** part(x) = varint(len(x)) x, the length as a minimal unsigned LEB128 (schemas/qrtext.py). */
  function part(data) {
    const length = [];
    let value = data.length;
    do {
      const byte = value & 0x7f;
      value >>>= 7;
      length.push(value ? byte | 0x80 : byte);
    } while (value);
    return concat([Uint8Array.from(length), data]);
  }

  /** The header part: the compact form %x01 alg zip kid for the usual header, else its JSON. */
  function compactHeader(header) {
    const match = HEADER.exec(new TextDecoder().decode(header));
    if (!match || !(match[1] in ALG_CODES) || !(match[3] in ZIP_CODES)) return header;
    return concat([Uint8Array.of(1, ALG_CODES[match[1]], ZIP_CODES[match[3]]), encoder.encode(match[2])]);
  }

  /** RFC 9285 Base45: two bytes make three characters, a last single byte two. */
  function base45(data) {
    let text = "";
    for (let i = 0; i + 1 < data.length; i += 2) {
      let n = data[i] * 256 + data[i + 1];
      const c = n % 45; n = (n - c) / 45;
      const d = n % 45; const e = (n - d) / 45;
      text += BASE45[c] + BASE45[d] + BASE45[e];
    }
    if (data.length % 2) {
      const n = data[data.length - 1];
      text += BASE45[n % 45] + BASE45[Math.floor(n / 45)];
    }
    return text;
  }

  async function sha256(data) {
    return new Uint8Array(await crypto.subtle.digest("SHA-256", data));
  }

  // --- the presentation --------------------------------------------------------------------

  function slotOf(millis) {
    return Math.floor(millis / 1000 / SLOT_SECONDS);
  }

  /** The "FM2:" text for ``counter`` (an entry of the card's ``counters``) in ``slot``. */
  async function present(card, key, counter, slot) {
    const jws = encoder.encode(card.header + "." + card.payload + "." + card.signature);
    const disclosures = fromB64url(counter.disclosures);
    const slotBytes = new Uint8Array(4);
    new DataView(slotBytes.buffer).setUint32(0, slot, false);
    const input = concat([
      encoder.encode("FM2-proof\u0000"),
      await sha256(jws),
      await sha256(disclosures),
      slotBytes,
      encoder.encode(counter.service),
    ]);
    const signature = new Uint8Array(
      await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, key, input)
    );
    if (signature.length !== 64) throw new Error("the device signature is not 64 bytes");
    const container = concat([
      part(compactHeader(fromB64url(card.header))),
      part(fromB64url(card.payload)),
      part(fromB64url(card.signature)),
      part(disclosures),
      part(concat([slotBytes, signature])),
    ]);
    return "FM2:" + base45(container);
  }

  /** The QR for ``text``: M up to version 12, L above, as the issuer's printed QR. A probe
   *  at 12-M decides: too long a text fails it before any mask is scored (nearly all of an
   *  encoding's cost), so a live presentation is encoded once, at L. */
  function qrFor(text) {
    let level = "M";
    try {
      const probe = qrcode(SMALL_CODE_VERSION, "M");
      probe.addData(text, "Alphanumeric");
      probe.make();
    } catch (overflow) {
      level = "L";
    }
    const code = qrcode(0, level);
    code.addData(text, "Alphanumeric");
    code.make();
    return code;
  }

  function draw(canvas, code) {
    const quiet = 4;
    const modules = code.getModuleCount();
    const cells = modules + 2 * quiet;
    const width = Math.min(canvas.parentElement.clientWidth || 360, 480);
    const scale = Math.max(2, Math.floor((width * (window.devicePixelRatio || 1)) / cells));
    canvas.width = canvas.height = cells * scale;
    canvas.style.width = canvas.style.height = (cells * scale) / (window.devicePixelRatio || 1) + "px";
    const context = canvas.getContext("2d");
    context.fillStyle = "#fff";
    context.fillRect(0, 0, canvas.width, canvas.height);
    context.fillStyle = "#000";
    for (let row = 0; row < modules; row++) {
      for (let col = 0; col < modules; col++) {
        if (code.isDark(row, col)) context.fillRect((col + quiet) * scale, (row + quiet) * scale, scale, scale);
      }
    }
  }

  // --- storage -----------------------------------------------------------------------------

  function database() {
    return new Promise((resolve, reject) => {
      const request = indexedDB.open(DB_NAME, 1);
      request.onupgradeneeded = () => request.result.createObjectStore(STORE);
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
  }

  async function load(id) {
    const db = await database();
    return new Promise((resolve, reject) => {
      const request = db.transaction(STORE).objectStore(STORE).get(id);
      request.onsuccess = () => resolve(request.result || null);
      request.onerror = () => reject(request.error);
    });
  }

  async function save(id, value) {
    const db = await database();
    return new Promise((resolve, reject) => {
      const transaction = db.transaction(STORE, "readwrite");
      transaction.objectStore(STORE).put(value, id);
      transaction.oncomplete = () => resolve();
      transaction.onerror = () => reject(transaction.error);
    });
  }

  // --- the issuer --------------------------------------------------------------------------

  /** Ask the issuer; keep how far the phone's clock is from the issuer's (the answer's time,
   *  against the middle of the round trip). */
  async function ask(url, init) {
    const sent = Date.now();
    const response = await fetch(url, Object.assign({ credentials: "same-origin", cache: "no-store" }, init));
    const received = Date.now();
    if (!response.ok) {
      const problem = await response.json().catch(() => ({}));
      const error = new Error(problem.detail || "HTTP " + response.status);
      error.status = response.status;
      throw error;
    }
    const card = await response.json();
    card.clock_offset = Math.round((sent + received) / 2 / 1000 - card.fetched_at);
    card.fetched_locally = Math.floor(received / 1000);
    return card;
  }

  function register(base, jwk) {
    return ask(base + "/device-key", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ jwk: { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y } }),
    });
  }

  // --- the page ----------------------------------------------------------------------------

  // The construction without the page, for the bench (bench/live.py measures it in Chromium).
  window.fmcardPhone = { present, qrFor, draw, slotOf };
  const section = document.getElementById("holder-live");
  if (!section) return;
  const base = section.dataset.base;
  const words = {};
  const counterNames = {};
  for (const span of document.querySelectorAll("#live-words [data-word]")) words[span.dataset.word] = span.textContent;
  for (const span of document.querySelectorAll("#live-words [data-service]")) counterNames[span.dataset.service] = span.textContent;
  const status = document.getElementById("live-status");
  const canvas = document.getElementById("live-qr");
  const state = { entry: null, counter: null, timer: null, shown: null };
  window.fmcardLive = state; // for the page's tests and the bench: the last text shown

  function say(text) {
    status.textContent = text;
  }

  function day(seconds) {
    return new Date(seconds * 1000).toLocaleDateString(section.dataset.lang || undefined);
  }

  function warn(list) {
    const box = document.getElementById("live-warnings");
    box.replaceChildren(
      ...list.map(([kind, text]) => {
        const item = document.createElement("li");
        item.className = "holder-warning";
        item.dataset.warning = kind;
        item.textContent = text;
        return item;
      })
    );
  }

  function warnings(card, online) {
    const now = Date.now() / 1000;
    const list = [];
    if (!online) list.push(["offline", words.offline]);
    if (Math.abs(card.clock_offset || 0) > Number(section.dataset.skew)) {
      list.push(["clock", words.clock.replace("{n}", String(Math.abs(card.clock_offset)))]);
    }
    if (card.expires_at <= now) list.push(["expired", words.expired]);
    else if (card.expires_at - now < Number(section.dataset.nearExpiryDays) * DAY) {
      list.push(["expiring", words.expiring.replace("{date}", day(card.expires_at))]);
    }
    if (card.state === "suspended") list.push(["suspended", words.suspended]);
    if (now - card.fetched_locally > Number(section.dataset.staleDays) * DAY) {
      list.push(["stale", words.stale.replace("{date}", day(card.fetched_locally))]);
    }
    warn(list);
  }

  function fieldsOf(counter) {
    const list = document.getElementById("live-fields");
    const items = [words.clear];
    for (const label of counter.labels) {
      if (label.startsWith("en.")) {
        const service = label.slice(3);
        items.push(words.en.replace("{service}", counterNames[service] || service));
      } else if (words[label]) items.push(words[label]);
    }
    list.replaceChildren(
      ...items.map((text) => {
        const item = document.createElement("li");
        item.textContent = text;
        return item;
      })
    );
    list.dataset.labels = counter.labels.join(" ");
  }

  async function show() {
    clearTimeout(state.timer);
    const turn = (state.turn = (state.turn || 0) + 1);
    const { entry, counter } = state;
    const now = Date.now();
    const slot = slotOf(now);
    const started = performance.now();
    const text = await present(entry.card, entry.key, counter, slot);
    if (turn !== state.turn) return; // another counter was chosen meanwhile
    const signed = performance.now();
    draw(canvas, qrFor(text));
    state.shown = { text, slot, service: counter.service, sign_ms: signed - started, draw_ms: performance.now() - signed };
    canvas.dataset.slot = String(slot);
    canvas.dataset.service = counter.service;
    // The next slot starts at (slot + 1) * 10 s: redraw just after it.
    state.timer = setTimeout(show, (slot + 1) * SLOT_SECONDS * 1000 - Date.now() + 20);
  }

  function choose(counter) {
    state.counter = counter;
    for (const button of document.querySelectorAll("#live-counters button")) {
      button.setAttribute("aria-pressed", String(button.dataset.service === counter.service));
    }
    fieldsOf(counter);
    return show();
  }

  function offer(card) {
    const box = document.getElementById("live-counters");
    box.replaceChildren(
      ...card.counters.map((counter) => {
        const button = document.createElement("button");
        button.type = "button";
        button.className = "holder-counter";
        button.dataset.service = counter.service;
        button.textContent = counterNames[counter.service] || counter.service;
        button.addEventListener("click", () => choose(counter));
        return button;
      })
    );
  }

  async function start() {
    if (!window.crypto || !crypto.subtle || !window.indexedDB) {
      say(words.unsupported);
      return;
    }
    if ("serviceWorker" in navigator) {
      navigator.serviceWorker.register(base + "/sw.js", { scope: base }).catch(() => {});
    }
    let entry = await load(base);
    if (!entry) {
      const pair = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, ["sign", "verify"]);
      const jwk = await crypto.subtle.exportKey("jwk", pair.publicKey);
      entry = { key: pair.privateKey, jwk, card: null };
      await save(base, entry); // the key first: a lost answer is retried with the same key
    }
    let online = true;
    try {
      entry.card = entry.card ? await ask(base + "/phone-card") : await register(base, entry.jwk);
      await save(base, entry);
    } catch (error) {
      // No network (no status): the kept card still works. The issuer refusing (a status):
      // the kept card is shown if there is one, and its warnings say how old it is.
      online = Boolean(error.status);
      if (!entry.card) {
        say(words.failed);
        return;
      }
    }
    state.entry = entry;
    offer(entry.card);
    warnings(entry.card, online);
    document.getElementById("live-ready").hidden = false;
    // The live code replaces the printed card's static one: a screenshot of that would
    // verify as "printed" wherever printed cards are accepted.
    document.getElementById("holder-printed")?.remove();
    say(words.ready);
    section.dataset.ready = "true";
    await choose(entry.card.counters[0]);
  }

  window.fmcardLive.choose = (service) =>
    choose(state.entry.card.counters.find((counter) => counter.service === service));
  window.fmcardLive.present = (service, slot) =>
    present(
      state.entry.card,
      state.entry.key,
      state.entry.card.counters.find((counter) => counter.service === service),
      slot
    );
  // A phone asleep delays timers: coming back, draw the current slot at once.
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && state.counter) show();
  });
  start().catch(() => say(words.failed));
})();
