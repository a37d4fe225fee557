"""Errors of the issuer's domain code (never HTTP-specific: the service maps them).

Tree::

    IssuerError                 anything the issuer refuses to do
    ├── PortraitError           the photo cannot be made into a portrait
    ├── CardInputError          a card request (JSON file) is malformed or invalid
    └── WorkspaceError          the offline issuing workspace is missing or inconsistent
"""

from __future__ import annotations


class IssuerError(Exception):
    """Base class for every error of the ``cardissuer`` package."""


class PortraitError(IssuerError):
    """The photo is unreadable, too large or of a format that is not accepted."""


class CardInputError(IssuerError):
    """A card request is malformed or a field is invalid; the message names the field."""


class WorkspaceError(IssuerError):
    """The offline issuing workspace is missing, damaged or full."""
