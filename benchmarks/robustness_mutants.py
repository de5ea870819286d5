"""Hostile inputs with planted identifiers, for the robustness benchmark and its fast test subset.

Every mutant starts from a real file of the bundled corpora (pydicom's test
files, ``pydicom-data``, ``deid-data``).  Before it is damaged, its
identifying attributes are replaced by *markers*: strings that occur nowhere
else (``QZMVK`` + the mutant's number in letters + a two-letter role, e.g.
``QZMVKAAAAETNA`` for the family name of mutant 123), in Patient's Name and ID, other IDs,
institution, physicians, accession and study IDs, free text that repeats the
name and ID, a private element and a private sequence, nested sequences, and
in SR content (a TEXT item, a PNAME item, the verifying observer).  Every
UID the PS3.15 table says to replace becomes a fresh UID under
:data:`UID_ROOT`.  A released file holding any marker or any such UID, in its
raw bytes or its decoded values, leaked.

The damage comes in classes (:data:`CLASSES`): lengths that swallow the
following elements, truncation, header bit flips, VR swaps, wrong transfer
syntax declarations, deflate bombs, huge declared pixel sizes, very long or
zero-padded values, odd character sets, deep nesting, duplicated elements,
undefined-length oddities and non-DICOM junk.  Mutant *i* depends only on the
seed, *i* and the list of sources, so any one of them can be rebuilt alone.

The planting is done once per source with a placeholder number
(:data:`PLACEHOLDER`); a mutant's bytes get its own number by a
length-preserving replacement, so a damaged length field stays exactly as
damaged as it was made.
"""

from __future__ import annotations

import io
import random
import re
import struct
import sys
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import pydicom
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    RLELossless,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from robustness_codec import (  # noqa: E402
    PIXEL_DATA,
    Element,
    Item,
    Span,
    copy_tree,
    encode,
    parse,
    set_length,
    walk,
)

MARKER_PREFIX = "QZMVK"
#: Markers are letters only (the mutant's number in base 26): digits would make a name look
#: like an ID, which pattern-based text cleaning removes for the wrong reason.
PLACEHOLDER = MARKER_PREFIX + "AAAAAA"
#: Planted UIDs: UID_ROOT + (100000 + mutant number) + "." + a serial number (from 10).
UID_ROOT = "1.3.6.1.4.1.99999.13."
UID_PLACEHOLDER = UID_ROOT + "100000."
MAX_MUTANTS = 899_999

MARKER_RE = re.compile(rb"QZMVK[A-Z]{0,8}", re.IGNORECASE)
MARKER_UTF16_RE = re.compile("QZMVK".encode("utf-16-le"), re.IGNORECASE)
UID_RE = re.compile(re.escape(UID_ROOT.encode("ascii")) + rb"(\d{0,6})")
SR_CLASS_PREFIX = "1.2.840.10008.5.1.4.1.1.88."


def letters(index: int) -> str:
    """*index* as six letters, AAAAAA = 0 (base 26)."""
    text = ""
    for _ in range(6):
        index, digit = divmod(index, 26)
        text = chr(65 + digit) + text
    return text


def number(text: str) -> int | None:
    """The inverse of :func:`letters`, or None for anything else."""
    if len(text) != 6 or not text.isalpha() or not text.isupper():
        return None
    value = 0
    for char in text:
        value = value * 26 + ord(char) - 65
    return value


def marker(index: int, role: str) -> str:
    return f"{MARKER_PREFIX}{letters(index)}{role}"


def planted_uid(index: int, serial: int) -> str:
    return f"{UID_ROOT}{100000 + index}.{serial}"


def personalise(data: bytes, index: int) -> bytes:
    """Give placeholder markers and UIDs the mutant's number (length-preserving)."""
    if not 0 <= index <= MAX_MUTANTS:
        raise ValueError("mutant number out of range")
    own = MARKER_PREFIX + letters(index)
    data = data.replace(PLACEHOLDER.encode("ascii"), own.encode("ascii"))
    data = data.replace(PLACEHOLDER.encode("utf-16-le"), own.encode("utf-16-le"))
    return data.replace(UID_PLACEHOLDER.encode("ascii"), f"{UID_ROOT}{100000 + index}.".encode("ascii"))


# -- planting --------------------------------------------------------------------------------------

P = PLACEHOLDER
#: Identifiers look like identifiers: names are letters only, IDs end in digits (as MRNs do,
#: and as the pattern-based part of text cleaning expects).
ID = f"{P}ID-4711"
#: keyword: (VR, value); each value's roles are the two letters after each placeholder.
HEADER_PLANTS: dict[str, tuple[str, str]] = {
    "AccessionNumber": ("SH", f"{P}AC47"),
    "InstitutionName": ("LO", f"{P}IN Hospital"),
    "InstitutionAddress": ("ST", f"1 {P}IA Street"),
    "ReferringPhysicianName": ("PN", f"{P}RF^Ref"),
    "PerformingPhysicianName": ("PN", f"{P}PP^Perf"),
    "OperatorsName": ("PN", f"{P}OP^Op"),
    "PatientName": ("PN", f"{P}NA^{P}GV"),
    "PatientID": ("LO", ID),
    "OtherPatientIDs": ("LO", f"{P}OI-4712"),
    "PatientBirthName": ("PN", f"{P}BN^Birth"),
    "PatientAddress": ("LO", f"2 {P}AD Road"),
    "StudyID": ("SH", f"{P}SI47"),
    # Free text that repeats the identifiers above: cleaned (not removed) under Clean Descriptors.
    "ImageComments": ("LT", f"Reviewed with {P}NA {P}GV (MRN {ID}), referred by {P}RF."),
    "AdditionalPatientHistory": ("LT", f"Patient {P}NA {P}GV seen at {P}IN Hospital."),
}
_ROLE_RE = re.compile(re.escape(PLACEHOLDER) + r"([A-Z]{2})")
PRIVATE_GROUP = 0x0011
PRIVATE_CREATOR = "QZ ROBUST 1"


def roles_in(text: str) -> set[str]:
    return set(_ROLE_RE.findall(text))


@dataclass
class Planted:
    roles: set[str] = field(default_factory=set)
    uids: int = 0


def _uid_tags() -> frozenset[int]:
    from medveil.policy import load_table

    return frozenset(int(rule.tag, 16) for rule in load_table().rules
                     if "x" not in rule.tag and rule.tag != "private" and "U" in rule.basic)


def plant(ds: Dataset) -> Planted:
    """Replace *ds*'s identifiers by placeholder markers and planted UIDs (in place)."""
    planted = Planted()
    if "Modality" in ds and "Manufacturer" not in ds:
        ds.Manufacturer = "QZ DEVICES"  # Modality, Manufacturer, Institution Name: a swallow target
    for keyword, (vr, value) in HEADER_PLANTS.items():
        ds.add_new(tag_for_keyword(keyword), vr, value)
        planted.roles |= roles_in(value)
    other = Dataset()
    other.PatientID = f"{P}SQ-4713"
    other.IssuerOfPatientID = "QZ ISSUER"
    ds.OtherPatientIDsSequence = Sequence([other])
    request = Dataset()
    request.RequestedProcedureID = f"{P}RQ47"
    request.RequestedProcedureDescription = f"for {P}NA"
    ds.RequestAttributesSequence = Sequence([request])
    planted.roles |= {"SQ", "RQ"}
    block = ds.private_block(PRIVATE_GROUP, PRIVATE_CREATOR, create=True)
    block.add_new(0x10, "LO", f"{P}PR")
    inner = Dataset()
    inner.PatientName = f"{P}PS^Private"
    block.add_new(0x11, "SQ", Sequence([inner]))
    planted.roles |= {"PR", "PS"}
    if str(ds.get("SOPClassUID", "")).startswith(SR_CLASS_PREFIX):
        planted.roles |= _plant_sr(ds)
    reference = Dataset()
    reference.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    reference.ReferencedSOPInstanceUID = "1.2.3.4.5.6.7.8.9.0"  # replaced below like every U attribute
    if "ReferencedImageSequence" not in ds:
        ds.ReferencedImageSequence = Sequence([reference])
    planted.uids = _plant_uids(ds)
    return planted


def sr_content_items() -> list[Dataset]:
    """A TEXT, a PNAME, a DATETIME and an IMAGE content item (the issue's SR reproduction)."""
    def item(value_type: str, meaning: str) -> Dataset:
        ds = Dataset()
        ds.RelationshipType = "CONTAINS"
        ds.ValueType = value_type
        code = Dataset()
        code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = "121071", "DCM", meaning
        ds.ConceptNameCodeSequence = Sequence([code])
        return ds

    text = item("TEXT", "Finding")
    text.TextValue = f"Findings for {P}NA {P}GV, MRN {ID}."
    pname = item("PNAME", "Person Observer Name")
    pname.PersonName = f"{P}OB^Observer"
    when = item("DATETIME", "Observation DateTime")
    when.DateTime = "20010213184746"
    image = item("IMAGE", "Image")
    ref = Dataset()
    ref.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
    ref.ReferencedSOPInstanceUID = "1.2.3.4.5.6.7.8.9.1"
    image.ReferencedSOPSequence = Sequence([ref])
    return [text, pname, when, image]


def _plant_sr(ds: Dataset) -> set[str]:
    content = list(ds.get("ContentSequence", []))
    ds.ContentSequence = Sequence(sr_content_items() + content)
    for observer in ds.get("VerifyingObserverSequence", []):
        observer.VerifyingObserverName = f"{P}VO^Verifier"
    roles = {"NA", "GV", "ID", "OB"}
    if "VerifyingObserverSequence" in ds:
        roles.add("VO")
    return roles


def _plant_uids(ds: Dataset) -> int:
    tags = _uid_tags()
    mapping: dict[str, str] = {}

    def new(old: str) -> str:
        if old not in mapping:
            mapping[old] = f"{UID_PLACEHOLDER}{10 + len(mapping)}"
        return mapping[old]

    def visit(dataset: Dataset) -> None:
        for elem in dataset:
            if elem.VR == "SQ":
                for item in elem.value:
                    visit(item)
            elif elem.tag in tags and elem.VR == "UI" and elem.value:
                if isinstance(elem.value, (list, tuple)) or getattr(elem, "VM", 1) > 1:
                    elem.value = [new(str(v)) for v in elem.value]
                else:
                    elem.value = new(str(elem.value))

    visit(ds)
    meta = getattr(ds, "file_meta", None)
    if meta is not None and "SOPInstanceUID" in ds:
        meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return len(mapping)


# -- sources -----------------------------------------------------------------------------------------


@dataclass
class Base:
    """A source file, planted, encoded once as a tree (explicit VR, its own byte order)."""

    name: str
    syntax: UID  # the transfer syntax the source declared
    implicit: bool  # how the source's dataset was encoded
    little: bool
    deflated: bool
    compressed: bool
    meta: FileMetaDataset
    elements: list[Element]
    roles: frozenset[str]
    uids: int
    sop_class: str
    size: int

    @property
    def is_sr(self) -> bool:
        return self.sop_class.startswith(SR_CLASS_PREFIX)

    def tree(self) -> list[Element]:
        return copy_tree(self.elements)

    def body(self, elements: list[Element] | None = None, *, implicit: bool | None = None,
             lengths: str = "keep") -> tuple[bytes, list[Span]]:
        """The dataset encoded as the source was (or implicit VR when *implicit*)."""
        return encode(self.elements if elements is None else elements,
                      self.implicit if implicit is None else implicit, self.little, lengths)

    def meta_bytes(self, syntax: str | None, index: int) -> bytes:
        meta = FileMetaDataset()
        for elem in self.meta:
            meta.add(elem)
        if syntax is None:
            del meta.TransferSyntaxUID
        else:
            meta.TransferSyntaxUID = syntax
        fp = DicomBytesIO()
        fp.is_little_endian, fp.is_implicit_VR = True, False
        write_file_meta_info(fp, meta, enforce_standard=False)
        return personalise(fp.getvalue(), index)

    def assemble(self, body: bytes, index: int, *, syntax: str | None | bool = True,
                 deflate: bool | None = None, preamble: bytes | None = bytes(128)) -> bytes:
        """A whole file: preamble, DICM, meta declaring *syntax* (True: the source's), the body.

        *body* is personalised, then deflated when *deflate* (default: the source was).
        """
        declared = self.syntax if syntax is True else syntax
        body = personalise(body, index)
        if self.deflated if deflate is None else deflate:
            body = deflate_bytes(body)
        head = b"" if preamble is None else preamble + b"DICM" + self.meta_bytes(declared, index)
        return head + body


def deflate_bytes(data: bytes) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    return packer.compress(data) + packer.flush()


def corpus_dirs() -> dict[str, Path]:
    from medveil.synth.corpus import installed_corpora

    return installed_corpora()


def source_paths(max_bytes: int = 1 << 20, corpora: dict[str, Path] | None = None) -> list[tuple[str, Path]]:
    """Candidate source files (name, path), sorted: every *.dcm of the corpora up to *max_bytes*."""
    found = []
    for corpus, root in sorted((corpora or corpus_dirs()).items()):
        for path in sorted(root.rglob("*.dcm")):
            if path.is_file() and path.stat().st_size <= max_bytes:
                found.append((f"{corpus}/{path.relative_to(root)}", path))
    return found


def prepare_base(name: str, path: Path) -> Base | None:
    """Plant and encode one source, or None when it is no good as a source."""
    from medveil.quiet import silenced

    try:
        with silenced():
            ds = pydicom.dcmread(path)
            if "SOPInstanceUID" not in ds or "SOPClassUID" not in ds or "StudyInstanceUID" not in ds:
                return None
            if str(ds.SOPClassUID) == "1.2.840.10008.1.3.10":
                return None
            meta = getattr(ds, "file_meta", None) or FileMetaDataset()
            syntax = UID(str(meta.get("TransferSyntaxUID", ImplicitVRLittleEndian)))
            if not syntax.is_transfer_syntax:
                syntax = ExplicitVRLittleEndian
            implicit, little = ds.original_encoding
            if implicit is None:
                implicit, little = syntax.is_implicit_VR, syntax.is_little_endian
            ds.decode()
            planted = plant(ds)
            meta.MediaStorageSOPClassUID = ds.SOPClassUID
            meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            meta.TransferSyntaxUID = syntax
            fp = DicomBytesIO()
            fp.is_little_endian, fp.is_implicit_VR = little, False
            write_dataset(fp, ds)
            elements = parse(fp.getvalue(), False, little)
    except Exception:
        return None
    return Base(name=name, syntax=syntax, implicit=bool(implicit), little=bool(little),
                deflated=syntax == DeflatedExplicitVRLittleEndian,
                compressed=syntax.is_compressed and syntax != DeflatedExplicitVRLittleEndian,
                meta=meta, elements=elements, roles=frozenset(planted.roles), uids=planted.uids,
                sop_class=str(ds.SOPClassUID), size=path.stat().st_size)


def load_bases(max_bytes: int = 1 << 20, names: Iterable[str] | None = None,
               corpora: dict[str, Path] | None = None) -> list[Base]:
    """The usable sources, in a fixed order; *names* (``corpus/relpath`` or file names) selects some."""
    wanted = set(names) if names is not None else None
    bases = []
    for name, path in source_paths(max_bytes, corpora):
        if wanted is not None and name not in wanted and path.name not in wanted:
            continue
        base = prepare_base(name, path)
        if base is not None:
            bases.append(base)
    return bases


# -- mutants -----------------------------------------------------------------------------------------


class NotApplicable(Exception):
    """This mutation cannot be made from this source; another source is tried."""


@dataclass
class Mutant:
    index: int
    cls: str
    subtype: str
    base: str
    data: bytes = field(repr=False)
    roles: frozenset[str] = frozenset()
    uids: int = 0
    #: Whether the file is meant to fit (no byte past the end): cut files and junk are not.
    note: str = ""

    @property
    def markers(self) -> list[str]:
        return sorted(marker(self.index, role) for role in self.roles)

    @property
    def planted_uids(self) -> list[str]:
        return [planted_uid(self.index, 10 + n) for n in range(self.uids)]

    def manifest(self) -> dict:
        return {"index": self.index, "class": self.cls, "subtype": self.subtype, "base": self.base,
                "size": len(self.data), "roles": sorted(self.roles), "uids": self.uids}


def _leaves(spans: list[Span]) -> list[Span]:
    return [s for s in spans if isinstance(s.node, Element) and s.node.items is None
            and s.node.fragments is None and s.node.tag != PIXEL_DATA]


def _siblings_after(span: Span, spans: list[Span]) -> list[Span]:
    """Spans of the elements after *span* in the same dataset, in order."""
    parent = span.parent
    position = span.path[-1]
    return [s for s in spans if s.parent is parent and isinstance(s.node, Element) and s.path[-1] > position
            and s.path[:-1] == span.path[:-1]]


def _has_marker(data: bytes, begin: int, end: int) -> bool:
    return data.find(PLACEHOLDER.encode(), begin, end) >= 0


def m_control(rng: random.Random, base: Base, index: int) -> Mutant:
    lengths = rng.choice(["keep", "defined", "undefined"] if not base.compressed else ["keep"])
    body, _ = base.body(lengths=lengths)
    return _mutant(base, index, "control", f"lengths-{lengths}", base.assemble(body, index))


def m_length_extend(rng: random.Random, base: Base, index: int) -> Mutant:
    """A defined length extended over the following elements (or items): the file still fits."""
    lengths = rng.choice(["defined", "defined", "undefined", "keep"])
    body, spans = base.body(lengths=lengths)
    data = bytearray(body)
    mode = rng.choice(["siblings", "siblings", "items", "items-inconsistent", "unaligned"])
    if base.is_sr and rng.random() < 0.4:
        mode = rng.choice(["items", "items-inconsistent"])
    leaves = _leaves(spans)
    if mode in ("items", "items-inconsistent"):
        nested = [s for s in leaves if s.depth > 0]
        if base.is_sr and rng.random() < 0.6:
            nested = [s for s in nested if s.node.tag == 0x0040A160] or nested  # TextValue
        rng.shuffle(nested)
        for span in nested:
            if _extend_over_items(data, span, spans, base.little, fix_item=(mode == "items")):
                return _mutant(base, index, "length-extend", f"{mode}-{lengths}",
                               base.assemble(bytes(data), index, syntax=_native_syntax(base)))
        mode = "siblings"
    if mode == "unaligned":
        span = rng.choice(leaves)
        room = len(data) - span.value_start
        limit = 0xFFFF if span.length_size == 2 else room
        if room <= 2:
            raise NotApplicable
        set_length(data, span, rng.randrange(2, min(room, limit) + 1) & ~1 or 2, base.little)
        return _mutant(base, index, "length-extend", f"unaligned-{lengths}",
                       base.assemble(bytes(data), index, syntax=_native_syntax(base)))
    candidates = []
    for span in leaves:
        after = _siblings_after(span, spans)
        if after:
            weight = 4 if _has_marker(body, after[0].start, after[min(len(after), 4) - 1].end) else 1
            candidates.extend([(span, after)] * weight)
    if not candidates:
        raise NotApplicable
    span, after = rng.choice(candidates)
    if rng.random() < 0.3 and span.depth == 0:
        # the case (b): Modality over Manufacturer and Institution Name
        modality = next((s for s in leaves if s.node.tag == 0x00080060 and s.depth == 0), None)
        if modality is not None and _siblings_after(modality, spans):
            span, after = modality, _siblings_after(modality, spans)
    count = rng.randint(1, min(4, len(after)))
    while count > 1 and after[count - 1].end - span.value_start > (0xFFFF if span.length_size == 2 else 1 << 31):
        count -= 1
    new_length = after[count - 1].end - span.value_start
    if span.length_size == 2 and new_length > 0xFFFF:
        raise NotApplicable
    set_length(data, span, new_length, base.little)
    where = "top" if span.depth == 0 else "nested"
    return _mutant(base, index, "length-extend", f"siblings-{where}-{count}-{lengths}",
                   base.assemble(bytes(data), index, syntax=_native_syntax(base)))


def _extend_over_items(data: bytearray, span: Span, spans: list[Span], little: bool, fix_item: bool) -> bool:
    """Extend a value in item i of a sequence over the rest of the sequence's items."""
    item_span = next((s for s in spans if s.node is not None and isinstance(s.node, Item)
                      and s.path == span.path[:-1]), None)
    if item_span is None:
        return False
    sequence_items = [s for s in spans if isinstance(s.node, Item) and s.parent is item_span.parent]
    last = sequence_items[-1]
    if last is item_span:
        return False
    new_length = last.value_end - span.value_start
    if span.length_size == 2 and new_length > 0xFFFF:
        return False
    undefined = last.end != last.value_end
    item_undefined = item_span.end != item_span.value_end
    if undefined != item_undefined:
        return False
    set_length(data, span, new_length, little)
    if fix_item and not item_undefined:
        set_length(data, item_span, last.value_end - item_span.value_start, little)
    return True


def _native_syntax(base: Base) -> UID:
    """What to declare for a body encoded explicit VR as the source's tree is."""
    if base.compressed or base.deflated:
        return base.syntax
    return ExplicitVRLittleEndian if base.little else ExplicitVRBigEndian


def _explicit_body(base: Base, elements=None, lengths="keep") -> tuple[bytes, list[Span]]:
    return encode(base.elements if elements is None else elements, False, base.little, lengths)


def m_truncate(rng: random.Random, base: Base, index: int) -> Mutant:
    body, spans = base.body()
    whole = base.assemble(body, index)
    head = len(whole) - len(personalise(body, index)) if not base.deflated else None
    choice = rng.choice(["anywhere", "boundary", "boundary", "meta", "tail", "value"])
    if choice == "boundary" and head is not None:
        cut = head + rng.choice([s.start for s in spans if s.depth == 0] or [0])
    elif choice == "meta" and head is not None:
        cut = rng.randrange(128, head)
    elif choice == "tail":
        cut = len(whole) - rng.randrange(1, 17)
    elif choice == "value" and head is not None:
        span = rng.choice([s for s in spans if s.value_end > s.value_start + 1] or spans)
        cut = head + rng.randrange(span.value_start, max(span.value_start + 1, span.value_end))
    else:
        choice = "anywhere"
        cut = rng.randrange(1, len(whole))
    return _mutant(base, index, "truncate", choice, whole[:max(cut, 1)])


def m_bitflip(rng: random.Random, base: Base, index: int) -> Mutant:
    body, spans = base.body()
    whole = bytearray(base.assemble(body, index))
    head = len(whole) - len(personalise(body, index)) if not base.deflated else None
    flips = rng.randint(1, 4)
    where = "meta" if head is None or rng.random() < 0.2 else "element-header"
    for _ in range(flips):
        if where == "meta":
            stop = head if head is not None else min(len(whole), 400)
            position = rng.randrange(128, stop)
        else:
            span = rng.choice(spans)
            position = head + rng.randrange(span.start, max(span.start + 1, span.value_start))
        whole[position] ^= 1 << rng.randrange(8)
    return _mutant(base, index, "bitflip", f"{where}-{flips}" + ("-deflated" if base.deflated else ""),
                   bytes(whole))


_SWAP_VRS = [b"LO", b"SH", b"LT", b"IS", b"UN", b"UT", b"ST", b"CS", b"DA", b"UC", b"OB"]


def m_vr_swap(rng: random.Random, base: Base, index: int) -> Mutant:
    """A value under the wrong VR: Patient's Name as LO, SH, LT, IS or UN, a sequence as UN..."""
    if base.deflated:
        raise NotApplicable
    tree = base.tree()
    nodes = list(walk(tree))
    names = [e for e, _, _ in nodes if e.vr == b"PN" and PLACEHOLDER.encode() in e.value]
    texts = [e for e, _, _ in nodes if e.items is None and e.vr in (b"LO", b"SH", b"LT")
             and PLACEHOLDER.encode() in e.value]
    sequences = [e for e, _, _ in nodes if e.items is not None and e.vr == b"SQ"]
    roll = rng.random()
    if roll < 0.6 and names:
        target = rng.choice(names)
        # Patient's Name most often: the item 8.
        patient = next((e for e in names if e.tag == 0x00100010), None)
        if patient is not None and rng.random() < 0.5:
            target = patient
        target.vr = rng.choice(_SWAP_VRS)
        subtype = f"PN->{target.vr.decode()}"
    elif roll < 0.8 and sequences:
        target = rng.choice(sequences)
        target.vr, target.undefined = b"UN", True
        for item in target.items:
            item.undefined = rng.random() < 0.5
        subtype = "SQ->UN"
    elif texts:
        target = rng.choice(texts)
        target.vr = rng.choice([b"UN", b"PN", b"UT", b"OB", b"US"])
        subtype = f"text->{target.vr.decode()}"
    else:
        raise NotApplicable
    if target.vr not in (b"UN", b"UT", b"OB", b"UC") and len(target.value) > 0xFFFF:
        raise NotApplicable
    body, _ = _explicit_body(base, tree)
    return _mutant(base, index, "vr-swap", subtype, base.assemble(body, index, syntax=_native_syntax(base)))


def m_wrong_syntax(rng: random.Random, base: Base, index: int) -> Mutant:
    """The meta group declares a transfer syntax the dataset was not encoded in."""
    options = ["unknown-uid", "garbage-uid", "missing", "deflate-declared-plain", "no-meta"]
    if not base.compressed:
        options += ["implicit-as-explicit", "explicit-as-implicit", "byte-order", "native-as-jpeg",
                    "native-as-j2k", "native-as-rle"]
    else:
        options += ["encapsulated-as-native"]
    if base.deflated:
        options += ["deflated-as-explicit"]
    choice = rng.choice(options)
    body_explicit, _ = _explicit_body(base)
    deflate = None
    if choice == "implicit-as-explicit":
        body, _ = encode(base.elements, True, base.little)
        declared = ExplicitVRLittleEndian if base.little else ExplicitVRBigEndian
        deflate = False
    elif choice == "explicit-as-implicit":
        body, declared, deflate = body_explicit, ImplicitVRLittleEndian, False
    elif choice == "byte-order":
        body, deflate = body_explicit, False
        declared = ExplicitVRBigEndian if base.little else ExplicitVRLittleEndian
    elif choice == "native-as-jpeg":
        body, declared, deflate = body_explicit, JPEGBaseline8Bit, False
    elif choice == "native-as-j2k":
        body, declared, deflate = body_explicit, JPEG2000Lossless, False
    elif choice == "native-as-rle":
        body, declared, deflate = body_explicit, RLELossless, False
    elif choice == "encapsulated-as-native":
        body, declared = body_explicit, ExplicitVRLittleEndian
    elif choice == "deflated-as-explicit":
        body, declared, deflate = body_explicit, ExplicitVRLittleEndian, True
    elif choice == "deflate-declared-plain":
        body, declared, deflate = body_explicit, DeflatedExplicitVRLittleEndian, False
    elif choice == "unknown-uid":
        body, declared = body_explicit, "1.2.3.4.5.6.7.8"
    elif choice == "garbage-uid":
        body, declared = body_explicit, "not a UID at all"
    elif choice == "missing":
        body, declared = body_explicit, None
    else:  # no meta group, no preamble: a raw dataset whose encoding must be guessed
        body = body_explicit
        return _mutant(base, index, "wrong-syntax", choice,
                       base.assemble(body, index, preamble=None, deflate=False))
    return _mutant(base, index, "wrong-syntax", choice,
                   base.assemble(body, index, syntax=declared, deflate=deflate))


_PIXEL_MODULE = {0x00280002, 0x00280004, 0x00280006, 0x00280008, 0x00280010, 0x00280011, 0x00280100,
                 0x00280101, 0x00280102, 0x00280103, PIXEL_DATA}


def _us(value: int, little: bool) -> bytes:
    return struct.pack("<H" if little else ">H", value)


def _text(value: str) -> bytes:
    data = value.encode("ascii")
    return data + b" " if len(data) % 2 else data


def _set(tree: list[Element], tag: int, vr: bytes, value: bytes) -> None:
    """Set or insert a top-level element (kept in tag order)."""
    for position, element in enumerate(tree):
        if element.tag == tag:
            tree[position] = Element(tag, vr, value)
            return
        if element.tag > tag:
            tree.insert(position, Element(tag, vr, value))
            return
    tree.append(Element(tag, vr, value))


def m_huge_dims(rng: random.Random, base: Base, index: int) -> Mutant:
    """Declared image sizes far beyond the data (or zero, or nonsense)."""
    tree = base.tree()
    if not any(e.tag == PIXEL_DATA for e in tree):
        raise NotApplicable
    edits = []
    for _ in range(rng.randint(1, 3)):
        what = rng.choice(["rows", "columns", "frames", "bits", "samples", "all-huge"])
        if what in ("rows", "all-huge"):
            _set(tree, 0x00280010, b"US", _us(rng.choice([65535, 0, 40000]), base.little))
        if what in ("columns", "all-huge"):
            _set(tree, 0x00280011, b"US", _us(rng.choice([65535, 0, 40000]), base.little))
        if what in ("frames", "all-huge"):
            _set(tree, 0x00280008, b"IS", _text(rng.choice(["99999", "2147483647", "-1", "1e9", "0"])))
        if what == "bits":
            value = rng.choice([0, 1, 7, 64, 65535])
            _set(tree, 0x00280100, b"US", _us(value, base.little))
            _set(tree, 0x00280101, b"US", _us(value, base.little))
        if what == "samples":
            _set(tree, 0x00280002, b"US", _us(rng.choice([0, 3, 99]), base.little))
        edits.append(what)
    body, _ = _explicit_body(base, tree)
    name = "+".join(sorted(set(edits))) + ("-encapsulated" if base.compressed else "")
    return _mutant(base, index, "huge-dims", name, base.assemble(body, index, syntax=_native_syntax(base)))


def deflate_bomb(base: Base, index: int, inflated_bytes: int, kind: str = "pixels") -> bytes:
    """A deflated file whose dataset inflates to about *inflated_bytes* (zeros, ~1000:1).

    "pixels": native Pixel Data that matches its Rows x Columns x frames (so it is
    complete, only big); "private": a private OB value of zeros.
    """
    tree = [e for e in base.tree() if e.tag not in _PIXEL_MODULE and not (e.tag >> 16) >= 0x6000]
    columns = 4096
    if kind == "pixels":
        frames = max(1, inflated_bytes // (columns * columns))
        rows = max(1, min(65535, inflated_bytes // (columns * frames)))
        size = rows * columns * frames
        for tag, vr, value in ((0x00280002, b"US", _us(1, True)), (0x00280004, b"CS", b"MONOCHROME2 "),
                               (0x00280008, b"IS", _text(str(frames))), (0x00280010, b"US", _us(rows, True)),
                               (0x00280011, b"US", _us(columns, True)), (0x00280100, b"US", _us(8, True)),
                               (0x00280101, b"US", _us(8, True)), (0x00280102, b"US", _us(7, True)),
                               (0x00280103, b"US", _us(0, True))):
            _set(tree, tag, vr, value)
        tail_header = struct.pack("<HH2sHL", 0x7FE0, 0x0010, b"OB", 0, size)
    else:
        size = inflated_bytes & ~1
        _set(tree, 0x7FE10010, b"LO", _text("QZ BOMB"))
        tail_header = struct.pack("<HH2sHL", 0x7FE1, 0x1010, b"OB", 0, size)
    head, _ = encode(tree, False, True)
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    chunks = [packer.compress(personalise(head, index) + tail_header)]
    zeros = bytes(1 << 20)
    remaining = size
    while remaining:
        step = min(remaining, len(zeros))
        chunks.append(packer.compress(zeros[:step]))
        remaining -= step
    chunks.append(packer.flush())
    meta = base.meta_bytes(DeflatedExplicitVRLittleEndian, index)
    return bytes(128) + b"DICM" + meta + b"".join(chunks)


def m_deflate_bomb(rng: random.Random, base: Base, index: int, megabytes: int = 64) -> Mutant:
    if not base.little:
        raise NotApplicable
    kind = rng.choice(["pixels", "private"])
    data = deflate_bomb(base, index, megabytes << 20, kind)
    return _mutant(base, index, "deflate-bomb", f"{kind}-{megabytes}MB", data)


#: What a long value can be: NUL-padded names, space-padded IDs, long free text, a big private OB,
#: the dataset followed by zero bytes, a multi-valued DS of a million values, a PN of a million components.
LONG_KINDS = ("zero-padded-name", "space-padded-id", "long-text", "private-ob", "trailing-zeros",
              "many-values", "many-components")


def m_long_value(rng: random.Random, base: Base, index: int, size: int | tuple[int, str] = 4) -> Mutant:
    """A value of *size* MB (or *size* = (MB, kind) for one kind of :data:`LONG_KINDS`)."""
    if not base.little or base.compressed or base.deflated:
        raise NotApplicable  # implicit VR little endian carries any value with a 4-byte length
    tree = base.tree()
    megabytes, kind = size if isinstance(size, tuple) else (size, rng.choice(LONG_KINDS))
    size = megabytes << 20
    if kind == "trailing-zeros":  # the dataset followed by megabytes of zero bytes
        body, _ = base.body()
        return _mutant(base, index, "long-value", f"{kind}-{megabytes}MB",
                       base.assemble(body, index) + bytes(size))
    if kind == "many-values":
        _set(tree, 0x00280030, b"UN", b"1\\" * (size // 2))
    elif kind == "many-components":
        _set(tree, 0x00100010, b"UN", f"{P}NA^{P}GV".encode() + b"^A" * (size // 2))
    elif kind == "zero-padded-name":
        _set(tree, 0x00100010, b"UN", f"{P}NA^{P}GV".encode() + bytes(size))
    elif kind == "space-padded-id":
        _set(tree, 0x00100020, b"UN", b" " * size + ID.encode())
    elif kind == "long-text":
        words = (b"lorem ipsum " * (size // 12 + 1))[:size]
        _set(tree, 0x00204000, b"UT", words + f" {P}NA {P}GV".encode() + b" ")
    else:
        _set(tree, 0x00110010, b"LO", _text(PRIVATE_CREATOR))
        _set(tree, 0x00111012, b"OB", bytes(size))
    # Implicit VR: every element has a 4-byte length, whatever its VR.
    implicit = kind != "private-ob"
    if implicit:
        for element, _, _ in walk(tree):
            if element.vr == b"UN" and element.items is None:
                element.vr = None
    body, _ = encode(tree, implicit, base.little)
    syntax = ImplicitVRLittleEndian if implicit else _native_syntax(base)
    return _mutant(base, index, "long-value", f"{kind}-{megabytes}MB",
                   base.assemble(body, index, syntax=syntax, deflate=base.deflated and not implicit))


#: (declared Specific Character Set, how names and free text are encoded)
_CHARSETS = [
    ("ISO_IR 999", "latin-1"),
    ("ISO 2022 IR 87", "iso2022-jp"),
    ("\\ISO 2022 IR 87", "iso2022-jp"),
    ("GB18030", "gb18030"),
    ("ISO_IR 192", "invalid-utf8"),
    ("ISO_IR 192", "utf-8"),
    ("ISO_IR 100", "latin-1"),
    ("ISO_IR 6", "high-bytes"),
    ("ISO 2022 IR 6\\ISO 2022 IR 87\\ISO 2022 IR 159", "iso2022-jp"),
    ("", "utf-16"),
    ("ISO_IR 192", "nul-and-controls"),
    ("ISO_IR 13\\ISO 2022 IR 149", "euc-kr-escapes"),
]


def _encode_text(text: str, how: str, person_name: bool) -> bytes:
    """Encode a value holding markers in one of the odd ways.

    The odd part is added as its own name component (a middle name) or word, so
    the markers stay the tokens that free text repeats: a cleaner that knows the
    name can still find it there.
    """
    glue = "^" if person_name and text.count("^") < 2 else " "
    extra = {"iso2022-jp": "山田", "gb18030": "王", "utf-8": "Jörg", "latin-1": "Jörg"}.get(how)
    if extra is not None:
        codec = {"iso2022-jp": "iso2022_jp", "gb18030": "gb18030", "utf-8": "utf-8", "latin-1": "latin-1"}[how]
        return (text + glue + extra).encode(codec)
    if how == "utf-16":
        return "\ufeff".encode("utf-16-le") + text.encode("utf-16-le")
    junk = {"invalid-utf8": b"\xc3\x28\xff", "high-bytes": b"\xe9\x80\xfe", "nul-and-controls": b"\x00\x1b\r\n",
            "euc-kr-escapes": b"\x1b$)C\x0e\xc8\xab\x0f"}[how]
    return text.encode("ascii") + glue.encode("ascii") + junk


#: Patient ID, Other Patient IDs, Accession Number, Study ID, Requested Procedure ID: identifiers whose
#: value is a code, not words; an odd word added to them would make another identifier, not another encoding.
_ID_TAGS = frozenset({0x00100020, 0x00101000, 0x00080050, 0x00200010, 0x00401001})


def m_charset(rng: random.Random, base: Base, index: int) -> Mutant:
    declared, how = rng.choice(_CHARSETS)
    tree = base.tree()
    _set(tree, 0x00080005, b"CS", declared.encode("ascii") + (b" " if len(declared) % 2 else b""))
    changed = 0
    for element, _, _ in walk(tree):
        if element.items is None and element.vr in (b"PN", b"LO", b"LT", b"ST", b"SH", b"UT") \
                and element.tag not in _ID_TAGS and PLACEHOLDER.encode() in element.value:
            value = _encode_text(element.value.decode("ascii").rstrip(" \0"), how, element.vr == b"PN")
            if element.vr in (b"SH", b"LO", b"PN") and len(value) > 0xFFFF:
                continue
            element.value = value + (b" " if len(value) % 2 else b"")
            changed += 1
    if not changed:
        raise NotApplicable
    body, _ = _explicit_body(base, tree)
    return _mutant(base, index, "charset", f"{declared or 'none'}:{how}",
                   base.assemble(body, index, syntax=_native_syntax(base)))


#: Nesting depths drawn by the deep-nesting class.  The test suite keeps to the first three: on
#: today's main a big-endian source nested about 300 deep makes the writer's error messages grow
#: without bound (minutes, gigabytes), which the benchmark measures under its memory limit.
DEPTHS = (8, 32, 100, 300, 1000)


def m_deep_nesting(rng: random.Random, base: Base, index: int) -> Mutant:
    depth = rng.choice(DEPTHS)
    kind = rng.choice(["content", "private", "referenced"])
    tag = {"content": 0x0040A730, "private": 0x00111013, "referenced": 0x00081140}[kind]
    leaf = [Element(0x00080018 if kind != "content" else 0x0040A124, b"UI",
                    _text(f"{UID_PLACEHOLDER}99")),
            Element(0x00100010, b"PN", _text(f"{P}DN^Deep"))]
    undefined = rng.random() < 0.5
    node = Element(tag, b"SQ", items=[Item(leaf, undefined)], undefined=undefined)
    for _ in range(depth - 1):
        node = Element(tag, b"SQ", items=[Item([node], undefined)], undefined=undefined)
    tree = base.tree()
    if kind == "private":
        _set(tree, 0x00110010, b"LO", _text(PRIVATE_CREATOR))
    tree = [e for e in tree if e.tag != tag]
    position = next((i for i, e in enumerate(tree) if e.tag > tag), len(tree))
    tree.insert(position, node)
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 20 * depth + 1000))
    try:
        body, _ = _explicit_body(base, tree)
    finally:
        sys.setrecursionlimit(limit)
    return _mutant(base, index, "deep-nesting", f"{kind}-{depth}-{'undefined' if undefined else 'defined'}",
                   base.assemble(body, index, syntax=_native_syntax(base)),
                   extra_roles={"DN"}, extra_uids=90)


def m_duplicate(rng: random.Random, base: Base, index: int) -> Mutant:
    tree = base.tree()
    kind = rng.choice(["adjacent", "at-end", "swapped", "in-item"])
    planted = [i for i, e in enumerate(tree) if e.items is None and PLACEHOLDER.encode() in e.value]
    if not planted:
        raise NotApplicable
    position = rng.choice(planted)
    original = tree[position]
    copy = Element(original.tag, original.vr, _text(f"{P}DU^Dup") if original.vr == b"PN" else _text(f"{P}DU"))
    if kind == "adjacent":
        tree.insert(position + 1, copy)
    elif kind == "at-end":
        tree.append(copy)
    elif kind == "swapped":
        if position + 1 >= len(tree):
            raise NotApplicable
        tree[position], tree[position + 1] = tree[position + 1], tree[position]
        copy = None
    else:
        sequences = [e for e, _, _ in walk(tree) if e.items]
        if not sequences:
            raise NotApplicable
        item = rng.choice(sequences).items[0]
        item.elements.insert(0, Element(0x00100010, b"PN", _text(f"{P}DU^Dup")))
        item.elements.append(Element(0x00100010, b"PN", _text(f"{P}DU^Dup")))
    body, _ = _explicit_body(base, tree, lengths=rng.choice(["keep", "defined"]))
    return _mutant(base, index, "duplicate", kind, base.assemble(body, index, syntax=_native_syntax(base)),
                   extra_roles={"DU"} if kind != "swapped" else set())


def m_undefined_length(rng: random.Random, base: Base, index: int) -> Mutant:
    kind = rng.choice(["missing-seq-end", "missing-item-end", "item-end-with-length", "stray-seq-end",
                       "name-as-undefined-un", "undefined-item-in-defined-seq", "empty-undefined",
                       "stray-item-at-top"])
    tree = base.tree()
    little = base.little
    order = "<" if little else ">"
    if kind == "name-as-undefined-un":
        inner = Element(0x00100010, None, _text(f"{P}NA^{P}GV"))
        _set(tree, 0x00100010, b"UN", b"")
        position = next(i for i, e in enumerate(tree) if e.tag == 0x00100010)
        tree[position] = Element(0x00100010, b"UN", items=[Item([inner], True)], undefined=True)
        body, _ = _explicit_body(base, tree)
    elif kind == "undefined-item-in-defined-seq":
        sequences = [e for e, _, _ in walk(tree) if e.items]
        for element in sequences:
            element.undefined = False
            for item in element.items:
                item.undefined = True
        body, _ = _explicit_body(base, tree)
    elif kind == "empty-undefined":
        _set(tree, 0x00081140, b"SQ", b"")
        position = next(i for i, e in enumerate(tree) if e.tag == 0x00081140)
        tree[position] = Element(0x00081140, b"SQ", items=[Item([], True), Item([], False)], undefined=True)
        body, _ = _explicit_body(base, tree)
    elif kind == "stray-item-at-top":
        body, spans = _explicit_body(base, tree, lengths="undefined")
        top = [s for s in spans if s.depth == 0]
        cut = rng.choice(top).start
        body = body[:cut] + struct.pack(order + "HHL", 0xFFFE, 0xE000, 0) + body[cut:]
    else:
        body, spans = _explicit_body(base, tree, lengths="undefined")
        sequences = [s for s in spans if isinstance(s.node, Element) and s.node.items and s.depth == 0]
        items = [s for s in spans if isinstance(s.node, Item) and s.depth >= 1]
        if not sequences or not items:
            raise NotApplicable
        if kind == "missing-seq-end":
            span = rng.choice(sequences)
            body = body[:span.value_end] + body[span.value_end + 8:]
        elif kind == "missing-item-end":
            span = rng.choice(items)
            body = body[:span.value_end] + body[span.value_end + 8:]
        elif kind == "item-end-with-length":
            span = rng.choice(items)
            body = body[:span.value_end + 4] + struct.pack(order + "L", rng.choice([2, 8, 0xFFFF])) \
                + body[span.value_end + 8:]
        else:  # stray-seq-end inside an item
            span = rng.choice(items)
            body = body[:span.value_start] + struct.pack(order + "HHL", 0xFFFE, 0xE0DD, 0) + body[span.value_start:]
    return _mutant(base, index, "undefined-length", kind, base.assemble(body, index, syntax=_native_syntax(base)))


def m_junk(rng: random.Random, base: Base, index: int) -> Mutant:
    kind = rng.choice(["random", "text", "dicm-then-random", "png", "zip", "empty", "preamble-only",
                       "raw-group-0008-junk"])
    size = rng.randint(1, 64 * 1024)
    noise = rng.randbytes(size)
    if kind == "random":
        data = noise
    elif kind == "text":
        data = personalise(f"Patient {P}NA {P}GV, MRN {ID}\n".encode() * rng.randint(1, 50), index)
    elif kind == "dicm-then-random":
        data = bytes(128) + b"DICM" + noise
    elif kind == "png":
        data = b"\x89PNG\r\n\x1a\n" + noise
    elif kind == "zip":
        buffer = io.BytesIO()
        import zipfile

        body, _ = base.body()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("image.dcm", base.assemble(body, index))
        data = buffer.getvalue()
    elif kind == "empty":
        data = b""
    elif kind == "preamble-only":
        data = bytes(128) + b"DICM"
    else:
        data = struct.pack("<HH2sH", 0x0008, 0x0005, b"CS", 10) + b"ISO_IR 100" + noise
    return _mutant(base, index, "junk", kind, data, roles=frozenset({"NA", "GV", "ID"}), uids=0)


def _mutant(base: Base, index: int, cls: str, subtype: str, data: bytes, *, roles=None, uids=None,
            extra_roles=(), extra_uids: int | None = None) -> Mutant:
    roles = frozenset(base.roles if roles is None else roles) | frozenset(extra_roles)
    count = base.uids if uids is None else uids
    if extra_uids is not None:
        count = max(count, extra_uids)
    return Mutant(index=index, cls=cls, subtype=subtype, base=base.name, data=data, roles=roles, uids=count)


#: Mutation classes and their shares of the generated mutants (bombs and long values are counted apart).
CLASSES: dict[str, tuple] = {
    "control": (m_control, 4),
    "length-extend": (m_length_extend, 14),
    "truncate": (m_truncate, 8),
    "bitflip": (m_bitflip, 10),
    "vr-swap": (m_vr_swap, 9),
    "wrong-syntax": (m_wrong_syntax, 8),
    "huge-dims": (m_huge_dims, 5),
    "charset": (m_charset, 8),
    "deep-nesting": (m_deep_nesting, 5),
    "duplicate": (m_duplicate, 7),
    "undefined-length": (m_undefined_length, 8),
    "junk": (m_junk, 4),
}
SIZED_CLASSES = {"deflate-bomb": m_deflate_bomb, "long-value": m_long_value}


def make_mutant(bases: list[Base], index: int, cls: str, seed: int, megabytes: int | None = None) -> Mutant:
    """Mutant *index* of class *cls*: the same seed, index and sources always give the same bytes."""
    rng = random.Random(f"medveil-robustness:{seed}:{index}:{cls}")
    function = SIZED_CLASSES.get(cls) or CLASSES[cls][0]
    for _ in range(40):
        base = rng.choice(bases)
        try:
            if cls in SIZED_CLASSES:
                return function(rng, base, index, megabytes)
            return function(rng, base, index)
        except NotApplicable:
            continue
        except RecursionError:
            continue
    raise RuntimeError(f"no source suits mutation class {cls}")


def schedule(count: int, seed: int, *, bombs: Iterable[int] = (), long_values: Iterable[int | tuple] = (),
             classes: Iterable[str] | None = None) -> list[tuple[int, str, int | None]]:
    """(index, class, megabytes) for *count* mutants: sized ones first, then the weighted classes."""
    plan: list[tuple[int, str, int | None]] = []
    for megabytes in bombs:
        plan.append((len(plan), "deflate-bomb", megabytes))
    for megabytes in long_values:
        plan.append((len(plan), "long-value", megabytes))
    names = list(classes or CLASSES)
    weights = [CLASSES[name][1] for name in names]
    rng = random.Random(f"medveil-robustness-schedule:{seed}")
    # Deterministic proportional allocation (largest remainder), then a seeded shuffle.
    remaining = max(0, count - len(plan))
    shares = [remaining * w / sum(weights) for w in weights]
    counts = [int(s) for s in shares]
    behind = sorted(range(len(names)), key=lambda i: shares[i] - counts[i], reverse=True)
    for position in behind[:remaining - sum(counts)]:
        counts[position] += 1
    drawn = [name for name, n in zip(names, counts, strict=True) for _ in range(n)]
    rng.shuffle(drawn)
    first = len(plan)
    plan.extend((first + i, name, None) for i, name in enumerate(drawn))
    return plan


def generate(bases: list[Base], plan: list[tuple[int, str, int | None]], seed: int) -> Iterator[Mutant]:
    for index, cls, megabytes in plan:
        yield make_mutant(bases, index, cls, seed, megabytes)


# -- finding what leaked -------------------------------------------------------------------------------


@dataclass
class Found:
    """Planted identifiers found in one released file."""

    markers: set[str] = field(default_factory=set)  # as found (a prefix, when cut)
    uids: set[str] = field(default_factory=set)
    where: set[str] = field(default_factory=set)  # "raw", "utf-16", "inflated", attribute keywords
    rereads: bool = True
    reread_error: str | None = None

    @property
    def leaked(self) -> bool:
        return bool(self.markers or self.uids)

    def mutants(self) -> set[int]:
        """The mutant numbers the found identifiers belong to (when the number survived)."""
        numbers = set()
        for text in self.markers:
            value = number(text[len(MARKER_PREFIX):len(MARKER_PREFIX) + 6])
            if value is not None:
                numbers.add(value)
        for uid in self.uids:
            digits = uid[len(UID_ROOT):len(UID_ROOT) + 6]
            if len(digits) == 6 and digits.isdigit():
                numbers.add(int(digits) - 100000)
        return numbers


def scan_bytes(data: bytes, found: Found, where: str) -> None:
    for match in MARKER_RE.finditer(data):
        found.markers.add(match.group(0).decode("ascii").upper())
        found.where.add(where)
    if MARKER_UTF16_RE.search(data):
        found.markers.add(MARKER_PREFIX + "(utf-16)")
        found.where.add(where + "/utf-16")
    for match in UID_RE.finditer(data):
        found.uids.add(match.group(0).decode("ascii"))
        found.where.add(where)


def _inflated_body(data: bytes) -> bytes | None:
    """The dataset of a deflated file, inflated (at most 256 MB), or None."""
    if data[128:132] != b"DICM":
        return None
    offset = 132
    while offset + 8 <= len(data) and data[offset:offset + 2] == b"\x02\x00":
        vr = data[offset + 4:offset + 6]
        if vr in (b"OB", b"OW", b"UN", b"UT", b"SQ", b"UC", b"UR"):
            offset += 12 + struct.unpack_from("<L", data, offset + 8)[0]
        else:
            offset += 8 + struct.unpack_from("<H", data, offset + 6)[0]
    try:
        inflater = zlib.decompressobj(-15)
        return inflater.decompress(data[offset:], 256 << 20)
    except zlib.error:
        return None


def scan_released(path: Path) -> Found:
    """Search a released file for planted markers and UIDs: raw bytes, inflated, decoded values."""
    found = Found()
    data = path.read_bytes()
    scan_bytes(data, found, "raw")
    scan_bytes(path.name.encode("utf-8", "surrogateescape"), found, "file-name")
    try:
        ds = pydicom.dcmread(io.BytesIO(data))
        if str(ds.file_meta.get("TransferSyntaxUID", "")) == DeflatedExplicitVRLittleEndian:
            inflated = _inflated_body(data)
            if inflated is not None:
                scan_bytes(inflated, found, "inflated")
        _scan_dataset(ds.file_meta, found)
        _scan_dataset(ds, found)
    except Exception as exc:  # noqa: BLE001 - any failure to re-read is what is counted
        found.rereads = False
        found.reread_error = type(exc).__name__
    return found


def _scan_dataset(ds: Dataset, found: Found) -> None:
    for elem in ds.iterall():
        value = elem.value
        texts: list[str] = []
        if isinstance(value, (bytes, bytearray)):
            texts.append(bytes(value).decode("latin-1"))
        elif isinstance(value, (list, tuple, MultiValue)):
            texts.extend(str(v) for v in value)
        elif value is not None and elem.VR != "SQ":
            texts.append(str(value))
        for text in texts:
            upper = text.upper()
            if MARKER_PREFIX in upper or UID_ROOT in text:
                keyword = elem.keyword or f"({elem.tag.group:04X},{elem.tag.element:04X})"
                scan_bytes(text.encode("utf-8", "replace"), found, keyword)
                found.where.add(keyword)


def fields_of(mutant: Mutant) -> dict:
    return replace(mutant, data=b"").manifest()
