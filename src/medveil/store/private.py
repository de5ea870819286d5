"""Private places on disk: directories only their owner can enter, files only their owner can read.

The workspace (audit store, quarantined originals, the pair journal) and the
mapping directory hold original identifiers.  A directory someone else can
list or enter, or a file created under a permissive umask, would hand them
to every user of the machine.  So medveil creates these with modes 0700 and
0600 whatever the umask, tightens an existing directory that others can
reach (and says so), and refuses one that belongs to another user (its
owner could read everything written there, whatever its mode says) or
that it cannot tighten.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from medveil.errors import MedveilError

DIR_MODE = 0o700
FILE_MODE = 0o600
#: Every temporary file medveil writes starts with this: discovery never reads one as input, a
#: run's start removes those a killed run left behind, and OUTPUT may hold them.
TMP_PREFIX = ".medveil-tmp-"
#: Permission bits that let anyone but the owner in.
_OTHERS = stat.S_IRWXG | stat.S_IRWXO


class PrivacyError(MedveilError):
    """A private directory cannot be made private (another user owns it, or it is not a directory)."""


def private_dir(path: Path, what: str, notices: list[str] | None = None) -> Path:
    """Create *path* (and parents) as a 0700 directory, or tighten an existing one.

    *what* names the directory in messages ("workspace", "mappings directory").
    When an existing directory was open to others its mode is set to 0700 and
    a notice saying so is appended to *notices*.  Returns *path*.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            path.mkdir(mode=DIR_MODE)
            created = True
        except FileExistsError:
            created = False
        info = os.lstat(path)
    except OSError as exc:
        raise PrivacyError(f"the {what} {path} cannot be created ({type(exc).__name__})") from None
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise PrivacyError(f"the {what} {path} exists and is not a directory (symbolic links are refused)")
    if created:
        os.chmod(path, DIR_MODE)  # mkdir's mode passes through the umask
        return path
    if info.st_uid != os.geteuid():
        # Its owner can read what is written there, and change its mode or ACLs at any time.
        raise PrivacyError(f"the {what} {path} belongs to another user, who could read what medveil "
                           "writes there; choose a directory of your own")
    if info.st_mode & _OTHERS:
        try:
            os.chmod(path, DIR_MODE)
        except OSError as exc:
            raise PrivacyError(f"the {what} {path} is readable by other users and its mode cannot be "
                               f"changed ({type(exc).__name__})") from None
        if notices is not None:
            notices.append(f"the {what} {path} was open to other users (mode {stat.S_IMODE(info.st_mode):04o}); "
                           "its mode is now 0700")
    return path


def open_private(path: Path, flags: int = os.O_WRONLY | os.O_CREAT | os.O_TRUNC) -> int:
    """Open *path* for writing as a 0600 file, never through a symbolic link; returns the descriptor.

    The mode is applied with ``fchmod`` as well, because the creation mode
    passes through the umask and an existing file keeps its old mode.
    """
    fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
    except OSError:
        os.close(fd)
        raise
    return fd


def write_private(path: Path, data: bytes) -> None:
    """Write *data* to *path* as a 0600 file (created or replaced in place)."""
    fd = open_private(path)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def write_durably(path: Path, data: bytes, tmp_prefix: str = TMP_PREFIX, *,
                  make_parents: bool = False) -> None:
    """Write *data* to *path* (0600) so that readers see the old file or the new one, never half,
    and the new one survives a power cut: a temporary beside it, fsync, rename, fsync of the folder."""
    path = Path(path)
    if make_parents:
        path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=tmp_prefix, suffix=path.suffix, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:  # mkstemp creates the file 0600
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except OSError:
            pass
        raise
    fsync_dir(path.parent)


def fsync_dir(directory: Path) -> None:
    """Make renames in *directory* durable; not every platform lets a directory be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
