"""What a timeline event is made of, table by table: its time, its item names and how it is printed.

This module is data. ``graphkit.ehr.timeline`` reads it to place rows on a patient's timeline and
``graphkit.ehr.serialize`` to print them, in two styles:

- ``ehr-r1``: the text of the EHR-R1 reference (MAGIC-AI4Med/EHR-R1, ``mimiciv_dataset``), which the
  released EHR-R1 models were trained on: its event names (with the "Labotary" spelling), its
  fields in its order, labelled ``key.title()`` ("Anchor_Age", "Atc Type"), and every value as
  pandas printed it after ``read_csv`` (``nan`` for a missing value, ``None`` for a code its lookup
  tables lack, ``100.0`` for an integral number in a column that has gaps).
- ``clean``: our default. Correct names, human labels, no ``nan``/``None``, empty fields and
  columns dropped, no field that is only known later (the pharmacy order's final status).
"""

from __future__ import annotations

from dataclasses import dataclass

# How the reference printed a value (pandas ``str()`` of what ``read_csv`` inferred):
TEXT = "text"  # a string column: the text as written, "nan" when missing
NUMBER = (
    "number"  # a numeric column: "1.5", "100.0"; "100" when the whole table column is integral and complete
)
LOOKUP = "lookup"  # a name from a dictionary table: "None" when the code is not in it, "nan" when the name is empty
LIST = "list"  # several names from a detail table, printed as a Python list: "['CHEST (PA AND LAT)']"
NONE = "none"  # a key the reference prints without ever filling it: always "None"
# Clean style only:
BLOCK = "block"  # long text (notes) printed as a paragraph after the key lines

# How an event's time was obtained (column ``time_kind`` of the events frame):
TIME_EXACT = "exact"  # the row's own date and time
TIME_DATE = (
    "date"  # the row's own date, placed at 00:00:00 (omr, procedures_icd, hcpcsevents: the table has no time)
)
TIME_DERIVED = "derived"  # from a linked row, by a fixed rule (diagnoses at discharge, ED triage at arrival)


@dataclass(frozen=True)
class Field:
    """One printed attribute: ``label`` (a reference key for ehr-r1, a human label for clean)."""

    label: str
    column: str
    kind: str = TEXT


@dataclass(frozen=True)
class EventTable:
    name: str
    module: str
    time: str  # column of the prepared rows that holds the event time
    time_kind: str
    clean_name: str
    ehr_r1_name: str | None  # None: the reference has no printer for this table and prints ""
    ehr_r1: tuple[Field, ...]
    clean: tuple[Field, ...]
    item: str | None = None  # prepared column with the row's item name (benchmark targets)
    code: str | None = None  # prepared column with the row's code (as a string)
    ehr_r1_dated: bool = True  # False: the reference had no time for these rows and printed "[None]"

    @property
    def ehr_r1_labels(self) -> tuple[str, ...]:
        return tuple(f.label.title() for f in self.ehr_r1)


def _f(label: str, column: str | None = None, kind: str = TEXT) -> Field:
    return Field(label=label, column=column or label, kind=kind)


_ATC = _f("ATC Type", "atc_name", LOOKUP)
_CCS = _f("CCS Type", "ccs_name", LOOKUP)
_ITEM = _f("item_name", kind=LOOKUP)
_VITALS_EHR_R1 = tuple(_f(c, kind=NUMBER) for c in ("temperature", "heartrate", "resprate", "o2sat", "sbp", "dbp"))
_VITALS_CLEAN = (
    _f("Temperature", "temperature", NUMBER), _f("Heart Rate", "heartrate", NUMBER),
    _f("Respiratory Rate", "resprate", NUMBER), _f("O2 Saturation", "o2sat", NUMBER),
    _f("Systolic BP", "sbp", NUMBER), _f("Diastolic BP", "dbp", NUMBER), _f("Pain", "pain"),
)
_INFUSION_EHR_R1 = (_ITEM, _f("amount", kind=NUMBER), _f("amountuom"), _f("rate", kind=NUMBER), _f("rateuom"))
_INFUSION_CLEAN = (
    _f("Item", "item_name", LOOKUP), _f("Amount", "amount", NUMBER), _f("Amount Unit", "amountuom"),
    _f("Rate", "rate", NUMBER), _f("Rate Unit", "rateuom"),
)

EVENT_TABLES: dict[str, EventTable] = {
    t.name: t
    for t in (
        # ---------------------------------------------------------------- hosp
        EventTable(
            "admissions",
            "hosp",
            "admittime",
            TIME_EXACT,
            "Admission",
            "Admissions",
            ehr_r1=(_f("admission_type"), _f("admission_location"), _f("admission_info", kind=NONE)),
            clean=(_f("Admission Type", "admission_type"), _f("Admission Location", "admission_location")),
            item="admission_type",
        ),
        EventTable(
            "transfers",
            "hosp",
            "intime",
            TIME_EXACT,
            "Transfers",
            "Transfers",
            ehr_r1=(_f("eventtype"), _f("careunit")),
            clean=(_f("Event Type", "eventtype"), _f("Care Unit", "careunit")),
            item="transfer_item",
        ),
        EventTable(
            "services",
            "hosp",
            "transfertime",
            TIME_EXACT,
            "Services",
            "Services",
            ehr_r1=(_f("curr_service"),),
            clean=(_f("Service", "curr_service"), _f("Previous Service", "prev_service")),
            item="curr_service",
        ),
        EventTable(
            "omr",
            "hosp",
            "chartdate",
            TIME_DATE,
            "Online Medical Record",
            "Online Medical Record",
            ehr_r1=(_f("result_name"), _f("result_value")),
            clean=(_f("Measurement", "result_name"), _f("Value", "result_value")),
            item="result_name",
        ),
        EventTable(
            "poe",
            "hosp",
            "ordertime",
            TIME_EXACT,
            "Provider Order Entry",
            "Provider Order Entry",
            ehr_r1=(_f("order_type"), _f("order_subtype")),
            clean=(_f("Order Type", "order_type"), _f("Order Subtype", "order_subtype")),
            item="order_type",
        ),
        EventTable(
            "prescriptions",
            "hosp",
            "starttime",
            TIME_EXACT,
            "Prescriptions",
            "Prescriptions",
            ehr_r1=(_f("drug"), _ATC, _f("prod_strength"), _f("dose_val_rx"), _f("dose_unit_rx")),
            clean=(
                _f("Drug", "drug"),
                _f("ATC Class", "atc_name", LOOKUP),
                _f("Strength", "prod_strength"),
                _f("Dose", "dose_val_rx"),
                _f("Dose Unit", "dose_unit_rx"),
                _f("Route", "route"),
            ),
            item="drug",
            code="ndc",
        ),
        EventTable(
            # the order's entry time, as the reference; `status` is the order's final status, known only later
            "pharmacy",
            "hosp",
            "entertime",
            TIME_EXACT,
            "Pharmacy",
            "Pharmacy",
            ehr_r1=(_f("medication"), _f("proc_type"), _f("status")),
            clean=(
                _f("Medication", "medication"),
                _f("Dispensing Type", "proc_type"),
                _f("Route", "route"),
                _f("Frequency", "frequency"),
            ),
            item="medication",
        ),
        EventTable(
            "emar",
            "hosp",
            "charttime",
            TIME_EXACT,
            "Electronic Medication Administration Record",
            "Electronic Medicine Administration Record",
            ehr_r1=(_f("medication"), _f("event_txt")),
            clean=(_f("Medication", "medication"), _f("Event", "event_txt")),
            item="medication",
        ),
        EventTable(
            "labevents",
            "hosp",
            "charttime",
            TIME_EXACT,
            "Laboratory Test Events",
            "Labotary Test Events",
            ehr_r1=(
                _ITEM,
                _f("valuenum", kind=NUMBER),
                _f("valueuom"),
                _f("ref_range_lower", kind=NUMBER),
                _f("ref_range_upper", kind=NUMBER),
                _f("flag"),
                _f("comments"),
            ),
            clean=(
                _f("Item", "item_name", LOOKUP),
                _f("Value", "lab_value"),
                _f("Unit", "valueuom"),
                _f("Range Low", "ref_range_lower", NUMBER),
                _f("Range High", "ref_range_upper", NUMBER),
                _f("Flag", "flag"),
                _f("Comments", "comments"),
            ),
            item="item_name",
            code="itemid",
        ),
        EventTable(
            "microbiologyevents",
            "hosp",
            "charttime",
            TIME_EXACT,
            "Microbiology Test Events",
            "Microbiology Test Events",
            ehr_r1=(
                _f("test_name"),
                _f("dilution_text"),
                _f("interpretation"),
                _f("comments"),
                _f("ab_name"),
            ),
            clean=(
                _f("Test", "test_name"),
                _f("Specimen", "spec_type_desc"),
                _f("Organism", "org_name"),
                _f("Antibiotic", "ab_name"),
                _f("Dilution", "dilution_text"),
                _f("Interpretation", "interpretation"),
                _f("Comments", "comments"),
            ),
            item="test_name",
            code="test_itemid",
        ),
        EventTable(
            "procedures_icd",
            "hosp",
            "chartdate",
            TIME_DATE,
            "Procedures (ICD)",
            "Procedures on International Classification of Diseases",
            ehr_r1=(_f("procedures", "icd_name", LOOKUP), _CCS),
            clean=(_f("Procedure", "icd_name", LOOKUP), _f("CCS Category", "ccs_name", LOOKUP)),
            item="icd_name",
            code="icd_key",
        ),
        EventTable(
            "hcpcsevents",
            "hosp",
            "chartdate",
            TIME_DATE,
            "HCPCS Events",
            None,
            ehr_r1=(),
            clean=(_f("Service", "hcpcs_name"),),
            item="hcpcs_name",
            code="hcpcs_cd",
        ),
        EventTable(
            # coded for billing after discharge: placed at the admission's dischtime
            "diagnoses_icd",
            "hosp",
            "dischtime",
            TIME_DERIVED,
            "Diagnoses (ICD)",
            "Diagnoses on International Classification of Diseases",
            ehr_r1=(_f("diagnoses", "icd_name", LOOKUP), _CCS),
            clean=(_f("Diagnosis", "icd_name", LOOKUP), _f("CCS Category", "ccs_name", LOOKUP)),
            item="icd_name",
            code="icd_key",
            ehr_r1_dated=False,
        ),
        EventTable(
            "drgcodes",
            "hosp",
            "dischtime",
            TIME_DERIVED,
            "DRG Codes",
            None,
            ehr_r1=(),
            clean=(_f("DRG Type", "drg_type"), _f("Description", "description")),
            item="description",
            code="drg_code",
            ehr_r1_dated=False,
        ),
        # ---------------------------------------------------------------- ed
        EventTable(
            "edstays",
            "ed",
            "intime",
            TIME_EXACT,
            "ED Stay",
            "EDstays",
            ehr_r1=(_f("gender"), _f("race")),
            clean=(_f("Arrival Transport", "arrival_transport"), _f("Race", "race")),
        ),
        EventTable(
            # triage has no time column: the reference puts it one second after ED arrival
            "triage",
            "ed",
            "triage_time",
            TIME_DERIVED,
            "ED Triage",
            "Triage",
            ehr_r1=_VITALS_EHR_R1
            + (_f("pain"), _f("acuity", kind=NUMBER), _f("chiefcomplaint")),
            clean=_VITALS_CLEAN
            + (
                _f("Acuity", "acuity", NUMBER),
                _f("Chief Complaint", "chiefcomplaint"),
            ),
            item="chiefcomplaint",
        ),
        EventTable(
            "medrecon",
            "ed",
            "charttime",
            TIME_EXACT,
            "ED Medication Reconciliation",
            "Medrecon",
            ehr_r1=(_f("name"), _ATC),
            clean=(_f("Medication", "name"), _f("ATC Class", "atc_name", LOOKUP)),
            item="name",
            code="ndc",
        ),
        EventTable(
            "pyxis",
            "ed",
            "charttime",
            TIME_EXACT,
            "ED Medication Dispensing",
            "Pyxis",
            ehr_r1=(_f("name"),),
            clean=(_f("Medication", "name"),),
            item="name",
            code="gsn",
        ),
        EventTable(
            "vitalsign",
            "ed",
            "charttime",
            TIME_EXACT,
            "ED Vital Signs",
            "Vitalsign",
            ehr_r1=_VITALS_EHR_R1
            + (_f("pain"), _f("rhythm")),
            clean=_VITALS_CLEAN + (_f("Rhythm", "rhythm"),),
        ),
        EventTable(
            # the ED diagnoses have no time column: the reference puts them at ED departure
            "diagnosis",
            "ed",
            "ed_outtime",
            TIME_DERIVED,
            "ED Diagnoses (ICD)",
            "ED Diagnoses on International Classification of Diseases",
            ehr_r1=(_f("icd_title"), _CCS),
            clean=(_f("Diagnosis", "icd_title"), _f("CCS Category", "ccs_name", LOOKUP)),
            item="icd_title",
            code="icd_key",
        ),
        # ---------------------------------------------------------------- icu
        EventTable(
            "icustays",
            "icu",
            "intime",
            TIME_EXACT,
            "ICU Stay",
            "ICUstays",
            ehr_r1=(),
            clean=(_f("Care Unit", "first_careunit"),),
            item="first_careunit",
        ),
        EventTable(
            "chartevents",
            "icu",
            "charttime",
            TIME_EXACT,
            "Chart Events",
            "Chart Events",
            ehr_r1=(_ITEM, _f("valuenum", kind=NUMBER), _f("valueuom"), _f("warning", kind=NUMBER)),
            clean=(_f("Item", "item_name", LOOKUP), _f("Value", "chart_value"), _f("Unit", "valueuom")),
            item="item_name",
            code="itemid",
        ),
        EventTable(
            "datetimeevents",
            "icu",
            "charttime",
            TIME_EXACT,
            "Datetime Events",
            "Datetime Events",
            ehr_r1=(_ITEM,),
            clean=(_f("Item", "item_name", LOOKUP), _f("Value", "datetime_value")),
            item="item_name",
            code="itemid",
        ),
        EventTable(
            "procedureevents",
            "icu",
            "starttime",
            TIME_EXACT,
            "ICU Procedure Events",
            "Procedure Events",
            ehr_r1=(_ITEM, _f("value", kind=NUMBER), _f("valueuom"), _f("location"), _f("locationcategory")),
            clean=(
                _f("Item", "item_name", LOOKUP),
                _f("Value", "value", NUMBER),
                _f("Unit", "valueuom"),
                _f("Location", "location"),
                _f("Location Category", "locationcategory"),
            ),
            item="item_name",
            code="itemid",
        ),
        EventTable(
            "inputevents",
            "icu",
            "starttime",
            TIME_EXACT,
            "Input Events",
            "Input Events",
            ehr_r1=_INFUSION_EHR_R1,
            clean=_INFUSION_CLEAN,
            item="item_name",
            code="itemid",
        ),
        EventTable(
            "ingredientevents",
            "icu",
            "starttime",
            TIME_EXACT,
            "Ingredient Events",
            "Ingredient Events",
            ehr_r1=_INFUSION_EHR_R1,
            clean=_INFUSION_CLEAN,
            item="item_name",
            code="itemid",
        ),
        EventTable(
            "outputevents",
            "icu",
            "charttime",
            TIME_EXACT,
            "Output Events",
            "Output Events",
            ehr_r1=(_ITEM, _f("value", kind=NUMBER), _f("valueuom")),
            clean=(_f("Item", "item_name", LOOKUP), _f("Value", "value", NUMBER), _f("Unit", "valueuom")),
            item="item_name",
            code="itemid",
        ),
        # ---------------------------------------------------------------- note
        EventTable(
            "radiology",
            "note",
            "charttime",
            TIME_EXACT,
            "Radiology Report",
            "Radiology Examinations",
            ehr_r1=(_f("note_type"), _f("exam_name", "exam_names", LIST), _f("text")),
            clean=(_f("Exam", "exam_names", LIST), _f("Report", "text", BLOCK)),
            item="exam_names",
        ),
        EventTable(
            "discharge",
            "note",
            "charttime",
            TIME_EXACT,
            "Discharge Summary",
            "Discharge",
            ehr_r1=(_f("note_type"), _f("text")),
            clean=(_f("Summary", "text", BLOCK),),
        ),
    )
}

# Order of tables whose rows share a timestamp: the admission opens, diagnoses close.
TABLE_ORDER: tuple[str, ...] = (
    "admissions",
    "edstays",
    "triage",
    "transfers",
    "icustays",
    "services",
    "omr",
    "poe",
    "prescriptions",
    "pharmacy",
    "emar",
    "labevents",
    "microbiologyevents",
    "medrecon",
    "pyxis",
    "vitalsign",
    "procedures_icd",
    "hcpcsevents",
    "chartevents",
    "datetimeevents",
    "procedureevents",
    "inputevents",
    "ingredientevents",
    "outputevents",
    "radiology",
    "discharge",
    "diagnosis",
    "diagnoses_icd",
    "drgcodes",
)
assert set(TABLE_ORDER) == set(EVENT_TABLES)
TABLE_RANK: dict[str, int] = {name: rank for rank, name in enumerate(TABLE_ORDER)}

DEMOGRAPHICS_EHR_R1 = ("anchor_age", "gender")  # the reference's patient keys, printed as key.title()
EHR_R1_DEMOGRAPHICS_NAME = "Patient Demographics"

# Strings pandas.read_csv reads as missing (its default na_values): the reference printed them as "nan".
PANDAS_NA_STRINGS = (
    "",
    "#N/A",
    "#N/A N/A",
    "#NA",
    "-1.#IND",
    "-1.#QNAN",
    "-NaN",
    "-nan",
    "1.#IND",
    "1.#QNAN",
    "<NA>",
    "N/A",
    "NA",
    "NULL",
    "NaN",
    "None",
    "n/a",
    "nan",
    "null",
)


def check_tables(names, where: str) -> list[str]:
    """``names`` if every one is a timeline table, else the ConfigError that lists them."""
    from graphkit.errors import ConfigError

    for name in names:
        if name not in EVENT_TABLES:
            raise ConfigError("is not a timeline table", where=where, value=name,
                              fix=f"use some of: {', '.join(TABLE_ORDER)}")
    return list(names)
