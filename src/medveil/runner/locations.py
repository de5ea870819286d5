"""Where inputs come from and outputs go: local paths or fsspec URLs (``s3://bucket/prefix``).

Archives that get shared often live on object storage, and copying them to a
local disk first doubles the I/O.  A :class:`Location` gives the runners the
handful of operations they need (list, read, write one object, hash one
object, delete one object) over either the local file system, done with the
standard library as before, or any fsspec file system, imported only when a
URL asks for it.

Writes never leave a half-written object under its final name: locally a
temporary file beside the target is renamed over it; an object store's PUT
(and a completed multipart upload) is atomic by itself.  Errors name the
operation, never the path (paths may carry patient names).
"""

from __future__ import annotations

import errno
import hashlib
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from medveil.errors import MedveilError
from medveil.store.private import TMP_PREFIX


class LocationError(MedveilError):
    """A location cannot be used (unknown protocol, fsspec missing, unreachable)."""


_FOLDER_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


def open_release_folder(root: str | os.PathLike, relparent: str | os.PathLike, *, create: bool = True) -> int:
    """A descriptor of the folder *relparent* of the release *root*, made where missing (with *create*).

    Each folder is created and opened relative to the one above it, never following
    a link: a link where a release folder goes (planted, or a folder moved away and
    linked back) would carry the output out of OUTPUT.  Raises OSError (ELOOP, or
    ENOTDIR for a file in the way) instead; the caller closes the descriptor.
    """
    fd = os.open(root, _FOLDER_FLAGS & ~os.O_NOFOLLOW)  # the root is the user's own choice
    try:
        for part in Path(relparent).parts:
            try:
                if create:
                    os.mkdir(part, dir_fd=fd)
            except FileExistsError:
                pass
            inner = os.open(part, _FOLDER_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = inner
    except BaseException:
        os.close(fd)
        raise
    return fd


def is_url(target: str | os.PathLike) -> bool:
    """True for ``protocol://...`` other than ``file://``; local paths stay plain paths."""
    text = os.fspath(target)
    return "://" in text and not text.startswith("file://")


class Location:
    """A root (directory or prefix) on the local disk or on an fsspec file system."""

    def __init__(self, root: str | os.PathLike, storage_options: dict[str, Any] | None = None):
        text = os.fspath(root)
        self.url = text
        self.storage_options = dict(storage_options or {})
        self.local = not is_url(text)
        if self.local:
            self.root = str(Path(text.removeprefix("file://")))
            self.fs = None
        else:
            try:
                import fsspec
            except ImportError:
                raise LocationError("URLs need fsspec: pip install 'medveil[scale]'") from None
            try:
                self.fs, self.root = fsspec.core.url_to_fs(text, **self.storage_options)
            except (ImportError, ValueError) as exc:
                raise LocationError(f"no file system for this URL ({type(exc).__name__}); "
                                    "for s3:// install s3fs (medveil[scale])") from None
            self.root = self.root.rstrip("/")

    def __getstate__(self) -> dict:
        # fsspec file systems pickle themselves; sending the URL and options is smaller and
        # lets each worker process build (and cache) its own client.
        return {"url": self.url, "storage_options": self.storage_options}

    def __setstate__(self, state: dict) -> None:
        Location.__init__(self, state["url"], state["storage_options"])

    @property
    def _remote(self) -> Any:
        """The fsspec file system of a URL root; a local root has none."""
        assert self.fs is not None, "a local root has no fsspec file system"
        return self.fs

    def join(self, relpath: str) -> str:
        """The full path (local) or key (object store) of *relpath* under the root."""
        return f"{self.root}/{relpath}" if relpath else self.root

    def walk(self) -> Iterator[str]:
        """Relative paths of every object under the root, sorted, temporaries left out."""
        if self.local:
            raise LocationError("local trees are discovered with medveil.dicomio.discover")
        try:
            found = self._remote.find(self.root)
        except FileNotFoundError:
            raise LocationError("the input location does not exist") from None
        prefix = self.root + "/"
        names = sorted(p[len(prefix):] if p.startswith(prefix) else Path(p).name for p in found)
        for name in names:
            if not Path(name).name.startswith(TMP_PREFIX):
                yield name

    def existing(self) -> set[str]:
        """Relative paths of the objects already under the root (an output before a run)."""
        if self.local:
            root = Path(self.root)
            if not root.is_dir():
                return set()
            return {str(p.relative_to(root)) for p in root.rglob("*")
                    if p.is_file() and not p.name.startswith(TMP_PREFIX)}
        if not self._remote.exists(self.root):
            return set()
        return set(self.walk())

    def read(self, path: str, limit: int | None = None) -> bytes:
        """The bytes of *path* (a full path as :meth:`join` gives it), refusing more than *limit*.

        A local path must be a regular file, read without following a link
        planted after discovery (:func:`medveil.dicomio.discover.read_regular`).
        """
        if self.local:
            from medveil.dicomio.discover import InputTooLarge, read_regular

            try:
                return read_regular(path, limit)
            except InputTooLarge as exc:
                raise LocationError(str(exc)) from None
        if limit is not None and self._remote.size(path) > limit:
            raise LocationError(f"the object is larger than this run may hold in memory ({limit >> 20} MiB "
                                "for one file); raise --memory-budget to process it")
        return self._remote.cat_file(path)

    def open(self, path: str):
        return open(path, "rb") if self.local else self._remote.open(path, "rb")

    def sha256(self, path: str) -> str | None:
        """Hash of an existing object, streamed; None when there is none (locally: no regular file).

        A FIFO or device put where an output goes is never opened for reading
        (that would block, or never end); the write that follows replaces it.
        """
        digest = hashlib.sha256()
        try:
            if self.local:
                fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    os.close(fd)
                    return None
                handle = os.fdopen(fd, "rb")
            else:
                handle = self.open(path)
            with handle:
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(chunk)
        except (FileNotFoundError, NotADirectoryError):
            return None
        return digest.hexdigest()

    def write(self, relpath: str, data: bytes) -> None:
        """Put *data* under *relpath*, replacing what was there, never half-written."""
        target = self.join(relpath)
        if self.local:
            relative = Path(relpath)
            Path(self.root).mkdir(parents=True, exist_ok=True)
            try:
                # Folder by folder without following links: nothing is created through one.
                folder = open_release_folder(self.root, relative.parent)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise LocationError("a folder of the output tree is a symbolic link (or not a folder); "
                                        "nothing was written there") from None
                raise
            # A new name that nobody could have prepared (O_EXCL, never through a link), in the umask's mode
            # like any file the user writes: the release is theirs to share.
            tmp = f"{TMP_PREFIX}{relative.name}-{os.getpid()}-{secrets.token_hex(4)}"
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666,
                             dir_fd=folder)
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                os.replace(tmp, relative.name, src_dir_fd=folder, dst_dir_fd=folder)
            except BaseException:
                try:
                    os.unlink(tmp, dir_fd=folder)
                except FileNotFoundError:
                    pass
                raise
            finally:
                os.close(folder)
            return
        self._remote.pipe_file(target, data)

    def delete(self, relpath: str) -> None:
        target = self.join(relpath)
        if self.local:
            # Reached as the write was, folder by folder without following links: a link planted
            # in the tree must not make this unlink a file of the same name somewhere else.
            parent, name = os.path.split(relpath)
            try:
                fd = open_release_folder(self.root, parent, create=False)
            except OSError:
                return  # no such folder, or a link or a file where it should be: nothing of this run lies there
            try:
                os.unlink(name, dir_fd=fd)
            except FileNotFoundError:
                pass
            finally:
                os.close(fd)
            return
        try:
            self._remote.rm_file(target)
        except FileNotFoundError:
            pass

    def clean_temporaries(self) -> int:
        """Remove temporaries a killed local run left anywhere in the tree; returns how many."""
        if not self.local or not os.path.isdir(self.root):
            return 0
        count = 0
        for directory, _dirs, files in os.walk(self.root):
            for name in files:
                if name.startswith(TMP_PREFIX):
                    Path(directory, name).unlink(missing_ok=True)
                    count += 1
        return count
