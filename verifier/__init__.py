"""Offline verification of Foreign Merchant Cards at a counter.

Imports only :mod:`schemas`, :mod:`keys`, ``cryptography``, ``pyjwt`` and the standard library:
a counter installs it without the issuer stack (a test proves it).

>>> bundle = Bundle.load(path, at=now)                              # doctest: +SKIP
>>> result = Verifier(bundle).verify(qr_text, service="hc", at=now)  # doctest: +SKIP
>>> result.reason, result.message("zh")                             # doctest: +SKIP

The counter station (``fmcard-verify serve``, :mod:`verifier.server`), its data sync
(:mod:`verifier.sync`) and the counter policies (:mod:`verifier.policy`) are standard library
only too; ``docs/COUNTER.md`` is their manual.
"""

from __future__ import annotations

from verifier._presentation import ReplayMemory
from verifier.bundle import Bundle, build_bundle_document
from verifier.errors import BundleError, VerifierError
from verifier.policy import LocalPolicy, Policy
from verifier.reason import Level, Reason
from verifier.result import VerificationResult
from verifier.verifier import Verifier

__all__ = [
    "Bundle",
    "BundleError",
    "Level",
    "LocalPolicy",
    "Policy",
    "Reason",
    "ReplayMemory",
    "VerificationResult",
    "Verifier",
    "VerifierError",
    "build_bundle_document",
]
