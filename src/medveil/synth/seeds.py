"""Deterministic randomness: every choice is derived from the seed and a label.

A synthetic test set must come out byte for byte the same from the same seed
and corpus, whatever order the files are visited in and however many are
left out.  A single shared random stream would make each choice depend on
every earlier one, so instead each choice draws from its own stream, seeded by
a hash of the run's seed and a label naming what is being chosen ("patient",
3, "name").  Adding a file then changes nothing about the files before it.
"""

from __future__ import annotations

import hashlib
import random


def derive(seed: int, *labels: object) -> int:
    """A 64-bit integer determined by ``seed`` and ``labels`` alone."""
    text = "\x1f".join([str(seed), *(repr(label) for label in labels)])
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")


def rng(seed: int, *labels: object) -> random.Random:
    """A random stream of its own for the choice named by ``labels``."""
    return random.Random(derive(seed, *labels))


def new_uid(seed: int, *labels: object) -> str:
    """A fresh UID under the 2.25 root (PS3.5 B.2), determined by ``seed`` and ``labels``.

    128 bits from SHA-256 make collisions as unlikely as with a UUID, and the
    decimal form has no leading zero, as the UID rules require.
    """
    text = "\x1f".join(["uid", str(seed), *(repr(label) for label in labels)])
    value = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:16], "big")
    return f"2.25.{value or 1}"
