"""The counter station: ``fmcard-verify serve``, a local web page that scans and verifies.

Standard library only (:mod:`http.server`), so a counter keeps the core install. The page
(``verifier/station/``: HTML, CSS, JS and the vendored zxing-cpp WebAssembly decoder) reads
the QR from the camera, a keyboard-wedge scanner, pasted text or a photo, and posts the text
here; this process verifies it offline with :class:`~verifier.verifier.Verifier` and answers
with the verdict, the card fields the counter's policy lets the screen show, the signed
portrait as a data URL, and how old the station's data is.

Endpoints (all on 127.0.0.1 by default)::

    GET  /                   the page          GET /static/<file>   its CSS, JS, decoder, licences
    (HEAD wherever GET; every answer, errors included, carries the same security headers)
    GET  /api/config         service, policy, languages, auto-return delay
    GET  /api/status         data age: trust list, status lists, last sync
    POST /api/verify         {"text": "FM1:..."} -> the verdict (JSON)

The station keeps no scan history: a verdict lives in the answer and on the screen until the
page returns to scanning. ``--log FILE`` keeps a privacy-preserving line per scan
(:mod:`verifier.scanlog`). Requests must name this host (no DNS rebinding) and POSTs must be
JSON from this origin (no cross-site form posts).
"""

from __future__ import annotations

import base64
import json
import socket
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any

from schemas import code as foreigner_code
from schemas.errors import SchemaError
from schemas.payload import portrait_media_type
from schemas.services import SERVICES_BY_CODE
from verifier import _json
from verifier._presentation import ReplayMemory
from verifier.bundle import Bundle
from verifier.errors import BundleError, VerifierError
from verifier.i18n import LANGUAGE_NAMES, LANGUAGES, RTL_LANGUAGES
from verifier.policy import SHOWABLE_FIELDS, LocalPolicy, Policy, counter_types
from verifier.reason import Reason
from verifier.result import VerificationResult
from verifier.scanlog import ScanLog
from verifier.station_text import service_names, station_text
from verifier.sync import StationData, data_age
from verifier.verifier import Verifier

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8470
DEFAULT_RETURN_AFTER = 6.0
MAX_REQUEST_BODY = 16 * 1024
CLERK_LANGUAGES = LANGUAGES
HOLDER_LANGUAGES = ("en", "ru", "ar")
"""The languages of the lines shown to the holder under the verdict, unless configured."""
AMBER_REASONS = frozenset({Reason.STATUS_UNKNOWN, Reason.TRUST_LIST_EXPIRED})
GET_PATHS = frozenset({"/api/config", "/api/status", "/favicon.ico"})
STATIC_FILES = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/static/station.css": ("station.css", "text/css; charset=utf-8"),
    "/static/station.js": ("station.js", "text/javascript; charset=utf-8"),
    "/static/decoder.js": ("decoder.js", "text/javascript; charset=utf-8"),
    "/static/vendor/zxing-reader.js": ("vendor/zxing-reader.js", "text/javascript; charset=utf-8"),
    # WebAssembly.instantiateStreaming compiles only what is served as application/wasm.
    "/static/vendor/zxing_reader.wasm": ("vendor/zxing_reader.wasm", "application/wasm"),
    "/static/vendor/LICENSE.zxing-wasm": ("vendor/LICENSE.zxing-wasm", "text/plain; charset=utf-8"),
    "/static/vendor/LICENSE.zxing-cpp": ("vendor/LICENSE.zxing-cpp", "text/plain; charset=utf-8"),
}
CONTENT_SECURITY_POLICY = (
    # 'wasm-unsafe-eval' lets the page compile the vendored WebAssembly decoder (served by this
    # server alone, see connect-src); JavaScript eval stays refused.
    "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; "
    "img-src 'self' data: blob:; media-src 'self' blob: mediastream:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


@dataclass(frozen=True)
class StationConfig:
    """How this counter is set up."""

    service: str
    counter: str | None = None
    clerk_language: str = "zh"
    return_after: float = DEFAULT_RETURN_AFTER
    local_policies: tuple[LocalPolicy, ...] = ()
    holder_languages: tuple[str, ...] = HOLDER_LANGUAGES

    def __post_init__(self) -> None:
        if self.clerk_language not in CLERK_LANGUAGES:
            raise VerifierError(f"the clerk's language must be one of {CLERK_LANGUAGES}")
        unknown = [code for code in self.holder_languages if code not in LANGUAGES]
        if unknown or not self.holder_languages:
            raise VerifierError(f"the holder's languages must be some of {LANGUAGES}")
        if not 0 <= self.return_after <= 600:
            raise VerifierError("the return delay must be between 0 and 600 seconds")


class BundleHolder:
    """The station's current bundle, reloaded when its file changes.

    A changed file is taken as an update of the held bundle (:meth:`Bundle.update`): a
    rollback or a badly signed file is refused and the held bundle stays in use, with the
    error shown on the page.
    """

    def __init__(self, path: Path, bundle: Bundle) -> None:
        self.path = path
        self.bundle = bundle
        self.reload_error: str | None = None
        self._stamp = self._file_stamp()
        self._lock = threading.Lock()

    @classmethod
    def from_file(
        cls, path: Path, *, at: datetime, anchor_thumbprint: str | None = None
    ) -> BundleHolder:
        bundle = Bundle.load(path, at=at, anchor_thumbprint=anchor_thumbprint)
        bundle.require_anchor(anchor_thumbprint)
        return cls(path, bundle)

    @classmethod
    def from_data_dir(cls, data: StationData, *, at: datetime) -> BundleHolder:
        bundle = data.load(at=at)
        if bundle is None:
            raise BundleError(
                f"no bundle in {data.directory}: run 'fmcard-verify sync --from URL-or-FILE' "
                "first, or give --bundle FILE"
            )
        return cls(data.bundle_path, bundle)

    def current(self, at: datetime) -> Bundle:
        stamp = self._file_stamp()
        if stamp != self._stamp:
            with self._lock:
                if stamp != self._stamp:
                    self._stamp = stamp
                    self._reload(at)
        return self.bundle

    def _reload(self, at: datetime) -> None:
        try:
            document = _json.loads(self.path.read_text(encoding="utf-8"))
            self.bundle = self.bundle.update(document, at=at)
            self.reload_error = None
        except (OSError, ValueError, VerifierError) as exc:
            self.reload_error = f"the new bundle file was refused, the held one stays: {exc}"

    def _file_stamp(self) -> tuple[int, int, int] | None:
        try:
            stat = self.path.stat()
        except OSError:
            return None
        return (stat.st_mtime_ns, stat.st_size, stat.st_ino)


@dataclass
class Station:
    """Verifies for one counter and shapes the answers for its page."""

    holder: BundleHolder
    config: StationConfig
    log: ScanLog | None = None
    data: StationData | None = None
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    _verifiers: dict[int, Verifier] = field(default_factory=dict, repr=False)
    replay_memory: ReplayMemory = field(default_factory=ReplayMemory, repr=False)
    """The live phone-card proofs this counter accepted, kept across bundle reloads (the
    verifier is rebuilt for each bundle): the same proof shown twice is PROOF_REPLAYED."""

    def verifier(self, bundle: Bundle) -> Verifier:
        found = self._verifiers.get(id(bundle))
        if found is None or found.bundle is not bundle:
            self._verifiers.clear()
            found = Verifier(
                bundle,
                policies=self.config.local_policies,
                replay_memory=self.replay_memory,
            )
            self._verifiers[id(bundle)] = found
        return found

    def policy(self) -> Policy:
        bundle = self.holder.current(self.clock())
        return self.verifier(bundle).policy(self.config.service)

    def verify(self, text: str) -> dict[str, Any]:
        at = self.clock()
        bundle = self.holder.current(at)
        verifier = self.verifier(bundle)
        result = verifier.verify(text, service=self.config.service, at=at)
        if self.log is not None:
            self.log.record(result)
        return present(result, verifier.policy(self.config.service), bundle, at)

    def config_json(self) -> dict[str, Any]:
        policy = self.policy()
        service = SERVICES_BY_CODE.get(self.config.service)
        return {
            "service": self.config.service,
            "service_name": service_names(service.name_en) if service else None,
            "counter": self.config.counter or _counter_of(self.config.service),
            "clerk_language": self.config.clerk_language,
            "clerk_languages": list(CLERK_LANGUAGES),
            "holder_languages": list(self.config.holder_languages),
            "languages": list(LANGUAGES),
            "language_names": LANGUAGE_NAMES,
            "rtl_languages": sorted(RTL_LANGUAGES),
            "text": {language: station_text(language) for language in LANGUAGES},
            "return_after_ms": int(self.config.return_after * 1000),
            "policy": {**policy.to_json(), "show": _show_order(policy)},
            "messages": {reason.value: _messages(reason) for reason in Reason},
        }

    def status_json(self) -> dict[str, Any]:
        at = self.clock()
        bundle = self.holder.current(at)
        age = data_age(bundle, at=at, policy=self.policy())
        out: dict[str, Any] = {"checked_at": at.isoformat(), **age.to_json()}
        out["reload_error"] = self.holder.reload_error
        if self.data is not None:
            state = self.data.state()
            out["last_sync_seconds_ago"] = (
                int((at - state.last_success).total_seconds()) if state.last_success else None
            )
            out["last_sync_error"] = state.last_error
            out["clock_offset_seconds"] = state.clock_offset_seconds
        return out


def verdict_colour(reason: Reason, *, getting_old: bool) -> str:
    """green: go; red: refuse; amber: the station cannot be sure (or its data is ageing)."""
    if reason is Reason.VALID:
        return "amber" if getting_old else "green"
    return "amber" if reason in AMBER_REASONS else "red"


def present(
    result: VerificationResult, policy: Policy, bundle: Bundle, at: datetime
) -> dict[str, Any]:
    """The verdict for the page: ``result.to_json()`` cut down to the fields the policy shows,
    plus the portrait as a data URL, the code grouped for reading aloud, and the data age."""
    out = result.to_json()
    show = policy.show
    age = data_age(bundle, at=at, policy=policy)
    status_age = result.status_age_seconds
    getting_old = age.getting_old or (
        status_age is not None and status_age > policy.max_status_age.total_seconds() * 3 / 4
    )
    out["verdict"] = verdict_colour(result.reason, getting_old=getting_old)
    # (``out["message"]`` is the result's own: the reason's words, or the clock's when the
    # counter's clock is what stopped the check)
    out["data"] = {
        **age.to_json(),
        "status_age_seconds": status_age,
        "getting_old": getting_old,
    }
    card = result.card
    if card is not None:
        shown: dict[str, Any] = {
            "family_name": card.family_name,
            "given_names": card.given_names,
            "native_name": card.native_name,
            "chinese_name": card.chinese_name,
        }
        if "code" in show:
            shown["code"] = card.code
            shown["code_grouped"] = foreigner_code.format_for_reading(card.code)
        if "nationality" in show:
            shown["nationality"] = card.nationality
        if "birth_date" in show:
            shown["birth_date"] = None if card.birth_date is None else str(card.birth_date)
        if "card_dates" in show:
            shown["valid_from"] = card.valid_from.isoformat()
            shown["expires_at"] = card.expires_at.isoformat()
        if "issuer" in show:
            issuer = bundle.trust_list.issuer(card.issuer)
            shown["issuer"] = card.issuer
            if issuer is not None:
                shown["issuer_name"] = {"en": issuer.name_en, "zh": issuer.name_zh}
        shown["has_portrait"] = result.portrait is not None
        out["card"] = shown
    if "entitlement" not in show:
        out.pop("entitlement", None)
    out["portrait"] = None
    if result.portrait is not None and "portrait" in show:
        try:
            media_type = portrait_media_type(result.portrait)
        except SchemaError:  # pragma: no cover - the verifier already refused other formats
            media_type = "application/octet-stream"
        encoded = base64.b64encode(result.portrait).decode("ascii")
        out["portrait"] = f"data:{media_type};base64,{encoded}"
    out["show"] = _show_order(policy)
    return out


def _counter_of(service: str) -> str | None:
    return next((t.name for t in counter_types().values() if t.service == service), None)


def _messages(reason: Reason) -> dict[str, str]:
    return {language: reason.message(language) for language in LANGUAGES}


def _show_order(policy: Policy) -> list[str]:
    return [name for name in SHOWABLE_FIELDS if name in policy.show]


# -- HTTP ---------------------------------------------------------------------------------


class StationServer(ThreadingHTTPServer):
    """A :class:`ThreadingHTTPServer` serving one :class:`Station`."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], station: Station, *, quiet: bool = True) -> None:
        self.station = station
        self.quiet = quiet
        self.static = _load_static()
        super().__init__(address, StationHandler)

    def handle_error(self, request: Any, client_address: Any) -> None:  # noqa: ARG002
        """A browser that went away mid-answer (a closed tab, a reload) is routine: say
        nothing. Anything else is one line without the traceback, whose frames could hold
        card data."""
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError | TimeoutError):
            return
        sys.stderr.write(
            f"fmcard-verify serve: a request failed: {type(error).__name__} (the station runs on)\n"
        )

    def _address(self) -> tuple[str, int]:
        host, port = self.server_address[:2]
        return (host.decode() if isinstance(host, bytes) else str(host)), int(port)

    @property
    def url(self) -> str:
        host, port = self._address()
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}/"

    def allowed_hosts(self) -> set[str]:
        host, port = self._address()
        names = {"127.0.0.1", "localhost", "[::1]", f"[{host}]" if ":" in host else host}
        return {f"{name}:{port}" for name in names}


def _load_static() -> dict[str, tuple[bytes, str]]:
    folder = resources.files("verifier").joinpath("station")
    out = {}
    for path, (name, media_type) in STATIC_FILES.items():
        resource = folder
        for part in name.split("/"):
            resource = resource.joinpath(part)
        out[path] = (resource.read_bytes(), media_type)
    return out


class StationHandler(BaseHTTPRequestHandler):
    server: StationServer
    server_version = "fmcard-station/1"
    sys_version = ""
    # http.server takes a request it cannot parse for HTTP/0.9 and answers it with a bare
    # body, without status line or headers; answer every request as HTTP/1.0 at least.
    default_request_version = "HTTP/1.0"
    timeout = 30  # seconds a client may take to send its request (no thread hangs forever)

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes: without this, Nagle's algorithm and the
        # browser's delayed ACK hold the body back ~40 ms, a sixth of the latency budget.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:
        if not self._host_ok():
            return
        path = self._path()
        station = self.server.station
        if path in self.server.static:
            body, media_type = self.server.static[path]
            cache = "no-cache" if path == "/" else "max-age=300"
            self._send(HTTPStatus.OK, body, media_type, cache=cache)
        elif path == "/api/config":
            self._json(HTTPStatus.OK, station.config_json())
        elif path == "/api/status":
            self._json(HTTPStatus.OK, station.status_json())
        elif path == "/favicon.ico":
            self._send(HTTPStatus.NO_CONTENT, b"", "text/plain")
        elif path == "/api/verify":
            self._not_allowed(path)
        else:
            self._json(HTTPStatus.NOT_FOUND, {"error": "not found"})

    def do_HEAD(self) -> None:
        self.do_GET()  # the same headers; _send leaves the body out

    def do_OPTIONS(self) -> None:
        if self._host_ok():
            self._not_allowed(self._path())

    def do_POST(self) -> None:
        if not self._host_ok():
            return
        if self.path != "/api/verify":
            if self._path() in GET_PATHS or self._path() in self.server.static:
                self._not_allowed(self._path())
            else:
                self._json(HTTPStatus.NOT_FOUND, {"error": "not found"})
            return
        origin = self.headers.get("Origin")
        if origin is not None and origin.removeprefix("http://") not in self.server.allowed_hosts():
            self._json(HTTPStatus.FORBIDDEN, {"error": "cross-origin request refused"})
            return
        content_type = self.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
        if content_type != "application/json":
            self._json(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, {"error": "send application/json"})
            return
        length_text = self.headers.get("Content-Length", "")
        if not length_text.isdigit():
            self._json(HTTPStatus.LENGTH_REQUIRED, {"error": "Content-Length is required"})
            return
        length = int(length_text)
        if length > MAX_REQUEST_BODY:
            self.close_connection = True
            self._json(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": "request too large"})
            return
        try:
            document = _json.loads(self.rfile.read(length).decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:  # _json: also when nested too deeply
            self._json(HTTPStatus.BAD_REQUEST, {"error": f"the body is not usable JSON: {exc}"})
            return
        text = document.get("text") if isinstance(document, dict) else None
        if not isinstance(text, str):
            self._json(HTTPStatus.BAD_REQUEST, {"error": 'send {"text": "FM1:..."}'})
            return
        self._json(HTTPStatus.OK, self.server.station.verify(text))

    def _path(self) -> str:
        return self.path.split("?", 1)[0]

    def _not_allowed(self, path: str) -> None:
        if path == "/api/verify":
            allow = "POST"
        elif path in GET_PATHS or path in self.server.static:
            allow = "GET, HEAD"
        else:
            self._json(HTTPStatus.NOT_FOUND, {"error": "not found"})
            return
        self._json(HTTPStatus.METHOD_NOT_ALLOWED, {"error": f"use {allow}"}, extra={"Allow": allow})

    def send_error(
        self,
        code: int,
        message: str | None = None,
        explain: str | None = None,  # noqa: ARG002 - the text of http.server's HTML page
    ) -> None:
        """Errors that :mod:`http.server` finds itself (a bad request line, an unknown method,
        too many headers) answer as JSON with the same security headers as everything else."""
        try:
            status = HTTPStatus(code)
        except ValueError:
            status = HTTPStatus.BAD_REQUEST
        self.close_connection = True
        extra = {"Allow": "GET, HEAD, POST"} if status is HTTPStatus.NOT_IMPLEMENTED else {}
        self._json(status, {"error": message or status.phrase}, extra=extra)

    def _host_ok(self) -> bool:
        if self.headers.get("Host", "") in self.server.allowed_hosts():
            return True
        self._json(HTTPStatus.MISDIRECTED_REQUEST, {"error": "unknown Host"})
        return False

    def _json(self, status: HTTPStatus, value: Any, *, extra: dict[str, str] | None = None) -> None:
        body = json.dumps(value, ensure_ascii=False).encode("utf-8")
        self._send(status, body, "application/json; charset=utf-8", cache="no-store", extra=extra)

    def _send(
        self,
        status: HTTPStatus,
        body: bytes,
        media_type: str,
        *,
        cache: str = "",
        extra: dict[str, str] | None = None,
    ) -> None:
        """Every answer of the station goes out here, so each carries the same headers."""
        self.send_response(status)
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", media_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", cache or "no-store")
        self.send_header("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Cross-Origin-Resource-Policy", "same-origin")
        self.send_header("Permissions-Policy", "camera=(self), microphone=()")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        # Request lines carry no card data (the QR text is in POST bodies), but the station
        # keeps no history by default, so nothing is printed unless asked for.
        if not self.server.quiet:
            super().log_message(format, *args)
