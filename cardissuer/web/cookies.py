"""One rule for every cookie the service sets: console, portal and holder page alike.

A cookie is ``Secure`` when the browser reaches the service over https: always in production
with an https public URL (also behind a TLS-terminating proxy that talks plain http to the
service, whatever ``Host`` it passes on), and otherwise when the request itself came over
https. A development server reached over plain http (``./dev serve``) is the one case without
it, as the browser would never send the cookie back.

A ``Secure`` cookie that carries a session, a CSRF nonce or a message is named with the
``__Host-`` prefix: a browser accepts such a cookie only from this very host, with ``Path=/``
and no ``Domain``, so a sibling subdomain cannot toss in its own value (a session of the
attacker's choosing, or a CSRF nonce it knows). The prefix forces ``Path=/``, which is why
these cookies are no longer scoped to ``/portal`` or ``/console/login``; the purpose label in
their signatures keeps them apart. Reading uses the same name as writing, so an unprefixed
copy tossed in from a sibling is never read where the prefix is due.

Every cookie is ``HttpOnly`` (no script of ours reads one) and has an explicit ``SameSite``.
Only the holder page's device cookie keeps a per-link path (one phone may hold several
links), so it cannot have the prefix; it is still ``Secure`` by the same rule.
"""

from __future__ import annotations

from typing import Literal

from starlette.requests import Request
from starlette.responses import Response

from cardissuer.core.config import Environment, Settings

HOST_PREFIX = "__Host-"
SameSite = Literal["strict", "lax"]


def secure(request: Request) -> bool:
    """Whether cookies set in answer to ``request`` are ``Secure`` (see the module)."""
    settings: Settings = request.app.state.settings
    if request.url.scheme == "https":
        return True
    return settings.environment is Environment.PRODUCTION and settings.public_base_url.startswith(
        "https://"
    )


def name(request: Request, base: str) -> str:
    """The name under which cookie ``base`` is written and read for ``request``."""
    return HOST_PREFIX + base if secure(request) else base


def read(request: Request, base: str) -> str | None:
    """The value of cookie ``base`` under the name due for ``request`` (never another)."""
    return request.cookies.get(name(request, base))


def put(
    response: Response,
    request: Request,
    base: str,
    value: str,
    *,
    samesite: SameSite,
    max_age: int | None = None,
) -> None:
    """Set cookie ``base``: HttpOnly, ``Path=/``, Secure and ``__Host-`` under https."""
    response.set_cookie(
        name(request, base),
        value,
        max_age=max_age,
        path="/",
        secure=secure(request),
        httponly=True,
        samesite=samesite,
    )


def drop(response: Response, request: Request, base: str, *, samesite: SameSite) -> None:
    """Delete cookie ``base`` (with the attributes a browser needs to accept the deletion of a
    ``__Host-`` cookie: Secure and ``Path=/``)."""
    response.delete_cookie(
        name(request, base), path="/", secure=secure(request), httponly=True, samesite=samesite
    )


def put_plain(
    response: Response,
    request: Request,
    cookie: str,
    value: str,
    *,
    samesite: SameSite,
    max_age: int,
    path: str = "/",
) -> None:
    """Set a cookie that keeps its name (the language, or the device cookie scoped to one
    holder link): HttpOnly and Secure by the same rule, but no prefix."""
    response.set_cookie(
        cookie,
        value,
        max_age=max_age,
        path=path,
        secure=secure(request),
        httponly=True,
        samesite=samesite,
    )
