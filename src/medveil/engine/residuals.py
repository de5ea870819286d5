"""The last line of defence: no original identifier may survive in the output.

Before the walk, the values of the dataset's own identifying attributes are
collected (only those the policy does not deliberately keep); after it, every
text value of the result is searched for them, and every original UID that
was remapped must be gone.  A hit means some attribute the table does not
govern (or a free-text field) still carries PHI, and the file is quarantined
instead of written.  The search is by whole word and case-insensitive, so a
patient called "Lee" does not trip over "sleeve".
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from pydicom.charset import convert_encodings, decode_bytes
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.valuerep import PersonName

from medveil.engine.dummy import GENERATED_VALUES
from medveil.engine.uids import is_class_keyword
from medveil.engine.vrs import BINARY_VRS, TEXT_VRS, dictionary_vr, keyword_of, stored
from medveil.policy import Policy
from medveil.policy.identifying import (
    hunted_keywords,
    identifying_kinds,
    kept_by_an_option,
    kept_on_purpose,
    never_searched,
    tag_of,
)
from medveil.text.allow import is_clinical

_MIN_LENGTH = 4
#: Name components that are placeholders, not names ("Last Name^First Name", "NAME^PATIENT").
_PLACEHOLDERS = frozenset({"NAME", "PATIENT", "FIRST", "LAST", "MIDDLE", "TEST", "HERE", "OPERATOR",
                           "UNKNOWN", "ANONYMOUS", "ANONYMIZED", "ANON", "NONE", "NULL", "INFO",
                           "DOCTOR", "PHYSICIAN"})
#: Remapped UIDs shorter than this ("0", "1.2") identify nothing and are not searched for.
_MIN_UID_LENGTH = 10


#: Numbers at least this long are found between letters too (see _pattern).
_MIN_NUMBER = 6
#: What may stand between a family and a given name written out: "LI NA", "Li, Na", "LI_NA".
_NAME_GAP = r"[\s,._^-]+"


def _pattern(words: set[str], pairs: frozenset[tuple[str, str]] = frozenset()) -> re.Pattern | None:
    if not words and not pairs:
        return None
    ordered = sorted(words, key=lambda w: (-len(w), w))
    # A long number (an MRN, an accession, a birth date) ends where the digits end:
    # scanners write it against letters ("MRN99887766"). Shorter ones need whole words.
    numbers = [re.escape(w) for w in ordered if w.isdigit() and len(w) >= _MIN_NUMBER]
    alternatives = [re.escape(w) for w in ordered if not (w.isdigit() and len(w) >= _MIN_NUMBER)]
    alternatives += [re.escape(a) + _NAME_GAP + re.escape(b) for a, b in sorted(pairs)]
    branches = []
    if alternatives:
        branches.append(rf"(?<![0-9A-Za-z])(?:{'|'.join(alternatives)})(?![0-9A-Za-z])")
    if numbers:
        branches.append(rf"(?<![0-9])(?:{'|'.join(numbers)})(?![0-9])")
    return re.compile("|".join(branches), re.IGNORECASE)


_ADDRESS_BREAK = re.compile(r"[\r\n^,;]+")
_HOUSE_NUMBER = re.compile(r"^\s*\d+[A-Za-z]?\s+")


def _address_lines(value: str) -> list[str]:
    """The lines of an address (street, town, ...) and each street without its house number:
    each identifies on its own ("lives on Evergreen Terrace")."""
    lines = [line.strip() for line in _ADDRESS_BREAK.split(value) if line.strip()]
    return lines + [_HOUSE_NUMBER.sub("", line) for line in lines if _HOUSE_NUMBER.match(line)]


def _name_pairs(value) -> set[tuple[str, str]]:
    """(family, given) and (given, family) of each component group of a person name.

    Components shorter than four letters (LI^NA, KIM^MIN) are not searched for alone,
    which would find "li" in every "Bili"; next to each other, in either order, they
    are specific enough.
    """
    pairs: set[tuple[str, str]] = set()
    for group in (value.alphabetic, value.ideographic, value.phonetic):
        family, _, rest = (group or "").partition("^")
        given = rest.split("^", 1)[0]
        family, given = family.strip(), given.strip()
        if not family or not given or {family.upper(), given.upper()} & _PLACEHOLDERS:
            continue
        pairs.update({(family, given), (given, family)})
    return pairs


@dataclass(frozen=True)
class Identifiers:
    """Original values (``whole``) and, in ``any``, also the components of names."""

    whole: re.Pattern | None
    any: re.Pattern | None
    #: The values and name components themselves, for checks made later (medveil.verify).
    words: frozenset[str] = frozenset()

    def find_in(self, text: str, *, whole_only: bool = False) -> bool:
        pattern = self.whole if whole_only else self.any
        if pattern is None:
            return False
        if pattern.search(text):
            return True
        # The same letters in compatibility forms (fullwidth 'ＳＭＩＴＨ', ligatures), which
        # Japanese and Chinese systems write Latin names in, read as what they show.
        return not text.isascii() and bool(pattern.search(unicodedata.normalize("NFKC", text)))


def _parts(value, as_name: bool = False) -> list[str]:
    """The value's text; for a person name also its non-placeholder components.

    *as_name*: the attribute is a person name by its dictionary VR although the
    file declared another VR (LO, SH, LT, ...): split it into components all the same.
    """
    if as_name and isinstance(value, str) and not isinstance(value, PersonName):
        value = PersonName(value)
    if isinstance(value, PersonName):
        pieces = [str(value)]
        for group in (value.alphabetic, value.ideographic, value.phonetic):
            pieces.extend(p for p in re.split(r"[\^=]", group or "")
                          if p and p.strip().upper() not in _PLACEHOLDERS)
        return pieces
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        out = []
        for item in value:
            out.extend(_parts(item, as_name))
        return out
    return [str(value)] if isinstance(value, str) else []


def _usable(text: str) -> str | None:
    """Long enough to be specific: 4 characters, or 2 in scripts such as CJK where
    a family name is often two characters.  A value made only of clinical vocabulary
    (a department called "Radiology" or "Nuclear Medicine") identifies nobody, and
    searching for it would quarantine every description that names the specialty."""
    text = text.strip().strip("^").strip()
    long_enough = len(text) >= _MIN_LENGTH or (len(text) >= 2 and not text.isascii())
    if not long_enough or text.upper() in GENERATED_VALUES or not any(c.isalnum() for c in text):
        return None
    words = re.findall(r"[A-Za-z0-9]+", text)
    if words and all(is_clinical(word) for word in words):
        return None
    return text


def sop_class_of(ds: Dataset) -> str:
    """The SOP Class UID as the policy's per-class decisions look it up."""
    value = ds.get("SOPClassUID")
    return "" if value is None else str(value).strip().rstrip("\x00")


def collect_identifiers(ds: Dataset, policy: Policy, sop_class_uid: str) -> Identifiers:
    whole: set[str] = set()
    parts: set[str] = set()
    pairs: set[tuple[str, str]] = set()
    kinds = identifying_kinds()
    for keyword in hunted_keywords():
        tag = tag_of(keyword)
        if tag is None or tag not in ds:
            continue
        if kept_on_purpose(policy, tag, sop_class_uid) or kept_by_an_option(policy, tag):
            continue  # the user, the profile or an option keeps it (or what it names) on purpose
        elem = ds[tag]
        if elem.VR == "SQ":
            continue
        as_name = dictionary_vr(tag) == "PN"
        values = list(elem.value) if elem.VM > 1 else [elem.value]
        for value in values:
            if isinstance(value, bytes):
                value = value.decode("latin-1")
            if as_name and isinstance(value, (str, PersonName)):
                pairs.update(_name_pairs(value if isinstance(value, PersonName) else PersonName(value)))
            pieces = _parts(value, as_name)
            if pieces and (text := _usable(pieces[0])):
                whole.add(text)
            parts.update(t for piece in pieces[1:] if (t := _usable(piece)))
            if kinds.get(keyword) == "addresses" and isinstance(value, str):
                parts.update(t for line in _address_lines(value) if (t := _usable(line)))
    whole |= _compatible(whole)
    parts |= _compatible(parts)
    spelled = {f"{a} {b}" for a, b in pairs}  # for verify, which matches runs of normalised words
    return Identifiers(whole=_pattern(whole), any=_pattern(whole | parts, frozenset(pairs)),
                       words=frozenset(whole | parts | spelled))


def _compatible(values: set[str]) -> set[str]:
    """NFKC forms of non-ASCII *values* (a name held in fullwidth letters), to search for too."""
    return {folded for v in values if not v.isascii() and (folded := unicodedata.normalize("NFKC", v)) != v}


@dataclass(frozen=True)
class Residual:
    """Where an original identifier survived: the dataset (or item) that holds it,
    the element's tag, its VR, and its name as the audit store writes it
    (``Keyword`` or ``Sequence[0].Keyword``, ``(gggg,eeee)`` without a keyword)."""

    holder: Dataset = field(repr=False, compare=False)
    tag: int
    vr: str
    path: str
    uid: bool = False  # an original UID rather than an identifying value


def find_residuals(ds: Dataset, identifiers: Identifiers, old_uids: set[str]) -> list[str]:
    """Names (keywords or tags) of attributes still carrying an original identifier."""
    return [_leaf(r.path) for r in locate_residuals(ds, identifiers, old_uids)]


def locate_residuals(ds: Dataset, identifiers: Identifiers, old_uids: set[str]) -> list[Residual]:
    """Every element, at any depth, still carrying an original identifier or UID."""
    hits: list[Residual] = []
    uids = {u for u in old_uids if len(u) >= _MIN_UID_LENGTH}
    _scan(ds, identifiers, uids, hits, ["iso8859"], "", never_searched())
    return hits


def _leaf(path: str) -> str:
    return path.rsplit(".", 1)[-1]


def _raw_texts(raw: bytes, encodings: list[str]) -> list[str]:
    """Text of a still-encoded value, decoded as the dataset declares and, in case the
    declaration is wrong, as Latin-1 (which maps every byte) and UTF-8."""
    latin = raw.decode("latin-1").strip("\x00 ")
    if raw.isascii() and b"\x1b" not in raw:  # ISO 2022 escapes are 7-bit too
        return [latin]
    texts = [latin, raw.decode("utf-8", "ignore").strip("\x00 ")]
    try:
        # Padding off first: a space after ESC $ B is no JIS X 0208 byte, and pydicom
        # gives up on the whole value (keeping the escapes as text) when it meets one.
        texts.append(decode_bytes(raw.rstrip(b"\x00 "), encodings, set()).strip("\x00 "))
    except Exception:  # undecodable in the declared set: the two readings above remain
        pass
    return texts


#: Binary private values up to this size are also read as UTF-16 (vendors keep text that
#: way too); larger ones (volume payloads) only byte for byte, which costs no more memory.
_UTF16_LIMIT = 1 << 20


def private_binary_texts(raw: bytes, encodings: list[str]) -> list[str]:
    """Text a kept private value of binary or unknown VR (OB, OW, UN, implicit) may hold.

    The private tag knowledge base keeps an element whatever VR it arrives with, and
    vendors store strings as OB: such a value is read as text too, byte for byte, in
    the declared character set and, when small enough, as UTF-16.
    """
    texts = _raw_texts(raw, encodings)
    if 4 <= len(raw) <= _UTF16_LIMIT:
        even = raw[: len(raw) & ~1]
        texts += [even.decode("utf-16-le", "ignore").strip("\x00 "),
                  even.decode("utf-16-be", "ignore").strip("\x00 ")]
    return texts


def _private_bytes(raw) -> bytes | None:
    """The bytes of a private element held as binary (OB, OW, UN, ...), else None."""
    value = raw.value
    if not isinstance(value, (bytes, bytearray)) or raw.VR not in BINARY_VRS:
        return None
    return bytes(value)


def _encodings(ds: Dataset, inherited: list[str]) -> list[str]:
    if 0x00080005 not in ds:
        return inherited
    try:
        return convert_encodings(ds[0x00080005].value or "ISO_IR 6")
    except Exception:
        return inherited


def _scan(ds: Dataset, identifiers: Identifiers, old_uids: set[str], hits: list[Residual],
          inherited: list[str], prefix: str, skipped: frozenset[str]) -> None:
    encodings = _encodings(ds, inherited)  # an item may declare its own character set
    for tag in ds.keys():
        raw = stored(ds, tag)
        keyword = keyword_of(tag)
        if keyword in skipped:  # coded vocabulary and equipment names (policy.identifying)
            continue
        if tag >> 16 & 1 and raw.VR is None:
            raw = ds[tag]  # implicit VR: as pydicom reads it (a sequence it knows, else UN bytes)
        raw_vr = raw.VR if raw.VR is not None or not isinstance(raw, RawDataElement) else dictionary_vr(tag)
        if tag >> 16 & 1 and (binary := _private_bytes(raw)) is not None:
            # Kept private values of binary or unknown type count as text: the KB keeps
            # an element whatever VR it arrives with (raw, or as pydicom converted it).
            vr = raw_vr or "UN"
            texts = private_binary_texts(binary, encodings)
        elif isinstance(raw, RawDataElement) and raw_vr in TEXT_VRS:
            # Still encoded: searched as text without converting (and so without changing
            # how it will be written).
            vr = raw_vr
            texts = _raw_texts(raw.value, encodings) if isinstance(raw.value, bytes) else []
        elif isinstance(raw, RawDataElement) and raw_vr is not None and raw_vr not in ("SQ", "UN"):
            continue  # numbers and binary data: nothing to read, nothing to convert
        else:
            elem = raw if isinstance(raw, DataElement) else ds[tag]
            vr = elem.VR
            if vr == "SQ":
                name = prefix + (keyword or _tag_name(tag))
                for index, item in enumerate(elem.value or []):
                    _scan(item, identifiers, old_uids, hits, encodings, f"{name}[{index}].", skipped)
                continue
            if vr not in TEXT_VRS and not isinstance(elem.value, str):
                continue
            texts = _parts(elem.value)
            if any("\x1b" in text for text in texts):
                # Escapes left in decoded text: pydicom could not decode an ISO 2022 value
                # and kept its bytes as Latin-1; read those bytes again as the set declares.
                texts += [again for text in texts if "\x1b" in text
                          for again in _raw_texts(text.encode("latin-1", "ignore"), encodings)]
        # Coded strings (CS) are defined terms: a name component such as "Perfusion" may
        # legitimately be one, so only whole original values count there.
        whole_only = vr == "CS"
        check_uids = bool(old_uids) and not is_class_keyword(keyword)
        for text in texts:
            found = identifiers.find_in(text, whole_only=whole_only)
            uid = not found and check_uids and _holds_uid(text, old_uids)
            if found or uid:
                hits.append(Residual(ds, int(tag), vr or "UN", prefix + (keyword or _tag_name(tag)), uid=uid))
                break


#: A UID written inside other text (a WADO URL, "see study 1.2.3..."): dotted digits
#: standing alone, not part of a longer number.
_UID_TOKEN = re.compile(r"(?<![0-9.])[0-9]+(?:\.[0-9]+)+(?![0-9])")


def _holds_uid(text: str, old_uids: set[str]) -> bool:
    """True when *text* is, holds as one of its values, or quotes one of *old_uids*."""
    if len(old_uids) <= 64 and not any(uid in text for uid in old_uids):
        return False  # no UID occurs at all (a substring search each): spares splitting megabytes of values
    if any(part.strip("\x00 ") in old_uids for part in text.split("\\")):
        return True
    return any(token.rstrip(".") in old_uids for token in _UID_TOKEN.findall(text))


def _tag_name(tag: int) -> str:
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"
