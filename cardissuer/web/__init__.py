"""The officers' web console: server-rendered pages in Chinese and English, no build step.

``cardissuer.main`` calls :func:`cardissuer.web.console.install` when this package is present,
so the JSON API keeps working without it (a headless deployment can leave it out).
"""

from __future__ import annotations
