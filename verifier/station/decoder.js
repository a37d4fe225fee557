// fmcard counter station: the QR decoder, zxing-cpp compiled to WebAssembly (vendor/, see its
// README). Camera frames are decoded whole, at the camera's own resolution: a portrait card's
// dense code (QR version 16, 81 modules) on a phone held up to a 640x480 camera has modules of
// about 2 pixels, and any shrinking blurs them below what a decoder reads. zxing-cpp's own
// downscaling pyramid (tried after the full frame) finds a large code close to the lens, so
// one call covers the near and the far card; a 1280x720 frame takes it about 10 ms.
"use strict";

(() => {
  const WASM_DIR = "/static/vendor/";
  const CAMERA = {
    formats: ["QRCode"],
    tryHarder: true,       // more scan lines: the tilted and the small code
    tryRotate: false,      // a QR code is found at any angle anyway; rotation is for 1-D codes
    tryInvert: false,      // cards and phone pages show dark modules on light
    tryDownscale: true,
    maxNumberOfSymbols: 1,
  };
  const PHOTO = Object.assign({}, CAMERA, { tryInvert: true });

  // Warm-up: a version-10 QR (57 modules, one hex string a row, leading bits padding),
  // decoded at start so that the engine has compiled the whole decoding path (WebAssembly
  // tiers up from a quick baseline compile) before the first card.
  const WARMUP_TEXT = "FM1:WARMUP0123456789 $%*+-./:WARMUP0123456789 $%*+-./:WARMUP0123456789 $%*+-./:WARMUP0123456789 $%*+-./:WARMUP0123456789 $%*+-./:WARMUP0123456789 $%*+-./:";
  const WARMUP_ROWS = [
    "1fc284ddb88c67f", "1057ac403999241", "174f381ab6bf65d", "1743295d21a7a5d", "1759317ff77e25d",
    "104de1b46260441", "1fd55555555557f", "0001061c65e6600", "1541b967e2e2d12", "1d8b2919373797b",
    "00f43d8ee566c6c", "1107bdf84898595", "02ecbb9d1d5d9c8", "1f2b1f944898db7", "017a8a415d7d6e2",
    "17aa9b16b2473c7", "1ddb3776ce2e594", "0abab32fb75f31a", "0162773afa63ffe", "100ab96c5881b7b",
    "046899d90dd2f4e", "071ac7544880840", "09ef3f454ddfd85", "059e5d5d26eb768", "18f8077f60aa1a1",
    "0c95a77875f6579", "07fa0fa7e6285f1", "1f1d7f644ab8115", "075dd5455cadb52", "0b1cb64c4b9891a",
    "0ff33077ddad3fd", "01263c86626669c", "125460f8a222c79", "07b3c2237b7762a", "18e81fb26a5697f",
    "19bc90a9b4bfe29", "19dab2d549fb58d", "0932849d30a64d4", "086df70449e4291", "023065d506695a4",
    "065b52bf92270f5", "1d3d2beef771776", "13e72a73866f586", "069e4b6e8849ab7", "0ef971c55c94d4e",
    "171a661d0b4aa73", "14cb6e005c9bc04", "1f34cda5251627f", "005a346fe1825f7", "0014e22477b7116",
    "1fc518f565a6d59", "104ca9444cb8f12", "1758895fdddd9f8", "1745dd1b44b8ec4", "1751fa0555ed651",
    "10496792b257347", "1fd263f57a35a55",
  ];

  async function readText(pixels, options) {
    const results = await window.ZXingWASM.readBarcodes(pixels, options);
    const found = results.find((result) => result.isValid && result.text);
    return found ? found.text : null;
  }

  function warmUpImage() {
    const size = WARMUP_ROWS.length;
    const px = 4;
    const canvas = document.createElement("canvas");
    canvas.width = 640;
    canvas.height = 480;
    const context = canvas.getContext("2d", { willReadFrequently: true });
    context.fillStyle = "#fff";
    context.fillRect(0, 0, canvas.width, canvas.height);
    context.fillStyle = "#000";
    const left = (canvas.width - size * px) / 2;
    const top = (canvas.height - size * px) / 2;
    WARMUP_ROWS.forEach((hex, y) => {
      const bits = [...hex].map((c) => parseInt(c, 16).toString(2).padStart(4, "0")).join("");
      [...bits.slice(-size)].forEach((bit, x) => {
        if (bit === "1") context.fillRect(left + x * px, top + y * px, px, px);
      });
    });
    return context.getImageData(0, 0, canvas.width, canvas.height);
  }

  async function load() {
    // The module would fetch its .wasm from a CDN by default: it comes from this server.
    await window.ZXingWASM.prepareZXingModule({
      overrides: { locateFile: (path) => WASM_DIR + path },
      fireImmediately: true,
    });
    const pixels = warmUpImage();
    const runs = [];
    let ok = true;
    for (let i = 0; i < 3; i++) {
      const started = performance.now();
      ok = (await readText(pixels, CAMERA)) === WARMUP_TEXT && ok;
      runs.push(performance.now() - started);
    }
    window.__fmcardWarmup = { ok, ms: runs, decoder: `zxing-wasm ${window.ZXingWASM.ZXING_WASM_VERSION}` };
    return ok;
  }

  const ready = (async () => {
    if (!window.ZXingWASM || typeof WebAssembly !== "object") return false;
    try {
      return await load();
    } catch (error) {
      window.__fmcardWarmup = { ok: false, error: String(error) };
      return false;
    }
  })();

  // The pixels of `source` (a video or an image bitmap) at `scale` of its size.
  function pixelsOf(source, width, height, scale, canvas) {
    const w = Math.max(1, Math.round(width * scale));
    const h = Math.max(1, Math.round(height * scale));
    if (canvas.width !== w) canvas.width = w;
    if (canvas.height !== h) canvas.height = h;
    const context = canvas.getContext("2d", { willReadFrequently: true });
    context.drawImage(source, 0, 0, w, h);
    return context.getImageData(0, 0, w, h);
  }

  window.fmcardDecoder = {
    ready,
    /** The text of the QR code in a camera frame, or null. */
    async fromFrame(video, canvas) {
      return readText(pixelsOf(video, video.videoWidth, video.videoHeight, 1, canvas), CAMERA);
    },
    /** The text of the QR code in a photo (capped at 2400 px a side), or null. */
    async fromPhoto(bitmap, canvas) {
      const scale = Math.min(1, 2400 / Math.max(bitmap.width, bitmap.height));
      return readText(pixelsOf(bitmap, bitmap.width, bitmap.height, scale, canvas), PHOTO);
    },
  };
})();
