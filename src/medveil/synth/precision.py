"""The cases that cost release precision on data a de-identifier has never seen (issue 14).

Each is planted with the checks a curator's answer key would hold:

* identifiers in coded and numeric attributes the table keeps (a CS holding the
  patient ID): removed, and the rest of the file released;
* dates where no date belongs: an IS value that is the study date, Software
  Versions ending in ``[YYYYMMDD]``: shifted (the original gone);
* month-year and other partial dates in text ("Sep2012", "Q3 2012"): shifted;
* the site's initialism in a description ("... at SGH" for "Smith General Hospital"):
  removed while the clinical words stay;
* a record of an earlier de-identification (a refacing tool's method and code):
  retained, not overwritten;
* reference sequences TCIA keeps with their UIDs remapped (Referenced Performed
  Procedure Step, Referenced Study): retained, the UIDs changed and consistent;
* a person name stored under VR LO (Other Patient Names): removed with its parts.

Images without text in their pixels (palette, YBR_RCT, JPEG 2000, JPEG-LS, RLE
from pydicom's own files) already carry a "pixels retained" check wherever the
corpus has them; nothing is planted in their pixels.
"""

from __future__ import annotations

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from medveil.evaluate.paths import public
from medveil.synth import expect as E
from medveil.synth.expect import Expect

#: Share of series that get each case (decided per series, so a series is consistent).
RATE = 0.35
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_PROCEDURE_STEP_CLASS = "1.2.840.10008.3.1.2.3.3"
_STUDY_CLASS = "1.2.840.10008.3.1.2.3.1"


def _top(tag: int) -> tuple:
    return (public(tag),)


def initialism(name: str) -> str:
    """"Smith General Hospital" -> "SGH"."""
    return "".join(word[0] for word in name.split() if word[:1].isalpha()).upper()


def plant(ds: Dataset, ctx, expects: list[Expect]) -> None:
    """Plant the cases this series draws (see the module docstring)."""
    study, patient, series = ctx.study, ctx.patient, ctx.series
    day = f"{study.date:%Y%m%d}"

    def wanted(case: str) -> bool:
        return ctx.choice("precision", case, series.uid).random() < RATE

    if wanted("coded-identifier") and len(patient.patient_id) <= 16:
        ds.PatientAlternativeCalendar = patient.patient_id  # a CS a scanner filled with the MRN
        expects.append(Expect(_top(0x00100035), "text_removed", E.ID, action_text=patient.patient_id))
    if wanted("numeric-date"):
        ds.ImagesInAcquisition = day  # IS holding the study date
        expects.append(Expect(_top(0x00201002), "date_shifted", E.HIDDEN_DATE, value=day))
        ds.SoftwareVersions = [f"V{ctx.choice('sw', series.uid).randrange(1, 9)}.0 [{day}]", "synth"]
        expects.append(Expect(_top(0x00181020), "date_shifted", E.HIDDEN_DATE, value=day))
    if wanted("partial-date"):
        prior = study.date.replace(day=1)
        month = _MONTHS[prior.month - 1]
        forms = (f"{month}{prior.year}", f"{month}. {prior.year}", f"{prior.year}-{prior.month:02d}",
                 f"{prior.month:02d}/{prior.year}", f"Q{(prior.month - 1) // 3 + 1} {prior.year}")
        form = forms[ctx.choice("partial-form", series.uid).randrange(len(forms))]
        expects[:] = [e for e in expects if e.path != _top(0x00204000)]  # replaces any earlier comment
        ds.ImageComments = f"compared with prior {form}"
        expects.append(Expect(_top(0x00204000), "date_shifted", E.HIDDEN_DATE, value=form))
        expects.append(Expect(_top(0x00204000), "text_retained", E.KEEP_DESCRIPTOR,
                              action_text="compared with prior"))
    if wanted("site-initialism"):
        short = initialism(study.site.institution)
        described = str(ds.get("SeriesDescription", "") or "").strip()
        phi_planted = any(e.path == _top(0x0008103E) and e.action == "text_removed" for e in expects)
        if len(short) >= 3 and described and len(described) + len(short) + 4 <= 64 \
                and short.lower() not in described.lower() and not phi_planted:
            ds.SeriesDescription = f"{described} at {short}"
            expects.append(Expect(_top(0x0008103E), "text_removed", E.INSTITUTION, action_text=short))
    if wanted("history"):
        ds.PatientIdentityRemoved = "NO"
        ds.DeidentificationMethod = "FACE MASK 2.1"
        item = Dataset()
        item.CodeValue = "113102"
        item.CodingSchemeDesignator = "DCM"
        item.CodeMeaning = "Clean Recognizable Visual Features Option"
        ds.DeidentificationMethodCodeSequence = Sequence([item])
        expects.append(Expect(_top(0x00120063), "text_retained", E.KEEP_DESCRIPTOR, action_text="FACE MASK 2.1"))
        step = public(0x00120064, item=0)
        expects.append(Expect((step, public(0x00080100)), "text_retained", E.KEEP_DESCRIPTOR,
                              action_text="113102"))
    if wanted("references"):
        item = Dataset()
        item.ReferencedSOPClassUID = _PROCEDURE_STEP_CLASS
        item.ReferencedSOPInstanceUID = ctx.uid(f"pps-{series.uid}")
        ds.ReferencedPerformedProcedureStepSequence = Sequence([item])
        expects.append(Expect(_top(0x00081111), "tag_retained", E.UID_CONSISTENT))
        expects.append(Expect((public(0x00081111, item=0), public(0x00081150)), "text_retained", E.IOD,
                              action_text=_PROCEDURE_STEP_CLASS))
        if "ReferencedStudySequence" in ds:
            expects.append(Expect(_top(0x00081110), "tag_retained", E.UID_CONSISTENT))
    if wanted("name-as-lo") and patient.sex != "F":
        ds.add_new(0x00101001, "LO", patient.pn)  # Other Patient Names (PN) written as LO
        expects.append(Expect(_top(0x00101001), "text_removed", E.NAME, action_text=patient.pn))
