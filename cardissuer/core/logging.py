"""Structured (JSON lines) logs that never carry personal data or secrets.

Only method, path template, status, duration and a request id are logged for requests: path
parameters (which may be codes or passport numbers), bodies, query strings and tokens never
are. An exception is logged by its class name only: messages of database errors quote the
statement's parameters, i.e. the personal data being written.

The web server's own loggers go through the same formatter, and its access log (which prints
full paths, hence codes and passport numbers) is switched off: the service logs each request
itself, with the route template instead of the path.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

SERVER_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.asgi")
SERVER_ACCESS_LOGGER = "uvicorn.access"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "at": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("request_id", "method", "route", "status", "ms"):
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        if record.exc_info and record.exc_info[0] is not None:
            entry["error"] = record.exc_info[0].__name__
        return json.dumps(entry, ensure_ascii=False)


def configure(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("fmcard")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
    for name in SERVER_LOGGERS:
        server = logging.getLogger(name)
        server.handlers[:] = [handler] if name == "uvicorn" else []
        server.propagate = name != "uvicorn"
    access = logging.getLogger(SERVER_ACCESS_LOGGER)
    access.handlers[:] = []
    access.propagate = False
    access.disabled = True
