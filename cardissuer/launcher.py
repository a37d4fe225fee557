"""Entry point of the ``fmcard`` command: the issuer's command line, or a clear word when the
issuer's packages are missing.

A counter installs the core distribution (``pip install fmcard-*.whl``: schemas, keys and the
verifier only), which still carries the ``fmcard`` script. Run there, the issuer's imports
(Pillow, SQLModel, FastAPI, ...) would fail with a traceback; this shim says what to install
instead. It imports nothing but the standard library before the issuer's command line.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

# Our own packages: a missing one of these is a broken install, not a missing extra.
OWN_PACKAGES = frozenset({"cardissuer", "keys", "schemas", "verifier"})


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``cardissuer.cli.main``; exit 2 with one line if the issuer extras are missing."""
    try:
        from cardissuer.cli import main as issuer_main
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").split(".")[0]
        if not missing or missing in OWN_PACKAGES:
            raise
        print(
            f"fmcard: error: the issuer's packages are not installed (no module {missing!r}); "
            "install them with: pip install 'fmcard[issuer]'  (a counter needs only "
            "fmcard-verify)",
            file=sys.stderr,
        )
        return 2
    return issuer_main(argv)


if __name__ == "__main__":  # pragma: no cover - ``python -m cardissuer.launcher``
    sys.exit(main())
