"""ICD code forms and the hierarchy the codes imply.

MIMIC-IV stores ICD codes without dots (``4019``, ``E119``, ``3893``); UMLS (MRCONSO CODE) and
the Disease Ontology write them dotted (``401.9``, ``E11.9``, ``38.93``). ``umls_code`` converts
a MIMIC code to the UMLS form for its vocabulary:

- ICD-10-CM: dot after the 3rd character (``E119`` -> ``E11.9``);
- ICD-9-CM diagnoses: dot after the 3rd character, after the 4th for E codes
  (``4019`` -> ``401.9``, ``E8809`` -> ``E880.9``, ``V4581`` -> ``V45.81``);
- ICD-9-CM procedures: dot after the 2nd character (``3893`` -> ``38.93``) — in UMLS they share
  the SAB ICD9CM with diagnoses, and only the dot keeps ``38.93`` apart from diagnosis ``389.3``;
- ICD-10-PCS: no dots.

Hierarchy: a code's parent is its longest proper prefix that is itself a code (ICD-9 procedure
prefixes down to 2 characters, diagnoses to 3, E codes to 4); categories belong to the chapter
whose range holds them (tables below, as in the published tabular lists); ICD-10-PCS codes
belong to their 3-character table, tables to their 1-character section.
"""

from __future__ import annotations

# (first category, last category, UMLS-style chapter code, title)
ICD10CM_CHAPTERS: tuple[tuple[str, str, str, str], ...] = (
    ("A00", "B99", "A00-B99", "Certain infectious and parasitic diseases"),
    ("C00", "D49", "C00-D49", "Neoplasms"),
    (
        "D50",
        "D89",
        "D50-D89",
        "Diseases of the blood and blood-forming organs and certain disorders involving the immune mechanism",
    ),
    ("E00", "E89", "E00-E89", "Endocrine, nutritional and metabolic diseases"),
    ("F01", "F99", "F01-F99", "Mental, behavioral and neurodevelopmental disorders"),
    ("G00", "G99", "G00-G99", "Diseases of the nervous system"),
    ("H00", "H59", "H00-H59", "Diseases of the eye and adnexa"),
    ("H60", "H95", "H60-H95", "Diseases of the ear and mastoid process"),
    ("I00", "I99", "I00-I99", "Diseases of the circulatory system"),
    ("J00", "J99", "J00-J99", "Diseases of the respiratory system"),
    ("K00", "K95", "K00-K95", "Diseases of the digestive system"),
    ("L00", "L99", "L00-L99", "Diseases of the skin and subcutaneous tissue"),
    ("M00", "M99", "M00-M99", "Diseases of the musculoskeletal system and connective tissue"),
    ("N00", "N99", "N00-N99", "Diseases of the genitourinary system"),
    ("O00", "O9A", "O00-O9A", "Pregnancy, childbirth and the puerperium"),
    ("P00", "P96", "P00-P96", "Certain conditions originating in the perinatal period"),
    ("Q00", "Q99", "Q00-Q99", "Congenital malformations, deformations and chromosomal abnormalities"),
    (
        "R00",
        "R99",
        "R00-R99",
        "Symptoms, signs and abnormal clinical and laboratory findings, not elsewhere classified",
    ),
    ("S00", "T88", "S00-T88", "Injury, poisoning and certain other consequences of external causes"),
    ("U00", "U85", "U00-U85", "Codes for special purposes"),
    ("V00", "Y99", "V00-Y99", "External causes of morbidity"),
    ("Z00", "Z99", "Z00-Z99", "Factors influencing health status and contact with health services"),
)

ICD9CM_CHAPTERS: tuple[tuple[str, str, str, str], ...] = (
    ("001", "139", "001-139.99", "Infectious and parasitic diseases"),
    ("140", "239", "140-239.99", "Neoplasms"),
    ("240", "279", "240-279.99", "Endocrine, nutritional and metabolic diseases, and immunity disorders"),
    ("280", "289", "280-289.99", "Diseases of the blood and blood-forming organs"),
    ("290", "319", "290-319.99", "Mental disorders"),
    ("320", "389", "320-389.99", "Diseases of the nervous system and sense organs"),
    ("390", "459", "390-459.99", "Diseases of the circulatory system"),
    ("460", "519", "460-519.99", "Diseases of the respiratory system"),
    ("520", "579", "520-579.99", "Diseases of the digestive system"),
    ("580", "629", "580-629.99", "Diseases of the genitourinary system"),
    ("630", "679", "630-679.99", "Complications of pregnancy, childbirth, and the puerperium"),
    ("680", "709", "680-709.99", "Diseases of the skin and subcutaneous tissue"),
    ("710", "739", "710-739.99", "Diseases of the musculoskeletal system and connective tissue"),
    ("740", "759", "740-759.99", "Congenital anomalies"),
    ("760", "779", "760-779.99", "Certain conditions originating in the perinatal period"),
    ("780", "799", "780-799.99", "Symptoms, signs, and ill-defined conditions"),
    ("800", "999", "800-999.99", "Injury and poisoning"),
    (
        "V01",
        "V91",
        "V01-V91.99",
        "Supplementary classification of factors influencing health status and contact with health services",
    ),
    (
        "E000",
        "E999",
        "E000-E999.9",
        "Supplementary classification of external causes of injury and poisoning",
    ),
)

ICD9PCS_CHAPTERS: tuple[tuple[str, str, str, str], ...] = (
    ("00", "00", "00-00.99", "Procedures and interventions, not elsewhere classified"),
    ("01", "05", "01-05.99", "Operations on the nervous system"),
    ("06", "07", "06-07.99", "Operations on the endocrine system"),
    ("08", "16", "08-16.99", "Operations on the eye"),
    ("17", "17", "17-17.99", "Other miscellaneous diagnostic and therapeutic procedures"),
    ("18", "20", "18-20.99", "Operations on the ear"),
    ("21", "29", "21-29.99", "Operations on the nose, mouth, and pharynx"),
    ("30", "34", "30-34.99", "Operations on the respiratory system"),
    ("35", "39", "35-39.99", "Operations on the cardiovascular system"),
    ("40", "41", "40-41.99", "Operations on the hemic and lymphatic system"),
    ("42", "54", "42-54.99", "Operations on the digestive system"),
    ("55", "59", "55-59.99", "Operations on the urinary system"),
    ("60", "64", "60-64.99", "Operations on the male genital organs"),
    ("65", "71", "65-71.99", "Operations on the female genital organs"),
    ("72", "75", "72-75.99", "Obstetrical procedures"),
    ("76", "84", "76-84.99", "Operations on the musculoskeletal system"),
    ("85", "86", "85-86.99", "Operations on the integumentary system"),
    ("87", "99", "87-99.99", "Miscellaneous diagnostic and therapeutic procedures"),
)

ICD10PCS_SECTIONS: dict[str, str] = {
    "0": "Medical and Surgical",
    "1": "Obstetrics",
    "2": "Placement",
    "3": "Administration",
    "4": "Measurement and Monitoring",
    "5": "Extracorporeal or Systemic Assistance and Performance",
    "6": "Extracorporeal or Systemic Therapies",
    "7": "Osteopathic",
    "8": "Other Procedures",
    "9": "Chiropractic",
    "B": "Imaging",
    "C": "Nuclear Medicine",
    "D": "Radiation Therapy",
    "F": "Physical Rehabilitation and Diagnostic Audiology",
    "G": "Mental Health",
    "H": "Substance Abuse Treatment",
    "X": "New Technology",
}

# (MIMIC table, icd_version) -> UMLS SAB
SAB_OF = {
    ("diagnoses_icd", 9): "ICD9CM",
    ("diagnoses_icd", 10): "ICD10CM",
    ("procedures_icd", 9): "ICD9CM",
    ("procedures_icd", 10): "ICD10PCS",
}


def umls_code(code: str, version: int, procedure: bool) -> str:
    """A MIMIC (undotted) ICD code in the form UMLS and the Disease Ontology write it."""
    code = code.strip().upper()
    if procedure:
        if version == 10:
            return code
        return code if len(code) <= 2 else f"{code[:2]}.{code[2:]}"
    if version == 9 and code.startswith("E"):
        return code if len(code) <= 4 else f"{code[:4]}.{code[4:]}"
    return code if len(code) <= 3 else f"{code[:3]}.{code[3:]}"


def undotted(code: str) -> str:
    return code.replace(".", "")


def category_length(version: int, procedure: bool, code: str) -> int:
    """Length of the top category of an undotted code (the shortest prefix that is a code)."""
    if procedure:
        return 3 if version == 10 else 2
    if version == 9 and code.startswith("E"):
        return 4
    return 3


def chapter_of(category: str, version: int, procedure: bool) -> tuple[str, str] | None:
    """(chapter code, title) holding an undotted category, or None."""
    if procedure and version == 10:
        section = category[:1]
        return (section, ICD10PCS_SECTIONS[section]) if section in ICD10PCS_SECTIONS else None
    table = ICD9PCS_CHAPTERS if procedure else (ICD10CM_CHAPTERS if version == 10 else ICD9CM_CHAPTERS)
    # Plain string order works: the letter-led (V, E) and digit-led ranges never interleave.
    for first, last, chapter, title in table:
        if first <= category <= last:
            return chapter, title
    return None


def parent_code(code: str, known: set[str], version: int, procedure: bool) -> str | None:
    """The longest proper prefix of an undotted code that is in ``known`` (None at category level)."""
    stop = category_length(version, procedure, code)
    for length in range(len(code) - 1, stop - 1, -1):
        prefix = code[:length]
        if prefix in known:
            return prefix
    return None
