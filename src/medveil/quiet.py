"""Keep third-party chatter that may quote values off the terminal.

pydicom warns about invalid values by quoting them ("Invalid value for VR
IS: '1A'"), and a value may be PHI.  medveil reports problems in its own
words (attribute names and reasons), so while it reads, cleans and writes
datasets, pydicom's warnings and log records are silenced.

pydicom validates every value it reads or is given against its VR and, in
its default WARN mode, only warns.  While silenced, WARN becomes IGNORE: the
same values, the same behaviour, without building warnings nobody sees (a
tenth of the header-only de-identification time).  A mode of RAISE is left
as it is.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator

from pydicom import config


@contextlib.contextmanager
def silenced() -> Iterator[None]:
    logger = logging.getLogger("pydicom")
    level = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    settings = config.settings
    reading, writing = settings.reading_validation_mode, settings.writing_validation_mode
    if reading == config.WARN:
        settings.reading_validation_mode = config.IGNORE
    if writing == config.WARN:
        settings.writing_validation_mode = config.IGNORE
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)
        settings.reading_validation_mode, settings.writing_validation_mode = reading, writing
