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


def _unraisable(info) -> None:
    """A signal whose Interrupted lands in a finaliser or an import lock's callback is printed by Python as
    "Exception ignored in ...", a traceback: received_signal holds it, and the session stops on it instead."""
    if isinstance(info.exc_value, Interrupted):
        return
    sys.__unraisablehook__(info)


def main() -> None:
    """Ctrl-C or SIGTERM before a run is saved is one line and exit 128 + signal, never a traceback."""
    sys.unraisablehook = _unraisable
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, _interrupt)
    try:  # everything from here on, a signal included, ends in one line
        from bpcli.nn.blas import ThreadsError, set_blas_threads
        try:
            set_blas_threads()  # before numpy is imported: the BLAS reads its thread count once, then
        except ThreadsError as err:
            sys.stderr.write(f"error: {err}\n")
            sys.exit(2)
        from bpcli.cli.app import app
        app()
    except BaseException as err:
        stop = _interruption(err)
        if stop is None:
            raise
        err = stop
        for s in (signal.SIGINT, signal.SIGTERM):
            signal.signal(s, signal.SIG_IGN)  # a second Ctrl-C does not cut the message short
        sys.stderr.write(f"{err}\n")
        sys.exit(err.exit_code)


def _interruption(err: BaseException) -> Interrupted | None:
    """The Interrupted behind `err`: itself, one in its chain of causes (a signal during numpy's start-up comes
    back wrapped in an ImportError or RuntimeError), or, when a start-up signal's own exception was lost, a new
    one for it; None for an exit (its message is out already) and any other error (a bug: its traceback is shown)."""
    if isinstance(err, SystemExit):
        return None
    seen, e = set(), err
    while e is not None and id(e) not in seen:
        if isinstance(e, Interrupted):
            return e
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    if received_signal:
        return Interrupted(received_signal[0])
    return None


if __name__ == "__main__":
    main()
