"""Opening a file a user names: regular files only, checked before and after opening, so nothing blocks."""

from __future__ import annotations

import errno
import io
import os
import re
import stat
from pathlib import Path
from typing import BinaryIO

from bpcli.errors import BpcliError

_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISLNK, "a symbolic link"), (stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


class NotReadable(BpcliError):
    """A path that is missing, not a regular file, or cannot be read; the message starts with the path."""

    def __init__(self, path, problem: str, kind: str = "other"):
        super().__init__(f"{path}: {problem}")
        self.problem = problem
        self.kind = kind  # "missing", "folder", "special", "loop", "large" or "other"


def _not_regular(path, mode: int) -> NotReadable:
    what = next((name for test, name in _KINDS if test(mode)), "not a regular file")
    kind = "folder" if stat.S_ISDIR(mode) else "special"
    return NotReadable(path, f"is {what}, not a regular file", kind)


def open_regular(path: str | Path, follow: bool = True) -> BinaryIO:
    """Open `path` for reading in binary; NotReadable unless it is a regular file (symlinks to one are fine,
    unless follow=False: then a symbolic link is refused, kind "special").

    The one way bpcli opens a file to read. os.stat first (a FIFO, device, folder or symlink loop is refused
    without opening it), then the open itself is non-blocking and the opened file is checked again, in case
    the path changed in between.
    """
    try:
        st = os.stat(path) if follow else os.lstat(path)
    except FileNotFoundError:
        raise NotReadable(path, "not found", "missing") from None
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise NotReadable(path, "is a symbolic link loop (it never reaches a file)", "loop") from None
        raise NotReadable(path, f"cannot read ({err.strerror})") from None
    if not stat.S_ISREG(st.st_mode):
        raise _not_regular(path, st.st_mode)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0)
    if not follow:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise NotReadable(path, "not found", "missing") from None
    except OSError as err:
        if err.errno == errno.ELOOP:  # O_NOFOLLOW: a link put there since the lstat
            raise NotReadable(path, "is a symbolic link, not a regular file", "special") from None
        raise NotReadable(path, f"cannot read ({err.strerror})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise _not_regular(path, st.st_mode)
        return open(fd, "rb")  # io.open on the descriptor already checked
    except BaseException:
        os.close(fd)
        raise


def describe_mode(mode: int) -> str:
    """'a named pipe (FIFO)', 'a character device', ... for a file type that is not a regular file."""
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def _size_problem(path, size: int, max_bytes: int, what: str) -> NotReadable:
    return NotReadable(path, f"holds {size:,} bytes, over the {what} limit ({max_bytes:,} bytes)", "large")


def read_capped(path: str | Path, max_bytes: int, what: str = "file", follow: bool = True) -> bytes:
    """The bytes of the regular file `path`, refused (NotReadable, kind "large") when it holds more than max_bytes.

    The size is checked before a byte is read (a sparse file of gigabytes is refused at once), and the read
    itself stops at max_bytes + 1, so a file growing meanwhile cannot take more memory than that.
    """
    with open_regular(path, follow) as fh:
        size = os.fstat(fh.fileno()).st_size
        if size > max_bytes:
            raise _size_problem(path, size, max_bytes, what)
        try:
            data = fh.read(max_bytes + 1)
        except OSError as err:
            raise NotReadable(path, f"cannot read ({err.strerror})") from None
    if len(data) > max_bytes:
        raise NotReadable(path, f"grew past {max_bytes:,} bytes while being read", "large")
    return data


class CappedStream(io.RawIOBase):
    """A binary stream that raises NotReadable (kind "large") once more than max_bytes have come through it.

    For what cannot be measured before reading (stdin, a pipe): memory stays bounded however much is sent.
    owns: closing this stream closes `raw` too (a file it was opened for; never the process's stdin).
    """

    def __init__(self, raw: BinaryIO, max_bytes: int, source: str, what: str, owns: bool = False):
        super().__init__()
        self._raw, self._left, self._max = raw, max_bytes, max_bytes
        self._source, self._what, self._owns = source, what, owns

    def close(self) -> None:
        if self._owns and not self.closed:
            self._raw.close()
        super().close()

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:
        if self._left < 0:
            raise NotReadable(self._source, f"more than {self._max:,} bytes, over the {self._what} limit", "large")
        want = min(len(buf), self._left + 1)
        chunk = self._raw.read(want) if not hasattr(self._raw, "read1") else self._raw.read1(want)
        n = len(chunk)
        buf[:n] = chunk
        self._left -= n
        if self._left < 0:
            raise NotReadable(self._source, f"more than {self._max:,} bytes, over the {self._what} limit", "large")
        return n


def open_capped(path: str | Path, max_bytes: int, what: str = "file") -> BinaryIO:
    """open_regular, refused when the file holds more than max_bytes, and capped while it is read."""
    fh = open_regular(path)
    try:
        size = os.fstat(fh.fileno()).st_size
        if size > max_bytes:
            raise _size_problem(path, size, max_bytes, what)
    except BaseException:
        fh.close()
        raise
    return io.BufferedReader(CappedStream(fh, max_bytes, str(path), what, owns=True))


MAX_JSON_DEPTH = 64  # no JSON file bpcli writes or reads nests deeper than a few levels
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.S)


_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_PAIR = re.compile(r"\[\]|\{\}")


def json_depth(text: str, most: int = MAX_JSON_DEPTH) -> int:
    """How deeply arrays and objects nest in JSON text (strings skipped): exact up to most + 1, or an upper bound
    when that is at most `most` (the count of opening brackets). Each pass strips the innermost pairs, at the
    regex engine's speed."""
    if text.count("[") + text.count("{") <= most:
        return text.count("[") + text.count("{")  # a bound that is enough: it cannot nest deeper than that
    brackets = _NOT_BRACKET.sub("", _STRING.sub('""', text))
    depth = 0
    while brackets and depth <= most:
        fewer = _PAIR.sub("", brackets)
        if fewer == brackets:
            break  # brackets that do not pair: not JSON, which json.loads says in its own words
        brackets, depth = fewer, depth + 1
    return depth


class TooDeep(ValueError):
    """JSON nested deeper than bpcli reads."""


def loads_json(data: bytes | str, source, max_depth: int = MAX_JSON_DEPTH):
    """json.loads with the nesting bounded: TooDeep (a ValueError naming the depth) for deeper documents;
    ValueError for text that is not JSON or not UTF-8."""
    import json
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    depth = json_depth(text, max_depth)
    if depth > max_depth:
        raise TooDeep(f"{source}: nested more than {max_depth} levels deep")
    return json.loads(text)
