"""Shared data of the records tests: the demo timelines (built once) and hand-made ED and note tables.

The demo has neither ED nor notes. Subject 10001217 came through the ED before admission 24597018 and was readmitted (27703517);
the tables below give that ED stay and the notes of both admissions, so the tests can check the
ED links, the reference's ED times and the previous discharge summary.
"""

from __future__ import annotations

import functools
from pathlib import Path

from tests.ehr_demo_copy import demo_copy

DEMO_DIR = Path(__file__).resolve().parents[1] / "graphkit" / "data" / "mimic-iv-demo"

SUBJECT = 10001217
FIRST_ADMISSION = 24597018
SECOND_ADMISSION = 27703517
ED_STAY = 30000001

ED_TABLES = {
    "edstays": (
        "subject_id,hadm_id,stay_id,intime,outtime,gender,race,arrival_transport,disposition\n"
        "10001217,24597018,30000001,2157-11-18 17:30:00,2157-11-18 23:10:00,F,WHITE,AMBULANCE,ADMITTED\n"
    ),
    "triage": (
        "subject_id,stay_id,temperature,heartrate,resprate,o2sat,sbp,dbp,pain,acuity,chiefcomplaint\n"
        "10001217,30000001,98.6,88,16,97,130,80,8,2,Headache\n"
    ),
    "vitalsign": (
        "subject_id,stay_id,charttime,temperature,heartrate,resprate,o2sat,sbp,dbp,rhythm,pain\n"
        "10001217,30000001,2157-11-18 19:00:00,98.1,84,18,98,128,,Sinus Rhythm,6\n"
        "10001217,30000001,2157-11-18 21:00:00,,80,16,99,125,75,,UA\n"
    ),
    "medrecon": (
        "subject_id,stay_id,charttime,name,gsn,ndc,etc_rn,etccode,etcdescription\n"
        "10001217,30000001,2157-11-18 18:20:00,levetiracetam,016431,00378562093,1,00000123,Anticonvulsant\n"
        "10001217,30000001,2157-11-18 18:20:00,aspirin,004380,00904198261,1,00000456,Salicylate\n"
    ),
    "pyxis": (
        "subject_id,stay_id,charttime,med_rn,name,gsn_rn,gsn\n"
        "10001217,30000001,2157-11-18 18:45:00,1,Ondansetron,1,061716\n"
    ),
    "diagnosis": (
        "subject_id,stay_id,seq_num,icd_code,icd_version,icd_title\n"
        "10001217,30000001,1,R51,10,HEADACHE\n"
        "10001217,30000001,2,G40909,10,\"EPILEPSY, UNSP\"\n"
    ),
}

NOTE_TABLES = {
    "discharge": (
        "note_id,subject_id,hadm_id,note_type,note_seq,charttime,storetime,text\n"
        "10001217-DS-1,10001217,24597018,DS,1,2157-11-25 19:00:00,2157-11-25 20:00:00,"
        "\"Name: ___\nDischarge Diagnosis: brain abscess\nFollow-up in clinic.\"\n"
        "10001217-DS-2,10001217,27703517,DS,2,2157-12-24 16:00:00,2157-12-24 17:00:00,\"Second stay.\"\n"
    ),
    "radiology": (
        "note_id,subject_id,hadm_id,note_type,note_seq,charttime,storetime,text\n"
        "10001217-RR-1,10001217,27703517,RR,1,2157-12-19 10:00:00,2157-12-19 11:00:00,"
        "\"EXAMINATION: CT head.\nIMPRESSION: Stable postoperative changes.\"\n"
        "10001217-RR-2,10001217,,RR,2,2157-12-30 09:00:00,2157-12-30 10:00:00,\"Outpatient film.\"\n"
    ),
    "radiology_detail": (
        "note_id,subject_id,field_name,field_value,field_ordinal\n"
        "10001217-RR-1,10001217,exam_name,CT HEAD W/O CONTRAST,1\n"
        "10001217-RR-1,10001217,exam_code,CTHEAD,1\n"
    ),
}


def with_ed_and_notes(demo_dir: Path, target: Path) -> Path:
    """A demo copy (symlinked hosp/ icu/) plus the ED and note tables above."""
    demo_copy(demo_dir, target)
    for module, tables in (("ed", ED_TABLES), ("note", NOTE_TABLES)):
        (target / module).mkdir()
        for name, text in tables.items():
            (target / module / f"{name}.csv").write_text(text, encoding="utf-8")
    return target


@functools.cache
def demo_lookups():
    from graphkit.ehr.source import open_source
    from graphkit.ehr.timeline import load_lookups

    return load_lookups(open_source(DEMO_DIR))


@functools.cache
def demo_timeline(definition: str):
    """The whole demo's timeline, built once per test session and definition (read-only)."""
    from graphkit.ehr.timeline import build_timeline

    lookups = demo_lookups()
    return build_timeline(lookups.source, definition=definition, lookups=lookups)
