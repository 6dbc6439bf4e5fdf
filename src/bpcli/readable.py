"""Opening a file a user names: regular files only, checked before and after opening, so nothing blocks."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import BinaryIO

from bpcli.errors import BpcliError

_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


class NotReadable(BpcliError):
    """A path that is missing, not a regular file, or cannot be read; the message starts with the path."""

    def __init__(self, path, problem: str, kind: str = "other"):
        super().__init__(f"{path}: {problem}")
        self.problem = problem
        self.kind = kind  # "missing", "folder", "special", "loop" or "other"


def _not_regular(path, mode: int) -> NotReadable:
    what = next((name for test, name in _KINDS if test(mode)), "not a regular file")
    kind = "folder" if stat.S_ISDIR(mode) else "special"
    return NotReadable(path, f"is {what}, not a regular file", kind)


def open_regular(path: str | Path) -> BinaryIO:
    """Open `path` for reading in binary; NotReadable unless it is a regular file (symlinks to one are fine).

    os.stat first (a FIFO, device, folder or symlink loop is refused without opening it), then the open
    itself is non-blocking and the opened file is checked again, in case the path changed in between.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise NotReadable(path, "not found", "missing") from None
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise NotReadable(path, "is a symbolic link loop (it never reaches a file)", "loop") from None
        raise NotReadable(path, f"cannot read ({err.strerror})") from None
    if not stat.S_ISREG(st.st_mode):
        raise _not_regular(path, st.st_mode)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as err:
        raise NotReadable(path, f"cannot read ({err.strerror})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise _not_regular(path, st.st_mode)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
