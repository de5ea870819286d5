"""A small DICOM element codec for building hostile inputs: bytes to a tree and back.

pydicom reads what it can and writes only well-formed data, so it cannot make
the inputs the robustness benchmark needs: a length field that swallows the
elements after it, sequences whose item lengths do not add up, duplicated
elements, VRs that do not match the dictionary.  This codec keeps every
element as it was encoded (tag, VR bytes, value bytes), nests sequence items
and encapsulated fragments, and writes the tree back with defined, undefined
or the original lengths, recording where each element landed (:class:`Span`)
so that a mutation can patch one length field afterwards.

It parses what pydicom wrote (well-formed data); it is not a validator and not
part of medveil.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from pydicom.datadict import dictionary_VR

ITEM, ITEM_END, SEQ_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
UNDEFINED = 0xFFFFFFFF
PIXEL_DATA = 0x7FE00010
LONG_VRS = frozenset({b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"UC", b"UN", b"UR", b"UT", b"SV", b"UV"})


class CodecError(ValueError):
    """The bytes are not the well-formed encoding this codec expects."""


@dataclass
class Item:
    elements: list[Element]
    undefined: bool = False


@dataclass
class Element:
    """One encoded element: a leaf value, a sequence of items, or encapsulated fragments."""

    tag: int
    vr: bytes | None  # None in implicit VR
    value: bytes = b""
    items: list[Item] | None = None
    fragments: list[bytes] | None = None
    undefined: bool = False

    @property
    def is_sequence(self) -> bool:
        return self.items is not None

    def copy(self) -> Element:
        return Element(self.tag, self.vr, self.value,
                       None if self.items is None else [Item([e.copy() for e in i.elements], i.undefined)
                                                        for i in self.items],
                       None if self.fragments is None else list(self.fragments), self.undefined)


@dataclass
class Span:
    """Where one element (or item) was written: offsets into the encoded bytes."""

    node: Element | Item
    parent: list  # the list holding node (a dataset's elements or a sequence's items)
    depth: int
    start: int  # first byte of the header
    length_at: int  # offset of the length field
    length_size: int  # 2 or 4
    value_start: int
    value_end: int  # end of the value (before any delimiter)
    end: int  # after the element, delimiter included
    #: Length fields of the enclosing defined-length items and sequences, innermost first.
    containers: tuple[tuple[int, int], ...] = ()
    #: Indices from the top: element, item, element, item, ... (see :func:`locate`).
    path: tuple = field(default_factory=tuple)

    @property
    def tag(self) -> int:
        return self.node.tag if isinstance(self.node, Element) else ITEM


def _sequence_vr(tag: int) -> bool:
    try:
        return dictionary_VR(tag) == "SQ"
    except KeyError:
        return False


class Reader:
    def __init__(self, data: bytes, implicit: bool, little: bool):
        self.data = data
        self.implicit = implicit
        self.order = "<" if little else ">"

    def _u16(self, offset: int) -> int:
        return struct.unpack_from(self.order + "H", self.data, offset)[0]

    def _u32(self, offset: int) -> int:
        return struct.unpack_from(self.order + "L", self.data, offset)[0]

    def _tag(self, offset: int) -> int:
        return self._u16(offset) << 16 | self._u16(offset + 2)

    def dataset(self, offset: int, end: int | None, until_item_end: bool = False) -> tuple[list[Element], int]:
        elements: list[Element] = []
        limit = len(self.data) if end is None else end
        while offset < limit:
            if offset + 8 > len(self.data):
                raise CodecError("cut element header")
            tag = self._tag(offset)
            if tag == ITEM_END and until_item_end:
                return elements, offset + 8
            if tag >> 16 == 0xFFFE:
                raise CodecError("delimiter where an element should be")
            element, offset = self.element(offset)
            elements.append(element)
        if until_item_end:
            raise CodecError("item never closed")
        return elements, offset

    def element(self, offset: int) -> tuple[Element, int]:
        tag = self._tag(offset)
        if self.implicit:
            vr, length, offset = None, self._u32(offset + 4), offset + 8
        else:
            vr = self.data[offset + 4:offset + 6]
            if vr in LONG_VRS:
                length, offset = self._u32(offset + 8), offset + 12
            else:
                length, offset = self._u16(offset + 6), offset + 8
        undefined = length == UNDEFINED
        if tag == PIXEL_DATA and undefined:
            fragments, offset = self._fragments(offset)
            return Element(tag, vr, fragments=fragments, undefined=True), offset
        is_seq = vr == b"SQ" or (vr is None and (_sequence_vr(tag) or undefined)) or (vr == b"UN" and undefined)
        if is_seq:
            inner = self
            if vr == b"UN":  # an undefined-length UN holds items encoded implicit VR little endian
                inner = Reader(self.data, True, True)
            items, offset = inner._items(offset, None if undefined else offset + length)
            return Element(tag, vr, items=items, undefined=undefined), offset
        if undefined:
            raise CodecError("undefined length on a value that is not a sequence")
        if offset + length > len(self.data):
            raise CodecError("value runs past the end")
        return Element(tag, vr, self.data[offset:offset + length]), offset + length

    def _items(self, offset: int, end: int | None) -> tuple[list[Item], int]:
        items: list[Item] = []
        while end is None or offset < end:
            tag, length = self._tag(offset), self._u32(offset + 4)
            offset += 8
            if tag == SEQ_END and end is None:
                return items, offset
            if tag != ITEM:
                raise CodecError("expected an item")
            if length == UNDEFINED:
                elements, offset = self.dataset(offset, None, until_item_end=True)
                items.append(Item(elements, True))
            else:
                elements, _ = self.dataset(offset, offset + length)
                offset += length
                items.append(Item(elements, False))
        return items, offset

    def _fragments(self, offset: int) -> tuple[list[bytes], int]:
        fragments = []
        while True:
            tag, length = self._tag(offset), self._u32(offset + 4)
            offset += 8
            if tag == SEQ_END:
                return fragments, offset
            if tag != ITEM:
                raise CodecError("expected a fragment")
            fragments.append(self.data[offset:offset + length])
            offset += length


def parse(data: bytes, implicit: bool, little: bool) -> list[Element]:
    """The elements of an encoded dataset (no preamble, no meta group)."""
    elements, _ = Reader(data, implicit, little).dataset(0, None)
    return elements


class Writer:
    """Encode a tree; ``lengths`` is "keep", "defined" or "undefined" for sequences and items."""

    def __init__(self, implicit: bool, little: bool, lengths: str = "keep"):
        self.implicit = implicit
        self.order = "<" if little else ">"
        self.lengths = lengths
        self.out = bytearray()
        self.spans: list[Span] = []

    def _pack(self, fmt: str, *values: int) -> bytes:
        return struct.pack(self.order + fmt, *values)

    def _undefined(self, node: Element | Item) -> bool:
        if self.lengths == "defined":
            return False
        if self.lengths == "undefined":
            return True
        return node.undefined

    def dataset(self, elements: list[Element], depth: int = 0, containers=(), path=()) -> None:
        for index, element in enumerate(elements):
            self.element(element, elements, depth, containers, path + (index,))

    def element(self, element: Element, parent: list, depth: int, containers, path) -> None:
        out = self.out
        start = len(out)
        out += self._pack("HH", element.tag >> 16, element.tag & 0xFFFF)
        implicit = self.implicit or element.vr is None
        if element.fragments is not None:
            undefined = True
        elif element.items is not None:
            undefined = self._undefined(element)
        else:
            undefined = False
        if implicit:
            length_at, size = len(out), 4
            out += b"\0\0\0\0"
        else:
            out += element.vr
            if element.vr in LONG_VRS:
                out += b"\0\0"
                length_at, size = len(out), 4
                out += b"\0\0\0\0"
            else:
                length_at, size = len(out), 2
                out += b"\0\0"
        value_start = len(out)
        span = Span(element, parent, depth, start, length_at, size, value_start, value_start,
                    value_start, containers, path)
        self.spans.append(span)
        inner = containers if undefined else ((length_at, size),) + containers
        if element.fragments is not None:
            for fragment in element.fragments:
                out += self._pack("HHL", 0xFFFE, 0xE000, len(fragment)) + fragment
        elif element.items is not None:
            # A UN holding items encodes them implicit VR little endian, whatever the dataset uses.
            sub = _Nested(self, implicit=True, little=True) if element.vr == b"UN" else self
            for index, item in enumerate(element.items):
                sub.item(item, element.items, depth + 1, inner, span.path + (index,))
        else:
            out += element.value
        span.value_end = len(out)
        length = span.value_end - value_start
        if undefined:
            out += self._pack("HHL", 0xFFFE, 0xE0DD, 0)
            length = UNDEFINED
        span.end = len(out)
        if size == 2 and length > 0xFFFF:
            raise CodecError("value too long for a 2-byte length field")
        out[length_at:length_at + size] = self._pack("H" if size == 2 else "L", length)

    def item(self, item: Item, parent: list, depth: int, containers, path) -> None:
        out = self.out
        start = len(out)
        undefined = self._undefined(item)
        out += self._pack("HH", 0xFFFE, 0xE000)
        length_at = len(out)
        out += b"\0\0\0\0"
        span = Span(item, parent, depth, start, length_at, 4, len(out), len(out), len(out), containers, path)
        self.spans.append(span)
        inner = containers if undefined else ((length_at, 4),) + containers
        self.dataset(item.elements, depth, inner, path)
        span.value_end = len(out)
        length = span.value_end - span.value_start
        if undefined:
            out += self._pack("HHL", 0xFFFE, 0xE00D, 0)
            length = UNDEFINED
        span.end = len(out)
        out[length_at:length_at + 4] = self._pack("L", length)


class _Nested(Writer):
    """Writes into its parent's buffer with another encoding (the items of an undefined-length UN)."""

    def __init__(self, parent: Writer, implicit: bool, little: bool):
        super().__init__(implicit, little, parent.lengths)
        self.out = parent.out
        self.spans = parent.spans


def encode(elements: list[Element], implicit: bool, little: bool, lengths: str = "keep") -> tuple[bytes, list[Span]]:
    """Encode *elements*; returns the bytes and where every element and item went."""
    writer = Writer(implicit, little, lengths)
    writer.dataset(elements)
    return bytes(writer.out), writer.spans


def set_length(data: bytearray, span: Span, length: int, little: bool = True) -> None:
    """Overwrite the length field of *span* in place (no container is adjusted)."""
    fmt = ("<" if little else ">") + ("H" if span.length_size == 2 else "L")
    data[span.length_at:span.length_at + span.length_size] = struct.pack(fmt, length)


def adjust_containers(data: bytearray, span: Span, delta: int, little: bool = True) -> None:
    """Add *delta* to every defined length that encloses *span* (after growing or shrinking it)."""
    order = "<" if little else ">"
    for at, size in span.containers:
        fmt = order + ("H" if size == 2 else "L")
        (old,) = struct.unpack_from(fmt, data, at)
        data[at:at + size] = struct.pack(fmt, old + delta)


def locate(elements: list[Element], path: tuple) -> Element | Item:
    """The node at an index *path* of :class:`Span` (in a copy of the tree that was encoded)."""
    node: Element | Item | None = None
    for step, index in enumerate(path):
        if step % 2 == 0:
            node = elements[index]
        else:
            node = node.items[index]
            elements = node.elements
    return node


def copy_tree(elements: list[Element]) -> list[Element]:
    return [element.copy() for element in elements]


def walk(elements: list[Element], depth: int = 0):
    """Every element of a tree with its parent list and depth, depth first."""
    for element in elements:
        yield element, elements, depth
        for item in element.items or ():
            yield from walk(item.elements, depth + 1)
