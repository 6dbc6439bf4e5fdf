"""Files: the one reader (regular files only, checked before and after opening, so nothing blocks; sizes capped;
JSON nesting bounded), files written all or nothing (temporary file, fsync, rename), outputs a user names,
checksums, .npz read safely."""

from __future__ import annotations

import errno
import hashlib
import io
import os
import re
import stat
import tempfile
import zipfile
from pathlib import Path
from typing import BinaryIO

import numpy as np

from bpcli.errors import BpcliError, RunFolderError

# --- the one reader: opening a file a user names --------------------------------------------------

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


# --- writing --------------------------------------------------------------------------------------

_UMASK = os.umask(0o022)
os.umask(_UMASK)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file beside `path`, flush, fsync, then rename over it.

    For bpcli's own files inside a run folder it holds; a file a user names goes through write_output."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the usual permissions of a new file
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


# --- a file a user named as an output -------------------------------------------------------------
# The one way every command writes a file the user named (--out FILE, -o, --config-out, init's PATH): only a
# regular file is ever replaced, and only with the command's replace option; a symbolic link is refused, never
# written through nor replaced (the same everywhere); a file the command reads is never written over.


def _who(path: Path, option: str) -> str:
    """How a message names the output: '--out: p.csv' (an option's value) or 'p.csv:' (an argument)."""
    return f"{option}: {path}" if option else f"{path}:"


def _taken(path: Path, option: str, force: str) -> BpcliError:
    return BpcliError(f"{_who(path, option)} already exists; choose another file or add {force} to replace it")


def check_output(path: Path, replace: bool = False, option: str = "--out", force: str = "--force",
                 reads: tuple = (), example: str = "out", new_folder: bool = False) -> None:
    """Refuse, before any work, an output path that bpcli must not write: BpcliError (exit 2) naming `option`.

    Refused: a folder, a FIFO, a device, a socket, a symbolic link (even to a regular file), a path whose folder
    does not exist, a file the command reads (`reads`, compared by device and inode, so a hard link or another
    spelling of the same file counts; a folder in `reads` stands for every file in it), and an existing file
    unless `replace` (the command's `force` option).
    new_folder: the caller creates a missing folder (else a missing folder is refused too).
    """
    path = Path(path)
    who = _who(path, option)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    except OSError as err:
        raise BpcliError(f"{who} cannot be written ({err.strerror})") from None
    if st is not None:
        if stat.S_ISLNK(st.st_mode):
            raise BpcliError(f"{who} is a symbolic link; bpcli never writes through one nor replaces it: "
                             "give the path of the file itself")
        if stat.S_ISDIR(st.st_mode):
            raise BpcliError(f"{who} is a folder; give a file name such as {path / example}")
        if not stat.S_ISREG(st.st_mode):
            raise BpcliError(f"{who} is {describe_mode(st.st_mode)}, not a regular file; bpcli writes "
                             "only regular files")
        for source in reads:
            if _is_read(path, st, Path(source)):
                what = (f"in {source}, which" if Path(source).is_dir() else "a file" if str(source) == str(path)
                        else f"the same file as {source}, which")
                raise BpcliError(f"{who} is {what} this command reads; write the output to another file")
        if not replace:
            raise _taken(path, option, force)
    if not new_folder and not path.parent.is_dir():
        raise BpcliError(f"{option + ': ' if option else ''}folder {path.parent} does not exist")


def _is_read(path: Path, st: os.stat_result, source: Path) -> bool:
    """Whether the existing file `path` (lstat `st`) is `source`, or lies inside `source` when that is a folder."""
    try:
        src = os.stat(source)
    except OSError:
        return False
    if os.path.samestat(st, src):
        return True
    if not stat.S_ISDIR(src.st_mode):
        return False
    try:
        return Path(source).resolve() in Path(path).resolve().parents
    except (OSError, RuntimeError):
        return False


def commit_output(tmp: str | Path, path: Path, replace: bool = False, option: str = "--out",
                  force: str = "--force") -> None:
    """Put the finished temporary file `tmp` (beside `path`) at `path`; check_output's rules hold at this moment.

    Without `replace`, a hard link makes the file appear only if nothing is at `path` (never replacing what got
    there since the check); with it, a rename, only over a regular file. `tmp` is removed either way.
    """
    path = Path(path)
    try:
        if not replace:
            try:
                os.link(tmp, path)
                return
            except FileExistsError:
                raise _taken(path, option, force) from None
            except OSError as err:
                if err.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.EXDEV,
                                     errno.ENOSYS):
                    raise
            if os.path.lexists(path):  # a file system without hard links: check, then rename
                raise _taken(path, option, force)
        else:
            try:
                st = os.lstat(path)
                if not stat.S_ISREG(st.st_mode):
                    raise BpcliError(f"{_who(path, option)} is no longer a regular file; nothing written")
            except FileNotFoundError:
                pass
        os.replace(tmp, path)
    finally:
        try:
            os.unlink(tmp)
        except OSError:
            pass


def temp_beside(path: Path, suffix: str = ".tmp") -> str:
    """A new empty temporary file in `path`'s folder, with the usual permissions of a new file; its name."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)
    finally:
        os.close(fd)
    return tmp


def write_output(path: Path, data: bytes | str, replace: bool = False, option: str = "--out",
                 force: str = "--force", reads: tuple = (), example: str = "out") -> None:
    """Write a file the user named, whole or not at all, under check_output's rules (see there)."""
    path = Path(path)
    check_output(path, replace, option, force, reads, example)
    tmp = temp_beside(path)
    try:
        with open(tmp, "wb") as fh:
            fh.write(data.encode("utf-8") if isinstance(data, str) else data)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        os.unlink(tmp)
        raise
    commit_output(tmp, path, replace, option, force)
    fsync_dir(path.parent)


def write_new_files(folder: Path, files: dict[str, bytes]) -> None:
    """Create `folder` (it must not exist) holding `files`, each fsynced, then the folder itself.

    Nothing points at the folder yet, so a failure half-way leaves only an unreferenced folder.
    """
    os.mkdir(folder)
    for name, data in files.items():
        fd = os.open(folder / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask gives 0644
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    fsync_dir(folder, strict=True)


def read_regular(path: Path, max_bytes: int, what: str = "file") -> bytes:
    """The bytes of a regular file of a run folder of at most max_bytes; RunFolderError naming it otherwise.

    read_capped underneath (never following a symbolic link): a folder, FIFO, device or oversized
    file is refused before reading (no hang, no unbounded memory).
    """
    try:
        return read_capped(path, max_bytes, what, follow=False)
    except NotReadable as err:
        if err.kind == "missing":
            raise RunFolderError(f"{path}: missing from the run folder") from None
        if err.kind == "folder":
            raise RunFolderError(f"{path}: expected the {what}, found a folder") from None
        if err.kind == "special":
            raise RunFolderError(f"{path}: expected the {what}, found not a regular file") from None
        if err.kind == "large" and "grew" in err.problem:
            raise RunFolderError(f"{path}: the {what} grew while being read; the file was changed") from None
        if err.kind == "large":
            raise RunFolderError(f"{path}: the {what} {err.problem.split(', over')[0]}, more than bpcli ever "
                                 f"writes ({max_bytes:,}); the file was changed") from None
        raise RunFolderError(f"{path}: cannot read the {what} ({err.problem.removeprefix('cannot read (')[:-1]})"
                             if err.problem.startswith("cannot read (") else str(err)) from None


def fsync_dir(folder: Path, strict: bool = False) -> None:
    """Make the entries of `folder` durable (POSIX). strict: an I/O error is raised (a no-op only where
    folders cannot be opened or fsynced at all)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        if strict:
            raise
        return
    try:
        os.fsync(fd)
    except OSError as err:
        if strict and err.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _declared_bytes(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> int | None:
    """The bytes an .npy member's own header says its array holds (None when it has no readable .npy header)."""
    from numpy.lib import format as npy
    try:
        with zf.open(info) as member:
            version = npy.read_magic(member)
            read = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
            shape, _, dtype = read(member)
    except Exception:  # noqa: BLE001 - anything unreadable is left to np.load's own message below
        return None
    n = 1
    for k in shape:
        n *= int(k)
    return n * dtype.itemsize


def read_npz(path: Path, max_bytes: int, what: str = "weights file", data: bytes | None = None,
             max_total: int | None = None) -> dict[str, np.ndarray]:
    """The arrays of an .npz, never unpickling; RunFolderError naming the file if it is not a sound archive.

    max_bytes bounds each member, max_total (when given) all of them together, before anything is expanded:
    from the sizes the zip's headers record (and each .npy header's shape, which must fit its member), so a
    few megabytes of deflated zeros cannot expand to gigabytes; reading a member stops at its recorded size.
    The file is opened as open_regular opens any file (a FIFO or device is refused, never waited on).
    `data`, when given, are the file's bytes already read (and checked against a checksum).
    """
    if data is None:
        try:
            source = open_regular(path)
        except NotReadable as err:
            if err.kind == "missing":
                raise RunFolderError(f"{path}: {what} is missing") from None
            raise RunFolderError(f"{path}: not a valid {what} ({err.problem})") from None
    else:
        source = io.BytesIO(data)
    with source:
        return _read_npz(path, source, max_bytes, what, max_total)


def _read_npz(path: Path, source, max_bytes: int, what: str, max_total: int | None) -> dict[str, np.ndarray]:
    try:
        obj = np.load(source, allow_pickle=False)
    except ValueError as err:
        if "pickle" in str(err).lower():
            raise RunFolderError(f"{path}: refused: not an .npz archive of plain arrays (it would need "
                                 "unpickling, which bpcli never does)") from None
        raise RunFolderError(f"{path}: not a valid {what} ({err})") from None
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        raise RunFolderError(f"{path}: not a valid {what} (truncated or damaged: {err})") from None
    if not isinstance(obj, np.lib.npyio.NpzFile):
        raise RunFolderError(f"{path}: not a valid {what} (a single .npy array, expected an .npz archive)")
    try:
        with obj as npz:
            total = 0
            for info in npz.zip.infolist():
                if info.file_size > max_bytes:
                    raise RunFolderError(f"{path}: {info.filename} holds {info.file_size:,} bytes, more than "
                                         f"the config's arrays need ({max_bytes:,}); the file was changed")
                total += info.file_size
                if max_total is not None and total > max_total:
                    raise RunFolderError(f"{path}: its arrays expand to more than {max_total:,} bytes "
                                         f"({len(npz.zip.infolist())} members); refused before expanding them")
            for info in npz.zip.infolist():
                declared = _declared_bytes(npz.zip, info)
                if declared is not None and declared > info.file_size:
                    raise RunFolderError(f"{path}: {info.filename} claims {declared:,} bytes of array in a "
                                         f"member of {info.file_size:,}; the file is damaged")
            return {k: npz[k] for k in npz.files}
    except ValueError as err:
        if "pickle" in str(err).lower():
            raise RunFolderError(f"{path}: refused: it holds pickled objects, which bpcli never loads") from None
        raise RunFolderError(f"{path}: not a valid {what} ({err})") from None
    except (zipfile.BadZipFile, OSError, EOFError, MemoryError) as err:
        raise RunFolderError(f"{path}: not a valid {what} (truncated or damaged: {type(err).__name__})") from None
