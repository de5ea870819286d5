"""Keep third-party chatter that may quote values off the terminal.

pydicom warns about invalid values by quoting them ("Invalid value for VR
IS: '1A'"), and a value may be PHI.  medveil reports problems in its own
words (attribute names and reasons), so while it reads, cleans and writes
datasets, pydicom's warnings and log records are silenced.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator


@contextlib.contextmanager
def silenced() -> Iterator[None]:
    logger = logging.getLogger("pydicom")
    level = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)
