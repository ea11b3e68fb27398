"""The ehr-r1 style against an independent, plain emulation of the reference's printer, table by table.

The emulation restates what the reference (MAGIC-AI4Med/EHR-R1: preprocess/merge_patient.py,
combination.py, mimiciv_dataset/input_format.py) does to a row: every CSV read by
``pandas.read_csv`` with its defaults, every value turned into text with ``str()`` (a missing
value prints ``nan``, a number of a column with gaps ``100.0``), codes looked up in dictionaries
keyed by ``str(code)`` (``None`` when absent), and an event printed as ``## <name> [<time>]`` then
``- Key.title(): value`` for one row or a markdown table for several. It runs on sampled events of
every table of the demo and of the hand-made ED and note tables, and must match our text exactly.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from graphkit.ehr.serialize import Serializer
from graphkit.ehr.source import open_source
from graphkit.ehr.timeline import build_timeline
from tests.records_data import demo_timeline, with_ed_and_notes

pd = pytest.importorskip("pandas")

# table: (event name, info keys), as the reference's MIMICIVStringConvertor lists them
REFERENCE = {
    "omr": ("Online Medical Record", ["result_name", "result_value"]),
    "pharmacy": ("Pharmacy", ["medication", "proc_type", "status"]),
    "prescriptions": ("Prescriptions", ["drug", "ATC Type", "prod_strength", "dose_val_rx", "dose_unit_rx"]),
    "poe": ("Provider Order Entry", ["order_type", "order_subtype"]),
    "procedures_icd": ("Procedures on International Classification of Diseases", ["procedures", "CCS Type"]),
    "services": ("Services", ["curr_service"]),
    "labevents": ("Labotary Test Events", ["item_name", "valuenum", "valueuom", "ref_range_lower",
                                           "ref_range_upper", "flag", "comments"]),
    "microbiologyevents": ("Microbiology Test Events", ["test_name", "dilution_text", "interpretation", "comments",
                                                        "ab_name"]),
    "admissions": ("Admissions", ["admission_type", "admission_location", "admission_info"]),
    "transfers": ("Transfers", ["eventtype", "careunit"]),
    "emar": ("Electronic Medicine Administration Record", ["medication", "event_txt"]),
    "diagnoses_icd": ("Diagnoses on International Classification of Diseases", ["diagnoses", "CCS Type"]),
    "radiology": ("Radiology Examinations", ["note_type", "exam_name", "text"]),
    "discharge": ("Discharge", ["note_type", "text"]),
    "edstays": ("EDstays", ["gender", "race"]),
    "triage": ("Triage", ["temperature", "heartrate", "resprate", "o2sat", "sbp", "dbp", "pain", "acuity",
                          "chiefcomplaint"]),
    "medrecon": ("Medrecon", ["name", "ATC Type"]),
    "pyxis": ("Pyxis", ["name"]),
    "vitalsign": ("Vitalsign", ["temperature", "heartrate", "resprate", "o2sat", "sbp", "dbp", "pain", "rhythm"]),
    "diagnosis": ("ED Diagnoses on International Classification of Diseases", ["icd_title", "CCS Type"]),
    "icustays": ("ICUstays", []),
    "chartevents": ("Chart Events", ["item_name", "valuenum", "valueuom", "warning"]),
    "ingredientevents": ("Ingredient Events", ["item_name", "amount", "amountuom", "rate", "rateuom"]),
    "datetimeevents": ("Datetime Events", ["item_name"]),
    "procedureevents": ("Procedure Events", ["item_name", "value", "valueuom", "location", "locationcategory"]),
    "inputevents": ("Input Events", ["item_name", "amount", "amountuom", "rate", "rateuom"]),
    "outputevents": ("Output Events", ["item_name", "value", "valueuom"]),
}
NO_PRINTER = ("hcpcsevents", "drgcodes")  # in the timeline, but the reference prints nothing for them
TIME_COLUMN = {
    "omr": "chartdate", "pharmacy": "entertime", "poe": "ordertime", "procedures_icd": "chartdate",
    "prescriptions": "starttime", "services": "transfertime", "labevents": "charttime",
    "microbiologyevents": "charttime", "admissions": "admittime", "transfers": "intime", "emar": "charttime",
    "radiology": "charttime", "discharge": "charttime", "edstays": "intime", "medrecon": "charttime",
    "pyxis": "charttime", "vitalsign": "charttime", "icustays": "intime", "chartevents": "charttime",
    "ingredientevents": "starttime", "datetimeevents": "charttime", "procedureevents": "starttime",
    "inputevents": "starttime", "outputevents": "charttime",
}
PER_TABLE = 60  # sampled events per table and per shape (one row, several rows)


class ReferencePrinter:
    def __init__(self, root: Path):
        self.root = root
        self._frames: dict[str, object] = {}
        labels = self.frame("hosp", "d_labitems")
        self.lab = {str(r.itemid): f"{r.label}" for r in labels.itertuples()}
        items = self.frame("icu", "d_items")
        self.icu = {str(r.itemid): f"{r.label}" for r in items.itertuples()}
        self.icd = {}
        for table in ("d_icd_diagnoses", "d_icd_procedures"):
            index = {"9": {}, "10": {}}
            for r in self.frame("hosp", table).itertuples():
                index[str(r.icd_version)][str(r.icd_code)] = r.long_title
            self.icd[table] = index

    def frame(self, module: str, table: str):
        if table not in self._frames:
            path = next(self.root.joinpath(module).glob(f"{table}.csv*"))
            self._frames[table] = pd.read_csv(path)
        return self._frames[table]

    def rows(self, module: str, table: str, row_numbers: list[int]) -> list[dict]:
        frame = self.frame(module, table)
        return [{key: str(value) for key, value in frame.iloc[i].to_dict().items()} for i in row_numbers]

    def time(self, table: str, first: dict) -> str:
        if table == "diagnoses_icd":
            return "None"
        if table in ("triage", "diagnosis"):
            stays = self.frame("ed", "edstays")
            stay = stays[stays["stay_id"] == int(first["stay_id"])].iloc[0]
            if table == "diagnosis":
                return stay["outtime"]
            return (dt.datetime.fromisoformat(stay["intime"]) + dt.timedelta(seconds=1)).strftime("%Y-%m-%d %H:%M:%S")
        text = first[TIME_COLUMN[table]]
        return text + " 00:00:00" if len(text) == 10 else text

    def map_items(self, table: str, items: list[dict]) -> None:
        for item in items:
            if table == "labevents":
                item["item_name"] = self.lab.get(item["itemid"], None)
            elif "itemid" in item and table in REFERENCE and "item_name" in REFERENCE[table][1]:
                item["item_name"] = self.icu.get(item["itemid"], None)
            elif table in ("diagnoses_icd", "procedures_icd"):
                index = self.icd["d_icd_diagnoses" if table == "diagnoses_icd" else "d_icd_procedures"]
                item["diagnoses" if table == "diagnoses_icd" else "procedures"] = index[item["icd_version"]].get(
                    item["icd_code"], None)
            elif table == "radiology":
                detail = self.frame("note", "radiology_detail")
                names = detail[(detail["note_id"] == item["note_id"]) & (detail["field_name"] == "exam_name")]
                item["exam_name"] = list(dict.fromkeys(names["field_value"])) if len(names) else None

    def text(self, module: str, table: str, row_numbers: list[int]) -> str:
        if table in NO_PRINTER:
            return ""
        name, keys = REFERENCE[table]
        items = self.rows(module, table, row_numbers)
        self.map_items(table, items)
        title = f"## {name} [{self.time(table, items[0])}]"
        if len(items) == 1:
            lines = [f"- {key.title()}: {items[0].get(key, None)}" for key in keys]
        else:
            lines = ["| " + " | ".join(key.title() for key in keys) + " |",
                     "| " + " | ".join(["------"] * len(keys)) + " |"]
            lines += ["| " + " | ".join(str(item.get(key, None)) for key in keys) + " |" for item in items]
        return title + "\n" + "\n".join(lines)


def _compare(root: Path, timeline) -> set[str]:
    printer = ReferencePrinter(root)
    serializer = Serializer(timeline, style="ehr-r1")
    checked = set()
    for table, rows in timeline.rows.items():
        events = timeline.events.filter(pl.col("table") == table)
        sample = pl.concat([
            shape.gather_every(max(1, shape.height // PER_TABLE))
            for shape in (events.filter(pl.col("n_rows") == 1), events.filter(pl.col("n_rows") > 1))
        ])
        ours = serializer.render_events(sample["event_id"])
        module = str(sample["module"][0])
        for event_id, text in ours.select("event_id", "text").iter_rows():
            row_numbers = rows.filter(pl.col("event_id") == event_id).sort("pos")["row_nr"].to_list()
            assert text == printer.text(module, table, row_numbers), (table, event_id)
        checked.add(table)
    return checked


def test_every_demo_table_prints_as_the_reference(demo_dir):
    checked = _compare(demo_dir, demo_timeline("ehr-r1"))
    assert checked >= {"labevents", "prescriptions", "microbiologyevents", "omr", "procedures_icd", "diagnoses_icd",
                       "inputevents", "outputevents", "procedureevents", "datetimeevents", "icustays",
                       "ingredientevents", "emar", "pharmacy", "poe", "services", "transfers", "admissions",
                       "hcpcsevents", "drgcodes"}


def test_ed_and_note_tables_print_as_the_reference(tmp_path, demo_dir):
    root = with_ed_and_notes(demo_dir, tmp_path / "mimic")
    timeline = build_timeline(open_source(root), subjects=[10001217], definition="ehr-r1",
                              tables=["edstays", "triage", "vitalsign", "medrecon", "pyxis", "diagnosis", "radiology",
                                      "discharge"])
    assert _compare(root, timeline) == {"edstays", "triage", "vitalsign", "medrecon", "pyxis", "diagnosis",
                                        "radiology", "discharge"}
