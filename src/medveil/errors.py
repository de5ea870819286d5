"""Exceptions whose messages are safe to show.

medveil never puts a value read from a dataset into an exception message: a
message may end up in a log, on a terminal or in the audit store, and the value
may be PHI.  Every error raised on purpose is a :class:`MedveilError` whose text
names attributes (by tag or keyword) and reasons, never contents.  Errors from
third-party code are reported by their type name only (see
:func:`safe_reason`).
"""

from __future__ import annotations


class MedveilError(Exception):
    """Base class; the message is guaranteed free of dataset values."""


class KeyFileError(MedveilError):
    """The pseudonymisation key is missing, unreadable or malformed."""


class PolicyError(MedveilError):
    """A profile, option or recipe cannot be understood."""


class InvalidValueError(MedveilError):
    """A value cannot be transformed (e.g. a date that does not parse)."""


class QuarantineError(MedveilError):
    """A file must not reach the output; the message says why."""


def safe_reason(exc: BaseException) -> str:
    """Describe *exc* without leaking values it may carry in its message."""
    if isinstance(exc, MedveilError):
        return str(exc)
    return f"unexpected {type(exc).__name__} while processing"
