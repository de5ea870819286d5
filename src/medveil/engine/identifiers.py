"""The file's own identifiers, collected once, before anything changes them.

Three steps of one file need the values of its identifying attributes: the pixel
step (burned-in text that repeats them is PHI), the text cleaner behind the C
actions (descriptions that repeat them) and the residual check.  The values are
read from the dataset as it came in, so they must be collected before the walk
changes it, and collecting them walks every element at every depth: a step that
collected them again would repeat the walk with the same result.
:func:`known_once` collects them on first use and hands every later caller the
same :class:`~medveil.text.KnownIdentifiers`.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

from pydicom.dataset import Dataset

from medveil.policy import Policy
from medveil.text import KnownIdentifiers

#: A file's identifiers, or a function that collects them on first use.
KnownSource = KnownIdentifiers | Callable[[], KnownIdentifiers]


def known_once(ds: Dataset, policy: Policy | None) -> Callable[[], KnownIdentifiers]:
    """A function returning *ds*'s identifiers, collected at its first call (most files
    never need them: no burned-in text, no C action) and remembered for the next."""
    return cache(lambda: KnownIdentifiers.from_dataset(ds, policy))


def resolve_known(known: KnownSource | None, ds: Dataset, policy: Policy | None) -> KnownIdentifiers:
    """The identifiers *known* stands for, collected from *ds* when the caller gave none."""
    if known is None:
        return KnownIdentifiers.from_dataset(ds, policy)
    return known() if callable(known) else known
