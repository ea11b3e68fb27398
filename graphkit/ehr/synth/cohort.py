"""One chunk of synthetic patients, every table, in MIMIC-IV's schema.

Chunks are generated in order, each with its own random stream (seed, chunk index), and ids are
counted on from chunk to chunk: a cohort is byte-identical for the same patient count and seed,
and its first k * CHUNK_PATIENTS patients are exactly the cohort of k * CHUNK_PATIENTS patients.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from graphkit.ehr.schema import TableSpec
from graphkit.ehr.synth.ed import build_ed
from graphkit.ehr.synth.notes import build_notes
from graphkit.ehr.synth.pool import Contexts, Counters, sample
from graphkit.ehr.synth.profile import ICU_FAMILIES, Profile
from graphkit.ehr.synth.skeleton import DAY, HOUR, Skeleton, build_skeleton, minute

CHUNK_PATIENTS = 250

# first value of every id the cohort numbers itself
ID_BASES = {
    "hadm_id": 80_000_001,
    "icu_stay_id": 70_000_001,
    "ed_stay_id": 60_000_001,
    "transfer_id": 50_000_001,
    "labevent_id": 1,
    "microevent_id": 1,
    "specimen_id": 1,
    "micro_specimen_id": 1,
    "pharmacy_id": 1,
    "poe_id": 1,
    "emar_id": 1,
    "orderid_inputevents": 1,
    "orderid_procedureevents": 5_000_000_001,
}
# row-numbered ids, assigned after the chunk's final sort
ROW_IDS = {"labevents": "labevent_id", "microbiologyevents": "microevent_id"}

# which family of groups fills each pool table, where (ICU stays or admissions) and how many
POOL_OF_TABLE = {
    "labevents": "labs",
    "microbiologyevents": "micro",
    "poe": "orders",
    "poe_detail": "orders",
    "pharmacy": "orders",
    "prescriptions": "orders",
    "emar": "orders",
    "emar_detail": "orders",
    "omr": "omr",
    "chartevents": "chart",
    "inputevents": "inputs",
    "ingredientevents": "inputs",
    "outputevents": "outputs",
    "datetimeevents": "datetimes",
    "procedureevents": "procedures",
}

# ED visits without an admission often draw blood too
ED_VISIT_LAB_GROUPS = 1.5


def new_counters() -> Counters:
    return Counters(ID_BASES)


def chunk_rng(seed: int, index: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, index])))


def generate_chunk(
    profile: Profile, seed: int, index: int, first_patient: int, n_patients: int, counters: Counters
) -> dict[str, pl.DataFrame]:
    """Every patient table for patients ``first_patient .. first_patient + n_patients - 1``."""
    rng = chunk_rng(seed, index)
    skeleton = build_skeleton(profile, rng, first_patient, n_patients, counters)
    tables: dict[str, pl.DataFrame] = {}
    tables.update(_core_tables(skeleton))
    tables.update(_coded(profile, rng, skeleton))
    tables.update(_hospital_events(profile, rng, skeleton, counters))
    tables.update(_icu_events(profile, rng, skeleton, counters))
    ed = build_ed(profile, rng, skeleton, tables["diagnoses_icd"])
    tables.update(ed)
    tables.update(
        build_notes(
            rng,
            skeleton,
            tables,
            {
                "icd": profile.icd_titles,
                "procedure": profile.procedure_titles,
                "lab": profile.lab_labels,
            },
        )
    )
    specs = profile.schema.tables
    out = {}
    for name, frame in tables.items():
        out[name] = conform(frame, specs[name])
    for table, column in ROW_IDS.items():
        frame = out[table]
        start = counters.take(column, frame.height)
        out[table] = frame.with_columns(pl.int_range(pl.len(), dtype=pl.Int64).add(start).alias(column))
    return out


def conform(frame: pl.DataFrame, spec: TableSpec) -> pl.DataFrame:
    """The table's schema columns, in schema order and dtypes, sorted by subject and time.

    Integer columns of datetime/date type hold epoch seconds (skeleton tables) and are converted.
    """
    if not frame.width:  # nothing was drawn for this table in this chunk
        return pl.DataFrame(schema=spec.polars_schema())
    sort = [c for c in ("subject_id", spec.time_column, "_order") if c and c in frame.columns]
    if sort:
        # order the keys alone and move the (wide) rows only when they are not in order yet
        order = frame.select(sort).with_row_index("_row").sort(sort, nulls_last=True)["_row"]
        if not (order.diff().drop_nulls() == 1).all():
            frame = frame[order.to_numpy()]
    columns = []
    for name, column in spec.columns.items():
        if name not in frame.columns:
            columns.append(pl.lit(None, column.polars_dtype).alias(name))
            continue
        expr = pl.col(name)
        dtype = frame.schema[name]
        if column.dtype in ("datetime", "date") and dtype.is_integer():
            expr = pl.from_epoch(expr, time_unit="s")
        columns.append(expr.cast(column.polars_dtype).alias(name))
    return frame.select(columns)


# ------------------------------------------------------------------------------- core tables


def _core_tables(skeleton: Skeleton) -> dict[str, pl.DataFrame]:
    patients = skeleton.patients
    admissions = skeleton.admissions.join(
        patients.select("p", "insurance", "language", "marital_status", "race"), on="p"
    ).with_columns(
        pl.when(pl.col("died")).then(pl.col("dischtime")).otherwise(None).alias("deathtime"),
        pl.when(pl.col("has_ed")).then(pl.col("edregtime")).otherwise(None).alias("edregtime"),
        pl.when(pl.col("has_ed")).then(pl.col("edouttime")).otherwise(None).alias("edouttime"),
        pl.col("died").cast(pl.Int64).alias("hospital_expire_flag"),
    )
    return {
        "patients": patients.select(
            "subject_id", "gender", "anchor_age", "anchor_year", "anchor_year_group", "dod"
        ),
        "admissions": admissions,
        "transfers": skeleton.transfers,
        "icustays": skeleton.icustays,
        "services": skeleton.services,
    }


# ------------------------------------------------------------------------------- coded tables


def _coded(profile: Profile, rng: np.random.Generator, skeleton: Skeleton) -> dict[str, pl.DataFrame]:
    admissions = (
        skeleton.admissions.join(skeleton.patients.select("p", "gender"), on="p")
        .sort("_order")
        .with_columns(
            (pl.col("n_dx") + pl.Series(rng.integers(-2, 3, skeleton.admissions.height)))
            .clip(1)
            .alias("n_dx")
        )
    )
    diagnoses_pools = dict(profile.diagnoses)
    for version in (9, 10):
        merged = pl.concat([f for (v, _), f in profile.diagnoses.items() if v == version])
        for sex in ("F", "M"):
            diagnoses_pools.setdefault((version, sex), merged)
    versions = admissions["dx_version"].to_list()
    genders = admissions["gender"].to_list()
    diagnoses = _draw_grouped(
        rng, admissions, "n_dx", diagnoses_pools, list(zip(versions, genders, strict=True)), "icd_code"
    )
    procedures = _draw_grouped(
        rng, admissions, "n_px", profile.procedures, admissions["px_version"].to_list(), "icd_code"
    )
    procedures = _dated_within_stay(rng, procedures)
    hcpcs = _dated_within_stay(
        rng,
        _draw_grouped(rng, admissions, "n_hcpcs", {0: profile.hcpcs}, [0] * admissions.height, "hcpcs_cd"),
    )
    drg = pl.concat(
        [
            _draw_grouped(
                rng,
                admissions,
                f"n_drg_{kind.lower()}",
                {kind: profile.drg[kind]},
                [kind] * admissions.height,
                None,
                order_offset=512 * position,
            )
            for position, kind in enumerate(("HCFA", "APR"))
            if kind in profile.drg
        ],
        how="diagonal_relaxed",
    )
    return {
        "diagnoses_icd": diagnoses,
        "procedures_icd": procedures,
        "hcpcsevents": hcpcs,
        "drgcodes": drg,
    }


def _dated_within_stay(rng: np.random.Generator, rows: pl.DataFrame) -> pl.DataFrame:
    """A chartdate somewhere in each row's admission."""
    if not rows.height:
        return rows
    span = (rows["dischtime"] - rows["admittime"]).to_numpy()
    offset = (rng.random(rows.height) * span).astype(np.int64)
    return rows.with_columns(pl.Series("chartdate", rows["admittime"].to_numpy() + offset))


def _draw_grouped(
    rng: np.random.Generator,
    admissions: pl.DataFrame,
    wanted: str,
    pools: dict,
    keys: list,
    distinct: str | None,
    order_offset: int = 0,
) -> pl.DataFrame:
    """Draw ``admissions[wanted]`` rows per admission from ``pools[key]`` (demo frequencies).

    With ``distinct``, an admission never gets the same code twice; seq_num numbers its rows.
    ``order_offset`` keeps row orders apart when several draws fill one table.
    """
    counts_all = admissions[wanted].to_numpy().astype(np.int64)
    index_of = {key: i for i, key in enumerate(dict.fromkeys(keys))}
    key_of = np.array([index_of[k] for k in keys], dtype=np.int64)
    parts = []
    for key, index in index_of.items():
        chosen = np.flatnonzero((key_of == index) & (counts_all > 0))
        if not len(chosen):
            continue
        pool = pools[key]
        counts = counts_all[chosen]
        draws = 2 * counts + 2 if distinct else counts
        owner = np.repeat(np.arange(len(chosen)), draws)
        within = np.arange(len(owner)) - np.repeat(np.cumsum(draws) - draws, draws)
        frame = pool[rng.integers(0, pool.height, len(owner))].with_columns(
            pl.Series("_i", owner.astype(np.int64)),
            pl.Series("_want", counts[owner]),
            pl.Series(
                "_order", admissions["_order"].to_numpy()[chosen][owner] * 1024 + order_offset + within
            ),
        )
        if distinct:
            frame = frame.unique(["_i", distinct], keep="first", maintain_order=True)
        frame = frame.filter(pl.int_range(pl.len()).over("_i") < pl.col("_want")).with_columns(
            (pl.int_range(pl.len(), dtype=pl.Int64).over("_i") + 1).alias("seq_num")
        )
        owners = admissions[chosen].select(
            pl.int_range(pl.len(), dtype=pl.Int64).alias("_i"),
            "subject_id",
            "hadm_id",
            "admittime",
            "dischtime",
        )
        parts.append(frame.join(owners, on="_i", maintain_order="left").drop("_i", "_want"))
    return pl.concat(parts, how="diagonal_relaxed") if parts else pl.DataFrame()


# ----------------------------------------------------------------------------- event pools


def _poisson_counts(rng: np.random.Generator, donor_counts: np.ndarray, scale: np.ndarray) -> np.ndarray:
    return rng.poisson(donor_counts.astype(np.float64) * scale).astype(np.int64)


def _outpatient_points(
    rng: np.random.Generator, skeleton: Skeleton, counts: np.ndarray, avoid_stays: bool
) -> pl.DataFrame:
    """Random moments of each patient's life around their admissions (never after death).

    With ``avoid_stays`` moments inside an admission or ED visit are dropped: rows without a
    hadm_id must not fall inside an admission.
    """
    patients = skeleton.patients
    owner = np.repeat(np.arange(patients.height), counts)
    begin = patients["first_admit"].to_numpy() - 2 * 365 * DAY
    end = patients["end"].to_numpy() - DAY
    span = np.maximum(end - begin, DAY)
    moment = minute(begin[owner] + rng.random(len(owner)) * span[owner])
    points = pl.DataFrame(
        {
            "p": owner.astype(np.int64),
            "subject_id": patients["subject_id"].to_numpy()[owner],
            "start": moment,
        }
    ).with_row_index("_v")
    if avoid_stays and points.height:
        busy = pl.concat(
            [
                skeleton.admissions.select(
                    "p",
                    (
                        pl.when(pl.col("has_ed")).then(pl.col("edregtime")).otherwise(pl.col("admittime"))
                        - DAY
                    ).alias("b0"),
                    (pl.col("dischtime") + DAY).alias("b1"),
                ),
                skeleton.edstays.select(
                    "p", (pl.col("intime") - DAY).alias("b0"), (pl.col("outtime") + DAY).alias("b1")
                ),
            ]
        )
        clash = points.join(busy, on="p").filter(
            (pl.col("start") >= pl.col("b0")) & (pl.col("start") <= pl.col("b1"))
        )["_v"]
        points = points.filter(~pl.col("_v").is_in(clash.implode()))
    return points.sort("p", "_v").drop("_v")


def _contexts_of(frame: pl.DataFrame, counts: np.ndarray, length: int | None = None) -> Contexts:
    start = frame["start"].to_numpy()
    end = start + length if length is not None else frame["end"].to_numpy()
    return Contexts(
        subject=frame["subject_id"].to_numpy(),
        hadm=frame["hadm_id"].fill_null(-1).to_numpy()
        if "hadm_id" in frame.columns
        else np.full(frame.height, -1),
        stay=frame["stay_id"].fill_null(-1).to_numpy()
        if "stay_id" in frame.columns
        else np.full(frame.height, -1),
        start=start,
        end=end,
        n=counts,
    )


def _merge(parts: list[dict[str, pl.DataFrame]]) -> dict[str, pl.DataFrame]:
    merged: dict[str, list[pl.DataFrame]] = {}
    for offset, part in enumerate(parts):
        for name, frame in part.items():
            merged.setdefault(name, []).append(frame.with_columns(pl.col("_order") + (offset << 44)))
    return {name: pl.concat(frames, how="diagonal_relaxed") for name, frames in merged.items()}


def _hospital_events(
    profile: Profile, rng: np.random.Generator, skeleton: Skeleton, counters: Counters
) -> dict[str, pl.DataFrame]:
    admissions = skeleton.admissions.sort("_order")
    window = admissions.select(
        "subject_id", "hadm_id", pl.col("admittime").alias("start"), pl.col("dischtime").alias("end")
    )
    scale = admissions["j"].to_numpy()
    pools = profile.pools

    def inpatient(family: str) -> dict[str, pl.DataFrame]:
        counts = _poisson_counts(rng, admissions[f"n_{family}"].to_numpy(), scale)
        return sample(
            pools[family],
            rng,
            _contexts_of(window, counts),
            counters,
            "inpatient" if family in ("labs", "micro") else "all",
        )

    labs_in = inpatient("labs")
    micro_in = inpatient("micro")
    orders = inpatient("orders")

    visits = skeleton.edstays.filter(pl.col("hadm_id").is_null()).select(
        "p", "subject_id", pl.col("intime").alias("start"), pl.col("outtime").alias("end")
    )
    out_labs = _outpatient_points(rng, skeleton, skeleton.patients["n_out_labs"].to_numpy(), avoid_stays=True)
    lab_windows = pl.concat(
        [
            visits.with_columns(pl.lit(0).alias("_kind")),
            out_labs.with_columns((pl.col("start") + 6 * HOUR).alias("end"), pl.lit(1).alias("_kind")),
        ],
        how="diagonal_relaxed",
    ).sort("p", "start", "_kind", maintain_order=True)
    lab_counts = np.where(
        lab_windows["_kind"].to_numpy() == 0, rng.poisson(ED_VISIT_LAB_GROUPS, lab_windows.height), 1
    ).astype(np.int64)
    labs_out = sample(pools["labs"], rng, _contexts_of(lab_windows, lab_counts), counters, "outpatient")

    out_micro = _outpatient_points(
        rng, skeleton, skeleton.patients["n_out_micro"].to_numpy(), avoid_stays=True
    )
    micro_out = sample(
        pools["micro"],
        rng,
        _contexts_of(out_micro, np.ones(out_micro.height, np.int64), 6 * HOUR),
        counters,
        "outpatient",
    )
    omr_points = _outpatient_points(rng, skeleton, skeleton.patients["n_omr"].to_numpy(), avoid_stays=False)
    omr = sample(
        pools["omr"], rng, _contexts_of(omr_points, np.ones(omr_points.height, np.int64), DAY - 60), counters
    )

    events = _merge([labs_in, labs_out, micro_in, micro_out, orders, omr])
    # two visits may land on one day: seq_num numbers a result within its day again
    events["omr"] = (
        events["omr"]
        .with_columns(pl.col("chartdate").dt.date().alias("_day"))
        .sort("subject_id", "_day", "_order")
        .with_columns(
            (pl.int_range(pl.len(), dtype=pl.Int64).over("subject_id", "_day", "result_name") + 1).alias(
                "seq_num"
            )
        )
        .drop("_day")
    )
    micro = events["microbiologyevents"]
    # chartdate/storedate are the days of charttime/storetime (MIMIC writes them at 00:00)
    events["microbiologyevents"] = micro.with_columns(
        pl.coalesce(pl.col("charttime").dt.truncate("1d"), pl.col("chartdate").dt.truncate("1d")).alias(
            "chartdate"
        ),
        pl.coalesce(pl.col("storetime").dt.truncate("1d"), pl.col("storedate").dt.truncate("1d")).alias(
            "storedate"
        ),
    )
    return events


def _icu_events(
    profile: Profile, rng: np.random.Generator, skeleton: Skeleton, counters: Counters
) -> dict[str, pl.DataFrame]:
    stays = skeleton.icustays.sort("_order")
    window = stays.select(
        "subject_id", "hadm_id", "stay_id", pl.col("intime").alias("start"), pl.col("outtime").alias("end")
    )
    scale = stays["j"].to_numpy()
    parts = []
    for family in ICU_FAMILIES:
        counts = _poisson_counts(rng, stays[f"n_{family}"].to_numpy(), scale)
        part = sample(profile.pools[family], rng, _contexts_of(window, counts), counters)
        if family == "chart":
            part["chartevents"] = _chart_details(profile, rng, part["chartevents"])
        parts.append(part)
    return _merge(parts)


def _chart_details(profile: Profile, rng: np.random.Generator, chart: pl.DataFrame) -> pl.DataFrame:
    """What the open chartevents pool lacks: who charted a moment and when it was stored."""
    moment = chart["_order"].to_numpy() >> 20
    size = int(moment.max()) + 1 if len(moment) else 0
    caregivers = profile.caregivers[rng.integers(0, len(profile.caregivers), size)]
    delay = rng.integers(0, 46, size) * 60
    return chart.with_columns(
        pl.Series("caregiver_id", caregivers[moment]),
        (pl.col("charttime") + pl.duration(seconds=pl.Series(delay[moment]))).alias("storetime"),
    )
