"""Records are the same whether read from a PhysioNet folder or from its `ehr convert` copy in shards."""

from __future__ import annotations

import polars as pl
import pytest

from graphkit.ehr.convert import convert
from graphkit.ehr.serialize import Serializer
from graphkit.ehr.source import open_source
from graphkit.ehr.timeline import iter_timelines, load_lookups


@pytest.fixture(scope="module")
def converted(tmp_path_factory, demo_dir):
    out = tmp_path_factory.mktemp("records") / "demo-parquet"
    convert(demo_dir, out, n_shards=3)
    return open_source(out)


def _all_admissions(source, style: str, exclude: list[str]) -> tuple[pl.DataFrame, pl.DataFrame, dict]:
    lookups = load_lookups(source)
    texts, events, undated = [], [], {}
    for timeline in iter_timelines(source, definition=style, lookups=lookups):
        windows = timeline.admissions.select("subject_id", "hadm_id")
        # the newest 3,000 tokens of each admission: the events frames below compare everything else
        texts.append(Serializer(timeline, style=style).serialize_many(windows, exclude_tables=exclude, max_tokens=3000)
                     .select("subject_id", "hadm_id", "text"))
        events.append(timeline.events.drop("event_id"))
        for table, n in timeline.undated.items():
            undated[table] = undated.get(table, 0) + n
    return pl.concat(texts).sort("subject_id", "hadm_id"), pl.concat(events), undated


@pytest.mark.parametrize("style", ["clean", "ehr-r1"])
def test_raw_and_converted_sources_give_the_same_records(converted, demo_dir, style):
    assert converted.n_shards == 3
    raw_texts, raw_events, raw_undated = _all_admissions(open_source(demo_dir), style, ["pharmacy"])
    conv_texts, conv_events, conv_undated = _all_admissions(converted, style, ["pharmacy"])
    assert raw_texts.height == conv_texts.height == 275
    assert raw_texts.equals(conv_texts)
    assert raw_undated == conv_undated
    order = ["subject_id", "time", "table", "hadm_id", "n_rows"]
    pharmacy = pl.col("table") == "pharmacy"
    assert raw_events.filter(~pharmacy).sort(order).equals(conv_events.filter(~pharmacy).sort(order))
    unordered = [pl.col("items").list.sort(), pl.col("codes").list.sort()]  # see the next test
    assert raw_events.filter(pharmacy).with_columns(unordered).sort(order).equals(
        conv_events.filter(pharmacy).with_columns(unordered).sort(order))


def test_pharmacy_rows_are_the_same_in_both_sources(converted, demo_dir):
    # Converted shards are sorted by the schema's pharmacy time (starttime) and the timeline places
    # pharmacy rows at entertime (as the reference), so rows sharing an entertime may come in another
    # order; their content must not differ.
    def rows(source) -> list[str]:
        lines = []
        for tl in iter_timelines(source, tables=["pharmacy"]):
            text = Serializer(tl).render_events(tl.events["event_id"])["text"]
            lines += [line for block in text.to_list() for line in block.splitlines()]
        return sorted(lines)

    assert rows(open_source(demo_dir)) == rows(converted)


def test_subject_batches_cover_the_shards_exactly(converted):
    lookups = load_lookups(converted)
    whole = list(iter_timelines(converted, lookups=lookups, batch_subjects=None))
    batched = list(iter_timelines(converted, lookups=lookups, batch_subjects=7))
    assert len(whole) == 3 and len(batched) > len(whole)
    order = ["subject_id", "time", "table", "hadm_id"]
    events = [pl.concat([t.events.drop("event_id") for t in part]).sort(order) for part in (whole, batched)]
    assert events[0].equals(events[1])
    subjects = [t.patients["subject_id"].to_list() for t in batched]
    assert all(len(s) <= 7 for s in subjects) and sum(len(s) for s in subjects) == 100
