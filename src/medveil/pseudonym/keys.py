"""The secret key behind every pseudonym.

All pseudonyms are HMAC-SHA256 values under one secret, so the same original
gives the same pseudonym on any machine holding the key, without a shared
database, and nobody without the key can recompute or invert them.  The key
file is text (a version line and the hex secret) so it can be printed on
paper and kept in a safe.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from medveil.errors import KeyFileError

HEADER = "medveil-key-v1"
MIN_BYTES = 32


@dataclass(frozen=True)
class Key:
    secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.secret, bytes) or len(self.secret) < MIN_BYTES:
            raise KeyFileError(f"a key needs at least {MIN_BYTES} secret bytes")

    def fingerprint(self) -> str:
        """A short, non-secret name for the key (safe to log and store)."""
        return hashlib.sha256(b"medveil-key-fingerprint\x00" + self.secret).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"Key(fingerprint={self.fingerprint()})"


def derive(key: Key, purpose: str, value: str) -> bytes:
    """HMAC-SHA256 of *value*; *purpose* separates the domains (UIDs, IDs, offsets…)."""
    message = purpose.encode("utf-8") + b"\x00" + value.encode("utf-8", "surrogateescape")
    return hmac.new(key.secret, message, hashlib.sha256).digest()


def generate_key_file(path: Path) -> Key:
    """Write a new random key to *path* (mode 0600); never overwrites."""
    path = Path(path)
    key = Key(secrets.token_bytes(MIN_BYTES))
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeyFileError(f"key file {path.name} already exists; refusing to overwrite it") from None
    except OSError as exc:
        raise KeyFileError(f"cannot create key file ({type(exc).__name__})") from None
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(f"{HEADER}\n{key.secret.hex()}\n")
    return key


def load_key(path: Path) -> Key:
    path = Path(path)
    try:
        lines = path.read_text(encoding="ascii").split()
    except FileNotFoundError:
        raise KeyFileError(f"key file {path.name} does not exist (create one with 'medveil keygen')") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyFileError(f"cannot read key file {path.name} ({type(exc).__name__})") from None
    if len(lines) != 2 or lines[0] != HEADER:
        raise KeyFileError(f"{path.name} is not a medveil key file (expected '{HEADER}' and a hex secret)")
    try:
        secret = bytes.fromhex(lines[1])
    except ValueError:
        raise KeyFileError(f"key file {path.name}: the secret is not hexadecimal") from None
    if len(secret) < MIN_BYTES:
        raise KeyFileError(f"key file {path.name}: the secret is shorter than {MIN_BYTES} bytes")
    return Key(secret)


def load_key_from_env(var: str = "MEDVEIL_KEY_FILE") -> Key | None:
    value = os.environ.get(var)
    return load_key(Path(value)) if value else None


def throwaway_key() -> Key:
    """A random key that lives only in memory (pseudonyms not reproducible)."""
    return Key(secrets.token_bytes(MIN_BYTES))
