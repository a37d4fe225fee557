"""Errors of the verifier: raised for misuse only.

Everything about a scanned card comes back as a :class:`~verifier.result.VerificationResult`
with a :class:`~verifier.reason.Reason`; exceptions are for the program, not the card.

Tree::

    VerifierError           the verifier was used wrongly (naive datetime, unknown service code)
    └── BundleError         a bundle file is missing, malformed, badly signed or rolled back
"""

from __future__ import annotations


class VerifierError(Exception):
    """Base class: the verifier was called with arguments it cannot work with."""


class BundleError(VerifierError):
    """A verifier bundle cannot be used: unreadable, badly signed, expired or rolled back."""
