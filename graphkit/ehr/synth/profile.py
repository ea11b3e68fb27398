"""What the synthesizer learns from the genuine MIMIC-IV demo (and the bundled chartevents pool).

Admission skeletons (type, locations, length of stay, ED times, ward and ICU transfers, services,
death, per-table event counts) are taken from demo admissions as donors and later rescaled in
time; event contents come from pools of demo event groups (graphkit.ehr.synth.pool); coded
tables (diagnoses, procedures, DRG, HCPCS) from the demo's code frequencies. Built once per
process (a few seconds) and shared by every chunk.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from graphkit.ehr.schema import Schema, load_schema
from graphkit.ehr.source import open_source
from graphkit.ehr.synth import chart_pool, vocab
from graphkit.ehr.synth.pool import EVENT, GroupPool, IdSpace, build_pool
from graphkit.errors import InputError

log = logging.getLogger(__name__)

DEMO_DIR = Path(__file__).resolve().parents[2] / "data" / "mimic-iv-demo"

# the demo's dictionaries, copied unchanged into every synthetic cohort
DICTIONARY_TABLES = (
    "d_hcpcs",
    "d_icd_diagnoses",
    "d_icd_procedures",
    "d_labitems",
    "provider",
    "caregiver",
    "d_items",
)

# (family, pool tables) resampled as groups; ICU families are placed in ICU stays
HOSP_FAMILIES = ("labs", "micro", "orders")
ICU_FAMILIES = ("chart", "inputs", "outputs", "datetimes", "procedures")


@dataclass
class Profile:
    schema: Schema
    demo_dir: Path
    patients: pl.DataFrame  # one donor per demo patient
    admissions: pl.DataFrame  # one donor per demo admission (column "a")
    transfers: pl.DataFrame  # donor ward/ICU movements: a, pos, eventtype, careunit, off
    runs: pl.DataFrame  # donor ICU stays as runs of ICU transfers: a, first_pos, last_pos, n_<family>
    services: pl.DataFrame  # a, pos, off, prev_service, curr_service
    gaps: np.ndarray  # seconds from a discharge to the next admission
    ed_only_offsets: np.ndarray  # ED visits without admission: seconds after (+) / before (-) an admission
    ed_only_durations: np.ndarray
    p_die_in_hospital: float  # per patient
    p_die_after: float  # per surviving patient: a dod after the last discharge
    pools: dict[str, GroupPool]
    diagnoses: dict[tuple[int, str], pl.DataFrame]  # (icd_version, gender) -> icd_code, icd_version
    procedures: dict[int, pl.DataFrame]
    drg: dict[str, pl.DataFrame]
    hcpcs: pl.DataFrame
    icd_titles: pl.DataFrame  # icd_code, icd_version, long_title
    procedure_titles: pl.DataFrame
    lab_labels: pl.DataFrame  # itemid, label
    home_drugs: pl.DataFrame  # name, gsn, ndc, weight (medrecon)
    dispensed_drugs: pl.DataFrame  # name, gsn, weight (pyxis)
    caregivers: np.ndarray  # caregiver ids seen in the demo's ICU tables


@functools.cache
def load_profile(demo_dir: Path = DEMO_DIR) -> Profile:
    return build_profile(demo_dir)


def build_profile(demo_dir: Path) -> Profile:
    if not demo_dir.exists():
        raise InputError(
            "the bundled MIMIC-IV demo is missing",
            where=str(demo_dir),
            fix="reinstall ehr-r1 (the demo ships in graphkit/data/mimic-iv-demo)",
        )
    schema = load_schema()
    source = open_source(demo_dir, schema)

    def read(table: str) -> pl.DataFrame:
        return source.scan(table).collect()

    patients = read("patients")
    admissions = read("admissions").sort("subject_id", "admittime", "hadm_id")
    transfers = read("transfers")
    icustays = read("icustays")

    admissions = admissions.with_columns(pl.int_range(pl.len(), dtype=pl.Int64).alias("a"))
    adm_key = admissions.select("a", "hadm_id", "subject_id", "admittime", "dischtime")

    pools = _build_pools(read, schema)
    chart = pools["chart"]

    donors = _admission_donors(admissions, read, pools)
    donor_transfers, runs = _transfer_donors(adm_key, transfers, icustays, pools)
    services = (
        read("services")
        .join(adm_key, on="hadm_id")
        .sort("a", "transfertime", "curr_service", nulls_last=True, maintain_order=True)
        .select(
            "a",
            pl.int_range(pl.len()).over("a").alias("pos"),
            (pl.col("transfertime") - pl.col("admittime")).dt.total_seconds().alias("off"),
            "prev_service",
            "curr_service",
        )
    )
    gaps = (
        admissions.sort("subject_id", "admittime")
        .select(
            (pl.col("admittime") - pl.col("dischtime").shift(1).over("subject_id"))
            .dt.total_seconds()
            .alias("gap")
        )
        .drop_nulls()
        .filter(pl.col("gap") > 0)["gap"]
        .to_numpy()
    )
    ed_offsets, ed_durations, ed_only_per_subject = _ed_only_visits(admissions, transfers)
    donor_patients = _patient_donors(patients, admissions, ed_only_per_subject, pools)

    died = admissions.filter(pl.col("hospital_expire_flag") == 1)["subject_id"].unique()
    survivors = patients.filter(~pl.col("subject_id").is_in(died.implode()))
    p_die_in_hospital = died.len() / patients.height
    p_die_after = survivors["dod"].is_not_null().sum() / max(survivors.height, 1)

    gender = patients.select("subject_id", "gender")
    diagnoses_rows = read("diagnoses_icd").join(gender, on="subject_id", maintain_order="left")
    diagnoses = {
        (int(version), str(sex)): group.select("icd_code", "icd_version")
        for (version, sex), group in diagnoses_rows.group_by("icd_version", "gender", maintain_order=True)
    }
    procedure_rows = read("procedures_icd")
    procedures = {
        int(version): group.select("icd_code", "icd_version")
        for (version,), group in procedure_rows.group_by("icd_version", maintain_order=True)
    }
    drg = {
        str(kind): group.select("drg_type", "drg_code", "description", "drg_severity", "drg_mortality")
        for (kind,), group in read("drgcodes").group_by("drg_type", maintain_order=True)
    }
    hcpcs = read("hcpcsevents").select("hcpcs_cd", "short_description")

    prescriptions = read("prescriptions")
    home_drugs = (
        prescriptions.filter(pl.col("drug_type") == "MAIN")
        .group_by("drug")
        .agg(pl.len().alias("weight"), pl.col("gsn").drop_nulls().first(), pl.col("ndc").drop_nulls().first())
        .filter(~pl.col("drug").str.contains(r"(?i)flush|sodium chloride 0\.9|dextrose|bag"))
        .sort("drug")
        .rename({"drug": "name"})
    )
    gsn_by_name = home_drugs.select(pl.col("name").str.to_lowercase().alias("_n"), "gsn")
    dispensed = (
        read("emar")
        .filter(pl.col("medication").is_not_null())
        .group_by("medication")
        .agg(pl.len().alias("weight"))
        .sort("medication")
        .rename({"medication": "name"})
        .with_columns(pl.col("name").str.to_lowercase().alias("_n"))
        .join(gsn_by_name, on="_n", how="left")
        .drop("_n")
    )

    profile = Profile(
        schema=schema,
        demo_dir=demo_dir,
        patients=donor_patients,
        admissions=donors,
        transfers=donor_transfers,
        runs=runs,
        services=services,
        gaps=gaps,
        ed_only_offsets=ed_offsets,
        ed_only_durations=ed_durations,
        p_die_in_hospital=float(p_die_in_hospital),
        p_die_after=float(p_die_after),
        pools=pools,
        diagnoses=diagnoses,
        procedures=procedures,
        drg=drg,
        hcpcs=hcpcs,
        icd_titles=read("d_icd_diagnoses"),
        procedure_titles=read("d_icd_procedures"),
        lab_labels=read("d_labitems").select("itemid", "label"),
        home_drugs=home_drugs,
        dispensed_drugs=dispensed,
        caregivers=np.unique(
            pl.concat(
                [read(t).select("caregiver_id") for t in ("datetimeevents", "outputevents", "inputevents")]
            )
            .drop_nulls()["caregiver_id"]
            .to_numpy()
        ),
    )
    log.info(
        "synth profile: %d donor admissions, %d ICU runs, %d chart groups",
        donors.height,
        runs.height,
        chart.n_groups,
    )
    return profile


# ---------------------------------------------------------------------------------------- pools


def _key(*columns: str) -> pl.Expr:
    return pl.concat_str([pl.col(c).cast(pl.String).fill_null("") for c in columns], separator="|").alias(
        "_key"
    )


def _build_pools(read, schema: Schema) -> dict[str, GroupPool]:
    specs = schema.tables
    pools: dict[str, GroupPool] = {}
    inpatient = {"inpatient": pl.col("hadm_id").is_not_null(), "outpatient": pl.col("hadm_id").is_null()}

    labs = read("labevents").with_columns(_key("specimen_id"), pl.col("charttime").alias(EVENT))
    pools["labs"] = build_pool(
        "labs",
        {"labevents": labs},
        specs,
        spaces=(IdSpace("specimen_id", owner="labevents", key="specimen_id"),),
        regenerated=("subject_id", "hadm_id", "labevent_id"),
        strata=inpatient,
    )
    micro = read("microbiologyevents").with_columns(
        _key("micro_specimen_id"), pl.coalesce("charttime", "chartdate").alias(EVENT)
    )
    pools["micro"] = build_pool(
        "micro",
        {"microbiologyevents": micro},
        specs,
        spaces=(IdSpace("micro_specimen_id", owner="microbiologyevents", key="micro_specimen_id"),),
        regenerated=("subject_id", "hadm_id", "microevent_id"),
        strata=inpatient,
    )
    pools["orders"] = _orders_pool(read, specs)
    pools["omr"] = build_pool(
        "omr",
        {"omr": read("omr").with_columns(_key("subject_id", "chartdate"), pl.col("chartdate").alias(EVENT))},
        specs,
        regenerated=("subject_id",),
    )

    icu_ids = ("subject_id", "hadm_id", "stay_id")
    inputs = read("inputevents").with_columns(_key("orderid"), pl.col("starttime").alias(EVENT))
    ingredients = read("ingredientevents").with_columns(_key("orderid"), pl.col("starttime").alias(EVENT))
    ingredients = ingredients.filter(pl.col("orderid").is_in(inputs["orderid"].implode()))
    pools["inputs"] = build_pool(
        "inputs",
        {"inputevents": inputs, "ingredientevents": ingredients},
        specs,
        spaces=(_order_space("inputevents", ("inputevents", "ingredientevents")),),
        regenerated=icu_ids,
    )
    for family, table, key, event in (
        ("outputs", "outputevents", ("stay_id", "charttime"), "charttime"),
        ("datetimes", "datetimeevents", ("stay_id", "charttime"), "charttime"),
        ("procedures", "procedureevents", ("orderid",), "starttime"),
    ):
        pools[family] = build_pool(
            family,
            {table: read(table).with_columns(_key(*key), pl.col(event).alias(EVENT))},
            specs,
            spaces=(_order_space(table, (table,)),) if "orderid" in key else (),
            regenerated=icu_ids,
        )
    pools["chart"] = _chart_pool(read, specs)
    return pools


def _order_space(owner: str, tables: tuple[str, ...]) -> IdSpace:
    """ICU order ids: rows of one order share its orderid; linkorderid may point at another order."""
    return IdSpace(
        f"orderid_{owner}",
        owner=owner,
        key="orderid",
        refs=tuple((t, "orderid") for t in tables if t != owner),
        maps=tuple((t, "linkorderid") for t in tables),
    )


def _orders_pool(read, specs) -> GroupPool:
    """One medication or other order: poe (+ poe_detail), pharmacy, prescriptions, eMAR (+ detail).

    The group key is the pharmacy order when there is one, else the provider order. A poe row
    joins every group that references it, so each group carries the order it points at.
    """
    poe = read("poe")
    pharmacy = read("pharmacy").with_columns(
        pl.format("ph:{}", "pharmacy_id").alias("_key"), pl.coalesce("starttime", "entertime").alias(EVENT)
    )
    known_pharmacy = pharmacy["pharmacy_id"].implode()
    prescriptions = (
        read("prescriptions")
        .filter(pl.col("pharmacy_id").is_in(known_pharmacy))
        .with_columns(pl.format("ph:{}", "pharmacy_id").alias("_key"), pl.col("starttime").alias(EVENT))
    )
    emar = read("emar").with_columns(
        pl.when(pl.col("pharmacy_id").is_in(known_pharmacy))
        .then(pl.format("ph:{}", "pharmacy_id"))
        .otherwise(pl.format("poe:{}", "poe_id"))
        .alias("_key"),
        pl.col("charttime").alias(EVENT),
    )
    emar_detail = (
        read("emar_detail")
        .join(emar.select("emar_id", "_key"), on="emar_id", maintain_order="left")
        .with_columns(pl.lit(None, pl.Datetime("us")).alias(EVENT))
    )
    referenced = (
        pl.concat(
            [
                pharmacy.select("_key", "poe_id"),
                prescriptions.select("_key", "poe_id"),
                emar.select("_key", "poe_id"),
            ]
        )
        .drop_nulls()
        .unique()
    )
    standalone = poe.filter(~pl.col("poe_id").is_in(referenced["poe_id"].implode())).select(
        pl.format("poe:{}", "poe_id").alias("_key"), "poe_id"
    )
    poe_keys = pl.concat([referenced, standalone]).unique().sort("poe_id", "_key")
    poe_rows = poe.join(poe_keys, on="poe_id", maintain_order="left_right").with_columns(
        pl.col("ordertime").alias(EVENT),
        pl.lit(None, pl.String).alias("discontinue_of_poe_id"),
        pl.lit(None, pl.String).alias("discontinued_by_poe_id"),
    )
    poe_detail = (
        read("poe_detail")
        .join(poe_keys, on="poe_id", maintain_order="left_right")
        .with_columns(pl.lit(None, pl.Datetime("us")).alias(EVENT))
    )
    return build_pool(
        "orders",
        {
            "poe": poe_rows,
            "poe_detail": poe_detail,
            "pharmacy": pharmacy,
            "prescriptions": prescriptions,
            "emar": emar,
            "emar_detail": emar_detail,
        },
        specs,
        spaces=(
            IdSpace(
                "poe_id",
                owner="poe",
                key="poe_id",
                refs=(
                    ("poe_detail", "poe_id"),
                    ("pharmacy", "poe_id"),
                    ("prescriptions", "poe_id"),
                    ("emar", "poe_id"),
                ),
                fmt="subject_seq",
                seq_columns=(("poe", "poe_seq"), ("poe_detail", "poe_seq"), ("prescriptions", "poe_seq")),
            ),
            IdSpace(
                "pharmacy_id",
                owner="pharmacy",
                key="pharmacy_id",
                refs=(
                    ("prescriptions", "pharmacy_id"),
                    ("emar", "pharmacy_id"),
                    ("emar_detail", "pharmacy_id"),
                ),
            ),
            IdSpace(
                "emar_id",
                owner="emar",
                key="emar_id",
                refs=(("emar_detail", "emar_id"),),
                fmt="subject_seq",
                seq_columns=(("emar", "emar_seq"), ("emar_detail", "emar_seq")),
            ),
        ),
        regenerated=("subject_id", "hadm_id"),
    )


def _chart_pool(read, specs) -> GroupPool:
    """Chart moments of ICU stays (bundled pool); text items get synthetic values (vocab)."""
    rows = chart_pool.load()
    items = read("d_items").select(pl.col("itemid").cast(pl.Int32), "label", "category", "param_type")
    rows = rows.join(items, on="itemid", how="left", maintain_order="left")
    stays = read("icustays").select("stay_id", "subject_id", "hadm_id")
    rows = rows.join(stays, on="stay_id", how="left", maintain_order="left")
    rows = vocab.chart_values(rows)
    frame = rows.select(
        _key("stay_id", "charttime"),
        pl.col("charttime").alias(EVENT),
        "subject_id",
        "hadm_id",
        "stay_id",
        pl.lit(None, pl.Int64).alias("caregiver_id"),
        "charttime",
        pl.lit(None, pl.Datetime("us")).alias("storetime"),
        pl.col("itemid").cast(pl.Int64),
        "value",
        "valuenum",
        "valueuom",
        pl.lit(0, pl.Int64).alias("warning"),
    )
    return build_pool(
        "chart", {"chartevents": frame}, specs, regenerated=("subject_id", "hadm_id", "stay_id")
    )


# -------------------------------------------------------------------------------------- donors


def run_number(flag: str, over: str) -> pl.Expr:
    """Numbers the runs of consecutive rows where ``flag`` holds (an ICU stay is a run of ICU moves)."""
    return (
        (pl.col(flag) != pl.col(flag).shift(1).over(over).fill_null(False)).cum_sum().over(over).alias("_run")
    )


def _group_counts(pool: GroupPool, by: str, stratum: str | None = None) -> pl.DataFrame:
    context = pool.group_context
    if stratum is not None:
        context = context.filter(pl.col("_g").is_in(pl.Series(pool.strata[stratum]).implode()))
    return context.drop_nulls(by).group_by(by).agg(pl.len().alias(f"n_{pool.family}"))


def _admission_donors(admissions: pl.DataFrame, read, pools: dict[str, GroupPool]) -> pl.DataFrame:
    diagnoses = (
        read("diagnoses_icd")
        .group_by("hadm_id")
        .agg(pl.len().alias("n_dx"), pl.col("icd_version").first().alias("dx_version"))
    )
    procedures = (
        read("procedures_icd")
        .group_by("hadm_id")
        .agg(pl.len().alias("n_px"), pl.col("icd_version").first().alias("px_version"))
    )
    drg = (
        read("drgcodes")
        .group_by("hadm_id")
        .agg(
            (pl.col("drg_type") == "HCFA").sum().alias("n_drg_hcfa"),
            (pl.col("drg_type") == "APR").sum().alias("n_drg_apr"),
        )
    )
    hcpcs = read("hcpcsevents").group_by("hadm_id").agg(pl.len().alias("n_hcpcs"))
    donors = admissions.select(
        "a",
        "hadm_id",
        "admission_type",
        "admit_provider_id",
        "admission_location",
        "discharge_location",
        (pl.col("hospital_expire_flag") == 1).alias("died"),
        (pl.col("dischtime") - pl.col("admittime")).dt.total_seconds().alias("los"),
        (pl.col("edregtime") - pl.col("admittime")).dt.total_seconds().alias("ed_in"),
        (pl.col("edouttime") - pl.col("admittime")).dt.total_seconds().alias("ed_out"),
    )
    for extra in (
        diagnoses,
        procedures,
        drg,
        hcpcs,
        _group_counts(pools["labs"], "hadm_id", "inpatient"),
        _group_counts(pools["micro"], "hadm_id", "inpatient"),
        _group_counts(pools["orders"], "hadm_id"),
    ):
        donors = donors.join(extra, on="hadm_id", how="left", maintain_order="left")
    count_columns = [c for c in donors.columns if c.startswith("n_")]
    donors = donors.with_columns(
        [pl.col(c).fill_null(0) for c in count_columns]
        + [
            pl.col("dx_version").fill_null(10),
            pl.coalesce("px_version", "dx_version").fill_null(10).alias("px_version"),
        ]
    )
    # a few demo admissions die after their recorded discharge time; synthetic deaths end the stay
    return donors.with_columns(
        pl.when(pl.col("died"))
        .then(pl.lit("DIED"))
        .otherwise(pl.col("discharge_location"))
        .alias("discharge_location")
    ).sort("a")


def _transfer_donors(
    adm_key: pl.DataFrame, transfers: pl.DataFrame, icustays: pl.DataFrame, pools: dict[str, GroupPool]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Ward/ICU movements per donor admission and its ICU stays as runs of ICU transfers."""
    icu_units = set(icustays["first_careunit"].drop_nulls()) | set(icustays["last_careunit"].drop_nulls())
    moves = (
        transfers.filter(pl.col("hadm_id").is_not_null() & (pl.col("eventtype") != "ED"))
        .join(adm_key, on="hadm_id")
        .with_columns((pl.col("eventtype") == "discharge").alias("_last"))
        .sort("a", "_last", "intime", "transfer_id")
        .select(
            "a",
            pl.int_range(pl.len()).over("a").alias("pos"),
            "eventtype",
            "careunit",
            (pl.col("intime") - pl.col("admittime")).dt.total_seconds().alias("off"),
            pl.col("careunit").is_in(list(icu_units)).alias("icu"),
            "intime",
            "outtime",
            "hadm_id",
        )
    )
    # a donor is used only with a complete movement list (it ends with the discharge)
    moves = moves.filter(pl.col("a").is_in(moves.filter(pl.col("eventtype") == "discharge")["a"].implode()))
    runs = (
        moves.with_columns(run_number("icu", "a"))
        .filter(pl.col("icu"))
        .group_by("a", "_run", maintain_order=True)
        .agg(
            pl.col("pos").min().alias("first_pos"),
            pl.col("pos").max().alias("last_pos"),
            pl.col("intime").min().alias("intime"),
            pl.col("outtime").max().alias("outtime"),
            pl.col("hadm_id").first(),
        )
        .drop("_run")
    )
    # each run takes the event counts of the demo ICU stay it overlaps most
    stays = icustays.select(
        "stay_id", "hadm_id", pl.col("intime").alias("s_in"), pl.col("outtime").alias("s_out")
    )
    overlap = (
        runs.with_row_index("run")
        .join(stays, on="hadm_id", how="left")
        .with_columns(
            (pl.min_horizontal("outtime", "s_out") - pl.max_horizontal("intime", "s_in"))
            .dt.total_seconds()
            .alias("ov")
        )
        .sort("run", "ov", "stay_id", descending=[False, True, False], nulls_last=True)
        .group_by("run", maintain_order=True)
        .first()
    )
    for family in ICU_FAMILIES:
        overlap = overlap.join(
            _group_counts(pools[family], "stay_id"), on="stay_id", how="left", maintain_order="left"
        )
    count_columns = [f"n_{family}" for family in ICU_FAMILIES]
    runs = overlap.select(
        "a", "first_pos", "last_pos", *[pl.col(c).fill_null(0) for c in count_columns]
    ).sort("a", "first_pos")
    return moves.select("a", "pos", "eventtype", "careunit", "off", "icu"), runs


def _ed_only_visits(
    admissions: pl.DataFrame, transfers: pl.DataFrame
) -> tuple[np.ndarray, np.ndarray, pl.DataFrame]:
    """ED visits that did not lead to an admission: durations and position near an admission."""
    visits = transfers.filter(pl.col("hadm_id").is_null() & (pl.col("eventtype") == "ED")).select(
        "subject_id", "intime", "outtime"
    )
    durations = visits.select((pl.col("outtime") - pl.col("intime")).dt.total_seconds())["outtime"].to_numpy()
    starts = admissions.select(
        "subject_id", pl.coalesce("edregtime", "admittime").alias("start"), "dischtime"
    )
    paired = (
        visits.with_row_index("v")
        .join(starts, on="subject_id")
        .with_columns(
            (pl.col("intime") - pl.col("dischtime")).dt.total_seconds().alias("after"),
            (pl.col("start") - pl.col("outtime")).dt.total_seconds().alias("before"),
        )
    )
    signed = (
        paired.with_columns(
            pl.when(pl.col("after") >= 0)
            .then(pl.col("after"))
            .when(pl.col("before") >= 0)
            .then(-pl.col("before"))
            .otherwise(None)
            .alias("signed")
        )
        .drop_nulls("signed")
        .sort("v", pl.col("signed").abs(), "signed")
        .group_by("v", maintain_order=True)
        .first()
    )
    per_subject = visits.group_by("subject_id").agg(pl.len().alias("n_ed_only"))
    return signed["signed"].to_numpy(), durations, per_subject


def _patient_donors(
    patients: pl.DataFrame, admissions: pl.DataFrame, ed_only: pl.DataFrame, pools: dict[str, GroupPool]
) -> pl.DataFrame:
    first = (
        admissions.sort("admittime", "hadm_id")
        .group_by("subject_id", maintain_order=True)
        .agg(
            pl.len().alias("n_admissions"),
            pl.col("admittime").first().alias("first_admit"),
            pl.col("race").first(),
            pl.col("language").first(),
            pl.col("marital_status").first(),
            pl.col("insurance").first(),
        )
    )
    donors = patients.join(first, on="subject_id", how="inner").sort("subject_id")
    for extra in (
        ed_only,
        _group_counts(pools["labs"], "subject_id", "outpatient").rename({"n_labs": "n_out_labs"}),
        _group_counts(pools["micro"], "subject_id", "outpatient").rename({"n_micro": "n_out_micro"}),
        _group_counts(pools["omr"], "subject_id"),
    ):
        donors = donors.join(extra, on="subject_id", how="left", maintain_order="left")
    year_start = pl.datetime(pl.col("anchor_year"), 1, 1)
    return donors.select(
        "gender",
        "anchor_age",
        "anchor_year",
        "anchor_year_group",
        "race",
        "language",
        "marital_status",
        "insurance",
        "n_admissions",
        (pl.col("first_admit") - year_start).dt.total_seconds().clip(0).alias("first_off"),
        *[pl.col(c).fill_null(0) for c in ("n_ed_only", "n_out_labs", "n_out_micro", "n_omr")],
    )
