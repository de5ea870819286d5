"""Key files: format, permissions, refusal to overwrite, and secrecy of the secret."""

from __future__ import annotations

import hashlib
import hmac
import os
import stat
from pathlib import Path

import pytest

from medveil.errors import KeyFileError
from medveil.pseudonym import Key, derive, generate_key_file, load_key, load_key_from_env, throwaway_key

SECRET = bytes(range(32))


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "medveil.key"
    key = generate_key_file(path)
    assert len(key.secret) == 32
    assert load_key(path) == key
    assert path.read_text(encoding="ascii") == f"medveil-key-v1\n{key.secret.hex()}\n"


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_key_file_mode_is_0600(tmp_path: Path) -> None:
    path = tmp_path / "k.key"
    old_umask = os.umask(0)  # even a permissive umask must not widen the mode
    try:
        generate_key_file(path)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "k.key"
    first = generate_key_file(path)
    with pytest.raises(KeyFileError, match="exists"):
        generate_key_file(path)
    assert load_key(path) == first


def test_keys_are_random(tmp_path: Path) -> None:
    assert generate_key_file(tmp_path / "a") != generate_key_file(tmp_path / "b")
    assert throwaway_key() != throwaway_key()
    assert len(throwaway_key().secret) >= 32


def test_tolerates_trailing_whitespace(tmp_path: Path) -> None:
    path = tmp_path / "k.key"
    path.write_text(f"medveil-key-v1  \r\n{SECRET.hex().upper()} \t\r\n\n\n", encoding="ascii")
    assert load_key(path).secret == SECRET


def test_accepts_longer_secret(tmp_path: Path) -> None:
    path = tmp_path / "k.key"
    path.write_text(f"medveil-key-v1\n{(SECRET * 2).hex()}\n", encoding="ascii")
    assert load_key(path).secret == SECRET * 2


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="does not exist"):
        load_key(tmp_path / "absent.key")


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError):
        load_key(tmp_path)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("", "not a medveil key file"),
        ("\n\n", "not a medveil key file"),
        (f"medveil-key-v2\n{SECRET.hex()}\n", "not a medveil key file"),
        (f"{SECRET.hex()}\n", "not a medveil key file"),
        (f" medveil-key-v1\n{SECRET.hex()}\n", "not a medveil key file"),
        ("medveil-key-v1\n", "exactly one line"),
        (f"medveil-key-v1\n{SECRET.hex()}\nextra\n", "exactly one line"),
        (f"medveil-key-v1\n\n{SECRET.hex()}\n", "exactly one line"),
        (f"medveil-key-v1 {SECRET.hex()}\n", "not a medveil key file"),
        ("medveil-key-v1\n" + "zz" * 32 + "\n", "hexadecimal"),
        ("medveil-key-v1\n" + SECRET.hex()[:-1] + "\n", "hexadecimal"),
        ("medveil-key-v1\n" + SECRET.hex()[:32] + " " + SECRET.hex()[32:] + "\n", "hexadecimal"),
        ("medveil-key-v1\n0x" + SECRET.hex() + "\n", "hexadecimal"),
        ("medveil-key-v1\n" + SECRET.hex()[:62] + "\n", "shorter than 32"),
    ],
)
def test_malformed_files(tmp_path: Path, content: str, reason: str) -> None:
    path = tmp_path / "k.key"
    path.write_text(content, encoding="ascii")
    with pytest.raises(KeyFileError, match=reason) as info:
        load_key(path)
    # The message names the problem, never the file's contents.
    secret_part = content.split("\n")[1] if "\n" in content else content
    if len(secret_part.strip()) >= 8:
        assert secret_part.strip() not in str(info.value)


def test_non_ascii_file(tmp_path: Path) -> None:
    path = tmp_path / "k.key"
    path.write_bytes(b"medveil-key-v1\n\xff\xfe" + SECRET.hex().encode() + b"\n")
    with pytest.raises(KeyFileError):
        load_key(path)


def test_load_key_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MEDVEIL_KEY_FILE", raising=False)
    assert load_key_from_env() is None
    monkeypatch.setenv("MEDVEIL_KEY_FILE", "")
    assert load_key_from_env() is None
    key = generate_key_file(tmp_path / "env.key")
    monkeypatch.setenv("MEDVEIL_KEY_FILE", str(tmp_path / "env.key"))
    assert load_key_from_env() == key
    monkeypatch.setenv("OTHER_VAR", str(tmp_path / "missing.key"))
    with pytest.raises(KeyFileError):
        load_key_from_env("OTHER_VAR")


def test_short_or_wrong_secret_rejected() -> None:
    with pytest.raises(KeyFileError):
        Key(b"x" * 31)
    with pytest.raises(KeyFileError):
        Key("k" * 32)  # type: ignore[arg-type]


def test_fingerprint_stable_and_safe() -> None:
    key = Key(SECRET)
    expected = hashlib.sha256(b"medveil-key-fingerprint\x00" + SECRET).hexdigest()[:16]
    assert key.fingerprint() == expected
    assert Key(SECRET).fingerprint() == key.fingerprint()
    assert len(key.fingerprint()) == 16
    assert all(c in "0123456789abcdef" for c in key.fingerprint())
    assert key.fingerprint() not in SECRET.hex()
    assert Key(b"y" * 32).fingerprint() != key.fingerprint()


def test_repr_hides_secret() -> None:
    secret = bytes.fromhex("a5" * 32)
    key = Key(secret)
    for text in (repr(key), str(key), f"{key!r}", repr([key])):
        assert "a5a5" not in text
        assert repr(secret) not in text
        assert "\\xa5" not in text
    assert key.fingerprint() in repr(key)


def test_key_is_frozen() -> None:
    key = Key(SECRET)
    with pytest.raises(AttributeError):
        key.secret = b"x" * 32  # type: ignore[misc]


def test_derive_is_hmac_with_domain_separation() -> None:
    key = Key(SECRET)
    expected = hmac.new(SECRET, b"uid\x001.2.3", hashlib.sha256).digest()
    assert derive(key, "uid", "1.2.3") == expected
    assert derive(key, "uid", "x") != derive(key, "patient-id", "x")
    assert derive(key, "uid", "x") != derive(Key(b"y" * 32), "uid", "x")
    # Undecodable bytes smuggled in as surrogates are hashed, not rejected.
    assert len(derive(key, "patient-id", b"\xff".decode("utf-8", "surrogateescape"))) == 32
    # Any other lone surrogate is hashed too instead of raising.
    assert derive(key, "patient-id", "\udd00") != derive(key, "patient-id", "")


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_a_key_path_that_is_no_regular_file_is_refused_without_reading_it(tmp_path: Path, kind: str) -> None:
    """A FIFO used to block the command for ever, /dev/zero to be read until memory ran out."""
    if kind == "fifo":
        path = tmp_path / "k.key"
        os.mkfifo(path)
    else:
        path = tmp_path / "zero.key"
        path.symlink_to("/dev/zero")
    with pytest.raises(KeyFileError, match="not a regular file"):
        load_key(path)


def test_a_large_file_named_as_key_is_refused_without_reading_it_whole(tmp_path: Path) -> None:
    path = tmp_path / "big.key"
    path.write_text(f"medveil-key-v1\n{SECRET.hex()}\n" + " " * 10_000, encoding="ascii")
    with pytest.raises(KeyFileError, match="larger than"):
        load_key(path)
