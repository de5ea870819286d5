"""Clinical words that must survive de-identification, by modality.

Descriptions in real exports mix the clinically useful ("CT CHEST W/O
CONTRAST") with what a technologist typed about the patient ("for Mary Smith
20140321").  Clean Descriptors asks a de-identifier to remove the second and
keep the first, so the synthetic set needs a supply of the first kind: short,
plausible protocol and report phrases, none of them identifying.
"""

from __future__ import annotations

SERIES = {
    "CT": ("CT CHEST W/O CONTRAST", "CT ABD PELVIS W CONTRAST", "AXIAL 5MM SOFT TISSUE",
           "CT HEAD WITHOUT CONTRAST", "CORONAL REFORMAT BONE", "LUNG WINDOW 1.25MM"),
    "MR": ("AX T2 FLAIR", "SAG T1 MPRAGE", "MR BRAIN W/WO CONTRAST", "DWI B1000 TRACE",
           "COR STIR KNEE", "AX T1 POST GAD"),
    "CR": ("CHEST PA AND LATERAL", "PORTABLE CHEST AP", "KNEE 3 VIEWS", "ABDOMEN SUPINE"),
    "DX": ("CHEST PA AND LATERAL", "PORTABLE CHEST AP", "HAND 3 VIEWS", "PELVIS AP"),
    "MG": ("SCREENING MAMMO BILATERAL", "DIAGNOSTIC MAMMO LEFT CC", "MLO RIGHT BREAST"),
    "US": ("US ABDOMEN COMPLETE", "US RENAL BILATERAL", "OB US SECOND TRIMESTER", "CAROTID DOPPLER"),
    "NM": ("BONE SCAN WHOLE BODY", "MYOCARDIAL PERFUSION REST", "THYROID UPTAKE"),
    "PT": ("PET CT WHOLE BODY FDG", "PET BRAIN FDG", "AC WHOLE BODY"),
    "SR": ("RADIOLOGY REPORT", "STRUCTURED REPORT"),
    "SEG": ("TUMOR SEGMENTATION", "LUNG NODULE MASKS"),
    "RTPLAN": ("RT PLAN PROSTATE IMRT", "RT PLAN LUNG SBRT"),
    "RTDOSE": ("RT DOSE PROSTATE IMRT", "RT DOSE LUNG SBRT"),
    "RTSTRUCT": ("RT STRUCTURES HEAD NECK", "RT CONTOURS PELVIS"),
}
OTHER = ("SECONDARY CAPTURE", "SCANNED DOCUMENT", "DERIVED IMAGE", "KEY IMAGES")

STUDY = {
    "CT": ("CT CHEST ABDOMEN PELVIS", "CT HEAD ROUTINE", "CT ANGIO CHEST PE PROTOCOL"),
    "MR": ("MRI BRAIN WITH AND WITHOUT CONTRAST", "MRI KNEE RIGHT", "MRI LUMBAR SPINE"),
    "CR": ("XR CHEST 2 VIEWS", "XR KNEE COMPLETE"),
    "DX": ("XR CHEST 2 VIEWS", "XR PELVIS"),
    "MG": ("MAMMOGRAPHY SCREENING BILATERAL", "MAMMOGRAPHY DIAGNOSTIC"),
    "US": ("ULTRASOUND ABDOMEN", "ULTRASOUND PELVIS TRANSVAGINAL"),
    "NM": ("NUCLEAR MEDICINE BONE SCAN", "NM CARDIAC STRESS TEST"),
    "PT": ("PET CT ONCOLOGY RESTAGING",),
}
STUDY_OTHER = ("IMAGING STUDY", "OUTSIDE IMAGES", "MULTIMODALITY REVIEW")

#: Short procedure-step phrases that a date is typed after ("CHEST ROUTINE 20140321").
STEPS = ("CHEST ROUTINE", "BRAIN ROUTINE", "ABDOMEN ROUTINE", "SPINE SURVEY", "FOLLOW UP")

IMAGE_COMMENTS = ("Motion artifact noted", "Contrast given IV", "Repeat due to positioning",
                  "Patient unable to hold breath", "Limited study due to body habitus")
HISTORY = ("History of hypertension and type 2 diabetes", "Follow-up of pulmonary nodule",
           "Chronic lower back pain, rule out disc herniation", "Persistent cough for three weeks",
           "Status post appendectomy, abdominal pain")
ALERTS = ("Allergic to penicillin", "Latex allergy", "Contrast allergy, premedicate",
          "Pacemaker in situ")
FINDINGS = ("No acute cardiopulmonary abnormality", "Stable 4 mm nodule in the right upper lobe",
            "Mild degenerative changes of the lumbar spine", "No intracranial hemorrhage or mass effect",
            "Small left pleural effusion")
IMPRESSIONS = ("No acute findings", "Recommend follow-up CT in six months",
               "Findings consistent with pneumonia", "Unchanged from prior examination")
REASONS = ("Shortness of breath", "Headache", "Abdominal pain", "Trauma", "Staging")


def series_phrases(modality: str) -> tuple[str, ...]:
    return SERIES.get(modality, OTHER)


def study_phrases(modality: str) -> tuple[str, ...]:
    return STUDY.get(modality, STUDY_OTHER)
