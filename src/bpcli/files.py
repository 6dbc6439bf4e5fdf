"""Files written all or nothing (temporary file, fsync, rename), checksums, and .npz archives read safely."""

from __future__ import annotations

import errno
import hashlib
import io
import os
import stat
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from bpcli.errors import RunFolderError

_UMASK = os.umask(0o022)
os.umask(_UMASK)


def temp_beside(path: Path, suffix: str = ".tmp") -> tuple[int, str]:
    """(fd, name) of a new temporary file in path's folder, with the permissions of an ordinary new file
    (mkstemp makes 0600), to be renamed over `path` when whole."""
    fd, tmp = tempfile.mkstemp(prefix=f".{Path(path).name}.", suffix=suffix, dir=Path(path).parent)
    os.fchmod(fd, 0o666 & ~_UMASK)
    return fd, tmp


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file beside `path`, flush, fsync, then rename over it."""
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


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_files(folder: Path, files: dict[str, bytes]) -> None:
    """Write several files so that a failure at any point keeps every previous file intact.

    Phase 1 writes and fsyncs all temporary files; only then phase 2 renames them into place in
    order (the last one is the checkpoint record). A failure in phase 1 changes nothing.
    """
    temps: list[tuple[str, str]] = []
    try:
        for name, data in files.items():
            fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
            temps.append((tmp, name))
            os.fchmod(fd, 0o666 & ~_UMASK)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        for tmp, name in temps:
            os.replace(tmp, folder / name)
        fsync_dir(folder)
    except BaseException:
        for tmp, _ in temps:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        raise


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
    """The bytes of a regular file of at most max_bytes; RunFolderError naming it otherwise.

    A folder, FIFO, device or oversized file is refused before reading (no hang, no unbounded memory).
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        raise RunFolderError(f"{path}: missing from the run folder") from None
    except OSError as err:
        raise RunFolderError(f"{path}: cannot read the {what} ({err.strerror})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = "a folder" if stat.S_ISDIR(st.st_mode) else "not a regular file"
            raise RunFolderError(f"{path}: expected the {what}, found {kind}")
        if st.st_size > max_bytes:
            raise RunFolderError(f"{path}: the {what} holds {st.st_size:,} bytes, more than bpcli ever writes "
                                 f"({max_bytes:,}); the file was changed")
        with os.fdopen(os.dup(fd), "rb") as fh:
            data = fh.read(max_bytes + 1)
    except OSError as err:
        raise RunFolderError(f"{path}: cannot read the {what} ({err.strerror})") from None
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        raise RunFolderError(f"{path}: the {what} grew while being read; the file was changed")
    return data


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


def read_npz(path: Path, max_bytes: int, what: str = "weights file", data: bytes | None = None) -> dict[str, np.ndarray]:
    """The arrays of an .npz, never unpickling; RunFolderError naming the file if it is not a sound archive.

    max_bytes bounds each member before it is read, so a tampered header cannot make us allocate gigabytes.
    `data`, when given, are the file's bytes already read (and checked against a checksum).
    """
    try:
        obj = np.load(path if data is None else io.BytesIO(data), allow_pickle=False)
    except FileNotFoundError:
        raise RunFolderError(f"{path}: {what} is missing") from None
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
            for info in npz.zip.infolist():
                if info.file_size > max_bytes:
                    raise RunFolderError(f"{path}: {info.filename} holds {info.file_size:,} bytes, more than "
                                         f"the config's arrays need ({max_bytes:,}); the file was changed")
            return {k: npz[k] for k in npz.files}
    except ValueError as err:
        if "pickle" in str(err).lower():
            raise RunFolderError(f"{path}: refused: it holds pickled objects, which bpcli never loads") from None
        raise RunFolderError(f"{path}: not a valid {what} ({err})") from None
    except (zipfile.BadZipFile, OSError, EOFError, MemoryError) as err:
        raise RunFolderError(f"{path}: not a valid {what} (truncated or damaged: {type(err).__name__})") from None
