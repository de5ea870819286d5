"""Synthetic identities: patients, staff and sites, the same for the same seed.

Faker supplies plausible names, streets and companies; every draw reseeds a
Faker instance from :func:`medveil.synth.seeds.derive`, so patient 3's name
does not depend on how many names were drawn before it.  The values are
chosen to be good test data, not just plausible: name parts are alphabetic
and at least three letters long, because the MIDI-B checks look for each
token of a removed text as a *substring* of what is left, and a two-letter
surname would be "found" inside half the clinical words of a description.
"""

from __future__ import annotations

import datetime
import functools
import re
from dataclasses import dataclass

from faker import Faker

from medveil.synth.seeds import derive, rng

#: The Person Name (PN) spellings real exports carry (PS3.5 6.2.1.1): component
#: groups, the five components, case, trailing initials, ideographic and
#: phonetic groups.  Patients cycle through them so that a set of seven or more
#: patients has every form.
PN_FORMS = (
    "FAMILY^GIVEN",
    "FAMILY^GIVEN^M",
    "FAMILY^GIVEN^MIDDLE^PREFIX^SUFFIX",
    "Family^Given^Middle",
    "FAMILY^GIVEN^^PREFIX",
    "Family^Given=IDEOGRAPHIC=PHONETIC",
    "FAMILY",
)
IDEOGRAPHIC_FORM = "Family^Given=IDEOGRAPHIC=PHONETIC"

_ALPHA = re.compile(r"[A-Za-z]{3,}")
_SITE_KINDS = ("General Hospital", "Medical Center", "Memorial Hospital", "Community Hospital",
               "University Hospital", "Regional Medical Center")
_DEPARTMENTS = ("Radiology", "Diagnostic Imaging", "Nuclear Medicine", "Neuroradiology",
                "Emergency Radiology", "Cardiac Imaging")


@functools.cache
def _faker(locale: str) -> Faker:
    return Faker(locale)


def faker(seed: int, *labels: object, locale: str = "en_US") -> Faker:
    """The shared Faker for ``locale``, reseeded for the draw named by ``labels``."""
    fake = _faker(locale)
    fake.seed_instance(derive(seed, "faker", locale, *labels))
    return fake


@dataclass(frozen=True)
class Person:
    """A person's name parts, from which every PN spelling is made."""

    family: str
    given: str
    middle: str = ""
    prefix: str = ""
    suffix: str = ""
    ideographic: str = ""  # "山田^太郎": the ideographic component group
    phonetic: str = ""  # "ヤマダ^タロウ": the phonetic component group

    def pn(self, form: str = "FAMILY^GIVEN") -> str:
        """The name as a PN value in ``form`` (one of :data:`PN_FORMS`)."""
        family, given = self.family.upper(), self.given.upper()
        if form == "FAMILY^GIVEN":
            return f"{family}^{given}"
        if form == "FAMILY^GIVEN^M":
            return f"{family}^{given}^{self.middle[:1].upper()}"
        if form == "FAMILY^GIVEN^MIDDLE^PREFIX^SUFFIX":
            return f"{family}^{given}^{self.middle.upper()}^{self.prefix.upper()}^{self.suffix.upper()}"
        if form == "Family^Given^Middle":
            return f"{self.family}^{self.given}^{self.middle}"
        if form == "FAMILY^GIVEN^^PREFIX":
            return f"{family}^{given}^^{self.prefix.upper()}"
        if form == IDEOGRAPHIC_FORM:
            alphabetic = f"{self.family}^{self.given}"
            if not self.ideographic:
                return alphabetic
            return f"{alphabetic}={self.ideographic}={self.phonetic}"
        if form == "FAMILY":
            return family
        raise ValueError(f"unknown PN form {form!r}")

    def spoken(self) -> str:
        """"Mary Smith": how a name is typed into a free-text field."""
        return f"{self.given} {self.family}"

    def tokens(self) -> tuple[str, ...]:
        return tuple(part for part in (self.family, self.given, self.middle) if part)


@dataclass(frozen=True)
class Patient:
    """One synthetic patient: everything about them a header can carry."""

    number: int
    name: Person
    name_form: str
    patient_id: str
    issuer: str
    other_ids: tuple[str, ...]
    birth_date: datetime.date
    sex: str
    address: str
    phone: str
    size_m: str
    weight_kg: str
    mother: Person

    @property
    def pn(self) -> str:
        return self.name.pn(self.name_form)

    @property
    def needs_unicode(self) -> bool:
        """True when the name has ideographic or phonetic groups (needs ISO_IR 192)."""
        return self.name_form == IDEOGRAPHIC_FORM and bool(self.name.ideographic)

    def age_at(self, day: datetime.date) -> str:
        """Patient's Age (AS) on ``day``."""
        years = day.year - self.birth_date.year - (
            (day.month, day.day) < (self.birth_date.month, self.birth_date.day))
        return f"{max(years, 0):03d}Y"


@dataclass(frozen=True)
class Site:
    """Where a study was done and who did it."""

    institution: str
    address: str
    department: str
    phone: str
    referring: Person
    performing: Person
    operator: Person
    reader: Person


def _usable(*parts: str) -> bool:
    return all(_ALPHA.fullmatch(part) for part in parts)


def make_person(seed: int, *labels: object, sex: str | None = None) -> Person:
    """An English-language person with alphabetic name parts of three letters or more."""
    for attempt in range(100):
        fake = faker(seed, "person", *labels, attempt)
        female = sex == "F" if sex in ("M", "F") else fake.random.random() < 0.5
        given = fake.first_name_female() if female else fake.first_name_male()
        middle = fake.first_name_female() if female else fake.first_name_male()
        family = fake.last_name()
        if not _usable(given, middle, family) or len({given, middle, family}) < 3:
            continue
        prefix = ("Mrs" if fake.random.random() < 0.5 else "Ms") if female else "Mr"
        suffix = fake.random.choice(("PhD", "MD", "RN") if female else ("Jr", "Sr", "III"))
        return Person(family=family, given=given, middle=middle, prefix=prefix, suffix=suffix)
    raise RuntimeError("Faker gave no usable name in 100 draws")


def make_japanese_person(seed: int, *labels: object, sex: str) -> Person:
    """A person with romanized, ideographic (kanji) and phonetic (katakana) names."""
    for attempt in range(100):
        fake = faker(seed, "person-ja", *labels, attempt, locale="ja_JP")
        family_kanji, family_kana, family = fake.last_name_pair()
        pair = fake.first_name_female_pair() if sex == "F" else fake.first_name_male_pair()
        given_kanji, given_kana, given = pair
        if _usable(family, given) and family != given:
            middle = make_person(seed, "middle-ja", *labels, attempt, sex=sex).given
            return Person(family=family, given=given, middle=middle,
                          prefix="Mrs" if sex == "F" else "Mr", suffix="",
                          ideographic=f"{family_kanji}^{given_kanji}",
                          phonetic=f"{family_kana}^{given_kana}")
    raise RuntimeError("Faker gave no usable Japanese name in 100 draws")


def make_patient(seed: int, number: int) -> Patient:
    """Synthetic patient ``number`` (0-based); its PN form cycles through :data:`PN_FORMS`."""
    choice = rng(seed, "patient", number)
    sex = choice.choice(("F", "M"))
    form = PN_FORMS[number % len(PN_FORMS)]
    if form == IDEOGRAPHIC_FORM:
        name = make_japanese_person(seed, "patient", number, sex=sex)
    else:
        name = make_person(seed, "patient", number, sex=sex)
    mother = make_person(seed, "mother", number, sex="F")
    birth = datetime.date(1935, 1, 1) + datetime.timedelta(days=choice.randrange(0, 365 * 65))
    return Patient(
        number=number,
        name=name,
        name_form=form,
        patient_id=patient_id(seed, number),
        issuer=choice.choice(("HOSP_MRN", "EPIC", "RIS_LOCAL", "CERNER_MRN")),
        other_ids=(f"OP{choice.randrange(10**6, 10**7)}",
                   f"{choice.randrange(100, 999)}-{choice.randrange(10, 99)}-{choice.randrange(1000, 9999)}"),
        birth_date=birth,
        sex=sex,
        address=address(seed, "patient", number),
        phone=phone(seed, "patient", number),
        size_m=f"{choice.uniform(1.50, 1.95):.2f}",
        weight_kg=f"{choice.randrange(48, 120)}",
        mother=mother,
    )


def patient_id(seed: int, number: int) -> str:
    """A medical record number in one of the shapes hospitals use."""
    choice = rng(seed, "patient-id", number)
    shape = number % 4
    if shape == 0:
        return f"MRN{choice.randrange(10**6, 10**7)}"
    if shape == 1:
        return f"{choice.randrange(10**7, 10**8)}"
    if shape == 2:
        return f"PT-{choice.randrange(1000, 9999)}-{choice.randrange(10, 99)}"
    letters = "".join(choice.choice("ABCDEFGHJKLMNPQRSTUVWXYZ") for _ in range(2))
    return f"{letters}{choice.randrange(10**5, 10**6)}"


def phone(seed: int, *labels: object) -> str:
    """A North American number that fits SH (16 characters)."""
    choice = rng(seed, "phone", *labels)
    return f"({choice.randrange(201, 990)}) {choice.randrange(200, 999)}-{choice.randrange(1000, 9999)}"


def address(seed: int, *labels: object) -> str:
    """A street address that fits LO (64 characters)."""
    for attempt in range(50):
        fake = faker(seed, "address", *labels, attempt)
        text = f"{fake.street_address()}, {fake.city()}, {fake.state_abbr()} {fake.zipcode()}"
        if len(text) <= 64:
            return text
    return text[:64].rstrip(", ")


def make_site(seed: int, number: int) -> Site:
    """Institution ``number`` with its address and the staff of one study."""
    choice = rng(seed, "site", number)
    for attempt in range(100):
        family = faker(seed, "site-name", number, attempt).last_name()
        if _usable(family):
            break
    return Site(
        institution=f"{family} {choice.choice(_SITE_KINDS)}",
        address=address(seed, "site", number),
        department=choice.choice(_DEPARTMENTS),
        phone=phone(seed, "site", number),
        referring=make_person(seed, "referring", number),
        performing=make_person(seed, "performing", number),
        operator=make_person(seed, "operator", number),
        reader=make_person(seed, "reader", number),
    )


def accession_number(seed: int, *labels: object) -> str:
    """An accession number (SH) in one of the usual RIS shapes."""
    choice = rng(seed, "accession", *labels)
    if choice.random() < 0.5:
        return f"A{choice.randrange(10**7, 10**8)}"
    return f"RAD{choice.randrange(10**5, 10**6)}X{choice.randrange(10, 99)}"
