"""The secret key behind every pseudonym.

All pseudonyms are HMAC-SHA256 values under one secret, so the same original
gives the same pseudonym on any machine holding the key, without a shared
database, and nobody without the key can recompute or invert them.  The key
file is plain text (a version line and the hex secret) so it can be printed
on paper and kept in a safe, and so a later format can be told apart by its
first line.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path

from medveil.errors import KeyFileError

HEADER = "medveil-key-v1"
#: 256 bits: the full strength of HMAC-SHA256; shorter secrets are refused.
MIN_BYTES = 32
#: A key file is two short lines; anything larger is not one (and is not read whole).
MAX_FILE_BYTES = 4096
_FINGERPRINT_DOMAIN = b"medveil-key-fingerprint\x00"
_HEX = re.compile(r"[0-9a-fA-F]+")


@dataclass(frozen=True)
class Key:
    """A pseudonymisation secret.

    The secret is kept out of ``repr`` (and hence out of tracebacks, logs and
    debugger output); :meth:`fingerprint` names the key instead.
    """

    secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.secret, bytes) or len(self.secret) < MIN_BYTES:
            raise KeyFileError(f"a key needs at least {MIN_BYTES} secret bytes")
        if not any(self.secret):
            # All zeros is what a truncated or blanked file and placeholder keys look like: every
            # pseudonym would be computable by anyone.
            raise KeyFileError("the key's secret is all zeros; create a real one with 'medveil keygen'")

    def fingerprint(self) -> str:
        """A short, non-secret name for the key, safe to log and to store.

        It lets an audit record say *which* key made a set of pseudonyms
        (hashing with a domain prefix, so it is unrelated to any HMAC output
        and reveals nothing usable about the secret).
        """
        return hashlib.sha256(_FINGERPRINT_DOMAIN + self.secret).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"Key(fingerprint={self.fingerprint()!r})"


def derive(key: Key, purpose: str, value: str) -> bytes:
    """HMAC-SHA256 of *value* under *key*, separated by *purpose*.

    The purpose ("uid", "patient-id", "accession", "date-offset", ...) is part
    of the message so that the same text in two roles (a Patient ID that is
    also an accession number) gets unrelated pseudonyms.  The NUL separator
    cannot occur in a purpose, so no (purpose, value) pair can imitate
    another.  ``surrogateescape`` lets values decoded from odd character sets
    be hashed instead of raising; other lone surrogates (which only broken
    decoders produce) fall back to ``surrogatepass`` so that hashing never
    fails on text that Python can hold.
    """
    try:
        encoded = value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        encoded = value.encode("utf-8", "surrogatepass")
    return hmac.new(key.secret, purpose.encode("utf-8") + b"\x00" + encoded, hashlib.sha256).digest()


def generate_key_file(path: Path) -> Key:
    """Write a new random key to *path* with mode 0600 and return it.

    The file is created with ``O_EXCL`` and the mode given at creation, so the
    secret is never readable by others, not even for an instant, and an
    existing key, whose loss would make every earlier pseudonym
    unreproducible, is never overwritten.
    """
    path = Path(path)
    key = Key(secrets.token_bytes(MIN_BYTES))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeyFileError(f"key file {path.name} already exists; refusing to overwrite it") from None
    except OSError as exc:
        raise KeyFileError(f"cannot create key file {path.name} ({type(exc).__name__})") from None
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(f"{HEADER}\n{key.secret.hex()}\n")
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        # A half-written key file would be refused later anyway; remove it so
        # a retry is not blocked by the no-overwrite rule.
        path.unlink(missing_ok=True)
        raise KeyFileError(f"cannot write key file {path.name} ({type(exc).__name__})") from None
    return key


def load_key(path: Path) -> Key:
    """Read a key written by :func:`generate_key_file`.

    Trailing whitespace (an editor's extra newline, CRLF line ends) is
    tolerated; anything else that differs from the format is refused with a
    message that never quotes the file's contents.
    """
    path = Path(path)
    try:
        text = _read_small_regular(path).decode("ascii")
    except FileNotFoundError:
        raise KeyFileError(f"key file {path.name} does not exist (create one with 'medveil keygen')") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyFileError(f"cannot read key file {path.name} ({type(exc).__name__})") from None
    lines = [line.rstrip() for line in text.rstrip().splitlines()]
    if not lines or lines[0] != HEADER:
        raise KeyFileError(f"{path.name} is not a medveil key file (the first line must be '{HEADER}')")
    if len(lines) != 2 or not lines[1]:
        raise KeyFileError(f"key file {path.name} must hold exactly one line with the hex secret after the header")
    hex_secret = lines[1]
    if not _HEX.fullmatch(hex_secret) or len(hex_secret) % 2:
        raise KeyFileError(f"key file {path.name}: the secret is not a whole number of hexadecimal bytes")
    secret = bytes.fromhex(hex_secret)
    if len(secret) < MIN_BYTES:
        raise KeyFileError(f"key file {path.name}: the secret is shorter than {MIN_BYTES} bytes")
    return Key(secret)


def _read_small_regular(path: Path) -> bytes:
    """The bytes of the key file, refusing what is not a small regular file before reading it.

    A FIFO would block the command for ever and ``/dev/zero`` (or a huge file
    named by mistake) would be read until memory runs out; the file is opened
    without blocking, checked with ``fstat``, and never read past
    :data:`MAX_FILE_BYTES`.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = "a directory" if stat.S_ISDIR(info.st_mode) else "a device, FIFO or socket"
            raise KeyFileError(f"key file {path.name} is {kind}, not a regular file")
        data = os.read(fd, MAX_FILE_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) > MAX_FILE_BYTES:
        raise KeyFileError(f"{path.name} is not a medveil key file (larger than {MAX_FILE_BYTES} bytes)")
    return data


def key_file_warnings(path: Path) -> list[str]:
    """What is wrong, but not fatal, about how the key file at *path* is kept (its mode).

    A key readable by other users lets them compute every pseudonym (and
    re-identify a release by hashing candidate identifiers): the key still
    loads, since refusing it mid-project would strand earlier releases, but
    the user is told how to fix it.
    """
    try:
        mode = os.stat(path).st_mode & 0o777
    except OSError:
        return []
    if mode & 0o077:
        return [f"key file {Path(path).name} can be read by other users (mode {mode:04o}); "
                f"make it private with: chmod 600 {path}"]
    return []


def load_key_from_env(var: str = "MEDVEIL_KEY_FILE") -> Key | None:
    """The key named by environment variable *var*, or ``None`` when it is unset or empty.

    ``None`` (rather than an error) lets the caller decide between a
    throw-away key and refusing to run.
    """
    value = os.environ.get(var)
    return load_key(Path(value)) if value else None


def throwaway_key() -> Key:
    """A random key that lives only in memory.

    Useful for one-off exports: pseudonyms are consistent within the run but
    can never be reproduced or linked to another run.
    """
    return Key(secrets.token_bytes(MIN_BYTES))
