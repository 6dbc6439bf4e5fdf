"""python -m bpcli, and the `bpcli` command: the signal handlers come first, before any slow import."""

from __future__ import annotations

import signal
import sys

# imported before the handlers are set (3 ms): a handler that imported it could run in the middle of another
# import (of `re`, say) and fail there with a traceback instead of stopping the run
from bpcli.errors import Interrupted, received_signal


def _interrupt(signum, frame):
    received_signal.append(signum)  # kept even if the exception below is swallowed (see errors.received_signal)
    raise Interrupted(signum)


def main() -> None:
    """Ctrl-C or SIGTERM before a run is saved is one line and exit 128 + signal, never a traceback."""
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, _interrupt)
    from bpcli.blas import ThreadsError, set_blas_threads
    try:
        set_blas_threads()  # before numpy is imported: the BLAS reads its thread count once, then
    except ThreadsError as err:
        sys.stderr.write(f"error: {err}\n")
        sys.exit(2)
    try:
        from bpcli.cli import app
        app()
    except BaseException as err:
        if not isinstance(err, Interrupted):
            raise
        for s in (signal.SIGINT, signal.SIGTERM):
            signal.signal(s, signal.SIG_IGN)  # a second Ctrl-C does not cut the message short
        sys.stderr.write(f"{err}\n")
        sys.exit(err.exit_code)


if __name__ == "__main__":
    main()
