#!/usr/bin/env python3
"""Generate the person-name gazetteer and the common-word list that medveil.text ships.

The free-text cleaner recognises person names it was not told about by looking words up in a
gazetteer of first and last names.  A raw name list is full of ordinary words ("May", "Long",
"White", "Head", "Page") and of clinical ones ("Dixon", "Iris", "Ray"), which would make the
cleaner cut "AX T2 DIXON" or "X RAY CHEST" apart, so this script subtracts from the names:

* every term of the clinical allow-list (``src/medveil/text/data/clinical_terms.txt``);
* common English words: the en_US lorem word list that Faker bundles, the NLTK English
  stopwords (as copied into ``src/medveil/evaluate/data/stopwords_en.txt``), and the short
  hand-written list :data:`EXTRA_COMMON_WORDS` below (colours, months, weekdays, virtues and
  everyday nouns and verbs that are also names, gathered for medveil; surnames that are only
  rarely words, such as "Carter", "Taylor" or "King", stay names);
* names shorter than three letters ("Al", "Ed", "Li"): too often an abbreviation;
* particles of compound surnames ("del", "van", "dos"): joiners, not names.

Sources of the names: Faker's bundled person providers (``first_names`` and ``last_names``) for
the en_US, en_GB, de_DE, fr_FR and es_ES locales, read from the installed Faker package, so no
network is needed.  Accented names also get an ASCII-folded entry ("José" -> "jose"), since
DICOM text is often written without accents.

Outputs (both committed, both regenerated together):

``src/medveil/text/data/names.txt``
    ``name<TAB>kinds`` per line, lower case, ``kinds`` one of ``first``, ``last``, ``first,last``,
    or ``common,last`` for a surname that is also a common word ("brown", "long", "young"): the
    cleaner takes those only right after a first name ("Robert Brown").
``src/medveil/text/data/common_words.txt``
    the common English words above, one per line (the cleaner also uses them at run time, to
    tell "Dr. Smith Will Call" from "Dr. Smith Wilcox").

Usage: python tools/build_name_gazetteer.py [--out-dir DIR]
"""

from __future__ import annotations

import argparse
import importlib
import re
import unicodedata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "src" / "medveil" / "text" / "data"
STOPWORDS = ROOT / "src" / "medveil" / "evaluate" / "data" / "stopwords_en.txt"
LOCALES = ("en_US", "en_GB", "de_DE", "fr_FR", "es_ES")
MIN_LETTERS = 3
#: Particles of compound surnames ("de la Fuente", "van der Berg"): joiners, not names.
PARTICLES = frozenset({"de", "del", "della", "der", "den", "des", "di", "da", "das", "do", "dos", "du",
                       "la", "le", "les", "los", "las", "van", "von", "vom", "zu", "zum", "zur", "ten",
                       "ter", "mac", "mc", "bin", "ibn", "al", "el", "y", "i", "e"})

#: Ordinary English words that are also first or last names and that Faker's lorem list lacks.
EXTRA_COMMON_WORDS = """
january february march april may june july august september october november december
jan feb mar apr jun jul aug sep sept oct nov dec
monday tuesday wednesday thursday friday saturday sunday
red orange yellow green blue purple violet brown black white gray grey silver gold golden
pink rose ruby pearl amber coral ivory jade olive hazel scarlet crimson
hope faith grace joy charity patience prudence honor honour mercy constance destiny
trinity harmony melody dawn star sky rain storm summer winter autumn spring
bill will mark guy sue pat rob bob don dick ray art jack rich frank
head heart hand foot arm leg back side body bone chest neck lung long short small little
young old new bell hill wood field lane park ward well west east north south
river brook lake forest stone rock bush moss reed rush marsh fox wolf bird crow lamb bull
page case key ball wall price best glass house church day good strong major
power love bliss sharp hay more most
angel christian justice noble royal sterling gay cash colt
gene lance sandy dusty rusty penny dot
mass gross lucky ideal
"""


def _fold(word: str) -> str:
    """ASCII spelling of *word* ("josé" -> "jose"); German umlauts keep their letter."""
    return "".join(c for c in unicodedata.normalize("NFKD", word) if not unicodedata.combining(c))


def _words(name: str) -> list[str]:
    """Name words of one entry: multi-word names ("de la Fuente") give each long word."""
    return [w for w in re.split(r"[\s]+", name.strip().lower()) if w]


def _read_list(path: Path) -> set[str]:
    out: set[str] = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            out.add(line.lower())
    return out


def common_words() -> set[str]:
    lorem = importlib.import_module("faker.providers.lorem.en_US").Provider.word_list
    words = {w.lower() for w in lorem}
    words |= _read_list(STOPWORDS)
    words |= set(EXTRA_COMMON_WORDS.split())
    return words


def collect_names() -> dict[str, set[str]]:
    kinds: dict[str, set[str]] = {}
    for locale in LOCALES:
        provider = importlib.import_module(f"faker.providers.person.{locale}").Provider
        for kind, attribute in (("first", "first_names"), ("last", "last_names")):
            for entry in getattr(provider, attribute, ()):
                for word in _words(entry):
                    for form in {word, _fold(word)}:
                        kinds.setdefault(form, set()).add(kind)
    return kinds


def build(out_dir: Path) -> tuple[int, int]:
    clinical = _read_list(DATA / "clinical_terms.txt")
    common = common_words()
    names = collect_names()
    kept: dict[str, set[str]] = {}
    for word, kinds in names.items():
        letters = re.sub(r"[^\w]|_|\d", "", word)
        if len(letters) < MIN_LETTERS or not re.fullmatch(r"[^\W\d_]+(?:['’-][^\W\d_]+)*", word):
            continue
        parts = {word, *re.split(r"['’-]", word)}
        if parts & clinical or word in PARTICLES:
            continue
        if word in common:
            if "last" in kinds:  # "Brown", "Long": a surname only right after a first name
                kept[word] = {"last", "common"}
            continue
        kept[word] = kinds
    out_dir.mkdir(parents=True, exist_ok=True)
    header = ("# medveil.text person-name gazetteer, generated by tools/build_name_gazetteer.py\n"
              "# from Faker's bundled first/last names (" + ", ".join(LOCALES) + "), minus the\n"
              "# clinical allow-list and common English words.  Do not edit by hand.\n")
    lines = [f"{w}\t{','.join(sorted(k))}" for w, k in sorted(kept.items())]
    (out_dir / "names.txt").write_text(header + "\n".join(lines) + "\n", encoding="utf-8")
    common_header = ("# Common English words for medveil.text, generated by tools/build_name_gazetteer.py\n"
                     "# (Faker en_US lorem words, NLTK English stopwords, and the script's own list).\n")
    (out_dir / "common_words.txt").write_text(common_header + "\n".join(sorted(common)) + "\n",
                                              encoding="utf-8")
    return len(kept), len(common)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=DATA)
    args = parser.parse_args(argv)
    n_names, n_common = build(args.out_dir)
    print(f"wrote {n_names} names and {n_common} common words to {args.out_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
