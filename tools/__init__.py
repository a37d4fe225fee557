"""Maintenance tools run from a checkout (``./dev i18n``); not part of the installed packages."""
