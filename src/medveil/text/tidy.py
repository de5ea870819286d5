"""Cutting PHI spans out of a text so that what is left reads as if it had never been there.

Removing "Mary Smith" and "20140321" from "CT CHEST W/O CONTRAST for Mary Smith 20140321"
leaves "CT CHEST W/O CONTRAST for  " unless the debris is swept up too.  The rules:

* **Labels go with their value.**  A label right before a removed span ("DOB", "MRN:",
  "Tel.", "Referred by", "Physician:", "Dr.", "Mr" but not the modality "MR") is removed with it: "DOB" says nothing
  once the date is gone, and a label left behind tells a reader what was there.  Labels that are
  also ordinary words ("Patient", "Date", "Location", "Hospital", "Time") go only when a colon
  or "#" joins them to the value.  A shifted date keeps its label: "DOB 03/11/1948".
* **Glue words go with a removed name or place.**  A glue word (for, by, at, per, with, from,
  to, of, on, and, or, &, via, re, w/) right before a removed name, institution or address
  belongs to it ("for Mary Smith", "per Dr. Taylor", "at St. Mary's") and is removed with it,
  even when a shifted date follows.
* **Dangling glue words go.**  Any other glue word left at the end of the text, or alone
  between two removed spans or before one at the start, is removed, and so is a leading
  "and"/"or"/"&" once what stood before it is gone: "... CONTRAST on [date]" becomes
  "... CONTRAST", "[name] and [name]" becomes "".  A glue word with kept text on both sides
  stays ("[name] with contrast" keeps "with contrast").
* **Credentials after a removed name go** ("[name], MD").
* **Separators do not dangle or double.**  Where a span was cut out, the separators on both
  sides (``, ; : ^ | / - _ ~ = #``) collapse into one, the left one preferred; none is left at
  the start or the end of the text; blanks collapse to one (a line break is kept as one).
* **Brackets stay balanced.**  "(Dr. Smith)" disappears with both parentheses; "(Dr. Smith,
  CT)" becomes "(CT)".
* A text with nothing alphanumeric left becomes "".

Text away from the removed spans is never touched, so a value with no PHI comes back
character for character.
"""

from __future__ import annotations

import re

from medveil.text.spans import Span

_SEP = r",;:^|/\\\-–—_~=#*"
_TRAIL_SEP = re.compile(r"(?:\s*[" + _SEP + r"]+)*\s*$")
_LEAD_SEP = re.compile(r"\s*(?:[" + _SEP + r"]+\s*)*")
_OPENERS = {"(": ")", "[": "]", "{": "}", "<": ">"}
_CLOSERS = frozenset(_OPENERS.values())
_TERMINATORS = frozenset(".!?")

_LABELS_ALWAYS = (
    r"d\.?o\.?b\.?|date[ \t]+of[ \t]+birth|birth[ \t]*date|born|mrn[ \t]*#?|mr[ \t]*#|mr[ \t]*no\.?"
    r"|mr[ \t]*number|med(?:ical)?[ \t]*rec(?:ord)?(?:[ \t]*(?:no\.?|number|#))?"
    r"|(?:patient|pt)[ \t]*(?:id|name|no\.?)|pid|id[ \t]*#?|id[ \t]*no\.?"
    r"|acc(?:ession)?(?:[ \t]*(?:#|no\.?|number))?|ssn|ss#|social[ \t]+security(?:[ \t]*(?:no\.?|number|#))?"
    r"|tel(?:ephone)?|phone|ph|fax|cell|mobile|pager|e-?mail|address|addr|name"
    r"|(?:electronically[ \t]+)?(?:referred|read|dictated|signed|reviewed|verified|performed"
    r"|interpreted|approved|transcribed|reported|ordered|requested|scanned|prepared|authored)[ \t]+by"
    r"|dr|miss|prof|doctor|(?-i:Mr|Mrs|Ms|MR\.|MRS\.|MS\.)"
    r"|(?:referring|ordering|requesting|attending|reading)(?:[ \t]+(?:physician|phys|doctor|md))?"
    r"|ref(?:\.|erring)?[ \t]*phys(?:ician)?|physician|radiologist|tech|technologist|technician"
    r"|operator|resident|fellow|sonographer|radiographer|nurse"
    r"|dos|date(?:[ \t]+of[ \t]+(?:service|exam|study|scan))?|(?:exam|study|scan|service|visit)[ \t]+date"
    r"|epoch|timestamp|unix[ \t]*time|age")
_LABELS_WITH_COLON = (
    r"patient|pt|subject|location|site|facility|institution|hospital|clinic|contact|cc|attn|to|from"
    r"|time|ref|reference|case|study|exam|order|visit|encounter|number|no\.?|dept|department|station"
    r"|city|state|zip")
_LABEL = re.compile(r"(?<![^\W_])(?i:(?:" + _LABELS_ALWAYS + r")[ \t]*[:#=.\-]*"
                    r"|(?:" + _LABELS_WITH_COLON + r")[ \t]*[:#][ \t]*[:#=.\-]*)[ \t]*$")
_GLUE = r"(?:for|by|at|per|with|from|to|of|on|and|or|&|via|re|w/)"
_GLUE_ONLY = re.compile(r"[\s" + _SEP + r".]*(?:(?<![^\W_])(?i:" + _GLUE + r")(?![^\W_/])[\s" + _SEP
                        + r"]*)+")
_LEADING_CONJUNCTION = re.compile(r"^[\s" + _SEP + r"]*(?i:and|or|&)(?![^\W_])[\s" + _SEP + r"]*")
#: Categories whose glue word ("for", "per", "at") is part of the phrase that names them.
_GLUED_CATEGORIES = frozenset({"name", "institution", "address", "other"})
_TRAILING_GLUE = re.compile(r"(?:(?<=\s)|^)(?i:" + _GLUE + r")[\s" + _SEP + r"]*$")
_CREDENTIALS = re.compile(r"(?:,?[ \t]*(?:M\.D\.|MD|Ph\.?D\.?|PHD|RN|MBBS|FRCR|FACR|NP|PA-C|DDS|Jr\.?|Sr\.?"
                          r"|JR\.?|SR\.?|III|II|IV)(?![\w])|,[ \t]*(?:D\.O\.|DO)(?![\w]))+")


def _has_content(piece: str) -> bool:
    return any(c.isalnum() for c in piece)


def _strip_leading(text: str) -> str:
    previous = None
    while previous != text:
        previous = text
        text = _LEAD_SEP.sub("", text, count=1).lstrip()
        while text and (text[0] in _CLOSERS or text[0] in _TERMINATORS):
            text = text[1:].lstrip()
    return text


def _strip_trailing(text: str) -> str:
    previous = None
    while previous != text:
        previous = text
        trail = _TRAIL_SEP.search(text)
        assert trail is not None  # the pattern matches the empty tail of any text
        text = text[:trail.start()].rstrip()
        while text and text[-1] in _OPENERS:
            text = text[:-1].rstrip()
    return text


def _separator(lsep: str, rsep: str, left: str, right: str) -> str:
    """The one separator that replaces *lsep* + removed span + *rsep*."""
    blanks = lsep + rsep
    space = "\n" if "\n" in blanks else (" " if any(c.isspace() for c in blanks) else "")
    lp, rp = lsep.strip(), rsep.strip()
    if lp:
        return (" " if lsep[:1].isspace() else "") + lp + space
    if rp:
        lead = " " if rp[0] not in ",;:" and (lsep or rsep[:1].isspace()) else ""
        return lead + rp + (" " if rsep[-1:].isspace() else "")
    if not space and left and right and left[-1].isalnum() and right[0].isalnum():
        return " "
    return space


def _join(left: str, right: str, last: bool) -> str:
    trail = _TRAIL_SEP.search(left)
    lead = _LEAD_SEP.match(right)
    assert trail is not None and lead is not None  # both patterns match the empty string
    cut = trail.start()
    core_left, lsep = left[:cut], left[cut:]
    cut = lead.end()
    rsep, core_right = right[:cut], right[cut:]
    if not core_left.strip():
        return _strip_leading(core_right)
    if not core_right.strip():
        if last:
            return _strip_trailing(core_left)
        return core_left + _separator(lsep, rsep, core_left, "")
    opener, first = core_left[-1], core_right[0]
    if _OPENERS.get(opener) == first:
        return _join(core_left[:-1], core_right[1:], last)
    if opener in _OPENERS or first in _CLOSERS:
        return core_left + core_right
    if first in _TERMINATORS:
        if opener in _TERMINATORS:
            core_right = core_right[1:]
        return core_left + core_right
    return core_left + _separator(lsep, rsep, core_left, core_right) + core_right


def _pieces(text: str, spans: list[Span]) -> tuple[list[str], list[str]]:
    """Kept text between removed spans (shifted spans are written into it) and the removed
    spans' categories."""
    pieces, holes = [""], []
    position = 0
    for span in spans:
        pieces[-1] += text[position:span.start]
        if span.replacement is not None:
            pieces[-1] += span.replacement
        else:
            holes.append(span.category)
            pieces.append("")
        position = span.end
    pieces[-1] += text[position:]
    return pieces, holes


def remove_spans(text: str, spans: list[Span]) -> str:
    """*text* without the removed *spans* (sorted, non-overlapping) and their debris, with
    shifted spans replaced."""
    pieces, holes = _pieces(text, spans)
    if not holes:
        return pieces[0]
    for h, category in enumerate(holes):
        while (label := _LABEL.search(pieces[h])) and label.start() < len(pieces[h]):
            pieces[h] = pieces[h][:label.start()]
        if category in _GLUED_CATEGORIES and (glue := _TRAILING_GLUE.search(pieces[h])):
            pieces[h] = pieces[h][:glue.start()]
        if category == "name" and (cred := _CREDENTIALS.match(pieces[h + 1])):
            pieces[h + 1] = pieces[h + 1][cred.end():]
    last = len(pieces) - 1
    for i, piece in enumerate(pieces):
        if _has_content(piece) and _GLUE_ONLY.fullmatch(piece):
            pieces[i] = re.sub(r"[^\s" + _SEP + "]+", "", piece.replace("&", " "))
    content = [i for i, piece in enumerate(pieces) if _has_content(piece)]
    if content and content[-1] < last:
        i = content[-1]
        while (glue := _TRAILING_GLUE.search(pieces[i])) and glue.start() < len(pieces[i]):
            pieces[i] = pieces[i][:glue.start()]
    if content and content[0] > 0:
        pieces[content[0]] = _LEADING_CONJUNCTION.sub("", pieces[content[0]], count=1)
    result = pieces[0]
    for i in range(1, len(pieces)):
        result = _join(result, pieces[i], last=i == last)
    return result if _has_content(result) else ""
