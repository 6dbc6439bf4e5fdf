"""User-fixable problems: each is one clear line and an exit code, never a traceback."""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable

EXIT_OK = 0
EXIT_FAILED = 1  # a check failed or a run diverged
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: what a shell reports for `cat` or `yes` when the reader of its output is gone


class BpcliError(Exception):
    """A problem the user can fix; the CLI prints `str(err)` and exits with `exit_code`."""

    exit_code = EXIT_BAD_INPUT


class ArgumentError(BpcliError):
    """A bad argument, named as the core names it (`sample`); the CLI says it as the flag (`--sample`)."""

    def __init__(self, argument: str, problem: str):
        self.argument, self.problem = argument, problem
        super().__init__(f"{argument}: {problem}")


class ConfigError(BpcliError):
    """One or more problems in a config file, all gathered before reporting."""

    def __init__(self, problems: list[str]):
        self.problems = [printable(p) for p in problems]
        super().__init__("\n".join(self.problems))


class DataError(BpcliError):
    """A data file or inline data that cannot be used."""


class NameError_(BpcliError):
    """An unknown or ambiguous parameter name."""


class RunFolderError(BpcliError):
    """A run folder that is missing, truncated, tampered with or from a newer version."""


class SaveError(BpcliError):
    """A run folder could not be written (disk full, permissions); the files saved before are kept."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str, reason: str = ""):
        super().__init__(message)
        self.reason = reason or message


def sample_row(number: int, m: int) -> int:
    """The 0-based row of sample `number` (counted from 1, as people count) among m samples: the one range check."""
    if not 1 <= number <= m:
        raise ArgumentError("sample", f"there is no sample {number}; the data has {m} sample{'' if m == 1 else 's'}, "
                                      f"numbered from 1 to {m}")
    return number - 1


def printable(text: str) -> str:
    """Control characters (a key holding a newline or a carriage return) as escapes, so one problem stays one line."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def terminal_safe(text: str) -> str:
    """`text` with every control character but the newline shown as an escape (ESC as \\x1b), so no user text
    (a config name, a CSV label) can move the cursor, retitle the window or clear the screen."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c == "\n" else repr(c)[1:-1] for c in text)


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """A ' (did you mean 'x'?)' hint when a close match exists, else ''."""
    close = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def is_finite_number(v) -> bool:
    """True for an int or float (not bool) that is finite as a float; huge ints count as infinite."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return False
    try:
        return math.isfinite(v)
    except OverflowError:  # an int beyond float range, e.g. 10**400 written in a YAML file
        return False


def one_of(choices: Iterable[str]) -> str:
    """'a', 'b' or 'c' for messages."""
    items = [f"'{c}'" for c in choices]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " or " + items[-1]


# The first SIGINT or SIGTERM the process received before training took the signals over (set by __main__'s
# handler). The handler also raises Interrupted, but an exception raised where Python can only report it ("Exception
# ignored in ...": a finaliser, a C callback) is lost; the training session reads this and stops all the same.
received_signal: list[int] = []


class Interrupted(BaseException):
    """SIGINT or SIGTERM before anything was saved: one line and exit 128 + signal, never a traceback.

    A BaseException, like KeyboardInterrupt, so that no `except Exception` swallows it; Click does not catch it.
    """

    def __init__(self, signum: int, saved: str = ""):
        self.signum, self.saved = signum, saved
        super().__init__(f"interrupted: {saved or 'nothing was saved (stopped before the run folder was written)'}")

    @property
    def exit_code(self) -> int:
        return 128 + int(self.signum)
