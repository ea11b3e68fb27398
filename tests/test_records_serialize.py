"""The record serializer on the genuine MIMIC-IV demo: the reference's exact text, clean goldens, windows,
truncation and hand-made edge cases.

Goldens live in tests/golden/records/; after a deliberate format change, regenerate them with
``EHR_R1_UPDATE_GOLDEN=1 python -m pytest tests/test_records_serialize.py`` and review the diff.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import polars as pl
import pytest

from graphkit.ehr.serialize import RESULT_COLUMNS, Serializer, user_message
from graphkit.ehr.source import open_source
from graphkit.ehr.timeline import build_timeline
from graphkit.errors import ConfigError, InputError
from tests.ehr_demo_copy import demo_copy, read_csv_gz, write_csv_gz
from tests.records_data import FIRST_ADMISSION, SECOND_ADMISSION, SUBJECT, demo_timeline, with_ed_and_notes

EXAMPLE = Path("/work/shared/examples/ehr-r1-format/labevents_10001217_24597018.txt")
GOLDEN = Path(__file__).parent / "golden" / "records"
LAB_WINDOW = dict(subject_id=SUBJECT, hadm_id=FIRST_ADMISSION, start=dt.datetime(2157, 11, 19, 8, 14),
                  end=dt.datetime(2157, 11, 20, 8, 14))
ICU_SUBJECT, ICU_ADMISSION = 10019917, 22585261


@pytest.fixture(scope="module")
def clean():
    return Serializer(demo_timeline("clean"), style="clean")


@pytest.fixture(scope="module")
def reference():
    return Serializer(demo_timeline("ehr-r1"), style="ehr-r1")


def _golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("EHR_R1_UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), f"{name} differs from its golden"


# ---------------------------------------------------------------- the reference's exact text
def test_reproduces_the_reference_input_byte_for_byte(reference):
    if EXAMPLE.exists():
        expected = EXAMPLE.read_text(encoding="utf-8")
    else:  # the same bytes, committed, for machines without ../shared
        expected = (GOLDEN / "ehr-r1_labevents_10001217_24597018.txt").read_text(encoding="utf-8")
    instruction = expected.rsplit("\n", 1)[1]
    record = reference.serialize(**LAB_WINDOW)
    assert user_message(record.text, instruction) == expected
    assert record.n_events == 15 and not record.truncated
    _golden("ehr-r1_labevents_10001217_24597018.txt", expected)


def test_reference_style_prints_icu_tables_as_the_reference(reference):
    start = dt.datetime(2182, 1, 7, 23, 26, 32)
    record = reference.serialize(ICU_SUBJECT, ICU_ADMISSION, start, start + dt.timedelta(hours=3))
    _golden("ehr-r1_icu_10019917_22585261.txt", record.text)
    assert "## ICUstays [2182-01-07 23:26:32]\n\n\n" in record.text  # the reference prints no field for it
    assert "| Item_Name | Amount | Amountuom | Rate | Rateuom |" in record.text


# ---------------------------------------------------------------- clean goldens
GOLDEN_WINDOWS = {
    "clean_labevents_10001217_24597018.txt": LAB_WINDOW,
    "clean_icu_10019917_22585261.txt": dict(subject_id=ICU_SUBJECT, hadm_id=ICU_ADMISSION,
                                            start=dt.datetime(2182, 1, 7, 23, 26, 32),
                                            end=dt.datetime(2182, 1, 8, 11, 26, 32)),
    "clean_discharge_10019917_22585261.txt": dict(subject_id=ICU_SUBJECT, hadm_id=ICU_ADMISSION,
                                                  start=dt.datetime(2182, 1, 10, 4), end=dt.datetime(2182, 1, 10, 17)),
}


@pytest.mark.parametrize("name", sorted(GOLDEN_WINDOWS))
def test_clean_goldens(clean, name):
    record = clean.serialize(**GOLDEN_WINDOWS[name])
    _golden(name, record.text)


def test_clean_style_has_no_missing_markers_and_correct_names(clean, reference):
    text = clean.serialize(**LAB_WINDOW).text
    for marker in ("nan", "None", "Labotary", "[None]"):
        assert marker not in text
    assert "## Patient Demographics\n- Age: 55\n- Gender: Female" in text
    # every admission of the demo, whole: no cell or value is a missing marker
    windows = demo_timeline("clean").admissions.select("subject_id", "hadm_id")
    texts = clean.serialize_many(windows)["text"]
    assert texts.str.contains(r"(: |\| )(nan|None)( \||\n|$)").sum() == 0
    assert texts.str.contains("Laboratory Test Events").sum() > 0
    assert reference.serialize_many(windows.head(20))["text"].str.contains("Labotary Test Events").sum() > 0


# ---------------------------------------------------------------- event layout
def test_single_row_events_are_key_lines_and_multi_row_events_tables(clean):
    text = clean.serialize(**LAB_WINDOW).text
    assert "## Provider Order Entry [2157-11-19 09:09:38]\n- Order Type: Consults\n- Order Subtype: Social Work\n" in text
    # two rows, the subtype column empty in both: dropped
    assert "## Provider Order Entry [2157-11-19 08:29:38]\n| Order Type |\n| ------ |\n| Lab |\n| Lab |\n" in text
    # nine rows, some subtypes empty: the column stays, the empty cells are blank
    assert "| Lab |  |\n| Radiology | MRI |" in text
    assert "## Procedures (ICD) [2157-11-20]\n- Procedure: Other incision of brain" in text  # a date, not 00:00:00


def test_an_empty_window_prints_the_header_only(clean, reference):
    empty = dict(subject_id=SUBJECT, hadm_id=FIRST_ADMISSION, start=dt.datetime(2157, 11, 19, 3),
                 end=dt.datetime(2157, 11, 19, 4))
    record = clean.serialize(**empty)
    assert record.n_events == 0 and record.event_ids == []
    assert record.text == ("## Patient Demographics\n- Age: 55\n- Gender: Female\n\n"
                           "## Admission [2157-11-18 22:56:00]\n- Admission Type: EW EMER.\n"
                           "- Admission Location: EMERGENCY ROOM")
    assert reference.serialize(**empty).text == (
        "## Patient Demographics [None]\n- Anchor_Age: 55\n- Gender: F\n\n\n\n"
        "## Admissions [2157-11-18 22:56:00]\n- Admission_Type: EW EMER.\n"
        "- Admission_Location: EMERGENCY ROOM\n- Admission_Info: None")
    before_admission = clean.serialize(SUBJECT, FIRST_ADMISSION, end=dt.datetime(2157, 11, 18, 12))
    assert before_admission.text == "## Patient Demographics\n- Age: 55\n- Gender: Female"


# ---------------------------------------------------------------- windows
def test_unlinked_events_between_the_admissions_events_are_included(clean):
    timeline = clean.timeline
    window = dict(subject_id=SUBJECT, hadm_id=FIRST_ADMISSION, start=dt.datetime(2157, 11, 18, 17),
                  end=dt.datetime(2157, 11, 19, 3))
    with_loose = clean.serialize(**window)
    strict = clean.serialize(**window, unlinked=False)
    chosen = timeline.events.filter(pl.col("event_id").is_in(with_loose.event_ids))
    loose = chosen.filter(pl.col("hadm_id").is_null())
    linked = chosen.filter(pl.col("hadm_id") == FIRST_ADMISSION)
    assert not loose.is_empty()  # the ED labs drawn before the admission got its id
    assert loose["time"].min() >= linked["time"].min() and loose["time"].max() <= linked["time"].max()
    assert set(strict.event_ids) == set(linked["event_id"].to_list())
    # a time range only, no admission: everything of the subject in it
    anything = clean.serialize(SUBJECT, start=window["start"], end=window["end"])
    assert set(anything.event_ids) >= set(with_loose.event_ids)


def test_exclude_tables_and_explicit_event_ids(clean):
    no_orders = clean.serialize(**LAB_WINDOW, exclude_tables=["poe"])
    assert "Provider Order Entry" not in no_orders.text and "Pharmacy" in no_orders.text
    full = clean.serialize(**LAB_WINDOW)
    explicit = clean.serialize(SUBJECT, FIRST_ADMISSION, event_ids=full.event_ids)
    assert explicit.text == full.text
    with pytest.raises(InputError, match="is not an event of this timeline"):
        clean.serialize(SUBJECT, event_ids=[10**9])
    with pytest.raises(ConfigError, match="is not a timeline table"):
        clean.serialize(**LAB_WINDOW, exclude_tables=["labs"])


def test_serialize_many_matches_one_by_one_and_keeps_order(clean):
    events = clean.timeline.events
    targets = events.filter((pl.col("table") == "labevents") & pl.col("hadm_id").is_not_null()).sample(
        40, seed=7, shuffle=True)
    windows = targets.select("subject_id", "hadm_id", (pl.col("time") - pl.duration(hours=24)).alias("start"),
                             pl.col("time").alias("end"), pl.col("event_id").alias("target"))
    windows = pl.concat([windows, windows.head(3).with_columns(pl.lit(None, dtype=pl.Int64).alias("hadm_id"))])
    many = clean.serialize_many(windows, max_tokens=1500)
    assert many.columns == windows.columns + list(RESULT_COLUMNS)
    assert many["target"].to_list() == windows["target"].to_list()
    for row in many.iter_rows(named=True):
        one = clean.serialize(row["subject_id"], row["hadm_id"], row["start"], row["end"], max_tokens=1500)
        assert (one.text, one.n_tokens, one.n_events, one.event_ids) == (
            row["text"], row["n_tokens"], row["n_events"], row["event_ids"])
        assert row["target"] not in row["event_ids"]  # end is exclusive: the target is never context
    budgets = windows.with_columns(pl.lit(800).alias("max_tokens"))
    assert (clean.serialize_many(budgets)["n_tokens"] <= 800).all()


# ---------------------------------------------------------------- truncation
def test_truncation_keeps_the_latest_whole_events(clean):
    window = dict(subject_id=SUBJECT, hadm_id=FIRST_ADMISSION)
    full = clean.serialize(**window)
    blocks = clean.render_events(full.event_ids)
    for budget in (400, 1500, 5000):
        cut = clean.serialize(**window, max_tokens=budget)
        assert cut.truncated and not cut.over_budget and cut.n_tokens <= budget
        assert cut.event_ids == full.event_ids[len(full.event_ids) - cut.n_events:]  # a suffix: the latest
        assert cut.n_events + cut.n_events_dropped == full.n_events
        kept = blocks.filter(pl.col("event_id").is_in(cut.event_ids))["text"].to_list()
        assert cut.text.endswith("\n\n".join(kept))  # whole blocks, none cut
        assert cut.text.startswith("## Patient Demographics\n- Age: 55")
        # one more event would not have fitted
        dropped = blocks.filter(pl.col("event_id") == full.event_ids[-cut.n_events - 1])["n_tokens"][0]
        assert cut.n_tokens + dropped + clean._separator_tokens > budget
    tiny = clean.serialize(**window, max_tokens=10)
    assert tiny.over_budget and tiny.n_events == 0
    assert tiny.text.startswith("## Patient Demographics") and "## Admission [" in tiny.text


def test_a_real_tokenizer_budget_is_checked_on_the_whole_text(demo_dir):
    def words(text: str) -> list[str]:
        return text.split()

    serializer = Serializer(demo_timeline("clean"), style="clean", tokenizer=words)
    assert serializer.counter.exact
    for budget in (120, 300, 900):
        record = serializer.serialize(SUBJECT, FIRST_ADMISSION, max_tokens=budget)
        assert record.n_tokens == len(words(record.text)) <= budget
        assert record.truncated


# ---------------------------------------------------------------- hand-made edge cases
def test_missing_dictionary_names(tmp_path, demo_dir):
    copy = demo_copy(demo_dir, tmp_path / "mimic")
    labitems = read_csv_gz(copy / "hosp" / "d_labitems.csv.gz")
    lines = [line for line in labitems.splitlines(keepends=True) if not line.startswith("50912,")]  # Creatinine
    write_csv_gz(copy / "hosp" / "d_labitems.csv.gz", "".join(lines))
    source = open_source(copy)
    at_target = dict(LAB_WINDOW, start=dt.datetime(2157, 11, 20, 8), end=dt.datetime(2157, 11, 20, 8, 15))
    reference = Serializer(build_timeline(source, subjects=[SUBJECT], definition="ehr-r1"), style="ehr-r1")
    clean = Serializer(build_timeline(source, subjects=[SUBJECT]), style="clean")
    text = reference.serialize(**at_target).text  # the reference prints a code missing from its lookup as None
    assert "\n| None | 0.7 | mg/dL | 0.4 | 1.1 | nan | POINT OF CARE." in text
    assert "\n| Estimated GFR (MDRD equation) | nan | nan | nan | nan | nan | Using this patient's" in text
    cleaned = clean.serialize(**at_target).text
    assert "None" not in cleaned and "| Estimated GFR (MDRD equation) |" in cleaned
    assert "\n|  | 0.7 | mg/dL |" in cleaned  # the row stays, its name is blank
    assert clean.timeline.subject_events(SUBJECT).filter(pl.col("time") == dt.datetime(2157, 11, 20, 8, 14))[
        "items"].to_list() == [["Estimated GFR (MDRD equation)"]]


def test_an_undated_row_is_never_printed(tmp_path, demo_dir):
    copy = demo_copy(demo_dir, tmp_path / "mimic")
    labs = read_csv_gz(copy / "hosp" / "labevents.csv.gz")
    line = next(row for row in labs.splitlines() if ",50912," in row and "2157-11-20 08:14:00" in row)
    write_csv_gz(copy / "hosp" / "labevents.csv.gz", labs.replace(line, line.replace("2157-11-20 08:14:00", "", 1)))
    source = open_source(copy)
    timeline = build_timeline(source, subjects=[SUBJECT])
    assert timeline.undated["labevents"] == 1
    record = Serializer(timeline).serialize(SUBJECT, FIRST_ADMISSION)
    target = timeline.subject_events(SUBJECT).filter(pl.col("time") == dt.datetime(2157, 11, 20, 8, 14))
    assert target["items"].to_list() == [["Estimated GFR (MDRD equation)"]]
    assert "| Creatinine | 0.7 |" not in record.text and "- Item: Estimated GFR (MDRD equation)" in record.text


def test_previous_discharge_summary_and_ed_blocks(tmp_path, demo_dir):
    source = open_source(with_ed_and_notes(demo_dir, tmp_path / "mimic"))
    second = dict(subject_id=SUBJECT, hadm_id=SECOND_ADMISSION, start=dt.datetime(2157, 12, 19),
                  end=dt.datetime(2157, 12, 19, 12))
    reference = Serializer(build_timeline(source, subjects=[SUBJECT], definition="ehr-r1"), style="ehr-r1")
    clean = Serializer(build_timeline(source, subjects=[SUBJECT]), style="clean")
    text = reference.serialize(**second).text
    assert text.startswith(
        "## Patient Demographics [None]\n- Anchor_Age: 55\n- Gender: F\n\n"
        "## Discharge [2157-11-25 19:00:00]\n- Note_Type: DS\n"
        "- Text: Name: ___\nDischarge Diagnosis: brain abscess\nFollow-up in clinic.\n\n## Admissions [")
    assert ("## Radiology Examinations [2157-12-19 10:00:00]\n- Note_Type: RR\n- Exam_Name: ['CT HEAD W/O CONTRAST']\n"
            "- Text: EXAMINATION: CT head.\nIMPRESSION: Stable postoperative changes.") in text
    cleaned = clean.serialize(**second).text
    assert ("## Discharge Summary [2157-11-25 19:00:00]\nName: ___\nDischarge Diagnosis: brain abscess\n"
            "Follow-up in clinic.\n\n## Admission [2157-12-18 16:58:00]") in cleaned
    assert "## Radiology Report [2157-12-19 10:00:00]\n- Exam: CT HEAD W/O CONTRAST\nEXAMINATION: CT head." in cleaned
    # within the first admission there is no earlier discharge summary
    first = clean.serialize(SUBJECT, FIRST_ADMISSION, end=dt.datetime(2157, 11, 19))
    assert "Discharge Summary" not in first.text
    # a tight budget drops the summary before any event
    budget = clean.serialize(**second).n_tokens - 5
    cut = clean.serialize(**second, max_tokens=budget)
    assert "Discharge Summary" not in cut.text and cut.n_events_dropped == 0 and cut.truncated

    ed = dict(subject_id=SUBJECT, hadm_id=FIRST_ADMISSION, start=dt.datetime(2157, 11, 18, 17),
              end=dt.datetime(2157, 11, 18, 23, 30))
    text = reference.serialize(**ed).text
    assert "## EDstays [2157-11-18 17:30:00]\n- Gender: F\n- Race: WHITE" in text
    assert ("## Triage [2157-11-18 17:30:01]\n- Temperature: 98.6\n- Heartrate: 88\n- Resprate: 16\n- O2Sat: 97\n"
            "- Sbp: 130\n- Dbp: 80\n- Pain: 8\n- Acuity: 2\n- Chiefcomplaint: Headache") in text
    assert ("## Medrecon [2157-11-18 18:20:00]\n| Name | Atc Type |\n| ------ | ------ |\n"
            "| levetiracetam | None |\n| aspirin | None |") in text
    assert ("| Temperature | Heartrate | Resprate | O2Sat | Sbp | Dbp | Pain | Rhythm |" not in text)  # two times: two events
    # pandas read heartrate (84, 80) as int64 and dbp (empty, 75) as float64: the reference printed 80 and 75.0
    assert ("## Vitalsign [2157-11-18 21:00:00]\n- Temperature: nan\n- Heartrate: 80\n- Resprate: 16\n- O2Sat: 99\n"
            "- Sbp: 125\n- Dbp: 75.0\n- Pain: UA\n- Rhythm: nan") in text
    assert ("## ED Diagnoses on International Classification of Diseases [2157-11-18 23:10:00]\n"
            "| Icd_Title | Ccs Type |\n| ------ | ------ |\n| HEADACHE | None |\n| EPILEPSY, UNSP | None |") in text
    cleaned = clean.serialize(**ed).text
    assert "## ED Triage [2157-11-18 17:30:01]\n- Temperature: 98.6\n- Heart Rate: 88\n" in cleaned
    assert "## ED Vital Signs [2157-11-18 21:00:00]\n- Heart Rate: 80\n- Respiratory Rate: 16\n" in cleaned


def test_unknown_ids_and_bad_arguments(clean):
    with pytest.raises(InputError, match="is not a patient"):
        clean.serialize(1)
    with pytest.raises(InputError, match="is not an admission of subject 10001217"):
        clean.serialize(SUBJECT, 42)
    with pytest.raises(ConfigError, match="style"):
        Serializer(clean.timeline, style="pretty")
    with pytest.raises(InputError, match="wrong shard or subject"):
        clean.serialize_many(pl.DataFrame({"subject_id": [SUBJECT, 7]}))
