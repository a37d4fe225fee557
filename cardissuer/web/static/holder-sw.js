/* The holder page's service worker: the card page keeps working with no network.
 *
 * Served as {base}/sw.js (base = /h/{token}) and registered with scope {base}. It keeps the
 * page, its style, its scripts (the live card and the QR encoder), the portrait, the printed
 * card's QR and the manifest in a cache of this link's own; the key and the phone card are in
 * IndexedDB (holder-phone.js). Every request goes to the network first, so an online page is
 * always current, and falls back to the kept copy when the network fails. The device-key and
 * phone-card requests are never kept: they say what the issuer says now, or fail.
 */
"use strict";

const BASE = self.location.pathname.replace(/\/sw\.js$/, "");
const CACHE = "fmcard-holder:" + BASE;
const KEPT = [
  BASE,
  BASE + "/manifest.webmanifest",
  BASE + "/portrait.avif",
  BASE + "/qr.png",
  "/static/holder.css",
  "/static/holder-phone.js",
  "/static/vendor/qrcode.js",
];

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches.open(CACHE).then((cache) =>
      Promise.all(
        KEPT.map((url) =>
          fetch(url, { credentials: "same-origin", cache: "no-store" })
            .then((response) => (response.ok ? cache.put(url, response) : undefined))
            .catch(() => undefined)
        )
      )
    ).then(() => self.skipWaiting())
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(self.clients.claim());
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  // The page is kept under its path alone: ?lang= gives the same card in another language.
  const key = request.mode === "navigate" && url.pathname === BASE ? BASE : url.pathname;
  if (!KEPT.includes(key)) return;
  event.respondWith(
    fetch(request, { cache: "no-store" })
      .then((response) => {
        if (response.ok) {
          const copy = response.clone();
          caches.open(CACHE).then((cache) => cache.put(key, copy));
        }
        return response;
      })
      .catch(() =>
        caches.open(CACHE).then((cache) => cache.match(key)).then((kept) => kept || Response.error())
      )
  );
});
