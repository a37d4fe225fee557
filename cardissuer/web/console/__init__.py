"""The officers' console: its pages and forms, one module per page group, and its error pages.

Pages are rendered on the server from Jinja2 templates; the browser needs no build step and
runs one small script (``console.js``) only for the webcam. Every form posts to a console
route which checks the CSRF token, calls the same domain services as the JSON API inside one
transaction, and redirects (POST/redirect/GET) to a page that shows what happened. A form
that the domain refuses comes back as a page with a readable message: never a traceback and
never a JSON problem. Buttons are shown only to roles that may use them, but the services
check every permission again, and refusals are audited in a transaction of their own exactly
as the API does, so a forged request leaves the same trace as an API call.

- :mod:`~cardissuer.web.console.common`: the officer of a request, the checked form, one
  transaction per form, paging and dates, shared by every page;
- :mod:`~cardissuer.web.console.session`: the home redirects, login and logout;
- :mod:`~cardissuer.web.console.persons`: the search, the person's page and the card actions;
- :mod:`~cardissuer.web.console.registration`: registration, duplicates and passports;
- :mod:`~cardissuer.web.console.audit`: the audit page;
- :mod:`~cardissuer.web.console.errors`: the HTML error pages of console paths.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from cardissuer.errors import IssuerError
from cardissuer.web.console import audit, persons, registration, session
from cardissuer.web.console.common import CsrfRefused, LoginRequired
from cardissuer.web.console.errors import console_handler
from cardissuer.web.rendering import STATIC_DIR
from schemas.errors import SchemaError

ROUTERS = (session.router, persons.router, registration.router, audit.router)
"""In the order the paths are matched: a static path such as
``/console/cards/{serial}/google-wallet`` is declared before ``/console/cards/{serial}/{action}``
inside its module, and no path of a later module is shadowed by an earlier one."""


def install(app: FastAPI) -> None:
    """Mount the console pages, their static files and HTML error pages for console paths."""
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    for router in ROUTERS:
        app.include_router(router)
    for kind in (
        IssuerError,
        SchemaError,
        RequestValidationError,
        StarletteHTTPException,
        Exception,
    ):
        app.add_exception_handler(kind, console_handler(app.exception_handlers.get(kind)))
    for kind in (LoginRequired, CsrfRefused):
        app.add_exception_handler(kind, console_handler(None))
