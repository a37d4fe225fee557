"""Benchmarks for fmcard: verification rate, QR size, status list size and signing rate.

Run ``python -m bench`` (``--quick`` for CI, ``--json FILE`` to keep the figures); see
``bench/README.md`` for what each figure means.
"""

from __future__ import annotations
