"""Small hand-written vocabularies for content the demo does not have.

Everything here is invented for the synthetic cohort (no MIMIC text): values of text-valued chart
items (the open chartevents stand-in lost them), chief complaints, ED dispositions, radiology
exams and report phrases, medication classes for ED medication reconciliation.
"""

from __future__ import annotations

import numpy as np
import polars as pl

# text chart items: the most frequent ones by label, the rest by category
CHART_TEXT_BY_LABEL: dict[str, tuple[str, ...]] = {
    "Heart Rhythm": (
        "SR (Sinus Rhythm)",
        "ST (Sinus Tachycardia)",
        "AF (Atrial Fibrillation)",
        "SB (Sinus Bradycardia)",
    ),
    "Ectopy Type 1": ("None", "PVC's", "PAC's"),
    "Safety Measures": ("Bed locked in low position", "Call light within reach", "Side rails up x2"),
    "Less Restrictive Measures": ("Diversional activity", "Reorientation", "Family at bedside"),
    "Pain Management": ("Repositioning", "Medication given", "None needed"),
    "Head of Bed": ("30 Degrees", "45 Degrees", "15 Degrees"),
    "Turn": ("Side to side", "Patient refused", "Self"),
    "Activity Tolerance": ("Tolerated well", "Fatigued", "Dyspnea on exertion"),
    "Position": ("Left Side", "Right Side", "Supine", "Sitting up"),
    "Temperature Site": ("Oral", "Axillary", "Blood", "Temporal"),
    "O2 Delivery Device(s)": ("Nasal cannula", "None", "Face tent", "Endotracheal tube"),
    "Pain Present": ("No", "Yes"),
    "Pain Assessment Method": ("Numeric", "CPOT", "Faces"),
    "Diet Type": ("NPO", "Regular", "Cardiac", "Clear liquids"),
    "Urine Source": ("Foley", "Voiding", "Condom catheter"),
    "Bowel Sounds": ("Active", "Hypoactive", "Absent"),
    "Abdominal Assessment": ("Soft", "Distended", "Tender"),
    "Orientation": ("Oriented x 3", "Oriented x 2", "Oriented x 1", "Disoriented"),
    "Side Rails": ("2 Rails Up", "3 Rails Up", "4 Rails Up"),
}
CHART_TEXT_BY_CATEGORY: dict[str, tuple[str, ...]] = {
    "Pulmonary": ("Clear", "Diminished", "Crackles", "Rhonchi"),
    "Respiratory": ("Clear", "Diminished", "Coarse"),
    "Care Plans": ("Progressing", "Met", "Not progressing"),
    "Neurological": ("Brisk", "Sluggish", "3 mm", "2 mm"),
    "Treatments": ("Done", "Not done", "Refused"),
    "Cardiovascular (Pulses)": ("Palpable", "Doppler", "Weak palpable"),
    "Skin - Incisions": ("Clean, dry, intact", "Erythema", "None"),
    "Restraint/Support Systems": ("Yes", "No"),
    "Pain/Sedation": ("Incisional", "Back", "Chest", "Generalized"),
    "GI/GU": ("Yes", "No", "Within normal limits"),
}
CHART_TEXT_DEFAULT: tuple[str, ...] = ("Yes", "No", "Within normal limits", "Other/Remarks")

# ICD-10 first letter / ICD-9 numeric range -> chief complaints (short, triage style)
COMPLAINTS_ICD10: dict[str, tuple[str, ...]] = {
    "A": ("Fever", "Diarrhea"),
    "B": ("Fever", "Rash"),
    "C": ("Weakness", "Abnormal labs"),
    "D": ("Abnormal labs", "Weakness"),
    "E": ("Hyperglycemia", "Weakness"),
    "F": ("Anxiety", "SI", "ETOH"),
    "G": ("Headache", "Seizure"),
    "H": ("Visual changes", "Dizziness"),
    "I": ("Chest pain", "Dyspnea", "Palpitations"),
    "J": ("Dyspnea", "Cough", "Fever"),
    "K": ("Abd pain", "N/V", "BRBPR"),
    "L": ("Rash", "Wound eval"),
    "M": ("Back pain", "Joint pain"),
    "N": ("Flank pain", "Dysuria"),
    "O": ("Abd pain", "Vaginal bleeding"),
    "R": ("Abd pain", "Chest pain", "Dizziness", "Fever"),
    "S": ("s/p Fall", "Injury"),
    "T": ("Overdose", "Injury"),
    "Z": ("Abnormal labs", "Transfer"),
}
COMPLAINTS_ICD9: tuple[tuple[int, tuple[str, ...]], ...] = (
    (140, ("Fever", "Diarrhea")),
    (240, ("Weakness", "Abnormal labs")),
    (280, ("Hyperglycemia", "Weakness")),
    (290, ("Abnormal labs", "Weakness")),
    (320, ("Anxiety", "SI", "ETOH")),
    (390, ("Headache", "Seizure")),
    (460, ("Chest pain", "Dyspnea", "Palpitations")),
    (520, ("Dyspnea", "Cough", "Fever")),
    (580, ("Abd pain", "N/V", "BRBPR")),
    (630, ("Flank pain", "Dysuria")),
    (680, ("Abd pain", "Vaginal bleeding")),
    (710, ("Rash", "Wound eval")),
    (740, ("Back pain", "Joint pain")),
    (780, ("Weakness",)),
    (800, ("Abd pain", "Chest pain", "Dizziness", "Fever")),
    (1000, ("s/p Fall", "Injury")),
)
COMPLAINT_DEFAULT: tuple[str, ...] = ("Weakness", "Transfer", "Abnormal labs")

ED_ONLY_DISPOSITIONS: tuple[tuple[str, float], ...] = (
    ("HOME", 0.84),
    ("LEFT WITHOUT BEING SEEN", 0.04),
    ("LEFT AGAINST MEDICAL ADVICE", 0.03),
    ("ELOPED", 0.02),
    ("TRANSFER", 0.04),
    ("OTHER", 0.03),
)
ARRIVAL_TRANSPORT: tuple[tuple[str, float], ...] = (
    ("WALK IN", 0.55),
    ("AMBULANCE", 0.38),
    ("UNKNOWN", 0.05),
    ("OTHER", 0.015),
    ("HELICOPTER", 0.005),
)

# medication classes for ED medrecon (etccode is a made-up code per class)
MEDICATION_CLASSES: tuple[tuple[str, str, str], ...] = (
    (
        r"(?i)statin\b|atorvastatin|simvastatin|pravastatin|rosuvastatin",
        "5861",
        "Antihyperlipidemic - HMG CoA Reductase Inhibitors",
    ),
    (r"(?i)metoprolol|atenolol|carvedilol|propranolol|labetalol", "5912", "Beta-Blockers"),
    (r"(?i)lisinopril|enalapril|captopril|losartan|valsartan", "5913", "ACE Inhibitors and ARBs"),
    (r"(?i)amlodipine|diltiazem|nifedipine|verapamil", "5914", "Calcium Channel Blockers"),
    (r"(?i)furosemide|torsemide|hydrochlorothiazide|spironolactone|bumetanide", "5915", "Diuretics"),
    (r"(?i)insulin|metformin|glipizide|glyburide", "5920", "Antidiabetic Agents"),
    (r"(?i)warfarin|heparin|enoxaparin|apixaban|rivaroxaban", "5930", "Anticoagulants"),
    (r"(?i)aspirin|clopidogrel|ticagrelor", "5931", "Platelet Aggregation Inhibitors"),
    (r"(?i)omeprazole|pantoprazole|famotidine|ranitidine", "5940", "Gastric Acid Reducers"),
    (r"(?i)oxycodone|morphine|hydromorphone|fentanyl|tramadol|acetaminophen", "5950", "Analgesics"),
    (r"(?i)levothyroxine", "5960", "Thyroid Hormones"),
    (r"(?i)sertraline|citalopram|escitalopram|fluoxetine|trazodone|mirtazapine", "5970", "Antidepressants"),
    (r"(?i)albuterol|ipratropium|fluticasone|tiotropium|montelukast", "5980", "Respiratory Agents"),
    (
        r"(?i)vancomycin|cefazolin|ceftriaxone|piperacillin|ciprofloxacin|levofloxacin|azithromycin|metronidazole",
        "5990",
        "Antibiotics",
    ),
    (r"(?i)docusate|senna|bisacodyl|polyethylene glycol|lactulose", "5995", "Laxatives"),
)
MEDICATION_CLASS_DEFAULT = ("5999", "Miscellaneous Therapeutic Agents")

# radiology exams: name, exam code, CPT code, modality, region, weight
RADIOLOGY_EXAMS: tuple[tuple[str, str, str, str, str, float], ...] = (
    ("CHEST (PORTABLE AP)", "CXR1", "71045", "radiograph", "chest", 0.30),
    ("CHEST (PA AND LAT)", "CXR2", "71046", "radiograph", "chest", 0.16),
    ("CT HEAD W/O CONTRAST", "CTH", "70450", "ct", "head", 0.10),
    ("CT ABD & PELVIS WITH CONTRAST", "CTAP", "74177", "ct", "abdomen", 0.08),
    ("CT CHEST W/CONTRAST", "CTC", "71260", "ct", "chest", 0.04),
    ("CTA CHEST", "CTPE", "71275", "ct", "chest", 0.03),
    ("LIVER OR GALLBLADDER US (SINGLE ORGAN)", "USRUQ", "76705", "ultrasound", "abdomen", 0.04),
    ("RENAL U.S.", "USREN", "76770", "ultrasound", "kidney", 0.04),
    ("UNILAT LOWER EXT VEINS", "USLE", "93971", "ultrasound", "leg", 0.04),
    ("MR HEAD W & W/O CONTRAST", "MRH", "70553", "mri", "head", 0.03),
    ("ABDOMEN (SUPINE & ERECT)", "KUB", "74019", "radiograph", "abdomen", 0.03),
    ("CT C-SPINE W/O CONTRAST", "CTCS", "72125", "ct", "spine", 0.03),
    ("KNEE (2 VIEWS) LEFT", "XKL", "73560", "radiograph", "knee", 0.02),
    ("SHOULDER (2 VIEWS) RIGHT", "XSR", "73030", "radiograph", "shoulder", 0.02),
)
TECHNIQUE = {
    "radiograph": "Single or multiple views were obtained.",
    "ct": "Axial images were acquired and reformatted in coronal and sagittal planes.",
    "ultrasound": "Grayscale and color Doppler ultrasound images were obtained.",
    "mri": "Multiplanar, multisequence images were obtained before and after contrast.",
}
FINDINGS_NORMAL = {
    "chest": "The lungs are clear. The cardiomediastinal silhouette is within normal limits. No pleural effusion or pneumothorax.",
    "head": "No acute intracranial hemorrhage, mass effect or territorial infarction. Ventricles are normal in size.",
    "abdomen": "No acute abnormality. No free fluid or free air. Bowel gas pattern is unremarkable.",
    "kidney": "Both kidneys are normal in size without hydronephrosis, stones or masses.",
    "leg": "Normal compressibility and flow in the common femoral, femoral and popliteal veins.",
    "spine": "Vertebral body heights are preserved. No acute fracture or malalignment.",
    "knee": "No fracture or dislocation. Joint spaces are preserved.",
    "shoulder": "No fracture or dislocation. The acromioclavicular joint is intact.",
}
FINDINGS_ABNORMAL = {
    "chest": "Bibasilar opacities, possibly atelectasis or early pneumonia. Small bilateral pleural effusions.",
    "head": "Chronic small vessel ischemic changes. No acute hemorrhage.",
    "abdomen": "Mild bowel wall thickening; small amount of free fluid in the pelvis.",
    "kidney": "Mild hydronephrosis of the right kidney.",
    "leg": "Occlusive thrombus in the popliteal vein.",
    "spine": "Multilevel degenerative changes without acute fracture.",
    "knee": "Moderate joint effusion. Degenerative changes.",
    "shoulder": "Degenerative changes of the glenohumeral joint.",
}

ALLERGIES: tuple[str, ...] = (
    "No Known Allergies / Adverse Drug Reactions",
    "Penicillins",
    "Sulfa (Sulfonamide Antibiotics)",
    "Codeine",
    "lisinopril",
)
SERVICE_NAMES: dict[str, str] = {
    "MED": "MEDICINE",
    "CMED": "MEDICINE",
    "OMED": "MEDICINE",
    "SURG": "SURGERY",
    "CSURG": "CARDIOTHORACIC",
    "NSURG": "NEUROSURGERY",
    "NMED": "NEUROLOGY",
    "ORTHO": "ORTHOPAEDICS",
    "TRAUM": "SURGERY",
    "VSURG": "SURGERY",
    "GYN": "OBSTETRICS/GYNECOLOGY",
    "OBS": "OBSTETRICS/GYNECOLOGY",
    "PSYCH": "PSYCHIATRY",
    "TSURG": "CARDIOTHORACIC",
    "GU": "UROLOGY",
    "ENT": "OTOLARYNGOLOGY",
    "EYE": "OPHTHALMOLOGY",
    "PSURG": "PLASTIC",
    "DENT": "DENTAL",
}


def pick(rng: np.random.Generator, options: tuple[tuple[str, float], ...], size: int) -> list[str]:
    names = [name for name, _ in options]
    weights = np.array([weight for _, weight in options], dtype=float)
    return [names[i] for i in rng.choice(len(names), size=size, p=weights / weights.sum())]


def chart_values(rows: pl.DataFrame, seed: int = 20240601) -> pl.DataFrame:
    """Add ``value``: the number as MIMIC writes it, or an invented word for text items.

    ``rows`` has itemid, label, category, valuenum. The choice is seeded, so the pool (and every
    cohort) is the same on every run.
    """
    rng = np.random.default_rng(seed)
    draws = rng.random(rows.height)
    label = rows["label"].fill_null("").to_list()
    category = rows["category"].fill_null("").to_list()
    words = [
        options[int(u * len(options))]
        for u, options in zip(
            draws,
            (
                CHART_TEXT_BY_LABEL.get(lb) or CHART_TEXT_BY_CATEGORY.get(cat) or CHART_TEXT_DEFAULT
                for lb, cat in zip(label, category, strict=True)
            ),
            strict=True,
        )
    ]
    return rows.with_columns(
        pl.when(pl.col("valuenum").is_null())
        .then(pl.Series("_word", words, dtype=pl.String))
        .otherwise(number_text(pl.col("valuenum")))
        .alias("value")
    )


def number_text(expr: pl.Expr) -> pl.Expr:
    """A float as MIMIC's text value column writes it: 80 not 80.0, 98.6 as is."""
    return (
        pl.when(expr == expr.round(0))
        .then(expr.cast(pl.Int64).cast(pl.String))
        .otherwise(expr.round(2).cast(pl.String))
    )


def complaint_for(codes: pl.Series, versions: pl.Series, draws: np.ndarray) -> list[str]:
    """A chief complaint consistent with a diagnosis code's chapter."""
    out: list[str] = []
    for code, version, u in zip(codes.to_list(), versions.to_list(), draws, strict=True):
        options = COMPLAINT_DEFAULT
        if code:
            if version == 10:
                options = COMPLAINTS_ICD10.get(code[0], COMPLAINT_DEFAULT)
            elif code[0].isdigit():
                number = int(code[:3])
                for bound, choices in COMPLAINTS_ICD9:
                    if number < bound:
                        options = choices
                        break
            elif code[0] == "E":
                options = ("s/p Fall", "Injury")
        out.append(options[int(u * len(options))])
    return out


def medication_class(names: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """(etccode, etcdescription) for drug names, by keyword."""
    code = pl.when(pl.lit(False)).then(pl.lit(None, pl.String))
    text = pl.when(pl.lit(False)).then(pl.lit(None, pl.String))
    for pattern, etc_code, description in MEDICATION_CLASSES:
        code = code.when(names.str.contains(pattern)).then(pl.lit(etc_code))
        text = text.when(names.str.contains(pattern)).then(pl.lit(description))
    default_code, default_text = MEDICATION_CLASS_DEFAULT
    return code.otherwise(pl.lit(default_code)), text.otherwise(pl.lit(default_text))
