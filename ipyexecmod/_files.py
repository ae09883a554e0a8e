# SPDX-License-Identifier: MIT
"""Files that ipyexecmod writes: atomically, never through a symbolic link, and where.

A file is written to a temporary file of this process's own and renamed into
place, so a crash leaves the old file or the new one, never a torn one; files
get mode ``0o600`` and directories ``0o700``.  A private directory is
memory-backed (``/dev/shm``) where the platform has one with room, else in the
temporary directory.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import stat
import tempfile

__all__ = [
    "StoreError",
    "identity",
    "make_directory",
    "new_private_directory",
    "private_roots",
    "unchanged",
    "write_atomic",
    "write_new",
]

_PREFIX = "ipyexecmod-"
# Memory-backed, where the platform has one: a private directory dies with its kernel, so
# it needs no disk, and an atomic write there costs a sixth of one on disk.
MEMORY_ROOT = "/dev/shm"
# Free bytes, or the private directory goes on disk: more than a container's default 64 MiB,
# which other programs of the container (data loaders) may need.
_MEMORY_NEEDED = 256 * 2**20


def _pid_namespace() -> str:
    """This process's PID namespace, as part of a private directory's name (``n`` and a
    number; ``""`` where there is none): a ``/dev/shm`` shared by containers holds the
    directories of processes that ``os.kill`` cannot see, and only those of this
    namespace may be taken for a dead process's."""
    try:
        return f"n{os.stat('/proc/self/ns/pid').st_ino}"
    except OSError:
        return ""


def private_roots() -> list[str]:
    """Where private directories may be: the memory-backed root first, if usable."""
    roots = [tempfile.gettempdir()]
    try:
        usage = os.statvfs(MEMORY_ROOT)
    except (OSError, AttributeError):  # no statvfs: not a POSIX system
        return roots
    if usage.f_bavail * usage.f_frsize >= _MEMORY_NEEDED and os.access(MEMORY_ROOT, os.W_OK):
        roots.insert(0, MEMORY_ROOT)
    return roots


def _remove_directories_of_dead_processes() -> None:
    """Remove the private directories, owned by this user, of processes no longer running
    (in this PID namespace)."""
    namespace = _pid_namespace()
    for root in {tempfile.gettempdir(), MEMORY_ROOT}:
        try:
            entries = os.scandir(root)
        except OSError:
            continue
        with entries:
            for entry in entries:
                pid, _, rest = entry.name.removeprefix(_PREFIX).partition("-")
                if not entry.name.startswith(_PREFIX) or not pid.isdigit():
                    continue
                tag = rest.partition("-")[0]
                if tag[:1] == "n" and tag[1:].isdigit() and tag != namespace:
                    continue  # another PID namespace's: its processes are not ours to see
                try:
                    if entry.stat(follow_symlinks=False).st_uid != os.getuid():
                        continue
                    os.kill(int(pid), 0)
                except ProcessLookupError:
                    shutil.rmtree(entry.path, ignore_errors=True)
                except OSError:
                    continue  # running under another user, or gone already


class StoreError(OSError):
    """A copy could not be written; the module still works in memory."""


def make_directory(path: str) -> None:
    """Create ``path`` with mode 0o700, or accept it if it is a real directory already."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        if not stat.S_ISDIR(os.lstat(path).st_mode):
            msg = f"{path} exists and is not a directory (or is a symbolic link)"
            raise StoreError(msg) from None


_temporary_names = itertools.count()
_NEW_FILE = (
    os.O_WRONLY
    | os.O_CREAT
    | os.O_EXCL
    | getattr(os, "O_NOFOLLOW", 0)  # POSIX; elsewhere, the rename still replaces a link
    | getattr(os, "O_CLOEXEC", 0)
)


def write_atomic(path: str, data: bytes, mode: int = 0o600) -> None:
    """Replace the file at ``path`` with ``data``: a temporary file, then a rename.

    The temporary file is created with ``O_EXCL | O_NOFOLLOW`` and ``mode`` (less the
    umask; 0o600 by default: ipyexecmod's own files), under a name of this process's own,
    and a rename replaces a symbolic link at ``path`` instead of following it.
    """
    directory = os.path.dirname(path)
    while True:
        temporary = os.path.join(directory, f".tmp-{os.getpid()}-{next(_temporary_names)}")
        try:
            fd = os.open(temporary, _NEW_FILE, mode)
        except FileExistsError:
            continue  # left by a process that had this pid before
        break
    try:
        try:
            written = 0
            while written < len(data):
                written += os.write(fd, data[written:])
        finally:
            os.close(fd)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def write_new(path: str, data: bytes) -> bool:
    """Write ``data`` to a new file at ``path``, complete or not at all; ``False`` (and
    nothing written) if a file, or a link, is there already: nothing is overwritten.

    The data goes to a temporary file first, which a hard link then puts in place: unlike
    a rename, a link fails where something exists.
    """
    staging = f"{path}.new-{os.getpid()}-{next(_temporary_names)}"
    write_atomic(staging, data)
    try:
        os.link(staging, path, follow_symlinks=False)
    except FileExistsError:
        return False
    finally:
        with contextlib.suppress(OSError):
            os.unlink(staging)
    return True


def unchanged(path: str, data: bytes) -> bool:
    try:
        with open(path, "rb") as file:
            return file.read() == data
    except OSError:
        return False


def identity(path: str) -> tuple[int, int, int, int]:
    """What changes when anything replaces or rewrites the file at ``path`` (``ctime``
    too: unlike ``mtime``, no one can set it back)."""
    status = os.stat(path, follow_symlinks=False)
    return status.st_ino, status.st_size, status.st_mtime_ns, status.st_ctime_ns


def new_private_directory() -> str:
    """A new directory (mode 0o700) named after this process, in the first usable root.

    Directories that earlier processes of this user left behind (killed outright)
    are removed first.
    """
    _remove_directories_of_dead_processes()
    # Zero-padded, so that the path has the same length in every process.
    namespace = _pid_namespace()
    prefix = f"{_PREFIX}{os.getpid():07d}-{namespace + '-' if namespace else ''}"
    for root in private_roots():
        try:
            return tempfile.mkdtemp(prefix=prefix, dir=root)
        except OSError:
            continue
    return tempfile.mkdtemp(prefix=prefix)  # raises what the last root did
