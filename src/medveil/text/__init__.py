"""Free-text de-identification: find PHI spans in a text value and remove only them.

This is the cleaner behind the DICOM "C" (clean) actions of the Clean Descriptors, Clean
Structured Content and Clean Graphics options: it is given one attribute's text and the
file's own identifying values (:class:`KnownIdentifiers`), and returns the text with the PHI
cut out and the clinical words kept ("CT CHEST W/O CONTRAST for Mary Smith 20140321" becomes
"CT CHEST W/O CONTRAST"), together with one category per removed span for the audit.

    >>> from medveil.text import TextCleaner, KnownIdentifiers
    >>> cleaner = TextCleaner(KnownIdentifiers(names=("SMITH^JOHN",)))
    >>> cleaner.clean("MRI BRAIN per Dr. Taylor").text
    'MRI BRAIN'
"""

from medveil.text.clean import CleanResult, TextCleaner, clean_text
from medveil.text.known import KnownIdentifiers
from medveil.text.spans import Span

__all__ = ["CleanResult", "KnownIdentifiers", "Span", "TextCleaner", "clean_text"]
