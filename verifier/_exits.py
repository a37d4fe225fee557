"""How our command lines end when the user stops them or their reader goes away.

Ctrl+C ends a command with one line and status 130, as a shell reports an interrupted
command, never a traceback (whose frames could show card data or a passphrase's variable).
A reader that went away (``... | head``) ends it quietly with status 1: never 0, since what
was printed may not have been read.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable


def run_command(program: str, run: Callable[[], int]) -> int:
    """Run ``run`` for ``program`` (the name its error lines begin with); return its status,
    130 after Ctrl+C, 1 after a closed standard output."""
    try:
        status = run()
        sys.stdout.flush()  # a closed pipe shows here, not at exit as an ignored exception
    except KeyboardInterrupt:
        with contextlib.suppress(OSError):
            sys.stderr.write(f"{program}: interrupted\n")
            sys.stderr.flush()
        return 130
    except BrokenPipeError:
        # What is still buffered goes to /dev/null, so the flush at exit does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    return status
