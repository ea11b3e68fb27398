"""Patients, admissions, ward/ICU movements, services and ED visits of one chunk of patients.

Each synthetic admission copies the shape of a demo donor admission (type, locations, ED times,
ward and ICU movements, services, death, event counts), stretched in time by a factor near 1 and
moved onto the synthetic patient's own timeline; patients take their demographics, number of
admissions and outpatient activity from a demo donor patient. All times are epoch seconds here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from graphkit.ehr.synth import vocab
from graphkit.ehr.synth.pool import Counters
from graphkit.ehr.synth.profile import ICU_FAMILIES, Profile, run_number

DAY = 86_400
HOUR = 3_600
SUBJECT_BASE = 90_000_000  # far from real MIMIC-IV ids (10M-19M), so a mix-up is obvious
ED_UNIT = "Emergency Department"


@dataclass
class Skeleton:
    patients: pl.DataFrame  # p, subject_id, gender, anchor_*, dod, demographics, donor counts, died_at
    admissions: pl.DataFrame  # one row per admission: ids, times (s), donor a, scale j, flags
    transfers: pl.DataFrame  # subject_id, hadm_id, transfer_id, eventtype, careunit, intime, outtime (s)
    icustays: pl.DataFrame  # subject_id, hadm_id, stay_id, careunits, intime, outtime (s), n_<family>
    services: pl.DataFrame
    edstays: pl.DataFrame  # subject_id, hadm_id, stay_id, intime, outtime (s), disposition, died, ...


def minute(seconds: np.ndarray) -> np.ndarray:
    return (np.floor(np.asarray(seconds, dtype=np.float64) / 60) * 60).astype(np.int64)


def build_skeleton(
    profile: Profile, rng: np.random.Generator, first_patient: int, n_patients: int, counters: Counters
) -> Skeleton:
    patients = _patients(profile, rng, first_patient, n_patients)
    admissions = _admissions(profile, rng, patients, counters)
    transfers, icustays, admissions = _movements(profile, rng, admissions, counters)
    patients = _deaths(profile, rng, patients, admissions)
    services = _services(profile, admissions)
    edstays, ed_transfers = _ed_stays(profile, rng, patients, admissions, counters)
    transfers = pl.concat([transfers, ed_transfers], how="vertical_relaxed").sort(
        "subject_id", "intime", "_order"
    )
    return Skeleton(patients, admissions, transfers, icustays, services, edstays)


def _patients(profile: Profile, rng: np.random.Generator, first: int, count: int) -> pl.DataFrame:
    donors = profile.patients
    chosen = rng.integers(0, donors.height, count)
    frame = donors[chosen]
    return frame.with_columns(
        pl.Series("p", np.arange(count, dtype=np.int64)),
        pl.Series("subject_id", SUBJECT_BASE + first + 1 + np.arange(count, dtype=np.int64)),
        (pl.col("anchor_age") + pl.Series(rng.integers(-3, 4, count))).clip(18, 91).alias("anchor_age"),
        (pl.col("anchor_year") + pl.Series(rng.integers(-12, 13, count))).alias("anchor_year"),
        pl.Series("_first_shift", rng.integers(-30, 31, count) * DAY),
        pl.Series("_dies", rng.random(count) < profile.p_die_in_hospital),
    ).with_columns(
        (
            pl.datetime(pl.col("anchor_year"), 1, 1).dt.epoch("s")
            + (pl.col("first_off") + pl.col("_first_shift")).clip(0)
        ).alias("_start")
    )


def _admissions(
    profile: Profile, rng: np.random.Generator, patients: pl.DataFrame, counters: Counters
) -> pl.DataFrame:
    donors = profile.admissions
    n_adm = patients["n_admissions"].to_numpy().astype(np.int64)
    total = int(n_adm.sum())
    owner = np.repeat(np.arange(len(n_adm)), n_adm)
    k = np.arange(total) - np.repeat(np.cumsum(n_adm) - n_adm, n_adm)
    last = k == n_adm[owner] - 1
    died_flags = donors["died"].to_numpy()
    alive_pool = np.flatnonzero(~died_flags)
    dead_pool = np.flatnonzero(died_flags)
    a = alive_pool[rng.integers(0, len(alive_pool), total)]
    dying = last & patients["_dies"].to_numpy()[owner]
    a[dying] = dead_pool[rng.integers(0, len(dead_pool), int(dying.sum()))]

    scale = np.clip(np.exp(rng.normal(0.0, 0.2, total)), 0.6, 1.7)
    donor = donors[a]
    los = np.maximum(donor["los"].to_numpy() * scale, HOUR)
    ed_in = donor["ed_in"].to_numpy().astype(np.float64)
    ed_out = donor["ed_out"].to_numpy().astype(np.float64)
    has_ed = ~np.isnan(ed_in)
    ed_in = np.nan_to_num(ed_in) * scale
    ed_out = np.nan_to_num(ed_out) * scale
    # ED arrival strictly before the admission is registered (a few demo rows have it reversed)
    too_late = has_ed & (ed_in > -1800)
    ed_in[too_late] = -rng.uniform(1, 6, int(too_late.sum())) * HOUR
    # the patient leaves the ED after the admission is registered (as in most demo admissions)
    early = has_ed & (ed_out < 600)
    ed_out[early] = rng.uniform(0.5, 3, int(early.sum())) * HOUR
    ed_out = np.minimum(ed_out, 0.5 * los)
    pre = np.where(has_ed, -ed_in, 0.0)

    gaps = profile.gaps[rng.integers(0, len(profile.gaps), total)] * np.exp(rng.normal(0, 0.1, total))
    gaps = np.maximum(gaps, pre + 2 * HOUR)
    # admittime_k = start + sum over earlier admissions of (los + gap before the next one)
    step = np.where(k > 0, gaps, 0.0)
    step_prev_los = np.zeros(total)
    step_prev_los[1:] = los[:-1]
    increment = np.where(k > 0, step + step_prev_los, 0.0)
    cumulative = np.cumsum(increment)
    first = np.repeat(np.cumsum(n_adm) - n_adm, n_adm)
    base = cumulative[first]
    # the first ED arrival starts the patient's timeline; later ones fit in their gap
    start = patients["_start"].to_numpy()[owner] + pre[first]
    admittime = minute(start + cumulative - base)
    dischtime = minute(admittime + los)
    edregtime = np.where(has_ed, minute(admittime + ed_in), 0)
    edouttime = np.where(has_ed, minute(admittime + ed_out), 0)
    hadm = counters.take("hadm_id", total) + np.arange(total, dtype=np.int64)

    return donor.select(
        "a",
        "admission_type",
        "admit_provider_id",
        "admission_location",
        "discharge_location",
        "died",
        "dx_version",
        "px_version",
        *[c for c in donor.columns if c.startswith("n_")],
    ).with_columns(
        pl.Series("_order", np.arange(total, dtype=np.int64)),
        pl.Series("p", owner.astype(np.int64)),
        pl.Series("k", k.astype(np.int64)),
        pl.Series("subject_id", patients["subject_id"].to_numpy()[owner]),
        pl.Series("hadm_id", hadm),
        pl.Series("j", scale),
        pl.Series("admittime", admittime),
        pl.Series("dischtime", dischtime),
        pl.Series("has_ed", has_ed),
        pl.Series("edregtime", edregtime),
        pl.Series("edouttime", edouttime),
    )


def _movements(
    profile: Profile, rng: np.random.Generator, admissions: pl.DataFrame, counters: Counters
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Donor ward/ICU movements, rescaled; ICU stays are runs of consecutive ICU transfers."""
    moves = (
        admissions.select(
            "_order", "a", "j", "subject_id", "hadm_id", "admittime", "dischtime", "has_ed", "edouttime"
        )
        .join(profile.transfers, on="a")
        .sort("_order", "pos")
    )
    begin = pl.when(pl.col("has_ed")).then(pl.col("edouttime")).otherwise(pl.col("admittime"))
    moves = moves.with_columns(
        pl.when(pl.col("eventtype") == "discharge")
        .then(pl.col("dischtime"))
        .when(pl.col("pos") == 0)
        .then(begin)
        .otherwise(pl.col("admittime") + (pl.col("off") * pl.col("j")).round(0).cast(pl.Int64))
        .clip(begin, pl.col("dischtime"))
        .alias("t")
    ).with_columns(
        # strictly increasing by at least a second: t'_i = max_{k<=i}(t_k - k) + i
        ((pl.col("t") - pl.col("pos")).cum_max().over("_order") + pl.col("pos")).alias("t")
    )
    moves = moves.with_columns(pl.col("t").shift(-1).over("_order").alias("t_out"))
    # the last movement ends the admission (and its death, if any)
    final = moves.group_by("_order").agg(pl.col("t").max().alias("_final"))
    admissions = (
        admissions.join(final, on="_order", how="left")
        .with_columns(pl.coalesce("_final", "dischtime").alias("dischtime"))
        .drop("_final")
        .sort("_order")
    )

    transfer_ids = counters.take("transfer_id", moves.height) + np.arange(moves.height, dtype=np.int64)
    transfers = moves.with_columns(pl.Series("transfer_id", transfer_ids)).select(
        "subject_id",
        "hadm_id",
        "transfer_id",
        "eventtype",
        "careunit",
        pl.col("t").alias("intime"),
        pl.col("t_out").alias("outtime"),
        (pl.col("_order") * 64 + pl.col("pos") + 1).alias("_order"),
    )

    runs = (
        moves.with_columns(run_number("icu", "_order"))
        .filter(pl.col("icu"))
        .group_by("_order", "_run", maintain_order=True)
        .agg(
            pl.col("a").first(),
            pl.col("j").first(),
            pl.col("subject_id").first(),
            pl.col("hadm_id").first(),
            pl.col("pos").min().alias("first_pos"),
            pl.col("careunit").first().alias("first_careunit"),
            pl.col("careunit").last().alias("last_careunit"),
            pl.col("t").min().alias("intime"),
            pl.col("t_out").last().alias("outtime"),
        )
        .join(profile.runs.drop("last_pos"), on=["a", "first_pos"], how="left", maintain_order="left")
        .sort("_order", "first_pos")
    )
    stay_ids = counters.take("icu_stay_id", runs.height) + np.arange(runs.height, dtype=np.int64)
    icustays = runs.with_columns(
        pl.Series("stay_id", stay_ids),
        ((pl.col("outtime") - pl.col("intime")) / DAY).alias("los"),
        *[pl.col(f"n_{f}").fill_null(0) for f in ICU_FAMILIES],
    ).select(
        "subject_id",
        "hadm_id",
        "stay_id",
        "first_careunit",
        "last_careunit",
        "intime",
        "outtime",
        "los",
        "j",
        *[f"n_{f}" for f in ICU_FAMILIES],
        (pl.col("_order") * 64 + pl.col("first_pos")).alias("_order"),
    )
    admissions = (
        admissions.join(icustays.group_by("hadm_id").agg(pl.len().alias("n_icu")), on="hadm_id", how="left")
        .with_columns(pl.col("n_icu").fill_null(0))
        .sort("_order")
    )
    return transfers, icustays, admissions


def _deaths(
    profile: Profile, rng: np.random.Generator, patients: pl.DataFrame, admissions: pl.DataFrame
) -> pl.DataFrame:
    last = admissions.group_by("p").agg(
        pl.col("dischtime").max().alias("last_disch"),
        pl.col("died").any().alias("died_in_hospital"),
        pl.col("admittime").min().alias("first_admit"),
    )
    patients = patients.join(last, on="p", how="left").sort("p")
    n = patients.height
    later = rng.random(n) < profile.p_die_after
    after = rng.uniform(2, 365, n) * DAY
    death_after = patients["last_disch"].to_numpy() + after.astype(np.int64)
    died = patients["died_in_hospital"].to_numpy()
    death = np.where(died, patients["last_disch"].to_numpy(), np.where(later, death_after, -1))
    return patients.with_columns(
        pl.when(pl.Series(death) >= 0).then(pl.Series(death)).otherwise(None).alias("death"),
    ).with_columns(
        pl.from_epoch("death", time_unit="s").dt.date().alias("dod"),
        # the end of what can happen to this patient: death, else a year after the last discharge
        pl.coalesce("death", pl.col("last_disch") + 365 * DAY).alias("end"),
    )


def _services(profile: Profile, admissions: pl.DataFrame) -> pl.DataFrame:
    return (
        admissions.select("_order", "a", "j", "subject_id", "hadm_id", "admittime", "dischtime")
        .join(profile.services, on="a")
        .with_columns(
            (pl.col("admittime") + (pl.col("off") * pl.col("j")).round(0).cast(pl.Int64))
            .clip(pl.col("admittime"), pl.col("dischtime"))
            .alias("transfertime"),
            (pl.col("_order") * 64 + pl.col("pos")).alias("_order"),
        )
        .select("subject_id", "hadm_id", "transfertime", "prev_service", "curr_service", "_order")
        .sort("_order")
    )


def _ed_stays(
    profile: Profile,
    rng: np.random.Generator,
    patients: pl.DataFrame,
    admissions: pl.DataFrame,
    counters: Counters,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """ED visits: those that led to an admission (edregtime/edouttime) and those that did not."""
    people = patients.select("p", "gender", "race", "end")
    admitted = admissions.filter(pl.col("has_ed")).select(
        "p",
        "subject_id",
        "hadm_id",
        pl.col("edregtime").alias("intime"),
        pl.col("edouttime").alias("outtime"),
        pl.lit("ADMITTED").alias("disposition"),
        "died",
        "_order",
    )

    n_visits = patients["n_ed_only"].to_numpy().astype(np.int64)
    total = int(n_visits.sum())
    owner = np.repeat(np.arange(len(n_visits)), n_visits)
    n_adm = patients["n_admissions"].to_numpy().astype(np.int64)
    first_adm = np.cumsum(n_adm) - n_adm
    reference = first_adm[owner] + (rng.random(total) * n_adm[owner]).astype(np.int64)
    offset = profile.ed_only_offsets[rng.integers(0, len(profile.ed_only_offsets), total)] * rng.uniform(
        0.8, 1.2, total
    )
    duration = np.maximum(
        profile.ed_only_durations[rng.integers(0, len(profile.ed_only_durations), total)], 1800
    ) * rng.uniform(0.8, 1.25, total)
    ref = admissions[reference]
    start = np.where(ref["has_ed"].to_numpy(), ref["edregtime"].to_numpy(), ref["admittime"].to_numpy())
    intime = np.where(offset >= 0, ref["dischtime"].to_numpy() + offset, start + offset - duration)
    intime = minute(intime)
    outtime = minute(intime + duration)
    visits = pl.DataFrame(
        {
            "p": owner.astype(np.int64),
            "subject_id": patients["subject_id"].to_numpy()[owner],
            "intime": intime,
            "outtime": outtime,
            "disposition": pl.Series(vocab.pick(rng, vocab.ED_ONLY_DISPOSITIONS, total), dtype=pl.String),
            "_order": (1 << 30) + np.arange(total, dtype=np.int64),
        }
    )
    busy = admissions.select(
        "p",
        (pl.when(pl.col("has_ed")).then(pl.col("edregtime")).otherwise(pl.col("admittime")) - HOUR).alias(
            "b0"
        ),
        (pl.col("dischtime") + HOUR).alias("b1"),
    )
    clash = (
        visits.with_row_index("_v")
        .join(busy, on="p")
        .filter((pl.col("intime") < pl.col("b1")) & (pl.col("outtime") > pl.col("b0")))["_v"]
    )
    visits = (
        visits.with_row_index("_v")
        .filter(~pl.col("_v").is_in(clash.implode()))
        .drop("_v")
        .join(people.select("p", "end"), on="p")
        .filter(pl.col("outtime") < pl.col("end"))
        .drop("end")
        .sort("p", "intime", "_order")
        # two visits of one patient must not overlap: keep the earlier one
        .filter(
            pl.col("intime")
            >= pl.col("outtime").cum_max().shift(1).over("p").fill_null(np.iinfo(np.int64).min)
        )
        .with_columns(pl.lit(None, pl.Int64).alias("hadm_id"), pl.lit(False).alias("died"))
    )
    stays = (
        pl.concat([admitted, visits.select(admitted.columns)], how="vertical_relaxed")
        .join(people.select("p", "gender", "race"), on="p")
        .sort("subject_id", "intime", "_order")
    )
    n = stays.height
    stays = stays.with_columns(
        pl.Series("stay_id", counters.take("ed_stay_id", n) + np.arange(n, dtype=np.int64)),
        pl.Series("arrival_transport", vocab.pick(rng, vocab.ARRIVAL_TRANSPORT, n), dtype=pl.String),
        pl.int_range(pl.len(), dtype=pl.Int64).alias("_row"),
    )
    ed_transfers = stays.select(
        "subject_id",
        "hadm_id",
        pl.lit(None, pl.Int64).alias("transfer_id"),
        pl.lit("ED").alias("eventtype"),
        pl.lit(ED_UNIT).alias("careunit"),
        "intime",
        "outtime",
        ((1 << 40) + pl.col("_row")).alias("_order"),
    )
    ids = counters.take("transfer_id", n) + np.arange(n, dtype=np.int64)
    ed_transfers = ed_transfers.with_columns(pl.Series("transfer_id", ids))
    return stays, ed_transfers
